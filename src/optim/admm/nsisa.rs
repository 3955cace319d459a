//! NSISA, Algorithm 3 of the paper (pisa.md §4.3): Algorithm 1 whose matrix parameters
//! step along the orthogonalised momentum o_i = NewtonSchulz(b_i) of Muon (Jordan et al.
//! 2024), scaled by a second moment of π_i + o_i, by (4.6). Checked against
//! `equations.NSISA` (tests/data/optim/nsisa.toml), written from Algorithm 3 independently
//! of this code (no public implementation exists).
//!
//! Per worker i and iteration ℓ, with g_i = ∇F_i(w^{ℓ+1}; B_i) (2.10):
//! - b_i ← momentum·b_i + g_i over the whole flat buffer (the paper's μ_i, called
//!   `momentum` here because `mu` is the weight decay μ of (2.2)); b_i^0 = 0.
//! - Matrix parameters (2-D; conv kernels [out, in, kh, kw] as [out, in·kh·kw], see
//!   `Segment::matrix`): o_i = NewtonSchulz(b_i) per matrix, u = π_i + o_i, m_i by
//!   (4.3)/(4.4) from u (g_i replaced by o_i), v_i = [u = 0] elementwise, and (4.6):
//!   w_i = w − (u + ε^{ℓ+1} v_i)/(σ_i^{ℓ+1} + ρ_i √m_i).
//! - Other parameters (biases, norms' scales): SISA's (4.5) with u = π_i + g_i; their b_i
//!   entries are kept but unused.
//! - π_i by (2.14) as in Algorithm 1.
//!
//! Choices the paper leaves open, and what this code does:
//! - NewtonSchulz sees b_i, not π_i + b_i (Algorithm 3 as printed); π_i enters after it.
//! - The iteration is `optim::newton_schulz::orthogonalize` (Muon's quintic, `ns_steps`
//!   = 5 steps, Frobenius normalisation, tall matrices transposed), in bf16 on CUDA as
//!   Muon's reference does and in the parameters' dtype elsewhere (`ns_dtype`; the golden
//!   trajectories are CPU f32/f64).
//! - No Muon-style rescaling of o_i (neither √max(1, rows/cols) nor 0.2·√max(rows, cols)):
//!   (4.6) divides by σ + ρ√m, and with m built from o_i the scale largely cancels.
//! - Plain momentum b ← μb + g as printed, not Muon's Nesterov form; no dampening.
//! - ε^{ℓ+1} is ε to the power of the worker's update count (1 at the first update),
//!   which is ℓ + 1 since every worker updates once per iteration. The term only acts
//!   where π_i + o_i is exactly 0; it is not applied to non-matrix parameters, which
//!   follow SISA exactly.
//! - The paper gives no values for ε or μ_i: `eps` defaults to 0.1 (any ε ∈ (0, 1) is
//!   allowed) and `momentum` to Muon's 0.95. The Theorem 4.2 condition (p_i)_{kj} ∈ (0, η_i)
//!   is not enforced.
//! - m workers: each keeps its own b_i, m_i and π_i and orthogonalises its own momentum
//!   (m·#matrices Newton–Schulz calls per iteration); nothing is shared before (2.9).
//!
//! State: π_i (in `Admm`), b_i and the second moment, each stacked [m, P], plus the [P]
//! numerator of (2.9): (3m + 1)·P values in `state_numel`.
use super::precondition::{divide_into_dual, Precondition, SecondMoment};
use super::sisa::{second_moment, BETA, ETA, SCHEME};
use super::{GAMMA, GAMMA_EPOCHS, GAMMA_RULE, K0, K0_EPOCHS, LAMBDA, MU, RHO, SIGMA0};
use crate::optim::hyper::{int, unit, Bound, Default, Hyper, Hypers, Kind};
use crate::optim::layout::Layout;
use crate::optim::newton_schulz::orthogonalize;
use crate::optim::registry::{Context, Entry};
use crate::optim::{copy_state, Optimizer};
use anyhow::Result;
use std::collections::HashMap;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "nsisa",
    summary: "Algorithm 3: ADMM stepping along Newton–Schulz-orthogonalised momentum (4.6)",
    reference: "pisa.md Algorithm 3 with Muon's Newton–Schulz (Jordan et al. 2024); golden: \
                scripts/golden/equations.py NSISA (independent PyTorch implementation)",
    hypers: &[
        SIGMA0,
        RHO,
        GAMMA,
        K0,
        K0_EPOCHS,
        GAMMA_RULE,
        GAMMA_EPOCHS,
        SCHEME,
        BETA,
        ETA,
        unit(
            "momentum",
            0.95,
            "μ_i of the momentum b_i = μ_i b_i + g_i (Algorithm 3)",
        ),
        Hyper {
            name: "eps",
            kind: Kind::Float {
                min: Bound::Open(0.0),
                max: Bound::Open(1.0),
            },
            default: Default::Float(0.1),
            doc: "ε_i ∈ (0, 1): ε_i^{ℓ+1} is added where π_i + o_i = 0 (4.6)",
        },
        int(
            "ns_steps",
            1,
            5,
            "Newton–Schulz iterations per orthogonalisation",
        ),
        crate::optim::newton_schulz::NS_DTYPE,
        LAMBDA,
        MU,
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let precondition = Orthogonalized {
        moment: second_moment(h, c),
        momentum: h.f64("momentum"),
        eps: h.f64("eps"),
        ns_steps: h.usize("ns_steps"),
        ns_kind: crate::optim::newton_schulz::dtype(h.str("ns_dtype"), c.w0),
        layout: c.layout.clone(),
        buffer: Tensor::zeros(
            [c.rows().len() as i64, c.w0.numel() as i64],
            (c.w0.kind(), c.w0.device()),
        ),
        updates: vec![0; c.rows().len()],
    };
    super::build(h, c, Box::new(precondition))
}

