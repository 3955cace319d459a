//! The `[protocol]` table (a protocol and its parameters) and the `pisa mixing` spec, parsed
//! strictly and located like every spec (`file:line:col: key …`, [`SpecError`], exit 2).
use super::Protocol;
use crate::spec::{check_folder_name, SpecError};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The protocols a `[protocol]` table's `kind` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Allreduce,
    LocalSteps,
    AsyncPs,
    SyncRing,
    AsyncRing,
    Slack,
}

/// A `[protocol]` table: `kind` and the parameters that kind takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolSpec {
    pub kind: Kind,
    /// `local-steps`: rounds of local steps per AllReduce (the paper's m), ≥ 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<usize>,
    /// `async-ps`: the longest pull delay in rounds of n worker steps (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay_rounds: Option<f64>,
    /// `slack`: γ ∈ (0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma: Option<f64>,
}

impl ProtocolSpec {
    /// The protocol, or the offending parameter (a key of this table) and what is wrong.
    pub fn protocol(&self) -> Result<Protocol, (&'static str, String)> {
        let takes = match self.kind {
            Kind::LocalSteps => "m",
            Kind::AsyncPs => "max_delay_rounds",
            Kind::Slack => "gamma",
            Kind::Allreduce | Kind::SyncRing | Kind::AsyncRing => "",
        };
        let given = [
            ("m", self.m.is_some()),
            ("max_delay_rounds", self.max_delay_rounds.is_some()),
            ("gamma", self.gamma.is_some()),
        ];
        if let Some((key, _)) = given.iter().find(|&&(key, g)| g && key != takes) {
            let kind = toml::Value::try_from(self.kind).expect("a kind serializes");
            return Err((key, format!("kind = {kind} takes no `{key}`")));
        }
        Ok(match self.kind {
            Kind::Allreduce => Protocol::AllReduce,
            Kind::SyncRing => Protocol::SyncRing,
            Kind::AsyncRing => Protocol::AsyncRing,
            Kind::LocalSteps => match self.m {
                Some(m) if m >= 1 => Protocol::LocalSteps { m },
                Some(_) => return Err(("m", "m (local rounds per AllReduce) must be ≥ 1".into())),
                None => return Err(("m", "local-steps needs m, e.g. m = 2".into())),
            },
            Kind::AsyncPs => match self.max_delay_rounds.unwrap_or(0.0) {
                r if r >= 0.0 && r.is_finite() => Protocol::AsyncPs {
                    max_delay_rounds: r,
                },
                r => {
                    return Err((
                        "max_delay_rounds",
                        format!("must be a finite number ≥ 0, not {r}"),
                    ))
                }
            },
            Kind::Slack => match self.gamma {
                Some(gamma) if gamma > 0.0 && gamma <= 1.0 => Protocol::Slack { gamma },
                Some(gamma) => return Err(("gamma", format!("γ must be in (0, 1], not {gamma}"))),
                None => return Err(("gamma", "slack needs gamma, e.g. gamma = 0.5".into())),
            },
        })
    }
}

/// A `pisa mixing` spec: which protocols, for which numbers of workers, how many runs.
///
/// ```toml
/// name = "mixml-figure3"
/// workers = [2, 4, 8]
/// runs = 1000
/// [protocols.AllReduce]        # the label of its curve and rows
/// kind = "allreduce"
/// [protocols."Local Step (m = 2)"]
/// kind = "local-steps"
/// m = 2
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixingSpec {
    /// Results go to `<out>/<name>/`.
    pub name: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The numbers of workers n, each ≥ 2.
    pub workers: Vec<usize>,
    /// Runs per protocol and n (`--runs` overrides it).
    pub runs: usize,
    /// Columns d of the random states X ∈ R^{rows×d}.
    #[serde(default = "default_dim")]
    pub dim: usize,
    /// A run that has not mixed after this many worker steps is an error.
    #[serde(default = "default_max_time")]
    pub max_time: u64,
    /// Label → `[protocol]` table, in the file's order.
    #[serde(with = "ordered")]
    pub protocols: Vec<(String, ProtocolSpec)>,
    /// `pisa mixing --live`: the protocols run over MPI ranks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveSpec>,
}

/// `[live]`: how a live run's workers compute ([`super::live`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSpec {
    /// Steps each worker makes in one run.
    #[serde(default = "default_live_steps")]
    pub steps: usize,
    /// The mean duration of a step in milliseconds: each is a sleep of an exponential
    /// duration (every worker's steps a Poisson process, the simulation's model).
    #[serde(default = "default_step_ms")]
    pub step_ms: f64,
    /// The runs of each protocol whose merged event log is written (the first ones).
    #[serde(default = "default_logs")]
    pub logs: usize,
}

