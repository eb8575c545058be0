//! A VXLAN endpoint built only from `dataplane::wire` emitters, to check them
//! against the Linux kernel: run inside a namespace whose peer has a kernel
//! `vxlan` device, it sends frames it built itself — ICMP and ICMPv6 echo, a
//! TCP SYN with options, a UDP datagram — and answers the kernel's ARP and
//! neighbour solicitations, until the kernel's replies prove each frame was
//! accepted (a bad checksum or length is dropped silently by the kernel, so
//! no reply comes).
//!
//! Usage: `vxlan-probe LOCAL REMOTE VNI PEER_MAC`; the overlay addresses are
//! fixed: 198.51.100.1 and 2001:db8:42::1 here, .2 and ::2 at the peer.
//! Prints one line per check and exits 0 when all passed, 1 otherwise.

#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use dataplane::wire::dissect::{layers, Network, Transport};
use dataplane::wire::ethernet::{self, VlanTags};
use dataplane::wire::vxlan::{self, Vni};
use dataplane::wire::{self, arp, icmpv4, icmpv6, ipv4, ipv6, tcp, udp, EtherType, EthernetAddress, IpProtocol};

const OUR_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x5e, 0x00, 0x00, 0x01]);
const OUR_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const PEER_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const OUR_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x42, 0, 0, 0, 0, 1);
const PEER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x42, 0, 0, 0, 0, 2);
const IDENT: u16 = 0x7768;
const PAYLOAD: &[u8] = b"wharf wire probe";
const TCP_CLOSED_PORT: u16 = 9;
const UDP_CLOSED_PORT: u16 = 33434;
const OUR_PORT: u16 = 40000;
const SYN_SEQ: u32 = 0x1000_0000;

/// The four things the kernel must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Echo4,
    Echo6,
    TcpReset,
    PortUnreachable,
}

const CHECKS: [Check; 4] = [Check::Echo4, Check::Echo6, Check::TcpReset, Check::PortUnreachable];

struct Probe {
    socket: UdpSocket,
    remote: SocketAddr,
    vni: Vni,
    peer_mac: EthernetAddress,
    buf: [u8; 2048],
}

type Result<T> = std::result::Result<T, String>;

impl Probe {
    /// Builds VXLAN + Ethernet into `buf` and returns where the network
    /// header starts.
    fn start_frame(&mut self, dst: EthernetAddress, ethertype: EtherType) -> Result<usize> {
        let header = vxlan::Repr { vni: self.vni };
        header.emit(&mut vxlan::Packet::new_unchecked(&mut self.buf[..])).map_err(|e| format!("vxlan emit: {e}"))?;
        let eth = ethernet::Repr { src_addr: OUR_MAC, dst_addr: dst, vlan_tags: VlanTags::None, ethertype };
        let at = vxlan::HEADER_LEN;
        eth.emit(&mut ethernet::Frame::new_unchecked(&mut self.buf[at..])).map_err(|e| format!("eth emit: {e}"))?;
        Ok(at + eth.buffer_len())
    }

    fn send(&self, len: usize) -> Result<()> {
        self.socket.send_to(&self.buf[..len], self.remote).map_err(|e| format!("send: {e}"))?;
        Ok(())
    }

    /// Writes an IPv4 header for `payload_len` bytes of `protocol` at `at`;
    /// returns where the payload starts.
    fn ipv4(&mut self, at: usize, protocol: IpProtocol, payload_len: usize) -> Result<usize> {
        let repr = ipv4::Repr {
            src_addr: OUR_V4,
            dst_addr: PEER_V4,
            next_header: protocol,
            payload_len,
            hop_limit: 64,
            dscp: 0,
            ecn: 0,
            ident: 0x4242,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            options: ipv4::Ipv4Options::default(),
        };
        repr.emit(&mut ipv4::Packet::new_unchecked(&mut self.buf[at..])).map_err(|e| format!("ipv4 emit: {e}"))?;
        Ok(at + repr.header_len())
    }

