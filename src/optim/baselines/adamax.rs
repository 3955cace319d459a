//! AdaMax (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, §7.1
//! Algorithm 2): Adam with the second moment replaced by the exponentially weighted
//! infinity norm uₜ = max(β₂uₜ₋₁, |g| + ε), as `torch.optim.Adamax` defines it (ε inside
//! the max, which the paper has not; L2 weight decay; torch's defaults, lr = 2e-3 as in
//! the paper).
use super::adam::{named, weight_decay, BETA1, BETA2, EPS};
use super::{Classic, Step};
use crate::optim::hyper::{float, positive, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "adamax",
    summary: "Adam with an exponentially weighted infinity norm in place of the second moment",
    reference: "Kingma & Ba, ICLR 2015 (§7.1); golden: torch.optim.Adamax",
    hypers: &[
        positive("lr", 2e-3, "learning rate"),
        BETA1,
        BETA2,
        EPS,
        float("weight_decay", 0.0, "L2 penalty added to the gradient"),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    Classic::boxed(
        c,
        h.f64("lr"),
        Adamax {
            beta1: h.f64("beta1"),
            beta2: h.f64("beta2"),
            eps: h.f64("eps"),
            weight_decay: h.f64("weight_decay"),
            exp_avg: c.w0.zeros_like(),
            exp_inf: c.w0.zeros_like(),
        },
    )
}

pub struct Adamax {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    exp_avg: Tensor,
    /// The infinity norm u.
    exp_inf: Tensor,
}

impl Step for Adamax {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        weight_decay(w, grad, lr, self.weight_decay, false);
        // m ← β₁m + (1 − β₁)g, u ← max(β₂u, |g| + ε)
        let _ = self.exp_avg.lerp_(grad, 1.0 - self.beta1);
        let _ = self.exp_inf.g_mul_scalar_(self.beta2);
        let _ = self
            .exp_inf
            .maximum_out(&self.exp_inf, &(grad.abs() + self.eps));
        // w ← w − lr/(1 − β₁ᵗ) · m/u
        let bias1 = 1.0 - self.beta1.powf(t as f64);
        let _ = w.addcdiv_(&(&self.exp_avg * (-lr / bias1)), &self.exp_inf);
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        named([("exp_avg", &self.exp_avg), ("exp_inf", &self.exp_inf)])
    }
}
