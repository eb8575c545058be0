//! The `wharf vtep` runner: opens each VNI's local port (a TAP with a
//! virtio-net header and offloads, or an interface through AF_PACKET), the
//! underlay UDP sockets and the stats socket, then moves packets between
//! them through the sans-IO [`Vtep`] until SIGINT or SIGTERM.
//!
//! One thread, one `poll(2)`. Frames from a port are read (TSO/USO
//! superframes segmented and partial checksums completed by
//! [`dataplane::gso`]) into a pool of preallocated slots, encapsulated in
//! place and sent in batches with `sendmmsg` (with outer checksums on, a run
//! of datagrams to one remote goes as one UDP GSO message); datagrams from the
//! underlay are received in batches with `recvmmsg` and decapsulated in
//! place; consecutive TCP segments of one flow are coalesced
//! ([`dataplane::gro`]) and written to their port as one GSO superframe.
//! Nothing is allocated per packet.
//!
//! The underlay: one socket bound to `local:dstport` receives; a pool of
//! sockets bound to ports inside the source-port range sends, the inner
//! flow's hash choosing the socket, so a flow keeps its source port (RFC
//! 7348 §5) — over [`TX_SOCKETS`] ports rather than the kernel's whole range.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::gro::Coalescer;
use dataplane::gso::Segmenter;
use dataplane::sys::packet::{FrameBatch, PacketOptions, PacketSocket};
use dataplane::sys::poll::{poll, Events, PollFd};
use dataplane::sys::tap::{Offloads, Tap, TapOptions};
use dataplane::sys::udp::{RecvBatch, Transmit, UdpOptions, UdpSocket};
use dataplane::vxlan::{Decap, Destinations, DropReason, Encap, VniConfig, Vtep, VtepConfig, HEADROOM};
use dataplane::wire::virtio_net;
use dataplane::wire::vxlan::Vni;

use super::spec::{LocalPort, Spec};
use super::stats::StatsServer;
use super::tunnel::{self, TunnelGso};

/// Sockets in the sending pool (fewer if the source-port range is smaller).
pub const TX_SOCKETS: usize = 8;
/// Frame slots between a burst of reads and its `sendmmsg`.
const SLOTS: usize = 256;
/// Room for an inner frame in a slot, at least: more with a jumbo underlay.
const MIN_SLOT_FRAME: usize = 2048;
/// Datagrams per `recvmmsg`.
const RX_BATCH: usize = 64;
/// Room for one message: a datagram, or with UDP GRO several of one flow
/// coalesced (larger single datagrams, reassembled fragments, are dropped).
const RX_MSG: usize = 65_535;
/// Frames read from a port before the batch is sent.
const READ_BURST: usize = 64;
/// The largest frame a TAP with TSO hands over, with its virtio header.
const TAP_READ_LEN: usize = 65_536 + virtio_net::HEADER_LEN + 64;
/// The largest coalesced write: a virtio header and a 64 KiB IP packet
/// behind up to two VLAN tags.
const COALESCE_LEN: usize = VNET_LEN + 22 + 65_535;
/// The virtio-net header length used on TAPs and AF_PACKET sockets.
const VNET_LEN: usize = virtio_net::HEADER_LEN;
/// Where a frame read from a TAP starts in the read buffer: room before it
/// for the outer headers of either path.
const READ_HEADROOM: usize = 128;
const _: () = assert!(READ_HEADROOM >= HEADROOM && READ_HEADROOM >= tunnel::HEADROOM);

/// Why the runner stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Config(#[from] dataplane::vxlan::ConfigError),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

