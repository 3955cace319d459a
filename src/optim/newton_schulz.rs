//! The quintic Newton–Schulz iteration that Muon (Jordan et al. 2024) uses to
//! orthogonalise an update, B ↦ ≈ UVᵀ for B = UΣVᵀ, as Keller Jordan's reference
//! `zeropower_via_newtonschulz5` (github.com/KellerJordan/Muon, muon.py) computes it:
//! normalise by the Frobenius norm, work on the wide orientation (transpose tall
//! matrices), then `steps` times X ← aX + (bA + cA²)X with A = XXᵀ and
//! (a, b, c) = (3.4445, −4.7750, 2.0315). The coefficients maximise the slope at 0, so
//! the singular values land in about [0.68, 1.14] after 5 steps rather than exactly on 1.
//! Shared by Muon and NSISA; the caller picks the dtype (bf16 on CUDA in the reference).
use tch::Tensor;

/// (a, b, c) of the quintic p(σ) = aσ + bσ³ + cσ⁵.
pub const COEFFICIENTS: (f64, f64, f64) = (3.4445, -4.7750, 2.0315);

/// Added to the Frobenius norm before dividing by it (the reference's 1e-7).
const NORM_EPS: f64 = 1e-7;

/// ≈ UVᵀ of the matrix `b` ([rows, cols], any floating dtype; computed in that dtype),
/// with the same shape and dtype.
pub fn orthogonalize(b: &Tensor, steps: usize) -> Tensor {
    let size = b.size();
    assert_eq!(
        size.len(),
        2,
        "orthogonalize takes a matrix, not a tensor of shape {size:?}"
    );
    let (a_, b_, c_) = COEFFICIENTS;
    let tall = size[0] > size[1];
    let x = if tall { b.mt() } else { b.shallow_clone() };
    // X ← X / (‖X‖_F + ε): every singular value ≤ 1
    let mut x = &x / (x.norm() + NORM_EPS);
    for _ in 0..steps {
        // A = XXᵀ, B = bA + (cA)A, X ← aX + BX, in the reference's operation order
        let a = x.mm(&x.mt());
        let bm = &a * b_ + (&a * c_).mm(&a);
        x = &x * a_ + bm.mm(&x);
    }
    if tall {
        x.mt()
    } else {
        x
    }
}

/// The `ns_dtype` key Muon and NSISA share.
pub const NS_DTYPE: crate::optim::hyper::Hyper = crate::optim::hyper::Hyper {
    name: "ns_dtype",
    kind: crate::optim::hyper::Kind::Choice(&["auto", "bf16", "f32", "param"]),
    default: crate::optim::hyper::Default::Str("auto"),
    doc: "dtype of the Newton–Schulz iteration (auto: bf16 on CUDA, else the parameters')",
};

/// The dtype `ns_dtype` asks for, for parameters like `w`.
pub fn dtype(choice: &str, w: &Tensor) -> tch::Kind {
    match choice {
        "bf16" => tch::Kind::BFloat16,
        "f32" => tch::Kind::Float,
        "auto" if w.device().is_cuda() => tch::Kind::BFloat16,
        _ => w.kind(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::seeded;
    use tch::{Device, Kind};

    fn singular_values(x: &Tensor) -> Vec<f64> {
        let (_, s, _) = x.to_kind(Kind::Double).svd(true, false);
        Vec::<f64>::try_from(&s).unwrap()
    }

    #[test]
    fn random_matrices_come_out_close_to_u_v_transposed() {
        for shape in [[16i64, 64], [64, 16], [6, 4], [3, 6]] {
            for kind in [Kind::Double, Kind::Float] {
                let b = seeded(7, || Tensor::randn(shape, (kind, Device::Cpu)));
                let o = orthogonalize(&b, 5);
                assert_eq!(o.size(), b.size());
                assert_eq!(o.kind(), kind);
                for s in singular_values(&o) {
                    assert!(
                        (0.65..=1.2).contains(&s),
                        "{shape:?} {kind:?}: singular value {s}"
                    );
                }
                // Same singular vectors: O = U p(Σ) Vᵀ, so ‖O − UVᵀ‖₂ = max |p(σ) − 1|.
                let (u, _, v) = b.to_kind(Kind::Double).svd(true, true);
                let polar = u.mm(&v.mt());
                let gap = singular_values(&(o.to_kind(Kind::Double) - polar));
                assert!(gap[0] < 0.35, "{shape:?} {kind:?}: ‖O − UVᵀ‖₂ = {}", gap[0]);
            }
        }
    }

    #[test]
    fn an_orthogonal_input_stays_near_orthogonal() {
        let (q, _) = Tensor::linalg_qr(
            &seeded(11, || Tensor::randn([8, 8], (Kind::Double, Device::Cpu))),
            "reduced",
        );
        let o = orthogonalize(&q, 5);
        for s in singular_values(&o) {
            assert!((0.65..=1.2).contains(&s), "singular value {s}");
        }
        // OOᵀ ≈ I up to the iteration's spread of the singular values
        let gram = o.mm(&o.mt()) - Tensor::eye(8, (Kind::Double, Device::Cpu));
        assert!(gram.abs().max().double_value(&[]) < 0.5);
    }

    #[test]
    fn bf16_runs_and_keeps_its_dtype() {
        let b = seeded(3, || Tensor::randn([6, 4], (Kind::BFloat16, Device::Cpu)));
        let o = orthogonalize(&b, 5);
        assert_eq!(o.kind(), Kind::BFloat16);
        for s in singular_values(&o) {
            assert!((0.6..=1.25).contains(&s), "singular value {s}");
        }
    }
}
