//! Published ports: Docker's `-p` forms parsed, a random host port chosen
//! for `-p CONTAINER_PORT`, and the `-map` SPECs of the one wharf-proxy
//! process that serves all of a container's ports.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One `-p` value: a host port range to a container port range of the same length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSpec {
    pub host_ip: Option<IpAddr>,
    /// First host port; 0 until a random one is chosen.
    pub host_port: u16,
    pub container_port: u16,
    /// How many consecutive ports.
    pub count: u16,
    pub proto: Proto,
}

impl PortSpec {
    /// Parses `[HOST_IP:]HOST_PORT[-LAST]:CONTAINER_PORT[-LAST][/tcp|/udp]` or
    /// `CONTAINER_PORT[/proto]` (a random host port).
    pub fn parse(text: &str) -> Result<PortSpec, String> {
        let bad = |why: &str| format!("invalid port specification: \"{text}\": {why}");
        let (rest, proto) = split_proto(text).map_err(|why| bad(&why))?;
        // An IPv6 host address is bracketed: [::1]:8080:80.
        let (host_ip, rest) = if let Some(stripped) = rest.strip_prefix('[') {
            let (ip, rest) = stripped.split_once("]:").ok_or_else(|| bad("unclosed IPv6 address"))?;
            (Some(ip.parse::<IpAddr>().map_err(|_| bad("bad host IP"))?), rest)
        } else {
            let parts: Vec<&str> = rest.split(':').collect();
            match parts.len() {
                3 => (Some(parts[0].parse::<IpAddr>().map_err(|_| bad("bad host IP"))?), &rest[parts[0].len() + 1..]),
                1 | 2 => (None, rest),
                _ => return Err(bad("too many colons")),
            }
        };
        let (host, container) = match rest.split_once(':') {
            Some((host, container)) => (Some(host), container),
            None => (None, rest),
        };
        let (container_port, container_count) = range(container).ok_or_else(|| bad("bad container port"))?;
        let (host_port, count) = match host {
            None | Some("") => (0, container_count),
            Some(host) => range(host).ok_or_else(|| bad("bad host port"))?,
        };
        if host_port != 0 && count != container_count {
            return Err(bad("the host and container port ranges differ in length"));
        }
        Ok(PortSpec { host_ip, host_port, container_port, count: container_count, proto })
    }

    /// The wharf-proxy `-map` SPEC to the container at `container_ip`.
    pub fn proxy_map(&self, container_ip: Ipv4Addr) -> String {
        let host_ip = self.host_text();
        format!(
            "{}:{host_ip}:{}:{container_ip}:{}",
            self.proto.name(),
            span(self.host_port, self.count),
            span(self.container_port, self.count)
        )
    }

    /// The host address as the `-p` and `-map` forms write it: an IPv6
    /// address in brackets, every address when none was given.
    fn host_text(&self) -> String {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => format!("[{ip}]"),
            Some(IpAddr::V4(ip)) => ip.to_string(),
            None => "0.0.0.0".into(),
        }
    }

    /// `wharf port` lines: `80/tcp -> 0.0.0.0:8080`, one per port.
    pub fn port_lines(&self) -> Vec<String> {
        let host_ip = self.host_text();
        (0..self.count)
            .map(|i| format!("{}/{} -> {host_ip}:{}", self.container_port + i, self.proto.name(), self.host_port + i))
            .collect()
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host_ip.is_some() {
            write!(f, "{}:", self.host_text())?;
        }
        write!(
            f,
            "{}:{}/{}",
            span(self.host_port, self.count),
            span(self.container_port, self.count),
            self.proto.name()
        )
    }
}

fn span(first: u16, count: u16) -> String {
    if count <= 1 {
        first.to_string()
    } else {
        format!("{first}-{}", first + (count - 1))
    }
}

/// `PORTS[/tcp|/udp]` → (`PORTS`, the protocol, TCP when none is given).
fn split_proto(text: &str) -> Result<(&str, Proto), String> {
    match text.rsplit_once('/') {
        Some((rest, "tcp")) => Ok((rest, Proto::Tcp)),
        Some((rest, "udp")) => Ok((rest, Proto::Udp)),
        Some((_, other)) => Err(format!("unknown protocol \"{other}\" (tcp or udp)")),
        None => Ok((text, Proto::Tcp)),
    }
}

/// `N` or `N-M` → (N, count); ports 1–65535.
fn range(text: &str) -> Option<(u16, u16)> {
    let (first, last) = match text.split_once('-') {
        Some((first, last)) => (first.parse::<u16>().ok()?, last.parse::<u16>().ok()?),
        None => {
            let port = text.parse::<u16>().ok()?;
            (port, port)
        }
    };
    (first != 0 && last >= first).then(|| (first, last - first + 1))
}

/// `--expose PORT[-LAST][/tcp|/udp]`: container ports the container offers,
/// as Docker's `--expose` takes them. Returns each exposed port as a
/// one-port spec with a random host port, which is what `-P` publishes.
pub fn parse_expose(text: &str) -> Result<Vec<PortSpec>, String> {
    let bad = |why: &str| format!("invalid --expose \"{text}\": {why}");
    let (rest, proto) = split_proto(text).map_err(|why| bad(&why))?;
    let (first, count) = range(rest).ok_or_else(|| bad("a port or range of ports 1-65535 expected"))?;
    Ok((0..count)
        .map(|i| PortSpec { host_ip: None, host_port: 0, container_port: first + i, count: 1, proto })
        .collect())
}

