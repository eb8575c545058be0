//! ICMP for IPv4 (RFC 792): the message view, and a `Repr` for echo request
//! and reply, destination unreachable (with the next-hop MTU of RFC 1191 for
//! "fragmentation needed") and time exceeded.
//!
//! The data after the 8-byte header (an echo payload, or the start of the
//! datagram an error is about) stays in the buffer; [`Packet::embedded_ipv4`]
//! reads the quoted datagram. The checksum covers the whole message and is
//! left to [`Packet::verify_checksum`] and [`Packet::fill_checksum`].
//!
//! What this module does not do: redirects, parameter problems, timestamps or
//! the RFC 4884 extension structures (their bytes stay in the data), or
//! decide when to send an error.

use super::{checksum, ipv4, read_u16, write_u16, Error, Result};

enum_with_unknown! {
    /// The ICMP message type (RFC 792).
    pub enum Message(u8) {
        EchoReply = 0,
        DstUnreachable = 3,
        Redirect = 5,
        EchoRequest = 8,
        TimeExceeded = 11,
        ParamProblem = 12,
    }
}

enum_with_unknown! {
    /// The code of a Destination Unreachable message (RFC 792, RFC 1122
    /// §3.2.2.1, RFC 1812 §5.2.7.1).
    pub enum DstUnreachable(u8) {
        NetUnreachable = 0,
        HostUnreachable = 1,
        ProtoUnreachable = 2,
        PortUnreachable = 3,
        /// Fragmentation needed and DF set; carries the next-hop MTU
        /// (RFC 1191 §4).
        FragRequired = 4,
        SrcRouteFailed = 5,
        DstNetUnknown = 6,
        DstHostUnknown = 7,
        SrcHostIsolated = 8,
        NetProhibited = 9,
        HostProhibited = 10,
        NetUnreachToS = 11,
        HostUnreachToS = 12,
        CommProhibited = 13,
        HostPrecedViol = 14,
        PrecedCutoff = 15,
    }
}

enum_with_unknown! {
    /// The code of a Time Exceeded message (RFC 792).
    pub enum TimeExceeded(u8) {
        /// Time to live exceeded in transit.
        TtlExpired = 0,
        /// Fragment reassembly time exceeded.
        FragExpired = 1,
    }
}

mod field {
    use core::ops::Range;

    pub(super) const TYPE: usize = 0;
    pub(super) const CODE: usize = 1;
    pub(super) const CHECKSUM: Range<usize> = 2..4;
    pub(super) const ECHO_IDENT: Range<usize> = 4..6;
    pub(super) const ECHO_SEQNO: Range<usize> = 6..8;
    /// The unused word of an error message, with the next-hop MTU in its low
    /// half for "fragmentation needed" (RFC 1191 §4).
    pub(super) const UNUSED: Range<usize> = 4..8;
    pub(super) const MTU: Range<usize> = 6..8;
    pub(super) const DATA: usize = 8;
}

/// The length of an ICMP header: type, code, checksum and the 4-byte word
/// that depends on the type.
pub const HEADER_LEN: usize = field::DATA;

