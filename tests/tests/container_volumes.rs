//! Volumes: bind mounts (ro really read-only, rw writes reach the host, a
//! bind hides the image's content), named volumes (copy-up keeps owner and
//! mode, content survives the container, `volume rm|ls|inspect|prune`),
//! anonymous volumes (`rm -v` removes them, plain `rm` keeps them),
//! `--volumes-from [:ro]`, and mount targets reached through symlinks in the
//! image, which must stay inside the container's root filesystem.

use std::path::{Path, PathBuf};

use tests::container::{
    busybox_image, dir_names, is_hex, mounts_under, owner_mode, Json, Wharf, SEED_GID, SEED_MODE, SEED_TEXT, SEED_UID,
};
use tests::unique_name;

const WHARF: &str = env!("CARGO_BIN_EXE_wharf-e2e");

fn world() -> Wharf {
    let w = Wharf::new(WHARF);
    busybox_image(&w, "bb");
    w
}

/// A host directory in the scratch area holding `host.txt`.
fn host_dir(w: &Wharf, name: &str) -> PathBuf {
    let dir = w.scratch().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("host.txt"), "from the host\n").unwrap();
    dir
}

/// The volume names `volume ls` lists (driver `local`).
fn volume_names(w: &Wharf) -> Vec<String> {
    let out = w.ok(&["volume", "ls"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["DRIVER", "VOLUME", "NAME"], "volume ls:\n{out}");
    lines
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words.len(), 2, "volume ls line {line:?}");
            assert_eq!(words[0], "local", "volume ls line {line:?}");
            words[1].to_owned()
        })
        .collect()
}

fn mountpoint(w: &Wharf, volume: &str) -> PathBuf {
    let json = Json::parse(&w.ok(&["volume", "inspect", volume])).unwrap();
    PathBuf::from(json[0]["Mountpoint"].as_str().unwrap_or_else(|| panic!("no Mountpoint: {json:?}")))
}

#[test]
fn bind_mounts_read_only_read_write_and_hiding() {
    let w = world();
    let dir = host_dir(&w, "hostdir");
    let spec_ro = format!("{}:/data:ro", dir.display());
    let ran = w.run(&["run", "-v", &spec_ro, "bb", "sh", "-c", "ls /data; echo x > /data/new"]);
    assert_ne!(ran.code, 0, "a write to a ro bind succeeded: {ran}");
    assert_eq!(ran.stdout, "host.txt\n", "the bind does not hide the image's /data: {ran}");
    assert!(ran.stderr.contains("Read-only file system"), "{ran}");
    assert_eq!(dir_names(&dir), ["host.txt"], "the ro host dir changed");

    let spec_rw = format!("{}:/data", dir.display());
    w.ok(&["run", "--name", "rw", "-v", &spec_rw, "bb", "sh", "-c", "echo written > /data/new"]);
    assert_eq!(std::fs::read_to_string(dir.join("new")).unwrap(), "written\n");
    let spec_rw2 = format!("{}:/mnt:rw", dir.display());
    assert_eq!(w.ok(&["run", "-v", &spec_rw2, "bb", "cat", "/mnt/new"]), "written\n");
    let mounts = &w.inspect("rw")["Mounts"];
    assert_eq!(mounts[0]["Type"].as_str(), Some("bind"), "{mounts:?}");
    assert_eq!(mounts[0]["Source"].as_str(), dir.to_str(), "{mounts:?}");
    assert_eq!(mounts[0]["Destination"].as_str(), Some("/data"), "{mounts:?}");
    assert_eq!(mounts[0]["RW"].as_bool(), Some(true), "{mounts:?}");
    // The image under the bind is untouched.
    assert_eq!(w.ok(&["run", "bb", "ls", "/data"]), "seed.txt\n");
}

