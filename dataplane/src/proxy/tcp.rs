//! The TCP relay: a connection is a pair of nonblocking sockets, client and
//! container, and two halves moving bytes in each direction through a
//! pooled pipe (`splice(2)`, zero-copy) or a pooled buffer (`read`/`write`).
//! A half that has nothing in flight gives its pipe or buffer back to the
//! pool, so 10,000 idle connections hold none. Until a read fills it, a
//! direction reads into the worker's 16 KiB scratch buffer and writes on at
//! once: the request and reply of a short exchange take no channel, and a
//! short read (the socket emptied) saves the read that would only say
//! `EAGAIN`.
//!
//! Half-close is passed through: end of file from one side becomes
//! `shutdown(SHUT_WR)` on the other once everything before it is delivered,
//! and the other direction keeps flowing. Bytes followed by end of file
//! leave with their FIN in one segment; when the other direction has ended
//! already, closing both sockets sends that FIN. An error on either side (a reset,
//! a broken pipe) resets both: `SO_LINGER` 0, then close.
//!
//! The container connection holds the handshake's last ACK back for the
//! first bytes sent to carry (a client usually speaks first, and its bytes
//! are there by the time the handshake is over): one segment fewer for the
//! container's stack to take, and its `accept` finds the request already
//! queued. When the client has sent nothing yet (a protocol where the
//! server speaks first), the ACK leaves at once, as it would have.
//!
//! What this module does not do: accept, or wait for readiness (the
//! [`run`](super::run) loop does).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::time::Duration;

use mio::net::TcpStream;
use socket2::{Domain, SockRef, Socket, Type};

use super::args::Relay;
use super::proxy_protocol::Header;
use super::stats::Counters;
use crate::sys::splice::Pipe;

/// Bytes moved per pipe or buffer: one splice or read takes up to this much.
pub const CHANNEL_SIZE: usize = 256 * 1024;

/// The scratch buffer a direction reads into until it carries bulk: larger
/// than a request or reply of a short exchange, small enough that copying
/// it once costs a bulk transfer nothing it would notice.
pub const SCRATCH_SIZE: usize = 16 * 1024;
// What the destination does not take of a scratch read fits in a buffer.
const _: () = assert!(SCRATCH_SIZE <= CHANNEL_SIZE);

/// A pipe or a buffer between the two sockets of one direction.
#[derive(Debug)]
pub enum Channel {
    Pipe(Pipe),
    Buffer(Box<[u8]>),
}

/// Channels not in use, kept for the next busy half, and the worker's
/// scratch buffer.
#[derive(Debug)]
pub struct Pool {
    relay: Relay,
    pipes: Vec<Pipe>,
    buffers: Vec<Box<[u8]>>,
    /// Keep at most this many idle pipes, and as many idle buffers.
    keep: usize,
    /// Where a direction's bytes go first (read, then written on at once),
    /// until a read fills it: a short exchange takes no channel at all.
    scratch: Box<[u8]>,
}

impl Pool {
    pub fn new(relay: Relay) -> Pool {
        Pool {
            relay,
            pipes: Vec::new(),
            buffers: Vec::new(),
            keep: 64,
            scratch: vec![0; SCRATCH_SIZE].into_boxed_slice(),
        }
    }

