//! TAP devices through `/dev/net/tun`: create one, or attach to an existing
//! one, by name; read and write whole Ethernet frames.
//!
//! Opened with `IFF_TAP | IFF_NO_PI`: no packet-information prefix. With
//! [`TapOptions::vnet_hdr`], `IFF_VNET_HDR` puts a virtio-net header
//! ([`wire::virtio_net`](crate::wire::virtio_net)) in front of every frame,
//! in both directions. Its length is [`TapOptions::vnet_hdr_len`]: by
//! default the 10-byte legacy `struct virtio_net_hdr` (which every kernel and
//! `AF_PACKET` also speak, and which leaves the IP header 8-byte aligned
//! after a 14-byte Ethernet header), or 12 for `struct virtio_net_hdr_v1`.
//! Its fields are in the host's byte order (little-endian on x86-64 and
//! aarch64, as `wire::virtio_net` reads them).
//!
//! With the header on, [`Tap::set_offload`] lets the kernel hand over TSO
//! and USO superframes (up to 64 KiB, one header for many segments) and
//! frames with partial checksums, which [`gso`](crate::gso) segments and
//! completes. A writer sends a header with every frame: all zeros
//! ([`Tap::write_frame`]) for an ordinary frame with complete checksums.
//!
//! With [`TapOptions::queues`] > 1 the device is multi-queue
//! (`IFF_MULTI_QUEUE`): [`Tap::open_queues`] returns one `Tap` per queue, and
//! the kernel spreads flows over them by hash, one reader thread per queue.
//!
//! A TAP created here is not persistent: it disappears when its last
//! descriptor closes. Attaching to a persistent one (`ip tuntap add mode tap
//! name NAME [multi_queue]`) works if its multi-queue flag matches.
//!
//! What this module does not do: TUN (L3) devices, addresses or routes,
//! persistence, or moving the device to another namespace. Interface calls
//! ([`Tap::set_up`], [`Tap::mac`], ...) act in the calling thread's namespace.

use std::ffi::{c_int, c_uint, c_ulong};
use std::fmt;
use std::io::{self, IoSlice};
use std::ops::{BitAnd, BitOr, BitOrAssign, Sub};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::iface::{self, IfReq, IfReqIoctl};
use super::{cvt_size, invalid_input, last_error};
use crate::wire::virtio_net;
use crate::wire::EthernetAddress;

/// How to open a TAP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapOptions {
    /// `IFF_VNET_HDR`: a virtio-net header in front of every frame. Needed
    /// for offloads. Default off.
    pub vnet_hdr: bool,
    /// The header's length with `vnet_hdr`: [`virtio_net::HEADER_LEN`] (10,
    /// the default), [`virtio_net::HEADER_LEN_V1`] (12) or
    /// [`virtio_net::HEADER_LEN_TUNNEL`] (24, for UDP-tunnel offloads).
    pub vnet_hdr_len: usize,
    /// Queues: 1 (the default) for a single-queue device; more sets
    /// `IFF_MULTI_QUEUE`.
    pub queues: usize,
    /// Open the descriptors with `O_NONBLOCK`. Default off.
    pub nonblocking: bool,
}

impl Default for TapOptions {
    fn default() -> TapOptions {
        TapOptions { vnet_hdr: false, vnet_hdr_len: virtio_net::HEADER_LEN, queues: 1, nonblocking: false }
    }
}

/// Offloads of a TAP with a virtio-net header (`TUN_F_*`): what the kernel
/// may hand over unfinished, and what this side promises to finish.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Offloads(u32);

impl Offloads {
    /// Nothing: every frame is complete and at most one MTU.
    pub const NONE: Offloads = Offloads(0);
    /// `TUN_F_CSUM`: partial checksums (`NEEDS_CSUM`). Every other offload
    /// needs it.
    pub const CSUM: Offloads = Offloads(libc::TUN_F_CSUM);
    /// `TUN_F_TSO4`: TCP over IPv4 superframes.
    pub const TSO4: Offloads = Offloads(libc::TUN_F_TSO4);
    /// `TUN_F_TSO6`: TCP over IPv6 superframes.
    pub const TSO6: Offloads = Offloads(libc::TUN_F_TSO6);
    /// `TUN_F_TSO_ECN`: TSO superframes with CWR set (needs TSO4 or TSO6).
    pub const TSO_ECN: Offloads = Offloads(libc::TUN_F_TSO_ECN);
    /// `TUN_F_USO4`: UDP segmentation over IPv4 (Linux 6.2; the kernel takes
    /// USO4 and USO6 only together).
    pub const USO4: Offloads = Offloads(libc::TUN_F_USO4);
    /// `TUN_F_USO6`: UDP segmentation over IPv6 (Linux 6.2).
    pub const USO6: Offloads = Offloads(libc::TUN_F_USO6);
    /// Everything above.
    pub const ALL: Offloads = Offloads(
        libc::TUN_F_CSUM
            | libc::TUN_F_TSO4
            | libc::TUN_F_TSO6
            | libc::TUN_F_TSO_ECN
            | libc::TUN_F_USO4
            | libc::TUN_F_USO6,
    );

