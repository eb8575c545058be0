//! The wire layer against frames the Linux kernel writes: two namespaces
//! joined by a veth pair, a kernel `vxlan` device in each — VNI 42 over an
//! IPv4 underlay on port 4789, VNI 43 over an IPv6 underlay on port 8472 —
//! with ping, ping6, fragmented pings and a TCP transfer across both. tcpdump captures the underlay; every
//! captured frame must dissect, and what the kernel wrote must read back as
//! the kernel meant it (VNIs, checksums, TCP options, fragments).
//!
//! VLAN tags are not covered here: this machine's kernel has no 802.1Q
//! devices, no bridge VLAN filtering and no tc classifiers, so it cannot be
//! made to write a tagged frame. Golden, property, differential and fuzz
//! tests cover 802.1Q and QinQ.

use std::time::Duration;

use dataplane::wire::dissect::{dissect, Network, Transport};
use dataplane::wire::ethernet::VlanTags;
use dataplane::wire::{arp, icmpv4, icmpv6, tcp, Error, EthernetAddress, IpProtocol};
use tests::{pcap, require_root, wait_for, Background, KernelVxlan, Netns};

/// What the capture held, counted while walking it.
#[derive(Debug, Default)]
struct Seen {
    frames: usize,
    vni42: usize,
    vni43: usize,
    arp_request: usize,
    arp_reply: usize,
    icmp_echo: usize,
    icmpv6_echo: usize,
    neighbor_solicit: usize,
    neighbor_advert: usize,
    icmpv6_other: usize,
    fragments: usize,
    syn_with_options: usize,
    tcp_segments: usize,
}

