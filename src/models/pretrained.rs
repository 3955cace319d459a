//! Pretrained GPT weights for `[model] weights`: a Hugging Face GPT-2 checkpoint
//! (`config.json` + `model.safetensors`, [`super::gpt_weights::load_hf`]) or a pisa run of
//! a GPT (`spec.toml` + `checkpoint.safetensors`: the w its optimizer reached), and the
//! vocabulary resized as `transformers`' `resize_token_embeddings` resizes it.
use super::gpt::{Config, Gpt};
use anyhow::{bail, ensure, Context, Result};
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

/// The token embedding (the tied head) in both layouts.
pub const EMBEDDING: &str = "transformer.wte.weight";

/// The configuration and named weights (pisa's names, torch's orientation) of the
/// checkpoint in `dir`.
pub fn load(dir: &Path) -> Result<(Config, Vec<(String, Tensor)>)> {
    if dir.join("config.json").is_file() {
        return super::gpt_weights::load_hf(dir);
    }
    let spec_file = dir.join(crate::results::SPEC_FILE);
    let checkpoint_file = dir.join(crate::results::checkpoint::CHECKPOINT_FILE);
    if !spec_file.is_file() {
        bail!(
            "{}: not a GPT checkpoint: expected a Hugging Face GPT-2 folder (config.json and \
             model.safetensors, as save_pretrained writes) or a pisa run folder (spec.toml and \
             checkpoint.safetensors)",
            dir.display()
        );
    }
    let spec = crate::spec::Spec::load(&spec_file, &[])?.resolved();
    let model = spec
        .model
        .as_ref()
        .filter(|m| m.kind == crate::spec::ModelKind::Gpt)
        .with_context(|| format!("{}: the run did not train a GPT", spec_file.display()))?;
    // a fine-tuned run records the model it trained (its spec may name only weights, and
    // its vocabulary is the tokenizer's); a pretraining run's is its spec's
    let model_file = dir.join(MODEL_FILE);
    let config = match (model_file.is_file(), &model.weights) {
        (true, _) => read_model_file(&model_file)?,
        (false, Some(_)) => bail!(
            "{} not found: the run started from weights and records its model there",
            model_file.display()
        ),
        (false, None) => model
            .gpt_config()
            .map_err(|(key, msg)| anyhow::anyhow!("{}: {key}: {msg}", spec_file.display()))?,
    };
    ensure!(
        checkpoint_file.is_file(),
        "{} not found: a run keeps the weights it reached in its checkpoint (train.checkpoint_every)",
        checkpoint_file.display()
    );
    let checkpoint = crate::results::checkpoint::load(&checkpoint_file)?;
    let shown = checkpoint_file.display();
    // the whole w, or each player's part in w's order (a GPT with its embedding split)
    let w = match checkpoint.optimizer.get("w") {
        Some(w) => w.shallow_clone(),
        None => {
            let parts = crate::spec::GPT_PLAYERS
                .iter()
                .map(|p| {
                    checkpoint
                        .optimizer
                        .get(&format!("{p}.w"))
                        .map(Tensor::shallow_clone)
                        .with_context(|| format!("{shown} holds neither optimizer.w nor {p}.w"))
                })
                .collect::<Result<Vec<_>>>()?;
            Tensor::cat(&parts, 0)
        }
    };
    Ok((
        config.clone(),
        split_flat(&config, &w).context(shown.to_string())?,
    ))
}

/// Where a run that starts from weights records the model it trains (its spec has only
/// the weights' folder).
pub const MODEL_FILE: &str = "model.json";

/// `model.json`: a [`Config`] under the spec's `[model]` key names.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    style: crate::spec::GptStyle,
    n_layer: i64,
    n_head: i64,
    n_embd: i64,
    block_size: i64,
    vocab_size: i64,
    dropout: f64,
}

/// The JSON of [`MODEL_FILE`] for `config`.
pub fn model_file(config: &Config) -> Vec<u8> {
    let file = ModelFile {
        style: crate::spec::GptStyle::of(config.style),
        n_layer: config.n_layer,
        n_head: config.n_head,
        n_embd: config.n_embd,
        block_size: config.block_size,
        vocab_size: config.vocab_size,
        dropout: config.dropout,
    };
    serde_json::to_vec_pretty(&file).expect("a model file serialises")
}