    /// `TUN_F_UDP_TUNNEL_GSO` (Linux 6.17): superframes encapsulated in UDP
    /// (VXLAN and the like), with a [`virtio_net::HEADER_LEN_TUNNEL`]-byte
    /// header that says where the outer and inner headers are. Not in
    /// [`Offloads::ALL`]: it is for a TAP that carries tunnel traffic.
    pub const UDP_TUNNEL_GSO: Offloads = Offloads(0x080);
    /// `TUN_F_UDP_TUNNEL_GSO_CSUM`: and with the outer UDP checksum computed
    /// per segment.
    pub const UDP_TUNNEL_GSO_CSUM: Offloads = Offloads(0x100);

    const TSO: Offloads = Offloads(libc::TUN_F_TSO4 | libc::TUN_F_TSO6);
    const USO: Offloads = Offloads(libc::TUN_F_USO4 | libc::TUN_F_USO6);

    /// The raw `TUN_F_*` bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// From raw `TUN_F_*` bits; bits without a name here are dropped.
    pub const fn from_bits_truncate(bits: u32) -> Offloads {
        Offloads(bits & (Offloads::ALL.0 | Offloads::UDP_TUNNEL_GSO.0 | Offloads::UDP_TUNNEL_GSO_CSUM.0))
    }

