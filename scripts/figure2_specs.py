#!/usr/bin/env python3
"""Writes experiments/figure2/*.toml: Figure 2 and Table 7 of pisa.md (Section 5.3), GPT-2
pretrained by NSISA, AdamW, Muon, Shampoo, SOAP and Adam-mini, at full scale (GPT2-Nano in
the modded-nanogpt set-up, GPT2-Medium and GPT2-XL in the nanoGPT / Adam-mini set-up, on
FineWeb shards, CUDA), and experiments/figure2/reduced/*.toml, the documented substitute
this 2-core CPU runs (a small GPT of the Nano layout on the Debian English corpus).

Sources (read with the search tool), Tracy-Wang7/PISA, GPT2_new_version/:
- NanoGPT/train_gpt_sisa_lower_memory.py (run_sisa_lower_memory.sh: 4 GPUs):
  GPT(vocab 50304, 12 layers, 6 heads, 768) of modded-nanogpt; batch 16 sequences of 1024
  per GPU (m = 4 workers, no accumulation), 5100 iterations, val_loss_every 125,
  val_tokens 10,485,760; the blocks (transformer.h) trained by its DistributedOptimizer
  (NSISA: Newton-Schulz of g + 0.95 b, 5 steps; RMSProp-like second moment beta 0.9, no bias
  correction; sigma 8e1, rho 3e3, l2_lambda 0, mu 0, eps 1e-15^step where pi + o = 0), the
  tied embedding / head by AdamW(lr 0.0036, betas (0.9, 0.95), weight decay 0); every
  iteration sigma and rho are divided by AdamW's schedule factor (get_lr: warmup 0,
  constant, linear warmdown over the last 1450 iterations) = our [schedule] trapezoid,
  which divides the ADMM family's sigma and rho by f. Table 5's GPT2 row says the same
  (sigma 8e1, rho 3e3, m 4, |D_ij| 16); the no_2ndgradient variant uses rho 1e2 and
  gamma 0.999: <size>/rho1e2/nsisa.toml runs that.
  Not reproduced: the script's per-tensor scaling sigma_i = sigma / clamp(||W_i|| /
  mean_j ||W_j||, 0.1, 10) (NSISA as Algorithm 3 has one sigma per worker).
- Baselines on Nano (no script in the repository): modded-nanogpt's settings where it has
  them (Muon lr 0.02, momentum 0.95, Nesterov, the embedding by AdamW at the script's
  embed_learning_rate 0.0036, betas (0.9, 0.95)); AdamW at lr 0.0018, betas (0.9, 0.95),
  no weight decay (modded-nanogpt's AdamW baseline); SOAP at its paper's GPT-2 settings
  (lr 3e-3, betas (0.95, 0.95), weight decay 0.01, preconditioning every 10 steps); Shampoo
  at pytorch_optimizer's defaults with roots every 10 steps, sides over 10,000 (the
  embedding's 50,304; XL: over 4,096) unpreconditioned; Adam-mini at its authors' GPT-2
  small settings (lr 6e-4, betas (0.9, 0.95), weight decay 0.1) with their partition by
  names (n_heads: q and k per head, the embedding per token). All on the same
  trapezoid. Every choice here is ours where the paper is silent: see README.md.
- Medium_XL_GPT/config/train_gpt2_{medium,xl}_sisa.py (nanoGPT, bias = False, dropout 0):
  Medium 24 layers, 16 heads, 1024, batch 16 x 4 GPUs; XL 48/25/1600, batch 4 with 4
  accumulation steps; 50,000 iterations (max_iters) of a cosine decaying over
  lr_decay_iters = 100,000 to min_lr; grad_clip 1.0; eval every 100 iterations on
  eval_iters = 200 batches; nanoGPT's random windows (get_batch).

Run: python3 scripts/figure2_specs.py  (rewrites the files; edit this script, not them).
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "experiments" / "figure2"

# The tied token embedding (= the head) of both GPT layouts.
EMBEDDING = "transformer.wte.weight"
# NSISA as the Nano script runs it; the embedding takes the script's AdamW.
NSISA = f'''name = "nsisa"
sigma0 = 80.0
rho = 3000.0
gamma = 1.0
scheme = 2
beta = 0.9
momentum = 0.95
eps = 1e-15
ns_steps = 5
lambda = 0.0
mu = 0.0

[optimizer.embedding]
name = "adamw"
lr = 0.0036
beta1 = 0.9
beta2 = 0.95
weight_decay = 0.0
'''

BASELINES = {
    "adamw": 'name = "adamw"\nlr = 0.0018\nbeta1 = 0.9\nbeta2 = 0.95\nweight_decay = 0.0\n',
    "muon": f'''name = "muon"
lr = 0.02
momentum = 0.95
nesterov = true
ns_steps = 5
adamw_lr = 0.0036
adamw_beta1 = 0.9
adamw_beta2 = 0.95
adamw_params = ["{EMBEDDING}"]
''',
    "shampoo": 'name = "shampoo"\nlr = 0.001\npreconditioning_compute_steps = 10\n'
    "max_precondition_dim = {max_dim}\n",
    "soap": 'name = "soap"\nlr = 0.003\nbeta1 = 0.95\nbeta2 = 0.95\nweight_decay = 0.01\n'
    "precondition_frequency = 10\n",
    "adam_mini": 'name = "adam_mini"\nlr = 0.0006\nbeta1 = 0.9\nbeta2 = 0.95\n'
    "weight_decay = 0.1\nn_heads = {heads}\n",
}

SIZES = {
    # Nano: modded-nanogpt, sequential shards, the trapezoid.
    "nano": dict(
        model='preset = "gpt2_nano"',
        data='path = "fineweb10B"\nval_tokens = 10485760\norder = "sequential"',
        train="workers = 4\nbatch_size = 16\niterations = 5100\neval_every = 125\n"
        "eval_batch_size = 16\ncheckpoint_every = 500\nautocast = \"bf16\"",
        schedule='kind = "trapezoid"\nwarmdown = 1450',
        seeds=[1, 2, 3],
        heads=6,
        max_dim=10000,
    ),
    # Medium and XL: nanoGPT, random windows, a cosine to min_lr/lr, clipping at 1.
    "medium": dict(
        model='preset = "gpt2_medium"',
        data='path = "fineweb10B"\nval_tokens = 3276800\norder = "random"',
        train="workers = 4\nbatch_size = 16\niterations = 50000\neval_every = 100\n"
        "eval_batch_size = 16\ncheckpoint_every = 1000\nclip_norm = 1.0\nautocast = \"bf16\"",
        schedule='kind = "cosine"\nfloor = 0.1',
        seeds=[1],
        heads=16,
        max_dim=10000,
    ),
    "xl": dict(
        model='preset = "gpt2_xl"',
        data='path = "fineweb10B"\nval_tokens = 3276800\norder = "random"',
        train="workers = 4\nbatch_size = 16\nmicro_batch = 4\niterations = 50000\n"
        "eval_every = 100\neval_batch_size = 4\ncheckpoint_every = 1000\nclip_norm = 1.0\n"
        'autocast = "bf16"',
        schedule='kind = "cosine"\nfloor = 0.1',
        seeds=[1],
        heads=25,
        # Google's default: XL's 6400-wide MLP sides would hold 63 GB of factors.
        max_dim=4096,
    ),
}

# The CPU substitute: the Nano layout at 4 layers x 128 (T 128) on the Debian corpus that
# `scripts/prepare_debian_text.sh` tokenises, 400 iterations of 4 workers x 4 sequences.
REDUCED = dict(
    model='preset = "gpt2_nano"\nn_layer = 4\nn_head = 4\nn_embd = 128\nblock_size = 128',
    data='path = "debian-text"\nval_tokens = 32768\norder = "sequential"',
    train="workers = 4\nbatch_size = 4\niterations = 400\neval_every = 50\n"
    "eval_batch_size = 32\ncheckpoint_every = 50",
    schedule='kind = "trapezoid"\nwarmdown = 114',
    seeds=[1, 2],
    heads=4,
    max_dim=10000,
)


def spec(size, optimizer, body, s, device, reduced):
    name = f"figure2-{'reduced' if reduced else size}-{optimizer}"
    head = f"# Figure 2 (pisa.md 5.3): GPT-2 {size} pretrained by {optimizer}.\n"
    head += "# Written by scripts/figure2_specs.py; edit that script.\n"
    if reduced:
        head += (
            "# REDUCED (not Figure 2's losses; see README.md): a 4-layer, 128-wide GPT of the\n"
            "# Nano layout on the Debian English corpus (dict-gcide, python3.11-doc), not\n"
            "# FineWeb.\n"
        )
    seeds = ", ".join(str(x) for x in s["seeds"])
    return f"""{head}
