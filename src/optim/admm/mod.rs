//! The inexact stochastic ADMM of Algorithm 1, generic over tensors and preconditioners:
//! PISA (Q = I or the Hessian (4.1)) and SISA (Q from the second moment (4.2)).
//!
//! State is lean: the global point w, the duals π_i stacked in one [m, P] buffer, the
//! preconditioner's state, and the running sum Σα_i(σ_i w_i + π_i) from which the next
//! global point follows by (2.9). No local point w_i is stored.
pub mod precondition;

use crate::optim::Optimizer;
use crate::schedule::SigmaSchedule;
use crate::tasks::Local;
use anyhow::Result;
use precondition::Precondition;
use tch::Tensor;

/// Scalars of Algorithm 1, the same for every worker (σ_i^0 = σ^0, γ_i = γ, ρ_i = ρ as in
/// all the paper's experiments).
#[derive(Debug, Clone, Copy)]
pub struct Hyper {
    pub sigma0: f64,
    pub rho: f64,
    pub lambda: f64,
    pub mu: f64,
    pub schedule: SigmaSchedule,
}

pub struct Admm {
    hyper: Hyper,
    alpha: Vec<f64>,
    /// σ^ℓ before `begin_iteration`, σ^{ℓ+1} after it.
    sigma: f64,
    iteration: usize,
    /// The global point w^{ℓ+1}.
    w: Tensor,
    /// Row i is π_i.
    dual: Tensor,
    /// Σ_i α_i (σ_i w_i + π_i), the numerator of (2.9): its σ w part from the start of
    /// the iteration plus the workers updated so far.
    next: Tensor,
    precondition: Box<dyn Precondition>,
}

impl Admm {
    /// Starts from w_i^0 = w^0 and π_i^0 = 0 (Algorithm 1 takes w^0 = 0).
    pub fn new(
        w0: &Tensor,
        alpha: &[f64],
        hyper: Hyper,
        precondition: Box<dyn Precondition>,
    ) -> Self {
        let m = alpha.len() as i64;
        let dual = Tensor::zeros([m, w0.numel() as i64], (w0.kind(), w0.device()));
        let next = w0 * (hyper.sigma0 * alpha.iter().sum::<f64>());
        Self {
            hyper,
            alpha: alpha.to_vec(),
            sigma: hyper.sigma0,
            iteration: 0,
            w: w0.copy(),
            dual,
            next,
            precondition,
        }
    }

    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    pub fn dual(&self, worker: usize) -> Tensor {
        self.dual.get(worker as i64)
    }
}

impl Optimizer for Admm {
    fn params(&self) -> &Tensor {
        &self.w
    }

    fn begin_iteration(&mut self) {
        let alpha_sum: f64 = self.alpha.iter().sum();
        // (2.9): w^{ℓ+1} = Σα_i(σ_i^ℓ w_i^ℓ + π_i^ℓ) / (Σα_i σ_i^ℓ + λ)
        self.w = &self.next / (alpha_sum * self.sigma + self.hyper.lambda);
        // (2.12)
        self.sigma = self.hyper.schedule.next(self.sigma, self.iteration);
        // The next numerator Σα_i(σ_i w_i + π_i) with w_i = w − x_i: its Σα_i σ w part
        // now, once; each worker adds α_i(π_i − σ x_i) in `local_update`.
        self.next = &self.w * (alpha_sum * self.sigma);
    }

    fn needs_hessian(&self) -> bool {
        self.precondition.needs_hessian()
    }

    fn local_update(&mut self, worker: usize, local: &Local) -> Result<()> {
        let Hyper {
            rho, lambda, mu, ..
        } = self.hyper;
        let sigma = self.sigma;
        let mut dual = self.dual.get(worker as i64);
        // g_i = ∇F_i(w^{ℓ+1}; B_i) with F_i = H_i + (μ − λ)/2 ‖·‖², (2.4) and (2.10)
        let grad = if mu != lambda {
            &local.grad + &self.w * (mu - lambda)
        } else {
            local.grad.shallow_clone()
        };
        let hessian = match (&local.hessian, mu != lambda) {
            (Some(h), true) => {
                let n = h.size()[0];
                Some(h + Tensor::eye(n, (h.kind(), h.device())) * (mu - lambda))
            }
            (h, _) => h.as_ref().map(Tensor::shallow_clone),
        };
        let u = &dual + grad;
        // (2.13): w_i = w^{ℓ+1} − x with x = (σ_i I + ρ_i Q_i)^{-1}(π_i + g_i)
        let mut x = self
            .precondition
            .solve(worker, &u, sigma, rho, hessian.as_ref())?;
        // (2.14): π_i ← π_i + σ_i(w_i − w^{ℓ+1}) = π_i − σ_i x
        let _ = x.g_mul_scalar_(sigma);
        let _ = dual.g_sub_(&x);
        // numerator of (2.9): += α_i(π_i − σ_i x_i), the α_i σ_i w part added at begin
        let contribution = (&dual - &x) * self.alpha[worker];
        let _ = self.next.g_add_(&contribution);
        Ok(())
    }

    fn end_iteration(&mut self) {
        self.iteration += 1;
    }

    fn state_numel(&self) -> i64 {
        self.dual.numel() as i64 + self.next.numel() as i64 + self.precondition.state_numel()
    }
}

#[cfg(test)]
mod tests;
