//! The language-model task through `pisa run` on a small corpus in PTB's format: epochs
//! are passes of random-length BPTT chunks, the step scales with the chunk's length, a
//! killed run resumes mid-epoch to identical metrics, and bad corpora are located errors.
mod common;

use common::{command, read_metrics, read_summary, run, status, Scratch};
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Writes ptb.{train,valid,test}.txt of random sentences over `vocabulary` words.
fn corpus(dir: &Path, vocabulary: usize, lines: [usize; 3]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let words: Vec<String> = (0..vocabulary).map(|i| format!("w{i}")).collect();
    for (split, n) in ["train", "valid", "test"].into_iter().zip(lines) {
        let text: String = (0..n)
            .map(|_| {
                let len = rng.random_range(3..12);
                let line: Vec<&str> = (0..len)
                    .map(|_| words[rng.random_range(0..vocabulary)].as_str())
                    .collect();
                format!(" {} \n", line.join(" "))
            })
            .collect();
        std::fs::write(dir.join(format!("ptb.{split}.txt")), text).unwrap();
    }
}

fn spec(epochs: usize, checkpoint_every: usize) -> String {
    format!(
        r#"name = "lm"
seed = 3

[data]
kind = "ptb"
path = "ptb"

[model]
kind = "awd_lstm"
layers = 2
emsize = 8
nhid = 12
dropout = 0.3

[train]
workers = 2
batch_size = 4
bptt = 10
epochs = {epochs}
eval_every = "epoch"
checkpoint_every = {checkpoint_every}
clip_norm = 0.25
dtype = "f64"
threads = 1

[optimizer]
name = "sisa"
scheme = 3
beta = 0.999
sigma0 = 0.04
rho = 40.0
gamma = 1.0
mu = 1.2e-6

[schedule]
kind = "step"
milestone_epochs = [2]
factor = 0.5
"#
    )
}

#[test]
fn epochs_are_passes_and_the_step_follows_the_chunk_length() {
    let s = Scratch::new();
    corpus(&s.path().join("ptb"), 40, [120, 30, 30]);
    let file = s.write("lm.toml", &spec(3, 0));
    let data = s.path().to_str().unwrap().to_string();
    run(&file, &s.out(), &["--data-dir", &data]).expect_code(0, "pisa run");
    let dir = s.out().join("lm/default");
    let m = read_metrics(&dir);
    assert_eq!(m.column("epoch"), [0.0, 1.0, 2.0, 3.0], "a row per pass");
    let iterations = m.column("iteration");
    let per_pass: Vec<f64> = iterations.windows(2).map(|w| w[1] - w[0]).collect();
    // ~ 120 lines of ~8 words / 4 streams / ~10 rows a chunk
    assert!(
        per_pass.iter().all(|&n| (10.0..40.0).contains(&n)),
        "{per_pass:?}"
    );
    let sigma = m.column("sigma");
    // σ in force = σ⁰ · bptt / seq_len of the last chunk, halved step (σ doubled) from epoch 2
    assert!(sigma[1] != 0.04 && sigma[3] > 0.06, "{sigma:?}");
    let val = m.column("val_ppl");
    assert!(val[3] < val[0], "the model learns: {val:?}");
    assert!(
        val[0] > 20.0 && val[0] < 80.0,
        "untrained ≈ 41 words: {}",
        val[0]
    );
    let summary = read_summary(&dir);
    assert_eq!(summary["iterations"].as_f64().unwrap(), iterations[3]);
}

#[test]
fn kill_9_mid_epoch_resumes_to_identical_metrics() {
    let s = Scratch::new();
    corpus(&s.path().join("ptb"), 40, [400, 30, 30]);
    let file = s.write("lm.toml", &spec(6, 3));
    let data = s.path().to_str().unwrap().to_string();
    let reference = Scratch::new();
    run(&file, &reference.out(), &["--data-dir", &data]).expect_code(0, "reference run");
    let want = read_metrics(&reference.out().join("lm/default")).numbers();

    let dir = s.out().join("lm/default");
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261201);
    let mut kills = 0;
    for attempt in 0..8 {
        let mut child = command()
            .args([
                "run",
                file.to_str().unwrap(),
                "--resume",
                "--data-dir",
                &data,
            ])
            .args(["--out", s.out().to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(300..900)));
        if attempt < 4 && child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        if dir.join("summary.json").exists() && status(&dir) == "completed" {
            break;
        }
    }
    assert!(kills >= 2, "only {kills} kills landed; lengthen the run");
    assert_eq!(status(&dir), "completed");
    assert_eq!(read_metrics(&dir).numbers(), want, "resumed metrics differ");
}

#[test]
fn an_unknown_word_and_a_missing_split_are_named() {
    let s = Scratch::new();
    let ptb = s.path().join("ptb");
    corpus(&ptb, 20, [50, 10, 10]);
    std::fs::write(ptb.join("ptb.test.txt"), "w1 w2\n w3 zebra w4\n").unwrap();
    let file = s.write("lm.toml", &spec(1, 0));
    let data = s.path().to_str().unwrap().to_string();
    run(&file, &s.out(), &["--data-dir", &data])
        .expect_code(1, "unknown word")
        .expect_stderr(
            &["ptb.test.txt:2", "\"zebra\"", "ptb.train.txt"],
            "unknown word",
        );
    std::fs::remove_file(ptb.join("ptb.train.txt")).unwrap();
    run(&file, &s.out(), &["--data-dir", &data])
        .expect_code(1, "no training split")
        .expect_stderr(&["train.txt", "valid_fraction"], "no training split");
    assert!(!s.out().join("lm/default").exists(), "nothing written");
}
