//! Telling the kernel that its neighbour entry for a next hop is in use,
//! for traffic that reaches the wire without passing the kernel's
//! neighbour code: rtnetlink `RTM_NEWNEIGH` with `NTF_USE`, which `ip neigh
//! change ADDR dev DEV use` sends too.
//!
//! The kernel confirms an entry, and probes it when it goes stale, only
//! when its own transmissions use it. Frames that a TAP hands to tc and tc
//! redirects to the underlay device never do: the entry stays `STALE`
//! with whatever MAC it had, and a next hop that changes its MAC without a
//! gratuitous ARP is never noticed. Marked in use, the entry walks the
//! kernel's usual way — `STALE`, `DELAY`, `PROBE` (a unicast ARP), and
//! back to `REACHABLE`, or to `FAILED` and a new broadcast resolution.
//!
//! Only existing entries are marked (no `NLM_F_CREATE`). Errors come back
//! asynchronously, as netlink messages: [`NeighbourUse::drain`] reads and
//! counts them.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `nlmsghdr` (16) + `ndmsg` (12) + an `NDA_DST` attribute with an IPv4
/// address (4 + 4).
const REQUEST_LEN: usize = 36;

/// A netlink socket for marking neighbour entries in use.
#[derive(Debug)]
pub struct NeighbourUse {
    fd: OwnedFd,
    seq: u32,
}

impl NeighbourUse {
    /// Opens a nonblocking `NETLINK_ROUTE` socket.
    pub fn open() -> io::Result<NeighbourUse> {
        // SAFETY: plain socket(2); the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(super::last_error("socket(AF_NETLINK, NETLINK_ROUTE)", "neighbour use"));
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        Ok(NeighbourUse { fd: unsafe { OwnedFd::from_raw_fd(fd) }, seq: 0 })
    }

    /// Marks the entry for `addr` on interface `ifindex` in use. The
    /// kernel's answer, if an error, is read later by [`NeighbourUse::drain`].
    pub fn mark_used(&mut self, ifindex: u32, addr: Ipv4Addr) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let request = request(self.seq, ifindex, addr);
        // SAFETY: an all-zero sockaddr_nl is valid; it names the kernel.
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: the buffer and the address are live and their lengths
        // are theirs; the kernel only reads them.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                request.as_ptr().cast(),
                request.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        super::cvt_size(sent).map(|_| ())
    }

    /// Reads what the kernel answered and returns how many answers were
    /// errors (an entry gone since it was read, for one).
    pub fn drain(&self) -> usize {
        let mut errors = 0;
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: the buffer is live and writable for its length.
            let got = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            let Ok(len) = super::cvt_size(got) else { return errors };
            if len == 0 {
                return errors;
            }
            errors += count_errors(&buf[..len]);
        }
    }
}

/// The `RTM_NEWNEIGH` request with `NTF_USE` for `addr` on `ifindex`.
/// Netlink's own fields are in host byte order, the address in network
/// order.
fn request(seq: u32, ifindex: u32, addr: Ipv4Addr) -> [u8; REQUEST_LEN] {
    let mut msg = [0u8; REQUEST_LEN];
    msg[0..4].copy_from_slice(&(REQUEST_LEN as u32).to_ne_bytes());
    msg[4..6].copy_from_slice(&libc::RTM_NEWNEIGH.to_ne_bytes());
    msg[6..8].copy_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    msg[8..12].copy_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid 0: the kernel fills in the socket's.
    // ndmsg: family, two pad bytes, ifindex, state (none), flags, type.
    msg[16] = libc::AF_INET as u8;
    msg[20..24].copy_from_slice(&ifindex.to_ne_bytes());
    msg[26] = libc::NTF_USE;
    // rtattr: length 8, type NDA_DST, the address.
    msg[28..30].copy_from_slice(&8u16.to_ne_bytes());
    msg[30..32].copy_from_slice(&libc::NDA_DST.to_ne_bytes());
    msg[32..36].copy_from_slice(&addr.octets());
    msg
}

