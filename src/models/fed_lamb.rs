//! The MNIST models of the Fed-LAMB paper (Section 4.1, "Models"):
//!
//! - the MLP, "one hidden layer containing 200 cells with dropout": [`mlp`], an [`Mlp`]
//!   784-200-10 with relu and dropout after the hidden layer. The paper gives no dropout
//!   rate; 0.5 (PyTorch's default) is assumed.
//! - the CNN, "two max-pooled convolutional layers followed by a dropout layer and two
//!   fully-connected layers with 320 and 50 cells": [`MnistCnn`]. The paper gives no
//!   channel counts or kernel sizes. Its description matches PyTorch's classic MNIST
//!   example network, whose sizes are implied by the 320 (= 20 channels · 4 · 4 after two
//!   5×5 convolutions and poolings of 28×28): conv(1, 10, 5) → maxpool 2 → relu →
//!   conv(10, 20, 5) → channel dropout → maxpool 2 → relu → flatten (320) → fc 50 → relu →
//!   dropout → fc 10. Both dropout rates are PyTorch's default 0.5. 21,840 parameters.
use super::conv::{conv2d, conv2d_parameters};
use super::mlp::{linear, Activation, Mlp};
use tch::nn;

/// The dropout rate assumed where the paper gives none.
pub const DROPOUT: f64 = 0.5;

/// The MNIST MLP: 784 → 200 → 10, relu, dropout `DROPOUT` after the hidden layer
/// (159,010 parameters).
pub fn mlp() -> Mlp {
    Mlp::new(784, &[200], 10, Activation::Relu).with_dropout(DROPOUT)
}

/// The MNIST CNN (see the module documentation). Parameters are named `conv1.*`,
/// `conv2.*`, `fc1.*`, `fc2.*` as in PyTorch's example.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MnistCnn {
    /// The rate of the channel dropout after conv2 and of the dropout after fc1
    /// (training mode only); 0 = none.
    pub dropout: f64,
}

impl Default for MnistCnn {
    fn default() -> Self {
        Self { dropout: DROPOUT }
    }
}

impl MnistCnn {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    /// The number of trainable values: 260 + 5,020 + 16,050 + 510 = 21,840.
    pub fn parameter_count(&self) -> i64 {
        conv2d_parameters(1, 10, 5) + conv2d_parameters(10, 20, 5) + 321 * 50 + 51 * 10
    }

    /// Creates the variables under `path` and returns the network: images [N, 1, 28, 28]
    /// (or [N, 28, 28], or [N, 784]) in, logits [N, 10] out.
    pub fn build(&self, path: &nn::Path) -> nn::SequentialT {
        let p = self.dropout;
        let conv1 = conv2d(&(path / "conv1"), 1, 10, 5);
        let conv2 = conv2d(&(path / "conv2"), 10, 20, 5);
        let fc1 = linear(&(path / "fc1"), 320, 50);
        let fc2 = linear(&(path / "fc2"), 50, 10);
        nn::seq_t()
            .add_fn(|x| x.reshape([-1, 1, 28, 28]))
            .add(conv1)
            .add_fn(|x| x.max_pool2d_default(2).relu())
            .add(conv2)
            .add_fn_t(move |x, train| {
                x.feature_dropout(p, train)
                    .max_pool2d_default(2)
                    .relu()
                    .flatten(1, -1)
            })
            .add(fc1)
            .add_fn_t(move |x, train| x.relu().dropout(p, train))
            .add(fc2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::FlatParams;
    use tch::nn::ModuleT;
    use tch::{Device, Kind, Tensor};

    #[test]
    fn fed_lamb_mlp_is_784_200_10_with_dropout() {
        let m = mlp();
        assert_eq!(m.parameter_count(), 159_010);
        assert_eq!(m.dropout, 0.5);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = crate::models::seeded(0, || m.build(&vs.root()));
        let x = Tensor::ones([4, 1, 28, 28], (Kind::Float, Device::Cpu));
        assert_eq!(net.forward_t(&x, false).size(), vec![4, 10]);
    }

    #[test]
    fn fed_lamb_cnn_has_21840_parameters() {
        let cnn = MnistCnn::new();
        assert_eq!(cnn.parameter_count(), 21_840);
        let vs = nn::VarStore::new(Device::Cpu);
        let (net, x) = crate::models::seeded(0, || {
            (
                cnn.build(&vs.root()),
                Tensor::randn([6, 1, 28, 28], (Kind::Float, Device::Cpu)),
            )
        });
        let flat = FlatParams::new(&vs).unwrap();
        assert_eq!(flat.numel(), 21_840);
        let names = flat.layout().names();
        assert_eq!(
            names,
            [
                "conv1.weight",
                "conv1.bias",
                "conv2.weight",
                "conv2.bias",
                "fc1.weight",
                "fc1.bias",
                "fc2.weight",
                "fc2.bias"
            ]
        );
        assert_eq!(flat.layout().segments[2].shape, vec![20, 10, 5, 5]);
        assert_eq!(net.forward_t(&x, false).size(), vec![6, 10]);
        assert_eq!(net.forward_t(&x.view([6, 784]), false).size(), vec![6, 10]);
        // Evaluation is deterministic; training mode drops units.
        assert!(net.forward_t(&x, false).equal(&net.forward_t(&x, false)));
        let trained = crate::models::seeded(1, || net.forward_t(&x, true));
        assert!(!trained.equal(&net.forward_t(&x, false)));
        // Without dropout both modes agree.
        let vs = nn::VarStore::new(Device::Cpu);
        let plain = crate::models::seeded(0, || cnn.with_dropout(0.0).build(&vs.root()));
        assert!(plain.forward_t(&x, true).equal(&plain.forward_t(&x, false)));
    }
}
