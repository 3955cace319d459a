//! `pisa plot RESULTS_DIR`: redraws the figures of a results folder from the
//! files its runs left behind, never re-running anything.
//!
//! Every run's `spec.toml` carries the same `[plot]` table; each entry of its
//! `y` list becomes one figure, written as `<name>-<y>.png` and `.svg` next to
//! the runs, with one curve per run.

pub mod by_optimizer;
mod curves;
mod draw;
pub mod fedlamb;
pub mod figure2;
pub mod figure5;
pub mod figure7;
mod metrics;
mod mixing;
mod runs;
pub mod table2;
pub mod table3;
pub mod table4;
pub mod table6;
pub mod table8;
pub mod tables;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use draw::Figure;
use runs::Run;

/// Draws every figure the runs' `[plot]` table describes; returns the files written.
/// A folder of experiment folders (as `pisa sweep --out DIR` makes for several specs)
/// has each of them plotted, then the paper tables its runs fill written beside them.
/// A `pisa mixing` folder gets its t_mix figure (MixML Figure 3).
pub fn plot_results(dir: &Path) -> Result<Vec<PathBuf>> {
    if mixing::holds_mixing(dir) {
        return mixing::write(dir);
    }
    if !holds_runs(dir) {
        let mut written = Vec::new();
        let mut experiments: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir() && holds_runs(p))
            .collect();
        experiments.sort();
        for experiment in &experiments {
            written.extend(plot_experiment(experiment)?);
        }
        written.extend(tables::write_all(dir)?);
        written.extend(tables::write_comparisons(dir)?);
        if written.is_empty() {
            // the usual error for a folder with nothing to plot
            runs::load_runs(dir)?;
        }
        return Ok(written);
    }
    plot_experiment(dir)
}

/// Whether `dir` holds run folders (with a `summary.json`) directly.
fn holds_runs(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok())
            .any(|e| e.path().join("summary.json").is_file())
    })
}

/// The figures of one experiment folder.
fn plot_experiment(dir: &Path) -> Result<Vec<PathBuf>> {
    let runs = runs::load_runs(dir)?;
    let name = shared(&runs, "name", |run| &run.name)?;
    let plot = shared(&runs, "[plot] table", |run| &run.plot)?
        .as_ref()
        .ok_or_else(|| no_plot_table(dir))?;
    let labelled = curves::label_runs(&runs, plot.series.as_deref())?;
    let mut written = Vec::new();
    for y in &plot.y {
        let figure = Figure {
            title: plot.title.as_deref().unwrap_or(name),
            x_label: &plot.x,
            y_label: y,
            logx: plot.logx,
            logy: plot.logy,
            legend: plot.legend,
            curves: curves::curves(&labelled, &plot.x, y)?,
        };
        let png = dir.join(format!("{name}-{y}.png"));
        draw::write_png(&figure, &png)?;
        let svg = dir.join(format!("{name}-{y}.svg"));
        draw::write_svg(&figure, &svg)?;
        written.extend([png, svg]);
    }
    written.extend(tables::write_all(dir)?);
    Ok(written)
}

/// The value of `field` common to all runs; errors naming two runs that differ.
fn shared<'a, T: PartialEq>(
    runs: &'a [Run],
    what: &str,
    field: impl Fn(&Run) -> &T,
) -> Result<&'a T> {
    let (first, rest) = runs
        .split_first()
        .expect("load_runs returns at least one run");
    match rest.iter().find(|run| field(run) != field(first)) {
        Some(other) => bail!(
            "runs {} and {} disagree on their {what}; plot them from separate folders",
            first.dir.display(),
            other.dir.display()
        ),
        None => Ok(field(first)),
    }
}

/// The error for a folder whose runs have no `[plot]` table.
fn no_plot_table(dir: &Path) -> anyhow::Error {
    anyhow!(
        "the runs in {} have no [plot] table in their spec.toml, so there is nothing to draw; \
         add one to each run's spec.toml (and to the experiment's spec for later runs), \
         e.g.\n\n\
         [plot]\nx = \"iteration\"\ny = [\"objective\", \"gap\"]\nlogy = true",
        dir.display()
    )
}

#[cfg(test)]
mod tests;
