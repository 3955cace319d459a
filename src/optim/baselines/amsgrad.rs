//! AMSGrad (Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018):
//! Adam normalised by the running maximum v̂ₜ = max(v̂ₜ₋₁, vₜ) of the second moment, as
//! `torch.optim.Adam(amsgrad=True)` defines it: with Adam's bias corrections (the paper's
//! Algorithm 2 has none; torch divides √v̂ by √(1 − β₂ᵗ) and m by 1 − β₁ᵗ), L2 weight
//! decay by default or decoupled (AdamW) with `decoupled_weight_decay`, torch's defaults.
//! The step is [`Adam`] with the maximum kept.
use super::adam::{Adam, BETA1, BETA2, DECOUPLED, EPS, LR, WEIGHT_DECAY};
use super::Classic;
use crate::optim::hyper::Hypers;
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;

pub const ENTRY: Entry = Entry {
    name: "amsgrad",
    summary: "Adam with the running maximum of the second moment",
    reference: "Reddi, Kale & Kumar, ICLR 2018; golden: torch.optim.Adam(amsgrad=True)",
    hypers: &[LR, BETA1, BETA2, EPS, WEIGHT_DECAY, DECOUPLED],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let decoupled = h.bool("decoupled_weight_decay");
    Classic::boxed(c, h.f64("lr"), Adam::new(h, c.w0, decoupled, true))
}
