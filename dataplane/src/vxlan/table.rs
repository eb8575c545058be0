//! A bounded map of static and learned entries in which learned entries age:
//! the storage behind the FDB and the neighbour table.
//!
//! Everything is allocated at construction: a slab of slots (one per entry,
//! static entries included), a hash index from key to slot at least twice the
//! entries (open addressing, linear probing, removal by shifting back: no
//! tombstones, so inserting after removals never grows or degrades it), and a
//! hashed timing wheel. Learning a new key takes a free slot; refreshing one only
//! writes its `last_seen`. Ageing is amortised: each learned entry sits in
//! the wheel bucket of its deadline, and [`AgeingTable::expire`] visits only
//! the buckets whose time has come — an entry refreshed since is moved to the
//! bucket of its new deadline, one that is not is removed. So the work per
//! call is the entries due (expired, or refreshed once per ageing period),
//! never a scan of the table, and an entry is removed at most one tick (1/1024
//! of the ageing time: 293 ms for the default 300 s) after its deadline.
//!
//! Entries keep the `Instant` they were last seen, so a refresh costs no
//! arithmetic on the clock; wheel ticks count from the first `now` the table
//! sees, and are computed only when an entry is added or its bucket is due.
//!
//! What this module does not do: know what keys and values mean, or look at
//! a clock.

use core::hash::{BuildHasher, Hash, Hasher};
use std::collections::hash_map::RandomState;
use std::time::{Duration, Instant};

/// No slot: the end of a list.
const NIL: u32 = u32::MAX;

/// Wheel buckets. Deadlines are at most [`TICKS_PER_AGEING`] + 1 ticks ahead,
/// so with `expire` called regularly no bucket holds entries of two laps.
const WHEEL_LEN: u64 = 2048;

/// The ageing time is cut into this many ticks.
const TICKS_PER_AGEING: u64 = 1024;

/// What [`AgeingTable::learn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Learn<V> {
    /// A new entry.
    Learned,
    /// Already there with this value: `last_seen` updated.
    Refreshed,
    /// Already there with another value, which it replaced.
    Moved,
    /// New, but the learned entries are at their cap: not added.
    Full,
    /// New or moved, but the caller's check refused the value: nothing
    /// changed.
    Refused,
    /// A static entry holds the key, with this value: left alone.
    Static(V),
}

/// Whether an entry was configured or learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Configured: never aged, never moved by learning.
    Static,
    /// Learned from traffic: refreshed by it, aged without it.
    Learned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotKind {
    Free,
    Static,
    Learned,
}

#[derive(Debug, Clone)]
struct Slot<K, V> {
    key: K,
    value: V,
    kind: SlotKind,
    /// When traffic last confirmed the entry; `None` for static entries.
    last_seen: Option<Instant>,
    /// The next slot in the same wheel bucket, or the next free slot.
    next: u32,
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct AgeingTable<K, V> {
    index: Index,
    slots: Vec<Slot<K, V>>,
    /// The first free slot, linked through `next`.
    free: u32,
    learned: usize,
    max_learned: usize,
    ageing: Duration,
    tick_ms: u64,
    /// Tick 0: the first `now` the table saw.
    epoch: Option<Instant>,
    /// The last tick `expire` has processed.
    done_tick: u64,
    /// The first slot of each bucket's list, linked through `next`.
    wheel: Vec<u32>,
}

impl<K: Hash + Eq + Copy, V: Copy + PartialEq> AgeingTable<K, V> {
    /// A table holding `statics` (a later duplicate key wins), with room for
    /// `max_learned` learned entries that live `ageing` (at least 1 ms)
    /// without a refresh.
    pub(crate) fn new(statics: impl IntoIterator<Item = (K, V)>, max_learned: usize, ageing: Duration) -> Self {
        let statics: Vec<(K, V)> = statics.into_iter().collect();
        let capacity = statics.len() + max_learned;
        let ageing = ageing.max(Duration::from_millis(1));
        let ageing_ms = u64::try_from(ageing.as_millis()).unwrap_or(u64::MAX);
        let mut table = AgeingTable {
            index: Index::new(capacity),
            slots: Vec::with_capacity(capacity),
            free: NIL,
            learned: 0,
            max_learned,
            ageing,
            tick_ms: ageing_ms.div_ceil(TICKS_PER_AGEING),
            epoch: None,
            done_tick: 0,
            wheel: vec![NIL; WHEEL_LEN as usize],
        };
        for (key, value) in statics {
            match table.index.find(&key, &table.slots) {
                Some(at) => table.slots[at as usize].value = value,
                None => {
                    let at = table.slots.len() as u32;
                    table.slots.push(Slot { key, value, kind: SlotKind::Static, last_seen: None, next: NIL });
                    table.index.insert(&key, at);
                }
            }
        }
        table
    }

