//! Software segmentation of the TSO/USO superframes a TAP device with
//! offloads hands to userspace, and completion of partial checksums: what a
//! NIC does with the kernel's `CHECKSUM_PARTIAL` and GSO frames, done in
//! userspace before encapsulation (sans-IO, no allocation).
//!
//! A TAP opened with `IFF_VNET_HDR` and offloads turned on with `TUNSETOFFLOAD`
//! (`TUN_F_CSUM`, `TUN_F_TSO4`, `TUN_F_TSO6`, `TUN_F_TSO_ECN`, `TUN_F_USO4`,
//! `TUN_F_USO6`; not `TUN_F_UFO`, which this module does not segment) gives
//! each frame behind a [`virtio_net::Header`]. Three cases:
//!
//! - **An ordinary frame with a complete checksum** (`GSO_NONE`, no flag or
//!   `DATA_VALID`): nothing to do.
//! - **An ordinary frame with a partial checksum** (`GSO_NONE`, `NEEDS_CSUM`):
//!   [`complete_checksum`] (or [`complete_in_place`]) finishes it in place.
//! - **A superframe** (`TCPV4`, `TCPV6`, `UDP_L4`): a [`Segmenter`] writes
//!   its segments one at a time into a buffer the caller gives (positioned
//!   after whatever headroom it wants to keep for encapsulation).
//!
//! Segments are made as Linux's `tcp_gso_segment`, `__udp_gso_segment` and
//! `inet_gso_segment` make them:
//!
//! - each is a copy of the superframe's Ethernet (VLAN tags included), IP and
//!   transport headers followed by up to `gso_size` bytes of payload; IPv4
//!   options and TCP options are copied into every segment;
//! - IPv4: total length set, identification incremented per segment from the
//!   superframe's (wrapping; the virtio header cannot say "fixed ID"), header
//!   checksum recomputed; IPv6: payload length set, flow label kept;
//! - TCP: sequence number advanced by the payload offset; FIN and PSH only on
//!   the last segment; CWR only on the first; URG and the urgent pointer
//!   copied as they are, as the kernel does;
//! - UDP (USO): each segment a datagram of its own with its own length;
//! - every transport checksum computed in full over the segment and its
//!   pseudo-header (the partial value in the superframe is not used). A UDP
//!   checksum that comes out as zero is sent as 0xffff, over IPv4 too: a USO
//!   superframe always has a checksum (the kernel refuses `UDP_SEGMENT` on a
//!   socket with `SO_NO_CHECK`, and `__udp_gso_segment` writes
//!   `CSUM_MANGLED_0` for a zero), so there is no "no checksum" to keep.
//!
//! The tests hold superframes captured from a Linux 6.18 TAP (TSO and USO,
//! IPv4 and IPv6) to what the kernel's own software GSO made of the same
//! superframes: the same identifications, lengths, sequence numbers, flags
//! and checksums, segment for segment.
//!
//! How the header is checked: `hdr_len` is only a hint from the kernel
//! (`skb_headlen()`, which may be more or less than the headers), so it is
//! only required to fit in the frame, as `tun_get_user` requires; the headers
//! are read from the frame with the [`crate::wire`] views. With `NEEDS_CSUM`,
//! `csum_start` and `csum_offset` must point at the TCP or UDP checksum field
//! of the transport header found there; a superframe without `NEEDS_CSUM` is
//! segmented all the same, since every checksum is computed in full. The IP
//! length field bounds the superframe: bytes after it are ignored.
//!
//! What this module does not do: UFO (IP fragmentation of one UDP datagram),
//! IPv6 extension headers before the transport header, IPv4 fragments, BIG
//! TCP superframes above 64 KiB (IPv4 total length 0, IPv6 jumbograms; a TAP
//! has a 64 KiB `gso_max_size` unless raised), UDP-tunnel GSO, or any I/O.

use core::fmt;
use core::net::IpAddr;

use crate::wire::virtio_net::{self, Checksum, Gso, GsoType};
use crate::wire::{checksum, ethernet, ipv4, ipv6, tcp, udp, EtherType, IpProtocol};

/// The header in which a superframe was found wanting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Ethernet,
    Ipv4,
    Ipv6,
    Tcp,
    Udp,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layer::Ethernet => "Ethernet",
            Layer::Ipv4 => "IPv4",
            Layer::Ipv6 => "IPv6",
            Layer::Tcp => "TCP",
            Layer::Udp => "UDP",
        })
    }
}

/// Why a frame could not be segmented or its checksum completed. `Copy`, so
/// tests and drop counters can match on it; each is a reason to drop the
/// frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GsoError {
    /// The frame ends inside a header, or before the length a header claims.
    #[error("superframe truncated in its {0} header")]
    Truncated(Layer),
    /// A header field the format forbids: a wrong IP version, an IHL or a
    /// TCP data offset below the minimum, a UDP length that disagrees with the
    /// IP length.
    #[error("superframe has a malformed {0} header")]
    Malformed(Layer),
    /// `hdr_len` is longer than the whole frame (the tun driver refuses the
    /// same).
    #[error("virtio-net hdr_len {hdr_len} is longer than the {frame_len}-byte frame")]
    HdrLenTooLong { hdr_len: u16, frame_len: usize },
    /// With `NEEDS_CSUM`, `csum_start` and `csum_offset` do not point at the
    /// checksum field of the transport header found in the frame.
    #[error(
        "virtio-net csum_start {csum_start} + csum_offset {csum_offset} does not point at the {layer} checksum \
         (expected {expected_start} + {expected_offset})"
    )]
    CsumMismatch { layer: Layer, csum_start: u16, csum_offset: u16, expected_start: usize, expected_offset: usize },
    /// The checksum field `csum_start + csum_offset` does not fit in the
    /// frame.
    #[error(
        "checksum field at csum_start {csum_start} + csum_offset {csum_offset} is outside the {frame_len}-byte frame"
    )]
    CsumOutOfBounds { csum_start: usize, csum_offset: usize, frame_len: usize },
    /// A superframe with `gso_size` 0.
    #[error("virtio-net gso_size is 0 on a superframe")]
    ZeroGsoSize,
    /// A GSO type this module does not segment (UFO: leave `TUN_F_UFO` off).
    #[error("GSO type {0:?} is not supported; do not enable it with TUNSETOFFLOAD")]
    UnsupportedGso(GsoType),
    /// The superframe is neither IPv4 nor IPv6 (after up to two VLAN tags).
    #[error("cannot segment EtherType {0:#06x}: only IPv4 and IPv6")]
    UnsupportedEtherType(u16),
    /// The GSO type does not fit the packet: TCPV4 on IPv6, TCPV6 on IPv4,
    /// or a transport protocol other than the type's.
    #[error("GSO type {gso:?} does not match an IPv{ip_version} packet carrying IP protocol {protocol}")]
    GsoMismatch { gso: GsoType, ip_version: u8, protocol: u8 },
    /// An IPv6 extension header sits between the fixed header and the
    /// transport header.
    #[error("cannot segment IPv6 with extension header {0} before the transport header")]
    Ipv6Extension(u8),
    /// The superframe is an IPv4 fragment.
    #[error("cannot segment an IPv4 fragment")]
    Ipv4Fragment,
    /// [`complete_in_place`] was given a superframe: use a [`Segmenter`].
    #[error("a superframe must be segmented, not completed in place")]
    NeedsSegmentation,
    /// The output buffer cannot hold the next segment.
    #[error("output buffer of {have} bytes is too small for a {need}-byte segment")]
    OutputTooSmall { need: usize, have: usize },
}