#[test]
fn kernel_vxlan_frames_dissect() {
    require_root();
    let a = Netns::new("fa").unwrap();
    let b = Netns::new("fb").unwrap();
    a.veth("u0", &b, "u0").unwrap();
    for (ns, last) in [(&a, "1"), (&b, "2")] {
        // IPv4 underlay on the veth itself.
        ns.ip(&["addr", "add", &format!("192.0.2.{last}/24"), "dev", "u0"]).unwrap();
        ns.ip(&["addr", "add", &format!("2001:db8:1::{last}/64"), "dev", "u0", "nodad"]).unwrap();
        let peer = if last == "1" { "2" } else { "1" };
        let (local4, remote4) = (format!("192.0.2.{last}"), format!("192.0.2.{peer}"));
        let (local6, remote6) = (format!("2001:db8:1::{last}"), format!("2001:db8:1::{peer}"));
        let (overlay4, overlay6) = (format!("198.51.100.{last}/24"), format!("2001:db8:43::{last}/64"));
        let vx42 =
            KernelVxlan { name: "vx42", vni: 42, local: &local4, remote: &remote4, dstport: 4789, overlay: &overlay4 };
        vx42.create(ns, &["udpcsum"]).unwrap();
        let vx43 =
            KernelVxlan { name: "vx43", vni: 43, local: &local6, remote: &remote6, dstport: 8472, overlay: &overlay6 };
        vx43.create(ns, &["noudp6zerocsumtx"]).unwrap();
        // Checksums are computed in software, so the capture holds final
        // values rather than offload placeholders.
        for link in ["u0", "vx42", "vx43"] {
            ns.exec("ethtool", &["-K", link, "tx", "off"]).unwrap();
        }
    }
    let vx43_a: EthernetAddress = a.mac("vx43").unwrap().parse().unwrap();
    let vx43_b: EthernetAddress = b.mac("vx43").unwrap().parse().unwrap();

    let file = std::env::temp_dir().join(format!("{}.pcap", a.name()));
    let _cleanup = RemoveOnDrop(file.clone());
    let file_arg = file.to_str().unwrap().to_owned();
    let mut tcpdump = a.command("tcpdump", &["-i", "u0", "-U", "-n", "-s", "0", "-w", &file_arg]);
    tcpdump.stderr(std::process::Stdio::piped());
    let tcpdump = Background::spawn(&mut tcpdump).unwrap();
    assert!(wait_for(Duration::from_secs(10), || file.metadata().map(|m| m.len() >= 24).unwrap_or(false)));

    a.exec("ping", &["-c", "2", "-i", "0.2", "-W", "2", "198.51.100.2"]).unwrap();
    a.exec("ping", &["-c", "2", "-i", "0.2", "-W", "2", "2001:db8:43::2"]).unwrap();
    // 3000 bytes over 1450- and 1430-byte overlay MTUs: inner IPv4 and IPv6 fragments.
    a.exec("ping", &["-c", "1", "-s", "3000", "-W", "2", "198.51.100.2"]).unwrap();
    a.exec("ping", &["-c", "1", "-s", "3000", "-W", "2", "2001:db8:43::2"]).unwrap();
    let _server = Background::spawn(&mut b.command("iperf3", &["-s", "-1", "-B", "198.51.100.2"])).unwrap();
    assert!(wait_for(Duration::from_secs(10), || {
        b.exec("ss", &["-Htln", "sport = :5201"]).map(|out| !out.trim().is_empty()).unwrap_or(false)
    }));
    a.exec("iperf3", &["-c", "198.51.100.2", "-n", "256K"]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    tcpdump.interrupt().unwrap();

    let capture = pcap::parse(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(capture.link_type, pcap::LINKTYPE_ETHERNET);
    let mut seen = Seen::default();
    for (index, frame) in capture.packets.iter().enumerate() {
        let d = dissect(frame, &[4789, 8472])
            .unwrap_or_else(|e| panic!("frame {index} from the kernel does not dissect: {e}: {frame:02x?}"));
        seen.frames += 1;
        let Some((vxlan, inner)) = d.vxlan else { continue };
        let Transport::Udp(outer_udp) = d.outer.transport else { unreachable!("VXLAN is found only in UDP") };
        match (vxlan.vni().get(), d.outer.network) {
            (42, Network::Ipv4(ip)) => {
                seen.vni42 += 1;
                assert!(ip.verify_checksum(), "outer IPv4 header checksum");
                assert_eq!(outer_udp.dst_port(), 4789);
                assert_ne!(outer_udp.checksum(), 0, "udpcsum: the checksum is computed");
                assert!(outer_udp.verify_checksum(ip.src_addr().into(), ip.dst_addr().into()));
                assert!(matches!(d.outer.ethernet.vlan_tags(), VlanTags::None));
            }
            (43, Network::Ipv6(ip, _)) => {
                seen.vni43 += 1;
                assert_eq!(outer_udp.dst_port(), 8472);
                assert_ne!(outer_udp.checksum(), 0, "noudp6zerocsumtx: the checksum is computed");
                assert!(outer_udp.verify_checksum(ip.src_addr().into(), ip.dst_addr().into()));
                assert_eq!(ip.next_header(), IpProtocol::Udp);
            }
            other => panic!("unexpected VXLAN frame: VNI {} over {:?}", other.0, other.1),
        }

        match (inner.network, inner.transport) {
            (Network::Arp(packet), _) => {
                let repr = arp::Repr::parse(&packet).unwrap();
                match repr.operation {
                    arp::Operation::Request => seen.arp_request += 1,
                    arp::Operation::Reply => seen.arp_reply += 1,
                    other => panic!("ARP operation {other:?}"),
                }
            }
            (Network::Ipv4(ip), transport) => {
                assert!(ip.verify_checksum(), "inner IPv4 header checksum");
                match transport {
                    Transport::Icmpv4(icmp) => {
                        assert!(icmp.verify_checksum(), "inner ICMP checksum");
                        if let icmpv4::Repr::EchoRequest { .. } | icmpv4::Repr::EchoReply { .. } =
                            icmpv4::Repr::parse(&icmp).unwrap()
                        {
                            seen.icmp_echo += 1;
                        }
                    }
                    Transport::Fragment(_) => {
                        seen.fragments += 1;
                        assert_eq!(ip.frag_offset() % 8, 0);
                    }
                    Transport::Tcp(segment) => {
                        seen.tcp_segments += 1;
                        assert!(
                            segment.verify_checksum(ip.src_addr().into(), ip.dst_addr().into()),
                            "inner TCP checksum, frame {index}"
                        );
                        let repr = tcp::Repr::parse(&segment).unwrap();
                        if repr.flags.contains(tcp::Flags::SYN) {
                            // 1450-byte overlay MTU − 20 (IPv4) − 20 (TCP).
                            assert_eq!(repr.max_seg_size, Some(1410));
                            assert!(repr.sack_permitted);
                            assert!(repr.timestamp.is_some());
                            assert!(repr.window_scale.is_some());
                            seen.syn_with_options += 1;
                        }
                    }
                    other => panic!("unexpected inner IPv4 transport {other:?}"),
                }
            }
            (Network::Ipv6(ip, _), transport) => match transport {
                Transport::Icmpv6(icmp) => {
                    assert!(icmp.verify_checksum(ip.src_addr(), ip.dst_addr()), "inner ICMPv6 checksum");
                    let repr = match icmpv6::Repr::parse(&icmp) {
                        Ok(repr) => repr,
                        // MLD reports and router solicitations: not represented.
                        Err(Error::Unsupported) => {
                            seen.icmpv6_other += 1;
                            continue;
                        }
                        Err(e) => panic!("ICMPv6 from the kernel, frame {index}: {e}"),
                    };
                    match repr {
                        icmpv6::Repr::EchoRequest { .. } | icmpv6::Repr::EchoReply { .. } => seen.icmpv6_echo += 1,
                        icmpv6::Repr::NeighborSolicit { source_lladdr, .. } => {
                            seen.neighbor_solicit += 1;
                            // RFC 4861 §4.3: the option carries the sender's own address.
                            if let Some(lladdr) = source_lladdr {
                                assert_eq!(lladdr, inner.ethernet.src_addr());
                                assert!(lladdr == vx43_a || lladdr == vx43_b, "NS from an unknown MAC {lladdr}");
                            }
                        }
                        icmpv6::Repr::NeighborAdvert { .. } => seen.neighbor_advert += 1,
                        _ => {}
                    }
                }
                Transport::Fragment(_) => seen.fragments += 1,
                other => panic!("unexpected inner IPv6 transport {other:?}"),
            },
            (Network::Other(_), _) => {}
        }
    }

    println!("{seen:?}");
    assert!(seen.vni42 >= 8, "{seen:?}");
    assert!(seen.vni43 >= 6, "{seen:?}");
    assert!(seen.arp_request >= 1 && seen.arp_reply >= 1, "{seen:?}");
    assert!(seen.icmp_echo >= 4, "{seen:?}");
    assert!(seen.icmpv6_echo >= 4, "{seen:?}");
    assert!(seen.neighbor_solicit >= 1 && seen.neighbor_advert >= 1, "{seen:?}");
    // A 3000-byte ping each way over each VNI, each in three fragments.
    assert!(seen.fragments >= 12, "{seen:?}");
    // iperf3's control and data connections: a SYN and a SYN-ACK each.
    assert_eq!(seen.syn_with_options, 4, "{seen:?}");
    assert!(seen.tcp_segments >= 20, "{seen:?}");
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
