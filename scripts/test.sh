#!/usr/bin/env bash
# The whole test suite: install what is missing, check formatting and lints, build, run
# every test.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
cargo fmt --check
cargo clippy --release --all-targets --quiet -- -D warnings
cargo test --release "$@"
