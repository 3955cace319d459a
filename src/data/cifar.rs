//! The binary version of CIFAR-10 (https://www.cs.toronto.edu/~kriz/cifar.html).
//!
//! The archive `cifar-10-binary.tar.gz` holds a folder `cifar-10-batches-bin` with five
//! training files `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`, 10,000
//! records each. A record is 3073 bytes: the label (0–9) in one byte, then the 32×32
//! image as 1024 red, 1024 green and 1024 blue bytes, each channel row-major. There is
//! no header: a file is just its records.
//!
//! [`load`] reads whichever training files are there (at least one) and the test file.
use super::idx::Split;
use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// The folder the official archive unpacks to.
pub const FOLDER: &str = "cifar-10-batches-bin";
/// The training files, in the order they are read.
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
pub const TEST_FILE: &str = "test_batch.bin";
/// Channels, height and width of an image.
pub const SHAPE: [i64; 3] = [3, 32, 32];
/// Bytes in a record: one label byte and 3×32×32 pixels.
pub const RECORD: usize = 1 + 3 * 32 * 32;
/// Records in each official file.
pub const RECORDS_PER_FILE: usize = 10_000;
/// The class names in label order (`batches.meta.txt`).
pub const CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Where the files come from, for the errors.
pub const HOW_TO_GET: &str = "Run `pisa data fetch cifar10` (it puts them in \
     <data dir>/cifar10/cifar-10-batches-bin/), or download the official \
     https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz and extract it there \
     (tar xzf cifar-10-binary.tar.gz).";

/// Both splits: images uint8 [N, 3, 32, 32], labels int64 [N].
#[derive(Debug)]
pub struct Dataset {
    pub train: Split,
    pub test: Split,
}

/// The folder holding the `.bin` files: `dir` itself, or `dir/cifar-10-batches-bin` when
/// `dir` has that subfolder (so a spec may name the folder `pisa data fetch` fills or the
/// extracted folder itself).
pub fn batches_dir(dir: &Path) -> Result<PathBuf> {
    let inner = dir.join(FOLDER);
    if inner.is_dir() {
        return Ok(inner);
    }
    ensure!(
        dir.is_dir(),
        "CIFAR-10 folder {} not found: expected {}/{FOLDER}/ with {} … and {TEST_FILE}. \
         {HOW_TO_GET}",
        dir.display(),
        dir.display(),
        TRAIN_FILES[0]
    );
    Ok(dir.to_path_buf())
}

/// Reads the dataset in `dir` (see [`batches_dir`]): the training files present, in
/// order (any non-empty subset of the five), and `test_batch.bin`.
pub fn load(dir: &Path) -> Result<Dataset> {
    let dir = batches_dir(dir)?;
    let test_path = dir.join(TEST_FILE);
    ensure!(
        test_path.is_file(),
        "CIFAR-10 test file {} not found. {HOW_TO_GET}",
        test_path.display()
    );
    let train_paths: Vec<PathBuf> = TRAIN_FILES
        .iter()
        .map(|name| dir.join(name))
        .filter(|p| p.is_file())
        .collect();
    if train_paths.is_empty() {
        bail!(
            "no CIFAR-10 training file in {}: expected at least {}/{} (of data_batch_1.bin \
             … data_batch_5.bin). {HOW_TO_GET}",
            dir.display(),
            dir.display(),
            TRAIN_FILES[0]
        );
    }
    Ok(Dataset {
        train: read_files(&train_paths)?,
        test: read_files(&[test_path])?,
    })
}

/// The records of `paths`, concatenated in order.
pub fn read_files(paths: &[PathBuf]) -> Result<Split> {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read CIFAR-10 file {}", path.display()))?;
        split_records(&bytes, path, &mut images, &mut labels)?;
    }
    let n = labels.len() as i64;
    Ok(Split {
        images: Tensor::from_slice(&images).view([n, SHAPE[0], SHAPE[1], SHAPE[2]]),
        labels: Tensor::from_slice(&labels).to_kind(Kind::Int64),
    })
}

