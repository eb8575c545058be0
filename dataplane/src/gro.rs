//! Receive coalescing of TCP segments into superframes for a TAP device with
//! `IFF_VNET_HDR`: what Linux's GRO (`tcp_gro_receive`, `inet_gro_receive`,
//! `ipv6_gro_receive`) does before a frame goes up the stack, done in
//! userspace on the frames the VTEP decapsulates (sans-IO, no allocation per
//! frame). It is the inverse of [`crate::gso::Segmenter`].
//!
//! A [`Coalescer`] holds at most one run: consecutive segments of one TCP flow
//! that follow each other in sequence space, all with the same headers but
//! for the lengths, the IPv4 identification and checksum, the sequence number
//! and PSH on the last. Anything that does not extend the run flushes it
//! first, so frames leave in exactly the order they came. A run of two or more
//! segments is written as one superframe behind a virtio-net header that says
//! `NEEDS_CSUM` and `TCPV4`/`TCPV6`, `gso_size` the first segment's payload,
//! the TCP checksum field holding the pseudo-header sum (the kernel's
//! `CHECKSUM_PARTIAL`; see [`crate::gso::complete_checksum`]); every other
//! frame, a run of one included, is written as it came behind an all-zero
//! header.
//!
//! A segment joins the run ending with segment A only if (Linux's rules,
//! tightened where they allow more than the virtio header can say):
//!
//! - the Ethernet header (addresses, VLAN tags, EtherType) is byte for byte
//!   the first segment's, and the EtherType is IPv4 or IPv6;
//! - IPv4: no options, not a fragment, TCP, header checksum valid, and the
//!   same TOS, flags, TTL and addresses; the identification counts up by one
//!   per segment, or, with DF set, stays fixed (decided at the second segment,
//!   as `inet_gro_flush` does: the superframe carries the first's, and a
//!   kernel that segments it again numbers the segments up from it, which
//!   RFC 6864 allows for atomic datagrams). IPv6: TCP right after the fixed
//!   header, same traffic class, flow label, hop limit and addresses;
//! - the frame ends where the IP length says (no link padding);
//! - TCP: the same ports, acknowledgment number, data offset, window, urgent
//!   pointer and option bytes (timestamps included); the sequence number is
//!   the one after A's payload; the flags are ACK, or ACK|PSH which ends the
//!   run; the checksum is valid (the kernel will not check it again);
//! - the payload is not empty and no longer than the run's `gso_size`; a
//!   shorter one ends the run;
//! - the superframe stays within `max_len` and its IP length field within
//!   65535.
//!
//! A run starts with a segment of flags exactly ACK and a non-empty payload;
//! a segment with PSH, FIN, SYN, RST, URG, ECE, CWR or NS, a pure ACK, or
//! anything not TCP passes through.
//!
//! What this module does not do: hold several flows at once (a frame of
//! another flow flushes the run), IPv4 options, IPv6 extension headers, BIG
//! TCP, UDP (`UDP_L4`) coalescing, or any I/O.

use core::net::IpAddr;

use crate::wire::virtio_net::{self, Checksum, Gso};
use crate::wire::{checksum, ethernet, ipv4, ipv6, tcp, EtherType, IpProtocol};

/// The offset of the checksum field in a TCP header.
const TCP_CSUM_OFFSET: usize = 16;

/// The largest value of the IPv4 total length and IPv6 payload length fields.
const MAX_IP_LEN: usize = 65_535;

/// The longest frame a VXLAN datagram can carry (an IP packet of 64 KiB
/// behind an Ethernet header with two tags): what the pass-through buffer is
/// sized for.
const MAX_FRAME_LEN: usize = ethernet::HEADER_LEN + 2 * ethernet::VLAN_TAG_LEN + MAX_IP_LEN;

/// A TCP data segment that may start or join a run, as read from its frame.
#[derive(Debug, Clone, Copy)]
struct Segment {
    v6: bool,
    /// The IP header's offset.
    l3: usize,
    /// The TCP header's offset.
    l4: usize,
    /// Where the payload starts.
    header_len: usize,
    src: IpAddr,
    dst: IpAddr,
    /// The IPv4 identification (0 over IPv6).
    ident: u16,
    dont_frag: bool,
    seq: u32,
    /// Whether PSH is set (beside ACK, the only other flag allowed).
    push: bool,
    payload_len: usize,
}

impl Segment {
    /// Reads a frame; `None` unless it is a well-formed TCP segment over IPv4
    /// without options or IPv6 without extension headers, with flags ACK or
    /// ACK|PSH, a non-empty payload and no link padding. The TCP checksum is
    /// left to [`Segment::checksum_ok`].
    fn parse(frame: &[u8]) -> Option<Segment> {
        let eth = ethernet::Frame::new_checked(frame).ok()?;
        let l3 = eth.header_len();
        let (v6, src, dst, ident, dont_frag, l4, ip_end) = match eth.ethertype() {
            EtherType::Ipv4 => {
                let ip = ipv4::Packet::new_checked(&frame[l3..]).ok()?;
                let plain = ip.header_len() == ipv4::HEADER_LEN && !ip.is_fragment();
                if !plain || ip.next_header() != IpProtocol::Tcp || !ip.verify_checksum() {
                    return None;
                }
                let (src, dst) = (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()));
                let l4 = l3 + ipv4::HEADER_LEN;
                (false, src, dst, ip.ident(), ip.dont_frag(), l4, l3 + usize::from(ip.total_len()))
            }
            EtherType::Ipv6 => {
                let ip = ipv6::Packet::new_checked(&frame[l3..]).ok()?;
                if ip.next_header() != IpProtocol::Tcp {
                    return None;
                }
                let (src, dst) = (IpAddr::V6(ip.src_addr()), IpAddr::V6(ip.dst_addr()));
                let l4 = l3 + ipv6::HEADER_LEN;
                (true, src, dst, 0, false, l4, l4 + usize::from(ip.payload_len()))
            }
            _ => return None,
        };
        if ip_end != frame.len() {
            return None;
        }
        let tcp = tcp::Packet::new_checked(&frame[l4..]).ok()?;
        let flags = tcp.flags();
        let push = if flags == tcp::Flags::ACK {
            false
        } else if flags == tcp::Flags::ACK | tcp::Flags::PSH {
            true
        } else {
            return None;
        };
        let header_len = l4 + tcp.header_len();
        let payload_len = frame.len() - header_len;
        if payload_len == 0 {
            return None;
        }
        let seq = tcp.seq_number();
        Some(Segment { v6, l3, l4, header_len, src, dst, ident, dont_frag, seq, push, payload_len })
    }

    /// Whether the frame's TCP checksum is right.
    fn checksum_ok(&self, frame: &[u8]) -> bool {
        tcp::Packet::new_unchecked(&frame[self.l4..]).verify_checksum(self.src, self.dst)
    }
}

