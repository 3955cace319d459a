//! Shampoo (Gupta, Koren & Singer, "Shampoo: Preconditioned Stochastic Tensor
//! Optimization", ICML 2018), Algorithm 1. Each matrix G [m, n] (conv kernels viewed as
//! [out, in·kh·kw]) keeps L ← L + GGᵀ and R ← R + GᵀG from L₀ = εI_m, R₀ = εI_n and steps
//! along L^(−1/4) G R^(−1/4); every other entry (biases, least squares' vector) takes the
//! paper's diagonal variant H ← H + g² from H₀ = ε, step H^(−1/2) g. The inverse roots come
//! from `torch.linalg.eigh` in f64 (eigenvalues clamped at ε against roundoff) at step 1 and every
//! `preconditioning_compute_steps` steps after it; in between the last roots are reused.
//!
//! Large matrices (a GPT's [50304, 768] embedding would need a 50304² factor and its eigh):
//! a side longer than `max_precondition_dim` keeps no factor (as SOAP's `max_precondition_dim`,
//! "sides longer than this are not rotated"), and the root of the remaining factor is
//! 1/(2k) for the k sides that keep one, as Google's distributed Shampoo and
//! pytorch_optimizer 4.1.0's `PreConditioner` set it (`exponent_for_pre_conditioner =
//! 2 * rank`, rank = the preconditioned dimensions): L^(−1/2) G for a too-long right side,
//! G R^(−1/2) for a too-long left side. With k = 0 — both sides too long — the matrix takes
//! the diagonal variant H^(−1/2) g, the same 1/(2k) rule one level down (those references
//! fall back to their diagonal grafting for any layer with a too-long side; this code keeps
//! the short side's factor, which for an embedding is the cheap and informative one). The
//! exponent keeps the step scale-free — L^(−1/2)G, like L^(−1/4)GR^(−1/4) and H^(−1/2)g, is
//! unchanged when G is scaled — so one lr serves every kind of tensor. State: per matrix
//! side of length d ≤ `max_precondition_dim`, the statistic and its root (2d² values); the
//! diagonal H holds one value per entry it covers.
//!
//! Weight decay is an L2 term added to the gradient first; `momentum` (off by default) is
//! heavy-ball on the preconditioned step, b ← μb + u, w ← w − lr·b. Names and defaults are
//! pytorch_optimizer's Shampoo (lr 1e-3, matrix_eps 1e-6, roots every step); the default
//! `max_precondition_dim` is SOAP's 10000. Golden: `equations.Shampoo`, written from
//! Algorithm 1, because pytorch_optimizer's gives vectors
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
        int(
            "max_precondition_dim",
            1,
            10000,
            "sides longer than this keep no factor (the other's root is then 1/2); \
             a matrix with both sides longer takes the diagonal variant",
        ),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let w0 = c.w0;
    let eps = h.f64("matrix_eps");
    let max_dim = h.usize("max_precondition_dim") as i64;
    let sides = |shape: &[i64]| {
        let (rows, cols) = (shape[0], shape.iter().product::<i64>() / shape[0]);
        [rows, cols].map(|d| (d <= max_dim).then_some(d))
    };
    // A matrix with no side short enough joins the diagonal variant's entries.
    let split = Split::new(c.layout, w0.device(), |s| {
        sides(&s.shape).iter().any(Option::is_some)
    });
    let factors = split
        .matrices
        .iter()
        .map(|s| {
            let [left, right] = sides(&s.shape).map(|d| d.map(|d| Factor::new(d, eps, w0)));
            Factors {
                name: s.name.clone(),
                left,
                right,
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

/// One side's statistic and its inverse root.
struct Factor {
    /// L = εI + Σ GGᵀ (left) or R = εI + Σ GᵀG (right)
    statistic: Tensor,
    root: Tensor,
}

impl Factor {
    fn new(d: i64, eps: f64, w0: &Tensor) -> Self {
        Self {
            statistic: Tensor::eye(d, (w0.kind(), w0.device())) * eps,
            root: Tensor::zeros([d, d], (w0.kind(), w0.device())),
        }
    }
}

/// One matrix's factors; a side longer than `max_precondition_dim` has none (at least one
/// side has one: the others are in the diagonal variant).
struct Factors {
    name: String,
    left: Option<Factor>,
    right: Option<Factor>,
}

pub struct Shampoo {
    momentum: f64,
    weight_decay: f64,
    eps: f64,
    /// Recompute the roots every this many steps.
    every: i64,
    split: Split,
    factors: Vec<Factors>,
    /// H = ε + Σ g² of the entries outside the preconditioned matrices.
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
            // L ← L + GGᵀ, R ← R + GᵀG, u = L^(−1/2k) G R^(−1/2k) over the k sides kept
            let g = segment.matrix(grad).expect("a matrix");
            let root = 2.0 * (f.left.is_some() as u8 + f.right.is_some() as u8) as f64;
            let mut u = g.shallow_clone();
            if let Some(l) = &mut f.left {
                let _ = l.statistic.addmm_(&g, &g.mt());
                if recompute {
                    l.root.copy_(&inverse_root(&l.statistic, root, self.eps));
                }
                u = l.root.mm(&u);
            }
            if let Some(r) = &mut f.right {
                let _ = r.statistic.addmm_(&g.mt(), &g);
                if recompute {
                    r.root.copy_(&inverse_root(&r.statistic, root, self.eps));
                }
                u = u.mm(&r.root);
            }
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
            for (side, factor) in [("left", &f.left), ("right", &f.right)] {
                if let Some(x) = factor {
                    let name = &f.name;
                    state.push((format!("{name}.{side}"), x.statistic.shallow_clone()));
                    state.push((format!("{name}.{side}_root"), x.root.shallow_clone()));
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::layout::Layout;
    use crate::schedule::Schedule;
    use crate::tasks::Local;

    #[test]
    fn sides_longer_than_the_maximum_keep_no_factor() {
        // max 5: a [7, 3] matrix keeps R (3²), a [2, 6] one L (2²), a [6, 7] one none
        // (diagonal, with the bias).
        let layout = Layout::new([
            ("a", vec![7, 3]),
            ("b", vec![2, 6]),
            ("c", vec![6, 7]),
            ("d", vec![4]),
        ]);
        let w0 = Tensor::linspace(-1.0, 1.0, layout.numel(), (Kind::Double, tch::Device::Cpu));
        let h = Hypers::resolve(
            "shampoo",
            ENTRY.hypers,
            &"max_precondition_dim = 5".parse().unwrap(),
        )
        .unwrap();
        let context = Context {
            w0: &w0,
            layout: &layout,
            alphas: &[1.0],
            schedule: &Schedule::default(),
            iterations: 1,
            iterations_per_epoch: 1,
        };
        let mut opt = (ENTRY.build)(&h, &context).unwrap();
        let mut shapes: Vec<(String, Vec<i64>)> = opt
            .state()
            .into_iter()
            .filter(|(name, _)| name.starts_with("step."))
            .map(|(name, t)| (name, t.size()))
            .collect();
        shapes.sort();
        let want: Vec<(String, Vec<i64>)> = [
            ("a.right", vec![3, 3]),
            ("a.right_root", vec![3, 3]),
            ("b.left", vec![2, 2]),
            ("b.left_root", vec![2, 2]),
            ("diagonal", vec![42 + 4]),
        ]
        .into_iter()
        .map(|(name, shape)| (format!("step.{name}"), shape))
        .collect();
        assert_eq!(shapes, want);
        // One step with G = 1 from H₀ = ε: the diagonal entries move by lr·g/√(ε + g²), the
        // one-sided ones by lr·G R^(−1/2) or lr·L^(−1/2) G.
        opt.begin_iteration();
        let grad = Tensor::ones([layout.numel()], (Kind::Double, tch::Device::Cpu));
        let local = Local {
            grad,
            samples: 1,
            hessian: None,
        };
        opt.local_update(0, local).unwrap();
        opt.end_iteration();
        let moved = (&w0 - opt.params()) / 1e-3;
        let eps: f64 = 1e-6;
        let diagonal = 1.0 / (1.0 + eps).sqrt();
        assert!((moved.double_value(&[21 + 12]) - diagonal).abs() < 1e-12);
        // G = 1: R = εI + GᵀG has 1 as an eigenvector (eigenvalue 7·3 + ε), so each entry
        // of G R^(−1/2) is 1/√(21 + ε); likewise L^(−1/2) G for b with 2·6 + ε.
        assert!((moved.double_value(&[0]) - 1.0 / (21.0 + eps).sqrt()).abs() < 1e-12);
        assert!((moved.double_value(&[21]) - 1.0 / (12.0 + eps).sqrt()).abs() < 1e-12);
    }
}
