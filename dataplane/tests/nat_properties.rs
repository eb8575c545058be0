//! Properties of the NAT engine over random sets of connections, checked
//! against an oracle of its own: a textbook Internet checksum (RFC 1071,
//! a 16-bit word at a time, no incremental update) over packets built here.
//!
//! - Round trip: every outbound packet of a masqueraded connection leaves
//!   from the outside address with every checksum right; the answer to it
//!   comes back to the inside host and port that sent it, checksums right.
//!   Inside hosts, ports and peers are drawn from small sets so that ports
//!   collide.
//! - UDP mappings are endpoint-independent: an inside address and port keep
//!   one outside port whatever the destination, for as long as any of their
//!   connections lives — also while other endpoints' connections come and
//!   expire around them, their ports colliding — and no other inside
//!   endpoint is given that port meanwhile.
//! - Mutations: a valid packet with one byte changed, or cut short, is
//!   forwarded with every checksum right when its own were right, and is
//!   left untouched when dropped or passed.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use dataplane::nat::{DnatRule, Nat, NatConfig, Side, Verdict};
use dataplane::wire::IpProtocol;
use proptest::prelude::*;

const X: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
const X6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);

fn nat() -> Nat {
    let config = NatConfig { hash_seed: Some(7), ..NatConfig::new() }
        .masquerade("10.0.0.0/24".parse().unwrap(), IpAddr::V4(X))
        .masquerade("fd00::/64".parse().unwrap(), IpAddr::V6(X6))
        .publish(DnatRule::new(IpProtocol::Tcp, IpAddr::V4(X), 8080, "10.0.0.5".parse().unwrap(), 80));
    Nat::new(config).unwrap()
}

/// The one's-complement sum of big-endian 16-bit words, by the book.
fn sum(data: &[u8]) -> u32 {
    let mut acc: u32 = 0;
    for pair in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

fn addrs(p: &[u8]) -> (Vec<u8>, Vec<u8>, u8, usize, usize) {
    if p[0] >> 4 == 4 {
        let ihl = usize::from(p[0] & 0x0f) * 4;
        (p[12..16].to_vec(), p[16..20].to_vec(), p[9], ihl, usize::from(u16::from_be_bytes([p[2], p[3]])))
    } else {
        (p[8..24].to_vec(), p[24..40].to_vec(), p[6], 40, 40 + usize::from(u16::from_be_bytes([p[4], p[5]])))
    }
}

/// The checksum over `segment` with the pseudo-header of `proto`.
fn pseudo_sum(src: &[u8], dst: &[u8], proto: u8, segment: &[u8]) -> u16 {
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(src);
    pseudo.extend_from_slice(dst);
    if src.len() == 4 {
        pseudo.extend_from_slice(&[0, proto]);
        pseudo.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    } else {
        pseudo.extend_from_slice(&(segment.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, proto]);
    }
    fold(sum(&pseudo) + sum(segment))
}

/// Whether every checksum of a whole packet built by this test is right.
fn oracle_ok(p: &[u8]) -> bool {
    let (src, dst, proto, l4, end) = addrs(p);
    if src.len() == 4 && fold(sum(&p[..l4])) != 0xffff {
        return false;
    }
    let segment = &p[l4..end];
    match proto {
        17 if src.len() == 4 && segment[6..8] == [0, 0] => true,
        6 | 17 | 58 => pseudo_sum(&src, &dst, proto, segment) == 0xffff,
        1 => fold(sum(segment)) == 0xffff,
        _ => true,
    }
}

/// Fills the checksums of a whole packet built by this test.
fn fill(p: &mut [u8]) {
    let (src, dst, proto, l4, end) = addrs(p);
    if src.len() == 4 {
        p[10..12].copy_from_slice(&[0, 0]);
        let c = !fold(sum(&p[..l4]));
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let at = match proto {
        6 => 16,
        17 => 6,
        _ => 2,
    };
    p[l4 + at..l4 + at + 2].copy_from_slice(&[0, 0]);
    let c = match proto {
        1 => !fold(sum(&p[l4..end])),
        _ => !pseudo_sum(&src, &dst, proto, &p[l4..end]),
    };
    let c = if proto == 17 && c == 0 { 0xffff } else { c };
    p[l4 + at..l4 + at + 2].copy_from_slice(&c.to_be_bytes());
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Proto {
    Tcp,
    Udp,
    Echo,
}

#[derive(Debug, Clone, Copy)]
struct Flow {
    v6: bool,
    proto: Proto,
    host: u8,
    sport: u16,
    peer: u8,
    dport: u16,
}

fn inside(flow: &Flow) -> IpAddr {
    if flow.v6 {
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2 + u16::from(flow.host)))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2 + flow.host))
    }
}

