//! What a user asks of `wharf vtep`, from flags or a TOML file, validated
//! before anything is created: the VNIs, the local port each is bound to
//! (a TAP device or an existing interface), the underlay, and the options
//! that mirror `ip link add type vxlan`.
//!
//! This module only reads and checks; the runner turns a [`Spec`] into the
//! data plane's `VtepConfig` and opens the devices.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dataplane::wire::EthernetAddress;
use serde::Deserialize;

/// Why a VTEP specification was refused. Each message names the flag or key.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("read config {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> SpecError {
    SpecError::Invalid(message.into())
}

/// Where a VNI's frames enter and leave on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalPort {
    /// A TAP device, created if missing (or attached if it exists).
    Tap(String),
    /// An existing interface (a veth end, say), read and written with
    /// AF_PACKET.
    Dev(String),
}

impl LocalPort {
    pub fn name(&self) -> &str {
        match self {
            LocalPort::Tap(name) | LocalPort::Dev(name) => name,
        }
    }
}

/// One VNI: its local port, its flood list, static FDB and neighbour
/// entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VniSpec {
    pub vni: u32,
    pub port: LocalPort,
    pub remotes: Vec<IpAddr>,
    pub fdb: Vec<(EthernetAddress, IpAddr)>,
    pub neighbours: Vec<(IpAddr, EthernetAddress)>,
}

/// A whole VTEP, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub local: IpAddr,
    pub dst_port: u16,
    pub src_ports: (u16, u16),
    pub ttl: u8,
    pub learning: bool,
    pub proxy: bool,
    pub ageing: Duration,
    pub max_addresses: usize,
    pub udp_checksum: bool,
    pub udp6_zero_checksum_tx: bool,
    pub udp6_zero_checksum_rx: bool,
    pub underlay_mtu: u16,
    /// Answer frames too big for the underlay with ICMP fragmentation
    /// needed (IPv4 with DF) or ICMPv6 packet too big.
    pub frag_needed: bool,
    /// TCP superframes go to the kernel whole, as UDP-tunnel GSO (see
    /// [`super::tunnel`]).
    pub tunnel_gso: bool,
    pub vnis: Vec<VniSpec>,
}

/// Defaults, as the kernel's vxlan has them where it has them.
pub const DEFAULT_DST_PORT: u16 = 4789;
pub const DEFAULT_SRC_PORTS: (u16, u16) = (49152, 65535);
pub const DEFAULT_TTL: u8 = 64;
pub const DEFAULT_AGEING_SECS: u64 = 300;
pub const DEFAULT_MAX_ADDRESSES: usize = 65536;
pub const DEFAULT_UNDERLAY_MTU: u16 = 1500;

