//! Table 2 of the paper (pisa.md §5.1): final test accuracy per dataset, s-label skew and
//! algorithm, mean ± standard deviation over seeds, with the paper's numbers beside ours.
//! Built from every completed run under a results folder whose `[plot]` says
//! `table = "table2"` (experiments/table2/).
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The algorithms in the paper's column order.
pub const ALGORITHMS: [&str; 5] = ["fedavg", "fedprox", "fednova", "scaffold", "sisa"];

/// Table 2 as printed: (dataset, s) → mean ± std in %, per algorithm in [`ALGORITHMS`]
/// order. The Adult baselines (marked * in the paper) used mini-batch local training.
/// (dataset, s, [(mean, std) per algorithm]).
pub type PaperRow = (&'static str, usize, [(f64, f64); 5]);

pub const PAPER: &[PaperRow] = &[
    (
        "mnist",
        1,
        [
            (53.19, 0.21),
            (54.33, 0.67),
            (49.00, 0.42),
            (47.04, 0.02),
            (94.97, 0.01),
        ],
    ),
    (
        "mnist",
        2,
        [
            (90.70, 0.02),
            (90.75, 0.03),
            (90.40, 0.05),
            (87.43, 0.08),
            (96.14, 0.00),
        ],
    ),
    (
        "mnist",
        3,
        [
            (95.11, 0.01),
            (94.73, 0.02),
            (94.37, 0.01),
            (93.19, 0.03),
            (96.21, 0.01),
        ],
    ),
    (
        "cifar10",
        1,
        [
            (10.02, 0.00),
            (10.00, 0.00),
            (10.31, 0.03),
            (11.41, 0.03),
            (30.16, 0.00),
        ],
    ),
    (
        "cifar10",
        2,
        [
            (13.76, 0.00),
            (13.77, 0.00),
            (18.02, 0.02),
            (12.73, 0.00),
            (30.53, 0.00),
        ],
    ),
    (
        "cifar10",
        3,
        [
            (20.06, 0.01),
            (20.03, 0.01),
            (21.20, 0.01),
            (17.00, 0.00),
            (30.96, 0.00),
        ],
    ),
    (
        "fashion_mnist",
        1,
        [
            (48.81, 0.34),
            (47.14, 0.32),
            (49.08, 0.34),
            (43.93, 0.20),
            (72.85, 0.02),
        ],
    ),
    (
        "fashion_mnist",
        2,
        [
            (69.33, 0.01),
            (69.29, 0.02),
            (69.10, 0.04),
            (65.99, 0.06),
            (70.24, 0.05),
        ],
    ),
    (
        "fashion_mnist",
        3,
        [
            (70.48, 0.02),
            (69.96, 0.08),
            (69.70, 0.08),
            (63.64, 0.15),
            (72.46, 0.01),
        ],
    ),
    (
        "adult",
        1,
        [
            (76.38, 0.00),
            (78.30, 0.03),
            (85.15, 0.08),
            (80.00, 0.02),
            (82.21, 0.00),
        ],
    ),
];

/// One finished run: its cell and its final test accuracy in %.
struct Cell {
    dataset: String,
    labels: usize,
    algorithm: String,
    accuracy: f64,
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

/// The cell of the run in `dir`, if it completed and belongs to Table 2.
fn read_cell(dir: &Path) -> Result<Option<Cell>> {
    let spec: toml::Table = toml::from_str(&std::fs::read_to_string(dir.join("spec.toml"))?)
        .with_context(|| format!("parsing {}/spec.toml", dir.display()))?;
    let table = spec
        .get("plot")
        .and_then(|p| p.get("table"))
        .and_then(toml::Value::as_str);
    if table != Some("table2") {
        return Ok(None);
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json"))?)
            .with_context(|| format!("parsing {}/summary.json", dir.display()))?;
    if summary["status"] != "completed" {
        return Ok(None);
    }
    let accuracy = summary["last"]["test_acc"]
        .as_f64()
        .with_context(|| format!("{}: summary.json has no last test_acc", dir.display()))?;
    let get = |path: &[&str]| -> Option<&toml::Value> {
        let mut v = spec.get(path[0])?;
        for key in &path[1..] {
            v = v.get(key)?;
        }
        Some(v)
    };
    let text = |path: &[&str]| get(path).and_then(toml::Value::as_str).map(String::from);
    let dataset = text(&["data", "kind"]).context("spec has no data.kind")?;
    let algorithm = text(&["optimizer", "name"]).context("spec has no optimizer.name")?;
    let labels = get(&["data", "partition", "labels"])
        .and_then(toml::Value::as_integer)
        .with_context(|| {
            format!(
                "{}: Table 2 runs need a label-skew partition",
                dir.display()
            )
        })?;
    Ok(Some(Cell {
        dataset,
        labels: labels as usize,
        algorithm,
        accuracy: 100.0 * accuracy,
    }))
}

/// Mean and sample standard deviation (0 for one value).
fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// Writes `table2.csv` and `table2.md` into `dir` from the Table 2 runs under it;
/// returns the files, or nothing when no run belongs to Table 2.
pub fn write(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut cells: BTreeMap<(String, usize), BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for run in run_dirs(dir)? {
        if let Some(c) = read_cell(&run)? {
            cells
                .entry((c.dataset, c.labels))
                .or_default()
                .entry(c.algorithm)
                .or_default()
                .push(c.accuracy);
        }
    }
    if cells.is_empty() {
        return Ok(vec![]);
    }
    let paper = |dataset: &str, labels: usize, k: usize| {
        PAPER
            .iter()
            .find(|(d, s, _)| *d == dataset && *s == labels)
            .map(|(_, _, v)| v[k])
    };
    let mut csv = String::from("dataset,partition,algorithm,seeds,mean,std,paper_mean,paper_std\n");
    let mut md = String::from(
        "Final test accuracy (%) of the global model, mean ± std over seeds (n = seeds); \
         the paper's Table 2 value in brackets.\n\n| dataset | partition |",
    );
    for a in ALGORITHMS {
        let _ = write!(md, " {a} |");
    }
    md.push_str("\n|---|---|");
    md.push_str(&"---:|".repeat(ALGORITHMS.len()));
    md.push('\n');
    // the paper's row order (MNIST, CIFAR-10, Fashion-MNIST, Adult), unknown datasets last
    let rank = |dataset: &str| {
        PAPER
            .iter()
            .position(|(d, _, _)| *d == dataset)
            .unwrap_or(PAPER.len())
    };
    let mut rows: Vec<_> = cells.iter().collect();
    rows.sort_by_key(|((dataset, labels), _)| (rank(dataset), *labels));
    for ((dataset, labels), by_algorithm) in rows {
        let _ = write!(md, "| {dataset} | {labels}-Label |");
        for (k, a) in ALGORITHMS.iter().enumerate() {
            let reference = paper(dataset, *labels, k);
            let ours = by_algorithm.get(*a).map(|v| (mean_std(v), v.len()));
            let (pm, ps) = reference.map_or((String::new(), String::new()), |(m, s)| {
                (format!("{m:.2}"), format!("{s:.2}"))
            });
            match ours {
                Some(((m, s), n)) => {
                    let _ = writeln!(
                        csv,
                        "{dataset},{labels}-Label,{a},{n},{m:.4},{s:.4},{pm},{ps}"
                    );
                    let _ = write!(md, " {m:.2} ± {s:.2} (n = {n})");
                }
                None => {
                    let _ = write!(md, " –");
                }
            }
            if let Some((m, s)) = reference {
                let _ = write!(md, " [{m:.2} ± {s:.2}]");
            }
            md.push_str(" |");
        }
        md.push('\n');
    }
    let files = [dir.join("table2.csv"), dir.join("table2.md")];
    crate::results::write_atomic(&files[0], csv.as_bytes())?;
    crate::results::write_atomic(&files[1], md.as_bytes())?;
    Ok(files.to_vec())
}
