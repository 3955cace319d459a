//! Training images decoded ahead of the workers that will ask for them (image folders).
//!
//! The training loop asks the workers for their gradients in turn, 0, 1, …, m−1, every
//! iteration, each batch in chunks of the micro-batch size. A copy of the batch draws
//! ([`Batches`] clones draw the same batches) walks that order on a background thread
//! ([`Prefetch`]), decoding a few chunks ahead, so the JPEG decoding of the next chunk
//! overlaps the forward and backward passes of this one. Each decoded chunk carries its
//! key (worker, batch number, first row): a request the prefetched chunk does not answer
//! (another call order, a restored checkpoint) restarts the walk from that request, so
//! the images are always the ones asked for.
use super::batches::{Batches, Draw};
use crate::data::image_folder::{ImageFolder, Prefetch, Transform};
use anyhow::{ensure, Context, Result};
use std::collections::VecDeque;
use std::sync::Arc;
use tch::Tensor;

/// Chunks decoded in advance.
const AHEAD: usize = 3;

/// A chunk of a worker's batch: (worker, batch number, first row within the batch).
type Key = (usize, i64, i64);

/// The workers' training chunks, decoded on a background thread in call order.
pub struct DecodeAhead {
    folder: Arc<ImageFolder>,
    transform: Transform,
    /// Row of the shuffled training set → image index in `folder`.
    images: Arc<Vec<usize>>,
    /// Examples per chunk (≥ 1).
    chunk: i64,
    prefetch: Option<Prefetch<Key>>,
}

impl DecodeAhead {
    /// `images[row]` is the image of training row `row`; batches are cut in chunks of
    /// `chunk` examples (0 = whole batches).
    pub fn new(
        folder: Arc<ImageFolder>,
        transform: Transform,
        images: Vec<usize>,
        chunk: usize,
    ) -> Self {
        Self {
            folder,
            transform,
            images: Arc::new(images),
            chunk: chunk as i64,
            prefetch: None,
        }
    }

    /// The decoded uint8 images of rows `start..start + len` of `draw`'s batch.
    /// `after` is the batch draws right after `draw` (where the walk resumes on a restart).
    pub fn images(&mut self, draw: &Draw, start: i64, after: &Batches) -> Result<Tensor> {
        let key = (draw.worker, draw.number, start);
        if let Some(found) = self.next_key()? {
            if found.0 == key {
                return Ok(found.1);
            }
        }
        // Restart the walk at this chunk: the rest of this batch, then the workers after.
        let mut plan = Plan {
            batches: after.clone(),
            next_worker: (draw.worker + 1) % after.workers(),
            queue: VecDeque::new(),
            images: self.images.clone(),
            chunk: self.chunk,
        };
        plan.queue_batch(draw, start);
        self.prefetch = Some(Prefetch::new(
            self.folder.clone(),
            self.transform,
            plan,
            AHEAD,
        ));
        let (found, images) = self
            .next_key()?
            .context("the image prefetch stopped early")?;
        ensure!(found == key, "the image prefetch skipped a chunk");
        Ok(images)
    }

    /// Forgets what was decoded ahead (the batch draws changed, e.g. a checkpoint was
    /// loaded).
    pub fn reset(&mut self) {
        self.prefetch = None;
    }

    fn next_key(&mut self) -> Result<Option<(Key, Tensor)>> {
        let Some(prefetch) = self.prefetch.as_mut() else {
            return Ok(None);
        };
        match prefetch.next() {
            Some(Ok((key, images, _labels))) => Ok(Some((key, images))),
            Some(Err(e)) => {
                self.prefetch = None;
                Err(e.context("decoding training images"))
            }
            None => {
                self.prefetch = None;
                Ok(None)
            }
        }
    }
}

