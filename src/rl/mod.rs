//! Reinforcement-learning environments: the four MuJoCo tasks of the paper's appendix A.5
//! (PPO and A2C in Tianshou on Ant, Humanoid, Half-Cheetah and Inverted Double Pendulum),
//! ported from gymnasium 1.4.0 with their default constructor arguments and registrations.
//!
//! The paper ran the mujoco-py versions (`Ant-v3`, `Humanoid-v3`, `HalfCheetah-v3`,
//! `InvertedDoublePendulum-v2`); mujoco-py is unmaintained and does not build against
//! MuJoCo 3, so these are the `-v4` versions, their maintained equivalents on the `mujoco`
//! bindings (gymnasium's version history: "v4: All MuJoCo environments now use the MuJoCo
//! bindings in mujoco >= 2.1.3"), with the same models. Two of them also changed what
//! contact forces do: `Ant-v4` leaves the 84 clipped contact forces `cfrc_ext` out of its
//! observation and its contact cost out of the reward by default (`use_contact_forces=False`);
//! `Humanoid-v4` has no contact cost, and the `cfrc_ext` it observes are the real forces (it
//! calls `mj_rnePostConstraint`), where under mujoco-py ≥ 2.0 the v3 versions saw zeros
//! (gymnasium's `Ant-v5` and `Humanoid-v5` notes).
//!
//! Physics runs in MuJoCo 3.17.0 through mujoco-rs, on the model XMLs of the installed
//! gymnasium wheel (`scripts/env.sh` installs both), so trajectories match gymnasium's
//! step for step (tests/mujoco_golden.rs). Reset noise comes from pisa's seeded ChaCha8
//! stream rather than numpy's, so a seed gives other initial states than gymnasium's;
//! [`Env::reset_to`] starts from a given state instead.
//!
//! - [`Env`]: reset and step, gymnasium's `Env` API in f64, and an exact snapshot and
//!   restore of its state, to resume from a checkpoint.
//! - [`make`]: an environment by its gymnasium id, wrapped in its [`TimeLimit`] as
//!   `gymnasium.make` wraps it.
//! - [`mujoco_env`]: gymnasium's `MujocoEnv` as a generic [`Env`] over a [`Task`], what one
//!   environment observes and rewards; [`simulation`]: its MuJoCo model and data;
//!   [`noise`]: the reset noise of `reset_model`.
//! - one module per environment: [`ant`], [`humanoid`], [`half_cheetah`],
//!   [`inverted_double_pendulum`].
pub mod ant;
pub mod half_cheetah;
pub mod humanoid;
pub mod inverted_double_pendulum;
pub mod mujoco_env;
pub mod noise;
pub mod running_mean_std;
pub mod simulation;
pub mod time_limit;
pub mod vector;

pub use mujoco_env::{MujocoEnv, Task};
pub use time_limit::TimeLimit;

use ant::Ant;
use half_cheetah::HalfCheetah;
use humanoid::Humanoid;
use inverted_double_pendulum::InvertedDoublePendulum;

use anyhow::{bail, Result};
use rand_chacha::ChaCha8Rng;

/// One `step` of an environment, as gymnasium's `(observation, reward, terminated,
/// truncated, info)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub observation: Vec<f64>,
    pub reward: f64,
    /// The episode reached a terminal state of the task (the robot fell, the pendulum
    /// dropped); its value is zero from here.
    pub terminated: bool,
    /// The episode was cut short by the time limit ([`TimeLimit`]), not by the task.
    pub truncated: bool,
    /// The environment's `info` dictionary, in its order: the reward's terms and the
    /// positions and velocities they are made of.
    pub info: Vec<(&'static str, f64)>,
}

impl Step {
    /// The `info` entry `key`.
    pub fn info(&self, key: &str) -> Option<f64> {
        self.info.iter().find(|(k, _)| *k == key).map(|&(_, v)| v)
    }
}

