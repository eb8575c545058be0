//! The NAT engine: [`Nat::translate`] takes an IP packet from one side,
//! finds or creates its connection, and rewrites the packet in place.
//!
//! - A packet of a tracked connection is rewritten to the other direction's
//!   tuple, its protocol state advanced and its deadline pushed back.
//! - A packet that starts a connection creates one when a rule applies:
//!   from inside, a published port on an outside address (hairpin: DNAT and
//!   SNAT), or a masquerade rule for its source; from outside, a published
//!   port (DNAT). The masqueraded source port is kept when it is free on the
//!   outside address, else found by a bounded search from a keyed hash of the
//!   inside endpoint: four runs of 32 consecutive ports from four offsets,
//!   as nf_nat does. UDP mappings are endpoint-independent (RFC 4787 REQ-1).
//! - ICMP errors about a tracked connection are translated with their quoted
//!   packet (RFC 5508); non-first fragments follow their first fragment.
//! - Anything else is passed untouched ([`Verdict::Pass`]), except what a
//!   rule covers but cannot be tracked (dropped, so no inside address
//!   leaks).
//!
//! Only connections a rule applies to are tracked. Nothing here allocates
//! after [`Nat::new`]; IPv4 and IPv6 have tables of their own.
//!
//! What this module does not do: route (a translated packet goes where its
//! new destination says: a hairpinned one back inside), decrement the TTL,
//! answer for the NAT's own addresses (ARP, ping), or keep time (call
//! [`Nat::expire`] about once a second).

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::config::{ConfigError, DnatRule, NatConfig, Prefix};
use super::frag::{FragKey, Fragments};
use super::packet::{self, Deltas, Frag, Kind, Parsed, LEAN_LEN, TCP, UDP};
use super::ports::{Endpoint, Pool};
use super::state::{self, ConnState, TcpEvent, Ticks};
use super::stats::{DropReason, Stats};
use super::table::{flag, Entry, Hasher, Table, Tuple, ORIG, REPLY};
use crate::wire::IpProtocol;

/// Which side of the NAT a packet comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The private networks behind the NAT (containers).
    Inside,
    /// The uplink.
    Outside,
}

/// What to do with a packet after [`Nat::translate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Rewritten in place for a tracked connection: send it on, routed by
    /// its new destination (a hairpinned packet goes back inside).
    Forward,
    /// No rule or connection applies: left untouched. Route it as it is, or
    /// take it for the NAT host itself when it is addressed there.
    Pass,
    /// Dropped, and counted under the reason.
    Drop(DropReason),
}

/// A tracked connection, as [`Nat::connections`] lists it (`conntrack -L`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Connection {
    pub zone: u16,
    pub protocol: IpProtocol,
    /// Source and destination of original-direction packets as they
    /// arrive. For ICMP echo the identifier is the source port of requests.
    pub original: (SocketAddr, SocketAddr),
    /// Source and destination of reply-direction packets as they arrive
    /// (the identifier is the destination port of echo replies).
    pub reply: (SocketAddr, SocketAddr),
    pub state: ConnState,
    /// Seen both ways (and, for TCP, past the handshake): not evicted while
    /// open.
    pub assured: bool,
    /// Seconds left without traffic, from the last `now` seen.
    pub expires_in: u32,
}

/// What a new connection gets.
#[derive(Debug, Clone, Copy)]
enum Plan<const N: usize> {
    /// Masquerade from pool `pool`.
    Snat { pool: u8 },
    /// To the internal server.
    Dnat { to: [u8; N], port: u16 },
    /// To the internal server, from the inside endpoint's mapping on `pool`.
    Hairpin { to: [u8; N], port: u16, pool: u8 },
}

/// How far [`Family::steady`] went with a packet it did not rewrite, for
/// the general path to go on from there ([`Family::hand_over`]).
#[derive(Debug, Clone, Copy, Default)]
enum Handover {
    /// Nothing done: the packet was not looked at.
    #[default]
    Fresh,
    /// The lean read did not accept the packet: the general path reads it.
    Unread,
    /// Read (the buffer unchanged: [`packet::lean_parsed`] reads it again),
    /// not looked up: TCP with SYN, FIN or RST.
    Read,
    /// Read and looked up (its tuple's hash in `Shared::hash`): its
    /// connection and direction if found.
    Looked { found: Option<(u32, usize)> },
    /// Read, TCP without SYN, FIN or RST or UDP, its key not near its home
    /// slot (its hash in `Shared::hash`): the search goes on.
    Further,
    /// Read and looked up by [`Family::fresh`], which did not take it as
    /// a new connection (its tuple's hash in `Shared::hash`): its
    /// connection and direction if found.
    Declined { found: Option<(u32, usize)> },
}

/// What both families share in [`Nat::translate`].
#[derive(Debug, Clone)]
struct Shared {
    stats: Stats,
    ticks: Ticks,
    /// The deadline a packet of a steady connection gives it at the
    /// current tick: `[ESTABLISHED TCP, UDP_ASSURED]`, set by [`Nat::tick`]
    /// when the tick moves.
    steady: [u32; 2],
    /// The deadline a new connection gets at the current tick, set with
    /// `steady`: `[SYN_SENT, UDP_UNREPLIED]`.
    fresh: [u32; 2],
    /// Where the lean path left the packet it handed over: set by
    /// [`Family::steady`] when it returns false, taken at once by
    /// [`Nat::translate_slow`].
    handover: Handover,
    /// The hash of the last tuple [`Family::steady`] looked up: stored as
    /// soon as computed, so that it need not be kept in a register, and
    /// read with [`Handover::Looked`].
    hash: u64,
    /// Packets the lean path rewrote itself, and of those the ones whose
    /// key was beyond the two slots from its home (tests only).
    #[cfg(test)]
    lean: u64,
    #[cfg(test)]
    lean_far: u64,
    /// New connections the lean path made itself (tests only).
    #[cfg(test)]
    lean_new: u64,
    tcp_loose: bool,
    port_range: (u16, u16),
}

/// A published port rule, with its addresses as bytes.
#[derive(Debug, Clone, Copy)]
struct Published<const N: usize> {
    rule: DnatRule,
    external: [u8; N],
    internal: [u8; N],
    pool: u8,
}

/// A masquerade rule: its inside prefix as a number (`addr & mask == net`,
/// the address's bytes in memory order, zero-padded), and the pool of its
/// outside address.
#[derive(Debug, Clone, Copy)]
struct MasqueradeRule<const N: usize> {
    net: u128,
    mask: u128,
    pool: u8,
}

/// An address's bytes in memory order as a number (zero-padded): one load.
#[inline(always)]
fn addr_bits<const N: usize>(addr: &[u8; N]) -> u128 {
    let mut bytes = [0u8; 16];
    if let Some(head) = bytes.get_mut(..N) {
        head.copy_from_slice(addr);
    }
    u128::from_ne_bytes(bytes)
}

impl<const N: usize> MasqueradeRule<N> {
    /// The rule for `inside` on `pool`; `None` if the prefix is of the
    /// other family (it contains no address of this one).
    fn new(inside: &Prefix, pool: u8) -> Option<MasqueradeRule<N>> {
        let net = from_ip::<N>(inside.addr())?;
        let mut mask = [0u8; N];
        for (i, byte) in mask.iter_mut().enumerate() {
            let bits = usize::from(inside.len()).saturating_sub(8 * i).min(8);
            *byte = !(0xffu8.checked_shr(bits as u32).unwrap_or(0));
        }
        let mask = addr_bits(&mask);
        Some(MasqueradeRule { net: addr_bits(&net) & mask, mask, pool })
    }

    #[inline(always)]
    fn covers(&self, addr: &[u8; N]) -> bool {
        addr_bits(addr) & self.mask == self.net
    }
}

/// One family's state: the table, the outside addresses' port pools, the
/// fragment table, and the rules of this family.
#[derive(Debug, Clone)]
struct Family<const N: usize> {
    table: Table<N>,
    pools: Vec<Pool<N>>,
    frags: Fragments<N>,
    masquerade: Vec<MasqueradeRule<N>>,
    published: Vec<Published<N>>,
}

