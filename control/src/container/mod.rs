//! Containers: what one is (its record on disk), how it is found, and the
//! commands that make, run, stop and remove it. Processes are started by a
//! real OCI runtime (`runc`) through [`runtime::Runtime`]; a small
//! per-container monitor ([`monitor`]) waits for the container's process,
//! keeps its output in a log and records how it ended.
//!
//! A container's record lives in `WHARF_ROOT/containers/ID/container.json`
//! and is only changed under the state lock. Creation is a transaction:
//! the record is written first with `committed: false`, and a `run` that
//! dies before its container is up leaves a record that the next command's
//! [`lifecycle::reconcile`] removes, with everything it owned.

pub mod cli;
pub mod create;
pub mod lifecycle;
pub mod monitor;
pub mod network;
pub mod report;
pub mod resources;
pub mod rootfs;
pub mod runtime;
pub mod spec;

use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::state::{self, Root};

pub use network::NetworkMode;
pub use resources::Resources;

/// Everything wharf knows about one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub created: String,
    /// Where the root filesystem comes from.
    pub rootfs: RootfsSource,
    pub config: ProcessConfig,
    pub network: NetworkMode,
    pub mounts: Vec<Mount>,
    pub resources: Resources,
    /// `--rm`: remove the container when it exits.
    pub auto_remove: bool,
    /// The networks it is attached to (bridge mode), the first one first.
    #[serde(default)]
    pub networks: Vec<Attachment>,
    /// Published ports (random host ports already chosen).
    #[serde(default)]
    pub ports: Vec<crate::network::ports::PortSpec>,
    pub state: State,
}

impl Container {
    /// The first 12 hex digits of the id, as `docker ps` shows it.
    pub fn short_id(&self) -> &str {
        state::short_id(&self.id)
    }
}

/// A container's place on one network: its address there and the names
/// other containers on that network know it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub network: String,
    pub ip: std::net::Ipv4Addr,
    pub mac: String,
    /// `--network-alias` names.
    pub aliases: Vec<String>,
}

/// The root filesystem: an imported image (mounted as the lower layer of an
/// overlay, so the container's writes never reach it) or a directory used in
/// place (`--rootfs DIR`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RootfsSource {
    Image(String),
    Directory(PathBuf),
}

impl RootfsSource {
    /// What `ps` and `inspect` show as the image.
    pub fn display(&self) -> String {
        match self {
            RootfsSource::Image(name) => name.clone(),
            RootfsSource::Directory(dir) => dir.display().to_string(),
        }
    }
}

/// The container's process: what `docker inspect` calls Config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessConfig {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    pub hostname: String,
    /// `-t`: the process gets a pseudo-terminal.
    #[serde(default)]
    pub tty: bool,
}

/// One mount of a bind source or a managed volume into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub kind: MountKind,
    /// The volume's name (volumes only).
    pub name: Option<String>,
    /// The host path mounted.
    pub source: PathBuf,
    /// The path inside the container.
    pub destination: PathBuf,
    pub read_only: bool,
    /// An anonymous volume, removed by `rm -v`.
    pub anonymous: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    Bind,
    Volume,
}

/// What the container is doing, as the monitor last recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    /// False until the `run` that made the container has it running (or
    /// created, for a container whose first start failed in its command).
    pub committed: bool,
    /// The process doing the current transaction (`run`, `start`): if it dies
    /// with `committed` false, reconcile rolls the container back.
    pub owner: Option<Process>,
    /// The container's monitor while it runs.
    pub monitor: Option<Process>,
    /// The container's init process as the host sees it.
    pub pid: Option<u32>,
    pub exit_code: i32,
    pub oom_killed: bool,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Why the last start failed, if it did.
    pub error: Option<String>,
    /// The wharf-proxy serving its published ports while it runs.
    #[serde(default)]
    pub proxy: Option<Process>,
}

impl State {
    pub fn new() -> State {
        State {
            status: Status::Created,
            committed: false,
            owner: Some(Process::current()),
            monitor: None,
            pid: None,
            exit_code: 0,
            oom_killed: false,
            started_at: None,
            finished_at: None,
            error: None,
            proxy: None,
        }
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    /// The monitor is starting it.
    Starting,
    Running,
    Exited,
}

impl Status {
    /// Running, or being started by its monitor.
    pub fn is_up(self) -> bool {
        matches!(self, Status::Running | Status::Starting)
    }

