//! `pisa mixing` end to end: the results folder, determinism across processes, `--runs`,
//! located spec errors (exit 2, nothing written) and `pisa plot` of the folder (Figure 3).
mod common;

use common::*;
use std::ffi::OsStr;
use std::fs;
use std::path::Path;

const SPEC: &str = r#"name = "mix"
seed = 3
workers = [2, 5, 8]
runs = 40

[protocols.AllReduce]
kind = "allreduce"

[protocols."Local Step (m = 3)"]
kind = "local-steps"
m = 3

[protocols.AsyncPS]
kind = "async-ps"
max_delay_rounds = 0.5

[protocols.Slack]
kind = "slack"
gamma = 0.2
"#;

fn mixing(spec: &Path, out: &Path, extra: &[&str]) -> Outcome {
    let mut args: Vec<&OsStr> = vec![
        "mixing".as_ref(),
        spec.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    pisa(args)
}

#[test]
fn writes_a_deterministic_results_folder_and_its_figure() {
    let s = Scratch::new();
    let spec = s.write("mix.toml", SPEC);
    let dir = s.out().join("mix");
    mixing(&spec, &s.out(), &[]).expect_code(0, "pisa mixing");
    assert_eq!(
        entries(&dir),
        ["spec.toml", "t_mix-summary.csv", "t_mix.csv"]
    );
    let runs = fs::read_to_string(dir.join("t_mix.csv")).unwrap();
    assert_eq!(runs.lines().count(), 1 + 4 * 3 * 40);
    assert!(
        runs.starts_with("protocol,n,run,t_mix\nAllReduce,2,0,2\n"),
        "{runs}"
    );
    let summary = fs::read_to_string(dir.join("t_mix-summary.csv")).unwrap();
    for line in [
        "protocol,n,runs,mean,std,min,max,derived",
        "AllReduce,8,40,8.0,0.0,8,8,8",
        "Local Step (m = 3),5,40,15.0,0.0,15,15,15",
        // (0.8)^k ≤ ½ first at k = 4: 4n steps.
        "Slack,5,40,20.0,0.0,20,20,20",
    ] {
        assert!(
            summary.lines().any(|l| l == line),
            "{line} not in\n{summary}"
        );
    }
    let ps: Vec<&str> = summary
        .lines()
        .filter(|l| l.starts_with("AsyncPS,"))
        .collect();
    assert!(
        ps.len() == 3 && ps.iter().all(|l| l.ends_with(',')),
        "no derived value: {ps:?}"
    );

    // Another process, another results root: the same bytes.
    let again = s.path().join("again");
    mixing(&spec, &again, &[]).expect_code(0, "again");
    for file in ["spec.toml", "t_mix.csv", "t_mix-summary.csv"] {
        assert_eq!(
            fs::read(dir.join(file)).unwrap(),
            fs::read(again.join("mix").join(file)).unwrap(),
            "{file}"
        );
    }

    // --runs overrides the spec, and the spec written says so.
    mixing(&spec, &again, &["--runs", "3"]).expect_code(0, "--runs 3");
    let written = fs::read_to_string(again.join("mix/spec.toml")).unwrap();
    assert!(written.contains("runs = 3\n"), "{written}");
    let runs = fs::read_to_string(again.join("mix/t_mix.csv")).unwrap();
    assert_eq!(runs.lines().count(), 1 + 4 * 3 * 3);

    let plotted = pisa(["plot".as_ref(), dir.as_os_str()]);
    plotted.expect_code(0, "pisa plot");
    for file in ["t_mix.png", "t_mix.svg"] {
        assert!(fs::metadata(dir.join(file)).unwrap().len() > 1000, "{file}");
        assert!(plotted.stdout.contains(file));
    }
}

#[test]
fn live_runs_need_ranks() {
    let s = Scratch::new();
    let spec = s.write("mix.toml", SPEC);
    mixing(&spec, &s.out(), &["--live"])
        .expect_code(1, "--live in one process")
        .expect_stderr(&["one worker per MPI rank", "mpirun -np 4"], "--live");
    assert_nothing_written(&s.out(), "--live in one process");
}

#[test]
fn a_bad_spec_is_located_and_writes_nothing() {
    #[rustfmt::skip]
    let cases = [
        (SPEC.replace("gamma = 0.2", "gamma = 1.5"), "mix.toml:19:1: key `protocols.Slack.gamma`", "(0, 1]"),
        (SPEC.replace("\nm = 3\n", "\nm = 3\ngamma = 0.5\n"), "mix.toml:12:1: key `protocols.Local Step (m = 3).gamma`", "takes no `gamma`"),
        (SPEC.replace("kind = \"allreduce\"", "kind = \"all-reduce\""), "mix.toml:7:8: key `protocols.AllReduce.kind`", "unknown variant"),
        (SPEC.replace("runs = 40", "runs = 40\nbogus = 1"), "mix.toml:5:1: key `bogus`", "bogus"),
        (SPEC.replace("[2, 5, 8]", "[2, 1]"), "mix.toml:3:1: key `workers`", "≥ 2"),
        (SPEC.replace("runs = 40", "runs = 40\nmax_time = 4"), "mix.toml:5:1: key `max_time`", "AllReduce with n = 5 did not halve"),
        (SPEC.replace("max_delay_rounds = 0.5", "max_delay_rounds = 1e30"), "mix.toml:15:1: key `protocols.AsyncPS.max_delay_rounds`", "exceeds max_time"),
        (format!("{SPEC}\n[live]\nstep_ms = -1\n"), "mix.toml:22:1: key `live.step_ms`", "positive"),
        (format!("{SPEC}\n[live]\nsteps = 0\n"), "mix.toml:22:1: key `live.steps`", "≥ 1"),
        (format!("{SPEC}\n[live]\nstep = 5\n"), "mix.toml:22:1: key `live.step`", "unknown field"),
        (SPEC.replace("max_delay_rounds = 0.5", ""), "", ""),
    ];
    for (text, at, says) in cases {
        let s = Scratch::new();
        let spec = s.write("mix.toml", &text);
        let outcome = mixing(&spec, &s.out(), &[]);
        if at.is_empty() {
            outcome.expect_code(0, "max_delay_rounds defaults to 0");
            continue;
        }
        outcome.expect_code(2, at).expect_stderr(&[at, says], at);
        assert_nothing_written(&s.out(), at);
    }
}
