//! The virtio-net header (virtio 1.x §5.1.6, `struct virtio_net_hdr`) that a
//! TAP device opened with `IFF_VNET_HDR` puts in front of every frame, in
//! both directions: the view, its `Repr`, and the GSO type numbers.
//!
//! Two lengths exist. The legacy header is [`HEADER_LEN`] (10) bytes:
//! `flags`, `gso_type`, `hdr_len`, `gso_size`, `csum_start`, `csum_offset`.
//! `struct virtio_net_hdr_v1` is [`HEADER_LEN_V1`] (12) bytes and adds
//! `num_buffers` (merged receive buffers, a virtqueue notion). The header does
//! not say which one it is: the TAP's owner chose with `TUNSETVNETHDRSZ`
//! (default 10) and must slice accordingly. The tun driver neither reads nor
//! interprets `num_buffers` (recent kernels write it as zero, older ones leave
//! the bytes untouched), so [`Repr`] does not carry it.
//!
//! Byte order: the 16-bit fields are little-endian in virtio 1.0. A TAP uses
//! the host's byte order unless `TUNSETVNETLE`/`TUNSETVNETBE` says otherwise;
//! this module reads and writes little-endian, which is right on x86-64 and
//! little-endian aarch64 with the TAP's defaults. On a big-endian host, set
//! `TUNSETVNETLE` on the TAP.
//!
//! What the kernel writes (`virtio_net_hdr_from_skb`): for a GSO frame,
//! `hdr_len` is `skb_headlen()`, "a hint as to how much should be linear",
//! which may be more or less than the real header length; `csum_start` counts
//! from the first byte of the frame (a VLAN tag the tun driver inserts
//! included) and `csum_offset` from `csum_start`. Every field of a header that
//! does not need them is zero.
//!
//! What this module does not do: segment superframes or complete checksums
//! (see [`crate::gso`]), or read the hash-report and UDP-tunnel extensions of
//! newer virtio headers (their GSO type bits read as [`GsoType::Unknown`]);
//! a UDP-tunnel header is only written ([`TunnelRepr`]).

use super::{Error, Result};

mod field {
    use core::ops::Range;

    pub(super) const FLAGS: usize = 0;
    pub(super) const GSO_TYPE: usize = 1;
    pub(super) const HDR_LEN: Range<usize> = 2..4;
    pub(super) const GSO_SIZE: Range<usize> = 4..6;
    pub(super) const CSUM_START: Range<usize> = 6..8;
    pub(super) const CSUM_OFFSET: Range<usize> = 8..10;
    /// Only in `virtio_net_hdr_v1`.
    pub(super) const NUM_BUFFERS: Range<usize> = 10..12;
    /// Only in `virtio_net_hdr_v1_hash_tunnel`, after the hash report.
    pub(super) const OUTER_TH: Range<usize> = 20..22;
    pub(super) const INNER_NH: Range<usize> = 22..24;
}

/// The length of the legacy `struct virtio_net_hdr`: the tun driver's default.
pub const HEADER_LEN: usize = field::CSUM_OFFSET.end;

/// The length of `struct virtio_net_hdr_v1`, which adds `num_buffers`
/// (`TUNSETVNETHDRSZ` 12).
pub const HEADER_LEN_V1: usize = field::NUM_BUFFERS.end;

/// The length of `struct virtio_net_hdr_v1_hash_tunnel` (Linux 6.17): the v1
/// header, the hash report (`hash_value`, `hash_report`, padding: 8 bytes,
/// unused here), then `outer_th_offset` and `inner_nh_offset`. A TAP takes it
/// with `TUNSETVNETHDRSZ` 24 and the UDP-tunnel offloads (see
/// [`TunnelRepr`]).
pub const HEADER_LEN_TUNNEL: usize = field::INNER_NH.end;

/// `VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV4`: with a TCP or UDP GSO type, the
/// superframe is encapsulated in UDP over IPv4 (VXLAN, GENEVE, ...).
pub const GSO_UDP_TUNNEL_IPV4: u8 = 0x20;
/// `VIRTIO_NET_HDR_GSO_UDP_TUNNEL_IPV6`: the same over IPv6.
pub const GSO_UDP_TUNNEL_IPV6: u8 = 0x40;
/// `VIRTIO_NET_HDR_F_UDP_TUNNEL_CSUM`: the outer UDP checksum is to be
/// computed for every segment (its field holds the pseudo-header sum).
pub const FLAG_UDP_TUNNEL_CSUM: u8 = 0x08;

