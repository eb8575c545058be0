//! The VXLAN header (RFC 7348 §5): the 8 bytes between the outer UDP header
//! and the inner Ethernet frame, carrying the 24-bit VXLAN network identifier.
//!
//! Following §5, a receiver needs only the I flag; every reserved bit (the
//! other seven flag bits, bytes 1..4 and byte 7) is ignored on receipt and
//! written as zero. The view still shows the raw bytes, so extensions that
//! reuse reserved bits (VXLAN-GPE, GBP) can be read, but `Repr` gives them no
//! meaning.
//!
//! What this module does not do: the outer UDP/IP headers (see `udp`, `ipv4`,
//! `ipv6`), source-port entropy, or VTEP learning.

use core::fmt;

use super::{read_u32, Error, Result};

mod field {
    use core::ops::Range;

    pub(super) const FLAGS: usize = 0;
    /// The 24-bit VNI; byte 7 after it is reserved.
    pub(super) const VNI: Range<usize> = 4..7;
    pub(super) const PAYLOAD: usize = 8;
}

/// The length of a VXLAN header.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// The UDP destination port IANA assigned to VXLAN (RFC 7348 §5).
pub const IANA_PORT: u16 = 4789;

/// The UDP port the Linux kernel's vxlan driver uses when none is given, and
/// flannel's default for its vxlan backend; it predates the IANA assignment.
pub const LINUX_PORT: u16 = 8472;

/// The I flag: set when the VNI is valid (RFC 7348 §5).
const FLAG_I: u8 = 0x08;

/// A VXLAN network identifier: a 24-bit number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vni(u32);

impl Vni {
    /// The largest VNI, 2^24 - 1.
    pub const MAX: Vni = Vni(0x00ff_ffff);

