//! wharf's embedded DNS resolver end to end, in two namespaces joined by a
//! veth: `host` runs the resolver (network gateways 172.22.16.1 "front" and
//! 172.23.0.1 "back" on its end) and a fake upstream nameserver on
//! 198.51.100.53 that answers every name with 192.0.2.99; `containers`
//! holds the containers' addresses on the other end, and the queries are
//! sent from there, from the asking container's address.
//!
//! front: web 172.22.16.2 (alias www), api 172.22.16.3;
//! back: db 172.23.0.2 (alias postgres), api 172.23.0.3;
//! 172.22.16.50 is nobody's.

use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::Duration;

use control::dns::{self, Config, Endpoint};
use control::state::Root;
use tests::{require_root, unique_name, wait_for, Background, Netns, WharfRunner};

/// The resolver, its fake upstream and the query tool (see its `//!`).
/// Once `wharf dns` is wired, `serve` here is what it runs.
const DNS: &str = env!("CARGO_BIN_EXE_wharf-dns-e2e");

const FRONT_GW: &str = "172.22.16.1";
const BACK_GW: &str = "172.23.0.1";
const WEB: &str = "172.22.16.2";
const API_FRONT: &str = "172.22.16.3";
const DB: &str = "172.23.0.2";
const API_BACK: &str = "172.23.0.3";
const STRANGER: &str = "172.22.16.50";
const UPSTREAM: &str = "198.51.100.53";
/// What the fake upstream answers.
const FORWARDED: &str = "192.0.2.99/30";

const WEB_ID: &str = "0b5e2c3a9f1d4e6b8a7c5d3e1f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f8a";
const API_ID: &str = "2d7a4e5c1b3f6a8d0c9e7f5a3b4c6d8e0f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c";
const DB_ID: &str = "1c6f3d4b0a2e5f7c9b8d6e4f2a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b";

fn endpoint(network: &str, container: &str, name: &str, aliases: &[&str], ip: &str) -> Endpoint {
    Endpoint {
        network: network.into(),
        container: container.into(),
        name: name.into(),
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        ip: ip.parse().unwrap(),
    }
}

fn base_config() -> Config {
    Config {
        listen: vec![FRONT_GW.parse().unwrap(), BACK_GW.parse().unwrap()],
        endpoints: vec![
            endpoint("front", WEB_ID, "web", &["www"], WEB),
            endpoint("front", API_ID, "api", &[], API_FRONT),
            endpoint("back", DB_ID, "db", &["postgres"], DB),
            endpoint("back", API_ID, "api", &[], API_BACK),
        ],
        upstream: vec![UPSTREAM.parse().unwrap()],
    }
}

/// One test's namespaces, state root, resolver and upstream.
struct World {
    host: Netns,
    containers: Netns,
    root: Root,
    resolver: WharfRunner,
    _upstream: Background,
}

impl World {
    fn new(config: &Config) -> World {
        require_root();
        let host = Netns::new("dnh").unwrap();
        let containers = Netns::new("dnc").unwrap();
        host.veth("h0", &containers, "c0").unwrap();
        for cidr in [format!("{FRONT_GW}/24"), format!("{BACK_GW}/24")] {
            host.ip(&["addr", "add", &cidr, "dev", "h0"]).unwrap();
        }
        // The first address of each subnet is the primary: what routing picks.
        for addr in [WEB, DB, API_FRONT, API_BACK, STRANGER] {
            containers.ip(&["addr", "add", &format!("{addr}/24"), "dev", "c0"]).unwrap();
        }
        host.ip(&["addr", "add", &format!("{UPSTREAM}/32"), "dev", "lo"]).unwrap();
        let upstream = Background::spawn(host.command(DNS, &["upstream", UPSTREAM]).stdout(Stdio::null()))
            .expect("start upstream");
        let probe = || host.exec(DNS, &["query", UPSTREAM, "probe"]).is_ok_and(|out| out.contains(FORWARDED));
        assert!(wait_for(Duration::from_secs(10), probe), "the fake upstream does not answer");
        let root = Root::new(std::env::temp_dir().join(unique_name("dnr")));
        dns::write_config(&root, config).unwrap();
        let root_arg = root.dir().to_str().unwrap().to_owned();
        let resolver = WharfRunner::start_runner(DNS, "serve", &host, "dns", &[&root_arg]).expect("start the resolver");
        World { host, containers, root, resolver, _upstream: upstream }
    }

    /// Runs the query tool in `containers` and gives its output, one line per name.
    fn query(&self, args: &[&str]) -> String {
        self.containers
            .exec(DNS, &[&["query"][..], args].concat())
            .unwrap_or_else(|e| panic!("query {args:?}: {e}\nresolver:\n{}", self.resolver.output()))
    }

    /// `NAME`'s line when asked over UDP from `from` to `server`.
    fn ask(&self, from: &str, server: &str, name: &str) -> String {
        self.query(&["--from", from, server, name]).trim().to_owned()
    }

    fn write(&self, config: &Config) {
        dns::write_config(&self.root, config).unwrap();
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.root.dir());
    }
}

fn answer(name: &str, answers: &str) -> String {
    format!("{name} rcode=NoError tc=false answers={answers}")
}

