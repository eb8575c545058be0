//! What `wharf nat` is asked to do, validated before anything is opened:
//! the two interfaces and the addresses wharf owns on them, the next hop
//! outside, which inside prefixes are masqueraded, and the published ports.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 address with its prefix length: `10.0.0.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }

    /// The network address (host bits zero).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// Whether `ip` is in this network and can be a host's: not its network
    /// or broadcast address (which a /31 or /32 does not have, RFC 3021).
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        let host_bits = u32::from(ip) & !self.mask();
        self.contains(ip) && (self.prefix >= 31 || (host_bits != 0 && host_bits != !self.mask()))
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) =
            s.split_once('/').ok_or_else(|| format!("{s:?}: give an address with a prefix, like 10.0.0.1/24"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| format!("{s:?}: {addr:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to 32"))?;
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// TCP or UDP, for published ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// A published port or range: `tcp:8080:10.0.0.2:80`, `udp:5000-5009:10.0.0.3:5000-5009`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish {
    pub proto: Proto,
    pub external_ports: (u16, u16),
    pub internal_addr: Ipv4Addr,
    pub internal_ports: (u16, u16),
}

fn port_range(s: &str) -> Result<(u16, u16), String> {
    let port =
        |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| format!("{p:?} is not a port (1-65535)"));
    let (first, last) = match s.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(s)?, port(s)?),
    };
    if last < first {
        return Err(format!("port range {s} ends before it starts"));
    }
    Ok((first, last))
}

impl FromStr for Publish {
    type Err = String;
    fn from_str(s: &str) -> Result<Publish, String> {
        let bad = |why: String| format!("--publish {s}: {why} (the form is tcp:8080:10.0.0.2:80)");
        let parts: Vec<&str> = s.split(':').collect();
        let [proto, external, addr, internal] = parts[..] else { return Err(bad("four fields expected".into())) };
        let proto = match proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            other => return Err(bad(format!("unknown protocol {other:?}"))),
        };
        let external_ports = port_range(external).map_err(bad)?;
        let internal_ports = port_range(internal).map_err(bad)?;
        let len = |(a, b): (u16, u16)| b - a;
        if len(internal_ports) != len(external_ports) && len(internal_ports) != 0 {
            return Err(bad("the internal range must be as long as the external one, or one port".into()));
        }
        let internal_addr = addr.parse().map_err(|_| bad(format!("{addr:?} is not an IPv4 address")))?;
        Ok(Publish { proto, external_ports, internal_addr, internal_ports })
    }
}

/// A validated `wharf nat` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatSpec {
    pub inside: String,
    pub inside_addr: Cidr,
    pub outside: String,
    pub outside_addr: Cidr,
    pub gateway: Option<Ipv4Addr>,
    pub masquerade: Vec<Cidr>,
    pub publish: Vec<Publish>,
    pub max_entries: usize,
}

