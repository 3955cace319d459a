//! The IDX format of MNIST and Fashion-MNIST, plain or gzip-compressed (detected by the
//! gzip magic bytes 0x1f 0x8b, not by the file name).
//!
//! An IDX file is a 4-byte magic number `0x00 0x00 TYPE NDIMS`, NDIMS big-endian u32
//! sizes, then the values in row-major order. Images are unsigned bytes with 3
//! dimensions [N, rows, cols] (magic 0x00000803), labels unsigned bytes with 1 (0x00000801).
use anyhow::{bail, ensure, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// The IDX element type of unsigned bytes, the only one MNIST-like data uses.
const UBYTE: u8 = 0x08;

/// Images and their labels.
#[derive(Debug)]
pub struct Split {
    /// uint8 [N, rows, cols] (IDX), or [N, 3, 32, 32] for CIFAR-10 ([`super::cifar`]).
    pub images: Tensor,
    /// int64 [N].
    pub labels: Tensor,
}

impl Split {
    pub fn len(&self) -> i64 {
        self.labels.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A dataset in IDX files: the test split, and the training split where present.
#[derive(Debug)]
pub struct Dataset {
    pub train: Option<Split>,
    pub test: Split,
}

/// Which dataset a folder should hold; it only changes the advice of the errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Mnist,
    FashionMnist,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Mnist => "MNIST",
            Source::FashionMnist => "Fashion-MNIST",
        }
    }

    /// Where the four files come from.
    pub fn how_to_get(self) -> &'static str {
        match self {
            Source::Mnist => {
                "Get the official MNIST files train-images-idx3-ubyte.gz, \
                 train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and \
                 t10k-labels-idx1-ubyte.gz (http://yann.lecun.com/exdb/mnist/ or a mirror \
                 such as https://ossci-datasets.s3.amazonaws.com/mnist/) and put them there."
            }
            Source::FashionMnist => {
                "On Debian/Ubuntu `apt-get install dataset-fashion-mnist` installs the four \
                 files in /usr/share/datasets/fashion-mnist/; they are also at \
                 https://github.com/zalandoresearch/fashion-mnist (data/fashion)."
            }
        }
    }
}

/// The standard file names: (train images, train labels, test images, test labels).
pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte";

/// The paths of a dataset's files in one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// (images, labels); `None` when neither training file is there.
    pub train: Option<(PathBuf, PathBuf)>,
    pub test: (PathBuf, PathBuf),
}

/// Finds the standard file names in `dir`, each as is or with `.gz` (the plain name
/// wins when both exist). The test pair is required; the training pair is optional but
/// must be complete if one of its files is there.
pub fn find_files(dir: &Path, source: Source) -> Result<Files> {
    let find = |stem: &str| -> Option<PathBuf> {
        [stem.to_string(), format!("{stem}.gz")]
            .into_iter()
            .map(|name| dir.join(name))
            .find(|p| p.is_file())
    };
    let missing = |stem: &str, what: &str| {
        anyhow::anyhow!(
            "{} {what} not found: expected {dir}/{stem} or {dir}/{stem}.gz. {}",
            source.name(),
            source.how_to_get(),
            dir = dir.display(),
        )
    };
    let test = (
        find(TEST_IMAGES).ok_or_else(|| missing(TEST_IMAGES, "test images"))?,
        find(TEST_LABELS).ok_or_else(|| missing(TEST_LABELS, "test labels"))?,
    );
    let train = match (find(TRAIN_IMAGES), find(TRAIN_LABELS)) {
        (Some(images), Some(labels)) => Some((images, labels)),
        (None, None) => None,
        (Some(_), None) => return Err(missing(TRAIN_LABELS, "training labels")),
        (None, Some(_)) => return Err(missing(TRAIN_IMAGES, "training images")),
    };
    Ok(Files { train, test })
}

/// Reads the dataset in `dir` (see [`find_files`]).
pub fn load(dir: &Path, source: Source) -> Result<Dataset> {
    let files = find_files(dir, source)?;
    let train = match &files.train {
        Some((images, labels)) => Some(read_split(images, labels)?),
        None => None,
    };
    let test = read_split(&files.test.0, &files.test.1)?;
    Ok(Dataset { train, test })
}

/// Reads an images file and its labels file, which must hold the same number of items.
pub fn read_split(images: &Path, labels: &Path) -> Result<Split> {
    let x = read_images(images)?;
    let y = read_labels(labels)?;
    ensure!(
        x.size()[0] == y.size()[0],
        "{} holds {} images but {} holds {} labels",
        images.display(),
        x.size()[0],
        labels.display(),
        y.size()[0]
    );
    Ok(Split {
        images: x,
        labels: y,
    })
}

/// An images file as uint8 [N, rows, cols].
pub fn read_images(path: &Path) -> Result<Tensor> {
    let (dims, data) = read_idx(path, 3)?;
    Ok(Tensor::from_slice(&data).view(dims.as_slice()))
}