fn to_ip<const N: usize>(addr: &[u8; N]) -> IpAddr {
    let mut v6 = [0u8; 16];
    if let Some(bytes) = v6.get_mut(..N) {
        bytes.copy_from_slice(addr);
    }
    if packet::is_v4::<N>() {
        IpAddr::V4(Ipv4Addr::new(v6[0], v6[1], v6[2], v6[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(v6))
    }
}

fn from_ip<const N: usize>(ip: IpAddr) -> Option<[u8; N]> {
    let mut addr = [0u8; N];
    match ip {
        IpAddr::V4(v4) if packet::is_v4::<N>() => addr.copy_from_slice(v4.octets().get(..N)?),
        IpAddr::V6(v6) if !packet::is_v4::<N>() => addr.copy_from_slice(v6.octets().get(..N)?),
        _ => return None,
    }
    Some(addr)
}

/// Whether packets to `addr` are never translated: multicast (224/4,
/// ff00::/8) and broadcast.
fn is_group<const N: usize>(addr: &[u8; N]) -> bool {
    if packet::is_v4::<N>() {
        addr[0] >> 4 == 0xe || addr.iter().all(|&b| b == 0xff)
    } else {
        addr[0] == 0xff
    }
}

impl<const N: usize> Family<N> {
    fn new(config: &NatConfig, max: usize, hasher: Hasher) -> Family<N> {
        let mut pools: Vec<Pool<N>> = Vec::new();
        let pool_of = |pools: &mut Vec<Pool<N>>, addr: [u8; N]| match pools.iter().position(|p| p.addr == addr) {
            Some(i) => i as u8,
            None => {
                pools.push(Pool::new(addr, hasher));
                (pools.len() - 1) as u8
            }
        };
        let mut masquerade = Vec::new();
        for rule in &config.masquerade {
            if let Some(outside) = from_ip::<N>(rule.outside) {
                let pool = pool_of(&mut pools, outside);
                masquerade.extend(MasqueradeRule::new(&rule.inside, pool));
            }
        }
        let mut published = Vec::new();
        for rule in &config.dnat {
            if let (Some(external), Some(internal)) = (from_ip::<N>(rule.external), from_ip::<N>(rule.internal)) {
                let pool = pool_of(&mut pools, external);
                if let Some(p) = pools.get_mut(usize::from(pool)) {
                    p.reserve(rule.protocol == IpProtocol::Udp, rule.external_ports.0, rule.external_ports.1);
                }
                published.push(Published { rule: *rule, external, internal, pool });
            }
        }
        Family { table: Table::new(max, hasher), pools, frags: Fragments::new(), masquerade, published }
    }

    fn memory_bytes(&self) -> usize {
        self.table.memory_bytes() + self.pools.iter().map(Pool::memory_bytes).sum::<usize>() + self.frags.memory_bytes()
    }

    /// The pool a connection from `src` to `dst` is masqueraded on.
    #[inline]
    fn masquerade_pool(&self, src: &[u8; N], dst: &[u8; N]) -> Option<u8> {
        self.masquerade.iter().find(|rule| rule.covers(src) && !rule.covers(dst)).map(|rule| rule.pool)
    }

    fn is_outside_addr(&self, addr: &[u8; N]) -> bool {
        self.pools.iter().any(|pool| pool.addr == *addr)
    }

    fn published(&self, proto: u8, dst: &[u8; N], port: u16) -> Option<&Published<N>> {
        self.published.iter().find(|p| u8::from(p.rule.protocol) == proto && p.external == *dst && p.rule.covers(port))
    }

    #[inline]
    fn translate(&mut self, sh: &mut Shared, zone: u16, side: Side, buf: &mut [u8], tick: u32) -> Verdict {
        let p = match packet::parse::<N>(buf) {
            Ok(p) => p,
            Err(reason) => return Verdict::Drop(reason),
        };
        self.translate_parsed(sh, zone, side, buf, &p, tick)
    }

    /// [`Family::translate`] once the packet is read.
    #[inline(always)]
    fn translate_parsed(
        &mut self,
        sh: &mut Shared,
        zone: u16,
        side: Side,
        buf: &mut [u8],
        p: &Parsed<N>,
        tick: u32,
    ) -> Verdict {
        let p = *p;
        if !matches!(p.kind, Kind::Tcp { .. } | Kind::Udp | Kind::Echo { .. }) {
            return self.translate_other(sh, zone, side, buf, &p, tick);
        }
        let kept = self.kept_guess(zone, side, &p);
        let hash = self.table.hash(zone, p.proto, &p.tuple);
        let found = self.table.find(hash, zone, p.proto, &p.tuple);
        self.tracked(sh, zone, side, buf, &p, hash, found, kept, tick)
    }

    /// A SYN (or a datagram) from inside may start a masqueraded connection
    /// that keeps its port: start loading where that reply tuple's
    /// uniqueness check or insert will look while the lookup of the packet
    /// itself is under way, so that the two cache misses overlap. The pool
    /// and hash, as [`Family::new_connection`] takes them.
    #[inline(always)]
    fn kept_guess(&self, zone: u16, side: Side, p: &Parsed<N>) -> Option<(u8, u64)> {
        match p.kind {
            Kind::Tcp { flags } if side == Side::Inside && flags & state::TH_HANDSHAKE == state::TH_SYN_ONLY => {
                self.masquerade_pool(&p.tuple.src, &p.tuple.dst).map(|pool| self.prefetch_kept(zone, p, pool))
            }
            Kind::Udp => self.kept_guess_udp(zone, side, p),
            _ => None,
        }
    }

    /// [`Family::kept_guess`] for a datagram: any datagram from inside may
    /// be a first one; with one masquerade rule the guess costs only a hash.
    #[inline(always)]
    fn kept_guess_udp(&self, zone: u16, side: Side, p: &Parsed<N>) -> Option<(u8, u64)> {
        if side != Side::Inside || self.masquerade.len() != 1 {
            return None;
        }
        self.masquerade.first().map(|rule| self.prefetch_kept(zone, p, rule.pool))
    }

    /// A TCP, UDP or echo packet once looked up: `found` its connection
    /// and direction, `hash` its tuple's hash, `kept` as
    /// [`Family::new_connection`] takes it.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn tracked(
        &mut self,
        sh: &mut Shared,
        zone: u16,
        side: Side,
        buf: &mut [u8],
        p: &Parsed<N>,
        hash: u64,
        found: Option<(u32, usize)>,
        kept: Option<(u8, u64)>,
        tick: u32,
    ) -> Verdict {
        if let Some((at, dir)) = found {
            if let Some(verdict) = self.established(sh, zone, side, buf, p, at, dir, tick) {
                return verdict;
            }
        }
        let verdict = self.new_connection(sh, zone, side, buf, p, hash, kept, tick);
        if verdict == Verdict::Pass {
            self.record_fragment(zone, side, p, p.tuple.src, p.tuple.dst, tick);
        }
        verdict
    }

    /// Starts loading what translating the TCP or UDP packet in `buf` will
    /// look at first (see [`Nat::prefetch`]): the index slot of its tuple;
    /// for a SYN or a datagram from inside that a masquerade rule covers,
    /// also that of the reply tuple that keeps its port, and for UDP its
    /// endpoint's mapping.
    /// Returns the hash of the packet's tuple, for [`Table::prefetch_entry`]
    /// once the slot has had time to arrive.
    #[inline]
    fn prefetch(&self, zone: u16, side: Side, buf: &[u8]) -> Option<u64> {
        let (proto, tuple, flags) = packet::peek::<N>(buf)?;
        let hash = self.table.hash(zone, proto, &tuple);
        self.table.prefetch_key(hash);
        let first = proto == UDP || flags & state::TH_HANDSHAKE == state::TH_SYN_ONLY;
        if side == Side::Inside && first {
            self.prefetch_kept_first(zone, proto, &tuple);
        }
        Some(hash)
    }

    /// The part of [`Family::prefetch`] for a packet that may start a
    /// masqueraded connection: the index slot of the reply tuple that keeps
    /// its port, and for UDP the inside endpoint's mapping.
    #[inline]
    fn prefetch_kept_first(&self, zone: u16, proto: u8, tuple: &Tuple<N>) {
        let Some(pool) = self.masquerade_pool(&tuple.src, &tuple.dst) else { return };
        let Some(outside) = self.pools.get(usize::from(pool)) else { return };
        let kept = Tuple { src: tuple.dst, dst: outside.addr, sport: tuple.dport, dport: tuple.sport };
        self.table.prefetch_key(self.table.hash(zone, proto, &kept));
        if proto == UDP {
            outside.prefetch(&Endpoint::new(zone, &tuple.src, tuple.sport));
        }
    }

    /// A packet that is not TCP, UDP or an ICMP echo.
    #[inline(never)]
    fn translate_other(
        &mut self,
        sh: &mut Shared,
        zone: u16,
        side: Side,
        buf: &mut [u8],
        p: &Parsed<N>,
        tick: u32,
    ) -> Verdict {
        let verdict = match p.kind {
            Kind::IcmpError => self.icmp_error(zone, side, buf, p, tick),
            Kind::Other if matches!(p.frag, Frag::Later { .. }) => {
                return self.later_fragment(sh, zone, side, buf, p, tick);
            }
            _ => self.untracked(side, p),
        };
        match verdict {
            Verdict::Pass => self.record_fragment(zone, side, p, p.tuple.src, p.tuple.dst, tick),
            Verdict::Forward if p.kind == Kind::IcmpError => sh.stats.icmp_errors += 1,
            _ => {}
        }
        verdict
    }

    /// Starts loading the index slot of the reply tuple a masqueraded
    /// connection on `pool` would have if it kept its source port (see
    /// [`Family::translate`]); returns the pool and that tuple's hash.
    #[inline]
    fn prefetch_kept(&self, zone: u16, p: &Parsed<N>, pool: u8) -> (u8, u64) {
        let t = &p.tuple;
        let addr = self.pools.get(usize::from(pool)).map_or([0; N], |pool| pool.addr);
        let kept = Tuple { src: t.dst, dst: addr, sport: t.dport, dport: t.sport };
        let hash = self.table.hash(zone, p.proto, &kept);
        self.table.prefetch(hash);
        (pool, hash)
    }

    /// Remembers a first fragment's translation for its later fragments.
    #[inline(always)]
    fn record_fragment(&mut self, zone: u16, side: Side, p: &Parsed<N>, src: [u8; N], dst: [u8; N], tick: u32) {
        if matches!(p.frag, Frag::First { .. }) {
            self.record_first_fragment(zone, side, p, src, dst, tick);
        }
    }

    #[cold]
    #[inline(never)]
    fn record_first_fragment(&mut self, zone: u16, side: Side, p: &Parsed<N>, src: [u8; N], dst: [u8; N], tick: u32) {
        if let Frag::First { ident } = p.frag {
            let key = FragKey {
                src: p.tuple.src,
                dst: p.tuple.dst,
                ident,
                zone,
                proto: p.proto,
                outside: side == Side::Outside,
            };
            self.frags.record(self.table.hasher(), key, src, dst, tick);
        }
    }

    /// A packet of connection `at` in direction `dir`; `None` if the entry
    /// had outlived its deadline (it is removed, and the packet is new).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn established(
        &mut self,
        sh: &mut Shared,
        zone: u16,
        side: Side,
        buf: &mut [u8],
        p: &Parsed<N>,
        at: u32,
        dir: usize,
        tick: u32,
    ) -> Option<Verdict> {
        let entry = self.table.get_mut(at)?;
        if entry.deadline <= tick {
            self.expired(sh, at);
            return None;
        }
        let outside = entry.has(if dir == ORIG { flag::ORIG_OUTSIDE } else { flag::REPLY_OUTSIDE });
        if outside != (side == Side::Outside) {
            return Some(Verdict::Drop(DropReason::WrongSide));
        }
        let new = entry.tuples[1 - dir].inverse();
        let deltas = entry.deltas[dir];
        // The common case first: data of an established, assured TCP
        // connection, or UDP that is already assured; only the deadline
        // moves.
        let steady = match p.kind {
            Kind::Tcp { flags } => {
                flags & state::TH_CONTROL == 0 && entry.state == state::ESTABLISHED && entry.has(flag::ASSURED)
            }
            Kind::Udp => entry.state == state::UDP_ASSURED,
            _ => false,
        };
        if steady {
            entry.deadline = tick.saturating_add(1).saturating_add(sh.ticks.of(entry.state));
        } else {
            self.advance(sh, p.kind, at, dir, tick);
        }
        packet::rewrite_tracked(buf, p, &new, deltas);
        self.record_fragment(zone, side, p, new.src, new.dst, tick);
        Some(Verdict::Forward)
    }

    /// Removes entry `at`, found past its deadline.
    #[cold]
    #[inline(never)]
    fn expired(&mut self, sh: &mut Shared, at: u32) {
        self.remove(at);
        sh.stats.expired += 1;
    }

    /// Moves the state of entry `at` on for a packet of `kind` in direction
    /// `dir`, and relinks it in the wheels if that changed its deadline's
    /// meaning.
    #[inline(never)]
    fn advance(&mut self, sh: &Shared, kind: Kind, at: u32, dir: usize, tick: u32) {
        if let Some(entry) = self.table.get_mut(at) {
            if advance(entry, kind, dir, &sh.ticks, tick) {
                self.table.relink(at);
            }
        }
    }

    /// A packet no connection matches (`orig_hash`: its tuple's hash;
    /// `kept`: a pool and the hash of the reply tuple a masqueraded
    /// connection on it keeps the source port with, if computed).
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn new_connection(
        &mut self,
        sh: &mut Shared,
        zone: u16,
        side: Side,
        buf: &mut [u8],
        p: &Parsed<N>,
        orig_hash: u64,
        kept: Option<(u8, u64)>,
        tick: u32,
    ) -> Verdict {
        let t = p.tuple;
        if is_group(&t.dst) {
            return Verdict::Pass;
        }
        let published = match p.kind {
            Kind::Tcp { .. } | Kind::Udp => self.published(p.proto, &t.dst, t.dport).copied(),
            _ => None,
        };
        let plan = match (side, published) {
            (Side::Inside, Some(rule)) => Plan::Hairpin {
                to: rule.internal,
                port: rule.rule.internal_port(t.dport),
                pool: self.masquerade_pool(&t.src, &t.dst).unwrap_or(rule.pool),
            },
            (Side::Inside, None) if self.is_outside_addr(&t.dst) => return Verdict::Pass,
            (Side::Inside, None) => match self.masquerade_pool(&t.src, &t.dst) {
                Some(pool) => Plan::Snat { pool },
                None => return Verdict::Pass,
            },
            // Our own outside address as the source is spoofed (a martian).
            (Side::Outside, Some(_)) if self.is_outside_addr(&t.src) => {
                return Verdict::Drop(DropReason::WrongSide);
            }
            (Side::Outside, Some(rule)) => Plan::Dnat { to: rule.internal, port: rule.rule.internal_port(t.dport) },
            (Side::Outside, None) => return Verdict::Pass,
        };
        // The reply tuple if the source port can be kept: start loading
        // where its uniqueness check and the insert will look (`translate`
        // did for a masqueraded connection).
        let (peer, snat) = match plan {
            Plan::Snat { pool } => ((t.dst, t.dport), Some(pool)),
            Plan::Hairpin { to, port, pool } => ((to, port), Some(pool)),
            Plan::Dnat { to, port } => ((to, port), None),
        };
        let kept = match (plan, kept) {
            (Plan::Snat { pool }, Some((guess, hash))) if guess == pool => Some(hash),
            _ => None,
        };
        // For UDP the inside endpoint's mapping decides: the uniqueness
        // check needs no table.
        let endpoint = (p.proto == UDP && snat.is_some()).then(|| Endpoint::new(zone, &t.src, t.sport));
        if let Some(outside) = snat.and_then(|pool| self.pools.get(usize::from(pool))) {
            if let Some(endpoint) = &endpoint {
                outside.prefetch(endpoint);
                self.table.prefetch_free();
            } else if kept.is_none() {
                let tuple = Tuple { src: peer.0, dst: outside.addr, sport: peer.1, dport: t.sport };
                self.table.prefetch(self.table.hash(zone, p.proto, &tuple));
            }
        }
        let state = match p.kind {
            Kind::Tcp { flags } => match TcpEvent::of(flags) {
                TcpEvent::Syn => state::SYN_SENT,
                TcpEvent::Ack if sh.tcp_loose => state::ESTABLISHED,
                _ => return Verdict::Drop(DropReason::Untrackable),
            },
            Kind::Udp => state::UDP_UNREPLIED,
            Kind::Echo { request: true } => state::ICMP,
            _ => return Verdict::Drop(DropReason::Untrackable),
        };
        if self.table.is_full() {
            self.expire(&mut sh.stats, tick);
        }
        if self.table.is_full() {
            match self.table.evict() {
                Some(victim) => {
                    self.release(&victim);
                    sh.stats.evicted += 1;
                }
                None => return Verdict::Drop(DropReason::TableFull),
            }
        }
        let (reply, reply_hash, mapping) = match plan {
            Plan::Snat { pool } | Plan::Hairpin { pool, .. } => {
                match self.allocate(sh, zone, p.proto, pool, endpoint.as_ref(), (t.src, t.sport), peer, kept) {
                    Ok((reply, hash, mapping)) => (reply, hash, mapping.then_some(pool)),
                    Err(reason) => return Verdict::Drop(reason),
                }
            }
            Plan::Dnat { to, port } => {
                let reply = Tuple { src: to, dst: t.src, sport: port, dport: t.sport };
                let hash = self.table.hash(zone, p.proto, &reply);
                if self.table.find(hash, zone, p.proto, &reply).is_some() {
                    return Verdict::Drop(DropReason::TupleTaken);
                }
                (reply, hash, None)
            }
        };
        let mut entry = Entry::new(zone, p.proto, t, reply);
        entry.state = state;
        entry.deadline = tick.saturating_add(1).saturating_add(sh.ticks.of(state));
        entry.flags |= flag::EVICTABLE;
        match plan {
            Plan::Snat { .. } => entry.flags |= flag::REPLY_OUTSIDE,
            Plan::Dnat { .. } => entry.flags |= flag::ORIG_OUTSIDE,
            Plan::Hairpin { .. } => {}
        }
        if let Some(pool) = mapping {
            entry.flags |= flag::MAPPING;
            entry.pool = pool;
        }
        let new = reply.inverse();
        entry.deltas = Deltas::of_connection(&t, &reply);
        // Rewrite first, so the load of the reply key's slot (not yet looked
        // at for UDP) overlaps with it.
        self.table.prefetch(reply_hash);
        packet::rewrite_tracked(buf, p, &new, entry.deltas[ORIG]);
        if self.table.insert(entry, [orig_hash, reply_hash]).is_none() {
            // Cannot happen (room was made above); undo all the same.
            packet::rewrite(buf, &Parsed { tuple: new, ..*p }, &p.tuple);
            self.release(&entry);
            return Verdict::Drop(DropReason::TableFull);
        }
        match plan {
            Plan::Snat { .. } => sh.stats.snat_created += 1,
            Plan::Dnat { .. } => sh.stats.dnat_created += 1,
            Plan::Hairpin { .. } => sh.stats.hairpin_created += 1,
        }
        self.record_fragment(zone, side, p, new.src, new.dst, tick);
        Verdict::Forward
    }

    /// Chooses the outside port for inside endpoint `inside` leaving from
    /// pool `pool` towards `peer`, such that the reply tuple (`peer` → the
    /// pool's address and the port) is unused; for UDP, the endpoint's
    /// mapping, found or made (`endpoint`: the inside endpoint as the
    /// mappings know it, given for UDP). `kept`: the hash of the reply tuple that keeps the
    /// inside port, if known. Returns the reply tuple, its hash, and whether
    /// it holds a mapping reference.
    #[allow(clippy::too_many_arguments)]
    fn allocate(
        &mut self,
        sh: &Shared,
        zone: u16,
        proto: u8,
        pool: u8,
        endpoint: Option<&Endpoint<N>>,
        inside: ([u8; N], u16),
        peer: ([u8; N], u16),
        kept: Option<u64>,
    ) -> Result<(Tuple<N>, u64, bool), DropReason> {
        let Some(ports) = self.pools.get(usize::from(pool)) else { return Err(DropReason::NoPort) };
        let hasher = *self.table.hasher();
        let reply = |port: u16| Tuple { src: peer.0, dst: ports.addr, sport: peer.1, dport: port };
        let kept = kept.unwrap_or_else(|| hasher.tuple(zone, proto, &reply(inside.1)));
        let hash_of = |port: u16| if port == inside.1 { kept } else { hasher.tuple(zone, proto, &reply(port)) };
        let table = &self.table;
        let unused = |port: u16| table.find(hash_of(port), zone, proto, &reply(port)).is_none();
        let mapped = endpoint.filter(|_| proto == UDP);
        let udp = mapped.is_some();
        // For UDP the port's owner is the whole story: every UDP reply tuple
        // towards an outside address holds the mapping of its port (a DNAT
        // client is never an outside address), so a port held by this
        // endpoint or by none is unused, with no lookup in the table.
        if let Some(endpoint) = mapped {
            if let Some(held) = ports.mapping(endpoint) {
                let (tuple, hash) = (reply(held), hash_of(held));
                if let Some(ports) = self.pools.get_mut(usize::from(pool)) {
                    ports.acquire(held);
                }
                return Ok((tuple, hash, true));
            }
        }
        let fits = |port: u16| match proto {
            UDP => ports.udp_free(port),
            TCP => port != 0 && !ports.is_reserved(false, port) && unused(port),
            _ => unused(port),
        };
        let (lo, hi) = if proto == TCP || proto == UDP { sh.port_range } else { (0, u16::MAX) };
        let size = u32::from(hi) - u32::from(lo) + 1;
        let mut chosen = fits(inside.1).then_some(inside.1);
        'search: for run in 0..4u64 {
            if chosen.is_some() {
                break;
            }
            let hash = hasher.endpoint(zone, proto, &inside.0, inside.1, run);
            let offset = ((hash >> 32) % u64::from(size)) as u32;
            for i in 0..size.min(32) {
                let port = (u32::from(lo) + (offset + i) % size) as u16;
                if fits(port) {
                    chosen = Some(port);
                    break 'search;
                }
            }
        }
        let port = chosen.ok_or(DropReason::NoPort)?;
        let (tuple, hash) = (reply(port), hash_of(port));
        if let Some(endpoint) = mapped {
            if let Some(ports) = self.pools.get_mut(usize::from(pool)) {
                ports.claim(endpoint, port);
            }
        }
        Ok((tuple, hash, udp))
    }

    /// Gives back what a removed entry held.
    fn release(&mut self, entry: &Entry<N>) {
        release(&mut self.pools, entry);
    }

    fn remove(&mut self, at: u32) {
        if let Some(entry) = self.table.remove(at) {
            self.release(&entry);
        }
    }

    fn expire(&mut self, stats: &mut Stats, tick: u32) -> usize {
        let pools = &mut self.pools;
        let removed = self.table.expire(tick, |entry| release(pools, entry));
        stats.expired += removed as u64;
        removed
    }

    /// A packet that cannot be tracked and matches no connection.
    fn untracked(&self, side: Side, p: &Parsed<N>) -> Verdict {
        let covered = side == Side::Inside
            && !matches!(p.kind, Kind::IcmpOther { link_local: true })
            && !is_group(&p.tuple.dst)
            && !self.is_outside_addr(&p.tuple.dst)
            && self.masquerade_pool(&p.tuple.src, &p.tuple.dst).is_some();
        if covered {
            Verdict::Drop(DropReason::Untrackable)
        } else {
            Verdict::Pass
        }
    }

    /// An ICMP error: translated with its quote if it is about a tracked
    /// connection, passed otherwise.
    fn icmp_error(&mut self, zone: u16, side: Side, buf: &mut [u8], p: &Parsed<N>, tick: u32) -> Verdict {
        let q = match packet::parse_quoted(buf, p) {
            Ok(q) => q,
            Err(reason) => return Verdict::Drop(reason),
        };
        // The quote is a packet that went the other way, translated: its
        // inverse is this direction's tuple.
        let key = q.tuple.inverse();
        let hash = self.table.hash(zone, q.proto, &key);
        let Some((at, dir)) = self.table.find(hash, zone, q.proto, &key) else { return self.untracked(side, p) };
        let Some(entry) = self.table.get(at) else { return Verdict::Pass };
        if entry.deadline <= tick {
            return self.untracked(side, p);
        }
        let outside = entry.has(if dir == ORIG { flag::ORIG_OUTSIDE } else { flag::REPLY_OUTSIDE });
        if outside != (side == Side::Outside) {
            return Verdict::Drop(DropReason::WrongSide);
        }
        let (this, other) = (entry.tuples[dir], entry.tuples[1 - dir]);
        // The error goes back to the original sender; it comes from the
        // peer itself (which then appears as the sender knows it) or from a
        // router on the way (left as it is).
        let outer = Tuple {
            src: if p.tuple.src == this.src { other.dst } else { p.tuple.src },
            dst: other.src,
            sport: 0,
            dport: 0,
        };
        packet::rewrite_error(buf, p, &q, &outer, &other);
        self.record_fragment(zone, side, p, outer.src, outer.dst, tick);
        Verdict::Forward
    }

    /// A fragment after the first: the first one's translation, if known.
    fn later_fragment(
        &mut self,
        sh: &mut Shared,
        zone: u16,
        side: Side,
        buf: &mut [u8],
        p: &Parsed<N>,
        tick: u32,
    ) -> Verdict {
        let Frag::Later { ident } = p.frag else { return Verdict::Pass };
        let key =
            FragKey { src: p.tuple.src, dst: p.tuple.dst, ident, zone, proto: p.proto, outside: side == Side::Outside };
        match self.frags.lookup(self.table.hasher(), &key, tick) {
            Some((src, dst)) if src == p.tuple.src && dst == p.tuple.dst => Verdict::Pass,
            Some((src, dst)) => {
                packet::rewrite(buf, p, &Tuple { src, dst, ..p.tuple });
                sh.stats.fragments += 1;
                Verdict::Forward
            }
            None => {
                // Unknown: drop it if it could belong to a translated
                // datagram, pass it otherwise.
                let could = match side {
                    Side::Inside => {
                        self.is_outside_addr(&p.tuple.dst) || self.masquerade_pool(&p.tuple.src, &p.tuple.dst).is_some()
                    }
                    Side::Outside => self.is_outside_addr(&p.tuple.dst),
                };
                if could {
                    Verdict::Drop(DropReason::FragmentUnknown)
                } else {
                    Verdict::Pass
                }
            }
        }
    }

    fn connections(&self, last_tick: u32) -> impl Iterator<Item = Connection> + '_ {
        self.table.iter().map(move |(_, e)| {
            let ends =
                |t: &Tuple<N>| (SocketAddr::new(to_ip(&t.src), t.sport), SocketAddr::new(to_ip(&t.dst), t.dport));
            Connection {
                zone: e.zone,
                protocol: IpProtocol::from(e.proto),
                original: ends(&e.tuples[ORIG]),
                reply: ends(&e.tuples[REPLY]),
                state: ConnState::from_byte(e.state),
                assured: e.has(flag::ASSURED),
                expires_in: e.deadline.saturating_sub(last_tick),
            }
        })
    }
}

