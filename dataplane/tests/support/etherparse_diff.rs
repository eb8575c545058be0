//! wharf's whole-frame walk (`wire::dissect::layers`) against etherparse's
//! `SlicedPacket::from_ethernet`, used by the differential test and by the
//! `differential` fuzz target.
//!
//! On any frame both must accept or both reject, and where both accept they
//! must agree on every field both expose, layer by layer, down to the
//! transport header; a VXLAN payload is compared again as an inner frame.
//!
//! Where the two differ by design the frame is not counted as a disagreement,
//! and [`Verdict::Known`] says why. Each is one of:
//!
//! - etherparse checks a message wharf does not represent: an ICMP
//!   timestamp or timestamp reply (RFC 792, code 0) must be exactly 20
//!   bytes for etherparse, which reads its timestamps as header; wharf
//!   carries any ICMP type's body as data.
//! - etherparse walks further than wharf does: a 0x9100 or MACsec
//!   EtherType, a third VLAN tag, IPsec AH, IGMP, ICMPv6 carried over IPv4
//!   and ICMPv4 over IPv6.
//!   wharf stops there and carries the protocol number (`Other`).
//! - etherparse is wrong, with the RFC clause:
//!   - An IPv6 payload length of zero: etherparse takes the rest of the
//!     buffer as the payload, guessing a jumbogram, even without the Jumbo
//!     Payload option. RFC 2675 §3 allows a zero length only with that
//!     option, so wharf reads an empty payload.
//!   - A neighbour solicitation or advertisement shorter than 24 bytes:
//!     etherparse takes it as an ICMPv6 message. RFC 4861 §7.1.1 and §7.1.2
//!     say a node must drop it ("ICMP length ... is 24 or more octets").
//!   - A UDP length of zero: etherparse takes the rest of the IP payload as
//!     the datagram, over IPv4 too. RFC 2675 §4 allows zero only in an IPv6
//!     jumbogram (over 65,535 bytes, with the Jumbo Payload option); anywhere
//!     else RFC 768's minimum of 8 holds.
//!   - A non-first IPv6 fragment: etherparse walks on through what follows
//!     the Fragment header as if it were more extension headers. RFC 8200
//!     §4.5 makes it fragment data (part of the original payload), so wharf
//!     stops there.
//!   - A second IPv6 Fragment header: etherparse walks through it. RFC 8200
//!     §4.1 allows each extension header at most once (Destination Options
//!     excepted), and RFC 8200 §4.5 reassembly cannot apply two, so wharf
//!     refuses the packet.

use std::net::IpAddr;

use dataplane::wire::dissect::{layers, Layers, Network, Transport};
use dataplane::wire::ethernet::VlanTags;
use dataplane::wire::{icmpv4, vxlan, Error, EtherType, IpProtocol};
use etherparse::{Ipv6ExtensionSlice, LinkExtSlice, LinkSlice, NetSlice, SlicedPacket, TransportSlice};

/// How one frame compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    BothAccept,
    BothReject,
    /// A difference by design (see the module docs).
    Known(&'static str),
}

/// Compares one frame, and its VXLAN payload (UDP to 4789) as an inner
/// frame. `Err` describes a disagreement.
pub(crate) fn compare(frame: &[u8]) -> Result<Verdict, String> {
    let verdict = compare_one(frame)?;
    if verdict == Verdict::BothAccept {
        if let Ok(Layers { transport: Transport::Udp(udp), .. }) = layers(frame) {
            let payload = udp.payload();
            if udp.dst_port() == vxlan::IANA_PORT && payload.len() >= vxlan::HEADER_LEN && payload[0] & 0x08 != 0 {
                return compare_one(&payload[vxlan::HEADER_LEN..]).map_err(|e| format!("inner frame: {e}"));
            }
        }
    }
    Ok(verdict)
}

fn compare_one(frame: &[u8]) -> Result<Verdict, String> {
    let ours = layers(frame);
    if let Some(reason) = known_difference(frame, &ours) {
        return Ok(Verdict::Known(reason));
    }
    let theirs = SlicedPacket::from_ethernet(frame);
    match (ours, theirs) {
        (Err(_), Err(_)) => Ok(Verdict::BothReject),
        (Ok(_), Err(e)) => Err(format!("wharf accepts, etherparse rejects: {e:?}")),
        (Err(e), Ok(_)) => Err(format!("wharf rejects ({e}), etherparse accepts")),
        (Ok(ours), Ok(theirs)) => {
            fields(&ours, &theirs)?;
            Ok(Verdict::BothAccept)
        }
    }
}

