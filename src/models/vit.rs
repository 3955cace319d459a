//! torchvision's Vision Transformer (`torchvision.models.vit_b_16`, Dosovitskiy et al.,
//! 2021):
//!
//! patches p×p → linear embedding of width D (a conv p×p stride p, `conv_proj`) → a
//! learned class token in front → plus a learned position embedding [1, S, D]
//! (S = patches + 1) → dropout → L encoder blocks → LayerNorm → the class token's
//! features → linear D → classes (`heads.head`). An encoder block is pre-norm:
//! x + dropout(attention(LN₁(x))), then y + MLP(LN₂(y)) with MLP = fc D→M → GELU (exact)
//! → dropout → fc M→D → dropout; LayerNorm eps 1e-6; attention multi-head (H heads)
//! as PyTorch's `nn.MultiheadAttention`: one packed [3D, D] input projection, scaled
//! dot-product attention per head (libtorch's fused kernel), output projection.
//!
//! ViT-B/16 ([`B_16`]: p 16, D 768, L 12, H 12, M 3072): 86,567,656 parameters for
//! 3×224×224 images (S = 197) and 1000 classes; other sizes that are multiples of the
//! patch change S and so the position embedding (torchvision fixes a square size).
//!
//! Parameters are named and ordered as in PyTorch: `class_token`, `conv_proj.*`,
//! `encoder.pos_embedding`, `encoder.layers.encoder_layer_{i}.{ln_1, self_attention,
//! ln_2, mlp}` (`self_attention.in_proj_weight`, `.in_proj_bias`, `.out_proj.*`;
//! `mlp.0.*`, `mlp.3.*`), `encoder.ln.*`, `heads.head.*`. Initialisation as
//! torchvision's: `conv_proj` weight N(0, 1/fan_in) (torchvision truncates at ±2, over
//! 50 standard deviations away: the same), bias 0; class token 0; position embedding
//! N(0, 0.02²); attention input projection Xavier-uniform, output projection PyTorch's
//! default, both biases 0; MLP weights Xavier-uniform, biases N(0, 10⁻¹²); LayerNorm
//! 1 and 0; the head zero (so the logits start at 0 and only the head gets a gradient
//! on the first step). Dropout 0 by default, as torchvision's.
use super::conv::Conv2d;
use anyhow::{ensure, Result};
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

/// The shape of a Vision Transformer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Patch side p.
    pub patch: i64,
    /// Width D of the token embeddings.
    pub hidden: i64,
    /// Encoder blocks L.
    pub layers: i64,
    /// Attention heads H (dividing D).
    pub heads: i64,
    /// Width M of the MLPs' hidden layer.
    pub mlp: i64,
}

/// ViT-B/16.
pub const B_16: Config = Config {
    patch: 16,
    hidden: 768,
    layers: 12,
    heads: 12,
    mlp: 3072,
};

/// The LayerNorms' eps.
const EPS: f64 = 1e-6;

/// A Vision Transformer for `channels`×`height`×`width` images and `classes` classes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VisionTransformer {
    pub config: Config,
    pub channels: i64,
    pub height: i64,
    pub width: i64,
    pub classes: i64,
    /// Dropout after the position embedding, the attention and in the MLPs (training
    /// mode only).
    pub dropout: f64,
    /// Dropout on the attention weights (training mode only).
    pub attention_dropout: f64,
}

impl VisionTransformer {
    /// Checks that the image height and width are multiples of the patch side and that
    /// the heads divide the width; no dropout.
    pub fn new(config: Config, image: [i64; 3], classes: i64) -> Result<Self> {
        let [channels, height, width] = image;
        let p = config.patch;
        ensure!(
            height >= p && width >= p && height % p == 0 && width % p == 0,
            "vision transformer: {height}×{width} images do not split into {p}×{p} patches \
             (height and width must be positive multiples of {p})"
        );
        ensure!(
            config.heads >= 1 && config.hidden % config.heads == 0,
            "vision transformer: {} heads do not divide the width {}",
            config.heads,
            config.hidden
        );
        Ok(Self {
            config,
            channels,
            height,
            width,
            classes,
            dropout: 0.0,
            attention_dropout: 0.0,
        })
    }

