//! `[schedule]`: the learning-rate multiplier of a spec, shared by every optimizer.
//!
//! ```toml
//! [schedule]
//! kind = "cosine"              # "constant" (the default), "step", "cosine", "trapezoid" or "linear"
//! warmup = 100                 # linear warm-up over 100 iterations (any kind), or
//! # warmup_epochs = 1          #   over whole epochs
//! floor = 0.01                 # cosine: the multiplier it falls to (default 0)
//! # kind = "step":
//! # milestones = [3000, 6000]  # iterations where f is multiplied by `factor`, or
//! # milestone_epochs = [30, 60]
//! # factor = 0.1               # default 0.1
//! # kind = "trapezoid":
//! # warmdown = 1450            # f falls linearly to 0 over the last 1450 iterations
//! # kind = "linear":           # transformers' get_linear_schedule_with_warmup
//! # length_epochs = 80         # f falls linearly from 1 after the warm-up to 0 at this
//! #                            #   epoch's end (or `length` iterations; default the run's)
//! ```
//! Epoch-based keys need the task's iterations per epoch, known only when the task is
//! built, so they are checked there ([`ScheduleSpec::build`]); the rest is checked with
//! the spec ([`ScheduleSpec::validate`]).
use super::lr::{Schedule, Shape};
use super::Clock;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    #[default]
    Constant,
    Step,
    Cosine,
    Trapezoid,
    Linear,
}

const DEFAULT_FACTOR: f64 = 0.1;
const DEFAULT_FLOOR: f64 = 0.0;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    #[serde(default)]
    pub kind: ScheduleKind,
    /// Linear warm-up, in iterations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<usize>,
    /// Linear warm-up, in epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_epochs: Option<usize>,
    /// Step: the iterations at which f is multiplied by `factor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub milestones: Option<Vec<usize>>,
    /// Step: the epochs at whose start f is multiplied by `factor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub milestone_epochs: Option<Vec<usize>>,
    /// Step: the multiplier at each milestone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// Cosine: the multiplier it ends at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<f64>,
    /// Trapezoid: the last iterations, over which f falls linearly to 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmdown: Option<usize>,
    /// Linear: the iteration at which f reaches 0 (default: the run's iterations), or
    /// the epoch at whose end it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length_epochs: Option<usize>,
}

type Invalid = (String, String);

fn bad<T>(key: &str, msg: impl Into<String>) -> Result<T, Invalid> {
    Err((format!("schedule.{key}"), msg.into()))
}

