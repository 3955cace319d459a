//! He et al.'s residual networks for CIFAR-10 ("Deep Residual Learning for Image Recognition",
//! 2016, Section 4.2), as akamaster/pytorch_resnet_cifar10 `resnet.py` defines them and MixML's
//! Figure 2 trains ResNet-20: a 3×3 stem conv → 16 (no bias) → BN → relu, three stages of n
//! basic blocks of width 16, 32, 64 (the first block of stages 2 and 3 has stride 2), global
//! average pooling, a linear layer 64 → classes; depth 6n + 2 (ResNet-20: n = 3, 269,722
//! parameters on 3×32×32 images and 10 classes, the paper's "0.27M").
//!
//! The shortcut is option A of the paper, as in that file: the identity, or, where the shape
//! changes, the input subsampled by 2 (`x[:, :, ::2, ::2]`) and padded with zero channels,
//! planes/4 on each side; it has no parameters. Initialisation is the file's
//! `_weights_init`: every convolution and the linear layer's weight `kaiming_normal_`
//! (fan-in, gain √2), the linear bias PyTorch's default, batch norm weight 1 and bias 0.
//! Parameters `conv1`, `bn1`, `layer{s}.{b}.{conv1,bn1,conv2,bn2}`, `linear`, created in
//! PyTorch's `parameters()` order.
use super::layers::{conv2d_fan_in, ConvBn};
use super::resnet::{BasicBlock, Shortcut};
use tch::nn;

/// The widths of the three stages.
const WIDTHS: [i64; 3] = [16, 32, 64];

/// A CIFAR ResNet of depth 6·`blocks` + 2 for `channels`-channel images and `classes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CifarResNet {
    /// Basic blocks per stage (n; ResNet-20: 3).
    pub blocks: usize,
    pub channels: i64,
    pub classes: i64,
}

impl CifarResNet {
    /// ResNet-20.
    pub fn resnet20(channels: i64, classes: i64) -> Self {
        Self {
            blocks: 3,
            channels,
            classes,
        }
    }

    /// Every block as (stage, index, input width, output width, stride).
    fn shapes(&self) -> Vec<(usize, usize, i64, i64, i64)> {
        let mut input = WIDTHS[0];
        let mut shapes = Vec::new();
        for (stage, &output) in WIDTHS.iter().enumerate() {
            for index in 0..self.blocks {
                let stride = if stage > 0 && index == 0 { 2 } else { 1 };
                shapes.push((stage, index, input, output, stride));
                input = output;
            }
        }
        shapes
    }

    /// The number of trainable values.
    pub fn parameter_count(&self) -> i64 {
        let blocks: i64 = self
            .shapes()
            .iter()
            .map(|&(_, _, input, output, _)| {
                ConvBn::parameters(input, output, 3) + ConvBn::parameters(output, output, 3)
            })
            .sum();
        ConvBn::parameters(self.channels, WIDTHS[0], 3) + blocks + (WIDTHS[2] + 1) * self.classes
    }

    /// Creates the variables under `path` and returns the network: images [N, C, H, W] in,
    /// logits [N, classes] out.
    pub fn build(&self, path: &nn::Path) -> nn::SequentialT {
        let conv_bn = |path: &nn::Path, [conv, bn]: [&str; 2], input, output, stride| {
            let layer = conv2d_fan_in(&(path / conv), input, output, 3, false)
                .stride(stride)
                .padding(1);
            ConvBn::new(layer, &(path / bn))
        };
        let stem = conv_bn(path, ["conv1", "bn1"], self.channels, WIDTHS[0], 1);
        let mut net = nn::seq_t().add(stem).add_fn(|x| x.relu());
        for (stage, index, input, output, stride) in self.shapes() {
            let block = &(path / format!("layer{}", stage + 1) / index);
            net = net.add(BasicBlock {
                conv1: conv_bn(block, ["conv1", "bn1"], input, output, stride),
                conv2: conv_bn(block, ["conv2", "bn2"], output, output, 1),
                shortcut: match input != output || stride != 1 {
                    true => Shortcut::ZeroPad((output - input) / 2),
                    false => Shortcut::Identity,
                },
            });
        }
        let fan_in = WIDTHS[2];
        let ws = (path / "linear").var(
            "weight",
            &[self.classes, fan_in],
            nn::Init::Randn {
                mean: 0.0,
                stdev: (2.0 / fan_in as f64).sqrt(),
            },
        );
        let bound = 1.0 / (fan_in as f64).sqrt();
        let bs = (path / "linear").var(
            "bias",
            &[self.classes],
            nn::Init::Uniform {
                lo: -bound,
                up: bound,
            },
        );
        let fc = nn::Linear { ws, bs: Some(bs) };
        net.add_fn(|x| x.adaptive_avg_pool2d([1, 1]).flatten(1, -1))
            .add(fc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::FlatParams;
    use tch::nn::ModuleT;
    use tch::Tensor;
    use tch::{Device, Kind};

    #[test]
    fn resnet20_has_the_published_size_and_pytorch_names() {
        let net = CifarResNet::resnet20(3, 10);
        assert_eq!(net.parameter_count(), 269_722);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = crate::models::seeded(0, || net.build(&vs.root()));
        let flat = FlatParams::new(&vs).unwrap();
        assert_eq!(flat.layout().numel(), 269_722);
        let names = flat.layout().names();
        assert_eq!(names.len(), 3 + 9 * 6 + 2);
        assert_eq!(
            names[..4],
            [
                "conv1.weight",
                "bn1.weight",
                "bn1.bias",
                "layer1.0.conv1.weight"
            ]
        );
        assert_eq!(names[names.len() - 2..], ["linear.weight", "linear.bias"]);
        assert!(names.contains(&"layer3.2.bn2.bias"));
        let x = crate::models::seeded(0, || {
            Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu))
        });
        let logits = model.forward_t(&x, false);
        assert_eq!(logits.size(), [2, 10]);
        // one channel (Fashion-MNIST), 28×28
        assert_eq!(
            CifarResNet::resnet20(1, 10).parameter_count(),
            269_722 - 2 * 16 * 9
        );
    }

    #[test]
    fn option_a_shortcut_subsamples_and_pads_with_zeros() {
        let x = Tensor::arange(2 * 16 * 4 * 4, (Kind::Float, Device::Cpu)).reshape([2, 16, 4, 4]);
        let skip = Shortcut::ZeroPad(8).forward_t(&x, false);
        assert_eq!(skip.size(), [2, 32, 2, 2]);
        assert_eq!(
            skip.narrow(1, 0, 8)
                .abs()
                .sum(Kind::Float)
                .double_value(&[]),
            0.0
        );
        assert_eq!(
            skip.get(1).get(8).get(1).get(1).double_value(&[]),
            x.get(1).get(0).get(2).get(2).double_value(&[])
        );
    }

    #[test]
    fn initialisation_is_kaiming_normal_with_fan_in() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = crate::models::seeded(0, || CifarResNet::resnet20(3, 10).build(&vs.root()));
        let vars = vs.variables();
        let w = &vars["layer3.1.conv2.weight"];
        let std = w.std(true).double_value(&[]);
        let want = (2.0f64 / (64.0 * 9.0)).sqrt();
        assert!((std / want - 1.0).abs() < 0.02, "{std} vs {want}");
    }
}
