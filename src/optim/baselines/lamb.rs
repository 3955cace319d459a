//! LAMB (You, Li, Reddi, Hseu, Kumar, Bhojanapalli, Song, Demmel, Keutzer & Hsieh, "Large
//! Batch Optimization for Deep Learning: Training BERT in 76 minutes", ICLR 2020,
//! Algorithm 2): Adam's direction plus the L2 term, rescaled per parameter tensor l by the
//! layerwise trust ratio ‖w_l‖/‖r_l + λw_l‖,
//!   r = m/(√v + ε),  w_l ← w_l − lr · φ(‖w_l‖)/‖r_l + λw_l‖ · (r_l + λw_l),
//! with φ(z) = min(z, `clamp_value`) and the ratio 1 where either norm is 0. As
//! `torch_optimizer.Lamb` (the golden reference) defines it: no bias correction by default
//! (arXiv v3's algorithm; since the trust ratio fixes the step length, the final paper's
//! m̂, v̂ change the update only through the size of ε and the mix of r and λw), or with
//! `debias` the step scaled by √(1 − β₂ᵗ)/(1 − β₁ᵗ); `adam` = true sets the ratio to 1.
//! Defaults ε = 1e-6 and λ = 0 as torch_optimizer. The per-tensor norms come from one
//! segment reduction over the flat buffer ([`Layerwise`]).
use super::adam::{Moments, BETA1, BETA2, LR};
use super::layerwise::Layerwise;
use super::{Classic, Step};
use crate::optim::hyper::{boolean, float, positive, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "lamb",
    summary: "Adam with a layerwise trust ratio ‖w‖/‖update‖ per parameter tensor",
    reference: "You et al., ICLR 2020; golden: torch_optimizer.Lamb",
    hypers: &[
        LR,
        BETA1,
        BETA2,
        positive("eps", 1e-6, "added to √v"),
        float(
            "weight_decay",
            0.0,
            "λ: λw is added to the Adam direction before the trust ratio",
        ),
        positive(
            "clamp_value",
            10.0,
            "φ(z) = min(z, clamp_value) caps the weight norm in the trust ratio",
        ),
        boolean(
            "adam",
            false,
            "trust ratio 1: Adam with the L2 term in the direction",
        ),
        boolean("debias", false, "scale the step by √(1 − β₂ᵗ)/(1 − β₁ᵗ)"),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    Classic::boxed(
        c,
        h.f64("lr"),
        Lamb {
            moments: Moments::new(h, c.w0),
            eps: h.f64("eps"),
            weight_decay: h.f64("weight_decay"),
            clamp_value: h.f64("clamp_value"),
            adam: h.bool("adam"),
            debias: h.bool("debias"),
            layers: Layerwise::new(c.layout, c.w0.device()),
        },
    )
}

pub struct Lamb {
    moments: Moments,
    eps: f64,
    weight_decay: f64,
    clamp_value: f64,
    adam: bool,
    debias: bool,
    layers: Layerwise,
}

/// A per-tensor ratio `numerator/denominator`, 1 where either is 0 (both [tensors]).
pub fn trust_ratio(numerator: &Tensor, denominator: &Tensor) -> Tensor {
    let defined = numerator.ne(0.0).logical_and(&denominator.ne(0.0));
    (numerator / denominator).where_scalarother(&defined, 1.0)
}

impl Step for Lamb {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        self.moments.update(grad);
        let Moments {
            beta1,
            beta2,
            exp_avg,
            exp_avg_sq,
            ..
        } = &self.moments;
        let step_size = if self.debias {
            let t = t as f64;
            lr * (1.0 - beta2.powf(t)).sqrt() / (1.0 - beta1.powf(t))
        } else {
            lr
        };
        // φ(‖w_l‖), before the update; r + λw
        let mut direction = exp_avg / (exp_avg_sq.sqrt() + self.eps);
        if self.weight_decay != 0.0 {
            let _ = direction.g_add_(&(&*w * self.weight_decay));
        }
        if !self.adam {
            let weight_norm = self.layers.norms(w).clamp(0.0, self.clamp_value);
            let ratio = trust_ratio(&weight_norm, &self.layers.norms(&direction));
            let _ = direction.g_mul_(&self.layers.spread(&ratio));
        }
        let _ = w.g_add_(&(direction * -step_size));
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.moments.state()
    }
}
