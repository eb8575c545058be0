//! UDP: every getter after `new_checked` (checksums over both families), and
//! emit→parse of every `Repr` that parses.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use dataplane::wire::udp::{Packet, Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else { return };
    let _ = (packet.src_port(), packet.dst_port(), packet.len(), packet.checksum(), packet.payload());
    let (v4a, v4b) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
    let _ = packet.verify_checksum(v4a.into(), v4b.into());
    let _ = packet.verify_checksum(Ipv6Addr::LOCALHOST.into(), Ipv6Addr::UNSPECIFIED.into());
    let _ = packet.verify_checksum(v4a.into(), Ipv6Addr::LOCALHOST.into());
    let Ok(repr) = Repr::parse(&packet) else { return };
    let mut out = vec![0u8; repr.buffer_len()];
    let mut emitted = Packet::new_unchecked(&mut out[..]);
    repr.emit(&mut emitted).expect("a parsed UDP Repr emits");
    emitted.payload_mut().copy_from_slice(packet.payload());
    emitted.fill_checksum(v4a.into(), v4b.into());
    let emitted = Packet::new_checked(&out[..]).unwrap();
    assert!(emitted.verify_checksum(v4a.into(), v4b.into()));
    assert_eq!(Repr::parse(&emitted).unwrap(), repr);
});
