//! Ethernet II frames (IEEE 802.3 with an EtherType) and their VLAN tags:
//! one IEEE 802.1Q C-tag, or an IEEE 802.1ad S-tag followed by a C-tag
//! ("QinQ"). The view reads the addresses, up to two tags, the EtherType after
//! them and the payload; the `Repr` writes the same.
//!
//! At most two tags are parsed. If the type field after the second tag is yet
//! another TPID (a triple-tagged frame), it is returned by
//! [`Frame::ethertype`] as the payload's type and the rest of the tag stack is
//! payload: carried, not refused. Either TPID (0x8100 or 0x88a8) is accepted
//! in either position, as switches in the field send both.
//!
//! What this module does not do: the frame check sequence (the NIC strips it),
//! IEEE 802.3 length fields and LLC/SNAP (a type value below 0x0600 is carried
//! as [`EtherType::Unknown`]), minimum-size padding, or any meaning of VID 0
//! (priority-tagged) and VID 4095 (reserved) beyond carrying them.

use core::fmt;

use super::{read_u16, write_u16, Error, Result};

enum_with_unknown! {
    /// The EtherType of a frame's payload, or the TPID of a VLAN tag.
    pub enum EtherType(u16) {
        Ipv4 = 0x0800,
        Arp = 0x0806,
        /// IEEE 802.1Q customer VLAN tag (C-tag).
        Vlan = 0x8100,
        /// IEEE 802.1ad service VLAN tag (S-tag).
        QinQ = 0x88a8,
        Ipv6 = 0x86dd,
    }
}

/// Whether a raw type field announces a VLAN tag: [`EtherType::is_vlan_tpid`]
/// without the conversion, for the per-frame checks.
#[inline(always)]
fn is_tpid(value: u16) -> bool {
    value == 0x8100 || value == 0x88a8
}

impl EtherType {
    /// Whether this value, found in a type field, announces a VLAN tag
    /// (0x8100 or 0x88a8).
    pub const fn is_vlan_tpid(self) -> bool {
        matches!(self, EtherType::Vlan | EtherType::QinQ)
    }
}

/// A 48-bit IEEE 802 MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// The broadcast address, ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// Reads an address from a slice of exactly six bytes; `None` for any
    /// other length.
    pub fn from_bytes(bytes: &[u8]) -> Option<EthernetAddress> {
        <[u8; 6]>::try_from(bytes).ok().map(EthernetAddress)
    }

    pub const fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_broadcast(&self) -> bool {
        *self == EthernetAddress::BROADCAST
    }

    /// Whether the I/G bit (the least significant bit of the first octet) is
    /// set: a group address, broadcast included.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether this is an individual (not group) address.
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// Whether the U/L bit (the second least significant bit of the first
    /// octet) is set: a locally administered address.
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl From<[u8; 6]> for EthernetAddress {
    fn from(bytes: [u8; 6]) -> Self {
        EthernetAddress(bytes)
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl core::str::FromStr for EthernetAddress {
    type Err = super::Error;

    /// Parses `aa:bb:cc:dd:ee:ff` (six pairs of hex digits), as
    /// [`fmt::Display`] prints it; anything else is `Malformed`.
    fn from_str(text: &str) -> Result<EthernetAddress> {
        let mut bytes = [0u8; 6];
        let mut parts = text.split(':');
        for byte in &mut bytes {
            let part = parts.next().filter(|p| p.len() == 2).ok_or(Error::Malformed)?;
            *byte = u8::from_str_radix(part, 16).map_err(|_| Error::Malformed)?;
        }
        if parts.next().is_some() {
            return Err(Error::Malformed);
        }
        Ok(EthernetAddress(bytes))
    }
}

/// One VLAN tag: its TPID and the fields of its tag control information
/// (TCI = PCP:3 | DEI:1 | VID:12, IEEE 802.1Q §9.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// [`EtherType::Vlan`] (C-tag) or [`EtherType::QinQ`] (S-tag).
    pub tpid: EtherType,
    /// Priority code point, 0..=7.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier, 0..=4095.
    pub vid: u16,
}

impl VlanTag {
    /// Splits a TCI into its fields.
    pub const fn from_tci(tpid: EtherType, tci: u16) -> VlanTag {
        VlanTag { tpid, pcp: (tci >> 13) as u8, dei: tci & 0x1000 != 0, vid: tci & 0x0fff }
    }

    /// The TCI for this tag. Out-of-range `pcp` and `vid` are masked to their
    /// field widths; [`Repr::emit`] refuses them instead.
    pub const fn tci(&self) -> u16 {
        ((self.pcp as u16 & 0x7) << 13) | ((self.dei as u16) << 12) | (self.vid & 0x0fff)
    }

    /// Whether the tag can be written as it is: a VLAN TPID, `pcp` <= 7 and
    /// `vid` <= 4095.
    pub const fn is_valid(&self) -> bool {
        self.tpid.is_vlan_tpid() && self.pcp <= 7 && self.vid <= 0x0fff
    }
}

/// The VLAN tags of a frame, outermost first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VlanTags {
    /// An untagged frame.
    #[default]
    None,
    /// One tag (usually an 802.1Q C-tag; a lone 802.1ad S-tag is valid too).
    Single(VlanTag),
    /// Two tags: an S-tag and a C-tag (IEEE 802.1ad), or any two TPIDs.
    Double { outer: VlanTag, inner: VlanTag },
}

