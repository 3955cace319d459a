#!/usr/bin/env python3
"""Golden Fréchet distances from pytorch-fid (src/metrics/frechet.rs; checked by
tests/frechet_golden.rs).

Installed for this script (pinned so that torch stays 2.11.0):
    pip install "torch==2.11.0" scipy pytorch-fid==0.3.0     (scipy 1.17.1 here)

Features: seeded Gaussians with correlated coordinates, d = 64 — sets a and b of
N = 200 (full-rank covariances) and of N = 50 < d (rank-49, singular covariances, so
Σ₁Σ₂ is singular), b shifted and mixed differently from a. They are stored in f32 and
upcast to f64 on both sides, so both compute on the same values. For each case the
statistics are pytorch-fid's: μ = np.mean(act, axis=0), Σ = np.cov(act, rowvar=False)
(`calculate_activation_statistics`, on the f64 activations), and the distance is
`pytorch_fid.fid_score.calculate_frechet_distance` (scipy.linalg.sqrtm). The script
records whether pytorch-fid fell back to its eps·I offset (it prints a message when sqrtm
is not finite); on these cases it never does, even with N < d.

File tests/data/fid/frechet.safetensors:
  a200, b200, a50, b50   features [N, 64] (f32)
  mu_a200, sigma_a200    pytorch-fid's statistics of a200 (f64)
  distance               [3] f64: (a200, b200), (a50, b50), (a50, b200)
  offset                 [3] u8: 1 where pytorch-fid added its eps·I offset

Usage (inside the venv of scripts/env.sh):
    python scripts/golden_frechet.py
"""
import contextlib
import io
import pathlib
import sys

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from golden_crosscheck import DTYPES, write_safetensors  # noqa: E402

DATA = ROOT / "tests" / "data" / "fid"
D = 64
SEED = 20260601
CASES = [("a200", "b200"), ("a50", "b50"), ("a50", "b200")]


def statistics(act):
    return np.mean(act, axis=0), np.cov(act, rowvar=False)


def main():
    DTYPES.setdefault("U8", torch.uint8)
    rng = np.random.default_rng(SEED)
    mix_a = rng.standard_normal((D, D)) / np.sqrt(D)
    mix_b = rng.standard_normal((D, D)) / np.sqrt(D) + 0.05
    shift_b = rng.standard_normal(D) * 0.3
    features = {}
    for n in (200, 50):
        features[f"a{n}"] = (rng.standard_normal((n, D)) @ mix_a).astype(np.float32)
        features[f"b{n}"] = (rng.standard_normal((n, D)) @ mix_b + shift_b).astype(np.float32)
    distances, offsets = [], []
    for a, b in CASES:
        mu1, s1 = statistics(features[a].astype(np.float64))
        mu2, s2 = statistics(features[b].astype(np.float64))
        said = io.StringIO()
        with contextlib.redirect_stdout(said):
            distances.append(float(calculate_frechet_distance(mu1, s1, mu2, s2)))
        offsets.append("adding" in said.getvalue())
        print(f"{a} vs {b}: {distances[-1]:.12g}{' (eps offset)' if offsets[-1] else ''}")
    mu, sigma = statistics(features["a200"].astype(np.float64))
    DATA.mkdir(parents=True, exist_ok=True)
    tensors = {name: torch.from_numpy(f) for name, f in features.items()}
    tensors["mu_a200"] = torch.from_numpy(mu)
    tensors["sigma_a200"] = torch.from_numpy(sigma)
    tensors["distance"] = torch.tensor(distances, dtype=torch.float64)
    tensors["offset"] = torch.tensor(offsets, dtype=torch.uint8)
    write_safetensors(DATA / "frechet.safetensors", tensors)
    print(f"wrote {DATA / 'frechet.safetensors'}")


if __name__ == "__main__":
    main()
