//! Keeps wharf's embedded resolver in step with the containers: the
//! endpoints of running containers on user networks (the default `bridge`
//! has no embedded DNS, as in Docker) and the gateways to answer on go to
//! `WHARF_ROOT/run/dns.json`, and the `wharf dns` process is started when
//! there is something to serve and it is not running.

use std::fs;
use std::process::{Command, Stdio};

use super::ipam::NetworkStore;
use super::stage::DEFAULT_NETWORK;
use crate::container::{Container, ContainerStore, Process};
use crate::dns::{self, Config, Endpoint};
use crate::state::{self, Root};

/// What the resolver should serve, from the records.
pub fn config(containers: &[Container], store: &NetworkStore) -> Result<Config, String> {
    let networks = store.list().map_err(|e| e.to_string())?;
    let mut config = Config::default();
    // A starting container is in: it may ask before it is recorded running.
    for container in containers.iter().filter(|c| c.state.status.is_up()) {
        for attachment in container.networks.iter().filter(|a| a.network != DEFAULT_NETWORK) {
            let Some(network) = networks.iter().find(|n| n.name == attachment.network) else { continue };
            if !config.listen.contains(&network.gateway) {
                config.listen.push(network.gateway);
            }
            config.endpoints.push(Endpoint {
                network: network.name.clone(),
                container: container.id.clone(),
                name: container.name.clone(),
                aliases: attachment.aliases.clone(),
                ip: attachment.ip,
            });
        }
    }
    config.listen.sort();
    Ok(config)
}

/// Writes the resolver's configuration and starts the resolver if it has
/// something to serve and is not running. The caller holds the state lock.
pub fn sync(root: &Root) -> Result<(), String> {
    let containers = ContainerStore::new(root).list().map_err(|e| e.to_string())?;
    let config = config(&containers, &NetworkStore::new(root))?;
    if config.listen.is_empty() && !dns::config_path(root).exists() {
        return Ok(());
    }
    dns::write_config(root, &config).map_err(|e| format!("write the resolver's configuration: {e}"))?;
    if config.listen.is_empty() {
        return Ok(());
    }
    let run_dir = root.dir().join("run");
    let pid_file = run_dir.join("dns.pid");
    let running = state::read_json::<Process>(&pid_file).is_ok_and(|p| p.alive());
    if running {
        return Ok(());
    }
    fs::create_dir_all(&run_dir).map_err(|e| format!("create {}: {e}", run_dir.display()))?;
    let log = fs::File::create(run_dir.join("dns.log")).map_err(|e| format!("create the resolver's log: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("find the wharf binary: {e}"))?;
    use std::os::unix::process::CommandExt;
    let child = Command::new(exe)
        .arg("dns")
        .env("WHARF_ROOT", root.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("start the resolver: {e}"))?;
    let process = Process::of(child.id()).ok_or("the resolver exited at once; see WHARF_ROOT/run/dns.log")?;
    state::write_json(&pid_file, &process).map_err(|e| e.to_string())
}