#[test]
fn named_volume_copy_up_survives_and_is_managed() {
    let w = world();
    let out = w.ok(&[
        "run",
        "--name",
        "c1",
        "-v",
        "vol1:/data",
        "bb",
        "sh",
        "-c",
        "stat -c '%u %g %a' /data/seed.txt; cat /data/seed.txt; echo persist > /data/p.txt",
    ]);
    assert_eq!(out, format!("{SEED_UID} {SEED_GID} {:o}\n{SEED_TEXT}", SEED_MODE));
    let data = mountpoint(&w, "vol1");
    assert_eq!(data, w.root().join("volumes/vol1/_data"));
    assert_eq!(owner_mode(&data.join("seed.txt")), (SEED_UID, SEED_GID, SEED_MODE));
    assert_eq!(std::fs::read_to_string(data.join("p.txt")).unwrap(), "persist\n");
    let mounts = &w.inspect("c1")["Mounts"];
    assert_eq!(mounts[0]["Type"].as_str(), Some("volume"), "{mounts:?}");
    assert_eq!(mounts[0]["Name"].as_str(), Some("vol1"), "{mounts:?}");
    assert_eq!(mounts[0]["Source"].as_str(), data.to_str(), "{mounts:?}");
    assert_eq!(mounts[0]["Destination"].as_str(), Some("/data"), "{mounts:?}");

    // The volume outlives its container, and a second copy-up does not
    // happen on a volume that has content.
    w.ok(&["rm", "c1"]);
    std::fs::remove_file(data.join("seed.txt")).unwrap();
    assert_eq!(w.ok(&["run", "--name", "c2", "-v", "vol1:/data", "bb", "ls", "/data"]), "p.txt\n");

    // In use by a stopped container: refused.
    let (code, err) = w.fail(&["volume", "rm", "vol1"]);
    assert_eq!((code, err.trim()), (1, "wharf: volume vol1 is in use by container c2"));
    assert_eq!(w.ok(&["volume", "create", "spare"]).trim(), "spare");
    let anonymous = w.ok(&["volume", "create"]).trim().to_owned();
    assert!(is_hex(&anonymous, 64), "volume create printed {anonymous:?}");
    let mut names = volume_names(&w);
    names.sort();
    let mut expected = vec![anonymous.clone(), "spare".to_owned(), "vol1".to_owned()];
    expected.sort();
    assert_eq!(names, expected);

    let json = Json::parse(&w.ok(&["volume", "inspect", "vol1", "spare"])).unwrap();
    assert_eq!(json.as_array().map(<[_]>::len), Some(2), "{json:?}");
    assert_eq!(json[0]["Name"].as_str(), Some("vol1"));
    assert_eq!(json[0]["Driver"].as_str(), Some("local"));
    assert_eq!(json[0]["Scope"].as_str(), Some("local"));
    assert_eq!(json[1]["Mountpoint"].as_str(), w.root().join("volumes/spare/_data").to_str());
    let (code, err) = w.fail(&["volume", "inspect", "nosuch"]);
    assert!(code != 0 && err.starts_with("wharf: "), "{err}");

    // prune removes the unused anonymous ones (a `-v /ctr` volume left by a
    // plain `rm`; `volume create` without a name makes a named one, as
    // Docker's does); with --all, every unused one (Docker 23 and later).
    w.ok(&["run", "--name", "anon", "-v", "/scratch", "bb", "true"]);
    let left = w.inspect("anon")["Mounts"][0]["Name"].as_str().unwrap().to_owned();
    w.ok(&["rm", "anon"]);
    let pruned = |args: &[&str]| {
        let out = w.ok(args);
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("Deleted Volumes:"), "{out}");
        let mut deleted: Vec<String> =
            lines.take_while(|l| !l.is_empty() && !l.starts_with("Total")).map(str::to_owned).collect();
        deleted.sort_unstable();
        deleted
    };
    assert_eq!(pruned(&["volume", "prune", "-f"]), [left]);
    let mut expected = vec![anonymous.clone(), "spare".to_owned()];
    expected.sort_unstable();
    assert_eq!(pruned(&["volume", "prune", "-f", "--all"]), expected);
    assert_eq!(volume_names(&w), ["vol1"]);
    assert!(!w.root().join("volumes/spare").exists());

    w.ok(&["rm", "c2"]);
    w.ok(&["volume", "rm", "vol1"]);
    assert_eq!(volume_names(&w), Vec::<String>::new());
    assert!(!data.exists());
}

