//! IPv4 neighbour resolution for a userspace router (ARP, RFC 826): which
//! MAC address a next hop has, asked for when unknown, retried, forgotten
//! when stale, and the packets waiting for an answer held meanwhile.
//! Sans-IO: it takes `now` and says what to send; the runner sends it.
//!
//! An entry is `Incomplete` (asked, no answer yet), then `Reachable` for
//! [`NeighborConfig::reachable`] after an answer or any ARP from that host.
//! An expired entry is asked for again on next use while the old address
//! keeps serving (Linux's STALE/PROBE, simplified). After
//! [`NeighborConfig::retries`] unanswered requests an incomplete entry
//! fails: its held packets are dropped and counted.
//!
//! Held packets are copied into a pool of fixed slots allocated up front;
//! each address holds at most [`NeighborConfig::queue_len`] of them (the
//! oldest goes first), so resolution never allocates per packet.
//!
//! What this module does not do: parse or build ARP (that is
//! [`wire::arp`](crate::wire::arp)), answer for its own addresses (the
//! runner does), or IPv6 neighbour discovery.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::vxlan::table::SeededState;
use crate::wire::EthernetAddress;

/// Timers and bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborConfig {
    /// How long an answer is trusted (Linux: `base_reachable_time`, 30 s).
    pub reachable: Duration,
    /// Time between requests for an unanswered address (Linux:
    /// `retrans_time`, 1 s).
    pub retrans: Duration,
    /// Requests before an address is given up (Linux: `mcast_solicit`, 3).
    pub retries: u32,
    /// Packets held per unresolved address.
    pub queue_len: usize,
    /// Packets held in all.
    pub pool_slots: usize,
    /// The largest packet held, in bytes.
    pub slot_size: usize,
    /// Most entries; when full the oldest failed or stale one is reused.
    pub max_entries: usize,
}

impl Default for NeighborConfig {
    fn default() -> NeighborConfig {
        NeighborConfig {
            reachable: Duration::from_secs(30),
            retrans: Duration::from_secs(1),
            retries: 3,
            queue_len: 8,
            pool_slots: 256,
            slot_size: 9216,
            max_entries: 4096,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Incomplete {
        asked: u32,
        next: Instant,
    },
    Reachable {
        mac: EthernetAddress,
        until: Instant,
    },
    /// Known but old: used while asked for again.
    Stale {
        mac: EthernetAddress,
        asked: u32,
        next: Instant,
    },
}

#[derive(Debug)]
struct Entry {
    state: State,
    /// Pool slots of held packets, oldest first.
    held: Vec<usize>,
}

/// What [`Neighbors::resolve`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Send to this MAC.
    Known(EthernetAddress),
    /// Unknown: hold the packet ([`Neighbors::hold`]); `ask` says to send an
    /// ARP request now.
    Unknown { ask: bool },
}

/// What the table did that the runner should count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NeighborStats {
    pub requests: u64,
    pub resolved: u64,
    pub failed: u64,
    /// Held packets dropped: their address failed, its queue or the pool was
    /// full, or the packet was larger than a slot.
    pub held_dropped: u64,
}

/// The neighbour table of one interface.
#[derive(Debug)]
pub struct Neighbors {
    config: NeighborConfig,
    /// Looked up for every forwarded packet: the keyed fast hash the VTEP's
    /// tables use, not SipHash.
    entries: HashMap<Ipv4Addr, Entry, SeededState>,
    pool: Vec<u8>,
    lens: Vec<usize>,
    free: Vec<usize>,
    stats: NeighborStats,
}

impl Neighbors {
    pub fn new(config: NeighborConfig) -> Neighbors {
        let slots = config.pool_slots.max(1);
        Neighbors {
            entries: HashMap::with_capacity_and_hasher(config.max_entries.min(1 << 16), SeededState::random()),
            pool: vec![0; slots * config.slot_size],
            lens: vec![0; slots],
            free: (0..slots).rev().collect(),
            stats: NeighborStats::default(),
            config,
        }
    }

    pub fn stats(&self) -> NeighborStats {
        self.stats
    }

    /// The MAC of `ip`, if known and not yet expired (for tests and stats).
    pub fn get(&self, ip: Ipv4Addr) -> Option<EthernetAddress> {
        match self.entries.get(&ip)?.state {
            State::Reachable { mac, .. } | State::Stale { mac, .. } => Some(mac),
            State::Incomplete { .. } => None,
        }
    }

