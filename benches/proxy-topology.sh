# shellcheck shell=bash
# Sourced by the proxy benches (proxy-compare.sh, proxy-rounds.sh,
# proxy-cpu-split.sh) from the repository's root: a "host" namespace
# (client, proxies) and a "container" namespace (servers) joined by one veth
# (198.51.100.1 and .2), a scratch directory in $root, and a cleanup on exit
# that stops every process left in the two namespaces (twice over, in case
# one was being started) and removes them; and the wharf-proxy they measure.
# Usage: proxy_topology TAG   — sets hns, cns and root; wait_for FILE PATTERN PID;
#        shipped_wharf_proxy  — builds wharf-proxy as shipped, prints its path;
#        absolute PATH        — PATH from the caller's directory ($caller_dir) or PATH;
#        cpu_ticks            — the machine's busy, idle and stolen CPU time so far.

# wharf-proxy as shipped (README): static glibc, LTO, panic=abort, its
# start-up code first — the smallest RSS.
shipped_wharf_proxy() {
    RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --profile proxy --target x86_64-unknown-linux-gnu \
        -p dataplane --bin wharf-proxy
    echo "${CARGO_TARGET_DIR:-$PWD/target}/x86_64-unknown-linux-gnu/proxy/wharf-proxy"
}

# A path given relative to where the script was started, absolute; a bare
# name is looked up on PATH.
absolute() { case $1 in /*) echo "$1" ;; */*) echo "$caller_dir/$1" ;; *) command -v "$1" || echo "$1" ;; esac; }

# The machine's CPU time in clock ticks (getconf CLK_TCK), all CPUs: busy
# (user, nice, system, irq, softirq), idle (idle, iowait) and stolen (a
# virtual machine's time its host gave to others), from /proc/stat.
cpu_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6, $9 }' /proc/stat; }

proxy_topology() {
    hns="${1}h"
    cns="${1}c"
    root=$(mktemp -d)
    trap proxy_topology_cleanup EXIT
    trap 'exit 130' INT TERM
    ip netns add "$hns"
    ip netns add "$cns"
    ip -n "$hns" link add veth0 type veth peer name veth0 netns "$cns"
    for ns in "$hns" "$cns"; do ip -n "$ns" link set lo up; ip -n "$ns" link set veth0 up; done
    ip -n "$hns" addr add 198.51.100.1/24 dev veth0
    ip -n "$cns" addr add 198.51.100.2/24 dev veth0
    ip netns exec "$hns" ping -c 1 -W 2 -q 198.51.100.2 >/dev/null
}

proxy_topology_cleanup() {
    local ns pid round left
    for round in 1 2 3 4 5 6; do
        left=0
        for ns in "$hns" "$cns"; do
            for pid in $(ip netns pids "$ns" 2>/dev/null); do
                left=1
                if [ $round -lt 6 ]; then kill "$pid"; else kill -KILL "$pid"; fi 2>/dev/null || true
            done
        done
        [ $left = 0 ] && break
        sleep 0.2
    done
    wait 2>/dev/null || true
    ip netns del "$hns" 2>/dev/null || true
    ip netns del "$cns" 2>/dev/null || true
    rm -rf "$root"
}

# Waits (up to 10 s) for a line matching PATTERN in FILE, written by PID;
# gives up early if PID has exited.
wait_for() {
    local _
    for _ in $(seq 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || break
        sleep 0.1
    done
    grep -q "$2" "$1" 2>/dev/null
}
