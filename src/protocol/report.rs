//! The results folder of `pisa mixing`: `spec.toml` (the spec as run), `t_mix.csv` (one row
//! per run) and `t_mix-summary.csv` (mean, sample std, min, max per protocol × n, beside the
//! derived worst case), each written atomically.
use super::mixing::Sample;
use super::{MixingSpec, Protocol};
use crate::results::write_atomic;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const RUNS_FILE: &str = "t_mix.csv";
pub const SUMMARY_FILE: &str = "t_mix-summary.csv";

/// A row of `t_mix.csv`.
#[derive(Debug, Serialize)]
struct RunRow<'a> {
    protocol: &'a str,
    n: usize,
    run: usize,
    t_mix: u64,
}

/// A row of `t_mix-summary.csv`: the distribution of t_mix over the runs of one protocol
/// with n workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub protocol: String,
    pub n: usize,
    pub runs: usize,
    pub mean: f64,
    /// The sample standard deviation (divisor runs − 1; 0 for one run).
    pub std: f64,
    pub min: u64,
    pub max: u64,
    /// [`Protocol::derived_t_mix`], the worst case over X; empty where there is none.
    pub derived: Option<u64>,
}

impl SummaryRow {
    fn new(protocol: &str, derived: Option<u64>, n: usize, values: &[u64]) -> Self {
        let runs = values.len();
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / runs as f64;
        let squares: f64 = values.iter().map(|&v| (v as f64 - mean).powi(2)).sum();
        Self {
            protocol: protocol.to_string(),
            n,
            runs,
            mean,
            std: if runs > 1 {
                (squares / (runs - 1) as f64).sqrt()
            } else {
                0.0
            },
            min: *values.iter().min().expect("at least one run"),
            max: *values.iter().max().expect("at least one run"),
            derived,
        }
    }
}

/// The summary rows of `samples` (in the order of [`super::mixing::measure`]).
pub fn summarize(
    spec: &MixingSpec,
    protocols: &[(String, Protocol)],
    samples: &[Sample],
) -> Vec<SummaryRow> {
    let mut rows = Vec::new();
    for (p, (label, protocol)) in protocols.iter().enumerate() {
        for &n in &spec.workers {
            let values: Vec<u64> = samples
                .iter()
                .filter(|s| s.protocol == p && s.n == n)
                .map(|s| s.t_mix)
                .collect();
            rows.push(SummaryRow::new(
                label,
                protocol.derived_t_mix(n),
                n,
                &values,
            ));
        }
    }
    rows
}

/// Writes the folder `dir` (created if needed; its three files replaced).
pub fn write(
    dir: &Path,
    spec: &MixingSpec,
    protocols: &[(String, Protocol)],
    samples: &[Sample],
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_atomic(
        &dir.join(crate::results::SPEC_FILE),
        spec.to_toml().as_bytes(),
    )?;
    let mut runs = csv::Writer::from_writer(Vec::new());
    for s in samples {
        runs.serialize(RunRow {
            protocol: &protocols[s.protocol].0,
            n: s.n,
            run: s.run,
            t_mix: s.t_mix,
        })?;
    }
    write_atomic(&dir.join(RUNS_FILE), &runs.into_inner()?)?;
    let mut summary = csv::Writer::from_writer(Vec::new());
    for row in summarize(spec, protocols, samples) {
        summary.serialize(row)?;
    }
    write_atomic(&dir.join(SUMMARY_FILE), &summary.into_inner()?)?;
    Ok(())
}

/// Reads `dir`'s `t_mix-summary.csv`.
pub fn read_summary(dir: &Path) -> Result<Vec<SummaryRow>> {
    let path = dir.join(SUMMARY_FILE);
    let mut reader =
        csv::Reader::from_path(&path).with_context(|| format!("cannot read {}", path.display()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.with_context(|| format!("{}: row {}", path.display(), i + 2)))
        .collect()
}
