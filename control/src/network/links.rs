//! Links, addresses and routes for container networks: a bridge per
//! network, a veth pair per container and network — one end a port of the
//! bridge, the other moved into the container's namespace as `eth0`,
//! `eth1`, ... with its address, MAC and MTU, and the default route via the
//! first network's gateway.
//!
//! The changes sit behind [`Links`]: [`Iproute2`] makes them with iproute2's
//! `ip` (run through `nsenter` for a container's namespace), [`Recording`]
//! writes them down for unit tests. Removing what is already gone counts as
//! done.

use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use super::ipam::{BridgeOrigin, Network};

/// One container interface to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The bridge the host end joins.
    pub bridge: String,
    /// The host end's name.
    pub host_veth: String,
    /// The name inside the container (`eth0`, ...).
    pub interface: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub mac: String,
    pub mtu: u32,
    /// The default route's next hop, for the container's first network.
    pub gateway: Option<Ipv4Addr>,
}

/// What container networking asks of the kernel.
pub trait Links {
    /// Creates `network`'s bridge (if missing) with the gateway address and
    /// MTU, and brings it up; says what it did. A bridge that is there
    /// already gets the address if it lacks it and is brought up, its MTU
    /// left as it is. A link of that name that is not a bridge is refused.
    /// What this call did is undone if it fails part-way. A bridge it
    /// creates carries `owner` as its alias (see [`Links::owned`]).
    fn ensure_bridge(&self, network: &Network, owner: &str) -> Result<BridgeOrigin, String>;
    /// The links in this namespace whose alias is `owner`.
    fn owned(&self, owner: &str) -> Result<Vec<String>, String>;
    /// Takes `network`'s gateway address off its bridge; a missing bridge or
    /// address counts as done.
    fn remove_address(&self, network: &Network) -> Result<(), String>;
    /// Deletes the bridge; a missing one counts as deleted.
    fn delete_bridge(&self, name: &str) -> Result<(), String>;
    /// Makes `endpoint` in the namespace of process `pid`.
    fn add_endpoint(&self, pid: u32, endpoint: &Endpoint) -> Result<(), String>;
    /// Deletes the host end (the kernel deletes its peer); missing counts as deleted.
    fn delete_veth(&self, host_veth: &str) -> Result<(), String>;
    /// The names of the links in this namespace.
    fn list(&self) -> Result<Vec<String>, String>;
    /// The names of the links in the namespace of process `pid`.
    fn names_in(&self, pid: u32) -> Result<Vec<String>, String>;
    /// The IPv4 prefixes routed in this namespace (`ip -j -4 route show table all`), as JSON.
    fn routes_json(&self) -> Result<String, String>;
}

/// iproute2's `ip`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Iproute2;

fn ip(args: &[&str]) -> Result<String, String> {
    run(Command::new("ip").args(args))
}

fn run(command: &mut Command) -> Result<String, String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {:?}: {e} (is iproute2 installed?)", command.get_program()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let args: Vec<String> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        Err(format!(
            "{} {}: {}",
            command.get_program().to_string_lossy(),
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The names in `ip -o link show` output (`3: eth0@if4: <...`).
fn link_names(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .collect()
}

/// The names of the links in `ip -j link show` output whose alias is
/// `alias`.
fn links_aliased(json: &str, alias: &str) -> Vec<String> {
    let Ok(serde_json::Value::Array(links)) = serde_json::from_str(json) else { return Vec::new() };
    links
        .iter()
        .filter(|link| link.get("ifalias").and_then(|a| a.as_str()) == Some(alias))
        .filter_map(|link| Some(link.get("ifname")?.as_str()?.to_owned()))
        .collect()
}

/// `GATEWAY/PREFIX`, the address a network's bridge holds.
fn gateway_address(network: &Network) -> String {
    format!("{}/{}", network.gateway, network.subnet.len)
}

/// The `info_kind` of the one link in `ip -j -d link show` output (`None`
/// for a device without one, such as a physical interface).
fn link_kind(json: &str) -> Option<String> {
    let links: serde_json::Value = serde_json::from_str(json).ok()?;
    Some(links.get(0)?.get("linkinfo")?.get("info_kind")?.as_str()?.to_owned())
}

fn missing(error: &str) -> bool {
    // The last: the link was there when looked up and gone when deleted, as
    // a veth is when the kernel takes it down with its namespace.
    error.contains("Cannot find device") || error.contains("does not exist") || error.contains("No such device")
}

