//! `wharf nat` as the gateway between an inside host and an outside host,
//! each in a namespace of its own, side by side with the kernel doing the
//! same job (iptables MASQUERADE and DNAT in the gateway namespace): the
//! same scenario must give the same observable results.
//!
//! Inside host 10.0.0.2/24, default route via 10.0.0.1 (the gateway's
//! inside address); outside host 203.0.113.20/24 with no route back to
//! 10.0.0.0/24, so whatever reaches it must come from the gateway's
//! outside address 203.0.113.10. wharf owns the gateway's two addresses
//! itself: they are not configured in the gateway namespace's kernel.
//!
//! - inside → outside: ping, 100 MB of TCP compared by hash, UDP; the
//!   outside host sees 203.0.113.10 as the source;
//! - outside → 203.0.113.10:8080 reaches the inside server on 10.0.0.2:80,
//!   which sees the real client address 203.0.113.20;
//! - an outside host routing 10.0.0.0/24 through the gateway reaches no
//!   inside host unasked (the kernel side gets Docker's FORWARD policy).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use tests::proxy::in_netns;
use tests::{require_root, Netns, WharfRunner};

const WHARF: &str = env!("CARGO_BIN_EXE_wharf-e2e");
const INSIDE_HOST: &str = "10.0.0.2";
const OUTSIDE_ADDR: &str = "203.0.113.10";
const OUTSIDE_HOST: &str = "203.0.113.20";
const PATIENCE: Duration = Duration::from_secs(10);

/// Who does the translating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gateway {
    Wharf,
    Kernel,
}

struct Topology {
    /// Declared first, so it stops before the namespaces go.
    wharf: Option<WharfRunner>,
    inside: Netns,
    /// Held so that the gateway's namespace lives as long as the test.
    _gateway: Netns,
    outside: Netns,
}

fn sock(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

impl Topology {
    fn new(kind: Gateway) -> Topology {
        require_root();
        let inside = Netns::new("ni").unwrap();
        let gateway = Netns::new("ng").unwrap();
        let outside = Netns::new("no").unwrap();
        inside.veth("eth0", &gateway, "in0").unwrap();
        gateway.veth("out0", &outside, "eth0").unwrap();
        inside.ip(&["addr", "add", "10.0.0.2/24", "dev", "eth0"]).unwrap();
        inside.ip(&["route", "add", "default", "via", "10.0.0.1"]).unwrap();
        outside.ip(&["addr", "add", "203.0.113.20/24", "dev", "eth0"]).unwrap();
        // Across veth pairs a partial checksum is trusted, never computed:
        // the gateway's links finish every checksum in software (no TX
        // offload, so superframes are cut there too) and the hosts verify
        // every one they receive (no RX offload), so a wrong checksum
        // written by the gateway is a dropped packet here.
        gateway.exec("ethtool", &["-K", "in0", "tx", "off"]).unwrap();
        gateway.exec("ethtool", &["-K", "out0", "tx", "off"]).unwrap();
        inside.exec("ethtool", &["-K", "eth0", "rx", "off"]).unwrap();
        outside.exec("ethtool", &["-K", "eth0", "rx", "off"]).unwrap();
        let wharf = match kind {
            Gateway::Kernel => {
                gateway.ip(&["addr", "add", "10.0.0.1/24", "dev", "in0"]).unwrap();
                gateway.ip(&["addr", "add", "203.0.113.10/24", "dev", "out0"]).unwrap();
                gateway.exec("sysctl", &["-q", "-w", "net.ipv4.ip_forward=1"]).unwrap();
                let nat = |rule: &[&str]| gateway.exec("iptables", &[&["-t", "nat", "-A"], rule].concat()).unwrap();
                nat(&["POSTROUTING", "-s", "10.0.0.0/24", "-o", "out0", "-j", "MASQUERADE"]);
                nat(&[
                    "PREROUTING",
                    "-d",
                    OUTSIDE_ADDR,
                    "-p",
                    "tcp",
                    "--dport",
                    "8080",
                    "-j",
                    "DNAT",
                    "--to-destination",
                    "10.0.0.2:80",
                ]);
                nat(&[
                    "PREROUTING",
                    "-d",
                    OUTSIDE_ADDR,
                    "-p",
                    "udp",
                    "--dport",
                    "5353",
                    "-j",
                    "DNAT",
                    "--to-destination",
                    "10.0.0.2:53",
                ]);
                // Docker's forwarding policy: drop, but for what goes out,
                // its replies, and published ports.
                let filter = |rule: &[&str]| gateway.exec("iptables", rule).unwrap();
                filter(&["-P", "FORWARD", "DROP"]);
                filter(&["-A", "FORWARD", "-i", "in0", "-o", "out0", "-j", "ACCEPT"]);
                filter(&["-A", "FORWARD", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "ACCEPT"]);
                None
            }
            Gateway::Wharf => Some(
                WharfRunner::start_runner(
                    WHARF,
                    "nat",
                    &gateway,
                    "in0",
                    &[
                        "--inside",
                        "in0",
                        "--inside-addr",
                        "10.0.0.1/24",
                        "--outside",
                        "out0",
                        "--outside-addr",
                        "203.0.113.10/24",
                        "--masquerade",
                        "10.0.0.0/24",
                        "--publish",
                        "tcp:8080:10.0.0.2:80",
                        "--publish",
                        "udp:5353:10.0.0.2:53",
                    ],
                )
                .unwrap(),
            ),
        };
        Topology { wharf, inside, _gateway: gateway, outside }
    }

    fn output(&self) -> String {
        self.wharf.as_ref().map(WharfRunner::output).unwrap_or_default()
    }
}

/// FNV-1a, 64-bit: enough to tell two 100 MB streams apart.
fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}
const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

