//! The resolver process: sockets, threads and the configuration file.
//!
//! The main thread follows `dns.json` (and /etc/resolv.conf), checking every
//! 100 ms, and keeps one UDP and one TCP socket on port 53 of every listen
//! address: an address that is not on any interface yet is retried every
//! second, an address that left the configuration has its sockets closed.
//! Each socket has its own thread; a forwarded UDP query gets a thread of
//! its own (so a slow upstream holds up nobody else), a TCP connection too
//! (RFC 1035 §4.2.2 framing, several queries per connection, closed when
//! idle). Query threads look at the file again on each query, and hold the
//! configuration they started with until they have answered, so a change
//! drops nothing in flight.
//!
//! What this module does not do: decide answers (that is [`resolver`]),
//! cache, or retry an upstream server more than once per query.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use dataplane::sys::poll::{poll, Events, PollFd};

use super::message::{Message, Rcode};
use super::resolver::{self, DropReason, Outcome, Transport};
use super::{config_path, parse_resolv_conf, read_config, Config};
use crate::state::Root;

/// The port the resolver answers on, and asks upstream servers on.
const PORT: u16 = 53;
/// Where the host's nameservers are, when the configuration names none.
const RESOLV_CONF: &str = "/etc/resolv.conf";
/// How often the main thread looks at the files and the stop flag.
const CHECK_EVERY: Duration = Duration::from_millis(100);
/// How often binding an address that is not there yet is tried again.
const RETRY_BIND: Duration = Duration::from_secs(1);
/// How long one upstream server has to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a TCP connection may sit without a whole query.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// How often socket threads look at their stop flag.
const SOCKET_POLL: Duration = Duration::from_millis(100);
/// Forwarded UDP queries in flight at once; beyond, SERVFAIL at once.
const MAX_FORWARDS: usize = 256;
/// TCP connections at once; beyond, new ones are closed.
const MAX_TCP_CONNECTIONS: usize = 64;
/// Room for any datagram.
const DATAGRAM_LEN: usize = 65_536;

/// Runs the resolver for `root` until SIGTERM or SIGINT: answers on port 53
/// of the addresses in `WHARF_ROOT/run/dns.json`, following the file as it
/// changes. SIGUSR1 prints the counters on stderr. Errors only when it
/// cannot start (signal handlers) or may not bind port 53 (not root).
pub fn serve(root: &Root) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    let dump = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).map_err(|e| format!("install the signal handlers: {e}"))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, dump.clone())
        .map_err(|e| format!("install the signal handlers: {e}"))?;
    let options =
        Options { config: config_path(root), resolv_conf: PathBuf::from(RESOLV_CONF), port: PORT, upstream_port: PORT };
    run(&options, &stop, &dump)
}

/// Where the files are and which ports to use (other than 53 in tests).
#[derive(Debug, Clone)]
struct Options {
    config: PathBuf,
    resolv_conf: PathBuf,
    port: u16,
    upstream_port: u16,
}

/// What the resolver counts; `name value` lines on SIGUSR1 and at exit.
#[derive(Debug, Clone, Copy)]
enum Counter {
    UdpQueries,
    TcpQueries,
    TcpConnections,
    LocalAnswers,
    Forwarded,
    UpstreamAnswers,
    UpstreamTimeouts,
    UpstreamErrors,
    UpstreamTcpRetries,
    Servfail,
    Formerr,
    Notimp,
    DropUnreadable,
    DropNotQuery,
    DropBusy,
    TcpRefused,
    SendErrors,
}

