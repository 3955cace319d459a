#!/usr/bin/env python3
"""Goldens for the GPT models (src/models/gpt.rs, gpt_weights.rs; checked by tests/gpt_golden.rs).

Installed into the venv of scripts/env.sh for this script (torch stays 2.11.0):
    pip install "torch==2.11.0" transformers==5.24.0 safetensors==0.8.0

Files in tests/data/gpt/ (tiny sizes: 2 layers, 3 heads, width 24, vocabulary 67, B = 2, T = 16):
  hf-tiny/config.json, hf-tiny/model.safetensors
        a Hugging Face GPT2LMHeadModel (n_positions 16) saved by save_pretrained with
        safetensors; its weights are random (weights N(0, 0.02²), biases N(0, 0.1²),
        LayerNorm weights 1 + N(0, 0.1²) and biases N(0, 0.1²)) so that every parameter
        changes the output.
  classic-{f32,f64}.safetensors
        that model in evaluation mode (eager attention: softmax of masked scores, no fused
        kernel), in f32 and in f64 (model.double()): ids [B, T], targets [B, T] (some -100),
        logits, loss = F.cross_entropy(logits, targets, ignore_index=-100), and grad.<name>
        for every parameter under pisa's names (transformer.…) and orientation (HF's Conv1D
        gradients transposed to [out, in]).
  modded-{f32,f64}.safetensors
        the GPT of Tracy-Wang7/PISA GPT2_new_version/NanoGPT/train_gpt_sisa_lower_memory.py
        (classes Rotary, apply_rotary_emb, CausalSelfAttention, MLP, Block, GPT re-typed
        below; no torch.compile, no autocast) with every parameter set to N(0, 0.1²) (so its
        zero-initialised projections are not zero): param.<name> for named_parameters()
        (the tied transformer.wte.weight once), ids, targets, logits, loss (ignore_index
        -100, the fine-tuning convention pisa uses, where the script passes -1) and
        grad.<name>.
  {classic,modded}-parameters.txt
        the names of each model's named_parameters(), in order.

Usage (inside the venv of scripts/env.sh):
    python scripts/golden_gpt.py
"""
import json
import pathlib
import sys

import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from golden_crosscheck import write_safetensors  # noqa: E402
from modded_gpt import GPT, GPTConfig  # noqa: E402

DATA = ROOT / "tests" / "data" / "gpt"
N_LAYER, N_HEAD, N_EMBD, VOCAB, B, T = 2, 3, 24, 67, 2, 16
SEED = 1234
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def inputs():
    g = torch.Generator().manual_seed(SEED + 1)
    ids = torch.randint(0, VOCAB, (B, T), generator=g)
    targets = torch.randint(0, VOCAB, (B, T), generator=g)
    targets[0, 3] = targets[1, 0] = targets[1, 9] = -100
    return ids, targets


def loss_and_grads(model, logits, targets, orient):
    """The loss and grad.<name> of every parameter, in pisa's orientation (`orient`)."""
    loss = F.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1), ignore_index=-100)
    model.zero_grad(set_to_none=True)
    loss.backward()
    return loss, {"grad." + n: orient(n, p.grad) for n, p in model.named_parameters()}


def write_names(model, tag):
    names = [n for n, _ in model.named_parameters()]
    (DATA / f"{tag}-parameters.txt").write_text("".join(n + "\n" for n in names))
    return names


# ---- Hugging Face GPT-2 (Classic) --------------------------------------------------------

def hf_orient(name, t):
    """HF's Conv1D weights are [in, out]; pisa's [out, in]. The names are the same."""
    return t.t().contiguous() if name.endswith(CONV1D) else t


def classic():
    torch.manual_seed(SEED)
    config = GPT2Config(n_layer=N_LAYER, n_head=N_HEAD, n_embd=N_EMBD, n_positions=T,
                        vocab_size=VOCAB, activation_function="gelu_new",
                        bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1)
    config._attn_implementation = "eager"
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name and name.endswith(".weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.02 * torch.randn_like(p))
    assert model.lm_head.weight is model.transformer.wte.weight
    hf_dir = DATA / "hf-tiny"
    model.save_pretrained(hf_dir, safe_serialization=True)
    for extra in ("generation_config.json",):
        (hf_dir / extra).unlink(missing_ok=True)
    saved = json.loads((hf_dir / "config.json").read_text())
    print("hf-tiny config:", {k: saved[k] for k in ("n_layer", "n_head", "n_embd", "n_positions",
                                                     "vocab_size", "activation_function",
                                                     "layer_norm_epsilon")})
    write_names(model, "classic")
    reloaded = GPT2LMHeadModel.from_pretrained(hf_dir, attn_implementation="eager")
    ids, targets = inputs()
    for kind, dtype in (("f32", torch.float32), ("f64", torch.float64)):
        m = GPT2LMHeadModel.from_pretrained(hf_dir, attn_implementation="eager").to(dtype).eval()
        logits = m(ids).logits
        if dtype == torch.float32:
            assert torch.equal(logits, reloaded.eval()(ids).logits)
        loss, grads = loss_and_grads(m, logits, targets, hf_orient)
        print(f"classic {kind}: loss {loss.item():.6f}, {len(grads)} gradients")
        write_safetensors(DATA / f"classic-{kind}.safetensors",
                          {"ids": ids, "targets": targets, "logits": logits, "loss": loss, **grads})


def modded():
    model = GPT(GPTConfig(vocab_size=VOCAB, n_layer=N_LAYER, n_head=N_HEAD, n_embd=N_EMBD))
    torch.manual_seed(SEED + 2)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.1 * torch.randn_like(p))
    names = write_names(model, "modded")
    assert names[0] == "transformer.wte.weight" and "lm_head.weight" not in names
    params = {"param." + n: p.detach().clone() for n, p in model.named_parameters()}
    ids, targets = inputs()
    for kind, dtype in (("f32", torch.float32), ("f64", torch.float64)):
        m = GPT(GPTConfig(vocab_size=VOCAB, n_layer=N_LAYER, n_head=N_HEAD, n_embd=N_EMBD)).to(dtype)
        with torch.no_grad():
            for n, p in m.named_parameters():
                p.copy_(params["param." + n])
        logits = m(ids)
        loss, grads = loss_and_grads(m, logits, targets, lambda n, t: t)
        print(f"modded {kind}: loss {loss.item():.6f}, {len(grads)} gradients")
        write_safetensors(DATA / f"modded-{kind}.safetensors",
                          {"ids": ids, "targets": targets, "logits": logits, "loss": loss,
                           **{k: v.to(dtype) for k, v in params.items()}, **grads})


if __name__ == "__main__":
    DATA.mkdir(parents=True, exist_ok=True)
    classic()
    modded()
