//! The GPT models' sizes, causality, initial loss, ignore_index, dropout and the errors of
//! their configuration and weight loading (`models::gpt`, `models::gpt_weights`).
use pisa::models::gpt::{Config, Gpt, Style};
use pisa::models::{gpt_weights, seeded, FlatParams};
use std::path::Path;
use tch::{nn, Device, Kind, Reduction, Tensor};

const HF_TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/gpt/hf-tiny");

/// A change to a configuration or to a list of named weights.
type Edit<T> = fn(&mut T);
type Weights = Vec<(String, Tensor)>;

fn small(style: Style) -> Config {
    Config {
        style,
        n_layer: 3,
        n_head: 2,
        n_embd: 20,
        block_size: 12,
        vocab_size: 37,
        dropout: 0.0,
    }
}

fn build(config: &Config, seed: u64) -> (nn::VarStore, Gpt) {
    let vs = nn::VarStore::new(Device::Cpu);
    let gpt = seeded(seed, || Gpt::new(&vs.root(), config));
    (vs, gpt)
}

/// Sets every parameter to N(0, 0.3²), so that Modded's zero output projections do not
/// hide what the blocks compute.
fn perturb(vs: &nn::VarStore, seed: u64) {
    seeded(seed, || {
        tch::no_grad(|| {
            for mut v in vs.trainable_variables() {
                let _ = v.normal_(0.0, 0.3);
            }
        })
    });
}

/// Every draw goes through `seeded`: tests run in parallel threads and torch has one
/// global generator, so an unlocked draw could land inside another test's seeded build.
fn tokens(config: &Config, b: i64, t: i64, seed: u64) -> Tensor {
    seeded(seed, || {
        Tensor::randint(config.vocab_size, [b, t], (Kind::Int64, Device::Cpu))
    })
}

#[test]
fn presets_have_the_published_parameter_counts() {
    let count = |name: &str| Config::preset(name).unwrap().parameters();
    assert_eq!(count("gpt2_small"), 124_439_808);
    assert_eq!(count("gpt2_medium"), 354_823_168);
    assert_eq!(count("gpt2_xl"), 1_557_611_200);
    // 50,304·768 + 12·12·768², no position embedding, no biases, no norm weights.
    assert_eq!(count("gpt2_nano"), 123_568_128);
    eprintln!("gpt2_nano: {} parameters", count("gpt2_nano"));
    for name in Config::PRESETS {
        let config = Config::preset(name).unwrap();
        assert_eq!(config.validate(), Ok(()), "{name}");
    }
    let nano = Config::preset("gpt2_nano").unwrap();
    assert_eq!(
        (nano.style, nano.n_layer, nano.n_head, nano.n_embd),
        (Style::Modded, 12, 6, 768)
    );
    assert_eq!((nano.block_size, nano.vocab_size), (1024, 50_304));
    assert_eq!(Config::preset("gpt2_large"), None);
}

#[test]
fn closed_form_count_equals_the_built_models_parameters() {
    for style in [Style::Modded, Style::Classic] {
        for (n_layer, n_head, n_embd, block_size, vocab_size) in
            [(1, 1, 8, 4, 11), (3, 2, 20, 12, 37), (2, 4, 32, 7, 101)]
        {
            let config = Config {
                style,
                n_layer,
                n_head,
                n_embd,
                block_size,
                vocab_size,
                dropout: 0.0,
            };
            let (vs, gpt) = build(&config, 0);
            let numel: i64 = vs
                .trainable_variables()
                .iter()
                .map(Tensor::numel)
                .sum::<usize>() as i64;
            assert_eq!(numel, config.parameters(), "{config:?}");
            // Every variable is trainable, the tied embedding one variable.
            assert_eq!(vs.variables().len(), vs.trainable_variables().len());
            assert_eq!(gpt.named_parameters().len(), vs.variables().len());
            assert!(!vs.variables().contains_key("lm_head.weight"));
            assert_eq!(FlatParams::new(&vs).unwrap().numel(), config.parameters());
        }
    }
}

