//! The `wharf` command as a user meets it: bad flags and bad configs get a
//! clear message and a non-zero exit, before anything is created; a user
//! without the right to create a TAP is told so.

use std::process::{Command, Output};

const WHARF: &str = env!("CARGO_BIN_EXE_wharf");

fn wharf(args: &[&str]) -> Output {
    let root = std::env::temp_dir().join(format!("wharf-cli-{}", std::process::id()));
    Command::new(WHARF).args(args).env("WHARF_ROOT", &root).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn version() {
    let out = wharf(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("wharf "));
}

#[test]
fn usage_errors_exit_2_with_usage() {
    let out = wharf(&["vtep", "--vni", "42", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unexpected argument '--bogus'"), "{}", stderr(&out));
    assert!(stderr(&out).contains("Usage:"));
    let out = wharf(&["vtep", "--vni", "42", "--local", "192.0.2.1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--tap <NAME>|--dev <IFACE>"), "{}", stderr(&out));
}

#[test]
fn invalid_settings_exit_1_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["vtep", "--vni", "42", "--local", "192.0.2.1", "--tap", "t0", "--remote", "2001:db8::2"], "families"),
        (&["vtep", "--vni", "99999999", "--local", "192.0.2.1", "--tap", "t0"], "24 bits"),
        (&["vtep", "--config", "/nonexistent/wharf.toml"], "/nonexistent/wharf.toml"),
        (&["vtep", "stats"], "NAME"),
        (&["vtep", "stats", "nosuchvtep"], "is `wharf vtep` running?"),
    ];
    for (args, expected) in cases {
        let out = wharf(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn a_bad_config_file_is_refused_with_its_name() {
    let path = std::env::temp_dir().join(format!("wharf-cli-{}.toml", std::process::id()));
    std::fs::write(&path, "local = \"192.0.2.1\"\n[[vni]]\nid = 42\ntap = \"t0\"\ndev = \"d0\"\n").unwrap();
    let out = wharf(&["vtep", "--config", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("exactly one of `tap` or `dev`"), "{}", stderr(&out));
}

/// Without CAP_NET_ADMIN the TAP cannot be created: the message says so.
/// Runs in a network namespace of its own (`unshare --net`), as nobody.
#[test]
fn missing_tap_permission_is_explained() {
    let out = Command::new("unshare")
        .args(["--net", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", WHARF])
        .args(["vtep", "--vni", "42", "--local", "192.0.2.1", "--tap", "wtperm0"])
        .env("WHARF_ROOT", std::env::temp_dir().join("wharf-cli-perm"))
        .output()
        .unwrap();
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let denied = text.contains("Operation not permitted") || text.contains("Permission denied");
    assert!(text.contains("wtperm0") && denied, "{text}");
    assert!(text.contains("CAP_NET_ADMIN") || text.contains("root"), "no hint: {text}");
}

/// `wharf nat`: a missing flag is a usage error (exit 2); settings that do
/// not fit together, a missing interface or a gateway that is not running
/// exit 1 naming what is wrong — before anything is opened.
#[test]
fn nat_flags_are_checked_before_anything_is_opened() {
    let out = wharf(&["nat", "--inside", "in0", "--inside-addr", "10.0.0.1/24", "--outside", "out0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--outside-addr"), "{}", stderr(&out));
    let base = ["nat", "--inside", "in0", "--inside-addr", "10.0.0.1/24", "--outside", "out0", "--outside-addr"];
    let cases: &[(&[&str], &str)] = &[
        (&["10.0.0.9/16"], "overlap"),
        (&["203.0.113.10"], "with a prefix"),
        (&["203.0.113.10/24", "--outside-gateway", "198.51.100.1"], "is not in 203.0.113.10/24"),
        (&["203.0.113.10/24", "--publish", "tcp:8080:192.168.1.2:80"], "not in the inside network"),
        (&["203.0.113.10/24", "--publish", "icmp:8080:10.0.0.2:80"], "unknown protocol"),
        (&["203.0.113.10/24", "--publish", "tcp:0:10.0.0.2:80"], "not a port"),
        (&["203.0.113.10/24", "--masquerade", "10.0.0.0/40"], "--masquerade"),
        (&["203.0.113.10/24", "--max-entries", "0"], "--max-entries"),
        (&["203.0.113.10/24"], "in0"),
    ];
    for (rest, expected) in cases {
        let args: Vec<&str> = base.iter().chain(rest.iter()).copied().collect();
        let out = wharf(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{args:?}: {}", stderr(&out));
    }
    let out = wharf(&["nat", "stats", "nosuchgateway"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}
