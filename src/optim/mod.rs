//! The optimizer interface every task trains through, and the registry that builds
//! one from `[optimizer]`.
pub mod admm;
pub mod baselines;
pub mod decentralised;
pub mod federated;
pub mod fused;
pub mod hyper;
pub mod layout;
pub mod newton_schulz;
pub mod registry;
pub mod team;

use crate::tasks::Local;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use tch::Tensor;

/// One iteration ℓ: `begin_iteration`, then `local_update` for each worker i with its
/// gradient at `params()`, then `end_iteration`.
pub trait Optimizer: Send {
    /// The global point the workers compute their gradients at (flat).
    fn params(&self) -> &Tensor;
    fn begin_iteration(&mut self);
    /// Whether workers must also report their batch Hessian (4.1).
    fn needs_hessian(&self) -> bool;
    /// Consumes the worker's gradient: an optimizer may reuse its buffer.
    fn local_update(&mut self, worker: usize, local: Local) -> Result<()>;
    /// Worker `worker`'s part of an iteration, given its gradient oracle (its mini-batch
    /// gradient at any point). By default one gradient at the global point, handed to
    /// `local_update`; federated algorithms take several local steps here.
    fn local_round(
        &mut self,
        worker: usize,
        oracle: &mut dyn FnMut(&Tensor) -> Result<Local>,
    ) -> Result<()> {
        let w = self.params().shallow_clone();
        let local = oracle(&w)?;
        self.local_update(worker, local)
    }
    fn end_iteration(&mut self);
    /// After `end_iteration`: completes the iteration's step and forgets the state the
    /// workers built: the ADMM family forms w by (2.9), then sets π_i = 0 (so w_i = w) and
    /// its preconditioners' moments to 0, as the PISA RL code rebuilds them at every collect
    /// ([`crate::tasks::Task::restarts`]). Other optimizers keep theirs, as Tianshou's do.
    fn restart(&mut self) {}
    /// Number of values of optimizer state (excluding the parameters themselves).
    fn state_numel(&self) -> i64;
    /// Everything a checkpoint needs to continue the run, as named tensors sharing storage
    /// with the live state where they can (counters as 0-d tensors).
    fn state(&self) -> Vec<(String, Tensor)> {
        vec![]
    }
    /// Restores what `state` saved, for the same optimizer, hyperparameters and shapes.
    fn load_state(&mut self, _saved: &HashMap<String, Tensor>) -> Result<()> {
        bail!("this optimizer cannot resume from a checkpoint")
    }
    /// What to try when the iterates stop being finite, from what the optimizer knows of
    /// the cause.
    fn divergence_advice(&self) -> String {
        "lower the learning rate".into()
    }
    /// Floats sent (up to the server, down to the workers) since the run began, for the
    /// optimizers that run as a server and clients (the federated algorithms and the ADMM
    /// family); None for the others.
    fn communication(&self) -> Option<(u64, u64)> {
        None
    }
    /// The step sizes in force for the iteration just run, as named values (`lr`; `sigma`
    /// and `rho` for the ADMM family). The names never change during a run.
    fn step_sizes(&self) -> Vec<(&'static str, f64)> {
        vec![]
    }
    /// Whether it runs with its workers split over ranks ([`crate::dist`]): the ranks
    /// reduce what it sums over the workers, and each keeps only its own workers' state.
    fn splits_over_ranks(&self) -> bool {
        false
    }
    /// Other values the optimizer measures for each metrics row (a protocol's stationary
    /// distance), after the communication counts. The names never change during a run.
    fn diagnostics(&self) -> Vec<(&'static str, f64)> {
        vec![]
    }
}

/// v as a 0-d tensor of `like`'s dtype and device: the scalar factor of `addcmul_`,
/// `addcdiv_` and `mul_out`, whose tch bindings take no `value`/`alpha` (and tch's
/// `*_scalar_out` are libtorch composites that allocate a temporary and copy it).
/// A value beyond f32's range becomes ±inf (or 0), as a cast would round it, rather than
/// libtorch's overflow error: the run then stops as diverged, with the cause.
pub fn scalar(v: f64, like: &Tensor) -> Tensor {
    let v = match like.kind() {
        tch::Kind::Float => v as f32 as f64,
        _ => v,
    };
    Tensor::full([], v, (like.kind(), like.device()))
}

/// What an optimizer reports beside the task's metrics in `metrics.csv`: its step sizes,
/// then `floats_up` and `floats_down` where it counts communication, then its diagnostics.
pub fn report(optimizer: &dyn Optimizer) -> Vec<(&'static str, f64)> {
    let mut values = optimizer.step_sizes();
    if let Some((up, down)) = optimizer.communication() {
        values.push(("floats_up", up as f64));
        values.push(("floats_down", down as f64));
    }
    values.extend(optimizer.diagnostics());
    values
}

/// Copies each saved tensor into the live tensor of the same name (shapes must agree).
pub fn copy_state(live: &[(String, Tensor)], saved: &HashMap<String, Tensor>) -> Result<()> {
    for (name, tensor) in live {
        let from = saved
            .get(name)
            .with_context(|| format!("the checkpoint has no {name}"))?;
        if from.size() != tensor.size() {
            bail!(
                "checkpoint {name} has shape {:?}, the run expects {:?}",
                from.size(),
                tensor.size()
            );
        }
        tch::no_grad(|| tensor.shallow_clone().copy_(from));
    }
    Ok(())
}

/// A counter as a 0-d tensor for checkpoints, and back.
pub fn counter(value: usize) -> Tensor {
    Tensor::from(value as i64)
}

pub fn read_counter(saved: &HashMap<String, Tensor>, name: &str) -> Result<usize> {
    let t = saved
        .get(name)
        .with_context(|| format!("the checkpoint has no {name}"))?;
    Ok(t.int64_value(&[]) as usize)
}
