//! The one training loop every task shares (DESIGN-NOTES "The one loop").
use crate::optim::Optimizer;
use crate::results::MetricsWriter;
use crate::tasks::Task;
use anyhow::Result;
use indicatif::ProgressBar;
use std::time::Instant;

/// How the loop ended.
pub struct LoopEnd {
    pub iterations: usize,
    /// The last metrics row (task columns, then wall_s).
    pub last: Vec<f64>,
    pub wall_s: f64,
    /// Why the run diverged, if it did.
    pub diverged: Option<String>,
}

/// Runs `iterations` iterations: each worker's gradient at the broadcast global point,
/// its local update, then evaluation every `eval_every` iterations (and at the end).
/// Row 0 is the initial point; row ℓ is the global point after ℓ iterations.
pub fn train(
    task: &mut dyn Task,
    optimizer: &mut dyn Optimizer,
    iterations: usize,
    eval_every: usize,
    metrics: &mut MetricsWriter,
    bar: &ProgressBar,
) -> Result<LoopEnd> {
    let start = Instant::now();
    let workers = task.alphas().len();
    let (mut last, mut diverged) = record(task, metrics, 0, optimizer.params(), &start)?;
    let mut done = 0;
    while done < iterations && diverged.is_none() {
        optimizer.begin_iteration();
        let w = optimizer.params().shallow_clone();
        let hessian = optimizer.needs_hessian();
        for worker in 0..workers {
            let local = task.local(worker, &w, hessian)?;
            optimizer.local_update(worker, &local)?;
        }
        optimizer.end_iteration();
        done += 1;
        if done % eval_every == 0 || done == iterations {
            (last, diverged) = record(task, metrics, done, optimizer.params(), &start)?;
        }
        bar.inc(1);
    }
    let wall_s = start.elapsed().as_secs_f64();
    last.push(wall_s);
    Ok(LoopEnd {
        iterations: done,
        last,
        wall_s,
        diverged,
    })
}

/// Evaluates `w`, writes the metrics row, and says why the run diverged if a value is
/// not finite.
fn record(
    task: &dyn Task,
    metrics: &mut MetricsWriter,
    iteration: usize,
    w: &tch::Tensor,
    start: &Instant,
) -> Result<(Vec<f64>, Option<String>)> {
    let values = task.evaluate(w)?;
    metrics.row(iteration, &values, start.elapsed().as_secs_f64())?;
    let bad = task
        .metric_names()
        .iter()
        .zip(&values)
        .find(|(_, v)| !v.is_finite());
    let diverged = bad.map(|(name, v)| {
        format!(
            "{name} is {v} at iteration {iteration}: the iterates left the region where the \
             loss is well behaved; restart with a larger sigma0 (Appendix A.2)"
        )
    });
    Ok((values, diverged))
}
