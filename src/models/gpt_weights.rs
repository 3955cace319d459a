//! Hugging Face GPT-2 checkpoints (`GPT2LMHeadModel.save_pretrained` with safetensors) into
//! a [`Gpt`] of the Classic layout: `config.json` gives the [`Config`], `model.safetensors`
//! the weights.
//!
//! Keys may carry the `transformer.` prefix (`GPT2LMHeadModel`) or not (`GPT2Model`); the
//! attention's `attn.bias` / `attn.masked_bias` buffers of older checkpoints are skipped;
//! `lm_head.weight`, when saved, must equal `wte.weight` (the model ties them). HF's
//! `Conv1D` weights (`attn.c_attn`, `attn.c_proj`, `mlp.c_fc`, `mlp.c_proj`) are stored
//! [in, out] and transposed to torch's [out, in].
use super::gpt::{Config, Gpt, Style, LAYER_NORM_EPS};
use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;
use std::path::Path;
use tch::{nn, Tensor};

/// The fields of a GPT-2 `config.json` that shape the model, with `GPT2Config`'s defaults
/// for the optional ones; the rest of the file is ignored.
#[derive(Debug, Deserialize)]
struct HfConfig {
    model_type: Option<String>,
    n_layer: i64,
    n_head: i64,
    n_embd: i64,
    n_positions: i64,
    vocab_size: i64,
    #[serde(default = "gelu_new")]
    activation_function: String,
    #[serde(default = "layer_norm_eps")]
    layer_norm_epsilon: f64,
    n_inner: Option<i64>,
    #[serde(default = "hf_dropout")]
    resid_pdrop: f64,
    #[serde(default = "hf_dropout")]
    embd_pdrop: f64,
    #[serde(default = "hf_dropout")]
    attn_pdrop: f64,
    #[serde(default = "yes")]
    scale_attn_weights: bool,
    #[serde(default)]
    scale_attn_by_inverse_layer_idx: bool,
    #[serde(default = "yes")]
    tie_word_embeddings: bool,
}

fn gelu_new() -> String {
    "gelu_new".into()
}

fn layer_norm_eps() -> f64 {
    LAYER_NORM_EPS
}

fn hf_dropout() -> f64 {
    0.1
}

fn yes() -> bool {
    true
}

/// Reads `dir/config.json` as a Classic [`Config`] (block_size = n_positions, dropout the
/// common value of resid/embd/attn_pdrop). Errors, naming the file, for anything pisa's
/// Classic GPT does not compute: another model type or activation, a layer-norm eps other
/// than 1e-5, an MLP width other than 4·n_embd, unscaled or layer-scaled attention, untied
/// embeddings, unequal dropout rates, or sizes `Config::validate` rejects.
pub fn read_config(dir: &Path) -> Result<Config> {
    let file = dir.join("config.json");
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("reading the GPT-2 configuration {}", file.display()))?;
    let hf: HfConfig = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a GPT-2 configuration", file.display()))?;
    let bad = |what: String| anyhow::anyhow!("{}: {what}", file.display());
    if let Some(model_type) = &hf.model_type {
        ensure!(
            model_type == "gpt2",
            bad(format!("model_type is {model_type:?}, expected \"gpt2\""))
        );
    }
    ensure!(
        hf.activation_function == "gelu_new",
        bad(format!(
            "activation_function is {:?}; pisa's GPT-2 computes \"gelu_new\" (GELU, tanh approximation)",
            hf.activation_function
        ))
    );
    ensure!(
        hf.layer_norm_epsilon == LAYER_NORM_EPS,
        bad(format!(
            "layer_norm_epsilon is {}; pisa's GPT-2 uses {LAYER_NORM_EPS}",
            hf.layer_norm_epsilon
        ))
    );
    if let Some(n_inner) = hf.n_inner {
        ensure!(
            n_inner == 4 * hf.n_embd,
            bad(format!(
                "n_inner is {n_inner}; pisa's GPT-2 has an MLP of 4·n_embd = {}",
                4 * hf.n_embd
            ))
        );
    }
    ensure!(
        hf.scale_attn_weights && !hf.scale_attn_by_inverse_layer_idx,
        bad(
            "attention must be scaled by 1/√head_dim only (scale_attn_weights true, \
             scale_attn_by_inverse_layer_idx false)"
                .into()
        )
    );
    ensure!(
        hf.tie_word_embeddings,
        bad("tie_word_embeddings is false; pisa's GPT-2 ties lm_head to wte".into())
    );
    ensure!(
        hf.resid_pdrop == hf.embd_pdrop && hf.embd_pdrop == hf.attn_pdrop,
        bad(format!(
            "resid_pdrop {}, embd_pdrop {} and attn_pdrop {} differ; pisa's GPT-2 has one dropout rate",
            hf.resid_pdrop, hf.embd_pdrop, hf.attn_pdrop
        ))
    );
    let config = Config {
        style: Style::Classic,
        n_layer: hf.n_layer,
        n_head: hf.n_head,
        n_embd: hf.n_embd,
        block_size: hf.n_positions,
        vocab_size: hf.vocab_size,
        dropout: hf.resid_pdrop,
    };
    config.validate().map_err(bad)?;
    Ok(config)
}

