//! One wharf-proxy process serving many mappings (a 100-port TCP range, a
//! range onto one container port, a UDP mapping, and the legacy flags as
//! one more): traffic on each port reaches the matching container port,
//! and the stats socket's per-mapping counters match the traffic exactly.
//! SIGUSR1 prints the same counters to stderr and the proxy keeps serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tests::proxy::{
    sock, tcp_exchange, udp_exchange, udp_socket, Counters, Proxy, StatsPath, TcpServer, TempPath, Topology, UdpServer,
    CONTAINER_IP, HOST_IP, PATIENCE,
};
use tests::wait_for;

const PROXY: &str = env!("CARGO_BIN_EXE_wharf-proxy-e2e");

const RANGE: &str = "tcp:198.51.100.1:9000-9099:198.51.100.2:9000-9099";
const FAN_IN: &str = "tcp:198.51.100.1:7000-7004:198.51.100.2:80";
const DNS: &str = "udp:198.51.100.1:5300-5301:198.51.100.2:53";
const LEGACY: &str = "tcp:198.51.100.1:6000:198.51.100.2:80";

/// A server on `port` that reads to EOF and answers `port P got N`.
fn counting_server(topo: &Topology, port: u16) -> TcpServer {
    TcpServer::start(&topo.container, sock(CONTAINER_IP, port), move |mut stream: TcpStream| {
        let _ = stream.set_read_timeout(Some(PATIENCE));
        let mut request = Vec::new();
        let _ = stream.read_to_end(&mut request);
        let _ = stream.write_all(format!("port {port} got {}", request.len()).as_bytes());
    })
}

#[test]
fn many_mappings_in_one_process_with_exact_counters() {
    let topo = Topology::new();
    let _servers: Vec<TcpServer> =
        [9000, 9042, 9099, 80].into_iter().map(|port| counting_server(&topo, port)).collect();
    let _dns = UdpServer::echo(&topo.container, sock(CONTAINER_IP, 53));
    let stats = StatsPath::new();
    let args = [
        "-map",
        RANGE,
        "-map",
        FAN_IN,
        "--map",
        DNS,
        "-host-ip",
        HOST_IP,
        "-host-port",
        "6000",
        "-container-ip",
        CONTAINER_IP,
        "-container-port",
        "80",
        "-stats-socket",
        stats.as_str(),
    ];
    let proxy = Proxy::start(PROXY, &topo.host, &args);

    // TCP: (host port, request length, container port that must answer).
    let tcp = [
        (9000u16, 100usize, 9000u16),
        (9042, 4242, 9042),
        (9099, 1, 9099),
        (7000, 70, 80),
        (7004, 74, 80),
        (6000, 60, 80),
    ];
    let mut expected_in = std::collections::BTreeMap::<&str, u64>::new();
    let mut expected_out = std::collections::BTreeMap::<&str, u64>::new();
    for (host_port, len, container_port) in tcp {
        let reply = tcp_exchange(&topo.outside, sock(HOST_IP, host_port), &vec![b'r'; len])
            .unwrap_or_else(|e| panic!("port {host_port}: {e}\n{}", proxy.output()));
        let want = format!("port {container_port} got {len}");
        assert_eq!(String::from_utf8_lossy(&reply), want, "host port {host_port}");
        let mapping = match host_port {
            9000..=9099 => RANGE,
            7000..=7004 => FAN_IN,
            _ => LEGACY,
        };
        *expected_in.entry(mapping).or_default() += len as u64;
        *expected_out.entry(mapping).or_default() += want.len() as u64;
    }
    // A port of the range with no server behind it: the client is closed,
    // and the mapping counts one error.
    tests::proxy::expect_closed(&topo.outside, sock(HOST_IP, 9050)).unwrap();

    // UDP: two clients, one per host port of the range, 3 datagrams each.
    for port in [5300u16, 5301] {
        let client = udp_socket(&topo.outside, sock("0.0.0.0", 0));
        for i in 0..3 {
            let request = format!("{port}/{i}");
            let (reply, from) = udp_exchange(&client, sock(HOST_IP, port), request.as_bytes())
                .unwrap_or_else(|e| panic!("UDP {port}: {e}\n{}", proxy.output()));
            assert_eq!(reply, request.as_bytes());
            assert_eq!(from, sock(HOST_IP, port));
        }
    }

    let settled = wait_for(PATIENCE, || {
        stats.read().is_ok_and(|c| {
            [RANGE, FAN_IN, LEGACY].iter().all(|m| c.0.get(*m).and_then(|m| m.get("active")) == Some(&0))
        })
    });
    assert!(settled, "connections still active: {:?}", stats.read());
    let counters = stats.read().unwrap();
    assert_eq!(counters.0.len(), 4, "one line per mapping: {counters:?}");
    let expect = |mapping: &str, pairs: &[(&str, u64)]| {
        for (counter, value) in pairs {
            assert_eq!(counters.get(mapping, counter), *value, "{mapping} {counter}\n{counters:?}");
        }
    };
    expect(RANGE, &[("connections", 4), ("active", 0), ("errors", 1), ("flows", 0), ("datagrams_in", 0)]);
    expect(RANGE, &[("bytes_in", expected_in[RANGE]), ("bytes_out", expected_out[RANGE])]);
    expect(
        FAN_IN,
        &[("connections", 2), ("errors", 0), ("bytes_in", expected_in[FAN_IN]), ("bytes_out", expected_out[FAN_IN])],
    );
    expect(LEGACY, &[("connections", 1), ("errors", 0), ("bytes_in", 60), ("bytes_out", expected_out[LEGACY])]);
    expect(DNS, &[("connections", 0), ("flows", 2), ("flows_total", 2), ("datagrams_in", 6), ("datagrams_out", 6)]);
    expect(DNS, &[("errors", 0), ("flows_evicted", 0)]);

    // Each connection to the stats socket gets the counters, then EOF.
    assert_eq!(stats.read().unwrap(), counters, "nothing moved, nothing changed");
}

