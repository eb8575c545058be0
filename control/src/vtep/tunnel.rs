//! `--tunnel-gso`: TCP superframes handed to the kernel whole, as UDP-tunnel
//! GSO packets, instead of being cut into datagrams in userspace.
//!
//! A TCP superframe from a VNI's TAP (TSO, up to 64 KiB) is encapsulated
//! once: the VXLAN header before it, then outer IPv4, UDP and Ethernet
//! headers, and a 24-byte virtio-net header (`virtio_net::TunnelRepr`) that
//! says where the outer and inner headers are and what size to cut at. It is
//! written to a TAP of this module's own (`whtg%d`, `TUN_F_UDP_TUNNEL_GSO`,
//! Linux 6.17 or later), whose ingress tc redirects to the underlay device's
//! egress (`clsact`, a `u32` filter matching everything, `mirred egress
//! redirect`). From there the packet is the kernel's vxlan's own kind
//! (`SKB_GSO_UDP_TUNNEL`): a NIC with tunnel TSO or the kernel's GSO cuts it
//! at the last moment into ordinary VXLAN datagrams, each with its inner and
//! outer checksums and lengths right, and across a veth it stays whole to
//! the peer, whose vxlan decapsulates it whole.
//!
//! The packet skips the kernel's routing and neighbour tables, so this
//! module reads them itself: the underlay device is the one the main IPv4
//! routing table (`/proc/net/route`) sends the local address out of; each
//! remote's next hop (itself, or the gateway of its route out of that
//! device) must be in the ARP table (`/proc/net/arp`), re-read once a
//! second. A superframe to a remote without a resolved next hop, or one the
//! VTEP would flood, drop or answer, takes the ordinary path (cut into
//! datagrams, sent from the UDP sockets), which also makes the kernel
//! resolve the next hop. Since the kernel never sees these packets use its
//! neighbour entries, each second the entries of the next hops that carried
//! some are marked in use (rtnetlink `NTF_USE`, `dataplane::sys::neigh`), as
//! the kernel's vxlan would use them: the kernel then confirms a stale entry
//! with a unicast ARP, and a next hop that changed its MAC without saying so
//! fails that probe and is resolved again, instead of being sent to at its
//! old MAC for good.
//!
//! What this module does not do: IPv6 underlays, UDP superframes (USO),
//! head-end replication, policy routing or more than one underlay device.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::process::Command;

use dataplane::gso::{self, TCP_CSUM_OFFSET};
use dataplane::sys::neigh::NeighbourUse;
use dataplane::sys::tap::{Offloads, Tap, TapOptions};
use dataplane::vxlan::{Destinations, Forward, Vtep};
use dataplane::wire::virtio_net::{self, Checksum, Gso, TunnelRepr};
use dataplane::wire::{ethernet, ipv4, udp, vxlan, EtherType, EthernetAddress};

/// The bytes needed before an inner frame: the tunnel virtio-net header,
/// outer Ethernet, IPv4, UDP and VXLAN.
pub const HEADROOM: usize =
    virtio_net::HEADER_LEN_TUNNEL + ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN + vxlan::HEADER_LEN;

/// The TAP the superframes go out through, and where they go from there.
pub struct TunnelGso {
    tap: Tap,
    underlay: String,
    underlay_mac: EthernetAddress,
    underlay_index: u32,
    /// Per remote: where its packets go next.
    next_hops: Vec<NextHop>,
    /// Marks the next hops' neighbour entries in use.
    neighbours: NeighbourUse,
    /// Superframes sent whole.
    pub superframes: u64,
    /// Ordinary frames sent the same way.
    pub frames: u64,
    /// Superframes left to the ordinary path for want of a next hop.
    pub unresolved: u64,
    /// Writes to the TAP that failed: superframes lost.
    pub write_errors: u64,
    /// Neighbour entries the kernel would not mark in use (gone since the
    /// ARP table was read, for one).
    pub neighbour_errors: u64,
}

