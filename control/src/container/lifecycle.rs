//! A container's life after it is made: start, stop, remove and prune, and
//! [`reconcile`], which every command runs first to finish what a killed
//! wharf left half done.

use std::fs;
use std::io;
use std::process::Child;
use std::time::Duration;

use super::monitor::{self, Attach};
use super::rootfs::{self, Kernel, Mounter};
use super::runtime::Runtime;
use super::{Container, ContainerStore, MountKind, Process, RootfsSource, Status};
use crate::image::ImageStore;
use crate::network::firewall::{Firewall, Iptables};
use crate::network::ipam::NetworkStore;
use crate::network::links::{Iproute2, Links};
use crate::network::stage::{self, host_veth_name};
use crate::volume::{VolumeError, VolumeStore};

/// Starts a stopped or created container and waits until it runs; returns
/// its monitor, or None when it was running already.
pub fn start(store: &ContainerStore, id: &str, attach: Attach) -> Result<Option<Child>, String> {
    {
        let _lock = store.root().lock().map_err(|e| e.to_string())?;
        let mut container = store.load(id).map_err(|e| e.to_string())?;
        if container.state.status.is_up() {
            return Ok(None);
        }
        container.state.status = Status::Starting;
        container.state.owner = Some(Process::current());
        container.state.error = None;
        store.save(&container).map_err(|e| e.to_string())?;
    }
    monitor::launch(store, id, attach).map(Some)
}

/// Stops a running container: SIGTERM, then SIGKILL after `timeout`.
/// A container that is not running is left as it is.
pub fn stop(
    store: &ContainerStore,
    runtime: &dyn Runtime,
    container: &Container,
    timeout: Duration,
) -> Result<(), String> {
    if !container.state.status.is_up() {
        return Ok(());
    }
    let id = &container.id;
    if !timeout.is_zero() {
        // An error means it stopped meanwhile; the wait below tells.
        let _ = runtime.kill(id, "TERM");
        if monitor::wait_stopped(store, id, timeout) {
            return Ok(());
        }
    }
    let _ = runtime.kill(id, "KILL");
    if monitor::wait_stopped(store, id, Duration::from_secs(10)) {
        Ok(())
    } else {
        Err(format!("container {} did not stop within 10 s of SIGKILL", container.name))
    }
}

