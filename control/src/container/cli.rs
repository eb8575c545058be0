//! The container commands, in Docker's words and flags: `run`, `ps`,
//! `stop`, `start`, `restart`, `rm`, `container prune`, `logs`, `exec`,
//! `inspect`, `stats`, `image ...` and `volume ...`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::create::{self, Request};
use super::lifecycle;
use super::monitor::Attach;
use super::report;
use super::resources::{ResourceFlags, Resources};
use super::runtime::{exit_code, ExecOptions, Runc, Runtime};
use super::{ContainerStore, NetworkMode, RootfsSource, Status};
use crate::image::ImageStore;
use crate::network::links::Iproute2;
use crate::network::ports::{self, PortSpec};
use crate::state::Root;
use crate::volume::{self, VolumeSpec, VolumeStore};

/// `wharf run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container's id.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep stdin attached to the container.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the container a pseudo-terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The container's name.
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (K=V, or K to take it from wharf's environment).
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// The working directory inside the container.
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// The container's hostname.
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// bridge (the default network), a user network's name, none (its own
    /// namespace with only lo), host, or container:NAME.
    #[arg(long = "network", alias = "net", value_name = "NETWORK", default_value = "bridge")]
    pub network: String,
    /// The container's IPv4 address on its (user) network.
    #[arg(long, value_name = "IP")]
    pub ip: Option<std::net::Ipv4Addr>,
    /// Another name the container has on its network (repeatable).
    #[arg(long = "network-alias", value_name = "NAME")]
    pub network_aliases: Vec<String>,
    /// Publish a port: [HOST_IP:]HOST_PORT[-LAST]:CONTAINER_PORT[-LAST][/tcp|/udp], or CONTAINER_PORT.
    // The brackets are the help text's syntax, not links.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(short = 'p', long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Publish every exposed port to a random host port (images imported
    /// from tars expose none: see --expose).
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports: PORT[-LAST][/tcp|/udp] (published by -P).
    #[arg(long = "expose", value_name = "PORT")]
    pub expose: Vec<String>,
    /// Mount a volume: /host:/path[:ro|:rw], NAME:/path[:ro|:rw], or /path (anonymous).
    #[arg(short = 'v', long = "volume", value_name = "SPEC")]
    pub volumes: Vec<String>,
    /// Mount the volumes of another container: NAME[:ro|:rw].
    #[arg(long = "volumes-from", value_name = "CONTAINER")]
    pub volumes_from: Vec<String>,
    /// Memory limit (b, k, m, g).
    #[arg(short = 'm', long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap.
    #[arg(long = "memory-swap", value_name = "BYTES", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPUs the container may use (CFS quota), e.g. 0.5.
    #[arg(long, value_name = "N")]
    pub cpus: Option<String>,
    /// Relative CPU weight.
    #[arg(short = 'c', long = "cpu-shares", value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// The most processes the container may have; -1 for no limit.
    #[arg(long = "pids-limit", value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Remove the container (and its anonymous volumes) when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run this unpacked root filesystem instead of an image.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// IMAGE [COMMAND [ARG...]] (without --rootfs), or COMMAND [ARG...].
    #[arg(trailing_var_arg = true, value_name = "IMAGE [COMMAND]")]
    pub args: Vec<String>,
}

