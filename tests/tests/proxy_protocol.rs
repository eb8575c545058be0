//! wharf-proxy's PROXY protocol header (HAProxy's spec, versions 1 and 2),
//! byte for byte as the container's server reads it: the v1 line for TCP
//! over IPv4 and IPv6, the v2 binary header for TCP4, TCP6, UDP4 and UDP6
//! (for UDP, in front of every datagram). The client's address is the outside
//! one; the destination is the proxy's address the client connected to.
//! Replies reach the client without any header.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::Duration;

use tests::proxy::{
    connect, sock, udp_exchange, udp_socket, Proxy, TcpServer, Topology, UdpServer, CONTAINER_IP, CONTAINER_IP6,
    HOST_IP, HOST_IP6, OUTSIDE_IP, OUTSIDE_IP6, PATIENCE,
};

const PROXY: &str = env!("CARGO_BIN_EXE_wharf-proxy-e2e");

/// The v2 signature, `\r\n\r\n\0\r\nQUIT\n`.
const SIGNATURE: [u8; 12] = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/// Starts the proxy for one TCP connection from the outside client to
/// `host_ip:8080`, sends `hello`, and returns what the container's server
/// read to EOF, with the client's address.
fn tcp_through(version: &str, host_ip: &str, container_ip: &str) -> (Vec<u8>, SocketAddr) {
    let topo = Topology::new();
    let (seen_tx, seen_rx) = mpsc::channel();
    let _server = TcpServer::start(&topo.container, sock(container_ip, 80), move |mut stream| {
        let _ = stream.set_read_timeout(Some(PATIENCE));
        let mut seen = Vec::new();
        let _ = stream.read_to_end(&mut seen);
        let _ = stream.write_all(b"ok");
        let _ = seen_tx.send(seen);
    });
    let args = [
        "-host-ip",
        host_ip,
        "-host-port",
        "8080",
        "-container-ip",
        container_ip,
        "-container-port",
        "80",
        "-proxy-protocol",
        version,
    ];
    let proxy = Proxy::start(PROXY, &topo.host, &args);
    let mut client = connect(&topo.outside, sock(host_ip, 8080)).unwrap();
    let client_addr = client.local_addr().unwrap();
    client.write_all(b"hello").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    client.read_to_end(&mut reply).unwrap_or_else(|e| panic!("{e}\n{}", proxy.output()));
    assert_eq!(reply, b"ok", "the reply carries no header");
    let seen = seen_rx.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("no connection\n{}", proxy.output()));
    (seen, client_addr)
}

#[test]
fn v1_line_for_tcp4() {
    let (seen, client) = tcp_through("v1", HOST_IP, CONTAINER_IP);
    assert_eq!(client.ip().to_string(), OUTSIDE_IP);
    let expected = format!("PROXY TCP4 203.0.113.2 198.51.100.1 {} 8080\r\nhello", client.port());
    assert_eq!(String::from_utf8_lossy(&seen), expected);
}

#[test]
fn v1_line_for_tcp6() {
    let (seen, client) = tcp_through("v1", HOST_IP6, CONTAINER_IP6);
    assert_eq!(client.ip().to_string(), OUTSIDE_IP6);
    let expected = format!("PROXY TCP6 2001:db8:2::2 2001:db8:1::1 {} 8080\r\nhello", client.port());
    assert_eq!(String::from_utf8_lossy(&seen), expected);
}

#[test]
fn v2_header_for_tcp4() {
    let (seen, client) = tcp_through("v2", HOST_IP, CONTAINER_IP);
    let [port_hi, port_lo] = client.port().to_be_bytes();
    let mut expected = SIGNATURE.to_vec();
    expected.extend_from_slice(&[
        0x21, // version 2, command PROXY
        0x11, // AF_INET, STREAM
        0x00, 0x0c, // 12 bytes of addresses follow
        203, 0, 113, 2, // source: the client
        198, 51, 100, 1, // destination: the proxy's address it connected to
        port_hi, port_lo, // source port
        0x1f, 0x90, // destination port 8080
    ]);
    expected.extend_from_slice(b"hello");
    assert_eq!(seen, expected);
}

#[test]
fn v2_header_for_tcp6() {
    let (seen, client) = tcp_through("v2", HOST_IP6, CONTAINER_IP6);
    let [port_hi, port_lo] = client.port().to_be_bytes();
    let mut expected = SIGNATURE.to_vec();
    expected.extend_from_slice(&[
        0x21, // version 2, command PROXY
        0x21, // AF_INET6, STREAM
        0x00, 0x24, // 36 bytes of addresses follow
        0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // source 2001:db8:2::2
        0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // destination 2001:db8:1::1
        port_hi, port_lo, // source port
        0x1f, 0x90, // destination port 8080
    ]);
    expected.extend_from_slice(b"hello");
    assert_eq!(seen, expected);
}

