//! Preconditioners Q_i of the proximal term (2.7b). Each solves (σ I + ρ Q_i) x = u.
use crate::optim::{copy_state, fused, scalar};
use anyhow::{Context, Result};
use std::collections::HashMap;
use tch::{Kind, Tensor};

/// SISA's second-moment scheme of (4.4): AdaGrad-, RMSProp- and Adam-like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    I,
    II,
    III,
}

impl Scheme {
    /// 1, 2 or 3 as a spec writes it.
    pub fn from_number(n: usize) -> Option<Self> {
        match n {
            1 => Some(Scheme::I),
            2 => Some(Scheme::II),
            3 => Some(Scheme::III),
            _ => None,
        }
    }
}

/// Per-worker state is kept for this process's workers ([`crate::optim::registry::Context::rows`]):
/// `worker` is the worker's row among them (its index in one process).
pub trait Precondition: Send {
    /// d_i, what stands for g_i in u = π_i^ℓ + d_i: g_i itself (Algorithms 1, 2), or
    /// NSISA's orthogonalised momentum o_i (Algorithm 3), which keeps its own state. May
    /// reuse the gradient's buffer.
    fn direction(&mut self, _worker: usize, grad: Tensor) -> Tensor {
        grad
    }

    /// (2.13)-(2.14) for worker `worker`: π_i ← π_i − σ x with x = (σ I + ρ Q_i)^{-1} u,
    /// u = π_i^ℓ + d_i^{ℓ+1}; updates the preconditioner's own state from u first where its
    /// rule says so. `u` arrives holding d_i ([`Precondition::direction`]) and the
    /// preconditioner forms u in it (a fused pass reads d_i and π_i once: [`add_dual`]
    /// otherwise); `u` and `scratch` (a [P] buffer) are its to overwrite.
    #[allow(clippy::too_many_arguments)]
    fn update_dual(
        &mut self,
        worker: usize,
        u: &mut Tensor,
        dual: &mut Tensor,
        scratch: &Tensor,
        sigma: f64,
        rho: f64,
        hessian: Option<&Tensor>,
    ) -> Result<()>;

    fn needs_hessian(&self) -> bool {
        false
    }

    /// Forgets the state built from the workers' updates ([`crate::optim::Optimizer::restart`]).
    fn restart(&mut self) {}

    fn state_numel(&self) -> i64 {
        0
    }

    /// Named state for checkpoints (counters as tensors).
    fn state(&self) -> Vec<(String, Tensor)> {
        vec![]
    }

    /// Restores what `state` saved.
    fn load_state(&mut self, _saved: &HashMap<String, Tensor>) -> Result<()> {
        Ok(())
    }
}

/// u = π_i + d_i in d_i's buffer `u`.
pub fn add_dual(u: &mut Tensor, dual: &Tensor) {
    let _ = u.g_add_(dual);
}

/// Q = I: x = u / (σ + ρ), so π_i ← π_i − σ/(σ + ρ)·u.
pub struct Identity;

impl Precondition for Identity {
    fn update_dual(
        &mut self,
        _: usize,
        u: &mut Tensor,
        dual: &mut Tensor,
        _: &Tensor,
        sigma: f64,
        rho: f64,
        _: Option<&Tensor>,
    ) -> Result<()> {
        add_dual(u, dual);
        let _ = dual.addcmul_(u, &scalar(-sigma / (sigma + rho), u));
        Ok(())
    }
}

/// Q = ∇²F_i(w^{ℓ+1}; B_i^{ℓ+1}) (4.1): a Levenberg–Marquardt step, dense solve.
pub struct Hessian;

impl Precondition for Hessian {
    fn update_dual(
        &mut self,
        worker: usize,
        u: &mut Tensor,
        dual: &mut Tensor,
        _: &Tensor,
        sigma: f64,
        rho: f64,
        hessian: Option<&Tensor>,
    ) -> Result<()> {
        let h =
            hessian.context("the Hessian preconditioner (4.1) needs the task's batch Hessian")?;
        add_dual(u, dual);
        let n = u.numel() as i64;
        let lhs = h * rho + Tensor::eye(n, (u.kind(), u.device())) * sigma;
        let x = Tensor::f_linalg_solve(&lhs, &u.unsqueeze(1), true)
            .with_context(|| format!("worker {worker}: σI + ρ∇²F_i is singular"))?;
        let _ = dual.g_sub_(&(x.squeeze_dim(1) * sigma));
        Ok(())
    }

    fn needs_hessian(&self) -> bool {
        true
    }
}

/// Q = Diag(√m_i) (4.2) with m_i = min(m̃_i, η²) (4.3) and m̃_i from scheme I, II or III (4.4).
pub struct SecondMoment {
    scheme: Scheme,
    beta: f64,
    eta: f64,
    /// Row i is m̃_i (schemes I, II) or n_i (scheme III), starting at 0.
    moment: Tensor,
    /// Updates made by each worker: ℓ + 1 in scheme III's bias correction 1 − β^{ℓ+1}.
    steps: Vec<i32>,
    /// ε added to √m_i: the denominator σ + ρ(√m_i + ε) of the PISA RL code; 0 in
    /// Algorithm 2.
    eps: f64,
}

