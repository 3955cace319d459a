//! FedAvg (McMahan, Moore, Ramage, Hampson & Agüera y Arcas, "Communication-Efficient
//! Learning of Deep Networks from Decentralized Data", AISTATS 2017, Algorithm 1): each
//! participating client runs local SGD from the global point, the server takes the
//! size-weighted average of the local models,
//!   w_i ← LocalSgd(w, τ_i steps),   w ← Σ_{i∈S} p_i w_i,   p_i = α_i/Σ_{j∈S} α_j.
//! As NIID-Bench implements it (`train_net` + the `fed_avg_freqs` aggregation): the client
//! optimizer is `torch.optim.SGD(lr, momentum = rho, weight_decay = reg)` rebuilt every
//! round, defaults lr = 0.01, momentum 0, weight_decay 1e-5 (its `--reg`), 5 local epochs,
//! all clients each round. The [`Averaging`] algorithm also serves FedProx (`fedprox.rs`, the
//! proximal term μ(w − w_global) in each local gradient) and the Fed-LAMB paper's Fed-SGD
//! (`fedsgd.rs`, plain SGD and the uniform average).
use super::{Algorithm, Client, Extra, Federated, LocalSgd, Oracle, Rounds};
use crate::optim::hyper::{float, positive, unit, Hyper, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "fedavg",
    summary: "federated averaging: local SGD on each client, size-weighted average of the models",
    reference: "McMahan et al., AISTATS 2017; conventions of NIID-Bench (Li et al., ICDE 2022)",
    hypers: keys![LR, MOMENTUM, WEIGHT_DECAY,],
    build,
};

/// The client-SGD keys with NIID-Bench's defaults (`--lr`, `--rho`, `--reg`).
pub const LR: Hyper = positive("lr", 0.01, "the clients' learning rate");
pub const MOMENTUM: Hyper = unit(
    "momentum",
    0.0,
    "the clients' SGD momentum (NIID-Bench's rho)",
);
pub const WEIGHT_DECAY: Hyper = float(
    "weight_decay",
    1e-5,
    "L2 penalty added to the clients' gradients (NIID-Bench's reg)",
);

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    averaging(h, c, 0.0, false)
}

/// FedAvg with the proximal weight `mu` (FedProx), averaging uniformly when `uniform`
/// (Fed-SGD); the keys `lr`, `weight_decay` and, if declared, `momentum`.
pub fn averaging(h: &Hypers, c: &Context, mu: f64, uniform: bool) -> Result<Box<dyn Optimizer>> {
    let averaging = Averaging {
        sum: c.w0.zeros_like(),
        mu,
        lr: h.f64("lr"),
        sgd: LocalSgd::new(
            h.opt_f64("momentum").unwrap_or(0.0),
            h.f64("weight_decay"),
            c.w0,
        ),
    };
    Federated::boxed(c, Rounds::new(h, c, uniform)?, averaging)
}

pub struct Averaging {
    /// Σ p_i w_i over the clients done so far this round.
    sum: Tensor,
    /// FedProx's μ (0 for FedAvg).
    mu: f64,
    lr: f64,
    sgd: LocalSgd,
}

impl Algorithm for Averaging {
    /// The global model down, the local model up.
    fn floats(&self, numel: i64) -> (i64, i64) {
        (numel, numel)
    }

    fn begin(&mut self) {
        let _ = self.sum.zero_();
    }

    fn client(&mut self, client: Client, oracle: &mut Oracle) -> Result<()> {
        let extra = Extra {
            prox: Some((self.mu, client.global)),
            drift: None,
        };
        let lr = self.lr * client.factor;
        self.sgd
            .run(client.local, client.steps, lr, oracle, &extra)?;
        let _ = self.sum.g_add_(&(&*client.local * client.weight));
        Ok(())
    }

    fn reduce(&mut self) {
        crate::dist::sum(&self.sum);
    }

    /// w ← Σ_{i∈S} p_i w_i
    fn end(&mut self, w: &mut Tensor) {
        w.copy_(&self.sum);
    }
}
