//! Table 3 of the paper (pisa.md §5.2): top-1 test accuracy per model and optimizer, the
//! best over the epochs of a run, mean ± standard deviation over seeds, with the paper's
//! numbers beside ours. Built from every completed run under a results folder whose
//! `[plot]` says `table = "table3"` (experiments/table3/).
use super::curves::Curve;
use super::draw::{write_png, write_svg, Figure};
use super::metrics::Metrics;
use super::tables::{PaperValue, RowKey, Run, Table};
use crate::spec::Legend;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The optimizers in the paper's column order (SISA, SGD-M, AdaBound, Adam, RAdam,
/// M-SVAG, AdamW, AdaBelief, Yogi, LAMB, NAdam).
pub const ALGORITHMS: [&str; 11] = [
    "sisa",
    "sgd",
    "adabound",
    "adam",
    "radam",
    "msvag",
    "adamw",
    "adabelief",
    "yogi",
    "lamb",
    "nadam",
];

/// Table 3 as printed: (model, dataset, accuracy per algorithm in [`ALGORITHMS`] order;
/// NaN where the paper reports none).
pub const PAPER: [(&str, &str, [f64; 11]); 4] = [
    (
        "resnet34",
        "cifar10",
        [
            95.04,
            94.65,
            94.33,
            94.69,
            94.20,
            94.44,
            94.28,
            94.11,
            94.52,
            94.01,
            f64::NAN,
        ],
    ),
    (
        "vgg11",
        "cifar10",
        [
            91.25,
            91.51,
            90.62,
            88.40,
            89.30,
            90.24,
            89.39,
            90.07,
            90.67,
            87.48,
            f64::NAN,
        ],
    ),
    (
        "densenet121",
        "cifar10",
        [
            95.77,
            95.47,
            94.58,
            93.35,
            94.91,
            94.81,
            94.55,
            94.78,
            95.15,
            94.53,
            f64::NAN,
        ],
    ),
    (
        "resnet18_imagenet",
        "image_folder",
        [
            70.03,
            70.23,
            68.13,
            63.79,
            67.62,
            65.99,
            67.93,
            70.08,
            f64::NAN,
            68.46,
            68.82,
        ],
    ),
];

/// Table 3's layout for [`super::tables::write`].
pub const TABLE: Table = Table {
    name: "table3",
    caption: "Top-1 test accuracy (%), the best over each run's epochs, mean ± std over seeds \
              (n = seeds); the paper's Table 3 value in brackets.",
    row_header: &["model", "dataset"],
    columns: &ALGORITHMS,
    row,
    value: Run::best_accuracy,
    paper,
};

/// (model, dataset) of a Table 3 run, ranked in the paper's row order, others last.
fn row(run: &Run) -> Result<RowKey> {
    let model = run
        .text(&["model", "kind"])
        .context("spec has no model.kind")?;
    let dataset = run
        .text(&["data", "kind"])
        .context("spec has no data.kind")?;
    let rank = PAPER
        .iter()
        .position(|(m, d, _)| *m == model && *d == dataset)
        .unwrap_or(PAPER.len());
    Ok((vec![model, dataset], (rank, 0)))
}

fn paper(row: &[String], column: usize) -> Option<PaperValue> {
    PAPER
        .iter()
        .find(|(m, d, _)| *m == row[0] && *d == row[1])
        .map(|(_, _, v)| v[column])
        .filter(|v| !v.is_nan())
        .map(|v| (v, None))
}

/// Figure 1 of the paper: for each (model, dataset) of the Table 3 runs under `dir`, the
/// training loss and the test accuracy against epochs, one curve per optimizer (its
/// lowest seed). Written as `figure1-<model>-<dataset>-<metric>.{png,svg}` into `dir`.
pub fn figure1(dir: &Path) -> Result<Vec<PathBuf>> {
    // (model, dataset) → column → (seed, optimizer, run folder): each optimizer's lowest seed.
    let mut rows: BTreeMap<(String, String), BTreeMap<usize, (i64, String, PathBuf)>> =
        BTreeMap::new();
    for run in super::tables::runs_of(dir, TABLE.name)? {
        let (key, _) = row(&run)?;
        let optimizer = run.text(&["optimizer", "name"]).unwrap_or_default();
        let column = ALGORITHMS
            .iter()
            .position(|a| *a == optimizer)
            .unwrap_or(ALGORITHMS.len());
        let seed = run
            .get(&["seed"])
            .and_then(toml::Value::as_integer)
            .unwrap_or(0);
        let chosen = rows.entry((key[0].clone(), key[1].clone())).or_default();
        if chosen
            .get(&column)
            .is_none_or(|(lowest, ..)| seed < *lowest)
        {
            chosen.insert(column, (seed, optimizer, run.dir));
        }
    }
    let mut written = vec![];
    for ((model, dataset), runs) in &rows {
        for y in ["train_loss", "test_acc"] {
            let curves = runs
                .values()
                .map(|(_, label, run)| {
                    let metrics = Metrics::read(&run.join(crate::results::METRICS_FILE))?;
                    Ok(Curve {
                        label: label.clone(),
                        points: metrics.points("epoch", y)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let title = format!("Figure 1: {model} on {dataset}");
            let figure = Figure {
                title: &title,
                x_label: "epoch",
                y_label: y,
                logx: false,
                logy: y == "train_loss",
                legend: if y == "test_acc" {
                    Legend::LowerRight
                } else {
                    Legend::UpperRight
                },
                curves,
            };
            let stem = dir.join(format!("figure1-{model}-{dataset}-{y}"));
            let (png, svg) = (stem.with_extension("png"), stem.with_extension("svg"));
            write_png(&figure, &png)?;
            write_svg(&figure, &svg)?;
            written.extend([png, svg]);
        }
    }
    Ok(written)
}
