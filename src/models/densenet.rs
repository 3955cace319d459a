//! DenseNet-121 (Huang et al., 2017; growth rate k = 32, blocks [6, 12, 24, 16],
//! bottleneck width 4k, compression 0.5) in the two published forms the experiments use:
//!
//! - [`Variant::Cifar`], kuangliu/pytorch-cifar's `models/densenet.py`: stem conv 3×3
//!   pad 1 → 2k channels (no bias, nothing after it); a dense layer's output is
//!   concatenated in front of its input ([new, input] along channels, kuangliu's
//!   `torch.cat([out, x], 1)`). 6,956,298 parameters for 3-channel images and 10 classes.
//!   Parameters `conv1.weight`, `dense1.0.bn1.*`, `dense1.0.conv1.weight`,
//!   `dense1.0.bn2.*`, `dense1.0.conv2.weight`, ..., `trans1.bn.*`, `trans1.conv.weight`,
//!   ..., `bn.*`, `linear.*`; PyTorch's default initialisation (the file sets none).
//! - [`Variant::ImageNet`], torchvision's `densenet121`: stem conv 7×7 stride 2 pad 3 →
//!   2k (no bias) → BN → relu → max-pool 3×3 stride 2 pad 1; a dense layer's output is
//!   concatenated after its input ([input, new], as torchvision's
//!   `torch.cat(prev_features, 1)` orders them). 7,978,856 parameters for 3-channel
//!   images and 1000 classes. Parameters named as torchvision's `state_dict`:
//!   `features.conv0.weight`, `features.norm0.*`,
//!   `features.denseblock1.denselayer1.{norm1.*, conv1.weight, norm2.*, conv2.weight}`,
//!   ..., `features.transition1.norm.*`, `features.transition1.conv.weight`, ...,
//!   `features.norm5.*`, `classifier.*`; torchvision's initialisation: convolutions
//!   He-normal with fan-in (`kaiming_normal_`'s defaults), the classifier's bias zero and
//!   its weight PyTorch's default. Dropout 0 (torchvision's `drop_rate` default); its
//!   `memory_efficient` checkpointing changes memory, not values, and is not done here.
//!
//! Both then have four dense blocks, the first three each followed by a transition, and
//! BN → relu → global average pooling → linear 1024 → classes. A dense layer (bottleneck)
//! is BN → relu → conv 1×1 → 4k → BN → relu → conv 3×3 pad 1 → k; a transition is BN →
//! relu → conv 1×1 to half the channels (rounded down) → average pool 2×2. kuangliu's
//! file ends with `avg_pool2d(out, 4)`, the 4×4 map of 32×32 inputs; the global pooling
//! is the same there and lets other sizes through: at least 8×8 for the CIFAR form
//! (MNIST's 28×28), at least 29×29 for the ImageNet form (whose stem and max-pool first
//! quarter the size, rounding up).
//!
//! Batch norm is PyTorch's (weight 1, bias 0, momentum 0.1, eps 1e-5), its running
//! statistics non-trainable variables of the store. Every variable is created in
//! PyTorch's `parameters()` order.
use super::conv::{conv2d_no_bias, Conv2d};
use super::layers::{batch_norm2d, conv2d_fan_in, ConvBn};
use super::mlp::linear;
use super::resnet::Variant;
use anyhow::{ensure, Result};
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

/// The growth rate k: channels each dense layer adds.
const GROWTH: i64 = 32;
/// Dense layers per block.
const BLOCKS: [i64; 4] = [6, 12, 24, 16];
/// The bottleneck width, in multiples of k.
const BOTTLENECK: i64 = 4;

/// DenseNet-121 in one of its published forms for `channels`-channel images and
/// `classes` classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenseNet121 {
    pub variant: Variant,
    pub channels: i64,
    pub classes: i64,
}

