//! The VTEP's configuration and its validation: the underlay address and UDP
//! ports, the FDB's limits, and one [`VniConfig`] per VXLAN network (its local
//! port, flood list, static FDB entries and neighbours).
//!
//! Everything is checked up front by [`VtepConfig::validate`] (which
//! [`crate::vxlan::Vtep::new`] calls), so the engine never meets a
//! configuration it cannot honour. Each [`ConfigError`] names the value that
//! is wrong and says what to use instead.
//!
//! What this module does not do: parse command lines or files (the runner's
//! job), or change anything at run time.

use core::fmt;
use core::net::IpAddr;
use std::time::Duration;

use thiserror::Error;

use crate::wire::vxlan::{self, Vni};
use crate::wire::EthernetAddress;

/// A local port: the runner's index of a TAP device or interface. Each VNI is
/// bound to exactly one port, and a port to at most one VNI.
pub type PortId = u16;

/// The default UDP source-port range, RFC 7348 §5's recommendation (the
/// dynamic/private ports). The Linux kernel uses the host's local port range
/// when none is given.
pub const DEFAULT_SRC_PORT_RANGE: (u16, u16) = (49152, 65535);

/// The default outer TTL or hop limit.
pub const DEFAULT_TTL: u8 = 64;

/// The default FDB ageing time, the Linux kernel's (`ageing 300`).
pub const DEFAULT_AGEING: Duration = Duration::from_secs(300);

/// The default cap on learned FDB entries, for the whole VTEP (all VNIs).
pub const DEFAULT_MAX_FDB_ENTRIES: usize = 65536;

/// The default cap on snooped neighbour entries, for the whole VTEP.
pub const DEFAULT_MAX_NEIGHBOURS: usize = 4096;

/// The default underlay MTU: Ethernet's.
pub const DEFAULT_UNDERLAY_MTU: u16 = 1500;

/// The largest `max_fdb_entries` or `max_neighbours` accepted: both tables
/// are allocated in full at construction.
pub const MAX_TABLE_ENTRIES: usize = 1 << 24;

/// The longest ageing time accepted: the kernel's `ageing` is a 32-bit number
/// of seconds.
pub const MAX_AGEING: Duration = Duration::from_secs(u32::MAX as u64);

/// The smallest inner IPv4 MTU (RFC 791): the underlay must leave at least
/// this much room after the overhead.
const MIN_INNER_MTU: u16 = 68;

/// IPv6 links carry at least 1280 bytes (RFC 8200 §5).
const MIN_IPV6_MTU: u16 = 1280;

/// One VXLAN network: its VNI, the local port it is bound to, and its FDB and
/// neighbour seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VniConfig {
    pub vni: Vni,
    /// The local port whose frames are encapsulated with this VNI, and where
    /// decapsulated frames of this VNI are delivered.
    pub port: PortId,
    /// The flood list: the remote VTEPs that get broadcast, multicast and
    /// unknown-unicast frames (head-end replication). These are the kernel's
    /// all-zeros FDB entries (`bridge fdb append 00:00:00:00:00:00 dst IP`).
    pub remotes: Vec<IpAddr>,
    /// Static FDB entries: inner MAC → remote VTEP. Never aged, never moved
    /// by learning (`bridge fdb add MAC dst IP static`).
    pub static_fdb: Vec<(EthernetAddress, IpAddr)>,
    /// Static neighbours for neighbour suppression: inner IP → MAC
    /// (`ip neigh add IP lladdr MAC dev vxlan0`). Used only when
    /// [`VtepConfig::proxy`] is on.
    pub neighbours: Vec<(IpAddr, EthernetAddress)>,
}

impl VniConfig {
    /// A VNI bound to `port`, with no remotes, static entries or neighbours.
    pub fn new(vni: Vni, port: PortId) -> VniConfig {
        VniConfig { vni, port, remotes: Vec::new(), static_fdb: Vec::new(), neighbours: Vec::new() }
    }

    /// Adds `remote` to the flood list.
    pub fn remote(mut self, remote: IpAddr) -> VniConfig {
        self.remotes.push(remote);
        self
    }

