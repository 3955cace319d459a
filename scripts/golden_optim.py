#!/usr/bin/env python3
"""Golden trajectories for the optimizer registry (tests/optim_golden.rs).

Each tests/data/optim/<optimizer>.toml lists cases: a pisa `[optimizer]` table and the
reference it must match, a Python expression evaluated with `params` (the model's
parameter list), `names` (their names), `torch`, `pytorch_optimizer`, `torch_optimizer` and `equations`
(scripts/golden/equations.py, for optimizers with no public implementation, written from their papers) in scope.
For every case, problem (least squares, a small MLP, least squares on a tiny GPT-like layout) and dtype
(f64, f32) this script runs
STEPS full-batch steps (or the case's `steps`) and writes the parameter trajectory [STEPS + 1, P] to
tests/data/optim/golden/<optimizer>-<case>-<problem>-<dtype>.safetensors.

The problems themselves (data and w0) are drawn once, seeded, into
tests/data/optim/problems.safetensors, which the Rust test reads as well.

Usage (inside the venv of scripts/env.sh, with the references installed):
    pip install safetensors pytorch-optimizer==4.1.0 torch-optimizer==0.3.0
    python scripts/golden_optim.py [OPTIMIZER ...]     # default: every case file
"""
import pathlib
import sys
import tomllib

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "optim"
GOLDEN = DATA / "golden"
STEPS = 50
sys.path.insert(0, str(ROOT / "scripts" / "golden"))

# The MLP's parameters in layout order: fc1.weight [6, 4], fc1.bias [6], fc2.weight [3, 6],
# fc2.bias [3]; least squares has one vector w [10].
MLP_SHAPES = [("fc1.weight", (6, 4)), ("fc1.bias", (6,)), ("fc2.weight", (3, 6)), ("fc2.bias", (3,))]
# "gpt": least squares on the flat parameters of a tiny GPT-like layout, for optimizers that
# partition by name and shape (Adam-mini's transformer blocks, Shampoo's max_precondition_dim):
# block 0 in modded-nanogpt's names, block 1 in the classic GPT-2 ones (packed c_attn).
GPT_SHAPES = [
    ("transformer.wte.weight", (9, 6)),
    ("transformer.h.0.attn.c_q.weight", (6, 6)),
    ("transformer.h.0.attn.c_k.weight", (6, 6)),
    ("transformer.h.0.attn.c_v.weight", (6, 6)),
    ("transformer.h.0.attn.c_proj.weight", (6, 6)),
    ("transformer.h.0.mlp.c_fc.weight", (12, 6)),
    ("transformer.h.0.mlp.c_proj.weight", (6, 12)),
    ("transformer.h.1.ln_1.weight", (6,)),
    ("transformer.h.1.ln_1.bias", (6,)),
    ("transformer.h.1.attn.c_attn.weight", (18, 6)),
    ("transformer.h.1.attn.c_attn.bias", (18,)),
    ("transformer.ln_f.weight", (6,)),
]
SHAPES = {"ls": [("w", (10,))], "mlp": MLP_SHAPES, "gpt": GPT_SHAPES}


def problems():
    path = DATA / "problems.safetensors"
    if not path.exists():
        g = torch.Generator().manual_seed(20261122)
        t = {
            "ls.A": torch.randn(32, 10, generator=g, dtype=torch.float64),
            "ls.b": torch.randn(32, generator=g, dtype=torch.float64),
            "ls.w0": 0.1 * torch.randn(10, generator=g, dtype=torch.float64),
            "mlp.x": torch.randn(32, 4, generator=g, dtype=torch.float64),
            "mlp.y": torch.randint(0, 3, (32,), generator=g),
            "mlp.w0": 0.5 * torch.randn(sum(torch.Size(s).numel() for _, s in MLP_SHAPES), generator=g, dtype=torch.float64),
        }
        save_file(t, str(path))
    t = load_file(str(path))
    if "mlp.t" not in t:
        # regression targets for "mlp-mse", drawn after the rest (which stay as they were)
        g = torch.Generator().manual_seed(20261123)
        t["mlp.t"] = torch.randn(32, 3, generator=g, dtype=torch.float64)
        save_file(t, str(path))
    if "gpt.A" not in t:
        # the "gpt" problem, drawn after the rest (which stay as they were); A is kept in f32
        # to keep the file small (both sides cast it, exactly, to the run's dtype)
        g = torch.Generator().manual_seed(20261124)
        n = sum(torch.Size(s).numel() for _, s in GPT_SHAPES)
        t["gpt.A"] = (torch.randn(32, n, generator=g, dtype=torch.float64) / n ** 0.5).float()
        t["gpt.b"] = torch.randn(32, generator=g, dtype=torch.float64)
        t["gpt.w0"] = 0.1 * torch.randn(n, generator=g, dtype=torch.float64)
        save_file(t, str(path))
    return t


