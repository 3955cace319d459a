//! The task a spec's `[data]` and `[model]` describe (starting from `train.init` if given),
//! built and checked before any write.
use super::classification::{Classification, Config, Examples, Folders};
use super::gpt::{self, GptLm};
use super::language_model::{self, LanguageModel};
use super::least_squares::LeastSquares;
use super::Task;
use crate::data::image_folder::{ImageFolder, Transform as FolderTransform};
use crate::data::partition::{self, Partition};
use crate::data::transform::Normalise;
use crate::data::{self, cifar, idx, least_squares::Problem, libsvm, ptb, shards, synthetic};
use crate::models::precision::Precision;
use crate::models::{awd_lstm, catalog, fed_lamb, simple_cnn::SimpleCnn, Mlp};
use crate::spec::{Autocast, DataKind, KeyError, ModelKind, Spec, TokenOrder};
use anyhow::{bail, ensure, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::sync::Arc;
use tch::{nn, Device, Tensor};

/// Where a run records its clients' datasets.
pub const PARTITION_FILE: &str = "partition.json";

/// A task and the files that describe how it was made (written beside the run's results).
pub struct Built {
    pub task: Box<dyn Task>,
    pub artifacts: Vec<(&'static str, Vec<u8>)>,
}

/// Builds the task of the resolved `spec` from its data at `data` (found by
/// [`locate_data`]; `train.init` is looked up in `data_dir`).
pub fn build(spec: &Spec, data_dir: &Path, data: Option<&Path>, device: Device) -> Result<Built> {
    let kind = spec.train.dtype.kind();
    let t = &spec.train;
    let mut artifacts = vec![];
    let mut task: Box<dyn Task> = match spec.data.kind {
        _ if spec.gan_model().is_some() => Box::new(super::gan_from_spec::build(
            spec,
            data_dir,
            data.expect("validated: a path"),
            device,
        )?),
        DataKind::LeastSquares => {
            let problem = match (&spec.data.path, spec.data.samples, spec.data.dim) {
                (Some(_), _, _) => Problem::read_npz(data.expect("validated: a path"))?,
                (None, Some(n), Some(d)) => Problem::generate(
                    n,
                    d,
                    t.workers,
                    spec.data
                        .noise
                        .unwrap_or(data::least_squares::DEFAULT_NOISE),
                    spec.seed,
                ),
                _ => unreachable!("validated: path or samples and dim"),
            };
            // μ of (2.2) enters the reported objective; baselines have none.
            let mu = spec.optimizer.hypers.get("mu").and_then(|v| v.as_float());
            Box::new(LeastSquares::new(
                problem,
                t.workers,
                t.batch_size,
                mu.unwrap_or(0.0),
                spec.seed,
                kind,
                device,
            )?)
        }
        DataKind::Ptb => Box::new(language_model(
            spec,
            data.expect("validated: a path"),
            device,
        )?),
        DataKind::Tokens => Box::new(gpt_language_model(
            spec,
            data.expect("validated: a path"),
            device,
        )?),
        DataKind::Environment => Box::new(super::reinforcement::Reinforcement::from_spec(
            spec, device,
        )?),
        DataKind::Recipes => {
            let (task, files) =
                super::recipes_from_spec::build(spec, data.expect("validated: a path"), device)?;
            artifacts.extend(files);
            Box::new(task)
        }
        _ => {
            let (train, test, normalise, folders) = classification_data(spec, data)?;
            let train = match spec.data.train_subset {
                Some(size) => subset(train, size, spec.seed)
                    .map_err(|e| KeyError::at("data.train_subset", format!("{e:#}")))?,
                None => train,
            };
            let classes = 1 + train
                .y
                .max()
                .int64_value(&[])
                .max(test.y.max().int64_value(&[]));
            let clients = match &spec.data.partition {
                Some(scheme) => {
                    let labels = partition::labels_of(&train.y)?;
                    let p = Partition::new(&labels, classes as usize, t.workers, scheme, spec.seed)
                        .map_err(|e| KeyError::at("data.partition", format!("{e:#}")))?;
                    let record = p.record(&labels, classes as usize, scheme, spec.seed);
                    artifacts.push((PARTITION_FILE, serde_json::to_vec_pretty(&record)?));
                    Some(p.clients)
                }
                None => None,
            };
            let model = spec
                .model
                .as_ref()
                .expect("validated: classification has a model");
            let shape = match &folders {
                // Indices into the image files: the models see their training crops.
                Some(_) => {
                    let side = i64::from(FolderTransform::IMAGENET_TRAIN.size());
                    vec![train.len(), 3, side, side]
                }
                None => train.x.size(),
            };
            let input: i64 = shape[1..].iter().product();
            // A model that does not fit the data is the spec's `model.kind` to blame.
            let fits = |e: anyhow::Error| KeyError::at("model.kind", format!("{e:#}"));
            let network: Box<dyn Fn(&nn::Path) -> nn::SequentialT> = match model.kind {
                ModelKind::Mlp => {
                    let activation = model.activation.parse().expect("validated activation");
                    let mlp = Mlp::new(input, &model.hidden, classes, activation)
                        .with_dropout(model.dropout.unwrap_or(0.0));
                    Box::new(move |p| mlp.build(p))
                }
                ModelKind::SimpleCnn => {
                    let (c, h, w) = image_shape(&shape).map_err(fits)?;
                    let cnn = SimpleCnn::new(c, h, w, classes).map_err(fits)?;
                    Box::new(move |p| cnn.build(p))
                }
                ModelKind::FedLambCnn => {
                    let (c, h, w) = image_shape(&shape).map_err(fits)?;
                    if (c, h, w) != (1, 28, 28) || classes != 10 {
                        return Err(KeyError::at(
                            "model.kind",
                            format!(
                                "fed_lamb_cnn is for 1×28×28 images of 10 classes, not \
                                 {c}×{h}×{w} of {classes}"
                            ),
                        ));
                    }
                    let cnn = fed_lamb::MnistCnn::new();
                    Box::new(move |p| cnn.build(p))
                }
                kind => {
                    let name = kind.catalog_name().expect("the others are matched above");
                    let (c, h, w) = image_shape(&shape).map_err(fits)?;
                    // Checks the name and the image shape before anything is built.
                    catalog::parameter_count(name, [c, h, w], classes).map_err(fits)?;
                    Box::new(move |p| {
                        catalog::build(name, p, [c, h, w], classes).expect("checked above")
                    })
                }
            };
            let precision = Precision::new(t.autocast.map(Autocast::kind), t.channels_last)?;
            let mut config = Config::new(t.workers, t.batch_size, spec.seed, kind, device)
                .with_inputs(normalise, spec.data.augment().transform())
                .with_passes(t.micro_batch, precision);
            if let Some(folders) = folders {
                config = config.with_folders(folders);
            }
            Box::new(Classification::with_clients(
                train,
                test,
                |p| network(p),
                config,
                clients.as_deref(),
            )?)
        }
    };
    if let Some(init) = &t.init {
        super::init::load(task.as_mut(), &super::init::locate(init, data_dir)?)?;
    }
    Ok(Built { task, artifacts })
}

/// Where the spec's data file or folder is, found but not read (`None` for generated
/// data): checked before anything else, so a missing dataset is what a run reports first,
/// with how to get it.
pub fn locate_data(spec: &Spec, data_dir: &Path) -> Result<Option<std::path::PathBuf>> {
    let Some(path) = &spec.data.path else {
        return Ok(None);
    };
    let idx_files =
        |source: idx::Source| format!("the {} IDX files. {}", source.name(), source.how_to_get());
    let folder = |what: &str| data::locate_dir(path, data_dir, what).map(Some);
    match spec.data.kind {
        DataKind::LeastSquares => data::locate(
            path,
            data_dir,
            "an .npz file with arrays A (N x d) and b (N)",
        )
        .map(Some),
        DataKind::Cifar10 => folder(&format!(
            "the CIFAR-10 binary files ({}/ with {} … {} and {}). {}",
            cifar::FOLDER,
            cifar::TRAIN_FILES[0],
            cifar::TRAIN_FILES[cifar::TRAIN_FILES.len() - 1],
            cifar::TEST_FILE,
            cifar::HOW_TO_GET
        )),
        DataKind::ImageFolder => {
            folder("an ImageNet-style root with train/<class>/*.JPEG and val/<class>/* folders")
        }
        DataKind::Adult => folder("the LIBSVM files a9a and a9a.t"),
        DataKind::Mnist => folder(&idx_files(idx::Source::Mnist)),
        DataKind::FashionMnist => folder(&idx_files(idx::Source::FashionMnist)),
        DataKind::SyntheticImages | DataKind::Environment => Ok(None),
        DataKind::Ptb => folder(&format!(
            "train.txt, valid.txt, test.txt (or ptb.*.txt): {}",
            ptb::HOW_TO_GET
        )),
        DataKind::Tokens => folder(shards::HOW_TO_GET),
        DataKind::Recipes => data::locate(path, data_dir, data::recipes::HOW_TO_GET).map(Some),
    }
}

/// The GPT of a `tokens` spec on the shards in `dir`.
fn gpt_language_model(spec: &Spec, dir: &Path, device: Device) -> Result<GptLm> {
    let (d, t) = (&spec.data, &spec.train);
    let model = spec
        .model
        .as_ref()
        .expect("validated: tokens data has a model")
        .gpt_config()
        .expect("validated");
    let config = gpt::Config {
        workers: t.workers,
        batch: t.batch_size as i64,
        micro_batch: t.micro_batch as i64,
        eval_batch: t.eval_batch_size.unwrap_or(t.batch_size) as i64,
        val_tokens: d.val_tokens.unwrap_or(crate::spec::VAL_TOKENS),
        order: d.order.unwrap_or(TokenOrder::Sequential),
        seed: spec.seed,
        kind: t.dtype.kind(),
        device,
        precision: Precision::new(t.autocast.map(Autocast::kind), false)?,
        split_embedding: spec.players().len() == 2,
    };
    let (train, val) = shards::split(dir)?;
    GptLm::new(train, &val, &model, config)
}

/// The AWD-LSTM language model of a `ptb` spec on the corpus in `dir`.
fn language_model(spec: &Spec, dir: &Path, device: Device) -> Result<LanguageModel> {
    let name = spec.optimizer.name.as_str();
    if crate::optim::federated::ENTRIES
        .iter()
        .any(|e| e.name == name)
    {
        return Err(KeyError::at(
            "optimizer.name",
            format!(
                "{name} takes several local steps per round, but a language model's workers \
                 are consecutive pieces of one BPTT chunk sharing the hidden state: use a \
                 classic optimizer or the ADMM family"
            ),
        ));
    }
    let corpus = ptb::load(dir, spec.data.valid_fraction)?;
    let (t, m) = (
        spec.train.resolved_language(),
        spec.model
            .as_ref()
            .expect("validated: ptb has a model")
            .resolved(),
    );
    let model = awd_lstm::Config {
        vocab: corpus.words.len() as i64,
        emsize: m.emsize.expect("resolved"),
        nhid: m.nhid.expect("resolved"),
        nlayers: m.layers.expect("resolved"),
    };
    let config = language_model::Config {
        workers: t.workers,
        batch: t.batch_size as i64,
        bptt: t.bptt.expect("resolved"),
        eval_batch: t.eval_batch_size.expect("resolved") as i64,
        test_batch: t.test_batch_size.expect("resolved") as i64,
        dropouts: awd_lstm::Dropouts {
            output: m.dropout.expect("resolved"),
            hidden: m.dropouth.expect("resolved"),
            input: m.dropouti.expect("resolved"),
            embedding: m.dropoute.expect("resolved"),
            weight: m.wdrop.expect("resolved"),
        },
        weight_hh: if m.train_weight_hh.expect("resolved") {
            awd_lstm::WeightHh::Trained
        } else {
            awd_lstm::WeightHh::Frozen
        },
        ar: m.ar.expect("resolved"),
        tar: m.tar.expect("resolved"),
        seed: spec.seed,
        kind: t.dtype.kind(),
        device,
    };
    let splits = language_model::Splits {
        vocabulary: model.vocab,
        train: corpus.train,
        valid: corpus.valid,
        test: corpus.test,
    };
    LanguageModel::new(splits, &model, config)
}

/// (channels, height, width) of image samples [N, H, W] or [N, C, H, W].
fn image_shape(shape: &[i64]) -> Result<(i64, i64, i64)> {
    match shape {
        [_, h, w] => Ok((1, *h, *w)),
        [_, c, h, w] => Ok((*c, *h, *w)),
        _ => bail!(
            "a CNN needs image data, not samples of shape {:?}",
            &shape[1..]
        ),
    }
}

/// The (train, test) examples of a classification spec, how to normalise them, and the
/// image folders their `x` indexes (ImageNet).
fn classification_data(
    spec: &Spec,
    data: Option<&Path>,
) -> Result<(Examples, Examples, Normalise, Option<Folders>)> {
    let kind = spec.train.dtype.kind();
    let located = || data.expect("validated: a path");
    let images = |s: &idx::Split| Examples::images(&s.images, &s.labels);
    let (train, test) = match spec.data.kind {
        DataKind::SyntheticImages => {
            let d = &spec.data;
            let n = d.samples.expect("validated") as i64;
            let image = d.image.expect("validated");
            let classes = d.classes.expect("validated");
            let (train, test) = synthetic::images(image, classes, n, (n / 5).max(1), spec.seed);
            let normalise = Normalise::of(&train.images, kind);
            return Ok((images(&train), images(&test), normalise, None));
        }
        DataKind::Cifar10 => {
            let dir = located();
            let dataset = cifar::load(dir)?;
            ensure!(
                spec.data.test_fraction.is_none(),
                "data.test_fraction: CIFAR-10 has its own test file"
            );
            return Ok((
                images(&dataset.train),
                images(&dataset.test),
                Normalise::published("cifar10")?,
                None,
            ));
        }
        DataKind::ImageFolder => {
            let dir = located();
            let open = |split: &str| -> Result<Arc<ImageFolder>> {
                Ok(Arc::new(ImageFolder::open(&dir.join(split))?))
            };
            let folders = Folders {
                train: open("train")?,
                test: open("val")?,
            };
            ensure!(
                folders.train.classes() == folders.test.classes(),
                "{}: train/ and val/ hold different class folders",
                dir.display()
            );
            let indexed = |f: &ImageFolder| Examples {
                x: Tensor::arange(f.len() as i64, (tch::Kind::Int64, Device::Cpu)),
                y: f.labels_tensor(),
            };
            return Ok((
                indexed(&folders.train),
                indexed(&folders.test),
                Normalise::published("imagenet")?,
                Some(folders),
            ));
        }
        DataKind::Adult => {
            let dir = located();
            let adult = libsvm::load_adult(dir, kind)?;
            let test = adult.test.context("Adult needs its test file a9a.t")?;
            ensure!(
                spec.data.test_fraction.is_none(),
                "data.test_fraction: Adult has its own test file a9a.t"
            );
            let examples = |s: libsvm::Split| Examples { x: s.x, y: s.y };
            (examples(adult.train), examples(test))
        }
        _ => {
            let source = match spec.data.kind {
                DataKind::Mnist => idx::Source::Mnist,
                _ => idx::Source::FashionMnist,
            };
            let dir = located();
            let dataset = idx::load(dir, source)?;
            match (dataset.train, spec.data.test_fraction) {
                (Some(train), None) => (images(&train), images(&dataset.test)),
                (None, Some(fraction)) => holdout(images(&dataset.test), fraction, spec.seed),
                (Some(_), Some(_)) => bail!(
                    "data.test_fraction is for folders without training files, but {} has them",
                    dir.display()
                ),
                (None, None) => bail!(
                    "{} holds only the test files of {}: set data.test_fraction (e.g. 0.2) to \
                     train on the rest of them, or add the training files. {}",
                    dir.display(),
                    source.name(),
                    source.how_to_get()
                ),
            }
        }
    };
    // The mean and standard deviation of the training values, one scalar each (the
    // usual 0.1307 / 0.3081 of MNIST; Adult's 0/1 features alike).
    let normalise = Normalise::of(&train.x, kind);
    Ok((train, test, normalise, None))
}

/// Splits `examples` into (train, test) with a seeded shuffle; `fraction` of them test.
fn holdout(examples: Examples, fraction: f64, seed: u64) -> (Examples, Examples) {
    let n = examples.len();
    let test = ((n as f64 * fraction).round() as i64).clamp(1, n - 1) as usize;
    let order = shuffled(n, seed ^ 0x401d_0ff5);
    (
        pick(&examples, &order[test..]),
        pick(&examples, &order[..test]),
    )
}

/// `data.train_subset`: `size` of the training examples, drawn by a seeded shuffle.
fn subset(examples: Examples, size: usize, seed: u64) -> Result<Examples> {
    let n = examples.len();
    ensure!(
        size >= 1 && size as i64 <= n,
        "train_subset = {size}, but the training split has {n} examples"
    );
    Ok(pick(&examples, &shuffled(n, seed ^ 0x5b5e_7000)[..size]))
}

/// 0..n in a ChaCha8 shuffle seeded by `seed`.
fn shuffled(n: i64, seed: u64) -> Vec<i64> {
    let mut order: Vec<i64> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    order
}

/// The examples at `ids`, in that order.
fn pick(examples: &Examples, ids: &[i64]) -> Examples {
    let ids = Tensor::from_slice(ids).to_device(examples.x.device());
    Examples {
        x: examples.x.index_select(0, &ids),
        y: examples
            .y
            .index_select(0, &ids.to_device(examples.y.device())),
    }
}
