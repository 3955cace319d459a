//! Fine-tuning a GPT on the recipes corpus (Appendix A.4, Table 6, Figure 6), as the
//! official scripts train it (`Tracy-Wang7/PISA`, `GPT2/Recipes_Generation.py` for AdamW,
//! `GPT2/Parallel_Recipes_Generation_ddam.py` for SISA), on the loop's contract:
//!
//! - The training recipes (`data::recipes`: truncated and padded to `max_length`) are cut
//!   into m equal shares D_i, one per worker; worker i draws batches of `batch_size`
//!   recipes from its own seeded permutation of D_i (`tasks::batches`; 0 = the whole
//!   share, as each GPU of the SISA script takes its whole shard per update).
//! - H_i is the mean next-token cross-entropy over the real tokens of the batch (labels
//!   are the input ids; the padding is masked out unless `loss_on_padding`, with which
//!   every position counts, as in the scripts, whose labels include the pads, and the
//!   attention masks the pad keys as Hugging Face's does). The mean is over the batch's
//!   predictions whatever `micro_batch` cuts it into, so micro-batching only saves memory.
//! - Dropout (Hugging Face GPT-2's 0.1 in training mode) draws from torch's generator
//!   seeded by (seed, iteration, worker, micro-batch), so a resumed run draws the same
//!   masks.
//! - Evaluation: `test_loss` over every prediction of the test recipes, `train_loss` the
//!   mean of the batches since the previous row (row 0: the whole training set), and,
//!   after the epochs `[similarity]` lists, `similarity`: generated recipes scored by
//!   BERTScore (`tasks::similarity`); NaN on the other rows.
use super::batches::Batches;
use super::decode_ahead::chunks;
use super::similarity::Similarity;
use super::train_loss::TrainLoss;
use super::{Local, Task};
use crate::data::recipes::RecipeTokenizer;
use crate::models::gpt::{Config as ModelConfig, Gpt};
use crate::models::precision::Precision;
use crate::models::{self, FlatParams};
use crate::optim::layout::Layout;
use anyhow::{ensure, Context, Result};
use std::collections::HashMap;
use tch::{nn, Device, Kind, Tensor};

/// The tokenizer's vocabulary, the size every fine-tuned GPT is resized to.
pub const VOCAB: i64 = RecipeTokenizer::VOCAB as i64;

/// How the recipes are batched and the loss taken.
#[derive(Debug, Clone)]
pub struct Config {
    /// m: workers, each with an equal share of the training recipes.
    pub workers: usize,
    /// Recipes of a worker's batch (0: its whole share).
    pub batch: usize,
    /// Recipes per forward pass (0: the whole batch).
    pub micro_batch: i64,
    /// Recipes per forward pass of the evaluation.
    pub eval_batch: i64,
    pub loss_on_padding: bool,
    pub seed: u64,
    pub kind: Kind,
    pub device: Device,
    pub precision: Precision,
}

/// The tokenised recipes: ids and attention masks [N, L] (`data::recipes::encode_padded`).
pub struct Encoded {
    pub ids: Tensor,
    pub mask: Tensor,
}

/// A batch of recipes: inputs, targets (−100 where ignored) and the inputs' attention
/// mask [B, T], and each row's number of predictions (targets not ignored).
struct Batch {
    x: Tensor,
    y: Tensor,
    mask: Tensor,
    predictions: Vec<f64>,
}

impl Batch {
    /// Predictions of rows `start..start + rows`.
    fn count(&self, start: usize, rows: usize) -> f64 {
        self.predictions[start..start + rows].iter().sum()
    }
}

/// The fine-tuning task (the module doc).
pub struct Recipes {
    config: Config,
    _store: nn::VarStore,
    model: Gpt,
    params: FlatParams,
    initial: Tensor,
    alphas: Vec<f64>,
    train: Encoded,
    test: Encoded,
    batches: Batches,
    loss: TrainLoss,
    /// Iterations done when `evaluate` runs (the last begun + 1).
    done: usize,
    similarity: Option<Similarity>,
}

