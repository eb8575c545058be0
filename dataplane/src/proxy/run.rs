//! The proxy's event loop: one thread, one `epoll` (through mio), every
//! listener, connection and flow of every mapping on it. No thread per
//! connection, no lock, no allocation per packet or per read.
//!
//! Start-up opens every listener first (or adopts the inherited fd 4) and
//! only then reports ready; any failure is reported with what failed on
//! which address, and nothing keeps running. SIGTERM and SIGINT stop the
//! listeners and let open TCP connections finish for the drain timeout;
//! a second signal stops at once. SIGUSR1 writes the counters to stderr.
//!
//! What this module does not do: parse flags ([`args`](super::args)), move
//! bytes ([`tcp`], [`udp`](super::udp)).

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use socket2::{Domain, SockRef, Socket, TcpKeepalive, Type};

use super::args::{Congestion, Options, DEFAULT_LOCAL_CONGESTION, MAX_DURATION};
use super::flows::FlowTable;
use super::mapping::Protocol;
use super::proxy_protocol::{Header, Transport};
use super::stats::{self, Counters};
use super::tcp::{self, Conn, Pool, Progress, Ready};
use super::udp::{Udp, UdpListener};
use crate::sys::epoll;
use crate::sys::udp::{UdpOptions, UdpSocket};

/// How long a worker goes without events before it gives its idle pipes
/// and buffers back.
const QUIET: Duration = Duration::from_secs(1);

const SIGNAL_TERM: Token = Token(0);
const SIGNAL_USR1: Token = Token(1);
const STATS: Token = Token(2);
const WAKE: Token = Token(3);
const LISTENER_BASE: usize = 16;
/// Connection `slot` uses `CONN_BASE + 2 × slot` (client) and `+ 1` (container).
const CONN_BASE: usize = 1 << 32;
const FLOW_BASE: usize = 1 << 48;

/// TCP keepalive on both sockets of a connection, as Go's default dialer
/// and listener set it.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// A start-up failure, as the user and dockerd see it.
#[derive(Debug)]
pub struct StartError(pub String);

/// One host port, by its index (the listener token's offset).
pub(crate) enum Listener {
    Tcp {
        mapping: usize,
        container: SocketAddr,
        socket: TcpListener,
        /// Bound to a loopback address, the listener carries the local
        /// congestion control, and accepted sockets inherit it; otherwise
        /// a client from a loopback address gets it after `accept`.
        local_listener: bool,
    },
    Udp(UdpListener),
    /// A UDP port served by worker 0, seen from another worker.
    Elsewhere,
}

/// A proxy that is listening.
pub struct Proxy {
    options: Options,
    poll: Poll,
    listeners: Vec<Listener>,
    conns: Vec<Option<Conn>>,
    free_slots: Vec<usize>,
    pool: Pool,
    udp: Udp,
    counters: Arc<[Counters]>,
    /// The congestion control for connections within the host, as
    /// `-local-congestion` resolved at start-up; `None`: the kernel's.
    congestion: Option<Box<[u8]>>,
    /// Worker 0 (the main thread) takes the signals; the others have none.
    signals: Option<Signals>,
    stats: Option<(UnixListener, PathBuf)>,
    /// The drain order, from worker 0 to the others.
    control: Arc<Control>,
    /// Wakes this worker's poll for the drain order.
    waker: Arc<Waker>,
    /// Worker 0: the other workers' wakers and threads.
    peer_wakers: Vec<Arc<Waker>>,
    workers: Vec<std::thread::JoinHandle<io::Result<Stop>>>,
    /// Listeners that ran out of descriptors while accepting, to retry.
    accept_backlog: Vec<usize>,
    /// UDP listeners and flows (their tokens) left with datagrams to read
    /// when their turn ended: read again after the next poll, which then
    /// does not wait. A flood on one must not starve the others.
    udp_again: Vec<usize>,
    /// Clients accepted when no descriptor was left for their container
    /// connection, oldest first: they wait (no listener accepts meanwhile)
    /// until a connection closes and frees one.
    waiting: std::collections::VecDeque<Waiting>,
    /// A descriptor held back (on /dev/null) for the stats socket, to be
    /// given up when connections have taken every other one.
    reserve_fd: Option<std::fs::File>,
}