    /// Adds a static FDB entry.
    pub fn static_entry(mut self, mac: EthernetAddress, remote: IpAddr) -> VniConfig {
        self.static_fdb.push((mac, remote));
        self
    }

    /// Adds a static neighbour.
    pub fn neighbour(mut self, ip: IpAddr, mac: EthernetAddress) -> VniConfig {
        self.neighbours.push((ip, mac));
        self
    }
}

/// A VTEP's configuration. Build it with [`VtepConfig::new`] (every field at
/// its default) and set fields or use the builder methods; [`Default`] gives
/// an unspecified local address, which [`VtepConfig::validate`] refuses.
///
/// Kernel equivalents are given as `ip link add type vxlan` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VtepConfig {
    /// This host's underlay address (`local`): the outer source address, and
    /// the family every remote must share.
    pub local: IpAddr,
    /// The UDP destination port (`dstport`): [`vxlan::IANA_PORT`] (4789) by
    /// default; [`vxlan::LINUX_PORT`] (8472) for the kernel's and flannel's
    /// default.
    pub dst_port: u16,
    /// The UDP source-port range (`srcport MIN MAX`). Like the kernel, ports
    /// are drawn from `MIN..MAX` (MAX itself only when MIN == MAX).
    pub src_port_range: (u16, u16),
    /// The outer TTL / hop limit (`ttl`).
    pub ttl: u8,
    /// Learn inner source MAC → outer source address from received frames
    /// (`learning` / `nolearning`).
    pub learning: bool,
    /// How long a learned FDB entry (and a snooped neighbour) lives without
    /// traffic (`ageing`).
    pub ageing: Duration,
    /// The most learned FDB entries, counted over the whole VTEP (all VNIs
    /// together; static entries come on top). The kernel's `maxaddress` is
    /// per device, i.e. per VNI; one shared table keeps memory bounded and
    /// preallocated however many VNIs there are. A new MAC when full is not
    /// learned (counted `fdb_full`) and its frame is still delivered.
    pub max_fdb_entries: usize,
    /// The most neighbours snooped from received ARP and NA frames, over the
    /// whole VTEP (static neighbours come on top).
    pub max_neighbours: usize,
    /// Neighbour suppression (`proxy`): answer ARP requests and neighbour
    /// solicitations for known addresses locally.
    pub proxy: bool,
    /// Compute the outer UDP checksum over IPv4 (`udpcsum`); zero otherwise.
    pub udp_checksum_v4: bool,
    /// Accept a zero UDP checksum over IPv6 (`udp6zerocsumrx`, RFC 6935).
    pub udp6_zero_checksum_rx: bool,
    /// Send a zero UDP checksum over IPv6 (`udp6zerocsumtx`).
    pub udp6_zero_checksum_tx: bool,
    /// Carry inner frames with an 802.1Q or 802.1ad tag. Off by default
    /// (RFC 7348 §6.1): tagged frames are dropped both ways (`inner_vlan`).
    pub allow_inner_vlan: bool,
    /// The underlay path MTU: an inner frame whose outer packet would exceed
    /// it is dropped (`too_big`), never fragmented (RFC 7348 §4.3).
    pub underlay_mtu: u16,
    /// With a too-big frame, answer the sender: ICMP fragmentation needed for
    /// IPv4 with DF (RFC 1191), ICMPv6 packet too big for IPv6 (RFC 8201).
    pub frag_needed: bool,
    /// Set DF on outer IPv4 headers written by `write_outer` (`df set`). Off
    /// by default, like the kernel's `df unset`.
    pub outer_df: bool,
    /// Accept VXLAN only from the VNI's known peers (its flood list and the
    /// remotes of its static entries); others are dropped (`unknown_peer`).
    /// Off by default: the kernel accepts any source.
    pub only_known_peers: bool,
    /// The VXLAN networks.
    pub vnis: Vec<VniConfig>,
}

