//! GPT language modelling on token shards (Section 5.3, Figure 2): the official scripts'
//! training (`Tracy-Wang7/PISA`, `GPT2_new_version/NanoGPT/train_gpt_sisa_*.py`, after
//! modded-nanogpt; `Medium_XL_GPT/`, after nanoGPT) on the loop's contract.
//!
//! - Worker i (a GPU of the scripts) draws its own batch of B windows of T + 1 tokens
//!   (T = block_size) per oracle call: with `order = "sequential"` the i-th of each m
//!   consecutive spans of B·T + 1 tokens, as modded-nanogpt's `DistributedDataLoader`
//!   (a pass over the shards is an epoch); with `"random"` B windows at offsets drawn
//!   from a generator seeded by (seed, worker, draw), as nanoGPT's `get_batch`. A window
//!   is a function of the worker and how many it has drawn, so a resumed run continues
//!   with the same tokens.
//! - H_i is the mean next-token cross-entropy of its B·T predictions (2.10); a batch goes
//!   through the model in micro-batches of sequences if asked (gradient accumulation),
//!   the forward passes as `train.autocast` says (bf16 on CUDA, as the scripts).
//! - Evaluation: `val_loss`, the mean cross-entropy of the first `val_tokens`
//!   predictions of the validation shards in windows of T (modded-nanogpt's
//!   `val_tokens`), `train_loss` the mean of the training batches since the previous row
//!   (row 0: the initial model's on as many training tokens), and `tokens`, the training
//!   tokens consumed.
//! - With `split_embedding` the token embedding (the tied head) is a player of its own
//!   beside the blocks, each with its own optimizer, as the Nano script trains the
//!   embedding by AdamW and the blocks by NSISA. One backward pass serves both, as in the
//!   script: the blocks' turn computes the whole gradient at the current point and keeps
//!   the embedding's part for the embedding's turn that follows.
use super::decode_ahead::chunks;
use super::train_loss::TrainLoss;
use super::{Local, Player, Task};
use crate::data::shards::Shards;
use crate::models::gpt::{Config as ModelConfig, Gpt};
use crate::models::precision::Precision;
use crate::models::{self, FlatParams};
use crate::optim::layout::Layout;
use crate::spec::{KeyError, TokenOrder};
use anyhow::{ensure, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use tch::{nn, Device, Kind, Tensor};

/// How the shards are batched and evaluated.
#[derive(Debug, Clone)]
pub struct Config {
    /// m: workers, each with its own batch.
    pub workers: usize,
    /// B: sequences of a worker's batch.
    pub batch: i64,
    /// Sequences per forward pass of a batch (0: the whole batch).
    pub micro_batch: i64,
    /// Sequences per forward pass of the evaluation.
    pub eval_batch: i64,
    /// Predictions the validation loss averages.
    pub val_tokens: u64,
    pub order: TokenOrder,
    pub seed: u64,
    pub kind: Kind,
    pub device: Device,
    pub precision: Precision,
    /// The embedding is a player of its own (`[optimizer.embedding]`).
    pub split_embedding: bool,
}

/// The players of a split GPT, in w's order (the embedding leads the flat buffer); the
/// blocks move first.
const EMBEDDING: usize = 0;
const BLOCKS: usize = 1;
/// The tied embedding's name in both layouts (`models::gpt`).
const EMBEDDING_NAME: &str = "transformer.wte.weight";

pub struct GptLm {
    config: Config,
    _store: nn::VarStore,
    model: Gpt,
    params: FlatParams,
    initial: Tensor,
    alphas: Vec<f64>,
    train: Shards,
    /// [V + 1] validation tokens on the device, V the largest multiple of T ≤ val_tokens.
    val: Tensor,
    /// The first V + 1 training tokens, row 0's `train_loss`.
    train_head: Tensor,
    /// Windows each worker has drawn (over ranks: this rank's workers; the others' stay 0).
    draws: Vec<i64>,
    /// Over ranks: the windows the other ranks' workers had drawn at the last row.
    drawn_elsewhere: i64,
    loss: TrainLoss,
    /// Split: the embedding's numel E (it leads the flat buffer), the player whose turn
    /// it is, the whole point at its start, and each worker's embedding gradient from the
    /// blocks' turn.
    embedding: i64,
    turn: usize,
    point: Option<Tensor>,
    kept: Vec<Option<Tensor>>,
}

impl GptLm {
    pub fn new(train: Shards, val: &Shards, model: &ModelConfig, config: Config) -> Result<Self> {
        ensure!(
            matches!(config.kind, Kind::Float | Kind::Double),
            "gpt: train.dtype must be f32 or f64 (autocast gives bf16 passes)"
        );
        let t = model.block_size;
        let span = (config.batch * t) as u64;
        let windows = train.len().saturating_sub(1) / span;
        if windows < config.workers as u64 {
            return Err(KeyError::at(
                "train.batch_size",
                format!(
                    "the training shards' {} tokens make {windows} spans of batch_size · \
                     block_size + 1 = {} tokens, fewer than the {} workers need",
                    train.len(),
                    span + 1,
                    config.workers
                ),
            ));
        }
        let v = config.val_tokens / t as u64 * t as u64;
        if val.len() <= v {
            return Err(KeyError::at(
                "data.val_tokens",
                format!(
                    "val_tokens {} needs {} validation tokens; the validation shards hold {}",
                    config.val_tokens,
                    v + 1,
                    val.len()
                ),
            ));
        }
        let head = |shards: &Shards| -> Result<Tensor> {
            let mut tokens = vec![0i64; v as usize + 1];
            shards.read(0, &mut tokens)?;
            Ok(Tensor::from_slice(&tokens).to_device(config.device))
        };
        let (val, train_head) = (head(val)?, head(&train)?);
        let mut store = nn::VarStore::new(config.device);
        store.set_kind(config.kind);
        let gpt = models::seeded(config.seed, || Gpt::new(&store.root(), model));
        let params = FlatParams::new(&store).context("gpt: parameters")?;
        let initial = params.values();
        let first = &params.layout().segments[0];
        ensure!(
            first.name == EMBEDDING_NAME && first.offset == 0,
            "gpt: the flat parameters must start with {EMBEDDING_NAME}, not {}",
            first.name
        );
        let embedding = first.numel();
        Ok(Self {
            embedding,
            turn: BLOCKS,
            point: None,
            kept: (0..config.workers).map(|_| None).collect(),
            alphas: vec![1.0 / config.workers as f64; config.workers],
            draws: vec![0; config.workers],
            drawn_elsewhere: 0,
            config,
            _store: store,
            model: gpt,
            params,
            initial,
            train,
            val,
            train_head,
            loss: TrainLoss::default(),
        })
    }

    fn block(&self) -> i64 {
        self.model.config().block_size
    }

    /// Consecutive spans of B·T + 1 tokens in a pass (sequential order).
    fn spans(&self) -> u64 {
        let span = (self.config.batch * self.block()) as u64;
        (self.train.len() - 1) / span
    }

    /// Worker `worker`'s `draw`-th batch: inputs and targets, [B, T] on the device.
    fn window(&self, worker: usize, draw: i64) -> Result<(Tensor, Tensor)> {
        let c = &self.config;
        let t = self.block();
        let (x, y) = match c.order {
            TokenOrder::Sequential => {
                let per_pass = self.spans() / c.workers as u64;
                let k = (draw as u64 % per_pass) * c.workers as u64 + worker as u64;
                let span = c.batch * t;
                let mut tokens = vec![0i64; span as usize + 1];
                self.train.read(k * span as u64, &mut tokens)?;
                let tokens = Tensor::from_slice(&tokens);
                (
                    tokens.narrow(0, 0, span).view([c.batch, t]),
                    tokens.narrow(0, 1, span).view([c.batch, t]),
                )
            }
            TokenOrder::Random => {
                let mut rng = ChaCha8Rng::seed_from_u64(
                    c.seed
                        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                        .wrapping_add(((draw as u64) << 16) | worker as u64),
                );
                let last = self.train.len() - t as u64 - 1;
                let mut tokens = vec![0i64; (c.batch * (t + 1)) as usize];
                for row in tokens.chunks_mut(t as usize + 1) {
                    self.train.read(rng.random_range(0..=last), row)?;
                }
                let tokens = Tensor::from_slice(&tokens).view([c.batch, t + 1]);
                (tokens.narrow(1, 0, t), tokens.narrow(1, 1, t))
            }
        };
        Ok((x.to_device(c.device), y.to_device(c.device)))
    }

    /// The mean cross-entropy of the V predictions that `tokens` [V + 1] makes, in
    /// windows of T, at the loaded parameters, in evaluation mode.
    fn mean_loss(&self, tokens: &Tensor) -> Result<f64> {
        let t = self.block();
        let v = tokens.size()[0] - 1;
        let x = tokens.narrow(0, 0, v).view([-1, t]);
        let y = tokens.narrow(0, 1, v).view([-1, t]);
        let mut sum = 0.0;
        tch::no_grad(|| -> Result<()> {
            for (start, rows) in chunks(x.size()[0], self.config.eval_batch) {
                let loss = self.config.precision.forward(self.config.device, || {
                    self.model
                        .loss(&x.narrow(0, start, rows), &y.narrow(0, start, rows), false)
                });
                sum += loss.f_double_value(&[])? * (rows * t) as f64;
            }
            Ok(())
        })?;
        Ok(sum / v as f64)
    }
}

impl Task for GptLm {
    fn alphas(&self) -> &[f64] {
        &self.alphas
    }

    fn initial_point(&self) -> Tensor {
        self.initial.copy()
    }

    fn layout(&self) -> Layout {
        self.params.layout().clone()
    }

    fn initial_buffers(&self) -> (Layout, Tensor) {
        (
            self.params.state_layout().clone(),
            self.params.state().copy(),
        )
    }

    fn set_initial(&mut self, w0: &Tensor, buffers: &Tensor) -> Result<()> {
        ensure!(
            buffers.numel() == 0,
            "gpt: the model has no buffers, got {:?}",
            buffers.size()
        );
        self.params.load(w0)?;
        self.initial = self.params.values();
        Ok(())
    }

    /// Sequential: the iterations of a pass over the training shards; random: as many
    /// iterations as consume that many tokens.
    fn iterations_per_epoch(&self) -> usize {
        (self.spans() / self.config.workers as u64).max(1) as usize
    }

    fn begin_iteration(&mut self, _iteration: usize) -> Result<()> {
        self.loss.begin_iteration();
        Ok(())
    }

    /// The embedding, then the blocks (w's order); one player without a split.
    fn players(&self) -> Vec<Player> {
        let layout = self.params.layout();
        if !self.config.split_embedding {
            return vec![Player {
                name: "",
                offset: 0,
                layout: layout.clone(),
                alphas: self.alphas.clone(),
                clamp: None,
            }];
        }
        let part = |range: std::ops::Range<usize>| {
            Layout::new(
                layout.segments[range]
                    .iter()
                    .map(|s| (s.name.clone(), s.shape.clone())),
            )
        };
        let n = layout.segments.len();
        vec![
            Player {
                name: crate::spec::GPT_PLAYERS[EMBEDDING],
                offset: 0,
                layout: part(0..1),
                alphas: self.alphas.clone(),
                clamp: None,
            },
            Player {
                name: crate::spec::GPT_PLAYERS[BLOCKS],
                offset: self.embedding,
                layout: part(1..n),
                alphas: self.alphas.clone(),
                clamp: None,
            },
        ]
    }

    fn turns(&self, _iteration: usize) -> Vec<usize> {
        match self.config.split_embedding {
            true => vec![BLOCKS, EMBEDDING],
            false => vec![0],
        }
    }

    fn begin_turn(&mut self, player: usize, w: &Tensor) -> Result<()> {
        self.turn = player;
        if self.config.split_embedding && player == BLOCKS {
            self.point = Some(w.shallow_clone());
        }
        Ok(())
    }

    fn local(&mut self, worker: usize, w: &Tensor, hessian: bool) -> Result<Local> {
        let c = &self.config;
        ensure!(worker < c.workers, "gpt: worker {worker} of {}", c.workers);
        ensure!(
            !hessian,
            "gpt: the Hessian preconditioner (4.1) needs the P×P Hessian, which a network \
             this size does not have; use sisa, nsisa or a first-order pisa"
        );
        if c.split_embedding && self.turn == EMBEDDING {
            let grad = self.kept[worker].take().with_context(|| {
                format!("gpt: worker {worker}'s embedding gradient was not computed in the blocks' turn")
            })?;
            return Ok(Local {
                grad,
                samples: (c.batch * self.block()) as usize,
                hessian: None,
            });
        }
        let (x, y) = self.window(worker, self.draws[worker])?;
        match (&self.point, c.split_embedding) {
            (Some(point), true) => {
                let whole =
                    Tensor::cat(&[point.narrow(0, 0, self.embedding), w.shallow_clone()], 0);
                self.params.load(&whole)?;
            }
            _ => self.params.load(w)?,
        }
        self.params.zero_grad();
        // the batch's mean loss, kept on the device (no host sync in the step)
        let mut mean = Tensor::zeros([], (Kind::Double, c.device));
        // g_i of the batch's mean loss: the micro-batches' means weighted by their share.
        for (chunk, (start, rows)) in chunks(c.batch, c.micro_batch).into_iter().enumerate() {
            let share = rows as f64 / c.batch as f64;
            let seed = models::dropout_seed(c.seed, self.draws[worker] as u64, worker, chunk);
            tch::with_grad(|| -> Result<()> {
                let loss = models::seeded(seed, || {
                    c.precision.forward(c.device, || {
                        self.model
                            .loss(&x.narrow(0, start, rows), &y.narrow(0, start, rows), true)
                    })
                });
                mean += loss.detach().to_kind(Kind::Double) * share;
                (loss * share).f_backward()?;
                Ok(())
            })
            .with_context(|| format!("gpt: worker {worker}'s gradient"))?;
        }
        let tokens = (c.batch * self.block()) as usize;
        let mut grad = self.params.flat_grad();
        if c.split_embedding {
            let p = grad.size()[0];
            self.kept[worker] = Some(grad.narrow(0, 0, self.embedding));
            grad = grad.narrow(0, self.embedding, p - self.embedding);
        }
        self.draws[worker] += 1;
        self.loss.add(&mean, tokens as f64);
        Ok(Local {
            grad,
            samples: tokens,
            hessian: None,
        })
    }

    fn metric_names(&self) -> &'static [&'static str] {
        &["train_loss", "val_loss", "tokens"]
    }

    fn evaluate(&self, w: &Tensor) -> Result<Vec<f64>> {
        self.params.load(w)?;
        let train = match self.loss.report() {
            Some(mean) => mean,
            None => self.mean_loss(&self.train_head)?,
        };
        let val = self.mean_loss(&self.val)?;
        let drawn: i64 = self.draws.iter().sum::<i64>() + self.drawn_elsewhere;
        let tokens = drawn as f64 * (self.config.batch * self.block()) as f64;
        Ok(vec![train, val, tokens])
    }

    /// Each worker's state is its own (its draws, its kept embedding gradient), and
    /// `evaluate` reads the others' only through [`Task::sum_row_over_ranks`].
    fn splits_over_ranks(&self) -> bool {
        true
    }

    fn sum_row_over_ranks(&mut self) -> Result<()> {
        let own: i64 = self.draws.iter().sum();
        self.drawn_elsewhere = crate::dist::sum_scalar(own as f64) as i64 - own;
        self.loss.sum_over_ranks();
        Ok(())
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        vec![
            ("draws".into(), Tensor::from_slice(&self.draws)),
            self.loss.state(),
        ]
    }

    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        let draws = saved.get("draws").context("the checkpoint has no draws")?;
        let draws = Vec::<i64>::try_from(draws)?;
        ensure!(
            draws.len() == self.draws.len(),
            "the checkpoint's draws are for {} workers, the run has {}",
            draws.len(),
            self.draws.len()
        );
        self.draws = draws;
        self.loss.load_state(saved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::shards::write_shard;
    use crate::models::gpt::Style;

    /// A GPT task on shards whose token i is i mod 50: windows say where they were read.
    fn task(order: TokenOrder, dir: &std::path::Path) -> GptLm {
        let tokens: Vec<u16> = (0..1000).map(|i| (i % 50) as u16).collect();
        write_shard(&dir.join("t_train_000001.bin"), &tokens).unwrap();
        write_shard(&dir.join("t_val_000000.bin"), &tokens[..100]).unwrap();
        let (train, val) = crate::data::shards::split(dir).unwrap();
        let model = ModelConfig {
            style: Style::Modded,
            n_layer: 1,
            n_head: 2,
            n_embd: 8,
            block_size: 4,
            vocab_size: 50,
            dropout: 0.0,
        };
        let config = Config {
            workers: 3,
            batch: 2,
            micro_batch: 0,
            eval_batch: 4,
            val_tokens: 16,
            order,
            seed: 1,
            kind: Kind::Float,
            device: Device::Cpu,
            precision: Precision::default(),
            split_embedding: false,
        };
        GptLm::new(train, &val, &model, config).unwrap()
    }

    #[test]
    fn sequential_windows_are_modded_nanogpts_spans() {
        let dir = tempfile::tempdir().unwrap();
        let t = task(TokenOrder::Sequential, dir.path());
        // spans of B·T = 8 tokens: (1000 − 1)/8 = 124 of them, 41 iterations a pass
        assert_eq!(t.iterations_per_epoch(), 41);
        for (worker, draw, start) in [(0, 0, 0), (2, 0, 16), (1, 1, 32), (0, 41, 0), (2, 42, 40)] {
            let (x, y) = t.window(worker, draw).unwrap();
            let want: Vec<i64> = (start..start + 8).map(|i| i % 50).collect();
            assert_eq!(Vec::<i64>::try_from(x.reshape([-1])).unwrap(), want);
            let next: Vec<i64> = (start + 1..start + 9).map(|i| i % 50).collect();
            assert_eq!(Vec::<i64>::try_from(y.reshape([-1])).unwrap(), next);
            assert_eq!(x.size(), [2, 4]);
        }
    }

    #[test]
    fn random_windows_are_a_function_of_worker_and_draw() {
        let dir = tempfile::tempdir().unwrap();
        let t = task(TokenOrder::Random, dir.path());
        let read = |w, d| {
            let (x, y) = t.window(w, d).unwrap();
            let (x, y) = (
                Vec::<i64>::try_from(x.reshape([-1])).unwrap(),
                Vec::<i64>::try_from(y.reshape([-1])).unwrap(),
            );
            // each row is consecutive tokens and its targets the next ones
            for (row, next) in x.chunks(4).zip(y.chunks(4)) {
                for k in 0..4 {
                    assert_eq!(next[k], (row[k] + 1) % 50);
                }
            }
            x
        };
        assert_eq!(read(1, 5), read(1, 5));
        assert_ne!(read(1, 5), read(1, 6));
        assert_ne!(read(0, 5), read(1, 5));
    }
}
