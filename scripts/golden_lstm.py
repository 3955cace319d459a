#!/usr/bin/env python3
"""Goldens for the AWD-LSTM (src/models/awd_lstm.rs; checked by tests/lstm_golden.rs).

The model is the AdaBelief benchmark suite's (juntang-zhuang/Adabelief-Optimizer,
PyTorch_Experiments/LSTM): model.py's RNNModel with rnn_type "LSTM" and tied weights,
weight_drop.py's WeightDrop on every layer's weight_hh_l0, locked_dropout.py's
LockedDropout and embed_regularize.py's embedded_dropout. Those classes are re-typed
below (the LSTM path only) and serve as the reference; a functional forward with the
masks as arguments (what pisa computes) is checked against them here, then written out.

Files in tests/data/lstm/ (tiny sizes: V = 50, E = 8, H = 12, 3 layers, T = 7, B = 3):
  layer-{f32,f64}.safetensors   (a) one torch.nn.LSTM(8, 12) on given weights, input and
                                (h0, c0): output, final (h, c), and the gradients of
                                loss = Σ out·r_out + Σ h·r_h + Σ c·r_c w.r.t. the input,
                                (h0, c0) and the four weights.
  eval-{f32,f64}.safetensors    (b) the whole model in evaluation mode: logits, final (h, c)
                                per layer and the gradients of
                                loss = cross-entropy + Σ_l (Σ h_l·rh_l + Σ c_l·rc_l)
                                w.r.t. every parameter.
  train-{f32,f64}.safetensors   (c) a training forward pass with the masks the suite's
                                classes drew under seed SEED (written as mask.*): logits,
                                the last layer's raw and dropped outputs, final (h, c), and
                                the gradients of the suite's training loss (cross-entropy +
                                α·AR + β·TAR, main.py) + the hidden-state terms above.
  parameters.txt                the names of the suite's model.parameters(), in order.

What the re-typed suite shows about itself (asserted below):
  - model.parameters(): encoder.weight, then per layer rnns.{l}.module.weight_ih_l0,
    bias_ih_l0, bias_hh_l0, weight_hh_l0_raw (WeightDrop deletes weight_hh_l0 and
    registers the raw weight last), then decoder.bias; the tied decoder.weight is the
    encoder's and so not listed again (state_dict() does list it, before decoder.bias).
  - WeightDrop wraps the dropped weight in a new nn.Parameter, a leaf: weight_hh_l0_raw
    gets no gradient at all, in training or evaluation. pisa's weight drop is the
    DropConnect it means (the gradient reaches the raw weight, masked); here the
    functional gradient of the raw weight is checked against the suite's gradient of the
    dropped copy times the mask.
  - embedded_dropout passes padding_idx = -1 to F.embedding, which reads it as V − 1:
    the lookup gives token V − 1 no gradient (the tied decoder still does). pisa keeps
    this; token V − 1 occurs in the inputs below.

Usage (inside the venv of scripts/env.sh; needs only torch and numpy):
    python scripts/golden_lstm.py
"""
import pathlib
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from golden_crosscheck import write_safetensors  # noqa: E402

DATA = ROOT / "tests" / "data" / "lstm"
V, E, H, LAYERS, T, B = 50, 8, 12, 3, 7, 3
# main.py's flags: dropout, dropouth (run_all_layer*.py: 0.25), dropouti (0.4), dropoute, wdrop.
DROPOUT, DROPOUTH, DROPOUTI, DROPOUTE, WDROP = 0.4, 0.25, 0.4, 0.1, 0.5
ALPHA, BETA = 2.0, 1.0  # main.py's AR and TAR weights
SEED = 141  # run_all_layer*.py's --seed


# ---- The suite's classes, re-typed (LSTM, tie_weights = True, wdrop > 0) ----------------

def embedded_dropout(embed, words, dropout=0.1):
    if dropout:
        mask = embed.weight.data.new().resize_((embed.weight.size(0), 1)).bernoulli_(1 - dropout)
        mask = mask.expand_as(embed.weight) / (1 - dropout)
        masked_embed_weight = mask * embed.weight
    else:
        masked_embed_weight = embed.weight
    padding_idx = embed.padding_idx
    if padding_idx is None:
        padding_idx = -1
    return F.embedding(words, masked_embed_weight, padding_idx, embed.max_norm,
                       embed.norm_type, embed.scale_grad_by_freq, embed.sparse)


