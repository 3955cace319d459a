//! Environments stepped together on threads (Tianshou's vector environments): one action
//! each, their steps in parallel, each episode's reset noise seeded by (seed, stream,
//! environment, episode) so the draws do not depend on the threads or on a resume.
use super::{make, Env, Step};
use anyhow::{ensure, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

pub struct VectorEnv {
    envs: Vec<Box<dyn Env>>,
    seed: u64,
    /// Which family of environments (training, test): their reset noise differs.
    stream: u64,
    /// Episodes started by each environment.
    episodes: Vec<u64>,
}

impl VectorEnv {
    /// `n` environments `id` (as [`make`] builds them), none reset yet.
    pub fn new(id: &str, n: usize, seed: u64, stream: u64) -> Result<Self> {
        let envs = (0..n).map(|_| make(id)).collect::<Result<Vec<_>>>()?;
        Ok(Self {
            envs,
            seed,
            stream,
            episodes: vec![0; n],
        })
    }

    pub fn len(&self) -> usize {
        self.envs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    pub fn observation_dim(&self) -> usize {
        self.envs[0].observation_dim()
    }

    pub fn action_bounds(&self) -> &[(f64, f64)] {
        self.envs[0].action_bounds()
    }

    /// Draws the reset noise of `stream` from its first episode on (the test episodes of
    /// one evaluation: the same whenever it runs).
    pub fn reseed(&mut self, stream: u64) {
        self.stream = stream;
        self.episodes.fill(0);
    }

    /// Starts environment `i`'s next episode; its first observation.
    pub fn reset(&mut self, i: usize) -> Result<Vec<f64>> {
        let key = [self.seed, self.stream, i as u64, self.episodes[i]];
        let mut rng = ChaCha8Rng::seed_from_u64(mix(key));
        self.episodes[i] += 1;
        self.envs[i].reset(&mut rng)
    }

    /// Steps environments `ids` with `actions` (one each, in that order) in parallel.
    pub fn step(&mut self, ids: &[usize], actions: &[Vec<f64>]) -> Result<Vec<Step>> {
        ensure!(ids.len() == actions.len(), "one action per environment");
        let mut chosen: Vec<Option<&mut Box<dyn Env>>> = self.envs.iter_mut().map(Some).collect();
        let mut envs = Vec::with_capacity(ids.len());
        for &i in ids {
            let env = chosen.get_mut(i).and_then(Option::take);
            envs.push(
                env.ok_or_else(|| anyhow::anyhow!("environment {i} is absent or named twice"))?,
            );
        }
        envs.into_par_iter()
            .zip(actions.par_iter())
            .map(|(env, action)| env.step(action))
            .collect()
    }

    /// Each environment's state and episode count, for a checkpoint.
    pub fn snapshot(&self) -> Vec<Vec<f64>> {
        self.envs
            .iter()
            .zip(&self.episodes)
            .map(|(env, &episodes)| {
                let mut s = vec![episodes as f64];
                s.extend(env.snapshot());
                s
            })
            .collect()
    }

    /// Restores what [`Self::snapshot`] wrote.
    pub fn restore(&mut self, saved: &[Vec<f64>]) -> Result<()> {
        ensure!(
            saved.len() == self.len(),
            "the checkpoint holds {} environments, not {}",
            saved.len(),
            self.len()
        );
        for ((env, episodes), s) in self.envs.iter_mut().zip(&mut self.episodes).zip(saved) {
            ensure!(!s.is_empty(), "an empty environment snapshot");
            *episodes = s[0] as u64;
            env.restore(&s[1..])?;
        }
        Ok(())
    }
}

/// One 64-bit seed from several (SplitMix64 steps).
pub fn mix(parts: impl IntoIterator<Item = u64>) -> u64 {
    parts.into_iter().fold(0x243f_6a88_85a3_08d3, |h, p| {
        let mut z = (h ^ p).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_steps_equal_one_environment_stepped_alone() {
        let mut vector = VectorEnv::new("HalfCheetah-v4", 3, 7, 0).unwrap();
        let first: Vec<_> = (0..3).map(|i| vector.reset(i).unwrap()).collect();
        assert_ne!(first[0], first[1], "each environment its own noise");
        let mut alone = VectorEnv::new("HalfCheetah-v4", 3, 7, 0).unwrap();
        assert_eq!(alone.reset(0).unwrap(), first[0]);
        assert_eq!(alone.reset(1).unwrap(), first[1]);
        let actions: Vec<Vec<f64>> = (0..3).map(|i| vec![0.1 * i as f64; 6]).collect();
        let steps = vector.step(&[2, 0, 1], &actions).unwrap();
        let single = alone.step(&[1], &actions[2..]).unwrap();
        assert_eq!(steps[2], single[0], "environment 1 took the third action");
        assert!(vector.step(&[0, 0], &actions[..2]).is_err());
        assert!(vector.step(&[3], &actions[..1]).is_err());
    }
}
