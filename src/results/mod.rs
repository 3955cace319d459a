//! Run folders: `<out>/<name>/<run-id>/` with `spec.toml`, `metrics.csv` and
//! `summary.json`. A run is written into a hidden staging folder beside its final place
//! and renamed into place when it ends, so a folder that exists is whole.
pub mod checkpoint;
mod lock;
mod metrics;
mod summary;

use lock::RunLock;

pub use metrics::MetricsWriter;
pub use summary::{Provenance, Status, Summary};

use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

pub const SPEC_FILE: &str = "spec.toml";
pub const METRICS_FILE: &str = "metrics.csv";
pub const SUMMARY_FILE: &str = "summary.json";

/// A run being written.
pub struct RunDir {
    final_path: PathBuf,
    staging: PathBuf,
    /// Whether the staging folder was taken over from an interrupted run.
    resumed: bool,
    /// No other process works on this run id meanwhile; None for a rank but 0 of a run
    /// over ranks, which writes nothing ([`RunDir::share`]).
    lock: Option<RunLock>,
}

/// What is already at a run's final place.
#[derive(Debug, Clone, PartialEq)]
pub enum Existing {
    None,
    /// A finished run (completed or diverged): never overwritten.
    Finished(Summary),
    /// A failed or interrupted run: may be replaced by a new attempt (or an interrupted
    /// one continued with `--resume`).
    Unfinished(Summary),
}

/// Reads the summary of the run at `path`, if any.
pub fn existing(path: &Path) -> Result<Existing> {
    let file = path.join(SUMMARY_FILE);
    if !file.exists() {
        if path.exists() {
            bail!(
                "{} exists but is not a pisa run (no {SUMMARY_FILE}); move it away",
                path.display()
            );
        }
        return Ok(Existing::None);
    }
    let summary = Summary::read(&file)?;
    Ok(match summary.status {
        Status::Failed | Status::Interrupted => Existing::Unfinished(summary),
        Status::Completed | Status::Diverged => Existing::Finished(summary),
    })
}

impl RunDir {
    /// Prepares a staging folder for the run that will live at `final_path`, after taking
    /// its lock and removing what dead processes left of it. Refuses if a finished run is
    /// there already.
    pub fn create(final_path: &Path) -> Result<Self> {
        Self::open(final_path, false)
    }

    /// Continues an unfinished run of `final_path` if it left a checkpoint: one stopped by
    /// a signal or a failed write (status "interrupted" or "failed" in place) or one killed
    /// (the staging folder of a dead process); otherwise as [`RunDir::create`].
    pub fn resume(final_path: &Path) -> Result<Self> {
        Self::open(final_path, true)
    }

    fn open(final_path: &Path, resume: bool) -> Result<Self> {
        let parent = final_path.parent().context("run folder has no parent")?;
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let lock = RunLock::take(final_path)?;
        let existing = existing(final_path)?;
        if let Existing::Finished(s) = &existing {
            bail!(
                "{} already holds a {} run; delete it or choose another --run-id / --out",
                final_path.display(),
                s.status
            );
        }
        let staging = parent.join(format!(
            "{}{}",
            staging_prefix(final_path)?,
            std::process::id()
        ));
        let has_checkpoint = |p: &Path| p.join(checkpoint::CHECKPOINT_FILE).is_file();
        let unfinished = matches!(existing, Existing::Unfinished(_)) && has_checkpoint(final_path);
        let mut stale = stale_staging(final_path)?;
        let killed = stale.iter().position(|p| has_checkpoint(p));
        let taken = match (resume, unfinished, killed) {
            (true, true, _) => Some(final_path.to_path_buf()),
            (true, false, Some(i)) => Some(stale.remove(i)),
            _ => None,
        };
        remove_dirs(&stale)?;
        match &taken {
            Some(old) => {
                fs::rename(old, &staging)
                    .with_context(|| format!("cannot take over {}", old.display()))?;
                remove_temporaries(&staging)?;
                // An interrupted run's summary is rewritten when it ends.
                let _ = fs::remove_file(staging.join(SUMMARY_FILE));
            }
            None => fs::create_dir(&staging)
                .with_context(|| format!("cannot create {}", staging.display()))?,
        }
        Ok(Self {
            final_path: final_path.to_path_buf(),
            staging,
            resumed: taken.is_some(),
            lock: Some(lock),
        })
    }

