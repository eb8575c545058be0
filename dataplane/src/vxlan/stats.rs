//! The VTEP's counters: traffic, learning, and one drop counter per
//! [`DropReason`]. Every call to `encap`, `decap` or `decap_packet` that does
//! not forward, reply or deliver increments exactly one drop counter.
//!
//! What this module does not do: count what the runner does with the
//! decisions (send errors, short writes): those are the runner's counters.

use core::fmt;

/// Why a frame or a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The caller's range lies outside its buffer, or leaves less than
    /// [`crate::vxlan::HEADROOM`] before the frame: a runner bug, never the
    /// packet's fault.
    BadBuffer,
    /// Outer IPv4/IPv6/UDP headers that do not check out (length, header or
    /// UDP checksum, protocol, destination address or port, an outer
    /// fragment), a UDP payload shorter than a VXLAN header, or an outer
    /// source of the wrong family.
    BadOuter,
    /// A VXLAN header without the I flag (RFC 7348 §5).
    BadFlags,
    /// A VNI this VTEP does not carry.
    UnknownVni,
    /// A sender that is not one of the VNI's known peers, with
    /// `only_known_peers` on.
    UnknownPeer,
    /// An inner frame too short for its Ethernet header (and VLAN tags).
    BadInner,
    /// An inner frame with an 802.1Q or 802.1ad tag, without
    /// `allow_inner_vlan` (RFC 7348 §6.1).
    InnerVlan,
    /// A received frame whose source MAC has a static FDB entry pointing at
    /// another remote: not moved, and dropped, as the kernel does with
    /// learning on.
    StaticConflict,
    /// An inner frame whose outer packet would exceed the underlay MTU (a
    /// VTEP must not fragment, RFC 7348 §4.3).
    TooBig,
    /// Nowhere to send: no FDB entry and an empty flood list.
    NoRemote,
    /// A frame from a port no VNI is bound to.
    UnknownPort,
}

impl DropReason {
    /// Every reason, in the order [`Stats`] lists them.
    pub const ALL: [DropReason; 11] = [
        DropReason::BadBuffer,
        DropReason::BadOuter,
        DropReason::BadFlags,
        DropReason::UnknownVni,
        DropReason::UnknownPeer,
        DropReason::BadInner,
        DropReason::InnerVlan,
        DropReason::StaticConflict,
        DropReason::TooBig,
        DropReason::NoRemote,
        DropReason::UnknownPort,
    ];

    /// The counter's name, as `wharf vtep stats` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::BadBuffer => "bad_buffer",
            DropReason::BadOuter => "bad_outer",
            DropReason::BadFlags => "bad_flags",
            DropReason::UnknownVni => "unknown_vni",
            DropReason::UnknownPeer => "unknown_peer",
            DropReason::BadInner => "bad_inner",
            DropReason::InnerVlan => "inner_vlan",
            DropReason::StaticConflict => "static_conflict",
            DropReason::TooBig => "too_big",
            DropReason::NoRemote => "no_remote",
            DropReason::UnknownPort => "unknown_port",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The VTEP's counters. Plain numbers, `Copy`: take a snapshot with
/// [`crate::vxlan::Vtep::stats`].
///
/// `Display` prints one `name value` line per counter, in the order of
/// [`Stats::iter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Frames encapsulated (each once, however many remotes it goes to).
    pub tx_frames: u64,
    /// Datagrams handed to the runner: one per remote of each frame.
    pub tx_packets: u64,
    /// Inner frame bytes handed to the runner, once per remote (as the
    /// kernel counts `tx_bytes`).
    pub tx_bytes: u64,
    /// Frames decapsulated and delivered.
    pub rx_packets: u64,
    /// Inner frame bytes delivered.
    pub rx_bytes: u64,
    /// Frames sent to the flood list (broadcast, multicast, unknown unicast).
    pub flooded: u64,
    /// ARP requests and neighbour solicitations answered locally.
    pub proxied: u64,
    /// ICMP fragmentation-needed and ICMPv6 packet-too-big replies written
    /// for too-big frames (each also counted under `too_big`).
    pub too_big_replies: u64,
    /// New FDB entries learned.
    pub learned: u64,
    /// Learned FDB entries moved to another remote.
    pub moved: u64,
    /// Learned FDB entries aged out.
    pub aged: u64,
    /// New MACs not learned because the FDB was full (the frames were still
    /// delivered: not a drop).
    pub fdb_full: u64,
    /// Neighbours snooped from received ARP and NA frames (new or changed).
    pub neigh_learned: u64,
    /// Snooped neighbours aged out.
    pub neigh_aged: u64,
    /// New neighbours not snooped because the table was full.
    pub neigh_full: u64,
    pub bad_buffer: u64,
    pub bad_outer: u64,
    pub bad_flags: u64,
    pub unknown_vni: u64,
    pub unknown_peer: u64,
    pub bad_inner: u64,
    pub inner_vlan: u64,
    pub static_conflict: u64,
    pub too_big: u64,
    pub no_remote: u64,
    pub unknown_port: u64,
}

