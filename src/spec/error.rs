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
        let mut message = err.message().trim().to_string();
        if let Some(span) = err.span().filter(|_| message.starts_with("duplicate")) {
            message = duplicate(source, span);
        }
        Self {
            origin: origin.display().to_string(),
            position,
            key,
            message,
        }
    }

    /// A spec that is not UTF-8 text, located at its first bad byte.
    pub fn not_utf8(origin: &Path, bytes: &[u8], err: &std::str::Utf8Error) -> Self {
        let good = std::str::from_utf8(&bytes[..err.valid_up_to()]).expect("valid up to here");
        Self {
            origin: origin.display().to_string(),
            position: Some(line_column(good, good.len())),
            key: None,
            message: format!(
                "the spec is not UTF-8 text: byte 0x{:02x} cannot start a character here",
                bytes[err.valid_up_to()]
            ),
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

/// The message for a key or table written twice, naming it (the TOML parser says only
/// "duplicate key" and points at the second occurrence).
fn duplicate(source: &str, span: std::ops::Range<usize>) -> String {
    let name = source.get(span.clone()).unwrap_or("").trim();
    let line_start = source[..span.start.min(source.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let header = source[line_start..span.start.min(source.len())].trim_start();
    if header.starts_with('[') {
        let (open, close) = match header.starts_with("[[") {
            true => ("[[", "]]"),
            false => ("[", "]"),
        };
        format!("table `{open}{name}{close}` is defined twice (merge the two tables into one)")
    } else {
        format!("key `{name}` is given twice (keep one of them)")
    }
}

/// An error about a spec key found while building the experiment (the data's shape, a
/// model that does not fit it): the CLI locates `key` in the spec file and exits 2.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyError {
    pub key: String,
    pub message: String,
}

impl KeyError {
    pub fn at(key: &str, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Self {
            key: key.to_string(),
            message: message.into(),
        })
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key `{}`: {}", self.key, self.message)
    }
}

impl std::error::Error for KeyError {}

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
