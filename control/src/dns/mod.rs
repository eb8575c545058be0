//! wharf's embedded DNS resolver (`wharf dns`): the names of containers on
//! user networks, answered for the containers that share a network with
//! them, and every other name forwarded to upstream nameservers.
//!
//! The control plane writes a [`Config`] to `WHARF_ROOT/run/dns.json`
//! ([`write_config`]) whenever containers or networks change; [`serve`]
//! reads it, listens on UDP and TCP port 53 of every `listen` address and
//! follows the file as it changes. [`message`] reads and writes the wire
//! format (RFC 1035); [`resolver`] decides, without sockets, what a query
//! gets; the server module moves the bytes.
//!
//! What this module does not do: recursion or caching (the upstream
//! servers' job), PTR records for container addresses, IPv6 answers (AAAA
//! for a container's name is an empty NOERROR), DNSSEC.

pub mod message;
pub mod resolver;
mod server;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::state::{self, Root};
use message::Name;

pub use server::serve;

/// What the resolver serves: `WHARF_ROOT/run/dns.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The addresses to answer on (the user networks' gateways), port 53.
    pub listen: Vec<Ipv4Addr>,
    /// One entry per container per user network.
    pub endpoints: Vec<Endpoint>,
    /// Where other names go; empty: the nameservers of the host's /etc/resolv.conf.
    pub upstream: Vec<IpAddr>,
}

/// A container's place on one network, and the names it answers to there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The network's name.
    pub network: String,
    /// The container's id (64 hex).
    pub container: String,
    /// The container's name.
    pub name: String,
    /// Its `--network-alias` names on this network.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Its address on this network.
    pub ip: Ipv4Addr,
}

impl Endpoint {
    /// Whether `name` is this endpoint's name or one of its aliases, ASCII
    /// case ignored, with or without a trailing dot. A name or alias that is
    /// not a valid domain name matches nothing.
    pub fn answers_to(&self, name: &Name) -> bool {
        std::iter::once(&self.name).chain(&self.aliases).any(|own| name.eq_dotted_ignore_case(own))
    }
}

impl Config {
    /// The addresses `name` resolves to for a query from `source`: the
    /// asking container is the one with an endpoint at `source`, the
    /// endpoints it sees are those on its networks (all of them, not only
    /// the one `source` is on), and each match gives its address on that
    /// network. In the order of `endpoints`, without repeats; empty when
    /// `source` is no container's address or nothing visible has the name.
    pub fn resolve(&self, source: Ipv4Addr, name: &Name) -> Vec<Ipv4Addr> {
        let asking: Vec<&str> =
            self.endpoints.iter().filter(|e| e.ip == source).map(|e| e.container.as_str()).collect();
        let networks: Vec<&str> = self
            .endpoints
            .iter()
            .filter(|e| asking.contains(&e.container.as_str()))
            .map(|e| e.network.as_str())
            .collect();
        let mut found = Vec::new();
        for endpoint in &self.endpoints {
            if networks.contains(&endpoint.network.as_str())
                && endpoint.answers_to(name)
                && !found.contains(&endpoint.ip)
            {
                found.push(endpoint.ip);
            }
        }
        found
    }

    /// The servers to forward to, port 53: `upstream`, or if that is empty
    /// `resolv_conf`; without repeats and without this resolver's own
    /// `listen` addresses (which would loop).
    pub fn upstream_servers(&self, resolv_conf: &[IpAddr]) -> Vec<SocketAddr> {
        let servers = if self.upstream.is_empty() { resolv_conf } else { &self.upstream };
        let mut out = Vec::new();
        for &server in servers {
            let own = matches!(server, IpAddr::V4(v4) if self.listen.contains(&v4));
            let server = SocketAddr::new(server, 53);
            if !own && !out.contains(&server) {
                out.push(server);
            }
        }
        out
    }
}

/// The nameservers in the text of a resolv.conf: `nameserver ADDR` lines
/// (comments start with `#` or `;`). An address with a zone (`fe80::1%eth0`)
/// or that does not parse is skipped.
pub fn parse_resolv_conf(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let line = line.split(['#', ';']).next().unwrap_or_default();
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()?.parse().ok()).flatten()
        })
        .collect()
}

