//! Conversions between [`SocketAddr`] and the kernel's `sockaddr_in` /
//! `sockaddr_in6`, in a storage that fits either. Private to `sys`.
//!
//! What this module does not do: any other address family (`AF_PACKET`
//! addresses live in [`packet`](super::packet)).

use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Storage for an IPv4 or IPv6 socket address, as the kernel reads and
/// writes it.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) union RawSockAddr {
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
}

impl RawSockAddr {
    /// All zeros: family `AF_UNSPEC`.
    pub(crate) fn zeroed() -> RawSockAddr {
        // SAFETY: both members are plain integers and byte arrays, for which
        // all zeros is a valid value.
        unsafe { mem::zeroed() }
    }

    /// The address in the form a socket of the given family expects: an IPv4
    /// address sent from an IPv6 socket is written IPv4-mapped
    /// (`::ffff:a.b.c.d`). Returns the storage and the length to pass.
    pub(crate) fn new(addr: SocketAddr, socket_is_v6: bool) -> (RawSockAddr, libc::socklen_t) {
        let mut raw = RawSockAddr::zeroed();
        match addr {
            SocketAddr::V4(v4) if !socket_is_v6 => {
                raw.v4 = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: v4.port().to_be(),
                    sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.ip().octets()) },
                    sin_zero: [0; 8],
                };
                (raw, mem::size_of::<libc::sockaddr_in>() as libc::socklen_t)
            }
            SocketAddr::V4(v4) => {
                let mapped = SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0);
                raw.v6 = v6_raw(&mapped);
                (raw, mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t)
            }
            SocketAddr::V6(v6) => {
                raw.v6 = v6_raw(&v6);
                (raw, mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t)
            }
        }
    }

    /// The length of the whole storage, to offer the kernel on receive.
    pub(crate) const CAPACITY: libc::socklen_t = mem::size_of::<RawSockAddr>() as libc::socklen_t;

    /// Reads the address the kernel wrote, `len` bytes long. IPv4-mapped
    /// IPv6 addresses come back as IPv4. `None` for another family or a
    /// short length.
    pub(crate) fn decode(&self, len: libc::socklen_t) -> Option<SocketAddr> {
        let len = len as usize;
        // SAFETY: every member starts with the family field, and all bit
        // patterns are valid for these plain-integer structs.
        let family = unsafe { self.v4.sin_family } as libc::c_int;
        match family {
            libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
                // SAFETY: the family says the kernel wrote a sockaddr_in; any
                // bit pattern is a valid sockaddr_in.
                let v4 = unsafe { self.v4 };
                let ip = Ipv4Addr::from(v4.sin_addr.s_addr.to_ne_bytes());
                Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(v4.sin_port))))
            }
            libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
                // SAFETY: as above, for sockaddr_in6.
                let v6 = unsafe { self.v6 };
                let ip = Ipv6Addr::from(v6.sin6_addr.s6_addr);
                let port = u16::from_be(v6.sin6_port);
                Some(match ip.to_ipv4_mapped() {
                    Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
                    None => SocketAddr::V6(SocketAddrV6::new(ip, port, v6.sin6_flowinfo, v6.sin6_scope_id)),
                })
            }
            _ => None,
        }
    }

    pub(crate) fn as_ptr(&self) -> *const libc::sockaddr {
        (self as *const RawSockAddr).cast()
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        (self as *mut RawSockAddr).cast()
    }
}

impl std::fmt::Debug for RawSockAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawSockAddr")
    }
}

fn v6_raw(addr: &SocketAddrV6) -> libc::sockaddr_in6 {
    libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: addr.port().to_be(),
        sin6_flowinfo: addr.flowinfo(),
        sin6_addr: libc::in6_addr { s6_addr: addr.ip().octets() },
        sin6_scope_id: addr.scope_id(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_families_and_unmaps() {
        let v4: SocketAddr = "192.0.2.1:4789".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:8472".parse().unwrap();
        for (addr, socket_is_v6) in [(v4, false), (v6, true), (v4, true)] {
            let (raw, len) = RawSockAddr::new(addr, socket_is_v6);
            assert_eq!(raw.decode(len), Some(addr), "{addr} from a v6 socket: {socket_is_v6}");
        }
        let (_, len) = RawSockAddr::new(v4, true);
        assert_eq!(len as usize, mem::size_of::<libc::sockaddr_in6>(), "v4 from a v6 socket is mapped");
        assert_eq!(RawSockAddr::zeroed().decode(RawSockAddr::CAPACITY), None);
        let (raw, _) = RawSockAddr::new(v6, true);
        assert_eq!(raw.decode(4), None, "short length");
    }
}
