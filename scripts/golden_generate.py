#!/usr/bin/env python3
"""Goldens for GPT generation (src/models/generate.rs, the padding mask of src/models/gpt.rs;
checked by tests/generate_golden.rs).

Installed into the venv of scripts/env.sh for this script (torch stays 2.11.0):
    pip install "torch==2.11.0" transformers==5.24.0 safetensors==0.8.0

Files in tests/data/generate/:
  hf-gen/config.json, hf-gen/model.safetensors
        a random Hugging Face GPT2LMHeadModel (2 layers, 4 heads, width 64, vocabulary 320,
        n_positions 256) saved by save_pretrained with safetensors. Its weights are drawn
        wider than GPT-2's initialisation (embeddings N(0, 0.3²), other weights N(0, 0.2²),
        biases N(0, 0.05²), LayerNorm weights 1 + N(0, 0.1²)) so that next-token
        distributions are peaked and the decoded ids do not hinge on rounding: every case
        below gives the same ids with the model in f64.
  cases.json
        "generate": for each case the prompt, max_new_tokens, eos_token_id (null: none), the
        decoding (greedy or beam with num_beams, no_repeat_ngram_size, early_stopping true /
        false / "never", length_penalty) and output = model.generate(...)[0] (eval mode, the
        default attention); "warpers": the (temperature, top_k, top_p) settings of the
        sampling warpers checked on fixed logits, with the processor classes
        GenerationMixin._get_logits_processor built for them, in order.
  tensors.safetensors
        masked.ids [3, 16] (right-padded with token 319, real lengths 16, 9, 4),
        masked.mask (1 real, 0 pad), masked.logits = model(ids, attention_mask=mask).logits,
        masked.loss_pads = loss with labels = ids (pads included, as the PISA recipes script
        trains), masked.loss_ignored = loss with labels −100 at the pads;
        warp.logits [4, 320] (f32; the last row rounded to integers, so it has ties) and
        warp.<i> = the i-th setting's processors applied to them (−inf where filtered).

Usage (inside the venv of scripts/env.sh):
    python scripts/golden_generate.py
"""
import json
import pathlib
import sys

import torch
from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from golden_crosscheck import write_safetensors  # noqa: E402

DATA = ROOT / "tests" / "data" / "generate"
VOCAB, N_POSITIONS = 320, 256
SEED = 4242
PAD = VOCAB - 1


def build():
    torch.manual_seed(SEED)
    config = GPT2Config(n_layer=2, n_head=4, n_embd=64, n_positions=N_POSITIONS, vocab_size=VOCAB,
                        activation_function="gelu_new", bos_token_id=None, eos_token_id=None)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name and name.endswith(".weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.05 * torch.randn_like(p))
            elif name.endswith(("wte.weight", "wpe.weight")):
                p.copy_(0.3 * torch.randn_like(p))
            else:
                p.copy_(0.2 * torch.randn_like(p))
    hf_dir = DATA / "hf-gen"
    model.save_pretrained(hf_dir, safe_serialization=True)
    (hf_dir / "generation_config.json").unlink(missing_ok=True)
    return hf_dir


def generate(model, case):
    ids = torch.tensor([case["prompt"]])
    d = case["decoding"]
    kwargs = dict(max_new_tokens=case["max_new_tokens"], eos_token_id=case["eos_token_id"],
                  pad_token_id=PAD, do_sample=False)
    if d["kind"] == "beam":
        kwargs.update(num_beams=d["num_beams"], no_repeat_ngram_size=d["no_repeat_ngram_size"],
                      early_stopping=d["early_stopping"], length_penalty=d["length_penalty"])
    out = model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)
    return out[0].tolist()


def beam(num_beams=5, ngram=2, early=True, lp=1.0):
    return {"kind": "beam", "num_beams": num_beams, "no_repeat_ngram_size": ngram,
            "early_stopping": early, "length_penalty": lp}