/// The container subcommands of `wharf`.
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Create and start a container.
    Run(Box<RunArgs>),
    /// List containers.
    Ps {
        /// Show all containers, not only running ones.
        #[arg(short = 'a', long)]
        all: bool,
        /// Only print ids.
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Stop running containers: SIGTERM, then SIGKILL after the grace period.
    Stop {
        /// Seconds to wait before killing.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Start stopped containers.
    Start {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop and start containers.
    Restart {
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers.
    Rm {
        /// Kill and remove a running container.
        #[arg(short = 'f', long)]
        force: bool,
        /// Remove the container's anonymous volumes too.
        #[arg(short = 'v', long)]
        volumes: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Manage containers (`wharf container prune`).
    #[command(subcommand)]
    Container(ContainerGroup),
    /// Print a container's output.
    Logs {
        /// Follow the output until the container stops.
        #[arg(short = 'f', long)]
        follow: bool,
        container: String,
    },
    /// Run a command in a running container.
    Exec {
        #[arg(short = 'i', long)]
        interactive: bool,
        #[arg(short = 't', long)]
        tty: bool,
        #[arg(short = 'e', long = "env", value_name = "K=V")]
        env: Vec<String>,
        #[arg(short = 'w', long = "workdir", value_name = "DIR")]
        workdir: Option<String>,
        container: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Show containers as JSON, in docker inspect's shape.
    Inspect {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Show containers' memory and CPU use.
    Stats {
        /// Print one reading and exit (the only mode).
        #[arg(long = "no-stream")]
        no_stream: bool,
        containers: Vec<String>,
    },
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(crate::network::cli::NetworkCommand),
    /// List a container's published ports.
    Port { container: String },
    /// (internal) The embedded DNS resolver of user networks.
    #[command(hide = true)]
    Dns,
    /// (internal) The per-container monitor.
    #[command(hide = true, name = "container-monitor")]
    Monitor {
        id: String,
        #[arg(long)]
        attach: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContainerGroup {
    /// Remove every stopped container.
    Prune {
        /// Do not ask (wharf never asks).
        #[arg(short = 'f', long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Make an image from a root filesystem tar (plain or gzip), as docker import.
    Import { file: PathBuf, name: String },
    /// List images.
    Ls,
    /// Remove images no container uses.
    Rm {
        #[arg(required = true)]
        images: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume (a random name when none is given).
    Create { name: Option<String> },
    /// List volumes.
    Ls,
    /// Show volumes as JSON.
    Inspect {
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove volumes no container uses.
    Rm {
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove every anonymous volume no container uses; with --all, every
    /// unused volume (Docker 23 and later).
    Prune {
        #[arg(short = 'f', long)]
        force: bool,
        /// Named volumes too.
        #[arg(short = 'a', long)]
        all: bool,
    },
}

/// A failed command: its message and exit code.
struct Failure(String, u8);

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure(message, 1)
    }
}

/// Runs a container command.
pub fn main(command: ContainerCommand) -> ExitCode {
    if let ContainerCommand::Monitor { id, attach } = &command {
        return super::monitor::main(id, *attach);
    }
    if let ContainerCommand::Dns = &command {
        return match crate::dns::serve(&Root::from_env()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wharf dns: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let root = Root::from_env();
    let store = ContainerStore::new(&root);
    let runtime = Runc::new(root.runtime_state());
    match lifecycle::reconcile(&store, &runtime) {
        Ok(report) => report.iter().for_each(|line| eprintln!("wharf: {line}")),
        Err(e) => {
            eprintln!("wharf: {e}");
            return ExitCode::FAILURE;
        }
    }
    match dispatch(&store, &runtime, command) {
        Ok(code) => code,
        Err(Failure(message, code)) => {
            eprintln!("wharf: {message}");
            ExitCode::from(code)
        }
    }
}

fn dispatch(store: &ContainerStore, runtime: &Runc, command: ContainerCommand) -> Result<ExitCode, Failure> {
    match command {
        ContainerCommand::Run(args) => run(store, runtime, *args),
        ContainerCommand::Ps { all, quiet } => {
            print!("{}", report::ps(&store.list().map_err(|e| e.to_string())?, all, quiet));
            Ok(ExitCode::SUCCESS)
        }
        ContainerCommand::Stop { time, containers } => each(&containers, |reference| {
            let container = store.find(reference).map_err(|e| e.to_string())?;
            lifecycle::stop(store, runtime, &container, Duration::from_secs(time))
        }),
        ContainerCommand::Start { containers } => each(&containers, |reference| {
            let container = store.find(reference).map_err(|e| e.to_string())?;
            lifecycle::start(store, &container.id, Attach::None).map(drop)
        }),
        ContainerCommand::Restart { time, containers } => each(&containers, |reference| {
            let container = store.find(reference).map_err(|e| e.to_string())?;
            lifecycle::stop(store, runtime, &container, Duration::from_secs(time))?;
            lifecycle::start(store, &container.id, Attach::None).map(drop)
        }),
        ContainerCommand::Rm { force, volumes, containers } => {
            each(&containers, |reference| lifecycle::remove(store, runtime, reference, force, volumes))
        }
        ContainerCommand::Container(ContainerGroup::Prune { force: _ }) => {
            let removed = lifecycle::prune(store, runtime)?;
            println!("Deleted Containers:");
            removed.iter().for_each(|id| println!("{id}"));
            Ok(ExitCode::SUCCESS)
        }
        ContainerCommand::Logs { follow, container } => {
            let container = store.find(&container).map_err(|e| e.to_string())?;
            report::logs(store, &container, follow).map_err(|e| format!("logs of {}: {e}", container.name))?;
            Ok(ExitCode::SUCCESS)
        }
        ContainerCommand::Exec { interactive: _, tty, env, workdir, container, command } => {
            let container = store.find(&container).map_err(|e| e.to_string())?;
            if container.state.status != Status::Running {
                return Err(format!("container {} is not running", container.name).into());
            }
            if tty && !stdin_is_terminal() {
                return Err(Failure("the input device is not a TTY".into(), 1));
            }
            let options = ExecOptions { tty, env: expand_env(&env)?, workdir };
            let code = runtime.exec(&container.id, &command, &options).map_err(|e| Failure(e.to_string(), 126))?;
            Ok(ExitCode::from(code.clamp(0, 255) as u8))
        }
        ContainerCommand::Inspect { containers } => {
            let mut shown = Vec::new();
            let mut missing = None;
            for reference in &containers {
                match store.find(reference) {
                    Ok(container) => shown.push(report::inspect(&container, store)),
                    Err(e) => missing = Some(e.to_string()),
                }
            }
            println!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
            match missing {
                Some(message) => Err(message.into()),
                None => Ok(ExitCode::SUCCESS),
            }
        }
        ContainerCommand::Stats { no_stream: _, containers } => {
            let all = store.list().map_err(|e| e.to_string())?;
            let chosen = if containers.is_empty() {
                all
            } else {
                containers
                    .iter()
                    .map(|r| super::find_in(&all, r).cloned().map_err(|e| e.to_string()))
                    .collect::<Result<Vec<_>, _>>()?
            };
            print!("{}", report::stats(&chosen));
            Ok(ExitCode::SUCCESS)
        }
        ContainerCommand::Image(command) => image(store, command),
        ContainerCommand::Volume(command) => volume(store, command),
        ContainerCommand::Network(command) => {
            crate::network::cli::run(store, command)?;
            Ok(ExitCode::SUCCESS)
        }
        ContainerCommand::Port { container } => {
            let container = store.find(&container).map_err(|e| e.to_string())?;
            crate::network::cli::port_lines(&container).iter().for_each(|line| println!("{line}"));
            Ok(ExitCode::SUCCESS)
        }
        ContainerCommand::Monitor { .. } | ContainerCommand::Dns => unreachable!("handled before reconcile"),
    }
}

/// Runs `action` for each argument, printing each one that worked (as
/// Docker does) and failing at the end if any did not.
fn each(references: &[String], mut action: impl FnMut(&str) -> Result<(), String>) -> Result<ExitCode, Failure> {
    let mut failed = false;
    for reference in references {
        match action(reference) {
            Ok(()) => println!("{reference}"),
            Err(message) => {
                eprintln!("wharf: {message}");
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn stdin_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

/// `-e K` takes K's value from wharf's environment (and is dropped if unset).
fn expand_env(env: &[String]) -> Result<Vec<String>, String> {
    let mut expanded = Vec::with_capacity(env.len());
    for e in env {
        // Docker's check: a variable needs a name.
        if e.is_empty() || e.starts_with('=') {
            return Err(format!("invalid environment variable: {e}"));
        }
        match e.split_once('=') {
            Some(_) => expanded.push(e.clone()),
            None => expanded.extend(std::env::var(e).ok().map(|v| format!("{e}={v}"))),
        }
    }
    Ok(expanded)
}

fn run(store: &ContainerStore, runtime: &Runc, args: RunArgs) -> Result<ExitCode, Failure> {
    let fail = |message: String| Failure(message, 125);
    if args.tty && args.interactive && !stdin_is_terminal() {
        return Err(fail("the input device is not a TTY".into()));
    }
    let mut rest = args.args.into_iter();
    let rootfs = match args.rootfs {
        Some(dir) => RootfsSource::Directory(dir),
        None => RootfsSource::Image(
            rest.next().ok_or_else(|| fail("\"wharf run\" requires an IMAGE (or --rootfs DIR)".into()))?,
        ),
    };
    let cmd: Vec<String> = rest.collect();
    let network = NetworkMode::parse(&args.network).map_err(fail)?;
    let volumes = args
        .volumes
        .iter()
        .map(|spec| VolumeSpec::parse(spec).map_err(|e| fail(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let volumes_from = args
        .volumes_from
        .iter()
        .map(|spec| volume::parse_volumes_from(spec).map_err(|e| fail(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ports =
        args.publish.iter().map(|spec| PortSpec::parse(spec).map_err(fail)).collect::<Result<Vec<_>, _>>()?;
    let exposed =
        args.expose.iter().map(|spec| ports::parse_expose(spec).map_err(fail)).collect::<Result<Vec<_>, _>>()?;
    if args.publish_all {
        let all = ports::publish_all(&ports, &exposed.concat());
        ports.extend(all);
    }
    let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let resources = Resources::from_flags(
        &ResourceFlags {
            memory: args.memory.as_deref(),
            memory_swap: args.memory_swap.as_deref(),
            cpus: args.cpus.as_deref(),
            cpu_shares: args.cpu_shares,
            pids_limit: args.pids_limit,
        },
        host_cpus,
    )
    .map_err(|e| fail(e.to_string()))?;
    let request = Request {
        name: args.name,
        rootfs,
        cmd,
        env: expand_env(&args.env).map_err(fail)?,
        workdir: args.workdir,
        hostname: args.hostname,
        network,
        volumes,
        volumes_from,
        resources,
        auto_remove: args.rm,
        tty: args.tty,
        ip: args.ip,
        aliases: args.network_aliases,
        ports,
    };
    let container = {
        let _lock = store.root().lock().map_err(|e| fail(e.to_string()))?;
        create::create(store, request).map_err(fail)?
    };
    let attach = match (args.detach, args.interactive) {
        (true, _) => Attach::None,
        (false, false) => Attach::Output,
        (false, true) => Attach::OutputAndInput,
    };
    // With -it the container's terminal takes the user's keys as they are.
    let _terminal = RawTerminal::new(args.tty && args.interactive && !args.detach);
    let monitor = match lifecycle::start(store, &container.id, attach) {
        Ok(Some(monitor)) => monitor,
        Ok(None) => unreachable!("a new container is not running yet"),
        Err(message) => {
            // A run that could not start changes nothing. The record as it
            // is now: a monitor that died part-way may have saved its port
            // proxy in it.
            let _lock = store.root().lock();
            let container = store.load(&container.id).unwrap_or(container);
            let _ = runtime.delete(&container.id, true);
            let _ = lifecycle::release_links(store, &container, &Iproute2);
            let _ = lifecycle::remove_files(store, &container, true);
            return Err(fail(message));
        }
    };
    if args.detach {
        println!("{}", container.id);
        return Ok(ExitCode::SUCCESS);
    }
    wait_in_foreground(runtime, &container.id, monitor)
}

/// The user's terminal in raw mode while a `-t` container is attached to
/// it, as it was before when dropped.
struct RawTerminal(Option<nix::sys::termios::Termios>);

impl RawTerminal {
    fn new(wanted: bool) -> RawTerminal {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let saved = if wanted { tcgetattr(&stdin).ok() } else { None };
        if let Some(saved) = &saved {
            let mut raw = saved.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        }
        RawTerminal(saved)
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, saved);
        }
    }
}

/// Waits for a foreground container's monitor, passing SIGINT and SIGTERM
/// on to the container as `docker run` does; exits with the container's code.
fn wait_in_foreground(runtime: &Runc, id: &str, mut monitor: std::process::Child) -> Result<ExitCode, Failure> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).map_err(|e| e.to_string())?;
    loop {
        if let Some(status) = monitor.try_wait().map_err(|e| e.to_string())? {
            return Ok(ExitCode::from(exit_code(status).clamp(0, 255) as u8));
        }
        for signal in signals.pending() {
            let name = if signal == SIGINT { "INT" } else { "TERM" };
            let _ = runtime.kill(id, name);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn image(store: &ContainerStore, command: ImageCommand) -> Result<ExitCode, Failure> {
    let images = ImageStore::new(store.root());
    let _lock = store.root().lock().map_err(|e| e.to_string())?;
    match command {
        ImageCommand::Import { file, name } => {
            let image = images.import(&file, &name).map_err(|e| e.to_string())?;
            println!("{}", image.id);
        }
        ImageCommand::Ls => {
            let mut rows = vec![["NAME".to_string(), "ID".into(), "CREATED".into(), "SIZE".into()]];
            for image in images.list().map_err(|e| e.to_string())? {
                let age = crate::state::parse_rfc3339(&image.created)
                    .and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
                    .unwrap_or_default();
                rows.push([
                    image.name,
                    image.id.trim_start_matches("sha256:").chars().take(12).collect(),
                    format!("{} ago", crate::state::human_duration(age)),
                    super::resources::human_bytes(image.size),
                ]);
            }
            print!("{}", report::table(&rows));
        }
        ImageCommand::Rm { images: names } => {
            let containers = readable_containers(store, "an image")?;
            return each(&names, |name| {
                images.get(name).map_err(|e| e.to_string())?;
                if let Some(user) = containers.iter().find(|c| c.rootfs == RootfsSource::Image(name.to_string())) {
                    return Err(format!("image {name} is used by container {}", user.name));
                }
                images.remove(name).map_err(|e| e.to_string())
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every container, for a command that removes what none may use: refused
/// while a container's record does not read, since what it uses is not known.
fn readable_containers(store: &ContainerStore, what: &str) -> Result<Vec<super::Container>, String> {
    let scan = store.scan().map_err(|e| e.to_string())?;
    match scan.unreadable.first() {
        None => Ok(scan.containers),
        Some((_, why)) => Err(format!("cannot tell whether {what} is in use: {why}")),
    }
}

fn volume(store: &ContainerStore, command: VolumeCommand) -> Result<ExitCode, Failure> {
    let volumes = VolumeStore::new(store.root());
    let _lock = store.root().lock().map_err(|e| e.to_string())?;
    let removes = matches!(command, VolumeCommand::Rm { .. } | VolumeCommand::Prune { .. });
    let containers =
        if removes { readable_containers(store, "a volume")? } else { store.list().map_err(|e| e.to_string())? };
    let user = |name: &str| {
        containers.iter().find(|c| c.mounts.iter().any(|m| m.name.as_deref() == Some(name))).map(|c| c.name.clone())
    };
    match command {
        VolumeCommand::Create { name } => {
            let volume = volumes.create(name.as_deref(), false).map_err(|e| e.to_string())?;
            println!("{}", volume.name);
        }
        VolumeCommand::Ls => {
            let mut rows = vec![["DRIVER".to_string(), "VOLUME NAME".into()]];
            for volume in volumes.list().map_err(|e| e.to_string())? {
                rows.push(["local".into(), volume.name]);
            }
            print!("{}", report::table(&rows));
        }
        VolumeCommand::Inspect { volumes: names } => {
            let mut shown = Vec::new();
            let mut missing = None;
            for name in &names {
                match volumes.get(name) {
                    Ok(volume) => shown.push(serde_json::json!({
                        "CreatedAt": volume.created,
                        "Driver": "local",
                        "Labels": {},
                        "Mountpoint": volumes.mountpoint(&volume.name),
                        "Name": volume.name,
                        "Options": {},
                        "Scope": "local",
                    })),
                    Err(e) => missing = Some(e.to_string()),
                }
            }
            println!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
            if let Some(message) = missing {
                return Err(message.into());
            }
        }
        VolumeCommand::Rm { volumes: names } => {
            return each(&names, |name| {
                volumes.get(name).map_err(|e| e.to_string())?;
                if let Some(container) = user(name) {
                    return Err(format!("volume {name} is in use by container {container}"));
                }
                volumes.remove(name).map_err(|e| e.to_string())
            });
        }
        VolumeCommand::Prune { force: _, all } => {
            println!("Deleted Volumes:");
            for volume in volumes.list().map_err(|e| e.to_string())? {
                if (all || volume.anonymous) && user(&volume.name).is_none() {
                    volumes.remove(&volume.name).map_err(|e| e.to_string())?;
                    println!("{}", volume.name);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
