//! ICMPv6 (RFC 4443) and the Neighbor Discovery messages a VTEP answers
//! (Neighbor Solicitation and Advertisement, RFC 4861 §4.3, §4.4): the
//! message view, the NDP option walker (RFC 4861 §4.6), the checksum over
//! the IPv6 pseudo-header (RFC 4443 §2.3), and a `Repr` for echo, the four
//! error messages and NS/NA.
//!
//! An ICMPv6 message has no length field: the view's buffer must be exactly
//! the message (the IPv6 payload after any extension headers), since the
//! checksum and the data run to its end.
//!
//! What this module does not do: router solicitation and advertisement,
//! redirect, MLD (they are views-only: [`Repr::parse`] returns
//! `Unsupported`); the IP-level checks of RFC 4861 §7.1 (hop limit 255,
//! unspecified source only with a solicited-node destination and no source
//! link-layer option), which need the IPv6 header and belong to the caller;
//! rate limiting and the rules of RFC 4443 §2.4 for when to send an error.

use core::net::Ipv6Addr;

use super::{checksum, ipv6, read_u16, read_u32, write_u16, write_u32, Error, EthernetAddress, IpProtocol, Result};

enum_with_unknown! {
    /// The ICMPv6 message type (RFC 4443 §2.1, RFC 4861 §4).
    pub enum Message(u8) {
        DstUnreachable = 1,
        PktTooBig = 2,
        TimeExceeded = 3,
        ParamProblem = 4,
        EchoRequest = 128,
        EchoReply = 129,
        RouterSolicit = 133,
        RouterAdvert = 134,
        NeighborSolicit = 135,
        NeighborAdvert = 136,
        Redirect = 137,
    }
}

impl Message {
    /// Whether this is an error message (type below 128, RFC 4443 §2.1).
    pub fn is_error(self) -> bool {
        u8::from(self) < 128
    }
}

enum_with_unknown! {
    /// The code of a Destination Unreachable message (RFC 4443 §3.1).
    pub enum DstUnreachable(u8) {
        NoRoute = 0,
        AdminProhibit = 1,
        BeyondScope = 2,
        AddrUnreachable = 3,
        PortUnreachable = 4,
        FailedPolicy = 5,
        RejectRoute = 6,
    }
}

enum_with_unknown! {
    /// The code of a Time Exceeded message (RFC 4443 §3.3).
    pub enum TimeExceeded(u8) {
        HopLimitExceeded = 0,
        FragReassemblyExceeded = 1,
    }
}

enum_with_unknown! {
    /// The code of a Parameter Problem message (RFC 4443 §3.4).
    pub enum ParamProblem(u8) {
        ErroneousHeaderField = 0,
        UnrecognizedNxtHdr = 1,
        UnrecognizedOption = 2,
    }
}

mod field {
    use core::ops::Range;

    pub(super) const TYPE: usize = 0;
    pub(super) const CODE: usize = 1;
    pub(super) const CHECKSUM: Range<usize> = 2..4;

    // The second word: meaning depends on the type.
    pub(super) const ECHO_IDENT: Range<usize> = 4..6;
    pub(super) const ECHO_SEQ_NO: Range<usize> = 6..8;
    pub(super) const MTU: Range<usize> = 4..8;
    pub(super) const POINTER: Range<usize> = 4..8;
    /// Unused in Destination Unreachable and Time Exceeded, reserved in NS,
    /// flags and reserved in NA.
    pub(super) const WORD: Range<usize> = 4..8;
    pub(super) const NA_FLAGS: usize = 4;

    pub(super) const DATA: usize = 8;

    // Neighbor Solicitation and Advertisement (RFC 4861 §4.3, §4.4).
    pub(super) const TARGET_ADDR: Range<usize> = 8..24;
    pub(super) const NDP_OPTIONS: usize = 24;
}

/// The length of the ICMPv6 header: type, code, checksum and one word.
pub const HEADER_LEN: usize = field::DATA;

/// The length of a Neighbor Solicitation or Advertisement without options.
pub const NDP_HEADER_LEN: usize = field::NDP_OPTIONS;

const FLAG_ROUTER: u8 = 0x80;
const FLAG_SOLICITED: u8 = 0x40;
const FLAG_OVERRIDE: u8 = 0x20;

