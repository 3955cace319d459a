//! RAdam (Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR
//! 2020): Adam whose adaptive step is rectified by rₜ while the approximated SMA length
//! ρₜ is large enough, and plain bias-corrected momentum before, as `torch.optim.RAdam`
//! defines it: threshold ρₜ > 5 (the authors' code; the paper's Algorithm 2 says ρₜ > 4),
//! ε added to √v before the bias correction, L2 weight decay or, with
//! `decoupled_weight_decay`, decoupled as in AdamW; torch's defaults.
use super::adam::{weight_decay, Moments, BETA1, BETA2, DECOUPLED, EPS, LR, WEIGHT_DECAY};
use super::{Classic, Step};
use crate::optim::hyper::Hypers;
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "radam",
    summary: "rectified Adam: momentum until the second moment's variance is tractable",
    reference: "Liu et al., ICLR 2020; golden: torch.optim.RAdam",
    hypers: &[LR, BETA1, BETA2, EPS, WEIGHT_DECAY, DECOUPLED],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    Classic::boxed(
        c,
        h.f64("lr"),
        RAdam {
            moments: Moments::new(h, c.w0),
            eps: h.f64("eps"),
            weight_decay: h.f64("weight_decay"),
            decoupled: h.bool("decoupled_weight_decay"),
        },
    )
}

pub struct RAdam {
    moments: Moments,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
}

impl Step for RAdam {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        weight_decay(w, grad, lr, self.weight_decay, self.decoupled);
        self.moments.update(grad);
        let Moments {
            beta1,
            beta2,
            exp_avg,
            exp_avg_sq,
            ..
        } = &self.moments;
        let step = t as f64;
        let bias1 = 1.0 - beta1.powf(step);
        let bias2 = 1.0 - beta2.powf(step);
        // ρ∞ = 2/(1 − β₂) − 1, ρₜ = ρ∞ − 2tβ₂ᵗ/(1 − β₂ᵗ)
        let rho_inf = 2.0 / (1.0 - beta2) - 1.0;
        let rho_t = rho_inf - 2.0 * step * beta2.powf(step) / bias2;
        // m̂ · lr, then w ← w − lr·m̂·rₜ·√(1 − β₂ᵗ)/(√v + ε) or w ← w − lr·m̂
        let mut update = exp_avg / bias1 * lr;
        if rho_t > 5.0 {
            // rₜ = √((ρₜ − 4)(ρₜ − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρₜ))
            let rect = ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf
                / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                .powf(0.5);
            let adaptive = (exp_avg_sq.sqrt() + self.eps).reciprocal() * bias2.powf(0.5);
            update = update * adaptive * rect;
        }
        let _ = w.g_sub_(&update);
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.moments.state()
    }
}
