//! IPv6 (RFC 8200): the fixed header view and its `Repr`, the views of the
//! extension headers (hop-by-hop, routing, fragment, destination options;
//! RFC 8200 §4), and a bounded walk of the extension-header chain to the
//! upper-layer header.
//!
//! The packet quoted inside an ICMPv6 error is usually cut short, so
//! [`Packet::new_quoted`] accepts a payload length larger than the buffer.
//!
//! What this module does not do: interpret the options inside hop-by-hop and
//! destination options headers, process routing headers, reassemble
//! fragments, or parse AH/ESP (the walk stops there). Jumbograms (RFC 2675,
//! payload length zero with a Jumbo Payload option) are not supported: such a
//! packet is seen as having an empty payload.

use core::net::Ipv6Addr;

use super::{read_u16, read_u32, write_u16, write_u32, Error, IpProtocol, Result};

mod field {
    use core::ops::Range;

    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    pub(super) const VER_TC_FLOW: Range<usize> = 0..4;
    pub(super) const PAYLOAD_LEN: Range<usize> = 4..6;
    pub(super) const NEXT_HEADER: usize = 6;
    pub(super) const HOP_LIMIT: usize = 7;
    pub(super) const SRC_ADDR: Range<usize> = 8..24;
    pub(super) const DST_ADDR: Range<usize> = 24..40;
    pub(super) const PAYLOAD: usize = 40;
}

/// The length of the fixed IPv6 header.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// The largest flow label, which is 20 bits wide.
const FLOW_LABEL_MAX: u32 = 0x000f_ffff;

/// A view of an IPv6 packet in a buffer.
///
/// After [`Packet::new_checked`] succeeds, the buffer holds the fixed header
/// and the whole payload the payload length field claims; after
/// [`Packet::new_quoted`] succeeds, it holds the fixed header only. In both
/// cases no getter panics.
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

    /// Wraps the packet quoted in an ICMPv6 error (RFC 4443 §2.4(c)) and
    /// checks it with [`Packet::check_quoted`].
    pub fn new_quoted(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_quoted()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the fixed header and the payload length
    /// the header claims: `Truncated` if it does not, `Malformed` if the
    /// version is not 6. A buffer longer than the packet (link padding) is
    /// accepted.
    pub fn check_len(&self) -> Result<()> {
        self.check_quoted()?;
        if HEADER_LEN + usize::from(self.payload_len()) > self.buffer.as_ref().len() {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Like [`Packet::check_len`], but the payload may be cut short: only
    /// the fixed header must be present.
    pub fn check_quoted(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else if self.version() != 6 {
            Err(Error::Malformed)
        } else {
            Ok(())
        }
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW.start] >> 4
    }

    pub fn traffic_class(&self) -> u8 {
        (read_u32(self.buffer.as_ref(), field::VER_TC_FLOW.start) >> 20) as u8
    }

    pub fn flow_label(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VER_TC_FLOW.start) & FLOW_LABEL_MAX
    }

    /// The payload length field: everything after the fixed header,
    /// extension headers included.
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PAYLOAD_LEN.start)
    }

    /// The first header after the fixed header.
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.next_header_number())
    }

    /// The Next Header field as the number on the wire:
    /// [`Packet::next_header`] without the conversion, for code that hashes
    /// or compares it per packet.
    #[inline(always)]
    pub fn next_header_number(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_addr(&self.buffer.as_ref()[field::SRC_ADDR]))
    }

    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(read_addr(&self.buffer.as_ref()[field::DST_ADDR]))
    }

    /// The payload (extension headers included), as long as the payload
    /// length field says, or as much of it as the buffer holds for a quoted
    /// packet; link padding is cut off.
    pub fn payload(&self) -> &[u8] {
        let buffer = self.buffer.as_ref();
        let end = (HEADER_LEN + usize::from(self.payload_len())).clamp(HEADER_LEN, buffer.len());
        &buffer[HEADER_LEN..end]
    }

    /// Walks the extension headers of the payload to the upper-layer
    /// header: see [`upper_layer`].
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        upper_layer(self.next_header(), self.payload())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version nibble (6 for IPv6).
    pub fn set_version(&mut self, value: u8) {
        let buffer = self.buffer.as_mut();
        buffer[field::VER_TC_FLOW.start] = (buffer[field::VER_TC_FLOW.start] & 0x0f) | (value << 4);
    }

    pub fn set_traffic_class(&mut self, value: u8) {
        let buffer = self.buffer.as_mut();
        let word = read_u32(buffer, field::VER_TC_FLOW.start);
        write_u32(buffer, field::VER_TC_FLOW.start, (word & 0xf00f_ffff) | (u32::from(value) << 20));
    }

    /// Sets the flow label; bits above the low 20 are ignored.
    pub fn set_flow_label(&mut self, value: u32) {
        let buffer = self.buffer.as_mut();
        let word = read_u32(buffer, field::VER_TC_FLOW.start);
        write_u32(buffer, field::VER_TC_FLOW.start, (word & !FLOW_LABEL_MAX) | (value & FLOW_LABEL_MAX));
    }

    pub fn set_payload_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::PAYLOAD_LEN.start, value)
    }

    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[field::NEXT_HEADER] = value.into()
    }

    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = value
    }

    pub fn set_src_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets())
    }

    pub fn set_dst_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets())
    }

    /// The payload, mutable, as long as the payload length field says (or
    /// as the buffer holds).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = (HEADER_LEN + usize::from(self.payload_len())).clamp(HEADER_LEN, self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// Copies a 16-byte address out of a slice of exactly that length.
