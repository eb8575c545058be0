//! Interfaces by name, in the calling thread's network namespace: index,
//! MAC address, MTU, bringing a link up, and an IPv4 address (for tests and
//! tools). Each call uses the classic `SIOC*IF*` ioctls on a throwaway
//! `AF_INET` datagram socket.
//!
//! What this module does not do: create or delete links, routes or
//! neighbours, move links between namespaces, or IPv6 addresses — that is
//! netlink, in the control plane. A namespace is per thread: these functions
//! act in the namespace of the thread that calls them.

use std::ffi::{c_char, c_int, c_short};
use std::mem;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};
use std::{fmt, io};

use super::{invalid_input, last_error};
use crate::wire::EthernetAddress;

/// The longest interface name, without its terminating NUL.
pub const MAX_NAME_LEN: usize = libc::IFNAMSIZ - 1;

/// `struct ifreq`: a name and a union of what the request reads or writes.
/// 40 bytes on 64-bit targets, like the kernel's.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct IfReq {
    pub(crate) name: [c_char; libc::IFNAMSIZ],
    pub(crate) data: IfReqData,
}

/// The union inside `struct ifreq`, with the members this crate uses and
/// padding to the kernel's size (its largest member, `struct ifmap`, is 24
/// bytes on 64-bit targets).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) union IfReqData {
    pub(crate) flags: c_short,
    pub(crate) int: c_int,
    pub(crate) addr: libc::sockaddr,
    pad: [u8; 24],
}

impl IfReq {
    /// An all-zero request for the interface `name` (checked: 1 to 15 bytes,
    /// no `/`, `:`, whitespace or NUL). `op` names the caller for the error.
    pub(crate) fn new(name: &str, op: &'static str) -> io::Result<IfReq> {
        check_name(name, op)?;
        // SAFETY: IfReq is plain integers and byte arrays; all zeros is a
        // valid value (an empty name and a zero union).
        let mut req: IfReq = unsafe { mem::zeroed() };
        for (dst, src) in req.name.iter_mut().zip(name.bytes()) {
            *dst = src as c_char;
        }
        Ok(req)
    }

    /// The name in the request, as the kernel left it (TUNSETIFF writes the
    /// final name of a `tap%d` template back).
    pub(crate) fn name(&self) -> String {
        let bytes: Vec<u8> = self.name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Checks an interface name as the kernel's `dev_valid_name` does.
pub(crate) fn check_name(name: &str, op: &'static str) -> io::Result<()> {
    let bad = name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name == "."
        || name == ".."
        || name.bytes().any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace());
    if bad {
        return Err(invalid_input(
            op,
            name,
            "an interface name is 1 to 15 bytes, without '/', ':', whitespace or NUL, and not '.' or '..'",
        ));
    }
    Ok(())
}

/// The ioctls that take a `struct ifreq`. A closed set, so that the safe
/// [`ioctl_ifreq`] cannot be handed a request that reads or writes
/// something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfReqIoctl {
    GetFlags,
    SetFlags,
    GetIndex,
    GetMtu,
    SetMtu,
    GetHwAddr,
    SetAddr,
    SetNetmask,
    /// `TUNSETIFF`, on a `/dev/net/tun` descriptor.
    TunSetIff,
}

impl IfReqIoctl {
    fn request(self) -> libc::Ioctl {
        match self {
            IfReqIoctl::GetFlags => libc::SIOCGIFFLAGS as libc::Ioctl,
            IfReqIoctl::SetFlags => libc::SIOCSIFFLAGS as libc::Ioctl,
            IfReqIoctl::GetIndex => libc::SIOCGIFINDEX as libc::Ioctl,
            IfReqIoctl::GetMtu => libc::SIOCGIFMTU as libc::Ioctl,
            IfReqIoctl::SetMtu => libc::SIOCSIFMTU as libc::Ioctl,
            IfReqIoctl::GetHwAddr => libc::SIOCGIFHWADDR as libc::Ioctl,
            IfReqIoctl::SetAddr => libc::SIOCSIFADDR as libc::Ioctl,
            IfReqIoctl::SetNetmask => libc::SIOCSIFNETMASK as libc::Ioctl,
            IfReqIoctl::TunSetIff => libc::TUNSETIFF as libc::Ioctl,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            IfReqIoctl::GetFlags => "SIOCGIFFLAGS",
            IfReqIoctl::SetFlags => "SIOCSIFFLAGS",
            IfReqIoctl::GetIndex => "SIOCGIFINDEX",
            IfReqIoctl::GetMtu => "SIOCGIFMTU",
            IfReqIoctl::SetMtu => "SIOCSIFMTU",
            IfReqIoctl::GetHwAddr => "SIOCGIFHWADDR",
            IfReqIoctl::SetAddr => "SIOCSIFADDR",
            IfReqIoctl::SetNetmask => "SIOCSIFNETMASK",
            IfReqIoctl::TunSetIff => "TUNSETIFF",
        }
    }
}