/// How a worker's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The drain finished: connections done or the deadline passed.
    Drained,
    /// A second signal: stop without waiting.
    Now,
}

/// What the workers share besides the counters.
#[derive(Debug, Default)]
struct Control {
    /// Set once: when the drain ends, whatever is still open.
    drain_deadline: Mutex<Option<Instant>>,
}

impl Control {
    fn deadline(&self) -> Option<Instant> {
        *self.drain_deadline.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// An accepted client without its container connection yet.
struct Waiting {
    listener: usize,
    mapping: usize,
    container: SocketAddr,
    client: TcpStream,
    header: Option<Header>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("mappings", &self.options.mappings.len()).finish_non_exhaustive()
    }
}

struct Signals {
    term: UnixStream,
    usr1: UnixStream,
}

impl Proxy {
    /// Opens every listener (adopting `inherited`, fd 4, for the single
    /// mapping when asked) and the stats socket.
    pub fn start(options: Options, inherited: Option<OwnedFd>) -> Result<Proxy, StartError> {
        let poll = Poll::new().map_err(|err| StartError(format!("epoll: {err}")))?;
        let registry = poll.registry();
        let signals = Signals::register(registry).map_err(|err| StartError(format!("signal handlers: {err}")))?;
        let waker = Arc::new(Waker::new(registry, WAKE).map_err(|err| StartError(format!("epoll waker: {err}")))?);
        let congestion = local_congestion(&options.local_congestion)?;
        let mut listeners = Vec::new();
        let mut inherited = if options.use_listen_fd {
            Some(inherited.ok_or_else(|| StartError("-use-listen-fd: no socket was inherited as fd 4".into()))?)
        } else {
            None
        };
        for (index, mapping) in options.mappings.iter().enumerate() {
            for (host, container) in mapping.pairs() {
                let token = Token(LISTENER_BASE + listeners.len());
                match mapping.proto {
                    Protocol::Tcp => {
                        let socket = match inherited.take() {
                            Some(fd) => adopt_tcp(fd)?,
                            None => listen_tcp(host)?,
                        };
                        let mut socket = socket;
                        register_listener(&poll, &mut socket, token)
                            .map_err(|err| StartError(format!("epoll add {host}: {err}")))?;
                        let local_listener = congestion.as_deref().is_some_and(|name| {
                            let bound = socket.local_addr().unwrap_or(host);
                            is_loopback(bound) && SockRef::from(&socket).set_tcp_congestion(name).is_ok()
                        });
                        listeners.push(Listener::Tcp { mapping: index, container, socket, local_listener });
                    }
                    Protocol::Udp => {
                        let socket = match inherited.take() {
                            Some(fd) => adopt_udp(fd)?,
                            None => bind_udp(host)?,
                        };
                        registry
                            .register(&mut SourceFd(&socket.as_raw_fd()), token, Interest::READABLE)
                            .map_err(|err| StartError(format!("epoll add {host}: {err}")))?;
                        listeners.push(Listener::Udp(UdpListener { mapping: index, socket, container }));
                    }
                    Protocol::Sctp => return Err(sctp_error(host)),
                }
            }
        }
        let stats = match &options.stats_socket {
            Some(path) => {
                let mut listener = bind_stats(path)?;
                registry
                    .register(&mut listener, STATS, Interest::READABLE)
                    .map_err(|err| StartError(format!("epoll add {}: {err}", path.display())))?;
                Some((listener, path.clone()))
            }
            None => None,
        };
        let flows = FlowTable::new(options.udp_max_flows, options.udp_timeout);
        let udp = Udp::new(flows, options.proxy_protocol, FLOW_BASE);
        Ok(Proxy {
            counters: (0..options.mappings.len()).map(|_| Counters::default()).collect::<Vec<_>>().into(),
            pool: Pool::new(options.tcp_relay),
            congestion,
            options,
            poll,
            listeners,
            conns: Vec::new(),
            free_slots: Vec::new(),
            udp,
            signals: Some(signals),
            stats,
            control: Arc::new(Control::default()),
            waker,
            peer_wakers: Vec::new(),
            workers: Vec::new(),
            accept_backlog: Vec::new(),
            udp_again: Vec::new(),
            waiting: std::collections::VecDeque::new(),
            reserve_fd: std::fs::File::open("/dev/null").ok(),
        })
    }

