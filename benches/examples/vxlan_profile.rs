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
use std::net::SocketAddr;
use std::ops::Range;
use std::time::Instant;

use benches::vxlan_fixture::{inner_frame, vtep, LOCAL, MAC_HERE, MAC_THERE, REMOTE, SIZES};
use dataplane::vxlan::{Decap, Encap, Vtep, HEADROOM};

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
        let mut sender = vtep(LOCAL, REMOTE, Some(MAC_THERE));
        let mut receiver = vtep(REMOTE, LOCAL, Some(MAC_HERE));
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
        let mut learner = vtep(REMOTE, LOCAL, None);
        for _ in 0..calls {
            black_box(op_decap_learned(&mut learner, from, &datagram, now));
        }
        assert_eq!(learner.stats().learned, 1);
        assert_eq!(sender.stats().tx_frames, calls as u64);
        assert_eq!(receiver.stats().rx_packets, calls as u64);
        assert_eq!(sender.stats().total_drops() + receiver.stats().total_drops(), 0);
    }
}
