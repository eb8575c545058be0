//! The per-container monitor: a `wharf container-monitor ID` process that
//! starts the container through the runtime, stays its parent (as a child
//! subreaper) while it runs, keeps its output in the container's log, and
//! records how it ended — exit code, OOM kill, time — before it deletes the
//! runtime's container and unmounts the root filesystem.
//!
//! `run` and `start` launch it ([`launch`]) and wait until it reports the
//! container running or failed. In the foreground the monitor's standard
//! streams are the user's: the container's output is copied there as well
//! as to the log, and `-i` hands the user's stdin straight to the container.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::network::{Namespace, NamespaceOnly, NetworkMode, NetworkStage};
use super::resources::Cgroup;
use super::rootfs::{Kernel, Mounter, Overlay};
use super::runtime::{Runc, Runtime, Streams};
use super::{lifecycle, spec, Container, ContainerStore, Process, RootfsSource, Status};
use crate::image::ImageStore;
use crate::network::firewall::Iptables;
use crate::network::ipam::NetworkStore;
use crate::network::links::Iproute2;
use crate::network::stage::{write_identity_files, BridgeStage};
use crate::state::{self, Root};

/// How the monitor's standard streams are wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attach {
    /// Detached: the container's output goes only to the log.
    None,
    /// Foreground: output to the user's stdout and stderr too.
    Output,
    /// Foreground with `-i`: the user's stdin is the container's.
    OutputAndInput,
}