/// One remote's next hop.
#[derive(Debug, Clone, Copy)]
struct NextHop {
    remote: Ipv4Addr,
    /// The neighbour: the remote itself, or the gateway of its route.
    via: Option<Ipv4Addr>,
    /// Its MAC, once the ARP table has it.
    mac: Option<EthernetAddress>,
    /// Packets went to it this way since the last look-up.
    used: bool,
}

impl TunnelGso {
    /// Opens the TAP, redirects it to the underlay device that `local` is
    /// on, and looks up the next hops of `remotes` (each once; IPv6 ones are
    /// never sent this way). `outer_csum`: the outer UDP checksum is computed per
    /// segment.
    pub fn open(local: Ipv4Addr, remotes: &[IpAddr], outer_csum: bool) -> Result<TunnelGso, String> {
        let routes = fs::read_to_string("/proc/net/route").map_err(|e| format!("read /proc/net/route: {e}"))?;
        let (underlay, _) =
            route(&routes, local).ok_or_else(|| format!("no route out for the local address {local}"))?;
        let underlay_mac = dataplane::sys::mac(&underlay).map_err(|e| format!("{e}"))?;
        let underlay_index = dataplane::sys::ifindex(&underlay).map_err(|e| format!("{e}"))?;
        let neighbours = NeighbourUse::open().map_err(|e| format!("{e}"))?;
        let options =
            TapOptions { vnet_hdr: true, vnet_hdr_len: virtio_net::HEADER_LEN_TUNNEL, queues: 1, nonblocking: true };
        let tap = Tap::open("whtg%d", options).map_err(|e| format!("open a TAP: {e}"))?;
        let mut offloads = Offloads::CSUM | Offloads::TSO4 | Offloads::TSO6 | Offloads::UDP_TUNNEL_GSO;
        if outer_csum {
            offloads |= Offloads::UDP_TUNNEL_GSO_CSUM;
        }
        tap.set_offload(offloads)
            .map_err(|e| format!("{e} (UDP-tunnel GSO through a TAP needs Linux 6.17 or later)"))?;
        tap.set_up().map_err(|e| format!("bring {} up: {e}", tap.name()))?;
        redirect(tap.name(), &underlay)?;
        let mut v4: Vec<Ipv4Addr> = remotes
            .iter()
            .filter_map(|remote| match remote.to_canonical() {
                IpAddr::V4(remote) => Some(remote),
                IpAddr::V6(_) => None,
            })
            .collect();
        v4.sort_unstable();
        v4.dedup();
        let next_hops = v4.into_iter().map(|remote| NextHop { remote, via: None, mac: None, used: false }).collect();
        let mut tunnel = TunnelGso {
            tap,
            underlay,
            underlay_mac,
            underlay_index,
            next_hops,
            neighbours,
            superframes: 0,
            frames: 0,
            unresolved: 0,
            write_errors: 0,
            neighbour_errors: 0,
        };
        tunnel.refresh();
        Ok(tunnel)
    }

    /// The underlay device and the TAP, for the ready line.
    pub fn describe(&self) -> String {
        format!("TCP superframes whole through {} to {}", self.tap.name(), self.underlay)
    }

    /// Marks the neighbour entries that carried packets since the last
    /// refresh in use, then reads the routes and the ARP table again. The
    /// runner calls it once a second.
    pub fn refresh(&mut self) {
        self.neighbour_errors += self.neighbours.drain() as u64;
        for hop in &mut self.next_hops {
            if let (true, Some(via)) = (std::mem::take(&mut hop.used), hop.via) {
                if self.neighbours.mark_used(self.underlay_index, via).is_err() {
                    self.neighbour_errors += 1;
                }
            }
        }
        let (Ok(routes), Ok(arp)) = (fs::read_to_string("/proc/net/route"), fs::read_to_string("/proc/net/arp")) else {
            return;
        };
        for hop in &mut self.next_hops {
            hop.via = match route(&routes, hop.remote) {
                Some((device, gateway)) if device == self.underlay => Some(gateway.unwrap_or(hop.remote)),
                _ => None,
            };
            hop.mac = hop.via.and_then(|via| neighbour(&arp, via, &self.underlay));
        }
    }

