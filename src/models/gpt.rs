//! GPT-2 language models for Section 5.3 of the paper, in two layouts ([`Style`]):
//!
//! - [`Style::Modded`]: the GPT of the official PISA Nano script, Tracy-Wang7/PISA,
//!   GPT2_new_version/NanoGPT/train_gpt_sisa_lower_memory.py (the modded-nanogpt model of
//!   its time; classes `GPT`, `Block`, `CausalSelfAttention`, `MLP`, `Rotary`,
//!   `apply_rotary_emb`). Token embedding only (no position embedding); each block is
//!   `x + attn(rms(x))`, `x + mlp(rms(x))` with `F.rms_norm` without weight (no parameters,
//!   eps the dtype's machine epsilon); attention has separate bias-free `c_q`, `c_k`, `c_v`
//!   projections, RMS-norms q and k per head, then applies rotary embeddings (base 10,000,
//!   half-split: y₁ = x₁cos + x₂sin, y₂ = −x₁sin + x₂cos, with the cos/sin tables rounded
//!   to bfloat16 as `Rotary` caches them); the MLP is `c_fc` → ReLU² → `c_proj`; both output
//!   projections start at zero; a final `F.rms_norm`, and the logits are `x·wteᵀ` (lm_head
//!   tied to wte, no soft-cap, no residual scaling). Initialisation is PyTorch's default for
//!   `nn.Linear`, U(±1/√fan_in), for every weight, the tied one included (the script
//!   assigns `lm_head.weight` to `wte.weight`, so the embedding's own N(0, 1) draw is
//!   discarded), the two `c_proj` zeroed. No dropout. The script's loss ignores target −1;
//!   [`Gpt::loss`] ignores −100 (the fine-tuning task's padding).
//! - [`Style::Classic`]: GPT-2 as nanoGPT's model.py and Hugging Face's `GPT2LMHeadModel`
//!   build it: learned position embedding `wpe`, pre-LayerNorm blocks (`ln_1`, attention
//!   with a packed `c_attn` and `c_proj`, both with biases, `ln_2`, MLP `c_fc` → GELU (tanh
//!   approximation, HF's "gelu_new") → `c_proj`), `ln_f`, lm_head tied to `wte`;
//!   LayerNorm eps 1e-5. nanoGPT's `GPT._init_weights`: N(0, 0.02²) for linear weights and
//!   embeddings, the `c_proj` weights N(0, (0.02/√(2·n_layer))²), biases 0, LayerNorm 1 and
//!   0. One dropout rate, as nanoGPT's, on the embedding sum, the attention weights and
//!   each residual branch, in training passes only.
//!
//! Variables are all trainable and created in the order of PyTorch's `named_parameters()`
//! (so [`crate::models::FlatParams`] lays them out as PyTorch would), under the reference's
//! names: `transformer.wte.weight` (the one tied variable), then for Modded
//! `transformer.h.{i}.attn.{c_q,c_k,c_v,c_proj}.weight`, `transformer.h.{i}.mlp.{c_fc,c_proj}.weight`;
//! for Classic Hugging Face's `transformer.wpe.weight`, `transformer.h.{i}.ln_1.{weight,bias}`,
//! `….attn.c_attn.{weight,bias}`, … `transformer.ln_f.{weight,bias}`, the linear weights in
//! torch's [out, in] orientation (HF's `Conv1D` stores [in, out]; `gpt_weights` transposes).
//! Attention is libtorch's `scaled_dot_product_attention` with `is_causal`, scale 1/√head_dim;
//! [`Gpt::forward_masked`] adds Hugging Face's padding mask (`attention_mask`), and
//! [`Gpt::forward_cached`] forwards new tokens after those a [`KvCache`] holds (generation,
//! `models::generate`).
//!
//! scripts/golden_gpt.py writes the goldens tests/gpt_golden.rs checks this module against.
use super::kv_cache::KvCache;
use anyhow::{bail, ensure, Result};
use std::collections::HashMap;
use tch::nn::{self, Init};
use tch::{Device, Kind, Reduction, Tensor};