    /// A VNI, or `None` if `value` does not fit in 24 bits.
    pub const fn new(value: u32) -> Option<Vni> {
        if value <= Vni::MAX.0 {
            Some(Vni(value))
        } else {
            None
        }
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

impl From<Vni> for u32 {
    fn from(vni: Vni) -> u32 {
        vni.0
    }
}

impl TryFrom<u32> for Vni {
    type Error = Error;

    /// `Malformed` if `value` does not fit in 24 bits.
    fn try_from(value: u32) -> Result<Vni> {
        Vni::new(value).ok_or(Error::Malformed)
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A view of a VXLAN header and the inner frame after it, in a buffer.
///
/// After [`Packet::new_checked`] succeeds, the buffer holds the 8-byte header
/// and no getter panics.
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

    /// Checks that the buffer holds the 8-byte header: `Truncated` if not.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole flags byte, reserved bits included.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Whether the I flag (0x08) is set, saying the VNI is valid.
    pub fn i_flag(&self) -> bool {
        self.flags() & FLAG_I != 0
    }

    pub fn vni(&self) -> Vni {
        Vni(read_u32(self.buffer.as_ref(), field::VNI.start) >> 8)
    }

    /// The inner Ethernet frame.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the whole flags byte, reserved bits included.
    pub fn set_flags(&mut self, value: u8) {
        self.buffer.as_mut()[field::FLAGS] = value
    }

    /// Writes the VNI into bytes 4..7; the reserved byte 7 is left alone.
    pub fn set_vni(&mut self, value: Vni) {
        self.buffer.as_mut()[field::VNI].copy_from_slice(&value.0.to_be_bytes()[1..])
    }

    /// The inner Ethernet frame, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// A VXLAN header's meaning: only the VNI. The inner frame stays in the
/// buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub vni: Vni,
}

impl Repr {
    /// Reads a header, checking its length first (`Truncated`). Returns
    /// `Malformed` if the I flag is clear. Reserved bits are ignored
    /// (RFC 7348 §5: "Reserved fields ... MUST be ignored on receipt").
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        if !packet.i_flag() {
            return Err(Error::Malformed);
        }
        Ok(Repr { vni: packet.vni() })
    }

    /// The header's length: 8 bytes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The same as [`Repr::header_len`]: the inner frame is not part of a
    /// `Repr`.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header: flags 0x08, the VNI, and every reserved bit zero
    /// (RFC 7348 §5). Returns `Truncated` if the buffer is shorter than 8
    /// bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut Packet<&mut T>) -> Result<()> {
        let buffer = packet.buffer.as_mut();
        let Some(header) = buffer.get_mut(..HEADER_LEN) else {
            return Err(Error::Truncated);
        };
        header.copy_from_slice(&self.to_bytes());
        Ok(())
    }

    /// The 8 bytes [`Repr::emit`] writes, for code that builds a header
    /// once and copies it per packet.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut header = [0; HEADER_LEN];
        let mut packet = Packet::new_unchecked(&mut header[..]);
        packet.set_flags(FLAG_I);
        packet.set_vni(self.vni);
        header
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VXLAN header for VNI 42, followed by the first bytes of an inner
    /// Ethernet frame.
    const VNI_42: [u8; 14] = [
        0x08, // flags: I
        0x00, 0x00, 0x00, // reserved
        0x00, 0x00, 0x2a, // VNI 42
        0x00, // reserved
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // inner frame: dst 52:54:00:12:34:56
    ];

    /// The same header with every reserved bit set, and the largest VNI.
    const RESERVED_SET: [u8; 8] = [
        0xff, // flags: I and all seven reserved bits
        0xff, 0xff, 0xff, // reserved
        0xff, 0xff, 0xff, // VNI 16777215
        0xff, // reserved
    ];

    #[test]
    fn golden() {
        let packet = Packet::new_checked(&VNI_42[..]).unwrap();
        assert_eq!(packet.flags(), 0x08);
        assert!(packet.i_flag());
        assert_eq!(packet.vni(), Vni::new(42).unwrap());
        assert_eq!(packet.payload(), &VNI_42[8..]);

        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr, Repr { vni: Vni::new(42).unwrap() });
        assert_eq!(repr.buffer_len(), 8);
        let mut bytes = VNI_42;
        bytes[..8].fill(0xee);
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..])).unwrap();
        assert_eq!(bytes, VNI_42);
        assert_eq!(repr.to_bytes(), VNI_42[..8]);
    }

    #[test]
    fn reserved_bits_ignored_and_cleared() {
        let packet = Packet::new_checked(&RESERVED_SET[..]).unwrap();
        assert_eq!(packet.flags(), 0xff);
        assert!(packet.payload().is_empty());
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr, Repr { vni: Vni::MAX });

        let mut with_42 = RESERVED_SET;
        with_42[4..7].copy_from_slice(&[0, 0, 42]);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&with_42[..]).unwrap()).unwrap(),
            Repr { vni: Vni::new(42).unwrap() }
        );

        let mut bytes = RESERVED_SET;
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..])).unwrap();
        assert_eq!(bytes, [0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0]);
    }

    #[test]
    fn errors() {
        assert_eq!(Packet::new_checked(&VNI_42[..7]).unwrap_err(), Error::Truncated);
        assert_eq!(Repr::parse(&Packet::new_unchecked(&VNI_42[..0])).unwrap_err(), Error::Truncated);
        let mut no_i = VNI_42;
        no_i[0] = 0x00;
        let packet = Packet::new_checked(&no_i[..]).unwrap();
        assert!(!packet.i_flag());
        assert_eq!(Repr::parse(&packet).unwrap_err(), Error::Malformed);
        // Reserved bits alone do not stand in for the I flag.
        no_i[0] = 0xf7;
        assert_eq!(Repr::parse(&Packet::new_checked(&no_i[..]).unwrap()).unwrap_err(), Error::Malformed);

        let repr = Repr { vni: Vni::new(1).unwrap() };
        let mut short = [0u8; 7];
        assert_eq!(repr.emit(&mut Packet::new_unchecked(&mut short[..])).unwrap_err(), Error::Truncated);
        assert_eq!(short, [0; 7]);
    }

    #[test]
    fn vni_range() {
        assert_eq!(Vni::new(1 << 24), None);
        assert_eq!(Vni::new(u32::MAX), None);
        assert_eq!(Vni::new((1 << 24) - 1), Some(Vni::MAX));
        assert_eq!(Vni::new(0).map(Vni::get), Some(0));
        assert_eq!(Vni::try_from(1u32 << 24), Err(Error::Malformed));
        assert_eq!(u32::from(Vni::new(4096).unwrap()), 4096);
        assert_eq!(Vni::new(42).unwrap().to_string(), "42");
        assert_eq!((IANA_PORT, LINUX_PORT), (4789, 8472));
    }

    #[test]
    fn setters_round_trip() {
        let mut bytes = RESERVED_SET;
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        packet.set_flags(0x08);
        packet.set_vni(Vni::new(0x0a0b0c).unwrap());
        assert_eq!(packet.vni().get(), 0x0a0b0c);
        assert_eq!(packet.flags(), 0x08);
        // set_vni leaves the reserved byte 7 alone.
        assert_eq!(bytes, [0x08, 0xff, 0xff, 0xff, 0x0a, 0x0b, 0x0c, 0xff]);
    }

    proptest::proptest! {
        #[test]
        fn any_header_never_panics(bytes: [u8; 8], len in 0usize..=8) {
            let buf = &bytes[..len];
            if let Ok(packet) = Packet::new_checked(buf) {
                let _ = (packet.flags(), packet.i_flag(), packet.vni(), packet.payload());
            }
            if let Ok(repr) = Repr::parse(&Packet::new_unchecked(buf)) {
                proptest::prop_assert_eq!(repr.vni.get(), u32::from_be_bytes([0, bytes[4], bytes[5], bytes[6]]));
                let mut out = [0u8; 8];
                repr.emit(&mut Packet::new_unchecked(&mut out[..])).unwrap();
                proptest::prop_assert_eq!(Repr::parse(&Packet::new_checked(&out[..]).unwrap()).unwrap(), repr);
            }
        }

        #[test]
        fn emit_then_parse_is_identity(value in 0u32..1 << 24) {
            let repr = Repr { vni: Vni::new(value).unwrap() };
            let mut out = [0xffu8; 8];
            repr.emit(&mut Packet::new_unchecked(&mut out[..])).unwrap();
            proptest::prop_assert_eq!(Repr::parse(&Packet::new_checked(&out[..]).unwrap()).unwrap(), repr);
        }
    }
}
