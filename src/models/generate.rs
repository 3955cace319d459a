//! Text generation with a [`Gpt`]: Hugging Face's `model.generate(input_ids,
//! max_new_tokens=…, …)` for one prompt, returning what its `output[0]` holds — the prompt
//! followed by the generated ids, the eos token included when one ended the sequence.
//! Follows transformers 5.24's `generation/utils.py` (`GenerationMixin._sample` for greedy
//! decoding and sampling, `_beam_search` and its helpers for beam search) and
//! `generation/logits_process.py` (`NoRepeatNGramLogitsProcessor`,
//! `TemperatureLogitsWarper`, `TopKLogitsWarper`, `TopPLogitsWarper`), as the PISA recipes
//! scripts (Tracy-Wang7/PISA, GPT2/Recipes_Generation.py's and evaluation.py's `infer`) call
//! it: beam search with 5 beams, `no_repeat_ngram_size=2`, `early_stopping=True`, or
//! sampling with `top_k=50, top_p=0.85`.
//!
//! The prompt is forwarded once and each step forwards only the new tokens through a
//! [`KvCache`] (beam search reorders it), on the model's device, under `tch::no_grad`.
//! Scores are f32 whatever the model's kind, as Hugging Face casts the last logits.
//! Sampling draws with pisa's seeded ChaCha8 generator, not torch's: the same seed gives the
//! same text here, but not Hugging Face's tokens; its filtered distributions ([`warp`]) are
//! Hugging Face's.
use super::gpt::Gpt;
use super::kv_cache::KvCache;
use anyhow::{bail, ensure, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// Hugging Face's `early_stopping` for beam search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyStopping {
    /// `True`: stop as soon as `num_beams` hypotheses have finished.
    Finished,
    /// `False` (HF's default): stop when the best running beam, scored at the current
    /// length, cannot beat the worst of `num_beams` finished hypotheses.
    Heuristic,
    /// `"never"`: as `Heuristic`, but with a positive length penalty the running beam is
    /// scored at the longest length it could reach.
    Never,
}

/// How each next token is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoding {
    /// The most likely token (`do_sample=False, num_beams=1`).
    Greedy,
    /// A draw from the warped distribution (`do_sample=True`; [`warp`]): `temperature` > 0
    /// (1 leaves the logits alone), `top_k` (0 keeps every token; note Hugging Face's
    /// default is 50 when `top_k` is not passed), `top_p` in [0, 1] (1 keeps every token).
    Sample {
        temperature: f64,
        top_k: usize,
        top_p: f64,
    },
    /// Beam search (`num_beams > 1, do_sample=False`); `num_beams = 1` is Hugging Face's
    /// greedy decoding with the n-gram ban. `no_repeat_ngram_size` 0 bans nothing;
    /// `length_penalty` is the exponent of the generated length dividing a finished
    /// hypothesis's summed log-probability (HF's default 1).
    Beam {
        num_beams: usize,
        no_repeat_ngram_size: usize,
        early_stopping: EarlyStopping,
        length_penalty: f64,
    },
}

/// Hugging Face's `-1e9`, beam search's "impossible" score (in f32, as its score tensors).
const IMPOSSIBLE: f32 = -1.0e9;