/// A view of an ICMP message in a buffer.
///
/// After [`Packet::new_checked`] succeeds the buffer holds the 8-byte header,
/// and no getter panics whatever the message type: the echo and MTU getters
/// read the type-dependent word as they would for their own type.
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
    /// ICMP has no length field; the message is the whole buffer.
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

    pub fn msg_type(&self) -> Message {
        Message::from(self.buffer.as_ref()[field::TYPE])
    }

    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The identifier of an echo request or reply.
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }

    /// The sequence number of an echo request or reply.
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQNO.start)
    }

    /// The next-hop MTU of a "fragmentation needed" message (RFC 1191 §4):
    /// bytes 6 and 7, zero from a router older than RFC 1191.
    pub fn next_hop_mtu(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::MTU.start)
    }

    /// Everything after the 8-byte header: an echo payload, or the quoted
    /// datagram of an error.
    pub fn data(&self) -> &[u8] {
        self.buffer.as_ref().get(field::DATA..).unwrap_or(&[])
    }

    /// The datagram an error message quotes (RFC 792: its IP header and at
    /// least 8 bytes of its data), checked with
    /// [`ipv4::Packet::check_quoted`]. Meaningful for destination unreachable
    /// and time exceeded; on other types it reads the data all the same.
    pub fn embedded_ipv4(&self) -> Result<ipv4::Packet<&[u8]>> {
        ipv4::Packet::new_quoted(self.data())
    }

    /// Whether the checksum over the whole message is right.
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_msg_type(&mut self, value: Message) {
        self.buffer.as_mut()[field::TYPE] = value.into()
    }

    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value
    }

    pub fn set_checksum(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, value)
    }

    pub fn set_echo_ident(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT.start, value)
    }

    pub fn set_echo_seq_no(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQNO.start, value)
    }

    pub fn set_next_hop_mtu(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::MTU.start, value)
    }

    /// Everything after the 8-byte header, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut().get_mut(field::DATA..).unwrap_or(&mut [])
    }

    /// Computes and writes the checksum over the whole buffer; call it after
    /// the data is in place.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let value = !checksum::sum(self.buffer.as_ref());
        self.set_checksum(value)
    }
}

/// An ICMP message's meaning. The data (an echo payload or the quoted
/// datagram) is not part of it: `data_len` says how long it is, and it stays
/// in the buffer, like a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repr {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data_len: usize,
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data_len: usize,
    },
    /// `next_hop_mtu` is carried only by [`DstUnreachable::FragRequired`],
    /// and must be zero for every other reason.
    DstUnreachable {
        reason: DstUnreachable,
        next_hop_mtu: u16,
        data_len: usize,
    },
    TimeExceeded {
        reason: TimeExceeded,
        data_len: usize,
    },
}

