#!/usr/bin/env bash
# Where the CPU time goes during one iperf3 transfer, direct and through
# wharf-proxy: the proxy-compare.sh topology (client and proxy in a "host"
# namespace, the iperf3 server in a "container" namespace behind a veth pair),
# one transfer per column. For each: the throughput; how busy and how idle
# the machine's CPUs were (/proc/stat); and for every task that ran or
# waited to run for more than 5% of the time, from /proc/*/task/*/schedstat
# and status: its time on a CPU (softirq work done in its context included),
# its time runnable but waiting in a run queue for a CPU, and its voluntary
# (it slept) and involuntary (it was preempted) context switches per second.
# Tasks are read from the second second of the transfer to the one before
# its last, so that start-up and the end are left out and the client is
# still there to read. Percentages are of one CPU over that window.
#
# Usage (as root): benches/proxy-cpu-split.sh [--seconds S] [--reverse] [--host-ip IP]
#                      [--client-congestion NAME] [--wharf-args "FLAGS"] [--binary PATH]
#                      [COLUMN ...]
#   --seconds S               length of each transfer, at least 3 (default 8)
#   --reverse                 the server sends (iperf3 -R)
#   --host-ip IP              the proxy's listening address (default 127.0.0.1; the client
#                             connects to 127.0.0.1 either way)
#   --client-congestion NAME  iperf3's congestion control (-C; default: the system's)
#   --wharf-args "FLAGS"      extra flags for wharf-proxy, e.g. "-local-congestion system"
#   --binary PATH             the wharf-proxy to run (default: the `proxy` profile build)
#   COLUMN                    direct or proxy, in the order to run (default: direct proxy)
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."
# shellcheck source=benches/proxy-topology.sh
. benches/proxy-topology.sh

usage() { sed -n '/^# Usage/,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
seconds=8 reverse=() host_ip=127.0.0.1 client_cc=() wharf_args="" binary="" columns=()
while [ $# -gt 0 ]; do
    case $1 in
        --seconds) [ $# -ge 2 ] || { usage >&2; exit 2; }; seconds=$2; shift ;;
        --reverse) reverse=(-R) ;;
        --host-ip) [ $# -ge 2 ] || { usage >&2; exit 2; }; host_ip=$2; shift ;;
        --client-congestion) [ $# -ge 2 ] || { usage >&2; exit 2; }; client_cc=(-C "$2"); shift ;;
        --wharf-args) [ $# -ge 2 ] || { usage >&2; exit 2; }; wharf_args=$2; shift ;;
        --binary) [ $# -ge 2 ] || { usage >&2; exit 2; }; binary=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        direct | proxy) columns+=("$1") ;;
        *) echo "proxy-cpu-split: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
