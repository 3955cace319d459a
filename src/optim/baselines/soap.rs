//! SOAP (Vyas et al., "SOAP: Improving and Stabilizing Shampoo using Adam", 2024): Adam run
//! in the eigenbasis of Shampoo's preconditioner, as the authors' soap.py
//! (nikhilvyas/SOAP) and pytorch_optimizer 4.1.0's `SOAP` compute it. Per matrix G [m, n]
//! (conv kernels viewed as [out, in·kh·kw]) the statistics L ← lerp(L, GGᵀ, 1 − β_s) and
//! R ← lerp(R, GᵀG, 1 − β_s) (β_s = `shampoo_beta`, default β₂) give the bases Q_L, Q_R:
//! by eigh (eigenvalues descending) when the first gradient arrives — that step only
//! gathers statistics and does not move w — and afterwards every `precondition_frequency`
//! steps by one power iteration and QR, the second moment's rows and columns re-sorted by
//! the estimated eigenvalues. Each step: G' = Q_Lᵀ G Q_R, m ← lerp(m, G, 1 − β₁) (kept in
//! the original basis), v ← lerp(v, G'², 1 − β₂), w ← w − lr·√(1 − β₂ᵏ)/(1 − β₁ᵏ) ·
//! Q_L (Q_Lᵀ m Q_R / (√v + ε)) Q_Rᵀ with k = t − 1, then decoupled weight decay
//! w ← (1 − lr·λ)w. A side longer than `max_precondition_dim` is left unrotated. Vectors
//! (biases, least squares' w) are not preconditioned (the reference's precondition_1d off):
//! they take the same Adam in the identity basis. Defaults are the reference's: lr 3e-3,
//! betas (0.95, 0.95), ε 1e-8, λ 0.01, frequency 10. Golden: `equations.SOAP`, which is
//! pytorch_optimizer's SOAP with its QR in the parameters' dtype instead of f32 (the
//! authors cast to f32 as well, which no f64 run can follow); this code does the same.
use super::per_matrix::{add_scaled_, Split};
use super::{Classic, Step};
use crate::optim::hyper::{float, int, positive, Bound, Default, Hyper, Hypers, Kind};
use crate::optim::layout::Segment;
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::{Kind as Dtype, Tensor};

const BETA: Kind = Kind::Float {
    min: Bound::Closed(0.0),
    max: Bound::Open(1.0),
};

