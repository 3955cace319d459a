//! The recipes task a spec describes: the corpus split and tokenised, the GPT from its
//! pretrained weights (or seeded) resized to the tokenizer's vocabulary, and the
//! similarity measure of `[similarity]`.
use super::recipes::{self, Encoded, Recipes, VOCAB};
use super::similarity::Similarity;
use crate::data::recipes::{encode_padded, read, RecipeTokenizer, Split};
use crate::models::gpt::{Config as ModelConfig, Gpt, Style};
use crate::models::precision::Precision;
use crate::models::{self, pretrained};
use crate::spec::{Autocast, KeyError, Spec, MAX_LENGTH, TEST_FRACTION};
use anyhow::{Context, Result};
use std::path::Path;
use tch::{nn, Device, Tensor};

/// Where a run records its train/test split.
pub const SPLIT_FILE: &str = "split.json";

/// Files written beside a run's results: (name, contents).
pub type Files = Vec<(&'static str, Vec<u8>)>;

/// The task and the files to write beside its results: the split and the model.
pub fn build(spec: &Spec, csv: &Path, device: Device) -> Result<(Recipes, Files)> {
    let (d, t) = (&spec.data, &spec.train);
    let recipes = read(csv)?;
    let split = match &d.split {
        Some(file) => Split::read(file, recipes.len())
            .map_err(|e| KeyError::at("data.split", format!("{e:#}")))?,
        None => Split::seeded(
            recipes.len(),
            d.test_fraction.unwrap_or(TEST_FRACTION),
            spec.seed,
        ),
    };
    let tokenizer = RecipeTokenizer::new()?;
    let length = d.max_length.unwrap_or(MAX_LENGTH);
    let encode = |indices: &[usize]| {
        let texts: Vec<String> = indices.iter().map(|&i| recipes[i].text()).collect();
        let (ids, mask) = encode_padded(&tokenizer, &texts, length);
        Encoded { ids, mask }
    };
    let (train, test) = (encode(&split.train_indices), encode(&split.val_indices));
    let (model, weights) = model(spec)?;
    let similarity = match &spec.similarity {
        Some(s) => {
            let test_recipes: Vec<_> = split
                .val_indices
                .iter()
                .map(|&i| recipes[i].clone())
                .collect();
            Some(Similarity::new(s, &test_recipes, tokenizer, device)?)
        }
        None => None,
    };
    let config = recipes::Config {
        workers: t.workers,
        batch: t.batch_size,
        micro_batch: t.micro_batch as i64,
        eval_batch: t.eval_batch_size.unwrap_or(t.batch_size.max(1)) as i64,
        loss_on_padding: d.loss_on_padding.unwrap_or(false),
        seed: spec.seed,
        kind: t.dtype.kind(),
        device,
        precision: Precision::new(t.autocast.map(Autocast::kind), false)?,
    };
    let task = Recipes::new(train, test, &model, Some(&weights), similarity, config)?;
    let files = vec![
        (SPLIT_FILE, serde_json::to_vec(&split)?),
        (pretrained::MODEL_FILE, pretrained::model_file(&model)),
    ];
    Ok((task, files))
}

/// The GPT to fine-tune, as a configuration and weights of the tokenizer's vocabulary:
/// `model.weights` with `block_size` and `dropout` changed as given, or a model of the
/// spec's sizes seeded by `seed`.
fn model(spec: &Spec) -> Result<(ModelConfig, Vec<(String, Tensor)>)> {
    let m = spec
        .model
        .as_ref()
        .expect("validated: recipes data has a model");
    let (mut config, mut tensors) = match &m.weights {
        Some(dir) => {
            let (mut config, tensors) = pretrained::load(dir)
                .map_err(|e| KeyError::at("model.weights", format!("{e:#}")))?;
            if let Some(b) = m.block_size.filter(|&b| b != config.block_size) {
                if config.style == Style::Classic {
                    return Err(KeyError::at(
                        "model.block_size",
                        format!(
                            "a GPT-2 of the classic layout has {} learned positions; its \
                             block_size cannot change (a modded GPT's can)",
                            config.block_size
                        ),
                    ));
                }
                config.block_size = b;
            }
            if let Some(p) = m.dropout {
                config.dropout = p;
            }
            config
                .validate()
                .map_err(|e| KeyError::at("model.dropout", e))?;
            (config, tensors)
        }
        None => {
            let config = m.gpt_config().expect("validated");
            let store = nn::VarStore::new(Device::Cpu);
            let gpt = models::seeded(spec.seed, || Gpt::new(&store.root(), &config));
            let tensors = gpt
                .named_parameters()
                .iter()
                .map(|(name, t)| (name.clone(), t.detach().copy()))
                .collect();
            (config, tensors)
        }
    };
    models::seeded(spec.seed, || {
        pretrained::resize_vocab(&mut tensors, &mut config, VOCAB)
    })
    .context("resizing the embedding to the recipes tokenizer's vocabulary")?;
    Ok((config, tensors))
}
