"""Reference optimizers written from their papers' equations, for those with no public
implementation to compare against (see scripts/golden_optim.py)."""


# ---------------------------------------------------------------------------------------
# Muon, Shampoo, SOAP, Adam-mini (src/optim/baselines/{muon,shampoo,soap,adam_mini}.rs).
# Matrices are parameters with ndim >= 2, viewed as [rows, numel/rows] (conv kernels as
# [out, in·kh·kw]); everything else is a "vector".
import math as _math

import torch

import pytorch_optimizer as _pytorch_optimizer


def _as_matrix(t):
    return t.reshape(t.shape[0], -1)


def zeropower_via_newtonschulz5(G, steps):
    """KellerJordan/Muon's zeropower_via_newtonschulz5, line for line, except that it runs in
    G's dtype (the original casts to bfloat16, which no f64 golden trajectory can follow)."""
    a, b, c = (3.4445, -4.7750, 2.0315)
    X = G
    if G.size(-2) > G.size(-1):
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * A @ A
        X = a * X + B @ X
    if G.size(-2) > G.size(-1):
        X = X.mT
    return X


class Muon(torch.optim.Optimizer):
    """Muon (Jordan et al. 2024) as KellerJordan/Muon's SingleDeviceMuonWithAuxAdam computes
    it: matrices take SGD-momentum (Nesterov) orthogonalised by zeropower_via_newtonschulz5
    and scaled by max(1, rows/cols)^0.5 (muon_update), with decoupled weight decay
    p ← (1 − lr·wd)p; every other parameter, and those whose index is in `adamw_indices`
    (embedding/head), takes its AdamW (adam_update) with its own lr, betas, eps and decay.
    Differences from that code: Newton–Schulz runs in the parameter dtype (not bf16),
    `nesterov` can be switched off (the original always uses it), and rows/cols are the
    matrix view's (the original's grad.size(-2)/grad.size(-1) differs only for conv kernels).
    pytorch_optimizer 4.1.0's Muon is not used: it hard-codes bf16 and divides by
    max(‖X‖, 1e-7) instead of ‖X‖ + 1e-7."""

    def __init__(self, params, lr=0.02, momentum=0.95, nesterov=True, ns_steps=5, weight_decay=0.0,
                 adamw_lr=3e-4, adamw_betas=(0.9, 0.95), adamw_eps=1e-10, adamw_wd=0.0, adamw_indices=()):
        params = list(params)
        muon = [p for i, p in enumerate(params) if p.ndim >= 2 and i not in adamw_indices]
        adam = [p for i, p in enumerate(params) if not (p.ndim >= 2 and i not in adamw_indices)]
        groups = []
        if muon:
            groups.append(dict(params=muon, use_muon=True, lr=lr, momentum=momentum, nesterov=nesterov,
                               ns_steps=ns_steps, weight_decay=weight_decay))
        if adam:
            groups.append(dict(params=adam, use_muon=False, lr=adamw_lr, betas=adamw_betas, eps=adamw_eps,
                               weight_decay=adamw_wd))
        super().__init__(groups, dict())

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                grad = p.grad.clone()
                if group["use_muon"]:
                    if len(state) == 0:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    momentum = state["momentum_buffer"]
                    beta = group["momentum"]
                    # muon_update
                    momentum.lerp_(grad, 1 - beta)
                    update = grad.lerp_(momentum, beta) if group["nesterov"] else momentum
                    update = _as_matrix(update)
                    update = zeropower_via_newtonschulz5(update, steps=group["ns_steps"])
                    update = update * max(1, update.size(-2) / update.size(-1)) ** 0.5
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(update.reshape(p.shape), alpha=-group["lr"])
                else:
                    if len(state) == 0:
                        state["exp_avg"] = torch.zeros_like(p)
                        state["exp_avg_sq"] = torch.zeros_like(p)
                        state["step"] = 0
                    state["step"] += 1
                    # adam_update
                    buf1, buf2, betas, step = state["exp_avg"], state["exp_avg_sq"], group["betas"], state["step"]
                    buf1.lerp_(grad, 1 - betas[0])
                    buf2.lerp_(grad.square(), 1 - betas[1])
                    buf1c = buf1 / (1 - betas[0] ** step)
                    buf2c = buf2 / (1 - betas[1] ** step)
                    update = buf1c / (buf2c.sqrt() + group["eps"])
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                    p.add_(update, alpha=-group["lr"])


