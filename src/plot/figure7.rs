//! Figure 7 of the paper (pisa.md A.5): the test return of PPO and A2C on four MuJoCo
//! environments against environment steps, a curve per optimizer with its seed band, one
//! figure per environment, from every completed run whose `[plot]` says
//! `table = "figure7"` (experiments/figure7/); beside it, the final test return per
//! optimizer as a table. The paper prints Figure 7 as curves only (its text gives no
//! returns), so the table has no paper values.
use super::tables::{PaperValue, RowKey, Run, Table};
use anyhow::{Context, Result};

/// The optimizers in the legend's order: SISA, PPO's Adam, A2C's RMSprop (the paper's
/// "A2C-Adam" where a spec names adam).
pub const OPTIMIZERS: [&str; 3] = ["sisa", "adam", "rmsprop"];

/// The environments in the figure's order.
const ENVS: [&str; 4] = [
    "Ant-v4",
    "Humanoid-v4",
    "HalfCheetah-v4",
    "InvertedDoublePendulum-v4",
];

pub const TABLE: Table = Table {
    name: "figure7",
    caption: "Test return of the final policy (the mean of rl.test_envs episodes), mean ± std \
              over seeds (n = seeds). The paper draws Figure 7 as curves only. Runs shorter \
              than the paper's 3,072,000 steps say so in their env_steps.",
    row_header: &["env", "agent", "steps"],
    columns: &OPTIMIZERS,
    row,
    value: |run| run.last("test_return"),
    paper,
    variants: None,
    decimals: 1,
};

/// (environment, algorithm, steps of the run) of a run, in the figure's order.
fn row(run: &Run) -> Result<RowKey> {
    let text = |key: &str| {
        run.text(&["rl", key])
            .with_context(|| format!("{}: Figure 7 runs need rl.{key}", run.dir.display()))
    };
    let env = text("env")?;
    let steps = run.last("env_steps")?;
    let rank = ENVS.iter().position(|e| *e == env).unwrap_or(ENVS.len());
    Ok((
        // Cells name the figures' files: no spaces, no dots.
        vec![
            env,
            text("algorithm")?.to_uppercase(),
            format!("{}-steps", steps as u64),
        ],
        (rank, steps as i64),
    ))
}

fn paper(_row: &[String], _column: usize) -> Option<PaperValue> {
    None
}

/// Figure 7: test return against environment steps.
pub const FIGURE7: super::by_optimizer::ByOptimizer = super::by_optimizer::ByOptimizer {
    name: "figure7",
    title: "Figure 7",
    table: &TABLE,
    ys: &["test_return"],
    xs: &["env_steps"],
};
