#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 300) each, JOBS at a time
# (default: the number of cores), on the stable toolchain with no sanitizer,
# starting from the seed corpus. Logs go to fuzz/logs/<target>.log; the last
# lines print each target's execution count. A crash stops that target and
# leaves its input under fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-300}
jobs=${2:-$(nproc)}
python3 make-corpus.py >/dev/null
cargo fuzz build -s none
mkdir -p logs
cargo fuzz list | xargs -P "$jobs" -I{} sh -c \
    "cargo fuzz run {} -s none -- -max_total_time=$seconds -print_final_stats=1 > logs/{}.log 2>&1; echo \"{}: exit \$?\""
for target in $(cargo fuzz list); do
    runs=$(grep -m1 'stat::number_of_executed_units' "logs/$target.log" | awk '{print $2}')
    echo "$target: ${runs:-?} executions in ${seconds}s"
done