[ ${#columns[@]} -gt 0 ] || columns=(direct proxy)
[[ $seconds =~ ^[0-9]+$ ]] && [ "$seconds" -ge 3 ] ||
    { echo "proxy-cpu-split: --seconds takes a number of at least 3, not $seconds" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "proxy-cpu-split: run as root (it creates network namespaces)" >&2; exit 1; }
command -v iperf3 >/dev/null || { echo "proxy-cpu-split: needs iperf3 (apt-get install iperf3)" >&2; exit 1; }
if [ -z "$binary" ]; then binary=$(shipped_wharf_proxy); else binary=$(absolute "$binary"); fi
[ -x "$binary" ] || { echo "proxy-cpu-split: $binary is not an executable" >&2; exit 1; }

proxy_topology "cs$$"
server=198.51.100.2 port=7000 proxy_port=11002
ip netns exec "$cns" iperf3 -s --forceflush -B $server -p $port >"$root/serve.log" 2>&1 &
serving=$!
wait_for "$root/serve.log" listening $serving || { cat "$root/serve.log" >&2; exit 1; }
# shellcheck disable=SC2086 # $wharf_args is a list of flags
ip netns exec "$hns" "$binary" -proto tcp -host-ip "$host_ip" -host-port $proxy_port -container-ip $server \
    -container-port $port $wharf_args 3>"$root/proxy.ready" >"$root/proxy.log" 2>&1 &
proxying=$!
wait_for "$root/proxy.ready" '^0' $proxying || { echo "proxy-cpu-split: wharf-proxy did not start" >&2; cat "$root"/proxy.* >&2; exit 1; }

# Every task: "pid/tid on-CPU-ns run-queue-ns voluntary involuntary name".
# The name is field 2 of stat, in parentheses, and may hold spaces.
tasks() {
    local task line name on waited _ voluntary involuntary key value
    for task in /proc/[0-9]*/task/[0-9]*; do
        { read -r on waited _ <"$task/schedstat" && read -r line <"$task/stat"; } 2>/dev/null || continue
        name=${line#*(} name=${name%) *}
        voluntary=0 involuntary=0
        while read -r key value; do
            case $key in voluntary_ctxt_switches:) voluntary=$value ;; nonvoluntary_ctxt_switches:) involuntary=$value ;; esac
        done <"$task/status" 2>/dev/null || continue
        echo "${task#/proc/} $on $waited $voluntary $involuntary $name"
    done
}
ticks=$(getconf CLK_TCK)

echo "iperf3, 1 stream${reverse[0]:+, server to client}${client_cc[1]:+, iperf3 with ${client_cc[1]}}," \
    "${seconds}s per column; wharf-proxy on $host_ip${wharf_args:+ with $wharf_args};" \
    "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores"
for column in "${columns[@]}"; do
    case $column in direct) to=$server:$port ;; proxy) to=127.0.0.1:$proxy_port ;; esac
    # `ip netns exec` runs iperf3 in its own process: $! is the client.
    ip netns exec "$hns" iperf3 -c "${to%:*}" -p "${to#*:}" -t "$seconds" "${reverse[@]}" "${client_cc[@]}" -J \
        >"$root/client.json" 2>>"$root/client.log" &
    client=$!
    # Each task is read at the same point of both passes over /proc, so
    # its window is the one from the start of one pass to the other's.
    sleep 1
    start=$(date +%s.%N)
    read -r busy0 idle0 stolen0 <<<"$(cpu_ticks)"
    tasks >"$root/before"
    sleep $((seconds - 2))
    end=$(date +%s.%N)
    read -r busy1 idle1 stolen1 <<<"$(cpu_ticks)"
    tasks >"$root/after"
    wait "$client" || true
    rate=$(python3 -c 'import json, sys
try:
    print("%.2f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 1e9))
except (ValueError, KeyError):
    print("failed")' "$root/client.json")
    window=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')
    echo
    awk -v c="$column" -v r="$rate" -v b=$((busy1 - busy0)) -v i=$((idle1 - idle0)) -v st=$((stolen1 - stolen0)) \
        -v t="$ticks" -v s="$window" 'BEGIN { printf "%s: %s Gbit/s; CPUs busy %.0f%%, idle %.0f%%, stolen %.0f%% (of one CPU)\n",
            c, r, 100 * b / t / s, 100 * i / t / s, 100 * st / t / s }'
    echo "  on CPU  waiting  sleeps/s  preempted/s  task"
    awk -v s="$window" -v client="$client" -v server="$serving" '
        NR == FNR { on[$1] = $2; waited[$1] = $3; slept[$1] = $4; preempted[$1] = $5; next }
        $1 in on {
            name = $6; for (f = 7; f <= NF; f++) name = name " " $f
            pid = $1; sub("/.*", "", pid); tid = $1; sub(".*/", "", tid)
            if (pid == client) name = name " client"; else if (pid == server) name = name " server"
            run = ($2 - on[$1]) / 1e7 / s; queued = ($3 - waited[$1]) / 1e7 / s
            if (run > 5 || queued > 5)
                printf "  %5.0f%%  %6.0f%%  %8.0f  %11.0f  %s (task %s)\n", run, queued,
                    ($4 - slept[$1]) / s, ($5 - preempted[$1]) / s, name, tid }' \
        "$root/before" "$root/after" | sort -rn
done
