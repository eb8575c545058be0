//! Terminals: `run -t` gives the container a pseudo-terminal (from runc's
//! console socket), `run -it` and `exec -it` connect it to the user's
//! terminal — here the one `script(1)` makes — and pass the exit code back;
//! `-it` without a terminal is refused before anything is made.

use std::io::Write;
use std::process::{Command, Stdio};

use tests::container::{busybox_image, Wharf};

const WHARF: &str = env!("CARGO_BIN_EXE_wharf-e2e");

/// Runs `wharf ARGS...` inside a terminal made by script(1), typing
/// `input`; returns the exit code and everything the terminal showed.
fn in_terminal(w: &Wharf, args: &[&str], input: &str) -> (i32, String) {
    let netns = w.netns().map(|ns| format!("nsenter --net=/run/netns/{ns} ")).unwrap_or_default();
    let line = std::iter::once(format!("{netns}{}", w.bin().display()))
        .chain(args.iter().map(|a| format!("'{a}'")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .env("WHARF_ROOT", w.root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script(1) (util-linux)");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), shown)
}

#[test]
fn run_t_gives_the_container_a_terminal() {
    tests::require_root();
    let w = Wharf::new(WHARF);
    busybox_image(&w, "bb");
    let out = w.ok(&["run", "--rm", "-t", "bb", "sh", "-c", "tty; echo on-a-tty"]);
    assert!(out.contains("/dev/pts/0"), "{out:?}");
    assert!(out.contains("on-a-tty"), "{out:?}");

    // A detached -t container's terminal output is in its log.
    w.ok(&["run", "-d", "-t", "--name", "bg", "bb", "sh", "-c", "tty; sleep 100"]);
    assert!(tests::wait_for(std::time::Duration::from_secs(5), || w.ok(&["logs", "bg"]).contains("/dev/pts/0")));
}

#[test]
fn run_it_and_exec_it_connect_the_users_terminal() {
    tests::require_root();
    let w = Wharf::new(WHARF);
    busybox_image(&w, "bb");
    let (code, shown) = in_terminal(&w, &["run", "--rm", "-it", "bb", "sh"], "echo typed-$((6*7)); exit 5\n");
    assert_eq!(code, 5, "{shown}");
    assert!(shown.contains("typed-42"), "the shell ran what was typed: {shown}");

    // -i alone: the container reads the user's terminal as its stdin.
    let (code, shown) = in_terminal(&w, &["run", "--rm", "-i", "bb", "sh", "-c", "read line; echo got-$line"], "x1\n");
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("got-x1"), "{shown}");

    w.ok(&["run", "-d", "--name", "t", "bb", "sleep", "100"]);
    let (code, shown) = in_terminal(&w, &["exec", "-it", "t", "sh"], "tty; exit 4\n");
    assert_eq!(code, 4, "{shown}");
    assert!(shown.contains("/dev/pts/"), "{shown}");
}

#[test]
fn it_without_a_terminal_is_refused() {
    tests::require_root();
    let w = Wharf::new(WHARF);
    busybox_image(&w, "bb");
    let (code, stderr) = w.fail(&["run", "-it", "bb", "sh"]);
    assert_eq!(code, 125, "{stderr}");
    assert!(stderr.contains("the input device is not a TTY"), "{stderr}");
    assert_eq!(w.container_dirs(), Vec::<String>::new(), "nothing was made");
    w.ok(&["run", "-d", "--name", "t", "bb", "sleep", "100"]);
    let (code, stderr) = w.fail(&["exec", "-it", "t", "sh"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("the input device is not a TTY"), "{stderr}");
}
