//! The `wharf` command line: Docker's words for containers, `ip link`'s
//! words for the data plane's devices.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

use crate::vtep::spec::{File, LocalPort, Spec, SpecError, VniSpec};

/// wharf: a userspace data plane for container networks.
#[derive(Debug, Parser)]
#[command(name = "wharf", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a userspace VXLAN tunnel endpoint, as `ip link add type vxlan` would
    /// create one in the kernel; `wharf vtep stats NAME` prints its counters.
    Vtep(VtepCommand),
    /// Run a NAT gateway between two interfaces whose addresses wharf owns:
    /// masquerade for the inside networks, DNAT for published ports;
    /// `wharf nat stats NAME` prints its counters.
    Nat(NatCommand),
    #[command(flatten)]
    Container(crate::container::cli::ContainerCommand),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct NatCommand {
    #[command(subcommand)]
    pub action: Option<NatAction>,
    #[command(flatten)]
    pub run: NatArgs,
}

#[derive(Debug, Subcommand)]
pub enum NatAction {
    /// Print the counters of the gateway whose inside interface is NAME.
    Stats {
        /// The gateway's --inside interface.
        name: Option<String>,
        /// The gateway's stats socket, instead of NAME.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
}

/// `wharf nat` flags.
#[derive(Debug, Args)]
pub struct NatArgs {
    /// The interface facing the containers (a veth end, a bridge port).
    #[arg(long, value_name = "IFACE", required = true)]
    pub inside: Option<String>,
    /// wharf's address on the inside network, with its prefix: the
    /// containers' default gateway.
    #[arg(long, value_name = "CIDR", required = true)]
    pub inside_addr: Option<String>,
    /// The uplink interface.
    #[arg(long, value_name = "IFACE", required = true)]
    pub outside: Option<String>,
    /// wharf's address on the outside network, with its prefix: the address
    /// masqueraded connections leave from and published ports are on.
    #[arg(long, value_name = "CIDR", required = true)]
    pub outside_addr: Option<String>,
    /// The next hop for destinations off the outside network.
    #[arg(long, value_name = "IP")]
    pub outside_gateway: Option<std::net::Ipv4Addr>,
    /// Masquerade connections from this inside network (repeatable).
    #[arg(long = "masquerade", value_name = "CIDR")]
    pub masquerade: Vec<String>,
    /// Publish a port: PROTO:EXTERNAL-PORT[-LAST]:INTERNAL-IP:INTERNAL-PORT[-LAST] (repeatable).
    #[arg(long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// The most connections tracked at once.
    #[arg(long, value_name = "N", default_value_t = 65536)]
    pub max_entries: usize,
    /// Where to serve `wharf nat stats` (default: $WHARF_ROOT/run/nat-INSIDE.sock).
    #[arg(long, value_name = "PATH")]
    pub stats_socket: Option<PathBuf>,
}

impl NatArgs {
    /// The flags as a validated [`NatSpec`](crate::nat::spec::NatSpec).
    pub fn spec(&self) -> Result<crate::nat::spec::NatSpec, String> {
        let cidr = |flag: &str, value: &Option<String>| -> Result<crate::nat::spec::Cidr, String> {
            value
                .as_deref()
                .ok_or_else(|| format!("--{flag} is required"))?
                .parse()
                .map_err(|e| format!("--{flag} {e}"))
        };
        crate::nat::spec::NatSpec {
            inside: self.inside.clone().ok_or("--inside is required")?,
            inside_addr: cidr("inside-addr", &self.inside_addr)?,
            outside: self.outside.clone().ok_or("--outside is required")?,
            outside_addr: cidr("outside-addr", &self.outside_addr)?,
            gateway: self.outside_gateway,
            masquerade: self
                .masquerade
                .iter()
                .map(|m| m.parse().map_err(|e| format!("--masquerade {e}")))
                .collect::<Result<_, String>>()?,
            publish: self.publish.iter().map(|p| p.parse()).collect::<Result<_, String>>()?,
            max_entries: self.max_entries,
        }
        .validated()
    }
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct VtepCommand {
    #[command(subcommand)]
    pub action: Option<VtepAction>,
    #[command(flatten)]
    pub run: VtepArgs,
}

#[derive(Debug, Subcommand)]
pub enum VtepAction {
    /// Print the counters of the VTEP serving NAME (its TAP or device).
    Stats {
        /// The TAP device or interface the VTEP was started with.
        name: Option<String>,
        /// The VTEP's stats socket, instead of NAME.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
}

/// `wharf vtep` flags, named after `ip link add type vxlan`'s.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("port").args(["tap", "dev"]).multiple(false)))]
pub struct VtepArgs {
    /// The VXLAN network identifier (0 to 16777215).
    #[arg(long, value_name = "VNI", requires = "port", conflicts_with = "config")]
    pub vni: Option<u32>,
    /// The underlay address of this host: the source of encapsulated packets.
    #[arg(long, value_name = "IP")]
    pub local: Option<IpAddr>,
    /// A remote VTEP: frames for unknown, broadcast and multicast MACs go to
    /// every remote (repeatable).
    #[arg(long = "remote", value_name = "IP")]
    pub remotes: Vec<IpAddr>,
    /// Create (or attach to) this TAP device and carry its frames.
    #[arg(long, value_name = "NAME")]
    pub tap: Option<String>,
    /// Carry the frames of this existing interface (AF_PACKET).
    #[arg(long, value_name = "IFACE")]
    pub dev: Option<String>,
    /// The UDP destination port (4789 is IANA's; the kernel and flannel
    /// default to 8472).
    #[arg(long, value_name = "PORT")]
    pub dstport: Option<u16>,
    /// The UDP source-port range, chosen per flow by hash.
    #[arg(long, num_args = 2, value_names = ["MIN", "MAX"])]
    pub srcport: Option<Vec<u16>>,
    /// Learn inner source MACs from received packets (the default).
    #[arg(long, overrides_with = "nolearning")]
    pub learning: bool,
    /// Do not learn: only static FDB entries and the flood list.
    #[arg(long, overrides_with = "learning")]
    pub nolearning: bool,
    /// The outer TTL / hop limit.
    #[arg(long, value_name = "N")]
    pub ttl: Option<u8>,
    /// Answer ARP requests and IPv6 neighbour solicitations for known
    /// addresses locally instead of flooding them (the kernel's `proxy`).
    #[arg(long, alias = "proxy")]
    pub proxy_arp: bool,
    /// Seconds after which a learned FDB entry is forgotten.
    #[arg(long, value_name = "SECONDS")]
    pub ageing: Option<u64>,
    /// The most FDB entries to hold.
    #[arg(long, value_name = "N")]
    pub maxaddress: Option<usize>,
    /// Compute the outer UDP checksum over IPv4 (zero by default).
    #[arg(long)]
    pub udpcsum: bool,
    /// Send a zero outer UDP checksum over IPv6.
    #[arg(long)]
    pub udp6zerocsumtx: bool,
    /// Accept a zero outer UDP checksum over IPv6.
    #[arg(long)]
    pub udp6zerocsumrx: bool,
    /// The underlay path MTU: larger frames are dropped and counted.
    #[arg(long, value_name = "BYTES")]
    pub mtu: Option<u16>,
    /// Answer a frame too big for the underlay with ICMP "fragmentation
    /// needed" (IPv4 with DF) or ICMPv6 "packet too big", so the sender
    /// lowers its path MTU; without it such frames are only dropped.
    #[arg(long)]
    pub frag_needed: bool,
    /// Hand each TCP superframe from the TAP to the kernel whole, as one
    /// UDP-tunnel GSO packet (Linux 6.17 or later), through a TAP of its own
    /// redirected by tc to the underlay device, instead of cutting it into
    /// datagrams here (IPv4 underlay).
    #[arg(long)]
    pub tunnel_gso: bool,
    /// A TOML file with several VNIs and static FDB entries (see the README);
    /// flags given as well override its settings.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where to serve `wharf vtep stats` (default: $WHARF_ROOT/run/vtep-NAME.sock).
    #[arg(long, value_name = "PATH")]
    pub stats_socket: Option<PathBuf>,
}

impl VtepArgs {
    /// Merges the file (if any) and the flags into a validated [`Spec`].
    pub fn spec(&self) -> Result<Spec, SpecError> {
        let mut file = match &self.config {
            Some(path) => File::load(path)?,
            None => File::default(),
        };
        file.local = self.local.or(file.local);
        file.dstport = self.dstport.or(file.dstport);
        if let Some(ports) = &self.srcport {
            file.srcport = Some((ports[0], ports[1]));
        }
        file.ttl = self.ttl.or(file.ttl);
        if self.learning || self.nolearning {
            file.learning = Some(self.learning);
        }
        if self.proxy_arp {
            file.proxy = Some(true);
        }
        file.ageing = self.ageing.or(file.ageing);
        file.maxaddress = self.maxaddress.or(file.maxaddress);
        if self.udpcsum {
            file.udpcsum = Some(true);
        }
        if self.udp6zerocsumtx {
            file.udp6zerocsumtx = Some(true);
        }
        if self.udp6zerocsumrx {
            file.udp6zerocsumrx = Some(true);
        }
        file.mtu = self.mtu.or(file.mtu);
        if self.tunnel_gso {
            file.tunnel_gso = Some(true);
        }
        if self.frag_needed {
            file.frag_needed = Some(true);
        }
        let mut spec = file.into_unvalidated_spec()?;
        if let Some(vni) = self.vni {
            let port = match (&self.tap, &self.dev) {
                (Some(tap), None) => LocalPort::Tap(tap.clone()),
                (None, Some(dev)) => LocalPort::Dev(dev.clone()),
                _ => return Err(SpecError::Invalid("--vni needs --tap NAME or --dev IFACE".into())),
            };
            spec.vnis.push(VniSpec { vni, port, remotes: self.remotes.clone(), fdb: vec![], neighbours: vec![] });
        } else if !self.remotes.is_empty() || self.tap.is_some() || self.dev.is_some() {
            return Err(SpecError::Invalid("--remote, --tap and --dev go with --vni".into()));
        }
        spec.validated()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("wharf").chain(args.iter().copied()))
    }