/// A labels file as int64 [N].
pub fn read_labels(path: &Path) -> Result<Tensor> {
    let (_, data) = read_idx(path, 1)?;
    Ok(Tensor::from_slice(&data).to_kind(Kind::Int64))
}

/// The sizes and the unsigned-byte values of an IDX file with `ndims` dimensions.
fn read_idx(path: &Path, ndims: u8) -> Result<(Vec<i64>, Vec<u8>)> {
    let bytes = read_maybe_gzip(path)?;
    let shown = path.display();
    let what = if ndims == 1 { "labels" } else { "images" };
    ensure!(
        bytes.len() >= 4,
        "{shown}: truncated IDX file ({} bytes, shorter than the 4-byte magic number)",
        bytes.len()
    );
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let expected = u32::from(UBYTE) << 8 | u32::from(ndims);
    if bytes[0] != 0 || bytes[1] != 0 || bytes[3] != ndims {
        bail!(
            "{shown}: wrong magic number 0x{magic:08x}; an IDX {what} file starts with \
             0x{expected:08x} (unsigned bytes, {ndims} dimension{})",
            if ndims == 1 { "" } else { "s" }
        );
    }
    if bytes[2] != UBYTE {
        bail!(
            "{shown}: IDX element type 0x{:02x} ({}); MNIST-like {what} are unsigned bytes (0x08)",
            bytes[2],
            type_name(bytes[2])
        );
    }
    let header = 4 + 4 * ndims as usize;
    ensure!(
        bytes.len() >= header,
        "{shown}: truncated IDX header ({} bytes, expected {header})",
        bytes.len()
    );
    let dims: Vec<i64> = bytes[4..header]
        .chunks_exact(4)
        .map(|b| i64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
        .collect();
    let count = dims
        .iter()
        .try_fold(1i64, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= i64::MAX / 2)
        .with_context(|| format!("{shown}: impossible IDX sizes {dims:?}"))?;
    let held = (bytes.len() - header) as i64;
    ensure!(
        held >= count,
        "{shown}: truncated IDX data: the header promises {dims:?} = {count} values, the \
         file holds {held}"
    );
    ensure!(
        held == count,
        "{shown}: {} bytes after the {dims:?} = {count} values the header promises; not a \
         valid IDX file",
        held - count
    );
    let mut data = bytes;
    data.drain(..header);
    Ok((dims, data))
}

/// The file's bytes, gunzipped if they start with the gzip magic 0x1f 0x8b.
fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| {
        if path.exists() {
            format!("cannot read IDX file {}", path.display())
        } else {
            format!("IDX file {} not found", path.display())
        }
    })?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .with_context(|| format!("{}: corrupt or truncated gzip data", path.display()))?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