/// Completes a partial checksum in place: the kernel's `CHECKSUM_PARTIAL`
/// contract, what a NIC does on transmit.
///
/// The 16-bit field at `csum_start + csum_offset` holds the pseudo-header
/// sum, folded but not complemented; the one's-complement sum of
/// `frame[csum_start..]` (that field included) is folded and its complement
/// stored there, big-endian. A result of 0 is stored as 0xffff, which is the
/// same for TCP and required for UDP (RFC 768). The sum runs to the end of
/// `frame`, so pass exactly the frame (the TAP gives no link padding).
/// `CsumOutOfBounds` if the field does not fit in `frame`; never panics.
pub fn complete_checksum(frame: &mut [u8], csum_start: usize, csum_offset: usize) -> Result<(), GsoError> {
    let out_of_bounds = GsoError::CsumOutOfBounds { csum_start, csum_offset, frame_len: frame.len() };
    let field = csum_start.checked_add(csum_offset).ok_or(out_of_bounds)?;
    if field.checked_add(2).is_none_or(|end| end > frame.len()) {
        return Err(out_of_bounds);
    }
    let value = !checksum::sum(&frame[csum_start..]);
    let value = if value == 0 { 0xffff } else { value };
    frame[field..field + 2].copy_from_slice(&value.to_be_bytes());
    Ok(())
}

/// Finishes an ordinary (not GSO) frame in place: completes its checksum if
/// the header says `NEEDS_CSUM`, and does nothing otherwise. A superframe
/// gives `NeedsSegmentation`: segment it with a [`Segmenter`].
pub fn complete_in_place(frame: &mut [u8], virtio: &virtio_net::Repr) -> Result<(), GsoError> {
    if virtio.gso.is_gso() {
        return Err(GsoError::NeedsSegmentation);
    }
    match virtio.checksum {
        Checksum::Partial { start, offset } => complete_checksum(frame, usize::from(start), usize::from(offset)),
        Checksum::None | Checksum::Valid => Ok(()),
    }
}

/// The offset of the checksum field in a TCP header.
pub const TCP_CSUM_OFFSET: usize = 16;
/// The offset of the checksum field in a UDP header.
pub const UDP_CSUM_OFFSET: usize = 6;

/// What changes per segment in the IP header.
#[derive(Debug, Clone, Copy)]
enum Ip {
    /// The superframe's identification, incremented per segment.
    V4 {
        ident: u16,
    },
    V6,
}

/// What changes per segment in the transport header.
#[derive(Debug, Clone, Copy)]
enum Transport {
    /// The superframe's sequence number and flags.
    Tcp {
        seq: u32,
        flags: tcp::Flags,
    },
    Udp,
}

/// Where the headers of a superframe are, and how to cut it.
#[derive(Debug, Clone, Copy)]
struct Split {
    ip: Ip,
    transport: Transport,
    src: IpAddr,
    dst: IpAddr,
    /// The IP header's offset: the Ethernet header's length with its tags.
    l3: usize,
    /// The transport header's offset.
    l4: usize,
    /// The headers' length: where the payload starts.
    header_len: usize,
    /// Where the payload ends, as the IP length field says.
    payload_end: usize,
    /// Payload bytes per segment, at least 1.
    gso_size: usize,
}

/// Where a superframe's headers are, as [`Segmenter::new`] reads and checks
/// them: for a caller that hands the superframe on whole instead of cutting
/// it (see [`layout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// TCP (else UDP).
    pub tcp: bool,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The IP header's offset.
    pub l3: usize,
    /// The transport header's offset.
    pub l4: usize,
    /// Where the payload starts.
    pub header_len: usize,
    /// Where the payload ends, as the IP length field says.
    pub payload_end: usize,
    /// The segments it makes, and the longest one.
    pub segments: usize,
    pub max_segment_len: usize,
}

/// The layout of the superframe `frame` that `virtio` (a TCP or UDP GSO
/// type) describes, with every check [`Segmenter::new`] makes; an ordinary
/// frame is refused with `UnsupportedGso(None)`.
pub fn layout(frame: &[u8], virtio: &virtio_net::Repr) -> Result<Layout, GsoError> {
    let segmenter = Segmenter::new(frame, virtio)?;
    let Mode::Split(split) = segmenter.mode else { return Err(GsoError::UnsupportedGso(GsoType::None)) };
    Ok(Layout {
        tcp: matches!(split.transport, Transport::Tcp { .. }),
        src: split.src,
        dst: split.dst,
        l3: split.l3,
        l4: split.l4,
        header_len: split.header_len,
        payload_end: split.payload_end,
        segments: segmenter.count,
        max_segment_len: segmenter.max_segment_len(),
    })
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    /// An ordinary frame: one copy, its partial checksum (start, offset)
    /// completed if it has one.
    Copy { partial: Option<(usize, usize)> },
    /// A superframe.
    Split(Split),
}

/// Cuts one frame from a TAP into the frames to send, one at a time, into
/// buffers the caller owns: the segments of a TSO/USO superframe, or, for an
/// ordinary frame, a single copy with its partial checksum completed (so one
/// loop serves every frame; an ordinary frame can also be finished without a
/// copy by [`complete_in_place`]).
///
/// [`Segmenter::new`] checks everything it can before the first segment;
/// [`Segmenter::next_into`] only writes. It borrows the frame, holds no buffer
/// of its own and never allocates.
///
/// ```
/// use dataplane::gso::Segmenter;
/// use dataplane::wire::virtio_net;
///
/// # fn send(_: &[u8]) {}
/// fn segment_all(frame: &[u8], virtio: &virtio_net::Repr, scratch: &mut [u8]) -> Result<(), dataplane::gso::GsoError> {
///     const HEADROOM: usize = 64;
///     let mut segments = Segmenter::new(frame, virtio)?;
///     while let Some(len) = segments.next_into(&mut scratch[HEADROOM..]) {
///         let len = len?;
///         send(&scratch[HEADROOM..HEADROOM + len]);
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Segmenter<'a> {
    frame: &'a [u8],
    mode: Mode,
    /// How many segments there are in all.
    count: usize,
    /// How many have been written.
    index: usize,
    /// The offset in `frame` of the next segment's payload.
    cursor: usize,
    /// Set after an error: no segment follows.
    failed: bool,
}