fn io_context(what: impl Into<String>) -> impl FnOnce(io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// Counters of the runner itself, beside the VTEP core's.
#[derive(Debug, Default, Clone, Copy)]
struct RunnerStats {
    /// Underlay datagrams reassembled from IP fragments: a VTEP does not
    /// fragment (RFC 7348 §4.3), so these are refused.
    drop_fragmented: u64,
    /// Underlay datagrams longer than a receive slot.
    drop_truncated: u64,
    /// Whole TCP superframes from the underlay (a peer's UDP-tunnel GSO
    /// across a veth) that could not be handed to the port as GSO.
    drop_bad_superframe: u64,
    /// Whole TCP superframes from the underlay written to a port as GSO.
    rx_superframes: u64,
    /// Frames from a port that could not be segmented or checksummed.
    drop_bad_offload: u64,
    port_write_errors: u64,
    underlay_send_errors: u64,
}

/// A VNI's local port.
enum Port {
    Tap(Tap),
    Dev(PacketSocket),
}

impl Port {
    /// Writes one frame, with a zero virtio header in front.
    fn write(&self, frame: &[u8]) -> io::Result<usize> {
        match self {
            Port::Tap(tap) => tap.write_frame(frame),
            Port::Dev(socket) => socket.send_frame(frame),
        }
    }

    /// Writes `parts` as one frame that starts with its own virtio header
    /// (a whole superframe's: see [`Coalescer::take_superframe`]), without
    /// copying them on a TAP.
    fn write_parts(&self, parts: [&[u8]; 4]) -> io::Result<usize> {
        let slices = parts.map(io::IoSlice::new);
        match self {
            Port::Tap(tap) => tap.write_vectored(&slices),
            Port::Dev(socket) => socket.send_vectored(&slices),
        }
    }

    /// Writes bytes that start with their own virtio header: a frame, or a
    /// coalesced TCP superframe the kernel takes as GSO.
    fn write_with_header(&self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Port::Tap(tap) => tap.write(bytes),
            Port::Dev(socket) => socket.send(bytes),
        }
    }
}

/// The descriptors: opened once, then only read from and written to, so the
/// poll set can borrow them for the whole run.
struct Io {
    ports: Vec<Port>,
    names: Vec<String>,
    rx: UdpSocket,
    tx: Vec<UdpSocket>,
    src_ports: (u16, u16),
    dst_port: u16,
    /// Send runs of equal-sized datagrams to one remote as one UDP GSO
    /// message: only with outer checksums on (the kernel refuses
    /// UDP_SEGMENT on a socket that sends zero checksums).
    gso: bool,
}

/// A frame waiting in a slot to be sent.
#[derive(Debug, Clone)]
struct Pending {
    slot: usize,
    datagram: Range<usize>,
    to: Destinations,
}

/// Frames between a burst of reads and the `sendmmsg` that sends them: each
/// slot has [`READ_HEADROOM`] for the outer headers, then room for the largest
/// inner frame the underlay carries.
struct Slots {
    buf: Vec<u8>,
    slot_len: usize,
    used: usize,
    /// With UDP GSO: the datagrams of a socket's queue copied back to back,
    /// and the messages that send them (a run, or one datagram each).
    gso_messages: Vec<(Range<usize>, SocketAddr, Option<u16>)>,
    /// Per sending socket: the frames it sends, and how many datagrams
    /// that makes (a flooded frame goes to every remote).
    pending: Vec<(Vec<Pending>, usize)>,
}

impl Slots {
    fn new(max_inner_frame: usize, sockets: usize) -> Slots {
        let slot_len = READ_HEADROOM + max_inner_frame.max(MIN_SLOT_FRAME);
        Slots {
            buf: vec![0; SLOTS * slot_len],
            slot_len,
            used: 0,
            gso_messages: Vec::with_capacity(SLOTS),
            pending: (0..sockets).map(|_| (Vec::with_capacity(SLOTS), 0)).collect(),
        }
    }

    fn is_full(&self) -> bool {
        self.used == SLOTS
    }

    /// The next free slot.
    fn next(&mut self) -> (usize, &mut [u8]) {
        let slot = self.used;
        (slot, &mut self.buf[slot * self.slot_len..(slot + 1) * self.slot_len])
    }

    /// Queues the frame in the slot [`Slots::next`] gave for `socket`.
    fn push(&mut self, socket: usize, pending: Pending, datagrams: usize) {
        let (queue, count) = &mut self.pending[socket];
        queue.push(pending);
        *count += datagrams;
        self.used += 1;
    }

    /// The most one slot holds after its headroom.
    fn frame_room(&self) -> usize {
        self.slot_len - READ_HEADROOM
    }
}

/// Everything that changes while packets move.
struct State {
    engine: Engine,
    read_buf: Vec<u8>,
    rx_batch: RecvBatch,
    dev_batches: Vec<Option<FrameBatch>>,
    /// Per port: consecutive TCP segments of one flow, decapsulated from a
    /// receive batch, become one superframe and one write (userspace GRO).
    coalescers: Vec<Coalescer>,
}

