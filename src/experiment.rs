//! An experiment: a validated spec made into a task and an optimizer, run into a
//! results folder.
use crate::optim;
use crate::optim::team::{Member, Team};
use crate::results::checkpoint::{self, CHECKPOINT_FILE};
use crate::results::{MetricsWriter, Provenance, RunDir, Status, Summary, METRICS_FILE, SPEC_FILE};
use crate::schedule::Clock;
use crate::spec::{Spec, TrainSpec};
use crate::tasks::Task;
use anyhow::{ensure, Context, Result};
use indicatif::ProgressBar;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Everything a run needs, built and checked before anything is written.
pub struct Experiment {
    pub spec: Spec,
    task: Box<dyn Task>,
    /// The players' optimizers (one for every task but the GAN).
    team: Team,
    k0: Option<usize>,
    /// The run's length ℓ_max, and where its epochs end.
    iterations: usize,
    clock: Clock,
    /// Files describing how the task was made (a federated partition), written into the run.
    artifacts: Vec<(&'static str, Vec<u8>)>,
}

impl Experiment {
    /// Loads the data and builds the task and optimizer. Errors here (a missing data file,
    /// a wrong shape, an unavailable device) leave no trace on disk.
    pub fn prepare(spec: &Spec, data_dir: &Path) -> Result<Self> {
        let spec = spec.resolved();
        // A missing dataset first: its message says how to get it.
        let data = crate::tasks::from_spec::locate_data(&spec, data_dir)?;
        let device = crate::dist::device(spec.train.device()?, &spec.train.device);
        if let tch::Device::Cuda(n) = device {
            ensure!(
                tch::Cuda::is_available() && (n as i64) < tch::Cuda::device_count(),
                "train.device = {:?} but no such CUDA device is available",
                spec.train.device
            );
        }
        // Under the lock, so that reseeding cannot land inside a concurrent seeded build.
        crate::models::seeded(spec.seed, || ());
        let crate::tasks::from_spec::Built { task, artifacts } =
            crate::tasks::from_spec::build(&spec, data_dir, data.as_deref(), device)?;
        let w0 = task.initial_point();
        // n of Table 5, for epoch-based schedules.
        let iterations_per_epoch = task.iterations_per_epoch();
        let clock = clock(task.as_ref(), &spec.train)?;
        let iterations = spec.train.length(&clock)?;
        let mut schedule = match &spec.schedule {
            Some(s) => s.build(iterations, &clock)?,
            None => crate::schedule::Schedule::default(),
        };
        schedule.scale = task.step_scales(iterations).map(Into::into);
        let players = task.players();
        let names: Vec<&str> = players.iter().map(|p| p.name).collect();
        let mut members = vec![];
        let mut k0 = None;
        for player in players {
            // A player's optimizer counts its own turns.
            let turns = match names.len() {
                1 => iterations,
                _ => (0..iterations)
                    .map(|l| {
                        task.turns(l)
                            .iter()
                            .filter(|&&p| names[p] == player.name)
                            .count()
                    })
                    .sum(),
            };
            let part = w0.narrow(0, player.offset, player.layout.numel());
            let context = optim::registry::Context {
                w0: &part,
                layout: &player.layout,
                alphas: &player.alphas,
                schedule: &schedule,
                iterations: turns,
                iterations_per_epoch,
            };
            let own = spec.optimizer.for_player(player.name, &names);
            let optimizer = match &spec.protocol {
                Some(protocol) => {
                    let protocol = protocol
                        .protocol()
                        .map_err(|(_, msg)| anyhow::anyhow!(msg))?;
                    optim::decentralised::build(&own, &context, protocol, spec.seed)?
                }
                None => optim::registry::build(&own, &context)?,
            };
            // The k0 in force, for the ADMM family (after "auto" and k0_epochs): the first
            // player's.
            let hypers = own
                .resolve("optimizer")
                .map_err(|(key, msg)| anyhow::anyhow!("{key}: {msg}"))?;
            if k0.is_none() && hypers.get("k0").is_some() {
                k0 = Some(optim::admm::sigma_schedule(&hypers, &context)?.k0());
            }
            members.push(Member { player, optimizer });
        }
        let team = Team::new(members);
        if crate::dist::distributed() {
            check_ranks(&spec, task.as_ref(), &team)?;
        }
        Ok(Self {
            spec,
            task,
            team,
            k0,
            iterations,
            clock,
            artifacts,
        })
    }

    /// The run's length in iterations (`train.epochs` × n when given in epochs).
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// The task, as built (at w⁰: `pisa init` writes its weights).
    pub fn task(&self) -> &dyn Task {
        self.task.as_ref()
    }

