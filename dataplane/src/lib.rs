//! wharf's data plane: packets only, nothing of containers.
//!
//! - [`wire`]: zero-copy views and owned representations of every header the
//!   VTEP and the NAT engine touch, from Ethernet to VXLAN.
//! - [`gso`]: segmentation of TSO/USO superframes from a TAP device with
//!   offloads, and completion of partial checksums (sans-IO).
//! - [`gro`]: coalescing of decapsulated TCP segments into superframes for a
//!   TAP device with offloads, the inverse of [`gso`] (sans-IO).
//! - [`vxlan`]: the VTEP core — FDB, encapsulation, decapsulation,
//!   neighbour suppression — driven with bytes and `now` (sans-IO).
//! - [`nat`]: connection tracking, masquerade and published ports with
//!   incremental checksum rewriting, IPv4 and IPv6 (sans-IO).
//! - [`neighbor`]: ARP resolution for a userspace router: a bounded table,
//!   retries, packets held while resolving (sans-IO).
//! - [`proxy`]: `wharf-proxy`, the docker-proxy drop-in: TCP and UDP port
//!   forwarding in one event loop.
//! - [`sys`]: the only place for `unsafe` and libc: TAP, AF_PACKET, batched
//!   UDP.
//!
//! Every parser in this crate has a checked constructor and never panics on
//! any input; the fuzz targets in `fuzz/` exercise each of them.

#![deny(unsafe_code)]

/// `eprintln!` for a long-running process: a line that cannot be written
/// (stderr on a full disk, a pipe nobody reads any more) is lost, where
/// `eprintln!` would panic and take the process with it.
#[macro_export]
macro_rules! stderr_line {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!`, as [`stderr_line!`] is `eprintln!`.
#[macro_export]
macro_rules! stderr_text {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::write!(::std::io::stderr(), $($arg)*);
    }};
}

/// `println!`, as [`stderr_line!`] is `eprintln!`.
#[macro_export]
macro_rules! stdout_line {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let mut out = ::std::io::stdout().lock();
        let _ = ::std::writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

mod counters;
pub mod gro;
pub mod gso;
pub mod nat;
pub mod neighbor;
pub mod proxy;
#[allow(unsafe_code)]
pub mod sys;
pub mod vxlan;
pub mod wire;