    /// Sends the superframe `buf[frame]` (read with virtio-net header
    /// `inner`; at least [`HEADROOM`] bytes before it) whole, if it can go
    /// this way: true if it was taken (sent, or lost to a failed write and
    /// counted). False, with nothing sent or counted by the VTEP, for
    /// anything the ordinary path must take.
    pub fn send(
        &mut self,
        vtep: &mut Vtep,
        port: u16,
        buf: &mut [u8],
        frame: Range<usize>,
        inner: &virtio_net::Repr,
    ) -> bool {
        let Some((layout, inner_gso_type, gso_size)) = tcp_superframe(&buf[frame.clone()], inner) else {
            return false;
        };
        if frame.start < HEADROOM {
            return false;
        }
        // Only to a remote whose next hop is known: else nothing changes.
        let (mut asked, mut hop) = (false, None);
        let resolved = |remote: IpAddr| {
            asked = true;
            hop = self.next_hop(remote);
            hop.is_some()
        };
        let forward = vtep.encap_superframe(port, buf, frame.clone(), &layout, resolved);
        let (Some(Forward { datagram, src_port, to: Destinations::Unicast(remote), .. }), Some((at, mac))) =
            (forward, hop)
        else {
            if asked {
                self.unresolved += 1;
            }
            return false;
        };
        // encap_superframe checked that the encapsulation fits.
        let Some((packet, outer_csum)) = vtep.write_outer_gso(buf, datagram, remote, src_port, layout.segments as u16)
        else {
            return false;
        };
        let header = self.ethernet(buf, packet.start, mac);
        let outer = frame.start - (header + virtio_net::HEADER_LEN_TUNNEL);
        let tunnel = TunnelRepr {
            inner_gso_type,
            outer_v6: false,
            outer_csum,
            hdr_len: (outer + layout.header_len) as u16,
            gso_size,
            csum_start: (outer + layout.l4) as u16,
            csum_offset: TCP_CSUM_OFFSET as u16,
            outer_th: (ethernet::HEADER_LEN + ipv4::HEADER_LEN) as u16,
            inner_nh: (outer + layout.l3) as u16,
        };
        if let Some(out) = buf[header..].first_chunk_mut::<{ virtio_net::HEADER_LEN_TUNNEL }>() {
            tunnel.emit(out);
        }
        if self.write(&buf[header..frame.end], at) {
            self.superframes += 1;
        }
        true
    }

    /// Sends an ordinary frame that [`Vtep::encap`] made the VXLAN datagram
    /// `buf[forward.datagram]` (at least [`HEADROOM`] bytes before it; its
    /// checksums complete) the same way as the superframes, if it goes to
    /// one remote whose next hop is known: true if it was taken (sent, or
    /// lost to a failed write and counted).
    pub fn send_frame(&mut self, vtep: &Vtep, buf: &mut [u8], forward: &Forward) -> bool {
        let Destinations::Unicast(remote) = forward.to else { return false };
        if forward.datagram.start < HEADROOM {
            return false;
        }
        let Some((at, mac)) = self.next_hop(remote) else { return false };
        let Some(packet) = vtep.write_outer(buf, forward.datagram.clone(), remote, forward.src_port) else {
            return false;
        };
        let header = self.ethernet(buf, packet.start, mac);
        buf[header..header + virtio_net::HEADER_LEN_TUNNEL].fill(0);
        if self.write(&buf[header..packet.end], at) {
            self.frames += 1;
        }
        true
    }