fn type_name(t: u8) -> &'static str {
    match t {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0b => "short",
        0x0c => "int",
        0x0d => "float",
        0x0e => "double",
        _ => "not an IDX type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn idx(type_byte: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, type_byte, dims.len() as u8];
        for d in dims {
            out.extend(d.to_be_bytes());
        }
        out.extend(data);
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// Three 2×2 images with pixels 0..12 and labels 7, 0, 9.
    fn tiny() -> (Vec<u8>, Vec<u8>) {
        let pixels: Vec<u8> = (0..12).collect();
        (idx(0x08, &[3, 2, 2], &pixels), idx(0x08, &[3], &[7, 0, 9]))
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn err_of<T: std::fmt::Debug>(r: Result<T>) -> String {
        format!("{:#}", r.unwrap_err())
    }

    #[test]
    fn reads_plain_and_gzipped_files() {
        let dir = tempfile::tempdir().unwrap();
        let (images, labels) = tiny();
        let plain = read_split(
            &write(dir.path(), "img", &images),
            &write(dir.path(), "lab", &labels),
        )
        .unwrap();
        // Gzip is detected by content: this one has no .gz suffix.
        let gz = read_split(
            &write(dir.path(), "img-gz", &gzip(&images)),
            &write(dir.path(), "lab.gz", &gzip(&labels)),
        )
        .unwrap();
        for split in [&plain, &gz] {
            assert_eq!(split.images.size(), vec![3, 2, 2]);
            assert_eq!(split.images.kind(), Kind::Uint8);
            assert_eq!(split.images.int64_value(&[1, 0, 1]), 5);
            assert_eq!(split.labels.kind(), Kind::Int64);
            assert_eq!(Vec::<i64>::try_from(&split.labels).unwrap(), vec![7, 0, 9]);
        }
        assert_eq!(plain.len(), 3);
        assert_eq!(plain.images.int64_value(&[2, 1, 1]), 11);
    }

    #[test]
    fn finds_the_standard_names_with_an_optional_training_split() {
        let dir = tempfile::tempdir().unwrap();
        let (images, labels) = tiny();
        write(dir.path(), "t10k-images-idx3-ubyte.gz", &gzip(&images));
        write(dir.path(), "t10k-labels-idx1-ubyte", &labels);
        let files = find_files(dir.path(), Source::Mnist).unwrap();
        assert_eq!(files.train, None);
        assert_eq!(files.test.0, dir.path().join("t10k-images-idx3-ubyte.gz"));
        let data = load(dir.path(), Source::Mnist).unwrap();
        assert!(data.train.is_none());
        assert_eq!(data.test.len(), 3);

        // Half a training split is an error naming the missing file.
        write(dir.path(), "train-images-idx3-ubyte.gz", &gzip(&images));
        let err = err_of(find_files(dir.path(), Source::Mnist));
        assert!(err.contains("train-labels-idx1-ubyte"), "{err}");
        write(dir.path(), "train-labels-idx1-ubyte.gz", &gzip(&labels));
        let data = load(dir.path(), Source::Mnist).unwrap();
        assert_eq!(data.train.unwrap().len(), 3);
    }

    #[test]
    fn missing_files_say_what_is_expected_and_where_to_get_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = err_of(find_files(dir.path(), Source::FashionMnist));
        assert!(err.contains("Fashion-MNIST test images not found"), "{err}");
        assert!(err.contains("t10k-images-idx3-ubyte.gz"), "{err}");
        assert!(
            err.contains("apt-get install dataset-fashion-mnist"),
            "{err}"
        );
        let err = err_of(find_files(dir.path(), Source::Mnist));
        assert!(err.contains("train-images-idx3-ubyte.gz"), "{err}");
        let err = err_of(read_images(&dir.path().join("nothing")));
        assert!(err.contains("nothing not found"), "{err}");
    }

    #[test]
    fn wrong_magic_number() {
        let dir = tempfile::tempdir().unwrap();
        let (_, labels) = tiny();
        // A labels file where images are expected: 0x00000801, not 0x00000803.
        let err = err_of(read_images(&write(dir.path(), "swapped", &labels)));
        assert!(err.contains("wrong magic number 0x00000801"), "{err}");
        assert!(err.contains("swapped"), "{err}");
        let err = err_of(read_labels(&write(dir.path(), "text", b"hello world")));
        assert!(err.contains("wrong magic number"), "{err}");
    }

    #[test]
    fn wrong_element_type() {
        let dir = tempfile::tempdir().unwrap();
        let floats = idx(0x0d, &[1, 1, 1], &[0; 4]);
        let err = err_of(read_images(&write(dir.path(), "floats", &floats)));
        assert!(err.contains("element type 0x0d (float)"), "{err}");
    }

    #[test]
    fn truncated_data() {
        let dir = tempfile::tempdir().unwrap();
        let (images, _) = tiny();
        let short = &images[..images.len() - 1];
        let err = err_of(read_images(&write(dir.path(), "short", short)));
        assert!(err.contains("truncated IDX data"), "{err}");
        assert!(err.contains("12 values, the file holds 11"), "{err}");
        let err = err_of(read_images(&write(dir.path(), "header", &images[..9])));
        assert!(err.contains("truncated IDX header"), "{err}");
        let gz = gzip(&images);
        let err = err_of(read_images(&write(
            dir.path(),
            "cut.gz",
            &gz[..gz.len() / 2],
        )));
        assert!(err.contains("corrupt or truncated gzip"), "{err}");
        let mut long = images.clone();
        long.push(0);
        let err = err_of(read_images(&write(dir.path(), "long", &long)));
        assert!(err.contains("1 bytes after"), "{err}");
    }

    #[test]
    fn image_and_label_counts_must_match() {
        let dir = tempfile::tempdir().unwrap();
        let (images, _) = tiny();
        let labels = idx(0x08, &[2], &[1, 2]);
        let err = err_of(read_split(
            &write(dir.path(), "img", &images),
            &write(dir.path(), "lab", &labels),
        ));
        assert!(err.contains("holds 3 images but"), "{err}");
        assert!(err.contains("holds 2 labels"), "{err}");
    }

    /// The real MNIST test split of the shared data folder, where this checkout has it.
    #[test]
    fn reads_the_shared_mnist_test_split() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist");
        if !dir.is_dir() {
            eprintln!("skipped: {} not found", dir.display());
            return;
        }
        let data = load(&dir, Source::Mnist).unwrap();
        assert!(data.train.is_none());
        assert_eq!(data.test.images.size(), vec![10_000, 28, 28]);
        assert_eq!(data.test.labels.int64_value(&[0]), 7);
        let counts = data.test.labels.bincount::<Tensor>(None, 10);
        assert_eq!(counts.size(), vec![10]);
        assert_eq!(counts.sum(Kind::Int64).int64_value(&[]), 10_000);
    }
}
