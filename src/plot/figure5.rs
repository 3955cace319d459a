//! Figure 5 of the paper (pisa.md A.3): the training loss over epochs of ViT-B/16,
//! AlexNet, ResNet-18 and DenseNet-121 on ImageNet with SISA, Adam, AdamW, AdaBelief, LAMB
//! and SGD-M (experiments/figure5/, `[plot] table = "figure5"`). The paper draws curves
//! only; `figure5.{csv,md}` gives their end points, the training loss after the last
//! epoch, mean ± std over seeds.
use super::by_optimizer::ByOptimizer;
use super::table3::model_and_dataset;
use super::tables::{RowKey, Run, Table};
use anyhow::Result;

/// The optimizers in the order of the paper's legend (SISA first).
pub const ALGORITHMS: [&str; 6] = ["sisa", "adam", "adamw", "adabelief", "lamb", "sgd"];

/// The networks in the paper's panel order.
pub const MODELS: [&str; 4] = [
    "vit_b_16",
    "alexnet",
    "resnet18_imagenet",
    "densenet121_imagenet",
];

/// Figure 5's end points for [`super::tables::write`].
pub const TABLE: Table = Table {
    name: "figure5",
    caption: "Training loss after the last epoch (the end of each Figure 5 curve), mean ± std \
              over seeds (n = seeds). The paper prints no values for Figure 5.",
    row_header: &["model", "dataset"],
    columns: &ALGORITHMS,
    row,
    value: last_train_loss,
    paper: |_, _| None,
    variants: None,
    decimals: 4,
};

/// Figure 5: a figure per (model, dataset), the training loss of each optimizer.
pub const FIGURE5: ByOptimizer = ByOptimizer {
    name: "figure5",
    title: "Figure 5",
    table: &TABLE,
    ys: &["train_loss"],
    xs: &["epoch"],
};

/// (model, dataset) of a Figure 5 run, ranked in the paper's panel order, others last.
fn row(run: &Run) -> Result<RowKey> {
    let (model, dataset) = model_and_dataset(run)?;
    let rank = MODELS
        .iter()
        .position(|m| *m == model)
        .unwrap_or(MODELS.len());
    Ok((vec![model, dataset], (rank, 0)))
}

fn last_train_loss(run: &Run) -> Result<f64> {
    run.last("train_loss")
}
