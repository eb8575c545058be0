//! `wharf image import|ls|rm` and `wharf run --rootfs DIR`: an import prints
//! the sha256 of the tar, is listed, cannot be removed while a container
//! (even a stopped one) uses it, and is gone after `image rm`; a tar entry
//! that would land outside the rootfs is refused, and one through a symlink
//! to the host lands inside it; an unpacked directory runs in place.

use std::process::Command;

use tests::container::{busybox_rootfs, busybox_tar, is_hex, run_timed, Wharf, COMMAND_TIMEOUT, SEED_PATH, SEED_TEXT};
use tests::unique_name;

const WHARF: &str = env!("CARGO_BIN_EXE_wharf-e2e");

fn sha256_of(path: &std::path::Path) -> String {
    let ran = run_timed(Command::new("sha256sum").arg(path), COMMAND_TIMEOUT);
    assert_eq!(ran.code, 0, "{ran}");
    ran.stdout.split_whitespace().next().unwrap().to_owned()
}

#[test]
fn import_list_and_remove_only_when_unused() {
    let w = Wharf::new(WHARF);
    let tar = busybox_tar(&w, "bb");
    let tar_str = tar.to_str().unwrap();
    let printed = w.ok(&["image", "import", tar_str, "bb"]);
    let printed = printed.trim();
    let hex = printed.strip_prefix("sha256:").unwrap_or_else(|| panic!("import printed {printed:?}"));
    assert!(is_hex(hex, 64), "import printed {printed:?}");
    assert_eq!(hex, sha256_of(&tar), "the id is the sha256 of the tar's bytes");

    let ls = w.ok(&["image", "ls"]);
    let header: Vec<&str> = ls.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NAME", "ID", "CREATED", "SIZE"], "image ls:\n{ls}");
    let line = ls.lines().find(|l| l.split_whitespace().next() == Some("bb")).unwrap_or_else(|| panic!("{ls}"));
    assert_eq!(line.split_whitespace().nth(1), Some(&hex[..12]), "image ls:\n{ls}");

    // The same name again is an error and changes nothing.
    let (_, err) = w.fail(&["image", "import", tar_str, "bb"]);
    assert!(err.starts_with("wharf: "), "{err}");
    assert_eq!(w.ok(&["image", "ls"]), ls);

    // A gzip tar imports too.
    let gz = w.scratch().join("bb.tar.gz");
    let ran =
        run_timed(Command::new("sh").arg("-c").arg(format!("gzip -c {tar_str} > {}", gz.display())), COMMAND_TIMEOUT);
    assert_eq!(ran.code, 0, "{ran}");
    let printed_gz = w.ok(&["image", "import", gz.to_str().unwrap(), "bbgz"]);
    assert!(printed_gz.trim().starts_with("sha256:"), "{printed_gz}");
    assert_eq!(w.ok(&["run", "--rm", "bbgz", "cat", SEED_PATH]), SEED_TEXT);
    w.ok(&["image", "rm", "bbgz"]);

    // A stopped container still uses the image.
    assert_eq!(w.ok(&["run", "--name", "user", "bb", "echo", "ran"]), "ran\n");
    let (code, err) = w.fail(&["image", "rm", "bb"]);
    assert_eq!((code, err.trim()), (1, "wharf: image bb is used by container user"));
    assert!(w.ok(&["image", "ls"]).lines().any(|l| l.split_whitespace().next() == Some("bb")));
    assert_eq!(w.ok(&["run", "--rm", "bb", "echo", "still usable"]), "still usable\n");

    w.ok(&["rm", "user"]);
    w.ok(&["image", "rm", "bb"]);
    let ls = w.ok(&["image", "ls"]);
    assert!(!ls.lines().skip(1).any(|l| l.split_whitespace().next() == Some("bb")), "bb still listed:\n{ls}");
    assert!(!w.root().join("images/bb").exists(), "images/bb still on disk");
    let (code, err) = w.fail(&["run", "bb", "true"]);
    assert_eq!((code, err.trim()), (125, "wharf: no such image: bb"));
}