impl VtepConfig {
    /// A configuration with every default and no VNI yet.
    pub fn new(local: IpAddr) -> VtepConfig {
        VtepConfig {
            local,
            dst_port: vxlan::IANA_PORT,
            src_port_range: DEFAULT_SRC_PORT_RANGE,
            ttl: DEFAULT_TTL,
            learning: true,
            ageing: DEFAULT_AGEING,
            max_fdb_entries: DEFAULT_MAX_FDB_ENTRIES,
            max_neighbours: DEFAULT_MAX_NEIGHBOURS,
            proxy: false,
            udp_checksum_v4: false,
            udp6_zero_checksum_rx: false,
            udp6_zero_checksum_tx: false,
            allow_inner_vlan: false,
            underlay_mtu: DEFAULT_UNDERLAY_MTU,
            frag_needed: false,
            outer_df: false,
            only_known_peers: false,
            vnis: Vec::new(),
        }
    }

    /// Adds a VNI.
    pub fn vni(mut self, vni: VniConfig) -> VtepConfig {
        self.vnis.push(vni);
        self
    }

    /// The bytes the outer headers add to an inner frame: IPv4 or IPv6, UDP
    /// and VXLAN (36 or 56). The often-quoted 50 and 70 count the inner
    /// Ethernet header too.
    pub fn outer_overhead(&self) -> usize {
        outer_ip_len(self.local) + crate::wire::udp::HEADER_LEN + vxlan::HEADER_LEN
    }

    /// The longest inner frame (Ethernet header included) that fits the
    /// underlay MTU.
    pub fn max_inner_frame(&self) -> usize {
        usize::from(self.underlay_mtu).saturating_sub(self.outer_overhead())
    }

    /// Checks everything [`crate::vxlan::Vtep::new`] relies on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let local = self.local.to_canonical();
        if !is_unicast(local) {
            return Err(ConfigError::BadLocal(self.local));
        }
        if self.dst_port == 0 {
            return Err(ConfigError::ZeroDstPort);
        }
        let (min, max) = self.src_port_range;
        if min == 0 || min > max {
            return Err(ConfigError::SrcPortRange { min, max });
        }
        if self.ttl == 0 {
            return Err(ConfigError::ZeroTtl);
        }
        if self.ageing < Duration::from_millis(1) || self.ageing > MAX_AGEING {
            return Err(ConfigError::AgeingRange(self.ageing));
        }
        if self.max_fdb_entries > MAX_TABLE_ENTRIES {
            return Err(ConfigError::TooManyFdbEntries(self.max_fdb_entries));
        }
        if self.max_neighbours > MAX_TABLE_ENTRIES {
            return Err(ConfigError::TooManyNeighbours(self.max_neighbours));
        }
        let ipv6 = local.is_ipv6();
        let overhead = u16::try_from(self.outer_overhead()).unwrap_or(u16::MAX);
        let min_mtu =
            if ipv6 { MIN_IPV6_MTU } else { overhead + crate::wire::ethernet::HEADER_LEN as u16 + MIN_INNER_MTU };
        if self.underlay_mtu < min_mtu {
            return Err(ConfigError::MtuTooSmall { mtu: self.underlay_mtu, min: min_mtu, family: Family::of(local) });
        }
        if self.vnis.is_empty() {
            return Err(ConfigError::NoVni);
        }
        for (i, vni) in self.vnis.iter().enumerate() {
            for earlier in &self.vnis[..i] {
                if earlier.vni == vni.vni {
                    return Err(ConfigError::DuplicateVni(vni.vni));
                }
                if earlier.port == vni.port {
                    return Err(ConfigError::DuplicatePort { port: vni.port, first: earlier.vni, second: vni.vni });
                }
            }
            self.validate_vni(local, vni)?;
        }
        Ok(())
    }

    fn validate_vni(&self, local: IpAddr, config: &VniConfig) -> Result<(), ConfigError> {
        let vni = config.vni;
        let check_remote = |remote: IpAddr| {
            let canonical = remote.to_canonical();
            if !is_unicast(canonical) {
                Err(ConfigError::BadRemote { vni, remote })
            } else if canonical.is_ipv6() != local.is_ipv6() {
                Err(ConfigError::FamilyMismatch { vni, remote, local: self.local })
            } else if canonical == local {
                Err(ConfigError::RemoteIsLocal { vni, remote })
            } else {
                Ok(canonical)
            }
        };
        for (i, &remote) in config.remotes.iter().enumerate() {
            let canonical = check_remote(remote)?;
            if config.remotes[..i].iter().any(|r| r.to_canonical() == canonical) {
                return Err(ConfigError::DuplicateRemote { vni, remote });
            }
        }
        for (i, &(mac, remote)) in config.static_fdb.iter().enumerate() {
            if !mac.is_unicast() || mac == EthernetAddress::default() {
                return Err(ConfigError::BadStaticMac { vni, mac });
            }
            check_remote(remote)?;
            if config.static_fdb[..i].iter().any(|&(m, _)| m == mac) {
                return Err(ConfigError::DuplicateStaticMac { vni, mac });
            }
        }
        for (i, &(ip, mac)) in config.neighbours.iter().enumerate() {
            if !is_unicast(ip.to_canonical()) || !mac.is_unicast() || mac == EthernetAddress::default() {
                return Err(ConfigError::BadNeighbour { vni, ip, mac });
            }
            if config.neighbours[..i].iter().any(|&(other, _)| other.to_canonical() == ip.to_canonical()) {
                return Err(ConfigError::DuplicateNeighbour { vni, ip });
            }
        }
        Ok(())
    }
}