    /// Writes `bytes` (a virtio-net header, then the frame) to the TAP for
    /// next hop `at`, which then counts as used; true if it went. A failed
    /// write is a drop, as on a NIC's full queue, counted here: the VTEP has
    /// counted the frames as sent, so they are not sent again.
    fn write(&mut self, bytes: &[u8], at: usize) -> bool {
        let sent = self.tap.write(bytes).is_ok();
        if sent {
            self.next_hops[at].used = true;
        } else {
            self.write_errors += 1;
        }
        sent
    }

    /// Where `remote`'s next hop is in the list, and its MAC, if resolved
    /// (IPv4 remotes only).
    fn next_hop(&self, remote: IpAddr) -> Option<(usize, EthernetAddress)> {
        let IpAddr::V4(remote) = remote.to_canonical() else { return None };
        let at = self.next_hops.iter().position(|hop| hop.remote == remote)?;
        Some((at, self.next_hops[at].mac?))
    }

    /// Writes the outer Ethernet header before the IP packet at `ip`, to
    /// `mac` from the underlay device; returns where the virtio-net header
    /// goes, before it.
    fn ethernet(&self, buf: &mut [u8], ip: usize, mac: EthernetAddress) -> usize {
        let eth = ip - ethernet::HEADER_LEN;
        let repr = ethernet::Repr {
            src_addr: self.underlay_mac,
            dst_addr: mac,
            vlan_tags: ethernet::VlanTags::None,
            ethertype: EtherType::Ipv4,
        };
        // The callers leave HEADROOM before the IP packet: it fits.
        let _ = repr.emit(&mut ethernet::Frame::new_unchecked(&mut buf[eth..ip]));
        eth - virtio_net::HEADER_LEN_TUNNEL
    }
}

/// A TCP superframe of an untagged frame, as [`gso::layout`] reads and
/// checks it, with its partial checksum on the TCP header and nothing after
/// the IP packet: its layout, the inner GSO type (ECN kept) and size.
fn tcp_superframe(frame: &[u8], inner: &virtio_net::Repr) -> Option<(gso::Layout, u8, u16)> {
    let (gso_type, size) = match inner.gso {
        Gso::Tcpv4 { size, ecn } | Gso::Tcpv6 { size, ecn } => {
            (u8::from(inner.gso.gso_type()) | if ecn { virtio_net::GSO_ECN } else { 0 }, size)
        }
        _ => return None,
    };
    let layout = gso::layout(frame, inner).ok()?;
    let partial = matches!(inner.checksum, Checksum::Partial { .. });
    (partial && layout.tcp && layout.l3 == ethernet::HEADER_LEN && layout.payload_end == frame.len())
        .then_some((layout, gso_type, size))
}

/// `tc qdisc add dev TAP clsact` and a filter that sends everything arriving
/// on the TAP out of `underlay`.
fn redirect(tap: &str, underlay: &str) -> Result<(), String> {
    let steps: [&[&str]; 2] = [
        &["qdisc", "add", "dev", tap, "clsact"],
        &[
            "filter", "add", "dev", tap, "ingress", "protocol", "all", "u32", "match", "u32", "0", "0", "action",
            "mirred", "egress", "redirect", "dev", underlay,
        ],
    ];
    for args in steps {
        let output = Command::new("tc").args(args).output().map_err(|e| tc_error(args, &e.to_string()))?;
        if !output.status.success() {
            return Err(tc_error(args, String::from_utf8_lossy(&output.stderr).trim()));
        }
    }
    Ok(())
}

fn tc_error(args: &[&str], why: &str) -> String {
    format!("tc {}: {why} (needs tc from iproute2, with clsact, u32 and mirred)", args.join(" "))
}

