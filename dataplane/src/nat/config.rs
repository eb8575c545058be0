//! The NAT's configuration and its validation: masquerade rules (an inside
//! prefix and the outside address its connections leave from), published
//! ports (DNAT rules), the masquerade port range, the table's size and the
//! protocol timeouts.
//!
//! Everything is checked up front by [`NatConfig::validate`] (which
//! [`crate::nat::Nat::new`] calls), so the engine never meets a
//! configuration it cannot honour. Each [`ConfigError`] names the value that
//! is wrong and says what to use instead.
//!
//! What this module does not do: parse command lines (the runner's job), or
//! change anything at run time.

use core::fmt;
use core::net::IpAddr;
use core::str::FromStr;
use std::time::Duration;

use thiserror::Error;

use crate::wire::IpProtocol;

/// The default masquerade port range: the unprivileged ports. A connection
/// keeps its source port when that port is free on the outside address,
/// whatever its value; only a replacement is drawn from the range.
pub const DEFAULT_PORT_RANGE: (u16, u16) = (1024, 65535);

/// The default cap on tracked connections, per address family: the usual
/// `nf_conntrack_max`.
pub const DEFAULT_MAX_ENTRIES: usize = 262_144;

/// The largest `max_entries` accepted: the table is allocated up front.
pub const MAX_ENTRIES: usize = 1 << 26;

/// The most distinct outside addresses (masquerade and published) per family.
/// Each reserves 1 MB (IPv4) or 1.8 MB (IPv6) of port bookkeeping, resident
/// only as its UDP ports are used.
pub const MAX_OUTSIDE_ADDRS: usize = 32;

/// The longest timeout accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(1 << 30);

/// How long a connection lives without traffic, by protocol state. The
/// defaults are the Linux kernel's (`net.netfilter.nf_conntrack_*_timeout*`).
/// Timeouts are counted in whole seconds, rounded up; an entry is removed
/// within a second after its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A SYN seen, no answer yet (120 s).
    pub tcp_syn_sent: Duration,
    /// SYN and SYN-ACK seen, waiting for the handshake's last ACK (60 s).
    pub tcp_syn_recv: Duration,
    /// Handshake done (432000 s: five days).
    pub tcp_established: Duration,
    /// A FIN seen from one side (120 s).
    pub tcp_fin_wait: Duration,
    /// The first FIN acknowledged, the other side still open (60 s).
    pub tcp_close_wait: Duration,
    /// FINs seen from both sides, the last not yet acknowledged (30 s).
    pub tcp_last_ack: Duration,
    /// Both FINs acknowledged (120 s).
    pub tcp_time_wait: Duration,
    /// Reset (10 s).
    pub tcp_close: Duration,
    /// UDP with traffic in one direction only (30 s).
    pub udp_unreplied: Duration,
    /// UDP with traffic both ways (120 s).
    pub udp_assured: Duration,
    /// ICMP and ICMPv6 echo (30 s).
    pub icmp: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        let secs = Duration::from_secs;
        Timeouts {
            tcp_syn_sent: secs(120),
            tcp_syn_recv: secs(60),
            tcp_established: secs(432_000),
            tcp_fin_wait: secs(120),
            tcp_close_wait: secs(60),
            tcp_last_ack: secs(30),
            tcp_time_wait: secs(120),
            tcp_close: secs(10),
            udp_unreplied: secs(30),
            udp_assured: secs(120),
            icmp: secs(30),
        }
    }
}

impl Timeouts {
    /// Every timeout with its name, for validation and display.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Duration)> {
        [
            ("tcp_syn_sent", self.tcp_syn_sent),
            ("tcp_syn_recv", self.tcp_syn_recv),
            ("tcp_established", self.tcp_established),
            ("tcp_fin_wait", self.tcp_fin_wait),
            ("tcp_close_wait", self.tcp_close_wait),
            ("tcp_last_ack", self.tcp_last_ack),
            ("tcp_time_wait", self.tcp_time_wait),
            ("tcp_close", self.tcp_close),
            ("udp_unreplied", self.udp_unreplied),
            ("udp_assured", self.udp_assured),
            ("icmp", self.icmp),
        ]
        .into_iter()
    }
}

