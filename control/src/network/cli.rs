//! `wharf network ls|create|inspect|rm|prune|connect|disconnect` and
//! `wharf port`, in Docker's words.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use clap::{Args, Subcommand};
use serde_json::json;

use super::firewall::{Firewall, Iptables};
use super::ipam::{format_mac, mac_for, parse_routes, BridgeOrigin, Network, NetworkRequest, NetworkStore};
use super::links::{Iproute2, Links};
use super::stage::{self, host_veth_name, DEFAULT_NETWORK};
use crate::container::report::table;
use crate::container::{Attachment, Container, ContainerStore, NetworkMode, Status};
use crate::state;

#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// List networks.
    Ls,
    /// Create a bridge network.
    Create(CreateArgs),
    /// Show networks as JSON, in docker network inspect's shape.
    Inspect {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove networks no container is attached to.
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove every user network no container is attached to.
    Prune {
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Attach a container to a network (a new interface if it runs).
    Connect {
        /// The container's IPv4 address on the network.
        #[arg(long)]
        ip: Option<Ipv4Addr>,
        /// Another name for the container on the network (repeatable).
        #[arg(long = "alias")]
        aliases: Vec<String>,
        network: String,
        container: String,
    },
    /// Detach a container from a network.
    Disconnect {
        #[arg(short = 'f', long)]
        force: bool,
        network: String,
        container: String,
    },
}

/// `wharf network create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The driver: bridge (the only one).
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    /// The subnet, e.g. 172.22.16.0/24 (default: the next free one from the pool).
    #[arg(long)]
    pub subnet: Option<String>,
    /// The gateway (default: the subnet's first address).
    #[arg(long)]
    pub gateway: Option<String>,
    /// Allocate container addresses from this part of the subnet.
    #[arg(long = "ip-range")]
    pub ip_range: Option<String>,
    /// No route out of the network.
    #[arg(long)]
    pub internal: bool,
    /// Driver options: com.docker.network.bridge.name=BR, mtu=N.
    #[arg(short = 'o', long = "opt", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    pub name: String,
}

/// The networks a container's attachments name, and the rest.
fn attached<'a>(containers: &'a [Container], network: &str) -> Vec<&'a Container> {
    containers.iter().filter(|c| c.networks.iter().any(|a| a.network == network)).collect()
}

