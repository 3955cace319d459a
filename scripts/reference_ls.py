#!/usr/bin/env python3
"""Reference PISA/SISA on least squares, written from Algorithms 1-2 of the paper in
plain PyTorch (every w_i stored, (2.9) from the stored points), independent of pisa's
Rust code. Two uses:

  golden:  python3 scripts/reference_ls.py golden OUT_DIR
           writes a small problem (problem.npz) and one trajectory per preconditioner
           (golden-*.csv) that tests/golden.rs compares pisa against.
  bench:   python3 scripts/reference_ls.py bench [--sisa-scheme 3] [--hessian]
           times 500 iterations of the Figure 4 setting (N=3200, d=100, m=32, full
           batch) for comparison with `pisa run` (see results/BENCHMARKS.md).
"""
import argparse
import csv
import math
import os
import time

import numpy as np
import torch

torch.set_default_dtype(torch.float64)


def run(A, b, m, iterations, sigma0, rho, gamma, k0, lam, mu, pre, scheme=3, beta=0.9, eta=1e8):
    N, d = A.shape
    per = N // m
    blocks = [(A[i * per:(i + 1) * per], b[i * per:(i + 1) * per]) for i in range(m)]
    alpha = [1.0 / m] * m
    w = torch.zeros(d)
    w_i = [w.clone() for _ in range(m)]
    dual = [torch.zeros(d) for _ in range(m)]
    moment = [torch.zeros(d) for _ in range(m)]
    sigma = sigma0

    def objective(w):
        r = A @ w - b
        return float(r @ r) / (2 * N) + 0.5 * mu * float(w @ w)

    rows = [objective(w)]
    for l in range(iterations):
        w = sum(a * (sigma * wi + p) for a, wi, p in zip(alpha, w_i, dual)) / (sum(alpha) * sigma + lam)  # (2.9)
        if l % k0 == 0:
            sigma = sigma / gamma  # (2.12)
        for i, (Ai, bi) in enumerate(blocks):
            g = Ai.T @ (Ai @ w - bi) / per + (mu - lam) * w  # (2.10), F_i of (2.4)
            u = dual[i] + g
            if pre == "identity":
                x = u / (sigma + rho)
            elif pre == "hessian":
                H = Ai.T @ Ai / per + (mu - lam) * torch.eye(d)  # (4.1)
                x = torch.linalg.solve(sigma * torch.eye(d) + rho * H, u)
            else:  # SISA, (4.2)-(4.5)
                if scheme == 1:
                    moment[i] = moment[i] + u * u
                    mt = moment[i]
                else:
                    moment[i] = beta * moment[i] + (1 - beta) * u * u
                    mt = moment[i] / (1 - beta ** (l + 1)) if scheme == 3 else moment[i]
                x = u / (sigma + rho * torch.sqrt(torch.clamp(mt, max=eta * eta)))
            w_i[i] = w - x  # (2.13)
            dual[i] = dual[i] + sigma * (w_i[i] - w)  # (2.14)
        rows.append(objective(w))
    return rows


def golden(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20260101)
    N, d, m = 48, 5, 4
    A = rng.standard_normal((N, d))
    A[N // 2:] = rng.standard_t(5, size=(N // 2, d))
    b = A @ rng.standard_normal(d) + 0.1 * rng.standard_normal(N)
    np.savez(os.path.join(out, "problem.npz"), A=A, b=b)
    A, b = torch.from_numpy(A), torch.from_numpy(b)
    cases = {
        "pisa-identity": dict(pre="identity"),
        "pisa-hessian": dict(pre="hessian"),
        "sisa-1": dict(pre="sisa", scheme=1),
        "sisa-2": dict(pre="sisa", scheme=2),
        "sisa-3": dict(pre="sisa", scheme=3, eta=3.0),
    }
    for name, case in cases.items():
        rows = run(A, b, m, 60, sigma0=4.0, rho=0.5, gamma=0.9, k0=2, lam=0.01, mu=0.03, **case)
        with open(os.path.join(out, f"golden-{name}.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["iteration", "objective"])
            for l, v in enumerate(rows):
                w.writerow([l, repr(v)])


def bench(args):
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    A = torch.randn(3200, 100, generator=g)
    b = torch.randn(3200, generator=g)
    pre = "hessian" if args.hessian else "sisa"
    times = []
    for _ in range(3):
        t = time.perf_counter()
        run(A, b, 32, 500, 16.0, 1.0, 0.99, 1, 0.0, 0.0, pre, scheme=args.sisa_scheme)
        times.append(time.perf_counter() - t)
    print(f"pytorch reference, {pre}: 500 iterations, m=32, d=100: best {min(times):.3f} s of {times}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("golden").add_argument("out")
    bp = sub.add_parser("bench")
    bp.add_argument("--sisa-scheme", type=int, default=3)
    bp.add_argument("--hessian", action="store_true")
    args = p.parse_args()
    golden(args.out) if args.cmd == "golden" else bench(args)
