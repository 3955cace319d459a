#!/usr/bin/env python3
"""Plain PyTorch version of pisa's language-model training step (Table 8's AWD-LSTM), for
comparing tokens/second with `pisa run` on the same spec, corpus, chunks and thread count
(scripts/bench-lstm runs both).

It reads the spec pisa runs (--spec, e.g. experiments/table8/sisa-1layer.toml; --layers
stands for the sweep's model.layers) and the corpus in PTB's text format (--data-dir holding
ptb.train.txt or train.txt: words numbered in order of first appearance, <eos> per line, as
src/data/ptb.rs; only the training split is read), and does per iteration what
src/train.rs, src/tasks/language_model.rs and src/models/awd_lstm.rs do:

  - The training stream is batchified into [rows, batch] (batch = train.batch_size, 20).
    Iteration ℓ is one BPTT chunk of the rows; its length comes from --lengths (the
    lengths pisa drew, which scripts/bench-lstm reads back from pisa's metrics), else is
    drawn from the suite's distribution (bptt with probability 0.95, else bptt/2; then
    max(5, int(N(·, 5))), at least m) with numpy. Worker i's gradient is that of the i-th
    of m = train.workers consecutive pieces (⌊len/m⌋ rows, the last the rest), with the
    hidden state the previous piece left, detached; the hidden state is carried across
    iterations and zero at iteration 0.
  - The model: embedding V×E tied to the decoder (logits = h·Eᵀ + b), `model.layers`
    single-layer LSTMs (H = nhid, the last E), libtorch's fused LSTM through
    torch._VF.lstm, the very call torch.nn.LSTM.forward makes (and pisa's
    Tensor::lstm). The hidden-to-hidden weights are frozen buffers (model.train_weight_hh
    = false, the default; true makes them parameters), weight-dropped by a mask.
  - Dropout masks drawn up front per piece from torch's global generator seeded as pisa
    seeds it, (seed·0x9e3779b97f4a7c15 + (ℓ << 8 | i)) mod 2⁶⁴, in pisa's order and
    shapes: embedding rows [V, 1], input [1, B, E], per layer weight_hh [4H, H] and (but
    the last) output [1, B, H], the last output [1, B, E]; each Bernoulli(1 − p)/(1 − p).
    The same seed, the same initialisation order (encoder U(±0.1), per layer weight_ih,
    bias_ih, bias_hh, weight_hh U(±1/√H), decoder bias 0) and the same corpus make the
    same model and masks as pisa's, so the per-iteration training losses can be compared
    (scripts/bench-lstm does).
  - Loss: mean cross-entropy + AR α·mean(h_dropped²) + TAR β·mean((h_{t+1} − h_t)²) on
    the last layer; backward; the gradient clipped to norm train.clip_norm as pisa's loop
    does (g · max/(‖g‖ + 1e-6) when that is < 1), per worker.
  - sisa: Algorithm 2 (bench_vision_torch.Sisa, which follows src/optim/admm step for
    step on flat [P] and [m, P] buffers: (2.9) in begin_iteration, then per worker
    u = g + (μ − λ)w + π_i, scheme III's second moment of u² with bias correction, the
    clip η², and π_i ← π_i − σu/(σ + ρ√m̂)), α_i = 1/m, and σ and ρ divided by the chunk's
    step scale seq_len/bptt (pisa's Task::step_scales), as pisa's f(ℓ).
    adam: torch.optim.Adam(lr × seq_len/bptt, betas, eps, weight_decay as an L2 term;
    its default implementation: the single-tensor loop for CPU tensors, foreach on CUDA)
    on the (m = 1) gradient; on one flat [P] parameter whose gradient is a flat buffer
    (--adam-layout flat, default; backward accumulates into it in place), or on the
    model's own per-tensor parameters (--adam-layout params, with
    torch.nn.utils.clip_grad_norm_ for the clip).
  The parameters are views of one flat [P] buffer (bench_vision_torch.flat_views; all
  but --adam-layout params), as pisa's FlatParams; SISA loads the global point into it before each piece (one copy, as
  FlatParams::load) and consumes the flat gradient buffer in place (pisa concatenates the
  variables' gradients into a new [P] tensor per piece: FlatParams::flat_grad).

Not done here: evaluation (pisa evaluates at every row; scripts/bench-lstm removes it from
pisa's time), checkpoints, the learning-rate schedule's milestones (far past a benchmark's
length), data loading and model construction.

Timed: each iteration with time.perf_counter() (after torch.cuda.synchronize() on CUDA),
and its CPU time with time.process_time() (the process's, all threads); the JSON line gives
every iteration's seconds, and the totals with and without the first iteration (its
warm-up: allocations, on CUDA kernel loading). Tokens of an iteration =
its chunk length × batch (the training tokens predicted). Prints one JSON line.

    python scripts/bench_lstm_torch.py --spec experiments/table8/sisa-1layer.toml
        --layers 1 --data-dir DIR [--iterations N] [--lengths 72,79,...]
        [--threads 1] [--device cpu|cuda] [--adam-layout flat|params]
"""
import argparse
import json
import math
import os
import sys
import time
import tomllib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_vision_torch import HYPERS, Sisa, flat_views  # noqa: E402