fn ping_reaches_the_outside(kind: Gateway) {
    let topo = Topology::new(kind);
    let out = topo.inside.exec("ping", &["-c", "3", "-i", "0.2", "-W", "2", OUTSIDE_HOST]);
    assert!(out.is_ok(), "{kind:?}: {out:?}\n{}", topo.output());
    let gw = topo.inside.exec("ping", &["-c", "1", "-W", "2", "10.0.0.1"]);
    assert!(gw.is_ok(), "{kind:?}: the gateway answers pings to its inside address: {gw:?}\n{}", topo.output());
}

fn tcp_100_mb_arrives_from_the_outside_address(kind: Gateway) {
    const SIZE: usize = 100 << 20;
    let topo = Topology::new(kind);
    let listener = in_netns(&topo.outside, || TcpListener::bind(sock(OUTSIDE_HOST, 9000))).unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, peer) = listener.accept().unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut hash = FNV_START;
        let mut total = 0;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = stream.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            hash = fnv(hash, &buf[..n]);
            total += n;
        }
        stream.write_all(&hash.to_be_bytes()).unwrap();
        (peer, total, hash)
    });
    let sent = in_netns(&topo.inside, || {
        let mut stream = TcpStream::connect_timeout(&sock(OUTSIDE_HOST, 9000), PATIENCE).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut hash = FNV_START;
        let chunk: Vec<u8> = (0..1 << 16).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for i in 0..SIZE / chunk.len() {
            let mut piece = chunk.clone();
            piece[0] = i as u8;
            stream.write_all(&piece).unwrap();
            hash = fnv(hash, &piece);
        }
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = [0u8; 8];
        stream.read_exact(&mut reply).unwrap();
        (hash, u64::from_be_bytes(reply))
    });
    let (peer, total, server_hash) = server.join().unwrap();
    assert_eq!(peer.ip().to_string(), OUTSIDE_ADDR, "{kind:?}: the outside host sees the gateway's address");
    assert_eq!(total, SIZE, "{kind:?}\n{}", topo.output());
    assert_eq!(sent.0, server_hash, "{kind:?}: the bytes arrived intact");
    assert_eq!(sent.1, server_hash, "{kind:?}: the server's answer came back");
    if let Some(wharf) = &topo.wharf {
        // `wharf nat stats`: the gateway answered the inside host's ARP and
        // asked for the outside host (which learns the gateway from that
        // request, so it need not ask), forwarded, and dropped nothing.
        assert!(wharf.stat("arp_replies") >= 1, "{}", wharf.output());
        assert!(wharf.stat("arp_requests") >= 1, "{}", wharf.output());
        assert!(wharf.stat("tx_frames") > 1000);
        assert_eq!(wharf.stat("write_errors"), 0);
        assert_eq!(wharf.stat("drop_bad_offload"), 0);
        // The inside host's TSO superframes were translated whole.
        assert!(wharf.stat("superframes") > 0, "{}", wharf.output());
        // SIGUSR1: the same counters on stderr, and the gateway runs on.
        wharf.signal("USR1").unwrap();
        assert!(
            tests::wait_for(PATIENCE, || wharf.output().contains("nat_translated")),
            "no counters after SIGUSR1:\n{}",
            wharf.output()
        );
        assert!(wharf.stat("tx_frames") > 1000, "still answering after SIGUSR1");
    }
}

