//! Fed-SGD as the Fed-LAMB paper (Karimi, Li & Li, "Layerwise and Dimensionwise Adaptive
//! Local Adaptive Gradient Method for Federated Learning", /work/shared/papers/fed-lamb.md,
//! §4.1) uses it as its baseline: local SGD on each participating client, then periodic
//! averaging of the local models with equal weights, θ̄ = (1/|S|) Σ_{i∈S} θ_i (as its
//! Algorithm 2, line 17, averages). Plain SGD: no momentum; weight decay 0 by default.
//! It is FedAvg's [`super::fedavg::Averaging`] with uniform weights.
use super::fedavg::{averaging, LR};
use crate::optim::hyper::{float, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;

pub const ENTRY: Entry = Entry {
    name: "fedsgd",
    summary: "local SGD on each client with periodic (equal-weight) averaging of the models",
    reference: "Fed-LAMB paper's Fed-SGD baseline (Karimi, Li & Li); McMahan et al. 2017",
    hypers: keys![
        LR,
        float(
            "weight_decay",
            0.0,
            "L2 penalty added to the clients' gradients"
        ),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    averaging(h, c, 0.0, true)
}
