//! The NAT benches' world, shared by the criterion bench and the
//! profiling examples: the million established flows, fresh flows apart
//! from them, and their 64-byte packets with every checksum filled.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use dataplane::nat::{Nat, NatConfig, Side, Verdict};
use dataplane::wire::{ipv6, tcp, udp, IpProtocol};

pub const FLOWS: u32 = 1_000_000;
pub const SPREAD: usize = 1 << 18;
pub const BATCH: usize = 40_000;
/// Packets per burst in the burst benches (the runner reads up to 64 with
/// one `recvmmsg`).
pub const BURST: usize = 32;
pub const OUTSIDE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// The outside address of the IPv6 table (NAT66 masquerade of fd00::/8).
pub const OUTSIDE6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const PSH: u8 = 0x08;

/// Flow `i` of the prefilled million: a distinct inside host, and a distinct
/// (peer, port) pair so every source port can be kept.
pub fn flow(i: u32) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let inside = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 1)) + i);
    let peer = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i % 131_072);
    (inside, 1024 + (i / 131_072) as u16, peer, 443)
}

/// New flow `j` of a batch: inside hosts and peers apart from the million,
/// each host with its own source port (which is kept).
pub fn new_flow(j: u32) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    let inside = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + j);
    let peer = Ipv4Addr::new(192, 0, 2, (j % 256) as u8);
    (inside, 10_000 + j as u16, peer, 443)
}

/// A 64-byte IPv4 packet with every checksum filled: TCP with `flags`, or
/// UDP when `flags` is `None`.
pub fn packet(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, flags: Option<u8>) -> Vec<u8> {
    let mut p = vec![0x5a; 64];
    let next_header = if flags.is_some() { IpProtocol::Tcp } else { IpProtocol::Udp };
    crate::emit_ipv4(&mut p, src, dst, next_header, 44);
    let (s, d) = (IpAddr::V4(src), IpAddr::V4(dst));
    match flags {
        Some(flags) => fill_tcp(&mut p[20..], (s, sport), (d, dport), flags),
        None => {
            udp::Repr { src_port: sport, dst_port: dport, payload_len: 36 }
                .emit(&mut udp::Packet::new_unchecked(&mut p[20..]))
                .expect("udp header fits");
            udp::Packet::new_unchecked(&mut p[20..]).fill_checksum(s, d);
        }
    }
    p
}

/// The benches' NAT configuration: masquerade of 10.0.0.0/8 to [`OUTSIDE`],
/// room for `max_entries` IPv4 connections, a fixed hash seed.
pub fn config(max_entries: usize) -> NatConfig {
    NatConfig {
        max_entries,
        max_entries_v6: 1024,
        hash_seed: Some(1),
        ..NatConfig::new().masquerade("10.0.0.0/8".parse().expect("prefix"), IpAddr::V4(OUTSIDE))
    }
}

/// Establishes flows `0..count` (SYN, SYN-ACK, ACK: assured).
pub fn fill(nat: &mut Nat, count: u32, now: Instant) {
    let mut buf = vec![0u8; 64];
    for i in 0..count {
        let (a, sport, b, dport) = flow(i);
        for (side, p) in [
            (Side::Inside, packet(a, sport, b, dport, Some(SYN))),
            (Side::Outside, packet(b, dport, OUTSIDE, sport, Some(SYN | ACK))),
            (Side::Inside, packet(a, sport, b, dport, Some(ACK))),
        ] {
            buf.copy_from_slice(&p);
            assert_eq!(nat.translate(0, side, &mut buf, now), Verdict::Forward, "flow {i}");
        }
    }
}

/// Translates the packets of `templates` (at most [`BURST`]) from `side` as
/// the runner treats a burst it read: each copied into its buffer, then
/// [`Nat::prefetch_burst`] over them, then [`Nat::translate`] for each in
/// turn. Returns how many were translated.
pub fn translate_burst(
    nat: &mut Nat,
    side: Side,
    bufs: &mut [[u8; 64]; BURST],
    templates: &[Vec<u8>],
    now: Instant,
) -> usize {
    let n = templates.len().min(BURST);
    for (buf, template) in bufs.iter_mut().zip(&templates[..n]) {
        buf.copy_from_slice(template);
    }
    nat.prefetch_burst(0, side, bufs[..n].iter().map(|buf| black_box(&buf[..])));
    for buf in &mut bufs[..n] {
        black_box(nat.translate(0, side, black_box(buf), now));
    }
    n
}

/// The IPv6 counterpart of [`config`]: NAT66 masquerade of fd00::/8 to
/// [`OUTSIDE6`], room for `max_entries_v6` IPv6 connections.
pub fn config6(max_entries_v6: usize) -> NatConfig {
    NatConfig {
        max_entries: 1024,
        max_entries_v6,
        hash_seed: Some(1),
        ..NatConfig::new().masquerade("fd00::/8".parse().expect("prefix"), IpAddr::V6(OUTSIDE6))
    }
}

/// IPv6 flow `i`: [`flow`]'s shape with fd00::/8 hosts and 2001:db8:1::/48
/// peers.
pub fn flow6(i: u32) -> (Ipv6Addr, u16, Ipv6Addr, u16) {
    let inside = Ipv6Addr::from((0xfd00_u128 << 112) | (u128::from(i) + 1));
    let peer = Ipv6Addr::from((0x2001_0db8_0001_u128 << 80) | u128::from(i % 131_072));
    (inside, 1024 + (i / 131_072) as u16, peer, 443)
}

/// A 64-byte IPv6 TCP packet (4 bytes of payload), the size of
/// [`packet`]'s, with `flags` and its checksum filled.
pub fn packet6(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16, flags: u8) -> Vec<u8> {
    let mut p = vec![0x5a; 64];
    let ip = ipv6::Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Tcp,
        payload_len: 24,
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0,
    };
    ip.emit(&mut ipv6::Packet::new_unchecked(&mut p[..])).expect("ipv6 header fits");
    fill_tcp(&mut p[40..], (IpAddr::V6(src), sport), (IpAddr::V6(dst), dport), flags);
    p
}

/// Writes a 20-byte TCP header with `flags` at the start of `segment` (the
/// rest is its payload) and its checksum for the addresses given.
fn fill_tcp(segment: &mut [u8], (src, sport): (IpAddr, u16), (dst, dport): (IpAddr, u16), flags: u8) {
    let mut segment = tcp::Packet::new_unchecked(segment);
    segment.set_src_port(sport);
    segment.set_dst_port(dport);
    segment.set_seq_number(1000);
    segment.set_ack_number(2000);
    segment.set_header_len(20);
    segment.set_flags(tcp::Flags::from_bits_truncate(u16::from(flags)));
    segment.set_window_len(502);
    segment.set_urgent_at(0);
    segment.fill_checksum(src, dst);
}

/// [`fill`] for IPv6 flows `0..count`.
pub fn fill6(nat: &mut Nat, count: u32, now: Instant) {
    let mut buf = vec![0u8; 64];
    for i in 0..count {
        let (a, sport, b, dport) = flow6(i);
        for (side, p) in [
            (Side::Inside, packet6(a, sport, b, dport, SYN)),
            (Side::Outside, packet6(b, dport, OUTSIDE6, sport, SYN | ACK)),
            (Side::Inside, packet6(a, sport, b, dport, ACK)),
        ] {
            buf.copy_from_slice(&p);
            assert_eq!(nat.translate(0, side, &mut buf, now), Verdict::Forward, "flow {i}");
        }
    }
}
