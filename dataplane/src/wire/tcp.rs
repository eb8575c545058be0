//! TCP (RFC 9293 §3.1): the header view, its flags, an iterator over its
//! options, its `Repr`, and the checksum over the IPv4 or IPv6 pseudo-header.
//!
//! The options understood are those of RFC 9293 §3.2 (end of list, no-op,
//! maximum segment size), RFC 7323 (window scale, timestamps) and RFC 2018
//! (SACK-permitted, SACK); any other kind is carried as
//! [`TcpOption::Unknown`]. The NS flag (RFC 3540, historic) is carried as the
//! ninth flag bit.
//!
//! A view is handed exactly the segment (for example an IP packet's payload):
//! the segment length used by the pseudo-header and the payload length are the
//! buffer's length, since TCP has no length field of its own.
//!
//! What this module does not do: track connections, check sequence numbers,
//! or drop a segment with a bad checksum. [`Repr::parse`] does not verify the
//! checksum (frames from a TAP device with offloads carry partial checksums);
//! call [`Packet::verify_checksum`] when it matters.

use core::fmt;
use core::net::IpAddr;
use core::ops::{BitOr, BitOrAssign};

use super::{checksum, read_u16, read_u32, write_u16, write_u32, Error, IpProtocol, Result};

mod field {
    use core::ops::Range;

    pub(super) const SRC_PORT: Range<usize> = 0..2;
    pub(super) const DST_PORT: Range<usize> = 2..4;
    pub(super) const SEQ_NUM: Range<usize> = 4..8;
    pub(super) const ACK_NUM: Range<usize> = 8..12;
    /// Data offset (4 bits), reserved (3 bits) and the nine flag bits.
    pub(super) const FLAGS: Range<usize> = 12..14;
    pub(super) const WIN_SIZE: Range<usize> = 14..16;
    pub(super) const CHECKSUM: Range<usize> = 16..18;
    pub(super) const URGENT: Range<usize> = 18..20;
    pub(super) const OPTIONS: usize = 20;
}

/// The length of a TCP header without options.
pub const HEADER_LEN: usize = field::OPTIONS;

/// The most option bytes a header can carry: a data offset of 15 words is 60
/// bytes, 20 of them the fixed header (RFC 9293 §3.1).
pub const MAX_OPTIONS_LEN: usize = 40;

/// The mask of the data offset in the 16-bit word at bytes 12–13.
const DATA_OFFSET_MASK: u16 = 0xf000;

/// The option kinds this module names (IANA "TCP Option Kind Numbers").
mod kind {
    pub(super) const END_OF_LIST: u8 = 0;
    pub(super) const NO_OPERATION: u8 = 1;
    pub(super) const MAX_SEG_SIZE: u8 = 2;
    pub(super) const WINDOW_SCALE: u8 = 3;
    pub(super) const SACK_PERMITTED: u8 = 4;
    pub(super) const SACK_RANGE: u8 = 5;
    pub(super) const TIMESTAMPS: u8 = 8;
}

/// The TCP control bits (RFC 9293 §3.1, RFC 3168 §6.1 for ECE and CWR,
/// RFC 3540 for NS), as they sit in the low nine bits of bytes 12–13.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u16);

impl Flags {
    pub const FIN: Flags = Flags(0x001);
    pub const SYN: Flags = Flags(0x002);
    pub const RST: Flags = Flags(0x004);
    pub const PSH: Flags = Flags(0x008);
    pub const ACK: Flags = Flags(0x010);
    pub const URG: Flags = Flags(0x020);
    /// ECN-Echo (RFC 3168).
    pub const ECE: Flags = Flags(0x040);
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: Flags = Flags(0x080);
    /// ECN nonce sum (RFC 3540, historic): the low bit of byte 12.
    pub const NS: Flags = Flags(0x100);

    /// All nine flag bits.
    const ALL: u16 = 0x1ff;

    /// The flags as the nine low bits of a `u16`.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// The flags in the nine low bits of `bits`; higher bits are dropped.
    pub const fn from_bits_truncate(bits: u16) -> Flags {
        Flags(bits & Flags::ALL)
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Sets the flags of `other`.
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    /// Clears the flags of `other`.
    pub fn remove(&mut self, other: Flags) {
        self.0 &= !other.0;
    }

    /// Sets or clears the flags of `other`.
    pub fn set(&mut self, other: Flags, value: bool) {
        if value {
            self.insert(other)
        } else {
            self.remove(other)
        }
    }
}

impl BitOr for Flags {
    type Output = Flags;

    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

/// tcpdump's notation: `[S.]` for SYN-ACK, `[P.]` for PSH-ACK, `[none]` for
/// no flags. Letters, in tcpdump's order: F S R P `.` (ACK) U E (ECE) W (CWR)
/// e (NS).
impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const LETTERS: [(Flags, char); 9] = [
            (Flags::FIN, 'F'),
            (Flags::SYN, 'S'),
            (Flags::RST, 'R'),
            (Flags::PSH, 'P'),
            (Flags::ACK, '.'),
            (Flags::URG, 'U'),
            (Flags::ECE, 'E'),
            (Flags::CWR, 'W'),
            (Flags::NS, 'e'),
        ];
        f.write_str("[")?;
        if self.is_empty() {
            f.write_str("none")?;
        }
        for (flag, letter) in LETTERS {
            if self.contains(flag) {
                fmt::Write::write_char(f, letter)?;
            }
        }
        f.write_str("]")
    }
}

