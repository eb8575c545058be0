//! Helpers for the end-to-end tests of wharf's containers: a [`Wharf`] is
//! one test's own world (a fresh `WHARF_ROOT` and a scratch directory, both
//! under one temporary directory) that removes every container, runtime
//! state, mount and cgroup it made when dropped, even when the test panics;
//! [`busybox_image`] builds and imports a small root filesystem from the
//! static busybox; [`Json`] reads what `wharf inspect` prints.
//!
//! Nothing is cached across tests: each test builds its own image, so tests
//! can run in parallel and one test's leftovers cannot make another pass.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{require_root, unique_name, Netns};

/// How long one wharf command may take before the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The OCI runtime the cleanup uses as a backstop (Debian's runc).
pub fn runc_path() -> &'static str {
    if Path::new("/usr/sbin/runc").exists() {
        "/usr/sbin/runc"
    } else {
        "runc"
    }
}

/// What a finished command left: its exit code (128+n when killed by signal
/// n), its output and how long it ran.
#[derive(Debug, Clone)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// The command, for messages.
    pub what: String,
}

impl fmt::Display for Ran {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} exited {} after {:?}\n--- stdout:\n{}--- stderr:\n{}---",
            self.what, self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Runs `command` to completion with stdin from /dev/null, killing it and
/// failing the test if it takes longer than `timeout`.
pub fn run_timed(command: &mut Command, timeout: Duration) -> Ran {
    try_run_timed(command, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// [`run_timed`] that reports a spawn failure or a timeout as an error
/// instead of panicking (for cleanup, which must not panic).
pub fn try_run_timed(command: &mut Command, timeout: Duration) -> Result<Ran, String> {
    use std::os::unix::process::ExitStatusExt;
    let what = format!("{command:?}");
    let start = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {what}: {e}"))?;
    let readers: Vec<_> = [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .map(|stream| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut stream) = stream {
                let _ = stream.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    })
    .collect();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what} did not finish within {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("wait for {what}: {e}")),
        }
    };
    let elapsed = start.elapsed();
    let mut texts = readers.into_iter().map(|reader| reader.join().unwrap_or_default());
    let (stdout, stderr) = (texts.next().unwrap_or_default(), texts.next().unwrap_or_default());
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(Ran { code, stdout, stderr, elapsed, what })
}

/// One test's wharf: its own `WHARF_ROOT`, a scratch directory for host
/// files, and a network namespace of its own that the commands run in (so
/// the default bridge network, its rules and the port proxies never touch
/// the machine's own namespace), unless [`Wharf::in_netns`] names another.
/// Dropping it removes everything it made.
#[derive(Debug)]
pub struct Wharf {
    bin: PathBuf,
    base: PathBuf,
    root: PathBuf,
    scratch: PathBuf,
    netns: Option<String>,
    env: Vec<(OsString, OsString)>,
    /// Declared last: dropped after [`Wharf::cleanup`] ran inside it.
    _own_netns: Option<Netns>,
}

impl Wharf {
    /// A fresh world for the wharf binary `bin` (the test's
    /// `env!("CARGO_BIN_EXE_wharf-e2e")`). Fails the test unless it runs as
    /// root.
    pub fn new(bin: &str) -> Wharf {
        require_root();
        let base = std::env::temp_dir().join(unique_name("ct"));
        let root = base.join("root");
        let scratch = base.join("scratch");
        std::fs::create_dir_all(&root).expect("create WHARF_ROOT");
        std::fs::create_dir_all(&scratch).expect("create scratch dir");
        let own_netns = Netns::new("cw").expect("create the test's network namespace");
        Wharf {
            bin: PathBuf::from(bin),
            base,
            root,
            scratch,
            netns: Some(own_netns.name().to_owned()),
            env: Vec::new(),
            _own_netns: Some(own_netns),
        }
    }

    /// Runs every later command inside `ns`'s network namespace (only the
    /// network namespace: `nsenter --net`, so mounts stay in the machine's
    /// mount namespace). The namespace must outlive this `Wharf`: declare it
    /// first.
    pub fn in_netns(mut self, ns: &Netns) -> Wharf {
        self.netns = Some(ns.name().to_owned());
        self
    }

    /// Sets an environment variable for every later command.
    pub fn set_env(&mut self, key: &str, value: impl Into<OsString>) {
        self.env.push((key.into(), value.into()));
    }