/// What the lean path reads of a packet [`packet::parse_lean`] accepted:
/// its key as [`packet::lean_key`] gives it, and its protocol (TCP or UDP).
#[derive(Debug, Clone, Copy)]
struct LeanKey {
    addrs: u64,
    ports: u32,
    proto: u8,
}

impl LeanKey {
    #[inline(always)]
    fn is_udp(&self) -> bool {
        self.proto == packet::UDP
    }

    /// Whether `entry` has this key (in `zone`) in direction `dir`.
    #[inline(always)]
    fn is_in(&self, entry: &Entry<4>, dir: usize, zone: u16) -> bool {
        let t = &entry.tuples[dir];
        (t.addr_word() == self.addrs)
            & (t.port_word_low() == self.ports.rotate_left(16))
            & (entry.zone == zone)
            & (entry.proto == self.proto)
    }

    /// [`LeanKey::is_in`] for a key of protocol UDP (`UDP`) or TCP.
    #[inline(always)]
    fn is_in_as<const UDP: bool>(&self, entry: &Entry<4>, dir: usize, zone: u16) -> bool {
        LeanKey { proto: if UDP { packet::UDP } else { TCP }, ..*self }.is_in(entry, dir, zone)
    }
}

/// What the IPv6 lean path reads of a packet [`packet::parse_lean6`]
/// accepted: its addresses as [`Tuple::addr_words`] gives them, its ports
/// read big-endian, and its protocol (TCP or UDP).
#[derive(Debug, Clone, Copy)]
struct LeanKey6 {
    addrs: [u64; 4],
    ports: u32,
    proto: u8,
}

