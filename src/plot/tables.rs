//! The paper's tables from a folder of results: every completed run whose `[plot]` names
//! a table gives one value to the cell its spec says (a row such as dataset × partition
//! or model, a column = the optimizer); each cell is the mean ± standard deviation over
//! its runs (seeds), written as CSV and Markdown with the paper's value beside ours. A
//! table with [`Variants`] averages a cell's runs per variant (spec `name`, or sweep point
//! without the seed) and reports the best.
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A row's key cells and its rank (rows are sorted by rank).
pub type RowKey = (Vec<String>, (usize, i64));
/// A paper value and, if printed, its standard deviation.
pub type PaperValue = (f64, Option<f64>);

/// A paper table's layout.
pub struct Table {
    /// The `[plot] table` value that selects runs, and the output files' stem.
    pub name: &'static str,
    pub caption: &'static str,
    /// Names of the row's key columns.
    pub row_header: &'static [&'static str],
    /// The optimizers, in the paper's column order.
    pub columns: &'static [&'static str],
    /// A run's row key and its rank (rows are sorted by rank).
    pub row: fn(&Run) -> Result<RowKey>,
    /// A run's value (accuracies in %).
    pub value: fn(&Run) -> Result<f64>,
    /// The paper's value (and standard deviation, if given) of a cell.
    pub paper: fn(&[String], usize) -> Option<PaperValue>,
    /// How a cell's runs split into variants, of which the best is reported; `None`:
    /// all its runs are averaged.
    pub variants: Option<Variants>,
    /// Decimals of the Markdown cells.
    pub decimals: usize,
}

/// Variants of a cell: its runs grouped by a key ([`Variants::key`]: the spec `name`, which
/// a spec's seeds share, or the sweep point without its seed), each averaged on its own;
/// the variant with the higher mean is reported (on a tie, the first by key), labelled in
/// an extra CSV column and marked in the Markdown cell.
pub struct Variants {
    /// Header of the CSV column that labels the reported variant.
    pub header: &'static str,
    /// The key that groups a cell's runs into variants.
    pub key: fn(&Run) -> Result<String>,
    /// A variant's label for that column and its Markdown marker ("" for none), from
    /// its key.
    pub label: fn(&str) -> (String, String),
}

/// The spec `name` of a run, as a [`Variants::key`] (a spec's seeds share it).
pub fn spec_name(run: &Run) -> Result<String> {
    run.text(&["name"])
        .with_context(|| format!("{}/spec.toml has no name", run.dir.display()))
}

/// A run's sweep point (summary.json's `point`) without its `seed`, as a
/// [`Variants::key`]: `key=value` pairs in key order, separated by spaces ("" for a run
/// made outside a sweep).
pub fn sweep_point(run: &Run) -> Result<String> {
    let point = match &run.summary["point"] {
        serde_json::Value::Object(point) => point,
        serde_json::Value::Null => return Ok(String::new()),
        other => anyhow::bail!(
            "{}/summary.json: its point is not a table: {other}",
            run.dir.display()
        ),
    };
    let mut pairs: Vec<String> = point
        .iter()
        .filter(|(key, _)| key.as_str() != "seed")
        .map(|(key, value)| match value {
            serde_json::Value::String(text) => format!("{key}={text}"),
            other => format!("{key}={other}"),
        })
        .collect();
    pairs.sort();
    Ok(pairs.join(" "))
}

/// The runs of one variant of a cell and their values, in the same order.
pub struct Variant {
    /// The runs' variant key ([`Variants::key`]); empty for a table without [`Variants`].
    pub name: String,
    pub runs: Vec<Run>,
    pub values: Vec<f64>,
}

impl Variant {
    fn mean_std(&self) -> (f64, f64) {
        mean_std(&self.values)
    }
}

/// A table's cells: rows in rank order, each mapping an optimizer to the variant it
/// reports.
pub type Cells = BTreeMap<((usize, i64), Vec<String>), BTreeMap<String, Variant>>;

