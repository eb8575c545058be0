//! The UDP relay: one flow per client address and listener, each with its
//! own socket connected to the container, so replies come back on it and
//! are sent to the client from the listener — from the very address the
//! client sent to (`IP_PKTINFO`), which matters on a host with several.
//! Datagrams move in batches (`recvmmsg`, `sendmmsg`); a run of datagrams of
//! one flow goes in one `sendmmsg`.
//!
//! ICMP port unreachable from the container surfaces as
//! `ConnectionRefused` on the flow's socket; it is counted and the flow
//! lives on (the container may just be starting).
//!
//! What this module does not do: decide timeouts or bounds (options), or
//! wait for readiness (the [`run`](super::run) loop).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::flows::FlowTable;
use super::proxy_protocol::{Header, Transport, Version};
use super::stats::Counters;
use crate::sys::udp::{RecvBatch, Transmit, UdpOptions, UdpSocket};

/// Datagrams per `recvmmsg`.
const BATCH: usize = 64;

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
}

impl Udp {
    /// Flow `id` is registered with `Token(token_base + id)`.
    pub fn new(flows: FlowTable<Key, Flow>, proxy_protocol: Option<Version>, token_base: usize) -> Udp {
        Udp { flows, batch: None, proxy_protocol, token_base }
    }

    /// Forwards what clients sent to listener `index`.
    pub fn from_clients(
        &mut self,
        index: usize,
        listener: &UdpListener,
        counters: &mut [Counters],
        registry: &Registry,
        now: Instant,
    ) {
        let batch = self.batch.get_or_insert_with(|| RecvBatch::new(BATCH, MAX_DATAGRAM));
        loop {
            let n = match listener.socket.recv_batch(batch) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let mut i = 0;
            while i < n {
                let Some(first) = batch.get(i) else { break };
                let key = (index, first.source);
                // The run of datagrams from this client.
                let mut end = i + 1;
                while batch.get(end).is_some_and(|d| d.source == first.source) {
                    end += 1;
                }
                let new = FlowRequest { key, local: first.local, listener, proxy_protocol: self.proxy_protocol };
                let Some(id) = flow_for(&mut self.flows, new, counters, registry, self.token_base, now) else {
                    counters[listener.mapping].errors += (end - i) as u64;
                    i = end;
                    continue;
                };
                self.flows.touch(id, now);
                if let Some((_, flow)) = self.flows.get(id) {
                    let prefix = flow.header.as_ref().map_or(&[][..], |h| h.as_bytes());
                    let run = (i..end).filter_map(|j| batch.get(j));
                    let run = run.map(|d| Transmit { prefix, ..Transmit::new(listener.container, d.payload) });
                    let sent = send_run(&flow.socket, run);
                    let bytes: usize = (i..i + sent).filter_map(|j| batch.get(j)).map(|d| d.payload.len()).sum();
                    let c = &mut counters[listener.mapping];
                    c.datagrams_in += sent as u64;
                    c.bytes_in += bytes as u64;
                    c.errors += (end - i - sent) as u64;
                }
                i = end;
            }
            if n < batch.capacity() {
                return;
            }
        }
    }

    /// Forwards what the container sent on flow `id` back to its client.
    pub fn from_container(
        &mut self,
        id: usize,
        listeners: &[Option<UdpListener>],
        counters: &mut [Counters],
        now: Instant,
    ) {
        let Some((_, flow)) = self.flows.get(id) else { return };
        let Some(Some(listener)) = listeners.get(flow.listener) else { return };
        let c = &mut counters[flow.mapping];
        let batch = self.batch.get_or_insert_with(|| RecvBatch::new(BATCH, MAX_DATAGRAM));
        let mut any = false;
        loop {
            let n = match flow.socket.recv_batch(batch) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP port unreachable from the container: the flow stays.
                Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
                    c.errors += 1;
                    continue;
                }
                Err(_) => break,
            };
            any = true;
            let sent = send_run(
                &listener.socket,
                (0..n)
                    .filter_map(|i| batch.get(i))
                    .map(|d| Transmit { src: flow.local, ..Transmit::new(flow.client, d.payload) }),
            );
            let bytes: usize = batch.iter().take(sent).map(|d| d.payload.len()).sum();
            c.datagrams_out += sent as u64;
            c.bytes_out += bytes as u64;
            c.errors += (n - sent) as u64;
            if n < batch.capacity() {
                break;
            }
        }
        if any {
            self.flows.touch(id, now);
        }
    }

    /// Closes flows idle longer than the timeout.
    pub fn expire(&mut self, counters: &mut [Counters], now: Instant) {
        while let Some((_, flow)) = self.flows.pop_expired(now) {
            counters[flow.mapping].flows -= 1;
        }
    }

    /// Closes every flow (the proxy is stopping).
    pub fn close_all(&mut self, counters: &mut [Counters]) {
        while let Some((_, flow)) = self.flows.evict_idlest() {
            counters[flow.mapping].flows -= 1;
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
    counters: &mut [Counters],
    registry: &Registry,
    token_base: usize,
    now: Instant,
) -> Option<usize> {
    if let Some(id) = flows.find(&new.key) {
        return Some(id);
    }
    if flows.is_full() {
        if let Some((_, evicted)) = flows.evict_idlest() {
            counters[evicted.mapping].flows -= 1;
            counters[evicted.mapping].flows_evicted += 1;
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
    counters[listener.mapping].flows += 1;
    counters[listener.mapping].flows_total += 1;
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
    let socket = UdpSocket::bind_with(any, options)?;
    socket.connect(container)?;
    Ok(socket)
}

/// Sends a run of datagrams; returns how many left. A pending ICMP error
/// (reported once) is skipped over; a full socket drops the rest.
fn send_run<'a>(socket: &UdpSocket, run: impl Iterator<Item = Transmit<'a>> + Clone) -> usize {
    let mut sent = 0;
    let mut refused = 0;
    loop {
        match socket.send_batch(run.clone().skip(sent)) {
            Ok(0) => return sent,
            Ok(n) => sent += n,
            Err(err) if err.kind() == io::ErrorKind::ConnectionRefused && refused < 2 => refused += 1,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return sent,
        }
    }
}
