#!/usr/bin/env bash
# What leaving `vmlat watch` on costs, side by side with `vmlat record` and `perf record`
# of the same tracepoints, in one run: on an idle lab (keepalived master in a namespace
# of its own, advertising every second, its interface captured by vmlat), and under a
# context-switch storm (stress-ng --switch on every CPU) beside it. For each: the load's
# throughput (what tracing costs the machine), the tracer's own CPU time and peak
# resident memory, and what it wrote. Needs root, keepalived, stress-ng and linux-perf.
# Usage: scripts/bench-watch.sh [SECONDS]
set -euo pipefail
secs=${1:-20}
source "$(dirname "$0")/bench-common.sh"
start_keepalived
sleep 3 # master, advertising

# The load for one case: nothing (idle), or the switch storm; prints bogo ops/s.
load() {
  if [ "$1" = idle ]; then
    sleep "$secs"
    echo -
  else
    stress-ng --switch "$(nproc)" --timeout "${secs}s" --metrics-brief 2>&1 |
      awk '/switch/ && $NF ~ /^[0-9.]+$/ {v=$(NF-1)} END {print v}'
  fi
}

# Runs a tracer (stopped by SIGTERM after the load) around one load; prints the load's
# ops/s, the tracer's user+sys seconds and its peak RSS in MiB.
traced() {
  local case=$1 name=$2; shift 2
  /usr/bin/time -f "%U %S %M" -o "$tmp/$name.time" \
    timeout -s TERM $((secs + 3)) "$@" >"$tmp/$name.out" 2>&1 &
  local pid=$!
  sleep 2 # let it open its rings before the load starts
  local ops; ops=$(load "$case")
  wait $pid || true
  # The last line: timeout exits 124 after its SIGTERM, which time says first.
  echo "$ops $(tail -1 "$tmp/$name.time" | awk '{printf "%.2f %.0f", $1 + $2, $3 / 1024}')"
}

printf '| %-6s | %-26s | %12s | %12s | %12s | %10s |\n' load tracer "load ops/s" "tracer CPU s" "peak RSS MiB" "MiB written"
for case in idle storm; do
  printf '| %-6s | %-26s | %12s | %12s | %12s | %10s |\n' "$case" none "$(load "$case")" - - -
  read -r ops cpu rss < <(traced "$case" watch "$vmlat" watch -o "$tmp/watch-$case" -i "bench0@$ns" --comm keepalived)
  printf '| %-6s | %-26s | %12s | %12s | %12s | %10s |\n' "$case" "vmlat watch" "$ops" "$cpu" "$rss" "$(du -sm "$tmp/watch-$case" | cut -f1)"
  read -r ops cpu rss < <(traced "$case" record "$vmlat" record -o "$tmp/record-$case" -i "bench0@$ns" --comm keepalived)
  printf '| %-6s | %-26s | %12s | %12s | %12s | %10s |\n' "$case" "vmlat record" "$ops" "$cpu" "$rss" "$(du -sm "$tmp/record-$case" | cut -f1)"
  read -r ops cpu rss < <(traced "$case" perf perf record -q -a -k mono -m 1024 -e "$events" \
    -e raw_syscalls:sys_enter --filter 'comm == "keepalived"' \
    -e raw_syscalls:sys_exit --filter 'comm == "keepalived"' \
    -o "$tmp/perf-$case.data")
  printf '| %-6s | %-26s | %12s | %12s | %12s | %10s |\n' "$case" "perf record (same events)" "$ops" "$cpu" "$rss" "$(du -sm "$tmp/perf-$case.data" | cut -f1)"
done
