//! The operations of `benches/nat.rs`, each in a function of its own, for
//! `valgrind --tool=callgrind`: instructions per call are then the
//! inclusive cost of `op_*` divided by its calls (`op_prefetch_*`: by
//! its calls times 32, the packets of a burst). Same table (1,000,000
//! assured TCP flows), same packets; `op_many_udp` over 4,096 assured UDP
//! flows added to it; `op_hot_v6` in an IPv6 table of 10,000.

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::nat_fixture::*;
use dataplane::nat::{Nat, Side, Verdict};

#[inline(never)]
fn op_fill(nat: &mut Nat, side: Side, buf: &mut [u8], template: &[u8], now: Instant) -> Verdict {
    buf.copy_from_slice(template);
    nat.translate(0, side, black_box(buf), now)
}

#[inline(never)]
fn op_hot(nat: &mut Nat, buf: &mut [u8], template: &[u8], now: Instant) -> Verdict {
    buf.copy_from_slice(template);
    nat.translate(0, Side::Inside, black_box(buf), now)
}

#[inline(never)]
fn op_reply(nat: &mut Nat, buf: &mut [u8], template: &[u8], now: Instant) -> Verdict {
    buf.copy_from_slice(template);
    nat.translate(0, Side::Outside, black_box(buf), now)
}

#[inline(never)]
fn op_spread(nat: &mut Nat, buf: &mut [u8], template: &[u8], now: Instant) -> Verdict {
    buf.copy_from_slice(template);
    nat.translate(0, Side::Inside, black_box(buf), now)
}

#[inline(never)]
fn op_new_tcp(nat: &mut Nat, buf: &mut [u8], template: &[u8], now: Instant) -> Verdict {
    buf.copy_from_slice(template);
    nat.translate(0, Side::Inside, black_box(buf), now)
}

#[inline(never)]
fn op_new_udp(nat: &mut Nat, buf: &mut [u8], template: &[u8], now: Instant) -> Verdict {
    buf.copy_from_slice(template);
    nat.translate(0, Side::Inside, black_box(buf), now)
}

/// A datagram from inside of one of 4,096 assured UDP flows taken in
/// turn: what an established datagram costs a busy NAT, whose flows are
/// not all the same one.
#[inline(never)]
fn op_many_udp(nat: &mut Nat, buf: &mut [u8], template: &[u8], now: Instant) -> Verdict {
    buf.copy_from_slice(template);
    nat.translate(0, Side::Inside, black_box(buf), now)
}

/// An established IPv6 flow's packet from inside, the same each time.
#[inline(never)]
fn op_hot_v6(nat: &mut Nat, buf: &mut [u8], template: &[u8], now: Instant) -> Verdict {
    buf.copy_from_slice(template);
    nat.translate(0, Side::Inside, black_box(buf), now)
}

/// A burst's first pass (`Nat::prefetch_burst`) over `templates`.
#[inline(always)]
fn prefetch_burst(nat: &Nat, templates: &[Vec<u8>]) {
    nat.prefetch_burst(0, Side::Inside, templates.iter().map(|t| black_box(&t[..])));
}

/// An established UDP flow's datagram from inside, the same each time.
#[inline(never)]
fn op_hot_udp(nat: &mut Nat, buf: &mut [u8], template: &[u8], now: Instant) -> Verdict {
    buf.copy_from_slice(template);
    nat.translate(0, Side::Inside, black_box(buf), now)
}

/// Its reply from outside.
#[inline(never)]
fn op_reply_udp(nat: &mut Nat, buf: &mut [u8], template: &[u8], now: Instant) -> Verdict {
    buf.copy_from_slice(template);
    nat.translate(0, Side::Outside, black_box(buf), now)
}

#[inline(never)]
fn op_prefetch_spread(nat: &Nat, templates: &[Vec<u8>]) {
    // Told apart from the other two, which the linker would merge.
    black_box(1);
    prefetch_burst(nat, templates);
}

#[inline(never)]
fn op_prefetch_new_tcp(nat: &Nat, templates: &[Vec<u8>]) {
    // Told apart from the other two, which the linker would merge.
    black_box(2);
    prefetch_burst(nat, templates);
}

#[inline(never)]
fn op_prefetch_new_udp(nat: &Nat, templates: &[Vec<u8>]) {
    // Told apart from the other two, which the linker would merge.
    black_box(3);
    prefetch_burst(nat, templates);
}

#[inline(never)]
fn op_expire_batch(nat: &mut Nat, now: Instant) -> usize {
    nat.expire(now)
}

