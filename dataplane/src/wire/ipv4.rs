//! IPv4 (RFC 791): the header view with its options, the Don't Fragment and
//! More Fragments flags and the fragment offset, and its `Repr`.
//!
//! The header checksum covers the header alone and is always complete, even
//! in frames from a TAP device with checksum offloads (offloads leave only the
//! transport checksum partial), so [`Repr::parse`] refuses a bad one. Options
//! are walked for well-formedness (RFC 791 §3.1) and carried as raw bytes;
//! none is interpreted. A datagram quoted inside an ICMP error, cut short
//! after its first bytes, is read with [`Packet::new_quoted`].
//!
//! What this module does not do: reassemble fragments, fragment, or decide
//! what a TTL of zero or an option means for forwarding.

use core::net::Ipv4Addr;

use super::{checksum, read_u16, read_u32, write_u16, Error, IpProtocol, Result};

mod field {
    use core::ops::Range;

    pub(super) const VER_IHL: usize = 0;
    pub(super) const DSCP_ECN: usize = 1;
    pub(super) const LENGTH: Range<usize> = 2..4;
    pub(super) const IDENT: Range<usize> = 4..6;
    pub(super) const FLG_OFF: Range<usize> = 6..8;
    pub(super) const TTL: usize = 8;
    pub(super) const PROTOCOL: usize = 9;
    pub(super) const CHECKSUM: Range<usize> = 10..12;
    pub(super) const SRC_ADDR: Range<usize> = 12..16;
    pub(super) const DST_ADDR: Range<usize> = 16..20;
    pub(super) const OPTIONS: usize = 20;
}

/// The length of an IPv4 header without options.
pub const HEADER_LEN: usize = field::OPTIONS;

/// The most option bytes a header can carry: IHL 15 gives 60 bytes.
pub const MAX_OPTIONS_LEN: usize = 40;

/// Don't Fragment, in the flags and fragment offset word (RFC 791 §3.1).
const FLAG_DF: u16 = 0x4000;
/// More Fragments.
const FLAG_MF: u16 = 0x2000;
/// The fragment offset, in units of 8 bytes.
const OFFSET_MASK: u16 = 0x1fff;

/// The largest fragment offset, in bytes: 0x1fff units of 8.
const MAX_FRAG_OFFSET: u16 = OFFSET_MASK * 8;

