//! Table 6 and Figure 6 of the paper (pisa.md A.4): GPT-2 fine-tuned on the recipes
//! corpus, from every completed run whose `[plot]` says `table = "table6"`
//! (experiments/table6/). Table 6 gives, per model and optimizer, the test loss and the
//! semantic similarity (BERTScore F1, %) after epochs 2, 5 and 15, mean ± std over seeds,
//! the paper's value beside; Figure 6 the training and test loss per epoch, a curve per
//! optimizer with its seed band.
//!
//! A row is the model (from the run's `model.json`: `gpt2-124M` and `gpt2-335M` for the
//! GPT-2 layouts of those sizes, else layout-layers×width) and whether the padding counts
//! in the loss. The paper's values sit beside GPT-2 rows with the padding counted, the
//! scripts' protocol; other rows (the Debian-pretrained substitute, masked padding) have
//! none.
use super::tables::{mean_std, runs_of, PaperValue, RowKey, Run, Table};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The optimizers in the paper's row order.
pub const OPTIMIZERS: [&str; 2] = ["adamw", "sisa"];

/// The epochs Table 6 reports.
pub const EPOCHS: [usize; 3] = [2, 5, 15];

/// Table 6 as printed: (model, optimizer) → test loss and similarity at [`EPOCHS`].
const PAPER: [(&str, &str, [f64; 3], [f64; 3]); 4] = [
    (
        "gpt2-124M",
        "adamw",
        [5.20, 3.45, 2.30],
        [82.16, 84.30, 84.73],
    ),
    (
        "gpt2-124M",
        "sisa",
        [3.69, 2.73, 2.17],
        [83.15, 84.36, 84.82],
    ),
    (
        "gpt2-335M",
        "adamw",
        [3.62, 2.73, 1.95],
        [83.17, 84.50, 84.19],
    ),
    (
        "gpt2-335M",
        "sisa",
        [2.31, 2.04, 1.93],
        [84.76, 85.24, 84.84],
    ),
];

/// The row of the padding-counted protocol.
const PADDED: &str = "pads-counted";

/// The runs grouped into rows and cells; its value (the last test loss) only orders
/// nothing here, the cells are what Table 6 and Figure 6 read.
pub const TABLE: Table = Table {
    name: "table6",
    caption: "Final test loss",
    row_header: &["experiment", "model", "loss"],
    columns: &OPTIMIZERS,
    row,
    value: |run| run.last("test_loss"),
    paper: |_, _| None,
    variants: None,
    decimals: 3,
};

/// (model, loss) of a run (the module doc).
fn row(run: &Run) -> Result<RowKey> {
    let file = run.dir.join(crate::models::pretrained::MODEL_FILE);
    let model: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&file)
            .with_context(|| format!("{}: Table 6 runs record their model", file.display()))?,
    )?;
    let int = |key: &str| {
        model[key]
            .as_i64()
            .with_context(|| format!("{}: no {key}", file.display()))
    };
    let (layers, width) = (int("n_layer")?, int("n_embd")?);
    let style = model["style"].as_str().unwrap_or("gpt");
    let name = match (style, layers, width) {
        ("classic", 12, 768) => "gpt2-124M".to_string(),
        ("classic", 24, 1024) => "gpt2-335M".to_string(),
        _ => format!("{style}-{layers}x{width}"),
    };
    let padded = run
        .get(&["data", "loss_on_padding"])
        .and_then(toml::Value::as_bool)
        .unwrap_or(false);
    let loss = if padded { PADDED } else { "pads-masked" };
    // the experiment: the spec name without its optimizer (`table6-gpt2-124m-sisa`)
    let spec_name = super::tables::spec_name(run)?;
    let optimizer = run.text(&["optimizer", "name"]).unwrap_or_default();
    let experiment = spec_name
        .strip_suffix(&format!("-{optimizer}"))
        .unwrap_or(&spec_name)
        .to_string();
    Ok((vec![experiment, name, loss.into()], (0, layers * width)))
}

