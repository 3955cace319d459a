//! What happens to a batch of samples between the dataset and the model: scaling to
//! [0, 1], normalisation, and (training batches only) augmentation, all as tensor
//! operations on the batch's device — no per-image loop, so images can stay on the GPU
//! as uint8 and never wait on the CPU.
//!
//! Augmentation is torchvision's `RandomCrop(size, padding)` followed by
//! `RandomHorizontalFlip()`, as the CIFAR-10 scripts of the AdaBelief benchmark (which the
//! paper follows) apply it: zero-pad every image by `padding` pixels on each side, cut a
//! window of the original size at a uniformly random offset in [0, 2·padding]², and
//! mirror it with probability ½. Padding happens before normalisation, so the border is
//! black (pixel 0), as with PIL images.
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// Per-channel mean and standard deviation of the [0, 1]-scaled inputs: x ← (x − mean)/std.
/// One value means all channels (or non-image features) alike.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalise {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

/// The constants the usual training scripts normalise with: MNIST's and Fashion-MNIST's
/// are the mean and deviation of their training pixels, CIFAR-10's those of the AdaBelief
/// (and many other) CIFAR scripts, ImageNet's torchvision's.
const PUBLISHED: [(&str, [f64; 3], [f64; 3], usize); 4] = [
    ("mnist", [0.1307, 0.0, 0.0], [0.3081, 0.0, 0.0], 1),
    ("fashion-mnist", [0.2860, 0.0, 0.0], [0.3530, 0.0, 0.0], 1),
    (
        "cifar10",
        [0.4914, 0.4822, 0.4465],
        [0.2023, 0.1994, 0.2010],
        3,
    ),
    ("imagenet", [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], 3),
];

impl Normalise {
    /// The published constants of `dataset` ("mnist", "fashion-mnist", "cifar10",
    /// "imagenet").
    pub fn published(dataset: &str) -> anyhow::Result<Self> {
        let (_, mean, std, channels) = PUBLISHED
            .iter()
            .find(|(name, ..)| *name == dataset)
            .ok_or_else(|| {
                let known: Vec<&str> = PUBLISHED.iter().map(|(name, ..)| *name).collect();
                anyhow::anyhow!(
                    "no normalisation constants for dataset {dataset:?}; known: {}",
                    known.join(", ")
                )
            })?;
        Ok(Self {
            mean: mean[..*channels].to_vec(),
            std: std[..*channels].to_vec(),
        })
    }

    /// The mean and standard deviation of all values of `x` (scaled to [0, 1] if uint8),
    /// computed in `kind`: one scalar each, as the usual MNIST normalisation.
    pub fn of(x: &Tensor, kind: Kind) -> Self {
        let x = unit(x, kind);
        let mean = x.mean(kind).double_value(&[]);
        let std = x.std(true).double_value(&[]).max(f64::MIN_POSITIVE);
        Self {
            mean: vec![mean],
            std: vec![std],
        }
    }
}

/// Training-time augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Augment {
    None,
    /// Random crop of the original size from the image zero-padded by `padding`, then a
    /// horizontal flip with probability ½. Needs images [N, C, H, W].
    CropFlip {
        padding: i64,
    },
}

/// The batch transform of one dataset on one device.
#[derive(Debug)]
pub struct Transform {
    /// Scalars, or [1, C, 1, 1] tensors in `kind` on the device.
    mean: Stat,
    std: Stat,
    augment: Augment,
    kind: Kind,
}

#[derive(Debug)]
enum Stat {
    Scalar(f64),
    Channels(Tensor),
}

impl Stat {
    fn new(values: &[f64], kind: Kind, device: Device) -> Self {
        match values {
            [v] => Stat::Scalar(*v),
            _ => Stat::Channels(
                Tensor::from_slice(values)
                    .to_kind(kind)
                    .to_device(device)
                    .view([1, -1, 1, 1]),
            ),
        }
    }
}

