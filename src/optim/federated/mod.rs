//! Federated learning: one iteration of the loop is one communication round, a worker is a
//! client i with its own data D_i (α_i = |D_i|/|D|), and its part of the round is several
//! local steps from the global point, each on a fresh mini-batch drawn by the oracle
//! `local_round` hands it. The server's aggregation happens in `end_iteration`.
//!
//! What every algorithm here shares lives in this file:
//! - [`Algorithm`] (a client's round, the server's update, the floats exchanged) and
//!   [`Federated`], which drives one through the [`Optimizer`] interface: `local_round`
//!   runs the client (and returns at once for a client not drawn this round),
//!   `end_iteration` the server; `local_update` serves one local step per round.
//! - [`Rounds`]: the round counter, the learning-rate schedule (one factor per round), how
//!   many local steps each client takes, which clients take part in a round (partial
//!   participation, seeded), their aggregation weights and the floats sent up and down.
//! - [`LocalSgd`]: the client optimizer of the SGD-type algorithms, `torch.optim.SGD` with
//!   momentum and L2 weight decay built afresh every round, as NIID-Bench (Li, Diao, Chen &
//!   He, "Federated Learning on Non-IID Data Silos: An Experimental Study", ICDE 2022,
//!   github.com/Xtra-Computing/NIID-Bench) does in `train_net*`.
//!
//! Conventions (NIID-Bench `experiments.py` unless an algorithm's file says otherwise):
//! - Local work: `local_steps` steps, or `local_epochs` E turned into about E·|D_i|/b steps
//!   for client i (NIID-Bench: E passes over a DataLoader of batch b = 64). Context has
//!   neither |D_i| nor b, only α_i and the task's n = ⌊min_j |D_j| / b⌋ iterations per
//!   epoch (the smallest share sets the pace), so client i takes
//!   max(1, round(E·n·α_i/α_min)) steps: exactly E·|D_i|/b with equal shares, within n's
//!   rounding otherwise, and too many when the smallest share holds fewer than b samples
//!   (n is then 1). `local_steps`, when given, replaces `local_epochs`.
//! - Participation: each round ⌊m·participation⌋ clients (at least 1), drawn uniformly
//!   without replacement (NIID-Bench: `np.random.shuffle(arr); arr[:int(n_parties·sample)]`)
//!   from a ChaCha8 stream seeded by `seed` and numbered by the round, so a resumed run
//!   draws the same clients. A client that does not take part is never asked for a
//!   gradient.
//! - Aggregation weights: p_i = α_i/Σ_{j∈S} α_j over the participants S (NIID-Bench's
//!   `fed_avg_freqs`), or 1/|S| for the Fed-LAMB paper's algorithms (its Algorithm 2,
//!   line 17, averages with 1/n).
//! - The learning rate of round r is `lr`·schedule(r), the same for all its local steps.
//! - Communication: floats per participating client, cumulative over the run
//!   ([`crate::optim::Optimizer::communication`]).
//! - Batch-norm statistics (of models that have them) are not aggregated: each client
//!   keeps its own, and the global model is evaluated with client 0's. NIID-Bench
//!   aggregates whole `state_dict`s, buffers included; Table 2's models have none.
//!
//! tests/federated_crosscheck.rs checks FedAvg, FedProx, FedNova and SCAFFOLD, round by
//! round, against NIID-Bench's client loops and server updates re-implemented in PyTorch
//! (scripts/golden_federated.py).

/// An entry's keys: its own, then the round keys every federated algorithm takes
/// (`local_steps`, `local_epochs`, `participation`, `seed`).
macro_rules! keys {
    ($($own:expr),* $(,)?) => {
        &[
            $($own,)*
            $crate::optim::federated::LOCAL_STEPS,
            $crate::optim::federated::LOCAL_EPOCHS,
            $crate::optim::federated::PARTICIPATION,
            $crate::optim::federated::SEED,
        ]
    };
}

pub mod fedams;
pub mod fedavg;
pub mod fedlamb;
pub mod fednova;
pub mod fedprox;
pub mod fedsgd;
pub mod scaffold;

