//! `wharf run` in the foreground and in the background, and the life of a
//! container after it: ps, exec, stop (SIGTERM, then SIGKILL), start,
//! restart, rm, logs, container prune, inspect. Errors before a container
//! starts leave nothing behind.
//!
//! A container's command runs as PID 1 of its own PID namespace, where the
//! kernel drops every signal the process has no handler for — SIGTERM from
//! outside included (pid_namespaces(7)). So `sleep` as PID 1 outlives
//! SIGTERM and `stop` ends it with SIGKILL (137), as `docker stop` does; a
//! process with a TERM handler is the one that stops on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tests::container::{busybox_image, cgroup_dirs, is_hex, Wharf};
use tests::wait_for;

const WHARF: &str = env!("CARGO_BIN_EXE_wharf-e2e");

/// A world with the busybox image imported as `bb`.
fn world() -> Wharf {
    let w = Wharf::new(WHARF);
    busybox_image(&w, "bb");
    w
}

/// `ps -a`'s STATUS for `name` starts with `prefix`, within 5 s.
fn wait_status(w: &Wharf, name: &str, prefix: &str) {
    let mut last = None;
    let ok = wait_for(Duration::from_secs(5), || {
        last = w.ps_line(name, true);
        last.as_deref().is_some_and(|line| line.contains(prefix))
    });
    assert!(ok, "{name} is not {prefix:?}; ps -a line: {last:?}\n{}", w.ok(&["ps", "-a"]));
}