impl VlanTags {
    /// How many tags: 0, 1 or 2.
    pub const fn len(&self) -> usize {
        match self {
            VlanTags::None => 0,
            VlanTags::Single(_) => 1,
            VlanTags::Double { .. } => 2,
        }
    }

    /// How many tags: 0, 1 or 2. The same as [`VlanTags::len`].
    pub const fn count(&self) -> usize {
        self.len()
    }

    /// Whether the frame is untagged.
    pub const fn is_empty(&self) -> bool {
        matches!(self, VlanTags::None)
    }

    /// The outermost tag, if any.
    pub const fn outer(&self) -> Option<VlanTag> {
        match *self {
            VlanTags::None => None,
            VlanTags::Single(tag) | VlanTags::Double { outer: tag, .. } => Some(tag),
        }
    }

    /// The innermost tag, if any (the only tag of a single-tagged frame).
    pub const fn inner(&self) -> Option<VlanTag> {
        match *self {
            VlanTags::None => None,
            VlanTags::Single(tag) | VlanTags::Double { inner: tag, .. } => Some(tag),
        }
    }

    /// The bytes the tags take in a header.
    pub const fn header_len(&self) -> usize {
        self.len() * VLAN_TAG_LEN
    }
}

mod field {
    use core::ops::Range;

    pub(super) const DESTINATION: Range<usize> = 0..6;
    pub(super) const SOURCE: Range<usize> = 6..12;
    /// The type field of an untagged frame, or the outer tag's TPID.
    pub(super) const ETHERTYPE: Range<usize> = 12..14;
    pub(super) const OUTER_TCI: Range<usize> = 14..16;
    /// The type field after one tag, or the inner tag's TPID.
    pub(super) const OUTER_NEXT: Range<usize> = 16..18;
    pub(super) const INNER_TCI: Range<usize> = 18..20;
    pub(super) const PAYLOAD: usize = 14;
}

/// The length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// The length of one VLAN tag (TPID and TCI).
pub const VLAN_TAG_LEN: usize = 4;

/// The most tags this module parses.
const MAX_TAGS: usize = 2;