    /// The counters, one line per mapping.
    pub fn render_stats(&self) -> String {
        stats::render(&self.options.mappings, &self.counters)
    }

    /// Starts `threads - 1` more workers for TCP connections, each with its
    /// own epoll on copies of the same listeners; UDP, the stats socket and
    /// the signals stay with this one. Call before reporting ready: the
    /// workers' descriptors then count as the idle ones. With no TCP port
    /// there is nothing for them to do, and none starts.
    pub fn spawn_workers(&mut self, threads: usize) -> Result<(), StartError> {
        if !self.listeners.iter().any(|listener| matches!(listener, Listener::Tcp { .. })) {
            return Ok(());
        }
        for _ in 1..threads {
            let worker = self.tcp_worker().map_err(|err| StartError(format!("start a worker thread: {err}")))?;
            self.peer_wakers.push(Arc::clone(&worker.waker));
            let handle = std::thread::Builder::new()
                .name("wharf-proxy".into())
                .spawn(move || worker.serve())
                .map_err(|err| StartError(format!("start a worker thread: {err}")))?;
            self.workers.push(handle);
        }
        Ok(())
    }

    /// Runs until SIGTERM or SIGINT, then drains; returns when done.
    pub fn run(mut self) -> io::Result<()> {
        let workers = std::mem::take(&mut self.workers);
        let stop = self.serve()?;
        if stop == Stop::Drained {
            // Each worker ends when its connections do, or at the deadline.
            for handle in workers {
                let _ = handle.join();
            }
        }
        Ok(())
    }

    /// A worker for TCP only, on copies of this one's TCP listeners.
    fn tcp_worker(&self) -> io::Result<Proxy> {
        let poll = Poll::new()?;
        let mut listeners = Vec::with_capacity(self.listeners.len());
        for (index, listener) in self.listeners.iter().enumerate() {
            listeners.push(match listener {
                Listener::Tcp { mapping, container, socket, local_listener } => {
                    let copy = SockRef::from(socket).try_clone()?;
                    let mut socket = TcpListener::from_std(copy.into());
                    register_listener(&poll, &mut socket, Token(LISTENER_BASE + index))?;
                    Listener::Tcp { mapping: *mapping, container: *container, socket, local_listener: *local_listener }
                }
                Listener::Udp(_) | Listener::Elsewhere => Listener::Elsewhere,
            });
        }
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        Ok(Proxy {
            options: self.options.clone(),
            poll,
            listeners,
            conns: Vec::new(),
            free_slots: Vec::new(),
            pool: Pool::new(self.options.tcp_relay),
            congestion: self.congestion.clone(),
            udp: Udp::new(FlowTable::new(1, self.options.udp_timeout), None, FLOW_BASE),
            counters: self.counters.clone(),
            signals: None,
            stats: None,
            control: self.control.clone(),
            waker,
            peer_wakers: Vec::new(),
            workers: Vec::new(),
            accept_backlog: Vec::new(),
            udp_again: Vec::new(),
            waiting: std::collections::VecDeque::new(),
            reserve_fd: None,
        })
    }

