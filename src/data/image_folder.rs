//! Image classification data as a folder of class subfolders, the layout of ImageNet
//! (ILSVRC-2012) prepared for torchvision's `ImageFolder`:
//!
//! ```text
//! root/train/n01440764/n01440764_10026.JPEG
//! root/train/n01443537/…
//! root/val/n01440764/ILSVRC2012_val_00000293.JPEG
//! ```
//!
//! One split is one folder ([`ImageFolder::open`]). Its class ids are the indices of the
//! subfolder names sorted (byte order, as Python sorts them; names starting with `.` are
//! ignored); the images are the files under each class folder, recursively, whose names
//! end in `.jpg`, `.jpeg` or `.png` (any case), sorted by path. The format is detected
//! from the content, so a PNG named `.JPEG` (ImageNet has a few) decodes; grayscale,
//! CMYK and RGBA images are converted to RGB.
//!
//! [`ImageFolder::batch`] decodes a batch in parallel (rayon) through a [`Transform`]
//! into uint8 [B, 3, S, S]; [`Prefetch`] does it on a background thread, a few batches
//! ahead of the training loop.
use anyhow::{bail, ensure, Context, Result};
use image::imageops::{self, FilterType};
use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use tch::{Kind, Tensor};

/// The file name endings read as images (compared case-insensitively).
pub const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// How an image becomes a square crop; both resample bilinearly (a triangle filter that
/// widens when shrinking, i.e. antialiased as PIL and torchvision's `antialias=True`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// torchvision's `RandomResizedCrop(size, scale=(0.08, 1), ratio=(3/4, 4/3))` then
    /// `RandomHorizontalFlip(0.5)`: a crop of 8–100 % of the area with an aspect ratio
    /// log-uniform in [3/4, 4/3] (10 attempts, then the centre crop of the whole image
    /// clamped to that ratio range), resized to size × size, mirrored with probability ½.
    Train { size: u32 },
    /// torchvision's `Resize(resize)` (shorter side to `resize`, the longer one scaled and
    /// truncated) then `CenterCrop(crop)`.
    Eval { resize: u32, crop: u32 },
}

impl Transform {
    /// The ImageNet training transform, 224 × 224.
    pub const IMAGENET_TRAIN: Transform = Transform::Train { size: 224 };
    /// The ImageNet evaluation transform: shorter side 256, centre 224 × 224.
    pub const IMAGENET_EVAL: Transform = Transform::Eval {
        resize: 256,
        crop: 224,
    };

    /// The side of the square images it produces.
    pub fn size(self) -> u32 {
        match self {
            Transform::Train { size } => size,
            Transform::Eval { crop, .. } => crop,
        }
    }

    fn check(self) -> Result<()> {
        match self {
            Transform::Train { size } => ensure!(size > 0, "Transform::Train: size 0"),
            Transform::Eval { resize, crop } => ensure!(
                crop > 0 && crop <= resize,
                "Transform::Eval: crop {crop} must be in 1..=resize ({resize})"
            ),
        }
        Ok(())
    }

    /// Applies the transform to one image; `rng` drives the random one.
    pub fn apply(self, image: &RgbImage, rng: &mut impl Rng) -> RgbImage {
        match self {
            Transform::Train { size } => {
                let (top, left, h, w) = random_resized_crop_params(image.dimensions(), rng);
                let crop = imageops::crop_imm(image, left, top, w, h);
                let mut out = imageops::resize(&*crop, size, size, FilterType::Triangle);
                if rng.random::<f64>() < 0.5 {
                    imageops::flip_horizontal_in_place(&mut out);
                }
                out
            }
            Transform::Eval { resize, crop } => {
                let (w, h) = resized_shorter_side(image.dimensions(), resize);
                let resized = imageops::resize(image, w, h, FilterType::Triangle);
                let (top, left) = centre_crop_origin((w, h), crop);
                imageops::crop_imm(&resized, left, top, crop, crop).to_image()
            }
        }
    }
}

