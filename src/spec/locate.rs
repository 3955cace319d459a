//! Finding keys in TOML source, so errors can point at a line and column.
use toml::de::{DeTable, DeValue};

/// Byte offset where dotted `key` is written in `source` (the key itself), if it is.
/// A segment may itself contain dots when it was quoted (`"optimizer.sigma0" = [...]`).
pub fn span_of(source: &str, key: &str) -> Option<usize> {
    let root = DeTable::parse(source).ok()?;
    let segments: Vec<&str> = key.split('.').collect();
    let mut table = root.get_ref();
    let mut rest = &segments[..];
    loop {
        // Longest prefix of the remaining segments that names a key of this table.
        let (len, k, v) = (1..=rest.len()).rev().find_map(|len| {
            let name = rest[..len].join(".");
            table
                .iter()
                .find(|(k, _)| k.get_ref().as_ref() == name)
                .map(|(k, v)| (len, k, v))
        })?;
        rest = &rest[len..];
        if rest.is_empty() {
            return Some(k.span().start);
        }
        table = v.get_ref().as_table()?;
    }
}

/// Where `key` is written, else its nearest enclosing table that is.
pub fn nearest(source: &str, key: &str) -> Option<usize> {
    let mut key = key;
    loop {
        if let Some(at) = span_of(source, key) {
            return Some(at);
        }
        key = &key[..key.rfind('.')?];
    }
}

/// The dotted key whose key or value text contains byte `offset`, deepest first.
pub fn key_at(source: &str, offset: usize) -> Option<String> {
    let root = DeTable::parse(source).ok()?;
    let mut path = Vec::new();
    find(root.get_ref(), offset, &mut path).then(|| path.join("."))
}

fn find(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
    for (k, v) in table.iter() {
        let (ks, vs) = (k.span(), v.span());
        let inside = ks.contains(&offset) || vs.contains(&offset) || vs.end == offset;
        if let DeValue::Table(t) = v.get_ref() {
            path.push(k.get_ref().to_string());
            if find(t, offset, path) || inside {
                return true;
            }
            path.pop();
        } else if inside {
            path.push(k.get_ref().to_string());
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str =
        "name = \"x\"\n[optimizer]\nsigma0 = 16.0\n[sweep]\n\"optimizer.gamma\" = [0.5]\n";

    #[test]
    fn finds_nested_and_quoted_keys() {
        let at = span_of(SRC, "optimizer.sigma0").unwrap();
        assert!(SRC[at..].starts_with("sigma0"));
        let at = span_of(SRC, "sweep.optimizer.gamma").unwrap();
        assert!(SRC[at..].starts_with("\"optimizer.gamma\""));
        assert_eq!(span_of(SRC, "optimizer.rho"), None);
    }

    #[test]
    fn names_the_key_at_an_offset() {
        let at = SRC.find("16.0").unwrap();
        assert_eq!(key_at(SRC, at).as_deref(), Some("optimizer.sigma0"));
    }
}