fn read_addr(bytes: &[u8]) -> [u8; 16] {
    let mut addr = [0u8; 16];
    addr.copy_from_slice(bytes);
    addr
}

/// The fixed IPv6 header's meaning. The payload (extension headers
/// included) is not part of it: `payload_len` says how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub src_addr: Ipv6Addr,
    pub dst_addr: Ipv6Addr,
    /// The first header after the fixed header.
    pub next_header: IpProtocol,
    /// Must be at most 65535 for [`Repr::emit`].
    pub payload_len: usize,
    pub hop_limit: u8,
    pub traffic_class: u8,
    /// Must be below 2^20 for [`Repr::emit`].
    pub flow_label: u32,
}

impl Repr {
    /// Reads a packet, checking its length first.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }

    /// The fixed header's length: what [`Repr::emit`] writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The header and payload length (saturating: a length too large to
    /// encode is refused by [`Repr::emit`]).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN.saturating_add(self.payload_len)
    }

    /// Writes the fixed header. Returns `Malformed` if the flow label does
    /// not fit 20 bits or the payload length 16 bits, and `Truncated` if the
    /// buffer is shorter than [`Repr::header_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut Packet<&mut T>) -> Result<()> {
        let payload_len = u16::try_from(self.payload_len).map_err(|_| Error::Malformed)?;
        if self.flow_label > FLOW_LABEL_MAX {
            return Err(Error::Malformed);
        }
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        packet.set_version(6);
        packet.set_traffic_class(self.traffic_class);
        packet.set_flow_label(self.flow_label);
        packet.set_payload_len(payload_len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        Ok(())
    }
}

mod ext_field {
    use core::ops::Range;

    pub(super) const NEXT_HEADER: usize = 0;
    /// Hdr Ext Len: the length in 8-byte units, not counting the first 8.
    pub(super) const LENGTH: usize = 1;
    pub(super) const DATA: usize = 2;

    // The fragment header (RFC 8200 §4.5).
    /// Fragment offset (13 bits, in 8-byte units), two reserved bits, M flag.
    pub(super) const FRAG_OFFSET: Range<usize> = 2..4;
    pub(super) const IDENT: Range<usize> = 4..8;
}

/// The shortest extension header, and the unit of their lengths.
const EXT_UNIT: usize = 8;

