//! VXLAN: every getter after `new_checked`, and emit→parse of every `Repr`
//! that parses (reserved bits come back zero).
#![no_main]

use dataplane::wire::vxlan::{Packet, Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else { return };
    let _ = (packet.flags(), packet.i_flag(), packet.vni(), packet.payload());
    let Ok(repr) = Repr::parse(&packet) else { return };
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut out[..])).expect("a parsed VXLAN Repr emits");
    assert_eq!(out[0], 0x08);
    assert_eq!(Repr::parse(&Packet::new_checked(&out[..]).unwrap()).unwrap(), repr);
});