use super::hyper::{int, Bound, Default, Hyper, Hypers, Kind};
use super::registry::{Context, Entry};
use super::{counter, read_counter, Optimizer};
use crate::schedule::Schedule;
use crate::tasks::Local;
use anyhow::{ensure, Context as _, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use tch::Tensor;

pub const ENTRIES: &[&Entry] = &[
    &fedavg::ENTRY,
    &fedprox::ENTRY,
    &fednova::ENTRY,
    &scaffold::ENTRY,
    &fedsgd::ENTRY,
    &fedams::ENTRY,
    &fedlamb::ENTRY,
];

pub const LOCAL_STEPS: Hyper = Hyper {
    name: "local_steps",
    kind: Kind::Int { min: 1 },
    default: Default::Unset,
    doc: "local steps per client and round (one fresh mini-batch each); replaces local_epochs",
};
pub const LOCAL_EPOCHS: Hyper = Hyper {
    name: "local_epochs",
    kind: Kind::Float {
        min: Bound::Open(0.0),
        max: Bound::None,
    },
    default: Default::Float(5.0),
    doc: "E: local epochs per round, round(E·n·α_i/α_min) ≈ E·|D_i|/b steps for client i",
};
pub const PARTICIPATION: Hyper = Hyper {
    name: "participation",
    kind: Kind::Float {
        min: Bound::Open(0.0),
        max: Bound::Closed(1.0),
    },
    default: Default::Float(1.0),
    doc: "fraction of the clients drawn each round (⌊m·participation⌋, at least 1)",
};
pub const SEED: Hyper = int("seed", 0, 0, "seed of the clients' draw each round");

/// The round bookkeeping every federated algorithm shares.
pub struct Rounds {
    alphas: Vec<f64>,
    /// Local steps of each client per round.
    steps: Vec<usize>,
    participation: f64,
    seed: u64,
    /// Weights 1/|S| instead of α_i/Σ_S α_j.
    uniform: bool,
    schedule: Schedule,
    /// The clients' base learning rate (every federated algorithm has `lr`), for reports.
    lr: f64,
    round: usize,
    /// Aggregation weight of each client this round; `None` for those not taking part.
    weights: Vec<Option<f64>>,
    up: u64,
    down: u64,
    /// Floats this process's clients exchanged in the current round (summed over the
    /// ranks when it ends).
    round_up: u64,
    round_down: u64,
}

impl Rounds {
    pub fn new(h: &Hypers, c: &Context, uniform: bool) -> Result<Self> {
        let m = c.alphas.len();
        ensure!(m > 0, "a federated optimizer needs at least one client");
        let steps = match h.get("local_steps").and_then(toml::Value::as_integer) {
            Some(k) => vec![k as usize; m],
            None => {
                let epochs = h.f64("local_epochs");
                let n = c.iterations_per_epoch;
                ensure!(
                    n > 0,
                    "optimizer.local_epochs = {epochs} needs the task's iterations per epoch, \
                     which this task does not report; give optimizer.local_steps instead"
                );
                // |D_i|/b = (|D_i|/|D_min|)·(|D_min|/b) ≈ (α_i/α_min)·n
                let smallest = c.alphas.iter().copied().fold(f64::INFINITY, f64::min);
                ensure!(smallest > 0.0, "a client holds no data (α_i = 0)");
                c.alphas
                    .iter()
                    .map(|a| ((epochs * n as f64 * a / smallest).round() as usize).max(1))
                    .collect()
            }
        };
        let seed = h.get("seed").and_then(toml::Value::as_integer).unwrap_or(0) as u64;
        Ok(Self {
            alphas: c.alphas.to_vec(),
            steps,
            participation: h.f64("participation"),
            seed,
            uniform,
            schedule: c.schedule.clone(),
            lr: h.f64("lr"),
            round: 0,
            weights: vec![None; m],
            up: 0,
            down: 0,
            round_up: 0,
            round_down: 0,
        })
    }

    pub fn clients(&self) -> usize {
        self.alphas.len()
    }

    /// The clients taking part in round `round`, in increasing order.
    pub fn draw(&self, round: usize) -> Vec<usize> {
        let m = self.clients();
        let count = ((m as f64 * self.participation + 1e-9).floor() as usize).clamp(1, m);
        let mut clients: Vec<usize> = (0..m).collect();
        if count < m {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream(round as u64);
            clients.shuffle(&mut rng);
            clients.truncate(count);
            clients.sort_unstable();
        }
        clients
    }

    /// Draws this round's clients and their aggregation weights.
    pub fn begin(&mut self) {
        let drawn = self.draw(self.round);
        let total: f64 = drawn.iter().map(|&i| self.alphas[i]).sum();
        self.weights = vec![None; self.clients()];
        for &i in &drawn {
            self.weights[i] = Some(if self.uniform {
                1.0 / drawn.len() as f64
            } else {
                self.alphas[i] / total
            });
        }
    }

    /// Client i's aggregation weight this round, `None` when it does not take part.
    pub fn weight(&self, client: usize) -> Option<f64> {
        self.weights.get(client).copied().flatten()
    }

    pub fn steps(&self, client: usize) -> usize {
        self.steps[client]
    }

    /// The learning-rate multiplier of this round.
    pub fn factor(&self) -> f64 {
        self.schedule.factor(self.round)
    }

    /// The clients' learning rate of this round.
    pub fn lr(&self) -> f64 {
        self.lr * self.factor()
    }

    /// A participating client received `down` floats and sent `up`.
    pub fn exchange(&mut self, down: i64, up: i64) {
        self.round_down += down as u64;
        self.round_up += up as u64;
    }

    /// Ends the round: the floats every rank's clients exchanged join the totals.
    pub fn end(&mut self) {
        let mut round = [self.round_up as f64, self.round_down as f64];
        crate::dist::world().sum_f64(&mut round);
        self.up += round[0] as u64;
        self.down += round[1] as u64;
        (self.round_up, self.round_down) = (0, 0);
        self.round += 1;
    }

    pub fn communication(&self) -> (u64, u64) {
        (self.up, self.down)
    }

    /// The counters, for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        vec![
            ("round".to_string(), counter(self.round)),
            ("floats_up".to_string(), counter(self.up as usize)),
            ("floats_down".to_string(), counter(self.down as usize)),
        ]
    }

    pub fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        self.round = read_counter(saved, "round")?;
        self.up = read_counter(saved, "floats_up")? as u64;
        self.down = read_counter(saved, "floats_down")? as u64;
        Ok(())
    }
}

