//! AdaBelief (Zhuang, Tang, Ding, Tatikonda, Dvornek, Papademetris & Duncan, "AdaBelief
//! Optimizer: Adapting Stepsizes by the Belief in Observed Gradients", NeurIPS 2020,
//! Algorithm 2): Adam whose second moment is the EMA of the squared deviation of the
//! gradient from its EMA, sₜ = β₂sₜ₋₁ + (1 − β₂)(gₜ − mₜ)² + ε, with ε inside sₜ as in
//! the paper, and ε again outside the square root.
//!
//! Defaults and options as the authors' package adabelief-pytorch 0.2.0 (the version its
//! README's hyperparameter table is for): ε = 1e-16, `weight_decouple` = true (decoupled
//! decay w ← (1 − lr·λ)w, or w ← (1 − λ)w with `fixed_decay`, else an L2 term),
//! `rectify` = true (RAdam's rectification: while the SMA length ρₜ < 5 the step is
//! lr·m/(1 − β₁ᵗ), or nothing without `degenerated_to_sgd`; after, lr·rₜ/(1 − β₁ᵗ) ·
//! m/(√s + ε)), `amsgrad` = false. `pytorch_optimizer.AdaBelief` (the golden reference)
//! computes the same update but defaults to `rectify = false`; it is given the flags
//! explicitly. One difference: with `amsgrad` and `rectify` together, adabelief-pytorch
//! divides the rectified step by √sₜ, not by its running maximum; this follows
//! pytorch_optimizer (the maximum in both branches).
use super::adabound::normaliser;
use super::adam::{ema_square, named, weight_decay, BETA1, BETA2, LR};
use super::{Classic, Step};
use crate::optim::hyper::{boolean, float, positive, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "adabelief",
    summary: "Adam with the belief sₜ = EMA of (g − m)² in place of the second moment",
    reference: "Zhuang et al., NeurIPS 2020; defaults of adabelief-pytorch 0.2.0; golden: pytorch_optimizer.AdaBelief",
    hypers: &[
        LR,
        BETA1,
        BETA2,
        positive("eps", 1e-16, "added to sₜ (inside the square root) and to √sₜ"),
        float("weight_decay", 0.0, "weight decay λ"),
        boolean("weight_decouple", true, "decoupled weight decay w ← (1 − lr·λ)w instead of an L2 term"),
        boolean("fixed_decay", false, "with weight_decouple: w ← (1 − λ)w, not scaled by lr"),
        boolean("rectify", true, "RAdam's rectification of the adaptive step"),
        boolean(
            "degenerated_to_sgd",
            true,
            "with rectify: momentum SGD steps while ρₜ < 5 (else no step)",
        ),
        boolean("amsgrad", false, "normalise by the running maximum of sₜ"),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    Classic::boxed(
        c,
        h.f64("lr"),
        AdaBelief {
            beta1: h.f64("beta1"),
            beta2: h.f64("beta2"),
            eps: h.f64("eps"),
            weight_decay: h.f64("weight_decay"),
            weight_decouple: h.bool("weight_decouple"),
            fixed_decay: h.bool("fixed_decay"),
            rectify: h.bool("rectify"),
            degenerated_to_sgd: h.bool("degenerated_to_sgd"),
            exp_avg: c.w0.zeros_like(),
            exp_avg_var: c.w0.zeros_like(),
            max_exp_avg_var: h.bool("amsgrad").then(|| c.w0.zeros_like()),
        },
    )
}

pub struct AdaBelief {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    weight_decouple: bool,
    fixed_decay: bool,
    rectify: bool,
    degenerated_to_sgd: bool,
    /// mₜ
    exp_avg: Tensor,
    /// sₜ
    exp_avg_var: Tensor,
    /// max sₜ (amsgrad only)
    max_exp_avg_var: Option<Tensor>,
}

/// RAdam's rectification (Liu et al. 2020) as adabelief-pytorch and pytorch_optimizer
/// write it: `Some(rₜ)` once ρₜ ≥ 5, where ρ∞ = 2/(1 − β₂) − 1, ρₜ = ρ∞ − 2tβ₂ᵗ/(1 − β₂ᵗ)
/// and rₜ = √((1 − β₂ᵗ)(ρₜ − 4)(ρₜ − 2)ρ∞ / ((ρ∞ − 4)ρₜ(ρ∞ − 2))) (the factor √(1 − β₂ᵗ)
/// of the bias correction included); `None` before.
pub fn rectification(beta2: f64, t: i64) -> Option<f64> {
    let rho_inf = 2.0 / (1.0 - beta2) - 1.0;
    let beta2_t = beta2.powf(t as f64);
    let rho_t = rho_inf - 2.0 * t as f64 * beta2_t / (1.0 - beta2_t);
    (rho_t >= 5.0).then(|| {
        ((1.0 - beta2_t) * (rho_t - 4.0) / (rho_inf - 4.0) * (rho_t - 2.0) / rho_t * rho_inf
            / (rho_inf - 2.0))
            .sqrt()
    })
}

impl Step for AdaBelief {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        // w ← (1 − lr·λ)w, (1 − λ)w with fixed_decay, or g ← g + λw
        let decay_lr = if self.fixed_decay { 1.0 } else { lr };
        weight_decay(w, grad, decay_lr, self.weight_decay, self.weight_decouple);
        // mₜ = β₁mₜ₋₁ + (1 − β₁)gₜ;  sₜ = β₂sₜ₋₁ + (1 − β₂)(gₜ − mₜ)² + ε
        let _ = self.exp_avg.lerp_(grad, 1.0 - self.beta1);
        let residual = &*grad - &self.exp_avg;
        ema_square(&mut self.exp_avg_var, &residual, self.beta2);
        let _ = self.exp_avg_var.g_add_scalar_(self.eps);
        let belief = normaliser(&mut self.max_exp_avg_var, &self.exp_avg_var);
        let bias1 = 1.0 - self.beta1.powf(t as f64);
        if !self.rectify {
            // w ← w − lr/(1 − β₁ᵗ) · m / (√s/√(1 − β₂ᵗ) + ε)
            let bias2 = 1.0 - self.beta2.powf(t as f64);
            let denominator = belief.sqrt() / bias2.sqrt() + self.eps;
            let _ = w.addcdiv_(&(&self.exp_avg * (-lr / bias1)), &denominator);
            return;
        }
        match rectification(self.beta2, t) {
            // w ← w − lr·rₜ/(1 − β₁ᵗ) · m / (√s + ε)
            Some(r) => {
                let denominator = belief.sqrt() + self.eps;
                let _ = w.addcdiv_(&(&self.exp_avg * (-(lr * r) / bias1)), &denominator);
            }
            // w ← w − lr/(1 − β₁ᵗ) · m
            None if self.degenerated_to_sgd => {
                let _ = w.g_add_(&(&self.exp_avg * (-lr / bias1)));
            }
            None => {}
        }
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = named([
            ("exp_avg", &self.exp_avg),
            ("exp_avg_var", &self.exp_avg_var),
        ]);
        state.extend(named(
            self.max_exp_avg_var.iter().map(|m| ("max_exp_avg_var", m)),
        ));
        state
    }
}
