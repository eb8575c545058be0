//! Reading the fields NAT needs from an IPv4 or IPv6 packet, and rewriting
//! addresses, ports and ICMP identifiers in place with RFC 1624 incremental
//! checksum updates: the IPv4 header checksum, and the TCP, UDP and ICMPv6
//! checksums with their pseudo-header. A zero UDP checksum (none, over
//! IPv4) stays zero; an updated one that comes out as zero is written as
//! 0xffff (RFC 768).
//!
//! Headers are checked with [`crate::wire`] views; addresses are handled as
//! `[u8; N]` (N = 4 or 16) so that one generic path serves both families.
//! ICMP errors get their quoted packet rewritten as well (RFC 5508 §4.2:
//! the quoted header, its ports or identifier, its header and transport
//! checksums, and the ICMP checksum over all of it).
//!
//! What this module does not do: decide what to rewrite to, verify
//! transport checksums (an incremental update keeps a bad one bad), or
//! decrement the TTL (the router's job).

use super::state;
use super::stats::DropReason;
use super::table::Tuple;
use crate::wire::{checksum, ipv4, ipv6, IpProtocol};

pub(crate) const TCP: u8 = 6;
pub(crate) const UDP: u8 = 17;
pub(crate) const ICMP: u8 = 1;
pub(crate) const ICMPV6: u8 = 58;

/// Whether addresses of length `N` are IPv4's.
#[inline(always)]
pub(crate) const fn is_v4<const N: usize>() -> bool {
    N == 4
}

/// The ICMP protocol number of the family.
#[inline(always)]
pub(crate) const fn icmp_proto<const N: usize>() -> u8 {
    if is_v4::<N>() {
        ICMP
    } else {
        ICMPV6
    }
}

/// Where the source and destination addresses sit in the IP header.
#[inline(always)]
const fn addr_offsets<const N: usize>() -> (usize, usize) {
    if is_v4::<N>() {
        (12, 16)
    } else {
        (8, 24)
    }
}

/// What a packet carries, as far as NAT cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// TCP, with the flags byte (FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10).
    Tcp {
        flags: u8,
    },
    Udp,
    /// An ICMP or ICMPv6 echo request or reply.
    Echo {
        request: bool,
    },
    /// An ICMP error (destination unreachable, time exceeded, parameter
    /// problem; ICMPv6 packet too big).
    IcmpError,
    /// Another ICMP message; `link_local` for ICMPv6 neighbour discovery and
    /// multicast listener messages, which never cross a router.
    IcmpOther {
        link_local: bool,
    },
    /// Another protocol, or a non-first fragment (no transport header).
    Other,
}

/// Where a packet stands in fragmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frag {
    Whole,
    /// Offset zero, more fragments follow: carries the transport header.
    First {
        ident: u32,
    },
    /// A later fragment: no transport header.
    Later {
        ident: u32,
    },
}

/// The fields of a packet NAT reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parsed<const N: usize> {
    /// Addresses, and ports or the echo identifier (see [`Tuple`]).
    pub(crate) tuple: Tuple<N>,
    pub(crate) proto: u8,
    /// Where the transport header starts.
    pub(crate) l4: usize,
    /// Where the packet ends (link padding excluded).
    pub(crate) end: usize,
    pub(crate) frag: Frag,
    pub(crate) kind: Kind,
}

#[inline(always)]
fn get_addr<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut addr = [0u8; N];
    if let Some(bytes) = buf.get(at..at + N) {
        addr.copy_from_slice(bytes);
    }
    addr
}

/// The sum of the native-order 32-bit words of `bytes` (`L` a multiple of
/// 4: the loop unrolls, the indexing needs no check).
#[inline(always)]
fn words<const L: usize>(bytes: &[u8; L]) -> u64 {
    let mut acc = 0;
    let mut i = 0;
    while i + 4 <= L {
        acc += u64::from(u32::from_ne_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]));
        i += 4;
    }
    acc
}

/// Whether an IPv4 header (a multiple of 4 bytes long) sums to 0xffff, as
/// [`ipv4::Packet::verify_checksum`] says, in native-order words.
#[inline(always)]
fn header_checksum_ok(header: &[u8]) -> bool {
    match header.first_chunk::<20>() {
        // The usual header, without options: five words, unrolled.
        Some(h) if header.len() == 20 => fixed_header_checksum_ok(h),
        _ => {
            let acc = header.chunks_exact(4).map(|w| u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))).sum();
            checksum::fold(acc) == 0xffff
        }
    }
}

/// The inverse of 0xffff modulo 2^64: multiplying by it divides a multiple
/// of 0xffff exactly (see [`fixed_header_checksum_ok`]).
const INVERSE_OF_FFFF: u64 = 0xfffe_fffe_fffe_ffff;

