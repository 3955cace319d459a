//! From runs to labelled curves: which sweep key names each curve, the legend
//! label of each run, and the order of the legend.

use anyhow::{bail, Result};
use serde_json::Value;

use super::runs::Run;

/// One line of a figure: a legend label and the `(x, y)` points of a run.
pub(super) struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// A shaded band around the line, `(x, low, high)` points; empty for none.
    pub band: Vec<(f64, f64, f64)>,
}

/// A run together with the legend label of its curve.
pub(super) struct LabelledRun<'a> {
    run: &'a Run,
    label: String,
}

/// Labels every run and puts them in legend order.
///
/// With a series key (`series`, else the `[sweep]` table's only key), a run is
/// labelled `"<last key segment> = <value>"` and runs are sorted by value,
/// numerically when all values are numbers. Without a sweep, runs are
/// labelled and sorted by folder name. A run that did not complete gets its
/// status appended, e.g. `"sigma0 = 64 (diverged)"`.
pub(super) fn label_runs<'a>(
    runs: &'a [Run],
    series: Option<&str>,
) -> Result<Vec<LabelledRun<'a>>> {
    let mut labelled = match series_key(runs, series)? {
        Some(key) => by_sweep_value(runs, key)?,
        None => runs
            .iter()
            .map(|run| LabelledRun {
                run,
                label: run.id.clone(),
            })
            .collect(),
    };
    for LabelledRun { run, label } in &mut labelled {
        if run.status != "completed" {
            label.push_str(&format!(" ({})", run.status));
        }
    }
    Ok(labelled)
}

/// The curves of column `y` against column `x`, one per run, in legend order.
pub(super) fn curves(runs: &[LabelledRun], x: &str, y: &str) -> Result<Vec<Curve>> {
    runs.iter()
        .map(|LabelledRun { run, label }| {
            let points = match &run.metrics {
                Some(metrics) => metrics.points(x, y)?,
                None => Vec::new(),
            };
            Ok(Curve {
                label: label.clone(),
                points,
                band: Vec::new(),
            })
        })
        .collect()
}

/// The key whose value labels each curve: `series` if given, else the only
/// key of the `[sweep]` table, else none.
fn series_key<'a>(runs: &'a [Run], series: Option<&'a str>) -> Result<Option<&'a str>> {
    if series.is_some() {
        return Ok(series);
    }
    let keys = runs.first().map_or(&[][..], |run| &run.sweep_keys[..]);
    match keys {
        [] => Ok(None),
        [key] => Ok(Some(key)),
        _ => bail!(
            "the [sweep] table has several keys ({}); set `series` in the [plot] table \
             to the one that labels the curves",
            keys.join(", ")
        ),
    }
}

/// Labels runs with their value of sweep key `key`, sorted by that value. Runs made
/// outside the sweep (`pisa run`, empty point) follow, labelled by their folder.
fn by_sweep_value<'a>(runs: &'a [Run], key: &str) -> Result<Vec<LabelledRun<'a>>> {
    let (mut valued, mut single) = (Vec::new(), Vec::new());
    for run in runs {
        match run.point.get(key) {
            Some(value) => valued.push((run, value)),
            None if run.point.is_empty() => single.push(LabelledRun {
                run,
                label: run.id.clone(),
            }),
            None => bail!(
                "{}/summary.json: its sweep point has no key `{key}` (series of the [plot] table)",
                run.dir.display()
            ),
        }
    }
    if valued.iter().all(|(_, value)| value.is_number()) {
        valued.sort_by(|(_, a), (_, b)| number(a).total_cmp(&number(b)));
    } else {
        valued.sort_by_cached_key(|(_, value)| display(value));
    }
    let name = key.rsplit('.').next().unwrap_or(key);
    Ok(valued
        .into_iter()
        .map(|(run, value)| LabelledRun {
            run,
            label: format!("{name} = {}", display(value)),
        })
        .chain(single)
        .collect())
}

/// A JSON number as `f64`.
fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

/// A sweep value as shown in a label: strings without their quotes.
fn display(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
