//! wharf's data plane: packets only, nothing of containers.
//!
//! - [`wire`]: zero-copy views and owned representations of every header the
//!   VTEP and the NAT engine touch, from Ethernet to VXLAN.
//!
//! Every parser in this crate has a checked constructor and never panics on
//! any input; the fuzz targets in `fuzz/` exercise each of them.

#![forbid(unsafe_code)]

pub mod wire;