/// [`header_checksum_ok`] for a header without options, in one pass and
/// without the fold: the header summed as two 64-bit words and a 32-bit
/// one with end-around carries, then tested for a multiple of 0xffff.
/// Since 2^16 is 1 modulo 0xffff, neither the width of the words nor the
/// fold changes a sum's remainder modulo 0xffff, and a sum other than zero
/// folds to a value in 1..=0xffff: to 0xffff exactly when it is a
/// multiple.
#[inline(always)]
fn fixed_header_checksum_ok(h: &[u8; 20]) -> bool {
    let word = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&h[at..at + 8]);
        u64::from_ne_bytes(bytes)
    };
    let last = u64::from(u32::from_ne_bytes([h[16], h[17], h[18], h[19]]));
    let (sum, carry) = word(0).overflowing_add(word(8));
    // No overflow: `last` is below 2^32.
    let (sum, carry) = sum.overflowing_add(last + u64::from(carry));
    // No overflow: with a carry, `sum` is below 2^32.
    let sum = sum + u64::from(carry);
    // `sum % 0xffff == 0` as one multiply: by the inverse of 0xffff modulo
    // 2^64, the multiples of 0xffff (and only they) land at or below
    // u64::MAX / 0xffff.
    sum != 0 && sum.wrapping_mul(INVERSE_OF_FFFF) <= u64::MAX / 0xffff
}

/// Reads an IP packet of the family `N` at the start of `buf`: its header
/// checked (lengths, the IPv4 header checksum, the IPv6 extension chain),
/// its transport header present unless it is a later fragment.
#[inline(always)]
pub(crate) fn parse<const N: usize>(buf: &[u8]) -> Result<Parsed<N>, DropReason> {
    let (l4, end, proto, frag) = if is_v4::<N>() {
        let ip = ipv4::Packet::new_checked(buf).map_err(|_| DropReason::BadPacket)?;
        let header_len = ip.header_len();
        if !header_checksum_ok(buf.get(..header_len).unwrap_or_default()) {
            return Err(DropReason::BadIpChecksum);
        }
        let Some(h) = buf.first_chunk::<20>() else { return Err(DropReason::BadPacket) };
        let flags_offset = u16::from_be_bytes([h[6], h[7]]);
        let ident = u32::from(u16::from_be_bytes([h[4], h[5]]));
        let frag = if flags_offset & 0x1fff != 0 {
            Frag::Later { ident }
        } else if flags_offset & 0x2000 != 0 {
            Frag::First { ident }
        } else {
            Frag::Whole
        };
        (header_len, usize::from(u16::from_be_bytes([h[2], h[3]])), h[9], frag)
    } else {
        let ip = ipv6::Packet::new_checked(buf).map_err(|_| DropReason::BadPacket)?;
        let (offset, proto, frag) = walk_v6(ip.next_header(), ip.payload())?;
        (ipv6::HEADER_LEN + offset, ipv6::HEADER_LEN + usize::from(ip.payload_len()), proto, frag)
    };
    let (src_at, dst_at) = addr_offsets::<N>();
    let mut tuple = Tuple { src: get_addr(buf, src_at), dst: get_addr(buf, dst_at), sport: 0, dport: 0 };
    let mut kind = Kind::Other;
    if !matches!(frag, Frag::Later { .. }) {
        let segment = buf.get(l4..end).ok_or(DropReason::BadPacket)?;
        kind = transport::<N>(proto, segment, &mut tuple, false)?;
    }
    Ok(Parsed { tuple, proto, l4, end, frag, kind })
}

/// How many bytes [`parse_lean`] and [`rewrite_lean`] see of a packet: an
/// IPv4 header without options and the fixed part of a TCP header.
pub(crate) const LEAN_LEN: usize = 40;

/// Reads the common IPv4 packet at fixed offsets of its first
/// [`LEAN_LEN`] bytes (`len`: the whole buffer's length): IHL 5, not a
/// fragment, TCP (any data offset that fits) or UDP, its lengths holding
/// together and its header checksum right. For such a packet it returns
/// what [`parse`] returns; for anything else `None`, and [`parse`] decides
/// (a bad header checksum among them: it is dropped there).
#[inline(always)]
pub(crate) fn parse_lean(h: &[u8; LEAN_LEN], len: usize) -> Option<Parsed<4>> {
    let end = usize::from(u16::from_be_bytes([h[2], h[3]]));
    // More Fragments or an offset: not whole. Don't Fragment may be set.
    if h[0] != 0x45 || u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 || end > len {
        return None;
    }
    match h[9] {
        TCP => {
            // The segment holds the header its data offset claims.
            let header_len = usize::from(h[32] >> 4) * 4;
            if header_len < 20 || 20 + header_len > end {
                return None;
            }
        }
        UDP if end >= 28 => {}
        _ => return None,
    }
    if !fixed_header_checksum_ok(h.first_chunk::<20>()?) {
        return None;
    }
    Some(lean_parsed(h))
}

/// What [`parse_lean`] returns for a packet it accepted, read again
/// without the checks: for the general path to take over from the lean one
/// without keeping the read in memory.
#[inline(always)]
pub(crate) fn lean_parsed(h: &[u8; LEAN_LEN]) -> Parsed<4> {
    let tuple = Tuple {
        src: [h[12], h[13], h[14], h[15]],
        dst: [h[16], h[17], h[18], h[19]],
        sport: u16::from_be_bytes([h[20], h[21]]),
        dport: u16::from_be_bytes([h[22], h[23]]),
    };
    let kind = if h[9] == TCP { Kind::Tcp { flags: h[33] } } else { Kind::Udp };
    let end = usize::from(u16::from_be_bytes([h[2], h[3]]));
    Parsed { tuple, proto: h[9], l4: 20, end, frag: Frag::Whole, kind }
}

