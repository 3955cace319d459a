//! The DCGAN generator and the two critics of the paper's WGAN experiments, as the PISA
//! repository writes them (Tracy-Wang7/PISA, `WGAN/WGAN/main_SPiAM.py` and
//! `WGAN/WGAN_GP/main_SPiAM.py`, from the AdaBelief suite's `wgan` and `wgan-gp`):
//!
//! - generator: ConvTranspose2d(nz, ngf·8, 4, 1, 0) → BN → ReLU, then ConvTranspose2d
//!   (4, 2, 1) → BN → ReLU halving the channels down to ngf, then ConvTranspose2d(ngf, nc,
//!   4, 2, 1) → Tanh: z [N, nz] (or [N, nz, 1, 1]) → images [N, nc, 64, 64];
//! - critic trunk: Conv2d(nc, ndf, 4, 2, 1) → LeakyReLU(0.2), then Conv2d(4, 2, 1) → BN →
//!   LeakyReLU(0.2) doubling the channels up to ndf·8 at 4×4;
//! - [`Variant::Wgan`] head: Conv2d(ndf·8, 1, 4, 1, 0) → Sigmoid; [`Variant::WganGp`] head:
//!   Linear(4·4·ndf·8, 1) on the flattened trunk (the GP critic keeps the batch norms);
//!   either returns [N].
//!
//! Every convolution has no bias. At 32×32 (the CPU runs' Fashion-MNIST) each network has
//! one block fewer: the generator starts at ngf·4 on 4×4, the critic's trunk ends at ndf·4
//! on 4×4.
//!
//! Initialisation as the scripts' `weights_init`: every (transposed) convolution weight
//! from N(0, 0.02²), batch-norm weights from N(1, 0.02²) and biases 0; the GP critic's
//! Linear, which `weights_init` does not touch, keeps PyTorch's default (uniform in
//! ±1/√fan_in, weight then bias). Batch norm is PyTorch's: momentum 0.1, eps 1e-5.
//!
//! Parameters are named as the `state_dict` of the scripts' modules (`main.0.weight`,
//! `main.1.weight`, `main.1.bias`, `main.1.running_mean`, ..., `linear.weight`,
//! `linear.bias`), created in the order of their `parameters()`; PyTorch's
//! `num_batches_tracked` has no counterpart (it only matters without a momentum).
//!
//! Trainable values with nz = 100, ngf = ndf = 64, as measured from the re-typed modules
//! in PyTorch (scripts/golden_gan.py, tests/data/gan/modules.json):
//!
//! | nc, size | generator | WGAN critic | WGAN-GP critic |
//! |---|---|---|---|
//! | 3, 64×64 | 3,576,704 | 2,765,568 | 2,765,569 |
//! | 1, 64×64 | 3,574,656 | 2,763,520 | 2,763,521 |
//! | 3, 32×32 | 1,068,928 | 663,296 | 663,297 |
//! | 1, 32×32 | 1,066,880 | 661,248 | 661,249 |
use super::conv::Conv2d;
use super::flat::FlatParams;
use super::mlp::linear;
use anyhow::{ensure, Context, Result};
use tch::nn::{self, Module, ModuleT};
use tch::{Device, Kind, Tensor};

/// The filter size of every (transposed) convolution.
const KERNEL: i64 = 4;
/// The standard deviation of `weights_init`'s normal draws.
const INIT_STD: f64 = 0.02;
/// The critic's LeakyReLU slope.
const SLOPE: f64 = 0.2;

/// Which script's critic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `WGAN/WGAN/main_SPiAM.py` (weight clipping): a convolution and a sigmoid on top.
    Wgan,
    /// `WGAN/WGAN_GP/main_SPiAM.py` (gradient penalty): a linear layer on top.
    WganGp,
}

/// The sizes of a generator–critic pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dcgan {
    /// Latent size.
    pub nz: i64,
    /// Generator width (channels of its last hidden block).
    pub ngf: i64,
    /// Critic width (channels of its first block).
    pub ndf: i64,
    /// Image channels.
    pub nc: i64,
    /// Image height and width: 32 or 64.
    pub image_size: i64,
    pub variant: Variant,
}

