//! `summary.json`: how a run ended and its final figures.
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Completed,
    /// A loss or step became NaN or infinite.
    Diverged,
    /// An error stopped the run.
    Failed,
    /// SIGINT or SIGTERM stopped it after a whole iteration, with a checkpoint:
    /// `pisa run --resume` (or the sweep, run again) continues it.
    Interrupted,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Completed => "completed",
            Status::Diverged => "diverged",
            Status::Failed => "failed",
            Status::Interrupted => "interrupted",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub name: String,
    pub run_id: String,
    pub status: Status,
    /// Why the run did not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The sweep point (dotted key → value) of this run; empty outside sweeps.
    #[serde(default)]
    pub point: BTreeMap<String, serde_json::Value>,
    /// Iterations done.
    pub iterations: usize,
    /// The last metrics row; non-finite values are written as "NaN", "inf", "-inf".
    #[serde(with = "non_finite")]
    pub last: BTreeMap<String, f64>,
    pub wall_s: f64,
    /// Seconds since the Unix epoch.
    pub started_unix: u64,
    /// k0 in force (after rule (A.1) for "auto"), for the ADMM family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k0: Option<usize>,
    /// Values of optimizer state held, excluding the parameters.
    pub state_numel: i64,
    pub device: String,
    pub pisa_version: String,
    /// Where the numbers were made: the same binary, machine and thread count give
    /// bit-identical CPU metrics. Absent from summaries of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// The build and machine a run was made with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// libtorch's intra-op threads.
    pub threads: usize,
    pub libtorch_version: String,
    /// pisa's git commit at build time ("unknown" outside a git checkout).
    pub git_commit: String,
    /// The CPU model (`/proc/cpuinfo`), and the GPU's on CUDA.
    pub cpu: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
}

impl Provenance {
    /// This process, running on `device`.
    pub fn current(device: tch::Device) -> Self {
        Self {
            threads: tch::get_num_threads().max(1) as usize,
            libtorch_version: env!("PISA_LIBTORCH_VERSION").to_string(),
            git_commit: env!("PISA_GIT_COMMIT").to_string(),
            cpu: cpu_model(),
            gpu: match device {
                tch::Device::Cuda(n) => Some(gpu_model(n)),
                _ => None,
            },
        }
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, m)| m.trim().to_string())
            })
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The NVIDIA driver's name of GPU `index` (its `/proc` entries, in bus order).
fn gpu_model(index: usize) -> String {
    let mut gpus: Vec<_> = std::fs::read_dir("/proc/driver/nvidia/gpus")
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    gpus.sort();
    gpus.get(index)
        .and_then(|g| std::fs::read_to_string(g.join("information")).ok())
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("Model:").map(|m| m.trim().to_string()))
        })
        .unwrap_or_else(|| format!("CUDA device {index}"))
}

impl Summary {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a pisa summary", path.display()))
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        super::write_atomic(path, text.as_bytes())
    }
}

/// JSON has no NaN or infinity: such values travel as the strings "NaN", "inf", "-inf".
mod non_finite {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Value {
        Number(f64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(map: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
        let values: BTreeMap<&String, Value> = map
            .iter()
            .map(|(k, &v)| {
                let v = match v {
                    v if v.is_finite() => Value::Number(v),
                    v if v.is_nan() => Value::Text("NaN".into()),
                    v if v > 0.0 => Value::Text("inf".into()),
                    _ => Value::Text("-inf".into()),
                };
                (k, v)
            })
            .collect();
        values.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
        let values = BTreeMap::<String, Value>::deserialize(d)?;
        values
            .into_iter()
            .map(|(k, v)| match v {
                Value::Number(x) => Ok((k, x)),
                Value::Text(t) => t
                    .parse::<f64>()
                    .map(|x| (k, x))
                    .map_err(|_| serde::de::Error::custom(format!("not a number: {t:?}"))),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_metrics_round_trip() {
        let summary = Summary {
            name: "x".into(),
            run_id: "r".into(),
            status: Status::Diverged,
            error: Some("objective is inf".into()),
            point: BTreeMap::new(),
            iterations: 3,
            last: [
                ("a", f64::NAN),
                ("b", f64::INFINITY),
                ("c", f64::NEG_INFINITY),
                ("d", 1.5),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            wall_s: 0.1,
            started_unix: 0,
            k0: None,
            state_numel: 0,
            device: "cpu".into(),
            pisa_version: "0".into(),
            provenance: Some(Provenance::current(tch::Device::Cpu)),
        };
        let text = serde_json::to_string(&summary).unwrap();
        let back: Summary = serde_json::from_str(&text).unwrap();
        assert!(back.last["a"].is_nan());
        assert_eq!(back.last["b"], f64::INFINITY);
        assert_eq!(back.last["c"], f64::NEG_INFINITY);
        assert_eq!(back.last["d"], 1.5);
        assert_eq!(back.provenance, summary.provenance);
    }
}
