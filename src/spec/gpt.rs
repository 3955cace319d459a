//! GPT language modelling (Section 5.3): `[model] kind = "gpt"` on `[data] kind =
//! "tokens"`, the token shards of nanoGPT / modded-nanogpt.
use super::{reject_given, ModelKind, ModelSpec, Spec};
use crate::models::gpt::{Config, Style};
use serde::{Deserialize, Serialize};

/// `model.style`: which GPT layout (`models::gpt::Style`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GptStyle {
    Modded,
    Classic,
}

impl GptStyle {
    pub fn style(self) -> Style {
        match self {
            GptStyle::Modded => Style::Modded,
            GptStyle::Classic => Style::Classic,
        }
    }

    pub fn of(style: Style) -> Self {
        match style {
            Style::Modded => GptStyle::Modded,
            Style::Classic => GptStyle::Classic,
        }
    }
}

/// `data.order`: how each worker's windows of `block_size + 1` tokens are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenOrder {
    /// modded-nanogpt's `DistributedDataLoader`: consecutive windows of B·T + 1 tokens,
    /// worker i taking the i-th of each m, a pass over the shards per epoch.
    Sequential,
    /// nanoGPT's `get_batch`: B windows at uniformly random offsets, seeded by (seed,
    /// worker, draw).
    Random,
}

/// A GPT's players when its token embedding (the tied head) has an optimizer of its own
/// (`[optimizer.embedding]`), as the PISA Nano script trains it with AdamW beside NSISA.
pub const PLAYERS: [&str; 2] = ["embedding", "blocks"];

/// modded-nanogpt's `val_tokens`: the validation loss is over this many tokens.
pub const VAL_TOKENS: u64 = 10_485_760;

