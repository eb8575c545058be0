//! The NAT engine, both directions. The first byte picks the configuration
//! (loose TCP pickup, a 4-entry or a 64-entry table, a 4-port or the full
//! masquerade range); the rest is a sequence of steps, each a control byte,
//! a length byte and that many bytes. The control byte's low two bits say
//! what is sent:
//!
//! 0. the bytes as they are;
//! 1. the bytes with their IP lengths and every checksum made right, so the
//!    fuzzer reaches past the checks;
//! 2. an answer to the last forwarded packet (addresses and ports swapped,
//!    echo request turned into a reply, TCP flags from the first byte),
//!    from the side it went to: the reply path of tracked connections;
//! 3. an ICMP error about the last forwarded packet (type and code from the
//!    bytes, the quote cut after a length from them), from a router on the
//!    side it went to: RFC 5508 translation.
//!
//! Bit 2 picks the side for steps 0 and 1, bit 3 the zone (0 or 1), bits
//! 4-7 move the clock (0-14 s, or 1000 s for 15).
//!
//! Every packet goes through `Nat::prefetch` first, as in a burst.
//! Checked: nothing panics; every call is counted once (`translated +
//! passed + drops`); a dropped or passed packet is left untouched; a
//! forwarded one keeps its length, and if every checksum of the input was
//! right (IPv4 header, transport or ICMP, and for an ICMP error the quoted
//! header and, quoted whole, the quoted transport), every checksum of the
//! output is right; the table never holds more than its maximum; and after
//! a long silence everything expires and every UDP mapping is given back.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use dataplane::nat::{DnatRule, Nat, NatConfig, Side, Verdict};
use dataplane::wire::{icmpv4, icmpv6, ipv4, ipv6, tcp, udp, IpProtocol};
use libfuzzer_sys::fuzz_target;

const X: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
const I: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5));
const X6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10));
const I6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5));
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 254);
const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0xfe);

fn nat(selector: u8) -> Nat {
    let mut config = NatConfig::new()
        .masquerade("10.0.0.0/24".parse().expect("prefix"), X)
        .masquerade("fd00::/64".parse().expect("prefix"), X6)
        .publish(DnatRule::new(IpProtocol::Tcp, X, 8080, I, 80))
        .publish(DnatRule::new(IpProtocol::Udp, X, 5353, I, 53))
        .publish(DnatRule::new(IpProtocol::Tcp, X6, 8080, I6, 80));
    config.tcp_loose = selector & 0x01 != 0;
    config.max_entries = if selector & 0x02 != 0 { 4 } else { 64 };
    config.max_entries_v6 = config.max_entries;
    if selector & 0x04 != 0 {
        config.port_range = (1024, 1027);
    }
    config.hash_seed = Some(0);
    Nat::new(config).expect("a valid fuzz configuration")
}

/// Where the transport header starts and the packet ends, the addresses
/// and the protocol; `None` for what is not a whole, unfragmented packet.
fn layout(p: &[u8]) -> Option<(IpAddr, IpAddr, u8, usize, usize, bool)> {
    match p.first()? >> 4 {
        4 => {
            let ip = ipv4::Packet::new_checked(p).ok()?;
            let frag = ip.is_fragment();
            Some((
                ip.src_addr().into(),
                ip.dst_addr().into(),
                ip.next_header().into(),
                ip.header_len(),
                ip.total_len().into(),
                frag,
            ))
        }
        6 => {
            let ip = ipv6::Packet::new_checked(p).ok()?;
            let upper = ip.upper_layer().ok()?;
            let frag = upper.fragment.is_some_and(|f| f.frag_offset != 0 || f.more_frags);
            let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
            Some((
                ip.src_addr().into(),
                ip.dst_addr().into(),
                upper.protocol.into(),
                ipv6::HEADER_LEN + upper.offset,
                end,
                frag,
            ))
        }
        _ => None,
    }
}

/// Whether the transport checksum of a whole segment verifies (`true` for
/// what has none, or cannot be read).
fn transport_ok(segment: &[u8], proto: u8, src: IpAddr, dst: IpAddr) -> bool {
    match (proto, src, dst) {
        (6, _, _) => tcp::Packet::new_checked(segment).map_or(true, |s| s.verify_checksum(src, dst)),
        (17, _, _) => udp::Packet::new_checked(segment).map_or(true, |s| s.verify_checksum(src, dst)),
        (1, IpAddr::V4(_), _) => icmpv4::Packet::new_checked(segment).map_or(true, |s| s.verify_checksum()),
        (58, IpAddr::V6(s), IpAddr::V6(d)) => {
            icmpv6::Packet::new_checked(segment).map_or(true, |m| m.verify_checksum(s, d))
        }
        _ => true,
    }
}