/// One player's network in its own var store, with its parameters as one flat buffer:
/// the generator and the critic are trained by separate optimizers.
#[derive(Debug)]
pub struct Player<M> {
    pub store: nn::VarStore,
    pub net: M,
    /// The trainable values in PyTorch's `parameters()` order, and the batch-norm running
    /// statistics as [`FlatParams::state`].
    pub params: FlatParams,
}

impl Dcgan {
    /// Checks the sizes: all positive, `image_size` 32 or 64.
    pub fn new(
        nz: i64,
        ngf: i64,
        ndf: i64,
        nc: i64,
        image_size: i64,
        variant: Variant,
    ) -> Result<Self> {
        ensure!(
            nz >= 1 && ngf >= 1 && ndf >= 1 && nc >= 1,
            "DCGAN: nz, ngf, ndf and nc must be positive, got {nz}, {ngf}, {ndf}, {nc}"
        );
        ensure!(
            image_size == 32 || image_size == 64,
            "DCGAN: image size {image_size} is not supported; expected 32 or 64"
        );
        Ok(Self {
            nz,
            ngf,
            ndf,
            nc,
            image_size,
            variant,
        })
    }

    /// The scripts' widths, nz = 100 and ngf = ndf = 64.
    pub fn paper(nc: i64, image_size: i64, variant: Variant) -> Result<Self> {
        Self::new(100, 64, 64, nc, image_size, variant)
    }

    /// Up-sampling blocks with batch norm in the generator, strided convolutions in the
    /// critic's trunk: 4 at 64×64, 3 at 32×32.
    fn blocks(&self) -> u32 {
        if self.image_size == 64 {
            4
        } else {
            3
        }
    }

    /// The generator's hidden widths, from the first block to the last: ngf·2^(b−1) … ngf.
    fn generator_widths(&self) -> Vec<i64> {
        (0..self.blocks()).rev().map(|i| self.ngf << i).collect()
    }

    /// The critic trunk's widths, from the first convolution to the last: ndf … ndf·2^(b−1).
    fn critic_widths(&self) -> Vec<i64> {
        (0..self.blocks()).map(|i| self.ndf << i).collect()
    }

    /// The generator's trainable values: Σ in·out·16 over the transposed convolutions and
    /// 2·channels per batch norm.
    pub fn generator_parameter_count(&self) -> i64 {
        let widths = self.generator_widths();
        let mut inputs = vec![self.nz];
        inputs.extend(&widths);
        let mut outputs = widths.clone();
        outputs.push(self.nc);
        let convs: i64 = inputs.iter().zip(&outputs).map(|(i, o)| i * o).sum();
        convs * KERNEL * KERNEL + 2 * widths.iter().sum::<i64>()
    }

    /// The critic's trainable values: the trunk's convolutions and batch norms (none on
    /// the first), then the head (16·top, plus a bias for the linear one).
    pub fn critic_parameter_count(&self) -> i64 {
        let widths = self.critic_widths();
        let top = widths[widths.len() - 1];
        let mut inputs = vec![self.nc];
        inputs.extend(&widths[..widths.len() - 1]);
        let convs: i64 = inputs.iter().zip(&widths).map(|(i, o)| i * o).sum();
        let head = match self.variant {
            Variant::Wgan => top * KERNEL * KERNEL,
            Variant::WganGp => top * KERNEL * KERNEL + 1,
        };
        convs * KERNEL * KERNEL + 2 * widths[1..].iter().sum::<i64>() + head
    }

    /// Creates the generator's variables under `path` (`main.0.weight`, `main.1.weight`,
    /// `main.1.bias`, `main.1.running_mean`, ...), drawing them from torch's generator.
    pub fn generator(&self, path: &nn::Path) -> Generator {
        let main = path / "main";
        let widths = self.generator_widths();
        let (mut convs, mut norms, mut input) = (Vec::new(), Vec::new(), self.nz);
        for (i, &width) in widths.iter().enumerate() {
            convs.push(weight(&(&main / (3 * i)), [input, width]));
            norms.push(batch_norm(&(&main / (3 * i + 1)), width));
            input = width;
        }
        convs.push(weight(&(&main / (3 * widths.len())), [input, self.nc]));
        Generator {
            convs,
            norms,
            nz: self.nz,
        }
    }

