//! wharf-proxy's TCP relay, with both data paths (`-tcp-relay splice` and
//! `copy`): 64 MiB each way arrive byte-exact across a half-close in either
//! direction, and 16 MiB each way at once (full duplex); a server that
//! speaks first is heard; a reset on one side resets the other; an unreachable
//! container closes the client and counts an error; SIGTERM drains (no new
//! connections, open ones finish, exit 0), and gives up after
//! `-drain-timeout`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tests::proxy::{
    connect, expect_closed, in_netns, sock, Pattern, Proxy, StatsPath, TcpServer, Topology, CONTAINER_IP, HOST_IP,
    OUTSIDE_IP, PATIENCE,
};
use tests::wait_for;

const PROXY: &str = env!("CARGO_BIN_EXE_wharf-proxy-e2e");
const MAPPING: &str = "tcp:198.51.100.1:8080:198.51.100.2:80";

fn start(topo: &Topology, relay: &str, extra: &[&str]) -> Proxy {
    let mut args = vec!["-map", MAPPING, "-tcp-relay", relay];
    args.extend_from_slice(extra);
    Proxy::start(PROXY, &topo.host, &args)
}

const BIG: u64 = 64 * 1024 * 1024;

/// What the server saw on one connection: the mode byte, and how many
/// bytes it verified or the error.
type Seen = (u8, Result<u64, String>);

/// Mode `A`: the client sends BIG bytes and half-closes; the server reads
/// to EOF, then answers BIG bytes and closes. Mode `B`: the server sends
/// BIG bytes and half-closes first; the client reads to EOF, then sends
/// BIG bytes and closes; the server reads them to EOF.
fn big_transfers_with_half_close(relay: &str) {
    let topo = Topology::new();
    let (seen_tx, seen_rx) = mpsc::channel::<Seen>();
    let _server = TcpServer::start(&topo.container, sock(CONTAINER_IP, 80), move |mut stream| {
        let _ = stream.set_read_timeout(Some(PATIENCE));
        let mut mode = [0u8];
        if stream.read_exact(&mut mode).is_err() {
            return;
        }
        let result = match mode[0] {
            b'A' => {
                let got = Pattern::new(1).verify(&mut stream).map_err(|e| e.to_string());
                let answered = Pattern::new(2).write(&mut stream, BIG);
                drop(stream);
                got.and_then(|n| answered.map(|_| n).map_err(|e| format!("answer: {e}")))
            }
            _ => {
                let sent = Pattern::new(3).write(&mut stream, BIG).and_then(|_| stream.shutdown(Shutdown::Write));
                let got = Pattern::new(4).verify(&mut stream).map_err(|e| e.to_string());
                sent.map_err(|e| format!("send: {e}")).and(got)
            }
        };
        let _ = seen_tx.send((mode[0], result));
    });
    let stats = StatsPath::new();
    let proxy = start(&topo, relay, &["-stats-socket", stats.as_str()]);

    let client_a = {
        let mut stream = connect(&topo.outside, sock(HOST_IP, 8080)).unwrap();
        std::thread::spawn(move || -> io::Result<u64> {
            stream.write_all(b"A")?;
            Pattern::new(1).write(&mut stream, BIG)?;
            stream.shutdown(Shutdown::Write)?;
            Pattern::new(2).verify(&mut stream)
        })
    };
    let client_b = {
        let mut stream = connect(&topo.outside, sock(HOST_IP, 8080)).unwrap();
        std::thread::spawn(move || -> io::Result<u64> {
            stream.write_all(b"B")?;
            let got = Pattern::new(3).verify(&mut stream)?;
            Pattern::new(4).write(&mut stream, BIG)?;
            drop(stream);
            Ok(got)
        })
    };
    let a = client_a.join().unwrap();
    let b = client_b.join().unwrap();
    assert_eq!(a.as_ref().ok(), Some(&BIG), "{relay}: client A received {a:?}\n{}", proxy.output());
    assert_eq!(b.as_ref().ok(), Some(&BIG), "{relay}: client B received {b:?}\n{}", proxy.output());
    let mut seen: Vec<Seen> = (0..2).map(|_| seen_rx.recv_timeout(PATIENCE).expect("server reported")).collect();
    seen.sort_by_key(|(mode, _)| *mode);
    assert_eq!(seen, vec![(b'A', Ok(BIG)), (b'B', Ok(BIG))], "{relay}: what the server received");

    assert!(wait_for(PATIENCE, || stats.read().is_ok_and(|c| c.get(MAPPING, "active") == 0)));
    let counters = stats.read().unwrap();
    assert_eq!(counters.get(MAPPING, "connections"), 2);
    assert_eq!(counters.get(MAPPING, "bytes_in"), 2 + 2 * BIG, "{counters:?}");
    assert_eq!(counters.get(MAPPING, "bytes_out"), 2 * BIG, "{counters:?}");
    assert_eq!(counters.get(MAPPING, "errors"), 0);
}

