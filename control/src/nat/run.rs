//! The `wharf nat` gateway: two interfaces, the addresses on them owned by
//! wharf (not configured in the kernel), and every IPv4 packet between them
//! read, translated by [`dataplane::nat`] and written out again.
//!
//! One thread, one `poll(2)`. Frames arrive through `AF_PACKET` with a
//! virtio-net header. A TCP or UDP superframe over IPv4 (TSO/USO from the
//! hosts) is translated and forwarded whole, as the kernel's forwarding
//! keeps a GRO'd packet whole through netfilter: one translation for its
//! segments (so the NAT core counts it as one packet), its partial checksum
//! rewritten for the new addresses, the peer or the egress device cutting it.
//! Any other superframe is cut into segments, and a partial checksum is
//! completed, before translation. For each
//! packet the gateway answers ARP for its own addresses, answers pings to
//! them, drops what has run out of TTL, translates, routes (inside network,
//! outside network, else the outside gateway), lowers the TTL and resolves
//! the next hop by ARP — holding the packet while it asks.
//!
//! What this module does not do: translate (that is the NAT core), IPv6
//! (its NAT66 lives in the core; neighbour discovery for the runner is not
//! built yet), or fragment.

use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::gro::Coalescer;
use dataplane::gso::{self, Segmenter};
use dataplane::nat::{Nat, Side, Verdict};
use dataplane::neighbor::{NeighborConfig, Neighbors, Resolution};
use dataplane::sys::packet::{FrameBatch, PacketOptions, PacketSocket, PacketType};
use dataplane::sys::poll::{poll, Events, PollFd};
use dataplane::wire::{arp, checksum, ethernet, icmpv4, ipv4, virtio_net, EtherType, EthernetAddress, IpProtocol};

use super::spec::{Cidr, NatSpec};
use crate::vtep::stats::StatsServer;

/// The virtio-net header in front of every frame (`PACKET_VNET_HDR`).
const VNET_LEN: usize = virtio_net::HEADER_LEN;
/// Frames per `recvmmsg`.
const BURST: usize = 64;
/// Room for one read: a 64 KiB superframe and its header.
const READ_LEN: usize = 65_536 + VNET_LEN + ethernet::HEADER_LEN;
/// Room for one segment or ordinary frame.
const FRAME_LEN: usize = 9216 + ethernet::HEADER_LEN;

/// What the gateway counts besides the NAT core's own counters.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    rx_frames: u64,
    tx_frames: u64,
    arp_replies: u64,
    arp_requests: u64,
    pings_answered: u64,
    drop_not_ipv4: u64,
    drop_bad_ipv4: u64,
    drop_ttl: u64,
    drop_no_route: u64,
    drop_unresolved: u64,
    drop_bad_offload: u64,
    drop_to_gateway: u64,
    drop_unsolicited: u64,
    write_errors: u64,
    /// Superframes translated and forwarded whole.
    superframes: u64,
}

/// Receive bursts taken from one side per turn of the event loop.
const BURSTS_PER_WAKEUP: usize = 4;

/// Frames queued for one `sendmmsg`.
const OUT_BURST: usize = 64;

/// The largest write: a coalesced superframe (64 KiB of IP) behind its
/// virtio-net header.
const OUT_SLOT: usize = VNET_LEN + 65_536 + ethernet::HEADER_LEN;

/// Frames waiting to leave a port, each behind its virtio-net header.
struct OutQueue {
    buf: Box<[u8]>,
    lens: [usize; OUT_BURST],
    count: usize,
}

impl OutQueue {
    fn new() -> OutQueue {
        OutQueue { buf: vec![0; OUT_BURST * OUT_SLOT].into_boxed_slice(), lens: [0; OUT_BURST], count: 0 }
    }