    fn take(&mut self) -> io::Result<Channel> {
        if self.relay == Relay::Splice {
            if let Some(pipe) = self.pipes.pop() {
                return Ok(Channel::Pipe(pipe));
            }
            match Pipe::new(CHANNEL_SIZE) {
                Ok(pipe) => return Ok(Channel::Pipe(pipe)),
                // Out of descriptors: a buffer needs none, so the
                // connection carries on, copying.
                Err(err) if is_out_of_descriptors(&err) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(self.take_buffer())
    }

    /// A buffer, whatever the relay: for bytes already read into the
    /// scratch buffer that the destination did not take.
    fn take_buffer(&mut self) -> Channel {
        Channel::Buffer(self.buffers.pop().unwrap_or_else(|| vec![0; CHANNEL_SIZE].into_boxed_slice()))
    }

    fn give(&mut self, channel: Channel) {
        match channel {
            Channel::Pipe(pipe) if self.pipes.len() < self.keep => self.pipes.push(pipe),
            Channel::Buffer(buf) if self.buffers.len() < self.keep => self.buffers.push(buf),
            Channel::Pipe(_) | Channel::Buffer(_) => {}
        }
    }

    /// Closes every idle channel (the proxy has gone quiet): a pipe is two
    /// descriptors and up to a megabyte of kernel memory.
    pub fn trim(&mut self) {
        self.pipes.clear();
        self.buffers.clear();
    }

    /// Idle channels held.
    pub fn idle(&self) -> usize {
        self.pipes.len() + self.buffers.len()
    }
}

/// `EMFILE` or `ENFILE`: the process or the system has no descriptor left.
/// Looks inside the context that [`sys`](crate::sys) set-up errors carry.
pub fn is_out_of_descriptors(err: &io::Error) -> bool {
    let errno = err.raw_os_error().or_else(|| crate::sys::Error::of(err).and_then(|e| e.raw_os_error()));
    matches!(errno, Some(libc::EMFILE | libc::ENFILE))
}

/// Starts a nonblocking connection to `container` that holds the
/// handshake's last ACK back for the first bytes sent (see the module
/// documentation); [`Conn::pump`] sends it alone if there are none. With
/// `congestion`, the connection uses that congestion control (the
/// `-local-congestion` the proxy resolved at start-up).
pub fn connect(container: SocketAddr, congestion: Option<&[u8]>) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(container), Type::STREAM.nonblocking().cloexec(), None)?;
    crate::sys::hold_handshake_ack(socket.as_fd())?;
    if let Some(name) = congestion {
        // Checked at start-up; should the kernel refuse it now, the
        // connection keeps the default and carries on.
        let _ = socket.set_tcp_congestion(name);
    }
    match socket.connect(&container.into()) {
        Ok(()) => {}
        Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(err) => return Err(err),
    }
    Ok(TcpStream::from_std(socket.into()))
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
    /// A read filled the scratch buffer: this direction carries bulk and
    /// moves through a channel (a pipe: no copy) from now on.
    bulk: bool,
}

/// Readiness of one socket, as edge-triggered events last left it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ready {
    pub readable: bool,
    pub writable: bool,
    /// The peer shut down its side (`EPOLLRDHUP`): its end of file is
    /// queued behind whatever bytes remain, and no new event will say so.
    pub read_closed: bool,
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
    /// The container socket (made by [`connect`]) holds the handshake's
    /// last ACK back until the first pump after the handshake sends bytes,
    /// or the ACK alone.
    ack_held: bool,
    /// A PROXY header still to send, and how much of it went.
    header: Option<(Header, usize)>,
    up: Half,
    down: Half,
}