    /// One worker's loop; on the main thread also the signals.
    fn serve(mut self) -> io::Result<Stop> {
        let mut events = Events::with_capacity(1024);
        let mut draining: Option<Instant> = None;
        // When the loop last had an event: the pools are trimmed after a
        // second without one (a poll can return early and empty, for a UDP
        // flow's expiry or a backed-up accept, while connections are busy).
        let mut last_event = Instant::now();
        loop {
            let now = Instant::now();
            if let Some(deadline) = draining {
                if self.open_conns() == 0 || now >= deadline {
                    return Ok(Stop::Drained);
                }
            }
            let mut timeout = QUIET;
            if let Some(expiry) = self.udp.flows.next_expiry() {
                timeout = timeout.min(expiry.saturating_duration_since(now) + Duration::from_millis(1));
            }
            if let Some(deadline) = draining {
                timeout = timeout.min(deadline.saturating_duration_since(now));
            }
            if !self.accept_backlog.is_empty() || !self.waiting.is_empty() {
                timeout = timeout.min(Duration::from_millis(50));
            }
            if !self.udp_again.is_empty() {
                timeout = Duration::ZERO;
            }
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
            let now = Instant::now();
            if !events.is_empty() || !self.udp_again.is_empty() {
                last_event = now;
            } else if now.saturating_duration_since(last_event) >= QUIET {
                // A quiet second: give pooled pipes and buffers back.
                self.pool.trim();
            }
            for event in events.iter() {
                let token = event.token().0;
                let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                let writable = event.is_writable() || event.is_write_closed() || event.is_error();
                let ready = Ready { readable, writable, read_closed: event.is_read_closed() };
                match token {
                    t if t == SIGNAL_TERM.0 => {
                        if let Some(signals) = &mut self.signals {
                            drain_pipe(&mut signals.term);
                        }
                        if draining.is_some() {
                            // A second signal: stop now.
                            return Ok(Stop::Now);
                        }
                        let deadline = now + self.options.drain_timeout.min(MAX_DURATION);
                        *self.control.drain_deadline.lock().unwrap_or_else(|p| p.into_inner()) = Some(deadline);
                        draining = Some(deadline);
                        self.stop_listening();
                        for waker in &self.peer_wakers {
                            let _ = waker.wake();
                        }
                    }
                    t if t == WAKE.0 => {
                        if let (None, Some(deadline)) = (draining, self.control.deadline()) {
                            draining = Some(deadline);
                            self.stop_listening();
                        }
                    }
                    t if t == SIGNAL_USR1.0 => {
                        if let Some(signals) = &mut self.signals {
                            drain_pipe(&mut signals.usr1);
                        }
                        crate::stderr_text!("{}", self.render_stats());
                    }
                    t if t == STATS.0 => self.serve_stats(),
                    t if t >= FLOW_BASE => self.flow_event(t, now),
                    t if t >= CONN_BASE => self.conn_event(t - CONN_BASE, ready, event.is_error()),
                    t if t >= LISTENER_BASE => self.listener_event(t - LISTENER_BASE, now),
                    _ => {}
                }
            }
            for token in std::mem::take(&mut self.udp_again) {
                match token {
                    t if t >= FLOW_BASE => self.flow_event(t, now),
                    t if (LISTENER_BASE..CONN_BASE).contains(&t) => self.listener_event(t - LISTENER_BASE, now),
                    _ => {}
                }
            }
            self.connect_waiting();
            if !self.accept_backlog.is_empty() && self.waiting.is_empty() {
                for index in std::mem::take(&mut self.accept_backlog) {
                    self.listener_event(index, now);
                }
            }
            self.udp.expire(&self.counters, now);
        }
    }

    fn open_conns(&self) -> usize {
        self.conns.len() - self.free_slots.len()
    }

    /// Closes every listener and UDP flow: nothing new is accepted.
    fn stop_listening(&mut self) {
        self.listeners.clear();
        self.udp.close_all(&self.counters);
        self.accept_backlog.clear();
        self.waiting.clear();
    }

    /// What a UDP flow's container sent, back to its client.
    fn flow_event(&mut self, token: usize, now: Instant) {
        if self.udp.relay_to_client(token - FLOW_BASE, &self.listeners, &self.counters, now) {
            self.read_again(token);
        }
    }

    /// Reads UDP token `token` again after the next poll: it had more.
    fn read_again(&mut self, token: usize) {
        if !self.udp_again.contains(&token) {
            self.udp_again.push(token);
        }
    }