impl Default for LiveSpec {
    fn default() -> Self {
        Self {
            steps: default_live_steps(),
            step_ms: default_step_ms(),
            logs: default_logs(),
        }
    }
}

fn default_live_steps() -> usize {
    200
}

fn default_step_ms() -> f64 {
    1.0
}

fn default_logs() -> usize {
    10
}

fn default_dim() -> usize {
    1
}

fn default_max_time() -> u64 {
    10_000_000
}

impl MixingSpec {
    /// Reads and validates the spec at `path`; returns it with its protocols built.
    pub fn load(path: &Path) -> Result<(MixingSpec, Vec<(String, Protocol)>), SpecError> {
        Self::parse(&crate::spec::read_source(path)?, path)
    }

    /// Strictly parses and validates TOML `source`; `origin` names it in errors.
    pub fn parse(
        source: &str,
        origin: &Path,
    ) -> Result<(MixingSpec, Vec<(String, Protocol)>), SpecError> {
        let spec: MixingSpec =
            toml::from_str(source).map_err(|e| SpecError::from_toml(origin, source, &e))?;
        spec.validate()
            .map(|protocols| (spec.clone(), protocols))
            .map_err(|(key, msg)| SpecError::at_key(origin, source, &key, msg))
    }

    fn validate(&self) -> Result<Vec<(String, Protocol)>, (String, String)> {
        let bad = |key: &str, msg: String| (key.to_string(), msg);
        check_folder_name(&self.name).map_err(|e| bad("name", e))?;
        if self.workers.is_empty() || self.workers.iter().any(|&n| n < 2) {
            return Err(bad(
                "workers",
                "workers must list numbers of workers, each ≥ 2".into(),
            ));
        }
        let twice = (1..self.workers.len()).find(|&i| self.workers[..i].contains(&self.workers[i]));
        if let Some(i) = twice {
            return Err(bad(
                "workers",
                format!("workers lists {} twice", self.workers[i]),
            ));
        }
        let counts = [
            ("runs", self.runs as u64),
            ("dim", self.dim as u64),
            ("max_time", self.max_time),
        ];
        if let Some((key, _)) = counts.iter().find(|(_, value)| *value == 0) {
            return Err(bad(key, format!("{key} must be ≥ 1")));
        }
        if let Some(live) = &self.live {
            if live.steps == 0 {
                return Err(bad("live.steps", "live.steps must be ≥ 1".into()));
            }
            if !(live.step_ms > 0.0 && live.step_ms.is_finite()) {
                return Err(bad(
                    "live.step_ms",
                    format!(
                        "live.step_ms must be a positive number, not {}",
                        live.step_ms
                    ),
                ));
            }
        }
        if self.protocols.is_empty() {
            return Err(bad(
                "protocols",
                "give at least one [protocols.<label>] table".into(),
            ));
        }
        self.protocols
            .iter()
            .map(|(label, p)| {
                if label.trim().is_empty() {
                    return Err(bad(
                        "protocols",
                        "a protocol's label must not be empty".into(),
                    ));
                }
                let located = |(key, msg)| (format!("protocols.{label}.{key}"), msg);
                let protocol = p.protocol().map_err(located)?;
                let most = *self
                    .workers
                    .iter()
                    .max()
                    .expect("workers checked non-empty");
                if let Protocol::AsyncPs { max_delay_rounds } = protocol {
                    if max_delay_rounds * most as f64 > self.max_time as f64 {
                        return Err(located((
                            "max_delay_rounds",
                            format!(
                                "a delay of up to {max_delay_rounds} × {most} worker steps \
                                 exceeds max_time = {}",
                                self.max_time
                            ),
                        )));
                    }
                }
                Ok((label.clone(), protocol))
            })
            .collect()
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a MixingSpec always serializes")
    }
}

/// A TOML table as a `Vec` of (key, value) pairs, keeping the file's order.
mod ordered {
    use serde::de::{MapAccess, Visitor};
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::marker::PhantomData;

    pub fn serialize<S: Serializer, V: Serialize>(
        pairs: &[(String, V)],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(pairs.len()))?;
        for (key, value) in pairs {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Vec<(String, V)>, D::Error> {
        struct Pairs<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Pairs<V> {
            type Value = Vec<(String, V)>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table of tables")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(pairs)
            }
        }
        deserializer.deserialize_map(Pairs(PhantomData))
    }
}
