//! M-SVAG (Balles & Hennig, "Dissecting Adam: The Sign, Magnitude and Variance of
//! Stochastic Gradients", ICML 2018, Algorithm 2): momentum SGD whose step is damped per
//! coordinate by the estimated signal-to-noise ratio. With one β for both moving averages,
//!   m̃ = m/(1 − βᵗ), ṽ = v/(1 − βᵗ), ρₜ = (1 − β)(1 + βᵗ)/((1 + β)(1 − βᵗ)),
//!   s = (ṽ − m̃²)/(1 − ρₜ), γ = m̃²/(m̃² + ρₜs), w ← w − lr·γ ⊙ m̃,
//! as the authors' implementation (github.com/lballes/msvag) writes it: ρₜ capped at 0.999
//! (at t = 1, ρ₁ = 1 and ṽ − m̃² is rounding error), γ with NaN (m = v = 0) set to 0 and
//! clipped to [0, 1]; no weight decay. `pytorch_optimizer.MSVAG` is the same update but
//! caps ρ at 0.9999; the golden reference `equations.MSVAG` is it with the authors' cap.
use super::adam::{ema_square, named};
use super::{Classic, Step};
use crate::optim::hyper::{positive, unit, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "msvag",
    summary: "momentum SGD with variance adaptation (M-SVAG)",
    reference: "Balles & Hennig, ICML 2018; golden: equations.MSVAG (pytorch_optimizer.MSVAG with the authors' ρ cap)",
    hypers: &[
        positive("lr", 1e-2, "learning rate"),
        unit("beta", 0.9, "decay β of both moving averages (momentum)"),
    ],
    build,
};

/// The authors' cap on ρₜ, which only acts at t = 1.
const RHO_CAP: f64 = 0.999;

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    Classic::boxed(
        c,
        h.f64("lr"),
        Msvag {
            beta: h.f64("beta"),
            exp_avg: c.w0.zeros_like(),
            exp_avg_sq: c.w0.zeros_like(),
        },
    )
}

pub struct Msvag {
    beta: f64,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

impl Step for Msvag {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        let beta = self.beta;
        let _ = self.exp_avg.lerp_(grad, 1.0 - beta);
        ema_square(&mut self.exp_avg_sq, grad, beta);
        let beta_t = beta.powf(t as f64);
        // ρₜ, written (1 − β²ᵗ)(1 − β)²/((1 − β²)(1 − βᵗ)²)
        let rho = ((1.0 - beta_t * beta_t) * (1.0 - beta).powi(2)
            / ((1.0 - beta * beta) * (1.0 - beta_t).powi(2)))
        .min(RHO_CAP);
        let m = &self.exp_avg / (1.0 - beta_t);
        let m_square = m.square();
        // ρₜs + m̃² with s = (ṽ − m̃²)/(1 − ρₜ)
        let mut noise = &self.exp_avg_sq / (1.0 - beta_t);
        let _ = noise.g_sub_(&m_square);
        let _ = noise.g_div_scalar_(1.0 - rho);
        let _ = noise.g_mul_scalar_(rho);
        let _ = noise.g_add_(&m_square);
        let mut factor = m_square / noise;
        let _ = factor.nan_to_num_(0.0, None, None);
        let _ = factor.clamp_(0.0, 1.0);
        let _ = w.addcmul_(&(m * -lr), &factor);
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        named([("exp_avg", &self.exp_avg), ("exp_avg_sq", &self.exp_avg_sq)])
    }
}
