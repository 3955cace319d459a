//! FedNova (Wang, Liu, Liang, Joshi & Poor, "Tackling the Objective Inconsistency Problem
//! in Heterogeneous Federated Optimization", NeurIPS 2020): normalised averaging. Client i
//! runs τ_i steps of local SGD with momentum ρ and reports its normalised update
//!   a_i = (τ_i − ρ(1 − ρ^{τ_i})/(1 − ρ)) / (1 − ρ)   (= τ_i without momentum),
//!   d_i = (w − w_i)/a_i,
//! and the server steps w ← w − τ_eff Σ_{i∈S} p_i d_i with τ_eff = Σ_{i∈S} p_i a_i,
//! p_i = α_i/Σ_{j∈S} α_j. Exactly as NIID-Bench implements it (`train_net_fednova` and its
//! aggregation in `experiments.py`): the client optimizer is `torch.optim.SGD(lr,
//! momentum = rho, weight_decay = reg)` rebuilt every round, ρ in a_i is that momentum,
//! and the server's effective step is 1. Defaults as FedAvg's (NIID-Bench's).
use super::{Algorithm, Client, Extra, Federated, LocalSgd, Oracle, Rounds};
use crate::optim::hyper::Hypers;
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "fednova",
    summary: "normalised averaging: each client's update divided by its effective local steps a_i",
    reference: "Wang et al., NeurIPS 2020; as NIID-Bench (Li et al., ICDE 2022) implements it",
    // the same keys as FedAvg's
    hypers: super::fedavg::ENTRY.hypers,
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let nova = Nova {
        sum: c.w0.zeros_like(),
        tau_eff: 0.0,
        lr: h.f64("lr"),
        sgd: LocalSgd::new(h.f64("momentum"), h.f64("weight_decay"), c.w0),
    };
    Federated::boxed(c, Rounds::new(h, c, false)?, nova)
}

/// a_i = (τ − ρ(1 − ρ^τ)/(1 − ρ))/(1 − ρ): the sum over the τ local steps of the weights
/// heavy-ball momentum ρ gives each gradient (τ when ρ = 0).
pub fn effective_steps(tau: usize, rho: f64) -> f64 {
    let tau_f = tau as f64;
    if rho == 0.0 {
        tau_f
    } else {
        (tau_f - rho * (1.0 - rho.powi(tau as i32)) / (1.0 - rho)) / (1.0 - rho)
    }
}

pub struct Nova {
    /// Σ p_i d_i over the clients done so far this round.
    sum: Tensor,
    /// τ_eff = Σ p_i a_i so far.
    tau_eff: f64,
    lr: f64,
    sgd: LocalSgd,
}

impl Algorithm for Nova {
    /// The global model down; d_i and a_i up.
    fn floats(&self, numel: i64) -> (i64, i64) {
        (numel, numel + 1)
    }

    fn begin(&mut self) {
        let _ = self.sum.zero_();
        self.tau_eff = 0.0;
    }

    fn client(&mut self, client: Client, oracle: &mut Oracle) -> Result<()> {
        let lr = self.lr * client.factor;
        self.sgd
            .run(client.local, client.steps, lr, oracle, &Extra::default())?;
        let a = effective_steps(client.steps, self.sgd.momentum());
        // d_i = (w − w_i)/a_i, folded in with weight p_i
        let d = (client.global - &*client.local) / a;
        let _ = self.sum.g_add_(&(d * client.weight));
        self.tau_eff += client.weight * a;
        Ok(())
    }

    fn reduce(&mut self) {
        crate::dist::sum(&self.sum);
        self.tau_eff = crate::dist::sum_scalar(self.tau_eff);
    }

    /// w ← w − τ_eff Σ p_i d_i
    fn end(&mut self, w: &mut Tensor) {
        let _ = w.g_sub_(&(&self.sum * self.tau_eff));
    }
}
