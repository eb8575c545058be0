//! Published ports (issue #7): `run -p 8080:80` starts a wharf-proxy that
//! serves the host's port 8080 (from the outside namespace at
//! 203.0.113.1:8080 and from the host namespace at 127.0.0.1:8080) while
//! the container runs, and `wharf port` says so; `-p 80` picks a host port.
//!
//! Topology: [`NetWorld`] (wharf in a "host" namespace, an "outside"
//! namespace joined to it).

use std::time::{Duration, Instant};

use tests::container::{http_get, NetWorld, HOST_UPLINK_ADDR};

const WHARF: &str = env!("CARGO_BIN_EXE_wharf-e2e");
const PROXY: &str = env!("CARGO_BIN_EXE_wharf-proxy-e2e");

/// Starts busybox httpd on port 80 serving `/www/index.html` = `body`.
fn web_args<'a>(name: &'a str, publish: &'a [&'a str], body: &'a str) -> Vec<String> {
    let mut args: Vec<String> = ["run", "-d", "--name", name].iter().map(|s| s.to_string()).collect();
    args.extend(publish.iter().map(|s| s.to_string()));
    args.extend(["bb", "sh", "-c"].iter().map(|s| s.to_string()));
    args.push(format!("mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www"));
    args
}

/// GETs `/` until an HTTP 200 answer comes or `timeout` passes (the proxy
/// and httpd start in the background); returns the last response or error.
fn get_within(ns: &tests::Netns, addr: &str, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = http_get(ns, addr, Duration::from_secs(2)).map_err(|e| e.to_string());
        if matches!(&got, Ok(r) if r.starts_with("HTTP/1.") && r.contains(" 200 ")) || Instant::now() >= deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `NAME/PROTO -> IP:PORT` lines of `wharf port`, sorted.
fn port_lines(nw: &NetWorld, container: &str) -> Vec<String> {
    let mut lines: Vec<String> = nw.w.ok(&["port", container]).lines().map(|l| l.trim().to_owned()).collect();
    lines.retain(|l| !l.is_empty());
    lines.sort();
    lines
}

#[test]
fn a_published_port_is_served_while_the_container_runs() {
    let nw = NetWorld::new(WHARF, PROXY);
    let w = &nw.w;
    let args = web_args("web", &["-p", "8080:80", "-p", "5353:53/udp"], "hello-from-web");
    w.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // From the outside, to the host's address; and on the host's loopback.
    let outside = format!("{HOST_UPLINK_ADDR}:8080");
    for (ns, addr) in [(&nw.outside, outside.as_str()), (&nw.host, "127.0.0.1:8080")] {
        let got = get_within(ns, addr, Duration::from_secs(10));
        let response = got.unwrap_or_else(|e| panic!("GET http://{addr}/ from {}: {e}", ns.name()));
        assert!(response.contains(" 200 "), "GET http://{addr}/: {response}");
        assert!(response.ends_with("hello-from-web\n"), "GET http://{addr}/: {response}");
    }

    assert_eq!(port_lines(&nw, "web"), ["53/udp -> 0.0.0.0:5353", "80/tcp -> 0.0.0.0:8080"]);
    let id = w.inspect("web")["Id"].as_str().unwrap().to_owned();
    let stats_socket = w.root().join("run").join(format!("proxy-{}.sock", &id[..12]));
    assert!(stats_socket.exists(), "no stats socket for the port proxy at {}", stats_socket.display());
    // The UDP port is bound in the host namespace (by the proxy).
    let udp = nw.host.exec("ss", &["-Hnlu", "sport", "= :5353"]).unwrap();
    assert!(udp.contains(":5353"), "nothing listens on UDP 5353 in the host namespace: {udp:?}");

    // Stopped: the proxy is gone and the port refuses.
    w.ok(&["stop", "-t", "1", "web"]);
    let refused = tests::wait_for(Duration::from_secs(5), || {
        http_get(&nw.host, "127.0.0.1:8080", Duration::from_secs(1)).is_err()
    });
    assert!(refused, "127.0.0.1:8080 still answers after stop");
    let tcp = nw.host.exec("ss", &["-Hnlt", "sport", "= :8080"]).unwrap();
    assert!(tcp.trim().is_empty(), "still listening on 8080 after stop: {tcp}");
    assert!(!stats_socket.exists(), "the stopped proxy's socket stayed");
    // Started again: served again.
    w.ok(&["start", "web"]);
    let got = get_within(&nw.outside, &outside, Duration::from_secs(10));
    assert!(matches!(&got, Ok(r) if r.ends_with("hello-from-web\n")), "after start: {got:?}");
}

#[test]
fn a_container_port_alone_gets_a_host_port() {
    let nw = NetWorld::new(WHARF, PROXY);
    let w = &nw.w;
    w.ok(&["network", "create", "my_net"]);
    let args = web_args("rnd", &["--network", "my_net", "-p", "80"], "hello-from-rnd");
    w.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let lines = port_lines(&nw, "rnd");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let port: u16 = lines[0]
        .strip_prefix("80/tcp -> 0.0.0.0:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("wharf port rnd: {lines:?}"));
    assert_ne!(port, 0);
    let addr = format!("{HOST_UPLINK_ADDR}:{port}");
    let got = get_within(&nw.outside, &addr, Duration::from_secs(10));
    assert!(matches!(&got, Ok(r) if r.ends_with("hello-from-rnd\n")), "GET http://{addr}/: {got:?}");
    // A range: two host ports to two container ports (only 80 answers).
    let args = web_args("rng", &["-p", "9080-9081:80-81"], "hello-from-rng");
    w.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(port_lines(&nw, "rng"), ["80/tcp -> 0.0.0.0:9080", "81/tcp -> 0.0.0.0:9081"]);
    let got = get_within(&nw.outside, &format!("{HOST_UPLINK_ADDR}:9080"), Duration::from_secs(10));
    assert!(matches!(&got, Ok(r) if r.ends_with("hello-from-rng\n")), "GET :9080: {got:?}");
}

#[test]
fn publish_all_publishes_the_exposed_ports() {
    let nw = NetWorld::new(WHARF, PROXY);
    let w = &nw.w;
    // -P: every --expose'd port to a random host port; -p keeps its own.
    let args =
        web_args("all", &["--expose", "80", "--expose", "53/udp", "--expose", "81", "-p", "9081:81", "-P"], "hi-all");
    w.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let lines = port_lines(&nw, "all");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("53/udp -> 0.0.0.0:"), "{lines:?}");
    assert!(lines.contains(&"81/tcp -> 0.0.0.0:9081".to_string()), "{lines:?}");
    let http = lines
        .iter()
        .find_map(|l| l.strip_prefix("80/tcp -> 0.0.0.0:"))
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no host port for 80/tcp: {lines:?}"));
    let addr = format!("{HOST_UPLINK_ADDR}:{http}");
    let got = get_within(&nw.outside, &addr, Duration::from_secs(10));
    assert!(matches!(&got, Ok(r) if r.ends_with("hi-all\n")), "GET http://{addr}/: {got:?}");
    // Exposed without -P: nothing is published.
    let args = web_args("quiet", &["--expose", "80"], "hi-quiet");
    w.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(port_lines(&nw, "quiet"), Vec::<String>::new());
    // A bad --expose: a clear error, and no container.
    let ran = w.run(&["run", "--expose", "80/sctp", "-P", "bb", "true"]);
    assert_eq!(ran.code, 125, "{ran}");
    assert!(ran.stderr.contains("invalid --expose \"80/sctp\""), "{ran}");
}