/// An address prefix such as `10.0.0.0/24` or `fd00::/64`. The host bits
/// are cleared: `10.0.0.7/24` is `10.0.0.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// The prefix of the first `len` bits of `addr` (at most 32 for IPv4,
    /// 128 for IPv6).
    pub fn new(addr: IpAddr, len: u8) -> Result<Prefix, ConfigError> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(ConfigError::PrefixLength { addr, len });
        }
        let addr = match addr {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & mask32(len)).into()),
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & mask128(len)).into()),
        };
        Ok(Prefix { addr, len })
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length in bits.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether `ip` lies in the prefix (an address of the other family
    /// never does).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => u32::from(ip) & mask32(self.len) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(ip)) => u128::from(ip) & mask128(self.len) == u128::from(net),
            _ => false,
        }
    }
}

fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len.min(32))).unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len.min(128))).unwrap_or(0)
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = ConfigError;

    /// Parses `ADDR/LEN`; a bare address is a host prefix (/32 or /128).
    fn from_str(s: &str) -> Result<Prefix, ConfigError> {
        let bad = || ConfigError::BadPrefix(s.to_owned());
        let (addr, len) = match s.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let len = match len {
            Some(len) => len.parse().map_err(|_| bad())?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        Prefix::new(addr, len)
    }
}

/// Masquerade (source NAT) for connections from an inside prefix: they
/// leave from `outside`, on a port of their own (`iptables -t nat -A
/// POSTROUTING -s INSIDE -j MASQUERADE` with `outside` the uplink's address).
/// Packets from the prefix to an address inside the same prefix are left
/// alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Masquerade {
    pub inside: Prefix,
    pub outside: IpAddr,
}

/// A published port range (destination NAT): connections from outside to
/// `external`:`external_ports` go to `internal`:`internal_ports`, and the
/// internal server sees the client's real address (`iptables -t nat -A
/// PREROUTING -d EXTERNAL -p PROTO --dport PORTS -j DNAT --to INTERNAL:PORTS`).
/// Inside hosts reaching the same address and port are hairpinned: sent to
/// the internal server from their own outside mapping, so both directions
/// pass through the NAT.
///
/// Port `external_ports.0 + i` goes to `internal_ports.0 + i` when both
/// ranges are as long; an `internal_ports` of one port takes them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DnatRule {
    /// TCP or UDP.
    pub protocol: IpProtocol,
    pub external: IpAddr,
    /// First and last port, inclusive.
    pub external_ports: (u16, u16),
    pub internal: IpAddr,
    /// First and last port, inclusive.
    pub internal_ports: (u16, u16),
}

impl DnatRule {
    /// One published port: `external`:`port` to `internal`:`internal_port`.
    pub fn new(protocol: IpProtocol, external: IpAddr, port: u16, internal: IpAddr, internal_port: u16) -> DnatRule {
        DnatRule {
            protocol,
            external,
            external_ports: (port, port),
            internal,
            internal_ports: (internal_port, internal_port),
        }
    }

    /// Whether `port` on the external address is published by this rule.
    pub fn covers(&self, port: u16) -> bool {
        self.external_ports.0 <= port && port <= self.external_ports.1
    }

    /// The internal port for external `port` (which the rule covers).
    pub fn internal_port(&self, port: u16) -> u16 {
        if self.internal_ports.0 == self.internal_ports.1 {
            self.internal_ports.0
        } else {
            self.internal_ports.0.wrapping_add(port.wrapping_sub(self.external_ports.0))
        }
    }
}

