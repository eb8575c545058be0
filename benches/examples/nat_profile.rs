//! The operations of `benches/nat.rs`, each in a function of its own, for
//! `valgrind --tool=callgrind`: instructions per call are then the
//! inclusive cost of `op_*` divided by its calls. Same table (1,000,000
//! assured TCP flows), same packets.

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
const PSH: u8 = 0x08;

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

#[inline(never)]
fn op_expire_batch(nat: &mut Nat, now: Instant) -> usize {
    nat.expire(now)
}

fn main() {
    let mut clock = Instant::now();
    let config = NatConfig {
        max_entries: 1 << 20,
        max_entries_v6: 1024,
        hash_seed: Some(1),
        ..NatConfig::new().masquerade("10.0.0.0/8".parse().expect("prefix"), IpAddr::V4(OUTSIDE))
    };
    let mut nat = Nat::new(config).expect("valid config");
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
    for udp in [false, true] {
        let fresh: Vec<Vec<u8>> = (0..BATCH as u32)
            .map(|j| {
                let (a, sport, b, dport) = new_flow(j);
                packet(a, sport, b, dport, if udp { None } else { Some(SYN) })
            })
            .collect();
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
    assert_eq!(nat.stats().total_drops(), 0);
    assert_eq!(nat.len(), FLOWS as usize);
}