/// The VTEP core, the frames waiting to be sent, and the runner's counters:
/// what encapsulating a frame changes.
struct Engine {
    vtep: Vtep,
    slots: Slots,
    stats: RunnerStats,
    /// `--tunnel-gso`: where TCP superframes go whole.
    tunnel: Option<TunnelGso>,
}

/// Runs the VTEP `spec` describes until SIGINT or SIGTERM.
pub fn run(spec: &Spec, stats_socket: &Path) -> Result<(), RunError> {
    let config = vtep_config(spec)?;
    let vtep = Vtep::new(config)?;
    let stop = Arc::new(AtomicBool::new(false));
    let dump = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).map_err(io_context("install the signal handlers"))?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, dump.clone())
        .map_err(io_context("install the signal handlers"))?;

    let io = Io::open(spec, vtep.config().max_inner_frame())?;
    let tunnel = match (spec.tunnel_gso, spec.local) {
        (true, IpAddr::V4(local)) => {
            let remotes: Vec<IpAddr> = spec
                .vnis
                .iter()
                .flat_map(|v| v.remotes.iter().copied().chain(v.fdb.iter().map(|(_, remote)| *remote)))
                .collect();
            let tunnel = TunnelGso::open(local, &remotes, spec.udp_checksum)
                .map_err(|message| RunError::Io { what: "--tunnel-gso".into(), source: io::Error::other(message) })?;
            Some(tunnel)
        }
        _ => None,
    };
    let server = StatsServer::bind(stats_socket).map_err(io_context("open the stats socket"))?;
    let slots = Slots::new(vtep.config().max_inner_frame(), io.tx.len());
    let mut state = State {
        engine: Engine { vtep, slots, stats: RunnerStats::default(), tunnel },
        read_buf: vec![0; READ_HEADROOM + TAP_READ_LEN],
        rx_batch: RecvBatch::new(RX_BATCH, RX_MSG),
        dev_batches: io
            .ports
            .iter()
            .map(|p| matches!(p, Port::Dev(_)).then(|| FrameBatch::new(READ_BURST, HEADROOM, TAP_READ_LEN)))
            .collect(),
        coalescers: io.ports.iter().map(|_| Coalescer::new(COALESCE_LEN)).collect(),
    };
    let tunnel_note = state.engine.tunnel.as_ref().map(|t| format!("; {}", t.describe())).unwrap_or_default();
    dataplane::stdout_line!(
        "wharf vtep: ready: {}; local {}:{}, sending from {} port(s) in {}-{}{}; stats at {}",
        spec.vnis
            .iter()
            .map(|v| format!("VNI {} on {} (remotes {})", v.vni, v.port.name(), list(&v.remotes)))
            .collect::<Vec<_>>()
            .join(", "),
        spec.local,
        spec.dst_port,
        io.tx.len(),
        spec.src_ports.0,
        spec.src_ports.1,
        tunnel_note,
        stats_socket.display(),
    );

    let mut fds: Vec<PollFd<'_>> = io.ports.iter().map(|p| PollFd::new(p, Events::IN)).collect();
    fds.push(PollFd::new(&io.rx, Events::IN));
    fds.push(PollFd::new(server.listener(), Events::IN));
    let ports = io.ports.len();
    let mut next_expiry = Instant::now() + Duration::from_secs(1);
    while !stop.load(Ordering::Relaxed) {
        if dump.swap(false, Ordering::Relaxed) {
            dataplane::stderr_text!("{}", state.snapshot(&io));
        }
        match poll(&mut fds, Some(Duration::from_millis(250))) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_context("poll")(e)),
        }
        for (port, fd) in fds[..ports].iter().enumerate() {
            if fd.is_readable() {
                state.read_port(&io, port);
            }
        }
        if fds[ports].is_readable() {
            state.read_underlay(&io);
        }
        if fds[ports + 1].is_readable() {
            server.serve(|| state.snapshot(&io));
        }
        let now = Instant::now();
        if now >= next_expiry {
            state.engine.vtep.expire(now);
            if let Some(tunnel) = &mut state.engine.tunnel {
                tunnel.refresh();
            }
            next_expiry = now + Duration::from_secs(1);
        }
    }
    Ok(())
}

impl AsFd for Port {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Port::Tap(tap) => tap.as_fd(),
            Port::Dev(socket) => socket.as_fd(),
        }
    }
}