    /// The value for `key`, static or learned (a learned entry past its
    /// deadline counts until `expire` removes it).
    #[inline(always)]
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let at = self.index.find(key, &self.slots)?;
        self.slots.get(at as usize).map(|slot| slot.value)
    }

    /// Whether `key` holds `value`; if it does in a learned entry, that
    /// entry is refreshed at `now` (a static one is left alone). What
    /// [`AgeingTable::learn`] does for a known key and value, in one probe
    /// and without an answer to match on.
    #[inline(always)]
    pub(crate) fn confirm(&mut self, key: &K, value: &V, now: Instant) -> bool {
        let Some(at) = self.index.find(key, &self.slots) else { return false };
        let Some(slot) = self.slots.get_mut(at as usize) else { return false };
        if slot.value != *value {
            return false;
        }
        if slot.kind == SlotKind::Learned {
            slot.last_seen = Some(now);
        }
        true
    }

    /// Learns `key` → `value` at `now`: refreshes or moves a learned entry,
    /// leaves a static one alone, or adds a new one if there is room.
    /// `admit` vets a value before it is added or moved to (a refresh does
    /// not ask: the value is already in).
    #[inline(always)]
    pub(crate) fn learn(&mut self, key: K, value: V, now: Instant, admit: impl FnOnce(&V) -> bool) -> Learn<V> {
        let Some(at) = self.index.find(&key, &self.slots) else { return self.learn_new(key, value, now, admit) };
        let Some(slot) = self.slots.get_mut(at as usize) else { return Learn::Refused };
        match slot.kind {
            SlotKind::Learned if slot.value == value => {
                slot.last_seen = Some(now);
                Learn::Refreshed
            }
            SlotKind::Learned if admit(&value) => {
                slot.last_seen = Some(now);
                slot.value = value;
                Learn::Moved
            }
            SlotKind::Learned => Learn::Refused,
            SlotKind::Static | SlotKind::Free => Learn::Static(slot.value),
        }
    }

    /// [`AgeingTable::learn`] for a key not in the table.
    #[inline(never)]
    fn learn_new(&mut self, key: K, value: V, now: Instant, admit: impl FnOnce(&V) -> bool) -> Learn<V> {
        if self.learned >= self.max_learned {
            return Learn::Full;
        }
        if !admit(&value) {
            return Learn::Refused;
        }
        let slot = Slot { key, value, kind: SlotKind::Learned, last_seen: Some(now), next: NIL };
        let at = if self.free != NIL {
            let at = self.free;
            self.free = self.slots[at as usize].next;
            self.slots[at as usize] = slot;
            at
        } else {
            // Within the capacity reserved in `new`: no reallocation.
            self.slots.push(slot);
            (self.slots.len() - 1) as u32
        };
        self.index.insert(&key, at);
        self.learned += 1;
        let deadline = self.deadline_ms(now);
        self.link(at, deadline, self.done_tick + 1);
        Learn::Learned
    }

