#!/usr/bin/env bash
# Runs every fuzz target (fuzz/, docs/fuzzing.md) for SECONDS each (default 60), from
# the committed seeds plus a working corpus that grows in fuzz/corpus/. A crash, a hang
# (over 10 s for one input) or more than 2 GiB of memory fails the run; the input is
# left in fuzz/artifacts/TARGET/ to keep as a regression test.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# cargo fuzz needs the sanitizer flags of a nightly compiler; the machine has stable.
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  echo "fuzz: $target for ${seconds}s"
  status=0
  cargo fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"corpus/$target.log" 2>&1 || status=$?
  grep -E '^(Done|stat::peak_rss_mb)|ERROR|SUMMARY|panicked' "corpus/$target.log" || true
  if [ "$status" -ne 0 ]; then
    echo "fuzz: $target failed (exit $status); see fuzz/corpus/$target.log and fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