const COUNTERS: [(Counter, &str); 17] = [
    (Counter::UdpQueries, "udp_queries"),
    (Counter::TcpQueries, "tcp_queries"),
    (Counter::TcpConnections, "tcp_connections"),
    (Counter::LocalAnswers, "local_answers"),
    (Counter::Forwarded, "forwarded"),
    (Counter::UpstreamAnswers, "upstream_answers"),
    (Counter::UpstreamTimeouts, "upstream_timeouts"),
    (Counter::UpstreamErrors, "upstream_errors"),
    (Counter::UpstreamTcpRetries, "upstream_tcp_retries"),
    (Counter::Servfail, "servfail"),
    (Counter::Formerr, "formerr"),
    (Counter::Notimp, "notimp"),
    (Counter::DropUnreadable, "drop_unreadable"),
    (Counter::DropNotQuery, "drop_not_query"),
    (Counter::DropBusy, "drop_busy"),
    (Counter::TcpRefused, "tcp_refused"),
    (Counter::SendErrors, "send_errors"),
];

#[derive(Debug, Default)]
struct Counters([AtomicU64; COUNTERS.len()]);

impl Counters {
    fn add(&self, counter: Counter) {
        self.0[counter as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self, counter: Counter) -> u64 {
        self.0[counter as usize].load(Ordering::Relaxed)
    }

    fn render(&self) -> String {
        COUNTERS.iter().map(|&(counter, name)| format!("{name} {}\n", self.get(counter))).collect()
    }
}

/// What identifies a version of a file: a rename changes the inode, a
/// rewrite the size or the modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime: meta.mtime(),
        mtime_nsec: meta.mtime_nsec(),
    })
}

/// The configuration as query threads use it.
#[derive(Debug, Default)]
struct Snapshot {
    config: Config,
    upstream: Vec<SocketAddr>,
}

/// The files as last read, and the snapshot made from them.
#[derive(Debug)]
struct Watch {
    options: Options,
    /// `None` until first read; `Some(None)` for a missing file.
    config_stamp: Option<Option<Stamp>>,
    resolv_stamp: Option<Option<Stamp>>,
    config: Config,
    resolv: Vec<IpAddr>,
    snapshot: Arc<Snapshot>,
}

impl Watch {
    /// Rereads what changed since the last look (resolv.conf only if
    /// `resolv_too`) and gives the current snapshot. A file that does not
    /// parse leaves the previous configuration in place.
    fn refresh(&mut self, resolv_too: bool) -> Arc<Snapshot> {
        let mut changed = false;
        let now = stamp(&self.options.config);
        if self.config_stamp != Some(now) {
            self.config_stamp = Some(now);
            match read_config(&self.options.config) {
                Ok(config) => {
                    changed |= config != self.config;
                    self.config = config;
                }
                Err(e) => dataplane::stderr_line!("wharf dns: {e}; keeping the previous configuration"),
            }
        }
        if resolv_too {
            let now = stamp(&self.options.resolv_conf);
            if self.resolv_stamp != Some(now) {
                self.resolv_stamp = Some(now);
                match std::fs::read_to_string(&self.options.resolv_conf) {
                    Ok(text) => {
                        let resolv = parse_resolv_conf(&text);
                        changed |= resolv != self.resolv;
                        self.resolv = resolv;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        changed |= !self.resolv.is_empty();
                        self.resolv.clear();
                    }
                    Err(e) => dataplane::stderr_line!("wharf dns: read {}: {e}", self.options.resolv_conf.display()),
                }
            }
        }
        if changed {
            let upstream = self
                .config
                .upstream_servers(&self.resolv)
                .into_iter()
                .map(|server| SocketAddr::new(server.ip(), self.options.upstream_port))
                .collect();
            self.snapshot = Arc::new(Snapshot { config: self.config.clone(), upstream });
        }
        self.snapshot.clone()
    }
}

/// What every thread shares.
#[derive(Debug)]
struct Shared {
    watch: Mutex<Watch>,
    counters: Counters,
    forwards: AtomicUsize,
    tcp_connections: AtomicUsize,
}

impl Shared {
    fn snapshot(&self, resolv_too: bool) -> Arc<Snapshot> {
        self.watch.lock().unwrap_or_else(PoisonError::into_inner).refresh(resolv_too)
    }

