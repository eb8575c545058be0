//! The VTEP's receive path. The first byte picks the configuration (IPv4 or
//! IPv6 underlay, learning, proxy, known peers only, inner VLANs, zero UDP
//! checksums over IPv6, whether to repair the outer checksums) and the
//! sender; the rest goes in as a UDP payload into `decap`, at two offsets,
//! and as a whole outer packet into `decap_packet` — once as it is and once
//! with its outer destination, port and checksums made right so the fuzzer
//! reaches past them. Then the tables age.
//!
//! Checked: nothing panics; every call is delivered or dropped under exactly
//! one counter (`rx_packets` + drops == calls); a delivered frame lies in the
//! input, holds at least an Ethernet header and goes to the port of its VNI.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use dataplane::vxlan::{Decap, Vni, VniConfig, Vtep, VtepConfig};
use dataplane::wire::{ipv4, ipv6, udp, EthernetAddress, IpProtocol};
use libfuzzer_sys::fuzz_target;

const LOCAL4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const PEER4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
const STRANGER4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99));
const LOCAL6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
const PEER6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
const STRANGER6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99));

fn vni(n: u32) -> Vni {
    Vni::new(n).expect("a 24-bit VNI")
}

fn vtep(selector: u8) -> Vtep {
    let v6 = selector & 0x01 != 0;
    let (local, peer) = if v6 { (LOCAL6, PEER6) } else { (LOCAL4, PEER4) };
    let mut config = VtepConfig::new(local)
        .vni(
            VniConfig::new(vni(42), 0)
                .remote(peer)
                .static_entry(EthernetAddress([0x52, 0x54, 0, 0, 0, 0x5a]), peer)
                .neighbour(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)), EthernetAddress([0x52, 0x54, 0, 0, 0, 2])),
        )
        .vni(VniConfig::new(vni(7), 1));
    config.learning = selector & 0x02 == 0;
    config.proxy = selector & 0x04 != 0;
    config.only_known_peers = selector & 0x08 != 0;
    config.allow_inner_vlan = selector & 0x10 != 0;
    config.udp6_zero_checksum_rx = selector & 0x20 != 0;
    config.max_fdb_entries = 4;
    config.max_neighbours = 4;
    Vtep::new(config).expect("a valid fuzz configuration")
}

/// Sets the outer destination to `local`, the UDP port to the VXLAN port
/// and both checksums right, where the bytes hold IPv4 or IPv6 and UDP.
fn repair(packet: &mut [u8], local: IpAddr) {
    match (packet.first().map(|b| b >> 4), local) {
        (Some(4), IpAddr::V4(local)) => {
            let Ok(mut ip) = ipv4::Packet::new_checked(&mut packet[..]) else { return };
            ip.set_dst_addr(local);
            ip.set_next_header(IpProtocol::Udp);
            ip.set_more_frags(false);
            ip.set_frag_offset(0);
            ip.fill_checksum();
            let src = ip.src_addr();
            let (start, end) = (ip.header_len(), usize::from(ip.total_len()));
            let Ok(mut datagram) = udp::Packet::new_checked(&mut packet[start..end]) else { return };
            datagram.set_dst_port(4789);
            datagram.fill_checksum(src.into(), local.into());
        }
        (Some(6), IpAddr::V6(local)) => {
            let Ok(mut ip) = ipv6::Packet::new_checked(&mut packet[..]) else { return };
            ip.set_dst_addr(local);
            ip.set_next_header(IpProtocol::Udp);
            let src = ip.src_addr();
            let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
            let Ok(mut datagram) = udp::Packet::new_checked(&mut packet[ipv6::HEADER_LEN..end]) else { return };
            datagram.set_dst_port(4789);
            datagram.fill_checksum(src.into(), local.into());
        }
        _ => {}
    }
}

fn check(vtep: &Vtep, result: &Decap, input: &[u8], calls: u64) {
    let stats = vtep.stats();
    assert_eq!(stats.rx_packets + stats.total_drops(), calls, "every call counted once: {stats:?}");
    if let Decap::Deliver { port, vni, frame } = result {
        assert!(frame.start <= frame.end && frame.end <= input.len());
        assert!(frame.len() >= 14);
        assert_eq!(vtep.port_of(*vni), Some(*port));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let mut vtep = vtep(selector);
    let v6 = selector & 0x01 != 0;
    let sender = match (selector >> 6, v6) {
        (0, false) => PEER4,
        (1, false) => STRANGER4,
        (2, false) => IpAddr::V6(Ipv4Addr::new(192, 0, 2, 2).to_ipv6_mapped()),
        (_, false) => PEER6,
        (0, true) => PEER6,
        (1, true) => STRANGER6,
        (_, true) => PEER4,
    };
    let from = SocketAddr::new(sender, 4789);
    let t0 = Instant::now();
    let mut calls = 0;

    let result = vtep.decap(from, rest, 0..rest.len(), t0);
    calls += 1;
    check(&vtep, &result, rest, calls);
    if !rest.is_empty() {
        let result = vtep.decap(from, rest, 1..rest.len(), t0 + Duration::from_secs(1));
        calls += 1;
        check(&vtep, &result, rest, calls);
    }
    // A range outside the buffer is the caller's bug, still counted.
    let result = vtep.decap(from, rest, 0..rest.len() + 1, t0);
    calls += 1;
    assert!(matches!(result, Decap::Drop(_)));
    check(&vtep, &result, rest, calls);

    let result = vtep.decap_packet(rest, 0..rest.len(), t0 + Duration::from_secs(2));
    calls += 1;
    check(&vtep, &result, rest, calls);
    let mut repaired = rest.to_vec();
    repair(&mut repaired, vtep.config().local);
    let result = vtep.decap_packet(&repaired, 0..repaired.len(), t0 + Duration::from_secs(3));
    calls += 1;
    check(&vtep, &result, &repaired, calls);

    let learned = vtep.fdb().filter(|e| e.kind == dataplane::vxlan::EntryKind::Learned).count();
    assert!(learned <= 4);
    assert!(vtep.neighbours().count() <= 5);
    vtep.expire(t0 + Duration::from_secs(400));
    assert_eq!(vtep.fdb().filter(|e| e.kind == dataplane::vxlan::EntryKind::Learned).count(), 0);
});
