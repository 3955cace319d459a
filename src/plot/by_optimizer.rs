//! Figures drawn from a paper table's cells: for each row of the table (a model on a
//! dataset, a dataset × partition), one figure per metric and x axis, a curve per optimizer
//! — the mean over the seeds of the variant its cell reports, shaded from their minimum to
//! their maximum (Figure 1 from Table 3, Figure 5 from its own, Table 2's curves).
use super::curves::seed_mean;
use super::draw::{write_png, write_svg, Figure};
use super::metrics::Metrics;
use super::tables::Table;
use crate::spec::Legend;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// A figure per table row, metric and x axis, written as `<name>-<row keys>-<y>.{png,svg}`
/// (`<name>-<row keys>-<y>-by-<x>` for every x after the first).
pub struct ByOptimizer {
    /// The files' stem and the title's prefix ("figure1", "Figure 1").
    pub name: &'static str,
    pub title: &'static str,
    /// The table whose rows, cells and column order it follows.
    pub table: &'static Table,
    /// The `metrics.csv` columns drawn, a figure each (those the row's runs have),
    pub ys: &'static [&'static str],
    /// against each of these columns.
    pub xs: &'static [&'static str],
}

/// One row of such a figure: its key cells and (optimizer, the seeds' run folders) per
/// curve.
pub type Row = (Vec<String>, Vec<(String, Vec<PathBuf>)>);

/// Per row of `table` (from the runs under `dir`), each optimizer in the table's column
/// order (others after) with the folders of the runs (seeds) of the variant its cell
/// reports, in folder order.
pub fn rows(table: &Table, dir: &Path) -> Result<Vec<Row>> {
    let mut rows = vec![];
    for ((_, key), by_algorithm) in super::tables::cells(table, dir)? {
        let mut runs: Vec<(String, Vec<PathBuf>)> = by_algorithm
            .into_iter()
            .map(|(optimizer, variant)| {
                let mut dirs: Vec<PathBuf> = variant.runs.into_iter().map(|r| r.dir).collect();
                dirs.sort();
                (optimizer, dirs)
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
            let metrics: Vec<(String, Vec<Metrics>)> = runs
                .iter()
                .map(|(label, seeds)| {
                    let read =
                        |run: &PathBuf| Metrics::read(&run.join(crate::results::METRICS_FILE));
                    Ok((
                        label.clone(),
                        seeds.iter().map(read).collect::<Result<_>>()?,
                    ))
                })
                .collect::<Result<_>>()?;
            let present = |y: &str| metrics.iter().flat_map(|(_, s)| s).all(|m| m.has(y));
            for &y in self.ys.iter().filter(|y| present(y)) {
                for (i, &x) in self.xs.iter().enumerate() {
                    let curves = metrics
                        .iter()
                        .map(|(label, seeds)| {
                            let points: Vec<_> = seeds
                                .iter()
                                .map(|m| m.points(x, y))
                                .collect::<Result<_>>()?;
                            Ok(seed_mean(label.clone(), &points))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    let title = format!("{}: {}", self.title, key.join(" on "));
                    let is_accuracy = y.ends_with("_acc");
                    let figure = Figure {
                        title: &title,
                        x_label: x,
                        y_label: y,
                        logx: false,
                        logy: y.ends_with("_loss") || y.ends_with("_ppl"),
                        legend: if is_accuracy {
                            Legend::LowerRight
                        } else {
                            Legend::UpperRight
                        },
                        curves,
                    };
                    let by = if i == 0 {
                        String::new()
                    } else {
                        format!("-by-{x}")
                    };
                    let stem = dir.join(format!("{}-{}-{y}{by}", self.name, key.join("-")));
                    let (png, svg) = (stem.with_extension("png"), stem.with_extension("svg"));
                    write_png(&figure, &png)?;
                    write_svg(&figure, &svg)?;
                    written.extend([png, svg]);
                }
            }
        }
        Ok(written)
    }
}
