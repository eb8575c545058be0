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
#[inline]
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
#[inline]
pub fn layers(frame: &[u8]) -> Result<Layers<'_>> {
    let ethernet = ethernet::Frame::new_checked(frame)?;
    let payload = frame.get(ethernet.header_len()..).unwrap_or_default();
    let (network, transport) = match ethernet.ethertype() {
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
#[inline]
fn udp_payload(datagram: udp::Packet<&[u8]>) -> &[u8] {
    let end = usize::from(datagram.len());
    datagram.into_inner().get(udp::HEADER_LEN..end).unwrap_or_default()
}

#[inline]
fn transport(protocol: IpProtocol, payload: &[u8], ipv6: bool) -> Result<Transport<'_>> {
    Ok(match protocol {
        IpProtocol::Tcp => Transport::Tcp(tcp::Packet::new_checked(payload)?),
        IpProtocol::Udp => Transport::Udp(udp::Packet::new_checked(payload)?),
        IpProtocol::Icmp if !ipv6 => Transport::Icmpv4(icmpv4::Packet::new_checked(payload)?),
        IpProtocol::Icmpv6 if ipv6 => Transport::Icmpv6(icmpv6::Packet::new_checked(payload)?),
        other => Transport::Other(other),
    })
}