    /// Creates the critic's variables under `path` (`main.0.weight`, `main.2.weight`,
    /// `main.3.weight`, ..., then the head's), drawing them from torch's generator.
    pub fn critic(&self, path: &nn::Path) -> Critic {
        let main = path / "main";
        let widths = self.critic_widths();
        let (mut convs, mut norms, mut input) = (Vec::new(), Vec::new(), self.nc);
        for (i, &width) in widths.iter().enumerate() {
            // main.0; then main.{3i−1} with its batch norm at main.{3i}.
            let index = if i == 0 { 0 } else { 3 * i - 1 };
            let ws = weight(&(&main / index), [width, input]);
            convs.push(Conv2d {
                ws,
                bs: None,
                stride: 2,
                padding: 1,
            });
            if i > 0 {
                norms.push(batch_norm(&(&main / (3 * i)), width));
            }
            input = width;
        }
        let head = match self.variant {
            Variant::Wgan => Head::Sigmoid(weight(&(&main / (3 * widths.len() - 1)), [1, input])),
            Variant::WganGp => Head::Linear(linear(&(path / "linear"), input * KERNEL * KERNEL, 1)),
        };
        Critic {
            convs,
            norms,
            head,
            nc: self.nc,
            image_size: self.image_size,
        }
    }

    /// Both players, each in its own var store of `kind` on `device`, drawn after seeding
    /// torch with `seed`: the generator first, then the critic, as the scripts do.
    pub fn players(
        &self,
        seed: u64,
        kind: Kind,
        device: Device,
    ) -> Result<(Player<Generator>, Player<Critic>)> {
        ensure!(
            matches!(kind, Kind::Float | Kind::Double),
            "DCGAN: the parameters must be f32 or f64, not {kind:?}"
        );
        let store = || {
            let mut store = nn::VarStore::new(device);
            store.set_kind(kind);
            store
        };
        let (g_store, d_store) = (store(), store());
        let (generator, critic) = super::seeded(seed, || {
            let generator = self.generator(&g_store.root());
            (generator, self.critic(&d_store.root()))
        });
        let g_params = FlatParams::new(&g_store).context("DCGAN generator")?;
        let d_params = FlatParams::new(&d_store).context("DCGAN critic")?;
        Ok((
            Player {
                store: g_store,
                net: generator,
                params: g_params,
            },
            Player {
                store: d_store,
                net: critic,
                params: d_params,
            },
        ))
    }
}

/// `weights_init`'s draw for a (transposed) convolution weight `[a, b, 4, 4]`:
/// N(0, 0.02²).
fn weight(path: &nn::Path, [a, b]: [i64; 2]) -> Tensor {
    let init = nn::Init::Randn {
        mean: 0.0,
        stdev: INIT_STD,
    };
    path.var("weight", &[a, b, KERNEL, KERNEL], init)
}