/// The prompt followed by up to `max_new_tokens` generated ids, stopping after
/// `eos_token_id` when given (Hugging Face's `generate(...)[0]` for one prompt). `seed`
/// seeds [`Decoding::Sample`]'s draws and is unused otherwise. Errors for an empty prompt,
/// an id outside the vocabulary, no new tokens, a prompt and new tokens beyond the model's
/// block_size, a temperature that is not positive, a `top_p` outside [0, 1], no beams, or
/// a length penalty that is not finite.
pub fn generate(
    model: &Gpt,
    prompt: &[i64],
    max_new_tokens: usize,
    eos_token_id: Option<i64>,
    decoding: &Decoding,
    seed: u64,
) -> Result<Vec<i64>> {
    let config = model.config();
    let vocab = config.vocab_size;
    ensure!(!prompt.is_empty(), "generate: the prompt is empty");
    if let Some(bad) = prompt.iter().find(|&&id| !(0..vocab).contains(&id)) {
        bail!("generate: prompt token {bad} is outside the vocabulary 0..{vocab}");
    }
    if let Some(eos) = eos_token_id {
        ensure!(
            (0..vocab).contains(&eos),
            "generate: eos_token_id {eos} is outside the vocabulary 0..{vocab}"
        );
    }
    ensure!(
        max_new_tokens >= 1,
        "generate: max_new_tokens must be positive"
    );
    let max_length = prompt.len() + max_new_tokens;
    ensure!(
        max_length as i64 <= config.block_size,
        "generate: a prompt of {} tokens and {max_new_tokens} new tokens exceed the model's \
         context of {} (block_size)",
        prompt.len(),
        config.block_size
    );
    let run = Run {
        model,
        prompt,
        max_length,
        eos: eos_token_id,
    };
    match *decoding {
        Decoding::Greedy => tch::no_grad(|| run.one_sequence(|scores, _| argmax(scores))),
        Decoding::Sample {
            temperature,
            top_k,
            top_p,
        } => {
            ensure!(
                temperature.is_finite() && temperature > 0.0,
                "generate: temperature must be positive, got {temperature}"
            );
            ensure!(
                (0.0..=1.0).contains(&top_p),
                "generate: top_p must be in [0, 1], got {top_p}"
            );
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            tch::no_grad(|| {
                run.one_sequence(|scores, _| {
                    let probs = warp(scores, temperature, top_k, top_p).softmax(-1, Kind::Float);
                    draw(&Vec::<f32>::try_from(probs.view([-1]))?, &mut rng)
                })
            })
        }
        Decoding::Beam {
            num_beams,
            no_repeat_ngram_size,
            early_stopping,
            length_penalty,
        } => {
            ensure!(num_beams >= 1, "generate: num_beams must be positive");
            ensure!(
                length_penalty.is_finite(),
                "generate: length_penalty must be finite, got {length_penalty}"
            );
            if num_beams == 1 {
                tch::no_grad(|| {
                    run.one_sequence(|scores, tokens| {
                        argmax(&ban_ngrams(scores, &[tokens], no_repeat_ngram_size)?)
                    })
                })
            } else {
                let beams = Beams {
                    num_beams,
                    no_repeat_ngram_size,
                    early_stopping,
                    length_penalty,
                };
                tch::no_grad(|| run.beam_search(&beams))
            }
        }
    }
}

/// Hugging Face's sampling warpers on scores [rows, V], in the order `_get_logits_processor`
/// appends them, each only when it changes something: `TemperatureLogitsWarper` (scores /
/// temperature, when temperature ≠ 1), `TopKLogitsWarper` (−∞ below the k-th largest score,
/// ties kept, when top_k ≠ 0), `TopPLogitsWarper` (sorted ascending, −∞ for the tokens whose
/// cumulative probability is ≤ 1 − top_p, the most likely token always kept, when top_p <
/// 1); `min_tokens_to_keep` 1, as for sampling with one beam.
pub fn warp(scores: &Tensor, temperature: f64, top_k: usize, top_p: f64) -> Tensor {
    let mut scores = if temperature != 1.0 {
        scores / temperature
    } else {
        scores.shallow_clone()
    };
    let vocab = *scores.size().last().expect("scores are [rows, V]");
    if top_k != 0 {
        let k = (top_k as i64).min(vocab);
        let kth = scores.topk(k, -1, true, true).0.narrow(-1, k - 1, 1);
        scores = scores.masked_fill(&scores.lt_tensor(&kth), f64::NEG_INFINITY);
    }
    if top_p < 1.0 {
        let (sorted, order) = scores.sort(-1, false);
        let cumulative = sorted.softmax(-1, Kind::Float).cumsum(-1, Kind::Float);
        let remove_sorted = cumulative.le(1.0 - top_p);
        let _ = remove_sorted.narrow(-1, vocab - 1, 1).fill_(0);
        let remove = remove_sorted.scatter(-1, &order, &remove_sorted);
        scores = scores.masked_fill(&remove, f64::NEG_INFINITY);
    }
    scores
}

