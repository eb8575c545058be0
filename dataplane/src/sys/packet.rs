//! `AF_PACKET` raw sockets bound to one interface: every frame that enters
//! the host on it (a veth end facing a container, or any link), read in
//! batches with `recvmmsg`, and frames written out on it with `sendmmsg`.
//!
//! The socket is bound to the interface before it receives anything
//! (created with protocol 0, bound with `ETH_P_ALL`), so it never sees
//! another interface's frames. It ignores frames leaving the interface —
//! its own and the host's — with `PACKET_IGNORE_OUTGOING` (Linux 4.20);
//! where the kernel lacks that, [`PacketSocket::recv_batch`] drops frames of
//! type `PACKET_OUTGOING` itself and counts them. By default it joins the
//! interface in promiscuous mode (`PACKET_MR_PROMISC`, undone when the
//! socket closes), so a NIC passes up frames for MACs that are not its own.
//!
//! Two things the kernel does to received frames, and what this module does
//! about them, from `PACKET_AUXDATA`:
//!
//! - **VLAN tags are stripped.** The receive path moves an 802.1Q/802.1ad
//!   tag out of the frame into metadata before `AF_PACKET` sees it. With
//!   [`PacketOptions::reinsert_vlan`] (the default) the tag is written back
//!   into the frame — using 4 bytes of the slot's headroom, no copy of the
//!   payload — so a tagged frame reads exactly as it was sent;
//!   [`FrameMeta::vlan`] reports the tag either way. Without re-insertion a
//!   tagged frame would look untagged and could leak into a VNI.
//! - **Checksums may be partial.** A frame from a local sender (a veth from
//!   a container) may carry only the pseudo-header sum in its TCP/UDP
//!   checksum field (`TP_STATUS_CSUMNOTREADY`): [`FrameMeta::checksum`] is
//!   then [`ChecksumStatus::Partial`], and the checksum must be completed
//!   before the frame leaves the host. With a virtio-net header on
//!   ([`PacketOptions::vnet_hdr_len`], `PACKET_VNET_HDR`), the header says
//!   so too, with the offsets, and carries GSO superframes (a veth does TSO:
//!   without the header a container's TCP arrives as frames up to 64 KiB
//!   with no segment size), for [`gso`](crate::gso) to segment.
//!
//! What this module does not do: `PACKET_MMAP` rings, fanout, BPF filters,
//! or anything with the frames' contents beyond the VLAN tag.

use std::ffi::c_int;
use std::io::{self, IoSlice};
use std::mem;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::mmsg::{self, CmsgBuf, MsgScratch, CMSG_BUF_LEN};
use super::{iface, invalid_input, last_error, setsockopt_int};
use crate::wire::ethernet::{VlanTag, VLAN_TAG_LEN};
use crate::wire::{virtio_net, EtherType};

/// `ETH_P_ALL` in network byte order, as `bind` wants it.
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();

/// Offset of the type field in an Ethernet header (after both addresses).
const ETHERTYPE_OFFSET: usize = 12;

/// How to open a [`PacketSocket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketOptions {
    /// Join the interface in promiscuous mode. Default on.
    pub promiscuous: bool,
    /// Ignore frames leaving the interface. Default on (a VTEP wants only
    /// what enters); off shows both directions, as tcpdump does.
    pub ignore_outgoing: bool,
    /// Put the VLAN tag the kernel stripped back into the frame. Default on.
    pub reinsert_vlan: bool,
    /// A virtio-net header in front of every frame, both directions: 0 (the
    /// default) for none, [`virtio_net::HEADER_LEN`] (10, `PACKET_VNET_HDR`)
    /// or [`virtio_net::HEADER_LEN_V1`] (12, `PACKET_VNET_HDR_SZ`, Linux 6.7).
    pub vnet_hdr_len: usize,
    /// Receive buffer to ask for (`SO_RCVBUFFORCE`, else `SO_RCVBUF`).
    /// Default 4 MiB.
    pub recv_buffer: usize,
    /// `O_NONBLOCK`. Default off.
    pub nonblocking: bool,
}

impl Default for PacketOptions {
    fn default() -> PacketOptions {
        PacketOptions {
            promiscuous: true,
            ignore_outgoing: true,
            reinsert_vlan: true,
            vnet_hdr_len: 0,
            recv_buffer: 4 << 20,
            nonblocking: false,
        }
    }
}

/// Who drops outgoing frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutgoingFilter {
    /// The kernel (`PACKET_IGNORE_OUTGOING`): they are never copied up.
    Kernel,
    /// This module, by packet type, on kernels before 4.20.
    Userspace,
    /// Nobody: [`PacketOptions::ignore_outgoing`] was off.
    Off,
}

/// Where a received frame was going (`sll_pkttype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// To this host's MAC.
    Host,
    Broadcast,
    Multicast,
    /// To another host's MAC (seen thanks to promiscuous mode, or on a veth).
    OtherHost,
    /// Leaving the interface.
    Outgoing,
    /// Any other value, carried.
    Unknown(u8),
}

impl From<u8> for PacketType {
    fn from(value: u8) -> PacketType {
        match value {
            libc::PACKET_HOST => PacketType::Host,
            libc::PACKET_BROADCAST => PacketType::Broadcast,
            libc::PACKET_MULTICAST => PacketType::Multicast,
            libc::PACKET_OTHERHOST => PacketType::OtherHost,
            libc::PACKET_OUTGOING => PacketType::Outgoing,
            other => PacketType::Unknown(other),
        }
    }
}

/// What the kernel says about a received frame's transport checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChecksumStatus {
    /// Nothing said: complete as it stands, or never checked.
    #[default]
    Unknown,
    /// `TP_STATUS_CSUMNOTREADY`: the checksum field holds only the
    /// pseudo-header sum; complete it before the frame leaves the host.
    Partial,
    /// `TP_STATUS_CSUM_VALID`: verified (by the NIC or the kernel).
    Valid,
}

