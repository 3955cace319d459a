//! GPT pretraining through `pisa run` on small token shards (`tokens` data, `gpt` model):
//! training lowers the validation loss and counts its tokens, the embedding as a player
//! of its own changes nothing when its optimizer is the blocks', random windows are
//! seeded, resume after kill -9 gives identical metrics, and bad keys are located.
mod common;

use common::*;

const ADAMW: &str = "name = \"adamw\"\nlr = 0.003";

/// Runs `text` with its data and returns the run's metrics.
fn metrics(text: &str, run_id: &str) -> Metrics {
    let s = Scratch::new();
    write_token_shards(s.path());
    let file = s.write("gpt.toml", text);
    let data = s.path().to_str().unwrap();
    run(&file, &s.out(), &["--data-dir", data, "--run-id", run_id]).expect_code(0, "run");
    read_metrics(&s.out().join("gpt").join(run_id))
}

#[test]
fn training_lowers_the_validation_loss_and_counts_its_tokens() {
    for style in ["modded", "classic"] {
        let m = metrics(&gpt_spec(style, ADAMW, ""), style);
        let (val, tokens) = (m.column("val_loss"), m.column("tokens"));
        let iterations = m.column("iteration");
        assert_eq!(iterations, vec![0.0, 2.0, 4.0, 6.0]);
        for (it, t) in iterations.iter().zip(&tokens) {
            assert_eq!(
                *t,
                it * 2.0 * 3.0 * 8.0,
                "{style}: m · B · T tokens an iteration"
            );
        }
        assert!(
            val[3] < val[0] - 0.05,
            "{style}: validation loss {val:?} falls"
        );
        assert!(m.column("train_loss").iter().all(|l| l.is_finite()));
    }
}

#[test]
fn an_embedding_player_with_the_blocks_optimizer_trains_as_one() {
    let one = metrics(&gpt_spec("modded", ADAMW, ""), "one");
    let split = format!("{ADAMW}\n\n[optimizer.embedding]\nname = \"adamw\"\nlr = 0.003");
    let two = metrics(&gpt_spec("modded", &split, ""), "two");
    for column in ["train_loss", "val_loss", "tokens"] {
        let (a, b) = (one.column(column), two.column(column));
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() <= 1e-6 * x.abs(),
                "{column}: {a:?} against {b:?}"
            );
        }
    }
    assert_eq!(two.column("blocks_lr")[0], 0.003);
    assert_eq!(two.column("embedding_lr")[0], 0.003);
    // A different optimizer for the embedding changes the run.
    let sgd = format!("{ADAMW}\n\n[optimizer.embedding]\nname = \"sgd\"\nlr = 0.5");
    let other = metrics(&gpt_spec("modded", &sgd, ""), "sgd");
    assert_ne!(other.column("val_loss"), one.column("val_loss"));
}

#[test]
fn random_windows_follow_the_seed() {
    let random = gpt_spec("classic", ADAMW, "order = \"random\"");
    let a = metrics(&random, "a").numbers();
    assert_eq!(a, metrics(&random, "b").numbers(), "same seed, same run");
    let other = random.replace("seed = 3", "seed = 4");
    assert_ne!(
        a,
        metrics(&other, "c").numbers(),
        "another seed, other windows"
    );
    let sequential = metrics(&gpt_spec("classic", ADAMW, ""), "d").numbers();
    assert_ne!(a, sequential);
}

#[test]
fn kill_9_resumes_to_identical_metrics() {
    let s = Scratch::new();
    write_token_shards(s.path());
    let text =
        gpt_spec("modded", ADAMW, "").replace("checkpoint_every = 2", "checkpoint_every = 1");
    let file = s.write(
        "gpt.toml",
        &text.replace("iterations = 6", "iterations = 12"),
    );
    assert_kill_9_resumes(&file, s.path().to_str().unwrap(), "gpt/default");
}

#[test]
fn token_and_gpt_keys_are_checked_and_located() {
    let s = Scratch::new();
    write_token_shards(s.path());
    let data = s.path().to_str().unwrap().to_string();
    let base = gpt_spec("modded", ADAMW, "");
    for (text, key, fragment) in [
        (
            base.replace("val_tokens = 64", "val_tokens = 4000"),
            "data.val_tokens",
            "validation shards hold 400",
        ),
        (
            base.replace("batch_size = 3", "batch_size = 300"),
            "train.batch_size",
            "fewer than the 2 workers",
        ),
        (
            base.replace("kind = \"gpt\"", "kind = \"mlp\""),
            "model.kind",
            "kind = \"gpt\"",
        ),
        (
            base.replace("style = \"modded\"", "preset = \"gpt2_tiny\""),
            "model.preset",
            "gpt2_nano",
        ),
        (
            base.replace("n_head = 2", "n_head = 3"),
            "model.n_head",
            "n_head",
        ),
        (
            base.replace("val_tokens = 64", "val_tokens = 4"),
            "data.val_tokens",
            "block_size 8",
        ),
        (
            format!("{base}\n[optimizer.critic]\nlr = 0.1\n"),
            "optimizer.critic",
            "critic",
        ),
    ] {
        let file = s.write("bad.toml", &text);
        let out = s.path().join("bad-out");
        run(&file, &out, &["--data-dir", &data])
            .expect_code(2, key)
            .expect_stderr(&[key, fragment], key);
        assert!(!out.exists(), "{key}: nothing written");
    }
    let file = s.write(
        "missing.toml",
        &base.replace("path = \"shards\"", "path = \"none\""),
    );
    run(&file, &s.path().join("missing-out"), &["--data-dir", &data])
        .expect_stderr(&["none", "pisa data prepare text"], "a missing folder");
}
