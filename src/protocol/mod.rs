//! Communication protocols as MixML models them (Lu, Nash, De Sa, "MixML: A Unified Analysis
//! of Weakly Consistent Parallel Learning", Section 3.1), and their mixing time t_mix.
//!
//! The external storage is a state X ∈ R^{rows×d}, one row per storage location: worker i's
//! model is row i (and the parameter server, for `async-ps`, is row n). Time is the paper's:
//! one unit per worker step (computation event) anywhere in the system (Section 3, footnote 2),
//! so an AllReduce of n synchronous workers comes every n units. Between step t and t + 1 the
//! protocol applies the communication operator M_t of (1), a product of the events of
//! [`Operator`], applied to X in place (an operator's n×n matrix is what it does to X = I).
//! [`Schedule`] is the seeded sequence M_0, M_1, …; [`Consensus`] is M∞ (Assumption 1);
//! [`mixing::t_mix`] measures Assumption 2.
//!
//! `pisa mixing SPEC` ([`run`]) measures t_mix for every protocol and number of workers of a
//! [`MixingSpec`] over seeded runs (Section 6, Figure 3) and writes a results folder
//! ([`report`]).
mod consensus;
pub mod live;
mod log;
pub mod mixing;
mod operator;
pub mod report;
mod schedule;
mod spec;
mod state;

pub use consensus::Consensus;
pub use operator::{mean_over_ranks, Operator};
pub use schedule::Schedule;
pub use spec::{Kind, LiveSpec, MixingSpec, ProtocolSpec};
pub use state::State;

use anyhow::Result;
use std::path::{Path, PathBuf};

/// A communication protocol, with its parameters (built from a [`ProtocolSpec`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Protocol {
    /// Case study I / Section 6 item 1: every n worker steps, M = (1/n)11ᵀ.
    AllReduce,
    /// Section 6 item 2 ("Local Step", Lin et al.): m rounds of n worker steps, then an
    /// AllReduce.
    LocalSteps { m: usize },
    /// Section 6 item 3: an asynchronous parameter server (see [`Schedule`] for the model).
    /// Each pull is delivered after a uniform delay in {0, …, round(max_delay_rounds · n)}
    /// worker steps.
    AsyncPs { max_delay_rounds: f64 },
    /// Section 6 item 4 (SyncDR, D-PSGD): every n worker steps, each worker averages with its
    /// two ring neighbours (case study II with the ring's W).
    SyncRing,
    /// Section 6 item 5 (AsyncDR, AD-PSGD): after each step the stepping worker averages with
    /// one of its two ring neighbours, chosen at random.
    AsyncRing,
    /// Section 6, "Slack Matrix": every n worker steps, x_i ← x_i + (γ/n) Σ_j (x_j − x_i).
    Slack { gamma: f64 },
}

impl Protocol {
    /// The rows of the state for `n` workers: the workers, and the server for `async-ps`.
    pub fn rows(&self, n: usize) -> usize {
        match self {
            Protocol::AsyncPs { .. } => n + 1,
            _ => n,
        }
    }

    /// M∞ for `n` workers (Assumption 1).
    pub fn consensus(&self, n: usize) -> Consensus {
        match self {
            Protocol::AsyncPs { .. } => Consensus::Server(n),
            _ => Consensus::Average,
        }
    }

    /// The t_mix the paper derives, or that follows from the operator's spectrum, in worker
    /// steps: the worst case over X (the supremum in Assumption 2), from t = 0. `None` for the
    /// asynchronous protocols, whose operators are random.
    ///
    /// AllReduce: n (case study I). Local steps: m·n (Section 6 item 2). Slack: M − M∞ =
    /// (1 − γ)(I − M∞), so every X needs the same k = min{k : (1 − γ)^k ≤ ½} rounds, n·k steps.
    /// Sync ring: W is symmetric, so ‖W^k X − M∞X‖_F ≤ ρ^k ‖X − M∞X‖_F with equality at the
    /// eigenvector of ρ = max_{i≥2} |μ_i(W)| = (1 + 2cos(2π/n))/3 for n ≥ 4 (W = M∞ for n ≤ 3):
    /// n·min{k : ρ^k ≤ ½} steps.
    pub fn derived_t_mix(&self, n: usize) -> Option<u64> {
        let n64 = n as u64;
        match *self {
            Protocol::AllReduce => Some(n64),
            Protocol::LocalSteps { m } => Some(m as u64 * n64),
            Protocol::Slack { gamma } => Some(n64 * rounds_to_halve(1.0 - gamma)),
            Protocol::SyncRing => Some(n64 * rounds_to_halve(ring_contraction(n))),
            Protocol::AsyncPs { .. } | Protocol::AsyncRing => None,
        }
    }
}

/// ρ = max_{i≥2} |μ_i(W)| of the ring's W (each worker the mean of itself and its two
/// neighbours): W is circulant with eigenvalues (1 + 2cos(2πj/n))/3, the largest modulus
/// below 1 at j = 1 for n ≥ 4; for n ≤ 3 the neighbourhood is every worker, W = M∞.
pub fn ring_contraction(n: usize) -> f64 {
    if n <= 3 {
        0.0
    } else {
        (1.0 + 2.0 * (2.0 * std::f64::consts::PI / n as f64).cos()) / 3.0
    }
}

/// The smallest k ≥ 1 with ρ^k ≤ ½ (by [`mixing::halved`], as the simulation decides).
fn rounds_to_halve(rho: f64) -> u64 {
    let (mut k, mut power) = (1, rho.abs());
    while !mixing::halved(power * power, 1.0) {
        k += 1;
        power *= rho.abs();
    }
    k
}

/// `pisa mixing SPEC [--runs N] [--out DIR]`: measures t_mix, writes `<out>/<name>/` and
/// returns that folder. Spec errors are located [`crate::spec::SpecError`]s.
pub fn run(spec_path: &Path, runs: Option<usize>, out: &Path) -> Result<PathBuf> {
    let (mut spec, protocols) = MixingSpec::load(spec_path)?;
    if let Some(runs) = runs {
        spec.runs = runs;
    }
    let started = std::time::Instant::now();
    let samples = mixing::measure(&spec, &protocols)
        .map_err(|e| crate::spec::locate_build_error(e, spec_path, &[]))?;
    let dir = out.join(&spec.name);
    report::write(&dir, &spec, &protocols, &samples)?;
    eprintln!(
        "pisa mixing: {} runs of {} protocols × {} worker counts in {:.1} s",
        spec.runs,
        protocols.len(),
        spec.workers.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(dir)
}

#[cfg(test)]
mod tests;
