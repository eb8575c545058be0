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
//! Each pool reserves 1.3 MB (IPv4) or 2.1 MB (IPv6) at construction, zeroed
//! and resident only as ports are used: an owner record per UDP port (12 or
//! 24 bytes) and an index from inside endpoint to port, open addressing over
//! 2^17 slots of 32 bits: the port (0, never handed out, marks an empty
//! slot) and 16 bits of the endpoint's hash, so that a probe reads the owner
//! record of a port only when the tags match — another endpoint's record is
//! a cache miss of its own, about one in 65,536 of them read for nothing.
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
/// resident), a record of `2 + N / 4` words per port, all of it in one
/// cache line: the references, the inside port (high half) and zone (low
/// half), and the inside address.
#[derive(Debug, Clone)]
pub(crate) struct Pool<const N: usize> {
    pub(crate) addr: [u8; N],
    /// Published ports: a bitmap each for TCP and UDP.
    reserved: [Vec<u64>; 2],
    owners: Vec<u32>,
    /// Inside endpoint → port: `tag << 16 | port`.
    by_inside: Vec<u32>,
    mappings: usize,
}

/// An inside endpoint (zone, address, port) with the home slot of its
/// mapping in the endpoint index, hashed once for all the look-ups of a
/// packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Endpoint<const N: usize> {
    zone: u16,
    addr: [u8; N],
    port: u16,
    home: usize,
    /// Bits of the hash apart from `home`'s, kept in the index slot.
    tag: u16,
}

impl<const N: usize> Endpoint<N> {
    #[inline(always)]
    pub(crate) fn new(hasher: &Hasher, zone: u16, addr: &[u8; N], port: u16) -> Endpoint<N> {
        let hash = hasher.endpoint(zone, 17, addr, port, 0x6d61_7070);
        let home = (hash >> 40) as usize & (INDEX_SLOTS - 1);
        Endpoint { zone, addr: *addr, port, home, tag: hash as u16 }
    }
}

/// Words per owner record.
const fn stride<const N: usize>() -> usize {
    2 + N / 4
}

impl<const N: usize> Pool<N> {
    pub(crate) fn new(addr: [u8; N]) -> Pool<N> {
        Pool {
            addr,
            reserved: [vec![0; 1024], vec![0; 1024]],
            owners: vec![0; 65536 * stride::<N>()],
            by_inside: vec![0; INDEX_SLOTS],
            mappings: 0,
        }
    }

    /// Bytes allocated.
    pub(crate) fn memory_bytes(&self) -> usize {
        2 * 1024 * 8 + self.owners.len() * 4 + self.by_inside.len() * 4
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
        self.record(port).first().copied().unwrap_or(0)
    }

