//! Table 3 of the paper (pisa.md §5.2): top-1 test accuracy per model and optimizer, the
//! best over the epochs of a run, mean ± standard deviation over seeds, with the paper's
//! numbers beside ours. Built from every completed run under a results folder whose
//! `[plot]` says `table = "table3"` (experiments/table3/). As in the paper, a baseline
//! runs with its default schedule and with SISA's, and each cell reports the better.
use super::by_optimizer::ByOptimizer;
use super::tables::{spec_name, PaperValue, RowKey, Run, Table, Variants};
use anyhow::{Context, Result};

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
              (n = seeds); the paper's Table 3 value in brackets. A baseline runs with its \
              default learning-rate schedule and with SISA's (Table 5's γ_ℓ(t, s)); each cell \
              reports the one with the higher mean, † where SISA's schedule won (CSV column \
              `schedule`: default or sisa).",
    row_header: &["model", "dataset"],
    columns: &ALGORITHMS,
    row,
    value: Run::best_accuracy,
    paper,
    variants: Some(Variants {
        header: "schedule",
        key: spec_name,
        label: schedule,
    }),
    decimals: 2,
};

/// How a baseline's spec name ends when it runs with SISA's step-size schedule (Table 5's
/// γ_ℓ(t, s)) in place of its default one; scripts/table3_specs.py writes both specs.
pub const SISA_SCHEDULE: &str = "-sisa-schedule";

/// The schedule a Table 3 variant ran with, from its spec name, and its Markdown marker.
fn schedule(name: &str) -> (String, String) {
    let (label, marker) = if name.ends_with(SISA_SCHEDULE) {
        ("sisa", "†")
    } else {
        ("default", "")
    };
    (label.to_string(), marker.to_string())
}

/// (model, dataset) of a Table 3 run, ranked in the paper's row order, others last.
fn row(run: &Run) -> Result<RowKey> {
    let (model, dataset) = model_and_dataset(run)?;
    let rank = PAPER
        .iter()
        .position(|(m, d, _)| *m == model && *d == dataset)
        .unwrap_or(PAPER.len());
    Ok((vec![model, dataset], (rank, 0)))
}

/// A run's `model.kind` and `data.kind`.
pub(super) fn model_and_dataset(run: &Run) -> Result<(String, String)> {
    let model = run
        .text(&["model", "kind"])
        .context("spec has no model.kind")?;
    let dataset = run
        .text(&["data", "kind"])
        .context("spec has no data.kind")?;
    Ok((model, dataset))
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
/// training loss and the test accuracy against epochs, one curve per optimizer (the mean
/// and range of the seeds of the variant its Table 3 cell reports), written as
/// `figure1-<model>-<dataset>-<metric>.{png,svg}`.
pub const FIGURE1: ByOptimizer = ByOptimizer {
    name: "figure1",
    title: "Figure 1",
    table: &TABLE,
    ys: &["train_loss", "test_acc"],
    xs: &["epoch"],
};
