#!/usr/bin/env python3
"""Prints the README's benchmark tables from criterion's results.

Run `cargo bench -p benches --bench wire` first; this reads
target/criterion/<group>/<bench>/new/estimates.json and prints, for each
group, the mean time of every bench and its ratio to wharf's (or to the full
checksum, for the checksum group), with today's date.
"""

import datetime
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "criterion")

GROUPS = [
    ("parse_vxlan_tcp", "wharf", ["wharf", "etherparse", "pnet_packet"]),
    ("checksum", "incremental_32bit", ["incremental_32bit", "full_ipv4_header", "full_tcp_1460"]),
]


def mean_ns(group, bench):
    """The time per iteration criterion prints: the slope of its linear
    sampling where it has one, else the mean."""
    path = os.path.join(ROOT, group, bench, "new", "estimates.json")
    with open(path) as f:
        estimates = json.load(f)
    estimate = estimates.get("slope") or estimates["mean"]
    return estimate["point_estimate"], estimate["confidence_interval"]


def main():
    print(f"Measured {datetime.date.today().isoformat()} on this project's 2-core machine "
          "(`cargo bench -p benches --bench wire`).\n")
    for group, base, benches in GROUPS:
        try:
            base_ns, _ = mean_ns(group, base)
        except FileNotFoundError:
            print(f"no results for {group}: run the bench first", file=sys.stderr)
            return 1
        print(f"| {group} | time | 95% CI | × {base} |")
        print("|---|---:|---:|---:|")
        for bench in benches:
            ns, ci = mean_ns(group, bench)
            print(f"| {bench} | {ns:.2f} ns | {ci['lower_bound']:.2f}–{ci['upper_bound']:.2f} ns | {ns / base_ns:.2f} |")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
