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
    /// The optimizer of player `player` among a task's `players` (a GAN's "critic" and
    /// "generator"): `[optimizer]` without the players' tables, changed by
    /// `[optimizer.<player>]`'s keys — or that table alone when it names its own optimizer.
    /// A task's only player ("") takes `[optimizer]` as it is.
    pub fn for_player(&self, player: &str, players: &[&str]) -> Self {
        let mut shared = self.clone();
        shared.hypers.retain(|key, _| !players.contains(&key));
        let Some(toml::Value::Table(own)) = self.hypers.get(player) else {
            return shared;
        };
        if let Some(toml::Value::String(name)) = own.get("name") {
            let mut hypers = own.clone();
            hypers.remove("name");
            return Self {
                name: name.clone(),
                hypers,
            };
        }
        shared.hypers.extend(own.clone());
        shared
    }

    /// Checks every player's optimizer against the registry (see [`Self::validate`]); a bad
    /// key of a player's own table is named under it (`optimizer.critic.lr`).
    pub fn validate_players(&self, prefix: &str, players: &[&str]) -> Result<(), (String, String)> {
        self.each_player(prefix, players, |spec, prefix| spec.validate(prefix))
    }

    /// [`Self::check_dtype`] for every player's optimizer.
    pub fn check_dtype_players(
        &self,
        prefix: &str,
        players: &[&str],
        dtype: Dtype,
    ) -> Result<(), (String, String)> {
        self.each_player(prefix, players, |spec, prefix| {
            spec.check_dtype(prefix, dtype)
        })
    }

    fn each_player(
        &self,
        prefix: &str,
        players: &[&str],
        check: impl Fn(&Self, &str) -> Result<(), (String, String)>,
    ) -> Result<(), (String, String)> {
        for &player in players {
            let own = match self.hypers.get(player) {
                Some(toml::Value::Table(own)) => Some(own),
                Some(_) => {
                    return Err((
                        format!("{prefix}.{player}"),
                        format!("must be a table of the {player}'s optimizer keys"),
                    ))
                }
                None => None,
            };
            check(&self.for_player(player, players), prefix).map_err(|(key, msg)| {
                let key_in_own = key
                    .strip_prefix(prefix)
                    .and_then(|k| k.strip_prefix('.'))
                    .is_some_and(|k| own.is_some_and(|own| own.contains_key(k)));
                match key_in_own {
                    true => (format!("{prefix}.{player}{}", &key[prefix.len()..]), msg),
                    false => (key, msg),
                }
            })?;
        }
        Ok(())
    }

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

    /// The spec with every default written out, in the registry's key order; the tables
    /// of a task's `players` kept as written after the shared keys.
    pub fn resolved_players(&self, players: &[&str]) -> Self {
        let mut resolved = self.for_player("", players).resolved();
        for &player in players {
            if let Some(own) = self.hypers.get(player) {
                resolved.hypers.insert(player.to_string(), own.clone());
            }
        }
        resolved
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
