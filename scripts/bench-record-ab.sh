#!/usr/bin/env bash
# vmlat record of two builds in turns under the same syscall storm (`stress-ng --null`,
# its syscalls recorded): each one's user and system CPU per million records written.
# Needs root and stress-ng. Usage: scripts/bench-record-ab.sh OLD_VMLAT NEW_VMLAT [ROUNDS] [SECONDS]
set -euo pipefail
old=$1 new=$2 rounds=${3:-3} secs=${4:-8}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '| %5s | %-5s | %6s | %6s | %10s | %8s | %12s | %12s |\n' round build "user s" "sys s" records lost "user ms / M" "total ms / M"
for r in $(seq "$rounds"); do
  for which in old new; do
    bin=${!which}
    rm -rf "$tmp/bundle"
    /usr/bin/time -f "%U %S" -o "$tmp/time" "$bin" record -o "$tmp/bundle" --comm stress-ng-null --duration $((secs + 3)) >"$tmp/out" 2>&1 &
    pid=$!
    sleep 2
    stress-ng --null 2 --timeout "${secs}s" >/dev/null 2>&1
    wait $pid
    recs=$("$new" inspect "$tmp/bundle" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); c=d["counts"]; print(sum(v for k,v in c.items() if k!="packets"), sum(d["losses"].values()))')
    read -r u s < "$tmp/time"
    read -r n lost <<<"$recs"
    awk -v w="$which" -v r="$r" -v u="$u" -v s="$s" -v n="$n" -v l="$lost" 'BEGIN {
      printf "| %5d | %-5s | %6.2f | %6.2f | %10d | %8d | %12.0f | %12.0f |\n", r, w, u, s, n, l, u*1e9/n, (u+s)*1e9/n}'
  done
done
