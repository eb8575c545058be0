//! The wire layer against the references, side by side in one run:
//!
//! - `parse_vxlan_tcp`: walk an Ethernet / IPv4 / UDP / VXLAN frame and its
//!   inner Ethernet / IPv4 / TCP headers, and read the fields a VTEP and a NAT
//!   need, with wharf's `dissect`, with etherparse and with pnet_packet. Each
//!   reads the same fields and checks the VXLAN I flag.
//! - `checksum`: the full Internet checksum (an IPv4 header, a 1460-byte TCP
//!   segment) against the RFC 1624 incremental update NAT uses.
//!
//! `python3 benches/report.py` turns the results into the README's table.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dataplane::wire::checksum;
use dataplane::wire::dissect::{dissect, Network, Transport};
use dataplane::wire::{vxlan, IpProtocol};

/// The fields every parser reads, folded so none is optimised away.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fold(
    outer_src: [u8; 4],
    outer_dst: [u8; 4],
    udp_dst: u16,
    vni: u32,
    inner_dst_mac: [u8; 6],
    inner_src: [u8; 4],
    inner_dst: [u8; 4],
    ports: (u16, u16),
    tcp_flags: u16,
) -> u64 {
    let mac = u64::from_be_bytes([
        0,
        0,
        inner_dst_mac[0],
        inner_dst_mac[1],
        inner_dst_mac[2],
        inner_dst_mac[3],
        inner_dst_mac[4],
        inner_dst_mac[5],
    ]);
    u64::from(u32::from_be_bytes(outer_src))
        ^ (u64::from(u32::from_be_bytes(outer_dst)) << 16)
        ^ (u64::from(udp_dst) << 48)
        ^ u64::from(vni)
        ^ mac
        ^ (u64::from(u32::from_be_bytes(inner_src)) << 8)
        ^ (u64::from(u32::from_be_bytes(inner_dst)) << 24)
        ^ (u64::from(ports.0) << 40)
        ^ u64::from(ports.1)
        ^ (u64::from(tcp_flags) << 56)
}

fn wharf(frame: &[u8]) -> Option<u64> {
    let d = dissect(frame, &[vxlan::IANA_PORT]).ok()?;
    let (Network::Ipv4(outer_ip), Transport::Udp(udp)) = (d.outer.network, d.outer.transport) else { return None };
    let (header, inner) = d.vxlan?;
    let (Network::Ipv4(ip), Transport::Tcp(tcp)) = (inner.network, inner.transport) else { return None };
    Some(fold(
        outer_ip.src_addr().octets(),
        outer_ip.dst_addr().octets(),
        udp.dst_port(),
        header.vni().get(),
        inner.ethernet.dst_addr().0,
        ip.src_addr().octets(),
        ip.dst_addr().octets(),
        (tcp.src_port(), tcp.dst_port()),
        tcp.flags().bits(),
    ))
}

fn etherparse(frame: &[u8]) -> Option<u64> {
    use etherparse::{LinkSlice, NetSlice, SlicedPacket, TransportSlice};
    let outer = SlicedPacket::from_ethernet(frame).ok()?;
    let (Some(NetSlice::Ipv4(outer_ip)), Some(TransportSlice::Udp(udp))) = (&outer.net, &outer.transport) else {
        return None;
    };
    if udp.destination_port() != vxlan::IANA_PORT {
        return None;
    }
    // etherparse has no VXLAN header: read it by hand, as a user would.
    let payload = udp.payload();
    if payload.len() < 8 || payload[0] & 0x08 == 0 {
        return None;
    }
    let vni = u32::from_be_bytes([0, payload[4], payload[5], payload[6]]);
    let inner = SlicedPacket::from_ethernet(&payload[8..]).ok()?;
    let (Some(LinkSlice::Ethernet2(eth)), Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(tcp))) =
        (&inner.link, &inner.net, &inner.transport)
    else {
        return None;
    };
    let flags = tcp.slice()[13];
    Some(fold(
        outer_ip.header().source(),
        outer_ip.header().destination(),
        udp.destination_port(),
        vni,
        eth.destination(),
        ip.header().source(),
        ip.header().destination(),
        (tcp.source_port(), tcp.destination_port()),
        u16::from(flags),
    ))
}

