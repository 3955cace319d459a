//! `fd_fmnist`'s feature space: the penultimate activations (84 values, after fc2's ReLU)
//! of NIID-Bench's SimpleCNN trained on Fashion-MNIST by pisa itself
//! (`experiments/fd-fmnist/classifier.toml`, `scripts/fd_fmnist.sh`) and shipped as
//! `assets/fd_fmnist.safetensors` (PyTorch `state_dict` names; `assets/README.md`).
//!
//! CIFAR-10 and pytorch-fid's Inception weights are not on this machine, so generated
//! Fashion-MNIST images are scored by the Fréchet distance of these features instead. It
//! is a distance of the same form as FID but in another network's feature space: its
//! values are not FID values and are not comparable with published ones.
use super::FeatureExtractor;
use crate::models::simple_cnn::SimpleCnn;
use crate::models::FlatParams;
use crate::tasks::init::{self, Role};
use anyhow::{bail, ensure, Result};
use std::path::Path;
use tch::nn::{self, Module, ModuleT};
use tch::{Device, Kind, Tensor};

/// The shipped classifier, relative to the repository root.
pub const SHIPPED: &str = "assets/fd_fmnist.safetensors";

/// The side of the classifier's square inputs.
pub const SIDE: i64 = 28;

/// The normalisation the classifier was trained with: the mean and standard deviation of
/// all Fashion-MNIST training pixels scaled to [0, 1], computed in f32 as
/// `data::transform::Normalise::of` computes them for an IDX spec (x ← (x − mean)/std).
pub const MEAN: f64 = 0.286_040_604_114_532_47;
pub const STD: f64 = 0.353_024_244_308_471_7;

/// Images pushed through the network at once.
const BATCH: i64 = 500;

/// How a file that does not fit is described.
const ROLE: Role = Role {
    what: "fd_fmnist classifier",
    key: "",
    dtype: ("the classifier is", ""),
    hint: ". The shipped file is assets/fd_fmnist.safetensors (scripts/fd_fmnist.sh writes it).",
};

/// The trained classifier, in evaluation mode on one device.
#[derive(Debug)]
pub struct FdFmnist {
    /// Holds the variables that `trunk` and `head` read.
    _vs: nn::VarStore,
    trunk: nn::SequentialT,
    head: nn::Linear,
    dims: i64,
    device: Device,
}

impl FdFmnist {
    /// The classifier at `path` (normally [`SHIPPED`]) on `device`. The file must hold
    /// exactly SimpleCNN's ten tensors (`conv1.weight` … `fc3.bias`), f32, of its
    /// Fashion-MNIST shapes; the error names each one that does not fit.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        ensure!(
            path.is_file(),
            "fd_fmnist classifier {} not found; the shipped one is {SHIPPED} in the \
             repository (scripts/fd_fmnist.sh trains and writes it)",
            path.display()
        );
        let cnn = SimpleCnn::mnist();
        let vs = nn::VarStore::new(device);
        // Its initial draws are overwritten; the lock keeps them out of other runs' draws.
        let (trunk, head) =
            crate::models::seeded(0, || (cnn.trunk(&vs.root()), cnn.head(&vs.root())));
        let flat = FlatParams::new(&vs)?;
        // SimpleCNN has no buffers: `read` rejects a file that holds any.
        let (w, _) = init::read(path, ROLE, flat.layout(), flat.state_layout(), Kind::Float)?;
        flat.load(&w)?;
        Ok(Self {
            _vs: vs,
            trunk,
            head,
            dims: cnn.penultimate(),
            device,
        })
    }

    /// The classifier's logits [N, 10] (f32, on its device) of images as
    /// [`FeatureExtractor::features`] takes them.
    pub fn logits(&self, images: &Tensor) -> Result<Tensor> {
        self.batched(images, |x| {
            self.head.forward(&self.trunk.forward_t(x, false))
        })
    }

    /// Runs `f` on the prepared inputs, [`BATCH`] images at a time, without gradients,
    /// and concatenates its outputs.
    fn batched(&self, images: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> Result<Tensor> {
        let x = self.inputs(images)?;
        let n = x.size()[0];
        let parts: Vec<Tensor> = tch::no_grad(|| {
            (0..n)
                .step_by(BATCH as usize)
                .map(|start| f(&x.narrow(0, start, BATCH.min(n - start))))
                .collect()
        });
        Ok(Tensor::cat(&parts, 0))
    }

    /// `images` [N, C, H, W] in [0, 1] as the classifier's inputs [N, 1, 28, 28] on its
    /// device: three channels averaged, resized bilinearly (torch's
    /// `F.interpolate(mode="bilinear", align_corners=False, antialias=False)`) when not
    /// 28×28, normalised with [`MEAN`] and [`STD`].
    fn inputs(&self, images: &Tensor) -> Result<Tensor> {
        let size = images.size();
        let &[n, channels, height, width] = size.as_slice() else {
            bail!("fd_fmnist: expected images [N, C, H, W], got a tensor of shape {size:?}");
        };
        ensure!(
            n >= 1 && height >= 1 && width >= 1,
            "fd_fmnist: no images in a tensor of shape {size:?}"
        );
        ensure!(
            matches!(channels, 1 | 3),
            "fd_fmnist: expected 1 (grey) or 3 (RGB) channels, got {channels} (shape {size:?})"
        );
        ensure!(
            images.is_floating_point(),
            "fd_fmnist: expected floating-point images with values in [0, 1], got {:?}",
            images.kind()
        );
        let x = images.to_device(self.device).to_kind(Kind::Float);
        let (lo, hi) = (x.min().double_value(&[]), x.max().double_value(&[]));
        ensure!(
            (0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi),
            "fd_fmnist: image values must lie in [0, 1], found [{lo}, {hi}] (a generator's \
             tanh outputs map there by (x + 1)/2)"
        );
        let x = if channels == 3 {
            x.mean_dim(1, true, Kind::Float)
        } else {
            x
        };
        let x = if (height, width) == (SIDE, SIDE) {
            x
        } else {
            x.upsample_bilinear2d([SIDE, SIDE], false, None, None)
        };
        Ok((x - MEAN) / STD)
    }
}

impl FeatureExtractor for FdFmnist {
    fn dims(&self) -> i64 {
        self.dims
    }

    fn features(&self, images: &Tensor) -> Result<Tensor> {
        let features = self.batched(images, |x| self.trunk.forward_t(x, false))?;
        Ok(features.to_device(Device::Cpu).to_kind(Kind::Double))
    }
}
