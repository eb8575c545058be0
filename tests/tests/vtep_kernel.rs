//! wharf's VTEP against the Linux kernel's vxlan device, on the wire: host A
//! runs `wharf vtep` over a TAP, host B the kernel's `vxlan` (VNI 42, port
//! 4789), joined by a veth underlay. ARP resolves, ping works both ways, a
//! 100 MB TCP transfer arrives intact in each direction; bad input sent to
//! wharf's underlay socket is dropped and counted while traffic keeps
//! flowing; oversized inner frames are dropped and counted.

use std::time::Duration;

use tests::{require_root, underlay_pair, wait_for, KernelVxlan, Netns, WharfRunner};

const WHARF: &str = env!("CARGO_BIN_EXE_wharf-e2e");
const BLAST: &str = env!("CARGO_BIN_EXE_blast");

/// Host A (wharf, TAP `wt0`, 198.51.100.1) and host B (kernel `vx42`,
/// 198.51.100.2), underlay 192.0.2.1 ↔ 192.0.2.2.
struct Pair {
    a: Netns,
    b: Netns,
    vtep: WharfRunner,
}

fn pair(extra: &[&str]) -> Pair {
    require_root();
    let (a, b) = underlay_pair("va", "vb").unwrap();
    KernelVxlan::B42.create_facing_userspace(&b).unwrap();
    let mut args = vec!["--vni", "42", "--local", "192.0.2.1", "--remote", "192.0.2.2", "--tap", "wt0"];
    args.extend_from_slice(extra);
    let vtep = WharfRunner::start(WHARF, &a, "wt0", &args).unwrap();
    a.ip(&["addr", "add", "198.51.100.1/24", "dev", "wt0"]).unwrap();
    Pair { a, b, vtep }
}

fn transfer(from: &Netns, to: &Netns, to_addr: &str, bytes: u64) {
    let addr = format!("{to_addr}:5000");
    let mut receiver = to.command(BLAST, &["recv", &addr]);
    receiver.stdout(std::process::Stdio::piped());
    let receiver = receiver.spawn().unwrap();
    assert!(wait_for(Duration::from_secs(10), || {
        to.exec("ss", &["-Htln", "sport = :5000"]).map(|out| !out.trim().is_empty()).unwrap_or(false)
    }));
    let sent = from.exec(BLAST, &["send", &addr, &bytes.to_string(), "42"]).unwrap();
    let received = receiver.wait_with_output().unwrap();
    assert!(received.status.success(), "receiver failed");
    let received = String::from_utf8_lossy(&received.stdout);
    let received = received.lines().last().unwrap_or_default();
    assert_eq!(received.trim(), sent.trim(), "what arrived differs from what was sent");
    assert!(sent.starts_with(&bytes.to_string()));
}

#[test]
fn wharf_and_kernel_vxlan_interoperate() {
    let p = pair(&[]);
    // The TAP took the overlay MTU, as the kernel's vxlan device does.
    let link = p.a.ip(&["-o", "link", "show", "wt0"]).unwrap();
    assert!(link.contains("mtu 1450"), "{link}");
    p.a.exec("ping", &["-c", "3", "-i", "0.2", "-W", "2", "198.51.100.2"]).unwrap();
    p.b.exec("ping", &["-c", "3", "-i", "0.2", "-W", "2", "198.51.100.1"]).unwrap();
    p.a.exec("ping", &["-c", "2", "-i", "0.2", "-W", "2", "-s", "1400", "198.51.100.2"]).unwrap();
    // The kernel learned wharf's inner MAC behind 192.0.2.1.
    let fdb = p.b.exec("bridge", &["fdb", "show", "dev", "vx42"]).unwrap();
    assert!(fdb.contains("dst 192.0.2.1"), "{fdb}");

    const HUNDRED_MB: u64 = 100 * 1024 * 1024;
    transfer(&p.a, &p.b, "198.51.100.2", HUNDRED_MB);
    transfer(&p.b, &p.a, "198.51.100.1", HUNDRED_MB);

    let stats = p.vtep.stats().unwrap();
    assert!(stats["tx_packets"] > 70_000, "{stats:?}");
    assert!(stats["rx_packets"] > 70_000, "{stats:?}");
    assert!(stats["learned"] >= 1, "{stats:?}");
}

