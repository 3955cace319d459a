//! The keys and values a [`Gpt`] has computed, per layer, so that generation forwards only
//! the new tokens ([`Gpt::forward_cached`]) — Hugging Face's `DynamicCache` for GPT-2, with
//! buffers allocated once for the whole sequence instead of concatenated every step.
//!
//! Beam search reorders the batch between steps ([`KvCache::reorder`]), as Hugging Face's
//! `Cache.reorder_cache(beam_idx)` does with `index_select` on the batch dimension.
use super::gpt::Gpt;
use anyhow::{ensure, Result};
use tch::Tensor;

/// Per layer, keys and values [batch, n_head, capacity, head_dim] in the parameters' kind and
/// device, of which the first [`KvCache::len`] positions are filled.
#[derive(Debug)]
pub struct KvCache {
    pub(super) keys: Vec<Tensor>,
    pub(super) values: Vec<Tensor>,
    len: i64,
    capacity: i64,
}

impl KvCache {
    /// An empty cache for `batch` sequences of up to `capacity` tokens of `gpt`. Errors for a
    /// batch or capacity below 1, or a capacity above the model's block_size.
    pub fn new(gpt: &Gpt, batch: i64, capacity: i64) -> Result<KvCache> {
        let config = gpt.config();
        ensure!(batch >= 1, "KV cache: batch must be positive, got {batch}");
        ensure!(
            (1..=config.block_size).contains(&capacity),
            "KV cache: capacity must be in 1..={} (the model's block_size), got {capacity}",
            config.block_size
        );
        let dims = [
            batch,
            config.n_head,
            capacity,
            config.n_embd / config.n_head,
        ];
        let buffer = || Tensor::zeros(dims, (gpt.kind(), gpt.device()));
        let n = config.n_layer as usize;
        Ok(KvCache {
            keys: (0..n).map(|_| buffer()).collect(),
            values: (0..n).map(|_| buffer()).collect(),
            len: 0,
            capacity,
        })
    }

    /// Positions filled: the tokens forwarded so far.
    pub fn len(&self) -> i64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> i64 {
        self.capacity
    }

    pub fn batch(&self) -> i64 {
        self.keys[0].size()[0]
    }

    /// Counts `t` more positions as filled (the forward pass wrote them).
    pub(super) fn advance(&mut self, t: i64) {
        self.len += t;
    }

    /// Makes row i of the batch the old row `rows[i]` (`index_select` on the batch dimension;
    /// `rows` may repeat rows and change the batch size, as beam search's first step expands
    /// one prompt into its beams). Errors for an empty `rows` or a row out of range.
    pub fn reorder(&mut self, rows: &[i64]) -> Result<()> {
        let batch = self.batch();
        ensure!(!rows.is_empty(), "KV cache: reorder to an empty batch");
        if let Some(bad) = rows.iter().find(|&&r| !(0..batch).contains(&r)) {
            anyhow::bail!("KV cache: row {bad} is out of range for a batch of {batch}");
        }
        let device = self.keys[0].device();
        let index = Tensor::from_slice(rows).to_device(device);
        let same_batch = rows.len() as i64 == batch;
        let len = self.len;
        for buffer in self.keys.iter_mut().chain(self.values.iter_mut()) {
            if same_batch {
                // Only the filled positions move; the buffer keeps its allocation.
                let filled = buffer.narrow(2, 0, len);
                let moved = filled.index_select(0, &index);
                buffer.narrow(2, 0, len).copy_(&moved);
            } else {
                *buffer = buffer.index_select(0, &index);
            }
        }
        Ok(())
    }
}
