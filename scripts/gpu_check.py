#!/usr/bin/env python3
"""One call that measures everything worth knowing on a lent GPU; run by scripts/gpu-check
(which says how to call it, and sets up PISA_BIN's libraries). Writes OUT/gpu-check.md, a
section at a time, so that what finished is kept if a later section runs out of time.

Sections, in the order they run (the most wanted first; --only picks some):
  machine     the GPU (nvidia-smi), torch, numpy, pisa's version.
  optimizers  every registered optimizer, 5 iterations on the same tiny problem (an MLP on
              8×8 synthetic images, 2 workers × 8, from one w⁰ written by `pisa init`) on the
              CPU and on the GPU, in f64 and f32; every metric of every row compared. The
              tolerance is relative, |a − b| / max(|a|, |b|, 1e-6): 1e-9 in f64 and 1e-4 in
              f32 (cuBLAS and the CPU's BLAS sum in different orders; five steps amplify it).
              pisa's fused updates run on the CPU only (CUDA takes the tensor-op path),
              so the CPU side is the fused path where it applies: this compares the two.
  resnet34    scripts/bench-vision --model resnet34, SISA and Adam, m = 4 × 32, one epoch of
              CIFAR-10-sized synthetic data: f32, then bf16 autocast with channels-last; pisa
              beside the PyTorch script; the goal (an epoch ≤ 15 s, pisa/torch ≤ 1) checked.
  gpt         GPT-2 nano (experiments/figure2/nano, bf16 autocast, 4 workers × 16 × 1024) on
              random tokens: training tokens/s and the peak GPU memory of the process
              (nvidia-smi, sampled every 50 ms: CUDA context and the caching allocator's
              reserve included) for each of Figure 2's six optimizers (Table 7's column),
              and PyTorch's modded GPT with AdamW on the same batch beside it.
  lstm        scripts/bench-lstm --layers 3 (Table 8's AWD-LSTM), SISA and Adam.

--dry-run does all of it on the CPU at toy sizes (the GPU compared with itself is the CPU
compared with itself, the GPT is the reduced one, peaks are ru_maxrss): CI runs it so that
the script works when a GPU comes.
"""
import argparse
import array
import csv
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPTIMIZERS_GPT = ["nsisa", "adamw", "muon", "shampoo", "soap", "adam_mini"]
# Values for the hyperparameters an optimizer requires (`pisa list optimizers`).
REQUIRED = {"sigma0": "1.0", "scheme": "3", "inner": '{ name = "adam", lr = 1e-3 }'}
TOLERANCE = {"f64": 1e-9, "f32": 1e-4}
SECTIONS = ["machine", "optimizers", "resnet34", "gpt", "lstm"]


