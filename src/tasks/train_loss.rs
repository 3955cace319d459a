//! `train_loss` of a language model's metrics row: the mean training cross-entropy of
//! the iterations since the previous row, kept across a checkpoint.
use anyhow::{ensure, Context, Result};
use std::cell::Cell;
use std::collections::HashMap;
use tch::{Kind, Tensor};

/// The checkpoint entry holding (Σ loss·tokens, Σ tokens, reported).
const KEY: &str = "train_loss_sums";

#[derive(Default)]
pub struct TrainLoss {
    /// Σ loss·tokens as a 0-d f64 tensor on the loss's device: adding to it does not wait
    /// for the device; only a row or a checkpoint reads it.
    sum: Option<Tensor>,
    tokens: f64,
    /// A row has reported the sums: the next iteration starts them afresh.
    reported: Cell<bool>,
}

impl TrainLoss {
    /// Called as an iteration begins.
    pub fn begin_iteration(&mut self) {
        if self.reported.replace(false) {
            (self.sum, self.tokens) = (None, 0.0);
        }
    }

    /// A training pass's mean loss (a 0-d tensor) over `tokens` predictions.
    pub fn add(&mut self, mean: &Tensor, tokens: f64) {
        let term = mean.detach().to_kind(Kind::Double) * tokens;
        self.sum = Some(match self.sum.take() {
            Some(sum) => sum + term,
            None => term,
        });
        self.tokens += tokens;
    }

    /// Over ranks, before a row: every rank's sums added, on every rank (each holds its own
    /// workers' terms), and the row's report taken as made, so that every rank starts the
    /// next sums afresh. In one process nothing changes.
    pub fn sum_over_ranks(&mut self) {
        if !crate::dist::distributed() {
            return;
        }
        let mut sums = [self.total(), self.tokens];
        crate::dist::world().sum_f64(&mut sums);
        self.sum = Some(Tensor::from(sums[0]));
        self.tokens = sums[1];
        self.reported.set(true);
    }

    fn total(&self) -> f64 {
        self.sum.as_ref().map_or(0.0, |s| s.double_value(&[]))
    }

    /// The mean since the previous row (None before any training), for a row.
    pub fn report(&self) -> Option<f64> {
        self.reported.set(true);
        (self.tokens > 0.0).then(|| self.total() / self.tokens)
    }

    pub fn state(&self) -> (String, Tensor) {
        let sums = [
            self.total(),
            self.tokens,
            f64::from(u8::from(self.reported.get())),
        ];
        (KEY.into(), Tensor::from_slice(&sums))
    }

    pub fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        let sums = saved
            .get(KEY)
            .with_context(|| format!("the checkpoint has no {KEY}"))?;
        let sums = Vec::<f64>::try_from(sums.to_kind(Kind::Double))?;
        ensure!(sums.len() == 3, "checkpoint {KEY}: 3 values expected");
        self.sum = Some(Tensor::from(sums[0]));
        self.tokens = sums[1];
        self.reported.set(sums[2] != 0.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_reports_the_iterations_since_the_previous_one() {
        let mut loss = TrainLoss::default();
        assert_eq!(loss.report(), None);
        loss.begin_iteration();
        loss.add(&Tensor::from(2.0f32), 10.0);
        loss.add(&Tensor::from(4.0f32), 30.0);
        assert_eq!(loss.report(), Some(3.5));
        let saved = HashMap::from([loss.state()]);
        let mut resumed = TrainLoss::default();
        resumed.load_state(&saved).unwrap();
        resumed.begin_iteration();
        resumed.add(&Tensor::from(1.0f32), 5.0);
        assert_eq!(resumed.report(), Some(1.0), "reported sums restart");
    }
}
