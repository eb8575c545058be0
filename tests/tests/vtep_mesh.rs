//! Three hosts, all running `wharf vtep` (VNI 42), on one underlay bridge:
//! a broadcast reaches both peers (head-end replication); once the FDB has
//! learned, unicast goes only to the owner; a MAC that moves to another VTEP
//! is re-learned; a remote that cannot be reached costs only its own copies.

use std::time::Duration;

use tests::{require_root, wait_for, Netns, WharfRunner};

const WHARF: &str = env!("CARGO_BIN_EXE_wharf-e2e");

struct Host {
    ns: Netns,
    vtep: WharfRunner,
}

fn mesh() -> (Netns, Vec<Host>) {
    require_root();
    let underlay = Netns::new("mu").unwrap();
    underlay.ip(&["link", "add", "br0", "type", "bridge"]).unwrap();
    underlay.ip(&["link", "set", "br0", "up"]).unwrap();
    let mut hosts = Vec::new();
    for i in 1..=3u8 {
        let ns = Netns::new(&format!("m{i}")).unwrap();
        // No IPv6 on the overlay: its router solicitations and MLD reports
        // are multicast, flooded to every peer, and would blur which VTEP
        // unicast reaches.
        ns.exec("sysctl", &["-qw", "net.ipv6.conf.default.disable_ipv6=1"]).unwrap();
        ns.veth("u0", &underlay, &format!("p{i}")).unwrap();
        underlay.ip(&["link", "set", &format!("p{i}"), "master", "br0"]).unwrap();
        ns.ip(&["addr", "add", &format!("192.0.2.{i}/24"), "dev", "u0"]).unwrap();
        let remotes: Vec<String> = (1..=3u8).filter(|j| *j != i).map(|j| format!("192.0.2.{j}")).collect();
        let local = format!("192.0.2.{i}");
        let args = ["--vni", "42", "--local", &local, "--remote", &remotes[0], "--remote", &remotes[1], "--tap", "wt0"];
        let vtep = WharfRunner::start(WHARF, &ns, "wt0", &args).unwrap();
        ns.ip(&["link", "set", "wt0", "address", &format!("02:00:00:00:42:0{i}")]).unwrap();
        ns.ip(&["addr", "add", &format!("198.51.100.{i}/24"), "dev", "wt0"]).unwrap();
        hosts.push(Host { ns, vtep });
    }
    (underlay, hosts)
}

#[test]
fn flood_learn_and_move() {
    let (_underlay, hosts) = mesh();
    let (h1, h2, h3) = (&hosts[0], &hosts[1], &hosts[2]);

    // A broadcast from host 1 (its ARP request for host 2) reaches both
    // peers: each decapsulates it.
    let rx2 = h2.vtep.stat("rx_packets");
    let rx3 = h3.vtep.stat("rx_packets");
    h1.ns.exec("ping", &["-c", "1", "-W", "2", "198.51.100.2"]).unwrap();
    assert!(h1.vtep.stat("flooded") >= 1);
    assert!(h2.vtep.stat("rx_packets") > rx2);
    assert!(h3.vtep.stat("rx_packets") > rx3, "the broadcast did not reach host 3");

    // Learned now: unicast between 1 and 2 does not reach host 3.
    let rx3 = h3.vtep.stat("rx_packets");
    h1.ns.exec("ping", &["-c", "5", "-i", "0.1", "-W", "2", "198.51.100.2"]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(h3.vtep.stat("rx_packets"), rx3, "unicast leaked to host 3");
    assert!(h1.vtep.stat("learned") >= 1 && h2.vtep.stat("learned") >= 1);

    // Host 2's MAC and address move to host 3.
    h2.ns.ip(&["link", "set", "wt0", "down"]).unwrap();
    h3.ns.ip(&["addr", "del", "198.51.100.3/24", "dev", "wt0"]).unwrap();
    h3.ns.ip(&["link", "set", "wt0", "address", "02:00:00:00:42:02"]).unwrap();
    h3.ns.ip(&["addr", "add", "198.51.100.2/24", "dev", "wt0"]).unwrap();
    let moved = h1.vtep.stat("moved");
    // Host 3 speaks first (a ping to host 1: its ARP request is flooded and
    // host 1's reply goes back), so host 1 learns the MAC behind host 3.
    h3.ns.exec("ping", &["-c", "2", "-i", "0.2", "-W", "2", "198.51.100.1"]).unwrap();
    assert!(wait_for(Duration::from_secs(2), || h1.vtep.stat("moved") > moved), "the move was not re-learned");
    let rx2 = h2.vtep.stat("rx_packets");
    h1.ns.exec("ping", &["-c", "3", "-i", "0.2", "-W", "2", "198.51.100.2"]).unwrap();
    assert_eq!(h2.vtep.stat("rx_packets"), rx2, "traffic for the moved MAC still went to its old VTEP");
}

/// A remote that cannot be reached (no route to it) costs only its own
/// copies: a broadcast still reaches the remote listed after it, and
/// traffic flows; the lost copies are counted.
#[test]
fn an_unreachable_remote_does_not_silence_the_others() {
    require_root();
    let (h1, h2) = (Netns::new("ur1").unwrap(), Netns::new("ur2").unwrap());
    h1.veth("u0", &h2, "u0").unwrap();
    let mut vteps = Vec::new();
    for (i, ns) in [(1u8, &h1), (2, &h2)] {
        ns.exec("sysctl", &["-qw", "net.ipv6.conf.default.disable_ipv6=1"]).unwrap();
        ns.ip(&["addr", "add", &format!("192.0.2.{i}/24"), "dev", "u0"]).unwrap();
        ns.ip(&["link", "set", "u0", "up"]).unwrap();
        let local = format!("192.0.2.{i}");
        let peer = format!("192.0.2.{}", 3 - i);
        // 203.0.113.99 has no route in these namespaces: sending to it
        // fails at once (ENETUNREACH), and nothing leaves.
        let args = ["--vni", "42", "--local", &local, "--remote", "203.0.113.99", "--remote", &peer, "--tap", "wt0"];
        vteps.push(WharfRunner::start(WHARF, ns, "wt0", &args).unwrap());
        ns.ip(&["addr", "add", &format!("198.51.100.{i}/24"), "dev", "wt0"]).unwrap();
    }
    let out = h1.exec("ping", &["-c", "3", "-i", "0.2", "-W", "2", "198.51.100.2"]);
    assert!(out.is_ok(), "no traffic past the unreachable remote: {out:?}\n{}", vteps[0].output());
    assert!(vteps[0].stat("underlay_send_errors") >= 1, "the copies to the unreachable remote were not counted");
}