    /// Takes one of `limit` slots in `slots`; false when all are taken.
    fn take(slots: &AtomicUsize, limit: usize) -> bool {
        slots.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1)).is_ok()
    }

    /// Counts what `handle` decided.
    fn count(&self, outcome: &Outcome) {
        self.counters.add(match outcome {
            Outcome::Local(_) => Counter::LocalAnswers,
            Outcome::Error(_, Rcode::NotImp) => Counter::Notimp,
            Outcome::Error(..) => Counter::Formerr,
            Outcome::Forward => Counter::Forwarded,
            Outcome::Drop(DropReason::Unreadable) => Counter::DropUnreadable,
            Outcome::Drop(DropReason::NotAQuery) => Counter::DropNotQuery,
        })
    }

    /// Asks the upstream servers in turn; the first answer, else SERVFAIL
    /// (`None` only if the query has no readable header, which `handle`
    /// has ruled out).
    fn forward(&self, upstream: &[SocketAddr], query: &[u8], transport: Transport) -> Option<Vec<u8>> {
        for &server in upstream {
            match forward_udp(server, query) {
                Ok(Some(reply)) => {
                    self.counters.add(Counter::UpstreamAnswers);
                    let truncated = Message::new_checked(&reply[..]).is_ok_and(|m| m.truncated());
                    if transport == Transport::Tcp && truncated {
                        self.counters.add(Counter::UpstreamTcpRetries);
                        if let Ok(full) = forward_tcp(server, query) {
                            return Some(full);
                        }
                    }
                    return Some(reply);
                }
                Ok(None) => self.counters.add(Counter::UpstreamTimeouts),
                Err(_) => self.counters.add(Counter::UpstreamErrors),
            }
        }
        self.counters.add(Counter::Servfail);
        resolver::servfail(query)
    }
}

/// Sends `query` to `server` from a new socket on a random port, and waits
/// for a reply with its id.
fn forward_udp(server: SocketAddr, query: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local)?;
    socket.connect(server)?;
    socket.send(query)?;
    let deadline = Instant::now() + UPSTREAM_TIMEOUT;
    let mut buf = vec![0; DATAGRAM_LEN];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        socket.set_read_timeout(Some(left))?;
        match socket.recv(&mut buf) {
            Ok(len) if resolver::is_reply_to(query, &buf[..len]) => return Ok(Some(buf[..len].to_vec())),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Asks `server` over TCP, after its UDP answer came truncated.
fn forward_tcp(server: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&server, UPSTREAM_TIMEOUT)?;
    stream.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    stream.set_write_timeout(Some(UPSTREAM_TIMEOUT))?;
    write_framed(&mut stream, query)?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut reply = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply)?;
    if resolver::is_reply_to(query, &reply) {
        Ok(reply)
    } else {
        Err(io::Error::other("the TCP answer does not match the query"))
    }
}

/// Writes one message behind its two-byte length (RFC 1035 §4.2.2).
fn write_framed(stream: &mut impl Write, message: &[u8]) -> io::Result<()> {
    let len = u16::try_from(message.len()).map_err(|_| io::Error::other("message longer than 65535 bytes"))?;
    let mut framed = Vec::with_capacity(2 + message.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted)
}

/// Serves one UDP socket until `stop`.
fn serve_udp(shared: Arc<Shared>, socket: Arc<UdpSocket>, stop: Arc<AtomicBool>) {
    let mut buf = vec![0; DATAGRAM_LEN];
    while !stop.load(Ordering::Relaxed) {
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            Err(e) if is_timeout(&e) => continue,
            Err(_) => {
                thread::sleep(SOCKET_POLL);
                continue;
            }
        };
        shared.counters.add(Counter::UdpQueries);
        let query = &buf[..len];
        let snapshot = shared.snapshot(false);
        let outcome = resolver::handle(&snapshot.config, query, from.ip(), Transport::Udp);
        shared.count(&outcome);
        let reply = match outcome {
            Outcome::Local(bytes) | Outcome::Error(bytes, _) => bytes,
            Outcome::Drop(_) => continue,
            Outcome::Forward => match forward_in_background(&shared, &socket, &snapshot, query, from) {
                Ok(()) => continue,
                Err(()) => {
                    shared.counters.add(Counter::DropBusy);
                    match resolver::servfail(query) {
                        Some(bytes) => bytes,
                        None => continue,
                    }
                }
            },
        };
        if socket.send_to(&reply, from).is_err() {
            shared.counters.add(Counter::SendErrors);
        }
    }
}

