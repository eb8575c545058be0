//! Traffic on wharf's container networks (issue #7): containers on one
//! network reach each other by address and by name; two networks are
//! isolated until `network connect`; a static `--ip`; an `--internal`
//! network keeps its traffic on its bridge; outbound connections are
//! masqueraded to the host's address.
//!
//! Topology ([`NetWorld`]): wharf runs in a "host" namespace; an "outside"
//! namespace (203.0.113.2) is joined to it by a veth (203.0.113.1).

use std::time::Duration;

use tests::container::{NetWorld, TcpEcho, HOST_UPLINK_ADDR, OUTSIDE_ADDR};
use tests::wait_for;

const WHARF: &str = env!("CARGO_BIN_EXE_wharf-e2e");
const PROXY: &str = env!("CARGO_BIN_EXE_wharf-proxy-e2e");

const SETTLE: Duration = Duration::from_secs(10);

fn my_net2(nw: &NetWorld) {
    nw.w.ok(&["network", "create", "--subnet", "172.22.16.0/24", "--gateway", "172.22.16.1", "my_net2"]);
}

fn sleeper(nw: &NetWorld, name: &str, extra: &[&str]) {
    let args = [&["run", "-d", "--name", name][..], extra, &["bb", "sleep", "1000"]].concat();
    nw.w.ok(&args);
}

#[test]
fn containers_on_one_network_ping_by_address_and_by_name() {
    let nw = NetWorld::new(WHARF, PROXY);
    my_net2(&nw);
    sleeper(&nw, "c1", &["--network", "my_net2"]);
    sleeper(&nw, "c2", &["--network", "my_net2"]);
    let ip1 = nw.ip_of("c1", "eth0");
    let ip2 = nw.ip_of("c2", "eth0");
    assert_ne!(ip1, ip2);
    for (from, to) in [("c1", ip2.as_str()), ("c2", ip1.as_str()), ("c1", "c2"), ("c2", "c1")] {
        let ran = nw.ping_within(from, to, SETTLE);
        assert_eq!(ran.code, 0, "{from} cannot ping {to}: {ran}");
        // By name: the reply comes from the peer's address.
        let peer = if to == "c1" {
            &ip1
        } else if to == "c2" {
            &ip2
        } else {
            to
        };
        assert!(ran.stdout.contains(&format!("from {peer}")), "{from} -> {to}: reply not from {peer}: {ran}");
    }
}

#[test]
fn networks_are_isolated_until_connect() {
    let nw = NetWorld::new(WHARF, PROXY);
    let w = &nw.w;
    w.ok(&["network", "create", "my_net"]);
    my_net2(&nw);
    sleeper(&nw, "a", &["--network", "my_net"]);
    sleeper(&nw, "b", &["--network", "my_net2"]);
    sleeper(&nw, "b2", &["--network", "my_net2"]);
    let ip_a = nw.ip_of("a", "eth0");
    let ip_b = nw.ip_of("b", "eth0");
    // Control: b reaches its own network's peer, so the data path works.
    let ran = nw.ping_within("b", &nw.ip_of("b2", "eth0"), SETTLE);
    assert_eq!(ran.code, 0, "b cannot ping b2 on its own network: {ran}");
    assert!(!nw.ping_once("a", &ip_b, 1), "a (my_net) reached b (my_net2) at {ip_b}");
    assert!(!nw.ping_once("b", &ip_a, 1), "b (my_net2) reached a (my_net) at {ip_a}");

    // connect: a gets eth1 on my_net2 and reaches b; b reaches a there.
    w.ok(&["network", "connect", "my_net2", "a"]);
    let eth1 = nw.addr("a", "eth1").unwrap_or_else(|| panic!("no eth1 in a: {}", nw.sh("a", "ip -o addr")));
    assert!(eth1.starts_with("172.22.16.") && eth1.ends_with("/24"), "a's eth1: {eth1}");
    let a_on_2 = eth1.split('/').next().unwrap().to_owned();
    assert_eq!(nw.ip_of("a", "eth0"), ip_a, "connect changed a's eth0");
    let ran = nw.ping_within("a", &ip_b, SETTLE);
    assert_eq!(ran.code, 0, "a cannot ping b after connect: {ran}");
    let ran = nw.ping_within("b", &a_on_2, SETTLE);
    assert_eq!(ran.code, 0, "b cannot ping a's eth1 {a_on_2} after connect: {ran}");
    let a_id = w.full_id("a");
    let n2 = nw.network("my_net2");
    assert_eq!(n2["Containers"][a_id.as_str()]["IPv4Address"].as_str(), Some(eth1.as_str()), "{n2:?}");

    // disconnect: eth1 gone, isolated again, the address released.
    w.ok(&["network", "disconnect", "my_net2", "a"]);
    assert_eq!(nw.addr("a", "eth1"), None, "a still has eth1: {}", nw.sh("a", "ip -o addr"));
    assert_eq!(nw.ip_of("a", "eth0"), ip_a, "disconnect changed a's eth0");
    assert!(!nw.ping_once("a", &ip_b, 1), "a reached b after disconnect");
    assert!(!nw.ping_once("b", &a_on_2, 1), "b reached a's old eth1 address after disconnect");
    let n2 = nw.network("my_net2");
    assert!(n2["Containers"][a_id.as_str()].is_null(), "a still listed on my_net2: {n2:?}");
    // a's own network still works.
    let gw = nw.network("my_net")["IPAM"]["Config"][0]["Gateway"].as_str().unwrap_or_default().to_owned();
    let ran = nw.ping_within("a", &gw, SETTLE);
    assert_eq!(ran.code, 0, "a lost its own network: {ran}");
}

