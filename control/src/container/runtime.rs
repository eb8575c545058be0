//! The OCI runtime behind a trait: [`Runc`] runs Debian's `runc` (or the
//! binary in `WHARF_RUNTIME`) with its state under `WHARF_ROOT/runc`;
//! [`Recording`] writes down what would have been run, for unit tests.

use std::cell::RefCell;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A runtime failure: the command and what the runtime said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{command}: {message}")]
pub struct RuntimeError {
    pub command: String,
    pub message: String,
}

/// The standard streams `create` hands to the container's process.
#[derive(Debug)]
pub struct Streams {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub tty: bool,
    pub env: Vec<String>,
    pub workdir: Option<String>,
}

/// What wharf asks of an OCI runtime.
pub trait Runtime {
    /// Creates container `id` from `bundle` without starting its process;
    /// the init pid is written to `pid_file`. With `console_socket`, the
    /// runtime sends the terminal's master end there.
    fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        streams: Streams,
        console_socket: Option<&Path>,
    ) -> Result<(), RuntimeError>;
    /// Starts the created container's process.
    fn start(&self, id: &str) -> Result<(), RuntimeError>;
    /// Sends `signal` (a name such as "TERM" or "KILL") to its init process.
    fn kill(&self, id: &str, signal: &str) -> Result<(), RuntimeError>;
    /// Deletes the container (killing it first with `force`); a container
    /// the runtime does not know counts as deleted.
    fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError>;
    /// The ids the runtime knows.
    fn list(&self) -> Result<Vec<String>, RuntimeError>;
    /// Runs `command` in the running container with wharf's standard
    /// streams and returns its exit code.
    fn exec(&self, id: &str, command: &[String], options: &ExecOptions) -> Result<i32, RuntimeError>;
}

/// `runc`, with its state under a directory of wharf's.
#[derive(Debug, Clone)]
pub struct Runc {
    binary: OsString,
    state: PathBuf,
}

impl Runc {
    /// The runtime in `WHARF_RUNTIME` (default `runc`), keeping its state in
    /// `state` (`runc --root`).
    pub fn new(state: PathBuf) -> Runc {
        let binary = std::env::var_os("WHARF_RUNTIME").filter(|v| !v.is_empty()).unwrap_or_else(|| "runc".into());
        Runc { binary, state }
    }

    fn command(&self, log: Option<&Path>) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("--root").arg(&self.state);
        if let Some(log) = log {
            command.arg("--log").arg(log).arg("--log-format").arg("json");
        }
        command
    }

    fn describe(&self, args: &[&str]) -> String {
        format!("{} {}", Path::new(&self.binary).display(), args.join(" "))
    }

    /// Runs a short runtime command, capturing its output.
    fn run(&self, args: &[&str]) -> Result<String, RuntimeError> {
        let output = self
            .command(None)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| RuntimeError { command: self.describe(args), message: self.spawn_error(e) })?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(RuntimeError {
                command: self.describe(args),
                message: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            })
        }
    }

    fn spawn_error(&self, e: std::io::Error) -> String {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "{} is not installed (apt-get install runc, or set WHARF_RUNTIME)",
                Path::new(&self.binary).display()
            )
        } else {
            e.to_string()
        }
    }
}

impl Runtime for Runc {
    fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        streams: Streams,
        console_socket: Option<&Path>,
    ) -> Result<(), RuntimeError> {
        let log = bundle.join("runc.log");
        let _ = std::fs::remove_file(&log);
        let mut command = self.command(Some(&log));
        command.arg("create").arg("--bundle").arg(bundle).arg("--pid-file").arg(pid_file);
        if let Some(socket) = console_socket {
            command.arg("--console-socket").arg(socket);
        }
        command.arg(id).stdin(streams.stdin).stdout(streams.stdout).stderr(streams.stderr);
        let status = command
            .status()
            .map_err(|e| RuntimeError { command: self.describe(&["create", id]), message: self.spawn_error(e) })?;
        if status.success() {
            return Ok(());
        }
        // runc's own error went to the container's stderr; its log file
        // has it too, apart from the container's output.
        let message = std::fs::read_to_string(&log)
            .ok()
            .and_then(|text| {
                text.lines().rev().find_map(|line| {
                    let record: serde_json::Value = serde_json::from_str(line).ok()?;
                    (record["level"] == "error").then(|| record["msg"].as_str().map(str::to_string)).flatten()
                })
            })
            .unwrap_or_else(|| format!("exited with {status}"));
        Err(RuntimeError { command: self.describe(&["create"]), message })
    }

    fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(&["start", id]).map(drop)
    }

    fn kill(&self, id: &str, signal: &str) -> Result<(), RuntimeError> {
        self.run(&["kill", id, signal]).map(drop)
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        let args: &[&str] = if force { &["delete", "--force", id] } else { &["delete", id] };
        match self.run(args) {
            Err(e) if e.message.contains("does not exist") || e.message.contains("not exist") => Ok(()),
            other => other.map(drop),
        }
    }

    fn list(&self) -> Result<Vec<String>, RuntimeError> {
        let text = self.run(&["list", "--quiet"])?;
        Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect())
    }

    fn exec(&self, id: &str, command: &[String], options: &ExecOptions) -> Result<i32, RuntimeError> {
        let mut runc = self.command(None);
        runc.arg("exec");
        if options.tty {
            runc.arg("--tty");
        }
        for env in &options.env {
            runc.arg("--env").arg(env);
        }
        if let Some(dir) = &options.workdir {
            runc.arg("--cwd").arg(dir);
        }
        runc.arg(id).args(command);
        let status = runc
            .status()
            .map_err(|e| RuntimeError { command: self.describe(&["exec", id]), message: self.spawn_error(e) })?;
        Ok(exit_code(status))
    }
}

/// A process's exit status as a shell reports it: its code, or 128 plus
/// the signal that ended it.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// A runtime that only writes down what it was asked, for unit tests;
/// `fail_on` makes the named operation fail.
#[derive(Debug, Default)]
pub struct Recording {
    pub calls: RefCell<Vec<String>>,
    pub fail_on: Option<&'static str>,
    pub known: RefCell<Vec<String>>,
}

impl Recording {
    fn record(&self, operation: &'static str, detail: String) -> Result<(), RuntimeError> {
        self.calls.borrow_mut().push(format!("{operation} {detail}"));
        if self.fail_on == Some(operation) {
            return Err(RuntimeError { command: operation.into(), message: "failed as the test asked".into() });
        }
        Ok(())
    }
}

impl Runtime for Recording {
    fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        _: Streams,
        _: Option<&Path>,
    ) -> Result<(), RuntimeError> {
        self.record("create", format!("{id} {}", bundle.display()))?;
        // As runc does: the init process's pid (here, the test's own).
        std::fs::write(pid_file, std::process::id().to_string())
            .map_err(|e| RuntimeError { command: "create".into(), message: e.to_string() })?;
        self.known.borrow_mut().push(id.to_string());
        Ok(())
    }

    fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.record("start", id.to_string())
    }

    fn kill(&self, id: &str, signal: &str) -> Result<(), RuntimeError> {
        self.record("kill", format!("{id} {signal}"))
    }

    fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        self.record("delete", format!("{id}{}", if force { " --force" } else { "" }))?;
        self.known.borrow_mut().retain(|known| known != id);
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>, RuntimeError> {
        self.record("list", String::new())?;
        Ok(self.known.borrow().clone())
    }

    fn exec(&self, id: &str, command: &[String], _: &ExecOptions) -> Result<i32, RuntimeError> {
        self.record("exec", format!("{id} {}", command.join(" "))).map(|()| 0)
    }
}