    fn spec(args: &[&str]) -> Result<Spec, String> {
        let cli = parse(args).map_err(|e| e.to_string())?;
        let Command::Vtep(VtepCommand { action: None, run }) = cli.command else { panic!("not a vtep run") };
        run.spec().map_err(|e| e.to_string())
    }

    #[test]
    fn flags_like_ip_link() {
        let s = spec(&[
            "vtep",
            "--vni",
            "42",
            "--local",
            "192.0.2.1",
            "--remote",
            "192.0.2.2",
            "--remote",
            "192.0.2.3",
            "--tap",
            "wh0",
            "--dstport",
            "8472",
            "--srcport",
            "40000",
            "40010",
            "--nolearning",
            "--ttl",
            "9",
            "--proxy-arp",
        ])
        .unwrap();
        assert_eq!(s.vnis.len(), 1);
        assert_eq!(s.vnis[0].vni, 42);
        assert_eq!(s.vnis[0].port, LocalPort::Tap("wh0".into()));
        assert_eq!(s.vnis[0].remotes.len(), 2);
        assert_eq!((s.dst_port, s.src_ports, s.learning, s.ttl, s.proxy), (8472, (40000, 40010), false, 9, true));
        let s = spec(&["vtep", "--vni", "1", "--local", "2001:db8::1", "--dev", "veth0"]).unwrap();
        assert_eq!((s.dst_port, s.src_ports, s.learning), (4789, (49152, 65535), true));
    }