/// Python's `round` (half to even) as torchvision uses it.
fn round_py(x: f64) -> i64 {
    x.round_ties_even() as i64
}

/// torchvision's `RandomResizedCrop.get_params` with scale (0.08, 1) and ratio (3/4, 4/3):
/// (top, left, height, width) of the crop in an image of (width, height).
fn random_resized_crop_params(
    (width, height): (u32, u32),
    rng: &mut impl Rng,
) -> (u32, u32, u32, u32) {
    const SCALE: (f64, f64) = (0.08, 1.0);
    const RATIO: (f64, f64) = (3.0 / 4.0, 4.0 / 3.0);
    let area = f64::from(width) * f64::from(height);
    let log_ratio = (RATIO.0.ln(), RATIO.1.ln());
    for _ in 0..10 {
        let target_area = area * rng.random_range(SCALE.0..SCALE.1);
        let aspect = rng.random_range(log_ratio.0..log_ratio.1).exp();
        let w = round_py((target_area * aspect).sqrt());
        let h = round_py((target_area / aspect).sqrt());
        if 0 < w && w <= i64::from(width) && 0 < h && h <= i64::from(height) {
            let (w, h) = (w as u32, h as u32);
            let top = rng.random_range(0..=height - h);
            let left = rng.random_range(0..=width - w);
            return (top, left, h, w);
        }
    }
    // The centre crop of the whole image, its aspect ratio clamped to the range.
    let in_ratio = f64::from(width) / f64::from(height);
    let (w, h) = if in_ratio < RATIO.0 {
        (width, round_py(f64::from(width) / RATIO.0) as u32)
    } else if in_ratio > RATIO.1 {
        (round_py(f64::from(height) * RATIO.1) as u32, height)
    } else {
        (width, height)
    };
    // Rounding cannot overshoot the image by more than it holds, but stay inside it.
    let (w, h) = (w.clamp(1, width), h.clamp(1, height));
    ((height - h) / 2, (width - w) / 2, h, w)
}

/// (width, height) after torchvision's `Resize(size)`: the shorter side becomes `size`,
/// the longer `int(size * long / short)`.
fn resized_shorter_side((width, height): (u32, u32), size: u32) -> (u32, u32) {
    let scaled =
        |long: u32, short: u32| (u64::from(size) * u64::from(long) / u64::from(short)) as u32;
    if width <= height {
        (size, scaled(height, width))
    } else {
        (scaled(width, height), size)
    }
}

/// (top, left) of torchvision's `CenterCrop(crop)` in an image of (width, height) ≥ crop.
fn centre_crop_origin((width, height): (u32, u32), crop: u32) -> (u32, u32) {
    let half = |side: u32| round_py(f64::from(side - crop) / 2.0) as u32;
    (half(height), half(width))
}

/// The random generator of image `index` for `seed`: ChaCha8 keyed by the seed, on the
/// stream of the index, so an image's augmentation depends on neither the batch it is
/// in nor the thread that decodes it.
pub fn image_rng(seed: u64, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index as u64);
    rng
}

/// Decodes an image file to RGB, whatever its format and colour type.
pub fn decode(path: &Path) -> Result<RgbImage> {
    let image = image::ImageReader::open(path)
        .with_context(|| format!("cannot open image {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read image {}", path.display()))?
        .decode()
        .with_context(|| format!("corrupt or unsupported image {}", path.display()))?;
    Ok(image.into_rgb8())
}

/// One split of an image-folder dataset: its classes and its image files with labels.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    files: Vec<PathBuf>,
    labels: Vec<i64>,
}