/// A view of a TCP segment in a buffer that holds exactly the segment.
///
/// After [`Packet::new_checked`] succeeds, the data offset is at least 5 words
/// and the header it describes fits in the buffer, and no getter panics.
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

    /// Checks that the buffer holds the fixed header and the options the data
    /// offset claims: `Truncated` if it does not, `Malformed` if the data
    /// offset is below 5 words (RFC 9293 §3.1). The options themselves are not
    /// checked here; [`Packet::options_iter`] and [`Repr::parse`] do that.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            Err(Error::Malformed)
        } else if header_len > len {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    pub fn seq_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ_NUM.start)
    }

    pub fn ack_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK_NUM.start)
    }

    /// The header length in bytes: the data offset times four.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::FLAGS.start] >> 4) * 4
    }

    /// The nine flag bits; the three reserved bits are not part of it.
    pub fn flags(&self) -> Flags {
        Flags::from_bits_truncate(read_u16(self.buffer.as_ref(), field::FLAGS.start))
    }

    pub fn fin(&self) -> bool {
        self.flags().contains(Flags::FIN)
    }

    pub fn syn(&self) -> bool {
        self.flags().contains(Flags::SYN)
    }

    pub fn rst(&self) -> bool {
        self.flags().contains(Flags::RST)
    }

    pub fn psh(&self) -> bool {
        self.flags().contains(Flags::PSH)
    }

    pub fn ack(&self) -> bool {
        self.flags().contains(Flags::ACK)
    }

    pub fn urg(&self) -> bool {
        self.flags().contains(Flags::URG)
    }

    pub fn ece(&self) -> bool {
        self.flags().contains(Flags::ECE)
    }

    pub fn cwr(&self) -> bool {
        self.flags().contains(Flags::CWR)
    }

    pub fn ns(&self) -> bool {
        self.flags().contains(Flags::NS)
    }

    /// The window field as sent, before any window scaling (RFC 7323 §2.2).
    pub fn window_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WIN_SIZE.start)
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The urgent pointer, whether or not URG is set.
    pub fn urgent_at(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::URGENT.start)
    }

    /// The option bytes, padding included: from byte 20 to the header length.
    pub fn options(&self) -> &[u8] {
        let buffer = self.buffer.as_ref();
        let end = self.header_len().clamp(HEADER_LEN, buffer.len());
        &buffer[HEADER_LEN..end]
    }

    /// An iterator over the options; see [`OptionsIter`].
    pub fn options_iter(&self) -> OptionsIter<'_> {
        OptionsIter::new(self.options())
    }

    /// Everything after the header.
    pub fn payload(&self) -> &[u8] {
        let buffer = self.buffer.as_ref();
        let start = self.header_len().clamp(HEADER_LEN, buffer.len());
        &buffer[start..]
    }

    /// Whether the checksum is right for a segment from `src` to `dst`, the
    /// segment being the whole buffer. `src` and `dst` of different families
    /// (or an IPv4 segment longer than 65535 bytes) give `false`.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        let segment = self.buffer.as_ref();
        match checksum::pseudo_header(src, dst, IpProtocol::Tcp, segment.len()) {
            Some(pseudo) => checksum::add(pseudo, checksum::sum(segment)) == 0xffff,
            None => false,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT.start, value)
    }

    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT.start, value)
    }

    pub fn set_seq_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ_NUM.start, value)
    }

    pub fn set_ack_number(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::ACK_NUM.start, value)
    }

    /// Sets the data offset to `value` bytes, which should be a multiple of 4
    /// from 20 to 60; the field keeps `value / 4` modulo 16. The reserved bits
    /// and the flags are left as they are.
    pub fn set_header_len(&mut self, value: usize) {
        let offset = ((value / 4) & 0xf) as u16;
        let raw = read_u16(self.buffer.as_ref(), field::FLAGS.start);
        write_u16(self.buffer.as_mut(), field::FLAGS.start, (raw & !DATA_OFFSET_MASK) | (offset << 12))
    }

    /// Sets the nine flag bits; the data offset and the reserved bits are left
    /// as they are.
    pub fn set_flags(&mut self, value: Flags) {
        let raw = read_u16(self.buffer.as_ref(), field::FLAGS.start);
        write_u16(self.buffer.as_mut(), field::FLAGS.start, (raw & !Flags::ALL) | value.bits())
    }

    /// Sets or clears one or more flags, leaving the others as they are.
    fn set_flag(&mut self, flag: Flags, value: bool) {
        let mut flags = self.flags();
        flags.set(flag, value);
        self.set_flags(flags)
    }

    pub fn set_fin(&mut self, value: bool) {
        self.set_flag(Flags::FIN, value)
    }

    pub fn set_syn(&mut self, value: bool) {
        self.set_flag(Flags::SYN, value)
    }

    pub fn set_rst(&mut self, value: bool) {
        self.set_flag(Flags::RST, value)
    }

    pub fn set_psh(&mut self, value: bool) {
        self.set_flag(Flags::PSH, value)
    }

    pub fn set_ack(&mut self, value: bool) {
        self.set_flag(Flags::ACK, value)
    }

    pub fn set_urg(&mut self, value: bool) {
        self.set_flag(Flags::URG, value)
    }

    pub fn set_ece(&mut self, value: bool) {
        self.set_flag(Flags::ECE, value)
    }

    pub fn set_cwr(&mut self, value: bool) {
        self.set_flag(Flags::CWR, value)
    }

    pub fn set_ns(&mut self, value: bool) {
        self.set_flag(Flags::NS, value)
    }

    pub fn set_window_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::WIN_SIZE.start, value)
    }

    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, value)
    }

    pub fn set_urgent_at(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::URGENT.start, value)
    }

    /// The option bytes, mutable, from byte 20 to the header length.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len().clamp(HEADER_LEN, self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// Everything after the header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len().clamp(HEADER_LEN, self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[start..]
    }

    /// Computes and writes the checksum for a segment from `src` to `dst`, the
    /// segment being the whole buffer. If `src` and `dst` are of different
    /// families (or an IPv4 segment is longer than 65535 bytes), the checksum
    /// is set to zero.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        self.set_checksum(0);
        let segment = self.buffer.as_ref();
        if let Some(pseudo) = checksum::pseudo_header(src, dst, IpProtocol::Tcp, segment.len()) {
            let value = !checksum::add(pseudo, checksum::sum(segment));
            self.set_checksum(value);
        }
    }
}

/// The data of a SACK option (RFC 2018 §3): 1 to 4 blocks of a left and a
/// right edge, each a 32-bit sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SackBlocks<'a> {
    /// The option data, a multiple of 8 bytes long.
    data: &'a [u8],
}

impl<'a> SackBlocks<'a> {
    /// The number of blocks.
    pub fn len(&self) -> usize {
        self.data.len() / 8
    }

    /// Whether there is no block (never the case for a parsed option).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Block `index` as `(left edge, right edge)`.
    pub fn get(&self, index: usize) -> Option<(u32, u32)> {
        self.data.chunks_exact(8).nth(index).map(sack_block)
    }

    /// The blocks, in the order they were sent, as `(left edge, right edge)`.
    pub fn iter(&self) -> SackBlocksIter<'a> {
        SackBlocksIter { chunks: self.data.chunks_exact(8) }
    }

    /// The option data as it was sent.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }
}

impl<'a> IntoIterator for SackBlocks<'a> {
    type Item = (u32, u32);
    type IntoIter = SackBlocksIter<'a>;

