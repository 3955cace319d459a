//! Generation (`models::generate`), the padding mask and the KV cache (`models::gpt`,
//! `models::kv_cache`) against Hugging Face: scripts/golden_generate.py saved a random
//! GPT2LMHeadModel (tests/data/generate/hf-gen/) and recorded `generate`'s ids for greedy
//! and beam search, the logits and losses of a right-padded batch, and the sampling
//! warpers on fixed logits; no Python here. The cache is also checked against the uncached
//! forward pass for both layouts (the Modded one has no Hugging Face counterpart).
use pisa::models::generate::{generate, warp, Decoding, EarlyStopping};
use pisa::models::gpt::{shift_labels, Config, Gpt, Style};
use pisa::models::kv_cache::KvCache;
use pisa::models::{gpt_weights, seeded};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/generate");

fn hf_model(vs: &nn::VarStore) -> Gpt {
    gpt_weights::from_hf(&vs.root(), &Path::new(DATA).join("hf-gen")).unwrap()
}

fn cases() -> Value {
    let text = std::fs::read_to_string(Path::new(DATA).join("cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn tensors() -> BTreeMap<String, Tensor> {
    let file = Path::new(DATA).join("tensors.safetensors");
    Tensor::read_safetensors(file)
        .unwrap()
        .into_iter()
        .collect()
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

fn decoding(d: &Value) -> Decoding {
    match d["kind"].as_str().unwrap() {
        "greedy" => Decoding::Greedy,
        "beam" => Decoding::Beam {
            num_beams: d["num_beams"].as_u64().unwrap() as usize,
            no_repeat_ngram_size: d["no_repeat_ngram_size"].as_u64().unwrap() as usize,
            early_stopping: match &d["early_stopping"] {
                Value::Bool(true) => EarlyStopping::Finished,
                Value::Bool(false) => EarlyStopping::Heuristic,
                v => {
                    assert_eq!(v, "never");
                    EarlyStopping::Never
                }
            },
            length_penalty: d["length_penalty"].as_f64().unwrap(),
        },
        other => panic!("unknown decoding {other}"),
    }
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

#[test]
fn greedy_and_beam_search_give_hugging_faces_ids() {
    let vs = nn::VarStore::new(Device::Cpu);
    let gpt = hf_model(&vs);
    let all = cases();
    let cases = all["generate"].as_array().unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let prompt = ids(&case["prompt"]);
        let max_new = case["max_new_tokens"].as_u64().unwrap() as usize;
        let eos = case["eos_token_id"].as_i64();
        let ours = generate(&gpt, &prompt, max_new, eos, &decoding(&case["decoding"]), 0)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let expected = ids(&case["output"]);
        assert_eq!(
            ours, expected,
            "{name}: ids differ from Hugging Face's generate"
        );
        eprintln!(
            "{name}: {} new tokens equal to Hugging Face's",
            ours.len() - prompt.len()
        );
    }
}

#[test]
fn padded_batch_logits_and_losses_match_hugging_face() {
    let vs = nn::VarStore::new(Device::Cpu);
    let gpt = hf_model(&vs);
    let g = tensors();
    let (ids, mask) = (&g["masked.ids"], &g["masked.mask"]);
    tch::no_grad(|| {
        let logits = gpt.forward_masked(ids, Some(mask), false);
        let d = max_diff(&logits, &g["masked.logits"]);
        eprintln!("padded logits: max |pisa − HF| = {d:e}");
        assert!(d <= 1e-5, "padded logits differ by {d:e}");
        let with_pads = gpt.loss_masked(ids, &shift_labels(ids), Some(mask), false);
        // Losses within 1e-6 relative (~9.4: one f32 ulp is 9.5e-7).
        let d = max_diff(&with_pads, &g["masked.loss_pads"]) / with_pads.double_value(&[]);
        eprintln!("loss, labels = ids (pads included): |pisa − HF| / loss = {d:e}");
        assert!(
            d <= 1e-6,
            "loss with pad labels differs by {d:e} (relative)"
        );
        let ignored = ids.masked_fill(&mask.eq(0), -100);
        let without = gpt.loss_masked(ids, &shift_labels(&ignored), Some(mask), false);
        let d = max_diff(&without, &g["masked.loss_ignored"]) / without.double_value(&[]);
        eprintln!("loss, pads −100: |pisa − HF| / loss = {d:e}");
        assert!(
            d <= 1e-6,
            "loss with ignored pads differs by {d:e} (relative)"
        );
        // The mask matters: without it the padded rows' logits change.
        let unmasked = gpt.forward(ids, false);
        assert!(max_diff(&unmasked.get(2), &logits.get(2)) > 1e-3);
        assert!(max_diff(&unmasked.get(0), &logits.get(0)) <= 1e-5);
    });
}

#[test]
fn sampling_warpers_match_hugging_faces() {
    let g = tensors();
    let logits = &g["warp.logits"];
    let all = cases();
    let settings = all["warpers"].as_array().unwrap();
    for (i, s) in settings.iter().enumerate() {
        let (temperature, top_k, top_p) = (
            s["temperature"].as_f64().unwrap(),
            s["top_k"].as_u64().unwrap() as usize,
            s["top_p"].as_f64().unwrap(),
        );
        // Hugging Face builds the warpers that change something, in this order.
        let expected: Vec<&str> = [
            (temperature != 1.0, "TemperatureLogitsWarper"),
            (top_k != 0, "TopKLogitsWarper"),
            (top_p < 1.0, "TopPLogitsWarper"),
        ]
        .into_iter()
        .filter_map(|(used, name)| used.then_some(name))
        .collect();
        let built: Vec<&str> = s["processors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(built, expected, "setting {s}");
        let ours = warp(logits, temperature, top_k, top_p);
        let theirs = &g[&format!("warp.{i}")];
        let kept = ours.isfinite();
        assert!(
            kept.equal(&theirs.isfinite()),
            "setting {s}: the tokens kept differ"
        );
        let d = max_diff(
            &ours.masked_fill(&kept.logical_not(), 0.0),
            &theirs.masked_fill(&kept.logical_not(), 0.0),
        );
        assert!(d <= 1e-6, "setting {s}: warped scores differ by {d:e}");
    }
}

/// A Modded GPT with every parameter N(0, 0.1²), so its zero-initialised projections count.
fn random_modded(vs: &nn::VarStore) -> Gpt {
    let config = Config {
        style: Style::Modded,
        n_layer: 2,
        n_head: 4,
        n_embd: 64,
        block_size: 64,
        vocab_size: 320,
        dropout: 0.0,
    };
    let gpt = seeded(0, || Gpt::new(&vs.root(), &config));
    let weights: Vec<(String, Tensor)> = seeded(7, || {
        gpt.named_parameters()
            .iter()
            .map(|(n, p)| {
                (
                    n.clone(),
                    Tensor::randn(p.size(), (Kind::Float, Device::Cpu)) * 0.1,
                )
            })
            .collect()
    });
    gpt.load(&weights).unwrap();
    gpt
}

/// Logits of a 20-token sequence fed as a prompt of 7, 6 single tokens, a chunk of 3 and
/// 4 single tokens equal the uncached forward pass's at every position (1e-5 in f32, 1e-10
/// in f64).
fn check_cache_matches_full_forward(gpt: &Gpt, what: &str) {
    let tolerance = if gpt.kind() == Kind::Double {
        1e-10
    } else {
        1e-5
    };
    let seq = seeded(11, || {
        Tensor::randint(gpt.config().vocab_size, [2, 20], (Kind::Int64, Device::Cpu))
    });
    tch::no_grad(|| {
        let full = gpt.forward(&seq, false);
        let mut cache = KvCache::new(gpt, 2, 24).unwrap();
        let mut worst = 0f64;
        let mut start = 0;
        for t in [7, 1, 1, 1, 1, 1, 1, 3, 1, 1, 1, 1] {
            let part = gpt
                .forward_cached(&seq.narrow(1, start, t), &mut cache)
                .unwrap();
            worst = worst.max(max_diff(&part, &full.narrow(1, start, t)));
            start += t;
        }
        assert_eq!((start, cache.len()), (20, 20));
        eprintln!("{what}: cached vs full logits, max diff {worst:e}");
        assert!(
            worst <= tolerance,
            "{what}: cached logits differ by {worst:e}"
        );
        // Beam search's reordering: rows [1, 0, 1] continue as those sequences would.
        let (prefix, next) = (seq.narrow(1, 0, 19), seq.narrow(1, 19, 1));
        let mut cache = KvCache::new(gpt, 2, 24).unwrap();
        let _ = gpt.forward_cached(&prefix, &mut cache).unwrap();
        cache.reorder(&[1, 0, 1]).unwrap();
        let rows = Tensor::from_slice(&[1i64, 0, 1]);
        let stepped = gpt
            .forward_cached(&next.index_select(0, &rows), &mut cache)
            .unwrap();
        let reference = full.index_select(0, &rows).narrow(1, 19, 1);
        let d = max_diff(&stepped, &reference);
        assert!(d <= tolerance, "{what}: reordered cache differs by {d:e}");
        // An all-ones mask changes nothing.
        let ones = Tensor::ones([2, 20], (Kind::Int64, Device::Cpu));
        let d = max_diff(&gpt.forward_masked(&seq, Some(&ones), false), &full);
        assert!(d <= tolerance, "{what}: all-ones mask differs by {d:e}");
    });
}

fn var_store(kind: Kind) -> nn::VarStore {
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(kind);
    vs
}

#[test]
fn kv_cache_matches_the_full_forward_pass_classic() {
    for kind in [Kind::Float, Kind::Double] {
        let vs = var_store(kind);
        check_cache_matches_full_forward(&hf_model(&vs), &format!("Classic {kind:?}"));
    }
}

#[test]
fn kv_cache_matches_the_full_forward_pass_modded() {
    let vs = var_store(Kind::Double);
    check_cache_matches_full_forward(&random_modded(&vs), "Modded Double");
    let vs = var_store(Kind::Float);
    let gpt = random_modded(&vs);
    check_cache_matches_full_forward(&gpt, "Modded Float");
    // Generation runs on the Modded layout too, and beam search within the context.
    let out = generate(
        &gpt,
        &[3, 1, 4],
        20,
        None,
        &Decoding::Beam {
            num_beams: 3,
            no_repeat_ngram_size: 2,
            early_stopping: EarlyStopping::Finished,
            length_penalty: 1.0,
        },
        0,
    )
    .unwrap();
    assert_eq!(out.len(), 23);
    assert_eq!(out[..3], [3, 1, 4]);
}

#[test]
fn sampling_is_seeded_and_top_one_sampling_is_greedy() {
    let vs = nn::VarStore::new(Device::Cpu);
    let gpt = hf_model(&vs);
    let prompt = [5, 17, 200];
    let pisa = Decoding::Sample {
        temperature: 1.0,
        top_k: 50,
        top_p: 0.85,
    };
    let a = generate(&gpt, &prompt, 30, None, &pisa, 1).unwrap();
    assert_eq!(a, generate(&gpt, &prompt, 30, None, &pisa, 1).unwrap());
    assert_ne!(a, generate(&gpt, &prompt, 30, None, &pisa, 2).unwrap());
    let greedy = generate(&gpt, &prompt, 30, None, &Decoding::Greedy, 0).unwrap();
    for one in [
        Decoding::Sample {
            temperature: 0.8,
            top_k: 1,
            top_p: 1.0,
        },
        Decoding::Sample {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.0,
        },
    ] {
        assert_eq!(generate(&gpt, &prompt, 30, None, &one, 3).unwrap(), greedy);
    }
}

/// A generate call's prompt, max_new_tokens, eos and decoding, and its expected error.
type Request<'a> = (&'a [i64], usize, Option<i64>, Decoding, &'a str);

#[test]
fn bad_requests_are_errors() {
    let vs = nn::VarStore::new(Device::Cpu);
    let gpt = hf_model(&vs);
    let beam = |num_beams| Decoding::Beam {
        num_beams,
        no_repeat_ngram_size: 2,
        early_stopping: EarlyStopping::Finished,
        length_penalty: 1.0,
    };
    let sample = |temperature, top_p| Decoding::Sample {
        temperature,
        top_k: 50,
        top_p,
    };
    let long = vec![1i64; 250];
    let bad: [Request; 8] = [
        (&[], 5, None, Decoding::Greedy, "empty"),
        (&long, 7, None, Decoding::Greedy, "context of 256"),
        (&[1, 2], 5, None, beam(0), "num_beams"),
        (&[1, 2], 0, None, Decoding::Greedy, "max_new_tokens"),
        (
            &[1, 320],
            5,
            None,
            Decoding::Greedy,
            "outside the vocabulary",
        ),
        (&[1, 2], 5, Some(-1), Decoding::Greedy, "eos_token_id"),
        (&[1, 2], 5, None, sample(0.0, 0.9), "temperature"),
        (&[1, 2], 5, None, sample(1.0, 1.5), "top_p"),
    ];
    for (prompt, max_new, eos, decoding, message) in bad {
        let e = generate(&gpt, prompt, max_new, eos, &decoding, 0).unwrap_err();
        assert!(format!("{e}").contains(message), "{message}: got {e}");
    }
    // The cache refuses what does not fit.
    assert!(KvCache::new(&gpt, 1, 257).is_err());
    assert!(KvCache::new(&gpt, 0, 8).is_err());
    let mut cache = KvCache::new(&gpt, 1, 4).unwrap();
    let five = Tensor::from_slice(&[1i64, 2, 3, 4, 5]).view([1, 5]);
    assert!(gpt.forward_cached(&five, &mut cache).is_err());
    assert!(gpt.forward_cached(&five.view([5, 1]), &mut cache).is_err());
    assert!(cache.reorder(&[1]).is_err());
    assert!(cache.reorder(&[]).is_err());
}
