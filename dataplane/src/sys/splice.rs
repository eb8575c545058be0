//! Pipes and `splice(2)`: moving bytes from one socket to another through a
//! pipe without copying them into this process, for the TCP relay of
//! [`proxy`](crate::proxy).
//!
//! A [`Pipe`] is nonblocking at both ends. [`Pipe::fill_from`] splices from a
//! socket into the pipe, [`Pipe::drain_to`] from the pipe into a socket; both
//! move page references, not bytes, when the kernel can.
//!
//! What this module does not do: decide when to move bytes (the relay does),
//! or pool pipes (the relay keeps its own pool).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::last_error;

/// A nonblocking pipe used as an in-kernel buffer between two sockets.
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    /// A pipe of about `capacity` bytes (`F_SETPIPE_SZ`; the kernel rounds up
    /// to pages and caps unprivileged callers at `fs.pipe-max-size`). When
    /// the size cannot be set the pipe keeps the default 64 KiB.
    pub fn new(capacity: usize) -> io::Result<Pipe> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        let ret = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if ret < 0 {
            return Err(last_error("pipe2", "relay pipe"));
        }
        // SAFETY: pipe2 succeeded: both descriptors are new and ours alone.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let wanted = capacity.clamp(4096, 1 << 30) as libc::c_int;
        // SAFETY: F_SETPIPE_SZ takes an int by value; the descriptor is live.
        let set = unsafe { libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, wanted) };
        let capacity = if set > 0 { set as usize } else { 64 * 1024 };
        Ok(Pipe { read, write, capacity })
    }

    /// The pipe's size in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Splices up to `len` bytes from `src` (a socket) into the pipe.
    /// `Ok(0)` is end of file on `src`; `WouldBlock` means `src` has nothing
    /// now (or the pipe is full: call it only on an empty pipe to tell the
    /// two apart). Bare OS errors.
    pub fn fill_from(&self, src: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        splice(src, self.write.as_fd(), len)
    }

    /// Splices up to `len` bytes from the pipe into `dst` (a socket).
    /// `WouldBlock` means `dst` is full. Bare OS errors.
    pub fn drain_to(&self, dst: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
        splice(self.read.as_fd(), dst, len)
    }
}

/// `splice(2)` between two descriptors, nonblocking, moving pages.
fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    // SAFETY: null offsets are allowed (both ends are pipes or sockets, which
    // have no file position); the descriptors are live for the borrows.
    let ret = unsafe {
        libc::splice(
            from.as_raw_fd(),
            std::ptr::null_mut(),
            to.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    super::cvt_size(ret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn bytes_cross_from_one_socket_to_another_through_the_pipe() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut d, _) = listener.accept().unwrap();
        let pipe = Pipe::new(256 * 1024).unwrap();
        assert!(pipe.capacity() >= 256 * 1024);

        a.write_all(b"hello through a pipe").unwrap();
        let mut moved = 0;
        while moved < 20 {
            match pipe.fill_from(b.as_fd(), 1 << 16) {
                Ok(n) => moved += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(err) => panic!("{err}"),
            }
        }
        assert_eq!(pipe.drain_to(c.as_fd(), moved).unwrap(), 20);
        let mut got = [0u8; 20];
        d.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello through a pipe");

        drop(a);
        let eof = loop {
            match pipe.fill_from(b.as_fd(), 1 << 16) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                other => break other.unwrap(),
            }
        };
        assert_eq!(eof, 0, "end of file on the source");
    }
}