/// Next-token targets [B, T] from Hugging Face `labels` [B, T] (int64), as its causal-LM
/// loss shifts them (`ForCausalLMLoss`): position t's target is `labels[t + 1]`, the last
/// position's −100 (ignored). T ≥ 1.
pub fn shift_labels(labels: &Tensor) -> Tensor {
    let t = labels.size()[1];
    let ignored = Tensor::full([labels.size()[0], 1], -100, (Kind::Int64, labels.device()));
    Tensor::cat(&[labels.narrow(1, 1, t - 1), ignored], 1)
}

/// Which reference the model follows (the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Modded,
    Classic,
}

/// The model's sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub style: Style,
    pub n_layer: i64,
    pub n_head: i64,
    pub n_embd: i64,
    /// The longest sequence: `wpe`'s rows for Classic; a limit only for Modded (rotary).
    pub block_size: i64,
    pub vocab_size: i64,
    /// Classic's dropout rate (embedding, attention, residual branches); Modded has none.
    pub dropout: f64,
}

/// Classic's LayerNorm eps (HF `layer_norm_epsilon`, nanoGPT's `F.layer_norm` default).
pub const LAYER_NORM_EPS: f64 = 1e-5;

impl Config {
    pub const PRESETS: &'static [&'static str] =
        &["gpt2_nano", "gpt2_small", "gpt2_medium", "gpt2_xl"];

    /// Named presets: "gpt2_nano" (Modded 12 layers, 6 heads, width 768, block 1024,
    /// vocabulary 50,304 — the script's `GPTConfig(vocab_size=50304, n_layer=12, n_head=6,
    /// n_embd=768)`), and the published GPT-2 sizes as Classic with block 1024 and vocabulary
    /// 50,257: "gpt2_small" (12/12/768), "gpt2_medium" (24/16/1024), "gpt2_xl" (48/25/1600).
    /// Dropout 0 (the pretraining set-ups').
    pub fn preset(name: &str) -> Option<Config> {
        let (style, n_layer, n_head, n_embd, vocab_size) = match name {
            "gpt2_nano" => (Style::Modded, 12, 6, 768, 50_304),
            "gpt2_small" => (Style::Classic, 12, 12, 768, 50_257),
            "gpt2_medium" => (Style::Classic, 24, 16, 1024, 50_257),
            "gpt2_xl" => (Style::Classic, 48, 25, 1600, 50_257),
            _ => return None,
        };
        Some(Config {
            style,
            n_layer,
            n_head,
            n_embd,
            block_size: 1024,
            vocab_size,
            dropout: 0.0,
        })
    }

    /// Trainable parameters, the tied embedding counted once, in closed form (d = n_embd,
    /// L = n_layer, V = vocab_size, T = block_size):
    /// Modded V·d + L·12d² (q, k, v, attention output: 4d²; MLP: 8d²);
    /// Classic V·d + T·d + L·(12d² + 13d) + 2d (biases 3d + d + 4d + d, two LayerNorms 4d, `ln_f`).
    pub fn parameters(&self) -> i64 {
        let (d, l, v) = (self.n_embd, self.n_layer, self.vocab_size);
        match self.style {
            Style::Modded => v * d + l * 12 * d * d,
            Style::Classic => v * d + self.block_size * d + l * (12 * d * d + 13 * d) + 2 * d,
        }
    }

    /// Checks the sizes: all positive, `n_embd` a multiple of `n_head`, an even head
    /// dimension for Modded's rotary embedding, dropout in [0, 1) and 0 for Modded.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_embd", self.n_embd),
            ("block_size", self.block_size),
            ("vocab_size", self.vocab_size),
        ] {
            if value < 1 {
                return Err(format!("GPT: {name} must be positive, got {value}"));
            }
        }
        if self.n_embd % self.n_head != 0 {
            return Err(format!(
                "GPT: n_embd {} is not a multiple of n_head {}",
                self.n_embd, self.n_head
            ));
        }
        if self.style == Style::Modded && self.head_dim() % 2 != 0 {
            return Err(format!(
                "GPT: the modded layout's rotary embedding needs an even head dimension, \
                 got n_embd / n_head = {}",
                self.head_dim()
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!(
                "GPT: dropout must be in [0, 1), got {}",
                self.dropout
            ));
        }
        if self.style == Style::Modded && self.dropout != 0.0 {
            return Err(format!(
                "GPT: the modded layout has no dropout, got {}",
                self.dropout
            ));
        }
        Ok(())
    }

    fn head_dim(&self) -> i64 {
        self.n_embd / self.n_head
    }
}

