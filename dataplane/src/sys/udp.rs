//! The underlay UDP socket, batched: many datagrams per system call with
//! `recvmmsg`/`sendmmsg`, and UDP GSO/GRO where the kernel has them.
//!
//! - [`RecvBatch`] holds N buffers of M bytes, the source addresses and the
//!   control-message space, allocated once; [`UdpSocket::recv_batch`] fills
//!   it without allocating. With GRO on ([`UdpSocket::set_gro`]) one message
//!   may hold several datagrams of the same size, back to back:
//!   [`Datagram::segment_size`] says how long each is (give 64 KiB buffers).
//! - [`UdpSocket::send_batch`] takes any iterator of [`Transmit`]s, each a
//!   destination and a borrowed payload. Several transmits may borrow the
//!   same payload: head-end replication of one VXLAN datagram to every
//!   flood-list peer copies nothing. A transmit with a `segment_size` is one
//!   buffer the kernel cuts into datagrams of that size (`UDP_SEGMENT`).
//! - The checksum options of the kernel's vxlan device: zero UDP checksums
//!   sent over IPv4 ([`UdpSocket::set_udp4_zero_checksum_tx`], `SO_NO_CHECK`;
//!   the kernel's `noudpcsum`, its IPv4 default), and over IPv6
//!   ([`UdpSocket::set_udp6_zero_checksum_tx`] / `_rx`, `UDP_NO_CHECK6_TX` /
//!   `_RX`; the kernel's `udp6zerocsumtx` / `udp6zerocsumrx`). A zero
//!   checksum is always accepted over IPv4; over IPv6 only with `_rx` on.
//!
//! Kernel rules a caller must know: GSO needs checksums — a segmented send
//! on a socket with zero checksums on fails with `EINVAL`, so a VTEP that
//! sends zero checksums sends without GSO. Each segment plus headers must fit
//! the path MTU (`EINVAL` otherwise), a send holds at most 64 segments and
//! 64 KiB, and a device without checksum offload makes GSO sends fail with
//! `EIO` (send them unsegmented then).
//!
//! Received IPv4-mapped IPv6 sources (`::ffff:a.b.c.d`, on a dual-stack
//! socket bound to `[::]`) are reported as IPv4; an IPv4 destination given
//! to an IPv6 socket is mapped the same way.
//!
//! What this module does not do: choose a source port per flow (a socket
//! sends from its bound port; the kernel vxlan's per-flow source port needs
//! one socket per port or a raw socket), IP_PKTINFO source selection, ECN,
//! or reading ICMP errors.

use std::ffi::c_int;
use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::mmsg::{self, CmsgBuf, MsgScratch, CMSG_BUF_LEN};
use super::sockaddr::RawSockAddr;
use super::{getsockopt_int, invalid_input, last_error, setsockopt_int, SO_NO_CHECK, SO_RCVBUFFORCE, SO_SNDBUFFORCE};

/// At most this many segments in one GSO send (`UDP_MAX_SEGMENTS` is 64
/// on older kernels, 128 on newer ones).
pub const MAX_GSO_SEGMENTS: usize = 64;

/// The largest UDP payload over IPv4 (65 535 − 20 − 8).
pub const MAX_PAYLOAD: usize = 65_507;

/// How to open a [`UdpSocket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpOptions {
    /// `SO_REUSEADDR`. Default on.
    pub reuse_addr: bool,
    /// `SO_REUSEPORT`: several sockets on one port, the kernel spreading
    /// flows over them (one per worker thread). Default off.
    pub reuse_port: bool,
    /// Receive buffer to ask for, in bytes: `SO_RCVBUFFORCE` as root, else
    /// `SO_RCVBUF` (capped by `net.core.rmem_max`). Default 4 MiB.
    pub recv_buffer: usize,
    /// Send buffer, likewise. Default 4 MiB.
    pub send_buffer: usize,
    /// `IPV6_V6ONLY` for an IPv6 socket; off (the default) lets `[::]` also
    /// take IPv4.
    pub v6_only: bool,
    /// `O_NONBLOCK`. Default off.
    pub nonblocking: bool,
}

impl Default for UdpOptions {
    fn default() -> UdpOptions {
        UdpOptions {
            reuse_addr: true,
            reuse_port: false,
            recv_buffer: 4 << 20,
            send_buffer: 4 << 20,
            v6_only: false,
            nonblocking: false,
        }
    }
}

/// One datagram to send: where, what, and whether the kernel should cut it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit<'a> {
    pub dst: SocketAddr,
    /// The UDP payload (a VXLAN header and the inner frame), borrowed.
    pub payload: &'a [u8],
    /// `Some(n)`: a GSO send, `payload` cut into datagrams of `n` bytes (the
    /// last may be shorter). `None`: one datagram.
    pub segment_size: Option<u16>,
    /// Bytes sent in front of `payload` in the same datagram (a second I/O
    /// vector, not a copy): a PROXY protocol header. Empty for none.
    pub prefix: &'a [u8],
    /// The source address to send from (`IP_PKTINFO` / `IPV6_PKTINFO`), for
    /// a socket bound to a wildcard address on a host with several: reply
    /// from the address the peer sent to. `None`: the kernel's choice.
    pub src: Option<IpAddr>,
}

impl<'a> Transmit<'a> {
    /// One datagram of `payload` to `dst`.
    pub fn new(dst: SocketAddr, payload: &'a [u8]) -> Transmit<'a> {
        Transmit { dst, payload, segment_size: None, prefix: &[], src: None }
    }
}

/// What one received message holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DatagramMeta {
    len: usize,
    source: SocketAddr,
    segment_size: Option<usize>,
    fragment_size: Option<usize>,
    local: Option<IpAddr>,
    truncated: bool,
}

const UNSPECIFIED: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

