#!/usr/bin/env bash
# The test command: formatting, lints, then every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo nextest run --workspace --locked --no-fail-fast
cargo build --locked --release --bin vmlat
# The analyzer must stay faster than tcpdump on the same capture (a gross regression
# only: a ratio in this job, never an absolute time).
scripts/bench-analyze.sh --guard
# Every lab scenario end to end: real keepalived, real faults, verdicts checked.
target/release/vmlat lab run scenarios/*.toml -o target/lab-results
# Every fuzz target for a short while (docs/fuzzing.md): a crash on hostile input fails CI.
scripts/fuzz.sh 60
# The Debian package: built with cargo-deb, installed as a user installs it, and run.
deb=$(scripts/package.sh | tail -1)
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "./$deb" >/dev/null
/usr/bin/vmlat --version
systemd-analyze verify /lib/systemd/system/vmlat-watch.service