#[test]
fn import_refuses_entries_outside_the_rootfs() {
    let w = Wharf::new(WHARF);
    let scratch = w.scratch().to_owned();
    let sh = |script: &str| {
        let ran = run_timed(Command::new("sh").arg("-c").arg(script).current_dir(&scratch), COMMAND_TIMEOUT);
        assert_eq!(ran.code, 0, "{ran}");
    };
    // An entry named ../NAME (GNU tar keeps it with -P).
    let escape = unique_name("esc");
    sh(&format!(
        "mkdir -p inner/bin outside && echo pwned > {escape} && tar -P -C inner -cf dotdot.tar ./bin ../{escape}"
    ));
    let listing = run_timed(Command::new("tar").arg("-tf").arg(scratch.join("dotdot.tar")), COMMAND_TIMEOUT).stdout;
    assert!(listing.contains(&format!("../{escape}")), "the tar lacks the ../ entry:\n{listing}");
    std::fs::remove_file(scratch.join(&escape)).unwrap();
    let (code, err) = w.fail(&["image", "import", scratch.join("dotdot.tar").to_str().unwrap(), "dotdot"]);
    assert!(err.starts_with("wharf: "), "exit {code}: {err}");
    assert!(!scratch.join(&escape).exists(), "import wrote {escape} outside the image");
    assert!(!w.root().join("images").join(&escape).exists(), "import wrote images/{escape}");
    assert!(!w.ok(&["image", "ls"]).contains("dotdot"), "a refused image is listed");

    // A symlink to a host directory, then a file through it (two tars
    // concatenated, since tar itself would not write that).
    let outside = scratch.join("outside");
    sh(&format!(
        "mkdir -p a/srv b/srv/esc && ln -s {} a/srv/esc && echo pwned > b/srv/esc/pwned \
         && tar -C a -cf link.tar ./srv && tar -C b -cf file.tar ./srv/esc/pwned && tar -A -f link.tar file.tar",
        outside.display()
    ));
    let listing = run_timed(Command::new("tar").arg("-tvf").arg(scratch.join("link.tar")), COMMAND_TIMEOUT).stdout;
    let at = |end: &str| listing.lines().position(|line| line.ends_with(end));
    let (link, file) = (at(&format!(" ./srv/esc -> {}", outside.display())), at(" ./srv/esc/pwned"));
    assert!(link.is_some() && link < file, "the tar lacks the symlink, then the file through it:\n{listing}");
    let ran = w.run(&["image", "import", scratch.join("link.tar").to_str().unwrap(), "linked"]);
    assert!(!outside.join("pwned").exists(), "import wrote through a symlink to the host: {ran}");
    // The symlink is resolved as the container would: the file lands at
    // that path inside the image's rootfs.
    assert_eq!(ran.code, 0, "{ran}");
    let inside = w.root().join("images/linked/rootfs").join(outside.strip_prefix("/").unwrap()).join("pwned");
    let written = std::fs::read_to_string(&inside).unwrap_or_else(|e| panic!("{}: {e}\n{ran}", inside.display()));
    assert_eq!(written, "pwned\n");
}

#[test]
fn run_rootfs_uses_the_directory_in_place() {
    let w = Wharf::new(WHARF);
    let dir = w.scratch().join("unpacked");
    busybox_rootfs(&dir);
    let out =
        w.ok(&["run", "--rootfs", dir.to_str().unwrap(), "sh", "-c", "cat /data/seed.txt; echo written > /inplace"]);
    assert_eq!(out, SEED_TEXT);
    let written = std::fs::read_to_string(dir.join("inplace")).unwrap_or_else(|e| panic!("not written in place: {e}"));
    assert_eq!(written, "written\n");
    assert!(w.ok(&["image", "ls"]).lines().count() <= 1, "--rootfs made an image");
}
