//! The VXLAN tunnel endpoint (RFC 7348), sans-IO and wire-compatible with the
//! Linux kernel's `vxlan` device: encapsulation of a local port's frames
//! into VXLAN datagrams for the right remote VTEPs, decapsulation of received
//! datagrams into frames for the right local port, the forwarding database
//! that maps inner MACs to remotes (static, learned, aged, capped, with a
//! flood list for head-end replication), neighbour suppression (`proxy`),
//! and path-MTU replies for frames too big for the underlay.
//!
//! [`Vtep`] takes bytes in the caller's buffer and `now`, and returns
//! decisions ([`Encap`], [`Decap`]); the runner does the I/O and calls
//! [`Vtep::expire`] about once a second. Every frame that is not forwarded,
//! answered or delivered is a counted drop with a [`DropReason`]; [`Stats`]
//! holds the counters. Headers are read and written with [`crate::wire`].
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr, SocketAddr};
//! use std::time::Instant;
//! use dataplane::vxlan::{Decap, Encap, Vni, VniConfig, Vtep, VtepConfig, HEADROOM};
//!
//! let local = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
//! let remote = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
//! let vni = Vni::new(42).unwrap();
//! let mut vtep = Vtep::new(VtepConfig::new(local).vni(VniConfig::new(vni, 0).remote(remote))).unwrap();
//!
//! // A broadcast frame from port 0, read into a buffer after HEADROOM bytes.
//! let mut buf = [0u8; 2048];
//! let frame = HEADROOM..HEADROOM + 60;
//! buf[frame.start..frame.start + 6].fill(0xff);
//! buf[frame.start + 6..frame.start + 12].copy_from_slice(&[0x52, 0x54, 0, 0, 0, 1]);
//! buf[frame.start + 12..frame.start + 14].copy_from_slice(&[0x08, 0x06]);
//! let Encap::Forward(forward) = vtep.encap(0, &mut buf, frame, Instant::now()) else { panic!() };
//! for &to in vtep.destinations(&forward.to) {
//!     // send buf[forward.datagram] to (to, 4789) from source port forward.src_port
//!     assert_eq!(to, remote);
//! }
//!
//! // What a remote VTEP sends back is decapsulated for port 0.
//! let from = SocketAddr::new(remote, 50000);
//! let datagram = forward.datagram.clone();
//! match vtep.decap(from, &buf, datagram, Instant::now()) {
//!     Decap::Deliver { port, .. } => assert_eq!(port, 0),
//!     Decap::Drop(reason) => panic!("{reason}"),
//! }
//! ```
//!
//! Where this VTEP differs from the kernel's, on purpose:
//!
//! - An ARP request or neighbour solicitation for an address missing from
//!   the neighbour table is flooded, not dropped.
//! - `max_fdb_entries` caps the whole VTEP, not each VNI.
//! - Inner frames with a VLAN tag are dropped in both directions unless
//!   `allow_inner_vlan` (RFC 7348 §6.1); the kernel carries them.
//! - Source ports come from `MIN..MAX` like the kernel's, but from our own
//!   (unkeyed) flow hash: ports differ from the kernel's for the same flow.
//!
//! What this module does not do: sockets, TAP devices, threads, timers (see
//! `sys` and the runner), multicast underlays, or VXLAN extensions (GPE,
//! GBP): their reserved bits are ignored.

mod config;
mod fdb;
mod flow;
mod neigh;
mod pmtu;
mod stats;
pub(crate) mod table;
mod vtep;

pub use config::{
    ConfigError, Family, PortId, VniConfig, VtepConfig, DEFAULT_AGEING, DEFAULT_MAX_FDB_ENTRIES,
    DEFAULT_MAX_NEIGHBOURS, DEFAULT_SRC_PORT_RANGE, DEFAULT_TTL, DEFAULT_UNDERLAY_MTU, MAX_AGEING, MAX_TABLE_ENTRIES,
};
pub use fdb::FdbEntry;
pub use neigh::NeighbourEntry;
pub use stats::{DropReason, Stats};
pub use table::EntryKind;
pub use vtep::{Decap, Destinations, Encap, FloodList, Forward, Reply, ReplyKind, Vtep, HEADROOM};

pub use crate::wire::vxlan::Vni;
