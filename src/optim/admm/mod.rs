//! The inexact stochastic ADMM of Algorithm 1, generic over tensors and preconditioners:
//! PISA (Q = I or the Hessian (4.1)) and SISA (Q from the second moment (4.2)).
//!
//! State is lean: the global point w, the duals π_i stacked in one [m, P] buffer, the
//! preconditioner's state, and the running sum Σα_i(σ_i w_i + π_i) from which the next
//! global point follows by (2.9). No local point w_i is stored.
pub mod precondition;

use crate::optim::hyper::{Bound, Default, Hyper, Hypers, Kind};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use crate::schedule::{k0_rule, SigmaSchedule};
use crate::tasks::Local;
use anyhow::Result;
use precondition::{Hessian, Identity, Precondition, Scheme, SecondMoment};
use tch::Tensor;

/// Keys every member of the family takes.
const SIGMA0: Hyper = Hyper {
    name: "sigma0",
    kind: Kind::Float {
        min: Bound::Open(0.0),
        max: Bound::None,
    },
    default: Default::Required,
    doc: "σ_i^0, the initial penalty (3.4)",
};
const RHO: Hyper = crate::optim::hyper::float("rho", 1.0, "ρ_i of the proximal term (2.7b)");
const GAMMA: Hyper = Hyper {
    name: "gamma",
    kind: Kind::Float {
        min: Bound::Open(0.0),
        max: Bound::Closed(1.0),
    },
    default: Default::Float(0.99),
    doc: "γ_i: σ_i is divided by it every k0 iterations (2.12)",
};
const K0: Hyper = Hyper {
    name: "k0",
    kind: Kind::IntOrAuto,
    default: Default::Int(1),
    doc: "iterations between σ updates; \"auto\" = ⌈ln γ / ln 0.99⌉ (A.1)",
};
const LAMBDA: Hyper = crate::optim::hyper::float("lambda", 0.0, "λ of the global update (2.3), (2.9)");
const MU: Hyper = crate::optim::hyper::float(
    "mu",
    0.0,
    "μ of the regularised loss (2.2); F_i carries (μ − λ)/2 ‖w‖² (2.4)",
);

pub const PISA: Entry = Entry {
    name: "pisa",
    summary: "Algorithm 1: preconditioned inexact stochastic ADMM, Q_i = I or the batch Hessian (4.1)",
    reference: "pisa.md Algorithm 1; golden: scripts/reference_ls.py (independent PyTorch implementation)",
    hypers: &[
        SIGMA0,
        RHO,
        GAMMA,
        K0,
        Hyper {
            name: "precondition",
            kind: Kind::Choice(&["identity", "hessian"]),
            default: Default::Str("identity"),
            doc: "Q_i: identity, or the batch Hessian (4.1) (dense solve: small models only)",
        },
        LAMBDA,
        MU,
    ],
    build: build_pisa,
};

pub const SISA: Entry = Entry {
    name: "sisa",
    summary: "Algorithm 2: second-moment ADMM, Q_i = Diag(√m_i) (4.2)-(4.4)",
    reference: "pisa.md Algorithm 2; golden: scripts/reference_ls.py (independent PyTorch implementation)",
    hypers: &[
        SIGMA0,
        RHO,
        GAMMA,
        K0,
        Hyper {
            name: "scheme",
            kind: Kind::IntChoice(&[1, 2, 3]),
            default: Default::Required,
            doc: "second-moment scheme of (4.4): 1 AdaGrad-, 2 RMSProp-, 3 Adam-like",
        },
        crate::optim::hyper::unit("beta", 0.9, "β_i of schemes II and III (4.4)"),
        crate::optim::hyper::positive("eta", 1e8, "η_i: the clip m_i ≤ η_i² (4.3)"),
        LAMBDA,
        MU,
    ],
    build: build_sisa,
};

pub const ENTRIES: &[&Entry] = &[&PISA, &SISA];

/// k0 in force: the integer given, or rule (A.1) for "auto".
pub fn k0(h: &Hypers) -> usize {
    match h.get("k0") {
        Some(toml::Value::String(_)) => k0_rule(h.f64("gamma")),
        _ => h.usize("k0"),
    }
}

fn settings(h: &Hypers) -> Settings {
    Settings {
        sigma0: h.f64("sigma0"),
        rho: h.f64("rho"),
        lambda: h.f64("lambda"),
        mu: h.f64("mu"),
        schedule: SigmaSchedule::new(h.f64("gamma"), k0(h)),
    }
}

fn build_pisa(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let precondition: Box<dyn Precondition> = match h.str("precondition") {
        "hessian" => Box::new(Hessian),
        _ => Box::new(Identity),
    };
    Ok(Box::new(Admm::new(c.w0, c.alphas, settings(h), precondition)))
}

