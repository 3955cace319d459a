//! `checkpoint.safetensors`: what a run needs to continue exactly where it stopped —
//! the loop's position, the optimizers' state (w included) and the task's sampling state.
//! Written atomically every `train.checkpoint_every` iterations and at the end; over ranks,
//! by rank 0, holding every rank's state ([`crate::dist::gather_state`]).
use crate::optim::team::Team;
use crate::tasks::Task;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Tensor};

pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// Where the loop stood when a checkpoint was written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    /// Iterations done.
    pub iteration: usize,
    /// Training seconds spent until then.
    pub wall_s: f64,
    /// The length of `metrics.csv` then: a resumed run cuts the file back to it, so a row
    /// torn by a kill never survives.
    pub metrics_bytes: u64,
}

/// A checkpoint read back.
pub struct Checkpoint {
    pub position: Position,
    pub optimizer: HashMap<String, Tensor>,
    pub task: HashMap<String, Tensor>,
}

/// Saves the state at `position` to `path` (temporary file, then rename; on failure the
/// previous checkpoint stays as it was). Collective over ranks: rank 0 writes.
pub fn save(path: &Path, position: &Position, team: &Team, task: &dyn Task) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = vec![
        (
            "loop.iteration".into(),
            Tensor::from(position.iteration as i64),
        ),
        ("loop.wall_s".into(), Tensor::from(position.wall_s)),
        (
            "loop.metrics_bytes".into(),
            Tensor::from(position.metrics_bytes as i64),
        ),
    ];
    let prefixed = |prefix: &str, state: Vec<(String, Tensor)>| {
        state
            .into_iter()
            .map(|(name, t)| {
                (
                    format!("{prefix}.{name}"),
                    t.to_device(Device::Cpu).contiguous(),
                )
            })
            .collect::<Vec<_>>()
    };
    named.extend(prefixed("optimizer", team.state()));
    named.extend(prefixed("task", task.state()));
    let named = crate::dist::gather_state(named)?;
    if crate::dist::world().rank() > 0 {
        return Ok(());
    }
    super::write_atomic_with(path, |tmp| Ok(Tensor::write_safetensors(&named, tmp)?))
        .context("writing the checkpoint")
}

/// Reads a checkpoint: over ranks, this rank's state.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let named = Tensor::read_safetensors(path)
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let named = crate::dist::own_state(named);
    let mut optimizer = HashMap::new();
    let mut task = HashMap::new();
    let mut iteration = None;
    let mut metrics_bytes = None;
    let mut wall_s = 0.0;
    for (name, t) in named {
        if let Some(rest) = name.strip_prefix("optimizer.") {
            optimizer.insert(rest.to_string(), t);
        } else if let Some(rest) = name.strip_prefix("task.") {
            task.insert(rest.to_string(), t);
        } else if name == "loop.iteration" {
            iteration = Some(t.int64_value(&[]) as usize);
        } else if name == "loop.wall_s" {
            wall_s = t.double_value(&[]);
        } else if name == "loop.metrics_bytes" {
            metrics_bytes = Some(t.int64_value(&[]) as u64);
        }
    }
    let not_ours = || {
        format!(
            "{} is not a checkpoint of this pisa version",
            path.display()
        )
    };
    Ok(Checkpoint {
        position: Position {
            iteration: iteration.with_context(not_ours)?,
            wall_s,
            metrics_bytes: metrics_bytes.with_context(not_ours)?,
        },
        optimizer,
        task,
    })
}