/// One received message, borrowed from a [`RecvBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// The bytes received: one datagram, or with GRO several of
    /// `segment_size` bytes back to back.
    pub payload: &'a [u8],
    pub source: SocketAddr,
    /// With GRO: the size of each coalesced datagram (the last may be
    /// shorter). `None` when the message is one datagram.
    pub segment_size: Option<usize>,
    /// With [`UdpSocket::set_recv_fragment_size`]: the datagram arrived in
    /// IP fragments and the kernel reassembled it; this is the largest
    /// fragment's size (`IP_RECVFRAGSIZE`). `None` for an unfragmented one.
    pub fragment_size: Option<usize>,
    /// With [`UdpSocket::set_recv_pktinfo`]: the address the datagram was
    /// sent to (one of the host's addresses, for a wildcard-bound socket).
    pub local: Option<IpAddr>,
    /// The datagram was longer than the buffer and was cut (`MSG_TRUNC`).
    pub truncated: bool,
}

impl<'a> Datagram<'a> {
    /// The datagrams in this message: one (perhaps empty), or several with
    /// GRO.
    pub fn segments(&self) -> impl Iterator<Item = &'a [u8]> + Clone {
        let size = self.segment_size.unwrap_or(self.payload.len()).max(1);
        let empty = self.payload.is_empty().then_some(self.payload);
        empty.into_iter().chain(self.payload.chunks(size))
    }
}

/// Receive buffers for [`UdpSocket::recv_batch`], allocated once.
pub struct RecvBatch {
    buf: Box<[u8]>,
    msg_size: usize,
    len: usize,
    meta: Box<[DatagramMeta]>,
    names: Box<[RawSockAddr]>,
    cmsgs: Box<[CmsgBuf]>,
    scratch: MsgScratch,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("capacity", &self.capacity())
            .field("msg_size", &self.msg_size)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl RecvBatch {
    /// `count` buffers (1 to 1024) of `msg_size` bytes each (at least 1).
    /// Without GRO, `msg_size` is the largest datagram expected (MTU − 28
    /// over IPv4); with GRO, give 65 535.
    pub fn new(count: usize, msg_size: usize) -> RecvBatch {
        let count = count.clamp(1, mmsg::MAX_BATCH);
        let msg_size = msg_size.max(1);
        let empty = DatagramMeta {
            len: 0,
            source: UNSPECIFIED,
            segment_size: None,
            fragment_size: None,
            local: None,
            truncated: false,
        };
        RecvBatch {
            buf: vec![0; count * msg_size].into_boxed_slice(),
            msg_size,
            len: 0,
            meta: vec![empty; count].into_boxed_slice(),
            names: vec![RawSockAddr::zeroed(); count].into_boxed_slice(),
            cmsgs: vec![CmsgBuf::ZERO; count].into_boxed_slice(),
            scratch: MsgScratch::new(count),
        }
    }

    /// How many messages one call can receive.
    pub fn capacity(&self) -> usize {
        self.meta.len()
    }

    /// The size of each buffer.
    pub fn msg_size(&self) -> usize {
        self.msg_size
    }

    /// How many messages the last [`UdpSocket::recv_batch`] received.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Message `i` of the last receive.
    pub fn get(&self, i: usize) -> Option<Datagram<'_>> {
        let meta = self.meta[..self.len].get(i)?;
        let start = i * self.msg_size;
        Some(Datagram {
            payload: &self.buf[start..start + meta.len],
            source: meta.source,
            segment_size: meta.segment_size,
            fragment_size: meta.fragment_size,
            local: meta.local,
            truncated: meta.truncated,
        })
    }

    /// The messages of the last receive, in order.
    pub fn iter(&self) -> impl Iterator<Item = Datagram<'_>> + '_ {
        (0..self.len).filter_map(|i| self.get(i))
    }

    /// The bytes of message `i`, writable (to decapsulate in place).
    pub fn payload_mut(&mut self, i: usize) -> Option<&mut [u8]> {
        let len = self.meta[..self.len].get(i)?.len;
        let start = i * self.msg_size;
        Some(&mut self.buf[start..start + len])
    }
}

/// A UDP socket with batched I/O.
#[derive(Debug)]
pub struct UdpSocket {
    fd: OwnedFd,
    is_v6: bool,
    local: SocketAddr,
    /// Set by [`UdpSocket::connect`]: sends to it go without an address,
    /// so the kernel uses the socket's cached route.
    peer: Option<SocketAddr>,
}

