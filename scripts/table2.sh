#!/usr/bin/env bash
# Table 2 of the paper (pisa.md §5.1) on this machine: every experiments/table2 spec swept
# (s-label partitions × seeds), then `pisa plot` writes results/table2/table2.{csv,md} and
# each experiment's accuracy-per-round figure.
#   scripts/table2.sh [DATASET ...]      # mnist fmnist adult (default: all three)
# MNIST and Adult come from ../shared/data; Fashion-MNIST from the Debian package
# (`apt-get install dataset-fashion-mnist`, /usr/share/datasets/fashion-mnist).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
cargo build --release --quiet
out=${PISA_TABLE2_OUT:-results/table2}
shared=${PISA_SHARED:-../shared/data}
jobs=${PISA_JOBS:-$(nproc)}
datasets=("$@")
[ ${#datasets[@]} -eq 0 ] && datasets=(mnist adult fmnist)
start=$(date +%s)
for d in "${datasets[@]}"; do
    case "$d" in
        fmnist) dir=/usr/share/datasets ;;
        *) dir=$shared ;;
    esac
    for spec in experiments/table2/"$d"-*.toml; do
        ./target/release/pisa sweep "$spec" --out "$out" --data-dir "$dir" --jobs "$jobs"
    done
done
./target/release/pisa plot "$out"
echo "table2: $(( $(date +%s) - start )) s for ${datasets[*]} ($jobs jobs)"
