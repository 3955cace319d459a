//! Communication events: linear maps X ← M X on the state (Section 3: "each communication
//! event acts linearly on this state"), applied in place. The matrix M of an event is what it
//! does to X = I ([`super::State::identity`]).
use super::State;
use std::ops::Range;
use tch::Tensor;

/// One communication event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Operator {
    /// x_i ← x_i + (γ/n) Σ_j (x_j − x_i) over all n rows (Section 6), i.e.
    /// M = (1 − γ)I + γ(1/n)11ᵀ; γ = 1 is AllReduce's M = (1/n)11ᵀ (case study I). Doubly
    /// stochastic for γ ∈ [0, 1].
    Slack { gamma: f64 },
    /// Ring gossip (case study II, D-PSGD's W): every x_i ← the mean of x_j over its closed
    /// ring neighbourhood {i − 1, i, i + 1} mod n as a set (weights ⅓ for n ≥ 3; for n = 2 the
    /// set is both workers). Symmetric and doubly stochastic: every neighbourhood has the same
    /// size.
    Ring,
    /// AD-PSGD's atomic pairwise average: x_i, x_j ← (x_i + x_j)/2. Symmetric, doubly
    /// stochastic.
    Pair(usize, usize),
    /// A parameter-server pull: worker `worker`'s copy ← the server's row `server`. Row
    /// stochastic, not column stochastic: it keeps the server's value, not the average.
    Pull { worker: usize, server: usize },
}

impl Operator {
    /// X ← M X.
    pub fn apply(&self, x: &mut State) {
        match *self {
            Operator::Slack { gamma } => {
                let mean = x.mean_row();
                for i in 0..x.rows() {
                    for (v, m) in x.row_mut(i).iter_mut().zip(&mean) {
                        *v += gamma * (m - *v);
                    }
                }
            }
            Operator::Ring => {
                let (n, old) = (x.rows(), x.clone());
                for i in 0..n {
                    ring_mean(i, n, |j| old.row(j), x.row_mut(i));
                }
            }
            Operator::Pair(i, j) => {
                let (a, b) = x.two_rows_mut(i, j);
                for (u, v) in a.iter_mut().zip(b.iter_mut()) {
                    let mean = 0.5 * (*u + *v);
                    (*u, *v) = (mean, mean);
                }
            }
            Operator::Pull { worker, server } => {
                let (to, from) = x.two_rows_mut(worker, server);
                to.copy_from_slice(from);
            }
        }
    }

    /// X ← M X on the rows `x` (the training nodes' flat models), in place, in their dtype:
    /// the slack update as the paper writes it, x_i + γ(x̄ − x_i), so that small γ meets
    /// f32's rounding as the paper's runs did (Section 6). A pull needs a server row, which
    /// training does not have.
    pub fn apply_tensors(&self, x: &[Tensor]) {
        tch::no_grad(|| match *self {
            Operator::Slack { gamma } => {
                slack(x, &Tensor::stack(x, 0).mean_dim(0, false, None), gamma)
            }
            Operator::Ring => {
                let (n, old) = (x.len(), Tensor::stack(x, 0));
                for (i, row) in x.iter().enumerate() {
                    let neighbourhood = ring_neighbourhood(i, n);
                    let index = Tensor::from_slice(
                        &neighbourhood.iter().map(|&j| j as i64).collect::<Vec<_>>(),
                    )
                    .to_device(old.device());
                    let mean = old.index_select(0, &index).sum_dim_intlist(0, false, None)
                        / neighbourhood.len() as f64;
                    row.shallow_clone().copy_(&mean);
                }
            }
            Operator::Pair(i, j) => {
                let mean = (&x[i] + &x[j]) * 0.5;
                x[i].shallow_clone().copy_(&mean);
                x[j].shallow_clone().copy_(&mean);
            }
            Operator::Pull { .. } => panic!("a pull acts on a state with a server row"),
        })
    }

