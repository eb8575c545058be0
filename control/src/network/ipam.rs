//! Network records and IPAM: IPv4 prefixes ([`Cidr`]), Docker's default
//! address pools and the choice of a free subnet among them, the validation
//! that turns a `network create` request into a [`Network`] record, the
//! allocation of container addresses inside it, and the [`NetworkStore`] that
//! keeps the records under `WHARF_ROOT/networks/NAME.json`.
//!
//! Everything here but the store is pure: the routes of the namespace come in
//! as text (`ip -j -4 route show table all`, see [`parse_routes`]) and the
//! other networks' subnets as a slice. It does not create bridges, addresses
//! or firewall rules, does not know whether a container is running, and does
//! not check that a name or bridge device is unused across networks: the
//! caller does that, holding the state lock, before it saves a record.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::state::{self, Root};

/// An IPv4 prefix: an address and a prefix length (0 to 32). The address
/// may have host bits set (an interface address such as 172.22.16.2/24);
/// [`Cidr::parse_network`] refuses them, and [`Cidr::network`] clears them.
/// Serialized as its text, `"172.22.16.0/24"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Cidr {
    /// Parses `A.B.C.D/N` (N from 0 to 32, no leading `+`, no spaces); host
    /// bits are kept as given.
    pub fn parse(text: &str) -> Result<Cidr, IpamError> {
        let invalid = || IpamError::InvalidCidr(text.to_string());
        let (addr, len) = text.split_once('/').ok_or_else(invalid)?;
        if len.is_empty() || len.len() > 2 || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let len: u8 = len.parse().map_err(|_| invalid())?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| invalid())?;
        if len > 32 {
            return Err(invalid());
        }
        Ok(Cidr { addr, len })
    }

    /// Parses a subnet: as [`Cidr::parse`], and the host bits must be zero
    /// (`invalid subnet 172.22.16.1/24: it should be 172.22.16.0/24`).
    pub fn parse_network(text: &str) -> Result<Cidr, IpamError> {
        let cidr = Cidr::parse(text)?;
        cidr.require_network("subnet")?;
        Ok(cidr)
    }

    /// `Ok` when the host bits are zero, else [`IpamError::HostBits`] naming
    /// `what` ("subnet", "ip-range").
    fn require_network(&self, what: &'static str) -> Result<(), IpamError> {
        if self.addr == self.network() {
            Ok(())
        } else {
            Err(IpamError::HostBits { what, given: *self, network: self.masked() })
        }
    }

    /// The netmask as a number (`/24` → 0xffff_ff00).
    pub fn mask(&self) -> u32 {
        u32::MAX.checked_shl(32 - u32::from(self.len.min(32))).unwrap_or(0)
    }

    /// The prefix with its host bits cleared.
    pub fn masked(&self) -> Cidr {
        Cidr { addr: self.network(), len: self.len }
    }

    /// The network address (host bits zero).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The broadcast address (host bits one).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    /// Whether the two prefixes share at least one address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    /// Whether every address of `other` is in `self`.
    pub fn contains_cidr(&self, other: &Cidr) -> bool {
        self.len <= other.len && self.contains(other.network())
    }

    /// The network address + 1: the first host, and the default gateway
    /// (saturating at 255.255.255.255).
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()).saturating_add(1))
    }

    /// How many addresses the prefix spans (2^(32 - len)).
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.len.min(32)))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Cidr {
    type Err = IpamError;

    fn from_str(text: &str) -> Result<Cidr, IpamError> {
        Cidr::parse(text)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Cidr, D::Error> {
        let text = String::deserialize(deserializer)?;
        Cidr::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Docker's default pools, in the order they are tried: 172.17.0.0/16 …
/// 172.31.0.0/16, then 192.168.0.0/20 … 192.168.240.0/20.
pub fn default_pool() -> impl Iterator<Item = Cidr> {
    let sixteens = (17..=31u8).map(|b| Cidr { addr: Ipv4Addr::new(172, b, 0, 0), len: 16 });
    let twenties = (0..16u8).map(|i| Cidr { addr: Ipv4Addr::new(192, 168, i * 16, 0), len: 20 });
    sixteens.chain(twenties)
}

/// The first subnet of [`default_pool`] that overlaps none of `taken`
/// (wharf's networks and the namespace's routes).
pub fn next_free_subnet(taken: &[Cidr]) -> Option<Cidr> {
    default_pool().find(|candidate| !taken.iter().any(|t| t.overlaps(candidate)))
}

/// Parses the output of `ip -j -4 route show table all` (a JSON array of
/// objects whose `"dst"` is `"default"`, a prefix `"10.0.0.0/8"` or an
/// address `"10.0.0.1"`, a host route) into prefixes, host bits cleared.
/// Default routes (`"default"`, `0.0.0.0/0`) are skipped: they overlap
/// everything, and Docker ignores them too. Other fields and entries without
/// a `"dst"` are ignored; text that is not such an array, or a `"dst"` that is
/// no IPv4 prefix, is an error.
pub fn parse_routes(json: &str) -> Result<Vec<Cidr>, IpamError> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| IpamError::Parse(format!("ip route output: {e}")))?;
    let entries = value.as_array().ok_or_else(|| IpamError::Parse("ip route output: not a JSON array".to_string()))?;
    let mut routes = Vec::new();
    for entry in entries {
        let Some(dst) = entry.get("dst") else { continue };
        let dst =
            dst.as_str().ok_or_else(|| IpamError::Parse(format!("ip route output: \"dst\" is not a string: {dst}")))?;
        if dst == "default" {
            continue;
        }
        let cidr = if dst.contains('/') {
            Cidr::parse(dst).ok()
        } else {
            dst.parse::<Ipv4Addr>().ok().map(|addr| Cidr { addr, len: 32 })
        };
        let cidr = cidr.ok_or_else(|| IpamError::Parse(format!("ip route output: bad destination \"{dst}\"")))?;
        if cidr.len > 0 {
            routes.push(cidr.masked());
        }
    }
    Ok(routes)
}

/// The MAC address Docker gives an interface with address `ip`:
/// 02:42 followed by the address's four bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = ip.octets();
    [0x02, 0x42, a, b, c, d]
}

/// `02:42:ac:16:10:02`.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// The longest network name accepted (the record's file name must stay under
/// the file system's 255-byte limit).
const MAX_NAME: usize = 128;

