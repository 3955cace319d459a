//! The baselines the paper compares against: classic optimizers that take one step per
//! iteration from the size-weighted mean of the workers' gradients, so m workers with
//! sub-batches of b equal one worker with a batch of m·b. Each lives in its own file as a
//! [`Step`] on the flat parameter buffer; [`Classic`] adapts it to [`Optimizer`].
pub mod adabelief;
pub mod adabound;
pub mod adadelta;
pub mod adagrad;
pub mod adam;
pub mod adam_mini;
pub mod adamax;
pub mod adamw;
pub mod adan;
pub mod amsgrad;
pub mod fromage;
pub mod lamb;
pub mod lars;
pub mod layerwise;
pub mod lookahead;
pub mod msvag;
pub mod muon;
pub mod nadam;
pub mod padam;
pub mod per_matrix;
pub mod radam;
pub mod rmsprop;
pub mod sgd;
pub mod shampoo;
pub mod soap;
pub mod yogi;

use super::registry::{Context, Entry};
use super::Optimizer;
use crate::schedule::Schedule;
use crate::tasks::Local;
use anyhow::{ensure, Result};
use std::collections::HashMap;
use tch::Tensor;

pub const ENTRIES: &[&Entry] = &[
    &sgd::ENTRY,
    &adam::ENTRY,
    &adamw::ENTRY,
    &amsgrad::ENTRY,
    &nadam::ENTRY,
    &radam::ENTRY,
    &adamax::ENTRY,
    &adagrad::ENTRY,
    &rmsprop::ENTRY,
    &adadelta::ENTRY,
    &muon::ENTRY,
    &adabound::ENTRY,
    &adabelief::ENTRY,
    &yogi::ENTRY,
    &msvag::ENTRY,
    &padam::ENTRY,
    &lamb::ENTRY,
    &lars::ENTRY,
    &adan::ENTRY,
    &fromage::ENTRY,
    &lookahead::ENTRY,
    &shampoo::ENTRY,
    &soap::ENTRY,
    &adam_mini::ENTRY,
];

/// One update rule on the flat parameters.
pub trait Step: Send {
    /// Updates `w` in place from the mean gradient `grad` (which it may overwrite) at
    /// step `t` (1-based) with learning rate `lr` (already scheduled).
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64);
    /// Named state tensors, sharing storage with the optimizer's own (for checkpoints
    /// and memory reports). Everything the next step depends on besides `t` must be here,
    /// scalars as 0-d tensors.
    fn state(&self) -> Vec<(String, Tensor)>;
}

/// A [`Step`] driven by the one loop: it sums the workers' gradients weighted by their
/// sample counts and steps once per iteration.
pub struct Classic {
    w: Tensor,
    /// Σ_i (|B_i|/|B_1|) g_i over this iteration's workers so far: the first worker's own
    /// gradient buffer, taken as it is, the others added in (so one worker costs no pass).
    grad: Tensor,
    /// |B_1|, the first worker's samples.
    first: usize,
    samples: usize,
    lr: f64,
    schedule: Schedule,
    iteration: usize,
    step: Box<dyn Step>,
}

impl Classic {
    pub fn new(context: &Context, lr: f64, step: impl Step + 'static) -> Self {
        Self {
            w: context.w0.copy(),
            grad: context.w0.zeros_like(),
            first: 0,
            samples: 0,
            lr,
            schedule: context.schedule.clone(),
            iteration: 0,
            step: Box::new(step),
        }
    }

    pub fn boxed(
        context: &Context,
        lr: f64,
        step: impl Step + 'static,
    ) -> Result<Box<dyn Optimizer>> {
        Ok(Box::new(Self::new(context, lr, step)))
    }
}

impl Optimizer for Classic {
    fn params(&self) -> &Tensor {
        &self.w
    }

    fn begin_iteration(&mut self) {
        self.samples = 0;
    }

    fn needs_hessian(&self) -> bool {
        false
    }

    fn local_update(&mut self, _worker: usize, local: Local) -> Result<()> {
        ensure!(
            local.samples > 0,
            "a worker reported a gradient of 0 samples"
        );
        ensure!(
            local.grad.size() == self.w.size() && local.grad.kind() == self.w.kind(),
            "a worker's gradient is {:?} {:?}, the parameters {:?} {:?}",
            local.grad.size(),
            local.grad.kind(),
            self.w.size(),
            self.w.kind()
        );
        if self.samples == 0 {
            // the first worker's buffer is the sum so far (`Local`'s contract: ours to
            // work in), with no pass over it
            self.grad = local.grad.contiguous();
            self.first = local.samples;
        } else {
            let weight = super::scalar(local.samples as f64 / self.first as f64, &self.w);
            let _ = self.grad.addcmul_(&local.grad, &weight);
        }
        self.samples += local.samples;
        Ok(())
    }

    /// Σ|B_i| g_i and Σ|B_i| over the ranks' workers (each rank's in worker order, then
    /// MPI's sum of the ranks' partial sums), then one step on the weighted mean; in one
    /// process the mean is Σ_i (|B_i|/|B_1|) g_i · |B_1|/Σ|B_i|, no pass when that factor
    /// is 1 (one worker, as torch.optim's loop).
    fn end_iteration(&mut self) {
        let scale = match crate::dist::distributed() {
            true => {
                let _ = self.grad.g_mul_scalar_(self.first as f64);
                crate::dist::sum(&self.grad);
                1.0 / crate::dist::sum_scalar(self.samples as f64)
            }
            false => self.first as f64 / self.samples as f64,
        };
        if scale != 1.0 {
            let _ = self.grad.g_mul_scalar_(scale);
        }
        let lr = self.lr * self.schedule.factor(self.iteration);
        self.iteration += 1;
        self.step
            .step(&mut self.w, &mut self.grad, self.iteration as i64, lr);
    }

    fn splits_over_ranks(&self) -> bool {
        true
    }

    /// The learning rate of the step just taken.
    fn step_sizes(&self) -> Vec<(&'static str, f64)> {
        let last = self.iteration.saturating_sub(1);
        vec![("lr", self.lr * self.schedule.factor(last))]
    }

    fn state_numel(&self) -> i64 {
        self.step
            .state()
            .iter()
            .map(|(_, t)| t.numel() as i64)
            .sum()
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = vec![
            ("w".to_string(), self.w.shallow_clone()),
            ("iteration".to_string(), super::counter(self.iteration)),
        ];
        state.extend(
            self.step
                .state()
                .into_iter()
                .map(|(name, t)| (format!("step.{name}"), t)),
        );
        state
    }

    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        let live: Vec<(String, Tensor)> = self
            .state()
            .into_iter()
            .filter(|(name, _)| name != "iteration")
            .collect();
        super::copy_state(&live, saved)?;
        self.iteration = super::read_counter(saved, "iteration")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