/// A view of one of the extension headers that share the "next header, hdr
/// ext len, data" layout: hop-by-hop options, routing and destination
/// options (RFC 8200 §4.3, §4.4, §4.6). Not for the fragment header, whose
/// second byte is reserved: see [`FragmentHeader`].
///
/// After [`ExtHeader::new_checked`] succeeds, the buffer holds the whole
/// header and no getter panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ExtHeader<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> ExtHeader<T> {
        ExtHeader { buffer }
    }

    /// Wraps a buffer and checks it with [`ExtHeader::check_len`].
    pub fn new_checked(buffer: T) -> Result<ExtHeader<T>> {
        let header = ExtHeader::new_unchecked(buffer);
        header.check_len()?;
        Ok(header)
    }

    /// Checks that the buffer holds at least 8 bytes and the whole length
    /// the header claims; `Truncated` if not. Bytes after the header (the
    /// next header) are accepted.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < EXT_UNIT || len < self.header_len() {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[ext_field::NEXT_HEADER])
    }

    /// The raw Hdr Ext Len field: 8-byte units after the first 8.
    pub fn hdr_ext_len(&self) -> u8 {
        self.buffer.as_ref()[ext_field::LENGTH]
    }

    /// The whole header's length in bytes: `(hdr ext len + 1) * 8`.
    pub fn header_len(&self) -> usize {
        (usize::from(self.hdr_ext_len()) + 1) * EXT_UNIT
    }

    /// The options or routing data: bytes 2 up to the header's length.
    pub fn data(&self) -> &[u8] {
        let buffer = self.buffer.as_ref();
        let end = self.header_len().min(buffer.len());
        &buffer[ext_field::DATA..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ExtHeader<T> {
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[ext_field::NEXT_HEADER] = value.into()
    }

    /// Sets the raw Hdr Ext Len field: 8-byte units after the first 8.
    pub fn set_hdr_ext_len(&mut self, value: u8) {
        self.buffer.as_mut()[ext_field::LENGTH] = value
    }

    /// The options or routing data, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let end = self.header_len().min(self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[ext_field::DATA..end]
    }
}

/// The length of the fragment header.
pub const FRAGMENT_HEADER_LEN: usize = 8;

/// A view of a fragment header (RFC 8200 §4.5).
///
/// After [`FragmentHeader::new_checked`] succeeds, the buffer holds the
/// 8-byte header and no getter panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FragmentHeader<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> FragmentHeader<T> {
        FragmentHeader { buffer }
    }

    /// Wraps a buffer and checks it with [`FragmentHeader::check_len`].
    pub fn new_checked(buffer: T) -> Result<FragmentHeader<T>> {
        let header = FragmentHeader::new_unchecked(buffer);
        header.check_len()?;
        Ok(header)
    }

    /// Checks that the buffer holds the 8-byte header; `Truncated` if not.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < FRAGMENT_HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[ext_field::NEXT_HEADER])
    }

    /// The fragment offset, in bytes (a multiple of 8).
    pub fn frag_offset(&self) -> u16 {
        read_u16(self.buffer.as_ref(), ext_field::FRAG_OFFSET.start) & !0x7
    }

    /// The M flag: more fragments follow.
    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), ext_field::FRAG_OFFSET.start) & 0x1 != 0
    }

    pub fn ident(&self) -> u32 {
        read_u32(self.buffer.as_ref(), ext_field::IDENT.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> FragmentHeader<T> {
    pub fn set_next_header(&mut self, value: IpProtocol) {
        self.buffer.as_mut()[ext_field::NEXT_HEADER] = value.into()
    }

    /// Zeroes the reserved byte (RFC 8200 §4.5: "initialized to zero for
    /// transmission").
    pub fn clear_reserved(&mut self) {
        self.buffer.as_mut()[ext_field::LENGTH] = 0;
        let word = read_u16(self.buffer.as_ref(), ext_field::FRAG_OFFSET.start);
        write_u16(self.buffer.as_mut(), ext_field::FRAG_OFFSET.start, word & !0x6);
    }

    /// Sets the fragment offset, in bytes; the low three bits are ignored.
    pub fn set_frag_offset(&mut self, value: u16) {
        let word = read_u16(self.buffer.as_ref(), ext_field::FRAG_OFFSET.start);
        write_u16(self.buffer.as_mut(), ext_field::FRAG_OFFSET.start, (value & !0x7) | (word & 0x7));
    }

    pub fn set_more_frags(&mut self, value: bool) {
        let word = read_u16(self.buffer.as_ref(), ext_field::FRAG_OFFSET.start);
        write_u16(self.buffer.as_mut(), ext_field::FRAG_OFFSET.start, (word & !0x1) | u16::from(value));
    }

    pub fn set_ident(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), ext_field::IDENT.start, value)
    }
}

/// A fragment header's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentRepr {
    /// The first header of the fragmentable part (RFC 8200 §4.5).
    pub next_header: IpProtocol,
    /// The offset in bytes; must be a multiple of 8 for [`FragmentRepr::emit`].
    pub frag_offset: u16,
    pub more_frags: bool,
    pub ident: u32,
}

