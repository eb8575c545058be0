//! Port bookkeeping for one outside address: the ports published on it
//! (never handed to masqueraded connections), and the UDP mappings that make
//! masquerade endpoint-independent (RFC 4787 REQ-1): an inside address and
//! port keep one outside port for as long as any of their UDP connections
//! lives, whatever the destination, and that port serves no other inside
//! endpoint meanwhile.
//!
//! TCP and ICMP echo are endpoint-dependent as in netfilter: a port is
//! free for a new connection when the connection's reply tuple is, which the
//! caller checks against the connection table; several inside endpoints can
//! share an outside port towards different destinations.
//!
//! Each pool reserves 1.5 MB (IPv4) or 2.5 MB (IPv6) at construction, zeroed
//! and resident only as ports are used: an owner record per UDP port (16 or
//! 32 bytes, so that none straddles two cache lines) and an index of the
//! mappings that could not keep their inside port, open addressing over
//! 2^17 slots of 32 bits: the port (0, never handed out, marks an empty
//! slot) and 16 bits of the endpoint's hash, so that a probe reads the owner
//! record of a port only when the tags match — another endpoint's record is
//! a cache miss of its own, about one in 65,536 of them read for nothing.
//!
//! Most mappings keep the inside port, and those are found without the
//! index: inside endpoint (zone, address, port P) holds outside port P if
//! P's owner record names it; otherwise it holds another port only if P's
//! record counts a mapping moved away from P, and then the index has it. A
//! new flow of an endpoint not seen before thus reads one record.
//!
//! What this module does not do: choose the candidate ports (see
//! `engine`), or know about connections.

use super::table::Hasher;

/// Slots of the endpoint index: twice the ports, so the load stays at most
/// one half.
const INDEX_SLOTS: usize = 1 << 17;

/// See the module documentation.
///
/// The owner records live in one zero-initialised array of 32-bit words
/// (so it is allocated zeroed, and only the pages of ports in use become
/// resident), a record of 4 (IPv4) or 8 (IPv6) words per port, all of it
/// in one cache line: the references, the inside port (high half) and zone
/// (low half), how many mappings of inside endpoints with this port number
/// hold another port (`moved`), and the inside address.
#[derive(Debug, Clone)]
pub(crate) struct Pool<const N: usize> {
    pub(crate) addr: [u8; N],
    hasher: Hasher,
    /// Published ports: a bitmap each for TCP and UDP.
    reserved: [Vec<u64>; 2],
    owners: Vec<u32>,
    /// Inside endpoint → port, for the mappings that did not keep the
    /// endpoint's port: `tag << 16 | port`.
    moved_index: Vec<u32>,
    mappings: usize,
}

/// An inside endpoint: zone, address, port.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Endpoint<const N: usize> {
    zone: u16,
    addr: [u8; N],
    port: u16,
}

impl<const N: usize> Endpoint<N> {
    #[inline(always)]
    pub(crate) fn new(zone: u16, addr: &[u8; N], port: u16) -> Endpoint<N> {
        Endpoint { zone, addr: *addr, port }
    }
}

/// Where an endpoint's moved mapping goes in the index: its home slot, and
/// the bits of its hash kept in the slot (the tag).
fn index_slot<const N: usize>(hasher: &Hasher, e: &Endpoint<N>) -> (usize, u16) {
    let hash = hasher.endpoint(e.zone, 17, &e.addr, e.port, 0x6d61_7070);
    ((hash >> 40) as usize & (INDEX_SLOTS - 1), hash as u16)
}

/// Words per owner record: 3 and the address, rounded up to a power of
/// two.
const fn stride<const N: usize>() -> usize {
    (3 + N / 4).next_power_of_two()
}

/// Where in a record: the references, the holder's port and zone, the
/// mappings moved away from this port number, the holder's address.
const REFS: usize = 0;
const HOLDER: usize = 1;
const MOVED: usize = 2;
const ADDR: usize = 3;

impl<const N: usize> Pool<N> {
    pub(crate) fn new(addr: [u8; N], hasher: Hasher) -> Pool<N> {
        Pool {
            addr,
            hasher,
            reserved: [vec![0; 1024], vec![0; 1024]],
            owners: vec![0; 65536 * stride::<N>()],
            moved_index: vec![0; INDEX_SLOTS],
            mappings: 0,
        }
    }

