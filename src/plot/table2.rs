//! Table 2 of the paper (pisa.md §5.1): final test accuracy per dataset, s-label skew and
//! algorithm, mean ± standard deviation over seeds, with the paper's numbers beside ours.
//! Built from every completed run under a results folder whose `[plot]` says
//! `table = "table2"` (experiments/table2/).
use super::tables::{PaperValue, RowKey, Run, Table};
use anyhow::{Context, Result};

/// The algorithms in the paper's column order.
pub const ALGORITHMS: [&str; 5] = ["fedavg", "fedprox", "fednova", "scaffold", "sisa"];

/// Table 2 as printed: (dataset, s) → mean ± std in %, per algorithm in [`ALGORITHMS`]
/// order. The Adult baselines (marked * in the paper) used mini-batch local training.
/// (dataset, s, [(mean, std) per algorithm]).
pub type PaperRow = (&'static str, usize, [(f64, f64); 5]);

pub const PAPER: &[PaperRow] = &[
    (
        "mnist",
        1,
        [
            (53.19, 0.21),
            (54.33, 0.67),
            (49.00, 0.42),
            (47.04, 0.02),
            (94.97, 0.01),
        ],
    ),
    (
        "mnist",
        2,
        [
            (90.70, 0.02),
            (90.75, 0.03),
            (90.40, 0.05),
            (87.43, 0.08),
            (96.14, 0.00),
        ],
    ),
    (
        "mnist",
        3,
        [
            (95.11, 0.01),
            (94.73, 0.02),
            (94.37, 0.01),
            (93.19, 0.03),
            (96.21, 0.01),
        ],
    ),
    (
        "cifar10",
        1,
        [
            (10.02, 0.00),
            (10.00, 0.00),
            (10.31, 0.03),
            (11.41, 0.03),
            (30.16, 0.00),
        ],
    ),
    (
        "cifar10",
        2,
        [
            (13.76, 0.00),
            (13.77, 0.00),
            (18.02, 0.02),
            (12.73, 0.00),
            (30.53, 0.00),
        ],
    ),
    (
        "cifar10",
        3,
        [
            (20.06, 0.01),
            (20.03, 0.01),
            (21.20, 0.01),
            (17.00, 0.00),
            (30.96, 0.00),
        ],
    ),
    (
        "fashion_mnist",
        1,
        [
            (48.81, 0.34),
            (47.14, 0.32),
            (49.08, 0.34),
            (43.93, 0.20),
            (72.85, 0.02),
        ],
    ),
    (
        "fashion_mnist",
        2,
        [
            (69.33, 0.01),
            (69.29, 0.02),
            (69.10, 0.04),
            (65.99, 0.06),
            (70.24, 0.05),
        ],
    ),
    (
        "fashion_mnist",
        3,
        [
            (70.48, 0.02),
            (69.96, 0.08),
            (69.70, 0.08),
            (63.64, 0.15),
            (72.46, 0.01),
        ],
    ),
    (
        "adult",
        1,
        [
            (76.38, 0.00),
            (78.30, 0.03),
            (85.15, 0.08),
            (80.00, 0.02),
            (82.21, 0.00),
        ],
    ),
];

/// Table 2's layout for [`super::tables::write`].
pub const TABLE: Table = Table {
    name: "table2",
    caption: "Final test accuracy (%) of the global model, mean ± std over seeds (n = seeds); \
              the paper's Table 2 value in brackets.",
    row_header: &["dataset", "partition"],
    columns: &ALGORITHMS,
    row,
    value: |run| run.final_accuracy(),
    paper,
    variants: None,
    decimals: 2,
};

/// (dataset, "s-Label") of a Table 2 run, and its rank in the paper's row order (MNIST,
/// CIFAR-10, Fashion-MNIST, Adult; unknown datasets last).
fn row(run: &Run) -> Result<RowKey> {
    let dataset = run
        .text(&["data", "kind"])
        .context("spec has no data.kind")?;
    let labels = run
        .get(&["data", "partition", "labels"])
        .and_then(toml::Value::as_integer)
        .with_context(|| {
            format!(
                "{}: Table 2 runs need a label-skew partition",
                run.dir.display()
            )
        })?;
    let rank = PAPER
        .iter()
        .position(|(d, _, _)| *d == dataset)
        .unwrap_or(PAPER.len());
    Ok((vec![dataset, format!("{labels}-Label")], (rank, labels)))
}

fn paper(row: &[String], column: usize) -> Option<PaperValue> {
    let labels: usize = row[1].strip_suffix("-Label")?.parse().ok()?;
    PAPER
        .iter()
        .find(|(d, s, _)| *d == row[0] && *s == labels)
        .map(|(_, _, v)| (v[column].0, Some(v[column].1)))
}

/// Table 2's curves: for each dataset × partition, the test accuracy of every algorithm
/// (the mean and range of its seeds) against communication rounds and against the floats
/// the clients sent up, written as `table2-<dataset>-<s>-Label-test_acc[-by-floats_up]`.
pub const CURVES: super::by_optimizer::ByOptimizer = super::by_optimizer::ByOptimizer {
    name: "table2",
    title: "Table 2",
    table: &TABLE,
    ys: &["test_acc"],
    xs: &["iteration", "floats_up"],
};
