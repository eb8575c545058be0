//! Path MTU replies for frames too big for the underlay: an ICMP
//! "fragmentation needed" (RFC 792, RFC 1191) for an inner IPv4 packet with
//! DF set, or an ICMPv6 "packet too big" (RFC 4443 §3.2, RFC 8201) for an
//! inner IPv6 packet, addressed back to the sender so it lowers its path MTU.
//!
//! The reply is built in place without copying the quote: its Ethernet, IP
//! and ICMP headers are written into the 28 (IPv4) or 48 (IPv6) bytes before
//! the inner IP header — over the inner Ethernet header and into the
//! headroom — and the quoted packet is the original bytes where they lie,
//! cut to 548 bytes (a 576-byte reply, RFC 1812 §4.3.2.3) or 1232 bytes (a
//! 1280-byte reply, RFC 4443 §2.4(c)).
//!
//! The reply comes from the inner destination's MAC and IP address, as if
//! the destination had said it: the VTEP is a bridge with no address of its
//! own on the inner network. The MTU it announces is the largest inner IP
//! packet that fits: the underlay MTU less the outer headers and the inner
//! Ethernet header (with its tags).
//!
//! No reply is made (RFC 1812 §4.3.2.7, RFC 4443 §2.4(e)) about an ICMP
//! error, a non-first fragment, a packet from a non-unicast source, or a
//! packet to a group address or sent to a link-layer group address. Replies
//! go only to the local port the frame came from, so they are not rate
//! limited.
//!
//! What this module does not do: decide that a frame is too big.

use core::net::{IpAddr, Ipv6Addr};
use core::ops::Range;

use super::config::is_unicast;
use crate::wire::{ethernet, icmpv4, icmpv6, ipv4, ipv6, EtherType, IpProtocol};

/// The longest IPv4 quote: a reply of 576 bytes.
const MAX_QUOTE_V4: usize = 576 - ipv4::HEADER_LEN - icmpv4::HEADER_LEN;

/// The longest IPv6 quote: a reply of 1280 bytes.
const MAX_QUOTE_V6: usize = 1280 - ipv6::HEADER_LEN - icmpv6::HEADER_LEN;

/// The TTL of a reply.
const REPLY_TTL: u8 = 64;

/// The bytes a reply needs before the inner IP header, beyond the Ethernet
/// header it reuses: 28 for IPv4, 48 for IPv6. `HEADROOM` covers both.
pub(crate) const MAX_REPLY_GROWTH: usize = ipv6::HEADER_LEN + icmpv6::HEADER_LEN;

/// Which reply was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    FragNeeded,
    PacketTooBig,
}

/// Writes the reply for the too-big frame `buf[frame]` (Ethernet header
/// `eth`), announcing `mtu` for the inner IP packet, if one is due. Returns
/// its range in `buf`. `frame.start` must leave [`MAX_REPLY_GROWTH`] bytes
/// before it.
pub(crate) fn reply(
    buf: &mut [u8],
    frame: Range<usize>,
    eth: &ethernet::Repr,
    mtu: u16,
) -> Option<(Range<usize>, Kind)> {
    if !eth.dst_addr.is_unicast() || !eth.src_addr.is_unicast() {
        return None;
    }
    let ip_start = frame.start.checked_add(eth.header_len())?;
    match eth.ethertype {
        EtherType::Ipv4 => frag_needed(buf, ip_start..frame.end, eth, mtu).map(|r| (r, Kind::FragNeeded)),
        EtherType::Ipv6 => packet_too_big(buf, ip_start..frame.end, eth, mtu).map(|r| (r, Kind::PacketTooBig)),
        _ => None,
    }
}

/// The Ethernet header of a reply: back to the sender, from the destination,
/// with the same tags.
fn reply_eth(eth: &ethernet::Repr) -> ethernet::Repr {
    ethernet::Repr {
        src_addr: eth.dst_addr,
        dst_addr: eth.src_addr,
        vlan_tags: eth.vlan_tags,
        ethertype: eth.ethertype,
    }
}