/// Whether `name` is a valid network name: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at
/// most 128 characters.
pub fn valid_network_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= MAX_NAME
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Whether `name` is acceptable as a bridge device name: 1 to 15 bytes of
/// `[a-zA-Z0-9_.-]`, not `.` or `..`. Stricter than the kernel, so the name
/// is also safe in iptables rules (where a trailing `+` is a wildcard).
pub fn valid_bridge_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// The option naming the bridge device.
pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
/// Docker's option for the MTU.
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";
/// wharf's short form of [`OPT_MTU`].
pub const OPT_MTU_SHORT: &str = "mtu";
/// The MTU of a network that sets none.
pub const DEFAULT_MTU: u32 = 1500;

/// How a network came by its bridge (what [`Links::ensure_bridge`] did).
///
/// [`Links::ensure_bridge`]: super::links::Links::ensure_bridge
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BridgeOrigin {
    /// wharf made it: it goes with the network.
    #[default]
    Created,
    /// It was there (`-o com.docker.network.bridge.name` naming one): it
    /// stays, as Docker leaves a bridge it did not create; the gateway
    /// address goes with the network if wharf added it.
    Existed { added_address: bool },
}

/// A network record, `WHARF_ROOT/networks/NAME.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    /// 64 hex digits.
    pub id: String,
    /// Always "bridge".
    pub driver: String,
    /// RFC 3339.
    pub created: String,
    /// Host bits zero.
    pub subnet: Cidr,
    /// Inside `subnet`, neither its network nor its broadcast address.
    pub gateway: Ipv4Addr,
    /// Where dynamic addresses come from (inside `subnet`, host bits zero).
    pub ip_range: Option<Cidr>,
    /// No traffic leaves the bridge (no masquerade, no route out).
    pub internal: bool,
    /// The bridge device's name.
    pub bridge: String,
    /// Whether wharf made the bridge, and so what removing the network
    /// undoes.
    #[serde(default)]
    pub bridge_origin: BridgeOrigin,
    pub mtu: u32,
    /// The `-o KEY=VALUE` options, as given.
    pub options: BTreeMap<String, String>,
    /// IPAM: address → container id.
    pub allocations: BTreeMap<Ipv4Addr, String>,
}

/// What `network create` asks for (already split from the flags).
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    pub name: String,
    pub driver: Option<String>,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    pub internal: bool,
    /// `KEY=VALUE`, from `--opt`/`-o`.
    pub options: Vec<String>,
}

impl Network {
    /// Validates `req` and builds the record (no I/O but the clock), taking
    /// the id from the caller.
    ///
    /// - driver: none or "bridge";
    /// - name: [`valid_network_name`], not "host" or "none" (built in);
    /// - subnet: given (host bits zero, overlapping none of `wharf_subnets`,
    ///   at most a /30), or the first pool subnet overlapping neither
    ///   `wharf_subnets` nor `routes`; a given subnet may overlap a route, as
    ///   in Docker;
    /// - gateway: inside the subnet, neither its network nor its broadcast
    ///   address; default [`Cidr::first_host`];
    /// - ip_range: host bits zero, inside the subnet;
    /// - gateway or ip_range without subnet is refused, as Docker's CLI does;
    /// - options: `com.docker.network.bridge.name=BR` ([`valid_bridge_name`];
    ///   default `wh-` + the id's first 12 characters), `mtu=N` or
    ///   `com.docker.network.driver.mtu=N` (68 to 65535; default 1500; the
    ///   last one given wins); every option, known or not, is kept as given.
    pub fn from_request(
        req: &NetworkRequest,
        id: String,
        wharf_subnets: &[Cidr],
        routes: &[Cidr],
    ) -> Result<Network, IpamError> {
        let driver = req.driver.as_deref().unwrap_or("bridge");
        if driver != "bridge" {
            return Err(IpamError::Driver(driver.to_string()));
        }
        if !valid_network_name(&req.name) {
            return Err(IpamError::InvalidName(req.name.clone()));
        }
        if req.name == "host" || req.name == "none" {
            return Err(IpamError::Exists(req.name.clone()));
        }

        let subnet = match &req.subnet {
            Some(text) => {
                let subnet = Cidr::parse(text).map_err(|_| IpamError::InvalidCidr(text.clone()))?;
                subnet.require_network("subnet")?;
                if subnet.len > 30 {
                    return Err(IpamError::SubnetTooSmall(subnet));
                }
                if wharf_subnets.iter().any(|other| other.overlaps(&subnet)) {
                    return Err(IpamError::Overlap);
                }
                subnet
            }
            None => {
                if req.gateway.is_some() || req.ip_range.is_some() {
                    return Err(IpamError::NeedsSubnet);
                }
                let taken: Vec<Cidr> = wharf_subnets.iter().chain(routes).copied().collect();
                next_free_subnet(&taken).ok_or(IpamError::NoFreeSubnet)?
            }
        };

        let gateway = match &req.gateway {
            Some(text) => {
                let gateway: Ipv4Addr = text.parse().map_err(|_| IpamError::InvalidGateway(text.clone()))?;
                if !subnet.contains(gateway) {
                    return Err(IpamError::GatewayOutside { gateway, subnet });
                }
                if gateway == subnet.network() || gateway == subnet.broadcast() {
                    return Err(IpamError::GatewayReserved { gateway, subnet });
                }
                gateway
            }
            None => subnet.first_host(),
        };

        let ip_range = match &req.ip_range {
            Some(text) => {
                let range = Cidr::parse(text).map_err(|_| IpamError::InvalidCidr(text.clone()))?;
                range.require_network("ip-range")?;
                if !subnet.contains_cidr(&range) {
                    return Err(IpamError::RangeOutside { range, subnet });
                }
                Some(range)
            }
            None => None,
        };

        let mut options = BTreeMap::new();
        let mut bridge = None;
        let mut mtu = DEFAULT_MTU;
        for option in &req.options {
            let (key, value) = option.split_once('=').filter(|(key, _)| !key.is_empty()).ok_or_else(|| {
                IpamError::InvalidOption(format!("invalid option \"{option}\": options are KEY=VALUE"))
            })?;
            match key {
                OPT_BRIDGE_NAME => {
                    if !valid_bridge_name(value) {
                        return Err(IpamError::InvalidOption(format!(
                            "invalid bridge name \"{value}\": a bridge name is 1 to 15 characters of [a-zA-Z0-9_.-]"
                        )));
                    }
                    bridge = Some(value.to_string());
                }
                OPT_MTU | OPT_MTU_SHORT => {
                    mtu = value.parse().ok().filter(|mtu| (68..=65535).contains(mtu)).ok_or_else(|| {
                        IpamError::InvalidOption(format!(
                            "invalid MTU \"{value}\": an MTU is a number from 68 to 65535"
                        ))
                    })?;
                }
                _ => {}
            }
            options.insert(key.to_string(), value.to_string());
        }
        let bridge = bridge.unwrap_or_else(|| format!("wh-{}", crate::state::short_id(&id)));

        Ok(Network {
            name: req.name.clone(),
            id,
            driver: "bridge".to_string(),
            created: state::now_rfc3339(),
            subnet,
            gateway,
            ip_range,
            internal: req.internal,
            bridge,
            mtu,
            options,
            allocations: BTreeMap::new(),
            bridge_origin: BridgeOrigin::Created,
        })
    }

