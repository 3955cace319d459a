//! Yogi (Zaheer, Reddi, Sachan, Kale & Kumar, "Adaptive Methods for Nonconvex
//! Optimization", NeurIPS 2018, Algorithm 2): Adam whose second moment moves additively,
//! vₜ = vₜ₋₁ − (1 − β₂)·sign(vₜ₋₁ − gₜ²)·gₜ², so it cannot grow by more than (1 − β₂)g²
//! in a step; ε = 1e-3 as the paper recommends, lr = 1e-2 and v₀ = `initial_accumulator`
//! = 1e-6 as the authors' TensorFlow implementation (tensorflow_addons.optimizers.Yogi).
//! As `torch_optimizer.Yogi` and `pytorch_optimizer.Yogi` (the golden reference, with
//! `weight_decouple=False`) write it: Adam's bias corrections as in torch.optim.Adam,
//! w ← w − lr/(1 − β₁ᵗ) · m/(√v/√(1 − β₂ᵗ) + ε) (the paper's Algorithm 2 has none; the
//! TF code scales lr by √(1 − β₂ᵗ)/(1 − β₁ᵗ) and leaves ε unscaled), L2 weight decay,
//! and m₀ = `initial_accumulator` too (m₀ = 0 in the paper and the TF code; the difference,
//! 1e-6·β₁ᵗ in m, is below anything a run can see).
use super::adam::{named, weight_decay, BETA1, BETA2};
use super::{Classic, Step};
use crate::optim::hyper::{float, positive, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "yogi",
    summary: "Adam with an additive, sign-controlled second-moment update",
    reference:
        "Zaheer et al., NeurIPS 2018; golden: pytorch_optimizer.Yogi (= torch_optimizer.Yogi)",
    hypers: &[
        positive("lr", 1e-2, "learning rate"),
        BETA1,
        BETA2,
        positive("eps", 1e-3, "added to the denominator"),
        float(
            "initial_accumulator",
            1e-6,
            "initial value of both moments m₀ and v₀",
        ),
        float("weight_decay", 0.0, "L2 penalty added to the gradient"),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let initial = h.f64("initial_accumulator");
    Classic::boxed(
        c,
        h.f64("lr"),
        Yogi {
            beta1: h.f64("beta1"),
            beta2: h.f64("beta2"),
            eps: h.f64("eps"),
            weight_decay: h.f64("weight_decay"),
            exp_avg: c.w0.full_like(initial),
            exp_avg_sq: c.w0.full_like(initial),
        },
    )
}

pub struct Yogi {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

impl Step for Yogi {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        weight_decay(w, grad, lr, self.weight_decay, false);
        // mₜ = β₁mₜ₋₁ + (1 − β₁)gₜ
        let _ = self.exp_avg.lerp_(grad, 1.0 - self.beta1);
        // vₜ = vₜ₋₁ − (1 − β₂)·sign(vₜ₋₁ − gₜ²)·gₜ²
        let square = &*grad * &*grad;
        let sign = (&self.exp_avg_sq - &square).sign();
        let _ = self
            .exp_avg_sq
            .addcmul_(&(sign * -(1.0 - self.beta2)), &square);
        let bias1 = 1.0 - self.beta1.powf(t as f64);
        let bias2 = 1.0 - self.beta2.powf(t as f64);
        let denominator = self.exp_avg_sq.sqrt() / bias2.sqrt() + self.eps;
        let _ = w.addcdiv_(&(&self.exp_avg * (-lr / bias1)), &denominator);
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        named([("exp_avg", &self.exp_avg), ("exp_avg_sq", &self.exp_avg_sq)])
    }
}
