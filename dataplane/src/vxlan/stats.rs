//! The VTEP's counters: traffic, learning, and one drop counter per
//! [`DropReason`]. Every call to `encap`, `decap` or `decap_packet` that does
//! not forward, reply or deliver increments exactly one drop counter.
//!
//! What this module does not do: count what the runner does with the
//! decisions (send errors, short writes): those are the runner's counters.

use crate::counters::counters;

counters! {
    /// Why a frame or a datagram was dropped.
    pub enum DropReason {
        /// The caller's range lies outside its buffer, or leaves less than
        /// [`crate::vxlan::HEADROOM`] before the frame: a runner bug, never the
        /// packet's fault.
        BadBuffer => bad_buffer,
        /// Outer IPv4/IPv6/UDP headers that do not check out (length, header or
        /// UDP checksum, protocol, destination address or port, an outer
        /// fragment), a UDP payload shorter than a VXLAN header, or an outer
        /// source of the wrong family.
        BadOuter => bad_outer,
        /// A VXLAN header without the I flag (RFC 7348 §5).
        BadFlags => bad_flags,
        /// A VNI this VTEP does not carry.
        UnknownVni => unknown_vni,
        /// A sender that is not one of the VNI's known peers, with
        /// `only_known_peers` on.
        UnknownPeer => unknown_peer,
        /// An inner frame too short for its Ethernet header (and VLAN tags).
        BadInner => bad_inner,
        /// An inner frame with an 802.1Q or 802.1ad tag, without
        /// `allow_inner_vlan` (RFC 7348 §6.1).
        InnerVlan => inner_vlan,
        /// A received frame whose source MAC has a static FDB entry pointing at
        /// another remote: not moved, and dropped, as the kernel does with
        /// learning on.
        StaticConflict => static_conflict,
        /// An inner frame whose outer packet would exceed the underlay MTU (a
        /// VTEP must not fragment, RFC 7348 §4.3).
        TooBig => too_big,
        /// Nowhere to send: no FDB entry and an empty flood list.
        NoRemote => no_remote,
        /// A frame from a port no VNI is bound to.
        UnknownPort => unknown_port,
    }
    /// The VTEP's counters. Plain numbers, `Copy`: take a snapshot with
    /// [`crate::vxlan::Vtep::stats`].
    pub struct Stats {
        /// Frames encapsulated (each once, however many remotes it goes to).
        tx_frames,
        /// Datagrams handed to the runner: one per remote of each frame.
        tx_packets,
        /// Inner frame bytes handed to the runner, once per remote (as the
        /// kernel counts `tx_bytes`).
        tx_bytes,
        /// Frames decapsulated and delivered.
        rx_packets,
        /// Inner frame bytes delivered.
        rx_bytes,
        /// Frames sent to the flood list (broadcast, multicast, unknown unicast).
        flooded,
        /// ARP requests and neighbour solicitations answered locally.
        proxied,
        /// ICMP fragmentation-needed and ICMPv6 packet-too-big replies written
        /// for too-big frames (each also counted under `too_big`).
        too_big_replies,
        /// New FDB entries learned.
        learned,
        /// Learned FDB entries moved to another remote.
        moved,
        /// Learned FDB entries aged out.
        aged,
        /// New MACs not learned because the FDB was full (the frames were still
        /// delivered: not a drop).
        fdb_full,
        /// Neighbours snooped from received ARP and NA frames (new or changed).
        neigh_learned,
        /// Snooped neighbours aged out.
        neigh_aged,
        /// New neighbours not snooped because the table was full.
        neigh_full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_then_every_drop() {
        let mut stats = Stats::default();
        stats.count_drop(DropReason::BadFlags);
        let listed: Vec<_> = stats.iter().collect();
        assert_eq!(listed.len(), 15 + DropReason::ALL.len());
        assert_eq!((listed[0].0, listed[listed.len() - 1].0), ("tx_frames", "unknown_port"));
        assert!(listed.contains(&(DropReason::BadFlags.name(), 1)));
        assert_eq!(stats.total_drops(), 1);
    }
}
