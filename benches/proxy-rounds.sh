#!/usr/bin/env bash
# wharf-proxy against direct and docker-proxy, interleaved: direct (no proxy),
# docker-proxy and one or more wharf-proxy builds take turns (A B C A B C ...)
# for several rounds in one run, so that a noisy, shared machine weighs on
# each of them alike. Prints every round, then the median per column and its
# ratio to docker-proxy and to direct. The topology is proxy-compare.sh's:
# client and proxies in a "host" namespace, the server in a "container"
# namespace behind a veth pair (198.51.100.0/24). Two measures:
#   conns  short TCP connections per second: `proxy-load tcp-serve` as the
#          server, 32 client threads, a connection per 64-byte request; also,
#          per column, how busy the machine's CPUs were and the machine's and
#          the proxy's own CPU microseconds per connection;
#   bulk   TCP throughput: iperf3, `--streams` parallel streams; also, per
#          column, how busy the machine's CPUs were during the transfer (all
#          processes and the kernel, % of one CPU) and the proxy's own CPU
#          seconds per GB received (utime + stime from /proc/PID/stat);
#          `--reverse`: the server sends (iperf3 -R), as a container
#          answering a download does.
#
# Usage (as root): benches/proxy-rounds.sh [--measure conns|bulk] [--streams N] [--reverse]
#                      [--client-congestion NAME] [--rounds N] [--seconds S] [--wharf-args "FLAGS"]
#                      ["NAME=WHARF-PROXY-BINARY [FLAGS]" ...]
#   --measure M           conns (default) or bulk
#   --streams N           iperf3 streams for bulk (default 1)
#   --reverse             bulk from the server to the client (default: client to server)
#   --client-congestion NAME  iperf3's congestion control (-C; default: the system's)
#   --rounds N            rounds of every column (default 7)
#   --seconds S           seconds per measurement (default 5)
#   --wharf-args "FLAGS"  extra flags for every wharf-proxy
#   "NAME=BINARY [FLAGS]" a wharf-proxy build to compare, with flags of its own, e.g.
#                         base=/tmp/wharf-proxy or "one=/tmp/wharf-proxy -threads 1";
#                         default: wharf=the `proxy` profile build, as proxy-compare.sh builds it
# Environment: DOCKER_PROXY (default: docker-proxy on PATH or /usr/sbin/docker-proxy).
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."
# shellcheck source=benches/proxy-topology.sh
. benches/proxy-topology.sh

usage() { sed -n '/^# Usage/,/^# Environment/p' "$0" | sed 's/^# \{0,1\}//' | sed '$d'; }
rounds=7 seconds=5 wharf_args="" measure=conns streams=1 reverse=() client_cc=()
builds=()
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) [ $# -ge 2 ] || { usage >&2; exit 2; }; rounds=$2; shift ;;
        --seconds) [ $# -ge 2 ] || { usage >&2; exit 2; }; seconds=$2; shift ;;
        --measure) [ $# -ge 2 ] || { usage >&2; exit 2; }; measure=$2; shift ;;
        --streams) [ $# -ge 2 ] || { usage >&2; exit 2; }; streams=$2; shift ;;
        --reverse) reverse=(-R) ;;
        --client-congestion) [ $# -ge 2 ] || { usage >&2; exit 2; }; client_cc=(-C "$2"); shift ;;
        --wharf-args) [ $# -ge 2 ] || { usage >&2; exit 2; }; wharf_args=$2; shift ;;
        -h | --help) usage; exit 0 ;;
        *=*) builds+=("$1") ;;
        *) echo "proxy-rounds: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
case $measure in conns | bulk) ;; *) echo "proxy-rounds: --measure is conns or bulk, not $measure" >&2; exit 2 ;; esac
[[ $streams =~ ^[1-9][0-9]*$ ]] || { echo "proxy-rounds: --streams takes a positive number, not $streams" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "proxy-rounds: run as root (it creates network namespaces)" >&2; exit 1; }

