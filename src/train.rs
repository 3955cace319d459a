//! The one training loop every task shares (DESIGN-NOTES "The one loop").
use crate::dist;
use crate::optim::team::Team;
use crate::results::checkpoint;
use crate::results::MetricsWriter;
use crate::schedule::Clock;
use crate::spec::Every;
use crate::tasks::{Local, Task};
use anyhow::Result;
use indicatif::ProgressBar;
use std::path::PathBuf;
use std::time::Instant;

/// How long to train, when to evaluate and checkpoint, and where a resumed run starts.
pub struct Plan {
    pub iterations: usize,
    /// Where epochs end: the metrics' `epoch` column, and cadences of "epoch".
    pub clock: Clock,
    pub eval_every: Every,
    /// Write a checkpoint at this cadence and at the end; 0 iterations = never.
    pub checkpoint_every: Every,
    /// Rescale each worker's gradient to at most this Euclidean norm (`train.clip_norm`).
    pub clip_norm: Option<f64>,
    pub checkpoint: PathBuf,
    /// Iterations already done (a resumed run), and the training seconds they took.
    pub start: usize,
    pub wall_offset: f64,
}

/// How the loop ended.
pub struct LoopEnd {
    pub iterations: usize,
    /// The last metrics row (task columns, then wall_s).
    pub last: Vec<f64>,
    pub wall_s: f64,
    /// Why the run diverged, if it did.
    pub diverged: Option<String>,
    /// A signal stopped it (after a whole iteration, with a checkpoint).
    pub interrupted: bool,
}

/// Runs the iterations of `plan`: in each, the turns of the task's players (one for most
/// tasks), each turn every worker's gradient at the player's broadcast point and its local
/// update; then evaluation every `eval_every` iterations (and at the end).
/// Row 0 is the initial point; row ℓ is the global point after ℓ iterations. A global
/// point that is not finite stops the run at once as diverged. A signal
/// ([`crate::interrupt`]) stops it after the current iteration, with a checkpoint.
///
/// Over ranks ([`crate::dist`]) each rank runs its own workers; rank 0 alone evaluates and
/// writes (`metrics` is None elsewhere), and its decisions to stop are every rank's.
pub fn train(
    task: &mut dyn Task,
    team: &mut Team,
    plan: &Plan,
    mut metrics: Option<&mut MetricsWriter>,
    bar: &ProgressBar,
) -> Result<LoopEnd> {
    // wall_s counts training only, as the paper's scripts time it: the seconds spent
    // evaluating and checkpointing are left out.
    let start = Instant::now();
    let excluded = std::cell::Cell::new(0.0);
    let elapsed = || plan.wall_offset + start.elapsed().as_secs_f64() - excluded.get();
    let aside = |since: Instant| excluded.set(excluded.get() + since.elapsed().as_secs_f64());
    let mut last = vec![];
    let mut diverged = None;
    if plan.start == 0 {
        let at = Instant::now();
        (last, diverged) = record(task, team, metrics.as_deref_mut(), plan, 0, elapsed())?;
        aside(at);
    }
    let mut done = plan.start;
    let mut interrupted = false;
    bar.set_position(done as u64);
    while done < plan.iterations && diverged.is_none() && !interrupted {
        task.begin_iteration(done)?;
        let players = task.turns(done);
        for &player in &players {
            turn(task, team, player, plan.clip_norm)?;
        }
        if task.restarts(done) {
            players.into_iter().for_each(|p| team.restart(p));
        }
        done += 1;
        if !bool::try_from(team.point().isfinite().all())? {
            diverged = Some(format!(
                "the parameters are not finite after iteration {done}; {}",
                team.divergence_advice()
            ));
        }
        if plan.eval_every.due(done, &plan.clock) || done == plan.iterations || diverged.is_some() {
            let at = Instant::now();
            let (values, bad) = record(task, team, metrics.as_deref_mut(), plan, done, elapsed())?;
            aside(at);
            last = values;
            diverged = diverged.or(bad.map(|b| format!("{b}; {}", team.divergence_advice())));
        }
        interrupted = dist::agree(crate::interrupt::requested()) && done < plan.iterations;
        let due = plan.checkpoint_every != Every::Iterations(0)
            && (plan.checkpoint_every.due(done, &plan.clock) || done == plan.iterations);
        if (due || interrupted) && diverged.is_none() {
            // The checkpoint covers exactly the metrics bytes written so far.
            let at = Instant::now();
            let metrics_bytes = metrics.as_deref_mut().map_or(Ok(0), MetricsWriter::flush)?;
            let state = checkpoint::Position {
                iteration: done,
                wall_s: elapsed(),
                metrics_bytes,
            };
            checkpoint::save(&plan.checkpoint, &state, team, task)?;
            aside(at);
        }
        bar.inc(1);
    }
    let wall_s = elapsed();
    last.push(wall_s);
    Ok(LoopEnd {
        iterations: done,
        last,
        wall_s,
        diverged,
        interrupted,
    })
}