    /// Bytes allocated.
    pub(crate) fn memory_bytes(&self) -> usize {
        2 * 1024 * 8 + self.owners.len() * 4 + self.moved_index.len() * 4
    }

    /// How many UDP mappings there are.
    pub(crate) fn mappings(&self) -> usize {
        self.mappings
    }

    fn bitmap(&self, udp: bool) -> &[u64] {
        &self.reserved[usize::from(udp)]
    }

    /// Marks `lo..=hi` as published for TCP or UDP.
    pub(crate) fn reserve(&mut self, udp: bool, lo: u16, hi: u16) {
        let bitmap = &mut self.reserved[usize::from(udp)];
        for port in lo..=hi {
            if let Some(word) = bitmap.get_mut(usize::from(port / 64)) {
                *word |= 1 << (port % 64);
            }
        }
    }

    /// Whether `port` is published for TCP (`udp` false) or UDP.
    #[inline]
    pub(crate) fn is_reserved(&self, udp: bool, port: u16) -> bool {
        self.bitmap(udp).get(usize::from(port / 64)).is_some_and(|word| word & (1 << (port % 64)) != 0)
    }

    /// The owner record of UDP `port`.
    #[inline(always)]
    fn record(&self, port: u16) -> &[u32] {
        let at = usize::from(port) * stride::<N>();
        self.owners.get(at..at + stride::<N>()).unwrap_or_default()
    }

    fn refs(&self, port: u16) -> u32 {
        self.record(port).get(REFS).copied().unwrap_or(0)
    }

    /// The inside endpoint holding UDP port `held`: (zone, address, port).
    fn holder(&self, held: u16) -> (u16, [u8; N], u16) {
        let record = self.record(held);
        let ports = record.get(HOLDER).copied().unwrap_or(0);
        let mut addr = [0u8; N];
        for (bytes, word) in addr.chunks_exact_mut(4).zip(record.iter().skip(ADDR)) {
            bytes.copy_from_slice(&word.to_ne_bytes());
        }
        (ports as u16, addr, (ports >> 16) as u16)
    }

    /// Whether UDP `port` can start a new mapping: not 0, not published, not
    /// held.
    #[inline(always)]
    pub(crate) fn udp_free(&self, port: u16) -> bool {
        port != 0 && !self.is_reserved(true, port) && self.refs(port) == 0
    }

    /// Whether UDP `held` is held by inside endpoint `e`.
    #[inline(always)]
    fn held_by(&self, held: u16, e: &Endpoint<N>) -> bool {
        self.refs(held) > 0 && self.holder(held) == (e.zone, e.addr, e.port)
    }

    /// Starts loading what a new mapping for inside endpoint `e` will read:
    /// the record of its port.
    #[inline(always)]
    pub(crate) fn prefetch(&self, e: &Endpoint<N>) {
        if let Some(refs) = self.owners.get(usize::from(e.port) * stride::<N>()) {
            crate::sys::prefetch(refs);
        }
    }

    /// The port mapped to inside endpoint `e`.
    pub(crate) fn mapping(&self, e: &Endpoint<N>) -> Option<u16> {
        self.find_mapping(e).ok()
    }

    /// [`Pool::mapping`], or where its search of the index ended (`None`
    /// if there was none to make): the empty slot that [`Pool::claim_at`]
    /// fills if `e` gets a port other than its own and nothing is claimed
    /// meanwhile.
    #[inline(always)]
    pub(crate) fn find_mapping(&self, e: &Endpoint<N>) -> Result<u16, Option<usize>> {
        if self.held_by(e.port, e) {
            return Ok(e.port);
        }
        if self.record(e.port).get(MOVED).is_none_or(|&moved| moved == 0) {
            return Err(None);
        }
        let (mut i, tag) = index_slot(&self.hasher, e);
        for _ in 0..INDEX_SLOTS {
            let Some(&slot) = self.moved_index.get(i) else { break };
            if slot == 0 {
                break;
            }
            let held = slot as u16;
            if (slot >> 16) as u16 == tag && self.held_by(held, e) {
                return Ok(held);
            }
            i = (i + 1) & (INDEX_SLOTS - 1);
        }
        Err(Some(i))
    }

    /// Gives free UDP port `held` to inside endpoint `e`, with one
    /// reference.
    pub(crate) fn claim(&mut self, e: &Endpoint<N>, held: u16) {
        if self.udp_free(held) {
            self.claim_at(e, held, None);
        }
    }

