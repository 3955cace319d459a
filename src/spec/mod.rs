//! Experiment specs: serde structs, strict parsing with file:line:column errors,
//! `--set` overrides and the resolved spec written beside every run.
mod error;
mod locate;
mod model;
mod optimizer;
mod overrides;
mod plot;

pub use error::SpecError;
pub use model::{ModelKind, ModelSpec};
pub use optimizer::OptimizerSpec;
pub use overrides::Override;
pub use plot::{Legend, PlotSpec};

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
    pub train: TrainSpec,
    pub optimizer: OptimizerSpec,
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
}

impl DataKind {
    pub fn is_classification(self) -> bool {
        !matches!(self, DataKind::LeastSquares)
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
    /// Generated problem: standard deviation of the noise added to b.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<f64>,
    /// Image datasets whose folder holds only the test files (the shared MNIST split):
    /// hold out this fraction of them, seeded, as the test set and train on the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_fraction: Option<f64>,
    /// Each worker's (client's) D_i drawn by this scheme instead of an equal random cut:
    /// `{ kind = "label-skew", labels = 2 }`, `{ kind = "dirichlet", beta = 0.5 }`,
    /// `{ kind = "quantity-skew", beta = 0.5 }` or `{ kind = "iid" }`. Saved to the run's
    /// `partition.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<crate::data::partition::Scheme>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    pub fn kind(self) -> tch::Kind {
        match self {
            Dtype::F32 => tch::Kind::Float,
            Dtype::F64 => tch::Kind::Double,
        }
    }
}

/// `[train]`: workers, batches, length, numeric type and device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// m: the data is split into m workers' blocks D_i (2.1).
    #[serde(default = "one")]
    pub workers: usize,
    /// |B_i|; 0 = full batch, B_i = D_i.
    #[serde(default)]
    pub batch_size: usize,
    pub iterations: usize,
    /// Evaluate (write a metrics row) every this many iterations; the last is always written.
    #[serde(default = "one")]
    pub eval_every: usize,
    /// Write `checkpoint.safetensors` every this many iterations and at the end; 0 = never.
    /// `pisa run --resume` continues an interrupted run from its last checkpoint.
    #[serde(default)]
    pub checkpoint_every: usize,
    #[serde(default = "default_dtype")]
    pub dtype: Dtype,
    /// "cpu", "cuda" or "cuda:N".
    #[serde(default = "default_device")]
    pub device: String,
}

fn one() -> usize {
    1
}
fn default_dtype() -> Dtype {
    Dtype::F64
}
fn default_device() -> String {
    "cpu".to_string()
}

impl TrainSpec {
    pub fn device(&self) -> anyhow::Result<tch::Device> {
        parse_device(&self.device)
    }
}

/// Parses "cpu", "cuda" or "cuda:N".
pub fn parse_device(s: &str) -> anyhow::Result<tch::Device> {
    match s {
        "cpu" => Ok(tch::Device::Cpu),
        "cuda" => Ok(tch::Device::Cuda(0)),
        _ => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(tch::Device::Cuda)
            .ok_or_else(|| {
                anyhow::anyhow!("device must be \"cpu\", \"cuda\" or \"cuda:N\", not {s:?}")
            }),
    }
}

impl Spec {
    /// Reads, applies `overrides` and validates a spec file. Every failure is a
    /// [`SpecError`] naming the file (or the `--set` argument), line, column and key.
    pub fn load(path: &Path, overrides: &[Override]) -> Result<Spec, SpecError> {
        let source = std::fs::read_to_string(path)
            .map_err(|e| SpecError::io(path, format!("cannot read spec: {e}")))?;
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
        if t.workers == 0 {
            return bad("train.workers", "workers must be at least 1".into());
        }
        if t.iterations == 0 {
            return bad("train.iterations", "iterations must be at least 1".into());
        }
        if t.eval_every == 0 {
            return bad("train.eval_every", "eval_every must be at least 1".into());
        }
        if let Err(e) = t.device() {
            return bad("train.device", e.to_string());
        }
        self.validate_data()?;
        self.optimizer.validate("optimizer")?;
        if let Some(schedule) = &self.schedule {
            schedule.validate(t.iterations)?;
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

    fn validate_data(&self) -> Result<(), (String, String)> {
        let d = &self.data;
        let bad = |key: &str, msg: &str| Err((key.to_string(), msg.to_string()));
        if d.kind.is_classification() {
            return self.validate_images();
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
        if d.partition.is_some() {
            return bad(
                "data.partition",
                "partition applies to classification data only",
            );
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
        if d.path.is_none() {
            return bad(
                "data.path",
                "classification data needs path = the folder of its files".into(),
            );
        }
        for (key, given) in [
            ("data.samples", d.samples.is_some()),
            ("data.dim", d.dim.is_some()),
            ("data.noise", d.noise.is_some()),
        ] {
            if given {
                return bad(key, format!("{key} applies to least_squares only"));
            }
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

    /// The spec with every default written out, as saved to `spec.toml`.
    pub fn resolved(&self) -> Spec {
        let mut s = self.clone();
        if s.data.kind == DataKind::LeastSquares && s.data.path.is_none() && s.data.noise.is_none()
        {
            s.data.noise = Some(crate::data::least_squares::DEFAULT_NOISE);
        }
        s.optimizer = s.optimizer.resolved();
        s.schedule = s.schedule.as_ref().map(|x| x.resolved());
        s
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a Spec always serializes")
    }
}

/// Names that become folders (spec `name`, run ids) must be one plain path component.
pub fn check_folder_name(name: &str) -> Result<(), String> {
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

/// The data directory: `--data-dir`, else `PISA_DATA_DIR`, else `./data`.
pub fn data_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("PISA_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"))
}