impl Recipes {
    /// A GPT of `model` loading `weights` (pisa names, the model's vocabulary) or, without
    /// them, seeded from `config.seed`.
    pub fn new(
        train: Encoded,
        test: Encoded,
        model: &ModelConfig,
        weights: Option<&[(String, Tensor)]>,
        similarity: Option<Similarity>,
        config: Config,
    ) -> Result<Self> {
        ensure!(
            matches!(config.kind, Kind::Float | Kind::Double),
            "recipes: train.dtype must be f32 or f64 (autocast gives bf16 passes)"
        );
        let n = train.ids.size()[0];
        let m = config.workers as i64;
        let share = n / m;
        if share == 0 || config.batch as i64 > share {
            return Err(crate::spec::KeyError::at(
                "train.batch_size",
                format!(
                    "the {n} training recipes make shares of {share} for {m} workers, fewer than \
                     batch_size {}",
                    config.batch
                ),
            ));
        }
        let length = train.ids.size()[1];
        ensure!(
            length <= model.block_size,
            "recipes: max_length {length} exceeds the model's block_size {} (raise \
             model.block_size for a modded GPT)",
            model.block_size
        );
        let mut store = nn::VarStore::new(config.device);
        store.set_kind(config.kind);
        let gpt = models::seeded(config.seed, || Gpt::new(&store.root(), model));
        if let Some(tensors) = weights {
            gpt.load(tensors)?;
        }
        let params = FlatParams::new(&store).context("recipes: parameters")?;
        let initial = params.values();
        let shares = (0..m).map(|i| (i * share, share)).collect();
        let to = |e: Encoded| Encoded {
            ids: e.ids.to_device(config.device),
            mask: e.mask.to_device(config.device),
        };
        Ok(Self {
            batches: Batches::new(shares, config.batch, config.seed),
            alphas: vec![1.0 / m as f64; m as usize],
            train: to(train),
            test: to(test),
            config,
            _store: store,
            model: gpt,
            params,
            initial,
            loss: TrainLoss::default(),
            done: 0,
            similarity,
        })
    }

    pub fn model(&self) -> &Gpt {
        &self.model
    }

    /// Rows `rows` of `data` as a [`Batch`], cut to the longest recipe among them unless
    /// the padding counts. One read from the device: the rows' lengths.
    fn batch(&self, data: &Encoded, rows: &Tensor) -> Result<Batch> {
        let ids = data.ids.index_select(0, rows);
        let mask = data.mask.index_select(0, rows);
        let full = ids.size()[1];
        // predictions per row: every position but the last, or the real tokens but the first
        let (t, predictions) = match self.config.loss_on_padding {
            true => (full - 1, vec![(full - 1) as f64; ids.size()[0] as usize]),
            false => {
                let lengths = Vec::<i64>::try_from(mask.sum_dim_intlist(1, false, Kind::Int64))?;
                let longest = lengths.iter().copied().max().unwrap_or(0);
                let predictions = lengths.iter().map(|&l| (l - 1).max(0) as f64).collect();
                (longest.max(2) - 1, predictions)
            }
        };
        let x = ids.narrow(1, 0, t);
        let mut y = ids.narrow(1, 1, t).copy();
        if !self.config.loss_on_padding {
            let pad = mask.narrow(1, 1, t).eq(0);
            let _ = y.masked_fill_(&pad, -100);
        }
        Ok(Batch {
            x,
            y,
            mask: mask.narrow(1, 0, t),
            predictions,
        })
    }

    /// The mean loss of a batch (inputs, targets, mask) at the loaded parameters.
    fn loss_of(&self, x: &Tensor, y: &Tensor, mask: &Tensor, train: bool) -> Tensor {
        let mask = self.config.loss_on_padding.then_some(mask);
        self.config.precision.forward(self.config.device, || {
            self.model.loss_masked(x, y, mask, train)
        })
    }

    /// The mean cross-entropy over every prediction of `data`, at the loaded parameters.
    fn mean_loss(&self, data: &Encoded) -> Result<f64> {
        let (mut sum, mut count) = (0.0, 0.0);
        tch::no_grad(|| -> Result<()> {
            let n = data.ids.size()[0];
            for (start, rows) in chunks(n, self.config.eval_batch) {
                let rows =
                    Tensor::arange_start(start, start + rows, (Kind::Int64, self.config.device));
                let b = self.batch(data, &rows)?;
                let k = b.count(0, b.predictions.len());
                if k > 0.0 {
                    sum += self
                        .loss_of(&b.x, &b.y, &b.mask, false)
                        .f_double_value(&[])?
                        * k;
                    count += k;
                }
            }
            Ok(())
        })?;
        Ok(sum / count)
    }
}

