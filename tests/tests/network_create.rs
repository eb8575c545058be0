//! `wharf network create|ls|inspect|rm|prune` (issue #7): the notes' two
//! networks, what `ls` and `inspect` print, the devices, addresses and
//! firewall rules a network and a container on it get, bad input refused
//! with nothing changed, and `rm` refused while a container is attached.
//!
//! Every test runs wharf in a "host" namespace of its own
//! ([`NetWorld`]): bridges, veths and rules never touch the machine.

use std::collections::BTreeMap;

use tests::container::{is_hex, Json, NetWorld};

const WHARF: &str = env!("CARGO_BIN_EXE_wharf-e2e");
const PROXY: &str = env!("CARGO_BIN_EXE_wharf-proxy-e2e");

/// `wharf network ls` rows by name: (id, driver, scope). Checks the header.
fn network_ls(nw: &NetWorld) -> BTreeMap<String, (String, String, String)> {
    let out = nw.w.ok(&["network", "ls"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"], "network ls header:\n{out}");
    let mut rows = BTreeMap::new();
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words.len(), 4, "network ls row {line:?}:\n{out}");
        let row = (words[0].to_owned(), words[2].to_owned(), words[3].to_owned());
        assert!(rows.insert(words[1].to_owned(), row).is_none(), "{} listed twice:\n{out}", words[1]);
    }
    rows
}

/// The keys of a JSON object.
fn keys(json: &Json) -> Vec<String> {
    match json {
        Json::Object(fields) => fields.iter().map(|(k, _)| k.clone()).collect(),
        other => panic!("not an object: {other:?}"),
    }
}

/// The nameserver lines of a resolv.conf.
fn nameservers(text: &str) -> Vec<String> {
    text.lines().filter(|l| l.split_whitespace().next() == Some("nameserver")).map(|l| l.trim().to_owned()).collect()
}

