//! Property tests for the headers whose files do not carry their own
//! (UDP, IPv6, ICMPv6, the whole-frame walk, the checksum): emit→parse is the
//! identity for every `Repr` that emits, and arbitrary bytes never panic a
//! checked view, a getter or a parse.

use std::net::{Ipv4Addr, Ipv6Addr};

use dataplane::wire::dissect::dissect;
use dataplane::wire::{checksum, icmpv6, ipv6, udp, vxlan, EthernetAddress, IpProtocol};
use proptest::prelude::*;

fn ipv6_addr() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 16]>().prop_map(Ipv6Addr::from)
}

fn unicast_v6() -> impl Strategy<Value = Ipv6Addr> {
    ipv6_addr().prop_filter("not multicast", |a| !a.is_multicast())
}

fn mac() -> impl Strategy<Value = EthernetAddress> {
    any::<[u8; 6]>().prop_map(EthernetAddress)
}

fn icmpv6_repr() -> impl Strategy<Value = icmpv6::Repr> {
    prop_oneof![
        (any::<u16>(), any::<u16>(), 0usize..64).prop_map(|(ident, seq_no, data_len)| icmpv6::Repr::EchoRequest {
            ident,
            seq_no,
            data_len
        }),
        (any::<u16>(), any::<u16>(), 0usize..64).prop_map(|(ident, seq_no, data_len)| icmpv6::Repr::EchoReply {
            ident,
            seq_no,
            data_len
        }),
        (unicast_v6(), prop::option::of(mac()))
            .prop_map(|(target_addr, source_lladdr)| icmpv6::Repr::NeighborSolicit { target_addr, source_lladdr }),
        (any::<(bool, bool, bool)>(), unicast_v6(), prop::option::of(mac())).prop_map(
            |((router, solicited, override_), target_addr, target_lladdr)| icmpv6::Repr::NeighborAdvert {
                flags: icmpv6::NeighborFlags { router, solicited, override_ },
                target_addr,
                target_lladdr,
            }
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn udp_emit_parse_identity(src_port in any::<u16>(), dst_port in any::<u16>(), payload in prop::collection::vec(any::<u8>(), 0..64)) {
        let repr = udp::Repr { src_port, dst_port, payload_len: payload.len() };
        let mut buf = vec![0u8; repr.buffer_len()];
        let mut packet = udp::Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut packet).unwrap();
        packet.payload_mut().copy_from_slice(&payload);
        let (s, d) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
        packet.fill_checksum(s.into(), d.into());
        let packet = udp::Packet::new_checked(&buf[..]).unwrap();
        prop_assert!(packet.verify_checksum(s.into(), d.into()));
        prop_assert_eq!(udp::Repr::parse(&packet).unwrap(), repr);
        prop_assert_eq!(packet.payload(), &payload[..]);
    }

    #[test]
    fn ipv6_emit_parse_identity(
        src_addr in ipv6_addr(), dst_addr in ipv6_addr(), next_header in any::<u8>(),
        payload_len in 0usize..128, hop_limit in any::<u8>(), traffic_class in any::<u8>(), flow_label in 0u32..(1 << 20),
    ) {
        let repr = ipv6::Repr {
            src_addr, dst_addr, next_header: IpProtocol::from(next_header), payload_len, hop_limit, traffic_class, flow_label,
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut ipv6::Packet::new_unchecked(&mut buf[..])).unwrap();
        prop_assert_eq!(ipv6::Repr::parse(&ipv6::Packet::new_checked(&buf[..]).unwrap()).unwrap(), repr);
    }

    #[test]
    fn icmpv6_emit_parse_identity(repr in icmpv6_repr(), src in unicast_v6(), dst in ipv6_addr()) {
        let mut buf = vec![0u8; repr.buffer_len()];
        let mut packet = icmpv6::Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut packet).unwrap();
        packet.fill_checksum(src, dst);
        let packet = icmpv6::Packet::new_checked(&buf[..]).unwrap();
        prop_assert!(packet.verify_checksum(src, dst));
        prop_assert_eq!(icmpv6::Repr::parse(&packet).unwrap(), repr);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..160)) {
        if let Ok(packet) = udp::Packet::new_checked(&bytes[..]) {
            let _ = (udp::Repr::parse(&packet), packet.payload(), packet.verify_checksum(Ipv6Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()));
        }
        for packet in [ipv6::Packet::new_checked(&bytes[..]), ipv6::Packet::new_quoted(&bytes[..])].into_iter().flatten() {
            let _ = (ipv6::Repr::parse(&packet), packet.upper_layer(), packet.payload(), packet.flow_label());
            for header in ipv6::ExtHeaders::new(packet.next_header(), packet.payload()) {
                let _ = header;
            }
        }
        if let Ok(packet) = icmpv6::Packet::new_checked(&bytes[..]) {
            let _ = (icmpv6::Repr::parse(&packet), packet.target_addr(), packet.embedded_ipv6().map(|p| p.payload().len()));
            for option in packet.ndp_options() {
                let _ = option;
            }
        }
        let _ = dissect(&bytes, &[vxlan::IANA_PORT, vxlan::LINUX_PORT]);
    }

    #[test]
    fn incremental_checksum_matches_full(mut data in prop::collection::vec(any::<u8>(), 4..64), at in any::<prop::sample::Index>(), new in any::<u32>()) {
        let at = at.index(data.len() - 3) & !1;
        let before = !checksum::sum(&data);
        let old = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
        data[at..at + 4].copy_from_slice(&new.to_be_bytes());
        // All-zero data is the one case RFC 1624 eqn. 3 answers with the other zero.
        prop_assume!(data.iter().any(|&b| b != 0));
        prop_assert_eq!(checksum::update32(before, old, new), !checksum::sum(&data));
    }
}
