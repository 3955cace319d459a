//! AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019): Adam
//! with the weight decay taken out of the gradient, w ← (1 − lr·λ)w before the Adam
//! step, as `torch.optim.AdamW` defines it (λ multiplied by the scheduled lr, default
//! λ = 0.01; the paper's Algorithm 2 scales λ by the schedule multiplier η_t alone).
//! The step is [`Adam`] with `decoupled` set.
use super::adam::{Adam, BETA1, BETA2, EPS, LR};
use super::Classic;
use crate::optim::hyper::{boolean, float, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;

pub const ENTRY: Entry = Entry {
    name: "adamw",
    summary: "Adam with decoupled weight decay w ← (1 − lr·λ)w",
    reference: "Loshchilov & Hutter, ICLR 2019; golden: torch.optim.AdamW",
    hypers: &[
        LR,
        BETA1,
        BETA2,
        EPS,
        float(
            "weight_decay",
            1e-2,
            "decoupled weight decay λ: w ← (1 − lr·λ)w each step",
        ),
        boolean(
            "amsgrad",
            false,
            "use the running maximum of the second moment (AMSGrad)",
        ),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    Classic::boxed(c, h.f64("lr"), Adam::new(h, c.w0, true, h.bool("amsgrad")))
}