impl ImageFolder {
    /// Lists `dir`'s class subfolders and their images. A missing folder, one without
    /// class subfolders, or a class without images is an error.
    pub fn open(dir: &Path) -> Result<Self> {
        let layout = "one subfolder per class holding its images (*.JPEG, *.jpg, *.png), \
                      e.g. <root>/train/n01440764/n01440764_10026.JPEG";
        ensure!(
            dir.is_dir(),
            "image folder {} not found: expected {layout}",
            dir.display()
        );
        let mut classes = Vec::new();
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                bail!("class folder name {:?} is not UTF-8", path.display());
            };
            if !name.starts_with('.') && path.is_dir() {
                classes.push(name.to_string());
            }
        }
        classes.sort();
        if classes.is_empty() {
            let mut images = Vec::new();
            collect_images(dir, &mut images)?;
            bail!(
                "image folder {} has no class subfolders{}: expected {layout}",
                dir.display(),
                if images.is_empty() {
                    String::new()
                } else {
                    format!(
                        " but {} images directly in it (the official ILSVRC2012 validation \
                         images come in one folder: sort them into class folders first, e.g. \
                         with the widely used valprep.sh)",
                        images.len()
                    )
                }
            );
        }
        let mut files = Vec::new();
        let mut labels = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let class_dir = dir.join(class);
            let mut found = Vec::new();
            collect_images(&class_dir, &mut found)?;
            ensure!(
                !found.is_empty(),
                "class folder {} holds no images (files ending in .jpg, .jpeg or .png)",
                class_dir.display()
            );
            found.sort();
            labels.extend(std::iter::repeat_n(label as i64, found.len()));
            files.extend(found);
        }
        Ok(Self {
            root: dir.to_path_buf(),
            classes,
            files,
            labels,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The class names; a label is an index into them.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The image files, grouped by class in label order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The label of every image.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }

    /// The labels as int64 [len].
    pub fn labels_tensor(&self) -> Tensor {
        Tensor::from_slice(&self.labels)
    }

    /// Image `index` decoded and transformed with its generator [`image_rng`]`(seed, index)`.
    pub fn image(&self, index: usize, transform: Transform, seed: u64) -> Result<RgbImage> {
        let path = self.path_of(index)?;
        let image = decode(path)?;
        Ok(transform.apply(&image, &mut image_rng(seed, index)))
    }

    /// The images `indices` as uint8 [B, 3, S, S] (S = `transform.size()`) and their
    /// labels int64 [B], decoded in parallel. The result depends only on the arguments.
    pub fn batch(
        &self,
        indices: &[usize],
        transform: Transform,
        seed: u64,
    ) -> Result<(Tensor, Tensor)> {
        transform.check()?;
        for &i in indices {
            self.path_of(i)?;
        }
        let s = transform.size() as usize;
        let per = 3 * s * s;
        let mut pixels = vec![0u8; indices.len() * per];
        pixels
            .par_chunks_mut(per.max(1))
            .zip(indices.par_iter())
            .try_for_each(|(out, &index)| -> Result<()> {
                let image = self.image(index, transform, seed)?;
                to_channels_first(&image, out);
                Ok(())
            })?;
        let b = indices.len() as i64;
        let labels: Vec<i64> = indices.iter().map(|&i| self.labels[i]).collect();
        Ok((
            Tensor::from_slice(&pixels).view([b, 3, s as i64, s as i64]),
            Tensor::from_slice(&labels).to_kind(Kind::Int64),
        ))
    }

    fn path_of(&self, index: usize) -> Result<&Path> {
        self.files
            .get(index)
            .map(PathBuf::as_path)
            .with_context(|| {
                format!(
                    "image index {index} out of range: {} holds {} images",
                    self.root.display(),
                    self.files.len()
                )
            })
    }
}