    /// Trains into `run_dir` and moves it into place. The run folder always ends up whole,
    /// with `summary.json` saying whether it completed, diverged or failed (and why).
    pub fn execute(
        mut self,
        run_dir: RunDir,
        run_id: &str,
        point: BTreeMap<String, serde_json::Value>,
        bar: &ProgressBar,
    ) -> Result<(Summary, PathBuf)> {
        let started_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let spec_text = self.spec.to_toml();
        if !run_dir.writes() {
            // another rank writes the run
        } else if run_dir.resumed() {
            let staged = std::fs::read_to_string(run_dir.file(SPEC_FILE)).unwrap_or_default();
            ensure!(
                staged == spec_text,
                "the interrupted run in {} was made from a different spec; run without --resume \
                 to start afresh",
                run_dir.file("").display()
            );
        } else {
            crate::results::write_atomic(&run_dir.file(SPEC_FILE), spec_text.as_bytes())?;
            for (name, contents) in &self.artifacts {
                crate::results::write_atomic(&run_dir.file(name), contents)?;
            }
        }
        let mut summary = Summary {
            name: self.spec.name.clone(),
            run_id: run_id.to_string(),
            status: Status::Failed,
            error: None,
            point,
            iterations: 0,
            last: BTreeMap::new(),
            wall_s: 0.0,
            started_unix,
            k0: self.k0,
            state_numel: self.team.state_numel(),
            device: self.spec.train.device.clone(),
            pisa_version: env!("CARGO_PKG_VERSION").to_string(),
            provenance: Some(Provenance::current(self.spec.train.device()?)),
        };
        // A panic (a libtorch error tch unwraps, such as an allocation that fails) still
        // ends in a whole run folder whose summary says what happened.
        let trained = crate::panics::caught("training", || self.train(&run_dir, bar));
        match trained {
            Ok(end) => {
                let mut names = self.columns();
                names.push("wall_s".into());
                summary.last = names.into_iter().zip(end.last).collect();
                summary.iterations = end.iterations;
                summary.wall_s = end.wall_s;
                summary.status = match (&end.diverged, end.interrupted) {
                    (Some(_), _) => Status::Diverged,
                    (None, true) => Status::Interrupted,
                    (None, false) => Status::Completed,
                };
                summary.error = end.diverged;
            }
            Err(e) => summary.error = Some(format!("{e:#}")),
        }
        let path = run_dir.finish(&summary)?;
        Ok((summary, path))
    }

    /// The metrics columns between `iteration` and `wall_s`: the task's, then the
    /// optimizers' report.
    fn columns(&self) -> Vec<String> {
        let task = self.task.metric_names().iter().map(|s| s.to_string());
        task.chain(self.team.report().into_iter().map(|(n, _)| n))
            .collect()
    }

    fn train(&mut self, run_dir: &RunDir, bar: &ProgressBar) -> Result<crate::train::LoopEnd> {
        let t = &self.spec.train;
        let checkpoint = run_dir.file(CHECKPOINT_FILE);
        let metrics_file = run_dir.file(METRICS_FILE);
        let (mut metrics, start, wall_offset) = if run_dir.resumed() {
            let saved = checkpoint::load(&checkpoint)?;
            let position = saved.position;
            self.team
                .load_state(&saved.optimizer)
                .context("restoring the optimizer from the checkpoint")?;
            self.task
                .load_state(&saved.task)
                .context("restoring the task from the checkpoint")?;
            let metrics = run_dir
                .writes()
                .then(|| MetricsWriter::resume(&metrics_file, position.metrics_bytes))
                .transpose()?;
            (metrics, position.iteration, position.wall_s)
        } else {
            let columns = self.columns();
            let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
            let metrics = run_dir
                .writes()
                .then(|| MetricsWriter::create(&metrics_file, &columns))
                .transpose()?;
            (metrics, 0, 0.0)
        };
        let plan = crate::train::Plan {
            iterations: self.iterations,
            clock: self.clock.clone(),
            eval_every: t.eval_every,
            checkpoint_every: t.checkpoint_every,
            clip_norm: t.clip_norm,
            checkpoint,
            start,
            wall_offset,
        };
        let end = crate::train::train(
            self.task.as_mut(),
            &mut self.team,
            &plan,
            metrics.as_mut(),
            bar,
        )
        .context("training stopped")?;
        if let Some(metrics) = metrics {
            metrics.finish()?;
        }
        if run_dir.writes() && end.diverged.is_none() && !end.interrupted {
            for (name, contents) in self.task.outputs(self.team.point())? {
                crate::results::write_atomic(&run_dir.file(name), &contents)?;
            }
        }
        Ok(end)
    }
}

/// Refuses what cannot yet run over ranks, naming the key: a task or a player's optimizer
/// whose workers' state is not split ([`Task::splits_over_ranks`],
/// [`optim::Optimizer::splits_over_ranks`]), workers that do not divide among the ranks.
fn check_ranks(spec: &Spec, task: &dyn Task, team: &Team) -> Result<()> {
    use crate::spec::KeyError;
    let ranks = crate::dist::world().size();
    let not_yet = |key: &str, what: String| {
        Err(KeyError::at(
            key,
            format!("{what} does not run over {ranks} MPI ranks yet; run it in one process"),
        ))
    };
    if !task.splits_over_ranks() {
        return not_yet("data.kind", format!("the {:?} task", spec.data.kind));
    }
    let players: Vec<&str> = team.members().iter().map(|m| m.player.name).collect();
    for member in team.members() {
        if member.optimizer.splits_over_ranks() {
            continue;
        }
        let name = spec.optimizer.for_player(member.player.name, &players).name;
        let key = match name == spec.optimizer.name {
            true => "optimizer.name".to_string(),
            false => format!("optimizer.{}.name", member.player.name),
        };
        return not_yet(&key, format!("optimizer {name:?}"));
    }
    crate::dist::check_split(spec.train.workers)
        .map_err(|e| KeyError::at("train.workers", e.to_string()))
}

/// Where the task's epochs end: every n iterations, or where the task's own epoch lengths
/// put them, drawn for `train.epochs` epochs or as many as `train.iterations` reach.
fn clock(task: &dyn Task, train: &TrainSpec) -> Result<Clock> {
    let n = task.iterations_per_epoch();
    let Some(mut lengths) = task.epoch_lengths(train.epochs.unwrap_or(1)) else {
        return Ok(Clock::fixed(n));
    };
    if let Some(iterations) = train.iterations {
        while lengths.iter().sum::<usize>() < iterations {
            lengths = task
                .epoch_lengths(2 * lengths.len())
                .expect("the task has epochs of their own lengths");
        }
    }
    Clock::from_lengths(n, &lengths)
}