/// A view of an Ethernet II frame in a buffer.
///
/// After [`Frame::new_checked`] succeeds, the buffer holds the addresses,
/// every tag the type fields announce (up to two) and the type field after
/// them, and no getter panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps a buffer and checks it with [`Frame::check_len`].
    #[inline(always)]
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let frame = Frame::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the buffer holds the 14-byte header and, for each type
    /// field holding a VLAN TPID (at most two), the 4-byte tag and the type
    /// field after it: `Truncated` if it does not. A third TPID is not
    /// followed; it is the frame's [`Frame::ethertype`].
    #[inline(always)]
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        // The untagged frame, the common case, is decided here in one read.
        if !self.is_tagged() {
            return Ok(());
        }
        self.check_tags()
    }

    /// [`Frame::check_len`] for a frame whose first type field is a TPID.
    fn check_tags(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        let mut need = HEADER_LEN;
        for _ in 0..MAX_TAGS {
            if len < need {
                return Err(Error::Truncated);
            }
            if !is_tpid(read_u16(self.buffer.as_ref(), need - 2)) {
                return Ok(());
            }
            need += VLAN_TAG_LEN;
        }
        if len < need {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Whether the type field after the addresses announces a VLAN tag:
    /// one read, for the per-frame check that the frame is untagged (then
    /// [`Frame::header_len`] is [`HEADER_LEN`]).
    #[inline(always)]
    pub fn is_tagged(&self) -> bool {
        is_tpid(self.first_type_field())
    }

    /// The type field right after the addresses, as a number: the payload's
    /// EtherType if the frame is untagged, the outer tag's TPID if not. One
    /// read and no conversion, for per-frame code that has checked
    /// [`Frame::is_tagged`].
    #[inline(always)]
    pub fn first_type_field(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ETHERTYPE.start)
    }

    /// How many tags the type fields announce: 0, 1 or 2.
    #[inline(always)]
    fn tag_count(&self) -> usize {
        let buffer = self.buffer.as_ref();
        if !is_tpid(read_u16(buffer, field::ETHERTYPE.start)) {
            0
        } else if !is_tpid(read_u16(buffer, field::OUTER_NEXT.start)) {
            1
        } else {
            2
        }
    }

    pub fn dst_addr(&self) -> EthernetAddress {
        let mut addr = [0; 6];
        addr.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        EthernetAddress(addr)
    }

    pub fn src_addr(&self) -> EthernetAddress {
        let mut addr = [0; 6];
        addr.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        EthernetAddress(addr)
    }

    /// The VLAN tags, outermost first.
    pub fn vlan_tags(&self) -> VlanTags {
        let buffer = self.buffer.as_ref();
        let tag = |tpid: usize, tci: usize| VlanTag::from_tci(read_u16(buffer, tpid).into(), read_u16(buffer, tci));
        match self.tag_count() {
            0 => VlanTags::None,
            1 => VlanTags::Single(tag(field::ETHERTYPE.start, field::OUTER_TCI.start)),
            _ => VlanTags::Double {
                outer: tag(field::ETHERTYPE.start, field::OUTER_TCI.start),
                inner: tag(field::OUTER_NEXT.start, field::INNER_TCI.start),
            },
        }
    }

    /// The type of the payload: the type field after the tags. For a frame
    /// with three or more tags this is the third TPID.
    #[inline(always)]
    pub fn ethertype(&self) -> EtherType {
        read_u16(self.buffer.as_ref(), self.header_len() - 2).into()
    }

    /// The header's length with its tags: 14, 18 or 22.
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.tag_count() * VLAN_TAG_LEN
    }

    /// Everything after the header (the FCS is not expected in the buffer).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    pub fn set_dst_addr(&mut self, value: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&value.0)
    }

    pub fn set_src_addr(&mut self, value: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&value.0)
    }

    /// Writes the type field after the tags. Writing a VLAN TPID there adds a
    /// tag to what the view reads next (if fewer than two were there).
    pub fn set_ethertype(&mut self, value: EtherType) {
        let at = self.header_len() - 2;
        write_u16(self.buffer.as_mut(), at, value.into())
    }

    /// Everything after the header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

/// An Ethernet II header's meaning: addresses, tags and payload type. The
/// payload stays in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub src_addr: EthernetAddress,
    pub dst_addr: EthernetAddress,
    pub vlan_tags: VlanTags,
    pub ethertype: EtherType,
}