/// Starts the monitor for container `id`, whose record the caller has set
/// to [`Status::Starting`], and waits until the container is running or its
/// start failed. Returns the monitor (the caller waits for it in the
/// foreground; detached, it outlives the caller).
pub fn launch(store: &ContainerStore, id: &str, attach: Attach) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("find the wharf binary: {e}"))?;
    let log = store.dir(id).join("monitor.log");
    let mut command = Command::new(exe);
    command.arg("container-monitor").arg(id).env("WHARF_ROOT", store.root().dir());
    match attach {
        Attach::None => {
            let log = File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
            command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
            // Detached: its own process group, out of reach of the
            // terminal's signals.
            command.process_group(0);
        }
        Attach::Output => {
            command.arg("--attach").stdin(Stdio::null());
        }
        Attach::OutputAndInput => {
            command.arg("--attach");
        }
    }
    let mut child = command.spawn().map_err(|e| format!("start the container monitor: {e}"))?;
    loop {
        // The record goes only after the container ran: a `--rm` one whose
        // command ended at once, removed by the monitor before this first
        // looked (or by a `wharf rm -f` meanwhile). The monitor's exit
        // code is the container's.
        let Some(container) = load_if_there(store, id)? else { return Ok(child) };
        match container.state.status {
            Status::Running | Status::Exited if container.state.error.is_none() => return Ok(child),
            Status::Starting => {}
            _ => return Err(container.state.error.unwrap_or_else(|| "the container did not start".into())),
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            let Some(container) = load_if_there(store, id)? else { return Ok(child) };
            if container.state.status != Status::Starting {
                continue;
            }
            let said = fs::read_to_string(&log).unwrap_or_default();
            return Err(format!(
                "the container monitor exited ({status}) before the container started: {}",
                said.trim()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The record of container `id`, or `None` if it is gone.
fn load_if_there(store: &ContainerStore, id: &str) -> Result<Option<Container>, String> {
    match store.load(id) {
        Ok(container) => Ok(Some(container)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// `wharf container-monitor ID [--attach]`: the monitor process itself.
pub fn main(id: &str, attach: bool) -> ExitCode {
    if attach {
        // Attached, the monitor stays in the terminal's foreground process
        // group, where it may read the terminal; a ^C there is for the
        // foreground `wharf run`, which passes it on to the container.
        let ignored = Arc::new(AtomicBool::new(false));
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGQUIT] {
            let _ = signal_hook::flag::register(signal, Arc::clone(&ignored));
        }
    }
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        dataplane::stderr_line!("wharf: container monitor: become a subreaper: {e}");
        return ExitCode::FAILURE;
    }
    let root = Root::from_env();
    let store = ContainerStore::new(&root);
    let runtime = Runc::new(root.runtime_state());
    match monitor(&store, &runtime, id, attach) {
        // The foreground `run` waiting for this process exits with its code.
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(message) => {
            dataplane::stderr_line!("wharf: container {id}: {message}");
            ExitCode::FAILURE
        }
    }
}

fn update(store: &ContainerStore, id: &str, change: impl FnOnce(&mut Container)) -> Result<Container, String> {
    let _lock = store.root().lock().map_err(|e| e.to_string())?;
    let mut container = store.load(id).map_err(|e| e.to_string())?;
    change(&mut container);
    store.save(&container).map_err(|e| e.to_string())?;
    Ok(container)
}

/// What a started container holds that must be undone when it stops.
struct Started {
    pid: u32,
    copiers: Vec<JoinHandle<()>>,
}

fn monitor(store: &ContainerStore, runtime: &dyn Runtime, id: &str, attach: bool) -> Result<i32, String> {
    let container = update(store, id, |c| c.state.monitor = Some(Process::current()))?;
    let network = network_stage(store, &container);
    let started = match start(store, runtime, &Kernel, &container, network.as_deref(), attach) {
        Ok(started) => started,
        Err(message) => {
            stop_and_release(store, runtime, &Kernel, &container, network.as_deref());
            update(store, id, |c| {
                c.state.status = if c.state.started_at.is_some() { Status::Exited } else { Status::Created };
                c.state.error = Some(message.clone());
                c.state.exit_code = 128;
                c.state.monitor = None;
                c.state.pid = None;
            })?;
            // The command that launched this monitor reports the error.
            return Ok(128);
        }
    };
    update(store, id, |c| {
        c.state.status = Status::Running;
        c.state.committed = true;
        c.state.pid = Some(started.pid);
        c.state.started_at = Some(state::now_rfc3339());
        c.state.finished_at = None;
        c.state.exit_code = 0;
        c.state.oom_killed = false;
        c.state.error = None;
    })?;
    let exit_code = wait_for(started.pid);
    let oom_killed = Cgroup::of(Path::new("/sys/fs/cgroup"), id).oom_killed();
    for copier in started.copiers {
        let _ = copier.join();
    }
    stop_and_release(store, runtime, &Kernel, &container, network.as_deref());
    let _lock = store.root().lock().map_err(|e| e.to_string())?;
    let mut container = store.load(id).map_err(|e| e.to_string())?;
    container.state.status = Status::Exited;
    container.state.exit_code = exit_code;
    container.state.oom_killed = oom_killed;
    container.state.finished_at = Some(state::now_rfc3339());
    container.state.monitor = None;
    container.state.pid = None;
    // Exited first: a `--rm` whose removal fails here is finished by
    // `reconcile`, and never looks like a container still running.
    store.save(&container).map_err(|e| e.to_string())?;
    if container.auto_remove {
        lifecycle::remove_files(store, &container, true).map_err(|e| e.to_string())?;
    }
    if !container.networks.is_empty() {
        // The resolver forgets it.
        if let Err(e) = crate::network::resolver::sync(store.root()) {
            dataplane::stderr_line!("wharf: container {id}: {e}");
        }
    }
    Ok(exit_code)
}

/// The network stage for the container's mode; `container:NAME` joins the
/// namespace of NAME's init process as it runs now.
fn network_stage(store: &ContainerStore, container: &Container) -> Result<Box<dyn NetworkStage>, String> {
    let namespace = match &container.network {
        NetworkMode::None => Namespace::New,
        NetworkMode::Host => Namespace::Host,
        NetworkMode::Container(reference) => {
            let other = store.find(reference).map_err(|e| format!("--network container:{reference}: {e}"))?;
            match (other.state.status, other.state.pid) {
                (Status::Running, Some(pid)) => Namespace::Join(PathBuf::from(format!("/proc/{pid}/ns/net"))),
                _ => return Err(format!("--network container:{reference}: container {} is not running", other.name)),
            }
        }
        NetworkMode::Bridge(_) => {
            return Ok(Box::new(BridgeStage::new(store.root(), container, &Iproute2, &Iptables)));
        }
    };
    Ok(Box::new(NamespaceOnly(namespace)))
}

/// The root filesystem runc is given, mounting the overlay for an image.
pub fn rootfs_path(store: &ContainerStore, container: &Container) -> PathBuf {
    match &container.rootfs {
        RootfsSource::Image(_) => store.dir(&container.id).join("rootfs"),
        RootfsSource::Directory(dir) => dir.clone(),
    }
}

fn start(
    store: &ContainerStore,
    runtime: &dyn Runtime,
    mounter: &dyn Mounter,
    container: &Container,
    network: Result<&dyn NetworkStage, &String>,
    attach: bool,
) -> Result<Started, String> {
    let network = network.map_err(|e| e.clone())?;
    let dir = store.dir(&container.id);
    if let RootfsSource::Image(image) = &container.rootfs {
        let images = ImageStore::new(store.root());
        mounter.mount_overlay(&Overlay::for_container(&dir, &images.rootfs(image))).map_err(|e| e.to_string())?;
    }
    let rootfs = rootfs_path(store, container);
    let bundle = dir.join("bundle");
    fs::create_dir_all(&bundle).map_err(|e| format!("create {}: {e}", bundle.display()))?;
    let files = match container.network {
        NetworkMode::Bridge(_) => {
            let networks = NetworkStore::new(store.root()).list().map_err(|e| e.to_string())?;
            write_identity_files(&dir, container, &networks)?
        }
        _ => Vec::new(),
    };
    let config = spec::config(
        container,
        &spec::Start { rootfs: &rootfs, network: network.namespace(), terminal: container.config.tty, files: &files },
    );
    state::write_json(&bundle.join("config.json"), &config).map_err(|e| e.to_string())?;

    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(store.log(&container.id))
        .map_err(|e| format!("open the container log: {e}"))?;
    let log = Arc::new(Mutex::new(log));
    // Until the runtime has created the container, what arrives on these
    // pipes is the runtime's own complaint, which the launching command
    // reports; only the container's output goes to the user's terminal.
    let forward = Arc::new(AtomicBool::new(false));
    let forwarding = || attach.then(|| Arc::clone(&forward));
    let mut copiers = Vec::new();
    let mut console = None;
    let streams = if container.config.tty {
        // The runtime sends the terminal's master end to this socket.
        let path = std::env::temp_dir().join(format!("wharf-console-{}.sock", std::process::id()));
        let _ = fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(|e| format!("listen on {}: {e}", path.display()))?;
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let master = listener.accept().and_then(|(socket, _)| dataplane::sys::process::recv_fd(&socket));
            let _ = sender.send(master);
        });
        console = Some((path, receiver));
        Streams { stdin: Stdio::null(), stdout: Stdio::null(), stderr: Stdio::null() }
    } else {
        let (out_reader, out_writer) = nix::unistd::pipe().map_err(|e| format!("create a pipe: {e}"))?;
        let (err_reader, err_writer) = nix::unistd::pipe().map_err(|e| format!("create a pipe: {e}"))?;
        copiers.push(copy_output(File::from(out_reader), Stream::Stdout, Arc::clone(&log), forwarding()));
        copiers.push(copy_output(File::from(err_reader), Stream::Stderr, Arc::clone(&log), forwarding()));
        let stdin = if attach { Stdio::inherit() } else { Stdio::null() };
        Streams { stdin, stdout: out_writer.into(), stderr: err_writer.into() }
    };
    let pid_file = bundle.join("init.pid");
    let _ = fs::remove_file(&pid_file);
    let created =
        runtime.create(&container.id, &bundle, &pid_file, streams, console.as_ref().map(|(p, _)| p.as_path()));
    if let Some((path, receiver)) = console {
        let _ = fs::remove_file(&path);
        created.as_ref().map_err(|e| e.to_string())?;
        let master = receiver
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the runtime sent no terminal".to_string())?
            .map_err(|e| format!("receive the container's terminal: {e}"))?;
        let master = File::from(master);
        if attach {
            // The user's keys go to the terminal until either side ends.
            let mut input = master.try_clone().map_err(|e| e.to_string())?;
            std::thread::spawn(move || {
                let _ = io::copy(&mut io::stdin().lock(), &mut input);
            });
        }
        copiers.push(copy_output(master, Stream::Stdout, Arc::clone(&log), forwarding()));
    }
    created.map_err(|e| e.to_string())?;
    let pid = fs::read_to_string(&pid_file)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .ok_or_else(|| format!("the runtime wrote no pid to {}", pid_file.display()))?;
    network.attach(pid)?;
    forward.store(true, Ordering::SeqCst);
    runtime.start(&container.id).map_err(|e| e.to_string())?;
    Ok(Started { pid, copiers })
}

/// Deletes the runtime's container, detaches the network and unmounts the
/// root filesystem; what is already gone counts as done.
fn stop_and_release(
    store: &ContainerStore,
    runtime: &dyn Runtime,
    mounter: &dyn Mounter,
    container: &Container,
    network: Result<&dyn NetworkStage, &String>,
) {
    if let Err(e) = runtime.delete(&container.id, true) {
        dataplane::stderr_line!("wharf: container {}: {e}", container.id);
    }
    if let Ok(network) = network {
        if let Err(e) = network.detach() {
            dataplane::stderr_line!("wharf: container {}: {e}", container.id);
        }
    }
    if matches!(container.rootfs, RootfsSource::Image(_)) {
        if let Err(e) = mounter.unmount(&store.dir(&container.id).join("rootfs")) {
            dataplane::stderr_line!("wharf: container {}: {e}", container.id);
        }
    }
}

/// Reaps children until the container's init process `pid` ends; returns
/// its exit code as a shell reports it.
fn wait_for(pid: u32) -> i32 {
    let target = Pid::from_raw(pid as i32);
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(child, code)) if child == target => return code,
            Ok(WaitStatus::Signaled(child, signal, _)) if child == target => return 128 + signal as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            // No children left: the process is gone without our seeing it.
            Err(_) => return 255,
        }
    }
}