    pub const fn contains(self, other: Offloads) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn intersects(self, other: Offloads) -> bool {
        self.0 & other.0 != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    const NAMES: [(Offloads, &'static str); 8] = [
        (Offloads::CSUM, "csum"),
        (Offloads::TSO4, "tso4"),
        (Offloads::TSO6, "tso6"),
        (Offloads::TSO_ECN, "tso_ecn"),
        (Offloads::USO4, "uso4"),
        (Offloads::USO6, "uso6"),
        (Offloads::UDP_TUNNEL_GSO, "udp_tunnel_gso"),
        (Offloads::UDP_TUNNEL_GSO_CSUM, "udp_tunnel_gso_csum"),
    ];
}

impl BitOr for Offloads {
    type Output = Offloads;

    fn bitor(self, rhs: Offloads) -> Offloads {
        Offloads(self.0 | rhs.0)
    }
}

impl BitOrAssign for Offloads {
    fn bitor_assign(&mut self, rhs: Offloads) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for Offloads {
    type Output = Offloads;

    fn bitand(self, rhs: Offloads) -> Offloads {
        Offloads(self.0 & rhs.0)
    }
}

impl Sub for Offloads {
    type Output = Offloads;

    fn sub(self, rhs: Offloads) -> Offloads {
        Offloads(self.0 & !rhs.0)
    }
}

/// `csum|tso4|tso6`, or `none`.
impl fmt::Display for Offloads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let mut first = true;
        for (flag, name) in Offloads::NAMES {
            if self.contains(flag) {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Offloads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Offloads({self})")
    }
}

/// The header written in front of a frame that needs nothing: all zeros.
static ZERO_VNET_HDR: [u8; virtio_net::HEADER_LEN_TUNNEL] = [0; virtio_net::HEADER_LEN_TUNNEL];

/// One queue of a TAP device.
#[derive(Debug)]
pub struct Tap {
    fd: OwnedFd,
    name: String,
    vnet_hdr_len: usize,
    multi_queue: bool,
}

impl Tap {
    /// Creates the TAP `name`, or attaches to it if it exists, and returns
    /// its (first) queue. `name` may be a template such as `tap%d`; then
    /// [`Tap::name`] says what the kernel chose. With `options.queues` > 1
    /// the device is multi-queue and this opens one queue of it; see
    /// [`Tap::open_queues`] for all of them.
    pub fn open(name: &str, options: TapOptions) -> io::Result<Tap> {
        check_options(name, &options)?;
        open_queue(name, &options)
    }

    /// Opens `options.queues` queues of the multi-queue TAP `name` (one if
    /// `queues` is 1), creating the device with the first.
    pub fn open_queues(name: &str, options: TapOptions) -> io::Result<Vec<Tap>> {
        check_options(name, &options)?;
        let first = open_queue(name, &options)?;
        let final_name = first.name.clone();
        let mut queues = Vec::with_capacity(options.queues);
        queues.push(first);
        for _ in 1..options.queues {
            queues.push(open_queue(&final_name, &options)?);
        }
        Ok(queues)
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The virtio-net header's length in front of every frame: 0 without
    /// `IFF_VNET_HDR`, else 10, 12 or 24.
    pub fn vnet_hdr_len(&self) -> usize {
        self.vnet_hdr_len
    }

    /// Whether the device is multi-queue.
    pub fn is_multi_queue(&self) -> bool {
        self.multi_queue
    }

    /// Asks for `wanted` offloads (`TUNSETOFFLOAD`, for the whole device)
    /// and returns the set the kernel took. Kernels before 6.2 refuse USO:
    /// then the rest is asked again without it, and the answer lacks
    /// [`Offloads::USO4`] and [`Offloads::USO6`].
    ///
    /// Refused before any call (`InvalidInput`): offloads on a TAP without a
    /// virtio-net header (the kernel could not say which frames are
    /// superframes); any offload without [`Offloads::CSUM`]; only one of
    /// USO4 and USO6; `TSO_ECN` without TSO. `Offloads::NONE` turns all off.
    pub fn set_offload(&self, wanted: Offloads) -> io::Result<Offloads> {
        let target = &self.name;
        if !wanted.is_empty() && self.vnet_hdr_len == 0 {
            return Err(invalid_input(
                "TUNSETOFFLOAD",
                target,
                "offloads need a virtio-net header: open the TAP with TapOptions { vnet_hdr: true, .. }",
            ));
        }
        if !wanted.is_empty() && !wanted.contains(Offloads::CSUM) {
            return Err(invalid_input("TUNSETOFFLOAD", target, "every offload needs csum"));
        }
        if wanted.intersects(Offloads::USO) && !wanted.contains(Offloads::USO) {
            return Err(invalid_input("TUNSETOFFLOAD", target, "the kernel takes uso4 and uso6 only together"));
        }
        if wanted.contains(Offloads::TSO_ECN) && !wanted.intersects(Offloads::TSO) {
            return Err(invalid_input("TUNSETOFFLOAD", target, "tso_ecn needs tso4 or tso6"));
        }
        if wanted.contains(Offloads::UDP_TUNNEL_GSO) && self.vnet_hdr_len != virtio_net::HEADER_LEN_TUNNEL {
            return Err(invalid_input("TUNSETOFFLOAD", target, "udp_tunnel_gso needs the 24-byte virtio-net header"));
        }
        if wanted.contains(Offloads::UDP_TUNNEL_GSO_CSUM) && !wanted.contains(Offloads::UDP_TUNNEL_GSO) {
            return Err(invalid_input("TUNSETOFFLOAD", target, "udp_tunnel_gso_csum needs udp_tunnel_gso"));
        }
        match self.tunsetoffload(wanted) {
            Ok(()) => Ok(wanted),
            Err(err) if err.raw_os_error() == Some(libc::EINVAL) && wanted.intersects(Offloads::USO) => {
                // An older kernel: everything but USO.
                let without_uso = wanted - Offloads::USO;
                self.tunsetoffload(without_uso).map_err(|err| super::context("TUNSETOFFLOAD", target, err))?;
                Ok(without_uso)
            }
            Err(err) => Err(super::context("TUNSETOFFLOAD", target, err)),
        }
    }

    fn tunsetoffload(&self, offloads: Offloads) -> io::Result<()> {
        // SAFETY: TUNSETOFFLOAD takes its argument by value (an unsigned
        // long of TUN_F_* bits) and reads no memory of this process.
        let ret =
            unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::TUNSETOFFLOAD as libc::Ioctl, offloads.bits() as c_ulong) };
        super::cvt(ret).map(drop)
    }

    /// Sets or clears `O_NONBLOCK`: a read with nothing queued then fails
    /// with `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        super::set_nonblocking(self.fd.as_fd(), nonblocking, &self.name)
    }

    /// Brings the device up (`IFF_UP`), in the calling thread's namespace.
    pub fn set_up(&self) -> io::Result<()> {
        iface::set_up(&self.name)
    }

    /// Sets the device's MTU.
    pub fn set_mtu(&self, mtu: u32) -> io::Result<()> {
        iface::set_mtu(&self.name, mtu)
    }

    /// The device's MTU.
    pub fn mtu(&self) -> io::Result<u32> {
        iface::mtu(&self.name)
    }

    /// The device's MAC address (the kernel picks a random local one).
    pub fn mac(&self) -> io::Result<EthernetAddress> {
        iface::mac(&self.name)
    }

    /// The device's interface index.
    pub fn ifindex(&self) -> io::Result<u32> {
        iface::ifindex(&self.name)
    }

    /// Reads one frame (with its virtio-net header in front if the TAP has
    /// one) and returns its length. A buffer shorter than the frame gets the
    /// frame's head and the rest is lost: give 65 550 bytes (64 KiB frame,
    /// header, a VLAN tag) with offloads on, MTU + 14 + header + 4 without.
    /// Bare OS errors: `WouldBlock` on a nonblocking TAP with nothing queued.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call.
        let ret = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        cvt_size(ret)
    }

