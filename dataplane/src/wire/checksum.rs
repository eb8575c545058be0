//! The Internet checksum (RFC 1071): the one's-complement sum, the IPv4 and
//! IPv6 pseudo-headers, and the incremental update of RFC 1624 that NAT uses
//! when it rewrites an address or a port.
//!
//! Sums here are *folded but not complemented*: the value written into a
//! checksum field is `!sum`. [`update16`] and friends take and return the
//! field's value itself.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::IpProtocol;

/// Folds a wide accumulator into 16 bits with end-around carry (RFC 1071
/// §2(B)): summed native-order words give the native-order value of the
/// big-endian sum.
#[inline(always)]
pub(crate) fn fold(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// The folded one's-complement sum of `data` taken as big-endian 16-bit
/// words; an odd trailing byte is padded with zero.
///
/// Words are summed four bytes at a time in native byte order and swapped
/// once at the end, which RFC 1071 §2(B) shows gives the same result.
pub fn sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(32);
    for chunk in &mut chunks {
        for word in chunk.chunks_exact(4) {
            acc += u64::from(u32::from_ne_bytes([word[0], word[1], word[2], word[3]]));
        }
    }
    let mut words = chunks.remainder().chunks_exact(4);
    for word in &mut words {
        acc += u64::from(u32::from_ne_bytes([word[0], word[1], word[2], word[3]]));
    }
    let mut tail = words.remainder();
    if tail.len() >= 2 {
        acc += u64::from(u16::from_ne_bytes([tail[0], tail[1]]));
        tail = &tail[2..];
    }
    if let [last] = tail {
        acc += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    u16::from_be(fold(acc))
}

/// One's-complement addition of two folded sums.
#[inline(always)]
pub fn add(a: u16, b: u16) -> u16 {
    let (sum, carry) = a.overflowing_add(b);
    sum + u16::from(carry)
}

/// One's-complement sum of several folded sums.
pub fn combine(sums: &[u16]) -> u16 {
    sums.iter().fold(0, |acc, &s| add(acc, s))
}

/// The sum of the IPv4 pseudo-header (RFC 768, RFC 793 §3.1): source,
/// destination, zero, protocol, and the transport length.
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, length: u16) -> u16 {
    let s = src.octets();
    let d = dst.octets();
    let acc = u64::from(u16::from_be_bytes([s[0], s[1]]))
        + u64::from(u16::from_be_bytes([s[2], s[3]]))
        + u64::from(u16::from_be_bytes([d[0], d[1]]))
        + u64::from(u16::from_be_bytes([d[2], d[3]]))
        + u64::from(u8::from(protocol))
        + u64::from(length);
    fold(acc)
}

/// The sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination,
/// the upper-layer packet length, and the next header.
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: IpProtocol, length: u32) -> u16 {
    let mut acc = u64::from(length >> 16) + u64::from(length & 0xffff) + u64::from(u8::from(next_header));
    for segment in src.segments().into_iter().chain(dst.segments()) {
        acc += u64::from(segment);
    }
    fold(acc)
}

/// The pseudo-header sum for a transport segment of `length` bytes between
/// two addresses of either family: [`pseudo_header_v4`] or
/// [`pseudo_header_v6`]. `None` if the families differ or the length does
/// not fit the pseudo-header's length field (16 bits over IPv4, 32 over IPv6).
pub fn pseudo_header(src: IpAddr, dst: IpAddr, protocol: IpProtocol, length: usize) -> Option<u16> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Some(pseudo_header_v4(s, d, protocol, u16::try_from(length).ok()?)),
        (IpAddr::V6(s), IpAddr::V6(d)) => Some(pseudo_header_v6(s, d, protocol, u32::try_from(length).ok()?)),
        _ => None,
    }
}

/// RFC 1624 eqn. 3: the new value of checksum field `checksum` after a 16-bit
/// word it covers changes from `old` to `new`: `HC' = ~(~HC + ~m + m')`.
#[inline(always)]
pub fn update16(checksum: u16, old: u16, new: u16) -> u16 {
    !add(add(!checksum, !old), new)
}

