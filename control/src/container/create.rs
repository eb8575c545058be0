//! Making a container: check everything `run` was given, then write the
//! record, prepare its volumes and directories as one transaction. The
//! record is written first (uncommitted, naming the process doing it), so a
//! `run` killed halfway leaves something the next command's reconcile can
//! find and roll back; an error here undoes every step before it returns.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::{
    find_in, valid_name, Attachment, Container, ContainerStore, Mount, MountKind, NetworkMode, ProcessConfig,
    Resources, RootfsSource, State,
};
use crate::image::ImageStore;
use crate::network::ipam::{format_mac, mac_for, NetworkStore};
use crate::network::links::Iproute2;
use crate::network::ports::{free_port, PortSpec};
use crate::network::stage::{self, DEFAULT_NETWORK};
use crate::state;
use crate::volume::{self, VolumeSpec, VolumeStore};

/// What `wharf run` asks for, parsed from its flags.
#[derive(Debug, Clone)]
pub struct Request {
    pub name: Option<String>,
    pub rootfs: RootfsSource,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub hostname: Option<String>,
    pub network: NetworkMode,
    pub volumes: Vec<VolumeSpec>,
    /// `--volumes-from`: container and an optional read-only override.
    pub volumes_from: Vec<(String, Option<bool>)>,
    pub resources: Resources,
    pub auto_remove: bool,
    pub tty: bool,
    /// `--ip`, on the container's (user) network.
    pub ip: Option<std::net::Ipv4Addr>,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// `-p`.
    pub ports: Vec<PortSpec>,
}

/// Creates the container (status Created, uncommitted) and returns it. The
/// caller holds the state lock.
pub fn create(store: &ContainerStore, request: Request) -> Result<Container, String> {
    let existing = store.scan().map_err(|e| e.to_string())?.containers;
    let images = ImageStore::new(store.root());
    let volumes = VolumeStore::new(store.root());

    // Check everything before changing anything.
    if request.cmd.is_empty() {
        return Err("no command specified".into());
    }
    let image_rootfs = match &request.rootfs {
        RootfsSource::Image(name) => {
            images.get(name).map_err(|e| e.to_string())?;
            images.rootfs(name)
        }
        RootfsSource::Directory(dir) => {
            if !dir.is_absolute() || !dir.is_dir() {
                return Err(format!("--rootfs {}: not an absolute path to a directory", dir.display()));
            }
            dir.clone()
        }
    };
    if let Some(name) = &request.name {
        if !valid_name(name) {
            return Err(format!("invalid container name \"{name}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"));
        }
        if existing.iter().any(|c| &c.name == name) {
            return Err(format!("container name \"{name}\" is already in use"));
        }
    }
    if let Some(workdir) = &request.workdir {
        if !workdir.starts_with('/') {
            return Err(format!("the working directory \"{workdir}\" is invalid: it needs to be an absolute path"));
        }
    }
    if let NetworkMode::Container(reference) = &request.network {
        find_in(&existing, reference).map_err(|e| format!("--network container:{reference}: {e}"))?;
    }
    let network = match &request.network {
        NetworkMode::Bridge(name) => {
            let networks = NetworkStore::new(store.root());
            let network = if name == DEFAULT_NETWORK {
                stage::ensure_default(&networks, &Iproute2)?
            } else {
                networks.get(name).map_err(|e| e.to_string())?
            };
            if network.name == DEFAULT_NETWORK && request.ip.is_some() {
                return Err("user specified IP address is supported on user defined networks only".into());
            }
            if network.name == DEFAULT_NETWORK && !request.aliases.is_empty() {
                return Err("network-scoped alias is supported only for containers in user defined networks".into());
            }
            Some(network)
        }
        _ if request.ip.is_some() || !request.aliases.is_empty() => {
            return Err("--ip and --network-alias need a user network (--network NAME)".into());
        }
        _ if !request.ports.is_empty() => {
            return Err(format!(
                "port publishing needs a bridge network, not --network {}",
                request.network.docker_word()
            ));
        }
        _ => None,
    };
    let mut ports = request.ports.clone();
    for port in &mut ports {
        if port.host_port == 0 {
            if port.count > 1 {
                return Err(format!("-p {port}: give the host port range for a range of container ports"));
            }
            port.host_port = free_port(port.proto).map_err(|e| format!("find a free host port: {e}"))?;
        }
    }
    for spec in &request.volumes {
        if let VolumeSpec::Bind { source, .. } = spec {
            if !source.exists() {
                return Err(format!("invalid mount config: bind source path does not exist: {}", source.display()));
            }
        }
    }
    let mut inherited = Vec::new();
    for (reference, read_only) in &request.volumes_from {
        let other = find_in(&existing, reference).map_err(|e| format!("--volumes-from {reference}: {e}"))?;
        for mount in &other.mounts {
            // The volumes are shared, not owned: `rm -v` of this container
            // leaves them to the one that made them.
            inherited.push(Mount {
                read_only: read_only.unwrap_or(mount.read_only),
                anonymous: false,
                ..mount.clone()
            });
        }
    }
    let mut targets = BTreeSet::new();
    for target in
        request.volumes.iter().map(VolumeSpec::target).chain(inherited.iter().map(|m| m.destination.as_path()))
    {
        if !targets.insert(target.to_path_buf()) {
            return Err(format!("duplicate mount point: {}", target.display()));
        }
    }

    let id = state::random_id().map_err(|e| format!("make an id: {e}"))?;
    let name = match request.name.clone() {
        Some(name) => name,
        None => format!("wharf_{}", &id[..12]),
    };
    let container = Container {
        id: id.clone(),
        name,
        created: state::now_rfc3339(),
        rootfs: request.rootfs.clone(),
        config: ProcessConfig {
            cmd: request.cmd.clone(),
            env: request.env.clone(),
            workdir: request.workdir.clone().unwrap_or_else(|| "/".into()),
            hostname: request.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
            tty: request.tty,
        },
        network: request.network.clone(),
        mounts: Vec::new(),
        resources: request.resources,
        auto_remove: request.auto_remove,
        networks: Vec::new(),
        ports: Vec::new(),
        state: State::new(),
    };

    // Act: the record first, then the address and the volumes; undo on error.
    let networks = NetworkStore::new(store.root());
    let mut undo = Undo {
        volumes: &volumes,
        networks: &networks,
        dir: store.dir(&id),
        created_volumes: Vec::new(),
        allocated_on: None,
        id: id.clone(),
        done: false,
    };
    fs::create_dir_all(&undo.dir).map_err(|e| format!("create {}: {e}", undo.dir.display()))?;
    store.save(&container).map_err(|e| e.to_string())?;
    let mut attachments = Vec::new();
    if let Some(mut network) = network {
        let ip = network.allocate(&id, request.ip).map_err(|e| e.to_string())?;
        networks.save(&network).map_err(|e| e.to_string())?;
        undo.allocated_on = Some(network.name.clone());
        attachments.push(Attachment {
            network: network.name.clone(),
            ip,
            mac: format_mac(mac_for(ip)),
            aliases: request.aliases.clone(),
        });
    }
    let mut mounts = Vec::new();
    for spec in &request.volumes {
        mounts.push(prepare_volume(spec, &volumes, &image_rootfs, &mut undo.created_volumes)?);
    }
    mounts.extend(inherited);
    let container = Container { mounts, networks: attachments, ports, ..container };
    store.save(&container).map_err(|e| e.to_string())?;
    undo.done = true;
    Ok(container)
}

