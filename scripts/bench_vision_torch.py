#!/usr/bin/env python3
"""Plain PyTorch version of pisa's vision training step, for comparing images/second with
`pisa run` on the same model, data shape and optimizer (scripts/bench-vision runs both).

Models (--model):
  simple_cnn  NIID-Bench's SimpleCNN (src/models/simple_cnn.rs, 44,426 parameters) on
              Fashion-MNIST read from --data-dir (experiments/table3/fmnist-quick-*.toml)
  resnet34    the CIFAR ResNet-34 of kuangliu/pytorch-cifar as src/models/resnet.rs defines
              it (BasicBlock [3, 4, 6, 3], 3×3 stem, no max-pool, 21,282,122 parameters
              for 10 classes) on CIFAR-10-SIZED SYNTHETIC data generated in memory as
              src/data/synthetic.rs does (class template + uniform noise in ±96, uint8
              3×32×32; --samples training images, a fifth as many test images):
              experiments/table3/resnet34-quick-sisa.toml. Only the shapes matter here.

Same work per iteration as pisa's loop (src/train.rs, src/tasks/classification.rs): the
training set (uint8 pixels, kept on the device) is shuffled once with the seed and cut into
m contiguous shares D_i; worker i draws a sub-batch of b from its own permutation of D_i
without replacement (a new pass when fewer than b are left, i.e. drop_last). For each
worker, at the same global point: its batch-norm running statistics are copied into the
model (pisa keeps an [m, B] copy of the model's flat [B] state and swaps each worker's row
in and out; the same here, with the running means and variances as views of one flat [B]
buffer and no num_batches_tracked counter, which pisa's batch norm does not have), the
batch is gathered and transformed on the device (uint8 → float, /255, minus the training
pixels' mean, over their deviation: one scalar each, as pisa's Normalise::of; with
--augment crop-flip first a random crop from the image zero-padded by 4 and a horizontal
flip with probability ½, as two gathers with per-image indices drawn on the device),
optionally laid out channels-last (--channels-last: the input batch only, as pisa's
train.channels_last), then forward and mean cross-entropy (under
torch.autocast(device_type, dtype) with --autocast bf16|f16, as train.autocast) and
backward; after the m workers, one optimizer step.

Parameters: one flat [P] buffer with every parameter a view of it in parameters() order,
as pisa's FlatParams (src/models/flat.rs); the gradients are views of a second flat [P]
buffer, so backward accumulates into it in place (pisa instead concatenates the variables'
gradients into a new [P] tensor per worker). The optimizer steps on the flat buffers:

  sisa  Algorithm 2 as src/optim/admm/{mod,precondition,sisa}.rs do it on flat [P] and
        [m, P] buffers: duals π_i, second moments of scheme I/II/III, global update (2.9),
        σ divided by γ every k0 iterations (2.12), the (μ − λ)w term of (2.4); no
        learning-rate schedule f(ℓ)
  adam  torch.optim.Adam([flat], foreach=True) on Σα_i g_i (the workers' (α_i-weighted)
        losses' gradients accumulate into the flat gradient buffer)
  sgd   torch.optim.SGD([flat], foreach=True), the same sum

Hyperparameters: --hyper KEY=VALUE (repeatable; VALUE as JSON), pisa's keys of the
optimizer (scripts/bench-vision passes the spec's [optimizer] table); the defaults are
pisa's (src/optim), except sigma0, which pisa requires and which is 1 here.

Differences from pisa that do not change the amount of work much: the batches and
augmentation come from torch's generators, not ChaCha8 (different samples, same sizes);
the synthetic images likewise; the crop/flip offsets are drawn on the device (pisa draws
them on the CPU and uploads two small index tensors per batch).

Only the training loop is timed (no data generation or loading, no model construction, no
evaluation); on CUDA the clock stops after torch.cuda.synchronize(). Prints one JSON line.

    python scripts/bench_vision_torch.py [--model simple_cnn|resnet34]
        [--optimizer sisa|adam|sgd] [--hyper KEY=VALUE ...] [--epochs 1]
        [--max-iterations N] [--workers 4] [--batch-size 32] [--threads 2]
        [--device cpu|cuda] [--channels-last] [--autocast bf16|f16]
        [--augment none|crop-flip] [--samples 50000] [--eval]
        [--data-dir /usr/share/datasets/fashion-mnist]
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
    """(images uint8 [N, 28, 28], labels int64 [N]) of `prefix` ("train" or "t10k")."""

    def find(stem):
        for name in (stem + ".gz", stem):
            path = os.path.join(data_dir, name)
            if os.path.exists(path):
                return path
        raise SystemExit(f"no {stem}(.gz) in {data_dir}")

    images = read_idx(find(f"{prefix}-images-idx3-ubyte"), 0x00000803, 3)
    labels = read_idx(find(f"{prefix}-labels-idx1-ubyte"), 0x00000801, 1)
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def synthetic_images(shape, classes, train, test, seed, chunk=5000):
    """`train` + `test` uint8 images [N, *shape] of `classes` classes (labels 0, 1, … in
    turn): pixel = clamp(template_k + uniform integer noise in ±96, 0, 255)."""
    gen = torch.Generator().manual_seed(seed ^ 0x5E77E71C)
    pixels = math.prod(shape)
    templates = torch.randint(0, 256, (classes, pixels), generator=gen, dtype=torch.int16)

    def split(n):
        labels = torch.arange(n, dtype=torch.int64) % classes
        images = torch.empty(n, pixels, dtype=torch.uint8)
        for s in range(0, n, chunk):
            k = labels[s : s + chunk]
            noise = torch.randint(-96, 97, (k.numel(), pixels), generator=gen, dtype=torch.int16)
            images[s : s + chunk] = (templates[k] + noise).clamp_(0, 255).to(torch.uint8)
        return images.view(n, *shape), labels

    return split(train), split(test)


def unit_stats(x, chunk=10000):
    """Mean and (unbiased) standard deviation of all pixels of uint8 `x` scaled to [0, 1]."""
    total, squares, n = 0.0, 0.0, x.numel()
    for s in range(0, x.shape[0], chunk):
        v = x[s : s + chunk].double() / 255.0
        total += v.sum().item()
        squares += (v * v).sum().item()
    mean = total / n
    return mean, math.sqrt(max((squares - n * mean * mean) / (n - 1), 1e-300))


class Transform:
    """A uint8 batch → the model's input, on the batch's device: optional crop-flip, then
    /255 and the scalar normalisation (pisa's src/data/transform.rs)."""

    def __init__(self, mean, std, augment, device, seed):
        self.mean, self.std, self.augment = mean, std, augment
        self.gen = torch.Generator(device=device).manual_seed(seed ^ 0xA06)

    def eval(self, x):
        return (x.float() / 255.0 - self.mean) / self.std

    def train(self, x):
        if self.augment == "crop-flip":
            x = self.crop_flip(x, 4)
        return self.eval(x)

    def crop_flip(self, x, pad):
        """Each image of [B, C, H, W] `x`: an H×W window of it zero-padded by `pad` at a
        uniform offset in [0, 2·pad]², mirrored with probability ½ (row and column
        indices per image, two gathers)."""
        b, c, h, w = x.shape
        dev = x.device
        top = torch.randint(0, 2 * pad + 1, (b, 1, 1, 1), device=dev, generator=self.gen)
        left = torch.randint(0, 2 * pad + 1, (b, 1, 1, 1), device=dev, generator=self.gen)
        flip = torch.randint(0, 2, (b, 1, 1, 1), device=dev, generator=self.gen).bool()
        j = torch.arange(w, device=dev).view(1, 1, 1, w)
        columns = left + torch.where(flip, w - 1 - j, j)  # [B, 1, 1, W]
        rows = top + torch.arange(h, device=dev).view(1, 1, h, 1)  # [B, 1, H, 1]
        padded = F.pad(x, (pad, pad, pad, pad))
        out = padded.gather(2, rows.expand(b, c, h, w + 2 * pad))
        return out.gather(3, columns.expand(b, c, h, w))


# -------------------------------------------------------------------------------- models


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


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), the shortcut the identity or
    a 1×1 strided conv → BN where the shape changes."""

    def __init__(self, inputs, outputs, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(outputs)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(outputs)
        self.shortcut = nn.Sequential()
        if stride != 1 or inputs != outputs:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """kuangliu/pytorch-cifar's ResNet (3×3 stride-1 stem → 64, BN, relu; four stages of
    width 64, 128, 256, 512, the first block of stages 2–4 with stride 2; global average
    pooling; linear 512 → classes), PyTorch's default initialisation."""

    def __init__(self, blocks=(3, 4, 6, 3), channels=3, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        inputs = 64
        for stage, (width, count) in enumerate(zip((64, 128, 256, 512), blocks)):
            layers = []
            for index in range(count):
                stride = 2 if stage > 0 and index == 0 else 1
                layers.append(BasicBlock(inputs, width, stride))
                inputs = width
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layers))
        self.linear = nn.Linear(512, classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


RESNET34_PARAMETERS = 21_282_122  # src/models/resnet.rs, 3×32×32 images, 10 classes


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
    """Algorithm 1 with SISA's preconditioner Q_i = Diag(√m_i) on flat buffers, following
    src/optim/admm/mod.rs (Admm) and precondition.rs (SecondMoment) step for step: the
    same in-place passes over [P] and [m, P] buffers."""

    def __init__(self, w0, alphas, sigma0, rho, gamma, k0, scheme, beta, eta, lam, mu):
        m, p = len(alphas), w0.numel()
        opts = dict(dtype=w0.dtype, device=w0.device)
        self.alphas = list(alphas)
        self.alpha_t = torch.tensor(alphas, **opts)
        self.rho0, self.gamma, self.k0 = rho, gamma, k0
        self.scheme, self.beta, self.eta, self.lam, self.mu = scheme, beta, eta, lam, mu
        self.sigma_base = self.sigma = sigma0
        self.rho = rho
        self.iteration = 0
        self.w = w0.clone()  # the global point w^{ℓ+1}
        self.dual = torch.zeros(m, p, **opts)  # row i is π_i
        self.dual_sum = torch.zeros(p, **opts)  # S = Σ α_i π_i as the iteration began
        self.scratch = torch.empty(p, **opts)  # the preconditioner's denominator
        self.moment = torch.zeros(m, p, **opts)  # row i is n_i (m_i of (4.4))
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
        decay = self.mu - self.lam
        if decay != 0.0:  # ∇ of the (μ − λ)/2 ‖w‖² that F_i carries (2.4)
            grad.add_(self.w, alpha=decay)
        u = grad.add_(dual)
        out = self.scratch
        # (4.4): n_i ← n_i + u² (I), or β n_i + (1 − β) u² (II, III; III with the bias
        # correction 1 − β^{ℓ+1})
        self.steps[worker] += 1
        if self.scheme == 1:
            moment.addcmul_(u, u)
            bias = 1.0
        else:
            torch.mul(u, u, out=out)
            moment.lerp_(out, 1.0 - self.beta)
            bias = 1.0 - self.beta ** self.steps[worker] if self.scheme == 3 else 1.0
        # (4.3): the clip at η²·bias on the uncorrected moment; √m_i = c·r
        torch.clamp_max(moment, self.eta * self.eta * bias, out=out)
        out.sqrt_()
        c = 1.0 / math.sqrt(bias)
        # (2.13), (2.14) with (4.5): π_i ← π_i − σ u/(σ + ρ c r), as r ← −(σ + ρ c r)/σ,
        # π_i ← π_i + u/r
        torch.add(self.neg_one, out, alpha=-self.rho * c / self.sigma, out=out)
        dual.addcdiv_(u, out)

    def end_iteration(self):
        self.iteration += 1


# --------------------------------------------------------------------- optimizer settings

# pisa's defaults (src/optim/admm, src/optim/baselines), but sigma0 (required there).
HYPERS = {
    "sisa": dict(sigma0=1.0, rho=1.0, gamma=0.99, k0=1, k0_epochs=None, gamma_rule=None,
                 scheme=3, beta=0.9, eta=1e8, mu=0.0, **{"lambda": 0.0}),
    "adam": dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False),
    "sgd": dict(lr=0.1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0),
}