    /// The `WHARF_ROOT`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A directory for the test's own host files, removed on drop.
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// The directory holding both, under which nothing may stay mounted.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The network namespace the commands run in.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// The wharf binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// `wharf ARGS...` with `WHARF_ROOT` set (and `WHARF_RUNTIME` unset
    /// unless [`Wharf::set_env`] set it), in the namespace if any.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut command = match &self.netns {
            Some(ns) => {
                let mut command = Command::new("nsenter");
                command.arg(format!("--net=/run/netns/{ns}")).arg(&self.bin);
                command
            }
            None => Command::new(&self.bin),
        };
        command.args(args).env("WHARF_ROOT", &self.root).env_remove("WHARF_RUNTIME");
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Runs `wharf ARGS...` to completion, whatever its exit code.
    pub fn run(&self, args: &[&str]) -> Ran {
        run_timed(&mut self.cmd(args), COMMAND_TIMEOUT)
    }

    /// Runs `wharf ARGS...`, asserts it succeeded and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let ran = self.run(args);
        assert_eq!(ran.code, 0, "expected success: {ran}");
        ran.stdout
    }

    /// Runs `wharf ARGS...`, asserts it failed and returns its exit code
    /// and stderr.
    pub fn fail(&self, args: &[&str]) -> (i32, String) {
        let ran = self.run(args);
        assert_ne!(ran.code, 0, "expected failure: {ran}");
        (ran.code, ran.stderr)
    }

    /// The entries of `WHARF_ROOT/containers` (container ids), sorted.
    pub fn container_dirs(&self) -> Vec<String> {
        dir_names(&self.root.join("containers"))
    }

    /// The container ids runc knows under `WHARF_ROOT/runc`.
    pub fn runc_list(&self) -> Vec<String> {
        let runc_root = self.root.join("runc");
        let ran =
            run_timed(Command::new(runc_path()).arg("--root").arg(&runc_root).args(["list", "-q"]), COMMAND_TIMEOUT);
        assert_eq!(ran.code, 0, "runc list: {ran}");
        ran.stdout.split_whitespace().map(str::to_owned).collect()
    }

    /// Mount points at or under this world's directory.
    pub fn mounts(&self) -> Vec<PathBuf> {
        mounts_under(&self.base)
    }

    /// The line of `wharf ps` (`-a` when `all`) whose NAMES column is `name`.
    pub fn ps_line(&self, name: &str, all: bool) -> Option<String> {
        let out = if all { self.ok(&["ps", "-a"]) } else { self.ok(&["ps"]) };
        out.lines().skip(1).find(|line| line.split_whitespace().last() == Some(name)).map(str::to_owned)
    }

    /// `wharf inspect C`'s one object.
    pub fn inspect(&self, container: &str) -> Json {
        let out = self.ok(&["inspect", container]);
        let json = Json::parse(&out).unwrap_or_else(|e| panic!("inspect {container}: {e}\n{out}"));
        let items = json.as_array().unwrap_or_else(|| panic!("inspect {container} is not an array: {out}"));
        assert_eq!(items.len(), 1, "inspect {container}: {out}");
        items[0].clone()
    }

    /// The full id of a container.
    pub fn full_id(&self, container: &str) -> String {
        let inspect = self.inspect(container);
        let id = inspect["Id"].as_str().unwrap_or_else(|| panic!("no Id in {inspect:?}")).to_owned();
        assert!(is_hex(&id, 64), "Id {id:?} is not 64 hex digits");
        id
    }

    /// Processes whose environment names this `WHARF_ROOT` (wharf, its
    /// monitors, runtime wrappers; not the containers' own processes).
    pub fn processes(&self) -> Vec<u32> {
        let needle = format!("WHARF_ROOT={}", self.root.display());
        let me = std::process::id();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            if pid == me {
                continue;
            }
            if let Ok(environ) = std::fs::read(entry.path().join("environ")) {
                if environ.split(|b| *b == 0).any(|var| var == needle.as_bytes()) {
                    pids.push(pid);
                }
            }
        }
        pids
    }

    fn cleanup(&mut self) {
        let quick = Duration::from_secs(30);
        let mut ids: BTreeSet<String> = self.container_dirs().into_iter().collect();
        // 1. What wharf knows, removed by wharf inside the test's namespace
        // (wharf may change links and rules there). If that namespace is
        // gone, no wharf command runs: the backstops below still clean up,
        // and nothing may ever run in the machine's own namespace.
        let namespace_alive = self.netns.as_ref().is_some_and(|ns| Path::new("/run/netns").join(ns).exists());
        if namespace_alive {
            let mut ps = self.cmd(&["ps", "-aq"]);
            ps.env_remove("WHARF_RUNTIME");
            if let Ok(ps) = try_run_timed(&mut ps, quick) {
                for id in ps.stdout.split_whitespace() {
                    let mut rm = self.cmd(&["rm", "-f", "-v", id]);
                    rm.env_remove("WHARF_RUNTIME");
                    let _ = try_run_timed(&mut rm, quick);
                }
            }
        }
        // 2. Backstops: stray wharf processes, runc state.
        for pid in self.processes() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).stderr(Stdio::null()).status();
        }
        let runc_root = self.root.join("runc");
        if runc_root.exists() {
            let mut list = Command::new(runc_path());
            list.arg("--root").arg(&runc_root).args(["list", "-q"]);
            if let Ok(listed) = try_run_timed(&mut list, quick) {
                for id in listed.stdout.split_whitespace() {
                    ids.insert(id.to_owned());
                    let mut delete = Command::new(runc_path());
                    delete.arg("--root").arg(&runc_root).args(["delete", "--force", id]);
                    let _ = try_run_timed(&mut delete, quick);
                }
            }
        }
        // 3. Cgroups of its containers.
        for id in &ids {
            for dir in cgroup_dirs(id) {
                remove_cgroup(&dir);
            }
        }
        // 4. Mounts, deepest first, then the files.
        for _ in 0..3 {
            let mut mounts = mounts_under(&self.base);
            if mounts.is_empty() {
                break;
            }
            mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
            for mount in mounts {
                let _ = Command::new("umount").arg("-l").arg(&mount).stderr(Stdio::null()).status();
            }
        }
        if mounts_under(&self.base).is_empty() {
            let _ = std::fs::remove_dir_all(&self.base);
        } else {
            eprintln!("leaving {} in place: still mounted", self.base.display());
        }
    }
}