class Report:
    """The Markdown report, rewritten after every addition."""

    def __init__(self, path):
        self.path, self.lines = path, []

    def add(self, *lines):
        self.lines += lines
        self.path.write_text("\n".join(self.lines) + "\n")
        for line in lines:
            print(line, flush=True)

    def table(self, header, rows):
        self.add("| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                 *("| " + " | ".join(str(c) for c in r) + " |" for r in rows))


class Check:
    def __init__(self, args, report, tmp):
        self.args, self.report, self.tmp = args, report, tmp
        self.dry = args.dry_run
        self.device = "cpu" if self.dry else "cuda"
        self.pisa = args.pisa
        self.failures = 0

    # ---- running things ----------------------------------------------------------------

    def run(self, cmd, timeout, peak=False):
        """Runs cmd; returns (ok, stdout, stderr, peak MiB or None): with peak, the process's
        peak GPU memory as nvidia-smi reports it (on a dry run, its resident peak)."""
        start = time.time()
        with tempfile.TemporaryFile("w+") as out_f, tempfile.TemporaryFile("w+") as err_f:
            child = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, stdout=out_f, stderr=err_f,
                                     text=True)
            samples, done = [0], threading.Event()
            if peak and not self.dry:
                threading.Thread(target=sample_gpu_memory, args=(child.pid, samples, done),
                                 daemon=True).start()
            killer = threading.Timer(timeout, child.kill)
            killer.start()
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
            killer.cancel()
            done.set()
            out_f.seek(0)
            err_f.seek(0)
            out, err = out_f.read(), err_f.read()
        if time.time() - start >= timeout:
            err += f"\n(killed after {timeout:.0f} s)"
        mib = None
        if peak:
            mib = usage.ru_maxrss / 1024 if self.dry else max(samples)
        ok = child.returncode == 0
        if not ok:
            self.failures += 1
            tail = "\n".join((err or out).strip().splitlines()[-15:])
            self.report.add(f"FAILED ({time.time() - start:.0f} s): `{' '.join(map(str, cmd))}`",
                            "```", tail, "```")
        return ok, out, err, mib

    def pisa_cmd(self, *args):
        """pisa with libtorch_cuda.so preloaded where scripts/gpu-check found one."""
        preload = os.environ.get("PISA_PRELOAD")
        env = ["env", f"LD_PRELOAD={preload}"] if preload and not self.dry else []
        return [*env, self.pisa, *map(str, args)]

    # ---- sections ----------------------------------------------------------------------

    def machine(self):
        r = self.report
        r.add("## Machine", "")
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True) \
            if shutil.which("nvidia-smi") else None
        r.add(f"- GPU: {smi.stdout.strip() if smi and smi.returncode == 0 else 'none (nvidia-smi absent or failed)'}")
        import torch
        r.add(f"- torch {torch.__version__}, CUDA {torch.version.cuda}, "
              f"available: {torch.cuda.is_available()}")
        try:
            import numpy
            r.add(f"- numpy {numpy.__version__}")
        except ImportError:
            r.add("- numpy: absent (scripts/bench-vision and bench-lstm need it)")
        ok, out, _, _ = self.run(self.pisa_cmd("--version"), 60)
        r.add(f"- {out.strip() if ok else 'pisa did not start'}; CPU: {cpu_name()}, "
              f"{os.cpu_count()} cores", "")

    def optimizers(self):
        r = self.report
        r.add("## Optimizers: GPU against CPU", "",
              f"Every registered optimizer, 5 iterations of an MLP on 8×8 synthetic images "
              f"(2 workers × 8, one w⁰ from `pisa init`), on the CPU and on {self.device}; "
              "the largest relative difference of any metric in any row "
              f"(tolerance {TOLERANCE['f64']:g} in f64, {TOLERANCE['f32']:g} in f32).", "")
        ok, listing, _, _ = self.run(self.pisa_cmd("list", "optimizers"), 60)
        if not ok:
            return
        groups = {}
        for name, required in registry(listing):
            groups.setdefault(tuple(required), []).append(name)
        diffs = {}
        for dtype in ("f64", "f32"):
            runs = {}
            for side, device in (("cpu", "cpu"), ("device", self.device)):
                for g, (required, names) in enumerate(groups.items()):
                    spec = self.tmp / f"optim-{dtype}-{g}.toml"
                    w0 = self.tmp / f"w0-{dtype}.safetensors"
                    if not w0.exists():
                        spec.write_text(optimizer_spec(dtype, names, required, None))
                        ok, *_ = self.run(self.pisa_cmd("init", spec, "--out", w0), 120)
                        if not ok:
                            return
                    spec.write_text(optimizer_spec(dtype, names, required, w0))
                    out = self.tmp / f"optim-{dtype}-{side}"
                    ok, *_ = self.run(self.pisa_cmd(
                        "sweep", spec, "--out", out, "--jobs", 1, "--threads", 1,
                        "--set", f'train.device="{device}"'), 600)
                runs_dir = self.tmp / f"optim-{dtype}-{side}" / "gpu-check-optimizers"
                for run in sorted(runs_dir.glob("name=*")):
                    runs.setdefault(run.name[5:], {})[side] = read_metrics(run)
            for name, by_device in runs.items():
                diffs.setdefault(name, {})[dtype] = compare(by_device.get("cpu"),
                                                            by_device.get("device"))
        if not diffs:
            self.failures += 1
            r.add("FAILED: no run to compare", "")
            return
        rows = []
        for name, d in diffs.items():
            verdict = all(d.get(t) is not None and d[t] <= TOLERANCE[t] for t in TOLERANCE)
            self.failures += not verdict
            rows.append([name] + [fmt(d.get(t)) for t in ("f64", "f32")] + ["ok" if verdict else "FAIL"])
        r.table(["optimizer", "f64 max rel", "f32 max rel", "within tolerance"], rows)
        r.add("", "Fused against tensor-op updates: pisa's fused updates run on the CPU only "
              "(SGD, Adam/AdamW, SISA's dual update and (2.9)); the GPU runs the tensor-op "
              "path, so the CPU column above is the fused one where it applies.", "")

    def resnet34(self):
        r = self.report
        r.add("## ResNet-34, CIFAR-10-sized synthetic data, m = 4 × 32 (scripts/bench-vision)", "")
        configs = [("f32", [], ["sisa", "adam"])]
        if not self.dry:
            configs.append(("bf16 autocast, channels-last",
                            ["--autocast", "bf16", "--channels-last"], ["sisa"]))
        for label, flags, opts in configs:
            if self.dry:
                cmd = ["scripts/bench-vision", "--model", "resnet34", "--device", "cpu",
                       "--threads", "2", "--max-iterations", "1", "--samples", "16",
                       "--workers", "2", "--batch-size", "4", "sisa"]
            else:
                cmd = ["scripts/bench-vision", "--model", "resnet34", "--device", "cuda",
                       "--epochs", "1", *flags, *opts]
            r.add(f"### {label}", "", f"`{' '.join(cmd)}`", "")
            ok, out, _, _ = self.run(cmd, 420)
            if not ok:
                continue
            r.add("```", out.strip(), "```", "")
            for opt, epoch, ratio in [] if self.dry else bench_vision_rows(out):
                met = epoch <= 15 and ratio <= 1
                r.add(f"- GOAL {opt} ({label}): epoch {epoch:.2f} s (≤ 15), pisa/torch {ratio:.2f} "
                      f"(≤ 1): {'met' if met else 'not met'}")
            r.add("")

    def gpt(self):
        r = self.report
        size = "reduced" if self.dry else "nano"
        iterations = 2 if self.dry else 10
        r.add(f"## GPT-2 {size} (experiments/figure2/{size}), random tokens", "")
        data = self.tmp / "tokens"
        random_shards(data / "random", 400_000 if self.dry else 3_000_000)
        sets = ["data.path=\"random\"", "data.val_tokens=8192", f"train.iterations={iterations}",
                f"train.eval_every={iterations}", "schedule.warmdown=1", "train.checkpoint_every=0",
                f'train.device="{self.device}"', "train.eval_batch_size=4"]
        if self.dry:  # the reduced layout made smaller still: 1 layer, width 32, T = 32
            sets = [x for x in sets if not x.startswith("data.val_tokens")]
            sets += ["data.val_tokens=256", "train.batch_size=1", "train.threads=2",
                     "model.n_layer=1", "model.n_head=2", "model.n_embd=32", "model.block_size=32"]
        rows, resolved = [], None
        for optimizer in OPTIMIZERS_GPT:
            spec = ROOT / f"experiments/figure2/{size}/{optimizer}.toml"
            out = self.tmp / f"gpt-{optimizer}"
            cmd = self.pisa_cmd("run", spec, "--data-dir", data, "--out", out, "--run-id", "check",
                                *[a for s in sets for a in ("--set", s)])
            ok, _, _, mib = self.run(cmd, 240, peak=True)
            if not ok:
                continue
            run = next((out).glob("*/check"))
            summary = json.loads((run / "summary.json").read_text())
            resolved = resolved or tomllib.loads((run / "spec.toml").read_text())
            rows.append([f"pisa {optimizer}", f"{summary['last']['tokens'] / summary['wall_s']:.0f}",
                         fmt_mib(mib)])
        if resolved:
            m, t = resolved["model"], resolved["train"]
            cmd = [sys.executable, "scripts/gpu_check.py", "torch-gpt", "--device", self.device,
                   "--layers", m["n_layer"], "--heads", m["n_head"], "--width", m["n_embd"],
                   "--block", m["block_size"], "--workers", t["workers"], "--batch", t["batch_size"],
                   "--iterations", iterations, "--autocast", t.get("autocast", "none")]
            ok, out, _, mib = self.run([str(c) for c in cmd], 240, peak=True)
            if ok:
                res = json.loads(out.strip().splitlines()[-1])
                rows.append(["PyTorch adamw (modded GPT, eager)", f"{res['tokens_per_s']:.0f}",
                             f"{fmt_mib(mib)}" + ("" if self.dry else
                                                  f" (torch max allocated {res['max_allocated_mib']:.0f})")])
        kind = "resident peak MiB (ru_maxrss)" if self.dry else "peak GPU MiB (nvidia-smi)"
        r.add(f"{iterations} iterations each; tokens/s from wall_s (training only; PyTorch's after "
              "one warm-up iteration).", "")
        r.table(["run", "training tokens/s", kind], rows)
        r.add("")

    def lstm(self):
        r = self.report
        if self.dry:
            cmd = ["scripts/bench-lstm", "--layers", "1", "--device", "cpu", "--threads", "2",
                   "--iterations", "2", "sisa"]
        else:
            cmd = ["scripts/bench-lstm", "--layers", "3", "--device", "cuda", "--iterations",
                   "30", "sisa", "adam"]
        r.add("## AWD-LSTM (scripts/bench-lstm)", "", f"`{' '.join(cmd)}`", "")
        ok, out, _, _ = self.run(cmd, 300)
        if ok:
            r.add("```", out.strip(), "```", "")