/// A NAT's configuration. Build it with [`NatConfig::new`] (every default,
/// no rule) and the builder methods, or set the fields.
///
/// Connections are tracked per *zone*, a number the caller gives with each
/// packet (as netfilter's and Open vSwitch's conntrack zones): both
/// directions of a connection must come with the same zone. One gateway
/// passes one zone (0) for everything; separate zones keep overlapping
/// address spaces apart. Rules apply in every zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatConfig {
    /// Masquerade rules, tried in order: the first whose prefix holds the
    /// source wins.
    pub masquerade: Vec<Masquerade>,
    /// Published ports. Rules may not overlap.
    pub dnat: Vec<DnatRule>,
    /// Where replacement source ports for masqueraded TCP and UDP come from
    /// (inclusive). ICMP echo identifiers use the whole 16-bit space.
    pub port_range: (u16, u16),
    /// The most IPv4 connections tracked at once. The table is allocated up
    /// front (its memory is touched as it fills).
    pub max_entries: usize,
    /// The most IPv6 connections tracked at once.
    pub max_entries_v6: usize,
    pub timeouts: Timeouts,
    /// Pick up TCP connections in the middle (netfilter's
    /// `nf_conntrack_tcp_loose`, on by default): a segment without SYN that
    /// a rule applies to starts a connection in the established state, so
    /// flows survive a restart of the NAT when their port can be kept.
    /// Off: only a SYN starts a connection.
    pub tcp_loose: bool,
    /// The key of the hashes (table index and port choice). `None` draws a
    /// random one, so a remote sender cannot pick colliding tuples; tests and
    /// fuzzing fix it to be reproducible.
    pub hash_seed: Option<u64>,
}

impl NatConfig {
    /// Every default and no rule: such a NAT tracks nothing and passes
    /// everything.
    pub fn new() -> NatConfig {
        NatConfig {
            masquerade: Vec::new(),
            dnat: Vec::new(),
            port_range: DEFAULT_PORT_RANGE,
            max_entries: DEFAULT_MAX_ENTRIES,
            max_entries_v6: DEFAULT_MAX_ENTRIES,
            timeouts: Timeouts::default(),
            tcp_loose: true,
            hash_seed: None,
        }
    }

    /// Adds a masquerade rule.
    pub fn masquerade(mut self, inside: Prefix, outside: IpAddr) -> NatConfig {
        self.masquerade.push(Masquerade { inside, outside });
        self
    }

    /// Adds a published port.
    pub fn publish(mut self, rule: DnatRule) -> NatConfig {
        self.dnat.push(rule);
        self
    }

    /// Checks everything [`crate::nat::Nat::new`] relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (min, max) = self.port_range;
        if min == 0 || min > max {
            return Err(ConfigError::PortRange { min, max });
        }
        for max in [self.max_entries, self.max_entries_v6] {
            if max > MAX_ENTRIES {
                return Err(ConfigError::TooManyEntries(max));
            }
        }
        for (name, timeout) in self.timeouts.iter() {
            if timeout < Duration::from_secs(1) || timeout > MAX_TIMEOUT {
                return Err(ConfigError::Timeout { name, timeout });
            }
        }
        for rule in &self.masquerade {
            if !is_unicast(rule.outside) {
                return Err(ConfigError::BadOutside(rule.outside));
            }
            if rule.inside.addr().is_ipv4() != rule.outside.is_ipv4() {
                return Err(ConfigError::MasqueradeFamily { inside: rule.inside, outside: rule.outside });
            }
        }
        for (i, rule) in self.dnat.iter().enumerate() {
            validate_dnat(rule)?;
            if let Some(other) = self.dnat[..i].iter().find(|other| overlap(other, rule)) {
                return Err(ConfigError::DnatOverlap { first: *other, second: *rule });
            }
        }
        for v4 in [true, false] {
            let mut addrs: Vec<IpAddr> = self
                .masquerade
                .iter()
                .map(|rule| rule.outside)
                .chain(self.dnat.iter().map(|rule| rule.external))
                .filter(|addr| addr.is_ipv4() == v4)
                .collect();
            addrs.sort_unstable();
            addrs.dedup();
            if addrs.len() > MAX_OUTSIDE_ADDRS {
                return Err(ConfigError::TooManyOutsideAddrs(addrs.len()));
            }
        }
        Ok(())
    }
}

impl Default for NatConfig {
    fn default() -> NatConfig {
        NatConfig::new()
    }
}