impl LeanKey6 {
    /// Whether `entry` has this key (in `zone`) in direction `dir`.
    #[inline(always)]
    fn is_in(&self, entry: &Entry<16>, dir: usize, zone: u16) -> bool {
        let t = &entry.tuples[dir];
        let [s0, s1, d0, d1] = t.addr_words();
        let a = &self.addrs;
        ((s0 ^ a[0]) | (s1 ^ a[1]) | (d0 ^ a[2]) | (d1 ^ a[3]) == 0)
            & (t.port_word_low() == self.ports.rotate_left(16))
            & (entry.zone == zone)
            & (entry.proto == self.proto)
    }
}

/// Whether `entry` is a steady connection for a packet from `side` in
/// direction `dir` at `tick`, one the lean paths rewrite with its stored
/// deltas: ASSURED set, ORIG_OUTSIDE (or REPLY_OUTSIDE for the reply
/// direction) as the side says, established TCP or (`udp`) assured UDP,
/// within its deadline.
#[inline(always)]
fn is_steady<const N: usize>(entry: &Entry<N>, udp: bool, side: Side, dir: usize, tick: u32) -> bool {
    // State and flags as one word: the state low, the flags high.
    let outside = u16::from(flag::ORIG_OUTSIDE) << 8 << dir;
    let mask = 0xff | u16::from(flag::ASSURED) << 8 | outside;
    let state = if udp { state::UDP_ASSURED } else { state::ESTABLISHED };
    let want = u16::from(state) | u16::from(flag::ASSURED) << 8 | if side == Side::Outside { outside } else { 0 };
    let held = u16::from_le_bytes([entry.state, entry.flags]);
    (held & mask == want) & (entry.deadline > tick)
}