/// The device and gateway (`None` on-link) of the longest-prefix route to
/// `addr` in `/proc/net/route` text (addresses in the host's byte order as
/// hexadecimal; only routes that are up).
pub fn route(table: &str, addr: Ipv4Addr) -> Option<(String, Option<Ipv4Addr>)> {
    let addr = u32::from_ne_bytes(addr.octets());
    let mut best: Option<(u32, String, Option<Ipv4Addr>)> = None;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [device, destination, gateway, flags, _, _, _, mask, ..] = fields[..] else { continue };
        let hex = |s: &str| u32::from_str_radix(s, 16).ok();
        let (Some(destination), Some(gateway), Some(flags), Some(mask)) =
            (hex(destination), hex(gateway), hex(flags), hex(mask))
        else {
            continue;
        };
        const RTF_UP: u32 = 0x1;
        const RTF_GATEWAY: u32 = 0x2;
        if flags & RTF_UP == 0 || addr & mask != destination {
            continue;
        }
        let prefix = u32::from_be(mask).leading_ones();
        if best.as_ref().is_some_and(|(p, _, _)| *p >= prefix) {
            continue;
        }
        let via = (flags & RTF_GATEWAY != 0).then(|| Ipv4Addr::from(gateway.to_ne_bytes()));
        best = Some((prefix, device.to_owned(), via));
    }
    best.map(|(_, device, via)| (device, via))
}

/// The MAC of `ip` on `device` in `/proc/net/arp` text, if resolved.
pub fn neighbour(table: &str, ip: Ipv4Addr, device: &str) -> Option<EthernetAddress> {
    const ATF_COM: u32 = 0x2;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [address, _, flags, mac, _, dev] = fields[..] else { return None };
        let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
        if address.parse::<Ipv4Addr>().ok()? != ip || dev != device || flags & ATF_COM == 0 {
            return None;
        }
        let bytes: Vec<u8> = mac.split(':').map(|b| u8::from_str_radix(b, 16)).collect::<Result<_, _>>().ok()?;
        let mac = EthernetAddress(<[u8; 6]>::try_from(bytes).ok()?);
        (mac != EthernetAddress([0; 6])).then_some(mac)
    })
}

impl std::fmt::Debug for TunnelGso {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelGso").field("tap", &self.tap.name()).field("underlay", &self.underlay).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
u0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
u0\t008033CB\tFE0200C0\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0
down\t000000C6\t00000000\t0000\t0\t0\t0\t000000FF\t0\t0\t0
";

    #[test]
    fn the_longest_prefix_that_is_up_wins() {
        assert_eq!(route(ROUTES, Ipv4Addr::new(192, 0, 2, 9)), Some(("u0".into(), None)));
        assert_eq!(
            route(ROUTES, Ipv4Addr::new(203, 51, 128, 7)),
            Some(("u0".into(), Some(Ipv4Addr::new(192, 0, 2, 254))))
        );
        assert_eq!(
            route(ROUTES, Ipv4Addr::new(198, 0, 0, 1)),
            Some(("eth0".into(), Some(Ipv4Addr::new(192, 0, 2, 1))))
        );
        assert_eq!(route("Iface\tDestination\n", Ipv4Addr::new(192, 0, 2, 9)), None);
    }

    const ARP: &str = "IP address       HW type     Flags       HW address            Mask     Device
192.0.2.2        0x1         0x2         0a:1b:2c:3d:4e:5f     *        u0
192.0.2.3        0x1         0x0         00:00:00:00:00:00     *        u0
192.0.2.4        0x1         0x2         0a:00:00:00:00:04     *        eth0
";

    #[test]
    fn only_resolved_neighbours_on_the_device_count() {
        let mac = EthernetAddress([0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f]);
        assert_eq!(neighbour(ARP, Ipv4Addr::new(192, 0, 2, 2), "u0"), Some(mac));
        assert_eq!(neighbour(ARP, Ipv4Addr::new(192, 0, 2, 3), "u0"), None, "incomplete");
        assert_eq!(neighbour(ARP, Ipv4Addr::new(192, 0, 2, 4), "u0"), None, "another device");
        assert_eq!(neighbour(ARP, Ipv4Addr::new(192, 0, 2, 9), "u0"), None);
    }
}