    /// Queues `bytes` (virtio-net header, then the frame); sends the queue
    /// when it is full.
    fn push(&mut self, bytes: &[u8], socket: &PacketSocket, counters: &mut Counters) {
        if bytes.len() > OUT_SLOT {
            counters.write_errors += 1;
            return;
        }
        let slot = self.count * OUT_SLOT;
        self.buf[slot..slot + bytes.len()].copy_from_slice(bytes);
        self.lens[self.count] = bytes.len();
        self.count += 1;
        if self.count == OUT_BURST {
            self.flush(socket, counters);
        }
    }

    /// Sends every queued frame in one `sendmmsg` (or a few); a frame the
    /// kernel refuses (too large for the link) costs only itself.
    fn flush(&mut self, socket: &PacketSocket, counters: &mut Counters) {
        let (sent, dropped) = dataplane::sys::send_skipping(self.count, |from| {
            socket.send_batch((from..self.count).map(|i| &self.buf[i * OUT_SLOT..i * OUT_SLOT + self.lens[i]]))
        });
        counters.tx_frames += sent as u64;
        counters.write_errors += dropped as u64;
        self.count = 0;
    }
}

/// What is known of a frame being handled besides its bytes.
#[derive(Clone, Copy)]
struct Rx {
    /// Read once per receive burst.
    now: Instant,
    /// Its transport checksum was computed here (cut from a superframe, or
    /// completed from a partial one): the coalescer need not sum it again.
    checksummed: bool,
    /// A superframe kept whole: its virtio-net header as read (see
    /// [`whole_superframe`]).
    superframe: Option<[u8; VNET_LEN]>,
}

/// One side of the gateway.
struct Port {
    name: String,
    socket: PacketSocket,
    mac: EthernetAddress,
    addr: Cidr,
    neighbors: Neighbors,
    /// Consecutive TCP segments of a flow leave as one superframe (GSO, the
    /// kernel or the peer cuts it again), as the kernel's own forwarding
    /// keeps GRO'd packets whole.
    coalescer: Coalescer,
    out: OutQueue,
}

impl Port {
    /// Sends `frame` (its Ethernet addresses written, checksums complete)
    /// out of this port, coalesced with the segments around it; a
    /// superframe goes at once as it is, behind its header, after the held
    /// run and the queue (one `sendmsg` for 64 KiB: no copy is worth a
    /// system call saved).
    fn queue(&mut self, frame: &[u8], rx: Rx, counters: &mut Counters) {
        let Port { socket, coalescer, out, .. } = self;
        let write = &mut |bytes: &[u8]| out.push(bytes, socket, counters);
        if let Some(header) = rx.superframe {
            // Sent from where it was read, after what was queued before it.
            coalescer.flush(write);
            out.flush(socket, counters);
            match socket.send_with_header(&header, frame) {
                Ok(_) => counters.tx_frames += 1,
                Err(_) => counters.write_errors += 1,
            }
        } else if rx.checksummed {
            coalescer.push_checksummed(frame, write);
        } else {
            coalescer.push(frame, write);
        }
    }

    /// Writes out the held run and every queued frame.
    fn flush(&mut self, counters: &mut Counters) {
        let Port { socket, coalescer, out, .. } = self;
        coalescer.flush(&mut |bytes: &[u8]| out.push(bytes, socket, counters));
        out.flush(socket, counters);
    }
}

