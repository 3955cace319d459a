//! Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient and the AMSGrad
//! option, as `torch.optim.Adam` defines them. The [`Adam`] struct also serves AdamW
//! (`adamw.rs`) and AMSGrad (`amsgrad.rs`); [`Moments`], [`ema_square`] and
//! [`weight_decay`] serve the other adaptive baselines (NAdam, RAdam, RMSprop, Adadelta, …).
use super::{Classic, Step};
use crate::optim::hyper::{boolean, float, positive, unit, Hyper, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::{fused, scalar, Optimizer};
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "adam",
    summary: "adaptive moment estimation; weight decay as an L2 term in the gradient",
    reference: "Kingma & Ba, ICLR 2015; golden: torch.optim.Adam",
    hypers: &[
        LR,
        BETA1,
        BETA2,
        EPS,
        float("weight_decay", 0.0, "L2 penalty added to the gradient"),
        boolean(
            "amsgrad",
            false,
            "use the running maximum of the second moment (AMSGrad)",
        ),
    ],
    build,
};

/// The hyperparameters the Adam family shares, with torch.optim's defaults.
pub const LR: Hyper = positive("lr", 1e-3, "learning rate");
pub const BETA1: Hyper = unit("beta1", 0.9, "first-moment decay β₁");
pub const BETA2: Hyper = unit("beta2", 0.999, "second-moment decay β₂");
pub const EPS: Hyper = positive("eps", 1e-8, "added to the denominator");
pub const DECOUPLED: Hyper = boolean(
    "decoupled_weight_decay",
    false,
    "decoupled weight decay w ← (1 − lr·λ)w (AdamW) instead of an L2 term",
);
/// Weight decay for the members that take `decoupled_weight_decay` too.
pub const WEIGHT_DECAY: Hyper = float(
    "weight_decay",
    0.0,
    "weight decay λ (an L2 term unless decoupled_weight_decay)",
);

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    Classic::boxed(c, h.f64("lr"), Adam::new(h, c.w0, false, h.bool("amsgrad")))
}

/// Weight decay λ = `weight_decay` as torch.optim applies it before the update: decoupled
/// (Loshchilov & Hutter 2019) w ← (1 − lr·λ)w, else the L2 term g ← g + λw.
pub fn weight_decay(
    w: &mut Tensor,
    grad: &mut Tensor,
    lr: f64,
    weight_decay: f64,
    decoupled: bool,
) {
    if weight_decay != 0.0 {
        if decoupled {
            let _ = w.g_mul_scalar_(1.0 - lr * weight_decay);
        } else {
            // g + λw, no temporary (tch's add takes no alpha)
            let _ = grad.addcmul_(w, &scalar(weight_decay, w));
        }
    }
}

/// avg ← β·avg + (1 − β)x², as torch's `avg.mul_(β).addcmul_(x, x, value=1 − β)`.
pub fn ema_square(avg: &mut Tensor, x: &Tensor, beta: f64) {
    ema_square_in(avg, x, beta, &x.empty_like());
}

/// [`ema_square`] with (1 − β)x formed in `scratch` (a buffer of x's shape), so that
/// nothing is allocated.
pub fn ema_square_in(avg: &mut Tensor, x: &Tensor, beta: f64, scratch: &Tensor) {
    let _ = avg.g_mul_scalar_(beta);
    let _ = x.mul_out(scratch, &scalar(1.0 - beta, x));
    let _ = avg.addcmul_(scratch, x);
}

/// Named state tensors sharing storage, for [`Step::state`].
pub fn named<'a>(
    tensors: impl IntoIterator<Item = (&'a str, &'a Tensor)>,
) -> Vec<(String, Tensor)> {
    tensors
        .into_iter()
        .map(|(name, t)| (name.to_string(), t.shallow_clone()))
        .collect()
}

