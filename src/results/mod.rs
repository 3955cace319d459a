//! Run folders: `<out>/<name>/<run-id>/` with `spec.toml`, `metrics.csv` and
//! `summary.json`. A run is written into a hidden staging folder beside its final place
//! and renamed into place when it ends, so a folder that exists is whole.
pub mod checkpoint;
mod metrics;
mod summary;

pub use metrics::MetricsWriter;
pub use summary::{Status, Summary};

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
}

/// What is already at a run's final place.
#[derive(Debug, Clone, PartialEq)]
pub enum Existing {
    None,
    /// A finished run (completed or diverged): never overwritten.
    Finished(Summary),
    /// A failed run: may be replaced by a new attempt.
    Failed(Summary),
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
        Status::Failed => Existing::Failed(summary),
        Status::Completed | Status::Diverged => Existing::Finished(summary),
    })
}

impl RunDir {
    /// Prepares a staging folder for the run that will live at `final_path`. Refuses if a
    /// finished run is there already.
    pub fn create(final_path: &Path) -> Result<Self> {
        if let Existing::Finished(s) = existing(final_path)? {
            bail!(
                "{} already holds a {} run; delete it or choose another --run-id / --out",
                final_path.display(),
                s.status
            );
        }
        let parent = final_path.parent().context("run folder has no parent")?;
        let leaf = final_path.file_name().context("run folder has no name")?;
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let staging = parent.join(format!(
            ".{}.partial-{}",
            leaf.to_string_lossy(),
            std::process::id()
        ));
        if staging.exists() {
            fs::remove_dir_all(&staging)?;
        }
        fs::create_dir(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
        Ok(Self {
            final_path: final_path.to_path_buf(),
            staging,
            resumed: false,
        })
    }

    /// Takes over the staging folder of an interrupted run of `final_path` (its process
    /// gone, a checkpoint inside) if there is one; otherwise as [`RunDir::create`].
    pub fn resume(final_path: &Path) -> Result<Self> {
        let mut dir = Self::create(final_path)?;
        let parent = final_path.parent().context("run folder has no parent")?;
        let prefix = format!(
            ".{}.partial-",
            final_path
                .file_name()
                .context("run folder has no name")?
                .to_string_lossy()
        );
        let interrupted = fs::read_dir(parent)?.flatten().map(|e| e.path()).find(|p| {
            p != &dir.staging
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix(&prefix))
                    .is_some_and(|pid| !process_alive(pid))
                && p.join(checkpoint::CHECKPOINT_FILE).is_file()
        });
        if let Some(old) = interrupted {
            fs::remove_dir(&dir.staging)?;
            fs::rename(&old, &dir.staging)
                .with_context(|| format!("cannot take over {}", old.display()))?;
            dir.resumed = true;
        }
        Ok(dir)
    }

    /// Whether this run continues an interrupted one (its files are already there).
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Path of `file` inside the staging folder.
    pub fn file(&self, file: &str) -> PathBuf {
        self.staging.join(file)
    }

    /// Writes the summary and moves the run into place (replacing a failed attempt).
    pub fn finish(self, summary: &Summary) -> Result<PathBuf> {
        summary.write(&self.file(SUMMARY_FILE))?;
        if let Existing::Failed(_) = existing(&self.final_path)? {
            fs::remove_dir_all(&self.final_path)?;
        }
        fs::rename(&self.staging, &self.final_path).with_context(|| {
            format!(
                "cannot move {} to {}",
                self.staging.display(),
                self.final_path.display()
            )
        })?;
        Ok(self.final_path)
    }
}

/// Removes staging folders left by runs that were killed (`.<id>.partial-<pid>`) whose
/// process is gone.
pub fn clean_stale_staging(dir: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((_, pid)) = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once(".partial-"))
        else {
            continue;
        };
        if !process_alive(pid) {
            fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

/// Whether the process `pid` (as written in a staging folder's name) still runs.
fn process_alive(pid: &str) -> bool {
    pid.parse::<u32>()
        .is_ok_and(|p| Path::new(&format!("/proc/{p}")).exists())
}

/// Writes `contents` to `path` atomically (temporary file in the same folder, then rename).
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().context("no file name")?.to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    fs::write(&tmp, contents).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