/// A reinforcement-learning environment: gymnasium's `Env` with a Box action space and a
/// flat f64 observation.
pub trait Env: Send {
    /// The gymnasium id it reproduces (`"Ant-v4"`).
    fn id(&self) -> &'static str;
    /// The length of every observation.
    fn observation_dim(&self) -> usize;
    /// The action space, `(low, high)` per dimension: the model's actuator control ranges,
    /// as float32 values like gymnasium's `Box(dtype=np.float32)`.
    fn action_bounds(&self) -> &[(f64, f64)];
    /// Starts an episode from the model's initial state with the environment's reset noise
    /// drawn from `rng`; returns the first observation.
    fn reset(&mut self, rng: &mut ChaCha8Rng) -> Result<Vec<f64>>;
    /// Starts an episode from joint positions `qpos` and velocities `qvel` (what a reset
    /// would draw); returns the first observation.
    fn reset_to(&mut self, qpos: &[f64], qvel: &[f64]) -> Result<Vec<f64>>;
    /// Applies `action` for one step. Actions outside the bounds are clipped by MuJoCo
    /// (the actuators' `ctrlrange`), as in gymnasium. Stepping on after the episode ended
    /// is allowed, as gymnasium allows it; stepping before the first reset is an error.
    fn step(&mut self, action: &[f64]) -> Result<Step>;
    /// The environment's whole state, from which [`Env::restore`] continues the episode bit
    /// for bit: the wrappers' counters and the MuJoCo state (see [`simulation`]).
    fn snapshot(&self) -> Vec<f64>;
    /// Returns to a [`Env::snapshot`] of an environment with the same id and wrappers; a
    /// snapshot of another environment, of another length or not finite is an error that
    /// changes nothing.
    fn restore(&mut self, snapshot: &[f64]) -> Result<()>;
}

/// The environments [`make`] knows, by gymnasium id.
pub const ENV_IDS: [&str; 4] = [
    Ant::ID,
    Humanoid::ID,
    HalfCheetah::ID,
    InvertedDoublePendulum::ID,
];

/// The steps of an episode before truncation: `max_episode_steps` of the four
/// registrations in gymnasium/envs/__init__.py.
pub const MAX_EPISODE_STEPS: usize = 1000;

/// The environment `id` as `gymnasium.make(id)` builds it: the environment with its default
/// arguments inside a [`TimeLimit`] of [`MAX_EPISODE_STEPS`].
pub fn make(id: &str) -> Result<Box<dyn Env>> {
    fn limited<T: Task + 'static>() -> Result<Box<dyn Env>> {
        Ok(Box::new(TimeLimit::new(
            MujocoEnv::<T>::new()?,
            MAX_EPISODE_STEPS,
        )))
    }
    match id {
        Ant::ID => limited::<Ant>(),
        Humanoid::ID => limited::<Humanoid>(),
        HalfCheetah::ID => limited::<HalfCheetah>(),
        InvertedDoublePendulum::ID => limited::<InvertedDoublePendulum>(),
        _ => bail!(
            "unknown environment {id:?}: the environments are {}",
            ENV_IDS.join(", ")
        ),
    }
}

/// The id in a snapshot: its FNV-1a hash, cut to 53 bits so that an f64 holds it exactly.
fn id_tag(id: &str) -> f64 {
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash >> 11) as f64
}

/// The id of [`ENV_IDS`] whose [`id_tag`] is `tag`.
fn tagged_id(tag: f64) -> Option<&'static str> {
    ENV_IDS.into_iter().find(|id| id_tag(id) == tag)
}

/// `pisa list environments`: each id with its observation and action sizes and the
/// parameters of the scripts' [64, 64] actor-critic on it.
pub fn describe() -> String {
    let mut out = String::new();
    for id in ENV_IDS {
        let line = match make(id) {
            Ok(env) => {
                let (obs, act) = (env.observation_dim(), env.action_bounds().len());
                let net = crate::models::actor_critic::ActorCritic::new(
                    obs as i64,
                    act as i64,
                    &[64, 64],
                );
                format!(
                    "  observations {obs}, actions {act}; the [64, 64] actor-critic has {} parameters",
                    net.layout().numel()
                )
            }
            Err(e) => format!("  unavailable: {e:#}"),
        };
        out += &format!(
            "{id}
{line}
  gymnasium 1.4.0 on MuJoCo 3.17.0, {MAX_EPISODE_STEPS}-step time limit

"
        );
    }
    out
}

/// Tianshou's `map_action` with `action_scaling` and `action_bound_method = "clip"`: a
/// policy's raw action clipped to [−1, 1], then mapped onto the action space's
/// [low, high] by low + (high − low)(a + 1)/2.
pub fn map_action(raw: &[f64], bounds: &[(f64, f64)]) -> Vec<f64> {
    raw.iter()
        .zip(bounds)
        .map(|(a, (low, high))| low + (high - low) * (a.clamp(-1.0, 1.0) + 1.0) / 2.0)
        .collect()
}

/// Σ aᵢ², the quadratic control costs' sum (`np.sum(np.square(action))`).
fn sum_of_squares(values: &[f64]) -> f64 {
    values.iter().map(|v| v * v).sum()
}

