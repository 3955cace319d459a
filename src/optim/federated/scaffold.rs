//! SCAFFOLD (Karimireddy, Kale, Mohri, Reddi, Stich & Suresh, "SCAFFOLD: Stochastic
//! Controlled Averaging for Federated Learning", ICML 2020, Algorithm 1 with option II):
//! control variates c (server) and c_i (client i) correct the clients' drift,
//!   y ← y − η_l(g_i(y) − c_i + c)                       (local steps, K = τ_i of them)
//!   c_i⁺ = c_i − c + (x − y)/(K η_l)                      (option II)
//!   Δy_i = y − x,  Δc_i = c_i⁺ − c_i,  c_i ← c_i⁺
//!   x ← x + η_g Σ_{i∈S} p_i Δy_i,   c ← c + (1/N) Σ_{i∈S} Δc_i  (= (|S|/N)·mean Δc_i).
//! As NIID-Bench's `train_net_scaffold` implements it: the local step is the SGD
//! optimizer's step (momentum, weight decay as FedAvg's) followed by y ← y − η_l(c − c_i),
//! so without momentum it is the paper's step on the weight-decayed loss; c_i⁺ takes
//! K = the client's step count (`cnt`) and η_l = the clients' lr. c and every c_i start
//! at 0, as in the paper; NIID-Bench starts them all at one model's random initial
//! weights R (`init_nets`), which is the same while every client takes part each round
//! (c − c_i and c_i⁺ do not depend on a common R, and the first round's c update removes
//! it), but with partial participation leaves R·(1 − |S|/N) in c and R in the clients not
//! yet drawn, a random bias of their drift correction that pisa does not reproduce.
//! Where NIID-Bench sets the new x to the size-weighted average of the y_i (η_g = 1),
//! x ← x + η_g Σ p_i Δy_i is that average for η_g = 1 and the paper's server step
//! otherwise, with the size weights p_i = α_i/Σ_{j∈S} α_j (the paper's 1/|S| when the
//! shares are equal). η_l is the round's scheduled `lr`; η_g = `server_lr` (default 1).
use super::fedavg::{LR, MOMENTUM, WEIGHT_DECAY};
use super::{Algorithm, Client, Extra, Federated, LocalSgd, Oracle, Rounds};
use crate::optim::baselines::adam::named;
use crate::optim::hyper::{positive, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "scaffold",
    summary: "local SGD corrected by control variates c − c_i (variance reduction of the drift)",
    reference: "Karimireddy et al., ICML 2020 (option II); conventions of NIID-Bench (Li et al., ICDE 2022)",
    hypers: keys![
        LR,
        MOMENTUM,
        WEIGHT_DECAY,
        positive("server_lr", 1.0, "η_g: x ← x + η_g Σ p_i Δy_i"),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let (m, rows) = (c.alphas.len() as i64, c.rows().len() as i64);
    let p = c.w0.numel() as i64;
    let scaffold = Scaffold {
        c: c.w0.zeros_like(),
        c_local: c.w0.new_zeros([rows, p], (c.w0.kind(), c.w0.device())),
        sum_dy: c.w0.zeros_like(),
        sum_dc: c.w0.zeros_like(),
        drift: c.w0.zeros_like(),
        clients: m as f64,
        lr: h.f64("lr"),
        server_lr: h.f64("server_lr"),
        sgd: LocalSgd::new(h.f64("momentum"), h.f64("weight_decay"), c.w0),
    };
    Federated::boxed(c, Rounds::new(h, c, false)?, scaffold)
}

pub struct Scaffold {
    /// The server's control variate c.
    c: Tensor,
    /// The clients' control variates c_i, stacked [m, P].
    c_local: Tensor,
    /// Σ p_i Δy_i and Σ Δc_i over the clients done so far this round.
    sum_dy: Tensor,
    sum_dc: Tensor,
    /// η_l(c − c_i) of the client at work (scratch).
    drift: Tensor,
    /// N, the number of clients.
    clients: f64,
    lr: f64,
    server_lr: f64,
    sgd: LocalSgd,
}

impl Algorithm for Scaffold {
    /// x and c down; Δy_i and Δc_i up.
    fn floats(&self, numel: i64) -> (i64, i64) {
        (2 * numel, 2 * numel)
    }

    fn begin(&mut self) {
        let _ = self.sum_dy.zero_();
        let _ = self.sum_dc.zero_();
    }

    fn client(&mut self, client: Client, oracle: &mut Oracle) -> Result<()> {
        let lr = self.lr * client.factor;
        let mut c_i = self.c_local.get(client.row as i64);
        self.drift.copy_(&((&self.c - &c_i) * lr));
        let extra = Extra {
            prox: None,
            drift: Some(&self.drift),
        };
        self.sgd
            .run(client.local, client.steps, lr, oracle, &extra)?;
        // Δy = y − x; option II: Δc = c_i⁺ − c_i = (x − y)/(K η_l) − c
        let dy = &*client.local - client.global;
        let dc = &dy / (-(client.steps as f64) * lr) - &self.c;
        let _ = c_i.g_add_(&dc);
        let _ = self.sum_dy.g_add_(&(dy * client.weight));
        let _ = self.sum_dc.g_add_(&dc);
        Ok(())
    }

    fn reduce(&mut self) {
        crate::dist::sum(&self.sum_dy);
        crate::dist::sum(&self.sum_dc);
    }

    /// x ← x + η_g Σ p_i Δy_i,  c ← c + (1/N) Σ Δc_i
    fn end(&mut self, w: &mut Tensor) {
        let _ = w.g_add_(&(&self.sum_dy * self.server_lr));
        let _ = self.c.g_add_(&(&self.sum_dc / self.clients));
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        named([("c", &self.c), ("c_local", &self.c_local)])
    }
}