/// A whole superframe as [`Coalescer::take_superframe`] takes it: its
/// virtio-net header, and the value its TCP checksum field must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superframe {
    header: [u8; virtio_net::HEADER_LEN],
    csum_at: usize,
    csum: [u8; 2],
}

impl Superframe {
    /// What to write, in order, for `frame` (the one it was taken from):
    /// the header, the frame up to its checksum field, the field's new
    /// value, and the rest of the frame — for one vectored write.
    pub fn parts<'a>(&'a self, frame: &'a [u8]) -> [&'a [u8]; 4] {
        let (before, rest) = frame.split_at(self.csum_at.min(frame.len()));
        [&self.header, before, &self.csum, rest.get(2..).unwrap_or_default()]
    }
}

/// Where a TCP superframe's transport header and payload start, and its
/// addresses: an untagged Ethernet frame, IPv4 without options (its header
/// checksum valid) or fragmentation or IPv6 with TCP next, the IP length
/// filling the frame — read and checked as [`crate::gso::layout`] does.
fn superframe_headers(frame: &[u8]) -> Option<(usize, usize, IpAddr, IpAddr)> {
    let l3 = ethernet::HEADER_LEN;
    let (gso, v6) = match frame.get(12..14)? {
        [0x08, 0x00] => (Gso::Tcpv4 { size: 1, ecn: false }, false),
        [0x86, 0xdd] => (Gso::Tcpv6 { size: 1, ecn: false }, true),
        _ => return None,
    };
    let virtio = virtio_net::Repr { gso, ..virtio_net::Repr::default() };
    let layout = crate::gso::layout(frame, &virtio).ok()?;
    let plain_v4 = || layout.l4 == l3 + ipv4::HEADER_LEN && ipv4::Packet::new_unchecked(&frame[l3..]).verify_checksum();
    if layout.l3 != l3 || layout.payload_end != frame.len() || !(v6 || plain_v4()) {
        return None;
    }
    Some((layout.l4, layout.header_len, layout.src, layout.dst))
}

/// How the IPv4 identification goes along a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ident {
    /// Not known yet: the run has one segment.
    Open,
    /// The first's plus the segment's index.
    Incrementing,
    /// The first's in every segment (DF set).
    Fixed,
}

/// The run held in [`Coalescer::run`]: where the first segment's headers are
/// and what the next segment must look like.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// The first segment.
    first: Segment,
    /// Segments in the run.
    count: usize,
    /// The sequence number the next segment must have.
    next_seq: u32,
    ident: Ident,
    /// Whether the last segment had PSH (then the run is already flushed).
    push: bool,
}

/// Coalesces the TCP segments of one TAP's receive path into superframes;
/// see the module documentation for when frames merge.
///
/// Both buffers are allocated in [`Coalescer::new`]; [`Coalescer::push`] and
/// [`Coalescer::flush`] copy into them and never allocate (but for a frame
/// longer than any VXLAN datagram can carry, which grows the pass-through
/// buffer once).
///
/// ```
/// use dataplane::gro::Coalescer;
///
/// # fn write_to_tap(_: &[u8]) {}
/// let mut coalescer = Coalescer::new(65_536 + 10);
/// # let batch: Vec<Vec<u8>> = Vec::new();
/// for frame in &batch {
///     coalescer.push(frame, &mut |bytes| write_to_tap(bytes));
/// }
/// coalescer.flush(&mut |bytes| write_to_tap(bytes));
/// ```
#[derive(Debug)]
pub struct Coalescer {
    /// The longest write, virtio-net header included.
    max_len: usize,
    /// The held run: a virtio-net header (zero until the flush), the first
    /// segment whole, then the payload of every later one.
    run: Vec<u8>,
    held: Option<Run>,
    /// A frame passed through, behind an all-zero virtio-net header.
    pass: Vec<u8>,
}

impl Coalescer {
    /// A coalescer whose superframes are at most `max_len` bytes, the 10-byte
    /// virtio-net header included (65 536 + 10 lets the IP length field be
    /// the limit). A frame that does not fit `max_len` with its header is
    /// passed through.
    pub fn new(max_len: usize) -> Coalescer {
        Coalescer {
            max_len,
            run: Vec::with_capacity(max_len),
            held: None,
            pass: Vec::with_capacity(virtio_net::HEADER_LEN + MAX_FRAME_LEN),
        }
    }

    /// Offers one Ethernet frame. Whatever must reach the TAP before it (the
    /// held run, when the frame does not extend it) is given to `write`
    /// first; then the frame is held, or written (passed through, or ending
    /// the run it joined with PSH or a short payload).
    pub fn push(&mut self, frame: &[u8], write: &mut impl FnMut(&[u8])) {
        self.offer(frame, false, write);
    }

    /// [`Coalescer::push`] for a frame whose TCP checksum the caller has
    /// just computed or updated itself (a segment cut by
    /// [`crate::gso::Segmenter`], then rewritten with RFC 1624 updates):
    /// it is not summed again. Frames from anywhere else go through `push`,
    /// which verifies them before the kernel stops checking.
    pub fn push_checksummed(&mut self, frame: &[u8], write: &mut impl FnMut(&[u8])) {
        self.offer(frame, true, write);
    }

    fn offer(&mut self, frame: &[u8], checksummed: bool, write: &mut impl FnMut(&[u8])) {
        let Some(segment) = Segment::parse(frame) else {
            self.flush(write);
            self.pass_through(frame, write);
            return;
        };
        if let Some(run) = self.held {
            if let Some(ident) = self.extends(&run, frame, &segment) {
                if checksummed || segment.checksum_ok(frame) {
                    self.run.extend_from_slice(&frame[segment.header_len..]);
                    let full = segment.payload_len == run.first.payload_len;
                    self.held = Some(Run {
                        count: run.count + 1,
                        // The payload is below 65536 bytes (IP length field).
                        next_seq: run.next_seq.wrapping_add(segment.payload_len as u32),
                        ident,
                        push: segment.push,
                        ..run
                    });
                    if segment.push || !full {
                        self.flush(write);
                    }
                    return;
                }
            }
        }
        self.flush(write);
        let fits = virtio_net::HEADER_LEN + frame.len() <= self.max_len;
        if !segment.push && fits && (checksummed || segment.checksum_ok(frame)) {
            self.run.clear();
            self.run.extend_from_slice(&[0; virtio_net::HEADER_LEN]);
            self.run.extend_from_slice(frame);
            let next_seq = segment.seq.wrapping_add(segment.payload_len as u32);
            self.held = Some(Run { first: segment, count: 1, next_seq, ident: Ident::Open, push: false });
        } else {
            self.pass_through(frame, write);
        }
    }