#[test]
fn anonymous_volumes_go_with_rm_v_only() {
    let w = world();
    w.ok(&["run", "--name", "kept", "-v", "/data", "bb", "true"]);
    w.ok(&["run", "--name", "gone", "-v", "/data", "bb", "true"]);
    let volume_of = |name: &str| {
        let mounts = &w.inspect(name)["Mounts"];
        assert_eq!(mounts[0]["Type"].as_str(), Some("volume"), "{mounts:?}");
        assert_eq!(mounts[0]["Destination"].as_str(), Some("/data"), "{mounts:?}");
        let volume = mounts[0]["Name"].as_str().unwrap_or_else(|| panic!("{mounts:?}")).to_owned();
        assert!(is_hex(&volume, 64), "anonymous volume name {volume:?}");
        volume
    };
    let (kept, gone) = (volume_of("kept"), volume_of("gone"));
    assert_ne!(kept, gone);
    // Copy-up applies to anonymous volumes too.
    let kept_data = mountpoint(&w, &kept);
    assert_eq!(owner_mode(&kept_data.join("seed.txt")), (SEED_UID, SEED_GID, SEED_MODE));

    w.ok(&["rm", "kept"]);
    w.ok(&["rm", "-v", "gone"]);
    let names = volume_names(&w);
    assert!(names.contains(&kept), "plain rm removed the anonymous volume: {names:?}");
    assert!(!names.contains(&gone), "rm -v kept the anonymous volume: {names:?}");
    assert!(!w.root().join("volumes").join(&gone).exists());

    // --rm removes the anonymous volumes too; named ones always survive.
    w.ok(&["run", "--rm", "-v", "/data", "-v", "named:/mnt", "bb", "true"]);
    let mut names = volume_names(&w);
    names.sort();
    let mut expected = vec![kept.clone(), "named".to_owned()];
    expected.sort();
    assert_eq!(names, expected);
}

#[test]
fn volumes_from_shares_mounts() {
    let w = world();
    let dir = host_dir(&w, "bound");
    let bind = format!("{}:/bound", dir.display());
    w.ok(&["run", "--name", "a", "-v", "shared:/data", "-v", &bind, "bb", "sh", "-c", "echo from-a > /data/a.txt"]);
    assert_eq!(
        w.ok(&["run", "--volumes-from", "a", "bb", "sh", "-c", "cat /data/a.txt /bound/host.txt"]),
        "from-a\nfrom the host\n"
    );
    let ran = w.run(&["run", "--volumes-from", "a", "bb", "sh", "-c", "echo from-b > /data/b.txt"]);
    assert_eq!(ran.code, 0, "{ran}");
    assert_eq!(std::fs::read_to_string(mountpoint(&w, "shared").join("b.txt")).unwrap(), "from-b\n");

    let ran = w.run(&["run", "--volumes-from", "a:ro", "bb", "sh", "-c", "cat /data/a.txt; echo x > /data/c.txt"]);
    assert_ne!(ran.code, 0, "wrote through --volumes-from a:ro: {ran}");
    assert_eq!(ran.stdout, "from-a\n", "{ran}");
    assert!(ran.stderr.contains("Read-only file system"), "{ran}");
    assert!(!mountpoint(&w, "shared").join("c.txt").exists());
    let ran = w.run(&["run", "--volumes-from", "a:ro", "bb", "sh", "-c", "echo x > /bound/c.txt"]);
    assert!(ran.code != 0 && ran.stderr.contains("Read-only file system"), "{ran}");
    assert!(!dir.join("c.txt").exists());
}

