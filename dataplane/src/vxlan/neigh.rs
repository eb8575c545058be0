//! Neighbour suppression, the kernel vxlan's `proxy` option: a table of inner
//! IP → MAC per VNI, the answers to ARP requests and IPv6 neighbour
//! solicitations built from it, and the snooping that fills it from
//! received ARP and neighbour advertisement frames.
//!
//! A request for an address the table knows is answered with a reply frame
//! written into the caller's buffer (over the request, and for a neighbour
//! advertisement up to 8 bytes into the headroom before it); a request for an
//! unknown address is not answered, and the VTEP floods it. The kernel drops
//! it instead (and sends an `L3MISS` netlink notification); flooding keeps
//! connectivity from depending on a complete table.
//!
//! Checksums of solicitations from the local port are not verified: frames
//! from a TAP device with offloads may carry partial ones. Snooped
//! advertisements come from the network and are verified.
//!
//! What this module does not do: decide whether proxying is on, or send
//! anything.

use core::net::{IpAddr, Ipv6Addr};
use core::ops::Range;
use std::time::{Duration, Instant};

use super::config::is_unicast;
use super::fdb::VniIndex;
use super::table::{AgeingTable, EntryKind, Learn};
use crate::wire::icmpv6::{self, NeighborFlags};
use crate::wire::vxlan::Vni;
use crate::wire::{arp, ethernet, ipv6, EtherType, EthernetAddress, IpProtocol};

/// The all-nodes multicast address, where an advertisement answering a
/// solicitation from the unspecified address goes (RFC 4861 §7.2.4).
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The Ethernet address of [`ALL_NODES`] (RFC 2464 §7).
const ALL_NODES_MAC: EthernetAddress = EthernetAddress([0x33, 0x33, 0, 0, 0, 1]);

/// Neighbour discovery messages travel with hop limit 255 (RFC 4861 §7.1).
const ND_HOP_LIMIT: u8 = 255;

/// What the table knows of one neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Neighbour {
    pub(crate) mac: EthernetAddress,
    /// The R flag of the advertisement it was snooped from: echoed in our
    /// answers, so that a router is not dropped from hosts' router lists.
    pub(crate) router: bool,
}

/// One neighbour entry, as [`crate::vxlan::Vtep::neighbours`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NeighbourEntry {
    pub vni: Vni,
    pub ip: IpAddr,
    pub mac: EthernetAddress,
    pub router: bool,
    pub kind: EntryKind,
}

/// A reply frame written into the caller's buffer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Answer {
    pub(crate) frame: Range<usize>,
    pub(crate) arp: bool,
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Neighbours {
    table: AgeingTable<(VniIndex, IpAddr), Neighbour>,
}

impl Neighbours {
    /// A table holding `statics`, with room for `max_learned` snooped
    /// neighbours living `ageing` without being seen again.
    pub(crate) fn new(
        statics: impl IntoIterator<Item = (VniIndex, IpAddr, EthernetAddress)>,
        max_learned: usize,
        ageing: Duration,
    ) -> Neighbours {
        let statics = statics.into_iter().map(|(vni, ip, mac)| ((vni, ip), Neighbour { mac, router: false }));
        Neighbours { table: AgeingTable::new(statics, max_learned, ageing) }
    }

    pub(crate) fn lookup(&self, vni: VniIndex, ip: IpAddr) -> Option<Neighbour> {
        self.table.get(&(vni, ip))
    }

    pub(crate) fn expire(&mut self, now: Instant) -> usize {
        self.table.expire(now)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (VniIndex, IpAddr, Neighbour, EntryKind)> + '_ {
        self.table.iter().map(|((vni, ip), neighbour, kind)| (vni, ip, neighbour, kind))
    }

    /// Answers the ARP request or neighbour solicitation in `buf[frame]`,
    /// whose Ethernet header is `eth`, if its target is known: writes the
    /// reply into `buf` and returns where. `frame.start` must leave at least
    /// 8 bytes of headroom.
    pub(crate) fn answer(
        &self,
        vni: VniIndex,
        buf: &mut [u8],
        frame: Range<usize>,
        eth: &ethernet::Repr,
    ) -> Option<Answer> {
        match eth.ethertype {
            EtherType::Arp => self.answer_arp(vni, buf, frame, eth).map(|frame| Answer { frame, arp: true }),
            EtherType::Ipv6 => self.answer_ns(vni, buf, frame, eth).map(|frame| Answer { frame, arp: false }),
            _ => None,
        }
    }

    fn answer_arp(
        &self,
        vni: VniIndex,
        buf: &mut [u8],
        frame: Range<usize>,
        eth: &ethernet::Repr,
    ) -> Option<Range<usize>> {
        let hl = eth.header_len();
        let payload = buf.get(frame.start.checked_add(hl)?..frame.end)?;
        let request = arp::Repr::parse(&arp::Packet::new_checked(payload).ok()?).ok()?;
        let target = request.target_protocol_addr;
        let asker = request.source_hardware_addr;
        // Gratuitous ARP (sender = target) announces; it is not a question.
        if request.operation != arp::Operation::Request
            || !is_unicast(IpAddr::V4(target))
            || target == request.source_protocol_addr
            || !asker.is_unicast()
        {
            return None;
        }
        let neighbour = self.lookup(vni, IpAddr::V4(target))?;
        let reply_eth = ethernet::Repr {
            src_addr: neighbour.mac,
            dst_addr: asker,
            vlan_tags: eth.vlan_tags,
            ethertype: EtherType::Arp,
        };
        let reply = arp::Repr {
            operation: arp::Operation::Reply,
            source_hardware_addr: neighbour.mac,
            source_protocol_addr: target,
            target_hardware_addr: asker,
            target_protocol_addr: request.source_protocol_addr,
        };
        // The request held a whole Ethernet/IPv4 ARP packet: the reply fits
        // where it was.
        let end = frame.start + hl + reply.buffer_len();
        let out = buf.get_mut(frame.start..end)?;
        reply_eth.emit(&mut ethernet::Frame::new_unchecked(&mut out[..])).ok()?;
        reply.emit(&mut arp::Packet::new_unchecked(&mut out[hl..])).ok()?;
        Some(frame.start..end)
    }