    /// Takes a TCP superframe that arrived whole — `frame`, longer than any
    /// segment the underlay carries, so cut by no one since the sender's
    /// stack made it (UDP-tunnel GSO across a veth) — to be written behind
    /// a virtio-net header that has the kernel take it as GSO: `TCPV4`/
    /// `TCPV6` with `gso_size` the payload of a `max_segment_len`-byte
    /// segment (the size it was cut at is not known here) and `NEEDS_CSUM`,
    /// its TCP checksum field holding the pseudo-header sum. Its checksum
    /// cannot be verified (the field held a partial sum), and need not be:
    /// it never left the sending host's memory. Flushes the held run first
    /// (through `write`), and returns what to write: [`Superframe::parts`]
    /// of the frame, which is not copied. `None`, with only the flush
    /// written, for a frame that is not one TCP packet over IPv4 without
    /// options or fragmentation, or IPv6 without extension headers, filling
    /// the frame, or that does not fit `max_len`.
    pub fn take_superframe(
        &mut self,
        frame: &[u8],
        max_segment_len: usize,
        write: &mut impl FnMut(&[u8]),
    ) -> Option<Superframe> {
        self.flush(write);
        let (l4, header_len, src, dst) = superframe_headers(frame)?;
        let payload = frame.len() - header_len;
        let size = max_segment_len.saturating_sub(header_len).min(payload).min(usize::from(u16::MAX));
        if payload == 0 || size == 0 || virtio_net::HEADER_LEN + frame.len() > self.max_len {
            return None;
        }
        let pseudo = checksum::pseudo_header(src, dst, IpProtocol::Tcp, frame.len() - l4)?;
        let size = size as u16;
        let virtio = virtio_net::Repr {
            checksum: Checksum::Partial { start: l4 as u16, offset: TCP_CSUM_OFFSET as u16 },
            gso: if src.is_ipv6() { Gso::Tcpv6 { size, ecn: false } } else { Gso::Tcpv4 { size, ecn: false } },
            hdr_len: header_len as u16,
        };
        let mut header = [0u8; virtio_net::HEADER_LEN];
        virtio.emit(&mut virtio_net::Header::new_unchecked(&mut header[..])).ok()?;
        Some(Superframe { header, csum_at: l4 + TCP_CSUM_OFFSET, csum: pseudo.to_be_bytes() })
    }

    /// Writes out the held run, if any: call it at the end of each receive
    /// batch.
    pub fn flush(&mut self, write: &mut impl FnMut(&[u8])) {
        let Some(run) = self.held.take() else { return };
        if run.count > 1 {
            self.finish_superframe(&run);
        }
        write(&self.run);
        self.run.clear();
    }

    /// Whether `segment` (parsed from `frame`) extends `run`, and if so how
    /// the identification goes on.
    fn extends(&self, run: &Run, frame: &[u8], segment: &Segment) -> Option<Ident> {
        let first = &run.first;
        let same_shape = segment.v6 == first.v6 && segment.l3 == first.l3 && segment.header_len == first.header_len;
        if !same_shape || segment.seq != run.next_seq || segment.payload_len > first.payload_len {
            return None;
        }
        let ip_len = self.run.len() - virtio_net::HEADER_LEN - first.l3 + segment.payload_len;
        let ip_len = if first.v6 { ip_len - ipv6::HEADER_LEN } else { ip_len };
        if self.run.len() + segment.payload_len > self.max_len || ip_len > MAX_IP_LEN {
            return None;
        }
        let held = &self.run[virtio_net::HEADER_LEN..virtio_net::HEADER_LEN + first.header_len];
        let same = |range: core::ops::Range<usize>| held[range.clone()] == frame[range];
        let (l3, l4) = (first.l3, first.l4);
        // Ethernet: addresses, tags, EtherType.
        if !same(0..l3) {
            return None;
        }
        // IP: all but the lengths, the IPv4 identification and checksum.
        let ip_same = if first.v6 {
            same(l3..l3 + 4) && same(l3 + 6..l4)
        } else {
            same(l3..l3 + 2) && same(l3 + 6..l3 + 10) && same(l3 + 12..l4)
        };
        // TCP: all but the sequence number, the flags and the checksum (the
        // data offset, reserved bits and NS share a byte with them).
        let tcp_same =
            same(l4..l4 + 4) && same(l4 + 8..l4 + 13) && same(l4 + 14..l4 + 16) && same(l4 + 18..first.header_len);
        if !ip_same || !tcp_same {
            return None;
        }
        if first.v6 {
            return Some(Ident::Incrementing);
        }
        // As `inet_gro_flush`: counting up, or fixed with DF.
        // The count is below 65536: each segment carries a payload byte.
        let offset = segment.ident.wrapping_sub(first.ident);
        match run.ident {
            Ident::Open if offset == 1 => Some(Ident::Incrementing),
            Ident::Open if offset == 0 && segment.dont_frag => Some(Ident::Fixed),
            Ident::Incrementing if offset == run.count as u16 => Some(Ident::Incrementing),
            Ident::Fixed if offset == 0 => Some(Ident::Fixed),
            _ => None,
        }
    }

    /// Makes the held run of two or more segments a superframe: the IP
    /// length, the IPv4 header checksum, PSH, the partial TCP checksum and
    /// the virtio-net header.
    fn finish_superframe(&mut self, run: &Run) {
        let first = &run.first;
        let (header, frame) = self.run.split_at_mut(virtio_net::HEADER_LEN);
        let frame_len = frame.len();
        // The lengths were kept within MAX_IP_LEN as segments joined.
        if first.v6 {
            let mut ip = ipv6::Packet::new_unchecked(&mut frame[first.l3..]);
            ip.set_payload_len((frame_len - first.l4) as u16);
        } else {
            let mut ip = ipv4::Packet::new_unchecked(&mut frame[first.l3..]);
            ip.set_total_len((frame_len - first.l3) as u16);
            ip.fill_checksum();
        }
        let mut segment = tcp::Packet::new_unchecked(&mut frame[first.l4..]);
        if run.push {
            segment.set_flags(tcp::Flags::ACK | tcp::Flags::PSH);
        }
        // Same families, and a length the IP length field held.
        let pseudo = checksum::pseudo_header(first.src, first.dst, IpProtocol::Tcp, frame_len - first.l4);
        segment.set_checksum(pseudo.unwrap_or(0));

        let size = first.payload_len as u16;
        let gso = if first.v6 { Gso::Tcpv6 { size, ecn: false } } else { Gso::Tcpv4 { size, ecn: false } };
        let virtio = virtio_net::Repr {
            checksum: Checksum::Partial { start: first.l4 as u16, offset: TCP_CSUM_OFFSET as u16 },
            gso,
            hdr_len: first.header_len as u16,
        };
        // The header is 10 bytes and gso_size is not 0: emit cannot fail.
        let _ = virtio.emit(&mut virtio_net::Header::new_unchecked(header));
    }

