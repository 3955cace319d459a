//! `[rl]`: the environment and the on-policy algorithm of a reinforcement-learning task
//! (`data.kind = "environment"`). Defaults are Tianshou's MuJoCo examples as the PISA code
//! runs them (`Tracy-Wang7/PISA`, `RL/mujoco_ppo_SPiAM.py` and `RL/mujoco_a2c_SPiAM.py`,
//! on `examples/mujoco/mujoco_{ppo,a2c}.py` of `thu-ml/tianshou`): keys the two algorithms
//! set differently default by `algorithm`.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Proximal policy optimisation, clipped surrogate (Tianshou's `PPOPolicy`).
    Ppo,
    /// Advantage actor-critic (Tianshou's `A2CPolicy`).
    A2c,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlSpec {
    /// The gymnasium id (`"HalfCheetah-v4"`; `pisa list environments`).
    pub env: String,
    #[serde(default = "ppo")]
    pub algorithm: Algorithm,
    /// Training environments stepped together (`--training-num`: PPO 8, A2C 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_envs: Option<usize>,
    /// Test environments, one episode each per evaluation (`--test-num` 10).
    #[serde(default = "ten")]
    pub test_envs: usize,
    /// Transitions per collect, over all training environments (`--step-per-collect`:
    /// PPO 2048, A2C 80); a multiple of `train_envs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_per_collect: Option<usize>,
    /// Passes over each collect (`--repeat-per-collect`: PPO 10, A2C 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<usize>,
    /// An epoch is ⌈step_per_epoch / step_per_collect⌉ collects (`--step-per-epoch`
    /// 30,000), Tianshou's test interval.
    #[serde(default = "step_per_epoch")]
    pub step_per_epoch: usize,
    /// Hidden widths of the actor's and the critic's MLPs (`--hidden-sizes` [64, 64]).
    #[serde(default = "hidden")]
    pub hidden: Vec<i64>,
    /// γ (`--gamma` 0.99).
    #[serde(default = "gamma")]
    pub gamma: f64,
    /// λ of GAE (`--gae-lambda` 0.95).
    #[serde(default = "gae_lambda")]
    pub gae_lambda: f64,
    /// The value loss's weight (`--vf-coef`: PPO 0.25, A2C 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vf_coef: Option<f64>,
    /// The entropy bonus's weight (`--ent-coef`: PPO 0, A2C 0.01).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ent_coef: Option<f64>,
    /// PPO's ε of the clipped ratio (`--eps-clip` 0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps_clip: Option<f64>,
    /// PPO: advantages recomputed with the current critic before every repeat but the
    /// first (`--recompute-adv` 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recompute_advantage: Option<bool>,
    /// PPO: advantages normalised per mini-batch (`--norm-adv` 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advantage_norm: Option<bool>,
    /// Returns divided by the running standard deviation of past returns, the critic's
    /// target (`--rew-norm` 1).
    #[serde(default = "yes")]
    pub reward_norm: bool,
    /// Observations normalised by running statistics of the training environments'
    /// observations (`obs_norm=True`).
    #[serde(default = "yes")]
    pub obs_norm: bool,
    /// The step size decays linearly to 0 over the run's collects, constant within one
    /// (`--lr-decay` 1); it multiplies `[schedule]`.
    #[serde(default = "yes")]
    pub lr_decay: bool,
    /// Test with the policy's mean action instead of a sample (Tianshou's
    /// `deterministic_eval`, false in the scripts).
    #[serde(default)]
    pub deterministic_eval: bool,
    /// The ADMM family (sisa, pisa, nsisa) starts afresh at every collect (π_i = 0,
    /// w_i = w, second moments 0), as the PISA code's `learn` rebuilds it; false keeps the
    /// state across collects. Other optimizers always keep theirs, as Tianshou's do.
    #[serde(default = "yes")]
    pub restart_admm: bool,
}