/// One federated algorithm: what a participating client does in its round and how the
/// server aggregates; [`Federated`] drives it through the [`Optimizer`] interface.
pub trait Algorithm: Send {
    /// Floats (down, up) that one participating client receives and sends per round, for
    /// P = `numel` parameters.
    fn floats(&self, numel: i64) -> (i64, i64);
    /// Before the round's clients: clear the server's sums.
    fn begin(&mut self);
    /// A participating client's local work from `client.local` (= w on entry), folded
    /// into the server's sums.
    fn client(&mut self, client: Client, oracle: &mut Oracle) -> Result<()>;
    /// Over ranks, before `end`: sums over the ranks what this process's clients folded
    /// into the server's sums this round ([`crate::dist::sum`]).
    fn reduce(&mut self);
    /// The server's update of the global model w.
    fn end(&mut self, w: &mut Tensor);
    /// The state a later round depends on besides w and the counters, sharing storage.
    fn state(&self) -> Vec<(String, Tensor)> {
        vec![]
    }
}

/// A client's gradient oracle: its mini-batch gradient at any point (a fresh batch a call).
pub type Oracle<'a> = dyn FnMut(&Tensor) -> Result<Local> + 'a;

/// What a participating client gets for its round.
pub struct Client<'a> {
    pub index: usize,
    /// Its row in the algorithm's per-client buffers, which hold this process's clients
    /// ([`Context::rows`]): its index in one process.
    pub row: usize,
    /// Its aggregation weight p_i this round.
    pub weight: f64,
    /// Its local steps τ_i.
    pub steps: usize,
    /// The learning-rate multiplier of this round (the schedule).
    pub factor: f64,
    /// The global model w of this round.
    pub global: &'a Tensor,
    /// Its local model, w on entry (scratch; the clients run one after another).
    pub local: &'a mut Tensor,
}

/// A federated [`Algorithm`] as an [`Optimizer`]: one round per iteration, the global
/// model as `params()`, the clients' rounds through `local_round`.
pub struct Federated<A> {
    w: Tensor,
    local: Tensor,
    /// This process's first client ([`Context::rows`]).
    first: usize,
    rounds: Rounds,
    algorithm: A,
}

impl<A: Algorithm + 'static> Federated<A> {
    pub fn boxed(c: &Context, rounds: Rounds, algorithm: A) -> Result<Box<dyn Optimizer>> {
        Ok(Box::new(Self {
            w: c.w0.copy(),
            local: c.w0.zeros_like(),
            first: c.rows().start,
            rounds,
            algorithm,
        }))
    }
}

