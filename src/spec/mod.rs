//! Experiment specs: serde structs, strict parsing with file:line:column errors,
//! `--set` overrides and the resolved spec written beside every run.
mod error;
mod gan;
mod gpt;
mod locate;
mod model;
mod optimizer;
mod overrides;
mod plot;
mod recipes;
mod rl;
mod train;

pub use error::{KeyError, SpecError};
pub use gan::{GanSpec, Score};
pub use gpt::{GptStyle, TokenOrder, PLAYERS as GPT_PLAYERS, VAL_TOKENS};
pub use model::{ModelKind, ModelSpec};
pub use optimizer::OptimizerSpec;
pub use overrides::Override;
pub use plot::{Legend, PlotSpec};
pub use recipes::{SimilaritySpec, MAX_LENGTH, TEST_FRACTION};
pub use rl::{Algorithm, RlSpec};
pub use train::{parse_device, Autocast, Dtype, Every, TrainSpec};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A whole experiment, as read from `SPEC.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Results go to `<out>/<name>/<run-id>/`.
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub data: DataSpec,
    /// The network, for classification data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    /// The game and the score of a GAN (`model.kind = "wgan"` or `"wgan_gp"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gan: Option<GanSpec>,
    /// Recipes: generated recipes scored against the references (Table 6's semantic
    /// similarity); none without this table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity: Option<SimilaritySpec>,
    /// The environment and the algorithm of a reinforcement-learning task
    /// (`data.kind = "environment"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rl: Option<RlSpec>,
    pub train: TrainSpec,
    pub optimizer: OptimizerSpec,
    /// `[protocol]`: the workers train as nodes with models of their own, mixed by this MixML
    /// protocol ([`crate::optim::decentralised`]); absent, they share one point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<crate::protocol::ProtocolSpec>,
    /// `[schedule]`: the learning-rate multiplier over iterations (constant if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<crate::schedule::ScheduleSpec>,
    /// Grid for `pisa sweep`: dotted key → values; the runs are its Cartesian product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<toml::Table>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plot: Option<PlotSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataKind {
    LeastSquares,
    /// MNIST in IDX files (gzipped or not), `path` = their folder.
    Mnist,
    /// Fashion-MNIST in IDX files, `path` = their folder.
    FashionMnist,
    /// UCI Adult as LIBSVM's a9a / a9a.t, `path` = their folder.
    Adult,
    /// CIFAR-10, binary version: `path` = the folder of `cifar-10-batches-bin` (or that
    /// folder itself), any subset of the five training files.
    Cifar10,
    /// ImageNet-style folders: `path` holds `train/<class>/*.JPEG` and `val/<class>/*`,
    /// decoded batch by batch with torchvision's RandomResizedCrop(224) + flip for
    /// training and Resize(256) + CenterCrop(224) for evaluation.
    ImageFolder,
    /// Generated images of `image` = [C, H, W] shape, `classes` classes and `samples`
    /// training images (a fifth as many test images), for quick runs without real data.
    SyntheticImages,
    /// Word-level Penn Treebank (Mikolov's text files), `path` = their folder, for a
    /// language model (`model.kind = "awd_lstm"`).
    Ptb,
    /// GPT-2 BPE tokens in nanoGPT / modded-nanogpt shards (`.bin`: a 256-int32 header,
    /// then uint16 tokens), `path` = the folder of `*_train_*.bin` and `*_val_*.bin`
    /// (FineWeb's, or those of `pisa data prepare text`), for `model.kind = "gpt"`.
    Tokens,
    /// The recipes corpus of Appendix A.4 (`path` = `recipes_1000.csv`), to fine-tune a GPT
    /// (`model.kind = "gpt"`, usually with `weights`) as the PISA GPT-2 scripts do.
    Recipes,
    /// Transitions collected from a MuJoCo environment by the policy being trained
    /// (`[rl]` names the environment and the algorithm).
    Environment,
}