impl<'a> Segmenter<'a> {
    /// Reads the virtio-net header's meaning and the frame's headers, and
    /// checks that the frame can be cut as the header says: see
    /// [`GsoError`] for every refusal. `frame` is the Ethernet frame after
    /// the virtio-net header.
    pub fn new(frame: &'a [u8], virtio: &virtio_net::Repr) -> Result<Segmenter<'a>, GsoError> {
        let mode = match virtio.gso {
            Gso::None => Mode::Copy { partial: copy_partial(frame, virtio.checksum)? },
            Gso::Ufo { .. } => return Err(GsoError::UnsupportedGso(GsoType::Ufo)),
            Gso::Tcpv4 { size, .. } | Gso::Tcpv6 { size, .. } | Gso::UdpL4 { size } => {
                Mode::Split(plan(frame, virtio, size)?)
            }
        };
        let (count, cursor) = match mode {
            Mode::Copy { .. } => (1, 0),
            Mode::Split(split) => {
                let payload = split.payload_end - split.header_len;
                (payload.div_ceil(split.gso_size).max(1), split.header_len)
            }
        };
        Ok(Segmenter { frame, mode, count, index: 0, cursor, failed: false })
    }

    /// How many segments the frame makes in all: 1 for an ordinary frame, and
    /// for a superframe its payload divided by `gso_size`, rounded up (1 for
    /// an empty payload).
    pub fn segment_count(&self) -> usize {
        self.count
    }

    /// How many segments are still to come (0 after an error).
    pub fn remaining(&self) -> usize {
        if self.failed {
            0
        } else {
            self.count - self.index
        }
    }

    /// The longest segment [`Segmenter::next_into`] writes: an output buffer
    /// this long never gives `OutputTooSmall`.
    pub fn max_segment_len(&self) -> usize {
        match self.mode {
            Mode::Copy { .. } => self.frame.len(),
            Mode::Split(split) => split.header_len + split.gso_size.min(split.payload_end - split.header_len),
        }
    }

    /// Writes the next segment at the start of `out` and returns its length,
    /// or `None` when every segment has been written. Pass `out` already
    /// positioned after the headroom to keep in front of the segment.
    ///
    /// An error (only `OutputTooSmall`, or `CsumOutOfBounds` for a copy) ends
    /// the segmentation: every later call returns `None`.
    pub fn next_into(&mut self, out: &mut [u8]) -> Option<Result<usize, GsoError>> {
        if self.failed || self.index >= self.count {
            return None;
        }
        let result = match self.mode {
            Mode::Copy { partial } => self.copy_into(out, partial),
            Mode::Split(split) => self.split_into(out, &split),
        };
        match result {
            Ok(_) => self.index += 1,
            Err(_) => self.failed = true,
        }
        Some(result)
    }

    /// The single segment of an ordinary frame.
    fn copy_into(&self, out: &mut [u8], partial: Option<(usize, usize)>) -> Result<usize, GsoError> {
        let len = self.frame.len();
        let have = out.len();
        let out = out.get_mut(..len).ok_or(GsoError::OutputTooSmall { need: len, have })?;
        out.copy_from_slice(self.frame);
        if let Some((start, offset)) = partial {
            complete_checksum(out, start, offset)?;
        }
        Ok(len)
    }

    /// The next segment of a superframe.
    fn split_into(&mut self, out: &mut [u8], split: &Split) -> Result<usize, GsoError> {
        let payload = (split.payload_end - self.cursor).min(split.gso_size);
        let len = split.header_len + payload;
        let have = out.len();
        let out = out.get_mut(..len).ok_or(GsoError::OutputTooSmall { need: len, have })?;
        out[..split.header_len].copy_from_slice(&self.frame[..split.header_len]);
        out[split.header_len..].copy_from_slice(&self.frame[self.cursor..self.cursor + payload]);

        let first = self.index == 0;
        let last = self.index + 1 == self.count;
        match split.ip {
            Ip::V4 { ident } => {
                let mut packet = ipv4::Packet::new_unchecked(&mut out[split.l3..]);
                packet.set_total_len(len16(len - split.l3));
                // The index is below 65536: a superframe holds at most 65535
                // payload bytes and each segment at least one.
                packet.set_ident(ident.wrapping_add(self.index as u16));
                packet.fill_checksum();
            }
            Ip::V6 => {
                let mut packet = ipv6::Packet::new_unchecked(&mut out[split.l3..]);
                packet.set_payload_len(len16(len - split.l3 - ipv6::HEADER_LEN));
            }
        }
        match split.transport {
            Transport::Tcp { seq, flags } => {
                let mut packet = tcp::Packet::new_unchecked(&mut out[split.l4..]);
                // The offset is below 65536 (see above), so it fits a u32.
                packet.set_seq_number(seq.wrapping_add((self.cursor - split.header_len) as u32));
                let mut flags = flags;
                if !last {
                    flags.remove(tcp::Flags::FIN | tcp::Flags::PSH);
                }
                if !first {
                    flags.remove(tcp::Flags::CWR);
                }
                packet.set_flags(flags);
                packet.fill_checksum(split.src, split.dst);
            }
            Transport::Udp => {
                let mut packet = udp::Packet::new_unchecked(&mut out[split.l4..]);
                packet.set_len(len16(len - split.l4));
                packet.fill_checksum(split.src, split.dst);
            }
        }
        self.cursor += payload;
        Ok(len)
    }
}

/// A length that [`Segmenter::new`] has shown fits 16 bits: a segment is
/// never longer than the superframe whose IP length field held it.
fn len16(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

/// The partial checksum of an ordinary frame, checked against its length.
fn copy_partial(frame: &[u8], checksum: Checksum) -> Result<Option<(usize, usize)>, GsoError> {
    let Checksum::Partial { start, offset } = checksum else { return Ok(None) };
    let (start, offset) = (usize::from(start), usize::from(offset));
    if start + offset + 2 > frame.len() {
        return Err(GsoError::CsumOutOfBounds { csum_start: start, csum_offset: offset, frame_len: frame.len() });
    }
    Ok(Some((start, offset)))
}

/// Maps a wire error on `layer` to this module's.
fn wire_error(layer: Layer) -> impl Fn(crate::wire::Error) -> GsoError {
    move |error| match error {
        crate::wire::Error::Truncated => GsoError::Truncated(layer),
        crate::wire::Error::Malformed | crate::wire::Error::Unsupported => GsoError::Malformed(layer),
    }
}

/// Reads a superframe's headers and checks them against the virtio-net
/// header.
fn plan(frame: &[u8], virtio: &virtio_net::Repr, gso_size: u16) -> Result<Split, GsoError> {
    if gso_size == 0 {
        return Err(GsoError::ZeroGsoSize);
    }
    if usize::from(virtio.hdr_len) > frame.len() {
        return Err(GsoError::HdrLenTooLong { hdr_len: virtio.hdr_len, frame_len: frame.len() });
    }
    let gso_type = virtio.gso.gso_type();
    let eth = ethernet::Frame::new_checked(frame).map_err(wire_error(Layer::Ethernet))?;
    let l3 = eth.header_len();
    let (ip, protocol, src, dst, l4, payload_end) = match eth.ethertype() {
        EtherType::Ipv4 => {
            let packet = ipv4::Packet::new_checked(&frame[l3..]).map_err(wire_error(Layer::Ipv4))?;
            if packet.is_fragment() {
                return Err(GsoError::Ipv4Fragment);
            }
            let ip = Ip::V4 { ident: packet.ident() };
            let (src, dst) = (IpAddr::V4(packet.src_addr()), IpAddr::V4(packet.dst_addr()));
            (ip, packet.next_header(), src, dst, l3 + packet.header_len(), l3 + usize::from(packet.total_len()))
        }
        EtherType::Ipv6 => {
            let packet = ipv6::Packet::new_checked(&frame[l3..]).map_err(wire_error(Layer::Ipv6))?;
            let next = packet.next_header();
            if next.is_ipv6_extension() {
                return Err(GsoError::Ipv6Extension(next.into()));
            }
            let (src, dst) = (IpAddr::V6(packet.src_addr()), IpAddr::V6(packet.dst_addr()));
            let l4 = l3 + ipv6::HEADER_LEN;
            (Ip::V6, next, src, dst, l4, l4 + usize::from(packet.payload_len()))
        }
        other => return Err(GsoError::UnsupportedEtherType(other.into())),
    };
    let expected = match (gso_type, ip) {
        (GsoType::Tcpv4, Ip::V4 { .. }) | (GsoType::Tcpv6, Ip::V6) => Some(IpProtocol::Tcp),
        (GsoType::UdpL4, _) => Some(IpProtocol::Udp),
        _ => None,
    };
    if expected != Some(protocol) {
        let ip_version = if matches!(ip, Ip::V4 { .. }) { 4 } else { 6 };
        return Err(GsoError::GsoMismatch { gso: gso_type, ip_version, protocol: protocol.into() });
    }

    let segment = &frame[l4..payload_end];
    let (transport, layer, header_len, csum_offset) = if protocol == IpProtocol::Tcp {
        let packet = tcp::Packet::new_checked(segment).map_err(wire_error(Layer::Tcp))?;
        let transport = Transport::Tcp { seq: packet.seq_number(), flags: packet.flags() };
        (transport, Layer::Tcp, l4 + packet.header_len(), TCP_CSUM_OFFSET)
    } else {
        let packet = udp::Packet::new_checked(segment).map_err(wire_error(Layer::Udp))?;
        if usize::from(packet.len()) != segment.len() {
            return Err(GsoError::Malformed(Layer::Udp));
        }
        (Transport::Udp, Layer::Udp, l4 + udp::HEADER_LEN, UDP_CSUM_OFFSET)
    };
    if let Checksum::Partial { start, offset } = virtio.checksum {
        if usize::from(start) != l4 || usize::from(offset) != csum_offset {
            return Err(GsoError::CsumMismatch {
                layer,
                csum_start: start,
                csum_offset: offset,
                expected_start: l4,
                expected_offset: csum_offset,
            });
        }
    }
    Ok(Split { ip, transport, src, dst, l3, l4, header_len, payload_end, gso_size: usize::from(gso_size) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ethernet::{EthernetAddress, VlanTag, VlanTags};
    use crate::wire::virtio_net::Repr as Virtio;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const V4_SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const V4_DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
    const V6_SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const V6_DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0xffff, 2);
    const MSS: u16 = 1448;
    /// The payload of the golden superframes: 3 full segments and 100 bytes.
    const PAYLOAD_LEN: usize = 3 * MSS as usize + 100;
    /// The superframe's IPv4 identification and TCP sequence number, chosen
    /// to wrap within the frame.
    const IDENT: u16 = 0xfffe;
    const SEQ: u32 = 0xffff_f000;

    #[derive(Debug, Clone, Copy)]
    struct Spec {
        v6: bool,
        udp: bool,
        /// VLAN tags: 0, 1 or 2 (QinQ).
        vlan: usize,
        flags: tcp::Flags,
        payload_len: usize,
        gso_size: u16,
    }

    const TSO_V4: Spec = Spec {
        v6: false,
        udp: false,
        vlan: 0,
        flags: tcp::Flags::from_bits_truncate(0x010 | 0x008 | 0x001), // ACK | PSH | FIN
        payload_len: PAYLOAD_LEN,
        gso_size: MSS,
    };

    /// A payload that repeats nowhere a segment boundary could hide in.
    fn payload(len: usize) -> Vec<u8> {
        (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()
    }

    fn addrs(v6: bool) -> (IpAddr, IpAddr) {
        if v6 {
            (V6_SRC.into(), V6_DST.into())
        } else {
            (V4_SRC.into(), V4_DST.into())
        }
    }

    /// A superframe as the kernel hands it to a TAP: headers written with
    /// the wire `Repr`s, the transport checksum field holding the folded,
    /// uncomplemented pseudo-header sum (`CHECKSUM_PARTIAL`), and its
    /// virtio-net header.
    fn superframe(spec: Spec) -> (Vec<u8>, Virtio) {
        let c_tag = VlanTag { tpid: EtherType::Vlan, pcp: 3, dei: false, vid: 100 };
        let vlan_tags = match spec.vlan {
            0 => VlanTags::None,
            1 => VlanTags::Single(c_tag),
            _ => {
                VlanTags::Double { outer: VlanTag { tpid: EtherType::QinQ, pcp: 0, dei: false, vid: 7 }, inner: c_tag }
            }
        };
        let eth = ethernet::Repr {
            src_addr: EthernetAddress([0x02, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([0x02, 0, 0, 0, 0, 2]),
            vlan_tags,
            ethertype: if spec.v6 { EtherType::Ipv6 } else { EtherType::Ipv4 },
        };
        let protocol = if spec.udp { IpProtocol::Udp } else { IpProtocol::Tcp };
        let tcp_repr = tcp::Repr {
            src_port: 40000,
            dst_port: 5201,
            seq_number: SEQ,
            ack_number: 0x0102_0304,
            flags: spec.flags,
            window_len: 502,
            timestamp: Some((0x1111_1111, 0x2222_2222)),
            payload_len: spec.payload_len,
            ..tcp::Repr::default()
        };
        let udp_repr = udp::Repr { src_port: 40000, dst_port: 4433, payload_len: spec.payload_len };
        let l4_len = if spec.udp { udp_repr.buffer_len() } else { tcp_repr.buffer_len() };
        let l3 = eth.header_len();
        let ip_header_len = if spec.v6 { ipv6::HEADER_LEN } else { ipv4::HEADER_LEN };
        let l4 = l3 + ip_header_len;
        let mut frame = vec![0u8; l4 + l4_len];
        eth.emit(&mut ethernet::Frame::new_unchecked(&mut frame[..])).unwrap();
        if spec.v6 {
            let ip = ipv6::Repr {
                src_addr: V6_SRC,
                dst_addr: V6_DST,
                next_header: protocol,
                payload_len: l4_len,
                hop_limit: 64,
                traffic_class: 0,
                flow_label: 0x12345,
            };
            ip.emit(&mut ipv6::Packet::new_unchecked(&mut frame[l3..])).unwrap();
        } else {
            let ip = ipv4::Repr {
                src_addr: V4_SRC,
                dst_addr: V4_DST,
                next_header: protocol,
                payload_len: l4_len,
                hop_limit: 64,
                dscp: 0,
                ecn: 0,
                ident: IDENT,
                dont_frag: true,
                more_frags: false,
                frag_offset: 0,
                options: ipv4::Ipv4Options::EMPTY,
            };
            ip.emit(&mut ipv4::Packet::new_unchecked(&mut frame[l3..])).unwrap();
        }
        let header_len = if spec.udp {
            udp_repr.emit(&mut udp::Packet::new_unchecked(&mut frame[l4..])).unwrap();
            l4 + udp::HEADER_LEN
        } else {
            tcp_repr.emit(&mut tcp::Packet::new_unchecked(&mut frame[l4..])).unwrap();
            l4 + tcp_repr.header_len()
        };
        frame[header_len..].copy_from_slice(&payload(spec.payload_len));
        let (src, dst) = addrs(spec.v6);
        let pseudo = checksum::pseudo_header(src, dst, protocol, l4_len).unwrap();
        let offset = if spec.udp { UDP_CSUM_OFFSET } else { TCP_CSUM_OFFSET };
        frame[l4 + offset..l4 + offset + 2].copy_from_slice(&pseudo.to_be_bytes());
        let gso = match (spec.udp, spec.v6) {
            (true, _) => Gso::UdpL4 { size: spec.gso_size },
            (false, false) => Gso::Tcpv4 { size: spec.gso_size, ecn: spec.flags.contains(tcp::Flags::CWR) },
            (false, true) => Gso::Tcpv6 { size: spec.gso_size, ecn: spec.flags.contains(tcp::Flags::CWR) },
        };
        let virtio = Virtio {
            checksum: Checksum::Partial { start: l4 as u16, offset: offset as u16 },
            gso,
            hdr_len: header_len as u16,
        };
        (frame, virtio)
    }

    /// Runs the segmenter into a buffer with 64 bytes of headroom and returns
    /// the segments, checking that the headroom is left alone.
    fn segments(frame: &[u8], virtio: &Virtio) -> Vec<Vec<u8>> {
        let mut segmenter = Segmenter::new(frame, virtio).unwrap();
        let count = segmenter.segment_count();
        let max = segmenter.max_segment_len();
        let mut buffer = vec![0xeeu8; 64 + max];
        let mut out = Vec::new();
        while let Some(len) = segmenter.next_into(&mut buffer[64..]) {
            let len = len.unwrap();
            assert!(len <= max);
            assert_eq!(buffer[..64], [0xee; 64], "headroom untouched");
            out.push(buffer[64..64 + len].to_vec());
            assert_eq!(segmenter.remaining(), count - out.len());
        }
        assert_eq!(out.len(), count);
        assert_eq!(segmenter.next_into(&mut buffer[64..]), None, "stays finished");
        out
    }

    /// What a segment says, once every header parsed and every checksum
    /// verified.
    #[derive(Debug)]
    struct Seen {
        vlan_tags: usize,
        v6: bool,
        udp: bool,
        ident: Option<u16>,
        flow_label: Option<u32>,
        seq: Option<u32>,
        flags: Option<tcp::Flags>,
        tcp: Option<tcp::Repr>,
        payload: Vec<u8>,
    }

    /// Parses a segment with the wire views and verifies its IPv4 header
    /// checksum and its transport checksum; panics if anything is wrong.
    fn inspect(segment: &[u8]) -> Seen {
        let eth = ethernet::Frame::new_checked(segment).unwrap();
        let l3 = &segment[eth.header_len()..];
        let v6 = eth.ethertype() == EtherType::Ipv6;
        let (src, dst, protocol, l4, ident, flow_label): (IpAddr, IpAddr, _, _, _, _) = if v6 {
            let ip = ipv6::Packet::new_checked(l3).unwrap();
            assert_eq!(usize::from(ip.payload_len()) + ipv6::HEADER_LEN, l3.len(), "IPv6 payload length");
            let repr = ipv6::Repr::parse(&ip).unwrap();
            let l4 = &l3[ipv6::HEADER_LEN..];
            (repr.src_addr.into(), repr.dst_addr.into(), repr.next_header, l4, None, Some(ip.flow_label()))
        } else {
            assert_eq!(eth.ethertype(), EtherType::Ipv4);
            let ip = ipv4::Packet::new_checked(l3).unwrap();
            assert_eq!(usize::from(ip.total_len()), l3.len(), "IPv4 total length");
            assert!(ip.verify_checksum(), "IPv4 header checksum");
            assert!(!ip.is_fragment());
            let repr = ipv4::Repr::parse(&ip).unwrap();
            let l4 = &l3[ip.header_len()..usize::from(ip.total_len())];
            (repr.src_addr.into(), repr.dst_addr.into(), repr.next_header, l4, Some(ip.ident()), None)
        };
        let common = |udp| Seen {
            vlan_tags: eth.vlan_tags().len(),
            v6,
            udp,
            ident,
            flow_label,
            seq: None,
            flags: None,
            tcp: None,
            payload: Vec::new(),
        };
        if protocol == IpProtocol::Udp {
            let packet = udp::Packet::new_checked(l4).unwrap();
            assert_eq!(usize::from(packet.len()), l4.len(), "UDP length");
            assert_ne!(packet.checksum(), 0, "USO segments always carry a checksum");
            assert!(packet.verify_checksum(src, dst), "UDP checksum");
            Seen { payload: packet.payload().to_vec(), ..common(true) }
        } else {
            assert_eq!(protocol, IpProtocol::Tcp);
            let packet = tcp::Packet::new_checked(l4).unwrap();
            assert!(packet.verify_checksum(src, dst), "TCP checksum");
            Seen {
                seq: Some(packet.seq_number()),
                flags: Some(packet.flags()),
                tcp: Some(tcp::Repr::parse(&packet).unwrap()),
                payload: packet.payload().to_vec(),
                ..common(false)
            }
        }
    }

    /// Checks the segments of a superframe whose payload is `payload`:
    /// every segment full but the last, IPv4 identifications counting up
    /// from `ident`, sequence numbers from `seq`, FIN and PSH only on the
    /// last, CWR only on the first, and the payloads joined give `payload`.
    fn check_run(seen: &[Seen], payload: &[u8], gso_size: usize, ident: u16, seq: u32, flags: tcp::Flags) {
        let mut joined = Vec::new();
        for (i, s) in seen.iter().enumerate() {
            let last = i + 1 == seen.len();
            if !last {
                assert_eq!(s.payload.len(), gso_size, "segment {i} is full");
            }
            if let Some(got) = s.ident {
                assert_eq!(got, ident.wrapping_add(i as u16), "IPv4 ident of segment {i}");
            }
            if let Some(got) = s.seq {
                assert_eq!(got, seq.wrapping_add(joined.len() as u32), "sequence number of segment {i}");
            }
            if let Some(got) = s.flags {
                let mut want = flags;
                if !last {
                    want.remove(tcp::Flags::FIN | tcp::Flags::PSH);
                }
                if i != 0 {
                    want.remove(tcp::Flags::CWR);
                }
                assert_eq!(got, want, "flags of segment {i}");
            }
            joined.extend_from_slice(&s.payload);
        }
        assert_eq!(joined, payload, "payload reassembles");
    }

    /// Segments a superframe built from `spec` and checks everything the
    /// module promises; returns what was seen.
    fn check(spec: Spec) -> Vec<Seen> {
        let (frame, virtio) = superframe(spec);
        let segments = segments(&frame, &virtio);
        let expected_count = spec.payload_len.div_ceil(usize::from(spec.gso_size)).max(1);
        assert_eq!(segments.len(), expected_count);
        let seen: Vec<Seen> = segments.iter().map(|s| inspect(s)).collect();
        for s in &seen {
            assert_eq!((s.vlan_tags, s.v6, s.udp), (spec.vlan, spec.v6, spec.udp));
            if spec.v6 {
                assert_eq!(s.flow_label, Some(0x12345));
            }
            if let Some(tcp) = s.tcp {
                assert_eq!(tcp.timestamp, Some((0x1111_1111, 0x2222_2222)), "options copied");
                assert_eq!(tcp.ack_number, 0x0102_0304);
            }
        }
        check_run(&seen, &payload(spec.payload_len), usize::from(spec.gso_size), IDENT, SEQ, spec.flags);
        seen
    }

    #[test]
    fn golden_tso_v4() {
        let (frame, virtio) = superframe(TSO_V4);
        // What the kernel writes for this frame (see wire::virtio_net).
        let mut header = [0u8; virtio_net::HEADER_LEN];
        virtio.emit(&mut virtio_net::Header::new_unchecked(&mut header[..])).unwrap();
        assert_eq!(header, [0x01, 0x01, 0x42, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00]);
        assert_eq!(frame.len(), 66 + PAYLOAD_LEN);

        let seen = check(TSO_V4);
        assert_eq!(seen.len(), 4);
        let lens: Vec<usize> = seen.iter().map(|s| s.payload.len()).collect();
        assert_eq!(lens, [1448, 1448, 1448, 100]);
        let ack = tcp::Flags::ACK;
        let flags: Vec<tcp::Flags> = seen.iter().map(|s| s.flags.unwrap()).collect();
        assert_eq!(flags, [ack, ack, ack, ack | tcp::Flags::PSH | tcp::Flags::FIN]);
        let seqs: Vec<u32> = seen.iter().map(|s| s.seq.unwrap()).collect();
        assert_eq!(seqs, [0xffff_f000, 0xffff_f5a8, 0xffff_fb50, 0x0000_00f8], "wrapping");
        let idents: Vec<u16> = seen.iter().map(|s| s.ident.unwrap()).collect();
        assert_eq!(idents, [0xfffe, 0xffff, 0x0000, 0x0001], "wrapping");

        // The first segment's header bytes, pinned: total length 1500,
        // ident fffe, DF, header checksum recomputed.
        let mut segmenter = Segmenter::new(&frame, &virtio).unwrap();
        let mut out = [0u8; 1514];
        assert_eq!(segmenter.next_into(&mut out), Some(Ok(1514)));
        assert_eq!(
            out[14..34],
            [
                0x45, 0x00, 0x05, 0xdc, // version 4, IHL 5, total length 1500
                0xff, 0xfe, 0x40, 0x00, // ident fffe, DF
                0x40, 0x06, 0x48, 0xe1, // TTL 64, TCP, header checksum (by hand: !0xb71e)
                192, 0, 2, 1, 198, 51, 100, 7,
            ]
        );
    }

    #[test]
    fn tso_v4_with_cwr() {
        let seen = check(Spec { flags: tcp::Flags::ACK | tcp::Flags::CWR | tcp::Flags::ECE, ..TSO_V4 });
        assert!(seen[0].flags.unwrap().contains(tcp::Flags::CWR));
        assert!(seen[1..].iter().all(|s| !s.flags.unwrap().contains(tcp::Flags::CWR)));
        assert!(seen.iter().all(|s| s.flags.unwrap().contains(tcp::Flags::ECE)));
    }

    #[test]
    fn golden_tso_v6() {
        let spec = Spec { v6: true, ..TSO_V4 };
        let (_, virtio) = superframe(spec);
        assert_eq!(virtio.checksum, Checksum::Partial { start: 54, offset: 16 });
        assert_eq!(virtio.hdr_len, 86);
        let seen = check(spec);
        assert_eq!(seen.len(), 4);
        assert!(seen.iter().all(|s| s.ident.is_none()));
    }

    #[test]
    fn golden_uso_v4_and_v6() {
        for v6 in [false, true] {
            let spec =
                Spec { v6, udp: true, flags: tcp::Flags::default(), gso_size: 1200, payload_len: 5000, ..TSO_V4 };
            let seen = check(spec);
            let lens: Vec<usize> = seen.iter().map(|s| s.payload.len()).collect();
            assert_eq!(lens, [1200, 1200, 1200, 1200, 200], "v6 {v6}");
        }
    }

    #[test]
    fn golden_vlan_tso() {
        let spec = Spec { vlan: 1, ..TSO_V4 };
        let (frame, virtio) = superframe(spec);
        assert_eq!(virtio.checksum, Checksum::Partial { start: 38, offset: 16 });
        let seen = check(spec);
        assert_eq!(seen.len(), 4);
        let segments = segments(&frame, &virtio);
        for segment in &segments {
            assert_eq!(segment[12..18], [0x81, 0x00, 0x60, 0x64, 0x08, 0x00], "802.1Q tag PCP 3 VID 100 kept");
        }
        // QinQ too, and over IPv6 with USO.
        let spec = Spec { vlan: 2, ..TSO_V4 };
        assert_eq!(superframe(spec).1.checksum, Checksum::Partial { start: 42, offset: 16 });
        check(spec);
        check(Spec { vlan: 2, v6: true, udp: true, flags: tcp::Flags::default(), ..TSO_V4 });
    }

    #[test]
    fn small_and_empty_superframes() {
        // Payload smaller than one segment: one segment, all flags kept.
        let seen = check(Spec { payload_len: 10, ..TSO_V4 });
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].flags, Some(TSO_V4.flags));
        // Exactly two segments.
        assert_eq!(check(Spec { payload_len: 2 * 1448, ..TSO_V4 }).len(), 2);
        // Headers only: one segment with an empty payload.
        let seen = check(Spec { payload_len: 0, ..TSO_V4 });
        assert_eq!(seen.len(), 1);
        assert!(seen[0].payload.is_empty());
        let seen = check(Spec { payload_len: 0, udp: true, ..TSO_V4 });
        assert_eq!(seen.len(), 1);
        // gso_size 1: a segment per byte.
        assert_eq!(check(Spec { payload_len: 300, gso_size: 1, ..TSO_V4 }).len(), 300);
    }

    #[test]
    fn link_padding_is_not_payload() {
        let (mut frame, virtio) = superframe(Spec { payload_len: 20, ..TSO_V4 });
        let original = frame.clone();
        frame.extend_from_slice(&[0xaa; 30]);
        assert_eq!(segments(&frame, &virtio), segments(&original, &virtio));
    }

    #[test]
    fn superframe_without_needs_csum_is_segmented() {
        let (frame, virtio) = superframe(TSO_V4);
        let virtio = Virtio { checksum: Checksum::None, ..virtio };
        let segments = segments(&frame, &virtio);
        assert_eq!(segments.len(), 4);
        for segment in &segments {
            inspect(segment);
        }
    }

    #[test]
    fn complete_checksum_tcp_and_udp() {
        for (udp, v6) in [(false, false), (true, false), (false, true), (true, true)] {
            let spec = Spec { udp, v6, payload_len: 333, ..TSO_V4 };
            let (mut frame, virtio) = superframe(spec);
            let virtio = Virtio { gso: Gso::None, hdr_len: 0, ..virtio };
            let Checksum::Partial { start, offset } = virtio.checksum else { unreachable!() };
            let (src, dst) = addrs(v6);
            let l4 = usize::from(start);

            // The copy made by the segmenter ...
            let copies = segments(&frame, &virtio);
            assert_eq!(copies.len(), 1);
            // ... and the frame completed in place are the same.
            complete_in_place(&mut frame, &virtio).unwrap();
            assert_eq!(copies[0], frame);
            let mut again = superframe(spec).0;
            complete_checksum(&mut again, l4, usize::from(offset)).unwrap();
            assert_eq!(again, frame);
            if udp {
                assert!(udp::Packet::new_checked(&frame[l4..]).unwrap().verify_checksum(src, dst), "UDP v6 {v6}");
            } else {
                assert!(tcp::Packet::new_checked(&frame[l4..]).unwrap().verify_checksum(src, dst), "TCP v6 {v6}");
            }
        }
    }

    #[test]
    fn complete_checksum_writes_0xffff_for_zero() {
        // A "transport header" whose sum is 0xffff once the field is in:
        // the complement 0 is written as 0xffff.
        let mut frame = [0u8, 0, 0xff, 0xff, 0, 0];
        complete_checksum(&mut frame, 2, 2).unwrap();
        assert_eq!(frame, [0, 0, 0xff, 0xff, 0xff, 0xff]);
        let mut frame = [0x12u8, 0x34, 0x00, 0x00];
        complete_checksum(&mut frame, 0, 2).unwrap();
        assert_eq!(frame, [0x12, 0x34, 0xed, 0xcb]);
    }

    #[test]
    fn passthrough() {
        // DATA_VALID or nothing: one copy, byte for byte, and nothing to do
        // in place. An ARP frame is never parsed.
        let arp = [0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1];
        for checksum in [Checksum::None, Checksum::Valid] {
            let virtio = Virtio { checksum, ..Virtio::default() };
            assert_eq!(segments(&arp, &virtio), [arp.to_vec()]);
            let mut frame = arp;
            complete_in_place(&mut frame, &virtio).unwrap();
            assert_eq!(frame, arp);
        }
        assert_eq!(segments(&[], &Virtio::default()), [Vec::<u8>::new()]);
    }

    #[test]
    fn errors() {
        let (frame, virtio) = superframe(TSO_V4);
        let new = |frame: &[u8], virtio: Virtio| Segmenter::new(frame, &virtio).map(|_| ());

        let gso = |size| Gso::Tcpv4 { size, ecn: false };
        assert_eq!(new(&frame, Virtio { gso: gso(0), ..virtio }), Err(GsoError::ZeroGsoSize));
        assert_eq!(
            new(&frame, Virtio { gso: Gso::Ufo { size: 1448 }, ..virtio }),
            Err(GsoError::UnsupportedGso(GsoType::Ufo))
        );
        assert_eq!(
            new(&frame[..60], virtio),
            Err(GsoError::HdrLenTooLong { hdr_len: 66, frame_len: 60 }),
            "hdr_len past the end"
        );
        let hintless = Virtio { hdr_len: 0, ..virtio };
        assert_eq!(new(&frame[..13], hintless), Err(GsoError::Truncated(Layer::Ethernet)));
        assert_eq!(new(&frame[..30], hintless), Err(GsoError::Truncated(Layer::Ipv4)));
        assert_eq!(new(&frame[..200], hintless), Err(GsoError::Truncated(Layer::Ipv4)), "total length past the end");

        // The hint may be shorter or longer than the headers.
        assert_eq!(new(&frame, Virtio { hdr_len: 1000, ..virtio }), Ok(()));
        assert_eq!(new(&frame, hintless), Ok(()));

        let edit = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut frame = frame.clone();
            f(&mut frame);
            frame
        };
        let bad_version = edit(&|f| f[14] = 0x65);
        assert_eq!(new(&bad_version, virtio), Err(GsoError::Malformed(Layer::Ipv4)));
        let fragment = edit(&|f| f[20] |= 0x20);
        assert_eq!(new(&fragment, virtio), Err(GsoError::Ipv4Fragment));
        let arp = edit(&|f| f[12..14].copy_from_slice(&[0x08, 0x06]));
        assert_eq!(new(&arp, virtio), Err(GsoError::UnsupportedEtherType(0x0806)));
        let udp_in_tso = edit(&|f| f[23] = 17);
        assert_eq!(
            new(&udp_in_tso, virtio),
            Err(GsoError::GsoMismatch { gso: GsoType::Tcpv4, ip_version: 4, protocol: 17 })
        );
        assert_eq!(
            new(&frame, Virtio { gso: Gso::Tcpv6 { size: 1448, ecn: false }, ..virtio }),
            Err(GsoError::GsoMismatch { gso: GsoType::Tcpv6, ip_version: 4, protocol: 6 })
        );
        assert_eq!(
            new(&frame, Virtio { gso: Gso::UdpL4 { size: 1448 }, ..virtio }),
            Err(GsoError::GsoMismatch { gso: GsoType::UdpL4, ip_version: 4, protocol: 6 })
        );
        let small_offset = edit(&|f| f[34 + 12] = 0x40);
        assert_eq!(new(&small_offset, virtio), Err(GsoError::Malformed(Layer::Tcp)));
        // Data offset 15 (60 bytes) over a 40-byte TCP segment.
        let (short, short_virtio) = superframe(Spec { payload_len: 8, ..TSO_V4 });
        let mut short = short;
        short[34 + 12] = 0xf0;
        assert_eq!(new(&short, Virtio { hdr_len: 0, ..short_virtio }), Err(GsoError::Truncated(Layer::Tcp)));

        assert_eq!(
            new(&frame, Virtio { checksum: Checksum::Partial { start: 34, offset: 6 }, ..virtio }),
            Err(GsoError::CsumMismatch {
                layer: Layer::Tcp,
                csum_start: 34,
                csum_offset: 6,
                expected_start: 34,
                expected_offset: 16
            })
        );
        assert_eq!(
            new(&frame, Virtio { checksum: Checksum::Partial { start: 14, offset: 16 }, ..virtio }),
            Err(GsoError::CsumMismatch {
                layer: Layer::Tcp,
                csum_start: 14,
                csum_offset: 16,
                expected_start: 34,
                expected_offset: 16
            })
        );

        // USO: the UDP length must match the IP length.
        let uso = Spec { udp: true, flags: tcp::Flags::default(), ..TSO_V4 };
        let (uso_frame, uso_virtio) = superframe(uso);
        let mut short_udp = uso_frame.clone();
        short_udp[34 + 5] -= 1;
        assert_eq!(new(&short_udp, uso_virtio), Err(GsoError::Malformed(Layer::Udp)));
        let mut long_udp = uso_frame.clone();
        long_udp[34 + 5] += 1;
        assert_eq!(new(&long_udp, uso_virtio), Err(GsoError::Truncated(Layer::Udp)));
        assert_eq!(
            new(&uso_frame, Virtio { checksum: Checksum::Partial { start: 34, offset: 16 }, ..uso_virtio }),
            Err(GsoError::CsumMismatch {
                layer: Layer::Udp,
                csum_start: 34,
                csum_offset: 16,
                expected_start: 34,
                expected_offset: 6
            })
        );

        // IPv6: an extension header before TCP; a bad version; truncated.
        let v6 = Spec { v6: true, ..TSO_V4 };
        let (v6_frame, v6_virtio) = superframe(v6);
        let mut ext = v6_frame.clone();
        ext[14 + 6] = 0; // next header: hop-by-hop
        assert_eq!(new(&ext, v6_virtio), Err(GsoError::Ipv6Extension(0)));
        let mut bad = v6_frame.clone();
        bad[14] = 0x45;
        assert_eq!(new(&bad, v6_virtio), Err(GsoError::Malformed(Layer::Ipv6)));
        assert_eq!(new(&v6_frame[..50], Virtio { hdr_len: 0, ..v6_virtio }), Err(GsoError::Truncated(Layer::Ipv6)));

        // A partial checksum outside an ordinary frame.
        let plain = Virtio { gso: Gso::None, checksum: Checksum::Partial { start: 34, offset: 16 }, hdr_len: 0 };
        assert_eq!(
            new(&frame[..51], plain),
            Err(GsoError::CsumOutOfBounds { csum_start: 34, csum_offset: 16, frame_len: 51 })
        );
        assert_eq!(new(&frame[..52], plain), Ok(()));
        let mut short = frame[..51].to_vec();
        assert_eq!(
            complete_in_place(&mut short, &plain),
            Err(GsoError::CsumOutOfBounds { csum_start: 34, csum_offset: 16, frame_len: 51 })
        );
        assert_eq!(
            complete_checksum(&mut short, usize::MAX, 2),
            Err(GsoError::CsumOutOfBounds { csum_start: usize::MAX, csum_offset: 2, frame_len: 51 })
        );
        assert_eq!(
            complete_checksum(&mut short, 0, usize::MAX - 1),
            Err(GsoError::CsumOutOfBounds { csum_start: 0, csum_offset: usize::MAX - 1, frame_len: 51 })
        );
        let mut copy = frame.clone();
        assert_eq!(complete_in_place(&mut copy, &virtio), Err(GsoError::NeedsSegmentation));
        assert_eq!(copy, frame, "nothing written");

        // An output buffer too small ends the segmentation.
        let mut segmenter = Segmenter::new(&frame, &virtio).unwrap();
        let mut out = [0u8; 1513];
        assert_eq!(segmenter.next_into(&mut out), Some(Err(GsoError::OutputTooSmall { need: 1514, have: 1513 })));
        assert_eq!(segmenter.remaining(), 0);
        assert_eq!(segmenter.next_into(&mut [0u8; 2000]), None);
        let mut copy = Segmenter::new(&frame, &Virtio::default()).unwrap();
        assert_eq!(copy.next_into(&mut out), Some(Err(GsoError::OutputTooSmall { need: frame.len(), have: 1513 })));
    }

    #[test]
    fn error_messages_say_what_failed() {
        let error = GsoError::CsumMismatch {
            layer: Layer::Udp,
            csum_start: 34,
            csum_offset: 16,
            expected_start: 34,
            expected_offset: 6,
        };
        assert_eq!(
            error.to_string(),
            "virtio-net csum_start 34 + csum_offset 16 does not point at the UDP checksum (expected 34 + 6)"
        );
        assert_eq!(GsoError::Truncated(Layer::Ipv6).to_string(), "superframe truncated in its IPv6 header");
        assert_eq!(
            GsoError::UnsupportedEtherType(0x0806).to_string(),
            "cannot segment EtherType 0x0806: only IPv4 and IPv6"
        );
    }

    /// A superframe as Linux 6.18 wrote it to a TAP opened with
    /// `IFF_VNET_HDR` and `TUNSETOFFLOAD` CSUM|TSO4|TSO6|TSO_ECN|USO4|USO6
    /// (captured in a throwaway network namespace, the peer 192.0.2.2 /
    /// 2001:db8::2 answered by hand), and what the kernel's own software GSO
    /// made of that same superframe when it was written back into a TAP and
    /// forwarded out of one without offloads.
    struct Capture {
        virtio: [u8; virtio_net::HEADER_LEN],
        /// The superframe's first `hdr_len` bytes. The payload after them is
        /// what the sender wrote: byte i is (7i + i/256) mod 256.
        headers: &'static [u8],
        payload_len: usize,
        /// Per segment, as the kernel made it: IPv4 identification (0 over
        /// IPv6), the IP length field (IPv4 total length, IPv6 payload
        /// length), the TCP sequence number or the UDP length, the TCP flags
        /// byte (0 for UDP), the transport checksum.
        kernel: &'static [(u16, u16, u32, u8, u16)],
    }

    fn sender_payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + (i >> 8)) as u8).collect()
    }

