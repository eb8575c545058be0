//! Walks a whole frame: Ethernet (with its VLAN tags), then ARP, IPv4 or IPv6
//! (through the IPv6 extension headers), then TCP, UDP, ICMPv4 or ICMPv6, and
//! when the UDP destination port is a VXLAN port, through the VXLAN header to
//! the inner frame and its own layers.
//!
//! Each layer is a checked view into the caller's buffer: nothing is copied
//! and nothing allocated. A layer that is present but malformed fails the
//! whole walk with its [`Error`]; a protocol this module does not know ends
//! the walk there (`Network::Other`, `Transport::Other`). Checksums are not
//! verified: that is the caller's choice (see the module docs of
//! [`crate::wire`]). What the frame means — forward it, translate it — is not
//! decided here.

use super::read_u16;
use super::{arp, ethernet, icmpv4, icmpv6, ipv4, ipv6, tcp, udp, vxlan, Error, EtherType, IpProtocol, Result};

/// The network layer of a frame.
#[derive(Debug, Clone, Copy)]
pub enum Network<'a> {
    Arp(arp::Packet<&'a [u8]>),
    Ipv4(ipv4::Packet<&'a [u8]>),
    /// An IPv6 packet and where its extension-header chain ends.
    Ipv6(ipv6::Packet<&'a [u8]>, ipv6::UpperLayer),
    /// An EtherType this module does not walk into.
    Other(EtherType),
}

/// The transport layer of a packet.
#[derive(Debug, Clone, Copy)]
pub enum Transport<'a> {
    Tcp(tcp::Packet<&'a [u8]>),
    Udp(udp::Packet<&'a [u8]>),
    Icmpv4(icmpv4::Packet<&'a [u8]>),
    Icmpv6(icmpv6::Packet<&'a [u8]>),
    /// A piece of a fragmented packet: its transport header, if any, is not
    /// parsed (a first fragment may hold only part of it).
    Fragment(IpProtocol),
    /// A protocol this module does not walk into, or IPv6 "no next header".
    Other(IpProtocol),
    /// No transport layer: ARP, or a network protocol not walked.
    None,
}

/// One frame's layers, outermost first.
#[derive(Debug, Clone, Copy)]
pub struct Layers<'a> {
    pub ethernet: ethernet::Frame<&'a [u8]>,
    pub network: Network<'a>,
    pub transport: Transport<'a>,
}

/// A whole frame: its outer layers and, if it is VXLAN, the VXLAN header and
/// the inner frame's layers.
#[derive(Debug, Clone, Copy)]
pub struct Dissection<'a> {
    pub outer: Layers<'a>,
    pub vxlan: Option<(vxlan::Packet<&'a [u8]>, Layers<'a>)>,
}

/// Walks `frame`, treating UDP to any port in `vxlan_ports` as VXLAN (pass
/// `&[vxlan::IANA_PORT]` for the standard port, an empty slice for none).
/// Only one level of encapsulation is walked. A VXLAN header without the I
/// flag is `Malformed` (RFC 7348 §5).
#[inline(always)]
pub fn dissect<'a>(frame: &'a [u8], vxlan_ports: &[u16]) -> Result<Dissection<'a>> {
    let outer = layers(frame)?;
    let vxlan = match outer.transport {
        Transport::Udp(udp) if vxlan_ports.contains(&udp.dst_port()) => {
            let header = vxlan::Packet::new_checked(udp_payload(udp))?;
            if !header.i_flag() {
                return Err(Error::Malformed);
            }
            let inner = layers(header.into_inner().get(vxlan::HEADER_LEN..).unwrap_or_default())?;
            Some((header, inner))
        }
        _ => None,
    };
    Ok(Dissection { outer, vxlan })
}

/// Walks one Ethernet frame, without looking into VXLAN.
#[inline(always)]
pub fn layers(frame: &[u8]) -> Result<Layers<'_>> {
    let ethernet = ethernet::Frame::new_checked(frame)?;
    // The header length (and so the type field after the tags) once.
    let header_len = ethernet.header_len();
    let payload = frame.get(header_len..).unwrap_or_default();
    let (network, transport) = match EtherType::from(read_u16(frame, header_len - 2)) {
        EtherType::Arp => (Network::Arp(arp::Packet::new_checked(payload)?), Transport::None),
        EtherType::Ipv4 => {
            let packet = ipv4::Packet::new_checked(payload)?;
            let protocol = packet.next_header();
            let transport = if packet.is_fragment() {
                Transport::Fragment(protocol)
            } else {
                let end = usize::from(packet.total_len());
                transport(protocol, payload.get(packet.header_len()..end).unwrap_or_default(), false)?
            };
            (Network::Ipv4(packet), transport)
        }
        EtherType::Ipv6 => {
            let packet = ipv6::Packet::new_checked(payload)?;
            let upper = packet.upper_layer()?;
            let fragmented = upper.fragment.is_some_and(|f| f.more_frags || f.frag_offset != 0);
            let transport = if fragmented {
                Transport::Fragment(upper.protocol)
            } else {
                // `upper_layer` checked that the offset lies within the payload.
                let start = ipv6::HEADER_LEN + upper.offset;
                let end = ipv6::HEADER_LEN + usize::from(packet.payload_len());
                transport(upper.protocol, payload.get(start..end).unwrap_or_default(), true)?
            };
            (Network::Ipv6(packet, upper), transport)
        }
        other => (Network::Other(other), Transport::None),
    };
    Ok(Layers { ethernet, network, transport })
}