/// `x·Wᵀ + b`, W [out, in].
#[derive(Debug)]
struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, self.bias.as_ref())
    }
}

/// The normalisation before each sub-layer and at the end.
#[derive(Debug)]
enum Norm {
    /// `F.rms_norm(x, (d,))`: no weight, eps the dtype's epsilon.
    Rms,
    /// `nn.LayerNorm(d, eps=1e-5)`.
    Layer { weight: Tensor, bias: Tensor },
}

impl Norm {
    fn forward(&self, x: &Tensor) -> Tensor {
        let d = *x.size().last().expect("a normalised tensor has dimensions");
        match self {
            Norm::Rms => x.rms_norm([d], None::<Tensor>, None),
            Norm::Layer { weight, bias } => {
                x.layer_norm([d], Some(weight), Some(bias), LAYER_NORM_EPS, true)
            }
        }
    }
}

/// The attention's input projections.
#[derive(Debug)]
enum Qkv {
    /// Modded: `c_q`, `c_k`, `c_v`, each [d, d], no bias.
    Separate { q: Linear, k: Linear, v: Linear },
    /// Classic: `c_attn` [3d, d] with bias; its output splits into q, k, v.
    Packed(Linear),
}

/// The rotary tables of `Rotary.forward` for T positions from `start`: cos and sin
/// [1, T, 1, head_dim/2] of t·base^(−2j/head_dim), t = start..start+T, computed in f32 and kept
/// in bfloat16 as the script caches them (`freqs.cos().bfloat16()`): the rows of the script's
/// table for start + T positions, each row computed alone. Products with them promote to the
/// activations' kind.
#[derive(Debug)]
struct Rotary {
    cos: Tensor,
    sin: Tensor,
    neg_sin: Tensor,
}

/// `Rotary`'s base.
const ROTARY_BASE: i64 = 10_000;

impl Rotary {
    fn new(start: i64, t: i64, head_dim: i64, device: Device) -> Self {
        let exponent = Tensor::arange_start_step(0, head_dim, 2, (Kind::Int64, device))
            .to_kind(Kind::Float)
            / head_dim as f64;
        let inv_freq = Tensor::pow_scalar(ROTARY_BASE, &exponent).reciprocal();
        let positions =
            Tensor::arange_start(start, start + t, (Kind::Int64, device)).to_kind(Kind::Float);
        let freqs = positions.outer(&inv_freq);
        let table = |x: Tensor| x.to_kind(Kind::BFloat16).view([1, t, 1, head_dim / 2]);
        let sin = table(freqs.sin());
        Rotary {
            cos: table(freqs.cos()),
            neg_sin: -&sin,
            sin,
        }
    }

    /// `apply_rotary_emb` on x [B, T, heads, head_dim]: halves x₁, x₂ of the last dimension,
    /// [x₁cos + x₂sin, x₁(−sin) + x₂cos], in x's kind.
    fn apply(&self, x: &Tensor) -> Tensor {
        let half = x.size()[3] / 2;
        let (x1, x2) = (x.narrow(3, 0, half), x.narrow(3, half, half));
        let y1 = &x1 * &self.cos + &x2 * &self.sin;
        let y2 = &x1 * &self.neg_sin + &x2 * &self.cos;
        Tensor::cat(&[y1, y2], 3).to_kind(x.kind())
    }
}

/// One transformer block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
#[derive(Debug)]
struct Block {
    ln_1: Norm,
    qkv: Qkv,
    attn_proj: Linear,
    ln_2: Norm,
    fc: Linear,
    mlp_proj: Linear,
}

/// Which keys each query of a pass attends to.
enum Visible {
    /// Keys up to its own position (`is_causal`): a pass over whole sequences.
    Causal,
    /// Every key: one new token after the cached ones.
    All,
    /// A boolean mask [B or 1, 1, T, keys], true where the query attends.
    Mask(Tensor),
}