/// Which of the container's streams a log record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Copies one of the container's streams to the log, as Docker's json-file
/// records (one per line of output), and in the foreground to wharf's own
/// stream.
fn copy_output(
    mut reader: File,
    stream: Stream,
    log: Arc<Mutex<File>>,
    forward: Option<Arc<AtomicBool>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if forward.as_ref().is_some_and(|on| on.load(Ordering::SeqCst)) {
                let _ = match stream {
                    Stream::Stdout => io::stdout().write_all(&buffer[..n]).and_then(|()| io::stdout().flush()),
                    Stream::Stderr => io::stderr().write_all(&buffer[..n]),
                };
            }
            pending.extend_from_slice(&buffer[..n]);
            let complete = pending.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            if complete > 0 || pending.len() >= 16 * 1024 {
                let upto = if complete > 0 { complete } else { pending.len() };
                write_records(&log, stream, &pending[..upto]);
                pending.drain(..upto);
            }
        }
        if !pending.is_empty() {
            write_records(&log, stream, &pending);
        }
    })
}

fn write_records(log: &Mutex<File>, stream: Stream, bytes: &[u8]) {
    let time = state::now_rfc3339();
    let mut text = String::new();
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let record = serde_json::json!({
            "log": String::from_utf8_lossy(line),
            "stream": stream.name(),
            "time": time,
        });
        text.push_str(&record.to_string());
        text.push('\n');
    }
    if let Ok(mut file) = log.lock() {
        let _ = file.write_all(text.as_bytes());
    }
}