/// Runs the gateway until SIGINT or SIGTERM.
pub fn run(spec: &NatSpec, nat: Nat, stats_socket: &Path) -> Result<(), String> {
    let open = |name: &str, addr: Cidr| -> Result<Port, String> {
        let options =
            PacketOptions { vnet_hdr_len: VNET_LEN, nonblocking: true, promiscuous: false, ..PacketOptions::default() };
        let socket = PacketSocket::open(name, options).map_err(|e| format!("open AF_PACKET on {name}: {e}"))?;
        let mac = dataplane::sys::mac(name).map_err(|e| format!("read the MAC address of {name}: {e}"))?;
        Ok(Port {
            name: name.to_owned(),
            socket,
            mac,
            addr,
            neighbors: Neighbors::new(NeighborConfig::default()),
            coalescer: Coalescer::new(OUT_SLOT),
            out: OutQueue::new(),
        })
    };
    let ports = [open(&spec.inside, spec.inside_addr)?, open(&spec.outside, spec.outside_addr)?];
    let stats = StatsServer::bind(stats_socket).map_err(|e| format!("stats socket: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let dump = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).map_err(|e| format!("install the signal handlers: {e}"))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, dump.clone())
        .map_err(|e| format!("install the signal handlers: {e}"))?;
    let mut gateway = Gateway {
        spec: spec.clone(),
        nat,
        ports,
        counters: Counters::default(),
        scratch: vec![0; FRAME_LEN + VNET_LEN].into_boxed_slice(),
        held: vec![0; FRAME_LEN].into_boxed_slice(),
    };
    let mut batches = [FrameBatch::new(BURST, 0, READ_LEN), FrameBatch::new(BURST, 0, READ_LEN)];
    dataplane::stdout_line!(
        "wharf nat: ready: inside {} {} ({}), outside {} {} ({}){}; stats at {}",
        spec.inside,
        spec.inside_addr,
        gateway.ports[0].mac,
        spec.outside,
        spec.outside_addr,
        gateway.ports[1].mac,
        spec.gateway.map(|g| format!(", via {g}")).unwrap_or_default(),
        stats_socket.display()
    );
    let mut last_tick = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [
            PollFd::new(&gateway.ports[0].socket, Events::IN),
            PollFd::new(&gateway.ports[1].socket, Events::IN),
            PollFd::new(stats.listener(), Events::IN),
        ];
        match poll(&mut fds, Some(Duration::from_millis(200))) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let ready = [fds[0].is_readable(), fds[1].is_readable(), fds[2].is_readable()];
        for side in 0..2 {
            if ready[side] {
                gateway.receive(side, &mut batches[side]);
            }
        }
        if ready[2] {
            stats.serve(|| gateway.render());
        }
        if dump.swap(false, Ordering::Relaxed) {
            dataplane::stderr_text!("{}", gateway.render());
        }
        let now = Instant::now();
        if now.duration_since(last_tick) >= Duration::from_millis(200) {
            last_tick = now;
            gateway.tick(now);
        }
    }
    dataplane::stdout_line!("wharf nat: stopped");
    Ok(())
}

struct Gateway {
    spec: NatSpec,
    nat: Nat,
    ports: [Port; 2],
    counters: Counters,
    /// One segment (virtio header room first).
    scratch: Box<[u8]>,
    /// A held packet being sent once resolved.
    held: Box<[u8]>,
}

impl Gateway {
    /// Reads up to [`BURSTS_PER_WAKEUP`] bursts from `side` and handles
    /// each frame. What is left waits for the next turn of the loop (`poll`
    /// says again that it is there): a side that never runs dry must not
    /// starve the other side, the timers, the stats socket or a stop.
    fn receive(&mut self, side: usize, batch: &mut FrameBatch) {
        for _ in 0..BURSTS_PER_WAKEUP {
            let n = match self.ports[side].socket.recv_batch(batch) {
                Ok(n) => n,
                Err(_) => return,
            };
            // One clock read per burst.
            let now = Instant::now();
            self.prefetch(side, batch, n);
            for i in 0..n {
                let Some(meta) = batch.meta(i).copied() else { continue };
                if matches!(meta.pkt_type, PacketType::Outgoing | PacketType::OtherHost) || meta.truncated {
                    continue;
                }
                let Some((slot, _)) = batch.slot_mut(i) else { continue };
                self.counters.rx_frames += 1;
                self.offloaded(side, slot, meta.range(), now);
            }
            for port in &mut self.ports {
                port.flush(&mut self.counters);
            }
            if n < batch.capacity() {
                return;
            }
        }
    }

    /// The burst's first pass: starts loading what the NAT will read for
    /// each of its `n` IPv4 frames ([`Nat::prefetch_burst`]), so that their
    /// cache misses overlap before any is translated. The frames are not checked here (a hint
    /// reads any bytes); [`Gateway::frame`] checks them.
    fn prefetch(&self, side: usize, batch: &FrameBatch, n: usize) {
        let from = if side == 0 { Side::Inside } else { Side::Outside };
        let packets = (0..n).filter_map(|i| {
            let frame = batch.data(i)?.get(VNET_LEN..)?;
            let eth = ethernet::Frame::new_checked(frame).ok()?;
            let ipv4 = eth.ethertype() == EtherType::Ipv4 && eth.header_len() == ethernet::HEADER_LEN;
            frame.get(ethernet::HEADER_LEN..).filter(|_| ipv4)
        });
        self.nat.prefetch_burst(0, from, packets);
    }

    /// Undoes the offloads of one read (virtio header first): segments a
    /// superframe, completes a partial checksum, then handles each frame.
    fn offloaded(&mut self, side: usize, buf: &mut [u8], read: Range<usize>, now: Instant) {
        let header = buf
            .get(read.clone())
            .ok_or(dataplane::wire::Error::Truncated)
            .and_then(|r| virtio_net::Header::new_checked(r).and_then(|h| virtio_net::Repr::parse(&h)));
        let Ok(header) = header else {
            self.counters.drop_bad_offload += 1;
            return;
        };
        let frame = read.start + VNET_LEN..read.end;
        if !header.gso.is_gso() {
            if gso::complete_in_place(&mut buf[frame.clone()], &header).is_err() {
                self.counters.drop_bad_offload += 1;
                return;
            }
            let checksummed = header.checksum != virtio_net::Checksum::None;
            self.frame(side, &mut buf[frame], Rx { now, checksummed, superframe: None });
            return;
        }
        if whole_superframe(&buf[frame.clone()], &header) {
            let mut raw = [0; VNET_LEN];
            raw.copy_from_slice(&buf[read.start..read.start + VNET_LEN]);
            self.counters.superframes += 1;
            self.frame(side, &mut buf[frame], Rx { now, checksummed: true, superframe: Some(raw) });
            return;
        }
        let Ok(mut segments) = Segmenter::new(&buf[frame], &header) else {
            self.counters.drop_bad_offload += 1;
            return;
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        while let Some(segment) = segments.next_into(&mut scratch) {
            match segment {
                Ok(len) => self.frame(side, &mut scratch[..len], Rx { now, checksummed: true, superframe: None }),
                Err(_) => {
                    self.counters.drop_bad_offload += 1;
                    break;
                }
            }
        }
        self.scratch = scratch;
    }

    /// One Ethernet frame from `side`, checksums complete.
    fn frame(&mut self, side: usize, frame: &mut [u8], rx: Rx) {
        let Ok(eth) = ethernet::Frame::new_checked(&frame[..]) else {
            self.counters.drop_not_ipv4 += 1;
            return;
        };
        if eth.header_len() != ethernet::HEADER_LEN {
            self.counters.drop_not_ipv4 += 1;
            return;
        }
        match eth.ethertype() {
            EtherType::Arp => self.arp(side, &frame[ethernet::HEADER_LEN..], rx.now),
            EtherType::Ipv4 => self.ipv4(side, frame, rx),
            _ => self.counters.drop_not_ipv4 += 1,
        }
    }

    /// ARP: learn the sender, answer requests for our address.
    fn arp(&mut self, side: usize, payload: &[u8], now: Instant) {
        let Ok(repr) = arp::Packet::new_checked(payload).and_then(|p| arp::Repr::parse(&p)) else { return };
        let port = &mut self.ports[side];
        let ours = repr.target_protocol_addr == port.addr.addr;
        if port.addr.contains(repr.source_protocol_addr) && !repr.source_protocol_addr.is_unspecified() {
            let Gateway { ports, held, counters, .. } = self;
            let port = &mut ports[side];
            let (socket, mac) = (&port.socket, port.mac);
            port.neighbors.learn(repr.source_protocol_addr, repr.source_hardware_addr, now, ours, |dst, packet| {
                let frame = &mut held[..packet.len()];
                frame.copy_from_slice(packet);
                frame[0..6].copy_from_slice(dst.as_bytes());
                frame[6..12].copy_from_slice(mac.as_bytes());
                match socket.send_frame(frame) {
                    Ok(_) => counters.tx_frames += 1,
                    Err(_) => counters.write_errors += 1,
                }
            });
        }
        let port = &self.ports[side];
        if ours && repr.operation == arp::Operation::Request {
            let reply = arp::Repr {
                operation: arp::Operation::Reply,
                source_hardware_addr: port.mac,
                source_protocol_addr: port.addr.addr,
                target_hardware_addr: repr.source_hardware_addr,
                target_protocol_addr: repr.source_protocol_addr,
            };
            self.send_arp(side, repr.source_hardware_addr, &reply);
            self.counters.arp_replies += 1;
        }
    }

    fn send_arp(&mut self, side: usize, dst: EthernetAddress, repr: &arp::Repr) {
        let port = &self.ports[side];
        let mut frame = [0u8; ethernet::HEADER_LEN + 28];
        let eth = ethernet::Repr {
            src_addr: port.mac,
            dst_addr: dst,
            vlan_tags: ethernet::VlanTags::None,
            ethertype: EtherType::Arp,
        };
        let written = eth
            .emit(&mut ethernet::Frame::new_unchecked(&mut frame[..]))
            .and_then(|()| repr.emit(&mut arp::Packet::new_unchecked(&mut frame[ethernet::HEADER_LEN..])));
        if written.is_err() || port.socket.send_frame(&frame).is_err() {
            self.counters.write_errors += 1;
        } else {
            self.counters.tx_frames += 1;
        }
    }

    /// An IPv4 packet from `side`: answered, translated and routed, or
    /// dropped and counted. The header checksum is checked once, by the NAT
    /// core (`nat_bad_ip_checksum`), or by [`Gateway::local`].
    fn ipv4(&mut self, side: usize, frame: &mut [u8], rx: Rx) {
        let now = rx.now;
        let Ok(packet) = ipv4::Packet::new_checked(&frame[ethernet::HEADER_LEN..]) else {
            self.counters.drop_bad_ipv4 += 1;
            return;
        };
        let total = ethernet::HEADER_LEN + usize::from(packet.total_len());
        let dst = packet.dst_addr();
        let frame = &mut frame[..total];
        if side == 0 && dst == self.ports[0].addr.addr {
            self.local(side, frame, now);
            return;
        }
        let from = if side == 0 { Side::Inside } else { Side::Outside };
        let verdict = self.nat.translate(0, from, &mut frame[ethernet::HEADER_LEN..], now);
        let Ok(packet) = ipv4::Packet::new_checked(&frame[ethernet::HEADER_LEN..]) else { return };
        let dst = packet.dst_addr();
        match verdict {
            // Translated: routed by its new destination (a hairpinned packet
            // goes back inside).
            Verdict::Forward => {}
            Verdict::Pass if dst == self.ports[0].addr.addr || dst == self.ports[1].addr.addr => {
                // No connection or rule: for the gateway itself.
                self.local(side, frame, now);
                return;
            }
            // Untouched from inside: routed as it is.
            Verdict::Pass if side == 0 => {}
            Verdict::Pass => {
                // Unsolicited from outside: nothing routes into the inside
                // networks but tracked connections and published ports
                // (Docker's FORWARD policy is DROP too).
                self.counters.drop_unsolicited += 1;
                return;
            }
            // Counted by the NAT core under its reason.
            Verdict::Drop(_) => return,
        }
        let (egress, next_hop) = if self.ports[0].addr.contains(dst) {
            (0, dst)
        } else if self.ports[1].addr.contains(dst) {
            (1, dst)
        } else if let Some(gateway) = self.spec.gateway {
            (1, gateway)
        } else {
            self.counters.drop_no_route += 1;
            return;
        };
        if packet.hop_limit() <= 1 {
            self.counters.drop_ttl += 1;
            return;
        }
        decrement_ttl(&mut frame[ethernet::HEADER_LEN..]);
        if rx.superframe.is_some() {
            repartial(&mut frame[ethernet::HEADER_LEN..]);
        }
        self.forward(egress, next_hop, frame, rx);
    }

    /// Sends `frame` out of `egress` to `next_hop`, resolving its MAC.
    fn forward(&mut self, egress: usize, next_hop: Ipv4Addr, frame: &mut [u8], rx: Rx) {
        let port = &mut self.ports[egress];
        frame[6..12].copy_from_slice(port.mac.as_bytes());
        match port.neighbors.resolve(next_hop, rx.now) {
            Resolution::Known(mac) => {
                frame[0..6].copy_from_slice(mac.as_bytes());
                port.queue(frame, rx, &mut self.counters);
            }
            Resolution::Unknown { ask } => {
                // The held packet is sent without a virtio-net header: a
                // superframe is not held (its sender retransmits).
                if rx.superframe.is_some() || !port.neighbors.hold(next_hop, frame) {
                    self.counters.drop_unresolved += 1;
                }
                if ask {
                    self.ask(egress, next_hop);
                }
            }
        }
    }

    /// Broadcasts an ARP request for `ip` on `side`.
    fn ask(&mut self, side: usize, ip: Ipv4Addr) {
        let port = &self.ports[side];
        let request = arp::Repr {
            operation: arp::Operation::Request,
            source_hardware_addr: port.mac,
            source_protocol_addr: port.addr.addr,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: ip,
        };
        self.send_arp(side, EthernetAddress::BROADCAST, &request);
        self.counters.arp_requests += 1;
    }

    /// A packet for the gateway's own address: echo requests are answered,
    /// the rest dropped.
    fn local(&mut self, side: usize, frame: &mut [u8], now: Instant) {
        let ip = ethernet::HEADER_LEN;
        let Ok(packet) = ipv4::Packet::new_checked(&frame[ip..]) else { return };
        if !packet.verify_checksum() {
            self.counters.drop_bad_ipv4 += 1;
            return;
        }
        let (src, dst, header_len) = (packet.src_addr(), packet.dst_addr(), packet.header_len());
        if packet.next_header() != IpProtocol::Icmp || packet.more_frags() || packet.frag_offset() != 0 {
            self.counters.drop_to_gateway += 1;
            return;
        }
        let icmp = ip + header_len;
        let is_echo = icmpv4::Packet::new_checked(&frame[icmp..])
            .is_ok_and(|p| p.msg_type() == icmpv4::Message::EchoRequest && p.verify_checksum());
        if !is_echo {
            self.counters.drop_to_gateway += 1;
            return;
        }
        // Echo reply: swap the addresses, type 8 → 0 (RFC 1624 update).
        let mut packet = ipv4::Packet::new_unchecked(&mut frame[ip..]);
        packet.set_src_addr(dst);
        packet.set_dst_addr(src);
        let old = u16::from_be_bytes([frame[icmp], frame[icmp + 1]]);
        frame[icmp] = 0;
        let new = u16::from_be_bytes([frame[icmp], frame[icmp + 1]]);
        let sum = u16::from_be_bytes([frame[icmp + 2], frame[icmp + 3]]);
        frame[icmp + 2..icmp + 4].copy_from_slice(&checksum::update16(sum, old, new).to_be_bytes());
        self.counters.pings_answered += 1;
        self.forward(side, src, frame, Rx { now, checksummed: false, superframe: None });
    }

    /// Timers: ARP retries and NAT expiry.
    fn tick(&mut self, now: Instant) {
        for side in 0..2 {
            let mut asks = Vec::new();
            self.ports[side].neighbors.take_requests(now, |ip| asks.push(ip));
            for ip in asks {
                self.ask(side, ip);
            }
        }
        self.nat.expire(now);
    }

    fn render(&self) -> String {
        let c = &self.counters;
        let mut out = format!(
            "rx_frames {}\ntx_frames {}\narp_requests {}\narp_replies {}\npings_answered {}\nconnections {}\n\
             drop_not_ipv4 {}\ndrop_bad_ipv4 {}\ndrop_ttl {}\ndrop_no_route {}\ndrop_unresolved {}\n\
             drop_bad_offload {}\ndrop_to_gateway {}\ndrop_unsolicited {}\nwrite_errors {}\nsuperframes {}\n",
            c.rx_frames,
            c.tx_frames,
            c.arp_requests,
            c.arp_replies,
            c.pings_answered,
            self.nat.len(),
            c.drop_not_ipv4,
            c.drop_bad_ipv4,
            c.drop_ttl,
            c.drop_no_route,
            c.drop_unresolved,
            c.drop_bad_offload,
            c.drop_to_gateway,
            c.drop_unsolicited,
            c.write_errors,
            c.superframes
        );
        for (name, value) in self.nat.stats().iter() {
            out.push_str(&format!("nat_{name} {value}\n"));
        }
        for port in &self.ports {
            let n = port.neighbors.stats();
            out.push_str(&format!(
                "arp_{}_resolved {}\narp_{}_failed {}\narp_{}_held_dropped {}\n",
                port.name, n.resolved, port.name, n.failed, port.name, n.held_dropped
            ));
        }
        out
    }
}

/// Whether a superframe can be translated and forwarded whole: IPv4 in an
/// untagged Ethernet frame, no options, not a fragment, TCP under `TCPV4`
/// or UDP under `UDP_L4`, the partial checksum on that transport's field
/// (its pseudo-header sum; the NAT core never reads it), and the IP length
/// the frame's. Anything else is cut into segments first, which checks it
/// in full.
fn whole_superframe(frame: &[u8], header: &virtio_net::Repr) -> bool {
    const IP: usize = ethernet::HEADER_LEN;
    let virtio_net::Checksum::Partial { start, offset } = header.checksum else { return false };
    let Some(ip) = frame.get(IP..IP + 20) else { return false };
    let protocol = match header.gso {
        virtio_net::Gso::Tcpv4 { .. } => IpProtocol::Tcp,
        virtio_net::Gso::UdpL4 { .. } => IpProtocol::Udp,
        _ => return false,
    };
    let csum_offset = csum_offset(protocol);
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
    frame[12..14] == [0x08, 0x00]
        && ip[0] == 0x45
        && !fragment
        && ip[9] == u8::from(protocol)
        && usize::from(u16::from_be_bytes([ip[2], ip[3]])) == frame.len() - IP
        && usize::from(start) == IP + 20
        && usize::from(offset) == csum_offset
        && frame.len() >= IP + 20 + csum_offset + 2
}

/// Where the checksum field of a TCP (else UDP) header is.
fn csum_offset(protocol: IpProtocol) -> usize {
    if protocol == IpProtocol::Tcp {
        gso::TCP_CSUM_OFFSET
    } else {
        gso::UDP_CSUM_OFFSET
    }
}

/// Writes a translated superframe's partial checksum again: the
/// pseudo-header sum of its new addresses (the ports, inside the summed
/// range, need nothing). `ip` is a packet [`whole_superframe`] accepted.
fn repartial(ip: &mut [u8]) {
    let packet = ipv4::Packet::new_unchecked(&ip[..]);
    let (src, dst, protocol) = (packet.src_addr(), packet.dst_addr(), packet.next_header());
    let length = ip.len() - 20;
    let field = 20 + csum_offset(protocol);
    let pseudo = checksum::pseudo_header_v4(src, dst, protocol, length as u16);
    ip[field..field + 2].copy_from_slice(&pseudo.to_be_bytes());
}

/// TTL − 1 with the header checksum updated (RFC 1624).
fn decrement_ttl(ip: &mut [u8]) {
    let old = u16::from_be_bytes([ip[8], ip[9]]);
    ip[8] -= 1;
    let new = u16::from_be_bytes([ip[8], ip[9]]);
    let sum = u16::from_be_bytes([ip[10], ip[11]]);
    ip[10..12].copy_from_slice(&checksum::update16(sum, old, new).to_be_bytes());
}