/// What a variant calls its modules (see the module docs).
struct Names {
    /// The module holding everything before the classifier, if any (`features`).
    features: Option<&'static str>,
    /// The stem convolution and its batch norm (unused: the CIFAR form has none).
    stem: [&'static str; 2],
    /// Dense layer `i` of block `b` sits under `{block}{b}` / `{layer}{i + first_layer}`.
    block: &'static str,
    layer: &'static str,
    first_layer: i64,
    /// A dense layer's two [batch norm, convolution] pairs.
    bottleneck: [[&'static str; 2]; 2],
    /// The transition after block `b` sits under `{transition}{b}`, its [batch norm,
    /// convolution] named `transition_parts`.
    transition: &'static str,
    transition_parts: [&'static str; 2],
    /// The final batch norm and the classifier.
    norm: &'static str,
    classifier: &'static str,
}

static CIFAR_NAMES: Names = Names {
    features: None,
    stem: ["conv1", ""],
    block: "dense",
    layer: "",
    first_layer: 0,
    bottleneck: [["bn1", "conv1"], ["bn2", "conv2"]],
    transition: "trans",
    transition_parts: ["bn", "conv"],
    norm: "bn",
    classifier: "linear",
};

static IMAGENET_NAMES: Names = Names {
    features: Some("features"),
    stem: ["conv0", "norm0"],
    block: "denseblock",
    layer: "denselayer",
    first_layer: 1,
    bottleneck: [["norm1", "conv1"], ["norm2", "conv2"]],
    transition: "transition",
    transition_parts: ["norm", "conv"],
    norm: "norm5",
    classifier: "classifier",
};

/// One piece of the network after the stem, in order.
#[derive(Debug, Clone, Copy)]
enum Piece {
    /// Dense layer `index` (from 0) of block `block` (from 1) on `input` channels.
    Dense {
        block: usize,
        index: i64,
        input: i64,
    },
    /// The transition after block `block` (from 1), `input` → `output` channels.
    Transition {
        block: usize,
        input: i64,
        output: i64,
    },
}

impl DenseNet121 {
    /// Checks that the images survive the poolings (see the module docs).
    pub fn new(variant: Variant, image: [i64; 3], classes: i64) -> Result<Self> {
        let [channels, height, width] = image;
        let net = Self {
            variant,
            channels,
            classes,
        };
        let (minimum, poolings) = match variant {
            Variant::Cifar => (8, "three 2×2 average poolings"),
            Variant::ImageNet => (
                29,
                "stride-2 stem, 3×3 stride-2 max-pool and three 2×2 average poolings",
            ),
        };
        ensure!(
            height >= minimum && width >= minimum,
            "{}: {height}×{width} images are too small for its {poolings} (at least \
             {minimum}×{minimum})",
            net.name()
        );
        Ok(net)
    }

    /// The catalogue's name for this form.
    pub fn name(&self) -> &'static str {
        match self.variant {
            Variant::Cifar => "densenet121",
            Variant::ImageNet => "densenet121_imagenet",
        }
    }

    fn names(&self) -> &'static Names {
        match self.variant {
            Variant::Cifar => &CIFAR_NAMES,
            Variant::ImageNet => &IMAGENET_NAMES,
        }
    }

    /// Whether a dense layer's output goes after its input (torchvision) or before it.
    fn appends(&self) -> bool {
        self.variant == Variant::ImageNet
    }

    /// The stem convolution's (kernel size, stride); its padding is kernel/2.
    fn stem(&self) -> (i64, i64) {
        match self.variant {
            Variant::Cifar => (3, 1),
            Variant::ImageNet => (7, 2),
        }
    }

    /// The dense layers and transitions in order, and the channels at the end (1024).
    fn pieces() -> (Vec<Piece>, i64) {
        let mut planes = 2 * GROWTH;
        let mut pieces = Vec::new();
        for (b, &layers) in BLOCKS.iter().enumerate() {
            let block = b + 1;
            for index in 0..layers {
                let input = planes + index * GROWTH;
                pieces.push(Piece::Dense {
                    block,
                    index,
                    input,
                });
            }
            planes += layers * GROWTH;
            if block < BLOCKS.len() {
                let output = planes / 2;
                pieces.push(Piece::Transition {
                    block,
                    input: planes,
                    output,
                });
                planes = output;
            }
        }
        (pieces, planes)
    }

    /// The number of trainable values.
    pub fn parameter_count(&self) -> i64 {
        let (kernel, _) = self.stem();
        let stem = match self.variant {
            Variant::Cifar => self.channels * kernel * kernel * 2 * GROWTH,
            Variant::ImageNet => ConvBn::parameters(self.channels, 2 * GROWTH, kernel),
        };
        let (pieces, planes) = Self::pieces();
        let body: i64 = pieces
            .iter()
            .map(|piece| match *piece {
                Piece::Dense { input, .. } => {
                    BnReluConv::parameters(input, BOTTLENECK * GROWTH, 1)
                        + BnReluConv::parameters(BOTTLENECK * GROWTH, GROWTH, 3)
                }
                Piece::Transition { input, output, .. } => BnReluConv::parameters(input, output, 1),
            })
            .sum();
        stem + body + 2 * planes + (planes + 1) * self.classes
    }

    /// A bias-free convolution (`kernel`², padding kernel/2) with this variant's
    /// initialisation.
    fn conv(&self, path: &nn::Path, input: i64, output: i64, kernel: i64) -> Conv2d {
        let conv = match self.variant {
            Variant::Cifar => conv2d_no_bias(path, input, output, kernel),
            Variant::ImageNet => conv2d_fan_in(path, input, output, kernel, false),
        };
        conv.padding(kernel / 2)
    }

    /// BN under `path/names[0]`, then relu and the convolution under `path/names[1]`.
    fn bn_relu_conv(
        &self,
        path: &nn::Path,
        names: [&str; 2],
        [input, output]: [i64; 2],
        kernel: i64,
    ) -> BnReluConv {
        let bn = batch_norm2d(&(path / names[0]), input);
        let conv = self.conv(&(path / names[1]), input, output, kernel);
        BnReluConv { bn, conv }
    }

    /// Creates the variables under `path` and returns the network: images [N, C, H, W]
    /// in, logits [N, classes] out.
    pub fn build(&self, path: &nn::Path) -> nn::SequentialT {
        let names = self.names();
        let features = match names.features {
            Some(name) => path / name,
            None => path.clone(),
        };
        let (kernel, stride) = self.stem();
        let [conv, norm] = names.stem;
        let stem = self
            .conv(&(&features / conv), self.channels, 2 * GROWTH, kernel)
            .stride(stride);
        let mut net = nn::seq_t();
        net = match self.variant {
            Variant::Cifar => net.add(stem),
            Variant::ImageNet => net
                .add(ConvBn::new(stem, &(&features / norm)))
                .add_fn(|x| x.relu().max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)),
        };
        let append = self.appends();
        let (pieces, planes) = Self::pieces();
        for piece in pieces {
            net = match piece {
                Piece::Dense {
                    block,
                    index,
                    input,
                } => {
                    let path = &(&features
                        / format!("{}{block}", names.block)
                        / format!("{}{}", names.layer, index + names.first_layer));
                    let width = BOTTLENECK * GROWTH;
                    let [reduce, grow] = names.bottleneck;
                    net.add(DenseLayer {
                        reduce: self.bn_relu_conv(path, reduce, [input, width], 1),
                        grow: self.bn_relu_conv(path, grow, [width, GROWTH], 3),
                        append,
                    })
                }
                Piece::Transition {
                    block,
                    input,
                    output,
                } => {
                    let path = &(&features / format!("{}{block}", names.transition));
                    let parts = names.transition_parts;
                    net.add(self.bn_relu_conv(path, parts, [input, output], 1))
                        .add_fn(average_pool)
                }
            };
        }
        let bn = batch_norm2d(&(&features / names.norm), planes);
        let mut fc = linear(&(path / names.classifier), planes, self.classes);
        if self.variant == Variant::ImageNet {
            // torchvision draws the bias and then sets it to zero.
            let bias = fc.bs.as_mut().expect("linear layers have a bias");
            tch::no_grad(|| {
                let _ = bias.zero_();
            });
        }
        net.add(bn)
            .add_fn(|x| x.relu().adaptive_avg_pool2d([1, 1]).flatten(1, -1))
            .add(fc)
    }
}

/// 2×2 average pooling, stride 2. (tch's `avg_pool2d_default` passes a divisor override
/// of 1, so it sums.)
fn average_pool(xs: &Tensor) -> Tensor {
    xs.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None)
}