/// The key words of a packet [`parse_lean`] read: its addresses as
/// [`Tuple::addr_word`] gives them, its ports big-endian (the source port
/// high: [`Tuple::port_word_low`] rotated by 16 bits).
#[inline(always)]
pub(crate) fn lean_key(h: &[u8; LEAN_LEN]) -> (u64, u32) {
    let addrs = u64::from_le_bytes([h[12], h[13], h[14], h[15], h[16], h[17], h[18], h[19]]);
    (addrs, u32::from_be_bytes([h[20], h[21], h[22], h[23]]))
}

/// [`rewrite_tracked`] for a packet [`parse_lean`] read (`udp`: its
/// protocol is UDP), at fixed offsets.
#[inline(always)]
pub(crate) fn rewrite_lean(h: &mut [u8; LEAN_LEN], udp: bool, new: &Tuple<4>, deltas: Deltas) {
    h[12..16].copy_from_slice(&new.src);
    h[16..20].copy_from_slice(&new.dst);
    let mut ip = [h[10], h[11]];
    update(&mut ip, Delta(u64::from(deltas.addrs)), false);
    h[10..12].copy_from_slice(&ip);
    h[20..24].copy_from_slice(&(u32::from(new.sport) << 16 | u32::from(new.dport)).to_be_bytes());
    update_lean_transport(h, udp, deltas);
}

/// The transport checksum of a lean packet updated by `deltas`: each
/// protocol's at its constant offset, one load and one store.
#[inline(always)]
fn update_lean_transport(h: &mut [u8; LEAN_LEN], udp: bool, deltas: Deltas) {
    let delta = Delta(u64::from(deltas.transport));
    let at = if udp { 26 } else { 36 };
    let mut transport = [h[at], h[at + 1]];
    update(&mut transport, delta, udp);
    h[at..at + 2].copy_from_slice(&transport);
}

/// [`rewrite_lean`] for a packet whose source address alone changes, to
/// `src` (`deltas`: [`Deltas::of_source_change`]'s first).
#[inline(always)]
pub(crate) fn rewrite_lean_source(h: &mut [u8; LEAN_LEN], udp: bool, src: &[u8; 4], deltas: Deltas) {
    h[12..16].copy_from_slice(src);
    let mut ip = [h[10], h[11]];
    update(&mut ip, Delta(u64::from(deltas.addrs)), false);
    h[10..12].copy_from_slice(&ip);
    update_lean_transport(h, udp, deltas);
}

/// How many bytes of a packet [`parse_lean6`] needs at least: the IPv6
/// header and a UDP header (TCP: the 20 bytes of its fixed header too).
pub(crate) const LEAN6_LEN: usize = 48;

/// Reads the common IPv6 packet at fixed offsets: no extension header, TCP
/// without SYN, FIN or RST (any data offset that fits) or UDP, its payload
/// length within the buffer. For such a packet it returns the protocol and
/// the key as words straight from the packet: the addresses as
/// [`Tuple::addr_words`] gives them and the ports read big-endian (the
/// source port high), what [`Hasher::v6`](super::table::Hasher::v6) takes.
/// For anything else `None`, and [`parse`] decides.
#[inline(always)]
pub(crate) fn parse_lean6(buf: &[u8]) -> Option<(u8, [u64; 4], u32)> {
    let h = buf.first_chunk::<LEAN6_LEN>()?;
    let end = ipv6::HEADER_LEN + usize::from(u16::from_be_bytes([h[4], h[5]]));
    if h[0] >> 4 != 6 || end > buf.len() {
        return None;
    }
    match h[6] {
        TCP => {
            let (&offset, &flags) = (buf.get(52)?, buf.get(53)?);
            let header_len = usize::from(offset >> 4) * 4;
            if header_len < 20 || ipv6::HEADER_LEN + header_len > end || flags & state::TH_CONTROL != 0 {
                return None;
            }
        }
        UDP if end >= LEAN6_LEN => {}
        _ => return None,
    }
    let word = |at: usize| {
        u64::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3], h[at + 4], h[at + 5], h[at + 6], h[at + 7]])
    };
    let ports = u32::from_be_bytes([h[40], h[41], h[42], h[43]]);
    Some((h[6], [word(8), word(16), word(24), word(32)], ports))
}

/// [`rewrite_tracked`] for a packet [`parse_lean6`] read (`udp`: its
/// protocol is UDP), at fixed offsets: its tuple becomes the inverse of
/// `other`, the tuple of the other direction.
#[inline(always)]
pub(crate) fn rewrite_lean6(buf: &mut [u8], udp: bool, other: &Tuple<16>, deltas: Deltas) {
    let Some(h) = buf.first_chunk_mut::<LEAN6_LEN>() else { return };
    h[8..24].copy_from_slice(&other.dst);
    h[24..40].copy_from_slice(&other.src);
    h[40..44].copy_from_slice(&(u32::from(other.dport) << 16 | u32::from(other.sport)).to_be_bytes());
    if let Some(checksum) = field(buf, if udp { 46 } else { 56 }) {
        update(checksum, Delta(u64::from(deltas.transport)), udp);
    }
}