class LockedDropout(nn.Module):
    def forward(self, x, dropout=0.5):
        if not self.training or not dropout:
            return x
        m = x.data.new(1, x.size(1), x.size(2)).bernoulli_(1 - dropout)
        mask = (m / (1 - dropout)).expand_as(x)
        return mask * x


class WeightDrop(nn.Module):
    def __init__(self, module, weights, dropout=0.0):
        super().__init__()
        self.module, self.weights, self.dropout = module, weights, dropout
        self.module.flatten_parameters = lambda *args, **kwargs: None
        for name_w in self.weights:
            w = getattr(self.module, name_w)
            del self.module._parameters[name_w]
            self.module.register_parameter(name_w + "_raw", nn.Parameter(w.data))

    def _setweights(self):
        for name_w in self.weights:
            raw_w = getattr(self.module, name_w + "_raw")
            w = nn.Parameter(F.dropout(raw_w, p=self.dropout, training=self.training))
            setattr(self.module, name_w, w)

    def forward(self, *args):
        self._setweights()
        return self.module.forward(*args)


class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers, dropout, dropouth, dropouti, dropoute, wdrop):
        super().__init__()
        self.lockdrop = LockedDropout()
        self.encoder = nn.Embedding(ntoken, ninp)
        rnns = [nn.LSTM(ninp if l == 0 else nhid, nhid if l != nlayers - 1 else ninp, 1, dropout=0)
                for l in range(nlayers)]
        self.rnns = nn.ModuleList([WeightDrop(rnn, ["weight_hh_l0"], dropout=wdrop) for rnn in rnns])
        self.decoder = nn.Linear(nhid, ntoken)
        self.decoder.weight = self.encoder.weight
        self.encoder.weight.data.uniform_(-0.1, 0.1)
        self.decoder.bias.data.fill_(0)
        self.nlayers, self.dropout, self.dropouth = nlayers, dropout, dropouth
        self.dropouti, self.dropoute = dropouti, dropoute

    def forward(self, input, hidden):
        emb = embedded_dropout(self.encoder, input, dropout=self.dropoute if self.training else 0)
        raw_output = self.lockdrop(emb, self.dropouti)
        new_hidden, raw_outputs, outputs = [], [], []
        for l, rnn in enumerate(self.rnns):
            raw_output, new_h = rnn(raw_output, hidden[l])
            new_hidden.append(new_h)
            raw_outputs.append(raw_output)
            if l != self.nlayers - 1:
                raw_output = self.lockdrop(raw_output, self.dropouth)
                outputs.append(raw_output)
        output = self.lockdrop(raw_output, self.dropout)
        outputs.append(output)
        result = output.view(output.size(0) * output.size(1), output.size(2))
        return result, new_hidden, raw_outputs, outputs


# ---- What pisa computes: the same forward pass with explicit masks ----------------------

HIDDEN = [H if l != LAYERS - 1 else E for l in range(LAYERS)]
INPUT = [E if l == 0 else H for l in range(LAYERS)]


def layer_names(l):
    return [f"rnns.{l}.module.{n}" for n in ("weight_ih_l0", "bias_ih_l0", "bias_hh_l0", "weight_hh_l0_raw")]


NAMES = ["encoder.weight"] + [n for l in range(LAYERS) for n in layer_names(l)] + ["decoder.bias"]


def keep(shape, p, dtype):
    """A dropout mask as the suite draws it: Bernoulli(1 − p) scaled by 1/(1 − p)."""
    return torch.empty(shape, dtype=dtype).bernoulli_(1 - p) / (1 - p)


def draw_masks(dtype):
    """The masks of one training forward pass, in the order the suite's classes draw them."""
    masks = {"mask.embedding": keep((V, 1), DROPOUTE, dtype), "mask.input": keep((1, B, E), DROPOUTI, dtype)}
    for l in range(LAYERS):
        masks[f"mask.weight.{l}"] = keep((4 * HIDDEN[l], HIDDEN[l]), WDROP, dtype)
        if l != LAYERS - 1:
            masks[f"mask.hidden.{l}"] = keep((1, B, HIDDEN[l]), DROPOUTH, dtype)
    masks["mask.output"] = keep((1, B, E), DROPOUT, dtype)
    return masks