# ---- helpers --------------------------------------------------------------------------------

def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def sample_gpu_memory(pid, samples, done):
    """Appends the MiB nvidia-smi reports for pid's compute context every 50 ms."""
    while not done.is_set():
        q = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                            "--format=csv,noheader,nounits"], capture_output=True, text=True)
        for line in q.stdout.splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 2 and parts[0] == str(pid) and parts[1].isdigit():
                samples.append(int(parts[1]))
        done.wait(0.05)


def registry(listing):
    """(name, [required hyperparameters]) for every optimizer `pisa list optimizers` prints."""
    out = []
    for line in listing.splitlines():
        if line and not line[0].isspace():
            out.append((line.strip(), []))
        m = re.match(r"\s{4}(\w+)\s+= required", line)
        if m and out:
            out[-1][1].append(m.group(1))
    return out


def optimizer_spec(dtype, names, required, w0):
    extra = "".join(f"{k} = {REQUIRED[k]}\n" for k in required)
    grid = ", ".join(json.dumps(n) for n in names)
    init = "" if w0 is None else f"init = {json.dumps(str(w0))}"
    return f"""name = "gpu-check-optimizers"
seed = 1

[data]
kind = "synthetic_images"
samples = 64
image = [1, 8, 8]
classes = 4

[model]
kind = "mlp"
hidden = [16]

[train]
workers = 2
batch_size = 8
iterations = 5
eval_every = 1
checkpoint_every = 0
dtype = "{dtype}"
{init}

[optimizer]
name = {json.dumps(names[0])}
{extra}
[sweep]
"optimizer.name" = [{grid}]
"""