impl DataKind {
    pub fn is_classification(self) -> bool {
        !matches!(
            self,
            DataKind::LeastSquares
                | DataKind::Ptb
                | DataKind::Tokens
                | DataKind::Recipes
                | DataKind::Environment
        )
    }
}

/// `[data]`: where the samples come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub kind: DataKind,
    /// A file to read (for least squares: `.npz` with arrays `A` (N x d) and `b` (N)).
    /// Relative paths are looked up in the data directory (`--data-dir`, `PISA_DATA_DIR`,
    /// else `./data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Generate a problem instead of reading one: number of rows N.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    /// Generated problem: dimension d of w.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    /// Synthetic images: their [channels, height, width].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<[i64; 3]>,
    /// Synthetic images: the number of classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<i64>,
    /// Generated problem: standard deviation of the noise added to b.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<f64>,
    /// Image datasets whose folder holds only the test files (the shared MNIST split):
    /// hold out this fraction of them, seeded, as the test set and train on the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_fraction: Option<f64>,
    /// Classification: train on this many of the training examples, drawn by a seeded
    /// shuffle (a reduced budget); the test set stays whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_subset: Option<usize>,
    /// PTB without its training file (this machine): train on the validation file but for
    /// its last `valid_fraction` of lines, which validate (a documented proxy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_fraction: Option<f64>,
    /// Each worker's (client's) D_i drawn by this scheme instead of an equal random cut:
    /// `{ kind = "label-skew", labels = 2 }`, `{ kind = "dirichlet", beta = 0.5 }`,
    /// `{ kind = "quantity-skew", beta = 0.5 }` or `{ kind = "iid" }`. Saved to the run's
    /// `partition.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<crate::data::partition::Scheme>,
    /// Training-batch augmentation, on the device: "none", or "crop-flip" (random crop
    /// from the image zero-padded by 4 pixels, then a horizontal flip with probability ½,
    /// as CIFAR-10 training does). Default: "crop-flip" for CIFAR-10, "none" otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<AugmentKind>,
    /// Tokens: the validation loss is the mean over the first val_tokens predictions of
    /// the validation shards, in windows of block_size (modded-nanogpt's 10,485,760).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_tokens: Option<u64>,
    /// Tokens: "sequential" (modded-nanogpt's loader, the default) or "random"
    /// (nanoGPT's `get_batch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<TokenOrder>,
    /// Recipes: tokens per recipe, truncated and padded (the scripts' 180).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// Recipes: the train/test split as a JSON file {"train_indices": [...],
    /// "val_indices": [...]} (absolute, or relative to the directory pisa runs in), e.g. the
    /// official one in experiments/table6/official-split.json; without it a split seeded
    /// by `seed` with `test_fraction` (0.1) held out. Saved to the run's `split.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<PathBuf>,
    /// Recipes: count the padding tokens in the loss, as the scripts do (their labels are
    /// the input ids, pads included); default false, padding masked out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_on_padding: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AugmentKind {
    None,
    CropFlip,
}

impl AugmentKind {
    pub fn transform(self) -> crate::data::transform::Augment {
        match self {
            AugmentKind::None => crate::data::transform::Augment::None,
            AugmentKind::CropFlip => crate::data::transform::Augment::CropFlip { padding: 4 },
        }
    }
}

impl DataSpec {
    /// The augmentation in force (given, or the dataset's default).
    pub fn augment(&self) -> AugmentKind {
        self.augment.unwrap_or(match self.kind {
            DataKind::Cifar10 => AugmentKind::CropFlip,
            _ => AugmentKind::None,
        })
    }
}

impl Spec {
    /// Reads, applies `overrides` and validates a spec file. Every failure is a
    /// [`SpecError`] naming the file (or the `--set` argument), line, column and key.
    pub fn load(path: &Path, overrides: &[Override]) -> Result<Spec, SpecError> {
        let source = read_source(path)?;
        let spec = Self::parse(&source, path)?;
        if overrides.is_empty() {
            Ok(spec)
        } else {
            overrides::apply(&source, path, overrides)
        }
    }

