//! `--set key.path=value` and sweep points: edits applied to the spec's TOML text.
use super::{Spec, SpecError};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// One `key.path = value` edit; `value` is TOML (`16`, `0.99`, `"auto"`, `[1, 2]`),
/// and a bare word that is not TOML is taken as a string (`--set optimizer.k0=auto`).
#[derive(Debug, Clone)]
pub struct Override {
    pub key: String,
    pub value: toml_edit::Value,
    /// Made from the spec's own `[sweep]` table rather than a `--set` argument.
    pub from_sweep: bool,
}

impl Override {
    /// A point of the spec's `[sweep]` grid.
    pub fn sweep(key: &str, value: &toml::Value) -> Self {
        let text = toml::Value::to_string(value);
        Self {
            key: key.to_string(),
            value: toml_edit::Value::from_str(&text).expect("a toml::Value prints as TOML"),
            from_sweep: true,
        }
    }
}

impl FromStr for Override {
    type Err = String;
    fn from_str(arg: &str) -> Result<Self, String> {
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("--set expects key.path=value, got {arg:?}"))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(format!("--set: bad key {key:?} in {arg:?}"));
        }
        let value = value.trim();
        let value =
            toml_edit::Value::from_str(value).unwrap_or_else(|_| toml_edit::Value::from(value));
        Ok(Self {
            key: key.to_string(),
            value,
            from_sweep: false,
        })
    }
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value.to_string().trim())
    }
}

/// Applies `overrides` to the spec text `source` (from `path`) and parses the result.
/// An error caused by a `--set` names it as its origin; one caused by a sweep value points
/// at that `[sweep]` entry; any other points at the key in the original file.
pub fn apply(source: &str, path: &Path, overrides: &[Override]) -> Result<Spec, SpecError> {
    let mut doc = toml_edit::DocumentMut::from_str(source)
        .map_err(|e| SpecError::io(path, format!("cannot parse spec: {e}")))?;
    for o in overrides {
        set(&mut doc, o).map_err(|message| SpecError {
            origin: format!("--set {o}"),
            position: None,
            key: Some(o.key.clone()),
            message,
        })?;
    }
    let edited = doc.to_string();
    Spec::parse(&edited, path).map_err(|mut e| {
        let culprit = overrides.iter().rev().find(|o| {
            e.key
                .as_deref()
                .is_some_and(|k| k == o.key || k.starts_with(&format!("{}.", o.key)))
        });
        let locate = |key: &str| {
            super::locate::nearest(source, key).map(|at| super::error::line_column(source, at))
        };
        match culprit {
            Some(o) if o.from_sweep => {
                e.position = locate(&format!("sweep.{}", o.key));
                e.key = Some(format!("sweep.\"{}\"", o.key));
                e.message = format!("value {}: {}", o.value.to_string().trim(), e.message);
            }
            Some(o) => {
                e.origin = format!("--set {o}");
                e.position = None;
            }
            None => e.position = e.key.as_deref().and_then(locate),
        }
        e
    })
}

fn set(doc: &mut toml_edit::DocumentMut, o: &Override) -> Result<(), String> {
    let parts: Vec<&str> = o.key.split('.').collect();
    let (last, tables) = parts.split_last().expect("keys are non-empty");
    let mut table = doc.as_table_mut() as &mut dyn toml_edit::TableLike;
    for part in tables {
        let item = table
            .entry(part)
            .or_insert(toml_edit::Item::Table(toml_edit::Table::new()));
        table = item
            .as_table_like_mut()
            .ok_or_else(|| format!("`{part}` is a value, not a table"))?;
    }
    table.insert(last, toml_edit::Item::Value(o.value.clone()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values_as_toml_or_bare_strings() {
        let o: Override = "optimizer.sigma0=32".parse().unwrap();
        assert_eq!(o.value.as_integer(), Some(32));
        let o: Override = "optimizer.k0=auto".parse().unwrap();
        assert_eq!(o.value.as_str(), Some("auto"));
        assert!("nokey".parse::<Override>().is_err());
        assert!("a..b=1".parse::<Override>().is_err());
    }
}