/// Runs a `network` command; the caller holds no lock and has reconciled.
pub fn run(containers: &ContainerStore, command: NetworkCommand) -> Result<(), String> {
    let root = containers.root();
    let networks = NetworkStore::new(root);
    let links = Iproute2;
    let firewall = Iptables;
    {
        let _lock = root.lock().map_err(|e| e.to_string())?;
        for line in crate::container::lifecycle::reconcile_network_devices(containers, &links)? {
            eprintln!("wharf: {line}");
        }
    }
    match command {
        NetworkCommand::Ls => {
            let _lock = root.lock().map_err(|e| e.to_string())?;
            stage::ensure_default(&networks, &links)?;
            let mut rows = vec![["NETWORK ID".to_string(), "NAME".into(), "DRIVER".into(), "SCOPE".into()]];
            let mut all: Vec<(String, String, String)> = networks
                .list()
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|n| (n.short_id().to_string(), n.name, n.driver))
                .collect();
            all.push((builtin_id("host"), "host".into(), "host".into()));
            all.push((builtin_id("none"), "none".into(), "null".into()));
            all.sort_by(|a, b| a.1.cmp(&b.1));
            for (id, name, driver) in all {
                rows.push([id, name, driver, "local".into()]);
            }
            print!("{}", table(&rows));
        }
        NetworkCommand::Create(args) => {
            let _lock = root.lock().map_err(|e| e.to_string())?;
            stage::ensure_default(&networks, &links)?;
            if ["host", "none", DEFAULT_NETWORK].contains(&args.name.as_str()) || networks.get(&args.name).is_ok() {
                return Err(format!("network with name {} already exists", args.name));
            }
            let existing = networks.list().map_err(|e| e.to_string())?;
            let taken: Vec<_> = existing.iter().map(|n| n.subnet).collect();
            let routes = parse_routes(&links.routes_json()?).map_err(|e| e.to_string())?;
            let request = NetworkRequest {
                name: args.name.clone(),
                driver: Some(args.driver),
                subnet: args.subnet,
                gateway: args.gateway,
                ip_range: args.ip_range,
                internal: args.internal,
                options: args.options,
            };
            let id = state::random_id().map_err(|e| e.to_string())?;
            let mut network = Network::from_request(&request, id, &taken, &routes).map_err(|e| e.to_string())?;
            if existing.iter().any(|n| n.bridge == network.bridge) {
                return Err(format!("bridge {} is already used by another network", network.bridge));
            }
            // The bridge and the rules, then the record; undo on error.
            network.bridge_origin = links.ensure_bridge(&network, &root.owner_tag())?;
            let mut all = existing;
            all.push(network.clone());
            let made =
                firewall.sync(&stage::rules(&all)).and_then(|()| networks.save(&network).map_err(|e| e.to_string()));
            if let Err(e) = made {
                let _ = release_bridge(&links, &network);
                all.pop();
                let _ = firewall.sync(&stage::rules(&all));
                return Err(e);
            }
            println!("{}", network.id);
        }
        NetworkCommand::Inspect { networks: names } => {
            let all = containers.list().map_err(|e| e.to_string())?;
            let mut shown = Vec::new();
            let mut missing = None;
            for name in &names {
                match networks.find(name) {
                    Ok(network) => shown.push(inspect(&network, &all)),
                    Err(_) if name == "host" || name == "none" => shown.push(inspect_builtin(name, &all)),
                    Err(e) => missing = Some(e.to_string()),
                }
            }
            println!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
            if let Some(message) = missing {
                return Err(message);
            }
        }
        NetworkCommand::Rm { networks: names } => {
            let _lock = root.lock().map_err(|e| e.to_string())?;
            let all = containers.list().map_err(|e| e.to_string())?;
            // Each removed name is printed; the errors go to stderr, the
            // last one as the command's own.
            let mut failed: Option<String> = None;
            for name in &names {
                match remove(&networks, &links, &firewall, &all, name) {
                    Ok(()) => println!("{name}"),
                    Err(e) => {
                        if let Some(earlier) = failed.replace(e) {
                            eprintln!("wharf: {earlier}");
                        }
                    }
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
        }
        NetworkCommand::Prune { force: _ } => {
            let _lock = root.lock().map_err(|e| e.to_string())?;
            let all = containers.list().map_err(|e| e.to_string())?;
            println!("Deleted Networks:");
            for network in networks.list().map_err(|e| e.to_string())? {
                if network.name != DEFAULT_NETWORK && attached(&all, &network.name).is_empty() {
                    remove(&networks, &links, &firewall, &all, &network.name)?;
                    println!("{}", network.name);
                }
            }
        }
        NetworkCommand::Connect { ip, aliases, network, container } => {
            connect(containers, &networks, &links, &network, &container, ip, aliases)?;
            // The resolver learns the new names.
            let _lock = root.lock().map_err(|e| e.to_string())?;
            super::resolver::sync(root)?;
        }
        NetworkCommand::Disconnect { force: _, network, container } => {
            disconnect(containers, &networks, &links, &network, &container)?;
            let _lock = root.lock().map_err(|e| e.to_string())?;
            super::resolver::sync(root)?;
        }
    }
    Ok(())
}

/// A stable id for the built-in host and none networks.
fn builtin_id(name: &str) -> String {
    state::short_id(&format!("{:012x}", state::fnv1a(name.as_bytes()))).to_string()
}

fn remove(
    networks: &NetworkStore,
    links: &dyn Links,
    firewall: &dyn Firewall,
    containers: &[Container],
    name: &str,
) -> Result<(), String> {
    if name == "host" || name == "none" || name == DEFAULT_NETWORK {
        return Err(format!("{name} is a pre-defined network and cannot be removed"));
    }
    let network = networks.find(name).map_err(|e| e.to_string())?;
    if !attached(containers, &network.name).is_empty() {
        return Err(format!("error while removing network: network {} has active endpoints", network.name));
    }
    let rest: Vec<Network> =
        networks.list().map_err(|e| e.to_string())?.into_iter().filter(|n| n.name != network.name).collect();
    firewall.sync(&stage::rules(&rest))?;
    release_bridge(links, &network)?;
    networks.remove(&network.name).map_err(|e| e.to_string())
}

/// Undoes what the network did to its bridge: deletes a bridge wharf made;
/// takes wharf's gateway address off one that was there before.
fn release_bridge(links: &dyn Links, network: &Network) -> Result<(), String> {
    match network.bridge_origin {
        BridgeOrigin::Created => links.delete_bridge(&network.bridge),
        BridgeOrigin::Existed { added_address: true } => links.remove_address(network),
        BridgeOrigin::Existed { added_address: false } => Ok(()),
    }
}

/// The built-in `host` and `none` networks as `docker network inspect` shows
/// them: their containers are the running ones in that mode, with no
/// address (as Docker lists them).
fn inspect_builtin(name: &str, containers: &[Container]) -> serde_json::Value {
    let mode = if name == "host" { NetworkMode::Host } else { NetworkMode::None };
    let members: BTreeMap<_, _> = containers
        .iter()
        .filter(|c| c.network == mode && c.state.status.is_up())
        .map(|c| {
            let endpoint = json!({
                "Name": c.name,
                "EndpointID": builtin_id(&format!("{name}/{}", c.id)),
                "MacAddress": "",
                "IPv4Address": "",
                "IPv6Address": "",
            });
            (c.id.clone(), endpoint)
        })
        .collect();
    json!({
        "Name": name,
        "Id": builtin_id(name),
        "Scope": "local",
        "Driver": if name == "host" { "host" } else { "null" },
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": []},
        "Internal": false,
        "Attachable": false,
        "Containers": members,
        "Options": {},
        "Labels": {},
    })
}

/// One network as `docker network inspect` shows it.
pub fn inspect(network: &Network, containers: &[Container]) -> serde_json::Value {
    let mut attached_containers = BTreeMap::new();
    for container in attached(containers, &network.name) {
        let attachment = container.networks.iter().find(|a| a.network == network.name).expect("attached");
        attached_containers.insert(
            container.id.clone(),
            json!({
                "Name": container.name,
                "EndpointID": host_veth_name(&container.id, &network.id),
                "MacAddress": attachment.mac,
                "IPv4Address": format!("{}/{}", attachment.ip, network.subnet.len),
                "IPv6Address": "",
            }),
        );
    }
    let mut config = json!({"Subnet": network.subnet.to_string(), "Gateway": network.gateway.to_string()});
    if let Some(range) = network.ip_range {
        config["IPRange"] = json!(range.to_string());
    }
    let mut options = network.options.clone();
    options.insert("com.docker.network.bridge.name".into(), network.bridge.clone());
    options.insert("com.docker.network.driver.mtu".into(), network.mtu.to_string());
    json!({
        "Name": network.name,
        "Id": network.id,
        "Created": network.created,
        "Scope": "local",
        "Driver": network.driver,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [config]},
        "Internal": network.internal,
        "Attachable": false,
        "Containers": attached_containers,
        "Options": options,
        "Labels": {},
    })
}