/// The tokens `NoRepeatNGramLogitsProcessor` bans after `tokens` (prompt and generated):
/// the last token of every earlier n-gram whose first n − 1 tokens are the sequence's last
/// n − 1 (every token seen, for n = 1); none for n = 0 or fewer than n tokens.
pub fn banned_tokens(tokens: &[i64], n: usize) -> Vec<i64> {
    if n == 0 || tokens.len() < n {
        return Vec::new();
    }
    let prefix = &tokens[tokens.len() + 1 - n..];
    tokens
        .windows(n)
        .filter(|w| &w[..n - 1] == prefix)
        .map(|w| w[n - 1])
        .collect()
}

/// Scores [rows, V] with −∞ at the tokens [`banned_tokens`] bans after each row's sequence.
fn ban_ngrams(scores: &Tensor, sequences: &[&[i64]], n: usize) -> Result<Tensor> {
    let (mut rows, mut columns) = (Vec::new(), Vec::new());
    for (row, tokens) in sequences.iter().enumerate() {
        for token in banned_tokens(tokens, n) {
            rows.push(row as i64);
            columns.push(token);
        }
    }
    if rows.is_empty() {
        return Ok(scores.shallow_clone());
    }
    let device = scores.device();
    let index = |v: &[i64]| Some(Tensor::from_slice(v).to_device(device));
    let minus_infinity = Tensor::from(f32::NEG_INFINITY).to_device(device);
    Ok(scores.f_index_put(&[index(&rows), index(&columns)], &minus_infinity, false)?)
}

/// The first index of the largest score of scores [1, V] (`torch.argmax`).
fn argmax(scores: &Tensor) -> Result<i64> {
    Ok(scores.f_argmax(-1, false)?.f_int64_value(&[0])?)
}

/// A token drawn with probability `probs[i]` / Σ probs (inverse CDF of one uniform draw);
/// tokens of probability 0 are never drawn.
fn draw(probs: &[f32], rng: &mut ChaCha8Rng) -> Result<i64> {
    let total: f64 = probs.iter().map(|&p| f64::from(p)).sum();
    ensure!(
        total.is_finite() && total > 0.0,
        "generate: the next-token distribution has total probability {total}"
    );
    let target = rng.random::<f64>() * total;
    let (mut cumulative, mut last) = (0.0, 0);
    for (i, &p) in probs.iter().enumerate() {
        if p > 0.0 {
            cumulative += f64::from(p);
            last = i;
            if cumulative > target {
                break;
            }
        }
    }
    Ok(last as i64)
}

/// One generation: the model, the prompt and where it stops.
struct Run<'a> {
    model: &'a Gpt,
    prompt: &'a [i64],
    /// Prompt and new tokens (HF's `max_length`).
    max_length: usize,
    eos: Option<i64>,
}

/// Beam search's settings ([`Decoding::Beam`]).
struct Beams {
    num_beams: usize,
    no_repeat_ngram_size: usize,
    early_stopping: EarlyStopping,
    length_penalty: f64,
}

/// A beam-search sequence and its score.
#[derive(Clone)]
struct Hypothesis {
    tokens: Vec<i64>,
    score: f32,
    /// Finished hypotheses only: whether this slot holds a finished sequence.
    finished: bool,
}