    /// The same network with dropout `dropout` (embedding, attention output, MLP) and
    /// `attention` (attention weights).
    pub fn with_dropout(mut self, dropout: f64, attention: f64) -> Self {
        self.dropout = dropout;
        self.attention_dropout = attention;
        self
    }

    /// S: the patches plus the class token.
    pub fn sequence_length(&self) -> i64 {
        let p = self.config.patch;
        (self.height / p) * (self.width / p) + 1
    }

    /// The number of trainable values.
    pub fn parameter_count(&self) -> i64 {
        let Config {
            patch,
            hidden: d,
            layers,
            mlp: m,
            ..
        } = self.config;
        let embedding = d + (self.channels * patch * patch + 1) * d + self.sequence_length() * d;
        let block = 2 * 2 * d + (d + 1) * 3 * d + (d + 1) * d + (d + 1) * m + (m + 1) * d;
        embedding + layers * block + 2 * d + (d + 1) * self.classes
    }

    /// Creates the variables under `path` and returns the network: images [N, C, H, W]
    /// in, logits [N, classes] out.
    pub fn build(&self, path: &nn::Path) -> nn::SequentialT {
        let Config {
            patch,
            hidden: d,
            layers,
            heads,
            mlp: m,
        } = self.config;
        let encoder = &(path / "encoder");
        let class_token = path.zeros("class_token", &[1, 1, d]);
        let fan_in = self.channels * patch * patch;
        let conv = &(path / "conv_proj");
        let conv_proj = Conv2d {
            ws: conv.var(
                "weight",
                &[d, self.channels, patch, patch],
                normal((1.0 / fan_in as f64).sqrt()),
            ),
            bs: Some(conv.zeros("bias", &[d])),
            stride: patch,
            padding: 0,
        };
        let pos_embedding = encoder.var(
            "pos_embedding",
            &[1, self.sequence_length(), d],
            normal(0.02),
        );
        let mut net = nn::seq_t().add(Embedding {
            class_token,
            conv_proj,
            pos_embedding,
            dropout: self.dropout,
        });
        for i in 0..layers {
            let block = &(encoder / "layers" / format!("encoder_layer_{i}"));
            let ln_1 = layer_norm(&(block / "ln_1"), d);
            let attention = &(block / "self_attention");
            let in_proj_weight = attention.var("in_proj_weight", &[3 * d, d], xavier(d, 3 * d));
            let in_proj_bias = attention.zeros("in_proj_bias", &[3 * d]);
            let out_proj = &(attention / "out_proj");
            let bound = 1.0 / (d as f64).sqrt();
            let out_proj = nn::Linear {
                ws: out_proj.var("weight", &[d, d], uniform(bound)),
                bs: Some(out_proj.zeros("bias", &[d])),
            };
            let ln_2 = layer_norm(&(block / "ln_2"), d);
            let mlp = &(block / "mlp");
            net = net.add(EncoderBlock {
                ln_1,
                in_proj_weight,
                in_proj_bias,
                out_proj,
                ln_2,
                fc1: mlp_linear(&(mlp / 0), d, m),
                fc2: mlp_linear(&(mlp / 3), m, d),
                heads,
                dropout: self.dropout,
                attention_dropout: self.attention_dropout,
            });
        }
        let ln = layer_norm(&(encoder / "ln"), d);
        let head = &(path / "heads" / "head");
        let head = nn::Linear {
            ws: head.zeros("weight", &[self.classes, d]),
            bs: Some(head.zeros("bias", &[self.classes])),
        };
        net.add(ln).add_fn(|x| x.select(1, 0)).add(head)
    }
}

fn normal(stdev: f64) -> nn::Init {
    nn::Init::Randn { mean: 0.0, stdev }
}