fn connect(
    containers: &ContainerStore,
    networks: &NetworkStore,
    links: &dyn Links,
    network_name: &str,
    reference: &str,
    ip: Option<Ipv4Addr>,
    aliases: Vec<String>,
) -> Result<(), String> {
    let _lock = containers.root().lock().map_err(|e| e.to_string())?;
    let mut container = containers.find(reference).map_err(|e| e.to_string())?;
    let mut network = networks.find(network_name).map_err(|e| e.to_string())?;
    if !matches!(container.network, NetworkMode::Bridge(_)) {
        return Err(format!(
            "container {} is on network {}: only containers on bridge networks can connect to others",
            container.name,
            container.network.docker_word()
        ));
    }
    if container.networks.iter().any(|a| a.network == network.name) {
        return Err(format!("endpoint with name {} already exists in network {}", container.name, network.name));
    }
    if network.name == DEFAULT_NETWORK && (ip.is_some() || !aliases.is_empty()) {
        return Err("user specified IP address is supported on user defined networks only".into());
    }
    // The address is held before the kernel has anything that uses it, and
    // the container's record names the network last: an address held for a
    // container that does not name the network is what `reconcile`
    // releases, with its veth, if this is cut short.
    let address = network.allocate(&container.id, ip).map_err(|e| e.to_string())?;
    networks.save(&network).map_err(|e| e.to_string())?;
    let attachment =
        Attachment { network: network.name.clone(), ip: address, mac: format_mac(mac_for(address)), aliases };
    // Undoes the above, and the veth if it was made.
    let undo = |mut network: Network, id: &str, err: String| {
        let _ = links.delete_veth(&host_veth_name(id, &network.id));
        network.release(id);
        let _ = networks.save(&network);
        err
    };
    if container.state.status == Status::Running {
        if let Err(err) = add_interface(links, containers, &container, &network, &attachment) {
            return Err(undo(network, &container.id, err));
        }
    }
    container.networks.push(attachment);
    containers.save(&container).map_err(|e| undo(network, &container.id, e.to_string()))
}

