//! IPv6: every getter after `new_checked` and `new_quoted`, the extension-
//! header walk (iterator and `upper_layer` must agree), the extension and
//! fragment header views, and emit→parse of every `Repr` that parses.
#![no_main]

use dataplane::wire::ipv6::{self, ExtHeader, ExtHeaders, FragmentHeader, FragmentRepr, Packet, Repr};
use dataplane::wire::IpProtocol;
use libfuzzer_sys::fuzz_target;

fn getters(packet: &Packet<&[u8]>) {
    let _ = (packet.version(), packet.traffic_class(), packet.flow_label(), packet.payload_len());
    let _ = (packet.next_header(), packet.hop_limit(), packet.src_addr(), packet.dst_addr(), packet.payload());
    let walked = packet.upper_layer();
    let mut iter = ExtHeaders::new(packet.next_header(), packet.payload());
    let mut failed = false;
    for header in &mut iter {
        match header {
            Ok((IpProtocol::Ipv6Frag, bytes)) => {
                let view = FragmentHeader::new_checked(bytes).expect("the walk checked the fragment header");
                let _ = (view.next_header(), view.frag_offset(), view.more_frags(), view.ident());
                let _ = FragmentRepr::parse(&view);
            }
            Ok((_, bytes)) => {
                let view = ExtHeader::new_checked(bytes).expect("the walk checked the extension header");
                let _ = (view.next_header(), view.header_len(), view.data());
            }
            Err(_) => failed = true,
        }
    }
    assert_eq!(failed, walked.is_err(), "the iterator and upper_layer agree on errors");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(quoted) = Packet::new_quoted(data) {
        getters(&quoted);
    }
    let _ = ipv6::upper_layer(IpProtocol::from(data.first().copied().unwrap_or(0)), data.get(1..).unwrap_or(&[]));
    let Ok(packet) = Packet::new_checked(data) else { return };
    getters(&packet);
    let Ok(repr) = Repr::parse(&packet) else { return };
    let mut out = vec![0u8; repr.buffer_len()];
    let mut emitted = Packet::new_unchecked(&mut out[..]);
    repr.emit(&mut emitted).expect("a parsed IPv6 Repr emits");
    emitted.payload_mut().copy_from_slice(packet.payload());
    let emitted = Packet::new_checked(&out[..]).unwrap();
    assert_eq!(Repr::parse(&emitted).unwrap(), repr);
    assert_eq!(emitted.upper_layer(), packet.upper_layer());
});
