//! FedProx (Li, Sahu, Zaheer, Sanjabi, Talwalkar & Smith, "Federated Optimization in
//! Heterogeneous Networks", MLSys 2020, Algorithm 2): FedAvg whose clients minimise the
//! local objective plus the proximal term (μ/2)‖w − w_global‖², so each local gradient
//! gains μ(w − w_global). As NIID-Bench's `train_net_fedprox` implements it: the term is
//! added to the loss of every local step (before the SGD optimizer's weight decay and
//! momentum), a fixed number of local steps rather than the paper's γ-inexact solve,
//! and the server averages as FedAvg does; μ = 0.001 by default (its `--mu`).
use super::fedavg::{averaging, LR, MOMENTUM, WEIGHT_DECAY};
use crate::optim::hyper::{float, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;

pub const ENTRY: Entry = Entry {
    name: "fedprox",
    summary: "FedAvg with the proximal term (μ/2)‖w − w_global‖² in each client's objective",
    reference: "Li et al., MLSys 2020; conventions of NIID-Bench (Li et al., ICDE 2022)",
    hypers: keys![
        LR,
        MOMENTUM,
        WEIGHT_DECAY,
        float(
            "mu",
            0.001,
            "μ, the weight of the proximal term (μ/2)‖w − w_global‖²"
        ),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    averaging(h, c, h.f64("mu"), false)
}
