//! ARP (RFC 826): a view of any ARP packet, whatever its address lengths, and
//! a `Repr` for the one kind wharf speaks, Ethernet hardware addresses with
//! IPv4 protocol addresses.
//!
//! The view trusts the hardware and protocol length fields to place the four
//! addresses; [`Packet::check_len`] makes sure the buffer holds them. The
//! `Repr` refuses anything but Ethernet/IPv4 as `Unsupported`.
//!
//! What this module does not do: keep a neighbour table, answer requests,
//! or give gratuitous ARP (RFC 5227) or RARP any meaning beyond carrying the
//! operation code.

use core::net::Ipv4Addr;

use super::{read_u16, write_u16, Error, EtherType, EthernetAddress, Result};

enum_with_unknown! {
    /// The hardware address space (`ar$hrd`, IANA "Hardware Types").
    pub enum Hardware(u16) {
        Ethernet = 1,
    }
}

enum_with_unknown! {
    /// The operation code (`ar$op`).
    pub enum Operation(u16) {
        Request = 1,
        Reply = 2,
    }
}

mod field {
    use core::ops::Range;

    pub(super) const HTYPE: Range<usize> = 0..2;
    pub(super) const PTYPE: Range<usize> = 2..4;
    pub(super) const HLEN: usize = 4;
    pub(super) const PLEN: usize = 5;
    pub(super) const OPER: Range<usize> = 6..8;
    /// Where the addresses start.
    pub(super) const ADDRS: usize = 8;

    pub(super) const fn sha(hlen: u8, _plen: u8) -> Range<usize> {
        let start = ADDRS;
        start..start + hlen as usize
    }

    pub(super) const fn spa(hlen: u8, plen: u8) -> Range<usize> {
        let start = sha(hlen, plen).end;
        start..start + plen as usize
    }

    pub(super) const fn tha(hlen: u8, plen: u8) -> Range<usize> {
        let start = spa(hlen, plen).end;
        start..start + hlen as usize
    }

    pub(super) const fn tpa(hlen: u8, plen: u8) -> Range<usize> {
        let start = tha(hlen, plen).end;
        start..start + plen as usize
    }
}

/// The length of the fixed part of an ARP packet, before the addresses.
pub const FIXED_LEN: usize = field::ADDRS;

/// The length of an ARP packet for Ethernet and IPv4: what [`Repr`] writes.
pub const ETHERNET_IPV4_LEN: usize = FIXED_LEN + 2 * (6 + 4);