/// The image files under `dir`, recursively (following links).
fn collect_images(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = entry.path();
        // The entry's type needs no extra system call, except for links (followed).
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot read {}", path.display()))?;
        let (is_dir, is_file) = if kind.is_symlink() {
            (path.is_dir(), path.is_file())
        } else {
            (kind.is_dir(), kind.is_file())
        };
        if is_dir {
            collect_images(&path, out)?;
        } else if is_file && is_image_name(&path) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Writes an RGB image (height × width × 3) into `out` as 3 × height × width.
fn to_channels_first(image: &RgbImage, out: &mut [u8]) {
    let plane = (image.width() * image.height()) as usize;
    for (p, px) in image.pixels().enumerate() {
        out[p] = px[0];
        out[plane + p] = px[1];
        out[2 * plane + p] = px[2];
    }
}

/// Decodes batches on a background thread, up to `ahead` of them before they are asked
/// for, and hands them out in order: an iterator over what [`ImageFolder::batch`] returns
/// for each (tag, indices, seed), with the tag (what the batch is for) in front. It stops
/// after the first error. Dropping it stops the thread (after the batch it is decoding).
pub struct Prefetch<T> {
    rx: Option<Receiver<Result<(T, Tensor, Tensor)>>>,
    worker: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> Prefetch<T> {
    /// `batches` is walked lazily on the background thread, so it may be endless (e.g.
    /// epoch after epoch of shuffled index lists, a seed per epoch). `ahead` ≥ 1.
    pub fn new<I>(folder: Arc<ImageFolder>, transform: Transform, batches: I, ahead: usize) -> Self
    where
        I: IntoIterator<Item = (T, Vec<usize>, u64)>,
        I::IntoIter: Send + 'static,
    {
        // One batch waits in the worker's `send` beyond the channel's capacity.
        let (tx, rx) = sync_channel(ahead.max(1) - 1);
        let batches = batches.into_iter();
        let worker = std::thread::Builder::new()
            .name("pisa-prefetch".into())
            .spawn(move || {
                for (tag, indices, seed) in batches {
                    let batch = folder
                        .batch(&indices, transform, seed)
                        .map(|(x, y)| (tag, x, y));
                    let failed = batch.is_err();
                    if tx.send(batch).is_err() || failed {
                        return;
                    }
                }
            })
            .expect("spawn the prefetch thread");
        Self {
            rx: Some(rx),
            worker: Some(worker),
        }
    }
}

impl<T> Iterator for Prefetch<T> {
    type Item = Result<(T, Tensor, Tensor)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.rx.as_ref()?.recv() {
            Ok(batch) => Some(batch),
            Err(_) => {
                // The worker is done: the batches ran out, or it panicked.
                self.rx = None;
                let worker = self.worker.take()?;
                match worker.join() {
                    Ok(()) => None,
                    Err(_) => Some(Err(anyhow::anyhow!("the prefetch thread panicked"))),
                }
            }
        }
    }
}

impl<T> Drop for Prefetch<T> {
    fn drop(&mut self) {
        // Closing the channel makes the worker's next send fail, so it returns.
        self.rx = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb};

    /// A pattern where every pixel differs: (x * 7 + y, y * 5 + x, x ^ y) mod 256.
    fn pattern(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 7 + y) as u8, (y * 5 + x) as u8, (x ^ y) as u8])
        })
    }

    /// root/{cat,ant,dog}: cat has 2 JPEGs (one upper-case .JPEG) and a PNG, ant a
    /// grayscale JPEG, dog a PNG in a nested folder and a text file.
    fn tiny_folder() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let d = |p: &str| {
            let path = root.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            path
        };
        pattern(40, 30).save(d("cat/b.JPEG")).unwrap();
        pattern(30, 50).save(d("cat/a.jpg")).unwrap();
        pattern(21, 16).save(d("cat/c.png")).unwrap();
        GrayImage::from_fn(33, 33, |x, y| Luma([(x * 3 + y) as u8]))
            .save(d("ant/g.jpeg"))
            .unwrap();
        pattern(64, 48).save(d("dog/inner/z.PNG")).unwrap();
        std::fs::write(d("dog/notes.txt"), "not an image").unwrap();
        std::fs::create_dir_all(d(".hidden/x")).unwrap();
        root
    }

    #[test]
    fn lists_classes_and_files_sorted() {
        let root = tiny_folder();
        let folder = ImageFolder::open(root.path()).unwrap();
        assert_eq!(folder.classes(), ["ant", "cat", "dog"]);
        assert_eq!(folder.len(), 5);
        let names: Vec<String> = folder
            .files()
            .iter()
            .map(|p| p.strip_prefix(root.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "ant/g.jpeg",
                "cat/a.jpg",
                "cat/b.JPEG",
                "cat/c.png",
                "dog/inner/z.PNG"
            ]
        );
        assert_eq!(folder.labels(), [0, 1, 1, 1, 2]);
        assert_eq!(
            Vec::<i64>::try_from(&folder.labels_tensor()).unwrap(),
            vec![0, 1, 1, 1, 2]
        );
    }

    #[test]
    fn batches_have_the_shapes_and_labels_and_are_deterministic() {
        let root = tiny_folder();
        let folder = ImageFolder::open(root.path()).unwrap();
        let train = Transform::Train { size: 24 };
        let (x, y) = folder.batch(&[4, 0, 2, 1], train, 7).unwrap();
        assert_eq!(x.size(), vec![4, 3, 24, 24]);
        assert_eq!(x.kind(), Kind::Uint8);
        assert_eq!(y.kind(), Kind::Int64);
        assert_eq!(Vec::<i64>::try_from(&y).unwrap(), vec![2, 0, 1, 1]);
        // The same seed gives the same pixels, whatever the batch an image is in.
        let (again, _) = folder.batch(&[4, 0, 2, 1], train, 7).unwrap();
        assert!(x.equal(&again));
        let (alone, _) = folder.batch(&[2], train, 7).unwrap();
        assert!(x.get(2).equal(&alone.get(0)));
        // Single-threaded gives the same result as the default pool.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let (serial, _) = pool
            .install(|| folder.batch(&[4, 0, 2, 1], train, 7))
            .unwrap();
        assert!(x.equal(&serial));
        // Another seed, other crops.
        let (other, _) = folder.batch(&[4, 0, 2, 1], train, 8).unwrap();
        assert!(!x.equal(&other));
        // The grayscale image has three equal channels.
        let gray = x.get(1);
        assert!(gray.get(0).equal(&gray.get(1)) && gray.get(1).equal(&gray.get(2)));

        let eval = Transform::Eval {
            resize: 20,
            crop: 16,
        };
        let (x, _) = folder.batch(&[0, 1, 2, 3, 4], eval, 0).unwrap();
        assert_eq!(x.size(), vec![5, 3, 16, 16]);
        let (y, _) = folder.batch(&[0, 1, 2, 3, 4], eval, 99).unwrap();
        assert!(x.equal(&y), "the eval transform is not random");
        let (empty, labels) = folder.batch(&[], eval, 0).unwrap();
        assert_eq!(empty.size(), vec![0, 3, 16, 16]);
        assert_eq!(labels.size(), vec![0]);
    }

    #[test]
    fn eval_is_an_exact_centre_crop() {
        let root = tiny_folder();
        let folder = ImageFolder::open(root.path()).unwrap();
        // cat/c.png is 21 × 16: the shorter side is already 16, so no resampling; the
        // crop starts at row round(2.0) = 2 and column round(4.5) = 4 (half to even).
        let (x, _) = folder
            .batch(
                &[3],
                Transform::Eval {
                    resize: 16,
                    crop: 12,
                },
                0,
            )
            .unwrap();
        let source = pattern(21, 16);
        for c in 0..3 {
            for y in 0..12 {
                for x_ in 0..12 {
                    assert_eq!(
                        x.int64_value(&[0, c, y, x_]),
                        i64::from(source.get_pixel(x_ as u32 + 4, y as u32 + 2)[c as usize]),
                        "channel {c} row {y} column {x_}"
                    );
                }
            }
        }
    }

    #[test]
    fn resize_and_crop_geometry_follows_torchvision() {
        assert_eq!(resized_shorter_side((500, 375), 256), (341, 256));
        assert_eq!(resized_shorter_side((375, 500), 256), (256, 341));
        assert_eq!(resized_shorter_side((300, 300), 256), (256, 256));
        assert_eq!(centre_crop_origin((341, 256), 224), (16, 58));
        assert_eq!(centre_crop_origin((21, 16), 12), (2, 4));
        assert_eq!(centre_crop_origin((23, 16), 12), (2, 6));
        for seed in 0..200 {
            let mut rng = image_rng(seed, 3);
            let (w, h) = (50 + seed as u32 % 40, 30 + seed as u32 % 70);
            let (top, left, ch, cw) = random_resized_crop_params((w, h), &mut rng);
            assert!(ch >= 1 && cw >= 1 && top + ch <= h && left + cw <= w);
        }
        // A strip too thin for any attempt falls back to the clamped centre crop.
        let mut rng = image_rng(0, 0);
        assert_eq!(
            random_resized_crop_params((100, 2), &mut rng),
            (0, 48, 2, 3)
        );
        assert_eq!(random_resized_crop_params((1, 1), &mut rng), (0, 0, 1, 1));
    }

    #[test]
    fn errors_name_the_folder_or_file() {
        let root = tiny_folder();
        let err = format!(
            "{:#}",
            ImageFolder::open(&root.path().join("nowhere")).unwrap_err()
        );
        assert!(err.contains("nowhere not found"), "{err}");
        let err = format!(
            "{:#}",
            ImageFolder::open(&root.path().join("cat")).unwrap_err()
        );
        assert!(
            err.contains("cat has no class subfolders but 3 images"),
            "{err}"
        );
        std::fs::create_dir(root.path().join("empty")).unwrap();
        let err = format!("{:#}", ImageFolder::open(root.path()).unwrap_err());
        assert!(err.contains("empty holds no images"), "{err}");
        std::fs::remove_dir(root.path().join("empty")).unwrap();

        let folder = ImageFolder::open(root.path()).unwrap();
        std::fs::write(&folder.files()[2], b"\xff\xd8\xff\xe0 truncated jpeg").unwrap();
        let err = format!(
            "{:#}",
            folder
                .batch(&[0, 2], Transform::IMAGENET_EVAL, 0)
                .unwrap_err()
        );
        assert!(err.contains("b.JPEG"), "{err}");
        let err = format!(
            "{:#}",
            folder.batch(&[5], Transform::IMAGENET_EVAL, 0).unwrap_err()
        );
        assert!(err.contains("index 5 out of range"), "{err}");
        let bad = Transform::Eval { resize: 8, crop: 9 };
        assert!(folder.batch(&[0], bad, 0).is_err());
    }

    #[test]
    fn prefetch_returns_the_batches_of_direct_decoding() {
        let root = tiny_folder();
        let folder = Arc::new(ImageFolder::open(root.path()).unwrap());
        let train = Transform::Train { size: 16 };
        let batches: Vec<(usize, Vec<usize>, u64)> = vec![
            (0, vec![0, 1], 1),
            (1, vec![2, 3, 4], 1),
            (2, vec![4, 3], 2),
            (3, vec![1], 3),
        ];
        for ahead in [1, 2, 8] {
            let got: Vec<(usize, Tensor, Tensor)> =
                Prefetch::new(folder.clone(), train, batches.clone(), ahead)
                    .collect::<Result<_>>()
                    .unwrap();
            assert_eq!(got.len(), batches.len());
            for ((tag, x, y), (want, indices, seed)) in got.iter().zip(&batches) {
                let (dx, dy) = folder.batch(indices, train, *seed).unwrap();
                assert!(tag == want && x.equal(&dx) && y.equal(&dy));
            }
        }
        // An endless stream, dropped after three batches, stops its thread.
        let endless = (0u64..).map(|e| ((), vec![(e % 5) as usize], e));
        let mut p = Prefetch::new(folder.clone(), train, endless, 2);
        for _ in 0..3 {
            let _batch = p.next().unwrap().unwrap();
        }
        drop(p);
        // An error ends the stream after being handed out.
        std::fs::write(&folder.files()[1], b"garbage").unwrap();
        let mut p = Prefetch::new(folder.clone(), train, batches, 4);
        let err = format!("{:#}", p.next().unwrap().unwrap_err());
        assert!(err.contains("a.jpg"), "{err}");
        assert!(p.next().is_none());
    }
}