impl Family<16> {
    /// The lean path of [`Nat::translate`] for the common IPv6 packet
    /// ([`packet::parse_lean6`]: no extension header, TCP without SYN, FIN
    /// or RST, or UDP): a packet of a steady connection ([`is_steady`])
    /// whose key is in its home slot of the index or the next
    /// ([`Table::find_near`]) is rewritten here with the entry's stored
    /// checksum deltas and its deadline set to the one precomputed for the
    /// tick: true. Anything else is left as it was: false, and the general
    /// path reads it from the start.
    #[inline(always)]
    fn steady(&mut self, sh: &mut Shared, zone: u16, side: Side, buf: &mut [u8], tick: u32) -> bool {
        let Some((proto, addrs, ports)) = packet::parse_lean6(buf) else { return false };
        let key = LeanKey6 { addrs, ports, proto };
        let hash = self.table.hasher().v6(zone, proto, addrs, ports);
        // The tag alone here, the key below with the state: one branch.
        let Some(Some((at, dir))) = self.table.find_near(hash, |_, _| true) else { return false };
        let udp = proto == packet::UDP;
        let Some(entry) = self.table.get_mut(at) else { return false };
        if !(key.is_in(entry, dir, zone) & is_steady(entry, udp, side, dir, tick)) {
            return false;
        }
        entry.deadline = sh.steady[usize::from(udp)];
        packet::rewrite_lean6(buf, udp, &entry.tuples[1 - dir], entry.deltas[dir]);
        #[cfg(test)]
        {
            sh.lean += 1;
        }
        true
    }
}

impl Family<4> {
    /// The lean path of [`Nat::translate`] for the common IPv4 packet
    /// ([`packet::parse_lean`]: IHL 5, whole, TCP or UDP): a packet of a
    /// steady connection (established and assured TCP without SYN, FIN or
    /// RST; assured UDP) whose key is in its home slot of the index or the
    /// next ([`Table::find_near`]), that comes from its side and within its
    /// deadline, is rewritten here with the entry's stored checksum deltas
    /// and its deadline set to the one precomputed for the tick: true. Any
    /// other packet is left as it was, `sh.handover` saying how far this
    /// went: false, and [`Family::hand_over`] goes on from there (a key
    /// further from home too: the whole search, then the same rewrite).
    ///
    /// It calls nothing and loops over nothing, so that the common packet
    /// pays for no call and few registers.
    #[inline(always)]
    fn steady(&mut self, sh: &mut Shared, zone: u16, side: Side, buf: &mut [u8], tick: u32) -> bool {
        match Family::lean_read(sh, buf) {
            // One copy per protocol: its constants folded in.
            Some(key) if key.is_udp() => self.steady_key::<true>(sh, zone, side, buf, key, tick),
            Some(key) => self.steady_key::<false>(sh, zone, side, buf, key, tick),
            None => false,
        }
    }

    /// [`Family::steady`] for a packet of protocol UDP (`UDP`) or TCP.
    #[inline(always)]
    fn steady_key<const UDP: bool>(
        &mut self,
        sh: &mut Shared,
        zone: u16,
        side: Side,
        buf: &mut [u8],
        key: LeanKey,
        tick: u32,
    ) -> bool {
        let proto = if UDP { packet::UDP } else { TCP };
        let hash = self.table.hasher().v4(zone, proto, key.addrs, key.ports);
        sh.hash = hash;
        let Some(found) = self.table.find_near(hash, |entry, dir| key.is_in_as::<UDP>(entry, dir, zone)) else {
            sh.handover = Handover::Further;
            return false;
        };
        self.steady_at::<UDP>(sh, side, buf, found, tick)
    }

    /// The lean read of the packet in `buf`, or `None` with `sh.handover`
    /// saying why: the lean read does not accept it, or it is TCP with SYN,
    /// FIN or RST (the state machine decides).
    #[inline(always)]
    fn lean_read(sh: &mut Shared, buf: &[u8]) -> Option<LeanKey> {
        let Some(p) = buf.first_chunk::<LEAN_LEN>().and_then(|h| packet::parse_lean(h, buf.len())) else {
            sh.handover = Handover::Unread;
            return None;
        };
        match p.kind {
            Kind::Tcp { flags } if flags & state::TH_CONTROL == 0 => {}
            Kind::Udp => {}
            _ => {
                sh.handover = Handover::Read;
                return None;
            }
        }
        let (addrs, ports) = buf.first_chunk::<LEAN_LEN>().map_or((0, 0), packet::lean_key);
        Some(LeanKey { addrs, ports, proto: p.proto })
    }

    /// The rest of [`Family::steady`] once the connection and direction
    /// of the packet (UDP if `UDP`, else TCP) are `found`.
    #[inline(always)]
    fn steady_at<const UDP: bool>(
        &mut self,
        sh: &mut Shared,
        side: Side,
        buf: &mut [u8],
        found: Option<(u32, usize)>,
        tick: u32,
    ) -> bool {
        if let (Some((at, dir)), Some(h)) = (found, buf.first_chunk_mut::<LEAN_LEN>()) {
            if let Some(entry) = self.table.get_mut(at) {
                if is_steady(entry, UDP, side, dir, tick) {
                    entry.deadline = sh.steady[usize::from(UDP)];
                    packet::rewrite_lean(h, UDP, &entry.tuples[1 - dir].inverse(), entry.deltas[dir]);
                    #[cfg(test)]
                    {
                        sh.lean += 1;
                    }
                    return true;
                }
            }
        }
        sh.handover = Handover::Looked { found };
        false
    }

    /// [`Family::steady_at`] for a key found beyond the two slots from its
    /// home: true if the packet was rewritten; else `sh.handover` is spent
    /// (back to [`Handover::Fresh`]) and the general path goes on.
    #[inline(always)]
    fn steady_far<const UDP: bool>(
        &mut self,
        sh: &mut Shared,
        side: Side,
        buf: &mut [u8],
        found: Option<(u32, usize)>,
        tick: u32,
    ) -> bool {
        if self.steady_at::<UDP>(sh, side, buf, found, tick) {
            #[cfg(test)]
            {
                sh.lean_far += 1;
            }
            return true;
        }
        sh.handover = Handover::Fresh;
        false
    }

