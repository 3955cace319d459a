//! Training under a MixML communication protocol (`[protocol]`; Lu, Nash & De Sa, Section 3):
//! worker i is a node with its own model x_i and its own copy of the spec's optimizer, built
//! for one worker, which steps from x_i on the worker's mini-batch. Between rounds the
//! protocol's communication operators (1) mix the nodes' models.
//!
//! - A round is one iteration of the loop: every node takes one step (n time units of the
//!   paper's clock, one per worker step), then the events of M_t for those n units act, in
//!   the order [`Schedule`] draws them. For the synchronous protocols this is exactly when
//!   they act. For AsyncDR it is a simplification: its pairwise averages act between rounds,
//!   not between two steps of the same round.
//! - What a node's model is: a classic optimizer's w (decentralised SGD, AMSGrad, …), a
//!   federated algorithm's global point, for one client, and, for the ADMM family, the node's
//!   own global update (2.9), w = (σw_i + π_i)/σ for λ = 0. Mixing (2.9)'s outputs by
//!   AllReduce every round is SISA's (2.9) with equal α, so SISA under `allreduce` is SISA
//!   (tested). The events act at the start of a round, after each node's `begin_iteration`
//!   (the ADMM family forms (2.9) there) and before its local step.
//! - The loop evaluates the consensus x̄ = (1/n)Σx_i after each round's steps and before its
//!   communication (every averaging operator keeps x̄, up to rounding). An ADMM node's model
//!   is then still the (2.9) point it stepped from (its step changes π_i; the next (2.9) moves
//!   the model), so under AllReduce the ADMM nodes' distance is 0, while the classic
//!   optimizers' nodes differ by one step. The report adds the
//!   paper's stationary distance (1/n)Σ‖x_i − x̄‖² at the same moment, and counts the floats
//!   the protocol's events moved.
//! - Over MPI ranks a rank holds its block of the nodes, each node's optimizer working
//!   alone ([`crate::dist::alone`]); the events cross ranks as messages
//!   ([`Operator::apply_tensors_over_ranks`]), x̄ and the distance are summed over ranks.
//! - The averages are uniform (MixML's operators), whatever the workers' shares α_i.
//!   Batch-norm statistics stay each worker's own, and the evaluation uses worker 0's, as
//!   for the federated algorithms.
use super::registry::{self, Context};
use super::{counter, read_counter, Optimizer};
use crate::protocol::{Operator, Protocol, Schedule};
use crate::spec::OptimizerSpec;
use crate::tasks::Local;
use anyhow::{ensure, Result};
use std::collections::HashMap;
use tch::Tensor;

pub struct Decentralised {
    /// This process's nodes, workers `own` of the n (all of them in one process; over
    /// ranks, the rank's block: [`crate::dist::workers`]).
    nodes: Vec<Box<dyn Optimizer>>,
    own: std::ops::Range<usize>,
    n: usize,
    protocol: Protocol,
    seed: u64,
    schedule: Schedule,
    /// The events of the last round's n units, acting when the next round begins.
    pending: Vec<Operator>,
    /// x̄ after the last round's steps: the point the loop evaluates.
    mean: Tensor,
    rounds: usize,
    /// Floats the events sent (each is received once).
    sent: u64,
    /// The stationary distance at `mean`.
    distance: f64,
}