/// The tables `pisa plot` knows.
pub const TABLES: [&Table; 8] = [
    &super::table2::TABLE,
    &super::fedlamb::TABLE,
    &super::table3::TABLE,
    &super::figure5::TABLE,
    &super::table8::TABLE,
    &super::table4::TABLE,
    &super::figure2::TABLE,
    &super::figure7::TABLE,
];

/// One completed run: its folder, resolved spec and summary.
pub struct Run {
    pub dir: PathBuf,
    pub spec: toml::Table,
    pub summary: serde_json::Value,
}

impl Run {
    /// The spec's value at a dotted path.
    pub fn get(&self, path: &[&str]) -> Option<&toml::Value> {
        let mut v = self.spec.get(path[0])?;
        for key in &path[1..] {
            v = v.get(key)?;
        }
        Some(v)
    }

    pub fn text(&self, path: &[&str]) -> Option<String> {
        self.get(path)
            .and_then(toml::Value::as_str)
            .map(String::from)
    }

    /// The test accuracy of the last metrics row, in %.
    pub fn final_accuracy(&self) -> Result<f64> {
        Ok(100.0 * self.last("test_acc")?)
    }

    /// A metric of the last metrics row (summary.json's `last`).
    pub fn last(&self, metric: &str) -> Result<f64> {
        self.summary["last"][metric]
            .as_f64()
            .with_context(|| format!("{}: summary.json has no last {metric}", self.dir.display()))
    }

    /// The best test accuracy of any metrics row (any epoch), in %.
    pub fn best_accuracy(&self) -> Result<f64> {
        let best = self
            .column("test_acc")?
            .into_iter()
            .fold(f64::NEG_INFINITY, f64::max);
        Ok(100.0 * best)
    }

    /// A `metrics.csv` column, every row (a value that does not parse is NaN).
    pub fn column(&self, metric: &str) -> Result<Vec<f64>> {
        let file = self.dir.join(crate::results::METRICS_FILE);
        let mut reader =
            csv::Reader::from_path(&file).with_context(|| format!("reading {}", file.display()))?;
        let column = reader
            .headers()?
            .iter()
            .position(|h| h == metric)
            .with_context(|| format!("{} has no {metric} column", file.display()))?;
        reader
            .records()
            .map(|r| Ok(r?[column].parse().unwrap_or(f64::NAN)))
            .collect()
    }
}

/// Every run folder (holding a `summary.json`) at depth 1 or 2 under `dir`.
fn run_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = vec![];
    let children = |d: &Path| -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .with_context(|| format!("reading {}", d.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_dir()
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        v.sort();
        Ok(v)
    };
    for child in children(dir)? {
        if child.join("summary.json").is_file() {
            found.push(child);
        } else {
            found.extend(
                children(&child)?
                    .into_iter()
                    .filter(|p| p.join("summary.json").is_file()),
            );
        }
    }
    Ok(found)
}