/// The paper's value of a row, optimizer, metric (0 loss, 1 similarity) and epoch index.
fn paper(key: &[String], optimizer: &str, metric: usize, epoch: usize) -> Option<PaperValue> {
    if key[2] != PADDED {
        return None;
    }
    PAPER
        .iter()
        .find(|(model, o, _, _)| *model == key[1] && *o == optimizer)
        .map(|(_, _, loss, similarity)| ([loss, similarity][metric][epoch], None))
}

/// A run's `metric` after epoch `epoch` (its last row of that epoch), NaN if absent.
fn at_epoch(run: &Run, metric: &str, epoch: usize) -> Result<f64> {
    let epochs = run.column("epoch")?;
    let values = run.column(metric)?;
    Ok(epochs
        .iter()
        .zip(values)
        .filter(|(e, _)| **e == epoch as f64)
        .map(|(_, v)| v)
        .next_back()
        .unwrap_or(f64::NAN))
}

/// Writes `table6.csv` and `table6.md` into `dir` from the runs under it; nothing when
/// none belongs to Table 6.
pub fn write(dir: &Path) -> Result<Vec<PathBuf>> {
    if runs_of(dir, TABLE.name)?.is_empty() {
        return Ok(vec![]);
    }
    let mut csv =
        String::from("experiment,model,loss,algorithm,metric,epoch,seeds,mean,std,paper\n");
    let mut md = String::from(
        "Table 6: test loss (mean per-token cross-entropy over the test recipes) and semantic \
         similarity (mean BERTScore F1 of generated against reference instructions, %) after \
         epochs 2, 5 and 15, mean ± std over seeds (n = seeds), the paper's value in brackets \
         where the run follows its protocol (GPT-2 weights, padding counted in the loss).\n\n\
         | experiment | model | loss | optimizer | n | test loss 2 | 5 | 15 | similarity 2 | 5 | 15 |\n\
         |---|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let metrics = ["test_loss", "similarity"];
    for ((_, key), by_optimizer) in &super::tables::cells(&TABLE, dir)? {
        let mut optimizers: Vec<_> = by_optimizer.iter().collect();
        optimizers.sort_by_key(|(o, _)| OPTIMIZERS.iter().position(|a| a == o).unwrap_or(9));
        for (optimizer, variant) in optimizers {
            let _ = write!(
                md,
                "| {} | {} | {} | {optimizer} | {} |",
                key[0],
                key[1],
                key[2],
                variant.runs.len()
            );
            for (m, metric) in metrics.iter().enumerate() {
                for (e, &epoch) in EPOCHS.iter().enumerate() {
                    let values = variant
                        .runs
                        .iter()
                        .map(|run| at_epoch(run, metric, epoch))
                        .collect::<Result<Vec<_>>>()?;
                    let reference = paper(key, optimizer, m, e);
                    let shown = reference.map_or(String::new(), |(p, _)| format!(" [{p:.2}]"));
                    let given: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
                    let (mean, std) = mean_std(&given);
                    let cell = match given.len() {
                        0 => "–".to_string(),
                        _ => format!("{mean:.2} ± {std:.2}"),
                    };
                    let _ = write!(md, " {cell}{shown} |");
                    let _ = writeln!(
                        csv,
                        "{},{},{},{optimizer},{metric},{epoch},{},{mean},{std},{}",
                        key[0],
                        key[1],
                        key[2],
                        given.len(),
                        reference.map_or(String::new(), |(p, _)| p.to_string())
                    );
                }
            }
            md.push('\n');
        }
    }
    let (csv_file, md_file) = (dir.join("table6.csv"), dir.join("table6.md"));
    crate::results::write_atomic(&csv_file, csv.as_bytes())?;
    crate::results::write_atomic(&md_file, md.as_bytes())?;
    Ok(vec![csv_file, md_file])
}

/// Figure 6: training and test loss per epoch.
pub const FIGURE6: super::by_optimizer::ByOptimizer = super::by_optimizer::ByOptimizer {
    name: "figure6",
    title: "Figure 6",
    table: &TABLE,
    ys: &["train_loss", "test_loss"],
    xs: &["epoch"],
};
