//! NIID-Bench's SimpleCNN (`SimpleCNNMNIST` and `SimpleCNN` of its `model.py`), the
//! convolutional model of its MNIST, FMNIST and CIFAR-10 experiments:
//!
//! conv(C, 6, 5) → relu → maxpool 2 → conv(6, 16, 5) → relu → maxpool 2 → flatten →
//! fc 120 → relu → fc 84 → relu → fc classes.
//!
//! 44,426 parameters on 1×28×28 inputs (fc1 takes 16·4·4), 62,006 on 3×32×32 (16·5·5).
//! Parameters are named `conv1.weight`, `conv1.bias`, `conv2.*`, `fc1.*`, `fc2.*`,
//! `fc3.*` in PyTorch's order, with PyTorch's default initialisation.
use super::conv::{conv2d, conv2d_parameters};
use super::mlp::linear;
use anyhow::{ensure, Result};
use tch::nn;

/// The convolutions' filter size.
const KERNEL: i64 = 5;
/// Channels after the first and the second convolution.
const CHANNELS: [i64; 2] = [6, 16];
/// The hidden fully connected widths.
const HIDDEN: [i64; 2] = [120, 84];

/// SimpleCNN for `channels`×`height`×`width` images and `classes` classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimpleCnn {
    pub channels: i64,
    pub height: i64,
    pub width: i64,
    pub classes: i64,
}

impl SimpleCnn {
    /// Checks that the images survive two 5×5 convolutions and 2×2 poolings (at least
    /// 16×16).
    pub fn new(channels: i64, height: i64, width: i64, classes: i64) -> Result<Self> {
        ensure!(
            channels >= 1 && classes >= 1,
            "simple CNN: need at least one channel and one class, got {channels} and {classes}"
        );
        ensure!(
            height >= 16 && width >= 16,
            "simple CNN: {height}×{width} images are too small for two 5×5 convolutions \
             and 2×2 poolings (at least 16×16)"
        );
        Ok(Self {
            channels,
            height,
            width,
            classes,
        })
    }

    /// MNIST and Fashion-MNIST: 1×28×28, 10 classes.
    pub fn mnist() -> Self {
        Self::new(1, 28, 28, 10).expect("valid sizes")
    }

    /// CIFAR-10: 3×32×32, 10 classes.
    pub fn cifar10() -> Self {
        Self::new(3, 32, 32, 10).expect("valid sizes")
    }

    /// The spatial size after conv → pool → conv → pool.
    fn feature_map(size: i64) -> i64 {
        ((size - KERNEL + 1) / 2 - KERNEL + 1) / 2
    }

    /// The inputs of fc1: 16·h·w of the last feature map (256 for MNIST, 400 for CIFAR-10).
    pub fn flat_features(&self) -> i64 {
        CHANNELS[1] * Self::feature_map(self.height) * Self::feature_map(self.width)
    }

    /// The number of trainable values.
    pub fn parameter_count(&self) -> i64 {
        let widths = [self.flat_features(), HIDDEN[0], HIDDEN[1], self.classes];
        conv2d_parameters(self.channels, CHANNELS[0], KERNEL)
            + conv2d_parameters(CHANNELS[0], CHANNELS[1], KERNEL)
            + widths.windows(2).map(|w| (w[0] + 1) * w[1]).sum::<i64>()
    }

    /// Creates the variables under `path` and returns the network. It takes images
    /// [N, C, H, W] (or anything of N·C·H·W values, such as [N, H, W] for one channel,
    /// which it reshapes) and returns logits [N, classes].
    pub fn build(&self, path: &nn::Path) -> nn::SequentialT {
        let trunk = self.trunk(path);
        trunk.add(self.head(path))
    }

    /// The network up to its penultimate activations: conv1 … fc2 and its ReLU, [N, 84]
    /// (the features of `metrics::fd_fmnist`). With [`SimpleCnn::head`] created after it
    /// under the same `path`, the variables are those of [`SimpleCnn::build`], in its order.
    pub fn trunk(&self, path: &nn::Path) -> nn::SequentialT {
        let shape = [-1, self.channels, self.height, self.width];
        let conv1 = conv2d(&(path / "conv1"), self.channels, CHANNELS[0], KERNEL);
        let conv2 = conv2d(&(path / "conv2"), CHANNELS[0], CHANNELS[1], KERNEL);
        let fc1 = linear(&(path / "fc1"), self.flat_features(), HIDDEN[0]);
        let fc2 = linear(&(path / "fc2"), HIDDEN[0], HIDDEN[1]);
        nn::seq_t()
            .add_fn(move |x| x.reshape(shape))
            .add(conv1)
            .add_fn(|x| x.relu().max_pool2d_default(2))
            .add(conv2)
            .add_fn(|x| x.relu().max_pool2d_default(2).flatten(1, -1))
            .add(fc1)
            .add_fn(|x| x.relu())
            .add(fc2)
            .add_fn(|x| x.relu())
    }