def split(flat, shapes):
    out, offset = [], 0
    for _, shape in shapes:
        n = torch.Size(shape).numel()
        out.append(flat[offset:offset + n].view(shape).clone().requires_grad_(True))
        offset += n
    return out


def loss_fn(problem, p, data, dtype):
    """Least squares ‖Aw − b‖²/(2N); the MLP's mean cross-entropy of fc2(tanh(fc1(x)))
    ("mlp"), or half its mean squared error against targets t ("mlp-mse": no softmax, so
    fc2's gradient has no rows summing to zero, which Newton–Schulz-based optimizers need
    for a well-conditioned comparison; see equations.NSISA); "gpt" is least squares on the
    concatenated parameters of GPT_SHAPES."""
    if problem in ("ls", "gpt"):
        a, b = data[f"{problem}.A"].to(dtype), data[f"{problem}.b"].to(dtype)
        w = p[0] if problem == "ls" else torch.cat([q.reshape(-1) for q in p])
        return 0.5 * ((a @ w - b) ** 2).mean()
    x, y = data["mlp.x"].to(dtype), data["mlp.y"]
    out = F.linear(torch.tanh(F.linear(x, p[0], p[1])), p[2], p[3])
    if problem == "mlp-mse":
        return 0.5 * ((out - data["mlp.t"].to(dtype)) ** 2).mean()
    return F.cross_entropy(out, y)


def trajectory(reference, problem, dtype, data, steps=STEPS):
    import pytorch_optimizer  # noqa: F401  (in scope for the reference expression)
    import torch_optimizer  # noqa: F401
    import equations  # noqa: F401

    shapes = SHAPES[problem.split('-')[0]]
    params = split(data[f"{problem.split('-')[0]}.w0"].to(dtype), shapes)
    optimizer = eval(reference, {"torch": torch, "pytorch_optimizer": pytorch_optimizer,
                                 "torch_optimizer": torch_optimizer, "equations": equations,
                                 "params": params, "names": [name for name, _ in shapes]})
    rows = [torch.cat([q.detach().reshape(-1) for q in params])]
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn(problem, params, data, dtype).backward()
        optimizer.step()
        rows.append(torch.cat([q.detach().reshape(-1) for q in params]))
    return torch.stack(rows)


def main(names):
    data = problems()
    files = [DATA / f"{n}.toml" for n in names] if names else sorted(DATA.glob("*.toml"))
    GOLDEN.mkdir(exist_ok=True)
    for file in files:
        spec = tomllib.loads(file.read_text())
        for case in spec["case"]:
            for problem in case.get("problems", ["ls", "mlp"]):
                for dtype, tag in [(torch.float64, "f64"), (torch.float32, "f32")]:
                    traj = trajectory(case["reference"], problem, dtype, data, case.get("steps", STEPS))
                    assert torch.isfinite(traj).all(), f"{file.stem}/{case['name']}: non-finite"
                    out = GOLDEN / f"{file.stem}-{case['name']}-{problem}-{tag}.safetensors"
                    save_file({"trajectory": traj.contiguous()}, str(out))
                    moved = (traj[-1] - traj[0]).abs().max().item()
                    print(f"{out.name}: P = {traj.shape[1]}, max |w_{traj.shape[0] - 1} - w_0| = {moved:.3g}")


if __name__ == "__main__":
    main(sys.argv[1:])
