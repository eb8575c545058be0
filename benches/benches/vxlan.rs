//! The VTEP core in memory, side by side in one run, for inner frames of 64,
//! 512 and 1450 bytes (Ethernet header included):
//!
//! - `encap`: a frame from the local port to a MAC with an FDB entry — port
//!   lookup, Ethernet check, FDB lookup, MTU check, flow hash for the source
//!   port, VXLAN header written in the headroom. What the socket path does
//!   per packet.
//! - `encap_outer`: `encap`, then `write_outer` (outer IPv4 and UDP, zero
//!   UDP checksum): the raw-underlay path.
//! - `decap`: a UDP payload from a remote — VXLAN header, VNI lookup, inner
//!   Ethernet check, FDB learning (a refresh: the sender is known). What the
//!   socket path does per packet.
//! - `decap_packet`: the same from a whole outer IPv4 packet (header
//!   checksum, UDP length and port checked; zero UDP checksum).
//!
//! The target is at most 20 ns per packet for `encap` and `decap`. Nothing
//! allocates per packet: every table is allocated by `Vtep::new`, and each
//! iteration reuses one buffer.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use benches::vxlan_fixture::{inner_frame, vtep, LOCAL, MAC_HERE, MAC_THERE, REMOTE, SIZES};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dataplane::vxlan::{Decap, Encap, HEADROOM};
use dataplane::wire::vxlan;

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let mut group = c.benchmark_group("vxlan");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));

        // Encap: the frame sits after HEADROOM, as the runner reads it.
        let mut sender = vtep(LOCAL, REMOTE, Some(MAC_THERE));
        let frame = inner_frame(MAC_HERE, MAC_THERE, size);
        let mut buf = vec![0u8; HEADROOM + size];
        buf[HEADROOM..].copy_from_slice(&frame);
        let range = HEADROOM..HEADROOM + size;
        let Encap::Forward(forward) = sender.encap(0, &mut buf, range.clone(), now) else {
            panic!("the bench frame is forwarded")
        };
        assert_eq!(sender.destinations(&forward.to), &[REMOTE]);
        group.bench_with_input(BenchmarkId::new("encap", size), &size, |b, _| {
            b.iter(|| match sender.encap(black_box(0), black_box(&mut buf), black_box(range.clone()), now) {
                Encap::Forward(forward) => forward.src_port,
                _ => 0,
            })
        });
        group.bench_with_input(BenchmarkId::new("encap_outer", size), &size, |b, _| {
            b.iter(|| match sender.encap(black_box(0), black_box(&mut buf), black_box(range.clone()), now) {
                Encap::Forward(forward) => {
                    let remote = sender.destinations(&forward.to)[0];
                    sender.write_outer(&mut buf, forward.datagram, remote, forward.src_port).map_or(0, |r| r.start)
                }
                _ => 0,
            })
        });

        // Decap: the datagram as the socket hands it over, and the whole
        // packet `write_outer` made, as a raw underlay would.
        let mut receiver = vtep(REMOTE, LOCAL, None);
        let from = SocketAddr::new(LOCAL, 50000);
        let datagram_bytes = buf[forward.datagram.clone()].to_vec();
        let datagram = 0..datagram_bytes.len();
        let packet = sender.write_outer(&mut buf, forward.datagram.clone(), REMOTE, forward.src_port).expect("outer");
        let packet_bytes = buf[packet].to_vec();
        for decap in [
            receiver.decap(from, &datagram_bytes, datagram.clone(), now),
            receiver.decap_packet(&packet_bytes, 0..packet_bytes.len(), now),
        ] {
            let Decap::Deliver { frame: delivered, .. } = decap else { panic!("the bench datagram is delivered") };
            assert_eq!(delivered.len(), size);
        }
        assert_eq!(&datagram_bytes[vxlan::HEADER_LEN..], &frame[..]);
        // The first datagram taught the receiver the sender's MAC: every
        // measured decap refreshes that learned entry.
        assert_eq!(receiver.stats().learned, 1);
        group.bench_with_input(BenchmarkId::new("decap", size), &size, |b, _| {
            b.iter(|| {
                match receiver.decap(black_box(from), black_box(&datagram_bytes), black_box(datagram.clone()), now) {
                    Decap::Deliver { frame, .. } => frame.end,
                    Decap::Drop(_) => 0,
                }
            })
        });
        group.bench_with_input(BenchmarkId::new("decap_packet", size), &size, |b, _| {
            b.iter(|| match receiver.decap_packet(black_box(&packet_bytes), black_box(0..packet_bytes.len()), now) {
                Decap::Deliver { frame, .. } => frame.end,
                Decap::Drop(_) => 0,
            })
        });
        assert_eq!(receiver.stats().total_drops(), 0);
        assert_eq!((receiver.stats().learned, receiver.stats().moved), (1, 0));
        assert_eq!(sender.stats().total_drops(), 0);
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