    /// Writes `frame` behind an all-zero virtio-net header.
    fn pass_through(&mut self, frame: &[u8], write: &mut impl FnMut(&[u8])) {
        self.pass.clear();
        self.pass.extend_from_slice(&[0; virtio_net::HEADER_LEN]);
        self.pass.extend_from_slice(frame);
        write(&self.pass);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gso::{complete_checksum, Segmenter};
    use crate::wire::ethernet::{EthernetAddress, VlanTag, VlanTags};
    use core::net::{Ipv4Addr, Ipv6Addr};

    const MSS: usize = 1448;
    /// Ethernet, IPv4 and TCP with timestamps.
    const V4_HEADERS: usize = 14 + 20 + 32;
    const V6_HEADERS: usize = 14 + 40 + 32;
    const MAX_LEN: usize = 65_536 + 10;

    /// One TCP flow, and where it stands.
    #[derive(Debug, Clone, Copy)]
    struct Flow {
        v6: bool,
        vlan: Option<u16>,
        src_port: u16,
        dont_frag: bool,
        seq: u32,
        ident: u16,
        /// Added to the ident per segment: 1, or 0 for a fixed ident.
        ident_step: u16,
        tsval: u32,
    }

    const FLOW: Flow = Flow {
        v6: false,
        vlan: None,
        src_port: 40000,
        dont_frag: true,
        seq: 0xffff_f000,
        ident: 0xfffa,
        ident_step: 1,
        tsval: 7,
    };

    fn payload(seed: usize, len: usize) -> Vec<u8> {
        (0..len).map(|i| ((i + seed * 131) as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0]).collect()
    }

    /// The next segment of `flow`, built with the wire emitters, with valid
    /// checksums; advances the flow.
    fn segment(flow: &mut Flow, payload: &[u8], flags: tcp::Flags) -> Vec<u8> {
        let eth = ethernet::Repr {
            src_addr: EthernetAddress([0x02, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([0x02, 0, 0, 0, 0, 2]),
            vlan_tags: match flow.vlan {
                None => VlanTags::None,
                Some(vid) => VlanTags::Single(VlanTag { tpid: EtherType::Vlan, pcp: 0, dei: false, vid }),
            },
            ethertype: if flow.v6 { EtherType::Ipv6 } else { EtherType::Ipv4 },
        };
        let tcp_repr = tcp::Repr {
            src_port: flow.src_port,
            dst_port: 5201,
            seq_number: flow.seq,
            ack_number: 0x0102_0304,
            flags,
            window_len: 502,
            timestamp: Some((flow.tsval, 0x2222_2222)),
            payload_len: payload.len(),
            ..tcp::Repr::default()
        };
        let l3 = eth.header_len();
        let l4 = l3 + if flow.v6 { ipv6::HEADER_LEN } else { ipv4::HEADER_LEN };
        let mut frame = vec![0u8; l4 + tcp_repr.buffer_len()];
        eth.emit(&mut ethernet::Frame::new_unchecked(&mut frame[..])).unwrap();
        let (src, dst): (IpAddr, IpAddr) = if flow.v6 {
            let (src, dst) =
                (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
            let ip = ipv6::Repr {
                src_addr: src,
                dst_addr: dst,
                next_header: IpProtocol::Tcp,
                payload_len: tcp_repr.buffer_len(),
                hop_limit: 64,
                traffic_class: 0,
                flow_label: 0x12345,
            };
            ip.emit(&mut ipv6::Packet::new_unchecked(&mut frame[l3..])).unwrap();
            (src.into(), dst.into())
        } else {
            let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 7));
            let ip = ipv4::Repr {
                src_addr: src,
                dst_addr: dst,
                next_header: IpProtocol::Tcp,
                payload_len: tcp_repr.buffer_len(),
                hop_limit: 64,
                dscp: 0,
                ecn: 0,
                ident: flow.ident,
                dont_frag: flow.dont_frag,
                more_frags: false,
                frag_offset: 0,
                options: ipv4::Ipv4Options::EMPTY,
            };
            ip.emit(&mut ipv4::Packet::new_unchecked(&mut frame[l3..])).unwrap();
            (src.into(), dst.into())
        };
        let mut tcp = tcp::Packet::new_unchecked(&mut frame[l4..]);
        tcp_repr.emit(&mut tcp).unwrap();
        tcp.payload_mut().copy_from_slice(payload);
        tcp.fill_checksum(src, dst);
        flow.seq = flow.seq.wrapping_add(payload.len() as u32);
        flow.ident = flow.ident.wrapping_add(flow.ident_step);
        frame
    }

    fn data(flow: &mut Flow, len: usize) -> Vec<u8> {
        segment(flow, &payload(flow.seq as usize, len), tcp::Flags::ACK)
    }

    /// Pushes every frame, flushes, and returns what was written.
    fn coalesce(coalescer: &mut Coalescer, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut write = |bytes: &[u8]| out.push(bytes.to_vec());
        for frame in frames {
            coalescer.push(frame, &mut write);
        }
        coalescer.flush(&mut write);
        out
    }

    /// What a write stands for: the frame behind a zero header, or the
    /// segments of a superframe (as [`Segmenter`] cuts it) after checking
    /// its virtio-net header and partial checksum.
    fn unpack(write: &[u8]) -> Vec<Vec<u8>> {
        let (header, frame) = write.split_at(virtio_net::HEADER_LEN);
        let virtio = virtio_net::Repr::parse(&virtio_net::Header::new_checked(header).unwrap()).unwrap();
        if virtio == virtio_net::Repr::default() {
            assert_eq!(header, [0; virtio_net::HEADER_LEN]);
            return vec![frame.to_vec()];
        }
        let eth = ethernet::Frame::new_checked(frame).unwrap();
        let l3 = eth.header_len();
        let v6 = eth.ethertype() == EtherType::Ipv6;
        let l4 = l3 + if v6 { ipv6::HEADER_LEN } else { ipv4::HEADER_LEN };
        let tcp = tcp::Packet::new_checked(&frame[l4..]).unwrap();
        let first_payload = tcp.payload().len();
        let (src, dst): (IpAddr, IpAddr) = if v6 {
            let ip = ipv6::Packet::new_checked(&frame[l3..]).unwrap();
            assert_eq!(usize::from(ip.payload_len()), frame.len() - l4);
            (ip.src_addr().into(), ip.dst_addr().into())
        } else {
            let ip = ipv4::Packet::new_checked(&frame[l3..]).unwrap();
            assert_eq!(usize::from(ip.total_len()), frame.len() - l3);
            assert!(ip.verify_checksum());
            (ip.src_addr().into(), ip.dst_addr().into())
        };
        let size = virtio.gso.size();
        assert_eq!(virtio.checksum, Checksum::Partial { start: l4 as u16, offset: 16 });
        assert_eq!(virtio.hdr_len as usize, l4 + tcp.header_len());
        let want = if v6 { Gso::Tcpv6 { size, ecn: false } } else { Gso::Tcpv4 { size, ecn: false } };
        assert_eq!(virtio.gso, want);
        assert!(usize::from(size) < first_payload, "a superframe holds at least two segments");
        assert_eq!(header[0], virtio_net::FLAG_NEEDS_CSUM);
        // The partial checksum is the pseudo-header sum, and completes to a
        // valid checksum.
        let pseudo = checksum::pseudo_header(src, dst, IpProtocol::Tcp, frame.len() - l4).unwrap();
        assert_eq!(tcp.checksum(), pseudo);
        let mut completed = frame.to_vec();
        complete_checksum(&mut completed, l4, 16).unwrap();
        assert!(tcp::Packet::new_checked(&completed[l4..]).unwrap().verify_checksum(src, dst));

        let mut segmenter = Segmenter::new(frame, &virtio).unwrap();
        let mut buffer = vec![0u8; segmenter.max_segment_len()];
        let mut segments = Vec::new();
        while let Some(len) = segmenter.next_into(&mut buffer) {
            segments.push(buffer[..len.unwrap()].to_vec());
        }
        segments
    }

    fn unpack_all(writes: &[Vec<u8>]) -> Vec<Vec<u8>> {
        writes.iter().flat_map(|w| unpack(w)).collect()
    }

    /// How many segments each write holds (1 for a frame passed through).
    fn shape(writes: &[Vec<u8>]) -> Vec<usize> {
        writes.iter().map(|w| unpack(w).len()).collect()
    }

    #[test]
    fn ten_segments_make_one_superframe_v4() {
        let mut flow = FLOW;
        let frames: Vec<Vec<u8>> = (0..10).map(|_| data(&mut flow, MSS)).collect();
        let writes = coalesce(&mut Coalescer::new(MAX_LEN), &frames);
        assert_eq!(writes.len(), 1);
        let write = &writes[0];
        assert_eq!(write.len(), 10 + V4_HEADERS + 10 * MSS);
        // NEEDS_CSUM, TCPV4, hdr_len 66, gso_size 1448, csum 34 + 16.
        assert_eq!(write[..10], [0x01, 0x01, 66, 0x00, 0xa8, 0x05, 34, 0x00, 16, 0x00]);
        // The superframe's headers are the first segment's but for the IPv4
        // total length and checksum and the TCP checksum.
        let frame = &write[10..];
        let ip = ipv4::Packet::new_checked(&frame[14..]).unwrap();
        assert_eq!(ip.total_len() as usize, 20 + 32 + 10 * MSS);
        assert_eq!(ip.ident(), 0xfffa);
        let first = &frames[0];
        assert_eq!(frame[..14 + 2], first[..14 + 2], "Ethernet, version, TOS");
        assert_eq!(frame[14 + 4..14 + 10], first[14 + 4..14 + 10], "ident, DF, TTL, protocol");
        assert_eq!(frame[14 + 12..34 + 16], first[14 + 12..34 + 16], "addresses, TCP up to its checksum");
        assert_eq!(frame[34 + 18..V4_HEADERS], first[34 + 18..V4_HEADERS], "urgent pointer, options");
        assert_eq!(unpack_all(&writes), frames, "segments back into the very frames");
    }

    #[test]
    fn ten_segments_make_one_superframe_v6() {
        let mut flow = Flow { v6: true, ..FLOW };
        let frames: Vec<Vec<u8>> = (0..10).map(|_| data(&mut flow, MSS)).collect();
        let writes = coalesce(&mut Coalescer::new(MAX_LEN), &frames);
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].len(), 10 + V6_HEADERS + 10 * MSS);
        // NEEDS_CSUM, TCPV6, hdr_len 86, gso_size 1448, csum 54 + 16.
        assert_eq!(writes[0][..10], [0x01, 0x04, 86, 0x00, 0xa8, 0x05, 54, 0x00, 16, 0x00]);
        assert_eq!(unpack_all(&writes), frames);
    }

