//! Userspace GRO: arbitrary frames (each prefixed by a 2-byte length; with
//! its top bit set, the frame is offered as one that arrived whole,
//! `Coalescer::take_superframe`) pushed through a `Coalescer`. Checked:
//! nothing panics; every write starts with a virtio header that parses; a
//! GSO superframe segments back (with `gso::Segmenter`) into frames that each
//! parse — at least two for a coalesced one, at least one for a whole one.
#![no_main]

use dataplane::gro::Coalescer;
use dataplane::gso::Segmenter;
use dataplane::wire::virtio_net;
use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
    check_segments(bytes, 2);
}

fn check_segments(bytes: &[u8], at_least: usize) {
    let header = virtio_net::Header::new_checked(bytes).expect("every write starts with a virtio header");
    let repr = virtio_net::Repr::parse(&header).expect("the coalescer writes valid virtio headers");
    let frame = &bytes[virtio_net::HEADER_LEN..];
    if !repr.gso.is_gso() {
        return;
    }
    let mut segments = Segmenter::new(frame, &repr).expect("a coalesced superframe segments");
    let mut out = vec![0u8; segments.max_segment_len()];
    let mut count = 0;
    while let Some(segment) = segments.next_into(&mut out) {
        let len = segment.expect("every segment of a coalesced superframe is valid");
        dataplane::wire::dissect::layers(&out[..len]).expect("each segment is a whole frame");
        count += 1;
    }
    assert!(count >= at_least, "a superframe holds at least {at_least} segment(s)");
}

fuzz_target!(|data: &[u8]| {
    let Some((&limit, mut rest)) = data.split_first() else { return };
    let mut coalescer = Coalescer::new(1500 + usize::from(limit) * 256);
    let mut write = |bytes: &[u8]| check(bytes);
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi & 0x7f, *lo])).min(tail.len());
        let frame = &tail[..len];
        if *hi & 0x80 == 0 {
            coalescer.push(frame, &mut write);
        } else if let Some(whole) = coalescer.take_superframe(frame, 1514, &mut write) {
            let bytes = whole.parts(frame).concat();
            assert_eq!(bytes.len(), virtio_net::HEADER_LEN + frame.len());
            check_segments(&bytes, 1);
        }
        rest = &tail[len..];
    }
    coalescer.flush(&mut write);
});