/// A view of an ICMPv6 message in a buffer that holds exactly the message.
///
/// After [`Packet::new_checked`] succeeds, the buffer holds the 8-byte
/// header, and for a Neighbor Solicitation or Advertisement the target
/// address too; no getter panics on any message type (the NDP getters return
/// defaults when their bytes are absent).
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

    /// Checks that the buffer holds the 8-byte header, and for a Neighbor
    /// Solicitation or Advertisement the 24 bytes up to the end of the
    /// target address (RFC 4861 §7.1.1, §7.1.2); `Truncated` if not.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        match self.msg_type() {
            Message::NeighborSolicit | Message::NeighborAdvert if len < NDP_HEADER_LEN => Err(Error::Truncated),
            _ => Ok(()),
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

    /// The identifier of an Echo Request or Reply.
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }

    /// The sequence number of an Echo Request or Reply.
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQ_NO.start)
    }

    /// The MTU of a Packet Too Big message.
    pub fn pkt_too_big_mtu(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::MTU.start)
    }

    /// The pointer of a Parameter Problem message: the offset of the
    /// offending byte in the quoted packet.
    pub fn param_problem_ptr(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::POINTER.start)
    }

    /// Everything after the 8-byte header: echo data, or the quoted packet
    /// of an error message.
    pub fn data(&self) -> &[u8] {
        self.buffer.as_ref().get(field::DATA..).unwrap_or_default()
    }

    /// The packet quoted in an error message (RFC 4443 §2.4(c)), checked
    /// with [`ipv6::Packet::new_quoted`]: its payload is usually cut short.
    pub fn embedded_ipv6(&self) -> Result<ipv6::Packet<&[u8]>> {
        ipv6::Packet::new_quoted(self.data())
    }

    /// The target address of a Neighbor Solicitation or Advertisement, or
    /// the unspecified address `::` if the buffer is too short to hold one
    /// (which [`Packet::check_len`] allows only for other message types).
    pub fn target_addr(&self) -> Ipv6Addr {
        match self.buffer.as_ref().get(field::TARGET_ADDR) {
            Some(bytes) => {
                let mut addr = [0u8; 16];
                addr.copy_from_slice(bytes);
                Ipv6Addr::from(addr)
            }
            None => Ipv6Addr::UNSPECIFIED,
        }
    }

    /// The R flag of a Neighbor Advertisement: the sender is a router.
    pub fn router_flag(&self) -> bool {
        self.buffer.as_ref()[field::NA_FLAGS] & FLAG_ROUTER != 0
    }

    /// The S flag of a Neighbor Advertisement: sent in answer to a
    /// solicitation.
    pub fn solicited_flag(&self) -> bool {
        self.buffer.as_ref()[field::NA_FLAGS] & FLAG_SOLICITED != 0
    }

    /// The O flag of a Neighbor Advertisement: override a cached link-layer
    /// address.
    pub fn override_flag(&self) -> bool {
        self.buffer.as_ref()[field::NA_FLAGS] & FLAG_OVERRIDE != 0
    }

    /// The three Neighbor Advertisement flags together.
    pub fn neighbor_flags(&self) -> NeighborFlags {
        NeighborFlags { router: self.router_flag(), solicited: self.solicited_flag(), override_: self.override_flag() }
    }

    /// The options of a Neighbor Solicitation or Advertisement (bytes 24
    /// on); empty if the buffer ends before them.
    pub fn ndp_options(&self) -> NdpOptions<'_> {
        NdpOptions::new(self.buffer.as_ref().get(field::NDP_OPTIONS..).unwrap_or_default())
    }

    /// Whether the checksum is right for a message from `src` to `dst`
    /// (RFC 4443 §2.3): the pseudo-header's length is the buffer's length.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let message = self.buffer.as_ref();
        checksum::add(pseudo_header(src, dst, message.len()), checksum::sum(message)) == 0xffff
    }
}

/// The IPv6 pseudo-header sum for an ICMPv6 message of `len` bytes.
fn pseudo_header(src: Ipv6Addr, dst: Ipv6Addr, len: usize) -> u16 {
    checksum::pseudo_header_v6(src, dst, IpProtocol::Icmpv6, u32::try_from(len).unwrap_or(u32::MAX))
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
        write_u16(self.buffer.as_mut(), field::ECHO_SEQ_NO.start, value)
    }

    pub fn set_pkt_too_big_mtu(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::MTU.start, value)
    }

    pub fn set_param_problem_ptr(&mut self, value: u32) {
        write_u32(self.buffer.as_mut(), field::POINTER.start, value)
    }

    /// Zeroes the second word: the unused field of Destination Unreachable
    /// and Time Exceeded, the reserved field of NS, the flags of NA.
    pub fn clear_reserved(&mut self) {
        write_u32(self.buffer.as_mut(), field::WORD.start, 0)
    }

    /// Sets the target address. Panics if the buffer is shorter than 24
    /// bytes ([`Packet::check_len`] ensures it for NS and NA).
    pub fn set_target_addr(&mut self, value: Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET_ADDR].copy_from_slice(&value.octets())
    }

    pub fn set_router_flag(&mut self, value: bool) {
        self.set_flag(FLAG_ROUTER, value)
    }

    pub fn set_solicited_flag(&mut self, value: bool) {
        self.set_flag(FLAG_SOLICITED, value)
    }

    pub fn set_override_flag(&mut self, value: bool) {
        self.set_flag(FLAG_OVERRIDE, value)
    }

    /// Sets the three Neighbor Advertisement flags, keeping the reserved bits.
    pub fn set_neighbor_flags(&mut self, flags: NeighborFlags) {
        self.set_router_flag(flags.router);
        self.set_solicited_flag(flags.solicited);
        self.set_override_flag(flags.override_);
    }

    fn set_flag(&mut self, mask: u8, value: bool) {
        let byte = &mut self.buffer.as_mut()[field::NA_FLAGS];
        *byte = if value { *byte | mask } else { *byte & !mask };
    }

    /// Everything after the 8-byte header, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut().get_mut(field::DATA..).unwrap_or_default()
    }

    /// Computes and writes the checksum for a message from `src` to `dst`
    /// over the whole buffer (RFC 4443 §2.3).
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let message = self.buffer.as_ref();
        let value = !checksum::add(pseudo_header(src, dst, message.len()), checksum::sum(message));
        self.set_checksum(value);
    }
}

/// The NDP option type of a Source Link-Layer Address option.
const OPT_SOURCE_LLADDR: u8 = 1;
/// The NDP option type of a Target Link-Layer Address option.
const OPT_TARGET_LLADDR: u8 = 2;
/// NDP option lengths count units of 8 bytes, type and length included.
const OPT_UNIT: usize = 8;