#[test]
fn sigusr1_prints_the_counters_and_the_proxy_keeps_serving() {
    let topo = Topology::new();
    let _server = TcpServer::echo(&topo.container, sock(CONTAINER_IP, 80));
    let mut proxy = Proxy::start(PROXY, &topo.host, &["-map", LEGACY]);
    let counters_in = |proxy: &Proxy| Counters::parse(&proxy.output()).unwrap();

    assert_eq!(tcp_exchange(&topo.outside, sock(HOST_IP, 6000), b"one").unwrap(), b"one");
    proxy.signal("USR1");
    let printed = wait_for(PATIENCE, || {
        counters_in(&proxy).0.get(LEGACY).is_some_and(|c| {
            c.get("connections") == Some(&1) && c.get("bytes_in") == Some(&3) && c.get("active") == Some(&0)
        })
    });
    assert!(printed, "SIGUSR1 printed no counters for {LEGACY}:\n{}", proxy.output());

    std::thread::sleep(Duration::from_millis(100));
    assert!(proxy.running(), "SIGUSR1 must not stop the proxy:\n{}", proxy.output());
    assert_eq!(tcp_exchange(&topo.outside, sock(HOST_IP, 6000), b"two").unwrap(), b"two");
    proxy.signal("USR1");
    // Parse keeps the last line per mapping: the second print.
    let printed = wait_for(PATIENCE, || {
        counters_in(&proxy).0.get(LEGACY).is_some_and(|c| {
            c.get("connections") == Some(&2) && c.get("bytes_in") == Some(&6) && c.get("active") == Some(&0)
        })
    });
    assert!(printed, "the second SIGUSR1 printed no updated counters:\n{}", proxy.output());
    assert!(proxy.running());
}

/// `-stats-socket` replaces only a socket nothing answers on: a live one
/// (another proxy's) and a file that is not a socket are refused on fd 3,
/// and the file keeps its bytes.
#[test]
fn the_stats_socket_replaces_a_stale_socket_and_nothing_else() {
    let topo = Topology::new();
    let args = |port: &'static str, stats: &str| {
        [
            "-map".to_owned(),
            format!("tcp:{HOST_IP}:{port}:{CONTAINER_IP}:80"),
            "-stats-socket".to_owned(),
            stats.to_owned(),
        ]
    };
    fn strs(args: &[String; 4]) -> Vec<&str> {
        args.iter().map(String::as_str).collect()
    }

    let file = TempPath::new("txt");
    std::fs::write(file.as_str(), "someone's notes\n").unwrap();
    let (mut refused, said) = Proxy::spawn(PROXY, &topo.host, &strs(&args("6101", file.as_str())), None);
    assert!(said.starts_with("1\n") && said.contains("is not a socket"), "fd 3 said {said:?}");
    assert_eq!(refused.wait(PATIENCE).and_then(|s| s.code()), Some(1), "{}", refused.output());
    assert_eq!(std::fs::read_to_string(file.as_str()).unwrap(), "someone's notes\n");

    let stats = StatsPath::new();
    let mut first = Proxy::start(PROXY, &topo.host, &strs(&args("6102", stats.as_str())));
    let (mut second, said) = Proxy::spawn(PROXY, &topo.host, &strs(&args("6103", stats.as_str())), None);
    assert!(said.starts_with("1\n") && said.contains("served by a running process"), "fd 3 said {said:?}");
    assert_eq!(second.wait(PATIENCE).and_then(|s| s.code()), Some(1), "{}", second.output());
    let counters = stats.read().unwrap_or_else(|e| panic!("the first proxy's socket: {e}"));
    assert_eq!(counters.get(&format!("tcp:{HOST_IP}:6102:{CONTAINER_IP}:80"), "connections"), 0);

    // Killed, the first proxy leaves its socket file behind: stale now.
    first.signal("KILL");
    assert!(first.wait(PATIENCE).is_some(), "SIGKILL did not stop the proxy");
    assert!(std::path::Path::new(stats.as_str()).exists(), "SIGKILL leaves the socket file");
    let _third = Proxy::start(PROXY, &topo.host, &strs(&args("6104", stats.as_str())));
    let counters = stats.read().unwrap_or_else(|e| panic!("the third proxy's socket: {e}"));
    assert_eq!(counters.get(&format!("tcp:{HOST_IP}:6104:{CONTAINER_IP}:80"), "connections"), 0);
}

/// SIGUSR1 when stderr cannot be written (here `/dev/full`, as a log on a
/// full disk): the counters are lost, the proxy is not.
#[test]
fn sigusr1_with_a_full_stderr_does_not_stop_the_proxy() {
    let topo = Topology::new();
    let _server = TcpServer::echo(&topo.container, sock(CONTAINER_IP, 80));
    let mut child =
        topo.host.command("sh", &["-c", r#"exec "$@" 2>/dev/full"#, "sh", PROXY, "-map", LEGACY]).spawn().unwrap();
    let served = wait_for(PATIENCE, || tcp_exchange(&topo.outside, sock(HOST_IP, 6000), b"one").is_ok());
    assert!(served, "the proxy did not start");
    let pid = child.id().to_string();
    for _ in 0..3 {
        tests::run(std::process::Command::new("kill").args(["-USR1", &pid])).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    let exited = child.try_wait().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(exited, None, "SIGUSR1 with stderr full stopped the proxy");
}
