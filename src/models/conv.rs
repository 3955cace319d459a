//! 2-D convolutions laid out and initialised as PyTorch's `nn.Conv2d` does them.
use tch::{nn, Tensor};

/// A 2-D convolution with square kernels, stride and padding (dilation 1, one group).
/// `weight` [out, in, k, k] is created (and drawn) before `bias` [out], both uniform in
/// ±1/√fan_in with fan_in = in·k·k: PyTorch's default, kaiming_uniform(a = √5) on the
/// weight. tch's own `nn::conv2d` creates the bias first, with zeros.
#[derive(Debug)]
pub struct Conv2d {
    pub ws: Tensor,
    pub bs: Option<Tensor>,
    pub stride: i64,
    pub padding: i64,
}

impl Conv2d {
    /// The same layer with another stride (the variables do not change).
    pub fn stride(mut self, stride: i64) -> Self {
        self.stride = stride;
        self
    }

    /// The same layer with zero padding of `padding` on every side.
    pub fn padding(mut self, padding: i64) -> Self {
        self.padding = padding;
        self
    }
}

impl nn::Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.conv2d(
            &self.ws,
            self.bs.as_ref(),
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            1,
        )
    }
}

/// A convolution from `input` to `output` channels with `kernel`×`kernel` filters,
/// stride 1 and no padding, with a bias (see [`Conv2d`]).
pub fn conv2d(path: &nn::Path, input: i64, output: i64, kernel: i64) -> Conv2d {
    let (ws, bound) = weight(path, input, output, kernel);
    let bs = path.var("bias", &[output], uniform(bound));
    Conv2d {
        ws,
        bs: Some(bs),
        stride: 1,
        padding: 0,
    }
}

/// [`conv2d`] without a bias.
pub fn conv2d_no_bias(path: &nn::Path, input: i64, output: i64, kernel: i64) -> Conv2d {
    let (ws, _) = weight(path, input, output, kernel);
    Conv2d {
        ws,
        bs: None,
        stride: 1,
        padding: 0,
    }
}

/// The parameter count of [`conv2d`]: (in·k·k + 1)·out.
pub fn conv2d_parameters(input: i64, output: i64, kernel: i64) -> i64 {
    (input * kernel * kernel + 1) * output
}

fn weight(path: &nn::Path, input: i64, output: i64, kernel: i64) -> (Tensor, f64) {
    let bound = 1.0 / ((input * kernel * kernel) as f64).sqrt();
    let ws = path.var("weight", &[output, input, kernel, kernel], uniform(bound));
    (ws, bound)
}

fn uniform(bound: f64) -> nn::Init {
    nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::FlatParams;
    use tch::nn::Module;
    use tch::{Device, Kind};

    #[test]
    fn weight_before_bias_with_pytorchs_bounds() {
        let vs = nn::VarStore::new(Device::Cpu);
        let conv = crate::models::seeded(0, || conv2d(&(vs.root() / "c"), 16, 32, 3));
        let flat = FlatParams::new(&vs).unwrap();
        let names = flat.layout().names();
        assert_eq!(names, ["c.weight", "c.bias"]);
        assert_eq!(flat.numel(), conv2d_parameters(16, 32, 3));
        let bound = 1.0 / 12.0; // 1/√(16·3·3)
        for t in [&conv.ws, conv.bs.as_ref().unwrap()] {
            let max = t.abs().max().double_value(&[]);
            assert!(max <= bound && max > 0.8 * bound, "{max}");
        }
    }

    #[test]
    fn stride_and_padding_change_the_output_size() {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let (plain, strided, nobias) = crate::models::seeded(0, || {
            (
                conv2d(&(&root / "a"), 3, 4, 3),
                conv2d(&(&root / "b"), 3, 4, 3).stride(2).padding(1),
                conv2d_no_bias(&(&root / "n"), 3, 4, 3),
            )
        });
        let x = Tensor::zeros([2, 3, 8, 8], (Kind::Float, Device::Cpu));
        assert_eq!(plain.forward(&x).size(), vec![2, 4, 6, 6]);
        assert_eq!(strided.forward(&x).size(), vec![2, 4, 4, 4]);
        assert!(nobias.bs.is_none());
        // No bias: zeros in, zeros out.
        assert_eq!(
            nobias.forward(&x).abs().sum(Kind::Float).double_value(&[]),
            0.0
        );
        assert_eq!(
            FlatParams::new(&vs).unwrap().numel(),
            2 * (27 * 4 + 4) + 27 * 4
        );
    }
}