def functional_forward(params, tokens, hidden, masks):
    """The model's forward pass on `params` (name → tensor) with `masks` (None: evaluation):
    torch.nn.LSTM per layer (functional_call), weight_hh = raw ⊙ mask."""
    m = masks or {}
    weight = params["encoder.weight"]
    if "mask.embedding" in m:
        weight = m["mask.embedding"] * weight
    x = F.embedding(tokens, weight, padding_idx=-1)
    if "mask.input" in m:
        x = m["mask.input"] * x
    states = []
    for l in range(LAYERS):
        w_ih, b_ih, b_hh, w_hh = (params[n] for n in layer_names(l))
        if f"mask.weight.{l}" in m:
            w_hh = w_hh * m[f"mask.weight.{l}"]
        lstm = nn.LSTM(INPUT[l], HIDDEN[l]).to(tokens.device)
        weights = {"weight_ih_l0": w_ih, "weight_hh_l0": w_hh, "bias_ih_l0": b_ih, "bias_hh_l0": b_hh}
        x, state = torch.func.functional_call(lstm, weights, (x, hidden[l]))
        states.append(state)
        raw = x
        if l != LAYERS - 1 and f"mask.hidden.{l}" in m:
            x = m[f"mask.hidden.{l}"] * x
    dropped = m["mask.output"] * raw if "mask.output" in m else raw
    logits = F.linear(dropped.reshape(-1, E), params["encoder.weight"], params["decoder.bias"])
    return logits, states, raw, dropped


def loss_of(logits, targets, states, extras, raw=None, dropped=None):
    loss = F.cross_entropy(logits, targets)
    if raw is not None:
        loss = loss + ALPHA * dropped.pow(2).mean() + BETA * (raw[1:] - raw[:-1]).pow(2).mean()
    for l, (h, c) in enumerate(states):
        loss = loss + (h * extras[f"rh.{l}"]).sum() + (c * extras[f"rc.{l}"]).sum()
    return loss


def max_diff(a, b):
    return (a - b).abs().max().item()


WORST = {}


def check(what, a, b, tol):
    d = max_diff(a, b)
    assert d <= tol, f"{what}: the functional forward differs from the suite's by {d}"
    WORST[a.dtype] = max(WORST.get(a.dtype, 0.0), d)


# ---- (a) one layer ------------------------------------------------------------------------

def layer_golden(dtype):
    torch.manual_seed(1)
    lstm = nn.LSTM(E, H).to(dtype)
    x = torch.randn(T, B, E, dtype=dtype, requires_grad=True)
    h0 = torch.randn(1, B, H, dtype=dtype, requires_grad=True)
    c0 = torch.randn(1, B, H, dtype=dtype, requires_grad=True)
    r = {k: torch.randn(s, dtype=dtype) for k, s in [("r_out", (T, B, H)), ("r_h", (1, B, H)), ("r_c", (1, B, H))]}
    out, (h, c) = lstm(x, (h0, c0))
    ((out * r["r_out"]).sum() + (h * r["r_h"]).sum() + (c * r["r_c"]).sum()).backward()
    weights = {"weight_ih_l0": lstm.weight_ih_l0, "bias_ih_l0": lstm.bias_ih_l0,
               "bias_hh_l0": lstm.bias_hh_l0, "weight_hh_l0_raw": lstm.weight_hh_l0}
    files = {**weights, "x": x, "h0": h0, "c0": c0, **r, "out": out, "h": h, "c": c,
             "grad.x": x.grad, "grad.h0": h0.grad, "grad.c0": c0.grad}
    files.update({f"grad.{n}": w.grad for n, w in weights.items()})
    return files


# ---- (b) and (c) the whole model ----------------------------------------------------------

