#!/usr/bin/env bash
# Runs every Tresor test: installs what the tests need (scripts/setup.sh), then checks
# formatting and lints, and runs the whole workspace's tests (unit, known-answer, property,
# engine, sealing, store, CLI end-to-end and crash-consistency tests), then runs every fuzz
# target for a short while (scripts/fuzz.sh; TRESOR_FUZZ_SECS seconds each, default 15): a
# decoder that panics on some input fails the run, with the input in fuzz/artifacts/.
#
# Usage: scripts/test.sh            everything
#        scripts/test.sh --quick    tests only (no fmt/clippy, no fuzzing)
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

if [ "$quick" -eq 0 ]; then
  echo "== fuzz targets, ${TRESOR_FUZZ_SECS:-15} s each"
  scripts/fuzz.sh "${TRESOR_FUZZ_SECS:-15}"
fi
