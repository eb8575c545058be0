//! ARP: every getter after `new_checked`, and emit→parse of every Ethernet/
//! IPv4 `Repr` that parses.
#![no_main]

use dataplane::wire::arp::{Packet, Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else { return };
    let _ = (packet.hardware_type(), packet.protocol_type(), packet.hardware_len(), packet.protocol_len());
    let _ = (packet.operation(), packet.source_hardware_addr(), packet.source_protocol_addr());
    let _ = (packet.target_hardware_addr(), packet.target_protocol_addr());
    let Ok(repr) = Repr::parse(&packet) else { return };
    let mut out = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Packet::new_unchecked(&mut out[..])).expect("a parsed ARP Repr emits");
    assert_eq!(out[..], data[..repr.buffer_len()]);
    assert_eq!(Repr::parse(&Packet::new_checked(&out[..]).unwrap()).unwrap(), repr);
});
