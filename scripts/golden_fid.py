#!/usr/bin/env python3
"""Golden features of pytorch-fid's InceptionV3 (src/models/inception.rs; checked by
tests/fid_golden.rs).

Installed for this script (pinned so that torch stays 2.11.0):
    pip install "torch==2.11.0" torchvision==0.26.0 pytorch-fid==0.3.0

The real FID weights (pt_inception-2015-12-05-6726825d.pth) are not needed: the script
builds pytorch-fid's own `pytorch_fid.inception.InceptionV3([3])` (pool3, 2048-d,
resize_input and normalize_input on, use_fid_inception=True, so `fid_inception_v3()` with
FIDInceptionA/C/E_1/E_2) and replaces only the download: `load_state_dict_from_url`
returns the deterministic state_dict below, which `fid_inception_v3()` then loads with
its usual strict `load_state_dict`. Everything else is pytorch-fid's code.

The weights, a closed form the Rust test regenerates: number the state_dict's tensors
j = 0, 1, … in order, leaving out the batch counters (`*.num_batches_tracked`) and the
unused classifier `fc.*` (what scripts/convert_inception.py leaves out too); within
tensor j of shape S, flat index k (row-major), let s = sin(0.1·k² + 0.7·j) (f64, torch's
sin on both sides). The chirp 0.1·k² makes neighbouring weights unlike each other, so the
features depend on the image (a plain sin(0.1·k) gives smooth, low-pass filters whose
features hardly change from image to image). Then, rounded to f32:
    conv.weight          2/√fan_in · s   (fan_in = S[1]·S[2]·S[3]; He's scale, Var s = 1/2)
    bn.weight            1 + 0.2·s
    bn.bias              0.2·s
    bn.running_mean      0.1·s
    bn.running_var       1 + 0.5·|s|
fc.* and the batch counters are zeros (never used).

Files in tests/data/fid/:
  layout.txt            the names and shapes of the tensors j = 0, 1, …, one per line
                        (`name d0,d1,…`): the order the formula numbers them in and the
                        names Inception::load expects.
  golden.safetensors    rgb [2, 3, 32, 32] (two 3-channel images in [0, 1]) and
                        rgb_features [2, 2048]; gray [1, 1, 28, 28] and gray_features
                        [1, 2048], the gray image repeated to 3 channels as pytorch-fid's
                        ImagePathDataset does with `.convert('RGB')`. Features are
                        `model(x)[0].squeeze(3).squeeze(2)`, fid_score.get_activations'
                        pred, in f32.

Also printed: how far the features move under the mistakes the test must catch
(count_include_pad=True in the patched average pools, average instead of max pooling in
Mixed_7c, align_corners=True), all well above the test's 1e-4.

Usage (inside the venv of scripts/env.sh):
    python scripts/golden_fid.py
"""
import math
import pathlib
import sys
import types

import torch
import torch.nn.functional as F
import torchvision
import pytorch_fid.inception as pfi

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from golden_crosscheck import write_safetensors  # noqa: E402

DATA = ROOT / "tests" / "data" / "fid"


def unused(name):
    return name.endswith("num_batches_tracked") or name.startswith("fc.")


def deterministic(name, shape, j):
    k = torch.arange(math.prod(shape), dtype=torch.float64)
    s = torch.sin(0.1 * k * k + 0.7 * j)
    if name.endswith("conv.weight"):
        t = 2.0 / math.sqrt(math.prod(shape[1:])) * s
    elif name.endswith("bn.weight"):
        t = 1 + 0.2 * s
    elif name.endswith("bn.bias"):
        t = 0.2 * s
    elif name.endswith("bn.running_mean"):
        t = 0.1 * s
    elif name.endswith("bn.running_var"):
        t = 1 + 0.5 * s.abs()
    else:
        raise ValueError(f"no formula for {name}")
    return t.reshape(shape).float()


def state_dict():
    # fid_inception_v3()'s FID blocks subclass torchvision's with the same constructor
    # arguments, so torchvision's Inception3 of the same configuration has its names
    # and shapes; the strict load_state_dict in fid_inception_v3() checks that.
    template = torchvision.models.inception_v3(
        weights=None, aux_logits=False, num_classes=1008, init_weights=False
    ).state_dict()
    out, layout, j = {}, [], 0
    for name, t in template.items():
        if unused(name):
            out[name] = torch.zeros_like(t)
            continue
        out[name] = deterministic(name, list(t.shape), j)
        layout.append((name, list(t.shape)))
        j += 1
    return out, layout


def images():
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    rgb = torch.stack(
        [
            torch.stack([xx, yy, xx * yy]),
            torch.stack(
                [
                    (torch.sin(9 * xx) * torch.cos(7 * yy) + 1) / 2,
                    ((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.1).float(),
                    1 - xx,
                ]
            ),
        ]
    )
    y, x = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    gray = ((torch.sin(0.5 * x + 0.3 * y) * torch.cos(0.2 * x * y / 28) + 1) / 2)[None, None]
    return rgb.float().contiguous(), gray.float().contiguous()


def features(model, x):
    with torch.no_grad():
        return model(x)[0].squeeze(3).squeeze(2)


def sensitivity(model, x, base):
    """Largest feature change under each mistake, by swapping pytorch-fid's `F`."""
    real = F

    def run(**patched):
        pfi.F = types.SimpleNamespace(**{**{k: getattr(real, k) for k in dir(real)}, **patched})
        try:
            return (features(model, x) - base).abs().max().item()
        finally:
            pfi.F = real

    cases = {
        "count_include_pad=True": dict(
            avg_pool2d=lambda x, kernel_size, stride, padding, count_include_pad: real.avg_pool2d(
                x, kernel_size, stride, padding
            )
        ),
        "Mixed_7c average pool": dict(
            max_pool2d=lambda x, kernel_size, stride, padding: real.avg_pool2d(
                x, kernel_size, stride, padding, count_include_pad=False
            )
        ),
        "align_corners=True": dict(
            interpolate=lambda x, size, mode, align_corners: real.interpolate(
                x, size=size, mode=mode, align_corners=True
            )
        ),
    }
    for what, patched in cases.items():
        print(f"  {what}: features move by up to {run(**patched):.3g}")


def main():
    torch.set_num_threads(1)
    weights, layout = state_dict()
    pfi.load_state_dict_from_url = lambda *args, **kwargs: weights
    model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    rgb, gray = images()
    rgb_features = features(model, rgb)
    gray_features = features(model, gray.repeat(1, 3, 1, 1))
    assert rgb_features.shape == (2, 2048) and gray_features.shape == (1, 2048)
    print(
        f"features: mean |f| {rgb_features.abs().mean():.3g}, max {rgb_features.abs().max():.3g}, "
        f"zeros {(rgb_features == 0).float().mean():.2f}, "
        f"image 0 vs 1 up to {(rgb_features[0] - rgb_features[1]).abs().max():.3g}"
    )
    sensitivity(model, rgb, rgb_features)

    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "layout.txt").write_text(
        "".join(f"{name} {','.join(map(str, shape))}\n" for name, shape in layout)
    )
    write_safetensors(
        DATA / "golden.safetensors",
        {"rgb": rgb, "rgb_features": rgb_features, "gray": gray, "gray_features": gray_features},
    )
    print(f"wrote {DATA}/layout.txt ({len(layout)} tensors) and golden.safetensors")


if __name__ == "__main__":
    main()
