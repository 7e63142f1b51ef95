#!/usr/bin/env bash
# Peak memory of `vmlat analyze` against input length and incident count: three kinds
# of generated guest bundle (analyzer/examples/throughput.rs), each at two sizes:
#   - quiet: keepalived advertising every second, no silence at all;
#   - storm: keepalived stopped every other second, a gap every 2 s (the gaps touch,
#     so they make one incident as long as the storm);
#   - flaps: keepalived stopped for 2 s every 6 s, a separate incident every 6 s;
#   - silence: keepalived stopped once, for half the recording.
# Each bundle has SWITCHES context switches (with their wakeups) per second on each of
# 2 CPUs. Peak RSS and wall time come from /usr/bin/time -v. Memory that stays flat
# from the smaller to the larger size of a kind does not grow with the input.
# Usage: scripts/bench-analyze-memory.sh [SWITCHES]   (default 500; takes a few GiB of /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
switches=${1:-500}
cargo build --release -q --bin vmlat
cargo build --release -q -p vmlat-analyzer --example throughput
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name, seconds, every, stop (throughput generate-bundle's arguments)
inputs=(
  "quiet-1h 3600 1000000 1"
  "quiet-4h 14400 1000000 1"
  "storm-30min 1800 2 1"
  "storm-1h 3600 2 1"
  "flaps-15min 900 6 2"
  "flaps-30min 1800 6 2"
  "silence-30min 3600 3600 1800"
  "silence-1h 7200 7200 3600"
)
printf '| %-14s | %10s | %10s | %9s | %8s | %12s |\n' input events incidents "wall s" "MiB peak" "events/s"
for input in "${inputs[@]}"; do
  read -r name seconds every stop <<<"$input"
  target/release/examples/throughput generate-bundle "$tmp/$name" "$seconds" "$switches" "$every" "$stop" >/dev/null
  /usr/bin/time -v -o "$tmp/time" target/release/vmlat analyze --json "$tmp/$name" >"$tmp/out.json"
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$tmp/time")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$tmp/time")
  read -r events incidents < <(python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); print(sum(b["events"] for b in a["bundles"]), len(a["incidents"]))' "$tmp/out.json")
  printf '| %-14s | %10s | %10s | %9s | %8s | %12s |\n' "$name" "$events" "$incidents" "$wall" "$rss" \
    "$(awk -v e="$events" -v w="$wall" 'BEGIN {printf "%.0f", e / w}')"
  rm -rf "$tmp/$name"
done
