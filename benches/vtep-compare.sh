#!/usr/bin/env bash
# TCP throughput across a VXLAN overlay between two network namespaces, in one
# run: (a) the kernel's vxlan at both ends, (b) wharf at both ends, (c) wharf on
# one end and the kernel on the other — first with zero outer UDP checksums
# (both defaults over IPv4), then all three again with checksums on (the
# kernel's `udpcsum`, wharf's --udpcsum, which lets wharf send with UDP GSO);
# with each setting (b) and (c) are measured again with wharf's --tunnel-gso
# (TCP superframes handed to the kernel whole as UDP-tunnel GSO; Linux 6.17).
# iperf3 is the load; the table gives each result and its ratio to the
# kernel's with the same checksum setting. With ROUNDS above 1 the ten
# measurements are taken in turn that many times (so that a noisy machine
# weighs on all of them alike), each round is printed, and the table gives
# the medians.
#
# Usage (as root): benches/vtep-compare.sh [SECONDS] [STREAMS] [ROUNDS]
# Needs: iproute2, iperf3, ethtool, python3, ping, Rust (1.86 or newer: the script
# runs `cargo build --release -p control`), and Linux 6.17 or newer for the
# --tunnel-gso rows (skipped, with a note, on an older kernel). Everything lives in namespaces the
# script creates (underlay 192.0.2.0/24, overlay 198.51.100.0/24) and is
# removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/median.sh
. benches/median.sh
seconds=${1:-10}
streams=${2:-1}
rounds=${3:-1}
for n in "$seconds" "$streams" "$rounds"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "vtep-compare: SECONDS, STREAMS and ROUNDS are positive numbers" >&2; exit 2; }
done
command -v cargo >/dev/null || { echo "vtep-compare: needs Rust 1.86 or newer (cargo; rustup.rs)" >&2; exit 1; }
cargo build --release -q -p control
wharf="$PWD/target/release/wharf"
# UDP-tunnel GSO on a TAP (--tunnel-gso) came with Linux 6.17.
read -r major minor _ <<<"$(uname -r | tr '.-' '  ')"
tunnel_gso=yes
if [ "$major" -lt 6 ] || { [ "$major" = 6 ] && [ "$minor" -lt 17 ]; }; then
    tunnel_gso=no
    echo "vtep-compare: Linux $(uname -r) is older than 6.17: the --tunnel-gso rows are skipped" >&2
fi
tag="wb$$"
a="${tag}a"
b="${tag}b"
root=$(mktemp -d)
pids=()

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    # A round's processes were started in a subshell: find them by namespace.
    for ns in "$a" "$b"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    done
    wait 2>/dev/null || true
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
    rm -rf "$root"
}
trap cleanup EXIT

underlay() {
    ip netns del "$a" 2>/dev/null || true
    ip netns del "$b" 2>/dev/null || true
    ip netns add "$a"
    ip netns add "$b"
    ip -n "$a" link add u0 type veth peer name u0 netns "$b"
    for ns in "$a" "$b"; do ip -n "$ns" link set lo up; ip -n "$ns" link set u0 up; done
    ip -n "$a" addr add 192.0.2.1/24 dev u0
    ip -n "$b" addr add 192.0.2.2/24 dev u0
}

kernel_end() { # ns local remote overlay-address
    # shellcheck disable=SC2086 # $kernel_flags is a list of words
    ip -n "$1" link add vx42 type vxlan id 42 local "$2" remote "$3" dstport 4789 dev u0 $kernel_flags
    ip -n "$1" addr add "$4/24" dev vx42
    ip -n "$1" link set vx42 up
}

wharf_end() { # ns local remote overlay-address
    local log="$root/$1.log"
    # shellcheck disable=SC2086 # $wharf_flags is a list of flags
    WHARF_ROOT="$root/$1" ip netns exec "$1" "$wharf" vtep --vni 42 --local "$2" --remote "$3" --tap wt0 \
        $wharf_flags >"$log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do grep -q ready "$log" && break; sleep 0.1; done
    # To stderr: a round's output is captured.
    grep -q ready "$log" || { echo "vtep-compare: wharf did not start:" >&2; cat "$log" >&2; exit 1; }
    ip -n "$1" addr add "$4/24" dev wt0
}

