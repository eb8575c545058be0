#!/usr/bin/env bash
# Writes dataplane/wharf-proxy.order, the functions wharf-proxy runs from exec
# until it sits idle, in the order they first run. The shipped (static) build
# hands the list to lld (--symbol-ordering-file, see dataplane/build.rs), which
# puts those functions first in .text. The kernel maps code 64 KiB at a time
# around each fault (fault-around), so start-up code scattered over .text keeps
# nearly all of it resident; packed together it is a few windows.
#
# How: build as shipped but with symbols; run one idle `-proto tcp` proxy (as
# root also one in a network namespace of its own) and then one `-proto udp`
# proxy under gdb with a one-shot breakpoint on every function, and record each
# function as its breakpoint fires (on this machine's CPU, so the string
# functions glibc's IFUNC resolvers pick here). The TCP proxy's functions come
# first, then those only the UDP proxy adds.
# Run it again after a change to the proxy's start-up path, glibc or the
# toolchain (Rust symbol names carry hashes that change with rustc and the
# dependencies' versions; names that no longer exist are ignored by lld).
#
# Usage: benches/proxy-startup-order.sh [SECONDS per proxy, default 10]
# Needs: gdb, binutils (nm, readelf), python3; as root, iproute2.
set -euo pipefail
cd "$(dirname "$0")/.."
idle=${1:-10}
for tool in gdb nm readelf python3; do
    command -v $tool >/dev/null || { echo "proxy-startup-order: needs $tool" >&2; exit 1; }
done
target=${CARGO_TARGET_DIR:-$PWD/target}
# The shipped build's symbol names (their hashes follow the profile, so not
# CARGO_PROFILE_PROXY_STRIP=false; RUSTFLAGS are not hashed), kept in the binary.
RUSTFLAGS="-C target-feature=+crt-static -C strip=none" \
    cargo build -q --profile proxy --target x86_64-unknown-linux-gnu -p dataplane --bin wharf-proxy
bin="$target/x86_64-unknown-linux-gnu/proxy/wharf-proxy"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/trace.py" <<'EOF'
# gdb script: one-shot breakpoint on every function; names appended to OUT as they fire.
import os, signal, subprocess, threading
import gdb

binary = gdb.current_progspace().filename
functions = {}
for line in subprocess.run(["nm", "-n", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    fields = line.split()
    if len(fields) == 3 and fields[1] in "tTwW":
        functions.setdefault(int(fields[0], 16), fields[2])
header = subprocess.run(["readelf", "-h", binary], capture_output=True, text=True, check=True).stdout
entry = int(header.split("Entry point address:")[1].split()[0], 16)
for setting in ("pagination off", "confirm off", "print thread-events off", "breakpoint always-inserted on"):
    gdb.execute("set " + setting)
gdb.execute("starti " + ARGS + " 3>/dev/null >/dev/null 2>&1")
base = int(gdb.parse_and_eval("$pc")) - entry  # stopped at the entry point
name_at = {}
for address, name in functions.items():
    bp = gdb.Breakpoint("*%#x" % (base + address), internal=True, temporary=True)
    bp.silent = True
    name_at[base + address] = name
out = open(OUT, "w")
out.write(name_at.get(base + entry, "_start") + "\n")

def on_stop(event):
    name = name_at.get(int(gdb.parse_and_eval("$pc")))
    if name:
        out.write(name + "\n")

gdb.events.stop.connect(on_stop)
pid = gdb.selected_inferior().pid
threading.Timer(IDLE, lambda: os.kill(pid, signal.SIGKILL)).start()
while gdb.selected_inferior().pid:
    try:
        gdb.execute("continue")
    except gdb.error:
        break
out.close()
EOF

trace() { # out [ip netns exec NS] args...
    local out=$1 in_ns=()
    shift
    [ "$1" != ip ] || { in_ns=("$1" "$2" "$3" "$4"); shift 4; }
    "${in_ns[@]}" gdb -q -batch -ex "python ARGS='$*'; OUT='$out'; IDLE=$idle" -x "$tmp/trace.py" "$bin" >"$tmp/gdb.log" 2>&1 || true
    [ -s "$out" ] || { echo "proxy-startup-order: gdb recorded nothing" >&2; cat "$tmp/gdb.log" >&2; exit 1; }
}
port=$((20000 + RANDOM % 20000))
trace "$tmp/tcp" -proto tcp -host-ip 127.0.0.1 -host-port $port -container-ip 127.0.0.1 -container-port $((port + 1))
# In a network namespace of its own (as the tests and proxy-compare.sh run it),
# `ip netns exec` leaves /sys/fs/cgroup empty and std's CPU-quota lookup takes
# another path.
ns_trace=()
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
    ns="wporder$$"
    ip netns add $ns && trap 'rm -rf "$tmp"; ip netns del $ns 2>/dev/null || true' EXIT
    ip -n $ns link set lo up
    trace "$tmp/tcp-ns" ip netns exec $ns -proto tcp -host-ip 127.0.0.1 -host-port $port -container-ip 127.0.0.1 \
        -container-port $((port + 1))
    ns_trace=("$tmp/tcp-ns")
else
    echo "proxy-startup-order: not root, so no run in a network namespace of its own" >&2
fi
trace "$tmp/udp" -proto udp -host-ip 127.0.0.1 -host-port $port -container-ip 127.0.0.1 -container-port $((port + 1))
{
    echo "# wharf-proxy's start-up and idle functions, first run first (benches/proxy-startup-order.sh,"
    echo "# $(rustc --version), $(ldd --version | head -1), $(date -u +%Y-%m-%d))."
    cat "$tmp/tcp" "${ns_trace[@]}" "$tmp/udp"
} | awk '!seen[$0]++' >dataplane/wharf-proxy.order
echo "proxy-startup-order: $(grep -vc '^#' dataplane/wharf-proxy.order) functions in dataplane/wharf-proxy.order" >&2
