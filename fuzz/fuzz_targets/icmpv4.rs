//! ICMPv4: every getter and the quoted datagram after `new_checked`, and
//! emit→parse of every `Repr` that parses.
#![no_main]

use dataplane::wire::icmpv4::{Packet, Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else { return };
    let _ = (packet.msg_type(), packet.msg_code(), packet.checksum(), packet.echo_ident(), packet.echo_seq_no());
    let _ = (packet.next_hop_mtu(), packet.data(), packet.verify_checksum());
    if let Ok(quoted) = packet.embedded_ipv4() {
        let _ = (quoted.src_addr(), quoted.dst_addr(), quoted.next_header(), quoted.payload(), quoted.options());
    }
    let Ok(repr) = Repr::parse(&packet) else { return };
    let mut out = vec![0u8; repr.buffer_len()];
    let mut emitted = Packet::new_unchecked(&mut out[..]);
    repr.emit(&mut emitted).expect("a parsed ICMPv4 Repr emits");
    emitted.data_mut().copy_from_slice(&packet.data()[..repr.buffer_len() - 8]);
    emitted.fill_checksum();
    let emitted = Packet::new_checked(&out[..]).unwrap();
    assert!(emitted.verify_checksum());
    assert_eq!(Repr::parse(&emitted).unwrap(), repr);
});
