//! The connection table: a bounded slab of entries, each holding a
//! connection's original and reply tuples, found from either tuple in O(1);
//! and two timing wheels that expire entries in amortised O(1) and pick
//! eviction victims.
//!
//! Everything is allocated at construction: the slab (`max` entries, filled
//! as connections come), the index and the wheels. The slab and the index
//! are backed by transparent huge pages where the system allows it
//! (`sys::hugepage`): a look-up that misses the caches then seldom misses
//! the TLB too, which is what lets a burst's misses overlap (in a virtual
//! machine a TLB miss walks two sets of page tables). The price is memory
//! while the table is sparse: the pages of the index are touched at random,
//! so it is resident in 2 MiB steps rather than 4 KiB ones. The index is open
//! addressing with linear probing and backward-shift deletion (no
//! tombstones), two keys per entry at a load of at most 0.5 (IPv4) or 0.6
//! (IPv6). A slot is 8
//! bytes: 32 bits of the key's hash (which also picks the home slot, by
//! multiply-shift) and the entry and direction it points to, so most probes
//! that miss never touch an entry.
//!
//! Expiry is lazy, as in `vxlan::table`: an entry sits in the wheel bucket of
//! the deadline it had when linked; a packet only moves its `deadline`
//! forward. [`Table::expire`] visits the buckets whose tick has come, removes
//! the entries that are due and relinks the others at their new deadline
//! (an established TCP entry is visited once per lap of the wheel: 1024 s).
//! A change of protocol state relinks at once, since it may shorten the
//! deadline. Entries that may be evicted (unassured ones, TCP connections
//! that are closing) live in their own wheel, so [`Table::evict`] takes the
//! one nearest its deadline without looking at the others.
//!
//! What this module does not do: know what tuples, states or ports mean, or
//! look at a clock (ticks are whole seconds counted by the caller).

use core::hash::BuildHasher;
use std::collections::hash_map::RandomState;

use super::packet::Deltas;

/// No entry: the end of a list.
pub(crate) const NIL: u32 = u32::MAX;

/// Buckets per wheel; a tick is one second.
pub(crate) const WHEEL_LEN: u32 = 1024;

/// Original direction.
pub(crate) const ORIG: usize = 0;
/// Reply direction.
pub(crate) const REPLY: usize = 1;

/// Entry flags.
pub(crate) mod flag {
    /// The slot holds a connection.
    pub(crate) const USED: u8 = 0x01;
    /// Original-direction packets come from the outside.
    pub(crate) const ORIG_OUTSIDE: u8 = 0x02;
    /// Reply-direction packets come from the outside.
    pub(crate) const REPLY_OUTSIDE: u8 = 0x04;
    /// A reply-direction packet has been seen.
    pub(crate) const SEEN_REPLY: u8 = 0x08;
    /// Traffic both ways and, for TCP, the handshake done: never evicted
    /// while open.
    pub(crate) const ASSURED: u8 = 0x10;
    /// Holds a reference on a UDP port mapping of pool `Entry::pool`.
    pub(crate) const MAPPING: u8 = 0x20;
    /// Linked in the evictable wheel.
    pub(crate) const EVICTABLE: u8 = 0x40;
}

/// One direction of a connection as packets travelling that way carry it.
/// For ICMP echo the identifier is the source port of a request and the
/// destination port of a reply (the other port is zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Tuple<const N: usize> {
    pub(crate) src: [u8; N],
    pub(crate) dst: [u8; N],
    pub(crate) sport: u16,
    pub(crate) dport: u16,
}

impl<const N: usize> Default for Tuple<N> {
    fn default() -> Tuple<N> {
        Tuple { src: [0; N], dst: [0; N], sport: 0, dport: 0 }
    }
}

impl<const N: usize> Tuple<N> {
    /// The same tuple seen from the other end.
    pub(crate) fn inverse(&self) -> Tuple<N> {
        Tuple { src: self.dst, dst: self.src, sport: self.dport, dport: self.sport }
    }

    /// The ports as one number, the source port low: as they sit in
    /// memory on a little-endian machine (one load), and the port bytes
    /// of the packet read big-endian, rotated by 16 bits.
    #[inline(always)]
    pub(crate) fn port_word_low(&self) -> u32 {
        u32::from(self.dport) << 16 | u32::from(self.sport)
    }

    /// The addresses as four words, source then destination, each as its
    /// first and second 8 bytes read little-endian (zero-padded): what
    /// [`Hasher::v6`] takes.
    #[inline(always)]
    pub(crate) fn addr_words(&self) -> [u64; 4] {
        let (s0, s1) = words(&self.src);
        let (d0, d1) = words(&self.dst);
        [s0, s1, d0, d1]
    }
}