def hypers(optimizer, pairs):
    """The optimizer's settings: its defaults with the KEY=VALUE `pairs` over them."""
    h = dict(HYPERS[optimizer])
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in h:
            raise SystemExit(
                f"--hyper {pair!r}: {optimizer} takes KEY=VALUE with KEY one of {', '.join(h)}"
            )
        try:
            h[key] = json.loads(value)
        except json.JSONDecodeError:
            h[key] = value
    if h.get("gamma_rule") not in (None, "fixed"):
        raise SystemExit("--hyper gamma_rule: only the fixed γ is written out here")
    return h


def sisa_k0(h, per_epoch):
    """Iterations between σ updates: k0_epochs·n, rule (A.1) for k0 = "auto", else k0."""
    if h["k0_epochs"] is not None:
        return int(h["k0_epochs"]) * per_epoch
    if h["k0"] == "auto":
        g = float(h["gamma"])
        if g >= 1.0:
            return 1
        return max(math.ceil(round(math.log(g) / math.log(0.99) * 1e9) / 1e9), 1)
    return int(h["k0"])


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


def flat_state(model):
    """The batch-norm running statistics as views of one flat [B] buffer (pisa's
    FlatParams::state); the num_batches_tracked counters are dropped (pisa's batch norm,
    momentum 0.1, has none). Returns the buffer (empty for models without any)."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.num_batches_tracked = None
    owners = [(m, name, b) for m in model.modules() for name, b in m._buffers.items()
              if b is not None]
    if not owners:
        return None
    state = torch.cat([b.detach().reshape(-1) for _, _, b in owners])
    offset = 0
    for module, name, b in owners:
        n = b.numel()
        module._buffers[name] = state[offset : offset + n].view_as(b)
        offset += n
    return state


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=["simple_cnn", "resnet34"], default="simple_cnn")
    ap.add_argument("--optimizer", choices=sorted(HYPERS), default="sisa")
    ap.add_argument("--hyper", action="append", default=[], metavar="KEY=VALUE",
                    help="an optimizer setting with pisa's key, VALUE as JSON (repeatable)")
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist",
                    help="Fashion-MNIST's IDX files (simple_cnn)")
    ap.add_argument("--samples", type=int, default=50000,
                    help="synthetic training images (resnet34); a fifth as many test images")
    ap.add_argument("--augment", choices=["none", "crop-flip"], default=None,
                    help="default: crop-flip for resnet34 (CIFAR), none for simple_cnn")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    ap.add_argument("--channels-last", action="store_true",
                    help="input batches channels-last (train.channels_last)")
    ap.add_argument("--autocast", choices=["bf16", "f16"], default=None,
                    help="forward and loss under torch.autocast (train.autocast)")
    ap.add_argument("--max-iterations", type=int, default=0,
                    help="run this many iterations in place of --epochs (pisa's "
                    "train.iterations; 0 = --epochs)")
    ap.add_argument("--eval", action="store_true", help="test accuracy at the end (untimed)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    m, b = args.workers, args.batch_size
    h = hypers(args.optimizer, args.hyper)
    augment = args.augment or ("crop-flip" if args.model == "resnet34" else "none")

    # Data: uint8 pixels and int64 labels, on the device.
    if args.model == "resnet34":
        (train_x, train_y), (test_x, test_y) = synthetic_images(
            (3, 32, 32), 10, args.samples, max(args.samples // 5, 1), args.seed
        )
    else:
        train_x, train_y = load_split(args.data_dir, "train")
        test_x, test_y = load_split(args.data_dir, "t10k")
    mean, std = unit_stats(train_x)

    # The seeded shuffle, cut into m contiguous shares whose sizes differ by at most one.
    n = train_x.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed))
    train_x, train_y = train_x[perm].to(device), train_y[perm].to(device)
    sizes = [n // m + (1 if i < n % m else 0) for i in range(m)]
    if min(sizes) < b:
        raise SystemExit(f"batch {b} exceeds the {min(sizes)} samples of the smallest share")
    starts = [sum(sizes[:i]) for i in range(m)]
    alphas = [s / n for s in sizes]
    samplers = [Sampler(starts[i], sizes[i], args.seed, i, device) for i in range(m)]
    transform = Transform(mean, std, augment, device, args.seed)
    per_epoch = max(min(sizes) // b, 1)
    # pisa's train.iterations = N, or train.epochs = E
    iterations = args.max_iterations if args.max_iterations > 0 else args.epochs * per_epoch

    torch.manual_seed(args.seed)
    model = (CifarResNet() if args.model == "resnet34" else SimpleCNN()).to(device)
    count = sum(p.numel() for p in model.parameters())
    if args.model == "resnet34":
        assert count == RESNET34_PARAMETERS, f"ResNet-34 has {count} parameters"
    model.train()
    flat, grads = flat_views(model)
    state = flat_state(model)
    # Each worker's copy of the running statistics ([m, B]).
    worker_state = state.unsqueeze(0).repeat(m, 1) if state is not None else None

    if args.optimizer == "sisa":
        opt = Sisa(flat, alphas, float(h["sigma0"]), float(h["rho"]), float(h["gamma"]),
                   sisa_k0(h, per_epoch), int(h["scheme"]), float(h["beta"]),
                   float(h["eta"]), float(h["lambda"]), float(h["mu"]))
    else:
        flat.grad = grads  # the optimizer's one parameter is the flat buffer
        if args.optimizer == "adam":
            opt = torch.optim.Adam([flat], lr=h["lr"], betas=(h["beta1"], h["beta2"]),
                                   eps=h["eps"], weight_decay=h["weight_decay"],
                                   amsgrad=bool(h["amsgrad"]), foreach=True)
        else:
            opt = torch.optim.SGD([flat], lr=h["lr"], momentum=h["momentum"],
                                  dampening=h["dampening"], nesterov=bool(h["nesterov"]),
                                  weight_decay=h["weight_decay"], foreach=True)

    autocast_dtype = {"bf16": torch.bfloat16, "f16": torch.float16}.get(args.autocast)

    def gradient(i, weight=None):
        """Worker i's batch through the model with its own running statistics; backward
        adds the (weighted) mean cross-entropy's gradient into the flat buffer."""
        rows = samplers[i].next(b)
        if state is not None:
            state.copy_(worker_state[i])
        x = transform.train(train_x[rows])
        if args.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if autocast_dtype is None:
            loss = F.cross_entropy(model(x), train_y[rows])
        else:
            with torch.autocast(device.type, dtype=autocast_dtype):
                loss = F.cross_entropy(model(x), train_y[rows])
        (loss if weight is None else loss * weight).backward()
        if state is not None:
            worker_state[i].copy_(state)
        return loss

    def sisa_iteration():
        opt.begin_iteration()
        for i in range(m):
            flat.copy_(opt.w)  # the global point into the model (FlatParams::load)
            grads.zero_()
            loss = gradient(i)
            opt.local_update(i, grads)  # consumes g_i (u = π_i + g_i in its buffer)
        opt.end_iteration()
        return loss

    def classic_iteration():
        opt.zero_grad(set_to_none=False)
        for i in range(m):
            loss = gradient(i, alphas[i])  # Σ α_i g_i, all at the same point
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
        if it == 0:  # backward must accumulate in place
            assert p0.grad.data_ptr() == grads.data_ptr(), "gradient left the flat buffer"
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start

    images = iterations * m * b
    result = {
        "model": args.model,
        "optimizer": args.optimizer,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "parameters": count,
        "channels_last": args.channels_last,
        "autocast": args.autocast,
        "augment": augment,
        "train_samples": n,
        "iterations_per_epoch": per_epoch,
        "iterations": iterations,
        "images": images,
        "seconds": round(seconds, 4),
        "images_per_s": round(images / seconds, 1) if seconds > 0 else None,
        "last_loss": round(loss.item(), 5) if loss is not None else None,
    }
    if args.eval:  # the global point, worker 0's running statistics (pisa's evaluation)
        if args.optimizer == "sisa":
            flat.copy_(opt.w)
        if state is not None:
            state.copy_(worker_state[0])
        model.eval()
        correct = 0
        with torch.no_grad():
            for s in range(0, test_x.shape[0], 1000):
                x = transform.eval(test_x[s : s + 1000].to(device))
                if args.channels_last and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                pred = model(x).argmax(-1).cpu()
                correct += (pred == test_y[s : s + 1000]).sum().item()
        result["test_acc"] = correct / test_x.shape[0]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
