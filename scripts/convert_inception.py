#!/usr/bin/env python3
"""Converts pytorch-fid's FID Inception weights to the safetensors file that
`pisa::models::inception::Inception::load` reads.

The input is pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (the TensorFlow FID
network ported by mseitzer/pytorch-fid, pytorch_fid/inception.py's FID_WEIGHTS_URL), a
state_dict of `fid_inception_v3()`'s modules: `Conv2d_1a_3x3.conv.weight`,
`Mixed_5b.branch1x1.bn.running_mean`, …, `fc.weight`, `fc.bias`. pisa never downloads it;
get it once (pytorch-fid's release page, or pytorch-fid's cache in
~/.cache/torch/hub/checkpoints/) and pass its path.

The output keeps every tensor the pool3 features use, under the same names, in f32, and
leaves out what they do not: the 1008-class classifier `fc.*` and BatchNorm's
`num_batches_tracked` counters if present. The names and shapes are checked against
tests/data/fid/layout.txt (written by scripts/golden_fid.py from pytorch-fid's module),
so a wrong file fails here rather than in pisa.

Usage (inside the venv of scripts/env.sh; needs only torch and numpy):
    python scripts/convert_inception.py PTH [OUT]
OUT defaults to PTH with the suffix .safetensors.
"""
import argparse
import pathlib
import sys

import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from golden_crosscheck import write_safetensors  # noqa: E402

LAYOUT = ROOT / "tests" / "data" / "fid" / "layout.txt"
EXPECTED_FILE = "pt_inception-2015-12-05-6726825d.pth"


def expected_layout():
    layout = {}
    for line in LAYOUT.read_text().splitlines():
        name, shape = line.split()
        layout[name] = [int(d) for d in shape.split(",")]
    return layout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pth", type=pathlib.Path, help=f"pytorch-fid's {EXPECTED_FILE}")
    parser.add_argument("out", type=pathlib.Path, nargs="?", help="the safetensors file to write")
    args = parser.parse_args()
    if not args.pth.is_file():
        sys.exit(
            f"convert_inception: {args.pth} does not exist. It is pytorch-fid's FID Inception "
            f"weights ({EXPECTED_FILE}, from https://github.com/mseitzer/pytorch-fid/releases/"
            "tag/fid_weights, or ~/.cache/torch/hub/checkpoints/ after pytorch-fid ran once); "
            "download it yourself and pass its path."
        )
    out = args.out or args.pth.with_suffix(".safetensors")
    state = torch.load(args.pth, map_location="cpu", weights_only=True)
    kept = {
        name: t
        for name, t in state.items()
        if not name.startswith("fc.") and not name.endswith("num_batches_tracked")
    }
    expected = expected_layout()
    problems = [f"missing {name} {shape}" for name, shape in expected.items() if name not in kept]
    problems += [f"unexpected {name}" for name in kept if name not in expected]
    problems += [
        f"{name} is {list(t.shape)}, expected {expected[name]}"
        for name, t in kept.items()
        if name in expected and list(t.shape) != expected[name]
    ]
    if problems:
        sys.exit(f"convert_inception: {args.pth} is not pytorch-fid's FID Inception:\n  " + "\n  ".join(problems))
    tmp = out.with_name(f".{out.name}.tmp")
    write_safetensors(tmp, {name: kept[name].float() for name in expected})
    tmp.replace(out)
    print(f"wrote {out}: {len(expected)} tensors, {sum(t.numel() for t in kept.values())} values")


if __name__ == "__main__":
    main()