    const KERNEL_TSO4: Capture = Capture {
        // NEEDS_CSUM, TCPV4, hdr_len 54, gso_size 1460, csum 34 + 16.
        virtio: [0x01, 0x01, 0x36, 0x00, 0xb4, 0x05, 0x22, 0x00, 0x10, 0x00],
        headers: &[
            0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, // Ethernet
            0x45, 0x00, 0x1c, 0xac, 0x9a, 0xb3, 0x40, 0x00, 0x40, 0x06, 0xff,
            0x94, // IPv4: 7340 bytes, ident 9ab3, DF
            0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02, // 192.0.2.1 -> 192.0.2.2
            0xde, 0xae, 0x14, 0x51, 0xda, 0x82, 0x2c, 0xe5, 0x00, 0x00, 0x03, 0xe9, // TCP 57006 -> 5201
            0x50, 0x18, 0xfa, 0xf0, // PSH|ACK
            0xa0, 0xa2, // partial: the pseudo-header sum for 7320 bytes, not complemented
            0x00, 0x00,
        ],
        payload_len: 7300,
        kernel: &[
            (0x9ab3, 1500, 0xda82_2ce5, 0x10, 0x7831),
            (0x9ab4, 1500, 0xda82_3299, 0x10, 0x424c),
            (0x9ab5, 1500, 0xda82_384d, 0x10, 0x0c68),
            (0x9ab6, 1500, 0xda82_3e01, 0x10, 0xbe6c),
            (0x9ab7, 1500, 0xda82_43b5, 0x18, 0x7b71),
        ],
    };

