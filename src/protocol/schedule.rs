//! The seeded sequence of communication operators M_0, M_1, … of a protocol for n workers:
//! M_t is what happens between worker step t and step t + 1 ((1); one time unit per worker
//! step, Section 3 footnote 2).
use super::{Operator, Protocol};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// M_t for t = 0, 1, …: [`Schedule::next`] gives the events of M_t in the order they act.
///
/// Synchronous protocols (AllReduce, local steps, SyncDR, slack) are deterministic: the n
/// workers step at t = kn, …, kn + n − 1 and the round's operator acts after the last of
/// them. The asynchronous ones step one worker at a time, drawn uniformly and independently
/// at every t: the Poisson-clock model of asynchronous gossip (every worker's steps a rate-1
/// Poisson process, so the next one is uniform); the paper names no model of who steps when.
///
/// AsyncPS. The paper says only that workers "query the model from a centralized server
/// without global synchronization" (Section 6 item 3, after Li et al.) and, for lock-free
/// shared memory, that an update is in every worker's cache after a delay of at most τ, so
/// τ ≥ t_mix (case study III). Implemented: the state has the n workers' copies and the
/// server's model (row n); the worker that steps at t pushes its update and requests the
/// model, and the reply — a [`Operator::Pull`], copying the server's row into the worker's —
/// is delivered at t + D, D uniform on {0, …, τ} with τ = round(max_delay_rounds · n) (so
/// max_delay_rounds = 1 is a delay of up to one round of n steps). M∞ copies the server's
/// row (Assumption 1 holds: no pull changes it). Left open by the paper, and chosen here:
/// who steps when (uniform, above), the delay distribution (uniform) and its bound. Staleness
/// of the *content* is invisible without computation (the server's row never changes), so
/// t_mix here measures how soon the workers' copies are refreshed.
pub struct Schedule {
    protocol: Protocol,
    n: usize,
    t: u64,
    rng: ChaCha8Rng,
    /// AsyncPS: the pulls in flight, by delivery time modulo τ + 1.
    in_flight: Vec<Vec<usize>>,
}

impl Schedule {
    pub fn new(protocol: Protocol, n: usize, rng: ChaCha8Rng) -> Self {
        assert!(n >= 2, "a protocol needs at least two workers");
        let slots = match protocol {
            Protocol::AsyncPs { max_delay_rounds } => max_delay(max_delay_rounds, n) + 1,
            _ => 0,
        };
        Self {
            protocol,
            n,
            t: 0,
            rng,
            in_flight: vec![Vec::new(); slots],
        }
    }

    /// The events of M_t (empty: M_t = I), then t ← t + 1.
    pub fn next(&mut self, events: &mut Vec<Operator>) {
        events.clear();
        let (n, t) = (self.n, self.t);
        self.t += 1;
        let end_of_round = |rounds: usize| (t + 1).is_multiple_of((rounds * n) as u64);
        match self.protocol {
            Protocol::AllReduce if end_of_round(1) => events.push(Operator::Slack { gamma: 1.0 }),
            Protocol::LocalSteps { m } if end_of_round(m) => {
                events.push(Operator::Slack { gamma: 1.0 })
            }
            Protocol::SyncRing if end_of_round(1) => events.push(Operator::Ring),
            Protocol::Slack { gamma } if end_of_round(1) => events.push(Operator::Slack { gamma }),
            Protocol::AsyncRing => {
                let i = self.rng.random_range(0..n);
                let j = match n {
                    2 => 1 - i,
                    _ if self.rng.random_bool(0.5) => (i + 1) % n,
                    _ => (i + n - 1) % n,
                };
                events.push(Operator::Pair(i, j));
            }
            Protocol::AsyncPs { .. } => {
                let slots = self.in_flight.len();
                let worker = self.rng.random_range(0..n);
                let delay = self.rng.random_range(0..slots);
                self.in_flight[(t as usize + delay) % slots].push(worker);
                let due = &mut self.in_flight[t as usize % slots];
                events.extend(
                    due.drain(..)
                        .map(|worker| Operator::Pull { worker, server: n }),
                );
            }
            _ => {}
        }
    }
}

/// τ = round(max_delay_rounds · n), the longest delivery delay of a pull in worker steps.
fn max_delay(max_delay_rounds: f64, n: usize) -> usize {
    (max_delay_rounds * n as f64).round() as usize
}