/// One Neighbor Discovery option (RFC 4861 §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NdpOption<'a> {
    /// Type 1, length 1: the sender's Ethernet address (§4.6.1).
    SourceLinkLayerAddr(EthernetAddress),
    /// Type 2, length 1: the target's Ethernet address (§4.6.1).
    TargetLinkLayerAddr(EthernetAddress),
    /// Any other option, or a link-layer address option of a length other
    /// than 1 (not Ethernet): `data` is the option after its type and
    /// length bytes.
    Unknown { kind: u8, data: &'a [u8] },
}

impl NdpOption<'_> {
    /// The option's length on the wire, type and length bytes included.
    pub fn buffer_len(&self) -> usize {
        match self {
            NdpOption::SourceLinkLayerAddr(_) | NdpOption::TargetLinkLayerAddr(_) => OPT_UNIT,
            NdpOption::Unknown { data, .. } => data.len().saturating_add(2),
        }
    }

    /// Writes the option at the start of `buffer`. Returns `Malformed` if
    /// an `Unknown` option's length is not a multiple of 8 between 8 and
    /// 2040, or if it is a type 1 or 2 option of length 1 (which would read
    /// back as a link-layer address); `Truncated` if `buffer` is shorter
    /// than [`NdpOption::buffer_len`].
    pub fn emit(&self, buffer: &mut [u8]) -> Result<()> {
        let len = self.buffer_len();
        let (kind, body): (u8, &[u8]) = match self {
            NdpOption::SourceLinkLayerAddr(addr) => (OPT_SOURCE_LLADDR, &addr.0),
            NdpOption::TargetLinkLayerAddr(addr) => (OPT_TARGET_LLADDR, &addr.0),
            NdpOption::Unknown { kind, data } => (*kind, data),
        };
        let units = u8::try_from(len / OPT_UNIT).map_err(|_| Error::Malformed)?;
        let lladdr_shape = matches!(kind, OPT_SOURCE_LLADDR | OPT_TARGET_LLADDR) && units == 1;
        if len % OPT_UNIT != 0 || (lladdr_shape && matches!(self, NdpOption::Unknown { .. })) {
            return Err(Error::Malformed);
        }
        let out = buffer.get_mut(..len).ok_or(Error::Truncated)?;
        out[0] = kind;
        out[1] = units;
        out[2..].copy_from_slice(body);
        Ok(())
    }
}

/// Walks the options of a Neighbor Discovery message (RFC 4861 §4.6).
///
/// Yields `Err(Malformed)` for an option of length zero (§4.6: "Nodes MUST
/// silently discard an ND packet that contains an option with length
/// zero") and `Err(Truncated)` for one that runs past the buffer; after an
/// error it yields nothing more. Every option is at least 8 bytes long, so
/// the walk ends.
#[derive(Debug, Clone)]
pub struct NdpOptions<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> NdpOptions<'a> {
    /// Walks the options in `buffer`, which holds only options.
    pub fn new(buffer: &'a [u8]) -> NdpOptions<'a> {
        NdpOptions { rest: buffer, done: false }
    }
}

impl<'a> Iterator for NdpOptions<'a> {
    type Item = Result<NdpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let result = match self.rest {
            [_] => Err(Error::Truncated),
            [_, 0, ..] => Err(Error::Malformed),
            [kind, units, ..] => {
                let len = usize::from(*units) * OPT_UNIT;
                match self.rest.get(..len) {
                    None => Err(Error::Truncated),
                    Some(option) => {
                        self.rest = &self.rest[len..];
                        let data = &option[2..];
                        let lladdr = || {
                            let mut addr = [0u8; 6];
                            addr.copy_from_slice(data);
                            EthernetAddress(addr)
                        };
                        Ok(match (*kind, *units) {
                            (OPT_SOURCE_LLADDR, 1) => NdpOption::SourceLinkLayerAddr(lladdr()),
                            (OPT_TARGET_LLADDR, 1) => NdpOption::TargetLinkLayerAddr(lladdr()),
                            (kind, _) => NdpOption::Unknown { kind, data },
                        })
                    }
                }
            }
            [] => return None,
        };
        self.done = result.is_err();
        Some(result)
    }
}

/// The flags of a Neighbor Advertisement (RFC 4861 §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NeighborFlags {
    pub router: bool,
    pub solicited: bool,
    pub override_: bool,
}

/// The meaning of the ICMPv6 messages this module represents. The data of
/// echo and error messages is not part of it: `data_len` says how long it
/// is, and it stays in the buffer.
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
    /// `data_len` is the length of the quoted packet, at least 40.
    DstUnreachable {
        reason: DstUnreachable,
        data_len: usize,
    },
    PktTooBig {
        mtu: u32,
        data_len: usize,
    },
    TimeExceeded {
        reason: TimeExceeded,
        data_len: usize,
    },
    ParamProblem {
        reason: ParamProblem,
        pointer: u32,
        data_len: usize,
    },
    /// The target must not be multicast (RFC 4861 §7.1.1).
    NeighborSolicit {
        target_addr: Ipv6Addr,
        source_lladdr: Option<EthernetAddress>,
    },
    /// The target must not be multicast (RFC 4861 §7.1.2).
    NeighborAdvert {
        flags: NeighborFlags,
        target_addr: Ipv6Addr,
        target_lladdr: Option<EthernetAddress>,
    },
}

