//! `checkpoint.safetensors`: what a run needs to continue exactly where it stopped —
//! the loop's position, the optimizer's state (w included) and the task's sampling state.
//! Written atomically every `train.checkpoint_every` iterations and at the end.
use crate::optim::Optimizer;
use crate::tasks::Task;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Tensor};

pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";

/// A checkpoint read back.
pub struct Checkpoint {
    /// Iterations done when it was written.
    pub iteration: usize,
    /// Training seconds spent until then.
    pub wall_s: f64,
    pub optimizer: HashMap<String, Tensor>,
    pub task: HashMap<String, Tensor>,
}

/// Saves the state after `iteration` iterations to `path` (temporary file, then rename).
pub fn save(
    path: &Path,
    iteration: usize,
    wall_s: f64,
    optimizer: &dyn Optimizer,
    task: &dyn Task,
) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = vec![
        ("loop.iteration".into(), Tensor::from(iteration as i64)),
        ("loop.wall_s".into(), Tensor::from(wall_s)),
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
    named.extend(prefixed("optimizer", optimizer.state()));
    named.extend(prefixed("task", task.state()));
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".{CHECKPOINT_FILE}.tmp-{}", std::process::id()));
    Tensor::write_safetensors(&named, &tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

pub fn load(path: &Path) -> Result<Checkpoint> {
    let named = Tensor::read_safetensors(path)
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let mut optimizer = HashMap::new();
    let mut task = HashMap::new();
    let mut iteration = None;
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
        }
    }
    Ok(Checkpoint {
        iteration: iteration
            .with_context(|| format!("{} is not a pisa checkpoint", path.display()))?,
        wall_s,
        optimizer,
        task,
    })
}
