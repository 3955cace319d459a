//! GPT fine-tuning on recipes through `pisa run` (`recipes` data, `gpt` model, Table 6):
//! the split and the model are recorded, training lowers the test loss, the similarity is
//! measured at the listed epochs only, a fine-tuned run is a base for another and for
//! `pisa generate`, dropout makes a resumed run no different from an uninterrupted one,
//! and bad keys are located.
mod common;

use common::*;
use std::path::Path;

const SIMILARITY: &str =
    "\n[similarity]\nepochs = [2]\nrecipes = 2\nnum_beams = 2\nmax_new_tokens = 6\n";

#[test]
fn fine_tuning_records_its_split_and_model_and_measures_similarity_when_listed() {
    let s = Scratch::new();
    write_recipes(s.path());
    let file = s.write("ft.toml", &recipes_spec(RECIPES_GPT, SIMILARITY));
    let data = s.path().to_str().unwrap();
    run(&file, &s.out(), &["--data-dir", data]).expect_code(0, "run");
    let dir = s.out().join("ft/default");
    let m = read_metrics(&dir);
    // 16 training recipes in 2 shares of 8: batches of 4, 2 iterations an epoch
    assert_eq!(m.column("iteration"), vec![0.0, 2.0, 4.0, 6.0]);
    let test = m.column("test_loss");
    assert!(test[3] < test[0], "training lowers the test loss: {test:?}");
    let similarity = m.column("similarity");
    assert!(similarity[0].is_nan() && similarity[1].is_nan() && similarity[3].is_nan());
    assert!(
        similarity[2] > 0.0 && similarity[2] <= 100.0,
        "BERTScore F1 in %: {similarity:?}"
    );
    let split: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("split.json")).unwrap()).unwrap();
    assert_eq!(split["train_indices"].as_array().unwrap().len(), 16);
    assert_eq!(split["val_indices"].as_array().unwrap().len(), 4);
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).unwrap()).unwrap();
    // resized to GPT-2's vocabulary and the three added tokens
    assert_eq!(model["vocab_size"], 50260);
    let samples = std::fs::read_to_string(dir.join("samples.md")).unwrap();
    assert!(samples.contains("**Ingredients:**"), "{samples}");

    // the fine-tuned run is a base: for `pisa generate` and for another fine-tuning
    let out = pisa([
        "generate",
        dir.to_str().unwrap(),
        "--prompt",
        "eggs, milk.",
        "--max-new-tokens",
        "5",
    ]);
    out.expect_code(0, "generate");
    assert!(
        out.stdout.starts_with("Ingredients: eggs, milk."),
        "{}",
        out.stdout
    );
    let base = format!("weights = {:?}", dir.to_str().unwrap());
    let again = s.write(
        "again.toml",
        &edit(
            &recipes_spec(&base, ""),
            "name = \"ft\"",
            "name = \"again\"",
        ),
    );
    run(&again, &s.out(), &["--data-dir", data]).expect_code(0, "a run from the fine-tuned run");
    let first = read_metrics(&s.out().join("again/default")).column("test_loss")[0];
    // it starts where the first run ended (the same split: the same seed)
    assert!((first - test[3]).abs() < 1e-5, "{first} vs {}", test[3]);
}

#[test]
fn kill_9_resumes_to_identical_metrics_with_dropout() {
    let s = Scratch::new();
    write_recipes(s.path());
    let file = s.write("ft.toml", &recipes_spec(RECIPES_GPT, ""));
    assert_kill_9_resumes(&file, s.path().to_str().unwrap(), "ft/default");
}

#[test]
fn recipe_keys_are_checked_and_located() {
    let s = Scratch::new();
    write_recipes(s.path());
    let data = s.path().to_str().unwrap();
    let cases = [
        (
            recipes_spec("weights = \"nowhere\"\nn_layer = 2", ""),
            "model.n_layer",
            "comes from the weights",
        ),
        (
            recipes_spec(RECIPES_GPT, "\n[similarity]\nepochs = [2, 9]\n"),
            "similarity.epochs",
            "after the run's last",
        ),
        (
            edit(
                &recipes_spec(RECIPES_GPT, ""),
                "test_fraction = 0.2",
                "test_fraction = 0.2\nsplit = \"s.json\"",
            ),
            "data.test_fraction",
            "not both",
        ),
        (
            edit(
                &recipes_spec(RECIPES_GPT, ""),
                "kind = \"recipes\"",
                "kind = \"tokens\"",
            ),
            "data.max_length",
            "for recipes data",
        ),
    ];
    for (text, key, fragment) in cases {
        let file = s.write("bad.toml", &text);
        run(&file, &s.out(), &["--data-dir", data])
            .expect_code(2, key)
            .expect_stderr(&[key, fragment], key);
    }
    let missing = s.write(
        "missing.toml",
        &recipes_spec("weights = \"/no/such/gpt2\"", ""),
    );
    run(&missing, &s.out(), &["--data-dir", data])
        .expect_code(2, "missing weights")
        .expect_stderr(&["model.weights", "config.json"], "missing weights");
    assert_nothing_written(&s.out(), "bad specs write nothing");
}

#[test]
fn a_hugging_face_checkpoint_is_fine_tuned_with_the_padding_counted() {
    // a random GPT2LMHeadModel saved by transformers (scripts/golden_generate.py): 2 layers,
    // 64 wide, 320 tokens, resized here to the recipes tokenizer's 50,260
    let hf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/generate/hf-gen");
    let s = Scratch::new();
    write_recipes(s.path());
    let text = edit(
        &edit(
            &recipes_spec(&model_line(&hf), ""),
            "epochs = 3",
            "epochs = 1",
        ),
        "test_fraction = 0.2",
        "test_fraction = 0.2\nloss_on_padding = true",
    );
    let file = s.write("hf.toml", &text);
    run(&file, &s.out(), &["--data-dir", s.path().to_str().unwrap()]).expect_code(0, "run");
    let dir = s.out().join("ft/default");
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).unwrap()).unwrap();
    assert_eq!(
        (
            &model["style"],
            &model["n_layer"],
            &model["vocab_size"],
            &model["dropout"]
        ),
        (&"classic".into(), &2.into(), &50260.into(), &0.1.into())
    );
    let test = read_metrics(&dir).column("test_loss");
    // with the pads counted the loss is over every position, and training lowers it
    assert!(test[0].is_finite() && test[1] < test[0], "{test:?}");
    // a classic GPT-2's context is its learned positions
    let line = model_line(&hf);
    let longer = s.write(
        "longer.toml",
        &edit(&text, &line, &format!("{line}\nblock_size = 512")),
    );
    run(
        &longer,
        &s.out(),
        &["--data-dir", s.path().to_str().unwrap()],
    )
    .expect_code(2, "block_size of a classic GPT")
    .expect_stderr(&["model.block_size", "learned positions"], "block_size");
}

fn model_line(hf: &Path) -> String {
    format!("weights = {:?}", hf.to_str().unwrap())
}