    fn into_iter(self) -> SackBlocksIter<'a> {
        self.iter()
    }
}

/// Reads one 8-byte SACK block.
fn sack_block(chunk: &[u8]) -> (u32, u32) {
    (read_u32(chunk, 0), read_u32(chunk, 4))
}

/// An iterator over the blocks of a SACK option: `(left edge, right edge)`.
#[derive(Debug, Clone)]
pub struct SackBlocksIter<'a> {
    chunks: core::slice::ChunksExact<'a, u8>,
}

impl Iterator for SackBlocksIter<'_> {
    type Item = (u32, u32);

    fn next(&mut self) -> Option<(u32, u32)> {
        self.chunks.next().map(sack_block)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for SackBlocksIter<'_> {}

/// One TCP option, borrowed from the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpOption<'a> {
    /// Kind 0: the end of the option list (RFC 9293 §3.2).
    EndOfList,
    /// Kind 1: one byte of padding (RFC 9293 §3.2).
    NoOperation,
    /// Kind 2: the largest segment the sender will receive (RFC 9293 §3.7.1).
    MaxSegmentSize(u16),
    /// Kind 3: the shift count of the sender's receive window (RFC 7323 §2).
    /// Carried as sent; RFC 7323 §2.3 says to treat a value above 14 as 14.
    WindowScale(u8),
    /// Kind 4: the sender accepts SACK (RFC 2018 §2).
    SackPermitted,
    /// Kind 5: selective acknowledgment blocks (RFC 2018 §3).
    SackRange(SackBlocks<'a>),
    /// Kind 8: timestamp value and echo reply (RFC 7323 §3).
    Timestamps { tsval: u32, tsecr: u32 },
    /// Any other kind, with its data (the bytes after the length byte).
    Unknown { kind: u8, data: &'a [u8] },
}

/// An iterator over the options of a header (RFC 9293 §3.2).
///
/// End-of-list yields [`TcpOption::EndOfList`] and ends the iteration (what
/// follows is padding); no-op is one byte; every other kind has a length byte
/// that counts the kind, the length and the data. A length below 2 or past the
/// end of the options, or a known kind with the wrong length (MSS 4, window
/// scale 3, SACK-permitted 2, timestamps 10, SACK 2 + 8n with n from 1 to 4),
/// yields `Err(Malformed)` once and ends the iteration.
#[derive(Debug, Clone)]
pub struct OptionsIter<'a> {
    /// The bytes not read yet; empty once the iteration has ended.
    rest: &'a [u8],
}

impl<'a> OptionsIter<'a> {
    /// Iterates over `options`, the bytes after the fixed header.
    pub fn new(options: &'a [u8]) -> OptionsIter<'a> {
        OptionsIter { rest: options }
    }

    /// Reads the option at the head of `rest` and the bytes after it.
    fn read(rest: &'a [u8]) -> Result<(TcpOption<'a>, &'a [u8])> {
        let (&kind, after_kind) = rest.split_first().ok_or(Error::Truncated)?;
        match kind {
            kind::END_OF_LIST => return Ok((TcpOption::EndOfList, &[])),
            kind::NO_OPERATION => return Ok((TcpOption::NoOperation, after_kind)),
            _ => {}
        }
        let len = usize::from(*after_kind.first().ok_or(Error::Malformed)?);
        if len < 2 || len > rest.len() {
            return Err(Error::Malformed);
        }
        let data = &rest[2..len];
        let option = match (kind, data.len()) {
            (kind::MAX_SEG_SIZE, 2) => TcpOption::MaxSegmentSize(read_u16(data, 0)),
            (kind::WINDOW_SCALE, 1) => TcpOption::WindowScale(data[0]),
            (kind::SACK_PERMITTED, 0) => TcpOption::SackPermitted,
            (kind::SACK_RANGE, 8 | 16 | 24 | 32) => TcpOption::SackRange(SackBlocks { data }),
            (kind::TIMESTAMPS, 8) => TcpOption::Timestamps { tsval: read_u32(data, 0), tsecr: read_u32(data, 4) },
            (
                kind::MAX_SEG_SIZE | kind::WINDOW_SCALE | kind::SACK_PERMITTED | kind::SACK_RANGE | kind::TIMESTAMPS,
                _,
            ) => return Err(Error::Malformed),
            (kind, _) => TcpOption::Unknown { kind, data },
        };
        Ok((option, &rest[len..]))
    }
}

impl<'a> Iterator for OptionsIter<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Result<TcpOption<'a>>> {
        if self.rest.is_empty() {
            return None;
        }
        match OptionsIter::read(self.rest) {
            Ok((option, rest)) => {
                self.rest = rest;
                Some(Ok(option))
            }
            Err(error) => {
                self.rest = &[];
                Some(Err(error))
            }
        }
    }
}

/// A TCP header's meaning, options included. The payload is not part of it:
/// `payload_len` says how long it is, and it stays in the buffer.
///
/// [`Repr::emit`] writes the options in one canonical order, the one Linux
/// uses (`tcp_options_write`), so that parsing a Linux segment and emitting it
/// again gives the same bytes:
///
/// | present                         | bytes                                  |
/// |---------------------------------|----------------------------------------|
/// | `max_seg_size`                  | `02 04 mss`                            |
/// | `timestamp` and `sack_permitted`| `04 02 08 0a tsval tsecr`              |
/// | `timestamp` only                | `01 01 08 0a tsval tsecr`              |
/// | `sack_permitted` only           | `01 01 04 02`                          |
/// | `window_scale`                  | `01 03 03 ws`                          |
/// | `sack_ranges` (n blocks)        | `01 01 05 (2+8n) left right ...`       |
///
/// Every entry is a multiple of 4 bytes long, so no padding follows.
///
/// Restrictions for emit → parse to give back the same `Repr`: the SACK
/// blocks fill `sack_ranges` from the front (a `Some` after a `None` is
/// refused), and the options must fit in 40 bytes (for example, with
/// timestamps, at most 3 SACK blocks). Any `Repr` that [`Repr::emit`] accepts
/// parses back to itself, given a buffer of [`Repr::buffer_len`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Repr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq_number: u32,
    pub ack_number: u32,
    pub flags: Flags,
    /// The window field as sent, before scaling.
    pub window_len: u16,
    pub urgent_at: u16,
    pub max_seg_size: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    /// SACK blocks `(left edge, right edge)`, in the order sent, from the
    /// front; `None` after the last.
    pub sack_ranges: [Option<(u32, u32)>; 4],
    /// `(tsval, tsecr)`.
    pub timestamp: Option<(u32, u32)>,
    pub payload_len: usize,
}

