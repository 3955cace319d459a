//! Fully connected classifiers: input → hidden layers → class logits.
use anyhow::bail;
use std::str::FromStr;
use tch::nn;

/// The nonlinearity after each hidden layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Tanh,
}

impl FromStr for Activation {
    type Err = anyhow::Error;

    /// `"relu"` or `"tanh"`.
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "relu" => Ok(Self::Relu),
            "tanh" => Ok(Self::Tanh),
            _ => bail!("unknown activation {s:?}; expected \"relu\" or \"tanh\""),
        }
    }
}

/// A multilayer perceptron: the input is flattened ([N, ...] → [N, input]), then
/// `fc1 … fc{k+1}` [`linear`] layers (PyTorch's default init), with the activation and
/// optional dropout after every hidden layer, and raw logits out.
/// Parameters are named `fc1.weight`, `fc1.bias`, `fc2.weight`, ...
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    pub input: i64,
    pub hidden: Vec<i64>,
    pub classes: i64,
    pub activation: Activation,
    /// Drop probability after each hidden activation, in training mode only; 0 = none.
    pub dropout: f64,
}

impl Mlp {
    pub fn new(input: i64, hidden: &[i64], classes: i64, activation: Activation) -> Self {
        Self {
            input,
            hidden: hidden.to_vec(),
            classes,
            activation,
            dropout: 0.0,
        }
    }

    pub fn with_dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    /// Layer widths from input to output.
    fn widths(&self) -> Vec<i64> {
        let mut widths = vec![self.input];
        widths.extend(&self.hidden);
        widths.push(self.classes);
        widths
    }

    /// The number of trainable values, Σ (fan_in + 1)·fan_out.
    pub fn parameter_count(&self) -> i64 {
        self.widths().windows(2).map(|w| (w[0] + 1) * w[1]).sum()
    }

    /// Creates the layers' variables under `path` (in the order fc1.weight, fc1.bias, ...)
    /// and returns the network.
    pub fn build(&self, path: &nn::Path) -> nn::SequentialT {
        let widths = self.widths();
        let layers = widths.len() - 1;
        let mut net = nn::seq_t().add_fn(|x| x.flatten(1, -1));
        for (l, w) in widths.windows(2).enumerate() {
            let name = format!("fc{}", l + 1);
            net = net.add(linear(&(path / name.as_str()), w[0], w[1]));
            if l + 1 < layers {
                net = match self.activation {
                    Activation::Relu => net.add_fn(|x| x.relu()),
                    Activation::Tanh => net.add_fn(|x| x.tanh()),
                };
                if self.dropout > 0.0 {
                    let p = self.dropout;
                    net = net.add_fn_t(move |x, train| x.dropout(p, train));
                }
            }
        }
        net
    }
}

/// A linear layer as PyTorch's `nn.Linear` makes it: `weight` [out, in] created (and
/// drawn) before `bias` [out], both uniform in ±1/√in. tch's own `nn::linear` creates
/// the bias first and draws the weight from a Kaiming uniform with the ReLU gain, √6
/// times wider than PyTorch's default.
pub fn linear(path: &nn::Path, input: i64, output: i64) -> nn::Linear {
    let bound = 1.0 / (input as f64).sqrt();
    let init = nn::Init::Uniform {
        lo: -bound,
        up: bound,
    };
    let ws = path.var("weight", &[output, input], init);
    let bs = path.var("bias", &[output], init);
    nn::Linear { ws, bs: Some(bs) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::FlatParams;
    use tch::nn::ModuleT;
    use tch::{Device, Kind, Tensor};

    #[test]
    fn mnist_mlp_has_the_expected_parameters() {
        let mlp = Mlp::new(784, &[200], 10, Activation::Relu);
        assert_eq!(mlp.parameter_count(), 159_010);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = crate::models::seeded(0, || mlp.build(&vs.root()));
        let flat = FlatParams::new(&vs).unwrap();
        assert_eq!(flat.numel(), 159_010);
        let names = flat.layout().names();
        assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
        assert_eq!(flat.layout().segments[0].shape, vec![200, 784]);
        // Images are flattened on the way in.
        let out = net.forward_t(
            &Tensor::zeros([3, 28, 28], (Kind::Float, Device::Cpu)),
            false,
        );
        assert_eq!(out.size(), vec![3, 10]);
    }

    #[test]
    fn linear_layers_follow_pytorchs_initialisation() {
        let vs = nn::VarStore::new(Device::Cpu);
        let layer = crate::models::seeded(0, || linear(&vs.root(), 400, 300));
        let bound = 1.0 / 20.0;
        for t in [&layer.ws, layer.bs.as_ref().unwrap()] {
            let max = t.abs().max().double_value(&[]);
            assert!(max <= bound && max > 0.9 * bound, "{max}");
        }
    }

    #[test]
    fn deeper_tanh_mlp_with_dropout() {
        let mlp = Mlp::new(10, &[8, 6], 3, "tanh".parse().unwrap()).with_dropout(0.5);
        assert_eq!(mlp.parameter_count(), 11 * 8 + 9 * 6 + 7 * 3);
        let vs = nn::VarStore::new(Device::Cpu);
        let (net, x) = crate::models::seeded(0, || {
            (
                mlp.build(&vs.root()),
                Tensor::randn([4, 10], (Kind::Float, Device::Cpu)),
            )
        });
        assert_eq!(FlatParams::new(&vs).unwrap().numel(), mlp.parameter_count());
        // Eval mode is deterministic (no dropout).
        assert!(net.forward_t(&x, false).equal(&net.forward_t(&x, false)));
        assert!("gelu".parse::<Activation>().is_err());
    }
}
