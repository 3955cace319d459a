//! Adagrad (Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and
//! Stochastic Optimization", JMLR 2011): the diagonal form, steps scaled by the root of
//! the summed squared gradients, as `torch.optim.Adagrad` defines it (ε added to the root,
//! learning rate lr/(1 + (t − 1)·lr_decay), L2 weight decay; torch's defaults).
use super::adam::{named, weight_decay};
use super::{Classic, Step};
use crate::optim::hyper::{float, positive, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "adagrad",
    summary: "steps divided by the root of the summed squared gradients",
    reference: "Duchi, Hazan & Singer, JMLR 2011; golden: torch.optim.Adagrad",
    hypers: &[
        positive("lr", 1e-2, "learning rate"),
        float(
            "lr_decay",
            0.0,
            "the step-t learning rate is lr/(1 + (t − 1)·lr_decay)",
        ),
        float("weight_decay", 0.0, "L2 penalty added to the gradient"),
        float(
            "initial_accumulator_value",
            0.0,
            "initial value of the sum of squares",
        ),
        positive("eps", 1e-10, "added to the denominator"),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    Classic::boxed(
        c,
        h.f64("lr"),
        Adagrad {
            lr_decay: h.f64("lr_decay"),
            weight_decay: h.f64("weight_decay"),
            eps: h.f64("eps"),
            sum: c.w0.full_like(h.f64("initial_accumulator_value")),
        },
    )
}

pub struct Adagrad {
    lr_decay: f64,
    weight_decay: f64,
    eps: f64,
    /// The sum of squared gradients s.
    sum: Tensor,
}

impl Step for Adagrad {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        weight_decay(w, grad, lr, self.weight_decay, false);
        let lr = lr / (1.0 + (t - 1) as f64 * self.lr_decay);
        // s ← s + g², w ← w − lr · g/(√s + ε)
        let _ = self.sum.addcmul_(grad, grad);
        let _ = w.addcdiv_(&(&*grad * -lr), &(self.sum.sqrt() + self.eps));
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        named([("sum", &self.sum)])
    }
}
