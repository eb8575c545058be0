//! wharf's embedded DNS on user networks (issue #7): a container resolves
//! the names and `--network-alias` names of containers on its own networks
//! through the resolver at its gateway, and not those on other networks.
//!
//! Names that are not found are forwarded to the host's nameservers: from
//! the test's "host" namespace ([`NetWorld`]) those are unreachable, so a
//! forwarded name fails (quickly or after the resolver's timeout) and no
//! query leaves the namespaces the test made.

use std::time::Duration;

use tests::container::{NetWorld, Ran};
use tests::wait_for;

const WHARF: &str = env!("CARGO_BIN_EXE_wharf-e2e");
const PROXY: &str = env!("CARGO_BIN_EXE_wharf-proxy-e2e");

/// `nslookup NAME` (busybox: the nameserver from /etc/resolv.conf) from a
/// container, bounded in time.
fn nslookup(nw: &NetWorld, from: &str, name: &str) -> Ran {
    nw.sh(from, &format!("timeout 15 nslookup {name}"))
}

/// The addresses in the answer section of busybox nslookup's output (the
/// lines after the first `Name:`), not the server's own.
fn answers(out: &str) -> Vec<String> {
    out.lines()
        .skip_while(|l| !l.starts_with("Name:"))
        .filter_map(|l| l.strip_prefix("Address:"))
        .map(|a| a.split_whitespace().next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn names_resolve_on_their_own_network_only() {
    let nw = NetWorld::new(WHARF, PROXY);
    let w = &nw.w;
    w.ok(&["network", "create", "my_net"]);
    w.ok(&["network", "create", "--subnet", "172.22.16.0/24", "--gateway", "172.22.16.1", "my_net2"]);
    w.ok(&["run", "-d", "--name", "c1", "--network", "my_net2", "bb", "sleep", "1000"]);
    w.ok(&["run", "-d", "--name", "c2", "--network", "my_net2", "--network-alias", "db", "bb", "sleep", "1000"]);
    w.ok(&["run", "-d", "--name", "c3", "--network", "my_net", "bb", "sleep", "1000"]);
    let ip2 = nw.ip_of("c2", "eth0");
    let ip3 = nw.ip_of("c3", "eth0");
    let resolv = nw.sh_ok("c1", "cat /etc/resolv.conf");
    assert!(resolv.lines().any(|l| l.trim() == "nameserver 172.22.16.1"), "c1's resolv.conf:\n{resolv}");

    // The resolver runs (its pid file), and answers c2 from c1 (give it a
    // moment to bind the new gateway address).
    let pidfile = w.root().join("run/dns.pid");
    assert!(wait_for(Duration::from_secs(5), || pidfile.exists()), "no {}", pidfile.display());
    let mut ran = nslookup(&nw, "c1", "c2");
    let found = wait_for(Duration::from_secs(10), || {
        ran = nslookup(&nw, "c1", "c2");
        ran.code == 0
    });
    assert!(found, "c1 cannot resolve c2: {ran}");
    assert_eq!(answers(&ran.stdout), vec![ip2.as_str()], "c2 from c1: {ran}");
    // Case does not matter; the alias resolves to c2 too.
    let ran = nslookup(&nw, "c1", "C2");
    assert_eq!(answers(&ran.stdout), vec![ip2.as_str()], "C2 from c1: {ran}");
    let ran = nslookup(&nw, "c1", "db");
    assert_eq!((ran.code, answers(&ran.stdout)), (0, vec![ip2.to_string()]), "alias db from c1: {ran}");
    // c2 resolves c1.
    let ran = nslookup(&nw, "c2", "c1");
    assert_eq!((ran.code, answers(&ran.stdout)), (0, vec![nw.ip_of("c1", "eth0")]), "c1 from c2: {ran}");

    // c3 is on another network: not visible from c1, and c3 sees neither
    // c2 nor its alias.
    let ran = nslookup(&nw, "c1", "c3");
    assert!(ran.code != 0 && !ran.stdout.contains(&ip3), "c1 resolved c3 (my_net): {ran}");
    // c3 is on my_net, which also has a resolver at its gateway.
    let ran = nslookup(&nw, "c3", "c2");
    assert!(ran.code != 0 && !ran.stdout.contains(&ip2), "c3 resolved c2 (my_net2): {ran}");
    let ran = nslookup(&nw, "c3", "db");
    assert!(ran.code != 0 && !ran.stdout.contains(&ip2), "c3 resolved the alias db (my_net2): {ran}");

    // Ping by name uses the same resolver.
    let ran = nw.ping_within("c1", "db", Duration::from_secs(5));
    assert!(ran.code == 0 && ran.stdout.contains(&format!("from {ip2}")), "ping db from c1: {ran}");

    // Connected to my_net2, c3 now sees c2; disconnected, not any more.
    w.ok(&["network", "connect", "my_net2", "c3"]);
    let mut ran = nslookup(&nw, "c3", "c2");
    let found = wait_for(Duration::from_secs(5), || {
        ran = nslookup(&nw, "c3", "c2");
        ran.code == 0
    });
    assert!(found, "c3 cannot resolve c2 after connect: {ran}");
    assert_eq!(answers(&ran.stdout), vec![ip2.as_str()], "{ran}");
    w.ok(&["network", "disconnect", "my_net2", "c3"]);
    let mut ran = nslookup(&nw, "c3", "c2");
    let gone = wait_for(Duration::from_secs(5), || {
        ran = nslookup(&nw, "c3", "c2");
        ran.code != 0
    });
    assert!(gone && !ran.stdout.contains(&ip2), "c3 still resolves c2 after disconnect: {ran}");

    // A container that is removed is no longer resolved.
    w.ok(&["rm", "-f", "c2"]);
    let mut ran = nslookup(&nw, "c1", "c2");
    let gone = wait_for(Duration::from_secs(5), || {
        ran = nslookup(&nw, "c1", "c2");
        ran.code != 0
    });
    assert!(gone && !ran.stdout.contains(&ip2), "c1 still resolves c2 after rm: {ran}");
}