/// What every block's forward pass shares.
struct Pass<'a> {
    config: &'a Config,
    /// Position of the first token: the KV cache's length, else 0.
    start: i64,
    /// Modded only: QK RMS-norm and rotary embedding.
    rotary: Option<Rotary>,
    visible: Visible,
    train: bool,
}

impl Pass<'_> {
    fn dropout(&self, x: Tensor) -> Tensor {
        if self.train && self.config.dropout > 0.0 {
            x.dropout(self.config.dropout, true)
        } else {
            x
        }
    }
}

impl Block {
    /// `kv`: this layer's cache buffers (keys, values), which receive the pass's keys and
    /// values at positions `pass.start..` and give attention every key up to them.
    fn forward(&self, x: &Tensor, pass: &Pass, kv: Option<(&Tensor, &Tensor)>) -> Tensor {
        let x = x + self.attention(&self.ln_1.forward(x), pass, kv);
        &x + self.mlp(&self.ln_2.forward(&x), pass)
    }

    /// `CausalSelfAttention.forward` of the script (Modded) or nanoGPT/HF (Classic).
    fn attention(&self, x: &Tensor, pass: &Pass, kv: Option<(&Tensor, &Tensor)>) -> Tensor {
        let [b, t, c] = x.size()[..] else {
            unreachable!("the residual stream is [B, T, C]")
        };
        let (n_head, head_dim) = (pass.config.n_head, pass.config.head_dim());
        let heads = |y: Tensor| y.view([b, t, n_head, head_dim]);
        let (q, k, v) = match &self.qkv {
            Qkv::Separate { q, k, v } => (q.forward(x), k.forward(x), v.forward(x)),
            Qkv::Packed(c_attn) => {
                let mut qkv = c_attn.forward(x).split(c, 2).into_iter();
                let mut next = || qkv.next().expect("c_attn gives q, k and v");
                (next(), next(), next())
            }
        };
        let (mut q, mut k, v) = (heads(q), heads(k), heads(v));
        if let Some(rotary) = &pass.rotary {
            let norm = |y: &Tensor| y.rms_norm([head_dim], None::<Tensor>, None);
            q = rotary.apply(&norm(&q));
            k = rotary.apply(&norm(&k));
        }
        let (q, mut k, mut v) = (q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2));
        if let Some((keys, values)) = kv {
            let keys_until = pass.start + t;
            keys.narrow(2, pass.start, t).copy_(&k);
            values.narrow(2, pass.start, t).copy_(&v);
            k = keys.narrow(2, 0, keys_until);
            v = values.narrow(2, 0, keys_until);
        }
        let dropout_p = if pass.train { pass.config.dropout } else { 0.0 };
        let (mask, is_causal) = match &pass.visible {
            Visible::Causal => (None, true),
            Visible::All => (None, false),
            Visible::Mask(mask) => (Some(mask), false),
        };
        let y = Tensor::scaled_dot_product_attention(
            &q, &k, &v, mask, dropout_p, is_causal, None, false,
        );
        let y = y.transpose(1, 2).contiguous().view([b, t, c]);
        pass.dropout(self.attn_proj.forward(&y))
    }

    /// `MLP.forward`: ReLU² (Modded) or GELU tanh (Classic) between `c_fc` and `c_proj`.
    fn mlp(&self, x: &Tensor, pass: &Pass) -> Tensor {
        let h = self.fc.forward(x);
        let h = match pass.config.style {
            Style::Modded => h.relu().square(),
            Style::Classic => h.gelu("tanh"),
        };
        pass.dropout(self.mlp_proj.forward(&h))
    }
}

/// Creates variables under dotted names (`transformer.h.0.ln_1.weight`) and keeps them, in
/// creation order, with those names.
struct Builder<'a, 'p> {
    root: &'a nn::Path<'p>,
    params: Vec<(String, Tensor)>,
}

impl Builder<'_, '_> {
    fn var(&mut self, name: &str, dims: &[i64], init: Init) -> Tensor {
        let (prefix, leaf) = name.rsplit_once('.').unwrap_or(("", name));
        let path = prefix
            .split('.')
            .filter(|s| !s.is_empty())
            .fold(self.root.clone(), |p, s| p / s);
        let t = path.var(leaf, dims, init);
        self.params.push((name.to_owned(), t.shallow_clone()));
        t
    }