/// A view of an ARP packet in a buffer.
///
/// After [`Packet::new_checked`] succeeds, the buffer holds the fixed part
/// and the four addresses the length fields describe, and no getter panics.
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

    /// Checks that the buffer holds the 8-byte fixed part and then the two
    /// hardware and two protocol addresses its length fields claim:
    /// `Truncated` if it does not. A longer buffer (Ethernet padding) is
    /// accepted.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < FIXED_LEN || len < field::tpa(self.hardware_len(), self.protocol_len()).end {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives back the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn hardware_type(&self) -> Hardware {
        read_u16(self.buffer.as_ref(), field::HTYPE.start).into()
    }

    pub fn protocol_type(&self) -> EtherType {
        read_u16(self.buffer.as_ref(), field::PTYPE.start).into()
    }

    /// The length of a hardware address, in bytes (`ar$hln`).
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// The length of a protocol address, in bytes (`ar$pln`).
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    pub fn operation(&self) -> Operation {
        read_u16(self.buffer.as_ref(), field::OPER.start).into()
    }

    pub fn source_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::sha(self.hardware_len(), self.protocol_len())]
    }

    pub fn source_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::spa(self.hardware_len(), self.protocol_len())]
    }

    pub fn target_hardware_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::tha(self.hardware_len(), self.protocol_len())]
    }

    pub fn target_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[field::tpa(self.hardware_len(), self.protocol_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_hardware_type(&mut self, value: Hardware) {
        write_u16(self.buffer.as_mut(), field::HTYPE.start, value.into())
    }

    pub fn set_protocol_type(&mut self, value: EtherType) {
        write_u16(self.buffer.as_mut(), field::PTYPE.start, value.into())
    }

    /// Sets `ar$hln`; set it before the addresses, which it places.
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value
    }

    /// Sets `ar$pln`; set it before the addresses, which it places.
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value
    }

    pub fn set_operation(&mut self, value: Operation) {
        write_u16(self.buffer.as_mut(), field::OPER.start, value.into())
    }

    /// Writes the sender hardware address.
    ///
    /// # Panics
    /// If `value` is not [`Packet::hardware_len`] bytes long, or the buffer
    /// cannot hold it.
    pub fn set_source_hardware_addr(&mut self, value: &[u8]) {
        let range = field::sha(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[range].copy_from_slice(value)
    }

    /// Writes the sender protocol address.
    ///
    /// # Panics
    /// If `value` is not [`Packet::protocol_len`] bytes long, or the buffer
    /// cannot hold it.
    pub fn set_source_protocol_addr(&mut self, value: &[u8]) {
        let range = field::spa(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[range].copy_from_slice(value)
    }

    /// Writes the target hardware address.
    ///
    /// # Panics
    /// If `value` is not [`Packet::hardware_len`] bytes long, or the buffer
    /// cannot hold it.
    pub fn set_target_hardware_addr(&mut self, value: &[u8]) {
        let range = field::tha(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[range].copy_from_slice(value)
    }

    /// Writes the target protocol address.
    ///
    /// # Panics
    /// If `value` is not [`Packet::protocol_len`] bytes long, or the buffer
    /// cannot hold it.
    pub fn set_target_protocol_addr(&mut self, value: &[u8]) {
        let range = field::tpa(self.hardware_len(), self.protocol_len());
        self.buffer.as_mut()[range].copy_from_slice(value)
    }
}

/// An ARP packet for Ethernet and IPv4. The operation is carried as it is,
/// unknown codes included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    pub operation: Operation,
    pub source_hardware_addr: EthernetAddress,
    pub source_protocol_addr: Ipv4Addr,
    pub target_hardware_addr: EthernetAddress,
    pub target_protocol_addr: Ipv4Addr,
}

impl Repr {
    /// Reads a packet, checking its length first (`Truncated`). Returns
    /// `Unsupported` unless the hardware type is Ethernet, the protocol type
    /// IPv4, and the address lengths 6 and 4.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.hardware_type() != Hardware::Ethernet
            || packet.protocol_type() != EtherType::Ipv4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        let mac = |bytes: &[u8]| EthernetAddress::from_bytes(bytes).ok_or(Error::Unsupported);
        let ip = |bytes: &[u8]| <[u8; 4]>::try_from(bytes).map(Ipv4Addr::from).map_err(|_| Error::Unsupported);
        Ok(Repr {
            operation: packet.operation(),
            source_hardware_addr: mac(packet.source_hardware_addr())?,
            source_protocol_addr: ip(packet.source_protocol_addr())?,
            target_hardware_addr: mac(packet.target_hardware_addr())?,
            target_protocol_addr: ip(packet.target_protocol_addr())?,
        })
    }

    /// The packet's length: 28 bytes.
    pub const fn buffer_len(&self) -> usize {
        ETHERNET_IPV4_LEN
    }

    /// Writes the whole packet. Returns `Truncated` if the buffer is shorter
    /// than 28 bytes; bytes after those 28 are left alone.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut Packet<&mut T>) -> Result<()> {
        if packet.buffer.as_ref().len() < ETHERNET_IPV4_LEN {
            return Err(Error::Truncated);
        }
        packet.set_hardware_type(Hardware::Ethernet);
        packet.set_protocol_type(EtherType::Ipv4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(self.source_hardware_addr.as_bytes());
        packet.set_source_protocol_addr(&self.source_protocol_addr.octets());
        packet.set_target_hardware_addr(self.target_hardware_addr.as_bytes());
        packet.set_target_protocol_addr(&self.target_protocol_addr.octets());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASKER_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
    const ASKER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const OWNER_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    const OWNER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    /// "who-has 192.0.2.2 tell 192.0.2.1", as sent to ff:ff:ff:ff:ff:ff.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, // hardware type Ethernet
        0x08, 0x00, // protocol type IPv4
        0x06, // hardware address length
        0x04, // protocol address length
        0x00, 0x01, // operation request
        0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, // sender MAC 52:54:00:ab:cd:ef
        0xc0, 0x00, 0x02, 0x01, // sender IP 192.0.2.1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target MAC unknown
        0xc0, 0x00, 0x02, 0x02, // target IP 192.0.2.2
    ];

    /// "192.0.2.2 is-at 52:54:00:12:34:56", back to the asker.
    const REPLY: [u8; 28] = [
        0x00, 0x01, // hardware type Ethernet
        0x08, 0x00, // protocol type IPv4
        0x06, // hardware address length
        0x04, // protocol address length
        0x00, 0x02, // operation reply
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // sender MAC 52:54:00:12:34:56
        0xc0, 0x00, 0x02, 0x02, // sender IP 192.0.2.2
        0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, // target MAC 52:54:00:ab:cd:ef
        0xc0, 0x00, 0x02, 0x01, // target IP 192.0.2.1
    ];

    fn emit(repr: &Repr) -> [u8; 28] {
        let mut bytes = [0xaa; 28];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..])).unwrap();
        bytes
    }

    #[test]
    fn request_golden() {
        let packet = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(packet.hardware_type(), Hardware::Ethernet);
        assert_eq!(packet.protocol_type(), EtherType::Ipv4);
        assert_eq!(packet.hardware_len(), 6);
        assert_eq!(packet.protocol_len(), 4);
        assert_eq!(packet.operation(), Operation::Request);
        assert_eq!(packet.source_hardware_addr(), ASKER_MAC.as_bytes());
        assert_eq!(packet.source_protocol_addr(), &ASKER_IP.octets());
        assert_eq!(packet.target_hardware_addr(), &[0; 6]);
        assert_eq!(packet.target_protocol_addr(), &OWNER_IP.octets());

        let repr = Repr::parse(&packet).unwrap();
        let expected = Repr {
            operation: Operation::Request,
            source_hardware_addr: ASKER_MAC,
            source_protocol_addr: ASKER_IP,
            target_hardware_addr: EthernetAddress::default(),
            target_protocol_addr: OWNER_IP,
        };
        assert_eq!(repr, expected);
        assert_eq!(repr.buffer_len(), 28);
        assert_eq!(emit(&repr), REQUEST);
    }

    #[test]
    fn reply_golden() {
        let packet = Packet::new_checked(&REPLY[..]).unwrap();
        assert_eq!(packet.operation(), Operation::Reply);
        let repr = Repr::parse(&packet).unwrap();
        let expected = Repr {
            operation: Operation::Reply,
            source_hardware_addr: OWNER_MAC,
            source_protocol_addr: OWNER_IP,
            target_hardware_addr: ASKER_MAC,
            target_protocol_addr: ASKER_IP,
        };
        assert_eq!(repr, expected);
        assert_eq!(emit(&repr), REPLY);
    }

    #[test]
    fn padded_and_unknown_operation() {
        // In a minimum-size Ethernet frame the packet is padded to 46 bytes.
        let mut padded = [0u8; 46];
        padded[..28].copy_from_slice(&REQUEST);
        padded[7] = 8; // InARP request (RFC 2390): carried as Unknown
        let repr = Repr::parse(&Packet::new_checked(&padded[..]).unwrap()).unwrap();
        assert_eq!(repr.operation, Operation::Unknown(8));
        assert_eq!(emit(&repr)[..], padded[..28]);
    }

    #[test]
    fn truncated() {
        assert_eq!(Packet::new_checked(&REQUEST[..7]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&REQUEST[..27]).unwrap_err(), Error::Truncated);
        assert_eq!(Repr::parse(&Packet::new_unchecked(&REQUEST[..20])).unwrap_err(), Error::Truncated);
        // The length fields decide: 255-byte addresses need 1028 bytes.
        let mut long = REQUEST;
        long[4] = 0xff;
        long[5] = 0xff;
        assert_eq!(Packet::new_checked(&long[..]).unwrap_err(), Error::Truncated);
        // Zero-length addresses fit in the fixed part.
        let mut empty = REQUEST;
        empty[4] = 0;
        empty[5] = 0;
        let packet = Packet::new_checked(&empty[..8]).unwrap();
        assert!(packet.source_hardware_addr().is_empty() && packet.target_protocol_addr().is_empty());
        assert_eq!(Repr::parse(&packet).unwrap_err(), Error::Unsupported);
    }

    #[test]
    fn unsupported() {
        // IEEE 802 hardware type (6) with otherwise Ethernet/IPv4 fields.
        let mut ieee802 = REQUEST;
        ieee802[1] = 6;
        let packet = Packet::new_checked(&ieee802[..]).unwrap();
        assert_eq!(packet.hardware_type(), Hardware::Unknown(6));
        assert_eq!(Repr::parse(&packet).unwrap_err(), Error::Unsupported);

        let mut ipv6 = REQUEST;
        ipv6[2..4].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(Repr::parse(&Packet::new_checked(&ipv6[..]).unwrap()).unwrap_err(), Error::Unsupported);

        // Ethernet/IPv4 types with other lengths: 4-byte hardware addresses.
        let mut short_hw = [0u8; 24];
        short_hw[..8].copy_from_slice(&[0x00, 0x01, 0x08, 0x00, 0x04, 0x04, 0x00, 0x01]);
        let packet = Packet::new_checked(&short_hw[..]).unwrap();
        assert_eq!(packet.source_hardware_addr().len(), 4);
        assert_eq!(Repr::parse(&packet).unwrap_err(), Error::Unsupported);
    }

    #[test]
    fn emit_truncated() {
        let repr = Repr::parse(&Packet::new_checked(&REPLY[..]).unwrap()).unwrap();
        let mut bytes = [0u8; 27];
        assert_eq!(repr.emit(&mut Packet::new_unchecked(&mut bytes[..])).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn setters_round_trip() {
        let mut bytes = [0u8; 28];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_hardware_type(Hardware::Ethernet);
        packet.set_protocol_type(EtherType::Ipv4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(Operation::Reply);
        packet.set_source_hardware_addr(OWNER_MAC.as_bytes());
        packet.set_source_protocol_addr(&OWNER_IP.octets());
        packet.set_target_hardware_addr(ASKER_MAC.as_bytes());
        packet.set_target_protocol_addr(&ASKER_IP.octets());
        assert_eq!(packet.source_hardware_addr(), OWNER_MAC.as_bytes());
        assert_eq!(packet.target_protocol_addr(), &ASKER_IP.octets());
        assert_eq!(bytes, REPLY);
    }

    #[test]
    fn perturbed_prefixes_never_panic() {
        for at in 0..REQUEST.len() {
            for value in [0x00, 0x01, 0x04, 0x06, 0x08, 0xff] {
                let mut bytes = REQUEST;
                bytes[at] = value;
                for len in 0..=bytes.len() {
                    let buf = &bytes[..len];
                    let Ok(packet) = Packet::new_checked(buf) else { continue };
                    let _ = (packet.hardware_type(), packet.protocol_type(), packet.operation());
                    let _ = (packet.source_hardware_addr(), packet.source_protocol_addr());
                    let _ = (packet.target_hardware_addr(), packet.target_protocol_addr());
                    if let Ok(repr) = Repr::parse(&packet) {
                        assert_eq!(emit(&repr)[..], buf[..28]);
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn emit_then_parse_is_identity(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) {
            let repr = Repr {
                operation: op.into(),
                source_hardware_addr: EthernetAddress(sha),
                source_protocol_addr: spa.into(),
                target_hardware_addr: EthernetAddress(tha),
                target_protocol_addr: tpa.into(),
            };
            let bytes = emit(&repr);
            proptest::prop_assert_eq!(Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap(), repr);
        }
    }
}
