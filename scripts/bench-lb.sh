#!/usr/bin/env bash
# Recording cost on a load balancer, side by side with `perf record -a` of the same
# tracepoints, in one run: haproxy in front of nginx on 127.0.0.1 (keepalived running
# in a namespace of its own), driven untraced, under `vmlat record --comm haproxy`,
# under `vmlat watch` of the same (and keepalived's interface, as it runs in the field:
# everything in memory, nothing written while no flap happens) and under perf, in
# alternation, ROUNDS times:
#   - at saturation: `wrk -t1 -c32 --latency`, requests/s and p99;
#   - at a fixed rate: `hey -c 32 -q RATE/32` (wrk has no fixed-rate mode; hey paces
#     each of its 32 workers with a ticker), p50, p99 and the share of CPU left idle
#     during the run (/proc/stat). RATE is half of what hey itself reaches untraced
#     without pacing (its Go client needs more CPU per request than wrk, so half of
#     wrk's rate would saturate the machine).
# perf gets vmlat's default ring, 4 MiB (1024 pages) per CPU: with its own default it
# loses records under this load. For each tracer: its CPU time until the load ends
# (perf's work after SIGINT, reading its file back, costs the load nothing), records,
# losses (watch: its /metrics loss counters; it writes no records while nothing
# happens), and the context switches of each of its threads (/proc/PID/task/*/status):
# voluntary ones count its wakeups, involuntary ones the times it was preempted.
# Installs nothing: needs haproxy, nginx, wrk, hey, keepalived, linux-perf, curl (see
# scripts/setup.sh). Needs root. Usage: scripts/bench-lb.sh [ROUNDS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-8}
for tool in haproxy nginx wrk hey keepalived perf curl; do
  command -v "$tool" >/dev/null || { echo "bench-lb: $tool is missing: run scripts/setup.sh" >&2; exit 1; }
done
source scripts/bench-common.sh
url=http://127.0.0.1:18000/
metrics=127.0.0.1:19100

cat >"$tmp/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx.log;
events { worker_connections 1024; }
http {
  access_log off;
  server { listen 127.0.0.1:18080; location / { return 200 "ok\n"; } }
}
EOF
cat >"$tmp/haproxy.cfg" <<EOF
global
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 10s
  timeout server 10s
frontend lb
  bind 127.0.0.1:18000
  default_backend web
backend web
  http-reuse always
  server nginx 127.0.0.1:18080
EOF
nginx -p "$tmp" -c "$tmp/nginx.conf"
haproxy -D -p "$tmp/haproxy.pid" -f "$tmp/haproxy.cfg"
start_keepalived
curl -sf "$url" >/dev/null 2>&1 || wrk -t1 -c1 -d1s "$url" | grep -q "Requests/sec" ||
  { echo "bench-lb: haproxy -> nginx does not answer" >&2; exit 1; }