    /// Strictly parses and validates TOML `source`; `origin` names it in errors.
    pub fn parse(source: &str, origin: &Path) -> Result<Spec, SpecError> {
        let spec: Spec =
            toml::from_str(source).map_err(|e| SpecError::from_toml(origin, source, &e))?;
        spec.validate()
            .map_err(|(key, msg)| SpecError::at_key(origin, source, &key, msg))?;
        Ok(spec)
    }

    /// Semantic checks that serde cannot express; on failure returns the offending
    /// dotted key and a message.
    fn validate(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, msg: String| Err((key.to_string(), msg));
        if let Err(e) = check_folder_name(&self.name) {
            return bad("name", e);
        }
        let t = &self.train;
        t.validate()?;
        self.validate_data()?;
        let players = self.players();
        self.optimizer.validate_players("optimizer", players)?;
        self.optimizer
            .check_dtype_players("optimizer", players, t.dtype)?;
        if let Some(protocol) = &self.protocol {
            self.validate_protocol(protocol)?;
        }
        if let Some(schedule) = &self.schedule {
            // With epochs the length is known only with the task; `build` checks it then.
            schedule.validate(t.iterations.unwrap_or(usize::MAX))?;
        }
        if let Some(sweep) = &self.sweep {
            for (key, values) in sweep {
                let Some(values) = values.as_array().filter(|a| !a.is_empty()) else {
                    return bad(
                        &format!("sweep.{key}"),
                        format!("sweep key {key:?} needs a non-empty array of values"),
                    );
                };
                if let Some(v) = values
                    .iter()
                    .enumerate()
                    .find_map(|(i, v)| values[..i].contains(v).then_some(v))
                {
                    return bad(
                        &format!("sweep.{key}"),
                        format!("sweep key {key:?} lists {v} twice"),
                    );
                }
            }
        }
        Ok(())
    }

    /// The protocol's own keys, and what training under one needs.
    fn validate_protocol(
        &self,
        protocol: &crate::protocol::ProtocolSpec,
    ) -> Result<(), (String, String)> {
        let bad = |key: &str, msg: &str| Err((key.to_string(), msg.to_string()));
        let built = protocol
            .protocol()
            .map_err(|(key, msg)| (format!("protocol.{key}"), msg))?;
        if matches!(built, crate::protocol::Protocol::AsyncPs { .. }) {
            return bad(
                "protocol.kind",
                "training under async-ps is not built: its server must apply the workers' \
                 updates, which a node's own optimizer does not expose; `pisa mixing` measures \
                 its t_mix",
            );
        }
        if self.train.workers < 2 {
            return bad(
                "train.workers",
                "a [protocol] mixes the workers' models: give train.workers ≥ 2",
            );
        }
        if self.data.kind == DataKind::Environment || self.gan_model().is_some() {
            return bad(
                "protocol",
                "[protocol] is for single-player tasks trained step by step (not the GAN or \
                 reinforcement learning)",
            );
        }
        if self.players().len() > 1 {
            return bad(
                "protocol",
                "[protocol] trains one optimizer per worker: drop [optimizer.embedding]",
            );
        }
        Ok(())
    }