impl Run<'_> {
    fn device(&self) -> Device {
        self.model.device()
    }

    /// Forwards `tokens` [rows, t] (the cache's batch) and returns the last position's
    /// logits [rows, V] in f32.
    fn next_logits(&self, tokens: &[i64], rows: i64, cache: &mut KvCache) -> Result<Tensor> {
        let idx = Tensor::from_slice(tokens)
            .to_device(self.device())
            .view([rows, -1]);
        let logits = self.model.forward_cached(&idx, cache)?;
        Ok(logits.select(1, -1).to_kind(Kind::Float))
    }

    /// `_sample` for one sequence: `pick` chooses each token from the f32 logits [1, V] and
    /// the sequence so far; stops after eos or at `max_length`.
    fn one_sequence(
        &self,
        mut pick: impl FnMut(&Tensor, &[i64]) -> Result<i64>,
    ) -> Result<Vec<i64>> {
        let mut cache = KvCache::new(self.model, 1, self.max_length as i64)?;
        let mut tokens = self.prompt.to_vec();
        let mut logits = self.next_logits(self.prompt, 1, &mut cache)?;
        loop {
            let next = pick(&logits, &tokens)?;
            tokens.push(next);
            if Some(next) == self.eos || tokens.len() == self.max_length {
                return Ok(tokens);
            }
            logits = self.next_logits(&[next], 1, &mut cache)?;
        }
    }

    /// `_beam_search` for one prompt: each step, the 2·num_beams best continuations of all
    /// beams by summed log-probability (`log_softmax` of the f32 logits, n-gram bans, plus
    /// the beam's score); a continuation that ends in eos or reaches `max_length` among the
    /// first num_beams of them is a finished hypothesis scored sum / generated length^penalty
    /// (eos counted), kept if it is among the num_beams best finished; the best num_beams
    /// unfinished ones run on. At `max_length` every continuation finishes. Stops when no
    /// running beam can improve on the finished ones ([`EarlyStopping`]), when num_beams have
    /// finished under `Finished`, or at `max_length`; returns the best finished hypothesis.
    /// Ties go to the earlier candidate; the host-side score arithmetic is f32 as Hugging
    /// Face's (its divisions by the length as its CPU kernels compute them).
    fn beam_search(&self, beams: &Beams) -> Result<Vec<i64>> {
        let n = beams.num_beams;
        // HF keeps max(2, 1 + number of eos tokens)·num_beams continuations: one eos at most.
        let keep = 2 * n;
        let vocab = self.model.config().vocab_size;
        let prompt_len = self.prompt.len();
        let lp = beams.length_penalty;
        let mut cache = KvCache::new(self.model, 1, self.max_length as i64)?;
        let mut logits = self
            .next_logits(self.prompt, 1, &mut cache)?
            .expand([n as i64, vocab], false);
        cache.reorder(&vec![0; n])?;
        // Only the first beam starts live, so the first step does not pick n equal beams.
        let mut running: Vec<Hypothesis> = (0..n)
            .map(|i| Hypothesis {
                tokens: self.prompt.to_vec(),
                score: if i == 0 { 0.0 } else { IMPOSSIBLE },
                finished: false,
            })
            .collect();
        let mut finished = vec![
            Hypothesis {
                tokens: self.prompt.to_vec(),
                score: IMPOSSIBLE,
                finished: false,
            };
            n
        ];
        let mut improvable = true;
        let mut cur_len = prompt_len;
        loop {
            let sequences: Vec<&[i64]> = running.iter().map(|h| h.tokens.as_slice()).collect();
            let log_probs = ban_ngrams(
                &logits.log_softmax(-1, Kind::Float),
                &sequences,
                beams.no_repeat_ngram_size,
            )?;
            let beam_scores: Vec<f32> = running.iter().map(|h| h.score).collect();
            let beam_scores = Tensor::from_slice(&beam_scores)
                .to_device(self.device())
                .view([n as i64, 1]);
            let (values, indices) =
                (log_probs + beam_scores)
                    .view([1, -1])
                    .topk(keep as i64, -1, true, true);
            let values = Vec::<f32>::try_from(values.view([-1]))?;
            let indices = Vec::<i64>::try_from(indices.view([-1]))?;
            let at_max_length = cur_len + 1 >= self.max_length;
            let candidates: Vec<(usize, Hypothesis, bool)> = indices
                .iter()
                .zip(&values)
                .map(|(&index, &score)| {
                    let (beam, token) = ((index / vocab) as usize, index % vocab);
                    let mut tokens = running[beam].tokens.clone();
                    tokens.push(token);
                    let hit = at_max_length || Some(token) == self.eos;
                    let hypothesis = Hypothesis {
                        tokens,
                        score,
                        finished: false,
                    };
                    (beam, hypothesis, hit)
                })
                .collect();
            // The next running beams: the best continuations that have not stopped.
            let stopped = candidates.iter().map(|(beam, h, hit)| {
                let score = if *hit { h.score + IMPOSSIBLE } else { h.score };
                (*beam, Hypothesis { score, ..h.clone() })
            });
            let (sources, next_running): (Vec<i64>, Vec<Hypothesis>) =
                best(stopped.collect(), n, |(_, h)| h.score)
                    .into_iter()
                    .map(|(beam, h)| (beam as i64, h))
                    .unzip();
            // The finished hypotheses: the stopped ones among the first n, if good enough.
            let length = ((cur_len + 1 - prompt_len) as f64).powf(lp) as f32;
            let full = beams.early_stopping == EarlyStopping::Finished
                && finished.iter().all(|h| h.finished);
            let mut merged = finished;
            for (j, (_, h, hit)) in candidates.iter().enumerate() {
                let just_finished = *hit && j < n;
                let mut score = h.score / length;
                for penalised in [full, !improvable, !just_finished] {
                    if penalised {
                        score += IMPOSSIBLE;
                    }
                }
                let finished = just_finished;
                merged.push(Hypothesis {
                    score,
                    finished,
                    ..h.clone()
                });
            }
            finished = best(merged, n, |h| h.score);
            let all_stopped = candidates.iter().all(|(_, _, hit)| *hit);
            running = next_running;
            cur_len += 1;
            // `_check_early_stop_heuristic`.
            let reachable = if beams.early_stopping == EarlyStopping::Never && lp > 0.0 {
                self.max_length - prompt_len
            } else {
                cur_len - prompt_len
            };
            let best_running = running[0].score / (reachable as f64).powf(lp) as f32;
            let worst_finished = finished
                .iter()
                .map(|h| h.score)
                .fold(f32::INFINITY, f32::min);
            improvable &= finished.iter().any(|h| {
                best_running
                    > if h.finished {
                        worst_finished
                    } else {
                        IMPOSSIBLE
                    }
            });
            let all_finished = beams.early_stopping == EarlyStopping::Finished
                && finished.iter().all(|h| h.finished);
            if !improvable || all_finished || all_stopped {
                break;
            }
            cache.reorder(&sources)?;
            let last: Vec<i64> = running
                .iter()
                .map(|h| *h.tokens.last().expect("a hypothesis holds the prompt"))
                .collect();
            logits = self.next_logits(&last, n as i64, &mut cache)?;
        }
        let best = finished.swap_remove(0);
        Ok(best.tokens)
    }
}