#[test]
fn initialisation_follows_each_reference() {
    let config = |style| Config {
        style,
        n_layer: 3,
        n_head: 2,
        n_embd: 64,
        block_size: 64,
        vocab_size: 101,
        dropout: 0.0,
    };
    let (_vs, modded) = build(&config(Style::Modded), 3);
    let (_vs, classic) = build(&config(Style::Classic), 3);
    let d = 64.0f64;
    for (name, t) in modded.named_parameters() {
        let (max, std) = (
            t.abs().max().double_value(&[]),
            t.std(true).double_value(&[]),
        );
        if name.ends_with("c_proj.weight") {
            assert_eq!(max, 0.0, "{name} starts at zero");
        } else {
            // nn.Linear's U(±1/√fan_in), fan_in = d for every other weight (wte is lm_head's).
            assert!(max <= 1.0 / d.sqrt(), "{name}: max {max}");
            let expected = 1.0 / (3.0 * d).sqrt();
            assert!(
                (std / expected - 1.0).abs() < 0.05,
                "{name}: std {std}, not {expected}"
            );
        }
    }
    for (name, t) in classic.named_parameters() {
        let std = t.std(true).double_value(&[]);
        let mean = t.mean(Kind::Float).double_value(&[]);
        if name.contains(".ln_") {
            let expected = if name.ends_with("weight") { 1.0 } else { 0.0 };
            assert_eq!((mean, std), (expected, 0.0), "{name}");
        } else if name.ends_with("bias") {
            assert_eq!(t.abs().max().double_value(&[]), 0.0, "{name}");
        } else {
            let expected = if name.ends_with("c_proj.weight") {
                0.02 / 6f64.sqrt()
            } else {
                0.02
            };
            assert!(
                (std / expected - 1.0).abs() < 0.05,
                "{name}: std {std}, not {expected}"
            );
        }
    }
}

#[test]
fn changing_later_tokens_leaves_earlier_logits_unchanged() {
    for style in [Style::Modded, Style::Classic] {
        let config = small(style);
        let (vs, gpt) = build(&config, 1);
        perturb(&vs, 2);
        let idx = tokens(&config, 2, 12, 3);
        let logits = gpt.forward(&idx, false);
        for t in [0, 5, 10] {
            let changed = idx.copy();
            changed
                .narrow(1, t + 1, 11 - t)
                .copy_(&((idx.narrow(1, t + 1, 11 - t) + 1).remainder(config.vocab_size)));
            let other = gpt.forward(&changed, false);
            let before = (other.narrow(1, 0, t + 1) - logits.narrow(1, 0, t + 1))
                .abs()
                .max()
                .double_value(&[]);
            let after = (other.narrow(1, t + 1, 11 - t) - logits.narrow(1, t + 1, 11 - t))
                .abs()
                .max()
                .double_value(&[]);
            assert!(
                before <= 1e-6,
                "{style:?}: positions ≤ {t} changed by {before}"
            );
            assert!(
                after > 1e-2,
                "{style:?}: positions > {t} changed only by {after}"
            );
        }
    }
}

/// The mean loss of an untrained model on random tokens and targets.
fn initial_loss(config: &Config, b: i64, t: i64) -> f64 {
    let (_vs, gpt) = build(config, 4);
    let (idx, targets) = (tokens(config, b, t, 5), tokens(config, b, t, 6));
    tch::no_grad(|| gpt.loss(&idx, &targets, false)).double_value(&[])
}

#[test]
fn untrained_classic_loss_is_ln_vocab() {
    // N(0, 0.02²) weights: the logits' variance is d·0.02² ≈ 0.03, so the loss is
    // ln V + ≈0.015 (the variance's half), well within 0.05.
    let config = Config {
        style: Style::Classic,
        n_layer: 2,
        n_head: 4,
        n_embd: 64,
        block_size: 64,
        vocab_size: 2000,
        dropout: 0.0,
    };
    let loss = initial_loss(&config, 4, 64);
    let ln_v = (config.vocab_size as f64).ln();
    eprintln!("Classic untrained loss {loss:.4}, ln V {ln_v:.4}");
    assert!((loss - ln_v).abs() < 0.05, "loss {loss}, ln V {ln_v}");
}

