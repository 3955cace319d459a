//! Figure 2 of the paper (pisa.md 5.3): GPT-2 validation loss against training tokens and
//! against wall-clock seconds, a curve per optimizer with its seed band, for each model,
//! from every completed run whose `[plot]` says `table = "figure2"`
//! (experiments/figure2/); beside it, the final validation loss per optimizer as a table.
//! The paper prints Figure 2 as curves only, so the table has no paper values; runs on
//! the Debian corpus (the reduced substitute) are rows of their own, their losses not
//! FineWeb's.
use super::tables::{PaperValue, RowKey, Run, Table};
use anyhow::{Context, Result};

/// The optimizers in the figure's legend order.
pub const OPTIMIZERS: [&str; 7] = [
    "nsisa",
    "sisa",
    "adamw",
    "muon",
    "shampoo",
    "soap",
    "adam_mini",
];

pub const TABLE: Table = Table {
    name: "figure2",
    caption: "Final validation loss (mean per-token cross-entropy over data.val_tokens), mean \
              ± std over seeds (n = seeds). The paper draws Figure 2 as curves only. Rows whose \
              data is not FineWeb (the Debian-corpus substitute) are not the paper's losses; \
              only the optimizers' order compares.",
    row_header: &["model", "data"],
    columns: &OPTIMIZERS,
    row,
    value: |run| run.last("val_loss"),
    paper,
    variants: None,
    decimals: 3,
};

/// (model, data) of a run: the preset (or "custom") with its layers × width and block
/// (`gpt2_nano-4x128-T128`), and the shards' folder.
fn row(run: &Run) -> Result<RowKey> {
    let int = |key: &str| {
        run.get(&["model", key])
            .and_then(toml::Value::as_integer)
            .with_context(|| format!("{}: Figure 2 runs need model.{key}", run.dir.display()))
    };
    let preset = run
        .text(&["model", "preset"])
        .unwrap_or_else(|| "custom".into());
    // It names the figures' files: no spaces.
    let model = format!(
        "{preset}-{}x{}-T{}",
        int("n_layer")?,
        int("n_embd")?,
        int("block_size")?
    );
    let data = run
        .text(&["data", "path"])
        .with_context(|| format!("{}: Figure 2 runs need data.path", run.dir.display()))?;
    let data = data.rsplit('/').find(|s| !s.is_empty()).unwrap_or(&data);
    let rank = int("n_layer")? * int("n_embd")?;
    Ok((vec![model, data.to_string()], (0, rank)))
}

fn paper(_row: &[String], _column: usize) -> Option<PaperValue> {
    None
}

/// Figure 2: validation loss against tokens and against wall-clock seconds.
pub const FIGURE2: super::by_optimizer::ByOptimizer = super::by_optimizer::ByOptimizer {
    name: "figure2",
    title: "Figure 2",
    table: &TABLE,
    ys: &["val_loss"],
    xs: &["tokens", "wall_s"],
};