impl UdpSocket {
    /// Binds `addr` with [`UdpOptions::default`]: `SO_REUSEADDR`, 4 MiB
    /// buffers, blocking.
    pub fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
        UdpSocket::bind_with(addr, UdpOptions::default())
    }

    /// Binds `addr` with `options`.
    pub fn bind_with(addr: SocketAddr, options: UdpOptions) -> io::Result<UdpSocket> {
        let target = addr.to_string();
        let is_v6 = addr.is_ipv6();
        let domain = if is_v6 { libc::AF_INET6 } else { libc::AF_INET };
        let mut ty = libc::SOCK_DGRAM | libc::SOCK_CLOEXEC;
        if options.nonblocking {
            ty |= libc::SOCK_NONBLOCK;
        }
        // SAFETY: socket() has no memory preconditions.
        let raw = unsafe { libc::socket(domain, ty, libc::IPPROTO_UDP) };
        if raw < 0 {
            return Err(last_error("socket(SOCK_DGRAM)", &target));
        }
        // SAFETY: `raw` was just returned by socket() and is owned by no one
        // else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sock = fd.as_fd();
        if options.reuse_addr {
            setsockopt_int(sock, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)", &target)?;
        }
        if options.reuse_port {
            setsockopt_int(sock, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1, "setsockopt(SO_REUSEPORT)", &target)?;
        }
        if is_v6 {
            let v6_only = c_int::from(options.v6_only);
            setsockopt_int(sock, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, v6_only, "setsockopt(IPV6_V6ONLY)", &target)?;
        }
        set_buffer(sock, SO_RCVBUFFORCE, libc::SO_RCVBUF, options.recv_buffer, "setsockopt(SO_RCVBUF)", &target)?;
        set_buffer(sock, SO_SNDBUFFORCE, libc::SO_SNDBUF, options.send_buffer, "setsockopt(SO_SNDBUF)", &target)?;
        let (raw_addr, len) = RawSockAddr::new(addr, is_v6);
        // SAFETY: `raw_addr` is a live sockaddr of `len` bytes.
        let ret = unsafe { libc::bind(sock.as_raw_fd(), raw_addr.as_ptr(), len) };
        if ret < 0 {
            return Err(last_error("bind", &target));
        }
        let local = local_addr(sock, &target)?;
        Ok(UdpSocket { fd, is_v6, local, peer: None })
    }

    /// The address the socket is bound to (the port the kernel chose for
    /// port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn target(&self) -> String {
        self.local.to_string()
    }

    /// Sets or clears `O_NONBLOCK`.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        super::set_nonblocking(self.fd.as_fd(), nonblocking, &self.target())
    }

    /// Adopts a bound UDP socket handed over by a parent process (docker's
    /// `-use-listen-fd`). Fails when `fd` is not a datagram socket of IPv4
    /// or IPv6.
    pub fn from_fd(fd: OwnedFd) -> io::Result<UdpSocket> {
        let target = format!("fd {}", fd.as_raw_fd());
        let ty = getsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_TYPE, "getsockopt(SO_TYPE)", &target)?;
        if ty != libc::SOCK_DGRAM {
            return Err(invalid_input("getsockopt(SO_TYPE)", &target, "not a datagram socket"));
        }
        let local = local_addr(fd.as_fd(), &target)?;
        Ok(UdpSocket { fd, is_v6: local.is_ipv6(), local, peer: None })
    }

    /// Connects the socket to `peer`: datagrams from anyone else are no
    /// longer received, and ICMP errors from `peer` (port unreachable) are
    /// reported on the next call as `ConnectionRefused`, once.
    ///
    /// Datagrams sent to `peer` afterwards go without a destination address:
    /// an address makes the kernel look the route up for every datagram,
    /// connected or not.
    pub fn connect(&mut self, peer: SocketAddr) -> io::Result<()> {
        let (raw, len) = RawSockAddr::new(peer, self.is_v6);
        // SAFETY: `raw` is a live sockaddr of `len` bytes.
        let ret = unsafe { libc::connect(self.fd.as_raw_fd(), raw.as_ptr(), len) };
        if ret < 0 {
            return Err(last_error("connect", &peer.to_string()));
        }
        self.peer = Some(peer);
        Ok(())
    }

    /// Sends one message made of `parts` (I/O vectors, not copied): with
    /// `segment_size`, a UDP GSO send that the kernel cuts into datagrams of
    /// that many bytes (every part boundary need not be one; the last
    /// datagram may be shorter); without, one datagram. `src` picks the
    /// source address as in [`Transmit::src`]. Returns the bytes sent. Bare
    /// OS errors; `EIO` or `EINVAL` when the kernel cannot segment this.
    pub fn send_segments(
        &self,
        dst: SocketAddr,
        src: Option<IpAddr>,
        segment_size: Option<u16>,
        parts: &[std::io::IoSlice<'_>],
    ) -> io::Result<usize> {
        let mut cmsg = CmsgBuf::ZERO;
        let mut cmsg_len = match segment_size {
            Some(size) => {
                mmsg::write_cmsg(&mut cmsg, libc::SOL_UDP, libc::UDP_SEGMENT, &size.to_ne_bytes()).unwrap_or(0)
            }
            None => 0,
        };
        if let Some(src) = src {
            cmsg_len += write_pktinfo(&mut cmsg, cmsg_len, src, self.is_v6).unwrap_or(0);
        }
        let (mut name, name_len) = RawSockAddr::new(dst, self.is_v6);
        let mut hdr = mmsg::empty_msghdr();
        if self.peer != Some(dst) {
            hdr.msg_name = name.as_mut_ptr().cast();
            hdr.msg_namelen = name_len;
        }
        hdr.msg_iov = parts.as_ptr() as *mut libc::iovec;
        hdr.msg_iovlen = parts.len() as _;
        if cmsg_len > 0 {
            hdr.msg_control = cmsg.0.as_mut_ptr().cast();
            hdr.msg_controllen = cmsg_len as _;
        }
        // SAFETY: IoSlice is ABI-compatible with iovec and each part is
        // readable for its length; the name and control buffer are live
        // locals of the lengths given.
        let ret = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &hdr, 0) };
        super::cvt_size(ret)
    }

    /// Asks the kernel to say, per received datagram, which of the host's
    /// addresses it was sent to (`IP_PKTINFO` / `IPV6_RECVPKTINFO`): see
    /// [`Datagram::local`]. An IPv6 socket that also takes IPv4 gets both.
    pub fn set_recv_pktinfo(&self, on: bool) -> io::Result<()> {
        let fd = self.fd.as_fd();
        let target = self.target();
        if self.is_v6 {
            setsockopt_int(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_RECVPKTINFO,
                c_int::from(on),
                "setsockopt(IPV6_RECVPKTINFO)",
                &target,
            )?;
            // IPv4 on a dual-stack socket; fails harmlessly on a v6-only one.
            let _ = setsockopt_int(
                fd,
                libc::IPPROTO_IP,
                libc::IP_PKTINFO,
                c_int::from(on),
                "setsockopt(IP_PKTINFO)",
                &target,
            );
            Ok(())
        } else {
            setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, c_int::from(on), "setsockopt(IP_PKTINFO)", &target)
        }
    }

    /// Asks the kernel to say, per received datagram, whether it was
    /// reassembled from IP fragments and how large the largest fragment was
    /// (`IP_RECVFRAGSIZE` / `IPV6_RECVFRAGSIZE`, Linux 4.10): see
    /// [`Datagram::fragment_size`].
    pub fn set_recv_fragment_size(&self, on: bool) -> io::Result<()> {
        let (level, name, op) = if self.local_addr()?.is_ipv4() {
            (libc::IPPROTO_IP, libc::IP_RECVFRAGSIZE, "setsockopt(IP_RECVFRAGSIZE)")
        } else {
            (libc::IPPROTO_IPV6, libc::IPV6_RECVFRAGSIZE, "setsockopt(IPV6_RECVFRAGSIZE)")
        };
        setsockopt_int(self.fd.as_fd(), level, name, c_int::from(on), op, &self.target())
    }

    /// Turns UDP GRO on or off (`UDP_GRO`, Linux 5.0). Returns whether the
    /// kernel took it: `Ok(false)` when it does not know the option. With GRO
    /// on, one received message may hold several datagrams (see
    /// [`Datagram::segment_size`]); give [`RecvBatch`] 64 KiB buffers.
    pub fn set_gro(&self, on: bool) -> io::Result<bool> {
        match setsockopt_int(
            self.fd.as_fd(),
            libc::SOL_UDP,
            libc::UDP_GRO,
            c_int::from(on),
            "setsockopt(UDP_GRO)",
            &self.target(),
        ) {
            Ok(()) => Ok(true),
            Err(err) if err.raw_os_error() == Some(libc::ENOPROTOOPT) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Whether the kernel does UDP GSO (`UDP_SEGMENT`, Linux 4.18) on this
    /// socket. A send can still fail with `EIO` on a device without
    /// checksum offload.
    pub fn gso_supported(&self) -> bool {
        getsockopt_int(self.fd.as_fd(), libc::SOL_UDP, libc::UDP_SEGMENT, "getsockopt(UDP_SEGMENT)", "").is_ok()
    }

    /// The outer IPv4 TTL (`IP_TTL`). For IPv6 see
    /// [`UdpSocket::set_ipv6_hop_limit`].
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl =
            c_int::try_from(ttl).map_err(|_| invalid_input("setsockopt(IP_TTL)", &self.target(), "TTL 1 to 255"))?;
        setsockopt_int(self.fd.as_fd(), libc::IPPROTO_IP, libc::IP_TTL, ttl, "setsockopt(IP_TTL)", &self.target())
    }

    /// The outer IPv6 hop limit (`IPV6_UNICAST_HOPS`).
    pub fn set_ipv6_hop_limit(&self, hops: u32) -> io::Result<()> {
        let hops = c_int::try_from(hops)
            .map_err(|_| invalid_input("setsockopt(IPV6_UNICAST_HOPS)", &self.target(), "hop limit 1 to 255"))?;
        let op = "setsockopt(IPV6_UNICAST_HOPS)";
        setsockopt_int(self.fd.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, hops, op, &self.target())
    }

    /// The outer TOS / traffic class byte (DSCP and ECN): `IP_TOS` on an
    /// IPv4 socket, `IPV6_TCLASS` on an IPv6 one.
    pub fn set_tos(&self, tos: u8) -> io::Result<()> {
        let (level, name, op) = if self.is_v6 {
            (libc::IPPROTO_IPV6, libc::IPV6_TCLASS, "setsockopt(IPV6_TCLASS)")
        } else {
            (libc::IPPROTO_IP, libc::IP_TOS, "setsockopt(IP_TOS)")
        };
        setsockopt_int(self.fd.as_fd(), level, name, c_int::from(tos), op, &self.target())
    }

    /// Whether outer IPv4 packets carry DF. `true`: DF set, and the kernel
    /// never fragments (`IP_PMTUDISC_PROBE`: a datagram larger than the
    /// device MTU fails with `EMSGSIZE`). `false`: DF clear, the kernel
    /// fragments (`IP_PMTUDISC_DONT`; the kernel vxlan's default `df unset`).
    /// On an IPv6 socket this sets the IPv6 equivalent.
    pub fn set_dont_fragment(&self, on: bool) -> io::Result<()> {
        let (level, name, op, probe, dont) = if self.is_v6 {
            (
                libc::IPPROTO_IPV6,
                libc::IPV6_MTU_DISCOVER,
                "setsockopt(IPV6_MTU_DISCOVER)",
                libc::IPV6_PMTUDISC_PROBE,
                libc::IPV6_PMTUDISC_DONT,
            )
        } else {
            (
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                "setsockopt(IP_MTU_DISCOVER)",
                libc::IP_PMTUDISC_PROBE,
                libc::IP_PMTUDISC_DONT,
            )
        };
        setsockopt_int(self.fd.as_fd(), level, name, if on { probe } else { dont }, op, &self.target())
    }

    /// Sends IPv4 datagrams with a zero UDP checksum (`SO_NO_CHECK`), as the
    /// kernel vxlan does by default over IPv4. Excludes GSO (see the module
    /// documentation).
    pub fn set_udp4_zero_checksum_tx(&self, on: bool) -> io::Result<()> {
        setsockopt_int(
            self.fd.as_fd(),
            libc::SOL_SOCKET,
            SO_NO_CHECK,
            c_int::from(on),
            "setsockopt(SO_NO_CHECK)",
            &self.target(),
        )
    }

    /// Sends IPv6 datagrams with a zero UDP checksum (`UDP_NO_CHECK6_TX`,
    /// RFC 6935; the kernel vxlan's `udp6zerocsumtx`). Excludes GSO.
    pub fn set_udp6_zero_checksum_tx(&self, on: bool) -> io::Result<()> {
        let op = "setsockopt(UDP_NO_CHECK6_TX)";
        setsockopt_int(self.fd.as_fd(), libc::SOL_UDP, libc::UDP_NO_CHECK6_TX, c_int::from(on), op, &self.target())
    }

    /// Accepts IPv6 datagrams with a zero UDP checksum (`UDP_NO_CHECK6_RX`;
    /// the kernel vxlan's `udp6zerocsumrx`). Off, the kernel drops them.
    pub fn set_udp6_zero_checksum_rx(&self, on: bool) -> io::Result<()> {
        let op = "setsockopt(UDP_NO_CHECK6_RX)";
        setsockopt_int(self.fd.as_fd(), libc::SOL_UDP, libc::UDP_NO_CHECK6_RX, c_int::from(on), op, &self.target())
    }

    /// The receive buffer the kernel granted (it doubles what was asked).
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        let op = "getsockopt(SO_RCVBUF)";
        getsockopt_int(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, op, &self.target()).map(|n| n as usize)
    }

    /// The send buffer the kernel granted.
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        let op = "getsockopt(SO_SNDBUF)";
        getsockopt_int(self.fd.as_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, op, &self.target()).map(|n| n as usize)
    }

    /// Receives up to `batch.capacity()` messages in one `recvmmsg` and
    /// returns how many (also [`RecvBatch::len`]). Blocks for the first
    /// unless nonblocking; never waits for more. Bare OS errors:
    /// `WouldBlock`, `Interrupted` (a signal; not retried, so a runner can
    /// check its stop flag).
    pub fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.len = 0;
        let count = batch.meta.len();
        let msg_size = batch.msg_size;
        // Base pointers taken once: no reference into these buffers is made
        // again until the call returns.
        let buf = batch.buf.as_mut_ptr();
        let iovs = batch.scratch.iovs.as_mut_ptr();
        let names = batch.names.as_mut_ptr();
        let cmsgs = batch.cmsgs.as_mut_ptr();
        for (i, slot) in batch.scratch.hdrs.iter_mut().enumerate().take(count) {
            let iov = iovs.wrapping_add(i);
            // SAFETY: `i < count`, the length of `iovs`; the pointer is valid
            // for a write of one iovec. `i * msg_size` is inside `buf`.
            unsafe { iov.write(libc::iovec { iov_base: buf.add(i * msg_size).cast(), iov_len: msg_size }) };
            let mut hdr = mmsg::empty_msghdr();
            hdr.msg_name = names.wrapping_add(i).cast();
            hdr.msg_namelen = RawSockAddr::CAPACITY;
            hdr.msg_iov = iov;
            hdr.msg_iovlen = 1;
            hdr.msg_control = cmsgs.wrapping_add(i).cast();
            hdr.msg_controllen = CMSG_BUF_LEN as _;
            *slot = libc::mmsghdr { msg_hdr: hdr, msg_len: 0 };
        }
        // SAFETY: each header points into this batch's own buffers (a name
        // of CAPACITY bytes, one iovec of `msg_size` bytes inside `buf`, a
        // CmsgBuf of CMSG_BUF_LEN bytes), all live and exclusively borrowed
        // through `batch` for the call.
        let n = unsafe { mmsg::recvmmsg(self.fd.as_fd(), &mut batch.scratch.hdrs, 0)? };
        for i in 0..n {
            let hdr = &batch.scratch.hdrs[i];
            let mut segment_size = None;
            let mut fragment_size = None;
            let mut local = None;
            // SAFETY: the kernel left msg_control pointing at this message's
            // CmsgBuf and set msg_controllen to what it wrote.
            unsafe {
                mmsg::for_each_cmsg(&hdr.msg_hdr, |level, kind, data| {
                    let value = <[u8; 4]>::try_from(data.get(..4).unwrap_or_default())
                        .ok()
                        .and_then(|bytes| usize::try_from(c_int::from_ne_bytes(bytes)).ok())
                        .filter(|&n| n > 0);
                    match (level, kind) {
                        (libc::SOL_UDP, libc::UDP_GRO) => segment_size = value,
                        (libc::IPPROTO_IP, libc::IP_RECVFRAGSIZE) | (libc::IPPROTO_IPV6, libc::IPV6_RECVFRAGSIZE) => {
                            fragment_size = value
                        }
                        (libc::IPPROTO_IP, libc::IP_PKTINFO) => local = pktinfo_v4(data),
                        (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => local = pktinfo_v6(data),
                        _ => {}
                    }
                })
            };
            let len = (hdr.msg_len as usize).min(msg_size);
            // A "segment size" as large as the message means one datagram.
            let segment_size = segment_size.filter(|&size| size < len);
            batch.meta[i] = DatagramMeta {
                len,
                source: batch.names[i].decode(hdr.msg_hdr.msg_namelen).unwrap_or(UNSPECIFIED),
                segment_size,
                fragment_size,
                local,
                truncated: hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            };
        }
        batch.len = n;
        Ok(n)
    }

    /// Sends the transmits `msgs` yields, up to 64 per `sendmmsg`, and
    /// returns how many were sent: all of them, or fewer when the kernel
    /// stopped early (a full nonblocking socket, an error on one message).
    /// The ones after that count were taken from the iterator but not sent;
    /// sending again from there reports the error, if any. An error is
    /// returned only when nothing was sent.
    ///
    /// Head-end replication: yield the same payload once per peer.
    pub fn send_batch<'a, I>(&self, msgs: I) -> io::Result<usize>
    where
        I: IntoIterator<Item = Transmit<'a>>,
    {
        const CHUNK: usize = 64;
        let mut msgs = msgs.into_iter();
        let mut total = 0;
        // SAFETY: plain integers and raw pointers; all zeros is valid.
        let mut hdrs: [libc::mmsghdr; CHUNK] = unsafe { mem::zeroed() };
        let mut iovs = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; 2 * CHUNK];
        let mut iov_counts = [1usize; CHUNK];
        let mut names = [RawSockAddr::zeroed(); CHUNK];
        let mut name_lens: [libc::socklen_t; CHUNK] = [0; CHUNK];
        let mut cmsgs = [CmsgBuf::ZERO; CHUNK];
        let mut cmsg_lens = [0usize; CHUNK];
        loop {
            // First the data, then (below) the headers that point at it.
            let mut n = 0;
            for msg in msgs.by_ref().take(CHUNK) {
                (names[n], name_lens[n]) = RawSockAddr::new(msg.dst, self.is_v6);
                if self.peer == Some(msg.dst) {
                    // Connected: no address, no route lookup per datagram.
                    name_lens[n] = 0;
                }
                let payload =
                    libc::iovec { iov_base: msg.payload.as_ptr() as *mut libc::c_void, iov_len: msg.payload.len() };
                if msg.prefix.is_empty() {
                    iovs[2 * n] = payload;
                    iov_counts[n] = 1;
                } else {
                    iovs[2 * n] =
                        libc::iovec { iov_base: msg.prefix.as_ptr() as *mut libc::c_void, iov_len: msg.prefix.len() };
                    iovs[2 * n + 1] = payload;
                    iov_counts[n] = 2;
                }
                cmsg_lens[n] = match msg.segment_size {
                    Some(size) => {
                        mmsg::write_cmsg(&mut cmsgs[n], libc::SOL_UDP, libc::UDP_SEGMENT, &size.to_ne_bytes())
                            .unwrap_or(0)
                    }
                    None => 0,
                };
                if let Some(src) = msg.src {
                    cmsg_lens[n] += write_pktinfo(&mut cmsgs[n], cmsg_lens[n], src, self.is_v6).unwrap_or(0);
                }
                n += 1;
            }
            if n == 0 {
                return Ok(total);
            }
            let names_base = names.as_mut_ptr();
            let iovs_base = iovs.as_mut_ptr();
            let cmsgs_base = cmsgs.as_mut_ptr();
            for i in 0..n {
                let mut hdr = mmsg::empty_msghdr();
                if name_lens[i] > 0 {
                    hdr.msg_name = names_base.wrapping_add(i).cast();
                    hdr.msg_namelen = name_lens[i];
                }
                hdr.msg_iov = iovs_base.wrapping_add(2 * i);
                hdr.msg_iovlen = iov_counts[i] as _;
                if cmsg_lens[i] > 0 {
                    hdr.msg_control = cmsgs_base.wrapping_add(i).cast();
                    hdr.msg_controllen = cmsg_lens[i] as _;
                }
                hdrs[i] = libc::mmsghdr { msg_hdr: hdr, msg_len: 0 };
            }
            // SAFETY: headers 0..n point to `names`, `iovs` and `cmsgs` of
            // this frame and to payloads borrowed by the transmits, which
            // live at least as long as 'a, past this call.
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

    /// Sends one datagram (`sendto`). Bare OS errors.
    pub fn send_to(&self, payload: &[u8], dst: SocketAddr) -> io::Result<usize> {
        let (name, len) = RawSockAddr::new(dst, self.is_v6);
        // SAFETY: `payload` is readable for its length and `name` is a live
        // sockaddr of `len` bytes.
        let ret =
            unsafe { libc::sendto(self.fd.as_raw_fd(), payload.as_ptr().cast(), payload.len(), 0, name.as_ptr(), len) };
        super::cvt_size(ret)
    }

    /// Receives one datagram (`recvfrom`): its length (cut to the buffer)
    /// and source. Bare OS errors.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut name = RawSockAddr::zeroed();
        let mut len = RawSockAddr::CAPACITY;
        // SAFETY: `buf` is writable for its length and `name` is a live
        // storage of `len` bytes.
        let ret = unsafe {
            libc::recvfrom(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0, name.as_mut_ptr(), &mut len)
        };
        let n = super::cvt_size(ret)?;
        Ok((n, name.decode(len).unwrap_or(UNSPECIFIED)))
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The destination address of an `IP_PKTINFO` control message
/// (`struct in_pktinfo`: ifindex, spec_dst, addr).
fn pktinfo_v4(data: &[u8]) -> Option<IpAddr> {
    let addr: [u8; 4] = data.get(8..12)?.try_into().ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(addr)))
}