impl<A: Algorithm + 'static> Optimizer for Federated<A> {
    fn params(&self) -> &Tensor {
        &self.w
    }

    fn begin_iteration(&mut self) {
        self.rounds.begin();
        self.algorithm.begin();
    }

    fn needs_hessian(&self) -> bool {
        false
    }

    /// For one local step per round, driven one gradient at a time (the golden-trajectory
    /// harness): the gradient given (at the global point) answers the client's first
    /// oracle call; a second call is an error.
    fn local_update(&mut self, worker: usize, local: Local) -> Result<()> {
        let mut given = Some(local);
        self.local_round(worker, &mut |_w| {
            given.take().context(
                "this federated optimizer takes several gradients per round through \
                 local_round; local_update drives it only with local_steps = 1",
            )
        })
    }

    fn local_round(
        &mut self,
        worker: usize,
        oracle: &mut dyn FnMut(&Tensor) -> Result<Local>,
    ) -> Result<()> {
        ensure!(
            worker < self.rounds.clients(),
            "client {worker} of {}",
            self.rounds.clients()
        );
        // a client that does not take part costs nothing
        let Some(weight) = self.rounds.weight(worker) else {
            return Ok(());
        };
        self.local.copy_(&self.w);
        let client = Client {
            index: worker,
            row: worker - self.first,
            weight,
            steps: self.rounds.steps(worker),
            factor: self.rounds.factor(),
            global: &self.w,
            local: &mut self.local,
        };
        self.algorithm.client(client, oracle)?;
        let (down, up) = self.algorithm.floats(self.w.numel() as i64);
        self.rounds.exchange(down, up);
        Ok(())
    }

    fn end_iteration(&mut self) {
        if crate::dist::distributed() {
            self.algorithm.reduce();
        }
        self.algorithm.end(&mut self.w);
        self.rounds.end();
    }

    /// Each rank runs its own clients; the server's sums are summed over the ranks.
    fn splits_over_ranks(&self) -> bool {
        true
    }

    fn state_numel(&self) -> i64 {
        self.algorithm
            .state()
            .iter()
            .map(|(_, t)| t.numel() as i64)
            .sum()
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = vec![("w".to_string(), self.w.shallow_clone())];
        state.extend(self.algorithm.state());
        state.extend(self.rounds.state());
        state
    }

    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        let mut live = vec![("w".to_string(), self.w.shallow_clone())];
        live.extend(self.algorithm.state());
        super::copy_state(&live, saved)?;
        self.rounds.load_state(saved)
    }

    fn communication(&self) -> Option<(u64, u64)> {
        Some(self.rounds.communication())
    }

    fn step_sizes(&self) -> Vec<(&'static str, f64)> {
        vec![("lr", self.rounds.lr())]
    }
}

/// The client optimizer of the SGD-type algorithms: `torch.optim.SGD(lr, momentum,
/// weight_decay)` as NIID-Bench builds it anew for every client and round, so the
/// momentum buffer starts from the first gradient each round (dampening 0, no Nesterov).
pub struct LocalSgd {
    momentum: f64,
    weight_decay: f64,
    /// The momentum buffer (scratch shared by the clients, which run one after another).
    buffer: Tensor,
}

/// What an algorithm adds to the plain local SGD step.
#[derive(Default)]
pub struct Extra<'a> {
    /// FedProx: μ(w − w_global) added to each gradient, before the weight decay.
    pub prox: Option<(f64, &'a Tensor)>,
    /// SCAFFOLD: subtracted from w after each optimizer step (lr·(c − c_i)).
    pub drift: Option<&'a Tensor>,
}

impl LocalSgd {
    pub fn new(momentum: f64, weight_decay: f64, w0: &Tensor) -> Self {
        Self {
            momentum,
            weight_decay,
            buffer: w0.zeros_like(),
        }
    }

    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// `steps` local steps from `w` (in place), a fresh gradient at each local point.
    pub fn run(
        &mut self,
        w: &mut Tensor,
        steps: usize,
        lr: f64,
        oracle: &mut Oracle,
        extra: &Extra,
    ) -> Result<()> {
        for step in 0..steps {
            let local = oracle(w)?;
            ensure!(
                local.grad.size() == w.size(),
                "a client's gradient has the wrong shape"
            );
            // the loss of the step: NIID-Bench adds (μ/2)‖w − w_global‖² to it (FedProx)
            let grad = match extra.prox {
                Some((mu, global)) if mu != 0.0 => &local.grad + (&*w - global) * mu,
                _ => local.grad,
            };
            // torch.optim.SGD: g ← g + λw; b ← g (first step) or μb + g; w ← w − lr·b
            let grad = if self.weight_decay != 0.0 {
                grad + &*w * self.weight_decay
            } else {
                grad
            };
            let grad = if self.momentum != 0.0 {
                if step == 0 {
                    self.buffer.copy_(&grad);
                } else {
                    let _ = self.buffer.g_mul_scalar_(self.momentum);
                    let _ = self.buffer.g_add_(&grad);
                }
                self.buffer.shallow_clone()
            } else {
                grad
            };
            let _ = w.g_sub_(&(grad * lr));
            if let Some(drift) = extra.drift {
                let _ = w.g_sub_(drift);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
