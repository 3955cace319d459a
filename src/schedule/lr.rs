//! The learning-rate multiplier f(ℓ) every optimizer shares: a shape (constant, step
//! decay, cosine to a floor, trapezoid, linear decay) times an optional linear warm-up. Classic optimizers take
//! lr·f(ℓ) at iteration ℓ; the ADMM family divides σ and ρ by f(ℓ) (see `optim::admm`).
//! Milestones and lengths are in iterations here; `spec.rs` converts epochs. A task may
//! scale each iteration's step on top (`scale`: the language model's seq_len/bptt).
use std::f64::consts::PI;

/// The shape of f(ℓ) before warm-up.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Shape {
    #[default]
    Constant,
    /// f(ℓ) = factor^{#{milestones ≤ ℓ}} (torch's MultiStepLR stepped once per
    /// iteration); `milestones` strictly increasing.
    Step { milestones: Vec<usize>, factor: f64 },
    /// f(ℓ) = floor + (1 − floor)(1 + cos(π(ℓ − start)/length))/2 for ℓ ≥ start, 1 before
    /// (torch's CosineAnnealingLR with T_max = length, η_min = floor·lr, shifted to start
    /// after the warm-up). With length = iterations − start it reaches the floor one step
    /// after the last iteration.
    Cosine {
        start: usize,
        length: usize,
        floor: f64,
    },
    /// f(ℓ) = 1 until the last `warmdown` of `length` iterations, then (length − ℓ)/warmdown
    /// (modded-nanogpt's `get_lr`, the trapezoid of the PISA GPT-2 scripts).
    Trapezoid { length: usize, warmdown: usize },
    /// f(ℓ) = 1 before `start` (the warm-up's end), then max(0, (length − ℓ)/(length −
    /// start)): transformers' `get_linear_schedule_with_warmup` after its warm-up.
    Linear { start: usize, length: usize },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schedule {
    pub shape: Shape,
    /// Linear warm-up over this many iterations: f is multiplied by (ℓ + 1)/warmup for
    /// ℓ < warmup (so the first iteration already moves); 0 = none.
    pub warmup: usize,
    /// The task's multiplier of iteration ℓ (`Task::step_scales`), 1 beyond its end.
    pub scale: Option<std::sync::Arc<[f64]>>,
}

impl Schedule {
    /// The multiplier at iteration ℓ (0-based).
    pub fn factor(&self, iteration: usize) -> f64 {
        let base = match &self.shape {
            Shape::Constant => 1.0,
            Shape::Step { milestones, factor } => {
                let passed = milestones.partition_point(|&m| m <= iteration);
                factor.powi(passed as i32)
            }
            Shape::Cosine {
                start,
                length,
                floor,
            } => {
                if iteration < *start {
                    1.0
                } else {
                    let t = (iteration - start) as f64 / (*length).max(1) as f64;
                    floor + (1.0 - floor) * (1.0 + (PI * t.min(1.0)).cos()) / 2.0
                }
            }
            Shape::Linear { start, length } => {
                if iteration < *start {
                    1.0
                } else {
                    length.saturating_sub(iteration) as f64 / (length - start).max(1) as f64
                }
            }
            Shape::Trapezoid { length, warmdown } => {
                if iteration + warmdown < *length {
                    1.0
                } else {
                    length.saturating_sub(iteration) as f64 / (*warmdown).max(1) as f64
                }
            }
        };
        let warm = if iteration < self.warmup {
            base * (iteration + 1) as f64 / self.warmup as f64
        } else {
            base
        };
        let scale = self.scale.as_ref().and_then(|s| s.get(iteration));
        warm * scale.copied().unwrap_or(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factors(s: &Schedule, n: usize) -> Vec<f64> {
        (0..n).map(|l| s.factor(l)).collect()
    }

    #[test]
    fn constant_is_one() {
        assert_eq!(factors(&Schedule::default(), 4), vec![1.0; 4]);
    }

    #[test]
    fn step_multiplies_at_each_milestone() {
        let s = Schedule {
            shape: Shape::Step {
                milestones: vec![2, 5],
                factor: 0.5,
            },
            warmup: 0,
            scale: None,
        };
        assert_eq!(factors(&s, 7), vec![1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]);
    }

    #[test]
    fn cosine_falls_to_its_floor() {
        let s = Schedule {
            shape: Shape::Cosine {
                start: 0,
                length: 4,
                floor: 0.2,
            },
            warmup: 0,
            scale: None,
        };
        let c = |t: f64| 0.2 + 0.8 * (1.0 + (PI * t).cos()) / 2.0;
        let want = [1.0, c(0.25), 0.6, c(0.75), 0.2, 0.2];
        for (g, w) in factors(&s, 6).iter().zip(want) {
            assert!((g - w).abs() < 1e-15, "{g} vs {w}");
        }
    }

    #[test]
    fn trapezoid_holds_then_falls_linearly_as_modded_nanogpt() {
        let s = Schedule {
            shape: Shape::Trapezoid {
                length: 6,
                warmdown: 4,
            },
            warmup: 1,
            scale: None,
        };
        assert_eq!(factors(&s, 6), vec![1.0, 1.0, 1.0, 0.75, 0.5, 0.25]);
    }

    #[test]
    fn linear_decays_after_the_warmup_as_transformers() {
        // the PISA AdamW script: warm-up 100 of 320 steps (4 per epoch, 80 epochs)
        let s = Schedule {
            shape: Shape::Linear {
                start: 100,
                length: 320,
            },
            warmup: 100,
            scale: None,
        };
        let f = factors(&s, 330);
        assert_eq!((f[0], f[49], f[99]), (0.01, 0.5, 1.0));
        // get_linear_schedule_with_warmup: (320 − ℓ)/(320 − 100) from ℓ = 100
        for (l, want) in [
            (100, 1.0),
            (210, 0.5),
            (319, 1.0 / 220.0),
            (320, 0.0),
            (329, 0.0),
        ] {
            assert!((f[l] - want).abs() < 1e-15, "f({l}) = {} vs {want}", f[l]);
        }
    }

    #[test]
    fn warmup_composes_with_every_shape() {
        let warm = Schedule {
            shape: Shape::Constant,
            warmup: 4,
            scale: None,
        };
        assert_eq!(factors(&warm, 6), vec![0.25, 0.5, 0.75, 1.0, 1.0, 1.0]);
        let step = Schedule {
            shape: Shape::Step {
                milestones: vec![1],
                factor: 0.1,
            },
            warmup: 2,
            scale: None,
        };
        assert_eq!(factors(&step, 3), vec![0.5, 0.1, 0.1]);
        // Cosine starts after the warm-up: 2 warm-up iterations, then 1, 0.5, 0 over 2.
        let cosine = Schedule {
            shape: Shape::Cosine {
                start: 2,
                length: 2,
                floor: 0.0,
            },
            warmup: 2,
            scale: None,
        };
        let got = factors(&cosine, 5);
        let want = [0.5, 1.0, 1.0, 0.5, 0.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-15, "{got:?}");
        }
    }

    #[test]
    fn the_task_scale_multiplies_each_iteration_and_ends_at_one() {
        let s = Schedule {
            shape: Shape::Step {
                milestones: vec![2],
                factor: 0.5,
            },
            warmup: 0,
            scale: Some(vec![1.0, 0.5, 2.0].into()),
        };
        assert_eq!(factors(&s, 4), vec![1.0, 0.5, 1.0, 0.5]);
    }
}
