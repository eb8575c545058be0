//! Helpers for wharf's end-to-end tests: throwaway network namespaces that
//! clean up after themselves, commands run inside them, and a reader for the
//! pcap files tcpdump writes.
//!
//! Everything a test creates lives inside namespaces it made: links are
//! created with `ip -n NS`, never in the machine's own namespace, and
//! deleting the namespace on drop takes its links with it, even when the
//! test fails.

#![forbid(unsafe_code)]

pub mod container;
pub mod pcap;
pub mod proxy;

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

/// A `wharf vtep` (or `wharf nat`) running inside a namespace, with its
/// own `WHARF_ROOT`; stopped with SIGTERM on drop.
#[derive(Debug)]
pub struct WharfRunner {
    child: Option<Child>,
    bin: String,
    /// `vtep` or `nat`.
    subcommand: &'static str,
    root: std::path::PathBuf,
    name: String,
    /// Lines the VTEP printed on stdout and stderr.
    output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl WharfRunner {
    /// Starts `BIN vtep ARGS...` in `ns` and waits up to 10 s for its ready
    /// line. `name` is its first TAP or device, for `wharf vtep stats`.
    pub fn start(bin: &str, ns: &Netns, name: &str, args: &[&str]) -> io::Result<WharfRunner> {
        WharfRunner::start_runner(bin, "vtep", ns, name, args)
    }

    /// Starts `BIN SUBCOMMAND ARGS...` (`vtep` or `nat`) in `ns` and waits up
    /// to 10 s for its ready line; `name` is what `wharf SUBCOMMAND stats`
    /// takes.
    pub fn start_runner(
        bin: &str,
        subcommand: &'static str,
        ns: &Netns,
        name: &str,
        args: &[&str],
    ) -> io::Result<WharfRunner> {
        use std::io::BufRead;
        let root = std::env::temp_dir().join(unique_name("root"));
        std::fs::create_dir_all(&root)?;
        let mut command = ns.command(bin, &[subcommand]);
        command.args(args).env("WHARF_ROOT", &root).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.stdin(Stdio::null()).spawn()?;
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn io::Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let output = output.clone();
            let ready_tx = ready_tx.clone();
            std::thread::spawn(move || {
                for line in io::BufReader::new(stream).lines().map_while(Result::ok) {
                    if line.contains("ready") {
                        let _ = ready_tx.send(());
                    }
                    output.lock().unwrap().push(line);
                }
            });
        }
        let mut vtep =
            WharfRunner { child: Some(child), bin: bin.to_owned(), subcommand, root, name: name.to_owned(), output };
        let ready = ready_rx.recv_timeout(Duration::from_secs(10)).is_ok();
        if !ready {
            let status = vtep.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            return Err(io::Error::other(format!(
                "wharf {subcommand} did not print its ready line (exit: {status:?}); output:\n{}",
                vtep.output()
            )));
        }
        Ok(vtep)
    }

    /// Everything the VTEP printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// The counters from `wharf vtep stats NAME`, by name.
    pub fn stats(&self) -> io::Result<std::collections::BTreeMap<String, u64>> {
        let text =
            run(Command::new(&self.bin).args([self.subcommand, "stats", &self.name]).env("WHARF_ROOT", &self.root))?;
        Ok(text
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                Some((words.next()?.to_owned(), words.next()?.parse().ok()?))
            })
            .collect())
    }

    /// One counter. Panics if the VTEP does not answer or has no such
    /// counter: a comparison of two zeros must not pass for a test.
    pub fn stat(&self, name: &str) -> u64 {
        let stats = self.stats().unwrap_or_else(|e| panic!("wharf vtep stats: {e}\n{}", self.output()));
        *stats.get(name).unwrap_or_else(|| panic!("no counter {name} in {stats:?}"))
    }

    /// Sends `signal` (`USR1`, `HUP`, ...) to the runner.
    pub fn signal(&self, signal: &str) -> io::Result<()> {
        let child = self.child.as_ref().ok_or_else(|| io::Error::other("already stopped"))?;
        run(Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]))?;
        Ok(())
    }

    /// Stops the VTEP with SIGTERM and returns its exit status and output.
    pub fn stop(&mut self) -> io::Result<(std::process::ExitStatus, String)> {
        let mut child = self.child.take().ok_or_else(|| io::Error::other("already stopped"))?;
        run(Command::new("kill").args(["-TERM", &child.id().to_string()]))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait()? {
                std::thread::sleep(Duration::from_millis(50));
                return Ok((status, self.output()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(io::Error::other(format!("wharf vtep did not stop on SIGTERM:\n{}", self.output())));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for WharfRunner {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Hosts `a` and `b` joined by a veth `u0` on the underlay: 192.0.2.1/24 in
/// `a`, 192.0.2.2/24 in `b`.
pub fn underlay_pair(tag_a: &str, tag_b: &str) -> io::Result<(Netns, Netns)> {
    let a = Netns::new(tag_a)?;
    let b = Netns::new(tag_b)?;
    a.veth("u0", &b, "u0")?;
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", "u0"])?;
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "u0"])?;
    Ok((a, b))
}

/// A kernel vxlan device over the underlay link `u0`:
/// `ip link add NAME type vxlan id VNI local LOCAL remote REMOTE dstport PORT dev u0 EXTRA...`,
/// with the overlay address `overlay` (CIDR) on it, up.
#[derive(Debug, Clone, Copy)]
pub struct KernelVxlan<'a> {
    pub name: &'a str,
    pub vni: u32,
    pub local: &'a str,
    pub remote: &'a str,
    pub dstport: u16,
    pub overlay: &'a str,
}

impl KernelVxlan<'_> {
    /// VNI 42 on port 4789 from 192.0.2.2 to 192.0.2.1, overlay 198.51.100.2/24:
    /// host `b` of an [`underlay_pair`].
    pub const B42: KernelVxlan<'static> = KernelVxlan {
        name: "vx42",
        vni: 42,
        local: "192.0.2.2",
        remote: "192.0.2.1",
        dstport: 4789,
        overlay: "198.51.100.2/24",
    };

    pub fn create(&self, ns: &Netns, extra: &[&str]) -> io::Result<()> {
        let (vni, dstport) = (self.vni.to_string(), self.dstport.to_string());
        let mut args = vec!["link", "add", self.name, "type", "vxlan", "id", &vni, "local", self.local];
        args.extend(["remote", self.remote, "dstport", &dstport, "dev", "u0"]);
        args.extend_from_slice(extra);
        ns.ip(&args)?;
        let nodad: &[&str] = if self.overlay.contains(':') { &["nodad"] } else { &[] };
        ns.ip(&[&["addr", "add", self.overlay, "dev", self.name][..], nodad].concat())?;
        ns.ip(&["link", "set", self.name, "up"])?;
        Ok(())
    }

    /// [`KernelVxlan::create`], with transmit checksum offload off: facing a
    /// userspace VTEP across a veth, nothing else would finish the inner
    /// checksums the kernel leaves to hardware (CHECKSUM_PARTIAL); a NIC
    /// does that on the wire.
    pub fn create_facing_userspace(&self, ns: &Netns) -> io::Result<()> {
        self.create(ns, &[])?;
        ns.exec("ethtool", &["-K", self.name, "tx", "off"])?;
        Ok(())
    }
}
