//! The UDP flow table: one flow per client address, bounded, with idle
//! expiry and eviction of the idlest flow when full. Sans-IO: it holds
//! whatever the runner attaches to a flow (its connected socket) and takes
//! `now` as an argument.
//!
//! Flows sit in a slab, linked in order of last use, so a lookup, a touch,
//! an eviction and an expiry step are O(1) and allocate nothing once the
//! table has grown to its bound.
//!
//! What this module does not do: sockets, or deciding the timeout.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

const NIL: usize = usize::MAX;

#[derive(Debug)]
struct Slot<K, V> {
    entry: Option<(K, V)>,
    last_used: Instant,
    /// Towards the most recently used.
    newer: usize,
    /// Towards the least recently used.
    older: usize,
}

/// Flows keyed by `K` (the client address and the listener), each carrying
/// a `V`, identified by a slot number that stays valid until removal.
#[derive(Debug)]
pub struct FlowTable<K, V> {
    index: HashMap<K, usize>,
    slots: Vec<Slot<K, V>>,
    free: Vec<usize>,
    newest: usize,
    oldest: usize,
    capacity: usize,
    timeout: Duration,
}

impl<K: Hash + Eq + Copy, V> FlowTable<K, V> {
    /// A table of at most `capacity` flows (at least 1), each expiring after
    /// `timeout` without traffic.
    pub fn new(capacity: usize, timeout: Duration) -> FlowTable<K, V> {
        FlowTable {
            index: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            newest: NIL,
            oldest: NIL,
            capacity: capacity.max(1),
            timeout,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.index.len() >= self.capacity
    }

    /// The flow of `key`, if any.
    pub fn find(&self, key: &K) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// The flow in slot `id`.
    pub fn get(&self, id: usize) -> Option<(&K, &V)> {
        self.slots.get(id)?.entry.as_ref().map(|(k, v)| (k, v))
    }

    /// Marks flow `id` used at `now`: it becomes the newest.
    pub fn touch(&mut self, id: usize, now: Instant) {
        if self.slots.get(id).is_none_or(|slot| slot.entry.is_none()) {
            return;
        }
        self.slots[id].last_used = now;
        if self.newest != id {
            self.unlink(id);
            self.push_newest(id);
        }
    }

    /// Removes the least recently used flow to make room (call when
    /// [`is_full`](Self::is_full)).
    pub fn evict_idlest(&mut self) -> Option<(K, V)> {
        let oldest = self.oldest;
        (oldest != NIL).then(|| self.remove(oldest)).flatten()
    }

    /// Adds a flow for `key` used at `now` and returns its slot, or gives
    /// `value` back when the table is full or `key` already has a flow.
    pub fn insert(&mut self, key: K, value: V, now: Instant) -> Result<usize, V> {
        if self.is_full() || self.index.contains_key(&key) {
            return Err(value);
        }
        let slot = Slot { entry: Some((key, value)), last_used: now, newer: NIL, older: NIL };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id] = slot;
                id
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.index.insert(key, id);
        self.push_newest(id);
        Ok(id)
    }

    /// Removes flow `id`.
    pub fn remove(&mut self, id: usize) -> Option<(K, V)> {
        let entry = self.slots.get_mut(id)?.entry.take()?;
        self.index.remove(&entry.0);
        self.unlink(id);
        self.free.push(id);
        Some(entry)
    }

