//! Network namespaces for one thread: make a fresh one, or enter a named one
//! (`ip netns add NAME` makes `/var/run/netns/NAME`).
//!
//! A network namespace belongs to a thread, not to the process: these calls
//! change only the calling thread, and every socket, TAP or interface call
//! that thread makes afterwards acts in the new namespace. Use them **on a
//! dedicated thread only** — never on a thread of an async runtime's pool or
//! one that other code shares, since nothing switches it back. A namespace
//! made by [`unshare_net_thread`] disappears, with every device in it, when
//! the last thread in it ends and the last descriptor into it is closed.
//!
//! Tests use [`run_in_new_netns`] so that every device they create lives in a
//! namespace that vanishes with the test, never in the machine's own.
//!
//! What this module does not do: create, name or delete persistent
//! namespaces (`ip netns add` bind-mounts them; the control plane does that),
//! or any namespace kind other than network.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::{invalid_input, last_error};

/// Moves the calling thread into a new, empty network namespace
/// (`unshare(CLONE_NEWNET)`). Only `lo` exists there, and it is down.
/// Needs `CAP_SYS_ADMIN`.
pub fn unshare_net_thread() -> io::Result<()> {
    // SAFETY: unshare() takes flags by value; CLONE_NEWNET affects only the
    // calling thread's nsproxy and no memory of this process.
    let ret = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    if ret < 0 {
        return Err(last_error("unshare(CLONE_NEWNET)", "the calling thread"));
    }
    Ok(())
}

/// Moves the calling thread into the named namespace `/var/run/netns/NAME`.
pub fn enter(name: &str) -> io::Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(invalid_input("setns", name, "a namespace name is not empty and has no '/'"));
    }
    enter_path(&Path::new("/var/run/netns").join(name))
}

/// Moves the calling thread into the namespace that `path` refers to: a
/// bind mount under `/var/run/netns`, or `/proc/PID/task/TID/ns/net`.
pub fn enter_path(path: &Path) -> io::Result<()> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|err| super::context("setns: open", &shown, err))?;
    // SAFETY: `file` is an open descriptor for the call; setns() reads no
    // memory of this process and changes only the calling thread.
    let ret = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if ret < 0 {
        return Err(last_error("setns(CLONE_NEWNET)", &shown));
    }
    Ok(())
}

/// The calling thread's id (`gettid`), as in `/proc/PID/task/TID`.
pub fn thread_id() -> i32 {
    // SAFETY: gettid() has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// The path of the calling thread's network namespace,
/// `/proc/PID/task/TID/ns/net`: give it to `nsenter --net=PATH` or
/// [`enter_path`] to act in the same namespace from elsewhere, for as long
/// as this thread lives.
pub fn thread_netns_path() -> PathBuf {
    PathBuf::from(format!("/proc/{}/task/{}/ns/net", std::process::id(), thread_id()))
}

/// Runs `f` on a new thread inside a fresh network namespace with `lo` up,
/// and returns what it returns. A panic in `f` is resumed in the caller, so
/// test assertions inside `f` fail the test. The namespace and every device
/// created in it go away when the thread ends, unless something else holds
/// it (a process started inside, a descriptor into it).
pub fn run_in_new_netns<T, F>(f: F) -> io::Result<T>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    std::thread::scope(|scope| {
        let handle = scope.spawn(|| -> io::Result<T> {
            unshare_net_thread()?;
            super::iface::set_up("lo")?;
            Ok(f())
        });
        match handle.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The namespace identity of a thread: the inode behind its ns/net link.
    fn netns_id(path: &Path) -> String {
        std::fs::read_link(path).unwrap().display().to_string()
    }

    #[test]
    fn a_new_namespace_is_the_threads_alone() {
        crate::sys::require_root();
        let outer = netns_id(&thread_netns_path());
        let (inner, inner_path_worked) = run_in_new_netns(|| {
            let path = thread_netns_path();
            (netns_id(&path), path.exists())
        })
        .unwrap();
        assert!(inner_path_worked);
        assert_ne!(inner, outer, "the closure ran in a new namespace");
        assert_eq!(netns_id(&thread_netns_path()), outer, "the caller did not move");
    }

    #[test]
    fn a_thread_can_join_another_threads_namespace() {
        crate::sys::require_root();
        run_in_new_netns(|| {
            let path = thread_netns_path();
            let here = netns_id(&path);
            let joined = std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        enter_path(&path).unwrap();
                        netns_id(&thread_netns_path())
                    })
                    .join()
                    .unwrap()
            });
            assert_eq!(joined, here);
        })
        .unwrap();
    }

    #[test]
    fn a_missing_named_namespace_says_how_to_make_one() {
        let err = enter("wh-no-such-ns").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let text = err.to_string();
        assert!(text.contains("/var/run/netns/wh-no-such-ns"), "{text}");
        assert!(text.contains("ip netns add"), "{text}");
        assert_eq!(enter("../etc").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