impl SecondMoment {
    pub fn new(scheme: Scheme, beta: f64, eta: f64, workers: usize, like: &Tensor) -> Self {
        let moment = Tensor::zeros(
            [workers as i64, like.numel() as i64],
            (like.kind(), like.device()),
        );
        Self {
            scheme,
            beta,
            eta,
            moment,
            steps: vec![0; workers],
            eps: 0.0,
        }
    }

    /// With ε added to √m_i in the denominator.
    pub fn with_eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Every worker's moment and update count back to 0.
    pub fn restart(&mut self) {
        let _ = self.moment.zero_();
        self.steps.fill(0);
    }

    /// Updates worker `worker`'s moment from u = π_i^ℓ + g_i^{ℓ+1} by (4.4) and writes
    /// r into `out` with √m_i^{ℓ+1} = c·r, returning c (scheme III's bias correction
    /// 1/√(1 − β^{ℓ+1}) is kept out of the [P] passes; the clip (4.3) is applied to the
    /// uncorrected n_i at η²(1 − β^{ℓ+1})).
    pub fn root_into(&mut self, worker: usize, u: &Tensor, out: &Tensor) -> f64 {
        let bias = self.count(worker);
        self.root_after_count(worker, u, out, bias)
    }

    /// Counts worker `worker`'s update; returns scheme III's bias correction 1 − β^{ℓ+1}
    /// (1 for schemes I and II).
    fn count(&mut self, worker: usize) -> f64 {
        self.steps[worker] += 1;
        match self.scheme {
            // powf (libm pow) rather than powi: the same bits as the references' **
            Scheme::III => 1.0 - self.beta.powf(self.steps[worker] as f64),
            Scheme::I | Scheme::II => 1.0,
        }
    }

    /// [`SecondMoment::root_into`] once the update is counted.
    fn root_after_count(&self, worker: usize, u: &Tensor, out: &Tensor, bias: f64) -> f64 {
        let mut moment = self.moment.get(worker as i64);
        // (4.4)
        if self.scheme == Scheme::I {
            let _ = moment.addcmul_(u, u);
        } else {
            let _ = u.mul_out(out, u);
            let _ = moment.lerp_(out, 1.0 - self.beta);
        }
        // (4.3)
        let _ = moment.clamp_max_out(out, self.eta * self.eta * bias);
        let _ = out.shallow_clone().sqrt_();
        let c = 1.0 / bias.sqrt();
        if self.eps != 0.0 {
            // √m + ε = c·(r + ε/c)
            let _ = out.shallow_clone().g_add_scalar_(self.eps / c);
        }
        c
    }
}

/// π_i ← π_i − σ u/(σ + ρ c·r) with √m_i = c·r in `r` ((2.13), (2.14) with (4.5)), as
/// two in-place passes: r ← −(σ + ρ c·r)/σ, then π_i ← π_i + u/r.
pub fn divide_into_dual(dual: &mut Tensor, u: &Tensor, r: &Tensor, c: f64, sigma: f64, rho: f64) {
    let _ = scalar(-1.0, r).addcmul_out(r, r, &scalar(-rho * c / sigma, r));
    let _ = dual.addcdiv_(u, r);
}

impl Precondition for SecondMoment {
    fn update_dual(
        &mut self,
        worker: usize,
        u: &mut Tensor,
        dual: &mut Tensor,
        scratch: &Tensor,
        sigma: f64,
        rho: f64,
        _: Option<&Tensor>,
    ) -> Result<()> {
        // (4.5): x = u / (σ + ρ√m)
        let bias = self.count(worker);
        let fused = fused::SecondMomentDual {
            accumulate: self.scheme == Scheme::I,
            beta: self.beta,
            clip: self.eta * self.eta * bias,
            c: 1.0 / bias.sqrt(),
            eps: self.eps,
            sigma,
            rho,
        };
        if !fused::second_moment_dual(u, &self.moment.get(worker as i64), dual, &fused) {
            add_dual(u, dual);
            let c = self.root_after_count(worker, u, scratch, bias);
            divide_into_dual(dual, u, scratch, c, sigma, rho);
        }
        Ok(())
    }

    fn restart(&mut self) {
        SecondMoment::restart(self);
    }

    fn state_numel(&self) -> i64 {
        self.moment.numel() as i64
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let steps: Vec<i64> = self.steps.iter().map(|&s| s as i64).collect();
        vec![
            ("second_moment".into(), self.moment.shallow_clone()),
            ("steps".into(), Tensor::from_slice(&steps)),
        ]
    }

    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        copy_state(&self.state()[..1], saved)?;
        let steps = saved.get("steps").context("the checkpoint has no steps")?;
        let steps = Vec::<i64>::try_from(steps.to_kind(Kind::Int64))?;
        anyhow::ensure!(
            steps.len() == self.steps.len(),
            "checkpoint steps: wrong worker count"
        );
        self.steps = steps.into_iter().map(|s| s as i32).collect();
        Ok(())
    }
}