/// Gives the running `container` its interface on `network`: the lowest
/// free ethN (a disconnect may have left a gap, eth1 alone).
fn add_interface(
    links: &dyn Links,
    containers: &ContainerStore,
    container: &Container,
    network: &Network,
    attachment: &Attachment,
) -> Result<(), String> {
    let pid = container.state.pid.ok_or("the running container has no pid recorded")?;
    let present = links.names_in(pid)?;
    let interface = (0..).map(|n| format!("eth{n}")).find(|name| !present.contains(name)).expect("unbounded");
    let endpoint = stage::endpoint(&container.id, interface, network, attachment, false);
    links.ensure_bridge(network, &containers.root().owner_tag())?;
    links.add_endpoint(pid, &endpoint)
}

fn disconnect(
    containers: &ContainerStore,
    networks: &NetworkStore,
    links: &dyn Links,
    network_name: &str,
    reference: &str,
) -> Result<(), String> {
    let _lock = containers.root().lock().map_err(|e| e.to_string())?;
    let mut container = containers.find(reference).map_err(|e| e.to_string())?;
    let mut network = networks.find(network_name).map_err(|e| e.to_string())?;
    if !container.networks.iter().any(|a| a.network == network.name) {
        return Err(format!("container {} is not connected to network {}", container.name, network.name));
    }
    if container.state.status == Status::Running {
        links.delete_veth(&host_veth_name(&container.id, &network.id))?;
    }
    // The record first: an address then still held for a container that no
    // longer names the network is what `reconcile` releases.
    container.networks.retain(|a| a.network != network.name);
    containers.save(&container).map_err(|e| e.to_string())?;
    network.release(&container.id);
    networks.save(&network).map_err(|e| e.to_string())
}

