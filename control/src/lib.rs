//! wharf's control plane: what a container is and how it is wired into the
//! data plane. For now it holds the command-line interface; namespaces,
//! networks, IPAM, DNS and the runc runtime land here as they are built.

#![forbid(unsafe_code)]

pub mod cli;