#[test]
fn untrained_nano_loss_is_dominated_by_the_tied_input_token() {
    // Zero output projections make the blocks identities: the logits are rms(w_i)·Wᵀ for
    // input token i, with the rows of W (= wte = lm_head) U(±1/√d). The input token's own
    // logit is ‖w_i‖·√d ≈ √(d/3) = 16 for d = 768; the others' are ≈ N(0, 1/3). So the
    // loss on random targets is ≈ ln(e^√(d/3) + (V−1)·e^(1/6)) ≈ 16.0, not ln V ≈ 10.8
    // (modded-nanogpt's step-0 validation loss). Tolerance 0.2: the target logit's noise
    // over 256 tokens has a standard deviation of ≈ 0.04.
    let config = Config::preset("gpt2_nano").unwrap();
    let loss = initial_loss(&config, 4, 64);
    let (d, v) = (config.n_embd as f64, config.vocab_size as f64);
    let expected = ((d / 3.0).sqrt().exp() + (v - 1.0) * (1.0f64 / 6.0).exp()).ln();
    eprintln!(
        "gpt2_nano untrained loss {loss:.4}, expected {expected:.4}, ln V {:.4}",
        v.ln()
    );
    assert!(
        (loss - expected).abs() < 0.2,
        "loss {loss}, expected {expected}"
    );
}

#[test]
fn targets_of_minus_100_are_left_out_of_the_mean() {
    for style in [Style::Modded, Style::Classic] {
        let config = small(style);
        let (vs, gpt) = build(&config, 7);
        perturb(&vs, 8);
        let idx = tokens(&config, 2, 10, 9);
        let targets = tokens(&config, 2, 10, 10);
        let masked = targets.copy();
        for (b, t) in [(0, 0), (0, 7), (1, 3)] {
            let _ = masked.get(b).get(t).fill_(-100);
        }
        let loss = gpt.loss(&idx, &masked, false).double_value(&[]);
        // By hand: −log softmax at the target, averaged over the 17 kept positions.
        let logp = gpt.forward(&idx, false).log_softmax(-1, Kind::Float);
        let picked = logp.gather(2, &targets.unsqueeze(2), false).squeeze_dim(2);
        let kept = masked.ne(-100);
        let by_hand = -(picked * kept.to_kind(Kind::Float))
            .sum(Kind::Float)
            .double_value(&[])
            / 17.0;
        assert!(
            (loss - by_hand).abs() < 1e-5,
            "{style:?}: {loss} vs {by_hand}"
        );
        let all = gpt
            .forward(&idx, false)
            .reshape([-1, config.vocab_size])
            .cross_entropy_loss::<Tensor>(&targets.reshape([-1]), None, Reduction::Mean, -100, 0.0)
            .double_value(&[]);
        assert!(
            (loss - all).abs() > 1e-4,
            "{style:?}: the mask changed nothing"
        );
    }
}

#[test]
fn classic_dropout_acts_in_training_passes_only() {
    let mut config = small(Style::Classic);
    config.dropout = 0.1;
    let (_vs, gpt) = build(&config, 11);
    let idx = tokens(&config, 2, 12, 12);
    let eval = gpt.forward(&idx, false);
    assert!(eval.equal(&gpt.forward(&idx, false)));
    let train = gpt.forward(&idx, true);
    assert!((train - &eval).abs().max().double_value(&[]) > 1e-4);
    // Without dropout a training pass is an evaluation pass.
    config.dropout = 0.0;
    let (_vs, gpt) = build(&config, 11);
    assert!(gpt.forward(&idx, true).equal(&gpt.forward(&idx, false)));
    assert!(gpt.forward(&idx, false).equal(&eval));
}