    fn listener_event(&mut self, index: usize, now: Instant) {
        if let Some(Listener::Udp(listener)) = self.listeners.get(index) {
            if self.udp.relay_to_container(index, listener, &self.counters, self.poll.registry(), now) {
                self.read_again(LISTENER_BASE + index);
            }
            return;
        }
        loop {
            if !self.waiting.is_empty() {
                // Clients already wait for descriptors: leave new ones queued.
                if !self.accept_backlog.contains(&index) {
                    self.accept_backlog.push(index);
                }
                return;
            }
            let Some(Listener::Tcp { mapping, container, socket, local_listener }) = self.listeners.get(index) else {
                return;
            };
            let (mapping, container, local_listener) = (*mapping, *container, *local_listener);
            let (client, peer) = match socket.accept() {
                Ok(accepted) => accepted,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err)
                    if matches!(
                        err.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                    ) =>
                {
                    // Out of descriptors: leave the rest queued, retry soon.
                    if !self.accept_backlog.contains(&index) {
                        self.accept_backlog.push(index);
                    }
                    return;
                }
                // The client gave up before we took it, or its connection
                // failed (Linux passes such errors on from `accept`): that
                // connection is gone, the next may be fine.
                Err(err)
                    if matches!(
                        err.raw_os_error(),
                        Some(
                            libc::ECONNABORTED
                                | libc::EPROTO
                                | libc::ENOPROTOOPT
                                | libc::EHOSTDOWN
                                | libc::ENONET
                                | libc::EHOSTUNREACH
                                | libc::ENETDOWN
                                | libc::ENETUNREACH
                                | libc::EOPNOTSUPP
                        )
                    ) =>
                {
                    continue
                }
                // Anything else (a security module's EPERM...) would come back
                // on every retry: counted, and retried later, not at once.
                Err(_) => {
                    self.counters[mapping].errors.add(1);
                    if !self.accept_backlog.contains(&index) {
                        self.accept_backlog.push(index);
                    }
                    return;
                }
            };
            self.counters[mapping].connections.add(1);
            // A listener on a loopback address passed it on already.
            if let Some(name) = self.congestion.as_deref().filter(|_| !local_listener && is_loopback(peer)) {
                let _ = SockRef::from(&client).set_tcp_congestion(name);
            }
            let header = self.options.proxy_protocol.map(|version| {
                let local = client.local_addr().unwrap_or(peer);
                Header::new(version, Transport::Stream, peer, local)
            });
            let waiting = Waiting { listener: index, mapping, container, client, header };
            if let Some(waiting) = self.connect(waiting) {
                self.waiting.push_back(waiting);
            }
        }
    }

    /// Retries the clients waiting for a descriptor, oldest first.
    fn connect_waiting(&mut self) {
        while let Some(waiting) = self.waiting.pop_front() {
            if let Some(waiting) = self.connect(waiting) {
                self.waiting.push_front(waiting);
                return;
            }
        }
    }

    /// Opens the container connection of an accepted client and starts
    /// relaying (or counts the failure); gives the client back when no
    /// descriptor is left for it.
    fn connect(&mut self, waiting: Waiting) -> Option<Waiting> {
        let Waiting { listener, mapping, container, client, header } = waiting;
        let mut server = tcp::connect(container, self.congestion.as_deref());
        if server.as_ref().is_err_and(tcp::is_out_of_descriptors) && self.pool.idle() > 0 {
            // Idle pooled pipes hold descriptors a connection needs more.
            self.pool.trim();
            server = tcp::connect(container, self.congestion.as_deref());
        }
        let server = match server {
            Ok(server) => server,
            Err(err) if tcp::is_out_of_descriptors(&err) => {
                if !self.accept_backlog.contains(&listener) {
                    self.accept_backlog.push(listener);
                }
                return Some(Waiting { listener, mapping, container, client, header });
            }
            Err(_) => {
                self.counters[mapping].errors.add(1);
                return None;
            }
        };
        // The accepted socket inherited TCP_NODELAY and keepalive from
        // the listener; the container side needs them set.
        set_stream_options(SockRef::from(&server));
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        let mut conn = Conn::new(mapping, client, server, header);
        let registry = self.poll.registry();
        let both = Interest::READABLE | Interest::WRITABLE;
        let registered = registry
            .register(&mut conn.client, Token(CONN_BASE + 2 * slot), both)
            .and_then(|()| registry.register(&mut conn.server, Token(CONN_BASE + 2 * slot + 1), both));
        if registered.is_err() {
            self.counters[mapping].errors.add(1);
            self.free_slots.push(slot);
            return None;
        }
        self.counters[mapping].active.add(1);
        self.conns[slot] = Some(conn);
        None
    }