impl ModelSpec {
    /// The GPT keys and whether each is given.
    pub(super) fn gpt_keys(&self) -> [(&'static str, bool); 7] {
        [
            ("preset", self.preset.is_some()),
            ("style", self.style.is_some()),
            ("n_layer", self.n_layer.is_some()),
            ("n_head", self.n_head.is_some()),
            ("n_embd", self.n_embd.is_some()),
            ("block_size", self.block_size.is_some()),
            ("vocab_size", self.vocab_size.is_some()),
        ]
    }

    /// The GPT this table describes: its preset with the sizes given changed, or, without
    /// a preset, the sizes alone. Errors name the key.
    pub fn gpt_config(&self) -> Result<Config, (String, String)> {
        let bad = |key: &str, msg: String| Err((format!("model.{key}"), msg));
        let mut c = match &self.preset {
            Some(name) => match Config::preset(name) {
                Some(c) => c,
                None => {
                    return bad(
                        "preset",
                        format!(
                            "unknown GPT preset {name:?}; the presets are {}",
                            Config::PRESETS.join(", ")
                        ),
                    )
                }
            },
            None => {
                if let Some((key, _)) = self.gpt_keys()[1..].iter().find(|(_, given)| !given) {
                    return bad(
                        key,
                        format!(
                            "a GPT without a preset needs style, n_layer, n_head, n_embd, \
                             block_size and vocab_size; {key} is missing (or name a preset: {})",
                            Config::PRESETS.join(", ")
                        ),
                    );
                }
                Config::preset(Config::PRESETS[0]).expect("the first preset exists")
            }
        };
        if let Some(s) = self.style {
            c.style = s.style();
        }
        let sizes = [
            (&mut c.n_layer, self.n_layer),
            (&mut c.n_head, self.n_head),
            (&mut c.n_embd, self.n_embd),
            (&mut c.block_size, self.block_size),
            (&mut c.vocab_size, self.vocab_size),
        ];
        for (slot, given) in sizes {
            if let Some(v) = given {
                *slot = v;
            }
        }
        c.dropout = self.dropout.unwrap_or(0.0);
        for (key, value) in [
            ("n_layer", c.n_layer),
            ("n_head", c.n_head),
            ("n_embd", c.n_embd),
            ("block_size", c.block_size),
            ("vocab_size", c.vocab_size),
        ] {
            if !(1..=1 << 24).contains(&value) {
                return bad(key, format!("{key} must be in 1..=16777216, not {value}"));
            }
        }
        if !(0.0..1.0).contains(&c.dropout) {
            return bad(
                "dropout",
                format!("dropout must be in [0, 1), not {}", c.dropout),
            );
        }
        if let Err(e) = c.validate() {
            let key = if c.n_embd % c.n_head != 0 {
                "n_head"
            } else {
                "n_embd"
            };
            return bad(key, e);
        }
        Ok(c)
    }

    pub(super) fn validate_gpt(&self) -> Result<(), (String, String)> {
        if !self.hidden.is_empty() {
            return Err((
                "model.hidden".into(),
                "hidden applies to kind = \"mlp\" only".into(),
            ));
        }
        self.gpt_config().map(|_| ())
    }

    /// Every size written out (the preset, if any, kept as the name it started from).
    pub(super) fn resolved_gpt(mut self) -> Self {
        let c = self.gpt_config().expect("validated");
        self.style = Some(GptStyle::of(c.style));
        self.n_layer = Some(c.n_layer);
        self.n_head = Some(c.n_head);
        self.n_embd = Some(c.n_embd);
        self.block_size = Some(c.block_size);
        self.vocab_size = Some(c.vocab_size);
        self.dropout = Some(c.dropout);
        self
    }
}

impl Spec {
    /// `tokens` data: a folder of shards, a GPT, and windows that fit the batch.
    pub(super) fn validate_tokens(&self) -> Result<(), (String, String)> {
        let (d, t) = (&self.data, &self.train);
        let bad = |key: &str, msg: String| Err((key.to_string(), msg));
        if d.path.is_none() {
            return bad(
                "data.path",
                "tokens data needs path = the folder of its shards (*_train_*.bin and \
                 *_val_*.bin, as `pisa data prepare text` writes them)"
                    .into(),
            );
        }
        // micro_batch and autocast apply as for images: gradient accumulation, bf16.
        let images = self.classification_keys();
        let images: Vec<_> = images
            .into_iter()
            .filter(|(key, _)| !["train.micro_batch", "train.autocast"].contains(key))
            .collect();
        reject_given(&images, "tokens data")?;
        reject_given(
            &[
                ("data.valid_fraction", d.valid_fraction.is_some()),
                ("train.bptt", t.bptt.is_some()),
                ("train.test_batch_size", t.test_batch_size.is_some()),
                ("train.channels_last", t.channels_last),
            ],
            "tokens data",
        )?;
        if t.batch_size == 0 {
            return bad(
                "train.batch_size",
                "a GPT trains on batch_size sequences per worker: at least 1".into(),
            );
        }
        t.check_passes("sequences")?;
        let model = match &self.model {
            Some(m) if m.kind == ModelKind::Gpt => m,
            Some(_) => {
                return bad(
                    "model.kind",
                    "tokens data trains a language model: kind = \"gpt\"".into(),
                )
            }
            None => {
                return bad(
                    "model",
                    "tokens data needs a [model] table with kind = \"gpt\"".into(),
                )
            }
        };
        model.validate()?;
        let block = model.gpt_config()?.block_size as u64;
        let val = d.val_tokens.unwrap_or(VAL_TOKENS);
        if val < block {
            return bad(
                "data.val_tokens",
                format!("val_tokens {val} is less than one window of block_size {block}"),
            );
        }
        Ok(())
    }

    /// `tokens` data's keys given for other data.
    pub(super) fn token_keys(&self) -> [(&'static str, bool); 2] {
        let d = &self.data;
        [
            ("data.val_tokens", d.val_tokens.is_some()),
            ("data.order", d.order.is_some()),
        ]
    }
}
