//! Figures drawn from a paper table's cells: for each row of the table (a model on a
//! dataset), one figure per metric against epochs, a curve per optimizer — the lowest
//! seed of the variant its cell reports (Figure 1 from Table 3, Figure 5 from its own).
use super::curves::Curve;
use super::draw::{write_png, write_svg, Figure};
use super::metrics::Metrics;
use super::tables::{Run, Table};
use crate::spec::Legend;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// A figure per table row and metric, written as `<name>-<row keys>-<y>.{png,svg}`.
pub struct ByOptimizer {
    /// The files' stem and the title's prefix ("figure1", "Figure 1").
    pub name: &'static str,
    pub title: &'static str,
    /// The table whose rows, cells and column order it follows.
    pub table: &'static Table,
    /// The `metrics.csv` columns drawn against `epoch`, a figure each.
    pub ys: &'static [&'static str],
}

/// One row of such a figure: its key cells and (optimizer, run folder) per curve.
pub type Row = (Vec<String>, Vec<(String, PathBuf)>);

/// Per row of `table` (from the runs under `dir`), each optimizer in the table's column
/// order (others after) with the folder of the lowest-seed run of the variant its cell
/// reports.
pub fn rows(table: &Table, dir: &Path) -> Result<Vec<Row>> {
    let seed = |run: &Run| run.get(&["seed"]).and_then(toml::Value::as_integer);
    let mut rows = vec![];
    for ((_, key), by_algorithm) in super::tables::cells(table, dir)? {
        let mut runs: Vec<(String, PathBuf)> = by_algorithm
            .into_iter()
            .map(|(optimizer, variant)| {
                let lowest = variant
                    .runs
                    .into_iter()
                    .min_by_key(seed)
                    .expect("a variant has at least one run");
                (optimizer, lowest.dir)
            })
            .collect();
        runs.sort_by_key(|(optimizer, _)| {
            table
                .columns
                .iter()
                .position(|a| a == optimizer)
                .unwrap_or(table.columns.len())
        });
        rows.push((key, runs));
    }
    Ok(rows)
}

impl ByOptimizer {
    /// Draws the figures of the runs under `dir` into it; returns the files.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let mut written = vec![];
        for (key, runs) in rows(self.table, dir)? {
            for &y in self.ys {
                let curves = runs
                    .iter()
                    .map(|(label, run)| {
                        let metrics = Metrics::read(&run.join(crate::results::METRICS_FILE))?;
                        Ok(Curve {
                            label: label.clone(),
                            points: metrics.points("epoch", y)?,
                            band: Vec::new(),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                let title = format!("{}: {}", self.title, key.join(" on "));
                let is_accuracy = y.ends_with("_acc");
                let figure = Figure {
                    title: &title,
                    x_label: "epoch",
                    y_label: y,
                    logx: false,
                    logy: y.ends_with("_loss"),
                    legend: if is_accuracy {
                        Legend::LowerRight
                    } else {
                        Legend::UpperRight
                    },
                    curves,
                };
                let stem = dir.join(format!("{}-{}-{y}", self.name, key.join("-")));
                let (png, svg) = (stem.with_extension("png"), stem.with_extension("svg"));
                write_png(&figure, &png)?;
                write_svg(&figure, &svg)?;
                written.extend([png, svg]);
            }
        }
        Ok(written)
    }
}