impl ScheduleSpec {
    /// Checks the table for a run of `iterations`; on failure returns the dotted key
    /// (`schedule.<key>`) and a message.
    pub fn validate(&self, iterations: usize) -> Result<(), Invalid> {
        let kind = self.kind;
        let only = |key: &str, given: bool, for_kind: ScheduleKind, name: &str| {
            if given && kind != for_kind {
                bad(key, format!("{key} applies to kind = \"{name}\" only"))
            } else {
                Ok(())
            }
        };
        only(
            "milestones",
            self.milestones.is_some(),
            ScheduleKind::Step,
            "step",
        )?;
        only(
            "milestone_epochs",
            self.milestone_epochs.is_some(),
            ScheduleKind::Step,
            "step",
        )?;
        only("factor", self.factor.is_some(), ScheduleKind::Step, "step")?;
        only(
            "floor",
            self.floor.is_some(),
            ScheduleKind::Cosine,
            "cosine",
        )?;
        only(
            "warmdown",
            self.warmdown.is_some(),
            ScheduleKind::Trapezoid,
            "trapezoid",
        )?;
        only(
            "length",
            self.length.is_some(),
            ScheduleKind::Linear,
            "linear",
        )?;
        only(
            "length_epochs",
            self.length_epochs.is_some(),
            ScheduleKind::Linear,
            "linear",
        )?;
        if self.length.is_some() && self.length_epochs.is_some() {
            return bad("length_epochs", "give length or length_epochs, not both");
        }
        if self.length == Some(0) || self.length_epochs == Some(0) {
            return bad(
                if self.length == Some(0) {
                    "length"
                } else {
                    "length_epochs"
                },
                "the length must be at least 1",
            );
        }
        if kind == ScheduleKind::Trapezoid {
            match self.warmdown {
                None => return bad("kind", "kind = \"trapezoid\" needs warmdown = iterations"),
                Some(w) if w == 0 || w > iterations => {
                    return bad(
                        "warmdown",
                        format!(
                            "warmdown must be in 1..={iterations} (the run's iterations), not {w}"
                        ),
                    )
                }
                Some(_) => {}
            }
        }
        if self.warmup.is_some() && self.warmup_epochs.is_some() {
            return bad(
                "warmup_epochs",
                "give warmup (iterations) or warmup_epochs, not both",
            );
        }
        if let Some(w) = self.warmup {
            if w >= iterations && kind == ScheduleKind::Cosine {
                return bad(
                    "warmup",
                    format!("warmup = {w} leaves no iteration of the {iterations} for the cosine"),
                );
            }
        }
        if self.warmup_epochs == Some(0) {
            return bad(
                "warmup_epochs",
                "warmup_epochs must be at least 1 (leave it out for none)",
            );
        }
        if kind == ScheduleKind::Step {
            let (key, milestones) = match (&self.milestones, &self.milestone_epochs) {
                (Some(m), None) => ("milestones", m),
                (None, Some(m)) => ("milestone_epochs", m),
                (Some(_), Some(_)) => {
                    return bad("milestone_epochs", "give milestones or milestone_epochs, not both")
                }
                (None, None) => {
                    return bad(
                        "kind",
                        "kind = \"step\" needs milestones = [iterations] or milestone_epochs = [epochs]",
                    )
                }
            };
            if milestones.is_empty() {
                return bad(key, format!("{key} must list at least one value"));
            }
            if milestones[0] == 0 || milestones.windows(2).any(|w| w[0] >= w[1]) {
                return bad(
                    key,
                    format!("{key} must be strictly increasing and positive"),
                );
            }
            if let Some(f) = self.factor {
                if !(f > 0.0 && f.is_finite()) {
                    return bad(
                        "factor",
                        format!("factor must be a finite number > 0, not {f}"),
                    );
                }
            }
        }
        if let Some(f) = self.floor {
            if !(0.0..=1.0).contains(&f) {
                return bad("floor", format!("floor must be in [0, 1], not {f}"));
            }
        }
        Ok(())
    }

    /// The table with its kind's defaults written out, as saved to `spec.toml`.
    pub fn resolved(&self) -> Self {
        let mut s = self.clone();
        match s.kind {
            ScheduleKind::Step => s.factor = s.factor.or(Some(DEFAULT_FACTOR)),
            ScheduleKind::Cosine => s.floor = s.floor.or(Some(DEFAULT_FLOOR)),
            ScheduleKind::Constant | ScheduleKind::Trapezoid | ScheduleKind::Linear => {}
        }
        s
    }

