//! Tasks own their data, model and loss; the training loop asks them for local
//! gradients at the broadcast point and for evaluation rows.
pub mod batches;
pub mod bptt;
pub mod classification;
pub mod decode_ahead;
pub mod from_spec;
pub mod gan;
pub mod gan_from_spec;
pub mod gpt;
pub mod gradient_penalty;
pub mod init;
pub mod language_model;
pub mod least_squares;
pub mod policy_loss;
pub mod recipes;
pub mod recipes_from_spec;
pub mod reinforcement;
pub mod rollout;
pub mod similarity;
pub mod train_loss;

use anyhow::Result;
use std::collections::HashMap;
use tch::Tensor;

/// What worker i reports for the global point: g_i = ∇H_i(w; B_i) of (2.10), and the
/// batch Hessian ∇²H_i(w; B_i) of (4.1) when the optimizer asked for it.
/// The regulariser (μ − λ)/2 ‖w‖² of F_i (2.4) is the optimizer's to add.
pub struct Local {
    pub grad: Tensor,
    /// |B_i|, the samples behind `grad`: classic optimizers weight the workers' gradients
    /// by it, so m sub-batches of b equal one batch of m·b.
    pub samples: usize,
    pub hessian: Option<Tensor>,
}

/// One party a task trains with an optimizer of its own (a GAN's critic and generator).
/// A task has one player by default, covering all of w.
pub struct Player {
    /// The `[optimizer.<name>]` table that may change `[optimizer]` for this player; ""
    /// for a task's only player.
    pub name: &'static str,
    /// Where its parameters sit in w: `offset .. offset + layout.numel()`.
    pub offset: i64,
    /// Its parameter tensors, as its optimizer sees them.
    pub layout: crate::optim::layout::Layout,
    /// α_i of its m workers (2.1).
    pub alphas: Vec<f64>,
    /// Its parameters are kept in [−c, c] after every step (WGAN's weight clipping).
    pub clamp: Option<f64>,
}

pub trait Task: Send {
    /// α_i = |D_i| / |D| for each of the m workers (2.1).
    fn alphas(&self) -> &[f64];
    /// w^0 as one flat tensor on the task's device and dtype.
    fn initial_point(&self) -> Tensor;
    /// Where each parameter tensor sits in the flat w.
    fn layout(&self) -> crate::optim::layout::Layout;
    /// The model's non-trainable tensors at the start (batch-norm running statistics) as
    /// one flat [B] tensor of w's dtype and device, and where each sits in it; an empty
    /// layout and tensor for a model without any.
    fn initial_buffers(&self) -> (crate::optim::layout::Layout, Tensor);
    /// Starts from `w0` (laid out as [`Task::layout`]) and `buffers` (as
    /// [`Task::initial_buffers`]) instead of the seeded initialisation (`train.init`).
    fn set_initial(&mut self, w0: &Tensor, buffers: &Tensor) -> Result<()>;
    /// n: iterations per epoch, the passes of the workers' batches over their blocks D_i
    /// (epoch-based schedules count in it).
    fn iterations_per_epoch(&self) -> usize;
    /// The iterations of each of the first `epochs` epochs, for a task whose epochs are
    /// not n iterations each (the language model's passes in random-length chunks); None
    /// when they are.
    fn epoch_lengths(&self, _epochs: usize) -> Option<Vec<usize>> {
        None
    }
    /// The task's step-size multiplier for each of the first `iterations` iterations (the
    /// language model's seq_len/bptt), applied on top of `[schedule]`; None = 1.
    fn step_scales(&self, _iterations: usize) -> Option<Vec<f64>> {
        None
    }
    /// Whether the optimizers restart ([`crate::optim::Optimizer::restart`]) after
    /// iteration `iteration` (the last of a reinforcement-learning collect); never by default.
    fn restarts(&self, _iteration: usize) -> bool {
        false
    }
    /// Called by the loop before the workers' gradients of iteration `iteration` (0-based).
    fn begin_iteration(&mut self, _iteration: usize) -> Result<()> {
        Ok(())
    }
    /// The players, each trained by its own optimizer on its part of w. By default one
    /// player: all of w, the task's α, no constraint.
    fn players(&self) -> Vec<Player> {
        vec![Player {
            name: "",
            offset: 0,
            layout: self.layout(),
            alphas: self.alphas().to_vec(),
            clamp: None,
        }]
    }
    /// The players that move in iteration `iteration`, in order (a GAN: the critic, then
    /// the generator every n_critic iterations); by default the only player, once.
    fn turns(&self, _iteration: usize) -> Vec<usize> {
        vec![0]
    }
    /// Called before each turn with the whole current point w (every player's
    /// parameters): `local` then gives gradients of player `player`'s loss at its own part.
    fn begin_turn(&mut self, _player: usize, _w: &Tensor) -> Result<()> {
        Ok(())
    }
    /// Draws worker `worker`'s mini-batch B_i and returns its gradient (and Hessian) at
    /// `w`, the moving player's parameters.
    fn local(&mut self, worker: usize, w: &Tensor, hessian: bool) -> Result<Local>;
    /// Names of the columns `evaluate` returns, written after `iteration` in metrics.csv.
    fn metric_names(&self) -> &'static [&'static str];
    /// The metrics of the global point `w` (all players' parameters); a non-finite value stops the run as diverged,
    /// but for the [`Task::occasional_metrics`].
    fn evaluate(&self, w: &Tensor) -> Result<Vec<f64>>;
    /// Whether its m workers may be split over ranks ([`crate::dist`]): each worker's
    /// state is its own (its sampler, its rows of buffers) or the same on every rank (a
    /// chained state replayed by [`crate::dist::Chain`], RL's collect), it is the same on
    /// every rank before training, and `evaluate` reads the other ranks' workers only
    /// through [`Task::sum_row_over_ranks`].
    fn splits_over_ranks(&self) -> bool {
        false
    }
    /// Called on every rank before a metrics row (rank 0 alone then calls `evaluate`):
    /// sums over the ranks what the row reports of all m workers but each rank holds for
    /// its own (the language models' training loss and tokens). Nothing in one process.
    fn sum_row_over_ranks(&mut self) -> Result<()> {
        Ok(())
    }
    /// Metrics measured on some rows only (the recipes' `similarity`, at the epochs
    /// `[similarity]` lists), NaN on the others.
    fn occasional_metrics(&self) -> &'static [&'static str] {
        &[]
    }
    /// Files the task writes into the run folder when the run ends, made from the final
    /// point `w` (the GAN's grid of samples); none by default.
    fn outputs(&self, _w: &Tensor) -> Result<Vec<(&'static str, Vec<u8>)>> {
        Ok(vec![])
    }
    /// What a checkpoint must hold besides w to continue the run exactly: the
    /// workers' sampling state (and any model buffers).
    fn state(&self) -> Vec<(String, Tensor)>;
    /// Restores what `state` saved, on a task built from the same spec.
    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()>;
}