/// One record of a container's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub stream: Stream,
    pub text: String,
}

/// Parses one line of a container's log.
pub fn parse_record(line: &str) -> Option<LogRecord> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let stream = match value["stream"].as_str()? {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return None,
    };
    Some(LogRecord { stream, text: value["log"].as_str()?.to_string() })
}

/// Waits up to `timeout` for the container to leave the running state.
/// A timeout past what the clock holds (`stop -t 18446744073709551615`)
/// waits for as long as it takes.
pub fn wait_stopped(store: &ContainerStore, id: &str, timeout: Duration) -> bool {
    let deadline = Instant::now().checked_add(timeout);
    loop {
        match store.load(id) {
            Ok(c) if c.state.status.is_up() => {
                if c.state.monitor.is_some_and(|m| !m.alive()) {
                    return true;
                }
            }
            _ => return true,
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::rootfs::Recording as RecordingMounter;
    use crate::container::runtime::Recording as RecordingRuntime;
    use crate::container::test_container;

    fn world(tag: &str) -> (state::Scratch, ContainerStore, Container) {
        let scratch = state::Scratch::new(tag);
        let store = ContainerStore::new(&scratch.root());
        let container = test_container(&"d".repeat(64), "web");
        fs::create_dir_all(store.dir(&container.id)).unwrap();
        (scratch, store, container)
    }

    #[test]
    fn a_start_mounts_writes_the_bundle_then_creates_and_starts() {
        let (_scratch, store, container) = world("start");
        let (runtime, mounter) = (RecordingRuntime::default(), RecordingMounter::default());
        let network: Result<Box<dyn NetworkStage>, String> = Ok(Box::new(NamespaceOnly(Namespace::New)));
        let started = start(&store, &runtime, &mounter, &container, network.as_deref(), false).unwrap();
        assert_eq!(started.pid, std::process::id());
        let rootfs = store.dir(&container.id).join("rootfs");
        assert_eq!(*mounter.calls.borrow(), [format!("mount {}", rootfs.display())]);
        let bundle = store.dir(&container.id).join("bundle");
        let calls = runtime.calls.borrow().clone();
        assert_eq!(calls, [format!("create {} {}", container.id, bundle.display()), format!("start {}", container.id)]);
        let config: serde_json::Value = state::read_json(&bundle.join("config.json")).unwrap();
        assert_eq!(config["root"]["path"], rootfs.display().to_string());
        stop_and_release(&store, &runtime, &mounter, &container, network.as_deref());
        assert_eq!(runtime.calls.borrow().last().unwrap(), &format!("delete {} --force", container.id));
        assert_eq!(mounter.calls.borrow().last().unwrap(), &format!("unmount {}", rootfs.display()));
    }

    #[test]
    fn a_failed_mount_creates_nothing() {
        let (_scratch, store, container) = world("nomount");
        let runtime = RecordingRuntime::default();
        let mounter = RecordingMounter { fail_mount: true, ..RecordingMounter::default() };
        let network: Result<Box<dyn NetworkStage>, String> = Ok(Box::new(NamespaceOnly(Namespace::New)));
        let err = start(&store, &runtime, &mounter, &container, network.as_deref(), false).err().unwrap();
        assert!(err.contains("mount failed"), "{err}");
        assert!(runtime.calls.borrow().is_empty());
    }

    #[test]
    fn a_failed_runtime_start_is_reported() {
        let (_scratch, store, container) = world("nostart");
        let runtime = RecordingRuntime { fail_on: Some("start"), ..RecordingRuntime::default() };
        let network: Result<Box<dyn NetworkStage>, String> = Ok(Box::new(NamespaceOnly(Namespace::New)));
        let err =
            start(&store, &runtime, &RecordingMounter::default(), &container, network.as_deref(), false).err().unwrap();
        assert_eq!(err, "start: failed as the test asked");
        let network: Result<Box<dyn NetworkStage>, String> = Err("container b is not running".into());
        let err =
            start(&store, &runtime, &RecordingMounter::default(), &container, network.as_deref(), false).err().unwrap();
        assert_eq!(err, "container b is not running");
    }

    #[test]
    fn log_records_are_dockers_json_lines() {
        let scratch = state::Scratch::new("log");
        let path = scratch.0.join("container.log");
        let log = Mutex::new(File::create(&path).unwrap());
        write_records(&log, Stream::Stdout, b"one\ntwo\n");
        write_records(&log, Stream::Stderr, b"partial");
        let text = fs::read_to_string(&path).unwrap();
        let records: Vec<LogRecord> = text.lines().map(|l| parse_record(l).unwrap()).collect();
        assert_eq!(
            records,
            vec![
                LogRecord { stream: Stream::Stdout, text: "one\n".into() },
                LogRecord { stream: Stream::Stdout, text: "two\n".into() },
                LogRecord { stream: Stream::Stderr, text: "partial".into() },
            ]
        );
        assert!(text.lines().next().unwrap().contains("\"time\":\""));
        assert_eq!(parse_record("not json"), None);
    }
}