/// BN → relu → bias-free convolution.
#[derive(Debug)]
struct BnReluConv {
    bn: nn::BatchNorm,
    conv: Conv2d,
}

impl BnReluConv {
    /// 2·in + in·k²·out.
    fn parameters(input: i64, output: i64, kernel: i64) -> i64 {
        2 * input + input * kernel * kernel * output
    }
}

impl ModuleT for BnReluConv {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.conv.forward(&self.bn.forward_t(xs, train).relu())
    }
}

/// x and new = grow(reduce(x)) concatenated along channels: [x, new] if `append`
/// (torchvision), else [new, x] (kuangliu).
#[derive(Debug)]
struct DenseLayer {
    reduce: BnReluConv,
    grow: BnReluConv,
    append: bool,
}

impl ModuleT for DenseLayer {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let new = self
            .grow
            .forward_t(&self.reduce.forward_t(xs, train), train);
        if self.append {
            Tensor::cat(&[xs, &new], 1)
        } else {
            Tensor::cat(&[&new, xs], 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::FlatParams;
    use tch::{Device, Kind};

    #[test]
    fn names_in_pytorch_order_and_widths() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = DenseNet121::new(Variant::Cifar, [3, 32, 32], 10).unwrap();
        crate::models::seeded(0, || net.build(&vs.root()));
        let flat = FlatParams::new(&vs).unwrap();
        let layout = flat.layout();
        let names = layout.names();
        assert_eq!(
            names[..8],
            [
                "conv1.weight",
                "dense1.0.bn1.weight",
                "dense1.0.bn1.bias",
                "dense1.0.conv1.weight",
                "dense1.0.bn2.weight",
                "dense1.0.bn2.bias",
                "dense1.0.conv2.weight",
                "dense1.1.bn1.weight",
            ]
        );
        let i = names.iter().position(|&n| n == "trans1.bn.weight").unwrap();
        assert_eq!(names[i - 1], "dense1.5.conv2.weight");
        assert_eq!(names[i + 2], "trans1.conv.weight");
        assert_eq!(names[i + 3], "dense2.0.bn1.weight");
        let n = names.len();
        assert_eq!(
            names[n - 4..],
            ["bn.weight", "bn.bias", "linear.weight", "linear.bias"]
        );
        // 6 layers of 32 on 64 channels, halved: 128; the last block ends at 1024.
        assert_eq!(layout.segments[i + 2].shape, [128, 256, 1, 1]);
        assert_eq!(layout.segments[n - 2].shape, [10, 1024]);
        assert_eq!(layout.segments[3].shape, [128, 64, 1, 1]);
        assert_eq!(layout.segments[6].shape, [32, 128, 3, 3]);
    }

    #[test]
    fn imagenet_names_in_torchvision_order_and_initialisation() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = DenseNet121::new(Variant::ImageNet, [3, 64, 64], 1000).unwrap();
        let model = crate::models::seeded(0, || net.build(&vs.root()));
        let flat = FlatParams::new(&vs).unwrap();
        let layout = flat.layout();
        let names = layout.names();
        assert_eq!(flat.numel(), 7_978_856);
        assert_eq!(flat.numel(), net.parameter_count());
        let layer = "features.denseblock1.denselayer1";
        assert_eq!(
            names[..10],
            [
                "features.conv0.weight",
                "features.norm0.weight",
                "features.norm0.bias",
                &format!("{layer}.norm1.weight"),
                &format!("{layer}.norm1.bias"),
                &format!("{layer}.conv1.weight"),
                &format!("{layer}.norm2.weight"),
                &format!("{layer}.norm2.bias"),
                &format!("{layer}.conv2.weight"),
                "features.denseblock1.denselayer2.norm1.weight",
            ]
        );
        let i = names
            .iter()
            .position(|&n| n == "features.transition1.norm.weight")
            .unwrap();
        assert_eq!(
            names[i - 1],
            "features.denseblock1.denselayer6.conv2.weight"
        );
        assert_eq!(names[i + 2], "features.transition1.conv.weight");
        assert_eq!(
            names[i + 3],
            "features.denseblock2.denselayer1.norm1.weight"
        );
        assert!(names.contains(&"features.transition3.conv.weight"));
        assert!(names.contains(&"features.denseblock4.denselayer16.conv2.weight"));
        assert!(!names.contains(&"features.transition4.conv.weight"));
        let n = names.len();
        assert_eq!(
            names[n - 5..],
            [
                "features.denseblock4.denselayer16.conv2.weight",
                "features.norm5.weight",
                "features.norm5.bias",
                "classifier.weight",
                "classifier.bias"
            ]
        );
        // 121 = 1 + 2·58 + 3 + 1 weighted layers, as many batch norms (with two buffers).
        assert_eq!(n, 1 + 2 + 58 * 6 + 3 * 3 + 2 + 2);
        let v = vs.variables();
        assert_eq!(v.len(), n + 2 * (1 + 2 * 58 + 3 + 1));
        assert!(v.contains_key("features.norm5.running_var"));
        assert_eq!(layout.segments[0].shape, [64, 3, 7, 7]);
        assert_eq!(layout.segments[i + 2].shape, [128, 256, 1, 1]);
        assert_eq!(layout.segments[n - 2].shape, [1000, 1024]);
        // He-normal with fan-in: std √(2/(in·k²)); the stem's 3·49, a 3×3's 128·9.
        for (name, fan) in [
            ("features.conv0.weight", 3.0 * 49.0),
            (&format!("{layer}.conv2.weight"), 128.0 * 9.0),
            ("features.transition3.conv.weight", 1024.0),
        ] {
            let std = v[name].std(true).double_value(&[]);
            let expected = (2.0f64 / fan).sqrt();
            assert!((std - expected).abs() < 0.05 * expected, "{name}: {std}");
        }
        // The classifier's bias zero, its weight PyTorch's default (±1/√1024).
        let bias = &v["classifier.bias"];
        assert_eq!(bias.abs().sum(Kind::Float).double_value(&[]), 0.0);
        let max = v["classifier.weight"].abs().max().double_value(&[]);
        assert!(max <= 1.0 / 32.0 && max > 0.9 / 32.0, "{max}");
        assert!(v["features.norm5.weight"].equal(&Tensor::ones([1024], (Kind::Float, Device::Cpu))));
        // 64 → 32 (stem) → 16 (max-pool) → 8 → 4 → 2.
        let x = Tensor::zeros([1, 3, 64, 64], (Kind::Float, Device::Cpu));
        assert_eq!(
            tch::no_grad(|| model.forward_t(&x, false)).size(),
            [1, 1000]
        );
    }