    fn validate_data(&self) -> Result<(), (String, String)> {
        let d = &self.data;
        let bad = |key: &str, msg: &str| Err((key.to_string(), msg.to_string()));
        match (self.gan_model(), &self.gan) {
            (Some(gp), _) => return self.validate_gan(gp),
            (None, Some(_)) => {
                return bad("gan", "[gan] is for model.kind = \"wgan\" or \"wgan_gp\"")
            }
            (None, None) => {}
        }
        match (d.kind, &self.rl) {
            (DataKind::Environment, _) => return self.validate_environment(),
            (_, Some(_)) => return bad("rl", "[rl] is for data.kind = \"environment\""),
            _ => {}
        }
        if d.kind == DataKind::Recipes {
            return self.validate_recipes();
        }
        if let Some((key, _)) = self.recipe_keys().into_iter().find(|(_, given)| *given) {
            return bad(key, "max_length, split, loss_on_padding, model.weights and [similarity] are for recipes data");
        }
        if d.kind == DataKind::Tokens {
            return self.validate_tokens();
        }
        if let Some((key, _)) = self.token_keys().into_iter().find(|(_, given)| *given) {
            return bad(key, "val_tokens and order are for tokens data");
        }
        if d.kind != DataKind::Ptb {
            let t = &self.train;
            for (key, given) in [
                ("train.bptt", t.bptt.is_some()),
                ("train.eval_batch_size", t.eval_batch_size.is_some()),
                ("train.test_batch_size", t.test_batch_size.is_some()),
            ] {
                if given {
                    return bad(key, "bptt and the evaluation batch sizes are for ptb data");
                }
            }
        }
        if d.kind.is_classification() {
            return self.validate_images();
        }
        if d.kind == DataKind::Ptb {
            return self.validate_language();
        }
        if d.valid_fraction.is_some() {
            return bad(
                "data.valid_fraction",
                "valid_fraction applies to ptb data only",
            );
        }
        if self.model.is_some() {
            return bad(
                "model",
                "least_squares data takes no [model] (w is the model)",
            );
        }
        if d.test_fraction.is_some() {
            return bad(
                "data.test_fraction",
                "test_fraction applies to image datasets only",
            );
        }
        if d.train_subset.is_some() {
            return bad(
                "data.train_subset",
                "train_subset applies to classification data only",
            );
        }
        if d.augment.is_some() {
            return bad("data.augment", "augment applies to image datasets only");
        }
        if d.partition.is_some() {
            return bad(
                "data.partition",
                "partition applies to classification data only",
            );
        }
        let t = &self.train;
        for (key, given) in [
            ("train.micro_batch", t.micro_batch != 0),
            ("train.autocast", t.autocast.is_some()),
            ("train.channels_last", t.channels_last),
        ] {
            if given {
                return bad(
                    key,
                    "micro_batch, autocast and channels_last are for networks; least squares \
                     has none",
                );
            }
        }
        match (&d.path, d.samples, d.dim) {
            (Some(_), None, None) => {
                if d.noise.is_some() {
                    return bad("data.noise", "noise applies to generated problems only");
                }
            }
            (Some(_), _, _) => {
                return bad(
                    "data.path",
                    "give either path (read a file) or samples and dim (generate), not both",
                )
            }
            (None, Some(n), Some(dim)) => {
                if n == 0 || dim == 0 {
                    return bad("data.samples", "samples and dim must be positive");
                }
                if n % self.train.workers != 0 {
                    return bad(
                        "data.samples",
                        "samples must be a multiple of train.workers (m equal blocks D_i)",
                    );
                }
                if self.train.batch_size > n / self.train.workers {
                    return Err((
                        "train.batch_size".into(),
                        format!(
                            "batch_size {} exceeds the {} rows of each worker's block D_i \
                             (samples / workers)",
                            self.train.batch_size,
                            n / self.train.workers
                        ),
                    ));
                }
                if d.noise.is_some_and(|s| !(s >= 0.0 && s.is_finite())) {
                    return bad("data.noise", "noise must be a finite number >= 0");
                }
            }
            _ => {
                return bad(
                    "data",
                    "least_squares data needs either path = \"file.npz\" or both samples and dim",
                )
            }
        }
        Ok(())
    }