#[test]
fn a_static_ip_is_the_containers_address() {
    let nw = NetWorld::new(WHARF, PROXY);
    my_net2(&nw);
    sleeper(&nw, "s", &["--network", "my_net2", "--ip", "172.22.16.50"]);
    sleeper(&nw, "t", &["--network", "my_net2"]);
    let out = nw.sh_ok("s", "ip -o -4 addr");
    assert!(out.contains("inet 172.22.16.50/24"), "s's addresses:\n{out}");
    assert_eq!(nw.addr("s", "eth0").as_deref(), Some("172.22.16.50/24"));
    // The next dynamic address is not the static one.
    assert_eq!(nw.addr("t", "eth0").as_deref(), Some("172.22.16.2/24"));
    let s_id = nw.w.full_id("s");
    let n2 = nw.network("my_net2");
    let entry = &n2["Containers"][s_id.as_str()];
    assert_eq!(entry["IPv4Address"].as_str(), Some("172.22.16.50/24"), "{n2:?}");
    let mac = nw.sh_ok("s", "cat /sys/class/net/eth0/address");
    assert_eq!(entry["MacAddress"].as_str(), Some(mac.trim()), "{n2:?}");
    // It is really used: t reaches it.
    let ran = nw.ping_within("t", "172.22.16.50", SETTLE);
    assert_eq!(ran.code, 0, "{ran}");
    // After a restart it keeps it.
    nw.w.ok(&["restart", "-t", "1", "s"]);
    assert_eq!(nw.addr("s", "eth0").as_deref(), Some("172.22.16.50/24"));
}

#[test]
fn an_internal_network_stays_on_its_bridge() {
    let nw = NetWorld::new(WHARF, PROXY);
    let w = &nw.w;
    w.ok(&["network", "create", "--internal", "--subnet", "172.29.5.0/24", "inside"]);
    w.ok(&["network", "create", "my_net"]);
    let n = nw.network("inside");
    assert_eq!(n["Internal"].as_bool(), Some(true), "{n:?}");
    sleeper(&nw, "i1", &["--network", "inside"]);
    sleeper(&nw, "i2", &["--network", "inside"]);
    sleeper(&nw, "o", &["--network", "my_net"]);
    let server = TcpEcho::start(&nw.outside, &format!("{OUTSIDE_ADDR}:9000"));

    // On the network: fine.
    let ran = nw.ping_within("i1", &nw.ip_of("i2", "eth0"), SETTLE);
    assert_eq!(ran.code, 0, "i1 cannot ping i2: {ran}");

    // Control: a container on a normal network reaches the outside.
    let ran = nw.ping_within("o", OUTSIDE_ADDR, SETTLE);
    assert_eq!(ran.code, 0, "o (my_net) cannot ping the outside: {ran}");
    let ran = nw.sh("o", &format!("echo control | nc -w 3 {OUTSIDE_ADDR} 9000"));
    assert_eq!(ran.stdout, format!("echo:control from {HOST_UPLINK_ADDR}\n"), "{ran}");

    // From the internal network: neither ping nor TCP leaves the bridge.
    assert!(!nw.ping_once("i1", OUTSIDE_ADDR, 1), "i1 (internal) pinged the outside");
    // (The host's own addresses are another matter: as with Docker, the
    // rules filter forwarded traffic only, so i1 reaches 203.0.113.1.)
    let ran = nw.sh("i1", &format!("echo leak | nc -w 2 {OUTSIDE_ADDR} 9000"));
    assert!(!ran.stdout.contains("echo:leak"), "i1 (internal) reached the outside server: {ran}");
    std::thread::sleep(Duration::from_millis(200));
    let seen = server.seen();
    assert!(seen.iter().all(|s| !String::from_utf8_lossy(&s.data).contains("leak")), "{seen:?}");
    // And no masquerade rule for it.
    let rules = nw.iptables();
    assert!(!rules.lines().any(|l| l.contains("172.29.5.0/24") && l.contains("MASQUERADE")), "{rules}");
    // Names resolve on an internal network too (the resolver is at its
    // gateway, on the bridge).
    let ran = nw.ping_within("i2", "i1", SETTLE);
    assert_eq!(ran.code, 0, "i2 cannot ping i1 by name: {ran}");
}

