//! The UDP relay: one flow per client address and listener, each with its
//! own socket connected to the container, so replies come back on it and
//! are sent to the client from the listener — from the very address the
//! client sent to (`IP_PKTINFO`), which matters on a host with several.
//! Datagrams arrive in batches (`recvmmsg`, with GRO); a run of equal-size
//! datagrams of one flow leaves as one UDP GSO send, and the datagrams
//! between runs leave together in one `sendmmsg`.
//!
//! ICMP port unreachable from the container surfaces as
//! `ConnectionRefused` on the flow's socket; it is counted and the flow
//! lives on (the container may just be starting).
//!
//! What this module does not do: decide timeouts or bounds (options), or
//! wait for readiness (the [`run`](super::run) loop).

use std::io::{self, IoSlice};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::flows::FlowTable;
use super::proxy_protocol::{Header, Transport, Version};
use super::run::Listener;
use super::stats::Counters;
use crate::sys::udp::{RecvBatch, Transmit, UdpOptions, UdpSocket};

/// Datagrams per `recvmmsg`.
const BATCH: usize = 64;
/// Batches one listener or flow may read before the others get a turn.
const BATCHES_PER_TURN: usize = 4;
// A batch's entries are the bits of a u64.
const _: () = assert!(BATCH <= 64);

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

/// A bound socket taking datagrams for one host port.
#[derive(Debug)]
pub struct UdpListener {
    pub mapping: usize,
    pub socket: UdpSocket,
    pub container: SocketAddr,
}

/// One client's flow.
#[derive(Debug)]
pub struct Flow {
    mapping: usize,
    listener: usize,
    socket: UdpSocket,
    client: SocketAddr,
    /// The address the client sent to, to reply from.
    local: Option<IpAddr>,
    header: Option<Header>,
}

/// A flow's key: the listener it came in on and the client's address.
pub type Key = (usize, SocketAddr);

/// The flows and the receive buffers.
#[derive(Debug)]
pub struct Udp {
    pub flows: FlowTable<Key, Flow>,
    batch: Option<RecvBatch>,
    proxy_protocol: Option<Version>,
    token_base: usize,
    /// The kernel segments UDP GSO sends (cleared if it refuses).
    gso: bool,
}

impl Udp {
    /// Flow `id` is registered with `Token(token_base + id)`.
    pub fn new(flows: FlowTable<Key, Flow>, proxy_protocol: Option<Version>, token_base: usize) -> Udp {
        Udp { flows, batch: None, proxy_protocol, token_base, gso: true }
    }