#[test]
fn validate_rejects_what_the_models_cannot_compute() {
    let cases: [(Edit<Config>, &str); 6] = [
        (|c| c.n_layer = 0, "n_layer must be positive"),
        (|c| c.vocab_size = -1, "vocab_size must be positive"),
        (|c| c.n_head = 3, "not a multiple of n_head"),
        (|c| c.n_embd = 18, "even head dimension"),
        (|c| c.dropout = 0.1, "modded layout has no dropout"),
        (|c| c.dropout = 1.0, "dropout must be in [0, 1)"),
    ];
    for (change, message) in cases {
        let mut config = small(Style::Modded);
        change(&mut config);
        let err = config.validate().unwrap_err();
        assert!(err.contains(message), "{config:?}: {err}");
    }
    let mut odd_heads = small(Style::Classic);
    odd_heads.n_embd = 18;
    assert_eq!(
        odd_heads.validate(),
        Ok(()),
        "Classic has no rotary embedding"
    );
}

#[test]
fn load_names_missing_unexpected_and_misshapen_weights() {
    let config = small(Style::Modded);
    let (_vs, gpt) = build(&config, 13);
    let (_other_vs, other) = build(&config, 14);
    let weights: Vec<(String, Tensor)> = other
        .named_parameters()
        .iter()
        .map(|(n, t)| (n.clone(), t.detach().copy()))
        .collect();
    gpt.load(&weights).unwrap();
    for ((_, a), (_, b)) in gpt.named_parameters().iter().zip(&weights) {
        assert!(a.equal(b));
    }
    let err = |w: Vec<(String, Tensor)>| format!("{:#}", gpt.load(&w).unwrap_err());
    let handles = || -> Vec<(String, Tensor)> {
        weights
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect()
    };
    let zeros = |shape: &[i64]| Tensor::zeros(shape, (Kind::Float, Device::Cpu));
    let mut without = handles();
    without.retain(|(n, _)| n != "transformer.wte.weight");
    assert!(err(without).contains("no transformer.wte.weight (expected shape [37, 20])"));
    let mut extra = handles();
    extra.push(("lm_head.weight".into(), zeros(&[37, 20])));
    assert!(err(extra).contains("unexpected lm_head.weight"));
    let mut misshapen = handles();
    misshapen[2].1 = zeros(&[20, 21]);
    assert!(err(misshapen)
        .contains("transformer.h.0.attn.c_k.weight has shape [20, 21], the model's is [20, 20]"));
    let mut twice = handles();
    twice.push(("transformer.wte.weight".into(), zeros(&[37, 20])));
    assert!(err(twice).contains("transformer.wte.weight given twice"));
}

/// A copy of hf-tiny in a temporary directory, its config.json edited by `config` and its
/// weights by `weights`.
fn hf_copy(
    config: impl FnOnce(&mut serde_json::Value),
    weights: impl FnOnce(&mut Vec<(String, Tensor)>),
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(HF_TINY);
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    config(&mut json);
    std::fs::write(dir.path().join("config.json"), json.to_string()).unwrap();
    let mut tensors = Tensor::read_safetensors(src.join("model.safetensors")).unwrap();
    weights(&mut tensors);
    Tensor::write_safetensors(&tensors, dir.path().join("model.safetensors")).unwrap();
    dir
}

fn hf_error(dir: &Path) -> String {
    let vs = nn::VarStore::new(Device::Cpu);
    format!("{:#}", gpt_weights::from_hf(&vs.root(), dir).unwrap_err())
}

