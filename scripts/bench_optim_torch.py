#!/usr/bin/env python3
"""PyTorch's side of the optimizer benchmark (benches/optim.rs): one `torch.optim.Adam`
step on the parameters of ResNet-34 for CIFAR-10 (the AdaBelief-suite network,
P = 21,282,122), with foreach=True, foreach=False and fused=True, beside the device's
copy bandwidth; then fused AdamW (weight decay 1e-2, pisa's default) and SGD with
momentum 0.9 (foreach and fused), the references of pisa's fused updates. Same table
format and bytes model as the Rust side: 4·(m·P + 2·state + 2P) bytes per step = 7P·4 for
Adam (gradient read, exp_avg and exp_avg_sq read and written, the parameters read and
written).

    python scripts/bench_optim_torch.py [--device cpu|cuda] [--iters 20] [--warmup 3]
                                        [--threads N] [--budget 20]
"""
import argparse
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

RESNET34_CIFAR_PARAMS = 21_282_122


class BasicBlock(nn.Module):
    """kuangliu/pytorch-cifar models/resnet.py, as the AdaBelief suite uses it."""

    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, num_blocks=(3, 4, 6, 3), num_classes=10):
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(64, num_blocks[0], 1)
        self.layer2 = self._make_layer(128, num_blocks[1], 2)
        self.layer3 = self._make_layer(256, num_blocks[2], 2)
        self.layer4 = self._make_layer(512, num_blocks[3], 2)
        self.linear = nn.Linear(512, num_classes)

    def _make_layer(self, planes, blocks, stride):
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s))
            self.in_planes = planes
        return nn.Sequential(*layers)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device, warmup, iters, budget, f):
    """Median seconds of f() over `iters` calls after `warmup`; stops early (after at
    least 3) once `budget` seconds are spent."""
    for _ in range(warmup):
        f()
    sync(device)
    start = time.perf_counter()
    times = []
    while len(times) < iters and (len(times) < 3 or time.perf_counter() - start < budget):
        t = time.perf_counter()
        f()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times), len(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default=os.environ.get("PISA_BENCH_DEVICE", "cpu"))
    ap.add_argument("--iters", type=int, default=int(os.environ.get("PISA_BENCH_ITERS", 20)))
    ap.add_argument("--warmup", type=int, default=int(os.environ.get("PISA_BENCH_WARMUP", 3)))
    ap.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("PISA_BENCH_THREADS") or len(os.sched_getaffinity(0))),
    )
    ap.add_argument("--budget", type=float, default=float(os.environ.get("PISA_BENCH_BUDGET", 20)))
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available to torch here")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = ResNet().to(device)
    params = list(model.parameters())
    p = sum(t.numel() for t in params)
    assert p == RESNET34_CIFAR_PARAMS, p
    print(
        f"# torch {torch.__version__} Adam benchmark: ResNet-34/CIFAR-10 shapes, P = {p} "
        f"({len(params)} tensors), f32, device {device}, {torch.get_num_threads()} threads"
    )

    src = torch.randn(p, device=device)
    dst = torch.empty_like(src)
    copy_s, _ = timed(device, 3, 30, args.budget, lambda: dst.copy_(src))
    copy_bw = 8 * p / copy_s
    print(f"copy bandwidth: {copy_s * 1e3:.2f} ms per copy_ of P f32 = {copy_bw / 1e9:.1f} GB/s (read + write, 8P bytes)")
    print(f"RESULT copy_gbs={copy_bw / 1e9:.3f}")
    del src, dst

    for t in params:
        t.grad = torch.randn_like(t) * 1e-2
    variants = [("torch-adam-foreach", dict(foreach=True)), ("torch-adam-forloop", dict(foreach=False))]
    variants.append(("torch-adam-fused", dict(fused=True)))
    variants.append(("torch-adamw-fused", dict(fused=True, weight_decay=1e-2, kind=torch.optim.AdamW)))
    for impl in ("foreach", "fused"):
        variants.append((f"torch-sgd-{impl}", {impl: True, "momentum": 0.9, "kind": torch.optim.SGD}))
    # For information: foreach on one flat [P] tensor, the layout pisa uses.
    flat = torch.randn(p, device=device, requires_grad=True)
    flat.grad = torch.randn(p, device=device) * 1e-2

    rows = []
    for name, kw in variants + [("torch-adam-flat", dict(foreach=True))]:
        target = [flat] if name.endswith("flat") else params
        kw = dict(kw)
        kind = kw.pop("kind", torch.optim.Adam)
        try:
            opt = kind(target, lr=1e-3, **kw)
        except (RuntimeError, ValueError) as e:
            print(f"note: {name} skipped: {e}")
            continue

        @torch.no_grad()
        def step():
            opt.step()

        try:
            t, n = timed(device, args.warmup, args.iters, args.budget, step)
        except RuntimeError as e:
            print(f"note: {name} skipped: {e}")
            continue
        state = sum(v.numel() for s in opt.state.values() for v in s.values() if v.dim() > 0)
        rows.append((name, t, n, state / p, 4 * (p + 2 * state + 2 * p)))
        print(f"RESULT name={name} m=1 iter_ms={t * 1e3:.4f} worker_ms={t * 1e3:.4f}")
        del opt

    print()
    print("| optimizer | m | ms / iteration | ms / worker update | state / P | GB/s (lower bound) | of copy bw | timed iters |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, t, n, state_p, nbytes in rows:
        bw = nbytes / t
        print(f"| {name} | 1 | {t * 1e3:.2f} | {t * 1e3:.2f} | {state_p:.2f} | {bw / 1e9:.1f} | {100 * bw / copy_bw:.0f}% | {n} |")
    print()
    print(
        "GB/s: lower-bound bytes 4·(P + 2·state + 2P) per step (7P·4 for Adam, 5P·4 for SGD "
        "with momentum) / median time; "
        f'"of copy bw" divides by the {copy_bw / 1e9:.1f} GB/s of copy_. '
        "torch-adam-flat: foreach Adam on one flat [P] tensor (pisa's layout), for information."
    )


if __name__ == "__main__":
    main()