/// A VXLAN datagram: I flag, `vni`, then `inner`.
fn vxlan(flags: u8, vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut datagram = vec![flags, 0, 0, 0];
    datagram.extend_from_slice(&(vni << 8).to_be_bytes());
    datagram.extend_from_slice(inner);
    datagram
}

#[test]
fn bad_underlay_input_is_counted_and_traffic_flows() {
    let p = pair(&[]);
    p.a.exec("ping", &["-c", "1", "-W", "2", "198.51.100.2"]).unwrap();
    let before = p.vtep.stats().unwrap();

    // Each datagram is sent from B's underlay address to wharf's port.
    let eth = |ethertype: [u8; 2], rest: &[u8]| {
        let mut frame = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x09];
        frame.extend_from_slice(&ethertype);
        frame.extend_from_slice(rest);
        frame
    };
    let ipv4_ping = [0x45u8; 28];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad_flags", vxlan(0x00, 42, &eth([0x08, 0x00], &ipv4_ping))),
        ("bad_flags", vec![0x08, 0, 0]),
        ("unknown_vni", vxlan(0x08, 43, &eth([0x08, 0x00], &ipv4_ping))),
        ("inner_vlan", vxlan(0x08, 42, &eth([0x81, 0x00], &[0, 100, 0x08, 0x00, 0x45, 0, 0, 20]))),
        ("bad_inner", vxlan(0x08, 42, &[0x02, 0, 0])),
    ];
    let mut datagrams: Vec<Vec<u8>> = cases.iter().map(|(_, d)| d.clone()).collect();
    // Random bytes: counted under some drop reason, never delivered.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..200 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Empty datagrams too: shorter than a VXLAN header.
        let len = (state % 120) as usize;
        let mut datagram = vec![0u8; len];
        for byte in &mut datagram {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        // Keep the I flag clear so no random frame is a valid one.
        if let Some(first) = datagram.first_mut() {
            *first &= !0x08;
        }
        datagrams.push(datagram);
    }
    // An IP-fragmented VXLAN datagram: 3000 bytes over a 1500-byte underlay.
    datagrams.push(vxlan(0x08, 42, &eth([0x08, 0x00], &vec![0x45; 2986])));
    send_from(&p.b, "192.0.2.2", "192.0.2.1:4789", &datagrams);

    let expected_drops = 2 + 1 + 1 + 1 + 200 + 1;
    assert!(
        wait_for(Duration::from_secs(5), || {
            let now = p.vtep.stats().unwrap();
            let drops: u64 =
                now.iter().filter(|(k, _)| k.starts_with("drop_")).map(|(k, v)| v - before.get(k).unwrap_or(&0)).sum();
            drops >= expected_drops
        }),
        "drops not counted: before {before:?}, after {:?}",
        p.vtep.stats().unwrap()
    );
    let after = p.vtep.stats().unwrap();
    for name in ["drop_bad_flags", "drop_unknown_vni", "drop_inner_vlan", "drop_bad_inner", "drop_fragmented"] {
        assert!(after[name] > before.get(name).copied().unwrap_or(0), "{name} not counted: {after:?}");
    }
    let drops: u64 =
        after.iter().filter(|(k, _)| k.starts_with("drop_")).map(|(k, v)| v - before.get(k).unwrap_or(&0)).sum();
    assert_eq!(drops, expected_drops, "every bad datagram counted once: {after:?}");
    // And traffic still flows.
    p.a.exec("ping", &["-c", "3", "-i", "0.2", "-W", "2", "198.51.100.2"]).unwrap();
}