    /// Hands a packet that `handover` says may start a connection to
    /// [`Family::fresh`]: a SYN from inside with no ACK, FIN or RST (read,
    /// not looked up), or a datagram from inside whose look-up missed or
    /// went beyond its home slot. The verdict if it took it; else what the
    /// general path goes on from: `handover` as given, or
    /// [`Handover::Declined`] with what the look-up found.
    #[inline(always)]
    fn new_lean(
        &mut self,
        sh: &mut Shared,
        zone: u16,
        side: Side,
        buf: &mut [u8],
        handover: Handover,
    ) -> Result<Verdict, Handover> {
        // The lean read accepted the packet, so it has LEAN_LEN bytes: said
        // again here, the reads of `Family::fresh` need no bounds checks.
        if side != Side::Inside || buf.len() < LEAN_LEN {
            return Err(handover);
        }
        let fresh = match handover {
            Handover::Read if buf.get(33).is_some_and(|f| f & state::TH_HANDSHAKE == state::TH_SYN_ONLY) => {
                self.fresh::<false>(sh, zone, buf, None)
            }
            Handover::Looked { found: None } if buf.get(9) == Some(&UDP) => {
                self.fresh::<true>(sh, zone, buf, Some((sh.hash, true)))
            }
            Handover::Further if buf.get(9) == Some(&UDP) => self.fresh::<true>(sh, zone, buf, Some((sh.hash, false))),
            _ => return Err(handover),
        };
        fresh.map_err(|(hash, found)| {
            sh.hash = hash;
            Handover::Declined { found }
        })
    }

    /// The lean path for the common new connection: an IPv4 packet the
    /// lean read accepted (IHL 5, whole), a TCP SYN (`UDP` false) or a UDP
    /// datagram from inside, to an address that is neither one of ours
    /// (so no published port, no hairpin) nor a group, that a masquerade
    /// rule covers and that keeps its source port, into a table with room.
    /// Such a packet is rewritten here with what [`Family::new_connection`]
    /// would give it — the same entry, index slots, mapping and counters —
    /// but in one pass: the packet read once, each hash computed once,
    /// every miss started before anything waits on one, the empty slots
    /// the searches ended on filled by the inserts, the checksum deltas
    /// those of an address change alone.
    ///
    /// `looked`: for a datagram, its hash and whether its look-up has
    /// missed (else it was not near its home slot: the search goes on
    /// here, first, so that an established datagram costs little). A SYN
    /// is hashed and looked up here. Anything else changes nothing and
    /// returns `Err` with the packet's hash and what its look-up found,
    /// for [`Family::tracked`] to go on with.
    #[inline(always)]
    fn fresh<const UDP: bool>(
        &mut self,
        sh: &mut Shared,
        zone: u16,
        buf: &mut [u8],
        looked: Option<(u64, bool)>,
    ) -> Result<Verdict, (u64, Option<(u32, usize)>)> {
        let proto = if UDP { packet::UDP } else { TCP };
        let (addrs, ports) = buf.first_chunk::<LEAN_LEN>().map_or((0, 0), packet::lean_key);
        let key = LeanKey { addrs, ports, proto };
        let hash = match looked {
            Some((hash, _)) => hash,
            None => self.table.hasher().v4(zone, proto, addrs, ports),
        };
        let searched = match looked {
            // Its run is in the cache: the lean read's look-up began it.
            Some((_, false)) => match self.table.probe(hash, |entry, dir| key.is_in_as::<UDP>(entry, dir, zone)) {
                Ok(found) => return Err((hash, Some(found))),
                Err(slot) => Some(slot),
            },
            Some((_, true)) => None,
            None => {
                self.table.prefetch_key(hash);
                None
            }
        };
        let src = (addrs as u32).to_le_bytes();
        let dst = ((addrs >> 32) as u32).to_le_bytes();
        let sport = (ports >> 16) as u16;
        // Where the reply comes back if the port is kept and (UDP) the
        // record of that port, whose owner decides: start loading the
        // reply's index slot, the record and the free entry at once, so
        // that those misses overlap with each other and (TCP) with the
        // look-up's.
        let pool = self.masquerade_pool(&src, &dst);
        let outside = match pool {
            Some(pool) => self.pools.get(usize::from(pool)),
            None => None,
        };
        let (Some(pool), Some(outside)) = (pool, outside) else {
            let found = match looked {
                Some(_) => None,
                None => self.table.find_by(hash, |entry, dir| key.is_in_as::<UDP>(entry, dir, zone)),
            };
            return Err((hash, found));
        };
        let kept_addrs = addrs >> 32 | u64::from(u32::from_le_bytes(outside.addr)) << 32;
        let kept = LeanKey { addrs: kept_addrs, ports: ports.rotate_left(16), proto };
        let kept_hash = self.table.hasher().v4(zone, proto, kept.addrs, kept.ports);
        self.table.prefetch(kept_hash);
        let endpoint = if UDP { Some(Endpoint::new(zone, &src, sport)) } else { None };
        if let Some(endpoint) = &endpoint {
            outside.prefetch(endpoint);
        }
        // Where the look-up ended: the packet's key goes there. (A
        // datagram's that missed near its home slot: found again from the
        // slots the lean read loaded.)
        let orig_slot = match (searched, looked) {
            (Some(slot), _) => slot,
            (None, Some(_)) => self.table.first_empty(hash),
            (None, None) => match self.table.probe(hash, |entry, dir| key.is_in_as::<UDP>(entry, dir, zone)) {
                Ok(found) => return Err((hash, Some(found))),
                Err(slot) => slot,
            },
        };
        if is_group(&dst) || self.is_outside_addr(&dst) || self.table.is_full() {
            return Err((hash, None));
        }
        // The port kept: for UDP, the endpoint has no mapping and the port
        // is free (its owner decides; no table look-up); for TCP, the port
        // is not published and the reply tuple is unused.
        let reply_slot = match &endpoint {
            Some(endpoint) => match outside.find_mapping(endpoint) {
                Err(_) if outside.udp_free(sport) => self.table.first_empty(kept_hash),
                _ => return Err((hash, None)),
            },
            None if sport == 0 || outside.is_reserved(false, sport) => return Err((hash, None)),
            None => match self.table.probe(kept_hash, |entry, dir| kept.is_in_as::<UDP>(entry, dir, zone)) {
                Ok(_) => return Err((hash, None)),
                Err(slot) => slot,
            },
        };
        let out = outside.addr;
        let orig = Tuple { src, dst, sport, dport: ports as u16 };
        let reply = Tuple { src: dst, dst: out, sport: orig.dport, dport: sport };
        let mut entry = Entry::new(zone, proto, orig, reply);
        entry.state = if UDP { state::UDP_UNREPLIED } else { state::SYN_SENT };
        entry.deadline = sh.fresh[usize::from(UDP)];
        entry.flags |= flag::EVICTABLE | flag::REPLY_OUTSIDE;
        if UDP {
            entry.flags |= flag::MAPPING;
            entry.pool = pool;
        }
        entry.deltas = Deltas::of_source_change(&src, &out);
        if let Some(h) = buf.first_chunk_mut::<LEAN_LEN>() {
            packet::rewrite_lean_source(h, UDP, &out, entry.deltas[ORIG]);
        }
        if let Some(endpoint) = &endpoint {
            if let Some(outside) = self.pools.get_mut(usize::from(pool)) {
                // Free, and the endpoint's own port (no index slot): checked
                // above.
                outside.claim_at(endpoint, sport, None);
            }
        }
        // Room was checked above: the insert cannot fail.
        self.table.insert_at(entry, [(hash, orig_slot), (kept_hash, reply_slot)]);
        sh.stats.snat_created += 1;
        #[cfg(test)]
        {
            sh.lean_new += 1;
        }
        Ok(Verdict::Forward)
    }

    /// The rest of the work for a packet [`Family::steady`] left as
    /// `handover` says: `None` if it did not read it. The read is done
    /// again from the unchanged buffer, so that the lean path keeps nothing
    /// of it in memory. `None` also for a packet the lean read does not
    /// accept, before anything changed: the general path
    /// ([`Family::translate`]) reads it and decides (a bad header checksum,
    /// options, fragments, other protocols, IPv6).
    #[inline]
    fn hand_over(
        &mut self,
        sh: &mut Shared,
        zone: u16,
        side: Side,
        buf: &mut [u8],
        handover: Handover,
        tick: u32,
    ) -> Option<Verdict> {
        let read = |buf: &[u8]| buf.first_chunk::<LEAN_LEN>().map(packet::lean_parsed);
        let (hash, found) = match handover {
            Handover::Fresh | Handover::Unread => return None,
            Handover::Read => {
                let p = read(buf)?;
                return Some(self.translate_parsed(sh, zone, side, buf, &p, tick));
            }
            // A datagram from inside found beyond its home slot by
            // `Family::fresh`: the lean path's end if it is steady.
            Handover::Declined { found: Some(found) } if buf.get(9) == Some(&UDP) => {
                if self.steady_far::<true>(sh, side, buf, Some(found), tick) {
                    return Some(Verdict::Forward);
                }
                (sh.hash, Some(found))
            }
            Handover::Looked { found } | Handover::Declined { found } => (sh.hash, found),
            // Not near its home slot: the whole search, and the lean path's
            // end if the connection is steady.
            Handover::Further => {
                // The lean read accepted the packet and hashed its key
                // (into `sh.hash`): only the key is read again.
                let h = buf.first_chunk::<LEAN_LEN>()?;
                let (addrs, ports) = packet::lean_key(h);
                let key = LeanKey { addrs, ports, proto: h[9] };
                let hash = sh.hash;
                let found = self.table.find_by(hash, |entry, dir| key.is_in(entry, dir, zone));
                let steady = if key.is_udp() {
                    self.steady_far::<true>(sh, side, buf, found, tick)
                } else {
                    self.steady_far::<false>(sh, side, buf, found, tick)
                };
                if steady {
                    return Some(Verdict::Forward);
                }
                (hash, found)
            }
        };
        let p = read(buf)?;
        Some(self.tracked(sh, zone, side, buf, &p, hash, found, None, tick))
    }
}

