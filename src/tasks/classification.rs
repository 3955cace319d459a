//! Classification with a neural network: H_i(w; B) is the mean cross-entropy of the
//! model with parameters w on the mini-batch B ⊂ D_i.
//!
//! The training set is shuffled once with the seed and cut into m contiguous shares D_i
//! whose sizes differ by at most one (α_i = |D_i|/|D|); [`Batches`] draws each worker's
//! mini-batches from its share.
//!
//! The model lives in its own var store, its trainable variables viewed as one flat
//! buffer ([`FlatParams`]); the optimizer's w is copied into it before each forward pass.
//! A batch goes through the model in micro-batches if asked (gradient accumulation), each
//! forward pass as [`Precision`] says (autocast, channels last). Image-folder batches are
//! decoded ahead on a background thread ([`DecodeAhead`]).
use super::batches::{Batches, Draw, Rows};
use super::decode_ahead::{chunks, DecodeAhead};
use super::{Local, Task};
use crate::data::image_folder::{ImageFolder, Transform as FolderTransform};
use crate::data::transform::{Augment, Normalise, Transform};
use crate::models::precision::Precision;
use crate::models::{self, FlatParams};
use crate::optim::layout::Layout;
use crate::spec::KeyError;
use anyhow::{ensure, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use tch::{nn, Device, Kind, Reduction, Tensor};

/// At most this many training samples enter `train_loss`.
const EVAL_TRAIN_SAMPLES: i64 = 10_000;
/// Evaluation runs the model on this many samples at a time.
const EVAL_CHUNK: i64 = 1_000;

/// Labelled samples: `x` [N, ...] (uint8 pixels or floating-point features, normalised
/// batch by batch by the task's [`Transform`]), `y` [N] class ids.
#[derive(Debug)]
pub struct Examples {
    pub x: Tensor,
    pub y: Tensor,
}

impl Examples {
    pub fn len(&self) -> i64 {
        self.y.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Images (uint8 [N, ...]) and their labels.
    pub fn images(images: &Tensor, labels: &Tensor) -> Self {
        Self {
            x: images.shallow_clone(),
            y: labels.shallow_clone(),
        }
    }

    fn check(&self, what: &str) -> Result<()> {
        let (nx, ny) = (self.x.size(), self.y.size());
        ensure!(
            !nx.is_empty() && ny.len() == 1 && nx[0] == ny[0],
            "classification: {what} inputs {nx:?} and labels {ny:?} do not match ([N, ...] and [N])"
        );
        ensure!(ny[0] > 0, "classification: the {what} set is empty");
        ensure!(
            self.x.is_floating_point() || matches!(self.x.kind(), Kind::Uint8 | Kind::Int64),
            "classification: {what} inputs are {:?}; expected uint8 pixels, int64 image \
             indices or floating-point features",
            self.x.kind()
        );
        Ok(())
    }

    /// The same samples on `device`: features as `kind`, pixels kept uint8 (a quarter of
    /// the memory; the transform scales them batch by batch), labels int64.
    fn to(&self, kind: Kind, device: Device) -> Examples {
        let x = self.x.to_device(device);
        Examples {
            x: if x.is_floating_point() {
                x.to_kind(kind)
            } else {
                x
            },
            y: self.y.to_device(device).to_kind(Kind::Int64),
        }
    }

    fn select(&self, index: &Tensor) -> Examples {
        Examples {
            x: self.x.index_select(0, index),
            y: self.y.index_select(0, index),
        }
    }

    fn narrow(&self, start: i64, len: i64) -> Examples {
        Examples {
            x: self.x.narrow(0, start, len),
            y: self.y.narrow(0, start, len),
        }
    }
}

/// How the training set is split, sampled and transformed, and where the model lives.
#[derive(Debug, Clone)]
pub struct Config {
    /// m, the number of workers.
    pub workers: usize,
    /// b = |B_i|; 0 = the whole D_i.
    pub batch_size: usize,
    /// Seeds the model's initialisation, the split and the workers' sampling.
    pub seed: u64,
    pub kind: Kind,
    pub device: Device,
    /// The inputs' normalisation (after scaling pixels to [0, 1]).
    pub normalise: Normalise,
    /// Training batches' augmentation.
    pub augment: Augment,
    /// Image files behind the examples: `x` holds indices into these folders (train, test),
    /// decoded batch by batch (ImageNet).
    pub folders: Option<Folders>,
    /// Examples per forward and backward pass within a batch; 0 = the whole batch.
    pub micro_batch: usize,
    /// How the forward passes run (autocast, channels last).
    pub precision: Precision,
}

/// The training and test image folders of a dataset too large to hold in memory.
#[derive(Debug, Clone)]
pub struct Folders {
    pub train: Arc<ImageFolder>,
    pub test: Arc<ImageFolder>,
}

/// Decodes the images whose indices `x` holds (ImageNet), or passes `x` through.
fn decode(
    folder: Option<&ImageFolder>,
    x: &Tensor,
    transform: FolderTransform,
    seed: u64,
    device: Device,
) -> Result<Tensor> {
    let Some(folder) = folder else {
        return Ok(x.shallow_clone());
    };
    let indices: Vec<usize> = Vec::<i64>::try_from(&x.to_device(Device::Cpu))?
        .into_iter()
        .map(|i| i as usize)
        .collect();
    let (images, _) = folder.batch(&indices, transform, seed)?;
    Ok(images.to_device(device))
}

impl Config {
    /// Inputs taken as they are (mean 0, std 1), no augmentation.
    pub fn new(workers: usize, batch_size: usize, seed: u64, kind: Kind, device: Device) -> Self {
        Self {
            workers,
            batch_size,
            seed,
            kind,
            device,
            normalise: Normalise {
                mean: vec![0.0],
                std: vec![1.0],
            },
            augment: Augment::None,
            folders: None,
            micro_batch: 0,
            precision: Precision::default(),
        }
    }

    /// Examples that index image files in `folders`.
    pub fn with_folders(mut self, folders: Folders) -> Self {
        self.folders = Some(folders);
        self
    }

    pub fn with_inputs(mut self, normalise: Normalise, augment: Augment) -> Self {
        self.normalise = normalise;
        self.augment = augment;
        self
    }

    /// Batches in micro-batches of `micro_batch` examples (0 = whole), forward passes
    /// as `precision` says.
    pub fn with_passes(mut self, micro_batch: usize, precision: Precision) -> Self {
        self.micro_batch = micro_batch;
        self.precision = precision;
        self
    }
}

/// A classifier trained on m workers' shares of a labelled training set.
pub struct Classification {
    model: Box<dyn nn::ModuleT>,
    /// Owns the variables that `params` views; kept alive with the model.
    _store: nn::VarStore,
    params: FlatParams,
    initial: Tensor,
    /// The training set after the seeded shuffle; D_i = rows shares[i].0 .. + shares[i].1.
    train: Examples,
    alphas: Vec<f64>,
    batches: Batches,
    transform: Transform,
    folders: Option<Folders>,
    /// The training images decoded ahead (image folders only).
    decode_ahead: Option<DecodeAhead>,
    micro_batch: usize,
    precision: Precision,
    /// Each worker's copy of the model's non-trainable state ([m, B], batch-norm running
    /// statistics): a worker's forward passes use and update its own, as m devices
    /// would; evaluation uses worker 0's, as rank 0 of PyTorch's DDP reports.
    worker_state: Tensor,
    /// The fixed subset behind `train_loss` and `train_acc`.
    eval_train: Examples,
    test: Examples,
    device: Device,
}

impl Classification {
    /// Builds the model with `build` in a fresh var store of `config.kind` on
    /// `config.device` (seeded with `config.seed`), moves the data there and splits the
    /// training set among the workers. `build` must return logits [N, classes].
    pub fn new<M, F>(train: Examples, test: Examples, build: F, config: Config) -> Result<Self>
    where
        M: nn::ModuleT + 'static,
        F: FnOnce(&nn::Path) -> M,
    {
        Self::with_clients(train, test, build, config, None)
    }

    /// As [`Classification::new`], but worker i's share D_i is `clients[i]` (sample
    /// indices into `train`, e.g. a federated partition) instead of an equal cut of a
    /// shuffle; samples no client holds are not trained on.
    pub fn with_clients<M, F>(
        train: Examples,
        test: Examples,
        build: F,
        config: Config,
        clients: Option<&[Vec<i64>]>,
    ) -> Result<Self>
    where
        M: nn::ModuleT + 'static,
        F: FnOnce(&nn::Path) -> M,
    {
        let Config {
            workers,
            batch_size,
            seed,
            kind,
            device,
            normalise,
            augment,
            folders,
            micro_batch,
            precision,
        } = config;
        ensure!(
            matches!(
                kind,
                Kind::Half | Kind::BFloat16 | Kind::Float | Kind::Double
            ),
            "classification: the model kind must be floating point, not {kind:?}"
        );
        train.check("training")?;
        test.check("test")?;
        let n = train.len();
        if workers < 1 || workers as i64 > n {
            return Err(KeyError::at(
                "train.workers",
                format!("{n} training samples cannot be split among {workers} workers"),
            ));
        }

        let mut store = nn::VarStore::new(device);
        store.set_kind(kind);
        let model = models::seeded(seed, || build(&store.root()));
        let params = FlatParams::new(&store).context("classification: model parameters")?;
        let initial = params.values();

        // Shuffle once, then cut contiguous shares whose sizes differ by at most one; or
        // lay the given clients' samples out one after another.
        let (order, lengths): (Vec<i64>, Vec<i64>) = match clients {
            None => {
                let mut order: Vec<i64> = (0..n).collect();
                order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_da7a));
                let (per, extra) = (n / workers as i64, n % workers as i64);
                let lengths = (0..workers as i64)
                    .map(|i| per + i64::from(i < extra))
                    .collect();
                (order, lengths)
            }
            Some(clients) => {
                ensure!(
                    clients.len() == workers,
                    "classification: {} client datasets for train.workers = {workers}",
                    clients.len()
                );
                ensure!(
                    clients.iter().flatten().all(|&i| (0..n).contains(&i)),
                    "classification: a client holds a sample index outside 0..{n}"
                );
                (
                    clients.concat(),
                    clients.iter().map(|c| c.len() as i64).collect(),
                )
            }
        };
        let train = train
            .to(kind, device)
            .select(&Tensor::from_slice(&order).to_device(device));
        let n = order.len() as i64;
        let mut shares = Vec::with_capacity(workers);
        let mut start = 0;
        for len in lengths {
            shares.push((start, len));
            start += len;
        }
        let per = shares.iter().map(|&(_, len)| len).min().unwrap_or(0);
        ensure!(per > 0, "classification: a worker's share D_i is empty");
        if batch_size as i64 > per {
            return Err(KeyError::at(
                "train.batch_size",
                format!(
                    "batch_size {batch_size} exceeds the {per} samples of the smallest worker \
                     share D_i"
                ),
            ));
        }
        let alphas = shares
            .iter()
            .map(|&(_, len)| len as f64 / n as f64)
            .collect(); // (2.1)
        let decode_ahead = match &folders {
            Some(f) => {
                let images = Vec::<i64>::try_from(&train.x.to_device(Device::Cpu))?;
                Some(DecodeAhead::new(
                    f.train.clone(),
                    FolderTransform::IMAGENET_TRAIN,
                    images.into_iter().map(|i| i as usize).collect(),
                    micro_batch,
                ))
            }
            None => None,
        };

        // A fixed subset spread evenly over the shuffled set (so over all shares).
        let k = n.min(EVAL_TRAIN_SAMPLES);
        let spread: Vec<i64> = (0..k).map(|j| j * n / k).collect();
        let eval_train = train.select(&Tensor::from_slice(&spread).to_device(device));
        let test = test.to(kind, device);

        let worker_state = params
            .state()
            .unsqueeze(0)
            .repeat([workers as i64, 1])
            .contiguous();
        let task = Self {
            model: Box::new(model),
            _store: store,
            params,
            initial,
            train,
            alphas,
            batches: Batches::new(shares, batch_size, seed),
            transform: Transform::new(&normalise, augment, kind, device),
            folders,
            decode_ahead,
            micro_batch,
            precision,
            worker_state,
            eval_train,
            test,
            device,
        };
        task.check_labels()?;
        Ok(task)
    }

    /// The model's output on one sample fixes the class count; every label must be below it.
    fn check_labels(&self) -> Result<()> {
        let first = self.train.x.narrow(0, 0, 1);
        let folder = self.folders.as_ref().map(|f| &*f.train);
        let first = decode(
            folder,
            &first,
            FolderTransform::IMAGENET_EVAL,
            0,
            self.device,
        )?;
        let one = self.transform.eval(&first);
        let out = tch::no_grad(|| self.model.forward_t(&one, false));
        ensure!(
            out.dim() == 2,
            "classification: the model returns {:?} for one sample; expected logits [1, classes]",
            out.size()
        );
        let classes = out.size()[1];
        for (what, y) in [("training", &self.train.y), ("test", &self.test.y)] {
            let (lo, hi) = (y.min().int64_value(&[]), y.max().int64_value(&[]));
            ensure!(
                lo >= 0 && hi < classes,
                "classification: {what} labels range over {lo}..={hi}, but the model has \
                 {classes} outputs"
            );
        }
        Ok(())
    }

    /// (first row, |D_i|) of each worker's share in the shuffled training set.
    pub fn shares(&self) -> &[(i64, i64)] {
        self.batches.shares()
    }

    /// Rows `start..start + len` of `draw`'s batch as examples on the device, their
    /// images decoded (image folders) but not yet transformed.
    fn chunk(&mut self, draw: &Draw, start: i64, len: i64) -> Result<Examples> {
        let examples = match &draw.rows {
            Rows::Share { start: first, .. } => self.train.narrow(first + start, len),
            rows => self
                .train
                .select(&Tensor::from_slice(&rows.slice(start, len)).to_device(self.device)),
        };
        match self.decode_ahead.as_mut() {
            Some(decode_ahead) => Ok(Examples {
                x: decode_ahead
                    .images(draw, start, &self.batches)?
                    .to_device(self.device),
                y: examples.y,
            }),
            None => Ok(examples),
        }
    }

    /// Mean cross-entropy and accuracy of the current parameters on `data`, in chunks,
    /// in evaluation mode and without autograd.
    fn loss_and_accuracy(
        &self,
        data: &Examples,
        folder: Option<&ImageFolder>,
    ) -> Result<(f64, f64)> {
        let n = data.len();
        let (loss, correct) = tch::no_grad(|| -> Result<_> {
            let mut loss = Tensor::zeros([], (Kind::Double, self.device));
            let mut correct = Tensor::zeros([], (Kind::Int64, self.device));
            for start in (0..n).step_by(EVAL_CHUNK as usize) {
                let chunk = data.narrow(start, EVAL_CHUNK.min(n - start));
                let x = decode(
                    folder,
                    &chunk.x,
                    FolderTransform::IMAGENET_EVAL,
                    0,
                    self.device,
                )?;
                let x = self.precision.input(&self.transform.eval(&x));
                let (sum, predicted) = self.precision.forward(self.device, || {
                    let logits = self.model.forward_t(&x, false);
                    let sum = logits.f_cross_entropy_loss::<Tensor>(
                        &chunk.y,
                        None,
                        Reduction::Sum,
                        -100,
                        0.0,
                    );
                    (sum, logits.argmax(-1, false))
                });
                loss += sum?.to_kind(Kind::Double);
                correct += predicted.eq_tensor(&chunk.y).sum(Kind::Int64);
            }
            Ok((loss.double_value(&[]), correct.int64_value(&[])))
        })?;
        Ok((loss / n as f64, correct as f64 / n as f64))
    }
}

