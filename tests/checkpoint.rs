//! Checkpoints and the end-to-end behaviour of the optimizer registry through `pisa run`:
//! a run killed mid-way and resumed from its checkpoint gives the metrics of an
//! uninterrupted run; m workers of b samples equal one worker of m·b for classic
//! optimizers; a run whose iterates stop being finite stops at once as diverged.
mod common;

use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

const LONG: &str = r#"name = "ckpt"
seed = 3

[data]
kind = "least_squares"
samples = 64
dim = 4

[train]
workers = 4
batch_size = 4
iterations = 20000
eval_every = 2000
checkpoint_every = 1000

[optimizer]
"#;

/// Kills a run once its first checkpoint exists, resumes it, and compares every metrics
/// row (wall time aside) with an uninterrupted run of the same spec.
fn resumed_equals_uninterrupted(optimizer: &str) {
    let s = Scratch::new();
    let spec = s.write("spec.toml", &format!("{LONG}{optimizer}\n"));
    let whole = s.path().join("whole");
    run(&spec, &whole, &[]).expect_code(0, "uninterrupted run");

    let out = s.out();
    let mut child = command()
        .args([
            "run".as_ref(),
            spec.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pisa run");
    let checkpointed = || {
        std::fs::read_dir(out.join("ckpt"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("checkpoint.safetensors").exists())
    };
    let start = Instant::now();
    while !checkpointed() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before its first checkpoint was seen");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no checkpoint within a minute"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("SIGKILL the run");
    child.wait().unwrap();
    assert!(
        !out.join("ckpt/default/summary.json").exists(),
        "the run finished before it could be killed; make it longer"
    );
    run(&spec, &out, &["--resume"]).expect_code(0, "resumed run");
    let numbers = |dir: &std::path::Path| read_metrics(dir).numbers();
    let resumed = numbers(&out.join("ckpt/default"));
    assert_eq!(resumed.len(), 11, "rows 0, 2000, …, 20000");
    assert_eq!(resumed, numbers(&whole.join("ckpt/default")), "{optimizer}");
}

#[test]
fn a_killed_classic_run_resumes_to_the_same_metrics() {
    resumed_equals_uninterrupted("name = \"adam\"\nlr = 0.01");
}

#[test]
fn a_killed_sisa_run_resumes_to_the_same_metrics() {
    resumed_equals_uninterrupted(
        "name = \"sisa\"\nscheme = 3\nsigma0 = 8.0\nrho = 2.0\ngamma = 0.999\nk0 = 3",
    );
}

#[test]
fn four_workers_of_32_equal_one_worker_of_128_for_classic_optimizers() {
    let s = Scratch::new();
    write_problem_npz(&s.path().join("problem.npz"), 128, 6);
    let base = |workers: usize| {
        format!(
            "name = \"eq\"\nseed = 5\n[data]\nkind = \"least_squares\"\npath = \"problem.npz\"\n\
             [train]\nworkers = {workers}\niterations = 40\n\
             [optimizer]\nname = \"adam\"\nlr = 0.05\n"
        )
    };
    // Full batches: the 4 blocks of 32 rows are exactly the 128 rows of one worker.
    for (workers, id) in [(4, "four"), (1, "one")] {
        let spec = s.write(&format!("{id}.toml"), &base(workers));
        let data = s.path().to_str().unwrap();
        run(&spec, &s.out(), &["--run-id", id, "--data-dir", data]).expect_code(0, id);
    }
    let four = read_metrics(&s.out().join("eq/four")).column("objective");
    let one = read_metrics(&s.out().join("eq/one")).column("objective");
    assert_eq!(four.len(), 41);
    for (a, b) in four.iter().zip(&one) {
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
    }
    assert!(
        four[40] < 0.5 * four[0],
        "Adam made progress: {} → {}",
        four[0],
        four[40]
    );
}

#[test]
fn a_run_whose_parameters_blow_up_stops_at_once_as_diverged() {
    let s = Scratch::new();
    let spec = s.write(
        "spec.toml",
        "name = \"nan\"\n[data]\nkind = \"least_squares\"\nsamples = 64\ndim = 4\n\
         [train]\nworkers = 4\niterations = 100000\neval_every = 50000\n\
         [optimizer]\nname = \"sgd\"\nlr = 1e3\n",
    );
    run(&spec, &s.out(), &[])
        .expect_code(1, "diverging run")
        .expect_stderr(&["diverged", "lower the learning rate"], "diverging run");
    let dir = s.out().join("nan/default");
    let summary = read_summary(&dir);
    assert_eq!(summary["status"], "diverged");
    let stopped = summary["iterations"].as_u64().unwrap();
    assert!(
        stopped < 1000,
        "stopped at once, not at the next evaluation: {stopped}"
    );
    assert!(!dir.join("checkpoint.safetensors").exists());
}
