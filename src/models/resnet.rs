//! Residual networks of basic blocks (He et al., 2016), in the two published forms the
//! experiments use:
//!
//! - [`Variant::Cifar`], kuangliu/pytorch-cifar's `models/resnet.py` (AdaBelief's CIFAR
//!   benchmark): stem conv 3×3 stride 1 → 64 (no bias) → BN → relu, no max-pool.
//!   ResNet-18: 11,173,962 parameters; ResNet-34: 21,282,122 (3×32×32 images, 10
//!   classes). Parameters `conv1`, `bn1`, `layer{s}.{b}.{conv1,bn1,conv2,bn2}`,
//!   `layer{s}.{b}.shortcut.{0,1}`, `linear`; PyTorch's default initialisation (the
//!   file sets none).
//! - [`Variant::ImageNet`], torchvision's `resnet18`/`resnet34`: stem conv 7×7 stride 2
//!   pad 3 → 64 (no bias) → BN → relu → maxpool 3×3 stride 2 pad 1. ResNet-18: 11,689,512
//!   parameters (3×224×224 images, 1000 classes). Names as above with `downsample` for
//!   `shortcut` and `fc` for `linear`; torchvision's initialisation: convolutions
//!   He-normal with fan-out, the final layer PyTorch's default.
//!
//! Both then have four stages of `blocks[s]` basic blocks of width 64, 128, 256, 512
//! (the first block of stages 2–4 has stride 2); a basic block is conv 3×3 → BN → relu →
//! conv 3×3 → BN, plus the input, or its 1×1 strided conv → BN projection where the
//! shape changes, → relu. Then global average pooling and a linear layer 512 → classes.
//! kuangliu's file pools with `avg_pool2d(out, 4)`, the same wherever the last map is 4×4
//! (inputs of 25 to 32 pixels: CIFAR's, MNIST's); the global pooling here also takes
//! other sizes, where that one would fail or pool only a corner.
//!
//! Batch norm is PyTorch's (weight 1, bias 0, momentum 0.1, eps 1e-5), its running mean
//! and variance non-trainable variables of the store. Every variable is created in
//! PyTorch's `parameters()` order.
use super::conv::{conv2d_no_bias, Conv2d};
use super::layers::{conv2d_fan_out, ConvBn};
use super::mlp::linear;
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// Which published definition (stem, names and initialisation; see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// kuangliu/pytorch-cifar.
    Cifar,
    /// torchvision.
    ImageNet,
}

/// The blocks per stage of ResNet-18.
pub const RESNET18: [usize; 4] = [2, 2, 2, 2];
/// The blocks per stage of ResNet-34.
pub const RESNET34: [usize; 4] = [3, 4, 6, 3];

/// The widths of the stem and the four stages.
const WIDTHS: [i64; 4] = [64, 128, 256, 512];

/// A residual network for `channels`-channel images and `classes` classes (any image
/// size: the global pooling fixes the classifier's input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResNet {
    pub variant: Variant,
    /// Basic blocks per stage ([`RESNET18`], [`RESNET34`]).
    pub blocks: [usize; 4],
    pub channels: i64,
    pub classes: i64,
}

/// The shape of one basic block.
#[derive(Debug, Clone, Copy)]
struct Shape {
    input: i64,
    output: i64,
    stride: i64,
}

impl Shape {
    /// Whether the shortcut needs a projection.
    fn projects(&self) -> bool {
        self.stride != 1 || self.input != self.output
    }
}

impl ResNet {
    pub fn new(variant: Variant, blocks: [usize; 4], channels: i64, classes: i64) -> Self {
        Self {
            variant,
            blocks,
            channels,
            classes,
        }
    }

    /// The stem convolution's (kernel size, stride); its padding is kernel/2.
    fn stem(&self) -> (i64, i64) {
        match self.variant {
            Variant::Cifar => (3, 1),
            Variant::ImageNet => (7, 2),
        }
    }

    /// Every block as (stage, index in the stage, shape), in order.
    fn shapes(&self) -> Vec<(usize, usize, Shape)> {
        let mut input = WIDTHS[0];
        let mut shapes = Vec::new();
        for (stage, (&output, &blocks)) in WIDTHS.iter().zip(&self.blocks).enumerate() {
            for index in 0..blocks {
                let stride = if stage > 0 && index == 0 { 2 } else { 1 };
                shapes.push((
                    stage,
                    index,
                    Shape {
                        input,
                        output,
                        stride,
                    },
                ));
                input = output;
            }
        }
        shapes
    }

