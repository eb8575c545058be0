//! wharf-proxy's UDP relay: 50 clients at once each get their own echoes
//! and nobody else's, one flow each; clients whose datagrams interleave
//! keep their order; ICMP port unreachable from the
//! container does not end a flow; on a host with two addresses the reply
//! comes from the address the client sent to; the flow table is bounded
//! (`-udp-max-flows`) and idle flows expire (`-udp-timeout`); a UDP-only
//! proxy runs on one thread, whatever `-threads` says.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tests::proxy::{
    sock, udp_exchange, udp_socket, Proxy, StatsPath, Topology, UdpServer, CONTAINER_IP, CONTAINER_IP6, HOST_IP,
    HOST_IP6, OUTSIDE_IP,
};
use tests::wait_for;

const PROXY: &str = env!("CARGO_BIN_EXE_wharf-proxy-e2e");
const MAPPING: &str = "udp:198.51.100.1:5353:198.51.100.2:53";

fn start(topo: &Topology, stats: &StatsPath, extra: &[&str]) -> Proxy {
    let mut args = vec!["-map", MAPPING, "-stats-socket", stats.as_str()];
    args.extend_from_slice(extra);
    Proxy::start(PROXY, &topo.host, &args)
}

#[test]
fn fifty_clients_get_their_own_echoes() {
    const CLIENTS: usize = 50;
    const ROUNDS: usize = 20;
    let topo = Topology::new();
    // The echo server also notes, per client, which proxy address each
    // datagram came from: one connected socket per client means one
    // source port per client, and a different one for each.
    let sources: Arc<Mutex<BTreeMap<String, BTreeSet<SocketAddr>>>> = Arc::default();
    let noted = sources.clone();
    let _server = UdpServer::start(&topo.container, sock(CONTAINER_IP, 53), move |socket, datagram, from| {
        let client = String::from_utf8_lossy(datagram).split(' ').take(2).collect::<Vec<_>>().join(" ");
        noted.lock().unwrap().entry(client).or_default().insert(from);
        let _ = socket.send_to(datagram, from);
    });
    let stats = StatsPath::new();
    let proxy = start(&topo, &stats, &[]);
    let clients: Vec<UdpSocket> = (0..CLIENTS).map(|_| udp_socket(&topo.outside, sock("0.0.0.0", 0))).collect();
    let to = sock(HOST_IP, 5353);
    let payload = |client: usize, round: usize| {
        // Lengths differ too, so that a datagram cut or glued to another shows.
        let mut bytes = format!("client {client} round {round} ").into_bytes();
        bytes.resize(bytes.len() + (client * 7 + round * 13) % 300, b'a' + (client % 26) as u8);
        bytes
    };
    for round in 0..ROUNDS {
        for (i, client) in clients.iter().enumerate() {
            client.send_to(&payload(i, round), to).unwrap();
        }
        for (i, client) in clients.iter().enumerate() {
            let mut buf = [0u8; 2048];
            let (len, from) = client.recv_from(&mut buf).unwrap_or_else(|e| {
                // What the proxy counted tells a datagram it dropped from
                // one the kernel did.
                panic!("client {i}, round {round}: {e}\n{}\ncounters: {:?}", proxy.output(), stats.read())
            });
            assert_eq!(from, to, "the reply comes from the proxy's address");
            assert_eq!(
                String::from_utf8_lossy(&buf[..len]),
                String::from_utf8_lossy(&payload(i, round)),
                "client {i} got someone else's datagram"
            );
        }
    }
    let counters = stats.read().unwrap();
    let datagrams = (CLIENTS * ROUNDS) as u64;
    assert_eq!(counters.get(MAPPING, "flows"), CLIENTS as u64, "{counters:?}");
    assert_eq!(counters.get(MAPPING, "flows_total"), CLIENTS as u64, "{counters:?}");
    assert_eq!(counters.get(MAPPING, "flows_evicted"), 0, "{counters:?}");
    assert_eq!(counters.get(MAPPING, "datagrams_in"), datagrams, "{counters:?}");
    assert_eq!(counters.get(MAPPING, "datagrams_out"), datagrams, "{counters:?}");
    assert_eq!(counters.get(MAPPING, "connections"), 0, "{counters:?}");

    let sources = sources.lock().unwrap();
    assert_eq!(sources.len(), CLIENTS, "{sources:?}");
    for (client, from) in sources.iter() {
        assert_eq!(from.len(), 1, "{client} reached the container from several sockets: {from:?}");
    }
    let distinct: BTreeSet<&SocketAddr> = sources.values().flatten().collect();
    assert_eq!(distinct.len(), CLIENTS, "clients shared a socket towards the container: {sources:?}");
}

