//! Hyperparameters as the registry declares them and a spec's `[optimizer]` gives them:
//! each optimizer lists its keys with a kind, a default and a line of documentation;
//! `resolve` checks a spec table against that list and fills the defaults in.
use std::collections::BTreeMap;
use toml::Value;

/// What values a key takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A finite float in `[min, max]`, or `(min, max]` etc. as the bounds say.
    Float {
        min: Bound,
        max: Bound,
    },
    /// An integer ≥ `min`.
    Int {
        min: i64,
    },
    /// An integer ≥ 1 or the string "auto" (k0 of (A.1)).
    IntOrAuto,
    Bool,
    /// One of these strings.
    Choice(&'static [&'static str]),
    /// One of these integers (SISA's scheme 1, 2, 3).
    IntChoice(&'static [i64]),
    /// A nested `[optimizer.<key>]` table naming another optimizer (Lookahead's inner one).
    Optimizer,
    /// A list of strings: parameter tensors by name (Muon's `adamw_params`).
    Names,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Open(f64),
    Closed(f64),
    None,
}

/// The default when a spec leaves the key out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Default {
    Float(f64),
    Int(i64),
    Bool(bool),
    Str(&'static str),
    /// The spec must give it.
    Required,
    /// Absent unless given (the optimizer derives it, e.g. from another key).
    Unset,
}

/// One key an optimizer takes.
#[derive(Debug, Clone, Copy)]
pub struct Hyper {
    pub name: &'static str,
    pub kind: Kind,
    pub default: Default,
    pub doc: &'static str,
}

pub const fn float(name: &'static str, default: f64, doc: &'static str) -> Hyper {
    Hyper {
        name,
        kind: Kind::Float {
            min: Bound::Closed(0.0),
            max: Bound::None,
        },
        default: Default::Float(default),
        doc,
    }
}

/// A float in `[0, 1)`: momentum and averaging coefficients.
pub const fn unit(name: &'static str, default: f64, doc: &'static str) -> Hyper {
    Hyper {
        name,
        kind: Kind::Float {
            min: Bound::Closed(0.0),
            max: Bound::Open(1.0),
        },
        default: Default::Float(default),
        doc,
    }
}

/// A float > 0 (learning rates, ε, σ⁰).
pub const fn positive(name: &'static str, default: f64, doc: &'static str) -> Hyper {
    Hyper {
        name,
        kind: Kind::Float {
            min: Bound::Open(0.0),
            max: Bound::None,
        },
        default: Default::Float(default),
        doc,
    }
}

pub const fn boolean(name: &'static str, default: bool, doc: &'static str) -> Hyper {
    Hyper {
        name,
        kind: Kind::Bool,
        default: Default::Bool(default),
        doc,
    }
}

pub const fn int(name: &'static str, min: i64, default: i64, doc: &'static str) -> Hyper {
    Hyper {
        name,
        kind: Kind::Int { min },
        default: Default::Int(default),
        doc,
    }
}

impl Hyper {
    pub const fn required(mut self) -> Self {
        self.default = Default::Required;
        self
    }

