//! `metrics.csv`: one row per evaluation, written as the run goes.
use anyhow::{Context, Result};
use std::fs::File;
use std::path::Path;

pub struct MetricsWriter {
    csv: csv::Writer<File>,
    path: std::path::PathBuf,
}

impl MetricsWriter {
    /// Creates the file with header `epoch, iteration, <columns…>, wall_s`.
    pub fn create(path: &Path, columns: &[&str]) -> Result<Self> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut csv = csv::Writer::from_writer(file);
        let header = ["epoch", "iteration"]
            .into_iter()
            .chain(columns.iter().copied())
            .chain(["wall_s"]);
        csv.write_record(header)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self {
            csv,
            path: path.to_path_buf(),
        })
    }

    /// Reopens the file of an interrupted run, cut back to the `bytes` its checkpoint
    /// covers (the rows after it, torn or whole, are written again).
    pub fn resume(path: &Path, bytes: u64) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("cannot append to {}", path.display()))?;
        let len = file.metadata()?.len();
        anyhow::ensure!(
            len >= bytes,
            "{} holds {len} bytes, fewer than the {bytes} its checkpoint covers",
            path.display()
        );
        file.set_len(bytes)
            .with_context(|| format!("cannot cut {} back to its checkpoint", path.display()))?;
        Ok(Self {
            csv: csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(file),
            path: path.to_path_buf(),
        })
    }

    /// Pushes the rows so far to disk (before a checkpoint refers to them); returns the
    /// file's length.
    pub fn flush(&mut self) -> Result<u64> {
        self.csv
            .flush()
            .with_context(|| format!("cannot write metrics to {}", self.path.display()))?;
        Ok(self.csv.get_ref().metadata()?.len())
    }

    pub fn row(&mut self, epoch: f64, iteration: usize, values: &[f64], wall_s: f64) -> Result<()> {
        let fields = [format_value(epoch), iteration.to_string()]
            .into_iter()
            .chain(values.iter().map(|v| format_value(*v)))
            .chain([format!("{wall_s:.6}")]);
        self.csv
            .write_record(fields)
            .with_context(|| format!("cannot write metrics to {}", self.path.display()))?;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        self.flush().map(|_| ())
    }
}

/// Shortest text that reads back to the same f64 (`NaN`, `inf`, `-inf` for the others).
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v:?}")
    }
}