/// Forwards a UDP query on a thread of its own, which answers from
/// `socket`; `Err` when too many are in flight already.
fn forward_in_background(
    shared: &Arc<Shared>,
    socket: &Arc<UdpSocket>,
    snapshot: &Arc<Snapshot>,
    query: &[u8],
    from: SocketAddr,
) -> Result<(), ()> {
    if !Shared::take(&shared.forwards, MAX_FORWARDS) {
        return Err(());
    }
    let (shared, socket, snapshot, query) = (shared.clone(), socket.clone(), snapshot.clone(), query.to_vec());
    let spawned = thread::Builder::new().name("dns-forward".into()).spawn({
        let shared = shared.clone();
        move || {
            if let Some(reply) = shared.forward(&snapshot.upstream, &query, Transport::Udp) {
                if socket.send_to(&reply, from).is_err() {
                    shared.counters.add(Counter::SendErrors);
                }
            }
            shared.forwards.fetch_sub(1, Ordering::AcqRel);
        }
    });
    spawned.map(drop).map_err(|_| {
        shared.forwards.fetch_sub(1, Ordering::AcqRel);
    })
}

/// Accepts TCP connections until `stop`, each served on its own thread.
fn serve_tcp(shared: Arc<Shared>, listener: TcpListener, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [PollFd::new(&listener, Events::IN)];
        if poll(&mut fds, Some(SOCKET_POLL)).is_err() || !fds[0].is_readable() {
            continue;
        }
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if is_timeout(&e) => continue,
            Err(_) => {
                // Out of descriptors, most likely: let some close.
                thread::sleep(SOCKET_POLL);
                continue;
            }
        };
        if !Shared::take(&shared.tcp_connections, MAX_TCP_CONNECTIONS) {
            shared.counters.add(Counter::TcpRefused);
            continue;
        }
        shared.counters.add(Counter::TcpConnections);
        let spawned = thread::Builder::new().name("dns-tcp".into()).spawn({
            let (shared, stop) = (shared.clone(), stop.clone());
            move || {
                serve_connection(&shared, stream, peer, &stop);
                shared.tcp_connections.fetch_sub(1, Ordering::AcqRel);
            }
        });
        if spawned.is_err() {
            shared.tcp_connections.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Answers the queries on one TCP connection, in order, until the client
/// closes it, it sits idle for [`TCP_IDLE`], or `stop`.
fn serve_connection(shared: &Shared, mut stream: TcpStream, peer: SocketAddr, stop: &AtomicBool) {
    if stream.set_nonblocking(false).is_err()
        || stream.set_read_timeout(Some(SOCKET_POLL)).is_err()
        || stream.set_write_timeout(Some(TCP_IDLE)).is_err()
    {
        return;
    }
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0; usize::from(u16::MAX)];
    loop {
        let mut len = [0u8; 2];
        if !matches!(read_full(&mut stream, &mut len, stop), Ok(true)) {
            return;
        }
        let query = &mut buf[..usize::from(u16::from_be_bytes(len))];
        if !matches!(read_full(&mut stream, query, stop), Ok(true)) {
            return;
        }
        shared.counters.add(Counter::TcpQueries);
        let snapshot = shared.snapshot(false);
        let outcome = resolver::handle(&snapshot.config, query, peer.ip(), Transport::Tcp);
        shared.count(&outcome);
        let reply = match outcome {
            Outcome::Local(bytes) | Outcome::Error(bytes, _) => Some(bytes),
            Outcome::Forward => shared.forward(&snapshot.upstream, query, Transport::Tcp),
            Outcome::Drop(_) => None,
        };
        if let Some(reply) = reply {
            if write_framed(&mut stream, &reply).is_err() {
                shared.counters.add(Counter::SendErrors);
                return;
            }
        }
    }
}

