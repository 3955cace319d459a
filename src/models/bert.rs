//! BERT and RoBERTa encoders for inference (BERTScore's embeddings): Hugging Face
//! transformers' `BertModel` and `RobertaModel` (`models/bert/modeling_bert.py`,
//! `models/roberta/modeling_roberta.py`) without the pooler, read from a checkpoint
//! directory — `config.json` and `model.safetensors` as `save_pretrained` writes them.
//!
//! The embeddings are word + token type (always type 0, as when no `token_type_ids` are
//! given) + position, then LayerNorm; each layer is post-LN: self-attention (a padded
//! batch's pads masked out of the keys), its output projection, LayerNorm of the residual
//! sum, then an erf-GELU MLP and a second residual LayerNorm. Dropout is off (evaluation).
//! RoBERTa differs only in its position ids: `create_position_ids_from_input_ids` numbers
//! the non-pad tokens from padding_idx + 1 and gives pads padding_idx.
//!
//! Weights are read in f32 under transformers' names (`embeddings.word_embeddings.weight`,
//! `encoder.layer.{i}.attention.self.query.weight`, …), bare (`BertModel`) or under
//! `bert.` / `roberta.` (`BertForMaskedLM`, …); heads, the pooler and the `position_ids`
//! buffer are ignored.
use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Which of the two position schemes the checkpoint uses (`model_type` in `config.json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `BertModel`: positions 0, 1, 2, … for every row.
    Bert,
    /// `RobertaModel`: positions from `pad_token_id + 1` over the non-pad tokens.
    Roberta,
}

/// The sizes of an encoder, from `config.json`.
#[derive(Clone, Debug)]
pub struct Config {
    pub layout: Layout,
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub intermediate_size: i64,
    pub max_position_embeddings: i64,
    pub type_vocab_size: i64,
    pub layer_norm_eps: f64,
    pub pad_token_id: i64,
    /// `_name_or_path`: the hub name it was saved from, when recorded.
    pub name_or_path: Option<String>,
}

impl Config {
    /// The longest input, in tokens, that the position embeddings cover (RoBERTa's first
    /// pad_token_id + 1 rows are never used by a token).
    pub fn max_tokens(&self) -> i64 {
        match self.layout {
            Layout::Bert => self.max_position_embeddings,
            Layout::Roberta => self.max_position_embeddings - self.pad_token_id - 1,
        }
    }
}

/// The fields of a BERT/RoBERTa `config.json` read here, with `BertConfig`'s defaults for
/// the optional ones; the rest of the file is ignored.
#[derive(Deserialize)]
struct HfConfig {
    model_type: String,
    vocab_size: i64,
    hidden_size: i64,
    num_hidden_layers: i64,
    num_attention_heads: i64,
    intermediate_size: i64,
    max_position_embeddings: i64,
    #[serde(default = "two")]
    type_vocab_size: i64,
    #[serde(default = "bert_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    pad_token_id: i64,
    #[serde(default = "gelu")]
    hidden_act: String,
    #[serde(default = "absolute")]
    position_embedding_type: String,
    #[serde(rename = "_name_or_path")]
    name_or_path: Option<String>,
}

fn two() -> i64 {
    2
}

fn bert_eps() -> f64 {
    1e-12
}

fn gelu() -> String {
    "gelu".into()
}

fn absolute() -> String {
    "absolute".into()
}

/// Reads `dir/config.json`. Errors, naming the file, for a model type other than `bert` or
/// `roberta`, an activation other than `gelu` (erf), relative position embeddings, or sizes
/// that do not make an encoder.
pub fn read_config(dir: &Path) -> Result<Config> {
    let file = dir.join("config.json");
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("reading the encoder configuration {}", file.display()))?;
    let hf: HfConfig = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a BERT or RoBERTa configuration", file.display()))?;
    let bad = |what: String| anyhow::anyhow!("{}: {what}", file.display());
    let layout = match hf.model_type.as_str() {
        "bert" => Layout::Bert,
        "roberta" => Layout::Roberta,
        other => {
            return Err(bad(format!(
                "model_type is {other:?}; pisa's encoder reads \"bert\" or \"roberta\""
            )))
        }
    };
    ensure!(
        hf.hidden_act == "gelu",
        bad(format!(
            "hidden_act is {:?}; pisa's encoder computes \"gelu\" (erf)",
            hf.hidden_act
        ))
    );
    ensure!(
        hf.position_embedding_type == "absolute",
        bad(format!(
            "position_embedding_type is {:?}; pisa's encoder has absolute positions",
            hf.position_embedding_type
        ))
    );
    let config = Config {
        layout,
        vocab_size: hf.vocab_size,
        hidden_size: hf.hidden_size,
        num_hidden_layers: hf.num_hidden_layers,
        num_attention_heads: hf.num_attention_heads,
        intermediate_size: hf.intermediate_size,
        max_position_embeddings: hf.max_position_embeddings,
        type_vocab_size: hf.type_vocab_size,
        layer_norm_eps: hf.layer_norm_eps,
        pad_token_id: hf.pad_token_id,
        name_or_path: hf.name_or_path,
    };
    let sizes = [
        config.vocab_size,
        config.hidden_size,
        config.num_attention_heads,
        config.intermediate_size,
        config.type_vocab_size,
    ];
    ensure!(
        sizes.iter().all(|&n| n > 0) && config.num_hidden_layers >= 0,
        bad("vocab_size, hidden_size, num_attention_heads, intermediate_size and type_vocab_size must be positive, num_hidden_layers not negative".into())
    );
    ensure!(
        config.hidden_size % config.num_attention_heads == 0,
        bad(format!(
            "hidden_size {} is not a multiple of num_attention_heads {}",
            config.hidden_size, config.num_attention_heads
        ))
    );
    ensure!(
        (0..config.vocab_size).contains(&config.pad_token_id),
        bad(format!(
            "pad_token_id {} is not in the vocabulary",
            config.pad_token_id
        ))
    );
    ensure!(
        config.max_tokens() > 0,
        bad(format!(
            "max_position_embeddings {} leaves no position for a token",
            config.max_position_embeddings
        ))
    );
    Ok(config)
}

/// `nn.Linear`: y = x Wᵀ + b.
struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, Some(&self.bias))
    }
}

/// `nn.LayerNorm` over the last dimension.
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> Tensor {
        let d = self.weight.size()[0];
        x.layer_norm([d], Some(&self.weight), Some(&self.bias), self.eps, true)
    }
}

/// `BertLayer`: attention (`BertSelfAttention` + `BertSelfOutput`), then `BertIntermediate`
/// + `BertOutput`.
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_output: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// A BERT or RoBERTa encoder with its weights on one device.
pub struct Bert {
    config: Config,
    word_embeddings: Tensor,
    position_embeddings: Tensor,
    token_type_embeddings: Tensor,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
}

/// The checkpoint's tensors by name (prefix removed), taken one by one with their shape
/// checked; what is left over is reported.
struct Weights {
    file: PathBuf,
    tensors: HashMap<String, Tensor>,
    device: Device,
    eps: f64,
}

/// Prefixes of the encoder inside a model with a head.
const PREFIXES: [&str; 2] = ["bert.", "roberta."];
/// Buffers some checkpoints save; recomputed here.
const BUFFERS: [&str; 2] = ["embeddings.position_ids", "embeddings.token_type_ids"];

impl Weights {
    fn read(file: PathBuf, device: Device, eps: f64) -> Result<Self> {
        ensure!(
            file.is_file(),
            "{}: no such file (pisa reads a single safetensors file, not .bin weights or a \
             sharded model.safetensors.index.json)",
            file.display()
        );
        let stored = Tensor::read_safetensors(&file)
            .with_context(|| format!("reading the encoder weights {}", file.display()))?;
        let mut tensors = HashMap::new();
        for (key, t) in stored {
            let name = PREFIXES
                .iter()
                .find_map(|p| key.strip_prefix(p))
                .unwrap_or(&key);
            let encoder = name.starts_with("embeddings.") || name.starts_with("encoder.");
            if !encoder || BUFFERS.contains(&name) {
                continue;
            }
            if tensors.insert(name.to_string(), t).is_some() {
                bail!(
                    "{}: {name} is stored twice (bare and under a prefix)",
                    file.display()
                );
            }
        }
        Ok(Self {
            file,
            tensors,
            device,
            eps,
        })
    }

    fn take(&mut self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let file = self.file.display();
        let t = self.tensors.remove(name).with_context(|| {
            format!("{file}: no tensor {name} (shape {shape:?}, bare or under bert./roberta.)")
        })?;
        ensure!(
            t.size() == shape,
            "{file}: {name} has shape {:?}, expected {shape:?} from config.json",
            t.size()
        );
        ensure!(
            t.is_floating_point(),
            "{file}: {name} is {:?}, expected floating point",
            t.kind()
        );
        Ok(t.to_device(self.device).to_kind(Kind::Float))
    }

    fn linear(&mut self, prefix: &str, out: i64, inp: i64) -> Result<Linear> {
        Ok(Linear {
            weight: self.take(&format!("{prefix}.weight"), &[out, inp])?,
            bias: self.take(&format!("{prefix}.bias"), &[out])?,
        })
    }

    fn norm(&mut self, prefix: &str, d: i64) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: self.take(&format!("{prefix}.weight"), &[d])?,
            bias: self.take(&format!("{prefix}.bias"), &[d])?,
            eps: self.eps,
        })
    }

    /// Errors if the file holds encoder tensors the model of config.json has no place for.
    fn finish(self) -> Result<()> {
        let mut left: Vec<_> = self.tensors.into_keys().collect();
        left.sort();
        ensure!(
            left.is_empty(),
            "{}: tensors the model of config.json does not have (more layers than \
             num_hidden_layers?): {}",
            self.file.display(),
            left.join(", ")
        );
        Ok(())
    }
}

impl Bert {
    /// Reads the checkpoint in `dir` (`config.json`, `model.safetensors`) onto `device`:
    /// errors name the file and the missing, unexpected or mis-shaped tensor.
    pub fn load(dir: &Path, device: Device) -> Result<Self> {
        let config = read_config(dir)?;
        let mut w = Weights::read(dir.join("model.safetensors"), device, config.layer_norm_eps)?;
        let (h, ff) = (config.hidden_size, config.intermediate_size);
        let word_embeddings =
            w.take("embeddings.word_embeddings.weight", &[config.vocab_size, h])?;
        let position_embeddings = w.take(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, h],
        )?;
        let token_type_embeddings = w.take(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, h],
        )?;
        let embeddings_norm = w.norm("embeddings.LayerNorm", h)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let p = format!("encoder.layer.{i}");
                Ok(Layer {
                    query: w.linear(&format!("{p}.attention.self.query"), h, h)?,
                    key: w.linear(&format!("{p}.attention.self.key"), h, h)?,
                    value: w.linear(&format!("{p}.attention.self.value"), h, h)?,
                    attention_output: w.linear(&format!("{p}.attention.output.dense"), h, h)?,
                    attention_norm: w.norm(&format!("{p}.attention.output.LayerNorm"), h)?,
                    intermediate: w.linear(&format!("{p}.intermediate.dense"), ff, h)?,
                    output: w.linear(&format!("{p}.output.dense"), h, ff)?,
                    output_norm: w.norm(&format!("{p}.output.LayerNorm"), h)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        w.finish()?;
        Ok(Self {
            config,
            word_embeddings,
            position_embeddings,
            token_type_embeddings,
            embeddings_norm,
            layers,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn device(&self) -> Device {
        self.word_embeddings.device()
    }

    /// The hidden states [B, T, hidden_size] (f32) of layers 0 (the embeddings' output)
    /// through `last_layer`, as `BertModel(input_ids, attention_mask,
    /// output_hidden_states=True).hidden_states[:last_layer + 1]`. `input_ids` [B, T]
    /// int64 on the model's device; `attention_mask` [B, T], 1 for tokens and 0 for pads.
    /// The caller runs it under `no_grad`.
    pub fn hidden_states(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        last_layer: i64,
    ) -> Result<Vec<Tensor>> {
        let mut states = Vec::new();
        let last = self.run(input_ids, attention_mask, last_layer, Some(&mut states))?;
        states.push(last);
        Ok(states)
    }

    /// The hidden states of `layer` alone (`hidden_states(…)[layer]`, without keeping the
    /// layers below it).
    pub fn hidden_state(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        layer: i64,
    ) -> Result<Tensor> {
        self.run(input_ids, attention_mask, layer, None)
    }

    /// The forward pass up to `last_layer`, whose output it returns; the layers below go
    /// into `below` when given.
    fn run(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        last_layer: i64,
        mut below: Option<&mut Vec<Tensor>>,
    ) -> Result<Tensor> {
        self.check(input_ids, attention_mask, last_layer)?;
        let (b, t) = (input_ids.size()[0], input_ids.size()[1]);
        let positions = match self.config.layout {
            Layout::Bert => Tensor::arange(t, (Kind::Int64, self.device())).expand([b, t], false),
            Layout::Roberta => {
                let pad = self.config.pad_token_id;
                let real = input_ids.ne(pad).to_kind(Kind::Int64);
                real.cumsum(1, Kind::Int64) * &real + pad
            }
        };
        let embed = |table: &Tensor, ids: &Tensor| Tensor::embedding(table, ids, -1, false, false);
        let x = embed(&self.word_embeddings, input_ids) + self.token_type_embeddings.get(0);
        let x = x + embed(&self.position_embeddings, &positions);
        let mut x = self.embeddings_norm.forward(&x);
        let keys = attention_mask.ne(0).view([b, 1, 1, t]);
        for layer in &self.layers[..last_layer as usize] {
            let next = self.layer(layer, &x, &keys);
            if let Some(below) = below.as_mut() {
                below.push(x);
            }
            x = next;
        }
        Ok(x)
    }

    fn check(&self, input_ids: &Tensor, attention_mask: &Tensor, last_layer: i64) -> Result<()> {
        let n = self.config.num_hidden_layers;
        ensure!(
            (0..=n).contains(&last_layer),
            "layer {last_layer} is not one of the encoder's 0..={n}"
        );
        let size = input_ids.size();
        ensure!(
            size.len() == 2 && input_ids.kind() == Kind::Int64 && size[0] > 0 && size[1] > 0,
            "input_ids must be a non-empty [B, T] int64 tensor, got {:?} {:?}",
            input_ids.kind(),
            size
        );
        ensure!(
            attention_mask.size() == size,
            "attention_mask has shape {:?}, input_ids {size:?}",
            attention_mask.size()
        );
        ensure!(
            input_ids.device() == self.device() && attention_mask.device() == self.device(),
            "the inputs are on {:?}, the encoder on {:?}",
            input_ids.device(),
            self.device()
        );
        let max = self.config.max_tokens();
        ensure!(
            size[1] <= max,
            "{} tokens, more than the {max} the position embeddings cover",
            size[1]
        );
        let (lo, hi) = (
            input_ids.min().int64_value(&[]),
            input_ids.max().int64_value(&[]),
        );
        ensure!(
            lo >= 0 && hi < self.config.vocab_size,
            "token ids range over {lo}..={hi}, outside the vocabulary 0..{}",
            self.config.vocab_size
        );
        let fewest = attention_mask
            .ne(0)
            .sum_dim_intlist(1, false, Kind::Int64)
            .min();
        ensure!(
            fewest.int64_value(&[]) > 0,
            "a row of attention_mask masks every token"
        );
        Ok(())
    }

    /// One `BertLayer` in evaluation mode.
    fn layer(&self, layer: &Layer, x: &Tensor, keys: &Tensor) -> Tensor {
        let size = x.size();
        let (b, t, h) = (size[0], size[1], size[2]);
        let heads = self.config.num_attention_heads;
        let split = |y: Tensor| y.view([b, t, heads, h / heads]).transpose(1, 2);
        let (q, k, v) = (
            split(layer.query.forward(x)),
            split(layer.key.forward(x)),
            split(layer.value.forward(x)),
        );
        let y =
            Tensor::scaled_dot_product_attention(&q, &k, &v, Some(keys), 0.0, false, None, false);
        let y = y.transpose(1, 2).contiguous().view([b, t, h]);
        let x = layer
            .attention_norm
            .forward(&(layer.attention_output.forward(&y) + x));
        let mlp = layer
            .output
            .forward(&layer.intermediate.forward(&x).gelu("none"));
        layer.output_norm.forward(&(mlp + x))
    }
}
