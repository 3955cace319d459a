//! Truncated back-propagation through time as the AWD-LSTM suite walks its training
//! streams (`main.py`'s `train()`; the PISA code's `main_mPiAM.py`): an epoch is one pass
//! over the rows of the batchified corpus in chunks of random length
//!   bptt' = bptt with probability 0.95, else bptt/2;   seq_len = max(5, ⌊N(bptt', 5)⌋),
//! each chunk's step scaled by seq_len/bptt, and with m workers the chunk cut along time
//! into m consecutive pieces (⌊len/m⌋ rows each, the last taking the rest) whose hidden
//! state passes from one to the next (`get_sub_batch`).
//!
//! The lengths come from a generator seeded by (seed, epoch), so every epoch's chunks are
//! known up front: the run's length in epochs, the clock and the step scales are fixed
//! before training and a resumed run sees the same chunks.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// One iteration's stretch of the training rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// The first input row; the targets are the rows one further on.
    pub start: usize,
    /// The drawn seq_len, which scales the step (the suite rescales lr by seq_len/bptt
    /// before `get_batch` cuts the last chunk of a pass short).
    pub drawn: usize,
    /// Input rows in the chunk: seq_len, or fewer at the end of the pass.
    pub len: usize,
}

impl Chunk {
    /// Worker `worker`'s piece of the chunk among `workers`: (first row, rows).
    pub fn piece(&self, worker: usize, workers: usize) -> (usize, usize) {
        let each = self.len / workers;
        let len = if worker + 1 == workers {
            self.len - each * (workers - 1)
        } else {
            each
        };
        (self.start + worker * each, len)
    }
}

/// The chunks of epoch `epoch` (0-based) over `rows` rows for `workers` workers.
///
/// The loop runs while start < rows − 1 − m (the suite's `i < len − 1 − 1` for one worker,
/// the PISA code's `i < len − 1 − num_gpu` for m), so every chunk has more than m rows to
/// cut. As in the PISA code, a chunk that would leave fewer than m rows after it takes
/// them, and seq_len is at least m, so no piece is empty (for m ≤ 5 the suite's floor of 5
/// already ensures it).
pub fn epoch(seed: u64, epoch: usize, rows: usize, bptt: usize, workers: usize) -> Vec<Chunk> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xb977_c4a1 ^ ((epoch as u64) << 32));
    let mut chunks = vec![];
    let mut start = 0;
    while start + 1 + workers < rows {
        let mean = if rng.random::<f64>() < 0.95 {
            bptt as f64
        } else {
            bptt as f64 / 2.0
        };
        let normal = Normal::new(mean, 5.0).expect("a positive standard deviation");
        // int() truncates toward zero
        let sampled = normal.sample(&mut rng).trunc();
        let mut drawn = (sampled.max(5.0) as usize).max(workers);
        let left = rows - 1 - start;
        if left < drawn + workers && left > drawn {
            drawn = left;
        }
        let len = drawn.min(left);
        chunks.push(Chunk { start, drawn, len });
        start += drawn;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_covers_the_rows_once_in_order() {
        for workers in [1, 4] {
            let chunks = epoch(7, 0, 10_001, 70, workers);
            assert_eq!(chunks[0].start, 0);
            for pair in chunks.windows(2) {
                assert_eq!(pair[1].start, pair[0].start + pair[0].drawn);
            }
            let last = chunks.last().unwrap();
            assert!(last.start + last.len < 10_001);
            assert!(
                last.start + last.drawn + 1 + workers >= 10_001,
                "nothing left to run"
            );
            for c in &chunks {
                assert!(c.len >= workers && c.drawn >= 5);
            }
        }
    }

    #[test]
    fn lengths_follow_the_suite_distribution() {
        let chunks = epoch(1, 3, 700_001, 70, 1);
        let n = chunks.len() as f64;
        let short = chunks.iter().filter(|c| c.drawn < 52).count() as f64 / n;
        assert!(
            (short - 0.05).abs() < 0.01,
            "about 5 % from N(35, 5): {short}"
        );
        let long: Vec<f64> = chunks
            .iter()
            .filter(|c| c.drawn >= 52)
            .map(|c| c.drawn as f64)
            .collect();
        let mean = long.iter().sum::<f64>() / long.len() as f64;
        // ⌊N(70, 5)⌋ has mean 69.5 (truncation of positive values)
        assert!((mean - 69.5).abs() < 0.1, "{mean}");
    }

    #[test]
    fn epochs_are_seeded_by_seed_and_epoch() {
        assert_eq!(epoch(1, 2, 5_000, 70, 4), epoch(1, 2, 5_000, 70, 4));
        assert_ne!(epoch(1, 2, 5_000, 70, 4), epoch(1, 3, 5_000, 70, 4));
        assert_ne!(epoch(1, 2, 5_000, 70, 4), epoch(2, 2, 5_000, 70, 4));
    }

    #[test]
    fn pieces_cut_the_chunk_in_time_order() {
        let c = Chunk {
            start: 100,
            drawn: 70,
            len: 70,
        };
        let pieces: Vec<_> = (0..4).map(|i| c.piece(i, 4)).collect();
        assert_eq!(pieces, [(100, 17), (117, 17), (134, 17), (151, 19)]);
        assert_eq!(c.piece(0, 1), (100, 70));
    }
}