impl Transform {
    pub fn new(normalise: &Normalise, augment: Augment, kind: Kind, device: Device) -> Self {
        Self {
            mean: Stat::new(&normalise.mean, kind, device),
            std: Stat::new(&normalise.std, kind, device),
            augment,
            kind,
        }
    }

    /// Inputs for evaluation: scaled and normalised.
    pub fn eval(&self, x: &Tensor) -> Tensor {
        let x = unit(x, self.kind);
        let x = match &self.mean {
            Stat::Scalar(m) => x - *m,
            Stat::Channels(m) => x - m,
        };
        match &self.std {
            Stat::Scalar(s) => x / *s,
            Stat::Channels(s) => x / s,
        }
    }

    /// Inputs for training: augmented with draws from `rng`, then as [`Transform::eval`].
    pub fn train(&self, x: &Tensor, rng: &mut ChaCha8Rng) -> Tensor {
        match self.augment {
            Augment::None => self.eval(x),
            // Single-channel IDX images are kept as [B, H, W]: one channel for the crop.
            Augment::CropFlip { padding } if x.dim() == 3 => {
                self.eval(&crop_flip(&x.unsqueeze(1), padding, rng).squeeze_dim(1))
            }
            Augment::CropFlip { padding } => self.eval(&crop_flip(x, padding, rng)),
        }
    }
}

/// `x` as `kind`, pixels (uint8) divided by 255.
fn unit(x: &Tensor, kind: Kind) -> Tensor {
    if x.kind() == Kind::Uint8 {
        x.to_kind(kind) / 255.0
    } else {
        x.to_kind(kind)
    }
}