fn read_model_file(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {} (the run's model)", path.display()))?;
    let f: ModelFile = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a pisa model file", path.display()))?;
    let config = Config {
        style: f.style.style(),
        n_layer: f.n_layer,
        n_head: f.n_head,
        n_embd: f.n_embd,
        block_size: f.block_size,
        vocab_size: f.vocab_size,
        dropout: f.dropout,
    };
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(config)
}

/// The named tensors of a flat w laid out as a [`Gpt`] of `config` lays its parameters out
/// (`named_parameters()` order).
fn split_flat(config: &Config, w: &Tensor) -> Result<Vec<(String, Tensor)>> {
    let store = nn::VarStore::new(Device::Cpu);
    // Only names and shapes are read; seeded, so that its draws cannot shift a concurrent
    // seeded build.
    let gpt = crate::models::seeded(0, || tch::no_grad(|| Gpt::new(&store.root(), config)));
    let total: i64 = gpt
        .named_parameters()
        .iter()
        .map(|(_, t)| t.numel() as i64)
        .sum();
    ensure!(
        w.size() == [total],
        "optimizer.w is {:?}, but a GPT of the run's spec has {total} parameters",
        w.size()
    );
    let mut offset = 0;
    Ok(gpt
        .named_parameters()
        .iter()
        .map(|(name, t)| {
            let n = t.numel() as i64;
            let part = w.narrow(0, offset, n).view(t.size().as_slice()).copy();
            offset += n;
            (name.clone(), part)
        })
        .collect())
}

/// `resize_token_embeddings(vocab)` on the tied embedding: rows beyond the old vocabulary
/// are drawn from N(μ, 1e-9·Σ), μ and Σ the old rows' mean and covariance, when 1e-9·Σ is
/// positive definite (else μ), as `transformers`' `_init_added_embeddings_weights_with_mean`
/// (`mean_resizing=True`, its default); a smaller vocabulary keeps the first rows. The
/// draw is torch's generator, seeded by the caller.
pub fn resize_vocab(
    tensors: &mut [(String, Tensor)],
    config: &mut Config,
    vocab: i64,
) -> Result<()> {
    let (_, wte) = tensors
        .iter_mut()
        .find(|(name, _)| name == EMBEDDING)
        .with_context(|| format!("the weights hold no {EMBEDDING}"))?;
    let old = wte.size()[0];
    *wte = tch::no_grad(|| {
        if vocab <= old {
            return wte.narrow(0, 0, vocab).copy();
        }
        let e = wte.to_kind(Kind::Float);
        let mean = e.mean_dim(0, false, Kind::Float);
        let centred = &e - &mean;
        let covariance = centred.tr().matmul(&centred) / old as f64 * 1e-9;
        let (factor, info) = covariance.linalg_cholesky_ex(false, false);
        let added = vocab - old;
        let d = e.size()[1];
        let rows = if info.int64_value(&[]) == 0 {
            let z = Tensor::randn([added, d], (Kind::Float, e.device()));
            &mean + z.matmul(&factor.tr())
        } else {
            mean.unsqueeze(0).repeat([added, 1])
        };
        Tensor::cat(&[wte.shallow_clone(), rows.to_kind(wte.kind())], 0)
    });
    config.vocab_size = vocab;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::gpt::Style;

    fn tiny() -> Config {
        Config {
            style: Style::Classic,
            n_layer: 1,
            n_head: 2,
            n_embd: 8,
            block_size: 16,
            vocab_size: 40,
            dropout: 0.0,
        }
    }

    #[test]
    fn resizing_keeps_old_rows_and_adds_rows_at_the_mean() {
        let wte = crate::models::seeded(0, || Tensor::randn([40, 8], (Kind::Float, Device::Cpu)));
        let mut tensors = vec![(EMBEDDING.to_string(), wte.copy())];
        let mut config = tiny();
        crate::models::seeded(1, || resize_vocab(&mut tensors, &mut config, 43)).unwrap();
        let new = &tensors[0].1;
        assert_eq!((new.size(), config.vocab_size), (vec![43, 8], 43));
        assert!(new.narrow(0, 0, 40).equal(&wte));
        let mean = wte.mean_dim(0, false, Kind::Float);
        let off = (new.narrow(0, 40, 3) - mean).abs().max().double_value(&[]);
        // std √(1e-9·var) ≈ 3e-5 for unit-variance rows
        assert!(off > 0.0 && off < 5e-4, "{off}");
        resize_vocab(&mut tensors, &mut config, 30).unwrap();
        assert!(tensors[0].1.equal(&wte.narrow(0, 0, 30)));
    }

    #[test]
    fn flat_w_splits_in_named_parameters_order() {
        let config = tiny();
        let store = nn::VarStore::new(Device::Cpu);
        let gpt = crate::models::seeded(0, || Gpt::new(&store.root(), &config));
        let flat = Tensor::cat(
            &gpt.named_parameters()
                .iter()
                .map(|(_, t)| t.reshape([-1]))
                .collect::<Vec<_>>(),
            0,
        );
        let named = split_flat(&config, &flat).unwrap();
        for ((a, x), (b, y)) in named.iter().zip(gpt.named_parameters()) {
            assert_eq!(a, b);
            assert!(x.equal(y));
        }
        assert!(split_flat(&config, &flat.narrow(0, 0, 5)).is_err());
    }
}