/// A UDP-tunnel GSO superframe as a TAP with `TUN_F_UDP_TUNNEL_GSO` takes it
/// (`virtio_net_hdr_tnl_to_skb`): an Ethernet frame with outer IP, UDP and
/// tunnel headers, then the inner frame with its partial transport checksum;
/// the kernel (or the NIC) cuts it into `gso_size` segments, copying every
/// header and fixing lengths, identifications and checksums in both layers.
/// Offsets count from the start of the outer Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelRepr {
    /// The inner GSO type: [`GsoType::Tcpv4`], [`GsoType::Tcpv6`] or
    /// [`GsoType::UdpL4`] (as its `gso_type` number).
    pub inner_gso_type: u8,
    /// The outer IP version is 6 (else 4).
    pub outer_v6: bool,
    /// The outer UDP checksum is computed per segment (its field holds the
    /// pseudo-header sum); else it stays zero.
    pub outer_csum: bool,
    /// Every header, outer and inner, up to the inner payload.
    pub hdr_len: u16,
    /// The inner payload bytes per segment.
    pub gso_size: u16,
    /// Where the inner transport header starts, and its checksum field in it.
    pub csum_start: u16,
    pub csum_offset: u16,
    /// Where the outer UDP header starts.
    pub outer_th: u16,
    /// Where the inner IP header starts.
    pub inner_nh: u16,
}

impl TunnelRepr {
    /// Writes the 24-byte header (the hash report zero).
    pub fn emit(&self, out: &mut [u8; HEADER_LEN_TUNNEL]) {
        let tunnel = if self.outer_v6 { GSO_UDP_TUNNEL_IPV6 } else { GSO_UDP_TUNNEL_IPV4 };
        let flags = FLAG_NEEDS_CSUM | if self.outer_csum { FLAG_UDP_TUNNEL_CSUM } else { 0 };
        *out = [0; HEADER_LEN_TUNNEL];
        out[field::FLAGS] = flags;
        out[field::GSO_TYPE] = self.inner_gso_type | tunnel;
        out[field::HDR_LEN].copy_from_slice(&self.hdr_len.to_le_bytes());
        out[field::GSO_SIZE].copy_from_slice(&self.gso_size.to_le_bytes());
        out[field::CSUM_START].copy_from_slice(&self.csum_start.to_le_bytes());
        out[field::CSUM_OFFSET].copy_from_slice(&self.csum_offset.to_le_bytes());
        out[field::OUTER_TH].copy_from_slice(&self.outer_th.to_le_bytes());
        out[field::INNER_NH].copy_from_slice(&self.inner_nh.to_le_bytes());
    }
}

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum from `csum_start` to the end of
/// the frame is partial and must be completed, storing it at `csum_start +
/// csum_offset`.
pub const FLAG_NEEDS_CSUM: u8 = 0x01;

/// `VIRTIO_NET_HDR_F_DATA_VALID`: the frame's checksums were verified.
pub const FLAG_DATA_VALID: u8 = 0x02;

/// `VIRTIO_NET_HDR_GSO_ECN`: OR-ed into the GSO type when the TCP superframe
/// has CWR set (the receiver must handle ECN when segmenting).
pub const GSO_ECN: u8 = 0x80;

enum_with_unknown! {
    /// The GSO type in the low seven bits of the `gso_type` field (the ECN
    /// bit, [`GSO_ECN`], is read separately).
    pub enum GsoType(u8) {
        /// `VIRTIO_NET_HDR_GSO_NONE`: not a superframe.
        None = 0,
        /// `VIRTIO_NET_HDR_GSO_TCPV4`: TCP over IPv4 (TSO).
        Tcpv4 = 1,
        /// `VIRTIO_NET_HDR_GSO_UDP`: UDP fragmentation offload (UFO), the
        /// legacy kind: the datagram is cut into IPv4 fragments.
        Ufo = 3,
        /// `VIRTIO_NET_HDR_GSO_TCPV6`: TCP over IPv6 (TSO).
        Tcpv6 = 4,
        /// `VIRTIO_NET_HDR_GSO_UDP_L4`: UDP segmentation offload (USO): each
        /// segment is a datagram of its own.
        UdpL4 = 5,
    }
}