/// Sends UDP datagrams from inside `ns`, from `src` to `dst`, letting the
/// kernel fragment one larger than the path MTU (python3: the test process
/// itself stays in the machine's namespace).
fn send_from(ns: &Netns, src: &str, dst: &str, datagrams: &[Vec<u8>]) {
    let (host, port) = dst.rsplit_once(':').unwrap();
    let hex: Vec<String> =
        datagrams.iter().map(|d| format!("'{}'", d.iter().map(|b| format!("{b:02x}")).collect::<String>())).collect();
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('{src}', 0))\n\
         s.setsockopt(socket.IPPROTO_IP, 10, 0)\nfor d in [{}]:\n    s.sendto(bytes.fromhex(d), ('{host}', {port}))\n",
        hex.join(", ")
    );
    ns.exec("python3", &["-c", &script]).unwrap();
}

#[test]
fn oversized_inner_frames_are_dropped_and_counted() {
    let p = pair(&[]);
    p.a.exec("ping", &["-c", "1", "-W", "2", "198.51.100.2"]).unwrap();
    // Raise the TAP's MTU past what the underlay carries, then send frames
    // that cannot be encapsulated without fragmenting the outer packet.
    p.a.ip(&["link", "set", "wt0", "mtu", "9000"]).unwrap();
    let before = p.vtep.stat("drop_too_big");
    let _ = p.a.exec("ping", &["-c", "3", "-i", "0.2", "-W", "1", "-s", "3000", "-M", "do", "198.51.100.2"]);
    assert!(wait_for(Duration::from_secs(3), || p.vtep.stat("drop_too_big") >= before + 3));
    // Frames that fit still go through.
    p.a.exec("ping", &["-c", "2", "-i", "0.2", "-W", "2", "-s", "1000", "198.51.100.2"]).unwrap();
}

#[test]
fn stops_cleanly_on_sigterm() {
    let mut p = pair(&[]);
    let (status, output) = p.vtep.stop().unwrap();
    assert!(status.success(), "{status:?}\n{output}");
    // The TAP it created is gone with it.
    assert!(p.a.ip(&["link", "show", "wt0"]).is_err());
}

/// `--dev`: the VTEP carries an existing interface — the host end of a
/// container's veth — through AF_PACKET instead of a TAP. The container
/// reaches the kernel's side of the overlay, TSO superframes from the veth
/// included.
#[test]
fn dev_mode_carries_a_container_veth() {
    require_root();
    let c = Netns::new("vc").unwrap();
    let (a, b) = underlay_pair("va", "vb").unwrap();
    KernelVxlan::B42.create_facing_userspace(&b).unwrap();
    // The container: eth0 with the overlay address; its peer h0 in host A.
    c.veth("eth0", &a, "h0").unwrap();
    c.ip(&["addr", "add", "198.51.100.1/24", "dev", "eth0"]).unwrap();
    c.ip(&["link", "set", "eth0", "mtu", "1450"]).unwrap();
    let vtep = WharfRunner::start(
        WHARF,
        &a,
        "h0",
        &["--vni", "42", "--local", "192.0.2.1", "--remote", "192.0.2.2", "--dev", "h0"],
    )
    .unwrap();
    // A fresh veth can drop its first frames: retry the first ping.
    assert!(wait_for(Duration::from_secs(5), || c.exec("ping", &["-c", "1", "-W", "1", "198.51.100.2"]).is_ok()));
    b.exec("ping", &["-c", "3", "-i", "0.2", "-W", "2", "198.51.100.1"]).unwrap();
    transfer(&c, &b, "198.51.100.2", 20 * 1024 * 1024);
    transfer(&b, &c, "198.51.100.1", 20 * 1024 * 1024);
    let stats = vtep.stats().unwrap();
    assert!(stats["tx_packets"] > 14_000 && stats["rx_packets"] > 14_000, "{stats:?}");
    assert_eq!(stats["drop_bad_offload"], 0, "{stats:?}");
}

/// `--frag-needed`: a frame too big for the underlay is answered with ICMP
/// fragmentation needed, so the sender learns the overlay MTU; the kernel's
/// ping reports it.
#[test]
fn frag_needed_tells_the_sender_the_mtu() {
    let p = pair(&["--frag-needed"]);
    p.a.exec("ping", &["-c", "1", "-W", "2", "198.51.100.2"]).unwrap();
    p.a.ip(&["link", "set", "wt0", "mtu", "9000"]).unwrap();
    let out =
        p.a.command("ping", &["-c", "2", "-i", "0.3", "-W", "1", "-s", "3000", "-M", "do", "198.51.100.2"])
            .output()
            .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("mtu = 1450") || text.contains("mtu=1450"), "ping did not learn the MTU:\n{text}");
    assert!(p.vtep.stat("too_big_replies") >= 1);
    assert!(p.vtep.stat("drop_too_big") >= 1);
}

