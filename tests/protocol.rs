//! Training under a MixML protocol through `pisa run`: SISA under AllReduce is SISA, the
//! protocol's columns are written, a run is deterministic and resumes after kill -9, and a
//! bad `[protocol]` is located.
mod common;

use common::*;

const BASE: &str = r#"name = "mixed"
seed = 3

[data]
kind = "least_squares"
samples = 64
dim = 4

[train]
workers = 4
batch_size = 4
iterations = 60
eval_every = 5

[optimizer]
name = "sisa"
scheme = 3
sigma0 = 8.0
rho = 2.0
"#;

fn metrics_of(spec: &str, id: &str, s: &Scratch) -> Metrics {
    let path = s.write(&format!("{id}.toml"), spec);
    run(&path, &s.out(), &["--run-id", id]).expect_code(0, id);
    read_metrics(&s.out().join("mixed").join(id))
}

#[test]
fn sisa_under_allreduce_is_sisa_and_reports_the_protocol() {
    let s = Scratch::new();
    let plain = metrics_of(BASE, "plain", &s);
    let allreduce = format!("{BASE}\n[protocol]\nkind = \"allreduce\"\n");
    let mixed = metrics_of(&allreduce, "mixed", &s);
    let objective = |m: &Metrics| m.column("objective");
    for (a, b) in objective(&mixed).iter().zip(objective(&plain)) {
        assert!((a - b).abs() <= 1e-12 * b.abs(), "{a} vs {b}");
    }
    // an ADMM node's model is its (2.9) point, which the last AllReduce made everyone's
    let distance = mixed.column("stationary_distance");
    assert!(distance.iter().all(|&d| d == 0.0), "{distance:?}");
    // 4 workers × 4 floats per AllReduce, the last round's still to come
    let up = mixed.column("floats_up");
    assert_eq!(*up.last().unwrap(), 59.0 * 16.0);
    // the same seed, the same numbers
    let again = metrics_of(&allreduce, "again", &s);
    assert_eq!(again.numbers(), mixed.numbers());
}

#[test]
fn a_killed_run_under_async_ring_resumes_to_the_same_metrics() {
    let s = Scratch::new();
    let spec = edit(
        &edit(
            BASE,
            "iterations = 60\neval_every = 5",
            "iterations = 20000\neval_every = 2000\ncheckpoint_every = 1000",
        ),
        "name = \"sisa\"\nscheme = 3\nsigma0 = 8.0\nrho = 2.0",
        "name = \"amsgrad\"\nlr = 0.01",
    );
    let path = s.write(
        "spec.toml",
        &format!("{spec}\n[protocol]\nkind = \"async-ring\"\n"),
    );
    assert_kill_9_resumes(&path, s.path().to_str().unwrap(), "mixed/default");
}

#[test]
fn a_bad_protocol_is_located() {
    let s = Scratch::new();
    let cases = [
        (
            "[protocol]\nkind = \"allreduce\"\nm = 2\n",
            "protocol.m",
            "takes no `m`",
        ),
        (
            "[protocol]\nkind = \"async-ps\"\n",
            "protocol.kind",
            "async-ps is not built",
        ),
        (
            "[protocol]\nkind = \"slack\"\ngamma = 1.5\n",
            "protocol.gamma",
            "(0, 1]",
        ),
        (
            "[protocol]\nkind = \"mesh\"\n",
            "protocol.kind",
            "unknown variant",
        ),
    ];
    for (i, (table, key, message)) in cases.iter().enumerate() {
        let path = s.write(&format!("bad{i}.toml"), &format!("{BASE}\n{table}"));
        run(&path, &s.out(), &[])
            .expect_code(2, table)
            .expect_stderr(&[key, message], table);
    }
    let one = edit(BASE, "workers = 4", "workers = 1");
    let path = s.write(
        "one.toml",
        &format!("{one}\n[protocol]\nkind = \"sync-ring\"\n"),
    );
    run(&path, &s.out(), &[])
        .expect_code(2, "one worker")
        .expect_stderr(&["train.workers", "≥ 2"], "one worker");
    assert_nothing_written(&s.out(), "bad protocols");
}