/// One received frame's place in its slot and what the kernel said of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMeta {
    /// Which slot of the batch holds it.
    pub slot: usize,
    /// Where the data starts in the slot (after what is left of the
    /// headroom) and how long it is. The data is the virtio-net header, if
    /// the socket has one, then the frame.
    pub start: usize,
    pub len: usize,
    /// The frame's length on the wire (without a virtio-net header, with a
    /// re-inserted VLAN tag); more than the data when the slot was too small.
    pub wire_len: usize,
    /// The frame did not fit its slot and was cut.
    pub truncated: bool,
    pub pkt_type: PacketType,
    /// The VLAN tag the kernel stripped, if any.
    pub vlan: Option<VlanTag>,
    /// Whether that tag was written back into the frame.
    pub vlan_reinserted: bool,
    pub checksum: ChecksumStatus,
}

impl FrameMeta {
    /// The data's range in the slot.
    pub fn range(&self) -> Range<usize> {
        self.start..self.start + self.len
    }
}

/// Receive slots for [`PacketSocket::recv_batch`], allocated once. Each slot
/// has `headroom` bytes in front of the frame (for outer headers written in
/// place, minus 4 when a VLAN tag is re-inserted) and `frame_room` bytes for
/// the virtio-net header and the frame.
pub struct FrameBatch {
    buf: Box<[u8]>,
    headroom: usize,
    slot_size: usize,
    frames: Vec<FrameMeta>,
    outgoing_skipped: usize,
    names: Box<[libc::sockaddr_ll]>,
    cmsgs: Box<[CmsgBuf]>,
    scratch: MsgScratch,
}

impl std::fmt::Debug for FrameBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameBatch")
            .field("capacity", &self.capacity())
            .field("headroom", &self.headroom)
            .field("slot_size", &self.slot_size)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl FrameBatch {
    /// `count` slots (1 to 1024), each with `headroom` bytes (raised to at
    /// least 4, for a VLAN tag) and `frame_room` bytes (at least 1). For a
    /// 1500-byte MTU without offloads, `frame_room` 1518 holds a tagged
    /// frame; with a virtio-net header and GSO, 65 550.
    pub fn new(count: usize, headroom: usize, frame_room: usize) -> FrameBatch {
        let count = count.clamp(1, mmsg::MAX_BATCH);
        let headroom = headroom.max(VLAN_TAG_LEN);
        let slot_size = headroom + frame_room.max(1);
        // SAFETY: sockaddr_ll is plain integers and bytes; zeros are valid.
        let name: libc::sockaddr_ll = unsafe { mem::zeroed() };
        FrameBatch {
            buf: vec![0; count * slot_size].into_boxed_slice(),
            headroom,
            slot_size,
            frames: Vec::with_capacity(count),
            outgoing_skipped: 0,
            names: vec![name; count].into_boxed_slice(),
            cmsgs: vec![CmsgBuf::ZERO; count].into_boxed_slice(),
            scratch: MsgScratch::new(count),
        }
    }

    /// How many frames one call can receive.
    pub fn capacity(&self) -> usize {
        self.names.len()
    }

    /// The headroom in front of each slot's receive area.
    pub fn headroom(&self) -> usize {
        self.headroom
    }

    /// The size of each slot: headroom plus frame room.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// How many frames the last receive kept.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// How many outgoing frames the last receive dropped itself (only with
    /// [`OutgoingFilter::Userspace`]).
    pub fn outgoing_skipped(&self) -> usize {
        self.outgoing_skipped
    }

    /// Frame `i` of the last receive: its metadata.
    pub fn meta(&self, i: usize) -> Option<&FrameMeta> {
        self.frames.get(i)
    }

    /// Frame `i`'s data: the virtio-net header if any, then the frame.
    pub fn data(&self, i: usize) -> Option<&[u8]> {
        let meta = self.frames.get(i)?;
        let base = meta.slot * self.slot_size;
        self.buf.get(base + meta.start..base + meta.start + meta.len)
    }

    /// Frame `i`'s data, writable.
    pub fn data_mut(&mut self, i: usize) -> Option<&mut [u8]> {
        let meta = self.frames.get(i)?;
        let base = meta.slot * self.slot_size;
        self.buf.get_mut(base + meta.start..base + meta.start + meta.len)
    }

    /// Frame `i`'s whole slot, writable, and where its data lies in it:
    /// write outer headers into `slot[..range.start]` to encapsulate in
    /// place.
    pub fn slot_mut(&mut self, i: usize) -> Option<(&mut [u8], Range<usize>)> {
        let meta = *self.frames.get(i)?;
        let base = meta.slot * self.slot_size;
        let slot = self.buf.get_mut(base..base + self.slot_size)?;
        Some((slot, meta.range()))
    }

    /// The frames of the last receive, in order, with their data.
    pub fn iter(&self) -> impl Iterator<Item = (&FrameMeta, &[u8])> + '_ {
        self.frames.iter().enumerate().filter_map(|(i, meta)| Some((meta, self.data(i)?)))
    }
}

/// Interface counters of a packet socket since the last read
/// (`PACKET_STATISTICS`, which resets them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PacketStats {
    /// Frames the socket accepted.
    pub packets: u32,
    /// Frames dropped because the receive buffer was full.
    pub drops: u32,
}

/// A raw socket on one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    name: String,
    ifindex: u32,
    vnet_hdr_len: usize,
    outgoing: OutgoingFilter,
    reinsert_vlan: bool,
}

impl PacketSocket {
    /// Opens a raw socket on the interface `ifname` (in the calling
    /// thread's namespace). Needs `CAP_NET_RAW`.
    pub fn open(ifname: &str, options: PacketOptions) -> io::Result<PacketSocket> {
        PacketSocket::open_inner(ifname, options, true)
    }

