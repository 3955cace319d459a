//! Pieces the vision models share: PyTorch's batch norm, convolution followed by batch
//! norm, He-normal (fan-out or fan-in) convolutions, and the `features`/`classifier`
//! stacks of torchvision's VGG and AlexNet.
use super::conv::Conv2d;
use super::mlp::linear;
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

/// PyTorch's `nn.BatchNorm2d(channels)`: trainable `weight` (ones) then `bias` (zeros);
/// `running_mean` (zeros) and `running_var` (ones) as non-trainable variables of the
/// store, updated with momentum 0.1 by every training-mode forward pass and used in
/// evaluation mode; eps 1e-5. (tch's default config draws the weight from U[0, 1).)
pub fn batch_norm2d(path: &nn::Path, channels: i64) -> nn::BatchNorm {
    let config = nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::batch_norm2d(path, channels, config)
}

/// A convolution with the initialisation of torchvision's ResNets and AdaBelief's VGG:
/// `weight` [out, in, k, k] from N(0, 2/(out·k·k)) (`kaiming_normal_` with fan-out and
/// ReLU gain), then, if `bias`, a `bias` [out] of zeros. Stride 1, no padding.
pub fn conv2d_fan_out(path: &nn::Path, input: i64, output: i64, kernel: i64, bias: bool) -> Conv2d {
    he_normal(
        path,
        [input, output, kernel],
        output * kernel * kernel,
        bias,
    )
}

/// A convolution with the initialisation of torchvision's DenseNets: `weight`
/// [out, in, k, k] from N(0, 2/(in·k·k)) (`kaiming_normal_`'s defaults: fan-in, gain √2),
/// then, if `bias`, a `bias` [out] of zeros. Stride 1, no padding.
pub fn conv2d_fan_in(path: &nn::Path, input: i64, output: i64, kernel: i64, bias: bool) -> Conv2d {
    he_normal(path, [input, output, kernel], input * kernel * kernel, bias)
}

/// `weight` from N(0, 2/fan), then an optional `bias` of zeros.
fn he_normal(path: &nn::Path, [input, output, kernel]: [i64; 3], fan: i64, bias: bool) -> Conv2d {
    let stdev = (2.0 / fan as f64).sqrt();
    let ws = path.var(
        "weight",
        &[output, input, kernel, kernel],
        nn::Init::Randn { mean: 0.0, stdev },
    );
    let bs = bias.then(|| path.zeros("bias", &[output]));
    Conv2d {
        ws,
        bs,
        stride: 1,
        padding: 0,
    }
}

/// A convolution without bias followed by [`batch_norm2d`]; no activation.
#[derive(Debug)]
pub struct ConvBn {
    pub conv: Conv2d,
    pub bn: nn::BatchNorm,
}

impl ConvBn {
    /// Appends the batch norm over `conv`'s output channels under `bn` (so its variables
    /// come after the convolution's).
    pub fn new(conv: Conv2d, bn: &nn::Path) -> Self {
        let bn = batch_norm2d(bn, conv.ws.size()[0]);
        Self { conv, bn }
    }

    /// Trainable values of a bias-free `input`→`output` convolution with `kernel`² filters
    /// and its batch norm: in·k²·out + 2·out.
    pub fn parameters(input: i64, output: i64, kernel: i64) -> i64 {
        input * kernel * kernel * output + 2 * output
    }
}

impl ModuleT for ConvBn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.bn.forward_t(&self.conv.forward(xs), train)
    }
}

/// One layer of a VGG/AlexNet `features` stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// A convolution with a bias to `output` channels, followed by ReLU.
    Conv {
        output: i64,
        kernel: i64,
        stride: i64,
        padding: i64,
    },
    /// Max-pooling (no padding).
    MaxPool { kernel: i64, stride: i64 },
}

/// The `features` stack `layers` on `input` channels, named as PyTorch's `nn.Sequential`
/// numbers its modules (every ReLU and pooling takes an index: `0`, `3`, `6`, ... for
/// VGG-11), each convolution made by `conv(path, in, out, kernel)` (which sets the
/// initialisation).
pub fn features(
    path: &nn::Path,
    input: i64,
    layers: &[Feature],
    conv: fn(&nn::Path, i64, i64, i64) -> Conv2d,
) -> nn::SequentialT {
    let (mut net, mut channels, mut index) = (nn::seq_t(), input, 0);
    for layer in layers {
        match *layer {
            Feature::Conv {
                output,
                kernel,
                stride,
                padding,
            } => {
                let layer = conv(&(path / index), channels, output, kernel)
                    .stride(stride)
                    .padding(padding);
                net = net.add(layer).add_fn(|x| x.relu());
                channels = output;
                index += 2;
            }
            Feature::MaxPool { kernel, stride } => {
                net = net.add_fn(move |x| {
                    x.max_pool2d([kernel, kernel], [stride, stride], [0, 0], [1, 1], false)
                });
                index += 1;
            }
        }
    }
    net
}

/// The trainable values of [`features`]: Σ (in·k² + 1)·out over the convolutions.
pub fn features_parameters(input: i64, layers: &[Feature]) -> i64 {
    let (mut total, mut channels) = (0, input);
    for layer in layers {
        if let Feature::Conv { output, kernel, .. } = *layer {
            total += super::conv::conv2d_parameters(channels, output, kernel);
            channels = output;
        }
    }
    total
}

/// The height or width that [`features`] turns `size` into (≤ 0: the image is too small
/// for some layer).
pub fn features_output(size: i64, layers: &[Feature]) -> i64 {
    layers.iter().fold(size, |size, layer| {
        let (kernel, stride, padding) = match *layer {
            Feature::Conv {
                kernel,
                stride,
                padding,
                ..
            } => (kernel, stride, padding),
            Feature::MaxPool { kernel, stride } => (kernel, stride, 0),
        };
        let padded = size + 2 * padding - kernel;
        if padded < 0 {
            0
        } else {
            padded / stride + 1
        }
    })
}

/// The `classifier` of torchvision's VGG and AlexNet, widths[0] → widths[3]:
/// Dropout → Linear → ReLU → Dropout → Linear → ReLU → Linear, the linear layers named
/// `1`, `4` and `6` (PyTorch's default initialisation); dropout `p` in training mode only.
pub fn classifier(path: &nn::Path, widths: [i64; 4], p: f64) -> nn::SequentialT {
    let fc1 = linear(&(path / 1), widths[0], widths[1]);
    let fc2 = linear(&(path / 4), widths[1], widths[2]);
    let fc3 = linear(&(path / 6), widths[2], widths[3]);
    nn::seq_t()
        .add_fn_t(move |x, train| x.dropout(p, train))
        .add(fc1)
        .add_fn_t(move |x, train| x.relu().dropout(p, train))
        .add(fc2)
        .add_fn(|x| x.relu())
        .add(fc3)
}

/// The trainable values of [`classifier`]: Σ (in + 1)·out.
pub fn classifier_parameters(widths: [i64; 4]) -> i64 {
    widths.windows(2).map(|w| (w[0] + 1) * w[1]).sum()
}