/// What a burst's first pass needs of a TCP or UDP packet, read without
/// checking anything: its protocol, tuple and TCP flags (zero for UDP).
/// `None` for other packets, later fragments, IPv6 with extension headers
/// and anything too short. What it returns is a guess to start loading
/// memory by, never a reason to act: [`parse`] decides.
#[inline(always)]
pub(crate) fn peek<const N: usize>(buf: &[u8]) -> Option<(u8, Tuple<N>, u8)> {
    let (l4, proto) = if is_v4::<N>() {
        let h = buf.first_chunk::<20>()?;
        if u16::from_be_bytes([h[6], h[7]]) & 0x1fff != 0 {
            return None;
        }
        (usize::from(h[0] & 0x0f) * 4, h[9])
    } else {
        (ipv6::HEADER_LEN, *buf.get(6)?)
    };
    if proto != TCP && proto != UDP {
        return None;
    }
    let (src_at, dst_at) = addr_offsets::<N>();
    let ports = buf.get(l4..)?.first_chunk::<4>()?;
    let tuple = Tuple {
        src: get_addr(buf, src_at),
        dst: get_addr(buf, dst_at),
        sport: u16::from_be_bytes([ports[0], ports[1]]),
        dport: u16::from_be_bytes([ports[2], ports[3]]),
    };
    let flags = if proto == TCP { buf.get(l4 + 13).copied().unwrap_or(0) } else { 0 };
    Some((proto, tuple, flags))
}

/// Walks an IPv6 extension chain: where the upper layer starts (in the
/// payload), its protocol, and the fragment header's meaning.
fn walk_v6(first: IpProtocol, payload: &[u8]) -> Result<(usize, u8, Frag), DropReason> {
    if !first.is_ipv6_extension() {
        return Ok((0, u8::from(first), Frag::Whole));
    }
    let mut walk = ipv6::ExtHeaders::new(first, payload);
    let mut frag = Frag::Whole;
    for header in walk.by_ref() {
        let (kind, bytes) = header.map_err(|_| DropReason::BadPacket)?;
        match kind {
            // Segments left: the final destination is in the routing header.
            IpProtocol::Ipv6Route if bytes.get(3).is_some_and(|&left| left != 0) => {
                return Err(DropReason::Unsupported)
            }
            IpProtocol::Ipv6Frag => {
                let header = ipv6::FragmentHeader::new_checked(bytes).map_err(|_| DropReason::BadPacket)?;
                let ident = header.ident();
                frag = if header.frag_offset() != 0 {
                    Frag::Later { ident }
                } else if header.more_frags() {
                    Frag::First { ident }
                } else {
                    Frag::Whole
                };
            }
            _ => {}
        }
    }
    Ok((walk.offset(), u8::from(walk.next_header()), frag))
}

/// Reads the transport header of `segment` into `tuple`'s ports. `quoted`:
/// the segment is the start of a packet quoted in an ICMP error, of which
/// only the ports (or the echo header) are needed.
#[inline(always)]
fn transport<const N: usize>(
    proto: u8,
    segment: &[u8],
    tuple: &mut Tuple<N>,
    quoted: bool,
) -> Result<Kind, DropReason> {
    let ports = |tuple: &mut Tuple<N>, s: &[u8; 4]| {
        tuple.sport = u16::from_be_bytes([s[0], s[1]]);
        tuple.dport = u16::from_be_bytes([s[2], s[3]]);
    };
    match proto {
        TCP if quoted => {
            let s = segment.first_chunk::<4>().ok_or(DropReason::BadTransport)?;
            ports(tuple, s);
            Ok(Kind::Tcp { flags: segment.get(13).copied().unwrap_or(0) })
        }
        TCP => {
            // The fixed header, and the options its data offset claims.
            let s = segment.first_chunk::<20>().ok_or(DropReason::BadTransport)?;
            let header_len = usize::from(s[12] >> 4) * 4;
            if header_len < 20 || header_len > segment.len() {
                return Err(DropReason::BadTransport);
            }
            ports(tuple, s.first_chunk::<4>().unwrap_or(&[0; 4]));
            Ok(Kind::Tcp { flags: s[13] })
        }
        UDP => {
            let need = if quoted { 4 } else { 8 };
            if segment.len() < need {
                return Err(DropReason::BadTransport);
            }
            ports(tuple, segment.first_chunk::<4>().ok_or(DropReason::BadTransport)?);
            Ok(Kind::Udp)
        }
        p if p == icmp_proto::<N>() => {
            let s = segment.first_chunk::<8>().ok_or(DropReason::BadTransport)?;
            let msg_type = s[0];
            let (request, reply, error) = if is_v4::<N>() {
                (msg_type == 8, msg_type == 0, matches!(msg_type, 3 | 11 | 12))
            } else {
                (msg_type == 128, msg_type == 129, matches!(msg_type, 1..=4))
            };
            let ident = u16::from_be_bytes([s[4], s[5]]);
            if request {
                tuple.sport = ident;
                Ok(Kind::Echo { request: true })
            } else if reply {
                tuple.dport = ident;
                Ok(Kind::Echo { request: false })
            } else if error {
                Ok(Kind::IcmpError)
            } else {
                Ok(Kind::IcmpOther { link_local: !is_v4::<N>() && (130..=143).contains(&msg_type) })
            }
        }
        _ => Ok(Kind::Other),
    }
}

/// A running RFC 1624 update: the one's-complement sum of `~old + new` over
/// every field changed, in native byte order (RFC 1071 §2(B): the sum
/// commutes with byte swapping, so no word needs swapping).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Delta(u64);

