//! Schedules: the learning-rate multiplier f(ℓ) every optimizer shares (`lr`, read from
//! a spec's `[schedule]` table by `spec`), and the ADMM penalty schedule
//! σ_i^{ℓ+1} = σ_i^ℓ / γ_i (2.12) with Table 5's γ rules (`sigma`), and where epochs end
//! (`clock`).
pub mod clock;
pub mod lr;
pub mod sigma;
pub mod spec;

pub use clock::Clock;
pub use lr::{Schedule, Shape};
pub use sigma::{k0_rule, Gamma, SigmaSchedule};
pub use spec::{ScheduleKind, ScheduleSpec};