    /// `{name}.weight` [output, input], then `{name}.bias` (zeros) when asked for.
    fn linear(&mut self, name: &str, input: i64, output: i64, init: Init, bias: bool) -> Linear {
        let weight = self.var(&format!("{name}.weight"), &[output, input], init);
        let bias = bias.then(|| self.var(&format!("{name}.bias"), &[output], Init::Const(0.0)));
        Linear { weight, bias }
    }

    fn norm(&mut self, name: &str, style: Style, d: i64) -> Norm {
        match style {
            Style::Modded => Norm::Rms,
            Style::Classic => Norm::Layer {
                weight: self.var(&format!("{name}.weight"), &[d], Init::Const(1.0)),
                bias: self.var(&format!("{name}.bias"), &[d], Init::Const(0.0)),
            },
        }
    }
}

/// The GPT model (the module doc).
#[derive(Debug)]
pub struct Gpt {
    config: Config,
    /// [V, d]: the token embedding and the lm_head weight.
    wte: Tensor,
    /// Classic: [block_size, d].
    wpe: Option<Tensor>,
    blocks: Vec<Block>,
    ln_f: Norm,
    /// Every variable with its name, in creation (`named_parameters()`) order.
    params: Vec<(String, Tensor)>,
}

impl Gpt {
    /// Builds under `path` with the layout's initialisation (seeded by the caller via torch's
    /// manual_seed). Panics if `config.validate()` fails: callers validate first.
    pub fn new(path: &nn::Path, config: &Config) -> Gpt {
        if let Err(e) = config.validate() {
            panic!("{e}");
        }
        let (d, style) = (config.n_embd, config.style);
        let normal = |stdev: f64| Init::Randn { mean: 0.0, stdev };
        // nn.Linear's default (kaiming_uniform_ with a = √5): U(±1/√fan_in).
        let uniform = |fan_in: i64| {
            let bound = 1.0 / (fan_in as f64).sqrt();
            Init::Uniform {
                lo: -bound,
                up: bound,
            }
        };
        let (embedding, weight, projection) = match style {
            Style::Modded => (uniform(d), uniform(d), Init::Const(0.0)),
            Style::Classic => (
                normal(0.02),
                normal(0.02),
                normal(0.02 / (2.0 * config.n_layer as f64).sqrt()),
            ),
        };
        let bias = style == Style::Classic;
        let mut b = Builder {
            root: path,
            params: Vec::new(),
        };
        let wte = b.var("transformer.wte.weight", &[config.vocab_size, d], embedding);
        let wpe = bias.then(|| {
            b.var(
                "transformer.wpe.weight",
                &[config.block_size, d],
                normal(0.02),
            )
        });
        let blocks = (0..config.n_layer)
            .map(|i| {
                let h = format!("transformer.h.{i}");
                let ln_1 = b.norm(&format!("{h}.ln_1"), style, d);
                let qkv = match style {
                    Style::Modded => Qkv::Separate {
                        q: b.linear(&format!("{h}.attn.c_q"), d, d, weight, false),
                        k: b.linear(&format!("{h}.attn.c_k"), d, d, weight, false),
                        v: b.linear(&format!("{h}.attn.c_v"), d, d, weight, false),
                    },
                    Style::Classic => {
                        Qkv::Packed(b.linear(&format!("{h}.attn.c_attn"), d, 3 * d, weight, true))
                    }
                };
                let attn_proj = b.linear(&format!("{h}.attn.c_proj"), d, d, projection, bias);
                let ln_2 = b.norm(&format!("{h}.ln_2"), style, d);
                let fc = b.linear(&format!("{h}.mlp.c_fc"), d, 4 * d, weight, bias);
                let mlp_proj = b.linear(&format!("{h}.mlp.c_proj"), 4 * d, d, projection, bias);
                Block {
                    ln_1,
                    qkv,
                    attn_proj,
                    ln_2,
                    fc,
                    mlp_proj,
                }
            })
            .collect();
        let ln_f = b.norm("transformer.ln_f", style, d);
        Gpt {
            config: config.clone(),
            wte,
            wpe,
            blocks,
            ln_f,
            params: b.params,
        }
    }

