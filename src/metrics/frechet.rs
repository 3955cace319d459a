//! The Fréchet distance between Gaussians fitted to two sets of features (FID when the
//! features are pytorch-fid's Inception pool3), and the cached statistics of the real
//! data.
//!
//! Follows pytorch-fid (`pytorch_fid/fid_score.py`): `calculate_activation_statistics`
//! fits μ = the mean and Σ = `np.cov(act, rowvar=False)` (unbiased, N − 1), and
//! `calculate_frechet_distance` returns ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr √(Σ₁Σ₂).
//! Everything here is f64 (pytorch-fid takes the mean in the activations' f32; the
//! covariance it computes in f64 too).
use crate::results::write_atomic_with;
use anyhow::{ensure, Context, Result};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The mean and covariance of features [N, d].
#[derive(Debug)]
pub struct Statistics {
    /// μ [d], f64 on the CPU.
    pub mu: Tensor,
    /// Σ [d, d], f64 on the CPU.
    pub sigma: Tensor,
}

/// The names of the tensors in a statistics file.
const MU: &str = "mu";
const SIGMA: &str = "sigma";
const CHECKSUM: &str = "checksum";

impl Statistics {
    /// μ and the unbiased covariance of `features` [N, d] (N ≥ 2, finite), computed in
    /// f64 on the CPU.
    pub fn from_features(features: &Tensor) -> Result<Self> {
        let size = features.size();
        ensure!(
            size.len() == 2 && size[0] >= 2 && size[1] >= 1,
            "Fréchet statistics need features [N ≥ 2, d ≥ 1], got {size:?}"
        );
        let x = features.to_device(Device::Cpu).to_kind(Kind::Double);
        ensure!(
            bool::try_from(x.isfinite().all())?,
            "Fréchet statistics: the features are not all finite"
        );
        let mu = x.mean_dim(0, false, Kind::Double);
        let centred = &x - &mu;
        let sigma = centred.tr().matmul(&centred) / (size[0] - 1) as f64;
        Ok(Self { mu, sigma })
    }

    /// The feature dimension d.
    pub fn dims(&self) -> i64 {
        self.mu.size()[0]
    }

    /// Checks that μ is [d] and Σ is [d, d], f64 and finite (`what` names them in the
    /// error).
    fn check(&self, what: &str) -> Result<()> {
        let (mu, sigma) = (self.mu.size(), self.sigma.size());
        ensure!(
            mu.len() == 1 && sigma == [mu[0], mu[0]],
            "{what}: μ is {mu:?} and Σ is {sigma:?}, expected [d] and [d, d]"
        );
        ensure!(
            self.mu.kind() == Kind::Double && self.sigma.kind() == Kind::Double,
            "{what}: μ and Σ must be f64, got {:?} and {:?}",
            self.mu.kind(),
            self.sigma.kind()
        );
        let finite = self
            .mu
            .isfinite()
            .all()
            .logical_and(&self.sigma.isfinite().all());
        ensure!(bool::try_from(finite)?, "{what}: μ or Σ is not finite");
        Ok(())
    }

    /// Writes μ, Σ and `checksum` (of the real data they were computed from, stored as
    /// its UTF-8 bytes, a u8 tensor) to `path` as safetensors, atomically.
    pub fn save(&self, path: &Path, checksum: &str) -> Result<()> {
        self.check("Fréchet statistics")?;
        let named = [
            (MU, self.mu.to_device(Device::Cpu)),
            (SIGMA, self.sigma.to_device(Device::Cpu)),
            (CHECKSUM, Tensor::from_slice(checksum.as_bytes())),
        ];
        write_atomic_with(path, |tmp| Ok(Tensor::write_safetensors(&named, tmp)?))
    }

