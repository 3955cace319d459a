//! Adan (Xie, Zhou, Li, Lin & Yan, "Adan: Adaptive Nesterov Momentum Algorithm for Faster
//! Optimizing Deep Models", TPAMI 2024 / arXiv 2208.06677, Algorithm 1): Nesterov momentum
//! estimated from the gradient and its difference,
//!   mₖ = β₁mₖ₋₁ + (1 − β₁)gₖ,  vₖ = β₂vₖ₋₁ + (1 − β₂)(gₖ − gₖ₋₁),
//!   nₖ = β₃nₖ₋₁ + (1 − β₃)[gₖ + β₂(gₖ − gₖ₋₁)]²,
//!   w ← (w − lr·(m̂ₖ + β₂v̂ₖ)/(√n̂ₖ + ε)) / (1 + lr·λ),
//! in the PyTorch convention of the authors' code (github.com/sail-sg/Adan): `beta1`,
//! `beta2`, `beta3` = 0.98, 0.92, 0.99 weigh the old average, so the paper's β₁, β₂, β₃ =
//! 0.02, 0.08, 0.01 are 1 minus these. As that code and `pytorch_optimizer.Adan` (the golden
//! reference) do: bias corrections m̂ = m/(1 − β₁ᵏ), v̂ = v/(1 − β₂ᵏ), √n̂ = √n/√(1 − β₃ᵏ)
//! (not in Algorithm 1), g₀ = g₁ (the first difference is 0), weight decay by the proximal
//! step 1/(1 + lr·λ) of Algorithm 1, or with `no_prox` decoupled, w ← (1 − lr·λ)w before
//! the step. No gradient clipping (the authors' `max_grad_norm`, off by default).
use super::adam::{ema_square, named};
use super::{Classic, Step};
use crate::optim::hyper::{boolean, float, positive, unit, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "adan",
    summary: "adaptive Nesterov momentum from the gradient and its difference",
    reference: "Xie et al., TPAMI 2024; golden: pytorch_optimizer.Adan (the authors' code)",
    hypers: &[
        positive("lr", 1e-3, "learning rate"),
        unit(
            "beta1",
            0.98,
            "decay of the gradient average m (paper: 1 − β₁ = 0.02)",
        ),
        unit(
            "beta2",
            0.92,
            "decay of the difference average v (paper: 1 − β₂ = 0.08)",
        ),
        unit(
            "beta3",
            0.99,
            "decay of the second moment n (paper: 1 − β₃ = 0.01)",
        ),
        positive("eps", 1e-8, "added to √n̂"),
        float("weight_decay", 0.0, "weight decay λ"),
        boolean(
            "no_prox",
            false,
            "decoupled decay w ← (1 − lr·λ)w instead of the proximal 1/(1 + lr·λ)",
        ),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    Classic::boxed(
        c,
        h.f64("lr"),
        Adan {
            beta1: h.f64("beta1"),
            beta2: h.f64("beta2"),
            beta3: h.f64("beta3"),
            eps: h.f64("eps"),
            weight_decay: h.f64("weight_decay"),
            no_prox: h.bool("no_prox"),
            exp_avg: c.w0.zeros_like(),
            exp_avg_diff: c.w0.zeros_like(),
            exp_avg_sq: c.w0.zeros_like(),
            neg_previous_grad: c.w0.zeros_like(),
        },
    )
}

pub struct Adan {
    beta1: f64,
    beta2: f64,
    beta3: f64,
    eps: f64,
    weight_decay: f64,
    no_prox: bool,
    /// m
    exp_avg: Tensor,
    /// v
    exp_avg_diff: Tensor,
    /// n
    exp_avg_sq: Tensor,
    /// −gₖ₋₁ between steps; the step reuses it for the difference and for u.
    neg_previous_grad: Tensor,
}

impl Step for Adan {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        let (beta1, beta2, beta3) = (self.beta1, self.beta2, self.beta3);
        let work = &mut self.neg_previous_grad;
        if t == 1 {
            // g₀ = g₁
            work.copy_(grad);
            let _ = work.neg_();
        }
        // d = gₖ − gₖ₋₁
        let _ = work.g_add_(grad);
        let _ = self.exp_avg.lerp_(grad, 1.0 - beta1);
        let _ = self.exp_avg_diff.lerp_(work, 1.0 - beta2);
        // u = gₖ + β₂d, n ← β₃n + (1 − β₃)u²
        let _ = work.g_mul_scalar_(beta2);
        let _ = work.g_add_(grad);
        ema_square(&mut self.exp_avg_sq, work, beta3);
        let k = t as f64;
        let bias1 = 1.0 - beta1.powf(k);
        let bias2 = 1.0 - beta2.powf(k);
        let bias3 = 1.0 - beta3.powf(k);
        let denominator = self.exp_avg_sq.sqrt() / bias3.sqrt() + self.eps;
        let decay = self.weight_decay != 0.0;
        if decay && self.no_prox {
            let _ = w.g_mul_scalar_(1.0 - lr * self.weight_decay);
        }
        // w ← w − lr·m̂/(√n̂ + ε) − lr·β₂v̂/(√n̂ + ε)
        let _ = w.addcdiv_(&(&self.exp_avg * (-lr / bias1)), &denominator);
        let _ = w.addcdiv_(
            &(&self.exp_avg_diff * (-(lr * beta2) / bias2)),
            &denominator,
        );
        if decay && !self.no_prox {
            let _ = w.g_div_scalar_(1.0 + lr * self.weight_decay);
        }
        work.copy_(grad);
        let _ = work.neg_();
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        named([
            ("exp_avg", &self.exp_avg),
            ("exp_avg_diff", &self.exp_avg_diff),
            ("exp_avg_sq", &self.exp_avg_sq),
            ("neg_previous_grad", &self.neg_previous_grad),
        ])
    }
}