    const KERNEL_TSO6: Capture = Capture {
        // NEEDS_CSUM, TCPV6, hdr_len 74, gso_size 1440, csum 54 + 16.
        virtio: [0x01, 0x04, 0x4a, 0x00, 0xa0, 0x05, 0x36, 0x00, 0x10, 0x00],
        headers: &[
            0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, // Ethernet
            0x60, 0x07, 0x6e, 0xc6, 0x1c, 0x34, 0x06, 0x40, // IPv6: flow 76ec6, 7220 bytes, TCP
            0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x01, // 2001:db8::1
            0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x02, // 2001:db8::2
            0x9c, 0xce, 0x14, 0x51, 0xbd, 0x41, 0x4c, 0xa1, 0x00, 0x00, 0x03, 0xe9, 0x50, 0x18, 0xfd, 0x20, 0x77, 0xaf,
            0x00, 0x00,
        ],
        payload_len: 7200,
        kernel: &[
            (0, 1460, 0xbd41_4ca1, 0x10, 0x4cbe),
            (0, 1460, 0xbd41_5241, 0x10, 0x845a),
            (0, 1460, 0xbd41_57e1, 0x10, 0xaeea),
            (0, 1460, 0xbd41_5d81, 0x10, 0xca6c),
            (0, 1460, 0xbd41_6321, 0x18, 0x0201),
        ],
    };

