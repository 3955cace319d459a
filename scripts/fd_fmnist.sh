#!/usr/bin/env bash
# Trains the classifier of `fd_fmnist` with pisa (experiments/fd-fmnist/classifier.toml:
# SimpleCNN on Fashion-MNIST, one CPU thread) and writes its trained weights, named as in
# PyTorch's state_dict, to assets/fd_fmnist.safetensors; prints the file's SHA-256 for
# assets/README.md. Needs Fashion-MNIST in /usr/share/datasets/fashion-mnist
# (`apt-get install dataset-fashion-mnist`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
data=${PISA_DATA_DIR:-/usr/share/datasets}
cargo build --release
target/release/pisa run experiments/fd-fmnist/classifier.toml --out results/fd-fmnist --data-dir "$data"
target/release/pisa export results/fd-fmnist/fd-fmnist-classifier/default --data-dir "$data" \
    --out assets/fd_fmnist.safetensors
sha256sum assets/fd_fmnist.safetensors
