//! `metrics.csv`: one row per evaluation, written as the run goes.
use anyhow::{Context, Result};
use std::fs::File;
use std::path::Path;

pub struct MetricsWriter {
    csv: csv::Writer<File>,
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
        csv.write_record(header)?;
        Ok(Self { csv })
    }

    /// Reopens the file of an interrupted run, keeping the header and the rows up to
    /// iteration `upto` (those after the checkpoint are written again).
    pub fn resume(path: &Path, upto: usize) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let column = text
            .lines()
            .next()
            .and_then(|header| header.split(',').position(|c| c == "iteration"))
            .with_context(|| format!("{} has no iteration column", path.display()))?;
        let kept: Vec<&str> = text
            .lines()
            .enumerate()
            .filter(|(i, line)| {
                *i == 0
                    || line
                        .split(',')
                        .nth(column)
                        .and_then(|it| it.parse::<usize>().ok())
                        .is_some_and(|it| it <= upto)
            })
            .map(|(_, line)| line)
            .collect();
        super::write_atomic(path, (kept.join("\n") + "\n").as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("cannot append to {}", path.display()))?;
        Ok(Self {
            csv: csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(file),
        })
    }

    /// Pushes the rows so far to disk (before a checkpoint refers to them).
    pub fn flush(&mut self) -> Result<()> {
        self.csv.flush()?;
        Ok(())
    }

    pub fn row(&mut self, epoch: f64, iteration: usize, values: &[f64], wall_s: f64) -> Result<()> {
        let fields = [format_value(epoch), iteration.to_string()]
            .into_iter()
            .chain(values.iter().map(|v| format_value(*v)))
            .chain([format!("{wall_s:.6}")]);
        self.csv.write_record(fields)?;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        self.csv.flush()?;
        Ok(())
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
