//! The mixing time t_mix (Assumption 2) measured by simulation.
//!
//! Assumption 2 asks for a t_mix with ‖(∏_{k=t}^{t+t_mix−1} M_k)X − M∞X‖ ≤ ½‖X − M∞X‖ for
//! every X and every start t. A run measures, for one random X (i.i.d. N(0, 1) entries,
//! X ∈ R^{rows×d}) and one seeded operator sequence started at t = 0, the smallest t with
//! ‖(M_{t−1}⋯M_0)X − M∞X‖_F ≤ ½‖X − M∞X‖_F, in the Frobenius norm. t = 0 is the start of a
//! synchronous round, the worst start for the synchronous protocols; for AsyncDR every start
//! is alike, and for AsyncPS t = 0, with no pull in flight yet, is the slowest. One Gaussian X is a typical state, not the worst: for the
//! synchronous protocols [`super::Protocol::derived_t_mix`] gives the supremum over X, which a
//! run never exceeds. The distribution over runs is over X and the protocol's randomness.
use super::{MixingSpec, Operator, Protocol, Schedule, State};
use crate::spec::KeyError;
use anyhow::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Whether ‖E_t‖² ≤ ¼‖E_0‖², the halving of Assumption 2 on squared norms, up to a relative
/// 10⁻⁹ for rounding (so that (½)^k-type contractions are decided as in exact arithmetic).
pub fn halved(distance2: f64, initial2: f64) -> bool {
    distance2 <= 0.25 * initial2 * (1.0 + 1e-9)
}

/// t_mix of one run on the state `x` (see the module doc); `None` when the state is not
/// halved within `max_time` steps. `next` writes the events of M_0, M_1, … in turn: a
/// [`Schedule`]'s, or a live run's log ([`super::log::batches`]).
pub fn t_mix(
    mut next: impl FnMut(&mut Vec<Operator>),
    consensus: super::Consensus,
    mut x: State,
    max_time: u64,
) -> Option<u64> {
    let initial2 = consensus.distance2(&x);
    let mut events = Vec::new();
    for t in 0..=max_time {
        if t > 0 {
            next(&mut events);
            if events.is_empty() {
                continue;
            }
            events.iter().for_each(|e| e.apply(&mut x));
        }
        if halved(consensus.distance2(&x), initial2) {
            return Some(t);
        }
    }
    None
}

/// The generator of run `run` of protocol `label` with `n` workers: ChaCha8 seeded with the
/// spec's seed and the label, stream (n, run). A run depends on nothing else (not on the
/// other protocols, worker counts, runs or threads).
pub fn run_rng(seed: u64, label: &str, n: usize, run: usize) -> ChaCha8Rng {
    // FNV-1a of the label.
    let hash = label.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ hash);
    rng.set_stream(((n as u64) << 32) | run as u64);
    rng
}

/// One measured run.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Index into the protocols.
    pub protocol: usize,
    pub n: usize,
    pub run: usize,
    pub t_mix: u64,
}

/// One run: X drawn first, then the schedule, from [`run_rng`].
pub fn sample(
    protocol: Protocol,
    label: &str,
    n: usize,
    run: usize,
    spec: &MixingSpec,
) -> Option<u64> {
    let mut rng = run_rng(spec.seed, label, n, run);
    let x = State::gaussian(protocol.rows(n), spec.dim, &mut rng);
    let mut schedule = Schedule::new(protocol, n, rng);
    t_mix(
        |e| schedule.next(e),
        protocol.consensus(n),
        x,
        spec.max_time,
    )
}

/// Every run of every protocol and worker count of `spec`, in parallel, in the order
/// protocol, n, run. A run that does not mix within `max_time` is a [`KeyError`] on it (the
/// first such run in that order).
pub fn measure(spec: &MixingSpec, protocols: &[(String, Protocol)]) -> Result<Vec<Sample>> {
    let jobs: Vec<(usize, usize, usize)> = (0..protocols.len())
        .flat_map(|p| {
            spec.workers
                .iter()
                .flat_map(move |&n| (0..spec.runs).map(move |r| (p, n, r)))
        })
        .collect();
    let outcomes: Vec<Result<Sample>> = jobs
        .into_par_iter()
        .map(|(p, n, run)| {
            let (label, protocol) = &protocols[p];
            match sample(*protocol, label, n, run, spec) {
                Some(t_mix) => Ok(Sample {
                    protocol: p,
                    n,
                    run,
                    t_mix,
                }),
                None => Err(KeyError::at(
                    "max_time",
                    format!(
                        "{label} with n = {n} did not halve ‖X − M∞X‖ within max_time = {} \
                         worker steps (run {run}); raise max_time",
                        spec.max_time
                    ),
                )),
            }
        })
        .collect();
    // The first failure in job order, whatever the threads did.
    outcomes.into_iter().collect()
}
