//! wharf-proxy's descriptors, as docker hands them over: fd 3 is the ready
//! pipe (`0\n` then EOF on success, `1\n` and the reason on failure, with
//! exit 1); fd 4, with `-use-listen-fd`, is the listening (TCP) or bound
//! (UDP) socket to serve on. And the proxy gives back every descriptor it
//! took: after 10,000 connections, 1,000 open at a time, it holds as many
//! as it did idle, also when 500 more clients give up at once; and 10,000
//! clients at once are all served by the one process, up to the
//! descriptor limit at a time.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use tests::proxy::{
    in_netns, raise_nofile, sock, tcp_exchange, udp_exchange, udp_socket, Proxy, StatsPath, TcpServer, Topology,
    UdpServer, CONTAINER_IP, HOST_IP, PATIENCE,
};
use tests::wait_for;

const PROXY: &str = env!("CARGO_BIN_EXE_wharf-proxy-e2e");

fn legacy(proto: &str, host_port: u16, container_port: u16) -> Vec<String> {
    [
        "-proto",
        proto,
        "-host-ip",
        HOST_IP,
        "-host-port",
        &host_port.to_string(),
        "-container-ip",
        CONTAINER_IP,
        "-container-port",
        &container_port.to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn ready_pipe_says_0_then_closes_and_the_proxy_serves() {
    let topo = Topology::new();
    let _server = TcpServer::echo(&topo.container, sock(CONTAINER_IP, 80));
    let args = legacy("tcp", 8080, 80);
    // spawn() reads fd 3 to EOF: exactly "0\n", then the proxy closed it.
    let (mut proxy, said) = Proxy::spawn(PROXY, &topo.host, &strs(&args), None);
    assert_eq!(said, "0\n", "{}", proxy.output());
    assert!(proxy.running(), "the proxy runs on after reporting success:\n{}", proxy.output());
    let reply = tcp_exchange(&topo.outside, sock(HOST_IP, 8080), b"ready").unwrap();
    assert_eq!(reply, b"ready");
}

/// Holds `addr` in the host namespace with a TCP listener or a UDP socket,
/// starts the proxy on it and checks the failure report.
fn fails_on_a_taken_port(topo: &Topology, args: &[String], taken: &str) {
    let (mut proxy, said) = Proxy::spawn(PROXY, &topo.host, &strs(args), None);
    assert!(said.starts_with("1\n"), "fd 3 should start with 1\\n, got {said:?}\n{}", proxy.output());
    assert!(said.contains(taken), "fd 3 should name {taken}: {said:?}");
    let status = proxy.wait(PATIENCE).unwrap_or_else(|| panic!("still running after failing: {}", proxy.output()));
    assert_eq!(status.code(), Some(1), "{}", proxy.output());
    assert!(proxy.output().contains(taken), "stderr should name {taken}: {}", proxy.output());
}

#[test]
fn ready_pipe_reports_a_port_in_use_and_exits_1() {
    let topo = Topology::new();
    let _tcp = in_netns(&topo.host, || TcpListener::bind(sock(HOST_IP, 8080))).unwrap();
    let _udp = in_netns(&topo.host, || UdpSocket::bind(sock(HOST_IP, 5353))).unwrap();
    let _held = in_netns(&topo.host, || TcpListener::bind(sock(HOST_IP, 9005))).unwrap();

    fails_on_a_taken_port(&topo, &legacy("tcp", 8080, 80), "198.51.100.1:8080");
    fails_on_a_taken_port(&topo, &legacy("udp", 5353, 53), "198.51.100.1:5353");
    // One taken port in a range fails the whole start, and nothing is left
    // bound: the ports before it are free again once the proxy has exited.
    let map = ["-map", "tcp:198.51.100.1:9000-9009:198.51.100.2:9000-9009"].map(str::to_owned);
    fails_on_a_taken_port(&topo, &map, "198.51.100.1:9005");
    for port in 9000..9005 {
        in_netns(&topo.host, || TcpListener::bind(sock(HOST_IP, port)))
            .unwrap_or_else(|e| panic!("port {port} was left bound by the failed proxy: {e}"));
    }
}

#[test]
fn sctp_is_reported_as_unsupported_by_this_kernel() {
    let topo = Topology::new();
    assert!(
        !std::fs::read_to_string("/proc/net/protocols").unwrap().contains("SCTP"),
        "this test expects a kernel without SCTP"
    );
    let (mut proxy, said) = Proxy::spawn(PROXY, &topo.host, &strs(&legacy("sctp", 8080, 80)), None);
    assert!(said.starts_with("1\n"), "{said:?}\n{}", proxy.output());
    assert!(said.contains("sctp is not supported by this kernel"), "{said:?}");
    let status = proxy.wait(PATIENCE).expect("exits after failing");
    assert_eq!(status.code(), Some(1), "{}", proxy.output());
}

#[test]
fn inherited_tcp_listener_on_fd_4_serves() {
    let topo = Topology::new();
    let _server = TcpServer::echo(&topo.container, sock(CONTAINER_IP, 80));
    let listener = in_netns(&topo.host, || TcpListener::bind(sock(HOST_IP, 8080))).unwrap();
    let inode = socket_inode(listener.as_raw_fd());
    let mut args = legacy("tcp", 8080, 80);
    args.push("-use-listen-fd".into());
    let (proxy, said) = Proxy::spawn(PROXY, &topo.host, &strs(&args), Some(OwnedFd::from(listener)));
    assert_eq!(said, "0\n", "{}", proxy.output());
    for i in 0..3 {
        let request = format!("via the inherited listener, {i}");
        let reply = tcp_exchange(&topo.outside, sock(HOST_IP, 8080), request.as_bytes()).unwrap();
        assert_eq!(reply, request.as_bytes(), "{}", proxy.output());
    }
    // The proxy serves on the socket it was given, not on one of its own.
    assert!(proxy.fds().iter().any(|fd| fd.ends_with(&inode)), "no {inode} in {:?}", proxy.fds());
}

/// What `/proc/self/fd/FD` points to: `socket:[INODE]`.
fn socket_inode(fd: RawFd) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap().display().to_string()
}

#[test]
fn inherited_udp_socket_on_fd_4_serves() {
    let topo = Topology::new();
    let _server = UdpServer::echo(&topo.container, sock(CONTAINER_IP, 53));
    let bound = in_netns(&topo.host, || UdpSocket::bind(sock(HOST_IP, 5353))).unwrap();
    let inode = socket_inode(bound.as_raw_fd());
    let mut args = legacy("udp", 5353, 53);
    args.push("-use-listen-fd=true".into());
    let (proxy, said) = Proxy::spawn(PROXY, &topo.host, &strs(&args), Some(OwnedFd::from(bound)));
    assert_eq!(said, "0\n", "{}", proxy.output());
    let client = udp_socket(&topo.outside, sock("0.0.0.0", 0));
    for i in 0..3 {
        let request = format!("datagram {i} via the inherited socket");
        let (reply, from) = udp_exchange(&client, sock(HOST_IP, 5353), request.as_bytes())
            .unwrap_or_else(|e| panic!("{e}\n{}", proxy.output()));
        assert_eq!(reply, request.as_bytes());
        assert_eq!(from, sock(HOST_IP, 5353));
    }
    assert!(proxy.fds().iter().any(|fd| fd.ends_with(&inode)), "no {inode} in {:?}", proxy.fds());
}

#[test]
fn an_inherited_fd_4_that_is_not_a_socket_fails_the_start() {
    let topo = Topology::new();
    let mut args = legacy("tcp", 8080, 80);
    args.push("-use-listen-fd".into());
    let file = std::fs::File::open("/dev/null").unwrap();
    let (mut proxy, said) = Proxy::spawn(PROXY, &topo.host, &strs(&args), Some(OwnedFd::from(file)));
    assert!(said.starts_with("1\n") && said.len() > 2, "{said:?}\n{}", proxy.output());
    assert_eq!(proxy.wait(PATIENCE).and_then(|s| s.code()), Some(1), "{}", proxy.output());
}

#[test]
fn ten_thousand_connections_leave_no_descriptor_behind() {
    const BATCHES: usize = 10;
    const AT_ONCE: usize = 1_000;
    const STEP: usize = 100;
    raise_nofile(8 * AT_ONCE as u64);
    let topo = Topology::new();
    // The server answers each 4-byte request with the same 4 bytes, then
    // waits for the client's EOF.
    let _server = TcpServer::start(&topo.container, sock(CONTAINER_IP, 80), |mut stream| {
        let _ = stream.set_read_timeout(Some(PATIENCE));
        let mut request = [0u8; 4];
        if stream.read_exact(&mut request).is_ok() && stream.write_all(&request).is_ok() {
            let _ = stream.read(&mut [0u8; 1]);
        }
    });
    let stats = StatsPath::new();
    let mut args = legacy("tcp", 8080, 80);
    args.extend(["-stats-socket".to_owned(), stats.as_str().to_owned()]);
    let mut proxy = Proxy::start(PROXY, &topo.host, &strs(&args));
    // One connection first, so that whatever the proxy sets up lazily (a
    // pipe pool, a thread) counts as idle.
    assert_eq!(tcp_exchange(&topo.host, sock(HOST_IP, 8080), b"warm").unwrap(), b"warm");
    assert!(wait_for(PATIENCE, || stats.read().is_ok_and(|c| c.0.values().all(|m| m.get("active") == Some(&0)))));
    // The fewest descriptors over a second and a half: none that is still
    // closing (the stats reader's connection just served, a pooled pipe
    // after its quiet second) counts as idle.
    let idle = (0..30)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            proxy.fd_count()
        })
        .min()
        .unwrap_or(0);
    let idle_fds = proxy.fds();
    assert!(idle > 0);

    for batch in 0..BATCHES {
        // 1,000 open at once, opened 100 at a time, each step's exchanges
        // done before the next: at most 100 wait in an accept queue, so no
        // listen backlog is overrun (a dropped SYN costs a 1 s retry).
        let mut streams: Vec<TcpStream> = Vec::with_capacity(AT_ONCE);
        for step in 0..AT_ONCE / STEP {
            let opened: Vec<TcpStream> = in_netns(&topo.host, || {
                (0..STEP)
                    .map(|i| {
                        let stream = TcpStream::connect_timeout(&sock(HOST_IP, 8080), PATIENCE).unwrap_or_else(|e| {
                            panic!("batch {batch}, connection {}: {e}\n{}", step * STEP + i, proxy.output())
                        });
                        stream.set_read_timeout(Some(PATIENCE)).unwrap();
                        stream
                    })
                    .collect()
            });
            let id = |i: usize| (batch * AT_ONCE + step * STEP + i) as u32;
            for (i, mut stream) in opened.iter().enumerate() {
                stream.write_all(&id(i).to_be_bytes()).unwrap();
            }
            for (i, mut stream) in opened.iter().enumerate() {
                let mut reply = [0u8; 4];
                stream
                    .read_exact(&mut reply)
                    .unwrap_or_else(|e| panic!("batch {batch}, connection {}: {e}\n{}", id(i), proxy.output()));
                assert_eq!(u32::from_be_bytes(reply), id(i), "crossed connections");
            }
            streams.extend(opened);
        }
        if batch == 0 {
            // With 1,000 relayed connections open, the proxy holds at least
            // two descriptors for each: the count below means something.
            let busy = proxy.fd_count();
            assert!(busy >= idle + 2 * AT_ONCE, "idle {idle}, with {AT_ONCE} open {busy}");
        }
        drop(streams);
    }

    // And 500 clients that give up at once: most close before the proxy's
    // connection to the container has completed.
    in_netns(&topo.host, || {
        for i in 0..500 {
            let stream = TcpStream::connect_timeout(&sock(HOST_IP, 8080), PATIENCE)
                .unwrap_or_else(|e| panic!("quitter {i}: {e}\n{}", proxy.output()));
            drop(stream);
        }
    });

    // Pooled pipes are closed after a quiet second, so the count may end
    // below the idle one (taken just after a warm-up connection); never above.
    let settled = wait_for(Duration::from_secs(15), || proxy.fd_count() <= idle);
    assert!(
        settled,
        "the proxy holds {} descriptors, {idle} when idle\nidle: {idle_fds:?}\nnow: {:?}",
        proxy.fd_count(),
        proxy.fds()
    );
    let mapping = "tcp:198.51.100.1:8080:198.51.100.2:80";
    assert!(wait_for(PATIENCE, || stats.read().is_ok_and(|c| c.get(mapping, "active") == 0)));
    let counters = stats.read().unwrap();
    assert_eq!(counters.get(mapping, "connections"), 1 + (BATCHES * AT_ONCE) as u64 + 500);
    assert_eq!(counters.get(mapping, "errors"), 0);
    assert_eq!(counters.get(mapping, "bytes_in"), 4 + 4 * (BATCHES * AT_ONCE) as u64);
    assert_eq!(counters.get(mapping, "bytes_out"), 4 + 4 * (BATCHES * AT_ONCE) as u64);
    assert!(proxy.running(), "{}", proxy.output());
}

