//! Preconditioners Q_i of the proximal term (2.7b). Each solves (σ I + ρ Q_i) x = u.
use anyhow::{Context, Result};
use tch::Tensor;

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

pub trait Precondition: Send {
    /// x = (σ I + ρ Q_i)^{-1} u for worker `worker`, with u = π_i^ℓ + g_i^{ℓ+1};
    /// updates the preconditioner's own state from u first where its rule says so.
    fn solve(
        &mut self,
        worker: usize,
        u: &Tensor,
        sigma: f64,
        rho: f64,
        hessian: Option<&Tensor>,
    ) -> Result<Tensor>;

    fn needs_hessian(&self) -> bool {
        false
    }

    fn state_numel(&self) -> i64 {
        0
    }
}

/// Q = I: x = u / (σ + ρ).
pub struct Identity;

impl Precondition for Identity {
    fn solve(
        &mut self,
        _: usize,
        u: &Tensor,
        sigma: f64,
        rho: f64,
        _: Option<&Tensor>,
    ) -> Result<Tensor> {
        Ok(u / (sigma + rho))
    }
}

/// Q = ∇²F_i(w^{ℓ+1}; B_i^{ℓ+1}) (4.1): a Levenberg–Marquardt step, dense solve.
pub struct Hessian;

impl Precondition for Hessian {
    fn solve(
        &mut self,
        worker: usize,
        u: &Tensor,
        sigma: f64,
        rho: f64,
        hessian: Option<&Tensor>,
    ) -> Result<Tensor> {
        let h =
            hessian.context("the Hessian preconditioner (4.1) needs the task's batch Hessian")?;
        let n = u.numel() as i64;
        let lhs = h * rho + Tensor::eye(n, (u.kind(), u.device())) * sigma;
        let x = Tensor::f_linalg_solve(&lhs, &u.unsqueeze(1), true)
            .with_context(|| format!("worker {worker}: σI + ρ∇²F_i is singular"))?;
        Ok(x.squeeze_dim(1))
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
        }
    }
}

impl Precondition for SecondMoment {
    fn solve(
        &mut self,
        worker: usize,
        u: &Tensor,
        sigma: f64,
        rho: f64,
        _: Option<&Tensor>,
    ) -> Result<Tensor> {
        let mut moment = self.moment.get(worker as i64);
        self.steps[worker] += 1;
        let beta = self.beta;
        // (4.4)
        let m_tilde = match self.scheme {
            Scheme::I => moment.addcmul_(u, u),
            Scheme::II | Scheme::III => {
                let _ = moment.g_mul_scalar_(beta);
                moment.addcmul_(&(u * (1.0 - beta)), u)
            }
        };
        let m_tilde = match self.scheme {
            Scheme::III => m_tilde / (1.0 - beta.powi(self.steps[worker])),
            _ => m_tilde.shallow_clone(),
        };
        // (4.3), then (4.5): x = u / (σ + ρ√m)
        let denominator = m_tilde.clamp_max(self.eta * self.eta).sqrt() * rho + sigma;
        Ok(u / denominator)
    }

    fn state_numel(&self) -> i64 {
        self.moment.numel() as i64
    }
}