impl Stats {
    /// The drop counter for `reason`.
    pub const fn drops(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::BadBuffer => self.bad_buffer,
            DropReason::BadOuter => self.bad_outer,
            DropReason::BadFlags => self.bad_flags,
            DropReason::UnknownVni => self.unknown_vni,
            DropReason::UnknownPeer => self.unknown_peer,
            DropReason::BadInner => self.bad_inner,
            DropReason::InnerVlan => self.inner_vlan,
            DropReason::StaticConflict => self.static_conflict,
            DropReason::TooBig => self.too_big,
            DropReason::NoRemote => self.no_remote,
            DropReason::UnknownPort => self.unknown_port,
        }
    }

    /// Every drop counter added up.
    pub fn total_drops(&self) -> u64 {
        DropReason::ALL.iter().map(|&reason| self.drops(reason)).sum()
    }

    /// Increments the drop counter for `reason`.
    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        let counter = match reason {
            DropReason::BadBuffer => &mut self.bad_buffer,
            DropReason::BadOuter => &mut self.bad_outer,
            DropReason::BadFlags => &mut self.bad_flags,
            DropReason::UnknownVni => &mut self.unknown_vni,
            DropReason::UnknownPeer => &mut self.unknown_peer,
            DropReason::BadInner => &mut self.bad_inner,
            DropReason::InnerVlan => &mut self.inner_vlan,
            DropReason::StaticConflict => &mut self.static_conflict,
            DropReason::TooBig => &mut self.too_big,
            DropReason::NoRemote => &mut self.no_remote,
            DropReason::UnknownPort => &mut self.unknown_port,
        };
        *counter += 1;
    }

    /// Every counter as `(name, value)`: traffic and learning first, then the
    /// drops in the order of [`DropReason::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        let head = [
            ("tx_frames", self.tx_frames),
            ("tx_packets", self.tx_packets),
            ("tx_bytes", self.tx_bytes),
            ("rx_packets", self.rx_packets),
            ("rx_bytes", self.rx_bytes),
            ("flooded", self.flooded),
            ("proxied", self.proxied),
            ("too_big_replies", self.too_big_replies),
            ("learned", self.learned),
            ("moved", self.moved),
            ("aged", self.aged),
            ("fdb_full", self.fdb_full),
            ("neigh_learned", self.neigh_learned),
            ("neigh_aged", self.neigh_aged),
            ("neigh_full", self.neigh_full),
        ];
        let stats = *self;
        head.into_iter().chain(DropReason::ALL.into_iter().map(move |reason| (reason.name(), stats.drops(reason))))
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in self.iter() {
            writeln!(f, "{name} {value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_counter_per_reason() {
        let mut stats = Stats::default();
        for (n, reason) in DropReason::ALL.into_iter().enumerate() {
            for _ in 0..=n {
                stats.count_drop(reason);
            }
        }
        for (n, reason) in DropReason::ALL.into_iter().enumerate() {
            assert_eq!(stats.drops(reason), n as u64 + 1, "{reason}");
            let listed = stats.iter().find(|&(name, _)| name == reason.name()).unwrap();
            assert_eq!(listed.1, n as u64 + 1);
        }
        assert_eq!(stats.total_drops(), (1..=11).sum::<u64>());
    }

    #[test]
    fn names_are_unique_and_printed() {
        let stats = Stats { tx_packets: 3, fdb_full: 2, bad_flags: 1, ..Stats::default() };
        let names: Vec<_> = stats.iter().map(|(name, _)| name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        assert_eq!(names.len(), 26);
        let text = stats.to_string();
        assert!(text.contains("tx_packets 3\n"));
        assert!(text.contains("fdb_full 2\n"));
        assert!(text.contains("bad_flags 1\n"));
        assert!(text.contains("unknown_port 0\n"));
        assert_eq!(text.lines().count(), 26);
    }
}
