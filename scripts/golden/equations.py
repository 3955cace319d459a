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
    eigenvalues clamped at `floor` against roundoff: V diag(λ^(-1/root)) Vᵀ."""
    lam, v = torch.linalg.eigh(a)
    return (v * lam.clamp_min(floor).pow(-1.0 / root).unsqueeze(0)) @ v.mT


class Shampoo(torch.optim.Optimizer):
    """Shampoo (Gupta, Koren & Singer 2018), Algorithm 1: per matrix G [m, n],
    L ← L + GGᵀ, R ← R + GᵀG from L₀ = εI_m, R₀ = εI_n, update L^(-1/4) G R^(-1/4); vectors
    take the diagonal version H ← H + g² from H₀ = ε, update H^(-1/2) g (the paper's diagonal
    variant; Algorithm 2 with k = 1 would use a full [d, d] matrix). Weight decay is an L2
    term added to the gradient first; momentum (off by default) is heavy-ball on the
    preconditioned update, buf ← μ·buf + u; the inverse roots are recomputed at step 1 and
    every `preconditioning_compute_steps` steps after it, by eigh (`inverse_root`).
    Not pytorch_optimizer's Shampoo: it gives vectors a full matrix, starts from zero inverse
    roots (so its first preconditioning_compute_steps − 1 steps do nothing), takes roots by
    SVD, and mixes the previous preconditioned update into the gradient as its "momentum"."""

    def __init__(self, params, lr=1e-3, momentum=0.0, weight_decay=0.0, matrix_eps=1e-6,
                 preconditioning_compute_steps=1):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, matrix_eps=matrix_eps,
                                      preconditioning_compute_steps=preconditioning_compute_steps))

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
                    if p.ndim >= 2:
                        m, n = _as_matrix(p).shape
                        state["left"] = eps * torch.eye(m, dtype=p.dtype)
                        state["right"] = eps * torch.eye(n, dtype=p.dtype)
                    else:
                        state["diag"] = torch.full_like(p, eps)
                    if group["momentum"] > 0:
                        state["momentum_buffer"] = torch.zeros_like(p)
                state["step"] += 1
                if p.ndim >= 2:
                    g = _as_matrix(grad)
                    state["left"].addmm_(g, g.mT)
                    state["right"].addmm_(g.mT, g)
                    if (state["step"] - 1) % group["preconditioning_compute_steps"] == 0:
                        state["left_root"] = inverse_root(state["left"], 4, eps)
                        state["right_root"] = inverse_root(state["right"], 4, eps)
                    update = (state["left_root"] @ g @ state["right_root"]).reshape(p.shape)
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


class AdamMini(torch.optim.Optimizer):
    """Adam-mini (Zhang et al. 2024, Algorithm 1 with the v2 partition): Adam's first moment
    per entry, one second moment per block v_b ← β₂v_b + (1 − β₂)·mean_b(g²), blocks being
    the output neurons (rows) of every matrix and each other tensor whole; update
    w ← (1 − lr·λ)w − lr·m̂/(√v̂_b + ε). The authors' code (zyushun/Adam-mini) needs
    transformer parameter names and casts its state to float32; pytorch_optimizer 4.1.0's
    AdamMini wraps a model, casts gradients to float32 and gives a linear weight one value
    per tensor, not per output neuron. Neither special-cases anything here (no embedding,
    output, query or key names in these problems)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                state = self.state[p]
                grad = p.grad
                rows = p.shape[0] if p.ndim >= 2 else 1
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["v"] = torch.zeros(rows, dtype=p.dtype)
                state["step"] += 1
                step = state["step"]
                if group["weight_decay"] != 0:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
                state["exp_avg"].lerp_(grad, 1 - beta1)
                mean = (grad * grad).reshape(rows, -1).sum(dim=1) / (p.numel() // rows)
                state["v"].mul_(beta2).add_(mean * (1 - beta2))
                bias_correction1 = 1 - beta1 ** step
                bias_correction2 = 1 - beta2 ** step
                h = state["v"].sqrt() / _math.sqrt(bias_correction2) + group["eps"]
                h = h.repeat_interleave(p.numel() // rows).reshape(p.shape)
                p.addcdiv_(state["exp_avg"] * (-group["lr"] / bias_correction1), h)