def inverse_root(a, root, floor):
    """a^(-1/root) of a symmetric positive definite matrix by torch.linalg.eigh, its
    eigenvalues clamped at `floor` against roundoff: V diag(λ^(-1/root)) Vᵀ, computed in
    f64 and returned in a's dtype (in f32 the eigenvalues near ε are mostly roundoff)."""
    lam, v = torch.linalg.eigh(a.double())
    return ((v * lam.clamp_min(floor).pow(-1.0 / root).unsqueeze(0)) @ v.mT).to(a.dtype)


class Shampoo(torch.optim.Optimizer):
    """Shampoo (Gupta, Koren & Singer 2018), Algorithm 1: per matrix G [m, n],
    L ← L + GGᵀ, R ← R + GᵀG from L₀ = εI_m, R₀ = εI_n, update L^(-1/4) G R^(-1/4); vectors
    take the diagonal version H ← H + g² from H₀ = ε, update H^(-1/2) g (the paper's diagonal
    variant; Algorithm 2 with k = 1 would use a full [d, d] matrix). Weight decay is an L2
    term added to the gradient first; momentum (off by default) is heavy-ball on the
    preconditioned update, buf ← μ·buf + u; the inverse roots are recomputed at step 1 and
    every `preconditioning_compute_steps` steps after it, by eigh (`inverse_root`).
    A side longer than `max_precondition_dim` keeps no factor, and the kept factors' root is
    1/(2k) for k kept sides (pytorch_optimizer's PreConditioner: exponent 2·rank over the
    preconditioned dimensions): L^(-1/2) G or G R^(-1/2) with one side kept; with none the
    matrix takes the diagonal version, as a vector does.
    Not pytorch_optimizer's Shampoo: it gives vectors a full matrix, starts from zero inverse
    roots (so its first preconditioning_compute_steps − 1 steps do nothing), takes roots by
    SVD, and mixes the previous preconditioned update into the gradient as its "momentum"."""

    def __init__(self, params, lr=1e-3, momentum=0.0, weight_decay=0.0, matrix_eps=1e-6,
                 preconditioning_compute_steps=1, max_precondition_dim=10000):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, matrix_eps=matrix_eps,
                                      preconditioning_compute_steps=preconditioning_compute_steps,
                                      max_precondition_dim=max_precondition_dim))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            eps = group["matrix_eps"]
            for p in group["params"]:
                state = self.state[p]
                grad = p.grad.clone()
                if group["weight_decay"] != 0:
                    grad.add_(p, alpha=group["weight_decay"])
                if len(state) == 0:
                    state["step"] = 0
                    kept = [p.ndim >= 2 and d <= group["max_precondition_dim"] for d in _as_matrix(p).shape]
                    if any(kept):
                        m, n = _as_matrix(p).shape
                        if kept[0]:
                            state["left"] = eps * torch.eye(m, dtype=p.dtype)
                        if kept[1]:
                            state["right"] = eps * torch.eye(n, dtype=p.dtype)
                    else:
                        state["diag"] = torch.full_like(p, eps)
                    if group["momentum"] > 0:
                        state["momentum_buffer"] = torch.zeros_like(p)
                state["step"] += 1
                if "diag" not in state:
                    g = _as_matrix(grad)
                    root = 2 * (("left" in state) + ("right" in state))
                    recompute = (state["step"] - 1) % group["preconditioning_compute_steps"] == 0
                    update = g
                    if "left" in state:
                        state["left"].addmm_(g, g.mT)
                        if recompute:
                            state["left_root"] = inverse_root(state["left"], root, eps)
                        update = state["left_root"] @ update
                    if "right" in state:
                        state["right"].addmm_(g.mT, g)
                        if recompute:
                            state["right_root"] = inverse_root(state["right"], root, eps)
                        update = update @ state["right_root"]
                    update = update.reshape(p.shape)
                else:
                    state["diag"].addcmul_(grad, grad)
                    update = grad / state["diag"].sqrt()
                if group["momentum"] > 0:
                    update = state["momentum_buffer"].mul_(group["momentum"]).add_(update)
                p.add_(update, alpha=-group["lr"])


