//! Reading the runs of a results folder: one subfolder per run, each with its
//! `spec.toml`, `summary.json` and `metrics.csv`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, ensure, Context, Result};
use serde::Deserialize;

use super::metrics::Metrics;
use crate::spec::PlotSpec;

/// What `pisa plot` needs to know about one finished (or failed) run.
pub(super) struct Run {
    /// The run's folder name.
    pub id: String,
    /// The run's folder.
    pub dir: PathBuf,
    /// The spec's `name`, which names the figures.
    pub name: String,
    /// The spec's `[plot]` table, if any.
    pub plot: Option<PlotSpec>,
    /// The keys of the spec's `[sweep]` table, empty without one.
    pub sweep_keys: Vec<String>,
    /// The run's outcome: "completed", "failed" or "diverged".
    pub status: String,
    /// The sweep point of this run: sweep key to value.
    pub point: serde_json::Map<String, serde_json::Value>,
    /// The recorded metrics; `None` when a run that did not complete left none.
    pub metrics: Option<Metrics>,
}

/// The fields of `summary.json` that plotting uses.
#[derive(Deserialize)]
struct Summary {
    status: String,
    #[serde(default)]
    point: serde_json::Map<String, serde_json::Value>,
}

/// Loads every run of `dir`, sorted by folder name.
///
/// Staging folders (names starting with `.`) and folders without a
/// `summary.json` are skipped; finding no run at all is an error.
pub(super) fn load_runs(dir: &Path) -> Result<Vec<Run>> {
    let entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut runs = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let id = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if id.starts_with('.') || !path.is_dir() || !path.join("summary.json").is_file() {
            continue;
        }
        runs.push(load_run(id, path)?);
    }
    ensure!(
        !runs.is_empty(),
        "no runs in {}: expected subfolders holding spec.toml, summary.json and metrics.csv",
        dir.display()
    );
    runs.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(runs)
}

/// Loads the run stored in folder `dir`.
fn load_run(id: String, dir: PathBuf) -> Result<Run> {
    let spec = read_spec(&dir.join("spec.toml"))?;
    let summary = read_summary(&dir.join("summary.json"))?;
    let metrics_path = dir.join("metrics.csv");
    let metrics = if metrics_path.exists() || summary.status == "completed" {
        Some(Metrics::read(&metrics_path)?)
    } else {
        None
    };
    Ok(Run {
        id,
        dir,
        name: spec.name,
        plot: spec.plot,
        sweep_keys: spec.sweep_keys,
        status: summary.status,
        point: summary.point,
        metrics,
    })
}

/// The parts of a run's resolved `spec.toml` that plotting uses.
struct SpecParts {
    name: String,
    plot: Option<PlotSpec>,
    sweep_keys: Vec<String>,
}

/// Reads `name`, `[plot]` and the keys of `[sweep]` from a `spec.toml`.
fn read_spec(path: &Path) -> Result<SpecParts> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let name = table
        .get("name")
        .and_then(toml::Value::as_str)
        .ok_or_else(|| anyhow!("{}: no top-level `name` string", path.display()))?
        .to_owned();
    let plot = table
        .get("plot")
        .map(|plot| plot.clone().try_into::<PlotSpec>())
        .transpose()
        .with_context(|| format!("{}: invalid [plot] table", path.display()))?;
    let sweep_keys = table
        .get("sweep")
        .and_then(toml::Value::as_table)
        .map(|sweep| sweep.keys().cloned().collect())
        .unwrap_or_default();
    Ok(SpecParts {
        name,
        plot,
        sweep_keys,
    })
}

/// Reads a run's `summary.json`.
fn read_summary(path: &Path) -> Result<Summary> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}