/// The TOML file behind `--config`. Keys follow `ip link add type vxlan`.
///
/// ```toml
/// local = "192.0.2.1"
/// dstport = 4789
/// srcport = [49152, 65535]
/// learning = true
/// proxy = false
///
/// [[vni]]
/// id = 42
/// tap = "wh42"
/// remotes = ["192.0.2.2", "192.0.2.3"]
/// fdb = [{ mac = "02:00:00:00:00:05", remote = "192.0.2.3" }]
/// neighbours = [{ ip = "198.51.100.5", mac = "02:00:00:00:00:05" }]
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub local: Option<IpAddr>,
    pub dstport: Option<u16>,
    pub srcport: Option<(u16, u16)>,
    pub ttl: Option<u8>,
    pub learning: Option<bool>,
    pub proxy: Option<bool>,
    pub ageing: Option<u64>,
    pub maxaddress: Option<usize>,
    pub udpcsum: Option<bool>,
    pub udp6zerocsumtx: Option<bool>,
    pub udp6zerocsumrx: Option<bool>,
    pub mtu: Option<u16>,
    pub frag_needed: Option<bool>,
    pub tunnel_gso: Option<bool>,
    #[serde(default)]
    pub vni: Vec<FileVni>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileVni {
    pub id: u32,
    pub tap: Option<String>,
    pub dev: Option<String>,
    #[serde(default)]
    pub remotes: Vec<IpAddr>,
    #[serde(default)]
    pub fdb: Vec<FileFdb>,
    #[serde(default)]
    pub neighbours: Vec<FileNeighbour>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileFdb {
    pub mac: String,
    pub remote: IpAddr,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileNeighbour {
    pub ip: IpAddr,
    pub mac: String,
}

impl File {
    pub fn load(path: &Path) -> Result<File, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read { path: path.to_owned(), source })?;
        toml::from_str(&text).map_err(|e| SpecError::Parse { path: path.to_owned(), message: e.to_string() })
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`, naming the text when it is not a MAC address.
pub fn parse_mac(text: &str) -> Result<EthernetAddress, SpecError> {
    text.parse().map_err(|_| invalid(format!("MAC address {text:?}")))
}

/// A device name the kernel accepts: 1 to 15 bytes, no '/', ':' or space.
fn check_ifname(name: &str) -> Result<(), SpecError> {
    if name.is_empty() || name.len() > 15 || name.contains(['/', ':', ' ']) || name == "." || name == ".." {
        return Err(invalid(format!("interface name {name:?}: 1 to 15 characters, no '/', ':' or spaces")));
    }
    Ok(())
}

impl File {
    /// Validates the file into a [`Spec`].
    pub fn into_spec(self) -> Result<Spec, SpecError> {
        self.into_unvalidated_spec()?.validated()
    }

    /// The file as a [`Spec`], its MACs parsed and defaults filled in, not
    /// yet validated: flags may still add a VNI.
    pub fn into_unvalidated_spec(self) -> Result<Spec, SpecError> {
        let local = self.local.ok_or_else(|| invalid("config: `local` (the underlay address) is required"))?;
        let mut vnis = Vec::with_capacity(self.vni.len());
        for v in self.vni {
            let port = match (v.tap, v.dev) {
                (Some(tap), None) => LocalPort::Tap(tap),
                (None, Some(dev)) => LocalPort::Dev(dev),
                _ => return Err(invalid(format!("config: vni {} needs exactly one of `tap` or `dev`", v.id))),
            };
            let fdb =
                v.fdb.iter().map(|e| Ok((parse_mac(&e.mac)?, e.remote))).collect::<Result<Vec<_>, SpecError>>()?;
            let neighbours =
                v.neighbours.iter().map(|n| Ok((n.ip, parse_mac(&n.mac)?))).collect::<Result<Vec<_>, SpecError>>()?;
            vnis.push(VniSpec { vni: v.id, port, remotes: v.remotes, fdb, neighbours });
        }
        Ok(Spec {
            local,
            dst_port: self.dstport.unwrap_or(DEFAULT_DST_PORT),
            src_ports: self.srcport.unwrap_or(DEFAULT_SRC_PORTS),
            ttl: self.ttl.unwrap_or(DEFAULT_TTL),
            learning: self.learning.unwrap_or(true),
            proxy: self.proxy.unwrap_or(false),
            ageing: Duration::from_secs(self.ageing.unwrap_or(DEFAULT_AGEING_SECS)),
            max_addresses: self.maxaddress.unwrap_or(DEFAULT_MAX_ADDRESSES),
            udp_checksum: self.udpcsum.unwrap_or(false),
            udp6_zero_checksum_tx: self.udp6zerocsumtx.unwrap_or(false),
            udp6_zero_checksum_rx: self.udp6zerocsumrx.unwrap_or(false),
            underlay_mtu: self.mtu.unwrap_or(DEFAULT_UNDERLAY_MTU),
            frag_needed: self.frag_needed.unwrap_or(false),
            tunnel_gso: self.tunnel_gso.unwrap_or(false),
            vnis,
        })
    }
}

impl Spec {
    /// Checks what the data plane would otherwise refuse later, with the
    /// flag's name in the message.
    pub fn validated(self) -> Result<Spec, SpecError> {
        if self.vnis.is_empty() {
            return Err(invalid("no VNI: give --vni with --tap or --dev, or [[vni]] in --config"));
        }
        if self.dst_port == 0 {
            return Err(invalid("--dstport: 0 is not a port"));
        }
        let (min, max) = self.src_ports;
        if min == 0 || min > max {
            return Err(invalid(format!("--srcport {min} {max}: need 1 <= MIN <= MAX")));
        }
        if self.ttl == 0 {
            return Err(invalid("--ttl: 1 to 255"));
        }
        if self.max_addresses == 0 {
            return Err(invalid("--maxaddress: at least 1"));
        }
        if self.underlay_mtu < 1280 {
            return Err(invalid(format!("--mtu {}: the underlay MTU must be at least 1280", self.underlay_mtu)));
        }
        if self.tunnel_gso && !self.local.is_ipv4() {
            return Err(invalid("--tunnel-gso: over an IPv4 underlay only (--local is IPv6)"));
        }
        if self.local.is_unspecified() || self.local.is_multicast() {
            return Err(invalid(format!("--local {}: a unicast address of this host", self.local)));
        }
        let mut seen_vni = HashSet::new();
        let mut seen_port = HashSet::new();
        for v in &self.vnis {
            if v.vni >= 1 << 24 {
                return Err(invalid(format!("--vni {}: a VNI is 24 bits (0 to 16777215)", v.vni)));
            }
            if !seen_vni.insert(v.vni) {
                return Err(invalid(format!("vni {} is given twice", v.vni)));
            }
            check_ifname(v.port.name())?;
            if !seen_port.insert(v.port.name().to_owned()) {
                return Err(invalid(format!("{} is bound to two VNIs", v.port.name())));
            }
            for remote in v.remotes.iter().chain(v.fdb.iter().map(|(_, r)| r)) {
                if remote.is_ipv4() != self.local.is_ipv4() {
                    return Err(invalid(format!("remote {remote} and local {} are of different families", self.local)));
                }
                if remote.is_unspecified() || remote == &self.local {
                    return Err(invalid(format!("remote {remote}: not a peer address")));
                }
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        local = "192.0.2.1"
        dstport = 8472
        srcport = [40000, 40100]
        proxy = true

        [[vni]]
        id = 42
        tap = "wh42"
        remotes = ["192.0.2.2", "192.0.2.3"]
        fdb = [{ mac = "02:00:00:00:00:05", remote = "192.0.2.3" }]
        neighbours = [{ ip = "198.51.100.5", mac = "02:00:00:00:00:05" }]

        [[vni]]
        id = 43
        dev = "veth43"
    "#;

    #[test]
    fn file_round_trip() {
        let spec = toml::from_str::<File>(FILE).unwrap().into_spec().unwrap();
        assert_eq!(spec.dst_port, 8472);
        assert_eq!(spec.src_ports, (40000, 40100));
        assert!(spec.proxy && spec.learning);
        assert_eq!(spec.ageing, Duration::from_secs(300));
        assert_eq!(spec.vnis.len(), 2);
        assert_eq!(spec.vnis[0].port, LocalPort::Tap("wh42".into()));
        assert_eq!(spec.vnis[0].fdb, vec![(EthernetAddress([2, 0, 0, 0, 0, 5]), "192.0.2.3".parse().unwrap())]);
        assert_eq!(spec.vnis[1].port, LocalPort::Dev("veth43".into()));
        assert!(!spec.tunnel_gso);
        let with = format!("tunnel_gso = true\n{FILE}");
        assert!(toml::from_str::<File>(&with).unwrap().into_spec().unwrap().tunnel_gso);
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let cases = [
            ("dstport = 4789", "`local`"),
            ("local = \"192.0.2.1\"", "no VNI"),
            ("local = \"192.0.2.1\"\n[[vni]]\nid = 16777216\ntap = \"t\"", "24 bits"),
            ("local = \"192.0.2.1\"\n[[vni]]\nid = 1\ntap = \"t\"\ndev = \"d\"", "exactly one"),
            ("local = \"192.0.2.1\"\n[[vni]]\nid = 1\ntap = \"t\"\nremotes = [\"2001:db8::2\"]", "different families"),
            ("local = \"192.0.2.1\"\n[[vni]]\nid = 1\ntap = \"t\"\n[[vni]]\nid = 1\ntap = \"u\"", "twice"),
            ("local = \"192.0.2.1\"\n[[vni]]\nid = 1\ntap = \"t\"\n[[vni]]\nid = 2\ntap = \"t\"", "two VNIs"),
            ("local = \"192.0.2.1\"\nsrcport = [5, 1]\n[[vni]]\nid = 1\ntap = \"t\"", "MIN <= MAX"),
            ("local = \"192.0.2.1\"\n[[vni]]\nid = 1\ntap = \"this-name-is-too-long\"", "15 characters"),
            (
                "local = \"192.0.2.1\"\n[[vni]]\nid = 1\ntap = \"t\"\nfdb = [{ mac = \"zz\", remote = \"192.0.2.2\" }]",
                "MAC address",
            ),
            ("local = \"2001:db8::1\"\ntunnel_gso = true\n[[vni]]\nid = 1\ntap = \"t\"", "IPv4 underlay only"),
        ];
        for (text, expected) in cases {
            let err = toml::from_str::<File>(text).unwrap().into_spec().unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        assert!(toml::from_str::<File>("locl = \"192.0.2.1\"").is_err(), "unknown keys are refused");
    }

    #[test]
    fn macs() {
        assert_eq!(parse_mac("02:00:5e:00:00:01").unwrap(), EthernetAddress([2, 0, 0x5e, 0, 0, 1]));
        for bad in ["", "02:00:5e:00:00", "02:00:5e:00:00:01:02", "2:0:5e:0:0:1", "0g:00:00:00:00:00"] {
            assert!(parse_mac(bad).is_err(), "{bad}");
        }
    }
}