impl fmt::Display for IfReqIoctl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs an ifreq ioctl; the error names the ioctl and the interface.
pub(crate) fn ioctl_ifreq(fd: BorrowedFd<'_>, ioctl: IfReqIoctl, req: &mut IfReq) -> io::Result<()> {
    // SAFETY: every request in `IfReqIoctl` reads and writes at most one
    // `struct ifreq`, and `req` is a live, writable IfReq at least as large
    // as the kernel's struct ifreq.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), ioctl.request(), req as *mut IfReq) };
    if ret < 0 {
        let name = req.name();
        Err(last_error(ioctl.name(), &name))
    } else {
        Ok(())
    }
}

/// A throwaway `AF_INET` datagram socket for interface ioctls, in the
/// calling thread's namespace.
fn control_socket(target: &str) -> io::Result<OwnedFd> {
    // SAFETY: socket() has no memory preconditions.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(last_error("socket(AF_INET, SOCK_DGRAM)", target));
    }
    // SAFETY: `fd` was just returned by socket() and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Runs one ifreq ioctl on `name` through a control socket.
fn with_ifreq(name: &str, ioctl: IfReqIoctl, fill: impl FnOnce(&mut IfReq)) -> io::Result<IfReq> {
    let mut req = IfReq::new(name, ioctl.name())?;
    fill(&mut req);
    let sock = control_socket(name)?;
    ioctl_ifreq(sock.as_fd(), ioctl, &mut req)?;
    Ok(req)
}

/// The interface index of `name` (`if_nametoindex`).
pub fn ifindex(name: &str) -> io::Result<u32> {
    let req = with_ifreq(name, IfReqIoctl::GetIndex, |_| {})?;
    // SAFETY: SIOCGIFINDEX wrote `ifr_ifindex`, an int; any value is valid.
    let index = unsafe { req.data.int };
    Ok(index as u32)
}

/// The hardware address of `name` (`SIOCGIFHWADDR`). Links without an
/// Ethernet address (`lo`, a TUN) read as the first six bytes of whatever
/// the kernel reports, usually zeros.
pub fn mac(name: &str) -> io::Result<EthernetAddress> {
    let req = with_ifreq(name, IfReqIoctl::GetHwAddr, |_| {})?;
    // SAFETY: SIOCGIFHWADDR wrote `ifr_hwaddr`, a sockaddr; any bit pattern
    // is a valid sockaddr.
    let data = unsafe { req.data.addr.sa_data };
    let mut bytes = [0u8; 6];
    for (dst, src) in bytes.iter_mut().zip(data.iter()) {
        *dst = *src as u8;
    }
    Ok(EthernetAddress(bytes))
}

/// The MTU of `name`.
pub fn mtu(name: &str) -> io::Result<u32> {
    let req = with_ifreq(name, IfReqIoctl::GetMtu, |_| {})?;
    // SAFETY: SIOCGIFMTU wrote `ifr_mtu`, an int.
    let mtu = unsafe { req.data.int };
    Ok(mtu as u32)
}

/// Sets the MTU of `name`.
pub fn set_mtu(name: &str, mtu: u32) -> io::Result<()> {
    let value = c_int::try_from(mtu).map_err(|_| invalid_input("SIOCSIFMTU", name, "MTU out of range"))?;
    with_ifreq(name, IfReqIoctl::SetMtu, |req| req.data.int = value).map(drop)
}

/// The interface flags of `name` (`IFF_UP`, `IFF_RUNNING`, ...).
pub fn flags(name: &str) -> io::Result<c_short> {
    let req = with_ifreq(name, IfReqIoctl::GetFlags, |_| {})?;
    // SAFETY: SIOCGIFFLAGS wrote `ifr_flags`, a short.
    Ok(unsafe { req.data.flags })
}