    /// Writes one frame, exactly as given (with its virtio-net header in
    /// front if the TAP has one), and returns the bytes written. Bare OS
    /// errors: `EINVAL` for a header the kernel refuses, `EIO` while the
    /// device is down.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the call.
        let ret = unsafe { libc::write(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        cvt_size(ret)
    }

    /// Writes one frame gathered from several slices (`writev`): for
    /// example a virtio-net header built on the stack and a frame in a
    /// receive buffer. Returns the bytes written.
    pub fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let count = bufs.len().min(c_int::MAX as usize) as c_int;
        // SAFETY: IoSlice is guaranteed ABI-compatible with struct iovec on
        // Unix, and each one borrows memory valid for reads for the call.
        let ret = unsafe { libc::writev(self.fd.as_raw_fd(), bufs.as_ptr().cast::<libc::iovec>(), count) };
        cvt_size(ret)
    }

    /// Writes an ordinary Ethernet frame: with a virtio-net header on the
    /// TAP, an all-zero header (no offload, checksums complete) goes in
    /// front without copying the frame. Returns the frame bytes written.
    pub fn write_frame(&self, frame: &[u8]) -> io::Result<usize> {
        if self.vnet_hdr_len == 0 {
            return self.write(frame);
        }
        let header = &ZERO_VNET_HDR[..self.vnet_hdr_len];
        let written = self.write_vectored(&[IoSlice::new(header), IoSlice::new(frame)])?;
        Ok(written.saturating_sub(self.vnet_hdr_len))
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn check_options(name: &str, options: &TapOptions) -> io::Result<()> {
    iface::check_name(name, "TUNSETIFF")?;
    if options.queues == 0 {
        return Err(invalid_input("TUNSETIFF", name, "a TAP has at least one queue"));
    }
    if options.vnet_hdr
        && ![virtio_net::HEADER_LEN, virtio_net::HEADER_LEN_V1, virtio_net::HEADER_LEN_TUNNEL]
            .contains(&options.vnet_hdr_len)
    {
        return Err(invalid_input("TUNSETVNETHDRSZ", name, "the virtio-net header is 10, 12 or 24 bytes"));
    }
    Ok(())
}

/// Opens `/dev/net/tun` and attaches it to `name` as one queue.
fn open_queue(name: &str, options: &TapOptions) -> io::Result<Tap> {
    let mut oflags = libc::O_RDWR | libc::O_CLOEXEC;
    if options.nonblocking {
        oflags |= libc::O_NONBLOCK;
    }
    // SAFETY: the path is a NUL-terminated C string literal.
    let raw = unsafe { libc::open(c"/dev/net/tun".as_ptr(), oflags) };
    if raw < 0 {
        return Err(last_error("open /dev/net/tun", name));
    }
    // SAFETY: `raw` was just returned by open() and is owned by no one else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };

    let multi_queue = options.queues > 1;
    let mut flags = libc::IFF_TAP | libc::IFF_NO_PI;
    if options.vnet_hdr {
        flags |= libc::IFF_VNET_HDR;
    }
    if multi_queue {
        flags |= libc::IFF_MULTI_QUEUE;
    }
    let mut req = IfReq::new(name, "TUNSETIFF")?;
    req.data.flags = flags as libc::c_short;
    iface::ioctl_ifreq(fd.as_fd(), IfReqIoctl::TunSetIff, &mut req)?;
    let final_name = req.name();

    let vnet_hdr_len = if options.vnet_hdr {
        let size = options.vnet_hdr_len as c_int;
        // SAFETY: TUNSETVNETHDRSZ reads one int through the pointer, which
        // points to a live c_int.
        let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETVNETHDRSZ as libc::Ioctl, &size as *const c_int) };
        if ret < 0 {
            return Err(last_error("TUNSETVNETHDRSZ", &final_name));
        }
        options.vnet_hdr_len
    } else {
        0
    };
    Ok(Tap { fd, name: final_name, vnet_hdr_len, multi_queue })
}

