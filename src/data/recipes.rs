//! The recipes corpus of Appendix A.4 (`recipes_1000.csv`: RecipeId, name, ingredients,
//! instructions), read as the official fine-tuning scripts read it
//! (`Tracy-Wang7/PISA`, `GPT2/Recipes_Generation.py`, `Parallel_Recipes_Generation_ddam.py`,
//! `evaluation.py`, after the tutorial [71]):
//!
//! - each recipe is the string `<|startoftext|>Ingredients: {ingredients}. Instructions:
//!   {instructions}<|endoftext|>` (`form_string`, both fields stripped);
//! - GPT-2's tokenizer with the special tokens the scripts add (`bos_token`, `unk_token`
//!   and `pad_token` are new, in `transformers`' order of special-token attributes, so the
//!   vocabulary grows from 50,257 to 50,260 — "Number of tokens: 50260" in the scripts'
//!   logs), truncated and right-padded to `max_length` (180) with an attention mask;
//! - the prompt of a generated recipe is `<|startoftext|>Ingredients: {ingredients}` with
//!   the ingredients as `extract_string` recovers them (the period kept), the reference
//!   its instructions.
//!
//! The 900/100 split is seeded here (the scripts used `random_split` once and saved its
//! indices in `GPT2/dataset_splits.pth`; `experiments/table6/official-split.json` is that
//! file converted by `scripts/recipes_split.py`, for `data.split`).
use super::tokenizer::Gpt2Bpe;
use anyhow::{bail, ensure, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::Tensor;

/// Where the corpus comes from.
pub const HOW_TO_GET: &str = "the recipes corpus is `recipes_1000.csv` with columns RecipeId, \
     name, ingredients, instructions (../shared/data/recipes/ on the project's machines; the \
     PISA repository's GPT2/ folder holds the same file)";

/// The special tokens of the scripts' `GPT2TokenizerFast.from_pretrained(...,
/// bos_token='<|startoftext|>', eos_token='<|endoftext|>', unk_token='<|unknown|>',
/// pad_token='<|pad|>')`: GPT-2's `<|endoftext|>` (50256) and three added tokens.
pub const BOS: &str = "<|startoftext|>";
pub const EOS: &str = "<|endoftext|>";
pub const UNK: &str = "<|unknown|>";
pub const PAD: &str = "<|pad|>";

/// One recipe's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    pub ingredients: String,
    pub instructions: String,
}

impl Recipe {
    /// The training text (`form_string`).
    pub fn text(&self) -> String {
        format!(
            "{BOS}Ingredients: {}. Instructions: {}{EOS}",
            self.ingredients.trim(),
            self.instructions.trim()
        )
    }

    /// The ingredients and instructions that `extract_string` recovers from [`Self::text`]:
    /// the ingredients keep the period `form_string` put after them.
    pub fn extracted(&self) -> (String, String) {
        let text = self.text().replace(BOS, "").replace(EOS, "");
        let start = "Ingredients: ".len();
        let at = text
            .find("Instructions: ")
            .expect("form_string writes Instructions: ");
        let ingredients = text.get(start..at.saturating_sub(1)).unwrap_or_default();
        let instructions = &text[at + "Instructions: ".len()..];
        (ingredients.to_string(), instructions.to_string())
    }

    /// The prompt a recipe is generated from (`infer`) and the reference it is scored
    /// against.
    pub fn prompt_and_reference(&self) -> (String, String) {
        let (ingredients, instructions) = self.extracted();
        (prompt(&ingredients), instructions)
    }
}

/// `infer`'s input for the given ingredients.
pub fn prompt(ingredients: &str) -> String {
    format!("{BOS}Ingredients: {}", ingredients.trim())
}

