//! The TCP relay: a connection is a pair of nonblocking sockets, client and
//! container, and two halves moving bytes in each direction through a
//! pooled pipe (`splice(2)`, zero-copy) or a pooled buffer (`read`/`write`).
//! A half that has nothing in flight gives its pipe or buffer back to the
//! pool, so 10,000 idle connections hold none.
//!
//! Half-close is passed through: end of file from one side becomes
//! `shutdown(SHUT_WR)` on the other once everything before it is delivered,
//! and the other direction keeps flowing. An error on either side (a reset,
//! a broken pipe) resets both: `SO_LINGER` 0, then close.
//!
//! What this module does not do: accept, connect, or wait for readiness
//! (the [`run`](super::run) loop does).

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::time::Duration;

use mio::net::TcpStream;

use super::args::Relay;
use super::proxy_protocol::Header;
use super::stats::Counters;
use crate::sys::splice::Pipe;

/// Bytes moved per pipe or buffer: one splice or read takes up to this much.
pub const CHANNEL_SIZE: usize = 256 * 1024;

/// A pipe or a buffer between the two sockets of one direction.
#[derive(Debug)]
pub enum Channel {
    Pipe(Pipe),
    Buffer(Box<[u8]>),
}

/// Channels not in use, kept for the next busy half.
#[derive(Debug)]
pub struct Pool {
    relay: Relay,
    free: Vec<Channel>,
    /// Keep at most this many idle channels.
    keep: usize,
}

impl Pool {
    pub fn new(relay: Relay) -> Pool {
        Pool { relay, free: Vec::new(), keep: 64 }
    }

    fn take(&mut self) -> io::Result<Channel> {
        if let Some(channel) = self.free.pop() {
            return Ok(channel);
        }
        if self.relay == Relay::Splice {
            match Pipe::new(CHANNEL_SIZE) {
                Ok(pipe) => return Ok(Channel::Pipe(pipe)),
                // Out of descriptors: a buffer needs none, so the
                // connection carries on, copying.
                Err(err) if is_out_of_descriptors(&err) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(Channel::Buffer(vec![0; CHANNEL_SIZE].into_boxed_slice()))
    }

    fn give(&mut self, channel: Channel) {
        if self.free.len() < self.keep {
            self.free.push(channel);
        }
    }

    /// Closes every idle channel (the proxy has gone quiet): a pipe is two
    /// descriptors and up to a megabyte of kernel memory.
    pub fn trim(&mut self) {
        self.free.clear();
    }

    /// Idle channels held.
    pub fn idle(&self) -> usize {
        self.free.len()
    }
}

/// `EMFILE` or `ENFILE`: the process or the system has no descriptor left.
/// Looks inside the context that [`sys`](crate::sys) set-up errors carry.
pub fn is_out_of_descriptors(err: &io::Error) -> bool {
    let errno = err.raw_os_error().or_else(|| crate::sys::Error::of(err).and_then(|e| e.raw_os_error()));
    matches!(errno, Some(libc::EMFILE | libc::ENFILE))
}

/// One direction of a connection.
#[derive(Debug, Default)]
struct Half {
    channel: Option<Channel>,
    /// Bytes in the channel not yet written.
    pending: usize,
    /// Where they start, in a buffer.
    offset: usize,
    /// The source said end of file.
    eof: bool,
    /// The destination was shut down for writing.
    shut: bool,
}

/// Readiness of one socket, as edge-triggered events last left it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ready {
    pub readable: bool,
    pub writable: bool,
}

/// What a step of a connection came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Waiting for readiness.
    Open,
    /// Both directions ended cleanly: close both sockets.
    Done,
    /// A side failed: reset both.
    Failed,
}

/// A proxied TCP connection.
#[derive(Debug)]
pub struct Conn {
    pub mapping: usize,
    pub client: TcpStream,
    pub server: TcpStream,
    pub client_ready: Ready,
    pub server_ready: Ready,
    /// The connection to the container is established.
    pub connected: bool,
    /// A PROXY header still to send, and how much of it went.
    header: Option<(Header, usize)>,
    up: Half,
    down: Half,
}

impl Conn {
    pub fn new(mapping: usize, client: TcpStream, server: TcpStream, header: Option<Header>) -> Conn {
        Conn {
            mapping,
            client,
            server,
            client_ready: Ready::default(),
            server_ready: Ready::default(),
            connected: false,
            header: header.map(|h| (h, 0)),
            up: Half::default(),
            down: Half::default(),
        }
    }

