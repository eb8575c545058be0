//! The whole-frame walk: Ethernet → ARP / IPv4 / IPv6 (extension headers) →
//! TCP / UDP / ICMP → VXLAN → inner Ethernet → IP → TCP / UDP / ICMP, on the
//! standard and the Linux VXLAN ports; then every layer's `Repr::parse` and
//! transport checksum verification, which must not panic either.
#![no_main]

use dataplane::wire::dissect::{dissect, Layers, Network, Transport};
use dataplane::wire::{arp, ethernet, icmpv4, icmpv6, ipv4, ipv6, tcp, udp, vxlan};
use libfuzzer_sys::fuzz_target;

fn reprs(layers: &Layers<'_>) {
    let _ = ethernet::Repr::parse(&layers.ethernet);
    let (src, dst) = match layers.network {
        Network::Arp(packet) => {
            let _ = arp::Repr::parse(&packet);
            return;
        }
        Network::Ipv4(packet) => {
            let _ = ipv4::Repr::parse(&packet);
            (packet.src_addr().into(), packet.dst_addr().into())
        }
        Network::Ipv6(packet, _) => {
            let _ = ipv6::Repr::parse(&packet);
            for header in ipv6::ExtHeaders::new(packet.next_header(), packet.payload()) {
                let _ = header;
            }
            (packet.src_addr().into(), packet.dst_addr().into())
        }
        Network::Other(_) => return,
    };
    match layers.transport {
        Transport::Tcp(segment) => {
            let _ = (tcp::Repr::parse(&segment), segment.verify_checksum(src, dst));
        }
        Transport::Udp(datagram) => {
            let _ = (udp::Repr::parse(&datagram), datagram.verify_checksum(src, dst));
        }
        Transport::Icmpv4(message) => {
            let _ = (icmpv4::Repr::parse(&message), message.verify_checksum());
        }
        Transport::Icmpv6(message) => {
            let _ = icmpv6::Repr::parse(&message);
            if let (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) = (src, dst) {
                let _ = message.verify_checksum(s, d);
            }
        }
        Transport::Fragment(_) | Transport::Other(_) | Transport::None => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(d) = dissect(data, &[vxlan::IANA_PORT, vxlan::LINUX_PORT]) else { return };
    reprs(&d.outer);
    if let Some((header, inner)) = d.vxlan {
        assert!(header.i_flag());
        let _ = vxlan::Repr::parse(&header).expect("dissect checked the I flag");
        reprs(&inner);
    }
});