class SOAP(_pytorch_optimizer.SOAP):
    """SOAP (Vyas et al. 2024): pytorch_optimizer 4.1.0's SOAP, which follows the authors'
    soap.py (nikhilvyas/SOAP): step 1 only gathers GGᵀ/GᵀG and their eigenbases (eigh), each
    later step is Adam on Q_Lᵀ G Q_R with bias correction from step t − 1, decoupled decay
    after it, then the statistics update and, every precondition_frequency steps, one power
    iteration + QR with exp_avg_sq re-sorted; vectors take plain Adam (precondition_1d off).
    pytorch_optimizer keeps exp_avg unprojected and projects it each step, where the authors
    keep it projected and re-project when Q changes: the same numbers up to rounding.
    One change: the QR runs in the parameter dtype (both the authors and pytorch_optimizer
    cast it to float32 — the authors cast eigh too — which an f64 run cannot follow)."""

    def get_orthogonal_matrix_qr(self, state, max_precondition_dim=10000, merge_dims=False):
        assert not merge_dims and self.data_format == 'channels_first'
        exp_avg_sq = state['exp_avg_sq']
        matrices = []
        for ind, (m, o) in enumerate(zip(state['GG'], state['Q'])):
            if len(m) == 0:
                matrices.append([])
                continue
            matrix_product = m @ o
            est_eig = (o * matrix_product).sum(dim=0)
            sort_idx = torch.argsort(est_eig, descending=True)
            exp_avg_sq = exp_avg_sq.index_select(ind, sort_idx)
            power_iter = matrix_product.index_select(1, sort_idx)
            q, _ = torch.linalg.qr(power_iter)
            matrices.append(q)
        state['exp_avg_sq'] = exp_avg_sq
        return matrices


# Adam-mini v1.1.1's name lists (zyushun/Adam-mini, adam_mini/adam_mini.py, Adam_mini.__init__),
# in the order its step() tests them, plus this suite's GPT names (attn.c_q, attn.c_k, attn.c_v,
# attn.c_proj, each ".weight") and the packed nanoGPT c_attn; "entries" is Adam, a block per entry.
ADAM_MINI_LISTS = [
    ("adam_block_names", "entries", ["bias"]),
    ("wqk_names", "heads", ["k_proj", "q_proj", "wq", "wk", "query", "key", "attn.c_q.weight", "attn.c_k.weight"]),
    ("fused_qkv_names", "fused", ["attn.c_attn.weight"]),
    ("embd_names", "rows", ["embed", "embd", "wte"]),
    ("output_names", "rows", ["lm_head", "output", "final_layer"]),
    ("wv_names", "rows", ["v_proj", "wv", "value", "attn.c_v.weight"]),
    ("attn_proj_names", "rows", ["o_proj", "wo", "attn.proj", "attn.c_proj.weight"]),
    ("mlp_names", "rows", ["feed_forward", "linear", "mlp"]),
]


