//! UDP (RFC 768): the header view, its `Repr`, and the checksum over the IPv4
//! or IPv6 pseudo-header.
//!
//! A zero checksum over IPv4 means "none" (RFC 768) and is kept as zero; a
//! computed checksum that comes out as zero is sent as 0xffff. Over IPv6 a
//! zero checksum is not allowed (RFC 8200 §8.1) except for tunnels that opt in
//! (RFC 6935); whether to accept one is the caller's policy.

use core::net::IpAddr;

use super::{checksum, read_u16, read_u32, write_u16, Error, IpProtocol, Result};

mod field {
    use core::ops::Range;

    pub(super) const SRC_PORT: Range<usize> = 0..2;
    pub(super) const DST_PORT: Range<usize> = 2..4;
    pub(super) const LENGTH: Range<usize> = 4..6;
    pub(super) const CHECKSUM: Range<usize> = 6..8;
    pub(super) const PAYLOAD: usize = 8;
}

/// The length of a UDP header.
pub const HEADER_LEN: usize = field::PAYLOAD;

/// A view of a UDP datagram in a buffer.
///
/// After [`Packet::new_checked`] succeeds, the length field is at least the
/// header length and at most the buffer length, and no getter panics.
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

    /// Checks that the buffer holds the header and the length the header
    /// claims: `Truncated` if it does not, `Malformed` if the length field is
    /// smaller than the header. A buffer longer than the length field (link
    /// padding) is accepted.
    pub fn check_len(&self) -> Result<()> {
        let buffer = self.buffer.as_ref();
        if buffer.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let length = usize::from(self.len());
        if length < HEADER_LEN {
            Err(Error::Malformed)
        } else if length > buffer.len() {
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

    /// Both ports as one number, the source in the high half: one read, for
    /// code that hashes flows (TCP's header starts the same way).
    #[inline(always)]
    pub fn ports(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    /// The length field: header and payload, in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The payload, as long as the length field says (link padding cut off).
    pub fn payload(&self) -> &[u8] {
        let buffer = self.buffer.as_ref();
        let end = usize::from(self.len()).clamp(HEADER_LEN, buffer.len());
        &buffer[HEADER_LEN..end]
    }

    /// Whether the checksum is right for a datagram from `src` to `dst`. A
    /// zero checksum over IPv4 ("no checksum") verifies; over IPv6 it does
    /// not. `src` and `dst` must be of the same family.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4() && dst.is_ipv4();
        }
        let datagram = &self.buffer.as_ref()[..usize::from(self.len())];
        checksum::pseudo_header(src, dst, IpProtocol::Udp, datagram.len())
            .is_some_and(|pseudo| checksum::add(pseudo, checksum::sum(datagram)) == 0xffff)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT.start, value)
    }

    pub fn set_dst_port(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT.start, value)
    }

    pub fn set_len(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH.start, value)
    }

    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, value)
    }

    /// The payload, mutable, as long as the length field says.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len()).clamp(HEADER_LEN, self.buffer.as_ref().len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// Computes and writes the checksum for a datagram from `src` to `dst`
    /// over the bytes the length field covers; a result of zero is written as
    /// 0xffff (RFC 768). `src` and `dst` must be of the same family; if they
    /// are not, the checksum is set to zero.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        self.set_checksum(0);
        let len = usize::from(self.len());
        let Some(pseudo) = checksum::pseudo_header(src, dst, IpProtocol::Udp, len) else { return };
        let value = !checksum::add(pseudo, checksum::sum(&self.buffer.as_ref()[..len]));
        self.set_checksum(if value == 0 { 0xffff } else { value });
    }
}

/// A UDP header's meaning. The payload is not part of it: `payload_len` says
/// how long it is, and it stays in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload_len: usize,
}

impl Repr {
    /// Reads a datagram, checking its length first. The checksum is not
    /// verified here: see [`Packet::verify_checksum`].
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: usize::from(packet.len()) - HEADER_LEN,
        })
    }

    /// The header's length: what [`Repr::emit`] writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The header and payload length.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN.saturating_add(self.payload_len)
    }

    /// Writes the header, with a zero checksum; fill the payload, then call
    /// [`Packet::fill_checksum`] (or leave it zero over IPv4). Returns
    /// `Truncated` if the buffer is shorter than [`Repr::header_len`], and
    /// `Malformed` if the length does not fit the 16-bit length field.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut Packet<&mut T>) -> Result<()> {
        let len = u16::try_from(self.buffer_len()).map_err(|_| Error::Malformed)?;
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len);
        packet.set_checksum(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    /// A DNS query from 192.0.2.1:53000 to 192.0.2.53:53 with a 4-byte
    /// payload, checksum computed by hand over the pseudo-header.
    const V4_DATAGRAM: [u8; 12] = [
        0xcf, 0x08, // src port 53000
        0x00, 0x35, // dst port 53
        0x00, 0x0c, // length 12
        0x0e, 0xc4, // checksum
        0xde, 0xad, 0xbe, 0xef,
    ];
    const V4_SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const V4_DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);

    #[test]
    fn golden_view() {
        let packet = Packet::new_checked(&V4_DATAGRAM[..]).unwrap();
        assert_eq!(packet.src_port(), 53000);
        assert_eq!(packet.dst_port(), 53);
        assert_eq!(packet.ports(), u32::from(packet.src_port()) << 16 | 53);
        assert_eq!(packet.len(), 12);
        assert_eq!(packet.checksum(), 0x0ec4);
        assert_eq!(packet.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(packet.verify_checksum(V4_SRC.into(), V4_DST.into()));
        assert!(!packet.verify_checksum(V4_SRC.into(), Ipv4Addr::new(192, 0, 2, 54).into()));
    }

    #[test]
    fn golden_emit() {
        let repr = Repr::parse(&Packet::new_checked(&V4_DATAGRAM[..]).unwrap()).unwrap();
        assert_eq!(repr, Repr { src_port: 53000, dst_port: 53, payload_len: 4 });
        let mut bytes = [0u8; 12];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        repr.emit(&mut packet).unwrap();
        packet.payload_mut().copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        packet.fill_checksum(V4_SRC.into(), V4_DST.into());
        assert_eq!(bytes, V4_DATAGRAM);
    }

    #[test]
    fn length_checks() {
        assert_eq!(Packet::new_checked(&V4_DATAGRAM[..7]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&V4_DATAGRAM[..11]).unwrap_err(), Error::Truncated);
        let mut short = V4_DATAGRAM;
        short[5] = 7;
        assert_eq!(Packet::new_checked(&short[..]).unwrap_err(), Error::Malformed);
        // Link padding after the datagram is not payload.
        let mut padded = [0u8; 16];
        padded[..12].copy_from_slice(&V4_DATAGRAM);
        let packet = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(packet.payload().len(), 4);
        assert!(packet.verify_checksum(V4_SRC.into(), V4_DST.into()));
    }

    #[test]
    fn zero_checksum_rules() {
        let mut bytes = V4_DATAGRAM;
        bytes[6] = 0;
        bytes[7] = 0;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(packet.verify_checksum(V4_SRC.into(), V4_DST.into()), "zero means none over IPv4");
        let src6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
        let dst6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
        assert!(!packet.verify_checksum(src6.into(), dst6.into()), "zero is invalid over IPv6");
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.fill_checksum(src6.into(), dst6.into());
        assert!(packet.verify_checksum(src6.into(), dst6.into()));
        assert_ne!(packet.checksum(), 0);
    }
}
