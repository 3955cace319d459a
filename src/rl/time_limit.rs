//! gymnasium's `TimeLimit` wrapper (gymnasium/wrappers/common.py), which `gymnasium.make`
//! puts around every environment registered with `max_episode_steps`: the step that reaches
//! the limit is `truncated`.
use super::{Env, Step};
use anyhow::{ensure, Result};
use rand_chacha::ChaCha8Rng;

/// `env` whose episodes are truncated after `max_episode_steps` steps.
pub struct TimeLimit<E> {
    env: E,
    max_episode_steps: usize,
    /// Steps since the last reset.
    elapsed: usize,
}

impl<E: Env> TimeLimit<E> {
    pub fn new(env: E, max_episode_steps: usize) -> Self {
        Self {
            env,
            max_episode_steps,
            elapsed: 0,
        }
    }

    /// Steps taken since the last reset.
    pub fn elapsed_steps(&self) -> usize {
        self.elapsed
    }
}

impl<E: Env> Env for TimeLimit<E> {
    fn id(&self) -> &'static str {
        self.env.id()
    }

    fn observation_dim(&self) -> usize {
        self.env.observation_dim()
    }

    fn action_bounds(&self) -> &[(f64, f64)] {
        self.env.action_bounds()
    }

    fn reset(&mut self, rng: &mut ChaCha8Rng) -> Result<Vec<f64>> {
        let observation = self.env.reset(rng)?;
        self.elapsed = 0;
        Ok(observation)
    }

    fn reset_to(&mut self, qpos: &[f64], qvel: &[f64]) -> Result<Vec<f64>> {
        let observation = self.env.reset_to(qpos, qvel)?;
        self.elapsed = 0;
        Ok(observation)
    }

    /// `TimeLimit.step`: `truncated = elapsed_steps >= max_episode_steps` after counting this
    /// step (it stays set if the episode is stepped on).
    fn step(&mut self, action: &[f64]) -> Result<Step> {
        let mut step = self.env.step(action)?;
        self.elapsed += 1;
        if self.elapsed >= self.max_episode_steps {
            step.truncated = true;
        }
        Ok(step)
    }

    /// `[max_episode_steps, elapsed, env…]`: the limit, the steps counted and `env`'s
    /// snapshot.
    fn snapshot(&self) -> Vec<f64> {
        let mut snapshot = vec![self.max_episode_steps as f64, self.elapsed as f64];
        snapshot.extend(self.env.snapshot());
        snapshot
    }

    fn restore(&mut self, snapshot: &[f64]) -> Result<()> {
        let id = self.env.id();
        ensure!(
            snapshot.len() >= 2,
            "{id}: a snapshot starts with the time limit and the elapsed steps, but it has {} values",
            snapshot.len()
        );
        let (limit, elapsed) = (snapshot[0], snapshot[1]);
        ensure!(
            limit == self.max_episode_steps as f64,
            "{id}: the snapshot's time limit is {limit}, not {} steps",
            self.max_episode_steps
        );
        ensure!(
            elapsed >= 0.0 && elapsed.fract() == 0.0 && elapsed <= usize::MAX as f64,
            "{id}: the snapshot's elapsed steps are a count, not {elapsed}"
        );
        self.env.restore(&snapshot[2..])?;
        self.elapsed = elapsed as usize;
        Ok(())
    }
}
