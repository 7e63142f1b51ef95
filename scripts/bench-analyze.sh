#!/usr/bin/env bash
# Analysis speed, side by side with tcpdump (and tshark, if installed) reading the same
# generated capture in one run. tcpdump only decodes and prints; vmlat also builds the
# streams, histograms, gaps and failovers. Usage: scripts/bench-analyze.sh [PACKETS]
set -euo pipefail
cd "$(dirname "$0")/.."
packets=${1:-1000000}
cargo build --release -q --bin vmlat
cargo build --release -q -p vmlat-analyzer --example throughput
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
target/release/examples/throughput generate "$tmp/big.pcap" "$packets" >/dev/null
echo "capture: $(du -h "$tmp/big.pcap" | cut -f1), $packets heartbeats (+10% ARP)"

run() { # name, command...: wall seconds and peak RSS of one run
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$tmp/time" "$@" >/dev/null 2>&1
  read -r secs rss < "$tmp/time"
  printf '| %-28s | %8s s | %8s MiB |\n' "$name" "$secs" "$((rss / 1024))"
}
printf '| %-28s | %10s | %12s |\n' tool "wall" "peak RSS"
run "vmlat analyze --json" target/release/vmlat analyze --json "$tmp/big.pcap"
run "tcpdump -nn -r" tcpdump -nn -r "$tmp/big.pcap"
if command -v tshark >/dev/null; then
  run "tshark -r" tshark -n -r "$tmp/big.pcap"
fi