/// [`update16`] for a 32-bit field (an IPv4 address, a TCP sequence number)
/// aligned on a 16-bit boundary of the checksummed data.
#[inline(always)]
pub fn update32(checksum: u16, old: u32, new: u32) -> u16 {
    // Five 16-bit terms fit a u32 with room to spare; two folds finish it.
    let acc = u32::from(!checksum) + (!old >> 16) + (!old & 0xffff) + (new >> 16) + (new & 0xffff);
    let acc = (acc & 0xffff) + (acc >> 16);
    !((acc & 0xffff) + (acc >> 16)) as u16
}

/// [`update16`] for a field of any even length aligned on a 16-bit boundary,
/// such as an IPv6 address. `old` and `new` must be of the same length; an odd
/// trailing byte is taken as the high byte of a word, as [`sum`] does.
pub fn update_bytes(checksum: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    !add(add(!checksum, !sum(old)), sum(new))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3's worked example: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0x12]), 0x1200);
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum(&[]), 0);
    }

    /// The same sum by the book, a 16-bit word at a time.
    fn reference(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for pair in data.chunks(2) {
            let word = u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]);
            acc += u32::from(word);
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn matches_reference_on_every_length_and_carry() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 151 + 7) as u8 | 0x80).collect();
        for len in 0..data.len() {
            assert_eq!(sum(&data[..len]), reference(&data[..len]), "length {len}");
        }
        let ones = [0xffu8; 257];
        for len in 0..ones.len() {
            assert_eq!(sum(&ones[..len]), reference(&ones[..len]), "length {len}");
        }
    }

    /// A captured IPv4 header (Wikipedia's "IPv4 header checksum" example):
    /// the stored checksum b861 makes the header sum to ffff.
    #[test]
    fn ipv4_header_checksum() {
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert_eq!(sum(&header), 0xffff);
        let mut zeroed = header;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(!sum(&zeroed), 0xb861);
    }

    #[test]
    fn pseudo_headers() {
        let v4 = pseudo_header_v4(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2), IpProtocol::Udp, 20);
        let mut bytes = [0u8; 12];
        bytes[0..4].copy_from_slice(&[192, 0, 2, 1]);
        bytes[4..8].copy_from_slice(&[192, 0, 2, 2]);
        bytes[9] = 17;
        bytes[10..12].copy_from_slice(&20u16.to_be_bytes());
        assert_eq!(v4, sum(&bytes));

        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::ffff:2".parse().unwrap();
        let v6 = pseudo_header_v6(src, dst, IpProtocol::Tcp, 0x0001_0004);
        let mut bytes = [0u8; 40];
        bytes[0..16].copy_from_slice(&src.octets());
        bytes[16..32].copy_from_slice(&dst.octets());
        bytes[32..36].copy_from_slice(&0x0001_0004u32.to_be_bytes());
        bytes[39] = 6;
        assert_eq!(v6, sum(&bytes));
    }

    /// Rewriting a field and updating incrementally gives the checksum that a
    /// full recomputation gives, including across the 0x0000/0xffff edge that
    /// RFC 1624 §3 is about.
    #[test]
    fn incremental_matches_full() {
        let mut data = [0u8; 24];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        let cases: [(usize, u32); 4] = [(4, 0xc633_6401), (8, 0), (12, 0xffff_ffff), (16, 0x0001_fffe)];
        for (at, new) in cases {
            let before = !sum(&data);
            let old = u32::from_be_bytes(data[at..at + 4].try_into().unwrap());
            let mut rewritten = data;
            rewritten[at..at + 4].copy_from_slice(&new.to_be_bytes());
            let full = !sum(&rewritten);
            assert_eq!(update32(before, old, new), full, "32-bit at {at}");
            assert_eq!(update_bytes(before, &data[at..at + 4], &rewritten[at..at + 4]), full, "bytes at {at}");
            let old16 = u16::from_be_bytes([data[at], data[at + 1]]);
            let new16 = (new >> 16) as u16;
            let mut rewritten16 = data;
            rewritten16[at..at + 2].copy_from_slice(&new16.to_be_bytes());
            assert_eq!(update16(before, old16, new16), !sum(&rewritten16), "16-bit at {at}");
        }
    }

    /// RFC 1624 §4's example: the header sums to 0xcd7a before the update
    /// (checksum 0xdd2f over m = 0x5555 which becomes 0x3285) and the
    /// correct updated checksum is 0x0000, not 0xffff.
    #[test]
    fn rfc1624_example() {
        assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }
}