    fn open_inner(ifname: &str, options: PacketOptions, kernel_filter: bool) -> io::Result<PacketSocket> {
        if ![0, virtio_net::HEADER_LEN, virtio_net::HEADER_LEN_V1].contains(&options.vnet_hdr_len) {
            return Err(invalid_input("PACKET_VNET_HDR", ifname, "the virtio-net header is 0, 10 or 12 bytes"));
        }
        let ifindex = iface::ifindex(ifname)?;
        let mut ty = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
        if options.nonblocking {
            ty |= libc::SOCK_NONBLOCK;
        }
        // Protocol 0: nothing arrives until bind() names the interface.
        // SAFETY: socket() has no memory preconditions.
        let raw = unsafe { libc::socket(libc::AF_PACKET, ty, 0) };
        if raw < 0 {
            return Err(last_error("socket(AF_PACKET, SOCK_RAW)", ifname));
        }
        // SAFETY: `raw` was just returned by socket() and is owned by no one
        // else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sock = fd.as_fd();

        match options.vnet_hdr_len {
            0 => {}
            virtio_net::HEADER_LEN => {
                setsockopt_int(sock, libc::SOL_PACKET, libc::PACKET_VNET_HDR, 1, "setsockopt(PACKET_VNET_HDR)", ifname)?
            }
            len => setsockopt_int(
                sock,
                libc::SOL_PACKET,
                libc::PACKET_VNET_HDR_SZ,
                len as c_int,
                "setsockopt(PACKET_VNET_HDR_SZ) (Linux 6.7; use a 10-byte header before)",
                ifname,
            )?,
        }
        setsockopt_int(sock, libc::SOL_PACKET, libc::PACKET_AUXDATA, 1, "setsockopt(PACKET_AUXDATA)", ifname)?;
        let outgoing = if !options.ignore_outgoing {
            OutgoingFilter::Off
        } else if kernel_filter
            && setsockopt_int(sock, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1, "", ifname).is_ok()
        {
            OutgoingFilter::Kernel
        } else {
            OutgoingFilter::Userspace
        };
        if options.recv_buffer > 0 {
            let size = options.recv_buffer.min(c_int::MAX as usize / 2) as c_int;
            // SO_RCVBUFFORCE as root, else the capped one.
            if setsockopt_int(sock, libc::SOL_SOCKET, super::SO_RCVBUFFORCE, size, "", ifname).is_err() {
                setsockopt_int(sock, libc::SOL_SOCKET, libc::SO_RCVBUF, size, "setsockopt(SO_RCVBUF)", ifname)?;
            }
        }

        // SAFETY: sockaddr_ll is plain integers and bytes; zeros are valid.
        let mut addr: libc::sockaddr_ll = unsafe { mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = ETH_P_ALL_BE;
        addr.sll_ifindex = ifindex as c_int;
        // SAFETY: `addr` is a live sockaddr_ll and the length is its size.
        let ret = unsafe {
            libc::bind(
                sock.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if ret < 0 {
            return Err(last_error("bind(AF_PACKET)", ifname));
        }
        let socket = PacketSocket {
            fd,
            name: ifname.to_owned(),
            ifindex,
            vnet_hdr_len: options.vnet_hdr_len,
            outgoing,
            reinsert_vlan: options.reinsert_vlan,
        };
        if options.promiscuous {
            socket.set_promiscuous(true)?;
        }
        Ok(socket)
    }

    /// The interface's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface's index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The virtio-net header's length in front of every frame (0 for none).
    pub fn vnet_hdr_len(&self) -> usize {
        self.vnet_hdr_len
    }

    /// Who drops outgoing frames.
    pub fn outgoing_filter(&self) -> OutgoingFilter {
        self.outgoing
    }

    /// Joins or leaves promiscuous mode (`PACKET_ADD_MEMBERSHIP` /
    /// `PACKET_DROP_MEMBERSHIP` with `PACKET_MR_PROMISC`). The kernel counts
    /// memberships, so other users of the interface are not disturbed.
    pub fn set_promiscuous(&self, on: bool) -> io::Result<()> {
        // SAFETY: packet_mreq is plain integers and bytes; zeros are valid.
        let mut mreq: libc::packet_mreq = unsafe { mem::zeroed() };
        mreq.mr_ifindex = self.ifindex as c_int;
        mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
        let (name, op) = if on {
            (libc::PACKET_ADD_MEMBERSHIP, "setsockopt(PACKET_ADD_MEMBERSHIP)")
        } else {
            (libc::PACKET_DROP_MEMBERSHIP, "setsockopt(PACKET_DROP_MEMBERSHIP)")
        };
        // SAFETY: `mreq` is a live packet_mreq and the length is its size.
        let ret = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                name,
                (&mreq as *const libc::packet_mreq).cast(),
                mem::size_of::<libc::packet_mreq>() as libc::socklen_t,
            )
        };
        if ret < 0 {
            return Err(last_error(op, &self.name));
        }
        Ok(())
    }

    /// Sets or clears `O_NONBLOCK`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        super::set_nonblocking(self.fd.as_fd(), nonblocking, &self.name)
    }

    /// Reads and resets the socket's counters (`PACKET_STATISTICS`).
    pub fn take_stats(&self) -> io::Result<PacketStats> {
        // SAFETY: tpacket_stats is two u32s; zeros are valid.
        let mut stats: libc::tpacket_stats = unsafe { mem::zeroed() };
        let mut len = mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `stats` is live and `len` holds its size; the kernel
        // writes at most that.
        let ret = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if ret < 0 {
            return Err(last_error("getsockopt(PACKET_STATISTICS)", &self.name));
        }
        Ok(PacketStats { packets: stats.tp_packets, drops: stats.tp_drops })
    }