#[test]
fn outbound_connections_are_masqueraded() {
    let nw = NetWorld::new(WHARF, PROXY);
    nw.w.ok(&["network", "create", "my_net"]);
    sleeper(&nw, "m", &["--network", "my_net"]);
    let server = TcpEcho::start(&nw.outside, &format!("{OUTSIDE_ADDR}:9000"));
    let ip_m = nw.ip_of("m", "eth0");
    // The reply comes back to the container through the translation.
    let mut ran = nw.sh("m", "true");
    let answered = wait_for(SETTLE, || {
        ran = nw.sh("m", &format!("echo hello-from-m | nc -w 3 {OUTSIDE_ADDR} 9000"));
        ran.code == 0 && !ran.stdout.is_empty()
    });
    assert!(answered, "no answer from the outside server: {ran}");
    assert_eq!(ran.stdout, format!("echo:hello-from-m from {HOST_UPLINK_ADDR}\n"), "{ran}");
    // And the server saw the host's address, not the container's.
    let seen = server.seen();
    let hello: Vec<_> = seen.iter().filter(|s| s.data == b"hello-from-m\n").collect();
    assert!(!hello.is_empty(), "the server got no hello: {seen:?}");
    for s in hello {
        assert_eq!(s.peer.ip().to_string(), HOST_UPLINK_ADDR, "source not masqueraded (container is {ip_m}): {s:?}");
    }
    // ICMP too.
    let ran = nw.ping_within("m", OUTSIDE_ADDR, SETTLE);
    assert_eq!(ran.code, 0, "{ran}");
}

#[test]
fn connect_on_a_stopped_container_takes_effect_at_its_next_start() {
    let nw = NetWorld::new(WHARF, PROXY);
    let w = &nw.w;
    w.ok(&["network", "create", "my_net"]);
    my_net2(&nw);
    sleeper(&nw, "x", &["--network", "my_net"]);
    sleeper(&nw, "y", &["--network", "my_net2"]);
    let x_eth0 = nw.addr("x", "eth0").unwrap_or_else(|| panic!("x has no eth0 address"));
    w.ok(&["stop", "-t", "1", "x"]);
    let links_stopped = nw.host_links();
    w.ok(&["network", "connect", "--ip", "172.22.16.60", "my_net2", "x"]);
    // Only the record changes while it is stopped.
    assert_eq!(nw.host_links(), links_stopped, "connect on a stopped container changed the host's links");
    let x_id = w.full_id("x");
    let n2 = nw.network("my_net2");
    assert_eq!(n2["Containers"][x_id.as_str()]["IPv4Address"].as_str(), Some("172.22.16.60/24"), "{n2:?}");

    w.ok(&["start", "x"]);
    assert_eq!(nw.addr("x", "eth0"), Some(x_eth0), "x's first network changed");
    assert_eq!(nw.addr("x", "eth1").as_deref(), Some("172.22.16.60/24"), "{}", nw.sh("x", "ip -o addr"));
    // The default route stays on the first network.
    let gw = nw.network("my_net")["IPAM"]["Config"][0]["Gateway"].as_str().unwrap_or_default().to_owned();
    let routes = nw.sh_ok("x", "ip -4 route");
    assert!(routes.lines().any(|l| l.starts_with(&format!("default via {gw} dev eth0"))), "{routes}");
    let ran = nw.ping_within("x", &nw.ip_of("y", "eth0"), SETTLE);
    assert_eq!(ran.code, 0, "x cannot reach y over eth1: {ran}");
}
