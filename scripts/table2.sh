#!/usr/bin/env bash
# Table 2 of the paper (pisa.md §5.1) on this machine: every spec of a protocol swept
# (s-label partitions × seeds), then `pisa plot` writes <out>/table2.{csv,md} and the
# comparison figures (a curve per algorithm against rounds and against floats sent).
#   scripts/table2.sh [--paper] [DATASET ...]      # mnist fmnist adult (default: all three)
# Without --paper: our equal-budget comparison, experiments/table2/*.toml -> results/table2.
# With --paper: the paper protocol (NIID-Bench's baselines, the official SISA script),
# experiments/table2/paper/*.toml -> results/table2-paper. The two go to different folders:
# `pisa plot` averages every run of a dataset × algorithm in a folder into one cell.
# MNIST and Adult come from ../shared/data; Fashion-MNIST from the Debian package
# (`apt-get install dataset-fashion-mnist`, /usr/share/datasets/fashion-mnist).
# Running it again resumes: finished runs are skipped, interrupted ones continue from their
# checkpoints. A sweep that exits non-zero (a diverged run is a result too: SCAFFOLD at
# NIID-Bench's lr) does not stop the others; the script names them and exits 1 at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
cargo build --release --quiet
specs=experiments/table2
out=${PISA_TABLE2_OUT:-results/table2}
if [ "${1:-}" = "--paper" ]; then
    shift
    specs=experiments/table2/paper
    out=${PISA_TABLE2_OUT:-results/table2-paper}
fi
shared=${PISA_SHARED:-../shared/data}
jobs=${PISA_JOBS:-$(nproc)}
datasets=("$@")
[ ${#datasets[@]} -eq 0 ] && datasets=(mnist adult fmnist)
start=$(date +%s)
failed=()
for d in "${datasets[@]}"; do
    case "$d" in
        fmnist) dir=/usr/share/datasets ;;
        *) dir=$shared ;;
    esac
    for spec in "$specs/$d"-*.toml; do
        ./target/release/pisa sweep "$spec" --out "$out" --data-dir "$dir" --jobs "$jobs" \
            || failed+=("$spec")
    done
done
./target/release/pisa plot "$out"
echo "table2: $(( $(date +%s) - start )) s for ${datasets[*]} ($jobs jobs, $specs)"
if [ ${#failed[@]} -gt 0 ]; then
    echo "table2: these sweeps had a run that did not complete (see their summary.json): ${failed[*]}" >&2
    exit 1
fi