impl Delta {
    /// A 16-bit field (given in host order) changes from `old` to `new`.
    #[inline(always)]
    pub(crate) fn word(&mut self, old: u16, new: u16) {
        self.0 += u64::from(!old.to_be()) + u64::from(new.to_be());
    }

    /// An address (4 or 16 bytes on a 32-bit boundary of the checksummed
    /// data) changes.
    #[inline(always)]
    pub(crate) fn addr<const N: usize>(&mut self, old: &[u8; N], new: &[u8; N]) {
        // The complement of a sum of N/4 words is the sum of their
        // complements, minus N/4 negative zeros (0xffffffff each).
        let words_in = (N / 4) as u64;
        self.0 += words_in * 0xffff_ffff - words(old) + words(new);
    }

    /// The checksum field holding `field` (its two bytes as they are in the
    /// packet) after the changes (RFC 1624 eqn. 3).
    #[inline(always)]
    fn apply_bytes(self, field: [u8; 2]) -> [u8; 2] {
        (!checksum::add(!u16::from_ne_bytes(field), checksum::fold(self.0))).to_ne_bytes()
    }

    /// The checksum field value (host order) after the changes.
    #[cfg(test)]
    pub(crate) fn apply(self, checksum: u16) -> u16 {
        u16::from_be_bytes(self.apply_bytes(checksum.to_be_bytes()))
    }
}

/// The checksum changes of rewriting one direction of a TCP or UDP
/// connection, folded once when the connection is made so that a packet
/// costs one addition per checksum: `addrs` for the IPv4 header checksum
/// (the addresses), `transport` for the TCP or UDP checksum (its
/// pseudo-header's addresses and the ports).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Deltas {
    addrs: u16,
    transport: u16,
}

impl Deltas {
    /// The changes of both directions of a connection whose packets carry
    /// `orig` one way and `reply` the other: `[ORIG, REPLY]`, as
    /// [`Deltas::between`] gives them.
    #[inline(always)]
    pub(crate) fn of_connection<const N: usize>(orig: &Tuple<N>, reply: &Tuple<N>) -> [Deltas; 2] {
        let (addrs, transport) = Deltas::sums(orig, &reply.inverse());
        // The reply direction changes every field back: each changed word
        // adds `!old + new` one way and `!new + old` the other, which sum to
        // all ones, so its sums are those constants less the original's
        // (the same integers a direct sum gives).
        let addr_words = 2 * (N / 4) as u64;
        let back_addrs = addr_words * 2 * 0xffff_ffff - addrs.0;
        let back_transport = addr_words * 2 * 0xffff_ffff + 2 * 0xffff - transport.0;
        [Deltas::fold(addrs, transport), Deltas::fold(Delta(back_addrs), Delta(back_transport))]
    }

    /// [`Deltas::of_connection`] for a connection whose original packets
    /// change their IPv4 source address alone, from `old` to `new` (a
    /// masquerade that keeps the port), with one fold instead of four.
    ///
    /// There the sums are: `addrs` (the source's `!old + new`, plus all
    /// ones for the unchanged destination, so above zero); `transport`,
    /// `addrs` plus all ones for each unchanged port; and the reply
    /// direction's two, both `4 * 0xffff_ffff - addrs` (above zero). A
    /// sum above zero folds to the one value in 1..=0xffff of its residue
    /// modulo 0xffff, which adding all ones does not change: so
    /// `transport` folds as `addrs` does, to `f`, and the reply's sums to
    /// the value of residue `-f`: `!f`, or 0xffff for `f` 0xffff.
    #[inline(always)]
    pub(crate) fn of_source_change(old: &[u8; 4], new: &[u8; 4]) -> [Deltas; 2] {
        let mut addrs = Delta::default();
        addrs.addr(old, new);
        let f = checksum::fold(addrs.0 + 0xffff_ffff);
        let back = if f == 0xffff { f } else { !f };
        [Deltas { addrs: f, transport: f }, Deltas { addrs: back, transport: back }]
    }

    /// The changes of rewriting a TCP or UDP packet with tuple `old` to
    /// carry `new`.
    #[cfg(test)]
    pub(crate) fn between<const N: usize>(old: &Tuple<N>, new: &Tuple<N>) -> Deltas {
        let (addrs, transport) = Deltas::sums(old, new);
        Deltas::fold(addrs, transport)
    }

    #[inline(always)]
    fn sums<const N: usize>(old: &Tuple<N>, new: &Tuple<N>) -> (Delta, Delta) {
        let mut addrs = Delta::default();
        addrs.addr(&old.src, &new.src);
        addrs.addr(&old.dst, &new.dst);
        let mut transport = addrs;
        transport.word(old.sport, new.sport);
        transport.word(old.dport, new.dport);
        (addrs, transport)
    }

    #[inline(always)]
    fn fold(addrs: Delta, transport: Delta) -> Deltas {
        Deltas { addrs: checksum::fold(addrs.0), transport: checksum::fold(transport.0) }
    }
}

/// Updates the checksum in `field` by `delta`. A UDP checksum (`udp`) of
/// zero is left alone, and a result of zero is written as 0xffff.
#[inline(always)]
fn update(field: &mut [u8; 2], delta: Delta, udp: bool) {
    if udp && *field == [0, 0] {
        return;
    }
    let new = delta.apply_bytes(*field);
    *field = if udp && new == [0, 0] { [0xff, 0xff] } else { new };
}

