//! wharf-proxy's command line, as docker drives docker-proxy: every
//! accepted spelling of a flag (`-f v`, `-f=v`, `--f v`, `--f=v`, bare and
//! `=true|false` booleans, `--`, `-config FILE`) starts a proxy that
//! forwards; every bad value exits 2 naming the flag and the value, then
//! prints the usage; `-v` and `-h` answer and exit 0.
//!
//! Every run happens inside a namespace of the test's own, even the ones
//! expected to fail before binding anything.

use std::time::Duration;

use tests::proxy::{
    run_proxy, sock, tcp_exchange, Outcome, Proxy, TcpServer, TempPath, Topology, CONTAINER_IP, HOST_IP,
};
use tests::{require_root, Netns};

const PROXY: &str = env!("CARGO_BIN_EXE_wharf-proxy-e2e");

/// A complete, valid legacy mapping on `lo`, so that only the flag under
/// test can make a run fail.
const VALID: [&str; 8] =
    ["-host-ip", "127.0.0.1", "-host-port", "8080", "-container-ip", "127.0.0.1", "-container-port", "80"];

fn run(ns: &Netns, args: &[&str]) -> Outcome {
    run_proxy(PROXY, ns, args, Duration::from_secs(5))
}

#[test]
fn every_accepted_flag_spelling_starts_and_forwards() {
    let topo = Topology::new();
    let _server = TcpServer::echo(&topo.container, sock(CONTAINER_IP, 80));
    let config = TempPath::new("conf");
    std::fs::write(
        config.as_str(),
        "# wharf-proxy mappings\n\n   \ntcp:198.51.100.1:8006:198.51.100.2:80\n# udp:198.51.100.1:9:198.51.100.2:9\n\
         tcp:198.51.100.1:8007-8008:198.51.100.2:80 # two host ports, one container port\n",
    )
    .unwrap();
    let spellings: Vec<(Vec<u16>, Vec<&str>)> = vec![
        (
            vec![8001],
            vec![
                "-proto",
                "tcp",
                "-host-ip",
                HOST_IP,
                "-host-port",
                "8001",
                "-container-ip",
                CONTAINER_IP,
                "-container-port",
                "80",
            ],
        ),
        (
            vec![8002],
            vec![
                "-proto=tcp",
                "-host-ip=198.51.100.1",
                "-host-port=8002",
                "-container-ip=198.51.100.2",
                "-container-port=80",
            ],
        ),
        (
            vec![8003],
            vec![
                "--proto",
                "tcp",
                "--host-ip",
                HOST_IP,
                "--host-port",
                "8003",
                "--container-ip",
                CONTAINER_IP,
                "--container-port",
                "80",
            ],
        ),
        (
            vec![8004],
            vec![
                "--proto=tcp",
                "--host-ip=198.51.100.1",
                "--host-port=8004",
                "--container-ip=198.51.100.2",
                "--container-port=80",
                "-use-listen-fd=false",
                "--drain-timeout=300ms",
                "-udp-timeout",
                "1m30s",
                "-udp-max-flows=16",
                "-tcp-relay",
                "copy",
                "--",
            ],
        ),
        (
            vec![8005],
            vec![
                "-host-ip",
                HOST_IP,
                "-host-port",
                "8005",
                "-container-ip",
                CONTAINER_IP,
                "-container-port",
                "80",
                "-drain-timeout",
                "2",
                "-tcp-relay=splice",
                "-use-listen-fd=false",
            ],
        ),
        (vec![8006, 8007, 8008], vec!["-config", config.as_str()]),
        (
            vec![8009, 8010],
            vec!["-map", "tcp:198.51.100.1:8009:198.51.100.2:80", "--map=tcp:198.51.100.1:8010:198.51.100.2:80"],
        ),
    ];
    for (ports, args) in &spellings {
        let proxy = Proxy::start(PROXY, &topo.host, args);
        for port in ports {
            let request = format!("through {port} with {args:?}");
            let reply = tcp_exchange(&topo.outside, sock(HOST_IP, *port), request.as_bytes())
                .unwrap_or_else(|e| panic!("{args:?}: port {port}: {e}\n{}", proxy.output()));
            assert_eq!(String::from_utf8_lossy(&reply), request, "{}", proxy.output());
        }
    }
}

