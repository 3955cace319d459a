//! The error every bad spec turns into: where (file, line, column, key) and what.
use std::fmt;
use std::path::Path;

/// A spec that cannot be used. The CLI exits with code 2 on it, before writing anything.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    /// The file, or the `--set` argument, the problem came from.
    pub origin: String,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// The dotted key, when known.
    pub key: Option<String>,
    pub message: String,
}

impl SpecError {
    pub fn io(path: &Path, message: String) -> Self {
        Self {
            origin: path.display().to_string(),
            position: None,
            key: None,
            message,
        }
    }

    /// From a serde/TOML error on `source`.
    pub fn from_toml(origin: &Path, source: &str, err: &toml::de::Error) -> Self {
        let position = err.span().map(|s| line_column(source, s.start));
        let key = position.and_then(|_| super::locate::key_at(source, err.span()?.start));
        Self {
            origin: origin.display().to_string(),
            position,
            key,
            message: err.message().trim().to_string(),
        }
    }

    /// A semantic error about `key` (dotted path), located at the key in `source`, or at
    /// its nearest enclosing table when the key is absent.
    pub fn at_key(origin: &Path, source: &str, key: &str, message: String) -> Self {
        let position = super::locate::nearest(source, key).map(|start| line_column(source, start));
        Self {
            origin: origin.display().to_string(),
            position,
            key: Some(key.to_string()),
            message,
        }
    }
}

/// 1-based (line, column) of byte `offset` in `source`, column counted in characters.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": ")?;
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for SpecError {}