fn uniform(bound: f64) -> nn::Init {
    nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// Xavier (Glorot) uniform for a [fan_out, fan_in] weight: ±√(6/(fan_in + fan_out)).
fn xavier(fan_in: i64, fan_out: i64) -> nn::Init {
    uniform((6.0 / (fan_in + fan_out) as f64).sqrt())
}

/// LayerNorm over the last dimension, weight 1 then bias 0, eps 1e-6.
fn layer_norm(path: &nn::Path, width: i64) -> nn::LayerNorm {
    let config = nn::LayerNormConfig {
        eps: EPS,
        ..Default::default()
    };
    nn::layer_norm(path, vec![width], config)
}

/// An MLP layer: Xavier-uniform weight, then bias from N(0, 10⁻¹²).
fn mlp_linear(path: &nn::Path, input: i64, output: i64) -> nn::Linear {
    nn::Linear {
        ws: path.var("weight", &[output, input], xavier(input, output)),
        bs: Some(path.var("bias", &[output], normal(1e-6))),
    }
}

/// Images [N, C, H, W] → tokens [N, S, D]: patch embedding, class token in front,
/// position embedding added, dropout.
#[derive(Debug)]
struct Embedding {
    class_token: Tensor,
    conv_proj: Conv2d,
    pos_embedding: Tensor,
    dropout: f64,
}

impl ModuleT for Embedding {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let patches = self.conv_proj.forward(xs).flatten(2, -1).transpose(1, 2);
        let class = self.class_token.expand([xs.size()[0], -1, -1], false);
        (Tensor::cat(&[&class, &patches], 1) + &self.pos_embedding).dropout(self.dropout, train)
    }
}

/// One pre-norm encoder block on tokens [N, S, D].
#[derive(Debug)]
struct EncoderBlock {
    ln_1: nn::LayerNorm,
    /// [3D, D]: the query, key and value projections stacked.
    in_proj_weight: Tensor,
    in_proj_bias: Tensor,
    out_proj: nn::Linear,
    ln_2: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
    heads: i64,
    dropout: f64,
    attention_dropout: f64,
}

impl EncoderBlock {
    /// Multi-head self-attention of tokens [N, S, D].
    fn attention(&self, xs: &Tensor, train: bool) -> Tensor {
        let (n, s, d) = xs.size3().expect("tokens [N, S, D]");
        // [N, S, 3D] → [3, N, H, S, D/H]: q, k, v split by heads.
        let qkv = xs
            .linear(&self.in_proj_weight, Some(&self.in_proj_bias))
            .reshape([n, s, 3, self.heads, d / self.heads])
            .permute([2, 0, 3, 1, 4]);
        let p = if train { self.attention_dropout } else { 0.0 };
        let out = Tensor::scaled_dot_product_attention(
            &qkv.get(0),
            &qkv.get(1),
            &qkv.get(2),
            None::<Tensor>,
            p,
            false,
            None,
            false,
        );
        out.transpose(1, 2).reshape([n, s, d]).apply(&self.out_proj)
    }
}