/// Reads a little-endian `u16` at `at`. Callers have checked the length.
#[inline(always)]
fn read_le16(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([buf[at], buf[at + 1]])
}

/// Writes a little-endian `u16` at `at`. Callers have checked the length.
#[inline(always)]
fn write_le16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_le_bytes());
}

/// A view of a virtio-net header at the start of a buffer.
///
/// The buffer may be the header alone or the header followed by the frame:
/// the view reads only the first [`HEADER_LEN`] bytes (and, for
/// [`Header::num_buffers`], the next two). After [`Header::new_checked`]
/// succeeds, the buffer holds the 10-byte header and no getter panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Header<T> {
        Header { buffer }
    }

    /// Wraps a buffer and checks it with [`Header::check_len`].
    pub fn new_checked(buffer: T) -> Result<Header<T>> {
        let header = Header::new_unchecked(buffer);
        header.check_len()?;
        Ok(header)
    }

    /// Checks that the buffer holds the 10-byte legacy header: `Truncated`
    /// if not. The fields themselves are checked by [`Repr::parse`].
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

    /// The whole flags byte, bits this module has no name for included.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Whether `VIRTIO_NET_HDR_F_NEEDS_CSUM` is set.
    pub fn needs_csum(&self) -> bool {
        self.flags() & FLAG_NEEDS_CSUM != 0
    }

    /// Whether `VIRTIO_NET_HDR_F_DATA_VALID` is set.
    pub fn data_valid(&self) -> bool {
        self.flags() & FLAG_DATA_VALID != 0
    }

    /// The whole `gso_type` byte, the ECN bit included.
    pub fn gso_type_field(&self) -> u8 {
        self.buffer.as_ref()[field::GSO_TYPE]
    }

    /// The GSO type, without the ECN bit.
    pub fn gso_type(&self) -> GsoType {
        GsoType::from(self.gso_type_field() & !GSO_ECN)
    }

    /// Whether the ECN bit ([`GSO_ECN`]) of `gso_type` is set.
    pub fn gso_ecn(&self) -> bool {
        self.gso_type_field() & GSO_ECN != 0
    }

    /// `hdr_len`: for a superframe, the bytes of headers before the payload;
    /// from the Linux kernel only a hint (see the module documentation).
    pub fn hdr_len(&self) -> u16 {
        read_le16(self.buffer.as_ref(), field::HDR_LEN.start)
    }

    /// `gso_size`: the payload bytes per segment (the MSS for TCP).
    pub fn gso_size(&self) -> u16 {
        read_le16(self.buffer.as_ref(), field::GSO_SIZE.start)
    }

    /// `csum_start`: where the partial checksum starts, from the first byte
    /// of the frame.
    pub fn csum_start(&self) -> u16 {
        read_le16(self.buffer.as_ref(), field::CSUM_START.start)
    }

    /// `csum_offset`: where to store the checksum, from `csum_start`.
    pub fn csum_offset(&self) -> u16 {
        read_le16(self.buffer.as_ref(), field::CSUM_OFFSET.start)
    }

    /// `num_buffers` of a `virtio_net_hdr_v1`, or `None` if the buffer is
    /// shorter than [`HEADER_LEN_V1`]. Meaningful only when the header is a
    /// v1 header, which the view cannot tell: with a 10-byte header these are
    /// the frame's first two bytes.
    pub fn num_buffers(&self) -> Option<u16> {
        let buffer = self.buffer.as_ref();
        (buffer.len() >= HEADER_LEN_V1).then(|| read_le16(buffer, field::NUM_BUFFERS.start))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    /// Writes the whole flags byte.
    pub fn set_flags(&mut self, value: u8) {
        self.buffer.as_mut()[field::FLAGS] = value
    }

    /// Sets or clears `VIRTIO_NET_HDR_F_NEEDS_CSUM`, leaving the other bits.
    pub fn set_needs_csum(&mut self, value: bool) {
        let flags = self.flags();
        self.set_flags(if value { flags | FLAG_NEEDS_CSUM } else { flags & !FLAG_NEEDS_CSUM })
    }

    /// Sets or clears `VIRTIO_NET_HDR_F_DATA_VALID`, leaving the other bits.
    pub fn set_data_valid(&mut self, value: bool) {
        let flags = self.flags();
        self.set_flags(if value { flags | FLAG_DATA_VALID } else { flags & !FLAG_DATA_VALID })
    }

    /// Writes the whole `gso_type` byte, the ECN bit included.
    pub fn set_gso_type_field(&mut self, value: u8) {
        self.buffer.as_mut()[field::GSO_TYPE] = value
    }

    /// Sets the GSO type, keeping the ECN bit; only the low seven bits of the
    /// value are written.
    pub fn set_gso_type(&mut self, value: GsoType) {
        let ecn = self.gso_type_field() & GSO_ECN;
        self.set_gso_type_field(ecn | (u8::from(value) & !GSO_ECN))
    }

    /// Sets or clears the ECN bit of `gso_type`, keeping the type.
    pub fn set_gso_ecn(&mut self, value: bool) {
        let kind = self.gso_type_field() & !GSO_ECN;
        self.set_gso_type_field(if value { kind | GSO_ECN } else { kind })
    }

    pub fn set_hdr_len(&mut self, value: u16) {
        write_le16(self.buffer.as_mut(), field::HDR_LEN.start, value)
    }

    pub fn set_gso_size(&mut self, value: u16) {
        write_le16(self.buffer.as_mut(), field::GSO_SIZE.start, value)
    }

    pub fn set_csum_start(&mut self, value: u16) {
        write_le16(self.buffer.as_mut(), field::CSUM_START.start, value)
    }

    pub fn set_csum_offset(&mut self, value: u16) {
        write_le16(self.buffer.as_mut(), field::CSUM_OFFSET.start, value)
    }

    /// Writes `num_buffers` of a `virtio_net_hdr_v1`; `Truncated` if the
    /// buffer is shorter than [`HEADER_LEN_V1`].
    pub fn set_num_buffers(&mut self, value: u16) -> Result<()> {
        let buffer = self.buffer.as_mut();
        if buffer.len() < HEADER_LEN_V1 {
            return Err(Error::Truncated);
        }
        write_le16(buffer, field::NUM_BUFFERS.start, value);
        Ok(())
    }
}