impl RlSpec {
    fn is_ppo(&self) -> bool {
        self.algorithm == Algorithm::Ppo
    }

    /// Every default written out.
    pub fn resolved(&self) -> RlSpec {
        let ppo = self.is_ppo();
        let pick =
            |given: Option<f64>, p: f64, a: f64| Some(given.unwrap_or(if ppo { p } else { a }));
        let count = |given: Option<usize>, p: usize, a: usize| {
            Some(given.unwrap_or(if ppo { p } else { a }))
        };
        RlSpec {
            train_envs: count(self.train_envs, 8, 16),
            step_per_collect: count(self.step_per_collect, 2048, 80),
            repeat: count(self.repeat, 10, 1),
            vf_coef: pick(self.vf_coef, 0.25, 0.5),
            ent_coef: pick(self.ent_coef, 0.0, 0.01),
            eps_clip: ppo.then(|| self.eps_clip.unwrap_or(0.2)),
            recompute_advantage: ppo.then(|| self.recompute_advantage.unwrap_or(true)),
            advantage_norm: ppo.then(|| self.advantage_norm.unwrap_or(false)),
            ..self.clone()
        }
    }

    /// Checks what serde cannot; the offending key (under `rl.`) and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, msg: String| Err((format!("rl.{key}"), msg));
        if !crate::rl::ENV_IDS.contains(&self.env.as_str()) {
            return bad(
                "env",
                format!(
                    "unknown environment {:?}: the environments are {}",
                    self.env,
                    crate::rl::ENV_IDS.join(", ")
                ),
            );
        }
        if !self.is_ppo() {
            for (key, given) in [
                ("eps_clip", self.eps_clip.is_some()),
                ("recompute_advantage", self.recompute_advantage.is_some()),
                ("advantage_norm", self.advantage_norm.is_some()),
            ] {
                if given {
                    return bad(key, format!("{key} is PPO's: algorithm = \"ppo\""));
                }
            }
        }
        let r = self.resolved();
        let envs = r.train_envs.unwrap_or(0);
        for (key, value) in [
            ("train_envs", envs),
            ("test_envs", r.test_envs),
            ("repeat", r.repeat.unwrap_or(0)),
            ("step_per_epoch", r.step_per_epoch),
        ] {
            if value == 0 {
                return bad(key, format!("{key} must be at least 1"));
            }
        }
        let collect = r.step_per_collect.unwrap_or(0);
        if collect == 0 || !collect.is_multiple_of(envs) {
            return bad(
                "step_per_collect",
                format!(
                    "step_per_collect = {collect} must be a positive multiple of train_envs = {envs}: \
                     a collect steps every training environment alike"
                ),
            );
        }
        if self.hidden.is_empty() || self.hidden.iter().any(|&h| h < 1) {
            return bad(
                "hidden",
                "hidden widths must be at least 1, and one at least".into(),
            );
        }
        for (key, value, max) in [("gamma", r.gamma, 1.0), ("gae_lambda", r.gae_lambda, 1.0)] {
            if !(0.0..=max).contains(&value) {
                return bad(key, format!("{key} must be in [0, 1], not {value}"));
            }
        }
        for (key, value) in [
            ("vf_coef", r.vf_coef),
            ("ent_coef", r.ent_coef),
            ("eps_clip", r.eps_clip),
        ] {
            if value.is_some_and(|v| !(v >= 0.0 && v.is_finite())) {
                return bad(key, format!("{key} must be a finite number ≥ 0"));
            }
        }
        Ok(())
    }
}

fn ppo() -> Algorithm {
    Algorithm::Ppo
}
fn ten() -> usize {
    10
}
fn step_per_epoch() -> usize {
    30_000
}
fn hidden() -> Vec<i64> {
    vec![64, 64]
}
fn gamma() -> f64 {
    0.99
}
fn gae_lambda() -> f64 {
    0.95
}
fn yes() -> bool {
    true
}