/// The two bytes at `at..at + 2` of `bytes`, if there.
#[inline(always)]
fn field(bytes: &mut [u8], at: usize) -> Option<&mut [u8; 2]> {
    bytes.get_mut(at..)?.first_chunk_mut::<2>()
}

/// Rewrites the packet `p` describes to carry `new` (addresses, and ports
/// or the echo identifier), fixing every checksum that covers them.
#[inline(always)]
pub(crate) fn rewrite<const N: usize>(buf: &mut [u8], p: &Parsed<N>, new: &Tuple<N>) {
    let mut addrs = Delta::default();
    addrs.addr(&p.tuple.src, &new.src);
    addrs.addr(&p.tuple.dst, &new.dst);
    write_addrs(buf, &addrs, new);
    if matches!(p.frag, Frag::Later { .. }) {
        return;
    }
    if let Some(segment) = buf.get_mut(p.l4..p.end) {
        rewrite_transport(segment, p.kind, &p.tuple, new, addrs);
    }
}

/// Rewrites the TCP or UDP packet `p` describes to carry `new`, as
/// [`rewrite`] does, with the checksum changes computed beforehand
/// (`deltas`: [`Deltas::between`] the packet's tuple and `new`). Other
/// packets are rewritten by [`rewrite`].
#[inline(always)]
pub(crate) fn rewrite_tracked<const N: usize>(buf: &mut [u8], p: &Parsed<N>, new: &Tuple<N>, deltas: Deltas) {
    let udp = match p.kind {
        Kind::Tcp { .. } => false,
        Kind::Udp => true,
        _ => return rewrite(buf, p, new),
    };
    write_addrs(buf, &Delta(u64::from(deltas.addrs)), new);
    if matches!(p.frag, Frag::Later { .. }) {
        return;
    }
    let Some(segment) = buf.get_mut(p.l4..p.end) else { return };
    let Some(ports) = segment.first_chunk_mut::<4>() else { return };
    ports[..2].copy_from_slice(&new.sport.to_be_bytes());
    ports[2..].copy_from_slice(&new.dport.to_be_bytes());
    if let Some(checksum) = field(segment, if udp { 6 } else { 16 }) {
        update(checksum, Delta(u64::from(deltas.transport)), udp);
    }
}

/// Writes the addresses of `new` into the IP header at the start of `buf`,
/// and updates the IPv4 header checksum by `addrs`.
#[inline(always)]
fn write_addrs<const N: usize>(buf: &mut [u8], addrs: &Delta, new: &Tuple<N>) {
    if is_v4::<N>() {
        let Some(h) = buf.first_chunk_mut::<20>() else { return };
        h[12..12 + N].copy_from_slice(&new.src);
        h[16..16 + N].copy_from_slice(&new.dst);
        let mut checksum = [h[10], h[11]];
        update(&mut checksum, *addrs, false);
        h[10..12].copy_from_slice(&checksum);
    } else {
        let Some(h) = buf.first_chunk_mut::<40>() else { return };
        h[8..8 + N].copy_from_slice(&new.src);
        h[24..24 + N].copy_from_slice(&new.dst);
    }
}

/// Rewrites the ports (or identifier) of the transport header that starts
/// `segment` from `old` to `new` and updates its checksum by them and by
/// `addrs` (the pseudo-header's change); a checksum beyond the segment (in
/// a quoted packet cut short) is left alone.
#[inline(always)]
fn rewrite_transport<const N: usize>(segment: &mut [u8], kind: Kind, old: &Tuple<N>, new: &Tuple<N>, addrs: Delta) {
    match kind {
        Kind::Tcp { .. } | Kind::Udp => {
            let udp = kind == Kind::Udp;
            let Some(ports) = segment.first_chunk_mut::<4>() else { return };
            ports[..2].copy_from_slice(&new.sport.to_be_bytes());
            ports[2..].copy_from_slice(&new.dport.to_be_bytes());
            let mut delta = addrs;
            delta.word(old.sport, new.sport);
            delta.word(old.dport, new.dport);
            if let Some(checksum) = field(segment, if udp { 6 } else { 16 }) {
                update(checksum, delta, udp);
            }
        }
        Kind::Echo { request } => {
            let (before, after) = if request { (old.sport, new.sport) } else { (old.dport, new.dport) };
            let Some(header) = segment.first_chunk_mut::<6>() else { return };
            header[4..6].copy_from_slice(&after.to_be_bytes());
            // ICMP's checksum covers no pseudo-header: with the identifier
            // kept, none of its bytes change, and the field must not either.
            // (Adding a change of zero, 0xffff in one's complement, would
            // turn the 0xffff of an all-zero echo reply into 0x0000, which
            // does not verify.) ICMPv6's covers the addresses.
            if is_v4::<N>() && before == after {
                return;
            }
            let mut delta = if is_v4::<N>() { Delta::default() } else { addrs };
            delta.word(before, after);
            let Some(checksum) = field(segment, 2) else { return };
            update(checksum, delta, false);
            // An incremental update gives 0x0000 where the sum it changes
            // becomes zero; that is right unless every byte of the message
            // is zero (an echo reply whose identifier became 0, with a zero
            // sequence number and payload), whose checksum is 0xffff. An
            // ICMPv6 sum covers the addresses, never all zero.
            if is_v4::<N>() && *checksum == [0, 0] && segment.iter().all(|&b| b == 0) {
                segment[2..4].copy_from_slice(&[0xff, 0xff]);
            }
        }
        _ => {}
    }
}