impl Links for Iproute2 {
    fn ensure_bridge(&self, network: &Network, owner: &str) -> Result<BridgeOrigin, String> {
        let name = network.bridge.as_str();
        let created = match ip(&["-j", "-d", "link", "show", "dev", name]) {
            Ok(shown) => match link_kind(&shown).as_deref() {
                Some("bridge") => false,
                kind => {
                    let what = kind.map_or("a device".to_owned(), |kind| format!("a {kind} link"));
                    return Err(format!(
                        "{name} is {what}, not a bridge: choose another com.docker.network.bridge.name"
                    ));
                }
            },
            Err(_) => {
                ip(&["link", "add", name, "type", "bridge"]).map_err(|e| format!("create bridge {name}: {e}"))?;
                if let Err(e) = ip(&["link", "set", "dev", name, "alias", owner]) {
                    let _ = self.delete_bridge(name);
                    return Err(format!("mark bridge {name} as wharf's: {e}"));
                }
                true
            }
        };
        let address = gateway_address(network);
        let mut added_address = false;
        let set_up = ip(&["-4", "-o", "addr", "show", "dev", name])
            .and_then(|shown| {
                if shown.split_whitespace().any(|word| word == address) {
                    return Ok(());
                }
                ip(&["addr", "add", &address, "dev", name]).map_err(|e| format!("address bridge {name}: {e}"))?;
                added_address = true;
                Ok(())
            })
            .and_then(|()| {
                let mtu = network.mtu.to_string();
                let args: &[&str] =
                    if created { &["link", "set", name, "mtu", &mtu, "up"] } else { &["link", "set", name, "up"] };
                ip(args).map(drop).map_err(|e| format!("bring up bridge {name}: {e}"))
            });
        if let Err(e) = set_up {
            if created {
                let _ = self.delete_bridge(name);
            } else if added_address {
                let _ = self.remove_address(network);
            }
            return Err(e);
        }
        Ok(if created { BridgeOrigin::Created } else { BridgeOrigin::Existed { added_address } })
    }

    fn remove_address(&self, network: &Network) -> Result<(), String> {
        match ip(&["addr", "del", &gateway_address(network), "dev", &network.bridge]) {
            Err(e) if !missing(&e) && !e.contains("Cannot assign requested address") => {
                Err(format!("remove the gateway address from {}: {e}", network.bridge))
            }
            _ => Ok(()),
        }
    }

    fn delete_bridge(&self, name: &str) -> Result<(), String> {
        match ip(&["link", "del", name]) {
            Err(e) if !missing(&e) => Err(format!("delete bridge {name}: {e}")),
            _ => Ok(()),
        }
    }

