//! Scratch for `recvmmsg`/`sendmmsg`, shared by [`udp`](super::udp) and
//! [`packet`](super::packet): the message headers and I/O vectors that the
//! kernel reads, control-message space, and a reader for the control
//! messages the kernel wrote. Private to `sys`.
//!
//! The headers hold raw pointers into buffers owned next to them. They are
//! rewritten before every call, while the owning batch is borrowed mutably,
//! and are never read between calls: a batch can move (and move between
//! threads) freely.
//!
//! What this module does not do: own the payload buffers, or know what the
//! control messages mean.

use std::ffi::{c_int, c_uint};
use std::fmt;
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Room for the control messages of one received message: a few `int`s
/// (`UDP_GRO`) or one `tpacket_auxdata` (20 bytes), each with its header.
pub(crate) const CMSG_BUF_LEN: usize = 64;

/// Control-message space for one message, aligned as `struct cmsghdr`.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub(crate) struct CmsgBuf(pub(crate) [u8; CMSG_BUF_LEN]);

impl CmsgBuf {
    pub(crate) const ZERO: CmsgBuf = CmsgBuf([0; CMSG_BUF_LEN]);
}

impl fmt::Debug for CmsgBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CmsgBuf")
    }
}

/// The largest `vlen` the kernel takes in one call (`UIO_MAXIOV`).
pub(crate) const MAX_BATCH: usize = 1024;

/// Message headers and one I/O vector per message, allocated once.
pub(crate) struct MsgScratch {
    pub(crate) hdrs: Box<[libc::mmsghdr]>,
    pub(crate) iovs: Box<[libc::iovec]>,
}

// SAFETY: the raw pointers inside the headers and vectors are scratch: they
// are written just before a recvmmsg/sendmmsg call made through `&mut` of the
// owning batch, and never dereferenced by this process otherwise. Moving or
// sharing the stale pointers between threads is harmless.
unsafe impl Send for MsgScratch {}
// SAFETY: as above; `&MsgScratch` gives no way to dereference them.
unsafe impl Sync for MsgScratch {}

impl MsgScratch {
    pub(crate) fn new(count: usize) -> MsgScratch {
        // SAFETY: mmsghdr and iovec are plain integers and raw pointers, for
        // which all zeros (null pointers, zero lengths) is a valid value.
        let hdr: libc::mmsghdr = unsafe { mem::zeroed() };
        let iov = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
        MsgScratch { hdrs: vec![hdr; count].into_boxed_slice(), iovs: vec![iov; count].into_boxed_slice() }
    }
}

impl fmt::Debug for MsgScratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsgScratch").field("messages", &self.hdrs.len()).finish()
    }
}

/// A zeroed `msghdr` (musl has private padding fields, so no struct literal).
pub(crate) fn empty_msghdr() -> libc::msghdr {
    // SAFETY: msghdr is plain integers and raw pointers; all zeros is valid.
    unsafe { mem::zeroed() }
}

/// `recvmmsg` without a timeout; returns how many messages arrived. Bare OS
/// errors (`WouldBlock`, `Interrupted`).
///
/// # Safety
///
/// Every header in `hdrs` must point to a name buffer of `msg_namelen`
/// bytes, `msg_iovlen` I/O vectors each valid for writes of its length, and
/// a control buffer of `msg_controllen` bytes (or null with length 0), all
/// live and not otherwise borrowed for the duration of the call.
pub(crate) unsafe fn recvmmsg(fd: BorrowedFd<'_>, hdrs: &mut [libc::mmsghdr], flags: c_int) -> io::Result<usize> {
    let vlen = hdrs.len().min(MAX_BATCH) as c_uint;
    // SAFETY: the caller guarantees every pointer in the headers; `hdrs`
    // itself is valid for writes of `vlen` headers (msg_len, msg_namelen,
    // msg_controllen and msg_flags are written back).
    let ret = unsafe { libc::recvmmsg(fd.as_raw_fd(), hdrs.as_mut_ptr(), vlen, flags, std::ptr::null_mut()) };
    super::cvt(ret).map(|n| n as usize)
}

/// `sendmmsg`; returns how many messages were sent. Bare OS errors.
///
/// # Safety
///
/// Every header in `hdrs` must point to a name of `msg_namelen` bytes (or
/// null), `msg_iovlen` I/O vectors each valid for reads of its length, and a
/// control buffer of `msg_controllen` bytes (or null with length 0), all
/// live for the duration of the call.
pub(crate) unsafe fn sendmmsg(fd: BorrowedFd<'_>, hdrs: &mut [libc::mmsghdr]) -> io::Result<usize> {
    let vlen = hdrs.len().min(MAX_BATCH) as c_uint;
    // SAFETY: the caller guarantees every pointer; the kernel writes only
    // `msg_len` into the headers.
    let ret = unsafe { libc::sendmmsg(fd.as_raw_fd(), hdrs.as_mut_ptr(), vlen, 0) };
    super::cvt(ret).map(|n| n as usize)
}