    fn validate_images(&self) -> Result<(), (String, String)> {
        let d = &self.data;
        let bad = |key: &str, msg: String| Err((key.to_string(), msg));
        let synthetic = d.kind == DataKind::SyntheticImages;
        if synthetic {
            let given = (d.samples, d.image, d.classes);
            let (Some(n), Some(image), Some(classes)) = given else {
                return bad(
                    "data",
                    "synthetic_images needs samples, image = [C, H, W] and classes".into(),
                );
            };
            if n < 5 || image.iter().any(|&s| s < 1) || classes < 2 {
                return bad(
                    "data",
                    "synthetic_images needs samples >= 5, a positive image shape and \
                     classes >= 2"
                        .into(),
                );
            }
            // uint8 pixels of the training images and the fifth as many test images.
            let bytes = image
                .iter()
                .try_fold(n as u64 + (n as u64 / 5).max(1), |b, &s| {
                    b.checked_mul(s as u64)
                })
                .filter(|&b| b <= MAX_SYNTHETIC_BYTES);
            if bytes.is_none() {
                return bad(
                    "data.image",
                    format!(
                        "{n} synthetic images of {image:?} need more than {} GiB of pixels",
                        MAX_SYNTHETIC_BYTES >> 30
                    ),
                );
            }
        } else if d.path.is_none() {
            return bad(
                "data.path",
                "classification data needs path = the folder of its files".into(),
            );
        }
        for (key, given) in [
            ("data.samples", d.samples.is_some() && !synthetic),
            ("data.image", d.image.is_some() && !synthetic),
            ("data.classes", d.classes.is_some() && !synthetic),
            ("data.path", d.path.is_some() && synthetic),
            ("data.dim", d.dim.is_some()),
            ("data.noise", d.noise.is_some()),
        ] {
            if given {
                return bad(key, format!("{key} does not apply to {:?} data", d.kind));
            }
        }
        if d.kind == DataKind::Adult && d.augment() == AugmentKind::CropFlip {
            return bad(
                "data.augment",
                "crop-flip augments images; Adult's samples are feature vectors (use \"none\")"
                    .into(),
            );
        }
        if let Some(scheme) = &d.partition {
            scheme
                .validate()
                .map_err(|(key, msg)| (format!("data.partition.{key}"), msg))?;
        }
        if let Some(f) = d.test_fraction {
            if !(f > 0.0 && f < 1.0) {
                return bad(
                    "data.test_fraction",
                    format!("test_fraction must be in (0, 1), not {f}"),
                );
            }
        }
        match &self.model {
            None => bad(
                "model",
                "classification data needs a [model] table, e.g. kind = \"mlp\"".into(),
            ),
            Some(m) => m.validate(),
        }
    }

    /// Whether the model is a GAN: Some(true) for WGAN-GP, Some(false) for WGAN.
    pub fn gan_model(&self) -> Option<bool> {
        match self.model.as_ref()?.kind {
            ModelKind::Wgan => Some(false),
            ModelKind::WganGp => Some(true),
            _ => None,
        }
    }

    fn validate_gan(&self, gp: bool) -> Result<(), (String, String)> {
        let (d, t) = (&self.data, &self.train);
        let bad = |key: &str, msg: String| Err((key.to_string(), msg));
        if !matches!(
            d.kind,
            DataKind::Mnist | DataKind::FashionMnist | DataKind::Cifar10
        ) {
            return bad(
                "data.kind",
                format!(
                    "a GAN trains on mnist, fashion_mnist or cifar10 images, not {:?}",
                    d.kind
                ),
            );
        }
        if d.path.is_none() {
            return bad(
                "data.path",
                "a GAN needs path = the folder of the training images".into(),
            );
        }
        // augment = "none" is what runs of earlier versions recorded in their spec.toml.
        let mut keys: Vec<_> = self
            .classification_keys()
            .into_iter()
            .map(|(key, given)| match key {
                "data.augment" => (key, given && d.augment != Some(AugmentKind::None)),
                _ => (key, given),
            })
            .collect();
        keys.push(("data.valid_fraction", d.valid_fraction.is_some()));
        reject_given(&keys, "a GAN")?;
        if t.batch_size == 0 {
            return bad(
                "train.batch_size",
                "each worker's sub-batch of real images: at least 1 (the code: 64/m)".into(),
            );
        }
        self.gan.clone().unwrap_or_default().validate(gp)?;
        self.model.as_ref().expect("a GAN model").validate()
    }