    /// Forwards what clients sent to listener `index`, up to
    /// [`BATCHES_PER_TURN`] batches; says whether more may be waiting.
    pub(crate) fn relay_to_container(
        &mut self,
        index: usize,
        listener: &UdpListener,
        counters: &[Counters],
        registry: &Registry,
        now: Instant,
    ) -> bool {
        let batch = self.batch.get_or_insert_with(|| RecvBatch::new(BATCH, MAX_DATAGRAM));
        for _ in 0..BATCHES_PER_TURN {
            let n = match listener.socket.recv_batch(batch) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            };
            // Each client's datagrams of the batch go in one send, in the
            // order they came, however the clients' datagrams interleave:
            // `left` holds the entries not sent yet, `group` one client's.
            let n = n.min(BATCH);
            let mut left = u64::MAX.checked_shr(64 - n as u32).unwrap_or(0);
            while left != 0 {
                let i = left.trailing_zeros() as usize;
                let Some(first) = batch.get(i) else { break };
                let group = (i..n)
                    .filter(|&j| left & 1 << j != 0 && batch.get(j).is_some_and(|d| d.source == first.source))
                    .fold(0u64, |group, j| group | 1 << j);
                left &= !group;
                let key = (index, first.source);
                let new = FlowRequest { key, local: first.local, listener, proxy_protocol: self.proxy_protocol };
                let Some(id) = flow_for(&mut self.flows, new, counters, registry, self.token_base, now) else {
                    counters[listener.mapping].errors.add(u64::from(group.count_ones()));
                    continue;
                };
                self.flows.touch(id, now);
                if let Some((_, flow)) = self.flows.get(id) {
                    let prefix = flow.header.as_ref().map_or(&[][..], |h| h.as_bytes());
                    let members = (i..n).filter(|&j| group & 1 << j != 0);
                    let datagrams = members.filter_map(|j| batch.get(j)).flat_map(|d| d.segments());
                    let to = Path { socket: &flow.socket, dst: listener.container, src: None, prefix };
                    let sent = to.send(datagrams, &mut self.gso);
                    let c = &counters[listener.mapping];
                    c.datagrams_in.add(sent.datagrams);
                    c.bytes_in.add(sent.bytes);
                    c.errors.add(sent.dropped);
                }
            }
            if n < batch.capacity() {
                return false;
            }
        }
        true
    }

    /// Forwards what the container sent on flow `id` back to its client, up
    /// to [`BATCHES_PER_TURN`] batches; says whether more may be waiting.
    pub(crate) fn relay_to_client(
        &mut self,
        id: usize,
        listeners: &[Listener],
        counters: &[Counters],
        now: Instant,
    ) -> bool {
        let Some((_, flow)) = self.flows.get(id) else { return false };
        let Some(Listener::Udp(listener)) = listeners.get(flow.listener) else { return false };
        let c = &counters[flow.mapping];
        let batch = self.batch.get_or_insert_with(|| RecvBatch::new(BATCH, MAX_DATAGRAM));
        let mut any = false;
        let mut more = true;
        for _ in 0..BATCHES_PER_TURN {
            let n = match flow.socket.recv_batch(batch) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP port unreachable from the container: the flow stays.
                Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
                    c.errors.add(1);
                    continue;
                }
                Err(_) => {
                    more = false;
                    break;
                }
            };
            any = true;
            let datagrams = (0..n).filter_map(|i| batch.get(i)).flat_map(|d| d.segments());
            let to = Path { socket: &listener.socket, dst: flow.client, src: flow.local, prefix: &[] };
            let sent = to.send(datagrams, &mut self.gso);
            c.datagrams_out.add(sent.datagrams);
            c.bytes_out.add(sent.bytes);
            c.errors.add(sent.dropped);
            if n < batch.capacity() {
                more = false;
                break;
            }
        }
        if any {
            self.flows.touch(id, now);
        }
        more
    }

    /// Closes flows idle longer than the timeout.
    pub fn expire(&mut self, counters: &[Counters], now: Instant) {
        while let Some((_, flow)) = self.flows.pop_expired(now) {
            counters[flow.mapping].flows.sub(1);
        }
    }

    /// Closes every flow (the proxy is stopping).
    pub fn close_all(&mut self, counters: &[Counters]) {
        while let Some((_, flow)) = self.flows.evict_idlest() {
            counters[flow.mapping].flows.sub(1);
        }
    }
}

/// What a new flow needs.
struct FlowRequest<'a> {
    key: Key,
    local: Option<IpAddr>,
    listener: &'a UdpListener,
    proxy_protocol: Option<Version>,
}

/// The flow of `new.key`, created (evicting the idlest when full) if new.
fn flow_for(
    flows: &mut FlowTable<Key, Flow>,
    new: FlowRequest<'_>,
    counters: &[Counters],
    registry: &Registry,
    token_base: usize,
    now: Instant,
) -> Option<usize> {
    if let Some(id) = flows.find(&new.key) {
        return Some(id);
    }
    if flows.is_full() {
        if let Some((_, evicted)) = flows.evict_idlest() {
            counters[evicted.mapping].flows.sub(1);
            counters[evicted.mapping].flows_evicted.add(1);
        }
    }
    let listener = new.listener;
    let socket = connect_to(listener.container).ok()?;
    let header = new.proxy_protocol.map(|version| {
        let bound = listener.socket.local_addr().ok();
        let ip = new.local.or(bound.map(|a| a.ip())).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let dst = SocketAddr::new(ip, bound.map_or(0, |a| a.port()));
        Header::new(version, Transport::Datagram, new.key.1, dst)
    });
    let flow =
        Flow { mapping: listener.mapping, listener: new.key.0, socket, client: new.key.1, local: new.local, header };
    let id = flows.insert(new.key, flow, now).ok()?;
    let fd = flows.get(id).map(|(_, f)| std::os::fd::AsRawFd::as_raw_fd(&f.socket))?;
    if registry.register(&mut SourceFd(&fd), Token(token_base + id), Interest::READABLE).is_err() {
        flows.remove(id);
        return None;
    }
    counters[listener.mapping].flows.add(1);
    counters[listener.mapping].flows_total.add(1);
    Some(id)
}

