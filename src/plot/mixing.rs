//! MixML Figure 3 from a `pisa mixing` results folder: t_mix against the number of workers,
//! one curve per protocol (the mean over the runs), shaded over mean ± one sample std; and,
//! where the worst case over X is derived and differs from the mean (SyncDR), that worst case
//! as a curve of its own.
use super::curves::Curve;
use super::draw::{write_png, write_svg, Figure};
use crate::protocol::report::{read_summary, SummaryRow, SUMMARY_FILE};
use crate::spec::Legend;
use anyhow::{ensure, Result};
use std::path::{Path, PathBuf};

/// Whether `dir` holds `pisa mixing` results.
pub fn holds_mixing(dir: &Path) -> bool {
    dir.join(SUMMARY_FILE).is_file()
}

/// Draws `t_mix.png` and `t_mix.svg` into `dir`; returns them.
pub fn write(dir: &Path) -> Result<Vec<PathBuf>> {
    let rows = read_summary(dir)?;
    ensure!(
        !rows.is_empty(),
        "{}: no rows",
        dir.join(SUMMARY_FILE).display()
    );
    let mut labels: Vec<&str> = Vec::new();
    for row in &rows {
        if !labels.contains(&row.protocol.as_str()) {
            labels.push(&row.protocol);
        }
    }
    let mut curves = Vec::new();
    let mut worst = Vec::new();
    for &label in &labels {
        let mut rows: Vec<&SummaryRow> = rows.iter().filter(|r| r.protocol == label).collect();
        rows.sort_by_key(|r| r.n);
        curves.push(Curve {
            label: label.to_string(),
            points: rows.iter().map(|r| (r.n as f64, r.mean)).collect(),
            band: rows
                .iter()
                .map(|r| (r.n as f64, r.mean - r.std, r.mean + r.std))
                .collect(),
        });
        if rows
            .iter()
            .any(|r| r.derived.is_some_and(|d| d as f64 != r.mean))
        {
            worst.push(Curve {
                label: format!("{label}: worst X (derived)"),
                points: rows
                    .iter()
                    .filter_map(|r| Some((r.n as f64, r.derived? as f64)))
                    .collect(),
                band: Vec::new(),
            });
        }
    }
    curves.extend(worst);
    let runs = rows.iter().map(|r| r.runs).max().unwrap_or(0);
    let title = format!("Mixing time: mean of {runs} runs on Gaussian X, shaded ± std");
    let figure = Figure {
        title: &title,
        x_label: "workers n",
        y_label: "t_mix (worker steps)",
        logx: false,
        logy: true,
        legend: Legend::UpperLeft,
        curves,
    };
    let (png, svg) = (dir.join("t_mix.png"), dir.join("t_mix.svg"));
    write_png(&figure, &png)?;
    write_svg(&figure, &svg)?;
    Ok(vec![png, svg])
}