fn validate_dnat(rule: &DnatRule) -> Result<(), ConfigError> {
    if !matches!(rule.protocol, IpProtocol::Tcp | IpProtocol::Udp) {
        return Err(ConfigError::DnatProtocol(rule.protocol));
    }
    for addr in [rule.external, rule.internal] {
        if !is_unicast(addr) {
            return Err(ConfigError::DnatAddress { rule: *rule, addr });
        }
    }
    if rule.external.is_ipv4() != rule.internal.is_ipv4() {
        return Err(ConfigError::DnatFamily(*rule));
    }
    for (lo, hi) in [rule.external_ports, rule.internal_ports] {
        if lo == 0 || lo > hi {
            return Err(ConfigError::DnatPorts(*rule));
        }
    }
    let external = rule.external_ports.1 - rule.external_ports.0;
    let internal = rule.internal_ports.1 - rule.internal_ports.0;
    if internal != 0 && internal != external {
        return Err(ConfigError::DnatPorts(*rule));
    }
    Ok(())
}

fn overlap(a: &DnatRule, b: &DnatRule) -> bool {
    a.protocol == b.protocol
        && a.external == b.external
        && a.external_ports.0 <= b.external_ports.1
        && b.external_ports.0 <= a.external_ports.1
}

/// Whether `ip` can be a NAT address: not unspecified, multicast, broadcast
/// or loopback.
fn is_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast() || v4.is_loopback()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast() || v6.is_loopback()),
    }
}