/// Reads the corpus; a file that is not the recipes CSV is an error naming it, and a bad
/// row names its line.
pub fn read(path: &Path) -> Result<Vec<Recipe>> {
    let mut reader = csv::Reader::from_path(path)
        .with_context(|| format!("cannot read {}: {HOW_TO_GET}", path.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("{}: no header row", path.display()))?
        .clone();
    let column = |name: &str| -> Result<usize> {
        headers.iter().position(|h| h == name).with_context(|| {
            format!(
                "{}: no column {name:?} (the header is {:?}); {HOW_TO_GET}",
                path.display(),
                headers.iter().collect::<Vec<_>>()
            )
        })
    };
    let (ingredients, instructions) = (column("ingredients")?, column("instructions")?);
    let mut recipes = Vec::new();
    for row in reader.records() {
        let row = row.with_context(|| format!("{}: a malformed row", path.display()))?;
        let line = row.position().map_or(0, |p| p.line());
        let field = |i: usize| -> Result<String> {
            row.get(i).map(str::to_string).with_context(|| {
                format!(
                    "{} line {line}: the row has {} fields",
                    path.display(),
                    row.len()
                )
            })
        };
        recipes.push(Recipe {
            ingredients: field(ingredients)?,
            instructions: field(instructions)?,
        });
    }
    ensure!(!recipes.is_empty(), "{}: no recipes", path.display());
    Ok(recipes)
}

/// GPT-2's BPE with the scripts' special tokens matched in the text first, the pieces
/// between them encoded as ordinary text (how `transformers` treats added tokens).
pub struct RecipeTokenizer {
    bpe: Gpt2Bpe,
    /// (text, id) of each special token.
    special: [(&'static str, u32); 4],
}

impl RecipeTokenizer {
    /// The vocabulary with the added tokens: 50,260.
    pub const VOCAB: usize = Gpt2Bpe::VOCAB + 3;
    pub const BOS: u32 = 50257;
    pub const EOS: u32 = Gpt2Bpe::EOT;
    pub const UNK: u32 = 50258;
    pub const PAD: u32 = 50259;

    pub fn new() -> Result<Self> {
        Ok(Self {
            bpe: Gpt2Bpe::new()?,
            special: [
                (BOS, Self::BOS),
                (EOS, Self::EOS),
                (UNK, Self::UNK),
                (PAD, Self::PAD),
            ],
        })
    }

    pub fn encode(&self, text: &str) -> Vec<i64> {
        let mut ids = Vec::new();
        let mut rest = text;
        loop {
            let next = self
                .special
                .iter()
                .filter_map(|&(s, id)| rest.find(s).map(|at| (at, s.len(), id)))
                .min_by_key(|&(at, len, _)| (at, std::cmp::Reverse(len)));
            let Some((at, len, id)) = next else {
                ids.extend(self.bpe.encode(rest).into_iter().map(i64::from));
                return ids;
            };
            ids.extend(self.bpe.encode(&rest[..at]).into_iter().map(i64::from));
            ids.push(id as i64);
            rest = &rest[at + len..];
        }
    }

    /// The text of `ids` without the special tokens (`skip_special_tokens=True`); bytes
    /// cut mid-character read as U+FFFD, as `transformers` decodes them.
    pub fn decode(&self, ids: &[i64]) -> String {
        let ordinary: Vec<u32> = ids
            .iter()
            .filter(|&&id| id >= 0 && (id as usize) < Gpt2Bpe::EOT as usize)
            .map(|&id| id as u32)
            .collect();
        self.bpe.decode_lossy(&ordinary)
    }
}

/// Token ids [N, L] and attention masks [N, L] (1 real, 0 padding) of texts truncated
/// and right-padded to L = `max_length` (`encode_plus(truncation=True,
/// padding='max_length')`).
pub fn encode_padded(
    tokenizer: &RecipeTokenizer,
    texts: &[String],
    max_length: usize,
) -> (Tensor, Tensor) {
    let mut ids = Vec::with_capacity(texts.len() * max_length);
    let mut mask = Vec::with_capacity(texts.len() * max_length);
    for text in texts {
        let mut row = tokenizer.encode(text);
        row.truncate(max_length);
        mask.extend((0..max_length).map(|j| (j < row.len()) as i64));
        row.resize(max_length, RecipeTokenizer::PAD as i64);
        ids.extend(row);
    }
    let shape = [texts.len() as i64, max_length as i64];
    (
        Tensor::from_slice(&ids).view(shape),
        Tensor::from_slice(&mask).view(shape),
    )
}

/// Which recipes train and which test, by their row numbers (0-based) in the CSV: the
/// format of `GPT2/dataset_splits.pth`'s dictionary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    pub train_indices: Vec<usize>,
    pub val_indices: Vec<usize>,
}

impl Split {
    /// A seeded random split with ⌊(1 − test_fraction)·N⌋ training recipes (the scripts'
    /// `int(0.9 * len(dataset))`), each part in the permutation's order.
    pub fn seeded(n: usize, test_fraction: f64, seed: u64) -> Self {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x7265_6369_7065));
        let train = ((1.0 - test_fraction) * n as f64 + 1e-9).floor() as usize;
        let val_indices = order.split_off(train);
        Self {
            train_indices: order,
            val_indices,
        }
    }

    /// Reads a split file; it must cover each of the `n` recipes at most once.
    pub fn read(path: &Path, n: usize) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the split file {}", path.display()))?;
        let split: Split = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: a split file is JSON {{\"train_indices\": [...], \"val_indices\": [...]}}",
                path.display()
            )
        })?;
        split
            .check(n)
            .with_context(|| format!("split file {}", path.display()))?;
        Ok(split)
    }

    fn check(&self, n: usize) -> Result<()> {
        ensure!(
            !self.train_indices.is_empty() && !self.val_indices.is_empty(),
            "both parts must hold recipes"
        );
        let mut seen = vec![false; n];
        for &i in self.train_indices.iter().chain(&self.val_indices) {
            if i >= n {
                bail!("index {i} is beyond the corpus's {n} recipes");
            }
            ensure!(!seen[i], "recipe {i} is listed twice");
            seen[i] = true;
        }
        Ok(())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a split serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_strings_and_their_extraction() {
        let r = Recipe {
            ingredients: " eggs, flour ".into(),
            instructions: "Mix. Bake.\n".into(),
        };
        assert_eq!(
            r.text(),
            "<|startoftext|>Ingredients: eggs, flour. Instructions: Mix. Bake.<|endoftext|>"
        );
        let (prompt, reference) = r.prompt_and_reference();
        assert_eq!(prompt, "<|startoftext|>Ingredients: eggs, flour.");
        assert_eq!(reference, "Mix. Bake.");
    }

    #[test]
    fn special_tokens_are_split_out_then_text_is_bpe() {
        let t = RecipeTokenizer::new().unwrap();
        let ids = t.encode("<|startoftext|>Hello<|pad|><|endoftext|> world");
        let bpe = Gpt2Bpe::new().unwrap();
        let mut want = vec![50257];
        want.extend(bpe.encode("Hello").into_iter().map(i64::from));
        want.extend([50259, 50256]);
        want.extend(bpe.encode(" world").into_iter().map(i64::from));
        assert_eq!(ids, want);
        assert_eq!(t.decode(&ids), "Hello world");
    }

    #[test]
    fn padding_and_truncation() {
        let t = RecipeTokenizer::new().unwrap();
        let texts = vec!["<|startoftext|>a b".to_string(), "x ".repeat(20)];
        let (ids, mask) = encode_padded(&t, &texts, 6);
        assert_eq!(ids.size(), [2, 6]);
        let row0 = Vec::<i64>::try_from(ids.get(0)).unwrap();
        assert_eq!(row0[0], 50257);
        assert_eq!(&row0[3..], &[50259; 3]);
        assert_eq!(
            Vec::<i64>::try_from(mask.get(0)).unwrap(),
            [1, 1, 1, 0, 0, 0]
        );
        assert_eq!(Vec::<i64>::try_from(mask.get(1)).unwrap(), [1; 6]);
    }

    #[test]
    fn seeded_split_is_900_100_and_reads_back() {
        let s = Split::seeded(1000, 0.1, 42);
        assert_eq!((s.train_indices.len(), s.val_indices.len()), (900, 100));
        assert_eq!(s, Split::seeded(1000, 0.1, 42));
        assert_ne!(s, Split::seeded(1000, 0.1, 43));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("split.json");
        std::fs::write(&f, s.to_json()).unwrap();
        assert_eq!(Split::read(&f, 1000).unwrap(), s);
        let e = Split::read(&f, 500).unwrap_err();
        assert!(format!("{e:#}").contains("beyond the corpus"), "{e:#}");
    }

    #[test]
    fn reads_the_shared_corpus() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/recipes/recipes_1000.csv");
        if !path.exists() {
            return;
        }
        let recipes = read(&path).unwrap();
        assert_eq!(recipes.len(), 1000);
        assert!(recipes[1].text().contains("Ingredients: saffron, milk"));
    }
}
