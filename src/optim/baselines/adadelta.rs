//! Adadelta (Zeiler, "ADADELTA: An Adaptive Learning Rate Method", arXiv:1212.5701, 2012,
//! Algorithm 1): steps Δ = −√(E[Δ²] + ε)/√(E[g²] + ε) · g, as `torch.optim.Adadelta`
//! defines it (the step scaled by lr, default 1.0 as in the paper where there is none;
//! L2 weight decay; torch's defaults ρ = 0.9, ε = 1e-6).
use super::adam::{ema_square, named, weight_decay};
use super::{Classic, Step};
use crate::optim::hyper::{float, positive, unit, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "adadelta",
    summary: "steps scaled by the ratio of running RMS of updates and of gradients",
    reference: "Zeiler, arXiv:1212.5701, 2012; golden: torch.optim.Adadelta",
    hypers: &[
        positive("lr", 1.0, "learning rate (scales the update)"),
        unit("rho", 0.9, "decay ρ of the running means"),
        positive("eps", 1e-6, "added inside both roots"),
        float("weight_decay", 0.0, "L2 penalty added to the gradient"),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    Classic::boxed(
        c,
        h.f64("lr"),
        Adadelta {
            rho: h.f64("rho"),
            eps: h.f64("eps"),
            weight_decay: h.f64("weight_decay"),
            square_avg: c.w0.zeros_like(),
            acc_delta: c.w0.zeros_like(),
        },
    )
}

pub struct Adadelta {
    rho: f64,
    eps: f64,
    weight_decay: f64,
    /// E[g²].
    square_avg: Tensor,
    /// E[Δ²].
    acc_delta: Tensor,
}

impl Step for Adadelta {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, _t: i64, lr: f64) {
        weight_decay(w, grad, lr, self.weight_decay, false);
        // E[g²] ← ρE[g²] + (1 − ρ)g²
        ema_square(&mut self.square_avg, grad, self.rho);
        // Δ = √(E[Δ²] + ε)/√(E[g²] + ε) · g, E[Δ²] ← ρE[Δ²] + (1 − ρ)Δ², w ← w − lr·Δ
        let std = (&self.square_avg + self.eps).sqrt();
        let delta = (&self.acc_delta + self.eps).sqrt() / std * &*grad;
        ema_square(&mut self.acc_delta, &delta, self.rho);
        let _ = w.g_sub_(&(delta * lr));
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        named([
            ("square_avg", &self.square_avg),
            ("acc_delta", &self.acc_delta),
        ])
    }
}