/// The packet quoted in an ICMP error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Quoted<const N: usize> {
    /// Where its IP header starts.
    at: usize,
    /// Where its transport header starts.
    l4: usize,
    /// The end of the ICMP message.
    end: usize,
    /// Its addresses and ports as quoted.
    pub(crate) tuple: Tuple<N>,
    pub(crate) proto: u8,
    kind: Kind,
}

/// Reads the packet quoted in the ICMP error `p` describes: its IP header
/// whole, and at least its ports (TCP, UDP) or echo header (ICMP). An error
/// quoting an error, a later fragment or another protocol is refused.
pub(crate) fn parse_quoted<const N: usize>(buf: &[u8], p: &Parsed<N>) -> Result<Quoted<N>, DropReason> {
    let at = p.l4 + 8;
    let quote = buf.get(at..p.end).ok_or(DropReason::BadIcmpError)?;
    let (ip_len, proto) = if is_v4::<N>() {
        let ip = ipv4::Packet::new_quoted(quote).map_err(|_| DropReason::BadIcmpError)?;
        if ip.frag_offset() != 0 {
            return Err(DropReason::BadIcmpError);
        }
        (ip.header_len(), u8::from(ip.next_header()))
    } else {
        let ip = ipv6::Packet::new_quoted(quote).map_err(|_| DropReason::BadIcmpError)?;
        let (offset, proto, frag) = walk_v6(ip.next_header(), ip.payload()).map_err(|_| DropReason::BadIcmpError)?;
        if matches!(frag, Frag::Later { .. }) {
            return Err(DropReason::BadIcmpError);
        }
        (ipv6::HEADER_LEN + offset, proto)
    };
    let (src_at, dst_at) = addr_offsets::<N>();
    let mut tuple = Tuple { src: get_addr(quote, src_at), dst: get_addr(quote, dst_at), sport: 0, dport: 0 };
    let segment = quote.get(ip_len..).ok_or(DropReason::BadIcmpError)?;
    let kind = transport::<N>(proto, segment, &mut tuple, true).map_err(|_| DropReason::BadIcmpError)?;
    match kind {
        Kind::Tcp { .. } | Kind::Udp | Kind::Echo { .. } => {}
        _ => return Err(DropReason::BadIcmpError),
    }
    Ok(Quoted { at, l4: at + ip_len, end: p.end, tuple, proto, kind })
}