pub const ENTRY: Entry = Entry {
    name: "soap",
    summary: "Adam in the eigenbasis of Shampoo's preconditioner, refreshed every few steps",
    reference: "Vyas et al. 2024 (nikhilvyas/SOAP); golden: equations.SOAP = pytorch_optimizer's \
                SOAP with its QR in the parameters' dtype",
    hypers: &[
        positive("lr", 3e-3, "learning rate"),
        Hyper {
            name: "beta1",
            kind: BETA,
            default: Default::Float(0.95),
            doc: "first-moment decay β₁",
        },
        Hyper {
            name: "beta2",
            kind: BETA,
            default: Default::Float(0.95),
            doc: "second-moment decay β₂",
        },
        Hyper {
            name: "shampoo_beta",
            kind: BETA,
            default: Default::Unset,
            doc: "decay of the preconditioner statistics GGᵀ, GᵀG (default β₂)",
        },
        positive("eps", 1e-8, "added to the denominator"),
        float(
            "weight_decay",
            1e-2,
            "decoupled weight decay λ: w ← (1 − lr·λ)w after the step",
        ),
        int(
            "precondition_frequency",
            1,
            10,
            "refresh the eigenbases every this many steps",
        ),
        int(
            "max_precondition_dim",
            1,
            10000,
            "sides longer than this are not rotated",
        ),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let w0 = c.w0;
    let split = Split::new(c.layout, w0.device(), |_| true);
    let max_dim = h.usize("max_precondition_dim") as i64;
    let bases = split
        .matrices
        .iter()
        .map(|s| Basis::new(s, max_dim, w0))
        .collect();
    Classic::boxed(
        c,
        h.f64("lr"),
        Soap {
            beta1: h.f64("beta1"),
            beta2: h.f64("beta2"),
            shampoo_beta: h.opt_f64("shampoo_beta").unwrap_or(h.f64("beta2")),
            eps: h.f64("eps"),
            weight_decay: h.f64("weight_decay"),
            frequency: h.usize("precondition_frequency") as i64,
            exp_avg: w0.zeros_like(),
            exp_avg_sq: w0.zeros_like(),
            split,
            bases,
        },
    )
}

/// One side of a matrix: its statistics and eigenbasis (absent when the side is longer
/// than `max_precondition_dim`).
struct Side {
    statistics: Tensor,
    /// Q, stored column-major as eigh and QR return it: the products with it then round
    /// as the reference's do (and still do after a checkpoint is copied back in).
    basis: Tensor,
}

/// The two sides of one matrix: [left, right].
struct Basis {
    name: String,
    sides: [Option<Side>; 2],
}

/// The dtype eigh and QR run in: the parameters' own, f32 for half types.
fn linalg_kind(kind: Dtype) -> Dtype {
    match kind {
        Dtype::Half | Dtype::BFloat16 => Dtype::Float,
        k => k,
    }
}

impl Basis {
    fn new(segment: &Segment, max_dim: i64, w0: &Tensor) -> Self {
        let dims = [segment.shape[0], segment.numel() / segment.shape[0]];
        let side = |n: i64| {
            (n <= max_dim).then(|| Side {
                statistics: Tensor::zeros([n, n], (w0.kind(), w0.device())),
                basis: Tensor::zeros([n, n], (w0.kind(), w0.device())).mt(),
            })
        };
        Self {
            name: segment.name.clone(),
            sides: [side(dims[0]), side(dims[1])],
        }
    }

    /// Q_Lᵀ X Q_R (`forward`) or Q_L X Q_Rᵀ, as the reference's `project`: contract
    /// dimension 0 with each side's basis in turn; an unrotated side is only moved last.
    fn project(&self, x: &Tensor, forward: bool) -> Tensor {
        let mut x = x.shallow_clone();
        for side in &self.sides {
            x = match side {
                Some(s) => x.tensordot(&s.basis, [0i64], [if forward { 0i64 } else { 1 }]),
                None => x.permute([1i64, 0]),
            };
        }
        x
    }

    /// L ← lerp(L, GGᵀ, 1 − β_s), R ← lerp(R, GᵀG, 1 − β_s)
    fn accumulate(&mut self, g: &Tensor, shampoo_beta: f64) {
        for (i, side) in self.sides.iter_mut().enumerate() {
            if let Some(s) = side {
                let other = [1 - i as i64];
                let outer = g.tensordot(g, other, other);
                let _ = s.statistics.lerp_(&outer, 1.0 - shampoo_beta);
            }
        }
    }

    /// The first bases: eigenvectors of the statistics, eigenvalues descending.
    fn eigenbases(&mut self) {
        for s in self.sides.iter_mut().flatten() {
            let stats = &s.statistics;
            let n = stats.size()[0];
            let ridged = stats + Tensor::eye(n, (stats.kind(), stats.device())) * 1e-30;
            let (_, q) = ridged.to_kind(linalg_kind(stats.kind())).linalg_eigh("L");
            s.basis.copy_(&q.flip([1i64]));
        }
    }

    /// One power iteration and QR per side, the eigenvalue estimates diag(QᵀSQ) sorting the
    /// new basis and `exp_avg_sq` (this matrix's [m, n] view) along that side.
    fn refresh(&mut self, exp_avg_sq: &mut Tensor) {
        let mut second = exp_avg_sq.copy();
        for (i, side) in self.sides.iter_mut().enumerate() {
            if let Some(s) = side {
                let product = s.statistics.mm(&s.basis);
                let estimates = (&s.basis * &product).sum_dim_intlist(&[0i64][..], false, None);
                let order = estimates.argsort(0, true);
                second = second.index_select(i as i64, &order);
                let power = product.index_select(1, &order);
                let (q, _) =
                    Tensor::linalg_qr(&power.to_kind(linalg_kind(power.kind())), "reduced");
                s.basis.copy_(&q);
            }
        }
        exp_avg_sq.copy_(&second);
    }
}

pub struct Soap {
    beta1: f64,
    beta2: f64,
    shampoo_beta: f64,
    eps: f64,
    weight_decay: f64,
    frequency: i64,
    /// m, in the original basis (as the reference keeps it).
    exp_avg: Tensor,
    /// v, in each matrix's eigenbasis.
    exp_avg_sq: Tensor,
    split: Split,
    bases: Vec<Basis>,
}

impl Soap {
    /// `x` with every matrix's view replaced by its projection (vectors unchanged).
    fn projected(&self, x: &Tensor, forward: bool) -> Tensor {
        let out = x.copy();
        for (segment, basis) in self.split.matrices.iter().zip(&self.bases) {
            let view = segment.matrix(x).expect("a matrix");
            segment
                .matrix(&out)
                .expect("a matrix")
                .copy_(&basis.project(&view, forward));
        }
        out
    }
}

impl Step for Soap {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        let grad = &*grad;
        if t == 1 {
            // The first gradient only starts the statistics and the bases.
            for (segment, basis) in self.split.matrices.iter().zip(&mut self.bases) {
                basis.accumulate(&segment.matrix(grad).expect("a matrix"), self.shampoo_beta);
                basis.eigenbases();
            }
            return;
        }
        let k = t - 1;
        // m ← lerp(m, G, 1 − β₁), v ← lerp(v, G'², 1 − β₂) with G' = Q_Lᵀ G Q_R
        let projected_grad = self.projected(grad, true);
        let _ = self.exp_avg.lerp_(grad, 1.0 - self.beta1);
        let _ = self
            .exp_avg_sq
            .lerp_(&projected_grad.square(), 1.0 - self.beta2);
        let denominator = self.exp_avg_sq.sqrt() + self.eps;
        let ratio = self.projected(&self.exp_avg, true) / denominator;
        let direction = self.projected(&ratio, false);
        let bias1 = 1.0 - self.beta1.powf(k as f64);
        let bias2 = 1.0 - self.beta2.powf(k as f64);
        let step_size = lr * (bias2.sqrt() / bias1);
        add_scaled_(w, &direction, -step_size);
        if self.weight_decay != 0.0 {
            let _ = w.g_mul_scalar_(1.0 - self.weight_decay * lr);
        }
        let refresh = k % self.frequency == 0;
        for (segment, basis) in self.split.matrices.iter().zip(&mut self.bases) {
            basis.accumulate(&segment.matrix(grad).expect("a matrix"), self.shampoo_beta);
            if refresh {
                basis.refresh(&mut segment.matrix(&self.exp_avg_sq).expect("a matrix"));
            }
        }
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = vec![
            ("exp_avg".to_string(), self.exp_avg.shallow_clone()),
            ("exp_avg_sq".to_string(), self.exp_avg_sq.shallow_clone()),
        ];
        for b in &self.bases {
            for (side, s) in ["left", "right"].iter().zip(&b.sides) {
                if let Some(s) = s {
                    state.push((
                        format!("{}.{side}_statistics", b.name),
                        s.statistics.shallow_clone(),
                    ));
                    state.push((format!("{}.{side}_basis", b.name), s.basis.shallow_clone()));
                }
            }
        }
        state
    }
}
