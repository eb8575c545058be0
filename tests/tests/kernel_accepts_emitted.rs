//! The wire layer's emitters against the Linux kernel: `vxlan-probe`, built
//! only from `dataplane::wire`, plays a VTEP in one namespace; the other has
//! a kernel `vxlan` device (VNI 42, port 4789). The kernel must accept every
//! frame the probe builds — ARP and neighbour replies, ICMP and ICMPv6 echo,
//! a TCP SYN with options, a UDP datagram — and answer each, which it does
//! only if every length and checksum is right.

use tests::{require_root, underlay_pair, KernelVxlan};

#[test]
fn kernel_vxlan_accepts_frames_we_emit() {
    require_root();
    let (a, b) = underlay_pair("pa", "pb").unwrap();
    KernelVxlan::B42.create(&b, &[]).unwrap();
    b.ip(&["addr", "add", "2001:db8:42::2/64", "dev", "vx42", "nodad"]).unwrap();
    let peer_mac = b.mac("vx42").unwrap();

    let output =
        a.command(env!("CARGO_BIN_EXE_vxlan-probe"), &["192.0.2.1", "192.0.2.2", "42", &peer_mac]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}{stderr}");
    assert!(output.status.success(), "vxlan-probe failed:\n{stdout}{stderr}");
    for check in ["Echo4: ok", "Echo6: ok", "TcpReset: ok", "PortUnreachable: ok"] {
        assert!(stdout.contains(check), "missing {check:?} in:\n{stdout}");
    }
    // The kernel had to ask for our addresses, and took our answers.
    assert!(stdout.contains("answering ARP"), "{stdout}");
    assert!(stdout.contains("answering neighbour solicitation"), "{stdout}");
    let neighbours = b.ip(&["neigh", "show", "dev", "vx42"]).unwrap();
    assert!(neighbours.contains("198.51.100.1 lladdr 02:00:5e:00:00:01"), "{neighbours}");
    assert!(neighbours.contains("2001:db8:42::1 lladdr 02:00:5e:00:00:01"), "{neighbours}");
}
