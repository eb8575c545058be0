//! How much of a new flow's cost is memory: new TCP and UDP connections
//! (the NAT bench's packets, batches of 40,000 expired in between) into an
//! empty table of 65,536 slots, whose index and entries stay in the caches,
//! and into the bench's table of 1,000,000 established flows. Prints the
//! best and mean batch per flow, and the resident set (with transparent huge
//! pages, if any) after each. Each one packet at a time (no prefetch), then
//! in bursts of one (a lone packet as the runner takes it: `Nat::prefetch_burst`
//! for it first) and of 32.

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::nat_fixture::*;
use dataplane::nat::{Nat, Side};

/// `burst`: `None` for one packet at a time with no prefetch, else the
/// burst size (`Nat::prefetch_burst` first, as the runner does).
fn new_flows(nat: &mut Nat, fresh: &[Vec<u8>], burst: Option<usize>, clock: &mut Instant) -> (f64, f64) {
    let mut buf = vec![0u8; 64];
    let mut bufs = [[0u8; 64]; BURST];
    let mut best = f64::MAX;
    let mut sum = 0.0;
    for _ in 0..15 {
        let start = Instant::now();
        if let Some(size) = burst {
            for templates in fresh.chunks(size) {
                translate_burst(nat, Side::Inside, &mut bufs, templates, *clock);
            }
        } else {
            for t in fresh {
                buf.copy_from_slice(t);
                black_box(nat.translate(0, Side::Inside, black_box(&mut buf), *clock));
            }
        }
        let ns = start.elapsed().as_nanos() as f64 / fresh.len() as f64;
        best = best.min(ns);
        sum += ns;
        *clock += Duration::from_secs(121);
        nat.expire(*clock);
    }
    (best, sum / 15.0)
}

fn main() {
    let clock0 = Instant::now();
    for (name, max, count) in
        [("small table (65,536 slots, empty)", 1u32 << 16, 0u32), ("1,000,000 flows", 1 << 20, FLOWS)]
    {
        let mut clock = clock0;
        let mut nat = Nat::new(config(max as usize)).expect("valid config");
        fill(&mut nat, count, clock);
        let modes = [None, Some(1), Some(BURST)];
        for (udp, burst) in modes.iter().flat_map(|&b| [(false, b), (true, b)]) {
            let fresh: Vec<Vec<u8>> = (0..BATCH as u32)
                .map(|j| {
                    let (a, sport, b, dport) = new_flow(j);
                    packet(a, sport, b, dport, if udp { None } else { Some(SYN) })
                })
                .collect();
            let (best, mean) = new_flows(&mut nat, &fresh, burst, &mut clock);
            println!(
                "{name}: new {} flow{} best {best:.0} ns, mean {mean:.0} ns (15 batches of 40,000)",
                if udp { "UDP" } else { "TCP" },
                match burst {
                    None => String::new(),
                    Some(1) => ", bursts of 1".to_owned(),
                    Some(n) => format!(", bursts of {n}"),
                }
            );
        }
        let smaps = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
        println!(
            "{}",
            smaps.lines().filter(|l| l.starts_with("AnonHuge") || l.starts_with("Rss")).collect::<Vec<_>>().join(" ")
        );
    }
}