impl Default for VtepConfig {
    /// Every default, with the unspecified IPv4 address as `local`: set it.
    fn default() -> VtepConfig {
        VtepConfig::new(IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED))
    }
}

/// The length of the outer IP header for a VTEP at `local`.
pub(crate) fn outer_ip_len(local: IpAddr) -> usize {
    match local.to_canonical() {
        IpAddr::V4(_) => crate::wire::ipv4::HEADER_LEN,
        IpAddr::V6(_) => crate::wire::ipv6::HEADER_LEN,
    }
}

/// Whether `ip` can be a tunnel endpoint or a neighbour: not unspecified,
/// multicast, broadcast or loopback.
pub(crate) fn is_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast() || v4.is_loopback()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast() || v6.is_loopback()),
    }
}

/// An address family, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    fn of(ip: IpAddr) -> Family {
        if ip.to_canonical().is_ipv6() {
            Family::Ipv6
        } else {
            Family::Ipv4
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Ipv4 => "IPv4",
            Family::Ipv6 => "IPv6",
        })
    }
}

/// What is wrong with a [`VtepConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("local underlay address {0} is not a unicast address: give this host's own address on the underlay")]
    BadLocal(IpAddr),
    #[error(
        "UDP destination port 0 is not usable: use 4789 (IANA) or 8472 (the Linux kernel's and flannel's default)"
    )]
    ZeroDstPort,
    #[error("UDP source port range {min}-{max} is not valid: it needs 1 <= MIN <= MAX (the default is 49152-65535)")]
    SrcPortRange { min: u16, max: u16 },
    #[error("TTL 0 would be dropped at the first hop: use 1-255 (the default is 64)")]
    ZeroTtl,
    #[error("FDB ageing time {0:?} is out of range: use 1 ms to 4294967295 s (the default is 300 s)")]
    AgeingRange(Duration),
    #[error("max_fdb_entries {0} is too large: at most 16777216 (the table is allocated up front)")]
    TooManyFdbEntries(usize),
    #[error("max_neighbours {0} is too large: at most 16777216 (the table is allocated up front)")]
    TooManyNeighbours(usize),
    #[error("underlay MTU {mtu} is too small for VXLAN over {family}: use at least {min}")]
    MtuTooSmall { mtu: u16, min: u16, family: Family },
    #[error("no VNI configured: give at least one VNI and the port it is bound to")]
    NoVni,
    #[error("VNI {0} is configured twice: give each VNI once, with all its remotes")]
    DuplicateVni(Vni),
    #[error("port {port} is bound to both VNI {first} and VNI {second}: a port carries one VNI")]
    DuplicatePort { port: PortId, first: Vni, second: Vni },
    #[error(
        "remote {remote} of VNI {vni} is not a unicast address: multicast groups are not supported, list each \
         peer VTEP instead"
    )]
    BadRemote { vni: Vni, remote: IpAddr },
    #[error("remote {remote} of VNI {vni} and the local address {local} are of different families: use one family for the underlay")]
    FamilyMismatch { vni: Vni, remote: IpAddr, local: IpAddr },
    #[error("remote {remote} of VNI {vni} is the local address: list only the other VTEPs")]
    RemoteIsLocal { vni: Vni, remote: IpAddr },
    #[error("remote {remote} is listed twice for VNI {vni}")]
    DuplicateRemote { vni: Vni, remote: IpAddr },
    #[error(
        "static FDB entry {mac} of VNI {vni} is not an individual MAC address: the flood list (the kernel's \
         00:00:00:00:00:00 entries) is the VNI's remotes, and group addresses always flood"
    )]
    BadStaticMac { vni: Vni, mac: EthernetAddress },
    #[error("static FDB entry {mac} of VNI {vni} is given twice: a MAC has one remote")]
    DuplicateStaticMac { vni: Vni, mac: EthernetAddress },
    #[error("neighbour {ip} lladdr {mac} of VNI {vni} is not valid: the address and the MAC must both be unicast")]
    BadNeighbour { vni: Vni, ip: IpAddr, mac: EthernetAddress },
    #[error("neighbour {ip} of VNI {vni} is given twice: an address has one MAC")]
    DuplicateNeighbour { vni: Vni, ip: IpAddr },
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    const PEER6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
    const MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);

    fn vni(n: u32) -> Vni {
        Vni::new(n).unwrap()
    }

    fn good() -> VtepConfig {
        VtepConfig::new(LOCAL).vni(VniConfig::new(vni(42), 0).remote(PEER))
    }

    #[test]
    fn defaults() {
        let config = good();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.dst_port, 4789);
        assert_eq!(config.src_port_range, (49152, 65535));
        assert_eq!(config.ttl, 64);
        assert!(config.learning && !config.proxy && !config.udp_checksum_v4);
        assert!(!config.udp6_zero_checksum_rx && !config.udp6_zero_checksum_tx && !config.allow_inner_vlan);
        assert_eq!(config.ageing, Duration::from_secs(300));
        assert_eq!(config.underlay_mtu, 1500);
        assert_eq!(config.outer_overhead(), 36);
        assert_eq!(config.max_inner_frame(), 1464);
        let v6 = VtepConfig { local: "2001:db8::1".parse().unwrap(), ..good() };
        assert_eq!(v6.outer_overhead(), 56);
        assert_eq!(VtepConfig::default().validate(), Err(ConfigError::BadLocal(Ipv4Addr::UNSPECIFIED.into())));
    }

    #[test]
    fn every_error() {
        let v6_local: IpAddr = "2001:db8::1".parse().unwrap();
        let with_vni = |v: VniConfig| VtepConfig { vnis: vec![v], ..good() };
        let cases: Vec<(VtepConfig, ConfigError)> = vec![
            (
                VtepConfig { local: "224.0.0.1".parse().unwrap(), ..good() },
                ConfigError::BadLocal("224.0.0.1".parse().unwrap()),
            ),
            (VtepConfig { dst_port: 0, ..good() }, ConfigError::ZeroDstPort),
            (VtepConfig { src_port_range: (2, 1), ..good() }, ConfigError::SrcPortRange { min: 2, max: 1 }),
            (VtepConfig { src_port_range: (0, 1), ..good() }, ConfigError::SrcPortRange { min: 0, max: 1 }),
            (VtepConfig { ttl: 0, ..good() }, ConfigError::ZeroTtl),
            (VtepConfig { ageing: Duration::ZERO, ..good() }, ConfigError::AgeingRange(Duration::ZERO)),
            (VtepConfig { max_fdb_entries: usize::MAX, ..good() }, ConfigError::TooManyFdbEntries(usize::MAX)),
            (VtepConfig { max_neighbours: usize::MAX, ..good() }, ConfigError::TooManyNeighbours(usize::MAX)),
            (
                VtepConfig { underlay_mtu: 117, ..good() },
                ConfigError::MtuTooSmall { mtu: 117, min: 118, family: Family::Ipv4 },
            ),
            (
                VtepConfig { local: v6_local, underlay_mtu: 1279, vnis: vec![VniConfig::new(vni(1), 0)], ..good() },
                ConfigError::MtuTooSmall { mtu: 1279, min: 1280, family: Family::Ipv6 },
            ),
            (VtepConfig { vnis: vec![], ..good() }, ConfigError::NoVni),
            (good().vni(VniConfig::new(vni(42), 1)), ConfigError::DuplicateVni(vni(42))),
            (
                good().vni(VniConfig::new(vni(43), 0)),
                ConfigError::DuplicatePort { port: 0, first: vni(42), second: vni(43) },
            ),
            (
                with_vni(VniConfig::new(vni(7), 0).remote("239.1.1.1".parse().unwrap())),
                ConfigError::BadRemote { vni: vni(7), remote: "239.1.1.1".parse().unwrap() },
            ),
            (
                with_vni(VniConfig::new(vni(7), 0).remote(PEER6)),
                ConfigError::FamilyMismatch { vni: vni(7), remote: PEER6, local: LOCAL },
            ),
            (
                with_vni(VniConfig::new(vni(7), 0).remote(LOCAL)),
                ConfigError::RemoteIsLocal { vni: vni(7), remote: LOCAL },
            ),
            (
                with_vni(VniConfig::new(vni(7), 0).remote(PEER).remote(PEER)),
                ConfigError::DuplicateRemote { vni: vni(7), remote: PEER },
            ),
            (
                with_vni(VniConfig::new(vni(7), 0).static_entry(EthernetAddress::BROADCAST, PEER)),
                ConfigError::BadStaticMac { vni: vni(7), mac: EthernetAddress::BROADCAST },
            ),
            (
                with_vni(VniConfig::new(vni(7), 0).static_entry(EthernetAddress::default(), PEER)),
                ConfigError::BadStaticMac { vni: vni(7), mac: EthernetAddress::default() },
            ),
            (
                with_vni(VniConfig::new(vni(7), 0).static_entry(MAC, PEER6)),
                ConfigError::FamilyMismatch { vni: vni(7), remote: PEER6, local: LOCAL },
            ),
            (
                with_vni(VniConfig::new(vni(7), 0).static_entry(MAC, PEER).static_entry(MAC, PEER)),
                ConfigError::DuplicateStaticMac { vni: vni(7), mac: MAC },
            ),
            (
                with_vni(
                    VniConfig::new(vni(7), 0).neighbour("198.51.100.1".parse().unwrap(), EthernetAddress::BROADCAST),
                ),
                ConfigError::BadNeighbour {
                    vni: vni(7),
                    ip: "198.51.100.1".parse().unwrap(),
                    mac: EthernetAddress::BROADCAST,
                },
            ),
            (
                with_vni(
                    VniConfig::new(vni(7), 0)
                        .neighbour("198.51.100.1".parse().unwrap(), MAC)
                        .neighbour("198.51.100.1".parse().unwrap(), MAC),
                ),
                ConfigError::DuplicateNeighbour { vni: vni(7), ip: "198.51.100.1".parse().unwrap() },
            ),
        ];
        for (config, error) in cases {
            assert_eq!(config.validate(), Err(error.clone()), "{config:?}");
            assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        let error = good().vni(VniConfig::new(vni(43), 0)).validate().unwrap_err();
        assert_eq!(error.to_string(), "port 0 is bound to both VNI 42 and VNI 43: a port carries one VNI");
        let error =
            VtepConfig { vnis: vec![VniConfig::new(vni(7), 0).remote(PEER6)], ..good() }.validate().unwrap_err();
        assert_eq!(
            error.to_string(),
            "remote 2001:db8::2 of VNI 7 and the local address 192.0.2.1 are of different families: use one family \
             for the underlay"
        );
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let mapped: IpAddr = "::ffff:192.0.2.2".parse().unwrap();
        assert_eq!(VtepConfig { vnis: vec![VniConfig::new(vni(1), 0).remote(mapped)], ..good() }.validate(), Ok(()));
    }
}
