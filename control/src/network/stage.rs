//! The bridge network stage: between `runc create` and `runc start`, each
//! of the container's networks gets its bridge (made if missing) and its
//! firewall rules, and the container a veth with its address on it; its
//! published ports get one wharf-proxy process. On stop, the veths and the
//! proxy go. Also the default `bridge` network, the files that tell a
//! container who it is (`/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`)
//! and the resolver's view of the containers.

use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::firewall::{Firewall, NetworkRules};
use super::ipam::{Network, NetworkRequest, NetworkStore};
use super::links::{Endpoint, Links};
use crate::container::network::{Namespace, NetworkStage};
use crate::container::{Attachment, Container, Process};
use crate::state::{self, Root};

/// The default network's name and bridge device.
pub const DEFAULT_NETWORK: &str = "bridge";
pub const DEFAULT_BRIDGE: &str = "wharf0";

/// The host end of a container's veth on a network: `veth` and 7 hex
/// digits of a hash of the two ids (15 bytes at most, as link names are).
pub fn host_veth_name(container_id: &str, network_id: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in container_id.bytes().chain(network_id.bytes()) {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    format!("veth{:07x}", hash & 0x0fff_ffff)
}

/// The interface `interface` of container `container_id` on `network`,
/// with the default route via its gateway when `default_route`.
pub fn endpoint(
    container_id: &str,
    interface: String,
    network: &Network,
    attachment: &Attachment,
    default_route: bool,
) -> Endpoint {
    Endpoint {
        bridge: network.bridge.clone(),
        host_veth: host_veth_name(container_id, &network.id),
        interface,
        address: attachment.ip,
        prefix: network.subnet.len,
        mac: attachment.mac.clone(),
        mtu: network.mtu,
        gateway: default_route.then_some(network.gateway),
    }
}

/// The firewall's view of the networks.
pub fn rules(networks: &[Network]) -> Vec<NetworkRules> {
    networks.iter().map(|n| NetworkRules { bridge: n.bridge.clone(), subnet: n.subnet, internal: n.internal }).collect()
}

/// The default `bridge` network, made (from the address pool, on device
/// `wharf0`) the first time it is needed. The caller holds the state lock.
pub fn ensure_default(store: &NetworkStore, links: &dyn Links) -> Result<Network, String> {
    if let Ok(network) = store.get(DEFAULT_NETWORK) {
        return Ok(network);
    }
    let taken: Vec<_> = store.list().map_err(|e| e.to_string())?.iter().map(|n| n.subnet).collect();
    let routes = super::ipam::parse_routes(&links.routes_json()?).map_err(|e| e.to_string())?;
    let request = NetworkRequest {
        name: DEFAULT_NETWORK.into(),
        options: vec![format!("com.docker.network.bridge.name={DEFAULT_BRIDGE}")],
        ..NetworkRequest::default()
    };
    let id = state::random_id().map_err(|e| e.to_string())?;
    let network = Network::from_request(&request, id, &taken, &routes).map_err(|e| e.to_string())?;
    store.save(&network).map_err(|e| e.to_string())?;
    Ok(network)
}

/// The user's nameservers from the host's resolv.conf, without loopback
/// ones (unreachable from a container), as Docker does for the default bridge.
fn host_nameservers() -> Vec<String> {
    let text = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    crate::dns::parse_resolv_conf(&text).into_iter().filter(|ip| !ip.is_loopback()).map(|ip| ip.to_string()).collect()
}

/// Writes the container's `/etc/hosts`, `/etc/hostname` and
/// `/etc/resolv.conf` into its directory; returns (file, path inside) for
/// the bundle's bind mounts.
pub fn write_identity_files(
    dir: &Path,
    container: &Container,
    networks: &[Network],
) -> Result<Vec<(PathBuf, &'static str)>, String> {
    let hostname = &container.config.hostname;
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for attachment in &container.networks {
        hosts.push_str(&format!("{}\t{hostname}\n", attachment.ip));
    }
    let first = container.networks.first().and_then(|a| networks.iter().find(|n| n.name == a.network));
    let resolv = match first {
        Some(network) if network.name != DEFAULT_NETWORK => {
            // wharf's resolver answers on the gateway of user networks.
            format!("nameserver {}\noptions ndots:0\n", network.gateway)
        }
        _ => host_nameservers().iter().map(|s| format!("nameserver {s}\n")).collect(),
    };
    let files = [("hosts", hosts, "/etc/hosts"), ("hostname", format!("{hostname}\n"), "/etc/hostname")];
    let mut mounts = Vec::new();
    for (name, text, inside) in files.into_iter().chain([("resolv.conf", resolv, "/etc/resolv.conf")]) {
        let path = dir.join(name);
        state::write_atomic(&path, text.as_bytes()).map_err(|e| e.to_string())?;
        mounts.push((path, inside));
    }
    Ok(mounts)
}

/// The stats socket of the port proxy of `container` (killed, the proxy
/// leaves it: whoever kills it removes it).
pub fn proxy_socket(root: &Root, container: &Container) -> PathBuf {
    root.dir().join("run").join(format!("proxy-{}.sock", container.short_id()))
}

/// Where the wharf-proxy binary is: `WHARF_PROXY`, else next to this
/// binary, else on PATH.
pub fn proxy_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("WHARF_PROXY").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("wharf-proxy")))
        .filter(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("wharf-proxy"))
}