/// 10,000 clients connected at the same time to the one proxy process.
/// Here a process may hold 20,000 descriptors (the hard limit, which
/// root cannot raise without CAP_SYS_RESOURCE) and each relayed
/// connection takes two, so the proxy relays all it can hold and leaves
/// the last few waiting — accepted or still in the listen queue, never
/// dropped — until a connection closes. Every client gets its own bytes
/// back, no connection fails, and the proxy ends at its idle descriptors.
#[test]
fn ten_thousand_clients_at_once_up_to_the_descriptor_limit() {
    const CLIENTS: usize = 10_000;
    const FIRST: usize = 9_900;
    raise_nofile(CLIENTS as u64 + 1_000);
    let topo = Topology::new();
    // The server runs in its own process: the test's 10,000 client sockets
    // and the server's 10,000 would not fit one process.
    let server_code = r#"
import asyncio
async def handle(r, w):
    try:
        w.write(await r.readexactly(4))
        await w.drain()
        await r.read()
    except Exception:
        pass
    w.close()
async def main():
    s = await asyncio.start_server(handle, "198.51.100.2", 80, backlog=4096)
    print("ready", flush=True)
    await s.serve_forever()
asyncio.run(main())
"#;
    let mut server = std::process::Command::new("ip")
        .args(["netns", "exec", topo.container.name(), "python3", "-c", server_code])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the python server");
    let mut ready = [0u8; 6];
    server.stdout.take().unwrap().read_exact(&mut ready).expect("the server says ready");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(server);

    let stats = StatsPath::new();
    let mut args = legacy("tcp", 8080, 80);
    args.extend(["-stats-socket".to_owned(), stats.as_str().to_owned()]);
    let mut proxy = Proxy::start(PROXY, &topo.host, &strs(&args));
    let idle = proxy.fd_count();
    assert!(idle > 0);
    let mut clients: Vec<Option<TcpStream>> = in_netns(&topo.host, || {
        (0..CLIENTS as u32)
            .map(|id| {
                let mut stream = TcpStream::connect_timeout(&sock(HOST_IP, 8080), PATIENCE)
                    .unwrap_or_else(|e| panic!("connection {id}: {e}\n{}", proxy.output()));
                stream.set_read_timeout(Some(PATIENCE)).unwrap();
                stream.write_all(&id.to_be_bytes()).unwrap();
                Some(stream)
            })
            .collect()
    });
    let read_reply = |id: usize, stream: &mut TcpStream| {
        let mut reply = [0u8; 4];
        stream.read_exact(&mut reply).unwrap_or_else(|e| panic!("connection {id}: {e}"));
        assert_eq!(u32::from_be_bytes(reply), id as u32, "crossed connections");
    };
    for (id, stream) in clients.iter_mut().enumerate().take(FIRST) {
        read_reply(id, stream.as_mut().unwrap());
    }
    let mapping = "tcp:198.51.100.1:8080:198.51.100.2:80";
    let active = stats.read().unwrap().get(mapping, "active");
    assert!(active >= FIRST as u64, "{active} relayed");
    // The proxy's own limit (it raises the soft one to the hard one) decides
    // whether the last clients must wait: each relayed connection takes two
    // descriptors. Where they cannot all fit (here: 20,000), some waited.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", proxy.pid())).unwrap();
    let nofile: usize = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3)?.parse().ok())
        .expect("the proxy's open-file limit");
    if 2 * CLIENTS + idle > nofile {
        assert!(active < CLIENTS as u64, "{active} relayed under a limit of {nofile}: none waited");
    } else {
        assert_eq!(active, CLIENTS as u64, "room for all under a limit of {nofile}");
    }
    // Closing a hundred frees room for the rest.
    for stream in clients.iter_mut().take(100) {
        drop(stream.take());
    }
    for (id, stream) in clients.iter_mut().enumerate().skip(FIRST) {
        read_reply(id, stream.as_mut().unwrap());
    }
    assert!(proxy.running(), "{}", proxy.output());
    drop(clients);
    assert!(
        wait_for(Duration::from_secs(30), || proxy.fd_count() <= idle),
        "the proxy holds {} descriptors, {idle} when idle; {} pipes; counters {:?}",
        proxy.fd_count(),
        proxy.fds().iter().filter(|fd| fd.contains("pipe")).count(),
        stats.read().map(|c| c.get(mapping, "active"))
    );
    let counters = stats.read().unwrap();
    assert_eq!(counters.get(mapping, "active"), 0);
    assert_eq!(counters.get(mapping, "connections"), CLIENTS as u64);
    assert_eq!(counters.get(mapping, "errors"), 0);
}
