#!/usr/bin/env bash
# Recording cost, side by side with `perf record` of the same tracepoints (and the same
# 4 MiB ring per CPU), in one run: each load runs untraced, under vmlat, and under perf;
# we report the load's throughput (what tracing costs the machine), the tracer's own
# CPU time (perf's includes reading its file back after the load), what it wrote and
# what it lost. Needs root. Usage: scripts/bench-record.sh [SECONDS]
set -euo pipefail
secs=${1:-10}
source "$(dirname "$0")/bench-common.sh"

# Two storms, each run untraced, under vmlat and under perf:
# - switch: `stress-ng --switch` on every CPU, a context-switch storm that makes every
#   CPU emit sched events as fast as it can; syscalls are recorded for keepalived only;
# - syscall: `stress-ng --null` on every CPU (writes to /dev/null as fast as it can),
#   whose syscalls are the ones recorded (`--comm stress-ng-null`).

# The load: stress-ng's STRESSOR on every CPU; prints bogo ops/s.
load() {
  stress-ng --"$stressor" "$(nproc)" --timeout "${secs}s" --metrics-brief 2>&1 |
    awk -v s="$stressor" '$0 ~ s && $NF ~ /^[0-9.]+$/ {v=$(NF-1)} END {print v}'
}

# Runs a tracer in the background for the load's duration; prints user+sys seconds.
traced() {
  local name=$1; shift
  /usr/bin/time -f "%U %S" -o "$tmp/$name.time" "$@" >"$tmp/$name.out" 2>&1 &
  local pid=$!
  sleep 2 # let it open its rings before the load starts
  local ops; ops=$(load)
  wait $pid || true
  echo "$ops $(awk '{print $1 + $2}' "$tmp/$name.time")"
}

printf '| %-8s | %-26s | %12s | %12s | %12s | %10s | %8s |\n' storm tracer "load ops/s" "tracer CPU s" records lost MiB
for storm in "switch keepalived" "null stress-ng-null"; do
  read -r stressor comm <<<"$storm"
  rm -rf "$tmp/bundle" "$tmp/perf.data"
  base=$(load)
  read -r vmlat_ops vmlat_cpu < <(traced vmlat "$vmlat" record -o "$tmp/bundle" --comm "$comm" --duration $((secs + 3)))
  read -r perf_ops perf_cpu < <(traced perf perf record -q -a -k mono -m 1024 -e "$events" \
    -e raw_syscalls:sys_enter --filter "comm == \"$comm\"" \
    -e raw_syscalls:sys_exit --filter "comm == \"$comm\"" \
    -o "$tmp/perf.data" -- sleep $((secs + 3)))

  inv=$("$vmlat" inspect "$tmp/bundle" --json)
  vmlat_records=$(echo "$inv" | python3 -c 'import json,sys; c=json.load(sys.stdin)["counts"]; print(sum(v for k,v in c.items() if k!="packets"))')
  # The total, and which counters it came from (perf_lost: a ring overflowed).
  vmlat_lost=$(echo "$inv" | python3 -c 'import json,sys; l={k:v for k,v in json.load(sys.stdin)["losses"].items() if v}; print(f"{sum(l.values())} ({chr(44).join(l)})" if l else 0)')
  perf report -i "$tmp/perf.data" --stats >"$tmp/stats" 2>/dev/null || true
  perf_records=$(awk '/SAMPLE events:/ {print $3; exit}' "$tmp/stats")
  perf_lost=$(awk '/LOST_SAMPLES events:|LOST events:/ {s += $3} END {print s + 0}' "$tmp/stats")
  vmlat_mb=$(du -sm "$tmp/bundle" | cut -f1)
  perf_mb=$(du -sm "$tmp/perf.data" | cut -f1)

  printf '| %-8s | %-26s | %12s | %12s | %12s | %10s | %8s |\n' "$stressor" "none" "$base" - - - -
  printf '| %-8s | %-26s | %12s | %12s | %12s | %10s | %8s |\n' "$stressor" "vmlat record" "$vmlat_ops" "$vmlat_cpu" "$vmlat_records" "$vmlat_lost" "$vmlat_mb"
  printf '| %-8s | %-26s | %12s | %12s | %12s | %10s | %8s |\n' "$stressor" "perf record (same events)" "$perf_ops" "$perf_cpu" "$perf_records" "${perf_lost:-0}" "$perf_mb"
done