/// Whether every checksum the NAT must keep right is right.
fn checksums_ok(p: &[u8]) -> bool {
    if p.first().map(|b| b >> 4) == Some(4) {
        match ipv4::Packet::new_checked(p) {
            Ok(ip) if !ip.verify_checksum() => return false,
            Ok(_) => {}
            Err(_) => return true,
        }
    }
    let Some((src, dst, proto, l4, end, frag)) = layout(p) else { return true };
    if frag {
        return true;
    }
    let Some(segment) = p.get(l4..end) else { return true };
    if !transport_ok(segment, proto, src, dst) {
        return false;
    }
    let error = match (proto, segment.first()) {
        (1, Some(3 | 11 | 12)) => src.is_ipv4(),
        (58, Some(&t)) => t < 128 && src.is_ipv6(),
        _ => false,
    };
    let Some(quote) = segment.get(8..).filter(|_| error) else { return true };
    match quote.first().map(|b| b >> 4) {
        Some(4) => {
            let Ok(ip) = ipv4::Packet::new_quoted(quote) else { return true };
            if !ip.verify_checksum() {
                return false;
            }
            let (l4, end) = (ip.header_len(), usize::from(ip.total_len()));
            if ip.is_fragment() || end > quote.len() {
                return true;
            }
            transport_ok(&quote[l4..end], ip.next_header().into(), ip.src_addr().into(), ip.dst_addr().into())
        }
        Some(6) => {
            let Ok(ip) = ipv6::Packet::new_checked(quote) else { return true };
            match ip.upper_layer() {
                Ok(upper) if upper.fragment.is_none() => {
                    let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
                    let segment = &quote[ipv6::HEADER_LEN + upper.offset..end];
                    transport_ok(segment, upper.protocol.into(), ip.src_addr().into(), ip.dst_addr().into())
                }
                _ => true,
            }
        }
        _ => true,
    }
}

/// Fills the transport checksum of a whole, unfragmented packet.
fn fill_transport(p: &mut [u8]) {
    let Some((src, dst, proto, l4, end, false)) = layout(p) else { return };
    let Some(segment) = p.get_mut(l4..end) else { return };
    match (proto, src, dst) {
        (6, _, _) => {
            if let Ok(mut s) = tcp::Packet::new_checked(segment) {
                s.fill_checksum(src, dst);
            }
        }
        (17, _, _) => {
            if let Ok(mut s) = udp::Packet::new_checked(segment) {
                s.set_len(s.len().max(8));
                s.fill_checksum(src, dst);
            }
        }
        (1, IpAddr::V4(_), _) => {
            if let Ok(mut m) = icmpv4::Packet::new_checked(segment) {
                m.fill_checksum();
            }
        }
        (58, IpAddr::V6(s), IpAddr::V6(d)) => {
            if let Ok(mut m) = icmpv6::Packet::new_checked(segment) {
                m.fill_checksum(s, d);
            }
        }
        _ => {}
    }
}

/// Makes the IP lengths and every checksum right.
fn repair(p: &mut Vec<u8>) {
    match p.first().map(|b| b >> 4) {
        Some(4) if p.len() >= 20 => {
            let ihl = usize::from(p[0] & 0x0f).clamp(5, p.len() / 4).min(15);
            p[0] = 0x40 | ihl as u8;
            let total = p.len().min(65535) as u16;
            p.truncate(usize::from(total));
            p[2..4].copy_from_slice(&total.to_be_bytes());
            let header_len = ihl * 4;
            if p[9] == 6 && p.len() >= header_len + 20 {
                let offset = usize::from(p[header_len + 12] >> 4).clamp(5, (p.len() - header_len) / 4).min(15);
                p[header_len + 12] = (offset as u8) << 4 | (p[header_len + 12] & 0x0f);
            }
            if p[9] == 17 && p.len() >= header_len + 8 {
                let len = (p.len() - header_len) as u16;
                p[header_len + 4..header_len + 6].copy_from_slice(&len.to_be_bytes());
            }
            if let Ok(mut ip) = ipv4::Packet::new_checked(&mut p[..]) {
                ip.fill_checksum();
            }
            fill_transport(p);
        }
        Some(6) if p.len() >= 40 => {
            let len = (p.len() - 40).min(65535) as u16;
            p.truncate(40 + usize::from(len));
            p[4..6].copy_from_slice(&len.to_be_bytes());
            if p[6] == 17 && p.len() >= 48 {
                p[44..46].copy_from_slice(&len.to_be_bytes());
            }
            fill_transport(p);
        }
        _ => {}
    }
}

