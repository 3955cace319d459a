//! SGD with momentum, dampening and Nesterov momentum, as `torch.optim.SGD` defines it
//! (Sutskever et al. 2013 form: the buffer holds the velocity, lr multiplies at the end).
use super::{Classic, Step};
use crate::optim::hyper::{boolean, float, positive, unit, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use crate::optim::{fused, scalar};
use anyhow::{ensure, Result};
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "sgd",
    summary: "stochastic gradient descent with (Nesterov) momentum",
    reference: "Robbins & Monro 1951; Sutskever et al. 2013; golden: torch.optim.SGD",
    hypers: &[
        positive("lr", 0.1, "learning rate"),
        unit("momentum", 0.0, "momentum factor"),
        unit(
            "dampening",
            0.0,
            "dampening of the gradient entering the momentum buffer",
        ),
        boolean("nesterov", false, "Nesterov momentum"),
        float("weight_decay", 0.0, "L2 penalty added to the gradient"),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let momentum = h.f64("momentum");
    ensure!(
        !h.bool("nesterov") || (momentum > 0.0 && h.f64("dampening") == 0.0),
        "optimizer.nesterov needs momentum > 0 and dampening = 0"
    );
    let buffer = (momentum > 0.0).then(|| c.w0.zeros_like());
    Classic::boxed(
        c,
        h.f64("lr"),
        Sgd {
            momentum,
            dampening: h.f64("dampening"),
            nesterov: h.bool("nesterov"),
            weight_decay: h.f64("weight_decay"),
            buffer,
        },
    )
}

pub struct Sgd {
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
    /// The momentum buffer b (absent without momentum).
    buffer: Option<Tensor>,
}

impl Step for Sgd {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        let fused = fused::SgdStep {
            lr,
            momentum: self.momentum,
            dampening: self.dampening,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
            first: t == 1,
        };
        if fused::sgd(w, grad, self.buffer.as_ref(), &fused) {
            return;
        }
        if self.weight_decay != 0.0 {
            let _ = grad.addcmul_(w, &scalar(self.weight_decay, w));
        }
        if let Some(b) = &mut self.buffer {
            // b ← g on the first step, else μb + (1 − dampening)g
            if t == 1 {
                b.copy_(grad);
            } else {
                let _ = b.g_mul_scalar_(self.momentum);
                let _ = b.addcmul_(grad, &scalar(1.0 - self.dampening, grad));
            }
            if self.nesterov {
                let _ = grad.addcmul_(b, &scalar(self.momentum, b));
            } else {
                grad.copy_(b);
            }
        }
        // w + (−lr)·g, as torch's add_(grad, alpha=-lr), with no temporary
        let _ = w.addcmul_(grad, &scalar(-lr, grad));
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.buffer
            .iter()
            .map(|b| ("momentum_buffer".to_string(), b.shallow_clone()))
            .collect()
    }
}
