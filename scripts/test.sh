#!/usr/bin/env bash
# The whole test suite: install what is missing, check formatting and lints, build, run
# every test.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
# From Debian, where this machine can install them: Fashion-MNIST (the shipped fd_fmnist
# classifier's accuracy test; Table 4's reduced runs), and OpenMPI with libclang for its
# bindings (the `mpi` feature: runs over ranks, tests/mpi.rs).
missing=()
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
command -v mpirun >/dev/null && command -v mpicc >/dev/null || missing+=(libopenmpi-dev openmpi-bin libclang-dev)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get update -qq && apt-get install -y -qq "${missing[@]}"; } >/dev/null ||
        echo "pisa: could not install ${missing[*]}; the tests that need them are skipped" >&2
fi
features=()
if command -v mpirun >/dev/null && command -v mpicc >/dev/null; then
    features=(--features mpi)
else
    echo "pisa: no OpenMPI here: built without the mpi feature, tests/mpi.rs is skipped" >&2
fi
cargo fmt --check
cargo clippy --release --all-targets "${features[@]}" --quiet -- -D warnings
cargo test --release --no-fail-fast "${features[@]}" "$@"
# scripts/gpu-check's dry run: the whole GPU check on the CPU at toy sizes (~2 minutes), so
# that it works when a GPU is lent; the binary the tests built.
gpu_check_out=$(mktemp -d)
PISA_BIN=target/release/pisa bash scripts/gpu-check --dry-run --out "$gpu_check_out" >/dev/null ||
    { cat "$gpu_check_out/gpu-check.md"; exit 1; }
rm -rf "$gpu_check_out"
