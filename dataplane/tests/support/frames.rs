//! A proptest strategy for well-formed frames, written byte by byte here (not
//! with wharf's emitters, so a shared mistake cannot hide): optional 802.1Q /
//! QinQ tags; ARP, IPv4 with options and fragments, or IPv6 with hop-by-hop,
//! destination-options and fragment headers; TCP with options, UDP, ICMP or
//! ICMPv6 echo, all with correct lengths and checksums; optionally the whole
//! frame carried in VXLAN over Ethernet / IPv4 / UDP 4789.

#![allow(dead_code)]

use proptest::prelude::*;

fn csum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        for pair in part.chunks(2) {
            sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[derive(Debug, Clone)]
enum Ip {
    V4 { ttl: u8, tos: u8, ident: u16, df: bool, options: usize, later_fragment: bool },
    V6 { tc: u8, flow: u32, hop: u8, hbh: bool, dst_opts: bool, atomic_fragment: bool },
}

#[derive(Debug, Clone)]
enum L4 {
    Tcp { ports: (u16, u16), seq: u32, ack: u32, flags: u8, window: u16, mss: bool, ts: bool },
    Udp { ports: (u16, u16) },
    Echo { ident: u16, seq: u16 },
}

fn tags() -> impl Strategy<Value = Vec<(u16, u16)>> {
    let tag = (prop_oneof![Just(0x8100u16), Just(0x88a8u16)], any::<u16>());
    prop_oneof![Just(vec![]), prop::collection::vec(tag.clone(), 1..=1), prop::collection::vec(tag, 2..=2)]
}

fn ip() -> impl Strategy<Value = Ip> {
    prop_oneof![
        (any::<u8>(), any::<u8>(), any::<u16>(), any::<bool>(), 0usize..=2, prop::bool::weighted(0.1)).prop_map(
            |(ttl, tos, ident, df, options, later_fragment)| Ip::V4 { ttl, tos, ident, df, options, later_fragment }
        ),
        (any::<u8>(), 0u32..(1 << 20), any::<u8>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(tc, flow, hop, hbh, dst_opts, atomic_fragment)| Ip::V6 { tc, flow, hop, hbh, dst_opts, atomic_fragment }
        ),
    ]
}

fn l4() -> impl Strategy<Value = L4> {
    prop_oneof![
        (any::<(u16, u16)>(), any::<u32>(), any::<u32>(), any::<u8>(), any::<u16>(), any::<bool>(), any::<bool>())
            .prop_map(|(ports, seq, ack, flags, window, mss, ts)| L4::Tcp { ports, seq, ack, flags, window, mss, ts }),
        // Destination 4789 is VXLAN's: a plain datagram sent there would be
        // walked as VXLAN (and its random payload rejected), which is not a
        // well-formed frame. VXLAN frames are built by `frame()`.
        any::<(u16, u16)>().prop_map(|(src, dst)| L4::Udp { ports: (src, if dst == 4789 { 4790 } else { dst }) }),
        any::<(u16, u16)>().prop_map(|(ident, seq)| L4::Echo { ident, seq }),
    ]
}

fn ethernet(tags: &[(u16, u16)], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01];
    for (tpid, tci) in tags {
        frame.extend_from_slice(&tpid.to_be_bytes());
        frame.extend_from_slice(&tci.to_be_bytes());
    }
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

fn transport(l4: &L4, payload: &[u8], pseudo: &dyn Fn(u8, usize) -> Vec<u8>, v6: bool) -> (u8, Vec<u8>) {
    match *l4 {
        L4::Tcp { ports, seq, ack, flags, window, mss, ts } => {
            let mut options = vec![];
            if mss {
                options.extend_from_slice(&[2, 4, 0x05, 0xb4]);
            }
            if ts {
                options.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]);
            }
            let mut seg = vec![];
            seg.extend_from_slice(&ports.0.to_be_bytes());
            seg.extend_from_slice(&ports.1.to_be_bytes());
            seg.extend_from_slice(&seq.to_be_bytes());
            seg.extend_from_slice(&ack.to_be_bytes());
            seg.push((((20 + options.len()) / 4) as u8) << 4);
            seg.push(flags);
            seg.extend_from_slice(&window.to_be_bytes());
            seg.extend_from_slice(&[0, 0, 0, 0]);
            seg.extend_from_slice(&options);
            seg.extend_from_slice(payload);
            let c = csum(&[&pseudo(6, seg.len()), &seg]);
            seg[16..18].copy_from_slice(&c.to_be_bytes());
            (6, seg)
        }
        L4::Udp { ports } => {
            let mut dgram = vec![];
            dgram.extend_from_slice(&ports.0.to_be_bytes());
            dgram.extend_from_slice(&ports.1.to_be_bytes());
            dgram.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            dgram.extend_from_slice(&[0, 0]);
            dgram.extend_from_slice(payload);
            let c = csum(&[&pseudo(17, dgram.len()), &dgram]);
            dgram[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
            (17, dgram)
        }
        L4::Echo { ident, seq } => {
            let (kind, proto) = if v6 { (128, 58) } else { (8, 1) };
            let mut msg = vec![kind, 0, 0, 0];
            msg.extend_from_slice(&ident.to_be_bytes());
            msg.extend_from_slice(&seq.to_be_bytes());
            msg.extend_from_slice(payload);
            let c = if v6 { csum(&[&pseudo(58, msg.len()), &msg]) } else { csum(&[&msg]) };
            msg[2..4].copy_from_slice(&c.to_be_bytes());
            (proto, msg)
        }
    }
}