    fn answer_ns(
        &self,
        vni: VniIndex,
        buf: &mut [u8],
        frame: Range<usize>,
        eth: &ethernet::Repr,
    ) -> Option<Range<usize>> {
        let hl = eth.header_len();
        let payload = buf.get(frame.start.checked_add(hl)?..frame.end)?;
        let ip = ipv6::Packet::new_checked(payload).ok()?;
        if ip.next_header() != IpProtocol::Icmpv6 || ip.hop_limit() != ND_HOP_LIMIT {
            return None;
        }
        let icmp = icmpv6::Packet::new_checked(ip.payload()).ok()?;
        if icmp.msg_type() != icmpv6::Message::NeighborSolicit {
            return None;
        }
        let icmpv6::Repr::NeighborSolicit { target_addr, source_lladdr } = icmpv6::Repr::parse(&icmp).ok()? else {
            return None;
        };
        let src = ip.src_addr();
        // RFC 4861 §7.1.1: no source link-layer option from the unspecified
        // address (duplicate address detection).
        if src.is_multicast() || (src.is_unspecified() && source_lladdr.is_some()) {
            return None;
        }
        let neighbour = self.lookup(vni, IpAddr::V6(target_addr))?;
        let (dst_ip, dst_mac, solicited) = if src.is_unspecified() {
            (ALL_NODES, ALL_NODES_MAC, false)
        } else {
            (src, source_lladdr.unwrap_or(eth.src_addr), true)
        };
        if solicited && !dst_mac.is_unicast() {
            return None;
        }
        let advert = icmpv6::Repr::NeighborAdvert {
            flags: NeighborFlags { router: neighbour.router, solicited, override_: true },
            target_addr,
            target_lladdr: Some(neighbour.mac),
        };
        let ip_repr = ipv6::Repr {
            src_addr: target_addr,
            dst_addr: dst_ip,
            next_header: IpProtocol::Icmpv6,
            payload_len: advert.buffer_len(),
            hop_limit: ND_HOP_LIMIT,
            traffic_class: 0,
            flow_label: 0,
        };
        let reply_eth = ethernet::Repr {
            src_addr: neighbour.mac,
            dst_addr: dst_mac,
            vlan_tags: eth.vlan_tags,
            ethertype: EtherType::Ipv6,
        };
        // A solicitation is at least hl + 64 bytes and the advertisement
        // hl + 72: it may start up to 8 bytes into the headroom.
        let len = hl + ip_repr.buffer_len();
        let start = if frame.len() >= len { frame.start } else { frame.end.checked_sub(len)? };
        let out = buf.get_mut(start..start + len)?;
        reply_eth.emit(&mut ethernet::Frame::new_unchecked(&mut out[..])).ok()?;
        ip_repr.emit(&mut ipv6::Packet::new_unchecked(&mut out[hl..])).ok()?;
        let mut message = icmpv6::Packet::new_unchecked(&mut out[hl + ipv6::HEADER_LEN..]);
        advert.emit(&mut message).ok()?;
        message.fill_checksum(target_addr, dst_ip);
        Some(start..start + len)
    }

    /// Learns the sender of a received ARP packet, or the target of a
    /// received neighbour advertisement, in `frame` (an inner frame, already
    /// checked to have an Ethernet header). `None` if there was nothing to
    /// learn.
    pub(crate) fn snoop(&mut self, vni: VniIndex, frame: &[u8], now: Instant) -> Option<Learn<Neighbour>> {
        let eth = ethernet::Frame::new_checked(frame).ok()?;
        let (ip, neighbour) = match eth.ethertype() {
            EtherType::Arp => {
                let packet = arp::Repr::parse(&arp::Packet::new_checked(eth.payload()).ok()?).ok()?;
                if !matches!(packet.operation, arp::Operation::Request | arp::Operation::Reply) {
                    return None;
                }
                let neighbour = Neighbour { mac: packet.source_hardware_addr, router: false };
                (IpAddr::V4(packet.source_protocol_addr), neighbour)
            }
            EtherType::Ipv6 => {
                let ip = ipv6::Packet::new_checked(eth.payload()).ok()?;
                if ip.next_header() != IpProtocol::Icmpv6 || ip.hop_limit() != ND_HOP_LIMIT {
                    return None;
                }
                let icmp = icmpv6::Packet::new_checked(ip.payload()).ok()?;
                if icmp.msg_type() != icmpv6::Message::NeighborAdvert
                    || !icmp.verify_checksum(ip.src_addr(), ip.dst_addr())
                {
                    return None;
                }
                let icmpv6::Repr::NeighborAdvert { flags, target_addr, target_lladdr } =
                    icmpv6::Repr::parse(&icmp).ok()?
                else {
                    return None;
                };
                let neighbour = Neighbour { mac: target_lladdr.unwrap_or(eth.src_addr()), router: flags.router };
                (IpAddr::V6(target_addr), neighbour)
            }
            _ => return None,
        };
        if !is_unicast(ip) || !neighbour.mac.is_unicast() || neighbour.mac == EthernetAddress::default() {
            return None;
        }
        Some(self.table.learn((vni, ip), neighbour, now, |_| true))
    }
}