impl Repr {
    /// Reads a segment, checking its length and its options first: a
    /// malformed option gives `Malformed`. Unknown options are skipped; of a
    /// repeated option the last one wins. The checksum is not verified here
    /// (frames from a TAP device with offloads carry partial checksums): see
    /// [`Packet::verify_checksum`]. `payload_len` is what follows the header in
    /// the buffer, which must hold exactly the segment.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        let mut repr = Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            urgent_at: packet.urgent_at(),
            max_seg_size: None,
            window_scale: None,
            sack_permitted: false,
            sack_ranges: [None; 4],
            timestamp: None,
            payload_len: packet.payload().len(),
        };
        for option in packet.options_iter() {
            match option.map_err(|_| Error::Malformed)? {
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
                TcpOption::MaxSegmentSize(mss) => repr.max_seg_size = Some(mss),
                TcpOption::WindowScale(shift) => repr.window_scale = Some(shift),
                TcpOption::SackPermitted => repr.sack_permitted = true,
                TcpOption::SackRange(blocks) => {
                    repr.sack_ranges = [None; 4];
                    for (slot, block) in repr.sack_ranges.iter_mut().zip(blocks) {
                        *slot = Some(block);
                    }
                }
                TcpOption::Timestamps { tsval, tsecr } => repr.timestamp = Some((tsval, tsecr)),
            }
        }
        Ok(repr)
    }

    /// The number of SACK blocks, or `Malformed` if a block follows a `None`.
    fn sack_count(&self) -> Result<usize> {
        let count = self.sack_ranges.iter().take_while(|range| range.is_some()).count();
        if self.sack_ranges[count..].iter().any(Option::is_some) {
            Err(Error::Malformed)
        } else {
            Ok(count)
        }
    }

    /// The length of the options [`Repr::emit`] writes (see the table on
    /// [`Repr`]), not yet checked against [`MAX_OPTIONS_LEN`].
    fn options_len(&self) -> usize {
        let mut len = 0;
        if self.max_seg_size.is_some() {
            len += 4;
        }
        if self.timestamp.is_some() {
            len += 12;
        } else if self.sack_permitted {
            len += 4;
        }
        if self.window_scale.is_some() {
            len += 4;
        }
        let blocks = self.sack_ranges.iter().filter(|range| range.is_some()).count();
        if blocks > 0 {
            len += 4 + 8 * blocks;
        }
        len
    }

    /// The header's length, options included: what [`Repr::emit`] writes.
    /// Above 60 if the options do not fit, which `emit` refuses.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options_len()
    }

    /// The header and payload length.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Writes the header and its options in the canonical order (see
    /// [`Repr`]), with zero reserved bits and a zero checksum; fill the
    /// payload, then call [`Packet::fill_checksum`]. Returns `Malformed` if
    /// `sack_ranges` has a `Some` after a `None` or the options do not fit in
    /// 40 bytes, and `Truncated` if the buffer is shorter than
    /// [`Repr::header_len`]. The payload is not touched.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut Packet<&mut T>) -> Result<()> {
        let blocks = self.sack_count()?;
        let options_len = self.options_len();
        if options_len > MAX_OPTIONS_LEN {
            return Err(Error::Malformed);
        }
        let header_len = HEADER_LEN + options_len;
        if packet.buffer.as_ref().len() < header_len {
            return Err(Error::Truncated);
        }
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number);
        let offset_and_flags = ((header_len / 4) as u16) << 12 | self.flags.bits();
        write_u16(packet.buffer.as_mut(), field::FLAGS.start, offset_and_flags);
        packet.set_window_len(self.window_len);
        packet.set_checksum(0);
        packet.set_urgent_at(self.urgent_at);

        let options = packet.options_mut();
        let mut at = 0;
        if let Some(mss) = self.max_seg_size {
            options[at..at + 2].copy_from_slice(&[kind::MAX_SEG_SIZE, 4]);
            write_u16(options, at + 2, mss);
            at += 4;
        }
        if let Some((tsval, tsecr)) = self.timestamp {
            let lead =
                if self.sack_permitted { [kind::SACK_PERMITTED, 2] } else { [kind::NO_OPERATION, kind::NO_OPERATION] };
            options[at..at + 4].copy_from_slice(&[lead[0], lead[1], kind::TIMESTAMPS, 10]);
            write_u32(options, at + 4, tsval);
            write_u32(options, at + 8, tsecr);
            at += 12;
        } else if self.sack_permitted {
            options[at..at + 4].copy_from_slice(&[kind::NO_OPERATION, kind::NO_OPERATION, kind::SACK_PERMITTED, 2]);
            at += 4;
        }
        if let Some(shift) = self.window_scale {
            options[at..at + 4].copy_from_slice(&[kind::NO_OPERATION, kind::WINDOW_SCALE, 3, shift]);
            at += 4;
        }
        if blocks > 0 {
            let len = 2 + 8 * blocks as u8;
            options[at..at + 4].copy_from_slice(&[kind::NO_OPERATION, kind::NO_OPERATION, kind::SACK_RANGE, len]);
            at += 4;
            for &(left, right) in self.sack_ranges.iter().flatten() {
                write_u32(options, at, left);
                write_u32(options, at + 4, right);
                at += 8;
            }
        }
        debug_assert_eq!(at, options_len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    /// A Linux SYN from 192.0.2.1:40000 to 192.0.2.2:80.
    const SYN: [u8; 40] = [
        0x9c, 0x40, // src port 40000
        0x00, 0x50, // dst port 80
        0x8f, 0x3e, 0x1c, 0x07, // seq
        0x00, 0x00, 0x00, 0x00, // ack
        0xa0, 0x02, // data offset 10 (40 bytes), flags SYN
        0xfa, 0xf0, // window 64240
        0xdf, 0x39, // checksum
        0x00, 0x00, // urgent pointer
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x04, 0x02, // SACK permitted
        0x08, 0x0a, 0x00, 0x39, 0xa1, 0xc2, 0x00, 0x00, 0x00, 0x00, // TS val 0x0039a1c2 ecr 0
        0x01, // NOP
        0x03, 0x03, 0x07, // window scale 7
    ];

    /// The server's SYN-ACK, 192.0.2.2:80 to 192.0.2.1:40000.
    const SYN_ACK: [u8; 40] = [
        0x00, 0x50, // src port 80
        0x9c, 0x40, // dst port 40000
        0x5c, 0x6d, 0x7e, 0x8f, // seq
        0x8f, 0x3e, 0x1c, 0x08, // ack: the SYN's seq + 1
        0xa0, 0x12, // data offset 10, flags SYN ACK
        0xfe, 0x88, // window 65160
        0x85, 0x68, // checksum
        0x00, 0x00, // urgent pointer
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x04, 0x02, // SACK permitted
        0x08, 0x0a, 0x7b, 0x2a, 0x00, 0x01, 0x00, 0x39, 0xa1, 0xc2, // TS val 0x7b2a0001 ecr 0x0039a1c2
        0x01, // NOP
        0x03, 0x03, 0x07, // window scale 7
    ];

    /// The client's duplicate ACK with two SACK blocks (two 1448-byte
    /// segments received past a hole of two), 192.0.2.1:40000 to 192.0.2.2:80.
    const SACK_ACK: [u8; 52] = [
        0x9c, 0x40, // src port 40000
        0x00, 0x50, // dst port 80
        0x8f, 0x3e, 0x1c, 0x08, // seq
        0x5c, 0x6d, 0x80, 0x00, // ack
        0xd0, 0x10, // data offset 13 (52 bytes), flags ACK
        0x01, 0xf5, // window 501 (scaled by 2^7)
        0x85, 0x04, // checksum
        0x00, 0x00, // urgent pointer
        0x01, 0x01, // NOP NOP
        0x08, 0x0a, 0x00, 0x39, 0xa5, 0xd0, 0x7b, 0x2a, 0x03, 0xe8, // TS val 0x0039a5d0 ecr 0x7b2a03e8
        0x01, 0x01, // NOP NOP
        0x05, 0x12, // SACK, length 18: two blocks
        0x5c, 0x6d, 0x8b, 0x50, 0x5c, 0x6d, 0x90, 0xf8, // block 1
        0x5c, 0x6d, 0x9c, 0x48, 0x5c, 0x6d, 0xa1, 0xf0, // block 2
    ];

    const V6_CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const V6_SERVER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// A data segment over IPv6, [2001:db8::1]:51000 to [2001:db8::2]:80,
    /// with a 19-byte payload (odd, so the checksum pads a byte).
    const V6_DATA: [u8; 51] = [
        0xc7, 0x38, // src port 51000
        0x00, 0x50, // dst port 80
        0x0b, 0xad, 0xca, 0xfe, // seq
        0x10, 0x20, 0x30, 0x40, // ack
        0x80, 0x18, // data offset 8 (32 bytes), flags PSH ACK
        0x01, 0xf6, // window 502
        0x66, 0x67, // checksum over the IPv6 pseudo-header
        0x00, 0x00, // urgent pointer
        0x01, 0x01, // NOP NOP
        0x08, 0x0a, 0x00, 0xc0, 0xff, 0xee, 0x00, 0xbe, 0xef, 0x01, // TS val 0x00c0ffee ecr 0x00beef01
        b'H', b'E', b'A', b'D', b' ', b'/', b' ', b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'0', b'\r', b'\n', b'\r',
        b'\n',
    ];

    fn syn_repr() -> Repr {
        Repr {
            src_port: 40000,
            dst_port: 80,
            seq_number: 0x8f3e_1c07,
            ack_number: 0,
            flags: Flags::SYN,
            window_len: 64240,
            urgent_at: 0,
            max_seg_size: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            sack_ranges: [None; 4],
            timestamp: Some((0x0039_a1c2, 0)),
            payload_len: 0,
        }
    }

    /// Parses `bytes`, checks the `Repr`, emits it again (with the payload
    /// and checksum filled) and checks the bytes come back.
    fn round_trip(bytes: &[u8], expected: Repr, src: IpAddr, dst: IpAddr) {
        let packet = Packet::new_checked(bytes).unwrap();
        assert!(packet.verify_checksum(src, dst));
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr, expected);
        assert_eq!(repr.buffer_len(), bytes.len());
        let mut out = vec![0xaau8; bytes.len()];
        let mut packet = Packet::new_unchecked(&mut out[..]);
        repr.emit(&mut packet).unwrap();
        assert_eq!(packet.checksum(), 0);
        packet.payload_mut().copy_from_slice(&bytes[repr.header_len()..]);
        packet.fill_checksum(src, dst);
        assert_eq!(out, bytes);
    }

    #[test]
    fn golden_syn_view() {
        let packet = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!(packet.src_port(), 40000);
        assert_eq!(packet.dst_port(), 80);
        assert_eq!(packet.seq_number(), 0x8f3e_1c07);
        assert_eq!(packet.ack_number(), 0);
        assert_eq!(packet.header_len(), 40);
        assert_eq!(packet.flags(), Flags::SYN);
        assert!(packet.syn());
        assert!(!packet.ack() && !packet.fin() && !packet.rst() && !packet.psh() && !packet.urg());
        assert!(!packet.ece() && !packet.cwr() && !packet.ns());
        assert_eq!(packet.window_len(), 64240);
        assert_eq!(packet.checksum(), 0xdf39);
        assert_eq!(packet.urgent_at(), 0);
        assert_eq!(packet.options(), &SYN[20..]);
        assert_eq!(packet.payload(), &[] as &[u8]);
        let options: Vec<_> = packet.options_iter().collect();
        assert_eq!(
            options,
            [
                Ok(TcpOption::MaxSegmentSize(1460)),
                Ok(TcpOption::SackPermitted),
                Ok(TcpOption::Timestamps { tsval: 0x0039_a1c2, tsecr: 0 }),
                Ok(TcpOption::NoOperation),
                Ok(TcpOption::WindowScale(7)),
            ]
        );
        assert!(packet.verify_checksum(CLIENT.into(), SERVER.into()));
        assert!(!packet.verify_checksum(CLIENT.into(), Ipv4Addr::new(192, 0, 2, 3).into()));
        assert!(!packet.verify_checksum(CLIENT.into(), V6_SERVER.into()), "mixed families");
        let mut flipped = SYN;
        flipped[30] ^= 0x01;
        assert!(!Packet::new_checked(&flipped[..]).unwrap().verify_checksum(CLIENT.into(), SERVER.into()));
    }

    #[test]
    fn golden_syn_repr() {
        round_trip(&SYN, syn_repr(), CLIENT.into(), SERVER.into());
    }

    #[test]
    fn golden_syn_ack() {
        let packet = Packet::new_checked(&SYN_ACK[..]).unwrap();
        assert_eq!(packet.flags(), Flags::SYN | Flags::ACK);
        assert!(packet.syn() && packet.ack());
        assert_eq!(packet.ack_number(), 0x8f3e_1c08);
        let expected = Repr {
            src_port: 80,
            dst_port: 40000,
            seq_number: 0x5c6d_7e8f,
            ack_number: 0x8f3e_1c08,
            flags: Flags::SYN | Flags::ACK,
            window_len: 65160,
            timestamp: Some((0x7b2a_0001, 0x0039_a1c2)),
            ..syn_repr()
        };
        round_trip(&SYN_ACK, expected, SERVER.into(), CLIENT.into());
    }

    #[test]
    fn golden_sack_ack() {
        let packet = Packet::new_checked(&SACK_ACK[..]).unwrap();
        assert_eq!(packet.header_len(), 52);
        let mut options = packet.options_iter();
        assert_eq!(options.next(), Some(Ok(TcpOption::NoOperation)));
        assert_eq!(options.next(), Some(Ok(TcpOption::NoOperation)));
        assert_eq!(options.next(), Some(Ok(TcpOption::Timestamps { tsval: 0x0039_a5d0, tsecr: 0x7b2a_03e8 })));
        assert_eq!(options.next(), Some(Ok(TcpOption::NoOperation)));
        assert_eq!(options.next(), Some(Ok(TcpOption::NoOperation)));
        let Some(Ok(TcpOption::SackRange(blocks))) = options.next() else { panic!("no SACK option") };
        assert_eq!(options.next(), None);
        assert_eq!(blocks.len(), 2);
        assert!(!blocks.is_empty());
        assert_eq!(blocks.get(0), Some((0x5c6d_8b50, 0x5c6d_90f8)));
        assert_eq!(blocks.get(2), None);
        assert_eq!(blocks.iter().len(), 2);
        assert_eq!(blocks.as_bytes(), &SACK_ACK[36..]);
        let collected: Vec<_> = blocks.into_iter().collect();
        assert_eq!(collected, [(0x5c6d_8b50, 0x5c6d_90f8), (0x5c6d_9c48, 0x5c6d_a1f0)]);

        let expected = Repr {
            src_port: 40000,
            dst_port: 80,
            seq_number: 0x8f3e_1c08,
            ack_number: 0x5c6d_8000,
            flags: Flags::ACK,
            window_len: 501,
            sack_ranges: [Some((0x5c6d_8b50, 0x5c6d_90f8)), Some((0x5c6d_9c48, 0x5c6d_a1f0)), None, None],
            timestamp: Some((0x0039_a5d0, 0x7b2a_03e8)),
            ..Repr::default()
        };
        round_trip(&SACK_ACK, expected, CLIENT.into(), SERVER.into());
    }

    #[test]
    fn golden_v6_data() {
        let packet = Packet::new_checked(&V6_DATA[..]).unwrap();
        assert_eq!(packet.header_len(), 32);
        assert_eq!(packet.flags(), Flags::PSH | Flags::ACK);
        assert_eq!(packet.flags().to_string(), "[P.]");
        assert_eq!(packet.payload(), b"HEAD / HTTP/1.0\r\n\r\n");
        assert!(packet.verify_checksum(V6_CLIENT.into(), V6_SERVER.into()));
        assert!(!packet.verify_checksum(CLIENT.into(), SERVER.into()), "IPv4 pseudo-header");
        let mut flipped = V6_DATA;
        flipped[50] ^= 0x20;
        assert!(!Packet::new_checked(&flipped[..]).unwrap().verify_checksum(V6_CLIENT.into(), V6_SERVER.into()));

        let expected = Repr {
            src_port: 51000,
            dst_port: 80,
            seq_number: 0x0bad_cafe,
            ack_number: 0x1020_3040,
            flags: Flags::PSH | Flags::ACK,
            window_len: 502,
            timestamp: Some((0x00c0_ffee, 0x00be_ef01)),
            payload_len: 19,
            ..Repr::default()
        };
        round_trip(&V6_DATA, expected, V6_CLIENT.into(), V6_SERVER.into());
    }

    #[test]
    fn length_checks() {
        assert_eq!(Packet::new_checked(&SYN[..19]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&[] as &[u8]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&SYN[..39]).unwrap_err(), Error::Truncated, "options cut short");
        let mut small = SYN;
        small[12] = 0x40; // data offset 4
        assert_eq!(Packet::new_checked(&small[..]).unwrap_err(), Error::Malformed);
        assert_eq!(Repr::parse(&Packet::new_unchecked(&small[..])).unwrap_err(), Error::Malformed);
        assert_eq!(Repr::parse(&Packet::new_unchecked(&SYN[..30])).unwrap_err(), Error::Truncated);
        // Data offset 5 on a longer buffer: the rest is payload.
        let mut bare = SYN;
        bare[12] = 0x50;
        let packet = Packet::new_checked(&bare[..]).unwrap();
        assert_eq!(packet.options(), &[] as &[u8]);
        assert_eq!(packet.options_iter().next(), None);
        assert_eq!(packet.payload(), &SYN[20..]);
        assert_eq!(Repr::parse(&packet).unwrap().payload_len, 20);
    }

    #[test]
    fn bad_option_is_malformed() {
        let mut bad = SYN;
        bad[21] = 5; // MSS length 5
        let packet = Packet::new_checked(&bad[..]).unwrap();
        let mut options = packet.options_iter();
        assert_eq!(options.next(), Some(Err(Error::Malformed)));
        assert_eq!(options.next(), None);
        assert_eq!(Repr::parse(&packet).unwrap_err(), Error::Malformed);
    }

    /// Collects the options of `bytes`.
    fn options(bytes: &[u8]) -> Vec<Result<TcpOption<'_>>> {
        OptionsIter::new(bytes).collect()
    }

    #[test]
    fn option_errors_end_the_iteration() {
        const FIVE_BLOCKS: [u8; 42] = {
            let mut bytes = [0u8; 42];
            bytes[0] = 0x05;
            bytes[1] = 42;
            bytes
        };
        let malformed: [&[u8]; 14] = [
            &[0x01, 0x1e],                            // kind with no length byte
            &[0x1e, 0x00, 0x01],                      // length 0
            &[0x1e, 0x01, 0x01],                      // length 1
            &[0x1e, 0x05, 0x01, 0x01],                // length past the end
            &[0x02, 0x03, 0x05],                      // MSS length 3
            &[0x02, 0x05, 0x05, 0xb4, 0x00],          // MSS length 5
            &[0x03, 0x02],                            // window scale length 2
            &[0x03, 0x04, 0x07, 0x00],                // window scale length 4
            &[0x04, 0x03, 0x00],                      // SACK-permitted length 3
            &[0x08, 0x08, 0, 0, 0, 0, 0, 0],          // timestamps length 8
            &[0x05, 0x02],                            // SACK with no block
            &[0x05, 0x06, 0, 0, 0, 0],                // SACK with half a block
            &[0x05, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0], // SACK length 11
            &FIVE_BLOCKS,                             // SACK length 42
        ];
        for bytes in malformed {
            let got = options(bytes);
            assert_eq!(got.last(), Some(&Err(Error::Malformed)), "{bytes:02x?}");
            assert_eq!(got.iter().filter(|o| o.is_err()).count(), 1, "{bytes:02x?}");
        }
        // What follows an error is not read.
        assert_eq!(options(&[0x1e, 0x01, 0x01, 0x01]), [Err(Error::Malformed)]);
    }

    #[test]
    fn end_of_list_and_unknown_options() {
        assert_eq!(
            options(&[0x01, 0x00, 0x02, 0x04, 0x05, 0xb4]),
            [Ok(TcpOption::NoOperation), Ok(TcpOption::EndOfList)],
            "nothing after end-of-list is read"
        );
        // TCP Fast Open cookie request (kind 34, RFC 7413), then an empty
        // experimental option.
        assert_eq!(
            options(&[0x22, 0x02, 0xfe, 0x04, 0xf9, 0x89]),
            [Ok(TcpOption::Unknown { kind: 34, data: &[] }), Ok(TcpOption::Unknown { kind: 254, data: &[0xf9, 0x89] })]
        );
        assert_eq!(options(&[]), []);
        // A four-block SACK is the largest allowed.
        let mut four = [0u8; 34];
        four[0] = 0x05;
        four[1] = 34;
        let got = options(&four);
        assert!(matches!(got[..], [Ok(TcpOption::SackRange(blocks))] if blocks.len() == 4));
    }

    #[test]
    fn parse_skips_unknown_and_last_wins() {
        let mut bytes = [0u8; 44];
        bytes[..20].copy_from_slice(&SYN[..20]);
        bytes[12] = 0xb0; // data offset 11
        bytes[20..44].copy_from_slice(&[
            0x02, 0x04, 0x05, 0xb4, // MSS 1460
            0x22, 0x02, // fast open cookie request
            0x02, 0x04, 0x05, 0x8c, // MSS 1420
            0x05, 0x0a, 0, 0, 0, 1, 0, 0, 0, 2,    // SACK (1, 2)
            0x00, // end of list
            0x02, 0x04, 0xff, // garbage after the end: padding
        ]);
        let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(repr.max_seg_size, Some(1420));
        assert_eq!(repr.sack_ranges, [Some((1, 2)), None, None, None]);
        assert_eq!(repr.payload_len, 0);
    }

    #[test]
    fn emit_errors() {
        let mut buffer = [0u8; 60];
        let mut packet = Packet::new_unchecked(&mut buffer[..]);
        let gap = Repr { sack_ranges: [Some((1, 2)), None, Some((3, 4)), None], ..Repr::default() };
        assert_eq!(gap.emit(&mut packet).unwrap_err(), Error::Malformed);
        let full = Repr { sack_ranges: [Some((1, 2)); 4], ..syn_repr() };
        assert!(full.header_len() > 60);
        assert_eq!(full.emit(&mut packet).unwrap_err(), Error::Malformed);
        // Timestamps leave room for three blocks, not four.
        let three = Repr { sack_ranges: [Some((1, 2)), Some((3, 4)), Some((5, 6)), None], ..syn_repr() };
        assert_eq!(three.header_len(), 20 + 4 + 12 + 4 + 28);
        assert_eq!(three.emit(&mut packet).unwrap_err(), Error::Malformed);
        let three = Repr { max_seg_size: None, window_scale: None, ..three };
        assert_eq!(three.header_len(), 60);
        three.emit(&mut packet).unwrap();
        assert_eq!(Repr::parse(&Packet::new_checked(&buffer[..]).unwrap()).unwrap(), three);
        let mut short = [0u8; 39];
        assert_eq!(syn_repr().emit(&mut Packet::new_unchecked(&mut short[..])).unwrap_err(), Error::Truncated);
        let mut tiny = [0u8; 19];
        assert_eq!(Repr::default().emit(&mut Packet::new_unchecked(&mut tiny[..])).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn emit_layouts() {
        let mut buffer = [0u8; 60];
        let sack_only = Repr { sack_permitted: true, window_scale: Some(14), ..Repr::default() };
        sack_only.emit(&mut Packet::new_unchecked(&mut buffer[..])).unwrap();
        assert_eq!(buffer[12], 0x70);
        assert_eq!(&buffer[20..28], &[0x01, 0x01, 0x04, 0x02, 0x01, 0x03, 0x03, 0x0e]);
        let ts_only = Repr { timestamp: Some((1, 2)), ..Repr::default() };
        ts_only.emit(&mut Packet::new_unchecked(&mut buffer[..])).unwrap();
        assert_eq!(buffer[12], 0x80);
        assert_eq!(&buffer[20..32], &[0x01, 0x01, 0x08, 0x0a, 0, 0, 0, 1, 0, 0, 0, 2]);
        let bare = Repr { flags: Flags::RST | Flags::ACK, ..Repr::default() };
        assert_eq!(bare.header_len(), HEADER_LEN);
        bare.emit(&mut Packet::new_unchecked(&mut buffer[..])).unwrap();
        assert_eq!(&buffer[12..14], &[0x50, 0x14]);
    }

    #[test]
    fn setters_round_trip() {
        let mut bytes = [0u8; 44];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_src_port(40000);
        packet.set_dst_port(443);
        packet.set_seq_number(0xdead_beef);
        packet.set_ack_number(0x0102_0304);
        packet.set_header_len(24);
        packet.set_flags(Flags::SYN | Flags::ECE | Flags::CWR);
        packet.set_window_len(1024);
        packet.set_checksum(0x1234);
        packet.set_urgent_at(7);
        packet.options_mut().copy_from_slice(&[0x02, 0x04, 0x05, 0xb4]);
        packet.payload_mut().copy_from_slice(&[9; 20]);
        assert_eq!(packet.src_port(), 40000);
        assert_eq!(packet.dst_port(), 443);
        assert_eq!(packet.seq_number(), 0xdead_beef);
        assert_eq!(packet.ack_number(), 0x0102_0304);
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.flags(), Flags::SYN | Flags::ECE | Flags::CWR);
        assert!(packet.ece() && packet.cwr());
        assert_eq!(packet.window_len(), 1024);
        assert_eq!(packet.checksum(), 0x1234);
        assert_eq!(packet.urgent_at(), 7);
        assert_eq!(packet.options_iter().collect::<Vec<_>>(), [Ok(TcpOption::MaxSegmentSize(1460))]);
        assert_eq!(packet.payload(), &[9; 20]);

        packet.set_syn(false);
        packet.set_ack(true);
        packet.set_fin(true);
        packet.set_rst(true);
        packet.set_psh(true);
        packet.set_urg(true);
        packet.set_ece(false);
        packet.set_cwr(false);
        packet.set_ns(true);
        let all = Flags::ACK | Flags::FIN | Flags::RST | Flags::PSH | Flags::URG | Flags::NS;
        assert_eq!(packet.flags(), all);
        assert_eq!(packet.header_len(), 24, "flags leave the data offset alone");
        packet.set_header_len(60);
        assert_eq!(packet.flags(), all, "the data offset leaves the flags alone");
        assert_eq!(packet.into_inner()[12..14], [0xf1, 0x3d]);

        // Reserved bits are kept by the setters and ignored by the getters.
        let mut reserved = SYN;
        reserved[12] |= 0x0e;
        let mut packet = Packet::new_unchecked(&mut reserved[..]);
        assert_eq!(packet.header_len(), 40);
        assert_eq!(packet.flags(), Flags::SYN);
        packet.set_flags(Flags::ACK);
        packet.set_header_len(20);
        assert_eq!(reserved[12..14], [0x5e, 0x10]);
    }

    #[test]
    fn flags() {
        let mut flags = Flags::default();
        assert!(flags.is_empty());
        assert_eq!(flags.to_string(), "[none]");
        flags.insert(Flags::SYN);
        flags |= Flags::ACK;
        assert_eq!(flags.to_string(), "[S.]");
        assert!(flags.contains(Flags::SYN | Flags::ACK));
        assert!(!flags.contains(Flags::SYN | Flags::FIN));
        flags.remove(Flags::SYN);
        assert_eq!(flags, Flags::ACK);
        assert_eq!(Flags::from_bits_truncate(0xffff).bits(), 0x1ff);
        assert_eq!(Flags::from_bits_truncate(0xffff).to_string(), "[FSRP.UEWe]");
        assert_eq!((Flags::SYN | Flags::ECE | Flags::CWR).to_string(), "[SEW]");
        assert_eq!(Flags::NS.bits(), 0x100);
    }

    #[test]
    fn checksum_fill_mixed_families_is_zero() {
        let mut bytes = SYN;
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.fill_checksum(CLIENT.into(), V6_SERVER.into());
        assert_eq!(packet.checksum(), 0);
        packet.fill_checksum(CLIENT.into(), SERVER.into());
        assert_eq!(packet.checksum(), 0xdf39);
    }

    /// Cross-check against an independent parser.
    #[test]
    fn agrees_with_etherparse() {
        let (header, rest) = etherparse::TcpHeader::from_slice(&SACK_ACK).unwrap();
        assert!(rest.is_empty());
        let repr = Repr::parse(&Packet::new_checked(&SACK_ACK[..]).unwrap()).unwrap();
        assert_eq!(header.sequence_number, repr.seq_number);
        assert_eq!(header.acknowledgment_number, repr.ack_number);
        assert_eq!(header.window_size, repr.window_len);
        assert_eq!(header.checksum, 0x8504);
        assert_eq!(header.header_len(), repr.header_len());
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn repr() -> impl Strategy<Value = Repr> {
            let fixed =
                (any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>(), 0u16..0x200, any::<u16>(), any::<u16>());
            let options = (
                any::<Option<u16>>(),
                any::<Option<u8>>(),
                any::<bool>(),
                0usize..=4,
                any::<[(u32, u32); 4]>(),
                any::<Option<(u32, u32)>>(),
                0usize..100,
            );
            (fixed, options).prop_map(
                |((src, dst, seq, ack, flags, win, urg), (mss, ws, sack_ok, n, blocks, ts, payload_len))| {
                    let mut sack_ranges = [None; 4];
                    for (slot, block) in sack_ranges.iter_mut().zip(blocks).take(n) {
                        *slot = Some(block);
                    }
                    Repr {
                        src_port: src,
                        dst_port: dst,
                        seq_number: seq,
                        ack_number: ack,
                        flags: Flags::from_bits_truncate(flags),
                        window_len: win,
                        urgent_at: urg,
                        max_seg_size: mss,
                        window_scale: ws,
                        sack_permitted: sack_ok,
                        sack_ranges,
                        timestamp: ts,
                        payload_len,
                    }
                },
            )
        }

        proptest! {
            #[test]
            fn emit_then_parse_is_identity(repr in repr()) {
                let mut buffer = vec![0u8; repr.buffer_len()];
                match repr.emit(&mut Packet::new_unchecked(&mut buffer[..])) {
                    Ok(()) => {
                        let packet = Packet::new_checked(&buffer[..]).unwrap();
                        prop_assert_eq!(Repr::parse(&packet).unwrap(), repr);
                    }
                    Err(error) => {
                        prop_assert_eq!(error, Error::Malformed);
                        prop_assert!(repr.header_len() > 60);
                    }
                }
            }

            #[test]
            fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
                if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                    let _ = (packet.src_port(), packet.dst_port(), packet.seq_number(), packet.ack_number());
                    let _ = (packet.flags(), packet.window_len(), packet.checksum(), packet.urgent_at());
                    let _ = (packet.options(), packet.payload(), packet.options_iter().count());
                    let _ = packet.verify_checksum(CLIENT.into(), SERVER.into());
                    if let Ok(repr) = Repr::parse(&packet) {
                        // Packed options may not fit once laid out canonically.
                        let mut out = vec![0u8; repr.buffer_len()];
                        match repr.emit(&mut Packet::new_unchecked(&mut out[..])) {
                            Ok(()) => prop_assert_eq!(Repr::parse(&Packet::new_checked(&out[..]).unwrap()).unwrap(), repr),
                            Err(error) => prop_assert!(error == Error::Malformed && repr.header_len() > 60),
                        }
                    }
                }
            }
        }
    }
}
