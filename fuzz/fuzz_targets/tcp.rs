//! TCP: every getter and the options iterator after `new_checked`, and
//! emit→parse of every `Repr` that parses and emits (a peer may pack options
//! more tightly than the canonical layout, which then does not fit).
#![no_main]

use std::net::Ipv6Addr;

use dataplane::wire::tcp::{Packet, Repr, TcpOption};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else { return };
    let _ = (packet.src_port(), packet.dst_port(), packet.seq_number(), packet.ack_number());
    let _ = (packet.header_len(), packet.flags(), packet.window_len(), packet.checksum(), packet.urgent_at());
    let _ = (packet.fin(), packet.syn(), packet.rst(), packet.psh(), packet.ack(), packet.urg(), packet.ece());
    let _ = (packet.cwr(), packet.ns(), packet.options(), packet.payload());
    for option in packet.options_iter() {
        if let Ok(TcpOption::SackRange(blocks)) = option {
            for block in blocks.iter() {
                let _ = block;
            }
        }
    }
    let (a, b) = (Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED);
    let _ = packet.verify_checksum(a.into(), b.into());
    let Ok(repr) = Repr::parse(&packet) else { return };
    let mut out = vec![0u8; repr.buffer_len()];
    let mut emitted = Packet::new_unchecked(&mut out[..]);
    if repr.emit(&mut emitted).is_err() {
        return;
    }
    emitted.payload_mut().copy_from_slice(packet.payload());
    emitted.fill_checksum(a.into(), b.into());
    let emitted = Packet::new_checked(&out[..]).unwrap();
    assert!(emitted.verify_checksum(a.into(), b.into()));
    assert_eq!(Repr::parse(&emitted).unwrap(), repr);
});
