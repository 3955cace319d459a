#!/usr/bin/env bash
# The Fed-LAMB study (fed-lamb.md §4.1) on this machine: every experiments/fed-lamb spec swept
# (learning rate, Fed-LAMB's λ, SISA's σ⁰ × three seeds) on the shared 10,000-image MNIST,
# then `pisa plot` writes results/fed-lamb/fedlamb.{csv,md} (the best configuration per
# method), the curves per method and each spec's own figures, and
# scripts/fedlamb_communication.py the floats each method exchanged.
#   PISA_JOBS=1 scripts/fedlamb.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
cargo build --release --quiet
out=${PISA_FEDLAMB_OUT:-results/fed-lamb}
jobs=${PISA_JOBS:-$(nproc)}
start=$(date +%s)
for method in fedsgd fedams fedlamb sisa; do
    ./target/release/pisa sweep experiments/fed-lamb/mnist-mlp-"$method".toml \
        --data-dir "${PISA_SHARED:-../shared/data}" --out "$out" --jobs "$jobs" --threads 1
done
./target/release/pisa plot "$out"
python3 scripts/fedlamb_communication.py "$out"
echo "fed-lamb: $(( $(date +%s) - start )) s ($jobs jobs)"
