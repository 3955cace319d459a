//! The Fed-LAMB study (fed-lamb.md §4.1, experiments/fed-lamb/): final test accuracy per
//! dataset × model × partition and method (Fed-SGD, Fed-AMS, Fed-LAMB, SISA), each cell the
//! best hyperparameter configuration by its mean over seeds, as the paper reports "the best
//! α and λ". A configuration is a sweep point without its seed (the learning rate, Fed-LAMB's
//! λ, SISA's σ⁰): the runs of one spec, grouped by [`sweep_point`]. The paper prints no
//! numbers for it (its results are figures only), so there is nothing to set beside ours.
//! Built from every completed run under a results folder whose `[plot]` says
//! `table = "fedlamb"`.
use super::by_optimizer::ByOptimizer;
use super::tables::{sweep_point, PaperValue, RowKey, Run, Table, Variants};
use anyhow::{Context, Result};

/// The methods in the paper's order (its two baselines, Fed-LAMB), then SISA.
pub const ALGORITHMS: [&str; 4] = ["fedsgd", "fedams", "fedlamb", "sisa"];

/// The study's layout for [`super::tables::write`].
pub const TABLE: Table = Table {
    name: "fedlamb",
    caption: "Final test accuracy (%) of the global model, mean ± std over seeds (n = seeds), \
              of the best configuration of each method (the highest mean over its sweep \
              points; CSV column `config`), written after it. The Fed-LAMB paper prints no \
              numbers for this setting (its results are figures only).",
    row_header: &["dataset", "model", "partition"],
    columns: &ALGORITHMS,
    row,
    value: |run| run.final_accuracy(),
    paper: |_, _| None::<PaperValue>,
    variants: Some(Variants {
        header: "config",
        key: sweep_point,
        label: config,
    }),
    decimals: 2,
};

/// A configuration's CSV label and Markdown marker from its sweep point: the keys' last
/// segments, `lr=0.01 weight_decay=0.1` and `at lr=0.01, weight_decay=0.1`.
fn config(point: &str) -> (String, String) {
    let pairs: Vec<&str> = point
        .split(' ')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) => &pair[key.rfind('.').map_or(0, |dot| dot + 1)..],
            None => pair,
        })
        .collect();
    if pairs.is_empty() {
        return (String::new(), String::new());
    }
    (pairs.join(" "), format!("at {}", pairs.join(", ")))
}

/// (dataset, model, partition) of a run: `data.kind`, `model.kind` and the partition as
/// "s-Label" for label skew (NIID-Bench #C=s), else its kind ("iid" when it has none).
fn row(run: &Run) -> Result<RowKey> {
    let (model, dataset) = super::table3::model_and_dataset(run)?;
    let partition = match run.get(&["data", "partition"]) {
        None => "iid".to_string(),
        Some(p) => match p.get("labels").and_then(toml::Value::as_integer) {
            Some(labels) => format!("{labels}-Label"),
            None => p
                .get("kind")
                .and_then(toml::Value::as_str)
                .map(String::from)
                .with_context(|| format!("{}: data.partition has no kind", run.dir.display()))?,
        },
    };
    Ok((vec![dataset, model, partition], (0, 0)))
}

/// The study's curves: for each row, the test accuracy of every method (the mean and range
/// of the seeds of its best configuration) against rounds and against the floats the
/// clients sent up, written as `fedlamb-<dataset>-<model>-<partition>-test_acc[-by-floats_up]`.
pub const CURVES: ByOptimizer = ByOptimizer {
    name: "fedlamb",
    title: "Fed-LAMB setting",
    table: &TABLE,
    ys: &["test_acc"],
    xs: &["iteration", "floats_up"],
};
