//! Helpers for wharf-proxy's end-to-end tests: a three-namespace topology,
//! the proxy started the way docker starts docker-proxy (a ready pipe on fd
//! 3, optionally an inherited socket on fd 4), servers and clients that live
//! in a namespace, the counters from the stats socket, and a byte pattern
//! whose every position can be checked.
//!
//! Topology ([`Topology::new`]):
//!
//! ```text
//! outside 203.0.113.2 ── o0: 203.0.113.1  host  c0: 198.51.100.1 ── container 198.51.100.2
//!         2001:db8:2::2      2001:db8:2::1        2001:db8:1::1              2001:db8:1::2
//! ```
//!
//! The proxy runs in `host`; servers run in `container`; clients run in
//! `outside` (routed to the host's addresses, so a client address differs
//! from the proxy's) or in `host`. The host does not forward: the proxy is
//! the only way from outside to the container.
//!
//! No `unsafe` here: descriptors reach the proxy as fds 3 and 4 through a
//! shell's redirections (`3>&1`, `4<&0`), from pipes and sockets that
//! [`Command`] hands over as stdout and stdin.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dataplane::sys::netns;

use crate::{require_root, unique_name, Netns};

/// The host's address towards the container.
pub const HOST_IP: &str = "198.51.100.1";
/// The container's address.
pub const CONTAINER_IP: &str = "198.51.100.2";
/// The host's address towards the outside client.
pub const HOST_OUTSIDE_IP: &str = "203.0.113.1";
/// The outside client's address.
pub const OUTSIDE_IP: &str = "203.0.113.2";
/// IPv6: the host towards the container.
pub const HOST_IP6: &str = "2001:db8:1::1";
/// IPv6: the container.
pub const CONTAINER_IP6: &str = "2001:db8:1::2";
/// IPv6: the outside client.
pub const OUTSIDE_IP6: &str = "2001:db8:2::2";

/// How long any single wait of these helpers lasts before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// `outside` ↔ `host` ↔ `container`, IPv4 and IPv6 (see the module docs).
#[derive(Debug)]
pub struct Topology {
    pub host: Netns,
    pub container: Netns,
    pub outside: Netns,
}

impl Topology {
    pub fn new() -> Topology {
        require_root();
        let host = Netns::new("ph").unwrap();
        let container = Netns::new("pc").unwrap();
        let outside = Netns::new("po").unwrap();
        host.veth("c0", &container, "eth0").unwrap();
        host.veth("o0", &outside, "eth0").unwrap();
        let addr = |ns: &Netns, cidr: &str, dev: &str| {
            let nodad: &[&str] = if cidr.contains(':') { &["nodad"] } else { &[] };
            ns.ip(&[&["addr", "add", cidr, "dev", dev][..], nodad].concat()).unwrap();
        };
        addr(&host, "198.51.100.1/24", "c0");
        addr(&host, "2001:db8:1::1/64", "c0");
        addr(&container, "198.51.100.2/24", "eth0");
        addr(&container, "2001:db8:1::2/64", "eth0");
        addr(&host, "203.0.113.1/24", "o0");
        addr(&host, "2001:db8:2::1/64", "o0");
        addr(&outside, "203.0.113.2/24", "eth0");
        addr(&outside, "2001:db8:2::2/64", "eth0");
        outside.ip(&["route", "add", "default", "via", HOST_OUTSIDE_IP]).unwrap();
        outside.ip(&["-6", "route", "add", "default", "via", "2001:db8:2::1"]).unwrap();
        Topology { host, container, outside }
    }
}

impl Default for Topology {
    fn default() -> Topology {
        Topology::new()
    }
}

