//! Where a run's epochs end. Most tasks take n iterations an epoch. The language model's
//! epoch is one pass over the corpus in BPTT chunks of random length, so its epochs differ
//! in length; the task draws them up front (`Task::epoch_lengths`) and the clock holds
//! their ends. Evaluation "every epoch", schedules in epochs, the metrics' `epoch` column
//! and `train.epochs` all read the clock.
use anyhow::{ensure, Result};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Clock {
    /// n, the iterations of an epoch (for epochs of their own lengths, the task's nominal n).
    per_epoch: usize,
    /// ends[k] = iterations done when epoch k + 1 ends, for epochs of their own lengths;
    /// empty when every epoch is n iterations.
    ends: Vec<usize>,
}

impl Clock {
    /// Every epoch n iterations.
    pub fn fixed(per_epoch: usize) -> Self {
        Self {
            per_epoch,
            ends: vec![],
        }
    }

    /// Epochs of the given lengths (each at least 1 iteration), with nominal n `per_epoch`.
    pub fn from_lengths(per_epoch: usize, lengths: &[usize]) -> Result<Self> {
        ensure!(lengths.iter().all(|&l| l > 0), "an epoch has no iterations");
        let ends = lengths
            .iter()
            .scan(0usize, |done, &l| {
                *done += l;
                Some(*done)
            })
            .collect();
        Ok(Self { per_epoch, ends })
    }

    /// n (nominal when the epochs have their own lengths).
    pub fn per_epoch(&self) -> usize {
        self.per_epoch
    }

    /// Iterations done after `epochs` whole epochs; None when they do not fit in a
    /// counter, or lie beyond the epochs the task drew.
    pub fn end_of(&self, epochs: usize) -> Option<usize> {
        match (epochs, self.ends.is_empty()) {
            (0, _) => Some(0),
            (e, true) => e.checked_mul(self.per_epoch.max(1)),
            (e, false) => self.ends.get(e - 1).copied(),
        }
    }

    /// Whether an epoch ends right after `iteration` iterations (iteration ≥ 1).
    pub fn is_epoch_end(&self, iteration: usize) -> bool {
        if self.ends.is_empty() {
            iteration > 0 && iteration.is_multiple_of(self.per_epoch.max(1))
        } else {
            self.ends.binary_search(&iteration).is_ok()
        }
    }

    /// The epoch reached after `iteration` iterations, fractional within an epoch (the
    /// metrics' `epoch` column): ℓ/n, or k + the share of epoch k + 1 done.
    pub fn epoch_at(&self, iteration: usize) -> f64 {
        if self.ends.is_empty() {
            return iteration as f64 / self.per_epoch.max(1) as f64;
        }
        let k = self.ends.partition_point(|&end| end <= iteration);
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        match self.ends.get(k) {
            Some(&end) => k as f64 + (iteration - start) as f64 / (end - start) as f64,
            None => k as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_epochs_are_n_iterations() {
        let c = Clock::fixed(4);
        assert_eq!(c.end_of(3), Some(12));
        assert!(c.is_epoch_end(8) && !c.is_epoch_end(9) && !c.is_epoch_end(0));
        assert_eq!(c.epoch_at(6), 1.5);
        assert_eq!(Clock::fixed(2).end_of(usize::MAX), None);
    }

    #[test]
    fn epochs_of_their_own_lengths() {
        let c = Clock::from_lengths(3, &[2, 4, 3]).unwrap();
        assert_eq!(
            (0..=4).map(|e| c.end_of(e)).collect::<Vec<_>>(),
            [Some(0), Some(2), Some(6), Some(9), None]
        );
        let ends: Vec<usize> = (1..=9).filter(|&l| c.is_epoch_end(l)).collect();
        assert_eq!(ends, [2, 6, 9]);
        assert_eq!(c.epoch_at(1), 0.5);
        assert_eq!(c.epoch_at(2), 1.0);
        assert_eq!(c.epoch_at(3), 1.25);
        assert_eq!(c.epoch_at(9), 3.0);
        assert!(Clock::from_lengths(3, &[2, 0]).is_err());
    }
}
