//! The UDP source port of an encapsulated frame: a hash of the inner flow,
//! mapped into the configured range, so that one flow keeps one port and
//! different flows spread over the underlay's ECMP paths (RFC 7348 §5).
//!
//! The flow is the inner IPv4 or IPv6 source and destination, the protocol,
//! and for TCP and UDP (unfragmented, directly after the fixed IP header) the
//! two ports; for anything else the two MACs and the EtherType. The Linux
//! kernel hashes the same fields (`skb_get_hash`) with a random key, so its
//! port for a flow differs from ours; only stability per flow matters.
//! The hash here has no key: a flow keeps its port across restarts.
//!
//! Untagged IPv4 frames without options, the common case, are hashed from
//! fixed offsets of the frame (`untagged_flow_hash`): the same hash as the
//! general path, with one length check instead of a parse.
//!
//! The mapping is the kernel's `udp_flow_src_port`: fold the hash's low half
//! into its high half, then scale into `MIN..MAX`.
//!
//! What this module does not do: pick the remote or look at the FDB.

use super::table::folded_multiply;
use crate::wire::{ethernet, ipv4, ipv6, udp, EtherType, EthernetAddress, IpProtocol};

const K0: u64 = 0x243f_6a88_85a3_08d3;
const K1: u64 = 0x1319_8a2e_0370_7344;
const K2: u64 = 0xa409_3822_299f_31d0;
const K3: u64 = 0x082e_fa98_ec4e_6c89;

/// The ports of a TCP or UDP header at the start of `l4`, as one word; 0 if
/// there is no room for them or `protocol` (the number) is neither.
#[inline(always)]
fn ports(protocol: u8, l4: &[u8]) -> u64 {
    if !matches!(IpProtocol::from(protocol), IpProtocol::Tcp | IpProtocol::Udp) {
        return 0;
    }
    match l4.get(..4) {
        // TCP and UDP both start with the source and destination ports.
        Some(head) => {
            let header = udp::Packet::new_unchecked(head);
            (u64::from(header.src_port()) << 16) | u64::from(header.dst_port())
        }
        None => 0,
    }
}

/// The 32-bit hash of the inner flow of a frame with type `ethertype` (the
/// number), payload `payload` (after the Ethernet header and tags) and
/// addresses `dst` and `src`.
#[inline(always)]
pub(crate) fn flow_hash(ethertype: u16, payload: &[u8], dst: EthernetAddress, src: EthernetAddress) -> u32 {
    // Only the fields that name the flow are read, after checking that the
    // fixed header is there: a malformed inner packet still gets a stable
    // hash (of its MACs or of what it claims), and encap does not validate
    // the inner L3 packet. Numbers, not enums, are compared: no conversion
    // there and back per frame.
    let hash = if ethertype == u16::from(EtherType::Ipv4) && payload.len() >= ipv4::HEADER_LEN {
        let ip = ipv4::Packet::new_unchecked(payload);
        let protocol = ip.next_header_number();
        let l4 = payload.get(ip.header_len()..).unwrap_or_default();
        let ports = if ip.is_fragment() { 0 } else { ports(protocol, l4) };
        let addrs = (u64::from(u32::from(ip.src_addr())) << 32) | u64::from(u32::from(ip.dst_addr()));
        folded_multiply(addrs ^ K0, (ports << 8 | u64::from(protocol)) ^ K1)
    } else if ethertype == u16::from(EtherType::Ipv6) && payload.len() >= ipv6::HEADER_LEN {
        let ip = ipv6::Packet::new_unchecked(payload);
        let protocol = ip.next_header_number();
        let ports = ports(protocol, &payload[ipv6::HEADER_LEN..]);
        let src = u128::from(ip.src_addr());
        let dst = u128::from(ip.dst_addr());
        let h = folded_multiply((src >> 64) as u64 ^ K0, src as u64 ^ K1);
        let h = folded_multiply(h ^ (dst >> 64) as u64, dst as u64 ^ K2);
        folded_multiply(h ^ K3, (ports << 8 | u64::from(protocol)) ^ K1)
    } else {
        let mac = |m: EthernetAddress| u64::from_be_bytes([0, 0, m.0[0], m.0[1], m.0[2], m.0[3], m.0[4], m.0[5]]);
        folded_multiply(mac(dst) ^ (u64::from(ethertype) << 48) ^ K2, mac(src) ^ K3)
    };
    (hash ^ (hash >> 32)) as u32
}

