//! Which rows of the (shuffled) training set each worker's next mini-batch B_i holds.
//!
//! Worker i's share D_i is a contiguous run of rows. Each worker walks its own seeded
//! permutation of D_i in batches of b without replacement; when fewer than b samples are
//! left in a pass, they are skipped and a new pass starts with a fresh permutation
//! (PyTorch's `drop_last`). b = 0 means the whole D_i, in order, every time.
use anyhow::{ensure, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The workers' batch draws: their shares, samplers and how many batches each has drawn.
/// Cloning it gives an independent copy that draws the same batches next.
#[derive(Debug, Clone)]
pub struct Batches {
    /// (first row, |D_i|) of each worker's share.
    shares: Vec<(i64, i64)>,
    batch_size: usize,
    samplers: Vec<Sampler>,
    /// Batches drawn by each worker so far: with the seed it fixes a batch's augmentation.
    drawn: Vec<i64>,
    seed: u64,
}

/// One drawn batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draw {
    pub worker: usize,
    /// The worker's count of batches before this one.
    pub number: i64,
    pub rows: Rows,
    /// Seeds this batch's augmentation.
    pub seed: u64,
}

/// The training-set rows of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rows {
    /// Drawn from the worker's permutation.
    Listed(Vec<i64>),
    /// The whole share: `len` rows from `start` (b = 0).
    Share { start: i64, len: i64 },
}

