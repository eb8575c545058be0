//! Helpers for wharf's end-to-end tests: throwaway network namespaces that
//! clean up after themselves, commands run inside them, and a reader for the
//! pcap files tcpdump writes.
//!
//! Everything a test creates lives inside namespaces it made: links are
//! created with `ip -n NS`, never in the machine's own namespace, and
//! deleting the namespace on drop takes its links with it, even when the
//! test fails.

#![forbid(unsafe_code)]

pub mod pcap;

use std::io;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A name unique to this process and call, short enough for a network
/// namespace or (at most 15 bytes) a link: `wh` + `tag` + pid + counter.
pub fn unique_name(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("wh{tag}{}x{n}", std::process::id() % 1_000_000);
    assert!(name.len() <= 15, "name {name} is too long for a link; use a shorter tag");
    name
}

/// Fails the test with a clear message unless it runs as root: these tests
/// create namespaces and links, and CI runs them as root. They never skip.
pub fn require_root() {
    let uid = Command::new("id").arg("-u").output().expect("run id -u");
    let uid = String::from_utf8_lossy(&uid.stdout);
    assert_eq!(uid.trim(), "0", "end-to-end tests need root (network namespaces); run them as root");
}

/// Runs a command to completion and returns its stdout, or an error that
/// names the command and carries its stderr.
pub fn run(command: &mut Command) -> io::Result<String> {
    let output: Output = command.stdin(Stdio::null()).output()?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// A network namespace that is deleted, with every link inside it, on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace named uniquely from `tag`, with `lo` up.
    pub fn new(tag: &str) -> io::Result<Netns> {
        let name = unique_name(tag);
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NS ARGS...`.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// A command that runs `program ARGS...` inside the namespace.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]).args(args);
        command
    }

    /// Runs `program ARGS...` inside the namespace to completion.
    pub fn exec(&self, program: &str, args: &[&str]) -> io::Result<String> {
        run(&mut self.command(program, args))
    }

    /// Creates a veth pair, `name` here and `peer_name` in `peer`, both up.
    pub fn veth(&self, name: &str, peer: &Netns, peer_name: &str) -> io::Result<()> {
        self.ip(&["link", "add", name, "type", "veth", "peer", "name", peer_name, "netns", &peer.name])?;
        self.ip(&["link", "set", name, "up"])?;
        peer.ip(&["link", "set", peer_name, "up"])?;
        Ok(())
    }

    /// The MAC address of `link`, as `ip` prints it.
    pub fn mac(&self, link: &str) -> io::Result<String> {
        let out = self.ip(&["-o", "link", "show", link])?;
        out.split_whitespace()
            .skip_while(|word| *word != "link/ether")
            .nth(1)
            .map(str::to_owned)
            .ok_or_else(|| io::Error::other(format!("no MAC address for {link} in {out}")))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill what still runs inside, then delete: a missing namespace is
        // already clean.
        let _ = Command::new("ip").args(["netns", "pids", &self.name]).output().map(|out| {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        });
        let _ = Command::new("ip").args(["netns", "del", &self.name]).stderr(Stdio::null()).status();
    }
}

/// A background process that is killed on drop.
#[derive(Debug)]
pub struct Background {
    child: Child,
}

impl Background {
    pub fn spawn(command: &mut Command) -> io::Result<Background> {
        Ok(Background { child: command.stdin(Stdio::null()).spawn()? })
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGINT and waits for the process to exit.
    pub fn interrupt(mut self) -> io::Result<()> {
        run(Command::new("kill").args(["-INT", &self.child.id().to_string()]))?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
