//! A thin `poll(2)`: wait until one of a few descriptors (a TAP, a packet
//! socket, the underlay socket) is readable or writable.
//!
//! A [`PollFd`] borrows its descriptor, so it cannot outlive the device or
//! socket it watches. An interrupted wait (`EINTR`, a signal arrived) is
//! returned as [`io::ErrorKind::Interrupted`] rather than retried, so that a
//! runner can check its stop flag.
//!
//! What this module does not do: epoll, timers, or waking a waiting thread
//! from another one.

use std::io;
use std::marker::PhantomData;
use std::ops::{BitOr, BitOrAssign};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

/// Poll events: what to wait for, and what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Events(i16);

impl Events {
    /// Nothing.
    pub const NONE: Events = Events(0);
    /// Readable (`POLLIN`).
    pub const IN: Events = Events(libc::POLLIN);
    /// Writable (`POLLOUT`).
    pub const OUT: Events = Events(libc::POLLOUT);
    /// An error is pending (`POLLERR`); reported even if not asked for.
    pub const ERR: Events = Events(libc::POLLERR);
    /// Hung up (`POLLHUP`); reported even if not asked for.
    pub const HUP: Events = Events(libc::POLLHUP);
    /// Not an open descriptor (`POLLNVAL`); reported even if not asked for.
    pub const NVAL: Events = Events(libc::POLLNVAL);

    /// Whether every event in `other` is in `self`.
    pub const fn contains(self, other: Events) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any event in `other` is in `self`.
    pub const fn intersects(self, other: Events) -> bool {
        self.0 & other.0 != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The raw `short` bits.
    pub const fn bits(self) -> i16 {
        self.0
    }
}

impl BitOr for Events {
    type Output = Events;

    fn bitor(self, rhs: Events) -> Events {
        Events(self.0 | rhs.0)
    }
}

impl BitOrAssign for Events {
    fn bitor_assign(&mut self, rhs: Events) {
        self.0 |= rhs.0;
    }
}

/// One descriptor to wait on: `struct pollfd`, borrowing the descriptor.
#[repr(transparent)]
#[derive(Debug, Clone, Copy)]
pub struct PollFd<'fd> {
    raw: libc::pollfd,
    _fd: PhantomData<BorrowedFd<'fd>>,
}

impl<'fd> PollFd<'fd> {
    /// Waits on `fd` for `events`.
    pub fn new(fd: &'fd impl AsFd, events: Events) -> PollFd<'fd> {
        PollFd { raw: libc::pollfd { fd: fd.as_fd().as_raw_fd(), events: events.0, revents: 0 }, _fd: PhantomData }
    }

    /// What happened in the last [`poll`].
    pub fn revents(&self) -> Events {
        Events(self.raw.revents)
    }

    /// What this entry waits for.
    pub fn events(&self) -> Events {
        Events(self.raw.events)
    }

    /// Changes what this entry waits for (for example to add `OUT` while a
    /// send batch is only partly sent).
    pub fn set_events(&mut self, events: Events) {
        self.raw.events = events.0;
    }

    /// Readable, or hung up / in error (a read will say which).
    pub fn is_readable(&self) -> bool {
        self.revents().intersects(Events::IN | Events::HUP | Events::ERR)
    }

    /// Writable, or in error (a write will say which).
    pub fn is_writable(&self) -> bool {
        self.revents().intersects(Events::OUT | Events::ERR)
    }
}

/// Waits until one of `fds` is ready or `timeout` passes (`None`: forever).
/// Returns how many entries have events (0 on timeout). Timeouts round up to
/// the next millisecond and are capped at `i32::MAX` milliseconds.
pub fn poll(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> io::Result<usize> {
    let timeout_ms: libc::c_int = match timeout {
        None => -1,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            ms.min(i32::MAX as u128) as libc::c_int
        }
    };
    // SAFETY: PollFd is repr(transparent) over libc::pollfd (PhantomData is
    // zero-sized), so the slice is `fds.len()` valid pollfds the kernel may
    // write `revents` into; every fd is borrowed, hence open, for the call.
    let ret = unsafe { libc::poll(fds.as_mut_ptr().cast::<libc::pollfd>(), fds.len() as libc::nfds_t, timeout_ms) };
    super::cvt(ret).map(|n| n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    #[test]
    fn waits_for_readable_and_times_out() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let start = Instant::now();
        let mut fds = [PollFd::new(&a, Events::IN)];
        assert_eq!(poll(&mut fds, Some(Duration::from_millis(20))).unwrap(), 0);
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(!fds[0].is_readable());

        b.write_all(b"x").unwrap();
        assert_eq!(poll(&mut fds, None).unwrap(), 1);
        assert!(fds[0].is_readable());
        assert!(fds[0].revents().contains(Events::IN));

        fds[0].set_events(Events::IN | Events::OUT);
        assert_eq!(fds[0].events(), Events::IN | Events::OUT);
        assert_eq!(poll(&mut fds, Some(Duration::ZERO)).unwrap(), 1);
        assert!(fds[0].is_writable());
    }

    #[test]
    fn hang_up_is_reported_unasked() {
        let (a, b) = UnixStream::pair().unwrap();
        drop(b);
        let mut fds = [PollFd::new(&a, Events::NONE)];
        assert_eq!(poll(&mut fds, Some(Duration::from_secs(1))).unwrap(), 1);
        assert!(fds[0].revents().contains(Events::HUP));
    }
}