/// The same interoperation over an IPv6 underlay, on the kernel's and
/// flannel's port 8472: the outer UDP checksum is computed both ways.
#[test]
fn ipv6_underlay_interoperates() {
    require_root();
    let a = Netns::new("v6a").unwrap();
    let b = Netns::new("v6b").unwrap();
    a.veth("u0", &b, "u0").unwrap();
    a.ip(&["addr", "add", "2001:db8:1::1/64", "dev", "u0", "nodad"]).unwrap();
    b.ip(&["addr", "add", "2001:db8:1::2/64", "dev", "u0", "nodad"]).unwrap();
    let vx43 = KernelVxlan {
        name: "vx43",
        vni: 43,
        local: "2001:db8:1::2",
        remote: "2001:db8:1::1",
        dstport: 8472,
        overlay: "198.51.100.2/24",
    };
    vx43.create_facing_userspace(&b).unwrap();
    let args =
        ["--vni", "43", "--local", "2001:db8:1::1", "--remote", "2001:db8:1::2", "--dstport", "8472", "--tap", "wt0"];
    let vtep = WharfRunner::start(WHARF, &a, "wt0", &args).unwrap();
    a.ip(&["addr", "add", "198.51.100.1/24", "dev", "wt0"]).unwrap();
    // 70 bytes of outer headers over IPv6: the TAP got MTU 1430.
    let link = a.ip(&["-o", "link", "show", "wt0"]).unwrap();
    assert!(link.contains("mtu 1430"), "{link}");
    assert!(wait_for(Duration::from_secs(5), || a.exec("ping", &["-c", "1", "-W", "1", "198.51.100.2"]).is_ok()));
    b.exec("ping", &["-c", "3", "-i", "0.2", "-W", "2", "198.51.100.1"]).unwrap();
    transfer(&a, &b, "198.51.100.2", 10 * 1024 * 1024);
    let stats = vtep.stats().unwrap();
    assert_eq!(stats["drop_bad_outer"], 0, "{stats:?}");
    assert!(stats["rx_packets"] >= 100 && stats["tx_packets"] >= 7000, "{stats:?}");
}

/// `--udpcsum`: outer UDP checksums over IPv4, which also lets wharf send
/// runs of datagrams as one UDP GSO message; the kernel's vxlan verifies
/// every checksum and the transfer arrives intact.
#[test]
fn udp_checksums_and_gso_interoperate() {
    let p = pair(&["--udpcsum"]);
    assert!(wait_for(Duration::from_secs(5), || p.a.exec("ping", &["-c", "1", "-W", "1", "198.51.100.2"]).is_ok()));
    transfer(&p.a, &p.b, "198.51.100.2", 50 * 1024 * 1024);
    transfer(&p.b, &p.a, "198.51.100.1", 10 * 1024 * 1024);
    let stats = p.vtep.stats().unwrap();
    assert_eq!(stats["underlay_send_errors"], 0, "{stats:?}");
    // The kernel dropped nothing for a bad checksum.
    let snmp = p.b.exec("nstat", &["-az", "UdpInCsumErrors"]).unwrap();
    assert!(
        snmp.lines().any(|l| l.starts_with("UdpInCsumErrors") && l.split_whitespace().nth(1) == Some("0")),
        "{snmp}"
    );
}

/// The kernel's UDP counters in `ns`, by name.
fn udp_counters(ns: &Netns) -> std::collections::BTreeMap<String, u64> {
    let out = ns.exec("nstat", &["-az"]).unwrap();
    out.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.parse().ok()?))
        })
        .collect()
}