    /// Removes the learned entries whose deadline (last seen + ageing) is
    /// at or before `now`, and returns how many. Call it regularly (about once
    /// a second); a long gap costs one visit of every bucket.
    pub(crate) fn expire(&mut self, now: Instant) -> usize {
        let target = self.millis(now) / self.tick_ms;
        if target <= self.done_tick {
            return 0;
        }
        let steps = (target - self.done_tick).min(WHEEL_LEN);
        let mut removed = 0;
        for tick in target + 1 - steps..=target {
            let bucket = (tick % WHEEL_LEN) as usize;
            let mut at = core::mem::replace(&mut self.wheel[bucket], NIL);
            while at != NIL {
                let slot = &self.slots[at as usize];
                let next = slot.next;
                let last_seen = slot.last_seen.unwrap_or(now);
                if last_seen + self.ageing <= now {
                    let key = slot.key;
                    self.index.remove(&key, &self.slots);
                    let slot = &mut self.slots[at as usize];
                    slot.kind = SlotKind::Free;
                    slot.next = self.free;
                    self.free = at;
                    self.learned -= 1;
                    removed += 1;
                } else {
                    let deadline = self.deadline_ms(last_seen);
                    self.link(at, deadline, target + 1);
                }
                at = next;
            }
        }
        self.done_tick = target;
        removed
    }

    /// Milliseconds from the epoch (set by the first call) to `now`.
    fn millis(&mut self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        u64::try_from(now.saturating_duration_since(epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// The deadline of an entry last seen at `last_seen`, in milliseconds
    /// from the epoch.
    fn deadline_ms(&mut self, last_seen: Instant) -> u64 {
        let ms = self.millis(last_seen);
        ms.saturating_add(u64::try_from(self.ageing.as_millis()).unwrap_or(u64::MAX))
    }

    /// Puts slot `at` at the head of the bucket for `deadline`: the first
    /// tick at or after it, but no earlier than `first_tick` (ticks before it
    /// are done; the clock's milliseconds are truncated, so a deadline can
    /// fall in the tick being processed).
    fn link(&mut self, at: u32, deadline: u64, first_tick: u64) {
        let tick = deadline.div_ceil(self.tick_ms).max(first_tick);
        let bucket = (tick % WHEEL_LEN) as usize;
        self.slots[at as usize].next = self.wheel[bucket];
        self.wheel[bucket] = at;
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, V, EntryKind)> + '_ {
        self.slots.iter().filter_map(|slot| match slot.kind {
            SlotKind::Free => None,
            SlotKind::Static => Some((slot.key, slot.value, EntryKind::Static)),
            SlotKind::Learned => Some((slot.key, slot.value, EntryKind::Learned)),
        })
    }

    /// How many learned entries there are.
    pub(crate) fn learned(&self) -> usize {
        self.learned
    }
}

/// The key → slot index of an [`AgeingTable`]: open addressing with linear
/// probing over a power-of-two array at least twice the table's capacity, so
/// it is at most half full and a probe sequence is short. An entry holds the
/// slot and 32 bits of the key's hash; the key itself is the slot's, so one
/// index serves every key type. The hash is keyed ([`SeededState`]).
///
/// Removal shifts the later entries of the probe run back into the hole
/// (Knuth's algorithm R) instead of leaving a tombstone, so lookups never
/// slow down as entries come and go.
#[derive(Debug, Clone)]
struct Index {
    entries: Vec<IndexEntry>,
    /// `entries.len() - 1`.
    mask: usize,
    hasher: SeededState,
}

/// One position of the [`Index`]: empty if `slot` is [`NIL`].
#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    /// The high half of the key's hash: most mismatches fail on it without
    /// reading the slot.
    tag: u32,
    slot: u32,
}

const EMPTY: IndexEntry = IndexEntry { tag: 0, slot: NIL };

impl Index {
    /// An index for up to `capacity` keys.
    fn new(capacity: usize) -> Index {
        let len = capacity.saturating_mul(2).max(8).next_power_of_two();
        Index { entries: vec![EMPTY; len], mask: len - 1, hasher: SeededState::random() }
    }