fn peer(flow: &Flow) -> IpAddr {
    if flow.v6 {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1 + u16::from(flow.peer)))
    } else {
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1 + flow.peer))
    }
}

fn outside(flow: &Flow) -> IpAddr {
    if flow.v6 {
        IpAddr::V6(X6)
    } else {
        IpAddr::V4(X)
    }
}

fn octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// A packet of `proto` from `src`:`sport` to `dst`:`dport`; for echo,
/// `request` picks the type and the identifier is `sport` (request) or
/// `dport` (reply).
fn build(proto: Proto, src: IpAddr, sport: u16, dst: IpAddr, dport: u16, request: bool) -> Vec<u8> {
    let v6 = src.is_ipv6();
    let segment: Vec<u8> = match proto {
        Proto::Tcp => {
            let mut s = vec![0u8; 20];
            s[0..2].copy_from_slice(&sport.to_be_bytes());
            s[2..4].copy_from_slice(&dport.to_be_bytes());
            s[12] = 0x50;
            s[13] = if request { 0x02 } else { 0x12 };
            s.extend_from_slice(b"payload");
            s
        }
        Proto::Udp => {
            let mut s = vec![0u8; 8];
            s[0..2].copy_from_slice(&sport.to_be_bytes());
            s[2..4].copy_from_slice(&dport.to_be_bytes());
            s[4..6].copy_from_slice(&15u16.to_be_bytes());
            s.extend_from_slice(b"payload");
            s
        }
        Proto::Echo => {
            let msg_type = match (v6, request) {
                (false, true) => 8,
                (false, false) => 0,
                (true, true) => 128,
                (true, false) => 129,
            };
            let ident = if request { sport } else { dport };
            let mut s = vec![msg_type, 0, 0, 0];
            s.extend_from_slice(&ident.to_be_bytes());
            s.extend_from_slice(&[0, 1]);
            s.extend_from_slice(b"payload");
            s
        }
    };
    let proto_number = match (proto, v6) {
        (Proto::Tcp, _) => 6,
        (Proto::Udp, _) => 17,
        (Proto::Echo, false) => 1,
        (Proto::Echo, true) => 58,
    };
    let mut p = if v6 {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend_from_slice(&(segment.len() as u16).to_be_bytes());
        h.extend_from_slice(&[proto_number, 64]);
        h
    } else {
        let mut h = vec![0x45, 0];
        h.extend_from_slice(&((20 + segment.len()) as u16).to_be_bytes());
        h.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, proto_number, 0, 0]);
        h
    };
    p.extend_from_slice(&octets(src));
    p.extend_from_slice(&octets(dst));
    p.extend_from_slice(&segment);
    fill(&mut p);
    p
}

/// The source address and port (or echo identifier) of a packet built
/// here.
fn source(p: &[u8]) -> (Vec<u8>, u16) {
    let (src, _, _, l4, _) = addrs(p);
    let at = if matches!(p[if p[0] >> 4 == 4 { 9 } else { 6 }], 1 | 58) { l4 + 4 } else { l4 };
    (src, u16::from_be_bytes([p[at], p[at + 1]]))
}

/// The destination address and port (or echo identifier).
fn destination(p: &[u8]) -> (Vec<u8>, u16) {
    let (_, dst, proto, l4, _) = addrs(p);
    let at = if matches!(proto, 1 | 58) { l4 + 4 } else { l4 + 2 };
    (dst, u16::from_be_bytes([p[at], p[at + 1]]))
}

