//! Word-level language modelling with the AWD-LSTM (Table 8): the suite's training
//! (`PyTorch_Experiments/LSTM/main.py` of the AdaBelief suite; `LSTM/main_mPiAM.py` of the
//! PISA code for SISA) on the loop's contract.
//!
//! - Each iteration is one BPTT chunk of the `[rows, batch]` training streams (`bptt`);
//!   worker i's gradient is that of the i-th of m consecutive pieces of it, computed at
//!   the global point with the hidden state the previous piece left (m = 1: the whole
//!   chunk, as the baselines run). The hidden state is carried across iterations,
//!   detached, and reset to zero when an epoch (a pass) begins.
//! - The loss of a piece is the mean cross-entropy of its next-word predictions plus AR,
//!   α·mean(h_dropped²), and TAR, β·mean((h_{t+1} − h_t)²), on the last layer's outputs
//!   (the suite's `args.alpha`, `args.beta`). Gradient clipping is the loop's
//!   (`train.clip_norm`), weight decay the optimizer's.
//! - The hidden-to-hidden weights are frozen at their initial values unless
//!   `model.train_weight_hh` (as both reference codes run: `models::awd_lstm`'s doc).
//! - Dropout masks are drawn from torch's generator seeded by (seed, iteration, worker),
//!   so a run is a function of its seed, and a resumed one sees the same masks.
//! - Over ranks, each rank carries the hidden state through the other ranks' pieces by
//!   their forward passes without a gradient ([`crate::dist::Chain`]).
//! - Evaluation: perplexity exp(mean per-token cross-entropy) over a whole split, every
//!   token predicted once, in chunks of bptt with the hidden state carried (the suite's
//!   `evaluate`, which divides the summed loss by the split's rows rather than its
//!   predicted tokens, one fewer: 1/len apart). `train_loss` is the mean training
//!   cross-entropy (dropout on) of the iterations since the previous row; row 0's, before
//!   any training, is the initial model's on the whole training split in evaluation mode.
use super::bptt::{self, Chunk};
use super::train_loss::TrainLoss;
use super::{Local, Task};
use crate::models::awd_lstm::{AwdLstm, Config as ModelConfig, Dropouts, Masks, WeightHh};
use crate::models::{self, FlatParams};
use crate::optim::layout::Layout;
use anyhow::{ensure, Context, Result};
use std::collections::HashMap;
use tch::{nn, Device, Kind, Reduction, Tensor};

/// How the corpus is batched and the loss regularised.
#[derive(Debug, Clone)]
pub struct Config {
    /// m: pieces each chunk is cut into, one per worker.
    pub workers: usize,
    /// Parallel training streams (the suite's batch_size).
    pub batch: i64,
    pub bptt: usize,
    /// Streams of the validation and test splits (the suite's 10 and 1).
    pub eval_batch: i64,
    pub test_batch: i64,
    pub dropouts: Dropouts,
    /// Whether the hidden-to-hidden weights train (`model.train_weight_hh`); frozen, as the
    /// suite and the PISA code run, they are buffers outside w.
    pub weight_hh: WeightHh,
    /// AR α and TAR β.
    pub ar: f64,
    pub tar: f64,
    pub seed: u64,
    pub kind: Kind,
    pub device: Device,
}

/// The corpus as word ids, split.
pub struct Splits {
    pub vocabulary: i64,
    pub train: Vec<i64>,
    pub valid: Vec<i64>,
    pub test: Vec<i64>,
}

/// The epoch being run: its chunks and the iteration it began at.
struct Epoch {
    index: usize,
    first: usize,
    chunks: Vec<Chunk>,
}

pub struct LanguageModel {
    config: Config,
    _store: nn::VarStore,
    model: AwdLstm,
    params: FlatParams,
    initial: Tensor,
    alphas: Vec<f64>,
    /// [rows, streams] on the device.
    train: Tensor,
    valid: Tensor,
    test: Tensor,
    epoch: Epoch,
    /// The iteration under way and its chunk.
    iteration: usize,
    chunk: Chunk,
    /// (h, c) per layer, carried from piece to piece and iteration to iteration.
    hidden: Vec<(Tensor, Tensor)>,
    loss: TrainLoss,
    /// Over ranks: the other ranks' pieces this rank carries the hidden state through.
    chain: crate::dist::Chain,
}

