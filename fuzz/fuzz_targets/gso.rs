//! GSO: an arbitrary virtio-net header and frame into `complete_in_place`
//! and the `Segmenter`, which must never panic. Every segment of a
//! superframe must parse with the wire views and carry valid IPv4 header and
//! transport checksums, and the segments' payloads must join into the
//! superframe's. When the first byte after the header is odd, the frame is
//! first made consistent (lengths, IPv4 header checksum, the partial
//! checksum and the csum offsets as the kernel writes them), so the deep
//! paths run, and an ordinary frame's completed checksum must then verify
//! too.
//!
//! Input: 10 bytes of virtio-net header, one control byte (bit 0: make
//! consistent; bit 1: UDP rather than TCP for an ordinary frame; bit 2: a
//! short output buffer, its length from the next byte), then the frame.
#![no_main]

use std::net::IpAddr;

use dataplane::gso::{complete_in_place, GsoError, Segmenter};
use dataplane::wire::virtio_net::{self, Checksum, Gso};
use dataplane::wire::{checksum, ethernet, ipv4, ipv6, tcp, udp, EtherType, IpProtocol};
use libfuzzer_sys::fuzz_target;

/// Where a frame's transport header and payload are, read with the wire
/// views; `None` if it is not Ethernet/IP/TCP-or-UDP without extensions.
struct Parts {
    src: IpAddr,
    dst: IpAddr,
    protocol: IpProtocol,
    l4: usize,
    /// The end of the IP packet (the IP length field).
    end: usize,
}

fn parts(frame: &[u8]) -> Option<Parts> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    let l3 = eth.header_len();
    match eth.ethertype() {
        EtherType::Ipv4 => {
            let ip = ipv4::Packet::new_checked(&frame[l3..]).ok()?;
            let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
            Some(Parts {
                src,
                dst,
                protocol: ip.next_header(),
                l4: l3 + ip.header_len(),
                end: l3 + usize::from(ip.total_len()),
            })
        }
        EtherType::Ipv6 => {
            let ip = ipv6::Packet::new_checked(&frame[l3..]).ok()?;
            let (src, dst) = (ip.src_addr().into(), ip.dst_addr().into());
            let l4 = l3 + ipv6::HEADER_LEN;
            Some(Parts { src, dst, protocol: ip.next_header(), l4, end: l4 + usize::from(ip.payload_len()) })
        }
        _ => None,
    }
}

/// Rewrites lengths, protocol numbers, the IPv4 header checksum, the partial
/// transport checksum and the virtio-net offsets so that the frame is what
/// a kernel could have written; `false` (the frame perhaps half rewritten)
/// if it is too short or not IP.
fn make_consistent(frame: &mut [u8], virtio: &mut virtio_net::Repr, udp_if_plain: bool) -> bool {
    let Ok(eth) = ethernet::Frame::new_checked(&frame[..]) else { return false };
    let (l3, ethertype) = (eth.header_len(), eth.ethertype());
    let udp = match virtio.gso {
        Gso::UdpL4 { .. } => true,
        Gso::None => udp_if_plain,
        _ => false,
    };
    let protocol = if udp { IpProtocol::Udp } else { IpProtocol::Tcp };
    let len = frame.len();
    let l4 = match ethertype {
        EtherType::Ipv4 if len >= l3 + ipv4::HEADER_LEN => {
            let mut ip = ipv4::Packet::new_unchecked(&mut frame[l3..]);
            ip.set_version(4);
            let ihl = ip.header_len().clamp(ipv4::HEADER_LEN, len - l3);
            ip.set_header_len(ihl & !3);
            ip.set_total_len(u16::try_from(len - l3).unwrap_or(u16::MAX));
            ip.set_more_frags(false);
            ip.set_frag_offset(0);
            ip.set_next_header(protocol);
            ip.fill_checksum();
            if let Gso::Tcpv6 { size, ecn } = virtio.gso {
                virtio.gso = Gso::Tcpv4 { size, ecn };
            }
            l3 + (ihl & !3)
        }
        EtherType::Ipv6 if len >= l3 + ipv6::HEADER_LEN => {
            let mut ip = ipv6::Packet::new_unchecked(&mut frame[l3..]);
            ip.set_version(6);
            ip.set_payload_len(u16::try_from(len - l3 - ipv6::HEADER_LEN).unwrap_or(u16::MAX));
            ip.set_next_header(protocol);
            if let Gso::Tcpv4 { size, ecn } = virtio.gso {
                virtio.gso = Gso::Tcpv6 { size, ecn };
            }
            l3 + ipv6::HEADER_LEN
        }
        _ => return false,
    };
    let Some(parts) = parts(frame) else { return false };
    let end = parts.end;
    let offset = if udp { 6 } else { 16 };
    if udp {
        if end < l4 + udp::HEADER_LEN {
            return false;
        }
        udp::Packet::new_unchecked(&mut frame[l4..end]).set_len(u16::try_from(end - l4).unwrap_or(u16::MAX));
    } else {
        if end < l4 + tcp::HEADER_LEN {
            return false;
        }
        let mut packet = tcp::Packet::new_unchecked(&mut frame[l4..end]);
        let data_offset = packet.header_len().clamp(tcp::HEADER_LEN, (end - l4).min(60));
        packet.set_header_len(data_offset & !3);
    }
    let pseudo = checksum::pseudo_header(parts.src, parts.dst, protocol, end - l4).unwrap_or(0);
    frame[l4 + offset..l4 + offset + 2].copy_from_slice(&pseudo.to_be_bytes());
    virtio.checksum = Checksum::Partial { start: l4 as u16, offset: offset as u16 };
    virtio.hdr_len = virtio.hdr_len.min(u16::try_from(len).unwrap_or(u16::MAX));
    true
}