/// The `n` highest-scoring items, best first, earlier items first among equal scores (the
/// order `torch.topk` gives these short rows).
fn best<T>(mut items: Vec<T>, n: usize, score: impl Fn(&T) -> f32) -> Vec<T> {
    items.sort_by(|a, b| score(b).total_cmp(&score(a)));
    items.truncate(n);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_the_successors_of_earlier_ngrams() {
        // Bigrams: after ...3, the tokens that followed 3 before (5 and 7) are banned.
        assert_eq!(banned_tokens(&[3, 5, 1, 3, 7, 2, 3], 2), vec![5, 7]);
        // Trigrams: the prefix (1, 2) occurred once, followed by 9.
        assert_eq!(banned_tokens(&[1, 2, 9, 4, 1, 2], 3), vec![9]);
        // The last n − 1 tokens do not ban their own (not yet chosen) successor.
        assert_eq!(banned_tokens(&[4, 4], 2), vec![4]);
        assert_eq!(banned_tokens(&[4], 2), Vec::<i64>::new());
        assert_eq!(banned_tokens(&[1, 2, 1], 1), vec![1, 2, 1]);
        assert_eq!(banned_tokens(&[1, 2, 1], 0), Vec::<i64>::new());
    }

    #[test]
    fn draws_follow_the_distribution_and_skip_zero_probabilities() {
        let probs = [0.0, 0.25, 0.0, 0.75, 0.0];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut counts = [0usize; 5];
        for _ in 0..20_000 {
            counts[draw(&probs, &mut rng).unwrap() as usize] += 1;
        }
        assert_eq!(counts[0] + counts[2] + counts[4], 0);
        let share = counts[3] as f64 / 20_000.0;
        assert!((share - 0.75).abs() < 0.015, "token 3 drawn {share}");
        assert!(draw(&[0.0, 0.0], &mut rng).is_err());
    }
}
