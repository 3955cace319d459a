//! Tianshou's `RunningMeanStd` (tianshou/utils/statistics.py): per-dimension mean and
//! variance of every batch seen so far, merged by the parallel algorithm of Chan et al.
//! It normalises observations (`VectorEnvNormObs`) and, with one dimension, scales the
//! critic's returns (`PGPolicy`'s `ret_rms`).
use anyhow::{ensure, Result};

/// Tianshou's `VectorEnvNormObs` normalisation: ε = `np.finfo(np.float32).eps`, and the
/// normalised values are clipped to ±10.
pub const OBS_EPS: f64 = f32::EPSILON as f64;
pub const OBS_CLIP: f64 = 10.0;
/// `PGPolicy._eps`, added to `ret_rms.var` before the square root.
pub const RETURN_EPS: f64 = 1e-8;

#[derive(Debug, Clone, PartialEq)]
pub struct RunningMeanStd {
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
    /// Samples seen; Tianshou starts it at 0 (mean 0, variance 1, which the first batch
    /// then replaces).
    pub count: f64,
}

impl RunningMeanStd {
    pub fn new(dim: usize) -> Self {
        Self {
            mean: vec![0.0; dim],
            var: vec![1.0; dim],
            count: 0.0,
        }
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// `update(data_array)`: merges the batch `rows` (each of [`Self::dim`] values) with
    /// its population variance (`np.var`, ddof 0).
    pub fn update<R: AsRef<[f64]>>(&mut self, rows: &[R]) {
        if rows.is_empty() {
            return;
        }
        let n = rows.len() as f64;
        let total = self.count + n;
        for d in 0..self.dim() {
            let batch_mean = rows.iter().map(|r| r.as_ref()[d]).sum::<f64>() / n;
            let batch_var = rows
                .iter()
                .map(|r| (r.as_ref()[d] - batch_mean).powi(2))
                .sum::<f64>()
                / n;
            let delta = batch_mean - self.mean[d];
            let m2 =
                self.var[d] * self.count + batch_var * n + delta.powi(2) * self.count * n / total;
            self.mean[d] += delta * n / total;
            self.var[d] = m2 / total;
        }
        self.count = total;
    }

    /// `norm`: (x − mean)/√(var + eps), clipped to ±`clip`, in place.
    pub fn normalise(&self, x: &mut [f64], eps: f64, clip: f64) {
        for ((v, mean), var) in x.iter_mut().zip(&self.mean).zip(&self.var) {
            *v = ((*v - mean) / (var + eps).sqrt()).clamp(-clip, clip);
        }
    }

    /// The statistics as one vector (mean, var, count), for a checkpoint.
    pub fn to_vec(&self) -> Vec<f64> {
        let mut v = self.mean.clone();
        v.extend(&self.var);
        v.push(self.count);
        v
    }

    /// Restores what [`Self::to_vec`] wrote, for statistics of the same dimension.
    pub fn load(&mut self, saved: &[f64]) -> Result<()> {
        let d = self.dim();
        ensure!(
            saved.len() == 2 * d + 1,
            "running statistics of {d} dimensions hold {} values, not {}",
            2 * d + 1,
            saved.len()
        );
        self.mean.copy_from_slice(&saved[..d]);
        self.var.copy_from_slice(&saved[d..2 * d]);
        self.count = saved[2 * d];
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_merge_into_the_statistics_of_all_samples() {
        let rows: Vec<Vec<f64>> = (0..7)
            .map(|i| vec![i as f64, (i * i) as f64 - 3.0])
            .collect();
        let mut merged = RunningMeanStd::new(2);
        merged.update(&rows[..3]);
        merged.update(&rows[3..4]);
        merged.update(&rows[4..]);
        let mut once = RunningMeanStd::new(2);
        once.update(&rows);
        for d in 0..2 {
            let mean = rows.iter().map(|r| r[d]).sum::<f64>() / 7.0;
            let var = rows.iter().map(|r| (r[d] - mean).powi(2)).sum::<f64>() / 7.0;
            assert!((merged.mean[d] - mean).abs() < 1e-12);
            assert!((merged.var[d] - var).abs() < 1e-12);
            assert!((once.var[d] - var).abs() < 1e-12);
        }
        assert_eq!(merged.count, 7.0);
        let mut x = [100.0, -3.0];
        merged.normalise(&mut x, OBS_EPS, OBS_CLIP);
        assert_eq!(x[0], OBS_CLIP, "clipped");
        let mut back = RunningMeanStd::new(2);
        back.load(&merged.to_vec()).unwrap();
        assert_eq!(back, merged);
        assert!(back.load(&[0.0; 4]).is_err());
    }
}