impl Tuple<4> {
    /// The addresses as one number: the bytes of the source then of the
    /// destination, little-endian (bytes 12 to 19 of the IPv4 header).
    #[inline(always)]
    pub(crate) fn addr_word(&self) -> u64 {
        u64::from(u32::from_le_bytes(self.src)) | u64::from(u32::from_le_bytes(self.dst)) << 32
    }
}

/// A tracked connection: 52 bytes for IPv4, 100 for IPv6.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry<const N: usize> {
    /// [`ORIG`] and [`REPLY`]: a packet with tuple `tuples[d]` is rewritten
    /// to `tuples[1 - d].inverse()`.
    pub(crate) tuples: [Tuple<N>; 2],
    /// The checksum changes of those two rewrites, for TCP and UDP (set by
    /// the engine; the table does not look at them).
    pub(crate) deltas: [Deltas; 2],
    /// The tick from which the entry is dead.
    pub(crate) deadline: u32,
    /// The next entry in the same wheel bucket, or in the free list.
    next: u32,
    /// The previous entry in the same wheel bucket; [`NIL`] at the head.
    prev: u32,
    /// The wheel bucket the entry is linked in.
    bucket: u16,
    pub(crate) zone: u16,
    /// The IP protocol number.
    pub(crate) proto: u8,
    /// The protocol state (see `state`).
    pub(crate) state: u8,
    pub(crate) flags: u8,
    /// The port pool of a UDP mapping (with [`flag::MAPPING`]).
    pub(crate) pool: u8,
}

impl<const N: usize> Entry<N> {
    /// A new entry, not yet in a table.
    pub(crate) fn new(zone: u16, proto: u8, orig: Tuple<N>, reply: Tuple<N>) -> Entry<N> {
        Entry {
            tuples: [orig, reply],
            deltas: [Deltas::default(); 2],
            deadline: 0,
            next: NIL,
            prev: NIL,
            bucket: 0,
            zone,
            proto,
            state: 0,
            flags: flag::USED,
            pool: 0,
        }
    }

    pub(crate) fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// The keyed hash of the index (and of the port choice): a folded
/// multiply per pair of words, as foldhash does, with keys drawn at
/// construction so a remote sender cannot pick colliding tuples.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hasher {
    keys: [u64; 6],
}

use crate::vxlan::table::folded_multiply;

/// The first and second 8 bytes of an address (zero-padded).
#[inline(always)]
fn words<const N: usize>(addr: &[u8; N]) -> (u64, u64) {
    let mut lo = [0u8; 8];
    let mut hi = [0u8; 8];
    let n = N.min(8);
    lo[..n].copy_from_slice(&addr[..n]);
    if N > 8 {
        let m = (N - 8).min(8);
        hi[..m].copy_from_slice(&addr[8..8 + m]);
    }
    (u64::from_le_bytes(lo), u64::from_le_bytes(hi))
}

impl Hasher {
    /// Keys derived from `seed`, or from the standard library's random keys.
    pub(crate) fn new(seed: Option<u64>) -> Hasher {
        let mut state = seed.unwrap_or_else(|| RandomState::new().hash_one(0x7768_6172_665f_6e61_u64));
        let mut keys = [0u64; 6];
        for key in &mut keys {
            // SplitMix64.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            *key = (z ^ (z >> 31)) | 1;
        }
        Hasher { keys }
    }

    /// The hash of a key: zone, protocol and tuple.
    #[inline(always)]
    pub(crate) fn tuple<const N: usize>(&self, zone: u16, proto: u8, tuple: &Tuple<N>) -> u64 {
        let ports = u32::from(tuple.sport) << 16 | u32::from(tuple.dport);
        let [s0, s1, d0, d1] = tuple.addr_words();
        if N <= 4 {
            return self.v4(zone, proto, s0 | d0 << 32, ports);
        }
        self.v6(zone, proto, [s0, s1, d0, d1], ports)
    }