/// A view of an IPv4 packet in a buffer.
///
/// After [`Packet::new_checked`] or [`Packet::new_quoted`] succeeds, the
/// version is 4, the header length is at least 20 bytes and within the
/// buffer, the total length is at least the header length, and no getter
/// panics. Only `new_checked` also promises the total length is within the
/// buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer and checks it with [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Wraps the datagram quoted in an ICMP error and checks it with
    /// [`Packet::check_quoted`].
    pub fn new_quoted(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_quoted()?;
        Ok(packet)
    }

    /// Checks the header and the total length against the buffer:
    /// `Truncated` if the buffer is shorter than 20 bytes, than the header
    /// length or than the total length; `Malformed` if the version is not 4,
    /// the IHL is below 5, or the total length is below the header length. A
    /// buffer longer than the total length (link padding) is accepted.
    pub fn check_len(&self) -> Result<()> {
        self.check_quoted()?;
        if usize::from(self.total_len()) > self.buffer.as_ref().len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// [`Packet::check_len`] for a datagram quoted in an ICMP error (RFC 792,
    /// RFC 1812 §4.3.2.3): the header must be whole, but the total length may
    /// run past the buffer since the quote is cut short. A total length below
    /// the header length is still `Malformed`.
    pub fn check_quoted(&self) -> Result<()> {
        let buffer = self.buffer.as_ref();
        if buffer.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::Malformed);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if header_len > buffer.len() {
            return Err(Error::Truncated);
        }
        if usize::from(self.total_len()) < header_len {
            return Err(Error::Malformed);
        }
        Ok(())
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes: the IHL field times 4.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The Differentiated Services codepoint (RFC 2474), 6 bits.
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// The Explicit Congestion Notification field (RFC 3168), 2 bits.
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// The total length field: header and payload, in bytes.
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT.start)
    }

    pub fn dont_frag(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF.start) & FLAG_DF != 0
    }

    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF.start) & FLAG_MF != 0
    }

    /// The fragment offset in bytes (the field counts units of 8).
    pub fn frag_offset(&self) -> u16 {
        (read_u16(self.buffer.as_ref(), field::FLG_OFF.start) & OFFSET_MASK) * 8
    }

    /// The Time to Live field.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The Protocol field.
    #[inline(always)]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.next_header_number())
    }

    /// The Protocol field as the number on the wire: [`Packet::next_header`]
    /// without the conversion, for code that hashes or compares it per packet.
    #[inline(always)]
    pub fn next_header_number(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_u32(self.buffer.as_ref(), field::SRC_ADDR.start))
    }

    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(read_u32(self.buffer.as_ref(), field::DST_ADDR.start))
    }

    /// The option bytes, padding included: bytes 20 to the header length.
    pub fn options(&self) -> &[u8] {
        let buffer = self.buffer.as_ref();
        let end = self.header_len().clamp(HEADER_LEN, buffer.len().max(HEADER_LEN));
        buffer.get(HEADER_LEN..end).unwrap_or(&[])
    }

    /// The options, one by one (RFC 791 §3.1).
    pub fn options_iter(&self) -> OptionsIter<'_> {
        OptionsIter::new(self.options())
    }

    /// The payload, as long as the total length says (link padding cut off),
    /// or as much of it as the buffer holds for a quoted datagram.
    pub fn payload(&self) -> &[u8] {
        let buffer = self.buffer.as_ref();
        let start = self.header_len().min(buffer.len());
        let end = usize::from(self.total_len()).min(buffer.len()).max(start);
        &buffer[start..end]
    }

    /// Whether the header checksum is right.
    pub fn verify_checksum(&self) -> bool {
        let buffer = self.buffer.as_ref();
        let end = self.header_len().min(buffer.len());
        checksum::sum(&buffer[..end]) == 0xffff
    }

    /// Whether this is a fragment: More Fragments set or a nonzero offset.
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Whether this is the first fragment (or a whole datagram): the only one
    /// that carries the transport header.
    pub fn is_first_fragment(&self) -> bool {
        self.frag_offset() == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version, the high 4 bits of the first byte.
    pub fn set_version(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (value << 4);
    }

    /// Sets the IHL from a header length in bytes; it must be a multiple of 4
    /// no larger than 60 (other bits are dropped).
    pub fn set_header_len(&mut self, value: usize) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((value / 4) as u8 & 0x0f);
    }

    /// Sets the DSCP; only the low 6 bits are kept.
    pub fn set_dscp(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (value << 2);
    }

    /// Sets the ECN field; only the low 2 bits are kept.
    pub fn set_ecn(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & !0x03) | (value & 0x03);
    }

    pub fn set_total_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH.start, value)
    }

    pub fn set_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT.start, value)
    }

    fn set_flag(&mut self, flag: u16, value: bool) {
        let word = read_u16(self.buffer.as_ref(), field::FLG_OFF.start);
        let word = if value { word | flag } else { word & !flag };
        write_u16(self.buffer.as_mut(), field::FLG_OFF.start, word)
    }

    pub fn set_dont_frag(&mut self, value: bool) {
        self.set_flag(FLAG_DF, value)
    }

    pub fn set_more_frags(&mut self, value: bool) {
        self.set_flag(FLAG_MF, value)
    }

    /// Sets the fragment offset from a value in bytes; it must be a multiple
    /// of 8 (the low 3 bits are dropped).
    pub fn set_frag_offset(&mut self, value: u16) {
        let word = read_u16(self.buffer.as_ref(), field::FLG_OFF.start);
        let word = (word & !OFFSET_MASK) | ((value / 8) & OFFSET_MASK);
        write_u16(self.buffer.as_mut(), field::FLG_OFF.start, word)
    }

    /// Sets the Time to Live field.
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value
    }

    /// Sets the Protocol field.
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = value.into()
    }

    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, value)
    }

    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets())
    }

    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets())
    }

    /// The option bytes, mutable: bytes 20 to the header length.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let len = self.buffer.as_ref().len();
        let end = self.header_len().clamp(HEADER_LEN, len.max(HEADER_LEN));
        self.buffer.as_mut().get_mut(HEADER_LEN..end).unwrap_or(&mut [])
    }

    /// The payload, mutable, as [`Packet::payload`] bounds it.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.buffer.as_ref().len();
        let start = self.header_len().min(len);
        let end = usize::from(self.total_len()).min(len).max(start);
        &mut self.buffer.as_mut()[start..end]
    }

    /// Computes and writes the header checksum; call it after the last
    /// change to the header.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let buffer = self.buffer.as_ref();
        let end = self.header_len().min(buffer.len());
        let value = !checksum::sum(&buffer[..end]);
        self.set_checksum(value)
    }
}

/// One IPv4 option (RFC 791 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ipv4Option<'a> {
    /// End of Option List (type 0): the options stop here; what follows is
    /// padding.
    EndOfList,
    /// No Operation (type 1): one byte, used to align the next option.
    NoOperation,
    /// Any other option: its type byte and its data, without the type and
    /// length bytes.
    Other { kind: u8, data: &'a [u8] },
}

