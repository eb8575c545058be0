//! The VTEP engine: [`Vtep::encap`] turns a frame from a local port into a
//! VXLAN datagram and the remotes it goes to (or a local reply), and
//! [`Vtep::decap`] / [`Vtep::decap_packet`] turn a received datagram into a
//! frame for a local port, learning where its sender lives.
//!
//! It is sans-IO: it reads and writes the caller's buffer, takes `now` as an
//! argument, and returns decisions; the runner does the I/O. On the socket
//! path the kernel writes the outer IP and UDP headers, so `encap`'s product
//! is the VXLAN header in the headroom before the frame, the remotes and the
//! UDP source port; [`Vtep::write_outer`] adds outer IPv4/IPv6 and UDP
//! headers for raw underlays and tests. Nothing here allocates after
//! [`Vtep::new`].
//!
//! What this module does not do: segment superframes (see `gso`), send or
//! receive, or keep time (call [`Vtep::expire`] about once a second).

use core::cell::Cell;
use core::fmt;
use core::net::{IpAddr, SocketAddr};
use core::ops::Range;
use std::time::Instant;

use super::config::{is_unicast, outer_ip_len, ConfigError, PortId, VtepConfig};
use super::fdb::{Fdb, FdbEntry, VniIndex};
use super::neigh::{NeighbourEntry, Neighbours};
use super::stats::{DropReason, Stats};
use super::table::Learn;
use super::{flow, pmtu};
use crate::wire::vxlan::{self, Vni};
use crate::wire::{checksum, ethernet, ipv4, ipv6, udp, EtherType, EthernetAddress, IpProtocol};

/// The bytes `encap` needs free before the inner frame: room for an outer
/// IPv6 header, UDP and VXLAN (40 + 8 + 8 = 56), rounded up. Replies
/// (proxied neighbour advertisements, ICMP too-big) also use it.
pub const HEADROOM: usize = 64;

const _: () = assert!(HEADROOM >= ipv6::HEADER_LEN + udp::HEADER_LEN + vxlan::HEADER_LEN);
const _: () = assert!(HEADROOM >= pmtu::MAX_REPLY_GROWTH);

/// No VNI on this port.
const NO_VNI: u32 = u32::MAX;

/// What to do with a frame from a local port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encap {
    /// Send the datagram to each remote: see [`Forward`].
    Forward(Forward),
    /// Write `buf[reply.frame]` back to the port the frame came from; nothing
    /// goes to the underlay.
    Reply(Reply),
    /// Dropped and counted.
    Drop(DropReason),
}

/// A VXLAN datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// The UDP payload in the caller's buffer: the VXLAN header, just written
    /// before the inner frame, and the frame.
    pub datagram: Range<usize>,
    /// The UDP source port, from the inner flow's hash.
    pub src_port: u16,
    pub vni: Vni,
    /// Where to: [`Vtep::destinations`] lists the addresses. The same bytes
    /// go to each (head-end replication); the UDP destination port is
    /// [`VtepConfig::dst_port`].
    pub to: Destinations,
}

/// The remote VTEPs of a [`Forward`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Destinations {
    /// The remote the FDB has for the destination MAC.
    Unicast(IpAddr),
    /// Every remote of the VNI's flood list: broadcast, multicast or unknown
    /// unicast.
    Flood(FloodList),
}

impl Destinations {
    pub fn is_flood(&self) -> bool {
        matches!(self, Destinations::Flood(_))
    }
}

/// A VNI's flood list, named without borrowing the [`Vtep`]: read it with
/// [`Vtep::destinations`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FloodList(VniIndex);

/// A frame the VTEP wrote into the caller's buffer, for the port the
/// original frame came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reply {
    pub frame: Range<usize>,
    pub kind: ReplyKind,
}

/// What a [`Reply`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyKind {
    /// An ARP reply from the neighbour table (`proxy`).
    ArpReply,
    /// A neighbour advertisement from the neighbour table (`proxy`).
    NeighborAdvert,
    /// ICMP fragmentation needed for a too-big IPv4 frame with DF
    /// (`frag_needed`; the frame was dropped and counted `too_big`).
    FragNeeded,
    /// ICMPv6 packet too big for a too-big IPv6 frame (`frag_needed`; the
    /// frame was dropped and counted `too_big`).
    PacketTooBig,
}

/// What to do with a received datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decap {
    /// Write `buf[frame]`, the inner Ethernet frame, to `port`.
    Deliver { port: PortId, vni: Vni, frame: Range<usize> },
    /// Dropped and counted.
    Drop(DropReason),
}

/// One VNI's forwarding state.
#[derive(Debug, Clone)]
struct VniState {
    vni: Vni,
    port: PortId,
    /// The flood list, IPv4-mapped addresses made IPv4.
    remotes: Vec<IpAddr>,
    /// The flood list and the remotes of static entries, sorted: the known
    /// peers for `only_known_peers`.
    peers: Vec<IpAddr>,
    /// The VXLAN header `encap` writes, made once.
    header: [u8; vxlan::HEADER_LEN],
}

/// A VXLAN tunnel endpoint. See the module documentation.
pub struct Vtep {
    config: VtepConfig,
    local: IpAddr,
    /// The longest inner frame that fits the underlay MTU.
    max_frame: usize,
    vnis: Vec<VniState>,
    /// (VNI, index), sorted by VNI.
    by_vni: Vec<(u32, VniIndex)>,
    /// Port → VNI index, or [`NO_VNI`].
    by_port: Vec<u32>,
    fdb: Fdb,
    neigh: Neighbours,
    stats: Stats,
    /// The next outer IPv4 identification `write_outer` uses.
    ident: Cell<u16>,
}

