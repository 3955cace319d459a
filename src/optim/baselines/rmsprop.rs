//! RMSprop (Tieleman & Hinton, COURSERA "Neural Networks for Machine Learning", Lecture
//! 6.5, 2012), with the centred variant and momentum of Graves, "Generating Sequences
//! With Recurrent Neural Networks", 2013 (eq. 38–41), as `torch.optim.RMSprop` defines it
//! (ε added to the root, outside it; momentum buffer b ← μb + g/(√v + ε), w ← w − lr·b;
//! L2 weight decay; torch's defaults).
use super::adam::{ema_square, named, weight_decay};
use super::{Classic, Step};
use crate::optim::hyper::{boolean, float, positive, unit, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "rmsprop",
    summary: "steps divided by the root of a running mean of squared gradients",
    reference: "Tieleman & Hinton 2012; Graves 2013 (centred); golden: torch.optim.RMSprop",
    hypers: &[
        positive("lr", 1e-2, "learning rate"),
        unit("alpha", 0.99, "decay of the running means"),
        positive("eps", 1e-8, "added to the denominator"),
        float("weight_decay", 0.0, "L2 penalty added to the gradient"),
        unit("momentum", 0.0, "momentum factor"),
        boolean(
            "centered",
            false,
            "divide by the root of the running variance instead",
        ),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let momentum = h.f64("momentum");
    Classic::boxed(
        c,
        h.f64("lr"),
        RmsProp {
            alpha: h.f64("alpha"),
            eps: h.f64("eps"),
            weight_decay: h.f64("weight_decay"),
            momentum,
            square_avg: c.w0.zeros_like(),
            grad_avg: h.bool("centered").then(|| c.w0.zeros_like()),
            momentum_buffer: (momentum > 0.0).then(|| c.w0.zeros_like()),
        },
    )
}

pub struct RmsProp {
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    /// The running mean of g², v.
    square_avg: Tensor,
    /// The running mean of g, ḡ (centred only).
    grad_avg: Option<Tensor>,
    /// b (with momentum only).
    momentum_buffer: Option<Tensor>,
}

impl Step for RmsProp {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, _t: i64, lr: f64) {
        weight_decay(w, grad, lr, self.weight_decay, false);
        // v ← αv + (1 − α)g²; centred: ḡ ← αḡ + (1 − α)g, d = √(v − ḡ²) + ε, else √v + ε
        ema_square(&mut self.square_avg, grad, self.alpha);
        let root = match &mut self.grad_avg {
            Some(mean) => {
                let _ = mean.lerp_(grad, 1.0 - self.alpha);
                // torch: square_avg.addcmul(grad_avg, grad_avg, value=-1)
                self.square_avg.addcmul(&mean.neg(), mean).sqrt()
            }
            None => self.square_avg.sqrt(),
        };
        let denominator = root + self.eps;
        match &mut self.momentum_buffer {
            // b ← μb + g/d, w ← w − lr·b
            Some(b) => {
                let _ = b.g_mul_scalar_(self.momentum);
                let _ = b.addcdiv_(grad, &denominator);
                let _ = w.g_sub_(&(&*b * lr));
            }
            // w ← w − lr·g/d
            None => {
                let _ = w.addcdiv_(&(&*grad * -lr), &denominator);
            }
        }
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = named([("square_avg", &self.square_avg)]);
        state.extend(named(self.grad_avg.iter().map(|t| ("grad_avg", t))));
        state.extend(named(
            self.momentum_buffer.iter().map(|t| ("momentum_buffer", t)),
        ));
        state
    }
}