/// `--tunnel-gso`: each TCP superframe from wharf's TAP goes to the kernel
/// whole (UDP-tunnel GSO through a TAP that tc redirects to `u0`), crosses
/// the veth whole and is taken whole by the kernel's vxlan: far fewer
/// datagrams arrive than segments were sent. Both directions intact.
#[test]
fn tunnel_gso_hands_superframes_to_the_kernel_whole() {
    let p = pair(&["--tunnel-gso"]);
    // The first frames go the ordinary way and make the kernel resolve the
    // next hop; once a second has passed wharf has read it.
    assert!(wait_for(Duration::from_secs(5), || p.a.exec("ping", &["-c", "1", "-W", "1", "198.51.100.2"]).is_ok()));
    std::thread::sleep(Duration::from_millis(1500));
    const HUNDRED_MB: u64 = 100 * 1024 * 1024;
    transfer(&p.a, &p.b, "198.51.100.2", HUNDRED_MB);
    transfer(&p.b, &p.a, "198.51.100.1", 20 * 1024 * 1024);
    let stats = p.vtep.stats().unwrap();
    assert!(stats["tunnel_gso_superframes"] > 100, "{stats:?}");
    assert_eq!(stats["tunnel_gso_write_errors"], 0, "{stats:?}");
    let received = udp_counters(&p.b)["UdpInDatagrams"];
    assert!(
        received * 4 < stats["tx_packets"],
        "{received} datagrams arrived for {} segments: superframes were cut",
        stats["tx_packets"]
    );
}

/// With checksum offload off on wharf's underlay device, the kernel cuts
/// each superframe itself before the veth and computes every checksum; the
/// kernel's vxlan on the other side verifies each datagram's outer UDP and
/// inner TCP checksums and finds none wrong: what a NIC would put on a wire.
#[test]
fn tunnel_gso_superframes_are_cut_into_valid_datagrams() {
    let p = pair(&["--tunnel-gso", "--udpcsum"]);
    p.a.exec("ethtool", &["-K", "u0", "tx", "off"]).unwrap();
    assert!(wait_for(Duration::from_secs(5), || p.a.exec("ping", &["-c", "1", "-W", "1", "198.51.100.2"]).is_ok()));
    std::thread::sleep(Duration::from_millis(1500));
    transfer(&p.a, &p.b, "198.51.100.2", 30 * 1024 * 1024);
    let stats = p.vtep.stats().unwrap();
    assert!(stats["tunnel_gso_superframes"] > 100, "{stats:?}");
    let udp = udp_counters(&p.b);
    assert_eq!(udp["UdpInCsumErrors"], 0, "{udp:?}");
    assert_eq!(udp["TcpInCsumErrors"], 0, "{udp:?}");
    assert!(udp["UdpInDatagrams"] > 20_000, "cut into datagrams before the veth: {udp:?}");
}

/// `wharf vtep --tunnel-gso` on both hosts of an underlay pair: A
/// 198.51.100.1 over 192.0.2.1, B 198.51.100.2 over 192.0.2.2.
fn two_tunnel_gso_wharfs(a: &Netns, b: &Netns) -> (WharfRunner, WharfRunner) {
    let start = |ns: &Netns, local: &str, remote: &str, addr: &str| {
        let args = ["--vni", "42", "--local", local, "--remote", remote, "--tap", "wt0", "--tunnel-gso"];
        let vtep = WharfRunner::start(WHARF, ns, "wt0", &args).unwrap();
        ns.ip(&["addr", "add", addr, "dev", "wt0"]).unwrap();
        vtep
    };
    (start(a, "192.0.2.1", "192.0.2.2", "198.51.100.1/24"), start(b, "192.0.2.2", "192.0.2.1", "198.51.100.2/24"))
}

