//! Dataset readers and generators; nothing task-specific.
pub mod cifar;
pub mod fetch;
pub mod idx;
pub mod image_folder;
pub mod least_squares;
pub mod libsvm;
pub mod partition;
pub mod prepare_text;
pub mod ptb;
pub mod recipes;
pub mod shards;
pub mod synthetic;
pub mod tokenizer;
pub mod transform;

use std::path::{Path, PathBuf};

/// Resolves a spec's data path: absolute as given, relative ones inside `data_dir`.
/// A missing file is an error naming where it was expected and what it should hold.
pub fn locate(path: &Path, data_dir: &Path, what: &str) -> anyhow::Result<PathBuf> {
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        data_dir.join(path)
    };
    if !full.is_file() {
        anyhow::bail!(
            "data file {} not found (data.path = {:?}, data directory {}; set it with \
             --data-dir or PISA_DATA_DIR). Expected {}.",
            full.display(),
            path,
            data_dir.display(),
            what.trim_end_matches('.')
        );
    }
    Ok(full)
}

/// Like [`locate`] for a folder of files (image datasets).
pub fn locate_dir(path: &Path, data_dir: &Path, what: &str) -> anyhow::Result<PathBuf> {
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        data_dir.join(path)
    };
    if !full.is_dir() {
        anyhow::bail!(
            "data folder {} not found (data.path = {:?}, data directory {}; set it with \
             --data-dir or PISA_DATA_DIR). Expected {}.",
            full.display(),
            path,
            data_dir.display(),
            what.trim_end_matches('.')
        );
    }
    Ok(full)
}