impl FragmentRepr {
    /// Reads a fragment header, checking its length first. The reserved
    /// fields are ignored (RFC 8200 §4.5).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(header: &FragmentHeader<&T>) -> Result<FragmentRepr> {
        header.check_len()?;
        Ok(FragmentRepr {
            next_header: header.next_header(),
            frag_offset: header.frag_offset(),
            more_frags: header.more_frags(),
            ident: header.ident(),
        })
    }

    /// The header's length: what [`FragmentRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        FRAGMENT_HEADER_LEN
    }

    /// Writes the header, reserved fields zero. Returns `Malformed` if the
    /// offset is not a multiple of 8, and `Truncated` if the buffer is
    /// shorter than 8 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, header: &mut FragmentHeader<&mut T>) -> Result<()> {
        if self.frag_offset % 8 != 0 {
            return Err(Error::Malformed);
        }
        header.check_len()?;
        header.set_next_header(self.next_header);
        header.clear_reserved();
        header.set_frag_offset(self.frag_offset);
        header.set_more_frags(self.more_frags);
        header.set_ident(self.ident);
        Ok(())
    }
}

/// Walks an IPv6 extension-header chain, yielding each extension header's
/// kind and bytes. It stops at the first protocol that is not one of the
/// four extension headers (see [`IpProtocol::is_ipv6_extension`]), and after
/// the fragment header of a non-first fragment (offset not zero), whose
/// following bytes continue an earlier fragment rather than start a header.
///
/// It yields `Err(Truncated)` for a header that runs past the payload and
/// `Err(Malformed)` for a hop-by-hop header anywhere but first (RFC 8200
/// §4.1, §4.3) or a second fragment header; after an error it yields
/// nothing more. Every header is at least 8 bytes long, so the walk takes at
/// most `payload.len() / 8 + 1` steps.
#[derive(Debug, Clone)]
pub struct ExtHeaders<'a> {
    payload: &'a [u8],
    next_header: IpProtocol,
    offset: usize,
    seen_fragment: bool,
    done: bool,
}

impl<'a> ExtHeaders<'a> {
    /// Starts a walk at the header of kind `first` (the IPv6 Next Header
    /// field) at the start of `payload` (the IPv6 payload).
    pub fn new(first: IpProtocol, payload: &'a [u8]) -> ExtHeaders<'a> {
        ExtHeaders { payload, next_header: first, offset: 0, seen_fragment: false, done: false }
    }

    /// The kind of the header at [`ExtHeaders::offset`]: after the walk
    /// ended without error, the upper-layer protocol.
    pub fn next_header(&self) -> IpProtocol {
        self.next_header
    }

    /// How far into the payload the walk has come: after the walk ended
    /// without error, where the upper-layer header starts.
    pub fn offset(&self) -> usize {
        self.offset
    }

    fn fail(&mut self, error: Error) -> Option<Result<(IpProtocol, &'a [u8])>> {
        self.done = true;
        Some(Err(error))
    }
}

impl<'a> Iterator for ExtHeaders<'a> {
    type Item = Result<(IpProtocol, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        let kind = self.next_header;
        if self.done || !kind.is_ipv6_extension() {
            self.done = true;
            return None;
        }
        if kind == IpProtocol::HopByHop && self.offset != 0 {
            return self.fail(Error::Malformed);
        }
        let rest = self.payload.get(self.offset..).unwrap_or_default();
        let (len, next, last) = if kind == IpProtocol::Ipv6Frag {
            if self.seen_fragment {
                return self.fail(Error::Malformed);
            }
            self.seen_fragment = true;
            match FragmentHeader::new_checked(rest) {
                Ok(header) => (FRAGMENT_HEADER_LEN, header.next_header(), header.frag_offset() != 0),
                Err(error) => return self.fail(error),
            }
        } else {
            match ExtHeader::new_checked(rest) {
                Ok(header) => (header.header_len(), header.next_header(), false),
                Err(error) => return self.fail(error),
            }
        };
        self.offset += len;
        self.next_header = next;
        self.done = last;
        Some(Ok((kind, &rest[..len])))
    }
}

/// Where the upper-layer header of an IPv6 packet is, found by
/// [`upper_layer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// The first header that is not an extension header walked here: TCP,
    /// UDP, ICMPv6, No Next Header, ESP, AH, or an unknown one. For a
    /// non-first fragment, the fragment header's next header.
    pub protocol: IpProtocol,
    /// Where it starts, in bytes into the IPv6 payload.
    pub offset: usize,
    /// The fragment header, if the packet has one. If its `frag_offset` is
    /// not zero, no upper-layer header follows: `offset` points at fragment
    /// data.
    pub fragment: Option<FragmentRepr>,
}