#[test]
fn datagrams_of_every_size_arrive_whole() {
    let topo = Topology::new();
    let _server = UdpServer::echo(&topo.container, sock(CONTAINER_IP, 53));
    let stats = StatsPath::new();
    let proxy = start(&topo, &stats, &[]);
    let client = udp_socket(&topo.outside, sock("0.0.0.0", 0));
    // Empty; one MTU's worth and one byte more (fragmented on the veths);
    // jumbo; the largest an IPv4 datagram carries.
    let sizes = [0usize, 1, 1472, 1473, 9000, 65_507];
    for size in sizes {
        let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let (reply, _) = udp_exchange(&client, sock(HOST_IP, 5353), &payload)
            .unwrap_or_else(|e| panic!("{size} bytes: {e}\n{}", proxy.output()));
        assert_eq!(reply.len(), size, "a {size}-byte datagram came back as {} bytes", reply.len());
        assert!(reply == payload, "a {size}-byte datagram came back changed");
    }
    let counters = stats.read().unwrap();
    assert_eq!(counters.get(MAPPING, "datagrams_in"), sizes.len() as u64, "{counters:?}");
    assert_eq!(counters.get(MAPPING, "datagrams_out"), sizes.len() as u64, "{counters:?}");
}

#[test]
fn icmp_port_unreachable_does_not_end_the_flow() {
    let topo = Topology::new();
    let stats = StatsPath::new();
    let proxy = start(&topo, &stats, &[]);
    let client = udp_socket(&topo.outside, sock("0.0.0.0", 0));
    client.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let to = sock(HOST_IP, 5353);
    // Nothing listens in the container yet: each datagram draws an ICMP
    // port unreachable, which reaches the proxy's connected socket.
    for lost in [&b"anyone?"[..], b"still nobody?"] {
        client.send_to(lost, to).unwrap();
        assert!(client.recv_from(&mut [0u8; 64]).is_err(), "no server, no answer");
    }
    let _server = UdpServer::echo(&topo.container, sock(CONTAINER_IP, 53));
    client.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    for i in 0..3 {
        let request = format!("now there is a server, {i}");
        let (reply, from) = udp_exchange(&client, to, request.as_bytes())
            .unwrap_or_else(|e| panic!("datagram {i} after the server started: {e}\n{}", proxy.output()));
        assert_eq!(reply, request.as_bytes());
        assert_eq!(from, to);
    }
    // One flow all along: the ICMP errors neither ended it nor made a new one.
    let counters = stats.read().unwrap();
    assert_eq!(counters.get(MAPPING, "flows"), 1, "{counters:?}");
    assert_eq!(counters.get(MAPPING, "flows_total"), 1, "{counters:?}");
    assert_eq!(counters.get(MAPPING, "datagrams_in"), 5, "{counters:?}");
    assert_eq!(counters.get(MAPPING, "datagrams_out"), 3, "{counters:?}");
    assert!(proxy.output().lines().count() < 50, "no error storm on stderr:\n{}", proxy.output());
}

#[test]
fn the_reply_comes_from_the_address_the_client_sent_to() {
    let topo = Topology::new();
    // A second address on the host, both IPv4 and IPv6; the outside
    // client's own route back goes out of o0, whose address is neither.
    topo.host.ip(&["addr", "add", "198.51.100.3/24", "dev", "c0"]).unwrap();
    topo.host.ip(&["addr", "add", "2001:db8:1::3/64", "dev", "c0", "nodad"]).unwrap();
    let _server4 = UdpServer::echo(&topo.container, sock(CONTAINER_IP, 53));
    let _server6 = UdpServer::echo(&topo.container, sock(CONTAINER_IP6, 53));
    let proxy4 = Proxy::start(
        PROXY,
        &topo.host,
        &["-proto", "udp", "-host-port", "5353", "-container-ip", CONTAINER_IP, "-container-port", "53"],
    );
    let proxy6 = Proxy::start(
        PROXY,
        &topo.host,
        &[
            "-proto=udp",
            "-host-ip",
            "::",
            "-host-port",
            "5354",
            "-container-ip",
            CONTAINER_IP6,
            "-container-port",
            "53",
        ],
    );
    let cases = [
        (sock("0.0.0.0", 0), sock("198.51.100.3", 5353)),
        (sock("0.0.0.0", 0), sock(HOST_IP, 5353)),
        (sock("::", 0), sock("2001:db8:1::3", 5354)),
        (sock("::", 0), sock(HOST_IP6, 5354)),
    ];
    for (bind, to) in cases {
        // An unconnected client socket: recv_from says where the reply
        // really came from.
        let client = udp_socket(&topo.outside, bind);
        let request = format!("to {to}");
        let (reply, from) = udp_exchange(&client, to, request.as_bytes())
            .unwrap_or_else(|e| panic!("to {to}: {e}\n{}{}", proxy4.output(), proxy6.output()));
        assert_eq!(reply, request.as_bytes());
        assert_eq!(from, to, "the reply to a datagram sent to {to} came from {from}");
    }
}

