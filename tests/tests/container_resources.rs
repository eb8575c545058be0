//! Resource limits, through the cgroup wharf gives each container
//! (`/wharf/ID`): `--memory` (with `--memory-swap` equal, so nothing can
//! swap) kills a process that allocates more, and inspect says OOMKilled;
//! `--pids-limit` makes forks fail; `--cpus` and `--cpu-shares` set the CFS
//! quota and the shares; `stats --no-stream` shows the limit.

use std::path::Path;

use tests::container::{busybox_image, cgroup_dirs, Wharf};

const WHARF: &str = env!("CARGO_BIN_EXE_wharf-e2e");

fn world() -> Wharf {
    let w = Wharf::new(WHARF);
    busybox_image(&w, "bb");
    w
}

/// The value of a cgroup v1 file of container `id` under `controller`.
fn cgroup_file(controller: &str, id: &str, file: &str) -> String {
    let path = Path::new("/sys/fs/cgroup").join(controller).join("wharf").join(id).join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; cgroups of {id}: {:?}", path.display(), cgroup_dirs(id)))
        .trim()
        .to_owned()
}

#[test]
fn memory_limit_kills_and_reports_oom() {
    let w = world();
    // busybox tail keeps the last line in memory, and /dev/zero's one line
    // never ends.
    let ran = w.run(&["run", "--name", "hog", "--memory", "32m", "--memory-swap", "32m", "bb", "tail", "/dev/zero"]);
    assert_eq!(ran.code, 137, "{ran}");
    let state = &w.inspect("hog")["State"];
    assert_eq!(state["OOMKilled"].as_bool(), Some(true), "{state:?}");
    assert_eq!(state["ExitCode"].as_i64(), Some(137), "{state:?}");
    assert_eq!(state["Status"].as_str(), Some("exited"), "{state:?}");

    // A process that stays under the limit lives, and is not OOMKilled.
    let ran = w.run(&[
        "run",
        "--name",
        "small",
        "--memory",
        "32m",
        "--memory-swap",
        "32m",
        "bb",
        "sh",
        "-c",
        "head -c 1000000 /dev/zero | tail | wc -c",
    ]);
    assert_eq!((ran.code, ran.stdout.trim()), (0, "1000000"), "{ran}");
    assert_eq!(w.inspect("small")["State"]["OOMKilled"].as_bool(), Some(false));
}

#[test]
fn pids_limit_makes_forks_fail() {
    let w = world();
    let id = w
        .ok(&[
            "run",
            "-d",
            "--name",
            "forker",
            "--pids-limit",
            "10",
            "bb",
            "sh",
            "-c",
            // The inner shell dies of its first failed fork; the outer one
            // then forks nothing more (exec), since the sleeps hold the pids.
            "sh -c 'for i in $(seq 20); do sleep 100 & done'; echo loop-done; exec sleep 1000",
        ])
        .trim()
        .to_owned();
    assert_eq!(cgroup_file("pids", &id, "pids.max"), "10");
    let mut logs = String::new();
    let done = tests::wait_for(std::time::Duration::from_secs(5), || {
        // Like docker logs, stderr lines may come on logs' stderr.
        let ran = w.run(&["logs", "forker"]);
        logs = format!("{}{}", ran.stdout, ran.stderr);
        logs.contains("loop-done")
    });
    assert!(done, "the loop did not finish: {logs}");
    assert!(
        logs.contains("can't fork") || logs.contains("Resource temporarily unavailable"),
        "no fork failure: {logs}"
    );
    let pids: usize = cgroup_file("pids", &id, "pids.current").parse().unwrap();
    assert!(pids <= 10, "{pids} processes in a cgroup limited to 10");
    assert_eq!(w.inspect("forker")["HostConfig"]["PidsLimit"].as_i64(), Some(10));
}

#[test]
fn cpus_and_shares_set_the_cfs_quota() {
    let w = world();
    let id = w.ok(&["run", "-d", "--cpus", "0.5", "--cpu-shares", "512", "bb", "sleep", "1000"]).trim().to_owned();
    assert_eq!(cgroup_file("cpu", &id, "cpu.cfs_quota_us"), "50000");
    assert_eq!(cgroup_file("cpu", &id, "cpu.cfs_period_us"), "100000");
    assert_eq!(cgroup_file("cpu", &id, "cpu.shares"), "512");
    let tasks = cgroup_file("cpu", &id, "tasks");
    let pid = w.inspect(&id)["State"]["Pid"].as_i64().unwrap().to_string();
    assert!(tasks.lines().any(|t| t == pid), "the container's process {pid} is not in its cpu cgroup: {tasks}");
}

#[test]
fn stats_no_stream_shows_the_memory_limit() {
    let w = world();
    let id = w.ok(&["run", "-d", "--name", "limited", "--memory", "32m", "bb", "sleep", "1000"]).trim().to_owned();
    w.ok(&["run", "--name", "stopped", "bb", "true"]);
    assert_eq!(cgroup_file("memory", &id, "memory.limit_in_bytes"), (32u64 << 20).to_string());
    let out = w.ok(&["stats", "--no-stream"]);
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default();
    for column in ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"] {
        assert!(header.contains(column), "no {column} in the header: {out}");
    }
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "only running containers: {out}");
    let words: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!(words.first(), Some(&&id[..12]), "{out}");
    assert_eq!(words.get(1), Some(&"limited"), "{out}");
    let limit = words.iter().position(|w| *w == "/").map(|i| words[i + 1]);
    assert_eq!(limit, Some("32MiB"), "{out}");
    assert_eq!(words.last(), Some(&"1"), "PIDS: {out}");
    let one = w.ok(&["stats", "--no-stream", "limited"]);
    assert_eq!(one.lines().count(), 2, "{one}");
}