impl fmt::Debug for Vtep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vtep")
            .field("local", &self.local)
            .field("dst_port", &self.config.dst_port)
            .field("vnis", &self.vnis.iter().map(|v| (v.vni.get(), v.port)).collect::<Vec<_>>())
            .field("learned", &self.fdb.learned())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Vtep {
    /// Validates `config` ([`VtepConfig::validate`]) and allocates every
    /// table.
    pub fn new(config: VtepConfig) -> Result<Vtep, ConfigError> {
        config.validate()?;
        let local = config.local.to_canonical();
        let mut vnis = Vec::with_capacity(config.vnis.len());
        let mut by_vni = Vec::with_capacity(config.vnis.len());
        let mut by_port = Vec::new();
        let mut static_fdb = Vec::new();
        let mut static_neighbours = Vec::new();
        for (index, vni) in config.vnis.iter().enumerate() {
            // Ports are distinct u16s, so there are at most 65536 VNIs.
            let index = index as VniIndex;
            let remotes: Vec<IpAddr> = vni.remotes.iter().map(|r| r.to_canonical()).collect();
            let mut peers = remotes.clone();
            peers.extend(vni.static_fdb.iter().map(|(_, r)| r.to_canonical()));
            peers.sort_unstable();
            peers.dedup();
            static_fdb.extend(vni.static_fdb.iter().map(|&(mac, remote)| (index, mac, remote.to_canonical())));
            static_neighbours.extend(vni.neighbours.iter().map(|&(ip, mac)| (index, ip, mac)));
            by_vni.push((vni.vni.get(), index));
            let port = usize::from(vni.port);
            if by_port.len() <= port {
                by_port.resize(port + 1, NO_VNI);
            }
            by_port[port] = u32::from(index);
            let header = vxlan::Repr { vni: vni.vni }.to_bytes();
            vnis.push(VniState { vni: vni.vni, port: vni.port, remotes, peers, header });
        }
        by_vni.sort_unstable();
        let max_fdb = if config.learning { config.max_fdb_entries } else { 0 };
        let max_neigh = if config.proxy { config.max_neighbours } else { 0 };
        Ok(Vtep {
            local,
            max_frame: config.max_inner_frame(),
            vnis,
            by_vni,
            by_port,
            fdb: Fdb::new(static_fdb, max_fdb, config.ageing),
            neigh: Neighbours::new(static_neighbours, max_neigh, config.ageing),
            stats: Stats::default(),
            ident: Cell::new(0),
            config,
        })
    }

    /// The configuration, as given.
    pub fn config(&self) -> &VtepConfig {
        &self.config
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The longest inner frame (Ethernet header included) that `encap` sends.
    pub fn max_inner_frame(&self) -> usize {
        self.max_frame
    }

    /// The remote addresses of a [`Forward`], without allocating.
    pub fn destinations<'a>(&'a self, to: &'a Destinations) -> &'a [IpAddr] {
        match to {
            Destinations::Unicast(remote) => core::slice::from_ref(remote),
            Destinations::Flood(FloodList(index)) => self.vnis.get(usize::from(*index)).map_or(&[], |v| &v.remotes),
        }
    }

    /// The VNI bound to `port`.
    pub fn vni_of(&self, port: PortId) -> Option<Vni> {
        self.port_index(port).map(|index| self.vnis[usize::from(index)].vni)
    }

    /// The port bound to `vni`.
    pub fn port_of(&self, vni: Vni) -> Option<PortId> {
        self.vni_index(vni).map(|index| self.vnis[usize::from(index)].port)
    }

    /// The remote the FDB has for `mac` in `vni` (static or learned).
    pub fn lookup(&self, vni: Vni, mac: EthernetAddress) -> Option<IpAddr> {
        self.fdb.lookup(self.vni_index(vni)?, mac)
    }

    /// Every FDB entry (the flood lists are [`crate::vxlan::VniConfig::remotes`]).
    pub fn fdb(&self) -> impl Iterator<Item = FdbEntry> + '_ {
        self.fdb.iter().map(|(index, mac, remote, kind)| FdbEntry {
            vni: self.vnis[usize::from(index)].vni,
            mac,
            remote,
            kind,
        })
    }

    /// Every neighbour entry, static and snooped.
    pub fn neighbours(&self) -> impl Iterator<Item = NeighbourEntry> + '_ {
        self.neigh.iter().map(|(index, ip, neighbour, kind)| NeighbourEntry {
            vni: self.vnis[usize::from(index)].vni,
            ip,
            mac: neighbour.mac,
            router: neighbour.router,
            kind,
        })
    }

    /// The UDP source port `encap` uses for the inner frame `frame`, or
    /// `None` if it has no Ethernet header. Every segment of one flow gets
    /// the same port.
    pub fn src_port(&self, frame: &[u8]) -> Option<u16> {
        let eth = ethernet::Frame::new_checked(frame).ok()?;
        let hash = flow::flow_hash(eth.ethertype().into(), eth.payload(), eth.dst_addr(), eth.src_addr());
        Some(flow::src_port(hash, self.config.src_port_range))
    }

    /// Ages out learned FDB entries and snooped neighbours not seen for the
    /// ageing time; returns how many went. Call it about once a second: the
    /// work is the entries that are due, not the table.
    pub fn expire(&mut self, now: Instant) -> usize {
        let aged = self.fdb.expire(now);
        let neigh_aged = self.neigh.expire(now);
        self.stats.aged += aged as u64;
        self.stats.neigh_aged += neigh_aged as u64;
        aged + neigh_aged
    }

    /// Encapsulates the inner Ethernet frame `buf[frame]` from local port
    /// `port`. `frame.start` must leave [`HEADROOM`] bytes.
    ///
    /// The VNI is the port's. The destination MAC picks the remote: a
    /// unicast MAC with an FDB entry goes to that remote; broadcast,
    /// multicast and unknown unicast go to every remote of the flood list
    /// (none: `no_remote`). With `proxy`, an ARP request or neighbour
    /// solicitation for a known address is answered instead
    /// ([`Encap::Reply`]). A frame too big for the underlay is dropped
    /// (`too_big`), and with `frag_needed` answered with ICMP. Otherwise the
    /// VXLAN header is written into the 8 bytes before the frame.
    ///
    /// `now` is not used yet: encapsulation learns nothing.
    // Inlined into the caller's loop: the call, and the copy of the result
    // through memory, cost as much as a fifth of the work. Always: the
    // compiler does not inline it into criterion's loop on its own. The
    // hot path is small; the general and cold paths stay out of line.
    #[inline(always)]
    pub fn encap(&mut self, port: PortId, buf: &mut [u8], frame: Range<usize>, now: Instant) -> Encap {
        let _ = now;
        if frame.start < HEADROOM || frame.start > frame.end || frame.end > buf.len() {
            return self.encap_drop(DropReason::BadBuffer);
        }
        let Some(index) = self.port_index(port) else { return self.encap_drop(DropReason::UnknownPort) };
        let Some(header) = buf[frame.clone()].first_chunk::<{ ethernet::HEADER_LEN }>() else {
            return self.encap_drop(DropReason::BadInner);
        };
        let eth = ethernet::Frame::new_unchecked(&header[..]);
        // Untagged frames the neighbour table does not answer are the rule:
        // their header is 14 bytes and their flow hash reads fixed offsets.
        // The rest (tags, and with `proxy` ARP and IPv6) go the general way.
        if eth.is_tagged() || (self.config.proxy && is_neighbour_type(eth.first_type_field())) {
            return self.encap_general(index, buf, frame);
        }
        let dst = eth.dst_addr();
        let hash = flow::untagged_flow_hash(&buf[frame.clone()]);
        self.forward(index, buf, frame, dst, hash)
    }

    /// [`Vtep::encap`] for a TCP superframe read from a port with TSO,
    /// `buf[frame]`, that is to go to the underlay whole and be cut there
    /// (UDP-tunnel GSO), as `layout` ([`crate::gso::layout`]) says it is
    /// cut. Taken only when nothing but the common case
    /// applies: an untagged frame for a unicast MAC the FDB has, that the
    /// neighbour table would not answer, whose segments fit the underlay and
    /// whose encapsulation fits an IP packet, to a remote `accept` takes.
    /// Then it is counted as its segments, its VXLAN header is written
    /// before it and the datagram returned (its flow hash, so its source
    /// port, is its segments'). Otherwise `None`, nothing changed: the
    /// caller cuts it and encapsulates each segment with [`Vtep::encap`],
    /// which floods, drops or answers as it must.
    pub fn encap_superframe(
        &mut self,
        port: PortId,
        buf: &mut [u8],
        frame: Range<usize>,
        layout: &crate::gso::Layout,
        accept: impl FnOnce(IpAddr) -> bool,
    ) -> Option<Forward> {
        let outer = outer_ip_len(self.local) + udp::HEADER_LEN + vxlan::HEADER_LEN;
        let fits = frame.len() + outer <= usize::from(u16::MAX) && layout.max_segment_len <= self.max_frame;
        if frame.start < HEADROOM || frame.start > frame.end || frame.end > buf.len() || !fits {
            return None;
        }
        let index = self.port_index(port)?;
        let header = buf[frame.clone()].first_chunk::<{ ethernet::HEADER_LEN }>()?;
        let eth = ethernet::Frame::new_unchecked(&header[..]);
        let neighbour = self.config.proxy && is_neighbour_type(eth.first_type_field());
        let dst = eth.dst_addr();
        if eth.is_tagged() || neighbour || !dst.is_unicast() {
            return None;
        }
        let remote = self.fdb.lookup(index, dst).filter(|&remote| accept(remote))?;
        let state = self.vnis.get(usize::from(index))?;
        let (vni, vxlan_header) = (state.vni, state.header);
        let src_port = flow::src_port(flow::untagged_flow_hash(&buf[frame.clone()]), self.config.src_port_range);
        let start = frame.start - vxlan::HEADER_LEN;
        buf.get_mut(start..frame.start)?.copy_from_slice(&vxlan_header);
        let segments = layout.segments as u64;
        self.stats.tx_frames += segments;
        self.stats.tx_packets += segments;
        self.stats.tx_bytes += frame.len() as u64 + segments.saturating_sub(1) * layout.header_len as u64;
        Some(Forward { datagram: start..frame.end, src_port, vni, to: Destinations::Unicast(remote) })
    }

    /// Counts a frame `encap` drops.
    #[cold]
    #[inline(never)]
    fn encap_drop(&mut self, reason: DropReason) -> Encap {
        self.stats.count_drop(reason);
        Encap::Drop(reason)
    }

    /// [`Vtep::encap`] of a tagged frame, or of an ARP or IPv6 frame with
    /// `proxy`: VLAN policy and the neighbour table, then [`Vtep::forward`].
    #[inline(never)]
    fn encap_general(&mut self, index: VniIndex, buf: &mut [u8], frame: Range<usize>) -> Encap {
        let bytes = &buf[frame.clone()];
        let Ok(eth) = ethernet::Frame::new_checked(bytes) else { return self.encap_drop(DropReason::BadInner) };
        let (header_len, ethertype) = if !eth.is_tagged() {
            (ethernet::HEADER_LEN, eth.first_type_field())
        } else if self.config.allow_inner_vlan {
            (eth.header_len(), eth.ethertype().into())
        } else {
            return self.encap_drop(DropReason::InnerVlan);
        };
        let dst = eth.dst_addr();
        let hash = flow::flow_hash(ethertype, &bytes[header_len..], dst, eth.src_addr());
        if self.config.proxy && is_neighbour_type(ethertype) {
            let header = match parse_header(buf, &frame) {
                Ok(header) => header,
                Err(reason) => return self.encap_drop(reason),
            };
            if let Some(answer) = self.neigh.answer(index, buf, frame.clone(), &header) {
                self.stats.proxied += 1;
                let kind = if answer.arp { ReplyKind::ArpReply } else { ReplyKind::NeighborAdvert };
                return Encap::Reply(Reply { frame: answer.frame, kind });
            }
        }
        self.forward(index, buf, frame, dst, hash)
    }

    /// Sends the checked frame `buf[frame]` (destination MAC `dst`, flow
    /// hash `hash`) on VNI `index`: picks the remotes, checks the MTU, maps
    /// the hash to the source port, and writes the VNI's VXLAN header before
    /// the frame. The callers hash before calling: then only the hash stays
    /// live across the FDB lookup.
    #[inline(always)]
    fn forward(
        &mut self,
        index: VniIndex,
        buf: &mut [u8],
        frame: Range<usize>,
        dst: EthernetAddress,
        hash: u32,
    ) -> Encap {
        let Some(state) = self.vnis.get(usize::from(index)) else { return self.encap_drop(DropReason::UnknownPort) };
        let to = match dst.is_unicast().then(|| self.fdb.lookup(index, dst)).flatten() {
            Some(remote) => Destinations::Unicast(remote),
            None => Destinations::Flood(FloodList(index)),
        };
        let copies = match to {
            Destinations::Unicast(_) => 1,
            Destinations::Flood(_) => state.remotes.len() as u64,
        };
        if copies == 0 {
            return self.encap_drop(DropReason::NoRemote);
        }
        if frame.len() > self.max_frame {
            return self.too_big(buf, frame);
        }
        let (vni, header) = (state.vni, state.header);
        let src_port = flow::src_port(hash, self.config.src_port_range);
        let start = frame.start - vxlan::HEADER_LEN;
        let Some(room) = buf.get_mut(start..frame.start) else { return self.encap_drop(DropReason::BadBuffer) };
        room.copy_from_slice(&header);
        self.stats.tx_frames += 1;
        self.stats.tx_packets += copies;
        self.stats.tx_bytes += copies * frame.len() as u64;
        if to.is_flood() {
            self.stats.flooded += 1;
        }
        Encap::Forward(Forward { datagram: start..frame.end, src_port, vni, to })
    }

    /// A frame too big for the underlay: dropped, and with `frag_needed`
    /// answered if a reply is due.
    #[cold]
    #[inline(never)]
    fn too_big(&mut self, buf: &mut [u8], frame: Range<usize>) -> Encap {
        if !self.config.frag_needed {
            return self.encap_drop(DropReason::TooBig);
        }
        let header = match parse_header(buf, &frame) {
            Ok(header) => header,
            Err(reason) => return self.encap_drop(reason),
        };
        let mtu = u16::try_from(self.max_frame.saturating_sub(header.header_len())).unwrap_or(u16::MAX);
        let Some((reply, kind)) = pmtu::reply(buf, frame, &header, mtu) else {
            return self.encap_drop(DropReason::TooBig);
        };
        self.stats.count_drop(DropReason::TooBig);
        self.stats.too_big_replies += 1;
        let kind = match kind {
            pmtu::Kind::FragNeeded => ReplyKind::FragNeeded,
            pmtu::Kind::PacketTooBig => ReplyKind::PacketTooBig,
        };
        Encap::Reply(Reply { frame: reply, kind })
    }

    /// Decapsulates the UDP payload `buf[payload]` received on the VXLAN
    /// port from `src` (the socket path: the kernel has checked the outer
    /// headers). An IPv4-mapped IPv6 source counts as IPv4.
    ///
    /// Checks the VXLAN header (I flag set; reserved bits ignored, RFC 7348
    /// §5), the VNI, the sender (with `only_known_peers`), the inner
    /// Ethernet header and its VLAN tags; learns the inner source MAC (with
    /// `learning`) and, with `proxy`, snoops ARP and neighbour
    /// advertisements; then delivers the inner frame.
    // Inlined into the caller's loop, as `encap`.
    #[inline(always)]
    pub fn decap(&mut self, src: SocketAddr, buf: &[u8], payload: Range<usize>, now: Instant) -> Decap {
        let src = match src {
            SocketAddr::V4(v4) => IpAddr::V4(*v4.ip()),
            SocketAddr::V6(v6) => v6.ip().to_canonical(),
        };
        self.decap_payload(src, buf, payload, now)
    }

    /// [`Vtep::decap`] from a whole outer IPv4 or IPv6 packet `buf[packet]`
    /// (a raw underlay): first checks the outer headers — version and
    /// family, header checksum and options (IPv4), no fragment (IPv4 or an
    /// IPv6 fragment header), protocol UDP, destination the local address,
    /// UDP length and destination port, and the UDP checksum (zero is
    /// accepted over IPv4, and over IPv6 only with `udp6_zero_checksum_rx`).
    /// Any failure is `bad_outer`.
    pub fn decap_packet(&mut self, buf: &[u8], packet: Range<usize>, now: Instant) -> Decap {
        let Some(bytes) = buf.get(packet.clone()) else { return self.decap_drop(DropReason::BadBuffer) };
        match self.check_outer(bytes) {
            Ok((src, payload)) => {
                self.decap_payload(src, buf, packet.start + payload.start..packet.start + payload.end, now)
            }
            Err(reason) => self.decap_drop(reason),
        }
    }

    /// Counts a datagram `decap` or `decap_packet` drops.
    #[cold]
    #[inline(never)]
    fn decap_drop(&mut self, reason: DropReason) -> Decap {
        self.stats.count_drop(reason);
        Decap::Drop(reason)
    }

    /// Checks an outer IP packet; returns its source and where its UDP
    /// payload is.
    fn check_outer(&self, bytes: &[u8]) -> Result<(IpAddr, Range<usize>), DropReason> {
        let bad = |_| DropReason::BadOuter;
        let (src, l4) = match (bytes.first().map(|b| b >> 4), self.local) {
            (Some(4), IpAddr::V4(local)) => {
                let ip = ipv4::Packet::new_checked(bytes).map_err(bad)?;
                let repr = ipv4::Repr::parse(&ip).map_err(bad)?;
                if ip.is_fragment() || repr.next_header != IpProtocol::Udp || repr.dst_addr != local {
                    return Err(DropReason::BadOuter);
                }
                (IpAddr::V4(repr.src_addr), ip.header_len()..usize::from(ip.total_len()))
            }
            (Some(6), IpAddr::V6(local)) => {
                let ip = ipv6::Packet::new_checked(bytes).map_err(bad)?;
                let upper = ip.upper_layer().map_err(bad)?;
                if upper.fragment.is_some() || upper.protocol != IpProtocol::Udp || ip.dst_addr() != local {
                    return Err(DropReason::BadOuter);
                }
                let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
                (IpAddr::V6(ip.src_addr()), ipv6::HEADER_LEN + upper.offset..end)
            }
            _ => return Err(DropReason::BadOuter),
        };
        let datagram = udp::Packet::new_checked(bytes.get(l4.clone()).ok_or(DropReason::BadOuter)?).map_err(bad)?;
        if datagram.dst_port() != self.config.dst_port {
            return Err(DropReason::BadOuter);
        }
        let checksum_ok = if datagram.checksum() == 0 {
            src.is_ipv4() || self.config.udp6_zero_checksum_rx
        } else {
            datagram.verify_checksum(src, self.local)
        };
        if !checksum_ok {
            return Err(DropReason::BadOuter);
        }
        Ok((src, l4.start + udp::HEADER_LEN..l4.start + usize::from(datagram.len())))
    }

    #[inline(always)]
    fn decap_payload(&mut self, src: IpAddr, buf: &[u8], payload: Range<usize>, now: Instant) -> Decap {
        let Some(bytes) = buf.get(payload.clone()) else { return self.decap_drop(DropReason::BadBuffer) };
        if src.is_ipv6() != self.local.is_ipv6() {
            return self.decap_drop(DropReason::BadOuter);
        }
        let Ok(header) = vxlan::Packet::new_checked(bytes) else { return self.decap_drop(DropReason::BadOuter) };
        let Ok(vxlan::Repr { vni }) = vxlan::Repr::parse(&header) else {
            return self.decap_drop(DropReason::BadFlags);
        };
        let Some(index) = self.vni_index(vni) else { return self.decap_drop(DropReason::UnknownVni) };
        let Some(state) = self.vnis.get(usize::from(index)) else { return self.decap_drop(DropReason::UnknownVni) };
        if self.config.only_known_peers && state.peers.binary_search(&src).is_err() {
            return self.decap_drop(DropReason::UnknownPeer);
        }
        let port = state.port;
        let inner = header.payload();
        let Some(eth_header) = inner.first_chunk::<{ ethernet::HEADER_LEN }>() else {
            return self.decap_drop(DropReason::BadInner);
        };
        let eth = ethernet::Frame::new_unchecked(&eth_header[..]);
        if eth.is_tagged() {
            if ethernet::Frame::new_checked(inner).is_err() {
                return self.decap_drop(DropReason::BadInner);
            }
            if !self.config.allow_inner_vlan {
                return self.decap_drop(DropReason::InnerVlan);
            }
        }
        let src_mac = eth.src_addr();
        // A known sender confirming its entry is the rule: one probe, and a
        // learned entry's time written. Anything else goes out of line.
        if self.config.learning
            && src_mac.is_unicast()
            && src_mac != EthernetAddress::default()
            && !self.fdb.confirm(index, src_mac, &src, now)
        {
            if let Err(reason) = self.learn(index, src_mac, src, now) {
                return self.decap_drop(reason);
            }
        }
        if self.config.proxy {
            match self.neigh.snoop(index, inner, now) {
                Some(Learn::Learned | Learn::Moved) => self.stats.neigh_learned += 1,
                Some(Learn::Full) => self.stats.neigh_full += 1,
                _ => {}
            }
        }
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += inner.len() as u64;
        Decap::Deliver { port, vni, frame: payload.start + vxlan::HEADER_LEN..payload.end }
    }

    /// Learns that `mac` in VNI `index` is behind `src`, for a MAC whose
    /// entry does not already say so: a new MAC, a moved one, or a static
    /// entry for another remote (`static_conflict`).
    #[inline(never)]
    fn learn(&mut self, index: VniIndex, mac: EthernetAddress, src: IpAddr, now: Instant) -> Result<(), DropReason> {
        // A new remote must be one we could send to: not multicast, not
        // ourselves. Known remotes are not checked again.
        let local = &self.local;
        match self.fdb.learn(index, mac, src, now, |remote| is_unicast(*remote) && remote != local) {
            Learn::Refreshed | Learn::Refused => {}
            Learn::Static(remote) => {
                if remote != src {
                    return Err(DropReason::StaticConflict);
                }
            }
            Learn::Learned => self.stats.learned += 1,
            Learn::Moved => self.stats.moved += 1,
            Learn::Full => self.stats.fdb_full += 1,
        }
        Ok(())
    }

    /// Writes outer IPv4 or IPv6 and UDP headers for `remote` in front of
    /// the VXLAN datagram `buf[datagram]` (from [`Forward::datagram`]), and
    /// returns the whole packet's range. `None` if the headroom is short,
    /// `remote` is not of the local family, or the packet would exceed 65535
    /// bytes.
    ///
    /// IPv4: TTL from the configuration, DF per `outer_df` (clear by
    /// default, like the kernel's `df unset`), DSCP and ECN zero, an
    /// identification that counts up from 0, and a UDP checksum only with
    /// `udp_checksum_v4`. IPv6: hop limit from the configuration, a flow
    /// label derived from the source port (so stable per flow, RFC 6438),
    /// and a UDP checksum unless `udp6_zero_checksum_tx`.
    pub fn write_outer(
        &self,
        buf: &mut [u8],
        datagram: Range<usize>,
        remote: IpAddr,
        src_port: u16,
    ) -> Option<Range<usize>> {
        self.write_outer_as(buf, datagram, remote, src_port, None).map(|(packet, _)| packet)
    }

    /// [`Vtep::write_outer`] for a datagram the kernel will cut into segments
    /// (UDP-tunnel GSO, `virtio_net::TunnelRepr`): the lengths are the whole
    /// superframe's, and where a UDP checksum is due its field holds only the
    /// pseudo-header sum, for each segment's to be completed from; the IPv4
    /// identification moves on by the `segments` the kernel numbers from it.
    /// Returns the packet's range and whether the checksum is due.
    pub fn write_outer_gso(
        &self,
        buf: &mut [u8],
        datagram: Range<usize>,
        remote: IpAddr,
        src_port: u16,
        segments: u16,
    ) -> Option<(Range<usize>, bool)> {
        self.write_outer_as(buf, datagram, remote, src_port, Some(segments))
    }

    fn write_outer_as(
        &self,
        buf: &mut [u8],
        datagram: Range<usize>,
        remote: IpAddr,
        src_port: u16,
        gso_segments: Option<u16>,
    ) -> Option<(Range<usize>, bool)> {
        let remote = remote.to_canonical();
        if datagram.start > datagram.end || datagram.end > buf.len() {
            return None;
        }
        let udp_start = datagram.start.checked_sub(udp::HEADER_LEN)?;
        let start = udp_start.checked_sub(outer_ip_len(self.local))?;
        let udp_repr = udp::Repr { src_port, dst_port: self.config.dst_port, payload_len: datagram.len() };
        let udp_len = udp_repr.buffer_len();
        let due = match (self.local, remote) {
            (IpAddr::V4(_), IpAddr::V4(_)) => self.config.udp_checksum_v4,
            (IpAddr::V6(_), IpAddr::V6(_)) => !self.config.udp6_zero_checksum_tx,
            _ => return None,
        };
        if udp_len + outer_ip_len(self.local) > usize::from(u16::MAX) {
            return None;
        }
        let mut segment = udp::Packet::new_unchecked(&mut buf[udp_start..datagram.end]);
        udp_repr.emit(&mut segment).ok()?;
        if due && gso_segments.is_some() {
            segment.set_checksum(checksum::pseudo_header(self.local, remote, IpProtocol::Udp, udp_len)?);
        } else if due {
            segment.fill_checksum(self.local, remote);
        }
        let outer = &mut buf[start..datagram.end];
        match (self.local, remote) {
            (IpAddr::V4(local), IpAddr::V4(remote)) => {
                let ident = self.ident.get();
                self.ident.set(ident.wrapping_add(gso_segments.unwrap_or(1).max(1)));
                ipv4::Repr {
                    src_addr: local,
                    dst_addr: remote,
                    next_header: IpProtocol::Udp,
                    payload_len: udp_len,
                    hop_limit: self.config.ttl,
                    dscp: 0,
                    ecn: 0,
                    ident,
                    dont_frag: self.config.outer_df,
                    more_frags: false,
                    frag_offset: 0,
                    options: ipv4::Ipv4Options::EMPTY,
                }
                .emit(&mut ipv4::Packet::new_unchecked(outer))
                .ok()?;
            }
            (IpAddr::V6(local), IpAddr::V6(remote)) => {
                ipv6::Repr {
                    src_addr: local,
                    dst_addr: remote,
                    next_header: IpProtocol::Udp,
                    payload_len: udp_len,
                    hop_limit: self.config.ttl,
                    traffic_class: 0,
                    flow_label: u32::from(src_port).wrapping_mul(0x9e37_79b1) >> 12,
                }
                .emit(&mut ipv6::Packet::new_unchecked(outer))
                .ok()?;
            }
            _ => return None,
        }
        Some((start..datagram.end, due))
    }

    #[inline]
    fn port_index(&self, port: PortId) -> Option<VniIndex> {
        match self.by_port.get(usize::from(port)) {
            Some(&index) if index != NO_VNI => Some(index as VniIndex),
            _ => None,
        }
    }

    #[inline]
    fn vni_index(&self, vni: Vni) -> Option<VniIndex> {
        let at = self.by_vni.binary_search_by_key(&vni.get(), |&(v, _)| v).ok()?;
        Some(self.by_vni[at].1)
    }
}

