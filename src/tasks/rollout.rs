//! One collect's transitions as Tianshou's on-policy trainers hold them
//! (`VectorReplayBuffer`, read back with `sample_indices(0)`): environment by environment,
//! each in time order, so index e·T + t is environment e's t-th step of the collect. Its
//! returns and advantages are `BasePolicy.compute_episodic_return` (GAE).
use anyhow::{ensure, Result};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollout {
    /// Steps per environment, T.
    pub steps: usize,
    /// The observation each action saw and the one it led to (both normalised as they were
    /// then), [N] rows.
    pub obs: Vec<Vec<f64>>,
    pub obs_next: Vec<Vec<f64>>,
    /// The sampled actions before their clipping and scaling (`batch.act`).
    pub act: Vec<Vec<f64>>,
    pub rew: Vec<f64>,
    pub terminated: Vec<bool>,
    pub truncated: Vec<bool>,
}

impl Rollout {
    pub fn new(envs: usize, steps: usize) -> Self {
        let n = envs * steps;
        Self {
            steps,
            obs: vec![vec![]; n],
            obs_next: vec![vec![]; n],
            act: vec![vec![]; n],
            rew: vec![0.0; n],
            terminated: vec![false; n],
            truncated: vec![false; n],
        }
    }

    pub fn len(&self) -> usize {
        self.rew.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rew.is_empty()
    }

    /// The buffer index of environment `env`'s step `t`.
    pub fn index(&self, env: usize, t: usize) -> usize {
        env * self.steps + t
    }

    /// (returns, advantages) by GAE from the critic's values `v_s` of `obs` and `v_next`
    /// of `obs_next` (in the rewards' scale): `compute_episodic_return` with `value_mask`,
    /// no bootstrap after a terminal step, and episodes cut at every end — terminated,
    /// truncated, or unfinished at the collect's end, where V(s') is bootstrapped.
    pub fn gae(
        &self,
        v_s: &[f64],
        v_next: &[f64],
        gamma: f64,
        lambda: f64,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let n = self.len();
        ensure!(
            v_s.len() == n && v_next.len() == n,
            "one value per transition"
        );
        let mut advantages = vec![0.0; n];
        let mut gae = 0.0;
        for i in (0..n).rev() {
            let unfinished = (i + 1) % self.steps == 0;
            let end = self.terminated[i] || self.truncated[i] || unfinished;
            let bootstrap = if self.terminated[i] { 0.0 } else { v_next[i] };
            let delta = self.rew[i] + gamma * bootstrap - v_s[i];
            // `_gae_return`: gae = δ_i + (1 − end_i)·γλ·gae
            gae = delta + if end { 0.0 } else { gamma * lambda * gae };
            advantages[i] = gae;
        }
        let returns = advantages.iter().zip(v_s).map(|(a, v)| a + v).collect();
        Ok((returns, advantages))
    }
}

/// Tianshou's `Batch.split(size, merge_last=True)` of `len` items: consecutive ranges of
/// `size`, the last one holding the remainder too when `len` is not a multiple.
pub fn split(len: usize, size: usize) -> Vec<std::ops::Range<usize>> {
    let merge = !len.is_multiple_of(size);
    let mut ranges = vec![];
    let mut start = 0;
    while start < len {
        if merge && start + 2 * size >= len {
            ranges.push(start..len);
            break;
        }
        ranges.push(start..start + size);
        start += size;
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_merges_the_remainder_into_the_last_range() {
        assert_eq!(split(2048, 256).len(), 8);
        assert_eq!(split(80, 64), vec![std::ops::Range { start: 0, end: 80 }]);
        assert_eq!(split(80, 256).len(), 1);
        assert_eq!(split(10, 3), [0..3, 3..6, 6..10]);
        assert_eq!(split(9, 3), [0..3, 3..6, 6..9]);
    }

    #[test]
    fn gae_with_lambda_one_is_the_discounted_return_bootstrapped_at_the_cut() {
        // One environment, 4 steps: terminated at step 1, unfinished at step 3.
        let mut r = Rollout::new(1, 4);
        r.rew = vec![1.0, 2.0, 3.0, 4.0];
        r.terminated = vec![false, true, false, false];
        let v = [0.5, 0.25, 0.75, 1.5];
        // V(s') is V of the next step's observation, but after the terminal step 1 (ignored).
        let v_next = [0.25, 9.0, 1.5, 10.0];
        let (returns, adv) = r.gae(&v, &v_next, 0.5, 1.0).unwrap();
        assert_eq!(
            returns,
            [
                1.0 + 0.5 * 2.0,
                2.0,
                3.0 + 0.5 * (4.0 + 0.5 * 10.0),
                4.0 + 5.0
            ]
        );
        assert_eq!(adv[1], 2.0 - 0.25);
    }
}