/// What the fast path of [`untagged_flow_hash`] reads: the Ethernet header,
/// an IPv4 header without options, and the two ports after it.
const IPV4_FAST_LEN: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + 4;

/// [`flow_hash`] of an untagged frame (`frame` starts with its 14-byte
/// Ethernet header, whose first type field is not a VLAN TPID). The common
/// case, IPv4 without options with room for the ports, is read at fixed
/// offsets of one 38-byte array: one length check, no parsing; it gives
/// the same hash as the general path.
#[inline(always)]
pub(crate) fn untagged_flow_hash(frame: &[u8]) -> u32 {
    if let Some(head) = frame.first_chunk::<IPV4_FAST_LEN>() {
        let eth = ethernet::Frame::new_unchecked(&head[..]);
        let ip = ipv4::Packet::new_unchecked(&head[ethernet::HEADER_LEN..]);
        if eth.first_type_field() == u16::from(EtherType::Ipv4) && ip.header_len() == ipv4::HEADER_LEN {
            let protocol = ip.next_header_number();
            let has_ports =
                !ip.is_fragment() && matches!(IpProtocol::from(protocol), IpProtocol::Tcp | IpProtocol::Udp);
            // Both ports in one read: TCP and UDP start with them.
            let l4 = udp::Packet::new_unchecked(&head[ethernet::HEADER_LEN + ipv4::HEADER_LEN..]);
            let ports = if has_ports { u64::from(l4.ports()) } else { 0 };
            let addrs = (u64::from(u32::from(ip.src_addr())) << 32) | u64::from(u32::from(ip.dst_addr()));
            let hash = folded_multiply(addrs ^ K0, (ports << 8 | u64::from(protocol)) ^ K1);
            return (hash ^ (hash >> 32)) as u32;
        }
    }
    untagged_flow_hash_general(frame)
}

/// [`untagged_flow_hash`] for every other frame: out of line, so the fast
/// path stays small.
#[inline(never)]
fn untagged_flow_hash_general(frame: &[u8]) -> u32 {
    let Some(header) = frame.first_chunk::<{ ethernet::HEADER_LEN }>() else { return 0 };
    let eth = ethernet::Frame::new_unchecked(&header[..]);
    flow_hash(eth.first_type_field(), &frame[ethernet::HEADER_LEN..], eth.dst_addr(), eth.src_addr())
}