impl Drop for Wharf {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// The names in a directory, sorted; none when it does not exist.
pub fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Whether `text` is exactly `len` lowercase hex digits.
pub fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Mount points (from /proc/self/mountinfo) at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(unescape_mountinfo(point)))
        .filter(|point| point.starts_with(dir))
        .collect()
}

fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            let value = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The cgroup v1 directories `/sys/fs/cgroup/<controller>/wharf/ID` that
/// exist (v2: `/sys/fs/cgroup/wharf/ID`).
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let v2 = Path::new("/sys/fs/cgroup/wharf").join(id);
    if v2.is_dir() {
        dirs.push(v2);
    }
    for controller in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
        let dir = controller.path().join("wharf").join(id);
        if dir.is_dir() {
            dirs.push(dir);
        }
    }
    dirs
}

/// Kills what is left in a cgroup and removes it (children first).
fn remove_cgroup(dir: &Path) {
    for child in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if child.path().is_dir() {
            remove_cgroup(&child.path());
        }
    }
    for _ in 0..50 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).stderr(Stdio::null()).status();
        }
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Where [`busybox_image`]'s `/data/seed.txt` is, and what it holds.
pub const SEED_PATH: &str = "/data/seed.txt";
pub const SEED_TEXT: &str = "seeded by the image\n";
pub const SEED_UID: u32 = 1234;
pub const SEED_GID: u32 = 5678;
pub const SEED_MODE: u32 = 0o640;