/// The bridge stage of one container.
pub struct BridgeStage<'a> {
    root: Root,
    container: Container,
    links: &'a dyn Links,
    firewall: &'a dyn Firewall,
    proxy: RefCell<Option<Child>>,
}

impl std::fmt::Debug for BridgeStage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeStage").field("container", &self.container.id).finish()
    }
}

impl<'a> BridgeStage<'a> {
    pub fn new(root: &Root, container: &Container, links: &'a dyn Links, firewall: &'a dyn Firewall) -> Self {
        BridgeStage { root: root.clone(), container: container.clone(), links, firewall, proxy: RefCell::new(None) }
    }

    fn endpoints(&self, networks: &[Network]) -> Result<Vec<Endpoint>, String> {
        let mut endpoints = Vec::new();
        for (index, attachment) in self.container.networks.iter().enumerate() {
            let network = networks
                .iter()
                .find(|n| n.name == attachment.network)
                .ok_or_else(|| format!("network {} not found", attachment.network))?;
            endpoints.push(endpoint(&self.container.id, format!("eth{index}"), network, attachment, index == 0));
        }
        Ok(endpoints)
    }

    fn start_proxy(&self) -> Result<(), String> {
        let Some(first) = self.container.networks.first() else { return Ok(()) };
        if self.container.ports.is_empty() {
            return Ok(());
        }
        let id = &self.container.id;
        let run_dir = self.root.dir().join("run");
        fs::create_dir_all(&run_dir).map_err(|e| format!("create {}: {e}", run_dir.display()))?;
        let socket = proxy_socket(&self.root, &self.container);
        let _ = fs::remove_file(&socket);
        let log_path = self.root.containers().join(id).join("proxy.log");
        let log = fs::File::create(&log_path).map_err(|e| format!("create {}: {e}", log_path.display()))?;
        let mut command = Command::new(proxy_binary());
        for port in &self.container.ports {
            command.arg("-map").arg(port.proxy_map(first.ip));
        }
        command.arg("-stats-socket").arg(&socket).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        // A process group of its own: the ^C, ^\ or ^Z of a terminal that a
        // foreground `wharf run` is attached to is for the container, and a
        // hangup of that terminal must not take the ports with it.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().map_err(|e| format!("start {}: {e}", proxy_binary().display()))?;
        // Recorded before anything else can fail or this monitor be killed:
        // whoever cleans up after the container (`reconcile`, a failed
        // `run`) finds the proxy there.
        let recorded = self.record_proxy(Process::of(child.id()));
        if let Err(err) = recorded {
            let _ = child.kill();
            let _ = child.wait();
            return Err(err);
        }
        // The proxy binds its stats socket after every listener: its file
        // appearing means the ports are served.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                let said = fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("publish ports: wharf-proxy exited ({status}): {}", said.trim()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("publish ports: wharf-proxy did not start within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        *self.proxy.borrow_mut() = Some(child);
        Ok(())
    }

    /// Saves the port proxy's process in the container's record.
    fn record_proxy(&self, process: Option<Process>) -> Result<(), String> {
        let _lock = self.root.lock().map_err(|e| e.to_string())?;
        let store = crate::container::ContainerStore::new(&self.root);
        let mut record = store.load(&self.container.id).map_err(|e| e.to_string())?;
        record.state.proxy = process;
        store.save(&record).map_err(|e| e.to_string())
    }
}