    /// [`Hasher::tuple`] of an IPv6 key given as its addresses' words
    /// (source then destination, each as two little-endian halves, as
    /// [`Tuple::addr_words`] gives them) and its ports as read from a
    /// packet (big-endian, the source port high). The two addresses and
    /// the rest are each folded first, side by side, then together: two
    /// multiplies deep, as [`Hasher::v4`] is, for four multiplies.
    #[inline(always)]
    pub(crate) fn v6(&self, zone: u16, proto: u8, addrs: [u64; 4], ports: u32) -> u64 {
        let k = &self.keys;
        let meta = u64::from(ports) << 32 | u64::from(zone) << 16 | u64::from(proto);
        let a = folded_multiply(addrs[0] ^ k[0], addrs[1] ^ k[1]);
        let b = folded_multiply(addrs[2] ^ k[2], addrs[3] ^ k[3]);
        let c = folded_multiply(meta ^ k[4], k[5]);
        folded_multiply(a ^ c, b ^ k[5])
    }

    /// [`Hasher::tuple`] of an IPv4 key given as [`Tuple::addr_word`] and
    /// its ports as read from a packet (big-endian, the source port high).
    #[inline(always)]
    pub(crate) fn v4(&self, zone: u16, proto: u8, addrs: u64, ports: u32) -> u64 {
        let k = &self.keys;
        let meta = u64::from(ports) << 32 | u64::from(zone) << 16 | u64::from(proto);
        folded_multiply(folded_multiply(addrs ^ k[0], meta ^ k[1]), k[5])
    }

    /// A hash of an inside endpoint and a counter, for the port search.
    #[inline(always)]
    pub(crate) fn endpoint<const N: usize>(&self, zone: u16, proto: u8, addr: &[u8; N], port: u16, salt: u64) -> u64 {
        let tuple = Tuple { src: *addr, dst: [0; N], sport: port, dport: 0 };
        self.tuple(zone, proto, &tuple) ^ folded_multiply(salt ^ self.keys[2], self.keys[3])
    }
}

/// An index slot for key `r` (`entry << 1 | direction`) of `hash`: the
/// hash's high 32 bits (its tag) and `r + 1`, so that zero is empty.
#[inline(always)]
fn slot_value(hash: u64, r: u32) -> u64 {
    (hash >> 32) << 32 | u64::from(r + 1)
}

