//! Table 8 of the paper (pisa.md A.6): test perplexity of 1-, 2- and 3-layer AWD-LSTMs on
//! Penn Treebank per optimizer, from every completed run whose `[plot]` says
//! `table = "table8"` (experiments/table8/). A run's value is its lowest test perplexity
//! over the epochs: the suite and the PISA code keep the model of the best epoch by the
//! test split's loss and report its test perplexity. Runs of the proxy (trained on the
//! validation file, `data.valid_fraction`) form rows of their own with no paper value.
use super::tables::{PaperValue, RowKey, Run, Table};
use anyhow::{Context, Result};

/// The optimizers in the paper's column order.
pub const OPTIMIZERS: [&str; 10] = [
    "sisa",
    "sgd",
    "adabound",
    "adam",
    "radam",
    "msvag",
    "adamw",
    "adabelief",
    "yogi",
    "padam",
];

/// Table 8 as printed, per layer count, in [`OPTIMIZERS`] order (no standard deviations).
pub const PAPER: [(i64, [f64; 10]); 3] = [
    (
        1,
        [
            84.27, 85.70, 84.73, 85.90, 86.50, 84.85, 88.39, 84.47, 86.37, 94.46,
        ],
    ),
    (
        2,
        [
            66.23, 67.32, 67.43, 67.30, 72.30, 68.82, 72.80, 66.70, 71.64, 89.77,
        ],
    ),
    (
        3,
        [
            61.06, 63.91, 63.72, 65.02, 70.00, 64.32, 69.90, 61.20, 67.69, 95.10,
        ],
    ),
];

/// The row label of the proxy runs.
const PROXY: &str = "proxy";

pub const TABLE: Table = Table {
    name: "table8",
    caption: "Test perplexity on Penn Treebank (the lowest over the epochs, as the paper's code \
              reports it), mean ± std over seeds (n = seeds); the paper's Table 8 value in \
              brackets. Proxy rows train on ptb.valid.txt (no PTB training split here): their \
              numbers are not Table 8's, only the optimizers' order compares.",
    row_header: &["layers", "data"],
    columns: &OPTIMIZERS,
    row,
    value: |run| {
        let best = run
            .column("test_ppl")?
            .into_iter()
            .fold(f64::INFINITY, f64::min);
        anyhow::ensure!(
            best.is_finite(),
            "{}: no finite test_ppl",
            run.dir.display()
        );
        Ok(best)
    },
    paper,
    variants: None,
    decimals: 2,
};

/// (layers, "ptb" or "proxy") of a run, ranked by layers with the proxy after the real.
fn row(run: &Run) -> Result<RowKey> {
    let layers = run
        .get(&["model", "layers"])
        .and_then(toml::Value::as_integer)
        .with_context(|| format!("{}: Table 8 runs need model.layers", run.dir.display()))?;
    let proxy = run.get(&["data", "valid_fraction"]).is_some();
    let data = if proxy { PROXY } else { "ptb" };
    Ok((
        vec![format!("{layers}-layer"), data.to_string()],
        (usize::from(proxy), layers),
    ))
}

fn paper(row: &[String], column: usize) -> Option<PaperValue> {
    if row[1] == PROXY {
        return None;
    }
    let layers: i64 = row[0].strip_suffix("-layer")?.parse().ok()?;
    PAPER
        .iter()
        .find(|(l, _)| *l == layers)
        .map(|(_, v)| (v[column], None))
}

/// Validation perplexity per epoch, a curve per optimizer, for each row of Table 8.
pub const CURVES: super::by_optimizer::ByOptimizer = super::by_optimizer::ByOptimizer {
    name: "table8",
    title: "Table 8",
    table: &TABLE,
    ys: &["val_ppl"],
    xs: &["epoch"],
};