    /// [`Operator::apply_tensors`] over ranks ([`crate::dist`]): this rank holds the rows
    /// `own` of the n workers' (`x`, its block) and updates them, with what the event needs
    /// of the others: the sum of every rank's rows for a slack round, the neighbouring
    /// ranks' edge rows for the ring (one shift each way), the other row of a pair that
    /// spans two ranks (one exchange). The rows it computes from are those of one process,
    /// in the same order, so a ring or a pair gives the same bits; a mean adds the ranks'
    /// partial sums (rounding apart).
    pub fn apply_tensors_over_ranks(&self, x: &[Tensor], own: Range<usize>, n: usize) {
        let rank_of = |i: usize| i / own.len();
        let local = |i: usize| &x[i - own.start];
        tch::no_grad(|| match *self {
            Operator::Slack { gamma } => slack(x, &mean_over_ranks(x, n), gamma),
            Operator::Ring => {
                let ranks = n / own.len();
                let rank = rank_of(own.start);
                let (left, right) = ((rank + ranks - 1) % ranks, (rank + 1) % ranks);
                // my last row to the right, the left rank's last (x_{a−1}) from it; my first
                // to the left, the right rank's first (x_b) from it
                let before = crate::dist::shift(&x[x.len() - 1], right, left);
                let after = crate::dist::shift(&x[0], left, right);
                let old: Vec<Tensor> = x.iter().map(Tensor::copy).collect();
                let row = |j: usize| match j {
                    j if own.contains(&j) => old[j - own.start].shallow_clone(),
                    j if j == (own.start + n - 1) % n => before.shallow_clone(),
                    _ => after.shallow_clone(),
                };
                for i in own.clone() {
                    let neighbourhood = ring_neighbourhood(i, n);
                    let rows: Vec<Tensor> = neighbourhood.iter().map(|&j| row(j)).collect();
                    let mean = Tensor::stack(&rows, 0).sum_dim_intlist(0, false, None)
                        / neighbourhood.len() as f64;
                    local(i).shallow_clone().copy_(&mean);
                }
            }
            Operator::Pair(i, j) => {
                let mean = match (own.contains(&i), own.contains(&j)) {
                    (true, true) => local(i) + local(j),
                    (true, false) => {
                        local(i) + crate::dist::shift(local(i), rank_of(j), rank_of(j))
                    }
                    (false, true) => {
                        crate::dist::shift(local(j), rank_of(i), rank_of(i)) + local(j)
                    }
                    (false, false) => return,
                } * 0.5;
                for k in [i, j].into_iter().filter(|k| own.contains(k)) {
                    local(k).shallow_clone().copy_(&mean);
                }
            }
            Operator::Pull { .. } => panic!("a pull acts on a state with a server row"),
        })
    }

    /// Rows sent by the event among `n` workers (each is received once): every worker's
    /// model for a slack/AllReduce round (to a reducer, and the mean back counts as
    /// received), to each neighbour of its ring neighbourhood, one model each way for a pair
    /// or a pull.
    pub fn rows_sent(&self, n: usize) -> u64 {
        match *self {
            Operator::Slack { .. } => n as u64,
            Operator::Ring => (0..n)
                .map(|i| ring_neighbourhood(i, n).len() as u64 - 1)
                .sum(),
            Operator::Pair(..) => 2,
            Operator::Pull { .. } => 1,
        }
    }
}

/// The slack update of `rows` towards `mean`: x_i + γ(x̄ − x_i), or x̄ for γ = 1.
fn slack(rows: &[Tensor], mean: &Tensor, gamma: f64) {
    for row in rows {
        let mut row = row.shallow_clone();
        if gamma == 1.0 {
            row.copy_(mean);
        } else {
            let _ = row.g_add_(&((mean - &row) * gamma));
        }
    }
}

/// x̄ of all n rows, from this rank's rows `x` and the other ranks' sums.
pub fn mean_over_ranks(x: &[Tensor], n: usize) -> Tensor {
    let sum = Tensor::stack(x, 0).sum_dim_intlist(0, false, None);
    crate::dist::sum(&sum);
    sum / n as f64
}

/// x_i after a ring round: the mean of the rows `old(j)` over i's closed neighbourhood among
/// n, added in neighbourhood order (one arithmetic for the simulation and the live ring).
pub fn ring_mean<'a>(i: usize, n: usize, old: impl Fn(usize) -> &'a [f64], out: &mut [f64]) {
    let neighbourhood = ring_neighbourhood(i, n);
    let weight = 1.0 / neighbourhood.len() as f64;
    out.fill(0.0);
    for &j in &neighbourhood {
        out.iter_mut()
            .zip(old(j))
            .for_each(|(v, o)| *v += weight * o);
    }
}

/// Worker i's closed ring neighbourhood {i − 1, i, i + 1} mod n, as a sorted set.
fn ring_neighbourhood(i: usize, n: usize) -> Vec<usize> {
    let mut neighbourhood = vec![(i + n - 1) % n, i, (i + 1) % n];
    neighbourhood.sort_unstable();
    neighbourhood.dedup();
    neighbourhood
}
