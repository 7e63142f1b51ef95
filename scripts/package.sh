#!/usr/bin/env bash
# Builds the Debian package with cargo-deb: the release binary, the vmlat-watch.service
# unit, man pages made from --help by help2man, the docs and the alert rules.
# The binary is stripped (the release profile keeps line tables for profiling).
# Prints the .deb's path. Usage: scripts/package.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release --bin vmlat
mkdir -p target/man
vmlat=target/release/vmlat
help2man --no-info --name "find where a keepalived VIP flap lost its seconds" \
  --output target/man/vmlat.1 "$vmlat"
help2man --no-info --name "always-on flight recorder for keepalived VIP flaps" \
  --help-option "watch --help" --output target/man/vmlat-watch.1 "$vmlat"
rm -f target/debian/vmlat_*.deb
cargo deb --no-build --locked --strip --output target/debian/ >/dev/null
ls target/debian/vmlat_*.deb