to_ms() { # 1.23ms / 512.00us / 1.02s -> milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/) n *= 1000; printf "%.3f", n }'
}
# Saturation: "REQ_PER_S P99_MS".
saturate() {
  wrk -t1 -c32 -d"${secs}s" --latency "$url" >"$tmp/wrk.out"
  echo "$(awk '/^Requests\/sec/ {printf "%d", $2}' "$tmp/wrk.out") $(to_ms "$(awk '$1 == "99%" {print $2}' "$tmp/wrk.out")")"
}
cpu_idle_ticks() { awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }
# Fixed rate: "REQ_PER_S P50_MS P99_MS IDLE_%".
paced() {
  local before after
  before=$(cpu_idle_ticks)
  hey -z "${secs}s" -c 32 -q $((rate / 32)) "$url" >"$tmp/hey.out"
  after=$(cpu_idle_ticks)
  local idle
  idle=$(echo "$before $after" | awk '{printf "%.1f", 100 * ($3 - $1) / ($4 - $2)}')
  awk -v idle="$idle" '/Requests\/sec/ {r = $2} /50% in/ {p50 = $3 * 1000} /99% in/ {p99 = $3 * 1000}
    END {printf "%d %.3f %.3f %s\n", r, p50, p99, idle}' "$tmp/hey.out"
}
# Context switches of every thread of PID: "name:voluntary/involuntary ...".
switches() {
  local pid=$1 out=""
  for task in /proc/"$pid"/task/*; do
    out+="$(awk '/^Name:/ {n = $2} /^voluntary_ctxt/ {v = $2} /^nonvoluntary_ctxt/ {i = $2}
      END {printf "%s:%d/%d ", n, v, i}' "$task/status" 2>/dev/null)"
  done
  echo "$out"
}
# Runs LOAD (saturate or paced) under TRACER (none, vmlat or perf); prints the load's
# figures, then the tracer's CPU seconds, records, lost records and thread switches.
run() {
  local tracer=$1 load=$2
  if [ "$tracer" = none ]; then
    echo "$($load) - - - -"
    return
  fi
  rm -rf "$tmp/bundle" "$tmp/perf.data"
  case $tracer in
    vmlat) "$vmlat" record -o "$tmp/bundle" --comm haproxy >"$tmp/tracer.out" 2>&1 & ;;
    watch) "$vmlat" watch -o "$tmp/watch" -i "bench0@$ns" --comm haproxy \
      --metrics "$metrics" >"$tmp/tracer.out" 2>&1 & ;;
    perf) perf record -q -a -k mono -m 1024 -e "$events" \
      -e raw_syscalls:sys_enter --filter 'comm == "haproxy"' \
      -e raw_syscalls:sys_exit --filter 'comm == "haproxy"' \
      -o "$tmp/perf.data" >"$tmp/tracer.out" 2>&1 & ;;
  esac
  local pid=$!
  sleep 2 # its rings open before the load starts
  local figures; figures=$($load)
  local threads; threads=$(switches "$pid" | tr ' ' ',' | sed 's/,$//')
  local cpu; cpu=$(awk '{printf "%.2f", ($14 + $15) / '"$(getconf CLK_TCK)"'}' "/proc/$pid/stat")
  local scraped=""
  [ "$tracer" = watch ] && scraped=$(curl -sf "http://$metrics/metrics" || true)
  kill -INT "$pid"
  wait "$pid" || true
  local records lost
  if [ "$tracer" = watch ]; then
    records=-
    lost=$(echo "$scraped" | awk '/^vmlat_lost_total/ && !/late_records/ {s += $2} END {print s + 0}')
  elif [ "$tracer" = vmlat ]; then
    local inv; inv=$("$vmlat" inspect "$tmp/bundle" --json)
    records=$(echo "$inv" | python3 -c 'import json,sys; c=json.load(sys.stdin)["counts"]; print(sum(v for k,v in c.items() if k!="packets"))')
    lost=$(echo "$inv" | python3 -c 'import json,sys; print(sum(json.load(sys.stdin)["losses"].values()))')
  else
    perf report -i "$tmp/perf.data" --stats >"$tmp/stats" 2>/dev/null || true
    records=$(awk '/SAMPLE events:/ {print $3; exit}' "$tmp/stats")
    lost=$(awk '/LOST_SAMPLES events:|LOST events:/ {s += $3} END {print s + 0}' "$tmp/stats")
  fi
  echo "$figures $cpu $records $lost $threads"
}

echo "machine: $(nproc) CPUs, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "## Saturation: wrk -t1 -c32 -d${secs}s --latency"
printf '| %5s | %-6s | %9s | %7s | %8s | %9s | %6s | %s |\n' round tracer "req/s" "p99 ms" "CPU s" records lost "tracer threads voluntary/involuntary switches"
for round in $(seq "$rounds"); do
  for tracer in none vmlat watch perf; do
    read -r rps p99 cpu records lost threads < <(run "$tracer" saturate)
    echo "$tracer $rps $p99" >>"$tmp/saturation"
    printf '| %5s | %-6s | %9s | %7s | %8s | %9s | %6s | %s |\n' "$round" "$tracer" "$rps" "$p99" "$cpu" "$records" "$lost" "$threads"
  done
done
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
col() { awk -v t="$1" -v c="$2" '$1 == t {print $c}' "$3" | median; }
base_rps=$(col none 2 "$tmp/saturation")
echo
echo "medians: untraced $base_rps req/s p99 $(col none 3 "$tmp/saturation") ms;" \
  "vmlat $(col vmlat 2 "$tmp/saturation") req/s ($(awk -v a="$(col vmlat 2 "$tmp/saturation")" -v b="$base_rps" 'BEGIN {printf "%.2f", a / b}')x) p99 $(col vmlat 3 "$tmp/saturation") ms;" \
  "watch $(col watch 2 "$tmp/saturation") req/s ($(awk -v a="$(col watch 2 "$tmp/saturation")" -v b="$base_rps" 'BEGIN {printf "%.2f", a / b}')x) p99 $(col watch 3 "$tmp/saturation") ms;" \
  "perf $(col perf 2 "$tmp/saturation") req/s ($(awk -v a="$(col perf 2 "$tmp/saturation")" -v b="$base_rps" 'BEGIN {printf "%.2f", a / b}')x) p99 $(col perf 3 "$tmp/saturation") ms"

hey -z "${secs}s" -c 32 "$url" >"$tmp/hey.out"
hey_max=$(awk '/Requests\/sec/ {printf "%d", $2}' "$tmp/hey.out")
rate=$((hey_max / 2 / 32 * 32))
echo
echo "## Fixed rate: hey -z ${secs}s -c 32 -q $((rate / 32)) (${rate} req/s, half of hey's untraced ${hey_max} req/s)"
printf '| %5s | %-6s | %9s | %7s | %7s | %6s | %8s | %9s | %6s | %s |\n' round tracer "req/s" "p50 ms" "p99 ms" "idle %" "CPU s" records lost "tracer threads voluntary/involuntary switches"
for round in $(seq "$rounds"); do
  for tracer in none vmlat watch perf; do
    read -r rps p50 p99 idle cpu records lost threads < <(run "$tracer" paced)
    echo "$tracer $rps $p50 $p99 $idle" >>"$tmp/paced"
    printf '| %5s | %-6s | %9s | %7s | %7s | %6s | %8s | %9s | %6s | %s |\n' "$round" "$tracer" "$rps" "$p50" "$p99" "$idle" "$cpu" "$records" "$lost" "$threads"
  done
done
echo
for tracer in none vmlat watch perf; do
  echo "medians $tracer: p50 $(col "$tracer" 3 "$tmp/paced") ms, p99 $(col "$tracer" 4 "$tmp/paced") ms, idle $(col "$tracer" 5 "$tmp/paced") %"
done