/// What `-P` adds to the `-p` specs: every exposed port (deduplicated)
/// that no `-p` spec already publishes, each to a random host port.
pub fn publish_all(explicit: &[PortSpec], exposed: &[PortSpec]) -> Vec<PortSpec> {
    let published = |port: &PortSpec| {
        let last = |p: &PortSpec| p.container_port.saturating_add(p.count.saturating_sub(1));
        explicit.iter().any(|p| p.proto == port.proto && (p.container_port..=last(p)).contains(&port.container_port))
    };
    let mut added: Vec<PortSpec> = Vec::new();
    for port in exposed {
        if !published(port) && !added.iter().any(|a| a.proto == port.proto && a.container_port == port.container_port) {
            added.push(*port);
        }
    }
    added
}

/// A free host port for `proto`, from the kernel's ephemeral range.
pub fn free_port(proto: Proto) -> std::io::Result<u16> {
    match proto {
        Proto::Tcp => std::net::TcpListener::bind("0.0.0.0:0")?.local_addr().map(|a| a.port()),
        Proto::Udp => std::net::UdpSocket::bind("0.0.0.0:0")?.local_addr().map(|a| a.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_forms_parse() {
        let p = PortSpec::parse("8080:80").unwrap();
        assert_eq!((p.host_ip, p.host_port, p.container_port, p.count, p.proto), (None, 8080, 80, 1, Proto::Tcp));
        let p = PortSpec::parse("127.0.0.1:5353:53/udp").unwrap();
        assert_eq!(p.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(p.proto, Proto::Udp);
        let p = PortSpec::parse("8000-8009:9000-9009").unwrap();
        assert_eq!((p.host_port, p.container_port, p.count), (8000, 9000, 10));
        let p = PortSpec::parse("80").unwrap();
        assert_eq!((p.host_port, p.container_port), (0, 80));
        let p = PortSpec::parse("[::1]:8080:80").unwrap();
        assert_eq!(p.host_ip, Some("::1".parse().unwrap()));
        for bad in ["", "x:80", "8080:0", "8000-8001:80", "1.2.3:80:80", "80/sctp", "70000:80", "9-8:80", "a:b:c:d"] {
            assert!(PortSpec::parse(bad).is_err(), "{bad}");
        }
        assert!(PortSpec::parse("80/sctp").unwrap_err().starts_with("invalid port specification: \"80/sctp\""));
    }

    #[test]
    fn exposed_ports_and_publish_all() {
        let one = |port, proto| PortSpec { host_ip: None, host_port: 0, container_port: port, count: 1, proto };
        assert_eq!(parse_expose("80"), Ok(vec![one(80, Proto::Tcp)]));
        assert_eq!(parse_expose("53/udp"), Ok(vec![one(53, Proto::Udp)]));
        assert_eq!(
            parse_expose("8000-8002/tcp"),
            Ok(vec![one(8000, Proto::Tcp), one(8001, Proto::Tcp), one(8002, Proto::Tcp)])
        );
        for bad in ["", "0", "80/sctp", "8080:80", "9-8", "70000", "x"] {
            let err = parse_expose(bad).unwrap_err();
            assert!(err.starts_with(&format!("invalid --expose \"{bad}\"")), "{err}");
        }
        // -p 8080:80 and -p 9000-9001:9000-9001 already publish 80, 9000
        // and 9001/tcp; 53 is exposed for TCP and UDP; 81 twice.
        let explicit = [PortSpec::parse("8080:80").unwrap(), PortSpec::parse("9000-9001:9000-9001").unwrap()];
        let exposed: Vec<PortSpec> =
            ["80", "81", "81", "53/udp", "53", "9000-9002"].iter().flat_map(|e| parse_expose(e).unwrap()).collect();
        assert_eq!(
            publish_all(&explicit, &exposed),
            [one(81, Proto::Tcp), one(53, Proto::Udp), one(53, Proto::Tcp), one(9002, Proto::Tcp)]
        );
        assert_eq!(publish_all(&explicit, &[]), []);
    }

    #[test]
    fn proxy_maps_and_port_lines() {
        let p = PortSpec::parse("8000-8001:9000-9001/udp").unwrap();
        let ip = Ipv4Addr::new(172, 22, 16, 2);
        assert_eq!(p.proxy_map(ip), "udp:0.0.0.0:8000-8001:172.22.16.2:9000-9001");
        assert_eq!(p.port_lines(), ["9000/udp -> 0.0.0.0:8000", "9001/udp -> 0.0.0.0:8001"]);
        assert_eq!(PortSpec::parse("[::1]:8080:80").unwrap().proxy_map(ip), "tcp:[::1]:8080:172.22.16.2:80");
        assert_eq!(p.to_string(), "8000-8001:9000-9001/udp");
        let v6 = PortSpec::parse("[::1]:8080:80").unwrap();
        assert_eq!(PortSpec::parse(&v6.to_string()), Ok(v6), "prints back to a form that parses");
    }
}