/// Whether the frame falls in one of the differences by design.
fn known_difference(frame: &[u8], ours: &Result<Layers<'_>, Error>) -> Option<&'static str> {
    let Ok(ours) = ours else {
        return known_rejection(frame);
    };
    match ours.network {
        Network::Other(EtherType::Unknown(0x9100 | 0x88e5)) | Network::Other(EtherType::Vlan | EtherType::QinQ) => {
            return Some("etherparse walks 0x9100, MACsec and a third VLAN tag");
        }
        Network::Ipv6(_, upper) if upper.fragment.is_some_and(|f| f.frag_offset != 0) => {
            return Some("etherparse walks headers inside a non-first fragment (RFC 8200 §4.5)");
        }
        Network::Ipv6(packet, _) if packet.payload_len() == 0 && frame.len() > ours.ethernet.header_len() + 40 => {
            return Some("IPv6 payload length 0 without a jumbo option (RFC 2675 §3)");
        }
        _ => {}
    }
    match ours.transport {
        Transport::Other(IpProtocol::Ah | IpProtocol::Igmp) => Some("etherparse walks AH and IGMP"),
        Transport::Other(IpProtocol::Icmpv6) if matches!(ours.network, Network::Ipv4(_)) => {
            Some("etherparse walks ICMPv6 over IPv4")
        }
        Transport::Other(IpProtocol::Icmp) if matches!(ours.network, Network::Ipv6(..)) => {
            Some("etherparse walks ICMPv4 over IPv6")
        }
        Transport::Fragment(IpProtocol::Ah) => Some("etherparse walks AH"),
        Transport::Icmpv4(icmp) if is_timestamp(&icmp) && icmp.data().len() != 12 => {
            Some("etherparse refuses ICMP timestamp messages not of 20 bytes; wharf carries them")
        }
        _ => None,
    }
}

/// For a frame wharf refuses: whether etherparse accepting it is one of the
/// differences by design.
fn known_rejection(frame: &[u8]) -> Option<&'static str> {
    let Ok(SlicedPacket { net, transport, .. }) = SlicedPacket::from_ethernet(frame) else {
        return None;
    };
    if let Some(TransportSlice::Udp(udp)) = &transport {
        if udp.length() == 0 {
            return Some("UDP length 0 outside a jumbogram (RFC 768, RFC 2675 §4)");
        }
    }
    let Some(NetSlice::Ipv6(ip)) = net else { return None };
    if ip.header().payload_length() == 0 {
        return Some("IPv6 payload length 0 without a jumbo option (RFC 2675 §3)");
    }
    let fragment_headers =
        ip.extensions().clone().into_iter().filter(|ext| matches!(ext, Ipv6ExtensionSlice::Fragment(_))).count();
    if fragment_headers > 1 {
        return Some("a second IPv6 Fragment header (RFC 8200 §4.1)");
    }
    if let Some(TransportSlice::Icmpv6(icmp)) = transport {
        let kind = icmp.slice()[0];
        if (kind == 135 || kind == 136) && icmp.slice().len() < 24 {
            return Some("NS/NA shorter than 24 bytes (RFC 4861 §7.1.1, §7.1.2)");
        }
    }
    None
}

macro_rules! same {
    ($what:expr, $ours:expr, $theirs:expr) => {{
        let (ours, theirs) = ($ours, $theirs);
        if ours != theirs {
            return Err(format!("{}: wharf {:?}, etherparse {:?}", $what, ours, theirs));
        }
    }};
}