    /// Checks a value given for this key; the message names the key and the value.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        let name = self.name;
        let wrong = |what: &str| Err(format!("{name} must be {what}, not {value}"));
        match self.kind {
            Kind::Float { min, max } => {
                let Some(v) = as_f64(value) else {
                    return wrong("a number");
                };
                let above = match min {
                    Bound::Open(m) => v > m,
                    Bound::Closed(m) => v >= m,
                    Bound::None => true,
                };
                let below = match max {
                    Bound::Open(m) => v < m,
                    Bound::Closed(m) => v <= m,
                    Bound::None => true,
                };
                if v.is_finite() && above && below {
                    Ok(())
                } else {
                    wrong(&format!("a finite number in {}", interval(min, max)))
                }
            }
            Kind::Int { min } => match value.as_integer() {
                Some(v) if v >= min => Ok(()),
                _ => wrong(&format!("an integer >= {min}")),
            },
            Kind::IntOrAuto => match value {
                Value::Integer(v) if *v >= 1 => Ok(()),
                Value::String(s) if s == "auto" => Ok(()),
                _ => wrong("a positive integer or \"auto\""),
            },
            Kind::Bool => match value {
                Value::Boolean(_) => Ok(()),
                _ => wrong("true or false"),
            },
            Kind::Choice(options) => match value.as_str() {
                Some(s) if options.contains(&s) => Ok(()),
                _ => wrong(&format!("one of {}", quoted(options))),
            },
            Kind::IntChoice(options) => match value.as_integer() {
                Some(v) if options.contains(&v) => Ok(()),
                _ => wrong(&format!(
                    "one of {}",
                    options
                        .iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            },
            Kind::Optimizer => match value {
                Value::Table(t) if t.get("name").and_then(Value::as_str).is_some() => Ok(()),
                _ => wrong("a table with the inner optimizer's name and hyperparameters"),
            },
            Kind::Names => match value {
                Value::Array(a) if a.iter().all(Value::is_str) => Ok(()),
                _ => wrong("a list of parameter names, e.g. [\"fc2.weight\"]"),
            },
        }
    }

    pub fn default_value(&self) -> Option<Value> {
        match self.default {
            Default::Float(v) => Some(Value::Float(v)),
            Default::Int(v) => Some(Value::Integer(v)),
            Default::Bool(v) => Some(Value::Boolean(v)),
            Default::Str(s) => Some(Value::String(s.to_string())),
            Default::Required | Default::Unset => None,
        }
    }

    /// The default as `pisa list optimizers` prints it.
    pub fn default_text(&self) -> String {
        match self.default {
            Default::Required => "required".into(),
            Default::Unset => "unset".into(),
            _ => self
                .default_value()
                .map(|v| v.to_string())
                .unwrap_or_default(),
        }
    }
}

fn as_f64(value: &Value) -> Option<f64> {
    match value {
        Value::Float(v) => Some(*v),
        Value::Integer(v) => Some(*v as f64),
        _ => None,
    }
}

fn interval(min: Bound, max: Bound) -> String {
    let lo = match min {
        Bound::Open(m) => format!("({m}"),
        Bound::Closed(m) => format!("[{m}"),
        Bound::None => "(-inf".into(),
    };
    let hi = match max {
        Bound::Open(m) => format!("{m})"),
        Bound::Closed(m) => format!("{m}]"),
        Bound::None => "inf)".into(),
    };
    format!("{lo}, {hi}")
}

fn quoted(options: &[&str]) -> String {
    options
        .iter()
        .map(|o| format!("{o:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An optimizer's hyperparameters, checked and with defaults filled in.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hypers {
    values: BTreeMap<String, Value>,
}

impl Hypers {
    /// Checks `given` (the `[optimizer]` table without `name`) against `declared`.
    /// On failure returns the offending key (relative to `[optimizer]`, "" for the
    /// table itself) and a message.
    pub fn resolve(
        optimizer: &str,
        declared: &[Hyper],
        given: &toml::Table,
    ) -> Result<Self, (String, String)> {
        for key in given.keys() {
            if !declared.iter().any(|h| h.name == key) {
                let known: Vec<&str> = declared.iter().map(|h| h.name).collect();
                return Err((
                    key.clone(),
                    format!(
                        "unknown key `{key}` for optimizer {optimizer}; it takes: {}",
                        known.join(", ")
                    ),
                ));
            }
        }
        let mut values = BTreeMap::new();
        for h in declared {
            match given.get(h.name) {
                Some(v) => {
                    h.check(v).map_err(|m| (h.name.to_string(), m))?;
                    // A float key written as an integer (sigma0 = 32) resolves to 32.0.
                    let v = match (h.kind, v) {
                        (Kind::Float { .. }, Value::Integer(i)) => Value::Float(*i as f64),
                        _ => v.clone(),
                    };
                    values.insert(h.name.to_string(), v);
                }
                None if h.default == Default::Required => {
                    return Err((
                        h.name.to_string(),
                        format!("optimizer {optimizer} needs `{}` ({})", h.name, h.doc),
                    ))
                }
                None => {
                    if let Some(v) = h.default_value() {
                        values.insert(h.name.to_string(), v);
                    }
                }
            }
        }
        Ok(Self { values })
    }

    /// Builds directly from key/value pairs (tests and programmatic use), unchecked.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, Value)>) -> Self {
        Self {
            values: pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }

    pub fn table(&self) -> toml::Table {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// A float key that `resolve` guaranteed (declared with a default or required).
    pub fn f64(&self, key: &str) -> f64 {
        self.opt_f64(key)
            .unwrap_or_else(|| panic!("hyperparameter {key} was not resolved"))
    }

    pub fn opt_f64(&self, key: &str) -> Option<f64> {
        self.values.get(key).and_then(as_f64)
    }

    pub fn bool(&self, key: &str) -> bool {
        self.values
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or_else(|| panic!("hyperparameter {key} was not resolved"))
    }

    pub fn usize(&self, key: &str) -> usize {
        self.values
            .get(key)
            .and_then(Value::as_integer)
            .unwrap_or_else(|| panic!("hyperparameter {key} was not resolved")) as usize
    }

    /// A [`Kind::Names`] key: its names, none when unset.
    pub fn names(&self, key: &str) -> Vec<&str> {
        self.values
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    pub fn str(&self, key: &str) -> &str {
        self.values
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("hyperparameter {key} was not resolved"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECLARED: &[Hyper] = &[
        positive("lr", 1e-3, "learning rate"),
        unit("beta1", 0.9, "first-moment decay"),
        boolean("amsgrad", false, "max of second moments"),
        positive("sigma0", 1.0, "σ⁰").required(),
    ];

    fn table(src: &str) -> toml::Table {
        src.parse().unwrap()
    }

    #[test]
    fn fills_defaults_and_checks_values() {
        let h = Hypers::resolve("x", DECLARED, &table("lr = 0.1\nsigma0 = 2")).unwrap();
        assert_eq!(h.f64("lr"), 0.1);
        assert_eq!(h.f64("beta1"), 0.9);
        assert!(!h.bool("amsgrad"));
        assert_eq!(h.f64("sigma0"), 2.0);
        let err = |src: &str| Hypers::resolve("x", DECLARED, &table(src)).unwrap_err();
        assert_eq!(err("sigma0 = 1\nbogus = 1").0, "bogus");
        assert!(err("sigma0 = 1\nbogus = 1").1.contains("lr, beta1"));
        assert_eq!(err("sigma0 = 1\nbeta1 = 1.0").0, "beta1");
        assert!(err("sigma0 = 1\nlr = 0").1.contains("(0, inf)"));
        assert!(err("sigma0 = 1\namsgrad = 1").1.contains("true or false"));
        assert_eq!(err("lr = 1.0").0, "sigma0");
        assert!(err("lr = 1.0").1.contains("sigma0"));
    }
}
