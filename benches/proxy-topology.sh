# shellcheck shell=bash
# Sourced by proxy-compare.sh and proxy-rounds.sh: a "host" namespace
# (client, proxies) and a "container" namespace (servers) joined by one veth
# (198.51.100.1 and .2), a scratch directory in $root, and a cleanup on exit
# that stops every process left in the two namespaces (twice over, in case
# one was being started) and removes them.
# Usage: proxy_topology TAG   — sets hns, cns and root; wait_for FILE PATTERN PID.
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
