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
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Completed => "completed",
            Status::Diverged => "diverged",
            Status::Failed => "failed",
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
    /// The last metrics row.
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
