#!/usr/bin/env python3
"""Plain PyTorch version of pisa's vision training step, for comparing images/second with
`pisa run experiments/table3/fmnist-quick-<opt>.toml` (scripts/bench-vision runs both).

Same work per iteration as pisa's loop (src/train.rs, src/tasks/classification.rs):
NIID-Bench's SimpleCNN (src/models/simple_cnn.rs) on Fashion-MNIST; the training set is
shuffled once with the seed and cut into m contiguous shares D_i; worker i draws a
sub-batch of b from its own permutation of D_i without replacement (a new pass when fewer
than b are left, i.e. drop_last); each worker's forward, mean cross-entropy and backward
are taken at the same global point; then one optimizer step:

  adam  torch.optim.Adam(lr 1e-3, foreach=True) on the mean of the workers' gradients
  sgd   torch.optim.SGD(lr 0.01, momentum 0.9, foreach=True), the same mean
  sisa  Algorithm 2 as src/optim/admm/{mod,precondition,sisa}.rs do it on flat [P] and
        [m, P] buffers: duals π_i, scheme-III second moments (β = 0.9, η = 1e8), global
        update (2.9), σ0 = 1, ρ = 1000, γ = 1 (k0 = 1), λ = μ = 0.

Differences from pisa that do not change the amount of work much: the pixels are
normalised once, up front (pisa normalises each uint8 batch as it draws it), and the
batches come from torch's generator, not ChaCha8 (different samples, same sizes).

Only the training loop is timed (no data loading, no model construction, no
evaluation); on CUDA the clock stops after torch.cuda.synchronize(). Prints one JSON line.

    python scripts/bench_vision_torch.py [--optimizer sisa|adam|sgd] [--epochs 1]
        [--workers 4] [--batch-size 32] [--threads 2] [--device cpu|cuda]
        [--max-iterations N] [--eval] [--data-dir /usr/share/datasets/fashion-mnist]
"""
import argparse
import gzip
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------------------------- data