/// Brings `name` up (sets `IFF_UP`; a no-op if it is up already).
pub fn set_up(name: &str) -> io::Result<()> {
    let current = flags(name)?;
    let up = libc::IFF_UP as c_short;
    if current & up != 0 {
        return Ok(());
    }
    with_ifreq(name, IfReqIoctl::SetFlags, |req| req.data.flags = current | up).map(drop)
}

/// Whether `name` has `IFF_UP`.
pub fn is_up(name: &str) -> io::Result<bool> {
    Ok(flags(name)? & libc::IFF_UP as c_short != 0)
}

/// Whether `name` is operationally up (`IFF_RUNNING`): up, with carrier,
/// and seen so by the kernel's link watcher, which also starts the
/// device's queueing discipline. Until then frames sent out of it are
/// dropped silently.
pub fn is_running(name: &str) -> io::Result<bool> {
    Ok(flags(name)? & libc::IFF_RUNNING as c_short != 0)
}

/// Waits until `name` [is running](is_running), for at most `timeout`;
/// returns whether it is. The link watcher may lag by a second or more
/// while the kernel is busy (namespaces being torn down, say), so wait for
/// this after bringing a new device up and before sending through it.
///
/// Necessary but not quite sufficient: the link watcher sets `IFF_RUNNING`
/// just before it starts the queueing discipline, and in parallel test
/// runs the first frame sent out of a fresh veth end right after this
/// returned was still dropped (counted as TX dropped). Tests that need the
/// first frame to pass send a probe until one arrives.
pub fn wait_running(name: &str, timeout: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if is_running(name)? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Gives `name` the IPv4 address `addr/prefix_len` (`SIOCSIFADDR` then
/// `SIOCSIFNETMASK`), replacing its primary IPv4 address. For tests and
/// tools; the control plane uses netlink.
pub fn set_ipv4_addr(name: &str, addr: Ipv4Addr, prefix_len: u8) -> io::Result<()> {
    if prefix_len > 32 {
        return Err(invalid_input("SIOCSIFNETMASK", name, "an IPv4 prefix length is 0 to 32"));
    }
    let mask = if prefix_len == 0 { 0 } else { u32::MAX << (32 - prefix_len) };
    with_ifreq(name, IfReqIoctl::SetAddr, |req| req.data.addr = sockaddr_in(addr))?;
    with_ifreq(name, IfReqIoctl::SetNetmask, |req| req.data.addr = sockaddr_in(Ipv4Addr::from(mask))).map(drop)
}

/// An `AF_INET` address with port 0, in the shape of a generic sockaddr.
fn sockaddr_in(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(addr.octets()) },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr are both 16 bytes of plain integers,
    // and the kernel reads a sockaddr_in through the sockaddr of an ifreq.
    unsafe { mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_is_the_kernels_size() {
        #[cfg(target_pointer_width = "64")]
        assert_eq!(mem::size_of::<IfReq>(), 40);
        assert!(mem::size_of::<IfReqData>() >= mem::size_of::<libc::sockaddr>());
    }

    #[test]
    fn bad_names_are_refused_before_any_call() {
        for name in ["", "sixteen-bytes-xx", "a/b", "a:b", "a b", ".", ".."] {
            let err = ifindex(name).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{name:?}");
            assert!(err.to_string().contains("1 to 15 bytes"), "{err}");
        }
        assert!(check_name("tap%d", "test").is_ok(), "templates are names too");
    }

    #[test]
    fn a_missing_interface_says_so() {
        let err = ifindex("whnosuch0").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("SIOCGIFINDEX on whnosuch0: No such device"), "{text}");
        assert!(text.contains("no such interface in this network namespace"), "{text}");
    }

    #[test]
    fn loopback_reads_in_a_fresh_namespace() {
        crate::sys::require_root();
        crate::sys::netns::run_in_new_netns(|| {
            assert_eq!(ifindex("lo").unwrap(), 1);
            assert_eq!(mac("lo").unwrap(), EthernetAddress([0; 6]));
            assert!(is_up("lo").unwrap(), "run_in_new_netns brings lo up");
            assert!(wait_running("lo", Duration::from_secs(5)).unwrap());
            assert_eq!(mtu("lo").unwrap(), 65536);
            set_mtu("lo", 9000).unwrap();
            assert_eq!(mtu("lo").unwrap(), 9000);
            set_ipv4_addr("lo", Ipv4Addr::new(192, 0, 2, 9), 24).unwrap();
            let err = set_ipv4_addr("lo", Ipv4Addr::new(192, 0, 2, 9), 33).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        })
        .unwrap();
    }
}