/// What the header says about the frame's transport checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Checksum {
    /// Neither flag: the checksum is complete (or absent) as it stands.
    #[default]
    None,
    /// `NEEDS_CSUM`: the checksum from `start` to the end of the frame is
    /// partial. The 16-bit field at `start + offset` holds the folded
    /// pseudo-header sum, not complemented (the kernel's `CHECKSUM_PARTIAL`);
    /// see [`crate::gso::complete_checksum`].
    Partial {
        /// `csum_start`: from the first byte of the frame.
        start: u16,
        /// `csum_offset`: from `start` (16 for TCP, 6 for UDP).
        offset: u16,
    },
    /// `DATA_VALID`: the checksums were verified by the sender.
    Valid,
}

/// Whether the frame is a superframe to be segmented, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Gso {
    /// `GSO_NONE`: an ordinary frame.
    #[default]
    None,
    /// TSO over IPv4, `size` payload bytes per segment; `ecn` is the ECN bit
    /// (the superframe has CWR set).
    Tcpv4 { size: u16, ecn: bool },
    /// TSO over IPv6.
    Tcpv6 { size: u16, ecn: bool },
    /// Legacy UFO: one UDP datagram to be cut into IP fragments of `size`
    /// bytes. Parsed, but [`crate::gso`] does not segment it.
    Ufo { size: u16 },
    /// USO: UDP payload cut into datagrams of `size` bytes each.
    UdpL4 { size: u16 },
}

impl Gso {
    /// The `gso_size` field: payload bytes per segment, 0 for [`Gso::None`].
    pub const fn size(&self) -> u16 {
        match *self {
            Gso::None => 0,
            Gso::Tcpv4 { size, .. } | Gso::Tcpv6 { size, .. } | Gso::Ufo { size } | Gso::UdpL4 { size } => size,
        }
    }

    /// The GSO type, without the ECN bit.
    pub const fn gso_type(&self) -> GsoType {
        match self {
            Gso::None => GsoType::None,
            Gso::Tcpv4 { .. } => GsoType::Tcpv4,
            Gso::Tcpv6 { .. } => GsoType::Tcpv6,
            Gso::Ufo { .. } => GsoType::Ufo,
            Gso::UdpL4 { .. } => GsoType::UdpL4,
        }
    }