/// Runs `f` on a new thread inside `ns` and returns what it returns; a
/// panic in `f` fails the caller. Sockets made in `f` stay in `ns` and can
/// be used from any thread afterwards.
pub fn in_netns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    let name = ns.name();
    std::thread::scope(|scope| {
        let handle = scope.spawn(|| {
            netns::enter(name).unwrap_or_else(|e| panic!("enter netns {name}: {e}"));
            f()
        });
        match handle.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// `ip:port`, IPv6 in brackets.
pub fn sock(ip: &str, port: u16) -> SocketAddr {
    let ip: std::net::IpAddr = ip.parse().unwrap_or_else(|e| panic!("bad IP {ip}: {e}"));
    SocketAddr::new(ip, port)
}

/// A TCP connection from inside `ns`, with read and write timeouts of
/// [`PATIENCE`] so that a lost byte fails the test instead of hanging it.
pub fn connect(ns: &Netns, to: SocketAddr) -> io::Result<TcpStream> {
    in_netns(ns, || {
        let stream = TcpStream::connect_timeout(&to, PATIENCE)?;
        stream.set_read_timeout(Some(PATIENCE))?;
        stream.set_write_timeout(Some(PATIENCE))?;
        Ok(stream)
    })
}

/// Connects from `ns` to `to`, sends `request`, closes the sending half and
/// returns everything that comes back until EOF.
pub fn tcp_exchange(ns: &Netns, to: SocketAddr, request: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = connect(ns, to)?;
    stream.write_all(request)?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    Ok(reply)
}

/// Connects from `ns` to `to` and expects the proxy to close the connection
/// without a byte of data: EOF or a reset, which may come as early as the
/// connect itself (when the reset beats the connect's completion check).
pub fn expect_closed(ns: &Netns, to: SocketAddr) -> Result<(), String> {
    let is_reset = |e: &io::Error| matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe);
    let mut stream = match connect(ns, to) {
        Ok(stream) => stream,
        Err(e) if is_reset(&e) => return Ok(()),
        Err(e) => return Err(format!("connect {to}: {e}")),
    };
    let _ = stream.write_all(b"anyone there?");
    match stream.read(&mut [0u8; 64]) {
        Ok(0) => Ok(()),
        Err(e) if is_reset(&e) => Ok(()),
        Ok(n) => Err(format!("{n} bytes came back from {to}")),
        Err(e) => Err(format!("read from {to}: {e}")),
    }
}

/// A UDP socket inside `ns` bound to `bind`, with a read timeout of 2 s.
pub fn udp_socket(ns: &Netns, bind: SocketAddr) -> UdpSocket {
    in_netns(ns, || {
        let socket = UdpSocket::bind(bind).unwrap_or_else(|e| panic!("bind UDP {bind}: {e}"));
        socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        socket
    })
}

/// Sends `payload` to `to` and returns the next datagram and its source.
pub fn udp_exchange(socket: &UdpSocket, to: SocketAddr, payload: &[u8]) -> io::Result<(Vec<u8>, SocketAddr)> {
    socket.send_to(payload, to)?;
    let mut buf = vec![0u8; 65_536];
    let (len, from) = socket.recv_from(&mut buf)?;
    buf.truncate(len);
    Ok((buf, from))
}

/// A TCP server in a namespace: one thread per accepted connection runs
/// `handler`. Stops accepting on drop. Handlers report to the test through
/// channels, since a panic on their thread would fail nothing.
#[derive(Debug)]
pub struct TcpServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TcpServer {
    pub fn start(ns: &Netns, addr: SocketAddr, handler: impl Fn(TcpStream) + Send + Sync + 'static) -> TcpServer {
        let listener = in_netns(ns, || TcpListener::bind(addr)).unwrap_or_else(|e| panic!("listen on {addr}: {e}"));
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let stopped = stop.clone();
        let name = ns.name().to_owned();
        let thread = std::thread::spawn(move || {
            // Handler threads start in the container's namespace too, so a
            // handler may open sockets of its own there.
            netns::enter(&name).unwrap();
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let handler = handler.clone();
                        let _ = stream.set_nonblocking(false);
                        let spawned = std::thread::Builder::new().stack_size(128 * 1024).spawn(move || handler(stream));
                        if spawned.is_err() {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(1)),
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        TcpServer { addr, stop, thread: Some(thread) }
    }

    /// A server that echoes every byte until EOF, then closes its sending half.
    pub fn echo(ns: &Netns, addr: SocketAddr) -> TcpServer {
        TcpServer::start(ns, addr, |stream| {
            let _ = stream.set_read_timeout(Some(PATIENCE));
            let (mut reader, mut writer) = (&stream, &stream);
            let _ = io::copy(&mut reader, &mut writer);
            let _ = stream.shutdown(std::net::Shutdown::Write);
        })
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A UDP server in a namespace: `handler` gets the socket, each datagram
/// and its source. Stops on drop.
#[derive(Debug)]
pub struct UdpServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpServer {
    pub fn start(
        ns: &Netns,
        addr: SocketAddr,
        mut handler: impl FnMut(&UdpSocket, &[u8], SocketAddr) + Send + 'static,
    ) -> UdpServer {
        let socket = in_netns(ns, || UdpSocket::bind(addr)).unwrap_or_else(|e| panic!("bind UDP {addr}: {e}"));
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !stopped.load(Ordering::Relaxed) {
                if let Ok((len, from)) = socket.recv_from(&mut buf) {
                    handler(&socket, &buf[..len], from);
                }
            }
        });
        UdpServer { addr, stop, thread: Some(thread) }
    }

    /// A server that sends every datagram back to where it came from.
    pub fn echo(ns: &Netns, addr: SocketAddr) -> UdpServer {
        UdpServer::start(ns, addr, |socket, datagram, from| {
            let _ = socket.send_to(datagram, from);
        })
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How a run of the proxy ended: exit status and what it printed.
#[derive(Debug)]
pub struct Outcome {
    /// `None`: it did not exit in time and was killed.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit {:?}\n--- stdout:\n{}\n--- stderr:\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Reads `stream` to its end on a thread; the text arrives on the channel.
fn read_all_async(mut stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

/// Runs the proxy `bin` in `ns` with `args` and no fd 3, for parse errors,
/// `-v` and `-h`: waits up to `timeout` for it to exit, kills it if not.
pub fn run_proxy(bin: &str, ns: &Netns, args: &[&str], timeout: Duration) -> Outcome {
    let mut child = ns
        .command(bin, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
    let stdout = read_all_async(child.stdout.take().unwrap());
    let stderr = read_all_async(child.stderr.take().unwrap());
    let code = wait_child(&mut child, timeout).map(|status| status.code().unwrap_or(-1));
    if code.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let collect = |rx: mpsc::Receiver<String>| rx.recv_timeout(PATIENCE).unwrap_or_default();
    Outcome { code, stdout: collect(stdout), stderr: collect(stderr) }
}

fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A running wharf-proxy, killed on drop. Its stdout and stderr are
/// collected (see [`Proxy::output`]).
#[derive(Debug)]
pub struct Proxy {
    child: Child,
    output: Arc<Mutex<String>>,
    /// The thread copying stderr into `output`: joined once the proxy has
    /// exited, so that `output` then holds everything it wrote.
    reader: Option<std::thread::JoinHandle<()>>,
    exited: Option<ExitStatus>,
}

impl Proxy {
    /// Starts the proxy `bin` in `ns` with `args`, fd 3 the write end of a
    /// pipe and, when given, `fd4` as fd 4; reads fd 3 to EOF (at most
    /// [`PATIENCE`]) and returns the proxy and what fd 3 said.
    pub fn spawn(bin: &str, ns: &Netns, args: &[&str], fd4: Option<OwnedFd>) -> (Proxy, String) {
        // `ip netns exec` execs sh, which execs the proxy: the child's pid
        // is the proxy's. stdout (a pipe) becomes fd 3; the proxy's own
        // stdout goes to stderr; stdin (the inherited socket) becomes fd 4.
        let script = if fd4.is_some() { r#"exec "$@" 3>&1 1>&2 4<&0 0</dev/null"# } else { r#"exec "$@" 3>&1 1>&2"# };
        let mut command = ns.command("sh", &["-c", script, "sh", bin]);
        command.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        command.stdin(fd4.map_or_else(Stdio::null, Stdio::from));
        let mut child = command.spawn().unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
        let ready = read_all_async(child.stdout.take().unwrap());
        let output = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = output.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let proxy = Proxy { child, output, reader: Some(reader), exited: None };
        match ready.recv_timeout(PATIENCE) {
            Ok(said) => (proxy, said),
            Err(_) => panic!("wharf-proxy did not close fd 3 within {PATIENCE:?}; output:\n{}", proxy.output()),
        }
    }

    /// Starts the proxy and fails the test unless fd 3 says exactly `0\n`.
    pub fn start(bin: &str, ns: &Netns, args: &[&str]) -> Proxy {
        let (proxy, said) = Proxy::spawn(bin, ns, args, None);
        assert_eq!(said, "0\n", "wharf-proxy {args:?} did not report success on fd 3; output:\n{}", proxy.output());
        proxy
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the proxy wrote to stdout and stderr so far (all of it
    /// once [`Proxy::wait`] has seen it exit).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Sends a signal (`TERM`, `INT`, `USR1`...).
    pub fn signal(&self, name: &str) {
        crate::run(Command::new("kill").arg(format!("-{name}")).arg(self.pid().to_string()))
            .unwrap_or_else(|e| panic!("kill -{name}: {e}"));
    }

    /// Waits up to `timeout` for the proxy to exit; once it has, its
    /// stderr has been read to the end (see [`Proxy::output`]).
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = wait_child(&mut self.child, timeout);
        }
        if self.exited.is_some() {
            if let Some(reader) = self.reader.take() {
                // The pipe's only writer has exited: the thread is at EOF.
                let _ = reader.join();
            }
        }
        self.exited
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        self.wait(Duration::ZERO).is_none()
    }

    /// How many descriptors the proxy has open (`/proc/PID/fd`). Fails the
    /// test if the proxy has exited: its directory is gone, or empty for a
    /// zombie, and a count of 0 would pass any "at most" check.
    pub fn fd_count(&self) -> usize {
        let pid = self.pid();
        let dir = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap_or_else(|e| panic!("read /proc/{pid}/fd: {e}: the proxy has exited\n{}", self.output()));
        let count = dir.count();
        assert!(count > 0, "proxy {pid} holds no descriptors: it has exited\n{}", self.output());
        count
    }

    /// The descriptors the proxy has open, with what they point to.
    pub fn fds(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{}/fd", self.pid())) else { return Vec::new() };
        let mut fds: Vec<String> = dir
            .filter_map(Result::ok)
            .map(|entry| {
                let target = std::fs::read_link(entry.path()).map(|p| p.display().to_string()).unwrap_or_default();
                format!("{} -> {target}", entry.file_name().to_string_lossy())
            })
            .collect();
        fds.sort();
        fds
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A file path in the temp dir, unique to the call, removed on drop (also
/// when the test fails).
#[derive(Debug)]
pub struct TempPath(PathBuf);

impl TempPath {
    /// `TMP/<unique name>.<ext>`; nothing is created.
    pub fn new(ext: &str) -> TempPath {
        TempPath(std::env::temp_dir().join(format!("{}.{ext}", unique_name("tp"))))
    }

    pub fn as_str(&self) -> &str {
        self.0.to_str().expect("temp dir path is UTF-8")
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A path for a stats socket, removed on drop.
#[derive(Debug)]
pub struct StatsPath(TempPath);

impl StatsPath {
    pub fn new() -> StatsPath {
        StatsPath(TempPath::new("sock"))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The counters the proxy serves on this socket.
    pub fn read(&self) -> io::Result<Counters> {
        read_stats(&self.0 .0)
    }
}

impl Default for StatsPath {
    fn default() -> StatsPath {
        StatsPath::new()
    }
}

/// Counters per mapping: `mapping=SPEC k=v ...` lines by SPEC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters(pub BTreeMap<String, BTreeMap<String, u64>>);

impl Counters {
    /// Parses the lines that start with `mapping=`; others are ignored.
    /// A value that is not a number fails.
    pub fn parse(text: &str) -> io::Result<Counters> {
        let mut all = BTreeMap::new();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let Some(mapping) = words.next().and_then(|w| w.strip_prefix("mapping=")) else { continue };
            let mut counters = BTreeMap::new();
            for word in words {
                let (key, value) = word
                    .split_once('=')
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("no k=v: {word} in {line}")))?;
                let value = value.parse().map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("not a number: {word} in {line}"))
                })?;
                counters.insert(key.to_owned(), value);
            }
            all.insert(mapping.to_owned(), counters);
        }
        Ok(Counters(all))
    }

    /// One counter of one mapping; panics, naming what there is, if either
    /// is missing: a comparison of two absent zeros must not pass a test.
    pub fn get(&self, mapping: &str, counter: &str) -> u64 {
        let counters = self.0.get(mapping).unwrap_or_else(|| panic!("no mapping {mapping} in {self:?}"));
        *counters.get(counter).unwrap_or_else(|| panic!("no counter {counter} for {mapping} in {self:?}"))
    }
}

/// Connects to the stats socket at `path` and parses what it sends.
pub fn read_stats(path: &Path) -> io::Result<Counters> {
    let mut stream = std::os::unix::net::UnixStream::connect(path)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Counters::parse(&text)
}

/// Raises this process's soft open-file limit to at least `want` (and the
/// hard one if it is lower), with `prlimit`, so that a test can hold many
/// sockets. Processes spawned afterwards inherit it.
pub fn raise_nofile(want: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("read /proc/self/limits");
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("Max open files in /proc/self/limits");
    let numbers: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    let (soft, hard) = (numbers[0], numbers[1]);
    if soft >= want {
        return;
    }
    let hard = hard.max(want);
    crate::run(Command::new("prlimit").args([
        "--pid",
        &std::process::id().to_string(),
        &format!("--nofile={want}:{hard}"),
    ]))
    .expect("raise the open-file limit with prlimit");
}

/// A stream of bytes where every position can be checked: a pseudo-random
/// block of a prime length (so it never lines up with buffer sizes),
/// repeated. A lost, duplicated, reordered or changed run of bytes shows
/// as a mismatch at its offset.
#[derive(Debug, Clone)]
pub struct Pattern {
    block: Vec<u8>,
}

impl Pattern {
    const LEN: usize = 1_000_003;

    pub fn new(seed: u64) -> Pattern {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut block = Vec::with_capacity(Self::LEN + 8);
        while block.len() < Self::LEN {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            block.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        block.truncate(Self::LEN);
        Pattern { block }
    }

    /// Writes the first `len` bytes of the stream.
    pub fn write(&self, writer: &mut impl Write, len: u64) -> io::Result<()> {
        let mut offset = 0u64;
        while offset < len {
            let at = (offset % Self::LEN as u64) as usize;
            let n = (Self::LEN - at).min(256 * 1024).min((len - offset) as usize);
            writer.write_all(&self.block[at..at + n])?;
            offset += n as u64;
        }
        Ok(())
    }

    /// Reads to EOF, checking every byte against the stream; returns how
    /// many arrived, or an `InvalidData` error naming the first offset that
    /// differs.
    pub fn verify(&self, reader: &mut impl Read) -> io::Result<u64> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut offset = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(offset),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(io::Error::new(err.kind(), format!("after {offset} bytes: {err}"))),
            };
            let mut checked = 0;
            while checked < n {
                let at = ((offset + checked as u64) % Self::LEN as u64) as usize;
                let m = (Self::LEN - at).min(n - checked);
                if buf[checked..checked + m] != self.block[at..at + m] {
                    let bad = (0..m).find(|i| buf[checked + i] != self.block[at + i]).unwrap_or(0);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("byte {} differs from what was sent", offset + (checked + bad) as u64),
                    ));
                }
                checked += m;
            }
            offset += n as u64;
        }
    }
}