/// Each bad argument list, and what stderr must say.
#[test]
fn bad_values_exit_2_naming_flag_and_value() {
    require_root();
    let ns = Netns::new("pcli").unwrap();
    let with = |extra: &[&'static str]| -> Vec<&'static str> { [&VALID[..], extra].concat() };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (with(&["-foo"]), "flag provided but not defined: -foo"),
        (with(&["-bar=1"]), "flag provided but not defined: -bar"),
        (with(&["-proto", "icmp"]), r#"invalid value "icmp" for flag -proto"#),
        (
            vec!["-host-ip", "127.0.0.1", "-host-port", "70000", "-container-ip", "127.0.0.1", "-container-port", "80"],
            r#"invalid value "70000" for flag -host-port"#,
        ),
        (
            vec!["-host-ip", "127.0.0.1", "-host-port", "8080", "-container-ip", "127.0.0.1", "-container-port=65536"],
            r#"invalid value "65536" for flag -container-port"#,
        ),
        (
            vec!["-host-ip", "127.0.0.1", "-host-port", "http", "-container-ip", "127.0.0.1", "-container-port", "80"],
            r#"invalid value "http" for flag -host-port"#,
        ),
        (
            vec![
                "-host-ip",
                "127.0.0.1",
                "-host-port",
                "8080",
                "-container-ip",
                "198.51.100.300",
                "-container-port",
                "80",
            ],
            r#"invalid value "198.51.100.300" for flag -container-ip"#,
        ),
        (
            vec!["-host-ip=localhost", "-host-port", "8080", "-container-ip", "127.0.0.1", "-container-port", "80"],
            r#"invalid value "localhost" for flag -host-ip"#,
        ),
        (with(&["-drain-timeout", "5x"]), r#"invalid value "5x" for flag -drain-timeout"#),
        (with(&["--udp-timeout=soon"]), r#"invalid value "soon" for flag -udp-timeout"#),
        (with(&["-udp-max-flows", "many"]), r#"invalid value "many" for flag -udp-max-flows"#),
        (with(&["-proxy-protocol", "v3"]), r#"invalid value "v3" for flag -proxy-protocol"#),
        (with(&["-tcp-relay", "zerocopy"]), r#"invalid value "zerocopy" for flag -tcp-relay"#),
        (with(&["-use-listen-fd=maybe"]), r#"invalid value "maybe" for flag -use-listen-fd"#),
        (vec!["-map", "tcp:127.0.0.1:80"], r#"invalid value "tcp:127.0.0.1:80" for flag -map"#),
        (
            vec!["-map", "icmp:127.0.0.1:80:127.0.0.1:80"],
            r#"invalid value "icmp:127.0.0.1:80:127.0.0.1:80" for flag -map"#,
        ),
        (
            vec!["-map", "tcp:127.0.0.1:8000-8009:127.0.0.1:9000-9004"],
            r#"invalid value "tcp:127.0.0.1:8000-8009:127.0.0.1:9000-9004" for flag -map"#,
        ),
        (
            vec!["-map", "tcp:127.0.0.1:9000-8000:127.0.0.1:80"],
            r#"invalid value "tcp:127.0.0.1:9000-8000:127.0.0.1:80" for flag -map"#,
        ),
        (
            vec!["-map", "udp:127.0.0.1:53:127.0.0.1:70000"],
            r#"invalid value "udp:127.0.0.1:53:127.0.0.1:70000" for flag -map"#,
        ),
        (vec!["-map", "tcp:1.2.3:80:127.0.0.1:80"], r#"invalid value "tcp:1.2.3:80:127.0.0.1:80" for flag -map"#),
    ];
    for (args, expected) in &cases {
        let outcome = run(&ns, args);
        assert_eq!(outcome.code, Some(2), "{args:?} should be a usage error (exit 2):\n{outcome}");
        assert!(outcome.stderr.contains(expected), "{args:?}: stderr should say {expected:?}:\n{outcome}");
        // The usage follows the message: it lists the flags.
        assert!(outcome.stderr.contains("-stats-socket"), "{args:?}: no usage on stderr:\n{outcome}");
    }
}

#[test]
fn a_flag_without_its_value_is_a_usage_error() {
    require_root();
    let ns = Netns::new("pcli").unwrap();
    let outcome =
        run(&ns, &["-host-ip", "127.0.0.1", "-container-ip", "127.0.0.1", "-container-port", "80", "-host-port"]);
    assert_eq!(outcome.code, Some(2), "{outcome}");
    assert!(outcome.stderr.contains("-host-port"), "{outcome}");
}

#[test]
fn no_mapping_is_a_usage_error() {
    require_root();
    let ns = Netns::new("pcli").unwrap();
    for args in [&[][..], &["-proto", "udp"][..], &["-drain-timeout", "1s", "--"][..]] {
        let outcome = run(&ns, args);
        assert_eq!(outcome.code, Some(2), "{args:?}: {outcome}");
        assert!(!outcome.stderr.trim().is_empty(), "{args:?}: say what is missing: {outcome}");
    }
}

#[test]
fn stray_arguments_are_an_error() {
    require_root();
    let ns = Netns::new("pcli").unwrap();
    // Parsing stops at the first non-flag argument, or after `--`.
    for extra in [&["stray"][..], &["--", "stray"][..], &["stray", "-proto", "udp"][..]] {
        let args = [&VALID[..], extra].concat();
        let outcome = run(&ns, &args);
        assert_eq!(outcome.code, Some(2), "{args:?}: {outcome}");
        assert!(outcome.stderr.contains("stray"), "{args:?}: name the stray argument: {outcome}");
    }
}

#[test]
fn version_and_help_answer_and_exit_0() {
    require_root();
    let ns = Netns::new("pcli").unwrap();
    for flag in ["-v", "-version", "--version", "--v"] {
        let outcome = run(&ns, &[flag]);
        assert_eq!(outcome.code, Some(0), "{flag}: {outcome}");
        let line = outcome.stdout.trim();
        assert!(line.starts_with("wharf-proxy "), "{flag}: {outcome}");
        assert!(line.contains(env!("CARGO_PKG_VERSION")), "{flag}: the version is the workspace's: {outcome}");
    }
    for flag in ["-h", "-help", "--help"] {
        let outcome = run(&ns, &[flag]);
        assert_eq!(outcome.code, Some(0), "{flag}: {outcome}");
        for name in ["-proto", "-host-ip", "-host-port", "-container-ip", "-container-port", "-map", "-drain-timeout"] {
            assert!(outcome.stderr.contains(name), "{flag}: the usage names {name}: {outcome}");
        }
    }
}
