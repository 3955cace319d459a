//! The Python venv that `scripts/env.sh` makes: it carries libtorch and the packages whose
//! files pisa reads at run time (all-MiniLM-L6-v2's model, gymnasium's MuJoCo XMLs).
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The packages' folder below a venv.
pub const SITE_PACKAGES: &str = "lib/python3*/site-packages";

/// The venv: `$VIRTUAL_ENV`, else `$PISA_VENV`, else `~/.cache/pisa/venv` (scripts/env.sh's).
pub fn root() -> Result<PathBuf> {
    std::env::var_os("VIRTUAL_ENV")
        .or_else(|| std::env::var_os("PISA_VENV"))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/pisa/venv")))
        .context("neither VIRTUAL_ENV, PISA_VENV nor HOME is set: no venv to look in")
}

/// The first path matching the glob `pattern` that `accept` takes.
pub fn first_match(pattern: &Path, accept: impl Fn(&Path) -> bool) -> Option<PathBuf> {
    glob::glob(&pattern.to_string_lossy())
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .find(|path| accept(path))
}
