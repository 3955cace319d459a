//! gymnasium's `Ant-v4` (gymnasium/envs/mujoco/ant_v4.py) with its default arguments: a
//! four-legged robot rewarded for its torso's velocity along x, with `use_contact_forces=False`
//! (no contact forces observed, no contact cost).
use super::mujoco_env::{Outcome, Task};
use super::noise::{ResetNoise, VelocityNoise};
use super::simulation::Simulation;
use super::{norm, sum_of_squares};
use anyhow::Result;

/// `ctrl_cost_weight`.
const CTRL_COST_WEIGHT: f64 = 0.5;
/// `healthy_reward`, paid on every step: `terminate_when_unhealthy=True` makes
/// `float(is_healthy or terminate_when_unhealthy)` one.
const HEALTHY_REWARD: f64 = 1.0;
/// `healthy_z_range`: the torso's height (`qpos[2]`) while healthy, bounds included.
const HEALTHY_Z: (f64, f64) = (0.2, 1.0);

/// The Ant task; `torso` is the body whose x–y motion is rewarded (`get_body_com("torso")`).
pub struct Ant {
    torso: usize,
}

impl Task for Ant {
    const ID: &'static str = "Ant-v4";
    const XML: &'static str = "ant.xml";
    const FRAME_SKIP: usize = 5;
    /// qpos without the torso's x and y (13), then qvel (14).
    const OBSERVATION_DIM: usize = 27;
    const RESET_NOISE: ResetNoise = ResetNoise {
        scale: 0.1,
        velocity: VelocityNoise::Normal,
    };

    fn new(sim: &Simulation) -> Result<Self> {
        Ok(Self {
            torso: sim.body("torso")?,
        })
    }

    /// `_get_obs`: `qpos[2:]`, `qvel`.
    fn observe(&self, sim: &Simulation) -> Vec<f64> {
        let data = sim.data();
        [&data.qpos()[2..], data.qvel()].concat()
    }

    fn advance(&self, sim: &mut Simulation, action: &[f64]) -> Result<Outcome> {
        let before = sim.data().xpos()[self.torso];
        sim.do_simulation(action)?;
        let after = sim.data().xpos()[self.torso];
        let x_velocity = (after[0] - before[0]) / sim.dt();
        let y_velocity = (after[1] - before[1]) / sim.dt();
        let forward_reward = x_velocity;
        let ctrl_cost = CTRL_COST_WEIGHT * sum_of_squares(action);
        // is_healthy: the state is finite and min_z <= qpos[2] <= max_z.
        let z = sim.data().qpos()[2];
        let healthy = sim.state_is_finite() && (HEALTHY_Z.0..=HEALTHY_Z.1).contains(&z);
        Ok(Outcome {
            reward: forward_reward + HEALTHY_REWARD - ctrl_cost,
            terminated: !healthy,
            info: vec![
                ("reward_forward", forward_reward),
                ("reward_ctrl", -ctrl_cost),
                ("reward_survive", HEALTHY_REWARD),
                ("x_position", after[0]),
                ("y_position", after[1]),
                ("distance_from_origin", norm([after[0], after[1]])),
                ("x_velocity", x_velocity),
                ("y_velocity", y_velocity),
                ("forward_reward", forward_reward),
            ],
        })
    }
}
