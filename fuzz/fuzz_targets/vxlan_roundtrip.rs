//! Encap → write_outer → decap_packet between two VTEPs. The first byte
//! picks the underlay family, the sending port (VNI 42 or 7), whether the
//! destination MAC is made broadcast (the flood path), proxy, frag_needed,
//! inner VLANs and the UDP checksum options; the rest is the inner frame.
//!
//! Checked: whenever `encap` forwards, `write_outer` succeeds and the peer's
//! `decap_packet` delivers the identical inner frame bytes on the port bound
//! to the same VNI; a reply lies in the buffer and starts with an Ethernet
//! header; a frame with a whole, untagged Ethernet header that fits the MTU
//! is never dropped; and every call is counted once on each side.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use dataplane::vxlan::{Decap, DropReason, Encap, Vni, VniConfig, Vtep, VtepConfig, HEADROOM};
use dataplane::wire::ethernet;
use libfuzzer_sys::fuzz_target;

const A4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const B4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
const A6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
const B6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));

fn vni(n: u32) -> Vni {
    Vni::new(n).expect("a 24-bit VNI")
}

fn config(local: IpAddr, remote: IpAddr, ports: (u16, u16), selector: u8) -> VtepConfig {
    let mut config = VtepConfig::new(local)
        .vni(VniConfig::new(vni(42), ports.0).remote(remote))
        .vni(VniConfig::new(vni(7), ports.1).remote(remote));
    config.proxy = selector & 0x08 != 0;
    config.frag_needed = selector & 0x10 != 0;
    config.allow_inner_vlan = selector & 0x20 != 0;
    config.udp_checksum_v4 = selector & 0x40 != 0;
    config.udp6_zero_checksum_tx = selector & 0x80 != 0;
    config.udp6_zero_checksum_rx = selector & 0x80 != 0;
    config
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, inner)) = data.split_first() else { return };
    let (a, b) = if selector & 0x01 != 0 { (A6, B6) } else { (A4, B4) };
    let mut sender = Vtep::new(config(a, b, (0, 1), selector)).expect("valid sender");
    let mut receiver = Vtep::new(config(b, a, (5, 6), selector)).expect("valid receiver");
    let port = u16::from(selector & 0x02 != 0);
    let now = Instant::now();

    let mut frame = inner.to_vec();
    if selector & 0x04 != 0 && frame.len() >= 6 {
        frame[..6].fill(0xff);
    }
    let mut buf = vec![0u8; HEADROOM + frame.len()];
    buf[HEADROOM..].copy_from_slice(&frame);
    let range = HEADROOM..HEADROOM + frame.len();

    let result = sender.encap(port, &mut buf, range, now);
    let stats = sender.stats();
    assert_eq!(stats.tx_frames + stats.proxied + stats.total_drops(), 1, "{stats:?}");
    match result {
        Encap::Forward(forward) => {
            let remotes = sender.destinations(&forward.to);
            assert_eq!(remotes, &[b]);
            assert_eq!(Some(forward.vni), sender.vni_of(port));
            assert_eq!(&buf[forward.datagram.start + 8..forward.datagram.end], &frame[..]);
            let packet = sender
                .write_outer(&mut buf, forward.datagram.clone(), b, forward.src_port)
                .expect("write_outer fits the headroom");
            match receiver.decap_packet(&buf, packet, now) {
                Decap::Deliver { port: delivered_port, vni, frame: delivered } => {
                    assert_eq!(vni, forward.vni);
                    assert_eq!(Some(delivered_port), receiver.port_of(vni));
                    assert_eq!(&buf[delivered], &frame[..], "the inner frame arrives unchanged");
                }
                Decap::Drop(reason) => panic!("the peer dropped a forwarded frame: {reason}"),
            }
        }
        Encap::Reply(reply) => {
            assert!(reply.frame.start <= reply.frame.end && reply.frame.end <= buf.len());
            ethernet::Frame::new_checked(&buf[reply.frame]).expect("a reply is an Ethernet frame");
        }
        Encap::Drop(reason) => {
            let eth = ethernet::Frame::new_checked(&frame[..]);
            let whole_untagged = eth.is_ok_and(|eth| eth.header_len() == 14);
            if whole_untagged && frame.len() <= sender.max_inner_frame() {
                panic!("a good frame was dropped: {reason}");
            }
            assert!(matches!(reason, DropReason::BadInner | DropReason::InnerVlan | DropReason::TooBig));
        }
    }
    let stats = receiver.stats();
    assert!(stats.rx_packets + stats.total_drops() <= 1);
});