fn build_sisa(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let scheme = Scheme::from_number(h.usize("scheme")).expect("validated: 1, 2 or 3");
    let precondition = SecondMoment::new(scheme, h.f64("beta"), h.f64("eta"), c.alphas.len(), c.w0);
    Ok(Box::new(Admm::new(c.w0, c.alphas, settings(h), Box::new(precondition))))
}

/// Scalars of Algorithm 1, the same for every worker (σ_i^0 = σ^0, γ_i = γ, ρ_i = ρ as in
/// all the paper's experiments).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub sigma0: f64,
    pub rho: f64,
    pub lambda: f64,
    pub mu: f64,
    pub schedule: SigmaSchedule,
}

pub struct Admm {
    settings: Settings,
    alpha: Vec<f64>,
    /// σ^ℓ before `begin_iteration`, σ^{ℓ+1} after it.
    sigma: f64,
    iteration: usize,
    /// The global point w^{ℓ+1}.
    w: Tensor,
    /// Row i is π_i.
    dual: Tensor,
    /// Σ_i α_i (σ_i w_i + π_i), the numerator of (2.9): its σ w part from the start of
    /// the iteration plus the workers updated so far.
    next: Tensor,
    precondition: Box<dyn Precondition>,
}

impl Admm {
    /// Starts from w_i^0 = w^0 and π_i^0 = 0 (Algorithm 1 takes w^0 = 0).
    pub fn new(
        w0: &Tensor,
        alpha: &[f64],
        settings: Settings,
        precondition: Box<dyn Precondition>,
    ) -> Self {
        let m = alpha.len() as i64;
        let dual = Tensor::zeros([m, w0.numel() as i64], (w0.kind(), w0.device()));
        let next = w0 * (settings.sigma0 * alpha.iter().sum::<f64>());
        Self {
            settings,
            alpha: alpha.to_vec(),
            sigma: settings.sigma0,
            iteration: 0,
            w: w0.copy(),
            dual,
            next,
            precondition,
        }
    }

    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    pub fn dual(&self, worker: usize) -> Tensor {
        self.dual.get(worker as i64)
    }
}

impl Optimizer for Admm {
    fn params(&self) -> &Tensor {
        &self.w
    }

    fn begin_iteration(&mut self) {
        let alpha_sum: f64 = self.alpha.iter().sum();
        // (2.9): w^{ℓ+1} = Σα_i(σ_i^ℓ w_i^ℓ + π_i^ℓ) / (Σα_i σ_i^ℓ + λ)
        self.w = &self.next / (alpha_sum * self.sigma + self.settings.lambda);
        // (2.12)
        self.sigma = self.settings.schedule.next(self.sigma, self.iteration);
        // The next numerator Σα_i(σ_i w_i + π_i) with w_i = w − x_i: its Σα_i σ w part
        // now, once; each worker adds α_i(π_i − σ x_i) in `local_update`.
        self.next = &self.w * (alpha_sum * self.sigma);
    }

    fn needs_hessian(&self) -> bool {
        self.precondition.needs_hessian()
    }

    fn local_update(&mut self, worker: usize, local: &Local) -> Result<()> {
        let Settings {
            rho, lambda, mu, ..
        } = self.settings;
        let sigma = self.sigma;
        let mut dual = self.dual.get(worker as i64);
        // g_i = ∇F_i(w^{ℓ+1}; B_i) with F_i = H_i + (μ − λ)/2 ‖·‖², (2.4) and (2.10)
        let grad = if mu != lambda {
            &local.grad + &self.w * (mu - lambda)
        } else {
            local.grad.shallow_clone()
        };
        let hessian = match (&local.hessian, mu != lambda) {
            (Some(h), true) => {
                let n = h.size()[0];
                Some(h + Tensor::eye(n, (h.kind(), h.device())) * (mu - lambda))
            }
            (h, _) => h.as_ref().map(Tensor::shallow_clone),
        };
        let u = &dual + grad;
        // (2.13): w_i = w^{ℓ+1} − x with x = (σ_i I + ρ_i Q_i)^{-1}(π_i + g_i)
        let mut x = self
            .precondition
            .solve(worker, &u, sigma, rho, hessian.as_ref())?;
        // (2.14): π_i ← π_i + σ_i(w_i − w^{ℓ+1}) = π_i − σ_i x
        let _ = x.g_mul_scalar_(sigma);
        let _ = dual.g_sub_(&x);
        // numerator of (2.9): += α_i(π_i − σ_i x_i), the α_i σ_i w part added at begin
        let contribution = (&dual - &x) * self.alpha[worker];
        let _ = self.next.g_add_(&contribution);
        Ok(())
    }

    fn end_iteration(&mut self) {
        self.iteration += 1;
    }

    fn state_numel(&self) -> i64 {
        self.dual.numel() as i64 + self.next.numel() as i64 + self.precondition.state_numel()
    }
}

#[cfg(test)]
mod tests;
