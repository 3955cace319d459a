#!/usr/bin/env python3
"""Communication of the Fed-LAMB study's best configurations (results/fed-lamb/fedlamb.csv):
per method, the floats sent up and down per round and over the whole run (to the final
accuracy), and the first evaluated round at which the mean over seeds reaches each target
accuracy, with the floats sent up by then. Reads each run's metrics.csv (floats_up and
floats_down are cumulative). Writes <dir>/fedlamb-communication.md and prints it.
    python3 scripts/fedlamb_communication.py [results/fed-lamb] [--targets 85,90]
"""
import csv
import json
import sys
from pathlib import Path

args = [a for a in sys.argv[1:] if not a.startswith("--")]
out = Path(args[0] if args else "results/fed-lamb")
targets = [85.0, 90.0]
for a in sys.argv[1:]:
    if a.startswith("--targets="):
        targets = [float(t) for t in a.split("=", 1)[1].split(",")]


def config_of(summary):
    point = {k: v for k, v in summary.get("point", {}).items() if k != "seed"}
    return " ".join(sorted(f"{k.rsplit('.', 1)[-1]}={json.dumps(v)}" for k, v in point.items()))


def read_metrics(run):
    with open(run / "metrics.csv") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


best = {}
with open(out / "fedlamb.csv") as f:
    for row in csv.DictReader(f):
        best[row["algorithm"]] = (row["config"], float(row["mean"]), float(row["std"]))

lines = [
    "| method | config | final test acc. (%) | rounds | floats up / round | floats down / round "
    "| floats up, whole run | floats down, whole run | "
    + " | ".join(f"first round ≥ {t:g} % (floats up by then)" for t in targets)
    + " |",
    "|---|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(targets),
]
for method in ["fedsgd", "fedams", "fedlamb", "sisa"]:
    if method not in best:
        continue
    config, mean, std = best[method]
    runs = []
    for summary_file in sorted(out.glob(f"*-{method}/*/summary.json")):
        summary = json.loads(summary_file.read_text())
        if summary["status"] == "completed" and config_of(summary) == config:
            runs.append(read_metrics(summary_file.parent))
    rows = min(len(r) for r in runs)
    last = [r[rows - 1] for r in runs]
    rounds = int(last[0]["iteration"])
    up, down = last[0]["floats_up"], last[0]["floats_down"]
    assert all(l["floats_up"] == up and l["floats_down"] == down for l in last), method
    reached = []
    for t in targets:
        hit = None
        for i in range(rows):
            acc = 100 * sum(r[i]["test_acc"] for r in runs) / len(runs)
            if acc >= t:
                hit = (int(runs[0][i]["iteration"]), runs[0][i]["floats_up"])
                break
        reached.append("not reached" if hit is None else f"{hit[0]} ({hit[1]:.3g})")
    lines.append(
        f"| {method} | {config} | {mean:.2f} ± {std:.2f} | {rounds} | {up / rounds:.4g} "
        f"| {down / rounds:.4g} | {up:.4g} | {down:.4g} | " + " | ".join(reached) + " |"
    )
text = "\n".join(lines) + "\n"
(out / "fedlamb-communication.md").write_text(text)
print(text, end="")