#[test]
fn the_flow_table_is_bounded_and_idle_flows_expire() {
    let topo = Topology::new();
    let _server = UdpServer::echo(&topo.container, sock(CONTAINER_IP, 53));
    let stats = StatsPath::new();
    let proxy = start(&topo, &stats, &["-udp-max-flows", "4", "-udp-timeout", "1s"]);
    let to = sock(HOST_IP, 5353);
    let clients: Vec<UdpSocket> = (0..6).map(|_| udp_socket(&topo.outside, sock(OUTSIDE_IP, 0))).collect();
    for (i, client) in clients.iter().enumerate() {
        let request = format!("client {i}");
        let (reply, _) = udp_exchange(client, to, request.as_bytes())
            .unwrap_or_else(|e| panic!("client {i}: {e}\n{}", proxy.output()));
        assert_eq!(reply, request.as_bytes());
        // Ages apart, so that "the idlest" is well defined.
        std::thread::sleep(Duration::from_millis(20));
    }
    let counters = stats.read().unwrap();
    assert_eq!(counters.get(MAPPING, "flows"), 4, "{counters:?}");
    assert_eq!(counters.get(MAPPING, "flows_total"), 6, "{counters:?}");
    assert_eq!(counters.get(MAPPING, "flows_evicted"), 2, "{counters:?}");
    // The newest flows survived the eviction: client 5 is still served.
    let (reply, _) = udp_exchange(&clients[5], to, b"again").unwrap();
    assert_eq!(reply, b"again");
    assert_eq!(stats.read().unwrap().get(MAPPING, "flows_total"), 6, "client 5 kept its flow");

    // After a second of silence every flow is gone.
    let expired = wait_for(Duration::from_secs(4), || stats.read().is_ok_and(|c| c.get(MAPPING, "flows") == 0));
    assert!(expired, "idle flows did not expire: {:?}", stats.read());
    // And a client that comes back gets a new flow.
    let (reply, _) = udp_exchange(&clients[0], to, b"back").unwrap();
    assert_eq!(reply, b"back");
    let counters = stats.read().unwrap();
    assert_eq!(counters.get(MAPPING, "flows"), 1, "{counters:?}");
    assert_eq!(counters.get(MAPPING, "flows_total"), 7, "{counters:?}");
}

#[test]
fn a_proxy_without_tcp_ports_starts_no_worker_threads() {
    let topo = Topology::new();
    let stats = StatsPath::new();
    let proxy = start(&topo, &stats, &["-threads", "4"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", proxy.pid())).unwrap();
    let threads = status.lines().find_map(|line| line.strip_prefix("Threads:")).map(str::trim);
    assert_eq!(threads, Some("1"), "UDP is served by the main thread alone:\n{status}");
}

/// Clients whose datagrams interleave (A B C D A B C D ...): each client's
/// reach the container, and come back, in the order it sent them (the proxy
/// sends each client's datagrams of a batch together).
#[test]
fn interleaved_clients_keep_their_order() {
    const CLIENTS: usize = 4;
    const EACH: usize = 16;
    let topo = Topology::new();
    let arrived: Arc<Mutex<BTreeMap<usize, Vec<usize>>>> = Arc::default();
    let noted = arrived.clone();
    let _server = UdpServer::start(&topo.container, sock(CONTAINER_IP, 53), move |socket, datagram, from| {
        let text = String::from_utf8_lossy(datagram);
        let mut words = text.split(' ');
        if let (Some(client), Some(seq)) = (words.next(), words.next()) {
            if let (Ok(client), Ok(seq)) = (client.parse(), seq.parse()) {
                noted.lock().unwrap().entry(client).or_default().push(seq);
            }
        }
        let _ = socket.send_to(datagram, from);
    });
    let stats = StatsPath::new();
    let proxy = start(&topo, &stats, &[]);
    let clients: Vec<UdpSocket> = (0..CLIENTS).map(|_| udp_socket(&topo.outside, sock("0.0.0.0", 0))).collect();
    let to = sock(HOST_IP, 5353);
    for seq in 0..EACH {
        for (client, socket) in clients.iter().enumerate() {
            socket.send_to(format!("{client} {seq} {}", "x".repeat(seq * 11)).as_bytes(), to).unwrap();
        }
    }
    let in_order: Vec<usize> = (0..EACH).collect();
    for (client, socket) in clients.iter().enumerate() {
        let mut echoed = Vec::new();
        for _ in 0..EACH {
            let mut buf = [0u8; 2048];
            let (len, _) = socket.recv_from(&mut buf).unwrap_or_else(|e| {
                panic!("client {client} after {echoed:?}: {e}\n{}\ncounters: {:?}", proxy.output(), stats.read())
            });
            let text = String::from_utf8_lossy(&buf[..len]).into_owned();
            let mut words = text.split(' ');
            assert_eq!(words.next(), Some(client.to_string().as_str()), "client {client} got {text:?}");
            echoed.push(words.next().and_then(|seq| seq.parse().ok()).unwrap_or(usize::MAX));
        }
        assert_eq!(echoed, in_order, "client {client}'s echoes out of order");
    }
    let arrived = arrived.lock().unwrap();
    for client in 0..CLIENTS {
        assert_eq!(
            arrived.get(&client),
            Some(&in_order),
            "client {client}'s datagrams reached the container out of order"
        );
    }
}