/// The `Conv1D` weights, as key suffixes inside a block.
const CONV1D: [&str; 4] = [
    "attn.c_attn.weight",
    "attn.c_proj.weight",
    "mlp.c_fc.weight",
    "mlp.c_proj.weight",
];

/// Reads a Hugging Face GPT-2 checkpoint directory: its [`Config`] ([`read_config`]) and
/// the weights of `model.safetensors` under pisa's names (`transformer.…`) and orientation,
/// in the file's kind. Whether they fit the model is checked by [`Gpt::load`] (see
/// [`from_hf`]).
pub fn load_hf(dir: &Path) -> Result<(Config, Vec<(String, Tensor)>)> {
    let config = read_config(dir)?;
    let file = dir.join("model.safetensors");
    ensure!(
        file.is_file(),
        "{}: no such file (pisa reads a single safetensors file, not .bin weights or a sharded \
         model.safetensors.index.json)",
        file.display()
    );
    let stored = Tensor::read_safetensors(&file)
        .with_context(|| format!("reading the GPT-2 weights {}", file.display()))?;
    let mut tensors = Vec::new();
    let mut lm_head = None;
    for (key, t) in stored {
        let name = key.strip_prefix("transformer.").unwrap_or(&key);
        ensure!(
            t.is_floating_point(),
            "{}: {key} is {:?}, expected floating point",
            file.display(),
            t.kind()
        );
        if name == "lm_head.weight" {
            lm_head = Some(t);
            continue;
        }
        let in_block = name.strip_prefix("h.").and_then(|s| s.split_once('.'));
        let suffix = in_block.map_or("", |(_, suffix)| suffix);
        if suffix == "attn.bias" || suffix == "attn.masked_bias" {
            continue;
        }
        let t = if CONV1D.contains(&suffix) {
            ensure!(
                t.dim() == 2,
                "{}: {key} has shape {:?}, expected a Conv1D matrix [in, out]",
                file.display(),
                t.size()
            );
            t.transpose(0, 1).contiguous()
        } else {
            t
        };
        tensors.push((format!("transformer.{name}"), t));
    }
    if let Some(lm_head) = lm_head {
        let wte = tensors.iter().find(|(n, _)| n == "transformer.wte.weight");
        match wte {
            Some((_, wte)) if wte.equal(&lm_head) => {}
            Some(_) => bail!(
                "{}: lm_head.weight differs from wte.weight; pisa's GPT-2 ties them",
                file.display()
            ),
            None => bail!(
                "{}: lm_head.weight without transformer.wte.weight",
                file.display()
            ),
        }
    }
    Ok((config, tensors))
}

/// A Classic [`Gpt`] built under `path` from the checkpoint in `dir` ([`load_hf`]): errors
/// name the file and the missing, unexpected or mismatched key and shape.
pub fn from_hf(path: &nn::Path, dir: &Path) -> Result<Gpt> {
    let (config, tensors) = load_hf(dir)?;
    // The initial draws are overwritten; the lock keeps them out of other runs' draws.
    let gpt = super::seeded(0, || Gpt::new(path, &config));
    gpt.load(&tensors).with_context(|| {
        format!(
            "{}: the weights do not fit the model of its config.json (Conv1D weights shown \
             transposed to [out, in])",
            dir.join("model.safetensors").display()
        )
    })?;
    Ok(gpt)
}
