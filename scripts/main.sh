#!/usr/bin/env bash
# The main job: install what is missing, build, and regenerate Figure 4 (a)-(d) of the
# PISA paper (Appendix A.2, least squares) into results/figure4{a,b,c,d}/.
# Extra arguments go to every `pisa sweep` (e.g. --out /tmp/results).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
cargo build --release --quiet
out=results
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    [ "${args[i]}" = "--out" ] && out="${args[i + 1]}"
done
for spec in experiments/figure4/*.toml; do
    ./target/release/pisa sweep "$spec" "$@"
done
for name in figure4a figure4b figure4c figure4d; do
    ./target/release/pisa plot "$out/$name"
done
