//! gymnasium's `HalfCheetah-v4` (gymnasium/envs/mujoco/half_cheetah_v4.py) with its default
//! arguments: a planar two-legged runner rewarded for its velocity along x. It never
//! terminates; only the time limit ends an episode.
use super::mujoco_env::{Outcome, Task};
use super::noise::{ResetNoise, VelocityNoise};
use super::simulation::Simulation;
use super::sum_of_squares;
use anyhow::Result;

/// `forward_reward_weight`.
const FORWARD_REWARD_WEIGHT: f64 = 1.0;
/// `ctrl_cost_weight`.
const CTRL_COST_WEIGHT: f64 = 0.1;

/// The HalfCheetah task.
pub struct HalfCheetah;

impl Task for HalfCheetah {
    const ID: &'static str = "HalfCheetah-v4";
    const XML: &'static str = "half_cheetah.xml";
    const FRAME_SKIP: usize = 5;
    /// qpos without the root's x (8), then qvel (9).
    const OBSERVATION_DIM: usize = 17;
    const RESET_NOISE: ResetNoise = ResetNoise {
        scale: 0.1,
        velocity: VelocityNoise::Normal,
    };

    fn new(_: &Simulation) -> Result<Self> {
        Ok(Self)
    }

    /// `_get_obs`: `qpos[1:]`, `qvel`.
    fn observe(&self, sim: &Simulation) -> Vec<f64> {
        let data = sim.data();
        [&data.qpos()[1..], data.qvel()].concat()
    }

    fn advance(&self, sim: &mut Simulation, action: &[f64]) -> Result<Outcome> {
        let before = sim.data().qpos()[0];
        sim.do_simulation(action)?;
        let after = sim.data().qpos()[0];
        let x_velocity = (after - before) / sim.dt();
        let ctrl_cost = CTRL_COST_WEIGHT * sum_of_squares(action);
        let forward_reward = FORWARD_REWARD_WEIGHT * x_velocity;
        Ok(Outcome {
            reward: forward_reward - ctrl_cost,
            terminated: false,
            info: vec![
                ("x_position", after),
                ("x_velocity", x_velocity),
                ("reward_run", forward_reward),
                ("reward_ctrl", -ctrl_cost),
            ],
        })
    }
}