/// Walks the extension-header chain of an IPv6 payload, starting with
/// header kind `first`, to the upper-layer header. Returns `Truncated` if a
/// header runs past the payload, and `Malformed` for a hop-by-hop header
/// anywhere but first (RFC 8200 §4.1, §4.3) or more than one fragment header.
/// The walk stops after the fragment header of a non-first fragment.
pub fn upper_layer(first: IpProtocol, payload: &[u8]) -> Result<UpperLayer> {
    let mut walk = ExtHeaders::new(first, payload);
    let mut fragment = None;
    for header in walk.by_ref() {
        let (kind, bytes) = header?;
        if kind == IpProtocol::Ipv6Frag {
            fragment = Some(FragmentRepr::parse(&FragmentHeader::new_unchecked(bytes))?);
        }
    }
    Ok(UpperLayer { protocol: walk.next_header(), offset: walk.offset(), fragment })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::udp;

    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// A DNS query over UDP from [2001:db8::1]:53000 to [2001:db8::2]:53,
    /// marked EF, with a flow label; the UDP checksum computed by hand.
    const UDP_PACKET: [u8; 52] = [
        0x6b, 0x81, 0x23, 0x45, // version 6, traffic class 0xb8 (EF), flow label 0x12345
        0x00, 0x0c, // payload length 12
        0x11, // next header UDP
        0x40, // hop limit 64
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // src 2001:db8::1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // dst 2001:db8::2
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, //
        0xcf, 0x08, // UDP src port 53000
        0x00, 0x35, // UDP dst port 53
        0x00, 0x0c, // UDP length 12
        0x37, 0x86, // UDP checksum
        0xde, 0xad, 0xbe, 0xef, // UDP payload
    ];

    /// A first fragment whose chain is hop-by-hop (Router Alert), destination
    /// options (padding only), fragment, then TCP at offset 24.
    const CHAIN_PACKET: [u8; 88] = [
        0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
        0x00, 0x30, // payload length 48
        0x00, // next header hop-by-hop
        0x40, // hop limit 64
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // src 2001:db8::1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // dst 2001:db8::2
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, //
        // hop-by-hop options, offset 0
        0x3c, // next header destination options
        0x00, // hdr ext len 0: 8 bytes
        0x05, 0x02, 0x00, 0x00, // Router Alert (RFC 2711), value 0 (MLD)
        0x01, 0x00, // PadN, 0 bytes
        // destination options, offset 8
        0x2c, // next header fragment
        0x00, // hdr ext len 0: 8 bytes
        0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // PadN, 4 bytes
        // fragment header, offset 16
        0x06, // next header TCP
        0x00, // reserved
        0x00, 0x01, // offset 0, M = 1
        0x00, 0x01, 0xe2, 0x40, // identification 123456
        // TCP header, offset 24 (checksum covers the reassembled segment)
        0xc0, 0x00, // src port 49152
        0x00, 0x50, // dst port 80
        0x00, 0x00, 0x10, 0x00, // sequence number
        0x00, 0x00, 0x20, 0x00, // acknowledgment number
        0x50, 0x18, // data offset 5, flags PSH|ACK
        0xff, 0xff, // window
        0x12, 0x34, // checksum
        0x00, 0x00, // urgent pointer
        0x47, 0x45, 0x54, 0x20, // "GET "
    ];

    /// The second fragment of a UDP datagram, from byte 1448 on.
    const LATER_FRAGMENT: [u8; 56] = [
        0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
        0x00, 0x10, // payload length 16
        0x2c, // next header fragment
        0x40, // hop limit 64
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // src 2001:db8::1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // dst 2001:db8::2
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, //
        0x11, // next header UDP
        0x00, // reserved
        0x05, 0xa8, // offset 181 * 8 = 1448, M = 0
        0x00, 0x01, 0xe2, 0x41, // identification 123457
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // fragment data
    ];

    #[test]
    fn golden_view() {
        let packet = Packet::new_checked(&UDP_PACKET[..]).unwrap();
        assert_eq!(packet.version(), 6);
        assert_eq!(packet.traffic_class(), 0xb8);
        assert_eq!(packet.flow_label(), 0x12345);
        assert_eq!(packet.payload_len(), 12);
        assert_eq!(packet.next_header(), IpProtocol::Udp);
        assert_eq!(packet.hop_limit(), 64);
        assert_eq!(packet.src_addr(), SRC);
        assert_eq!(packet.dst_addr(), DST);
        assert_eq!(packet.payload(), &UDP_PACKET[40..]);
        assert_eq!(packet.upper_layer(), Ok(UpperLayer { protocol: IpProtocol::Udp, offset: 0, fragment: None }));
        let datagram = udp::Packet::new_checked(packet.payload()).unwrap();
        assert!(datagram.verify_checksum(SRC.into(), DST.into()));
    }

    fn udp_repr() -> Repr {
        Repr {
            src_addr: SRC,
            dst_addr: DST,
            next_header: IpProtocol::Udp,
            payload_len: 12,
            hop_limit: 64,
            traffic_class: 0xb8,
            flow_label: 0x12345,
        }
    }

    #[test]
    fn golden_parse_emit() {
        let repr = Repr::parse(&Packet::new_checked(&UDP_PACKET[..]).unwrap()).unwrap();
        assert_eq!(repr, udp_repr());
        assert_eq!(repr.header_len(), 40);
        assert_eq!(repr.buffer_len(), 52);
        let mut bytes = [0xffu8; 52];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        repr.emit(&mut packet).unwrap();
        packet.payload_mut().copy_from_slice(&UDP_PACKET[40..]);
        assert_eq!(bytes, UDP_PACKET);
    }

    #[test]
    fn emit_errors() {
        let mut bytes = [0u8; 40];
        let repr = Repr { flow_label: 0x10_0000, ..udp_repr() };
        assert_eq!(repr.emit(&mut Packet::new_unchecked(&mut bytes[..])), Err(Error::Malformed));
        let repr = Repr { payload_len: 65536, ..udp_repr() };
        assert_eq!(repr.emit(&mut Packet::new_unchecked(&mut bytes[..])), Err(Error::Malformed));
        let repr = Repr { payload_len: 65535, flow_label: 0xf_ffff, ..udp_repr() };
        assert_eq!(repr.emit(&mut Packet::new_unchecked(&mut bytes[..39])), Err(Error::Truncated));
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..])).unwrap();
        // The header alone is a valid quoted packet, and parses back.
        let packet = Packet::new_quoted(&bytes[..]).unwrap();
        assert_eq!(packet.payload_len(), 65535);
        assert_eq!(packet.flow_label(), 0xf_ffff);
        assert_eq!(packet.traffic_class(), 0xb8);
    }

    #[test]
    fn length_checks() {
        assert_eq!(Packet::new_checked(&UDP_PACKET[..39]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&UDP_PACKET[..51]).unwrap_err(), Error::Truncated);
        assert_eq!(Repr::parse(&Packet::new_unchecked(&UDP_PACKET[..51])).unwrap_err(), Error::Truncated);
        let mut v4 = UDP_PACKET;
        v4[0] = 0x45;
        assert_eq!(Packet::new_checked(&v4[..]).unwrap_err(), Error::Malformed);
        assert_eq!(Packet::new_quoted(&v4[..]).unwrap_err(), Error::Malformed);
        // Link padding after the packet is not payload.
        let mut padded = [0u8; 60];
        padded[..52].copy_from_slice(&UDP_PACKET);
        let packet = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(packet.payload(), &UDP_PACKET[40..]);
    }

    #[test]
    fn quoted_packet() {
        assert_eq!(Packet::new_quoted(&UDP_PACKET[..39]).unwrap_err(), Error::Truncated);
        let packet = Packet::new_quoted(&UDP_PACKET[..48]).unwrap();
        assert_eq!(packet.payload_len(), 12);
        assert_eq!(packet.payload(), &UDP_PACKET[40..48]);
        assert_eq!(packet.upper_layer().unwrap().protocol, IpProtocol::Udp);
        let packet = Packet::new_quoted(&UDP_PACKET[..40]).unwrap();
        assert_eq!(packet.payload(), &[] as &[u8]);
        // A quoted chain cut inside an extension header.
        let packet = Packet::new_quoted(&CHAIN_PACKET[..60]).unwrap();
        assert_eq!(packet.upper_layer(), Err(Error::Truncated));
    }

    #[test]
    fn extension_chain() {
        let packet = Packet::new_checked(&CHAIN_PACKET[..]).unwrap();
        assert_eq!(packet.next_header(), IpProtocol::HopByHop);
        let fragment = FragmentRepr { next_header: IpProtocol::Tcp, frag_offset: 0, more_frags: true, ident: 123456 };
        assert_eq!(
            packet.upper_layer(),
            Ok(UpperLayer { protocol: IpProtocol::Tcp, offset: 24, fragment: Some(fragment) })
        );
        assert_eq!(packet.payload()[24..26], [0xc0, 0x00]);

        let mut walk = ExtHeaders::new(packet.next_header(), packet.payload());
        let (kind, bytes) = walk.next().unwrap().unwrap();
        assert_eq!(kind, IpProtocol::HopByHop);
        let hbh = ExtHeader::new_checked(bytes).unwrap();
        assert_eq!(hbh.next_header(), IpProtocol::Ipv6Opts);
        assert_eq!(hbh.hdr_ext_len(), 0);
        assert_eq!(hbh.header_len(), 8);
        assert_eq!(hbh.data(), &[0x05, 0x02, 0x00, 0x00, 0x01, 0x00]);
        let (kind, bytes) = walk.next().unwrap().unwrap();
        assert_eq!(kind, IpProtocol::Ipv6Opts);
        assert_eq!(ExtHeader::new_checked(bytes).unwrap().next_header(), IpProtocol::Ipv6Frag);
        let (kind, bytes) = walk.next().unwrap().unwrap();
        assert_eq!(kind, IpProtocol::Ipv6Frag);
        let header = FragmentHeader::new_checked(bytes).unwrap();
        assert_eq!(header.next_header(), IpProtocol::Tcp);
        assert_eq!(header.frag_offset(), 0);
        assert!(header.more_frags());
        assert_eq!(header.ident(), 123456);
        assert_eq!(FragmentRepr::parse(&header), Ok(fragment));
        assert!(walk.next().is_none());
        assert_eq!((walk.next_header(), walk.offset()), (IpProtocol::Tcp, 24));
    }

    #[test]
    fn later_fragment() {
        let packet = Packet::new_checked(&LATER_FRAGMENT[..]).unwrap();
        let fragment =
            FragmentRepr { next_header: IpProtocol::Udp, frag_offset: 1448, more_frags: false, ident: 123457 };
        assert_eq!(
            packet.upper_layer(),
            Ok(UpperLayer { protocol: IpProtocol::Udp, offset: 8, fragment: Some(fragment) })
        );
        // The fragment data is not walked, even if it looks like a header.
        let mut tricky = LATER_FRAGMENT;
        tricky[40] = u8::from(IpProtocol::Ipv6Opts);
        tricky[49] = 0xff;
        let packet = Packet::new_checked(&tricky[..]).unwrap();
        assert_eq!(packet.upper_layer().unwrap().offset, 8);
        assert_eq!(ExtHeaders::new(packet.next_header(), packet.payload()).count(), 1);
    }

    #[test]
    fn fragment_emit() {
        let repr = FragmentRepr { next_header: IpProtocol::Udp, frag_offset: 1448, more_frags: false, ident: 123457 };
        assert_eq!(repr.buffer_len(), 8);
        let mut bytes = [0xffu8; 8];
        repr.emit(&mut FragmentHeader::new_unchecked(&mut bytes[..])).unwrap();
        assert_eq!(bytes, LATER_FRAGMENT[40..48]);
        assert_eq!(repr.emit(&mut FragmentHeader::new_unchecked(&mut bytes[..7])), Err(Error::Truncated));
        let odd = FragmentRepr { frag_offset: 1449, ..repr };
        assert_eq!(odd.emit(&mut FragmentHeader::new_unchecked(&mut bytes[..])), Err(Error::Malformed));
        assert_eq!(FragmentHeader::new_checked(&bytes[..7]).unwrap_err(), Error::Truncated);
        assert_eq!(FragmentRepr::parse(&FragmentHeader::new_unchecked(&bytes[..7])), Err(Error::Truncated));
    }

    #[test]
    fn chain_errors() {
        // Hop-by-hop after destination options.
        let misplaced = [
            0x00, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // destination options, next header hop-by-hop
            0x11, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // hop-by-hop, next header UDP
        ];
        assert_eq!(upper_layer(IpProtocol::Ipv6Opts, &misplaced), Err(Error::Malformed));
        let mut walk = ExtHeaders::new(IpProtocol::Ipv6Opts, &misplaced);
        assert!(walk.next().unwrap().is_ok());
        assert_eq!(walk.next(), Some(Err(Error::Malformed)));
        assert_eq!(walk.next(), None);

        // Two fragment headers.
        let twice = [
            0x2c, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, // fragment, next header fragment
            0x11, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, // fragment, next header UDP
        ];
        assert_eq!(upper_layer(IpProtocol::Ipv6Frag, &twice), Err(Error::Malformed));

        // Hop-by-hop claiming 16 bytes with 8 present, and headers shorter than 8.
        let long = [0x11, 0x01, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(upper_layer(IpProtocol::HopByHop, &long), Err(Error::Truncated));
        assert_eq!(ExtHeader::new_checked(&long[..]).unwrap_err(), Error::Truncated);
        assert_eq!(ExtHeader::new_checked(&long[..7]).unwrap_err(), Error::Truncated);
        assert_eq!(upper_layer(IpProtocol::Ipv6Route, &long[..7]), Err(Error::Truncated));
        assert_eq!(upper_layer(IpProtocol::Ipv6Frag, &long[..7]), Err(Error::Truncated));
        assert_eq!(upper_layer(IpProtocol::HopByHop, &[]), Err(Error::Truncated));

        // No extension header at all, and No Next Header.
        assert_eq!(
            upper_layer(IpProtocol::Tcp, &[]),
            Ok(UpperLayer { protocol: IpProtocol::Tcp, offset: 0, fragment: None })
        );
        let none = [0x3b, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(
            upper_layer(IpProtocol::Ipv6Opts, &none),
            Ok(UpperLayer { protocol: IpProtocol::Ipv6NoNxt, offset: 8, fragment: None })
        );
    }

    #[test]
    fn setters_round_trip() {
        let mut bytes = UDP_PACKET;
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_traffic_class(0x2e);
        packet.set_flow_label(0xf_fffe);
        packet.set_hop_limit(1);
        packet.set_next_header(IpProtocol::Unknown(253));
        packet.set_src_addr(DST);
        packet.set_dst_addr(SRC);
        packet.set_payload_len(8);
        assert_eq!(packet.version(), 6);
        assert_eq!(packet.traffic_class(), 0x2e);
        assert_eq!(packet.flow_label(), 0xf_fffe);
        assert_eq!(packet.hop_limit(), 1);
        assert_eq!(packet.next_header(), IpProtocol::Unknown(253));
        assert_eq!((packet.src_addr(), packet.dst_addr()), (DST, SRC));
        assert_eq!(packet.payload_mut().len(), 8);
        packet.set_version(4);
        assert_eq!((packet.version(), packet.traffic_class()), (4, 0x2e));

        let mut ext = [0u8; 16];
        let mut header = ExtHeader::new_unchecked(&mut ext[..]);
        header.set_next_header(IpProtocol::Tcp);
        header.set_hdr_ext_len(1);
        header.data_mut()[0] = 0x01;
        let header = ExtHeader::new_checked(&ext[..]).unwrap();
        assert_eq!((header.next_header(), header.header_len(), header.data().len()), (IpProtocol::Tcp, 16, 14));

        let mut frag = [0xffu8; 8];
        let mut header = FragmentHeader::new_unchecked(&mut frag[..]);
        header.set_frag_offset(8);
        header.set_more_frags(false);
        header.set_ident(7);
        header.set_next_header(IpProtocol::Udp);
        assert_eq!((header.frag_offset(), header.more_frags(), header.ident()), (8, false, 7));
        header.set_more_frags(true);
        assert_eq!((header.frag_offset(), header.more_frags()), (8, true));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Every prefix of every golden packet with each byte perturbed.
        for golden in [&UDP_PACKET[..], &CHAIN_PACKET[..], &LATER_FRAGMENT[..]] {
            for at in 0..golden.len() {
                for value in [0x00, 0x01, 0x2c, 0x3c, 0x80, 0xff] {
                    let mut bytes = golden.to_vec();
                    bytes[at] = value;
                    for len in 0..=bytes.len() {
                        let buf = &bytes[..len];
                        for packet in [Packet::new_checked(buf), Packet::new_quoted(buf)].into_iter().flatten() {
                            let _ = (packet.traffic_class(), packet.flow_label(), packet.src_addr());
                            let _ = (packet.payload(), packet.upper_layer());
                        }
                        if let Ok(repr) = Repr::parse(&Packet::new_unchecked(buf)) {
                            let mut out = vec![0u8; repr.buffer_len()];
                            repr.emit(&mut Packet::new_unchecked(&mut out[..])).unwrap();
                            assert_eq!(out[..40], buf[..40]);
                        }
                        let _ = ExtHeader::new_checked(buf).map(|h| h.data().len());
                        let _ = ExtHeaders::new(IpProtocol::HopByHop, buf).count();
                    }
                }
            }
        }
    }
}
