//! gymnasium's `Humanoid-v4` (gymnasium/envs/mujoco/humanoid_v4.py) with its default
//! arguments: a 3D biped rewarded for moving its centre of mass along x while its torso
//! stays between 1 and 2 m high.
use super::mujoco_env::{Outcome, Task};
use super::noise::{ResetNoise, VelocityNoise};
use super::simulation::Simulation;
use super::{norm, sum_of_squares};
use anyhow::{ensure, Result};

/// `forward_reward_weight`.
const FORWARD_REWARD_WEIGHT: f64 = 1.25;
/// `ctrl_cost_weight`.
const CTRL_COST_WEIGHT: f64 = 0.1;
/// `healthy_reward`, paid on every step: `terminate_when_unhealthy=True` makes
/// `float(is_healthy or terminate_when_unhealthy)` one.
const HEALTHY_REWARD: f64 = 5.0;
/// `healthy_z_range`: the torso's height (`qpos[2]`) while healthy, bounds excluded.
const HEALTHY_Z: (f64, f64) = (1.0, 2.0);

/// The Humanoid task; `total_mass` is `model.body_mass.sum()`.
pub struct Humanoid {
    total_mass: f64,
}

impl Humanoid {
    /// `mass_center`: the bodies' centres of mass (`xipos`) weighted by their masses, x and y.
    fn mass_center(&self, sim: &Simulation) -> [f64; 2] {
        let weighted = sim
            .model()
            .body_mass()
            .iter()
            .zip(sim.data().xipos())
            .fold([0.0; 2], |[x, y], (m, p)| [x + m * p[0], y + m * p[1]]);
        weighted.map(|c| c / self.total_mass)
    }
}

impl Task for Humanoid {
    const ID: &'static str = "Humanoid-v4";
    const XML: &'static str = "humanoid.xml";
    const FRAME_SKIP: usize = 5;
    /// qpos without the torso's x and y (22), qvel (23), then per body (14, the world
    /// included) cinert (10), cvel (6), then qfrc_actuator (23), then per body cfrc_ext (6).
    const OBSERVATION_DIM: usize = 376;
    const RESET_NOISE: ResetNoise = ResetNoise {
        scale: 1e-2,
        velocity: VelocityNoise::Uniform,
    };

    fn new(sim: &Simulation) -> Result<Self> {
        let total_mass: f64 = sim.model().body_mass().iter().sum();
        ensure!(total_mass > 0.0, "{}: the model has no mass", Self::XML);
        Ok(Self { total_mass })
    }

    /// `_get_obs`: `qpos[2:]`, `qvel`, `cinert`, `cvel`, `qfrc_actuator`, `cfrc_ext`, flat.
    fn observe(&self, sim: &Simulation) -> Vec<f64> {
        let data = sim.data();
        [
            &data.qpos()[2..],
            data.qvel(),
            data.cinert().as_flattened(),
            data.cvel().as_flattened(),
            data.qfrc_actuator(),
            data.cfrc_ext().as_flattened(),
        ]
        .concat()
    }

    fn advance(&self, sim: &mut Simulation, action: &[f64]) -> Result<Outcome> {
        let before = self.mass_center(sim);
        sim.do_simulation(action)?;
        let after = self.mass_center(sim);
        let x_velocity = (after[0] - before[0]) / sim.dt();
        let y_velocity = (after[1] - before[1]) / sim.dt();
        // control_cost reads data.ctrl, which holds the action.
        let ctrl_cost = CTRL_COST_WEIGHT * sum_of_squares(sim.data().ctrl());
        let forward_reward = FORWARD_REWARD_WEIGHT * x_velocity;
        let z = sim.data().qpos()[2];
        let healthy = HEALTHY_Z.0 < z && z < HEALTHY_Z.1;
        Ok(Outcome {
            reward: forward_reward + HEALTHY_REWARD - ctrl_cost,
            terminated: !healthy,
            info: vec![
                ("reward_linvel", forward_reward),
                ("reward_quadctrl", -ctrl_cost),
                ("reward_alive", HEALTHY_REWARD),
                ("x_position", after[0]),
                ("y_position", after[1]),
                ("distance_from_origin", norm(after)),
                ("x_velocity", x_velocity),
                ("y_velocity", y_velocity),
                ("forward_reward", forward_reward),
            ],
        })
    }
}