/// Moves a connection's protocol state on for a packet of `kind` in
/// direction `dir`, and its deadline; returns whether the entry must be
/// relinked in the wheels (its state or its evictability changed).
fn advance<const N: usize>(entry: &mut Entry<N>, kind: Kind, dir: usize, ticks: &Ticks, tick: u32) -> bool {
    let (old_state, old_flags) = (entry.state, entry.flags);
    if dir == REPLY {
        entry.flags |= flag::SEEN_REPLY;
    }
    match kind {
        Kind::Tcp { flags } => {
            let next = state::tcp_next(entry.state, dir, TcpEvent::of(flags));
            if next & state::STATE_MASK == state::SYN_SENT && old_state & state::STATE_MASK != state::SYN_SENT {
                // Reopened after a close: a new connection on the same tuple.
                entry.flags &= !(flag::SEEN_REPLY | flag::ASSURED);
            }
            entry.state = next;
            if next & state::STATE_MASK == state::ESTABLISHED && entry.has(flag::SEEN_REPLY) {
                entry.flags |= flag::ASSURED;
            }
        }
        Kind::Udp if dir == REPLY => {
            entry.state = state::UDP_ASSURED;
            entry.flags |= flag::ASSURED;
        }
        _ => {}
    }
    entry.deadline = tick.saturating_add(1).saturating_add(ticks.of(entry.state));
    if state::evictable(entry.state, entry.has(flag::ASSURED)) {
        entry.flags |= flag::EVICTABLE;
    } else {
        entry.flags &= !flag::EVICTABLE;
    }
    entry.state != old_state || (entry.flags ^ old_flags) & flag::EVICTABLE != 0
}

/// Gives back the UDP mapping reference a removed entry held.
fn release<const N: usize>(pools: &mut [Pool<N>], entry: &Entry<N>) {
    if entry.has(flag::MAPPING) {
        if let Some(pool) = pools.get_mut(usize::from(entry.pool)) {
            pool.release(entry.tuples[REPLY].dport);
        }
    }
}

/// How many packets behind its index slot [`Nat::prefetch_burst`] loads a
/// packet's entry: about one memory latency of the first pass's work.
const PREFETCH_LAG: usize = 8;

/// A stateful NAT for IPv4 and IPv6. See the module documentation.
pub struct Nat {
    config: NatConfig,
    v4: Family<4>,
    v6: Family<16>,
    shared: Shared,
    /// Tick 0: the first `now` seen.
    epoch: Option<Instant>,
    /// The latest tick seen: time never runs backwards here.
    last_tick: u32,
    /// When the tick after `last_tick` starts: until then a `now` needs no
    /// arithmetic.
    next_tick_at: Option<Instant>,
}

impl fmt::Debug for Nat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nat")
            .field("masquerade", &self.config.masquerade)
            .field("dnat", &self.config.dnat)
            .field("entries_v4", &self.v4.table.len())
            .field("entries_v6", &self.v6.table.len())
            .field("stats", &self.shared.stats)
            .finish_non_exhaustive()
    }
}

impl Nat {
    /// Validates `config` ([`NatConfig::validate`]) and allocates every
    /// table.
    pub fn new(config: NatConfig) -> Result<Nat, ConfigError> {
        config.validate()?;
        let hasher = Hasher::new(config.hash_seed);
        let v4 = Family::new(&config, config.max_entries, hasher);
        let v6 = Family::new(&config, config.max_entries_v6, hasher);
        let shared = Shared {
            stats: Stats::default(),
            ticks: Ticks::new(&config.timeouts),
            steady: [0; 2],
            fresh: [0; 2],
            handover: Handover::Fresh,
            hash: 0,
            #[cfg(test)]
            lean: 0,
            #[cfg(test)]
            lean_far: 0,
            #[cfg(test)]
            lean_new: 0,
            tcp_loose: config.tcp_loose,
            port_range: config.port_range,
        };
        Ok(Nat { config, v4, v6, shared, epoch: None, last_tick: 0, next_tick_at: None })
    }