fn list(addrs: &[IpAddr]) -> String {
    if addrs.is_empty() {
        "none".to_owned()
    } else {
        addrs.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(" ")
    }
}

/// The data plane's configuration for `spec`; port ids are VNI indexes.
fn vtep_config(spec: &Spec) -> Result<VtepConfig, RunError> {
    let mut config = VtepConfig::new(spec.local);
    config.dst_port = spec.dst_port;
    config.src_port_range = spec.src_ports;
    config.ttl = spec.ttl;
    config.learning = spec.learning;
    config.ageing = spec.ageing;
    config.max_fdb_entries = spec.max_addresses;
    config.proxy = spec.proxy;
    config.udp_checksum_v4 = spec.udp_checksum;
    config.udp6_zero_checksum_tx = spec.udp6_zero_checksum_tx;
    config.udp6_zero_checksum_rx = spec.udp6_zero_checksum_rx;
    config.underlay_mtu = spec.underlay_mtu;
    config.frag_needed = spec.frag_needed;
    for (index, v) in spec.vnis.iter().enumerate() {
        let invalid = |what: String, why: &str| RunError::Io {
            what,
            source: io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()),
        };
        let vni = Vni::new(v.vni).ok_or_else(|| invalid(format!("VNI {}", v.vni), "a VNI is 24 bits"))?;
        let port = u16::try_from(index).map_err(|_| invalid("VNIs".into(), "too many"))?;
        let mut vni_config = VniConfig::new(vni, port);
        for remote in &v.remotes {
            vni_config = vni_config.remote(*remote);
        }
        for (mac, remote) in &v.fdb {
            vni_config = vni_config.static_entry(*mac, *remote);
        }
        for (ip, mac) in &v.neighbours {
            vni_config = vni_config.neighbour(*ip, *mac);
        }
        config = config.vni(vni_config);
    }
    config.validate()?;
    Ok(config)
}

impl Io {
    /// Opens every port, the receiving socket and the sending pool. A TAP
    /// this creates gets the overlay MTU that fits `max_inner_frame`, as the
    /// kernel gives its vxlan device; one that existed keeps its own.
    fn open(spec: &Spec, max_inner_frame: usize) -> Result<Io, RunError> {
        let overlay_mtu = max_inner_frame.saturating_sub(14) as u32;
        let mut ports = Vec::with_capacity(spec.vnis.len());
        let mut names = Vec::with_capacity(spec.vnis.len());
        for v in &spec.vnis {
            let port = match &v.port {
                LocalPort::Tap(name) => {
                    let existed = dataplane::sys::ifindex(name).is_ok();
                    let options = TapOptions { vnet_hdr: true, vnet_hdr_len: VNET_LEN, queues: 1, nonblocking: true };
                    let tap = Tap::open(name, options).map_err(io_context(format!("open TAP {name}")))?;
                    tap.set_offload(Offloads::ALL).map_err(io_context(format!("set offloads on {name}")))?;
                    if !existed {
                        tap.set_mtu(overlay_mtu).map_err(io_context(format!("set the MTU of {name}")))?;
                    }
                    tap.set_up().map_err(io_context(format!("bring {name} up")))?;
                    Port::Tap(tap)
                }
                LocalPort::Dev(name) => {
                    let options =
                        PacketOptions { vnet_hdr_len: VNET_LEN, nonblocking: true, ..PacketOptions::default() };
                    Port::Dev(
                        PacketSocket::open(name, options).map_err(io_context(format!("open AF_PACKET on {name}")))?,
                    )
                }
            };
            ports.push(port);
            names.push(v.port.name().to_owned());
        }

        let rx_addr = SocketAddr::new(spec.local, spec.dst_port);
        let rx = UdpSocket::bind_with(rx_addr, UdpOptions { nonblocking: true, ..UdpOptions::default() })
            .map_err(io_context(format!("bind the underlay socket {rx_addr}")))?;
        rx.set_recv_fragment_size(true).map_err(io_context("ask for fragment sizes"))?;
        // GRO where the kernel has it: fewer, larger messages per recvmmsg.
        rx.set_gro(true).map_err(io_context("turn UDP GRO on"))?;
        if spec.local.is_ipv6() {
            rx.set_udp6_zero_checksum_rx(spec.udp6_zero_checksum_rx).map_err(io_context("set udp6zerocsumrx"))?;
        }
        let tx = tx_pool(spec)?;
        let checksummed = if spec.local.is_ipv4() { spec.udp_checksum } else { !spec.udp6_zero_checksum_tx };
        let gso = checksummed && tx.iter().all(UdpSocket::gso_supported);
        Ok(Io { ports, names, rx, tx, src_ports: spec.src_ports, dst_port: spec.dst_port, gso })
    }