    /// The keys of generated or partitioned classification data and of its passes, each
    /// with whether the spec gives it: the GAN and the language model take none of them.
    fn classification_keys(&self) -> Vec<(&'static str, bool)> {
        let (d, t) = (&self.data, &self.train);
        vec![
            ("data.samples", d.samples.is_some()),
            ("data.dim", d.dim.is_some()),
            ("data.image", d.image.is_some()),
            ("data.classes", d.classes.is_some()),
            ("data.noise", d.noise.is_some()),
            ("data.test_fraction", d.test_fraction.is_some()),
            ("data.train_subset", d.train_subset.is_some()),
            ("data.partition", d.partition.is_some()),
            ("data.augment", d.augment.is_some()),
            ("train.micro_batch", t.micro_batch != 0),
            ("train.autocast", t.autocast.is_some()),
            ("train.channels_last", t.channels_last),
        ]
    }

    fn validate_environment(&self) -> Result<(), (String, String)> {
        let (d, t) = (&self.data, &self.train);
        let Some(rl) = &self.rl else {
            return Err((
                "data.kind".into(),
                "environment data needs an [rl] table naming env (and algorithm)".into(),
            ));
        };
        let given = [
            ("data.path", d.path.is_some()),
            ("data.valid_fraction", d.valid_fraction.is_some()),
            ("model", self.model.is_some()),
            ("train.bptt", t.bptt.is_some()),
            ("train.eval_batch_size", t.eval_batch_size.is_some()),
            ("train.test_batch_size", t.test_batch_size.is_some()),
            ("train.init", t.init.is_some()),
        ];
        reject_given(&given, "environment data (its network is [rl] hidden)")?;
        reject_given(&self.classification_keys(), "environment data")?;
        reject_given(&self.token_keys(), "environment data")?;
        reject_given(&self.recipe_keys(), "environment data")?;
        rl.validate()
    }

    fn validate_language(&self) -> Result<(), (String, String)> {
        let (d, t) = (&self.data, &self.train);
        let bad = |key: &str, msg: String| Err((key.to_string(), msg));
        if d.path.is_none() {
            return bad(
                "data.path",
                "ptb data needs path = the folder of its text files".into(),
            );
        }
        reject_given(&self.classification_keys(), "ptb data")?;
        if let Some(f) = d.valid_fraction.filter(|f| !(*f > 0.0 && *f < 1.0)) {
            return bad(
                "data.valid_fraction",
                format!("valid_fraction must be in (0, 1), not {f}"),
            );
        }
        if t.batch_size == 0 {
            return bad(
                "train.batch_size",
                "a language model trains batch_size parallel streams: at least 1 (the suite: 20)"
                    .into(),
            );
        }
        let r = t.resolved_language();
        for (key, value) in [
            ("train.bptt", r.bptt),
            ("train.eval_batch_size", r.eval_batch_size),
            ("train.test_batch_size", r.test_batch_size),
        ] {
            if value == Some(0) {
                return bad(key, format!("{key} must be at least 1"));
            }
        }
        if r.bptt.is_some_and(|b| b < t.workers) {
            return bad(
                "train.bptt",
                format!(
                    "bptt {} cannot be cut into the {} workers' pieces",
                    r.bptt.unwrap_or(0),
                    t.workers
                ),
            );
        }
        match &self.model {
            Some(m) if m.kind == ModelKind::AwdLstm => m.validate(),
            Some(_) => bad(
                "model.kind",
                "ptb data trains a language model: kind = \"awd_lstm\"".into(),
            ),
            None => bad(
                "model",
                "ptb data needs a [model] table with kind = \"awd_lstm\"".into(),
            ),
        }
    }