/// Whether anything named `name` exists in the machine's /etc, or anything
/// is mounted under it.
fn host_etc_touched(name: &str) -> Option<String> {
    let path = Path::new("/etc").join(name);
    if std::fs::symlink_metadata(&path).is_ok() {
        return Some(format!("{} exists", path.display()));
    }
    let mounts = mounts_under(Path::new("/etc"));
    let ours: Vec<_> = mounts.iter().filter(|m| m.to_string_lossy().contains(name)).collect();
    if !ours.is_empty() {
        return Some(format!("mounted under /etc: {ours:?}"));
    }
    None
}

#[test]
fn mount_targets_through_image_symlinks_stay_inside() {
    let w = world();
    let dir = host_dir(&w, "escapee");
    let marker = unique_name("mark");
    std::fs::write(dir.join(&marker), "marker\n").unwrap();
    // /srv/link climbs to / from any depth, /srv/abs is absolute, /srv/link4
    // climbs four levels: each must resolve to the container's own /etc.
    for link in ["link", "abs", "link4"] {
        let target = unique_name("tgt");
        assert_eq!(host_etc_touched(&target), None);
        let spec = format!("{}:/srv/{link}/{target}", dir.display());
        let name = format!("esc-{link}");
        let ran =
            w.run(&["run", "--name", &name, "-v", &spec, "bb", "sh", "-c", &format!("cat /etc/{target}/{marker}")]);
        assert_eq!(host_etc_touched(&target), None, "/srv/{link}: {ran}");
        assert_eq!(dir_names(Path::new("/etc")).iter().filter(|n| n.contains(&marker)).count(), 0);
        assert!(!w.root().join("containers/etc").exists(), "/srv/{link} escaped to WHARF_ROOT/containers/etc: {ran}");
        assert_eq!(
            (ran.code, ran.stdout.as_str()),
            (0, "marker\n"),
            "/srv/{link}: the bind is not at the container's /etc: {ran}"
        );
        let mut expected = vec!["host.txt".to_owned(), marker.clone()];
        expected.sort();
        assert_eq!(dir_names(&dir), expected, "the host directory changed");
    }

    // A named volume on the symlink itself: copy-up takes the image's /etc
    // (passwd, group), never the machine's.
    let ran = w.run(&["run", "--name", "esc-vol", "-v", "etcvol:/srv/abs", "bb", "cat", "/etc/passwd"]);
    let data = mountpoint(&w, "etcvol");
    let copied = dir_names(&data);
    assert!(
        !copied.iter().any(|n| n == "os-release" || n == "hostname" || n == "shadow"),
        "the machine's /etc was copied: {copied:?}: {ran}"
    );
    assert_eq!(ran.code, 0, "{ran}");
    assert_eq!(copied, ["group", "passwd"], "{ran}");
}

/// A container record that does not read (edited by hand, written by another
/// version) may name any volume or image: removing one is refused until it
/// reads again, and the record is left where it is, not taken for a
/// half-created container.
#[test]
fn removals_wait_while_a_record_does_not_read() {
    let w = world();
    w.ok(&["run", "--name", "holder", "-v", "kept:/data", "bb", "true"]);
    let id = w.inspect("holder")["Id"].as_str().unwrap().to_owned();
    let record = w.root().join("containers").join(&id).join("container.json");
    let good = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&record, good.replacen('{', "{\"garbled\": ", 1)).unwrap();

    for args in [&["volume", "rm", "kept"][..], &["volume", "prune", "-f", "--all"], &["image", "rm", "bb"]] {
        let ran = w.run(args);
        assert_eq!(ran.code, 1, "{args:?}: {ran}");
        assert!(ran.stderr.contains("cannot tell whether"), "{args:?}: {ran}");
    }
    assert_eq!(volume_names(&w), ["kept"]);
    assert!(w.root().join("images/bb").exists(), "the image went");
    assert!(record.exists(), "the unreadable record went");

    std::fs::write(&record, good).unwrap();
    w.ok(&["rm", "holder"]);
    w.ok(&["volume", "rm", "kept"]);
}
