//! How much of a new flow's cost is memory: new TCP and UDP connections
//! (the NAT bench's packets, batches of 40,000 expired in between) into an
//! empty table of 65,536 slots, whose index and entries stay in the caches,
//! and into the bench's table of 1,000,000 established flows. Prints the
//! best and mean batch per flow, and the resident set (with transparent huge
//! pages, if any) after each.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use dataplane::nat::{Nat, NatConfig, Side, Verdict};
use dataplane::wire::{ipv4, tcp, udp, IpProtocol};

const FLOWS: u32 = 1_000_000;
const SPREAD: usize = 1 << 18;
const BATCH: usize = 40_000;
const OUTSIDE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

fn flow(i: u32) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let inside = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 1)) + i);
    let peer = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i % 131_072);
    (inside, 1024 + (i / 131_072) as u16, peer, 443)
}

fn new_flow(j: u32) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let inside = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + j);
    let peer = Ipv4Addr::new(192, 0, 2, (j % 256) as u8);
    (inside, 10_000 + j as u16, peer, 443)
}

fn packet(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, flags: Option<u8>) -> Vec<u8> {
    let mut p = vec![0x5a; 64];
    let next_header = if flags.is_some() { IpProtocol::Tcp } else { IpProtocol::Udp };
    let ip = ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        next_header,
        payload_len: 44,
        hop_limit: 64,
        dscp: 0,
        ecn: 0,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        options: ipv4::Ipv4Options::default(),
    };
    ip.emit(&mut ipv4::Packet::new_unchecked(&mut p[..])).expect("ipv4 header fits");
    let (s, d) = (IpAddr::V4(src), IpAddr::V4(dst));
    match flags {
        Some(flags) => {
            let mut segment = tcp::Packet::new_unchecked(&mut p[20..]);
            segment.set_src_port(sport);
            segment.set_dst_port(dport);
            segment.set_seq_number(1000);
            segment.set_ack_number(2000);
            segment.set_header_len(20);
            segment.set_flags(tcp::Flags::from_bits_truncate(u16::from(flags)));
            segment.set_window_len(502);
            segment.set_urgent_at(0);
            segment.fill_checksum(s, d);
        }
        None => {
            udp::Repr { src_port: sport, dst_port: dport, payload_len: 36 }
                .emit(&mut udp::Packet::new_unchecked(&mut p[20..]))
                .expect("udp header fits");
            udp::Packet::new_unchecked(&mut p[20..]).fill_checksum(s, d);
        }
    }
    p
}

fn new_flows(nat: &mut Nat, fresh: &[Vec<u8>], clock: &mut Instant) -> (f64, f64) {
    let mut buf = vec![0u8; 64];
    let mut best = f64::MAX;
    let mut sum = 0.0;
    for _ in 0..15 {
        let start = Instant::now();
        for t in fresh {
            buf.copy_from_slice(t);
            black_box(nat.translate(0, Side::Inside, black_box(&mut buf), *clock));
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
    for (name, max, fill) in
        [("small table (65,536 slots, empty)", 1u32 << 16, 0u32), ("1,000,000 flows", 1 << 20, FLOWS)]
    {
        let mut clock = clock0;
        let config = NatConfig {
            max_entries: max as usize,
            max_entries_v6: 1024,
            hash_seed: Some(1),
            ..NatConfig::new().masquerade("10.0.0.0/8".parse().expect("prefix"), IpAddr::V4(OUTSIDE))
        };
        let mut nat = Nat::new(config).expect("valid config");
        let mut buf = vec![0u8; 64];
        for i in 0..fill {
            let (a, sport, b, dport) = flow(i);
            for (side, p) in [
                (Side::Inside, packet(a, sport, b, dport, Some(SYN))),
                (Side::Outside, packet(b, dport, OUTSIDE, sport, Some(SYN | ACK))),
                (Side::Inside, packet(a, sport, b, dport, Some(ACK))),
            ] {
                buf.copy_from_slice(&p);
                assert_eq!(nat.translate(0, side, &mut buf, clock), Verdict::Forward);
            }
        }
        for udp in [false, true] {
            let fresh: Vec<Vec<u8>> = (0..BATCH as u32)
                .map(|j| {
                    let (a, sport, b, dport) = new_flow(j);
                    packet(a, sport, b, dport, if udp { None } else { Some(SYN) })
                })
                .collect();
            let (best, mean) = new_flows(&mut nat, &fresh, &mut clock);
            println!(
                "{name}: new {} flow best {best:.0} ns, mean {mean:.0} ns (15 batches of 40,000)",
                if udp { "UDP" } else { "TCP" }
            );
        }
        let _ = SPREAD;
        let smaps = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
        println!(
            "{}",
            smaps.lines().filter(|l| l.starts_with("AnonHuge") || l.starts_with("Rss")).collect::<Vec<_>>().join(" ")
        );
    }
}