    /// The players the task trains, each by its own optimizer (a GAN's critic and
    /// generator; a GPT's blocks and embedding when `[optimizer.embedding]` is given);
    /// `[""]` for one.
    pub fn players(&self) -> &'static [&'static str] {
        match &self.model {
            Some(m)
                if m.kind == ModelKind::Gpt && self.optimizer.hypers.contains_key("embedding") =>
            {
                &GPT_PLAYERS
            }
            Some(m) => m.kind.players(),
            None => &[""],
        }
    }

    /// The spec with every default written out, as saved to `spec.toml`.
    pub fn resolved(&self) -> Spec {
        let mut s = self.clone();
        if s.data.kind == DataKind::LeastSquares && s.data.path.is_none() && s.data.noise.is_none()
        {
            s.data.noise = Some(crate::data::least_squares::DEFAULT_NOISE);
        }
        if s.data.kind.is_classification() {
            // A GAN sees its images as they are: no augmentation to record.
            s.data.augment = match self.gan_model() {
                Some(_) => None,
                None => Some(s.data.augment()),
            };
        }
        if s.data.kind == DataKind::Ptb {
            s.train = s.train.resolved_language();
        }
        if s.data.kind == DataKind::Tokens {
            s.data.val_tokens = Some(s.data.val_tokens.unwrap_or(VAL_TOKENS));
            s.data.order = Some(s.data.order.unwrap_or(TokenOrder::Sequential));
            s.train.eval_batch_size = Some(s.train.eval_batch_size.unwrap_or(s.train.batch_size));
        }
        if s.data.kind == DataKind::Recipes {
            s.data.max_length = Some(s.data.max_length.unwrap_or(MAX_LENGTH));
            if s.data.split.is_none() {
                s.data.test_fraction = Some(s.data.test_fraction.unwrap_or(TEST_FRACTION));
            }
            s.data.loss_on_padding = Some(s.data.loss_on_padding.unwrap_or(false));
            s.train.eval_batch_size =
                Some(s.train.eval_batch_size.unwrap_or(s.train.batch_size.max(1)));
        }
        s.model = s.model.as_ref().map(|m| m.resolved());
        s.rl = s.rl.as_ref().map(RlSpec::resolved);
        if let Some(gp) = self.gan_model() {
            s.gan = Some(s.gan.clone().unwrap_or_default().resolved(gp));
        }
        s.optimizer = s.optimizer.resolved_players(self.players());
        s.schedule = s.schedule.as_ref().map(|x| x.resolved());
        s
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a Spec always serializes")
    }
}

/// The first of `keys` the spec gives, as an error saying it does not apply to `what`.
fn reject_given(keys: &[(&str, bool)], what: &str) -> Result<(), (String, String)> {
    match keys.iter().find(|(_, given)| *given) {
        Some((key, _)) => Err((key.to_string(), format!("{key} does not apply to {what}"))),
        None => Ok(()),
    }
}

/// The most memory synthetic images may take (uint8 pixels): they are made at once.
const MAX_SYNTHETIC_BYTES: u64 = 16 << 30;

/// The longest folder name a spec `name` or run id may have: a file name holds 255
/// bytes, and the staging folder adds a dot and `.partial-<pid>` (and the lock `.lock`).
pub const MAX_FOLDER_NAME: usize = 200;

/// Names that become folders (spec `name`, run ids) must be one plain path component.
pub fn check_folder_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_FOLDER_NAME {
        return Err(format!(
            "{:?}… is {} characters long; a folder name may have at most {MAX_FOLDER_NAME}",
            &name[..name.char_indices().nth(24).map_or(name.len(), |(i, _)| i)],
            name.len()
        ));
    }
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.=,+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} must be non-empty ASCII letters, digits and '-_.=,+', not starting with '.' \
             (it names a folder)"
        ))
    }
}

