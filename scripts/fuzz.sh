#!/usr/bin/env bash
# Runs every fuzz target for a while (default 60 s each) with cargo-fuzz (libFuzzer).
# cargo-fuzz needs nightly features; on a stable toolchain RUSTC_BOOTSTRAP=1 enables them.
# Usage: scripts/fuzz.sh [seconds-per-target]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --version 0.13.2 --locked
export RUSTC_BOOTSTRAP=1
for t in template_from_raw share_parse policy_json key_der proto_decode client_config; do
  echo "== fuzz $t for ${secs}s"
  cargo fuzz run "$t" -- -max_total_time="$secs" -rss_limit_mb=4096
done