#[test]
fn create_ls_inspect_and_a_container_on_each_network() {
    let nw = NetWorld::new(WHARF, PROXY);
    let w = &nw.w;

    // The notes' two commands.
    let id1 = w.ok(&["network", "create", "--driver", "bridge", "my_net"]).trim().to_owned();
    assert!(is_hex(&id1, 64), "network create printed {id1:?}, not a 64-hex id");
    let id2 = w
        .ok(&[
            "network",
            "create",
            "--driver",
            "bridge",
            "--subnet",
            "172.22.16.0/24",
            "--gateway",
            "172.22.16.1",
            "my_net2",
        ])
        .trim()
        .to_owned();
    assert!(is_hex(&id2, 64), "network create printed {id2:?}, not a 64-hex id");
    assert_ne!(id1, id2);

    // ls: the three built-in networks and both new ones, nothing else.
    let rows = network_ls(&nw);
    let names: Vec<&str> = rows.keys().map(String::as_str).collect();
    assert_eq!(names, ["bridge", "host", "my_net", "my_net2", "none"], "{rows:?}");
    for (name, driver) in
        [("bridge", "bridge"), ("host", "host"), ("none", "null"), ("my_net", "bridge"), ("my_net2", "bridge")]
    {
        let (id, d, scope) = &rows[name];
        assert!(is_hex(id, 12), "{name}: id {id:?}");
        assert_eq!((d.as_str(), scope.as_str()), (driver, "local"), "{name}: {rows:?}");
    }
    assert_eq!(rows["my_net"].0, id1[..12]);
    assert_eq!(rows["my_net2"].0, id2[..12]);

    // inspect my_net2: the given subnet and gateway, docker's shape.
    let n2 = nw.network("my_net2");
    assert_eq!(n2["Name"].as_str(), Some("my_net2"), "{n2:?}");
    assert_eq!(n2["Id"].as_str(), Some(id2.as_str()), "{n2:?}");
    assert_eq!(n2["Scope"].as_str(), Some("local"), "{n2:?}");
    assert_eq!(n2["Driver"].as_str(), Some("bridge"), "{n2:?}");
    assert_eq!(n2["EnableIPv6"].as_bool(), Some(false), "{n2:?}");
    assert_eq!(n2["Internal"].as_bool(), Some(false), "{n2:?}");
    assert_eq!(n2["Attachable"].as_bool(), Some(false), "{n2:?}");
    assert_eq!(n2["IPAM"]["Driver"].as_str(), Some("default"), "{n2:?}");
    assert_eq!(n2["IPAM"]["Config"].as_array().map(<[Json]>::len), Some(1), "{n2:?}");
    assert_eq!(n2["IPAM"]["Config"][0]["Subnet"].as_str(), Some("172.22.16.0/24"), "{n2:?}");
    assert_eq!(n2["IPAM"]["Config"][0]["Gateway"].as_str(), Some("172.22.16.1"), "{n2:?}");
    assert!(!n2["Created"].as_str().unwrap_or_default().is_empty(), "no Created: {n2:?}");
    assert_eq!(keys(&n2["Containers"]), Vec::<String>::new(), "{n2:?}");

    // my_net and the default bridge got the first two pool subnets (the
    // host namespace routes only 203.0.113.0/24), gateway .1 each.
    let n1 = nw.network("my_net");
    let bridge = nw.network("bridge");
    let mut pools: Vec<(&str, &str)> = [&n1, &bridge]
        .iter()
        .map(|n| {
            (
                n["IPAM"]["Config"][0]["Subnet"].as_str().unwrap_or_default(),
                n["IPAM"]["Config"][0]["Gateway"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    pools.sort();
    assert_eq!(pools, [("172.17.0.0/16", "172.17.0.1"), ("172.18.0.0/16", "172.18.0.1")], "{n1:?}\n{bridge:?}");
    assert_eq!(n1["Driver"].as_str(), Some("bridge"));
    assert_eq!(bridge["Driver"].as_str(), Some("bridge"));

    // my_net2's bridge device: wh- + 12 hex of the id, with the gateway.
    let br2 = nw.bridge_of("my_net2");
    assert_eq!(br2, format!("wh-{}", &id2[..12]));
    let addr = nw.host.ip(&["-o", "-4", "addr", "show", "dev", &br2]).unwrap();
    assert!(addr.contains("inet 172.22.16.1/24"), "{br2}: {addr}");
    let links = nw.host_links();
    assert!(links.iter().any(|l| l.name == br2 && l.kind == "bridge"), "{links:#?}");

    // A container on my_net2: the first free address, the gateway as its
    // route and resolver, its name in /etc/hosts.
    w.ok(&["run", "-d", "--name", "c", "--network", "my_net2", "bb", "sleep", "1000"]);
    let c_id = w.full_id("c");
    assert_eq!(nw.addr("c", "eth0").as_deref(), Some("172.22.16.2/24"));
    let mac = nw.sh_ok("c", "cat /sys/class/net/eth0/address").trim().to_owned();
    assert_eq!(nw.sh_ok("c", "cat /sys/class/net/eth0/mtu").trim(), "1500");
    let routes = nw.sh_ok("c", "ip -4 route");
    assert!(routes.lines().any(|l| l.starts_with("default via 172.22.16.1 dev eth0")), "{routes}");
    let resolv = nw.sh_ok("c", "cat /etc/resolv.conf");
    assert_eq!(nameservers(&resolv), ["nameserver 172.22.16.1"], "c's resolv.conf:\n{resolv}");
    let hostname = nw.sh_ok("c", "hostname").trim().to_owned();
    assert_eq!(nw.sh_ok("c", "cat /etc/hostname").trim(), hostname);
    let hosts = nw.sh_ok("c", "cat /etc/hosts");
    assert!(
        hosts
            .lines()
            .any(|l| l.split_whitespace().next() == Some("172.22.16.2") && l.split_whitespace().any(|n| n == hostname)),
        "no line for 172.22.16.2 {hostname} in /etc/hosts:\n{hosts}"
    );
    assert!(hosts.lines().any(|l| l.starts_with("127.0.0.1") && l.contains("localhost")), "{hosts}");

    // inspect lists it.
    let n2 = nw.network("my_net2");
    assert_eq!(keys(&n2["Containers"]), [c_id.as_str()], "{n2:?}");
    let entry = &n2["Containers"][c_id.as_str()];
    assert_eq!(entry["Name"].as_str(), Some("c"), "{entry:?}");
    assert_eq!(entry["IPv4Address"].as_str(), Some("172.22.16.2/24"), "{entry:?}");
    assert_eq!(entry["IPv6Address"].as_str(), Some(""), "{entry:?}");
    assert_eq!(entry["MacAddress"].as_str(), Some(mac.as_str()), "{entry:?}");
    assert!(!entry["EndpointID"].as_str().unwrap_or_default().is_empty(), "{entry:?}");

    // The host end: veth + 7 hex, a port of my_net2's bridge.
    let links = nw.host_links();
    let ports: Vec<_> = links.iter().filter(|l| l.master == br2).collect();
    assert_eq!(ports.len(), 1, "{links:#?}");
    assert_eq!(ports[0].kind, "veth", "{links:#?}");
    assert!(
        ports[0].name.len() == 11
            && ports[0].name.starts_with("veth")
            && ports[0].name[4..].bytes().all(|b| b.is_ascii_hexdigit()),
        "host end {:?} is not veth + 7 hex",
        ports[0].name
    );

    // Firewall: forwarding on, masquerade for the subnet in wharf's chain.
    assert_eq!(nw.host.exec("cat", &["/proc/sys/net/ipv4/ip_forward"]).unwrap().trim(), "1");
    let rules = nw.iptables();
    assert!(
        rules.lines().any(|l| l.starts_with("-A WHARF-POSTROUTING")
            && l.contains("-s 172.22.16.0/24")
            && l.contains(&format!("! -o {br2}"))
            && l.ends_with("-j MASQUERADE")),
        "no masquerade rule for 172.22.16.0/24 in WHARF-POSTROUTING:\n{rules}"
    );
    assert!(rules.lines().any(|l| l == "-A POSTROUTING -j WHARF-POSTROUTING"), "{rules}");
    assert!(rules.lines().any(|l| l.starts_with("-A FORWARD") && l.contains("-j WHARF-")), "{rules}");

    // A container on the default bridge: wharf0, the host's nameservers.
    w.ok(&["run", "-d", "--name", "d", "bb", "sleep", "1000"]);
    assert_eq!(nw.bridge_of("bridge"), "wharf0");
    let bridge_subnet = nw.network("bridge")["IPAM"]["Config"][0]["Subnet"].as_str().unwrap_or_default().to_owned();
    let d_addr = nw.addr("d", "eth0").unwrap_or_else(|| panic!("d has no address"));
    let prefix = &bridge_subnet[..bridge_subnet.find(".0.0/16").unwrap_or_else(|| panic!("{bridge_subnet}"))];
    assert!(d_addr.starts_with(&format!("{prefix}.")) && d_addr.ends_with("/16"), "d: {d_addr} not in {bridge_subnet}");
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap();
    let d_resolv = nw.sh_ok("d", "cat /etc/resolv.conf");
    assert_eq!(nameservers(&d_resolv), nameservers(&host_resolv), "d's resolv.conf:\n{d_resolv}");
    let d_id = w.full_id("d");
    let bridge = nw.network("bridge");
    assert_eq!(bridge["Containers"][d_id.as_str()]["IPv4Address"].as_str(), Some(d_addr.as_str()), "{bridge:?}");
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let nw = NetWorld::new(WHARF, PROXY);
    let w = &nw.w;
    w.ok(&["network", "create", "--subnet", "172.22.16.0/24", "--gateway", "172.22.16.1", "my_net2"]);
    w.ok(&["run", "-d", "--name", "c", "--network", "my_net2", "bb", "sleep", "1000"]);
    w.ok(&["run", "-d", "--name", "d", "bb", "sleep", "1000"]);
    assert_eq!(nw.addr("c", "eth0").as_deref(), Some("172.22.16.2/24"));

    let snapshot = || {
        format!(
            "{}\nnetwork ls:\n{}\nmy_net2:\n{}\ncontainers: {:?}\nps -a:\n{}",
            nw.host_snapshot(),
            w.ok(&["network", "ls"]),
            w.ok(&["network", "inspect", "my_net2"]),
            w.container_dirs(),
            w.ok(&["ps", "-a", "-q"]),
        )
    };
    let before = snapshot();

    let bad: &[(&[&str], i32, &str)] = &[
        (
            &["network", "create", "--subnet", "172.22.16.128/25", "x1"],
            1,
            "Pool overlaps with other one on this address space",
        ),
        (
            &["network", "create", "--subnet", "172.22.0.0/16", "x1"],
            1,
            "Pool overlaps with other one on this address space",
        ),
        (&["network", "create", "--subnet", "172.23.0.0/24", "--gateway", "172.24.0.1", "x1"], 1, "172.24.0.1"),
        (&["network", "create", "--subnet", "172.23.0.0/24", "--ip-range", "172.23.1.0/25", "x1"], 1, "172.23.1.0/25"),
        (&["network", "create", "--subnet", "172.23.0.300/24", "x1"], 1, "172.23.0.300/24"),
        (&["network", "create", "--driver", "overlay", "x1"], 1, "overlay"),
        (&["network", "create", "my_net2"], 1, "wharf: network with name my_net2 already exists"),
        (&["network", "rm", "bridge"], 1, "bridge"),
        (&["network", "rm", "host"], 1, "host"),
        (&["network", "rm", "none"], 1, "none"),
        (&["network", "rm", "nosuchnet"], 1, "nosuchnet"),
        (&["network", "inspect", "nosuchnet"], 1, "nosuchnet"),
        (&["network", "connect", "nosuchnet", "c"], 1, "nosuchnet"),
        (&["network", "connect", "my_net2", "nosuchc"], 1, "no such container: nosuchc"),
        (&["run", "--network", "nosuchnet", "bb", "true"], 125, "nosuchnet"),
        (&["run", "--network", "my_net2", "--ip", "172.22.16.2", "bb", "true"], 125, "already in use"),
        (&["run", "--network", "my_net2", "--ip", "172.30.0.5", "bb", "true"], 125, "172.30.0.5"),
        (
            &["run", "--ip", "172.17.0.50", "bb", "true"],
            125,
            "wharf: user specified IP address is supported on user defined networks only",
        ),
        (&["run", "--network", "my_net2", "-p", "70000:80", "bb", "true"], 125, "70000"),
    ];
    for (args, code, needle) in bad {
        let ran = w.run(args);
        assert_eq!(ran.code, *code, "{args:?}: {ran}");
        assert!(ran.stderr.starts_with("wharf: "), "{args:?}: error is not one `wharf: ` line: {ran}");
        assert!(
            ran.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "{args:?}: stderr does not say {needle:?}: {ran}"
        );
        let after = snapshot();
        assert!(after == before, "{args:?} changed something:\n--- before:\n{before}\n--- after:\n{after}");
    }
}

#[test]
fn rm_is_refused_while_a_container_is_attached_and_prune_keeps_used_networks() {
    let nw = NetWorld::new(WHARF, PROXY);
    let w = &nw.w;
    w.ok(&["network", "create", "--subnet", "172.22.16.0/24", "--gateway", "172.22.16.1", "my_net2"]);
    w.ok(&["run", "-d", "--name", "c", "--network", "my_net2", "bb", "sleep", "1000"]);
    let br2 = nw.bridge_of("my_net2");
    let refused = "wharf: error while removing network: network my_net2 has active endpoints";

    // Running, then stopped: refused, and the bridge stays.
    for state in ["running", "stopped"] {
        if state == "stopped" {
            w.ok(&["stop", "-t", "1", "c"]);
        }
        let ran = w.run(&["network", "rm", "my_net2"]);
        assert_eq!(ran.code, 1, "rm with a {state} container: {ran}");
        assert!(ran.stderr.contains(refused), "rm with a {state} container: {ran}");
        assert!(nw.host_links().iter().any(|l| l.name == br2), "{br2} removed by a refused rm ({state})");
        assert!(w.ok(&["network", "ls"]).contains("my_net2"));
    }

    // Once the container is gone: removed, with its device and rules.
    w.ok(&["rm", "c"]);
    w.ok(&["network", "rm", "my_net2"]);
    let ls = w.ok(&["network", "ls"]);
    assert!(!ls.contains("my_net2"), "{ls}");
    let links = nw.host_links();
    assert!(!links.iter().any(|l| l.name == br2), "{br2} left after network rm: {links:#?}");
    let rules = nw.iptables();
    assert!(
        !rules.contains("172.22.16.0/24") && !rules.contains(br2.as_str()),
        "rules of my_net2 left after network rm:\n{rules}"
    );
    assert!(!w.root().join("networks/my_net2.json").exists());
    // The name and subnet are free again.
    w.ok(&["network", "create", "--subnet", "172.22.16.0/24", "my_net2"]);

    // prune: removes unused user networks only.
    w.ok(&["network", "create", "--subnet", "172.22.17.0/24", "used"]);
    w.ok(&["network", "create", "--subnet", "172.22.18.0/24", "unused"]);
    w.ok(&["run", "--name", "u", "--network", "used", "bb", "true"]); // stopped, still attached
    let out = w.ok(&["network", "prune", "-f"]);
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    assert_eq!(lines.next(), Some("Deleted Networks:"), "{out}");
    let mut deleted: Vec<&str> = lines.map(str::trim).collect();
    deleted.sort();
    assert_eq!(deleted, ["my_net2", "unused"], "{out}");
    let rows = network_ls(&nw);
    let names: Vec<&str> = rows.keys().map(String::as_str).collect();
    assert_eq!(names, ["bridge", "host", "none", "used"], "{rows:?}");
}

/// `-o com.docker.network.bridge.name=BR` naming a bridge that is already
/// there: the network uses it (its MTU left alone) and `network rm` leaves
/// it, as Docker leaves a bridge it did not create, taking back only the
/// gateway address; a bridge wharf made goes with its network; naming a
/// link that is not a bridge is refused and the link keeps its addresses.
#[test]
fn an_existing_bridge_is_used_and_kept_and_other_links_are_refused() {
    let nw = NetWorld::new(WHARF, PROXY);
    let w = &nw.w;
    let link = |name: &str| nw.host.ip(&["-o", "addr", "show", "dev", name]);
    nw.host.ip(&["link", "add", "brmine", "mtu", "1400", "type", "bridge"]).unwrap();
    nw.host.ip(&["addr", "add", "192.0.2.1/24", "dev", "brmine"]).unwrap();
    nw.host.ip(&["link", "add", "vmine", "type", "veth", "peer", "name", "vmine-peer"]).unwrap();
    let veth_before = link("vmine").unwrap();

    let bridge_name = |name: &str| format!("com.docker.network.bridge.name={name}");
    let ran = w.run(&["network", "create", "-o", &bridge_name("vmine"), "--subnet", "172.23.5.0/24", "onveth"]);
    assert_eq!(ran.code, 1, "{ran}");
    assert!(ran.stderr.contains("vmine is a veth link, not a bridge"), "{ran}");
    assert_eq!(link("vmine").unwrap(), veth_before, "a refused create changed the link");
    assert_ne!(w.run(&["network", "inspect", "onveth"]).code, 0, "the refused network has a record");
    let lo_before = link("lo").unwrap();
    let ran = w.run(&["network", "create", "-o", &bridge_name("lo"), "--subnet", "172.23.4.0/24", "onlo"]);
    assert_eq!(ran.code, 1, "{ran}");
    assert!(ran.stderr.contains("lo is a device, not a bridge"), "{ran}");
    assert_eq!(link("lo").unwrap(), lo_before, "a refused create changed lo");

    w.ok(&["network", "create", "-o", &bridge_name("brmine"), "--subnet", "172.23.6.0/24", "mine"]);
    let addresses = link("brmine").unwrap();
    assert!(addresses.contains("172.23.6.1/24"), "the gateway is not on the bridge:\n{addresses}");
    let shown = nw.host.ip(&["-o", "link", "show", "dev", "brmine"]).unwrap();
    assert!(shown.contains("mtu 1400") && shown.contains(",UP"), "{shown}");
    w.ok(&["network", "rm", "mine"]);
    let addresses = link("brmine").expect("network rm deleted a bridge wharf did not create");
    assert!(!addresses.contains("172.23.6.1/24"), "the gateway address stayed:\n{addresses}");
    assert!(addresses.contains("192.0.2.1/24"), "the bridge's own address went:\n{addresses}");

    w.ok(&["network", "create", "-o", &bridge_name("brwharf"), "--subnet", "172.23.7.0/24", "ours"]);
    assert!(link("brwharf").is_ok(), "no bridge made for the network");
    w.ok(&["network", "rm", "ours"]);
    assert!(link("brwharf").is_err(), "network rm left the bridge wharf made");
}

/// A `wh-` bridge that no network owns is deleted by the next `network`
/// command only if this WHARF_ROOT made it (its alias says so): another
/// root's bridge on the same host, or one made by hand, stays.
#[test]
fn only_this_roots_stray_bridges_are_deleted() {
    let nw = NetWorld::new(WHARF, PROXY);
    let w = &nw.w;
    let id = w.ok(&["network", "create", "--subnet", "172.23.8.0/24", "ours"]).trim().to_owned();
    let ours = format!("wh-{}", &id[..12]);
    let shown = nw.host.ip(&["-j", "link", "show", "dev", &ours]).unwrap();
    let alias = Json::parse(&shown).unwrap()[0]["ifalias"].as_str().map(str::to_owned);
    let alias = alias.unwrap_or_else(|| panic!("wharf's bridge carries no alias: {shown}"));
    assert!(alias.starts_with("wharf "), "{alias}");
    // What a `network create` killed before saving its record leaves, and
    // what another root or a person made.
    for (name, alias) in
        [("wh-strayours", Some(alias.as_str())), ("wh-strayother", Some("wharf 0000000000000000")), ("wh-byhand", None)]
    {
        nw.host.ip(&["link", "add", name, "type", "bridge"]).unwrap();
        if let Some(alias) = alias {
            nw.host.ip(&["link", "set", "dev", name, "alias", alias]).unwrap();
        }
    }
    let ran = w.run(&["network", "ls"]);
    assert_eq!(ran.code, 0, "{ran}");
    assert!(ran.stderr.contains("deleted bridge wh-strayours: no network owns it"), "{ran}");
    let exists = |name: &str| nw.host.ip(&["link", "show", "dev", name]).is_ok();
    assert!(!exists("wh-strayours"), "this root's stray bridge stayed");
    assert!(exists("wh-strayother") && exists("wh-byhand"), "a bridge this root did not make was deleted");
    assert!(exists(&ours), "the network's own bridge went");
}