/// Whether a frame's type field is one the neighbour table may answer (ARP,
/// or IPv6 for neighbour solicitations).
#[inline(always)]
fn is_neighbour_type(ethertype: u16) -> bool {
    ethertype == u16::from(EtherType::Arp) || ethertype == u16::from(EtherType::Ipv6)
}

/// The Ethernet header of `buf[frame]`, already checked by the caller.
fn parse_header(buf: &[u8], frame: &Range<usize>) -> Result<ethernet::Repr, DropReason> {
    let bytes = buf.get(frame.clone()).ok_or(DropReason::BadBuffer)?;
    ethernet::Repr::parse(&ethernet::Frame::new_unchecked(bytes)).map_err(|_| DropReason::BadInner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vxlan::{EntryKind, VniConfig};
    use crate::wire::ethernet::VlanTags;
    use crate::wire::{arp, icmpv4, icmpv6, EtherType};
    use core::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const PEER_A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    const PEER_B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3));
    const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99));
    const LOCAL6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    const PEER6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));

    /// The container on our port 0.
    const MAC_HERE: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x00, 0x00, 0x01]);
    /// Containers behind the remotes.
    const MAC_THERE: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x00, 0x00, 0x02]);
    const MAC_STATIC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x00, 0x00, 0x5a]);
    const IP_HERE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    const IP_THERE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
    const IP6_HERE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x42, 0, 0, 0, 0, 1);
    const IP6_THERE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x42, 0, 0, 0, 0, 2);

    fn vni(n: u32) -> Vni {
        Vni::new(n).unwrap()
    }

    /// VNI 42 on port 0 flooding to A and B with one static entry; VNI 7 on
    /// port 1 with no remotes.
    fn config() -> VtepConfig {
        VtepConfig::new(LOCAL)
            .vni(VniConfig::new(vni(42), 0).remote(PEER_A).remote(PEER_B).static_entry(MAC_STATIC, PEER_A))
            .vni(VniConfig::new(vni(7), 1))
    }

    fn new_vtep(config: VtepConfig) -> Vtep {
        Vtep::new(config).unwrap()
    }

    fn eth(dst: EthernetAddress, src: EthernetAddress, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
        let repr = ethernet::Repr { src_addr: src, dst_addr: dst, vlan_tags: VlanTags::None, ethertype };
        let mut out = vec![0u8; repr.buffer_len() + payload.len()];
        repr.emit(&mut ethernet::Frame::new_unchecked(&mut out[..])).unwrap();
        out[repr.buffer_len()..].copy_from_slice(payload);
        out
    }

    fn ipv4_packet(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, df: bool, payload: &[u8]) -> Vec<u8> {
        let repr = ipv4::Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: protocol,
            payload_len: payload.len(),
            hop_limit: 64,
            dscp: 0,
            ecn: 0,
            ident: 0x1234,
            dont_frag: df,
            more_frags: false,
            frag_offset: 0,
            options: ipv4::Ipv4Options::EMPTY,
        };
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut ipv4::Packet::new_unchecked(&mut out[..])).unwrap();
        out[repr.header_len()..].copy_from_slice(payload);
        out
    }

    fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, next: IpProtocol, hop_limit: u8, payload: &[u8]) -> Vec<u8> {
        let repr = ipv6::Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: next,
            payload_len: payload.len(),
            hop_limit,
            traffic_class: 0,
            flow_label: 0,
        };
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut ipv6::Packet::new_unchecked(&mut out[..])).unwrap();
        out[ipv6::HEADER_LEN..].copy_from_slice(payload);
        out
    }

    /// A UDP datagram header with ports and `len` payload bytes of 0xab.
    fn udp_segment(sport: u16, dport: u16, len: usize) -> Vec<u8> {
        let mut out = vec![0xab; udp::HEADER_LEN + len];
        udp::Repr { src_port: sport, dst_port: dport, payload_len: len }
            .emit(&mut udp::Packet::new_unchecked(&mut out[..]))
            .unwrap();
        out
    }

    /// An inner IPv4/UDP frame from here to there of `len` bytes in total.
    fn udp_frame(sport: u16, len: usize, df: bool) -> Vec<u8> {
        let payload = udp_segment(sport, 7, len - 14 - 20 - 8);
        let ip = ipv4_packet(IP_HERE, IP_THERE, IpProtocol::Udp, df, &payload);
        eth(MAC_THERE, MAC_HERE, EtherType::Ipv4, &ip)
    }

    fn udp6_frame(sport: u16, len: usize) -> Vec<u8> {
        let payload = udp_segment(sport, 7, len - 14 - 40 - 8);
        let ip = ipv6_packet(IP6_HERE, IP6_THERE, IpProtocol::Udp, 64, &payload);
        eth(MAC_THERE, MAC_HERE, EtherType::Ipv6, &ip)
    }

    fn arp_frame(op: arp::Operation, sha: EthernetAddress, spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
        let repr = arp::Repr {
            operation: op,
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_hardware_addr: EthernetAddress::default(),
            target_protocol_addr: tpa,
        };
        let mut payload = [0u8; arp::ETHERNET_IPV4_LEN];
        repr.emit(&mut arp::Packet::new_unchecked(&mut payload[..])).unwrap();
        eth(EthernetAddress::BROADCAST, sha, EtherType::Arp, &payload)
    }

    fn icmpv6_message(repr: icmpv6::Repr, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
        let mut out = vec![0u8; repr.buffer_len()];
        let mut packet = icmpv6::Packet::new_unchecked(&mut out[..]);
        repr.emit(&mut packet).unwrap();
        packet.fill_checksum(src, dst);
        out
    }

    /// A neighbour solicitation for `target` from `src` (with a source
    /// link-layer option unless `src` is unspecified).
    fn ns_frame(src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
        let t = target.octets();
        let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | u16::from(t[13]), u16::from_be_bytes([t[14], t[15]]));
        let source_lladdr = (!src.is_unspecified()).then_some(MAC_HERE);
        let message = icmpv6_message(icmpv6::Repr::NeighborSolicit { target_addr: target, source_lladdr }, src, dst);
        let ip = ipv6_packet(src, dst, IpProtocol::Icmpv6, 255, &message);
        eth(EthernetAddress([0x33, 0x33, 0xff, t[13], t[14], t[15]]), MAC_HERE, EtherType::Ipv6, &ip)
    }

    /// `frame` placed after HEADROOM in a buffer with some room after it.
    fn in_buf(frame: &[u8]) -> (Vec<u8>, Range<usize>) {
        let mut buf = vec![0u8; HEADROOM + frame.len() + 64];
        buf[HEADROOM..HEADROOM + frame.len()].copy_from_slice(frame);
        (buf, HEADROOM..HEADROOM + frame.len())
    }

    /// A VXLAN UDP payload: the header for `vni`, then `inner`.
    fn datagram(vni: Vni, inner: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; vxlan::HEADER_LEN + inner.len()];
        vxlan::Repr { vni }.emit(&mut vxlan::Packet::new_unchecked(&mut out[..])).unwrap();
        out[vxlan::HEADER_LEN..].copy_from_slice(inner);
        out
    }

    fn from(ip: IpAddr) -> SocketAddr {
        SocketAddr::new(ip, 54321)
    }

    /// Decapsulates `inner` on VNI 42 from `remote`.
    fn receive(vtep: &mut Vtep, remote: IpAddr, inner: &[u8], now: Instant) -> Decap {
        let payload = datagram(vni(42), inner);
        vtep.decap(from(remote), &payload, 0..payload.len(), now)
    }

    fn encap(vtep: &mut Vtep, port: PortId, frame: &[u8], now: Instant) -> (Encap, Vec<u8>) {
        let (mut buf, range) = in_buf(frame);
        let result = vtep.encap(port, &mut buf, range, now);
        (result, buf)
    }

    fn forwarded(result: &Encap) -> &Forward {
        match result {
            Encap::Forward(forward) => forward,
            other => panic!("not forwarded: {other:?}"),
        }
    }

    #[test]
    fn encap_unicast_to_a_known_mac() {
        let mut vtep = new_vtep(config());
        let frame = eth(MAC_STATIC, MAC_HERE, EtherType::Ipv4, &[0x45; 46]);
        let (result, buf) = encap(&mut vtep, 0, &frame, Instant::now());
        let forward = forwarded(&result);
        assert_eq!(forward.to, Destinations::Unicast(PEER_A));
        assert_eq!(vtep.destinations(&forward.to), &[PEER_A]);
        assert_eq!(forward.vni, vni(42));
        assert_eq!(forward.datagram, HEADROOM - 8..HEADROOM + frame.len());
        assert_eq!(&buf[forward.datagram.clone()][..8], &[0x08, 0, 0, 0, 0, 0, 42, 0]);
        assert_eq!(&buf[HEADROOM..HEADROOM + frame.len()], &frame[..], "the frame is not moved");
        let stats = vtep.stats();
        assert_eq!((stats.tx_frames, stats.tx_packets, stats.tx_bytes, stats.flooded), (1, 1, 60, 0));
    }

    #[test]
    fn encap_floods_broadcast_multicast_and_unknown_unicast() {
        let mut vtep = new_vtep(config());
        let unknown = EthernetAddress([0x52, 0x54, 0x00, 0x99, 0x99, 0x99]);
        let ipv6_multicast = EthernetAddress([0x33, 0x33, 0, 0, 0, 1]);
        for dst in [EthernetAddress::BROADCAST, ipv6_multicast, unknown] {
            let frame = eth(dst, MAC_HERE, EtherType::Ipv4, &[0; 46]);
            let (result, _) = encap(&mut vtep, 0, &frame, Instant::now());
            let forward = forwarded(&result);
            assert!(forward.to.is_flood(), "{dst}");
            assert_eq!(vtep.destinations(&forward.to), &[PEER_A, PEER_B]);
        }
        let stats = vtep.stats();
        assert_eq!((stats.tx_frames, stats.tx_packets, stats.flooded), (3, 6, 3));
        assert_eq!(stats.tx_bytes, 6 * 60);
    }

    #[test]
    fn encap_drops() {
        let frame = eth(EthernetAddress::BROADCAST, MAC_HERE, EtherType::Ipv4, &[0; 46]);
        let mut tagged = frame.clone();
        tagged.splice(12..12, [0x81, 0x00, 0x00, 0x64]);
        let cases: Vec<(&str, PortId, Vec<u8>, DropReason)> = vec![
            ("unknown port", 9, frame.clone(), DropReason::UnknownPort),
            ("no ethernet header", 0, frame[..13].to_vec(), DropReason::BadInner),
            ("inner 802.1Q tag", 0, tagged.clone(), DropReason::InnerVlan),
            ("empty flood list", 1, frame.clone(), DropReason::NoRemote),
            ("too big", 0, udp_frame(1, 1465, true), DropReason::TooBig),
        ];
        for (what, port, frame, reason) in cases {
            let mut vtep = new_vtep(config());
            let (result, _) = encap(&mut vtep, port, &frame, Instant::now());
            assert_eq!(result, Encap::Drop(reason), "{what}");
            assert_eq!(vtep.stats().drops(reason), 1, "{what}");
            assert_eq!(vtep.stats().total_drops(), 1, "{what}");
        }
        // The largest frame that fits goes.
        let mut vtep = new_vtep(config());
        let (result, _) = encap(&mut vtep, 0, &udp_frame(1, 1464, true), Instant::now());
        assert_eq!(forwarded(&result).datagram.len(), 1472);
        // Tags pass when allowed.
        let mut vtep = new_vtep(VtepConfig { allow_inner_vlan: true, ..config() });
        let (result, _) = encap(&mut vtep, 0, &tagged, Instant::now());
        forwarded(&result);
        // The caller's buffer: no headroom, a range past the end, reversed.
        let mut vtep = new_vtep(config());
        let mut buf = vec![0u8; 200];
        #[allow(clippy::reversed_empty_ranges)]
        let ranges = [HEADROOM - 1..HEADROOM + 60, HEADROOM..201, HEADROOM + 10..HEADROOM];
        for range in ranges {
            assert_eq!(vtep.encap(0, &mut buf, range, Instant::now()), Encap::Drop(DropReason::BadBuffer));
        }
        assert_eq!(vtep.stats().bad_buffer, 3);
    }

    #[test]
    fn learning_from_decap_then_unicast() {
        let mut vtep = new_vtep(config());
        let t0 = Instant::now();
        let reply = eth(MAC_HERE, MAC_THERE, EtherType::Ipv4, &[0; 46]);
        match receive(&mut vtep, PEER_B, &reply, t0) {
            Decap::Deliver { port, vni: v, frame } => {
                assert_eq!((port, v), (0, vni(42)));
                assert_eq!(frame, 8..8 + reply.len());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(vtep.lookup(vni(42), MAC_THERE), Some(PEER_B));
        assert_eq!(vtep.lookup(vni(7), MAC_THERE), None, "learned per VNI");
        let (result, _) = encap(&mut vtep, 0, &eth(MAC_THERE, MAC_HERE, EtherType::Ipv4, &[0; 46]), t0);
        assert_eq!(forwarded(&result).to, Destinations::Unicast(PEER_B));
        let stats = vtep.stats();
        assert_eq!((stats.learned, stats.rx_packets, stats.rx_bytes), (1, 1, 60));
        // Group and zero source MACs are not learned.
        let mut group = reply.clone();
        group[6] = 0x01;
        receive(&mut vtep, PEER_B, &group, t0);
        let mut zero = reply.clone();
        zero[6..12].fill(0);
        receive(&mut vtep, PEER_B, &zero, t0);
        assert_eq!(vtep.stats().learned, 1);
        assert_eq!(vtep.stats().rx_packets, 3);
        // With learning off nothing is learned.
        let mut quiet = new_vtep(VtepConfig { learning: false, ..config() });
        receive(&mut quiet, PEER_B, &reply, t0);
        assert_eq!(quiet.lookup(vni(42), MAC_THERE), None);
        assert_eq!(quiet.stats().learned, 0);
    }

    #[test]
    fn a_moved_mac_is_relearned_but_a_static_one_is_not() {
        let mut vtep = new_vtep(config());
        let t0 = Instant::now();
        let frame = eth(MAC_HERE, MAC_THERE, EtherType::Ipv4, &[0; 46]);
        receive(&mut vtep, PEER_A, &frame, t0);
        receive(&mut vtep, PEER_A, &frame, t0);
        assert_eq!(vtep.lookup(vni(42), MAC_THERE), Some(PEER_A));
        receive(&mut vtep, PEER_B, &frame, t0);
        assert_eq!(vtep.lookup(vni(42), MAC_THERE), Some(PEER_B));
        assert_eq!((vtep.stats().learned, vtep.stats().moved), (1, 1));

        // A static MAC turning up behind another remote: dropped, as the
        // kernel does, and the entry stays.
        let spoofed = eth(MAC_HERE, MAC_STATIC, EtherType::Ipv4, &[0; 46]);
        assert_eq!(receive(&mut vtep, PEER_B, &spoofed, t0), Decap::Drop(DropReason::StaticConflict));
        assert_eq!(vtep.lookup(vni(42), MAC_STATIC), Some(PEER_A));
        assert!(matches!(receive(&mut vtep, PEER_A, &spoofed, t0), Decap::Deliver { .. }));
        assert_eq!(vtep.stats().static_conflict, 1);
        // Without learning the static entry is not consulted on receive.
        let mut quiet = new_vtep(VtepConfig { learning: false, ..config() });
        assert!(matches!(receive(&mut quiet, PEER_B, &spoofed, t0), Decap::Deliver { .. }));
        let kinds: Vec<_> = vtep.fdb().map(|e| (e.mac, e.remote, e.kind)).collect();
        assert!(kinds.contains(&(MAC_STATIC, PEER_A, EntryKind::Static)));
        assert!(kinds.contains(&(MAC_THERE, PEER_B, EntryKind::Learned)));
    }

    #[test]
    fn ageing_on_the_injected_clock() {
        let mut vtep = new_vtep(config());
        let t0 = Instant::now();
        let secs = |s: u64| t0 + Duration::from_secs(s);
        let frame = eth(MAC_HERE, MAC_THERE, EtherType::Ipv4, &[0; 46]);
        let other = eth(MAC_HERE, EthernetAddress([0x52, 0x54, 0, 0, 0, 3]), EtherType::Ipv4, &[0; 46]);
        receive(&mut vtep, PEER_A, &frame, t0);
        receive(&mut vtep, PEER_A, &other, secs(10));
        for s in 1..=299 {
            assert_eq!(vtep.expire(secs(s)), 0, "at {s} s");
        }
        assert_eq!(vtep.lookup(vni(42), MAC_THERE), Some(PEER_A));
        // Traffic at 200 s keeps `other` for another 300 s.
        receive(&mut vtep, PEER_A, &other, secs(200));
        assert_eq!(vtep.expire(secs(301)), 1);
        assert_eq!(vtep.lookup(vni(42), MAC_THERE), None);
        assert_eq!(vtep.expire(secs(499)), 0);
        assert!(vtep.lookup(vni(42), other[6..12].try_into().map(EthernetAddress).unwrap()).is_some());
        assert_eq!(vtep.expire(secs(502)), 1);
        assert_eq!(vtep.stats().aged, 2);
        // Static entries never age; a forgotten MAC floods again.
        assert_eq!(vtep.expire(secs(100_000)), 0);
        assert_eq!(vtep.lookup(vni(42), MAC_STATIC), Some(PEER_A));
        let (result, _) = encap(&mut vtep, 0, &eth(MAC_THERE, MAC_HERE, EtherType::Ipv4, &[0; 46]), secs(100_000));
        assert!(forwarded(&result).to.is_flood());
    }

    #[test]
    fn a_full_fdb_learns_nothing_new_but_still_delivers() {
        let mut vtep = new_vtep(VtepConfig { max_fdb_entries: 2, ..config() });
        let t0 = Instant::now();
        for last in 1..=3u8 {
            let frame = eth(MAC_HERE, EthernetAddress([0x52, 0x54, 0, 0, 1, last]), EtherType::Ipv4, &[0; 46]);
            assert!(matches!(receive(&mut vtep, PEER_A, &frame, t0), Decap::Deliver { .. }));
        }
        let stats = vtep.stats();
        assert_eq!((stats.learned, stats.fdb_full, stats.rx_packets, stats.total_drops()), (2, 1, 3, 0));
        assert_eq!(vtep.lookup(vni(42), EthernetAddress([0x52, 0x54, 0, 0, 1, 3])), None);
        // Known MACs still refresh and move when full.
        let frame = eth(MAC_HERE, EthernetAddress([0x52, 0x54, 0, 0, 1, 1]), EtherType::Ipv4, &[0; 46]);
        receive(&mut vtep, PEER_B, &frame, t0);
        assert_eq!(vtep.stats().moved, 1);
        // Room comes back after ageing.
        vtep.expire(t0 + Duration::from_secs(400));
        let frame = eth(MAC_HERE, EthernetAddress([0x52, 0x54, 0, 0, 1, 3]), EtherType::Ipv4, &[0; 46]);
        receive(&mut vtep, PEER_A, &frame, t0 + Duration::from_secs(400));
        assert_eq!(vtep.lookup(vni(42), EthernetAddress([0x52, 0x54, 0, 0, 1, 3])), Some(PEER_A));
    }

    fn proxy_config() -> VtepConfig {
        let mut config = config();
        config.proxy = true;
        config.vnis[0].neighbours = vec![(IpAddr::V4(IP_THERE), MAC_THERE), (IpAddr::V6(IP6_THERE), MAC_THERE)];
        config
    }

    #[test]
    fn proxy_arp_answers_known_addresses() {
        let mut vtep = new_vtep(proxy_config());
        let request = arp_frame(arp::Operation::Request, MAC_HERE, IP_HERE, IP_THERE);
        let (result, buf) = encap(&mut vtep, 0, &request, Instant::now());
        let Encap::Reply(Reply { frame, kind: ReplyKind::ArpReply }) = result else { panic!("{result:?}") };
        let reply = ethernet::Frame::new_checked(&buf[frame]).unwrap();
        assert_eq!((reply.dst_addr(), reply.src_addr(), reply.ethertype()), (MAC_HERE, MAC_THERE, EtherType::Arp));
        let answer = arp::Repr::parse(&arp::Packet::new_checked(reply.payload()).unwrap()).unwrap();
        assert_eq!(
            answer,
            arp::Repr {
                operation: arp::Operation::Reply,
                source_hardware_addr: MAC_THERE,
                source_protocol_addr: IP_THERE,
                target_hardware_addr: MAC_HERE,
                target_protocol_addr: IP_HERE,
            }
        );
        assert_eq!(reply.payload().len(), 28);
        assert_eq!(vtep.stats().proxied, 1);
        assert_eq!(vtep.stats().tx_packets, 0);

        // Unknown address, gratuitous ARP, and a reply: flooded, not answered.
        let unknown = arp_frame(arp::Operation::Request, MAC_HERE, IP_HERE, Ipv4Addr::new(198, 51, 100, 77));
        let gratuitous = arp_frame(arp::Operation::Request, MAC_HERE, IP_THERE, IP_THERE);
        let reply = arp_frame(arp::Operation::Reply, MAC_HERE, IP_HERE, IP_THERE);
        for frame in [unknown, gratuitous, reply] {
            let (result, _) = encap(&mut vtep, 0, &frame, Instant::now());
            assert!(forwarded(&result).to.is_flood());
        }
        assert_eq!(vtep.stats().proxied, 1);
        // Proxy off: the request floods.
        let mut plain = new_vtep(VtepConfig { proxy: false, ..proxy_config() });
        let (result, _) = encap(&mut plain, 0, &request, Instant::now());
        assert!(forwarded(&result).to.is_flood());
    }

    #[test]
    fn proxy_nd_answers_solicitations() {
        let mut vtep = new_vtep(proxy_config());
        let request = ns_frame(IP6_HERE, IP6_THERE);
        let (result, buf) = encap(&mut vtep, 0, &request, Instant::now());
        let Encap::Reply(Reply { frame, kind: ReplyKind::NeighborAdvert }) = result else { panic!("{result:?}") };
        assert!(frame.start >= HEADROOM - 8 && frame.end <= buf.len());
        let reply = ethernet::Frame::new_checked(&buf[frame]).unwrap();
        assert_eq!((reply.dst_addr(), reply.src_addr(), reply.ethertype()), (MAC_HERE, MAC_THERE, EtherType::Ipv6));
        let ip = ipv6::Packet::new_checked(reply.payload()).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.hop_limit()), (IP6_THERE, IP6_HERE, 255));
        assert_eq!(ip.next_header(), IpProtocol::Icmpv6);
        let icmp = icmpv6::Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(IP6_THERE, IP6_HERE));
        assert_eq!(
            icmpv6::Repr::parse(&icmp).unwrap(),
            icmpv6::Repr::NeighborAdvert {
                flags: icmpv6::NeighborFlags { router: false, solicited: true, override_: true },
                target_addr: IP6_THERE,
                target_lladdr: Some(MAC_THERE),
            }
        );

        // Duplicate address detection: to all nodes, not solicited.
        let dad = ns_frame(Ipv6Addr::UNSPECIFIED, IP6_THERE);
        let (result, buf) = encap(&mut vtep, 0, &dad, Instant::now());
        let Encap::Reply(Reply { frame, .. }) = result else { panic!("{result:?}") };
        let reply = ethernet::Frame::new_checked(&buf[frame]).unwrap();
        assert_eq!(reply.dst_addr(), EthernetAddress([0x33, 0x33, 0, 0, 0, 1]));
        let ip = ipv6::Packet::new_checked(reply.payload()).unwrap();
        assert_eq!(ip.dst_addr(), Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1));
        let icmp = icmpv6::Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(ip.src_addr(), ip.dst_addr()));
        assert!(!icmp.solicited_flag() && icmp.override_flag());

        // Unknown target, or a hop limit other than 255: flooded.
        let unknown = ns_frame(IP6_HERE, Ipv6Addr::new(0x2001, 0xdb8, 0x42, 0, 0, 0, 0, 0x77));
        let mut low_hop = request.clone();
        low_hop[14 + 7] = 64;
        for frame in [unknown, low_hop] {
            let (result, _) = encap(&mut vtep, 0, &frame, Instant::now());
            assert!(forwarded(&result).to.is_flood());
        }
        assert_eq!(vtep.stats().proxied, 2);
    }

    #[test]
    fn proxy_snoops_received_arp_and_advertisements() {
        let mut vtep = new_vtep(VtepConfig { max_neighbours: 1, ..proxy_config() });
        let t0 = Instant::now();
        let ip = Ipv4Addr::new(198, 51, 100, 50);
        let mac = EthernetAddress([0x52, 0x54, 0, 0, 0, 0x50]);
        let announce = arp_frame(arp::Operation::Reply, mac, ip, IP_HERE);
        assert!(matches!(receive(&mut vtep, PEER_A, &announce, t0), Decap::Deliver { .. }));
        let (result, buf) = encap(&mut vtep, 0, &arp_frame(arp::Operation::Request, MAC_HERE, IP_HERE, ip), t0);
        let Encap::Reply(Reply { frame, .. }) = result else { panic!("{result:?}") };
        assert_eq!(ethernet::Frame::new_checked(&buf[frame]).unwrap().src_addr(), mac);
        assert_eq!(vtep.stats().neigh_learned, 1);

        // An advertisement from a router: learned with its R flag... but the
        // table (1 snooped entry) is full.
        let target = Ipv6Addr::new(0x2001, 0xdb8, 0x42, 0, 0, 0, 0, 0xfe);
        let advert = icmpv6::Repr::NeighborAdvert {
            flags: icmpv6::NeighborFlags { router: true, solicited: false, override_: true },
            target_addr: target,
            target_lladdr: Some(mac),
        };
        let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        let message = icmpv6_message(advert, target, all_nodes);
        let na = eth(
            EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
            mac,
            EtherType::Ipv6,
            &ipv6_packet(target, all_nodes, IpProtocol::Icmpv6, 255, &message),
        );
        receive(&mut vtep, PEER_A, &na, t0);
        assert_eq!(vtep.stats().neigh_full, 1);
        // After ageing there is room, and the answer carries the R flag.
        vtep.expire(t0 + Duration::from_secs(301));
        assert_eq!(vtep.stats().neigh_aged, 1);
        receive(&mut vtep, PEER_A, &na, t0 + Duration::from_secs(301));
        let (result, buf) = encap(&mut vtep, 0, &ns_frame(IP6_HERE, target), t0 + Duration::from_secs(301));
        let Encap::Reply(Reply { frame, .. }) = result else { panic!("{result:?}") };
        let reply = ethernet::Frame::new_checked(&buf[frame]).unwrap();
        let icmp = ipv6::Packet::new_checked(reply.payload()).unwrap();
        assert!(icmpv6::Packet::new_checked(icmp.payload()).unwrap().router_flag());
        // A corrupted advertisement is not learned.
        let mut bad = na.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let before = vtep.stats().neigh_learned;
        receive(&mut vtep, PEER_A, &bad, t0 + Duration::from_secs(302));
        assert_eq!(vtep.stats().neigh_learned, before);
        let listed: Vec<_> =
            vtep.neighbours().filter(|n| n.kind == EntryKind::Learned).map(|n| (n.ip, n.router)).collect();
        assert_eq!(listed, [(IpAddr::V6(target), true)]);
    }

    #[test]
    fn too_big_ipv4_with_df_gets_frag_needed() {
        let mut vtep = new_vtep(VtepConfig { frag_needed: true, ..config() });
        let frame = udp_frame(40000, 1500, true);
        let (result, buf) = encap(&mut vtep, 0, &frame, Instant::now());
        let Encap::Reply(Reply { frame: range, kind: ReplyKind::FragNeeded }) = result.clone() else {
            panic!("{result:?}")
        };
        assert_eq!(range.start, HEADROOM - 28, "the quote stays where it was");
        let reply = ethernet::Frame::new_checked(&buf[range]).unwrap();
        assert_eq!((reply.dst_addr(), reply.src_addr()), (MAC_HERE, MAC_THERE));
        let ip = ipv4::Packet::new_checked(reply.payload()).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.src_addr(), ip.dst_addr(), ip.next_header()), (IP_THERE, IP_HERE, IpProtocol::Icmp));
        assert_eq!(usize::from(ip.total_len()), 576);
        let icmp = icmpv4::Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum());
        assert_eq!(
            icmpv4::Repr::parse(&icmp).unwrap(),
            icmpv4::Repr::DstUnreachable {
                reason: icmpv4::DstUnreachable::FragRequired,
                next_hop_mtu: 1450,
                data_len: 548,
            }
        );
        assert_eq!(icmp.data(), &frame[14..14 + 548], "the quote is the original packet's start");
        let stats = vtep.stats();
        assert_eq!((stats.too_big, stats.too_big_replies, stats.total_drops()), (1, 1, 1));

        // No DF, or the option off: dropped without a reply.
        let (result, _) = encap(&mut vtep, 0, &udp_frame(40000, 1500, false), Instant::now());
        assert_eq!(result, Encap::Drop(DropReason::TooBig));
        let mut quiet = new_vtep(config());
        let (result, _) = encap(&mut quiet, 0, &frame, Instant::now());
        assert_eq!(result, Encap::Drop(DropReason::TooBig));
        // Not about ICMP errors, nor about broadcast frames.
        let error = ipv4_packet(IP_HERE, IP_THERE, IpProtocol::Icmp, true, &{
            let mut m = vec![0u8; 1480];
            m[0] = 3;
            m
        });
        let (result, _) = encap(&mut vtep, 0, &eth(MAC_THERE, MAC_HERE, EtherType::Ipv4, &error), Instant::now());
        assert_eq!(result, Encap::Drop(DropReason::TooBig));
        let mut broadcast = frame.clone();
        broadcast[..6].fill(0xff);
        let (result, _) = encap(&mut vtep, 0, &broadcast, Instant::now());
        assert_eq!(result, Encap::Drop(DropReason::TooBig));
    }

    #[test]
    fn too_big_ipv6_gets_packet_too_big() {
        let mut vtep = new_vtep(VtepConfig { frag_needed: true, ..config() });
        let frame = udp6_frame(40000, 1514);
        let (result, buf) = encap(&mut vtep, 0, &frame, Instant::now());
        let Encap::Reply(Reply { frame: range, kind: ReplyKind::PacketTooBig }) = result.clone() else {
            panic!("{result:?}")
        };
        assert_eq!(range.start, HEADROOM - 48);
        let reply = ethernet::Frame::new_checked(&buf[range]).unwrap();
        let ip = ipv6::Packet::new_checked(reply.payload()).unwrap();
        assert_eq!((ip.src_addr(), ip.dst_addr()), (IP6_THERE, IP6_HERE));
        assert_eq!(usize::from(ip.payload_len()) + 40, 1280);
        let icmp = icmpv6::Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(IP6_THERE, IP6_HERE));
        assert_eq!(icmpv6::Repr::parse(&icmp).unwrap(), icmpv6::Repr::PktTooBig { mtu: 1450, data_len: 1232 });
        assert_eq!(icmp.data(), &frame[14..14 + 1232]);
    }

    #[test]
    fn decap_drops_each_reason() {
        let inner = eth(MAC_HERE, MAC_THERE, EtherType::Ipv4, &[0; 46]);
        let good = datagram(vni(42), &inner);
        let mut no_i_flag = good.clone();
        no_i_flag[0] = 0x00;
        let mut tagged = inner.clone();
        tagged.splice(12..12, [0x88, 0xa8, 0x00, 0x0a]);
        let cases: Vec<(&str, VtepConfig, IpAddr, Vec<u8>, DropReason)> = vec![
            ("short VXLAN header", config(), PEER_A, good[..7].to_vec(), DropReason::BadOuter),
            ("IPv6 sender, IPv4 VTEP", config(), PEER6, good.clone(), DropReason::BadOuter),
            ("no I flag", config(), PEER_A, no_i_flag, DropReason::BadFlags),
            ("unknown VNI", config(), PEER_A, datagram(vni(43), &inner), DropReason::UnknownVni),
            (
                "unknown peer",
                VtepConfig { only_known_peers: true, ..config() },
                STRANGER,
                good.clone(),
                DropReason::UnknownPeer,
            ),
            ("truncated inner frame", config(), PEER_A, good[..8 + 13].to_vec(), DropReason::BadInner),
            ("inner 802.1ad tag", config(), PEER_A, datagram(vni(42), &tagged), DropReason::InnerVlan),
            // A tag announced but cut off is a bad frame before it is a tag.
            ("truncated inner tag", config(), PEER_A, datagram(vni(42), &tagged[..16]), DropReason::BadInner),
        ];
        for (what, config, sender, payload, reason) in cases {
            let mut vtep = new_vtep(config);
            assert_eq!(
                vtep.decap(from(sender), &payload, 0..payload.len(), Instant::now()),
                Decap::Drop(reason),
                "{what}"
            );
            assert_eq!(vtep.stats().drops(reason), 1, "{what}");
            assert_eq!(vtep.stats().total_drops(), 1, "{what}");
            assert_eq!(vtep.stats().learned, 0, "{what}: nothing learned from a dropped frame");
        }
        let mut vtep = new_vtep(config());
        assert_eq!(
            vtep.decap(from(PEER_A), &good, 0..good.len() + 1, Instant::now()),
            Decap::Drop(DropReason::BadBuffer)
        );
        // Reserved bits are ignored, and a known peer passes.
        let mut reserved = good.clone();
        reserved[0] = 0xff;
        reserved[7] = 0xff;
        assert!(matches!(
            vtep.decap(from(PEER_A), &reserved, 0..reserved.len(), Instant::now()),
            Decap::Deliver { .. }
        ));
        let mut strict = new_vtep(VtepConfig { only_known_peers: true, ..config() });
        assert!(matches!(strict.decap(from(PEER_B), &good, 0..good.len(), Instant::now()), Decap::Deliver { .. }));
        // An IPv4-mapped sender from a dual-stack socket is IPv4.
        let mapped = SocketAddr::new("::ffff:192.0.2.3".parse().unwrap(), 4789);
        assert!(matches!(strict.decap(mapped, &good, 0..good.len(), Instant::now()), Decap::Deliver { .. }));
        assert_eq!(strict.lookup(vni(42), MAC_THERE), Some(PEER_B));
        // Tags pass when allowed.
        let mut tags_ok = new_vtep(VtepConfig { allow_inner_vlan: true, ..config() });
        let payload = datagram(vni(42), &tagged);
        assert!(matches!(
            tags_ok.decap(from(PEER_A), &payload, 0..payload.len(), Instant::now()),
            Decap::Deliver { .. }
        ));
    }

    /// An outer IPv4/UDP packet from PEER_A to LOCAL around `payload`.
    fn outer_v4(payload: &[u8], dst_port: u16) -> Vec<u8> {
        let mut segment = udp_segment(50000, dst_port, 0);
        segment.extend_from_slice(payload);
        let len = segment.len() as u16;
        segment[4..6].copy_from_slice(&len.to_be_bytes());
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (PEER_A, LOCAL) else { unreachable!() };
        ipv4_packet(src, dst, IpProtocol::Udp, false, &segment)
    }

    #[test]
    fn decap_packet_checks_the_outer_headers() {
        let inner = eth(MAC_HERE, MAC_THERE, EtherType::Ipv4, &[0; 46]);
        let payload = datagram(vni(42), &inner);
        let good = outer_v4(&payload, 4789);
        let patched = |at: usize, value: u8| {
            let mut p = good.clone();
            p[at] = value;
            p
        };
        let refilled = |f: &dyn Fn(&mut ipv4::Packet<&mut [u8]>)| {
            let mut p = good.clone();
            let mut ip = ipv4::Packet::new_unchecked(&mut p[..]);
            f(&mut ip);
            ip.fill_checksum();
            p
        };
        let with_udp_checksum = |value: u16| {
            let mut p = good.clone();
            p[26..28].copy_from_slice(&value.to_be_bytes());
            p
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("truncated", good[..30].to_vec()),
            ("not IP", patched(0, 0x15)),
            ("IPv6 on an IPv4 VTEP", patched(0, 0x65)),
            ("bad header checksum", patched(10, good[10] ^ 1)),
            ("more fragments", refilled(&|ip| ip.set_more_frags(true))),
            ("later fragment", refilled(&|ip| ip.set_frag_offset(1480))),
            ("not UDP", refilled(&|ip| ip.set_next_header(IpProtocol::Tcp))),
            ("not for us", refilled(&|ip| ip.set_dst_addr(Ipv4Addr::new(192, 0, 2, 9)))),
            ("wrong port", outer_v4(&payload, 8472)),
            ("bad UDP checksum", with_udp_checksum(0x1234)),
            ("UDP length past the packet", {
                let mut p = good.clone();
                p[24..26].copy_from_slice(&(good.len() as u16).to_be_bytes());
                p
            }),
        ];
        for (what, packet) in cases {
            let mut vtep = new_vtep(config());
            assert_eq!(
                vtep.decap_packet(&packet, 0..packet.len(), Instant::now()),
                Decap::Drop(DropReason::BadOuter),
                "{what}"
            );
            assert_eq!(vtep.stats().total_drops(), 1, "{what}");
        }
        let mut vtep = new_vtep(config());
        let Decap::Deliver { frame, .. } = vtep.decap_packet(&good, 0..good.len(), Instant::now()) else { panic!() };
        assert_eq!(&good[frame], &inner[..]);
        // A correct UDP checksum is accepted too; a bad inner after good
        // outer headers is still counted once.
        let mut summed = good.clone();
        udp::Packet::new_unchecked(&mut summed[20..]).fill_checksum(PEER_A, LOCAL);
        assert!(matches!(vtep.decap_packet(&summed, 0..summed.len(), Instant::now()), Decap::Deliver { .. }));
        let short_inner = outer_v4(&payload[..20], 4789);
        assert_eq!(
            vtep.decap_packet(&short_inner, 0..short_inner.len(), Instant::now()),
            Decap::Drop(DropReason::BadInner)
        );
        assert_eq!(vtep.stats().total_drops(), 1);
    }

    /// The golden round trip: VNI 42, a small inner UDP datagram, outer IPv4
    /// 192.0.2.1 → 192.0.2.2 with the defaults (TTL 64, DF clear, ident 0,
    /// zero UDP checksum, port 4789).
    #[rustfmt::skip]
    const GOLDEN: [u8; 82] = [
        // outer IPv4
        0x45, 0x00, 0x00, 0x52, // version 4, IHL 5, total length 82
        0x00, 0x00, 0x00, 0x00, // ident 0, DF clear
        0x40, 0x11, 0xf6, 0x97, // TTL 64, UDP, header checksum
        0xc0, 0x00, 0x02, 0x01, // 192.0.2.1
        0xc0, 0x00, 0x02, 0x02, // 192.0.2.2
        // outer UDP
        0xed, 0x2c, 0x12, 0xb5, // source port 60716 (the flow's), destination 4789
        0x00, 0x3e, 0x00, 0x00, // length 62, no checksum
        // VXLAN
        0x08, 0x00, 0x00, 0x00, // I flag
        0x00, 0x00, 0x2a, 0x00, // VNI 42
        // inner Ethernet
        0x52, 0x54, 0x00, 0x00, 0x00, 0x02, // dst
        0x52, 0x54, 0x00, 0x00, 0x00, 0x01, // src
        0x08, 0x00, // IPv4
        // inner IPv4 198.51.100.1 -> 198.51.100.2, UDP 40000 -> 7, "ping"
        0x45, 0x00, 0x00, 0x20, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0xd4, 0x2e,
        0xc6, 0x33, 0x64, 0x01, 0xc6, 0x33, 0x64, 0x02,
        0x9c, 0x40, 0x00, 0x07, 0x00, 0x0c, 0x00, 0x00, b'p', b'i', b'n', b'g',
    ];

    #[test]
    fn golden_round_trip() {
        let mut payload = udp_segment(40000, 7, 0);
        payload.extend_from_slice(b"ping");
        payload[4..6].copy_from_slice(&12u16.to_be_bytes());
        let inner =
            eth(MAC_THERE, MAC_HERE, EtherType::Ipv4, &ipv4_packet(IP_HERE, IP_THERE, IpProtocol::Udp, true, &payload));
        assert_eq!(&GOLDEN[36..], &inner[..]);

        let mut sender = new_vtep(VtepConfig::new(LOCAL).vni(VniConfig::new(vni(42), 3).remote(PEER_A)));
        let (result, mut buf) = encap(&mut sender, 3, &inner, Instant::now());
        let forward = forwarded(&result).clone();
        assert_eq!(forward.src_port, 60716);
        let packet = sender.write_outer(&mut buf, forward.datagram.clone(), PEER_A, forward.src_port).unwrap();
        assert_eq!(&buf[packet.clone()], &GOLDEN[..]);
        assert_eq!(packet.start, HEADROOM - 36);

        // An independent reading of the same bytes.
        let sliced = etherparse::SlicedPacket::from_ip(&GOLDEN).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = sliced.net else { panic!() };
        assert_eq!(ip.header().source_addr(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(ip.header().destination_addr(), Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(ip.header().ttl(), 64);
        assert!(!ip.header().dont_fragment());
        assert_eq!(
            ip.header().header_checksum(),
            ip.header().to_header().calc_header_checksum(),
            "the outer header checksum"
        );
        let Some(etherparse::TransportSlice::Udp(udp)) = sliced.transport else { panic!() };
        assert_eq!((udp.destination_port(), udp.checksum()), (4789, 0));

        let mut receiver = new_vtep(VtepConfig::new(PEER_A).vni(VniConfig::new(vni(42), 5).remote(LOCAL)));
        match receiver.decap_packet(&buf, packet, Instant::now()) {
            Decap::Deliver { port, vni: v, frame } => {
                assert_eq!((port, v), (5, vni(42)));
                assert_eq!(&buf[frame], &inner[..]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(receiver.lookup(vni(42), MAC_HERE), Some(LOCAL));
        // The next packet counts the identification up.
        let (result, mut buf) = encap(&mut sender, 3, &inner, Instant::now());
        let forward = forwarded(&result).clone();
        let packet = sender.write_outer(&mut buf, forward.datagram, PEER_A, forward.src_port).unwrap();
        assert_eq!(&buf[packet.start + 4..packet.start + 6], &[0, 1]);
    }

    #[test]
    fn ipv6_underlay_round_trip_and_zero_checksums() {
        let inner = udp6_frame(40000, 200);
        let config6 =
            |local: IpAddr, remote: IpAddr| VtepConfig::new(local).vni(VniConfig::new(vni(42), 0).remote(remote));
        for (zero_tx, zero_rx, delivered) in [(false, false, true), (true, true, true), (true, false, false)] {
            let mut sender = new_vtep(VtepConfig { udp6_zero_checksum_tx: zero_tx, ..config6(LOCAL6, PEER6) });
            let mut receiver = new_vtep(VtepConfig { udp6_zero_checksum_rx: zero_rx, ..config6(PEER6, LOCAL6) });
            let (result, mut buf) = encap(&mut sender, 0, &inner, Instant::now());
            let forward = forwarded(&result).clone();
            let packet = sender.write_outer(&mut buf, forward.datagram.clone(), PEER6, forward.src_port).unwrap();
            assert_eq!(packet.start, HEADROOM - 56);
            let ip = ipv6::Packet::new_checked(&buf[packet.clone()]).unwrap();
            assert_eq!((ip.hop_limit(), ip.next_header()), (64, IpProtocol::Udp));
            assert_ne!(ip.flow_label(), 0);
            let segment = udp::Packet::new_checked(ip.payload()).unwrap();
            assert_eq!(segment.checksum() == 0, zero_tx);
            if !zero_tx {
                assert!(segment.verify_checksum(LOCAL6, PEER6));
            }
            let result = receiver.decap_packet(&buf, packet, Instant::now());
            assert_eq!(matches!(result, Decap::Deliver { .. }), delivered, "{zero_tx} {zero_rx}: {result:?}");
            if let Decap::Deliver { frame, .. } = result {
                assert_eq!(&buf[frame], &inner[..]);
            }
        }
        // IPv6 over the IPv4 limit: the MTU counts 20 more bytes of outer header.
        let mut v6 = new_vtep(config6(LOCAL6, PEER6));
        assert_eq!(v6.max_inner_frame(), 1444);
        let (result, _) = encap(&mut v6, 0, &udp6_frame(1, 1445), Instant::now());
        assert_eq!(result, Encap::Drop(DropReason::TooBig));
    }

    #[test]
    fn write_outer_refuses_what_it_cannot_write() {
        let sender = new_vtep(config());
        let mut buf = vec![0u8; 200];
        assert_eq!(sender.write_outer(&mut buf, 20..100, PEER_A, 1), None, "28 bytes of headroom needed");
        assert_eq!(sender.write_outer(&mut buf, 28..100, PEER6, 1), None, "wrong family");
        assert_eq!(sender.write_outer(&mut buf, 28..201, PEER_A, 1), None, "past the buffer");
        assert_eq!(sender.write_outer(&mut buf, 28..100, PEER_A, 1), Some(0..100));
        let mut big = vec![0u8; 70_000];
        assert_eq!(sender.write_outer(&mut big, 28..65_536, PEER_A, 1), None, "too long for IPv4");
    }

    #[test]
    fn source_port_is_stable_per_flow_and_in_range() {
        let mut vtep = new_vtep(VtepConfig { src_port_range: (40000, 40100), ..config() });
        let mut seen = Vec::new();
        for sport in 1000..1200u16 {
            let mut ports = [0u16; 2];
            for (i, len) in [100, 700].into_iter().enumerate() {
                let (result, _) = encap(&mut vtep, 0, &udp_frame(sport, len, true), Instant::now());
                ports[i] = forwarded(&result).src_port;
            }
            assert_eq!(ports[0], ports[1], "one flow, one port, whatever the length");
            assert!((40000..40100).contains(&ports[0]));
            assert_eq!(vtep.src_port(&udp_frame(sport, 64, false)), Some(ports[0]));
            seen.push(ports[0]);
        }
        seen.sort_unstable();
        seen.dedup();
        assert!(seen.len() > 80, "200 flows spread over {} of 100 ports", seen.len());
        assert_eq!(vtep.src_port(&[0u8; 10]), None);
    }

    #[test]
    fn every_call_is_accounted_for() {
        let mut vtep = new_vtep(VtepConfig { proxy: true, frag_needed: true, ..proxy_config() });
        let frames = [
            udp_frame(1, 100, true),
            udp_frame(1, 1500, true),
            udp_frame(1, 1500, false),
            arp_frame(arp::Operation::Request, MAC_HERE, IP_HERE, IP_THERE),
            vec![0u8; 5],
        ];
        for (n, frame) in frames.iter().enumerate() {
            for port in 0..3 {
                encap(&mut vtep, port, frame, Instant::now());
                let s = vtep.stats();
                let calls = (n * 3 + usize::from(port) + 1) as u64;
                assert_eq!(s.tx_frames + s.proxied + s.total_drops(), calls);
            }
        }
        let s = vtep.stats();
        assert_eq!(s.too_big_replies, 1);
        assert_eq!(s.proxied, 1);
    }

    #[test]
    fn debug_is_a_summary() {
        let text = format!("{:?}", new_vtep(config()));
        assert!(text.contains("192.0.2.1") && text.contains("(42, 0)"), "{text}");
        assert_eq!(new_vtep(config()).vni_of(1), Some(vni(7)));
        assert_eq!(new_vtep(config()).port_of(vni(42)), Some(0));
        assert_eq!(new_vtep(config()).vni_of(2), None);
        assert!(matches!(Vtep::new(VtepConfig::default()), Err(ConfigError::BadLocal(_))));
    }
}