impl LanguageModel {
    pub fn new(splits: Splits, model: &ModelConfig, config: Config) -> Result<Self> {
        ensure!(
            matches!(config.kind, Kind::Float | Kind::Double),
            "language model: train.dtype must be f32 or f64"
        );
        let batchify = |ids: &[i64], batch: i64, what: &str| -> Result<Tensor> {
            let t = crate::data::ptb::batchify(ids, batch);
            ensure!(
                t.size()[0] >= 2,
                "language model: the {what} split's {} words make fewer than 2 rows of {batch} \
                 streams",
                ids.len()
            );
            Ok(t.to_device(config.device))
        };
        let train = batchify(&splits.train, config.batch, "training")?;
        let rows = train.size()[0] as usize;
        ensure!(
            rows > config.workers + 1,
            "language model: {rows} training rows cannot be cut into {} pieces",
            config.workers
        );
        let valid = batchify(&splits.valid, config.eval_batch, "validation")?;
        let test = batchify(&splits.test, config.test_batch, "test")?;
        ensure!(
            model.vocab == splits.vocabulary,
            "language model: the model's vocabulary {} is not the corpus's {}",
            model.vocab,
            splits.vocabulary
        );
        let mut store = nn::VarStore::new(config.device);
        store.set_kind(config.kind);
        let lstm = models::seeded(config.seed, || {
            AwdLstm::new(&store.root(), model, config.weight_hh)
        });
        let params = FlatParams::new(&store).context("language model: parameters")?;
        let initial = params.values();
        let hidden = lstm.init_hidden(config.batch, (config.kind, config.device));
        let epoch = Epoch {
            index: 0,
            first: 0,
            chunks: bptt::epoch(config.seed, 0, rows, config.bptt, config.workers),
        };
        let chunk = epoch.chunks[0];
        Ok(Self {
            alphas: vec![1.0 / config.workers as f64; config.workers],
            config,
            _store: store,
            model: lstm,
            params,
            initial,
            train,
            valid,
            test,
            epoch,
            iteration: 0,
            chunk,
            hidden,
            loss: TrainLoss::default(),
            chain: Default::default(),
        })
    }

    /// Worker `worker`'s piece of the iteration's chunk: input [T, B], targets [T·B], and
    /// its dropout masks, drawn from torch's generator seeded by (seed, iteration, worker).
    fn piece(&self, worker: usize) -> (Tensor, Tensor, Masks) {
        let c = &self.config;
        let (start, len) = self.chunk.piece(worker, c.workers);
        let (start, len) = (start as i64, len as i64);
        let input = self.train.narrow(0, start, len);
        let targets = self.train.narrow(0, start + 1, len).reshape([-1]);
        let mask_seed = c
            .seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(((self.iteration as u64) << 8) | worker as u64);
        let masks = models::seeded(mask_seed, || {
            Masks::draw(
                self.model.config(),
                &c.dropouts,
                c.batch,
                (c.kind, c.device),
            )
        });
        (input, targets, masks)
    }

    /// Carries the hidden state through another rank's worker's piece at the loaded
    /// parameters, as that worker's training pass does (its masks, no gradient;
    /// [`crate::dist::Chain`]).
    fn advance(&mut self, worker: usize) {
        let (input, _, masks) = self.piece(worker);
        let forward = tch::no_grad(|| self.model.forward(&input, &self.hidden, Some(&masks)));
        self.hidden = forward.hidden;
    }

    fn rows(&self) -> usize {
        self.train.size()[0] as usize
    }

    fn chunks(&self, epoch: usize) -> Vec<Chunk> {
        let c = &self.config;
        bptt::epoch(c.seed, epoch, self.rows(), c.bptt, c.workers)
    }

    /// The summed cross-entropy of predicting `targets` [T·B] from `output` [T·B, E].
    fn cross_entropy(&self, output: &Tensor, targets: &Tensor, reduction: Reduction) -> Tensor {
        self.model
            .logits(output)
            .cross_entropy_loss::<Tensor>(targets, None, reduction, -100, 0.0)
    }

