//! The OCI runtime bundle's `config.json` for a container: its process,
//! root filesystem, mounts, namespaces (pid, mount, uts, ipc and network as
//! the network stage says), Docker's default capabilities and masked paths,
//! and the resource limits.

use std::path::Path;

use serde_json::{json, Value};

use super::network::Namespace;
use super::{resources, Container};

/// Docker's default capability set.
const CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// What a start needs beyond the container's record.
#[derive(Debug, Clone)]
pub struct Start<'a> {
    /// The root filesystem runc uses (the overlay's merged dir, or `--rootfs`).
    pub rootfs: &'a Path,
    pub network: Namespace,
    pub terminal: bool,
    /// Files bound over paths in the root filesystem (`/etc/hosts`, ...).
    pub files: &'a [(std::path::PathBuf, &'static str)],
}

/// The bundle's config.json.
pub fn config(container: &Container, start: &Start<'_>) -> Value {
    let mut namespaces = vec![json!({"type": "pid"}), json!({"type": "ipc"}), json!({"type": "uts"})];
    namespaces.push(json!({"type": "mount"}));
    match &start.network {
        Namespace::New => namespaces.push(json!({"type": "network"})),
        Namespace::Join(path) => namespaces.push(json!({"type": "network", "path": path})),
        Namespace::Host => {}
    }
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc"}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
    ];
    // sysfs can only be mounted fresh in a network namespace of our own;
    // otherwise bind the host's, read-only, as Docker does.
    mounts.push(match start.network {
        Namespace::New => json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                                  "options": ["nosuid", "noexec", "nodev", "ro"]}),
        _ => json!({"destination": "/sys", "type": "bind", "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}),
    });
    mounts.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                       "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}));
    for (file, inside) in start.files {
        mounts.push(json!({"destination": inside, "type": "bind", "source": file, "options": ["rbind", "rprivate"]}));
    }
    for mount in &container.mounts {
        let mode = if mount.read_only { "ro" } else { "rw" };
        mounts.push(json!({"destination": mount.destination, "type": "bind", "source": mount.source,
                           "options": ["rbind", mode, "rprivate"]}));
    }
    let mut env = container.config.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    if start.terminal && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": start.terminal,
            "user": {"uid": 0, "gid": 0},
            "args": container.config.cmd,
            "env": env,
            "cwd": container.config.workdir,
            "capabilities": {
                "bounding": CAPABILITIES, "effective": CAPABILITIES, "permitted": CAPABILITIES,
            },
            "noNewPrivileges": false,
        },
        "root": {"path": start.rootfs, "readonly": false},
        "hostname": container.config.hostname,
        "mounts": mounts,
        "linux": {
            "cgroupsPath": resources::cgroup_path(&container.id),
            "resources": container.resources.oci(),
            "namespaces": namespaces,
            "maskedPaths": [
                "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                "/sys/firmware", "/sys/devices/virtual/powercap",
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{Mount, MountKind, NetworkMode, ProcessConfig, Resources, RootfsSource, State};
    use std::path::PathBuf;

    fn container() -> Container {
        Container {
            id: "c".repeat(64),
            name: "web".into(),
            created: String::new(),
            rootfs: RootfsSource::Image("busybox".into()),
            config: ProcessConfig {
                cmd: vec!["sleep".into(), "1000".into()],
                env: vec!["A=1".into()],
                workdir: "/tmp".into(),
                hostname: "h1".into(),
                tty: false,
            },
            network: NetworkMode::None,
            mounts: vec![Mount {
                kind: MountKind::Bind,
                name: None,
                source: "/srv/data".into(),
                destination: "/data".into(),
                read_only: true,
                anonymous: false,
            }],
            resources: Resources { memory: 64 << 20, ..Resources::default() },
            auto_remove: false,
            networks: vec![],
            ports: vec![],
            state: State::new(),
        }
    }

    fn namespace_types(config: &Value) -> Vec<String> {
        config["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap().into()).collect()
    }

    #[test]
    fn the_bundle_carries_the_process_root_and_limits() {
        let rootfs = PathBuf::from("/var/lib/wharf/containers/c/rootfs");
        let config =
            config(&container(), &Start { rootfs: &rootfs, network: Namespace::New, terminal: false, files: &[] });
        assert_eq!(config["process"]["args"], json!(["sleep", "1000"]));
        assert_eq!(config["process"]["cwd"], "/tmp");
        assert_eq!(config["process"]["env"][1], "A=1");
        assert!(config["process"]["env"][0].as_str().unwrap().starts_with("PATH="));
        assert_eq!(config["hostname"], "h1");
        assert_eq!(config["root"]["path"], "/var/lib/wharf/containers/c/rootfs");
        assert_eq!(config["linux"]["cgroupsPath"], format!("/wharf/{}", "c".repeat(64)));
        assert_eq!(config["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(namespace_types(&config), ["pid", "ipc", "uts", "mount", "network"]);
        let bind = config["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == "/data").unwrap();
        assert_eq!(bind["source"], "/srv/data");
        assert_eq!(bind["options"], json!(["rbind", "ro", "rprivate"]));
    }

    #[test]
    fn the_network_stage_decides_the_namespace() {
        let rootfs = PathBuf::from("/r");
        let host =
            config(&container(), &Start { rootfs: &rootfs, network: Namespace::Host, terminal: false, files: &[] });
        assert_eq!(namespace_types(&host), ["pid", "ipc", "uts", "mount"]);
        let sys = host["mounts"].as_array().unwrap().iter().find(|m| m["destination"] == "/sys").unwrap();
        assert_eq!(sys["type"], "bind");
        let joined =
            Start { rootfs: &rootfs, network: Namespace::Join("/proc/42/ns/net".into()), terminal: true, files: &[] };
        let joined = config(&container(), &joined);
        assert_eq!(joined["linux"]["namespaces"][4], json!({"type": "network", "path": "/proc/42/ns/net"}));
        assert_eq!(joined["process"]["terminal"], true);
    }
}