def read_metrics(run):
    if not (run / "metrics.csv").exists():
        return None
    return list(csv.DictReader(open(run / "metrics.csv")))


def compare(a, b):
    """The largest relative difference of any numeric column (but the wall time) in any row;
    None when a side is missing or the rows differ in number."""
    if not a or not b or len(a) != len(b):
        return None
    worst = 0.0
    for ra, rb in zip(a, b):
        for k, va in ra.items():
            if k == "wall_s" or k not in rb:
                continue
            try:
                x, y = float(va), float(rb[k])
            except ValueError:
                continue
            worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-6))
    return worst


def fmt(x):
    return "missing" if x is None else f"{x:.1e}"


def fmt_mib(x):
    return "?" if x is None else f"{x:.0f}"


def bench_vision_rows(out):
    """(opt, pisa -eval s/epoch, pisa/torch) from scripts/bench-vision's table."""
    rows = []
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 11 and cells[0] not in ("opt", "") and not cells[0].startswith("-"):
            try:
                rows.append((cells[0], float(cells[6]), float(cells[10])))
            except ValueError:
                pass
    return rows


def random_shards(folder, train_tokens):
    """modded-nanogpt token shards of random GPT-2 ids (header 20240520, version 1, count)."""
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("random_val_000000.bin", 70_000), ("random_train_000001.bin", train_tokens)):
        header = array.array("i", [20240520, 1, n] + [0] * 253)
        tokens = array.array("H", (rng.randrange(50257) for _ in range(n)))
        with open(folder / name, "wb") as f:
            f.write(header.tobytes())
            f.write(tokens.tobytes())