    /// One socket of a connection has news: `event` as epoll reported it,
    /// `error` set when it reported `EPOLLERR`.
    fn conn_event(&mut self, token: usize, event: Ready, error: bool) {
        let slot = token / 2;
        let Some(Some(conn)) = self.conns.get_mut(slot) else { return };
        let ready: &mut Ready = if token % 2 == 0 { &mut conn.client_ready } else { &mut conn.server_ready };
        ready.readable |= event.readable;
        ready.writable |= event.writable;
        ready.read_closed |= event.read_closed;
        let mut failed = false;
        // epoll reports a connecting socket writable once the handshake is
        // over: established, or failed with SO_ERROR set — and then
        // EPOLLERR with it, so only then is SO_ERROR worth a system call.
        if !conn.connected && token % 2 == 1 && event.writable {
            if error {
                failed = true;
            } else {
                conn.connected = true;
                // The client has most likely spoken by now: a read (at
                // worst one EAGAIN) lets its bytes carry the held ACK.
                conn.client_ready.readable = true;
            }
        }
        let counters = &self.counters[conn.mapping];
        let progress = if failed { Progress::Failed } else { conn.pump(&mut self.pool, counters) };
        match progress {
            Progress::Open => {}
            Progress::Done | Progress::Failed => {
                let Some(mut conn) = self.conns[slot].take() else { return };
                if progress == Progress::Failed {
                    counters.errors.add(1);
                    conn.reset();
                }
                conn.release(&mut self.pool);
                counters.active.sub(1);
                self.free_slots.push(slot);
            }
        }
    }

    /// Answers every waiting stats connection. With every descriptor in
    /// use by connections, the reserved one is given up for the moment, so
    /// the counters can still be read at the limit.
    fn serve_stats(&mut self) {
        let Some((listener, _)) = &self.stats else { return };
        loop {
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(err) if tcp::is_out_of_descriptors(&err) && self.reserve_fd.is_some() => {
                    // accept(2) takes the descriptor before it looks at
                    // the queue: EMFILE says nothing about a client waiting.
                    self.reserve_fd = None;
                    let accepted = listener.accept();
                    if let Ok((stream, _)) = &accepted {
                        write_stats(stream, &self.render_stats());
                    }
                    let served = accepted.is_ok();
                    drop(accepted);
                    self.reserve_fd = std::fs::File::open("/dev/null").ok();
                    if !served || self.reserve_fd.is_none() {
                        return;
                    }
                    continue;
                }
                Err(_) => return,
            };
            write_stats(&stream, &self.render_stats());
        }
    }
}