/// Rewrites an ICMP error: the outer addresses to `outer`, the quoted
/// packet's addresses and ports to `quoted`, with the quoted packet's IPv4
/// header checksum and transport checksum (when quoted), the ICMP checksum
/// and the outer IPv4 header checksum updated.
pub(crate) fn rewrite_error<const N: usize>(
    buf: &mut [u8],
    p: &Parsed<N>,
    q: &Quoted<N>,
    outer: &Tuple<N>,
    quoted: &Tuple<N>,
) {
    // The bytes of the quote that change: its IP header and the transport
    // bytes up to the checksum.
    let touched = match q.kind {
        Kind::Tcp { .. } => 18,
        _ => 8,
    };
    let region_end = (q.l4 + touched).min(q.end);
    let before = buf.get(q.at..region_end).map_or(0, checksum::sum);
    if let Some(quote) = buf.get_mut(q.at..q.end) {
        let mut addrs = Delta::default();
        addrs.addr(&q.tuple.src, &quoted.src);
        addrs.addr(&q.tuple.dst, &quoted.dst);
        write_addrs(quote, &addrs, quoted);
        if let Some(segment) = quote.get_mut(q.l4 - q.at..) {
            rewrite_transport(segment, q.kind, &q.tuple, quoted, addrs);
        }
    }
    let after = buf.get(q.at..region_end).map_or(0, checksum::sum);

    let mut outer_addrs = Delta::default();
    outer_addrs.addr(&p.tuple.src, &outer.src);
    outer_addrs.addr(&p.tuple.dst, &outer.dst);
    let mut icmp = if is_v4::<N>() { Delta::default() } else { outer_addrs };
    icmp.word(before, after);
    if let Some(checksum) = field(buf, p.l4 + 2) {
        update(checksum, icmp, false);
    }
    write_addrs(buf, &outer_addrs, outer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_matches_update16() {
        let words = [(0x1234u16, 0xabcdu16), (0xffff, 0x0000), (0x0000, 0xffff), (0x5555, 0x3285)];
        for checksum in [0u16, 1, 0x7fff, 0xdd2f, 0xfffe, 0xffff] {
            let mut delta = Delta::default();
            let mut chained = checksum;
            for &(old, new) in &words {
                delta.word(old, new);
                chained = checksum::update16(chained, old, new);
            }
            let got = delta.apply(checksum);
            // Equal as one's-complement numbers (0x0000 and 0xffff are one).
            assert_eq!(got % 0xffff, chained % 0xffff, "{checksum:#x}");
        }
        // RFC 1624 §4.
        let mut delta = Delta::default();
        delta.word(0x5555, 0x3285);
        assert_eq!(delta.apply(0xdd2f), 0x0000);
        // No change, no effect.
        let mut same = Delta::default();
        same.addr(&[1, 2, 3, 4], &[1, 2, 3, 4]);
        assert_eq!(same.apply(0x1234), 0x1234);
    }

    #[test]
    fn connection_deltas_are_each_directions_own() {
        let v4 = |a: u8, b: u8, sport: u16, dport: u16| Tuple::<4> {
            src: [10, 0, a, 1],
            dst: [203, 0, 113, b],
            sport,
            dport,
        };
        let cases = [
            (v4(0, 10, 40000, 443), v4(7, 10, 443, 61000)),
            (v4(0, 0, 0, 0), v4(255, 255, 65535, 65535)),
            (v4(1, 2, 3, 4), v4(1, 2, 3, 4)),
        ];
        for (orig, reply) in cases {
            let both = Deltas::of_connection(&orig, &reply);
            assert_eq!(both[0], Deltas::between(&orig, &reply.inverse()));
            assert_eq!(both[1], Deltas::between(&reply, &orig.inverse()));
        }
        // A source address change alone, as a masquerade that keeps the
        // port makes it: the same deltas by the shorter sum.
        for (orig, reply) in cases {
            let out = reply.dst;
            let reply = Tuple { src: orig.dst, dst: out, sport: orig.dport, dport: orig.sport };
            assert_eq!(Deltas::of_source_change(&orig.src, &out), Deltas::of_connection(&orig, &reply));
        }
        let mut pairs = vec![([0u8; 4], [0xffu8; 4]), ([0xff; 4], [0; 4]), ([0; 4], [0; 4]), ([0xff; 4], [0xff; 4])];
        // Pairs whose change sums to each residue, 0xffff among them.
        pairs.extend((0..=0xffffu32).map(|n| ([0, 0, 0, 0], (n << 8).to_be_bytes())));
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            pairs.push(((x as u32).to_ne_bytes(), ((x >> 32) as u32).to_ne_bytes()));
        }
        for (a, x) in pairs {
            for (sport, dport) in [(0xffffu16, 0u16), (40000, 443), (0, 0)] {
                let orig = Tuple::<4> { src: a, dst: [0xff, 0, 0xff, 0], sport, dport };
                let reply = Tuple { src: orig.dst, dst: x, sport: orig.dport, dport: orig.sport };
                assert_eq!(Deltas::of_source_change(&a, &x), Deltas::of_connection(&orig, &reply), "{a:?} {x:?}");
            }
        }
        let orig = Tuple::<16> { src: [0xfd; 16], dst: [0x20; 16], sport: 1, dport: 2 };
        let reply = Tuple::<16> { src: [0x20; 16], dst: [0x30; 16], sport: 2, dport: 9 };
        let both = Deltas::of_connection(&orig, &reply);
        assert_eq!(both, [Deltas::between(&orig, &reply.inverse()), Deltas::between(&reply, &orig.inverse())]);
    }

    #[test]
    fn header_checksum_matches_the_wire_layer() {
        let mut header =
            [0x45u8, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7];
        assert!(header_checksum_ok(&header));
        for i in 0..header.len() {
            for bit in 0..8 {
                header[i] ^= 1 << bit;
                let wire = ipv4::Packet::new_unchecked(&header[..]).verify_checksum();
                assert_eq!(header_checksum_ok(&header), wire, "byte {i} bit {bit}");
                assert_eq!(fixed_header_checksum_ok(&header), wire, "byte {i} bit {bit}");
                header[i] ^= 1 << bit;
            }
        }
    }

    #[test]
    fn the_fixed_header_checksum_agrees_on_any_header() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut headers = vec![[0u8; 20], [0xff; 20]];
        for n in 0..20_000 {
            let mut h = [0u8; 20];
            for byte in &mut h {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mostly the extremes, where carries pile up.
                *byte = match x % 4 {
                    0 => 0,
                    1 => 0xff,
                    _ => (x >> 8) as u8,
                };
            }
            // IHL 5, as the wire layer's length for the sum.
            h[0] = h[0] & 0xf0 | 5;
            if n % 2 == 0 {
                ipv4::Packet::new_unchecked(&mut h[..]).fill_checksum();
            }
            headers.push(h);
        }
        assert_eq!(0xffffu64.wrapping_mul(INVERSE_OF_FFFF), 1, "not the inverse of 0xffff");
        for h in headers {
            let wire = ipv4::Packet::new_unchecked(&h[..]).verify_checksum();
            assert_eq!(fixed_header_checksum_ok(&h), wire, "{h:02x?}");
            assert_eq!(header_checksum_ok(&h), wire, "{h:02x?}");
        }
    }

    #[test]
    fn short_and_odd_buffers_do_not_panic() {
        for len in 0..80 {
            let mut buf = vec![0x45u8; len];
            let _ = parse::<4>(&buf);
            let _ = parse::<16>(&buf);
            let p = Parsed::<4> {
                tuple: Tuple::default(),
                proto: TCP,
                l4: 20,
                end: len,
                frag: Frag::Whole,
                kind: Kind::Tcp { flags: 0 },
            };
            rewrite(&mut buf, &p, &Tuple { src: [1; 4], dst: [2; 4], sport: 3, dport: 4 });
            let _ = parse_quoted(&buf, &p);
        }
    }
}