fn prepare_volume(
    spec: &VolumeSpec,
    volumes: &VolumeStore,
    image_rootfs: &Path,
    created: &mut Vec<String>,
) -> Result<Mount, String> {
    let (name, target, read_only, anonymous) = match spec {
        VolumeSpec::Bind { source, target, read_only } => {
            return Ok(Mount {
                kind: MountKind::Bind,
                name: None,
                source: source.clone(),
                destination: target.clone(),
                read_only: *read_only,
                anonymous: false,
            })
        }
        VolumeSpec::Named { name, target, read_only } => {
            let existed = volumes.get(name).is_ok();
            volumes.get_or_create(name).map_err(|e| e.to_string())?;
            if !existed {
                created.push(name.clone());
            }
            (name.clone(), target, *read_only, false)
        }
        VolumeSpec::Anonymous { target } => {
            let volume = volumes.create(None, true).map_err(|e| e.to_string())?;
            created.push(volume.name.clone());
            (volume.name, target, false, true)
        }
    };
    // Docker's copy-up: an empty volume takes what the image has there.
    let source = volume::secure_join(image_rootfs, target).map_err(|e| format!("{}: {e}", target.display()))?;
    volumes.copy_up(&name, &source).map_err(|e| e.to_string())?;
    Ok(Mount {
        kind: MountKind::Volume,
        source: volumes.mountpoint(&name),
        name: Some(name),
        destination: target.clone(),
        read_only,
        anonymous,
    })
}

/// Undoes a creation that did not finish: the volumes it made and its
/// directory with the record.
struct Undo<'a> {
    volumes: &'a VolumeStore,
    networks: &'a NetworkStore,
    dir: PathBuf,
    created_volumes: Vec<String>,
    /// The network where an address was allocated to `id`.
    allocated_on: Option<String>,
    id: String,
    done: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        for name in self.created_volumes.iter().rev() {
            let _ = self.volumes.remove(name);
        }
        if let Some(Ok(mut network)) = self.allocated_on.as_ref().map(|name| self.networks.get(name)) {
            network.release(&self.id);
            let _ = self.networks.save(&network);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}