    /// The schedule of a validated table for a run of `iterations` iterations whose epochs
    /// end where `clock` says (n = 0 when the task does not know, which only epoch-based
    /// keys mind).
    pub fn build(&self, iterations: usize, clock: &Clock) -> anyhow::Result<Schedule> {
        let epochs = |key: &str, e: usize| -> anyhow::Result<usize> {
            anyhow::ensure!(
                clock.per_epoch() > 0,
                "schedule.{key} is in epochs, but this task does not say how many iterations \
                 make an epoch; give it in iterations instead"
            );
            // an epoch beyond the run (or the epochs the task drew) is never reached
            Ok(clock.end_of(e).unwrap_or(usize::MAX))
        };
        let warmup = match (self.warmup, self.warmup_epochs) {
            (Some(w), _) => w,
            (None, Some(e)) => epochs("warmup_epochs", e)?,
            (None, None) => 0,
        };
        let shape = match self.kind {
            ScheduleKind::Constant => Shape::Constant,
            ScheduleKind::Step => {
                let milestones = match (&self.milestones, &self.milestone_epochs) {
                    (Some(m), _) => m.clone(),
                    (None, Some(m)) => m
                        .iter()
                        .map(|&e| epochs("milestone_epochs", e))
                        .collect::<anyhow::Result<_>>()?,
                    (None, None) => unreachable!("validated: step has milestones"),
                };
                Shape::Step {
                    milestones,
                    factor: self.factor.unwrap_or(DEFAULT_FACTOR),
                }
            }
            ScheduleKind::Cosine => {
                anyhow::ensure!(
                    warmup < iterations,
                    "schedule: a warm-up of {warmup} iterations leaves none of the {iterations} \
                     for the cosine"
                );
                Shape::Cosine {
                    start: warmup,
                    length: iterations - warmup,
                    floor: self.floor.unwrap_or(DEFAULT_FLOOR),
                }
            }
            ScheduleKind::Linear => {
                let length = match (self.length, self.length_epochs) {
                    (Some(l), _) => l,
                    (None, Some(e)) => epochs("length_epochs", e)?,
                    (None, None) => iterations,
                };
                anyhow::ensure!(
                    warmup < length,
                    "schedule: a warm-up of {warmup} iterations reaches the linear schedule's                      end ({length} iterations)"
                );
                Shape::Linear {
                    start: warmup,
                    length,
                }
            }
            ScheduleKind::Trapezoid => {
                let warmdown = self.warmdown.expect("validated: trapezoid has warmdown");
                anyhow::ensure!(
                    warmdown <= iterations,
                    "schedule.warmdown = {warmdown} exceeds the run's {iterations} iterations"
                );
                Shape::Trapezoid {
                    length: iterations,
                    warmdown,
                }
            }
        };
        Ok(Schedule {
            shape,
            warmup,
            scale: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> ScheduleSpec {
        toml::from_str(src).unwrap()
    }

    fn invalid(src: &str) -> String {
        parse(src).validate(100).unwrap_err().0
    }

    #[test]
    fn parses_and_builds_each_kind() {
        let s = parse("").build(100, &Clock::fixed(10)).unwrap();
        assert_eq!(s, Schedule::default());
        let s = parse("kind = \"step\"\nmilestone_epochs = [3, 6]\nwarmup_epochs = 1")
            .build(100, &Clock::fixed(10))
            .unwrap();
        assert_eq!(
            s,
            Schedule {
                shape: Shape::Step {
                    milestones: vec![30, 60],
                    factor: 0.1
                },
                warmup: 10,
                scale: None,
            }
        );
        let s = parse("kind = \"cosine\"\nwarmup = 20\nfloor = 0.1")
            .build(100, &Clock::fixed(0))
            .unwrap();
        assert_eq!(
            s.shape,
            Shape::Cosine {
                start: 20,
                length: 80,
                floor: 0.1
            }
        );
    }

    #[test]
    fn rejects_unknown_keys_and_misplaced_ones() {
        assert!(toml::from_str::<ScheduleSpec>("kind = \"step\"\nmilestone = [1]").is_err());
        assert!(toml::from_str::<ScheduleSpec>("kind = \"exponential\"").is_err());
        assert_eq!(invalid("floor = 0.1"), "schedule.floor");
        assert_eq!(
            invalid("kind = \"cosine\"\nfactor = 0.5"),
            "schedule.factor"
        );
        assert_eq!(invalid("kind = \"step\""), "schedule.kind");
        assert_eq!(
            invalid("kind = \"step\"\nmilestones = [5, 5]"),
            "schedule.milestones"
        );
        assert_eq!(
            invalid("kind = \"step\"\nmilestones = [0]"),
            "schedule.milestones"
        );
        assert_eq!(
            invalid("kind = \"step\"\nmilestones = [5]\nmilestone_epochs = [1]"),
            "schedule.milestone_epochs"
        );
        assert_eq!(
            invalid("kind = \"step\"\nmilestones = [5]\nfactor = 0"),
            "schedule.factor"
        );
        assert_eq!(invalid("kind = \"cosine\"\nfloor = 2"), "schedule.floor");
        assert_eq!(
            invalid("kind = \"cosine\"\nwarmup = 100"),
            "schedule.warmup"
        );
        assert_eq!(
            invalid("warmup = 3\nwarmup_epochs = 1"),
            "schedule.warmup_epochs"
        );
        assert!(
            parse("warmup_epochs = 1")
                .build(100, &Clock::fixed(0))
                .is_err(),
            "epochs need n"
        );
    }

    #[test]
    fn resolved_writes_the_kinds_defaults() {
        let r = parse("kind = \"step\"\nmilestones = [5]").resolved();
        assert_eq!(r.factor, Some(0.1));
        assert_eq!(parse("kind = \"cosine\"").resolved().floor, Some(0.0));
        assert_eq!(parse("").resolved(), parse(""));
    }
}