/// The entry and direction a full index slot points at.
#[inline(always)]
fn pointed(slot: u64) -> (u32, usize) {
    let r = (slot as u32).wrapping_sub(1);
    (r >> 1, (r & 1) as usize)
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Table<const N: usize> {
    entries: Vec<Entry<N>>,
    /// The first free slot, linked through `next`.
    free: u32,
    len: usize,
    max: usize,
    /// Open addressing: `tag << 32 | (slot << 1 | dir) + 1`; zero is empty.
    index: Vec<u64>,
    hasher: Hasher,
    /// The heads of the buckets: the protected wheel, then the evictable one.
    wheels: Vec<u32>,
    /// The last tick `expire` has processed.
    done_tick: u32,
    /// Where the search for an eviction victim starts (a tick).
    evict_hint: u32,
}

impl<const N: usize> Table<N> {
    /// A table for at most `max` entries.
    pub(crate) fn new(max: usize, hasher: Hasher) -> Table<N> {
        // Two keys per entry at a load of at most 0.5 for IPv4 (a new
        // connection probes about 2.5 slots per key instead of 3.6), 0.6
        // for IPv6 (whose larger entries leave less room under 128 bytes).
        let slots = if N == 4 { max.saturating_mul(4) } else { max.saturating_mul(10) / 3 };
        let slots = (slots + 1).max(16);
        // Zeroed and reserved memory is only mapped when first written, so
        // the advice comes in time for every page of the two big arrays.
        let entries = Vec::with_capacity(max);
        let index = vec![0; slots];
        crate::sys::hugepage::advise_huge_pages(&entries);
        crate::sys::hugepage::advise_huge_pages(&index);
        Table {
            entries,
            free: NIL,
            len: 0,
            max,
            index,
            hasher,
            wheels: vec![NIL; 2 * WHEEL_LEN as usize],
            done_tick: 0,
            evict_hint: u32::MAX,
        }
    }

    pub(crate) fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len >= self.max
    }

    /// Bytes allocated: the slab (in full), the index and the wheels.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.entries.capacity() * size_of::<Entry<N>>()
            + self.index.len() * size_of::<u64>()
            + self.wheels.len() * size_of::<u32>()
    }

    #[inline(always)]
    pub(crate) fn hash(&self, zone: u16, proto: u8, tuple: &Tuple<N>) -> u64 {
        self.hasher.tuple(zone, proto, tuple)
    }

    #[inline(always)]
    fn home(&self, tag: u32) -> usize {
        ((u64::from(tag) * self.index.len() as u64) >> 32) as usize
    }

    /// The entry and direction whose tuple is `tuple` (`hash` is
    /// [`Table::hash`] of the key).
    #[inline]
    pub(crate) fn find(&self, hash: u64, zone: u16, proto: u8, tuple: &Tuple<N>) -> Option<(u32, usize)> {
        self.find_by(hash, |entry, dir| entry.tuples[dir] == *tuple && entry.zone == zone && entry.proto == proto)
    }

    /// [`Table::find`] with the compare given: `matches(entry, dir)` says
    /// whether `entry` has the key in direction `dir`.
    #[inline(always)]
    pub(crate) fn find_by(&self, hash: u64, matches: impl Fn(&Entry<N>, usize) -> bool) -> Option<(u32, usize)> {
        self.probe(hash, matches).ok()
    }

    /// [`Table::find_by`] that also says where a search that misses ends:
    /// `Err` with the empty slot it stopped at, which is where
    /// [`Table::insert_at`] puts the key if nothing is inserted meanwhile.
    #[inline(always)]
    pub(crate) fn probe(&self, hash: u64, matches: impl Fn(&Entry<N>, usize) -> bool) -> Result<(u32, usize), usize> {
        let tag = (hash >> 32) as u32;
        let len = self.index.len();
        let mut i = self.home(tag);
        for _ in 0..len {
            let Some(&slot) = self.index.get(i) else { return Err(i) };
            if slot == 0 {
                return Err(i);
            }
            if (slot >> 32) as u32 == tag {
                let (at, dir) = pointed(slot);
                if let Some(entry) = self.entries.get(at as usize) {
                    if matches(entry, dir) {
                        return Ok((at, dir));
                    }
                }
            }
            i += 1;
            if i == len {
                i = 0;
            }
        }
        Err(i)
    }

    /// The first empty slot from the home slot of `hash`: where
    /// [`Table::insert`] puts a key of that hash, found without looking at
    /// any entry (for a key known to be absent, or allowed twice).
    #[inline(always)]
    pub(crate) fn first_empty(&self, hash: u64) -> usize {
        self.empty_from(self.home((hash >> 32) as u32))
    }

    /// The first empty slot from slot `from` on (wrapping around).
    #[inline(always)]
    fn empty_from(&self, from: usize) -> usize {
        let len = self.index.len();
        let mut i = from;
        for _ in 0..len {
            if self.index.get(i).is_some_and(|&slot| slot == 0) {
                return i;
            }
            i += 1;
            if i >= len {
                i = 0;
            }
        }
        i
    }

    /// The first two steps of [`Table::find_by`] alone, the index read
    /// before any entry: the first of the home slot of `hash` and the next
    /// one that has its tag, before an empty one, if its entry has the key.
    /// `Some` with what the search finds, or `None` if it would go further
    /// (a key of the same tag first, or the end of the index).
    #[inline(always)]
    pub(crate) fn find_near(
        &self,
        hash: u64,
        matches: impl Fn(&Entry<N>, usize) -> bool,
    ) -> Option<Option<(u32, usize)>> {
        let tag = (hash >> 32) as u32;
        let home = self.home(tag);
        let pair = self.index.get(home..home + 2)?;
        let tagged = |slot: u64| (slot >> 32) as u32 == tag;
        let slot = match (pair[0], pair[1]) {
            (0, _) => return Some(None),
            (first, _) if tagged(first) => first,
            (_, 0) => return Some(None),
            (_, second) if tagged(second) => second,
            _ => return None,
        };
        let (at, dir) = pointed(slot);
        self.entries.get(at as usize).filter(|entry| matches(entry, dir)).map(|_| Some((at, dir)))
    }

    /// Starts loading the index slot where a lookup of `hash` begins, and
    /// the slot the next insert takes, so that their cache misses overlap
    /// with other work.
    #[inline(always)]
    pub(crate) fn prefetch(&self, hash: u64) {
        self.prefetch_key(hash);
        self.prefetch_free();
    }

    /// Starts loading the index slot where a lookup of `hash` begins.
    #[inline(always)]
    pub(crate) fn prefetch_key(&self, hash: u64) {
        if let Some(slot) = self.index.get(self.home((hash >> 32) as u32)) {
            crate::sys::prefetch(slot);
        }
    }

    /// Starts loading the entry a lookup of `hash` will compare first,
    /// found from its index slot (whose load [`Table::prefetch_key`] should
    /// have started a while before): the second step of a burst's prefetch.
    /// Looks at the slots of the probe run that usually share the line.
    #[inline(always)]
    pub(crate) fn prefetch_entry(&self, hash: u64) {
        let tag = (hash >> 32) as u32;
        let home = self.home(tag);
        for i in home..home + 4 {
            let Some(&slot) = self.index.get(i) else { return };
            if slot == 0 {
                return;
            }
            if (slot >> 32) as u32 == tag {
                let (at, _) = pointed(slot);
                if let Some(entry) = self.entries.get(at as usize) {
                    // An entry may straddle two lines.
                    crate::sys::prefetch(entry);
                    crate::sys::prefetch(&entry.pool);
                }
                return;
            }
        }
    }

    /// Starts loading the slot the next insert takes.
    #[inline(always)]
    pub(crate) fn prefetch_free(&self) {
        if let Some(entry) = self.entries.get(self.free as usize) {
            crate::sys::prefetch(entry);
        }
    }

    /// Whether some entry has `tuple` in either direction.
    #[cfg(test)]
    pub(crate) fn contains(&self, zone: u16, proto: u8, tuple: &Tuple<N>) -> bool {
        self.find(self.hash(zone, proto, tuple), zone, proto, tuple).is_some()
    }

    #[inline(always)]
    pub(crate) fn get(&self, at: u32) -> Option<&Entry<N>> {
        self.entries.get(at as usize).filter(|e| e.has(flag::USED))
    }

    #[inline(always)]
    pub(crate) fn get_mut(&mut self, at: u32) -> Option<&mut Entry<N>> {
        self.entries.get_mut(at as usize).filter(|e| e.has(flag::USED))
    }

    /// Adds `entry` (its `deadline` set, its tuples in no other entry) under
    /// the hashes of its two keys, in the wheel its `EVICTABLE` flag names.
    /// Returns where it is, or `None` if the table is full.
    pub(crate) fn insert(&mut self, entry: Entry<N>, hashes: [u64; 2]) -> Option<u32> {
        // Each key's search starts at its home slot.
        let keys = hashes.map(|hash| (hash, self.home((hash >> 32) as u32)));
        self.insert_at(entry, keys)
    }

    /// [`Table::insert`] for keys whose probes have already been made:
    /// `keys` holds each key's hash and the empty slot its search ended at
    /// ([`Table::probe`], [`Table::first_empty`]), in the order of the
    /// directions. A key goes in that slot if it is still empty, else
    /// (the other key took it) in the next empty one after it, as the probe
    /// from its home slot would find: the slots before it in its run were
    /// full when it was probed. The entry is built in its slot.
    #[inline(always)]
    pub(crate) fn insert_at(&mut self, mut entry: Entry<N>, keys: [(u64, usize); 2]) -> Option<u32> {
        if self.is_full() {
            return None;
        }
        entry.flags |= flag::USED;
        let at = if self.free != NIL {
            let at = self.free;
            let slot = self.entries.get_mut(at as usize)?;
            self.free = slot.next;
            *slot = entry;
            at
        } else {
            // Within the capacity reserved in `new`: no reallocation.
            self.entries.push(entry);
            (self.entries.len() - 1) as u32
        };
        self.len += 1;
        for (dir, (hash, slot)) in keys.into_iter().enumerate() {
            self.insert_key_from(hash, slot, at << 1 | dir as u32);
        }
        self.link_inline(at);
        Some(at)
    }

    /// Puts key `r` of `hash` in the first empty slot from `from` on.
    #[inline(always)]
    fn insert_key_from(&mut self, hash: u64, from: usize, r: u32) {
        let at = self.empty_from(from);
        // Room was made before: the index is at most half full.
        if let Some(slot) = self.index.get_mut(at).filter(|slot| **slot == 0) {
            *slot = slot_value(hash, r);
        }
    }

    fn remove_key(&mut self, hash: u64, r: u32) {
        let tag = (hash >> 32) as u32;
        let wanted = slot_value(hash, r);
        let len = self.index.len();
        let mut hole = self.home(tag);
        let mut found = false;
        for _ in 0..len {
            match self.index.get(hole) {
                Some(&slot) if slot == wanted => {
                    found = true;
                    break;
                }
                Some(0) | None => return,
                Some(_) => {}
            }
            hole += 1;
            if hole == len {
                hole = 0;
            }
        }
        if !found {
            return;
        }
        // Backward shift: pull later keys of the same run into the hole when
        // their home allows it.
        let mut j = hole;
        loop {
            j += 1;
            if j == len {
                j = 0;
            }
            let slot = self.index.get(j).copied().unwrap_or(0);
            if slot == 0 || j == hole {
                break;
            }
            let home = self.home((slot >> 32) as u32);
            let from_home = (j + len - home) % len;
            let from_hole = (j + len - hole) % len;
            if from_home >= from_hole {
                self.index[hole] = slot;
                hole = j;
            }
        }
        self.index[hole] = 0;
    }

    /// Removes entry `at` and returns it.
    pub(crate) fn remove(&mut self, at: u32) -> Option<Entry<N>> {
        self.get(at)?;
        self.unlink(at);
        self.release(at)
    }

    /// Frees an entry that is already out of the wheels.
    fn release(&mut self, at: u32) -> Option<Entry<N>> {
        let entry = *self.get(at)?;
        for dir in [ORIG, REPLY] {
            let hash = self.hash(entry.zone, entry.proto, &entry.tuples[dir]);
            self.remove_key(hash, at << 1 | dir as u32);
        }
        let slot = self.entries.get_mut(at as usize)?;
        slot.flags = 0;
        slot.next = self.free;
        self.free = at;
        self.len -= 1;
        Some(entry)
    }

    /// Moves entry `at` to the bucket of its deadline, in the wheel its
    /// `EVICTABLE` flag names: after a change of state or of that flag.
    pub(crate) fn relink(&mut self, at: u32) {
        if self.get(at).is_some() {
            self.unlink(at);
            self.link(at);
        }
    }

    #[inline(always)]
    fn head(&mut self, bucket: u16) -> &mut u32 {
        let i =
            (usize::from(bucket >> 15) * WHEEL_LEN as usize + usize::from(bucket & 0x7fff)).min(self.wheels.len() - 1);
        &mut self.wheels[i]
    }

    fn link(&mut self, at: u32) {
        self.link_inline(at);
    }

    /// [`Table::link`], inlined where a new entry is linked.
    #[inline(always)]
    fn link_inline(&mut self, at: u32) {
        let Some(entry) = self.entries.get(at as usize) else { return };
        let evictable = entry.has(flag::EVICTABLE);
        let deadline = entry.deadline;
        let bucket = (deadline % WHEEL_LEN) as u16 | if evictable { 0x8000 } else { 0 };
        let head = core::mem::replace(self.head(bucket), at);
        if let Some(next) = self.entries.get_mut(head as usize) {
            next.prev = at;
        }
        if let Some(entry) = self.entries.get_mut(at as usize) {
            entry.next = head;
            entry.prev = NIL;
            entry.bucket = bucket;
        }
        if evictable && deadline < self.evict_hint {
            self.evict_hint = deadline;
        }
    }

    fn unlink(&mut self, at: u32) {
        let Some(entry) = self.entries.get(at as usize) else { return };
        let (prev, next, bucket) = (entry.prev, entry.next, entry.bucket);
        match self.entries.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => *self.head(bucket) = next,
        }
        if let Some(n) = self.entries.get_mut(next as usize) {
            n.prev = prev;
        }
    }

    /// Removes the entries whose deadline is at or before `tick`, calling
    /// `removed` with each, and returns how many. Call it about once a
    /// second; a long gap costs one visit of every bucket.
    pub(crate) fn expire(&mut self, tick: u32, mut removed: impl FnMut(&Entry<N>)) -> usize {
        if tick <= self.done_tick {
            return 0;
        }
        let steps = (tick - self.done_tick).min(WHEEL_LEN);
        let mut count = 0;
        for t in tick + 1 - steps..=tick {
            for wheel in [0u16, 0x8000] {
                let bucket = (t % WHEEL_LEN) as u16 | wheel;
                let mut at = core::mem::replace(self.head(bucket), NIL);
                while at != NIL {
                    let Some(entry) = self.entries.get(at as usize) else { break };
                    let next = entry.next;
                    if entry.deadline <= tick {
                        removed(entry);
                        self.release(at);
                        count += 1;
                    } else {
                        self.link(at);
                    }
                    at = next;
                }
            }
        }
        self.done_tick = tick;
        count
    }

    /// Removes and returns an evictable entry, the one nearest its deadline
    /// as far as the wheel knows; `None` if there is none.
    pub(crate) fn evict(&mut self) -> Option<Entry<N>> {
        let start = self.evict_hint.max(self.done_tick.wrapping_add(1));
        for i in 0..WHEEL_LEN {
            let t = start.wrapping_add(i);
            let at = *self.head((t % WHEEL_LEN) as u16 | 0x8000);
            if at != NIL {
                self.evict_hint = t;
                return self.remove(at);
            }
        }
        self.evict_hint = u32::MAX;
        None
    }

    /// Every entry, with where it is.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &Entry<N>)> + '_ {
        self.entries.iter().enumerate().filter(|(_, e)| e.has(flag::USED)).map(|(at, e)| (at as u32, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(n: u32) -> Tuple<4> {
        Tuple { src: n.to_be_bytes(), dst: [192, 0, 2, 1], sport: (n % 60000) as u16 + 1, dport: 80 }
    }

    fn entry(n: u32, deadline: u32, evictable: bool) -> Entry<4> {
        let mut e = Entry::new(0, 6, tuple(n), tuple(n).inverse());
        e.tuples[REPLY].dport = 7;
        e.deadline = deadline;
        if evictable {
            e.flags |= flag::EVICTABLE;
        }
        e
    }

    fn add(t: &mut Table<4>, e: Entry<4>) -> Option<u32> {
        let hashes = [t.hash(e.zone, e.proto, &e.tuples[ORIG]), t.hash(e.zone, e.proto, &e.tuples[REPLY])];
        t.insert(e, hashes)
    }

    fn lookup(t: &Table<4>, tuple: &Tuple<4>) -> Option<(u32, usize)> {
        t.find(t.hash(0, 6, tuple), 0, 6, tuple)
    }

    #[test]
    fn entry_sizes() {
        assert_eq!(size_of::<Entry<4>>(), 52);
        assert_eq!(size_of::<Entry<16>>(), 100);
    }

    #[test]
    fn both_directions_are_found_and_removed() {
        let mut t: Table<4> = Table::new(1000, Hasher::new(Some(1)));
        let mut at = Vec::new();
        for n in 0..1000 {
            at.push(add(&mut t, entry(n, 100, false)).unwrap());
        }
        assert!(t.is_full());
        assert_eq!(add(&mut t, entry(5000, 100, false)), None);
        for n in 0..1000u32 {
            let e = entry(n, 0, false);
            assert_eq!(lookup(&t, &e.tuples[ORIG]), Some((at[n as usize], ORIG)));
            assert_eq!(lookup(&t, &e.tuples[REPLY]), Some((at[n as usize], REPLY)));
        }
        assert!(!t.contains(0, 6, &tuple(5000)));
        assert!(!t.contains(1, 6, &tuple(1)), "another zone");
        assert!(!t.contains(0, 17, &tuple(1)), "another protocol");
        // Remove every other entry: the rest are still found (backward shift
        // kept the probe runs whole).
        for n in (0..1000).step_by(2) {
            assert!(t.remove(at[n]).is_some());
        }
        assert_eq!(t.len(), 500);
        for n in 0..1000u32 {
            let found = lookup(&t, &tuple(n)).is_some();
            assert_eq!(found, n % 2 == 1, "{n}");
        }
        // Slots are reused without growing.
        let capacity = t.entries.capacity();
        for n in 2000..2500 {
            add(&mut t, entry(n, 100, false)).unwrap();
        }
        assert_eq!(t.entries.capacity(), capacity);
        assert_eq!(t.entries.len(), 1000);
    }

    #[test]
    fn collisions_on_one_home_slot() {
        // A tiny index where every key probes: lookups and removals stay right.
        let mut t: Table<4> = Table::new(3, Hasher::new(Some(2)));
        assert_eq!(t.index.len(), 16);
        let ids: Vec<u32> = (0..3).map(|n| add(&mut t, entry(n, 10, false)).unwrap()).collect();
        for round in 0..50u32 {
            let victim = ids[(round % 3) as usize];
            let e = t.remove(victim).unwrap();
            assert_eq!(lookup(&t, &e.tuples[ORIG]), None);
            let again = add(&mut t, e).unwrap();
            assert_eq!(lookup(&t, &e.tuples[REPLY]), Some((again, REPLY)));
            for n in 0..3 {
                assert!(lookup(&t, &tuple(n)).is_some());
            }
        }
    }

    #[test]
    fn expiry_and_laps() {
        let mut t: Table<4> = Table::new(10, Hasher::new(Some(3)));
        let a = add(&mut t, entry(1, 30, true)).unwrap();
        let b = add(&mut t, entry(2, 5000, false)).unwrap();
        let mut gone = Vec::new();
        assert_eq!(t.expire(29, |e| gone.push(e.tuples[ORIG])), 0);
        assert_eq!(t.expire(30, |e| gone.push(e.tuples[ORIG])), 1);
        assert_eq!(gone, [tuple(1)]);
        assert!(t.get(a).is_none());
        // Entry b crosses several laps before its deadline.
        t.get_mut(b).unwrap().deadline = 4000; // refreshed earlier than linked: still lives until visited
        for tick in (31..4000).step_by(7) {
            assert_eq!(t.expire(tick, |_| {}), 0, "{tick}");
        }
        assert_eq!(t.expire(5000, |_| {}), 1);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn eviction_takes_only_evictable_entries() {
        let mut t: Table<4> = Table::new(4, Hasher::new(Some(4)));
        add(&mut t, entry(1, 500, false)).unwrap();
        let x = add(&mut t, entry(2, 60, true)).unwrap();
        add(&mut t, entry(3, 40, true)).unwrap();
        add(&mut t, entry(4, 500, false)).unwrap();
        // Nearest deadline first.
        assert_eq!(t.evict().unwrap().tuples[ORIG], tuple(3));
        assert_eq!(t.evict().unwrap().tuples[ORIG], tuple(2));
        assert!(t.evict().is_none());
        assert!(t.get(x).is_none());
        assert_eq!(t.len(), 2);
        // A protected entry made evictable is found after a relink.
        let (at, _) = lookup(&t, &tuple(1)).unwrap();
        t.get_mut(at).unwrap().flags |= flag::EVICTABLE;
        t.relink(at);
        assert_eq!(t.evict().unwrap().tuples[ORIG], tuple(1));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn hashes_spread() {
        let h = Hasher::new(Some(5));
        let mut tags: Vec<u32> = (0..4096).map(|n| (h.tuple(0, 6, &tuple(n)) >> 32) as u32 >> 20).collect();
        tags.sort_unstable();
        tags.dedup();
        // 4096 keys in 4096 bins: about 4096 * (1 - 1/e) = 2589 distinct.
        assert!(tags.len() > 2450, "{}", tags.len());
        // The IPv4 key's words are the packet's bytes 12 to 23.
        let t = Tuple::<4> { src: [10, 0, 0, 2], dst: [192, 0, 2, 1], sport: 40000, dport: 443 };
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&t.src);
        bytes[4..8].copy_from_slice(&t.dst);
        bytes[8..10].copy_from_slice(&t.sport.to_be_bytes());
        bytes[10..].copy_from_slice(&t.dport.to_be_bytes());
        let addrs = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        let ports = u32::from_be_bytes(bytes[8..].try_into().unwrap());
        assert_eq!((t.addr_word(), t.port_word_low()), (addrs, ports.rotate_left(16)));
        assert_eq!(h.v4(3, 17, addrs, ports), h.tuple(3, 17, &t));
        let v6 = Tuple::<16> { src: [1; 16], dst: [2; 16], sport: 1, dport: 2 };
        assert_ne!(h.tuple(0, 6, &v6), h.tuple(0, 6, &v6.inverse()));
        // The IPv6 key's words are the packet's bytes 8 to 43, read as the
        // lean path reads them.
        let t = Tuple::<16> {
            src: [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            dst: [7; 16],
            sport: 40000,
            dport: 443,
        };
        let mut bytes = [0u8; 36];
        bytes[..16].copy_from_slice(&t.src);
        bytes[16..32].copy_from_slice(&t.dst);
        bytes[32..34].copy_from_slice(&t.sport.to_be_bytes());
        bytes[34..].copy_from_slice(&t.dport.to_be_bytes());
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let ports = u32::from_be_bytes(bytes[32..].try_into().unwrap());
        assert_eq!(t.addr_words(), [word(0), word(8), word(16), word(24)]);
        assert_eq!(h.v6(3, 17, t.addr_words(), ports), h.tuple(3, 17, &t));
        // IPv6 keys that differ in one part alone spread as well.
        let v6_keys: [&dyn Fn(u32) -> Tuple<16>; 3] = [
            &|n| Tuple { src: (0xfd00_u128 << 112 | u128::from(n)).to_be_bytes(), ..t },
            &|n| Tuple { dst: (0x2001_0db8_u128 << 96 | u128::from(n) << 64).to_be_bytes(), ..t },
            &|n| Tuple { sport: 1024 + (n >> 6) as u16, dport: (n & 63) as u16, ..t },
        ];
        for key in v6_keys {
            let mut tags: Vec<u32> = (0..4096).map(|n| (h.tuple(0, 6, &key(n)) >> 32) as u32 >> 20).collect();
            tags.sort_unstable();
            tags.dedup();
            assert!(tags.len() > 2450, "{}", tags.len());
        }
        assert_ne!(h.tuple(0, 6, &v6), h.tuple(1, 6, &v6));
        assert_ne!(Hasher::new(Some(6)).tuple(0, 6, &v6), h.tuple(0, 6, &v6));
    }
}
