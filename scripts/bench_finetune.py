#!/usr/bin/env python3
"""GPT-2 fine-tuning and generation speed on this CPU (results/BENCHMARKS.md, "GPT-2
fine-tuning"), pisa beside PyTorch/transformers in one invocation, one thread each.

The model is a random GPT2LMHeadModel (transformers, seeded) of the GPT-2 layout with
--layers x --width, 512 positions and the recipes tokenizer's 50,260 tokens, saved with
save_pretrained: pisa loads that folder (`[model] weights`), transformers uses the module.

fine-tuning: tokens/s of AdamW steps on batches of 16 recipes padded to 180 tokens, the
          padding counted (`loss_on_padding`, so both process all 180 positions); pisa's
          time is its wall_s (training only), transformers' the same loop as the PISA
          script's (model(input_ids, attention_mask, labels).loss, backward, step).
generation: new tokens/s of beam search as GPT2/evaluation.py (5 beams, no repeated
          2-grams, early stopping) for up to 180 new tokens from one recipe's ingredients;
          pisa's time is `pisa generate`'s minus a run generating one token (loading, the
          prompt), transformers' is `generate` itself; the fastest of 3 each.

Run: scripts/bench-finetune [--steps N] [--layers L] [--width D]
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = Path(__file__).resolve().parent.parent
PISA = ROOT / "target" / "release" / "pisa"
CSV = Path(os.environ.get("PISA_DATA_DIR", ROOT.parent / "shared" / "data")) / "recipes" / "recipes_1000.csv"
BOS, EOS, PAD, VOCAB, LENGTH, BATCH = 50257, 50256, 50259, 50260, 180, 16


def recipes():
    with open(CSV) as f:
        return list(csv.DictReader(f))


def encode(bpe, recipe):
    text = f"Ingredients: {recipe['ingredients'].strip()}. Instructions: {recipe['instructions'].strip()}"
    ids = ([BOS] + bpe.encode_ordinary(text) + [EOS])[:LENGTH]
    mask = [1] * len(ids) + [0] * (LENGTH - len(ids))
    return ids + [PAD] * (LENGTH - len(ids)), mask


def torch_finetune(model, batches, steps):
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, eps=1e-8)
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        ids, mask = batches[step % len(batches)]
        loss = model(input_ids=ids, attention_mask=mask, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return steps * BATCH * LENGTH / (time.perf_counter() - start)


def pisa_finetune(hf, tmp, steps):
    spec = tmp / "bench.toml"
    spec.write_text(f'''name = "bench"
seed = 1
[data]
kind = "recipes"
path = "{CSV}"
loss_on_padding = true
[model]
kind = "gpt"
weights = "{hf}"
dropout = 0.1
[train]
workers = 1
batch_size = {BATCH}
micro_batch = {BATCH}
iterations = {steps}
eval_every = {steps}
checkpoint_every = 0
threads = 1
dtype = "f32"
[optimizer]
name = "adamw"
lr = 3e-3
eps = 1e-8
weight_decay = 0.01
''')
    out = tmp / "out"
    subprocess.run([str(PISA), "run", str(spec), "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    summary = json.loads((out / "bench" / "default" / "summary.json").read_text())
    return steps * BATCH * LENGTH / summary["wall_s"]


def pisa_generate(hf, ingredients, new_tokens, repeats=3):
    prompt = f"<|startoftext|>Ingredients: {ingredients}"
    args = [str(PISA), "generate", str(hf), "--prompt", prompt, "--threads", "1", "--max-new-tokens"]

    def fastest(n):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(args + [str(n)], check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - start)
        return min(times)

    # the process's own time (loading, the prompt's forward pass) is the one-token run's
    return fastest(new_tokens) - fastest(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = GPT2Config(n_layer=args.layers, n_embd=args.width, n_head=max(1, args.width // 64),
                        n_positions=512, vocab_size=VOCAB, bos_token_id=BOS, eos_token_id=EOS)
    model = GPT2LMHeadModel(config)
    sys.path.insert(0, str(ROOT / "scripts"))
    import golden_tokenizer  # tiktoken's r50k_base from tiktoken-rs's assets (no network)

    bpe = golden_tokenizer.tiktoken_r50k(golden_tokenizer.crate_assets())
    data = recipes()
    rows = [encode(bpe, r) for r in data[:BATCH * 4]]
    batches = []
    for b in range(4):
        part = rows[b * BATCH:(b + 1) * BATCH]
        batches.append((torch.tensor([p[0] for p in part]), torch.tensor([p[1] for p in part])))
    ingredients = data[0]["ingredients"].strip() + "."
    prompt = torch.tensor([[BOS] + bpe.encode_ordinary(f"Ingredients: {ingredients}")])
    print(f"# {time.strftime('%Y-%m-%d')}, {os.uname().nodename}, torch {torch.__version__}, "
          f"GPT-2 layout {args.layers}x{args.width}, 1 thread")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hf = tmp / "hf"
        model.save_pretrained(hf, safe_serialization=True)
        pisa_tps = pisa_finetune(hf, tmp, args.steps)
        torch_tps = torch_finetune(model, batches, args.steps)
        print(f"fine-tuning (AdamW, batch {BATCH} x {LENGTH}, {args.steps} steps): pisa "
              f"{pisa_tps:.0f} tokens/s, transformers {torch_tps:.0f} tokens/s, "
              f"ratio {pisa_tps / torch_tps:.2f}")
        model.eval()
        times = []
        for _ in range(3):
            start = time.perf_counter()
            with torch.no_grad():
                out = model.generate(prompt, attention_mask=torch.ones_like(prompt),
                                     max_new_tokens=LENGTH, num_beams=5, no_repeat_ngram_size=2,
                                     early_stopping=True, pad_token_id=EOS)
            times.append(time.perf_counter() - start)
        torch_s = min(times)
        new = out.shape[1] - prompt.shape[1]
        pisa_s = pisa_generate(hf, ingredients, LENGTH)
        print(f"generation (beam 5, {new} new tokens): pisa {new / pisa_s:.1f} tokens/s, "
              f"transformers {new / torch_s:.1f} tokens/s, ratio {torch_s / pisa_s:.2f}")


if __name__ == "__main__":
    sys.exit(main())