    fn add_endpoint(&self, pid: u32, endpoint: &Endpoint) -> Result<(), String> {
        let Endpoint { bridge, host_veth, interface, .. } = endpoint;
        // The peer gets a temporary name unique on the host, then its own
        // name once inside the container's namespace.
        let peer = format!("{}p", &host_veth[..host_veth.len().min(14)]);
        let mtu = endpoint.mtu.to_string();
        let context = |step: &'static str| move |e: String| format!("{step} for {interface} ({host_veth}): {e}");
        ip(&["link", "add", host_veth, "mtu", &mtu, "type", "veth", "peer", "name", &peer, "mtu", &mtu])
            .map_err(context("create the veth pair"))?;
        let result = (|| {
            ip(&["link", "set", host_veth, "master", bridge, "up"]).map_err(context("join the bridge"))?;
            ip(&["link", "set", &peer, "netns", &pid.to_string()]).map_err(context("move into the container"))?;
            let inside = |args: &[&str]| {
                run(Command::new("nsenter").arg(format!("--net=/proc/{pid}/ns/net")).arg("ip").args(args))
            };
            inside(&["link", "set", &peer, "name", interface]).map_err(context("rename"))?;
            inside(&["link", "set", interface, "address", &endpoint.mac]).map_err(context("set the MAC"))?;
            let address = format!("{}/{}", endpoint.address, endpoint.prefix);
            inside(&["addr", "add", &address, "dev", interface]).map_err(context("add the address"))?;
            inside(&["link", "set", interface, "up"]).map_err(context("bring up"))?;
            if let Some(gateway) = endpoint.gateway {
                inside(&["route", "replace", "default", "via", &gateway.to_string(), "dev", interface])
                    .map_err(context("add the default route"))?;
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = self.delete_veth(host_veth);
        }
        result
    }

    fn delete_veth(&self, host_veth: &str) -> Result<(), String> {
        match ip(&["link", "del", host_veth]) {
            Err(e) if !missing(&e) => Err(format!("delete {host_veth}: {e}")),
            _ => Ok(()),
        }
    }

    fn list(&self) -> Result<Vec<String>, String> {
        Ok(link_names(&ip(&["-o", "link", "show"])?))
    }

    fn owned(&self, owner: &str) -> Result<Vec<String>, String> {
        Ok(links_aliased(&ip(&["-j", "link", "show"])?, owner))
    }

    fn names_in(&self, pid: u32) -> Result<Vec<String>, String> {
        let text =
            run(Command::new("nsenter").arg(format!("--net=/proc/{pid}/ns/net")).args(["ip", "-o", "link", "show"]))?;
        Ok(link_names(&text))
    }

    fn routes_json(&self) -> Result<String, String> {
        ip(&["-j", "-4", "route", "show", "table", "all"])
    }
}

/// A [`Links`] that writes down what it was asked, for unit tests.
#[derive(Debug, Default)]
pub struct Recording {
    pub calls: RefCell<Vec<String>>,
    /// Fail the endpoint call with this index (0: the first).
    pub fail_endpoint_at: Option<usize>,
    /// Links `list` reports besides `lo`.
    pub present: Vec<String>,
}

impl Links for Recording {
    fn ensure_bridge(&self, network: &Network, _owner: &str) -> Result<BridgeOrigin, String> {
        let name = &network.bridge;
        self.calls.borrow_mut().push(format!("bridge {name} {} mtu {}", gateway_address(network), network.mtu));
        Ok(if self.present.contains(name) {
            BridgeOrigin::Existed { added_address: true }
        } else {
            BridgeOrigin::Created
        })
    }

    fn remove_address(&self, network: &Network) -> Result<(), String> {
        self.calls.borrow_mut().push(format!("remove address {} from {}", gateway_address(network), network.bridge));
        Ok(())
    }

    fn delete_bridge(&self, name: &str) -> Result<(), String> {
        self.calls.borrow_mut().push(format!("delete bridge {name}"));
        Ok(())
    }

    fn add_endpoint(&self, pid: u32, e: &Endpoint) -> Result<(), String> {
        let made = self.calls.borrow().iter().filter(|c| c.starts_with("endpoint")).count();
        self.calls
            .borrow_mut()
            .push(format!("endpoint {pid} {} {} {}/{}", e.host_veth, e.interface, e.address, e.prefix));
        if self.fail_endpoint_at == Some(made) {
            return Err("endpoint failed as the test asked".into());
        }
        Ok(())
    }

    fn delete_veth(&self, host_veth: &str) -> Result<(), String> {
        self.calls.borrow_mut().push(format!("delete {host_veth}"));
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>, String> {
        Ok(["lo".to_string()].into_iter().chain(self.present.iter().cloned()).collect())
    }

    fn owned(&self, _owner: &str) -> Result<Vec<String>, String> {
        Ok(self.present.clone())
    }

    fn names_in(&self, _pid: u32) -> Result<Vec<String>, String> {
        Ok(vec!["lo".into(), "eth1".into()])
    }

    fn routes_json(&self) -> Result<String, String> {
        Ok("[]".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_links_with_the_alias_are_owned() {
        let json = r#"[{"ifname":"lo"},{"ifname":"wh-1","ifalias":"wharf 00ff"},{"ifname":"wh-2","ifalias":"wharf 0abc"},{"ifname":"wh-3"}]"#;
        assert_eq!(links_aliased(json, "wharf 00ff"), ["wh-1"]);
        assert!(links_aliased("not json", "wharf 00ff").is_empty());
    }

    #[test]
    fn a_link_already_gone_is_not_an_error_to_delete() {
        // What `ip link del` says for a name it cannot find, and for a link
        // the kernel removed between the lookup and the deletion.
        assert!(missing("Cannot find device \"veth0\""));
        assert!(missing("RTNETLINK answers: No such device"));
        assert!(!missing("RTNETLINK answers: Operation not permitted"));
        assert!(!missing("RTNETLINK answers: Device or resource busy"));
    }
}
