//! NAdam (Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop): Adam
//! with Nesterov momentum and the momentum schedule μₜ = β₁(1 − ½·0.96^{tψ}),
//! ψ = `momentum_decay`, as `torch.optim.NAdam` defines it (the paper's Algorithm 2 with
//! torch's defaults lr = 2e-3, ψ = 4e-3; L2 weight decay, or decoupled as in AdamW with
//! `decoupled_weight_decay`). The product Πμ is a host f64 (torch keeps it as a 0-d
//! tensor of the default dtype).
use super::adam::{weight_decay, Moments, BETA1, BETA2, DECOUPLED, EPS, WEIGHT_DECAY};
use super::{Classic, Step};
use crate::optim::hyper::{float, positive, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "nadam",
    summary: "Adam with Nesterov momentum and a warming momentum schedule",
    reference: "Dozat, ICLR 2016 workshop; golden: torch.optim.NAdam",
    hypers: &[
        positive("lr", 2e-3, "learning rate"),
        BETA1,
        BETA2,
        EPS,
        WEIGHT_DECAY,
        float(
            "momentum_decay",
            4e-3,
            "ψ of the momentum schedule μₜ = β₁(1 − ½·0.96^{tψ})",
        ),
        DECOUPLED,
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    Classic::boxed(
        c,
        h.f64("lr"),
        NAdam {
            moments: Moments::new(h, c.w0),
            eps: h.f64("eps"),
            weight_decay: h.f64("weight_decay"),
            momentum_decay: h.f64("momentum_decay"),
            decoupled: h.bool("decoupled_weight_decay"),
            mu_product: Tensor::from(1.0f64),
        },
    )
}

pub struct NAdam {
    moments: Moments,
    eps: f64,
    weight_decay: f64,
    momentum_decay: f64,
    decoupled: bool,
    /// Πₛ₌₁ᵗ μₛ, a 0-d f64 tensor on the CPU so that checkpoints carry it (reading it
    /// back costs no device sync).
    mu_product: Tensor,
}

impl NAdam {
    /// μₜ = β₁(1 − ½·0.96^{tψ})
    fn mu(&self, t: i64) -> f64 {
        self.moments.beta1 * (1.0 - 0.5 * 0.96f64.powf(t as f64 * self.momentum_decay))
    }
}

impl Step for NAdam {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        weight_decay(w, grad, lr, self.weight_decay, self.decoupled);
        let (mu, mu_next) = (self.mu(t), self.mu(t + 1));
        let mu_product = self.mu_product.double_value(&[]) * mu;
        let _ = self.mu_product.fill_(mu_product);
        let mu_product_next = mu_product * mu_next;
        self.moments.update(grad);
        let bias2 = 1.0 - self.moments.beta2.powf(t as f64);
        // w ← w − lr·(1 − μₜ)/(1 − Πₛ≤ₜ μₛ) · g/d − lr·μₜ₊₁/(1 − Πₛ≤ₜ₊₁ μₛ) · m/d,
        // d = √(v/(1 − β₂ᵗ)) + ε
        let denominator = (&self.moments.exp_avg_sq / bias2).sqrt() + self.eps;
        let _ = w.addcdiv_(
            &(&*grad * (-lr * (1.0 - mu) / (1.0 - mu_product))),
            &denominator,
        );
        let _ = w.addcdiv_(
            &(&self.moments.exp_avg * ((-lr * mu_next) / (1.0 - mu_product_next))),
            &denominator,
        );
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = self.moments.state();
        state.push(("mu_product".into(), self.mu_product.shallow_clone()));
        state
    }
}
