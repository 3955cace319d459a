//! gymnasium's `MujocoEnv` base class as a generic [`Env`]: the model, reset with noise or
//! to a given state, and stepping, around a [`Task`] that says what one environment
//! observes and rewards.
use super::noise::ResetNoise;
use super::simulation::Simulation;
use super::{id_tag, tagged_id, Env, Step};
use anyhow::{bail, ensure, Result};
use rand_chacha::ChaCha8Rng;

/// What an environment's `*_v4.py` adds to `MujocoEnv`.
pub trait Task: Send + Sized {
    /// The gymnasium id (`"Ant-v4"`).
    const ID: &'static str;
    /// The model in gymnasium's assets folder.
    const XML: &'static str;
    /// MuJoCo steps per environment step.
    const FRAME_SKIP: usize;
    /// The observation's length, checked against the loaded model.
    const OBSERVATION_DIM: usize;
    /// `reset_model`'s noise.
    const RESET_NOISE: ResetNoise;

    /// Reads what the task needs from the loaded model (body ids, masses).
    fn new(sim: &Simulation) -> Result<Self>;
    /// `_get_obs`.
    fn observe(&self, sim: &Simulation) -> Vec<f64>;
    /// `step` without the observation: advances `sim` under `action` (through
    /// [`Simulation::do_simulation`]) and returns the reward, whether the episode
    /// terminated, and the `info` entries.
    fn advance(&self, sim: &mut Simulation, action: &[f64]) -> Result<Outcome>;
}

/// A [`Task`]'s reward, termination and `info` for one step.
pub struct Outcome {
    pub reward: f64,
    pub terminated: bool,
    pub info: Vec<(&'static str, f64)>,
}

/// The environment of task `T` (no time limit: [`super::make`] adds it).
pub struct MujocoEnv<T> {
    sim: Simulation,
    task: T,
    action_bounds: Vec<(f64, f64)>,
    /// A reset has started an episode (gymnasium's `OrderEnforcing`).
    started: bool,
}

impl<T: Task> MujocoEnv<T> {
    /// Loads `T`'s model from the gymnasium wheel.
    pub fn new() -> Result<Self> {
        let sim = Simulation::load(T::XML, T::FRAME_SKIP)?;
        let task = T::new(&sim)?;
        let dim = task.observe(&sim).len();
        ensure!(
            dim == T::OBSERVATION_DIM,
            "{}: {} gives observations of {dim} values, not gymnasium's {}",
            T::ID,
            T::XML,
            T::OBSERVATION_DIM
        );
        Ok(Self {
            action_bounds: sim.action_bounds(),
            sim,
            task,
            started: false,
        })
    }

    /// The simulation, to read what the observation leaves out (the x position).
    pub fn simulation(&self) -> &Simulation {
        &self.sim
    }
}

impl<T: Task> Env for MujocoEnv<T> {
    fn id(&self) -> &'static str {
        T::ID
    }

    fn observation_dim(&self) -> usize {
        T::OBSERVATION_DIM
    }

    fn action_bounds(&self) -> &[(f64, f64)] {
        &self.action_bounds
    }

    fn reset(&mut self, rng: &mut ChaCha8Rng) -> Result<Vec<f64>> {
        let (qpos, qvel) = T::RESET_NOISE.sample(self.sim.init_qpos(), self.sim.init_qvel(), rng);
        self.reset_to(&qpos, &qvel)
    }

    fn reset_to(&mut self, qpos: &[f64], qvel: &[f64]) -> Result<Vec<f64>> {
        self.sim.reset_to(qpos, qvel)?;
        self.started = true;
        Ok(self.task.observe(&self.sim))
    }

    fn step(&mut self, action: &[f64]) -> Result<Step> {
        ensure!(
            self.started,
            "{}: step before reset (call reset or reset_to first)",
            T::ID
        );
        let outcome = self.task.advance(&mut self.sim, action)?;
        Ok(Step {
            observation: self.task.observe(&self.sim),
            reward: outcome.reward,
            terminated: outcome.terminated,
            truncated: false,
            info: outcome.info,
        })
    }

    /// `[id tag, started, simulation…]`: the id's [`id_tag`], the `started` flag and
    /// [`Simulation::snapshot`].
    fn snapshot(&self) -> Vec<f64> {
        let mut snapshot = vec![id_tag(T::ID), f64::from(u8::from(self.started))];
        snapshot.extend(self.sim.snapshot());
        snapshot
    }

    fn restore(&mut self, snapshot: &[f64]) -> Result<()> {
        let Some((&tag, rest)) = snapshot.split_first() else {
            bail!("{}: the snapshot is empty", T::ID);
        };
        if tag != id_tag(T::ID) {
            match tagged_id(tag) {
                Some(id) => bail!("{}: the snapshot is of {id}", T::ID),
                None => bail!(
                    "{}: the snapshot does not start with this environment's tag {} (found {tag})",
                    T::ID,
                    id_tag(T::ID)
                ),
            }
        }
        let len = 2 + self.sim.snapshot_len();
        ensure!(
            snapshot.len() == len,
            "{}: a snapshot has {len} values, not {}",
            T::ID,
            snapshot.len()
        );
        let started = match rest[0] {
            0.0 => false,
            1.0 => true,
            flag => bail!(
                "{}: the snapshot's started flag is 0 or 1, not {flag}",
                T::ID
            ),
        };
        self.sim.restore(&rest[1..]).map_err(|e| e.context(T::ID))?;
        self.started = started;
        Ok(())
    }
}
