# shellcheck shell=bash
# Sourced by the side-by-side scripts that take turns for several rounds
# (proxy-rounds.sh, vtep-compare.sh, nat-compare.sh).
# Usage: median <<<"NUMBERS"  — the median of numbers separated by spaces or
# newlines (the mean of the middle two for an even count).
median() {
    tr ' ' '\n' | grep . | sort -g |
        awk '{ v[NR] = $1 } END { printf "%.10g\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
