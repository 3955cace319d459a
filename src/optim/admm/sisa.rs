//! SISA, Algorithm 2 of the paper (pisa.md §4.2): Algorithm 1 with Q_i = Diag(√m_i) from
//! the second moment of π_i + g_i (4.2)-(4.4), so the local step (4.5) is elementwise.
//! Checked against scripts/reference_ls.py (tests/golden.rs) and `equations.SISA`
//! (tests/data/optim/sisa.toml), both written from Algorithm 2 independently of this code.
use super::precondition::{Scheme, SecondMoment};
use super::{GAMMA, GAMMA_EPOCHS, GAMMA_RULE, K0, K0_EPOCHS, LAMBDA, MU, RHO, SIGMA0};
use crate::optim::hyper::{positive, unit, Default, Hyper, Hypers, Kind};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;

/// The second-moment keys SISA and NSISA share.
pub const SCHEME: Hyper = Hyper {
    name: "scheme",
    kind: Kind::IntChoice(&[1, 2, 3]),
    default: Default::Required,
    doc: "second-moment scheme of (4.4): 1 AdaGrad-, 2 RMSProp-, 3 Adam-like",
};
pub const BETA: Hyper = unit("beta", 0.9, "β_i of schemes II and III (4.4)");
pub const ETA: Hyper = positive("eta", 1e8, "η_i: the clip m_i ≤ η_i² (4.3)");
pub const EPS: Hyper = crate::optim::hyper::float(
    "eps",
    0.0,
    "ε of the denominator σ + ρ(√m_i + ε): 0 in Algorithm 2, 1e-8 in the PISA RL code",
);

pub const ENTRY: Entry = Entry {
    name: "sisa",
    summary: "Algorithm 2: second-moment ADMM, Q_i = Diag(√m_i) (4.2)-(4.4)",
    reference:
        "pisa.md Algorithm 2; golden: scripts/reference_ls.py and scripts/golden/equations.py \
                (independent PyTorch implementations)",
    hypers: &[
        SIGMA0,
        RHO,
        GAMMA,
        K0,
        K0_EPOCHS,
        GAMMA_RULE,
        GAMMA_EPOCHS,
        SCHEME,
        BETA,
        ETA,
        EPS,
        LAMBDA,
        MU,
    ],
    build,
};

/// The second-moment preconditioner (4.2)-(4.4) the keys describe, for the context's
/// workers and parameters.
pub fn second_moment(h: &Hypers, c: &Context) -> SecondMoment {
    let scheme = Scheme::from_number(h.usize("scheme")).expect("validated: 1, 2 or 3");
    SecondMoment::new(scheme, h.f64("beta"), h.f64("eta"), c.rows().len(), c.w0)
}

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let precondition = second_moment(h, c).with_eps(h.f64("eps"));
    super::build(h, c, Box::new(precondition))
}