/// The destination address of an `IPV6_PKTINFO` control message
/// (`struct in6_pktinfo`: addr, ifindex). IPv4-mapped comes back as IPv4.
fn pktinfo_v6(data: &[u8]) -> Option<IpAddr> {
    let addr: [u8; 16] = data.get(..16)?.try_into().ok()?;
    let addr = Ipv6Addr::from(addr);
    Some(addr.to_ipv4_mapped().map_or(IpAddr::V6(addr), IpAddr::V4))
}

/// Appends, at `offset` of `buf`, the control message that makes a datagram
/// leave from `src`; returns its space, or `None` when it does not fit. An
/// IPv4 source from an IPv6 socket goes as `IP_PKTINFO` (dual stack).
fn write_pktinfo(buf: &mut CmsgBuf, offset: usize, src: IpAddr, socket_is_v6: bool) -> Option<usize> {
    let mut one = CmsgBuf::ZERO;
    let space = match src {
        IpAddr::V4(v4) => {
            // in_pktinfo { ipi_ifindex: 0, ipi_spec_dst: src, ipi_addr: 0 }
            let mut data = [0u8; 12];
            data[4..8].copy_from_slice(&v4.octets());
            mmsg::write_cmsg(&mut one, libc::IPPROTO_IP, libc::IP_PKTINFO, &data)?
        }
        IpAddr::V6(v6) if socket_is_v6 => {
            // in6_pktinfo { ipi6_addr: src, ipi6_ifindex: 0 }
            let mut data = [0u8; 20];
            data[..16].copy_from_slice(&v6.octets());
            mmsg::write_cmsg(&mut one, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, &data)?
        }
        IpAddr::V6(_) => return None,
    };
    buf.0.get_mut(offset..offset + space)?.copy_from_slice(&one.0[..space]);
    Some(space)
}