impl NatSpec {
    /// Checks that the pieces fit together.
    pub fn validated(self) -> Result<NatSpec, String> {
        if self.inside == self.outside {
            return Err(format!("--inside and --outside are both {}: give two interfaces", self.inside));
        }
        if self.inside_addr.contains(self.outside_addr.addr) || self.outside_addr.contains(self.inside_addr.addr) {
            return Err(format!("--inside-addr {} and --outside-addr {} overlap", self.inside_addr, self.outside_addr));
        }
        for (flag, cidr) in [("--inside-addr", self.inside_addr), ("--outside-addr", self.outside_addr)] {
            if !cidr.is_host(cidr.addr) {
                return Err(format!("{flag} {cidr} is the network's own or broadcast address, not a host's"));
            }
        }
        if let Some(gateway) = self.gateway {
            if !self.outside_addr.contains(gateway) {
                return Err(format!("--outside-gateway {gateway} is not in {}", self.outside_addr));
            }
            if gateway == self.outside_addr.addr || !self.outside_addr.is_host(gateway) {
                return Err(format!(
                    "--outside-gateway {gateway} must be another host of {}: not wharf's own, network or broadcast address",
                    self.outside_addr
                ));
            }
        }
        for publish in &self.publish {
            if !self.inside_addr.contains(publish.internal_addr) {
                return Err(format!(
                    "--publish to {} is not in the inside network {}",
                    publish.internal_addr, self.inside_addr
                ));
            }
            if publish.internal_addr == self.inside_addr.addr || !self.inside_addr.is_host(publish.internal_addr) {
                return Err(format!(
                    "--publish to {} must be a host of {}: not wharf's own, network or broadcast address",
                    publish.internal_addr, self.inside_addr
                ));
            }
        }
        if self.max_entries == 0 {
            return Err("--max-entries must be at least 1".into());
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> NatSpec {
        NatSpec {
            inside: "in0".into(),
            inside_addr: "10.0.0.1/24".parse().unwrap(),
            outside: "out0".into(),
            outside_addr: "203.0.113.10/24".parse().unwrap(),
            gateway: Some(Ipv4Addr::new(203, 0, 113, 1)),
            masquerade: vec!["10.0.0.0/24".parse().unwrap()],
            publish: vec!["tcp:8080:10.0.0.2:80".parse().unwrap()],
            max_entries: 65536,
        }
    }

    #[test]
    fn addresses_and_publish_rules_parse() {
        let cidr: Cidr = "10.0.0.1/24".parse().unwrap();
        assert!(cidr.contains(Ipv4Addr::new(10, 0, 0, 200)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 0, 1, 1)));
        assert_eq!(cidr.network(), Ipv4Addr::new(10, 0, 0, 0));
        let p: Publish = "udp:5000-5009:10.0.0.3:6000-6009".parse().unwrap();
        assert_eq!((p.proto, p.external_ports, p.internal_ports), (Proto::Udp, (5000, 5009), (6000, 6009)));
        for (bad, why) in
            [("10.0.0.1", "with a prefix"), ("10.0.0.1/33", "0 to 32"), ("10.0.0.300/24", "not an IPv4 address")]
        {
            assert!(bad.parse::<Cidr>().unwrap_err().contains(why), "{bad}");
        }
        for (bad, why) in [
            ("sctp:80:10.0.0.2:80", "unknown protocol"),
            ("tcp:80:10.0.0.2", "four fields"),
            ("tcp:0:10.0.0.2:80", "not a port"),
            ("tcp:90-80:10.0.0.2:80", "ends before"),
            ("tcp:80-89:10.0.0.2:80-81", "as long as"),
            ("tcp:80:10.0.0:80", "not an IPv4 address"),
        ] {
            assert!(bad.parse::<Publish>().unwrap_err().contains(why), "{bad}");
        }
    }

    #[test]
    fn inconsistent_runs_are_refused() {
        assert!(spec().validated().is_ok());
        let same = NatSpec { outside: "in0".into(), ..spec() };
        assert!(same.validated().unwrap_err().contains("two interfaces"));
        let gw = NatSpec { gateway: Some(Ipv4Addr::new(198, 51, 100, 1)), ..spec() };
        assert!(gw.validated().unwrap_err().contains("is not in 203.0.113.10/24"));
        let overlap = NatSpec { outside_addr: "10.0.0.9/16".parse().unwrap(), ..spec() };
        assert!(overlap.validated().unwrap_err().contains("overlap"));
        let publish = NatSpec { publish: vec!["tcp:80:192.168.1.2:80".parse().unwrap()], ..spec() };
        assert!(publish.validated().unwrap_err().contains("not in the inside network"));
        for (bad, why) in [
            (
                NatSpec { inside_addr: "10.0.0.0/24".parse().unwrap(), ..spec() },
                "--inside-addr 10.0.0.0/24 is the network's",
            ),
            (NatSpec { inside_addr: "10.0.0.255/24".parse().unwrap(), ..spec() }, "broadcast"),
            (NatSpec { outside_addr: "203.0.113.0/24".parse().unwrap(), ..spec() }, "--outside-addr"),
            (NatSpec { gateway: Some(Ipv4Addr::new(203, 0, 113, 10)), ..spec() }, "another host of"),
            (NatSpec { gateway: Some(Ipv4Addr::new(203, 0, 113, 255)), ..spec() }, "another host of"),
            (NatSpec { publish: vec!["tcp:80:10.0.0.1:80".parse().unwrap()], ..spec() }, "not wharf's own"),
            (NatSpec { publish: vec!["tcp:80:10.0.0.0:80".parse().unwrap()], ..spec() }, "must be a host of"),
        ] {
            let err = bad.clone().validated().unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        // A /31 has no network or broadcast address (RFC 3021).
        let point_to_point = NatSpec {
            outside_addr: "203.0.113.10/31".parse().unwrap(),
            gateway: Some(Ipv4Addr::new(203, 0, 113, 11)),
            ..spec()
        };
        assert!(point_to_point.validated().is_ok());
    }
}
