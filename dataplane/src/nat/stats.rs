//! The NAT's counters: traffic, connection events, and one drop counter per
//! [`DropReason`]. Every call to [`crate::nat::Nat::translate`] increments
//! exactly one of `translated`, `passed` or a drop counter, so
//! `translated + passed + total_drops()` is the number of calls.
//!
//! What this module does not do: count what the runner does with the
//! verdicts (routing failures, send errors): those are the runner's counters.

use core::fmt;

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not an IPv4 or IPv6 packet whose lengths hold together: a bad
    /// version, an IHL below 5, a total or payload length beyond the buffer,
    /// an extension-header chain that runs past the packet.
    BadPacket,
    /// An IPv4 header checksum that does not verify.
    BadIpChecksum,
    /// A TCP, UDP or ICMP header cut short (also a first fragment too short
    /// to hold it).
    BadTransport,
    /// An ICMP error whose quoted packet cannot be read far enough to be
    /// translated (its IP header and the ports or identifier behind it), or
    /// an error quoting an error.
    BadIcmpError,
    /// A non-first fragment whose first fragment was not seen (or was seen
    /// too long ago): its translation is unknown.
    FragmentUnknown,
    /// A packet that a NAT rule applies to but that cannot start a tracked
    /// connection: TCP without SYN (or RST/FIN-only with loose pickup on), an
    /// ICMP message other than an echo request, a protocol other than TCP,
    /// UDP and ICMP. Forwarding it would leak an inside address.
    Untrackable,
    /// A packet of a tracked connection that came from the wrong side (for
    /// example an original-direction packet of a masqueraded connection
    /// arriving from outside), or a packet from outside to a published port
    /// whose source is one of the NAT's own outside addresses: spoofed or
    /// misrouted.
    WrongSide,
    /// No free port on the outside address: every candidate of the bounded
    /// search was taken.
    NoPort,
    /// A published port's internal reply tuple is already in use by another
    /// connection (the same client reaching one server port through two
    /// published ports at once).
    TupleTaken,
    /// The table is full and holds no entry that may be evicted (unassured,
    /// or a TCP connection that is closing).
    TableFull,
    /// Well-formed but not handled: an IPv6 routing header with segments
    /// left (its final destination is not the header's).
    Unsupported,
}

impl DropReason {
    /// Every reason, in the order [`Stats`] lists them.
    pub const ALL: [DropReason; 11] = [
        DropReason::BadPacket,
        DropReason::BadIpChecksum,
        DropReason::BadTransport,
        DropReason::BadIcmpError,
        DropReason::FragmentUnknown,
        DropReason::Untrackable,
        DropReason::WrongSide,
        DropReason::NoPort,
        DropReason::TupleTaken,
        DropReason::TableFull,
        DropReason::Unsupported,
    ];

    /// The counter's name, as `wharf nat stats` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::BadPacket => "bad_packet",
            DropReason::BadIpChecksum => "bad_ip_checksum",
            DropReason::BadTransport => "bad_transport",
            DropReason::BadIcmpError => "bad_icmp_error",
            DropReason::FragmentUnknown => "fragment_unknown",
            DropReason::Untrackable => "untrackable",
            DropReason::WrongSide => "wrong_side",
            DropReason::NoPort => "no_port",
            DropReason::TupleTaken => "tuple_taken",
            DropReason::TableFull => "table_full",
            DropReason::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The NAT's counters. Plain numbers, `Copy`.
///
/// `Display` prints one `name value` line per counter, in the order of
/// [`Stats::iter`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Packets rewritten for a tracked connection (both directions, ICMP
    /// errors and fragments included).
    pub translated: u64,
    /// Packets no rule or connection applies to, left as they were.
    pub passed: u64,
    /// Connections created by masquerade (inside to outside).
    pub snat_created: u64,
    /// Connections created by a published port (outside to inside).
    pub dnat_created: u64,
    /// Connections created by a published port reached from inside
    /// (hairpinning: DNAT and SNAT at once).
    pub hairpin_created: u64,
    /// Connections removed at the end of their timeout.
    pub expired: u64,
    /// Connections evicted to make room for a new one.
    pub evicted: u64,
    /// ICMP errors about a tracked connection translated (RFC 5508),
    /// quoted packet included.
    pub icmp_errors: u64,
    /// Non-first fragments translated like their first fragment.
    pub fragments: u64,
    pub bad_packet: u64,
    pub bad_ip_checksum: u64,
    pub bad_transport: u64,
    pub bad_icmp_error: u64,
    pub fragment_unknown: u64,
    pub untrackable: u64,
    pub wrong_side: u64,
    pub no_port: u64,
    pub tuple_taken: u64,
    pub table_full: u64,
    pub unsupported: u64,
}

impl Stats {
    /// The drop counter for `reason`.
    pub const fn drops(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::BadPacket => self.bad_packet,
            DropReason::BadIpChecksum => self.bad_ip_checksum,
            DropReason::BadTransport => self.bad_transport,
            DropReason::BadIcmpError => self.bad_icmp_error,
            DropReason::FragmentUnknown => self.fragment_unknown,
            DropReason::Untrackable => self.untrackable,
            DropReason::WrongSide => self.wrong_side,
            DropReason::NoPort => self.no_port,
            DropReason::TupleTaken => self.tuple_taken,
            DropReason::TableFull => self.table_full,
            DropReason::Unsupported => self.unsupported,
        }
    }

    /// Every drop counter added up.
    pub fn total_drops(&self) -> u64 {
        DropReason::ALL.iter().map(|&reason| self.drops(reason)).sum()
    }

    /// Increments the drop counter for `reason`.
    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        let counter = match reason {
            DropReason::BadPacket => &mut self.bad_packet,
            DropReason::BadIpChecksum => &mut self.bad_ip_checksum,
            DropReason::BadTransport => &mut self.bad_transport,
            DropReason::BadIcmpError => &mut self.bad_icmp_error,
            DropReason::FragmentUnknown => &mut self.fragment_unknown,
            DropReason::Untrackable => &mut self.untrackable,
            DropReason::WrongSide => &mut self.wrong_side,
            DropReason::NoPort => &mut self.no_port,
            DropReason::TupleTaken => &mut self.tuple_taken,
            DropReason::TableFull => &mut self.table_full,
            DropReason::Unsupported => &mut self.unsupported,
        };
        *counter += 1;
    }

    /// Every counter as `(name, value)`: traffic and connection events
    /// first, then the drops in the order of [`DropReason::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        let head = [
            ("translated", self.translated),
            ("passed", self.passed),
            ("snat_created", self.snat_created),
            ("dnat_created", self.dnat_created),
            ("hairpin_created", self.hairpin_created),
            ("expired", self.expired),
            ("evicted", self.evicted),
            ("icmp_errors", self.icmp_errors),
            ("fragments", self.fragments),
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
        let stats = Stats { translated: 3, evicted: 2, no_port: 1, ..Stats::default() };
        let names: Vec<_> = stats.iter().map(|(name, _)| name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        assert_eq!(names.len(), 20);
        let text = stats.to_string();
        assert!(text.contains("translated 3\n"));
        assert!(text.contains("evicted 2\n"));
        assert!(text.contains("no_port 1\n"));
        assert!(text.contains("unsupported 0\n"));
        assert_eq!(text.lines().count(), 20);
    }
}
