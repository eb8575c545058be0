//! The NAT core in memory with 1,000,000 tracked connections (established,
//! assured TCP, masqueraded), side by side in one run, 64-byte packets:
//!
//! - `copy_only`: copying a packet template into the buffer, which every
//!   NAT bench below does first (translation rewrites in place): the floor.
//! - `established_hot`: a packet of one established flow from inside, the
//!   same flow each time (the work per packet, caches warm).
//! - `established_reply_hot`: its reply from outside.
//! - `established_udp_hot`: a datagram of one assured UDP flow from inside,
//!   the same flow each time (a datagram from inside may be a first one,
//!   so it is the packet that pays for any guess made for new flows).
//! - `established_v6_hot`: `established_hot` for IPv6 (NAT66 masquerade),
//!   in a table of its own holding 1,000,000 IPv6 connections.
//! - `established_spread`: 262,144 flows in turn, spread over the table
//!   (the cost of memory: the index and the entries miss the caches).
//! - `established_spread_burst`: the same packets in bursts of 32 as the
//!   runner handles what one `recvmmsg` read: `Nat::prefetch` for every
//!   packet of the burst, then `Nat::translate` for each (time per packet).
//! - `std_hashmap_hot` / `std_hashmap_spread`: the same lookups as a plain
//!   `std::collections::HashMap` of 1,000,000 5-tuples would do them, for
//!   scale: a tracker cannot do much less than one lookup.
//! - `new_flow_tcp` / `new_flow_udp`: a SYN / a first datagram from an
//!   inside endpoint not seen before (lookup, rule, port kept after the
//!   uniqueness check or the UDP mapping lookup, insert of both keys,
//!   rewrite), in batches of 40,000 that are expired between batches (not
//!   timed).
//! - `new_flow_tcp_burst_of_1` / `new_flow_udp_burst_of_1`: the same, each
//!   packet a burst of its own: `Nat::prefetch_burst` for it, then
//!   `Nat::translate`, as the runner takes a lone packet (a `recvmmsg` that
//!   returned one).
//! - `new_flow_tcp_burst` / `new_flow_udp_burst`: the same, in bursts of 32
//!   as above (time per packet).
//!
//! The benches without `_burst` translate one packet at a time, with no
//! prefetch: what a caller that does not use `Nat::prefetch_burst` gets.
//!
//! Targets: at most 30 ns per established packet, 300 ns per new flow, 128
//! bytes per entry. The memory per entry is printed before the benches: the
//! bytes the NAT allocated divided by the entries, and the growth of the
//! resident set while filling the table divided by the entries (IPv4); and
//! what an IPv6 table of the same size allocates per entry.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::nat_fixture::{
    config, config6, fill, fill6, flow, flow6, new_flow, packet, packet6, translate_burst, ACK, BATCH, BURST, FLOWS,
    OUTSIDE, OUTSIDE6, PSH, SPREAD, SYN,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dataplane::nat::{Nat, NatConfig, Side, Verdict};

fn translate(nat: &mut Nat, side: Side, template: &[u8], now: Instant) -> Verdict {
    let mut buf = template.to_vec();
    nat.translate(0, side, &mut buf, now)
}

/// The resident set size in bytes, from /proc.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .unwrap_or(0)
        * 1024
}

/// A NAT holding the million established connections.
fn filled(now: Instant) -> Nat {
    let before = rss();
    let mut nat = Nat::new(config(1 << 20)).expect("valid bench config");
    fill(&mut nat, FLOWS, now);
    assert_eq!(nat.len(), FLOWS as usize);
    assert!(nat.connections().take(1000).all(|c| c.assured));
    let grown = rss().saturating_sub(before);
    println!(
        "nat: {} connections; {} bytes allocated ({:.1} bytes per entry); resident set grew {} bytes ({:.1} bytes \
         per entry)",
        nat.len(),
        nat.memory_bytes(),
        nat.memory_bytes() as f64 / nat.len() as f64,
        grown,
        grown as f64 / nat.len() as f64
    );
    // IPv6 entries are larger: the allocation of a table of the same size.
    let v6 = Nat::new(NatConfig { max_entries: 1024, max_entries_v6: 1 << 20, ..NatConfig::new() }).expect("config");
    println!(
        "nat: an IPv6 table for {} connections allocates {} bytes ({:.1} bytes per entry)",
        1 << 20,
        v6.memory_bytes(),
        v6.memory_bytes() as f64 / f64::from(1 << 20)
    );
    nat
}