    /// Docker's word for it in `inspect`.
    pub fn docker_word(self) -> &'static str {
        match self {
            Status::Created | Status::Starting => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

/// A process identified by pid and start time, so a recycled pid is not
/// mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    pub start_time: u64,
}

impl Process {
    pub fn current() -> Process {
        let pid = std::process::id();
        Process { pid, start_time: start_time(pid).unwrap_or(0) }
    }

    pub fn of(pid: u32) -> Option<Process> {
        Some(Process { pid, start_time: start_time(pid)? })
    }

    /// Whether this very process is still alive (a zombie counts as gone).
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }
}

/// Field 22 of /proc/PID/stat (start time in clock ticks since boot), or
/// None for a process that is gone or a zombie.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// What [`ContainerStore::scan`] found in the containers directory.
#[derive(Debug, Default)]
pub struct Scan {
    /// Every container with a readable record, oldest first.
    pub containers: Vec<Container>,
    /// Directories without a record: a `wharf` command creating the
    /// container was killed before it wrote one (records are written
    /// whole, so a missing one is the only half-created form).
    pub half_created: Vec<String>,
    /// Directories whose record is there but does not read (edited by
    /// hand, written by another version), and why: nothing removes these.
    pub unreadable: Vec<(String, String)>,
}

/// The containers under `WHARF_ROOT/containers`.
#[derive(Debug, Clone)]
pub struct ContainerStore {
    root: Root,
}

/// Errors naming a container.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("multiple containers match {0}: give more of the id")]
    Ambiguous(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl ContainerStore {
    pub fn new(root: &Root) -> ContainerStore {
        ContainerStore { root: root.clone() }
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    /// `WHARF_ROOT/containers/ID`.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.containers().join(id)
    }

    fn record(&self, id: &str) -> PathBuf {
        self.dir(id).join("container.json")
    }

    /// The container's output log.
    pub fn log(&self, id: &str) -> PathBuf {
        self.dir(id).join("container.log")
    }

    /// Writes the record atomically (the caller holds the state lock).
    pub fn save(&self, container: &Container) -> io::Result<()> {
        state::write_json(&self.record(&container.id), container)
    }

    /// The record of container `id`; refused (`InvalidData`) unless it is
    /// the record of that id, 64 hex digits, as wharf writes them.
    pub fn load(&self, id: &str) -> io::Result<Container> {
        let path = self.record(id);
        let container: Container = state::read_json(&path)?;
        let well_formed =
            container.id.len() == 64 && container.id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if container.id != id || !well_formed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: the record's id {:?} is not its directory's", path.display(), container.id),
            ));
        }
        Ok(container)
    }

    /// Every container directory, by what its record says (see [`Scan`]).
    pub fn scan(&self) -> io::Result<Scan> {
        let mut scan = Scan::default();
        let entries = match fs::read_dir(self.root.containers()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(scan),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let id = entry?.file_name().to_string_lossy().into_owned();
            match self.load(&id) {
                Ok(container) => scan.containers.push(container),
                Err(e) if e.kind() == io::ErrorKind::NotFound => scan.half_created.push(id),
                Err(e) => scan.unreadable.push((id, e.to_string())),
            }
        }
        scan.containers.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
        Ok(scan)
    }

    /// Every container, oldest first.
    pub fn list(&self) -> io::Result<Vec<Container>> {
        Ok(self.scan()?.containers)
    }

    /// Finds a container by name, full id or unique id prefix.
    pub fn find(&self, reference: &str) -> Result<Container, LookupError> {
        let containers = self.list()?;
        find_in(&containers, reference).cloned()
    }
}

/// Finds a container by name, full id or unique id prefix in `containers`.
pub fn find_in<'a>(containers: &'a [Container], reference: &str) -> Result<&'a Container, LookupError> {
    let reference_name = reference.strip_prefix('/').unwrap_or(reference);
    if let Some(found) = containers.iter().find(|c| c.id == reference || c.name == reference_name) {
        return Ok(found);
    }
    let mut by_prefix =
        containers.iter().filter(|c| !reference.is_empty() && reference.len() < 64 && c.id.starts_with(reference));
    match (by_prefix.next(), by_prefix.next()) {
        (Some(found), None) => Ok(found),
        (Some(_), Some(_)) => Err(LookupError::Ambiguous(reference.to_string())),
        (None, _) => Err(LookupError::NotFound(reference.to_string())),
    }
}