/// Appends the pixels and labels of a file's records; `path` only names it in errors.
fn split_records(
    bytes: &[u8],
    path: &Path,
    images: &mut Vec<u8>,
    labels: &mut Vec<u8>,
) -> Result<()> {
    ensure!(
        !bytes.is_empty() && bytes.len().is_multiple_of(RECORD),
        "{}: {} bytes is not a whole number of CIFAR-10 records ({RECORD} bytes each: a \
         label byte and 3×32×32 pixels); a truncated download, or not the binary version?",
        path.display(),
        bytes.len()
    );
    images.reserve(bytes.len() / RECORD * (RECORD - 1));
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        let label = record[0];
        ensure!(
            label < 10,
            "{}: record {i} has label {label}; CIFAR-10 labels are 0–9 (is this CIFAR-100?)",
            path.display()
        );
        labels.push(label);
        images.extend_from_slice(&record[1..]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` records with label `(first + i) % 10` and pixel bytes `(i + c + y + x) % 256`
    /// (c, y, x the channel, row and column).
    fn records(n: usize, first: u8) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            out.push((first as usize + i) as u8 % 10);
            for c in 0..3 {
                for y in 0..32 {
                    for x in 0..32 {
                        out.push(((i + 7 * c + y + 3 * x) % 256) as u8);
                    }
                }
            }
        }
        out
    }

    fn err_of<T: std::fmt::Debug>(r: Result<T>) -> String {
        format!("{:#}", r.unwrap_err())
    }

    #[test]
    fn reads_the_files_present_in_order() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(FOLDER);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("data_batch_3.bin"), records(2, 5)).unwrap();
        std::fs::write(dir.join("data_batch_1.bin"), records(3, 0)).unwrap();
        std::fs::write(dir.join(TEST_FILE), records(4, 9)).unwrap();
        // Both the folder holding cifar-10-batches-bin and that folder itself work.
        for d in [root.path(), dir.as_path()] {
            let data = load(d).unwrap();
            assert_eq!(data.train.images.size(), vec![5, 3, 32, 32]);
            assert_eq!(data.train.images.kind(), Kind::Uint8);
            assert_eq!(data.train.labels.kind(), Kind::Int64);
            // data_batch_1 (labels 0, 1, 2) comes before data_batch_3 (5, 6).
            assert_eq!(
                Vec::<i64>::try_from(&data.train.labels).unwrap(),
                vec![0, 1, 2, 5, 6]
            );
            assert_eq!(
                Vec::<i64>::try_from(&data.test.labels).unwrap(),
                vec![9, 0, 1, 2]
            );
            // Channel-major: record 1 of batch 1, channel 2 (blue), row 4, column 5.
            assert_eq!(
                data.train.images.int64_value(&[1, 2, 4, 5]),
                1 + 14 + 4 + 15
            );
            // Record 0 of data_batch_3 is the 4th training image.
            assert_eq!(data.train.images.int64_value(&[3, 0, 31, 31]), 31 + 93);
        }
    }

    #[test]
    fn missing_files_say_what_is_expected_and_how_to_get_it() {
        let root = tempfile::tempdir().unwrap();
        let err = err_of(load(&root.path().join("nowhere")));
        assert!(err.contains("nowhere not found"), "{err}");
        assert!(err.contains("pisa data fetch cifar10"), "{err}");
        assert!(err.contains("cifar-10-binary.tar.gz"), "{err}");

        let err = err_of(load(root.path()));
        assert!(err.contains("test_batch.bin not found"), "{err}");
        assert!(err.contains("pisa data fetch cifar10"), "{err}");

        std::fs::write(root.path().join(TEST_FILE), records(1, 0)).unwrap();
        let err = err_of(load(root.path()));
        assert!(err.contains("no CIFAR-10 training file"), "{err}");
        assert!(err.contains("data_batch_1.bin"), "{err}");
        assert!(err.contains("https://www.cs.toronto.edu"), "{err}");
    }

    #[test]
    fn a_partial_record_is_an_error_naming_the_file() {
        let root = tempfile::tempdir().unwrap();
        let mut bytes = records(2, 0);
        bytes.pop();
        std::fs::write(root.path().join("data_batch_2.bin"), &bytes).unwrap();
        std::fs::write(root.path().join(TEST_FILE), records(1, 0)).unwrap();
        let err = err_of(load(root.path()));
        assert!(err.contains("data_batch_2.bin: 6145 bytes"), "{err}");
        assert!(err.contains("3073"), "{err}");
        std::fs::write(root.path().join("data_batch_2.bin"), b"").unwrap();
        let err = err_of(load(root.path()));
        assert!(err.contains("data_batch_2.bin: 0 bytes"), "{err}");
    }

    #[test]
    fn a_label_above_9_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let mut bytes = records(3, 0);
        bytes[2 * RECORD] = 42;
        std::fs::write(root.path().join("data_batch_1.bin"), records(1, 0)).unwrap();
        std::fs::write(root.path().join(TEST_FILE), &bytes).unwrap();
        let err = err_of(load(root.path()));
        assert!(
            err.contains("test_batch.bin: record 2 has label 42"),
            "{err}"
        );
    }
}