    /// The pool socket for a flow's source port: the range is split evenly.
    fn tx_socket(&self, src_port: u16) -> usize {
        let (min, max) = self.src_ports;
        let span = usize::from(max - min) + 1;
        let offset = usize::from(src_port.saturating_sub(min)).min(span - 1);
        offset * self.tx.len() / span
    }
}

impl State {
    /// Reads a burst of frames from `port`, encapsulates them and sends them.
    fn read_port(&mut self, io: &Io, port: usize) {
        let now = Instant::now();
        match &io.ports[port] {
            Port::Tap(tap) => {
                // The virtio header lands just before READ_HEADROOM, the frame at it.
                let at = READ_HEADROOM - VNET_LEN;
                for _ in 0..READ_BURST {
                    let Ok(n) = tap.read(&mut self.read_buf[at..]) else { break };
                    self.engine.encap_frame(io, port, &mut self.read_buf, at..at + n, now);
                }
            }
            Port::Dev(socket) => {
                let Some(Some(batch)) = self.dev_batches.get_mut(port) else { return };
                if socket.recv_batch(batch).is_ok() {
                    for i in 0..batch.len() {
                        if let Some((buf, read)) = batch.slot_mut(i) {
                            self.engine.encap_frame(io, port, buf, read, now);
                        }
                    }
                }
            }
        }
        self.engine.flush(io);
    }

    /// Receives batches from the underlay and delivers their frames.
    fn read_underlay(&mut self, io: &Io) {
        let now = Instant::now();
        // A longer frame can only have come whole from a sender on this host
        // (UDP-tunnel GSO across a veth): no datagram on the wire holds it.
        let max_frame = self.engine.vtep.config().max_inner_frame();
        for _ in 0..4 {
            match io.rx.recv_batch(&mut self.rx_batch) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            for datagram in self.rx_batch.iter() {
                if datagram.fragment_size.is_some() {
                    self.engine.stats.drop_fragmented += 1;
                    continue;
                }
                if datagram.truncated {
                    self.engine.stats.drop_truncated += 1;
                    continue;
                }
                // One datagram, or several coalesced by GRO; an empty one is
                // still handed over, to be counted.
                let size = datagram.segment_size.unwrap_or(usize::MAX).max(1);
                let mut rest = datagram.payload;
                loop {
                    let (segment, tail) = rest.split_at(rest.len().min(size));
                    if let Decap::Deliver { port, frame, .. } =
                        self.engine.vtep.decap(datagram.source, segment, 0..segment.len(), now)
                    {
                        let (coalescers, stats) = (&mut self.coalescers, &mut self.engine.stats);
                        deliver(io, coalescers, stats, usize::from(port), &segment[frame], max_frame);
                    }
                    rest = tail;
                    if rest.is_empty() {
                        break;
                    }
                }
            }
            let stats = &mut self.engine.stats;
            for (coalescer, target) in self.coalescers.iter_mut().zip(&io.ports) {
                coalescer.flush(&mut |bytes| write_counted(target, bytes, stats));
            }
            if self.rx_batch.len() < RX_BATCH {
                return;
            }
        }
    }

