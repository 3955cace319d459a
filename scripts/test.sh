#!/usr/bin/env bash
# The whole test suite: install what is missing, check formatting and lints, build, run
# every test.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
# Fashion-MNIST (the shipped fd_fmnist classifier's accuracy test; Table 4's reduced runs):
# Debian's package, where this machine can install it.
if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; } >/dev/null ||
        echo "pisa: could not install dataset-fashion-mnist; the tests that read it are skipped" >&2
fi
cargo fmt --check
cargo clippy --release --all-targets --quiet -- -D warnings
cargo test --release "$@"