fn flow() -> impl Strategy<Value = Flow> {
    (
        any::<bool>(),
        prop_oneof![Just(Proto::Tcp), Just(Proto::Udp), Just(Proto::Echo)],
        0u8..4,
        prop_oneof![Just(1000u16), Just(1001), Just(40000), 1024u16..65535],
        0u8..3,
        prop_oneof![Just(53u16), Just(80)],
    )
        .prop_map(|(v6, proto, host, sport, peer, dport)| Flow { v6, proto, host, sport, peer, dport })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn connections_round_trip(flows in prop::collection::vec(flow(), 1..60)) {
        let mut nat = nat();
        let now = Instant::now();
        let mut udp_mappings: HashMap<(bool, u8, u16), u16> = HashMap::new();
        let mut sent = Vec::new();
        for f in &flows {
            let mut p = build(f.proto, inside(f), f.sport, peer(f), f.dport, true);
            prop_assert!(oracle_ok(&p));
            prop_assert_eq!(nat.translate(0, Side::Inside, &mut p, now), Verdict::Forward);
            prop_assert!(oracle_ok(&p), "outbound checksums: {:?}", f);
            let (src, port) = source(&p);
            prop_assert_eq!(src, octets(outside(f)));
            if f.proto != Proto::Echo {
                prop_assert_eq!(destination(&p), (octets(peer(f)), f.dport));
            }
            if f.proto == Proto::Udp {
                let mapped = *udp_mappings.entry((f.v6, f.host, f.sport)).or_insert(port);
                prop_assert_eq!(mapped, port, "endpoint-independent mapping: {:?}", f);
            }
            sent.push((*f, port));
        }
        // Answers, last first: each reaches its sender.
        for (f, port) in sent.iter().rev() {
            let dport = if f.proto == Proto::Echo { 0 } else { f.dport };
            let mut answer = build(f.proto, peer(f), dport, outside(f), *port, false);
            prop_assert_eq!(nat.translate(0, Side::Outside, &mut answer, now), Verdict::Forward, "{:?}", f);
            prop_assert!(oracle_ok(&answer), "reply checksums: {:?}", f);
            prop_assert_eq!(destination(&answer), (octets(inside(f)), f.sport), "{:?}", f);
        }
        let stats = nat.stats();
        prop_assert_eq!(stats.translated, 2 * flows.len() as u64);
        prop_assert_eq!(stats.total_drops(), 0);
    }

    #[test]
    fn udp_mappings_hold_while_their_connections_live(
        steps in prop::collection::vec((flow().prop_map(|f| Flow { proto: Proto::Udp, ..f }), 0u64..20), 1..120),
    ) {
        // Unreplied UDP lives 30 s, give or take the 1 s tick: a mapping
        // whose newest connection is younger than 30 s surely lives, one
        // whose connections are all 32 s old or more surely does not.
        const ALIVE: u64 = 30;
        const GONE: u64 = 32;
        let mut nat = nat();
        let start = Instant::now();
        let mut t = 0;
        // (family, host, port) → (outside port, newest connection's time).
        let mut model: HashMap<(bool, u8, u16), (u16, u64)> = HashMap::new();
        for (f, wait) in &steps {
            t += wait;
            let now = start + Duration::from_secs(t);
            nat.expire(now);
            model.retain(|_, (_, newest)| t - *newest < GONE);
            let mut p = build(f.proto, inside(f), f.sport, peer(f), f.dport, true);
            prop_assert_eq!(nat.translate(0, Side::Inside, &mut p, now), Verdict::Forward, "{:?} at {}", f, t);
            let (_, port) = source(&p);
            let key = (f.v6, f.host, f.sport);
            if let Some(&(held, newest)) = model.get(&key) {
                if t - newest < ALIVE {
                    prop_assert_eq!(port, held, "the mapping of {:?} changed at {} s", f, t);
                }
            }
            for (other, &(held, newest)) in &model {
                if *other != key && other.0 == f.v6 && t - newest < ALIVE {
                    prop_assert_ne!(port, held, "{:?} at {} s got the port of {:?}", f, t, other);
                }
            }
            model.insert(key, (port, t));
        }
    }

    #[test]
    fn mutated_packets_keep_their_checksums(
        f in flow(),
        from_outside in any::<bool>(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut nat = nat();
        let now = Instant::now();
        // Open the connection, then send a damaged packet of it.
        let mut first = build(f.proto, inside(&f), f.sport, peer(&f), f.dport, true);
        prop_assert_eq!(nat.translate(0, Side::Inside, &mut first, now), Verdict::Forward);
        let (_, port) = source(&first);
        let dport = if f.proto == Proto::Echo { 0 } else { f.dport };
        let base = if from_outside {
            build(f.proto, peer(&f), dport, outside(&f), port, false)
        } else {
            build(f.proto, inside(&f), f.sport, peer(&f), f.dport, true)
        };
        let side = if from_outside { Side::Outside } else { Side::Inside };
        let mut changed = base.clone();
        let i = at.index(changed.len());
        changed[i] = byte;
        let short = base[..cut.index(base.len() + 1)].to_vec();
        for input in [changed, short] {
            let mut p = input.clone();
            let verdict = nat.translate(0, side, &mut p, now);
            match verdict {
                Verdict::Forward => {
                    prop_assert_eq!(p.len(), input.len());
                    let whole = input.len() >= 20 && addrs(&input).4 <= input.len() && addrs(&input).3 <= input.len();
                    if whole && oracle_ok(&input) {
                        prop_assert!(oracle_ok(&p), "{:02x?} -> {:02x?}", input, p);
                    }
                }
                _ => prop_assert_eq!(&p, &input, "{:?} changed the packet", verdict),
            }
        }
    }
}
