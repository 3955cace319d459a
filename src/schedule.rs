//! Schedules: the learning-rate multiplier shared by all optimizers, and the penalty
//! schedule σ_i^{ℓ+1} = σ_i^ℓ / γ_i (2.12) applied every k0 iterations (A.2).

/// A multiplier of the learning rate over iterations (for the ADMM family it divides σ
/// and ρ together, the step size being about 1/(σ + ρ)).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Schedule {
    #[default]
    Constant,
}

impl Schedule {
    /// The multiplier at iteration ℓ (0-based).
    pub fn factor(&self, _iteration: usize) -> f64 {
        match self {
            Schedule::Constant => 1.0,
        }
    }
}

/// Rule (A.1): k0 = ⌈ln γ / ln 0.99⌉, so that γ^{K/k0} = 0.99^K.
pub fn k0_rule(gamma: f64) -> usize {
    if gamma >= 1.0 {
        return 1;
    }
    // Round away float noise before the ceiling (ln 0.99 / ln 0.99 must give 1).
    let ratio = gamma.ln() / 0.99f64.ln();
    ((ratio * 1e9).round() / 1e9).ceil().max(1.0) as usize
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SigmaSchedule {
    gamma: f64,
    k0: usize,
}

impl SigmaSchedule {
    pub fn new(gamma: f64, k0: usize) -> Self {
        assert!(gamma > 0.0 && gamma <= 1.0 && k0 >= 1);
        Self { gamma, k0 }
    }

    /// σ^{ℓ+1} from σ^ℓ at iteration ℓ (0-based): divided by γ when k0 divides ℓ, so
    /// with k0 = 1 it is (2.12) at every iteration and σ^ℓ = σ^0 γ^{-ℓ}.
    pub fn next(&self, sigma: f64, iteration: usize) -> f64 {
        if iteration % self.k0 == 0 {
            sigma / self.gamma
        } else {
            sigma
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k0_rule_matches_the_papers_examples() {
        // Appendix A.2: k0 = 69, 36, 11, 1 for γ = 0.5, 0.7, 0.9, 0.99.
        let got: Vec<usize> = [0.5, 0.7, 0.9, 0.99].iter().map(|&g| k0_rule(g)).collect();
        assert_eq!(got, vec![69, 36, 11, 1]);
        assert_eq!(k0_rule(1.0), 1);
    }

    #[test]
    fn divides_every_k0_iterations() {
        let s = SigmaSchedule::new(0.5, 3);
        let mut sigma = 1.0;
        let trace: Vec<f64> = (0..7)
            .map(|l| {
                sigma = s.next(sigma, l);
                sigma
            })
            .collect();
        assert_eq!(trace, vec![2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 8.0]);
        let every = SigmaSchedule::new(0.99, 1);
        let mut sigma = 16.0;
        for l in 0..10 {
            sigma = every.next(sigma, l);
        }
        assert!((sigma - 16.0 * 0.99f64.powi(-10)).abs() < 1e-12);
    }
}