/// Removes a stopped container's files: its root filesystem mount (if one
/// is left), its addresses, with `anonymous_volumes` the anonymous volumes
/// no other container uses, and last its directory with record, log and
/// upper layer: until the record goes, a failure or a crash part-way leaves
/// a container that `wharf rm` removes again, never a volume or an address
/// that no record names. The caller holds the state lock.
pub fn remove_files(store: &ContainerStore, container: &Container, anonymous_volumes: bool) -> io::Result<()> {
    let dir = store.dir(&container.id);
    for mount in rootfs::mounts_under(&dir) {
        Kernel.unmount(&mount)?;
    }
    let networks = NetworkStore::new(store.root());
    for attachment in &container.networks {
        if let Ok(mut network) = networks.get(&attachment.network) {
            if network.release(&container.id) > 0 {
                networks.save(&network)?;
            }
        }
    }
    if anonymous_volumes {
        let others = store.list()?;
        let volumes = VolumeStore::new(store.root());
        for mount in container.mounts.iter().filter(|m| m.kind == MountKind::Volume && m.anonymous) {
            let Some(name) = &mount.name else { continue };
            let used = others
                .iter()
                .filter(|c| c.id != container.id)
                .any(|c| c.mounts.iter().any(|m| m.name.as_ref() == Some(name)));
            if used {
                continue;
            }
            match volumes.remove(name) {
                // Already gone: an earlier `rm` removed it, then failed.
                Ok(()) | Err(VolumeError::NotFound(_)) => {}
                Err(e) => return Err(io::Error::other(e.to_string())),
            }
        }
    }
    let _ = fs::remove_file(stage::proxy_socket(store.root(), container));
    fs::remove_dir_all(&dir).or_else(|e| if e.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
}

/// `wharf rm`: removes a container, refusing a running one unless `force`
/// (which kills it first).
pub fn remove(
    store: &ContainerStore,
    runtime: &dyn Runtime,
    reference: &str,
    force: bool,
    volumes: bool,
) -> Result<(), String> {
    let container = store.find(reference).map_err(|e| e.to_string())?;
    if container.state.status.is_up() {
        if !force {
            return Err(format!("cannot remove running container {}: stop it first or use -f", container.name));
        }
        stop(store, runtime, &container, Duration::ZERO)?;
    }
    let _lock = store.root().lock().map_err(|e| e.to_string())?;
    let container = store.load(&container.id).map_err(|e| e.to_string())?;
    if container.state.status.is_up() {
        return Err(format!("container {} was started again meanwhile", container.name));
    }
    // A container that never ran may still be known to the runtime.
    runtime.delete(&container.id, true).map_err(|e| e.to_string())?;
    remove_files(store, &container, volumes).map_err(|e| format!("remove container {}: {e}", container.name))
}

/// `wharf container prune`: removes every container that is not running;
/// returns their ids.
pub fn prune(store: &ContainerStore, runtime: &dyn Runtime) -> Result<Vec<String>, String> {
    let _lock = store.root().lock().map_err(|e| e.to_string())?;
    let mut removed = Vec::new();
    for container in store.list().map_err(|e| e.to_string())? {
        if matches!(container.state.status, Status::Created | Status::Exited) {
            runtime.delete(&container.id, true).map_err(|e| e.to_string())?;
            remove_files(store, &container, false).map_err(|e| format!("remove {}: {e}", container.name))?;
            removed.push(container.id);
        }
    }
    Ok(removed)
}

/// Finishes what a killed wharf left half done, and says what it did:
/// a container whose creating `run` died before it was up is removed with
/// everything it owned; a running container whose monitor died is deleted
/// from the runtime and marked exited; a container directory without a
/// record, and a runtime container without a wharf record, are removed.
/// What cannot be done now (a device that will not go, a mount that is
/// busy) is said and left for the next command: one stuck item must not
/// stop every command. Takes the state lock.
pub fn reconcile(store: &ContainerStore, runtime: &dyn Runtime) -> Result<Vec<String>, String> {
    let _lock = store.root().lock().map_err(|e| e.to_string())?;
    let scan = store.scan().map_err(|e| e.to_string())?;
    let containers = &scan.containers;
    let mut report = Vec::new();
    for (id, why) in &scan.unreadable {
        report.push(format!("left container directory {id} alone: {why}"));
    }
    for container in containers {
        let what = format!("container {} ({})", container.name, container.short_id());
        note(&mut report, &what, reconcile_container(store, runtime, container));
    }
    for id in &scan.half_created {
        let dir = store.dir(id);
        let removed = (|| {
            for mount in rootfs::mounts_under(&dir) {
                Kernel.unmount(&mount).map_err(|e| e.to_string())?;
            }
            let _ = runtime.delete(id, true);
            fs::remove_dir_all(&dir).map_err(|e| format!("remove {}: {e}", dir.display()))?;
            Ok(Some(format!("removed {}: a container directory without a record", dir.display())))
        })();
        note(&mut report, &dir.display().to_string(), removed);
    }
    match reconcile_networks(store, &Iproute2) {
        Ok(lines) => report.extend(lines),
        Err(e) => note(&mut report, "the containers' networks", Err(e)),
    }
    for leftover in ImageStore::new(store.root()).reconcile() {
        report.push(format!("removed {}: left by a killed image import", leftover.display()));
    }
    for leftover in VolumeStore::new(store.root()).reconcile() {
        report.push(format!("removed {}: left by a killed volume change", leftover.display()));
    }
    if store.root().runtime_state().exists() {
        // A container whose record does not read is still wharf's.
        let known: Vec<&str> =
            containers.iter().map(|c| c.id.as_str()).chain(scan.unreadable.iter().map(|(id, _)| id.as_str())).collect();
        match runtime.list() {
            Ok(ids) => {
                for id in ids.into_iter().filter(|id| !known.contains(&id.as_str())) {
                    let deleted = runtime
                        .delete(&id, true)
                        .map(|()| Some(format!("deleted runtime container {id}: wharf has no record of it")))
                        .map_err(|e| e.to_string());
                    note(&mut report, &format!("runtime container {id}"), deleted);
                }
            }
            Err(e) => note(&mut report, "the runtime's containers", Err(e.to_string())),
        }
    }
    Ok(report)
}

/// Adds what a step of [`reconcile`] did, or why `what` is left as it is.
fn note(report: &mut Vec<String>, what: &str, done: Result<Option<String>, String>) {
    match done {
        Ok(line) => report.extend(line),
        Err(e) => report.push(format!("could not put {what} right, left for the next command: {e}")),
    }
}

/// [`reconcile`] for one container: what it did, if anything.
fn reconcile_container(
    store: &ContainerStore,
    runtime: &dyn Runtime,
    container: &Container,
) -> Result<Option<String>, String> {
    let state = &container.state;
    let owner_alive = state.owner.is_some_and(|p| p.alive());
    let monitor_alive = state.monitor.is_some_and(|p| p.alive());
    if !state.committed && !owner_alive && !monitor_alive {
        let _ = runtime.delete(&container.id, true);
        release_links(store, container, &Iproute2)?;
        remove_files(store, container, true).map_err(|e| e.to_string())?;
        return Ok(Some(format!(
            "cleaned up half-created container {} ({}): the wharf command creating it was killed",
            container.name,
            container.short_id()
        )));
    }
    if state.status == Status::Exited && container.auto_remove && !monitor_alive {
        let _ = runtime.delete(&container.id, true);
        remove_files(store, container, true).map_err(|e| e.to_string())?;
        return Ok(Some(format!(
            "removed container {} ({}): it ran with --rm and its removal was cut short",
            container.name,
            container.short_id()
        )));
    }
    let running = state.status.is_up();
    let monitor_gone = match state.monitor {
        Some(_) => !monitor_alive,
        None => state.status == Status::Starting && !owner_alive,
    };
    if !(running && monitor_gone) {
        return Ok(None);
    }
    // Its veths and port proxy go in `reconcile_networks`, with those of
    // every container that is not running.
    let _ = runtime.delete(&container.id, true);
    if matches!(container.rootfs, RootfsSource::Image(_)) {
        Kernel.unmount(&store.dir(&container.id).join("rootfs")).map_err(|e| e.to_string())?;
    }
    let mut container = container.clone();
    container.state.status = Status::Exited;
    container.state.exit_code = 255;
    container.state.monitor = None;
    container.state.pid = None;
    container.state.finished_at = Some(crate::state::now_rfc3339());
    container.state.error = Some("its monitor was killed; wharf stopped it".into());
    store.save(&container).map_err(|e| e.to_string())?;
    Ok(Some(format!(
        "container {} ({}) lost its monitor: stopped it and marked it exited",
        container.name,
        container.short_id()
    )))
}

/// Deletes a container's host veths (the kernel takes their peers) and
/// stops its port proxy, for a half-made container whose record goes.
pub fn release_links(store: &ContainerStore, container: &Container, links: &dyn Links) -> Result<(), String> {
    if !container.networks.is_empty() {
        let networks = NetworkStore::new(store.root()).list().map_err(|e| e.to_string())?;
        for network in container.networks.iter().filter_map(|a| networks.iter().find(|n| n.name == a.network)) {
            links.delete_veth(&host_veth_name(&container.id, &network.id))?;
        }
    }
    kill_proxy(container);
    Ok(())
}

/// Kills the container's port proxy if it still runs; says whether it did.
fn kill_proxy(container: &Container) -> bool {
    let Some(proxy) = container.state.proxy.filter(|p| p.alive()) else { return false };
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(proxy.pid as i32), nix::sys::signal::SIGKILL);
    true
}