impl Conn {
    /// A connection between `client` and `server`, a socket [`connect`]
    /// made (so holding the handshake's last ACK).
    pub fn new(mapping: usize, client: TcpStream, server: TcpStream, header: Option<Header>) -> Conn {
        Conn {
            mapping,
            client,
            server,
            client_ready: Ready::default(),
            server_ready: Ready::default(),
            connected: false,
            ack_held: true,
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
        // Whether the container socket sent anything (the held ACK rides along).
        let mut sent = false;
        match self.send_header() {
            Ok(wrote) => sent |= wrote,
            Err(_) => return Progress::Failed,
        }
        if self.header.is_none() {
            let closing = self.down.shut;
            match move_bytes(
                &mut self.up,
                &self.client,
                &self.server,
                &mut self.client_ready,
                &mut self.server_ready,
                pool,
                closing,
            ) {
                // A wake-up that moved nothing leaves the shared counter alone.
                Ok(0) => {}
                Ok(n) => {
                    sent = true;
                    counters.bytes_in.add(n);
                }
                Err(_) => return Progress::Failed,
            }
        }
        if self.ack_held {
            self.ack_held = false;
            // A FIN (shutdown) carries it too; a close to come does as well.
            if !sent && !self.up.shut && crate::sys::send_held_ack(self.server.as_fd()).is_err() {
                return Progress::Failed;
            }
        }
        let closing = self.up.shut;
        match move_bytes(
            &mut self.down,
            &self.server,
            &self.client,
            &mut self.server_ready,
            &mut self.client_ready,
            pool,
            closing,
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

    /// Sends what remains of the PROXY header; says whether any of it went.
    fn send_header(&mut self) -> io::Result<bool> {
        let mut wrote = false;
        while let Some((header, sent)) = &mut self.header {
            if !self.server_ready.writable {
                return Ok(wrote);
            }
            match (&self.server).write(&header.as_bytes()[*sent..]) {
                Ok(n) => {
                    wrote |= n > 0;
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
        Ok(wrote)
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
/// ends; returns how many reached the destination. With `closing` (the
/// other direction has ended), the end of this one closes the connection,
/// and the close sends the FIN that `shutdown` would have.
fn move_bytes(
    half: &mut Half,
    src: &TcpStream,
    dst: &TcpStream,
    src_ready: &mut Ready,
    dst_ready: &mut Ready,
    pool: &mut Pool,
    closing: bool,
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
        if half.channel.is_none() && !half.bulk {
            let mut scratch = std::mem::take(&mut pool.scratch);
            let result = through_scratch(half, src, dst, src_ready, dst_ready, pool, &mut scratch);
            pool.scratch = scratch;
            moved += result?;
            continue;
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
            if closing {
                half.shut = true;
                return Ok(moved);
            }
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

/// One read of `src` into `scratch`, written on to `dst` at once; what
/// `dst` does not take goes into a buffer channel, as if read into it.
/// Returns how many bytes reached `dst`.
///
/// A read shorter than `scratch` emptied the socket, so the next bytes
/// bring a new edge and `src` is marked not readable — no read only to hear
/// `EAGAIN`. Unless the peer has closed: then its end of file waits behind
/// the bytes with no edge to come, so it is read now, and the bytes leave
/// with `MSG_MORE` for the FIN (`shutdown` or close, next) to ride in the
/// same segment.
fn through_scratch(
    half: &mut Half,
    src: &TcpStream,
    dst: &TcpStream,
    src_ready: &mut Ready,
    dst_ready: &mut Ready,
    pool: &mut Pool,
    scratch: &mut [u8],
) -> io::Result<u64> {
    let mut len = 0;
    while len < scratch.len() {
        let mut src = src;
        match src.read(&mut scratch[len..]) {
            Ok(0) => {
                half.eof = true;
                break;
            }
            Ok(n) => {
                len += n;
                if len < scratch.len() && !src_ready.read_closed {
                    src_ready.readable = false;
                    break;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                src_ready.readable = false;
                break;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    if len == scratch.len() {
        half.bulk = true;
    }
    let mut sent = 0;
    while sent < len && dst_ready.writable {
        let more = if half.eof { libc::MSG_MORE } else { 0 };
        match SockRef::from(dst).send_with_flags(&scratch[sent..len], more | libc::MSG_NOSIGNAL) {
            Ok(n) => sent += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => dst_ready.writable = false,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    if sent < len {
        let rest = len - sent;
        let mut channel = pool.take_buffer();
        if let Channel::Buffer(buf) = &mut channel {
            buf[..rest].copy_from_slice(&scratch[sent..len]);
        }
        half.channel = Some(channel);
        half.pending = rest;
        half.offset = 0;
    }
    Ok(sent as u64)
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

    /// A proxied pair on loopback: the client's peer, the connection, the
    /// container's peer (blocking std sockets, as a test drives them).
    fn pair(header: Option<Header>) -> (std::net::TcpStream, Conn, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client_peer = std::net::TcpStream::connect(addr).unwrap();
        let (client, _) = listener.accept().unwrap();
        let server = std::net::TcpStream::connect(addr).unwrap();
        let (server_peer, _) = listener.accept().unwrap();
        for stream in [&client, &server] {
            stream.set_nonblocking(true).unwrap();
        }
        let mut conn = Conn::new(0, TcpStream::from_std(client), TcpStream::from_std(server), header);
        conn.connected = true;
        (client_peer, conn, server_peer)
    }

    /// Pumps as edge-triggered events would, everything marked ready,
    /// until the connection ends or `rounds` pass.
    fn pump_until_done(conn: &mut Conn, pool: &mut Pool, counters: &Counters, rounds: usize) -> Progress {
        for _ in 0..rounds {
            for ready in [&mut conn.client_ready, &mut conn.server_ready] {
                ready.readable = true;
                ready.writable = true;
            }
            match conn.pump(pool, counters) {
                Progress::Open => std::thread::sleep(Duration::from_millis(1)),
                done => return done,
            }
        }
        Progress::Open
    }

    /// Waits until a nonblocking connect is over: `getpeername` answers
    /// once the socket is established.
    fn wait_connected(stream: &TcpStream) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while stream.peer_addr().is_err() {
            assert!(std::time::Instant::now() < deadline, "connect did not finish");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(stream.take_error().unwrap().is_none());
    }

    /// Accepts from a nonblocking listener, trying until `within` passes.
    fn accept_within(listener: &std::net::TcpListener, within: Duration) -> Option<std::net::TcpStream> {
        let deadline = std::time::Instant::now() + within;
        loop {
            match listener.accept() {
                Ok((stream, _)) => return Some(stream),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => panic!("accept: {err}"),
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The listener's side becomes a connection only when the handshake's
    /// last ACK arrives: with it held, there is nothing to accept until
    /// the first bytes go, and then the connection comes with them.
    #[test]
    fn connect_holds_the_handshake_ack_for_the_first_bytes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let mut stream = connect(listener.local_addr().unwrap(), None).unwrap();
        wait_connected(&stream);
        assert!(accept_within(&listener, Duration::from_millis(30)).is_none(), "the ACK went before any byte");
        stream.write_all(b"first bytes").unwrap();
        let mut accepted = accept_within(&listener, Duration::from_secs(1)).expect("accepted with the bytes");
        accepted.set_nonblocking(true).unwrap();
        let mut got = [0u8; 11];
        accepted.read_exact(&mut got).expect("the bytes came with the connection");
        assert_eq!(&got, b"first bytes");
    }

    /// A client with nothing to say (the server speaks first): the first
    /// pump after the handshake sends the held ACK alone, long before its
    /// 200 ms timer would, and the server can greet.
    #[test]
    fn a_client_that_says_nothing_gets_the_held_ack_sent_at_once() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let client_peer = std::net::TcpStream::connect(addr).unwrap();
        let client = accept_within(&listener, Duration::from_secs(1)).unwrap();
        client.set_nonblocking(true).unwrap();
        let server = connect(addr, None).unwrap();
        wait_connected(&server);
        let mut conn = Conn::new(0, TcpStream::from_std(client), server, None);
        conn.connected = true;
        conn.client_ready.readable = true;
        conn.server_ready.writable = true;
        let (mut pool, counters) = (Pool::new(Relay::Splice), Counters::default());
        assert_eq!(conn.pump(&mut pool, &counters), Progress::Open);
        assert!(!conn.ack_held);
        let mut server_peer = accept_within(&listener, Duration::from_millis(100)).expect("the ACK went at once");
        server_peer.write_all(b"220 ready").unwrap();
        drop(client_peer);
    }

    #[test]
    fn a_short_exchange_and_both_ends_of_file_cross_without_a_channel() {
        for relay in [Relay::Splice, Relay::Copy] {
            let (mut client_peer, mut conn, mut server_peer) = pair(None);
            let (mut pool, counters) = (Pool::new(relay), Counters::default());
            client_peer.write_all(b"request").unwrap();
            client_peer.shutdown(Shutdown::Write).unwrap();
            server_peer.write_all(b"reply").unwrap();
            server_peer.shutdown(Shutdown::Write).unwrap();
            assert_eq!(pump_until_done(&mut conn, &mut pool, &counters, 1000), Progress::Done);
            assert_eq!(pool.idle(), 0, "{relay:?}: no pipe or buffer was needed");
            let (mut up, mut down) = (Vec::new(), Vec::new());
            drop(conn);
            server_peer.read_to_end(&mut up).unwrap();
            client_peer.read_to_end(&mut down).unwrap();
            assert_eq!((&up[..], &down[..]), (&b"request"[..], &b"reply"[..]), "{relay:?}");
            assert_eq!((counters.bytes_in.get(), counters.bytes_out.get()), (7, 5));
        }
    }

    #[test]
    fn bytes_the_destination_cannot_take_yet_wait_in_a_buffer_in_order() {
        let (mut client_peer, mut conn, mut server_peer) = pair(None);
        let (mut pool, counters) = (Pool::new(Relay::Splice), Counters::default());
        // Fill the container side until it takes no more: its peer is not reading.
        let filler = vec![b'f'; 64 * 1024];
        let mut queued = 0;
        loop {
            match (&conn.server).write(&filler) {
                Ok(n) => queued += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) => panic!("{err}"),
            }
        }
        client_peer.write_all(b"after the filler").unwrap();
        client_peer.shutdown(Shutdown::Write).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        conn.client_ready = Ready { readable: true, writable: true, read_closed: true };
        conn.server_ready = Ready { readable: false, writable: true, read_closed: false };
        assert_eq!(conn.pump(&mut pool, &counters), Progress::Open);
        assert!(conn.up.eof && !conn.up.shut, "end of file read, not yet passed on");
        assert!(conn.up.pending > 0 && matches!(conn.up.channel, Some(Channel::Buffer(_))));

        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            server_peer.read_to_end(&mut got).unwrap();
            got
        });
        server_peer_closes_after(&mut conn, &mut pool, &counters);
        drop(conn);
        let got = reader.join().unwrap();
        assert_eq!(got.len(), queued + 16);
        assert!(got[..queued].iter().all(|&b| b == b'f'));
        assert_eq!(&got[queued..], b"after the filler");
        let mut rest = Vec::new();
        client_peer.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }

    /// Pumps until the up direction is passed on, then ends the down one.
    fn server_peer_closes_after(conn: &mut Conn, pool: &mut Pool, counters: &Counters) {
        for _ in 0..5000 {
            conn.server_ready.writable = true;
            conn.pump(pool, counters);
            if conn.up.shut {
                // The container's side ends too: the client hears end of file.
                conn.down.eof = true;
                assert_eq!(conn.pump(pool, counters), Progress::Done);
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("the waiting bytes never left");
    }
}