impl NetworkStage for BridgeStage<'_> {
    fn namespace(&self) -> Namespace {
        Namespace::New
    }

    fn attach(&self, pid: u32) -> Result<(), String> {
        let networks = {
            let _lock = self.root.lock().map_err(|e| e.to_string())?;
            let networks = NetworkStore::new(&self.root).list().map_err(|e| e.to_string())?;
            self.firewall.sync(&rules(&networks))?;
            networks
        };
        let endpoints = self.endpoints(&networks)?;
        for endpoint in &endpoints {
            let network = networks.iter().find(|n| n.bridge == endpoint.bridge).expect("endpoints come from networks");
            self.links.ensure_bridge(network, &self.root.owner_tag())?;
        }
        let mut made: Vec<String> = Vec::new();
        for endpoint in &endpoints {
            if let Err(e) = self.links.add_endpoint(pid, endpoint) {
                for done in made.iter().rev() {
                    let _ = self.links.delete_veth(done);
                }
                return Err(e);
            }
            made.push(endpoint.host_veth.clone());
        }
        self.start_proxy()?;
        // The resolver learns of the container before its process starts.
        let _lock = self.root.lock().map_err(|e| e.to_string())?;
        super::resolver::sync(&self.root)
    }

    fn detach(&self) -> Result<(), String> {
        if let Some(mut proxy) = self.proxy.borrow_mut().take() {
            let _ = proxy.kill();
            let _ = proxy.wait();
            let _ = fs::remove_file(proxy_socket(&self.root, &self.container));
        }
        let networks = NetworkStore::new(&self.root).list().map_err(|e| e.to_string())?;
        // `network connect` may have added interfaces since the start.
        let store = crate::container::ContainerStore::new(&self.root);
        let container = store.load(&self.container.id).unwrap_or_else(|_| self.container.clone());
        let veths: std::collections::BTreeSet<String> = container
            .networks
            .iter()
            .chain(&self.container.networks)
            .filter_map(|a| networks.iter().find(|n| n.name == a.network))
            .map(|network| host_veth_name(&self.container.id, &network.id))
            .collect();
        let errors: Vec<String> = veths.iter().filter_map(|veth| self.links.delete_veth(veth).err()).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{test_container, Attachment, ContainerStore, NetworkMode};
    use crate::network::firewall::Recording as RecordingFirewall;
    use crate::network::links::Recording as RecordingLinks;
    use crate::state::Scratch;

    /// A store with two user networks and a container on both.
    fn world(tag: &str) -> (Scratch, Root, Container) {
        let scratch = Scratch::new(tag);
        let root = scratch.root();
        let networks = NetworkStore::new(&root);
        let mut container = test_container(&"c".repeat(64), "web");
        container.network = NetworkMode::Bridge("one".into());
        for (name, subnet) in [("one", "172.22.16.0/24"), ("two", "172.22.17.0/24")] {
            let request = NetworkRequest { name: name.into(), subnet: Some(subnet.into()), ..Default::default() };
            let mut network = Network::from_request(&request, format!("{name:0>64}"), &[], &[]).unwrap();
            let ip = network.allocate(&container.id, None).unwrap();
            networks.save(&network).unwrap();
            container.networks.push(Attachment {
                network: name.into(),
                ip,
                mac: "02:42:00:00:00:00".into(),
                aliases: vec![],
            });
        }
        let store = ContainerStore::new(&root);
        fs::create_dir_all(store.dir(&container.id)).unwrap();
        store.save(&container).unwrap();
        (scratch, root, container)
    }

    #[test]
    fn attach_makes_bridges_rules_and_one_interface_per_network() {
        let (_scratch, root, container) = world("attach");
        let (links, firewall) = (RecordingLinks::default(), RecordingFirewall::default());
        let stage = BridgeStage::new(&root, &container, &links, &firewall);
        stage.attach(42).unwrap();
        let calls = links.calls.borrow().clone();
        assert_eq!(calls.len(), 4, "{calls:?}");
        assert!(calls[0].starts_with("bridge wh-000000000000 172.22.16.1/24"), "{calls:?}");
        assert!(calls[2].contains(" eth0 172.22.16.2/24"), "{calls:?}");
        assert!(calls[3].contains(" eth1 172.22.17.2/24"), "{calls:?}");
        let rules = firewall.last.borrow().clone().unwrap();
        assert!(rules.contains("-A WHARF-POSTROUTING -s 172.22.17.0/24"), "{rules}");
        stage.detach().unwrap();
        assert_eq!(links.calls.borrow().iter().filter(|c| c.starts_with("delete veth")).count(), 2);
    }

    #[test]
    fn a_failed_interface_undoes_the_ones_made() {
        let (_scratch, root, container) = world("undo");
        // eth0 is made, eth1 fails: eth0's veth must go again.
        let links = RecordingLinks { fail_endpoint_at: Some(1), ..RecordingLinks::default() };
        let firewall = RecordingFirewall::default();
        let err = BridgeStage::new(&root, &container, &links, &firewall).attach(42).unwrap_err();
        assert!(err.contains("endpoint failed"), "{err}");
        let calls = links.calls.borrow();
        assert_eq!(calls.iter().filter(|c| c.starts_with("endpoint")).count(), 2, "stops at the failure");
        let one = NetworkStore::new(&root).get("one").unwrap();
        let eth0 = host_veth_name(&container.id, &one.id);
        assert_eq!(calls.last().unwrap(), &format!("delete {eth0}"), "{calls:?}");
    }

    #[test]
    fn identity_files_name_the_resolver_of_user_networks() {
        let (scratch, root, container) = world("files");
        let networks = NetworkStore::new(&root).list().unwrap();
        let mounts = write_identity_files(&scratch.0, &container, &networks).unwrap();
        let inside: Vec<&str> = mounts.iter().map(|(_, inside)| *inside).collect();
        assert_eq!(inside, ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]);
        assert_eq!(fs::read_to_string(&mounts[2].0).unwrap(), "nameserver 172.22.16.1\noptions ndots:0\n");
        let hosts = fs::read_to_string(&mounts[0].0).unwrap();
        assert!(hosts.contains("172.22.16.2\th\n") && hosts.contains("172.22.17.2\th\n"), "{hosts}");
    }

    #[test]
    fn host_veth_names_fit_a_link_name_and_differ() {
        let a = host_veth_name(&"a".repeat(64), &"1".repeat(64));
        let b = host_veth_name(&"a".repeat(64), &"2".repeat(64));
        assert_eq!(a.len(), 11);
        assert!(a.starts_with("veth"));
        assert_ne!(a, b);
    }
}