#[test]
fn large_transfers_with_half_close_splice() {
    big_transfers_with_half_close("splice");
}

#[test]
fn large_transfers_with_half_close_copy() {
    big_transfers_with_half_close("copy");
}

/// Both sides write 16 MiB at once while reading what the other sends: a
/// relay that serves one direction at a time, or stops reading while its
/// write blocks, deadlocks here.
fn full_duplex(relay: &str) {
    const SIZE: u64 = 16 * 1024 * 1024;
    let topo = Topology::new();
    let (seen_tx, seen_rx) = mpsc::channel::<Result<u64, String>>();
    let _server = TcpServer::start(&topo.container, sock(CONTAINER_IP, 80), move |stream| {
        let _ = stream.set_read_timeout(Some(PATIENCE));
        let mut writer = stream.try_clone().unwrap();
        let sending = std::thread::spawn(move || {
            Pattern::new(11).write(&mut writer, SIZE).and_then(|_| writer.shutdown(Shutdown::Write))
        });
        let got = Pattern::new(12).verify(&mut &stream).map_err(|e| e.to_string());
        let sent = sending.join().unwrap().map_err(|e| format!("send: {e}"));
        let _ = seen_tx.send(sent.and(got));
    });
    let proxy = start(&topo, relay, &[]);
    let client = connect(&topo.outside, sock(HOST_IP, 8080)).unwrap();
    let mut writer = client.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        Pattern::new(12).write(&mut writer, SIZE).and_then(|_| writer.shutdown(Shutdown::Write))
    });
    let got = Pattern::new(11).verify(&mut &client);
    assert_eq!(got.as_ref().ok(), Some(&SIZE), "{relay}: the client received {got:?}\n{}", proxy.output());
    assert!(sending.join().unwrap().is_ok(), "{relay}: the client could not send");
    let seen = seen_rx.recv_timeout(PATIENCE + PATIENCE).expect("the server reported");
    assert_eq!(seen, Ok(SIZE), "{relay}: what the server received");
}

#[test]
fn full_duplex_splice() {
    full_duplex("splice");
}

#[test]
fn full_duplex_copy() {
    full_duplex("copy");
}

#[test]
fn a_server_that_speaks_first_is_heard() {
    let topo = Topology::new();
    // An SMTP-like server: the banner goes out on accept, before the client
    // says anything.
    let _server = TcpServer::start(&topo.container, sock(CONTAINER_IP, 80), |mut stream| {
        let _ = stream.write_all(b"220 ready\r\n");
        let _ = stream.set_read_timeout(Some(PATIENCE));
        let _ = stream.read(&mut [0u8; 1]);
    });
    for (relay, port) in [("splice", 8080u16), ("copy", 8081)] {
        let map = format!("tcp:198.51.100.1:{port}:198.51.100.2:80");
        let proxy = Proxy::start(PROXY, &topo.host, &["-map", &map, "-tcp-relay", relay]);
        // The proxy holds the container handshake's last ACK back for the
        // client's first bytes; with none, it must send it at once. Held
        // until its timer (200 ms), the server would not even accept before
        // then: the fastest of three banners shows which.
        let mut fastest = Duration::MAX;
        for _ in 0..3 {
            let start = Instant::now();
            let mut client = connect(&topo.outside, sock(HOST_IP, port)).unwrap();
            let mut banner = [0u8; 11];
            client.read_exact(&mut banner).unwrap_or_else(|e| panic!("{relay}: no banner: {e}\n{}", proxy.output()));
            assert_eq!(&banner, b"220 ready\r\n");
            fastest = fastest.min(start.elapsed());
        }
        assert!(fastest < Duration::from_millis(100), "{relay}: the banner took {fastest:?} at best");
    }
}

/// Closing a socket with unread bytes in its receive queue makes the
/// kernel send RST instead of FIN: a reset without SO_LINGER.
fn is_reset(result: &io::Result<usize>) -> bool {
    matches!(result, Err(e) if e.kind() == io::ErrorKind::ConnectionReset)
}