/// Writes the counters to a stats client (blocking, for at most a second).
fn write_stats(stream: &UnixStream, text: &str) {
    let stream = SockRef::from(stream);
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = (&*stream).write_all(text.as_bytes());
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some((_, path)) = &self.stats {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Signals {
    fn register(registry: &Registry) -> io::Result<Signals> {
        let (term_read, term_write) = StdUnixStream::pair()?;
        let (usr1_read, usr1_write) = StdUnixStream::pair()?;
        for end in [&term_read, &term_write, &usr1_read, &usr1_write] {
            end.set_nonblocking(true)?;
        }
        signal_hook::low_level::pipe::register(libc::SIGTERM, term_write.try_clone()?)?;
        signal_hook::low_level::pipe::register(libc::SIGINT, term_write)?;
        signal_hook::low_level::pipe::register(libc::SIGUSR1, usr1_write)?;
        let mut term = UnixStream::from_std(term_read);
        let mut usr1 = UnixStream::from_std(usr1_read);
        registry.register(&mut term, SIGNAL_TERM, Interest::READABLE)?;
        registry.register(&mut usr1, SIGNAL_USR1, Interest::READABLE)?;
        Ok(Signals { term, usr1 })
    }
}

fn drain_pipe(stream: &mut UnixStream) {
    let mut buf = [0u8; 64];
    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
}

/// Watches a TCP listener on `poll`. Every worker's epoll watches the same
/// listener, so the registration is exclusive: a connection wakes one idle
/// worker, not all of them (the others would only find `EAGAIN`). On a
/// kernel without `EPOLLEXCLUSIVE` (before 4.5), a plain registration.
fn register_listener(poll: &Poll, socket: &mut TcpListener, token: Token) -> io::Result<()> {
    match epoll::add_exclusive_reader(poll, socket.as_fd(), token.0) {
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {
            poll.registry().register(socket, token, Interest::READABLE)
        }
        other => other,
    }
}

/// A listening TCP socket on `host`: `SO_REUSEADDR` (as Go sets it), IPv6
/// only for an IPv6 address (docker runs one proxy per family).
fn listen_tcp(host: SocketAddr) -> Result<TcpListener, StartError> {
    let fail = |op: &str, err: io::Error| StartError(format!("listen tcp {host}: {op}: {err}"));
    let socket = Socket::new(Domain::for_address(host), Type::STREAM.nonblocking().cloexec(), None)
        .map_err(|err| fail("socket", err))?;
    socket.set_reuse_address(true).map_err(|err| fail("setsockopt(SO_REUSEADDR)", err))?;
    if host.is_ipv6() {
        socket.set_only_v6(true).map_err(|err| fail("setsockopt(IPV6_V6ONLY)", err))?;
    }
    set_stream_options(SockRef::from(&socket));
    socket.bind(&host.into()).map_err(|err| fail("bind", err))?;
    socket.listen(4096).map_err(|err| fail("listen", err))?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Adopts the listening TCP socket docker passed as fd 4.
fn adopt_tcp(fd: OwnedFd) -> Result<TcpListener, StartError> {
    let socket = Socket::from(fd);
    let fail = |why: String| StartError(format!("-use-listen-fd: fd 4 {why}"));
    match socket.r#type() {
        Ok(ty) if ty == Type::STREAM => {}
        Ok(_) => return Err(fail("is not a stream socket".into())),
        Err(err) => return Err(fail(format!("is not a socket: {err}"))),
    }
    if !socket.is_listener().map_err(|err| fail(format!("SO_ACCEPTCONN: {err}")))? {
        return Err(fail("is not listening".into()));
    }
    socket.set_nonblocking(true).map_err(|err| fail(format!("O_NONBLOCK: {err}")))?;
    set_stream_options(SockRef::from(&socket));
    Ok(TcpListener::from_std(socket.into()))
}

/// The congestion control name to set on connections within the host, from
/// `-local-congestion`: `None` for `system`, where a new socket already
/// gets it (the kernel's default), and for the default when the kernel
/// refuses it (it is not built, or not in
/// `net.ipv4.tcp_allowed_congestion_control` and the proxy lacks
/// `CAP_NET_ADMIN`). A name given on the command line that the kernel
/// refuses fails start-up, saying what it has.
fn local_congestion(choice: &Congestion) -> Result<Option<Box<[u8]>>, StartError> {
    let name = match choice {
        Congestion::System => return Ok(None),
        Congestion::Default => DEFAULT_LOCAL_CONGESTION,
        Congestion::Named(name) => name.as_str(),
    };
    let probe = Socket::new(Domain::IPV4, Type::STREAM.cloexec(), None)
        .or_else(|_| Socket::new(Domain::IPV6, Type::STREAM.cloexec(), None))
        .and_then(|socket| {
            // The kernel fills the 16 bytes it has for a name with NULs.
            let current = socket.tcp_congestion()?;
            if current.split(|&byte| byte == 0).next() == Some(name.as_bytes()) {
                return Ok(false);
            }
            socket.set_tcp_congestion(name.as_bytes()).map(|()| true)
        });
    match (probe, choice) {
        (Ok(true), _) => Ok(Some(name.as_bytes().into())),
        (Ok(false), _) | (Err(_), Congestion::Default) => Ok(None),
        (Err(err), _) => {
            let available = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control");
            Err(StartError(format!(
                "-local-congestion {name}: the kernel refuses it ({err}); it has: {}",
                available.as_deref().unwrap_or("?").trim()
            )))
        }
    }
}

/// A loopback address, IPv4-mapped ones included.
fn is_loopback(addr: SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// TCP_NODELAY and keepalive. Set on a listener, accepted sockets inherit
/// them.
fn set_stream_options(socket: SockRef<'_>) {
    let _ = socket.set_tcp_nodelay(true);
    let _ = socket.set_tcp_keepalive(&TcpKeepalive::new().with_time(KEEPALIVE).with_interval(KEEPALIVE));
}

/// A UDP socket bound to `host`, reporting each datagram's destination.
fn bind_udp(host: SocketAddr) -> Result<UdpSocket, StartError> {
    let options = UdpOptions { v6_only: true, nonblocking: true, ..UdpOptions::default() };
    let socket = UdpSocket::bind_with(host, options).map_err(|err| StartError(format!("listen udp {host}: {err}")))?;
    socket.set_recv_pktinfo(true).map_err(|err| StartError(format!("listen udp {host}: {err}")))?;
    // Trains of datagrams from one client (NIC GRO, a GSO sender) come up
    // as one message, boundaries kept.
    let _ = socket.set_gro(true);
    Ok(socket)
}

/// Adopts the bound UDP socket docker passed as fd 4.
fn adopt_udp(fd: OwnedFd) -> Result<UdpSocket, StartError> {
    let socket = UdpSocket::from_fd(fd).map_err(|err| StartError(format!("-use-listen-fd: fd 4: {err}")))?;
    socket.set_nonblocking(true).map_err(|err| StartError(format!("-use-listen-fd: fd 4: {err}")))?;
    let _ = socket.set_recv_pktinfo(true);
    let _ = socket.set_gro(true);
    Ok(socket)
}

/// What to say for an SCTP mapping: the kernel has no SCTP, or wharf-proxy
/// has no SCTP relay.
fn sctp_error(host: SocketAddr) -> StartError {
    let domain = Domain::for_address(host);
    match Socket::new(domain, Type::STREAM, Some(socket2::Protocol::from(libc::IPPROTO_SCTP))) {
        Err(err) => StartError(format!("listen sctp {host}: sctp is not supported by this kernel (socket: {err})")),
        Ok(_) => StartError(format!(
            "listen sctp {host}: wharf-proxy does not forward sctp; use docker-proxy for sctp ports"
        )),
    }
}

/// The stats socket; a stale socket file from an earlier run is replaced,
/// and a live one or a file that is not a socket is refused.
fn bind_stats(path: &PathBuf) -> Result<UnixListener, StartError> {
    crate::sys::socket_path::claim_socket_path(path).map_err(|err| StartError(format!("stats socket: {err}")))?;
    UnixListener::bind(path).map_err(|err| StartError(format!("stats socket {}: bind: {err}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The accept path relies on the kernel copying TCP_NODELAY and the
    /// keepalive settings from the listener to each accepted socket.
    #[test]
    fn accepted_sockets_inherit_nodelay_and_keepalive() {
        let listener = listen_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let accepted = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(err) => panic!("{err}"),
            }
        };
        let sock = SockRef::from(&accepted);
        assert!(sock.tcp_nodelay().unwrap());
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), KEEPALIVE);
        assert_eq!(sock.tcp_keepalive_interval().unwrap(), KEEPALIVE);
    }

    #[test]
    fn a_port_in_use_is_named_in_the_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = listen_tcp(addr).unwrap_err();
        assert!(err.0.starts_with(&format!("listen tcp {addr}: bind: ")), "{}", err.0);
        assert!(err.0.contains("in use"), "{}", err.0);
    }

    #[test]
    fn local_congestion_resolves_to_what_a_connection_must_set() {
        let default = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap().tcp_congestion().unwrap();
        let default = String::from_utf8(default.split(|&byte| byte == 0).next().unwrap().to_vec()).unwrap();
        assert_eq!(local_congestion(&Congestion::System).unwrap(), None);
        // What new sockets get anyway needs no system call per connection.
        assert_eq!(local_congestion(&Congestion::Named(default.clone())).unwrap(), None);
        let other = if default == "reno" { "cubic" } else { "reno" };
        assert_eq!(local_congestion(&Congestion::Named(other.into())).unwrap().as_deref(), Some(other.as_bytes()));
        let err = local_congestion(&Congestion::Named("nosuchcc".into())).unwrap_err();
        assert!(err.0.starts_with("-local-congestion nosuchcc: the kernel refuses it ("), "{}", err.0);
        assert!(err.0.contains("reno"), "names what the kernel has: {}", err.0);
    }

    #[test]
    fn sctp_says_why_it_cannot_listen() {
        let err = sctp_error("127.0.0.1:9".parse().unwrap());
        assert!(err.0.starts_with("listen sctp 127.0.0.1:9: "), "{}", err.0);
        // Which of the two reasons depends on the kernel; one of them it is.
        let unsupported = err.0.contains("sctp is not supported by this kernel (socket: ");
        let no_relay = err.0.contains("wharf-proxy does not forward sctp");
        assert!(unsupported || no_relay, "{}", err.0);
    }
}
