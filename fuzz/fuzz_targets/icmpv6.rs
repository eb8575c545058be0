//! ICMPv6: every getter, the quoted packet and the NDP options after
//! `new_checked`, and emit→parse of every `Repr` that parses.
#![no_main]

use std::net::Ipv6Addr;

use dataplane::wire::icmpv6::{Packet, Repr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else { return };
    let _ = (packet.msg_type(), packet.msg_code(), packet.checksum(), packet.echo_ident(), packet.echo_seq_no());
    let _ = (packet.pkt_too_big_mtu(), packet.param_problem_ptr(), packet.data(), packet.target_addr());
    let _ = (packet.router_flag(), packet.solicited_flag(), packet.override_flag());
    for option in packet.ndp_options() {
        let _ = option;
    }
    if let Ok(quoted) = packet.embedded_ipv6() {
        let _ = (quoted.src_addr(), quoted.dst_addr(), quoted.next_header(), quoted.payload(), quoted.upper_layer());
    }
    let (src, dst) = (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 2));
    let _ = packet.verify_checksum(src, dst);
    let Ok(repr) = Repr::parse(&packet) else { return };
    let mut out = vec![0u8; repr.buffer_len()];
    let mut emitted = Packet::new_unchecked(&mut out[..]);
    repr.emit(&mut emitted).expect("a parsed ICMPv6 Repr emits");
    if let Repr::EchoRequest { data_len, .. }
    | Repr::EchoReply { data_len, .. }
    | Repr::DstUnreachable { data_len, .. }
    | Repr::PktTooBig { data_len, .. }
    | Repr::TimeExceeded { data_len, .. }
    | Repr::ParamProblem { data_len, .. } = repr
    {
        emitted.data_mut().copy_from_slice(&packet.data()[..data_len]);
    }
    emitted.fill_checksum(src, dst);
    let emitted = Packet::new_checked(&out[..]).unwrap();
    assert!(emitted.verify_checksum(src, dst));
    assert_eq!(Repr::parse(&emitted).unwrap(), repr);
});