    /// Receives up to `batch.capacity()` frames in one `recvmmsg` and
    /// returns how many were kept (also [`FrameBatch::len`]): outgoing
    /// frames dropped in userspace are not counted (see
    /// [`FrameBatch::outgoing_skipped`]), so 0 can come back while frames
    /// were read. Blocks for the first frame unless nonblocking. Bare OS
    /// errors: `WouldBlock`, `Interrupted`.
    pub fn recv_batch(&self, batch: &mut FrameBatch) -> io::Result<usize> {
        batch.frames.clear();
        batch.outgoing_skipped = 0;
        let count = batch.names.len();
        let slot_size = batch.slot_size;
        let headroom = batch.headroom;
        let room = slot_size - headroom;
        // Base pointers taken once: no reference into these buffers is made
        // again until the call returns.
        let buf = batch.buf.as_mut_ptr();
        let iovs = batch.scratch.iovs.as_mut_ptr();
        let names = batch.names.as_mut_ptr();
        let cmsgs = batch.cmsgs.as_mut_ptr();
        for (i, slot) in batch.scratch.hdrs.iter_mut().enumerate().take(count) {
            let iov = iovs.wrapping_add(i);
            // SAFETY: `i < count`, the length of `iovs`, so the pointer is
            // valid for a write of one iovec; `i * slot_size + headroom` is
            // inside `buf`, which holds `count * slot_size` bytes.
            unsafe { iov.write(libc::iovec { iov_base: buf.add(i * slot_size + headroom).cast(), iov_len: room }) };
            let mut hdr = mmsg::empty_msghdr();
            hdr.msg_name = names.wrapping_add(i).cast();
            hdr.msg_namelen = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            hdr.msg_iov = iov;
            hdr.msg_iovlen = 1;
            hdr.msg_control = cmsgs.wrapping_add(i).cast();
            hdr.msg_controllen = CMSG_BUF_LEN as _;
            *slot = libc::mmsghdr { msg_hdr: hdr, msg_len: 0 };
        }
        // SAFETY: each header points into this batch's own buffers (a
        // sockaddr_ll, one iovec of `room` bytes inside `buf`, a CmsgBuf),
        // all live and exclusively borrowed through `batch` for the call.
        let n = unsafe { mmsg::recvmmsg(self.fd.as_fd(), &mut batch.scratch.hdrs, 0)? };

        for i in 0..n {
            let hdr = batch.scratch.hdrs[i];
            let pkt_type = PacketType::from(batch.names[i].sll_pkttype);
            if pkt_type == PacketType::Outgoing && self.outgoing == OutgoingFilter::Userspace {
                batch.outgoing_skipped += 1;
                continue;
            }
            let mut aux: Option<libc::tpacket_auxdata> = None;
            // SAFETY: the kernel left msg_control pointing at this message's
            // CmsgBuf and set msg_controllen to what it wrote.
            unsafe {
                mmsg::for_each_cmsg(&hdr.msg_hdr, |level, kind, data| {
                    if level == libc::SOL_PACKET
                        && kind == libc::PACKET_AUXDATA
                        && data.len() >= mem::size_of::<libc::tpacket_auxdata>()
                    {
                        // SAFETY: `data` holds at least one tpacket_auxdata,
                        // read unaligned; any bit pattern is valid.
                        aux = Some(std::ptr::read_unaligned(data.as_ptr().cast()));
                    }
                })
            };
            let len = (hdr.msg_len as usize).min(room);
            let status = aux.map_or(0, |a| a.tp_status);
            let checksum = if status & libc::TP_STATUS_CSUMNOTREADY != 0 {
                ChecksumStatus::Partial
            } else if status & libc::TP_STATUS_CSUM_VALID != 0 {
                ChecksumStatus::Valid
            } else {
                ChecksumStatus::Unknown
            };
            let vlan = aux.filter(|_| status & libc::TP_STATUS_VLAN_VALID != 0).map(|a| {
                let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 && a.tp_vlan_tpid != 0 {
                    EtherType::from(a.tp_vlan_tpid)
                } else {
                    EtherType::Vlan
                };
                VlanTag::from_tci(tpid, a.tp_vlan_tci)
            });
            let frame_len = len.saturating_sub(self.vnet_hdr_len);
            let mut wire_len = aux.map_or(frame_len, |a| a.tp_len as usize);
            let mut meta = FrameMeta {
                slot: i,
                start: headroom,
                len,
                wire_len,
                truncated: hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 || wire_len > frame_len,
                pkt_type,
                vlan,
                vlan_reinserted: false,
                checksum,
            };
            if let (Some(tag), true) = (vlan, self.reinsert_vlan) {
                let slot = &mut batch.buf[i * slot_size..(i + 1) * slot_size];
                if reinsert_vlan_tag(slot, headroom, len, self.vnet_hdr_len, tag) {
                    meta.start = headroom - VLAN_TAG_LEN;
                    meta.len = len + VLAN_TAG_LEN;
                    wire_len += VLAN_TAG_LEN;
                    meta.wire_len = wire_len;
                    meta.vlan_reinserted = true;
                }
            }
            batch.frames.push(meta);
        }
        Ok(batch.frames.len())
    }

    /// Sends one frame as it is (with a virtio-net header in front if the
    /// socket has one). Bare OS errors.
    pub fn send(&self, data: &[u8]) -> io::Result<usize> {
        // SAFETY: `data` is readable for its length for the call.
        let ret = unsafe { libc::send(self.fd.as_raw_fd(), data.as_ptr().cast(), data.len(), 0) };
        super::cvt_size(ret)
    }

    /// Sends an ordinary frame: with a virtio-net header on the socket, an
    /// all-zero header goes in front without copying the frame. Returns the
    /// frame bytes sent.
    pub fn send_frame(&self, frame: &[u8]) -> io::Result<usize> {
        if self.vnet_hdr_len == 0 {
            return self.send(frame);
        }
        let header = [0u8; virtio_net::HEADER_LEN_V1];
        self.send_with_header(&header[..self.vnet_hdr_len], frame)
    }