/// The payload of a checked datagram, borrowed for as long as the frame.
#[inline(always)]
fn udp_payload(datagram: udp::Packet<&[u8]>) -> &[u8] {
    let end = usize::from(datagram.len());
    datagram.into_inner().get(udp::HEADER_LEN..end).unwrap_or_default()
}

#[inline(always)]
fn transport(protocol: IpProtocol, payload: &[u8], ipv6: bool) -> Result<Transport<'_>> {
    Ok(match protocol {
        IpProtocol::Tcp => Transport::Tcp(tcp::Packet::new_checked(payload)?),
        IpProtocol::Udp => Transport::Udp(udp::Packet::new_checked(payload)?),
        IpProtocol::Icmp if !ipv6 => Transport::Icmpv4(icmpv4::Packet::new_checked(payload)?),
        IpProtocol::Icmpv6 if ipv6 => Transport::Icmpv6(icmpv6::Packet::new_checked(payload)?),
        other => Transport::Other(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    /// Ethernet / IPv4 192.0.2.1 → 192.0.2.2 / UDP 49152 → 4789 / VXLAN VNI
    /// 42 / Ethernet / IPv4 198.51.100.1 → 198.51.100.2 / TCP SYN 40000 → 80
    /// with MSS 1460, SACK-permitted, timestamps and window scale 7.
    const VXLAN_SYN: [u8; 124] = [
        // outer Ethernet: dst 02:00:00:00:00:02, src 02:00:00:00:00:01, IPv4
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,
        // outer IPv4: IHL 5, total 110, ident 0x1234, DF, TTL 64, UDP, checksum, addresses
        0x45, 0x00, 0x00, 0x6e, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0xa4, 0x47, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00,
        0x02, 0x02, //
        // UDP: 49152 → 4789, length 90, no checksum
        0xc0, 0x00, 0x12, 0xb5, 0x00, 0x5a, 0x00, 0x00, //
        // VXLAN: I flag, VNI 42
        0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, 0x00, //
        // inner Ethernet
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,
        // inner IPv4: total 60, TCP
        0x45, 0x00, 0x00, 0x3c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0xd4, 0x1d, 0xc6, 0x33, 0x64, 0x01, 0xc6, 0x33,
        0x64, 0x02, //
        // TCP: 40000 → 80, seq 1000, data offset 10, SYN, window 64240, checksum
        0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x03, 0xe8, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa, 0xf0, 0x58, 0x2b,
        0x00, 0x00, //
        // options: MSS 1460, SACK-permitted, timestamps 1/0, NOP, window scale 7
        0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03,
        0x03, 0x07,
    ];

    #[test]
    fn walks_vxlan_to_the_inner_tcp_header() {
        let d = dissect(&VXLAN_SYN, &[vxlan::IANA_PORT]).unwrap();
        let Network::Ipv4(outer) = d.outer.network else { panic!("outer IPv4") };
        assert_eq!(outer.dst_addr(), Ipv4Addr::new(192, 0, 2, 2));
        let Transport::Udp(udp) = d.outer.transport else { panic!("outer UDP") };
        assert_eq!(udp.dst_port(), 4789);
        let (header, inner) = d.vxlan.expect("VXLAN");
        assert_eq!(header.vni().get(), 42);
        let (Network::Ipv4(ip), Transport::Tcp(tcp)) = (inner.network, inner.transport) else {
            panic!("inner IPv4/TCP")
        };
        assert!(ip.verify_checksum());
        assert_eq!(ip.src_addr(), Ipv4Addr::new(198, 51, 100, 1));
        assert_eq!((tcp.src_port(), tcp.dst_port()), (40000, 80));
        assert!(tcp.syn() && !tcp.ack());
        assert!(tcp.verify_checksum(ip.src_addr().into(), ip.dst_addr().into()));
        let repr = tcp::Repr::parse(&tcp).unwrap();
        assert_eq!((repr.max_seg_size, repr.window_scale, repr.sack_permitted), (Some(1460), Some(7), true));
    }

    #[test]
    fn vxlan_only_on_the_given_ports() {
        let d = dissect(&VXLAN_SYN, &[]).unwrap();
        assert!(d.vxlan.is_none());
        let d = dissect(&VXLAN_SYN, &[vxlan::LINUX_PORT]).unwrap();
        assert!(d.vxlan.is_none());
    }

    #[test]
    fn errors_name_the_failed_check() {
        // Cut inside the inner TCP header: the inner IPv4 total length runs past the end.
        assert_eq!(dissect(&VXLAN_SYN[..110], &[vxlan::IANA_PORT]).unwrap_err(), Error::Truncated);
        // Without the VXLAN I flag (RFC 7348 §5).
        let mut no_i_flag = VXLAN_SYN;
        no_i_flag[42] = 0x00;
        assert_eq!(dissect(&no_i_flag, &[vxlan::IANA_PORT]).unwrap_err(), Error::Malformed);
        // Reserved VXLAN bits are ignored.
        let mut reserved = VXLAN_SYN;
        reserved[42] = 0xff;
        reserved[49] = 0xff;
        assert!(dissect(&reserved, &[vxlan::IANA_PORT]).unwrap().vxlan.is_some());
        // An inner TCP data offset below 5.
        let mut bad_offset = VXLAN_SYN;
        bad_offset[96] = 0x40;
        assert_eq!(dissect(&bad_offset, &[vxlan::IANA_PORT]).unwrap_err(), Error::Malformed);
        assert_eq!(dissect(&VXLAN_SYN[..13], &[]).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn fragments_and_unknown_protocols_end_the_walk() {
        let inner = &VXLAN_SYN[50..];
        let mut fragment = [0u8; 74];
        fragment.copy_from_slice(inner);
        fragment[20] = 0x20; // MF
        let walked = layers(&fragment).unwrap();
        assert!(matches!(walked.transport, Transport::Fragment(IpProtocol::Tcp)));
        let mut other = [0u8; 74];
        other.copy_from_slice(inner);
        other[12] = 0x88;
        other[13] = 0xcc; // LLDP
        assert!(matches!(layers(&other).unwrap().network, Network::Other(EtherType::Unknown(0x88cc))));
    }
}
