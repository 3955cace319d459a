//! Table 6's semantic similarity: from the ingredients of each of the first test recipes
//! the model generates a recipe (`GPT2/evaluation.py`'s `infer`: beam search, the output
//! decoded without special tokens, so the candidate starts with the prompt's
//! "Ingredients: …"), and BERTScore F1 (`metrics::bertscore`) compares it with the
//! reference instructions, one pair at a time as the script's `bert_score.score([reference],
//! [candidate])`; the metric is their mean, in %.
use crate::data::recipes::{Recipe, RecipeTokenizer};
use crate::metrics::bertscore::{Baseline, BertScore};
use crate::models::generate::{generate, Decoding, EarlyStopping};
use crate::models::gpt::Gpt;
use crate::spec::{KeyError, SimilaritySpec};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use tch::Device;

/// One scored test recipe: the prompt's ids, its ingredients and the reference.
struct Case {
    prompt: Vec<i64>,
    ingredients: String,
    reference: String,
}

pub struct Similarity {
    epochs: Vec<usize>,
    cases: Vec<Case>,
    tokenizer: RecipeTokenizer,
    scorer: BertScore,
    decoding: Decoding,
    max_new_tokens: usize,
}

impl Similarity {
    /// The measure `spec` describes on the first `spec.recipes` of `test` (all by default).
    pub fn new(
        spec: &SimilaritySpec,
        test: &[Recipe],
        tokenizer: RecipeTokenizer,
        device: Device,
    ) -> Result<Self> {
        let located = |e: anyhow::Error, key: &str| KeyError::at(key, format!("{e:#}"));
        let dir = match &spec.model {
            Some(dir) => dir.clone(),
            None => BertScore::locate_minilm().map_err(|e| located(e, "similarity.model"))?,
        };
        let baseline = spec.baseline.clone().map(Baseline::File);
        let scorer = BertScore::load(&dir, spec.layer, baseline, device)
            .map_err(|e| located(e, "similarity.model"))?;
        let count = spec.recipes.unwrap_or(test.len()).min(test.len());
        let cases = test[..count]
            .iter()
            .map(|r| {
                let (ingredients, reference) = r.extracted();
                let prompt = tokenizer.encode(&crate::data::recipes::prompt(&ingredients));
                Case {
                    prompt,
                    ingredients,
                    reference,
                }
            })
            .collect();
        Ok(Self {
            epochs: spec.epochs.clone(),
            cases,
            tokenizer,
            scorer,
            decoding: Decoding::Beam {
                num_beams: spec.num_beams,
                no_repeat_ngram_size: spec.no_repeat_ngram_size,
                early_stopping: EarlyStopping::Finished,
                length_penalty: 1.0,
            },
            max_new_tokens: spec.max_new_tokens,
        })
    }

    /// Whether it is measured after epoch `epoch` (1-based).
    pub fn due(&self, epoch: usize) -> bool {
        self.epochs.contains(&epoch)
    }

    /// The candidate `model` writes for case `i`.
    fn candidate(&self, model: &Gpt, i: usize) -> Result<String> {
        let case = &self.cases[i];
        let ids = generate(
            model,
            &case.prompt,
            self.max_new_tokens,
            Some(RecipeTokenizer::EOS as i64),
            &self.decoding,
            i as u64,
        )
        .with_context(|| format!("generating test recipe {i}"))?;
        Ok(self.tokenizer.decode(&ids))
    }

    /// The mean BERTScore F1 (%) of the cases' candidates against their references.
    pub fn measure(&self, model: &Gpt) -> Result<f64> {
        let candidates = (0..self.cases.len())
            .map(|i| self.candidate(model, i))
            .collect::<Result<Vec<_>>>()?;
        let references: Vec<String> = self.cases.iter().map(|c| c.reference.clone()).collect();
        let scores = self.scorer.score(&candidates, &references)?;
        Ok(100.0 * scores.iter().map(|s| s.f1).sum::<f64>() / scores.len() as f64)
    }

    /// Markdown of the first `k` cases: ingredients, reference, what `model` writes, F1.
    pub fn samples(&self, model: &Gpt, k: usize) -> Result<String> {
        let mut out = String::from("# Generated recipes (test set)\n");
        for i in 0..k.min(self.cases.len()) {
            let case = &self.cases[i];
            let candidate = self.candidate(model, i)?;
            let f1 = self.scorer.score(
                std::slice::from_ref(&candidate),
                std::slice::from_ref(&case.reference),
            )?[0]
                .f1;
            let _ = write!(
                out,
                "\n## Recipe {}\n\n**Ingredients:** {}\n\n**Reference:** {}\n\n**Generated** \
                 (BERTScore F1 {:.2} %): {}\n",
                i + 1,
                case.ingredients,
                case.reference,
                100.0 * f1,
                candidate
            );
        }
        Ok(out)
    }
}