/// A container record for unit tests: `sh` in the busybox image, created
/// now, nothing else set.
#[cfg(test)]
pub(crate) fn test_container(id: &str, name: &str) -> Container {
    Container {
        id: id.to_string(),
        name: name.to_string(),
        created: state::now_rfc3339(),
        rootfs: RootfsSource::Image("busybox".into()),
        config: ProcessConfig {
            cmd: vec!["sh".into()],
            env: vec![],
            workdir: "/".into(),
            hostname: "h".into(),
            tty: false,
        },
        network: NetworkMode::None,
        mounts: vec![],
        resources: Resources::default(),
        auto_remove: false,
        networks: vec![],
        ports: vec![],
        state: State::new(),
    }
}

/// Container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, as Docker's.
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_found_by_name_id_or_unique_prefix() {
        let a = test_container(&format!("abc1{}", "0".repeat(60)), "web");
        let b = test_container(&format!("abc2{}", "0".repeat(60)), "db");
        let all = [a.clone(), b.clone()];
        assert_eq!(find_in(&all, "web").unwrap().id, a.id);
        assert_eq!(find_in(&all, "/db").unwrap().id, b.id);
        assert_eq!(find_in(&all, &a.id).unwrap().name, "web");
        assert_eq!(find_in(&all, "abc2").unwrap().name, "db");
        assert!(matches!(find_in(&all, "abc"), Err(LookupError::Ambiguous(_))));
        assert!(matches!(find_in(&all, "zzz"), Err(LookupError::NotFound(_))));
        assert!(matches!(find_in(&all, ""), Err(LookupError::NotFound(_))));
        assert_eq!(LookupError::NotFound("x".into()).to_string(), "no such container: x");
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert!(valid_name("web"));
        assert!(valid_name("a.b_c-1"));
        assert!(!valid_name(""));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("a b"));
    }

    #[test]
    fn a_process_is_alive_only_with_its_own_start_time() {
        let me = Process::current();
        assert!(me.alive());
        assert!(!Process { start_time: me.start_time + 1, ..me }.alive());
        assert!(Process::of(u32::MAX).is_none());
    }

    #[test]
    fn records_round_trip_through_the_store() {
        let scratch = state::Scratch::new("store");
        let store = ContainerStore::new(&scratch.root());
        let c = test_container(&"f".repeat(64), "x");
        fs::create_dir_all(store.dir(&c.id)).unwrap();
        fs::create_dir_all(store.dir("broken")).unwrap();
        store.save(&c).unwrap();
        let scan = store.scan().unwrap();
        assert_eq!(scan.containers, vec![c]);
        assert_eq!(scan.half_created, vec!["broken".to_string()]);
        assert!(scan.unreadable.is_empty());
    }

    #[test]
    fn a_record_that_does_not_read_is_set_aside_not_taken_for_half_created() {
        let scratch = state::Scratch::new("unreadable");
        let store = ContainerStore::new(&scratch.root());
        let good = test_container(&"a".repeat(64), "good");
        fs::create_dir_all(store.dir(&good.id)).unwrap();
        store.save(&good).unwrap();
        // Not JSON; a record whose id is short (`wharf ps` prints id[..12]);
        // one whose id is another directory's.
        let garbled = "b".repeat(64);
        fs::create_dir_all(store.dir(&garbled)).unwrap();
        fs::write(store.record(&garbled), "{\"id\": ").unwrap();
        let short = test_container("c0ffee", "short");
        fs::create_dir_all(store.dir(&short.id)).unwrap();
        state::write_json(&store.record(&short.id), &short).unwrap();
        let moved = "d".repeat(64);
        fs::create_dir_all(store.dir(&moved)).unwrap();
        state::write_json(&store.record(&moved), &good).unwrap();

        let scan = store.scan().unwrap();
        assert_eq!(scan.containers, vec![good]);
        assert!(scan.half_created.is_empty(), "{:?}", scan.half_created);
        let mut ids: Vec<&str> = scan.unreadable.iter().map(|(id, _)| id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, [garbled.as_str(), "c0ffee", moved.as_str()]);
        let why = &scan.unreadable.iter().find(|(id, _)| id == "c0ffee").unwrap().1;
        assert!(why.contains("is not its directory's"), "{why}");
    }
}