/// Asks for a buffer size: the FORCE option first (root may exceed the
/// sysctl cap), then the capped one.
fn set_buffer(
    fd: BorrowedFd<'_>,
    force: c_int,
    plain: c_int,
    size: usize,
    op: &'static str,
    target: &str,
) -> io::Result<()> {
    if size == 0 {
        return Ok(());
    }
    let size = size.min(c_int::MAX as usize / 2) as c_int;
    if setsockopt_int(fd, libc::SOL_SOCKET, force, size, op, target).is_ok() {
        return Ok(());
    }
    setsockopt_int(fd, libc::SOL_SOCKET, plain, size, op, target)
}

/// `getsockname`.
fn local_addr(fd: BorrowedFd<'_>, target: &str) -> io::Result<SocketAddr> {
    let mut name = RawSockAddr::zeroed();
    let mut len = RawSockAddr::CAPACITY;
    // SAFETY: `name` is a live storage of `len` bytes; the kernel writes at
    // most that and updates `len`.
    let ret = unsafe { libc::getsockname(fd.as_raw_fd(), name.as_mut_ptr(), &mut len) };
    if ret < 0 {
        return Err(last_error("getsockname", target));
    }
    name.decode(len).ok_or_else(|| invalid_input("getsockname", target, "the socket has no IPv4 or IPv6 address"))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::sys::netns::run_in_new_netns;
    use crate::sys::poll::{poll, Events, PollFd};
    use crate::sys::require_root;

    const LOCALHOST: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));

    /// What one received message held.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Got {
        payload: Vec<u8>,
        source: SocketAddr,
        segment_size: Option<usize>,
        truncated: bool,
    }

    fn open(addr: SocketAddr) -> UdpSocket {
        UdpSocket::bind_with(addr, UdpOptions { nonblocking: true, ..UdpOptions::default() }).unwrap()
    }

    /// Receives in batches until `want` messages arrived or a second passed.
    fn recv_messages(sock: &UdpSocket, batch: &mut RecvBatch, want: usize) -> Vec<Got> {
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut got = Vec::new();
        while got.len() < want && Instant::now() < deadline {
            let mut fds = [PollFd::new(sock, Events::IN)];
            poll(&mut fds, Some(Duration::from_millis(50))).unwrap();
            match sock.recv_batch(batch) {
                Ok(n) => {
                    assert_eq!(n, batch.len());
                    got.extend(batch.iter().map(|d| Got {
                        payload: d.payload.to_vec(),
                        source: d.source,
                        segment_size: d.segment_size,
                        truncated: d.truncated,
                    }));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => panic!("recv_batch: {err}"),
            }
        }
        got
    }

    fn payload(i: usize) -> Vec<u8> {
        vec![i as u8; 100 + i]
    }

    #[test]
    fn a_batch_of_64_arrives_in_order_with_its_source() {
        require_root();
        run_in_new_netns(|| {
            let (a, b) = (open(LOCALHOST), open(LOCALHOST));
            let dst = b.local_addr().unwrap();
            let payloads: Vec<Vec<u8>> = (0..64).map(payload).collect();
            let sent = a.send_batch(payloads.iter().map(|p| Transmit::new(dst, p))).unwrap();
            assert_eq!(sent, 64);

            let mut batch = RecvBatch::new(64, 2048);
            let got = recv_messages(&b, &mut batch, 64);
            assert_eq!(got.len(), 64);
            for (i, msg) in got.iter().enumerate() {
                assert_eq!(msg.payload, payloads[i], "message {i}");
                assert_eq!(msg.source, a.local_addr().unwrap());
                assert_eq!((msg.segment_size, msg.truncated), (None, false));
            }
            assert!(batch.get(batch.len()).is_none(), "past the end");
        })
        .unwrap();
    }

    #[test]
    fn more_than_one_chunk_goes_out_in_one_call() {
        require_root();
        run_in_new_netns(|| {
            let (a, b) = (open(LOCALHOST), open(LOCALHOST));
            let dst = b.local_addr().unwrap();
            let payloads: Vec<Vec<u8>> = (0..150).map(payload).collect();
            assert_eq!(a.send_batch(payloads.iter().map(|p| Transmit::new(dst, p))).unwrap(), 150);
            let mut batch = RecvBatch::new(32, 2048);
            let got = recv_messages(&b, &mut batch, 150);
            assert_eq!(got.iter().map(|g| g.payload.clone()).collect::<Vec<_>>(), payloads);
            assert_eq!(a.send_batch(std::iter::empty()).unwrap(), 0);
        })
        .unwrap();
    }

    /// Head-end replication: one payload, borrowed once per peer.
    #[test]
    fn one_payload_reaches_two_peers() {
        require_root();
        run_in_new_netns(|| {
            let (a, b, c) = (open(LOCALHOST), open(LOCALHOST), open(LOCALHOST));
            let vxlan_datagram = payload(50);
            let peers = [b.local_addr().unwrap(), c.local_addr().unwrap()];
            let sent = a.send_batch(peers.iter().map(|&peer| Transmit::new(peer, &vxlan_datagram))).unwrap();
            assert_eq!(sent, 2);
            for peer in [&b, &c] {
                let got = recv_messages(peer, &mut RecvBatch::new(8, 2048), 1);
                assert_eq!(got.len(), 1);
                assert_eq!(got[0].payload, vxlan_datagram);
                assert_eq!(got[0].source, a.local_addr().unwrap());
            }
        })
        .unwrap();
    }

    /// A datagram larger than the path MTU arrives reassembled; with
    /// `set_recv_fragment_size` the receiver is told it was fragmented, and
    /// an unfragmented one says nothing.
    #[test]
    fn reassembled_datagrams_are_reported() {
        require_root();
        run_in_new_netns(|| {
            super::super::set_mtu("lo", 1500).unwrap();
            let (a, b) = (open(LOCALHOST), open(LOCALHOST));
            a.set_dont_fragment(false).unwrap();
            b.set_recv_fragment_size(true).unwrap();
            let dst = b.local_addr().unwrap();
            let big = vec![0x5a; 3000];
            assert_eq!(a.send_batch([Transmit::new(dst, &big), Transmit::new(dst, &[7; 100])]).unwrap(), 2);
            let mut batch = RecvBatch::new(8, 4096);
            let mut seen = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(1);
            while seen.len() < 2 && Instant::now() < deadline {
                let mut fds = [PollFd::new(&b, Events::IN)];
                poll(&mut fds, Some(Duration::from_millis(50))).unwrap();
                if b.recv_batch(&mut batch).is_ok() {
                    seen.extend(batch.iter().map(|d| (d.payload.len(), d.fragment_size)));
                }
            }
            assert_eq!(seen.len(), 2, "{seen:?}");
            assert_eq!(seen[0].0, big.len());
            let fragment = seen[0].1.expect("a reassembled datagram says so");
            assert!(fragment <= 1500, "largest fragment {fragment}");
            assert_eq!(seen[1], (100, None));
        })
        .unwrap();
    }

    /// 10 × 1000 bytes in one GSO send: ten datagrams for a receiver
    /// without GRO; one message of 10 000 bytes, segment size 1000, for a
    /// receiver with GRO (loopback hands the GSO packet over whole).
    #[test]
    fn a_gso_send_arrives_as_ten_datagrams_or_one_gro_message() {
        require_root();
        run_in_new_netns(|| {
            let (a, plain, gro) = (open(LOCALHOST), open(LOCALHOST), open(LOCALHOST));
            assert!(a.gso_supported());
            assert!(gro.set_gro(true).unwrap(), "UDP_GRO is in every kernel since 5.0");
            let data: Vec<u8> = (0..10_000).map(|i| (i / 1000) as u8).collect();
            for dst in [plain.local_addr().unwrap(), gro.local_addr().unwrap()] {
                let sent = a.send_batch([Transmit { segment_size: Some(1000), ..Transmit::new(dst, &data) }]).unwrap();
                assert_eq!(sent, 1);
            }

            let got = recv_messages(&plain, &mut RecvBatch::new(64, 2048), 10);
            assert_eq!(got.len(), 10);
            for (i, msg) in got.iter().enumerate() {
                assert_eq!(msg.payload, vec![i as u8; 1000]);
                assert_eq!(msg.segment_size, None);
            }

            let mut batch = RecvBatch::new(4, 65_535);
            let got = recv_messages(&gro, &mut batch, 1);
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].payload, data);
            assert_eq!(got[0].segment_size, Some(1000));
            let datagram = batch.get(0).unwrap();
            assert_eq!(datagram.segments().count(), 10);
            assert!(datagram.segments().enumerate().all(|(i, s)| s == vec![i as u8; 1000].as_slice()));
            eprintln!("GSO and GRO on this kernel: 1 send of 10 x 1000 -> 10 datagrams, or 1 GRO message");
        })
        .unwrap();
    }

    /// The kernel refuses a segmented send on a socket that sends zero
    /// checksums (udp_send_skb: EINVAL); unsegmented sends still work.
    #[test]
    fn gso_and_zero_checksums_exclude_each_other() {
        require_root();
        run_in_new_netns(|| {
            let (a, b) = (open(LOCALHOST), open(LOCALHOST));
            a.set_udp4_zero_checksum_tx(true).unwrap();
            let dst = b.local_addr().unwrap();
            let data = [7u8; 3000];
            let err = a.send_batch([Transmit { segment_size: Some(1000), ..Transmit::new(dst, &data) }]).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
            assert_eq!(a.send_batch([Transmit::new(dst, &data[..1000])]).unwrap(), 1);
            let got = recv_messages(&b, &mut RecvBatch::new(4, 2048), 1);
            assert_eq!(got.len(), 1);
            a.set_udp4_zero_checksum_tx(false).unwrap();
            assert_eq!(a.send_batch([Transmit { segment_size: Some(1000), ..Transmit::new(dst, &data) }]).unwrap(), 1);
        })
        .unwrap();
    }

    #[test]
    fn ipv6_with_zero_checksums_and_mapped_ipv4_sources() {
        require_root();
        run_in_new_netns(|| {
            let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 0));
            let (a, b) = (open(v6), open(v6));
            a.set_udp6_zero_checksum_tx(true).unwrap();
            b.set_udp6_zero_checksum_rx(true).unwrap();
            a.set_ipv6_hop_limit(64).unwrap();
            a.set_tos(0x10).unwrap();
            a.set_dont_fragment(true).unwrap();
            let dst = b.local_addr().unwrap();
            let payloads: Vec<Vec<u8>> = (0..4).map(payload).collect();
            assert_eq!(a.send_batch(payloads.iter().map(|p| Transmit::new(dst, p))).unwrap(), 4);
            let got = recv_messages(&b, &mut RecvBatch::new(8, 2048), 4);
            assert_eq!(got.iter().map(|g| g.payload.clone()).collect::<Vec<_>>(), payloads);
            assert!(got.iter().all(|g| g.source == a.local_addr().unwrap()));

            // A dual-stack socket reports an IPv4 sender as IPv4, and sends
            // to an IPv4 destination.
            let dual = open(SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)));
            let v4 = open(LOCALHOST);
            let dual_port = dual.local_addr().unwrap().port();
            v4.send_to(b"hello", SocketAddr::from((Ipv4Addr::LOCALHOST, dual_port))).unwrap();
            let got = recv_messages(&dual, &mut RecvBatch::new(2, 2048), 1);
            assert_eq!(got[0].source, v4.local_addr().unwrap());
            assert_eq!(dual.send_batch([Transmit::new(got[0].source, b"back")]).unwrap(), 1);
            let mut buf = [0u8; 16];
            let deadline = Instant::now() + Duration::from_secs(1);
            let (n, from) = loop {
                match v4.recv_from(&mut buf) {
                    Ok(got) => break got,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(err) => panic!("recv_from: {err}"),
                }
            };
            assert_eq!((&buf[..n], from.port()), (&b"back"[..], dual_port));
            assert!(from.is_ipv4());
        })
        .unwrap();
    }

    #[test]
    fn a_datagram_longer_than_its_buffer_is_cut_and_says_so() {
        require_root();
        run_in_new_netns(|| {
            let (a, b) = (open(LOCALHOST), open(LOCALHOST));
            a.send_to(&[9u8; 300], b.local_addr().unwrap()).unwrap();
            let mut batch = RecvBatch::new(2, 100);
            let got = recv_messages(&b, &mut batch, 1);
            assert_eq!(got[0].payload, vec![9u8; 100]);
            assert!(got[0].truncated);
            batch.payload_mut(0).unwrap()[0] = 1;
            assert_eq!(batch.get(0).unwrap().payload[0], 1);
        })
        .unwrap();
    }

    #[test]
    fn socket_options_take_and_errors_say_what_failed() {
        require_root();
        run_in_new_netns(|| {
            let a = UdpSocket::bind(LOCALHOST).unwrap();
            a.set_ttl(8).unwrap();
            a.set_tos(0xb8).unwrap();
            a.set_dont_fragment(true).unwrap();
            a.set_dont_fragment(false).unwrap();
            assert!(a.set_gro(false).unwrap());
            assert!(a.recv_buffer_size().unwrap() >= 4 << 20, "root forces the size past rmem_max");
            assert!(a.send_buffer_size().unwrap() >= 4 << 20);
            assert_eq!(a.set_ttl(u32::MAX).unwrap_err().kind(), io::ErrorKind::InvalidInput);

            let taken = a.local_addr().unwrap();
            let err =
                UdpSocket::bind_with(taken, UdpOptions { reuse_addr: false, ..UdpOptions::default() }).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
            assert!(err.to_string().starts_with(&format!("bind on {taken}: ")), "{err}");
        })
        .unwrap();
    }
}
