//! Padam (Chen, Zhou, Tang, Yang, Cao & Gu, "Closing the Generalization Gap of Adaptive
//! Gradient Methods in Training Deep Neural Networks", IJCAI 2020 / arXiv 1806.06763,
//! Algorithm 1): AMSGrad with a partially adaptive denominator,
//!   w ← w − lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v̂ + ε)^{2p},  v̂ = max(v̂, v),
//! p ∈ (0, 1/2] (p = 1/2 is AMSGrad, p → 0 SGD with momentum); the paper recommends
//! p = 1/8. As the authors' code (github.com/uclaml/Padam) defines it: ε added to √v̂
//! before the power, Adam's bias corrections folded into the step size, L2 weight decay;
//! its other defaults (lr 0.1, β = (0.9, 0.999), ε = 1e-8). `amsgrad = false` drops the
//! maximum (the authors' option), which is what `pytorch_optimizer.PAdam` implements; the
//! golden reference for the paper's AMSGrad form is `equations.Padam`, the authors' code.
use super::adabound::{adam_step_size, normaliser};
use super::adam::{named, weight_decay, Moments, BETA1, BETA2, EPS};
use super::{Classic, Step};
use crate::optim::hyper::{boolean, float, positive, Bound, Default, Hyper, Hypers, Kind};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "padam",
    summary: "partially adaptive AMSGrad: the denominator raised to 2p, p = 1/8",
    reference: "Chen et al., IJCAI 2020; golden: equations.Padam (the authors' code), pytorch_optimizer.PAdam",
    hypers: &[
        positive("lr", 0.1, "learning rate"),
        BETA1,
        BETA2,
        EPS,
        Hyper {
            name: "partial",
            kind: Kind::Float {
                min: Bound::Open(0.0),
                max: Bound::Closed(0.5),
            },
            default: Default::Float(0.125),
            doc: "partially adaptive parameter p: the denominator is (√v̂ + ε)^{2p}",
        },
        float("weight_decay", 0.0, "L2 penalty added to the gradient"),
        boolean("amsgrad", true, "normalise by the running maximum v̂ of v (the paper's Padam)"),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    Classic::boxed(
        c,
        h.f64("lr"),
        Padam {
            moments: Moments::new(h, c.w0),
            max_exp_avg_sq: h.bool("amsgrad").then(|| c.w0.zeros_like()),
            eps: h.f64("eps"),
            partial: h.f64("partial"),
            weight_decay: h.f64("weight_decay"),
        },
    )
}

pub struct Padam {
    moments: Moments,
    /// v̂ (with `amsgrad`).
    max_exp_avg_sq: Option<Tensor>,
    eps: f64,
    partial: f64,
    weight_decay: f64,
}

impl Step for Padam {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        weight_decay(w, grad, lr, self.weight_decay, false);
        self.moments.update(grad);
        // (√v̂ + ε)^{2p}
        let denominator = (normaliser(&mut self.max_exp_avg_sq, &self.moments.exp_avg_sq).sqrt()
            + self.eps)
            .pow_tensor_scalar(2.0 * self.partial);
        let step_size = adam_step_size(&self.moments, t, lr);
        let _ = w.addcdiv_(&(&self.moments.exp_avg * -step_size), &denominator);
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = self.moments.state();
        state.extend(named(
            self.max_exp_avg_sq.iter().map(|m| ("max_exp_avg_sq", m)),
        ));
        state
    }
}
