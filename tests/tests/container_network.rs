//! `wharf run --network none|host|container:NAME`: `none` is a
//! namespace with only `lo`; `host` is wharf's own namespace (here a
//! namespace the test made, so its interfaces are known); `container:a`
//! is a's namespace, reachable over 127.0.0.1.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use tests::container::{busybox_image, Json, Wharf};
use tests::{unique_name, wait_for, Netns};

const WHARF: &str = env!("CARGO_BIN_EXE_wharf-e2e");

/// The interface names in `ip -o link` output (iproute2 or busybox), sorted.
fn link_names(out: &str) -> Vec<String> {
    let mut names: Vec<String> = out
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .map(|name| name.trim_end_matches(':').split('@').next().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn network_none_has_only_lo() {
    let ns = Netns::new("cnn").unwrap();
    // A link in wharf's namespace, which a none container must not see.
    let link = unique_name("dum");
    let peer = unique_name("dup");
    ns.ip(&["link", "add", &link, "type", "veth", "peer", "name", &peer]).unwrap();
    let w = Wharf::new(WHARF).in_netns(&ns);
    busybox_image(&w, "bb");
    let out = w.ok(&["run", "--network", "none", "bb", "ip", "-o", "link"]);
    assert_eq!(link_names(&out), ["lo"], "{out}");
    // A host container does see it.
    let out = w.ok(&["run", "--network", "host", "bb", "ip", "-o", "link"]);
    assert!(link_names(&out).contains(&link), "{link} not seen from the host network:\n{out}");
    // The default is the bridge network: lo and eth0.
    let out = w.ok(&["run", "bb", "ip", "-o", "link"]);
    assert_eq!(link_names(&out), ["eth0", "lo"], "{out}");
    // Its own namespace, not wharf's.
    let wharfs = format!("net:[{}]", std::fs::metadata(format!("/run/netns/{}", ns.name())).unwrap().ino());
    let inside = w.ok(&["run", "--network", "none", "bb", "readlink", "/proc/self/ns/net"]);
    let inside = inside.trim();
    assert!(inside.starts_with("net:["), "readlink printed {inside:?}");
    assert_ne!(inside, wharfs, "a none container is in wharf's namespace");
}

#[test]
fn network_host_is_wharfs_namespace() {
    let ns = Netns::new("cnh").unwrap();
    // A veth pair with unique names (this kernel may lack the dummy driver).
    let dummy = unique_name("dum");
    let peer = unique_name("dup");
    ns.ip(&["link", "add", &dummy, "type", "veth", "peer", "name", &peer]).unwrap();
    ns.ip(&["link", "set", &dummy, "up"]).unwrap();
    let w = Wharf::new(WHARF).in_netns(&ns);
    busybox_image(&w, "bb");
    let inside = w.ok(&["run", "--network", "host", "bb", "ip", "-o", "link"]);
    let host = ns.ip(&["-o", "link"]).unwrap();
    assert!(link_names(&inside).contains(&dummy), "{dummy} not seen inside:\n{inside}");
    assert_eq!(link_names(&inside), link_names(&host), "inside:\n{inside}\nwharf's namespace:\n{host}");
    // The container's process is in that namespace.
    w.ok(&["run", "-d", "--name", "h", "--network", "host", "bb", "sleep", "1000"]);
    let inspect = w.inspect("h");
    assert_eq!(inspect["HostConfig"]["NetworkMode"].as_str(), Some("host"), "{inspect:?}");
    let pid = inspect["State"]["Pid"].as_i64().unwrap_or_else(|| panic!("no Pid: {inspect:?}"));
    let inside = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let wharfs = std::fs::metadata(format!("/run/netns/{}", ns.name())).unwrap().ino();
    assert_eq!(inside.to_str().unwrap(), format!("net:[{wharfs}]"), "not in wharf's namespace");
    // `network inspect host` lists it (running), as Docker's does.
    let id = inspect["Id"].as_str().unwrap_or_else(|| panic!("no Id: {inspect:?}")).to_string();
    let listed = Json::parse(&w.ok(&["network", "inspect", "host"])).unwrap();
    assert_eq!(listed[0]["Containers"][id.as_str()]["Name"].as_str(), Some("h"), "{listed:?}");
    w.ok(&["stop", "-t", "0", "h"]);
    let listed = Json::parse(&w.ok(&["network", "inspect", "host"])).unwrap();
    assert_eq!(listed[0]["Containers"], Json::Object(vec![]), "a stopped container is not listed: {listed:?}");
}

#[test]
fn network_container_shares_a_namespace() {
    let w = Wharf::new(WHARF);
    busybox_image(&w, "bb");
    // a: a one-shot server printing what it receives.
    w.ok(&["run", "-d", "--name", "a", "bb", "nc", "-l", "-p", "8080"]);
    let a_ns = w.ok(&["exec", "a", "readlink", "/proc/self/ns/net"]);
    let a_links = w.ok(&["exec", "a", "ip", "-o", "link"]);
    let out = w.ok(&[
        "run",
        "--name",
        "b",
        "--network",
        "container:a",
        "bb",
        "sh",
        "-c",
        // The message comes from a file, not a pipe: busybox nc reads its
        // stdin before the socket only when both are ready, and a's nc,
        // whose stdin is empty, half-closes at once; from a pipe that was
        // not written yet, b's nc could see that FIN first and exit 0
        // without sending.
        "readlink /proc/self/ns/net; ip -o link; echo hi > /tmp/hi; \
         for i in $(seq 50); do nc 127.0.0.1 8080 < /tmp/hi && exit 0; sleep 0.1; done; exit 1",
    ]);
    let (b_ns, b_links) = out.split_once('\n').unwrap_or_else(|| panic!("{out}"));
    assert_eq!(b_ns, a_ns.trim(), "b is not in a's namespace");
    assert_eq!(link_names(b_links), link_names(&a_links));
    let mut last = String::new();
    let exited = wait_for(Duration::from_secs(5), || {
        last = w.ps_line("a", true).unwrap_or_default();
        last.contains("Exited (0)")
    });
    assert!(exited, "a's server did not finish: {last}");
    assert_eq!(w.ok(&["logs", "a"]), "hi\n", "a's server did not get b's message");
    assert_eq!(w.inspect("b")["HostConfig"]["NetworkMode"].as_str(), Some("container:a"));

    // a is stopped now: joining it is refused, and leaves nothing.
    let before = w.container_dirs();
    let ran = w.run(&["run", "--network", "container:a", "bb", "true"]);
    assert_eq!(ran.code, 125, "{ran}");
    assert!(ran.stderr.starts_with("wharf: "), "{ran}");
    assert_eq!(w.container_dirs(), before);
    let ran = w.run(&["run", "--network", "container:nosuch", "bb", "true"]);
    assert_eq!(ran.code, 125, "{ran}");
    assert!(ran.stderr.starts_with("wharf: ") && ran.stderr.contains("no such container: nosuch"), "{ran}");
    assert_eq!(w.container_dirs(), before);
}