    const KERNEL_USO4: Capture = Capture {
        // NEEDS_CSUM, UDP_L4, hdr_len 42, gso_size 1200, csum 34 + 6.
        virtio: [0x01, 0x05, 0x2a, 0x00, 0xb0, 0x04, 0x22, 0x00, 0x06, 0x00],
        headers: &[
            0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, // Ethernet
            0x45, 0x00, 0x13, 0xa4, 0xb3, 0x1c, 0x00, 0x00, 0x40, 0x11, 0x30, 0x29, // IPv4: 5028 bytes, no DF
            0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02, 0x02, // 192.0.2.1 -> 192.0.2.2
            0xdd, 0xe0, 0x11, 0x51, 0x13, 0x90, 0x97, 0xa5, // UDP 56800 -> 4433, 5008 bytes, partial
        ],
        payload_len: 5000,
        kernel: &[
            (0xb31c, 1228, 1208, 0, 0x9ffe),
            (0xb31d, 1228, 1208, 0, 0x2f8d),
            (0xb31e, 1228, 1208, 0, 0xc01b),
            (0xb31f, 1228, 1208, 0, 0x2e8c),
            (0xb320, 228, 208, 0, 0x592a),
        ],
    };

    const KERNEL_USO6: Capture = Capture {
        // NEEDS_CSUM, UDP_L4, hdr_len 62, gso_size 1200, csum 54 + 6.
        virtio: [0x01, 0x05, 0x3e, 0x00, 0xb0, 0x04, 0x36, 0x00, 0x06, 0x00],
        headers: &[
            0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xdd, // Ethernet
            0x60, 0x0b, 0xae, 0x7c, 0x13, 0x90, 0x11, 0x40, // IPv6: 5008 bytes, UDP
            0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x01, // 2001:db8::1
            0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x02, // 2001:db8::2
            0xd0, 0x74, 0x11, 0x51, 0x13, 0x90, 0x6f, 0x16, // UDP 53364 -> 4433, 5008 bytes, partial
        ],
        payload_len: 5000,
        kernel: &[
            (0, 1208, 1208, 0, 0xd5f9),
            (0, 1208, 1208, 0, 0x6588),
            (0, 1208, 1208, 0, 0xf616),
            (0, 1208, 1208, 0, 0x6487),
            (0, 208, 208, 0, 0x8f25),
        ],
    };

