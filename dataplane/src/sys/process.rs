//! What a process inherits and may raise: descriptors handed over by its
//! parent (docker's readiness pipe on fd 3 and listening socket on fd 4) or
//! passed over a Unix socket (runc's `--console-socket` sends a terminal's
//! master end), and the open-file limit.
//!
//! What this module does not do: decide what an inherited descriptor is for.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::last_error;
use super::mmsg::{empty_msghdr, for_each_cmsg, CmsgBuf, CMSG_BUF_LEN};

/// Takes ownership of descriptor `fd` if the parent left it open, and marks
/// it close-on-exec. Call before this process opens anything, or a
/// descriptor of its own may already sit at that number.
pub fn inherited_fd(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only reads the descriptor's flags; a closed number
    // fails with EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return None;
    }
    // SAFETY: F_SETFD takes an int by value on a descriptor just seen open.
    unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
    // SAFETY: the descriptor is open and, per the caller's contract, owned by
    // no other object in this process.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Receives one descriptor sent with `SCM_RIGHTS` over the Unix stream
/// `socket` (the message's bytes are read and dropped), as close-on-exec.
/// Any further descriptors in the message are closed.
pub fn recv_fd(socket: &std::os::unix::net::UnixStream) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let mut bytes = [0u8; 256];
    let mut iov = libc::iovec { iov_base: bytes.as_mut_ptr().cast(), iov_len: bytes.len() };
    let mut control = CmsgBuf::ZERO;
    let mut message = empty_msghdr();
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.0.as_mut_ptr().cast();
    message.msg_controllen = CMSG_BUF_LEN as _;
    // SAFETY: every pointer in `message` points at a live local buffer of
    // the length given, for the duration of the call.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut message, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(last_error("recvmsg", "a Unix socket"));
    }
    let mut received = Vec::new();
    // SAFETY: the kernel wrote `msg_controllen` bytes of `control`.
    unsafe {
        for_each_cmsg(&message, |level, kind, data| {
            if level == libc::SOL_SOCKET && kind == libc::SCM_RIGHTS {
                for raw in data.chunks_exact(std::mem::size_of::<RawFd>()) {
                    let fd = RawFd::from_ne_bytes(raw.try_into().expect("chunk of an int's size"));
                    // SAFETY: SCM_RIGHTS gave this process a new descriptor
                    // that nothing else owns.
                    received.push(OwnedFd::from_raw_fd(fd));
                }
            }
        });
    }
    received
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "the message carried no descriptor"))
}

/// Raises the limit on open descriptors as far as allowed and returns the
/// new soft limit: with `CAP_SYS_RESOURCE` (root) soft and hard go up to
/// `fs.nr_open`, as dockerd's own unit file sets them; otherwise the soft
/// limit rises to the hard one, as Go programs do at start. A proxy with
/// 10,000 connections holds 20,000 sockets.
pub fn raise_nofile_limit() -> io::Result<libc::rlim_t> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a live rlimit the kernel writes.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } < 0 {
        return Err(last_error("getrlimit", "RLIMIT_NOFILE"));
    }
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|text| text.trim().parse::<libc::rlim_t>().ok())
        .unwrap_or(limit.rlim_max);
    if nr_open > limit.rlim_max {
        let wanted = libc::rlimit { rlim_cur: nr_open, rlim_max: nr_open };
        // SAFETY: `wanted` is a live rlimit the kernel reads.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) } == 0 {
            return Ok(nr_open);
        }
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a live rlimit the kernel reads.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } < 0 {
            return Err(last_error("setrlimit", "RLIMIT_NOFILE"));
        }
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::mmsg::write_cmsg;

    #[test]
    fn a_descriptor_passed_over_a_socket_arrives() {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (mut reader, mut writer) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut control = CmsgBuf::ZERO;
        let space = write_cmsg(&mut control, libc::SOL_SOCKET, libc::SCM_RIGHTS, &writer.as_raw_fd().to_ne_bytes())
            .expect("one int fits");
        let byte = [0u8; 1];
        let mut iov = libc::iovec { iov_base: byte.as_ptr() as *mut _, iov_len: 1 };
        let mut message = empty_msghdr();
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.0.as_mut_ptr().cast();
        message.msg_controllen = space as _;
        // SAFETY: every pointer in `message` points at a live local buffer.
        assert_eq!(unsafe { libc::sendmsg(a.as_raw_fd(), &message, 0) }, 1);
        let received = std::os::unix::net::UnixStream::from(recv_fd(&b).unwrap());
        (&received).write_all(b"hi").unwrap();
        writer.write_all(b"!").unwrap();
        let mut got = [0u8; 3];
        reader.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi!");
        drop(a);
        assert!(recv_fd(&b).is_err(), "a closed socket carries no descriptor");
    }
    use std::os::fd::{AsRawFd, IntoRawFd};

    #[test]
    fn an_open_descriptor_is_taken_and_a_closed_one_is_not() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let raw = file.into_raw_fd();
        let owned = inherited_fd(raw).expect("open");
        assert_eq!(owned.as_raw_fd(), raw);
        drop(owned);
        // Not `raw` again: another test's thread may have been given that
        // number since, and taking it would close their descriptor.
        assert!(inherited_fd(RawFd::MAX).is_none(), "a number no descriptor has");
    }

    #[test]
    fn the_soft_limit_rises_to_the_hard_one_or_beyond() {
        let mut before = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: `before` is a live rlimit.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut before) };
        let soft = raise_nofile_limit().unwrap();
        let mut after = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: `after` is a live rlimit.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut after) };
        assert_eq!(soft, after.rlim_cur);
        assert_eq!(after.rlim_cur, after.rlim_max, "soft raised to hard");
        assert!(after.rlim_max >= before.rlim_max);
    }
}