impl Task for Recipes {
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
            "recipes: the model has no buffers, got {:?}",
            buffers.size()
        );
        self.params.load(w0)?;
        self.initial = self.params.values();
        Ok(())
    }

    fn iterations_per_epoch(&self) -> usize {
        self.batches.per_epoch()
    }

    fn begin_iteration(&mut self, iteration: usize) -> Result<()> {
        self.done = iteration + 1;
        self.loss.begin_iteration();
        Ok(())
    }

    fn local(&mut self, worker: usize, w: &Tensor, hessian: bool) -> Result<Local> {
        ensure!(
            worker < self.config.workers,
            "recipes: worker {worker} of {}",
            self.config.workers
        );
        ensure!(
            !hessian,
            "recipes: the Hessian preconditioner (4.1) needs the P×P Hessian, which a GPT does \
             not have; use sisa, nsisa or a first-order pisa"
        );
        let draw = self.batches.next(worker);
        let rows =
            Tensor::from_slice(&draw.rows.slice(0, draw.rows.len())).to_device(self.config.device);
        let b = self.batch(&self.train, &rows)?;
        let total = b.count(0, b.predictions.len()).max(1.0);
        self.params.load(w)?;
        self.params.zero_grad();
        let device = self.config.device;
        let mut mean = Tensor::zeros([], (Kind::Double, device));
        let n = b.x.size()[0];
        for (micro, (start, rows)) in chunks(n, self.config.micro_batch).into_iter().enumerate() {
            let part = |t: &Tensor| t.narrow(0, start, rows);
            let (xm, ym, mm) = (part(&b.x), part(&b.y), part(&b.mask));
            let share = b.count(start as usize, rows as usize) / total;
            if share == 0.0 {
                continue;
            }
            let seed = models::dropout_seed(self.config.seed, self.done as u64, worker, micro);
            tch::with_grad(|| -> Result<()> {
                let loss = models::seeded(seed, || self.loss_of(&xm, &ym, &mm, true));
                mean += loss.detach().to_kind(Kind::Double) * share;
                (loss * share).f_backward()?;
                Ok(())
            })
            .with_context(|| format!("recipes: worker {worker}'s gradient"))?;
        }
        self.loss.add(&mean, total);
        Ok(Local {
            grad: self.params.flat_grad(),
            samples: n as usize,
            hessian: None,
        })
    }

    fn metric_names(&self) -> &'static [&'static str] {
        &["train_loss", "test_loss", "similarity"]
    }

    fn occasional_metrics(&self) -> &'static [&'static str] {
        &["similarity"]
    }

    fn evaluate(&self, w: &Tensor) -> Result<Vec<f64>> {
        self.params.load(w)?;
        let train = match self.loss.report() {
            Some(mean) => mean,
            None => self.mean_loss(&self.train)?,
        };
        let test = self.mean_loss(&self.test)?;
        let n = self.batches.per_epoch();
        let similarity = match &self.similarity {
            Some(s) if self.done > 0 && self.done.is_multiple_of(n) && s.due(self.done / n) => {
                s.measure(&self.model)?
            }
            _ => f64::NAN,
        };
        Ok(vec![train, test, similarity])
    }

    /// `samples.md`: recipes the final model writes from test ingredients.
    fn outputs(&self, w: &Tensor) -> Result<Vec<(&'static str, Vec<u8>)>> {
        self.params.load(w)?;
        let Some(s) = &self.similarity else {
            return Ok(vec![]);
        };
        Ok(vec![(
            "samples.md",
            s.samples(&self.model, 3)?.into_bytes(),
        )])
    }

    /// Each worker's state is its own (its sampler, its batches drawn), and `evaluate`
    /// reads the others' only through [`Task::sum_row_over_ranks`].
    fn splits_over_ranks(&self) -> bool {
        true
    }

    fn sum_row_over_ranks(&mut self) -> Result<()> {
        self.loss.sum_over_ranks();
        Ok(())
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        vec![
            (
                "sampler".into(),
                Tensor::from_slice(&self.batches.sampler_state()),
            ),
            ("batches".into(), Tensor::from_slice(self.batches.drawn())),
            self.loss.state(),
        ]
    }

    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        let get = |name: &str| {
            saved
                .get(name)
                .with_context(|| format!("the checkpoint has no {name} state"))
        };
        self.batches
            .set_sampler_state(&Vec::<i64>::try_from(get("sampler")?)?)?;
        self.batches
            .set_drawn(Vec::<i64>::try_from(get("batches")?)?)?;
        self.loss.load_state(saved)
    }
}