/// Lays out a busybox root filesystem in `dir` (which must not exist):
/// `/bin/busybox` and a symlink per applet, `/etc/passwd` and `/etc/group`
/// (root, nobody), empty `/proc /sys /dev /etc`, `/tmp` (1777),
/// `/data/seed.txt` (uid 1234, gid 5678, mode 0640), and symlinks that try
/// to leave the root: `/srv/link -> ../../…/etc` (climbs to `/` from any
/// depth), `/srv/link4 -> ../../../../etc` and `/srv/abs -> /etc`.
pub fn busybox_rootfs(dir: &Path) {
    use std::os::unix::fs::symlink;
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is installed (/bin/busybox)");
    for sub in ["bin", "etc", "proc", "sys", "dev", "tmp", "data", "srv", "root"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::copy(busybox, dir.join("bin/busybox")).unwrap();
    std::fs::set_permissions(dir.join("bin/busybox"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let list = run_timed(Command::new(busybox).arg("--list"), COMMAND_TIMEOUT);
    assert_eq!(list.code, 0, "{list}");
    for applet in list.stdout.split_whitespace().filter(|a| *a != "busybox") {
        symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
        .unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    let seed = dir.join("data/seed.txt");
    std::fs::write(&seed, SEED_TEXT).unwrap();
    std::os::unix::fs::chown(&seed, Some(SEED_UID), Some(SEED_GID)).unwrap();
    std::fs::set_permissions(&seed, std::fs::Permissions::from_mode(SEED_MODE)).unwrap();
    symlink(format!("{}etc", "../".repeat(24)), dir.join("srv/link")).unwrap();
    symlink("../../../../etc", dir.join("srv/link4")).unwrap();
    symlink("/etc", dir.join("srv/abs")).unwrap();
}

/// Builds the busybox root filesystem as a tar in `w`'s scratch directory
/// and returns the tar's path.
pub fn busybox_tar(w: &Wharf, name: &str) -> PathBuf {
    let staging = w.scratch().join(format!("{name}.rootfs"));
    busybox_rootfs(&staging);
    let tar = w.scratch().join(format!("{name}.tar"));
    let ran = run_timed(
        Command::new("tar").arg("--numeric-owner").arg("-C").arg(&staging).arg("-cf").arg(&tar).arg("."),
        COMMAND_TIMEOUT,
    );
    assert_eq!(ran.code, 0, "{ran}");
    let _ = std::fs::remove_dir_all(&staging);
    tar
}

/// Builds the busybox image and imports it as `name` with
/// `wharf image import`; returns what import printed (`sha256:...`).
pub fn busybox_image(w: &Wharf, name: &str) -> String {
    let tar = busybox_tar(w, name);
    let printed = w.ok(&["image", "import", tar.to_str().unwrap(), name]);
    printed.trim().to_owned()
}

/// Owner, group and permission bits of a host path (not following a final
/// symlink).
pub fn owner_mode(path: &Path) -> (u32, u32, u32) {
    let meta = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (meta.uid(), meta.gid(), meta.mode() & 0o7777)
}

/// A JSON value, as much of JSON as `wharf inspect` needs. Indexing a
/// missing key or index gives `Null`.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The number as written.
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

static NULL: Json = Json::Null;

impl Json {
    /// Parses one JSON document (surrounding whitespace allowed).
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut parser = JsonParser { bytes: text.as_bytes(), at: 0 };
        let value = parser.value()?;
        parser.space();
        if parser.at != parser.bytes.len() {
            return Err(format!("trailing text at byte {}", parser.at));
        }
        Ok(value)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Number(n) => n.parse().ok().or_else(|| n.parse::<f64>().ok().map(|f| f as i64)),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The strings of an array of strings.
    pub fn strings(&self) -> Vec<String> {
        self.as_array().unwrap_or_default().iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }
}

impl std::ops::Index<&str> for Json {
    type Output = Json;
    fn index(&self, key: &str) -> &Json {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map_or(&NULL, |(_, v)| v),
            _ => &NULL,
        }
    }
}

impl std::ops::Index<usize> for Json {
    type Output = Json;
    fn index(&self, index: usize) -> &Json {
        match self {
            Json::Array(items) => items.get(index).unwrap_or(&NULL),
            _ => &NULL,
        }
    }
}

struct JsonParser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl JsonParser<'_> {
    fn space(&mut self) {
        while self.at < self.bytes.len() && self.bytes[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Result<u8, String> {
        self.space();
        self.bytes.get(self.at).copied().ok_or_else(|| "unexpected end".to_owned())
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.peek()? == byte {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", byte as char, self.at))
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(format!("bad literal at byte {}", self.at))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        match self.peek()? {
            b'{' => {
                self.at += 1;
                let mut fields = Vec::new();
                if self.peek()? == b'}' {
                    self.at += 1;
                    return Ok(Json::Object(fields));
                }
                loop {
                    let key = self.string()?;
                    self.expect(b':')?;
                    fields.push((key, self.value()?));
                    match self.peek()? {
                        b',' => self.at += 1,
                        b'}' => {
                            self.at += 1;
                            return Ok(Json::Object(fields));
                        }
                        _ => return Err(format!("expected , or }} at byte {}", self.at)),
                    }
                }
            }
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if self.peek()? == b']' {
                    self.at += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    match self.peek()? {
                        b',' => self.at += 1,
                        b']' => {
                            self.at += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(format!("expected , or ] at byte {}", self.at)),
                    }
                }
            }
            b'"' => Ok(Json::String(self.string()?)),
            b't' => self.literal("true", Json::Bool(true)),
            b'f' => self.literal("false", Json::Bool(false)),
            b'n' => self.literal("null", Json::Null),
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                while self.at < self.bytes.len()
                    && matches!(self.bytes[self.at], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    self.at += 1;
                }
                Ok(Json::Number(String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned()))
            }
            other => Err(format!("unexpected {:?} at byte {}", other as char, self.at)),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let byte = *self.bytes.get(self.at).ok_or("unterminated string")?;
            self.at += 1;
            match byte {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let escape = *self.bytes.get(self.at).ok_or("unterminated escape")?;
                    self.at += 1;
                    match escape {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = self.bytes.get(self.at..self.at + 4).ok_or("short \\u escape")?;
                            let code =
                                u32::from_str_radix(&String::from_utf8_lossy(hex), 16).map_err(|e| e.to_string())?;
                            self.at += 4;
                            let c = char::from_u32(code).unwrap_or('\u{fffd}');
                            out.extend_from_slice(c.to_string().as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
    }
}

// Networks (issue #7): the topology every network test runs in.

/// The host namespace's address on the link to the outside namespace.
pub const HOST_UPLINK_ADDR: &str = "203.0.113.1";
/// The outside namespace's address on that link.
pub const OUTSIDE_ADDR: &str = "203.0.113.2";
/// The veth between the host and outside namespaces (the same name at both
/// ends).
pub const UPLINK: &str = "wup0";

/// A network test's world: a "host" namespace that wharf runs in (its
/// bridges, veths, firewall rules, resolver and proxies all live there), an
/// "outside" namespace joined to it by the veth [`UPLINK`]
/// ([`HOST_UPLINK_ADDR`]/24 in host, [`OUTSIDE_ADDR`]/24 outside), and a
/// [`Wharf`] with the busybox image imported as `bb` and `WHARF_PROXY` set.
///
/// Every wharf command, including the ones [`Wharf`]'s cleanup runs, goes
/// through a wrapper that enters the host namespace first (and fails when
/// it is gone): wharf never runs in the machine's own network namespace,
/// so it can never make a bridge or a firewall rule there. Dropping the
/// world removes the containers, then the namespaces with everything in
/// them.
#[derive(Debug)]
pub struct NetWorld {
    /// Declared first: dropped (containers removed) while the namespaces
    /// still exist.
    pub w: Wharf,
    wrapper: ScratchDir,
    pub outside: Netns,
    pub host: Netns,
}

/// A directory removed on drop.
#[derive(Debug)]
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl NetWorld {
    /// Builds the topology and the world for the wharf binary `wharf` and
    /// the proxy binary `proxy` (`env!("CARGO_BIN_EXE_wharf-proxy-e2e")`).
    pub fn new(wharf: &str, proxy: &str) -> NetWorld {
        require_root();
        let host = Netns::new("nh").expect("create the host namespace");
        let outside = Netns::new("no").expect("create the outside namespace");
        host.veth(UPLINK, &outside, UPLINK).expect("create the uplink veth");
        host.ip(&["addr", "add", &format!("{HOST_UPLINK_ADDR}/24"), "dev", UPLINK]).unwrap();
        outside.ip(&["addr", "add", &format!("{OUTSIDE_ADDR}/24"), "dev", UPLINK]).unwrap();
        let dir = std::env::temp_dir().join(unique_name("nb"));
        std::fs::create_dir_all(&dir).unwrap();
        let wrapper = ScratchDir(dir);
        let script = wrapper.0.join("wharf");
        let bin = std::fs::canonicalize(wharf).unwrap_or_else(|e| panic!("{wharf}: {e}"));
        std::fs::write(
            &script,
            format!("#!/bin/sh\nexec nsenter --net=/run/netns/{} {} \"$@\"\n", host.name(), bin.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut w = Wharf::new(script.to_str().unwrap()).in_netns(&host);
        w.set_env("WHARF_PROXY", proxy);
        busybox_image(&w, "bb");
        NetWorld { w, wrapper, outside, host }
    }

    /// The real wharf binary (what `/proc/PID/exe` of a wharf process is).
    pub fn wharf_exe(&self) -> PathBuf {
        let script = std::fs::read_to_string(self.wrapper.0.join("wharf")).unwrap();
        let line = script.lines().nth(1).unwrap();
        PathBuf::from(line.split_whitespace().nth(3).unwrap())
    }

    /// `wharf exec C sh -c SCRIPT`, whatever its exit code.
    pub fn sh(&self, container: &str, script: &str) -> Ran {
        self.w.run(&["exec", container, "sh", "-c", script])
    }

    /// [`NetWorld::sh`] that must succeed; returns its stdout.
    pub fn sh_ok(&self, container: &str, script: &str) -> String {
        let ran = self.sh(container, script);
        assert_eq!(ran.code, 0, "in {container}: {ran}");
        ran.stdout
    }

    /// The IPv4 address with prefix (`172.22.16.2/24`) of `dev` inside a
    /// running container, or `None` when it has none (or no such device).
    pub fn addr(&self, container: &str, dev: &str) -> Option<String> {
        let ran = self.sh(container, &format!("ip -o -4 addr show dev {dev}"));
        if ran.code != 0 {
            return None;
        }
        ran.stdout.split_whitespace().skip_while(|word| *word != "inet").nth(1).map(str::to_owned)
    }

    /// [`NetWorld::addr`] without the prefix length; fails the test when
    /// there is none.
    pub fn ip_of(&self, container: &str, dev: &str) -> String {
        let addr = self.addr(container, dev).unwrap_or_else(|| {
            let links = self.sh(container, "ip -o addr");
            panic!("{container} has no IPv4 address on {dev}: {links}")
        });
        addr.split('/').next().unwrap().to_owned()
    }

    /// Whether one `ping -c1 -W SECS TARGET` from `container` got a reply.
    pub fn ping_once(&self, container: &str, target: &str, secs: u32) -> bool {
        self.sh(container, &format!("ping -c1 -W{secs} {target}")).code == 0
    }

    /// Pings until a reply comes or `timeout` passes (a fresh bridge port,
    /// ARP, a resolver that is still binding). Returns the last attempt.
    pub fn ping_within(&self, container: &str, target: &str, timeout: Duration) -> Ran {
        let deadline = Instant::now() + timeout;
        loop {
            let ran = self.sh(container, &format!("ping -c1 -W1 {target}"));
            if ran.code == 0 || Instant::now() >= deadline {
                return ran;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `wharf network inspect NAME`'s one object.
    pub fn network(&self, name: &str) -> Json {
        let out = self.w.ok(&["network", "inspect", name]);
        let json = Json::parse(&out).unwrap_or_else(|e| panic!("network inspect {name}: {e}\n{out}"));
        let items = json.as_array().unwrap_or_else(|| panic!("network inspect {name} is not an array: {out}"));
        assert_eq!(items.len(), 1, "network inspect {name}: {out}");
        items[0].clone()
    }

    /// The network's bridge device in the host namespace: the one whose
    /// IPv4 address is the network's gateway.
    pub fn bridge_of(&self, network: &str) -> String {
        let net = self.network(network);
        let gateway = net["IPAM"]["Config"][0]["Gateway"].as_str().unwrap_or_default().to_owned();
        let out = self.host.ip(&["-o", "-4", "addr"]).unwrap();
        out.lines()
            .find(|line| line.split_whitespace().nth(3).is_some_and(|a| a.split('/').next() == Some(&gateway)))
            .and_then(|line| line.split_whitespace().nth(1))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no device in the host namespace has {network}'s gateway {gateway:?}:\n{out}"))
    }

    /// The host namespace's links: (name, kind, master), sorted by name.
    pub fn host_links(&self) -> Vec<HostLink> {
        let out = self.host.ip(&["-j", "-d", "link", "show"]).unwrap();
        let json = Json::parse(&out).unwrap_or_else(|e| panic!("ip -j -d link: {e}\n{out}"));
        let mut links: Vec<HostLink> = json
            .as_array()
            .unwrap_or_default()
            .iter()
            .map(|link| HostLink {
                name: link["ifname"].as_str().unwrap_or_default().to_owned(),
                kind: link["linkinfo"]["info_kind"].as_str().unwrap_or_default().to_owned(),
                master: link["master"].as_str().unwrap_or_default().to_owned(),
                mtu: link["mtu"].as_i64().unwrap_or_default(),
            })
            .collect();
        links.sort_by(|a, b| a.name.cmp(&b.name));
        links
    }

    /// `iptables-save` in the host namespace without comments and counters,
    /// so that two snapshots compare equal when the rules are the same.
    pub fn iptables(&self) -> String {
        let out = self.host.exec("iptables-save", &[]).unwrap();
        out.lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| match line.strip_prefix(':') {
                // ":CHAIN POLICY [packets:bytes]"
                Some(_) => line.rsplit_once(' ').map_or(line, |(head, _)| head).to_owned(),
                None => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Everything of the host namespace a failed command must leave as it
    /// was: links, IPv4 addresses, routes, firewall rules, forwarding.
    pub fn host_snapshot(&self) -> String {
        let links: Vec<String> = self.host_links().iter().map(|l| format!("{l:?}")).collect();
        format!(
            "links:\n{}\naddresses:\n{}routes:\n{}iptables:\n{}\nip_forward: {}",
            links.join("\n"),
            self.host.ip(&["-o", "-4", "addr"]).unwrap(),
            self.host.ip(&["-4", "route", "show", "table", "all"]).unwrap(),
            self.iptables(),
            self.host.exec("cat", &["/proc/sys/net/ipv4/ip_forward"]).unwrap().trim(),
        )
    }
}

/// One link of the host namespace, as [`NetWorld::host_links`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLink {
    pub name: String,
    /// `veth`, `bridge`, ... (empty for `lo`).
    pub kind: String,
    /// The bridge it is a port of, if any.
    pub master: String,
    pub mtu: i64,
}

/// Runs `f` on a new thread that has entered `ns`'s network namespace, and
/// returns what it returns: sockets made there stay in that namespace
/// wherever they are used later. A panic in `f` is resumed in the caller.
pub fn in_netns<T: Send>(ns: &Netns, f: impl FnOnce() -> T + Send) -> T {
    let name = ns.name().to_owned();
    std::thread::scope(|scope| {
        let handle = scope.spawn(move || {
            dataplane::sys::netns::enter(&name).unwrap_or_else(|e| panic!("enter {name}: {e}"));
            f()
        });
        match handle.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// What a [`TcpEcho`] server saw on one connection.
#[derive(Debug, Clone)]
pub struct EchoSeen {
    pub peer: std::net::SocketAddr,
    pub data: Vec<u8>,
}

/// A TCP server in a namespace that, per connection, reads until the
/// client shuts its side down, answers `echo:DATA from PEER_IP\n` and
/// closes. It records each connection; it stops when dropped.
#[derive(Debug)]
pub struct TcpEcho {
    seen: std::sync::Arc<std::sync::Mutex<Vec<EchoSeen>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TcpEcho {
    /// Listens on `addr` (e.g. `203.0.113.2:9000`) inside `ns`.
    pub fn start(ns: &Netns, addr: &str) -> TcpEcho {
        use std::io::Write;
        use std::sync::atomic::Ordering;
        let listener = in_netns(ns, || std::net::TcpListener::bind(addr))
            .unwrap_or_else(|e| panic!("listen on {addr} in {}: {e}", ns.name()));
        listener.set_nonblocking(true).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, peer)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                        let mut data = Vec::new();
                        let _ = stream.read_to_end(&mut data);
                        let reply = format!("echo:{} from {}\n", String::from_utf8_lossy(&data).trim(), peer.ip());
                        let _ = stream.write_all(reply.as_bytes());
                        seen2.lock().unwrap().push(EchoSeen { peer, data });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        TcpEcho { seen, stop, thread: Some(thread) }
    }

    /// The connections served so far.
    pub fn seen(&self) -> Vec<EchoSeen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for TcpEcho {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An HTTP GET of `/` on `addr` from inside `ns` (a fresh connection):
/// the whole response, or the error. Gives up after `timeout`.
pub fn http_get(ns: &Netns, addr: &str, timeout: Duration) -> std::io::Result<String> {
    use std::io::Write;
    let addr: std::net::SocketAddr = addr.parse().map_err(std::io::Error::other)?;
    in_netns(ns, move || {
        let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        Ok(String::from_utf8_lossy(&response).into_owned())
    })
}