    /// Logits [B, T, vocab_size] for token ids `idx` [B, T] (int64), T ≤ block_size; in f32
    /// when computed in half precision (autocast; the script's `logits.float()`), else in the
    /// parameters' kind. `train` turns Classic's dropout on. Panics on another shape.
    pub fn forward(&self, idx: &Tensor, train: bool) -> Tensor {
        self.forward_masked(idx, None, train)
    }

    /// [`Gpt::forward`] with an optional padding mask `attention_mask` [B, T] (any kind;
    /// nonzero marks a real token, 0 a pad), as Hugging Face's `GPT2Model.forward(input_ids,
    /// attention_mask=…)` without `position_ids`: a query attends to the keys at or before it
    /// that are not pads (pads are masked on top of the causal mask, so a right-padded pad
    /// position sees only the real tokens before it, not itself), and positions stay 0..T−1
    /// whatever the padding (HF's `arange` when no position ids are given; Modded's rotary
    /// likewise). A query that sees no key (a sequence starting with a pad) is outside what
    /// the reference's right padding produces; libtorch's attention gives it a zero output
    /// on the CPU. Panics on a mask of another shape than `idx`'s.
    pub fn forward_masked(
        &self,
        idx: &Tensor,
        attention_mask: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let size = idx.size();
        let [_, t] = size[..] else {
            panic!("GPT: token ids must be [B, T], got {size:?}")
        };
        assert!(
            t <= self.config.block_size,
            "GPT: sequence length {t} exceeds block_size {}",
            self.config.block_size
        );
        let visible = match attention_mask {
            None => Visible::Causal,
            Some(mask) => {
                assert_eq!(
                    mask.size(),
                    size,
                    "GPT: the attention mask must have the token ids' shape [B, T]"
                );
                let device = self.device();
                let causal = Tensor::ones([t, t], (Kind::Bool, device)).tril(0);
                let real_keys = mask.ne(0).to_device(device).view([size[0], 1, 1, t]);
                Visible::Mask(real_keys.logical_and(&causal.view([1, 1, t, t])))
            }
        };
        self.run(idx, 0, visible, None, train)
    }

    /// Logits [B, t, vocab_size] for the next tokens `idx` [B, t] of the sequences whose
    /// keys and values `cache` holds (B = its batch), at positions `cache.len()..`: Classic's
    /// `wpe` rows and Modded's rotary rows from there, attention to every cached key and,
    /// causally, the new ones — Hugging Face's `GPT2LMHeadModel(input_ids,
    /// past_key_values=…)`. The new keys and values are written into `cache`, which then
    /// counts them. An evaluation pass (no dropout); call it under `tch::no_grad`. Token ids
    /// must lie in 0..vocab_size. Errors for another shape, batch or dimension, no tokens,
    /// or more tokens than the cache has room for.
    pub fn forward_cached(&self, idx: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        let size = idx.size();
        let [b, t] = size[..] else {
            bail!("GPT: token ids must be [B, T], got {size:?}")
        };
        ensure!(
            b == cache.batch(),
            "GPT: {b} sequences for a KV cache of batch {}",
            cache.batch()
        );
        ensure!(t >= 1, "GPT: no tokens to forward");
        ensure!(
            cache.len() + t <= cache.capacity(),
            "GPT: {t} tokens after {} cached exceed the KV cache's capacity {}",
            cache.len(),
            cache.capacity()
        );
        let dims = (
            cache.keys[0].size(),
            self.config.n_head,
            self.config.head_dim(),
        );
        ensure!(
            cache.keys.len() == self.blocks.len() && dims.0[1] == dims.1 && dims.0[3] == dims.2,
            "GPT: the KV cache was made for another model"
        );
        let start = cache.len();
        let visible = match (start, t) {
            (_, 1) => Visible::All,
            (0, _) => Visible::Causal,
            _ => {
                // Query i (position start + i) sees keys 0..=start + i.
                let device = self.device();
                let keys = Tensor::arange(start + t, (Kind::Int64, device)).view([1, -1]);
                let queries = Tensor::arange_start(start, start + t, (Kind::Int64, device));
                Visible::Mask(keys.le_tensor(&queries.view([-1, 1])).view([1, 1, t, -1]))
            }
        };
        let logits = self.run(idx, start, visible, Some(cache), false);
        cache.advance(t);
        Ok(logits)
    }