/// Parses a segment with the wire views and verifies its checksums; returns
/// its transport payload.
fn verify_segment(segment: &[u8]) -> Vec<u8> {
    let parts = parts(segment).expect("a segment parses down to its transport header");
    let eth = ethernet::Frame::new_checked(segment).unwrap();
    if eth.ethertype() == EtherType::Ipv4 {
        let ip = ipv4::Packet::new_checked(&segment[eth.header_len()..]).unwrap();
        assert!(ip.verify_checksum(), "IPv4 header checksum");
        assert_eq!(eth.header_len() + usize::from(ip.total_len()), segment.len());
    }
    assert_eq!(parts.end, segment.len(), "IP length covers the segment exactly");
    let l4 = &segment[parts.l4..parts.end];
    match parts.protocol {
        IpProtocol::Tcp => {
            let packet = tcp::Packet::new_checked(l4).expect("TCP header parses");
            assert!(packet.verify_checksum(parts.src, parts.dst), "TCP checksum");
            packet.payload().to_vec()
        }
        IpProtocol::Udp => {
            let packet = udp::Packet::new_checked(l4).expect("UDP header parses");
            assert_eq!(usize::from(packet.len()), l4.len());
            assert_ne!(packet.checksum(), 0);
            assert!(packet.verify_checksum(parts.src, parts.dst), "UDP checksum");
            packet.payload().to_vec()
        }
        other => panic!("segment carries {other:?}"),
    }
}

/// The transport payload of a superframe the segmenter accepted.
fn superframe_payload(frame: &[u8]) -> &[u8] {
    let parts = parts(frame).expect("an accepted superframe parses");
    let l4 = &frame[parts.l4..parts.end];
    match parts.protocol {
        IpProtocol::Tcp => &l4[tcp::Packet::new_checked(l4).unwrap().header_len()..],
        _ => &l4[udp::HEADER_LEN..],
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < virtio_net::HEADER_LEN + 2 {
        return;
    }
    let (header, rest) = data.split_at(virtio_net::HEADER_LEN);
    let (control, out_hint, frame) = (rest[0], rest[1], &rest[2..]);
    let Ok(mut virtio) = virtio_net::Repr::parse(&virtio_net::Header::new_checked(header).unwrap()) else { return };
    let mut frame = frame.to_vec();
    let consistent = control & 1 != 0 && make_consistent(&mut frame, &mut virtio, control & 2 != 0);

    // In place: never panics; a consistent ordinary frame then verifies.
    let mut in_place = frame.clone();
    let completed = complete_in_place(&mut in_place, &virtio);
    if virtio.gso.is_gso() {
        assert_eq!(completed, Err(GsoError::NeedsSegmentation));
    }

    let Ok(mut segmenter) = Segmenter::new(&frame, &virtio) else { return };
    let max = segmenter.max_segment_len();
    let out_len = if control & 4 != 0 { usize::from(out_hint) } else { max };
    let mut out = vec![0u8; out_len];
    let mut joined = Vec::new();
    let mut count = 0;
    while let Some(result) = segmenter.next_into(&mut out) {
        let len = match result {
            Ok(len) => len,
            Err(GsoError::OutputTooSmall { need, have }) => {
                assert!(need <= max && have == out_len && out_len < need);
                return;
            }
            Err(error) => panic!("next_into failed after new succeeded: {error}"),
        };
        count += 1;
        let segment = &out[..len];
        if virtio.gso.is_gso() {
            joined.extend_from_slice(&verify_segment(segment));
        } else {
            assert_eq!(segment, &in_place[..], "the copy is the frame completed in place");
            let partial_consistent = consistent && matches!(virtio.checksum, Checksum::Partial { .. });
            if let (true, Some(parts)) = (partial_consistent, parts(segment)) {
                if parts.end == segment.len() {
                    verify_segment(segment);
                }
            }
        }
    }
    assert_eq!(count, segmenter.segment_count());
    if virtio.gso.is_gso() {
        assert_eq!(joined, superframe_payload(&frame), "segments join into the superframe's payload");
    }
});
