//! gymnasium's `InvertedDoublePendulum-v4` (gymnasium/envs/mujoco/
//! inverted_double_pendulum_v4.py): a cart balancing two stacked poles, rewarded for
//! keeping the tip high and still; the episode ends when the tip drops to 1 m.
use super::mujoco_env::{Outcome, Task};
use super::noise::{ResetNoise, VelocityNoise};
use super::simulation::Simulation;
use anyhow::Result;

/// `alive_bonus`.
const ALIVE_BONUS: f64 = 10.0;
/// The velocities and constraint forces observed are clipped to ±this.
const OBSERVATION_CLIP: f64 = 10.0;

/// The InvertedDoublePendulum task.
pub struct InvertedDoublePendulum;

impl Task for InvertedDoublePendulum {
    const ID: &'static str = "InvertedDoublePendulum-v4";
    const XML: &'static str = "inverted_double_pendulum.xml";
    const FRAME_SKIP: usize = 5;
    /// The cart's x, sin and cos of the two hinge angles, 3 velocities, 3 constraint forces.
    const OBSERVATION_DIM: usize = 11;
    /// `reset_model`: U(−0.1, 0.1) positions, 0.1 · N(0, 1) velocities.
    const RESET_NOISE: ResetNoise = ResetNoise {
        scale: 0.1,
        velocity: VelocityNoise::Normal,
    };

    fn new(_: &Simulation) -> Result<Self> {
        Ok(Self)
    }

    /// `_get_obs`: `qpos[:1]`, `sin(qpos[1:])`, `cos(qpos[1:])`, `clip(qvel, -10, 10)`,
    /// `clip(qfrc_constraint, -10, 10)`.
    fn observe(&self, sim: &Simulation) -> Vec<f64> {
        let data = sim.data();
        let (qpos, clip) = (data.qpos(), |v: &f64| {
            v.clamp(-OBSERVATION_CLIP, OBSERVATION_CLIP)
        });
        let angles = &qpos[1..];
        std::iter::once(qpos[0])
            .chain(angles.iter().map(|a| a.sin()))
            .chain(angles.iter().map(|a| a.cos()))
            .chain(data.qvel().iter().map(clip))
            .chain(data.qfrc_constraint().iter().map(clip))
            .collect()
    }

    /// `step`: r = alive_bonus − (0.01 x² + (y − 2)²) − (10⁻³ v₁² + 5·10⁻³ v₂²) with (x, y) the
    /// tip site's position and v₁, v₂ the hinges' velocities; terminated when y ≤ 1. Its
    /// `info` is empty.
    fn advance(&self, sim: &mut Simulation, action: &[f64]) -> Result<Outcome> {
        sim.do_simulation(action)?;
        let data = sim.data();
        let [x, _, y] = data.site_xpos()[0];
        let dist_penalty = 0.01 * (x * x) + (y - 2.0) * (y - 2.0);
        let (v1, v2) = (data.qvel()[1], data.qvel()[2]);
        let vel_penalty = 1e-3 * (v1 * v1) + 5e-3 * (v2 * v2);
        Ok(Outcome {
            reward: ALIVE_BONUS - dist_penalty - vel_penalty,
            terminated: y <= 1.0,
            info: vec![],
        })
    }
}
