#!/usr/bin/env python3
"""GPT pretraining speed and memory on this CPU (results/BENCHMARKS.md, "GPT-2 pretraining").

speed:  training tokens per second of the same step in pisa and in PyTorch: the reduced
        Figure 2 model (experiments/figure2/reduced: the Nano layout, 4 layers x 128, T 128),
        m = 4 workers x 4 sequences, AdamW, one thread, on random GPT-2 tokens. pisa's time
        is its wall_s (training only); PyTorch's is the same loop over scripts/modded_gpt.py's
        re-typing of the PISA Nano script's GPT (4 forward/backward passes, the mean
        gradient, one AdamW step). Both run in this one invocation, one after the other.
memory: Table 7's peak memory per optimizer, on CPU the resident peak (ru_maxrss) of a
        `pisa run` of 2 iterations of each reduced Figure 2 spec (or of --size nano), one
        sequence per worker so that the optimizer state, not the logits, sets the peak.

Run: scripts/bench-gpt [--iterations N] [--size reduced|nano]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
PISA = ROOT / "target" / "release" / "pisa"
OPTIMIZERS = ["nsisa", "adamw", "muon", "shampoo", "soap", "adam_mini"]


def write_shard(path, tokens):
    header = np.zeros(256, dtype=np.int32)
    header[:3] = (20240520, 1, len(tokens))
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.astype(np.uint16).tobytes())


def random_shards(folder, train_tokens):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    write_shard(folder / "random_val_000000.bin", rng.integers(0, 50257, 70_000))
    write_shard(folder / "random_train_000001.bin", rng.integers(0, 50257, train_tokens))


def pisa_run(spec, data, out, sets):
    """Runs pisa; returns (summary, peak resident MiB of the child)."""
    args = [str(PISA), "run", str(spec), "--data-dir", str(data), "--out", str(out)]
    args += ["--run-id", "bench"]
    for s in sets:
        args += ["--set", s]
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        sys.exit(f"pisa failed: {' '.join(args)}\n{child.stderr.read().decode()}")
    name = [l for l in Path(spec).read_text().splitlines() if l.startswith("name = ")][0]
    name = name.split('"')[1]
    summary = json.loads((out / name / "bench" / "summary.json").read_text())
    return summary, usage.ru_maxrss / 1024


def torch_speed(iterations):
    sys.path.insert(0, str(ROOT / "scripts"))
    import modded_gpt as g

    torch.manual_seed(0)
    config = g.GPTConfig()
    config.vocab_size, config.n_layer, config.n_head, config.n_embd = 50304, 4, 4, 128
    model = g.GPT(config)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0018, betas=(0.9, 0.95), weight_decay=0.0)
    data = torch.randint(0, 50257, (iterations, 4, 4, 129))
    start = time.perf_counter()
    for it in range(iterations):
        for worker in range(4):
            x, y = data[it, worker, :, :-1], data[it, worker, :, 1:]
            logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 50304).float(), y.reshape(-1))
            (loss / 4).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return iterations * 4 * 4 * 128 / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--size", choices=["reduced", "nano"], default="reduced")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        random_shards(data / "random", 2_000_000)
        common = [
            "data.path=random",
            "data.val_tokens=1024",
            "train.threads=1",
            "train.checkpoint_every=0",
        ]
        print(f"# {time.strftime('%Y-%m-%d')}, {os.uname().nodename}, torch {torch.__version__}")
        if args.size == "reduced":
            n = args.iterations
            sets = common + [
                f"train.iterations={n}",
                f"train.eval_every={n}",
                "schedule.warmdown=1",
            ]
            summary, _ = pisa_run(
                ROOT / "experiments/figure2/reduced/adamw.toml", data, tmp / "speed", sets
            )
            pisa_tps = summary["last"]["tokens"] / summary["wall_s"]
            torch_tps = torch_speed(n)
            print(f"speed (reduced, AdamW, {n} iterations, 1 thread): pisa {pisa_tps:.0f} "
                  f"tokens/s, PyTorch {torch_tps:.0f} tokens/s, ratio {pisa_tps / torch_tps:.2f}")
        print(f"memory ({args.size}: peak resident MiB of `pisa run`, 2 iterations, batch 1)")
        for optimizer in OPTIMIZERS:
            spec = ROOT / f"experiments/figure2/{args.size}/{optimizer}.toml"
            sets = common + [
                "train.iterations=2",
                "train.eval_every=2",
                "schedule.warmdown=1",
                "train.device=cpu",
                # one sequence per pass (training and evaluation), so that the
                # optimizer's state, not the 50,304-way logits, decides the peak
                "train.batch_size=1",
                "train.eval_batch_size=1",
            ]
            _, peak = pisa_run(spec, data, tmp / f"memory-{optimizer}", sets)
            print(f"  {optimizer:10s} {peak:8.0f}")


if __name__ == "__main__":
    main()
