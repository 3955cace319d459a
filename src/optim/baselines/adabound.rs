//! AdaBound and AMSBound (Luo, Xiong, Liu & Sun, "Adaptive Gradient Methods with Dynamic
//! Bound of Learning Rate", ICLR 2019, Algorithm 2): Adam whose per-coordinate step
//! lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ)/(√v + ε) is clipped to [η_l(t), η_u(t)], bounds that both
//! converge to `final_lr` at speed `gamma`, so the method turns into SGD. As the authors'
//! code (github.com/Luolc/AdaBound) and `torch_optimizer.AdaBound` (its copy, the golden
//! reference) define it: ε added to √v, L2 weight decay in the gradient, and `final_lr`
//! scaled by the learning-rate schedule (final_lr · lr/lr₀). `pytorch_optimizer.AdaBound`
//! differs: it adds 1e-15 inside the square root and decouples weight decay by default.
//! The moments, AMSGrad's maximum and Adam's step size are shared with Padam.
use super::adam::{named, weight_decay, Moments, BETA1, BETA2, EPS};
use super::{Classic, Step};
use crate::optim::hyper::{boolean, float, positive, Bound, Default, Hyper, Hypers, Kind};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "adabound",
    summary: "Adam with per-coordinate step sizes clipped to bounds that converge to SGD's",
    reference: "Luo et al., ICLR 2019; golden: torch_optimizer.AdaBound (the authors' code)",
    hypers: &[
        positive("lr", 1e-3, "learning rate (Adam's step size α)"),
        float("final_lr", 0.1, "the SGD learning rate both bounds converge to"),
        BETA1,
        BETA2,
        Hyper {
            name: "gamma",
            kind: Kind::Float {
                min: Bound::Open(0.0),
                max: Bound::Open(1.0),
            },
            default: Default::Float(1e-3),
            doc: "convergence speed of the bounds: η_l = final_lr(1 − 1/(γt + 1)), η_u = final_lr(1 + 1/(γt))",
        },
        EPS,
        float("weight_decay", 0.0, "L2 penalty added to the gradient"),
        boolean("amsbound", false, "normalise by the running maximum of v (AMSBound)"),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    Classic::boxed(
        c,
        h.f64("lr"),
        AdaBound {
            moments: Moments::new(h, c.w0),
            max_exp_avg_sq: h.bool("amsbound").then(|| c.w0.zeros_like()),
            eps: h.f64("eps"),
            weight_decay: h.f64("weight_decay"),
            base_lr: h.f64("lr"),
            final_lr: h.f64("final_lr"),
            gamma: h.f64("gamma"),
        },
    )
}

/// The second moment an AMSGrad-type method normalises by: v, or with the running maximum
/// v̂ ← max(v̂, v) (updated here) when it keeps one.
pub fn normaliser(max_exp_avg_sq: &mut Option<Tensor>, exp_avg_sq: &Tensor) -> Tensor {
    match max_exp_avg_sq {
        Some(max) => {
            max.copy_(&max.maximum(exp_avg_sq));
            max.shallow_clone()
        }
        None => exp_avg_sq.shallow_clone(),
    }
}

/// Adam's bias-corrected step size lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ), as the authors' code computes it.
pub fn adam_step_size(moments: &Moments, t: i64, lr: f64) -> f64 {
    let bias1 = 1.0 - moments.beta1.powf(t as f64);
    let bias2 = 1.0 - moments.beta2.powf(t as f64);
    lr * bias2.sqrt() / bias1
}

pub struct AdaBound {
    moments: Moments,
    /// v̂ (AMSBound only).
    max_exp_avg_sq: Option<Tensor>,
    eps: f64,
    weight_decay: f64,
    /// The unscheduled learning rate lr₀, for final_lr · lr/lr₀.
    base_lr: f64,
    final_lr: f64,
    gamma: f64,
}

impl Step for AdaBound {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        weight_decay(w, grad, lr, self.weight_decay, false);
        self.moments.update(grad);
        let denominator =
            normaliser(&mut self.max_exp_avg_sq, &self.moments.exp_avg_sq).sqrt() + self.eps;
        // The bounds of Algorithm 2, following the schedule of lr.
        let final_lr = self.final_lr * lr / self.base_lr;
        let lower = final_lr * (1.0 - 1.0 / (self.gamma * t as f64 + 1.0));
        let upper = final_lr * (1.0 + 1.0 / (self.gamma * t as f64));
        // η = clip(α√(1 − β₂ᵗ)/(1 − β₁ᵗ) / (√v + ε), η_l, η_u);  w ← w − η ⊙ m
        let mut eta = denominator.full_like(adam_step_size(&self.moments, t, lr));
        let _ = eta.g_div_(&denominator);
        let _ = eta.clamp_(lower, upper);
        let _ = eta.g_mul_(&self.moments.exp_avg);
        let _ = w.g_sub_(&eta);
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = self.moments.state();
        state.extend(named(
            self.max_exp_avg_sq.iter().map(|m| ("max_exp_avg_sq", m)),
        ));
        state
    }
}
