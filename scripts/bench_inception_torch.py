#!/usr/bin/env python3
"""Seconds per 100 images of FID's feature extractor on this machine: pytorch-fid's
InceptionV3 (pool3, 2048 features; mseitzer/pytorch-fid, pytorch_fid/inception.py), the
network pisa's `fid` score runs (src/models/inception.rs), in plain PyTorch.

The FID weights (pt_inception-2015-12-05) are not on this machine and nothing is
downloaded: the same network is built as pytorch-fid's fid_inception_v3 builds it
(torchvision's Inception v3 with 1008 classes, its blocks replaced by pytorch-fid's FID
blocks) but with torch.manual_seed(0)'s random initialisation in place of loading the
file; the cost of a forward pass does not depend on the weights' values.

Input: batches of 32×32 images in [0, 1] with 3 channels (Table 4's CIFAR-10 size),
which InceptionV3 resizes to 299×299 (bilinear) and maps to [−1, 1], under no_grad in
evaluation mode. The first batch is a warm-up; the next --batches are timed (wall:
perf_counter, CPU: process_time). Prints one JSON line.

Needs pytorch-fid 0.3.0 and torchvision 0.26.0 beside torch 2.11.0 (the venv's, installed
by scripts/golden_fid.py's line: pip install "torch==2.11.0" torchvision==0.26.0
pytorch-fid==0.3.0).

    python scripts/bench_inception_torch.py [--threads 1] [--batch 100] [--batches 2]
"""
import argparse
import json
import time

import torch
import pytorch_fid.inception as fid


def seeded_fid_inception_v3():
    """fid_inception_v3's network with seeded random weights instead of the FID file."""
    net = fid._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = fid.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = fid.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = fid.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = fid.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = fid.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = fid.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = fid.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = fid.FIDInceptionE_1(1280)
    net.Mixed_7c = fid.FIDInceptionE_2(2048)
    return net


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--batches", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    fid.fid_inception_v3 = seeded_fid_inception_v3  # InceptionV3 builds its network by it
    model = fid.InceptionV3([fid.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    seconds, cpu = [], []
    with torch.no_grad():
        for k in range(args.batches + 1):
            x = torch.rand(args.batch, 3, 32, 32)
            start, cpu_start = time.perf_counter(), time.process_time()
            features = model(x)[0]
            seconds.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
    assert features.shape == (args.batch, 2048, 1, 1), features.shape
    timed = args.batches
    print(json.dumps({
        "threads": torch.get_num_threads(), "batch": args.batch, "timed_batches": timed,
        "s_per_100": round(100 * sum(seconds[1:]) / (timed * args.batch), 3),
        "cpu_s_per_100": round(100 * sum(cpu[1:]) / (timed * args.batch), 3),
        "batch_seconds": [round(s, 3) for s in seconds],
    }))


if __name__ == "__main__":
    main()
