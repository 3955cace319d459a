//! `[train]`: workers, batches, length (iterations or epochs), evaluation and checkpoint
//! cadence, numeric type, device, and how a forward pass runs (micro-batches, autocast,
//! channels last).
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

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

    /// The smallest and largest magnitudes of its normal numbers.
    pub fn normal_range(self) -> (f64, f64) {
        match self {
            Dtype::F32 => (f32::MIN_POSITIVE as f64, f32::MAX as f64),
            Dtype::F64 => (f64::MIN_POSITIVE, f64::MAX),
        }
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        })
    }
}

/// A cadence: every so many iterations (0 = never), or once per epoch (`"epoch"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    Iterations(usize),
    Epoch,
}

impl Every {
    /// Whether the cadence falls right after `iteration` iterations (never for 0).
    pub fn due(self, iteration: usize, clock: &crate::schedule::Clock) -> bool {
        match self {
            Every::Iterations(k) => k > 0 && iteration.is_multiple_of(k),
            Every::Epoch => clock.is_epoch_end(iteration),
        }
    }
}

impl Serialize for Every {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Every::Iterations(k) => s.serialize_u64(*k as u64),
            Every::Epoch => s.serialize_str("epoch"),
        }
    }
}

impl<'de> Deserialize<'de> for Every {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Every;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number of iterations or \"epoch\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Every, E> {
                usize::try_from(v)
                    .map(Every::Iterations)
                    .map_err(|_| E::custom(format!("expected iterations >= 0, not {v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Every, E> {
                Ok(Every::Iterations(v as usize))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Every, E> {
                match v {
                    "epoch" => Ok(Every::Epoch),
                    _ => Err(E::custom(format!(
                        "expected a number of iterations or \"epoch\", not {v:?}"
                    ))),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// The longest run, in iterations: counters (and ℓ in the σ and learning-rate schedules)
/// stay exact in an i64 checkpoint field and in an f64 metrics column.
pub const MAX_ITERATIONS: usize = 1 << 52;

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
    /// The run's length in iterations ℓ, or
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<usize>,
    /// in epochs of n iterations (n = the task's passes of the workers' batches over D_i;
    /// E and n of Table 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    /// Evaluate (write a metrics row) every this many iterations, or `"epoch"`; the last
    /// iteration is always written.
    #[serde(default = "every_iteration")]
    pub eval_every: Every,
    /// Write `checkpoint.safetensors` every this many iterations (0 = never) or `"epoch"`,
    /// and at the end. `pisa run --resume` continues an interrupted run from it.
    #[serde(default = "never")]
    pub checkpoint_every: Every,
    #[serde(default = "default_dtype")]
    pub dtype: Dtype,
    /// "cpu", "cuda" or "cuda:N".
    #[serde(default = "default_device")]
    pub device: String,
    /// Examples per forward and backward pass: a worker's batch B_i is processed in chunks
    /// of this many and their gradients summed into the batch mean (gradient
    /// accumulation, for batches larger than the device holds); 0 = the whole batch.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub micro_batch: usize,
    /// Forward passes under autocast to "bf16" or "f16" (parameters, gradients and the
    /// optimizer stay `dtype` = f32); absent = plain `dtype`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autocast: Option<Autocast>,
    /// Image batches in channels-last (NHWC) memory order.
    #[serde(default, skip_serializing_if = "is_false")]
    pub channels_last: bool,
    /// libtorch's intra-op threads (`--threads` overrides it); absent = one per core for
    /// `pisa run`, one per run for `pisa sweep --jobs` > 1. CPU results are bit-identical
    /// only for the same thread count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<usize>,
    /// Language models: the BPTT length (default 70), and the parallel streams of the
    /// validation (10) and test (1) splits, the suite's values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bptt: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_batch_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_batch_size: Option<usize>,
    /// Rescale each worker's gradient to at most this Euclidean norm before the optimizer
    /// sees it (torch's `clip_grad_norm_`; the AWD-LSTM suite's `--clip`); absent = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_norm: Option<f64>,
    /// Start from these weights instead of the seeded initialisation: a safetensors file
    /// whose tensors are the model's PyTorch `state_dict` (parameters and batch-norm
    /// running statistics, named as `pisa init` writes them; least squares: one tensor
    /// `w`), in `dtype`. Every tensor must be there with the model's shape, and no other
    /// (PyTorch's `num_batches_tracked` counters are skipped). A relative path is looked
    /// up in the data directory, like `data.path`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<std::path::PathBuf>,
}

/// The arithmetic kind of an autocast forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Autocast {
    Bf16,
    F16,
}

impl Autocast {
    pub fn kind(self) -> tch::Kind {
        match self {
            Autocast::Bf16 => tch::Kind::BFloat16,
            Autocast::F16 => tch::Kind::Half,
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
fn is_false(b: &bool) -> bool {
    !*b
}

fn one() -> usize {
    1
}
fn every_iteration() -> Every {
    Every::Iterations(1)
}
fn never() -> Every {
    Every::Iterations(0)
}
fn default_dtype() -> Dtype {
    Dtype::F64
}
fn default_device() -> String {
    "cpu".to_string()
}

impl TrainSpec {
    /// The forward passes of a batch of `unit` (sequences, recipes): micro_batch at most a
    /// worker's batch, a positive eval_batch_size.
    pub(super) fn check_passes(&self, unit: &str) -> Result<(), (String, String)> {
        if self.micro_batch > self.batch_size && self.batch_size > 0 {
            return Err((
                "train.micro_batch".into(),
                format!(
                    "micro_batch {} exceeds the {} {unit} of a worker's batch",
                    self.micro_batch, self.batch_size
                ),
            ));
        }
        if self.eval_batch_size == Some(0) {
            return Err((
                "train.eval_batch_size".into(),
                "eval_batch_size must be at least 1".into(),
            ));
        }
        Ok(())
    }

    pub fn device(&self) -> anyhow::Result<tch::Device> {
        parse_device(&self.device)
    }

    /// The run's length in iterations on `clock`; an error at `train.epochs` when E
    /// epochs do not fit in a counter.
    pub fn length(&self, clock: &crate::schedule::Clock) -> anyhow::Result<usize> {
        match (self.iterations, self.epochs) {
            (Some(iterations), _) => Ok(iterations),
            (None, Some(epochs)) => clock
                .end_of(epochs)
                .filter(|&n| n <= MAX_ITERATIONS)
                .ok_or_else(|| {
                    super::KeyError::at(
                        "train.epochs",
                        format!(
                            "{epochs} epochs of {} iterations exceed the {MAX_ITERATIONS} \
                             iterations a run may have",
                            clock.per_epoch()
                        ),
                    )
                }),
            (None, None) => unreachable!("validated: iterations or epochs"),
        }
    }

    /// The language-model keys with the suite's defaults written out.
    pub fn resolved_language(&self) -> Self {
        let mut t = self.clone();
        t.bptt = Some(t.bptt.unwrap_or(70));
        t.eval_batch_size = Some(t.eval_batch_size.unwrap_or(10));
        t.test_batch_size = Some(t.test_batch_size.unwrap_or(1));
        t
    }

    /// Checks what serde cannot; on failure the dotted key and a message.
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, msg: &str| Err((format!("train{key}"), msg.to_string()));
        if self.workers == 0 {
            return bad(".workers", "workers must be at least 1");
        }
        match (self.iterations, self.epochs) {
            (Some(_), Some(_)) => return bad(".epochs", "give iterations or epochs, not both"),
            (None, None) => {
                return bad(
                    "",
                    "[train] needs the run's length: iterations = N or epochs = E",
                )
            }
            (Some(0), _) => return bad(".iterations", "iterations must be at least 1"),
            (_, Some(0)) => return bad(".epochs", "epochs must be at least 1"),
            _ => {}
        }
        if self.iterations.is_some_and(|n| n > MAX_ITERATIONS) {
            return bad(
                ".iterations",
                &format!("a run may have at most {MAX_ITERATIONS} iterations"),
            );
        }
        if self.clip_norm.is_some_and(|c| !(c > 0.0 && c.is_finite())) {
            return bad(".clip_norm", "clip_norm must be a positive number");
        }
        if self.threads == Some(0) {
            return bad(".threads", "threads must be at least 1");
        }
        if self.eval_every == Every::Iterations(0) {
            return bad(
                ".eval_every",
                "eval_every must be at least 1 (or \"epoch\")",
            );
        }
        if let Err(e) = self.device() {
            return bad(".device", &e.to_string());
        }
        if self.autocast.is_some() && self.dtype != Dtype::F32 {
            return bad(
                ".autocast",
                "autocast keeps f32 parameters: set train.dtype = \"f32\"",
            );
        }
        Ok(())
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