measure() { # label a-kind b-kind
    underlay
    "$2_end" "$a" 192.0.2.1 192.0.2.2 198.51.100.1
    "$3_end" "$b" 192.0.2.2 192.0.2.1 198.51.100.2
    # Facing wharf, the kernel must finish its inner checksums itself: across
    # a veth nothing else would (see the README).
    if [ "$2" != "$3" ]; then
        ns=$a; [ "$3" = kernel ] && ns=$b
        ip netns exec "$ns" ethtool -K vx42 tx off >/dev/null
    fi
    ip netns exec "$a" ping -c 2 -W 2 -q 198.51.100.2 >/dev/null
    ip netns exec "$b" iperf3 -s -1 -B 198.51.100.2 >/dev/null 2>&1 &
    local server=$!
    sleep 0.5
    local bps
    bps=$(ip netns exec "$a" iperf3 -c 198.51.100.2 -t "$seconds" -P "$streams" -J |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"])')
    wait "$server" 2>/dev/null || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
    echo "$1 $bps"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# Every round's figures, space-separated, by "path checksum", in the order
# first measured.
declare -A all
order=()
for round in $(seq "$rounds"); do
    got=$(
        wharf_flags=""
        kernel_flags="noudpcsum"
        measure "kernel↔kernel zero" kernel kernel
        measure "wharf↔wharf zero" wharf wharf
        measure "wharf↔kernel zero" wharf kernel
        if [ $tunnel_gso = yes ]; then
            wharf_flags="--tunnel-gso"
            measure "wharf↔wharf/tunnel-gso zero" wharf wharf
            measure "wharf↔kernel/tunnel-gso zero" wharf kernel
        fi
        wharf_flags="--udpcsum"
        kernel_flags="udpcsum"
        measure "kernel↔kernel on" kernel kernel
        measure "wharf↔wharf on" wharf wharf
        measure "wharf↔kernel on" wharf kernel
        if [ $tunnel_gso = yes ]; then
            wharf_flags="--udpcsum --tunnel-gso"
            measure "wharf↔wharf/tunnel-gso on" wharf wharf
            measure "wharf↔kernel/tunnel-gso on" wharf kernel
        fi
    )
    [ "$rounds" = 1 ] || echo "round $round: $(awk '{ printf "%s%s %s %.2f", (NR > 1 ? ", " : ""), $1, $2, $3 / 1e9 }' <<<"$got")"
    while read -r path sum bps; do
        [ -n "${all["$path $sum"]:-}" ] || order+=("$path $sum")
        all["$path $sum"]+=" $bps"
    done <<<"$got"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
[ "$rounds" = 1 ] || echo
echo "VXLAN TCP throughput, iperf3 ${seconds}s × ${streams} stream(s), $(date -u '+%Y-%m-%d %H:%M UTC'), $rounds" \
    "round(s) (the median of each), load average before $load_before, after $load_after:"
echo
echo "| path | outer UDP checksum | Gbit/s | × kernel↔kernel |"
echo "|---|---|---:|---:|"
for key in "${order[@]}"; do
    path=${key% *} sum=${key#* }
    word=zero
    [ "$sum" = on ] && word="on (UDP GSO for wharf)"
    if [[ $path == */tunnel-gso ]]; then
        path="${path%/tunnel-gso}, --tunnel-gso"
        [ "$sum" = on ] && word=on
    fi
    awk -v p="$path" -v w="$word" -v b="$(median <<<"${all[$key]}")" -v k="$(median <<<"${all["kernel↔kernel $sum"]}")" \
        'BEGIN { printf "| %s | %s | %.2f | %.2f |\n", p, w, b / 1e9, b / k }'
done