type Key = ([u8; 4], [u8; 4], u16, u16, u8, u16);

fn key(i: u32) -> Key {
    let (a, sport, b, dport) = flow(i);
    (a.octets(), b.octets(), sport, dport, 6, 0)
}

fn bench(c: &mut Criterion) {
    let mut clock = Instant::now();
    let mut nat = filled(clock);
    let mut group = c.benchmark_group("nat");
    group.throughput(Throughput::Elements(1));

    let (a, sport, b, dport) = flow(FLOWS / 2);
    let hot = packet(a, sport, b, dport, Some(PSH | ACK));
    let hot_reply = packet(b, dport, OUTSIDE, sport, Some(PSH | ACK));
    assert_eq!(translate(&mut nat, Side::Inside, &hot, clock), Verdict::Forward);
    assert_eq!(translate(&mut nat, Side::Outside, &hot_reply, clock), Verdict::Forward);
    // An assured UDP flow: a datagram out, its reply, and one more out.
    let (a, sport, b, dport) = new_flow(BATCH as u32);
    let hot_udp = packet(a, sport, b, dport, None);
    let hot_udp_reply = packet(b, dport, OUTSIDE, sport, None);
    for (side, template) in [(Side::Inside, &hot_udp), (Side::Outside, &hot_udp_reply), (Side::Inside, &hot_udp)] {
        assert_eq!(translate(&mut nat, side, template, clock), Verdict::Forward);
    }
    let mut buf = vec![0u8; 64];

    group.bench_function("copy_only", |bencher| {
        bencher.iter(|| {
            buf.copy_from_slice(black_box(&hot));
            buf[19]
        })
    });
    group.bench_function("established_hot", |bencher| {
        bencher.iter(|| {
            buf.copy_from_slice(&hot);
            nat.translate(0, Side::Inside, black_box(&mut buf), clock)
        })
    });
    group.bench_function("established_reply_hot", |bencher| {
        bencher.iter(|| {
            buf.copy_from_slice(&hot_reply);
            nat.translate(0, Side::Outside, black_box(&mut buf), clock)
        })
    });

    group.bench_function("established_udp_hot", |bencher| {
        bencher.iter(|| {
            buf.copy_from_slice(&hot_udp);
            nat.translate(0, Side::Inside, black_box(&mut buf), clock)
        })
    });
    // IPv6 in a table of its own, dropped before the rest.
    {
        let mut nat6 = Nat::new(config6(1 << 20)).expect("valid bench config");
        fill6(&mut nat6, FLOWS, clock);
        assert_eq!(nat6.len(), FLOWS as usize);
        let (a, sport, b, dport) = flow6(FLOWS / 2);
        let hot6 = packet6(a, sport, b, dport, PSH | ACK);
        let mut buf6 = hot6.clone();
        assert_eq!(nat6.translate(0, Side::Inside, &mut buf6, clock), Verdict::Forward);
        assert_eq!(buf6[8..24], OUTSIDE6.octets(), "source rewritten");
        group.bench_function("established_v6_hot", |bencher| {
            bencher.iter(|| {
                buf6.copy_from_slice(&hot6);
                nat6.translate(0, Side::Inside, black_box(&mut buf6), clock)
            })
        });
    }
    // Gone with the clock, so the table holds the million again.
    clock += Duration::from_secs(121);
    assert_eq!(nat.expire(clock), 1);

    let spread: Vec<u32> = (0..SPREAD as u64).map(|k| ((k * 2_654_435_761) % u64::from(FLOWS)) as u32).collect();
    let templates: Vec<Vec<u8>> = spread
        .iter()
        .map(|&i| {
            let (a, sport, b, dport) = flow(i);
            packet(a, sport, b, dport, Some(PSH | ACK))
        })
        .collect();
    assert!(templates.iter().all(|t| translate(&mut nat, Side::Inside, t, clock) == Verdict::Forward));
    let mut next = 0;
    group.bench_function("established_spread", |bencher| {
        bencher.iter(|| {
            next = (next + 1) & (SPREAD - 1);
            buf.copy_from_slice(&templates[next]);
            nat.translate(0, Side::Inside, black_box(&mut buf), clock)
        })
    });
    let mut bufs = [[0u8; 64]; BURST];
    group.bench_function("established_spread_burst", |bencher| {
        bencher.iter_custom(|iters| {
            let mut done = 0;
            let start = Instant::now();
            while done < iters {
                let n = (iters - done).min(BURST as u64) as usize;
                let from = next & (SPREAD - 1);
                let to = (from + n).min(SPREAD);
                next = to & (SPREAD - 1);
                done += translate_burst(&mut nat, Side::Inside, &mut bufs, &templates[from..to], clock) as u64;
            }
            start.elapsed()
        })
    });
    drop(templates);

    let map: HashMap<Key, u32> = (0..FLOWS).map(|i| (key(i), i)).collect();
    let hot_key = key(FLOWS / 2);
    group.bench_function("std_hashmap_hot", |bencher| bencher.iter(|| map.get(black_box(&hot_key)).copied()));
    let keys: Vec<Key> = spread.iter().map(|&i| key(i)).collect();
    group.bench_function("std_hashmap_spread", |bencher| {
        bencher.iter(|| {
            next = (next + 1) & (SPREAD - 1);
            map.get(black_box(&keys[next])).copied()
        })
    });
    drop((map, keys));

    for (name, udp, burst) in [
        ("new_flow_tcp", false, None),
        ("new_flow_udp", true, None),
        ("new_flow_tcp_burst_of_1", false, Some(1)),
        ("new_flow_udp_burst_of_1", true, Some(1)),
        ("new_flow_tcp_burst", false, Some(BURST)),
        ("new_flow_udp_burst", true, Some(BURST)),
    ] {
        let fresh: Vec<Vec<u8>> = (0..BATCH as u32)
            .map(|j| {
                let (a, sport, b, dport) = new_flow(j);
                packet(a, sport, b, dport, if udp { None } else { Some(SYN) })
            })
            .collect();
        // Every one is a new connection that keeps its port, and goes away
        // with the clock.
        let created = nat.stats().snat_created;
        for template in &fresh {
            let mut out = template.clone();
            assert_eq!(nat.translate(0, Side::Inside, &mut out, clock), Verdict::Forward);
            assert_eq!(out[20..22], template[20..22], "source port kept");
        }
        assert_eq!(nat.stats().snat_created - created, BATCH as u64);
        clock += Duration::from_secs(121);
        assert_eq!(nat.expire(clock), BATCH);
        group.bench_function(name, |bencher| {
            bencher.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let n = (iters - done).min(BATCH as u64) as usize;
                    let start = Instant::now();
                    if let Some(size) = burst {
                        for templates in fresh[..n].chunks(size) {
                            translate_burst(&mut nat, Side::Inside, &mut bufs, templates, clock);
                        }
                    } else {
                        for template in &fresh[..n] {
                            buf.copy_from_slice(template);
                            black_box(nat.translate(0, Side::Inside, black_box(&mut buf), clock));
                        }
                    }
                    total += start.elapsed();
                    done += n as u64;
                    clock += Duration::from_secs(121);
                    nat.expire(clock);
                }
                total
            })
        });
    }
    group.finish();
    assert_eq!(nat.stats().total_drops(), 0, "{}", nat.stats());
    assert_eq!(nat.len(), FLOWS as usize);
}

criterion_group!(benches, bench);
criterion_main!(benches);