    /// exp-able mean per-token cross-entropy of `split` [rows, streams] at the loaded
    /// parameters, in evaluation mode.
    fn mean_loss(&self, split: &Tensor) -> f64 {
        tch::no_grad(|| {
            let (rows, streams) = (split.size()[0], split.size()[1]);
            let mut hidden = self
                .model
                .init_hidden(streams, (self.config.kind, self.config.device));
            let (mut sum, mut tokens) = (0.0, 0.0);
            let mut i = 0;
            while i < rows - 1 {
                let len = (self.config.bptt as i64).min(rows - 1 - i);
                let input = split.narrow(0, i, len);
                let targets = split.narrow(0, i + 1, len).reshape([-1]);
                let forward = self.model.forward(&input, &hidden, None);
                let loss = self.cross_entropy(&forward.output, &targets, Reduction::Sum);
                sum += loss.double_value(&[]);
                tokens += (len * streams) as f64;
                hidden = forward.hidden;
                i += len;
            }
            sum / tokens
        })
    }
}

impl Task for LanguageModel {
    fn alphas(&self) -> &[f64] {
        &self.alphas
    }

    fn initial_point(&self) -> Tensor {
        self.initial.copy()
    }

    fn layout(&self) -> Layout {
        self.params.layout().clone()
    }

    /// The frozen hidden-to-hidden weights, if any (they never change).
    fn initial_buffers(&self) -> (Layout, Tensor) {
        (
            self.params.state_layout().clone(),
            self.params.state().copy(),
        )
    }

    fn set_initial(&mut self, w0: &Tensor, buffers: &Tensor) -> Result<()> {
        let b = self.params.state().numel() as i64;
        ensure!(
            buffers.size() == [b],
            "language model: expected the {b} values of the frozen weight_hh as one [{b}] \
             tensor, got {:?}",
            buffers.size()
        );
        self.params.load(w0)?;
        tch::no_grad(|| self.params.state().shallow_clone().copy_(buffers));
        self.initial = self.params.values();
        Ok(())
    }

    /// The paper's n (Table 5: 663 for PTB): rows / bptt. The epochs themselves are passes
    /// of random-length chunks ([`Task::epoch_lengths`]).
    fn iterations_per_epoch(&self) -> usize {
        (self.rows() / self.config.bptt).max(1)
    }

    fn epoch_lengths(&self, epochs: usize) -> Option<Vec<usize>> {
        Some((0..epochs).map(|e| self.chunks(e).len()).collect())
    }

    fn step_scales(&self, iterations: usize) -> Option<Vec<f64>> {
        let bptt = self.config.bptt as f64;
        let mut scales = Vec::with_capacity(iterations);
        let mut epoch = 0;
        while scales.len() < iterations {
            let chunks = self.chunks(epoch);
            scales.extend(chunks.iter().map(|c| c.drawn as f64 / bptt));
            epoch += 1;
        }
        scales.truncate(iterations);
        Some(scales)
    }

    fn begin_iteration(&mut self, iteration: usize) -> Result<()> {
        // The epoch holding `iteration` (the next one, or further on after a resume).
        if iteration < self.epoch.first {
            self.epoch = Epoch {
                index: 0,
                first: 0,
                chunks: self.chunks(0),
            };
        }
        while iteration >= self.epoch.first + self.epoch.chunks.len() {
            let index = self.epoch.index + 1;
            self.epoch = Epoch {
                index,
                first: self.epoch.first + self.epoch.chunks.len(),
                chunks: self.chunks(index),
            };
        }
        let at = iteration - self.epoch.first;
        if at == 0 {
            // a pass begins: the suite's model.init_hidden(batch_size)
            self.hidden = self
                .model
                .init_hidden(self.config.batch, (self.config.kind, self.config.device));
        }
        self.loss.begin_iteration();
        self.iteration = iteration;
        self.chunk = self.epoch.chunks[at];
        Ok(())
    }

