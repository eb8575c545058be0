//! Container networks on the kernel, as Docker builds them: a bridge per
//! network with the gateway's address, a veth per container and network,
//! IPAM, masquerade and isolation rules, published ports served by
//! wharf-proxy, and the `wharf network` commands.
//!
//! - [`ipam`]: subnets, the address pool, network records and address allocation;
//! - [`links`]: bridges, veths, addresses and routes (iproute2);
//! - [`firewall`]: wharf's iptables chains;
//! - [`ports`]: `-p` and the proxy's `-map` SPECs;
//! - [`stage`]: the bridge network stage of a container's start and stop;
//! - [`cli`]: `wharf network ...` and `wharf port`.

pub mod cli;
pub mod firewall;
pub mod ipam;
pub mod links;
pub mod ports;
pub mod stage;
