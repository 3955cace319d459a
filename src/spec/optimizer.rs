//! `[optimizer]`: a registered optimizer's name and its hyperparameters. The keys each
//! optimizer takes, their kinds and defaults live in the registry (`optim::registry`);
//! this module only checks a spec against it and writes the defaults out.
use super::Dtype;
use crate::optim::hyper::{Hypers, Kind};
use crate::optim::registry;
use serde::{Deserialize, Serialize};

/// `[optimizer]` as written: `name` plus that optimizer's keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerSpec {
    pub name: String,
    #[serde(flatten)]
    pub hypers: toml::Table,
}

impl OptimizerSpec {
    /// Checks the name and every key against the registry; on failure returns the
    /// dotted key (under `prefix`, e.g. "optimizer") and a message.
    pub fn validate(&self, prefix: &str) -> Result<(), (String, String)> {
        self.resolve(prefix).map(|_| ())
    }

    /// The hyperparameters with defaults filled in, nested optimizers (Lookahead's
    /// `inner`) resolved too.
    pub fn resolve(&self, prefix: &str) -> Result<Hypers, (String, String)> {
        let entry = registry::find(&self.name).ok_or_else(|| {
            (
                format!("{prefix}.name"),
                format!(
                    "unknown optimizer {:?}; `pisa list optimizers` shows them all: {}",
                    self.name,
                    registry::names().join(", ")
                ),
            )
        })?;
        let located = |(key, msg): (String, String)| (format!("{prefix}.{key}"), msg);
        let hypers = Hypers::resolve(entry.name, entry.hypers, &self.hypers)
            .map_err(|(key, msg)| {
                // A bad value of a key this optimizer takes needs no hint about others.
                let hint = match entry.hypers.iter().any(|h| h.name == key) {
                    true => String::new(),
                    false => takers(entry.name, &key),
                };
                (key, msg + &hint)
            })
            .map_err(located)?;
        for h in entry.hypers.iter().filter(|h| h.kind == Kind::Optimizer) {
            if let Some(toml::Value::Table(inner)) = self.hypers.get(h.name) {
                let inner: OptimizerSpec = toml::Value::Table(inner.clone())
                    .try_into()
                    .map_err(|e| (format!("{prefix}.{}", h.name), format!("{e}")))?;
                inner.validate(&format!("{prefix}.{}", h.name))?;
            }
        }
        Ok(hypers)
    }

    /// Checks that every float hyperparameter fits the run's `dtype` (f32 flushes values
    /// below 1.2e-38 and overflows above 3.4e38), nested optimizers included.
    pub fn check_dtype(&self, prefix: &str, dtype: Dtype) -> Result<(), (String, String)> {
        let hypers = self.resolve(prefix)?;
        let entry = registry::find(&self.name).expect("resolved above");
        for h in entry.hypers {
            match (h.kind, hypers.get(h.name)) {
                (Kind::Float { .. }, Some(toml::Value::Float(v))) => {
                    let (tiny, huge) = dtype.normal_range();
                    let magnitude = v.abs();
                    if magnitude != 0.0 && !(tiny..=huge).contains(&magnitude) {
                        return Err((
                            format!("{prefix}.{}", h.name),
                            format!(
                                "{v:e} does not fit train.dtype = \"{dtype}\", whose numbers \
                                 lie between {tiny:.1e} and {huge:.1e} in magnitude; use dtype = \
                                 \"f64\" or another value"
                            ),
                        ));
                    }
                }
                (Kind::Optimizer, Some(toml::Value::Table(inner))) => {
                    let inner: OptimizerSpec = toml::Value::Table(inner.clone())
                        .try_into()
                        .map_err(|e| (format!("{prefix}.{}", h.name), format!("{e}")))?;
                    inner.check_dtype(&format!("{prefix}.{}", h.name), dtype)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The spec with every default written out, in the registry's key order.
    pub fn resolved(&self) -> Self {
        let Ok(hypers) = self.resolve("optimizer") else {
            return self.clone();
        };
        let entry = registry::find(&self.name).expect("resolved above");
        let mut table = toml::Table::new();
        for h in entry.hypers {
            if let Some(v) = hypers.get(h.name) {
                let v = match (h.kind, v) {
                    (Kind::Optimizer, toml::Value::Table(inner)) => {
                        let inner: OptimizerSpec = toml::Value::Table(inner.clone())
                            .try_into()
                            .expect("validated");
                        toml::Value::try_from(inner.resolved()).expect("serializes")
                    }
                    _ => v.clone(),
                };
                table.insert(h.name.to_string(), v);
            }
        }
        Self {
            name: self.name.clone(),
            hypers: table,
        }
    }
}

/// For a key `name` does not take: which optimizers do, as a hint.
fn takers(name: &str, key: &str) -> String {
    let takers: Vec<&str> = registry::all()
        .into_iter()
        .filter(|e| e.name != name && e.hypers.iter().any(|h| h.name == key))
        .map(|e| e.name)
        .collect();
    match takers.len() {
        0 => String::new(),
        1..=4 => format!(" (`{key}` is for {})", takers.join(", ")),
        n => format!(" (`{key}` is for {n} other optimizers)"),
    }
}