    #[test]
    fn vlan_tagged_flow_coalesces() {
        let mut flow = Flow { vlan: Some(100), ..FLOW };
        let frames: Vec<Vec<u8>> = (0..4).map(|_| data(&mut flow, MSS)).collect();
        let writes = coalesce(&mut Coalescer::new(MAX_LEN), &frames);
        assert_eq!(shape(&writes), [4]);
        assert_eq!(writes[0][6], 38, "csum_start after the tag");
        assert_eq!(unpack_all(&writes), frames);
        // A different VLAN is a different flow.
        let mut other = Flow { vlan: Some(101), ..flow };
        let mut frames = vec![data(&mut flow, MSS)];
        frames.push(data(&mut other, MSS));
        assert_eq!(shape(&coalesce(&mut Coalescer::new(MAX_LEN), &frames)), [1, 1]);
    }

    #[test]
    fn a_gap_in_sequence_ends_the_run() {
        let mut flow = FLOW;
        let mut frames: Vec<Vec<u8>> = (0..3).map(|_| data(&mut flow, MSS)).collect();
        flow.seq = flow.seq.wrapping_add(MSS as u32); // one segment lost
        frames.extend((0..2).map(|_| data(&mut flow, MSS)));
        let writes = coalesce(&mut Coalescer::new(MAX_LEN), &frames);
        assert_eq!(shape(&writes), [3, 2]);
        assert_eq!(unpack_all(&writes), frames);
        // A retransmission (the same sequence number again) too.
        let mut flow = FLOW;
        let first = data(&mut flow, MSS);
        let again = data(&mut Flow { ident: flow.ident, ..FLOW }, MSS);
        let frames = vec![first, again];
        assert_eq!(shape(&coalesce(&mut Coalescer::new(MAX_LEN), &frames)), [1, 1]);
    }