    /// The counters as `wharf vtep stats` prints them: `name value` lines,
    /// every drop named `drop_REASON`.
    fn snapshot(&self, io: &Io) -> String {
        let mut text = String::new();
        for (name, value) in self.engine.vtep.stats().iter() {
            let is_drop = DropReason::ALL.iter().any(|reason| reason.name() == name);
            let prefix = if is_drop { "drop_" } else { "" };
            text.push_str(&format!("{prefix}{name} {value}\n"));
        }
        let runner = self.engine.stats;
        let tunnel = self.engine.tunnel.as_ref().map(|t| {
            [
                ("tunnel_gso_superframes", t.superframes),
                ("tunnel_gso_frames", t.frames),
                ("tunnel_gso_unresolved", t.unresolved),
                ("tunnel_gso_write_errors", t.write_errors),
                ("tunnel_gso_neighbour_errors", t.neighbour_errors),
            ]
        });
        let runner_counters = [
            ("drop_fragmented", runner.drop_fragmented),
            ("drop_truncated", runner.drop_truncated),
            ("drop_bad_superframe", runner.drop_bad_superframe),
            ("rx_superframes", runner.rx_superframes),
            ("drop_bad_offload", runner.drop_bad_offload),
            ("port_write_errors", runner.port_write_errors),
            ("underlay_send_errors", runner.underlay_send_errors),
        ];
        for (name, value) in runner_counters.into_iter().chain(tunnel.into_iter().flatten()) {
            text.push_str(&format!("{name} {value}\n"));
        }
        text.push_str(&format!("ports {}\n", io.names.join(",")));
        text
    }
}

/// Hands one decapsulated frame to `port`'s coalescer, or — longer than
/// `max_frame`, so a superframe that crossed from a sender on this host
/// whole — writes it as GSO without copying it.
fn deliver(
    io: &Io,
    coalescers: &mut [Coalescer],
    stats: &mut RunnerStats,
    port: usize,
    frame: &[u8],
    max_frame: usize,
) {
    let (Some(target), Some(coalescer)) = (io.ports.get(port), coalescers.get_mut(port)) else { return };
    if frame.len() <= max_frame {
        coalescer.push(frame, &mut |bytes| write_counted(target, bytes, stats));
        return;
    }
    match coalescer.take_superframe(frame, max_frame, &mut |bytes| write_counted(target, bytes, stats)) {
        Some(whole) => {
            stats.rx_superframes += 1;
            if target.write_parts(whole.parts(frame)).is_err() {
                stats.port_write_errors += 1;
            }
        }
        None => stats.drop_bad_superframe += 1,
    }
}

impl Engine {
    /// Segments (or checksums) one frame read from `port` — `buf[read]`, its
    /// virtio header first, with at least [`HEADROOM`] bytes before the
    /// frame — into slots, encapsulating each; answers go straight back to
    /// the port.
    fn encap_frame(&mut self, io: &Io, port: usize, buf: &mut [u8], read: Range<usize>, now: Instant) {
        let Engine { vtep, slots, stats, tunnel } = self;
        let port_id = port as u16;
        let header = buf
            .get(read.clone())
            .ok_or(dataplane::wire::Error::Truncated)
            .and_then(|read| virtio_net::Header::new_checked(read).and_then(|h| virtio_net::Repr::parse(&h)));
        let Ok(header) = header else {
            stats.drop_bad_offload += 1;
            return;
        };
        let frame = read.start + VNET_LEN..read.end;
        if let (true, Some(tunnel)) = (header.gso.is_gso(), tunnel.as_mut()) {
            if tunnel.send(vtep, port_id, buf, frame.clone(), &header) {
                return;
            }
        }
        // A single frame too large for any slot is too large for the underlay:
        // the VTEP drops it as too big (or answers that it is) in place.
        if !header.gso.is_gso() && frame.len() > slots.frame_room() {
            if let Some(done) = complete_and_encap(vtep, buf, frame, &header, port_id, now) {
                if let Encap::Reply(reply) = done {
                    if io.ports[port].write(&buf[reply.frame]).is_err() {
                        stats.port_write_errors += 1;
                    }
                }
            } else {
                stats.drop_bad_offload += 1;
            }
            return;
        }
        let Ok(mut segments) = Segmenter::new(&buf[frame], &header) else {
            stats.drop_bad_offload += 1;
            return;
        };
        loop {
            if slots.is_full() {
                flush(io, vtep, slots, stats);
            }
            let (slot, slot_buf) = slots.next();
            let len = match segments.next_into(&mut slot_buf[READ_HEADROOM..]) {
                None => return,
                Some(Ok(len)) => len,
                Some(Err(_)) => {
                    stats.drop_bad_offload += 1;
                    return;
                }
            };
            match vtep.encap(port_id, slot_buf, READ_HEADROOM..READ_HEADROOM + len, now) {
                // With --tunnel-gso a frame to a remote whose next hop is
                // known takes the same way as the superframes, so that the
                // two do not overtake each other.
                Encap::Forward(forward) if tunnel.as_mut().is_some_and(|t| t.send_frame(vtep, slot_buf, &forward)) => {}
                Encap::Forward(forward) => {
                    let socket = io.tx_socket(forward.src_port);
                    let datagrams = vtep.destinations(&forward.to).len();
                    slots.push(socket, Pending { slot, datagram: forward.datagram, to: forward.to }, datagrams);
                }
                Encap::Reply(reply) => {
                    if io.ports[port].write(&slot_buf[reply.frame]).is_err() {
                        stats.port_write_errors += 1;
                    }
                }
                Encap::Drop(_) => {}
            }
        }
    }