    /// Where `key`'s probe sequence starts, and its tag.
    #[inline(always)]
    fn home<K: Hash>(&self, key: &K) -> (usize, u32) {
        let hash = self.hasher.hash_one(key);
        (hash as usize & self.mask, (hash >> 32) as u32)
    }

    /// The position and slot of `key`, whose entries are in `slots`.
    #[inline(always)]
    fn position<K: Eq + Hash, V>(&self, key: &K, slots: &[Slot<K, V>]) -> Option<(usize, u32)> {
        let (mut at, tag) = self.home(key);
        // At most half full, so an empty entry ends every run; the bound
        // only keeps a broken invariant from looping.
        for _ in 0..self.entries.len() {
            let entry = *self.entries.get(at)?;
            // The hit is tested first: an empty entry's slot (NIL) is past
            // the end of `slots`, so it cannot match.
            if entry.tag == tag && slots.get(entry.slot as usize).is_some_and(|slot| slot.key == *key) {
                return Some((at, entry.slot));
            }
            if entry.slot == NIL {
                return None;
            }
            at = (at + 1) & self.mask;
        }
        None
    }

    /// The slot of `key`.
    #[inline(always)]
    fn find<K: Eq + Hash, V>(&self, key: &K, slots: &[Slot<K, V>]) -> Option<u32> {
        self.position(key, slots).map(|(_, slot)| slot)
    }

    /// Adds `key` (not in the index) at `slot`.
    fn insert<K: Hash>(&mut self, key: &K, slot: u32) {
        let (mut at, tag) = self.home(key);
        while self.entries[at].slot != NIL {
            at = (at + 1) & self.mask;
        }
        self.entries[at] = IndexEntry { tag, slot };
    }

    /// Removes `key`, whose entries (and those of every other key in the
    /// index) are in `slots`.
    fn remove<K: Eq + Hash, V>(&mut self, key: &K, slots: &[Slot<K, V>]) {
        let Some((mut hole, _)) = self.position(key, slots) else { return };
        let mut at = hole;
        loop {
            at = (at + 1) & self.mask;
            let entry = self.entries[at];
            if entry.slot == NIL {
                break;
            }
            let Some(slot) = slots.get(entry.slot as usize) else { break };
            // The entry may fill the hole if its home is not after the hole
            // (cyclically, within the run up to `at`).
            let (home, _) = self.home(&slot.key);
            if (at.wrapping_sub(home) & self.mask) >= (at.wrapping_sub(hole) & self.mask) {
                self.entries[hole] = entry;
                hole = at;
            }
        }
        self.entries[hole] = EMPTY;
    }
}

/// Builds [`FoldHasher`]s from a seed drawn from the standard library's
/// random keys, so that keys chosen by a remote sender (MACs, addresses)
/// cannot be picked to collide.
#[derive(Debug, Clone)]
pub(crate) struct SeededState {
    seed: u64,
}

impl SeededState {
    pub(crate) fn random() -> SeededState {
        SeededState { seed: RandomState::new().hash_one(0x7768_6172_665f_7674_u64) | 1 }
    }
}

impl BuildHasher for SeededState {
    type Hasher = FoldHasher;

    #[inline]
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher { state: self.seed }
    }
}

/// A fast keyed hasher for small keys: each word is folded in with a
/// 64×64→128-bit multiply whose halves are XORed (as foldhash and aHash do),
/// which mixes every input bit into every output bit.
#[derive(Debug, Clone)]
pub(crate) struct FoldHasher {
    state: u64,
}

const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// The high and low halves of a full multiply, XORed.
#[inline(always)]
pub(crate) fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