#[test]
fn foreground_passes_output_and_exit_code() {
    let w = world();
    let ran = w.run(&["run", "bb", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!((ran.code, ran.stdout.as_str(), ran.stderr.as_str()), (3, "out\n", "err\n"), "{ran}");

    let mut w = w;
    w.set_env("WHARF_TEST_FROM_ENV", "from-env");
    let out = w.ok(&[
        "run",
        "-e",
        "K=V with spaces",
        "--env",
        "WHARF_TEST_FROM_ENV",
        "-w",
        "/tmp",
        "--hostname",
        "h1",
        "bb",
        "sh",
        "-c",
        "echo \"$K\"; echo $WHARF_TEST_FROM_ENV; pwd; hostname",
    ]);
    assert_eq!(out, "V with spaces\nfrom-env\n/tmp\nh1\n");

    // Options stop at the image: what follows is the command's.
    assert_eq!(w.ok(&["run", "bb", "printf", "%s|", "-e", "--name", "x"]), "-e|--name|x|");
}

/// What must not change when a run fails before its container starts.
#[derive(Debug, PartialEq)]
struct State {
    ps: String,
    containers: Vec<String>,
    runc: Vec<String>,
    mounts: Vec<std::path::PathBuf>,
    volumes: Vec<String>,
}

fn state(w: &Wharf) -> State {
    State {
        ps: w.ok(&["ps", "-aq"]),
        containers: w.container_dirs(),
        runc: w.runc_list(),
        mounts: w.mounts(),
        volumes: tests::container::dir_names(&w.root().join("volumes")),
    }
}

#[test]
fn errors_before_start_leave_no_state() {
    let w = world();
    w.ok(&["run", "--name", "taken", "bb", "true"]);
    let before = state(&w);
    let missing = w.scratch().join("no-such-dir");
    let missing_spec = format!("{}:/mnt", missing.display());
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (vec!["run", "bb"], 125, "wharf: no command specified".into()),
        (vec!["run", "-d", "bb"], 125, "wharf: no command specified".into()),
        (vec!["run", "nosuch", "true"], 125, "wharf: no such image: nosuch".into()),
        (
            vec!["run", "-v", "/a:/b:/c:/d", "bb", "true"],
            125,
            "wharf: invalid volume specification: \"/a:/b:/c:/d\"".into(),
        ),
        (
            vec!["run", "-v", &missing_spec, "bb", "true"],
            125,
            format!("wharf: invalid mount config: bind source path does not exist: {}", missing.display()),
        ),
        (vec!["run", "--memory", "abc", "bb", "true"], 125, "wharf: invalid memory value \"abc\"".into()),
        (vec!["run", "-e", "=foo", "bb", "true"], 125, "wharf: invalid environment variable: =foo".into()),
        (vec!["run", "-e", "", "bb", "true"], 125, "wharf: invalid environment variable: ".into()),
        (vec!["run", "--name", "taken", "bb", "true"], 125, "wharf: container name \"taken\" is already in use".into()),
        (
            vec!["run", "-d", "--name", "taken", "bb", "sleep", "100"],
            125,
            "wharf: container name \"taken\" is already in use".into(),
        ),
    ];
    // Every case is checked, and every mismatch reported together.
    let mut wrong = Vec::new();
    for (args, code, message) in &cases {
        let ran = w.run(args);
        if ran.code != *code || ran.stderr.lines().count() != 1 || !ran.stderr.starts_with(message.as_str()) {
            wrong.push(format!("expected exit {code} and one line starting {message:?}: {ran}"));
        }
        if !ran.stdout.is_empty() {
            wrong.push(format!("expected nothing on stdout: {ran}"));
        }
        let after = state(&w);
        if after != before {
            wrong.push(format!("state changed after {args:?}: {after:?}"));
        }
    }
    // clap's own error for an unknown flag: exit 2, naming the flag.
    let ran = w.run(&["run", "--bogus", "bb", "true"]);
    if ran.code != 2 || !ran.stderr.contains("--bogus") {
        wrong.push(format!("expected clap's exit 2 for an unknown flag: {ran}"));
    }
    if state(&w) != before {
        wrong.push("state changed after an unknown flag".to_owned());
    }
    for args in [
        &["stop", "nosuch"][..],
        &["rm", "nosuch"],
        &["inspect", "nosuch"],
        &["logs", "nosuch"],
        &["exec", "nosuch", "true"],
    ] {
        let ran = w.run(args);
        if (ran.code, ran.stderr.trim()) != (1, "wharf: no such container: nosuch") {
            wrong.push(format!("expected exit 1 and \"wharf: no such container: nosuch\": {ran}"));
        }
    }
    if state(&w) != before {
        wrong.push("state changed after commands on an unknown container".to_owned());
    }
    assert!(wrong.is_empty(), "{} of the error cases went wrong:\n\n{}", wrong.len(), wrong.join("\n\n"));
}

#[test]
fn detached_container_lifecycle() {
    let w = world();
    let id = w.ok(&["run", "-d", "--name", "web", "bb", "sleep", "1000"]).trim().to_owned();
    assert!(is_hex(&id, 64), "run -d printed {id:?}");
    let line = w.ps_line("web", false).unwrap_or_else(|| panic!("ps does not list web:\n{}", w.ok(&["ps"])));
    assert!(line.starts_with(&id[..12]), "{line}");
    assert!(line.contains("Up "), "{line}");
    assert_eq!(w.ok(&["ps", "-q"]).trim(), &id[..12]);

    // exec, by name and by id prefix; its exit code passes through.
    let cmdline = w.ok(&["exec", "web", "cat", "/proc/1/cmdline"]);
    assert_eq!(cmdline.split('\0').collect::<Vec<_>>(), ["sleep", "1000", ""], "{cmdline:?}");
    assert_eq!(w.ok(&["exec", &id[..10], "hostname"]).trim(), &id[..12], "the default hostname is the short id");
    let ran = w.run(&["exec", "web", "sh", "-c", "exit 7"]);
    assert_eq!(ran.code, 7, "{ran}");
    assert_eq!(w.ok(&["exec", "-e", "X=1", "-w", "/data", "web", "sh", "-c", "echo $X; pwd"]), "1\n/data\n");
    w.ok(&["exec", "web", "sh", "-c", "echo kept > /kept"]);

    // rm refuses a running container.
    let (code, err) = w.fail(&["rm", "web"]);
    assert_eq!((code, err.trim()), (1, "wharf: cannot remove running container web: stop it first or use -f"));

    // stop: sleep as PID 1 ignores SIGTERM, so SIGKILL after 1 s.
    let ran = w.run(&["stop", "-t", "1", "web"]);
    assert_eq!((ran.code, ran.stdout.trim()), (0, "web"), "{ran}");
    assert!(ran.elapsed >= Duration::from_secs(1), "stop returned before its timeout: {ran}");
    wait_status(&w, "web", "Exited (137)");
    assert!(w.ps_line("web", false).is_none(), "ps without -a lists a stopped container");
    assert_eq!(w.ok(&["stop", "web"]).trim(), "web", "stopping a stopped container is not an error");
    let (code, err) = w.fail(&["exec", "web", "true"]);
    assert_eq!((code, err.trim()), (1, "wharf: container web is not running"));

    // start again: same upper layer.
    assert_eq!(w.ok(&["start", "web"]).trim(), "web");
    wait_status(&w, "web", "Up ");
    assert_eq!(w.ok(&["exec", "web", "cat", "/kept"]), "kept\n", "a file written before stop is gone");
    let pid_before = w.inspect("web")["State"]["Pid"].as_i64().unwrap();
    assert!(w.ok(&["restart", "-t", "1", "web"]).contains("web"));
    wait_status(&w, "web", "Up ");
    let pid_after = w.inspect("web")["State"]["Pid"].as_i64().unwrap();
    assert_ne!(pid_before, pid_after, "restart did not start a new process");
    assert_eq!(w.ok(&["exec", "web", "cat", "/kept"]), "kept\n");

    // rm -f removes a running one and everything it had.
    w.ok(&["rm", "-f", "web"]);
    assert!(w.ps_line("web", true).is_none(), "{}", w.ok(&["ps", "-a"]));
    assert_eq!(w.container_dirs(), Vec::<String>::new());
    assert_eq!(w.runc_list(), Vec::<String>::new());
    assert_eq!(w.mounts(), Vec::<std::path::PathBuf>::new());
    assert_eq!(cgroup_dirs(&id), Vec::<std::path::PathBuf>::new(), "cgroups left behind");
    // The name is free again.
    assert_eq!(w.ok(&["run", "--rm", "--name", "web", "bb", "echo", "again"]), "again\n");
    assert!(w.ps_line("web", true).is_none(), "--rm left the container");
}

/// A `--rm` container whose command ends at once may be gone, record and
/// all, before `run` first reads its state: `run` then still exits with the
/// container's code and says nothing. Forty runs each way, so that the
/// monitor wins that race in some of them.
#[test]
fn a_short_rm_container_exits_with_its_code() {
    let w = world();
    for round in 0..40 {
        let ran = w.run(&["run", "--rm", "bb", "sh", "-c", "exit 3"]);
        assert_eq!((ran.code, ran.stderr.as_str()), (3, ""), "round {round}: {ran}");
        let ran = w.run(&["run", "--rm", "bb", "true"]);
        assert_eq!((ran.code, ran.stderr.as_str()), (0, ""), "round {round}: {ran}");
    }
    assert_eq!(w.container_dirs(), Vec::<String>::new());
    assert_eq!(w.runc_list(), Vec::<String>::new());
    assert_eq!(w.mounts(), Vec::<std::path::PathBuf>::new());
}

#[test]
fn stop_sends_term_then_kill() {
    let w = world();
    // A TERM handler: stop ends it at once, with the code it chose.
    w.ok(&["run", "-d", "--name", "polite", "bb", "sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.1; done"]);
    // TERM ignored: killed after the timeout.
    w.ok(&["run", "-d", "--name", "stubborn", "bb", "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]);
    let ran = w.run(&["stop", "-t", "10", "polite"]);
    assert_eq!(ran.code, 0, "{ran}");
    assert!(ran.elapsed < Duration::from_secs(5), "stop waited for the timeout although TERM ended it: {ran}");
    wait_status(&w, "polite", "Exited (42)");

    let ran = w.run(&["stop", "-t", "1", "stubborn"]);
    assert_eq!(ran.code, 0, "{ran}");
    assert!(ran.elapsed >= Duration::from_secs(1), "stop did not wait 1 s before SIGKILL: {ran}");
    assert!(ran.elapsed < Duration::from_secs(6), "stop took too long: {ran}");
    wait_status(&w, "stubborn", "Exited (137)");
}

#[test]
fn logs_and_follow() {
    let w = world();
    assert_eq!(w.ok(&["run", "--name", "talk", "bb", "sh", "-c", "echo one; echo two"]), "one\ntwo\n");
    assert_eq!(w.ok(&["logs", "talk"]), "one\ntwo\n");
    // A detached container's output, stdout and stderr in order.
    w.ok(&["run", "-d", "--name", "bg", "bb", "sh", "-c", "echo a; sleep 0.1; echo b >&2; sleep 0.1; echo c"]);
    wait_status(&w, "bg", "Exited (0)");
    let ran = w.run(&["logs", "bg"]);
    let mut lines: Vec<&str> = ran.stdout.lines().chain(ran.stderr.lines()).collect();
    assert_eq!(lines.len(), 3, "{ran}");
    if ran.stderr.is_empty() {
        assert_eq!(lines, ["a", "b", "c"], "{ran}");
    } else {
        lines.sort_unstable();
        assert_eq!(lines, ["a", "b", "c"], "{ran}");
    }

    // -f follows a container that prints over time and returns when it exits.
    w.ok(&["run", "-d", "--name", "ticker", "bb", "sh", "-c", "for i in 1 2 3 4 5; do echo tick$i; sleep 0.3; done"]);
    let start = Instant::now();
    let mut follow = w.cmd(&["logs", "-f", "ticker"]);
    let mut child = follow.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((line, start.elapsed()));
        }
    });
    let mut got = Vec::new();
    while let Ok((line, at)) = rx.recv_timeout(Duration::from_secs(10)) {
        got.push((line, at));
    }
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("logs -f did not return after the container exited; got {got:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "logs -f: {status}");
    let lines: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(lines, ["tick1", "tick2", "tick3", "tick4", "tick5"]);
    let spread = got[4].1 - got[0].1;
    assert!(spread >= Duration::from_millis(600), "lines came all at once, not followed: {got:?}");
}

#[test]
fn container_prune_removes_exactly_the_stopped_ones() {
    let w = world();
    let running = w.ok(&["run", "-d", "--name", "running", "bb", "sleep", "1000"]).trim().to_owned();
    w.ok(&["run", "--name", "done0", "bb", "true"]);
    w.run(&["run", "--name", "done1", "bb", "false"]);
    let done0 = w.full_id("done0");
    let done1 = w.full_id("done1");
    let out = w.ok(&["container", "prune", "-f"]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("Deleted Containers:"), "{out}");
    let mut deleted: Vec<&str> = lines.take_while(|l| is_hex(l, 64)).collect();
    deleted.sort_unstable();
    let mut expected = vec![done0.as_str(), done1.as_str()];
    expected.sort_unstable();
    assert_eq!(deleted, expected, "{out}");
    assert!(w.ps_line("done0", true).is_none() && w.ps_line("done1", true).is_none());
    assert!(w.ps_line("running", true).is_some_and(|l| l.contains("Up ")));
    assert_eq!(w.container_dirs(), [running]);
}

#[test]
fn inspect_shows_state_and_config() {
    let w = world();
    let id = w
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "--memory",
            "64m",
            "--memory-swap",
            "128m",
            "--cpus",
            "0.5",
            "--cpu-shares",
            "512",
            "--pids-limit",
            "50",
            "--hostname",
            "h9",
            "-e",
            "A=1",
            "-w",
            "/tmp",
            "bb",
            "sleep",
            "1000",
        ])
        .trim()
        .to_owned();
    let c = w.inspect("web");
    assert_eq!(c["Id"].as_str(), Some(id.as_str()));
    assert_eq!(c["Name"].as_str(), Some("/web"));
    assert_eq!(c["Path"].as_str(), Some("sleep"));
    assert_eq!(c["Args"].strings(), ["1000"]);
    assert!(c["Created"].as_str().is_some_and(|s| !s.is_empty()), "{c:?}");
    let state = &c["State"];
    assert_eq!(state["Status"].as_str(), Some("running"), "{state:?}");
    assert_eq!(state["Running"].as_bool(), Some(true));
    assert_eq!(state["ExitCode"].as_i64(), Some(0));
    assert_eq!(state["OOMKilled"].as_bool(), Some(false));
    let pid = state["Pid"].as_i64().unwrap_or_else(|| panic!("no Pid: {state:?}"));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_else(|e| panic!("Pid {pid}: {e}"));
    assert_eq!(cmdline, b"sleep\x001000\x00", "State.Pid is not the container's process");
    let host = &c["HostConfig"];
    assert_eq!(host["Memory"].as_i64(), Some(64 << 20), "{host:?}");
    assert_eq!(host["MemorySwap"].as_i64(), Some(128 << 20), "{host:?}");
    assert_eq!(host["NanoCpus"].as_i64(), Some(500_000_000), "{host:?}");
    assert_eq!(host["CpuShares"].as_i64(), Some(512), "{host:?}");
    assert_eq!(host["PidsLimit"].as_i64(), Some(50), "{host:?}");
    // The default network since container networks landed (issue #7).
    assert_eq!(host["NetworkMode"].as_str(), Some("bridge"), "{host:?}");
    let config = &c["Config"];
    assert_eq!(config["Hostname"].as_str(), Some("h9"), "{config:?}");
    assert!(config["Env"].strings().contains(&"A=1".to_owned()), "{config:?}");
    assert_eq!(config["Cmd"].strings(), ["sleep", "1000"], "{config:?}");
    assert_eq!(config["WorkingDir"].as_str(), Some("/tmp"), "{config:?}");
    assert_eq!(config["Image"].as_str(), Some("bb"), "{config:?}");
    assert_eq!(c["Image"].as_str().map(|s| s.is_empty()), Some(false), "{c:?}");

    // One object per container, in order; an exited one.
    let ran = w.run(&["run", "--name", "five", "bb", "sh", "-c", "exit 5"]);
    assert_eq!(ran.code, 5, "{ran}");
    let both = tests::container::Json::parse(&w.ok(&["inspect", "five", "web"])).unwrap();
    assert_eq!(both.as_array().map(<[_]>::len), Some(2));
    assert_eq!(both[1]["Id"].as_str(), Some(id.as_str()));
    let five = &both[0];
    assert_eq!(five["Name"].as_str(), Some("/five"));
    assert_eq!(five["State"]["Status"].as_str(), Some("exited"), "{five:?}");
    assert_eq!(five["State"]["Running"].as_bool(), Some(false));
    assert_eq!(five["State"]["ExitCode"].as_i64(), Some(5));
    assert_eq!(five["State"]["Pid"].as_i64(), Some(0));
    assert!(five["State"]["FinishedAt"].as_str().is_some_and(|s| !s.is_empty()), "{five:?}");
}