    /// Our segments of superframes from a real kernel are the kernel's own:
    /// same identifications, lengths, sequence numbers, flags and checksums.
    #[test]
    fn same_segments_as_the_linux_kernel() {
        for capture in [KERNEL_TSO4, KERNEL_TSO6, KERNEL_USO4, KERNEL_USO6] {
            let virtio = Virtio::parse(&virtio_net::Header::new_checked(&capture.virtio[..]).unwrap()).unwrap();
            assert_eq!(usize::from(virtio.hdr_len), capture.headers.len());
            let mut frame = capture.headers.to_vec();
            let payload = sender_payload(capture.payload_len);
            frame.extend_from_slice(&payload);

            let segments = segments(&frame, &virtio);
            assert_eq!(segments.len(), capture.kernel.len());
            let seen: Vec<Seen> = segments.iter().map(|s| inspect(s)).collect();
            for (i, (segment, want)) in seen.iter().zip(capture.kernel).enumerate() {
                let raw = &segments[i];
                let l3 = &raw[ethernet::HEADER_LEN..];
                let l4 = &l3[if segment.v6 { ipv6::HEADER_LEN } else { ipv4::HEADER_LEN }..];
                let ip_len = if segment.v6 { [l3[4], l3[5]] } else { [l3[2], l3[3]] };
                let (third, flags, csum) = if segment.udp {
                    (u32::from(u16::from_be_bytes([l4[4], l4[5]])), 0, [l4[6], l4[7]])
                } else {
                    (segment.seq.unwrap(), l4[13], [l4[16], l4[17]])
                };
                let got =
                    (segment.ident.unwrap_or(0), u16::from_be_bytes(ip_len), third, flags, u16::from_be_bytes(csum));
                assert_eq!(got, *want, "segment {i} of {:?}", virtio.gso);
            }
            // The superframe's own identification, sequence number and flags.
            let Checksum::Partial { start, .. } = virtio.checksum else { panic!("the kernel's are partial") };
            let l4 = &capture.headers[usize::from(start)..];
            let (seq, flags) = if seen[0].udp {
                (0, tcp::Flags::default())
            } else {
                let tcp = tcp::Packet::new_checked(l4).unwrap();
                (tcp.seq_number(), tcp.flags())
            };
            let ident = seen[0].ident.unwrap_or(0);
            check_run(&seen, &payload, usize::from(virtio.gso.size()), ident, seq, flags);
        }
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn spec() -> impl Strategy<Value = Spec> {
            (any::<bool>(), any::<bool>(), 0usize..=2, 0u16..0x200, 0usize..6000, 1u16..3000).prop_map(
                |(v6, udp, vlan, flags, payload_len, gso_size)| Spec {
                    v6,
                    udp,
                    vlan,
                    // SYN and RST in a superframe make no sense but change nothing here.
                    flags: tcp::Flags::from_bits_truncate(flags),
                    payload_len,
                    gso_size,
                },
            )
        }

        /// A `gso_type` byte that [`Virtio::parse`] takes: a known type, or
        /// TCP with the ECN bit.
        fn gso_type() -> impl Strategy<Value = u8> {
            let known = [GsoType::None, GsoType::Tcpv4, GsoType::Tcpv6, GsoType::Ufo, GsoType::UdpL4].map(u8::from);
            let ecn = [GsoType::Tcpv4, GsoType::Tcpv6].map(|kind| u8::from(kind) | virtio_net::GSO_ECN);
            proptest::sample::select([&known[..], &ecn[..]].concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

            #[test]
            fn segments_reassemble_and_verify(spec in spec()) {
                check(spec);
            }

            #[test]
            fn arbitrary_headers_never_panic(
                frame in proptest::collection::vec(any::<u8>(), 0..200),
                mut header in any::<[u8; 10]>(),
                gso_type in gso_type(),
                out_len in 0usize..300,
            ) {
                virtio_net::Header::new_unchecked(&mut header[..]).set_gso_type_field(gso_type);
                // With a known type, only a superframe with gso_size 0 is refused.
                let virtio = Virtio::parse(&virtio_net::Header::new_checked(&header[..]).unwrap());
                prop_assume!(virtio.is_ok());
                let virtio = virtio.unwrap();
                let mut copy = frame.clone();
                let _ = complete_in_place(&mut copy, &virtio);
                if let Ok(mut segmenter) = Segmenter::new(&frame, &virtio) {
                    let mut out = vec![0u8; out_len];
                    while let Some(result) = segmenter.next_into(&mut out) {
                        if let Ok(len) = result {
                            prop_assert!(len <= out_len);
                        }
                    }
                }
            }
        }
    }
}
