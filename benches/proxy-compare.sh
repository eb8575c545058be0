#!/usr/bin/env bash
# Port forwarding, side by side in one run: direct (no proxy), Docker's
# docker-proxy and wharf-proxy, each forwarding 127.0.0.1:PORT in a "host"
# namespace to a server in a "container" namespace across a veth pair.
# Measures TCP bulk throughput (iperf3, 1 and 4 streams), short TCP
# connections per second with p50/p99 exchange time, UDP datagrams per second
# delivered (64 and 1400 bytes, 1 and 64 flows), the RSS of one idle proxy, and
# the RSS and process count of a 1,000-port range. Prints a markdown table
# with the ratios the goals are stated in.
#
# Usage (as root): benches/proxy-compare.sh [--quick] [--wharf-args "FLAGS"] [--udp-send gso|mmsg]
#   --quick               a short smoke run (seconds per test, a 100-port range)
#   --wharf-args "FLAGS"  extra flags for every wharf-proxy, e.g. "-tcp-relay copy"
#   --udp-send gso|mmsg   how the UDP client sends (default gso: 64 datagrams per
#                         call, cut by the kernel, so that the client is not what
#                         is measured; a proxy with UDP_GRO on receives them
#                         coalesced, so compare with mmsg: one datagram each)
# Environment: WHARF_PROXY (default: built here as shipped, static, with the
# `proxy` profile: target/x86_64-unknown-linux-gnu/proxy/wharf-proxy),
# DOCKER_PROXY (default: docker-proxy on PATH or /usr/sbin/docker-proxy).
# Needs: iproute2, iperf3, python3, docker.io (installed with apt-get if
# missing), and cargo (it builds the load tool, benches/src/bin/proxy-load.rs,
# and wharf-proxy). Everything lives in two namespaces the script creates
# (198.51.100.0/24) and is removed on exit.
set -euo pipefail
caller_dir=$PWD
cd "$(dirname "$0")/.."
# shellcheck source=benches/proxy-topology.sh
. benches/proxy-topology.sh

usage() {
    cat <<'EOF'
usage: benches/proxy-compare.sh [--quick] [--wharf-args "FLAGS"] [--udp-send gso|mmsg]
  --quick               a short smoke run (seconds per test, a 100-port range)
  --wharf-args "FLAGS"  extra flags for every wharf-proxy, e.g. "-tcp-relay copy"
  --udp-send gso|mmsg   how the UDP client sends: GSO messages of up to 64
                        datagrams (default), or sendmmsg of single datagrams
EOF
}
quick=0
wharf_args=""
udp_send=gso
while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1 ;;
        --wharf-args) [ $# -ge 2 ] || { usage >&2; exit 2; }; wharf_args=$2; shift ;;
        --wharf-args=*) wharf_args=${1#*=} ;;
        --udp-send) [ $# -ge 2 ] || { usage >&2; exit 2; }; udp_send=$2; shift ;;
        --udp-send=*) udp_send=${1#*=} ;;
        -h | --help) usage; exit 0 ;;
        *) echo "proxy-compare: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
case $udp_send in gso | mmsg) ;; *) echo "proxy-compare: --udp-send takes gso or mmsg" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "proxy-compare: run as root (it creates network namespaces)" >&2; exit 1; }

if [ $quick = 1 ]; then
    bulk_s=2 conn_s=2 udp_s=1 range=100
else
    bulk_s=10 conn_s=8 udp_s=5 range=1000
fi
workers=32

log() { echo "$*" >&2; }
plural() { if [ "$1" = 1 ]; then echo "$1 $2"; else echo "$1 ${2}s"; fi; }