fn udp_goes_out_and_answers_come_back(kind: Gateway) {
    let topo = Topology::new(kind);
    let server = in_netns(&topo.outside, || UdpSocket::bind(sock(OUTSIDE_HOST, 7000))).unwrap();
    server.set_read_timeout(Some(PATIENCE)).unwrap();
    let echo = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 2048];
        for _ in 0..20 {
            let Ok((n, from)) = server.recv_from(&mut buf) else { break };
            seen.push(from);
            server.send_to(&buf[..n], from).unwrap();
        }
        seen
    });
    let client = in_netns(&topo.inside, || UdpSocket::bind(sock(INSIDE_HOST, 40000))).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    for i in 0..20u32 {
        let payload = [&i.to_be_bytes()[..], &[0x5a; 1000]].concat();
        client.send_to(&payload, sock(OUTSIDE_HOST, 7000)).unwrap();
        let mut buf = [0u8; 2048];
        let (n, from) =
            client.recv_from(&mut buf).unwrap_or_else(|e| panic!("{kind:?} datagram {i}: {e}\n{}", topo.output()));
        assert_eq!(&buf[..n], &payload[..]);
        assert_eq!(from, sock(OUTSIDE_HOST, 7000));
    }
    let seen = echo.join().unwrap();
    assert_eq!(seen.len(), 20);
    assert!(seen.iter().all(|from| from.ip().to_string() == OUTSIDE_ADDR), "{kind:?}: {seen:?}");
    assert!(seen.iter().all(|from| from.port() == 40000), "{kind:?}: the source port is kept when free: {seen:?}");
}

/// One `sendmsg` with `UDP_SEGMENT` from inside: the gateway gets it as a
/// USO superframe and forwards it whole (wharf) or as the kernel does; the
/// outside host receives every datagram, each with a checksum its kernel
/// accepted, from the gateway's address.
fn udp_gso_superframe_goes_out_in_datagrams(kind: Gateway) {
    const SEGMENT: usize = 1000;
    const COUNT: usize = 8;
    let topo = Topology::new(kind);
    let server = in_netns(&topo.outside, || UdpSocket::bind(sock(OUTSIDE_HOST, 7001))).unwrap();
    server.set_read_timeout(Some(PATIENCE)).unwrap();
    let client = in_netns(&topo.inside, || dataplane::sys::udp::UdpSocket::bind(sock(INSIDE_HOST, 40001))).unwrap();
    assert!(client.gso_supported(), "this kernel has UDP GSO");
    let payload: Vec<u8> = (0..SEGMENT * COUNT).map(|i| (i / SEGMENT) as u8 ^ (i as u8)).collect();
    // The first datagram primes ARP on both sides of the gateway; the
    // superframe follows once it has been answered.
    client.send_to(b"hello", sock(OUTSIDE_HOST, 7001)).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = server.recv_from(&mut buf).unwrap_or_else(|e| panic!("{kind:?}: {e}\n{}", topo.output()));
    assert_eq!(&buf[..n], b"hello");
    let before = topo.wharf.as_ref().map(|w| w.stat("superframes"));
    let sent = client
        .send_segments(sock(OUTSIDE_HOST, 7001), None, Some(SEGMENT as u16), &[std::io::IoSlice::new(&payload)])
        .unwrap();
    assert_eq!(sent, payload.len());
    for i in 0..COUNT {
        let (n, from) = server
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("{kind:?}: datagram {i} of {COUNT}: {e}\n{}", topo.output()));
        assert_eq!(&buf[..n], &payload[i * SEGMENT..(i + 1) * SEGMENT], "{kind:?}: datagram {i}");
        assert_eq!(from, sock(OUTSIDE_ADDR, 40001), "{kind:?}");
    }
    if let (Some(wharf), Some(before)) = (&topo.wharf, before) {
        assert_eq!(wharf.stat("superframes"), before + 1, "{}", wharf.output());
        assert_eq!(wharf.stat("drop_bad_offload"), 0);
    }
}

