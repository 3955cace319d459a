//! DenseNet-121 for CIFAR as kuangliu/pytorch-cifar's `models/densenet.py` defines it
//! (Huang et al., 2017; growth rate k = 32, blocks [6, 12, 24, 16], compression 0.5):
//!
//! stem conv 3×3 pad 1 → 2k channels (no bias); four dense blocks, the first three each
//! followed by a transition; then BN → relu → average pool → linear 1024 → classes.
//! A dense layer (bottleneck) is BN → relu → conv 1×1 → 4k → BN → relu → conv 3×3 pad 1
//! → k, its output concatenated in front of its input ([new, input] along channels, as
//! kuangliu's `torch.cat([out, x], 1)`). A transition is BN → relu → conv 1×1 to half
//! the channels (rounded down) → average pool 2×2.
//!
//! 6,956,298 parameters for 3-channel images and 10 classes. kuangliu's file ends with
//! `avg_pool2d(out, 4)`, the 4×4 map of 32×32 inputs; this one pools globally, the same
//! there, and lets other sizes of at least 8×8 (MNIST's 28×28) through.
//!
//! Parameters are named as in PyTorch (`conv1.weight`, `dense1.0.bn1.*`,
//! `dense1.0.conv1.weight`, `dense1.0.bn2.*`, `dense1.0.conv2.weight`, ...,
//! `trans1.bn.*`, `trans1.conv.weight`, ..., `bn.*`, `linear.*`), in its order, with
//! PyTorch's default initialisation (the file sets none). Batch norm is PyTorch's
//! (weight 1, bias 0, momentum 0.1, eps 1e-5), its running statistics non-trainable
//! variables of the store.
use super::conv::{conv2d_no_bias, Conv2d};
use super::layers::batch_norm2d;
use super::mlp::linear;
use anyhow::{ensure, Result};
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

/// The growth rate k: channels each dense layer adds.
const GROWTH: i64 = 32;
/// Dense layers per block.
const BLOCKS: [i64; 4] = [6, 12, 24, 16];
/// The bottleneck width, in multiples of k.
const BOTTLENECK: i64 = 4;

/// DenseNet-121 for `channels`-channel images and `classes` classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenseNet121 {
    pub channels: i64,
    pub classes: i64,
}

/// One piece of the network after the stem, in order.
#[derive(Debug, Clone, Copy)]
enum Piece {
    /// Dense layer `index` of block `block` (from 1) on `input` channels.
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
    /// Checks that the images survive the three 2×2 poolings (at least 8×8).
    pub fn new(image: [i64; 3], classes: i64) -> Result<Self> {
        let [channels, height, width] = image;
        ensure!(
            height >= 8 && width >= 8,
            "densenet121: {height}×{width} images are too small for its three 2×2 average \
             poolings (at least 8×8)"
        );
        Ok(Self { channels, classes })
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
        self.channels * 9 * 2 * GROWTH + body + 2 * planes + (planes + 1) * self.classes
    }

    /// Creates the variables under `path` and returns the network: images [N, C, H, W]
    /// in, logits [N, classes] out.
    pub fn build(&self, path: &nn::Path) -> nn::SequentialT {
        let stem = conv2d_no_bias(&(path / "conv1"), self.channels, 2 * GROWTH, 3).padding(1);
        let mut net = nn::seq_t().add(stem);
        let (pieces, planes) = Self::pieces();
        for piece in pieces {
            net = match piece {
                Piece::Dense {
                    block,
                    index,
                    input,
                } => {
                    let path = &(path / format!("dense{block}") / index);
                    let width = BOTTLENECK * GROWTH;
                    net.add(DenseLayer {
                        reduce: BnReluConv::new(path, ["bn1", "conv1"], [input, width], 1),
                        grow: BnReluConv::new(path, ["bn2", "conv2"], [width, GROWTH], 3),
                    })
                }
                Piece::Transition {
                    block,
                    input,
                    output,
                } => {
                    let path = &(path / format!("trans{block}"));
                    net.add(BnReluConv::new(path, ["bn", "conv"], [input, output], 1))
                        .add_fn(average_pool)
                }
            };
        }
        let bn = batch_norm2d(&(path / "bn"), planes);
        let fc = linear(&(path / "linear"), planes, self.classes);
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

/// BN → relu → bias-free convolution (`kernel`², padding kernel/2).
#[derive(Debug)]
struct BnReluConv {
    bn: nn::BatchNorm,
    conv: Conv2d,
}

impl BnReluConv {
    /// The batch norm under `path/names[0]`, then the convolution under `path/names[1]`.
    fn new(path: &nn::Path, names: [&str; 2], [input, output]: [i64; 2], kernel: i64) -> Self {
        let bn = batch_norm2d(&(path / names[0]), input);
        let conv = conv2d_no_bias(&(path / names[1]), input, output, kernel).padding(kernel / 2);
        Self { bn, conv }
    }

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

/// [grow(reduce(x)), x] along channels.
#[derive(Debug)]
struct DenseLayer {
    reduce: BnReluConv,
    grow: BnReluConv,
}

impl ModuleT for DenseLayer {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let new = self
            .grow
            .forward_t(&self.reduce.forward_t(xs, train), train);
        Tensor::cat(&[&new, xs], 1)
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
        let net = DenseNet121::new([3, 32, 32], 10).unwrap();
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
    fn transitions_average() {
        let x = Tensor::arange(16, (Kind::Float, Device::Cpu)).reshape([1, 1, 4, 4]);
        let expected = Tensor::from_slice(&[2.5f32, 4.5, 10.5, 12.5]).reshape([1, 1, 2, 2]);
        assert!(average_pool(&x).equal(&expected));
    }
}
