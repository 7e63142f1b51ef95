#!/usr/bin/env bash
# Recording cost, side by side with `perf record` of the same tracepoints, in one run:
# the same CPU-switching load runs untraced, under vmlat, and under perf; we report the
# load's throughput (what tracing costs the machine), the tracer's own CPU time, what
# it wrote and what it lost. Needs root. Usage: scripts/bench-record.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
cargo build --release -q
vmlat=$PWD/target/release/vmlat
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
events=sched:sched_switch,sched:sched_wakeup,sched:sched_wakeup_new,sched:sched_process_exec,sched:sched_process_exit,sched:sched_process_fork,signal:signal_generate,block:block_rq_issue,block:block_rq_complete

# The load: stress-ng context-switch stressors on every CPU; prints bogo ops/s.
load() {
  stress-ng --switch "$(nproc)" --timeout "${secs}s" --metrics-brief 2>&1 |
    awk '/switch/ && $NF ~ /^[0-9.]+$/ {v=$(NF-1)} END {print v}'
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

base=$(load)
read -r vmlat_ops vmlat_cpu < <(traced vmlat "$vmlat" record -o "$tmp/bundle" --comm keepalived --duration $((secs + 3)))
read -r perf_ops perf_cpu < <(traced perf perf record -q -a -k mono -e "$events" \
  -e raw_syscalls:sys_enter --filter 'comm == "keepalived"' \
  -e raw_syscalls:sys_exit --filter 'comm == "keepalived"' \
  -o "$tmp/perf.data" -- sleep $((secs + 3)))

inv=$("$vmlat" inspect "$tmp/bundle" --json)
vmlat_records=$(echo "$inv" | python3 -c 'import json,sys; c=json.load(sys.stdin)["counts"]; print(sum(v for k,v in c.items() if k!="packets"))')
vmlat_lost=$(echo "$inv" | python3 -c 'import json,sys; print(sum(json.load(sys.stdin)["losses"].values()))')
perf_records=$(perf report -i "$tmp/perf.data" --stats 2>/dev/null | awk '/SAMPLE events:/ {print $3; exit}')
perf_lost=$(perf report -i "$tmp/perf.data" --stats 2>/dev/null | awk '/LOST_SAMPLES events:|LOST events:/ {s += $3} END {print s + 0}')
vmlat_mb=$(du -sm "$tmp/bundle" | cut -f1)
perf_mb=$(du -sm "$tmp/perf.data" | cut -f1)

printf '| %-22s | %12s | %10s | %12s | %10s | %8s |\n' tracer "load ops/s" "tracer CPU s" records lost MiB
printf '| %-22s | %12s | %10s | %12s | %10s | %8s |\n' "none" "$base" - - - -
printf '| %-22s | %12s | %10s | %12s | %10s | %8s |\n' "vmlat record" "$vmlat_ops" "$vmlat_cpu" "$vmlat_records" "$vmlat_lost" "$vmlat_mb"
printf '| %-22s | %12s | %10s | %12s | %10s | %8s |\n' "perf record (same events)" "$perf_ops" "$perf_cpu" "$perf_records" "${perf_lost:-0}" "$perf_mb"
