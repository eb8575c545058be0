//! The NAT's counters: traffic, connection events, and one drop counter per
//! [`DropReason`]. Every call to [`crate::nat::Nat::translate`] increments
//! exactly one of `translated`, `passed` or a drop counter, so
//! `translated + passed + total_drops()` is the number of calls.
//!
//! What this module does not do: count what the runner does with the
//! verdicts (routing failures, send errors): those are the runner's counters.

use crate::counters::counters;

counters! {
    /// Why a packet was dropped.
    pub enum DropReason {
        /// Not an IPv4 or IPv6 packet whose lengths hold together: a bad
        /// version, an IHL below 5, a total or payload length beyond the buffer,
        /// an extension-header chain that runs past the packet.
        BadPacket => bad_packet,
        /// An IPv4 header checksum that does not verify.
        BadIpChecksum => bad_ip_checksum,
        /// A TCP, UDP or ICMP header cut short (also a first fragment too short
        /// to hold it).
        BadTransport => bad_transport,
        /// An ICMP error whose quoted packet cannot be read far enough to be
        /// translated (its IP header and the ports or identifier behind it), or
        /// an error quoting an error.
        BadIcmpError => bad_icmp_error,
        /// A non-first fragment whose first fragment was not seen (or was seen
        /// too long ago): its translation is unknown.
        FragmentUnknown => fragment_unknown,
        /// A packet that a NAT rule applies to but that cannot start a tracked
        /// connection: TCP without SYN (or RST/FIN-only with loose pickup on), an
        /// ICMP message other than an echo request, a protocol other than TCP,
        /// UDP and ICMP. Forwarding it would leak an inside address.
        Untrackable => untrackable,
        /// A packet of a tracked connection that came from the wrong side (for
        /// example an original-direction packet of a masqueraded connection
        /// arriving from outside), or a packet from outside to a published port
        /// whose source is one of the NAT's own outside addresses: spoofed or
        /// misrouted.
        WrongSide => wrong_side,
        /// No free port on the outside address: every candidate of the bounded
        /// search was taken.
        NoPort => no_port,
        /// A published port's internal reply tuple is already in use by another
        /// connection (the same client reaching one server port through two
        /// published ports at once).
        TupleTaken => tuple_taken,
        /// The table is full and holds no entry that may be evicted (unassured,
        /// or a TCP connection that is closing).
        TableFull => table_full,
        /// Well-formed but not handled: an IPv6 routing header with segments
        /// left (its final destination is not the header's).
        Unsupported => unsupported,
    }
    /// The NAT's counters. Plain numbers, `Copy`.
    pub struct Stats {
        /// Packets rewritten for a tracked connection (both directions, ICMP
        /// errors and fragments included).
        translated,
        /// Packets no rule or connection applies to, left as they were.
        passed,
        /// Connections created by masquerade (inside to outside).
        snat_created,
        /// Connections created by a published port (outside to inside).
        dnat_created,
        /// Connections created by a published port reached from inside
        /// (hairpinning: DNAT and SNAT at once).
        hairpin_created,
        /// Connections removed at the end of their timeout.
        expired,
        /// Connections evicted to make room for a new one.
        evicted,
        /// ICMP errors about a tracked connection translated (RFC 5508),
        /// quoted packet included.
        icmp_errors,
        /// Non-first fragments translated like their first fragment.
        fragments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_then_every_drop() {
        let mut stats = Stats::default();
        stats.count_drop(DropReason::NoPort);
        let listed: Vec<_> = stats.iter().collect();
        assert_eq!(listed.len(), 9 + DropReason::ALL.len());
        assert_eq!((listed[0].0, listed[listed.len() - 1].0), ("translated", "unsupported"));
        assert!(listed.contains(&(DropReason::NoPort.name(), 1)));
        assert_eq!(stats.total_drops(), 1);
    }
}
