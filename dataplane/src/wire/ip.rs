//! IP protocol numbers, shared by IPv4's Protocol field and IPv6's Next
//! Header field (IANA "Assigned Internet Protocol Numbers").

enum_with_unknown! {
    /// The protocol of the payload of an IPv4 packet, or an IPv6 Next Header.
    pub enum IpProtocol(u8) {
        /// IPv6 hop-by-hop options (RFC 8200 §4.3).
        HopByHop = 0,
        Icmp = 1,
        Igmp = 2,
        Tcp = 6,
        Udp = 17,
        /// IPv6 routing header (RFC 8200 §4.4).
        Ipv6Route = 43,
        /// IPv6 fragment header (RFC 8200 §4.5).
        Ipv6Frag = 44,
        Esp = 50,
        Ah = 51,
        Icmpv6 = 58,
        /// IPv6 "no next header" (RFC 8200 §4.7).
        Ipv6NoNxt = 59,
        /// IPv6 destination options (RFC 8200 §4.6).
        Ipv6Opts = 60,
    }
}

impl IpProtocol {
    /// Whether this is one of the IPv6 extension headers that
    /// [`crate::wire::ipv6`] walks (hop-by-hop, routing, fragment,
    /// destination options).
    pub fn is_ipv6_extension(self) -> bool {
        matches!(self, IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Frag | IpProtocol::Ipv6Opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for n in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(n)), n);
        }
        assert_eq!(IpProtocol::from(6), IpProtocol::Tcp);
        assert_eq!(IpProtocol::from(200), IpProtocol::Unknown(200));
        assert!(IpProtocol::Ipv6Frag.is_ipv6_extension());
        assert!(!IpProtocol::Udp.is_ipv6_extension());
    }
}