    /// Where to send a packet for next hop `ip`.
    pub fn resolve(&mut self, ip: Ipv4Addr, now: Instant) -> Resolution {
        let retrans = self.config.retrans;
        if let Some(entry) = self.entries.get_mut(&ip) {
            return match entry.state {
                State::Reachable { mac, until } if now < until => Resolution::Known(mac),
                State::Reachable { mac, .. } => {
                    // Keep sending; the next `take_requests` asks again.
                    entry.state = State::Stale { mac, asked: 0, next: now };
                    Resolution::Known(mac)
                }
                State::Stale { mac, .. } => Resolution::Known(mac),
                State::Incomplete { .. } => Resolution::Unknown { ask: false },
            };
        }
        if self.entries.len() >= self.config.max_entries && !self.make_room(now) {
            return Resolution::Unknown { ask: false };
        }
        self.entries.insert(ip, Entry { state: State::Incomplete { asked: 1, next: now + retrans }, held: Vec::new() });
        self.stats.requests += 1;
        Resolution::Unknown { ask: true }
    }

    /// Holds a copy of `packet` until `ip` resolves. Returns false (and
    /// counts a drop) when it cannot.
    pub fn hold(&mut self, ip: Ipv4Addr, packet: &[u8]) -> bool {
        let Some(entry) = self.entries.get_mut(&ip) else {
            self.stats.held_dropped += 1;
            return false;
        };
        if packet.len() > self.config.slot_size {
            self.stats.held_dropped += 1;
            return false;
        }
        if entry.held.len() >= self.config.queue_len {
            let oldest = entry.held.remove(0);
            self.free.push(oldest);
            self.stats.held_dropped += 1;
        }
        let Some(slot) = self.free.pop() else {
            self.stats.held_dropped += 1;
            return false;
        };
        let start = slot * self.config.slot_size;
        self.pool[start..start + packet.len()].copy_from_slice(packet);
        self.lens[slot] = packet.len();
        entry.held.push(slot);
        true
    }

    /// Learns `ip` at `mac` (an ARP reply, or any ARP from `ip`) and hands
    /// each packet held for it to `send`, oldest first. `create`: make an
    /// entry even if none was asked for (a request addressed to us, as
    /// Linux does); otherwise only existing entries are refreshed.
    pub fn learn(
        &mut self,
        ip: Ipv4Addr,
        mac: EthernetAddress,
        now: Instant,
        create: bool,
        mut send: impl FnMut(EthernetAddress, &[u8]),
    ) {
        if !create && !self.entries.contains_key(&ip) {
            return;
        }
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.config.max_entries && !self.make_room(now) {
            return;
        }
        let until = now + self.config.reachable;
        let entry = self
            .entries
            .entry(ip)
            .or_insert_with(|| Entry { state: State::Incomplete { asked: 0, next: now }, held: Vec::new() });
        if matches!(entry.state, State::Incomplete { .. }) {
            self.stats.resolved += 1;
        }
        entry.state = State::Reachable { mac, until };
        for slot in entry.held.drain(..) {
            let start = slot * self.config.slot_size;
            send(mac, &self.pool[start..start + self.lens[slot]]);
            self.free.push(slot);
        }
    }

    /// The addresses to ask for now (retries of unanswered and stale
    /// entries); fails entries out of retries, dropping their packets.
    /// Call every [`NeighborConfig::retrans`] or so.
    pub fn take_requests(&mut self, now: Instant, mut ask: impl FnMut(Ipv4Addr)) {
        let (retrans, retries) = (self.config.retrans, self.config.retries);
        let mut failed = Vec::new();
        for (&ip, entry) in &mut self.entries {
            match &mut entry.state {
                State::Incomplete { asked, next } | State::Stale { asked, next, .. } if now >= *next => {
                    if *asked >= retries {
                        failed.push(ip);
                    } else {
                        *asked += 1;
                        *next = now + retrans;
                        self.stats.requests += 1;
                        ask(ip);
                    }
                }
                _ => {}
            }
        }
        for ip in failed {
            if let Some(entry) = self.entries.remove(&ip) {
                self.stats.failed += 1;
                self.stats.held_dropped += entry.held.len() as u64;
                self.free.extend(entry.held);
            }
        }
    }

