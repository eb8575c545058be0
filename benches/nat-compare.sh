#!/usr/bin/env bash
# NAT gateway throughput, side by side in one run: wharf nat (userspace, the
# gateway's addresses owned by wharf) against the kernel doing the same job
# (iptables MASQUERADE and DNAT in the gateway namespace), in the same
# topology: an inside host (10.0.0.2) behind the gateway (10.0.0.1 inside,
# 203.0.113.10 outside) and an outside host (203.0.113.20). iperf3 measures
# TCP from inside to outside (masqueraded) and from outside to a published
# port (DNAT), and the table gives each and its ratio to the kernel's, and
# the CPU time wharf nat used per GB it forwarded (its utime + stime from
# /proc, which a busy machine disturbs less than it does throughput). With
# ROUNDS above 1 the kernel and wharf take turns that many times, each round
# is printed, and the table gives the medians.
#
# Usage (as root): benches/nat-compare.sh [SECONDS] [ROUNDS]
# Needs: iproute2, iptables, iperf3, python3, and cargo (it builds wharf).
# Everything lives in namespaces the script creates and is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/median.sh
. benches/median.sh
seconds=${1:-10}
rounds=${2:-1}
for n in "$seconds" "$rounds"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "nat-compare: SECONDS and ROUNDS are positive numbers" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "nat-compare: run as root (it creates network namespaces)" >&2; exit 1; }
cargo build --release -q -p control
wharf="$PWD/target/release/wharf"
tag="wn$$"
inside="${tag}i" gateway="${tag}g" outside="${tag}o"
root=$(mktemp -d)
pids=()

# Deleting a namespace does not end its processes (the iperf3 daemons).
stop_netns() {
    for pid in $(ip netns pids "$1" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    ip netns del "$1" 2>/dev/null || true
}

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for ns in "$inside" "$gateway" "$outside"; do stop_netns "$ns"; done
    rm -rf "$root"
}
trap cleanup EXIT

topology() { # wharf|kernel
    for ns in "$inside" "$gateway" "$outside"; do stop_netns "$ns"; ip netns add "$ns"; done
    ip -n "$inside" link add eth0 type veth peer name in0 netns "$gateway"
    ip -n "$gateway" link add out0 type veth peer name eth0 netns "$outside"
    for ns in "$inside" "$outside"; do ip -n "$ns" link set lo up; ip -n "$ns" link set eth0 up; done
    ip -n "$gateway" link set lo up
    ip -n "$gateway" link set in0 up
    ip -n "$gateway" link set out0 up
    ip -n "$inside" addr add 10.0.0.2/24 dev eth0
    ip -n "$inside" route add default via 10.0.0.1
    ip -n "$outside" addr add 203.0.113.20/24 dev eth0
    if [ "$1" = kernel ]; then
        ip -n "$gateway" addr add 10.0.0.1/24 dev in0
        ip -n "$gateway" addr add 203.0.113.10/24 dev out0
        ip netns exec "$gateway" sysctl -q -w net.ipv4.ip_forward=1
        ip netns exec "$gateway" iptables -t nat -A POSTROUTING -s 10.0.0.0/24 -o out0 -j MASQUERADE
        ip netns exec "$gateway" iptables -t nat -A PREROUTING -d 203.0.113.10 -p tcp --dport 8080 \
            -j DNAT --to-destination 10.0.0.2:5201
    else
        local log="$root/wharf.log"
        WHARF_ROOT="$root/wharf" ip netns exec "$gateway" "$wharf" nat --inside in0 --inside-addr 10.0.0.1/24 \
            --outside out0 --outside-addr 203.0.113.10/24 --masquerade 10.0.0.0/24 \
            --publish tcp:8080:10.0.0.2:5201 >"$log" 2>&1 &
        pids+=($!)
        for _ in $(seq 100); do grep -q ready "$log" && break; sleep 0.1; done
        grep -q ready "$log" || { echo "wharf nat did not start:"; cat "$log"; exit 1; }
    fi
    ip netns exec "$outside" iperf3 -s -D -p 5201 >/dev/null
    ip netns exec "$inside" iperf3 -s -D -p 5201 >/dev/null
    sleep 0.3
}

# "Gbit/s bytes" of an iperf3 JSON report.
received() { python3 -c 'import json,sys; d=json.load(sys.stdin)["end"]["sum_received"]; print("%.2f %d" % (d["bits_per_second"] / 1e9, d["bytes"]))'; }
# CPU ticks (utime + stime) of wharf nat so far.
ticks() { awk '{ print $14 + $15 }' "/proc/${pids[0]}/stat"; }

# Every round's figures, space-separated, by "dir,kind" and "cpu,dir".
declare -A all
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$rounds"); do
    declare -A res=()
    for kind in kernel wharf; do
        topology "$kind"
        for dir in out in; do
            [ "$kind" = wharf ] && before=$(ticks)
            if [ "$dir" = out ]; then
                read -r gbit bytes < <(ip netns exec "$inside" iperf3 -c 203.0.113.20 -t "$seconds" -J | received)
            else
                read -r gbit bytes < <(ip netns exec "$outside" iperf3 -c 203.0.113.10 -p 8080 -t "$seconds" -J | received)
            fi
            res[$dir,$kind]=$gbit
            if [ "$kind" = wharf ]; then
                res[cpu,$dir]=$(python3 -c "print('%.2f' % (($(ticks) - $before) / $(getconf CLK_TCK) / ($bytes / 1e9)))")
            fi
        done
        echo "round $round, $kind: masquerade ${res[out,$kind]} Gbit/s, published port ${res[in,$kind]} Gbit/s" >&2
        for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
        pids=()
        wait 2>/dev/null || true
    done
    for key in "${!res[@]}"; do all[$key]="${all[$key]:-} ${res[$key]}"; done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

declare -A med
for key in "${!all[@]}"; do med[$key]=$(printf "%.2f" "$(median <<<"${all[$key]}")"); done
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo "NAT gateway TCP throughput, $(date -u '+%Y-%m-%d %H:%M UTC') (iperf3, 1 stream, ${seconds}s, $(nproc) cores;" \
    "$rounds round(s), the median of each; load average before $load_before, after $load_after)"
echo
echo "| path | kernel (iptables) | wharf nat | wharf ÷ kernel |"
echo "|---|---:|---:|---:|"
echo "| inside → outside (masquerade), Gbit/s | ${med[out,kernel]} | ${med[out,wharf]} | $(ratio "${med[out,wharf]}" "${med[out,kernel]}") |"
echo "| outside → published port (DNAT), Gbit/s | ${med[in,kernel]} | ${med[in,wharf]} | $(ratio "${med[in,wharf]}" "${med[in,kernel]}") |"
echo
echo "wharf nat CPU per GB forwarded: masquerade ${med[cpu,out]} s, published port ${med[cpu,in]} s"
