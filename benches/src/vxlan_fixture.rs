//! The VTEP bench's world, shared by `benches/vxlan.rs` and
//! `examples/vxlan_profile.rs`: two underlay addresses, two MACs, the frame
//! sizes, the inner frames and the VTEPs (one VNI, 42).

use std::net::{IpAddr, Ipv4Addr};

use dataplane::vxlan::{Vni, VniConfig, Vtep, VtepConfig};
use dataplane::wire::{udp, EthernetAddress, IpProtocol};

pub const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
pub const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
pub const MAC_HERE: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
pub const MAC_THERE: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
pub const SIZES: [usize; 3] = [64, 512, 1450];

/// An inner Ethernet / IPv4 / UDP frame of `len` bytes from `src` to `dst`.
pub fn inner_frame(src: EthernetAddress, dst: EthernetAddress, len: usize) -> Vec<u8> {
    let mut frame = vec![0x5a; len];
    let udp_len = len - 14 - 20;
    let at = crate::emit_eth_ipv4(
        &mut frame,
        (src, dst),
        (Ipv4Addr::new(198, 51, 100, 1), Ipv4Addr::new(198, 51, 100, 2)),
        IpProtocol::Udp,
        udp_len,
    );
    udp::Repr { src_port: 40000, dst_port: 5201, payload_len: udp_len - 8 }
        .emit(&mut udp::Packet::new_unchecked(&mut frame[at..]))
        .expect("udp header fits");
    frame
}

/// A VTEP on VNI 42 with `remote` in its flood list, and a static FDB entry
/// for `peer_mac` if given (the sender's), or none (the receiver's: it learns
/// the sender's MAC from the first datagram, as with learning on).
pub fn vtep(local: IpAddr, remote: IpAddr, peer_mac: Option<EthernetAddress>) -> Vtep {
    let vni = Vni::new(42).expect("42 is a VNI");
    let mut vni_config = VniConfig::new(vni, 0).remote(remote);
    if let Some(mac) = peer_mac {
        vni_config = vni_config.static_entry(mac, remote);
    }
    Vtep::new(VtepConfig::new(local).vni(vni_config)).expect("valid bench config")
}
