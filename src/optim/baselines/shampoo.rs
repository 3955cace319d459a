//! Shampoo (Gupta, Koren & Singer, "Shampoo: Preconditioned Stochastic Tensor
//! Optimization", ICML 2018), Algorithm 1. Each matrix G [m, n] (conv kernels viewed as
//! [out, in·kh·kw]) keeps L ← L + GGᵀ and R ← R + GᵀG from L₀ = εI_m, R₀ = εI_n and steps
//! along L^(−1/4) G R^(−1/4); every other entry (biases, least squares' vector) takes the
//! paper's diagonal variant H ← H + g² from H₀ = ε, step H^(−1/2) g. The inverse roots come
//! from `torch.linalg.eigh` in f64 (eigenvalues clamped at ε against roundoff) at step 1 and every
//! `preconditioning_compute_steps` steps after it; in between the last roots are reused.
//! Weight decay is an L2 term added to the gradient first; `momentum` (off by default) is
//! heavy-ball on the preconditioned step, b ← μb + u, w ← w − lr·b. Names and defaults are
//! pytorch_optimizer's Shampoo (lr 1e-3, matrix_eps 1e-6, roots every step). Golden:
//! `equations.Shampoo`, written from Algorithm 1, because pytorch_optimizer's gives vectors
//! a full [d, d] preconditioner, starts from zero roots (no step until the first
//! recomputation), takes roots by SVD and mixes its last step into the gradient as momentum.
use super::per_matrix::{add_scaled_, Split};
use super::{Classic, Step};
use crate::optim::hyper::{float, int, positive, unit, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::{Kind, Tensor};

pub const ENTRY: Entry = Entry {
    name: "shampoo",
    summary:
        "Kronecker-factored preconditioner L^(-1/4) G R^(-1/4) per matrix, diagonal for vectors",
    reference: "Gupta, Koren & Singer, ICML 2018, Algorithm 1; golden: equations.Shampoo",
    hypers: &[
        positive("lr", 1e-3, "learning rate"),
        unit(
            "momentum",
            0.0,
            "heavy-ball momentum on the preconditioned step",
        ),
        float("weight_decay", 0.0, "L2 penalty added to the gradient"),
        positive("matrix_eps", 1e-6, "ε of L₀ = εI, R₀ = εI and H₀ = ε"),
        int(
            "preconditioning_compute_steps",
            1,
            1,
            "recompute the inverse roots at step 1 and every this many steps",
        ),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let w0 = c.w0;
    let eps = h.f64("matrix_eps");
    let split = Split::new(c.layout, w0.device(), |_| true);
    let factors = split
        .matrices
        .iter()
        .map(|s| {
            let eye = |n: i64| Tensor::eye(n, (w0.kind(), w0.device())) * eps;
            let (rows, cols) = (s.shape[0], s.numel() / s.shape[0]);
            Factors {
                name: s.name.clone(),
                left: eye(rows),
                right: eye(cols),
                left_root: Tensor::zeros([rows, rows], (w0.kind(), w0.device())),
                right_root: Tensor::zeros([cols, cols], (w0.kind(), w0.device())),
            }
        })
        .collect();
    Classic::boxed(
        c,
        h.f64("lr"),
        Shampoo {
            momentum: h.f64("momentum"),
            weight_decay: h.f64("weight_decay"),
            eps,
            every: h.usize("preconditioning_compute_steps") as i64,
            diagonal: split.rest_zeros(w0).map(|z| z + eps),
            momentum_buffer: (h.f64("momentum") > 0.0).then(|| w0.zeros_like()),
            split,
            factors,
        },
    )
}

/// One matrix's statistics and their inverse fourth roots.
struct Factors {
    name: String,
    /// L = εI + Σ GGᵀ
    left: Tensor,
    /// R = εI + Σ GᵀG
    right: Tensor,
    left_root: Tensor,
    right_root: Tensor,
}

pub struct Shampoo {
    momentum: f64,
    weight_decay: f64,
    eps: f64,
    /// Recompute the roots every this many steps.
    every: i64,
    split: Split,
    factors: Vec<Factors>,
    /// H = ε + Σ g² of the entries outside the matrices.
    diagonal: Option<Tensor>,
    momentum_buffer: Option<Tensor>,
}

/// A^(−1/root) of a symmetric positive definite A by eigh, V diag(max(λ, floor)^(−1/root)) Vᵀ,
/// computed in f64 whatever A's dtype (in f32 the eigenvalues near ε are mostly roundoff)
/// and returned in A's dtype.
pub fn inverse_root(a: &Tensor, root: f64, floor: f64) -> Tensor {
    let (lambda, v) = a.to_kind(Kind::Double).linalg_eigh("L");
    let scale = lambda.clamp_min(floor).pow_tensor_scalar(-1.0 / root);
    (&v * scale.unsqueeze(0)).mm(&v.mt()).to_kind(a.kind())
}

impl Step for Shampoo {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        if self.weight_decay != 0.0 {
            add_scaled_(grad, w, self.weight_decay);
        }
        let mut update = grad.zeros_like();
        if let Some(h) = &mut self.diagonal {
            // H ← H + g², u = g / √H
            let g = self.split.gather_rest(grad).expect("a rest");
            let _ = h.addcmul_(&g, &g);
            self.split.scatter_rest(&mut update, &(g / h.sqrt()));
        }
        let recompute = (t - 1) % self.every == 0;
        for (segment, f) in self.split.matrices.iter().zip(&mut self.factors) {
            // L ← L + GGᵀ, R ← R + GᵀG, u = L^(−1/4) G R^(−1/4)
            let g = segment.matrix(grad).expect("a matrix");
            let _ = f.left.addmm_(&g, &g.mt());
            let _ = f.right.addmm_(&g.mt(), &g);
            if recompute {
                f.left_root.copy_(&inverse_root(&f.left, 4.0, self.eps));
                f.right_root.copy_(&inverse_root(&f.right, 4.0, self.eps));
            }
            let u = f.left_root.mm(&g).mm(&f.right_root);
            segment.matrix(&update).expect("a matrix").copy_(&u);
        }
        if let Some(b) = &mut self.momentum_buffer {
            // b ← μb + u
            let _ = b.g_mul_scalar_(self.momentum);
            let _ = b.g_add_(&update);
            update = b.shallow_clone();
        }
        add_scaled_(w, &update, -lr);
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = vec![];
        for f in &self.factors {
            for (part, t) in [
                ("left", &f.left),
                ("right", &f.right),
                ("left_root", &f.left_root),
                ("right_root", &f.right_root),
            ] {
                state.push((format!("{}.{part}", f.name), t.shallow_clone()));
            }
        }
        if let Some(h) = &self.diagonal {
            state.push(("diagonal".to_string(), h.shallow_clone()));
        }
        if let Some(b) = &self.momentum_buffer {
            state.push(("momentum_buffer".to_string(), b.shallow_clone()));
        }
        state
    }
}