/// Random crops of `x` [B, C, H, W] zero-padded by `padding`, each mirrored with
/// probability ½: two gathers with per-image row and column indices.
pub fn crop_flip(x: &Tensor, padding: i64, rng: &mut ChaCha8Rng) -> Tensor {
    let size = x.size();
    let &[b, c, h, w] = size.as_slice() else {
        panic!("crop_flip needs images [B, C, H, W], got {size:?}");
    };
    let device = x.device();
    let mut top = Vec::with_capacity(b as usize);
    let mut columns = Vec::with_capacity((b * w) as usize);
    for _ in 0..b {
        top.push(rng.random_range(0..=2 * padding));
        let left = rng.random_range(0..=2 * padding);
        let flip = rng.random_bool(0.5);
        columns.extend((0..w).map(|j| left + if flip { w - 1 - j } else { j }));
    }
    let padded = x.constant_pad_nd([padding, padding, padding, padding]);
    let rows = (Tensor::from_slice(&top)
        .to_device(device)
        .view([b, 1, 1, 1])
        + Tensor::arange(h, (Kind::Int64, device)).view([1, 1, h, 1]))
    .expand([b, c, h, w + 2 * padding], false);
    let columns = Tensor::from_slice(&columns)
        .to_device(device)
        .view([b, 1, 1, w])
        .expand([b, c, h, w], false);
    padded.gather(2, &rows, false).gather(3, &columns, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Image i of a batch holds the values 100·i + 10·row + col (one channel).
    fn numbered(b: i64, h: i64, w: i64) -> Tensor {
        let values: Vec<i64> = (0..b * h * w)
            .map(|k| {
                let (i, r, c) = (k / (h * w), (k / w) % h, k % w);
                100 * i + 10 * r + c
            })
            .collect();
        Tensor::from_slice(&values).view([b, 1, h, w])
    }

    #[test]
    fn single_channel_images_without_a_channel_dimension_are_cropped_as_one_channel() {
        let x = numbered(3, 5, 6);
        let norm = Normalise {
            mean: vec![0.0],
            std: vec![1.0],
        };
        let t = Transform::new(
            &norm,
            Augment::CropFlip { padding: 2 },
            Kind::Double,
            Device::Cpu,
        );
        let flat = t.train(&x.squeeze_dim(1), &mut ChaCha8Rng::seed_from_u64(5));
        let four = t.train(&x, &mut ChaCha8Rng::seed_from_u64(5));
        assert_eq!(flat.size(), [3, 5, 6]);
        assert!(flat.equal(&four.squeeze_dim(1)));
    }

    #[test]
    fn crops_are_windows_of_the_padded_image_maybe_mirrored() {
        let (b, h, w, p) = (64, 4, 5, 2);
        let x = numbered(b, h, w);
        let out = crop_flip(&x, p, &mut ChaCha8Rng::seed_from_u64(7));
        assert_eq!(out.size(), [b, 1, h, w]);
        let padded = x.constant_pad_nd([p, p, p, p]);
        let (mut flips, mut offsets) = (0, std::collections::HashSet::new());
        for i in 0..b {
            let got = out.get(i).get(0);
            // Find the window (and orientation) this crop is.
            let found = (0..=2 * p)
                .flat_map(|t| (0..=2 * p).map(move |l| (t, l)))
                .find_map(|(t, l)| {
                    let window = padded.get(i).get(0).narrow(0, t, h).narrow(1, l, w);
                    if window.equal(&got) {
                        Some((t, l, false))
                    } else if window.flip([1]).equal(&got) {
                        Some((t, l, true))
                    } else {
                        None
                    }
                });
            let (t, l, flipped) = found.unwrap_or_else(|| panic!("crop {i} is no window"));
            flips += usize::from(flipped);
            offsets.insert((t, l));
        }
        // Both orientations and many of the 25 offsets occur in 64 draws.
        assert!((16..=48).contains(&flips), "{flips} flips of {b}");
        assert!(offsets.len() >= 15, "{} offsets", offsets.len());
    }

    #[test]
    fn same_seed_same_crops() {
        let x = numbered(8, 6, 6);
        let a = crop_flip(&x, 2, &mut ChaCha8Rng::seed_from_u64(3));
        let b = crop_flip(&x, 2, &mut ChaCha8Rng::seed_from_u64(3));
        let c = crop_flip(&x, 2, &mut ChaCha8Rng::seed_from_u64(4));
        assert!(a.equal(&b));
        assert!(!a.equal(&c));
    }

    #[test]
    fn eval_scales_pixels_and_normalises_per_channel() {
        let x = Tensor::from_slice(&[0u8, 255, 51, 102]).view([1, 2, 1, 2]);
        let n = Normalise {
            mean: vec![0.5, 0.2],
            std: vec![0.5, 0.1],
        };
        let t = Transform::new(&n, Augment::None, Kind::Double, Device::Cpu);
        let got = Vec::<f64>::try_from(t.eval(&x).view([-1])).unwrap();
        let want = [-1.0, 1.0, (0.2 - 0.2) / 0.1, (0.4 - 0.2) / 0.1];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
    }

    #[test]
    fn published_constants() {
        let cifar = Normalise::published("cifar10").unwrap();
        assert_eq!(cifar.mean, [0.4914, 0.4822, 0.4465]);
        assert_eq!(cifar.std, [0.2023, 0.1994, 0.2010]);
        assert_eq!(Normalise::published("mnist").unwrap().std, [0.3081]);
        let imagenet = Normalise::published("imagenet").unwrap();
        assert_eq!(imagenet.std, [0.229, 0.224, 0.225]);
        let err = Normalise::published("svhn").unwrap_err().to_string();
        assert!(
            err.contains("svhn") && err.contains("cifar10, imagenet"),
            "{err}"
        );
    }

    #[test]
    fn one_value_normalises_like_the_whole_set_statistics() {
        let x = Tensor::from_slice(&[0u8, 255, 51, 102]);
        let n = Normalise::of(&x, Kind::Double);
        let t = Transform::new(&n, Augment::None, Kind::Double, Device::Cpu);
        let y = t.eval(&x);
        assert!(y.mean(Kind::Double).double_value(&[]).abs() < 1e-12);
        assert!((y.std(true).double_value(&[]) - 1.0).abs() < 1e-12);
    }
}