    /// Moves what can move in both directions, and says where the
    /// connection stands. Byte counts go to `counters`.
    pub fn pump(&mut self, pool: &mut Pool, counters: &Counters) -> Progress {
        if !self.connected {
            return Progress::Open;
        }
        if let Err(_err) = self.send_header() {
            return Progress::Failed;
        }
        if self.header.is_none() {
            match move_bytes(
                &mut self.up,
                &self.client,
                &self.server,
                &mut self.client_ready,
                &mut self.server_ready,
                pool,
            ) {
                // A wake-up that moved nothing leaves the shared counter alone.
                Ok(0) => {}
                Ok(n) => counters.bytes_in.add(n),
                Err(_) => return Progress::Failed,
            }
        }
        match move_bytes(
            &mut self.down,
            &self.server,
            &self.client,
            &mut self.server_ready,
            &mut self.client_ready,
            pool,
        ) {
            Ok(0) => {}
            Ok(n) => counters.bytes_out.add(n),
            Err(_) => return Progress::Failed,
        }
        if self.up.shut && self.down.shut {
            Progress::Done
        } else {
            Progress::Open
        }
    }

    fn send_header(&mut self) -> io::Result<()> {
        while let Some((header, sent)) = &mut self.header {
            if !self.server_ready.writable {
                return Ok(());
            }
            match (&self.server).write(&header.as_bytes()[*sent..]) {
                Ok(n) => {
                    *sent += n;
                    if *sent == header.as_bytes().len() {
                        self.header = None;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.server_ready.writable = false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Gives both channels back to the pool (the connection is closing).
    pub fn release(&mut self, pool: &mut Pool) {
        for half in [&mut self.up, &mut self.down] {
            if let Some(channel) = half.channel.take() {
                // A channel with bytes still in it is dropped, not reused.
                if half.pending == 0 {
                    pool.give(channel);
                }
            }
        }
    }

    /// Resets both sides: `SO_LINGER` 0, so closing sends RST.
    pub fn reset(&self) {
        for stream in [&self.client, &self.server] {
            let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
        }
    }
}

/// Moves bytes of one direction until a socket would block or the source
/// ends; returns how many reached the destination.
fn move_bytes(
    half: &mut Half,
    src: &TcpStream,
    dst: &TcpStream,
    src_ready: &mut Ready,
    dst_ready: &mut Ready,
    pool: &mut Pool,
) -> io::Result<u64> {
    let mut moved = 0u64;
    loop {
        if half.pending > 0 {
            if !dst_ready.writable {
                break;
            }
            let Some(channel) = half.channel.as_ref() else {
                // Unreachable: pending bytes always sit in a channel.
                half.pending = 0;
                continue;
            };
            let result = match channel {
                Channel::Pipe(pipe) => pipe.drain_to(dst.as_fd(), half.pending),
                Channel::Buffer(buf) => {
                    let mut dst = dst;
                    dst.write(&buf[half.offset..half.offset + half.pending])
                }
            };
            match result {
                Ok(n) => {
                    half.pending -= n;
                    half.offset += n;
                    moved += n as u64;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => dst_ready.writable = false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
            continue;
        }
        if half.eof || !src_ready.readable {
            break;
        }
        let channel = match &mut half.channel {
            Some(channel) => channel,
            None => half.channel.insert(pool.take()?),
        };
        let result = match channel {
            Channel::Pipe(pipe) => pipe.fill_from(src.as_fd(), pipe.capacity()),
            Channel::Buffer(buf) => {
                let mut src = src;
                src.read(buf)
            }
        };
        match result {
            Ok(0) => half.eof = true,
            Ok(n) => {
                half.pending = n;
                half.offset = 0;
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => src_ready.readable = false,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    if half.pending == 0 {
        if let Some(channel) = half.channel.take() {
            pool.give(channel);
        }
        if half.eof && !half.shut {
            match dst.shutdown(Shutdown::Write) {
                Ok(()) => half.shut = true,
                // The destination is already gone: nothing left to tell it.
                Err(err) if err.kind() == io::ErrorKind::NotConnected => half.shut = true,
                Err(err) => return Err(err),
            }
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_descriptors_is_recognised_bare_or_with_context() {
        assert!(is_out_of_descriptors(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(is_out_of_descriptors(&io::Error::from_raw_os_error(libc::ENFILE)));
        assert!(!is_out_of_descriptors(&io::Error::from_raw_os_error(libc::ECONNREFUSED)));
        let wrapped = crate::sys::context("pipe2", "relay pipe", io::Error::from_raw_os_error(libc::EMFILE));
        assert!(is_out_of_descriptors(&wrapped));
    }
}
