//! From runs to labelled curves: which sweep key names each curve, the legend
//! label of each run, and the order of the legend.

use anyhow::{bail, Result};
use serde_json::Value;

use super::runs::Run;

/// A run's `(x, y)` points.
type Points = Vec<(f64, f64)>;

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
/// numerically when all values are numbers; `series` may name several keys,
/// separated by commas, for `"lr = 0.01, weight_decay = 0.1"`. Without a sweep, runs are
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

/// The curves of column `y` against column `x`, one per label in legend order: runs that
/// share a label (the seeds of a sweep point) are drawn as their mean with a band.
pub(super) fn curves(runs: &[LabelledRun], x: &str, y: &str) -> Result<Vec<Curve>> {
    let mut groups: Vec<(String, Vec<Points>)> = vec![];
    for LabelledRun { run, label } in runs {
        let points = match &run.metrics {
            Some(metrics) => metrics.points(x, y)?,
            None => Vec::new(),
        };
        match groups.iter_mut().find(|(l, _)| l == label) {
            Some((_, seeds)) => seeds.push(points),
            None => groups.push((label.clone(), vec![points])),
        }
    }
    Ok(groups
        .into_iter()
        .map(|(label, seeds)| seed_mean(label, &seeds))
        .collect())
}

/// The mean over `seeds` of their `(x, y)` points, row by row (the seeds evaluate at the
/// same iterations; a run that stopped early shortens the curve to its rows), with the
/// band from the seeds' minimum to their maximum (none for one seed). `x` is the first
/// seed's.
pub(super) fn seed_mean(label: String, seeds: &[Points]) -> Curve {
    let rows = seeds.iter().map(Vec::len).min().unwrap_or(0);
    let mut points = Vec::with_capacity(rows);
    let mut band = Vec::with_capacity(rows);
    for r in 0..rows {
        let x = seeds[0][r].0;
        let ys: Vec<f64> = seeds.iter().map(|s| s[r].1).collect();
        let mean = ys.iter().sum::<f64>() / ys.len() as f64;
        let (low, high) = ys
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &y| {
                (l.min(y), h.max(y))
            });
        points.push((x, mean));
        band.push((x, low, high));
    }
    if seeds.len() < 2 {
        band.clear();
    }
    let label = match seeds.len() {
        1 => label,
        n => format!("{label} (mean of {n} seeds)"),
    };
    Curve {
        label,
        points,
        band,
    }
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

/// Labels runs with their values of the sweep keys in `series` (one key, or several
/// separated by commas), sorted by those values, key by key. Runs made outside the sweep
/// (`pisa run`, empty point) follow, labelled by their folder.
fn by_sweep_value<'a>(runs: &'a [Run], series: &str) -> Result<Vec<LabelledRun<'a>>> {
    let keys: Vec<&str> = series.split(',').map(str::trim).collect();
    let (mut valued, mut single) = (Vec::new(), Vec::new());
    for run in runs {
        let values: Option<Vec<&Value>> = keys.iter().map(|key| run.point.get(*key)).collect();
        match values {
            Some(values) => valued.push((run, values)),
            None if run.point.is_empty() => single.push(LabelledRun {
                run,
                label: run.id.clone(),
            }),
            None => {
                let key = keys.iter().find(|key| !run.point.contains_key(**key));
                bail!(
                    "{}/summary.json: its sweep point has no key `{}` (series of the [plot] table)",
                    run.dir.display(),
                    key.unwrap_or(&series)
                )
            }
        }
    }
    // per key: whether every run's value is a number (then sorted numerically)
    let numeric: Vec<bool> = (0..keys.len())
        .map(|k| valued.iter().all(|(_, values)| values[k].is_number()))
        .collect();
    valued.sort_by(|(_, a), (_, b)| {
        numeric
            .iter()
            .enumerate()
            .map(|(k, &numeric)| match numeric {
                true => number(a[k]).total_cmp(&number(b[k])),
                false => display(a[k]).cmp(&display(b[k])),
            })
            .find(|order| order.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(valued
        .into_iter()
        .map(|(run, values)| {
            let label: Vec<String> = keys
                .iter()
                .zip(values)
                .map(|(key, value)| {
                    let name = key.rsplit('.').next().unwrap_or(key);
                    format!("{name} = {}", display(value))
                })
                .collect();
            LabelledRun {
                run,
                label: label.join(", "),
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_means_band_from_min_to_max_and_stop_with_the_shortest_seed() {
        let c = seed_mean(
            "sisa".into(),
            &[
                vec![(0.0, 1.0), (1.0, 4.0), (2.0, 9.0)],
                vec![(0.0, 3.0), (1.0, 2.0)],
            ],
        );
        assert_eq!(c.label, "sisa (mean of 2 seeds)");
        assert_eq!(c.points, [(0.0, 2.0), (1.0, 3.0)]);
        assert_eq!(c.band, [(0.0, 1.0, 3.0), (1.0, 2.0, 4.0)]);
        let one = seed_mean("adam".into(), &[vec![(0.0, 1.0)]]);
        assert_eq!((one.label.as_str(), one.band.len()), ("adam", 0));
    }
}
