//! An experiment: a validated spec made into a task and an optimizer, run into a
//! results folder.
use crate::data::{self, least_squares::Problem};
use crate::optim::{self, Optimizer};
use crate::results::{MetricsWriter, RunDir, Status, Summary, METRICS_FILE, SPEC_FILE};
use crate::spec::{DataKind, Spec};
use crate::tasks::{least_squares::LeastSquares, Task};
use anyhow::{ensure, Context, Result};
use indicatif::ProgressBar;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Everything a run needs, built and checked before anything is written.
pub struct Experiment {
    pub spec: Spec,
    task: Box<dyn Task>,
    optimizer: Box<dyn Optimizer>,
}

impl Experiment {
    /// Loads the data and builds the task and optimizer. Errors here (a missing data file,
    /// a wrong shape, an unavailable device) leave no trace on disk.
    pub fn prepare(spec: &Spec, data_dir: &Path) -> Result<Self> {
        let spec = spec.resolved();
        let device = spec.train.device()?;
        if let tch::Device::Cuda(n) = device {
            ensure!(
                tch::Cuda::is_available() && (n as i64) < tch::Cuda::device_count(),
                "train.device = {:?} but no such CUDA device is available",
                spec.train.device
            );
        }
        tch::manual_seed(spec.seed as i64);
        let task: Box<dyn Task> = match spec.data.kind {
            DataKind::LeastSquares => {
                let problem = match (&spec.data.path, spec.data.samples, spec.data.dim) {
                    (Some(path), _, _) => {
                        let file = data::locate(
                            path,
                            data_dir,
                            "an .npz file with arrays A (N x d) and b (N)",
                        )?;
                        Problem::read_npz(&file)?
                    }
                    (None, Some(n), Some(d)) => Problem::generate(
                        n,
                        d,
                        spec.train.workers,
                        spec.data
                            .noise
                            .unwrap_or(data::least_squares::DEFAULT_NOISE),
                        spec.seed,
                    ),
                    _ => unreachable!("validated: path or samples and dim"),
                };
                Box::new(LeastSquares::new(
                    problem,
                    spec.train.workers,
                    spec.train.batch_size,
                    // μ of (2.2) enters the reported objective; baselines have none.
                    spec.optimizer.hypers.get("mu").and_then(|v| v.as_float()).unwrap_or(0.0),
                    spec.seed,
                    spec.train.dtype.kind(),
                    device,
                )?)
            }
        };
        let w0 = task.initial_point();
        let layout = task.layout();
        let optimizer = optim::registry::build(
            &spec.optimizer,
            &optim::registry::Context {
                w0: &w0,
                layout: &layout,
                alphas: task.alphas(),
                schedule: &crate::schedule::Schedule::default(),
            },
        )?;
        Ok(Self {
            spec,
            task,
            optimizer,
        })
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
        crate::results::write_atomic(&run_dir.file(SPEC_FILE), self.spec.to_toml().as_bytes())?;
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
            k0: self
                .spec
                .optimizer
                .resolve("optimizer")
                .ok()
                .filter(|h| h.get("k0").is_some())
                .map(|h| optim::admm::k0(&h)),
            state_numel: self.optimizer.state_numel(),
            device: self.spec.train.device.clone(),
            pisa_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        match self.train(&run_dir, bar) {
            Ok(end) => {
                let mut names: Vec<String> = self
                    .task
                    .metric_names()
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                names.push("wall_s".into());
                summary.last = names.into_iter().zip(end.last).collect();
                summary.iterations = end.iterations;
                summary.wall_s = end.wall_s;
                summary.status = if end.diverged.is_some() {
                    Status::Diverged
                } else {
                    Status::Completed
                };
                summary.error = end.diverged;
            }
            Err(e) => summary.error = Some(format!("{e:#}")),
        }
        let path = run_dir.finish(&summary)?;
        Ok((summary, path))
    }

    fn train(&mut self, run_dir: &RunDir, bar: &ProgressBar) -> Result<crate::train::LoopEnd> {
        let t = &self.spec.train;
        let mut metrics =
            MetricsWriter::create(&run_dir.file(METRICS_FILE), self.task.metric_names())?;
        let end = crate::train::train(
            self.task.as_mut(),
            self.optimizer.as_mut(),
            t.iterations,
            t.eval_every,
            &mut metrics,
            bar,
        )
        .context("training stopped")?;
        metrics.finish()?;
        Ok(end)
    }
}