def torch_gpt(args):
    """PyTorch's side of the GPT throughput: the modded GPT, m micro-batches of b × T random
    tokens, the mean gradient, one AdamW step; tokens/s after one warm-up iteration."""
    import torch
    sys.path.insert(0, str(ROOT / "scripts"))
    from modded_gpt import GPT, GPTConfig
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = GPT(GPTConfig(50304, args.layers, args.heads, args.width)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=0.0018, betas=(0.9, 0.95), weight_decay=0.0)
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16}.get(args.autocast)
    data = torch.randint(0, 50257, (args.iterations + 1, args.workers, args.batch, args.block + 1),
                         device=device)

    def step(it):
        for w in range(args.workers):
            x, y = data[it, w, :, :-1], data[it, w, :, 1:]
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, 50304), y.reshape(-1))
            (loss / args.workers).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    step(0)
    sync()
    start = time.perf_counter()
    for it in range(1, args.iterations + 1):
        step(it)
    sync()
    seconds = time.perf_counter() - start
    tokens = args.iterations * args.workers * args.batch * args.block
    allocated = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else float("nan")
    print(json.dumps({"tokens_per_s": tokens / seconds, "max_allocated_mib": allocated}))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    t = sub.add_parser("torch-gpt")
    for k in ("layers", "heads", "width", "block", "workers", "batch", "iterations"):
        t.add_argument(f"--{k}", type=int, required=True)
    t.add_argument("--device", default="cuda")
    t.add_argument("--autocast", default="none")
    parser.add_argument("--out", type=Path, required=False)
    parser.add_argument("--pisa", default=os.environ.get("PISA_BIN", str(ROOT / "target/release/pisa")))
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--budget", type=float, default=450,
                        help="seconds after which the sections not yet begun are skipped")
    args = parser.parse_args()
    if args.command == "torch-gpt":
        return torch_gpt(args)
    if args.out is None:
        parser.error("--out DIR is required")
    only = args.only.split(",")
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        parser.error(f"--only: unknown section(s) {', '.join(unknown)}; the sections: {', '.join(SECTIONS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    report = Report(args.out / "gpu-check.md")
    report.add(f"# pisa GPU check, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
               f"{' (DRY RUN on the CPU: not GPU figures)' if args.dry_run else ''}", "")
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        check = Check(args, report, Path(tmp))
        for section in SECTIONS:
            if section in only and time.time() - start > args.budget:
                report.add(f"## {section}: skipped, past the {args.budget:.0f} s budget", "")
            elif section in only:
                began = time.time()
                getattr(check, section)()
                report.add(f"({section}: {time.time() - began:.0f} s)", "")
    report.add(f"Total {time.time() - start:.0f} s; {check.failures} failure(s).")
    sys.exit(1 if check.failures else 0)


if __name__ == "__main__":
    main()