    #[test]
    fn imagenet_form_takes_images_of_29_pixels_or_more() {
        let e = DenseNet121::new(Variant::ImageNet, [3, 28, 64], 10).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("densenet121_imagenet") && e.contains("at least 29×29"),
            "{e}"
        );
        let vs = nn::VarStore::new(Device::Cpu);
        let net = DenseNet121::new(Variant::ImageNet, [1, 29, 29], 10).unwrap();
        let model = crate::models::seeded(0, || net.build(&vs.root()));
        let x = Tensor::zeros([2, 1, 29, 29], (Kind::Float, Device::Cpu));
        assert_eq!(tch::no_grad(|| model.forward_t(&x, false)).size(), [2, 10]);
    }

    #[test]
    fn new_features_go_after_the_input_in_torchvision_before_it_in_kuangliu() {
        for variant in [Variant::ImageNet, Variant::Cifar] {
            let vs = nn::VarStore::new(Device::Cpu);
            let net = DenseNet121::new(variant, [3, 32, 32], 10).unwrap();
            let layer = crate::models::seeded(0, || DenseLayer {
                reduce: net.bn_relu_conv(&vs.root(), ["a", "b"], [64, 128], 1),
                grow: net.bn_relu_conv(&vs.root(), ["c", "d"], [128, 32], 3),
                append: net.appends(),
            });
            let x = crate::models::seeded(1, || {
                Tensor::randn([2, 64, 4, 4], (Kind::Float, Device::Cpu))
            });
            let out = tch::no_grad(|| layer.forward_t(&x, false));
            assert_eq!(out.size(), [2, 96, 4, 4]);
            let start = if variant == Variant::ImageNet { 0 } else { 32 };
            assert!(out.narrow(1, start, 64).equal(&x), "{variant:?}");
        }
    }

    #[test]
    fn transitions_average() {
        let x = Tensor::arange(16, (Kind::Float, Device::Cpu)).reshape([1, 1, 4, 4]);
        let expected = Tensor::from_slice(&[2.5f32, 4.5, 10.5, 12.5]).reshape([1, 1, 2, 2]);
        assert!(average_pool(&x).equal(&expected));
    }
}