def model_goldens(dtype):
    torch.manual_seed(2)
    model = RNNModel(V, E, H, LAYERS, DROPOUT, DROPOUTH, DROPOUTI, DROPOUTE, WDROP).to(dtype)
    names = [n for n, _ in model.named_parameters()]
    assert names == NAMES, names
    state = list(model.state_dict())
    assert state == NAMES[:-1] + ["decoder.weight", "decoder.bias"], state
    with torch.no_grad():  # a non-zero bias, so its part of the logits is checked too
        model.decoder.bias.copy_(0.1 * torch.randn(V, dtype=dtype))
    values = {n: p.detach().clone() for n, p in model.named_parameters()}

    tokens = torch.randint(0, V, (T, B))
    tokens[0, 0] = tokens[4, 2] = V - 1  # the token without a lookup gradient
    targets = torch.randint(0, V, (T * B,))
    hidden = [(0.5 * torch.randn(1, B, h, dtype=dtype), 0.5 * torch.randn(1, B, h, dtype=dtype)) for h in HIDDEN]
    extras = {}
    for l, h in enumerate(HIDDEN):
        extras[f"h0.{l}"], extras[f"c0.{l}"] = hidden[l]
        extras[f"rh.{l}"] = 0.1 * torch.randn(1, B, h, dtype=dtype)
        extras[f"rc.{l}"] = 0.1 * torch.randn(1, B, h, dtype=dtype)
    common = {**values, "tokens": tokens, "targets": targets, **extras}
    tol = 1e-6 if dtype == torch.float32 else 1e-13

    def suite_run(train):
        model.zero_grad(set_to_none=True)
        model.train(train)
        result, states, raws, outputs = model(tokens, hidden)
        logits = F.linear(result, model.decoder.weight, model.decoder.bias)
        extra = (raws[-1], outputs[-1]) if train else ()
        loss = loss_of(logits, targets, states, extras, *extra)
        loss.backward()
        grads = {}
        for n in NAMES:
            if n.endswith("_raw"):  # the suite's raw weight gets none; its dropped copy does
                layer = model.rnns[int(n.split(".")[1])].module
                assert layer.weight_hh_l0_raw.grad is None
                grads[n] = layer.weight_hh_l0.grad
            else:
                grads[n] = model.get_parameter(n).grad
        return logits, states, loss, grads, raws[-1], outputs[-1]

    def functional_run(masks, train):
        params = {n: v.clone().requires_grad_() for n, v in values.items()}
        logits, states, raw, dropped = functional_forward(params, tokens, hidden, masks)
        extra = (raw, dropped) if train else ()
        loss = loss_of(logits, targets, states, extras, *extra)
        loss.backward()
        return logits, states, loss, {n: p.grad for n, p in params.items()}, raw, dropped

    def compare(suite, ours, masks):
        for what, a, b in [("logits", suite[0], ours[0]), ("loss", suite[2], ours[2]),
                           ("raw", suite[4], ours[4]), ("dropped", suite[5], ours[5])]:
            check(what, a, b, tol)
        for (hs, cs), (h, c) in zip(suite[1], ours[1]):
            check("h", hs, h, tol)
            check("c", cs, c, tol)
        for n in NAMES:
            expected = suite[3][n]
            if n.endswith("_raw") and masks is not None:
                expected = expected * masks[f"mask.weight.{n.split('.')[1]}"]
            check(f"grad {n}", expected, ours[3][n], tol)

    def record(run):
        logits, states, loss, grads, raw, dropped = run
        out = {"logits": logits, "loss": loss, "last_raw": raw, "last_dropped": dropped}
        for l, (h, c) in enumerate(states):
            out[f"h.{l}"], out[f"c.{l}"] = h, c
        out.update({f"grad.{n}": g for n, g in grads.items()})
        return out

    # (b) evaluation
    suite = suite_run(train=False)
    ours = functional_run(None, train=False)
    compare(suite, ours, None)
    assert ours[3]["encoder.weight"].abs().sum() > 0
    evaluation = {**common, **record(ours)}

    # (c) training: the suite draws its masks under SEED; drawn again under SEED in its order
    torch.manual_seed(SEED)
    suite = suite_run(train=True)
    torch.manual_seed(SEED)
    masks = draw_masks(dtype)
    ours = functional_run(masks, train=True)
    compare(suite, ours, masks)
    training = {**common, **masks, **record(ours)}
    return evaluation, training


def main():
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "parameters.txt").write_text("".join(n + "\n" for n in NAMES))
    for dtype, tag in [(torch.float32, "f32"), (torch.float64, "f64")]:
        write_safetensors(DATA / f"layer-{tag}.safetensors", layer_golden(dtype))
        evaluation, training = model_goldens(dtype)
        write_safetensors(DATA / f"eval-{tag}.safetensors", evaluation)
        write_safetensors(DATA / f"train-{tag}.safetensors", training)
    for dtype, d in WORST.items():
        print(f"{dtype}: the functional forward is within {d:.3g} of the suite's classes")
    print(f"wrote {DATA}")


if __name__ == "__main__":
    main()