#[test]
fn a_reset_from_either_side_resets_the_other() {
    let topo = Topology::new();
    // Port 80: the server resets as soon as a byte arrives.
    let _resetter = TcpServer::start(&topo.container, sock(CONTAINER_IP, 80), |stream| {
        let _ = stream.set_read_timeout(Some(PATIENCE));
        let _ = stream.peek(&mut [0u8; 1]);
        drop(stream);
    });
    // Port 81: the server sends a byte, then reports how its read ends
    // when the client resets.
    let (read_tx, read_rx) = mpsc::channel::<io::Result<usize>>();
    let _reader = TcpServer::start(&topo.container, sock(CONTAINER_IP, 81), move |mut stream| {
        let _ = stream.set_read_timeout(Some(PATIENCE));
        let _ = stream.write_all(b"y");
        let _ = read_tx.send(stream.read(&mut [0u8; 16]));
    });
    for (relay, port) in [("splice", 8080u16), ("copy", 8081)] {
        let args = [
            "-map",
            &format!("tcp:198.51.100.1:{port}:198.51.100.2:80"),
            "-map",
            &format!("tcp:198.51.100.1:{}:198.51.100.2:81", port + 100),
            "-tcp-relay",
            relay,
        ]
        .map(|s| s.to_owned());
        let proxy = Proxy::start(PROXY, &topo.host, &args.iter().map(String::as_str).collect::<Vec<_>>());

        // The server resets: the client's read fails with ECONNRESET, not EOF.
        let mut client = connect(&topo.outside, sock(HOST_IP, port)).unwrap();
        client.write_all(b"x").unwrap();
        let result = client.read(&mut [0u8; 16]);
        assert!(is_reset(&result), "{relay}: the client should see a reset, got {result:?}\n{}", proxy.output());

        // The client resets: the server's read fails with ECONNRESET.
        let client = connect(&topo.outside, sock(HOST_IP, port + 100)).unwrap();
        client.peek(&mut [0u8; 1]).unwrap();
        drop(client);
        let result = read_rx.recv_timeout(PATIENCE + PATIENCE).expect("the server reported its read");
        assert!(is_reset(&result), "{relay}: the server should see a reset, got {result:?}\n{}", proxy.output());
    }
}

#[test]
fn an_unreachable_container_closes_the_client_and_counts_an_error() {
    let topo = Topology::new();
    // Nothing listens on the container's port 80: the connection is refused.
    let stats = StatsPath::new();
    let proxy = start(&topo, "splice", &["-stats-socket", stats.as_str()]);
    let closed = expect_closed(&topo.outside, sock(HOST_IP, 8080));
    assert_eq!(closed, Ok(()), "the client is closed\n{}", proxy.output());
    assert!(wait_for(PATIENCE, || stats.read().is_ok_and(|c| c.get(MAPPING, "errors") == 1)), "{:?}", stats.read());
    let counters = stats.read().unwrap();
    assert_eq!(counters.get(MAPPING, "connections"), 1);
    assert_eq!(counters.get(MAPPING, "active"), 0);
}

