//! gymnasium's `TimeLimit` wrapper (gymnasium/wrappers/common.py), which `gymnasium.make`
//! puts around every environment registered with `max_episode_steps`: the step that reaches
//! the limit is `truncated`.
use super::{Env, Step};
use anyhow::Result;
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
}