impl Task for Classification {
    fn splits_over_ranks(&self) -> bool {
        true
    }

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
        let start = self.worker_state.get(0).copy();
        (self.params.state_layout().clone(), start)
    }

    fn set_initial(&mut self, w0: &Tensor, buffers: &Tensor) -> Result<()> {
        let b = self.params.state().numel() as i64;
        ensure!(
            buffers.size() == [b],
            "classification: expected the model's {b} buffer values as one [{b}] tensor, got {:?}",
            buffers.size()
        );
        self.params.load(w0)?;
        self.initial = self.params.values();
        tch::no_grad(|| {
            let rows = buffers.unsqueeze(0).expand_as(&self.worker_state);
            self.worker_state.copy_(&rows);
        });
        Ok(())
    }

    fn local(&mut self, worker: usize, w: &Tensor, hessian: bool) -> Result<Local> {
        ensure!(
            worker < self.shares().len(),
            "classification: worker {worker} of {}",
            self.shares().len()
        );
        ensure!(
            !hessian,
            "classification: the Hessian preconditioner (4.1) needs the P×P Hessian, which \
             is not available for neural networks; use another preconditioner"
        );
        let draw = self.batches.next(worker);
        let total = draw.rows.len();
        self.params.load(w)?;
        self.params.zero_grad();
        let state = self.params.state().shallow_clone();
        let own = self.worker_state.get(worker as i64);
        tch::no_grad(|| state.shallow_clone().copy_(&own));
        let mut rng = ChaCha8Rng::seed_from_u64(draw.seed);
        // g_i = ∇H_i(w; B_i), H_i the mean cross-entropy on B_i (2.10): the micro-batches'
        // mean losses weighted by their share of B_i, their gradients summed by backward.
        for (start, len) in chunks(total, self.micro_batch as i64) {
            let part = self.chunk(&draw, start, len)?;
            let x = self.transform.train(&part.x, &mut rng);
            let x = self.precision.input(&x);
            // Dropout's masks (VGG, ViT): this batch's and chunk's own draws.
            let seed = models::dropout_seed(draw.seed, 0, worker, start as usize);
            tch::with_grad(|| -> Result<()> {
                let loss = models::seeded(seed, || {
                    self.precision.forward(self.device, || {
                        self.model
                            .forward_t(&x, true)
                            .f_cross_entropy_loss::<Tensor>(
                                &part.y,
                                None,
                                Reduction::Mean,
                                -100,
                                0.0,
                            )
                    })
                })?;
                let loss = if len == total {
                    loss
                } else {
                    loss * (len as f64 / total as f64)
                };
                loss.f_backward()?;
                Ok(())
            })
            .with_context(|| format!("classification: worker {worker}'s gradient"))?;
        }
        tch::no_grad(|| own.shallow_clone().copy_(&state));
        Ok(Local {
            grad: self.params.flat_grad(),
            samples: total as usize,
            hessian: None,
        })
    }

    fn iterations_per_epoch(&self) -> usize {
        self.batches.per_epoch()
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        vec![
            (
                "sampler".into(),
                Tensor::from_slice(&self.batches.sampler_state()),
            ),
            ("batches".into(), Tensor::from_slice(self.batches.drawn())),
            ("model_state".into(), self.worker_state.shallow_clone()),
        ]
    }

    fn load_state(&mut self, saved: &std::collections::HashMap<String, Tensor>) -> Result<()> {
        let get = |name: &str| {
            saved
                .get(name)
                .with_context(|| format!("the checkpoint has no {name} state"))
        };
        self.batches
            .set_sampler_state(&Vec::<i64>::try_from(get("sampler")?)?)?;
        self.batches
            .set_drawn(Vec::<i64>::try_from(get("batches")?)?)?;
        if let Some(decode_ahead) = self.decode_ahead.as_mut() {
            decode_ahead.reset();
        }
        let model_state = get("model_state")?;
        ensure!(
            model_state.size() == self.worker_state.size(),
            "the checkpoint's model state is {:?}, not {:?}",
            model_state.size(),
            self.worker_state.size()
        );
        tch::no_grad(|| self.worker_state.copy_(model_state));
        Ok(())
    }

    fn metric_names(&self) -> &'static [&'static str] {
        &["train_loss", "train_acc", "test_loss", "test_acc"]
    }

    fn evaluate(&self, w: &Tensor) -> Result<Vec<f64>> {
        self.params.load(w)?;
        tch::no_grad(|| {
            self.params
                .state()
                .shallow_clone()
                .copy_(&self.worker_state.get(0))
        });
        let folders = self.folders.as_ref();
        let (train_loss, train_acc) =
            self.loss_and_accuracy(&self.eval_train, folders.map(|f| &*f.train))?;
        let (test_loss, test_acc) =
            self.loss_and_accuracy(&self.test, folders.map(|f| &*f.test))?;
        Ok(vec![train_loss, train_acc, test_loss, test_acc])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{Activation, Mlp};

    impl Classification {
        /// Worker `worker`'s next batch rows; `None` for the whole share.
        fn next_rows(&mut self, worker: usize) -> Option<Vec<i64>> {
            match self.batches.next(worker).rows {
                Rows::Listed(rows) => Some(rows),
                Rows::Share { .. } => None,
            }
        }

        fn sampler_state(&self) -> Vec<i64> {
            self.batches.sampler_state()
        }

        fn set_sampler_state(&mut self, state: &[i64]) -> Result<()> {
            self.batches.set_sampler_state(state)
        }
    }
    use rand_distr::{Distribution, StandardNormal};

    /// Two Gaussian blobs in 2-D around ±(1.5, 1.5); labels alternate 0, 1, 0, ...
    fn blobs(n: i64, seed: u64) -> Examples {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let y: Vec<i64> = (0..n).map(|i| i % 2).collect();
        let x: Vec<f64> = y
            .iter()
            .flat_map(|&c| [c; 2])
            .map(|c| {
                let noise: f64 = StandardNormal.sample(&mut rng);
                (if c == 1 { 1.5 } else { -1.5 }) + noise
            })
            .collect();
        Examples {
            x: Tensor::from_slice(&x).view([n, 2]),
            y: Tensor::from_slice(&y),
        }
    }

    fn mlp() -> Mlp {
        Mlp::new(2, &[8], 2, Activation::Tanh)
    }

    fn config(workers: usize, batch_size: usize, kind: Kind) -> Config {
        Config::new(workers, batch_size, 3, kind, Device::Cpu)
    }

    fn task(n: i64, workers: usize, batch_size: usize, kind: Kind) -> Classification {
        let net = mlp();
        Classification::new(
            blobs(n, 1),
            blobs(40, 2),
            move |p| net.build(p),
            config(workers, batch_size, kind),
        )
        .unwrap()
    }

    /// The 2-8-2 tanh network written out on views of a leaf w: mean cross-entropy.
    fn direct_loss(layout: &Layout, w: &Tensor, data: &Examples) -> Tensor {
        let s = &layout.segments;
        let x = data.x.to_kind(w.kind());
        let h = (x.matmul(&s[0].view(w).tr()) + s[1].view(w)).tanh();
        let logits = h.matmul(&s[2].view(w).tr()) + s[3].view(w);
        logits.cross_entropy_loss::<Tensor>(&data.y, None, Reduction::Mean, -100, 0.0)
    }

    fn direct_grad(layout: &Layout, w: &Tensor, data: &Examples) -> Tensor {
        let w = w.detach().copy().set_requires_grad(true);
        direct_loss(layout, &w, data).backward();
        w.grad()
    }

    fn close(a: &Tensor, b: &Tensor, tol: f64) -> bool {
        a.allclose(b, tol, tol, false)
    }

    #[test]
    fn full_batch_gradient_matches_autograd() {
        let mut t = task(64, 1, 0, Kind::Double);
        assert_eq!(
            t.layout().names(),
            ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
        );
        let data = blobs(64, 1);
        for w in [t.initial_point(), t.initial_point() * 0.5 + 0.1] {
            let local = t.local(0, &w, false).unwrap();
            assert_eq!(local.samples, 64);
            assert_eq!(local.grad.size(), vec![t.layout().numel()]);
            assert!(local.hessian.is_none());
            assert!(close(
                &local.grad,
                &direct_grad(&t.layout(), &w, &data),
                1e-12
            ));
        }
    }

    #[test]
    fn evaluate_matches_a_direct_computation() {
        let t = task(64, 2, 8, Kind::Double);
        let w = t.initial_point() * 1.3;
        let metrics = t.evaluate(&w).unwrap();
        assert_eq!(metrics.len(), t.metric_names().len());
        let (train, test) = (blobs(64, 1), blobs(40, 2));
        let loss = |d: &Examples| direct_loss(&t.layout(), &w, d).double_value(&[]);
        assert!((metrics[0] - loss(&train)).abs() < 1e-12);
        assert!((metrics[2] - loss(&test)).abs() < 1e-12);
        let layout = t.layout();
        let s = &layout.segments;
        let accuracy = |d: &Examples| {
            let h = (d.x.matmul(&s[0].view(&w).tr()) + s[1].view(&w)).tanh();
            let predicted = (h.matmul(&s[2].view(&w).tr()) + s[3].view(&w)).argmax(-1, false);
            let correct = predicted.eq_tensor(&d.y).sum(Kind::Int64).int64_value(&[]);
            correct as f64 / d.len() as f64
        };
        assert_eq!(metrics[1], accuracy(&train));
        assert_eq!(metrics[3], accuracy(&test));
    }

    #[test]
    fn gradient_descent_by_hand_reduces_the_loss() {
        let mut t = task(64, 2, 8, Kind::Float);
        let mut w = t.initial_point();
        assert_eq!(w.kind(), Kind::Float);
        let before = t.evaluate(&w).unwrap();
        for _ in 0..60 {
            let locals: Vec<Local> = (0..2).map(|i| t.local(i, &w, false).unwrap()).collect();
            let g = (&locals[0].grad + &locals[1].grad) / 2.0;
            assert_eq!(g.kind(), Kind::Float);
            w -= g * 0.5;
        }
        let after = t.evaluate(&w).unwrap();
        assert!(after[0] < 0.5 * before[0], "{before:?} → {after:?}");
        assert!(after[2] < before[2], "{before:?} → {after:?}");
        assert!(after[3] >= 0.9, "{after:?}");
    }

    #[test]
    fn four_workers_weighted_equal_one_batch_of_their_samples() {
        // 32 samples, 4 workers of 8, batch 8 = each whole share.
        let mut t = task(32, 4, 8, Kind::Double);
        assert_eq!(t.alphas(), &[0.25; 4]);
        let w = t.initial_point();
        let locals: Vec<Local> = (0..4).map(|i| t.local(i, &w, false).unwrap()).collect();
        let total: usize = locals.iter().map(|l| l.samples).sum();
        assert_eq!(total, 32);
        let mean = locals
            .iter()
            .map(|l| &l.grad * (l.samples as f64 / total as f64))
            .reduce(|a, b| a + b)
            .unwrap();
        assert!(close(
            &mean,
            &direct_grad(&t.layout(), &w, &blobs(32, 1)),
            1e-12
        ));
    }

    #[test]
    fn batches_walk_permutations_without_replacement() {
        let mut t = task(64, 2, 5, Kind::Double);
        assert_eq!(t.shares(), &[(0, 32), (32, 32)]);
        // Worker 1: 6 batches per pass of 32 (2 samples left out), then a new pass.
        let pass: Vec<i64> = (0..6).flat_map(|_| t.next_rows(1).unwrap()).collect();
        let mut sorted = pass.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 30);
        assert!(sorted.iter().all(|r| (32..64).contains(r)));
        assert_eq!(t.sampler_state()[3..], [0, 0, 30]);
        let next = t.next_rows(1).unwrap();
        assert_eq!(t.sampler_state()[3], 1);
        assert_eq!(t.sampler_state()[5], 5);
        assert_ne!(next, pass[..5]);
    }

    #[test]
    fn restoring_the_sampler_state_reproduces_the_next_batches() {
        let mut t = task(64, 2, 5, Kind::Double);
        for _ in 0..9 {
            t.next_rows(0);
            t.next_rows(1);
        }
        t.next_rows(1);
        let state = t.sampler_state();
        let w = t.initial_point();
        let record = |t: &mut Classification| -> (Vec<Vec<i64>>, Vec<Tensor>) {
            let rows = (0..10).flat_map(|_| [t.next_rows(0).unwrap(), t.next_rows(1).unwrap()]);
            let rows = rows.collect();
            let grads = (0..2)
                .map(|i| t.local(i, &w, false).unwrap().grad)
                .collect();
            (rows, grads)
        };
        let (rows, grads) = record(&mut t);

        // On the same task after it moved on, and on a fresh one.
        let mut fresh = task(64, 2, 5, Kind::Double);
        for t in [&mut t, &mut fresh] {
            t.set_sampler_state(&state).unwrap();
            let (again, grads_again) = record(t);
            assert_eq!(again, rows);
            for (a, b) in grads.iter().zip(&grads_again) {
                assert!(a.equal(b));
            }
        }
        assert!(t.set_sampler_state(&state[1..]).is_err());
        let mut bad = state.clone();
        bad[2] = 33;
        assert!(t.set_sampler_state(&bad).is_err());
    }

    #[test]
    fn the_seed_fixes_the_initial_point_and_the_gradients() {
        let (mut a, mut b) = (task(64, 2, 4, Kind::Double), task(64, 2, 4, Kind::Double));
        assert!(a.initial_point().equal(&b.initial_point()));
        let w = a.initial_point();
        for i in [0, 1, 0, 1, 1] {
            assert!(a
                .local(i, &w, false)
                .unwrap()
                .grad
                .equal(&b.local(i, &w, false).unwrap().grad));
        }
        let net = mlp();
        let other = Classification::new(
            blobs(64, 1),
            blobs(40, 2),
            move |p| net.build(p),
            Config {
                seed: 4,
                ..config(2, 4, Kind::Double)
            },
        )
        .unwrap();
        assert!(!other.initial_point().equal(&a.initial_point()));
    }

    #[test]
    fn shares_differ_by_at_most_one_and_train_loss_uses_a_bounded_subset() {
        let t = task(10_003, 4, 0, Kind::Float);
        let lens: Vec<i64> = t.shares().iter().map(|s| s.1).collect();
        assert_eq!(lens, [2501, 2501, 2501, 2500]);
        assert!((t.alphas().iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(t.eval_train.len(), EVAL_TRAIN_SAMPLES);
    }

    #[test]
    fn bad_inputs_are_rejected() {
        let build = |p: &nn::Path| mlp().build(p);
        let err = |train: Examples, cfg: Config| {
            format!(
                "{:#}",
                Classification::new(train, blobs(40, 2), build, cfg)
                    .err()
                    .unwrap()
            )
        };
        let e = err(blobs(64, 1), config(2, 33, Kind::Double));
        assert!(
            e.contains("key `train.batch_size`: batch_size 33 exceeds the 32"),
            "{e}"
        );
        let e = err(blobs(3, 1), config(4, 0, Kind::Double));
        assert!(e.contains("cannot be split"), "{e}");
        let mut wide = blobs(64, 1);
        wide.y *= 2;
        let e = err(wide, config(1, 0, Kind::Double));
        assert!(e.contains("labels range over 0..=2"), "{e}");
        let mut bytes = blobs(64, 1);
        bytes.x = bytes.x.to_kind(Kind::Int);
        let e = err(bytes, config(1, 0, Kind::Double));
        assert!(e.contains("uint8 pixels, int64 image indices"), "{e}");

        let mut t = task(64, 1, 0, Kind::Double);
        let w = t.initial_point();
        let e = format!("{:#}", t.local(0, &w, true).err().unwrap());
        assert!(e.contains("Hessian"), "{e}");
        assert!(t.local(1, &w, false).is_err());
    }

    /// 2 → batch norm → 2: the running statistics are the model's only state.
    fn batch_norm_task(workers: usize) -> Classification {
        Classification::new(
            blobs(64, 1),
            blobs(40, 2),
            |p| {
                nn::seq_t()
                    .add(nn::batch_norm1d(p / "bn", 2, Default::default()))
                    .add(crate::models::mlp::linear(&(p / "fc"), 2, 2))
            },
            config(workers, 8, Kind::Double),
        )
        .unwrap()
    }

    #[test]
    fn each_worker_keeps_its_own_batch_norm_statistics() {
        let mut t = batch_norm_task(3);
        // running_mean and running_var of 2 features: B = 4, one row per worker.
        assert_eq!(t.worker_state.size(), [3, 4]);
        let w = t.initial_point();
        let fresh = t.worker_state.copy();
        t.local(1, &w, false).unwrap();
        // Only worker 1's row moved (momentum 0.1 towards its batch's statistics).
        assert!(t.worker_state.get(0).equal(&fresh.get(0)));
        assert!(!t.worker_state.get(1).equal(&fresh.get(1)));
        assert!(t.worker_state.get(2).equal(&fresh.get(2)));

        // Evaluation uses worker 0's statistics, whatever the model last ran with.
        let at_start = t.evaluate(&w).unwrap();
        t.local(2, &w, false).unwrap();
        assert_eq!(t.evaluate(&w).unwrap(), at_start);
        t.local(0, &w, false).unwrap();
        assert_ne!(t.evaluate(&w).unwrap(), at_start);

        // A checkpoint's state restores every worker's statistics and batch count.
        let saved: std::collections::HashMap<String, Tensor> = t.state().into_iter().collect();
        let mut other = batch_norm_task(3);
        other.load_state(&saved).unwrap();
        assert!(other.worker_state.equal(&t.worker_state));
        assert_eq!(other.batches.drawn(), [1, 1, 1]);
        assert_eq!(other.evaluate(&w).unwrap(), t.evaluate(&w).unwrap());
    }

    #[test]
    fn micro_batches_give_the_batch_gradient() {
        let w = task(64, 2, 10, Kind::Double).initial_point();
        let grads = |micro_batch: usize| -> Vec<Tensor> {
            let net = mlp();
            let config = config(2, 10, Kind::Double).with_passes(micro_batch, Precision::default());
            let mut t =
                Classification::new(blobs(64, 1), blobs(40, 2), move |p| net.build(p), config)
                    .unwrap();
            (0..6)
                .map(|k| t.local(k % 2, &w, false).unwrap().grad)
                .collect()
        };
        let whole = grads(0);
        for (a, b) in whole.iter().zip(grads(10)) {
            assert!(a.equal(&b), "one micro-batch is the batch");
        }
        for micro_batch in [1, 3, 4] {
            for (a, b) in whole.iter().zip(grads(micro_batch)) {
                assert!(close(a, &b, 1e-12), "micro-batches of {micro_batch}");
            }
        }
    }

    /// A conv + batch-norm network on 3×8×8 uint8 images, f32.
    fn image_task(precision: Precision) -> Classification {
        let x = Tensor::arange(32 * 3 * 64, (Kind::Int64, Device::Cpu))
            .remainder(251)
            .to_kind(Kind::Uint8)
            .view([32, 3, 8, 8]);
        let y = Tensor::arange(32, (Kind::Int64, Device::Cpu)).remainder(2);
        Classification::new(
            Examples::images(&x, &y),
            Examples::images(&x, &y),
            |p| {
                nn::seq_t()
                    .add(nn::conv2d(p / "conv", 3, 4, 3, Default::default()))
                    .add(nn::batch_norm2d(p / "bn", 4, Default::default()))
                    .add_fn(|x| x.relu().flatten(1, -1))
                    .add(crate::models::mlp::linear(&(p / "fc"), 4 * 36, 2))
            },
            config(2, 8, Kind::Float).with_passes(0, precision),
        )
        .unwrap()
    }

    #[test]
    fn channels_last_keeps_the_gradient_and_autocast_approximates_it() {
        let run = |precision: Precision| {
            let mut t = image_task(precision);
            let w = t.initial_point();
            (t.local(0, &w, false).unwrap().grad, t.evaluate(&w).unwrap())
        };
        let (exact, metrics) = run(Precision::default());
        let (nhwc, nhwc_metrics) = run(Precision::new(None, true).unwrap());
        assert!(close(&exact, &nhwc, 1e-5));
        for (a, b) in metrics.iter().zip(&nhwc_metrics) {
            assert!((a - b).abs() < 1e-5, "{metrics:?} {nhwc_metrics:?}");
        }
        for kind in [Kind::BFloat16, Kind::Half] {
            let (grad, metrics) = run(Precision::new(Some(kind), true).unwrap());
            assert_eq!(grad.kind(), Kind::Float, "gradients stay f32");
            let error = (&grad - &exact).norm().double_value(&[]) / exact.norm().double_value(&[]);
            assert!(
                error > 0.0 && error < 0.05,
                "{kind:?}: relative error {error}"
            );
            assert!(metrics.iter().all(|m| m.is_finite()));
        }
    }
}