    /// The id's first 12 characters, as `network ls` shows it.
    pub fn short_id(&self) -> &str {
        crate::state::short_id(&self.id)
    }

    /// Gives `container` an address and records it. A container holds at most
    /// one address per network: if it already holds one, that one is returned
    /// when `wanted` is `None` or the same, and replaced by `wanted` otherwise
    /// (once `wanted` is found free).
    ///
    /// `wanted` must be inside the subnet (not necessarily inside the
    /// ip-range: as in Docker, the range only bounds dynamic allocation),
    /// neither the network nor the broadcast address, and not the gateway's
    /// or another container's address. Without `wanted`, the lowest free
    /// address of the ip-range (the subnet if none) is taken.
    pub fn allocate(&mut self, container: &str, wanted: Option<Ipv4Addr>) -> Result<Ipv4Addr, IpamError> {
        let held = self.address_of(container);
        let ip = match wanted {
            None => match held {
                Some(ip) => return Ok(ip),
                None => self.next_free()?,
            },
            Some(ip) if Some(ip) == held => return Ok(ip),
            Some(ip) => {
                if !self.subnet.contains(ip) {
                    return Err(IpamError::AddressOutside { ip, subnet: self.subnet });
                }
                if ip == self.subnet.network() || ip == self.subnet.broadcast() {
                    return Err(IpamError::AddressReserved { ip, subnet: self.subnet });
                }
                if ip == self.gateway || self.allocations.contains_key(&ip) {
                    return Err(IpamError::AddressInUse(ip));
                }
                ip
            }
        };
        self.release(container);
        self.allocations.insert(ip, container.to_string());
        Ok(ip)
    }

    /// The lowest address of the ip-range (or subnet) that is a host address
    /// of the subnet, not the gateway and not allocated.
    fn next_free(&self) -> Result<Ipv4Addr, IpamError> {
        let pool = self.ip_range.unwrap_or(self.subnet);
        let (first, last) = (u32::from(pool.network()), u32::from(pool.broadcast()));
        let (network, broadcast) = (self.subnet.network(), self.subnet.broadcast());
        (first..=last)
            .map(Ipv4Addr::from)
            .find(|ip| *ip != network && *ip != broadcast && *ip != self.gateway && !self.allocations.contains_key(ip))
            .ok_or_else(|| IpamError::Exhausted { network: self.name.clone(), subnet: self.subnet })
    }

    /// Releases every address of `container` (none is fine); returns how many.
    pub fn release(&mut self, container: &str) -> usize {
        let before = self.allocations.len();
        self.allocations.retain(|_, owner| owner != container);
        before - self.allocations.len()
    }

    /// The address `container` holds on this network.
    pub fn address_of(&self, container: &str) -> Option<Ipv4Addr> {
        self.allocations.iter().find(|(_, owner)| owner.as_str() == container).map(|(ip, _)| *ip)
    }

    /// `ip` with the subnet's prefix length, `172.22.16.2/24`, as `network
    /// inspect` shows a container's address.
    pub fn address_with_len(&self, ip: Ipv4Addr) -> Cidr {
        Cidr { addr: ip, len: self.subnet.len }
    }
}

/// What can go wrong with networks and their addresses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// Text that is no `A.B.C.D/N`.
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    /// A subnet or ip-range with host bits set.
    #[error("invalid {what} {given}: it should be {network}")]
    HostBits { what: &'static str, given: Cidr, network: Cidr },
    #[error("invalid subnet {0}: a bridge network needs at least a /30")]
    SubnetTooSmall(Cidr),
    /// A given subnet overlaps another wharf network's.
    #[error("invalid pool request: Pool overlaps with other one on this address space")]
    Overlap,
    #[error("every ip-range or gateway must have a corresponding subnet")]
    NeedsSubnet,
    #[error("invalid gateway {0}: invalid address")]
    InvalidGateway(String),
    #[error("invalid gateway {gateway}: parent subnet {subnet} doesn't contain this address")]
    GatewayOutside { gateway: Ipv4Addr, subnet: Cidr },
    #[error("invalid gateway {gateway}: it is the network or broadcast address of {subnet}")]
    GatewayReserved { gateway: Ipv4Addr, subnet: Cidr },
    #[error("invalid ip-range {range}: parent subnet {subnet} doesn't contain ip-range")]
    RangeOutside { range: Cidr, subnet: Cidr },
    /// The whole message (`invalid MTU "9": ...`).
    #[error("{0}")]
    InvalidOption(String),
    #[error("invalid network name \"{0}\": names match [a-zA-Z0-9][a-zA-Z0-9_.-]* (at most 128 characters)")]
    InvalidName(String),
    #[error("network with name {0} already exists")]
    Exists(String),
    #[error("network driver \"{0}\" is not supported: wharf networks use the bridge driver")]
    Driver(String),
    #[error("Address already in use")]
    AddressInUse(Ipv4Addr),
    #[error("invalid address {ip}: it does not belong to this network's subnet {subnet}")]
    AddressOutside { ip: Ipv4Addr, subnet: Cidr },
    #[error("invalid address {ip}: it is the network or broadcast address of {subnet}")]
    AddressReserved { ip: Ipv4Addr, subnet: Cidr },
    #[error("no available IPv4 addresses on this network's address pools: {network} ({subnet})")]
    Exhausted { network: String, subnet: Cidr },
    #[error(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
    )]
    NoFreeSubnet,
    /// Unreadable `ip route` output.
    #[error("{0}")]
    Parse(String),
    #[error("network {0} not found")]
    NotFound(String),
    #[error("network {reference} is ambiguous ({matches} matches found based on ID prefix)")]
    Ambiguous { reference: String, matches: usize },
    /// Reading a record failed: the whole message.
    #[error("{0}")]
    Io(String),
}

/// The network records under `WHARF_ROOT/networks` (`NAME.json`, written
/// atomically). The caller holds the state lock.
#[derive(Debug, Clone)]
pub struct NetworkStore {
    dir: PathBuf,
}