/// The kind of the End of Option List option.
const OPT_END: u8 = 0;
/// The kind of the No Operation option.
const OPT_NOP: u8 = 1;

/// An iterator over the options of an IPv4 header.
///
/// End of Option List is yielded once and ends the walk. An option whose
/// length byte is missing, below 2, or runs past the options yields
/// `Err(Malformed)` once and ends the walk.
#[derive(Debug, Clone)]
pub struct OptionsIter<'a> {
    data: &'a [u8],
}

impl<'a> OptionsIter<'a> {
    /// Walks the option bytes `data` (those of [`Packet::options`]).
    pub const fn new(data: &'a [u8]) -> OptionsIter<'a> {
        OptionsIter { data }
    }
}

impl<'a> Iterator for OptionsIter<'a> {
    type Item = Result<Ipv4Option<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, rest) = self.data.split_first()?;
        match kind {
            OPT_END => {
                self.data = &[];
                Some(Ok(Ipv4Option::EndOfList))
            }
            OPT_NOP => {
                self.data = rest;
                Some(Ok(Ipv4Option::NoOperation))
            }
            _ => {
                let len = rest.first().map(|&len| usize::from(len));
                match len {
                    Some(len) if len >= 2 && len <= self.data.len() => {
                        let data = &self.data[2..len];
                        self.data = &self.data[len..];
                        Some(Ok(Ipv4Option::Other { kind, data }))
                    }
                    _ => {
                        self.data = &[];
                        Some(Err(Error::Malformed))
                    }
                }
            }
        }
    }
}

/// The option bytes of an IPv4 header, held by value: up to 40 bytes, a
/// multiple of 4, each option well-formed (padding after End of Option List
/// included as it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Options {
    // Bytes past `len` are always zero, so the derived comparisons compare
    // the options alone.
    bytes: [u8; MAX_OPTIONS_LEN],
    len: u8,
}

impl Ipv4Options {
    /// No options.
    pub const EMPTY: Ipv4Options = Ipv4Options { bytes: [0; MAX_OPTIONS_LEN], len: 0 };

    /// Copies option bytes, padding included. `Malformed` if there are more
    /// than 40, their count is not a multiple of 4 (the IHL counts 32-bit
    /// words), or an option is malformed (see [`OptionsIter`]).
    pub fn new(options: &[u8]) -> Result<Ipv4Options> {
        if options.len() > MAX_OPTIONS_LEN || options.len() % 4 != 0 {
            return Err(Error::Malformed);
        }
        for option in OptionsIter::new(options) {
            option?;
        }
        let mut bytes = [0; MAX_OPTIONS_LEN];
        bytes[..options.len()].copy_from_slice(options);
        Ok(Ipv4Options { bytes, len: options.len() as u8 })
    }

    /// The option bytes, padding included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The number of option bytes, padding included.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The options, one by one.
    pub fn iter(&self) -> OptionsIter<'_> {
        OptionsIter::new(self.as_bytes())
    }
}

impl Default for Ipv4Options {
    fn default() -> Self {
        Ipv4Options::EMPTY
    }
}

/// An IPv4 header's meaning. The payload is not part of it: `payload_len`
/// says how long it is, and it stays in the buffer.
///
/// The reserved flag bit is ignored by [`Repr::parse`] and written as zero by
/// [`Repr::emit`], so a header with it set does not round-trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub src_addr: Ipv4Addr,
    pub dst_addr: Ipv4Addr,
    pub next_header: IpProtocol,
    pub payload_len: usize,
    /// The Time to Live.
    pub hop_limit: u8,
    /// 6 bits: at most 63.
    pub dscp: u8,
    /// 2 bits: at most 3.
    pub ecn: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// In bytes: a multiple of 8, at most 65528.
    pub frag_offset: u16,
    pub options: Ipv4Options,
}