impl Hasher for FoldHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            self.write_u64(u64::from_le_bytes(word) ^ ((tail.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, value: u8) {
        self.write_u64(u64::from(value));
    }

    #[inline]
    fn write_u16(&mut self, value: u16) {
        self.write_u64(u64::from(value));
    }

    #[inline]
    fn write_u32(&mut self, value: u32) {
        self.write_u64(u64::from(value));
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.state = folded_multiply(self.state ^ value, MULTIPLIER);
    }

    #[inline]
    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1000;

    fn table(max: usize) -> AgeingTable<u64, u32> {
        AgeingTable::new([(100, 1), (101, 2)], max, Duration::from_secs(300))
    }

    /// `ms` milliseconds after a fixed base.
    fn at(ms: u64) -> Instant {
        use std::sync::OnceLock;
        static BASE: OnceLock<Instant> = OnceLock::new();
        *BASE.get_or_init(Instant::now) + Duration::from_millis(ms)
    }

    fn yes<V>(_: &V) -> bool {
        true
    }

    #[test]
    fn learn_refresh_move_full_static() {
        let mut t = table(2);
        assert_eq!(t.get(&100), Some(1));
        assert_eq!(t.learn(1, 10, at(0), yes), Learn::Learned);
        assert_eq!(t.learn(1, 10, at(5), yes), Learn::Refreshed);
        assert_eq!(t.learn(1, 11, at(6), yes), Learn::Moved);
        assert_eq!(t.get(&1), Some(11));
        assert_eq!(t.learn(2, 20, at(7), yes), Learn::Learned);
        assert_eq!(t.learn(3, 30, at(8), yes), Learn::Full);
        assert_eq!(t.get(&3), None);
        assert_eq!(t.learn(100, 9, at(9), yes), Learn::Static(1));
        // The check is asked only for new values.
        assert_eq!(t.learn(4, 40, at(9), |_| false), Learn::Full);
        assert_eq!(t.learn(1, 12, at(9), |_| false), Learn::Refused);
        assert_eq!(t.learn(1, 11, at(9), |_| false), Learn::Refreshed);
        assert_eq!(t.get(&100), Some(1));
        assert_eq!(t.learned(), 2);
        let mut all: Vec<_> = t.iter().collect();
        all.sort_unstable_by_key(|e| e.0);
        assert_eq!(
            all,
            [
                (1, 11, EntryKind::Learned),
                (2, 20, EntryKind::Learned),
                (100, 1, EntryKind::Static),
                (101, 2, EntryKind::Static)
            ]
        );
    }

    #[test]
    fn confirm_refreshes_only_a_matching_learned_entry() {
        let mut t = table(2);
        assert!(!t.confirm(&1, &10, at(0)), "unknown key");
        t.learn(1, 10, at(0), yes);
        assert!(!t.confirm(&1, &11, at(SEC)), "another value");
        assert!(t.confirm(&1, &10, at(200 * SEC)));
        assert!(t.confirm(&100, &1, at(200 * SEC)), "a static entry with that value");
        assert!(!t.confirm(&100, &2, at(200 * SEC)));
        // The refresh at 200 s keeps key 1 past its first deadline; the
        // static entry has no time to refresh.
        assert_eq!(t.expire(at(301 * SEC)), 0);
        assert_eq!(t.get(&1), Some(10));
        assert_eq!(t.expire(at(501 * SEC)), 1);
        assert_eq!(t.get(&100), Some(1));
        assert_eq!(t.iter().filter(|e| e.2 == EntryKind::Static).count(), 2);
    }

    #[test]
    fn ageing_is_precise_to_a_tick() {
        let mut t = table(10);
        t.learn(1, 10, at(0), yes);
        t.learn(2, 20, at(100 * SEC), yes);
        assert_eq!(t.expire(at(299 * SEC)), 0);
        assert_eq!(t.get(&1), Some(10));
        // Refresh key 2 at 350 s: its deadline moves to 650 s.
        t.learn(2, 20, at(350 * SEC), yes);
        let tick = t.tick_ms;
        assert_eq!(t.expire(at(300 * SEC + tick)), 1);
        assert_eq!(t.get(&1), None);
        assert_eq!(t.expire(at(400 * SEC + tick)), 0, "key 2 was refreshed");
        assert_eq!(t.get(&2), Some(20));
        assert_eq!(t.expire(at(649 * SEC)), 0);
        assert_eq!(t.expire(at(650 * SEC + tick)), 1);
        assert_eq!(t.get(&2), None);
        assert_eq!(t.learned(), 0);
        // Statics never age.
        assert_eq!(t.expire(at(100_000 * SEC)), 0);
        assert_eq!(t.get(&100), Some(1));
    }

    #[test]
    fn freed_slots_are_reused_without_growing() {
        let mut t = table(3);
        let capacity = t.slots.capacity();
        let mut now = 0;
        for round in 0..100u64 {
            for key in 0..3 {
                assert_eq!(t.learn(1000 + round * 10 + key, 1, at(now), yes), Learn::Learned);
            }
            assert_eq!(t.learn(1000 + round * 10 + 9, 1, at(now), yes), Learn::Full);
            now += 301 * SEC;
            assert_eq!(t.expire(at(now)), 3, "round {round}");
        }
        assert_eq!(t.slots.capacity(), capacity);
        assert_eq!(t.slots.len(), 5);
    }

    #[test]
    fn long_gaps_and_many_laps() {
        let mut t: AgeingTable<u64, u32> = AgeingTable::new([], 1000, Duration::from_millis(1000));
        for key in 0..1000 {
            t.learn(key, 0, at(key), yes);
        }
        // Keep the even keys alive across several laps of the wheel.
        let mut now = 0;
        while now < 20_000 {
            now += 7;
            for key in (0..1000).step_by(2) {
                t.learn(key, 0, at(now), yes);
            }
            t.expire(at(now));
        }
        assert_eq!(t.learned(), 500);
        assert!((0..1000).step_by(2).all(|key| t.get(&key).is_some()));
        // One call after a long silence removes everything.
        assert_eq!(t.expire(at(1_000_000)), 500);
        assert_eq!(t.learned(), 0);
    }

    #[test]
    fn tiny_ageing() {
        let mut t: AgeingTable<u64, u32> = AgeingTable::new([], 4, Duration::from_millis(1));
        t.learn(1, 1, at(10), yes);
        assert_eq!(t.expire(at(10)), 0);
        assert_eq!(t.expire(at(11)), 1);
    }

    #[test]
    fn index_agrees_with_a_map_through_inserts_and_removals() {
        // A small, crowded index (12 keys in 32 positions, many runs that
        // wrap) against the standard map, with the removals in expire.
        let mut t: AgeingTable<u64, u64> = AgeingTable::new([], 12, Duration::from_millis(1000));
        let mut model = std::collections::HashMap::new();
        let mut rng = 0x1234_5678_u64;
        for step in 0..20_000u64 {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let key = (rng >> 33) % 40;
            let now = step / 10;
            match t.learn(key, step, at(now), yes) {
                Learn::Learned => assert!(model.insert(key, now).is_none()),
                Learn::Moved => assert!(model.insert(key, now).is_some()),
                Learn::Full => assert_eq!(model.len(), 12),
                other => panic!("{other:?}"),
            }
            if step % 97 == 0 {
                t.expire(at(now));
                model.retain(|_, seen| *seen + 1000 > now);
            }
            for probe in 0..40 {
                assert_eq!(t.get(&probe).is_some(), model.contains_key(&probe), "key {probe} at step {step}");
            }
        }
    }

    #[test]
    fn hasher_spreads_small_keys() {
        let state = SeededState { seed: 1 };
        let hashes: Vec<u64> = (0u64..1024).map(|k| state.hash_one(k)).collect();
        // The top 7 bits (hashbrown's control byte) and the low bits (its
        // bucket) both vary.
        let mut top: Vec<u64> = hashes.iter().map(|h| h >> 57).collect();
        top.sort_unstable();
        top.dedup();
        assert!(top.len() > 100);
        let mut low: Vec<u64> = hashes.iter().map(|h| h & 1023).collect();
        low.sort_unstable();
        low.dedup();
        assert!(low.len() > 500);
        let mut h1 = state.build_hasher();
        h1.write(&[1, 2, 3]);
        let mut h2 = state.build_hasher();
        h2.write(&[1, 2, 3, 0]);
        assert_ne!(h1.finish(), h2.finish());
    }
}