/// (first row, length) of the chunks of a batch of `len` examples; `chunk` 0 = one chunk.
pub fn chunks(len: i64, chunk: i64) -> Vec<(i64, i64)> {
    let chunk = if chunk <= 0 { len.max(1) } else { chunk };
    (0..len)
        .step_by(chunk as usize)
        .map(|start| (start, chunk.min(len - start)))
        .collect()
}

/// The endless walk of chunks in call order: (key, image indices, augmentation seed).
struct Plan {
    batches: Batches,
    next_worker: usize,
    queue: VecDeque<(Key, Vec<usize>, u64)>,
    images: Arc<Vec<usize>>,
    chunk: i64,
}

impl Plan {
    /// Queues the chunks of `draw` from row `from` on.
    fn queue_batch(&mut self, draw: &Draw, from: i64) {
        for (start, len) in chunks(draw.rows.len(), self.chunk) {
            if start >= from {
                let images = draw
                    .rows
                    .slice(start, len)
                    .into_iter()
                    .map(|row| self.images[row as usize])
                    .collect();
                self.queue
                    .push_back(((draw.worker, draw.number, start), images, draw.seed));
            }
        }
    }
}

impl Iterator for Plan {
    type Item = (Key, Vec<usize>, u64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.queue.is_empty() {
            let draw = self.batches.next(self.next_worker);
            self.next_worker = (self.next_worker + 1) % self.batches.workers();
            self.queue_batch(&draw, 0);
        }
        self.queue.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    /// 12 PNGs in two classes, each a different flat colour.
    fn folder() -> (tempfile::TempDir, Arc<ImageFolder>) {
        let root = tempfile::tempdir().unwrap();
        for i in 0..12u8 {
            let dir = root.path().join(if i % 2 == 0 { "even" } else { "odd" });
            std::fs::create_dir_all(&dir).unwrap();
            RgbImage::from_pixel(10, 12, Rgb([i * 20, 255 - i, i]))
                .save(dir.join(format!("{i}.png")))
                .unwrap();
        }
        let folder = Arc::new(ImageFolder::open(root.path()).unwrap());
        (root, folder)
    }

    #[test]
    fn hands_out_the_requested_chunks_in_any_call_order() {
        let (_root, folder) = folder();
        let transform = Transform::Train { size: 8 };
        // Rows of the shuffled set → images, reversed so a mix-up shows.
        let images: Vec<usize> = (0..12).rev().collect();
        let mut decode_ahead = DecodeAhead::new(folder.clone(), transform, images.clone(), 2);
        let mut batches = Batches::new(vec![(0, 6), (6, 6)], 3, 5);
        // Round-robin (prefetched), then out of order (restarts), then round-robin again.
        for worker in [0, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1] {
            let draw = batches.next(worker);
            for (start, len) in chunks(draw.rows.len(), 2) {
                let got = decode_ahead.images(&draw, start, &batches).unwrap();
                let indices: Vec<usize> = draw
                    .rows
                    .slice(start, len)
                    .iter()
                    .map(|&r| images[r as usize])
                    .collect();
                let (want, _) = folder.batch(&indices, transform, draw.seed).unwrap();
                assert!(got.equal(&want), "worker {worker}, rows from {start}");
            }
        }
        // A loaded checkpoint: the same task rewinds.
        decode_ahead.reset();
        let mut rewound = Batches::new(vec![(0, 6), (6, 6)], 3, 5);
        let draw = rewound.next(0);
        let got = decode_ahead.images(&draw, 0, &rewound).unwrap();
        let indices: Vec<usize> = draw
            .rows
            .slice(0, 2)
            .iter()
            .map(|&r| images[r as usize])
            .collect();
        assert!(got.equal(&folder.batch(&indices, transform, draw.seed).unwrap().0));
    }

    #[test]
    fn chunks_cover_a_batch_in_order() {
        assert_eq!(chunks(10, 4), vec![(0, 4), (4, 4), (8, 2)]);
        assert_eq!(chunks(10, 0), vec![(0, 10)]);
        assert_eq!(chunks(3, 8), vec![(0, 3)]);
    }
}