# --- tools
# A path given in the environment is taken from where the script was started.
docker_proxy=$(absolute "${DOCKER_PROXY:-$(command -v docker-proxy || echo /usr/sbin/docker-proxy)}")
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v iperf3 >/dev/null || missing+=(iperf3)
command -v python3 >/dev/null || missing+=(python3)
[ -x "$docker_proxy" ] || missing+=(docker.io)
if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
        { apt-get update -q >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
    [ -x "$docker_proxy" ] || docker_proxy=/usr/sbin/docker-proxy
fi

target=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -q -p benches --bin proxy-load
load="$target/release/proxy-load"
if [ -n "${WHARF_PROXY:-}" ]; then
    wharf=$(absolute "$WHARF_PROXY")
else
    wharf=$(shipped_wharf_proxy)
fi
[ -z "$wharf" ] || [ -x "$wharf" ] || { log "proxy-compare: $wharf is not an executable"; exit 1; }
kinds=(direct docker)
[ -z "$wharf" ] || kinds+=(wharf)

# wharf-proxy holds a listener per port of the range; docker sets a high limit too.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# --- namespaces: host (client, proxies) and container (servers), one veth
proxy_topology "wp$$"

server=198.51.100.2
# container ports, and each kind's host port for them
iperf_port=5201 rr_port=7000 udp_port=7001
declare -A bulk_at=([direct]=$server:$iperf_port [docker]=127.0.0.1:10001 [wharf]=127.0.0.1:11001)
declare -A rr_at=([direct]=$server:$rr_port [docker]=127.0.0.1:10002 [wharf]=127.0.0.1:11002)
declare -A udp_at=([direct]=$server:$udp_port [docker]=127.0.0.1:10003 [wharf]=127.0.0.1:11003)


ip netns exec "$cns" iperf3 -s -B "$server" -p $iperf_port >"$root/iperf3.log" 2>&1 &
ip netns exec "$cns" "$load" tcp-serve --listen "$server:$rr_port" 2>"$root/tcp-serve.log" &
wait_for "$root/tcp-serve.log" listening $! || { cat "$root/tcp-serve.log" >&2; exit 1; }

# Starts a proxy in the host namespace and waits for it to report on fd 3
# (both proxies write "0\n" once listening, "1\n<why>" on failure).
# Usage: start_proxy NAME BINARY ARGS...; sets pid_of[NAME].
declare -A pid_of
start_proxy() {
    local name=$1 bin=$2
    shift 2
    ip netns exec "$hns" "$bin" "$@" 3>"$root/$name.ready" >"$root/$name.log" 2>&1 &
    pid_of[$name]=$!
    if ! wait_for "$root/$name.ready" '^0' $!; then
        log "proxy-compare: $name ($bin $*) did not start:"
        cat "$root/$name.ready" "$root/$name.log" >&2
        return 1
    fi
}

legacy() { # proto host-port container-port
    echo -proto "$1" -host-ip 127.0.0.1 -host-port "$2" -container-ip $server -container-port "$3"
}
for kind in "${kinds[@]}"; do
    [ "$kind" = direct ] && continue
    bin=$docker_proxy extra=""
    [ "$kind" = wharf ] && bin=$wharf extra=$wharf_args
    # shellcheck disable=SC2046,SC2086 # word splitting wanted: flag lists
    {
        start_proxy "$kind-bulk" "$bin" $(legacy tcp "${bulk_at[$kind]#*:}" $iperf_port) $extra || exit 1
        start_proxy "$kind-rr" "$bin" $(legacy tcp "${rr_at[$kind]#*:}" $rr_port) $extra || exit 1
        start_proxy "$kind-udp" "$bin" $(legacy udp "${udp_at[$kind]#*:}" $udp_port) $extra || exit 1
    }
done

# Our processes are the ones in our namespaces (a pid that ended may be reused).
ours() { [ "$(ip netns identify "$1" 2>/dev/null)" = "$hns" ]; }
rss_kib() { ! ours "$1" || awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
threads_of() { ! ours "$1" || awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }

# Results: res[measure,kind]; "" = not measured, "fail" = failed.
declare -A res
failed=0
record() { # measure kind value ("" or "-": failed)
    if [ -z "$3" ] || [ "$3" = - ]; then
        res[$1,$2]=fail
        failed=1
    else
        res[$1,$2]=$3
    fi
}
field() { # key < "k=v k=v ..."
    awk -v k="$1" '{ for (i = 1; i <= NF; i++) { n = index($i, "="); if (substr($i, 1, n - 1) == k) print substr($i, n + 1) } }'
}

sleep 1 # let the proxies settle before reading idle RSS
for kind in "${kinds[@]}"; do
    [ "$kind" = direct ] && continue
    record idle_rss "$kind" "$(rss_kib "${pid_of[$kind-rr]}")"
done

# --- 1. TCP bulk
bulk() { # kind streams -> Gbit/s
    local addr=${bulk_at[$1]}
    ip netns exec "$hns" timeout $((bulk_s + 30)) iperf3 -c "${addr%:*}" -p "${addr#*:}" -t $bulk_s -P "$2" -J 2>/dev/null |
        python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))' \
            2>/dev/null || true
}
for streams in 1 4; do
    for kind in "${kinds[@]}"; do
        record "bulk$streams" "$kind" "$(bulk "$kind" $streams)"
        log "TCP bulk, $(plural $streams stream), $kind: ${res[bulk$streams,$kind]} Gbit/s"
        sleep 0.5
    done
done

