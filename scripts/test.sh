#!/usr/bin/env bash
# The test command: formatting, lints, then every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo nextest run --workspace --locked --no-fail-fast
# Every lab scenario end to end: real keepalived, real faults, verdicts checked.
cargo build --locked --release --bin vmlat
target/release/vmlat lab run scenarios/*.toml -o target/lab-results
# The Debian package: built with cargo-deb, installed as a user installs it, and run.
deb=$(scripts/package.sh | tail -1)
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "./$deb" >/dev/null
/usr/bin/vmlat --version
systemd-analyze verify /lib/systemd/system/vmlat-watch.service