impl Repr {
    /// Reads a message, checking its length first. The checksum is not
    /// verified here: see [`Packet::verify_checksum`].
    ///
    /// An error message must quote a datagram whose IPv4 header
    /// [`Packet::embedded_ipv4`] accepts; its error is passed on. An echo
    /// with a code other than 0 is `Malformed` (RFC 792); other message
    /// types are `Unsupported`. Unknown unreachable and time-exceeded codes
    /// are carried. The unused word of an error (all of it, or all but the
    /// MTU for "fragmentation needed") is not read, so bytes there other
    /// than zero (RFC 4884 lengths, say) do not survive a parse and emit.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        let data_len = packet.data().len();
        match packet.msg_type() {
            Message::EchoRequest | Message::EchoReply if packet.msg_code() != 0 => Err(Error::Malformed),
            Message::EchoRequest => {
                Ok(Repr::EchoRequest { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data_len })
            }
            Message::EchoReply => {
                Ok(Repr::EchoReply { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data_len })
            }
            Message::DstUnreachable => {
                packet.embedded_ipv4()?;
                let reason = DstUnreachable::from(packet.msg_code());
                let next_hop_mtu = if reason == DstUnreachable::FragRequired { packet.next_hop_mtu() } else { 0 };
                Ok(Repr::DstUnreachable { reason, next_hop_mtu, data_len })
            }
            Message::TimeExceeded => {
                packet.embedded_ipv4()?;
                Ok(Repr::TimeExceeded { reason: TimeExceeded::from(packet.msg_code()), data_len })
            }
            _ => Err(Error::Unsupported),
        }
    }

    /// The header's length: what [`Repr::emit`] writes.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The length of the data after the header.
    pub const fn data_len(&self) -> usize {
        match *self {
            Repr::EchoRequest { data_len, .. }
            | Repr::EchoReply { data_len, .. }
            | Repr::DstUnreachable { data_len, .. }
            | Repr::TimeExceeded { data_len, .. } => data_len,
        }
    }

    /// The header and data length (saturating, for a `data_len` no buffer
    /// could hold).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN.saturating_add(self.data_len())
    }

    /// Writes the 8-byte header, unused bytes zero, with a zero checksum: put
    /// the data in [`Packet::data_mut`], then call [`Packet::fill_checksum`].
    /// For an error, `Repr::parse` will then want the data to start with an
    /// IPv4 header. `Truncated` if the buffer is shorter than 8 bytes;
    /// `Malformed` if a next-hop MTU other than zero comes with a reason
    /// other than [`DstUnreachable::FragRequired`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut Packet<&mut T>) -> Result<()> {
        if let Repr::DstUnreachable { reason, next_hop_mtu, .. } = *self {
            if reason != DstUnreachable::FragRequired && next_hop_mtu != 0 {
                return Err(Error::Malformed);
            }
        }
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        packet.buffer.as_mut()[field::UNUSED].fill(0);
        packet.set_checksum(0);
        let (msg_type, code) = match *self {
            Repr::EchoRequest { .. } => (Message::EchoRequest, 0),
            Repr::EchoReply { .. } => (Message::EchoReply, 0),
            Repr::DstUnreachable { reason, .. } => (Message::DstUnreachable, reason.into()),
            Repr::TimeExceeded { reason, .. } => (Message::TimeExceeded, reason.into()),
        };
        packet.set_msg_type(msg_type);
        packet.set_msg_code(code);
        match *self {
            Repr::EchoRequest { ident, seq_no, .. } | Repr::EchoReply { ident, seq_no, .. } => {
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
            }
            Repr::DstUnreachable { next_hop_mtu, .. } => packet.set_next_hop_mtu(next_hop_mtu),
            Repr::TimeExceeded { .. } => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::IpProtocol;
    use core::net::Ipv4Addr;

    /// A ping from `ping -p`: identifier 0x1234, sequence 1, 8 data bytes.
    const ECHO_REQUEST: [u8; 16] = [
        0x08, // type echo request
        0x00, // code 0
        0x54, 0x35, // checksum
        0x12, 0x34, // identifier
        0x00, 0x01, // sequence number 1
        0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, // data "abcdefgh"
    ];

    /// A router's "fragmentation needed" (RFC 1191) for a 1500-byte UDP
    /// datagram from 192.0.2.1:40000 to 198.51.100.7:443 with DF set, next
    /// hop MTU 1400, quoting the IPv4 header and 8 bytes.
    const FRAG_NEEDED: [u8; 36] = [
        0x03, // type destination unreachable
        0x04, // code fragmentation needed
        0x34, 0x92, // checksum
        0x00, 0x00, // unused
        0x05, 0x78, // next-hop MTU 1400
        // the quoted IPv4 header
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
        // the quoted UDP header: 40000 -> 443, length 1480, checksum
        0x9c, 0x40, 0x01, 0xbb, 0x05, 0xc8, 0x1f, 0x2e,
    ];

    /// A traceroute probe's "TTL exceeded in transit": UDP from
    /// 192.0.2.1:33333 to 198.51.100.7:33434 with TTL 1.
    const TIME_EXCEEDED: [u8; 36] = [
        0x0b, // type time exceeded
        0x00, // code TTL exceeded in transit
        0xa4, 0xeb, // checksum
        0x00, 0x00, 0x00, 0x00, // unused
        // the quoted IPv4 header
        0x45, // version 4, IHL 5
        0x00, // DSCP 0, ECN 0
        0x00, 0x3c, // total length 60
        0x56, 0x78, // identification
        0x00, 0x00, // no flags, offset 0
        0x01, // TTL 1
        0x11, // protocol UDP
        0x76, 0xfd, // header checksum
        0xc0, 0x00, 0x02, 0x01, // src 192.0.2.1
        0xc6, 0x33, 0x64, 0x07, // dst 198.51.100.7
        // the quoted UDP header: 33333 -> 33434, length 40, checksum
        0x82, 0x35, 0x82, 0x9a, 0x00, 0x28, 0x4b, 0x1c,
    ];

    /// Emits `repr`, copies `data` in, fills the checksum.
    fn emit_into(repr: &Repr, data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0xffu8; repr.buffer_len()];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        repr.emit(&mut packet).unwrap();
        packet.data_mut().copy_from_slice(data);
        packet.fill_checksum();
        bytes
    }

    #[test]
    fn golden_echo_request() {
        let packet = Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::EchoRequest);
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(packet.checksum(), 0x5435);
        assert_eq!(packet.echo_ident(), 0x1234);
        assert_eq!(packet.echo_seq_no(), 1);
        assert_eq!(packet.data(), b"abcdefgh");
        assert!(packet.verify_checksum());
        let mut flipped = ECHO_REQUEST;
        flipped[15] ^= 0x01;
        assert!(!Packet::new_checked(&flipped[..]).unwrap().verify_checksum());

        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr, Repr::EchoRequest { ident: 0x1234, seq_no: 1, data_len: 8 });
        assert_eq!(repr.buffer_len(), 16);
        assert_eq!(emit_into(&repr, b"abcdefgh"), ECHO_REQUEST);
    }

    #[test]
    fn golden_echo_reply() {
        let mut reply = ECHO_REQUEST;
        let mut packet = Packet::new_unchecked(&mut reply[..]);
        packet.set_msg_type(Message::EchoReply);
        packet.fill_checksum();
        let packet = Packet::new_checked(&reply[..]).unwrap();
        assert!(packet.verify_checksum());
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr, Repr::EchoReply { ident: 0x1234, seq_no: 1, data_len: 8 });
        assert_eq!(emit_into(&repr, b"abcdefgh"), reply);
    }

    #[test]
    fn golden_frag_needed() {
        let packet = Packet::new_checked(&FRAG_NEEDED[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::DstUnreachable);
        assert_eq!(DstUnreachable::from(packet.msg_code()), DstUnreachable::FragRequired);
        assert_eq!(packet.next_hop_mtu(), 1400);
        assert_eq!(packet.data(), &FRAG_NEEDED[8..]);
        assert!(packet.verify_checksum());
        let mut flipped = FRAG_NEEDED;
        flipped[7] ^= 0x01;
        assert!(!Packet::new_checked(&flipped[..]).unwrap().verify_checksum());

        let quoted = packet.embedded_ipv4().unwrap();
        assert_eq!(quoted.src_addr(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(quoted.dst_addr(), Ipv4Addr::new(198, 51, 100, 7));
        assert_eq!(quoted.next_header(), IpProtocol::Udp);
        assert_eq!(quoted.total_len(), 1500);
        assert!(quoted.dont_frag());
        assert_eq!(quoted.payload(), &FRAG_NEEDED[28..]);

        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(
            repr,
            Repr::DstUnreachable { reason: DstUnreachable::FragRequired, next_hop_mtu: 1400, data_len: 28 }
        );
        assert_eq!(emit_into(&repr, &FRAG_NEEDED[8..]), FRAG_NEEDED);
    }

    #[test]
    fn unreachable_mtu_only_for_frag_required() {
        // A port unreachable whose unused word is not zero: the MTU is not read.
        let mut bytes = FRAG_NEEDED;
        bytes[1] = 3;
        let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(
            repr,
            Repr::DstUnreachable { reason: DstUnreachable::PortUnreachable, next_hop_mtu: 0, data_len: 28 }
        );
        let emitted = emit_into(&repr, &FRAG_NEEDED[8..]);
        assert_eq!(&emitted[4..8], &[0, 0, 0, 0]);
        // An unknown code is carried.
        bytes[1] = 200;
        let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(repr, Repr::DstUnreachable { reason: DstUnreachable::Unknown(200), next_hop_mtu: 0, data_len: 28 });
        assert_eq!(emit_into(&repr, &FRAG_NEEDED[8..])[1], 200);
    }

    #[test]
    fn golden_time_exceeded() {
        let packet = Packet::new_checked(&TIME_EXCEEDED[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::TimeExceeded);
        assert_eq!(TimeExceeded::from(packet.msg_code()), TimeExceeded::TtlExpired);
        assert!(packet.verify_checksum());
        let quoted = packet.embedded_ipv4().unwrap();
        assert_eq!(quoted.hop_limit(), 1);
        assert_eq!(quoted.next_header(), IpProtocol::Udp);
        assert_eq!(quoted.payload(), &TIME_EXCEEDED[28..]);

        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr, Repr::TimeExceeded { reason: TimeExceeded::TtlExpired, data_len: 28 });
        assert_eq!(emit_into(&repr, &TIME_EXCEEDED[8..]), TIME_EXCEEDED);
    }

    #[test]
    fn parse_errors() {
        assert_eq!(Packet::new_checked(&ECHO_REQUEST[..7]).unwrap_err(), Error::Truncated);
        assert_eq!(Repr::parse(&Packet::new_unchecked(&ECHO_REQUEST[..7])), Err(Error::Truncated));
        // An echo with no data is fine.
        assert_eq!(
            Repr::parse(&Packet::new_checked(&ECHO_REQUEST[..8]).unwrap()),
            Ok(Repr::EchoRequest { ident: 0x1234, seq_no: 1, data_len: 0 })
        );

        let mut coded_echo = ECHO_REQUEST;
        coded_echo[1] = 1;
        assert_eq!(Repr::parse(&Packet::new_checked(&coded_echo[..]).unwrap()), Err(Error::Malformed));

        for unsupported in [Message::Redirect, Message::ParamProblem, Message::Unknown(13)] {
            let mut bytes = FRAG_NEEDED;
            bytes[0] = unsupported.into();
            assert_eq!(Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()), Err(Error::Unsupported));
        }

        // The quote must hold a whole IPv4 header.
        let packet = Packet::new_checked(&FRAG_NEEDED[..27]).unwrap();
        assert_eq!(packet.embedded_ipv4().unwrap_err(), Error::Truncated);
        assert_eq!(Repr::parse(&packet), Err(Error::Truncated));
        let packet = Packet::new_checked(&TIME_EXCEEDED[..8]).unwrap();
        assert_eq!(Repr::parse(&packet), Err(Error::Truncated));
        // ... of IPv4.
        let mut v6 = TIME_EXCEEDED;
        v6[8] = 0x60;
        assert_eq!(Repr::parse(&Packet::new_checked(&v6[..]).unwrap()), Err(Error::Malformed));
        let mut bad_ihl = FRAG_NEEDED;
        bad_ihl[8] = 0x43;
        assert_eq!(Repr::parse(&Packet::new_checked(&bad_ihl[..]).unwrap()), Err(Error::Malformed));
    }

    #[test]
    fn emit_errors() {
        let mut short = [0u8; 7];
        let repr = Repr::EchoRequest { ident: 1, seq_no: 2, data_len: 0 };
        assert_eq!(repr.emit(&mut Packet::new_unchecked(&mut short[..])), Err(Error::Truncated));
        let mut bytes = [0u8; 8];
        let bad_mtu = Repr::DstUnreachable { reason: DstUnreachable::PortUnreachable, next_hop_mtu: 1400, data_len: 0 };
        assert_eq!(bad_mtu.emit(&mut Packet::new_unchecked(&mut bytes[..])), Err(Error::Malformed));
        assert_eq!(Repr::EchoReply { ident: 0, seq_no: 0, data_len: usize::MAX }.buffer_len(), usize::MAX);
    }

    #[test]
    fn setters_round_trip() {
        let mut bytes = [0u8; 12];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_msg_type(Message::Unknown(42));
        packet.set_msg_code(7);
        packet.set_echo_ident(0xabcd);
        packet.set_echo_seq_no(0x0102);
        packet.data_mut().copy_from_slice(&[1, 2, 3, 4]);
        packet.fill_checksum();
        assert!(packet.verify_checksum());
        packet.set_checksum(0xbeef);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::Unknown(42));
        assert_eq!(packet.msg_code(), 7);
        assert_eq!(packet.checksum(), 0xbeef);
        assert_eq!(packet.echo_ident(), 0xabcd);
        assert_eq!(packet.echo_seq_no(), 0x0102);
        assert_eq!(packet.next_hop_mtu(), 0x0102);
        assert_eq!(packet.data(), &[1, 2, 3, 4]);
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_next_hop_mtu(576);
        assert_eq!(packet.into_inner()[6..8], [0x02, 0x40]);
    }

    #[test]
    fn enums_round_trip() {
        for n in 0..=255u8 {
            assert_eq!(u8::from(Message::from(n)), n);
            assert_eq!(u8::from(DstUnreachable::from(n)), n);
            assert_eq!(u8::from(TimeExceeded::from(n)), n);
        }
        assert_eq!(DstUnreachable::from(15), DstUnreachable::PrecedCutoff);
        assert_eq!(TimeExceeded::from(1), TimeExceeded::FragExpired);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn repr() -> impl Strategy<Value = Repr> {
            prop_oneof![
                (any::<u16>(), any::<u16>(), 0usize..64).prop_map(|(ident, seq_no, data_len)| Repr::EchoRequest {
                    ident,
                    seq_no,
                    data_len
                }),
                (any::<u16>(), any::<u16>(), 0usize..64).prop_map(|(ident, seq_no, data_len)| Repr::EchoReply {
                    ident,
                    seq_no,
                    data_len
                }),
                (any::<u8>(), any::<u16>(), 28usize..64).prop_map(|(code, mtu, data_len)| {
                    let reason = DstUnreachable::from(code);
                    let next_hop_mtu = if reason == DstUnreachable::FragRequired { mtu } else { 0 };
                    Repr::DstUnreachable { reason, next_hop_mtu, data_len }
                }),
                (any::<u8>(), 28usize..64)
                    .prop_map(|(code, data_len)| Repr::TimeExceeded { reason: TimeExceeded::from(code), data_len }),
            ]
        }

        proptest! {
            #[test]
            fn emit_then_parse_is_identity(repr in repr()) {
                let mut bytes = vec![0xa5u8; repr.buffer_len()];
                let mut packet = Packet::new_unchecked(&mut bytes[..]);
                repr.emit(&mut packet).unwrap();
                // Errors must quote an IPv4 header: use the golden one.
                if matches!(repr, Repr::DstUnreachable { .. } | Repr::TimeExceeded { .. }) {
                    packet.data_mut()[..28].copy_from_slice(&FRAG_NEEDED[8..]);
                }
                packet.fill_checksum();
                let packet = Packet::new_checked(&bytes[..]).unwrap();
                prop_assert!(packet.verify_checksum());
                prop_assert_eq!(Repr::parse(&packet), Ok(repr));
            }

            #[test]
            fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
                if let Ok(packet) = Packet::new_checked(&bytes[..]) {
                    let _ = (packet.msg_type(), packet.msg_code(), packet.checksum(), packet.echo_ident());
                    let _ = (packet.echo_seq_no(), packet.next_hop_mtu(), packet.data(), packet.verify_checksum());
                    let _ = packet.embedded_ipv4().map(|quoted| quoted.payload().len());
                    if let Ok(repr) = Repr::parse(&packet) {
                        let mut out = vec![0u8; repr.buffer_len()];
                        repr.emit(&mut Packet::new_unchecked(&mut out[..])).unwrap();
                        prop_assert_eq!(out.len(), bytes.len());
                        prop_assert_eq!(&out[..2], &bytes[..2]);
                    }
                }
            }
        }
    }
}