/// Maps a flow hash into `min..max` (`min` if they are equal), as the
/// kernel's `udp_flow_src_port` does.
#[inline(always)]
pub(crate) fn src_port(hash: u32, (min, max): (u16, u16)) -> u16 {
    let hash = hash ^ (hash << 16);
    let range = u64::from(max.saturating_sub(min));
    ((u64::from(hash) * range) >> 32) as u16 + min
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An inner TCP segment 198.51.100.1:40000 → 198.51.100.2:80, headers
    /// only; `sport` patched into bytes 34..36.
    fn tcp_frame(sport: u16) -> [u8; 54] {
        let mut frame = [
            0x52, 0x54, 0x00, 0x00, 0x00, 0x02, // dst
            0x52, 0x54, 0x00, 0x00, 0x00, 0x01, // src
            0x08, 0x00, // IPv4
            0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, // IPv4, TCP, DF
            198, 51, 100, 1, // src
            198, 51, 100, 2, // dst
            0x9c, 0x40, 0x00, 0x50, // ports 40000 -> 80
            0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0, // rest of TCP
        ];
        frame[34..36].copy_from_slice(&sport.to_be_bytes());
        frame
    }

    fn hash(bytes: &[u8]) -> u32 {
        let eth = crate::wire::ethernet::Frame::new_checked(bytes).unwrap();
        flow_hash(eth.ethertype().into(), eth.payload(), eth.dst_addr(), eth.src_addr())
    }

    #[test]
    fn stable_per_flow_and_spread_across_flows() {
        let range = (49152, 65535);
        let a = tcp_frame(40000);
        assert_eq!(src_port(hash(&a), range), src_port(hash(&a.clone()), range));
        // The payload and the TTL do not change the flow.
        let mut other_ttl = a;
        other_ttl[22] = 1;
        assert_eq!(hash(&a), hash(&other_ttl));
        let mut ports: Vec<u16> = (0..2000).map(|p| src_port(hash(&tcp_frame(30000 + p)), range)).collect();
        assert!(ports.iter().all(|&p| (49152..65535).contains(&p)));
        ports.sort_unstable();
        ports.dedup();
        assert!(ports.len() > 1800, "{} distinct ports of 2000 flows", ports.len());
    }

    #[test]
    fn fallbacks() {
        // ARP: the MACs and the EtherType.
        let mut arp = [0u8; 42];
        arp[..6].fill(0xff);
        arp[6..12].copy_from_slice(&[0x52, 0x54, 0, 0, 0, 1]);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let h = hash(&arp);
        arp[11] = 2;
        assert_ne!(h, hash(&arp));
        // A truncated IPv4 header (19 of 20 bytes) falls back to the MACs
        // rather than failing: the addresses in it do not count, the MACs do.
        let truncated = &tcp_frame(1)[..33];
        let h = hash(truncated);
        assert_eq!(h, hash(&truncated[..14]), "only the Ethernet header is hashed");
        let mut other_src = truncated.to_vec();
        other_src[29] = 9;
        assert_eq!(h, hash(&other_src));
        let mut other_mac = truncated.to_vec();
        other_mac[5] = 3;
        assert_ne!(h, hash(&other_mac));
        // An IHL past the end hashes the addresses without ports: the bytes
        // where the ports were do not count, the addresses do, the MACs not.
        let mut long_ihl = tcp_frame(1);
        long_ihl[14] = 0x4f;
        let h = hash(&long_ihl[..40]);
        let mut other_ports = long_ihl;
        other_ports[34..38].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(h, hash(&other_ports[..40]));
        let mut other_mac = long_ihl;
        other_mac[5] = 3;
        assert_eq!(h, hash(&other_mac[..40]));
        let mut other_dst = long_ihl;
        other_dst[33] = 9;
        assert_ne!(h, hash(&other_dst[..40]));
        // A later fragment has no ports: every fragment of a datagram hashes
        // alike.
        let mut frag = tcp_frame(1);
        frag[20] = 0x20; // MF
        let mut frag2 = tcp_frame(2);
        frag2[20] = 0x20;
        assert_eq!(hash(&frag), hash(&frag2));
    }

    #[test]
    fn the_fast_path_hashes_as_the_general_one() {
        let mut frames: Vec<Vec<u8>> = vec![tcp_frame(40000).to_vec(), tcp_frame(40000)[..38].to_vec()];
        // UDP, ICMP, a fragment, options (IHL 6), too short for the ports.
        for (at, value) in [(23, 17), (23, 1), (20, 0x20), (14, 0x46)] {
            let mut frame = tcp_frame(1234);
            frame[at] = value;
            frames.push(frame.to_vec());
        }
        frames.push(tcp_frame(1)[..37].to_vec());
        frames.push(tcp_frame(1)[..14].to_vec());
        let mut arp = tcp_frame(1);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        frames.push(arp.to_vec());
        for frame in &frames {
            assert_eq!(untagged_flow_hash(frame), hash(frame), "{frame:02x?}");
        }
    }

    #[test]
    fn range_mapping_like_the_kernel() {
        assert_eq!(src_port(u32::MAX, (1000, 1000)), 1000);
        assert_eq!(src_port(0, (1000, 2000)), 1000);
        for h in [0u32, 1, 0xffff, 0x1234_5678, u32::MAX] {
            let p = src_port(h, (1000, 1010));
            assert!((1000..1010).contains(&p));
        }
        assert_eq!(src_port(0xffff_ffff, (1, 65535)), 1);
        // (0xffff_0000 ^ 0) * 10 >> 32 = 9
        assert_eq!(src_port(0xffff_0000, (1000, 1010)), 1009);
    }
}
