//! Least-squares problems min_w ‖Aw − b‖²/(2N) + μ‖w‖²/2: read from `.npz` or generated.
use anyhow::{bail, ensure, Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, StudentT};
use std::path::Path;
use tch::{Kind, Tensor};

/// Standard deviation of the noise on b in generated problems.
pub const DEFAULT_NOISE: f64 = 0.1;

/// Rows of `a` are samples; block i of `N/m` consecutive rows is worker i's D_i.
pub struct Problem {
    /// N x d, f64 on the CPU.
    pub a: Tensor,
    /// N, f64 on the CPU.
    pub b: Tensor,
}

impl Problem {
    pub fn samples(&self) -> i64 {
        self.a.size()[0]
    }
    pub fn dim(&self) -> i64 {
        self.a.size()[1]
    }

    /// Reads arrays `A` (N x d) and `b` (N, or N x 1) from an `.npz` file.
    pub fn read_npz(path: &Path) -> Result<Self> {
        let arrays = Tensor::read_npz(path)
            .with_context(|| format!("cannot read {} as .npz", path.display()))?;
        let get = |name: &str| {
            arrays
                .iter()
                .find(|(n, _)| n.trim_end_matches(".npy") == name)
                .map(|(_, t)| t.to_kind(Kind::Double))
                .with_context(|| {
                    let names: Vec<_> = arrays.iter().map(|(n, _)| n.as_str()).collect();
                    format!(
                        "{}: no array `{name}` (it has {names:?}); expected A (N x d) and b (N)",
                        path.display()
                    )
                })
        };
        let (a, b) = (get("A")?, get("b")?);
        let b = match b.size().as_slice() {
            [n] | [n, 1] => b.reshape([*n]),
            s => bail!("{}: b must have shape (N,), got {s:?}", path.display()),
        };
        ensure!(
            a.dim() == 2 && a.size()[0] == b.size()[0],
            "{}: A must be N x d with N = len(b) = {}, got {:?}",
            path.display(),
            b.size()[0],
            a.size()
        );
        Ok(Self { a, b })
    }

    /// Heterogeneous data in the manner of Zhou & Li [95] (our reading: their generator is
    /// not spelled out in the PISA paper): rows of the first ⌈m/2⌉ blocks D_i are standard
    /// normal, rows of the others Student-t with 5 degrees of freedom (heavier tails, so
    /// the blocks differ in distribution); b = A w̄ + noise·ε with w̄, ε standard normal.
    pub fn generate(samples: usize, dim: usize, workers: usize, noise: f64, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let t5 = StudentT::new(5.0).expect("5 degrees of freedom is valid");
        let w_bar: Vec<f64> = (0..dim).map(|_| StandardNormal.sample(&mut rng)).collect();
        let block = samples / workers;
        let normal_blocks = workers.div_ceil(2);
        let mut a = Vec::with_capacity(samples * dim);
        let mut b = Vec::with_capacity(samples);
        for row in 0..samples {
            let heavy = row / block >= normal_blocks;
            let start = a.len();
            a.extend((0..dim).map(|_| {
                if heavy {
                    t5.sample(&mut rng)
                } else {
                    StandardNormal.sample(&mut rng)
                }
            }));
            let dot: f64 = a[start..].iter().zip(&w_bar).map(|(x, w)| x * w).sum();
            let eps: f64 = StandardNormal.sample(&mut rng);
            b.push(dot + noise * eps);
        }
        Self {
            a: Tensor::from_slice(&a).reshape([samples as i64, dim as i64]),
            b: Tensor::from_slice(&b),
        }
    }

    /// The minimiser of ‖Aw − b‖²/(2N) + μ‖w‖²/2 and its value F*, in f64 on the CPU
    /// (least squares on [A/√N; √μ I] w ≈ [b/√N; 0], minimum-norm if rank-deficient).
    pub fn optimum(&self, mu: f64) -> (Tensor, f64) {
        let n = self.samples() as f64;
        let d = self.dim();
        let a = &self.a / n.sqrt();
        let b = &self.b / n.sqrt();
        let (a, b) = if mu > 0.0 {
            let eye = Tensor::eye(d, (Kind::Double, tch::Device::Cpu)) * mu.sqrt();
            (
                Tensor::cat(&[a, eye], 0),
                Tensor::cat(
                    &[b, Tensor::zeros([d], (Kind::Double, tch::Device::Cpu))],
                    0,
                ),
            )
        } else {
            (a, b)
        };
        let (w, _, _, _) = a.linalg_lstsq(&b.unsqueeze(1), None, "gelsd");
        let w = w.squeeze_dim(1);
        let f = self.objective(&w, mu);
        (w, f)
    }

    /// F_λ(w) = ‖Aw − b‖²/(2N) + μ‖w‖²/2 (the objective of (2.2) for least squares).
    pub fn objective(&self, w: &Tensor, mu: f64) -> f64 {
        let r = self.a.mv(w) - &self.b;
        let n = self.samples() as f64;
        r.dot(&r).double_value(&[]) / (2.0 * n) + 0.5 * mu * w.dot(w).double_value(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_shaped() {
        let p = Problem::generate(40, 3, 4, 0.1, 7);
        let q = Problem::generate(40, 3, 4, 0.1, 7);
        assert_eq!(p.a.size(), vec![40, 3]);
        assert_eq!(p.b.size(), vec![40]);
        assert!(p.a.equal(&q.a) && p.b.equal(&q.b));
        assert!(!p.a.equal(&Problem::generate(40, 3, 4, 0.1, 8).a));
    }

    #[test]
    fn optimum_satisfies_the_normal_equations() {
        let p = Problem::generate(60, 4, 2, 0.5, 1);
        for mu in [0.0, 0.3] {
            let (w, f) = p.optimum(mu);
            // ∇F(w) = Aᵀ(Aw − b)/N + μw = 0
            let grad = p.a.tr().mv(&(p.a.mv(&w) - &p.b)) / 60.0 + &w * mu;
            assert!(grad.abs().max().double_value(&[]) < 1e-12);
            assert!((f - p.objective(&w, mu)).abs() < 1e-15);
        }
    }
}
