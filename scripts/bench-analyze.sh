#!/usr/bin/env bash
# Analysis speed, side by side with tcpdump (and tshark, if installed) reading the same
# generated capture in one run, the tools taking turns, ROUNDS times; medians and
# ratios at the end. tcpdump only decodes and prints; vmlat also builds the streams,
# histograms, gaps and failovers.
#   scripts/bench-analyze.sh [PACKETS] [ROUNDS]      default 1000000 packets, 3 rounds
#   scripts/bench-analyze.sh --guard                 CI's regression guard (see below)
set -euo pipefail
cd "$(dirname "$0")/.."
guard=false
if [ "${1:-}" = --guard ]; then
  # A gross regression only: vmlat, 2-4 times faster than tcpdump today, fails when
  # it takes more than 1.5 times tcpdump's time on the same file in the same job (best
  # of 3 each, so that a neighbour's burst of load does not decide it).
  guard=true
  set -- 500000 3
fi
packets=${1:-1000000}
rounds=${2:-3}
cargo build --release -q --bin vmlat
cargo build --release -q -p vmlat-analyzer --example throughput
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
target/release/examples/throughput generate "$tmp/big.pcap" "$packets" >/dev/null
echo "capture: $(du -h "$tmp/big.pcap" | cut -f1), $packets heartbeats (+10% ARP); load average $(cut -d' ' -f1-3 /proc/loadavg)"

tools=("vmlat analyze --json" "tcpdump -r -ttt -nn")
command -v tshark >/dev/null && ! $guard && tools+=("tshark -r -n -Y vrrp")
run() { # tool name: wall seconds and peak KiB of one run, output discarded
  case $1 in
    vmlat*) set -- target/release/vmlat analyze --json "$tmp/big.pcap" ;;
    tcpdump*) set -- tcpdump -r "$tmp/big.pcap" -ttt -nn ;;
    tshark*) set -- tshark -r "$tmp/big.pcap" -n -Y vrrp ;;
  esac
  /usr/bin/time -f "%e %M" -o "$tmp/time" "$@" >/dev/null 2>&1
  cat "$tmp/time"
}
printf '| %5s | %-22s | %8s | %9s |\n' round tool "wall s" "peak MiB"
for round in $(seq "$rounds"); do
  for tool in "${tools[@]}"; do
    read -r secs kib < <(run "$tool")
    echo "$tool|$secs" >>"$tmp/runs"
    printf '| %5s | %-22s | %8s | %9s |\n' "$round" "$tool" "$secs" "$((kib / 1024))"
  done
done
stat() { # tool, median|min
  awk -F'|' -v t="$1" '$1 == t {print $2}' "$tmp/runs" | sort -n |
    awk -v how="$2" '{v[NR] = $1} END {print (how == "min") ? v[1] : (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'
}
vmlat=$(stat "${tools[0]}" median)
echo
for tool in "${tools[@]}"; do
  echo "median $tool: $(stat "$tool" median) s ($(awk -v a="$(stat "$tool" median)" -v b="$vmlat" 'BEGIN {printf "%.1f", a / b}')x vmlat's)"
done
if $guard; then
  best_vmlat=$(stat "${tools[0]}" min)
  best_tcpdump=$(stat "${tools[1]}" min)
  if awk -v v="$best_vmlat" -v t="$best_tcpdump" 'BEGIN {exit !(v > 1.5 * t)}'; then
    echo "bench-analyze: REGRESSION: vmlat analyze took ${best_vmlat} s, more than 1.5 x tcpdump's ${best_tcpdump} s on the same capture (best of $rounds)" >&2
    exit 1
  fi
  echo "bench-analyze: guard passed: vmlat ${best_vmlat} s, tcpdump ${best_tcpdump} s (best of $rounds)"
fi