docker_proxy=$(absolute "${DOCKER_PROXY:-$(command -v docker-proxy || echo /usr/sbin/docker-proxy)}")
[ -x "$docker_proxy" ] || { echo "proxy-rounds: no docker-proxy at $docker_proxy (apt-get install docker.io)" >&2; exit 1; }
target=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -q -p benches --bin proxy-load
load="$target/release/proxy-load"
if [ ${#builds[@]} = 0 ]; then
    builds=("wharf=$(shipped_wharf_proxy)")
fi

# shellcheck source=benches/median.sh
. benches/median.sh
proxy_topology "wc$$"
server=198.51.100.2 port=7000

if [ $measure = conns ]; then
    ip netns exec "$cns" "$load" tcp-serve --listen "$server:$port" 2>"$root/serve.log" &
    wait_for "$root/serve.log" listening $! || { cat "$root/serve.log" >&2; exit 1; }
else
    command -v iperf3 >/dev/null || { echo "proxy-rounds: bulk needs iperf3 (apt-get install iperf3)" >&2; exit 1; }
    ip netns exec "$cns" iperf3 -s --forceflush -B "$server" -p $port >"$root/serve.log" 2>&1 &
    wait_for "$root/serve.log" listening $! || { cat "$root/serve.log" >&2; exit 1; }
fi

# One measurement of the column at $1 (host:port): the figure and what it
# counted (connections completed, or bytes received), or nothing.
measure_at() {
    if [ $measure = conns ]; then
        local out errors
        out=$(ip netns exec "$hns" timeout $((seconds + 30)) "$load" tcp-rate --to "$1" --workers 32 \
            --seconds "$seconds" 2>>"$root/rate.log" || true)
        errors=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<<"$out")
        [ "${errors:-1}" = 0 ] || echo "proxy-rounds: $1: $out" >&2
        sed -n 's/.*conns_per_s=\([0-9]*\) completed=\([0-9]*\).*/\1 \2/p' <<<"$out"
    else
        ip netns exec "$hns" timeout $((seconds + 30)) iperf3 -c "${1%:*}" -p "${1#*:}" -t "$seconds" -P "$streams" "${reverse[@]}" "${client_cc[@]}" -J \
            2>>"$root/rate.log" | python3 -c 'import json, sys
try:
    received = json.load(sys.stdin)["end"]["sum_received"]
    print("%.2f %d" % (received["bits_per_second"] / 1e9, received["bytes"]))
except (ValueError, KeyError):
    pass' || true
    fi
}

# A process's own CPU time in clock ticks (utime + stime).
process_cpu() { [ -n "$1" ] && awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Columns: direct, docker, then each build; each with its address.
columns=(direct docker)
declare -A at=([direct]=$server:$port) pid=()
start_proxy() { # name host-port binary extra-flags
    # shellcheck disable=SC2086 # $4 is a list of flags
    ip netns exec "$hns" "$3" -proto tcp -host-ip 127.0.0.1 -host-port "$2" -container-ip $server \
        -container-port $port $4 3>"$root/$1.ready" >"$root/$1.log" 2>&1 &
    pid[$1]=$!
    wait_for "$root/$1.ready" '^0' "${pid[$1]}" || { echo "proxy-rounds: $1 ($3) did not start" >&2; cat "$root/$1".* >&2; exit 1; }
    at[$1]=127.0.0.1:$2
}
start_proxy docker 10002 "$docker_proxy" ""
host_port=11002
for build in "${builds[@]}"; do
    name=${build%%=*} spec=${build#*=}
    bin=$(absolute "${spec%% *}") flags=""
    [ "$spec" = "${spec%% *}" ] || flags=${spec#* }
    [ -x "$bin" ] || { echo "proxy-rounds: $bin is not an executable" >&2; exit 1; }
    start_proxy "$name" $host_port "$bin" "$wharf_args $flags"
    columns+=("$name")
    host_port=$((host_port + 1))
done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
ticks=$(getconf CLK_TCK)
# Per column, also the machine's CPU use during the measurement (percent of
# one CPU), and CPU per unit of work: for bulk the proxy's own CPU seconds
# per GB received; for conns the machine's and the proxy's CPU microseconds
# per connection completed.
declare -A got busy own per
echo "round ${columns[*]}" | tr ' ' '\t'
for round in $(seq "$rounds"); do
    line=$round
    for column in "${columns[@]}"; do
        read -r machine0 _ <<<"$(cpu_ticks)"
        own0=$(process_cpu "${pid[$column]:-}") start=$(date +%s.%N)
        read -r rate count <<<"$(measure_at "${at[$column]}")"
        read -r machine1 _ <<<"$(cpu_ticks)"
        own1=$(process_cpu "${pid[$column]:-}") end=$(date +%s.%N)
        got[$column]="${got[$column]:-} ${rate:-0}"
        line+=$'\t'${rate:-failed}
        if [ "${count:-0}" -gt 0 ]; then
            busy[$column]+=" $(awk -v a="$machine0" -v b="$machine1" -v t="$ticks" -v s="$start" -v e="$end" \
                'BEGIN { printf "%.0f", 100 * (b - a) / t / (e - s) }')"
            if [ "$measure" = bulk ]; then
                own[$column]+=" $(awk -v a="$own0" -v b="$own1" -v t="$ticks" -v n="$count" \
                    'BEGIN { printf "%.3f", (b - a) / t / (n / 1e9) }')"
            else
                per[$column]+=" $(awk -v a="$machine0" -v b="$machine1" -v t="$ticks" -v n="$count" \
                    'BEGIN { printf "%.1f", (b - a) / t * 1e6 / n }')"
                own[$column]+=" $(awk -v a="$own0" -v b="$own1" -v t="$ticks" -v n="$count" \
                    'BEGIN { printf "%.1f", (b - a) / t * 1e6 / n }')"
            fi
        fi
        sleep 0.5
    done
    echo "$line"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

declare -A med
for column in "${columns[@]}"; do med[$column]=$(median <<<"${got[$column]}"); done
echo
what="Short connections/s" unit="conns/s"
[ $measure = conns ] || what="TCP bulk, iperf3 with $streams stream(s)${reverse[0]:+, server to client}${client_cc[1]:+, iperf3 with ${client_cc[1]}}" unit="Gbit/s"
echo "$what, $rounds interleaved rounds of ${seconds}s, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
    "load average before $load_before, after $load_after"
echo
if [ "$measure" = bulk ]; then
    echo "| column | median $unit | ÷ docker-proxy | ÷ direct | machine CPU busy, % of one CPU | proxy CPU s per GB |"
    echo "|---|---:|---:|---:|---:|---:|"
else
    echo "| column | median $unit | ÷ docker-proxy | ÷ direct | machine CPU busy, % of one CPU | machine CPU µs per connection | proxy CPU µs per connection |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
fi
for column in "${columns[@]}"; do
    proxy_cpu="—"
    [ -z "${pid[$column]:-}" ] || proxy_cpu=$(median <<<"${own[$column]:-0}")
    extra=" $(median <<<"${busy[$column]:-0}") |"
    if [ "$measure" = bulk ]; then
        extra+=" $proxy_cpu |"
    else
        extra+=" $(median <<<"${per[$column]:-0}") | $proxy_cpu |"
    fi
    awk -v c="$column" -v m="${med[$column]}" -v d="${med[docker]}" -v r="${med[direct]}" -v x="$extra" \
        'BEGIN { printf "| %s | %s | %.2f | %.2f |%s\n", c, m, (d > 0 ? m / d : 0), (r > 0 ? m / r : 0), x }'
done