    /// Reads statistics written by [`Statistics::save`], checking that they are of the
    /// data with `expected_checksum` and of `dims` features; any mismatch is an error
    /// that says to delete the file so that they are recomputed.
    pub fn load(path: &Path, expected_checksum: &str, dims: i64) -> Result<Self> {
        let shown = path.display();
        ensure!(
            path.is_file(),
            "cached Fréchet statistics {shown} do not exist"
        );
        let redo = format!("delete {shown} to recompute them");
        let mut named = Tensor::read_safetensors(path).with_context(|| {
            format!("cannot read cached Fréchet statistics {shown} as safetensors; {redo}")
        })?;
        let mut take = |name: &str| -> Result<Tensor> {
            let at = named.iter().position(|(n, _)| n == name);
            let at = at.with_context(|| {
                format!("cached Fréchet statistics {shown} have no `{name}`; {redo}")
            })?;
            Ok(named.swap_remove(at).1)
        };
        let (mu, sigma, checksum) = (take(MU)?, take(SIGMA)?, take(CHECKSUM)?);
        let checksum = (checksum.kind() == Kind::Uint8 && checksum.dim() == 1)
            .then(|| Vec::<u8>::try_from(&checksum).ok())
            .flatten()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .with_context(|| {
                format!("cached Fréchet statistics {shown}: `{CHECKSUM}` is not UTF-8 text; {redo}")
            })?;
        ensure!(
            checksum == expected_checksum,
            "cached Fréchet statistics {shown} are of data with checksum {checksum}, but the \
             data now has checksum {expected_checksum}; {redo}"
        );
        let stats = Self { mu, sigma };
        stats
            .check(&format!("cached Fréchet statistics {shown}"))
            .with_context(|| redo.clone())?;
        ensure!(
            stats.dims() == dims,
            "cached Fréchet statistics {shown} are of {} features, but the feature \
             extractor gives {dims}; {redo}",
            stats.dims()
        );
        Ok(stats)
    }
}

/// ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr √(Σ₁Σ₂), in f64 (pytorch-fid's
/// `calculate_frechet_distance`).
///
/// pytorch-fid takes scipy's `sqrtm(Σ₁Σ₂)` and its trace. Here the trace comes from
/// eigenvalues instead: with R = √Σ₁ (from `linalg_eigh` of Σ₁), Σ₁Σ₂ = R·(RΣ₂) and
/// M = RΣ₂R = (RΣ₂)·R, and XY and YX have the same eigenvalues, so Σ₁Σ₂ has the
/// eigenvalues λᵢ ≥ 0 of the symmetric PSD M. The principal square root that sqrtm
/// computes has the eigenvalues √λᵢ, so its trace is Σ √λᵢ (`linalg_eigvalsh` of M,
/// round-off negatives clamped to 0). This needs no eps·I offset when Σ₁Σ₂ is
/// singular (N < d): pytorch-fid adds 1e-6·I to both covariances only when sqrtm comes
/// back non-finite, which moves its value by O(√1e-6) per zero eigenvalue; where sqrtm
/// succeeds, as on the goldens with N < d, the two agree to round-off.
pub fn frechet_distance(a: &Statistics, b: &Statistics) -> Result<f64> {
    a.check("Fréchet distance, first statistics")?;
    b.check("Fréchet distance, second statistics")?;
    ensure!(
        a.dims() == b.dims(),
        "Fréchet distance between statistics of {} and {} features",
        a.dims(),
        b.dims()
    );
    let (a_mu, a_sigma) = (a.mu.to_device(Device::Cpu), a.sigma.to_device(Device::Cpu));
    let (b_mu, b_sigma) = (b.mu.to_device(Device::Cpu), b.sigma.to_device(Device::Cpu));
    let (lambda, v) = a_sigma.linalg_eigh("L");
    let root = (&v * lambda.clamp_min(0.0).sqrt().unsqueeze(0)).matmul(&v.tr());
    let m = root.matmul(&b_sigma).matmul(&root);
    let m = (&m + m.tr()) / 2.0;
    let tr_sqrt = m
        .linalg_eigvalsh("L")
        .clamp_min(0.0)
        .sqrt()
        .sum(Kind::Double);
    let mean_term = (&a_mu - &b_mu).square().sum(Kind::Double);
    let value = mean_term + a_sigma.trace() + b_sigma.trace() - tr_sqrt * 2.0;
    Ok(value.double_value(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::seeded;

    fn features(n: i64, d: i64, seed: u64, shift: f64) -> Tensor {
        seeded(seed, || {
            let mix = Tensor::randn([d, d], (Kind::Double, Device::Cpu)) / (d as f64).sqrt();
            Tensor::randn([n, d], (Kind::Double, Device::Cpu)).matmul(&mix) + shift
        })
    }

    #[test]
    fn covariance_is_unbiased() {
        let x = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 5.0, 5.0, 11.0]).reshape([3, 2]);
        let s = Statistics::from_features(&x).unwrap();
        let mu: Vec<f64> = Vec::try_from(&s.mu).unwrap();
        let sigma: Vec<f64> = Vec::try_from(s.sigma.reshape([-1])).unwrap();
        assert_eq!(mu, [3.0, 6.0]);
        // Deviations (−2, −4), (0, −1), (2, 5): Σ = [[8, 18], [18, 42]] / (3 − 1).
        assert_eq!(sigma, [4.0, 9.0, 9.0, 21.0]);
    }

    #[test]
    fn identical_statistics_are_at_distance_zero() {
        let s = Statistics::from_features(&features(100, 16, 1, 0.0)).unwrap();
        let d = frechet_distance(&s, &s).unwrap();
        assert!(d.abs() < 1e-10, "{d}");
        let t = Statistics::from_features(&features(100, 16, 2, 0.5)).unwrap();
        assert!(frechet_distance(&s, &t).unwrap() > 1.0);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let one = Tensor::zeros([1, 4], (Kind::Double, Device::Cpu));
        assert!(Statistics::from_features(&one).is_err());
        let s4 = Statistics::from_features(&features(10, 4, 1, 0.0)).unwrap();
        let s5 = Statistics::from_features(&features(10, 5, 1, 0.0)).unwrap();
        let err = frechet_distance(&s4, &s5).unwrap_err().to_string();
        assert!(err.contains("4 and 5 features"), "{err}");
        let nan = features(10, 4, 1, f64::NAN);
        assert!(Statistics::from_features(&nan).is_err());
    }

    #[test]
    fn saved_statistics_round_trip_and_check_checksum_and_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("real.safetensors");
        let s = Statistics::from_features(&features(20, 6, 3, 0.1)).unwrap();
        s.save(&path, "sha256:abc").unwrap();
        let back = Statistics::load(&path, "sha256:abc", 6).unwrap();
        assert!(back.mu.equal(&s.mu) && back.sigma.equal(&s.sigma));
        assert!(frechet_distance(&s, &back).unwrap().abs() < 1e-12);

        let err = Statistics::load(&path, "sha256:def", 6)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("checksum sha256:abc") && err.contains("sha256:def"),
            "{err}"
        );
        assert!(err.contains(&format!("delete {}", path.display())), "{err}");
        let err = format!(
            "{:#}",
            Statistics::load(&path, "sha256:abc", 2048).unwrap_err()
        );
        assert!(
            err.contains("of 6 features") && err.contains("gives 2048"),
            "{err}"
        );
        assert!(err.contains("delete"), "{err}");

        let missing = dir.path().join("absent.safetensors");
        let err = Statistics::load(&missing, "x", 6).unwrap_err().to_string();
        assert!(err.contains("do not exist"), "{err}");
        std::fs::write(&missing, b"not safetensors").unwrap();
        let err = format!("{:#}", Statistics::load(&missing, "x", 6).unwrap_err());
        assert!(err.contains("delete"), "{err}");
        std::fs::remove_file(&missing).unwrap();
        // No temporary file is left beside the statistics.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