/// `nn.BatchNorm2d(channels)` after `weights_init`: weight from N(1, 0.02²) (drawn before
/// the bias), bias 0, running mean 0 and variance 1; momentum 0.1, eps 1e-5.
fn batch_norm(path: &nn::Path, channels: i64) -> nn::BatchNorm {
    let config = nn::BatchNormConfig {
        ws_init: nn::Init::Randn {
            mean: 1.0,
            stdev: INIT_STD,
        },
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::batch_norm2d(path, channels, config)
}

/// Checks that `x` has the kind and device of the network's weights.
fn check_like(what: &str, x: &Tensor, weight: &Tensor) -> Result<()> {
    ensure!(
        x.kind() == weight.kind() && x.device() == weight.device(),
        "{what}: the input is {:?} on {:?}, the weights {:?} on {:?}",
        x.kind(),
        x.device(),
        weight.kind(),
        weight.device()
    );
    Ok(())
}

/// The DCGAN generator (the scripts' `Generator`).
#[derive(Debug)]
pub struct Generator {
    /// Transposed-convolution weights [in, out, 4, 4]: the first with stride 1 and no
    /// padding (1×1 → 4×4), the others with stride 2 and padding 1 (doubling).
    convs: Vec<Tensor>,
    /// The batch norm after every transposed convolution but the last.
    norms: Vec<nn::BatchNorm>,
    nz: i64,
}

impl Generator {
    /// Images [N, nc, S, S] in (−1, 1) from latent codes z [N, nz] or [N, nz, 1, 1].
    /// `train`: batch norm with batch statistics, updating the running ones (PyTorch's
    /// `train()` mode); otherwise with the running statistics.
    pub fn forward(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        let size = z.size();
        let n = size.first().copied().unwrap_or(0);
        ensure!(
            n >= 1 && (size == [n, self.nz] || size == [n, self.nz, 1, 1]),
            "DCGAN generator: expected z of shape [N, {nz}] or [N, {nz}, 1, 1], got {size:?}",
            nz = self.nz
        );
        check_like("DCGAN generator", z, &self.convs[0])?;
        let mut x = z.reshape([n, self.nz, 1, 1]);
        for (i, ws) in self.convs.iter().enumerate() {
            let (stride, padding) = if i == 0 { (1, 0) } else { (2, 1) };
            x = x.conv_transpose2d(
                ws,
                None::<Tensor>,
                [stride, stride],
                [padding, padding],
                [0, 0],
                1,
                [1, 1],
            );
            x = match self.norms.get(i) {
                Some(norm) => norm.forward_t(&x, train).relu(),
                None => x.tanh(),
            };
        }
        Ok(x)
    }
}

/// The critic's top layer.
#[derive(Debug)]
enum Head {
    /// Conv2d(top, 1, 4, 1, 0, bias=False) on the 4×4 map, then a sigmoid.
    Sigmoid(Tensor),
    /// Linear(16·top, 1) on the flattened map.
    Linear(nn::Linear),
}

/// A DCGAN critic (the scripts' `Discriminator`), one of the two [`Variant`]s.
#[derive(Debug)]
pub struct Critic {
    /// Stride-2, padding-1 convolutions without bias.
    convs: Vec<Conv2d>,
    /// The batch norm after every convolution but the first.
    norms: Vec<nn::BatchNorm>,
    head: Head,
    nc: i64,
    image_size: i64,
}

impl Critic {
    /// The critic's value of each image of x [N, nc, S, S]: [N]. `train` as for
    /// [`Generator::forward`] (the scripts never leave training mode for the critic).
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let size = x.size();
        let (n, s) = (size.first().copied().unwrap_or(0), self.image_size);
        ensure!(
            n >= 1 && size == [n, self.nc, s, s],
            "DCGAN critic: expected images of shape [N, {}, {s}, {s}], got {size:?}",
            self.nc
        );
        check_like("DCGAN critic", x, &self.convs[0].ws)?;
        let mut h = self.convs[0].forward(x);
        for (conv, norm) in self.convs[1..].iter().zip(&self.norms) {
            h = leaky_relu(&h);
            h = norm.forward_t(&conv.forward(&h), train);
        }
        h = leaky_relu(&h);
        let out = match &self.head {
            Head::Sigmoid(ws) => h
                .conv2d(ws, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)
                .sigmoid(),
            Head::Linear(layer) => layer.forward(&h.reshape([n, -1])),
        };
        Ok(out.reshape([n]))
    }
}

