#!/usr/bin/env bash
# Runs every fuzz target (fuzz/, docs/fuzzing.md) for SECONDS each (default 60), from
# the committed seeds plus a working corpus that grows in fuzz/corpus/, as many targets
# at once as the machine has cores. A crash, a hang (over 10 s for one input) or more
# than 2 GiB of memory fails the run; the input is left in fuzz/artifacts/TARGET/ to
# keep as a regression test. Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# cargo fuzz needs the sanitizer flags of a nightly compiler; the machine has stable.
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O

# One target; its summary lines, or why it failed.
fuzz() {
  local target=$1 status=0
  mkdir -p "corpus/$target"
  cargo fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"corpus/$target.log" 2>&1 || status=$?
  echo "fuzz: $target, ${seconds}s: $(grep -E '^(Done|stat::peak_rss_mb)|ERROR|SUMMARY|panicked' \
    "corpus/$target.log" | tr '\n' ' ')"
  if [ "$status" -ne 0 ]; then
    echo "fuzz: $target failed (exit $status); see fuzz/corpus/$target.log and fuzz/artifacts/$target/" >&2
    return 1
  fi
}

failed=0
running=0
for target in $(cargo fuzz list); do
  if [ "$running" -ge "$(nproc)" ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
  fuzz "$target" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
exit "$failed"