/// Player `player`'s turn: its optimizer's iteration over the m workers, each worker's
/// gradient oracle at the player's point (the other players' parts held where
/// `begin_turn` found them).
fn turn(task: &mut dyn Task, team: &mut Team, player: usize, clip_norm: Option<f64>) -> Result<()> {
    task.begin_turn(player, team.point())?;
    team.begin(player);
    let workers = team.members()[player].player.alphas.len();
    let optimizer = team.optimizer(player);
    let hessian = optimizer.needs_hessian();
    for worker in dist::workers(workers) {
        optimizer.local_round(worker, &mut |w| {
            let local = task.local(worker, w, hessian)?;
            Ok(clip(local, clip_norm))
        })?;
    }
    team.end(player);
    Ok(())
}

/// Evaluates the global point, writes the metrics row (the task's metrics, then what the
/// optimizers report: [`Team::report`]), and says why the run diverged if a task metric
/// is not finite. Without `metrics` (a rank but 0) it evaluates nothing and learns from
/// rank 0 whether the run diverged; every rank first adds its workers' part of the row
/// ([`Task::sum_row_over_ranks`]).
fn record(
    task: &mut dyn Task,
    team: &Team,
    metrics: Option<&mut MetricsWriter>,
    plan: &Plan,
    iteration: usize,
    wall_s: f64,
) -> Result<(Vec<f64>, Option<String>)> {
    task.sum_row_over_ranks()?;
    let Some(metrics) = metrics else {
        let diverged = dist::agree(false)
            .then(|| format!("rank 0 found a metric not finite at iteration {iteration}"));
        return Ok((vec![], diverged));
    };
    let mut values = task.evaluate(team.point())?;
    values.extend(team.report().into_iter().map(|(_, v)| v));
    let epoch = plan.clock.epoch_at(iteration);
    metrics.row(epoch, iteration, &values, wall_s)?;
    let bad = task
        .metric_names()
        .iter()
        .zip(&values)
        .filter(|(name, _)| !task.occasional_metrics().contains(name))
        .find(|(_, v)| !v.is_finite());
    let diverged = bad.map(|(name, v)| format!("{name} is {v} at iteration {iteration}"));
    dist::agree(diverged.is_some());
    Ok((values, diverged))
}

/// The worker's gradient rescaled to norm at most `max` (torch's `clip_grad_norm_` over all
/// parameters: g · min(1, max/(‖g‖ + 1e-6))).
fn clip(mut local: Local, max: Option<f64>) -> Local {
    if let Some(max) = max {
        clip_grad_norm(&mut local.grad, max);
    }
    local
}

/// torch's `clip_grad_norm_` on one flat gradient, in place: g · min(1, max/(‖g‖ + 1e-6)).
pub fn clip_grad_norm(grad: &mut tch::Tensor, max: f64) {
    let factor = max / (grad.norm().double_value(&[]) + 1e-6);
    if factor < 1.0 {
        let _ = grad.g_mul_scalar_(factor);
    }
}