/// What a crash can leave of networks themselves: wharf's iptables chains
/// rewritten from the records, and `wh-` bridges that this root made (their
/// alias says so) and no network owns (a `network create` that died between
/// making the bridge and saving the record) deleted. Run by the `network` commands, which change exactly
/// these (not by every command: `wharf ps` never touches the packet
/// filter). The caller holds the lock.
pub fn reconcile_network_devices(store: &ContainerStore, links: &dyn Links) -> Result<Vec<String>, String> {
    let mut report = Vec::new();
    let all = NetworkStore::new(store.root()).list().map_err(|e| e.to_string())?;
    if all.is_empty() {
        return Ok(report);
    }
    Iptables.sync(&stage::rules(&all))?;
    // Only bridges this root made: another WHARF_ROOT's are not ours.
    for link in links.owned(&store.root().owner_tag())? {
        if link.starts_with("wh-") && !all.iter().any(|n| n.bridge == link) {
            links.delete_bridge(&link)?;
            report.push(format!("deleted bridge {link}: no network owns it"));
        }
    }
    Ok(report)
}

/// The network side of [`reconcile`] (the caller holds the lock): an
/// address held for a container that is gone, or for one whose record does
/// not list that network (a `network connect` or `disconnect` cut short),
/// is released, with the host veth of a running one; host veths of
/// containers that are not running are deleted, and a published-port proxy
/// whose container stopped is killed. A container whose record does not
/// read keeps what it holds.
fn reconcile_networks(store: &ContainerStore, links: &dyn Links) -> Result<Vec<String>, String> {
    let mut report = Vec::new();
    let scan = store.scan().map_err(|e| e.to_string())?;
    let containers = &scan.containers;
    let networks = NetworkStore::new(store.root());
    let all = networks.list().map_err(|e| e.to_string())?;
    let mut detached = Vec::new();
    for mut network in all.clone() {
        let mut released = false;
        for id in network.allocations.values().cloned().collect::<Vec<_>>() {
            if scan.unreadable.iter().any(|(unreadable, _)| *unreadable == id) {
                continue;
            }
            let Some(container) = containers.iter().find(|c| c.id == id) else {
                network.release(&id);
                released = true;
                report.push(format!(
                    "released the address of vanished container {} on network {}",
                    crate::state::short_id(&id),
                    network.name
                ));
                continue;
            };
            if !container.networks.iter().any(|a| a.network == network.name) {
                network.release(&id);
                released = true;
                detached.push(host_veth_name(&id, &network.id));
                report.push(format!(
                    "released the address of container {} on network {}: it is not attached",
                    container.name, network.name
                ));
            }
        }
        if released {
            networks.save(&network).map_err(|e| e.to_string())?;
        }
    }
    let running = |c: &&Container| c.state.status.is_up();
    let stray: Vec<String> = containers
        .iter()
        .filter(|c| !running(c))
        .flat_map(|c| {
            c.networks
                .iter()
                .filter_map(|a| all.iter().find(|n| n.name == a.network))
                .map(|n| host_veth_name(&c.id, &n.id))
        })
        .chain(detached)
        .collect();
    if !stray.is_empty() {
        let present = links.list()?;
        for veth in stray.iter().filter(|v| present.contains(v)) {
            links.delete_veth(veth)?;
            report.push(format!("deleted {veth}: no running container is attached through it"));
        }
    }
    for container in containers.iter().filter(|c| !running(c)) {
        if kill_proxy(container) {
            report.push(format!("stopped the port proxy of {}: its container is not running", container.name));
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::runtime::Recording;
    use crate::container::{test_container, State};
    use crate::state::Scratch;

    fn world(tag: &str) -> (Scratch, ContainerStore) {
        let scratch = Scratch::new(tag);
        let store = ContainerStore::new(&scratch.root());
        fs::create_dir_all(store.root().containers()).unwrap();
        (scratch, store)
    }

    fn saved(store: &ContainerStore, name: &str, state: State) -> Container {
        let container = Container {
            rootfs: RootfsSource::Directory("/nonexistent".into()),
            state,
            ..test_container(&format!("{:0>64}", name.bytes().map(|b| format!("{b:02x}")).collect::<String>()), name)
        };
        fs::create_dir_all(store.dir(&container.id)).unwrap();
        store.save(&container).unwrap();
        container
    }

    /// A `--rm` container that exited, its record still there.
    fn exited_with_rm(store: &ContainerStore, name: &str) -> Container {
        let mut container = saved(store, name, State { committed: true, status: Status::Exited, ..State::new() });
        container.auto_remove = true;
        store.save(&container).unwrap();
        container
    }

    fn dead() -> Option<Process> {
        Some(Process { pid: std::process::id(), start_time: u64::MAX })
    }

    #[test]
    fn reconcile_rolls_back_what_a_killed_run_left() {
        let (_scratch, store) = world("rollback");
        let half =
            saved(&store, "half", State { owner: dead(), status: Status::Starting, monitor: dead(), ..State::new() });
        let mine = saved(&store, "mine", State::new()); // owned by this live process
        let lost = saved(
            &store,
            "lost",
            State { committed: true, status: Status::Running, monitor: dead(), pid: Some(1), ..State::new() },
        );
        fs::create_dir_all(store.dir("norecord")).unwrap();
        let runtime = Recording::default();
        runtime.known.borrow_mut().push("stray".into());
        fs::create_dir_all(store.root().runtime_state()).unwrap();
        let report = reconcile(&store, &runtime).unwrap();
        assert_eq!(report.len(), 4, "{report:?}");
        assert!(report[0].starts_with("cleaned up half-created container half"));
        assert!(!store.dir(&half.id).exists());
        assert!(store.dir(&mine.id).exists(), "a run still in progress is left alone");
        let lost = store.load(&lost.id).unwrap();
        assert_eq!((lost.state.status, lost.state.exit_code), (Status::Exited, 255));
        assert!(!store.dir("norecord").exists());
        let calls = runtime.calls.borrow().clone();
        assert!(calls.contains(&format!("delete {} --force", half.id)));
        assert!(calls.contains(&"delete stray --force".to_string()));
        assert!(reconcile(&store, &runtime).unwrap().is_empty(), "a second pass finds nothing");
    }

    #[test]
    fn reconcile_leaves_a_record_it_cannot_read_and_its_runtime_container() {
        let (_scratch, store) = world("unreadable");
        let id = "e".repeat(64);
        fs::create_dir_all(store.dir(&id)).unwrap();
        fs::write(store.dir(&id).join("container.json"), "{\"id\": \"e\", \"future_field\"").unwrap();
        fs::write(store.dir(&id).join("data"), "kept").unwrap();
        let runtime = Recording::default();
        runtime.known.borrow_mut().push(id.clone());
        fs::create_dir_all(store.root().runtime_state()).unwrap();
        let report = reconcile(&store, &runtime).unwrap();
        assert_eq!(report.len(), 1, "{report:?}");
        assert!(report[0].starts_with(&format!("left container directory {id} alone: ")), "{report:?}");
        assert_eq!(fs::read_to_string(store.dir(&id).join("data")).unwrap(), "kept");
        let calls = runtime.calls.borrow().clone();
        assert!(!calls.iter().any(|call| call.starts_with("delete")), "{calls:?}");
    }

    #[test]
    fn reconcile_releases_an_address_the_container_does_not_name() {
        use crate::network::ipam::{Network, NetworkRequest};
        let (_scratch, store) = world("detached");
        let networks = NetworkStore::new(store.root());
        let request =
            NetworkRequest { name: "one".into(), subnet: Some("172.22.18.0/24".into()), ..Default::default() };
        let mut network = Network::from_request(&request, "1".repeat(64), &[], &[]).unwrap();
        // A connect cut short: the address held, the record never saved.
        let running = saved(
            &store,
            "running",
            State { committed: true, status: Status::Running, monitor: Some(Process::current()), ..State::new() },
        );
        network.allocate(&running.id, None).unwrap();
        // A disconnect cut short: the record saved, the address still held.
        let stopped = saved(&store, "stopped", State { committed: true, status: Status::Exited, ..State::new() });
        network.allocate(&stopped.id, None).unwrap();
        // Attached as it should be.
        let mut attached = saved(&store, "attached", State { committed: true, status: Status::Exited, ..State::new() });
        let ip = network.allocate(&attached.id, None).unwrap();
        attached.networks.push(crate::container::Attachment {
            network: "one".into(),
            ip,
            mac: String::new(),
            aliases: vec![],
        });
        store.save(&attached).unwrap();
        networks.save(&network).unwrap();
        let veth = host_veth_name(&running.id, &network.id);
        let links = crate::network::links::Recording { present: vec![veth.clone()], ..Default::default() };

        let report = reconcile_networks(&store, &links).unwrap();
        let network = networks.get("one").unwrap();
        assert_eq!(network.address_of(&running.id), None, "{report:?}");
        assert_eq!(network.address_of(&stopped.id), None, "{report:?}");
        assert_eq!(network.address_of(&attached.id), Some(ip), "{report:?}");
        assert!(report
            .iter()
            .any(|r| r == "released the address of container running on network one: it is not attached"));
        assert!(links.calls.borrow().contains(&format!("delete {veth}")), "{:?}", links.calls.borrow());
        assert!(reconcile_networks(&store, &links).unwrap().iter().all(|r| !r.starts_with("released")));
    }

    #[test]
    fn reconcile_finishes_an_rm_that_was_cut_short() {
        let (_scratch, store) = world("auto-remove");
        let once = exited_with_rm(&store, "once");
        let kept = saved(&store, "kept", State { committed: true, status: Status::Exited, ..State::new() });
        let runtime = Recording::default();
        let report = reconcile(&store, &runtime).unwrap();
        assert_eq!(report.len(), 1, "{report:?}");
        assert!(report[0].starts_with("removed container once ("), "{report:?}");
        assert!(!store.dir(&once.id).exists());
        assert!(store.dir(&kept.id).exists(), "an exited container without --rm stays");
        assert!(runtime.calls.borrow().contains(&format!("delete {} --force", once.id)));
    }

    #[test]
    fn a_step_that_fails_is_reported_and_the_rest_still_done() {
        let (_scratch, store) = world("stuck");
        let once = exited_with_rm(&store, "once");
        fs::create_dir_all(store.dir("norecord")).unwrap();
        fs::create_dir_all(store.root().runtime_state()).unwrap();
        let runtime = Recording { fail_on: Some("list"), ..Recording::default() };
        let report = reconcile(&store, &runtime).expect("a failed step does not fail reconcile");
        assert!(report.iter().any(|r| r.starts_with("removed container once (")), "{report:?}");
        assert!(report
            .iter()
            .any(|r| r.starts_with("removed ") && r.ends_with("a container directory without a record")));
        assert!(
            report
                .iter()
                .any(|r| r.starts_with("could not put the runtime's containers right, left for the next command: ")),
            "{report:?}"
        );
        assert!(!store.dir(&once.id).exists() && !store.dir("norecord").exists());
    }

    #[test]
    fn prune_removes_only_stopped_containers() {
        let (_scratch, store) = world("prune");
        let exited = saved(&store, "exited", State { committed: true, status: Status::Exited, ..State::new() });
        let running = saved(
            &store,
            "running",
            State { committed: true, status: Status::Running, monitor: Some(Process::current()), ..State::new() },
        );
        let runtime = Recording::default();
        assert_eq!(prune(&store, &runtime).unwrap(), vec![exited.id.clone()]);
        assert!(!store.dir(&exited.id).exists());
        assert!(store.dir(&running.id).exists());
        let err = remove(&store, &runtime, "running", false, false).unwrap_err();
        assert_eq!(err, "cannot remove running container running: stop it first or use -f");
    }
}