    /// Removes one flow idle since before `now - timeout`, the oldest first;
    /// call until `None`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(K, V)> {
        let oldest = self.oldest;
        if oldest == NIL || now.saturating_duration_since(self.slots[oldest].last_used) < self.timeout {
            return None;
        }
        self.remove(oldest)
    }

    /// When the oldest flow expires, if there is one and its expiry is a
    /// time the clock can hold (a timeout that long never expires).
    pub fn next_expiry(&self) -> Option<Instant> {
        (self.oldest != NIL).then(|| self.slots[self.oldest].last_used.checked_add(self.timeout)).flatten()
    }

    fn unlink(&mut self, id: usize) {
        let (newer, older) = (self.slots[id].newer, self.slots[id].older);
        if newer == NIL {
            self.newest = older;
        } else {
            self.slots[newer].older = older;
        }
        if older == NIL {
            self.oldest = newer;
        } else {
            self.slots[older].newer = newer;
        }
        self.slots[id].newer = NIL;
        self.slots[id].older = NIL;
    }

    fn push_newest(&mut self, id: usize) {
        self.slots[id].older = self.newest;
        self.slots[id].newer = NIL;
        if self.newest != NIL {
            self.slots[self.newest].newer = id;
        }
        self.newest = id;
        if self.oldest == NIL {
            self.oldest = id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idlest_flow_goes_first_when_full() {
        let t0 = Instant::now();
        let mut table = FlowTable::new(3, Duration::from_secs(90));
        let a = table.insert('a', 1, t0).unwrap();
        let _b = table.insert('b', 2, t0 + Duration::from_secs(1)).unwrap();
        let _c = table.insert('c', 3, t0 + Duration::from_secs(2)).unwrap();
        assert!(table.is_full());
        assert_eq!(table.insert('d', 4, t0), Err(4));
        table.touch(a, t0 + Duration::from_secs(3));
        assert_eq!(table.evict_idlest(), Some(('b', 2)), "a was used since");
        let d = table.insert('d', 4, t0 + Duration::from_secs(4)).unwrap();
        assert_eq!(table.find(&'d'), Some(d));
        assert_eq!(table.find(&'b'), None);
        assert_eq!(table.len(), 3);
        assert_eq!(table.evict_idlest(), Some(('c', 3)));
        assert_eq!(table.evict_idlest(), Some(('a', 1)));
        assert_eq!(table.evict_idlest(), Some(('d', 4)));
        assert_eq!(table.evict_idlest(), None);
        assert!(table.is_empty());
    }

    #[test]
    fn idle_flows_expire_and_used_ones_stay() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(90);
        let mut table = FlowTable::new(10, timeout);
        let a = table.insert(1u32, "a", t0).unwrap();
        table.insert(2u32, "b", t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(table.next_expiry(), Some(t0 + timeout));
        assert_eq!(table.pop_expired(t0 + Duration::from_secs(89)), None);
        table.touch(a, t0 + Duration::from_secs(50));
        assert_eq!(table.pop_expired(t0 + Duration::from_secs(100)), Some((2, "b")));
        assert_eq!(table.pop_expired(t0 + Duration::from_secs(100)), None);
        assert_eq!(table.pop_expired(t0 + Duration::from_secs(140)), Some((1, "a")));
        assert_eq!(table.next_expiry(), None);
    }

    #[test]
    fn slots_are_reused_and_the_order_survives_churn() {
        let t0 = Instant::now();
        let mut table = FlowTable::new(64, Duration::from_secs(1));
        for round in 0..10u64 {
            for key in 0..64u64 {
                let now = t0 + Duration::from_millis(round * 100 + key);
                match table.find(&key) {
                    Some(id) => table.touch(id, now),
                    None => {
                        table.insert(key, key, now).unwrap();
                    }
                }
            }
            if round % 3 == 2 {
                table.remove(table.find(&(round % 64)).unwrap());
            }
        }
        assert!(table.slots.len() <= 64, "slots are reused");
        // Every removed key came back in the round after; the last round
        // touched all 64 in key order.
        let mut evicted = Vec::new();
        while let Some((key, _)) = table.evict_idlest() {
            evicted.push(key);
        }
        assert_eq!(evicted, (0..64).collect::<Vec<u64>>(), "oldest first");
    }

    #[test]
    fn a_timeout_past_the_clock_never_expires() {
        let t0 = Instant::now();
        let mut table = FlowTable::new(2, Duration::MAX);
        table.insert(1u8, (), t0).unwrap();
        assert_eq!(table.next_expiry(), None);
        assert_eq!(table.pop_expired(t0 + Duration::from_secs(1 << 40)), None);
        assert_eq!(table.len(), 1);
    }
}