/// ‖(x, y)‖ as `np.linalg.norm(xy, ord=2)` computes it, √(x² + y²).
fn norm([x, y]: [f64; 2]) -> f64 {
    (x * x + y * y).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// gymnasium's `observation_space.shape` and `action_space.shape` of each id (Ant-v4
    /// without contact forces).
    const DIMS: [(&str, usize, usize); 4] = [
        ("Ant-v4", 27, 8),
        ("Humanoid-v4", 376, 17),
        ("HalfCheetah-v4", 17, 6),
        ("InvertedDoublePendulum-v4", 11, 1),
    ];

    #[test]
    fn each_environment_has_gymnasiums_dimensions() {
        for (id, observation_dim, action_dim) in DIMS {
            let mut env = make(id).unwrap();
            assert_eq!(env.id(), id);
            assert_eq!(env.observation_dim(), observation_dim, "{id}");
            assert_eq!(env.action_bounds().len(), action_dim, "{id}");
            assert!(env.action_bounds().iter().all(|(low, high)| low < high));
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            assert_eq!(env.reset(&mut rng).unwrap().len(), observation_dim, "{id}");
            let step = env.step(&vec![0.0; action_dim]).unwrap();
            assert_eq!(step.observation.len(), observation_dim, "{id}");
        }
    }

    #[test]
    fn the_time_limit_truncates_the_thousandth_step() {
        // HalfCheetah never terminates, so only the limit ends its episodes.
        let mut env = make("HalfCheetah-v4").unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..2 {
            env.reset(&mut rng).unwrap();
            for t in 1..=MAX_EPISODE_STEPS {
                let step = env.step(&[0.5, -0.5, 1.0, -1.0, 0.0, 0.25]).unwrap();
                assert_eq!(step.truncated, t == MAX_EPISODE_STEPS, "step {t}");
                assert!(!step.terminated);
            }
        }
    }

    #[test]
    fn a_seed_draws_the_same_reset_and_another_seed_another() {
        let mut env = make("Ant-v4").unwrap();
        let mut reset = |seed| env.reset(&mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
        let first = reset(5);
        assert_eq!(first, reset(5));
        assert_ne!(first, reset(6));
    }

    #[test]
    fn a_reset_perturbs_the_initial_state_by_the_noise_scale() {
        let mut env = MujocoEnv::<Humanoid>::new().unwrap();
        let (qpos0, qvel0) = (
            env.simulation().init_qpos().to_vec(),
            env.simulation().init_qvel().to_vec(),
        );
        env.reset(&mut ChaCha8Rng::seed_from_u64(2)).unwrap();
        let data = env.simulation().data();
        let scale = Humanoid::RESET_NOISE.scale;
        let moved = |now: &[f64], start: &[f64]| {
            now.iter()
                .zip(start)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max)
        };
        let (dq, dv) = (moved(data.qpos(), &qpos0), moved(data.qvel(), &qvel0));
        assert!(dq > 0.0 && dq < scale, "{dq}");
        assert!(dv > 0.0 && dv < scale, "{dv}");
    }

    #[test]
    fn bad_calls_are_errors() {
        assert!(make("Ant-v3").is_err());
        let mut env = make("InvertedDoublePendulum-v4").unwrap();
        let before = env.step(&[0.0]).unwrap_err().to_string();
        assert!(before.contains("before reset"), "{before}");
        env.reset(&mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        let wrong = env.step(&[0.0, 0.0]).unwrap_err().to_string();
        assert!(wrong.contains("expected 1, found 2"), "{wrong}");
        assert!(env.step(&[f64::NAN]).is_err());
        assert!(env.reset_to(&[0.0; 2], &[0.0; 3]).is_err());
        assert!(env.reset_to(&[0.0, f64::INFINITY, 0.0], &[0.0; 3]).is_err());
        // The env still steps after the errors.
        assert_eq!(env.step(&[0.0]).unwrap().observation.len(), 11);
    }

    /// An action drawn uniformly within `env`'s bounds.
    fn random_action(env: &dyn Env, rng: &mut ChaCha8Rng) -> Vec<f64> {
        use rand::Rng;
        env.action_bounds()
            .iter()
            .map(|&(low, high)| rng.random_range(low..high))
            .collect()
    }

    /// `id` reset from `seed` and stepped `k` times under random actions from `actions`.
    fn stepped(id: &str, seed: u64, k: usize, actions: &mut ChaCha8Rng) -> Box<dyn Env> {
        let mut env = make(id).unwrap();
        env.reset(&mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
        for _ in 0..k {
            let action = random_action(&*env, actions);
            env.step(&action).unwrap();
        }
        env
    }

    /// Steps `a` and `b` `n` times under the same random actions; the first step where they
    /// differ, if any.
    fn first_difference(
        a: &mut dyn Env,
        b: &mut dyn Env,
        n: usize,
        actions: &mut ChaCha8Rng,
    ) -> Option<(usize, Step, Step)> {
        (0..n).find_map(|t| {
            let action = random_action(a, actions);
            let (x, y) = (a.step(&action).unwrap(), b.step(&action).unwrap());
            (x != y).then_some((t, x, y))
        })
    }

    #[test]
    fn a_restored_snapshot_continues_bit_for_bit() {
        // k = 0: right after the reset; 960: the time limit truncates within the 50 steps.
        // Restoring qpos and qvel alone, or the integration state with mj_forward, differs
        // in Ant's and Humanoid's first reward and info (xpos, xipos of the last mj_step);
        // HalfCheetah and InvertedDoublePendulum read no such quantity before stepping.
        for id in ENV_IDS {
            for k in [0, 1, 13, 960] {
                let mut actions = ChaCha8Rng::seed_from_u64(k as u64);
                let mut env = stepped(id, 3, k, &mut actions);
                let snapshot = env.snapshot();
                let mut restored = make(id).unwrap();
                restored.restore(&snapshot).unwrap();
                assert_eq!(restored.snapshot(), snapshot, "{id} after {k} steps");
                let diff = first_difference(&mut *env, &mut *restored, 50, &mut actions);
                assert!(diff.is_none(), "{id} after {k} steps: {diff:?}");
                assert_eq!(
                    restored.snapshot(),
                    env.snapshot(),
                    "{id} after {k}+50 steps"
                );
            }
        }
    }

    #[test]
    fn restoring_qpos_and_qvel_alone_would_not_continue_exactly() {
        // What the snapshot carries beyond them (the positions of the last mj_step's forward
        // pass, PGS's warm start) changes the first step: the test above sees such a restore.
        let mut actions = ChaCha8Rng::seed_from_u64(4);
        let mut env = stepped("Humanoid-v4", 3, 13, &mut actions);
        let mut naive = MujocoEnv::<Humanoid>::new().unwrap();
        let (qpos, qvel) = {
            let mut exact = MujocoEnv::<Humanoid>::new().unwrap();
            exact.restore(&env.snapshot()[2..]).unwrap();
            let data = exact.simulation().data();
            (data.qpos().to_vec(), data.qvel().to_vec())
        };
        naive.reset_to(&qpos, &qvel).unwrap();
        let diff = first_difference(&mut *env, &mut naive, 50, &mut actions);
        assert!(matches!(diff, Some((0, _, _))), "{diff:?}");
    }

    #[test]
    fn a_snapshot_before_the_first_reset_restores_an_unstarted_env() {
        let fresh = make("Ant-v4").unwrap().snapshot();
        let mut env = stepped("Ant-v4", 0, 5, &mut ChaCha8Rng::seed_from_u64(0));
        env.restore(&fresh).unwrap();
        assert_eq!(env.snapshot(), fresh);
        let error = env.step(&[0.0; 8]).unwrap_err().to_string();
        assert!(error.contains("before reset"), "{error}");
    }

    #[test]
    fn a_bad_snapshot_is_an_error_that_changes_nothing() {
        let mut actions = ChaCha8Rng::seed_from_u64(5);
        for id in ENV_IDS {
            let mut env = stepped(id, 1, 3, &mut actions);
            let before = env.snapshot();
            for other in ENV_IDS.into_iter().filter(|&other| other != id) {
                let snapshot = stepped(other, 1, 3, &mut actions).snapshot();
                let error = env.restore(&snapshot).unwrap_err().to_string();
                assert!(
                    error.contains(&format!("{id}: the snapshot is of {other}")),
                    "{error}"
                );
            }
            let mut bad = |edit: &dyn Fn(&mut Vec<f64>), expected: &str| {
                let mut snapshot = before.clone();
                edit(&mut snapshot);
                let error = format!("{:#}", env.restore(&snapshot).unwrap_err());
                assert!(error.contains(expected), "{id}: {error}");
            };
            bad(&|s| s.truncate(s.len() - 1), "values, not");
            bad(&|s| s.push(0.0), "values, not");
            bad(&|s| s.truncate(1), "but it has 1 values");
            bad(&|s| s[0] = 500.0, "time limit is 500, not 1000");
            bad(&|s| s[1] = 2.5, "elapsed steps are a count, not 2.5");
            bad(&|s| s[3] = 2.0, "started flag is 0 or 1, not 2");
            bad(
                &|s| s[4] = 0.5,
                "starts with 0 (reset) or 1 (stepped), not 0.5",
            );
            bad(&|s| *s.last_mut().unwrap() = f64::NAN, "not finite");
            bad(&|s| s[2] = f64::INFINITY, "tag");
            assert_eq!(env.snapshot(), before, "{id}");
        }
    }
}