#[test]
fn v2_header_before_every_udp_datagram() {
    let topo = Topology::new();
    let (seen_tx, seen_rx) = mpsc::channel::<Vec<u8>>();
    // The server records each datagram and echoes what follows a 28-byte
    // header (or all of it, when it is shorter).
    let _server = UdpServer::start(&topo.container, sock(CONTAINER_IP, 53), move |socket, datagram, from| {
        let _ = seen_tx.send(datagram.to_vec());
        let _ = socket.send_to(datagram.get(28..).unwrap_or(datagram), from);
    });
    let args = [
        "-proto",
        "udp",
        "-host-ip",
        HOST_IP,
        "-host-port",
        "5353",
        "-container-ip",
        CONTAINER_IP,
        "-container-port",
        "53",
        "-proxy-protocol=v2",
    ];
    let proxy = Proxy::start(PROXY, &topo.host, &args);
    let client: UdpSocket = udp_socket(&topo.outside, sock(OUTSIDE_IP, 40001));
    let header: [u8; 28] = [
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
        0x21, // version 2, command PROXY
        0x12, // AF_INET, DGRAM
        0x00, 0x0c, // 12 bytes of addresses follow
        203, 0, 113, 2, // source: the client
        198, 51, 100, 1, // destination: the proxy's address
        0x9c, 0x41, // source port 40001
        0x14, 0xe9, // destination port 5353
    ];
    for payload in [&b"first"[..], b"second datagram", b""] {
        let (reply, from) = udp_exchange(&client, sock(HOST_IP, 5353), payload)
            .unwrap_or_else(|e| panic!("{payload:?}: {e}\n{}", proxy.output()));
        assert_eq!(from, sock(HOST_IP, 5353));
        assert_eq!(reply, payload, "the reply carries no header");
        let seen = seen_rx.recv_timeout(PATIENCE).unwrap();
        assert_eq!(seen, [&header[..], payload].concat(), "datagram {payload:?} as the container got it");
    }
}

#[test]
fn v2_header_for_udp6() {
    let topo = Topology::new();
    let (seen_tx, seen_rx) = mpsc::channel::<Vec<u8>>();
    let _server = UdpServer::start(&topo.container, sock(CONTAINER_IP6, 53), move |socket, datagram, from| {
        let _ = seen_tx.send(datagram.to_vec());
        let _ = socket.send_to(datagram.get(52..).unwrap_or(datagram), from);
    });
    let args = [
        "-proto=udp",
        "-host-ip=2001:db8:1::1",
        "-host-port=5353",
        "-container-ip=2001:db8:1::2",
        "-container-port=53",
        "-proxy-protocol=v2",
    ];
    let proxy = Proxy::start(PROXY, &topo.host, &args);
    let client = udp_socket(&topo.outside, sock(OUTSIDE_IP6, 40001));
    let mut expected = SIGNATURE.to_vec();
    expected.extend_from_slice(&[
        0x21, // version 2, command PROXY
        0x22, // AF_INET6, DGRAM
        0x00, 0x24, // 36 bytes of addresses follow
        0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // source 2001:db8:2::2
        0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // destination 2001:db8:1::1
        0x9c, 0x41, // source port 40001
        0x14, 0xe9, // destination port 5353
    ]);
    expected.extend_from_slice(b"six");
    let (reply, from) =
        udp_exchange(&client, sock(HOST_IP6, 5353), b"six").unwrap_or_else(|e| panic!("{e}\n{}", proxy.output()));
    assert_eq!(from, sock(HOST_IP6, 5353));
    assert_eq!(reply, b"six", "the reply carries no header");
    assert_eq!(seen_rx.recv_timeout(PATIENCE).unwrap(), expected);
}

#[test]
fn v1_is_refused_for_udp() {
    let topo = Topology::new();
    let args = [
        "-proto",
        "udp",
        "-host-ip",
        HOST_IP,
        "-host-port",
        "5353",
        "-container-ip",
        CONTAINER_IP,
        "-container-port",
        "53",
        "-proxy-protocol",
        "v1",
    ];
    let (mut proxy, said) = Proxy::spawn(PROXY, &topo.host, &args, None);
    assert_ne!(said, "0\n", "a UDP mapping cannot take PROXY v1\n{}", proxy.output());
    let status = proxy.wait(Duration::from_secs(5)).expect("exits");
    assert!(!status.success(), "{}", proxy.output());
    assert!(proxy.output().contains("v1"), "say why: {}", proxy.output());
}
