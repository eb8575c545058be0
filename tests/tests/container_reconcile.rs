//! A crash half-way through `wharf run` leaves a container record, an
//! overlay mount, cgroups and a runc container in the `created` state; the
//! next wharf command must notice, say so, and clean all of it up, so that
//! the name can be used again.
//!
//! The crash is staged with a runtime wrapper (`WHARF_RUNTIME`) that runs
//! the real runc and then, after `runc create`, writes its pid to a file and
//! hangs; the test then SIGKILLs every wharf process of that run and the
//! wrapper, and leaves runc's container process (`runc init`) waiting.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tests::container::{busybox_image, cgroup_dirs, run_timed, runc_path, Wharf, COMMAND_TIMEOUT};
use tests::wait_for;

const WHARF: &str = env!("CARGO_BIN_EXE_wharf-e2e");

fn write_wrapper(dir: &Path) -> (PathBuf, PathBuf) {
    let pidfile = dir.join("wrapper.pid");
    let wrapper = dir.join("runtime.sh");
    let script = format!(
        "#!/bin/sh\n\
         {runc} \"$@\"\n\
         rc=$?\n\
         for arg in \"$@\"; do\n\
         \x20 if [ \"$arg\" = create ]; then\n\
         \x20   echo $$ > {pid}.tmp && mv {pid}.tmp {pid}\n\
         \x20   exec sleep 100000\n\
         \x20 fi\n\
         done\n\
         exit $rc\n",
        runc = runc_path(),
        pid = pidfile.display()
    );
    std::fs::write(&wrapper, script).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    (wrapper, pidfile)
}

#[test]
fn a_crash_during_create_is_reconciled_by_the_next_command() {
    let w = Wharf::new(WHARF);
    busybox_image(&w, "bb");
    let (wrapper, pidfile) = write_wrapper(w.scratch());
    let out_path = w.scratch().join("run.out");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut run = w.cmd(&["run", "-d", "--name", "half", "bb", "sleep", "100"]);
    run.env("WHARF_RUNTIME", &wrapper)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    let mut child = run.spawn().unwrap();
    let created = wait_for(Duration::from_secs(20), || pidfile.exists() || matches!(child.try_wait(), Ok(Some(_))));
    let output = || std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(pidfile.exists(), "the wrapper never saw `create` ({:?}): {}", child.try_wait(), output());
    let wrapper_pid: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(created);

    // The state a crash leaves: runc has the container, created.
    let runc_ids = w.runc_list();
    assert_eq!(runc_ids.len(), 1, "runc list: {runc_ids:?}");
    let id = runc_ids[0].clone();
    let state = run_timed(
        std::process::Command::new(runc_path()).arg("--root").arg(w.root().join("runc")).args(["state", &id]),
        COMMAND_TIMEOUT,
    );
    assert!(state.stdout.contains("\"created\""), "{state}");

    // SIGKILL every wharf process of this WHARF_ROOT, and the wrapper.
    let wharf_exe = std::fs::canonicalize(WHARF).unwrap();
    let mut killed = vec![wrapper_pid];
    for pid in w.processes() {
        if std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == wharf_exe) {
            killed.push(pid);
        }
    }
    assert!(killed.contains(&child.id()), "the run command {} is not among {killed:?}", child.id());
    for pid in &killed {
        let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    let _ = child.wait();
    let gone = wait_for(Duration::from_secs(5), || killed.iter().all(|pid| !is_alive(*pid)));
    assert!(gone, "still alive: {:?}", killed.iter().filter(|p| is_alive(**p)).collect::<Vec<_>>());
    assert!(!w.mounts().is_empty() || !w.container_dirs().is_empty(), "the run left nothing to reconcile");

    // The next command, with the real runtime, reconciles.
    let ps = w.run(&["ps", "-a"]);
    assert_eq!(ps.code, 0, "{ps}");
    assert!(
        ps.stderr.starts_with("wharf: ")
            && ps.stderr.to_lowercase().contains("clean")
            && (ps.stderr.contains("half") || ps.stderr.contains(&id[..12])),
        "ps -a did not report the half-created container on stderr: {ps}"
    );
    assert!(!ps.stdout.lines().skip(1).any(|l| l.contains("half")), "ps -a still lists it: {ps}");
    assert_eq!(w.runc_list(), Vec::<String>::new(), "runc still has it");
    assert_eq!(w.mounts(), Vec::<PathBuf>::new(), "mounts left");
    assert_eq!(w.container_dirs(), Vec::<String>::new(), "containers/ not empty");
    assert_eq!(cgroup_dirs(&id), Vec::<PathBuf>::new(), "cgroups left");
    // Nothing more to say the second time.
    let again = w.run(&["ps", "-a"]);
    assert_eq!((again.code, again.stderr.as_str()), (0, ""), "{again}");

    // And the name is free.
    assert_eq!(w.ok(&["run", "--name", "half", "bb", "echo", "again"]), "again\n");
}

fn is_alive(pid: u32) -> bool {
    // A zombie is dead for this purpose.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()) != Some("Z"))
        .unwrap_or(false)
}
