//! The operating-system side of the data plane: the only module of the crate
//! where `unsafe` and libc live.
//!
//! - [`tap`]: TAP devices through `/dev/net/tun`, with `IFF_VNET_HDR` and
//!   offloads, single or multi-queue.
//! - [`packet`]: `AF_PACKET` sockets bound to one interface (a veth end, or
//!   any link), batched with `recvmmsg`/`sendmmsg`, VLAN tags put back.
//! - [`udp`]: the underlay UDP socket, batched with `recvmmsg`/`sendmmsg`,
//!   with UDP GSO (`UDP_SEGMENT`) and GRO (`UDP_GRO`) where the kernel has
//!   them, and the checksum options of the kernel's vxlan device.
//! - [`poll`]: a thin `poll(2)`.
//! - [`epoll`]: the exclusive (`EPOLLEXCLUSIVE`) registration of a listener
//!   that several threads watch, which mio does not offer.
//! - [`splice`]: pipes and `splice(2)`, for the proxy's zero-copy TCP relay.
//! - [`process`]: descriptors inherited from a parent, the open-file limit.
//! - [`netns`]: per-thread network namespaces, for tests and tools.
//! - [`neigh`]: marking the kernel's neighbour entry for a next hop in use
//!   (rtnetlink `NTF_USE`), for frames that reach the wire around it.
//! - [`prefetch`](mod@prefetch): a software prefetch, for the NAT core's bursts.
//! - [`iface`]: interface index, MAC, MTU, up, IPv4 address — by name, in the
//!   calling thread's namespace (re-exported here: [`ifindex`], [`mac`], ...).
//!
//! Every libc call is wrapped in a safe function. Set-up calls (open, bind,
//! ioctl, setsockopt) fail with an [`io::Error`] whose inner error is a
//! [`sys::Error`](Error) naming the call and the device, with a hint when one
//! helps: `TUNSETIFF on wh0: Operation not permitted (os error 1) (run as root
//! or grant CAP_NET_ADMIN)`. The [`io::ErrorKind`] is kept. Hot-path calls
//! (read, write, recv and send batches, poll) return the bare OS error, which
//! does not allocate: `WouldBlock` on a nonblocking descriptor is routine.
//!
//! What this module does not do: parse or build packets (that is
//! [`wire`](crate::wire)), segment superframes (that is [`gso`](crate::gso)),
//! decide anything about VXLAN (that is [`vxlan`](crate::vxlan)), or create
//! links and routes with netlink (that is the control plane).

use std::ffi::c_int;
use std::fmt;
use std::io;

pub mod epoll;
pub mod hugepage;
pub mod iface;
pub mod neigh;
pub mod netns;
pub mod packet;
pub mod poll;
pub mod prefetch;
pub mod process;
pub mod socket_path;
pub mod splice;
pub mod tap;
pub mod udp;

mod mmsg;
mod sockaddr;

pub use iface::{ifindex, mac, mtu, set_ipv4_addr, set_mtu, set_up, wait_running};
pub use prefetch::prefetch;

/// `SO_NO_CHECK`, which libc does not export for every target (the
/// asm-generic value, shared by x86-64, aarch64, arm, riscv, powerpc and
/// mips).
const SO_NO_CHECK: c_int = 11;
/// `SO_SNDBUFFORCE` (asm-generic).
const SO_SNDBUFFORCE: c_int = 32;
/// `SO_RCVBUFFORCE` (asm-generic).
const SO_RCVBUFFORCE: c_int = 33;

/// A failed system call: which call, on what, the OS error, and what to do
/// about it when that is known. Carried inside the [`io::Error`] that set-up
/// functions of this module return; find it with [`Error::of`].
#[derive(Debug, thiserror::Error)]
pub struct Error {
    op: &'static str,
    target: String,
    cause: io::Error,
    hint: Option<&'static str>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}: {}", self.op, self.target, self.cause)?;
        if let Some(hint) = self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl Error {
    /// The call that failed: `TUNSETIFF`, `bind`, `setsockopt(UDP_GRO)`, ...
    pub fn op(&self) -> &'static str {
        self.op
    }

    /// What it was called on: a device name, an address, a path.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The OS error number, when there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.cause.raw_os_error()
    }

    /// What to do about it, when this module knows.
    pub fn hint(&self) -> Option<&'static str> {
        self.hint
    }

    /// The `sys::Error` inside an `io::Error` returned by this module, if any.
    pub fn of(err: &io::Error) -> Option<&Error> {
        err.get_ref().and_then(|inner| inner.downcast_ref::<Error>())
    }
}

