//! The optimizers of a task's players ([`crate::tasks::Player`]): one per player, each on
//! its own part of w. A task with one player (every task but the GAN) has a team of one,
//! whose point is its optimizer's w, untouched; with several, the team keeps the whole
//! point w and copies a player's part into it after each of its steps.
use super::Optimizer;
use crate::tasks::Player;
use anyhow::Result;
use std::collections::HashMap;
use tch::Tensor;

/// A player and the optimizer that trains it.
pub struct Member {
    pub player: Player,
    pub optimizer: Box<dyn Optimizer>,
}

pub struct Team {
    members: Vec<Member>,
    /// The whole point w (all players' parameters); None for a team of one.
    point: Option<Tensor>,
}

impl Team {
    /// The members in the task's order of players (their parts of w in order).
    pub fn new(members: Vec<Member>) -> Self {
        let point = (members.len() > 1).then(|| {
            let parts: Vec<&Tensor> = members.iter().map(|m| m.optimizer.params()).collect();
            Tensor::cat(&parts, 0)
        });
        Self { members, point }
    }

    /// The whole current point w, every player's parameters.
    pub fn point(&self) -> &Tensor {
        match &self.point {
            Some(w) => w,
            None => self.members[0].optimizer.params(),
        }
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Player `player`'s optimizer.
    pub fn optimizer(&mut self, player: usize) -> &mut dyn Optimizer {
        self.members[player].optimizer.as_mut()
    }

    /// Starts player `player`'s turn: its optimizer's `begin_iteration` (the ADMM family
    /// forms w^{ℓ+1} there, (2.9)), then its constraint, so the workers' gradients are taken
    /// at the constrained point.
    pub fn begin(&mut self, player: usize) {
        self.members[player].optimizer.begin_iteration();
        self.settle(player);
    }

    /// Restarts player `player`'s optimizer ([`Optimizer::restart`]) and copies its point
    /// into w.
    pub fn restart(&mut self, player: usize) {
        self.members[player].optimizer.restart();
        self.settle(player);
    }

    /// Ends player `player`'s turn: its optimizer's `end_iteration` (the classic ones step
    /// there), its constraint, and its part of the whole point.
    pub fn end(&mut self, player: usize) {
        self.members[player].optimizer.end_iteration();
        self.settle(player);
    }

    /// Applies the player's constraint to its parameters and copies them into w.
    fn settle(&mut self, player: usize) {
        let Member { player, optimizer } = &self.members[player];
        let params = optimizer.params();
        tch::no_grad(|| {
            if let Some(c) = player.clamp {
                let _ = params.shallow_clone().clamp_(-c, c);
            }
            if let Some(w) = &self.point {
                w.narrow(0, player.offset, params.numel() as i64)
                    .copy_(params);
            }
        });
    }

    /// The optimizers' step sizes and communication, as metrics columns: under their own
    /// names for a team of one, prefixed by the player's name (`critic_lr`) otherwise.
    pub fn report(&self) -> Vec<(String, f64)> {
        self.members
            .iter()
            .flat_map(|m| {
                super::report(m.optimizer.as_ref())
                    .into_iter()
                    .map(|(name, v)| (prefixed(m.player.name, name, "_"), v))
            })
            .collect()
    }

    /// Values of optimizer state, all players together.
    pub fn state_numel(&self) -> i64 {
        self.members.iter().map(|m| m.optimizer.state_numel()).sum()
    }

    /// The optimizers' checkpoint state, each name prefixed by its player's (`critic.`).
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.members
            .iter()
            .flat_map(|m| {
                m.optimizer
                    .state()
                    .into_iter()
                    .map(|(name, t)| (prefixed(m.player.name, &name, "."), t))
            })
            .collect()
    }

    /// Restores what [`Team::state`] saved, then the whole point from the players' parts.
    pub fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        for m in self.members.iter_mut() {
            let name = m.player.name;
            if name.is_empty() {
                m.optimizer.load_state(saved)?;
                continue;
            }
            let own: HashMap<String, Tensor> = saved
                .iter()
                .filter_map(|(k, t)| {
                    let rest = k.strip_prefix(name)?.strip_prefix('.')?;
                    Some((rest.to_string(), t.shallow_clone()))
                })
                .collect();
            m.optimizer
                .load_state(&own)
                .map_err(|e| e.context(format!("the {name}'s optimizer")))?;
        }
        for player in 0..self.members.len() {
            self.settle(player);
        }
        Ok(())
    }

    /// What to try when the point stops being finite: each optimizer's advice.
    pub fn divergence_advice(&self) -> String {
        match self.members.as_slice() {
            [only] => only.optimizer.divergence_advice(),
            all => all
                .iter()
                .map(|m| format!("{}: {}", m.player.name, m.optimizer.divergence_advice()))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

/// `name` under a player's prefix (`critic` + `_` + `lr`), or alone for the only player.
fn prefixed(player: &str, name: &str, separator: &str) -> String {
    match player {
        "" => name.to_string(),
        _ => format!("{player}{separator}{name}"),
    }
}
