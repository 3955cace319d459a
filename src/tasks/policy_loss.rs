//! The actor-critic losses of Tianshou's `PPOPolicy.learn` and `A2CPolicy.learn` on one
//! mini-batch: the policy's term, the critic's squared error weighted by `vf_coef`, and
//! the entropy bonus weighted by `ent_coef`.
use crate::models::actor_critic::{entropy, log_prob, Params};
use crate::spec::{Algorithm, RlSpec};
use anyhow::{Context, Result};
use tch::Tensor;

/// `PGPolicy._eps`, added to the advantages' standard deviation when PPO normalises them.
const ADV_EPS: f64 = 1e-8;

/// Transitions as the losses read them: observations [B, obs], raw actions [B, act],
/// log π_old(a|s), advantages and the critic's targets [B].
pub struct MiniBatch {
    pub obs: Tensor,
    pub act: Tensor,
    pub logp_old: Tensor,
    pub adv: Tensor,
    pub returns: Tensor,
}

impl MiniBatch {
    /// The transitions at `index` (an int64 tensor of rows).
    pub fn rows(&self, index: &Tensor) -> MiniBatch {
        let take = |t: &Tensor| t.index_select(0, index);
        MiniBatch {
            obs: take(&self.obs),
            act: take(&self.act),
            logp_old: take(&self.logp_old),
            adv: take(&self.adv),
            returns: take(&self.returns),
        }
    }
}

pub struct Objective {
    algorithm: Algorithm,
    /// PPO's ε, and whether it normalises each mini-batch's advantages.
    eps_clip: f64,
    advantage_norm: bool,
    vf_coef: f64,
    ent_coef: f64,
}

impl Objective {
    /// The losses of a resolved `[rl]` table.
    pub fn of(rl: &RlSpec) -> Result<Self> {
        Ok(Self {
            algorithm: rl.algorithm,
            eps_clip: rl.eps_clip.unwrap_or(0.0),
            advantage_norm: rl.advantage_norm == Some(true),
            vf_coef: rl.vf_coef.context("resolved")?,
            ent_coef: rl.ent_coef.context("resolved")?,
        })
    }

    /// The loss at `params` on `batch`, and its parts (policy loss, value loss, entropy).
    pub fn loss(&self, params: &Params, batch: &MiniBatch) -> (Tensor, [Tensor; 3]) {
        let (mu, sigma) = params.policy(&batch.obs);
        let logp = log_prob(&mu, &sigma, &batch.act);
        let adv = &batch.adv;
        let policy = match self.algorithm {
            Algorithm::Ppo => {
                let adv = if self.advantage_norm {
                    (adv - adv.mean(None)) / (adv.std(true) + ADV_EPS)
                } else {
                    adv.shallow_clone()
                };
                // the clipped surrogate: −mean min(r·A, clip(r, 1 − ε, 1 + ε)·A)
                let ratio = (logp - &batch.logp_old).exp();
                let surr1 = &ratio * &adv;
                let surr2 = ratio.clamp(1.0 - self.eps_clip, 1.0 + self.eps_clip) * &adv;
                -surr1.minimum(&surr2).mean(None)
            }
            Algorithm::A2c => -(logp * adv).mean(None),
        };
        let value = (&batch.returns - params.value(&batch.obs))
            .square()
            .mean(None);
        let ent = entropy(&sigma).mean(None);
        let loss = &policy + &value * self.vf_coef - &ent * self.ent_coef;
        (loss, [policy, value, ent])
    }
}