    fn local(&mut self, worker: usize, w: &Tensor, hessian: bool) -> Result<Local> {
        let workers = self.config.workers;
        ensure!(
            worker < workers,
            "language model: worker {worker} of {workers}"
        );
        ensure!(
            !hessian,
            "language model: the Hessian preconditioner (4.1) needs the P×P Hessian, which a \
             network this size does not have; use sisa or a first-order pisa"
        );
        self.params.load(w)?;
        // over ranks: the other ranks' pieces before this rank's, for their hidden state
        for other in self.chain.before(worker, workers, (self.iteration, 0))? {
            self.advance(other);
        }
        let (input, targets, masks) = self.piece(worker);
        let c = &self.config;
        let len = input.size()[0];
        self.params.zero_grad();
        let forward = self.model.forward(&input, &self.hidden, Some(&masks));
        let raw = self.cross_entropy(&forward.output, &targets, Reduction::Mean);
        // AR and TAR on the last layer (out of place: `raw` is reported below)
        let ar = (c.ar != 0.0).then(|| forward.last_dropped.square().mean(None) * c.ar);
        let tar = (c.tar != 0.0 && len > 1).then(|| {
            let h = &forward.last_raw;
            let step = h.narrow(0, 1, len - 1) - h.narrow(0, 0, len - 1);
            step.square().mean(None) * c.tar
        });
        let loss = [ar, tar]
            .into_iter()
            .flatten()
            .fold(raw.shallow_clone(), |loss, term| loss + term);
        loss.backward();
        let tokens = (len * c.batch) as f64;
        self.loss.add(&raw, tokens);
        self.hidden = forward
            .hidden
            .into_iter()
            .map(|(h, c)| (h.detach(), c.detach()))
            .collect();
        // over ranks: the pieces after this rank's, for the state the chunk leaves
        for other in self.chain.after(worker, workers) {
            self.advance(other);
        }
        Ok(Local {
            grad: self.params.flat_grad(),
            samples: tokens as usize,
            hessian: None,
        })
    }

