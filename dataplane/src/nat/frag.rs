//! The fragment table: how the first fragment of a datagram was translated,
//! so that its later fragments (which carry no ports) get the same
//! addresses. A small direct-mapped table: 1024 slots chosen by a keyed
//! hash of (zone, side, protocol, source, destination, identification), a
//! newer datagram taking the slot of an older one; a record lives 30 s (the
//! kernel's `ipfrag_time`). A later fragment that finds no record is dropped
//! and counted (`fragment_unknown`), as is one that arrives before its
//! first fragment.
//!
//! The transport checksum needs nothing here: it covers the whole datagram,
//! and the first fragment's incremental update already accounts for the
//! address and port changes.
//!
//! What this module does not do: reassemble, reorder, or keep fragments.

use super::table::{Hasher, Tuple};

const SLOTS: usize = 1024;

/// How long a first fragment's translation is kept, in ticks (seconds).
pub(crate) const FRAG_TIMEOUT: u32 = 30;

/// The fields that name a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FragKey<const N: usize> {
    pub(crate) src: [u8; N],
    pub(crate) dst: [u8; N],
    pub(crate) ident: u32,
    pub(crate) zone: u16,
    pub(crate) proto: u8,
    pub(crate) outside: bool,
}

#[derive(Debug, Clone, Copy)]
struct Slot<const N: usize> {
    key: FragKey<N>,
    new_src: [u8; N],
    new_dst: [u8; N],
    /// The tick from which the record is dead; 0: empty.
    deadline: u32,
}

impl<const N: usize> Default for Slot<N> {
    fn default() -> Slot<N> {
        let key = FragKey { src: [0; N], dst: [0; N], ident: 0, zone: 0, proto: 0, outside: false };
        Slot { key, new_src: [0; N], new_dst: [0; N], deadline: 0 }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Fragments<const N: usize> {
    slots: Vec<Slot<N>>,
}

impl<const N: usize> Fragments<N> {
    pub(crate) fn new() -> Fragments<N> {
        Fragments { slots: vec![Slot::default(); SLOTS] }
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        self.slots.len() * size_of::<Slot<N>>()
    }

    fn slot(hasher: &Hasher, key: &FragKey<N>) -> usize {
        let tuple = Tuple { src: key.src, dst: key.dst, sport: (key.ident >> 16) as u16, dport: key.ident as u16 };
        let hash = hasher.tuple(key.zone, key.proto, &tuple) ^ u64::from(key.outside);
        (hash >> 40) as usize & (SLOTS - 1)
    }

    /// Remembers that the datagram `key` was translated to `new_src` →
    /// `new_dst` at `tick`.
    pub(crate) fn record(&mut self, hasher: &Hasher, key: FragKey<N>, new_src: [u8; N], new_dst: [u8; N], tick: u32) {
        let at = Self::slot(hasher, &key);
        if let Some(slot) = self.slots.get_mut(at) {
            *slot = Slot { key, new_src, new_dst, deadline: tick.saturating_add(FRAG_TIMEOUT).max(1) };
        }
    }

    /// The addresses the datagram `key` was translated to, if recorded and
    /// alive at `tick`.
    pub(crate) fn lookup(&self, hasher: &Hasher, key: &FragKey<N>, tick: u32) -> Option<([u8; N], [u8; N])> {
        let slot = self.slots.get(Self::slot(hasher, key))?;
        (slot.deadline > tick && slot.key == *key).then_some((slot.new_src, slot.new_dst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_lookup_expire() {
        let hasher = Hasher::new(Some(9));
        let mut frags: Fragments<4> = Fragments::new();
        let key = FragKey { src: [10, 0, 0, 2], dst: [198, 51, 100, 1], ident: 77, zone: 0, proto: 17, outside: false };
        assert_eq!(frags.lookup(&hasher, &key, 0), None);
        frags.record(&hasher, key, [203, 0, 113, 10], key.dst, 100);
        assert_eq!(frags.lookup(&hasher, &key, 129), Some(([203, 0, 113, 10], key.dst)));
        assert_eq!(frags.lookup(&hasher, &key, 130), None);
        assert_eq!(frags.lookup(&hasher, &FragKey { outside: true, ..key }, 100), None);
        assert_eq!(frags.lookup(&hasher, &FragKey { ident: 78, ..key }, 100), None);
    }
}
