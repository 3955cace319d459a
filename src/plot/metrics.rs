//! A run's `metrics.csv`: a header row naming the columns, then rows of numbers.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

/// The numeric table of one `metrics.csv`.
pub(super) struct Metrics {
    /// The file it was read from, for error messages.
    path: PathBuf,
    columns: Vec<String>,
    rows: Vec<Vec<f64>>,
}

impl Metrics {
    /// Reads a `metrics.csv`; empty cells read as NaN, `NaN` and `inf` as such.
    pub fn read(path: &Path) -> Result<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(path)
            .with_context(|| format!("reading {}", path.display()))?;
        let columns = reader
            .headers()
            .with_context(|| format!("reading the header of {}", path.display()))?
            .iter()
            .map(str::to_owned)
            .collect();
        // A row that does not parse (a torn write) is an error naming its line, never a
        // point of a figure.
        let rows = reader
            .records()
            .map(|record| {
                let record = record.map_err(|e| {
                    let line = e.position().map_or(0, |p| p.line());
                    anyhow!("{}, line {line}: {e}", path.display())
                })?;
                let line = record.position().map_or(0, |p| p.line());
                record
                    .iter()
                    .map(|cell| parse_cell(cell, path, line))
                    .collect()
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            path: path.to_owned(),
            columns,
            rows,
        })
    }

    /// The `(x, y)` pairs of columns `x` and `y`, row by row.
    pub fn points(&self, x: &str, y: &str) -> Result<Vec<(f64, f64)>> {
        let (x, y) = (self.column(x)?, self.column(y)?);
        Ok(self.rows.iter().map(|row| (row[x], row[y])).collect())
    }

    /// Whether the file has column `name`.
    pub fn has(&self, name: &str) -> bool {
        self.columns.iter().any(|column| column == name)
    }

    /// The index of column `name`; errors listing the columns the file has.
    fn column(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|column| column == name)
            .ok_or_else(|| {
                anyhow!(
                    "{} has no column `{name}`; its columns are: {}",
                    self.path.display(),
                    self.columns.join(", ")
                )
            })
    }
}

/// Parses one cell (on `line` of `path`), reading an empty one as NaN.
fn parse_cell(cell: &str, path: &Path, line: u64) -> Result<f64> {
    if cell.is_empty() {
        return Ok(f64::NAN);
    }
    cell.parse()
        .with_context(|| format!("{}, line {line}: `{cell}` is not a number", path.display()))
}