    /// The last layer, fc3: penultimate activations [N, 84] → logits [N, classes].
    pub fn head(&self, path: &nn::Path) -> nn::Linear {
        linear(&(path / "fc3"), HIDDEN[1], self.classes)
    }

    /// The width of the penultimate activations ([`SimpleCnn::trunk`]'s output), 84.
    pub fn penultimate(&self) -> i64 {
        HIDDEN[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::FlatParams;
    use tch::nn::ModuleT;
    use tch::{Device, Kind, Tensor};

    #[test]
    fn mnist_simple_cnn_has_44426_parameters() {
        let cnn = SimpleCnn::mnist();
        assert_eq!(cnn.flat_features(), 16 * 4 * 4);
        assert_eq!(cnn.parameter_count(), 44_426);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = crate::models::seeded(0, || cnn.build(&vs.root()));
        let flat = FlatParams::new(&vs).unwrap();
        assert_eq!(flat.numel(), 44_426);
        assert_eq!(
            flat.layout().names(),
            [
                "conv1.weight",
                "conv1.bias",
                "conv2.weight",
                "conv2.bias",
                "fc1.weight",
                "fc1.bias",
                "fc2.weight",
                "fc2.bias",
                "fc3.weight",
                "fc3.bias"
            ]
        );
        assert_eq!(flat.layout().segments[0].shape, vec![6, 1, 5, 5]);
        assert_eq!(flat.layout().segments[4].shape, vec![120, 256]);
        let x = Tensor::zeros([3, 1, 28, 28], (Kind::Float, Device::Cpu));
        assert_eq!(net.forward_t(&x, false).size(), vec![3, 10]);
        // Single-channel images without the channel dimension are accepted too.
        let x = Tensor::zeros([5, 28, 28], (Kind::Float, Device::Cpu));
        assert_eq!(net.forward_t(&x, true).size(), vec![5, 10]);
    }

    #[test]
    fn cifar10_simple_cnn_has_62006_parameters() {
        let cnn = SimpleCnn::cifar10();
        assert_eq!(cnn.flat_features(), 16 * 5 * 5);
        assert_eq!(cnn.parameter_count(), 62_006);
        let mut vs = nn::VarStore::new(Device::Cpu);
        vs.set_kind(Kind::Double);
        let (net, x) = crate::models::seeded(0, || {
            (
                cnn.build(&vs.root()),
                Tensor::randn([4, 3, 32, 32], (Kind::Double, Device::Cpu)),
            )
        });
        assert_eq!(FlatParams::new(&vs).unwrap().numel(), 62_006);
        let out = net.forward_t(&x, true);
        assert_eq!(out.size(), vec![4, 10]);
        assert_eq!(out.kind(), Kind::Double);
        // Gradients reach the first layer.
        out.sum(Kind::Double).backward();
        let g = vs.variables()["conv1.weight"].grad();
        assert!(g.abs().sum(Kind::Double).double_value(&[]) > 0.0);
    }

    #[test]
    fn other_sizes_and_too_small_images() {
        let cnn = SimpleCnn::new(2, 20, 36, 4).unwrap();
        // 20 → 16 → 8 → 4 → 2; 36 → 32 → 16 → 12 → 6.
        assert_eq!(cnn.flat_features(), 16 * 2 * 6);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = crate::models::seeded(0, || cnn.build(&vs.root()));
        assert_eq!(FlatParams::new(&vs).unwrap().numel(), cnn.parameter_count());
        let x = Tensor::zeros([1, 2, 20, 36], (Kind::Float, Device::Cpu));
        assert_eq!(net.forward_t(&x, false).size(), vec![1, 4]);
        let e = SimpleCnn::new(1, 15, 28, 10).unwrap_err().to_string();
        assert!(e.contains("at least 16×16"), "{e}");
        assert!(SimpleCnn::new(0, 28, 28, 10).is_err());
    }
}