/// What is wrong with a [`NatConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("{0:?} is not an address prefix: write ADDR/LEN, such as 10.0.0.0/24 or fd00::/64")]
    BadPrefix(String),
    #[error("prefix length /{len} is too long for {addr}: at most /32 for IPv4 and /128 for IPv6")]
    PrefixLength { addr: IpAddr, len: u8 },
    #[error("masquerade port range {min}-{max} is not valid: it needs 1 <= MIN <= MAX (the default is 1024-65535)")]
    PortRange { min: u16, max: u16 },
    #[error("max_entries {0} is too large: at most 67108864 (the table is allocated up front)")]
    TooManyEntries(usize),
    #[error("timeout {name} of {timeout:?} is out of range: use 1 s to 2^30 s")]
    Timeout { name: &'static str, timeout: Duration },
    #[error("outside address {0} is not a unicast address: give the uplink's own address")]
    BadOutside(IpAddr),
    #[error("masquerade of {inside} to {outside} mixes address families: masquerade IPv4 to IPv4 and IPv6 to IPv6")]
    MasqueradeFamily { inside: Prefix, outside: IpAddr },
    #[error("published ports are TCP or UDP, not {0:?}")]
    DnatProtocol(IpProtocol),
    #[error("published port {rule:?} has address {addr}, which is not unicast")]
    DnatAddress { rule: DnatRule, addr: IpAddr },
    #[error("published port {0:?} mixes address families: publish IPv4 to IPv4 and IPv6 to IPv6")]
    DnatFamily(DnatRule),
    #[error(
        "published port {0:?} has a bad port range: ports are 1-65535, first <= last, and the internal range is \
         one port or as long as the external one"
    )]
    DnatPorts(DnatRule),
    #[error("published ports {first:?} and {second:?} overlap: a port on an address is published once")]
    DnatOverlap { first: DnatRule, second: DnatRule },
    #[error("{0} outside addresses of one family: at most 32")]
    TooManyOutsideAddrs(usize),
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const OUT: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
    const SERVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    fn good() -> NatConfig {
        NatConfig::new().masquerade("10.0.0.0/24".parse().unwrap(), OUT).publish(DnatRule::new(
            IpProtocol::Tcp,
            OUT,
            8080,
            SERVER,
            80,
        ))
    }

    #[test]
    fn prefixes() {
        let p: Prefix = "10.0.0.7/24".parse().unwrap();
        assert_eq!(p.to_string(), "10.0.0.0/24");
        assert!(p.contains("10.0.0.255".parse().unwrap()));
        assert!(!p.contains("10.0.1.0".parse().unwrap()));
        assert!(!p.contains("::a00:1".parse().unwrap()));
        let all: Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("198.51.100.1".parse().unwrap()));
        let host: Prefix = "192.0.2.1".parse().unwrap();
        assert_eq!(host.len(), 32);
        let v6: Prefix = "fd00::1:2/64".parse().unwrap();
        assert_eq!(v6.addr(), IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0)));
        assert!(v6.contains("fd00::ffff".parse().unwrap()));
        assert!(!v6.contains("fd00:0:0:1::".parse().unwrap()));
        assert_eq!(
            "10.0.0.0/33".parse::<Prefix>(),
            Err(ConfigError::PrefixLength { addr: "10.0.0.0".parse().unwrap(), len: 33 })
        );
        assert!(matches!("10.0.0/8".parse::<Prefix>(), Err(ConfigError::BadPrefix(_))));
        assert!(matches!("10.0.0.0/x".parse::<Prefix>(), Err(ConfigError::BadPrefix(_))));
    }

    #[test]
    fn dnat_port_mapping() {
        let one = DnatRule::new(IpProtocol::Tcp, OUT, 8080, SERVER, 80);
        assert!(one.covers(8080) && !one.covers(8081));
        assert_eq!(one.internal_port(8080), 80);
        let range = DnatRule { external_ports: (8000, 8010), internal_ports: (9000, 9010), ..one };
        assert_eq!(range.internal_port(8005), 9005);
        let many_to_one = DnatRule { external_ports: (8000, 8010), ..one };
        assert_eq!(many_to_one.internal_port(8007), 80);
    }

    #[test]
    fn validation() {
        good().validate().unwrap();
        let check = |f: &dyn Fn(&mut NatConfig)| {
            let mut config = good();
            f(&mut config);
            config.validate().unwrap_err()
        };
        assert_eq!(check(&|c| c.port_range = (0, 10)), ConfigError::PortRange { min: 0, max: 10 });
        assert_eq!(check(&|c| c.port_range = (10, 9)), ConfigError::PortRange { min: 10, max: 9 });
        assert_eq!(check(&|c| c.max_entries = MAX_ENTRIES + 1), ConfigError::TooManyEntries(MAX_ENTRIES + 1));
        assert!(matches!(check(&|c| c.timeouts.icmp = Duration::ZERO), ConfigError::Timeout { name: "icmp", .. }));
        assert_eq!(
            check(&|c| c.masquerade[0].outside = IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            ConfigError::BadOutside(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        );
        assert!(matches!(
            check(&|c| c.masquerade[0].inside = "fd00::/64".parse().unwrap()),
            ConfigError::MasqueradeFamily { .. }
        ));
        assert!(matches!(check(&|c| c.dnat[0].protocol = IpProtocol::Icmp), ConfigError::DnatProtocol(_)));
        assert!(matches!(check(&|c| c.dnat[0].internal = "fd00::2".parse().unwrap()), ConfigError::DnatFamily(_)));
        assert!(matches!(
            check(&|c| c.dnat[0].internal = IpAddr::V4(Ipv4Addr::BROADCAST)),
            ConfigError::DnatAddress { .. }
        ));
        assert!(matches!(check(&|c| c.dnat[0].external_ports = (0, 1)), ConfigError::DnatPorts(_)));
        assert!(matches!(
            check(&|c| {
                c.dnat[0].external_ports = (8000, 8010);
                c.dnat[0].internal_ports = (80, 81);
            }),
            ConfigError::DnatPorts(_)
        ));
        assert!(matches!(
            check(&|c| c.dnat.push(DnatRule { external_ports: (8070, 8090), ..c.dnat[0] })),
            ConfigError::DnatOverlap { .. }
        ));
        // The same port over UDP, or on another address, is another rule.
        let mut config = good();
        config.dnat.push(DnatRule { protocol: IpProtocol::Udp, ..config.dnat[0] });
        config.dnat.push(DnatRule { external: "203.0.113.11".parse().unwrap(), ..config.dnat[0] });
        config.validate().unwrap();
        assert_eq!(
            check(&|c| {
                for i in 0..33u8 {
                    c.masquerade.push(Masquerade {
                        inside: "10.0.0.0/24".parse().unwrap(),
                        outside: IpAddr::V4(Ipv4Addr::new(198, 51, 100, i + 1)),
                    });
                }
            }),
            ConfigError::TooManyOutsideAddrs(34)
        );
    }
}