impl NetworkStore {
    pub fn new(root: &Root) -> NetworkStore {
        NetworkStore { dir: root.dir().join("networks") }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Every record, sorted by name (temporary files skipped); none when the
    /// directory does not exist yet.
    pub fn list(&self) -> io::Result<Vec<Network>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io::Error::new(e.kind(), format!("read {}: {e}", self.dir.display()))),
        };
        let mut networks = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io::Error::new(e.kind(), format!("read {}: {e}", self.dir.display())))?;
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".json")) else { continue };
            if valid_network_name(name) {
                networks.push(state::read_json::<Network>(&entry.path())?);
            }
        }
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(networks)
    }

    /// The record named `name`.
    pub fn get(&self, name: &str) -> Result<Network, IpamError> {
        if !valid_network_name(name) {
            return Err(IpamError::NotFound(name.to_string()));
        }
        let path = self.path(name);
        match state::read_json(&path) {
            Ok(network) => Ok(network),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(IpamError::NotFound(name.to_string())),
            Err(e) => Err(IpamError::Io(e.to_string())),
        }
    }

    /// The network whose full id, name, or unique id prefix is `reference`
    /// (tried in that order, as Docker does).
    pub fn find(&self, reference: &str) -> Result<Network, IpamError> {
        let not_found = || IpamError::NotFound(reference.to_string());
        if reference.is_empty() {
            return Err(not_found());
        }
        let networks = self.list().map_err(|e| IpamError::Io(e.to_string()))?;
        if let Some(network) = networks.iter().find(|n| n.id == reference) {
            return Ok(network.clone());
        }
        if let Some(network) = networks.iter().find(|n| n.name == reference) {
            return Ok(network.clone());
        }
        let mut matches = networks.into_iter().filter(|n| n.id.starts_with(reference));
        match (matches.next(), matches.count()) {
            (None, _) => Err(not_found()),
            (Some(network), 0) => Ok(network),
            (Some(_), more) => Err(IpamError::Ambiguous { reference: reference.to_string(), matches: more + 1 }),
        }
    }

    /// Writes `network`'s record (replacing any of the same name).
    pub fn save(&self, network: &Network) -> io::Result<()> {
        if !valid_network_name(&network.name) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("save network: {}", IpamError::InvalidName(network.name.clone())),
            ));
        }
        fs::create_dir_all(&self.dir)
            .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", self.dir.display())))?;
        state::write_json(&self.path(&network.name), network)
    }

    /// Removes `name`'s record; a missing one is success.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        if !valid_network_name(name) {
            return Ok(());
        }
        let path = self.path(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io::Error::new(e.kind(), format!("remove {}: {e}", path.display()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Scratch;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn cidr(text: &str) -> Cidr {
        Cidr::parse(text).unwrap()
    }

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    fn request(name: &str) -> NetworkRequest {
        NetworkRequest { name: name.to_string(), ..NetworkRequest::default() }
    }

    fn with_subnet(name: &str, subnet: &str) -> NetworkRequest {
        NetworkRequest { subnet: Some(subnet.to_string()), ..request(name) }
    }

    fn build(req: &NetworkRequest) -> Result<Network, IpamError> {
        Network::from_request(req, ID.to_string(), &[], &[])
    }

    /// `ip -n t -j -4 route show table all` in a fresh namespace with lo up, a
    /// veth d0 at 10.99.0.2/24, a default route via 10.99.0.1, a route to
    /// 172.17.0.0/16 via 10.99.0.1 and a host route to 192.168.5.7 (captured
    /// with iproute2 6.x).
    const REAL_ROUTES: &str = r#"[{"dst":"default","gateway":"10.99.0.1","dev":"d0","flags":[]},{"dst":"10.99.0.0/24","dev":"d0","protocol":"kernel","scope":"link","prefsrc":"10.99.0.2","flags":[]},{"dst":"172.17.0.0/16","gateway":"10.99.0.1","dev":"d0","flags":[]},{"dst":"192.168.5.7","dev":"d0","scope":"link","flags":[]},{"type":"local","dst":"10.99.0.2","dev":"d0","table":"local","protocol":"kernel","scope":"host","prefsrc":"10.99.0.2","flags":[]},{"type":"broadcast","dst":"10.99.0.255","dev":"d0","table":"local","protocol":"kernel","scope":"link","prefsrc":"10.99.0.2","flags":[]},{"type":"local","dst":"127.0.0.0/8","dev":"lo","table":"local","protocol":"kernel","scope":"host","prefsrc":"127.0.0.1","flags":[]},{"type":"local","dst":"127.0.0.1","dev":"lo","table":"local","protocol":"kernel","scope":"host","prefsrc":"127.0.0.1","flags":[]},{"type":"broadcast","dst":"127.255.255.255","dev":"lo","table":"local","protocol":"kernel","scope":"link","prefsrc":"127.0.0.1","flags":[]}]"#;

    #[test]
    fn cidr_parses_prints_and_measures() {
        let c = cidr("172.22.16.0/24");
        assert_eq!(c, Cidr { addr: ip("172.22.16.0"), len: 24 });
        assert_eq!(c.to_string(), "172.22.16.0/24");
        assert_eq!("172.22.16.0/24".parse::<Cidr>(), Ok(c));
        assert_eq!(c.network(), ip("172.22.16.0"));
        assert_eq!(c.broadcast(), ip("172.22.16.255"));
        assert_eq!(c.first_host(), ip("172.22.16.1"));
        assert_eq!(c.size(), 256);
        assert!(c.contains(ip("172.22.16.77")) && !c.contains(ip("172.22.17.0")));

        let host = cidr("172.22.16.5/24");
        assert_eq!(host.addr, ip("172.22.16.5"), "parse keeps host bits");
        assert_eq!(host.network(), ip("172.22.16.0"));
        assert_eq!(host.masked(), c);

        let all = cidr("0.0.0.0/0");
        assert_eq!((all.network(), all.broadcast()), (ip("0.0.0.0"), ip("255.255.255.255")));
        assert_eq!(all.size(), 1 << 32);
        let one = cidr("10.0.0.7/32");
        assert_eq!((one.network(), one.broadcast()), (ip("10.0.0.7"), ip("10.0.0.7")));
        assert_eq!(cidr("255.255.255.255/32").first_host(), ip("255.255.255.255"));

        for bad in [
            "",
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "10.0.0.0/008",
            "10.0.0/8",
            "a/8",
            " 10.0.0.0/8",
            "10.0.0.0/8 ",
            "::/0",
        ] {
            assert_eq!(Cidr::parse(bad), Err(IpamError::InvalidCidr(bad.to_string())), "{bad:?}");
        }
        assert_eq!(IpamError::InvalidCidr("foo".into()).to_string(), "invalid CIDR address: foo");
    }

    #[test]
    fn parse_network_refuses_host_bits() {
        assert_eq!(Cidr::parse_network("172.22.16.0/24"), Ok(cidr("172.22.16.0/24")));
        let err = Cidr::parse_network("172.22.16.1/24").unwrap_err();
        assert_eq!(
            err,
            IpamError::HostBits { what: "subnet", given: cidr("172.22.16.1/24"), network: cidr("172.22.16.0/24") }
        );
        assert_eq!(err.to_string(), "invalid subnet 172.22.16.1/24: it should be 172.22.16.0/24");
        assert_eq!(Cidr::parse_network("x"), Err(IpamError::InvalidCidr("x".into())));
    }

    #[test]
    fn overlap_and_containment() {
        let a = cidr("10.0.0.0/8");
        let b = cidr("10.1.0.0/16");
        let c = cidr("11.0.0.0/8");
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c) && !c.overlaps(&a));
        assert!(a.contains_cidr(&b) && !b.contains_cidr(&a));
        assert!(a.contains_cidr(&a));
        assert!(!a.contains_cidr(&c));
        assert!(cidr("0.0.0.0/0").overlaps(&c));
        assert!(cidr("192.168.0.0/20").overlaps(&cidr("192.168.15.255/32")));
        assert!(!cidr("192.168.0.0/20").overlaps(&cidr("192.168.16.0/32")));
    }

    #[test]
    fn cidr_serializes_as_text() {
        let c = cidr("172.22.16.0/24");
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"172.22.16.0/24\"");
        assert_eq!(serde_json::from_str::<Cidr>("\"172.22.16.0/24\"").unwrap(), c);
        assert!(serde_json::from_str::<Cidr>("\"172.22.16.0\"").is_err());
        assert!(serde_json::from_str::<Cidr>("24").is_err());
    }

    #[test]
    fn default_pool_is_dockers() {
        let pool: Vec<String> = default_pool().map(|c| c.to_string()).collect();
        assert_eq!(pool.len(), 15 + 16);
        assert_eq!(pool[0], "172.17.0.0/16");
        assert_eq!(pool[14], "172.31.0.0/16");
        assert_eq!(pool[15], "192.168.0.0/20");
        assert_eq!(pool[16], "192.168.16.0/20");
        assert_eq!(pool[30], "192.168.240.0/20");
    }

    #[test]
    fn next_free_subnet_skips_what_is_taken() {
        assert_eq!(next_free_subnet(&[]), Some(cidr("172.17.0.0/16")));
        assert_eq!(next_free_subnet(&[cidr("172.17.0.0/16")]), Some(cidr("172.18.0.0/16")));
        // A small route inside a pool subnet makes the whole subnet unusable.
        assert_eq!(next_free_subnet(&[cidr("172.17.3.0/24"), cidr("172.18.0.1/32")]), Some(cidr("172.19.0.0/16")));
        // A big one covers many.
        assert_eq!(next_free_subnet(&[cidr("172.16.0.0/12")]), Some(cidr("192.168.0.0/20")));
        assert_eq!(next_free_subnet(&[cidr("172.16.0.0/12"), cidr("192.168.0.0/17")]), Some(cidr("192.168.128.0/20")));
        assert_eq!(next_free_subnet(&[cidr("172.16.0.0/12"), cidr("192.168.0.0/16")]), None);
    }

    #[test]
    fn parse_routes_reads_real_ip_output() {
        let routes = parse_routes(REAL_ROUTES).unwrap();
        let want: Vec<Cidr> = [
            "10.99.0.0/24",
            "172.17.0.0/16",
            "192.168.5.7/32",
            "10.99.0.2/32",
            "10.99.0.255/32",
            "127.0.0.0/8",
            "127.0.0.1/32",
            "127.255.255.255/32",
        ]
        .iter()
        .map(|t| cidr(t))
        .collect();
        assert_eq!(routes, want);
        // The pool skips the route to 172.17.0.0/16 (as with a Docker host).
        assert_eq!(next_free_subnet(&routes), Some(cidr("172.18.0.0/16")));
    }

    #[test]
    fn parse_routes_hand_written() {
        let json = r#"[
            {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0", "metric": 100, "flags": ["onlink"]},
            {"dst": "0.0.0.0/0", "table": "200"},
            {"dst": "172.18.0.0/16", "dev": "br-x", "nested": {"a": [1, 2]}, "flags": []},
            {"dst": "172.19.4.9", "dev": "eth0"},
            {"dst": "192.168.1.77/20", "type": "unreachable"},
            {"type": "multicast", "dev": "eth0"}
        ]"#;
        let routes = parse_routes(json).unwrap();
        assert_eq!(routes, vec![cidr("172.18.0.0/16"), cidr("172.19.4.9/32"), cidr("192.168.0.0/20")]);
        assert_eq!(next_free_subnet(&routes), Some(cidr("172.17.0.0/16")));
        let taken = [routes.as_slice(), &[cidr("172.17.0.0/16")]].concat();
        assert_eq!(next_free_subnet(&taken), Some(cidr("172.20.0.0/16")));

        assert_eq!(parse_routes("[]").unwrap(), vec![]);
        assert!(matches!(parse_routes("[{\"dst\":"), Err(IpamError::Parse(_))));
        assert!(matches!(parse_routes("{\"dst\":\"10.0.0.0/8\"}"), Err(IpamError::Parse(_))));
        assert!(matches!(parse_routes(""), Err(IpamError::Parse(_))));
        let err = parse_routes(r#"[{"dst":"fe80::/64"}]"#).unwrap_err();
        assert_eq!(err, IpamError::Parse("ip route output: bad destination \"fe80::/64\"".into()));
        assert!(matches!(parse_routes(r#"[{"dst":7}]"#), Err(IpamError::Parse(_))));
    }

    #[test]
    fn my_net_takes_the_first_free_pool_subnet() {
        let net = build(&request("my_net")).unwrap();
        assert_eq!(net.name, "my_net");
        assert_eq!(net.id, ID);
        assert_eq!(net.driver, "bridge");
        assert_eq!(net.subnet, cidr("172.17.0.0/16"));
        assert_eq!(net.gateway, ip("172.17.0.1"));
        assert_eq!(net.ip_range, None);
        assert!(!net.internal);
        assert_eq!(net.bridge, "wh-0123456789ab");
        assert_eq!(net.short_id(), "0123456789ab");
        assert_eq!(net.mtu, 1500);
        assert!(net.options.is_empty() && net.allocations.is_empty());
        assert!(state::parse_rfc3339(&net.created).is_some(), "{}", net.created);

        let routes = [cidr("172.17.0.0/16")];
        let net = Network::from_request(&request("my_net"), ID.to_string(), &[], &routes).unwrap();
        assert_eq!((net.subnet, net.gateway), (cidr("172.18.0.0/16"), ip("172.18.0.1")));

        // wharf's own networks count as taken too.
        let net = Network::from_request(&request("my_net"), ID.to_string(), &[cidr("172.18.0.0/16")], &routes).unwrap();
        assert_eq!(net.subnet, cidr("172.19.0.0/16"));

        let mut everything = vec![cidr("172.16.0.0/12")];
        everything.push(cidr("192.168.0.0/16"));
        let err = Network::from_request(&request("my_net"), ID.to_string(), &[], &everything).unwrap_err();
        assert_eq!(err, IpamError::NoFreeSubnet);
    }

    #[test]
    fn my_net2_with_given_subnet_and_gateway() {
        let req = NetworkRequest {
            gateway: Some("172.22.16.1".into()),
            internal: true,
            ..with_subnet("my_net2", "172.22.16.0/24")
        };
        let net = build(&req).unwrap();
        assert_eq!((net.subnet, net.gateway), (cidr("172.22.16.0/24"), ip("172.22.16.1")));
        assert!(net.internal);
        // The default gateway is the first host too.
        assert_eq!(build(&with_subnet("my_net2", "172.22.16.0/24")).unwrap().gateway, ip("172.22.16.1"));
        // Another gateway in the subnet is fine.
        let req = NetworkRequest { gateway: Some("172.22.16.254".into()), ..with_subnet("n", "172.22.16.0/24") };
        assert_eq!(build(&req).unwrap().gateway, ip("172.22.16.254"));
        // A given subnet may overlap a route (as in Docker), not another network.
        let routes = [cidr("172.22.0.0/16")];
        assert!(Network::from_request(&req, ID.into(), &[cidr("172.17.0.0/16")], &routes).is_ok());
        let err = Network::from_request(&req, ID.into(), &[cidr("172.22.0.0/16")], &[]).unwrap_err();
        assert_eq!(err, IpamError::Overlap);
        assert_eq!(err.to_string(), "invalid pool request: Pool overlaps with other one on this address space");
        let err = Network::from_request(&req, ID.into(), &[cidr("172.22.16.128/25")], &[]).unwrap_err();
        assert_eq!(err, IpamError::Overlap);
    }

    #[test]
    fn request_errors_by_value() {
        let err = build(&NetworkRequest { driver: Some("overlay".into()), ..request("n") }).unwrap_err();
        assert_eq!(err, IpamError::Driver("overlay".into()));
        assert_eq!(
            err.to_string(),
            "network driver \"overlay\" is not supported: wharf networks use the bridge driver"
        );
        assert!(build(&NetworkRequest { driver: Some("bridge".into()), ..request("n") }).is_ok());

        for bad in ["", "-n", ".n", "a/b", "a b", "ü", &"n".repeat(129)] {
            assert_eq!(build(&request(bad)), Err(IpamError::InvalidName(bad.to_string())), "{bad:?}");
        }
        for good in ["n", "N0", "a_b.c-d", "0", &"n".repeat(128)] {
            assert!(build(&request(good)).is_ok(), "{good:?}");
        }
        for builtin in ["host", "none"] {
            let err = build(&request(builtin)).unwrap_err();
            assert_eq!(err, IpamError::Exists(builtin.into()));
            assert_eq!(err.to_string(), format!("network with name {builtin} already exists"));
        }

        assert_eq!(build(&with_subnet("n", "foo")), Err(IpamError::InvalidCidr("foo".into())));
        assert_eq!(build(&with_subnet("n", "10.0.0.0")), Err(IpamError::InvalidCidr("10.0.0.0".into())));
        let err = build(&with_subnet("n", "172.22.16.1/24")).unwrap_err();
        assert_eq!(err.to_string(), "invalid subnet 172.22.16.1/24: it should be 172.22.16.0/24");
        let err = build(&with_subnet("n", "10.0.0.0/31")).unwrap_err();
        assert_eq!(err, IpamError::SubnetTooSmall(cidr("10.0.0.0/31")));
        assert_eq!(err.to_string(), "invalid subnet 10.0.0.0/31: a bridge network needs at least a /30");
        assert!(build(&with_subnet("n", "10.0.0.0/30")).is_ok());

        let gw = |g: &str| NetworkRequest { gateway: Some(g.into()), ..with_subnet("n", "172.22.16.0/24") };
        let err = build(&gw("10.0.0.1")).unwrap_err();
        assert_eq!(err, IpamError::GatewayOutside { gateway: ip("10.0.0.1"), subnet: cidr("172.22.16.0/24") });
        assert_eq!(
            err.to_string(),
            "invalid gateway 10.0.0.1: parent subnet 172.22.16.0/24 doesn't contain this address"
        );
        for reserved in ["172.22.16.0", "172.22.16.255"] {
            let err = build(&gw(reserved)).unwrap_err();
            assert_eq!(err, IpamError::GatewayReserved { gateway: ip(reserved), subnet: cidr("172.22.16.0/24") });
        }
        assert_eq!(build(&gw("172.22.16")), Err(IpamError::InvalidGateway("172.22.16".into())));
        assert_eq!(IpamError::InvalidGateway("x".into()).to_string(), "invalid gateway x: invalid address");

        let range = |r: &str| NetworkRequest { ip_range: Some(r.into()), ..with_subnet("n", "172.22.16.0/24") };
        let err = build(&range("172.22.17.0/28")).unwrap_err();
        assert_eq!(err, IpamError::RangeOutside { range: cidr("172.22.17.0/28"), subnet: cidr("172.22.16.0/24") });
        assert_eq!(
            err.to_string(),
            "invalid ip-range 172.22.17.0/28: parent subnet 172.22.16.0/24 doesn't contain ip-range"
        );
        let err = build(&range("172.22.0.0/16")).unwrap_err();
        assert_eq!(err, IpamError::RangeOutside { range: cidr("172.22.0.0/16"), subnet: cidr("172.22.16.0/24") });
        let err = build(&range("172.22.16.5/28")).unwrap_err();
        assert_eq!(err.to_string(), "invalid ip-range 172.22.16.5/28: it should be 172.22.16.0/28");
        assert_eq!(build(&range("bad")), Err(IpamError::InvalidCidr("bad".into())));

        for lonely in [
            NetworkRequest { gateway: Some("172.22.16.1".into()), ..request("n") },
            NetworkRequest { ip_range: Some("172.22.16.0/28".into()), ..request("n") },
        ] {
            assert_eq!(build(&lonely), Err(IpamError::NeedsSubnet));
        }
    }

    #[test]
    fn options_bridge_name_and_mtu() {
        let opts = |o: &[&str]| NetworkRequest { options: o.iter().map(|s| s.to_string()).collect(), ..request("n") };
        let net =
            build(&opts(&["com.docker.network.bridge.name=br-test", "mtu=1450", "foo=bar=baz", "empty="])).unwrap();
        assert_eq!(net.bridge, "br-test");
        assert_eq!(net.mtu, 1450);
        let want: BTreeMap<String, String> =
            [("com.docker.network.bridge.name", "br-test"), ("mtu", "1450"), ("foo", "bar=baz"), ("empty", "")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(net.options, want);

        assert_eq!(build(&opts(&["com.docker.network.driver.mtu=9000"])).unwrap().mtu, 9000);
        assert_eq!(build(&opts(&["mtu=68"])).unwrap().mtu, 68);
        assert_eq!(build(&opts(&["mtu=65535"])).unwrap().mtu, 65535);
        assert_eq!(build(&opts(&["mtu=1400", "com.docker.network.driver.mtu=1300"])).unwrap().mtu, 1300);
        for bad in ["mtu=67", "mtu=65536", "mtu=abc", "mtu=", "com.docker.network.driver.mtu=-1"] {
            let value = bad.split_once('=').unwrap().1;
            let err = build(&opts(&[bad])).unwrap_err();
            assert_eq!(
                err,
                IpamError::InvalidOption(format!("invalid MTU \"{value}\": an MTU is a number from 68 to 65535")),
                "{bad}"
            );
        }

        assert_eq!(
            build(&opts(&["com.docker.network.bridge.name=abcdefghijklmno"])).unwrap().bridge,
            "abcdefghijklmno"
        );
        for bad in ["abcdefghijklmnop", "", ".", "..", "a/b", "a b", "a:b", "br+", "ü"] {
            let err = build(&opts(&[&format!("com.docker.network.bridge.name={bad}")])).unwrap_err();
            assert_eq!(
                err,
                IpamError::InvalidOption(format!(
                    "invalid bridge name \"{bad}\": a bridge name is 1 to 15 characters of [a-zA-Z0-9_.-]"
                )),
                "{bad:?}"
            );
        }
        for bad in ["novalue", "=v"] {
            let err = build(&opts(&[bad])).unwrap_err();
            assert_eq!(err, IpamError::InvalidOption(format!("invalid option \"{bad}\": options are KEY=VALUE")));
        }

        // A short id makes a short default bridge name, never a panic.
        let net = Network::from_request(&request("n"), "abc".into(), &[], &[]).unwrap();
        assert_eq!(net.bridge, "wh-abc");
    }

    fn small(subnet: &str) -> Network {
        build(&with_subnet("small", subnet)).unwrap()
    }

    #[test]
    fn allocation_is_lowest_free_first() {
        let mut net = build(&with_subnet("my_net2", "172.22.16.0/24")).unwrap();
        assert_eq!(net.allocate("a", None), Ok(ip("172.22.16.2")));
        assert_eq!(net.allocate("b", None), Ok(ip("172.22.16.3")));
        assert_eq!(net.allocate("c", None), Ok(ip("172.22.16.4")));
        assert_eq!(net.address_of("b"), Some(ip("172.22.16.3")));
        assert_eq!(net.release("b"), 1);
        assert_eq!(net.address_of("b"), None);
        assert_eq!(net.allocate("d", None), Ok(ip("172.22.16.3")), "a released address is reused first");
        // Asking again is idempotent.
        assert_eq!(net.allocate("d", None), Ok(ip("172.22.16.3")));
        assert_eq!(net.allocations.len(), 3);
        assert_eq!(net.address_with_len(ip("172.22.16.3")).to_string(), "172.22.16.3/24");

        // A gateway that is not the first host leaves .1 free for containers.
        let req = NetworkRequest { gateway: Some("10.5.0.2".into()), ..with_subnet("g", "10.5.0.0/24") };
        let mut net = build(&req).unwrap();
        assert_eq!(net.allocate("a", None), Ok(ip("10.5.0.1")));
        assert_eq!(net.allocate("b", None), Ok(ip("10.5.0.3")));
    }

    #[test]
    fn static_addresses_are_validated() {
        let mut net = build(&with_subnet("my_net2", "172.22.16.0/24")).unwrap();
        assert_eq!(net.allocate("a", Some(ip("172.22.16.50"))), Ok(ip("172.22.16.50")));
        assert_eq!(net.allocate("a", Some(ip("172.22.16.50"))), Ok(ip("172.22.16.50")), "idempotent");

        let err = net.allocate("b", Some(ip("172.22.16.50"))).unwrap_err();
        assert_eq!(err, IpamError::AddressInUse(ip("172.22.16.50")));
        assert_eq!(err.to_string(), "Address already in use");
        assert_eq!(net.allocate("b", Some(ip("172.22.16.1"))), Err(IpamError::AddressInUse(ip("172.22.16.1"))));
        let subnet = cidr("172.22.16.0/24");
        for reserved in ["172.22.16.0", "172.22.16.255"] {
            let err = net.allocate("b", Some(ip(reserved))).unwrap_err();
            assert_eq!(err, IpamError::AddressReserved { ip: ip(reserved), subnet });
        }
        let err = net.allocate("b", Some(ip("10.0.0.5"))).unwrap_err();
        assert_eq!(err, IpamError::AddressOutside { ip: ip("10.0.0.5"), subnet });
        assert_eq!(
            err.to_string(),
            "invalid address 10.0.0.5: it does not belong to this network's subnet 172.22.16.0/24"
        );
        assert_eq!(net.address_of("b"), None, "failed requests change nothing");
        assert_eq!(net.allocations.len(), 1);

        // Dynamic allocation steps around static ones.
        net.allocate("s", Some(ip("172.22.16.2"))).unwrap();
        assert_eq!(net.allocate("d", None), Ok(ip("172.22.16.3")));

        // Another wanted address replaces the one held, once found free.
        assert_eq!(net.allocate("a", Some(ip("172.22.16.3"))), Err(IpamError::AddressInUse(ip("172.22.16.3"))));
        assert_eq!(net.address_of("a"), Some(ip("172.22.16.50")));
        assert_eq!(net.allocate("a", Some(ip("172.22.16.60"))), Ok(ip("172.22.16.60")));
        assert_eq!(net.address_of("a"), Some(ip("172.22.16.60")));
        assert!(!net.allocations.contains_key(&ip("172.22.16.50")));
    }

    #[test]
    fn release_is_idempotent_and_counts() {
        let mut net = small("10.0.0.0/24");
        net.allocate("a", None).unwrap();
        // A record edited by hand (or an older wharf) may hold two for one container.
        net.allocations.insert(ip("10.0.0.9"), "a".into());
        net.allocate("b", None).unwrap();
        assert_eq!(net.release("a"), 2);
        assert_eq!(net.release("a"), 0);
        assert_eq!(net.release("nobody"), 0);
        assert_eq!(net.allocations.len(), 1);
        assert_eq!(net.address_of("b"), Some(ip("10.0.0.3")));
    }

    #[test]
    fn a_slash_30_holds_one_container() {
        let mut net = small("10.0.0.0/30");
        assert_eq!(net.gateway, ip("10.0.0.1"));
        assert_eq!(net.allocate("a", None), Ok(ip("10.0.0.2")));
        let err = net.allocate("b", None).unwrap_err();
        assert_eq!(err, IpamError::Exhausted { network: "small".into(), subnet: cidr("10.0.0.0/30") });
        assert_eq!(err.to_string(), "no available IPv4 addresses on this network's address pools: small (10.0.0.0/30)");
        net.release("a");
        assert_eq!(net.allocate("b", None), Ok(ip("10.0.0.2")));
    }

    #[test]
    fn ip_range_bounds_dynamic_allocation() {
        let req = NetworkRequest { ip_range: Some("172.22.16.8/30".into()), ..with_subnet("r", "172.22.16.0/24") };
        let mut net = build(&req).unwrap();
        assert_eq!(net.ip_range, Some(cidr("172.22.16.8/30")));
        assert_eq!(net.gateway, ip("172.22.16.1"), "the gateway is the subnet's first host, not the range's");
        let got: Vec<Ipv4Addr> = ["a", "b", "c", "d"].iter().map(|c| net.allocate(c, None).unwrap()).collect();
        assert_eq!(got, [ip("172.22.16.8"), ip("172.22.16.9"), ip("172.22.16.10"), ip("172.22.16.11")]);
        let err = net.allocate("e", None).unwrap_err();
        assert_eq!(err, IpamError::Exhausted { network: "r".into(), subnet: cidr("172.22.16.0/24") });
        // Static addresses may lie outside the range (Docker's behaviour).
        assert_eq!(net.allocate("e", Some(ip("172.22.16.200"))), Ok(ip("172.22.16.200")));

        // A range at the subnet's start skips the network address and the gateway.
        let req = NetworkRequest { ip_range: Some("172.22.16.0/29".into()), ..with_subnet("r", "172.22.16.0/24") };
        let mut net = build(&req).unwrap();
        assert_eq!(net.allocate("a", None), Ok(ip("172.22.16.2")));
        // A range at the end skips the broadcast address.
        let req = NetworkRequest { ip_range: Some("172.22.16.254/31".into()), ..with_subnet("r", "172.22.16.0/24") };
        let mut net = build(&req).unwrap();
        assert_eq!(net.allocate("a", None), Ok(ip("172.22.16.254")));
        assert!(matches!(net.allocate("b", None), Err(IpamError::Exhausted { .. })));
    }

    #[test]
    fn macs_as_docker_makes_them() {
        assert_eq!(mac_for(ip("172.22.16.2")), [0x02, 0x42, 0xac, 0x16, 0x10, 0x02]);
        assert_eq!(format_mac(mac_for(ip("172.22.16.2"))), "02:42:ac:16:10:02");
        assert_eq!(format_mac(mac_for(ip("10.0.0.255"))), "02:42:0a:00:00:ff");
    }

    #[test]
    fn records_round_trip_through_the_store() {
        let scratch = Scratch::new("ipam-store");
        let store = NetworkStore::new(&scratch.root());
        assert_eq!(store.list().unwrap(), vec![], "no directory yet");
        assert_eq!(store.get("my_net"), Err(IpamError::NotFound("my_net".into())));
        assert_eq!(IpamError::NotFound("my_net".into()).to_string(), "network my_net not found");
        store.remove("my_net").unwrap();

        let mut b = build(&with_subnet("my_net2", "172.22.16.0/24")).unwrap();
        b.ip_range = Some(cidr("172.22.16.128/25"));
        b.allocate("c1", None).unwrap();
        b.allocate("c2", Some(ip("172.22.16.9"))).unwrap();
        b.options.insert("mtu".into(), "1400".into());
        let mut a = Network::from_request(&request("my_net"), "f".repeat(64), &[b.subnet], &[]).unwrap();
        a.id = format!("0123{}", "e".repeat(60));
        store.save(&b).unwrap();
        store.save(&a).unwrap();

        let text = fs::read_to_string(scratch.root().dir().join("networks/my_net2.json")).unwrap();
        assert!(text.contains("\"subnet\": \"172.22.16.0/24\""), "{text}");
        assert!(text.contains("\"172.22.16.128\": \"c1\""), "{text}");

        assert_eq!(store.get("my_net2").unwrap(), b);
        assert_eq!(store.list().unwrap(), vec![a.clone(), b.clone()]);

        // find: full id, name, unique id prefix.
        assert_eq!(store.find(&b.id).unwrap(), b);
        assert_eq!(store.find("my_net").unwrap(), a);
        assert_eq!(store.find("0123e").unwrap(), a);
        assert_eq!(store.find("01234").unwrap(), b);
        assert_eq!(store.find("0123"), Err(IpamError::Ambiguous { reference: "0123".into(), matches: 2 }));
        assert_eq!(
            IpamError::Ambiguous { reference: "0123".into(), matches: 2 }.to_string(),
            "network 0123 is ambiguous (2 matches found based on ID prefix)"
        );
        assert_eq!(store.find("zzz"), Err(IpamError::NotFound("zzz".into())));
        assert_eq!(store.find(""), Err(IpamError::NotFound("".into())));
        assert_eq!(store.get("../x"), Err(IpamError::NotFound("../x".into())));

        // Saving again replaces; temporary files are not records.
        b.release("c1");
        store.save(&b).unwrap();
        assert_eq!(store.get("my_net2").unwrap().allocations.len(), 1);
        fs::write(scratch.root().dir().join("networks/my_net.json.tmp123"), "garbage").unwrap();
        assert_eq!(store.list().unwrap().len(), 2);

        store.remove("my_net").unwrap();
        store.remove("my_net").unwrap();
        assert_eq!(store.list().unwrap(), vec![b]);

        let mut bad = a;
        bad.name = "../escape".into();
        assert_eq!(store.save(&bad).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