impl Repr {
    /// Reads a message, checking its length first. The checksum is not
    /// verified here, since it needs the addresses: see
    /// [`Packet::verify_checksum`].
    ///
    /// - Echo with a code other than 0 → `Unsupported` (not representable).
    /// - Error messages: the quoted packet must pass
    ///   [`ipv6::Packet::new_quoted`], whose error is returned. The code of
    ///   Packet Too Big is ignored (RFC 4443 §3.2); unknown codes of the
    ///   others are carried.
    /// - NS/NA: code other than 0, or a multicast target → `Malformed`
    ///   (RFC 4861 §7.1.1, §7.1.2); the options are walked and their errors
    ///   returned; the first link-layer address option of the right kind is
    ///   kept, the others skipped.
    /// - Any other type → `Unsupported`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        let code = packet.msg_code();
        let data_len = packet.data().len();
        let msg_type = packet.msg_type();
        if msg_type.is_error() {
            packet.embedded_ipv6()?;
        }
        match msg_type {
            Message::EchoRequest | Message::EchoReply if code != 0 => Err(Error::Unsupported),
            Message::EchoRequest => {
                Ok(Repr::EchoRequest { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data_len })
            }
            Message::EchoReply => {
                Ok(Repr::EchoReply { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data_len })
            }
            Message::DstUnreachable => Ok(Repr::DstUnreachable { reason: code.into(), data_len }),
            Message::PktTooBig => Ok(Repr::PktTooBig { mtu: packet.pkt_too_big_mtu(), data_len }),
            Message::TimeExceeded => Ok(Repr::TimeExceeded { reason: code.into(), data_len }),
            Message::ParamProblem => {
                Ok(Repr::ParamProblem { reason: code.into(), pointer: packet.param_problem_ptr(), data_len })
            }
            Message::NeighborSolicit | Message::NeighborAdvert => {
                let target_addr = packet.target_addr();
                if code != 0 || target_addr.is_multicast() {
                    return Err(Error::Malformed);
                }
                let mut source_lladdr = None;
                let mut target_lladdr = None;
                for option in packet.ndp_options() {
                    match option? {
                        NdpOption::SourceLinkLayerAddr(addr) => source_lladdr = source_lladdr.or(Some(addr)),
                        NdpOption::TargetLinkLayerAddr(addr) => target_lladdr = target_lladdr.or(Some(addr)),
                        NdpOption::Unknown { .. } => {}
                    }
                }
                if msg_type == Message::NeighborSolicit {
                    Ok(Repr::NeighborSolicit { target_addr, source_lladdr })
                } else {
                    Ok(Repr::NeighborAdvert { flags: packet.neighbor_flags(), target_addr, target_lladdr })
                }
            }
            _ => Err(Error::Unsupported),
        }
    }

    /// The message's length: the 8-byte header and the data, or for NS/NA
    /// the 24 bytes up to the options and 8 for a link-layer address option.
    /// Saturating: a length too large is refused by [`Repr::emit`].
    pub const fn buffer_len(&self) -> usize {
        match self {
            Repr::EchoRequest { data_len, .. }
            | Repr::EchoReply { data_len, .. }
            | Repr::DstUnreachable { data_len, .. }
            | Repr::PktTooBig { data_len, .. }
            | Repr::TimeExceeded { data_len, .. }
            | Repr::ParamProblem { data_len, .. } => HEADER_LEN.saturating_add(*data_len),
            Repr::NeighborSolicit { source_lladdr: lladdr, .. }
            | Repr::NeighborAdvert { target_lladdr: lladdr, .. } => {
                NDP_HEADER_LEN + if lladdr.is_some() { OPT_UNIT } else { 0 }
            }
        }
    }

    /// Writes everything but the echo data or quoted packet, with a zero
    /// checksum: fill [`Packet::data_mut`], then call
    /// [`Packet::fill_checksum`]. The message is the whole buffer, so pass
    /// one of exactly [`Repr::buffer_len`] bytes.
    ///
    /// Returns `Malformed` for an error message quoting less than an IPv6
    /// header (40 bytes), or an NS/NA with a multicast target; `Truncated`
    /// if the buffer is shorter than [`Repr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut Packet<&mut T>) -> Result<()> {
        match *self {
            Repr::DstUnreachable { data_len, .. }
            | Repr::PktTooBig { data_len, .. }
            | Repr::TimeExceeded { data_len, .. }
            | Repr::ParamProblem { data_len, .. }
                if data_len < ipv6::HEADER_LEN =>
            {
                return Err(Error::Malformed)
            }
            Repr::NeighborSolicit { target_addr, .. } | Repr::NeighborAdvert { target_addr, .. }
                if target_addr.is_multicast() =>
            {
                return Err(Error::Malformed)
            }
            _ => {}
        }
        if packet.buffer.as_ref().len() < self.buffer_len() {
            return Err(Error::Truncated);
        }
        packet.set_msg_code(0);
        packet.set_checksum(0);
        packet.clear_reserved();
        match *self {
            Repr::EchoRequest { ident, seq_no, .. } | Repr::EchoReply { ident, seq_no, .. } => {
                let request = matches!(self, Repr::EchoRequest { .. });
                packet.set_msg_type(if request { Message::EchoRequest } else { Message::EchoReply });
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
            }
            Repr::DstUnreachable { reason, .. } => {
                packet.set_msg_type(Message::DstUnreachable);
                packet.set_msg_code(reason.into());
            }
            Repr::PktTooBig { mtu, .. } => {
                packet.set_msg_type(Message::PktTooBig);
                packet.set_pkt_too_big_mtu(mtu);
            }
            Repr::TimeExceeded { reason, .. } => {
                packet.set_msg_type(Message::TimeExceeded);
                packet.set_msg_code(reason.into());
            }
            Repr::ParamProblem { reason, pointer, .. } => {
                packet.set_msg_type(Message::ParamProblem);
                packet.set_msg_code(reason.into());
                packet.set_param_problem_ptr(pointer);
            }
            Repr::NeighborSolicit { target_addr, source_lladdr } => {
                packet.set_msg_type(Message::NeighborSolicit);
                packet.set_target_addr(target_addr);
                if let Some(addr) = source_lladdr {
                    NdpOption::SourceLinkLayerAddr(addr).emit(&mut packet.buffer.as_mut()[field::NDP_OPTIONS..])?;
                }
            }
            Repr::NeighborAdvert { flags, target_addr, target_lladdr } => {
                packet.set_msg_type(Message::NeighborAdvert);
                packet.set_neighbor_flags(flags);
                packet.set_target_addr(target_addr);
                if let Some(addr) = target_lladdr {
                    NdpOption::TargetLinkLayerAddr(addr).emit(&mut packet.buffer.as_mut()[field::NDP_OPTIONS..])?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST1: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const HOST2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const ROUTER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe);
    /// The solicited-node multicast address of 2001:db8::2 (RFC 4291 §2.7.1).
    const SOLICITED_NODE: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 2);
    const MAC1: EthernetAddress = EthernetAddress([0x00, 0x00, 0x5e, 0x00, 0x53, 0x01]);
    const MAC2: EthernetAddress = EthernetAddress([0x00, 0x00, 0x5e, 0x00, 0x53, 0x02]);

    /// ping from 2001:db8::1 to 2001:db8::2 with 8 bytes of data.
    const ECHO_REQUEST: [u8; 16] = [
        0x80, // type 128, echo request
        0x00, // code 0
        0x46, 0x6a, // checksum
        0x4c, 0x3f, // identifier
        0x00, 0x01, // sequence number 1
        0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, // data "abcdefgh"
    ];

    /// 2001:db8::1 asks ff02::1:ff00:2 who has 2001:db8::2.
    const NEIGHBOR_SOLICIT: [u8; 32] = [
        0x87, // type 135, neighbor solicitation
        0x00, // code 0
        0x6d, 0x26, // checksum
        0x00, 0x00, 0x00, 0x00, // reserved
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // target 2001:db8::2
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, //
        0x01, // option: source link-layer address
        0x01, // length 1 (8 bytes)
        0x00, 0x00, 0x5e, 0x00, 0x53, 0x01, // 00:00:5e:00:53:01
    ];

    /// 2001:db8::2 answers 2001:db8::1: solicited, override.
    const NEIGHBOR_ADVERT: [u8; 32] = [
        0x88, // type 136, neighbor advertisement
        0x00, // code 0
        0xdb, 0x70, // checksum
        0x60, 0x00, 0x00, 0x00, // flags R=0 S=1 O=1, reserved
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // target 2001:db8::2
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, //
        0x02, // option: target link-layer address
        0x01, // length 1 (8 bytes)
        0x00, 0x00, 0x5e, 0x00, 0x53, 0x02, // 00:00:5e:00:53:02
    ];

    /// Router 2001:db8::fe tells 2001:db8::1 that its 1500-byte UDP
    /// datagram to 2001:db8::2 does not fit a 1280-byte link, quoting the
    /// start of it.
    const PKT_TOO_BIG: [u8; 64] = [
        0x02, // type 2, packet too big
        0x00, // code 0
        0xd6, 0x84, // checksum
        0x00, 0x00, 0x05, 0x00, // MTU 1280
        // quoted IPv6 header
        0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
        0x05, 0xac, // payload length 1452
        0x11, // next header UDP
        0x40, // hop limit 64
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // src 2001:db8::1
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, // dst 2001:db8::2
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, //
        // quoted UDP header
        0xcf, 0x08, // src port 53000
        0x00, 0x35, // dst port 53
        0x05, 0xac, // length 1452
        0x12, 0x34, // checksum (of the whole datagram)
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, // first 8 bytes of payload
    ];

    /// Emits `repr` into a buffer of its length, copies `data` after the
    /// header, fills the checksum and returns the bytes.
    fn emit(repr: &Repr, data: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
        let mut bytes = vec![0xa5u8; repr.buffer_len()];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        repr.emit(&mut packet).unwrap();
        if !data.is_empty() {
            packet.data_mut().copy_from_slice(data);
        }
        packet.fill_checksum(src, dst);
        bytes
    }

    #[test]
    fn echo_request() {
        let packet = Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::EchoRequest);
        assert_eq!(packet.msg_code(), 0);
        assert_eq!(packet.checksum(), 0x466a);
        assert_eq!(packet.echo_ident(), 0x4c3f);
        assert_eq!(packet.echo_seq_no(), 1);
        assert_eq!(packet.data(), b"abcdefgh");
        assert!(packet.verify_checksum(HOST1, HOST2));
        assert!(!packet.verify_checksum(HOST1, ROUTER));
        let mut flipped = ECHO_REQUEST;
        flipped[9] ^= 0x01;
        assert!(!Packet::new_checked(&flipped[..]).unwrap().verify_checksum(HOST1, HOST2));

        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr, Repr::EchoRequest { ident: 0x4c3f, seq_no: 1, data_len: 8 });
        assert_eq!(repr.buffer_len(), 16);
        assert_eq!(emit(&repr, b"abcdefgh", HOST1, HOST2), ECHO_REQUEST);

        // The reply, and codes the Repr cannot carry.
        let reply = Repr::EchoReply { ident: 0x4c3f, seq_no: 1, data_len: 8 };
        let bytes = emit(&reply, b"abcdefgh", HOST2, HOST1);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::EchoReply);
        assert!(packet.verify_checksum(HOST2, HOST1));
        assert_eq!(Repr::parse(&packet), Ok(reply));
        let mut coded = ECHO_REQUEST;
        coded[1] = 1;
        assert_eq!(Repr::parse(&Packet::new_unchecked(&coded[..])), Err(Error::Unsupported));
    }

    #[test]
    fn neighbor_solicit() {
        let packet = Packet::new_checked(&NEIGHBOR_SOLICIT[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::NeighborSolicit);
        assert_eq!(packet.target_addr(), HOST2);
        assert!(packet.verify_checksum(HOST1, SOLICITED_NODE));
        let mut flipped = NEIGHBOR_SOLICIT;
        flipped[31] ^= 0x80;
        assert!(!Packet::new_checked(&flipped[..]).unwrap().verify_checksum(HOST1, SOLICITED_NODE));
        let mut options = packet.ndp_options();
        assert_eq!(options.next(), Some(Ok(NdpOption::SourceLinkLayerAddr(MAC1))));
        assert_eq!(options.next(), None);

        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr, Repr::NeighborSolicit { target_addr: HOST2, source_lladdr: Some(MAC1) });
        assert_eq!(repr.buffer_len(), 32);
        assert_eq!(emit(&repr, &[], HOST1, SOLICITED_NODE), NEIGHBOR_SOLICIT);

        // Without the option (as from the unspecified address, in DAD).
        let dad = Repr::NeighborSolicit { target_addr: HOST2, source_lladdr: None };
        let bytes = emit(&dad, &[], Ipv6Addr::UNSPECIFIED, SOLICITED_NODE);
        assert_eq!(bytes.len(), 24);
        assert_eq!((bytes[0], bytes[1]), (0x87, 0x00));
        assert_eq!(bytes[4..24], NEIGHBOR_SOLICIT[4..24]);
        assert!(Packet::new_checked(&bytes[..]).unwrap().verify_checksum(Ipv6Addr::UNSPECIFIED, SOLICITED_NODE));
        assert_eq!(Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()), Ok(dad));
    }

    #[test]
    fn neighbor_advert() {
        let packet = Packet::new_checked(&NEIGHBOR_ADVERT[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::NeighborAdvert);
        assert!(!packet.router_flag());
        assert!(packet.solicited_flag());
        assert!(packet.override_flag());
        assert_eq!(packet.target_addr(), HOST2);
        assert!(packet.verify_checksum(HOST2, HOST1));
        assert!(!packet.verify_checksum(HOST2, ROUTER));
        let flags = NeighborFlags { router: false, solicited: true, override_: true };
        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr, Repr::NeighborAdvert { flags, target_addr: HOST2, target_lladdr: Some(MAC2) });
        assert_eq!(emit(&repr, &[], HOST2, HOST1), NEIGHBOR_ADVERT);
        let mut flipped = NEIGHBOR_ADVERT;
        flipped[4] ^= 0x80;
        assert!(!Packet::new_checked(&flipped[..]).unwrap().verify_checksum(HOST2, HOST1));
    }

    #[test]
    fn packet_too_big() {
        let packet = Packet::new_checked(&PKT_TOO_BIG[..]).unwrap();
        assert_eq!(packet.msg_type(), Message::PktTooBig);
        assert_eq!(packet.pkt_too_big_mtu(), 1280);
        assert!(packet.verify_checksum(ROUTER, HOST1));
        let mut flipped = PKT_TOO_BIG;
        flipped[7] = 0x01;
        assert!(!Packet::new_checked(&flipped[..]).unwrap().verify_checksum(ROUTER, HOST1));
        let quoted = packet.embedded_ipv6().unwrap();
        assert_eq!((quoted.src_addr(), quoted.dst_addr()), (HOST1, HOST2));
        assert_eq!(quoted.payload_len(), 1452);
        assert_eq!(quoted.payload().len(), 16);
        assert_eq!(quoted.upper_layer().unwrap().protocol, IpProtocol::Udp);
        // The NDP getters on a message too short for them.
        assert_eq!(Packet::new_checked(&PKT_TOO_BIG[..20]).unwrap().target_addr(), Ipv6Addr::UNSPECIFIED);

        let repr = Repr::parse(&packet).unwrap();
        assert_eq!(repr, Repr::PktTooBig { mtu: 1280, data_len: 56 });
        assert_eq!(emit(&repr, &PKT_TOO_BIG[8..], ROUTER, HOST1), PKT_TOO_BIG);
    }

    #[test]
    fn other_errors_round_trip() {
        let quoted = &PKT_TOO_BIG[8..];
        for repr in [
            Repr::DstUnreachable { reason: DstUnreachable::PortUnreachable, data_len: 56 },
            Repr::DstUnreachable { reason: DstUnreachable::Unknown(9), data_len: 56 },
            Repr::TimeExceeded { reason: TimeExceeded::HopLimitExceeded, data_len: 56 },
            Repr::ParamProblem { reason: ParamProblem::UnrecognizedNxtHdr, pointer: 6, data_len: 56 },
        ] {
            let bytes = emit(&repr, quoted, ROUTER, HOST1);
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            assert!(packet.verify_checksum(ROUTER, HOST1));
            assert_eq!(Repr::parse(&packet), Ok(repr));
            assert_eq!(&bytes[4..8], if let Repr::ParamProblem { .. } = repr { &[0, 0, 0, 6] } else { &[0; 4] });
        }
        let bytes = emit(
            &Repr::ParamProblem { reason: ParamProblem::Unknown(3), pointer: 40, data_len: 56 },
            quoted,
            ROUTER,
            HOST1,
        );
        assert_eq!((bytes[0], bytes[1]), (4, 3));
        assert_eq!(Packet::new_checked(&bytes[..]).unwrap().param_problem_ptr(), 40);
    }

    #[test]
    fn check_len_errors() {
        assert_eq!(Packet::new_checked(&ECHO_REQUEST[..7]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&NEIGHBOR_SOLICIT[..23]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&NEIGHBOR_ADVERT[..23]).unwrap_err(), Error::Truncated);
        assert!(Packet::new_checked(&NEIGHBOR_ADVERT[..24]).is_ok());
        assert_eq!(Repr::parse(&Packet::new_unchecked(&ECHO_REQUEST[..7])), Err(Error::Truncated));
        assert_eq!(Repr::parse(&Packet::new_unchecked(&NEIGHBOR_SOLICIT[..23])), Err(Error::Truncated));
    }

    #[test]
    fn parse_errors() {
        // An error message must quote at least an IPv6 header.
        assert_eq!(Repr::parse(&Packet::new_unchecked(&PKT_TOO_BIG[..47])), Err(Error::Truncated));
        let mut v4 = PKT_TOO_BIG;
        v4[8] = 0x45;
        assert_eq!(Repr::parse(&Packet::new_unchecked(&v4[..])), Err(Error::Malformed));
        let mut unreachable = v4;
        unreachable[0] = 1;
        assert_eq!(Repr::parse(&Packet::new_unchecked(&unreachable[..])), Err(Error::Malformed));
        // NDP code must be 0.
        let mut coded = NEIGHBOR_SOLICIT;
        coded[1] = 1;
        assert_eq!(Repr::parse(&Packet::new_unchecked(&coded[..])), Err(Error::Malformed));
        // NDP target must not be multicast.
        let mut multicast = NEIGHBOR_ADVERT;
        multicast[8..24].copy_from_slice(&SOLICITED_NODE.octets());
        assert_eq!(Repr::parse(&Packet::new_unchecked(&multicast[..])), Err(Error::Malformed));
        // Types without a Repr.
        let mut advert = ECHO_REQUEST;
        advert[0] = u8::from(Message::RouterAdvert);
        assert_eq!(Repr::parse(&Packet::new_unchecked(&advert[..])), Err(Error::Unsupported));
        advert[0] = 200;
        assert_eq!(Packet::new_unchecked(&advert[..]).msg_type(), Message::Unknown(200));
        assert_eq!(Repr::parse(&Packet::new_unchecked(&advert[..])), Err(Error::Unsupported));
    }

    #[test]
    fn ndp_option_errors() {
        // A zero-length option: Malformed once, then nothing.
        let mut zero = NEIGHBOR_SOLICIT;
        zero[25] = 0;
        let packet = Packet::new_checked(&zero[..]).unwrap();
        let mut options = packet.ndp_options();
        assert_eq!(options.next(), Some(Err(Error::Malformed)));
        assert_eq!(options.next(), None);
        assert_eq!(Repr::parse(&packet), Err(Error::Malformed));
        // An option longer than the buffer, and one cut after its type.
        let mut long = NEIGHBOR_SOLICIT;
        long[25] = 2;
        assert_eq!(Repr::parse(&Packet::new_unchecked(&long[..])), Err(Error::Truncated));
        assert_eq!(Repr::parse(&Packet::new_unchecked(&NEIGHBOR_SOLICIT[..31])), Err(Error::Truncated));
        assert_eq!(Repr::parse(&Packet::new_unchecked(&NEIGHBOR_SOLICIT[..25])), Err(Error::Truncated));
        let mut options = NdpOptions::new(&NEIGHBOR_SOLICIT[24..25]);
        assert_eq!(options.next(), Some(Err(Error::Truncated)));
        assert_eq!(options.next(), None);
        // Unknown options (a nonce, RFC 3971 §5.3.2) and a long link-layer
        // option are skipped.
        let options = [
            0x0e, 0x01, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, // nonce
            0x02, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 16-byte target link-layer address
            0x02, 0x01, 0x00, 0x00, 0x5e, 0x00, 0x53, 0x02, // target link-layer address
        ];
        let mut walk = NdpOptions::new(&options);
        assert_eq!(walk.next(), Some(Ok(NdpOption::Unknown { kind: 14, data: &options[2..8] })));
        assert_eq!(walk.next(), Some(Ok(NdpOption::Unknown { kind: 2, data: &options[10..24] })));
        assert_eq!(walk.next(), Some(Ok(NdpOption::TargetLinkLayerAddr(MAC2))));
        assert_eq!(walk.next(), None);
        let mut bytes = [0u8; 56];
        bytes[..24].copy_from_slice(&NEIGHBOR_ADVERT[..24]);
        bytes[24..].copy_from_slice(&options);
        let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        let flags = NeighborFlags { router: false, solicited: true, override_: true };
        assert_eq!(repr, Repr::NeighborAdvert { flags, target_addr: HOST2, target_lladdr: Some(MAC2) });
    }

    #[test]
    fn ndp_option_emit() {
        let mut bytes = [0u8; 24];
        let nonce = NdpOption::Unknown { kind: 14, data: &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66] };
        assert_eq!(nonce.buffer_len(), 8);
        nonce.emit(&mut bytes).unwrap();
        assert_eq!(bytes[..8], [0x0e, 0x01, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66]);
        NdpOption::TargetLinkLayerAddr(MAC2).emit(&mut bytes[8..]).unwrap();
        assert_eq!(bytes[8..16], NEIGHBOR_ADVERT[24..]);
        let walked: Vec<_> = NdpOptions::new(&bytes[..16]).collect();
        assert_eq!(walked, [Ok(nonce), Ok(NdpOption::TargetLinkLayerAddr(MAC2))]);
        assert_eq!(NdpOption::SourceLinkLayerAddr(MAC1).emit(&mut bytes[..7]), Err(Error::Truncated));
        assert_eq!(NdpOption::Unknown { kind: 14, data: &[0; 5] }.emit(&mut bytes), Err(Error::Malformed));
        assert_eq!(NdpOption::Unknown { kind: 1, data: &[0; 6] }.emit(&mut bytes), Err(Error::Malformed));
        assert_eq!(NdpOption::Unknown { kind: 1, data: &[0; 14] }.emit(&mut bytes[..16]), Ok(()));
        assert_eq!(NdpOption::Unknown { kind: 14, data: &[0; 2046] }.emit(&mut bytes), Err(Error::Malformed));
    }

    #[test]
    fn emit_errors() {
        let mut bytes = [0u8; 64];
        let short = Repr::PktTooBig { mtu: 1280, data_len: 39 };
        assert_eq!(short.emit(&mut Packet::new_unchecked(&mut bytes[..])), Err(Error::Malformed));
        let multicast = Repr::NeighborSolicit { target_addr: SOLICITED_NODE, source_lladdr: None };
        assert_eq!(multicast.emit(&mut Packet::new_unchecked(&mut bytes[..])), Err(Error::Malformed));
        let echo = Repr::EchoRequest { ident: 1, seq_no: 2, data_len: 8 };
        assert_eq!(echo.emit(&mut Packet::new_unchecked(&mut bytes[..15])), Err(Error::Truncated));
        let ns = Repr::NeighborSolicit { target_addr: HOST2, source_lladdr: Some(MAC1) };
        assert_eq!(ns.emit(&mut Packet::new_unchecked(&mut bytes[..31])), Err(Error::Truncated));
        let huge = Repr::EchoReply { ident: 1, seq_no: 2, data_len: usize::MAX };
        assert_eq!(huge.buffer_len(), usize::MAX);
        assert_eq!(huge.emit(&mut Packet::new_unchecked(&mut bytes[..])), Err(Error::Truncated));
    }

    #[test]
    fn setters_round_trip() {
        let mut bytes = [0u8; 32];
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_msg_type(Message::NeighborAdvert);
        packet.set_msg_code(0);
        packet.set_target_addr(HOST1);
        packet.set_router_flag(true);
        packet.set_override_flag(true);
        packet.set_solicited_flag(true);
        packet.set_solicited_flag(false);
        assert_eq!(packet.neighbor_flags(), NeighborFlags { router: true, solicited: false, override_: true });
        assert_eq!(packet.target_addr(), HOST1);
        packet.set_neighbor_flags(NeighborFlags::default());
        assert_eq!(packet.neighbor_flags(), NeighborFlags::default());
        packet.set_echo_ident(0xabcd);
        packet.set_echo_seq_no(0x0102);
        assert_eq!((packet.echo_ident(), packet.echo_seq_no()), (0xabcd, 0x0102));
        packet.set_pkt_too_big_mtu(9000);
        assert_eq!(packet.pkt_too_big_mtu(), 9000);
        packet.set_param_problem_ptr(0x0102_0304);
        assert_eq!(packet.param_problem_ptr(), 0x0102_0304);
        packet.clear_reserved();
        assert_eq!(packet.param_problem_ptr(), 0);
        packet.data_mut()[0] = 0xee;
        assert_eq!(packet.data()[0], 0xee);
        packet.set_checksum(0x1234);
        assert_eq!(packet.checksum(), 0x1234);
        packet.fill_checksum(HOST1, HOST2);
        assert!(packet.verify_checksum(HOST1, HOST2));
        assert_eq!(Message::from(2), Message::PktTooBig);
        assert_eq!(u8::from(Message::Redirect), 137);
        assert!(Message::ParamProblem.is_error() && !Message::EchoReply.is_error());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        for golden in [&ECHO_REQUEST[..], &NEIGHBOR_SOLICIT[..], &NEIGHBOR_ADVERT[..], &PKT_TOO_BIG[..]] {
            for at in 0..golden.len() {
                for value in [0x00, 0x01, 0x02, 0x04, 0x80, 0x87, 0x88, 0xff] {
                    let mut bytes = golden.to_vec();
                    bytes[at] = value;
                    for len in 0..=bytes.len() {
                        let buf = &bytes[..len];
                        if let Ok(packet) = Packet::new_checked(buf) {
                            let _ = (packet.target_addr(), packet.neighbor_flags(), packet.data());
                            let _ = (packet.embedded_ipv6(), packet.verify_checksum(HOST1, HOST2));
                            let _ = packet.ndp_options().count();
                        }
                        if let Ok(repr) = Repr::parse(&Packet::new_unchecked(buf)) {
                            let mut out = vec![0u8; repr.buffer_len()];
                            let mut packet = Packet::new_unchecked(&mut out[..]);
                            repr.emit(&mut packet).unwrap();
                            let data_len = packet.data().len().min(buf.len() - HEADER_LEN);
                            if !matches!(repr, Repr::NeighborSolicit { .. } | Repr::NeighborAdvert { .. }) {
                                packet.data_mut()[..data_len].copy_from_slice(&buf[HEADER_LEN..][..data_len]);
                            }
                            assert_eq!(Repr::parse(&Packet::new_unchecked(&out[..])), Ok(repr));
                        }
                    }
                }
            }
        }
    }
}