    #[test]
    fn bad_flags_are_refused_with_the_flag_named() {
        let cases: &[(&[&str], &str)] = &[
            (&["vtep", "--vni", "42", "--local", "192.0.2.1"], "--tap"),
            (&["vtep", "--vni", "42", "--local", "192.0.2.1", "--tap", "a", "--dev", "b"], "cannot be used"),
            (&["vtep", "--vni", "x", "--local", "192.0.2.1", "--tap", "a"], "invalid value"),
            (&["vtep", "--vni", "42", "--tap", "a"], "`local`"),
            (&["vtep", "--vni", "16777216", "--local", "192.0.2.1", "--tap", "a"], "24 bits"),
            (&["vtep", "--vni", "42", "--local", "192.0.2.1", "--tap", "a", "--remote", "2001:db8::2"], "families"),
            (&["vtep", "--vni", "42", "--local", "192.0.2.1", "--tap", "a", "--srcport", "9"], "2 values"),
            (&["vtep", "--vni", "42", "--local", "192.0.2.1", "--tap", "a", "--ttl", "0"], "--ttl"),
            (&["vtep", "--local", "192.0.2.1"], "no VNI"),
            (&["vtep", "--vni", "42", "--local", "192.0.2.1", "--tap", "a", "--bogus"], "unexpected argument"),
        ];
        for (args, expected) in cases {
            let err = spec(args).unwrap_err();
            assert!(err.contains(expected), "{args:?}: {err}");
        }
    }

    #[test]
    fn stats_subcommand() {
        let cli = parse(&["vtep", "stats", "wh0"]).unwrap();
        let Command::Vtep(VtepCommand { action: Some(VtepAction::Stats { name, socket }), .. }) = cli.command else {
            panic!("not stats")
        };
        assert_eq!((name.as_deref(), socket), (Some("wh0"), None));
    }
}
