//! The optimizer interface every task trains through, and the registry that builds
//! one from `[optimizer]`.
pub mod admm;

use crate::schedule::SigmaSchedule;
use crate::spec::{OptimizerName, OptimizerSpec, Precondition, DEFAULT_BETA, DEFAULT_ETA};
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

/// Builds the optimizer `spec` names for a model starting at `w0` with worker weights `alphas`.
pub fn build(spec: &OptimizerSpec, w0: &Tensor, alphas: &[f64]) -> Box<dyn Optimizer> {
    use admm::precondition::{Hessian, Identity, SecondMoment};
    let spec = spec.resolved();
    let precondition: Box<dyn admm::precondition::Precondition> = match spec.name {
        OptimizerName::Pisa => match spec.precondition.unwrap_or(Precondition::Identity) {
            Precondition::Identity => Box::new(Identity),
            Precondition::Hessian => Box::new(Hessian),
        },
        OptimizerName::Sisa => Box::new(SecondMoment::new(
            spec.scheme.expect("validated: sisa has a scheme"),
            spec.beta.unwrap_or(DEFAULT_BETA),
            spec.eta.unwrap_or(DEFAULT_ETA),
            alphas.len(),
            w0,
        )),
    };
    let hyper = admm::Hyper {
        sigma0: spec.sigma0,
        rho: spec.rho,
        lambda: spec.lambda,
        mu: spec.mu,
        schedule: SigmaSchedule::new(spec.gamma, spec.k0_value()),
    };
    Box::new(admm::Admm::new(w0, alphas, hyper, precondition))
}