/// An error from building the experiment of the spec at `path` (with `overrides`): a
/// [`KeyError`] becomes a [`SpecError`] located at its key (in the file, or naming the
/// `--set` that gave it); any other error is returned as it is.
pub fn locate_build_error(
    err: anyhow::Error,
    path: &Path,
    overrides: &[Override],
) -> anyhow::Error {
    let Some(KeyError { key, message }) = err.downcast_ref::<KeyError>().cloned() else {
        return err;
    };
    let given = |o: &&Override| key == o.key || key.starts_with(&format!("{}.", o.key));
    if let Some(o) = overrides.iter().rev().find(given) {
        let origin = match o.from_sweep {
            true => format!("{} ([sweep] value {o})", path.display()),
            false => format!("--set {o}"),
        };
        return SpecError {
            origin,
            position: None,
            key: Some(key),
            message,
        }
        .into();
    }
    let source = std::fs::read_to_string(path).unwrap_or_default();
    SpecError::at_key(path, &source, &key, message).into()
}

/// The text of the spec file at `path`: an unreadable file, or one that is not UTF-8
/// (located at its first bad byte), is a [`SpecError`].
pub fn read_source(path: &Path) -> Result<String, SpecError> {
    let bytes =
        std::fs::read(path).map_err(|e| SpecError::io(path, format!("cannot read spec: {e}")))?;
    String::from_utf8(bytes).map_err(|e| SpecError::not_utf8(path, e.as_bytes(), &e.utf8_error()))
}

/// The data directory: `--data-dir`, else `PISA_DATA_DIR`, else `./data`.
pub fn data_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("PISA_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spec under `experiments/` (those `Spec` reads: not MixML's mixing specs).
    fn experiment_specs() -> Vec<(PathBuf, String)> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "toml") {
                    out.push(path);
                }
            }
        }
        let mut files = vec![];
        walk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments"),
            &mut files,
        );
        files
            .into_iter()
            .map(|f| {
                let text = std::fs::read_to_string(&f).unwrap();
                (f, text)
            })
            .filter(|(_, text)| !text.contains("[protocol"))
            .collect()
    }

    /// A run's `spec.toml` is read back by resume and by sweeps: the resolved spec of every
    /// experiment parses, and resolves to itself.
    #[test]
    fn every_experiments_resolved_spec_reads_back() {
        let specs = experiment_specs();
        assert!(specs.len() > 50, "found {} specs", specs.len());
        for (file, text) in specs {
            let spec = Spec::parse(&text, &file).unwrap_or_else(|e| panic!("{e}"));
            let resolved = spec.resolved();
            let again = Spec::parse(&resolved.to_toml(), &file)
                .unwrap_or_else(|e| panic!("{}: its resolved spec: {e}", file.display()));
            assert_eq!(again.resolved(), resolved, "{}", file.display());
        }
    }

    /// GAN runs of earlier versions recorded `augment = "none"`; they still read, as the
    /// same experiment.
    #[test]
    fn a_gan_spec_with_the_old_augment_record_reads_as_the_same() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("experiments/table4/reduced/wgan_gp-sisa.toml");
        let text = std::fs::read_to_string(&file).unwrap();
        let spec = Spec::parse(&text, &file).unwrap();
        let old = text.replace("[data]\n", "[data]\naugment = \"none\"\n");
        let old = Spec::parse(&old, &file).unwrap();
        assert_eq!(old.resolved(), spec.resolved());
        let flip = text.replace("[data]\n", "[data]\naugment = \"crop-flip\"\n");
        assert_eq!(
            Spec::parse(&flip, &file).unwrap_err().key.as_deref(),
            Some("data.augment")
        );
    }
}
