//! IPv4: every getter and the options iterator after `new_checked` and after
//! `new_quoted`, and emit→parse of every `Repr` that parses.
#![no_main]

use dataplane::wire::ipv4::{Packet, Repr};
use libfuzzer_sys::fuzz_target;

fn getters(packet: &Packet<&[u8]>) {
    let _ = (packet.version(), packet.header_len(), packet.dscp(), packet.ecn(), packet.total_len());
    let _ = (packet.ident(), packet.dont_frag(), packet.more_frags(), packet.frag_offset(), packet.hop_limit());
    let _ = (packet.next_header(), packet.checksum(), packet.src_addr(), packet.dst_addr(), packet.options());
    let _ = (packet.payload(), packet.verify_checksum(), packet.is_fragment(), packet.is_first_fragment());
    for option in packet.options_iter() {
        let _ = option;
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(quoted) = Packet::new_quoted(data) {
        getters(&quoted);
    }
    let Ok(packet) = Packet::new_checked(data) else { return };
    getters(&packet);
    let Ok(repr) = Repr::parse(&packet) else { return };
    let mut out = vec![0u8; repr.buffer_len()];
    let mut emitted = Packet::new_unchecked(&mut out[..]);
    repr.emit(&mut emitted).expect("a parsed IPv4 Repr emits");
    emitted.payload_mut().copy_from_slice(packet.payload());
    assert_eq!(Repr::parse(&Packet::new_checked(&out[..]).unwrap()).unwrap(), repr);
});