    /// The inside endpoint holding UDP port `held`: (zone, address, port).
    fn holder(&self, held: u16) -> (u16, [u8; N], u16) {
        let record = self.record(held);
        let ports = record.get(1).copied().unwrap_or(0);
        let mut addr = [0u8; N];
        for (bytes, word) in addr.chunks_exact_mut(4).zip(record.iter().skip(2)) {
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
    fn held_by(&self, held: u16, e: &Endpoint<N>) -> bool {
        self.refs(held) > 0 && self.holder(held) == (e.zone, e.addr, e.port)
    }

    /// Starts loading what a new mapping for inside endpoint `e` will read:
    /// its index slot and the record of the port it would keep.
    #[inline(always)]
    pub(crate) fn prefetch(&self, e: &Endpoint<N>) {
        if let Some(slot) = self.by_inside.get(e.home) {
            crate::sys::prefetch(slot);
        }
        if let Some(refs) = self.owners.get(usize::from(e.port) * stride::<N>()) {
            crate::sys::prefetch(refs);
        }
    }

    /// The port mapped to inside endpoint `e`.
    pub(crate) fn mapping(&self, e: &Endpoint<N>) -> Option<u16> {
        self.find_mapping(e).ok()
    }

    /// [`Pool::mapping`], or where its search ended: the empty index slot
    /// that [`Pool::claim_at`] fills for `e` if nothing is claimed
    /// meanwhile.
    #[inline(always)]
    pub(crate) fn find_mapping(&self, e: &Endpoint<N>) -> Result<u16, usize> {
        let mut i = e.home;
        for _ in 0..INDEX_SLOTS {
            let Some(&slot) = self.by_inside.get(i) else { return Err(i) };
            if slot == 0 {
                return Err(i);
            }
            let held = slot as u16;
            if (slot >> 16) as u16 == e.tag && self.held_by(held, e) {
                return Ok(held);
            }
            i = (i + 1) & (INDEX_SLOTS - 1);
        }
        Err(i)
    }

    /// Gives free UDP port `held` to inside endpoint `e`, with one
    /// reference.
    pub(crate) fn claim(&mut self, e: &Endpoint<N>, held: u16) {
        if self.udp_free(held) {
            self.claim_at(e, held, e.home);
        }
    }

    /// [`Pool::claim`] of a port known to be free ([`Pool::udp_free`]),
    /// with the index searched from slot `from` on: the end of a
    /// [`Pool::find_mapping`] that found none (the slots before it in the
    /// run are taken), or the endpoint's home slot.
    #[inline(always)]
    pub(crate) fn claim_at(&mut self, e: &Endpoint<N>, held: u16, from: usize) {
        let at = usize::from(held) * stride::<N>();
        let Some(record) = self.owners.get_mut(at..at + stride::<N>()) else { return };
        record[0] = 1;
        record[1] = u32::from(e.port) << 16 | u32::from(e.zone);
        for (word, bytes) in record[2..].iter_mut().zip(e.addr.chunks_exact(4)) {
            *word = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        self.mappings += 1;
        let mut i = from & (INDEX_SLOTS - 1);
        for _ in 0..INDEX_SLOTS {
            match self.by_inside.get_mut(i) {
                Some(slot) if *slot == 0 => {
                    *slot = u32::from(e.tag) << 16 | u32::from(held);
                    return;
                }
                _ => i = (i + 1) & (INDEX_SLOTS - 1),
            }
        }
    }

    /// One more connection uses the mapping of UDP port `held`.
    pub(crate) fn acquire(&mut self, held: u16) {
        if let Some(refs) = self.owners.get_mut(usize::from(held) * stride::<N>()) {
            *refs = refs.saturating_add(1);
        }
    }

    /// One connection fewer uses the mapping of UDP port `held`; the last
    /// one frees the port.
    pub(crate) fn release(&mut self, hasher: &Hasher, held: u16) {
        let Some(refs) = self.owners.get_mut(usize::from(held) * stride::<N>()) else { return };
        if *refs == 0 {
            return;
        }
        *refs -= 1;
        if *refs > 0 {
            return;
        }
        let (zone, addr, port) = self.holder(held);
        self.mappings -= 1;
        // Find the slot, then shift the rest of its run back.
        let mut hole = Endpoint::new(hasher, zone, &addr, port).home;
        let mut found = false;
        for _ in 0..INDEX_SLOTS {
            match self.by_inside.get(hole) {
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
            let slot = self.by_inside.get(j).copied().unwrap_or(0);
            if slot == 0 || j == hole {
                break;
            }
            let (zone, addr, port) = self.holder(slot as u16);
            let home = Endpoint::new(hasher, zone, &addr, port).home;
            if (j.wrapping_sub(home) & (INDEX_SLOTS - 1)) >= (j.wrapping_sub(hole) & (INDEX_SLOTS - 1)) {
                self.by_inside[hole] = slot;
                hole = j;
            }
        }
        self.by_inside[hole] = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_are_found_shared_and_freed() {
        let hasher = Hasher::new(Some(7));
        let mut pool: Pool<4> = Pool::new([203, 0, 113, 10]);
        pool.reserve(true, 5353, 5354);
        assert!(pool.is_reserved(true, 5353) && pool.is_reserved(true, 5354) && !pool.is_reserved(false, 5353));
        assert!(!pool.udp_free(5353) && !pool.udp_free(0) && pool.udp_free(5355));

        let a = [10, 0, 0, 2];
        assert_eq!(pool.mapping(&Endpoint::new(&hasher, 0, &a, 4000)), None);
        pool.claim(&Endpoint::new(&hasher, 0, &a, 4000), 4000);
        assert_eq!(pool.mapping(&Endpoint::new(&hasher, 0, &a, 4000)), Some(4000));
        assert_eq!(pool.mapping(&Endpoint::new(&hasher, 1, &a, 4000)), None, "another zone");
        assert!(!pool.udp_free(4000));
        pool.acquire(4000);
        pool.release(&hasher, 4000);
        assert_eq!(pool.mapping(&Endpoint::new(&hasher, 0, &a, 4000)), Some(4000), "one reference left");
        pool.release(&hasher, 4000);
        assert_eq!(pool.mapping(&Endpoint::new(&hasher, 0, &a, 4000)), None);
        assert!(pool.udp_free(4000));
        assert_eq!(pool.mappings(), 0);
    }

    #[test]
    fn many_mappings_survive_removals() {
        let hasher = Hasher::new(Some(8));
        let mut pool: Pool<16> = Pool::new([0x20; 16]);
        for n in 1..=60000u16 {
            let addr = [(n >> 8) as u8; 16];
            pool.claim(&Endpoint::new(&hasher, n % 3, &addr, n), n);
        }
        assert_eq!(pool.mappings(), 60000);
        for n in (1..=60000u16).filter(|n| n % 3 == 0) {
            pool.release(&hasher, n);
        }
        for n in 1..=60000u16 {
            let addr = [(n >> 8) as u8; 16];
            let expected = if n % 3 == 0 { None } else { Some(n) };
            assert_eq!(pool.mapping(&Endpoint::new(&hasher, n % 3, &addr, n)), expected, "{n}");
        }
    }
}
