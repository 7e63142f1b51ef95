#!/usr/bin/env bash
# The recorder's own work per record, counted in instructions: a load balancer's stream
# of tracepoint samples (perf::bench in the tracer crate) decoded, ordered and written
# as `vmlat record` does, under callgrind, which counts the same on a busy machine as
# on an idle one. With a revision, runs it there too, in the same run, for a ratio.
# Needs valgrind; no root. Usage: scripts/bench-record-path.sh [REV] [RECORDS]
# (REV must have the benchmark: any commit since it was added.)
set -euo pipefail
rev=${1:-}
records=${2:-200000}
cd "$(dirname "$0")/.."
repo=$PWD
tmp=$(mktemp -d)
cleanup() {
  [ -d "$tmp/tree" ] && git -C "$repo" worktree remove --force "$tmp/tree"
  rm -rf "$tmp"
}
trap cleanup EXIT

# Builds the tracer's unit tests in the tree $1; prints the test binary.
build() {
  (cd "$1" && CARGO_TARGET_DIR=$repo/target cargo test --release -q -p vmlat-tracer --lib \
    --no-run --message-format=json) |
    sed -n 's/.*"executable":"\([^"]*vmlat_tracer-[^"]*\)".*/\1/p' | tail -1
}

# Instructions per record of the decode-order-write path in the binary $1.
count() {
  VMLAT_BENCH_RECORDS=$records valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" \
    --toggle-collect='*bench::decode_order_write*' "$1" --ignored --exact \
    perf::bench::record_path_of_a_load_balancer_stream >/dev/null 2>"$tmp/log"
  awk -v n="$records" '/Collected :/ {printf "%.0f", $NF / n}' "$tmp/log"
}

new=$(build "$repo")
cp "$new" "$tmp/new"
printf '| %-28s | %20s |\n' tree "instructions / record"
if [ -n "$rev" ]; then
  git -C "$repo" worktree add -q --detach "$tmp/tree" "$rev"
  old=$(build "$tmp/tree")
  printf '| %-28s | %20s |\n' "$rev" "$(count "$old")"
fi
printf '| %-28s | %20s |\n' "working tree" "$(count "$tmp/new")"