    #[test]
    fn another_flow_interleaved_flushes() {
        let mut a = FLOW;
        let mut b = Flow { src_port: 40001, ..FLOW };
        let frames =
            vec![data(&mut a, MSS), data(&mut a, MSS), data(&mut b, MSS), data(&mut a, MSS), data(&mut a, MSS)];
        let writes = coalesce(&mut Coalescer::new(MAX_LEN), &frames);
        assert_eq!(shape(&writes), [2, 1, 2]);
        assert_eq!(unpack_all(&writes), frames, "order kept");
    }

    #[test]
    fn psh_ends_the_run() {
        let mut flow = FLOW;
        let mut frames: Vec<Vec<u8>> = (0..3).map(|_| data(&mut flow, MSS)).collect();
        frames.push(segment(&mut flow, &payload(1, MSS), tcp::Flags::ACK | tcp::Flags::PSH));
        frames.extend((0..2).map(|_| data(&mut flow, MSS)));
        let mut coalescer = Coalescer::new(MAX_LEN);
        let mut writes = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            coalescer.push(frame, &mut |bytes: &[u8]| writes.push(bytes.to_vec()));
            // Written as soon as the PSH segment arrives.
            assert_eq!(writes.len(), usize::from(i >= 3), "after frame {i}");
        }
        coalescer.flush(&mut |bytes: &[u8]| writes.push(bytes.to_vec()));
        assert_eq!(shape(&writes), [4, 2]);
        let flags = tcp::Packet::new_checked(&writes[0][10 + 34..]).unwrap().flags();
        assert_eq!(flags, tcp::Flags::ACK | tcp::Flags::PSH);
        assert_eq!(unpack_all(&writes), frames);