/// The answer to a forwarded packet: addresses and ports swapped, an echo
/// request turned into a reply, TCP flags set to `flags`.
fn answer(p: &[u8], flags: u8) -> Option<Vec<u8>> {
    let (_, _, proto, l4, end, _) = layout(p)?;
    let mut q = p.get(..end)?.to_vec();
    let (a, b) = if q[0] >> 4 == 4 { (12, 16) } else { (8, 24) };
    let n = b - a;
    let src = q[a..b].to_vec();
    q.copy_within(b..b + n, a);
    q[b..b + n].copy_from_slice(&src);
    match proto {
        6 | 17 if q.len() >= l4 + 4 => {
            let sport = [q[l4], q[l4 + 1]];
            q.copy_within(l4 + 2..l4 + 4, l4);
            q[l4 + 2..l4 + 4].copy_from_slice(&sport);
            if proto == 6 && q.len() > l4 + 13 {
                q[l4 + 13] = flags;
            }
        }
        1 if q.get(l4) == Some(&8) => q[l4] = 0,
        58 if q.get(l4) == Some(&128) => q[l4] = 129,
        _ => {}
    }
    if q[0] >> 4 == 4 {
        if let Ok(mut ip) = ipv4::Packet::new_checked(&mut q[..]) {
            ip.fill_checksum();
        }
    }
    fill_transport(&mut q);
    Some(q)
}

/// An ICMP error from a router to the source of `p`, quoting its first
/// `cut` bytes (at least the IP header and 8 more).
fn error_about(p: &[u8], bytes: &[u8]) -> Option<Vec<u8>> {
    let (src, _, _, l4, end, _) = layout(p)?;
    let cut = usize::from(bytes.get(2).copied().unwrap_or(255)) * 4;
    let quote = p.get(..end.min((l4 + 8).max(cut)))?;
    let (msg_type, code) = (bytes.first().copied().unwrap_or(3), bytes.get(1).copied().unwrap_or(3));
    let mut message = vec![msg_type, code, 0, 0, 0, 0, 0x05, 0x78];
    message.extend_from_slice(quote);
    let mut q = match src {
        IpAddr::V4(to) => {
            let mut q = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 1, 0, 0];
            q.extend_from_slice(&ROUTER.octets());
            q.extend_from_slice(&to.octets());
            q.extend_from_slice(&message);
            q
        }
        IpAddr::V6(to) => {
            let mut q = vec![0x60, 0, 0, 0, 0, 0, 58, 64];
            q.extend_from_slice(&ROUTER6.octets());
            q.extend_from_slice(&to.octets());
            q.extend_from_slice(&message);
            q
        }
    };
    repair(&mut q);
    Some(q)
}

fn other(side: Side) -> Side {
    match side {
        Side::Inside => Side::Outside,
        Side::Outside => Side::Inside,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else { return };
    let mut nat = nat(selector);
    let max = nat.config().max_entries + nat.config().max_entries_v6;
    let mut now = Instant::now();
    let mut calls = 0u64;
    let mut last: Option<(Vec<u8>, Side, u16)> = None;
    while let [control, len, tail @ ..] = rest {
        let take = usize::from(*len).min(tail.len());
        let (bytes, next) = tail.split_at(take);
        rest = next;
        let zone = u16::from(control & 0x08 != 0);
        let side = if control & 0x04 != 0 { Side::Outside } else { Side::Inside };
        let (mut packet, side, zone) = match control & 0x03 {
            0 => (bytes.to_vec(), side, zone),
            1 => {
                let mut p = bytes.to_vec();
                repair(&mut p);
                (p, side, zone)
            }
            2 => match &last {
                Some((p, to, zone)) => match answer(p, bytes.first().copied().unwrap_or(0x12)) {
                    Some(q) => (q, *to, *zone),
                    None => continue,
                },
                None => continue,
            },
            _ => match &last {
                Some((p, to, zone)) => match error_about(p, bytes) {
                    Some(q) => (q, *to, *zone),
                    None => continue,
                },
                None => continue,
            },
        };
        let advance = match control >> 4 {
            15 => 1000,
            secs => u64::from(secs),
        };
        now += Duration::from_secs(advance);
        let input = packet.clone();
        let valid = checksums_ok(&input);
        // A burst's first pass: a hint that reads any bytes and changes nothing.
        nat.prefetch_burst(zone, side, [&packet[..]]);
        let verdict = nat.translate(zone, side, &mut packet, now);
        calls += 1;
        let stats = nat.stats();
        assert_eq!(stats.translated + stats.passed + stats.total_drops(), calls, "{stats:?}");
        assert!(nat.len() <= max);
        match verdict {
            Verdict::Forward => {
                assert_eq!(packet.len(), input.len());
                if valid {
                    assert!(
                        checksums_ok(&packet),
                        "checksum broken by translation\nin  {input:02x?}\nout {packet:02x?}"
                    );
                }
                last = Some((packet, other(side), zone));
            }
            Verdict::Pass | Verdict::Drop(_) => assert_eq!(packet, input, "{verdict:?} changed the packet"),
        }
    }
    nat.expire(now + Duration::from_secs(500_000));
    assert!(nat.is_empty());
    for addr in [X, X6] {
        assert_eq!(nat.udp_mappings(addr), 0);
    }
});