impl Repr {
    /// Reads a header, checking its lengths first. `Malformed` if the header
    /// checksum is wrong (it is always complete, even from a TAP device with
    /// offloads) or an option is malformed: Linux's `ip_options_compile`
    /// drops such packets too.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::Malformed);
        }
        let options = Ipv4Options::new(packet.options())?;
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            hop_limit: packet.hop_limit(),
            dscp: packet.dscp(),
            ecn: packet.ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
            options,
        })
    }

    /// The header's length, options included: what [`Repr::emit`] writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN + self.options.len()
    }

    /// The header and payload length (saturating, for a `payload_len` no
    /// header could carry).
    pub const fn buffer_len(&self) -> usize {
        self.header_len().saturating_add(self.payload_len)
    }

    /// Writes the header, options and checksum included; the payload is the
    /// caller's. `Malformed` if the fragment offset is not a multiple of 8 or
    /// above 65528, the DSCP is above 63, the ECN above 3, or the total length
    /// above 65535; `Truncated` if the buffer is shorter than
    /// [`Repr::header_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut Packet<&mut T>) -> Result<()> {
        if self.frag_offset % 8 != 0 || self.frag_offset > MAX_FRAG_OFFSET || self.dscp > 63 || self.ecn > 3 {
            return Err(Error::Malformed);
        }
        let total_len = u16::try_from(self.buffer_len()).map_err(|_| Error::Malformed)?;
        let header_len = self.header_len();
        if packet.buffer.as_ref().len() < header_len {
            return Err(Error::Truncated);
        }
        let buffer = packet.buffer.as_mut();
        buffer[field::VER_IHL] = 0x40 | (header_len / 4) as u8;
        buffer[field::DSCP_ECN] = (self.dscp << 2) | self.ecn;
        let mut flags = self.frag_offset / 8;
        if self.dont_frag {
            flags |= FLAG_DF;
        }
        if self.more_frags {
            flags |= FLAG_MF;
        }
        write_u16(buffer, field::FLG_OFF.start, flags);
        buffer[HEADER_LEN..header_len].copy_from_slice(self.options.as_bytes());
        packet.set_total_len(total_len);
        packet.set_ident(self.ident);
        packet.set_hop_limit(self.hop_limit);
        packet.set_next_header(self.next_header);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DNS query over UDP from 192.0.2.1 to 192.0.2.2, Don't Fragment set,
    /// header checksum computed by hand.
    const UDP_PACKET: [u8; 32] = [
        0x45, // version 4, IHL 5
        0x00, // DSCP 0, ECN 0
        0x00, 0x20, // total length 32
        0x1c, 0x46, // identification
        0x40, 0x00, // DF, offset 0
        0x40, // TTL 64
        0x11, // protocol UDP
        0x9a, 0x83, // header checksum
        0xc0, 0x00, 0x02, 0x01, // src 192.0.2.1
        0xc0, 0x00, 0x02, 0x02, // dst 192.0.2.2
        // UDP 53000 -> 53, length 12, checksum 0x0ef7, payload deadbeef
        0xcf, 0x08, 0x00, 0x35, 0x00, 0x0c, 0x0e, 0xf7, 0xde, 0xad, 0xbe, 0xef,
    ];

    /// An IGMPv3 report to 224.0.0.22 with Router Alert (RFC 2113), then a
    /// NOP, an End of Option List and padding.
    const OPTIONS_PACKET: [u8; 36] = [
        0x47, // version 4, IHL 7 (28-byte header)
        0xc0, // DSCP 48 (CS6), ECN 0
        0x00, 0x24, // total length 36
        0x00, 0x00, // identification
        0x40, 0x00, // DF, offset 0
        0x01, // TTL 1
        0x02, // protocol IGMP
        0x3f, 0xfc, // header checksum
        0xc0, 0x00, 0x02, 0x01, // src 192.0.2.1
        0xe0, 0x00, 0x00, 0x16, // dst 224.0.0.22
        0x94, 0x04, 0x00, 0x00, // Router Alert, length 4, value 0
        0x01, // NOP
        0x00, // End of Option List
        0x00, 0x00, // padding
        // IGMPv3 report with no group records
        0x22, 0x00, 0xdd, 0xff, 0x00, 0x00, 0x00, 0x00,
    ];

    /// The second fragment of a UDP datagram: MF set, offset 1480.
    const FRAGMENT: [u8; 28] = [
        0x45, // version 4, IHL 5
        0x00, // DSCP 0, ECN 0
        0x00, 0x1c, // total length 28
        0xab, 0xcd, // identification
        0x20, 0xb9, // MF, offset 185 * 8 = 1480
        0x40, // TTL 64
        0x11, // protocol UDP
        0xc2, 0x0e, // header checksum
        0xc0, 0x00, 0x02, 0x01, // src 192.0.2.1
        0xc6, 0x33, 0x64, 0x07, // dst 198.51.100.7
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // 8 bytes of datagram
    ];

    /// The start of a 1500-byte datagram as an ICMP error quotes it: the
    /// header and the first 8 bytes (the UDP header) only.
    const QUOTED: [u8; 28] = [
        0x45, // version 4, IHL 5
        0x00, // DSCP 0, ECN 0
        0x05, 0xdc, // total length 1500
        0x12, 0x34, // identification
        0x40, 0x00, // DF, offset 0
        0x40, // TTL 64
        0x11, // protocol UDP
        0x36, 0xa1, // header checksum
        0xc0, 0x00, 0x02, 0x01, // src 192.0.2.1
        0xc6, 0x33, 0x64, 0x07, // dst 198.51.100.7
        // UDP 40000 -> 443, length 1480, checksum
        0x9c, 0x40, 0x01, 0xbb, 0x05, 0xc8, 0x1f, 0x2e,
    ];

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    fn emit_into(repr: &Repr, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0u8; repr.buffer_len()];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        repr.emit(&mut packet).unwrap();
        packet.payload_mut().copy_from_slice(payload);
        bytes
    }

    #[test]
    fn golden_udp_view() {
        let packet = Packet::new_checked(&UDP_PACKET[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.dscp(), 0);
        assert_eq!(packet.ecn(), 0);
        assert_eq!(packet.total_len(), 32);
        assert_eq!(packet.ident(), 0x1c46);
        assert!(packet.dont_frag());
        assert!(!packet.more_frags());
        assert_eq!(packet.frag_offset(), 0);
        assert!(!packet.is_fragment());
        assert!(packet.is_first_fragment());
        assert_eq!(packet.hop_limit(), 64);
        assert_eq!(packet.next_header(), IpProtocol::Udp);
        assert_eq!(packet.checksum(), 0x9a83);
        assert_eq!(packet.src_addr(), SRC);
        assert_eq!(packet.dst_addr(), Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(packet.options(), &[] as &[u8]);
        assert_eq!(packet.options_iter().count(), 0);
        assert_eq!(packet.payload(), &UDP_PACKET[20..]);
        assert!(packet.verify_checksum());

        let mut flipped = UDP_PACKET;
        flipped[8] ^= 0x01;
        assert!(!Packet::new_checked(&flipped[..]).unwrap().verify_checksum());
        // A flipped payload byte is not the header checksum's business.
        let mut flipped = UDP_PACKET;
        flipped[31] ^= 0x01;
        assert!(Packet::new_checked(&flipped[..]).unwrap().verify_checksum());
    }

    #[test]
    fn golden_udp_repr() {
        let repr = Repr::parse(&Packet::new_checked(&UDP_PACKET[..]).unwrap()).unwrap();
        assert_eq!(
            repr,
            Repr {
                src_addr: SRC,
                dst_addr: Ipv4Addr::new(192, 0, 2, 2),
                next_header: IpProtocol::Udp,
                payload_len: 12,
                hop_limit: 64,
                dscp: 0,
                ecn: 0,
                ident: 0x1c46,
                dont_frag: true,
                more_frags: false,
                frag_offset: 0,
                options: Ipv4Options::EMPTY,
            }
        );
        assert_eq!(repr.header_len(), 20);
        assert_eq!(repr.buffer_len(), 32);
        assert_eq!(emit_into(&repr, &UDP_PACKET[20..]), UDP_PACKET);
    }

    #[test]
    fn golden_options() {
        let packet = Packet::new_checked(&OPTIONS_PACKET[..]).unwrap();
        assert_eq!(packet.header_len(), 28);
        assert_eq!(packet.dscp(), 48);
        assert_eq!(packet.hop_limit(), 1);
        assert_eq!(packet.next_header(), IpProtocol::Igmp);
        assert_eq!(packet.options(), &OPTIONS_PACKET[20..28]);
        assert_eq!(packet.payload(), &OPTIONS_PACKET[28..]);
        assert!(packet.verify_checksum());
        let mut options = packet.options_iter();
        assert_eq!(options.next(), Some(Ok(Ipv4Option::Other { kind: 0x94, data: &[0, 0] })));
        assert_eq!(options.next(), Some(Ok(Ipv4Option::NoOperation)));
        assert_eq!(options.next(), Some(Ok(Ipv4Option::EndOfList)));
        assert_eq!(options.next(), None);
        assert_eq!(options.next(), None);

        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr.options.as_bytes(), &OPTIONS_PACKET[20..28]);
        assert_eq!(repr.options.len(), 8);
        assert_eq!(repr.header_len(), 28);
        assert_eq!(repr.payload_len, 8);
        assert_eq!(emit_into(&repr, &OPTIONS_PACKET[28..]), OPTIONS_PACKET);
    }

    #[test]
    fn golden_fragment() {
        let packet = Packet::new_checked(&FRAGMENT[..]).unwrap();
        assert!(packet.more_frags());
        assert!(!packet.dont_frag());
        assert_eq!(packet.frag_offset(), 1480);
        assert!(packet.is_fragment());
        assert!(!packet.is_first_fragment());
        let repr = Repr::parse(&packet).unwrap();
        assert!(repr.more_frags);
        assert_eq!(repr.frag_offset, 1480);
        assert_eq!(repr.payload_len, 8);
        assert_eq!(emit_into(&repr, &FRAGMENT[20..]), FRAGMENT);

        // The last fragment: MF clear, offset nonzero.
        let mut last = FRAGMENT;
        Packet::new_unchecked(&mut last[..]).set_more_frags(false);
        let packet = Packet::new_unchecked(&last[..]);
        assert!(packet.is_fragment());
        assert!(!packet.is_first_fragment());
    }

    #[test]
    fn golden_quoted() {
        assert_eq!(Packet::new_checked(&QUOTED[..]).unwrap_err(), Error::Truncated);
        let packet = Packet::new_quoted(&QUOTED[..]).unwrap();
        assert_eq!(packet.total_len(), 1500);
        assert_eq!(packet.src_addr(), SRC);
        assert_eq!(packet.dst_addr(), Ipv4Addr::new(198, 51, 100, 7));
        assert_eq!(packet.next_header(), IpProtocol::Udp);
        assert_eq!(packet.payload(), &QUOTED[20..]);
        assert!(packet.verify_checksum());
        // Only the header is quoted: an empty payload, still no panic.
        let packet = Packet::new_quoted(&QUOTED[..20]).unwrap();
        assert_eq!(packet.payload(), &[] as &[u8]);
        // Repr::parse wants the whole datagram.
        assert_eq!(Repr::parse(&Packet::new_unchecked(&QUOTED[..])).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn length_checks() {
        let check = |bytes: &[u8]| Packet::new_checked(bytes).map(|_| ());
        let quoted = |bytes: &[u8]| Packet::new_quoted(bytes).map(|_| ());
        assert_eq!(check(&UDP_PACKET[..19]), Err(Error::Truncated));
        assert_eq!(quoted(&UDP_PACKET[..19]), Err(Error::Truncated));
        assert_eq!(check(&UDP_PACKET[..31]), Err(Error::Truncated));
        assert_eq!(quoted(&UDP_PACKET[..31]), Ok(()));

        let mut v6 = UDP_PACKET;
        v6[0] = 0x65;
        assert_eq!(check(&v6), Err(Error::Malformed));
        assert_eq!(quoted(&v6), Err(Error::Malformed));

        let mut short_ihl = UDP_PACKET;
        short_ihl[0] = 0x44;
        assert_eq!(check(&short_ihl), Err(Error::Malformed));
        assert_eq!(quoted(&short_ihl), Err(Error::Malformed));

        // IHL 7 needs 28 bytes.
        assert_eq!(check(&OPTIONS_PACKET[..27]), Err(Error::Truncated));
        assert_eq!(quoted(&OPTIONS_PACKET[..27]), Err(Error::Truncated));

        let mut short_total = OPTIONS_PACKET;
        short_total[3] = 27;
        assert_eq!(check(&short_total), Err(Error::Malformed));
        assert_eq!(quoted(&short_total), Err(Error::Malformed));

        // Link padding after the datagram is not payload.
        let mut padded = [0u8; 46];
        padded[..32].copy_from_slice(&UDP_PACKET);
        let packet = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(packet.payload(), &UDP_PACKET[20..]);
        assert_eq!(Repr::parse(&packet).unwrap().payload_len, 12);
    }

    #[test]
    fn parse_errors() {
        let mut bad_sum = UDP_PACKET;
        bad_sum[11] ^= 0xff;
        assert_eq!(Repr::parse(&Packet::new_checked(&bad_sum[..]).unwrap()), Err(Error::Malformed));

        // Router Alert claiming 9 bytes runs past the 8 option bytes.
        let mut bad_option = OPTIONS_PACKET;
        bad_option[21] = 9;
        let mut packet = Packet::new_unchecked(&mut bad_option[..]);
        packet.fill_checksum();
        let packet = Packet::new_checked(&bad_option[..]).unwrap();
        let mut options = packet.options_iter();
        assert_eq!(options.next(), Some(Err(Error::Malformed)));
        assert_eq!(options.next(), None);
        assert_eq!(Repr::parse(&packet), Err(Error::Malformed));

        assert_eq!(Repr::parse(&Packet::new_unchecked(&UDP_PACKET[..10])), Err(Error::Truncated));
    }

    #[test]
    fn options_iter_rules() {
        fn walk(bytes: &[u8]) -> Vec<Result<Ipv4Option<'_>>> {
            OptionsIter::new(bytes).collect()
        }
        // Length below 2.
        assert_eq!(walk(&[0x94, 0x01, 0x00, 0x00]), vec![Err(Error::Malformed)]);
        // No length byte at all.
        assert_eq!(
            walk(&[0x01, 0x01, 0x01, 0x94]),
            vec![
                Ok(Ipv4Option::NoOperation),
                Ok(Ipv4Option::NoOperation),
                Ok(Ipv4Option::NoOperation),
                Err(Error::Malformed)
            ]
        );
        // Padding after End of Option List is not walked.
        assert_eq!(walk(&[0x00, 0xff, 0x00, 0x00]), vec![Ok(Ipv4Option::EndOfList)]);
        // An option filling the space exactly, with no End of Option List.
        assert_eq!(walk(&[0x07, 0x04, 0xaa, 0xbb]), vec![Ok(Ipv4Option::Other { kind: 7, data: &[0xaa, 0xbb] })]);
    }

    #[test]
    fn ipv4_options_new() {
        assert_eq!(Ipv4Options::new(&[]).unwrap(), Ipv4Options::default());
        assert!(Ipv4Options::EMPTY.is_empty());
        assert_eq!(Ipv4Options::new(&[0x01; 41]), Err(Error::Malformed));
        assert_eq!(Ipv4Options::new(&[0x01; 3]), Err(Error::Malformed));
        assert_eq!(Ipv4Options::new(&[0x94, 0x08, 0x00, 0x00]), Err(Error::Malformed));
        let full = Ipv4Options::new(&[0x01; 40]).unwrap();
        assert_eq!(full.as_bytes(), &[0x01; 40]);
        assert_eq!(full.iter().count(), 40);
    }

    #[test]
    fn emit_errors() {
        let repr = Repr::parse(&Packet::new_checked(&UDP_PACKET[..]).unwrap()).unwrap();
        let mut bytes = [0u8; 32];
        let mut emit = |repr: Repr| repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(emit(Repr { frag_offset: 1481, ..repr }), Err(Error::Malformed));
        assert_eq!(emit(Repr { frag_offset: 65528, ..repr }), Ok(()));
        assert_eq!(emit(Repr { frag_offset: 65535, ..repr }), Err(Error::Malformed));
        assert_eq!(emit(Repr { dscp: 64, ..repr }), Err(Error::Malformed));
        assert_eq!(emit(Repr { ecn: 4, ..repr }), Err(Error::Malformed));
        assert_eq!(emit(Repr { payload_len: 65515, ..repr }), Ok(()));
        assert_eq!(emit(Repr { payload_len: 65516, ..repr }), Err(Error::Malformed));
        assert_eq!(emit(Repr { payload_len: usize::MAX, ..repr }), Err(Error::Malformed));
        let mut short = [0u8; 19];
        assert_eq!(repr.emit(&mut Packet::new_unchecked(&mut short[..])), Err(Error::Truncated));
        // The header alone fits; the payload is the caller's.
        let mut header_only = [0u8; 20];
        assert_eq!(repr.emit(&mut Packet::new_unchecked(&mut header_only[..])), Ok(()));
        assert_eq!(header_only, UDP_PACKET[..20]);
        let with_options = Repr { options: Ipv4Options::new(&[0x01; 8]).unwrap(), ..repr };
        let mut short = [0u8; 27];
        assert_eq!(with_options.emit(&mut Packet::new_unchecked(&mut short[..])), Err(Error::Truncated));
    }

    #[test]
    fn setters_round_trip() {
        let mut bytes = [0u8; 40];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_version(4);
        packet.set_header_len(24);
        packet.set_dscp(46);
        packet.set_ecn(3);
        packet.set_total_len(40);
        packet.set_ident(0xbeef);
        packet.set_dont_frag(true);
        packet.set_more_frags(true);
        packet.set_frag_offset(65528);
        packet.set_hop_limit(17);
        packet.set_next_header(IpProtocol::Tcp);
        packet.set_src_addr(SRC);
        packet.set_dst_addr(Ipv4Addr::new(198, 51, 100, 200));
        packet.options_mut().copy_from_slice(&[0x01, 0x01, 0x01, 0x00]);
        packet.payload_mut().fill(0x5a);
        packet.fill_checksum();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.dscp(), 46);
        assert_eq!(packet.ecn(), 3);
        assert_eq!(packet.total_len(), 40);
        assert_eq!(packet.ident(), 0xbeef);
        assert!(packet.dont_frag());
        assert!(packet.more_frags());
        assert_eq!(packet.frag_offset(), 65528);
        assert_eq!(packet.hop_limit(), 17);
        assert_eq!(packet.next_header(), IpProtocol::Tcp);
        assert_eq!(packet.src_addr(), SRC);
        assert_eq!(packet.dst_addr(), Ipv4Addr::new(198, 51, 100, 200));
        assert_eq!(packet.options(), &[0x01, 0x01, 0x01, 0x00]);
        assert_eq!(packet.payload(), &[0x5a; 16]);
        assert!(packet.verify_checksum());

        // Clearing flags and the offset leaves the other fields alone.
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_dont_frag(false);
        packet.set_frag_offset(8);
        packet.set_ecn(0);
        packet.set_checksum(0x1234);
        assert!(!packet.dont_frag());
        assert!(packet.more_frags());
        assert_eq!(packet.frag_offset(), 8);
        assert_eq!(packet.dscp(), 46);
        assert_eq!(packet.ecn(), 0);
        assert_eq!(packet.checksum(), 0x1234);
        assert_eq!(packet.into_inner()[..1], [0x46]);
    }

    /// Every getter after a successful `new_checked` or `new_quoted`, on
    /// every header byte pattern this loop makes, must not panic.
    #[test]
    fn getters_never_panic() {
        for len in 0..64usize {
            for first in [0x40u8, 0x45, 0x4f, 0x46] {
                for total in [0u16, 20, 24, len as u16, 1500, 65535] {
                    let mut bytes = vec![0xa5u8; len];
                    if len >= 4 {
                        bytes[0] = first;
                        bytes[2..4].copy_from_slice(&total.to_be_bytes());
                    }
                    for packet in
                        [Packet::new_checked(&bytes[..]), Packet::new_quoted(&bytes[..])].into_iter().flatten()
                    {
                        let _ = (packet.payload(), packet.options(), packet.verify_checksum());
                        let _ = packet.options_iter().count();
                        let _ = Repr::parse(&packet);
                    }
                }
            }
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn options() -> impl Strategy<Value = Ipv4Options> {
            // Words of NOPs, or a Router Alert, or words ending the list.
            prop::collection::vec(
                prop_oneof![
                    Just([0x01u8, 0x01, 0x01, 0x01]),
                    any::<u16>().prop_map(|v| [0x94, 0x04, (v >> 8) as u8, v as u8]),
                    Just([0x01, 0x00, 0x00, 0x00]),
                ],
                0..=10,
            )
            .prop_map(|words| Ipv4Options::new(&words.concat()).unwrap())
        }

        prop_compose! {
            fn repr()(
                src in any::<u32>(), dst in any::<u32>(), proto in any::<u8>(), options in options(),
                payload_len in 0usize..200, hop_limit in any::<u8>(), dscp in 0u8..64, ecn in 0u8..4,
                ident in any::<u16>(), dont_frag in any::<bool>(), more_frags in any::<bool>(),
                frag_units in 0u16..=0x1fff,
            ) -> Repr {
                Repr {
                    src_addr: Ipv4Addr::from(src),
                    dst_addr: Ipv4Addr::from(dst),
                    next_header: IpProtocol::from(proto),
                    payload_len,
                    hop_limit,
                    dscp,
                    ecn,
                    ident,
                    dont_frag,
                    more_frags,
                    frag_offset: frag_units * 8,
                    options,
                }
            }
        }

        proptest! {
            #[test]
            fn emit_then_parse_is_identity(repr in repr()) {
                let mut bytes = vec![0u8; repr.buffer_len()];
                repr.emit(&mut Packet::new_unchecked(&mut bytes[..])).unwrap();
                let packet = Packet::new_checked(&bytes[..]).unwrap();
                prop_assert_eq!(Repr::parse(&packet), Ok(repr));
            }

            #[test]
            fn any_bytes_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..80), fix in any::<bool>()) {
                if fix && bytes.len() >= 20 {
                    // Make the header plausible so the deeper paths run.
                    bytes[0] = 0x40 | (bytes[0] & 0x0f).max(5);
                    let len = bytes.len() as u16;
                    bytes[2..4].copy_from_slice(&len.to_be_bytes());
                    bytes[6] &= 0x7f;
                    if let Ok(mut packet) = Packet::new_checked(&mut bytes[..]) {
                        packet.fill_checksum();
                    }
                }
                for packet in [Packet::new_checked(&bytes[..]), Packet::new_quoted(&bytes[..])].into_iter().flatten() {
                    let _ = (packet.payload(), packet.options(), packet.verify_checksum(), packet.is_fragment());
                    let _ = packet.options_iter().count();
                }
                if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                    if let Ok(repr) = Repr::parse(&packet) {
                        let mut out = vec![0u8; repr.buffer_len()];
                        repr.emit(&mut Packet::new_unchecked(&mut out[..])).unwrap();
                        // Canonical input (reserved flag clear) comes back byte for byte.
                        if bytes[6] & 0x80 == 0 {
                            prop_assert_eq!(&out[..repr.header_len()], &bytes[..repr.header_len()]);
                        }
                    }
                }
            }
        }
    }
}