    /// Sends every pending datagram.
    fn flush(&mut self, io: &Io) {
        flush(io, &self.vtep, &mut self.slots, &mut self.stats);
    }
}

/// Writes `bytes` (virtio header first) to `port`, counting a failure.
fn write_counted(port: &Port, bytes: &[u8], stats: &mut RunnerStats) {
    if port.write_with_header(bytes).is_err() {
        stats.port_write_errors += 1;
    }
}

/// Completes a partial checksum in place and hands the frame to the VTEP,
/// for frames that are not copied into a slot. `None` if the checksum could
/// not be completed.
fn complete_and_encap(
    vtep: &mut Vtep,
    buf: &mut [u8],
    frame: Range<usize>,
    header: &virtio_net::Repr,
    port: u16,
    now: Instant,
) -> Option<Encap> {
    dataplane::gso::complete_in_place(buf.get_mut(frame.clone())?, header).ok()?;
    Some(vtep.encap(port, buf, frame, now))
}

/// Sends every pending datagram, one `sendmmsg` batch per pool socket.
fn flush(io: &Io, vtep: &Vtep, slots: &mut Slots, stats: &mut RunnerStats) {
    let Slots { buf, slot_len, used, pending, gso_messages } = slots;
    for (socket, (queue, expected)) in io.tx.iter().zip(pending.iter_mut()) {
        if *expected == 0 {
            continue;
        }
        let datagram = |p: &Pending| &buf[p.slot * *slot_len..(p.slot + 1) * *slot_len][p.datagram.clone()];
        let unsent = if io.gso {
            plan_gso(io, vtep, queue, &datagram, gso_messages);
            let mut unsent = 0;
            for (range, dst, segment_size) in gso_messages.iter() {
                let mut parts = [std::io::IoSlice::new(&[]); dataplane::sys::udp::MAX_GSO_SEGMENTS];
                for (part, p) in parts.iter_mut().zip(&queue[range.clone()]) {
                    *part = std::io::IoSlice::new(datagram(p));
                }
                if socket.send_segments(*dst, None, *segment_size, &parts[..range.len()]).is_err() {
                    // Every datagram of the message is lost.
                    unsent += range.len();
                }
            }
            unsent
        } else {
            let transmits = || {
                queue.iter().flat_map(|p| {
                    let payload = datagram(p);
                    vtep.destinations(&p.to)
                        .iter()
                        .map(move |remote| Transmit::new(SocketAddr::new(*remote, io.dst_port), payload))
                })
            };
            // One remote that cannot be reached (its route gone, a firewall
            // rule) costs its own datagrams, not the rest of the batch's.
            let (_, dropped) =
                dataplane::sys::send_skipping(*expected, |from| socket.send_batch(transmits().skip(from)));
            dropped
        };
        stats.underlay_send_errors += unsent as u64;
        queue.clear();
        *expected = 0;
    }
    *used = 0;
}