    /// The number of trainable values.
    pub fn parameter_count(&self) -> i64 {
        let stem = ConvBn::parameters(self.channels, WIDTHS[0], self.stem().0);
        let blocks: i64 = self
            .shapes()
            .iter()
            .map(|(_, _, s)| {
                let projection = if s.projects() {
                    ConvBn::parameters(s.input, s.output, 1)
                } else {
                    0
                };
                ConvBn::parameters(s.input, s.output, 3)
                    + ConvBn::parameters(s.output, s.output, 3)
                    + projection
            })
            .sum();
        stem + blocks + (WIDTHS[3] + 1) * self.classes
    }

    /// A bias-free convolution with this variant's initialisation.
    fn conv(&self, path: &nn::Path, input: i64, output: i64, kernel: i64) -> Conv2d {
        match self.variant {
            Variant::Cifar => conv2d_no_bias(path, input, output, kernel),
            Variant::ImageNet => conv2d_fan_out(path, input, output, kernel, false),
        }
    }

    /// conv (`kernel`², stride, padding kernel/2) under `conv`, then BN under `bn`.
    fn conv_bn(
        &self,
        path: &nn::Path,
        [conv, bn]: [&str; 2],
        [input, output]: [i64; 2],
        kernel: i64,
        stride: i64,
    ) -> ConvBn {
        let layer = self
            .conv(&(path / conv), input, output, kernel)
            .stride(stride)
            .padding(kernel / 2);
        ConvBn::new(layer, &(path / bn))
    }

    /// Creates the variables under `path` and returns the network: images [N, C, H, W]
    /// in, logits [N, classes] out.
    pub fn build(&self, path: &nn::Path) -> nn::SequentialT {
        let (shortcut, classifier) = match self.variant {
            Variant::Cifar => ("shortcut", "linear"),
            Variant::ImageNet => ("downsample", "fc"),
        };
        let (kernel, stride) = self.stem();
        let stem = self.conv_bn(
            path,
            ["conv1", "bn1"],
            [self.channels, WIDTHS[0]],
            kernel,
            stride,
        );
        let mut net = nn::seq_t().add(stem).add_fn(|x| x.relu());
        if self.variant == Variant::ImageNet {
            net = net.add_fn(|x| x.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false));
        }
        for (stage, index, s) in self.shapes() {
            let block = &(path / format!("layer{}", stage + 1) / index);
            let projection = &(block / shortcut);
            net = net.add(BasicBlock {
                conv1: self.conv_bn(block, ["conv1", "bn1"], [s.input, s.output], 3, s.stride),
                conv2: self.conv_bn(block, ["conv2", "bn2"], [s.output, s.output], 3, 1),
                shortcut: match s.projects() {
                    true => Shortcut::Projection(self.conv_bn(
                        projection,
                        ["0", "1"],
                        [s.input, s.output],
                        1,
                        s.stride,
                    )),
                    false => Shortcut::Identity,
                },
            });
        }
        let fc = linear(&(path / classifier), WIDTHS[3], self.classes);
        net.add_fn(|x| x.adaptive_avg_pool2d([1, 1]).flatten(1, -1))
            .add(fc)
    }
}

/// How a basic block's input reaches its sum.
#[derive(Debug)]
pub(crate) enum Shortcut {
    Identity,
    /// A 1×1 strided conv → BN (option B of He et al.).
    Projection(ConvBn),
    /// Option A: the input subsampled by 2 and this many zero channels added on each side.
    ZeroPad(i64),
}

/// relu(BN(conv(relu(BN(conv(x))))) + shortcut(x)).
#[derive(Debug)]
pub(crate) struct BasicBlock {
    pub(crate) conv1: ConvBn,
    pub(crate) conv2: ConvBn,
    pub(crate) shortcut: Shortcut,
}

impl ModuleT for BasicBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let out = self.conv1.forward_t(xs, train).relu();
        let out = self.conv2.forward_t(&out, train);
        (out + self.shortcut.forward_t(xs, train)).relu()
    }
}

