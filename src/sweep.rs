//! Grids of runs: the Cartesian product of the spec's `[sweep]` table, run in parallel,
//! resumable (completed runs are kept and skipped).
use crate::results::{self, Existing};
use crate::spec::{Override, Spec, SpecError};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One run of a sweep.
#[derive(Debug, Clone)]
pub struct Point {
    /// `(dotted key, value)` in the order of the `[sweep]` table.
    pub values: Vec<(String, toml::Value)>,
    pub run_id: String,
    pub spec: Spec,
}

impl Point {
    pub fn json(&self) -> BTreeMap<String, serde_json::Value> {
        self.values
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    serde_json::to_value(v).expect("TOML values are JSON"),
                )
            })
            .collect()
    }
}

/// Expands the grid of the spec at `path` (after `overrides`). Every point is validated
/// before anything runs; the first bad one is the error.
pub fn points(path: &Path, overrides: &[Override]) -> Result<Vec<Point>, SpecError> {
    let base = Spec::load(path, overrides)?;
    let Some(grid) = base.sweep.clone().filter(|g| !g.is_empty()) else {
        return Err(SpecError::at_key(
            path,
            "",
            "sweep",
            "no [sweep] table: add one, e.g. [sweep] \"optimizer.sigma0\" = [4, 8, 16]".into(),
        ));
    };
    let keys: Vec<&String> = grid.keys().collect();
    let mut combos: Vec<Vec<(String, toml::Value)>> = vec![vec![]];
    for key in &keys {
        let values = grid[*key].as_array().expect("validated: arrays");
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push(((*key).clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    let points: Vec<Point> = combos
        .into_iter()
        .map(|values| {
            let mut all = overrides.to_vec();
            all.extend(values.iter().map(|(k, v)| Override::sweep(k, v)));
            let spec = Spec::load(path, &all)?;
            let text: Vec<_> = values
                .iter()
                .map(|(k, v)| (k.clone(), value_text(v)))
                .collect();
            let run_id = run_id(&text);
            crate::spec::check_folder_name(&run_id).map_err(|message| SpecError {
                origin: path.display().to_string(),
                position: None,
                key: Some("sweep".into()),
                message: format!("a sweep point's run folder: {message}"),
            })?;
            Ok(Point {
                run_id,
                values,
                spec,
            })
        })
        .collect::<Result<_, SpecError>>()?;
    if let Some(p) = points.iter().enumerate().find_map(|(i, p)| {
        points[..i]
            .iter()
            .any(|q| q.run_id == p.run_id)
            .then_some(p)
    }) {
        return Err(SpecError {
            origin: path.display().to_string(),
            position: None,
            key: Some("sweep".into()),
            message: format!("two sweep points would share the run folder {:?}", p.run_id),
        });
    }
    Ok(points)
}

/// Folder name of a point: `sigma0=16`, `gamma=0.5,k0=auto`, by the keys' last segment
/// (the whole key where two last segments clash). Values are given as text.
pub fn run_id(values: &[(String, String)]) -> String {
    let last = |k: &str| k.rsplit('.').next().unwrap_or(k).to_string();
    let clash = |k: &str| values.iter().filter(|(o, _)| last(o) == last(k)).count() > 1;
    values
        .iter()
        .map(|(k, v)| {
            let name = if clash(k) { k.clone() } else { last(k) };
            let value: String = v
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-+._".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            format!("{name}={value}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A TOML value as it appears in a run id: strings without quotes.
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The part of a spec that decides a run's numbers: everything but `[sweep]`, `[plot]`
/// and the description.
fn essence(spec: &Spec) -> Spec {
    let mut s = spec.resolved();
    s.sweep = None;
    s.plot = None;
    s.description = None;
    s.train.threads = None; // recorded in summary.json; it changes bits, not the experiment
                            // A resumed run equals an uninterrupted one (tests/trust.rs), so how often a run
                            // checkpoints does not decide its numbers.
    s.train.checkpoint_every = crate::spec::Every::Iterations(0);
    s
}

/// Which points still need running under `root/<name>/` (an interrupted or killed one
/// continues from its checkpoint when it runs). A finished run made from a
/// different spec is an error (never silently mixed into or replaced in the results).
pub fn pending(root: &Path, points: Vec<Point>) -> Result<(Vec<Point>, usize)> {
    let mut todo = Vec::new();
    let mut done = 0;
    for p in points {
        let dir = run_path(root, &p);
        match results::existing(&dir)? {
            Existing::Finished(_) => {
                let file = dir.join(results::SPEC_FILE);
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let old = Spec::parse(&text, &file)?;
                if essence(&old) != essence(&p.spec) {
                    bail!(
                        "{} was made from a different spec than this sweep's point {}; \
                         move it away or use another --out",
                        dir.display(),
                        p.run_id
                    );
                }
                results::remove_stale_staging(&dir)?;
                done += 1;
            }
            Existing::Unfinished(_) | Existing::None => todo.push(p),
        }
    }
    Ok((todo, done))
}

pub fn run_path(root: &Path, point: &Point) -> PathBuf {
    root.join(&point.spec.name).join(&point.run_id)
}