/// LeakyReLU with slope 0.2, as PyTorch's (the slope's gradient at 0 too); tch's
/// `leaky_relu` has the fixed slope 0.01.
fn leaky_relu(x: &Tensor) -> Tensor {
    x.where_self(&x.gt(0.0), &(x * SLOPE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std_mean(t: &Tensor) -> (f64, f64) {
        let (std, mean) = t.to_kind(Kind::Double).std_mean(true);
        (std.double_value(&[]), mean.double_value(&[]))
    }

    #[test]
    fn initialisation_follows_weights_init() {
        let dcgan = Dcgan::paper(3, 64, Variant::WganGp).unwrap();
        let (g, d) = dcgan.players(3, Kind::Float, Device::Cpu).unwrap();
        assert_eq!(g.params.numel(), 3_576_704);
        assert_eq!(d.params.numel(), 2_765_569);
        for player in [&g.params, &d.params] {
            let w = player.values();
            for s in &player.layout().segments {
                let (what, values) = (&s.name, s.view(&w));
                match (s.shape.len(), what.as_str()) {
                    (_, "linear.weight") | (_, "linear.bias") => {
                        // PyTorch's default: uniform in ±1/√fan_in (one value for the bias).
                        let bound = 1.0 / (16.0 * 512.0f64).sqrt();
                        let max = values.abs().max().double_value(&[]);
                        let filled = s.shape.len() == 1 || max > 0.99 * bound;
                        assert!(max <= bound && filled, "{what} {max}");
                    }
                    (4, _) => {
                        let (std, mean) = std_mean(&values);
                        assert!((std - 0.02).abs() < 0.002 && mean.abs() < 0.002, "{what}")
                    }
                    (_, name) if name.ends_with(".bias") => {
                        assert_eq!(values.abs().max().double_value(&[]), 0.0, "{what}")
                    }
                    _ => {
                        let (std, mean) = std_mean(&values);
                        assert!((mean - 1.0).abs() < 0.01 && std < 0.04, "{what}")
                    }
                }
            }
        }
        // Running means 0 and variances 1, in name order.
        let state = d.params.state();
        for s in &d.params.state_layout().segments {
            let expected = if s.name.ends_with("running_var") {
                1.0
            } else {
                0.0
            };
            let (std, mean) = std_mean(&s.view(state));
            assert_eq!((std, mean), (0.0, expected), "{}", s.name);
        }
        // The critic is drawn after the generator: its first weights are other draws.
        let (g0, d0) = (g.params.values(), d.params.values());
        assert!(!g0.narrow(0, 0, 48).equal(&d0.narrow(0, 0, 48)));
        // Same seed, same weights.
        let (again, _) = dcgan.players(3, Kind::Float, Device::Cpu).unwrap();
        assert!(again.params.values().equal(&g0));
    }

    #[test]
    fn counts_match_the_variables_at_both_sizes() {
        for (size, variant) in [(32, Variant::Wgan), (64, Variant::WganGp)] {
            let dcgan = Dcgan::new(5, 3, 2, 1, size, variant).unwrap();
            let (g, d) = dcgan.players(0, Kind::Double, Device::Cpu).unwrap();
            assert_eq!(g.params.numel(), dcgan.generator_parameter_count());
            assert_eq!(d.params.numel(), dcgan.critic_parameter_count());
            let z = Tensor::ones([2, 5], (Kind::Double, Device::Cpu));
            let images = g.net.forward(&z, true).unwrap();
            assert_eq!(images.size(), [2, 1, size, size]);
            assert_eq!(d.net.forward(&images, false).unwrap().size(), [2]);
        }
    }

    #[test]
    fn bad_sizes_and_inputs_are_errors() {
        assert!(Dcgan::new(100, 64, 64, 3, 48, Variant::Wgan).is_err());
        assert!(Dcgan::new(0, 64, 64, 3, 64, Variant::Wgan).is_err());
        let dcgan = Dcgan::new(4, 2, 2, 1, 32, Variant::Wgan).unwrap();
        assert!(dcgan.players(0, Kind::Int64, Device::Cpu).is_err());
        let (g, d) = dcgan.players(0, Kind::Float, Device::Cpu).unwrap();
        let f = (Kind::Float, Device::Cpu);
        let err = g.net.forward(&Tensor::zeros([2, 5], f), true).unwrap_err();
        assert!(err.to_string().contains("[N, 4]"), "{err}");
        assert!(g.net.forward(&Tensor::zeros([0, 4], f), true).is_err());
        assert!(g
            .net
            .forward(&Tensor::zeros([2, 4, 2, 1], f), true)
            .is_err());
        let wrong_kind = Tensor::zeros([2, 4], (Kind::Double, Device::Cpu));
        assert!(g.net.forward(&wrong_kind, true).is_err());
        assert!(d
            .net
            .forward(&Tensor::zeros([2, 3, 32, 32], f), true)
            .is_err());
        assert!(d
            .net
            .forward(&Tensor::zeros([2, 1, 64, 64], f), true)
            .is_err());
    }

    #[test]
    fn leaky_relu_has_slope_one_fifth_and_pytorchs_gradient_at_zero() {
        let x = Tensor::from_slice(&[-2.0, 0.0, 3.0]).set_requires_grad(true);
        let y = leaky_relu(&x);
        assert_eq!(Vec::<f64>::try_from(&y).unwrap(), [-0.4, 0.0, 3.0]);
        y.sum(Kind::Double).backward();
        assert_eq!(Vec::<f64>::try_from(x.grad()).unwrap(), [0.2, 0.2, 1.0]);
    }
}