fn pnet(frame: &[u8]) -> Option<u64> {
    use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
    use pnet_packet::ip::IpNextHeaderProtocols;
    use pnet_packet::ipv4::Ipv4Packet;
    use pnet_packet::tcp::TcpPacket;
    use pnet_packet::udp::UdpPacket;
    use pnet_packet::vxlan::VxlanPacket;
    use pnet_packet::Packet;

    let eth = EthernetPacket::new(frame)?;
    if eth.get_ethertype() != EtherTypes::Ipv4 {
        return None;
    }
    let outer_ip = Ipv4Packet::new(eth.payload())?;
    if outer_ip.get_next_level_protocol() != IpNextHeaderProtocols::Udp {
        return None;
    }
    let udp = UdpPacket::new(outer_ip.payload())?;
    if udp.get_destination() != vxlan::IANA_PORT {
        return None;
    }
    let header = VxlanPacket::new(udp.payload())?;
    if header.get_flags() & 0x08 == 0 {
        return None;
    }
    let inner_eth = EthernetPacket::new(header.payload())?;
    if inner_eth.get_ethertype() != EtherTypes::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new(inner_eth.payload())?;
    if ip.get_next_level_protocol() != IpNextHeaderProtocols::Tcp {
        return None;
    }
    let tcp = TcpPacket::new(ip.payload())?;
    Some(fold(
        outer_ip.get_source().octets(),
        outer_ip.get_destination().octets(),
        udp.get_destination(),
        header.get_vni(),
        inner_eth.get_destination().octets(),
        ip.get_source().octets(),
        ip.get_destination().octets(),
        (tcp.get_source(), tcp.get_destination()),
        u16::from(tcp.get_flags()),
    ))
}

fn parse(c: &mut Criterion) {
    let frame = benches::vxlan_tcp_frame(64);
    let expected = wharf(&frame).expect("wharf parses the bench frame");
    assert_eq!(etherparse(&frame), Some(expected), "etherparse reads the same fields");
    assert_eq!(pnet(&frame), Some(expected), "pnet reads the same fields");

    let mut group = c.benchmark_group("parse_vxlan_tcp");
    group.throughput(Throughput::Elements(1));
    group.bench_function("wharf", |b| b.iter(|| wharf(black_box(&frame))));
    group.bench_function("etherparse", |b| b.iter(|| etherparse(black_box(&frame))));
    group.bench_function("pnet_packet", |b| b.iter(|| pnet(black_box(&frame))));
    group.finish();
}

fn checksums(c: &mut Criterion) {
    let frame = benches::vxlan_tcp_frame(1460 - 32);
    // The inner IPv4 header and TCP segment: 14 + 20 + 8 + 8 + 14 = 64.
    let header: [u8; 20] = frame[64..84].try_into().expect("inner IPv4 header");
    let segment = &frame[84..];
    let (src, dst) = (Ipv4Addr::new(198, 51, 100, 1), Ipv4Addr::new(198, 51, 100, 2));
    let stored = u16::from_be_bytes([segment[16], segment[17]]);

    let mut group = c.benchmark_group("checksum");
    group.bench_function("full_ipv4_header", |b| b.iter(|| !checksum::sum(black_box(&header))));
    group.bench_function("full_tcp_1460", |b| {
        b.iter(|| {
            let segment = black_box(segment);
            let len = segment.len() as u16;
            !checksum::add(checksum::pseudo_header_v4(src, dst, IpProtocol::Tcp, len), checksum::sum(segment))
        })
    });
    group.bench_function("incremental_32bit", |b| {
        b.iter(|| checksum::update32(black_box(stored), black_box(0xc633_6401), black_box(0xcb00_710a)))
    });
    group.finish();
}

criterion_group!(benches, parse, checksums);
criterion_main!(benches);
