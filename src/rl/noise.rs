//! The reset noise of gymnasium's `reset_model`: the initial state plus uniform noise on
//! the positions and, per environment, uniform or scaled standard-normal noise on the
//! velocities. Drawn from pisa's ChaCha8 stream, so a seed does not give numpy's draws.
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// How the velocities are perturbed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum VelocityNoise {
    /// `np_random.uniform(low=-scale, high=scale)` (Humanoid).
    Uniform,
    /// `scale * np_random.standard_normal()` (Ant, HalfCheetah, InvertedDoublePendulum).
    Normal,
}

/// `reset_model`'s perturbation of `init_qpos` and `init_qvel`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResetNoise {
    /// `reset_noise_scale` (InvertedDoublePendulum's fixed 0.1).
    pub scale: f64,
    pub velocity: VelocityNoise,
}

impl ResetNoise {
    /// `(init_qpos + U[−scale, scale), init_qvel + noise)`, the positions drawn first as in
    /// gymnasium.
    pub fn sample(
        &self,
        init_qpos: &[f64],
        init_qvel: &[f64],
        rng: &mut ChaCha8Rng,
    ) -> (Vec<f64>, Vec<f64>) {
        let s = self.scale;
        let mut uniform = |v: &f64| v + rng.random_range(-s..s);
        let qpos = init_qpos.iter().map(&mut uniform).collect();
        let qvel = match self.velocity {
            VelocityNoise::Uniform => init_qvel.iter().map(uniform).collect(),
            VelocityNoise::Normal => init_qvel
                .iter()
                .map(|v| v + s * rng.sample::<f64, _>(StandardNormal))
                .collect(),
        };
        (qpos, qvel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn draws(velocity: VelocityNoise, scale: f64) -> (Vec<f64>, Vec<f64>) {
        let noise = ResetNoise { scale, velocity };
        let (q0, v0) = (vec![1.0; 4], vec![-2.0; 3]);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (mut q, mut v) = (vec![], vec![]);
        for _ in 0..20_000 {
            let (dq, dv) = noise.sample(&q0, &v0, &mut rng);
            q.extend(dq.iter().map(|x| x - 1.0));
            v.extend(dv.iter().map(|x| x + 2.0));
        }
        (q, v)
    }

    fn mean_and_std(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    #[test]
    fn uniform_noise_stays_within_the_scale_and_has_its_spread() {
        let scale = 0.1;
        let (q, v) = draws(VelocityNoise::Uniform, scale);
        for xs in [&q, &v] {
            assert!(xs.iter().all(|x| x.abs() <= scale + 1e-15));
            let (mean, std) = mean_and_std(xs);
            // U(−s, s): mean 0, standard deviation s/√3 (≈ 0.0577 here); the sample's
            // errors are ≈ 0.0004 and 0.0003.
            assert!(mean.abs() < 2e-3, "{mean}");
            assert!((std - scale / 3f64.sqrt()).abs() < 2e-3, "{std}");
            // Both halves of the interval are reached.
            assert!(xs.iter().any(|&x| x > 0.95 * scale) && xs.iter().any(|&x| x < -0.95 * scale));
        }
    }

    #[test]
    fn normal_velocity_noise_has_the_scale_as_its_deviation() {
        let scale = 0.1;
        let (q, v) = draws(VelocityNoise::Normal, scale);
        assert!(q.iter().all(|x| x.abs() <= scale + 1e-15));
        let (mean, std) = mean_and_std(&v);
        assert!(mean.abs() < 3e-3, "{mean}");
        assert!((std - scale).abs() < 3e-3, "{std}");
        // Unbounded: some draws lie beyond 3σ (≈ 0.3% of 60,000).
        assert!(v.iter().any(|x| x.abs() > 3.0 * scale));
    }

    #[test]
    fn the_same_seed_gives_the_same_state() {
        let noise = ResetNoise {
            scale: 0.1,
            velocity: VelocityNoise::Normal,
        };
        let draw = |seed| noise.sample(&[0.0; 3], &[0.0; 2], &mut ChaCha8Rng::seed_from_u64(seed));
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }
}
