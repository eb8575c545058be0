//! The one `epoll_ctl` registration mio does not offer: `EPOLLEXCLUSIVE`,
//! for a listening socket that several threads' epolls watch. A new
//! connection then wakes one waiting thread instead of every one of them
//! (each of which would try to accept it, and all but one get `EAGAIN`).
//!
//! The registration is edge-triggered and reports readability with the
//! token mio reads back (`epoll_event.u64`), so events arrive through mio's
//! `Poll` like any other; the descriptor leaves the epoll when it closes.
//!
//! What this module does not do: wait for events, or modify and delete
//! registrations (an exclusive one can be neither modified nor re-added:
//! `EPOLL_CTL_MOD` fails with `EINVAL`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Adds `fd` to the epoll instance `epoll` (a `mio::Poll`, which lends only
/// its raw descriptor) for readability, edge-triggered
/// and exclusive, with `token` as the event's data. Fails with `EINVAL`
/// when the kernel has no `EPOLLEXCLUSIVE` (before Linux 4.5) or `fd` is
/// itself an epoll; with `EEXIST` when `fd` is already registered there.
/// Bare OS errors.
pub fn add_exclusive_reader(epoll: &impl AsRawFd, fd: BorrowedFd<'_>, token: usize) -> io::Result<()> {
    let mut event =
        libc::epoll_event { events: (libc::EPOLLIN | libc::EPOLLET | libc::EPOLLEXCLUSIVE) as u32, u64: token as u64 };
    // SAFETY: both descriptors are live for the borrows (`epoll` is owned by
    // what it borrows from); `event` is a valid epoll_event the kernel only
    // reads. A stale `epoll` number would fail with EBADF or EINVAL, not
    // touch memory.
    let ret = unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd.as_raw_fd(), &mut event) };
    super::cvt(ret).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;
    use std::time::Duration;

    use mio::{Events, Poll, Token};

    #[test]
    fn a_connection_is_reported_to_each_exclusive_epoll_with_its_token() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let copy = listener.try_clone().unwrap();
        let (mut one, mut two) = (Poll::new().unwrap(), Poll::new().unwrap());
        add_exclusive_reader(&one, listener.as_fd(), 7).unwrap();
        add_exclusive_reader(&two, copy.as_fd(), 9).unwrap();
        let err = add_exclusive_reader(&one, listener.as_fd(), 7).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST));

        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        // Nobody waits, so no wake-up is given away: both hear of it.
        let mut events = Events::with_capacity(4);
        one.poll(&mut events, Some(Duration::from_secs(5))).unwrap();
        let got: Vec<_> = events.iter().map(|e| (e.token(), e.is_readable())).collect();
        assert_eq!(got, [(Token(7), true)]);
        two.poll(&mut events, Some(Duration::from_secs(5))).unwrap();
        let got: Vec<_> = events.iter().map(|e| (e.token(), e.is_readable())).collect();
        assert_eq!(got, [(Token(9), true)]);
        assert!(listener.accept().is_ok());
    }
}