# --- 2. short connections
for kind in "${kinds[@]}"; do
    out=$(ip netns exec "$hns" timeout $((conn_s + 30)) "$load" tcp-rate --to "${rr_at[$kind]}" --workers $workers \
        --seconds $conn_s 2>"$root/tcp-rate.log" || true)
    [ -s "$root/tcp-rate.log" ] && cat "$root/tcp-rate.log" >&2
    record conns "$kind" "$(field conns_per_s <<<"$out")"
    record p50 "$kind" "$(field p50_us <<<"$out")"
    record p99 "$kind" "$(field p99_us <<<"$out")"
    if [ "${res[conns,$kind]}" != fail ] && [ "$(field errors <<<"$out")" != 0 ]; then
        failed=1
    fi
    log "short connections, $kind: $out"
done

# --- 3. UDP
udp() { # kind size flows -> datagrams/s delivered
    ip netns exec "$cns" timeout $((udp_s + 60)) "$load" udp-sink --bind "$server:$udp_port" --wait-s 20 \
        >"$root/sink.out" 2>"$root/sink.log" &
    local sink=$!
    wait_for "$root/sink.log" listening $sink || { cat "$root/sink.log" >&2; return; }
    ip netns exec "$hns" timeout $((udp_s + 30)) "$load" udp-send --to "${udp_at[$1]}" --size "$2" --flows "$3" \
        --seconds $udp_s --send "$udp_send" >"$root/send.out" || true
    wait $sink || true
    log "UDP $2 B, $(plural "$3" flow), $1: $(cat "$root/sink.out") ($(field sent_per_s <"$root/send.out") sent/s)"
    field dgram_per_s <"$root/sink.out"
}
for size in 64 1400; do
    for flows in 1 64; do
        for kind in "${kinds[@]}"; do
            record "udp${size}x$flows" "$kind" "$(udp "$kind" $size $flows)"
        done
    done
done

for kind in "${kinds[@]}"; do
    [ "$kind" = direct ] && continue
    record busy_rss "$kind" "$(rss_kib "${pid_of[$kind-rr]}")"
done