        // A PSH segment with nothing held passes through.
        let mut flow = FLOW;
        let frames =
            vec![segment(&mut flow, &payload(1, MSS), tcp::Flags::ACK | tcp::Flags::PSH), data(&mut flow, MSS)];
        let writes = coalesce(&mut Coalescer::new(MAX_LEN), &frames);
        assert_eq!(shape(&writes), [1, 1]);
        assert_eq!(unpack_all(&writes), frames);
    }

    #[test]
    fn a_short_segment_ends_the_run_and_a_long_one_starts_another() {
        let mut flow = FLOW;
        let mut frames: Vec<Vec<u8>> = (0..3).map(|_| data(&mut flow, MSS)).collect();
        frames.push(data(&mut flow, 100));
        frames.extend((0..2).map(|_| data(&mut flow, MSS)));
        let writes = coalesce(&mut Coalescer::new(MAX_LEN), &frames);
        assert_eq!(shape(&writes), [4, 2]);
        assert_eq!(writes[0].len(), 10 + V4_HEADERS + 3 * MSS + 100);
        assert_eq!(unpack_all(&writes), frames);

        // gso_size is the first's: a longer segment does not join.
        let mut flow = FLOW;
        let frames = vec![data(&mut flow, 1000), data(&mut flow, 1000), data(&mut flow, MSS), data(&mut flow, MSS)];
        let writes = coalesce(&mut Coalescer::new(MAX_LEN), &frames);
        assert_eq!(shape(&writes), [2, 2]);
        assert_eq!(writes[0][4..6], 1000u16.to_le_bytes());
        assert_eq!(unpack_all(&writes), frames);
    }

    #[test]
    fn pure_acks_and_control_segments_pass_through() {
        for flags in [
            tcp::Flags::ACK,
            tcp::Flags::SYN,
            tcp::Flags::SYN | tcp::Flags::ACK,
            tcp::Flags::ACK | tcp::Flags::FIN,
            tcp::Flags::ACK | tcp::Flags::RST,
            tcp::Flags::ACK | tcp::Flags::URG,
            tcp::Flags::ACK | tcp::Flags::ECE,
            tcp::Flags::ACK | tcp::Flags::CWR,
        ] {
            let mut flow = FLOW;
            let len = if flags == tcp::Flags::ACK { 0 } else { MSS };
            let mut frames = vec![data(&mut flow, MSS), data(&mut flow, MSS)];
            frames.push(segment(&mut flow, &payload(3, len), flags));
            frames.extend((0..2).map(|_| data(&mut flow, MSS)));
            let writes = coalesce(&mut Coalescer::new(MAX_LEN), &frames);
            assert_eq!(shape(&writes), [2, 1, 2], "{flags}");
            assert_eq!(writes[1][..10], [0; 10]);
            assert_eq!(unpack_all(&writes), frames, "{flags}");
        }
    }

    #[test]
    fn a_bad_tcp_checksum_passes_through() {
        let mut flow = FLOW;
        let mut frames: Vec<Vec<u8>> = (0..5).map(|_| data(&mut flow, MSS)).collect();
        frames[2][V4_HEADERS + 10] ^= 0x01;
        let writes = coalesce(&mut Coalescer::new(MAX_LEN), &frames);
        // The bad one neither joins nor starts a run; the next two make one.
        assert_eq!(shape(&writes), [2, 1, 2]);
        assert_eq!(unpack_all(&writes), frames);
        // Nor a bad first one.
        let mut flow = FLOW;
        let mut frames: Vec<Vec<u8>> = (0..3).map(|_| data(&mut flow, MSS)).collect();
        frames[0][V4_HEADERS] ^= 0x80;
        assert_eq!(shape(&coalesce(&mut Coalescer::new(MAX_LEN), &frames)), [1, 2]);
    }

    /// Frames the caller checksummed itself are not summed again: valid
    /// ones coalesce exactly as with `push`, and a corrupt one is taken at
    /// the caller's word (the reason `push` exists for everything else).
    #[test]
    fn checksummed_frames_skip_the_check_and_coalesce_alike() {
        let mut flow = FLOW;
        let mut frames: Vec<Vec<u8>> = (0..5).map(|_| data(&mut flow, MSS)).collect();
        let mut checked = Coalescer::new(MAX_LEN);
        let mut trusted = Coalescer::new(MAX_LEN);
        let with_push = coalesce(&mut checked, &frames);
        let mut with_trust = Vec::new();
        let mut write = |bytes: &[u8]| with_trust.push(bytes.to_vec());
        for frame in &frames {
            trusted.push_checksummed(frame, &mut write);
        }
        trusted.flush(&mut write);
        assert_eq!(with_trust, with_push);
        frames[2][V4_HEADERS + 10] ^= 0x01;
        let mut writes = Vec::new();
        let mut write = |bytes: &[u8]| writes.push(bytes.to_vec());
        for frame in &frames {
            trusted.push_checksummed(frame, &mut write);
        }
        trusted.flush(&mut write);
        assert_eq!(shape(&writes), [5], "no sum, so the corrupt one joins the run");
    }

    #[test]
    fn header_differences_end_the_run() {
        let base = {
            let mut flow = FLOW;
            (0..2).map(|_| data(&mut flow, MSS)).collect::<Vec<_>>()
        };
        // Edits of the second frame, each of which must keep them apart.
        type Edit = fn(&mut Flow) -> Vec<u8>;
        let edits: [(&str, Edit); 4] = [
            ("timestamp", |f| data(&mut Flow { tsval: 8, ..*f }, MSS)),
            ("ident not consecutive", |f| data(&mut Flow { ident: f.ident.wrapping_add(5), ..*f }, MSS)),
            ("DF differs", |f| data(&mut Flow { dont_frag: false, ..*f }, MSS)),
            ("IPv6 next to IPv4", |f| data(&mut Flow { v6: true, ..*f }, MSS)),
        ];
        for (what, edit) in edits {
            let mut flow = FLOW;
            let first = data(&mut flow, MSS);
            let frames = vec![first, edit(&mut flow)];
            assert_eq!(shape(&coalesce(&mut Coalescer::new(MAX_LEN), &frames)), [1, 1], "{what}");
        }
        assert_eq!(shape(&coalesce(&mut Coalescer::new(MAX_LEN), &base)), [2]);

        // Raw edits with checksums fixed up: TTL, TOS, window, ack.
        let ip_edits: [(usize, u8); 2] = [(14 + 8, 1), (14 + 1, 0x04)];
        let tcp_edits: [(usize, u8); 2] = [(34 + 15, 1), (34 + 11, 1)];
        for (at, bit) in ip_edits.into_iter().chain(tcp_edits) {
            let mut frames = base.clone();
            frames[1][at] ^= bit;
            ipv4::Packet::new_unchecked(&mut frames[1][14..]).fill_checksum();
            let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1).into(), Ipv4Addr::new(198, 51, 100, 7).into());
            tcp::Packet::new_unchecked(&mut frames[1][34..]).fill_checksum(src, dst);
            assert!(Segment::parse(&frames[1]).unwrap().checksum_ok(&frames[1]));
            assert_eq!(shape(&coalesce(&mut Coalescer::new(MAX_LEN), &frames)), [1, 1], "byte {at}");
        }
    }

    #[test]
    fn malformed_and_odd_frames_pass_through() {
        let mut flow = FLOW;
        let good = data(&mut flow, MSS);
        let mut bad_ip_checksum = good.clone();
        bad_ip_checksum[14 + 10] ^= 1;
        let mut fragment = good.clone();
        fragment[14 + 6] |= 0x20;
        ipv4::Packet::new_unchecked(&mut fragment[14..]).fill_checksum();
        let mut padded = good.clone();
        padded.push(0);
        let arp = vec![0xffu8, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1];
        for frame in [bad_ip_checksum, fragment, padded, good[..100].to_vec(), arp, Vec::new()] {
            let mut writes = Vec::new();
            Coalescer::new(MAX_LEN).push(&frame, &mut |bytes: &[u8]| writes.push(bytes.to_vec()));
            assert_eq!(writes.len(), 1);
            assert_eq!(writes[0][..10], [0; 10]);
            assert_eq!(writes[0][10..], frame[..]);
        }
        assert!(Segment::parse(&good).is_some());
    }

    #[test]
    fn fixed_ident_only_with_df() {
        let mut flow = Flow { ident: 0, ident_step: 0, ..FLOW };
        let frames: Vec<Vec<u8>> = (0..4).map(|_| data(&mut flow, MSS)).collect();
        let writes = coalesce(&mut Coalescer::new(MAX_LEN), &frames);
        assert_eq!(shape(&writes), [4]);
        // The kernel would number the segments up from the first's.
        for (i, (got, want)) in unpack_all(&writes).iter().zip(&frames).enumerate() {
            assert_eq!(ipv4::Packet::new_checked(&got[14..]).unwrap().ident(), i as u16);
            assert_eq!(got[34..], want[34..]);
        }
        // Once fixed, counting up does not join.
        let mut frames = frames;
        frames.push(data(&mut Flow { ident: 4, ..flow }, MSS));
        assert_eq!(shape(&coalesce(&mut Coalescer::new(MAX_LEN), &frames)), [4, 1]);
        // Without DF, a fixed ident is not merged.
        let mut flow = Flow { ident: 0, ident_step: 0, dont_frag: false, ..FLOW };
        let frames: Vec<Vec<u8>> = (0..2).map(|_| data(&mut flow, MSS)).collect();
        assert_eq!(shape(&coalesce(&mut Coalescer::new(MAX_LEN), &frames)), [1, 1]);
        // Counting up without DF is.
        let mut flow = Flow { dont_frag: false, ..FLOW };
        let frames: Vec<Vec<u8>> = (0..2).map(|_| data(&mut flow, MSS)).collect();
        assert_eq!(shape(&coalesce(&mut Coalescer::new(MAX_LEN), &frames)), [2]);
    }

    #[test]
    fn runs_split_at_the_ip_length_limit() {
        // 52 + 45 × 1448 = 65212 fits the IPv4 total length; 46 would not.
        let mut flow = FLOW;
        let frames: Vec<Vec<u8>> = (0..50).map(|_| data(&mut flow, MSS)).collect();
        let writes = coalesce(&mut Coalescer::new(MAX_LEN), &frames);
        assert_eq!(shape(&writes), [45, 5]);
        assert_eq!(unpack_all(&writes), frames);
        // IPv6: 32 + 45 × 1448 = 65192 fits the payload length.
        let mut flow = Flow { v6: true, ..FLOW };
        let frames: Vec<Vec<u8>> = (0..50).map(|_| data(&mut flow, MSS)).collect();
        let writes = coalesce(&mut Coalescer::new(1 << 20), &frames);
        assert_eq!(shape(&writes), [45, 5]);
        assert_eq!(unpack_all(&writes), frames);
        // Exactly 65535 bytes of IPv4 is allowed (52 + 65483), with a max_len
        // above it.
        let mut flow = FLOW;
        let frames = vec![data(&mut flow, 32_000), data(&mut flow, 32_000), data(&mut flow, 1483)];
        let writes = coalesce(&mut Coalescer::new(1 << 20), &frames);
        assert_eq!(shape(&writes), [3]);
        assert_eq!(writes[0].len(), 10 + 14 + 65_535);
        let mut flow = FLOW;
        let frames = vec![data(&mut flow, 32_000), data(&mut flow, 32_000), data(&mut flow, 1484)];
        assert_eq!(shape(&coalesce(&mut Coalescer::new(1 << 20), &frames)), [2, 1], "one byte over");
    }

    #[test]
    fn runs_split_at_max_len() {
        let mut flow = FLOW;
        let frames: Vec<Vec<u8>> = (0..7).map(|_| data(&mut flow, MSS)).collect();
        let writes = coalesce(&mut Coalescer::new(10 + V4_HEADERS + 3 * MSS), &frames);
        assert_eq!(shape(&writes), [3, 3, 1]);
        assert!(writes.iter().all(|w| w.len() <= 10 + V4_HEADERS + 3 * MSS));
        assert_eq!(unpack_all(&writes), frames);
        // Too small for one frame: everything passes through.
        let writes = coalesce(&mut Coalescer::new(100), &frames);
        assert_eq!(shape(&writes), [1; 7]);
    }

    #[test]
    fn a_whole_superframe_goes_out_as_gso_after_the_held_run() {
        for v6 in [false, true] {
            let mut flow = Flow { v6, ..FLOW };
            let held = data(&mut flow, MSS);
            let body = payload(3, 5000);
            let mut superframe = segment(&mut flow, &body, tcp::Flags::ACK | tcp::Flags::PSH);
            // Its checksum field as a sender's stack leaves it: not valid.
            let l4 = if v6 { V6_HEADERS } else { V4_HEADERS } - 32;
            superframe[l4 + 16] ^= 0x5a;
            let mut coalescer = Coalescer::new(MAX_LEN);
            let mut out = Vec::new();
            let mut write = |bytes: &[u8]| out.push(bytes.to_vec());
            coalescer.push(&held, &mut write);
            let whole = coalescer.take_superframe(&superframe, l4 + 32 + MSS, &mut write).unwrap();
            out.push(whole.parts(&superframe).concat());
            assert_eq!(out.len(), 2, "the held segment first, then the superframe");
            assert_eq!(unpack(&out[0]), vec![held.clone()]);
            let segments = unpack(&out[1]);
            assert_eq!(segments.len(), 4, "5000 bytes in segments of {MSS}");
            let headers = if v6 { V6_HEADERS } else { V4_HEADERS };
            let joined: Vec<u8> = segments.iter().flat_map(|s| s[headers..].to_vec()).collect();
            assert_eq!(joined, body);
        }
    }

    #[test]
    fn what_is_not_one_tcp_packet_is_not_taken_as_a_superframe() {
        let mut flow = FLOW;
        let frame = data(&mut flow, 3000);
        let mut coalescer = Coalescer::new(MAX_LEN);
        let mut out = Vec::new();
        let mut write = |bytes: &[u8]| out.push(bytes.to_vec());
        let segment = V4_HEADERS + MSS;
        let short = &frame[..frame.len() - 1];
        assert!(coalescer.take_superframe(short, segment, &mut write).is_none(), "IP length beyond the frame");
        let mut udp = frame.clone();
        udp[14 + 9] = 17;
        assert!(coalescer.take_superframe(&udp, segment, &mut write).is_none(), "not TCP (and a bad IP checksum)");
        assert!(coalescer.take_superframe(&frame, V4_HEADERS, &mut write).is_none(), "no room for a payload");
        assert!(Coalescer::new(1000).take_superframe(&frame, segment, &mut write).is_none(), "beyond max_len");
        let tagged = data(&mut Flow { vlan: Some(5), ..FLOW }, 3000);
        assert!(coalescer.take_superframe(&tagged, segment, &mut write).is_none());
        assert!(out.is_empty());
    }

    #[test]
    fn flush_of_nothing_writes_nothing() {
        let mut coalescer = Coalescer::new(MAX_LEN);
        let mut writes = 0;
        coalescer.flush(&mut |_: &[u8]| writes += 1);
        let mut flow = FLOW;
        coalescer.push(&data(&mut flow, MSS), &mut |_: &[u8]| writes += 1);
        assert_eq!(writes, 0, "held");
        coalescer.flush(&mut |_: &[u8]| writes += 1);
        coalescer.flush(&mut |_: &[u8]| writes += 1);
        assert_eq!(writes, 1);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// One step: which flow, how much payload, and whether PSH is set.
        fn step() -> impl Strategy<Value = (usize, usize, bool)> {
            let len = prop_oneof![6 => Just(MSS), 2 => 0usize..=MSS, 1 => Just(0usize), 1 => 1usize..=3000];
            (0usize..2, len, proptest::bool::weighted(0.1))
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            /// Every frame comes out once, in order, byte for byte, whether
            /// passed through or segmented back out of a superframe.
            #[test]
            fn every_frame_comes_out_once_in_order(
                steps in proptest::collection::vec(step(), 0..80),
                v6 in any::<[bool; 2]>(),
                max_len in prop_oneof![Just(MAX_LEN), 200usize..20_000],
                batch in 1usize..20,
            ) {
                let mut flows = [Flow { v6: v6[0], ..FLOW }, Flow { v6: v6[1], src_port: 40001, ..FLOW }];
                let frames: Vec<Vec<u8>> = steps
                    .iter()
                    .map(|&(flow, len, psh)| {
                        let flags = if psh && len > 0 { tcp::Flags::ACK | tcp::Flags::PSH } else { tcp::Flags::ACK };
                        let bytes = payload(flows[flow].seq as usize, len);
                        segment(&mut flows[flow], &bytes, flags)
                    })
                    .collect();
                let mut coalescer = Coalescer::new(max_len);
                let mut writes = Vec::new();
                for chunk in frames.chunks(batch) {
                    for frame in chunk {
                        coalescer.push(frame, &mut |bytes: &[u8]| writes.push(bytes.to_vec()));
                    }
                    coalescer.flush(&mut |bytes: &[u8]| writes.push(bytes.to_vec()));
                }
                prop_assert!(writes.iter().all(|w| w.len() <= max_len.max(10 + 3000 + V6_HEADERS)));
                prop_assert_eq!(unpack_all(&writes), frames);
            }

            #[test]
            fn arbitrary_frames_never_panic(
                frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 0..10),
                edits in proptest::collection::vec((0usize..1600, any::<u8>()), 0..4),
            ) {
                // Random bytes, and a valid run with a few bytes changed.
                let mut flow = FLOW;
                let mut run: Vec<Vec<u8>> = (0..3).map(|_| data(&mut flow, MSS)).collect();
                for (at, value) in edits {
                    let frame = &mut run[at % 3];
                    let at = at % frame.len();
                    frame[at] = value;
                }
                let mut coalescer = Coalescer::new(MAX_LEN);
                let mut count = 0;
                for frame in frames.iter().chain(&run) {
                    coalescer.push(frame, &mut |bytes: &[u8]| {
                        assert!(bytes.len() >= virtio_net::HEADER_LEN);
                        count += 1;
                    });
                }
                coalescer.flush(&mut |_: &[u8]| count += 1);
                prop_assert!(count >= 1 || frames.is_empty() && run.is_empty());
            }
        }
    }
}