/// A nonblocking socket connected to `container`, on an ephemeral port.
fn connect_to(container: SocketAddr) -> io::Result<UdpSocket> {
    let any = match container {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let options = UdpOptions {
        reuse_addr: false,
        recv_buffer: 1 << 20,
        send_buffer: 1 << 20,
        v6_only: true,
        nonblocking: true,
        ..UdpOptions::default()
    };
    let mut socket = UdpSocket::bind_with(any, options)?;
    socket.connect(container)?;
    // Replies that arrive as a train come up as one message.
    let _ = socket.set_gro(true);
    Ok(socket)
}

use crate::sys::udp::MAX_GSO_SEGMENTS as MAX_SEGMENTS;

/// The most bytes in one GSO send: an IPv4 packet's payload, less the UDP
/// header.
const MAX_GSO_BYTES: usize = 65_000;

/// Where datagrams go: a socket, a destination, a source address to send
/// from, and a header to put in front of each (a PROXY v2 header, or none).
struct Path<'a> {
    socket: &'a UdpSocket,
    dst: SocketAddr,
    src: Option<IpAddr>,
    prefix: &'a [u8],
}

/// What a [`Path::send`] did.
#[derive(Debug, Default)]
struct Sent {
    datagrams: u64,
    bytes: u64,
    dropped: u64,
}

