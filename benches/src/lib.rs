//! wharf's benchmarks. The criterion benches live in `benches/`; the frames
//! they share are built here, with wharf's own emitters, and checked by the
//! tests below so a bench never measures a frame that does not parse.

#![forbid(unsafe_code)]

pub mod nat_fixture;
pub mod vxlan_fixture;

use std::net::{IpAddr, Ipv4Addr};

use dataplane::wire::ethernet::{self, VlanTags};
use dataplane::wire::{ipv4, tcp, udp, vxlan, EtherType, EthernetAddress, IpProtocol};

const MAC_A: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
const MAC_B: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);

/// The IPv4 header of every bench packet: no options, DF set, TTL 64,
/// identification 1.
fn ipv4_repr(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, payload_len: usize) -> ipv4::Repr {
    ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: protocol,
        payload_len,
        hop_limit: 64,
        dscp: 0,
        ecn: 0,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        options: ipv4::Ipv4Options::default(),
    }
}

/// Writes an IPv4 header (see [`ipv4_repr`]) for `payload_len` bytes of
/// `protocol` at the start of `buf`; returns the payload's offset.
fn emit_ipv4(buf: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, payload_len: usize) -> usize {
    let ip = ipv4_repr(src, dst, protocol, payload_len);
    ip.emit(&mut ipv4::Packet::new_unchecked(&mut *buf)).expect("ipv4 header fits");
    ip.header_len()
}

/// Writes Ethernet `src_mac` → `dst_mac` + IPv4 for `payload_len` bytes of
/// `protocol` at the start of `buf`; returns the payload's offset.
fn emit_eth_ipv4(
    buf: &mut [u8],
    (src_mac, dst_mac): (EthernetAddress, EthernetAddress),
    (src, dst): (Ipv4Addr, Ipv4Addr),
    protocol: IpProtocol,
    payload_len: usize,
) -> usize {
    let eth =
        ethernet::Repr { src_addr: src_mac, dst_addr: dst_mac, vlan_tags: VlanTags::None, ethertype: EtherType::Ipv4 };
    eth.emit(&mut ethernet::Frame::new_unchecked(&mut *buf)).expect("ethernet header fits");
    let at = eth.buffer_len();
    at + emit_ipv4(&mut buf[at..], src, dst, protocol, payload_len)
}

/// [`emit_eth_ipv4`] from `MAC_A` to `MAC_B`.
fn eth_ipv4(buf: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, payload_len: usize) -> usize {
    emit_eth_ipv4(buf, (MAC_A, MAC_B), (src, dst), protocol, payload_len)
}

/// A VXLAN frame as it crosses the underlay: Ethernet / IPv4 192.0.2.1 →
/// 192.0.2.2 / UDP → 4789 / VXLAN VNI 42 / Ethernet / IPv4 198.51.100.1 →
/// 198.51.100.2 / TCP 40000 → 80 (ACK with timestamps) / `payload_len` bytes.
pub fn vxlan_tcp_frame(payload_len: usize) -> Vec<u8> {
    let segment = tcp::Repr {
        src_port: 40000,
        dst_port: 80,
        seq_number: 1000,
        ack_number: 2000,
        flags: tcp::Flags::ACK | tcp::Flags::PSH,
        window_len: 502,
        urgent_at: 0,
        max_seg_size: None,
        window_scale: None,
        sack_permitted: false,
        sack_ranges: [None; 4],
        timestamp: Some((7, 9)),
        payload_len,
    };
    let (inner_src, inner_dst) = (Ipv4Addr::new(198, 51, 100, 1), Ipv4Addr::new(198, 51, 100, 2));
    let mut inner = vec![0u8; 14 + 20 + segment.buffer_len()];
    let at = eth_ipv4(&mut inner, inner_src, inner_dst, IpProtocol::Tcp, segment.buffer_len());
    let mut packet = tcp::Packet::new_unchecked(&mut inner[at..]);
    segment.emit(&mut packet).expect("tcp header fits");
    packet.payload_mut().fill(0x5a);
    packet.fill_checksum(IpAddr::V4(inner_src), IpAddr::V4(inner_dst));

    let datagram =
        udp::Repr { src_port: 51000, dst_port: vxlan::IANA_PORT, payload_len: vxlan::HEADER_LEN + inner.len() };
    let mut frame = vec![0u8; 14 + 20 + datagram.buffer_len()];
    let at = eth_ipv4(
        &mut frame,
        Ipv4Addr::new(192, 0, 2, 1),
        Ipv4Addr::new(192, 0, 2, 2),
        IpProtocol::Udp,
        datagram.buffer_len(),
    );
    datagram.emit(&mut udp::Packet::new_unchecked(&mut frame[at..])).expect("udp header fits");
    let at = at + udp::HEADER_LEN;
    let vni = vxlan::Vni::new(42).expect("42 is a VNI");
    vxlan::Repr { vni }.emit(&mut vxlan::Packet::new_unchecked(&mut frame[at..])).expect("vxlan header fits");
    frame[at + vxlan::HEADER_LEN..].copy_from_slice(&inner);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::wire::dissect::{dissect, Network, Transport};

    #[test]
    fn bench_frame_dissects() {
        let frame = vxlan_tcp_frame(64);
        let d = dissect(&frame, &[vxlan::IANA_PORT]).unwrap();
        let (header, inner) = d.vxlan.unwrap();
        assert_eq!(header.vni().get(), 42);
        let (Network::Ipv4(ip), Transport::Tcp(segment)) = (inner.network, inner.transport) else {
            panic!("inner frame is not IPv4/TCP")
        };
        assert!(ip.verify_checksum());
        assert!(segment.verify_checksum(ip.src_addr().into(), ip.dst_addr().into()));
        assert_eq!(segment.payload().len(), 64);
    }
}