/// Fills `buf` from `stream`: `Ok(false)` if the peer closed before the
/// first byte; an error if it closed in the middle, `stop` was set, or
/// nothing whole came within [`TCP_IDLE`].
fn read_full(stream: &mut TcpStream, buf: &mut [u8], stop: &AtomicBool) -> io::Result<bool> {
    let deadline = Instant::now() + TCP_IDLE;
    let mut got = 0;
    while got < buf.len() {
        if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
            return Err(io::ErrorKind::TimedOut.into());
        }
        match stream.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The sockets of one listen address and their threads.
#[derive(Debug)]
struct Listener {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Listener {
    /// Binds UDP and TCP on `addr:port` and starts serving them.
    fn start(shared: &Arc<Shared>, addr: Ipv4Addr, port: u16) -> io::Result<Listener> {
        let udp = UdpSocket::bind((addr, port))?;
        udp.set_read_timeout(Some(SOCKET_POLL))?;
        let tcp = TcpListener::bind((addr, port))?;
        tcp.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut listener = Listener { stop: stop.clone(), threads: Vec::new() };
        let udp = Arc::new(udp);
        let (s, st) = (shared.clone(), stop.clone());
        let spawned = thread::Builder::new().name(format!("dns-udp-{addr}")).spawn(move || serve_udp(s, udp, st));
        listener.threads.push(spawned?);
        let (s, st) = (shared.clone(), stop);
        let spawned = thread::Builder::new().name(format!("dns-tcp-{addr}")).spawn(move || serve_tcp(s, tcp, st));
        // On error, dropping `listener` stops the UDP thread.
        listener.threads.push(spawned?);
        Ok(listener)
    }
}

impl Drop for Listener {
    /// Stops the socket threads and waits for them: the sockets are closed
    /// when this returns (except that a forwarded query still in flight
    /// keeps the UDP socket until it has answered).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The main loop: follows the files, keeps a [`Listener`] per listen
/// address, until `stop`.
fn run(options: &Options, stop: &AtomicBool, dump: &AtomicBool) -> Result<(), String> {
    let watch = Watch {
        options: options.clone(),
        config_stamp: None,
        resolv_stamp: None,
        config: Config::default(),
        resolv: Vec::new(),
        snapshot: Arc::new(Snapshot::default()),
    };
    let shared = Arc::new(Shared {
        watch: Mutex::new(watch),
        counters: Counters::default(),
        forwards: AtomicUsize::new(0),
        tcp_connections: AtomicUsize::new(0),
    });
    let port = options.port;
    let mut listeners: BTreeMap<Ipv4Addr, Listener> = BTreeMap::new();
    // Addresses not bound yet: when to try next, and the last error reported.
    let mut waiting: BTreeMap<Ipv4Addr, (Instant, String)> = BTreeMap::new();
    let mut ready = false;
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        let snapshot = shared.snapshot(true);
        let wanted: BTreeSet<Ipv4Addr> = snapshot.config.listen.iter().copied().collect();
        listeners.retain(|addr, _| {
            let keep = wanted.contains(addr);
            if !keep {
                dataplane::stderr_line!("wharf dns: stopped listening on {addr}:{port}");
            }
            keep
        });
        waiting.retain(|addr, _| wanted.contains(addr));
        let now = Instant::now();
        let mut fatal = None;
        let unbound: Vec<Ipv4Addr> = wanted.iter().copied().filter(|addr| !listeners.contains_key(addr)).collect();
        for addr in unbound {
            let (next_try, reported) = waiting.entry(addr).or_insert_with(|| (now, String::new()));
            if now < *next_try {
                continue;
            }
            match Listener::start(&shared, addr, port) {
                Ok(listener) => {
                    dataplane::stderr_line!("wharf dns: listening on {addr}:{port} (UDP and TCP)");
                    listeners.insert(addr, listener);
                    waiting.remove(&addr);
                }
                // Fatal only at the start: once it serves some network, the
                // resolver keeps serving it, and retries this one as below.
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied && listeners.is_empty() && !ready => {
                    fatal = Some(format!("listen on {addr}:{port}: {e} (the resolver needs root for port {port})"));
                    break;
                }
                Err(e) => {
                    *next_try = now + RETRY_BIND;
                    let text = e.to_string();
                    if *reported != text {
                        dataplane::stderr_line!(
                            "wharf dns: cannot listen on {addr}:{port} yet ({text}); retrying every second"
                        );
                        *reported = text;
                    }
                }
            }
        }
        if let Some(error) = fatal {
            break Err(error);
        }
        if !ready {
            // After the first attempt at every address, so that a caller
            // waiting for this line finds the sockets there.
            dataplane::stdout_line!("wharf dns: ready: following {}", options.config.display());
            let _ = io::stdout().flush();
            ready = true;
        }
        if dump.swap(false, Ordering::Relaxed) {
            dataplane::stderr_text!("{}", shared.counters.render());
        }
        thread::sleep(CHECK_EVERY);
    };
    drop(listeners);
    dataplane::stderr_text!("{}", shared.counters.render());
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::message::{Class, Header, Name, Opcode, Question, Record, Repr, Type};
    use crate::dns::{write_config, Endpoint};
    use crate::state::Scratch;

    /// A port for this test process; tests use different 127.x addresses.
    fn test_port() -> u16 {
        20_000 + (std::process::id() % 20_000) as u16
    }

    fn query(id: u16, name: &str, qtype: Type) -> Vec<u8> {
        let mut repr = Repr::new(Header {
            id,
            response: false,
            opcode: Opcode::Query,
            authoritative: false,
            truncated: false,
            recursion_desired: true,
            recursion_available: false,
            authentic_data: false,
            checking_disabled: false,
            rcode: Rcode::NoError,
        });
        repr.questions.push(Question { name: Name::from_dotted(name).unwrap(), qtype, qclass: Class::In });
        repr.emit().unwrap()
    }

    /// Asks `server` from `source` over UDP; `None` if nothing comes within a second.
    fn ask_udp(source: Ipv4Addr, server: SocketAddr, query: &[u8]) -> Option<Repr> {
        let socket = UdpSocket::bind((source, 0)).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        socket.send_to(query, server).unwrap();
        let mut buf = [0; 4096];
        let len = socket.recv(&mut buf).ok()?;
        Some(Repr::parse(&buf[..len]).unwrap())
    }

    /// A fake upstream: answers every query with an A record 192.0.2.99.
    fn fake_upstream(addr: SocketAddr) -> Arc<AtomicBool> {
        let socket = UdpSocket::bind(addr).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let done = stop.clone();
        thread::spawn(move || {
            let mut buf = [0; 4096];
            while !done.load(Ordering::Relaxed) {
                let Ok((len, from)) = socket.recv_from(&mut buf) else { continue };
                let query = Repr::parse(&buf[..len]).unwrap();
                let mut reply = Repr::new(Header::reply_to(&query.header));
                reply.answers.push(Record::a(query.questions[0].name.clone(), Ipv4Addr::new(192, 0, 2, 99), 30));
                reply.questions = query.questions;
                socket.send_to(&reply.emit().unwrap(), from).unwrap();
            }
        });
        stop
    }

    #[test]
    fn serves_follows_the_config_and_stops() {
        let scratch = Scratch::new("dns-server");
        let root = scratch.root();
        let port = test_port();
        let (gateway, web, db) =
            (Ipv4Addr::new(127, 53, 0, 1), Ipv4Addr::new(127, 53, 0, 2), Ipv4Addr::new(127, 53, 0, 3));
        let upstream = Ipv4Addr::new(127, 53, 0, 9);
        let upstream_stop = fake_upstream((upstream, port).into());
        let endpoint = |network: &str, container: &str, name: &str, ip| Endpoint {
            network: network.into(),
            container: container.into(),
            name: name.into(),
            aliases: vec![],
            ip,
        };
        let mut config = Config {
            listen: vec![gateway],
            endpoints: vec![endpoint("front", "aa", "web", web), endpoint("back", "bb", "db", db)],
            upstream: vec![IpAddr::V4(upstream)],
        };
        write_config(&root, &config).unwrap();
        let options = Options {
            config: config_path(&root),
            resolv_conf: scratch.0.join("resolv.conf"),
            port,
            upstream_port: port,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let server = thread::spawn({
            let stop = stop.clone();
            move || run(&options, &stop, &AtomicBool::new(false))
        });
        let server_addr = SocketAddr::from((gateway, port));
        let answered = |source, name: &str| {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if let Some(reply) = ask_udp(source, server_addr, &query(7, name, Type::A)) {
                    return reply;
                }
                assert!(Instant::now() < deadline, "no answer for {name}");
            }
        };
        // Own name: local; a name on another network: forwarded to the fake.
        let reply = answered(web, "web");
        assert_eq!(reply.answers[0].ipv4(), Some(web));
        assert_eq!(reply.answers[0].ttl, 600);
        let reply = answered(web, "db");
        assert_eq!(reply.answers[0].ipv4(), Some(Ipv4Addr::new(192, 0, 2, 99)));
        // db joins front: seen without a restart.
        config.endpoints.push(endpoint("front", "bb", "db", Ipv4Addr::new(127, 53, 0, 4)));
        write_config(&root, &config).unwrap();
        let reply = answered(web, "db");
        assert_eq!(reply.answers[0].ipv4(), Some(Ipv4Addr::new(127, 53, 0, 4)));
        // TCP: two queries on one connection.
        // (From 127.0.0.1, the source the kernel picks on lo: a container on front.)
        config.endpoints.push(endpoint("front", "cc", "client", Ipv4Addr::LOCALHOST));
        write_config(&root, &config).unwrap();
        let mut stream = TcpStream::connect_timeout(&server_addr, Duration::from_secs(2)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for (id, name, expect) in [(1, "web", web), (2, "example.com", Ipv4Addr::new(192, 0, 2, 99))] {
            write_framed(&mut stream, &query(id, name, Type::A)).unwrap();
            let mut len = [0; 2];
            stream.read_exact(&mut len).unwrap();
            let mut reply = vec![0; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut reply).unwrap();
            let reply = Repr::parse(&reply).unwrap();
            assert_eq!(reply.header.id, id);
            assert_eq!(reply.answers[0].ipv4(), Some(expect), "{name} over TCP");
        }
        // No upstream answers (nothing listens there): SERVFAIL.
        config.upstream = vec![IpAddr::V4(Ipv4Addr::new(127, 53, 0, 10))];
        write_config(&root, &config).unwrap();
        let reply = answered(web, "example.org");
        assert_eq!(reply.header.rcode, Rcode::ServFail);
        // The address leaves the config: its sockets close.
        config.listen.clear();
        write_config(&root, &config).unwrap();
        let closed = (0..50).any(|_| {
            thread::sleep(Duration::from_millis(100));
            TcpStream::connect_timeout(&server_addr, Duration::from_millis(200)).is_err()
        });
        assert!(closed, "still listening on {server_addr}");
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap().unwrap();
        upstream_stop.store(true, Ordering::Relaxed);
    }

    #[test]
    fn counters_render_every_name() {
        let counters = Counters::default();
        counters.add(Counter::Forwarded);
        counters.add(Counter::Forwarded);
        let text = counters.render();
        assert_eq!(text.lines().count(), COUNTERS.len());
        assert!(text.contains("forwarded 2\n"), "{text}");
        for (i, (counter, _)) in COUNTERS.iter().enumerate() {
            assert_eq!(*counter as usize, i, "COUNTERS in enum order");
        }
    }
}
