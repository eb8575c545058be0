//! The `encap` and `decap` of `benches/vxlan.rs`, each in a function of its
//! own, for `valgrind --tool=callgrind`: instructions per call are then the
//! inclusive cost of `op_*` divided by its calls. Same configuration (one
//! VNI, a static entry for the peer, learning on), same frames (64, 512 and
//! 1450 bytes), same buffers reused per call. `op_decap_learned` is decap
//! by a VTEP with no static entry for the sender: the first call learns it,
//! the rest refresh a learned entry.
//!
//! `cargo run --release -p benches --example vxlan_profile [calls]`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::time::Instant;

use dataplane::vxlan::{Decap, Encap, Vni, VniConfig, Vtep, VtepConfig, HEADROOM};
use dataplane::wire::ethernet::{self, VlanTags};
use dataplane::wire::{ipv4, udp, EtherType, EthernetAddress, IpProtocol};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
const MAC_HERE: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
const MAC_THERE: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
const SIZES: [usize; 3] = [64, 512, 1450];

/// An inner Ethernet / IPv4 / UDP frame of `len` bytes, as the bench makes it.
fn inner_frame(src: EthernetAddress, dst: EthernetAddress, len: usize) -> Vec<u8> {
    let mut frame = vec![0x5a; len];
    let eth = ethernet::Repr { src_addr: src, dst_addr: dst, vlan_tags: VlanTags::None, ethertype: EtherType::Ipv4 };
    eth.emit(&mut ethernet::Frame::new_unchecked(&mut frame[..])).expect("ethernet header fits");
    let udp_len = len - 14 - 20;
    let ip = ipv4::Repr {
        src_addr: Ipv4Addr::new(198, 51, 100, 1),
        dst_addr: Ipv4Addr::new(198, 51, 100, 2),
        next_header: IpProtocol::Udp,
        payload_len: udp_len,
        hop_limit: 64,
        dscp: 0,
        ecn: 0,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        options: ipv4::Ipv4Options::EMPTY,
    };
    ip.emit(&mut ipv4::Packet::new_unchecked(&mut frame[14..])).expect("ipv4 header fits");
    udp::Repr { src_port: 40000, dst_port: 5201, payload_len: udp_len - 8 }
        .emit(&mut udp::Packet::new_unchecked(&mut frame[34..]))
        .expect("udp header fits");
    frame
}

fn vtep(local: IpAddr, remote: IpAddr, peer_mac: EthernetAddress) -> Vtep {
    let vni = Vni::new(42).expect("42 is a VNI");
    let config = VtepConfig::new(local).vni(VniConfig::new(vni, 0).remote(remote).static_entry(peer_mac, remote));
    Vtep::new(config).expect("valid profile config")
}

#[inline(never)]
fn op_encap(vtep: &mut Vtep, buf: &mut [u8], frame: Range<usize>, now: Instant) -> u16 {
    match vtep.encap(black_box(0), black_box(buf), black_box(frame), now) {
        Encap::Forward(forward) => forward.src_port,
        _ => 0,
    }
}

#[inline(never)]
fn op_decap(vtep: &mut Vtep, from: SocketAddr, datagram: &[u8], now: Instant) -> usize {
    match vtep.decap(black_box(from), black_box(datagram), black_box(0..datagram.len()), now) {
        Decap::Deliver { frame, .. } => frame.end,
        Decap::Drop(_) => 0,
    }
}

#[inline(never)]
fn op_decap_learned(vtep: &mut Vtep, from: SocketAddr, datagram: &[u8], now: Instant) -> usize {
    match vtep.decap(black_box(from), black_box(datagram), black_box(0..datagram.len()), now) {
        Decap::Deliver { frame, .. } => frame.start,
        Decap::Drop(_) => 0,
    }
}

fn main() {
    let calls: usize = std::env::args().nth(1).map_or(100_000, |n| n.parse().expect("calls: a number"));
    let now = Instant::now();
    for size in SIZES {
        let mut sender = vtep(LOCAL, REMOTE, MAC_THERE);
        let mut receiver = vtep(REMOTE, LOCAL, MAC_HERE);
        let mut buf = vec![0u8; HEADROOM + size];
        buf[HEADROOM..].copy_from_slice(&inner_frame(MAC_HERE, MAC_THERE, size));
        let frame = HEADROOM..HEADROOM + size;
        for _ in 0..calls {
            black_box(op_encap(&mut sender, &mut buf, frame.clone(), now));
        }
        let datagram = buf[HEADROOM - 8..].to_vec();
        let from = SocketAddr::new(LOCAL, 50000);
        for _ in 0..calls {
            black_box(op_decap(&mut receiver, from, &datagram, now));
        }
        let mut learner = vtep(REMOTE, LOCAL, MAC_THERE);
        for _ in 0..calls {
            black_box(op_decap_learned(&mut learner, from, &datagram, now));
        }
        assert_eq!(learner.stats().learned, 1);
        assert_eq!(sender.stats().tx_frames, calls as u64);
        assert_eq!(receiver.stats().rx_packets, calls as u64);
        assert_eq!(sender.stats().total_drops() + receiver.stats().total_drops(), 0);
    }
}