    /// The forward pass from position `start`, with a KV cache or without.
    fn run(
        &self,
        idx: &Tensor,
        start: i64,
        visible: Visible,
        cache: Option<&KvCache>,
        train: bool,
    ) -> Tensor {
        let t = idx.size()[1];
        let device = self.device();
        let pass = Pass {
            config: &self.config,
            start,
            rotary: (self.config.style == Style::Modded)
                .then(|| Rotary::new(start, t, self.config.head_dim(), device)),
            visible,
            train,
        };
        let mut x = Tensor::embedding(&self.wte, idx, -1, false, false);
        if let Some(wpe) = &self.wpe {
            let positions = Tensor::arange_start(start, start + t, (Kind::Int64, device));
            x = pass.dropout(x + Tensor::embedding(wpe, &positions, -1, false, false));
        }
        for (i, block) in self.blocks.iter().enumerate() {
            let kv = cache.map(|c| (&c.keys[i], &c.values[i]));
            x = block.forward(&x, &pass, kv);
        }
        let logits = self.ln_f.forward(&x).linear(&self.wte, None::<Tensor>);
        match logits.kind() {
            Kind::Half | Kind::BFloat16 => logits.to_kind(Kind::Float),
            _ => logits,
        }
    }

    /// Mean next-token cross-entropy of `forward(idx)` against `targets` [B, T] (int64),
    /// ignoring targets equal to −100 (Hugging Face's ignore_index). NaN when every target
    /// is ignored, as torch's mean over no terms.
    pub fn loss(&self, idx: &Tensor, targets: &Tensor, train: bool) -> Tensor {
        self.loss_masked(idx, targets, None, train)
    }

    /// [`Gpt::loss`] of [`Gpt::forward_masked`]: with `targets = shift_labels(labels)` it is
    /// Hugging Face's `GPT2LMHeadModel(input_ids, attention_mask=…, labels=labels).loss`
    /// (the mean over every label but −100, pads included when they are labels, as the PISA
    /// recipes script trains with labels = input_ids).
    pub fn loss_masked(
        &self,
        idx: &Tensor,
        targets: &Tensor,
        attention_mask: Option<&Tensor>,
        train: bool,
    ) -> Tensor {
        let logits = self.forward_masked(idx, attention_mask, train);
        logits
            .reshape([-1, self.config.vocab_size])
            .cross_entropy_loss::<Tensor>(&targets.reshape([-1]), None, Reduction::Mean, -100, 0.0)
    }

    /// The parameters' kind.
    pub fn kind(&self) -> Kind {
        self.wte.kind()
    }

    /// The parameters' device.
    pub fn device(&self) -> Device {
        self.wte.device()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Every variable with its name (relative to the path `new` was given), in the order of
    /// PyTorch's `named_parameters()`.
    pub fn named_parameters(&self) -> &[(String, Tensor)] {
        &self.params
    }

    /// Copies `tensors` into the model's variables by name (values converted to the
    /// variables' kind and device; in place, so a `FlatParams` buffer sees them). Every
    /// variable must be given exactly once with its shape, and no other name.
    pub fn load(&self, tensors: &[(String, Tensor)]) -> Result<()> {
        let mut given: HashMap<&str, &Tensor> = HashMap::new();
        for (name, t) in tensors {
            ensure!(
                given.insert(name.as_str(), t).is_none(),
                "GPT weights: {name} given twice"
            );
        }
        let mut pairs = Vec::with_capacity(self.params.len());
        for (name, var) in &self.params {
            let Some(t) = given.remove(name.as_str()) else {
                bail!("GPT weights: no {name} (expected shape {:?})", var.size());
            };
            ensure!(
                t.size() == var.size(),
                "GPT weights: {name} has shape {:?}, the model's is {:?}",
                t.size(),
                var.size()
            );
            pairs.push((var, t));
        }
        if let Some(name) = given.keys().min() {
            bail!(
                "GPT weights: unexpected {name}: not a parameter of this {:?} model",
                self.config.style
            );
        }
        tch::no_grad(|| {
            for (var, t) in pairs {
                var.shallow_clone().copy_(t);
            }
        });
        Ok(())
    }
}