    /// Whether the ECN bit is set (only TCP carries one).
    pub const fn ecn(&self) -> bool {
        matches!(self, Gso::Tcpv4 { ecn: true, .. } | Gso::Tcpv6 { ecn: true, .. })
    }

    /// Whether this is a superframe, to be segmented.
    pub const fn is_gso(&self) -> bool {
        !matches!(self, Gso::None)
    }
}

/// A virtio-net header's meaning.
///
/// Made so that a state the kernel would refuse cannot be written: a segment
/// size or an ECN bit exists only on a GSO type that has it, and the checksum
/// offsets only with `NEEDS_CSUM`. `num_buffers` is not part of it (see the
/// module documentation). `Repr::default()` is the all-zero header of an
/// ordinary frame, which is what a writer to the TAP sends with every frame
/// that needs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Repr {
    /// `flags` with `csum_start` and `csum_offset`.
    pub checksum: Checksum,
    /// `gso_type` with `gso_size`.
    pub gso: Gso,
    /// `hdr_len`, as it is: a hint from the Linux kernel (see the module
    /// documentation), carried and not interpreted.
    pub hdr_len: u16,
}

impl Repr {
    /// Reads a header, checking its length first.
    ///
    /// `NEEDS_CSUM` gives [`Checksum::Partial`] even if `DATA_VALID` is also
    /// set (the kernel's `virtio_net_hdr_to_skb` looks at `NEEDS_CSUM` only);
    /// flag bits without a name here are ignored, and so are `gso_size` and
    /// the checksum offsets where they mean nothing. As the kernel does, this
    /// refuses a GSO type it does not know (`Unsupported`), and a superframe
    /// with `gso_size` 0 or an ECN bit on anything but TCP (`Malformed`).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(header: &Header<&T>) -> Result<Repr> {
        header.check_len()?;
        let checksum = if header.needs_csum() {
            Checksum::Partial { start: header.csum_start(), offset: header.csum_offset() }
        } else if header.data_valid() {
            Checksum::Valid
        } else {
            Checksum::None
        };
        let size = header.gso_size();
        let ecn = header.gso_ecn();
        let gso = match header.gso_type() {
            GsoType::None => Gso::None,
            GsoType::Tcpv4 => Gso::Tcpv4 { size, ecn },
            GsoType::Tcpv6 => Gso::Tcpv6 { size, ecn },
            GsoType::Ufo => Gso::Ufo { size },
            GsoType::UdpL4 => Gso::UdpL4 { size },
            GsoType::Unknown(_) => return Err(Error::Unsupported),
        };
        let ecn_misplaced = ecn && !matches!(gso, Gso::Tcpv4 { .. } | Gso::Tcpv6 { .. });
        if ecn_misplaced || (gso.is_gso() && size == 0) {
            return Err(Error::Malformed);
        }
        Ok(Repr { checksum, gso, hdr_len: header.hdr_len() })
    }

    /// Whether the header says `NEEDS_CSUM`.
    pub const fn needs_csum(&self) -> bool {
        matches!(self.checksum, Checksum::Partial { .. })
    }

    /// The legacy header's length: what [`Repr::emit`] writes. For a
    /// [`HEADER_LEN_V1`] header, the caller owns the last two bytes
    /// (`num_buffers`; see [`Header::set_num_buffers`]).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 10-byte header, zeroing every field this `Repr` gives no
    /// meaning. Returns `Malformed` for a superframe with a segment size of
    /// 0 (the kernel refuses it), then `Truncated` if the buffer is shorter
    /// than [`HEADER_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, header: &mut Header<&mut T>) -> Result<()> {
        if self.gso.is_gso() && self.gso.size() == 0 {
            return Err(Error::Malformed);
        }
        if header.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let (flags, start, offset) = match self.checksum {
            Checksum::None => (0, 0, 0),
            Checksum::Partial { start, offset } => (FLAG_NEEDS_CSUM, start, offset),
            Checksum::Valid => (FLAG_DATA_VALID, 0, 0),
        };
        header.set_flags(flags);
        let ecn = if self.gso.ecn() { GSO_ECN } else { 0 };
        header.set_gso_type_field(u8::from(self.gso.gso_type()) | ecn);
        header.set_hdr_len(self.hdr_len);
        header.set_gso_size(self.gso.size());
        header.set_csum_start(start);
        header.set_csum_offset(offset);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TSO superframe's header as the kernel writes it for Ethernet/IPv4/
    /// TCP with timestamps (14 + 20 + 32 = 66 bytes of headers), MSS 1448.
    const TSO_V4: [u8; 10] = [
        0x01, // flags: NEEDS_CSUM
        0x01, // gso_type: TCPV4
        0x42, 0x00, // hdr_len 66
        0xa8, 0x05, // gso_size 1448
        0x22, 0x00, // csum_start 34: the TCP header
        0x10, 0x00, // csum_offset 16: TCP's checksum field
    ];

    /// A USO superframe over IPv6 with a v1 header: 14 + 40 + 8 headers,
    /// 1200-byte datagrams, `num_buffers` 1.
    const USO_V6_V1: [u8; 12] = [
        0x01, // flags: NEEDS_CSUM
        0x05, // gso_type: UDP_L4
        0x3e, 0x00, // hdr_len 62
        0xb0, 0x04, // gso_size 1200
        0x36, 0x00, // csum_start 54
        0x06, 0x00, // csum_offset 6: UDP's checksum field
        0x01, 0x00, // num_buffers 1
    ];

    /// TSO over IPv6 with the ECN bit (the superframe carries CWR).
    const TSO_V6_ECN: [u8; 10] = [0x01, 0x84, 0x56, 0x00, 0x94, 0x05, 0x36, 0x00, 0x10, 0x00];

    #[test]
    fn golden_tso_v4() {
        let header = Header::new_checked(&TSO_V4[..]).unwrap();
        assert_eq!(header.flags(), FLAG_NEEDS_CSUM);
        assert!(header.needs_csum());
        assert!(!header.data_valid());
        assert_eq!(header.gso_type(), GsoType::Tcpv4);
        assert!(!header.gso_ecn());
        assert_eq!(header.hdr_len(), 66);
        assert_eq!(header.gso_size(), 1448);
        assert_eq!(header.csum_start(), 34);
        assert_eq!(header.csum_offset(), 16);
        assert_eq!(header.num_buffers(), None);

        let repr = Repr::parse(&header).unwrap();
        assert_eq!(
            repr,
            Repr {
                checksum: Checksum::Partial { start: 34, offset: 16 },
                gso: Gso::Tcpv4 { size: 1448, ecn: false },
                hdr_len: 66,
            }
        );
        assert!(repr.needs_csum());
        assert_eq!(repr.buffer_len(), HEADER_LEN);
        let mut bytes = [0xffu8; HEADER_LEN];
        repr.emit(&mut Header::new_unchecked(&mut bytes[..])).unwrap();
        assert_eq!(bytes, TSO_V4);
    }

    #[test]
    fn golden_uso_v6_v1() {
        let header = Header::new_checked(&USO_V6_V1[..]).unwrap();
        assert_eq!(header.gso_type(), GsoType::UdpL4);
        assert_eq!(header.num_buffers(), Some(1));
        let repr = Repr::parse(&header).unwrap();
        assert_eq!(repr.gso, Gso::UdpL4 { size: 1200 });
        assert_eq!(repr.checksum, Checksum::Partial { start: 54, offset: 6 });
        assert_eq!(repr.hdr_len, 62);
        // Emit writes the legacy part; num_buffers is the caller's.
        let mut bytes = [0u8; HEADER_LEN_V1];
        let mut header = Header::new_unchecked(&mut bytes[..]);
        repr.emit(&mut header).unwrap();
        header.set_num_buffers(1).unwrap();
        assert_eq!(bytes, USO_V6_V1);
    }

    #[test]
    fn golden_tso_v6_ecn() {
        let header = Header::new_checked(&TSO_V6_ECN[..]).unwrap();
        assert_eq!(header.gso_type_field(), 0x84);
        assert_eq!(header.gso_type(), GsoType::Tcpv6);
        assert!(header.gso_ecn());
        let repr = Repr::parse(&header).unwrap();
        assert_eq!(repr.gso, Gso::Tcpv6 { size: 1428, ecn: true });
        assert!(repr.gso.ecn());
        assert_eq!(repr.gso.gso_type(), GsoType::Tcpv6);
        let mut bytes = [0u8; HEADER_LEN];
        repr.emit(&mut Header::new_unchecked(&mut bytes[..])).unwrap();
        assert_eq!(bytes, TSO_V6_ECN);
    }

    #[test]
    fn plain_frames() {
        // What the kernel writes for a frame with a complete checksum.
        let zero = [0u8; HEADER_LEN];
        let repr = Repr::parse(&Header::new_checked(&zero[..]).unwrap()).unwrap();
        assert_eq!(repr, Repr::default());
        assert!(!repr.gso.is_gso());
        assert_eq!(repr.gso.size(), 0);

        // DATA_VALID: the fields after it mean nothing and are zero.
        let mut valid = [0u8; HEADER_LEN];
        valid[0] = FLAG_DATA_VALID;
        let repr = Repr::parse(&Header::new_checked(&valid[..]).unwrap()).unwrap();
        assert_eq!(repr.checksum, Checksum::Valid);
        let mut out = [0xaau8; HEADER_LEN];
        repr.emit(&mut Header::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, valid);

        // A partial checksum on an ordinary frame (a UDP datagram over IPv4).
        let partial = [0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x22, 0x00, 0x06, 0x00];
        let repr = Repr::parse(&Header::new_checked(&partial[..]).unwrap()).unwrap();
        assert_eq!(repr.checksum, Checksum::Partial { start: 34, offset: 6 });
        assert_eq!(repr.gso, Gso::None);
    }

    #[test]
    fn parse_is_lenient_where_the_kernel_is() {
        // NEEDS_CSUM wins over DATA_VALID; unnamed flag bits are ignored.
        let both = [0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x22, 0x00, 0x10, 0x00];
        let repr = Repr::parse(&Header::new_checked(&both[..]).unwrap()).unwrap();
        assert_eq!(repr.checksum, Checksum::Partial { start: 34, offset: 16 });
        // gso_size and offsets that mean nothing are ignored.
        let stray = [0x00, 0x00, 0x10, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00];
        let repr = Repr::parse(&Header::new_checked(&stray[..]).unwrap()).unwrap();
        assert_eq!(repr, Repr { hdr_len: 16, ..Repr::default() });
    }

    #[test]
    fn parse_errors() {
        assert_eq!(Header::new_checked(&TSO_V4[..9]).unwrap_err(), Error::Truncated);
        assert_eq!(Repr::parse(&Header::new_unchecked(&TSO_V4[..9])).unwrap_err(), Error::Truncated);
        let parse = |bytes: [u8; 10]| Repr::parse(&Header::new_checked(&bytes[..]).unwrap());
        let with = |gso_type: u8, size: u16| {
            let mut bytes = TSO_V4;
            bytes[1] = gso_type;
            bytes[4..6].copy_from_slice(&size.to_le_bytes());
            bytes
        };
        assert_eq!(parse(with(0x01, 0)), Err(Error::Malformed), "TSO with gso_size 0");
        assert_eq!(parse(with(0x05, 0)), Err(Error::Malformed), "USO with gso_size 0");
        assert_eq!(parse(with(0x80, 1448)), Err(Error::Malformed), "ECN on GSO_NONE");
        assert_eq!(parse(with(0x85, 1448)), Err(Error::Malformed), "ECN on USO");
        assert_eq!(parse(with(0x83, 1448)), Err(Error::Malformed), "ECN on UFO");
        assert_eq!(parse(with(0x02, 1448)), Err(Error::Unsupported), "type 2 does not exist");
        assert_eq!(parse(with(0x41, 1448)), Err(Error::Unsupported), "UDP tunnel GSO bits");
        assert_eq!(parse(with(0x03, 1448)).unwrap().gso, Gso::Ufo { size: 1448 });
        assert_eq!(parse(with(0x81, 1448)).unwrap().gso, Gso::Tcpv4 { size: 1448, ecn: true });
    }

    #[test]
    fn emit_errors() {
        let mut short = [0u8; 9];
        let repr = Repr::default();
        assert_eq!(repr.emit(&mut Header::new_unchecked(&mut short[..])), Err(Error::Truncated));
        let mut bytes = [0u8; HEADER_LEN];
        let zero_size = Repr { gso: Gso::UdpL4 { size: 0 }, ..repr };
        assert_eq!(zero_size.emit(&mut Header::new_unchecked(&mut bytes[..])), Err(Error::Malformed));
        let mut header = Header::new_unchecked(&mut bytes[..]);
        assert_eq!(header.set_num_buffers(1), Err(Error::Truncated));
    }

    #[test]
    fn gso_type_numbers() {
        for n in 0..=0x7fu8 {
            assert_eq!(u8::from(GsoType::from(n)), n);
        }
        assert_eq!(GsoType::from(5), GsoType::UdpL4);
        assert_eq!(GsoType::from(2), GsoType::Unknown(2));
    }

    #[test]
    fn setters_round_trip() {
        let mut bytes = [0u8; HEADER_LEN_V1];
        let mut header = Header::new_unchecked(&mut bytes[..]);
        header.set_needs_csum(true);
        header.set_data_valid(true);
        header.set_gso_type(GsoType::Tcpv6);
        header.set_gso_ecn(true);
        header.set_hdr_len(86);
        header.set_gso_size(1428);
        header.set_csum_start(54);
        header.set_csum_offset(16);
        header.set_num_buffers(3).unwrap();
        assert_eq!(header.flags(), FLAG_NEEDS_CSUM | FLAG_DATA_VALID);
        assert_eq!(header.gso_type(), GsoType::Tcpv6);
        assert!(header.gso_ecn());
        header.set_gso_type(GsoType::Tcpv4);
        assert!(header.gso_ecn(), "the type setter keeps the ECN bit");
        header.set_gso_ecn(false);
        assert_eq!(header.gso_type(), GsoType::Tcpv4, "the ECN setter keeps the type");
        header.set_data_valid(false);
        assert_eq!(header.flags(), FLAG_NEEDS_CSUM);
        header.set_needs_csum(false);
        assert_eq!(header.flags(), 0);
        assert_eq!(
            (header.hdr_len(), header.gso_size(), header.csum_start(), header.csum_offset()),
            (86, 1428, 54, 16)
        );
        assert_eq!(header.num_buffers(), Some(3));
        assert_eq!(header.into_inner()[..], [0, 1, 86, 0, 0x94, 0x05, 54, 0, 16, 0, 3, 0]);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn repr() -> impl Strategy<Value = Repr> {
            let checksum = prop_oneof![
                Just(Checksum::None),
                Just(Checksum::Valid),
                (any::<u16>(), any::<u16>()).prop_map(|(start, offset)| Checksum::Partial { start, offset }),
            ];
            let gso = prop_oneof![
                Just(Gso::None),
                (1..=u16::MAX, any::<bool>()).prop_map(|(size, ecn)| Gso::Tcpv4 { size, ecn }),
                (1..=u16::MAX, any::<bool>()).prop_map(|(size, ecn)| Gso::Tcpv6 { size, ecn }),
                (1..=u16::MAX).prop_map(|size| Gso::Ufo { size }),
                (1..=u16::MAX).prop_map(|size| Gso::UdpL4 { size }),
            ];
            (checksum, gso, any::<u16>()).prop_map(|(checksum, gso, hdr_len)| Repr { checksum, gso, hdr_len })
        }

        proptest! {
            #[test]
            fn emit_then_parse_is_identity(repr in repr()) {
                let mut bytes = [0u8; HEADER_LEN];
                repr.emit(&mut Header::new_unchecked(&mut bytes[..])).unwrap();
                prop_assert_eq!(Repr::parse(&Header::new_checked(&bytes[..]).unwrap()), Ok(repr));
            }

            #[test]
            fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
                if let Ok(header) = Header::new_checked(&bytes[..]) {
                    let _ = (header.flags(), header.gso_type(), header.gso_ecn(), header.hdr_len());
                    let _ = (header.gso_size(), header.csum_start(), header.csum_offset(), header.num_buffers());
                    if let Ok(repr) = Repr::parse(&header) {
                        let mut out = [0u8; HEADER_LEN];
                        repr.emit(&mut Header::new_unchecked(&mut out[..])).unwrap();
                        prop_assert_eq!(Repr::parse(&Header::new_checked(&out[..]).unwrap()), Ok(repr));
                    }
                }
            }
        }
    }
}