/// Plans a socket's queue as messages, without copying a byte: runs of
/// unicast datagrams to one remote, all of one size but the last (which
/// may be shorter), become one UDP GSO message; anything else goes alone,
/// once per remote. A message is a range of the queue, sent as one I/O
/// vector per datagram.
fn plan_gso<'a>(
    io: &Io,
    vtep: &Vtep,
    queue: &'a [Pending],
    datagram: &impl Fn(&'a Pending) -> &'a [u8],
    messages: &mut Vec<(Range<usize>, SocketAddr, Option<u16>)>,
) {
    messages.clear();
    // The run being built: its destination, first index, segment size,
    // count and bytes.
    let mut run: Option<(SocketAddr, usize, usize, usize, usize)> = None;
    let close = |run: Option<(SocketAddr, usize, usize, usize, usize)>, messages: &mut Vec<_>| {
        if let Some((dst, start, size, count, _)) = run {
            let segment_size = (count > 1).then_some(size as u16);
            messages.push((start..start + count, dst, segment_size));
        }
    };
    for (i, p) in queue.iter().enumerate() {
        let len = datagram(p).len();
        let Destinations::Unicast(remote) = p.to else {
            close(run.take(), messages);
            for remote in vtep.destinations(&p.to) {
                messages.push((i..i + 1, SocketAddr::new(*remote, io.dst_port), None));
            }
            continue;
        };
        let dst = SocketAddr::new(remote, io.dst_port);
        run = match run {
            Some((run_dst, start, size, count, bytes))
                if run_dst == dst
                    && len <= size
                    && count < dataplane::sys::udp::MAX_GSO_SEGMENTS
                    && bytes + len <= 65_000 =>
            {
                if len < size {
                    // A shorter datagram ends the run.
                    close(Some((run_dst, start, size, count + 1, bytes + len)), messages);
                    None
                } else {
                    Some((run_dst, start, size, count + 1, bytes + len))
                }
            }
            other => {
                close(other, messages);
                Some((dst, i, len, 1, len))
            }
        };
    }
    close(run, messages);
}

/// The sending sockets: bound to ports spread over the source-port range,
/// skipping ports in use.
fn tx_pool(spec: &Spec) -> Result<Vec<UdpSocket>, RunError> {
    let (min, max) = spec.src_ports;
    let span = u32::from(max - min) + 1;
    let wanted = (TX_SOCKETS as u32).min(span);
    let mut pool = Vec::with_capacity(wanted as usize);
    let mut last_error = None;
    for i in 0..wanted {
        let first = u32::from(min) + i * span / wanted;
        let end = u32::from(min) + (i + 1) * span / wanted;
        for port in first..end {
            let addr = SocketAddr::new(spec.local, port as u16);
            match UdpSocket::bind_with(addr, UdpOptions { reuse_addr: false, ..UdpOptions::default() }) {
                Ok(socket) => {
                    configure_tx(&socket, spec).map_err(io_context(format!("configure the sending socket {addr}")))?;
                    pool.push(socket);
                    break;
                }
                Err(e) => last_error = Some((addr, e)),
            }
        }
    }
    if pool.is_empty() {
        let (addr, e) = last_error.expect("the range holds at least one port");
        return Err(io_context(format!("bind a sending socket in {min}-{max} (last tried {addr})"))(e));
    }
    Ok(pool)
}

fn configure_tx(socket: &UdpSocket, spec: &Spec) -> io::Result<()> {
    if spec.local.is_ipv4() {
        socket.set_ttl(u32::from(spec.ttl))?;
        socket.set_udp4_zero_checksum_tx(!spec.udp_checksum)?;
        // The kernel's vxlan sends with `df unset` by default; frames too big
        // for the underlay are dropped before they get here.
        socket.set_dont_fragment(false)?;
    } else {
        socket.set_ipv6_hop_limit(u32::from(spec.ttl))?;
        socket.set_udp6_zero_checksum_tx(spec.udp6_zero_checksum_tx)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vtep::spec::VniSpec;

    fn spec() -> Spec {
        Spec {
            local: "192.0.2.1".parse().unwrap(),
            dst_port: 4789,
            src_ports: (49152, 65535),
            ttl: 64,
            learning: true,
            proxy: false,
            ageing: Duration::from_secs(300),
            max_addresses: 1024,
            udp_checksum: false,
            udp6_zero_checksum_tx: false,
            udp6_zero_checksum_rx: false,
            underlay_mtu: 1500,
            frag_needed: false,
            tunnel_gso: false,
            vnis: vec![VniSpec {
                vni: 42,
                port: LocalPort::Tap("wt0".into()),
                remotes: vec!["192.0.2.2".parse().unwrap()],
                fdb: vec![],
                neighbours: vec![],
            }],
        }
    }

    #[test]
    fn spec_becomes_the_data_plane_config() {
        let config = vtep_config(&spec()).unwrap();
        assert_eq!(config.vnis.len(), 1);
        assert_eq!(config.max_inner_frame(), 1500 - 36);
        assert_eq!(config.src_port_range, (49152, 65535));
        assert!(!config.udp_checksum_v4);
    }
}