    /// The configuration, as given.
    pub fn config(&self) -> &NatConfig {
        &self.config
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// How many connections are tracked (both families).
    pub fn len(&self) -> usize {
        self.v4.table.len() + self.v6.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes allocated for tracking: both tables in full (slab, index,
    /// wheels), the port pools and the fragment tables. Divided by the
    /// number of entries of a full table, the cost of a connection.
    pub fn memory_bytes(&self) -> usize {
        self.v4.memory_bytes() + self.v6.memory_bytes()
    }

    /// Whole seconds from the first `now` seen, never going back.
    #[inline]
    fn tick(&mut self, now: Instant) -> u32 {
        if self.next_tick_at.is_some_and(|next| now < next) {
            return self.last_tick;
        }
        let epoch = *self.epoch.get_or_insert(now);
        let secs = now.saturating_duration_since(epoch).as_secs();
        self.last_tick = self.last_tick.max(u32::try_from(secs).unwrap_or(u32::MAX));
        self.next_tick_at = epoch.checked_add(Duration::from_secs(u64::from(self.last_tick) + 1));
        let (tick, ticks) = (self.last_tick, self.shared.ticks);
        let deadline = |state| tick.saturating_add(1).saturating_add(ticks.of(state));
        self.shared.steady = [deadline(state::ESTABLISHED), deadline(state::UDP_ASSURED)];
        self.shared.fresh = [deadline(state::SYN_SENT), deadline(state::UDP_UNREPLIED)];
        self.last_tick
    }

    /// Translates `packet`, an IPv4 or IPv6 packet (IP header first, link
    /// padding allowed after it) that came from side `from` in conntrack
    /// zone `zone`, in place. Transport checksums must be complete (finish
    /// offloaded partial checksums first), or else rewritten by the caller
    /// afterwards: the transport checksum is never read, only updated for
    /// the changed addresses and ports, so a partial one (a pseudo-header
    /// sum) comes out meaning nothing — `wharf nat` writes a forwarded
    /// superframe's anew from its new addresses.
    ///
    /// The common IPv4 packet of a steady connection within the current
    /// tick takes a lean path (`Family::steady`) that calls nothing; the
    /// common IPv6 one, a lean path of its own one call further
    /// (`Nat::translate_unread`); the
    /// common new connection (a SYN or a first datagram from inside,
    /// masqueraded, its port kept) another (`Family::fresh`); everything
    /// else the general one, with the same result.
    #[inline]
    pub fn translate(&mut self, zone: u16, from: Side, packet: &mut [u8], now: Instant) -> Verdict {
        if self.next_tick_at.is_some_and(|next| now < next) {
            if self.v4.steady(&mut self.shared, zone, from, packet, self.last_tick) {
                self.shared.stats.translated += 1;
                return Verdict::Forward;
            }
            if let Handover::Unread = self.shared.handover {
                return self.translate_unread(zone, from, packet);
            }
        }
        self.translate_slow(zone, from, packet, now)
    }

    /// [`Nat::translate`] for a packet of the current tick that the IPv4
    /// lean read did not accept: IPv6's lean path for steady connections,
    /// then the rest ([`Nat::translate_handed`]). Out of line, so
    /// that `translate` stays small, and reached straight from it, so that
    /// the common IPv6 packet skips [`Nat::translate_slow`]'s hand-over.
    #[inline(never)]
    fn translate_unread(&mut self, zone: u16, from: Side, packet: &mut [u8]) -> Verdict {
        self.shared.handover = Handover::Fresh;
        let tick = self.last_tick;
        if self.v6.steady(&mut self.shared, zone, from, packet, tick) {
            self.shared.stats.translated += 1;
            return Verdict::Forward;
        }
        self.translate_handed(zone, from, packet, Handover::Unread, tick)
    }

    /// [`Nat::translate`] for a packet the lean path did not rewrite (as
    /// `shared.handover` says), or did not see (a new tick). A packet that
    /// may start a connection is offered to the lean path for new ones
    /// first ([`Family::new_lean`]); the rest is out of line, so that this
    /// function stays small and such a packet pays for little more than a
    /// call.
    #[inline(never)]
    fn translate_slow(&mut self, zone: u16, from: Side, packet: &mut [u8], now: Instant) -> Verdict {
        let handover = core::mem::take(&mut self.shared.handover);
        if let Handover::Fresh = handover {
            return self.translate_tick(zone, from, packet, now);
        }
        // Past the lean path, the tick was current (and a packet the IPv4
        // lean read refused went to `translate_unread` instead).
        self.translate_handed(zone, from, packet, handover, self.last_tick)
    }

    /// [`Nat::translate_slow`] for a packet of a new tick (or the first):
    /// the lean paths, which had not run, then the rest.
    #[inline(never)]
    fn translate_tick(&mut self, zone: u16, from: Side, packet: &mut [u8], now: Instant) -> Verdict {
        let tick = self.tick(now);
        if self.v4.steady(&mut self.shared, zone, from, packet, tick) {
            self.shared.stats.translated += 1;
            return Verdict::Forward;
        }
        // Not the IPv4 lean read's: the IPv6 one's, perhaps (at the tick
        // just set, the last one, which that reads).
        if let Handover::Unread = self.shared.handover {
            return self.translate_unread(zone, from, packet);
        }
        let handover = core::mem::take(&mut self.shared.handover);
        self.translate_handed(zone, from, packet, handover, tick)
    }

    /// A packet the lean paths for steady connections handed over: the
    /// lean path for new ones, then the rest.
    #[inline(always)]
    fn translate_handed(&mut self, zone: u16, from: Side, packet: &mut [u8], handover: Handover, tick: u32) -> Verdict {
        match self.v4.new_lean(&mut self.shared, zone, from, packet, handover) {
            Ok(verdict) => {
                self.count(verdict);
                verdict
            }
            Err(handover) => self.translate_rest(zone, from, packet, handover, tick),
        }
    }

    /// The rest of [`Nat::translate_slow`]: what the lean paths handed
    /// over ([`Family::hand_over`]), or the general path.
    #[inline(never)]
    fn translate_rest(&mut self, zone: u16, from: Side, packet: &mut [u8], handover: Handover, tick: u32) -> Verdict {
        let lean = self.v4.hand_over(&mut self.shared, zone, from, packet, handover, tick);
        let verdict = match lean {
            Some(verdict) => verdict,
            None => self.translate_general(zone, from, packet, tick),
        };
        self.count(verdict);
        verdict
    }

    /// [`Nat::translate`] by the general path alone, the lean one's
    /// reference.
    #[cfg(test)]
    pub(crate) fn translate_reference(&mut self, zone: u16, from: Side, packet: &mut [u8], now: Instant) -> Verdict {
        let tick = self.tick(now);
        let verdict = self.translate_general(zone, from, packet, tick);
        self.count(verdict);
        verdict
    }

    /// How many packets the lean path rewrote itself.
    #[cfg(test)]
    pub(crate) fn lean_count(&self) -> u64 {
        self.shared.lean
    }

    /// How many of those had their key beyond the two slots from its home.
    #[cfg(test)]
    pub(crate) fn lean_far_count(&self) -> u64 {
        self.shared.lean_far
    }

    /// How many new connections the lean path made itself.
    #[cfg(test)]
    pub(crate) fn lean_new_count(&self) -> u64 {
        self.shared.lean_new
    }

    /// The general path: any packet, either family.
    #[inline(never)]
    fn translate_general(&mut self, zone: u16, from: Side, packet: &mut [u8], tick: u32) -> Verdict {
        match packet.first().map(|b| b >> 4) {
            Some(4) => self.v4.translate(&mut self.shared, zone, from, packet, tick),
            Some(6) => self.v6.translate(&mut self.shared, zone, from, packet, tick),
            _ => Verdict::Drop(DropReason::BadPacket),
        }
    }

    /// Counts `verdict` once.
    #[inline(always)]
    fn count(&mut self, verdict: Verdict) {
        let stats = &mut self.shared.stats;
        match verdict {
            Verdict::Forward => stats.translated += 1,
            Verdict::Pass => stats.passed += 1,
            Verdict::Drop(reason) => stats.count_drop(reason),
        }
    }

    /// Starts loading the memory that translating `packet` (as
    /// [`Nat::translate`] takes it) will read first, and returns at once:
    /// call it for every packet of a burst before translating any, so
    /// that their cache misses overlap instead of coming one after the
    /// other. A hint only: it changes nothing, and a packet it cannot read
    /// is left to [`Nat::translate`].
    #[inline]
    pub fn prefetch(&self, zone: u16, from: Side, packet: &[u8]) {
        self.prefetch_index(zone, from, packet);
    }

    /// [`Nat::prefetch`] for every packet of a burst (all from side `from`
    /// in zone `zone`, as [`Nat::translate`] takes them), and then, a few
    /// packets behind, the entry each one's index slot points at, once that
    /// slot has had time to arrive: an established packet's two cache
    /// misses, the index and the entry, then overlap with the other
    /// packets' instead of coming one after the other. Call it before
    /// translating any packet of the burst.
    ///
    /// A burst of one packet gets [`Nat::prefetch`] only: its entry
    /// could be asked for only once its slot had arrived, which is when its
    /// translation asks for it anyway, and waiting for the slot here would
    /// hold back what that translation does meanwhile.
    pub fn prefetch_burst<'a>(&self, zone: u16, from: Side, packets: impl IntoIterator<Item = &'a [u8]>) {
        let mut pending = [None; PREFETCH_LAG];
        let mut count = 0;
        for (i, packet) in packets.into_iter().enumerate() {
            let behind = core::mem::replace(&mut pending[i % PREFETCH_LAG], self.prefetch_index(zone, from, packet));
            self.prefetch_entry(behind);
            count = i + 1;
        }
        if count > 1 {
            for behind in pending {
                self.prefetch_entry(behind);
            }
        }
    }

    /// Starts loading `packet`'s index slot (and what a new connection
    /// reads); returns its family (IPv6) and hash.
    #[inline]
    fn prefetch_index(&self, zone: u16, from: Side, packet: &[u8]) -> Option<(bool, u64)> {
        match packet.first().map(|b| b >> 4) {
            Some(4) => self.v4.prefetch(zone, from, packet).map(|hash| (false, hash)),
            Some(6) => self.v6.prefetch(zone, from, packet).map(|hash| (true, hash)),
            _ => None,
        }
    }

    #[inline]
    fn prefetch_entry(&self, pending: Option<(bool, u64)>) {
        match pending {
            Some((false, hash)) => self.v4.table.prefetch_entry(hash),
            Some((true, hash)) => self.v6.table.prefetch_entry(hash),
            None => {}
        }
    }

    /// Removes the connections whose timeout has passed at `now`, and
    /// returns how many. Call it about once a second; a packet of a
    /// connection past its timeout starts a new one even if this was not
    /// called.
    pub fn expire(&mut self, now: Instant) -> usize {
        let tick = self.tick(now);
        self.v4.expire(&mut self.shared.stats, tick) + self.v6.expire(&mut self.shared.stats, tick)
    }

    /// Every tracked connection, IPv4 first, in no particular order.
    pub fn connections(&self) -> impl Iterator<Item = Connection> + '_ {
        self.v4.connections(self.last_tick).chain(self.v6.connections(self.last_tick))
    }

    /// How many UDP endpoint mappings are held on outside address `addr`.
    pub fn udp_mappings(&self, addr: IpAddr) -> usize {
        let v4 = from_ip::<4>(addr).and_then(|a| self.v4.pools.iter().find(|p| p.addr == a)).map(Pool::mappings);
        let v6 = from_ip::<16>(addr).and_then(|a| self.v6.pools.iter().find(|p| p.addr == a)).map(Pool::mappings);
        v4.or(v6).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masquerade_rules_cover_what_their_prefix_contains() {
        let addrs: Vec<IpAddr> = ["10.0.0.1", "10.0.1.255", "10.1.0.0", "11.0.0.0", "0.0.0.0", "255.255.255.255"]
            .iter()
            .chain(&["fd00::1", "fd00:0:0:1::", "fd01::", "::", "ffff::ffff"])
            .map(|a| a.parse().unwrap())
            .collect();
        for prefix in ["10.0.0.0/8", "10.0.0.0/23", "10.0.0.1/32", "0.0.0.0/0", "fd00::/64", "fd00::/15", "::/0"] {
            let prefix: Prefix = prefix.parse().unwrap();
            let v4 = MasqueradeRule::<4>::new(&prefix, 0);
            let v6 = MasqueradeRule::<16>::new(&prefix, 0);
            assert_eq!((v4.is_some(), v6.is_some()), (prefix.addr().is_ipv4(), prefix.addr().is_ipv6()));
            for &addr in &addrs {
                let covered = match (addr, v4, v6) {
                    (IpAddr::V4(a), Some(rule), _) => rule.covers(&a.octets()),
                    (IpAddr::V6(a), _, Some(rule)) => rule.covers(&a.octets()),
                    _ => false,
                };
                assert_eq!(covered, prefix.contains(addr), "{prefix:?} {addr}");
            }
        }
    }
}