#[test]
fn bad_hugging_face_checkpoints_give_errors() {
    let set = |key: &'static str, value: serde_json::Value| {
        move |c: &mut serde_json::Value| c[key] = value
    };
    let keep = |_: &mut Vec<(String, Tensor)>| {};
    let config_cases = [
        (
            set("activation_function", "relu".into()),
            "activation_function is \"relu\"",
        ),
        (
            set("n_head", 5.into()),
            "n_embd 24 is not a multiple of n_head 5",
        ),
        (
            set("layer_norm_epsilon", 1e-6.into()),
            "layer_norm_epsilon is 0.000001",
        ),
        (set("model_type", "llama".into()), "model_type is \"llama\""),
        (set("n_inner", 100.into()), "n_inner is 100"),
        (
            set("tie_word_embeddings", false.into()),
            "tie_word_embeddings is false",
        ),
        (set("attn_pdrop", 0.2.into()), "one dropout rate"),
        (
            set("scale_attn_by_inverse_layer_idx", true.into()),
            "scaled by 1/√head_dim",
        ),
        (set("n_layer", "two".into()), "not a GPT-2 configuration"),
    ];
    for (edit, message) in config_cases {
        let dir = hf_copy(edit, keep);
        let err = hf_error(dir.path());
        assert!(
            err.contains(message) && err.contains("config.json"),
            "{err}"
        );
    }
    let dir = hf_copy(|c| drop(c.as_object_mut().unwrap().remove("n_layer")), keep);
    assert!(hf_error(dir.path()).contains("missing field `n_layer`"));

    let dir = hf_copy(|_| {}, keep);
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    assert!(hf_error(dir.path()).contains("reading the GPT-2 configuration"));
    let dir = hf_copy(|_| {}, keep);
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    assert!(hf_error(dir.path()).contains("model.safetensors: no such file"));
    let dir = hf_copy(|_| {}, keep);
    std::fs::write(dir.path().join("model.safetensors"), b"not safetensors").unwrap();
    assert!(hf_error(dir.path()).contains("reading the GPT-2 weights"));

    let weight_cases: [(Edit<Weights>, &str); 5] = [
        (
            |w| w.retain(|(n, _)| n != "transformer.h.1.mlp.c_fc.bias"),
            "no transformer.h.1.mlp.c_fc.bias (expected shape [96])",
        ),
        (
            |w| {
                let (_, t) = w
                    .iter_mut()
                    .find(|(n, _)| n == "transformer.wpe.weight")
                    .unwrap();
                *t = Tensor::zeros([17, 24], (Kind::Float, Device::Cpu));
            },
            "transformer.wpe.weight has shape [17, 24], the model's is [16, 24]",
        ),
        (
            |w| {
                w.push((
                    "transformer.h.2.ln_1.weight".into(),
                    Tensor::ones([24], (Kind::Float, Device::Cpu)),
                ))
            },
            "unexpected transformer.h.2.ln_1.weight",
        ),
        (
            |w| {
                w.push((
                    "lm_head.weight".into(),
                    Tensor::zeros([67, 24], (Kind::Float, Device::Cpu)),
                ))
            },
            "lm_head.weight differs from wte.weight",
        ),
        (
            |w| {
                let (_, t) = w
                    .iter_mut()
                    .find(|(n, _)| n.ends_with("h.0.attn.c_attn.weight"))
                    .unwrap();
                *t = Tensor::zeros([72], (Kind::Float, Device::Cpu));
            },
            "transformer.h.0.attn.c_attn.weight has shape [72], expected a Conv1D matrix",
        ),
    ];
    for (edit, message) in weight_cases {
        let dir = hf_copy(|_| {}, edit);
        let err = hf_error(dir.path());
        assert!(
            err.contains(message) && err.contains("model.safetensors"),
            "{err}"
        );
    }
}

#[test]
fn hugging_face_keys_may_omit_the_prefix_and_repeat_the_tied_head() {
    let dir = hf_copy(
        |_| {},
        |w| {
            for (n, _) in w.iter_mut() {
                *n = n.trim_start_matches("transformer.").to_owned();
            }
            let wte = w.iter().find(|(n, _)| n == "wte.weight").unwrap().1.copy();
            w.push(("lm_head.weight".into(), wte));
            w.push((
                "h.0.attn.bias".into(),
                Tensor::ones([1, 1, 16, 16], (Kind::Float, Device::Cpu)),
            ));
        },
    );
    let vs = nn::VarStore::new(Device::Cpu);
    let gpt = gpt_weights::from_hf(&vs.root(), dir.path()).unwrap();
    let vs0 = nn::VarStore::new(Device::Cpu);
    let reference = gpt_weights::from_hf(&vs0.root(), Path::new(HF_TINY)).unwrap();
    let idx = tokens(gpt.config(), 1, 16, 15);
    assert!(gpt
        .forward(&idx, false)
        .equal(&reference.forward(&idx, false)));
}
