//! PROXY protocol headers (HAProxy's specification, versions 1 and 2), sent
//! to the container ahead of the client's bytes so it sees the real client
//! address. Encoding only, into a fixed buffer: no allocation.
//!
//! Version 1 is a text line for TCP; version 2 is binary and also covers
//! UDP, where it prefixes every datagram.
//!
//! What this module does not do: parse headers (wharf sends them; the
//! container reads them).

use std::io::Write;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Which version to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// The client's transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Stream,
    Datagram,
}

/// The twelve bytes that open a version 2 header.
pub const V2_SIGNATURE: [u8; 12] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

/// The longest header: a version 1 line is at most 107 bytes.
pub const MAX_LEN: usize = 107;

/// An encoded header.
#[derive(Clone, Copy)]
pub struct Header {
    buf: [u8; MAX_LEN],
    len: u8,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Header").field("bytes", &self.as_bytes()).finish()
    }
}

impl Header {
    /// The header for a client at `src` that reached us at `dst`. Mixed
    /// families (an IPv4 client on a dual-stack socket) are written as
    /// IPv6, the IPv4 address mapped. Version 1 has no datagram form: a
    /// datagram with `V1` is written as version 2.
    pub fn new(version: Version, transport: Transport, src: SocketAddr, dst: SocketAddr) -> Header {
        let (src_ip, dst_ip) = match (src.ip().to_canonical(), dst.ip().to_canonical()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => (IpAddr::V4(s), IpAddr::V4(d)),
            (s, d) => (IpAddr::V6(as_v6(s)), IpAddr::V6(as_v6(d))),
        };
        let mut header = Header { buf: [0; MAX_LEN], len: 0 };
        let len = match (version, transport) {
            (Version::V1, Transport::Stream) => {
                let family = if src_ip.is_ipv4() { "TCP4" } else { "TCP6" };
                let mut cursor = &mut header.buf[..];
                // At most 107 bytes: "PROXY TCP6 " + 2 × 39 + 2 × 5 + 3 spaces + CRLF.
                let _ = write!(cursor, "PROXY {family} {src_ip} {dst_ip} {} {}\r\n", src.port(), dst.port());
                MAX_LEN - cursor.len()
            }
            (_, transport) => {
                let buf = &mut header.buf;
                buf[..12].copy_from_slice(&V2_SIGNATURE);
                buf[12] = 0x21; // version 2, command PROXY
                let proto = match transport {
                    Transport::Stream => 0x1,
                    Transport::Datagram => 0x2,
                };
                let addresses = match (src_ip, dst_ip) {
                    (IpAddr::V4(s), IpAddr::V4(d)) => {
                        buf[13] = 0x10 | proto;
                        buf[16..20].copy_from_slice(&s.octets());
                        buf[20..24].copy_from_slice(&d.octets());
                        8
                    }
                    (IpAddr::V6(s), IpAddr::V6(d)) => {
                        buf[13] = 0x20 | proto;
                        buf[16..32].copy_from_slice(&s.octets());
                        buf[32..48].copy_from_slice(&d.octets());
                        32
                    }
                    _ => unreachable!("both families were made equal above"),
                };
                buf[16 + addresses..18 + addresses].copy_from_slice(&src.port().to_be_bytes());
                buf[18 + addresses..20 + addresses].copy_from_slice(&dst.port().to_be_bytes());
                let body = addresses + 4;
                buf[14..16].copy_from_slice(&(body as u16).to_be_bytes());
                16 + body
            }
        };
        header.len = len as u8;
        header
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

fn as_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn version_1_lines() {
        let h = Header::new(Version::V1, Transport::Stream, addr("203.0.113.7:51000"), addr("198.51.100.1:8080"));
        assert_eq!(h.as_bytes(), b"PROXY TCP4 203.0.113.7 198.51.100.1 51000 8080\r\n");
        let h = Header::new(Version::V1, Transport::Stream, addr("[2001:db8::7]:51000"), addr("[2001:db8::1]:443"));
        assert_eq!(h.as_bytes(), b"PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n");
        // An IPv4 client on a dual-stack listener.
        let h = Header::new(
            Version::V1,
            Transport::Stream,
            addr("[::ffff:203.0.113.7]:1"),
            addr("[::ffff:198.51.100.1]:2"),
        );
        assert_eq!(h.as_bytes(), b"PROXY TCP4 203.0.113.7 198.51.100.1 1 2\r\n");
        let h = Header::new(Version::V1, Transport::Stream, addr("203.0.113.7:1"), addr("[2001:db8::1]:2"));
        assert_eq!(h.as_bytes(), b"PROXY TCP6 ::ffff:203.0.113.7 2001:db8::1 1 2\r\n");
        let longest = Header::new(
            Version::V1,
            Transport::Stream,
            addr("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
            addr("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
        );
        assert_eq!(longest.as_bytes().len(), 104, "the longest TCP6 line; the spec allows 107");
        assert!(longest.as_bytes().ends_with(b"65535 65535\r\n"));
    }

    #[test]
    fn version_2_bytes() {
        let h = Header::new(Version::V2, Transport::Stream, addr("203.0.113.7:51000"), addr("198.51.100.1:8080"));
        let mut want = V2_SIGNATURE.to_vec();
        want.extend_from_slice(&[0x21, 0x11, 0x00, 0x0C, 203, 0, 113, 7, 198, 51, 100, 1, 0xC7, 0x38, 0x1F, 0x90]);
        assert_eq!(h.as_bytes(), want.as_slice());

        let h = Header::new(Version::V2, Transport::Datagram, addr("[2001:db8::7]:53"), addr("[2001:db8::1]:5353"));
        let bytes = h.as_bytes();
        assert_eq!(bytes.len(), 16 + 36);
        assert_eq!(&bytes[12..16], &[0x21, 0x22, 0x00, 0x24]);
        assert_eq!(&bytes[16..32], &"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(&bytes[32..48], &"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(&bytes[48..], &[0x00, 0x35, 0x14, 0xE9]);

        let h = Header::new(Version::V1, Transport::Datagram, addr("203.0.113.7:1"), addr("198.51.100.1:2"));
        assert_eq!(&h.as_bytes()[12..14], &[0x21, 0x12], "no v1 for datagrams: v2 UDP4");
    }
}
