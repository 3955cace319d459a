//! The optimizer interface every task trains through, and the registry that builds
//! one from `[optimizer]`.
pub mod admm;
pub mod baselines;
pub mod hyper;
pub mod layout;
pub mod registry;

use crate::tasks::Local;
use anyhow::Result;
use tch::Tensor;

/// One iteration ℓ: `begin_iteration`, then `local_update` for each worker i with its
/// gradient at `params()`, then `end_iteration`.
pub trait Optimizer: Send {
    /// The global point the workers compute their gradients at (flat).
    fn params(&self) -> &Tensor;
    fn begin_iteration(&mut self);
    /// Whether workers must also report their batch Hessian (4.1).
    fn needs_hessian(&self) -> bool;
    fn local_update(&mut self, worker: usize, local: &Local) -> Result<()>;
    fn end_iteration(&mut self);
    /// Number of values of optimizer state (excluding the parameters themselves).
    fn state_numel(&self) -> i64;
}