def cases(model):
    g = torch.Generator().manual_seed(SEED + 1)
    prompt = lambda n: torch.randint(0, VOCAB - 1, (n,), generator=g).tolist()  # noqa: E731
    a, b, c, one = prompt(5), prompt(12), prompt(7), prompt(1)
    greedy = {"kind": "greedy"}
    out = [{"name": "greedy", "prompt": a, "max_new_tokens": 40, "eos_token_id": None,
            "decoding": greedy}]
    # eos: a token greedy decoding produces a few steps in, so that it stops there.
    long = generate(model, out[0])[len(a):]
    eos = next(t for i, t in enumerate(long) if i >= 4 and t not in long[:i])
    out.append({"name": "greedy-eos", "prompt": a, "max_new_tokens": 40, "eos_token_id": eos,
                "decoding": greedy})
    # Beam search's eos: the first token of its unconstrained result that, made eos, ends
    # the search early (a finished hypothesis beats the running beams).
    free = {"prompt": b, "max_new_tokens": 40, "eos_token_id": None, "decoding": beam()}
    free_out = generate(model, free)[len(b):]
    beam_eos = None
    for t in free_out[3:]:
        trial = dict(free, eos_token_id=t)
        if len(generate(model, trial)) < len(b) + 40:
            beam_eos = t
            break
    assert beam_eos is not None, "no eos ends beam search early"
    out += [
        {"name": "beam-eos", "prompt": b, "max_new_tokens": 40, "eos_token_id": beam_eos,
         "decoding": beam()},
        # No eos: every beam is unfinished when max_new_tokens is reached.
        {"name": "beam-max-length", "prompt": c, "max_new_tokens": 60, "eos_token_id": None,
         "decoding": beam()},
        {"name": "beam-max-length-eos", "prompt": c, "max_new_tokens": 30,
         "eos_token_id": beam_eos, "decoding": beam()},
        {"name": "beam-one-token-prompt", "prompt": one, "max_new_tokens": 40,
         "eos_token_id": beam_eos, "decoding": beam()},
        {"name": "beam-heuristic", "prompt": b, "max_new_tokens": 40, "eos_token_id": beam_eos,
         "decoding": beam(num_beams=4, ngram=0, early=False, lp=1.5)},
        {"name": "beam-never", "prompt": b, "max_new_tokens": 40, "eos_token_id": beam_eos,
         "decoding": beam(num_beams=3, ngram=3, early="never", lp=2.0)},
        {"name": "beam-negative-penalty", "prompt": a, "max_new_tokens": 40,
         "eos_token_id": eos, "decoding": beam(num_beams=5, ngram=2, early=False, lp=-1.0)},
        {"name": "one-beam", "prompt": a, "max_new_tokens": 40, "eos_token_id": None,
         "decoding": beam(num_beams=1, ngram=2)},
    ]
    model64 = GPT2LMHeadModel.from_pretrained(DATA / "hf-gen").double().eval()
    for case in out:
        case["output"] = generate(model, case)
        assert generate(model64, case) == case["output"], f"{case['name']}: f64 differs"
        n_new = len(case["output"]) - len(case["prompt"])
        print(f"{case['name']}: {n_new} new tokens (max {case['max_new_tokens']})")
    lengths = {c["name"]: len(c["output"]) - len(c["prompt"]) for c in out}
    assert lengths["beam-eos"] < 40 and lengths["greedy-eos"] < 40
    assert lengths["beam-max-length"] == 60
    return out


def masked(model):
    g = torch.Generator().manual_seed(SEED + 2)
    ids = torch.randint(0, VOCAB - 1, (3, 16), generator=g)
    mask = torch.ones_like(ids)
    for row, length in enumerate((16, 9, 4)):
        ids[row, length:] = PAD
        mask[row, length:] = 0
    out = model(ids, attention_mask=mask, labels=ids)
    ignored = ids.masked_fill(mask == 0, -100)
    loss_ignored = model(ids, attention_mask=mask, labels=ignored).loss
    print(f"masked: loss with pads {out.loss.item():.6f}, pads ignored {loss_ignored.item():.6f}")
    return {"masked.ids": ids, "masked.mask": mask, "masked.logits": out.logits,
            "masked.loss_pads": out.loss, "masked.loss_ignored": loss_ignored}


WARPERS = [(1.0, 50, 0.85), (0.7, 0, 0.9), (1.3, 10, 1.0), (1.0, 0, 0.0), (0.5, 5, 0.5),
           (1.0, 1000, 1.0), (2.0, 3, 0.99), (1.0, 0, 1.0)]


def warpers(model):
    g = torch.Generator().manual_seed(SEED + 3)
    logits = 3 * torch.randn(4, VOCAB, generator=g)
    logits[3] = logits[3].round()
    tensors, settings = {"warp.logits": logits}, []
    for i, (temperature, top_k, top_p) in enumerate(WARPERS):
        config = GenerationConfig(do_sample=True, temperature=temperature, top_k=top_k,
                                  top_p=top_p, num_beams=1)
        processors = model._get_logits_processor(config, input_ids_seq_length=1, device="cpu")
        ids = torch.zeros(4, 1, dtype=torch.long)
        tensors[f"warp.{i}"] = processors(ids, logits.clone())
        settings.append({"temperature": temperature, "top_k": top_k, "top_p": top_p,
                         "processors": [type(p).__name__ for p in processors]})
        kept = torch.isfinite(tensors[f"warp.{i}"]).sum(dim=1).tolist()
        print(f"warpers {settings[-1]}: kept {kept}")
    return tensors, settings


def main():
    DATA.mkdir(parents=True, exist_ok=True)
    hf_dir = build()
    model = GPT2LMHeadModel.from_pretrained(hf_dir).eval()
    print("attention:", model.config._attn_implementation)
    with torch.no_grad():
        generated = cases(model)
        tensors = masked(model)
        warped, settings = warpers(model)
    (DATA / "cases.json").write_text(json.dumps({"generate": generated, "warpers": settings},
                                                indent=1) + "\n")
    write_safetensors(DATA / "tensors.safetensors", {**tensors, **warped})


if __name__ == "__main__":
    main()
