//! What one cache miss costs on this machine: a chase of dependent loads,
//! one per 64-byte line, in a random single cycle over buffers from 256 KiB
//! to 128 MiB (a million NAT connections span about 90 MB), each advised
//! onto transparent huge pages as the NAT's table is. Each load's address
//! comes from the one before, so nothing overlaps: the time per load is the
//! latency of wherever the buffer lives (L1/L2, L3, memory), TLB included.
//!
//! `cargo run --release -p benches --example mem_latency` (pin it with
//! `taskset -c 1` for steadier figures). The NAT bench's new-flow targets
//! are read against it in the README.

use std::hint::black_box;
use std::time::Instant;

use dataplane::sys::hugepage::advise_huge_pages;

/// `u32`s per 64-byte line: a line's first word holds the next line.
const LINE: usize = 16;

/// A random single cycle through `lines` lines (Sattolo's algorithm, with
/// xorshift64 for the draws): word `i * LINE` holds the line after `i`.
fn cycle(lines: usize) -> Vec<u32> {
    let mut words = Vec::with_capacity(lines * LINE);
    advise_huge_pages(&words);
    words.resize(lines * LINE, 0);
    let mut order: Vec<u32> = (0..lines as u32).collect();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for i in (1..lines).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % i as u64) as usize);
    }
    for (i, &line) in order.iter().enumerate() {
        words[line as usize * LINE] = order[(i + 1) % lines];
    }
    words
}

/// Nanoseconds per dependent load over `words`, after one lap to warm up.
fn chase(words: &[u32], loads: usize) -> f64 {
    let mut at = 0u32;
    for _ in 0..words.len() / LINE {
        at = words[at as usize * LINE];
    }
    let start = Instant::now();
    for _ in 0..loads {
        at = words[at as usize * LINE];
    }
    let ns = start.elapsed().as_nanos() as f64 / loads as f64;
    black_box(at);
    ns
}

fn main() {
    println!("dependent loads, one per 64-byte line, in a random cycle (huge pages advised):");
    for kib in [256usize, 1024, 4096, 16 << 10, 64 << 10, 128 << 10] {
        let words = cycle(kib * 1024 / 64);
        // The best of three runs of four million loads.
        let ns = (0..3).map(|_| chase(&words, 4_000_000)).fold(f64::MAX, f64::min);
        println!("{kib:>8} KiB: {ns:6.1} ns per load");
    }
}