/// Wraps `cause` with the call and the target, keeping its kind.
pub(crate) fn context(op: &'static str, target: &str, cause: io::Error) -> io::Error {
    let hint = hint_for(op, cause.raw_os_error());
    io::Error::new(cause.kind(), Error { op, target: target.to_owned(), cause, hint })
}

/// The calling thread's last OS error, with context.
pub(crate) fn last_error(op: &'static str, target: &str) -> io::Error {
    context(op, target, io::Error::last_os_error())
}

/// An `InvalidInput` error for a bad argument, with context.
pub(crate) fn invalid_input(op: &'static str, target: &str, why: &'static str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        Error { op, target: target.to_owned(), cause: io::Error::new(io::ErrorKind::InvalidInput, why), hint: None },
    )
}

/// A hint for the errors users meet in practice.
fn hint_for(op: &'static str, errno: Option<i32>) -> Option<&'static str> {
    let errno = errno?;
    let namespace_op = op.starts_with("setns") || op.starts_with("unshare");
    match errno {
        libc::EPERM | libc::EACCES if namespace_op => Some("run as root or grant CAP_SYS_ADMIN"),
        libc::EPERM | libc::EACCES if op.starts_with("socket(AF_PACKET") => Some("run as root or grant CAP_NET_RAW"),
        libc::EPERM | libc::EACCES => Some("run as root or grant CAP_NET_ADMIN"),
        libc::ENOENT if op == "open /dev/net/tun" => {
            Some("the tun driver is missing: `modprobe tun`, or `mknod /dev/net/tun c 10 200`")
        }
        libc::ENOENT if namespace_op => Some("no such namespace: create it with `ip netns add NAME`"),
        libc::ENODEV => Some("no such interface in this network namespace"),
        libc::EBUSY if op == "TUNSETIFF" => {
            Some("the TAP is already attached by another process (it is single-queue), or the name is taken")
        }
        libc::EINVAL if op == "TUNSETIFF" => {
            Some("a device of that name exists but is not a TAP, or its multi_queue flag differs from what was asked")
        }
        libc::ENOPROTOOPT => Some("this kernel does not support the option"),
        libc::EADDRINUSE => Some("another socket has the address; stop it or pick another port"),
        _ => None,
    }
}

/// Turns a `-1` return into the last OS error (no context, no allocation).
fn cvt(ret: c_int) -> io::Result<c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Turns a `-1` return of a `ssize_t` call into the last OS error.
fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Sets or clears `O_NONBLOCK` on a descriptor.
fn set_nonblocking(fd: std::os::fd::BorrowedFd<'_>, nonblocking: bool, target: &str) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: F_GETFL takes no argument and only reads the descriptor's flags;
    // `fd` is a live descriptor for the duration of the borrow.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(last_error("fcntl(F_GETFL)", target));
    }
    let wanted = if nonblocking { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK };
    if wanted != flags {
        // SAFETY: F_SETFL takes an int of flags by value; `fd` is live.
        let ret = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, wanted) };
        if ret < 0 {
            return Err(last_error("fcntl(F_SETFL)", target));
        }
    }
    Ok(())
}

/// Sends `count` messages with a batched send that stops at the first
/// message the kernel refuses (`sendmmsg`): `send_from(k)` sends messages
/// `k..` and says how many went. A refused message (a peer's route gone, a
/// firewall rule, too large) is dropped and the ones after it still go; a
/// full socket buffer drops the rest, which would fail alike. Returns how
/// many went and how many were dropped.
pub fn send_skipping(count: usize, mut send_from: impl FnMut(usize) -> io::Result<usize>) -> (usize, usize) {
    let (mut done, mut sent, mut dropped) = (0, 0, 0);
    while done < count {
        match send_from(done) {
            Ok(n) if n > 0 => {
                done += n;
                sent += n;
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                dropped += count - done;
                break;
            }
            _ => {
                done += 1;
                dropped += 1;
            }
        }
    }
    (sent, dropped)
}