impl Path<'_> {
    /// Sends `datagrams` in order. Runs of equal size go as one UDP GSO
    /// send (the kernel cuts them apart again, datagram for datagram), so
    /// a run costs one trip down the stack instead of one per datagram;
    /// with a prefix, each datagram keeps its own copy in front. The
    /// datagrams between runs (sizes that differ, or every one when `gso`
    /// is off) leave together, up to 64 in one `sendmmsg`. `gso` is
    /// cleared for good when the kernel refuses to segment.
    fn send<'d>(&self, datagrams: impl Iterator<Item = &'d [u8]>, gso: &mut bool) -> Sent {
        let mut sent = Sent::default();
        let mut group: [&[u8]; MAX_SEGMENTS] = [&[]; MAX_SEGMENTS];
        let mut count = 0;
        let mut bytes = 0;
        // Groups of one wait here, to leave together in one sendmmsg.
        let mut singles: [&[u8]; MAX_SEGMENTS] = [&[]; MAX_SEGMENTS];
        let mut waiting = 0;
        for datagram in datagrams {
            let size = group[0].len();
            // An empty datagram never joins: as the last of a GSO send it
            // would vanish.
            let fits = count > 0
                && *gso
                && !datagram.is_empty()
                && size > 0
                && count < MAX_SEGMENTS
                && datagram.len() <= size
                && group[count - 1].len() == size
                && bytes + self.prefix.len() + datagram.len() <= MAX_GSO_BYTES;
            if !fits && count > 0 {
                if count == 1 {
                    if waiting == singles.len() {
                        self.send_each(&singles[..waiting], &mut sent);
                        waiting = 0;
                    }
                    singles[waiting] = group[0];
                    waiting += 1;
                } else {
                    self.send_each(&singles[..waiting], &mut sent);
                    waiting = 0;
                    self.flush(&group[..count], gso, &mut sent);
                }
                count = 0;
                bytes = 0;
            }
            group[count] = datagram;
            count += 1;
            bytes += self.prefix.len() + datagram.len();
        }
        if count == 1 && waiting < singles.len() {
            singles[waiting] = group[0];
            waiting += 1;
            count = 0;
        }
        self.send_each(&singles[..waiting], &mut sent);
        if count > 0 {
            self.flush(&group[..count], gso, &mut sent);
        }
        sent
    }

    /// Sends one group: as one GSO message, or datagram by datagram.
    fn flush(&self, group: &[&[u8]], gso: &mut bool, sent: &mut Sent) {
        if group.len() > 1 && *gso {
            let mut parts = [IoSlice::new(&[]); 2 * MAX_SEGMENTS];
            let mut n = 0;
            for datagram in group {
                if !self.prefix.is_empty() {
                    parts[n] = IoSlice::new(self.prefix);
                    n += 1;
                }
                parts[n] = IoSlice::new(datagram);
                n += 1;
            }
            let segment = (self.prefix.len() + group[0].len()) as u16;
            match self.retry(|| self.socket.send_segments(self.dst, self.src, Some(segment), &parts[..n])) {
                Ok(_) => {
                    sent.datagrams += group.len() as u64;
                    sent.bytes += group.iter().map(|d| d.len() as u64).sum::<u64>();
                    return;
                }
                Err(err) if matches!(err.raw_os_error(), Some(libc::EIO | libc::ENOPROTOOPT)) => {
                    // No segmentation offload here: one by one from now on.
                    *gso = false;
                }
                // This group cannot be segmented (a segment larger than the
                // path allows): it goes one by one, later groups still try.
                Err(err) if err.raw_os_error() == Some(libc::EINVAL) => {}
                Err(_) => {
                    sent.dropped += group.len() as u64;
                    return;
                }
            }
        }
        self.send_each(group, sent);
    }

    /// Sends `datagrams` as one datagram each, in as few `sendmmsg` calls as
    /// the kernel takes them. One that cannot go is counted dropped, and
    /// the rest still go.
    fn send_each(&self, datagrams: &[&[u8]], sent: &mut Sent) {
        let mut done = 0;
        let mut tries = 0;
        while done < datagrams.len() {
            let transmits = datagrams[done..].iter().map(|&payload| Transmit {
                dst: self.dst,
                payload,
                segment_size: None,
                prefix: self.prefix,
                src: self.src,
            });
            match self.socket.send_batch(transmits) {
                Ok(n) if n > 0 => {
                    sent.datagrams += n as u64;
                    sent.bytes += datagrams[done..done + n].iter().map(|d| d.len() as u64).sum::<u64>();
                    done += n;
                    tries = 0;
                }
                Err(err) if tries < 2 && is_retried(&err) => tries += 1,
                _ => {
                    sent.dropped += 1;
                    done += 1;
                    tries = 0;
                }
            }
        }
    }

    /// Runs `send`, again after an interruption or a pending ICMP error.
    fn retry(&self, mut send: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
        let mut tries = 0;
        loop {
            match send() {
                Err(err) if tries < 2 && is_retried(&err) => tries += 1,
                other => return other,
            }
        }
    }
}

