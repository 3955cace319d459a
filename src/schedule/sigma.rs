//! The penalty schedule of the ADMM family: σ_i^{ℓ+1} = σ_i^ℓ / γ_i (2.12), applied only
//! when k0 divides ℓ (Appendix A.2), with γ either fixed or one of Table 5's rules.
//!
//! Table 5 (Appendix A.1) writes its σ schedules with n iterations per epoch and E epochs:
//! - γ_ℓ(t, s) = t if ℓ is a multiple of s·n, else 1. That is a fixed γ = t with
//!   k0 = s·n: `gamma = t, k0_epochs = s` in a spec.
//! - γ_ℓ = 1 − 1/(E − ⌊ℓ/n⌋): [`Gamma::Epochs`], `gamma_rule = "epochs"` in a spec. The
//!   formula reaches γ = 0 in the last epoch (⌊ℓ/n⌋ = E − 1) and goes negative after E
//!   epochs; the guard here is γ_ℓ = 1 (σ unchanged) whenever E − ⌊ℓ/n⌋ ≤ 1. Applied every
//!   iteration as printed (k0 = 1), σ grows by (E − e)/(E − e − 1) per iteration in epoch e;
//!   with `k0_epochs = 1` it changes once per epoch and telescopes to σ = σ⁰·E/(E − e − 1)
//!   in epoch e ≤ E − 2 (σ⁰·E in the last), a step size 1/σ that decays linearly.

/// Rule (A.1): k0 = ⌈ln γ / ln 0.99⌉, so that γ^{K/k0} = 0.99^K.
pub fn k0_rule(gamma: f64) -> usize {
    if gamma >= 1.0 {
        return 1;
    }
    // Round away float noise before the ceiling (ln 0.99 / ln 0.99 must give 1).
    let ratio = gamma.ln() / 0.99f64.ln();
    ((ratio * 1e9).round() / 1e9).ceil().max(1.0) as usize
}

/// Where γ_i of (2.12) comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gamma {
    /// The same γ ∈ (0, 1] at every update.
    Fixed(f64),
    /// Table 5's γ_ℓ = 1 − 1/(E − ⌊ℓ/n⌋) for E `epochs` of n = `per_epoch` iterations,
    /// guarded to 1 where E − ⌊ℓ/n⌋ ≤ 1 (see the module doc).
    Epochs { epochs: usize, per_epoch: usize },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SigmaSchedule {
    gamma: Gamma,
    k0: usize,
}

impl SigmaSchedule {
    /// A fixed γ ∈ (0, 1] every k0 iterations.
    pub fn new(gamma: f64, k0: usize) -> Self {
        assert!(gamma > 0.0 && gamma <= 1.0 && k0 >= 1);
        Self {
            gamma: Gamma::Fixed(gamma),
            k0,
        }
    }

    /// Table 5's γ_ℓ = 1 − 1/(E − ⌊ℓ/n⌋), applied every k0 iterations.
    pub fn epochs(epochs: usize, per_epoch: usize, k0: usize) -> Self {
        assert!(epochs >= 1 && per_epoch >= 1 && k0 >= 1);
        Self {
            gamma: Gamma::Epochs { epochs, per_epoch },
            k0,
        }
    }

    pub fn k0(&self) -> usize {
        self.k0
    }

    /// γ_ℓ at iteration ℓ (0-based).
    pub fn gamma(&self, iteration: usize) -> f64 {
        match self.gamma {
            Gamma::Fixed(g) => g,
            Gamma::Epochs { epochs, per_epoch } => {
                let left = epochs.saturating_sub(iteration / per_epoch); // E − ⌊ℓ/n⌋
                if left <= 1 {
                    1.0 // the guard: the formula's γ = 0 (last epoch) or < 0 (past E)
                } else {
                    1.0 - 1.0 / left as f64
                }
            }
        }
    }

    /// How σ grows, in words (divergence advice).
    pub fn describe(&self) -> String {
        match self.gamma {
            Gamma::Fixed(g) => format!(
                "σ is divided by gamma = {g} every k0 = {} iterations",
                self.k0
            ),
            Gamma::Epochs { epochs, .. } => format!(
                "σ is divided by Table 5's γ_ℓ = 1 − 1/(E − ⌊ℓ/n⌋) (E = {epochs}) every k0 = {} \
                 iterations",
                self.k0
            ),
        }
    }

    /// σ^{ℓ+1} from σ^ℓ at iteration ℓ (0-based): divided by γ_ℓ when k0 divides ℓ, so
    /// with k0 = 1 and a fixed γ it is (2.12) at every iteration and σ^ℓ = σ^0 γ^{-ℓ}.
    pub fn next(&self, sigma: f64, iteration: usize) -> f64 {
        if iteration.is_multiple_of(self.k0) {
            sigma / self.gamma(iteration)
        } else {
            sigma
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(s: SigmaSchedule, sigma0: f64, iterations: usize) -> Vec<f64> {
        let mut sigma = sigma0;
        (0..iterations)
            .map(|l| {
                sigma = s.next(sigma, l);
                sigma
            })
            .collect()
    }

    fn close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12 * w.abs(), "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn k0_rule_matches_the_papers_examples() {
        // Appendix A.2: k0 = 69, 36, 11, 1 for γ = 0.5, 0.7, 0.9, 0.99.
        let got: Vec<usize> = [0.5, 0.7, 0.9, 0.99].iter().map(|&g| k0_rule(g)).collect();
        assert_eq!(got, vec![69, 36, 11, 1]);
        assert_eq!(k0_rule(1.0), 1);
    }

    #[test]
    fn divides_every_k0_iterations() {
        let got = trace(SigmaSchedule::new(0.5, 3), 1.0, 7);
        assert_eq!(got, vec![2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 8.0]);
        let sigma = *trace(SigmaSchedule::new(0.99, 1), 16.0, 10).last().unwrap();
        assert!((sigma - 16.0 * 0.99f64.powi(-10)).abs() < 1e-12);
    }

    #[test]
    fn table_5_step_rule_is_a_fixed_gamma_every_s_epochs() {
        // γ_ℓ(0.8, 2) with n = 3: σ divided by 0.8 at ℓ = 0, 6, 12.
        let got = trace(SigmaSchedule::new(0.8, 2 * 3), 1.0, 13);
        let want: Vec<f64> = (0..13).map(|l| 0.8f64.powi(-(l / 6 + 1))).collect();
        close(&got, &want);
    }

    #[test]
    fn table_5_epoch_rule_and_its_guard() {
        // E = 4 epochs of n = 2: γ = 3/4, 3/4, 2/3, 2/3, 1/2, 1/2, then 1 (guard: the
        // formula's 0 in the last epoch) and 1 past the end.
        let s = SigmaSchedule::epochs(4, 2, 1);
        let gammas: Vec<f64> = (0..10).map(|l| s.gamma(l)).collect();
        let third = 2.0 / 3.0;
        close(
            &gammas,
            &[0.75, 0.75, third, third, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0],
        );
        let got = trace(s, 1.0, 8);
        close(
            &got,
            &[4.0 / 3.0, 16.0 / 9.0, 8.0 / 3.0, 4.0, 8.0, 16.0, 16.0, 16.0],
        );
        // Once per epoch (k0 = n) it telescopes to σ⁰·E/(E − e − 1), then σ⁰·E.
        let got = trace(SigmaSchedule::epochs(4, 2, 2), 1.0, 8);
        close(&got, &[4.0 / 3.0, 4.0 / 3.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0]);
    }
}