/// The features this kernel's tun driver offers (`TUNGETFEATURES`):
/// `IFF_*` bits such as `IFF_VNET_HDR`, `IFF_MULTI_QUEUE`, `IFF_NAPI`.
pub fn tun_features() -> io::Result<c_uint> {
    // SAFETY: the path is a NUL-terminated C string literal.
    let raw = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if raw < 0 {
        return Err(last_error("open /dev/net/tun", "/dev/net/tun"));
    }
    // SAFETY: `raw` was just returned by open() and is owned by no one else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut features: c_uint = 0;
    // SAFETY: TUNGETFEATURES writes one unsigned int through the pointer,
    // which points to a live c_uint.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNGETFEATURES as libc::Ioctl, &mut features as *mut c_uint) };
    if ret < 0 {
        return Err(last_error("TUNGETFEATURES", "/dev/net/tun"));
    }
    Ok(features)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::sys::netns::run_in_new_netns;
    use crate::sys::poll::{poll, Events, PollFd};
    use crate::sys::udp::{Transmit, UdpSocket};
    use crate::sys::{require_root, set_ipv4_addr, wait_running};
    use crate::wire::ethernet::{self, VlanTags};
    use crate::wire::{arp, ipv4, EtherType, IpProtocol};

    const TAP_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const PEER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const PEER_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x5e, 0x00, 0x00, 0x02]);

    /// An Ethernet frame carrying an ARP packet, built with `wire`.
    fn arp_frame(dst: EthernetAddress, arp: arp::Repr) -> Vec<u8> {
        let eth = ethernet::Repr {
            src_addr: arp.source_hardware_addr,
            dst_addr: dst,
            vlan_tags: VlanTags::None,
            ethertype: EtherType::Arp,
        };
        let mut frame = vec![0; eth.buffer_len() + arp.buffer_len()];
        eth.emit(&mut ethernet::Frame::new_unchecked(&mut frame[..])).unwrap();
        arp.emit(&mut arp::Packet::new_unchecked(&mut frame[eth.buffer_len()..])).unwrap();
        frame
    }

    /// The ARP packet in a frame, if it is one.
    fn parse_arp(frame: &[u8]) -> Option<arp::Repr> {
        let eth = ethernet::Frame::new_checked(frame).ok()?;
        if eth.ethertype() != EtherType::Arp {
            return None;
        }
        arp::Repr::parse(&arp::Packet::new_checked(eth.payload()).ok()?).ok()
    }

    /// Reads frames from a nonblocking TAP until `pick(header, frame)` says
    /// yes, for at most three seconds. Frames the kernel sends on its own
    /// (IPv6 router solicitations, MLD reports) go to `pick` too.
    fn read_until<T>(tap: &Tap, mut pick: impl FnMut(&[u8], &[u8]) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut buf = vec![0u8; 65_550];
        while Instant::now() < deadline {
            let mut fds = [PollFd::new(tap, Events::IN)];
            poll(&mut fds, Some(Duration::from_millis(100))).unwrap();
            loop {
                match tap.read(&mut buf) {
                    Ok(n) => {
                        let (header, frame) = buf[..n].split_at(tap.vnet_hdr_len());
                        if let Some(found) = pick(header, frame) {
                            return Some(found);
                        }
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) => panic!("read from {}: {err}", tap.name()),
                }
            }
        }
        None
    }

    /// Opens a TAP in a fresh namespace, gives it 192.0.2.1/24, asks the
    /// kernel for its MAC with an ARP request written to the TAP, and reads
    /// the reply. Returns the offloads the kernel took.
    fn kernel_answers_arp_through_the_tap(options: TapOptions) -> Offloads {
        require_root();
        run_in_new_netns(move || {
            let tap = Tap::open("whtap0", options).unwrap();
            assert_eq!(tap.name(), "whtap0");
            assert_eq!(tap.vnet_hdr_len(), if options.vnet_hdr { options.vnet_hdr_len } else { 0 });
            let accepted = if options.vnet_hdr { tap.set_offload(Offloads::ALL).unwrap() } else { Offloads::NONE };
            tap.set_nonblocking(true).unwrap();
            tap.set_up().unwrap();
            assert!(wait_running(tap.name(), Duration::from_secs(10)).unwrap());
            set_ipv4_addr(tap.name(), TAP_IP, 24).unwrap();
            let tap_mac = tap.mac().unwrap();
            assert!(tap_mac.is_unicast() && tap_mac.is_local(), "{tap_mac}");
            assert_eq!(tap.mtu().unwrap(), 1500);
            assert!(tap.ifindex().unwrap() > 1);

            let request = arp_frame(
                EthernetAddress::BROADCAST,
                arp::Repr {
                    operation: arp::Operation::Request,
                    source_hardware_addr: PEER_MAC,
                    source_protocol_addr: PEER_IP,
                    target_hardware_addr: EthernetAddress([0; 6]),
                    target_protocol_addr: TAP_IP,
                },
            );
            assert_eq!(tap.write_frame(&request).unwrap(), request.len());

            let (header, reply) = read_until(&tap, |header, frame| {
                let reply = parse_arp(frame).filter(|a| a.operation == arp::Operation::Reply)?;
                Some((header.to_vec(), reply))
            })
            .expect("the kernel answers the ARP request");
            assert_eq!(reply.source_hardware_addr, tap_mac);
            assert_eq!(reply.source_protocol_addr, TAP_IP);
            assert_eq!(reply.target_hardware_addr, PEER_MAC);
            assert_eq!(reply.target_protocol_addr, PEER_IP);
            if options.vnet_hdr {
                let header = virtio_net::Repr::parse(&virtio_net::Header::new_checked(&header[..]).unwrap()).unwrap();
                assert_eq!(header, virtio_net::Repr::default(), "an ARP reply needs no offload");
            }
            accepted
        })
        .unwrap()
    }

    #[test]
    fn kernel_answers_arp_without_a_vnet_header() {
        assert_eq!(kernel_answers_arp_through_the_tap(TapOptions::default()), Offloads::NONE);
    }

    #[test]
    fn kernel_answers_arp_with_the_legacy_vnet_header() {
        let accepted = kernel_answers_arp_through_the_tap(TapOptions { vnet_hdr: true, ..TapOptions::default() });
        eprintln!("TUNSETOFFLOAD took {accepted} (10-byte header)");
        assert!(accepted.contains(Offloads::CSUM | Offloads::TSO4 | Offloads::TSO6 | Offloads::TSO_ECN));
    }

    #[test]
    fn kernel_answers_arp_with_the_v1_vnet_header() {
        let options = TapOptions { vnet_hdr: true, vnet_hdr_len: virtio_net::HEADER_LEN_V1, ..TapOptions::default() };
        let accepted = kernel_answers_arp_through_the_tap(options);
        eprintln!("TUNSETOFFLOAD took {accepted} (12-byte header)");
        assert!(accepted.contains(Offloads::CSUM | Offloads::TSO4 | Offloads::TSO6));
    }

    /// A 4000-byte UDP GSO send (4 × 1000) routed out of the TAP: USO is
    /// taken, so it arrives as one superframe with a UDP_L4 header and a
    /// partial checksum.
    #[test]
    fn a_uso_superframe_comes_out_whole() {
        require_root();
        run_in_new_netns(|| {
            let options = TapOptions { vnet_hdr: true, nonblocking: true, ..TapOptions::default() };
            let tap = Tap::open("whtap0", options).unwrap();
            let accepted = tap.set_offload(Offloads::ALL).unwrap();
            assert!(accepted.contains(Offloads::USO4), "USO is in every kernel since 6.2; took {accepted}");
            tap.set_up().unwrap();
            assert!(wait_running(tap.name(), Duration::from_secs(10)).unwrap());
            set_ipv4_addr(tap.name(), TAP_IP, 24).unwrap();
            let tap_mac = tap.mac().unwrap();

            let sock = UdpSocket::bind(SocketAddr::from((TAP_IP, 0))).unwrap();
            assert!(sock.gso_supported(), "UDP GSO is in every kernel since 4.18");
            let payload = [0xab; 4000];
            let dst = SocketAddr::from((PEER_IP, 4789));
            let sent =
                sock.send_batch([Transmit { segment_size: Some(1000), ..Transmit::new(dst, &payload) }]).unwrap();
            assert_eq!(sent, 1);

            // The kernel asks for 192.0.2.2 first; answer, then collect.
            let mut frames: Vec<(virtio_net::Repr, usize)> = Vec::new();
            let mut udp_bytes = 0;
            read_until(&tap, |header, frame| {
                if let Some(ask) = parse_arp(frame).filter(|a| a.operation == arp::Operation::Request) {
                    assert_eq!(ask.target_protocol_addr, PEER_IP);
                    let answer = arp_frame(
                        tap_mac,
                        arp::Repr {
                            operation: arp::Operation::Reply,
                            source_hardware_addr: PEER_MAC,
                            source_protocol_addr: PEER_IP,
                            target_hardware_addr: tap_mac,
                            target_protocol_addr: TAP_IP,
                        },
                    );
                    tap.write_frame(&answer).unwrap();
                    return None;
                }
                let eth = ethernet::Frame::new_checked(frame).ok()?;
                if eth.ethertype() != EtherType::Ipv4 || eth.dst_addr() != PEER_MAC {
                    return None;
                }
                let ip = ipv4::Packet::new_checked(eth.payload()).ok()?;
                assert_eq!(ip.next_header(), IpProtocol::Udp);
                let header = virtio_net::Repr::parse(&virtio_net::Header::new_checked(header).unwrap()).unwrap();
                frames.push((header, frame.len()));
                udp_bytes += ip.payload().len() - 8;
                (udp_bytes >= payload.len()).then_some(())
            })
            .expect("the datagrams come out of the TAP");

            assert_eq!(frames.len(), 1, "one superframe: {frames:?}");
            let (header, len) = frames[0];
            assert_eq!(header.gso, virtio_net::Gso::UdpL4 { size: 1000 });
            assert_eq!(header.checksum, virtio_net::Checksum::Partial { start: 14 + 20, offset: 6 });
            assert_eq!(len, 14 + 20 + 8 + 4000);
        })
        .unwrap();
    }

    #[test]
    fn every_queue_of_a_multi_queue_tap_opens() {
        require_root();
        run_in_new_netns(|| {
            let options = TapOptions { queues: 3, vnet_hdr: true, ..TapOptions::default() };
            let queues = Tap::open_queues("whmq%d", options).unwrap();
            assert_eq!(queues.len(), 3);
            for queue in &queues {
                assert_eq!(queue.name(), "whmq0", "the template is resolved once");
                assert!(queue.is_multi_queue());
            }
            assert_eq!(
                queues[0].set_offload(Offloads::CSUM | Offloads::TSO4).unwrap(),
                Offloads::CSUM | Offloads::TSO4
            );

            let err = Tap::open("whmq0", TapOptions::default()).unwrap_err();
            assert_eq!(err.raw_os_error(), None, "wrapped with context");
            let inner = crate::sys::Error::of(&err).unwrap();
            assert_eq!((inner.op(), inner.raw_os_error()), ("TUNSETIFF", Some(libc::EINVAL)));
            assert!(err.to_string().contains("multi_queue"), "{err}");
        })
        .unwrap();
    }

    #[test]
    fn a_second_reader_of_a_single_queue_tap_is_refused() {
        require_root();
        run_in_new_netns(|| {
            let _first = Tap::open("whtap0", TapOptions::default()).unwrap();
            let err = Tap::open("whtap0", TapOptions::default()).unwrap_err();
            assert_eq!(crate::sys::Error::of(&err).unwrap().raw_os_error(), Some(libc::EBUSY));
            assert!(err.to_string().starts_with("TUNSETIFF on whtap0: "), "{err}");
            assert!(err.to_string().contains("already attached"), "{err}");

            let err = Tap::open("lo", TapOptions::default()).unwrap_err();
            assert!(err.to_string().contains("not a TAP"), "{err}");
        })
        .unwrap();
    }

    #[test]
    fn offload_requests_the_kernel_would_refuse_are_refused_first() {
        require_root();
        run_in_new_netns(|| {
            let plain = Tap::open("whtap0", TapOptions::default()).unwrap();
            let err = plain.set_offload(Offloads::CSUM).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(err.to_string().contains("vnet_hdr: true"), "{err}");
            assert_eq!(plain.set_offload(Offloads::NONE).unwrap(), Offloads::NONE);

            let tap = Tap::open("whtap1", TapOptions { vnet_hdr: true, ..TapOptions::default() }).unwrap();
            for bad in [Offloads::TSO4, Offloads::CSUM | Offloads::USO4, Offloads::CSUM | Offloads::TSO_ECN] {
                let err = tap.set_offload(bad).unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad}: {err}");
            }
            assert_eq!(tap.set_offload(Offloads::CSUM).unwrap(), Offloads::CSUM);
        })
        .unwrap();
    }

    #[test]
    fn udp_tunnel_offloads_need_the_tunnel_header() {
        require_root();
        run_in_new_netns(|| {
            let tunnel = Offloads::CSUM | Offloads::TSO4 | Offloads::TSO6 | Offloads::UDP_TUNNEL_GSO;
            let short = Tap::open("whtap0", TapOptions { vnet_hdr: true, ..TapOptions::default() }).unwrap();
            let err = short.set_offload(tunnel).unwrap_err();
            assert!(err.to_string().contains("24-byte"), "{err}");
            let options =
                TapOptions { vnet_hdr: true, vnet_hdr_len: virtio_net::HEADER_LEN_TUNNEL, ..TapOptions::default() };
            let tap = Tap::open("whtap1", options).unwrap();
            assert_eq!(tap.vnet_hdr_len(), virtio_net::HEADER_LEN_TUNNEL);
            let err = tap.set_offload(Offloads::CSUM | Offloads::UDP_TUNNEL_GSO_CSUM).unwrap_err();
            assert!(err.to_string().contains("needs udp_tunnel_gso"), "{err}");
            // This kernel (6.17 or later) takes them.
            assert_eq!(tap.set_offload(tunnel).unwrap(), tunnel);
            let with_csum = tunnel | Offloads::UDP_TUNNEL_GSO_CSUM;
            assert_eq!(tap.set_offload(with_csum).unwrap(), with_csum);
            assert_eq!(with_csum.to_string(), "csum|tso4|tso6|udp_tunnel_gso|udp_tunnel_gso_csum");
        })
        .unwrap();
    }

    #[test]
    fn bad_options_are_refused_before_opening() {
        let err = Tap::open("whtap0", TapOptions { queues: 0, ..TapOptions::default() }).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let options = TapOptions { vnet_hdr: true, vnet_hdr_len: 11, ..TapOptions::default() };
        assert!(Tap::open("whtap0", options).unwrap_err().to_string().contains("10, 12 or 24"));
        assert!(Tap::open("a/b", TapOptions::default()).is_err());
    }

    #[test]
    fn offloads_print_their_names() {
        assert_eq!(Offloads::ALL.to_string(), "csum|tso4|tso6|tso_ecn|uso4|uso6");
        assert_eq!(Offloads::NONE.to_string(), "none");
        assert_eq!(format!("{:?}", Offloads::CSUM | Offloads::USO6), "Offloads(csum|uso6)");
        let every = Offloads::ALL | Offloads::UDP_TUNNEL_GSO | Offloads::UDP_TUNNEL_GSO_CSUM;
        assert_eq!(Offloads::from_bits_truncate(0xffff_ffff), every);
        assert_eq!((Offloads::ALL - Offloads::USO4 - Offloads::USO6) & Offloads::USO4, Offloads::NONE);
    }

    #[test]
    fn the_tun_driver_offers_vnet_headers_and_queues() {
        require_root();
        let features = tun_features().unwrap();
        assert!(features & libc::IFF_VNET_HDR as c_uint != 0);
        assert!(features & libc::IFF_MULTI_QUEUE as c_uint != 0);
    }
}