/// The optimizer `spec` names, one copy per worker, each built for that worker alone,
/// trained under `protocol` with its random events seeded by `seed`.
pub fn build(
    spec: &OptimizerSpec,
    context: &Context,
    protocol: Protocol,
    seed: u64,
) -> Result<Box<dyn Optimizer>> {
    let n = context.alphas.len();
    ensure!(n >= 2, "a protocol needs at least two workers");
    let own = crate::dist::workers(n);
    let nodes = context.alphas[own.clone()]
        .iter()
        .map(|alpha| {
            let own = Context {
                alphas: std::slice::from_ref(alpha),
                ..*context
            };
            // a node is one worker, its state this rank's alone
            crate::dist::alone(|| registry::build(spec, &own))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Box::new(Decentralised::block(
        nodes, own, n, protocol, seed,
    )))
}

impl Decentralised {
    /// All n nodes, in one process, all starting at the same point.
    pub fn new(nodes: Vec<Box<dyn Optimizer>>, protocol: Protocol, seed: u64) -> Self {
        let n = nodes.len();
        Self::block(nodes, 0..n, n, protocol, seed)
    }

    /// Nodes `own` of n, all starting at the same point.
    fn block(
        nodes: Vec<Box<dyn Optimizer>>,
        own: std::ops::Range<usize>,
        n: usize,
        protocol: Protocol,
        seed: u64,
    ) -> Self {
        let mean = nodes[0].params().copy();
        Self {
            schedule: schedule(protocol, n, seed),
            nodes,
            own,
            n,
            protocol,
            seed,
            pending: Vec::new(),
            mean,
            rounds: 0,
            sent: 0,
            distance: 0.0,
        }
    }

    /// Runs `f` on each of this process's nodes, each an optimizer of one worker whose
    /// sums involve no other rank ([`crate::dist::alone`]).
    fn each(&mut self, f: impl Fn(&mut dyn Optimizer)) {
        crate::dist::alone(|| self.nodes.iter_mut().for_each(|n| f(n.as_mut())));
    }

    /// Worker `worker`'s node.
    fn node(&mut self, worker: usize) -> &mut dyn Optimizer {
        self.nodes[worker - self.own.start].as_mut()
    }

    fn models(&self) -> Vec<Tensor> {
        self.nodes
            .iter()
            .map(|n| n.params().shallow_clone())
            .collect()
    }

    /// The events of the next round's n units, into `pending`.
    fn draw_round(&mut self) {
        self.pending.clear();
        let mut events = Vec::new();
        for _ in 0..self.n {
            self.schedule.next(&mut events);
            self.pending.extend_from_slice(&events);
        }
    }

    /// x̄ and the stationary distance (1/n)Σ‖x_i − x̄‖² (Section 6, in f64) after a round;
    /// over ranks, from every rank's own nodes.
    fn refresh_mean(&mut self) {
        let models = self.models();
        let mean = match crate::dist::distributed() {
            true => tch::no_grad(|| crate::protocol::mean_over_ranks(&models, self.n)),
            false => Tensor::stack(&models, 0).mean_dim(0, false, None),
        };
        tch::no_grad(|| self.mean.copy_(&mean));
        let mean = self.mean.to_kind(tch::Kind::Double);
        let distance: f64 = models
            .iter()
            .map(|x| {
                let d = x.to_kind(tch::Kind::Double) - &mean;
                d.dot(&d).double_value(&[])
            })
            .sum();
        self.distance = crate::dist::sum_scalar(distance) / self.n as f64;
    }
}

/// The protocol's operators for `n` workers, seeded by the run's seed.
fn schedule(protocol: Protocol, n: usize, seed: u64) -> Schedule {
    Schedule::new(
        protocol,
        n,
        crate::protocol::mixing::run_rng(seed, "training", n, 0),
    )
}

impl Optimizer for Decentralised {
    fn params(&self) -> &Tensor {
        &self.mean
    }

    fn begin_iteration(&mut self) {
        self.each(|n| n.begin_iteration());
        let models = self.models();
        let p = self.mean.numel() as u64;
        for event in &self.pending {
            match crate::dist::distributed() {
                true => event.apply_tensors_over_ranks(&models, self.own.clone(), self.n),
                false => event.apply_tensors(&models),
            }
            self.sent += event.rows_sent(self.n) * p;
        }
    }

    fn needs_hessian(&self) -> bool {
        self.nodes[0].needs_hessian()
    }

    fn local_update(&mut self, worker: usize, local: Local) -> Result<()> {
        crate::dist::alone(|| self.node(worker).local_update(0, local))
    }

    fn local_round(
        &mut self,
        worker: usize,
        oracle: &mut dyn FnMut(&Tensor) -> Result<Local>,
    ) -> Result<()> {
        crate::dist::alone(|| self.node(worker).local_round(0, oracle))
    }

    fn end_iteration(&mut self) {
        self.each(|n| n.end_iteration());
        self.rounds += 1;
        self.draw_round();
        self.refresh_mean();
    }

    fn restart(&mut self) {
        self.each(|n| n.restart());
    }

    /// Rank r runs its block of the nodes, each alone; the events cross ranks
    /// ([`Operator::apply_tensors_over_ranks`]).
    fn splits_over_ranks(&self) -> bool {
        true
    }

    /// This process's nodes' optimizer state and their models.
    fn state_numel(&self) -> i64 {
        let models = (self.nodes.len() * self.mean.numel()) as i64;
        models + self.nodes.iter().map(|n| n.state_numel()).sum::<i64>()
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = vec![("rounds".to_string(), counter(self.rounds))];
        for (i, node) in self.own.clone().zip(&self.nodes) {
            state.extend(
                node.state()
                    .into_iter()
                    .map(|(name, t)| (format!("node{i}.{name}"), t)),
            );
        }
        state
    }

    /// Restores the nodes, then replays the protocol's draws up to the saved round (its
    /// events are a function of the seed and the time only), so the last round's events
    /// act next, as in an uninterrupted run.
    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        for (i, node) in self.own.clone().zip(&mut self.nodes) {
            let prefix = format!("node{i}.");
            let own: HashMap<String, Tensor> = saved
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix(&prefix)
                        .map(|k| (k.to_string(), v.shallow_clone()))
                })
                .collect();
            node.load_state(&own)?;
        }
        let rounds = read_counter(saved, "rounds")?;
        self.schedule = schedule(self.protocol, self.n, self.seed);
        self.sent = 0;
        self.rounds = 0;
        self.pending.clear();
        let p = self.mean.numel() as u64;
        for _ in 0..rounds {
            self.sent += self
                .pending
                .iter()
                .map(|e| e.rows_sent(self.n) * p)
                .sum::<u64>();
            self.draw_round();
            self.rounds += 1;
        }
        self.refresh_mean();
        Ok(())
    }

    fn divergence_advice(&self) -> String {
        self.nodes[0].divergence_advice()
    }

    /// Floats the protocol's events sent, and received, since the run began.
    fn communication(&self) -> Option<(u64, u64)> {
        Some((self.sent, self.sent))
    }

    fn step_sizes(&self) -> Vec<(&'static str, f64)> {
        self.nodes[0].step_sizes()
    }

    /// The stationary distance (1/n)Σ‖x_i − x̄‖² (Section 6) at x̄.
    fn diagnostics(&self) -> Vec<(&'static str, f64)> {
        vec![("stationary_distance", self.distance)]
    }
}

#[cfg(test)]
mod tests;