    /// Sends `frame` behind the virtio-net header `header` (a superframe
    /// with its GSO fields, say), without copying either: one `sendmsg` of
    /// two I/O vectors. The socket must have a header of that length
    /// (`InvalidInput` otherwise). Returns the frame bytes sent.
    pub fn send_with_header(&self, header: &[u8], frame: &[u8]) -> io::Result<usize> {
        if self.vnet_hdr_len == 0 || header.len() != self.vnet_hdr_len {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let iov = [IoSlice::new(header), IoSlice::new(frame)];
        let mut hdr = mmsg::empty_msghdr();
        hdr.msg_iov = iov.as_ptr() as *mut libc::iovec;
        hdr.msg_iovlen = iov.len() as _;
        // SAFETY: IoSlice is ABI-compatible with iovec; both slices are
        // readable for the call; no name or control buffer is given.
        let ret = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &hdr, 0) };
        Ok(super::cvt_size(ret)?.saturating_sub(self.vnet_hdr_len))
    }

    /// Sends one frame given in pieces, its virtio-net header (if the
    /// socket has one) at the start of the first: one `sendmsg` of the I/O
    /// vectors, nothing copied. Returns the bytes sent, header included.
    pub fn send_vectored(&self, parts: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut hdr = mmsg::empty_msghdr();
        hdr.msg_iov = parts.as_ptr() as *mut libc::iovec;
        hdr.msg_iovlen = parts.len() as _;
        // SAFETY: IoSlice is ABI-compatible with iovec; every slice is
        // readable for the call; no name or control buffer is given.
        let ret = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &hdr, 0) };
        super::cvt_size(ret)
    }

    /// Sends the frames `frames` yields (each as it is, with a virtio-net
    /// header if the socket has one), up to 64 per `sendmmsg`, and returns
    /// how many were sent: all, or fewer when the kernel stopped early. An
    /// error is returned only when nothing was sent.
    pub fn send_batch<'a, I>(&self, frames: I) -> io::Result<usize>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        const CHUNK: usize = 64;
        let mut frames = frames.into_iter();
        let mut total = 0;
        // SAFETY: plain integers and raw pointers; all zeros is valid.
        let mut hdrs: [libc::mmsghdr; CHUNK] = unsafe { mem::zeroed() };
        let mut iovs = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; CHUNK];
        loop {
            let mut n = 0;
            for frame in frames.by_ref().take(CHUNK) {
                iovs[n] = libc::iovec { iov_base: frame.as_ptr() as *mut libc::c_void, iov_len: frame.len() };
                n += 1;
            }
            if n == 0 {
                return Ok(total);
            }
            let iovs_base = iovs.as_mut_ptr();
            for (i, slot) in hdrs.iter_mut().enumerate().take(n) {
                let mut hdr = mmsg::empty_msghdr();
                hdr.msg_iov = iovs_base.wrapping_add(i);
                hdr.msg_iovlen = 1;
                *slot = libc::mmsghdr { msg_hdr: hdr, msg_len: 0 };
            }
            // SAFETY: headers 0..n point to `iovs` of this frame, which point
            // to frames borrowed for 'a, past this call; no names (the socket
            // is bound) and no control messages.
            match unsafe { mmsg::sendmmsg(self.fd.as_fd(), &mut hdrs[..n]) } {
                Ok(sent) => {
                    total += sent;
                    if sent < n || n < CHUNK {
                        return Ok(total);
                    }
                }
                Err(_) if total > 0 => return Ok(total),
                Err(err) => return Err(err),
            }
        }
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Writes `tag` back into the frame received at `slot[headroom..headroom +
/// len]` (a virtio-net header of `vnet_hdr_len` bytes first): the header and
/// the two MAC addresses move 4 bytes towards the front, the tag goes after
/// them, and the header's offsets grow by 4. Returns false, changing
/// nothing, if the frame is too short or the headroom too small.
fn reinsert_vlan_tag(slot: &mut [u8], headroom: usize, len: usize, vnet_hdr_len: usize, tag: VlanTag) -> bool {
    let moved = vnet_hdr_len + ETHERTYPE_OFFSET;
    if headroom < VLAN_TAG_LEN || len < moved || slot.len() < headroom + len {
        return false;
    }
    let start = headroom - VLAN_TAG_LEN;
    slot.copy_within(headroom..headroom + moved, start);
    let at = start + moved;
    slot[at..at + 2].copy_from_slice(&u16::from(tag.tpid).to_be_bytes());
    slot[at + 2..at + 4].copy_from_slice(&tag.tci().to_be_bytes());
    if vnet_hdr_len > 0 {
        let mut header = virtio_net::Header::new_unchecked(&mut slot[start..start + vnet_hdr_len]);
        if header.needs_csum() {
            let csum_start = header.csum_start().saturating_add(VLAN_TAG_LEN as u16);
            header.set_csum_start(csum_start);
        }
        if header.hdr_len() != 0 {
            let hdr_len = header.hdr_len().saturating_add(VLAN_TAG_LEN as u16);
            header.set_hdr_len(hdr_len);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::process::Command;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::sys::netns::{run_in_new_netns, thread_netns_path};
    use crate::sys::poll::{poll, Events, PollFd};
    use crate::sys::udp::{Transmit, UdpSocket};
    use crate::sys::{require_root, set_ipv4_addr, set_up, wait_running};
    use crate::wire::ethernet::{self, VlanTags};
    use crate::wire::{arp, EthernetAddress};

    /// IEEE 802 "local experimental" EtherType: test frames only.
    const TEST_TYPE: EtherType = EtherType::Unknown(0x88b5);

    /// A veth pair in the calling thread's namespace (made with `ip` run
    /// inside it through nsenter), both ends up.
    fn veth_pair(a: &str, b: &str) {
        let net = format!("--net={}", thread_netns_path().display());
        let out = Command::new("nsenter")
            .args([net.as_str(), "ip", "link", "add", a, "type", "veth", "peer", "name", b])
            .output()
            .unwrap();
        assert!(out.status.success(), "ip link add: {}", String::from_utf8_lossy(&out.stderr));
        set_up(a).unwrap();
        set_up(b).unwrap();
        for end in [a, b] {
            assert!(wait_running(end, Duration::from_secs(10)).unwrap(), "{end} never came up");
        }
        let (ta, tb) = (PacketSocket::open(a, nonblocking()).unwrap(), PacketSocket::open(b, nonblocking()).unwrap());
        let probes = (wait_for_path(&ta, &tb), wait_for_path(&tb, &ta));
        if probes != (1, 1) {
            eprintln!("veth {a}/{b}: running, but it took {probes:?} probes to get a frame through");
        }
    }

    /// EtherType of the probes [`wait_for_path`] sends.
    const PROBE_TYPE: EtherType = EtherType::Unknown(0x88b6);

    /// Sends probe frames from `from` until `to` receives one: a new veth
    /// drops what it is given until the kernel's link watcher has started
    /// its queueing discipline, which can lag behind `IFF_RUNNING` while
    /// other namespaces are being torn down. Returns how many probes it took.
    fn wait_for_path(from: &PacketSocket, to: &PacketSocket) -> usize {
        let eth = ethernet::Repr {
            src_addr: EthernetAddress([0x02, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress::BROADCAST,
            vlan_tags: VlanTags::None,
            ethertype: PROBE_TYPE,
        };
        let mut probe = [0u8; 60];
        eth.emit(&mut ethernet::Frame::new_unchecked(&mut probe[..])).unwrap();
        let mut batch = FrameBatch::new(8, 16, 2048);
        let vh = to.vnet_hdr_len();
        for sent in 1..=200 {
            from.send_frame(&probe).unwrap();
            let (got, _) = recv_frames(to, &mut batch, 1, Duration::from_millis(50), |_, d| {
                ethernet::Frame::new_checked(&d[vh..]).is_ok_and(|f| f.ethertype() == PROBE_TYPE)
            });
            if !got.is_empty() {
                return sent;
            }
        }
        panic!("no frame from {} reached {} in 10 s", from.name(), to.name());
    }

    fn test_frame(src: EthernetAddress, dst: EthernetAddress, vlan_tags: VlanTags, seq: u8) -> Vec<u8> {
        let eth = ethernet::Repr { src_addr: src, dst_addr: dst, vlan_tags, ethertype: TEST_TYPE };
        let mut frame = vec![seq; eth.buffer_len() + 46 + seq as usize];
        eth.emit(&mut ethernet::Frame::new_unchecked(&mut frame[..])).unwrap();
        frame
    }

    fn is_test_frame(frame: &[u8]) -> bool {
        ethernet::Frame::new_checked(frame).is_ok_and(|f| f.ethertype() == TEST_TYPE)
    }

    fn nonblocking() -> PacketOptions {
        PacketOptions { nonblocking: true, ..PacketOptions::default() }
    }

    /// Receives until `want` frames that `pick` keeps arrived or `wait`
    /// passed; returns them with their metadata, and the outgoing frames
    /// skipped in userspace.
    fn recv_frames(
        sock: &PacketSocket,
        batch: &mut FrameBatch,
        want: usize,
        wait: Duration,
        mut pick: impl FnMut(&FrameMeta, &[u8]) -> bool,
    ) -> (Vec<(FrameMeta, Vec<u8>)>, usize) {
        let deadline = Instant::now() + wait;
        let (mut got, mut skipped) = (Vec::new(), 0);
        while got.len() < want && Instant::now() < deadline {
            let mut fds = [PollFd::new(sock, Events::IN)];
            poll(&mut fds, Some(Duration::from_millis(20))).unwrap();
            match sock.recv_batch(batch) {
                Ok(n) => {
                    assert_eq!(n, batch.len());
                    skipped += batch.outgoing_skipped();
                    got.extend(batch.iter().filter(|(m, d)| pick(m, d)).map(|(m, d)| (*m, d.to_vec())));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => panic!("recv_batch on {}: {err}", sock.name()),
            }
        }
        (got, skipped)
    }

    #[test]
    fn frames_cross_a_veth_and_the_sender_never_sees_its_own() {
        require_root();
        run_in_new_netns(|| {
            veth_pair("wha", "whb");
            let (sa, sb) =
                (PacketSocket::open("wha", nonblocking()).unwrap(), PacketSocket::open("whb", nonblocking()).unwrap());
            assert_eq!(sa.outgoing_filter(), OutgoingFilter::Kernel, "PACKET_IGNORE_OUTGOING is in Linux 4.20");
            assert_eq!(sb.ifindex(), crate::sys::ifindex("whb").unwrap());
            let (mac_a, mac_b) = (crate::sys::mac("wha").unwrap(), crate::sys::mac("whb").unwrap());

            let frames: Vec<Vec<u8>> = (0..32).map(|i| test_frame(mac_a, mac_b, VlanTags::None, i)).collect();
            assert_eq!(sa.send_batch(frames.iter().map(Vec::as_slice)).unwrap(), 32);
            assert_eq!(sa.send(&frames[0]).unwrap(), frames[0].len());

            let mut batch = FrameBatch::new(16, 64, 1518);
            let (got, _) = recv_frames(&sb, &mut batch, 33, Duration::from_secs(2), |_, d| is_test_frame(d));
            assert_eq!(got.len(), 33);
            for (i, (meta, data)) in got.iter().enumerate() {
                assert_eq!(data, &frames[i % 32], "frame {i}");
                assert_eq!(meta.pkt_type, PacketType::Host, "sent to whb's own MAC");
                assert_eq!((meta.vlan, meta.truncated, meta.wire_len), (None, false, data.len()));
                assert_eq!(meta.start, 64, "no tag, the headroom is whole");
            }
            let stats = sb.take_stats().unwrap();
            assert!(stats.packets >= 33, "{stats:?}");

            let (own, skipped) = recv_frames(&sa, &mut batch, 1, Duration::from_millis(200), |_, d| is_test_frame(d));
            assert!(own.is_empty(), "the sender saw its own frames: {own:?}");
            assert_eq!(skipped, 0, "the kernel filters them");
        })
        .unwrap();
    }

    #[test]
    fn without_the_kernel_option_outgoing_frames_are_dropped_here() {
        require_root();
        run_in_new_netns(|| {
            veth_pair("wha", "whb");
            let filtered = PacketSocket::open_inner("wha", nonblocking(), false).unwrap();
            assert_eq!(filtered.outgoing_filter(), OutgoingFilter::Userspace);
            let everything =
                PacketSocket::open("wha", PacketOptions { ignore_outgoing: false, ..nonblocking() }).unwrap();
            assert_eq!(everything.outgoing_filter(), OutgoingFilter::Off);
            let sender = PacketSocket::open("wha", nonblocking()).unwrap();
            let frame = test_frame(crate::sys::mac("wha").unwrap(), EthernetAddress::BROADCAST, VlanTags::None, 1);
            sender.send(&frame).unwrap();

            let mut batch = FrameBatch::new(8, 16, 1518);
            let (seen, _) = recv_frames(&everything, &mut batch, 1, Duration::from_secs(1), |_, d| is_test_frame(d));
            assert_eq!(seen.len(), 1);
            assert_eq!(seen[0].0.pkt_type, PacketType::Outgoing);
            let (kept, skipped) =
                recv_frames(&filtered, &mut batch, 1, Duration::from_millis(200), |_, d| is_test_frame(d));
            assert!(kept.is_empty(), "{kept:?}");
            assert!(skipped >= 1, "the frame was read and dropped as outgoing");
        })
        .unwrap();
    }

    #[test]
    fn a_vlan_tag_the_kernel_strips_is_put_back() {
        require_root();
        run_in_new_netns(|| {
            veth_pair("wha", "whb");
            let sa = PacketSocket::open("wha", nonblocking()).unwrap();
            let sb = PacketSocket::open("whb", nonblocking()).unwrap();
            let bare = PacketSocket::open("whb", PacketOptions { reinsert_vlan: false, ..nonblocking() }).unwrap();
            let mac_a = crate::sys::mac("wha").unwrap();

            let c_tag = VlanTag { tpid: EtherType::Vlan, pcp: 3, dei: false, vid: 42 };
            let s_tag = VlanTag { tpid: EtherType::QinQ, pcp: 0, dei: true, vid: 100 };
            let single = test_frame(mac_a, EthernetAddress::BROADCAST, VlanTags::Single(c_tag), 1);
            let double =
                test_frame(mac_a, EthernetAddress::BROADCAST, VlanTags::Double { outer: s_tag, inner: c_tag }, 2);
            assert_eq!(sa.send_batch([single.as_slice(), double.as_slice()]).unwrap(), 2);

            let mut batch = FrameBatch::new(8, 32, 1518);
            let tagged = |_: &FrameMeta, d: &[u8]| {
                ethernet::Frame::new_checked(d).is_ok_and(|f| !f.vlan_tags().is_empty() || f.ethertype() == TEST_TYPE)
            };
            let (got, _) = recv_frames(&sb, &mut batch, 2, Duration::from_secs(2), tagged);
            assert_eq!(got.len(), 2, "{got:?}");
            assert_eq!(got[0].1, single, "the C-tag is back in place");
            assert_eq!(got[0].0.vlan, Some(c_tag));
            assert!(got[0].0.vlan_reinserted);
            assert_eq!((got[0].0.start, got[0].0.wire_len), (32 - VLAN_TAG_LEN, single.len()));
            assert_eq!(got[1].1, double, "the S-tag is back outside the C-tag");
            assert_eq!(got[1].0.vlan, Some(s_tag));

            let (got, _) = recv_frames(&bare, &mut batch, 2, Duration::from_secs(2), tagged);
            assert_eq!(got.len(), 2);
            let untagged = ethernet::Frame::new_checked(&got[0].1[..]).unwrap();
            assert!(untagged.vlan_tags().is_empty(), "without re-insertion the tag is only in the metadata");
            assert_eq!(got[0].0.vlan, Some(c_tag));
            assert!(!got[0].0.vlan_reinserted);
        })
        .unwrap();
    }

    /// A UDP GSO send routed out of one veth end reaches the other end as
    /// one superframe: with a virtio-net header on the packet socket it says
    /// so (USO, segment size, partial checksum); without, it is just a frame
    /// far over the MTU, cut to the slot.
    #[test]
    fn a_superframe_from_a_veth_comes_with_its_virtio_header() {
        require_root();
        run_in_new_netns(|| {
            veth_pair("wha", "whb");
            let (ip_a, ip_peer) = (Ipv4Addr::new(198, 51, 100, 1), Ipv4Addr::new(198, 51, 100, 2));
            set_ipv4_addr("wha", ip_a, 24).unwrap();
            let mac_a = crate::sys::mac("wha").unwrap();
            let peer_mac = EthernetAddress([0x02, 0, 0x5e, 0, 0, 0x22]);
            let with_hdr =
                PacketSocket::open("whb", PacketOptions { vnet_hdr_len: virtio_net::HEADER_LEN_V1, ..nonblocking() })
                    .unwrap();
            let without = PacketSocket::open("whb", nonblocking()).unwrap();

            let sock = UdpSocket::bind(SocketAddr::from((ip_a, 0))).unwrap();
            let payload = [0x5a; 4000];
            let dst = SocketAddr::from((ip_peer, 4789));
            assert_eq!(
                sock.send_batch([Transmit { segment_size: Some(1000), ..Transmit::new(dst, &payload) }]).unwrap(),
                1
            );

            // Answer the kernel's ARP request for the peer from whb.
            let mut batch = FrameBatch::new(8, 16, 65_550);
            let is_arp = |_: &FrameMeta, d: &[u8]| {
                ethernet::Frame::new_checked(d).is_ok_and(|f| f.ethertype() == EtherType::Arp)
            };
            let (asks, _) = recv_frames(&without, &mut batch, 1, Duration::from_secs(2), is_arp);
            assert_eq!(asks.len(), 1, "the kernel asks for {ip_peer}");
            let eth = ethernet::Repr {
                src_addr: peer_mac,
                dst_addr: mac_a,
                vlan_tags: VlanTags::None,
                ethertype: EtherType::Arp,
            };
            let reply = arp::Repr {
                operation: arp::Operation::Reply,
                source_hardware_addr: peer_mac,
                source_protocol_addr: ip_peer,
                target_hardware_addr: mac_a,
                target_protocol_addr: ip_a,
            };
            let mut frame = vec![0; eth.buffer_len() + reply.buffer_len()];
            eth.emit(&mut ethernet::Frame::new_unchecked(&mut frame[..])).unwrap();
            reply.emit(&mut arp::Packet::new_unchecked(&mut frame[eth.buffer_len()..])).unwrap();
            without.send(&frame).unwrap();

            let to_peer = |d: &[u8]| {
                ethernet::Frame::new_checked(d)
                    .is_ok_and(|f| f.dst_addr() == peer_mac && f.ethertype() == EtherType::Ipv4)
            };
            let mut small = FrameBatch::new(4, 16, 1518);
            let (got, _) = recv_frames(&without, &mut small, 1, Duration::from_secs(2), |_, d| to_peer(d));
            assert_eq!(got.len(), 1);
            let (meta, _) = &got[0];
            assert_eq!(meta.wire_len, 14 + 20 + 8 + 4000, "one frame far over the MTU");
            assert!(meta.truncated && meta.len == 1518);
            assert_eq!(meta.checksum, ChecksumStatus::Partial);

            let after_hdr = |_: &FrameMeta, d: &[u8]| d.len() > 12 && to_peer(&d[12..]);
            let (got, _) = recv_frames(&with_hdr, &mut batch, 1, Duration::from_secs(2), after_hdr);
            assert_eq!(got.len(), 1);
            let (meta, data) = &got[0];
            let header = virtio_net::Repr::parse(&virtio_net::Header::new_checked(&data[..12]).unwrap()).unwrap();
            assert_eq!(header.gso, virtio_net::Gso::UdpL4 { size: 1000 });
            assert_eq!(header.checksum, virtio_net::Checksum::Partial { start: 34, offset: 6 });
            assert_eq!((meta.len, meta.truncated), (12 + 4042, false));
            eprintln!("veth superframe through AF_PACKET: {header:?}, wire length {}", meta.wire_len);
        })
        .unwrap();
    }

    #[test]
    fn vnet_header_frames_round_trip_and_tags_fix_the_offsets() {
        require_root();
        run_in_new_netns(|| {
            veth_pair("wha", "whb");
            let options = PacketOptions { vnet_hdr_len: virtio_net::HEADER_LEN, ..nonblocking() };
            let (sa, sb) = (PacketSocket::open("wha", options).unwrap(), PacketSocket::open("whb", options).unwrap());
            assert_eq!(sa.vnet_hdr_len(), 10);
            let mac_a = crate::sys::mac("wha").unwrap();
            let tag = VlanTag { tpid: EtherType::Vlan, pcp: 0, dei: false, vid: 7 };
            let frame = test_frame(mac_a, EthernetAddress::BROADCAST, VlanTags::Single(tag), 3);
            assert_eq!(sa.send_frame(&frame).unwrap(), frame.len());
            let mut batch = FrameBatch::new(4, 0, 2048);
            assert_eq!(batch.headroom(), VLAN_TAG_LEN, "raised to fit a tag");
            let (got, _) = recv_frames(&sb, &mut batch, 1, Duration::from_secs(2), |_, d| is_test_frame(&d[10..]));
            assert_eq!(got.len(), 1);
            assert_eq!(&got[0].1[10..], frame.as_slice());
            assert_eq!(got[0].0.start, 0);
            let (slot, range) = batch.slot_mut(0).unwrap();
            assert_eq!(range, 0..10 + frame.len());
            assert_eq!(slot.len(), batch.slot_size());
            // A header of the caller's: the same frame again, behind it.
            let err = sa.send_with_header(&[0; 12], &frame).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "not the socket's header length");
            assert_eq!(sa.send_with_header(&[0; 10], &frame).unwrap(), frame.len());
            let (got, _) = recv_frames(&sb, &mut batch, 1, Duration::from_secs(2), |_, d| is_test_frame(&d[10..]));
            assert_eq!(got.len(), 1);
            assert_eq!(&got[0].1[10..], frame.as_slice());
        })
        .unwrap();

        // The offsets of a partial checksum move with the tag.
        let mut slot = vec![0u8; 4 + 10 + 60];
        let mut header = virtio_net::Header::new_unchecked(&mut slot[4..14]);
        header.set_needs_csum(true);
        header.set_csum_start(34);
        header.set_csum_offset(6);
        header.set_hdr_len(42);
        let tag = VlanTag { tpid: EtherType::Vlan, pcp: 0, dei: false, vid: 7 };
        assert!(reinsert_vlan_tag(&mut slot, 4, 70, 10, tag));
        let header = virtio_net::Header::new_checked(&slot[..10]).unwrap();
        assert_eq!((header.csum_start(), header.csum_offset(), header.hdr_len()), (38, 6, 46));
        assert_eq!(&slot[10 + 12..10 + 16], &[0x81, 0x00, 0x00, 0x07]);
        assert!(!reinsert_vlan_tag(&mut [0u8; 8], 4, 4, 0, tag), "too short to hold the addresses");
    }

    #[test]
    fn errors_name_the_interface() {
        let err = PacketSocket::open("whnosuch0", PacketOptions::default()).unwrap_err();
        assert!(err.to_string().contains("whnosuch0") && err.to_string().contains("no such interface"), "{err}");
        let err = PacketSocket::open("lo", PacketOptions { vnet_hdr_len: 4, ..PacketOptions::default() }).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