impl Repr {
    /// Reads a frame's header, checking its length first.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &Frame<&T>) -> Result<Repr> {
        frame.check_len()?;
        Ok(Repr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            vlan_tags: frame.vlan_tags(),
            ethertype: frame.ethertype(),
        })
    }

    /// The header's length with its tags: what [`Repr::emit`] writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN + self.vlan_tags.header_len()
    }

    /// The same as [`Repr::header_len`]: the payload is not part of a `Repr`.
    pub const fn buffer_len(&self) -> usize {
        self.header_len()
    }

    /// Writes the addresses, tags and type field.
    ///
    /// Returns `Malformed` if a tag cannot be written as it is (its TPID is
    /// not 0x8100 or 0x88a8, `pcp` > 7 or `vid` > 4095), or if `ethertype`
    /// is a VLAN TPID with fewer than two tags (the frame would read back
    /// with one tag more); then `Truncated` if the buffer is shorter than
    /// [`Repr::header_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, frame: &mut Frame<&mut T>) -> Result<()> {
        let (outer, inner) = match self.vlan_tags {
            VlanTags::None => (None, None),
            VlanTags::Single(tag) => (Some(tag), None),
            VlanTags::Double { outer, inner } => (Some(outer), Some(inner)),
        };
        let tags_valid = [outer, inner].iter().flatten().all(VlanTag::is_valid);
        let type_ambiguous = self.ethertype.is_vlan_tpid() && self.vlan_tags.len() < MAX_TAGS;
        if !tags_valid || type_ambiguous {
            return Err(Error::Malformed);
        }
        if frame.buffer.as_ref().len() < self.header_len() {
            return Err(Error::Truncated);
        }
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        let buffer = frame.buffer.as_mut();
        let mut at = field::ETHERTYPE.start;
        for tag in [outer, inner].into_iter().flatten() {
            write_u16(buffer, at, tag.tpid.into());
            write_u16(buffer, at + 2, tag.tci());
            at += VLAN_TAG_LEN;
        }
        write_u16(buffer, at, self.ethertype.into());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DST: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    const SRC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
    /// The first four bytes of an IPv4 header: version 4, IHL 5, DSCP 0,
    /// total length 84.
    const IPV4_START: [u8; 4] = [0x45, 0x00, 0x00, 0x54];

    /// An untagged IPv4 frame between two QEMU-style addresses.
    const UNTAGGED: [u8; 18] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // dst 52:54:00:12:34:56
        0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, // src 52:54:00:ab:cd:ef
        0x08, 0x00, // type IPv4
        0x45, 0x00, 0x00, 0x54, // payload: start of an IPv4 header
    ];

    /// The same frame with an 802.1Q tag: PCP 5, DEI 0, VID 100.
    const DOT1Q: [u8; 22] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // dst
        0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, // src
        0x81, 0x00, // TPID 802.1Q
        0xa0, 0x64, // TCI: PCP 5 (101), DEI 0, VID 100 (0x064)
        0x08, 0x00, // type IPv4
        0x45, 0x00, 0x00, 0x54, // payload
    ];

    /// QinQ: an 802.1ad S-tag (VID 10) then an 802.1Q C-tag (VID 20, DEI 1).
    const QINQ: [u8; 26] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // dst
        0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, // src
        0x88, 0xa8, // TPID 802.1ad
        0x00, 0x0a, // S-TCI: PCP 0, DEI 0, VID 10
        0x81, 0x00, // TPID 802.1Q
        0x30, 0x14, // C-TCI: PCP 1, DEI 1, VID 20
        0x08, 0x00, // type IPv4
        0x45, 0x00, 0x00, 0x54, // payload
    ];

    /// Three tags: the third TPID is returned as the payload's type.
    const TRIPLE: [u8; 26] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // dst
        0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, // src
        0x88, 0xa8, // TPID 802.1ad
        0x00, 0x0a, // TCI: VID 10
        0x81, 0x00, // TPID 802.1Q
        0x00, 0x14, // TCI: VID 20
        0x81, 0x00, // a third TPID: the type after two tags
        0x00, 0x1e, // payload: the third TCI (VID 30)
        0x08, 0x00, // payload: the real type
    ];

    #[test]
    fn addresses_parse_as_they_print() {
        assert_eq!(SRC.to_string().parse::<EthernetAddress>().unwrap(), SRC);
        assert_eq!("02:00:5E:00:00:01".parse::<EthernetAddress>().unwrap(), EthernetAddress([2, 0, 0x5e, 0, 0, 1]));
        for bad in
            ["", "02:00:5e:00:00", "02:00:5e:00:00:01:02", "2:0:5e:0:0:1", "0g:00:00:00:00:00", "02-00-5e-00-00-01"]
        {
            assert_eq!(bad.parse::<EthernetAddress>(), Err(Error::Malformed), "{bad:?}");
        }
    }

    fn tag(tpid: EtherType, pcp: u8, dei: bool, vid: u16) -> VlanTag {
        VlanTag { tpid, pcp, dei, vid }
    }

    fn emitted(repr: &Repr, payload: &[u8]) -> [u8; 64] {
        let mut bytes = [0u8; 64];
        let mut frame = Frame::new_unchecked(&mut bytes[..repr.buffer_len() + payload.len()]);
        repr.emit(&mut frame).unwrap();
        frame.payload_mut().copy_from_slice(payload);
        bytes
    }

    #[test]
    fn address_properties() {
        assert_eq!(DST.to_string(), "52:54:00:12:34:56");
        assert_eq!(EthernetAddress::BROADCAST.to_string(), "ff:ff:ff:ff:ff:ff");
        assert!(DST.is_unicast() && DST.is_local() && !DST.is_multicast() && !DST.is_broadcast());
        assert!(EthernetAddress::BROADCAST.is_broadcast() && EthernetAddress::BROADCAST.is_multicast());
        let mdns = EthernetAddress([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
        assert!(mdns.is_multicast() && !mdns.is_unicast() && !mdns.is_broadcast() && !mdns.is_local());
        assert_eq!(EthernetAddress::from_bytes(&UNTAGGED[..6]), Some(DST));
        assert_eq!(EthernetAddress::from_bytes(&UNTAGGED[..5]), None);
        assert_eq!(EthernetAddress::from_bytes(&UNTAGGED[..7]), None);
        assert_eq!(DST.as_bytes(), &UNTAGGED[..6]);
        assert_eq!(EthernetAddress::default(), EthernetAddress([0; 6]));
    }

    #[test]
    fn ethertype_values() {
        assert_eq!(EtherType::from(0x0800), EtherType::Ipv4);
        assert_eq!(EtherType::from(0x86dd), EtherType::Ipv6);
        assert_eq!(EtherType::from(0x88cc), EtherType::Unknown(0x88cc));
        assert_eq!(u16::from(EtherType::QinQ), 0x88a8);
        assert!(EtherType::Vlan.is_vlan_tpid() && EtherType::QinQ.is_vlan_tpid());
        assert!(!EtherType::Ipv4.is_vlan_tpid() && !EtherType::Unknown(0x9100).is_vlan_tpid());
    }

    #[test]
    fn untagged_golden() {
        let frame = Frame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(frame.dst_addr(), DST);
        assert_eq!(frame.src_addr(), SRC);
        assert_eq!(frame.vlan_tags(), VlanTags::None);
        assert_eq!(frame.ethertype(), EtherType::Ipv4);
        assert_eq!(frame.header_len(), 14);
        assert_eq!(frame.payload(), &IPV4_START);

        let repr = Repr::parse(&frame).unwrap();
        let expected = Repr { src_addr: SRC, dst_addr: DST, vlan_tags: VlanTags::None, ethertype: EtherType::Ipv4 };
        assert_eq!(repr, expected);
        assert_eq!(repr.buffer_len(), 14);
        assert_eq!(emitted(&repr, &IPV4_START)[..18], UNTAGGED);
    }

    #[test]
    fn dot1q_golden() {
        let frame = Frame::new_checked(&DOT1Q[..]).unwrap();
        let vlan = tag(EtherType::Vlan, 5, false, 100);
        assert_eq!(frame.vlan_tags(), VlanTags::Single(vlan));
        assert_eq!(frame.vlan_tags().len(), 1);
        assert_eq!(frame.ethertype(), EtherType::Ipv4);
        assert_eq!(frame.header_len(), 18);
        assert_eq!(frame.payload(), &IPV4_START);

        let repr = Repr::parse(&frame).unwrap();
        assert_eq!(repr.vlan_tags, VlanTags::Single(vlan));
        assert_eq!(repr.header_len(), 18);
        assert_eq!(emitted(&repr, &IPV4_START)[..22], DOT1Q);
    }

    #[test]
    fn qinq_golden() {
        let frame = Frame::new_checked(&QINQ[..]).unwrap();
        let outer = tag(EtherType::QinQ, 0, false, 10);
        let inner = tag(EtherType::Vlan, 1, true, 20);
        let tags = frame.vlan_tags();
        assert_eq!(tags, VlanTags::Double { outer, inner });
        assert_eq!((tags.count(), tags.outer(), tags.inner()), (2, Some(outer), Some(inner)));
        assert_eq!(frame.ethertype(), EtherType::Ipv4);
        assert_eq!(frame.header_len(), 22);
        assert_eq!(frame.payload(), &IPV4_START);

        let repr = Repr::parse(&frame).unwrap();
        assert_eq!(repr.header_len(), 22);
        assert_eq!(emitted(&repr, &IPV4_START)[..26], QINQ);
    }

    #[test]
    fn single_s_tag_is_single() {
        let mut bytes = DOT1Q;
        bytes[12..14].copy_from_slice(&[0x88, 0xa8]);
        let frame = Frame::new_checked(&bytes[..]).unwrap();
        assert_eq!(frame.vlan_tags(), VlanTags::Single(tag(EtherType::QinQ, 5, false, 100)));
        assert_eq!(frame.ethertype(), EtherType::Ipv4);
        let repr = Repr::parse(&frame).unwrap();
        assert_eq!(emitted(&repr, &IPV4_START)[..22], bytes);
    }

    #[test]
    fn triple_tag_carries_third_tpid() {
        let frame = Frame::new_checked(&TRIPLE[..]).unwrap();
        assert_eq!(
            frame.vlan_tags(),
            VlanTags::Double { outer: tag(EtherType::QinQ, 0, false, 10), inner: tag(EtherType::Vlan, 0, false, 20) }
        );
        assert_eq!(frame.ethertype(), EtherType::Vlan);
        assert_eq!(frame.header_len(), 22);
        assert_eq!(frame.payload(), &[0x00, 0x1e, 0x08, 0x00]);
        let repr = Repr::parse(&frame).unwrap();
        assert_eq!(emitted(&repr, &TRIPLE[22..])[..26], TRIPLE);
        // The third tag needs no bytes after its TPID.
        assert!(Frame::new_checked(&TRIPLE[..22]).is_ok());
    }

    #[test]
    fn truncated() {
        assert_eq!(Frame::new_checked(&UNTAGGED[..13]).unwrap_err(), Error::Truncated);
        assert!(Frame::new_checked(&UNTAGGED[..14]).is_ok());
        // A TPID without its tag and the type after it.
        assert_eq!(Frame::new_checked(&DOT1Q[..14]).unwrap_err(), Error::Truncated);
        assert_eq!(Frame::new_checked(&DOT1Q[..17]).unwrap_err(), Error::Truncated);
        assert!(Frame::new_checked(&DOT1Q[..18]).is_ok());
        assert_eq!(Frame::new_checked(&QINQ[..21]).unwrap_err(), Error::Truncated);
        assert!(Frame::new_checked(&QINQ[..22]).is_ok());
        assert_eq!(Repr::parse(&Frame::new_unchecked(&QINQ[..20])).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn emit_errors() {
        let good = Repr { src_addr: SRC, dst_addr: DST, vlan_tags: VlanTags::None, ethertype: EtherType::Ipv4 };
        let mut bytes = [0u8; 22];
        let single = |t| Repr { vlan_tags: VlanTags::Single(t), ..good };
        for bad in [
            single(tag(EtherType::Vlan, 0, false, 4096)),
            single(tag(EtherType::Vlan, 8, false, 1)),
            single(tag(EtherType::Ipv4, 0, false, 1)),
            Repr {
                vlan_tags: VlanTags::Double {
                    outer: tag(EtherType::QinQ, 0, false, 1),
                    inner: tag(EtherType::Unknown(0x9100), 0, false, 2),
                },
                ..good
            },
            Repr { ethertype: EtherType::Vlan, ..good },
            Repr { ethertype: EtherType::QinQ, ..single(tag(EtherType::Vlan, 0, false, 1)) },
        ] {
            assert_eq!(bad.emit(&mut Frame::new_unchecked(&mut bytes[..])).unwrap_err(), Error::Malformed, "{bad:?}");
        }
        assert_eq!(good.emit(&mut Frame::new_unchecked(&mut bytes[..13])).unwrap_err(), Error::Truncated);
        let tagged = single(tag(EtherType::Vlan, 7, true, 4095));
        assert_eq!(tagged.emit(&mut Frame::new_unchecked(&mut bytes[..17])).unwrap_err(), Error::Truncated);
        tagged.emit(&mut Frame::new_unchecked(&mut bytes[..18])).unwrap();
        assert_eq!(&bytes[12..18], &[0x81, 0x00, 0xff, 0xff, 0x08, 0x00]);
        assert_eq!(Repr::parse(&Frame::new_checked(&bytes[..18]).unwrap()).unwrap(), tagged);
    }

    #[test]
    fn setters_round_trip() {
        let mut bytes = QINQ;
        let mut frame = Frame::new_checked(&mut bytes[..]).unwrap();
        frame.set_dst_addr(EthernetAddress::BROADCAST);
        frame.set_src_addr(DST);
        frame.set_ethertype(EtherType::Ipv6);
        frame.payload_mut().copy_from_slice(&[0x60, 0, 0, 0]);
        assert_eq!(frame.dst_addr(), EthernetAddress::BROADCAST);
        assert_eq!(frame.src_addr(), DST);
        assert_eq!(frame.ethertype(), EtherType::Ipv6);
        assert_eq!(frame.vlan_tags().len(), 2);
        assert_eq!(&bytes[20..], &[0x86, 0xdd, 0x60, 0, 0, 0]);
        assert_eq!(&bytes[..6], &[0xff; 6]);
    }

    #[test]
    fn tci_round_trip() {
        for tci in [0x0000, 0x0fff, 0x1000, 0xe000, 0xa064, 0xffff] {
            assert_eq!(VlanTag::from_tci(EtherType::Vlan, tci).tci(), tci);
        }
    }

    #[test]
    fn perturbed_prefixes_never_panic() {
        for golden in [&UNTAGGED[..], &DOT1Q[..], &QINQ[..], &TRIPLE[..]] {
            for at in 12..golden.len() {
                for value in [0x00, 0x81, 0x88, 0xa8, 0xff] {
                    let mut bytes = [0u8; 26];
                    bytes[..golden.len()].copy_from_slice(golden);
                    bytes[at] = value;
                    for len in 0..=golden.len() {
                        let buf = &bytes[..len];
                        if let Ok(frame) = Frame::new_checked(buf) {
                            let _ = (frame.dst_addr(), frame.src_addr(), frame.vlan_tags(), frame.ethertype());
                            let _ = frame.payload();
                            let repr = Repr::parse(&frame).unwrap();
                            let mut out = [0u8; 26];
                            repr.emit(&mut Frame::new_unchecked(&mut out[..])).unwrap();
                            assert_eq!(out[..repr.buffer_len()], buf[..frame.header_len()]);
                        } else {
                            assert_eq!(Repr::parse(&Frame::new_unchecked(buf)).unwrap_err(), Error::Truncated);
                        }
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn emit_then_parse_is_identity(
            tags in proptest::collection::vec(
                (proptest::sample::select(vec![0x8100u16, 0x88a8, 0x0800, 0x9100]), 0u8..9, proptest::bool::ANY, 0u16..4100),
                0..=2,
            ),
            ethertype: u16,
        ) {
            let tags: Vec<VlanTag> = tags.into_iter().map(|(t, pcp, dei, vid)| tag(t.into(), pcp, dei, vid)).collect();
            let vlan_tags = match tags[..] {
                [] => VlanTags::None,
                [one] => VlanTags::Single(one),
                [outer, inner] => VlanTags::Double { outer, inner },
                _ => unreachable!(),
            };
            let repr = Repr { src_addr: SRC, dst_addr: DST, vlan_tags, ethertype: ethertype.into() };
            let mut bytes = [0u8; 22];
            match repr.emit(&mut Frame::new_unchecked(&mut bytes[..])) {
                Ok(()) => {
                    let frame = Frame::new_checked(&bytes[..repr.buffer_len()]).unwrap();
                    proptest::prop_assert_eq!(Repr::parse(&frame).unwrap(), repr);
                }
                Err(e) => {
                    proptest::prop_assert_eq!(e, Error::Malformed);
                    let ambiguous = repr.ethertype.is_vlan_tpid() && tags.len() < 2;
                    proptest::prop_assert!(ambiguous || tags.iter().any(|t| !t.is_valid()));
                }
            }
        }
    }
}