/// The `NLMSG_ERROR` messages with a nonzero error in what one read of a
/// netlink socket returned (messages back to back, each padded to 4 bytes).
/// A message whose length is too short to move on, or runs past the
/// buffer, ends the count.
pub fn count_errors(mut buf: &[u8]) -> usize {
    let mut errors = 0;
    while let (Some(len), Some(kind)) = (buf.first_chunk::<4>(), buf.get(4..6)) {
        let len = u32::from_ne_bytes(*len) as usize;
        let kind = u16::from_ne_bytes([kind[0], kind[1]]);
        let error = buf.get(16..20).map_or(0, |e| i32::from_ne_bytes([e[0], e[1], e[2], e[3]]));
        if kind == libc::NLMSG_ERROR as u16 && error != 0 {
            errors += 1;
        }
        // Messages are padded to 4 bytes; a length too short to move on
        // ends the read.
        let next = (len + 3) & !3;
        if len < 16 || next > buf.len() {
            break;
        }
        buf = &buf[next..];
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_laid_out_as_rtnetlink_reads_it() {
        let msg = request(7, 3, Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(u32::from_ne_bytes(msg[0..4].try_into().unwrap()), 36);
        assert_eq!(u16::from_ne_bytes([msg[4], msg[5]]), 28, "RTM_NEWNEIGH");
        assert_eq!(u16::from_ne_bytes([msg[6], msg[7]]), 1, "NLM_F_REQUEST only: no create");
        assert_eq!(u32::from_ne_bytes(msg[8..12].try_into().unwrap()), 7);
        assert_eq!(msg[16], libc::AF_INET as u8);
        assert_eq!(u32::from_ne_bytes(msg[20..24].try_into().unwrap()), 3);
        assert_eq!(msg[26], 0x01, "NTF_USE");
        assert_eq!(&msg[28..32], &[8u16.to_ne_bytes(), 1u16.to_ne_bytes()].concat()[..]);
        assert_eq!(&msg[32..36], &[192, 0, 2, 2]);
    }

    fn answer(error: i32) -> Vec<u8> {
        let mut msg = vec![0u8; 36];
        msg[0..4].copy_from_slice(&36u32.to_ne_bytes());
        msg[4..6].copy_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        msg[16..20].copy_from_slice(&error.to_ne_bytes());
        msg
    }

    #[test]
    fn error_answers_are_counted_and_acknowledgements_and_junk_are_not() {
        let mut read = answer(-libc::ENOENT);
        read.extend(answer(0));
        read.extend(answer(-libc::EINVAL));
        assert_eq!(count_errors(&read), 2);
        assert_eq!(count_errors(&[]), 0);
        assert_eq!(count_errors(&[1, 2, 3]), 0);
        // A length that would not move on, or runs past the read.
        let mut short = answer(-1);
        short[0..4].copy_from_slice(&4u32.to_ne_bytes());
        assert_eq!(count_errors(&short), 1);
        let mut long = answer(-1);
        long[0..4].copy_from_slice(&4000u32.to_ne_bytes());
        assert_eq!(count_errors(&long), 1);
    }

    /// In a namespace of its own: a missing entry is an error the kernel
    /// answers; an existing stale one is put back on the way to being
    /// confirmed (it leaves `STALE`).
    #[test]
    fn marking_an_entry_in_use_reaches_the_kernel() {
        let ip = |args: &[&str]| {
            let out = std::process::Command::new("ip").args(args).output().expect("run ip");
            assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let (errors, state) = crate::sys::netns::run_in_new_netns(|| {
            // `ip` runs in this thread's namespace: a child inherits it.
            ip(&["link", "add", "nu0", "type", "veth", "peer", "name", "nu1"]);
            ip(&["link", "set", "nu0", "up"]);
            ip(&["neigh", "add", "192.0.2.9", "lladdr", "02:00:00:00:00:09", "dev", "nu0", "nud", "stale"]);
            let index = crate::sys::ifindex("nu0").unwrap();
            let mut neigh = NeighbourUse::open().unwrap();
            neigh.mark_used(index, Ipv4Addr::new(192, 0, 2, 8)).unwrap();
            neigh.mark_used(index, Ipv4Addr::new(192, 0, 2, 9)).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
            (neigh.drain(), ip(&["neigh", "show", "192.0.2.9"]))
        })
        .expect("a namespace of its own");
        assert_eq!(errors, 1, "the missing entry's ENOENT, and only that");
        assert!(state.contains("02:00:00:00:00:09") && !state.contains("STALE"), "{state}");
    }
}
