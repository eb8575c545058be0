//! Port mappings: what a proxy listens on and where it forwards, parsed from
//! docker-proxy's flags or from a `-map` SPEC
//! (`proto:host-ip:host-ports:container-ip:container-ports`).
//!
//! What this module does not do: open sockets (the runner does).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// The transport a mapping forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    /// Accepted for docker-proxy compatibility; the runner reports a kernel
    /// without SCTP, and has no SCTP relay.
    Sctp,
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Protocol, String> {
        match s {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "sctp" => Ok(Protocol::Sctp),
            _ => Err(format!("unknown protocol {s:?}: use tcp, udp or sctp")),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// An inclusive range of ports, `first..=last`, never containing port 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// One port.
    pub fn single(port: u16) -> Result<PortRange, String> {
        PortRange::new(port, port)
    }

    pub fn new(first: u16, last: u16) -> Result<PortRange, String> {
        if first == 0 {
            return Err("port 0 is not a port to listen on or forward to".into());
        }
        if last < first {
            return Err(format!("port range {first}-{last} ends before it starts"));
        }
        Ok(PortRange { first, last })
    }

    pub fn first(&self) -> u16 {
        self.first
    }

    pub fn last(&self) -> u16 {
        self.last
    }

    /// How many ports.
    pub fn len(&self) -> usize {
        usize::from(self.last - self.first) + 1
    }

    /// Never empty; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Parses one port, 1 to 65535.
pub fn parse_port(s: &str) -> Result<u16, String> {
    match s.parse::<u32>() {
        Ok(0) => Err("port 0 is not a port to listen on or forward to".into()),
        Ok(n) if n <= 65535 => Ok(n as u16),
        Ok(n) => Err(format!("port {n} is out of range 1-65535")),
        Err(_) => Err(format!("{s:?} is not a port number")),
    }
}

/// Parses an IP address, IPv6 with or without brackets.
pub fn parse_ip(s: &str) -> Result<IpAddr, String> {
    let bare = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(s);
    bare.parse().map_err(|_| format!("{s:?} is not an IPv4 or IPv6 address"))
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<PortRange, String> {
        match s.split_once('-') {
            Some((first, last)) => PortRange::new(parse_port(first)?, parse_port(last)?),
            None => PortRange::single(parse_port(s)?),
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// Host ports forwarded to container ports of one address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mapping {
    pub proto: Protocol,
    pub host_ip: IpAddr,
    pub host_ports: PortRange,
    pub container_ip: IpAddr,
    /// As long as `host_ports`, or one port that every host port forwards to.
    pub container_ports: PortRange,
}

impl Mapping {
    /// A mapping, checked: the container range is as long as the host range
    /// or is a single port.
    pub fn new(
        proto: Protocol,
        host_ip: IpAddr,
        host_ports: PortRange,
        container_ip: IpAddr,
        container_ports: PortRange,
    ) -> Result<Mapping, String> {
        if container_ports.len() != 1 && container_ports.len() != host_ports.len() {
            return Err(format!(
                "host ports {host_ports} ({} ports) and container ports {container_ports} ({} ports) differ in \
                 length; give a range as long, or one container port",
                host_ports.len(),
                container_ports.len()
            ));
        }
        if container_ip.is_unspecified() {
            return Err(format!("container address {container_ip} is unspecified; give the container's address"));
        }
        Ok(Mapping { proto, host_ip, host_ports, container_ip, container_ports })
    }

    /// Every (host address, container address) pair, in port order.
    pub fn pairs(&self) -> impl Iterator<Item = (SocketAddr, SocketAddr)> + '_ {
        (0..self.host_ports.len()).map(move |i| {
            let host = self.host_ports.first as usize + i;
            let container = if self.container_ports.len() == 1 {
                self.container_ports.first as usize
            } else {
                self.container_ports.first as usize + i
            };
            (SocketAddr::new(self.host_ip, host as u16), SocketAddr::new(self.container_ip, container as u16))
        })
    }
}

impl FromStr for Mapping {
    type Err = String;
    /// `proto:host-ip:host-ports:container-ip:container-ports`; IPv6
    /// addresses in brackets.
    fn from_str(spec: &str) -> Result<Mapping, String> {
        let explain =
            |why: String| format!("{why} (the form is proto:host-ip:host-ports:container-ip:container-ports)");
        let (proto, rest) = spec.split_once(':').ok_or_else(|| explain(format!("no protocol in {spec:?}")))?;
        let proto: Protocol = proto.parse().map_err(explain)?;
        let (host_ip, rest) = split_ip(rest).map_err(explain)?;
        let (host_ports, rest) =
            rest.split_once(':').ok_or_else(|| explain(format!("no container address in {spec:?}")))?;
        let (container_ip, container_ports) = split_ip(rest).map_err(explain)?;
        Mapping::new(
            proto,
            host_ip,
            host_ports.parse().map_err(explain)?,
            container_ip,
            container_ports.parse().map_err(explain)?,
        )
    }
}

/// Splits `ip:rest`, where an IPv6 address is in brackets.
fn split_ip(s: &str) -> Result<(IpAddr, &str), String> {
    let (ip, rest) = if let Some(bracketed) = s.strip_prefix('[') {
        let (ip, rest) = bracketed.split_once(']').ok_or_else(|| format!("unclosed bracket in {s:?}"))?;
        (ip, rest.strip_prefix(':').ok_or_else(|| format!("no ':' after [{ip}]"))?)
    } else {
        s.split_once(':').ok_or_else(|| format!("no port after the address in {s:?}"))?
    };
    Ok((parse_ip(ip)?, rest))
}

impl fmt::Display for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = |ip: &IpAddr| match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        write!(
            f,
            "{}:{}:{}:{}:{}",
            self.proto,
            ip(&self.host_ip),
            self.host_ports,
            ip(&self.container_ip),
            self.container_ports
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_back() {
        for spec in [
            "tcp:0.0.0.0:8000-8999:172.17.0.2:8000-8999",
            "udp:[::1]:5353:[fd00::2]:53",
            "tcp:127.0.0.1:80-81:10.0.0.2:80",
        ] {
            let mapping: Mapping = spec.parse().unwrap();
            assert_eq!(mapping.to_string(), spec);
        }
        let m: Mapping = "tcp:0.0.0.0:8000-8002:172.17.0.2:9000-9002".parse().unwrap();
        let pairs: Vec<_> = m.pairs().map(|(h, c)| (h.port(), c.port())).collect();
        assert_eq!(pairs, [(8000, 9000), (8001, 9001), (8002, 9002)]);
        let m: Mapping = "udp:[::]:7000-7001:10.0.0.2:53".parse().unwrap();
        let pairs: Vec<_> = m.pairs().map(|(h, c)| (h.to_string(), c.to_string())).collect();
        assert_eq!(pairs[1], ("[::]:7001".to_string(), "10.0.0.2:53".to_string()));
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let cases = [
            ("icmp:0.0.0.0:80:10.0.0.2:80", "unknown protocol"),
            ("tcp:0.0.0.0:80", "no container address"),
            ("tcp:0.0.0.300:80:10.0.0.2:80", "not an IPv4 or IPv6 address"),
            ("tcp:0.0.0.0:70000:10.0.0.2:80", "out of range"),
            ("tcp:0.0.0.0:0:10.0.0.2:80", "port 0"),
            ("tcp:0.0.0.0:90-80:10.0.0.2:80", "ends before it starts"),
            ("tcp:0.0.0.0:80-89:10.0.0.2:80-81", "differ in length"),
            ("tcp:[::1:80:10.0.0.2:80", "unclosed bracket"),
            ("tcp:0.0.0.0:80:0.0.0.0:80", "unspecified"),
            ("tcp:0.0.0.0:http:10.0.0.2:80", "not a port number"),
        ];
        for (spec, want) in cases {
            let err = spec.parse::<Mapping>().unwrap_err();
            assert!(err.contains(want), "{spec}: {err}");
        }
    }
}