/// Adam's first and second moments m and v (shared with NAdam and RAdam).
pub struct Moments {
    pub beta1: f64,
    pub beta2: f64,
    pub exp_avg: Tensor,
    pub exp_avg_sq: Tensor,
    /// Workspace of w's shape (not state): the steps form their temporaries in it.
    pub scratch: Tensor,
}

impl Moments {
    pub fn new(h: &Hypers, w0: &Tensor) -> Self {
        Self {
            beta1: h.f64("beta1"),
            beta2: h.f64("beta2"),
            exp_avg: w0.zeros_like(),
            exp_avg_sq: w0.zeros_like(),
            scratch: w0.empty_like(),
        }
    }

    /// m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g²
    pub fn update(&mut self, grad: &Tensor) {
        let _ = self.exp_avg.lerp_(grad, 1.0 - self.beta1);
        ema_square_in(&mut self.exp_avg_sq, grad, self.beta2, &self.scratch);
    }

    pub fn state(&self) -> Vec<(String, Tensor)> {
        named([("exp_avg", &self.exp_avg), ("exp_avg_sq", &self.exp_avg_sq)])
    }
}

/// The moments and the update shared by Adam, AdamW and AMSGrad.
pub struct Adam {
    moments: Moments,
    eps: f64,
    weight_decay: f64,
    /// Decoupled weight decay (AdamW) instead of an L2 term.
    decoupled: bool,
    /// The running maximum of `exp_avg_sq` (AMSGrad only).
    max_exp_avg_sq: Option<Tensor>,
}

impl Adam {
    pub fn new(h: &Hypers, w0: &Tensor, decoupled: bool, amsgrad: bool) -> Self {
        Self {
            moments: Moments::new(h, w0),
            eps: h.f64("eps"),
            weight_decay: h.f64("weight_decay"),
            decoupled,
            max_exp_avg_sq: amsgrad.then(|| w0.zeros_like()),
        }
    }
}

impl Step for Adam {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        // βᵗ by pow, as torch.optim's `beta ** step`: powi's repeated products are a few
        // ulps off, which 1 − βᵗ magnifies (to 2e-14 relative for β₂ = 0.999 and t ≤ 50)
        let bias1 = 1.0 - self.moments.beta1.powf(t as f64);
        let bias2 = 1.0 - self.moments.beta2.powf(t as f64);
        if self.max_exp_avg_sq.is_none() {
            let fused = fused::AdamStep {
                lr,
                beta1: self.moments.beta1,
                beta2: self.moments.beta2,
                eps: self.eps,
                weight_decay: self.weight_decay,
                decoupled: self.decoupled,
                bias1,
                bias2,
            };
            let Moments {
                exp_avg,
                exp_avg_sq,
                ..
            } = &self.moments;
            if fused::adam(w, grad, exp_avg, exp_avg_sq, &fused) {
                return;
            }
        }
        weight_decay(w, grad, lr, self.weight_decay, self.decoupled);
        self.moments.update(grad);
        let Moments {
            exp_avg,
            exp_avg_sq,
            scratch,
            ..
        } = &self.moments;
        // AMSGrad: v̂ ← max(v̂, v), and v̂ in place of v below
        let second = match &self.max_exp_avg_sq {
            Some(max) => max.maximum_out(max, exp_avg_sq),
            None => exp_avg_sq.shallow_clone(),
        };
        // w ← w − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε), the denominator in the
        // scratch and the scaled m in the spent gradient's buffer (no temporaries)
        let _ = second.sqrt_out(scratch);
        let _ = scratch.shallow_clone().g_div_scalar_(bias2.sqrt());
        let _ = scratch.shallow_clone().g_add_scalar_(self.eps);
        let _ = exp_avg.mul_out(grad, &scalar(-lr / bias1, exp_avg));
        let _ = w.addcdiv_(grad, scratch);
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = self.moments.state();
        state.extend(named(
            self.max_exp_avg_sq.iter().map(|m| ("max_exp_avg_sq", m)),
        ));
        state
    }
}