fn fields(ours: &Layers<'_>, theirs: &SlicedPacket<'_>) -> Result<(), String> {
    let Some(LinkSlice::Ethernet2(eth)) = &theirs.link else { return Err("etherparse found no Ethernet".into()) };
    same!("dst MAC", ours.ethernet.dst_addr().0, eth.destination());
    same!("src MAC", ours.ethernet.src_addr().0, eth.source());
    let their_tags: Vec<_> = theirs
        .link_exts
        .iter()
        .filter_map(|ext| match ext {
            LinkExtSlice::Vlan(tag) => Some(tag),
            LinkExtSlice::Macsec(_) => None,
        })
        .collect();
    let our_tags = match ours.ethernet.vlan_tags() {
        VlanTags::None => vec![],
        VlanTags::Single(tag) => vec![tag],
        VlanTags::Double { outer, inner } => vec![outer, inner],
    };
    same!("VLAN tag count", our_tags.len(), their_tags.len());
    for (ours, theirs) in our_tags.iter().zip(&their_tags) {
        same!("VLAN id", ours.vid, theirs.vlan_identifier().value());
        same!("VLAN PCP", ours.pcp, theirs.priority_code_point().value());
        same!("VLAN DEI", ours.dei, theirs.drop_eligible_indicator());
    }
    let their_ethertype = their_tags.last().map_or(eth.ether_type(), |tag| tag.ether_type());
    same!("EtherType", u16::from(ours.ethernet.ethertype()), their_ethertype.0);

    let (src, dst): (IpAddr, IpAddr) = match (&ours.network, &theirs.net) {
        (Network::Other(_), None) => return Ok(()),
        (Network::Arp(ours), Some(NetSlice::Arp(theirs))) => {
            same!("ARP hardware", u16::from(ours.hardware_type()), theirs.hw_addr_type().0);
            same!("ARP protocol", u16::from(ours.protocol_type()), theirs.proto_addr_type().0);
            same!("ARP operation", u16::from(ours.operation()), theirs.operation().0);
            same!("ARP sender hw", ours.source_hardware_addr(), theirs.sender_hw_addr());
            same!("ARP sender ip", ours.source_protocol_addr(), theirs.sender_protocol_addr());
            same!("ARP target hw", ours.target_hardware_addr(), theirs.target_hw_addr());
            same!("ARP target ip", ours.target_protocol_addr(), theirs.target_protocol_addr());
            return Ok(());
        }
        (Network::Ipv4(ours), Some(NetSlice::Ipv4(theirs))) => {
            let h = theirs.header();
            same!("IHL", ours.header_len(), usize::from(h.ihl()) * 4);
            same!("DSCP", ours.dscp(), h.dcp().value());
            same!("ECN", ours.ecn(), h.ecn().value());
            same!("total length", ours.total_len(), h.total_len());
            same!("ident", ours.ident(), h.identification());
            same!("DF", ours.dont_frag(), h.dont_fragment());
            same!("MF", ours.more_frags(), h.more_fragments());
            same!("fragment offset", ours.frag_offset(), h.fragments_offset().value() * 8);
            same!("TTL", ours.hop_limit(), h.ttl());
            same!("protocol", u8::from(ours.next_header()), h.protocol().0);
            same!("header checksum", ours.checksum(), h.header_checksum());
            same!("IPv4 source", ours.src_addr().octets(), h.source());
            same!("IPv4 destination", ours.dst_addr().octets(), h.destination());
            same!("IPv4 options", ours.options(), h.options());
            same!("IPv4 payload", ours.payload(), theirs.payload().payload);
            (ours.src_addr().into(), ours.dst_addr().into())
        }
        (Network::Ipv6(ours, upper), Some(NetSlice::Ipv6(theirs))) => {
            let h = theirs.header();
            same!("traffic class", ours.traffic_class(), h.traffic_class());
            same!("flow label", ours.flow_label(), h.flow_label().value());
            same!("payload length", ours.payload_len(), h.payload_length());
            same!("next header", u8::from(ours.next_header()), h.next_header().0);
            same!("hop limit", ours.hop_limit(), h.hop_limit());
            same!("IPv6 source", ours.src_addr().octets(), h.source());
            same!("IPv6 destination", ours.dst_addr().octets(), h.destination());
            same!("upper-layer protocol", u8::from(upper.protocol), theirs.payload().ip_number.0);
            let fragmented = upper.fragment.is_some_and(|f| f.more_frags || f.frag_offset != 0);
            same!("fragmented", fragmented, theirs.is_payload_fragmented());
            same!("upper-layer payload", ours.payload().get(upper.offset..).unwrap_or(&[]), theirs.payload().payload);
            (ours.src_addr().into(), ours.dst_addr().into())
        }
        (ours, theirs) => return Err(format!("network layer: wharf {ours:?}, etherparse {theirs:?}")),
    };

    match (&ours.transport, &theirs.transport) {
        (Transport::Tcp(ours), Some(TransportSlice::Tcp(theirs))) => {
            same!("TCP source port", ours.src_port(), theirs.source_port());
            same!("TCP destination port", ours.dst_port(), theirs.destination_port());
            same!("TCP sequence", ours.seq_number(), theirs.sequence_number());
            same!("TCP acknowledgment", ours.ack_number(), theirs.acknowledgment_number());
            same!("TCP header length", ours.header_len(), usize::from(theirs.data_offset()) * 4);
            same!(
                "TCP flags",
                [
                    ours.fin(),
                    ours.syn(),
                    ours.rst(),
                    ours.psh(),
                    ours.ack(),
                    ours.urg(),
                    ours.ece(),
                    ours.cwr(),
                    ours.ns()
                ],
                [
                    theirs.fin(),
                    theirs.syn(),
                    theirs.rst(),
                    theirs.psh(),
                    theirs.ack(),
                    theirs.urg(),
                    theirs.ece(),
                    theirs.cwr(),
                    theirs.ns()
                ]
            );
            same!("TCP window", ours.window_len(), theirs.window_size());
            same!("TCP checksum", ours.checksum(), theirs.checksum());
            same!("TCP urgent pointer", ours.urgent_at(), theirs.urgent_pointer());
            same!("TCP options", ours.options(), theirs.options());
            same!("TCP payload", ours.payload(), theirs.payload());
            // etherparse recomputes the checksum from its parsed header, which
            // drops the three reserved bits; the checksum covers them (RFC 9293
            // §3.1: "all 16-bit words in the header and text"), so with one set
            // etherparse is wrong and the comparison is left out.
            let segment = theirs.slice();
            if segment[12] & 0x0e == 0 {
                same!("TCP checksum valid", ours.verify_checksum(src, dst), verify_tcp(segment, src, dst));
            }
        }
        (Transport::Udp(ours), Some(TransportSlice::Udp(theirs))) => {
            same!("UDP source port", ours.src_port(), theirs.source_port());
            same!("UDP destination port", ours.dst_port(), theirs.destination_port());
            same!("UDP length", ours.len(), theirs.length());
            same!("UDP checksum", ours.checksum(), theirs.checksum());
            same!("UDP payload", ours.payload(), theirs.payload());
        }
        (Transport::Icmpv4(ours), Some(TransportSlice::Icmpv4(theirs))) => {
            same!("ICMP type", u8::from(ours.msg_type()), theirs.slice()[0]);
            same!("ICMP code", ours.msg_code(), theirs.slice()[1]);
            same!("ICMP checksum", ours.checksum(), theirs.checksum());
            // etherparse counts a timestamp message's three timestamps as
            // header; wharf carries them as data.
            if !is_timestamp(ours) {
                same!("ICMP data", ours.data(), theirs.payload());
            }
        }
        (Transport::Icmpv6(ours), Some(TransportSlice::Icmpv6(theirs))) => {
            same!("ICMPv6 type", u8::from(ours.msg_type()), theirs.slice()[0]);
            same!("ICMPv6 code", ours.msg_code(), theirs.slice()[1]);
            same!("ICMPv6 checksum", ours.checksum(), theirs.checksum());
            if let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) {
                same!(
                    "ICMPv6 checksum valid",
                    ours.verify_checksum(s, d),
                    theirs.is_checksum_valid(s.octets(), d.octets())
                );
            }
        }
        (Transport::Fragment(_) | Transport::Other(_) | Transport::None, None) => {}
        (ours, theirs) => return Err(format!("transport layer: wharf {ours:?}, etherparse {theirs:?}")),
    }
    Ok(())
}

/// An ICMP timestamp or timestamp reply (RFC 792) as etherparse reads one:
/// types 13 and 14 with code 0.
fn is_timestamp(icmp: &icmpv4::Packet<&[u8]>) -> bool {
    matches!(u8::from(icmp.msg_type()), 13 | 14) && icmp.msg_code() == 0
}

/// etherparse's own TCP checksum check, over the same pseudo-header.
fn verify_tcp(segment: &[u8], src: IpAddr, dst: IpAddr) -> bool {
    let Ok(header) = etherparse::TcpHeader::from_slice(segment).map(|(h, _)| h) else { return false };
    let payload = &segment[header.header_len()..];
    let expected = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => header.calc_checksum_ipv4_raw(s.octets(), d.octets(), payload),
        (IpAddr::V6(s), IpAddr::V6(d)) => header.calc_checksum_ipv6_raw(s.octets(), d.octets(), payload),
        _ => return false,
    };
    expected.is_ok_and(|c| c == header.checksum)
}