    fn ipv6(
        &mut self,
        at: usize,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        protocol: IpProtocol,
        payload_len: usize,
    ) -> Result<usize> {
        let repr = ipv6::Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: protocol,
            payload_len,
            hop_limit: 255,
            traffic_class: 0,
            flow_label: 0x12345,
        };
        repr.emit(&mut ipv6::Packet::new_unchecked(&mut self.buf[at..])).map_err(|e| format!("ipv6 emit: {e}"))?;
        Ok(at + repr.header_len())
    }

    fn send_echo4(&mut self, seq_no: u16) -> Result<()> {
        let icmp = icmpv4::Repr::EchoRequest { ident: IDENT, seq_no, data_len: PAYLOAD.len() };
        let at = self.start_frame(self.peer_mac, EtherType::Ipv4)?;
        let at = self.ipv4(at, IpProtocol::Icmp, icmp.buffer_len())?;
        let end = at + icmp.buffer_len();
        let mut packet = icmpv4::Packet::new_unchecked(&mut self.buf[at..end]);
        icmp.emit(&mut packet).map_err(|e| format!("icmpv4 emit: {e}"))?;
        packet.data_mut().copy_from_slice(PAYLOAD);
        packet.fill_checksum();
        self.send(end)
    }

    fn send_echo6(&mut self, seq_no: u16) -> Result<()> {
        let icmp = icmpv6::Repr::EchoRequest { ident: IDENT, seq_no, data_len: PAYLOAD.len() };
        let at = self.start_frame(self.peer_mac, EtherType::Ipv6)?;
        let at = self.ipv6(at, OUR_V6, PEER_V6, IpProtocol::Icmpv6, icmp.buffer_len())?;
        let end = at + icmp.buffer_len();
        let mut packet = icmpv6::Packet::new_unchecked(&mut self.buf[at..end]);
        icmp.emit(&mut packet).map_err(|e| format!("icmpv6 emit: {e}"))?;
        packet.data_mut().copy_from_slice(PAYLOAD);
        packet.fill_checksum(OUR_V6, PEER_V6);
        self.send(end)
    }

    fn send_syn(&mut self) -> Result<()> {
        let syn = tcp::Repr {
            src_port: OUR_PORT,
            dst_port: TCP_CLOSED_PORT,
            seq_number: SYN_SEQ,
            ack_number: 0,
            flags: tcp::Flags::SYN,
            window_len: 64240,
            urgent_at: 0,
            max_seg_size: Some(1410),
            window_scale: Some(7),
            sack_permitted: true,
            sack_ranges: [None; 4],
            timestamp: Some((1, 0)),
            payload_len: 0,
        };
        let at = self.start_frame(self.peer_mac, EtherType::Ipv4)?;
        let at = self.ipv4(at, IpProtocol::Tcp, syn.buffer_len())?;
        let end = at + syn.buffer_len();
        let mut packet = tcp::Packet::new_unchecked(&mut self.buf[at..end]);
        syn.emit(&mut packet).map_err(|e| format!("tcp emit: {e}"))?;
        packet.fill_checksum(OUR_V4.into(), PEER_V4.into());
        self.send(end)
    }

    fn send_udp(&mut self) -> Result<()> {
        let datagram = udp::Repr { src_port: OUR_PORT, dst_port: UDP_CLOSED_PORT, payload_len: PAYLOAD.len() };
        let at = self.start_frame(self.peer_mac, EtherType::Ipv4)?;
        let at = self.ipv4(at, IpProtocol::Udp, datagram.buffer_len())?;
        let end = at + datagram.buffer_len();
        let mut packet = udp::Packet::new_unchecked(&mut self.buf[at..end]);
        datagram.emit(&mut packet).map_err(|e| format!("udp emit: {e}"))?;
        packet.payload_mut().copy_from_slice(PAYLOAD);
        packet.fill_checksum(OUR_V4.into(), PEER_V4.into());
        self.send(end)
    }

    fn send_arp_reply(&mut self, to_mac: EthernetAddress, to_ip: Ipv4Addr) -> Result<()> {
        let reply = arp::Repr {
            operation: arp::Operation::Reply,
            source_hardware_addr: OUR_MAC,
            source_protocol_addr: OUR_V4,
            target_hardware_addr: to_mac,
            target_protocol_addr: to_ip,
        };
        let at = self.start_frame(to_mac, EtherType::Arp)?;
        reply.emit(&mut arp::Packet::new_unchecked(&mut self.buf[at..])).map_err(|e| format!("arp emit: {e}"))?;
        self.send(at + reply.buffer_len())
    }

    fn send_neighbor_advert(&mut self, to_mac: EthernetAddress, to_ip: Ipv6Addr) -> Result<()> {
        let advert = icmpv6::Repr::NeighborAdvert {
            flags: icmpv6::NeighborFlags { router: false, solicited: true, override_: true },
            target_addr: OUR_V6,
            target_lladdr: Some(OUR_MAC),
        };
        let at = self.start_frame(to_mac, EtherType::Ipv6)?;
        let at = self.ipv6(at, OUR_V6, to_ip, IpProtocol::Icmpv6, advert.buffer_len())?;
        let end = at + advert.buffer_len();
        let mut packet = icmpv6::Packet::new_unchecked(&mut self.buf[at..end]);
        advert.emit(&mut packet).map_err(|e| format!("icmpv6 emit: {e}"))?;
        packet.fill_checksum(OUR_V6, to_ip);
        self.send(end)
    }

    /// Sends every pending check, then reads replies for half a second.
    fn round(&mut self, pending: &[Check], seq_no: u16, passed: &mut Vec<Check>) -> Result<()> {
        for check in pending {
            match check {
                Check::Echo4 => self.send_echo4(seq_no)?,
                Check::Echo6 => self.send_echo6(seq_no)?,
                Check::TcpReset => self.send_syn()?,
                Check::PortUnreachable => self.send_udp()?,
            }
        }
        let until = Instant::now() + Duration::from_millis(500);
        let mut rx = [0u8; 2048];
        while Instant::now() < until {
            let (len, from) = match self.socket.recv_from(&mut rx) {
                Ok(got) => got,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
                Err(e) => return Err(format!("recv: {e}")),
            };
            if from.ip() != self.remote.ip() {
                continue;
            }
            let header = vxlan::Packet::new_checked(&rx[..len]).map_err(|e| format!("reply VXLAN: {e}"))?;
            let repr = vxlan::Repr::parse(&header).map_err(|e| format!("reply VXLAN: {e}"))?;
            if repr.vni != self.vni {
                return Err(format!("reply on VNI {}, expected {}", repr.vni, self.vni));
            }
            let inner = layers(header.payload()).map_err(|e| format!("reply frame: {e}"))?;
            let src_mac = inner.ethernet.src_addr();
            match (inner.network, inner.transport) {
                (Network::Arp(packet), _) => {
                    let request = arp::Repr::parse(&packet).map_err(|e| format!("ARP: {e}"))?;
                    if request.operation == arp::Operation::Request && request.target_protocol_addr == OUR_V4 {
                        println!("answering ARP who-has {OUR_V4} from {}", request.source_protocol_addr);
                        self.send_arp_reply(request.source_hardware_addr, request.source_protocol_addr)?;
                    }
                }
                (Network::Ipv4(ip), Transport::Icmpv4(icmp)) => {
                    if !ip.verify_checksum() || !icmp.verify_checksum() {
                        return Err("bad checksum in the kernel's ICMP reply".into());
                    }
                    match known(icmpv4::Repr::parse(&icmp)).map_err(|e| format!("ICMP: {e}"))? {
                        Some(icmpv4::Repr::EchoReply { ident: IDENT, data_len, .. })
                            if icmp.data() == PAYLOAD && data_len == PAYLOAD.len() =>
                        {
                            passed.push(Check::Echo4)
                        }
                        Some(icmpv4::Repr::DstUnreachable {
                            reason: icmpv4::DstUnreachable::PortUnreachable, ..
                        }) => {
                            let quoted = icmp.embedded_ipv4().map_err(|e| format!("quoted datagram: {e}"))?;
                            let quoted_udp = udp::Packet::new_unchecked(quoted.payload());
                            if quoted.src_addr() == OUR_V4
                                && quoted.next_header() == IpProtocol::Udp
                                && quoted.payload().len() >= udp::HEADER_LEN
                                && quoted_udp.dst_port() == UDP_CLOSED_PORT
                            {
                                passed.push(Check::PortUnreachable);
                            }
                        }
                        other => println!("ignoring ICMP {other:?} (type {:?})", icmp.msg_type()),
                    }
                }
                (Network::Ipv4(ip), Transport::Tcp(segment)) => {
                    if !segment.verify_checksum(ip.src_addr().into(), ip.dst_addr().into()) {
                        return Err("bad checksum in the kernel's TCP reply".into());
                    }
                    let repr = tcp::Repr::parse(&segment).map_err(|e| format!("TCP: {e}"))?;
                    if repr.flags.contains(tcp::Flags::RST) && repr.ack_number == SYN_SEQ.wrapping_add(1) {
                        passed.push(Check::TcpReset);
                    }
                }
                (Network::Ipv6(ip, _), Transport::Icmpv6(icmp)) => {
                    if !icmp.verify_checksum(ip.src_addr(), ip.dst_addr()) {
                        return Err("bad checksum in the kernel's ICMPv6".into());
                    }
                    match known(icmpv6::Repr::parse(&icmp)).map_err(|e| format!("ICMPv6: {e}"))? {
                        Some(icmpv6::Repr::NeighborSolicit { target_addr, .. }) if target_addr == OUR_V6 => {
                            println!("answering neighbour solicitation for {OUR_V6} from {}", ip.src_addr());
                            self.send_neighbor_advert(src_mac, ip.src_addr())?;
                        }
                        Some(icmpv6::Repr::EchoReply { ident: IDENT, .. }) if icmp.data() == PAYLOAD => {
                            passed.push(Check::Echo6)
                        }
                        other => println!("ignoring ICMPv6 {other:?} (type {:?})", icmp.msg_type()),
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A parse result with messages the wire layer does not represent (MLD,
/// router solicitations) as `None`; a malformed message stays an error.
fn known<T>(parsed: wire::Result<T>) -> wire::Result<Option<T>> {
    match parsed {
        Ok(repr) => Ok(Some(repr)),
        Err(wire::Error::Unsupported) => Ok(None),
        Err(e) => Err(e),
    }
}

fn run(args: &[String]) -> Result<()> {
    let [local, remote, vni, peer_mac] = args else {
        return Err("usage: vxlan-probe LOCAL REMOTE VNI PEER_MAC".into());
    };
    let local: IpAddr = local.parse().map_err(|e| format!("LOCAL {local}: {e}"))?;
    let remote: IpAddr = remote.parse().map_err(|e| format!("REMOTE {remote}: {e}"))?;
    let vni = vni.parse().ok().and_then(Vni::new).ok_or_else(|| format!("VNI {vni}: not a 24-bit number"))?;
    let peer_mac: EthernetAddress = peer_mac.parse().map_err(|_| format!("PEER_MAC {peer_mac}: not a MAC address"))?;
    let socket = UdpSocket::bind((local, vxlan::IANA_PORT)).map_err(|e| format!("bind {local}: {e}"))?;
    socket.set_read_timeout(Some(Duration::from_millis(50))).map_err(|e| e.to_string())?;
    let mut probe = Probe { socket, remote: (remote, vxlan::IANA_PORT).into(), vni, peer_mac, buf: [0; 2048] };

    let mut passed = Vec::new();
    for seq_no in 1..=10 {
        let pending: Vec<Check> = CHECKS.iter().copied().filter(|c| !passed.contains(c)).collect();
        if pending.is_empty() {
            break;
        }
        probe.round(&pending, seq_no, &mut passed)?;
    }
    for check in CHECKS {
        println!("{check:?}: {}", if passed.contains(&check) { "ok" } else { "no reply" });
    }
    if CHECKS.iter().all(|c| passed.contains(c)) {
        Ok(())
    } else {
        Err("the kernel did not answer every frame".into())
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vxlan-probe: {e}");
            ExitCode::FAILURE
        }
    }
}