impl ModuleT for Shortcut {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self {
            Shortcut::Identity => xs.shallow_clone(),
            Shortcut::Projection(projection) => projection.forward_t(xs, train),
            Shortcut::ZeroPad(pad) => xs
                .slice(2, 0, None, 2)
                .slice(3, 0, None, 2)
                .constant_pad_nd([0, 0, 0, 0, *pad, *pad]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::FlatParams;
    use tch::{Device, Kind};

    fn build(variant: Variant) -> (nn::VarStore, nn::SequentialT) {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ResNet::new(variant, RESNET18, 3, 10);
        let net = crate::models::seeded(0, || net.build(&vs.root()));
        (vs, net)
    }

    #[test]
    fn cifar_resnet18_parameters_in_pytorch_order() {
        let (vs, _) = build(Variant::Cifar);
        let flat = FlatParams::new(&vs).unwrap();
        let names = flat.layout().names();
        assert_eq!(
            names[..12],
            [
                "conv1.weight",
                "bn1.weight",
                "bn1.bias",
                "layer1.0.conv1.weight",
                "layer1.0.bn1.weight",
                "layer1.0.bn1.bias",
                "layer1.0.conv2.weight",
                "layer1.0.bn2.weight",
                "layer1.0.bn2.bias",
                "layer1.1.conv1.weight",
                "layer1.1.bn1.weight",
                "layer1.1.bn1.bias",
            ]
        );
        let i = names
            .iter()
            .position(|&n| n == "layer2.0.bn2.bias")
            .unwrap();
        assert_eq!(
            names[i + 1..i + 5],
            [
                "layer2.0.shortcut.0.weight",
                "layer2.0.shortcut.1.weight",
                "layer2.0.shortcut.1.bias",
                "layer2.1.conv1.weight"
            ]
        );
        assert_eq!(names[names.len() - 2..], ["linear.weight", "linear.bias"]);
        assert_eq!(names.len(), 62);
        assert_eq!(flat.layout().segments[0].shape, [64, 3, 3, 3]);
        let shortcut = &flat.layout().segments[i + 1];
        assert_eq!(shortcut.shape, [128, 64, 1, 1]);
        // 20 batch norms, each with a running mean and variance outside the flat buffer.
        let buffers: Vec<String> = vs
            .variables()
            .into_keys()
            .filter(|n| n.ends_with("running_mean") || n.ends_with("running_var"))
            .collect();
        assert_eq!(buffers.len(), 40);
        assert_eq!(vs.variables().len(), names.len() + 40);
        // PyTorch's batch-norm initialisation.
        let v = vs.variables();
        assert!(v["bn1.weight"].equal(&Tensor::ones([64], (Kind::Float, Device::Cpu))));
        assert!(v["bn1.running_var"].equal(&Tensor::ones([64], (Kind::Float, Device::Cpu))));
        assert_eq!(v["bn1.bias"].abs().sum(Kind::Float).double_value(&[]), 0.0);
    }

    #[test]
    fn imagenet_resnet18_names_and_initialisation() {
        let (vs, net) = build(Variant::ImageNet);
        let flat = FlatParams::new(&vs).unwrap();
        let names = flat.layout().names();
        assert_eq!(names[..3], ["conv1.weight", "bn1.weight", "bn1.bias"]);
        assert!(names.contains(&"layer3.0.downsample.0.weight"));
        assert!(names.contains(&"layer4.0.downsample.1.bias"));
        assert_eq!(names[names.len() - 2..], ["fc.weight", "fc.bias"]);
        assert_eq!(flat.layout().segments[0].shape, [64, 3, 7, 7]);
        // He-normal with fan-out: std √(2/(64·49)) ≈ 0.0253.
        let std = vs.variables()["conv1.weight"].std(true).double_value(&[]);
        assert!(
            (std - (2.0f64 / (64.0 * 49.0)).sqrt()).abs() < 0.002,
            "{std}"
        );
        // 7×7/2 stem and 3×3/2 max-pool, then three stride-2 stages: 64 → 16 → 2.
        let x = Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu));
        assert_eq!(net.forward_t(&x, false).size(), [1, 10]);
    }

    #[test]
    fn batch_norm_statistics_update_in_training_mode_only() {
        let (vs, net) = build(Variant::Cifar);
        let mean = |name: &str| vs.variables()[name].copy();
        let x = crate::models::seeded(1, || {
            Tensor::randn([4, 3, 16, 16], (Kind::Float, Device::Cpu)) + 1.0
        });
        let names = ["bn1.running_mean", "layer4.1.bn2.running_mean"];
        let before: Vec<Tensor> = names.iter().map(|n| mean(n)).collect();
        let out = tch::no_grad(|| net.forward_t(&x, false));
        assert_eq!(out.size(), [4, 10]);
        for (name, old) in names.iter().zip(&before) {
            assert!(mean(name).equal(old), "{name} changed in evaluation mode");
        }
        let out = tch::no_grad(|| net.forward_t(&x, true));
        assert_eq!(out.size(), [4, 10]);
        for (name, old) in names.iter().zip(&before) {
            assert!(!mean(name).equal(old), "{name} unchanged in training mode");
        }
        // Momentum 0.1 from zero: the stem's running mean is a tenth of the batch mean.
        let v = vs.variables();
        let stem = v["conv1.weight"].shallow_clone();
        let batch_mean = tch::no_grad(|| {
            x.conv2d(&stem, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1)
                .mean_dim(&[0i64, 2, 3][..], false, Kind::Float)
        });
        let diff = (mean("bn1.running_mean") - batch_mean * 0.1).abs().max();
        assert!(diff.double_value(&[]) < 1e-5);
    }
}