/// The run in `dir` if it completed and its `[plot]` names `table`.
fn read_run(dir: &Path, table: &str) -> Result<Option<Run>> {
    let spec: toml::Table = toml::from_str(&std::fs::read_to_string(dir.join("spec.toml"))?)
        .with_context(|| format!("parsing {}/spec.toml", dir.display()))?;
    let named = spec
        .get("plot")
        .and_then(|p| p.get("table"))
        .and_then(toml::Value::as_str);
    if named != Some(table) {
        return Ok(None);
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json"))?)
            .with_context(|| format!("parsing {}/summary.json", dir.display()))?;
    if summary["status"] != "completed" {
        return Ok(None);
    }
    Ok(Some(Run {
        dir: dir.to_path_buf(),
        spec,
        summary,
    }))
}

/// The completed runs under `dir` (depth 1 or 2) whose `[plot]` names `table`.
pub fn runs_of(dir: &Path, table: &str) -> Result<Vec<Run>> {
    let mut runs = vec![];
    for dir in run_dirs(dir)? {
        runs.extend(read_run(&dir, table)?);
    }
    Ok(runs)
}

/// Mean and sample standard deviation (0 for one value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// How the Markdown tables mark a difference from the paper.
const DIFFERENCE_NOTE: &str = "Δ = ours − the paper's; ≠ marks a cell where they differ by more \
     than 3 standard deviations of the difference, √(s² + s_paper²) (a paper value printed \
     without one counts as exact).";

/// Ours − the paper's, and whether that is more than 3 standard deviations of the difference
/// of two independent cells, √(s² + s_paper²) (any difference when both spreads are 0).
fn compare((mean, std): (f64, f64), (paper, paper_std): PaperValue) -> (f64, bool) {
    let delta = mean - paper;
    let spread = std.hypot(paper_std.unwrap_or(0.0));
    (delta, delta.abs() > 3.0 * spread)
}

/// Writes every known table that runs under `dir` fill; returns the files.
pub fn write_all(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = vec![];
    for table in TABLES {
        written.extend(write(table, dir)?);
    }
    written.extend(super::table6::write(dir)?);
    Ok(written)
}

/// Draws the figures that compare optimizers across the experiments under `dir` (a curve
/// per optimizer, from the tables' cells); returns the files.
pub fn write_comparisons(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = super::table2::CURVES.write(dir)?;
    written.extend(super::fedlamb::CURVES.write(dir)?);
    written.extend(super::table3::FIGURE1.write(dir)?);
    written.extend(super::figure5::FIGURE5.write(dir)?);
    written.extend(super::table8::CURVES.write(dir)?);
    written.extend(super::table4::FIGURE3.write(dir)?);
    written.extend(super::figure2::FIGURE2.write(dir)?);
    written.extend(super::table6::FIGURE6.write(dir)?);
    written.extend(super::figure7::FIGURE7.write(dir)?);
    Ok(written)
}

/// The cells of `table` from the completed runs under `dir` that belong to it, each the
/// variant it reports.
pub fn cells(table: &Table, dir: &Path) -> Result<Cells> {
    let mut all: BTreeMap<_, BTreeMap<String, BTreeMap<String, Variant>>> = BTreeMap::new();
    for run in runs_of(dir, table.name)? {
        let (key, rank) = (table.row)(&run)?;
        let spec_of = || format!("{}/spec.toml", run.dir.display());
        let algorithm = run
            .text(&["optimizer", "name"])
            .with_context(|| format!("{} has no optimizer.name", spec_of()))?;
        let name = match &table.variants {
            Some(variants) => (variants.key)(&run)?,
            None => String::new(),
        };
        let value = (table.value)(&run)?;
        let variant = all
            .entry((rank, key))
            .or_default()
            .entry(algorithm)
            .or_default()
            .entry(name.clone())
            .or_insert_with(|| Variant {
                name,
                runs: vec![],
                values: vec![],
            });
        variant.runs.push(run);
        variant.values.push(value);
    }
    Ok(all
        .into_iter()
        .map(|(row, by_algorithm)| {
            let best = by_algorithm
                .into_iter()
                .map(|(algorithm, variants)| (algorithm, best(variants)))
                .collect();
            (row, best)
        })
        .collect())
}

/// The variant with the highest mean (a NaN mean loses; on a tie, the first by key).
fn best(variants: BTreeMap<String, Variant>) -> Variant {
    variants
        .into_values()
        .reduce(|best, v| {
            let (m, b) = (v.mean_std().0, best.mean_std().0);
            if m > b || (b.is_nan() && !m.is_nan()) {
                v
            } else {
                best
            }
        })
        .expect("a cell has at least one run")
}

impl Table {
    /// The CSV column naming a cell's reported variant, with its leading comma ("" for a
    /// table without [`Variants`]).
    fn variant_header(&self) -> String {
        self.variants
            .as_ref()
            .map_or(String::new(), |v| format!(",{}", v.header))
    }

    /// A reported variant's CSV field (with its leading comma) and Markdown marker (with
    /// its leading space); both empty for a table without [`Variants`].
    fn variant_label(&self, variant: &Variant) -> (String, String) {
        match &self.variants {
            Some(v) => {
                let (label, marker) = (v.label)(&variant.name);
                let marker = if marker.is_empty() {
                    String::new()
                } else {
                    format!(" {marker}")
                };
                (format!(",{label}"), marker)
            }
            None => (String::new(), String::new()),
        }
    }
}

/// Writes `<name>.csv` and `<name>.md` into `dir` from the runs under it that belong to
/// `table`; returns the files, or nothing when no run does.
pub fn write(table: &Table, dir: &Path) -> Result<Vec<PathBuf>> {
    let rows = cells(table, dir)?;
    if rows.is_empty() {
        return Ok(vec![]);
    }
    let keys = table.row_header.join(",");
    let variant = table.variant_header();
    let mut csv = format!(
        "{keys},algorithm{variant},seeds,mean,std,paper_mean,paper_std,difference,disagrees\n"
    );
    // the note on Δ only where the paper has a value to compare with
    let compared = rows
        .keys()
        .any(|(_, key)| (0..table.columns.len()).any(|c| (table.paper)(key, c).is_some()));
    let note = if compared {
        format!("{DIFFERENCE_NOTE}\n\n")
    } else {
        String::new()
    };
    let mut md = format!("{}\n\n{note}|", table.caption);
    for h in table.row_header.iter().chain(table.columns) {
        let _ = write!(md, " {h} |");
    }
    md.push_str("\n|");
    md.push_str(&"---|".repeat(table.row_header.len()));
    md.push_str(&"---:|".repeat(table.columns.len()));
    md.push('\n');
    let d = table.decimals;
    for ((_, key), by_algorithm) in &rows {
        md.push('|');
        for k in key {
            let _ = write!(md, " {k} |");
        }
        for (c, a) in table.columns.iter().enumerate() {
            let reference = (table.paper)(key, c);
            let (pm, ps) = match reference {
                Some((m, s)) => (
                    format!("{m:.2}"),
                    s.map_or(String::new(), |s| format!("{s:.2}")),
                ),
                None => (String::new(), String::new()),
            };
            let ours = by_algorithm.get(*a).map(|v| (v, v.mean_std()));
            match ours {
                Some((variant, (m, s))) => {
                    let n = variant.values.len();
                    let (label, marker) = table.variant_label(variant);
                    let (difference, disagrees) = match reference.map(|r| compare((m, s), r)) {
                        Some((delta, far)) => (format!("{delta:.4}"), far.to_string()),
                        None => (String::new(), String::new()),
                    };
                    let _ = writeln!(
                        csv,
                        "{},{a}{label},{n},{m:.4},{s:.4},{pm},{ps},{difference},{disagrees}",
                        key.join(",")
                    );
                    let _ = write!(md, " {m:.d$} ± {s:.d$} (n = {n}){marker}");
                }
                None => md.push_str(" –"),
            }
            match reference {
                Some((m, Some(s))) => {
                    let _ = write!(md, " [{m:.2} ± {s:.2}]");
                }
                Some((m, None)) => {
                    let _ = write!(md, " [{m:.2}]");
                }
                None => {}
            }
            if let (Some((_, ours)), Some(paper)) = (ours, reference) {
                let (delta, far) = compare(ours, paper);
                let _ = write!(md, " Δ {delta:+.d$}{}", if far { " ≠" } else { "" });
            }
            md.push_str(" |");
        }
        md.push('\n');
    }
    let files = [
        dir.join(format!("{}.csv", table.name)),
        dir.join(format!("{}.md", table.name)),
    ];
    crate::results::write_atomic(&files[0], csv.as_bytes())?;
    crate::results::write_atomic(&files[1], md.as_bytes())?;
    Ok(files.to_vec())
}