#[test]
fn own_network_names_answer_and_the_rest_is_forwarded() {
    let w = World::new(&base_config());
    // web, on front: front's names here, case and trailing dot aside; db is
    // on back, so its names go upstream like any other.
    let out = w.query(&["--from", WEB, FRONT_GW, "api", "WWW.", "db", "postgres", "example.com"]);
    let expected = [
        answer("api", &format!("{API_FRONT}/600")),
        answer("WWW.", &format!("{WEB}/600")),
        answer("db", FORWARDED),
        answer("postgres", FORWARDED),
        answer("example.com", FORWARDED),
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "\nresolver:\n{}", w.resolver.output());
    // AAAA for a container: the name exists, with no IPv6 address.
    assert_eq!(w.query(&["--from", WEB, "--type", "AAAA", FRONT_GW, "api"]).trim(), answer("api", ""));
    // db, on back, asking back's gateway: api's address on back; web is not seen.
    assert_eq!(w.ask(DB, BACK_GW, "api"), answer("api", &format!("{API_BACK}/600")));
    assert_eq!(w.ask(DB, BACK_GW, "web"), answer("web", FORWARDED));
    // api is on both: from its front address it sees back's db too, and
    // itself at both addresses.
    assert_eq!(w.ask(API_FRONT, FRONT_GW, "db"), answer("db", &format!("{DB}/600")));
    assert_eq!(w.ask(API_FRONT, FRONT_GW, "api"), answer("api", &format!("{API_FRONT}/600,{API_BACK}/600")));
    // An address that is no container's: only forwarded.
    assert_eq!(w.ask(STRANGER, FRONT_GW, "web"), answer("web", FORWARDED));
    // A real client: busybox nslookup, from web (the primary address).
    let out = w.containers.exec("busybox", &["nslookup", "-type=a", "www", FRONT_GW]).unwrap();
    assert!(out.contains(&format!("Address: {WEB}")), "busybox nslookup www:\n{out}");
    let out = w.containers.exec("busybox", &["nslookup", "-type=a", "example.com", FRONT_GW]).unwrap();
    assert!(out.contains("Address: 192.0.2.99"), "busybox nslookup example.com:\n{out}");
}

#[test]
fn tcp_carries_several_queries_per_connection() {
    let w = World::new(&base_config());
    // Over TCP the source is what routing picks toward front: web.
    let out = w.query(&["--tcp", FRONT_GW, "api", "www", "example.com", "db"]);
    let expected = [
        answer("api", &format!("{API_FRONT}/600")),
        answer("www", &format!("{WEB}/600")),
        answer("example.com", FORWARDED),
        answer("db", FORWARDED),
    ];
    assert_eq!(out.lines().collect::<Vec<_>>(), expected, "\nresolver:\n{}", w.resolver.output());
    let out = w.query(&["--tcp", BACK_GW, "postgres"]);
    assert_eq!(out.trim(), answer("postgres", &format!("{DB}/600")));
}

#[test]
fn config_changes_are_followed_without_a_restart() {
    let mut config = base_config();
    // A third network whose gateway is not on any interface yet.
    config.listen.push("172.24.0.1".parse().unwrap());
    config.endpoints.push(endpoint("third", WEB_ID, "web", &[], "172.24.0.2"));
    let mut w = World::new(&config);
    assert_eq!(w.ask(DB, BACK_GW, "web"), answer("web", FORWARDED));

    // web joins back.
    w.containers.ip(&["addr", "add", "172.23.0.4/24", "dev", "c0"]).unwrap();
    config.endpoints.push(endpoint("back", WEB_ID, "web", &["shop"], "172.23.0.4"));
    w.write(&config);
    assert_eq!(w.ask(DB, BACK_GW, "shop"), answer("shop", "172.23.0.4/600"));

    // The third gateway appears: the resolver binds it within a second or so.
    w.host.ip(&["addr", "add", "172.24.0.1/24", "dev", "h0"]).unwrap();
    w.containers.ip(&["addr", "add", "172.24.0.2/24", "dev", "c0"]).unwrap();
    let expected = answer("db", &format!("{DB}/600"));
    let bound = wait_for(Duration::from_secs(5), || w.ask("172.24.0.2", "172.24.0.1", "db") == expected);
    assert!(bound, "no answer on 172.24.0.1:\n{}", w.resolver.output());

    // front leaves the configuration: its sockets close.
    config.listen.retain(|addr| *addr != FRONT_GW.parse::<Ipv4Addr>().unwrap());
    w.write(&config);
    let closed = wait_for(Duration::from_secs(5), || w.ask(WEB, FRONT_GW, "api") == "api timeout");
    assert!(closed, "front's gateway still answers:\n{}", w.resolver.output());
    assert_eq!(w.ask(DB, BACK_GW, "api"), answer("api", &format!("{API_BACK}/600")));

    // An upstream that cannot be reached: SERVFAIL.
    config.upstream = vec!["198.51.100.54".parse().unwrap()];
    w.write(&config);
    assert_eq!(w.ask(DB, BACK_GW, "example.com"), "example.com rcode=ServFail tc=false answers=");

    // SIGTERM: a clean exit, with the counters.
    let (status, output) = w.resolver.stop().unwrap();
    assert!(status.success(), "{status}:\n{output}");
    assert!(output.contains("stopped listening on 172.22.16.1:53"), "{output}");
    assert!(output.contains("servfail 1"), "{output}");
}