    /// Collective over ranks: rank 0's folder (`Some`, made by `create` or `resume`), known
    /// to every rank; the others' copy only reads its checkpoint, and `finish` leaves it
    /// to rank 0.
    pub fn share(dir: Option<Self>) -> Result<Self> {
        let comm = crate::dist::world();
        let mut bytes = match &dir {
            Some(d) => serde_json::to_vec(&(&d.final_path, &d.staging, d.resumed))?,
            None => vec![],
        };
        comm.broadcast(&mut bytes);
        if let Some(dir) = dir {
            return Ok(dir);
        }
        let (final_path, staging, resumed) =
            serde_json::from_slice(&bytes).context("receiving the run folder from rank 0")?;
        Ok(Self {
            final_path,
            staging,
            resumed,
            lock: None,
        })
    }

    /// Whether this process writes the run (rank 0, or the only process).
    pub fn writes(&self) -> bool {
        self.lock.is_some()
    }

    /// Whether this run continues an interrupted one (its files are already there).
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Path of `file` inside the staging folder.
    pub fn file(&self, file: &str) -> PathBuf {
        self.staging.join(file)
    }

    /// Writes the summary and moves the run into place (replacing a failed attempt). No
    /// temporary file of a write cut short is carried into place.
    pub fn finish(self, summary: &Summary) -> Result<PathBuf> {
        if !self.writes() {
            return Ok(self.final_path.clone());
        }
        remove_temporaries(&self.staging)?;
        summary
            .write(&self.file(SUMMARY_FILE))
            .context("writing the run's summary")?;
        if let Existing::Unfinished(_) = existing(&self.final_path)? {
            fs::remove_dir_all(&self.final_path).with_context(|| {
                format!(
                    "cannot remove the earlier attempt {}",
                    self.final_path.display()
                )
            })?;
        }
        fs::rename(&self.staging, &self.final_path).with_context(|| {
            format!(
                "cannot move {} to {}",
                self.staging.display(),
                self.final_path.display()
            )
        })?;
        Ok(self.final_path.clone())
    }
}

/// The staging folders of the run at `final_path` whose process is gone (killed runs),
/// newest first.
fn stale_staging(final_path: &Path) -> Result<Vec<PathBuf>> {
    let parent = final_path.parent().context("run folder has no parent")?;
    let prefix = staging_prefix(final_path)?;
    let mut stale: Vec<PathBuf> = fs::read_dir(parent)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(&prefix))
                .is_some_and(|pid| !process_alive(pid))
        })
        .collect();
    stale.sort_by_key(|p| std::cmp::Reverse(modified(p)));
    Ok(stale)
}

/// Removes what killed processes left of the run at `final_path` (a finished run's
/// leftovers, which nothing will resume).
pub fn remove_stale_staging(final_path: &Path) -> Result<()> {
    remove_dirs(&stale_staging(final_path)?)
}

fn remove_dirs(dirs: &[PathBuf]) -> Result<()> {
    for dir in dirs {
        fs::remove_dir_all(dir)
            .with_context(|| format!("cannot remove the stale {}", dir.display()))?;
    }
    Ok(())
}

/// Removes the `.<file>.tmp-<pid>` files of atomic writes that did not finish.
fn remove_temporaries(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".tmp-") {
            fs::remove_file(entry.path())
                .with_context(|| format!("cannot remove {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// `.<run-id>.partial-`: the staging folders' names, before the pid of their process.
fn staging_prefix(final_path: &Path) -> Result<String> {
    let leaf = final_path.file_name().context("run folder has no name")?;
    Ok(format!(".{}.partial-", leaf.to_string_lossy()))
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Whether the process `pid` (as written in a staging folder's name) still runs.
fn process_alive(pid: &str) -> bool {
    pid.parse::<u32>()
        .is_ok_and(|p| Path::new(&format!("/proc/{p}")).exists())
}

/// Writes `contents` to `path` atomically (temporary file in the same folder, then rename).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    write_atomic_with(path, |tmp| Ok(fs::write(tmp, contents)?))
}

/// Writes `path` atomically through `write`, which fills the temporary file it is given:
/// on any failure (a full disk) the temporary file is removed and `path` is untouched.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().context("no file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = write(&tmp).and_then(|()| Ok(fs::rename(&tmp, path)?));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.with_context(|| format!("cannot write {}", path.display()))
}