    fn metric_names(&self) -> &'static [&'static str] {
        &["train_loss", "val_loss", "val_ppl", "test_ppl"]
    }

    fn evaluate(&self, w: &Tensor) -> Result<Vec<f64>> {
        self.params.load(w)?;
        let train = match self.loss.report() {
            Some(mean) => mean,
            None => self.mean_loss(&self.train),
        };
        let val = self.mean_loss(&self.valid);
        let test = self.mean_loss(&self.test);
        Ok(vec![train, val, val.exp(), test.exp()])
    }

    /// Each rank carries the hidden state through the other ranks' pieces without a
    /// gradient (`advance`), so every rank holds the state the chunk leaves; `evaluate`
    /// reads the others' losses only through [`Task::sum_row_over_ranks`].
    fn splits_over_ranks(&self) -> bool {
        true
    }

    fn sum_row_over_ranks(&mut self) -> Result<()> {
        self.loss.sum_over_ranks();
        Ok(())
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state: Vec<(String, Tensor)> = self
            .hidden
            .iter()
            .enumerate()
            .flat_map(|(l, (h, c))| {
                [
                    (format!("hidden.{l}.h"), h.shallow_clone()),
                    (format!("hidden.{l}.c"), c.shallow_clone()),
                ]
            })
            .collect();
        state.push(self.loss.state());
        state
    }

    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        for (l, (h, c)) in self.hidden.iter_mut().enumerate() {
            for (name, live) in [("h", h), ("c", c)] {
                let key = format!("hidden.{l}.{name}");
                let from = saved
                    .get(&key)
                    .with_context(|| format!("the checkpoint has no {key}"))?;
                ensure!(
                    from.size() == live.size(),
                    "checkpoint {key} has shape {:?}, the run expects {:?}",
                    from.size(),
                    live.size()
                );
                *live = from.to_kind(self.config.kind).to_device(self.config.device);
            }
        }
        self.loss.load_state(saved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// A random corpus over `vocabulary` words.
    fn ids(n: usize, vocabulary: i64, seed: u64) -> Vec<i64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(0..vocabulary)).collect()
    }

    fn task(vocabulary: i64, workers: usize, dropout: f64) -> LanguageModel {
        let splits = Splits {
            vocabulary,
            train: ids(2_000, vocabulary, 1),
            valid: ids(613, vocabulary, 2),
            test: ids(401, vocabulary, 3),
        };
        let model = ModelConfig {
            vocab: vocabulary,
            emsize: 8,
            nhid: 12,
            nlayers: 2,
        };
        let config = Config {
            workers,
            batch: 4,
            bptt: 9,
            eval_batch: 3,
            test_batch: 1,
            dropouts: Dropouts {
                output: dropout,
                hidden: dropout,
                input: dropout,
                embedding: dropout / 2.0,
                weight: dropout,
            },
            weight_hh: WeightHh::Trained,
            ar: 2.0,
            tar: 1.0,
            seed: 5,
            kind: Kind::Double,
            device: Device::Cpu,
        };
        LanguageModel::new(splits, &model, config).unwrap()
    }

    #[test]
    fn chunked_evaluation_equals_one_forward_over_the_split() {
        let t = task(50, 1, 0.3);
        let w = t.initial_point();
        let metrics = t.evaluate(&w).unwrap();
        // The validation split as one sequence per stream, in one forward pass.
        let (rows, streams) = (t.valid.size()[0], t.valid.size()[1]);
        let hidden = t.model.init_hidden(streams, (Kind::Double, Device::Cpu));
        let forward = t
            .model
            .forward(&t.valid.narrow(0, 0, rows - 1), &hidden, None);
        let targets = t.valid.narrow(0, 1, rows - 1).reshape([-1]);
        let loss = t
            .cross_entropy(&forward.output, &targets, Reduction::Mean)
            .double_value(&[]);
        assert!(
            (metrics[1] - loss).abs() < 1e-12,
            "{} vs {loss}",
            metrics[1]
        );
        assert!((metrics[2] - loss.exp()).abs() < 1e-9 * loss.exp());
        // Untrained: about as perplexed as a uniform guess over the 50 words.
        assert!(metrics[3] > 25.0 && metrics[3] < 100.0, "{}", metrics[3]);
    }

    #[test]
    fn gradients_are_deterministic_and_pieces_carry_the_hidden_state() {
        let run = |workers: usize| {
            let mut t = task(30, workers, 0.3);
            let w = t.initial_point();
            let mut grads = vec![];
            for iteration in 0..3 {
                t.begin_iteration(iteration).unwrap();
                for worker in 0..workers {
                    grads.push(t.local(worker, &w, false).unwrap().grad);
                }
            }
            (grads, t.hidden[0].0.copy())
        };
        let (a, ha) = run(4);
        let (b, hb) = run(4);
        assert_eq!(a.len(), 12);
        for (x, y) in a.iter().zip(&b) {
            assert!(x.equal(y), "the same seed draws the same masks");
        }
        assert!(ha.equal(&hb));
        assert!(!a[0].equal(&a[1]), "each piece has its own data and masks");
        // the hidden state moved on from zero
        assert!(ha.abs().sum(Kind::Double).double_value(&[]) > 0.0);
    }

    #[test]
    fn a_restored_state_continues_identically() {
        let mut t = task(30, 2, 0.3);
        let w = t.initial_point();
        t.begin_iteration(0).unwrap();
        for worker in 0..2 {
            t.local(worker, &w, false).unwrap();
        }
        let saved: HashMap<String, Tensor> =
            t.state().into_iter().map(|(k, v)| (k, v.copy())).collect();
        t.begin_iteration(1).unwrap();
        let want = t.local(0, &w, false).unwrap().grad;
        let mut fresh = task(30, 2, 0.3);
        fresh.load_state(&saved).unwrap();
        fresh.begin_iteration(1).unwrap();
        assert!(fresh.local(0, &w, false).unwrap().grad.equal(&want));
    }

    #[test]
    fn epochs_steps_and_chunks_agree() {
        let t = task(30, 4, 0.0);
        let lengths = t.epoch_lengths(3).unwrap();
        let scales = t.step_scales(lengths.iter().sum()).unwrap();
        assert_eq!(scales.len(), lengths.iter().sum::<usize>());
        let first: Vec<f64> = t.chunks(0).iter().map(|c| c.drawn as f64 / 9.0).collect();
        assert_eq!(&scales[..lengths[0]], &first[..]);
        assert_eq!(t.iterations_per_epoch(), 500 / 9);
    }
}