/// Calls `f(level, type, data)` for each control message in `hdr`.
///
/// # Safety
///
/// `hdr.msg_control` must point to `hdr.msg_controllen` bytes readable for
/// the call (as after a receive into a [`CmsgBuf`]), or be null.
// msg_controllen is a size_t with glibc and a socklen_t with musl.
#[allow(clippy::unnecessary_cast)]
pub(crate) unsafe fn for_each_cmsg(hdr: &libc::msghdr, mut f: impl FnMut(c_int, c_int, &[u8])) {
    if hdr.msg_control.is_null() || (hdr.msg_controllen as usize) < mem::size_of::<libc::cmsghdr>() {
        return;
    }
    let end = hdr.msg_control as usize + hdr.msg_controllen as usize;
    // SAFETY: the control buffer is valid per the caller; CMSG_FIRSTHDR only
    // reads the msghdr's fields.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR return either null or a pointer
        // to a header lying wholly inside the control buffer; it is aligned
        // because the buffer is (CmsgBuf is 8-aligned).
        let header = unsafe { &*cmsg };
        // SAFETY: CMSG_DATA only computes an address inside the message.
        let data = unsafe { libc::CMSG_DATA(cmsg) };
        // SAFETY: CMSG_LEN(0) is pure arithmetic.
        let data_len = (header.cmsg_len as usize).saturating_sub(unsafe { libc::CMSG_LEN(0) } as usize);
        if data as usize + data_len <= end {
            // SAFETY: the range lies inside the control buffer (checked just
            // above), which is readable for the call.
            let bytes = unsafe { std::slice::from_raw_parts(data, data_len) };
            f(header.cmsg_level, header.cmsg_type, bytes);
        }
        // SAFETY: as for CMSG_FIRSTHDR; NXTHDR checks against msg_controllen.
        cmsg = unsafe { libc::CMSG_NXTHDR(hdr, cmsg) };
    }
}

/// Writes one control message with `data` at the start of `buf` and returns
/// its space (`CMSG_SPACE`), or `None` if it does not fit.
pub(crate) fn write_cmsg(buf: &mut CmsgBuf, level: c_int, kind: c_int, data: &[u8]) -> Option<usize> {
    // SAFETY: CMSG_SPACE and CMSG_LEN are pure arithmetic.
    let (space, len) = unsafe { (libc::CMSG_SPACE(data.len() as c_uint), libc::CMSG_LEN(data.len() as c_uint)) };
    if space as usize > CMSG_BUF_LEN {
        return None;
    }
    let mut hdr = empty_msghdr();
    hdr.msg_control = buf.0.as_mut_ptr().cast();
    hdr.msg_controllen = space as _;
    // SAFETY: the msghdr points at `buf`, which holds `space` bytes; the
    // first header therefore fits and is aligned (CmsgBuf is 8-aligned).
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&hdr);
        (*cmsg).cmsg_level = level;
        (*cmsg).cmsg_type = kind;
        (*cmsg).cmsg_len = len as _;
        std::ptr::copy_nonoverlapping(data.as_ptr(), libc::CMSG_DATA(cmsg), data.len());
    }
    Some(space as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_control_message_reads_back() {
        let mut buf = CmsgBuf::ZERO;
        let space = write_cmsg(&mut buf, libc::SOL_UDP, libc::UDP_SEGMENT, &1400u16.to_ne_bytes()).unwrap();
        assert_eq!(space, 24, "CMSG_SPACE(2) on a 64-bit target");
        let mut hdr = empty_msghdr();
        hdr.msg_control = buf.0.as_mut_ptr().cast();
        hdr.msg_controllen = space as _;
        let mut seen = Vec::new();
        // SAFETY: the control buffer is `buf`, live and `space` bytes long.
        unsafe { for_each_cmsg(&hdr, |level, kind, data| seen.push((level, kind, data.to_vec()))) };
        assert_eq!(seen, vec![(libc::SOL_UDP, libc::UDP_SEGMENT, 1400u16.to_ne_bytes().to_vec())]);
        assert_eq!(write_cmsg(&mut buf, 0, 0, &[0; 64]), None, "too big for the buffer");
    }
}
