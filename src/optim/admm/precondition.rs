//! Preconditioners Q_i of the proximal term (2.7b). Each solves (σ I + ρ Q_i) x = u.
use crate::optim::copy_state;
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

pub trait Precondition: Send {
    /// d_i, what stands for g_i in u = π_i^ℓ + d_i: g_i itself (Algorithms 1, 2), or
    /// NSISA's orthogonalised momentum o_i (Algorithm 3), which keeps its own state.
    fn direction(&mut self, _worker: usize, grad: &Tensor) -> Tensor {
        grad.shallow_clone()
    }

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

    /// Named state for checkpoints (counters as tensors).
    fn state(&self) -> Vec<(String, Tensor)> {
        vec![]
    }

    /// Restores what `state` saved.
    fn load_state(&mut self, _saved: &HashMap<String, Tensor>) -> Result<()> {
        Ok(())
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

    /// √m_i^{ℓ+1} of worker `worker` after updating its moment from u = π_i^ℓ + g_i^{ℓ+1}
    /// by (4.4), clipped by (4.3).
    pub fn root(&mut self, worker: usize, u: &Tensor) -> Tensor {
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
            // powf (libm pow) rather than powi: the same bits as the references' **
            Scheme::III => m_tilde / (1.0 - beta.powf(self.steps[worker] as f64)),
            _ => m_tilde.shallow_clone(),
        };
        // (4.3)
        m_tilde.clamp_max(self.eta * self.eta).sqrt()
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
        // (4.5): x = u / (σ + ρ√m)
        Ok(u / (self.root(worker, u) * rho + sigma))
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