/// `wharf port NAME`: its published ports.
pub fn port_lines(container: &Container) -> Vec<String> {
    container.ports.iter().flat_map(|p| p.port_lines()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::test_container;
    use crate::network::links::Recording;
    use crate::state::Scratch;

    /// Network "one" on `subnet` and a running container "web" (pid 42) on
    /// another network, in a scratch root.
    fn web_and_network(tag: &str, subnet: &str) -> (Scratch, ContainerStore, NetworkStore, Network, Container) {
        let scratch = Scratch::new(tag);
        let root = scratch.root();
        let (containers, networks) = (ContainerStore::new(&root), NetworkStore::new(&root));
        let request = NetworkRequest { name: "one".into(), subnet: Some(subnet.into()), ..Default::default() };
        let network = Network::from_request(&request, "1".repeat(64), &[], &[]).unwrap();
        networks.save(&network).unwrap();
        let mut container = test_container(&"c".repeat(64), "web");
        container.network = NetworkMode::Bridge("other".into());
        container.state.status = Status::Running;
        container.state.pid = Some(42);
        std::fs::create_dir_all(containers.dir(&container.id)).unwrap();
        containers.save(&container).unwrap();
        (scratch, containers, networks, network, container)
    }

    #[test]
    fn connect_takes_the_lowest_free_interface_name() {
        let (_scratch, containers, networks, _, container) = web_and_network("connect", "172.22.16.0/24");
        // The fake's namespace holds lo and eth1 (eth0 was disconnected).
        let links = Recording::default();
        connect(&containers, &networks, &links, "one", "web", None, vec![]).unwrap();
        let calls = links.calls.borrow();
        assert!(calls.iter().any(|c| c.starts_with("endpoint 42 ") && c.contains(" eth0 172.22.16.2/24")), "{calls:?}");
        assert_eq!(containers.load(&container.id).unwrap().networks.len(), 1);
        assert_eq!(networks.get("one").unwrap().address_of(&container.id), Some("172.22.16.2".parse().unwrap()));
    }

    #[test]
    fn a_connect_that_fails_in_the_kernel_holds_no_address() {
        let (_scratch, containers, networks, network, container) = web_and_network("connect-fails", "172.22.17.0/24");
        let links = Recording { fail_endpoint_at: Some(0), ..Recording::default() };
        let err = connect(&containers, &networks, &links, "one", "web", None, vec![]).unwrap_err();
        assert!(err.contains("endpoint failed as the test asked"), "{err}");
        assert_eq!(networks.get("one").unwrap().address_of(&container.id), None, "the address is given back");
        assert!(containers.load(&container.id).unwrap().networks.is_empty());
        let veth = host_veth_name(&container.id, &network.id);
        assert_eq!(links.calls.borrow().last(), Some(&format!("delete {veth}")));
        // And it can be done again once the kernel agrees.
        connect(&containers, &networks, &Recording::default(), "one", "web", None, vec![]).unwrap();
        assert_eq!(networks.get("one").unwrap().address_of(&container.id), Some("172.22.17.2".parse().unwrap()));
    }

    #[test]
    fn builtin_networks_list_their_running_containers() {
        let mut on_host = test_container(&"a".repeat(64), "on-host");
        on_host.network = NetworkMode::Host;
        on_host.state.status = Status::Running;
        let mut stopped = on_host.clone();
        stopped.id = "b".repeat(64);
        stopped.state.status = Status::Exited;
        let mut isolated = on_host.clone();
        isolated.id = "c".repeat(64);
        isolated.name = "isolated".into();
        isolated.network = NetworkMode::None;
        let all = [on_host, stopped, isolated];
        let host = inspect_builtin("host", &all);
        let members = host["Containers"].as_object().unwrap();
        assert_eq!(members.keys().collect::<Vec<_>>(), [&"a".repeat(64)]);
        assert_eq!(members[&"a".repeat(64)]["Name"], "on-host");
        let none = inspect_builtin("none", &all);
        assert_eq!(none["Containers"].as_object().unwrap().keys().collect::<Vec<_>>(), [&"c".repeat(64)]);
        assert_eq!(none["Driver"], "null");
    }
}