/// Two wharfs with `--tunnel-gso`: a superframe crosses the veth whole and
/// reaches the other wharf's socket as one datagram, which hands it to its
/// TAP as GSO.
#[test]
fn tunnel_gso_between_two_wharfs() {
    require_root();
    let (a, b) = underlay_pair("ta", "tb").unwrap();
    let (va, vb) = two_tunnel_gso_wharfs(&a, &b);
    assert!(wait_for(Duration::from_secs(5), || a.exec("ping", &["-c", "1", "-W", "1", "198.51.100.2"]).is_ok()));
    std::thread::sleep(Duration::from_millis(1500));
    transfer(&a, &b, "198.51.100.2", 50 * 1024 * 1024);
    transfer(&b, &a, "198.51.100.1", 50 * 1024 * 1024);
    for (sender, receiver) in [(&va, &vb), (&vb, &va)] {
        let (sent, got) = (sender.stats().unwrap(), receiver.stats().unwrap());
        assert!(sent["tunnel_gso_superframes"] > 100, "{sent:?}");
        assert!(got["rx_superframes"] > 100, "{got:?}");
        assert_eq!(got["drop_bad_superframe"], 0, "{got:?}");
    }
}

/// `--tunnel-gso` sends around the kernel's neighbour code, so wharf marks
/// the next hop's entry in use each second, as the kernel's vxlan would use
/// it. Host B changes its underlay MAC without a gratuitous ARP (and has a
/// permanent entry for A, so it never asks A anything): A's kernel must
/// find out by probing the entry wharf uses, fail, and resolve B again.
/// Left `STALE`, the entry would keep the old MAC until the inner ARP entry
/// expired (30 s here) and a flood took the ordinary path.
#[test]
fn tunnel_gso_finds_a_next_hop_that_changed_its_mac() {
    require_root();
    let (a, b) = underlay_pair("tc", "td").unwrap();
    // A's underlay entries expire and are probed within seconds; its inner
    // ones (wt0) keep the default, so only the probes of the underlay entry
    // can bring the path back in time.
    for (key, value) in [("base_reachable_time_ms", "1000"), ("delay_first_probe_time", "1")] {
        a.exec("sysctl", &["-qw", &format!("net.ipv4.neigh.u0.{key}={value}")]).unwrap();
    }
    // No IPv6 on the TAPs: their multicast chatter (router solicitations,
    // MLD) would be flooded the ordinary way and make A's kernel use, and
    // so probe, the entry itself.
    for ns in [&a, &b] {
        ns.exec("sysctl", &["-qw", "net.ipv6.conf.default.disable_ipv6=1"]).unwrap();
    }
    let (va, _vb) = two_tunnel_gso_wharfs(&a, &b);
    let a_mac = a.mac("u0").unwrap();
    b.ip(&["neigh", "replace", "192.0.2.1", "lladdr", &a_mac, "dev", "u0", "nud", "permanent"]).unwrap();
    let ping = || a.exec("ping", &["-c", "1", "-W", "1", "198.51.100.2"]).is_ok();
    assert!(wait_for(Duration::from_secs(5), ping));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(ping());
    let before = va.stats().unwrap()["tunnel_gso_frames"];
    assert!(before > 0, "the pings went the tunnel's way");

    // A new address flushes the device's entries, permanent ones too: B's
    // for A is put back at once, in the same batch.
    let batch =
        format!("link set u0 address 02:00:00:00:00:99\nneigh replace 192.0.2.1 lladdr {a_mac} dev u0 nud permanent\n");
    let mut ip = b.command("ip", &["-batch", "-"]);
    ip.stdin(std::process::Stdio::piped());
    let mut ip = ip.spawn().unwrap();
    std::io::Write::write_all(&mut ip.stdin.take().unwrap(), batch.as_bytes()).unwrap();
    assert!(ip.wait().unwrap().success());
    let started = std::time::Instant::now();
    assert!(
        wait_for(Duration::from_secs(15), ping),
        "no answer for 15 s after the MAC change: {}",
        a.ip(&["neigh", "show", "dev", "u0"]).unwrap_or_default()
    );
    let took = started.elapsed();
    let neigh = a.ip(&["neigh", "show", "192.0.2.2", "dev", "u0"]).unwrap();
    assert!(neigh.contains("02:00:00:00:00:99"), "{neigh}");
    // And the tunnel's way again, not only the ordinary one.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(ping());
    let stats = va.stats().unwrap();
    assert!(stats["tunnel_gso_frames"] > before + 1, "{stats:?}");
    assert_eq!(stats["tunnel_gso_neighbour_errors"], 0, "{stats:?}");
    eprintln!("answered again {took:?} after the MAC change");
}