fn frag_needed(buf: &mut [u8], ip_range: Range<usize>, eth: &ethernet::Repr, mtu: u16) -> Option<Range<usize>> {
    let ip = ipv4::Packet::new_checked(buf.get(ip_range.clone())?).ok()?;
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if !ip.dont_frag() || ip.frag_offset() != 0 || !is_unicast(IpAddr::V4(src)) || !is_unicast(IpAddr::V4(dst)) {
        return None;
    }
    if ip.next_header() == IpProtocol::Icmp {
        let icmp = icmpv4::Packet::new_checked(ip.payload()).ok()?;
        if !matches!(icmp.msg_type(), icmpv4::Message::EchoRequest | icmpv4::Message::EchoReply) {
            return None;
        }
    }
    let quote = usize::from(ip.total_len()).min(MAX_QUOTE_V4);
    let header_start = ip_range.start.checked_sub(ipv4::HEADER_LEN + icmpv4::HEADER_LEN)?;
    let start = header_start.checked_sub(eth.header_len())?;
    let end = ip_range.start + quote;
    let out = buf.get_mut(start..end)?;
    let hl = eth.header_len();
    reply_eth(eth).emit(&mut ethernet::Frame::new_unchecked(&mut out[..])).ok()?;
    let icmp = icmpv4::Repr::DstUnreachable {
        reason: icmpv4::DstUnreachable::FragRequired,
        next_hop_mtu: mtu,
        data_len: quote,
    };
    let ip_repr = ipv4::Repr {
        src_addr: dst,
        dst_addr: src,
        next_header: IpProtocol::Icmp,
        payload_len: icmp.buffer_len(),
        hop_limit: REPLY_TTL,
        dscp: 0,
        ecn: 0,
        ident: 0,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        options: ipv4::Ipv4Options::EMPTY,
    };
    ip_repr.emit(&mut ipv4::Packet::new_unchecked(&mut out[hl..])).ok()?;
    let mut message = icmpv4::Packet::new_unchecked(&mut out[hl + ipv4::HEADER_LEN..]);
    icmp.emit(&mut message).ok()?;
    message.fill_checksum();
    Some(start..end)
}

fn packet_too_big(buf: &mut [u8], ip_range: Range<usize>, eth: &ethernet::Repr, mtu: u16) -> Option<Range<usize>> {
    let ip = ipv6::Packet::new_checked(buf.get(ip_range.clone())?).ok()?;
    let (src, dst): (Ipv6Addr, Ipv6Addr) = (ip.src_addr(), ip.dst_addr());
    if !is_unicast(IpAddr::V6(src)) || !is_unicast(IpAddr::V6(dst)) {
        return None;
    }
    let upper = ip.upper_layer().ok()?;
    if upper.fragment.is_some_and(|f| f.frag_offset != 0) {
        return None;
    }
    if upper.protocol == IpProtocol::Icmpv6 {
        let icmp = icmpv6::Packet::new_checked(ip.payload().get(upper.offset..)?).ok()?;
        if icmp.msg_type().is_error() {
            return None;
        }
    }
    let quote = (ipv6::HEADER_LEN + usize::from(ip.payload_len())).min(MAX_QUOTE_V6);
    let hl = eth.header_len();
    let start = ip_range.start.checked_sub(ipv6::HEADER_LEN + icmpv6::HEADER_LEN + hl)?;
    let end = ip_range.start + quote;
    let out = buf.get_mut(start..end)?;
    reply_eth(eth).emit(&mut ethernet::Frame::new_unchecked(&mut out[..])).ok()?;
    let icmp = icmpv6::Repr::PktTooBig { mtu: u32::from(mtu), data_len: quote };
    let ip_repr = ipv6::Repr {
        src_addr: dst,
        dst_addr: src,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit: REPLY_TTL,
        traffic_class: 0,
        flow_label: 0,
    };
    ip_repr.emit(&mut ipv6::Packet::new_unchecked(&mut out[hl..])).ok()?;
    let mut message = icmpv6::Packet::new_unchecked(&mut out[hl + ipv6::HEADER_LEN..]);
    icmp.emit(&mut message).ok()?;
    message.fill_checksum(dst, src);
    Some(start..end)
}