#[test]
fn sigterm_drains_open_connections_then_exits_0() {
    const CHUNKS: u64 = 20;
    const CHUNK: u64 = 1024 * 1024;
    let topo = Topology::new();
    // The server streams CHUNKS MiB, one every 100 ms, then closes.
    let _server = TcpServer::start(&topo.container, sock(CONTAINER_IP, 80), |mut stream| {
        let mut request = [0u8; 2];
        if stream.read_exact(&mut request).is_err() {
            return;
        }
        let pattern = Pattern::new(7);
        let mut all = Vec::new();
        let _ = pattern.write(&mut all, CHUNKS * CHUNK);
        for chunk in all.chunks(CHUNK as usize) {
            if stream.write_all(chunk).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let mut proxy = start(&topo, "splice", &["-drain-timeout", "5s"]);
    let mut client = connect(&topo.outside, sock(HOST_IP, 8080)).unwrap();
    client.write_all(b"go").unwrap();
    // Some bytes have arrived: the transfer is under way.
    client.peek(&mut [0u8; 1]).unwrap();

    proxy.signal("TERM");
    let signalled = Instant::now();
    let refused = wait_for(Duration::from_millis(1500), || {
        in_netns(&topo.outside, || TcpStream::connect_timeout(&sock(HOST_IP, 8080), Duration::from_millis(500)))
            .is_err_and(|e| e.kind() == io::ErrorKind::ConnectionRefused)
    });
    assert!(refused, "new connections are refused soon after SIGTERM\n{}", proxy.output());
    assert!(proxy.running(), "the proxy waits for the open connection\n{}", proxy.output());

    let received = Pattern::new(7).verify(&mut client);
    assert_eq!(received.ok(), Some(CHUNKS * CHUNK), "the open transfer completes\n{}", proxy.output());
    // The server has closed; the client closes too, which ends the last
    // connection (until then it is half-open, and the proxy rightly waits).
    drop(client);
    let status = proxy.wait(Duration::from_secs(3)).unwrap_or_else(|| panic!("still running\n{}", proxy.output()));
    assert_eq!(status.code(), Some(0), "{}", proxy.output());
    let elapsed = signalled.elapsed();
    assert!(elapsed < Duration::from_secs(4), "exits once drained, not at the timeout: {elapsed:?}");
}

#[test]
fn drain_gives_up_after_the_drain_timeout() {
    let topo = Topology::new();
    // The server reads until the connection ends, whenever that is.
    let (got_tx, got_rx) = mpsc::channel();
    let _server = TcpServer::start(&topo.container, sock(CONTAINER_IP, 80), move |mut stream| {
        let mut first = [0u8];
        let _ = stream.read_exact(&mut first);
        let _ = got_tx.send(first[0]);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let _ = stream.read_to_end(&mut Vec::new());
    });
    let mut proxy = start(&topo, "copy", &["-drain-timeout", "1s"]);
    let mut client = connect(&topo.outside, sock(HOST_IP, 8080)).unwrap();
    client.write_all(b"z").unwrap();
    assert_eq!(got_rx.recv_timeout(PATIENCE), Ok(b'z'));

    proxy.signal("TERM");
    let signalled = Instant::now();
    let status =
        proxy.wait(PATIENCE).unwrap_or_else(|| panic!("did not exit after the drain timeout\n{}", proxy.output()));
    let elapsed = signalled.elapsed();
    assert!(elapsed >= Duration::from_millis(900), "exited after {elapsed:?}, before the 1 s drain timeout");
    assert!(elapsed < Duration::from_secs(3), "exited after {elapsed:?}, long after the 1 s drain timeout");
    assert_eq!(status.code(), Some(0), "{}", proxy.output());
    // The unfinished connection was closed, one way or another.
    let result = client.read(&mut [0u8; 16]);
    assert!(matches!(result, Ok(0)) || is_reset(&result), "{result:?}");

    // With nothing open, SIGINT ends the proxy at once.
    let args = ["-host-ip", HOST_IP, "-host-port", "8090", "-container-ip", CONTAINER_IP, "-container-port", "80"];
    let mut idle = Proxy::start(PROXY, &topo.host, &args);
    idle.signal("INT");
    let signalled = Instant::now();
    let status =
        idle.wait(Duration::from_secs(2)).unwrap_or_else(|| panic!("idle proxy ignored SIGINT\n{}", idle.output()));
    assert_eq!(status.code(), Some(0), "{}", idle.output());
    assert!(signalled.elapsed() < Duration::from_secs(2));
}

/// Each established TCP socket in `ns` as (local, peer, congestion control
/// algorithm), from `ss -tin`: the algorithm leads the info line that
/// follows each socket's line.
fn congestion_of_sockets(ns: &tests::Netns) -> Vec<(String, String, String)> {
    let out = ns.command("ss", &["-tinH", "state", "established"]).output().expect("run ss");
    assert!(out.status.success(), "ss: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut sockets = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let info = lines.next().unwrap_or_default();
        // Without a state column (it was filtered): Recv-Q Send-Q Local Peer.
        if let [_, _, local, peer, ..] = fields[..] {
            let algorithm = info.split_whitespace().next().unwrap_or_default();
            sockets.push((local.to_owned(), peer.to_owned(), algorithm.to_owned()));
        }
    }
    sockets
}

/// The algorithm of the one socket in `ns` whose local and peer addresses
/// satisfy `which`; fails the test unless exactly one does.
fn congestion_where(ns: &tests::Netns, what: &str, which: impl Fn(&str, &str) -> bool) -> String {
    let sockets = congestion_of_sockets(ns);
    let found: Vec<_> = sockets.iter().filter(|(local, peer, _)| which(local, peer)).collect();
    assert_eq!(found.len(), 1, "{what}: want one socket, found {found:?} among {sockets:?}");
    found[0].2.clone()
}

/// The proxy's connections within the host — to the container, and from a
/// client on a loopback address, whether the listener is on a loopback
/// address (the accepted socket inherits it) or the wildcard (set after
/// accept) — use `-local-congestion` (default cubic), and a client from
/// outside keeps the system's; `system` keeps it everywhere; a name the
/// kernel does not have fails start-up and says what it has. The host
/// namespace's default is set to reno first, so that neither cubic nor the
/// machine's own default can pass for it.
#[test]
fn connections_within_the_host_use_the_local_congestion_control() {
    let topo = Topology::new();
    let available = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control").unwrap();
    assert!(available.split_whitespace().any(|name| name == "cubic"), "this kernel has no cubic: {available}");
    let sysctl = topo.host.command("sysctl", &["-qw", "net.ipv4.tcp_congestion_control=reno"]).status().unwrap();
    assert!(sysctl.success(), "set the host namespace's default congestion control to reno");
    let _server = TcpServer::echo(&topo.container, sock(CONTAINER_IP, 80));
    let container_side = |_: &str, peer: &str| peer == format!("{CONTAINER_IP}:80");
    let echo_once = |stream: &mut TcpStream| {
        stream.write_all(b"ping").unwrap();
        let mut back = [0u8; 4];
        stream.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"ping");
    };
    // A client on 127.0.0.1 through the proxy on `port`, still open, and
    // the algorithm of the proxy's accepted socket for it.
    let from_loopback = |port: u16| {
        let mut client = connect(&topo.host, sock("127.0.0.1", port)).unwrap();
        echo_once(&mut client);
        let client_port = client.local_addr().unwrap().port();
        let accepted = congestion_where(&topo.host, "loopback client's accepted socket", |local, peer| {
            local == format!("127.0.0.1:{port}") && peer == format!("127.0.0.1:{client_port}")
        });
        (client, accepted)
    };

    // The default, on the wildcard: an outside client and a loopback one.
    {
        let _proxy = Proxy::start(PROXY, &topo.host, &["-map", "tcp:0.0.0.0:8080:198.51.100.2:80"]);
        let mut outside = connect(&topo.outside, sock(HOST_IP, 8080)).unwrap();
        echo_once(&mut outside);
        let outside_port = outside.local_addr().unwrap().port();
        assert_eq!(
            congestion_where(&topo.host, "outside client's accepted socket", |_, peer| {
                peer == format!("{OUTSIDE_IP}:{outside_port}")
            }),
            "reno"
        );
        let (local, accepted) = from_loopback(8080);
        assert_eq!(accepted, "cubic");
        let local_port = local.local_addr().unwrap().port();
        // The client's own socket is the client's business.
        assert_eq!(
            congestion_where(&topo.host, "loopback client's socket", |local, _| local
                == format!("127.0.0.1:{local_port}")),
            "reno"
        );
        let sockets = congestion_of_sockets(&topo.host);
        let to_container: Vec<_> = sockets.iter().filter(|(local, peer, _)| container_side(local, peer)).collect();
        assert_eq!(to_container.len(), 2, "{sockets:?}");
        assert!(to_container.iter().all(|(_, _, algorithm)| algorithm == "cubic"), "{to_container:?}");
    }

    // A listener on a loopback address with a name given explicitly, and
    // `system` (the namespace's default everywhere) on the wildcard.
    for (listen, choice, want) in [("127.0.0.1:8081", "cubic", "cubic"), ("0.0.0.0:8082", "system", "reno")] {
        let map = format!("tcp:{listen}:198.51.100.2:80");
        let _proxy = Proxy::start(PROXY, &topo.host, &["-map", &map, "-local-congestion", choice]);
        let port = listen.rsplit(':').next().unwrap().parse().unwrap();
        let (_local, accepted) = from_loopback(port);
        assert_eq!(accepted, want, "-local-congestion {choice}, accepted socket");
        assert_eq!(congestion_where(&topo.host, "container side", container_side), want, "-local-congestion {choice}");
    }

    let refused = tests::proxy::run_proxy(
        PROXY,
        &topo.host,
        &["-map", "tcp:0.0.0.0:8083:198.51.100.2:80", "-local-congestion", "nosuchcc"],
        PATIENCE,
    );
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(refused.stderr.contains("-local-congestion nosuchcc: the kernel refuses it"), "{refused}");
    assert!(refused.stderr.contains("cubic"), "names what the kernel has: {refused}");
}
