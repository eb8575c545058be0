//! The forwarding database: inner MAC → remote VTEP, per VNI. Static entries
//! come from the configuration; learned ones from the outer source address of
//! received frames, refreshed by traffic, moved when a MAC turns up behind
//! another VTEP, and aged. The flood list (the kernel's all-zeros entries) is
//! not here: it is the VNI's `remotes`.
//!
//! One table serves every VNI, keyed by (VNI index, MAC), so the cap
//! (`max_fdb_entries`) and the memory are the VTEP's, allocated once.
//!
//! What this module does not do: decide when to learn or what a static entry
//! that disagrees with traffic means (see `vtep`).

use core::net::IpAddr;
use std::time::{Duration, Instant};

use super::table::{AgeingTable, EntryKind, Learn};
use crate::wire::vxlan::Vni;
use crate::wire::EthernetAddress;

/// A VNI's position in the configuration: how the tables name it.
pub(crate) type VniIndex = u16;

/// One FDB entry, as [`crate::vxlan::Vtep::fdb`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FdbEntry {
    pub vni: Vni,
    pub mac: EthernetAddress,
    pub remote: IpAddr,
    pub kind: EntryKind,
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct Fdb {
    table: AgeingTable<u64, IpAddr>,
}

/// The table key: the MAC in the low 48 bits (first octet lowest, as it
/// lies in memory, so building the key is two loads), the VNI index in the
/// top 16.
#[inline(always)]
fn key(vni: VniIndex, mac: EthernetAddress) -> u64 {
    let [a, b, c, d, e, f] = mac.0;
    u64::from(u32::from_le_bytes([a, b, c, d])) | u64::from(u16::from_le_bytes([e, f])) << 32 | u64::from(vni) << 48
}

fn unkey(key: u64) -> (VniIndex, EthernetAddress) {
    let b = key.to_le_bytes();
    (u16::from_le_bytes([b[6], b[7]]), EthernetAddress([b[0], b[1], b[2], b[3], b[4], b[5]]))
}

impl Fdb {
    /// An FDB holding `statics`, with room for `max_learned` learned entries
    /// living `ageing` without traffic.
    pub(crate) fn new(
        statics: impl IntoIterator<Item = (VniIndex, EthernetAddress, IpAddr)>,
        max_learned: usize,
        ageing: Duration,
    ) -> Fdb {
        let statics = statics.into_iter().map(|(vni, mac, remote)| (key(vni, mac), remote));
        Fdb { table: AgeingTable::new(statics, max_learned, ageing) }
    }

    /// The remote behind `mac` in VNI `vni`.
    #[inline(always)]
    pub(crate) fn lookup(&self, vni: VniIndex, mac: EthernetAddress) -> Option<IpAddr> {
        self.table.get(&key(vni, mac))
    }

    /// Whether the entry for `mac` in VNI `vni` already says `remote`; if
    /// it does and was learned, it is refreshed at `now`. The common case of
    /// learning, in one lookup; otherwise call [`Fdb::learn`].
    #[inline(always)]
    pub(crate) fn confirm(&mut self, vni: VniIndex, mac: EthernetAddress, remote: &IpAddr, now: Instant) -> bool {
        self.table.confirm(&key(vni, mac), remote, now)
    }

    /// Learns that `mac` in VNI `vni` is behind `remote`, at `now`. A new
    /// or moved entry must pass `admit`.
    #[inline(always)]
    pub(crate) fn learn(
        &mut self,
        vni: VniIndex,
        mac: EthernetAddress,
        remote: IpAddr,
        now: Instant,
        admit: impl FnOnce(&IpAddr) -> bool,
    ) -> Learn<IpAddr> {
        self.table.learn(key(vni, mac), remote, now, admit)
    }

    /// Ages out learned entries; returns how many went.
    pub(crate) fn expire(&mut self, now: Instant) -> usize {
        self.table.expire(now)
    }

    /// Every entry, with the VNI index.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (VniIndex, EthernetAddress, IpAddr, EntryKind)> + '_ {
        self.table.iter().map(|(k, remote, kind)| {
            let (vni, mac) = unkey(k);
            (vni, mac, remote, kind)
        })
    }

    /// How many learned entries there are.
    pub(crate) fn learned(&self) -> usize {
        self.table.learned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    const MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3));

    #[test]
    fn keys_round_trip_and_separate_vnis() {
        assert_eq!(key(0x0102, MAC), 0x0102_5634_1200_5452);
        assert_eq!(unkey(key(0xffff, MAC)), (0xffff, MAC));
        let t0 = Instant::now();
        let mut fdb = Fdb::new([(0, MAC, A)], 4, Duration::from_secs(1));
        assert_eq!(fdb.lookup(0, MAC), Some(A));
        assert_eq!(fdb.lookup(1, MAC), None);
        assert_eq!(fdb.learn(1, MAC, B, t0, |_| true), Learn::Learned);
        assert_eq!(fdb.lookup(1, MAC), Some(B));
        assert_eq!(fdb.learn(0, MAC, B, t0, |_| true), Learn::Static(A));
        assert_eq!(fdb.learned(), 1);
        let mut all: Vec<_> = fdb.iter().collect();
        all.sort_unstable_by_key(|e| e.0);
        assert_eq!(all, [(0, MAC, A, EntryKind::Static), (1, MAC, B, EntryKind::Learned)]);
        assert_eq!(fdb.expire(t0 + Duration::from_secs(1)), 1);
        assert_eq!(fdb.lookup(1, MAC), None);
    }
}