fn main() {
    let mut clock = Instant::now();
    let mut nat = Nat::new(config(1 << 20)).expect("valid config");
    let mut buf = vec![0u8; 64];
    for i in 0..FLOWS {
        let (a, sport, b, dport) = flow(i);
        for (side, p) in [
            (Side::Inside, packet(a, sport, b, dport, Some(SYN))),
            (Side::Outside, packet(b, dport, OUTSIDE, sport, Some(SYN | ACK))),
            (Side::Inside, packet(a, sport, b, dport, Some(ACK))),
        ] {
            assert_eq!(op_fill(&mut nat, side, &mut buf, &p, clock), Verdict::Forward);
        }
    }
    let (a, sport, b, dport) = flow(FLOWS / 2);
    let hot = packet(a, sport, b, dport, Some(PSH | ACK));
    let hot_reply = packet(b, dport, OUTSIDE, sport, Some(PSH | ACK));
    for _ in 0..100_000 {
        black_box(op_hot(&mut nat, &mut buf, &hot, clock));
    }
    for _ in 0..100_000 {
        black_box(op_reply(&mut nat, &mut buf, &hot_reply, clock));
    }
    let templates: Vec<Vec<u8>> = (0..SPREAD as u64)
        .map(|k| {
            let (a, sport, b, dport) = flow(((k * 2_654_435_761) % u64::from(FLOWS)) as u32);
            packet(a, sport, b, dport, Some(PSH | ACK))
        })
        .collect();
    for t in &templates {
        assert_eq!(op_spread(&mut nat, &mut buf, t, clock), Verdict::Forward);
    }
    for burst in templates.chunks(BURST) {
        op_prefetch_spread(&nat, burst);
    }
    for udp in [false, true] {
        let fresh: Vec<Vec<u8>> = (0..BATCH as u32)
            .map(|j| {
                let (a, sport, b, dport) = new_flow(j);
                packet(a, sport, b, dport, if udp { None } else { Some(SYN) })
            })
            .collect();
        for burst in fresh.chunks(BURST) {
            if udp {
                op_prefetch_new_udp(&nat, burst);
            } else {
                op_prefetch_new_tcp(&nat, burst);
            }
        }
        for _round in 0..3 {
            for t in &fresh {
                let v = if udp {
                    op_new_udp(&mut nat, &mut buf, t, clock)
                } else {
                    op_new_tcp(&mut nat, &mut buf, t, clock)
                };
                assert_eq!(v, Verdict::Forward);
            }
            clock += Duration::from_secs(121);
            assert_eq!(op_expire_batch(&mut nat, clock), BATCH);
        }
    }
    // An assured UDP flow (a datagram each way), then its datagrams.
    let (a, sport, b, dport) = new_flow(BATCH as u32);
    let hot_udp = packet(a, sport, b, dport, None);
    let hot_udp_reply = packet(b, dport, OUTSIDE, sport, None);
    assert_eq!(op_hot_udp(&mut nat, &mut buf, &hot_udp, clock), Verdict::Forward);
    assert_eq!(op_reply_udp(&mut nat, &mut buf, &hot_udp_reply, clock), Verdict::Forward);
    for _ in 0..100_000 {
        black_box(op_hot_udp(&mut nat, &mut buf, &hot_udp, clock));
    }
    for _ in 0..100_000 {
        black_box(op_reply_udp(&mut nat, &mut buf, &hot_udp_reply, clock));
    }
    // 4,096 more assured UDP flows, their datagrams taken in turn.
    let many: Vec<(Vec<u8>, Vec<u8>)> = (0..4096u32)
        .map(|i| {
            let (a, sport, b, dport) = new_flow(BATCH as u32 + 1 + i);
            (packet(a, sport, b, dport, None), packet(b, dport, OUTSIDE, sport, None))
        })
        .collect();
    for (out, reply) in &many {
        assert_eq!(op_fill(&mut nat, Side::Inside, &mut buf, out, clock), Verdict::Forward);
        assert_eq!(op_fill(&mut nat, Side::Outside, &mut buf, reply, clock), Verdict::Forward);
    }
    for _ in 0..25 {
        for (out, _) in &many {
            black_box(op_many_udp(&mut nat, &mut buf, out, clock));
        }
    }
    assert_eq!(nat.stats().total_drops(), 0);
    assert_eq!(nat.len(), FLOWS as usize + 1 + many.len());
    drop(nat);

    // IPv6 (NAT66), in a table of its own of 10,000 connections: the
    // instructions of one established packet.
    let mut nat6 = Nat::new(config6(1 << 14)).expect("valid config");
    fill6(&mut nat6, 10_000, clock);
    let (a, sport, b, dport) = flow6(5_000);
    let hot6 = packet6(a, sport, b, dport, PSH | ACK);
    let mut buf6 = hot6.clone();
    for _ in 0..100_000 {
        assert_eq!(op_hot_v6(&mut nat6, &mut buf6, &hot6, clock), Verdict::Forward);
    }
}
