#!/usr/bin/env python3
"""Converts the PISA repository's GPT2/dataset_splits.pth (the 900/100 split its recipes
scripts saved from random_split and reload) to experiments/table6/official-split.json,
for `[data] split` of the Table 6 specs.

Run: git clone https://github.com/Tracy-Wang7/PISA && \
     python3 scripts/recipes_split.py PISA/GPT2/dataset_splits.pth
(in pisa's venv: `. scripts/env.sh`; torch reads the file).
"""
import json
import sys
from pathlib import Path

import torch

OUT = Path(__file__).resolve().parent.parent / "experiments" / "table6" / "official-split.json"


def main():
    split = torch.load(sys.argv[1], weights_only=True)
    train, val = list(split["train_indices"]), list(split["val_indices"])
    assert len(train) == 900 and len(val) == 100
    assert sorted(train + val) == list(range(1000)), "not a split of the 1000 recipes"
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"train_indices": train, "val_indices": val}) + "\n")
    print(OUT)


if __name__ == "__main__":
    main()
