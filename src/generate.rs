//! `pisa generate`: a trained GPT writes text, so a user can read what it learned. The
//! model is a pisa run folder (its last checkpoint: a pretraining run on token shards or a
//! recipes fine-tuning) or a Hugging Face GPT-2 folder. A recipes run's prompt is the
//! ingredients, formatted as the PISA scripts' `infer` (`<|startoftext|>Ingredients: …`);
//! other models take the prompt as text, the recipes tokenizer's special tokens matched
//! where written. Generation stops at `<|endoftext|>`. The output is decoded without special
//! tokens, prompt included, as the scripts print it.
use crate::data::recipes::{self, RecipeTokenizer};
use crate::models::generate::{generate, Decoding};
use crate::models::gpt::Gpt;
use crate::models::pretrained;
use anyhow::{ensure, Context, Result};
use std::path::Path;
use tch::{nn, Device};

/// What to generate from `dir` (the module doc), on `device`.
pub struct Request<'a> {
    pub prompt: &'a str,
    pub max_new_tokens: usize,
    pub decoding: Decoding,
    pub seed: u64,
    pub device: Device,
}

/// The text the model in `dir` writes for `request`.
pub fn text(dir: &Path, request: &Request) -> Result<String> {
    let (config, tensors) = pretrained::load(dir)?;
    let store = nn::VarStore::new(request.device);
    // Its initial draws are overwritten by the weights.
    let gpt = crate::models::seeded(0, || Gpt::new(&store.root(), &config));
    gpt.load(&tensors)
        .with_context(|| format!("{}: the weights do not fit its model", dir.display()))?;
    // special tokens written in the prompt are matched (`<|startoftext|>`, …)
    let tokenizer = RecipeTokenizer::new()?;
    let prompt = match is_recipes_run(dir) {
        true => tokenizer.encode(&recipes::prompt(request.prompt)),
        false => tokenizer.encode(request.prompt),
    };
    ensure!(!prompt.is_empty(), "the prompt is empty");
    let max_new = request
        .max_new_tokens
        .min((config.block_size as usize).saturating_sub(prompt.len()));
    ensure!(
        max_new > 0,
        "the prompt's {} tokens fill the model's context of {}",
        prompt.len(),
        config.block_size
    );
    let ids = generate(
        &gpt,
        &prompt,
        max_new,
        Some(RecipeTokenizer::EOS as i64),
        &request.decoding,
        request.seed,
    )?;
    // the special tokens (and a pretrained vocabulary's padding rows) are not text
    Ok(tokenizer.decode(&ids))
}

/// Whether `dir` is a pisa run on the recipes corpus.
fn is_recipes_run(dir: &Path) -> bool {
    crate::spec::Spec::load(&dir.join(crate::results::SPEC_FILE), &[])
        .is_ok_and(|s| s.data.kind == crate::spec::DataKind::Recipes)
}