impl Rows {
    pub fn len(&self) -> i64 {
        match self {
            Rows::Listed(rows) => rows.len() as i64,
            Rows::Share { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rows `start..start + len` of the batch, as a list.
    pub fn slice(&self, start: i64, len: i64) -> Vec<i64> {
        match self {
            Rows::Listed(rows) => rows[start as usize..(start + len) as usize].to_vec(),
            Rows::Share { start: first, .. } => (first + start..first + start + len).collect(),
        }
    }
}

impl Batches {
    /// Workers with shares `shares` ((first row, |D_i|) each, none empty) drawing batches
    /// of `batch_size` (0 = the whole share; at most the smallest share).
    pub fn new(shares: Vec<(i64, i64)>, batch_size: usize, seed: u64) -> Self {
        let samplers = shares
            .iter()
            .enumerate()
            .map(|(i, &(_, len))| Sampler::new(seed, i, len as usize))
            .collect();
        Self {
            drawn: vec![0; shares.len()],
            shares,
            batch_size,
            samplers,
            seed,
        }
    }

    pub fn workers(&self) -> usize {
        self.shares.len()
    }

    /// (first row, |D_i|) of each worker's share.
    pub fn shares(&self) -> &[(i64, i64)] {
        &self.shares
    }

    /// Draws worker `worker`'s next batch.
    pub fn next(&mut self, worker: usize) -> Draw {
        let number = self.drawn[worker];
        self.drawn[worker] += 1;
        let seed = self.seed ^ 0xa06_3e47_c0ff_ee00 ^ ((worker as u64) << 48) ^ number as u64;
        let (start, len) = self.shares[worker];
        let b = self.batch_size;
        let rows = if b != 0 && b as i64 != len {
            let positions = self.samplers[worker].next(b);
            Rows::Listed(positions.iter().map(|&j| start + j).collect())
        } else {
            Rows::Share { start, len }
        };
        Draw {
            worker,
            number,
            rows,
            seed,
        }
    }

    /// n: iterations per epoch. The smallest share sets the pace; a partial last batch is
    /// skipped (drop_last).
    pub fn per_epoch(&self) -> usize {
        let smallest = self.shares.iter().map(|&(_, len)| len).min().unwrap_or(0) as usize;
        match self.batch_size {
            0 => 1,
            b => (smallest / b).max(1),
        }
    }

    /// The sampling state, three values per worker: the pass (epoch) number, the RNG
    /// word position at the start of the pass, and the position within it. Together with
    /// the seed and the data it determines all later batches.
    pub fn sampler_state(&self) -> Vec<i64> {
        self.samplers.iter().flat_map(Sampler::state).collect()
    }

    /// Restores [`sampler_state`](Self::sampler_state) for the same shares, batch size
    /// and seed.
    pub fn set_sampler_state(&mut self, state: &[i64]) -> Result<()> {
        ensure!(
            state.len() == 3 * self.samplers.len(),
            "sampler state has {} values; expected 3 for each of the {} workers",
            state.len(),
            self.samplers.len()
        );
        for (i, (sampler, s)) in self
            .samplers
            .iter_mut()
            .zip(state.chunks_exact(3))
            .enumerate()
        {
            sampler
                .restore([s[0], s[1], s[2]])
                .with_context(|| format!("worker {i}"))?;
        }
        Ok(())
    }

    /// How many batches each worker has drawn.
    pub fn drawn(&self) -> &[i64] {
        &self.drawn
    }

    pub fn set_drawn(&mut self, drawn: Vec<i64>) -> Result<()> {
        ensure!(
            drawn.len() == self.drawn.len(),
            "the checkpoint counts batches for {} workers, not {}",
            drawn.len(),
            self.drawn.len()
        );
        self.drawn = drawn;
        Ok(())
    }
}

/// One worker's walk through its permutations of D_i.
///
/// Each pass shuffles 0..|D_i| afresh, so a pass is determined by the RNG's word
/// position at its start: that, the pass number and the position within the pass are
/// the whole state.
#[derive(Debug, Clone)]
struct Sampler {
    rng: ChaCha8Rng,
    order: Vec<i64>,
    pos: usize,
    pass: i64,
    pass_start: u128,
}

impl Sampler {
    fn new(seed: u64, worker: usize, len: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xba7c_4e55_5a3b_1e5d);
        rng.set_stream(worker as u64);
        let mut s = Self {
            rng,
            order: Vec::new(),
            pos: 0,
            pass: 0,
            pass_start: 0,
        };
        s.shuffle(len);
        s
    }

    /// A fresh permutation of 0..len from the RNG's current position.
    fn shuffle(&mut self, len: usize) {
        self.pass_start = self.rng.get_word_pos();
        self.order = (0..len as i64).collect();
        self.order.shuffle(&mut self.rng);
        self.pos = 0;
    }

    /// The next `b` positions within D_i, starting a new pass when fewer are left.
    fn next(&mut self, b: usize) -> &[i64] {
        if self.pos + b > self.order.len() {
            self.pass += 1;
            self.shuffle(self.order.len());
        }
        self.pos += b;
        &self.order[self.pos - b..self.pos]
    }

    fn state(&self) -> [i64; 3] {
        [self.pass, self.pass_start as i64, self.pos as i64]
    }

    fn restore(&mut self, [pass, pass_start, pos]: [i64; 3]) -> Result<()> {
        let len = self.order.len();
        ensure!(
            pass >= 0 && pass_start >= 0 && (0..=len as i64).contains(&pos),
            "sampler state (pass {pass}, word {pass_start}, position {pos}) is not valid for \
             a share of {len} samples"
        );
        self.rng.set_word_pos(pass_start as u128);
        self.shuffle(len);
        self.pass = pass;
        self.pos = pos as usize;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_draws_the_same_batches_and_whole_shares_are_ranges() {
        let mut a = Batches::new(vec![(0, 10), (10, 9)], 4, 7);
        a.next(0);
        let mut b = a.clone();
        for worker in [1, 0, 0, 1, 1] {
            assert_eq!(a.next(worker), b.next(worker));
        }
        let draw = a.next(1);
        assert_eq!((draw.worker, draw.number), (1, 3));
        let Rows::Listed(rows) = &draw.rows else {
            panic!("batches of 4 are listed")
        };
        assert!(rows.iter().all(|r| (10..19).contains(r)));
        assert_eq!(draw.rows.slice(1, 2), rows[1..3].to_vec());

        let mut whole = Batches::new(vec![(0, 3), (3, 3)], 0, 7);
        let draw = whole.next(1);
        assert_eq!(draw.rows, Rows::Share { start: 3, len: 3 });
        assert_eq!(draw.rows.slice(1, 2), vec![4, 5]);
        assert_eq!(whole.per_epoch(), 1);
    }
}