/// Makes a TCP socket that has not connected yet hold the handshake's
/// last ACK back, for its first data segment to carry: `TCP_DEFER_ACCEPT`,
/// which on a connecting socket makes Linux schedule that ACK as a delayed
/// one (up to 200 ms) instead of sending it at once. A caller with nothing
/// to send once connected releases it with [`send_held_ack`].
pub fn hold_handshake_ack(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    setsockopt_int(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_DEFER_ACCEPT,
        1,
        "setsockopt(TCP_DEFER_ACCEPT)",
        "connecting socket",
    )
}

/// Sends an ACK a connected TCP socket holds back (`TCP_QUICKACK`), such as
/// the handshake's after [`hold_handshake_ack`]; nothing when none waits.
pub fn send_held_ack(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_QUICKACK, 1, "setsockopt(TCP_QUICKACK)", "connected socket")
}

/// Sets an `int`-valued socket option.
fn setsockopt_int(
    fd: std::os::fd::BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    value: c_int,
    op: &'static str,
    target: &str,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: the option value is a live `c_int` and the length passed is its
    // size; the kernel only reads it.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const c_int).cast(),
            std::mem::size_of::<c_int>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        Err(last_error(op, target))
    } else {
        Ok(())
    }
}

/// Reads an `int`-valued socket option.
fn getsockopt_int(
    fd: std::os::fd::BorrowedFd<'_>,
    level: c_int,
    name: c_int,
    op: &'static str,
    target: &str,
) -> io::Result<c_int> {
    use std::os::fd::AsRawFd;
    let mut value: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: `value` is a live `c_int` and `len` holds its size; the kernel
    // writes at most `len` bytes and updates `len`.
    let ret = unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, (&mut value as *mut c_int).cast(), &mut len) };
    if ret < 0 {
        Err(last_error(op, target))
    } else {
        Ok(value)
    }
}

/// Fails a root-needing test with a clear message unless it runs as root.
/// These tests create namespaces and devices; CI runs them as root.
#[cfg(test)]
pub(crate) fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test needs root (it creates a network namespace and devices); run it as root");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_message_is_skipped_and_a_full_buffer_ends_the_batch() {
        // The kernel's behaviour: messages go until the first refused one.
        let refused = [2usize, 5];
        let mut calls = Vec::new();
        let got = send_skipping(8, |from| {
            calls.push(from);
            match refused.iter().find(|&&r| r >= from) {
                Some(&r) if r == from => Err(io::Error::from_raw_os_error(libc::ENETUNREACH)),
                Some(&r) => Ok(r - from),
                None => Ok(8 - from),
            }
        });
        assert_eq!(got, (6, 2));
        assert_eq!(calls, [0, 2, 3, 5, 6]);
        let got =
            send_skipping(8, |from| if from < 3 { Ok(3) } else { Err(io::Error::from(io::ErrorKind::WouldBlock)) });
        assert_eq!(got, (3, 5));
    }

    #[test]
    fn error_names_the_call_the_target_and_the_fix() {
        let err = context("TUNSETIFF", "wh0", io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        let text = err.to_string();
        assert!(text.starts_with("TUNSETIFF on wh0: Operation not permitted"), "{text}");
        assert!(text.ends_with("(run as root or grant CAP_NET_ADMIN)"), "{text}");
        let inner = Error::of(&err).expect("a sys::Error inside");
        assert_eq!(inner.op(), "TUNSETIFF");
        assert_eq!(inner.target(), "wh0");
        assert_eq!(inner.raw_os_error(), Some(libc::EPERM));
    }

    /// Devices, sockets and batches move to the worker thread that uses
    /// them, and sockets can be shared between a reader and a writer.
    #[test]
    fn devices_and_batches_can_move_between_threads() {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<tap::Tap>();
        sync::<tap::Tap>();
        send::<packet::PacketSocket>();
        sync::<packet::PacketSocket>();
        send::<packet::FrameBatch>();
        send::<udp::UdpSocket>();
        sync::<udp::UdpSocket>();
        send::<udp::RecvBatch>();
    }

    #[test]
    fn missing_tun_driver_says_how_to_get_it() {
        let err = context("open /dev/net/tun", "wh0", io::Error::from_raw_os_error(libc::ENOENT));
        assert!(err.to_string().contains("modprobe tun"), "{err}");
        let err = context("setns", "/var/run/netns/x", io::Error::from_raw_os_error(libc::EPERM));
        assert!(err.to_string().contains("CAP_SYS_ADMIN"), "{err}");
    }
}
