//! virtio-net header: every getter after `new_checked`, the setters read
//! back, and emit→parse of every `Repr` that parses (a canonical header also
//! comes back byte for byte).
#![no_main]

use dataplane::wire::virtio_net::{Checksum, Gso, Header, Repr, HEADER_LEN, HEADER_LEN_V1};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = Header::new_checked(data) else { return };
    let _ = (header.flags(), header.needs_csum(), header.data_valid(), header.gso_type_field());
    let _ = (header.gso_type(), header.gso_ecn(), header.hdr_len(), header.gso_size());
    let _ = (header.csum_start(), header.csum_offset());
    assert_eq!(header.num_buffers().is_some(), data.len() >= HEADER_LEN_V1);

    // Setters touch only their own field.
    let mut copy = data.to_vec();
    let mut edited = Header::new_unchecked(&mut copy[..]);
    edited.set_gso_type(header.gso_type());
    edited.set_gso_ecn(header.gso_ecn());
    edited.set_needs_csum(header.needs_csum());
    edited.set_data_valid(header.data_valid());
    edited.set_hdr_len(header.hdr_len());
    edited.set_gso_size(header.gso_size());
    edited.set_csum_start(header.csum_start());
    edited.set_csum_offset(header.csum_offset());
    if let Some(n) = header.num_buffers() {
        edited.set_num_buffers(n).unwrap();
    }
    assert_eq!(copy, data, "setting every field to itself changes nothing");

    let Ok(repr) = Repr::parse(&header) else { return };
    let mut out = [0u8; HEADER_LEN];
    repr.emit(&mut Header::new_unchecked(&mut out[..])).expect("a parsed virtio-net Repr emits");
    assert_eq!(Repr::parse(&Header::new_checked(&out[..]).unwrap()).unwrap(), repr);
    // A header with only the bits and fields its Repr gives meaning to comes
    // back byte for byte.
    let canonical_flags = match repr.checksum {
        Checksum::None => 0,
        Checksum::Partial { .. } => 1,
        Checksum::Valid => 2,
    };
    let needs_offsets = matches!(repr.checksum, Checksum::Partial { .. });
    let canonical = header.flags() == canonical_flags
        && (repr.gso != Gso::None || header.gso_size() == 0)
        && (needs_offsets || (header.csum_start() == 0 && header.csum_offset() == 0));
    if canonical {
        assert_eq!(out[..], data[..HEADER_LEN]);
    }
});