fn network(ip: &Ip, l4: &L4, payload: &[u8]) -> (u16, Vec<u8>) {
    match *ip {
        Ip::V4 { ttl, tos, ident, df, options, later_fragment } => {
            let (src, dst) = ([192u8, 0, 2, 1], [198u8, 51, 100, 7]);
            let pseudo = |proto: u8, len: usize| {
                let mut p = vec![];
                p.extend_from_slice(&src);
                p.extend_from_slice(&dst);
                p.extend_from_slice(&[0, proto]);
                p.extend_from_slice(&(len as u16).to_be_bytes());
                p
            };
            let (proto, body) =
                if later_fragment { (17, payload.to_vec()) } else { transport(l4, payload, &pseudo, false) };
            let opts: Vec<u8> = [[0x94u8, 4, 0, 0], [1, 1, 1, 0]].iter().take(options).flatten().copied().collect();
            let ihl = 5 + opts.len() / 4;
            let total = ihl * 4 + body.len();
            let frag: u16 = if later_fragment {
                185
            } else if df {
                0x4000
            } else {
                0
            };
            let mut packet = vec![0x40 | ihl as u8, tos];
            packet.extend_from_slice(&(total as u16).to_be_bytes());
            packet.extend_from_slice(&ident.to_be_bytes());
            packet.extend_from_slice(&frag.to_be_bytes());
            packet.extend_from_slice(&[ttl, proto, 0, 0]);
            packet.extend_from_slice(&src);
            packet.extend_from_slice(&dst);
            packet.extend_from_slice(&opts);
            let c = csum(&[&packet]);
            packet[10..12].copy_from_slice(&c.to_be_bytes());
            packet.extend_from_slice(&body);
            (0x0800, packet)
        }
        Ip::V6 { tc, flow, hop, hbh, dst_opts, atomic_fragment } => {
            let src: [u8; 16] = [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
            let dst: [u8; 16] = [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
            let pseudo = |next: u8, len: usize| {
                let mut p = vec![];
                p.extend_from_slice(&src);
                p.extend_from_slice(&dst);
                p.extend_from_slice(&(len as u32).to_be_bytes());
                p.extend_from_slice(&[0, 0, 0, next]);
                p
            };
            let (proto, body) = transport(l4, payload, &pseudo, true);
            // Build the chain back to front: each header names the next.
            let mut next = proto;
            let mut chain = body;
            if atomic_fragment {
                let mut header = vec![next, 0, 0, 0, 0, 0, 0xca, 0xfe];
                header.extend_from_slice(&chain);
                chain = header;
                next = 44;
            }
            if dst_opts {
                let mut header = vec![next, 0, 1, 4, 0, 0, 0, 0];
                header.extend_from_slice(&chain);
                chain = header;
                next = 60;
            }
            if hbh {
                let mut header = vec![next, 0, 5, 2, 0, 0, 1, 0];
                header.extend_from_slice(&chain);
                chain = header;
                next = 0;
            }
            let mut packet = vec![0x60 | (tc >> 4), (tc << 4) | (flow >> 16) as u8];
            packet.extend_from_slice(&(flow as u16).to_be_bytes());
            packet.extend_from_slice(&(chain.len() as u16).to_be_bytes());
            packet.extend_from_slice(&[next, hop]);
            packet.extend_from_slice(&src);
            packet.extend_from_slice(&dst);
            packet.extend_from_slice(&chain);
            (0x86dd, packet)
        }
    }
}

fn arp(op: u16) -> Vec<u8> {
    let mut packet = vec![0, 1, 8, 0, 6, 4];
    packet.extend_from_slice(&op.to_be_bytes());
    packet.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 192, 0, 2, 2]);
    packet
}

/// One inner frame: tags, a network layer, a transport layer, a payload.
fn plain_frame() -> impl Strategy<Value = Vec<u8>> {
    let ip_frame =
        (tags(), ip(), l4(), prop::collection::vec(any::<u8>(), 0..48)).prop_map(|(tags, ip, l4, payload)| {
            let (ethertype, packet) = network(&ip, &l4, &payload);
            ethernet(&tags, ethertype, &packet)
        });
    let arp_frame = (tags(), 1u16..=2).prop_map(|(tags, op)| ethernet(&tags, 0x0806, &arp(op)));
    prop_oneof![8 => ip_frame, 1 => arp_frame]
}

/// A frame, sometimes carried in VXLAN (VNI random) over IPv4 / UDP 4789.
pub(crate) fn frame() -> impl Strategy<Value = Vec<u8>> {
    (plain_frame(), prop::option::weighted(0.3, (0u32..(1 << 24), any::<u16>()))).prop_map(|(inner, vxlan)| {
        let Some((vni, src_port)) = vxlan else { return inner };
        let mut payload = vec![0x08, 0, 0, 0];
        payload.extend_from_slice(&(vni << 8).to_be_bytes());
        payload.extend_from_slice(&inner);
        let (_, packet) = network(
            &Ip::V4 { ttl: 64, tos: 0, ident: 1, df: true, options: 0, later_fragment: false },
            &L4::Udp { ports: (src_port, 4789) },
            &payload,
        );
        ethernet(&[], 0x0800, &packet)
    })
}
