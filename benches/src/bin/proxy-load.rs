//! Load tools for `benches/proxy-compare.sh`: the servers that sit in the
//! container namespace and the clients that drive traffic through a port
//! forwarder (or straight at the server, for the baseline).
//!
//! - `tcp-serve`: a request/reply TCP server that closes each connection
//!   after its reply. One `poll(2)` loop per core, all sharing one
//!   nonblocking listener, so the server is not what a proxy benchmark
//!   measures.
//! - `tcp-rate`: short connections per second. Each worker thread connects,
//!   sends a small request, reads the reply to EOF and closes, again and again;
//!   prints the rate and the p50/p99 time of one exchange.
//! - `udp-sink`: counts datagrams (batched `recvmmsg`) from the first one until
//!   the stream goes idle; prints datagrams per second as delivered.
//! - `udp-send`: sends datagrams of one size as fast as it can from N source
//!   sockets (N flows): by default as UDP GSO messages, up to 64 datagrams per
//!   system call that the kernel cuts apart (the receiver sees single
//!   datagrams unless it turned `UDP_GRO` on), else batched with `sendmmsg`.
//!   Per datagram, a sender costs as much as a forwarder's hop; GSO keeps it
//!   from being the bottleneck on a small machine.
//!
//! Results go to stdout as one line of `key=value` pairs; progress and errors
//! to stderr. What this tool does not do: set up namespaces or proxies (the
//! script does), or pace its load (it offers as much as it can).

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::str::FromStr;
use std::thread;
use std::time::{Duration, Instant};

use dataplane::sys::poll::{poll, Events, PollFd};
use dataplane::sys::udp::{RecvBatch, Transmit, UdpOptions, UdpSocket, MAX_GSO_SEGMENTS, MAX_PAYLOAD};

const USAGE: &str = "\
usage: proxy-load COMMAND [--flag value]...
  tcp-serve --listen ADDR [--threads N (cores)] [--request 64] [--reply 64]
  tcp-rate  --to ADDR [--workers 32] [--seconds 8] [--request 64] [--reply 64]
  udp-sink  --bind ADDR [--idle-ms 500] [--wait-s 30]
  udp-send  --to ADDR [--flows 1] [--size 64] [--seconds 5] [--send gso|mmsg] [--batch 32 (mmsg)]
";

/// `ENOBUFS` on Linux: a full device queue under a UDP send.
const ENOBUFS: i32 = 105;

/// How long a `tcp-rate` worker waits for a reply before counting an error.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

type Result<T> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let run = match command.as_str() {
        "tcp-serve" => tcp_serve,
        "tcp-rate" => tcp_rate,
        "udp-sink" => udp_sink,
        "udp-send" => udp_send,
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprint!("proxy-load: unknown command {other:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let flags = match Flags::parse(&args[1..]) {
        Ok(flags) => flags,
        Err(err) => {
            eprint!("proxy-load {command}: {err}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("proxy-load {command}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `--name value` pairs; each command takes the ones it knows and
/// [`Flags::finish`] rejects the rest.
#[derive(Debug)]
struct Flags(HashMap<String, String>);

impl Flags {
    fn parse(args: &[String]) -> Result<Flags> {
        let mut map = HashMap::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let name = arg.strip_prefix("--").ok_or_else(|| format!("expected --flag, got {arg:?}"))?;
            let (name, value) = match name.split_once('=') {
                Some((name, value)) => (name, value.to_owned()),
                None => (name, args.next().ok_or_else(|| format!("--{name} needs a value"))?.clone()),
            };
            map.insert(name.to_owned(), value);
        }
        Ok(Flags(map))
    }

    fn take<T: FromStr>(&mut self, name: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.0.remove(name) {
            Some(value) => value.parse().map_err(|err| format!("invalid value {value:?} for --{name}: {err}")),
            None => Ok(default),
        }
    }

    fn required<T: FromStr>(&mut self, name: &str) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        let value = self.0.remove(name).ok_or_else(|| format!("--{name} is required"))?;
        value.parse().map_err(|err| format!("invalid value {value:?} for --{name}: {err}"))
    }

    fn finish(self) -> Result<()> {
        match self.0.keys().next() {
            Some(name) => Err(format!("unknown flag --{name}")),
            None => Ok(()),
        }
    }
}

/// `--seconds`: a positive, finite number of seconds.
fn duration(seconds: f64) -> Result<Duration> {
    match Duration::try_from_secs_f64(seconds) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("invalid value {seconds} for --seconds: not a positive number")),
    }
}

fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

fn is_transient(err: &io::Error) -> bool {
    matches!(err.kind(), ErrorKind::Interrupted | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset)
}

// ---------------------------------------------------------------- tcp-serve

fn tcp_serve(mut flags: Flags) -> Result<()> {
    let listen: SocketAddr = flags.required("listen")?;
    let threads: usize = flags.take("threads", cores())?;
    let request: usize = flags.take("request", 64)?;
    let reply: usize = flags.take("reply", 64)?;
    flags.finish()?;
    if request == 0 || threads == 0 {
        return Err("--request and --threads must be at least 1".into());
    }
    let listener = TcpListener::bind(listen).map_err(|err| format!("listen tcp {listen}: {err}"))?;
    listener.set_nonblocking(true).map_err(|err| format!("listen tcp {listen}: {err}"))?;
    let reply = vec![b'r'; reply];
    let listeners = (0..threads)
        .map(|_| listener.try_clone())
        .collect::<io::Result<Vec<_>>>()
        .map_err(|err| format!("clone the listener: {err}"))?;
    eprintln!("tcp-serve: listening on {listen}, {threads} threads, {request}-byte requests, {} replies", reply.len());
    thread::scope(|scope| {
        for listener in listeners {
            let reply = &reply;
            scope.spawn(move || {
                if let Err(err) = serve(&listener, request, reply) {
                    eprintln!("proxy-load tcp-serve: {err}");
                    std::process::exit(1);
                }
            });
        }
    });
    Ok(())
}

/// One connection of `tcp-serve`: how far its request and reply are.
#[derive(Debug)]
struct Exchange {
    stream: TcpStream,
    received: usize,
    sent: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum Progress {
    Waiting,
    Finished,
}

impl Exchange {
    /// Reads the request, then writes the reply, as far as the socket allows.
    /// `Finished` (the caller drops, hence closes, the connection) once the
    /// reply is out, or on EOF or an error.
    fn advance(&mut self, request: usize, reply: &[u8], buf: &mut [u8]) -> Progress {
        while self.received < request {
            match self.stream.read(buf) {
                Ok(0) => return Progress::Finished,
                Ok(n) => self.received += n,
                Err(err) if err.kind() == ErrorKind::WouldBlock => return Progress::Waiting,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Progress::Finished,
            }
        }
        while self.sent < reply.len() {
            match self.stream.write(&reply[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(err) if err.kind() == ErrorKind::WouldBlock => return Progress::Waiting,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Progress::Finished,
            }
        }
        Progress::Finished
    }

    fn wants(&self, request: usize) -> Events {
        if self.received < request {
            Events::IN
        } else {
            Events::OUT
        }
    }
}

/// One thread of `tcp-serve`: accept, serve, close, forever.
fn serve(listener: &TcpListener, request: usize, reply: &[u8]) -> io::Result<()> {
    let mut open: Vec<Exchange> = Vec::new();
    let mut ready: Vec<Events> = Vec::new();
    let mut buf = vec![0u8; request.clamp(512, 64 * 1024)];
    loop {
        ready.clear();
        {
            let mut fds = Vec::with_capacity(open.len() + 1);
            fds.push(PollFd::new(listener, Events::IN));
            fds.extend(open.iter().map(|x| PollFd::new(&x.stream, x.wants(request))));
            match poll(&mut fds, None) {
                Ok(_) => {}
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
            ready.extend(fds.iter().map(PollFd::revents));
        }
        // Backwards, so that swap_remove only moves entries already handled.
        for i in (0..open.len()).rev() {
            if !ready[i + 1].is_empty() && open[i].advance(request, reply, &mut buf) == Progress::Finished {
                open.swap_remove(i);
            }
        }
        if ready[0].is_empty() {
            continue;
        }
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(true)?;
                    let mut exchange = Exchange { stream, received: 0, sent: 0 };
                    // The request often arrives with the handshake's last ACK.
                    if exchange.advance(request, reply, &mut buf) == Progress::Waiting {
                        open.push(exchange);
                    }
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) if is_transient(&err) => {}
                Err(err) => return Err(err),
            }
        }
    }
}

