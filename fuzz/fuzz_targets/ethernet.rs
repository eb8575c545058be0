//! Ethernet II with 802.1Q / 802.1ad tags: every getter after `new_checked`,
//! and emit→parse of every `Repr` that parses.
#![no_main]

use dataplane::wire::ethernet::{Frame, Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = Frame::new_checked(data) else { return };
    let _ = (frame.dst_addr(), frame.src_addr(), frame.vlan_tags(), frame.ethertype(), frame.header_len());
    assert!(frame.header_len() + frame.payload().len() == data.len());
    let Ok(repr) = Repr::parse(&frame) else { return };
    let mut out = vec![0u8; repr.buffer_len()];
    if repr.emit(&mut Frame::new_unchecked(&mut out[..])).is_ok() {
        assert_eq!(out[..], data[..repr.buffer_len()], "emit of a parsed header gives back its bytes");
        assert_eq!(Repr::parse(&Frame::new_checked(&out[..]).unwrap()).unwrap(), repr);
    }
});