fn published_ports_reach_the_inside_with_the_client_address(kind: Gateway) {
    let topo = Topology::new(kind);
    let listener = in_netns(&topo.inside, || TcpListener::bind(sock(INSIDE_HOST, 80))).unwrap();
    let udp = in_netns(&topo.inside, || UdpSocket::bind(sock(INSIDE_HOST, 53))).unwrap();
    udp.set_read_timeout(Some(PATIENCE)).unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, peer) = listener.accept().unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut hello = [0u8; 5];
        stream.read_exact(&mut hello).unwrap();
        stream.write_all(peer.to_string().as_bytes()).unwrap();
        drop(stream);
        let mut buf = [0u8; 64];
        let (n, from) = udp.recv_from(&mut buf).unwrap();
        udp.send_to(from.to_string().as_bytes(), from).unwrap();
        (hello, n)
    });
    let (tcp_seen, udp_seen) = in_netns(&topo.outside, || {
        let mut stream = TcpStream::connect_timeout(&sock(OUTSIDE_ADDR, 8080), PATIENCE).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.write_all(b"hello").unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut seen = String::new();
        stream.read_to_string(&mut seen).unwrap();
        let client = UdpSocket::bind(sock(OUTSIDE_HOST, 41000)).unwrap();
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        client.send_to(b"query", sock(OUTSIDE_ADDR, 5353)).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(from, sock(OUTSIDE_ADDR, 5353), "the answer comes from the published address");
        (seen, String::from_utf8_lossy(&buf[..n]).into_owned())
    });
    let (hello, _) = server.join().unwrap();
    assert_eq!(&hello, b"hello");
    assert!(tcp_seen.starts_with("203.0.113.20:"), "{kind:?}: the inside server saw {tcp_seen}\n{}", topo.output());
    assert_eq!(udp_seen, "203.0.113.20:41000", "{kind:?}: the inside UDP server saw {udp_seen}");
}

/// An outside host that routes the inside network through the gateway
/// cannot reach an inside host unasked: only tracked connections and
/// published ports go in.
fn unsolicited_traffic_stays_outside(kind: Gateway) {
    let topo = Topology::new(kind);
    let listener = in_netns(&topo.inside, || TcpListener::bind(sock(INSIDE_HOST, 81))).unwrap();
    listener.set_nonblocking(true).unwrap();
    topo.outside.ip(&["route", "add", "10.0.0.0/24", "via", OUTSIDE_ADDR]).unwrap();
    let tried = in_netns(&topo.outside, || TcpStream::connect_timeout(&sock(INSIDE_HOST, 81), Duration::from_secs(2)));
    assert!(tried.is_err(), "{kind:?}: an outside host reached the inside server directly");
    assert!(listener.accept().is_err(), "{kind:?}: the inside server saw the connection");
    let ping = topo.outside.exec("ping", &["-c", "1", "-W", "1", INSIDE_HOST]);
    assert!(ping.is_err(), "{kind:?}: a ping from outside reached the inside host");
    if let Some(wharf) = &topo.wharf {
        assert!(wharf.stat("drop_unsolicited") >= 2, "{}", wharf.output());
    }
}

#[test]
fn unsolicited_wharf() {
    unsolicited_traffic_stays_outside(Gateway::Wharf);
}

#[test]
fn unsolicited_kernel() {
    unsolicited_traffic_stays_outside(Gateway::Kernel);
}

#[test]
fn ping_wharf() {
    ping_reaches_the_outside(Gateway::Wharf);
}

#[test]
fn ping_kernel() {
    ping_reaches_the_outside(Gateway::Kernel);
}

#[test]
fn tcp_wharf() {
    tcp_100_mb_arrives_from_the_outside_address(Gateway::Wharf);
}

#[test]
fn tcp_kernel() {
    tcp_100_mb_arrives_from_the_outside_address(Gateway::Kernel);
}

#[test]
fn udp_wharf() {
    udp_goes_out_and_answers_come_back(Gateway::Wharf);
}

#[test]
fn udp_kernel() {
    udp_goes_out_and_answers_come_back(Gateway::Kernel);
}

#[test]
fn udp_gso_wharf() {
    udp_gso_superframe_goes_out_in_datagrams(Gateway::Wharf);
}

#[test]
fn udp_gso_kernel() {
    udp_gso_superframe_goes_out_in_datagrams(Gateway::Kernel);
}

#[test]
fn published_wharf() {
    published_ports_reach_the_inside_with_the_client_address(Gateway::Wharf);
}

#[test]
fn published_kernel() {
    published_ports_reach_the_inside_with_the_client_address(Gateway::Kernel);
}