/// A send that fails for a reason that is gone on the next try: a signal,
/// or a pending ICMP error (reported once, on the next call, by a
/// connected socket).
fn is_retried(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::Interrupted)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener that never runs dry is read [`BATCHES_PER_TURN`] batches
    /// at a time, and says so; what is left comes on the next turn.
    #[test]
    fn a_flood_is_read_a_few_batches_per_turn() {
        let container = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let options = UdpOptions { nonblocking: true, ..UdpOptions::default() };
        let socket = UdpSocket::bind_with("127.0.0.1:0".parse().unwrap(), options).unwrap();
        socket.set_recv_pktinfo(true).unwrap();
        let at = socket.local_addr().unwrap();
        let listener = UdpListener { mapping: 0, socket, container: container.local_addr().unwrap() };
        // Clients take turns, so that no two datagrams in a row share a
        // source and GRO cannot merge them: one datagram per batch entry.
        let clients: Vec<std::net::UdpSocket> =
            (0..4).map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
        let total = BATCHES_PER_TURN * BATCH + 10;
        for i in 0..total {
            clients[i % clients.len()].send_to(&[i as u8; 8], at).unwrap();
        }
        let poll = mio::Poll::new().unwrap();
        let counters = [Counters::default()];
        let mut udp = Udp::new(FlowTable::new(16, std::time::Duration::from_secs(90)), None, 1000);
        let now = Instant::now();
        assert!(udp.relay_to_container(0, &listener, &counters, poll.registry(), now), "a full turn says more waits");
        assert_eq!(counters[0].datagrams_in.get(), (BATCHES_PER_TURN * BATCH) as u64);
        assert!(!udp.relay_to_container(0, &listener, &counters, poll.registry(), now), "the rest fits a turn");
        assert_eq!(counters[0].datagrams_in.get(), total as u64);
        assert_eq!(counters[0].errors.get(), 0);
    }

    /// Whatever the grouping, the receiver sees the datagrams one by one,
    /// in order, each with its own prefix: runs of equal size, a shorter
    /// one ending a run, an empty one, a larger one starting a new run.
    #[test]
    fn grouped_sends_keep_every_datagram_boundary() {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        let dst = receiver.local_addr().unwrap();
        let any = UdpOptions { nonblocking: false, ..UdpOptions::default() };
        let mut socket = UdpSocket::bind_with("127.0.0.1:0".parse().unwrap(), any).unwrap();
        socket.connect(dst).unwrap();
        let mut datagrams: Vec<Vec<u8>> = (0..70u8).map(|i| vec![i; 100]).collect();
        datagrams.insert(10, vec![0xee; 40]);
        datagrams.insert(11, Vec::new());
        datagrams.push(vec![0xaa; 300]);
        datagrams.push(vec![0xbb; 300]);
        for prefix in [&b""[..], b"HDR:"] {
            let mut gso = true;
            let path = Path { socket: &socket, dst, src: None, prefix };
            let sent = path.send(datagrams.iter().map(Vec::as_slice), &mut gso);
            assert_eq!(sent.datagrams, datagrams.len() as u64, "with prefix {prefix:?}");
            assert_eq!(sent.dropped, 0);
            assert!(gso, "loopback segments UDP GSO sends");
            let mut buf = [0u8; 2048];
            for want in &datagrams {
                let n = receiver.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], [prefix, want.as_slice()].concat().as_slice());
            }
        }
    }

    /// Datagrams that never form a run (each larger than the last), more
    /// than one `sendmmsg` takes, and a run sent without GSO: all arrive,
    /// in order, each whole.
    #[test]
    fn datagrams_outside_runs_arrive_whole_and_in_order() {
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        let dst = receiver.local_addr().unwrap();
        let any = UdpOptions { nonblocking: false, send_buffer: 1 << 20, ..UdpOptions::default() };
        let mut socket = UdpSocket::bind_with("127.0.0.1:0".parse().unwrap(), any).unwrap();
        socket.connect(dst).unwrap();
        let growing: Vec<Vec<u8>> = (1..=150usize).map(|n| vec![n as u8; n]).collect();
        let run: Vec<Vec<u8>> = (0..70u8).map(|i| vec![i; 64]).collect();
        for (datagrams, gso) in [(&growing, true), (&run, false)] {
            for prefix in [&b""[..], b"HDR:"] {
                let mut gso = gso;
                let path = Path { socket: &socket, dst, src: None, prefix };
                let sent = path.send(datagrams.iter().map(Vec::as_slice), &mut gso);
                assert_eq!((sent.datagrams, sent.dropped), (datagrams.len() as u64, 0), "prefix {prefix:?}");
                let bytes: usize = datagrams.iter().map(Vec::len).sum();
                assert_eq!(sent.bytes, bytes as u64);
                let mut buf = [0u8; 2048];
                for want in datagrams.iter() {
                    let n = receiver.recv(&mut buf).unwrap();
                    assert_eq!(&buf[..n], [prefix, want.as_slice()].concat().as_slice());
                }
            }
        }
    }
}
