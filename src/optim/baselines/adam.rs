//! Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient and the AMSGrad
//! option, as `torch.optim.Adam` defines them.
use super::{Classic, Step};
use crate::optim::hyper::{boolean, float, positive, unit, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "adam",
    summary: "adaptive moment estimation; weight decay as an L2 term in the gradient",
    reference: "Kingma & Ba, ICLR 2015; golden: torch.optim.Adam",
    hypers: &[
        positive("lr", 1e-3, "learning rate"),
        unit("beta1", 0.9, "first-moment decay β₁"),
        unit("beta2", 0.999, "second-moment decay β₂"),
        positive("eps", 1e-8, "added to the denominator"),
        float("weight_decay", 0.0, "L2 penalty added to the gradient"),
        boolean("amsgrad", false, "use the running maximum of the second moment (AMSGrad)"),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    Classic::boxed(c, h.f64("lr"), Adam::new(h, c.w0, false))
}

/// The moments and the update shared by Adam, AdamW and AMSGrad.
pub struct Adam {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    /// Decoupled weight decay (AdamW) instead of an L2 term.
    decoupled: bool,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    /// The running maximum of `exp_avg_sq` (AMSGrad only).
    max_exp_avg_sq: Option<Tensor>,
}

impl Adam {
    pub fn new(h: &Hypers, w0: &Tensor, decoupled: bool) -> Self {
        Self {
            beta1: h.f64("beta1"),
            beta2: h.f64("beta2"),
            eps: h.f64("eps"),
            weight_decay: h.f64("weight_decay"),
            decoupled,
            exp_avg: w0.zeros_like(),
            exp_avg_sq: w0.zeros_like(),
            max_exp_avg_sq: h.bool("amsgrad").then(|| w0.zeros_like()),
        }
    }
}

impl Step for Adam {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        if self.weight_decay != 0.0 {
            if self.decoupled {
                let _ = w.g_mul_scalar_(1.0 - lr * self.weight_decay);
            } else {
                let _ = grad.g_add_(&(&*w * self.weight_decay));
            }
        }
        // m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g²
        let _ = self.exp_avg.lerp_(grad, 1.0 - self.beta1);
        let _ = self.exp_avg_sq.g_mul_scalar_(self.beta2);
        let _ = self
            .exp_avg_sq
            .addcmul_(&(&*grad * (1.0 - self.beta2)), grad);
        let second = match &mut self.max_exp_avg_sq {
            Some(max) => {
                let _ = max.copy_(&max.maximum(&self.exp_avg_sq));
                max.shallow_clone()
            }
            None => self.exp_avg_sq.shallow_clone(),
        };
        let bias1 = 1.0 - self.beta1.powi(t as i32);
        let bias2 = 1.0 - self.beta2.powi(t as i32);
        // w ← w − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
        let denominator = second.sqrt() / bias2.sqrt() + self.eps;
        let _ = w.addcdiv_(&(&self.exp_avg * (-lr / bias1)), &denominator);
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = vec![
            ("exp_avg".to_string(), self.exp_avg.shallow_clone()),
            ("exp_avg_sq".to_string(), self.exp_avg_sq.shallow_clone()),
        ];
        if let Some(max) = &self.max_exp_avg_sq {
            state.push(("max_exp_avg_sq".to_string(), max.shallow_clone()));
        }
        state
    }
}