def adam_mini_blocks(name, shape, n_heads=None, **lists):
    """The block sizes of one tensor (in its row-major order) and whether it takes weight
    decay. Without n_heads: a block per row of a matrix ([rows, numel/rows]), one for any
    other tensor, decay everywhere. With n_heads, Adam-mini v1.1.1's rules by lower-cased
    name substring, first list matching: a block per entry; per head of dim·dim/n_heads
    entries (dim = the matrix's input width, the authors' head_numel); a packed [3d, d]
    q, k, v with q and k per head and v per row; per row; else one block. Names with
    "norm", "ln" or "bias" take no decay there."""
    numel = torch.Size(shape).numel()
    rows = shape[0] if len(shape) >= 2 else 1
    cols = numel // rows
    if n_heads is None:
        return [cols] * rows, True
    lname = name.lower()
    rule = "whole"
    for key, kind, default in ADAM_MINI_LISTS:
        if any(s.lower() in lname for s in lists.get(key, default)):
            rule = kind
            break
    decay = not any(s in lname for s in ("norm", "ln", "bias"))
    if rule == "entries":
        return [1] * numel, decay
    if rule == "heads":
        head = cols * cols // n_heads
        assert len(shape) >= 2 and cols * cols % n_heads == 0 and numel % head == 0
        return [head] * (numel // head), decay
    if rule == "fused":
        assert len(shape) == 2 and rows == 3 * cols and cols * cols % n_heads == 0
        head = cols * cols // n_heads
        return [head] * (2 * n_heads) + [cols] * cols, decay
    if rule == "rows" and len(shape) >= 2:
        return [cols] * rows, decay
    return [numel], decay


class AdamMini(torch.optim.Optimizer):
    """Adam-mini (Zhang et al. 2024, Algorithm 1): Adam's first moment per entry, one second
    moment per block v_b ← β₂v_b + (1 − β₂)·mean_b(g²), update
    w ← (1 − lr·λ)w − lr·m̂/(√v̂_b + ε), blocks by `adam_mini_blocks`: given `names` (one per
    parameter) and `n_heads`, the authors' v1.1.1 partition of a transformer by name,
    otherwise the output neurons (rows) of every matrix and each other tensor whole.
    The authors' code casts its state to float32 before v1.1 and keeps one state per
    block kind; pytorch_optimizer 4.1.0's AdamMini wraps a model, casts gradients to float32
    and gives a linear weight one value per tensor, not per output neuron."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, names=None,
                 n_heads=None, **lists):
        params = list(params)
        names = names or [f"p{i}" for i in range(len(params))]
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        for p, name in zip(params, names):
            self.state[p]["blocks"] = adam_mini_blocks(name, tuple(p.shape), n_heads, **lists)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                state = self.state[p]
                grad = p.grad
                sizes, decay = state["blocks"]
                if "step" not in state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["v"] = torch.zeros(len(sizes), dtype=p.dtype)
                state["step"] += 1
                step = state["step"]
                if group["weight_decay"] != 0 and decay:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                state["exp_avg"].lerp_(grad, 1 - beta1)
                squares = (grad * grad).reshape(-1).split(sizes)
                mean = torch.stack([b.sum() for b in squares]) / torch.tensor(sizes, dtype=p.dtype)
                state["v"].mul_(beta2).add_(mean * (1 - beta2))
                bias_correction1 = 1 - beta1 ** step
                bias_correction2 = 1 - beta2 ** step
                h = state["v"].sqrt() / _math.sqrt(bias_correction2) + group["eps"]
                h = h.repeat_interleave(torch.tensor(sizes)).reshape(p.shape)
                p.addcdiv_(state["exp_avg"] * (-group["lr"] / bias_correction1), h)


# ---------------------------------------------------------------------------------------
# PISA, SISA, NSISA (src/optim/admm/{pisa,sisa,nsisa}.rs): Algorithms 1-3 of the PISA paper
# (pisa.md) for m = 1 worker (α_1 = 1), every variable stored as the paper names it.
# tests/optim_golden.rs compares row t with the point of the (t+1)-th gradient, which for
# this family is the global point w^{t+1} of (2.9): the params hold w^{ℓ+1} between steps.
# `lam` is λ of (2.3) (`lambda` is a Python keyword); `mu` is μ of (2.2).

class PISA(torch.optim.Optimizer):
    """Algorithm 1 with Q = I. At construction the params become w¹ by (2.9) from
    w_1^0 = w^0 and π^0 = 0, i.e. σ⁰w⁰/(σ⁰ + λ). Each step(), with p.grad = ∇H(w^{ℓ+1}):
    g = ∇H + (μ − λ)w (F of (2.4)); (2.12) σ ← σ/γ_ℓ when k0 divides ℓ; (2.13)
    w_1 = w − (σI + ρQ)^{-1}(π + g) (`local_step`); (2.14) π ← π + σ(w_1 − w); then (2.9)
    for the next point, w ← (σw_1 + π)/(σ + λ). γ_ℓ is `gamma`, or with `epochs` E and
    `per_epoch` n Table 5's 1 − 1/(E − ⌊ℓ/n⌋), taken as 1 when E − ⌊ℓ/n⌋ ≤ 1."""

    def __init__(self, params, sigma0, rho=1.0, gamma=0.99, k0=1, lam=0.0, mu=0.0, epochs=None, per_epoch=1,
                 **local):
        super().__init__(params, dict(rho=rho, lam=lam, mu=mu, **local))
        self.sigma, self.gamma, self.k0, self.l = sigma0, gamma, k0, 0
        self.epochs, self.per_epoch = epochs, per_epoch
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    st = self.state[p]
                    st["w_i"] = p.detach().clone()
                    st["pi"] = torch.zeros_like(p)
                    p.copy_((sigma0 * st["w_i"] + st["pi"]) / (sigma0 + lam))  # (2.9), ℓ = 0

    def gamma_at(self, l):
        if self.epochs is None:
            return self.gamma
        left = self.epochs - l // self.per_epoch
        return 1.0 if left <= 1 else 1.0 - 1.0 / left

    def local_step(self, p, st, g, group):
        """x = (σI + ρQ)^{-1}(π + g) with Q = I."""
        return (st["pi"] + g) / (self.sigma + group["rho"])

    @torch.no_grad()
    def step(self, closure=None):
        if self.l % self.k0 == 0:
            self.sigma = self.sigma / self.gamma_at(self.l)  # (2.12)
        self.l += 1  # now ℓ + 1
        for group in self.param_groups:
            lam = group["lam"]
            for p in group["params"]:
                st = self.state[p]
                w = p.detach().clone()  # w^{ℓ+1}
                g = p.grad + (group["mu"] - lam) * w  # (2.10) on F of (2.4)
                x = self.local_step(p, st, g, group)
                st["w_i"] = w - x  # (2.13)
                st["pi"] = st["pi"] + self.sigma * (st["w_i"] - w)  # (2.14)
                p.copy_((self.sigma * st["w_i"] + st["pi"]) / (self.sigma + lam))  # (2.9)


class SISA(PISA):
    """Algorithm 2: Q = Diag(√m) (4.2), m = min(m̃, η²) (4.3), m̃ by scheme 1, 2 or 3 of
    (4.4) from u = π + g (scheme 3: n ← βn + (1 − β)u², m̃ = n/(1 − β^{ℓ+1})), so (4.5)
    x = u/(σ + ρ√m). m̃⁰ = n⁰ = 0."""

    def __init__(self, params, sigma0, scheme, beta=0.9, eta=1e8, **kw):
        super().__init__(params, sigma0, scheme=scheme, beta=beta, eta=eta, **kw)

    def root_moment(self, st, u, group):
        beta = group["beta"]
        n = st.setdefault("n", torch.zeros_like(u))
        # (addcmul, as pisa writes it: see NSISA on rounding)
        if group["scheme"] == 1:
            m_tilde = n.addcmul_(u, u)
        elif group["scheme"] == 2:
            m_tilde = n.mul_(beta).addcmul_(u * (1 - beta), u)
        else:
            n.mul_(beta).addcmul_(u * (1 - beta), u)
            m_tilde = n / (1 - beta ** self.l)  # self.l = ℓ + 1 during the step
        return torch.sqrt(torch.clamp(m_tilde, max=group["eta"] ** 2))

    def local_step(self, p, st, g, group):
        u = st["pi"] + g
        return u / (self.sigma + group["rho"] * self.root_moment(st, u, group))  # (4.5)


class NSISA(SISA):
    """Algorithm 3 on parameters with ndim >= 2 (viewed as [rows, numel/rows]):
    b ← μb + g (b⁰ = 0, μ = `momentum`), o = NewtonSchulz(b) (zeropower_via_newtonschulz5
    above, in the parameter dtype, no rescaling), m from (4.3)/(4.4) with g replaced by o,
    v = [π + o = 0], and (4.6) x = (π + o + ε^{ℓ+1}v)/(σ + ρ√m). Other parameters step as
    in SISA (4.5). The paper leaves the Newton–Schulz variant, its dtype and the scaling of
    o open; these are the choices documented in src/optim/admm/nsisa.rs.
    Rounding: on the cross-entropy MLP, fc2's gradient has rows summing to 0 (softmax), so
    b has a singular value at rounding level, which Newton–Schulz multiplies by up to
    a⁵ ≈ 484: 1-ulp differences in any op order grow past the f32 tolerance within a few
    steps, and past 1e-10 in f64. The golden cases hence use the "mlp-mse" problem, whose
    singular values are all meaningful. Powers are ** (libm pow, as pisa's powf)."""

    def __init__(self, params, sigma0, scheme, momentum=0.95, eps=0.1, ns_steps=5, **kw):
        super().__init__(params, sigma0, scheme, **kw)
        for group in self.param_groups:
            group.update(momentum=momentum, eps=eps, ns_steps=ns_steps)

    def local_step(self, p, st, g, group):
        if p.ndim < 2:
            return super().local_step(p, st, g, group)
        st["b"] = group["momentum"] * st.get("b", torch.zeros_like(g)) + g
        o = zeropower_via_newtonschulz5(_as_matrix(st["b"]), group["ns_steps"]).reshape(p.shape)
        u = st["pi"] + o
        v = (u == 0).to(u.dtype)
        root = self.root_moment(st, u, group)
        return (u + group["eps"] ** self.l * v) / (self.sigma + group["rho"] * root)  # (4.6)


# ---------------------------------------------------------------------------------------
# Helpers for torch.optim references (src/optim/baselines/nadam.rs).

def f64_scalar_state(optimizer):
    """Runs `optimizer.step` with torch's default dtype float64, so that the scalar state
    torch keeps as 0-d tensors of the default dtype (NAdam's mu_product) is float64, as
    pisa keeps it (a host f64) and as torch keeps it when a user runs in float64; with the
    float32 default, mu_product's rounding moves f64 trajectories by ~1e-9 relative.
    Nothing else of the step depends on the default dtype (the moments take the params')."""
    step = optimizer.step

    def wrapped(*args, **kwargs):
        default = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            return step(*args, **kwargs)
        finally:
            torch.set_default_dtype(default)

    optimizer.step = wrapped
    return optimizer


# ---------------------------------------------------------------------------------------
# Padam, LARS, M-SVAG (src/optim/baselines/{padam,lars,msvag}.rs): the authors' code or the
# paper's algorithm where the public implementations leave part of it out.

class Padam(torch.optim.Optimizer):
    """Padam (Chen et al. 2020, Algorithm 1) as the authors' Padam.py (uclaml/Padam) writes
    it, in current torch calls: L2 weight decay, m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g²,
    with `amsgrad` v̂ ← max(v̂, v), then w ← w − lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m/(√v̂ + ε)^{2p}.
    pytorch_optimizer 4.1.0's PAdam has no running maximum (amsgrad=False only)."""

    def __init__(self, params, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=True, partial=0.125):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      partial=partial))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    state["max_exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                grad = p.grad
                if group["weight_decay"] != 0:
                    grad = grad.add(p, alpha=group["weight_decay"])
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                if group["amsgrad"]:
                    torch.max(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                    denom = state["max_exp_avg_sq"].sqrt().add_(group["eps"])
                else:
                    denom = exp_avg_sq.sqrt().add_(group["eps"])
                bias_correction1 = 1 - beta1 ** state["step"]
                bias_correction2 = 1 - beta2 ** state["step"]
                step_size = group["lr"] * _math.sqrt(bias_correction2) / bias_correction1
                p.addcdiv_(exp_avg, denom ** (group["partial"] * 2), value=-step_size)


class LARS(torch.optim.Optimizer):
    """LARS (You, Gitman & Ginsburg 2017, Algorithm 1) on every parameter tensor l:
    λ_l = η‖w_l‖/(‖g_l‖ + β‖w_l‖) (1 where ‖w_l‖ or the denominator is 0),
    ĝ = λ_l(g + βw), b ← μb + ĝ (b⁰ = 0), w ← w − lr·b (Nesterov: w ← w − lr(ĝ + μb)).
    pytorch_optimizer 4.1.0's LARS skips tensors with ndim ≤ 1 (pisa's `exclude_vectors`)."""

    def __init__(self, params, lr=1e-3, momentum=0.9, nesterov=False, weight_decay=0.0, trust_coefficient=1e-3):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay,
                                      trust_coefficient=trust_coefficient))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            wd, mu = group["weight_decay"], group["momentum"]
            for p in group["params"]:
                grad = p.grad
                p_norm, g_norm = torch.linalg.norm(p), torch.linalg.norm(grad)
                denominator = g_norm + wd * p_norm
                ratio = torch.where((p_norm > 0) & (denominator > 0),
                                    group["trust_coefficient"] * p_norm / denominator, 1.0)
                grad = grad.add(p, alpha=wd).mul_(ratio)
                if mu > 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    buf = state["momentum_buffer"].mul_(mu).add_(grad)
                    grad = grad.add(buf, alpha=mu) if group["nesterov"] else buf
                p.add_(grad, alpha=-group["lr"])


class MSVAG(_pytorch_optimizer.MSVAG):
    """M-SVAG (Balles & Hennig 2018): pytorch_optimizer 4.1.0's MSVAG with ρ capped at 0.999
    as in the authors' code (lballes/msvag), not 0.9999. The cap acts only at t = 1."""

    @staticmethod
    def get_rho(beta_power, beta):
        rho = (1.0 - beta_power ** 2) * (1.0 - beta) ** 2
        rho /= (1.0 - beta ** 2) * (1.0 - beta_power) ** 2
        return min(rho, 0.999)