# pisa's [model] defaults for the AWD-LSTM (src/spec/model.rs: the suite's argparse defaults)
MODEL_DEFAULTS = dict(layers=3, emsize=400, nhid=1150, dropout=0.4, dropouth=0.3,
                      dropouti=0.65, dropoute=0.1, wdrop=0.5, ar=2.0, tar=1.0,
                      train_weight_hh=False)
MASK_MULTIPLIER = 0x9E37_79B9_7F4A_7C15


# ---------------------------------------------------------------------------------- data


def read_train(data_dir):
    """The training split's word ids and the vocabulary size, as src/data/ptb.rs numbers
    them (order of first appearance, <eos> after every line)."""
    for name in ("train.txt", "ptb.train.txt"):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            break
    else:
        raise SystemExit(f"no train.txt or ptb.train.txt in {data_dir}")
    ids, vocab = [], {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            for word in line.split() + ["<eos>"]:
                ids.append(vocab.setdefault(word, len(vocab)))
    return torch.tensor(ids, dtype=torch.int64), len(vocab)


def batchify(ids, batch):
    """[rows, batch]: stream j is the j-th of `batch` equal stretches of the ids."""
    rows = ids.numel() // batch
    return ids[: rows * batch].view(batch, rows).t().contiguous()


def draw_lengths(n, bptt, workers, seed):
    """n chunk lengths from the suite's distribution (numpy's generator, not pisa's)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        mean = bptt if rng.random() < 0.95 else bptt / 2
        out.append(max(int(rng.normal(mean, 5.0)), 5, workers))
    return out


# -------------------------------------------------------------------------------- model


class AwdLstm(nn.Module):
    """The AdaBelief suite's RNNModel (LSTM, tied weights, WeightDrop) as
    src/models/awd_lstm.rs builds it; parameters in pisa's order."""

    def __init__(self, vocab, emsize, nhid, layers, train_weight_hh, device):
        super().__init__()
        self.vocab, self.emsize = vocab, emsize
        self.sizes = [nhid if l + 1 < layers else emsize for l in range(layers)]
        inputs = [emsize if l == 0 else nhid for l in range(layers)]

        def uniform(shape, bound):
            return torch.zeros(shape, device=device).uniform_(-bound, bound)

        self.encoder = nn.Parameter(uniform((vocab, emsize), 0.1))
        self.layers = []
        for l, (i, h) in enumerate(zip(inputs, self.sizes)):
            bound = 1.0 / math.sqrt(h)
            names = []
            for name, shape in (("weight_ih", (4 * h, i)), ("bias_ih", (4 * h,)),
                                ("bias_hh", (4 * h,)), ("weight_hh_raw", (4 * h, h))):
                t = uniform(shape, bound)
                key = f"rnn{l}_{name}"
                if name != "weight_hh_raw" or train_weight_hh:
                    setattr(self, key, nn.Parameter(t))
                else:
                    self.register_buffer(key, t)
                names.append(key)
            self.layers.append(names)
        self.decoder_bias = nn.Parameter(torch.zeros(vocab, device=device))

    def init_hidden(self, batch, device):
        return [(torch.zeros(1, batch, h, device=device), torch.zeros(1, batch, h, device=device))
                for h in self.sizes]

    def draw_masks(self, d, batch, device):
        """pisa's Masks::draw: the same shapes in the same order; None where p = 0."""

        def keep(shape, p):
            if p <= 0.0:
                return None
            return torch.empty(shape, device=device).bernoulli_(1.0 - p) / (1.0 - p)

        masks = {"embedding": keep((self.vocab, 1), d["dropoute"]),
                 "input": keep((1, batch, self.emsize), d["dropouti"]),
                 "weight": [], "hidden": []}
        for l, h in enumerate(self.sizes):
            masks["weight"].append(keep((4 * h, h), d["wdrop"]))
            if l + 1 < len(self.sizes):
                masks["hidden"].append(keep((1, batch, h), d["dropouth"]))
        masks["output"] = keep((1, batch, self.emsize), d["dropout"])
        return masks

    def forward(self, tokens, hidden, masks):
        """tokens [T, B] → (last layer's output after dropout [T, B, E], its raw output,
        the final (h, c) per layer)."""

        def apply(x, mask):
            return x if mask is None else x * mask

        weight = apply(self.encoder, masks["embedding"])
        # padding_idx V − 1, as the suite's embedded_dropout (src/models/awd_lstm.rs)
        x = apply(F.embedding(tokens, weight, padding_idx=self.vocab - 1), masks["input"])
        states = []
        for l, (w_ih, b_ih, b_hh, w_hh) in enumerate(self.layers):
            w_hh = apply(getattr(self, w_hh), masks["weight"][l])
            out, h, c = torch._VF.lstm(
                x, hidden[l], [getattr(self, w_ih), w_hh, getattr(self, b_ih), getattr(self, b_hh)],
                True, 1, 0.0, True, False, False)
            states.append((h, c))
            x = apply(out, masks["hidden"][l]) if l + 1 < len(self.layers) else out
        return apply(x, masks["output"]), x, states

    def logits(self, output):
        return F.linear(output, self.encoder, self.decoder_bias)


# ---------------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", required=True, help="the Table 8 spec pisa runs")
    ap.add_argument("--layers", type=int, default=None, help="model.layers (the sweep's)")
    ap.add_argument("--data-dir", required=True, help="folder with ptb.train.txt")
    ap.add_argument("--iterations", type=int, default=None,
                    help="iterations to run (default: as many as --lengths)")
    ap.add_argument("--lengths", default=None,
                    help="comma-separated chunk lengths (pisa's); default: drawn")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    ap.add_argument("--adam-layout", choices=["flat", "params"], default="flat")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    spec = tomllib.load(open(args.spec, "rb"))
    seed = int(spec.get("seed", 1))
    mspec = dict(MODEL_DEFAULTS, **{k: v for k, v in spec["model"].items() if k != "kind"})
    if args.layers is not None:
        mspec["layers"] = args.layers
    t = spec["train"]
    m, batch, bptt = int(t["workers"]), int(t["batch_size"]), int(t.get("bptt", 70))
    clip = t.get("clip_norm")
    opt_name = spec["optimizer"]["name"]
    if opt_name not in ("sisa", "adam"):
        raise SystemExit(f"{args.spec}: optimizer {opt_name}; this script runs sisa and adam")
    h = dict(HYPERS[opt_name], **{k: v for k, v in spec["optimizer"].items() if k != "name"})
    if t.get("dtype", "f32") != "f32":
        raise SystemExit("train.dtype f32 only")

    ids, vocab = read_train(args.data_dir)
    train = batchify(ids, batch).to(device)
    rows = train.shape[0]
    if args.lengths:
        lengths = [int(x) for x in args.lengths.split(",")]
    else:
        lengths = draw_lengths(args.iterations or 10, bptt, m, seed)
    n = args.iterations or len(lengths)
    if n > len(lengths) or n < 1:
        raise SystemExit(f"--iterations {n} but {len(lengths)} chunk lengths")
    lengths = lengths[:n]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist()
    if starts[-1] + lengths[-1] + 1 > rows:
        raise SystemExit(f"{n} chunks of {sum(lengths)} rows need more than the corpus's {rows}")

    torch.manual_seed(seed)  # pisa: models::seeded(seed, AwdLstm::new)
    model = AwdLstm(vocab, int(mspec["emsize"]), int(mspec["nhid"]), int(mspec["layers"]),
                    bool(mspec["train_weight_hh"]), device)
    model.train()
    params = list(model.parameters())
    count = sum(p.numel() for p in params)
    flat_layout = opt_name == "sisa" or args.adam_layout == "flat"
    if flat_layout:
        flat, grads = flat_views(model)
    alphas = [1.0 / m] * m
    if opt_name == "sisa":
        opt = Sisa(flat, alphas, float(h["sigma0"]), float(h["rho"]), float(h["gamma"]),
                   int(h["k0"]), int(h["scheme"]), float(h["beta"]), float(h["eta"]),
                   float(h["lambda"]), float(h["mu"]))
    else:
        if m != 1:
            raise SystemExit("adam: train.workers = 1 only (the suite's whole chunk)")
        adam_params = [flat] if flat_layout else params
        if flat_layout:
            flat.grad = grads
        opt = torch.optim.Adam(adam_params, lr=h["lr"], betas=(h["beta1"], h["beta2"]),
                               eps=h["eps"], weight_decay=h["weight_decay"],
                               amsgrad=bool(h["amsgrad"]))
    dropouts = {k: float(mspec[k]) for k in ("dropout", "dropouth", "dropouti", "dropoute", "wdrop")}
    ar, tar = float(mspec["ar"]), float(mspec["tar"])
    hidden = model.init_hidden(batch, device)

    def piece(iteration, worker, start, length):
        """The piece's loss backward into the gradients; returns its summed
        cross-entropy (a host sync, as pisa's double_value) and tokens."""
        nonlocal hidden
        mask_seed = (seed * MASK_MULTIPLIER + ((iteration << 8) | worker)) % 2**64
        torch.manual_seed(mask_seed)
        masks = model.draw_masks(dropouts, batch, device)
        x = train[start : start + length]
        y = train[start + 1 : start + 1 + length].reshape(-1)
        dropped, raw, states = model(x, hidden, masks)
        ce = F.cross_entropy(model.logits(dropped.reshape(-1, model.emsize)), y)
        loss = ce
        if ar != 0.0:
            loss = loss + dropped.square().mean() * ar
        if tar != 0.0 and length > 1:
            loss = loss + (raw[1:] - raw[:-1]).square().mean() * tar
        loss.backward()
        hidden = [(a.detach(), b.detach()) for a, b in states]
        tokens = length * batch
        return ce.item() * tokens, tokens

    def clip_flat():
        if clip is not None:
            factor = clip / (grads.norm().item() + 1e-6)
            if factor < 1.0:
                grads.mul_(factor)

    def sisa_iteration(it):
        scale = lengths[it] / bptt  # pisa's step scale: σ and ρ divided by it
        opt.begin_iteration()
        opt.sigma, opt.rho = opt.sigma_base / scale, opt.rho0 / scale
        ce, tokens = 0.0, 0
        each = lengths[it] // m
        for i in range(m):
            start = starts[it] + i * each
            length = lengths[it] - each * (m - 1) if i + 1 == m else each
            flat.copy_(opt.w)  # the global point into the model (FlatParams::load)
            grads.zero_()
            c, k = piece(it, i, start, length)
            ce, tokens = ce + c, tokens + k
            clip_flat()
            opt.local_update(i, grads)  # consumes g_i (u = π_i + g_i in its buffer)
        opt.end_iteration()
        return ce / tokens

    def adam_iteration(it):
        opt.zero_grad(set_to_none=False)
        ce, tokens = piece(it, 0, starts[it], lengths[it])
        if flat_layout:
            clip_flat()
        elif clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.param_groups[0]["lr"] = h["lr"] * lengths[it] / bptt
        opt.step()
        return ce / tokens

    step = sisa_iteration if opt_name == "sisa" else adam_iteration
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    p0 = params[0]
    seconds, cpu_seconds, losses = [], [], []
    for it in range(n):
        if it == 0:
            hidden = model.init_hidden(batch, device)  # a pass begins
        sync()
        start, cpu_start = time.perf_counter(), time.process_time()
        losses.append(step(it))
        sync()
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
        if it == 0 and flat_layout:  # backward must accumulate in place
            assert p0.grad.data_ptr() == grads.data_ptr(), "gradient left the flat buffer"

    tokens = [k * batch for k in lengths]
    rest_s, rest_tokens = sum(seconds[1:]), sum(tokens[1:])
    print(json.dumps({
        "optimizer": opt_name,
        "adam_layout": None if opt_name == "sisa" else args.adam_layout,
        "layers": int(mspec["layers"]),
        "workers": m,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "parameters": count,
        "vocabulary": vocab,
        "rows": rows,
        "iterations": n,
        "lengths": lengths,
        "tokens": sum(tokens),
        "seconds": round(sum(seconds), 4),
        "cpu_seconds": round(sum(cpu_seconds), 4),
        "tokens_per_s": round(sum(tokens) / sum(seconds), 1),
        "after_first": {
            "iterations": n - 1,
            "tokens": rest_tokens,
            "seconds": round(rest_s, 4),
            "cpu_seconds": round(sum(cpu_seconds[1:]), 4),
            "tokens_per_s": round(rest_tokens / rest_s, 1) if rest_s > 0 else None,
            "ms_per_iteration": round(1000 * rest_s / (n - 1), 1) if n > 1 else None,
        },
        "iteration_seconds": [round(s, 4) for s in seconds],
        "train_loss": [round(x, 6) for x in losses],
    }))


if __name__ == "__main__":
    main()