/// The preconditioner of (4.6)-(4.7) on matrix parameters, SISA's (4.2) on the rest.
pub struct Orthogonalized {
    moment: SecondMoment,
    momentum: f64,
    eps: f64,
    ns_steps: usize,
    /// The dtype of the iteration: bf16 on CUDA by default, as Muon's reference.
    ns_kind: tch::Kind,
    layout: Layout,
    /// Row i is the momentum b_i.
    buffer: Tensor,
    /// Updates made by each worker: the ℓ + 1 of ε^{ℓ+1}.
    updates: Vec<i32>,
}

impl Precondition for Orthogonalized {
    /// o_i on the matrices, g_i elsewhere, in the gradient's buffer.
    fn direction(&mut self, worker: usize, grad: Tensor) -> Tensor {
        // b_i^{ℓ+1} = μ_i b_i^ℓ + g_i^{ℓ+1}
        let mut b = self.buffer.get(worker as i64);
        let _ = b.g_mul_scalar_(self.momentum);
        let _ = b.g_add_(&grad);
        for segment in &self.layout.segments {
            if let (Some(bm), Some(mut dm)) = (segment.matrix(&b), segment.matrix(&grad)) {
                // o_i^{ℓ+1} = NewtonSchulz(b_i^{ℓ+1})
                let o = orthogonalize(&bm.to_kind(self.ns_kind), self.ns_steps);
                dm.copy_(&o.to_kind(dm.kind()));
            }
        }
        grad
    }

    /// x = (u + ε^{ℓ+1} v)/(σ + ρ√m) with u = π_i + o_i on the matrices (4.6), and
    /// u/(σ + ρ√m) with u = π_i + g_i elsewhere (4.5).
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
        super::precondition::add_dual(u, dual);
        // m_i from (4.3)/(4.4) with g_i replaced by o_i
        let c = self.moment.root_into(worker, u, scratch);
        self.updates[worker] += 1;
        // ε_i^{ℓ+1} (powf: libm pow, as the reference's **)
        let scale = self.eps.powf(self.updates[worker] as f64);
        for segment in &self.layout.segments {
            if let Some(mut um) = segment.matrix(u) {
                // v_i = [π_i + o_i = 0]
                let v = um.eq(0.0).to_kind(um.kind());
                let _ = um.g_add_(&(v * scale));
            }
        }
        divide_into_dual(dual, u, scratch, c, sigma, rho);
        Ok(())
    }

    fn restart(&mut self) {
        self.moment.restart();
        let _ = self.buffer.zero_();
        self.updates.fill(0);
    }

    fn state_numel(&self) -> i64 {
        self.moment.state_numel() + self.buffer.numel() as i64
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let updates: Vec<i64> = self.updates.iter().map(|&s| s as i64).collect();
        let mut state = self.moment.state();
        state.push(("momentum_buffer".into(), self.buffer.shallow_clone()));
        state.push(("updates".into(), Tensor::from_slice(&updates)));
        state
    }

    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        self.moment.load_state(saved)?;
        copy_state(
            &[("momentum_buffer".into(), self.buffer.shallow_clone())],
            saved,
        )?;
        let updates = saved
            .get("updates")
            .ok_or_else(|| anyhow::anyhow!("the checkpoint has no updates"))?;
        self.updates = Vec::<i64>::try_from(updates)?
            .into_iter()
            .map(|s| s as i32)
            .collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
