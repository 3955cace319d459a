//! Table 4 and Figure 3 of the paper (pisa.md 5.4): the Fréchet score of WGAN and WGAN-GP
//! generators per optimizer, from every completed run whose `[plot]` says
//! `table = "table4"` (experiments/table4/). A run's value is its last score — the one on
//! `final_samples` images at the end, as the paper's testing FID on 64,000. Runs scored by
//! `fd_fmnist` (the reduced Fashion-MNIST substitute) form rows of their own with no paper
//! value: that score is not FID.
use super::tables::{PaperValue, RowKey, Run, Table};
use anyhow::{Context, Result};

/// The optimizers in the paper's column order.
pub const OPTIMIZERS: [&str; 4] = ["sisa", "adam", "rmsprop", "adabelief"];

/// Table 4 as printed: mean and standard deviation over 5 runs, in [`OPTIMIZERS`] order.
pub const PAPER: [(&str, [(f64, f64); 4]); 2] = [
    (
        "wgan",
        [(85.07, 5.49), (95.06, 2.97), (102.39, 7.05), (92.37, 11.13)],
    ),
    (
        "wgan_gp",
        [(53.34, 3.87), (71.38, 5.04), (121.62, 22.79), (65.71, 3.36)],
    ),
];

pub const TABLE: Table = Table {
    name: "table4",
    caption: "Fréchet score of the final generator (on [gan] final_samples images), mean ± \
              std over seeds (n = seeds); the paper's Table 4 FID (5 runs, CIFAR-10) in \
              brackets. fd_fmnist rows are the Fashion-MNIST substitute, scored in pisa's \
              classifier's features: not FID, only the optimizers' order compares.",
    row_header: &["model", "score"],
    columns: &OPTIMIZERS,
    row,
    value: |run| {
        let score = score_column(run)?;
        run.last(score)
    },
    paper,
    variants: None,
    decimals: 2,
};

/// The run's score column: `fid` or `fd_fmnist`.
fn score_column(run: &Run) -> Result<&'static str> {
    let score = run
        .get(&["gan", "score"])
        .and_then(toml::Value::as_str)
        .with_context(|| format!("{}: Table 4 runs need gan.score", run.dir.display()))?;
    Ok(match score {
        "fid" => "fid",
        _ => "fd_fmnist",
    })
}

/// (model, score) of a run: WGAN before WGAN-GP, FID before the substitute.
fn row(run: &Run) -> Result<RowKey> {
    let model = run
        .get(&["model", "kind"])
        .and_then(toml::Value::as_str)
        .with_context(|| format!("{}: Table 4 runs need model.kind", run.dir.display()))?;
    let score = score_column(run)?;
    let rank = PAPER
        .iter()
        .position(|(m, _)| *m == model)
        .unwrap_or(PAPER.len());
    Ok((
        vec![model.to_string(), score.to_string()],
        (usize::from(score != "fid"), rank as i64),
    ))
}

fn paper(row: &[String], column: usize) -> Option<PaperValue> {
    if row[1] != "fid" {
        return None;
    }
    PAPER
        .iter()
        .find(|(model, _)| *model == row[0])
        .map(|(_, values)| (values[column].0, Some(values[column].1)))
}

/// Figure 3: the score against epochs, a curve per optimizer with its seed band, for each
/// row of Table 4.
pub const FIGURE3: super::by_optimizer::ByOptimizer = super::by_optimizer::ByOptimizer {
    name: "figure3",
    title: "Figure 3",
    table: &TABLE,
    ys: &["fid", "fd_fmnist"],
    xs: &["epoch"],
};