/// `WHARF_ROOT/run/dns.json`.
pub fn config_path(root: &Root) -> PathBuf {
    root.dir().join("run").join("dns.json")
}

/// Writes the resolver's configuration atomically (the resolver sees the
/// old one or the new one, never half), creating `WHARF_ROOT/run` if needed.
pub fn write_config(root: &Root, config: &Config) -> io::Result<()> {
    let path = config_path(root);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", dir.display())))?;
    }
    state::write_json(&path, config)
}

/// Reads the configuration at `path`; a missing file is an empty
/// configuration (nothing to listen on).
pub fn read_config(path: &Path) -> io::Result<Config> {
    match state::read_json(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Config::default()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB: &str = "0b5e2c3a9f1d4e6b8a7c5d3e1f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f8a";
    const DB: &str = "1c6f3d4b0a2e5f7c9b8d6e4f2a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b";
    const API: &str = "2d7a4e5c1b3f6a8d0c9e7f5a3b4c6d8e0f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c";

    fn endpoint(network: &str, container: &str, name: &str, aliases: &[&str], ip: [u8; 4]) -> Endpoint {
        Endpoint {
            network: network.into(),
            container: container.into(),
            name: name.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            ip: Ipv4Addr::from(ip),
        }
    }

    /// Two networks: `front` has web and api, `back` has db and api (on both).
    fn two_networks() -> Config {
        Config {
            listen: vec![Ipv4Addr::new(172, 22, 16, 1), Ipv4Addr::new(172, 23, 0, 1)],
            endpoints: vec![
                endpoint("front", WEB, "web", &["www"], [172, 22, 16, 2]),
                endpoint("front", API, "api", &[], [172, 22, 16, 3]),
                endpoint("back", API, "api", &["service"], [172, 23, 0, 3]),
                endpoint("back", DB, "db", &["postgres"], [172, 23, 0, 2]),
            ],
            upstream: vec![],
        }
    }

    fn name(text: &str) -> Name {
        Name::from_dotted(text).unwrap()
    }

    #[test]
    fn names_and_aliases_match_ignoring_case_and_trailing_dots() {
        let web = endpoint("front", WEB, "web", &["www.", "Shop.Example"], [172, 22, 16, 2]);
        for query in ["web", "WEB.", "www", "wWw.", "shop.example", "SHOP.EXAMPLE."] {
            assert!(web.answers_to(&name(query)), "{query}");
        }
        for query in ["we", "webx", "web.example", "shop", "example"] {
            assert!(!web.answers_to(&name(query)), "{query}");
        }
        // A dot inside one label is not a dot between labels.
        let mut odd = Name::root();
        odd.push(b"shop.example").unwrap();
        assert!(!web.answers_to(&odd));
        // Names that are not domain names match nothing, not even the root.
        let broken = endpoint("front", WEB, "", &["a..b"], [172, 22, 16, 2]);
        assert!(!broken.answers_to(&Name::root()) && !broken.answers_to(&name("a.b")));
    }

    #[test]
    fn a_container_sees_the_networks_it_is_on() {
        let config = two_networks();
        let web = Ipv4Addr::new(172, 22, 16, 2);
        assert_eq!(config.resolve(web, &name("www")), [web]);
        assert_eq!(config.resolve(web, &name("api")), [Ipv4Addr::new(172, 22, 16, 3)]);
        // db is on another network, and api's alias there is not seen from front.
        assert!(config.resolve(web, &name("db")).is_empty());
        assert!(config.resolve(web, &name("service")).is_empty());
        let db = Ipv4Addr::new(172, 23, 0, 2);
        assert_eq!(config.resolve(db, &name("api")), [Ipv4Addr::new(172, 23, 0, 3)]);
        assert_eq!(config.resolve(db, &name("Service.")), [Ipv4Addr::new(172, 23, 0, 3)]);
        assert!(config.resolve(db, &name("web")).is_empty());
    }

    #[test]
    fn a_container_on_two_networks_sees_both_from_either_address() {
        let config = two_networks();
        for source in [Ipv4Addr::new(172, 22, 16, 3), Ipv4Addr::new(172, 23, 0, 3)] {
            assert_eq!(config.resolve(source, &name("web")), [Ipv4Addr::new(172, 22, 16, 2)]);
            assert_eq!(config.resolve(source, &name("postgres")), [Ipv4Addr::new(172, 23, 0, 2)]);
            // Itself: its address on each network.
            assert_eq!(
                config.resolve(source, &name("api")),
                [Ipv4Addr::new(172, 22, 16, 3), Ipv4Addr::new(172, 23, 0, 3)]
            );
        }
    }

    #[test]
    fn unknown_sources_see_nothing() {
        let config = two_networks();
        for source in [Ipv4Addr::new(172, 22, 16, 1), Ipv4Addr::new(192, 0, 2, 7)] {
            assert!(config.resolve(source, &name("web")).is_empty());
        }
    }

    #[test]
    fn shared_aliases_give_every_address() {
        let mut config = two_networks();
        config.endpoints.push(endpoint("front", DB, "web2", &["www"], [172, 22, 16, 4]));
        let api = Ipv4Addr::new(172, 22, 16, 3);
        assert_eq!(config.resolve(api, &name("www")), [Ipv4Addr::new(172, 22, 16, 2), Ipv4Addr::new(172, 22, 16, 4)]);
    }

    #[test]
    fn config_parses_the_control_planes_json() {
        let text = format!(
            r#"{{"listen": ["172.22.16.1", "172.18.0.1"],
                "endpoints": [{{"network": "my_net2", "container": "{WEB}", "name": "web",
                               "aliases": ["www"], "ip": "172.22.16.2"}},
                              {{"network": "my_net2", "container": "{DB}", "name": "db", "ip": "172.22.16.3"}}],
                "upstream": ["198.51.100.53", "2001:db8::53"]}}"#
        );
        let config: Config = serde_json::from_str(&text).unwrap();
        assert_eq!(config.listen, [Ipv4Addr::new(172, 22, 16, 1), Ipv4Addr::new(172, 18, 0, 1)]);
        assert_eq!(config.endpoints[0], endpoint("my_net2", WEB, "web", &["www"], [172, 22, 16, 2]));
        assert!(config.endpoints[1].aliases.is_empty());
        assert_eq!(config.upstream, ["198.51.100.53".parse::<IpAddr>().unwrap(), "2001:db8::53".parse().unwrap()]);
        // Everything may be missing.
        assert_eq!(serde_json::from_str::<Config>("{}").unwrap(), Config::default());
        // A bad address is an error, not a silently empty config.
        assert!(serde_json::from_str::<Config>(r#"{"listen": ["172.22.16.300"]}"#).is_err());
    }

    #[test]
    fn config_is_written_atomically_and_read_back() {
        let scratch = crate::state::Scratch::new("dns-config");
        let root = scratch.root();
        let path = config_path(&root);
        assert!(path.ends_with("run/dns.json"));
        assert_eq!(read_config(&path).unwrap(), Config::default(), "missing file: empty config");
        let config = two_networks();
        write_config(&root, &config).unwrap();
        assert_eq!(read_config(&path).unwrap(), config);
        std::fs::write(&path, "{ not json").unwrap();
        let err = read_config(&path).unwrap_err();
        assert!(err.to_string().contains("dns.json"), "{err}");
    }

    #[test]
    fn upstream_comes_from_the_config_or_resolv_conf() {
        let resolv = parse_resolv_conf(
            "# generated\nsearch example.com\nnameserver 192.0.2.53 # primary\n; nameserver 192.0.2.54\n\
             nameserver 2001:db8::53\nnameserver fe80::1%eth0\nnameserver\noptions ndots:2\nnameserver 172.22.16.1\n",
        );
        assert_eq!(
            resolv,
            ["192.0.2.53".parse::<IpAddr>().unwrap(), "2001:db8::53".parse().unwrap(), "172.22.16.1".parse().unwrap()]
        );
        let mut config = two_networks();
        // Its own listen address is dropped: forwarding there would loop.
        assert_eq!(
            config.upstream_servers(&resolv),
            ["192.0.2.53:53".parse::<SocketAddr>().unwrap(), "[2001:db8::53]:53".parse().unwrap()]
        );
        config.upstream = vec!["198.51.100.53".parse().unwrap(), "198.51.100.53".parse().unwrap()];
        assert_eq!(config.upstream_servers(&resolv), ["198.51.100.53:53".parse::<SocketAddr>().unwrap()]);
    }
}