// ----------------------------------------------------------------- tcp-rate

/// What one `tcp-rate` worker did.
#[derive(Debug, Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    end: Option<Instant>,
}

fn tcp_rate(mut flags: Flags) -> Result<()> {
    let to: SocketAddr = flags.required("to")?;
    let workers: usize = flags.take("workers", 32)?;
    let seconds = duration(flags.take("seconds", 8.0)?)?;
    let request: usize = flags.take("request", 64)?;
    let reply: usize = flags.take("reply", 64)?;
    flags.finish()?;
    if workers == 0 {
        return Err("--workers must be at least 1".into());
    }
    let start = Instant::now();
    let deadline = start + seconds;
    let request = vec![b'q'; request];
    let tallies: Vec<Tally> = thread::scope(|scope| {
        let handles: Vec<_> =
            (0..workers).map(|_| scope.spawn(|| exchange_until(to, &request, reply, deadline))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    let end = tallies.iter().filter_map(|t| t.end).max().unwrap_or(deadline);
    let elapsed = end.duration_since(start).as_secs_f64();
    let errors: u64 = tallies.iter().map(|t| t.errors).sum();
    if let Some(err) = tallies.iter().find_map(|t| t.first_error.as_deref()) {
        eprintln!("tcp-rate: {errors} failed exchanges with {to}; the first: {err}");
    }
    let mut latencies: Vec<u32> = tallies.into_iter().flat_map(|t| t.latencies_us).collect();
    latencies.sort_unstable();
    let done = latencies.len();
    println!(
        "conns_per_s={:.0} completed={done} errors={errors} p50_us={} p99_us={} seconds={elapsed:.2}",
        done as f64 / elapsed,
        percentile(&latencies, 50),
        percentile(&latencies, 99),
    );
    if done == 0 {
        return Err(format!("no exchange with {to} completed"));
    }
    Ok(())
}

/// The `pct`th percentile of sorted `values` (nearest rank); 0 if empty.
fn percentile(values: &[u32], pct: usize) -> u32 {
    if values.is_empty() {
        return 0;
    }
    values[((values.len() * pct).div_ceil(100)).clamp(1, values.len()) - 1]
}

fn exchange_until(to: SocketAddr, request: &[u8], reply: usize, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut buf = vec![0u8; reply.clamp(512, 64 * 1024)];
    loop {
        let begin = Instant::now();
        if begin >= deadline {
            break;
        }
        match exchange(to, request, reply, &mut buf) {
            Ok(()) => {
                let end = Instant::now();
                let us = end.duration_since(begin).as_micros();
                tally.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                tally.end = Some(end);
            }
            Err(err) => {
                tally.errors += 1;
                tally.first_error.get_or_insert_with(|| err.to_string());
                // Refused or reset: do not spin on a dead target.
                thread::sleep(Duration::from_millis(1));
            }
        }
    }
    tally
}

/// One short connection: connect, send `request`, read `reply` bytes to
/// EOF, close.
fn exchange(to: SocketAddr, request: &[u8], reply: usize, buf: &mut [u8]) -> io::Result<()> {
    let mut stream = TcpStream::connect(to)?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
    stream.write_all(request)?;
    let mut got = 0;
    loop {
        match stream.read(buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    if got != reply {
        return Err(io::Error::new(ErrorKind::InvalidData, format!("a reply of {got} bytes, not {reply}")));
    }
    Ok(())
}

// ----------------------------------------------------------------- udp-sink

fn udp_sink(mut flags: Flags) -> Result<()> {
    let bind: SocketAddr = flags.required("bind")?;
    let idle = Duration::from_millis(flags.take("idle-ms", 500)?);
    let wait = Duration::from_secs(flags.take("wait-s", 30)?);
    flags.finish()?;
    let options = UdpOptions { recv_buffer: 16 << 20, nonblocking: true, ..UdpOptions::default() };
    let socket = UdpSocket::bind_with(bind, options).map_err(|err| format!("listen udp {bind}: {err}"))?;
    let mut batch = RecvBatch::new(64, 2048);
    eprintln!("udp-sink: listening on {bind}");
    let (mut datagrams, mut bytes) = (0u64, 0u64);
    let mut first: Option<Instant> = None;
    let mut last = Instant::now();
    loop {
        let mut fds = [PollFd::new(&socket, Events::IN)];
        match poll(&mut fds, Some(if first.is_some() { idle } else { wait })) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => return Err(format!("poll: {err}")),
        }
        loop {
            match socket.recv_batch(&mut batch) {
                Ok(_) => {
                    for datagram in batch.iter() {
                        datagrams += datagram.segments().count() as u64;
                        bytes += datagram.payload.len() as u64;
                    }
                    last = Instant::now();
                    first.get_or_insert(last);
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) if is_transient(&err) => {}
                Err(err) => return Err(format!("recvmmsg on {bind}: {err}")),
            }
        }
    }
    let seconds = first.map_or(0.0, |first| last.duration_since(first).as_secs_f64());
    let rate = if seconds > 0.0 { datagrams as f64 / seconds } else { 0.0 };
    println!("dgram_per_s={rate:.0} datagrams={datagrams} bytes={bytes} seconds={seconds:.2}");
    Ok(())
}

// ----------------------------------------------------------------- udp-send

fn udp_send(mut flags: Flags) -> Result<()> {
    let to: SocketAddr = flags.required("to")?;
    let flows: usize = flags.take("flows", 1)?;
    let size: usize = flags.take("size", 64)?;
    let seconds = duration(flags.take("seconds", 5.0)?)?;
    let batch: usize = flags.take("batch", 32)?;
    let mode: String = flags.take("send", "gso".to_owned())?;
    flags.finish()?;
    if flows == 0 || batch == 0 || size == 0 {
        return Err("--flows, --batch and --size must be at least 1".into());
    }
    let any: SocketAddr = match to {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sockets = (0..flows)
        .map(|_| UdpSocket::bind_with(any, UdpOptions::default()))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|err| format!("open {flows} UDP sockets: {err}"))?;
    let gso = match mode.as_str() {
        "gso" if size <= usize::from(u16::MAX) => sockets[0].gso_supported(),
        "gso" => false,
        "mmsg" => false,
        other => return Err(format!("invalid value {other:?} for --send: gso or mmsg")),
    };
    if mode == "gso" && !gso {
        eprintln!("udp-send: no UDP GSO here; sending datagram by datagram");
    }
    // GSO: one message per call that the kernel cuts into `per_message`
    // datagrams. Otherwise `batch` datagrams per `sendmmsg`.
    let per_message = if gso { (MAX_PAYLOAD / size).min(MAX_GSO_SEGMENTS) } else { 1 };
    let payload = vec![0x5a; size * per_message];
    let transmits = if gso {
        vec![Transmit { segment_size: u16::try_from(size).ok(), ..Transmit::new(to, &payload) }]
    } else {
        vec![Transmit::new(to, &payload); batch]
    };
    let start = Instant::now();
    let deadline = start + seconds;
    let (mut sent, mut refused) = (0u64, 0u64);
    while Instant::now() < deadline {
        for socket in &sockets {
            match socket.send_batch(transmits.iter().copied()) {
                Ok(n) => sent += (n * per_message) as u64,
                Err(err) if err.kind() == ErrorKind::ConnectionRefused || err.raw_os_error() == Some(ENOBUFS) => {
                    // An ICMP error from an earlier datagram, or a full queue.
                    refused += 1;
                }
                Err(err) if err.kind() == ErrorKind::Interrupted || err.kind() == ErrorKind::WouldBlock => {}
                Err(err) => return Err(format!("sendmmsg to {to}: {err}")),
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let how = if gso { "gso" } else { "mmsg" };
    println!(
        "sent_per_s={:.0} sent={sent} send_errors={refused} seconds={elapsed:.2} send={how}",
        sent as f64 / elapsed
    );
    Ok(())
}