    /// [`Pool::claim`] of a port known to be free ([`Pool::udp_free`]) to
    /// an endpoint known to have no mapping, with the index (if `held` is
    /// not `e`'s own port) searched from slot `from` on: the end of a
    /// [`Pool::find_mapping`] that found none (the slots before it in the
    /// run are taken), or (`None`) the endpoint's home slot.
    #[inline(always)]
    pub(crate) fn claim_at(&mut self, e: &Endpoint<N>, held: u16, from: Option<usize>) {
        let at = usize::from(held) * stride::<N>();
        let Some(record) = self.owners.get_mut(at..at + stride::<N>()) else { return };
        record[REFS] = 1;
        record[HOLDER] = u32::from(e.port) << 16 | u32::from(e.zone);
        for (word, bytes) in record[ADDR..].iter_mut().zip(e.addr.chunks_exact(4)) {
            *word = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        self.mappings += 1;
        if held == e.port {
            return;
        }
        if let Some(moved) = self.owners.get_mut(usize::from(e.port) * stride::<N>() + MOVED) {
            *moved += 1;
        }
        let (home, tag) = index_slot(&self.hasher, e);
        let mut i = from.unwrap_or(home) & (INDEX_SLOTS - 1);
        for _ in 0..INDEX_SLOTS {
            match self.moved_index.get_mut(i) {
                Some(slot) if *slot == 0 => {
                    *slot = u32::from(tag) << 16 | u32::from(held);
                    return;
                }
                _ => i = (i + 1) & (INDEX_SLOTS - 1),
            }
        }
    }

    /// One more connection uses the mapping of UDP port `held`.
    pub(crate) fn acquire(&mut self, held: u16) {
        if let Some(refs) = self.owners.get_mut(usize::from(held) * stride::<N>() + REFS) {
            *refs = refs.saturating_add(1);
        }
    }

    /// One connection fewer uses the mapping of UDP port `held`; the last
    /// one frees the port.
    pub(crate) fn release(&mut self, held: u16) {
        let Some(refs) = self.owners.get_mut(usize::from(held) * stride::<N>() + REFS) else { return };
        if *refs == 0 {
            return;
        }
        *refs -= 1;
        if *refs > 0 {
            return;
        }
        let (zone, addr, port) = self.holder(held);
        self.mappings -= 1;
        if port == held {
            return;
        }
        if let Some(moved) = self.owners.get_mut(usize::from(port) * stride::<N>() + MOVED) {
            *moved = moved.saturating_sub(1);
        }
        // Find the slot, then shift the rest of its run back.
        let mut hole = index_slot(&self.hasher, &Endpoint::new(zone, &addr, port)).0;
        let mut found = false;
        for _ in 0..INDEX_SLOTS {
            match self.moved_index.get(hole) {
                Some(&slot) if slot != 0 && slot as u16 == held => {
                    found = true;
                    break;
                }
                Some(0) | None => break,
                Some(_) => hole = (hole + 1) & (INDEX_SLOTS - 1),
            }
        }
        if !found {
            return;
        }
        let mut j = hole;
        loop {
            j = (j + 1) & (INDEX_SLOTS - 1);
            let slot = self.moved_index.get(j).copied().unwrap_or(0);
            if slot == 0 || j == hole {
                break;
            }
            let (zone, addr, port) = self.holder(slot as u16);
            let home = index_slot(&self.hasher, &Endpoint::new(zone, &addr, port)).0;
            if (j.wrapping_sub(home) & (INDEX_SLOTS - 1)) >= (j.wrapping_sub(hole) & (INDEX_SLOTS - 1)) {
                self.moved_index[hole] = slot;
                hole = j;
            }
        }
        self.moved_index[hole] = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_are_found_shared_and_freed() {
        let hasher = Hasher::new(Some(7));
        let mut pool: Pool<4> = Pool::new([203, 0, 113, 10], hasher);
        pool.reserve(true, 5353, 5354);
        assert!(pool.is_reserved(true, 5353) && pool.is_reserved(true, 5354) && !pool.is_reserved(false, 5353));
        assert!(!pool.udp_free(5353) && !pool.udp_free(0) && pool.udp_free(5355));

        let a = [10, 0, 0, 2];
        assert_eq!(pool.mapping(&Endpoint::new(0, &a, 4000)), None);
        pool.claim(&Endpoint::new(0, &a, 4000), 4000);
        assert_eq!(pool.mapping(&Endpoint::new(0, &a, 4000)), Some(4000));
        assert_eq!(pool.mapping(&Endpoint::new(1, &a, 4000)), None, "another zone");
        assert!(!pool.udp_free(4000));
        pool.acquire(4000);
        pool.release(4000);
        assert_eq!(pool.mapping(&Endpoint::new(0, &a, 4000)), Some(4000), "one reference left");
        pool.release(4000);
        assert_eq!(pool.mapping(&Endpoint::new(0, &a, 4000)), None);
        assert!(pool.udp_free(4000));
        assert_eq!(pool.mappings(), 0);
    }

    #[test]
    fn a_mapping_that_moved_is_found_after_its_port_frees() {
        let hasher = Hasher::new(Some(9));
        let mut pool: Pool<4> = Pool::new([203, 0, 113, 10], hasher);
        let (a, b) = (Endpoint::new(0, &[10, 0, 0, 2], 4000), Endpoint::new(0, &[10, 0, 0, 3], 4000));
        pool.claim(&a, 4000);
        // B's port is A's: B moves to another.
        assert_eq!(pool.find_mapping(&b), Err(None), "nothing moved away from 4000 yet: no index search");
        pool.claim(&b, 4001);
        assert_eq!((pool.mapping(&a), pool.mapping(&b)), (Some(4000), Some(4001)));
        // A leaves: 4000 is free, and B keeps 4001 all the same (REQ-1).
        pool.release(4000);
        assert!(pool.udp_free(4000));
        assert_eq!(pool.mapping(&b), Some(4001));
        assert_eq!(pool.mapping(&a), None);
        // B leaves: nothing is left, in the records or the index.
        pool.release(4001);
        assert_eq!((pool.mapping(&b), pool.mappings()), (None, 0));
        assert_eq!(pool.find_mapping(&b), Err(None), "the count of moved mappings is back to 0");
        assert!(pool.moved_index.iter().all(|&slot| slot == 0));
    }

    #[test]
    fn kept_and_moved_mappings_mixed_survive_removals() {
        let hasher = Hasher::new(Some(10));
        let mut pool: Pool<16> = Pool::new([0x20; 16], hasher);
        // Endpoints 1..=20000 keep their port; endpoints 20001..=40000 share
        // the ports of the first and move to 30001 and up.
        let endpoint = |n: u16| {
            Endpoint::new(
                n % 3,
                &[(n >> 8) as u8, n as u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
                if n > 20000 { n - 20000 } else { n },
            )
        };
        let port = |n: u16| if n > 20000 { n + 10000 } else { n };
        for n in 1..=40000u16 {
            let e = endpoint(n);
            assert_eq!(pool.mapping(&e), None, "{n}");
            pool.claim(&e, port(n));
        }
        assert_eq!(pool.mappings(), 40000);
        for n in (1..=40000u16).filter(|n| n % 2 == 0) {
            pool.release(port(n));
        }
        for n in 1..=40000u16 {
            let expected = if n % 2 == 0 { None } else { Some(port(n)) };
            assert_eq!(pool.mapping(&endpoint(n)), expected, "{n}");
        }
        for n in (1..=40000u16).filter(|n| n % 2 == 1) {
            pool.release(port(n));
        }
        assert_eq!(pool.mappings(), 0);
        assert!(pool.moved_index.iter().all(|&slot| slot == 0));
        assert!((0..=u16::MAX).all(|port| pool.record(port).get(MOVED) == Some(&0)));
    }

    #[test]
    fn many_mappings_survive_removals() {
        let hasher = Hasher::new(Some(8));
        let mut pool: Pool<16> = Pool::new([0x20; 16], hasher);
        for n in 1..=60000u16 {
            let addr = [(n >> 8) as u8; 16];
            pool.claim(&Endpoint::new(n % 3, &addr, n), n);
        }
        assert_eq!(pool.mappings(), 60000);
        for n in (1..=60000u16).filter(|n| n % 3 == 0) {
            pool.release(n);
        }
        for n in 1..=60000u16 {
            let addr = [(n >> 8) as u8; 16];
            let expected = if n % 3 == 0 { None } else { Some(n) };
            assert_eq!(pool.mapping(&Endpoint::new(n % 3, &addr, n)), expected, "{n}");
        }
    }
}