def read_idx(path, magic, ndims):
    """An IDX file of unsigned bytes (gzip-compressed or plain) as a numpy array."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        raise SystemExit(f"{path}: IDX magic {got:#010x}, expected {magic:#010x}")
    dims = [int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndims)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndims)
    return data.reshape(dims)


def load_split(data_dir, prefix):
    """(images uint8 [N, 28, 28], labels uint8 [N]) of `prefix` ("train" or "t10k")."""

    def find(stem):
        for name in (stem + ".gz", stem):
            path = os.path.join(data_dir, name)
            if os.path.exists(path):
                return path
        raise SystemExit(f"no {stem}(.gz) in {data_dir}")

    images = read_idx(find(f"{prefix}-images-idx3-ubyte"), 0x00000803, 3)
    labels = read_idx(find(f"{prefix}-labels-idx1-ubyte"), 0x00000801, 1)
    return images, labels


# --------------------------------------------------------------------------------- model


class SimpleCNN(nn.Module):
    """NIID-Bench's SimpleCNNMNIST: 44,426 parameters on 1×28×28."""

    def __init__(self, channels=1, size=28, classes=10):
        super().__init__()
        self.shape = (-1, channels, size, size)
        self.conv1 = nn.Conv2d(channels, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        feature = ((size - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(16 * feature * feature, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = x.reshape(self.shape)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2).flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


# ------------------------------------------------------------------------------- sampling


class Sampler:
    """One worker's walk through fresh permutations of its share D_i = rows
    start .. start + length of the shuffled set, b at a time, without replacement."""

    def __init__(self, start, length, seed, worker, device):
        self.start, self.length = start, length
        self.gen = torch.Generator().manual_seed((seed ^ 0xBA7C4E55) * 1009 + worker)
        self.device = device
        self.pos = length  # forces a shuffle on the first draw

    def next(self, b):
        if self.pos + b > self.length:
            self.order = (torch.randperm(self.length, generator=self.gen) + self.start).to(
                self.device
            )
            self.pos = 0
        self.pos += b
        return self.order[self.pos - b : self.pos]


# ----------------------------------------------------------------------------------- SISA


class Sisa:
    """Algorithm 1 with SISA's preconditioner Q_i = Diag(√m_i), scheme III, on flat
    buffers, following src/optim/admm/mod.rs (Admm) and precondition.rs (SecondMoment)
    step for step: the same in-place passes over [P] and [m, P] buffers."""

    def __init__(self, w0, alphas, sigma0=1.0, rho=1000.0, gamma=1.0, k0=1, beta=0.9,
                 eta=1e8, lam=0.0):
        m, p = len(alphas), w0.numel()
        opts = dict(dtype=w0.dtype, device=w0.device)
        self.alphas = list(alphas)
        self.alpha_t = torch.tensor(alphas, **opts)
        self.sigma0, self.rho0, self.gamma, self.k0 = sigma0, rho, gamma, k0
        self.beta, self.eta, self.lam = beta, eta, lam
        self.sigma_base = self.sigma = sigma0
        self.rho = rho
        self.iteration = 0
        self.w = w0.clone()  # the global point w^{ℓ+1}
        self.dual = torch.zeros(m, p, **opts)  # row i is π_i
        self.dual_sum = torch.zeros(p, **opts)  # S = Σ α_i π_i as the iteration began
        self.scratch = torch.empty(p, **opts)  # the preconditioner's denominator
        self.moment = torch.zeros(m, p, **opts)  # row i is n_i (scheme III)
        self.steps = [0] * m
        self.neg_one = torch.tensor(-1.0, **opts)  # the -1 of r ← −1 − (ρc/σ)·r

    def begin_iteration(self):
        alpha_sum = sum(self.alphas)
        # (2.9): w^{ℓ+1} = Σα_i(σ w_i + π_i) / (Σα_i σ + λ), the numerator formed as
        # σΣα_i·w^ℓ + 2S⁺ − S (S⁺ = Σα_i π_i now, S as the last iteration began)
        d = alpha_sum * self.sigma + self.lam
        self.w.mul_(alpha_sum * self.sigma / d)
        self.w.add_(self.dual_sum, alpha=-1.0 / d)
        self.w.addmv_(self.dual.t(), self.alpha_t * (2.0 / d))
        torch.mv(self.dual.t(), self.alpha_t, out=self.dual_sum)
        # (2.12): σ divided by γ every k0 iterations; the lr multiplier f(ℓ) = 1
        if self.iteration % self.k0 == 0:
            self.sigma_base = self.sigma_base / self.gamma
        self.sigma = self.sigma_base
        self.rho = self.rho0

    def local_update(self, worker, grad):
        """Consumes `grad` (g_i at w^{ℓ+1}, [P]): its buffer becomes u = π_i + g_i."""
        dual = self.dual[worker]
        moment = self.moment[worker]
        u = grad.add_(dual)
        out = self.scratch
        # (4.4), scheme III: n_i ← β n_i + (1 − β) u², bias correction 1 − β^{ℓ+1}
        self.steps[worker] += 1
        torch.mul(u, u, out=out)
        moment.lerp_(out, 1.0 - self.beta)
        bias = 1.0 - self.beta ** self.steps[worker]
        # (4.3): the clip at η²(1 − β^{ℓ+1}) on the uncorrected moment; √m_i = c·r
        torch.clamp_max(moment, self.eta * self.eta * bias, out=out)
        out.sqrt_()
        c = 1.0 / math.sqrt(bias)
        # (2.13), (2.14) with (4.5): π_i ← π_i − σ u/(σ + ρ c r), as r ← −(σ + ρ c r)/σ,
        # π_i ← π_i + u/r
        torch.add(self.neg_one, out, alpha=-self.rho * c / self.sigma, out=out)
        dual.addcdiv_(u, out)

    def end_iteration(self):
        self.iteration += 1


# ---------------------------------------------------------------------------------- main


def flat_views(model):
    """Puts the parameters and their gradients into two flat [P] buffers (PyTorch's
    order, as pisa's FlatParams) and returns (params, grads)."""
    params = list(model.parameters())
    flat = torch.nn.utils.parameters_to_vector(params).detach().clone()
    grads = torch.zeros_like(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.data = flat[offset : offset + n].view_as(p)
        p.grad = grads[offset : offset + n].view_as(p)
        offset += n
    return flat, grads


def evaluate(model, x, y, chunk=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, x.shape[0], chunk):
            correct += (model(x[s : s + chunk]).argmax(-1) == y[s : s + chunk]).sum().item()
    model.train()
    return correct / x.shape[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--optimizer", choices=["sisa", "adam", "sgd"], default="sisa")
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    ap.add_argument("--max-iterations", type=int, default=0,
                    help="stop after this many iterations (smoke tests); 0 = the whole run")
    ap.add_argument("--eval", action="store_true", help="test accuracy at the end (untimed)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    m, b = args.workers, args.batch_size

    # Data: scaled to [0, 1], normalised with the training pixels' mean and deviation.
    train_x, train_y = load_split(args.data_dir, "train")
    test_x, test_y = load_split(args.data_dir, "t10k")
    train_x = torch.from_numpy(train_x.astype(np.float32) / 255.0)
    test_x = torch.from_numpy(test_x.astype(np.float32) / 255.0)
    mean, std = train_x.mean().item(), train_x.std().item()
    train_x = ((train_x - mean) / std).to(device)
    test_x = ((test_x - mean) / std).to(device)
    train_y = torch.from_numpy(train_y.astype(np.int64)).to(device)
    test_y = torch.from_numpy(test_y.astype(np.int64)).to(device)

    # The seeded shuffle, cut into m contiguous shares whose sizes differ by at most one.
    n = train_x.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed)).to(device)
    train_x, train_y = train_x[perm], train_y[perm]
    sizes = [n // m + (1 if i < n % m else 0) for i in range(m)]
    starts = [sum(sizes[:i]) for i in range(m)]
    alphas = [s / n for s in sizes]
    samplers = [Sampler(starts[i], sizes[i], args.seed, i, device) for i in range(m)]
    per_epoch = max(min(sizes) // b, 1)
    iterations = args.epochs * per_epoch
    if args.max_iterations > 0:
        iterations = min(iterations, args.max_iterations)

    torch.manual_seed(args.seed)
    model = SimpleCNN().to(device)
    model.train()

    if args.optimizer == "sisa":
        flat, grads = flat_views(model)
        opt = Sisa(flat, alphas)
    else:
        params = list(model.parameters())
        if args.optimizer == "adam":
            opt = torch.optim.Adam(params, lr=1e-3, foreach=True)
        else:
            opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, foreach=True)

    def sisa_iteration():
        opt.begin_iteration()
        for i in range(m):
            rows = samplers[i].next(b)
            flat.copy_(opt.w)  # the global point into the model (FlatParams::load)
            grads.zero_()
            loss = F.cross_entropy(model(train_x[rows]), train_y[rows])
            loss.backward()  # accumulates into the flat gradient buffer
            opt.local_update(i, grads)  # consumes g_i (u = π_i + g_i in its buffer)
        opt.end_iteration()
        return loss

    def classic_iteration():
        opt.zero_grad(set_to_none=False)
        for i in range(m):
            rows = samplers[i].next(b)
            loss = F.cross_entropy(model(train_x[rows]), train_y[rows])
            (loss * alphas[i]).backward()  # Σ α_i g_i, all at the same point
        opt.step()
        return loss

    step = sisa_iteration if args.optimizer == "sisa" else classic_iteration

    p0 = next(model.parameters())
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    loss = None
    for it in range(iterations):
        loss = step()
        if it == 0 and args.optimizer == "sisa":  # backward must accumulate in place
            assert p0.grad.data_ptr() == grads.data_ptr(), "gradient left the flat buffer"
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start

    if args.optimizer == "sisa":
        flat.copy_(opt.w)  # the model at the global point
    images = iterations * m * b
    result = {
        "optimizer": args.optimizer,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "iterations": iterations,
        "images": images,
        "seconds": round(seconds, 4),
        "images_per_s": round(images / seconds, 1) if seconds > 0 else None,
        "last_loss": round(loss.item(), 5) if loss is not None else None,
    }
    if args.eval:
        result["test_acc"] = evaluate(model, test_x, test_y)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
