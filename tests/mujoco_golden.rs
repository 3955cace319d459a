//! pisa's MuJoCo environments (src/rl/) against gymnasium 1.4.0 on MuJoCo 3.17.0: the
//! episodes in tests/data/mujoco/<id>.json, written by scripts/mujoco_golden.py, replayed
//! step by step. Python is not needed; the model XMLs come from the gymnasium wheel in the
//! venv (scripts/env.sh).
//!
//! pisa draws reset noise from its own ChaCha8 stream, which cannot reproduce numpy's draws,
//! so each episode starts with `reset_to` from the state (qpos, qvel) gymnasium's
//! `reset(seed)` produced, as the script recorded it; the first observation is compared
//! too. Then every step's observation, reward and `info` must agree within 1e-8 (relative
//! to the value's size where that exceeds 1) and `terminated`/`truncated` exactly.
//!
//! Measured (largest scaled error over all values compared): HalfCheetah and
//! InvertedDoublePendulum agree bit for bit, Ant to 3.2e-16 and Humanoid to 1.8e-16 (both
//! in a reward: numpy sums in another order).
//!
//! The floats must be parsed exactly, hence serde_json's `float_roundtrip` (a
//! dev-dependency feature): its default parser can be an ulp off, and an ulp in the initial
//! state or an action grows with the steps. Read with the default parser, the same episodes
//! drifted: HalfCheetah to 3.0e-8 by step 45 (seed 0, the last joint's velocity: a failure),
//! Ant to 4.3e-9, InvertedDoublePendulum to 5.2e-10, Humanoid to 8.6e-13. HalfCheetah's
//! drift came from reading the goldens, not from the physics.
use pisa::rl::{make, MAX_EPISODE_STEPS};
use serde::Deserialize;
use std::collections::BTreeMap;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/mujoco");
const TOLERANCE: f64 = 1e-8;

#[derive(Deserialize)]
struct Golden {
    observation_dim: usize,
    action_low: Vec<f64>,
    action_high: Vec<f64>,
    max_episode_steps: usize,
    episodes: Vec<Episode>,
}

#[derive(Deserialize)]
struct Episode {
    seed: u64,
    qpos: Vec<f64>,
    qvel: Vec<f64>,
    observation: Vec<f64>,
    steps: Vec<GoldenStep>,
}

#[derive(Deserialize)]
struct GoldenStep {
    action: Vec<f64>,
    observation: Vec<f64>,
    reward: f64,
    terminated: bool,
    truncated: bool,
    info: BTreeMap<String, f64>,
}

/// The largest error seen, scaled as the tolerance is: |a − b| / max(1, |b|).
#[derive(Default)]
struct MaxError {
    error: f64,
    at: String,
}

impl MaxError {
    fn check(&mut self, what: &str, got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{what}: lengths differ");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            let error = (a - b).abs() / b.abs().max(1.0);
            assert!(
                error <= TOLERANCE,
                "{what}[{i}]: pisa {a:e}, gymnasium {b:e} (scaled error {error:e})"
            );
            if error > self.error {
                self.error = error;
                self.at = format!("{what}[{i}]");
            }
        }
    }
}

fn replay(id: &str) {
    let path = format!("{DATA}/{id}.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let golden: Golden = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut env = make(id).unwrap();
    assert_eq!(env.id(), id);
    assert_eq!(env.observation_dim(), golden.observation_dim);
    assert_eq!(golden.max_episode_steps, MAX_EPISODE_STEPS);
    let (low, high): (Vec<f64>, Vec<f64>) = env.action_bounds().iter().copied().unzip();
    assert_eq!((low, high), (golden.action_low, golden.action_high));

    let mut max = MaxError::default();
    for episode in &golden.episodes {
        let seed = episode.seed;
        let first = env.reset_to(&episode.qpos, &episode.qvel).unwrap();
        max.check(&format!("seed {seed} reset"), &first, &episode.observation);
        for (t, want) in episode.steps.iter().enumerate() {
            let what = format!("seed {seed} step {t}");
            let got = env.step(&want.action).unwrap();
            max.check(
                &format!("{what} observation"),
                &got.observation,
                &want.observation,
            );
            max.check(&format!("{what} reward"), &[got.reward], &[want.reward]);
            assert_eq!(got.terminated, want.terminated, "{what}: terminated");
            assert_eq!(got.truncated, want.truncated, "{what}: truncated");
            let keys: Vec<&str> = got.info.iter().map(|&(k, _)| k).collect();
            let mut want_keys: Vec<&str> = want.info.keys().map(String::as_str).collect();
            want_keys.sort_unstable();
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, want_keys, "{what}: info keys");
            for key in keys {
                let got = got.info(key).unwrap();
                max.check(&format!("{what} info {key}"), &[got], &[want.info[key]]);
            }
        }
    }
    match max.at.as_str() {
        "" => println!("{id}: every value bit for bit"),
        at => println!("{id}: largest scaled error {:e} at {at}", max.error),
    }
}

#[test]
fn ant_v4_matches_gymnasium() {
    replay("Ant-v4");
}

#[test]
fn humanoid_v4_matches_gymnasium() {
    replay("Humanoid-v4");
}

#[test]
fn half_cheetah_v4_matches_gymnasium() {
    replay("HalfCheetah-v4");
}

#[test]
fn inverted_double_pendulum_v4_matches_gymnasium() {
    replay("InvertedDoublePendulum-v4");
}