name = "{name}"
seed = {s['seeds'][0]}

[data]
kind = "tokens"
{s['data']}

[model]
kind = "gpt"
{s['model']}

[train]
{s['train']}
dtype = "f32"
device = "{device}"

[schedule]
{s['schedule']}

[optimizer]
{body}
[sweep]
"seed" = [{seeds}]

[plot]
title = "Figure 2: GPT-2 {size}, {optimizer}"
x = "tokens"
y = ["val_loss", "train_loss"]
series = "seed"
table = "figure2"
"""


def write(directory, size, s, device, reduced):
    directory.mkdir(parents=True, exist_ok=True)
    optimizers = {"nsisa": NSISA, **BASELINES}
    for optimizer, body in optimizers.items():
        body = body.replace("{heads}", str(s["heads"])).replace("{max_dim}", str(s["max_dim"]))
        text = spec(size, optimizer, body, s, device, reduced)
        (directory / f"{optimizer}.toml").write_text(text)
    rho = NSISA.replace("rho = 3000.0", "rho = 100.0").replace("gamma = 1.0", "gamma = 0.999")
    # The other rho: its own folder, run into its own results folder (a table cell holds
    # one configuration).
    (directory / "rho1e2").mkdir(exist_ok=True)
    text = spec(size, "nsisa-rho1e2", rho, s, device, reduced)
    (directory / "rho1e2" / "nsisa.toml").write_text(text)


for size, s in SIZES.items():
    write(ROOT / size, size, s, "cuda", False)
write(ROOT / "reduced", "reduced", REDUCED, "cpu", True)
