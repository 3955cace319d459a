//! PISA, Algorithm 1 of the paper (pisa.md §2.3): the preconditioned inexact stochastic
//! ADMM with Q_i = I or the batch Hessian (4.1). Checked against scripts/reference_ls.py
//! (tests/golden.rs) and `equations.PISA` (tests/data/optim/pisa.toml), both written from
//! Algorithm 1 independently of this code.
use super::precondition::{Hessian, Identity, Precondition};
use super::{GAMMA, GAMMA_EPOCHS, GAMMA_RULE, K0, K0_EPOCHS, LAMBDA, MU, RHO, SIGMA0};
use crate::optim::hyper::{Default, Hyper, Hypers, Kind};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;

pub const ENTRY: Entry = Entry {
    name: "pisa",
    summary:
        "Algorithm 1: preconditioned inexact stochastic ADMM, Q_i = I or the batch Hessian (4.1)",
    reference:
        "pisa.md Algorithm 1; golden: scripts/reference_ls.py and scripts/golden/equations.py \
                (independent PyTorch implementations)",
    hypers: &[
        SIGMA0,
        RHO,
        GAMMA,
        K0,
        K0_EPOCHS,
        GAMMA_RULE,
        GAMMA_EPOCHS,
        Hyper {
            name: "precondition",
            kind: Kind::Choice(&["identity", "hessian"]),
            default: Default::Str("identity"),
            doc: "Q_i: identity, or the batch Hessian (4.1) (dense solve: small models only)",
        },
        LAMBDA,
        MU,
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let precondition: Box<dyn Precondition> = match h.str("precondition") {
        "hessian" => Box::new(Hessian),
        _ => Box::new(Identity),
    };
    super::build(h, c, precondition)
}