# --- 4. a port range: docker-proxy runs one process per port, wharf-proxy one for all
lo_port=20000
hi_port=$((lo_port + range - 1))
listeners() { ip netns exec "$hns" ss -Hltn "sport >= :$lo_port and sport <= :$hi_port" | wc -l; }
range_sum() { # pid... (running, ours) -> "rss-KiB threads processes"
    local pid rss=0 threads=0 n=0
    for pid in "$@"; do
        [ -r "/proc/$pid/status" ] || continue
        rss=$((rss + $(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")))
        threads=$((threads + $(awk '/^Threads:/ { print $2 }' "/proc/$pid/status")))
        n=$((n + 1))
    done
    if [ $n = 0 ]; then echo "- - -"; else echo "$rss $threads $n"; fi
}

{
    log "starting $range docker-proxy processes for ports $lo_port-$hi_port"
    mkdir "$root/range"
    # One shell in the namespace starts them all and reaps them.
    # shellcheck disable=SC2016 # expanded by the inner shell
    ip netns exec "$hns" bash -c '
        for p in $(seq "$2" "$3"); do
            "$1" -proto tcp -host-ip 127.0.0.1 -host-port $p -container-ip "$4" -container-port $p \
                3>"$5/range/$p" </dev/null >/dev/null 2>&1 &
            echo $! >>"$5/docker-range.pids"
        done
        wait' range "$docker_proxy" $lo_port $hi_port $server "$root" &
    spawner=$!
    up=0
    for _ in $(seq 600); do
        up=$(cat "$root"/range/* 2>/dev/null | grep -c '^0' || true)
        [ "$up" -ge "$range" ] && break
        grep -q '^1' "$root"/range/* 2>/dev/null && break
        sleep 0.2
    done
    if [ "$up" -lt "$range" ]; then
        log "proxy-compare: only $up of $range docker-proxy processes started"
        grep -h -A1 '^1' "$root"/range/* 2>/dev/null | head -3 >&2 || true
        failed=1
    fi
    sleep 1
    # The ones still running: in our namespace and in the spawner's list.
    declare -A spawned
    while read -r pid; do spawned[$pid]=1; done <"$root/docker-range.pids"
    range_pids=()
    for pid in $(ip netns pids "$hns"); do [ -z "${spawned[$pid]:-}" ] || range_pids+=("$pid"); done
    read -r rss threads n <<<"$(range_sum "${range_pids[@]}")"
    record range_rss docker "$rss"
    record range_procs docker "$n"
    record range_threads docker "$threads"
    record range_listen docker "$(listeners)"
    log "docker-proxy range: listeners=${res[range_listen,docker]} processes=$n threads=$threads rss=${rss}KiB"
    kill "${range_pids[@]}" 2>/dev/null || true
    wait $spawner 2>/dev/null || true
}
# shellcheck disable=SC2086 # $wharf_args is a list of flags
if [ -z "$wharf" ]; then
    :
elif start_proxy wharf-range "$wharf" -map "tcp:127.0.0.1:$lo_port-$hi_port:$server:$lo_port-$hi_port" $wharf_args; then
    sleep 1
    ours "${pid_of[wharf-range]}" && pid=${pid_of[wharf-range]} || pid=none
    read -r rss threads n <<<"$(range_sum "$pid")"
    record range_rss wharf "$rss"
    record range_procs wharf "$n"
    record range_threads wharf "$threads"
    record range_listen wharf "$(listeners)"
    log "wharf-proxy range: listeners=${res[range_listen,wharf]} processes=$n threads=$threads rss=${rss}KiB"
else
    for m in range_rss range_procs range_threads range_listen; do record $m wharf ""; done
fi

# --- the table
value() { # measure kind scale decimals
    local v=${res[$1,$2]:-}
    case $v in
        "") echo "—" ;;
        fail) echo "failed" ;;
        *) awk -v v="$v" -v s="$3" -v d="$4" 'BEGIN { printf "%.*f", d, v / s }' ;;
    esac
}
ratio() { # measure numerator-kind denominator-kind
    local a=${res[$1,$2]:-} b=${res[$1,$3]:-}
    if [[ $a =~ ^[0-9.]+$ && $b =~ ^[0-9.]+$ ]] && awk -v b="$b" 'BEGIN { exit !(b > 0) }'; then
        awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }'
    else
        echo "—"
    fi
}
check() { # ratio-or-value op bound label -> "label ✓|✗"
    if [[ $1 =~ ^[0-9.]+$ ]]; then
        if awk -v x="$1" -v b="$3" "BEGIN { exit !(x $2 b) }"; then echo "$4 ✓"; else echo "$4 ✗"; fi
    else
        echo "$4"
    fi
}
row() { # label measure scale decimals goal [no-ratios]
    local by_direct by_docker
    by_direct=$(ratio "$2" wharf direct) by_docker=$(ratio "$2" wharf docker)
    [ -z "${6:-}" ] || by_direct="—" by_docker="—"
    echo "| $1 | $(value "$2" direct "$3" "$4") | $(value "$2" docker "$3" "$4") | $(value "$2" wharf "$3" "$4") |" \
        "$by_direct | $by_docker | $5 |"
}

echo "Port forwarding, direct vs docker-proxy vs wharf-proxy, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "($(nproc) cores, kernel $(uname -r); docker-proxy $(dpkg-query -W -f '${Version}' docker.io 2>/dev/null || echo "$docker_proxy");" \
    "wharf-proxy ${wharf:-not built}${wharf_args:+ $wharf_args}; iperf3 ${bulk_s}s, $workers connection workers ${conn_s}s, UDP ${udp_s}s, client sends with $udp_send)"
echo
echo "| measure | direct | docker-proxy | wharf-proxy | wharf ÷ direct | wharf ÷ docker-proxy | goal |"
echo "|---|---:|---:|---:|---:|---:|---|"
for s in 1 4; do
    row "TCP bulk, $(plural $s stream), Gbit/s" "bulk$s" 1 2 "$(check "$(ratio "bulk$s" wharf direct)" '>=' 0.95 '÷ direct ≥ 0.95')"
done
row "short connections/s" conns 1 0 "$(check "$(ratio conns wharf docker)" '>=' 1.5 '÷ docker-proxy ≥ 1.5'),\
 $(check "$(ratio conns wharf direct)" '>=' 0.85 '÷ direct ≥ 0.85')"
row "exchange time p50, µs" p50 1 0 ""
row "exchange time p99, µs" p99 1 0 ""
for size in 64 1400; do
    for flows in 1 64; do
        row "UDP $size B, $(plural $flows flow), datagrams/s" "udp${size}x$flows" 1 0 \
            "$(check "$(ratio "udp${size}x$flows" wharf docker)" '>=' 3 '÷ docker-proxy ≥ 3')"
    done
done
row "RSS of one idle proxy, MiB" idle_rss 1024 1 "$(check "$(ratio idle_rss wharf docker)" '<=' 0.3334 '÷ docker-proxy ≤ 1/3')"
row "RSS after the runs above, MiB" busy_rss 1024 1 ""
row "$range-port range: total RSS, MiB" range_rss 1024 1 \
    "$(check "$(value range_rss wharf 1024 1)" '<=' 50 'wharf ≤ 50 MiB')"
row "$range-port range: processes" range_procs 1 0 "" no-ratios
row "$range-port range: threads" range_threads 1 0 "" no-ratios
row "$range-port range: listening sockets" range_listen 1 0 "" no-ratios
if [ $failed = 1 ]; then
    log "proxy-compare: some measurements failed (see above)"
    exit 1
fi
