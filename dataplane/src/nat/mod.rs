//! Userspace NAT, sans-IO: connection tracking, masquerade (SNAT) for
//! container egress, published ports (DNAT) that keep the client's address,
//! hairpinning, and in-place rewriting with RFC 1624 incremental checksum
//! updates, for IPv4 and IPv6 (NAT66 masquerade, as Docker does with
//! ip6tables).
//!
//! [`Nat::translate`] takes an IP packet in the caller's buffer, the side it
//! came from, a conntrack zone and `now`, rewrites the packet and returns a
//! [`Verdict`]; the runner does the I/O and the routing, and calls
//! [`Nat::expire`] about once a second. Every packet that is not forwarded
//! or passed is a counted drop with a [`DropReason`]; [`Stats`] holds the
//! counters. Headers are read with [`crate::wire`].
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use std::time::Instant;
//! use dataplane::nat::{DnatRule, Nat, NatConfig, Side, Verdict};
//! use dataplane::wire::{ipv4, udp, IpProtocol};
//!
//! let outside = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
//! let config = NatConfig::new()
//!     .masquerade("10.0.0.0/24".parse().unwrap(), outside)
//!     .publish(DnatRule::new(IpProtocol::Tcp, outside, 8080, "10.0.0.2".parse().unwrap(), 80));
//! let mut nat = Nat::new(config).unwrap();
//!
//! // A UDP datagram from 10.0.0.2:5000 to 198.51.100.1:53.
//! let mut packet = [0u8; 28];
//! let ip = ipv4::Repr {
//!     src_addr: Ipv4Addr::new(10, 0, 0, 2),
//!     dst_addr: Ipv4Addr::new(198, 51, 100, 1),
//!     next_header: IpProtocol::Udp,
//!     payload_len: 8,
//!     hop_limit: 64,
//!     dscp: 0,
//!     ecn: 0,
//!     ident: 1,
//!     dont_frag: true,
//!     more_frags: false,
//!     frag_offset: 0,
//!     options: ipv4::Ipv4Options::default(),
//! };
//! ip.emit(&mut ipv4::Packet::new_unchecked(&mut packet[..])).unwrap();
//! udp::Repr { src_port: 5000, dst_port: 53, payload_len: 0 }
//!     .emit(&mut udp::Packet::new_unchecked(&mut packet[20..]))
//!     .unwrap();
//!
//! assert_eq!(nat.translate(0, Side::Inside, &mut packet, Instant::now()), Verdict::Forward);
//! let ip = ipv4::Packet::new_checked(&packet[..]).unwrap();
//! assert_eq!(ip.src_addr(), Ipv4Addr::new(203, 0, 113, 10)); // masqueraded
//! assert!(ip.verify_checksum());
//! assert_eq!(udp::Packet::new_checked(&packet[20..]).unwrap().src_port(), 5000); // port kept
//! ```
//!
//! Decisions where netfilter leaves room, or where this NAT differs:
//!
//! - Only connections a rule applies to are tracked; other packets pass
//!   untouched ([`Verdict::Pass`]). From inside, a packet a masquerade rule
//!   covers that cannot be tracked (TCP without SYN when `tcp_loose` is off,
//!   other IP protocols, ICMP other than echo and errors) is dropped
//!   (`untrackable`) rather than leak its inside address.
//! - UDP mappings are endpoint-independent (RFC 4787 REQ-1, REQ-9 for
//!   hairpinning: an inside host reaching a published port appears from its
//!   own outside mapping); filtering is address-and-port dependent (a reply
//!   must come from where the connection went). TCP and ICMP echo are
//!   endpoint-dependent as with netfilter: a port is shared among inside
//!   hosts towards different destinations.
//! - Ports published on an outside address are never handed to masqueraded
//!   connections; a kept source port may lie outside `port_range`.
//! - Non-first IPv4 and IPv6 fragments follow their first fragment's
//!   translation (a 1024-slot table, 30 s); one that comes first, or whose
//!   record was overwritten, is dropped (`fragment_unknown`) when it could
//!   belong to a translated datagram.
//! - TCP sequence numbers are not tracked: any RST of a connection closes
//!   it, and no packet is invalid.
//! - When the table is full, an evictable entry (unassured, or TCP that is
//!   closing) is evicted for the new one, the one nearest its deadline;
//!   assured connections are never evicted, so a SYN flood cannot push out
//!   established flows. With no evictable entry the new one is dropped
//!   (`table_full`).
//! - Zones are non-directional, as netfilter's default: both directions of
//!   a connection come with the same zone.
//!
//! Memory: an entry is 52 bytes (IPv4) or 100 (IPv6), the index 32 bytes
//! (IPv4) or 26.7 (IPv6) per entry; each outside address reserves 1 MB (IPv4) or 1.8 MB (IPv6) of
//! port bookkeeping, resident only as its UDP ports are used.
//! [`Nat::memory_bytes`] reports all that is allocated.
//!
//! What this module does not do: I/O, ARP or neighbour discovery, routing,
//! TTL, reassembly, or application-level gateways (FTP, SIP).

mod config;
mod engine;
mod frag;
mod packet;
mod ports;
mod state;
mod stats;
mod table;

pub use config::{
    ConfigError, DnatRule, Masquerade, NatConfig, Prefix, Timeouts, DEFAULT_MAX_ENTRIES, DEFAULT_PORT_RANGE,
    MAX_ENTRIES, MAX_OUTSIDE_ADDRS, MAX_TIMEOUT,
};
pub use engine::{Connection, Nat, Side, Verdict};
pub use state::ConnState;
pub use stats::{DropReason, Stats};

#[cfg(test)]
mod tests;