    /// Frees one entry that is not reachable — the oldest expired one, else
    /// the oldest stale one, else the incomplete one asked longest ago
    /// (ties by address, so the choice never depends on the map's order);
    /// false when every entry is reachable. Only runs when the table is full.
    fn make_room(&mut self, now: Instant) -> bool {
        let victim = self
            .entries
            .iter()
            .filter_map(|(&ip, entry)| match entry.state {
                State::Reachable { until, .. } if now < until => None,
                State::Reachable { until, .. } => Some((0, until, ip)),
                State::Stale { next, .. } => Some((1, next, ip)),
                State::Incomplete { next, .. } => Some((2, next, ip)),
            })
            .min()
            .map(|(_, _, ip)| ip);
        match victim.and_then(|ip| self.entries.remove(&ip)) {
            Some(entry) => {
                self.stats.held_dropped += entry.held.len() as u64;
                self.free.extend(entry.held);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GW: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
    const MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
    const MAC2: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);

    fn requests(table: &mut Neighbors, now: Instant) -> Vec<Ipv4Addr> {
        let mut asked = Vec::new();
        table.take_requests(now, |ip| asked.push(ip));
        asked
    }

    #[test]
    fn unknown_then_held_then_delivered_in_order() {
        let t0 = Instant::now();
        let mut table = Neighbors::new(NeighborConfig::default());
        assert_eq!(table.resolve(GW, t0), Resolution::Unknown { ask: true });
        assert!(table.hold(GW, b"first"));
        assert_eq!(table.resolve(GW, t0), Resolution::Unknown { ask: false }, "asked once");
        assert!(table.hold(GW, b"second"));
        let mut sent = Vec::new();
        table.learn(GW, MAC, t0, false, |mac, p| sent.push((mac, p.to_vec())));
        assert_eq!(sent, vec![(MAC, b"first".to_vec()), (MAC, b"second".to_vec())]);
        assert_eq!(table.resolve(GW, t0), Resolution::Known(MAC));
        assert_eq!(table.stats().resolved, 1);
    }

    #[test]
    fn unanswered_addresses_are_retried_then_given_up() {
        let t0 = Instant::now();
        let config = NeighborConfig { retries: 3, ..NeighborConfig::default() };
        let mut table = Neighbors::new(config);
        table.resolve(GW, t0);
        table.hold(GW, b"waiting");
        assert!(requests(&mut table, t0).is_empty(), "not before retrans");
        assert_eq!(requests(&mut table, t0 + Duration::from_secs(1)), vec![GW]);
        assert_eq!(requests(&mut table, t0 + Duration::from_secs(2)), vec![GW]);
        assert!(requests(&mut table, t0 + Duration::from_secs(3)).is_empty(), "three requests, then failed");
        let stats = table.stats();
        assert_eq!((stats.requests, stats.failed, stats.held_dropped), (3, 1, 1));
        assert_eq!(table.resolve(GW, t0 + Duration::from_secs(3)), Resolution::Unknown { ask: true }, "asked afresh");
        assert_eq!(table.free.len(), table.config.pool_slots, "the held slot came back");
    }

    #[test]
    fn stale_entries_keep_forwarding_while_asked_again() {
        let t0 = Instant::now();
        let mut table = Neighbors::new(NeighborConfig::default());
        table.learn(GW, MAC, t0, true, |_, _| {});
        let later = t0 + Duration::from_secs(31);
        assert_eq!(table.resolve(GW, later), Resolution::Known(MAC));
        assert_eq!(requests(&mut table, later), vec![GW]);
        table.learn(GW, MAC2, later, false, |_, _| {});
        assert_eq!(table.resolve(GW, later), Resolution::Known(MAC2), "a moved host is followed");
    }

    #[test]
    fn bounds_drop_and_count_instead_of_growing() {
        let t0 = Instant::now();
        let config =
            NeighborConfig { queue_len: 2, pool_slots: 3, slot_size: 8, max_entries: 2, ..NeighborConfig::default() };
        let mut table = Neighbors::new(config);
        table.resolve(GW, t0);
        assert!(table.hold(GW, b"a"));
        assert!(table.hold(GW, b"b"));
        assert!(table.hold(GW, b"c"), "the oldest makes room");
        assert!(!table.hold(GW, b"too long for a slot"));
        let other = Ipv4Addr::new(203, 0, 113, 2);
        table.resolve(other, t0);
        assert!(table.hold(other, b"d"));
        assert!(!table.hold(other, b"e"), "pool of three is full");
        let third = Ipv4Addr::new(203, 0, 113, 3);
        assert_eq!(table.resolve(third, t0), Resolution::Unknown { ask: true }, "an incomplete entry made room");
        assert!(!table.hold(Ipv4Addr::new(198, 51, 100, 9), b"x"), "never resolved");
        let mut sent = Vec::new();
        table.learn(GW, MAC, t0, false, |_, p| sent.push(p.to_vec()));
        table.learn(other, MAC, t0, false, |_, p| sent.push(p.to_vec()));
        // GW and `other` were asked at the same time: the lower address, GW,
        // made room, and its held b and c went with it; only d is delivered.
        assert_eq!(sent, [b"d".to_vec()]);
        // a (pushed out by c), "too long", e, x, then b and c.
        assert_eq!(table.stats().held_dropped, 6);
        table.learn(Ipv4Addr::new(198, 51, 100, 7), MAC, t0, false, |_, _| {});
        assert_eq!(table.get(Ipv4Addr::new(198, 51, 100, 7)), None, "unasked replies are not learned");
    }
}
