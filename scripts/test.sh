#!/usr/bin/env bash
# Runs every Tresor test: installs what the tests need (scripts/setup.sh), then checks
# formatting and lints, and runs the whole workspace's tests (unit, known-answer, property,
# engine, sealing, store, CLI end-to-end and crash-consistency tests).
#
# Usage: scripts/test.sh            everything
#        scripts/test.sh --quick    tests only (no fmt/clippy)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

quick=0
[ "${1:-}" = "--quick" ] && quick=1

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=1

if [ "$quick" -eq 0 ]; then
  echo "== cargo fmt --check"
  cargo fmt --all -- --check
  echo "== cargo clippy -D warnings"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi

echo "== cargo test"
cargo test --workspace --locked --no-fail-fast