impl ModuleT for EncoderBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let attended = self.attention(&self.ln_1.forward(xs), train);
        let xs = xs + attended.dropout(self.dropout, train);
        let hidden = self
            .ln_2
            .forward(&xs)
            .apply(&self.fc1)
            .gelu("none")
            .dropout(self.dropout, train)
            .apply(&self.fc2)
            .dropout(self.dropout, train);
        xs + hidden
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::catalog::tests::check;
    use crate::models::FlatParams;
    use tch::{Device, Kind};

    #[test]
    fn published_vit_b_16_in_pytorch_order() {
        let vs = check("vit_b_16", [3, 224, 224], 1000, 86_567_656);
        let flat = FlatParams::new(&vs).unwrap();
        let layout = flat.layout();
        let names = layout.names();
        let block = "encoder.layers.encoder_layer_0";
        let mut expected = vec![
            "class_token".to_string(),
            "conv_proj.weight".into(),
            "conv_proj.bias".into(),
            "encoder.pos_embedding".into(),
        ];
        for name in [
            "ln_1.weight",
            "ln_1.bias",
            "self_attention.in_proj_weight",
            "self_attention.in_proj_bias",
            "self_attention.out_proj.weight",
            "self_attention.out_proj.bias",
            "ln_2.weight",
            "ln_2.bias",
            "mlp.0.weight",
            "mlp.0.bias",
            "mlp.3.weight",
            "mlp.3.bias",
        ] {
            expected.push(format!("{block}.{name}"));
        }
        assert_eq!(names[..16], expected);
        assert_eq!(names[16], "encoder.layers.encoder_layer_1.ln_1.weight");
        let n = names.len();
        assert_eq!(n, 4 + 12 * 12 + 4);
        assert_eq!(
            names[n - 4..],
            [
                "encoder.ln.weight",
                "encoder.ln.bias",
                "heads.head.weight",
                "heads.head.bias"
            ]
        );
        let shapes: Vec<&[i64]> = layout.segments[..7].iter().map(|s| &s.shape[..]).collect();
        assert_eq!(
            shapes,
            [
                &[1, 1, 768][..],
                &[768, 3, 16, 16],
                &[768],
                &[1, 197, 768],
                &[768],
                &[768],
                &[2304, 768]
            ]
        );
        // torchvision's initialisation, spot-checked.
        let v = vs.variables();
        let std = |name: &str| v[name].std(true).double_value(&[]);
        assert!((std("conv_proj.weight") - (1.0f64 / 768.0).sqrt()).abs() < 1e-3);
        assert!((std("encoder.pos_embedding") - 0.02).abs() < 1e-3);
        assert!(std(&format!("{block}.mlp.0.bias")) < 1e-5);
        assert_eq!(
            v["heads.head.weight"]
                .abs()
                .sum(Kind::Float)
                .double_value(&[]),
            0.0
        );
        let bound = (6.0f64 / (768.0 * 4.0)).sqrt();
        let max = v[&format!("{block}.self_attention.in_proj_weight")]
            .abs()
            .max();
        assert!(max.double_value(&[]) <= bound && max.double_value(&[]) > 0.99 * bound);
    }

    #[test]
    fn small_rectangular_vit_with_dropout() {
        let config = Config {
            patch: 4,
            hidden: 16,
            layers: 2,
            heads: 4,
            mlp: 32,
        };
        let vit = VisionTransformer::new(config, [2, 8, 12], 5)
            .unwrap()
            .with_dropout(0.5, 0.5);
        assert_eq!(vit.sequence_length(), 2 * 3 + 1);
        let vs = nn::VarStore::new(Device::Cpu);
        let (net, x) = crate::models::seeded(0, || {
            let net = vit.build(&vs.root());
            // A head that is not zero, so that the logits depend on the input.
            let mut head = vs.variables()["heads.head.weight"].shallow_clone();
            tch::no_grad(|| {
                head.init(nn::Init::Randn {
                    mean: 0.0,
                    stdev: 1.0,
                })
            });
            (
                net,
                Tensor::randn([3, 2, 8, 12], (Kind::Float, Device::Cpu)),
            )
        });
        assert_eq!(FlatParams::new(&vs).unwrap().numel(), vit.parameter_count());
        let eval = net.forward_t(&x, false);
        assert_eq!(eval.size(), [3, 5]);
        assert!(eval.equal(&net.forward_t(&x, false)));
        let train = crate::models::seeded(1, || net.forward_t(&x, true));
        assert!(!eval.allclose(&train, 1e-4, 1e-4, false));
        // Gradients reach the patch embedding.
        crate::models::seeded(2, || net.forward_t(&x, true))
            .sum(Kind::Float)
            .backward();
        let g = vs.variables()["conv_proj.weight"].grad();
        assert!(g.abs().sum(Kind::Float).double_value(&[]) > 0.0);
        let e = VisionTransformer::new(Config { heads: 3, ..config }, [2, 8, 12], 5);
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("3 heads do not divide the width 16"));
    }
}
