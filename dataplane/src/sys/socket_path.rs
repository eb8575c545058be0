//! The path a Unix socket is bound to: the stats sockets of wharf-proxy,
//! `wharf vtep` and `wharf nat` are files that outlive a process killed
//! before it could remove its own.
//!
//! What this module does not do: bind, or remove a socket on exit (its
//! owner does).

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Makes `path` free for a Unix socket to bind. A socket that nothing
/// answers on any more (its process is gone) is removed. A socket that
/// still answers, or a file that is not a socket, is refused and left as
/// it is: a mistyped path must not cost someone's file.
pub fn claim_socket_path(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(io::Error::new(err.kind(), format!("{}: {err}", path.display()))),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket; not replacing it", path.display()),
        ));
    }
    if UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} is served by a running process", path.display()),
        ));
    }
    std::fs::remove_file(path).map_err(|err| io::Error::new(err.kind(), format!("remove {}: {err}", path.display())))
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    #[test]
    fn stale_sockets_go_and_everything_else_stays() {
        let dir = std::env::temp_dir().join(format!("wharf-socket-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");

        claim_socket_path(&path).unwrap();
        assert!(!path.exists(), "nothing there: nothing to do");

        let live = UnixListener::bind(&path).unwrap();
        let err = claim_socket_path(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
        drop(live);
        assert!(path.exists(), "a closed listener leaves its file");
        claim_socket_path(&path).unwrap();
        assert!(!path.exists(), "the stale socket is removed");

        let file = dir.join("notes.txt");
        std::fs::write(&file, "keep me").unwrap();
        let err = claim_socket_path(&file).unwrap_err();
        assert!(err.to_string().contains("is not a socket"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

        let link = dir.join("link.sock");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(claim_socket_path(&link).is_err(), "a symlink is not a socket either");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

        std::fs::remove_dir_all(&dir).unwrap();
    }
}
