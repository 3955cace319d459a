//! End-to-end tests of the `pisa` command line: spec errors, data files, determinism,
//! results folders and resumable sweeps. Every test works in its own temporary folder.
mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Bad specs: exit 2, `<file>:<line>:<col>: key `<key>`: <message>`, nothing written.
// ---------------------------------------------------------------------------------------

struct BadSpec {
    case: &'static str,
    spec: String,
    /// Line the error must point at; `None` where the key is absent from the file.
    line: Option<usize>,
    /// The dotted key the error must name; `None` for TOML syntax errors.
    key: Option<&'static str>,
    /// A fragment of the message.
    says: &'static str,
}

/// One row per bad spec: (case, spec text, line, key, message fragment).
#[rustfmt::skip]
fn bad_spec_cases() -> Vec<BadSpec> {
    let b = BASE_SPEC;
    let pisa = edit(b, "name = \"sisa\"\nscheme = 3\n", "name = \"pisa\"\n");
    let case = |case, spec: String, line, key, says| BadSpec { case, spec, line, key, says };
    vec![
        case("malformed TOML", edit(b, "[train]", "[train"), Some(9), None, "expected `]`"),
        case("unknown top-level key", edit(b, "seed = 7\n", "seed = 7\nbogus = 1\n"), Some(3), Some("bogus"), "bogus"),
        case("unknown key in [optimizer]", format!("{b}bogus = 1\n"), Some(17), Some("optimizer.bogus"), "bogus"),
        case("wrong type", edit(b, "sigma0 = 16.0", "sigma0 = \"big\""), Some(16), Some("optimizer.sigma0"), "big"),
        case("sigma0 = 0", edit(b, "sigma0 = 16.0", "sigma0 = 0"), Some(16), Some("optimizer.sigma0"), "sigma0"),
        case("sigma0 < 0", edit(b, "sigma0 = 16.0", "sigma0 = -1.0"), Some(16), Some("optimizer.sigma0"), "sigma0"),
        case("gamma > 1", format!("{b}gamma = 1.5\n"), Some(17), Some("optimizer.gamma"), "1.5"),
        case("k0 = 0", format!("{b}k0 = 0\n"), Some(17), Some("optimizer.k0"), "0"),
        case("workers = 0", edit(b, "workers = 4", "workers = 0"), Some(10), Some("train.workers"), "workers"),
        case("iterations = 0", edit(b, "iterations = 30", "iterations = 0"), Some(11), Some("train.iterations"), "iterations"),
        case("samples not a multiple of workers", edit(b, "samples = 64", "samples = 66"), Some(6), Some("data.samples"), "multiple"),
        // An absent key is located at its table, [optimizer].
        case("sisa without scheme", edit(b, "scheme = 3\n", ""), Some(13), Some("optimizer.scheme"), "needs `scheme`"),
        case("scheme on pisa", edit(b, "name = \"sisa\"", "name = \"pisa\""), Some(15), Some("optimizer.scheme"), "`scheme` is for sisa"),
        case("precondition on sisa", format!("{b}precondition = \"hessian\"\n"), Some(17), Some("optimizer.precondition"), "`precondition` is for pisa"),
        case("beta on pisa", format!("{pisa}beta = 0.9\n"), Some(16), Some("optimizer.beta"), "`beta` is for"),
        case("missing sigma0", edit(b, "sigma0 = 16.0\n", ""), Some(13), Some("optimizer.sigma0"), "sigma0"),
        case("unknown optimizer", edit(b, "name = \"sisa\"", "name = \"adamx\""), Some(14), Some("optimizer.name"), "adamx"),
        case("key of another optimizer", edit(b, "name = \"sisa\"\nscheme = 3\nsigma0 = 16.0", "name = \"adam\"\nbeta1 = 0.9\nsigma0 = 16.0"), Some(16), Some("optimizer.sigma0"), "`sigma0` is for"),
        case("missing [train] iterations", edit(b, "iterations = 30\n", ""), Some(9), Some("train"), "iterations"),
        case("unknown data kind", edit(b, "least_squares", "images"), Some(5), Some("data.kind"), "images"),
        case("data path and samples", edit(b, "dim = 4", "dim = 4\npath = \"x.npz\""), Some(8), Some("data.path"), "not both"),
        case("bad device", edit(b, "iterations = 30", "iterations = 30\ndevice = \"gpu\""), Some(12), Some("train.device"), "gpu"),
        case("name that is not a folder name", edit(b, "cli-test", "../up"), Some(1), Some("name"), "../up"),
    ]
}

#[test]
fn bad_specs_exit_2_point_at_the_line_and_write_nothing() {
    for c in bad_spec_cases() {
        let s = Scratch::new();
        let spec = s.write("bad.toml", &c.spec);
        let o = run(&spec, &s.out(), &[]);
        let ctx = format!("case `{}`", c.case);
        o.expect_code(2, &ctx);
        let file = spec.display().to_string();
        match c.line {
            Some(line) => o.expect_stderr(&[&format!("{file}:{line}:")], &ctx),
            None => o.expect_stderr(&[&format!("{file}:")], &ctx),
        };
        if let Some(key) = c.key {
            o.expect_stderr(&[&format!("key `{key}`: ")], &ctx);
        }
        o.expect_stderr(&[c.says], &ctx);
        assert_nothing_written(&s.out(), &ctx);
    }
}

#[test]
fn sweep_rejects_bad_specs_the_same_way() {
    // The same checks guard `pisa sweep` (spot-check two cases).
    for c in bad_spec_cases()
        .into_iter()
        .filter(|c| c.case == "gamma > 1" || c.case == "malformed TOML")
    {
        let s = Scratch::new();
        let spec = s.write(
            "bad.toml",
            &format!("{}\n[sweep]\n\"optimizer.sigma0\" = [8.0]\n", c.spec),
        );
        let ctx = format!("sweep, case `{}`", c.case);
        let o = sweep(&spec, &s.out(), &[]);
        o.expect_code(2, &ctx)
            .expect_stderr(&[&format!("{}:{}:", spec.display(), c.line.unwrap())], &ctx);
        assert_nothing_written(&s.out(), &ctx);
    }
}

#[test]
fn bad_set_arguments_exit_2_and_name_the_set() {
    // (case, --set argument, what stderr must contain)
    #[rustfmt::skip]
    let cases: &[(&str, &str, &[&str])] = &[
        ("unknown key", "optimizer.bogus=1", &["--set optimizer.bogus=1", "key `optimizer.bogus`"]),
        ("bad value", "optimizer.sigma0=-1", &["--set optimizer.sigma0=-1", "key `optimizer.sigma0`"]),
        ("wrong type", "optimizer.sigma0=big", &["--set optimizer.sigma0=", "key `optimizer.sigma0`", "big"]),
        ("gamma out of range", "optimizer.gamma=2", &["--set optimizer.gamma=2", "key `optimizer.gamma`"]),
        ("value used as a table", "name.x=1", &["--set name.x=1", "key `name.x`"]),
        // Rejected by clap while parsing the arguments (its usage errors exit 2 too).
        ("no `=`", "novalue", &["--set", "novalue"]),
        ("empty key segment", "optimizer..sigma0=1", &["--set", "optimizer..sigma0"]),
    ];
    for (case, arg, says) in cases {
        let s = Scratch::new();
        let spec = s.write("spec.toml", BASE_SPEC);
        let ctx = format!("--set case `{case}`");
        run(&spec, &s.out(), &["--set", arg])
            .expect_code(2, &ctx)
            .expect_stderr(says, &ctx);
        assert_nothing_written(&s.out(), &ctx);
    }
}

#[test]
fn sweep_without_a_sweep_table_or_with_a_bad_grid_exits_2() {
    let s = Scratch::new();
    let spec = s.write("nogrid.toml", BASE_SPEC);
    sweep(&spec, &s.out(), &[])
        .expect_code(2, "no [sweep]")
        .expect_stderr(&[&spec.display().to_string(), "key `sweep`"], "no [sweep]");

    let spec = s.write(
        "scalar.toml",
        &format!("{BASE_SPEC}\n[sweep]\n\"optimizer.sigma0\" = 3.0\n"),
    );
    sweep(&spec, &s.out(), &[])
        .expect_code(2, "scalar grid")
        .expect_stderr(
            &[
                &format!("{}:19:", spec.display()),
                "key `sweep.optimizer.sigma0`",
            ],
            "scalar grid",
        );

    // A grid value that makes a bad spec stops the whole sweep before any run starts.
    let spec = s.write(
        "gamma.toml",
        &format!("{BASE_SPEC}\n[sweep]\n\"optimizer.gamma\" = [0.5, 1.5]\n"),
    );
    sweep(&spec, &s.out(), &[])
        .expect_code(2, "bad grid value")
        .expect_stderr(&["optimizer.gamma", "1.5"], "bad grid value");
    assert_nothing_written(&s.out(), "bad sweeps");
}

// ---------------------------------------------------------------------------------------
// Data files.
// ---------------------------------------------------------------------------------------

#[test]
fn missing_data_file_exits_1_names_the_path_and_its_arrays() {
    let s = Scratch::new();
    let spec = s.write("spec.toml", &npz_spec("nope.npz"));
    let data = s.path().join("data-here");
    let o = run(&spec, &s.out(), &["--data-dir", data.to_str().unwrap()]);
    let full = data.join("nope.npz").display().to_string();
    o.expect_code(1, "missing data")
        .expect_stderr(&[&full, "A (N x d)", "b (N)"], "missing data");
    assert_nothing_written(&s.out(), "missing data");
}

#[test]
fn npz_without_the_right_arrays_exits_1() {
    let s = Scratch::new();
    let spec = s.write("spec.toml", &npz_spec("wrong.npz"));
    let a = tch::Tensor::ones([64, 4], (tch::Kind::Double, tch::Device::Cpu));
    tch::Tensor::write_npz(
        &[
            ("X", &a),
            ("b", &a.sum_dim_intlist(1, false, tch::Kind::Double)),
        ],
        s.path().join("wrong.npz"),
    )
    .unwrap();
    run(&spec, &s.out(), &["--data-dir", s.path().to_str().unwrap()])
        .expect_code(1, "no array A")
        .expect_stderr(&["wrong.npz", "`A`", "X"], "no array A");
    assert_nothing_written(&s.out(), "no array A");
}

#[test]
fn reads_an_npz_from_the_data_dir() {
    let s = Scratch::new();
    let data = s.path().join("data");
    fs::create_dir(&data).unwrap();
    write_problem_npz(&data.join("ls.npz"), 64, 4);
    let spec = s.write(
        "spec.toml",
        &edit(&npz_spec("ls.npz"), "iterations = 30", "iterations = 40"),
    );
    run(&spec, &s.out(), &["--data-dir", data.to_str().unwrap()]).expect_code(0, "npz run");

    let dir = s.run_dir("default");
    assert_whole_run(&dir);
    let m = read_metrics(&dir);
    // the task's metrics, then what SISA reports: σ and ρ in force and the floats its
    // m = 4 workers sent up and received (P = 4 per worker and iteration)
    assert_eq!(
        m.header,
        [
            "epoch",
            "iteration",
            "objective",
            "gap",
            "sigma",
            "rho",
            "floats_up",
            "floats_down",
            "wall_s"
        ]
    );
    assert_eq!(
        m.rows.len(),
        40 + 1,
        "row 0 (the initial point) and one per iteration"
    );
    assert_eq!(m.column("floats_up").last(), Some(&(40.0 * 4.0 * 4.0)));
    assert_eq!(m.column("floats_down")[0], 0.0);
    let iterations: Vec<f64> = m.column("iteration");
    assert_eq!(iterations, (0..=40).map(f64::from).collect::<Vec<_>>());
    // Full batches: an epoch is one iteration.
    assert_eq!(m.column("epoch"), iterations);
    let gap = m.column("gap");
    assert!(
        gap.iter().all(|g| g.is_finite() && *g >= -1e-9),
        "gap {gap:?}"
    );
    assert!(
        gap[40] < gap[0] / 10.0,
        "the gap should shrink: first {} last {}",
        gap[0],
        gap[40]
    );
    assert_eq!(status(&dir), "completed");
    let spec = read_spec(&dir);
    assert_eq!(
        toml_get(&spec, "data.path").and_then(|v| v.as_str()),
        Some("ls.npz")
    );
    assert!(
        toml_get(&spec, "data.noise").is_none(),
        "noise belongs to generated data only"
    );
}

#[test]
fn eval_every_thins_the_rows_but_keeps_the_last() {
    let s = Scratch::new();
    let spec = s.write(
        "spec.toml",
        &edit(
            BASE_SPEC,
            "iterations = 30",
            "iterations = 30\neval_every = 7",
        ),
    );
    run(&spec, &s.out(), &[]).expect_code(0, "eval_every = 7");
    let m = read_metrics(&s.run_dir("default"));
    assert_eq!(m.column("iteration"), [0.0, 7.0, 14.0, 21.0, 28.0, 30.0]);
    let summary = read_summary(&s.run_dir("default"));
    assert_eq!(summary["iterations"], 30);
    assert_eq!(
        summary["last"]["gap"].as_f64(),
        m.column("gap").last().copied(),
        "summary.last is the last row"
    );
}

#[test]
fn data_dir_comes_from_pisa_data_dir_then_from_dot_data() {
    let s = Scratch::new();
    let spec = s.write("spec.toml", &npz_spec("ls.npz"));
    let elsewhere = s.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    write_problem_npz(&elsewhere.join("ls.npz"), 64, 4);

    let env = finish(
        command()
            .args([
                "run".as_ref(),
                spec.as_os_str(),
                "--out".as_ref(),
                s.out().as_os_str(),
                "--run-id".as_ref(),
                "env".as_ref(),
            ])
            .env("PISA_DATA_DIR", &elsewhere),
    );
    env.expect_code(0, "PISA_DATA_DIR");

    // Without either, ./data relative to the working directory.
    fs::create_dir(s.path().join("data")).unwrap();
    fs::copy(elsewhere.join("ls.npz"), s.path().join("data/ls.npz")).unwrap();
    let cwd = finish(command().current_dir(s.path()).args([
        "run",
        "spec.toml",
        "--out",
        "out",
        "--run-id",
        "cwd",
    ]));
    cwd.expect_code(0, "./data");
    assert_eq!(
        read_metrics(&s.run_dir("env")).numbers(),
        read_metrics(&s.run_dir("cwd")).numbers()
    );
}

// ---------------------------------------------------------------------------------------
// Determinism.
// ---------------------------------------------------------------------------------------

/// Runs `spec_text` into a fresh --out and returns its metrics.
fn metrics_of(s: &Scratch, label: &str, spec_text: &str, extra: &[&str]) -> Metrics {
    let spec = s.write(&format!("{label}.toml"), spec_text);
    let out = s.path().join(format!("out-{label}"));
    let mut args = vec!["--data-dir", s.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&spec, &out, &args).expect_code(0, label);
    read_metrics(&out.join(NAME).join("default"))
}

#[test]
fn full_batch_runs_are_reproducible() {
    let s = Scratch::new();
    let one = metrics_of(&s, "one", BASE_SPEC, &[]);
    let two = metrics_of(&s, "two", BASE_SPEC, &[]);
    assert_eq!(one.numbers(), two.numbers());
    // PISA with the Hessian (4.1) too.
    let pisa = edit(
        BASE_SPEC,
        "name = \"sisa\"\nscheme = 3",
        "name = \"pisa\"\nprecondition = \"hessian\"",
    );
    assert_eq!(
        metrics_of(&s, "h1", &pisa, &[]).numbers(),
        metrics_of(&s, "h2", &pisa, &[]).numbers()
    );
}

#[test]
fn mini_batch_runs_are_reproducible_and_depend_on_the_seed() {
    let s = Scratch::new();
    write_problem_npz(&s.path().join("ls.npz"), 64, 4);
    // The data come from a file, so the seed only decides the mini-batches B_i.
    let full = npz_spec("ls.npz");
    let batched = edit(&full, "iterations = 30", "iterations = 30\nbatch_size = 4");
    let other_seed = edit(&batched, "seed = 7", "seed = 8");

    let a = metrics_of(&s, "a", &batched, &[]);
    let b = metrics_of(&s, "b", &batched, &[]);
    assert_eq!(
        a.numbers(),
        b.numbers(),
        "same seed, same batches, same numbers"
    );
    let c = metrics_of(&s, "c", &other_seed, &[]);
    assert_eq!(
        a.numbers()[0],
        c.numbers()[0],
        "the initial point does not depend on the seed"
    );
    assert_ne!(
        a.numbers()[1..],
        c.numbers()[1..],
        "another seed should draw other mini-batches"
    );

    // Full batch: nothing is random once the data are fixed.
    let f7 = metrics_of(&s, "f7", &full, &[]);
    let f8 = metrics_of(&s, "f8", &edit(&full, "seed = 7", "seed = 8"), &[]);
    assert_eq!(
        f7.numbers(),
        f8.numbers(),
        "full batch with file data must not depend on the seed"
    );
}

#[test]
fn a_sweep_point_matches_the_same_single_run() {
    let s = Scratch::new();
    let spec = s.write(
        "spec.toml",
        &format!("{BASE_SPEC}\n[sweep]\n\"optimizer.sigma0\" = [8.0, 32.0]\n"),
    );
    sweep(&spec, &s.out(), &["--jobs", "2"]).expect_code(0, "sweep");
    let single = s.path().join("single");
    run(&spec, &single, &["--set", "optimizer.sigma0=32.0"]).expect_code(0, "run");
    let swept = read_metrics(&s.run_dir("sigma0=32.0"));
    let alone = read_metrics(&single.join(NAME).join("sigma0=32.0"));
    assert_eq!(swept.numbers(), alone.numbers());
    assert_ne!(
        swept.numbers(),
        read_metrics(&s.run_dir("sigma0=8.0")).numbers()
    );
    let point = &read_summary(&s.run_dir("sigma0=32.0"))["point"];
    assert_eq!(
        point["optimizer.sigma0"].as_f64(),
        Some(32.0),
        "summary.point: {point}"
    );
}

// ---------------------------------------------------------------------------------------
// Results folders.
// ---------------------------------------------------------------------------------------

#[test]
fn a_finished_run_is_never_overwritten() {
    let s = Scratch::new();
    let spec = s.write("spec.toml", BASE_SPEC);
    run(&spec, &s.out(), &[]).expect_code(0, "first run");
    let dir = s.run_dir("default");
    assert_whole_run(&dir);
    let before = snapshot(&s.out());

    let again = run(&spec, &s.out(), &[]);
    assert_ne!(
        again.code,
        0,
        "a second run into {} must fail",
        dir.display()
    );
    again.expect_stderr(&[&dir.display().to_string(), "already"], "second run");
    assert_eq!(
        snapshot(&s.out()),
        before,
        "the first run's files must be untouched (bytes and mtimes), with no leftovers"
    );
}

#[test]
fn set_names_the_run_folder_and_lands_in_its_spec() {
    let s = Scratch::new();
    let spec = s.write("spec.toml", BASE_SPEC);
    run(&spec, &s.out(), &["--set", "optimizer.sigma0=32"]).expect_code(0, "--set");
    assert_eq!(entries(&s.out().join(NAME)), ["sigma0=32"]);
    let dir = s.run_dir("sigma0=32");
    assert_whole_run(&dir);
    let resolved = read_spec(&dir);
    assert_eq!(
        toml_get(&resolved, "optimizer.sigma0"),
        Some(&toml::Value::Float(32.0))
    );

    // Two overrides, one of them a bare word; --run-id wins over the derived name.
    run(
        &spec,
        &s.out(),
        &["--set", "optimizer.k0=auto", "--set", "optimizer.gamma=0.5"],
    )
    .expect_code(0, "two --set");
    let dir = s.run_dir("k0=auto,gamma=0.5");
    assert_eq!(
        read_summary(&dir)["k0"].as_u64(),
        Some(69),
        "rule (A.1) for gamma = 0.5"
    );
    run(
        &spec,
        &s.out(),
        &["--set", "optimizer.rho=2", "--run-id", "mine"],
    )
    .expect_code(0, "--run-id");
    assert_eq!(
        toml_get(&read_spec(&s.run_dir("mine")), "optimizer.rho"),
        Some(&toml::Value::Float(2.0))
    );
}

#[test]
fn resolved_spec_has_every_default_written_out() {
    let s = Scratch::new();
    let spec = s.write("spec.toml", BASE_SPEC);
    run(&spec, &s.out(), &[]).expect_code(0, "sisa");
    let resolved = read_spec(&s.run_dir("default"));
    let expect = [
        ("seed", toml::Value::Integer(7)),
        ("data.noise", toml::Value::Float(0.1)),
        ("train.batch_size", toml::Value::Integer(0)),
        ("train.eval_every", toml::Value::Integer(1)),
        ("train.dtype", "f64".into()),
        ("train.device", "cpu".into()),
        ("optimizer.rho", toml::Value::Float(1.0)),
        ("optimizer.gamma", toml::Value::Float(0.99)),
        ("optimizer.k0", toml::Value::Integer(1)),
        ("optimizer.beta", toml::Value::Float(0.9)),
        ("optimizer.eta", toml::Value::Float(1e8)),
        ("optimizer.lambda", toml::Value::Float(0.0)),
        ("optimizer.mu", toml::Value::Float(0.0)),
    ];
    for (key, value) in expect {
        assert_eq!(
            toml_get(&resolved, key),
            Some(&value),
            "resolved sisa spec, key {key}"
        );
    }

    // PISA: precondition defaults to identity; SISA's beta/eta do not appear.
    let pisa = s.write(
        "pisa.toml",
        &edit(BASE_SPEC, "name = \"sisa\"\nscheme = 3", "name = \"pisa\""),
    );
    run(&pisa, &s.out(), &["--run-id", "pisa"]).expect_code(0, "pisa");
    let resolved = read_spec(&s.run_dir("pisa"));
    assert_eq!(
        toml_get(&resolved, "optimizer.precondition"),
        Some(&"identity".into())
    );
    for key in ["optimizer.beta", "optimizer.eta", "optimizer.scheme"] {
        assert_eq!(
            toml_get(&resolved, key),
            None,
            "resolved pisa spec has {key}"
        );
    }

    // The resolved spec is itself a valid spec that reproduces the run.
    let copy = s.write(
        "copy.toml",
        &fs::read_to_string(s.run_dir("default").join("spec.toml")).unwrap(),
    );
    let again = s.path().join("again");
    run(&copy, &again, &[]).expect_code(0, "resolved spec");
    assert_eq!(
        read_metrics(&again.join(NAME).join("default")).numbers(),
        read_metrics(&s.run_dir("default")).numbers()
    );
}

/// PISA with Q = I, a tiny constant σ and ρ = 0 takes steps 1/σ = 100 times the gradient:
/// the iterates blow up to infinity in about 60 iterations.
fn diverging_spec() -> String {
    let s = edit(
        BASE_SPEC,
        "name = \"sisa\"\nscheme = 3\nsigma0 = 16.0",
        "name = \"pisa\"\nsigma0 = 0.01\nrho = 0.0\ngamma = 1.0",
    );
    edit(&s, "iterations = 30", "iterations = 200")
}

#[test]
fn a_diverging_run_is_recorded_as_diverged() {
    let s = Scratch::new();
    let spec = s.write("spec.toml", &diverging_spec());
    let o = run(&spec, &s.out(), &[]);
    o.expect_code(1, "diverging run")
        .expect_stderr(&["diverged"], "diverging run");

    let dir = s.run_dir("default");
    assert_eq!(
        entries(&s.out().join(NAME)),
        ["default"],
        "no staging folder left behind"
    );
    assert_whole_run(&dir);
    let summary = read_summary(&dir);
    assert_eq!(summary["status"], "diverged");
    let stopped = summary["iterations"].as_u64().unwrap() as usize;
    assert!(
        stopped < 200,
        "stops at the first non-finite value, not after {stopped}"
    );
    assert!(
        summary["error"].as_str().unwrap().contains("sigma0"),
        "the error suggests a remedy: {summary}"
    );
    let m = read_metrics(&dir);
    assert_eq!(m.rows.len(), stopped + 1);
    let objective = m.column("objective");
    assert!(objective[..stopped].iter().all(|v| v.is_finite()));
    assert!(
        !objective[stopped].is_finite(),
        "the last row is the non-finite one: {}",
        objective[stopped]
    );
}

// ---------------------------------------------------------------------------------------
// Sweeps: resumable, never mixing runs from different specs.
// ---------------------------------------------------------------------------------------

const GRID: [&str; 3] = ["sigma0=8.0", "sigma0=16.0", "sigma0=32.0"];

fn sweep_spec(base: &str) -> String {
    format!("{base}\n[sweep]\n\"optimizer.sigma0\" = [8.0, 16.0, 32.0]\n")
}

#[test]
fn sweep_resume_keeps_finished_runs_and_redoes_the_rest() {
    let s = Scratch::new();
    let spec = s.write("spec.toml", &sweep_spec(BASE_SPEC));
    sweep(&spec, &s.out(), &[]).expect_code(0, "first sweep");
    let root = s.out().join(NAME);
    let mut grid: Vec<String> = GRID.iter().map(|s| s.to_string()).collect();
    grid.sort();
    assert_eq!(entries(&root), grid);
    let original: Vec<Metrics> = GRID.iter().map(|id| read_metrics(&root.join(id))).collect();

    let [kept, deleted, failed] = GRID.map(|id| root.join(id));
    let kept_before = snapshot(&kept);
    let kept_dir_mtime = fs::metadata(&kept).unwrap().modified().unwrap();
    fs::remove_dir_all(&deleted).unwrap();
    let summary = fs::read_to_string(failed.join("summary.json")).unwrap();
    fs::write(
        failed.join("summary.json"),
        edit(
            &summary,
            "\"status\": \"completed\"",
            "\"status\": \"failed\"",
        ),
    )
    .unwrap();
    let stale = root.join(".sigma0=8.0.partial-999999");
    fs::create_dir(&stale).unwrap();
    fs::write(stale.join("metrics.csv"), "iteration\n").unwrap();

    let o = sweep(&spec, &s.out(), &[]);
    o.expect_code(0, "resumed sweep");
    assert_eq!(
        snapshot(&kept),
        kept_before,
        "the finished run must be left alone (bytes and mtimes)"
    );
    assert_eq!(
        fs::metadata(&kept).unwrap().modified().unwrap(),
        kept_dir_mtime
    );
    assert!(
        !stale.exists(),
        "the stale staging folder of a dead process must be removed"
    );
    for (dir, before) in [(&deleted, &original[1]), (&failed, &original[2])] {
        assert_whole_run(dir);
        assert_eq!(
            status(dir),
            "completed",
            "{} should be run again",
            dir.display()
        );
        assert_eq!(
            read_metrics(dir).numbers(),
            before.numbers(),
            "{} reruns to the same numbers",
            dir.display()
        );
    }
    assert_eq!(
        entries(&root),
        grid,
        "exactly the grid's runs, nothing hidden left over"
    );

    // A third pass has nothing to do and touches nothing.
    let all = snapshot(&s.out());
    sweep(&spec, &s.out(), &[]).expect_code(0, "third sweep");
    assert_eq!(snapshot(&s.out()), all);
}

#[test]
fn sweep_resumes_after_being_killed() {
    let s = Scratch::new();
    // About a second per run here; --jobs 1 runs them one after another.
    let slow = edit(
        BASE_SPEC,
        "iterations = 30",
        "iterations = 8000\neval_every = 100",
    );
    let spec = s.write("spec.toml", &sweep_spec(&slow));
    let root = s.out().join(NAME);
    let mut child = command()
        .args([
            "sweep".as_ref(),
            spec.as_os_str(),
            "--out".as_ref(),
            s.out().as_os_str(),
            "--jobs".as_ref(),
            "1".as_ref(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pisa sweep");

    let finished = |root: &Path| -> Vec<&str> {
        GRID.into_iter()
            .filter(|id| root.join(id).join("summary.json").exists())
            .collect()
    };
    let start = Instant::now();
    while finished(&root).is_empty() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the sweep ended ({status}) before any run finished");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no run finished within a minute"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL the sweep");
    child.wait().unwrap(); // reap it, so that its pid is gone from /proc
    let done = finished(&root);
    assert!(
        done.len() < GRID.len(),
        "the sweep finished before it could be killed; make the runs longer"
    );

    // Only whole runs are visible; the one being written was in a hidden staging folder.
    for id in entries(&root).iter().filter(|n| !n.starts_with('.')) {
        assert_whole_run(&root.join(id));
    }
    let before: Vec<_> = done.iter().map(|id| snapshot(&root.join(id))).collect();

    let o = sweep(&spec, &s.out(), &["--jobs", "1"]);
    o.expect_code(0, "resumed sweep");
    o.expect_stderr(
        &[&format!("{} already finished", done.len())],
        "resumed sweep",
    );
    for id in GRID {
        assert_eq!(status(&root.join(id)), "completed", "{id}");
        assert_eq!(
            read_metrics(&root.join(id)).rows.len(),
            8000 / 100 + 1,
            "{id}"
        );
    }
    for (id, before) in done.iter().zip(before) {
        assert_eq!(
            snapshot(&root.join(id)),
            before,
            "{id}, finished before the kill, must be untouched"
        );
    }
    assert!(
        entries(&root).iter().all(|n| !n.starts_with('.')),
        "staging left: {:?}",
        entries(&root)
    );
}

#[test]
fn sweep_refuses_a_finished_run_from_a_different_spec() {
    let s = Scratch::new();
    let spec = s.write("spec.toml", &sweep_spec(BASE_SPEC));
    sweep(&spec, &s.out(), &[]).expect_code(0, "first sweep");
    let before = snapshot(&s.out());

    // Changing what decides the numbers (rho) makes the old runs foreign to this sweep.
    s.write("spec.toml", &sweep_spec(&format!("{BASE_SPEC}rho = 2.0\n")));
    let o = sweep(&spec, &s.out(), &[]);
    assert_ne!(
        o.code, 0,
        "a sweep over runs from another spec must fail:\n{}",
        o.stderr
    );
    let named = GRID
        .iter()
        .any(|id| o.stderr.contains(&s.run_dir(id).display().to_string()));
    assert!(named, "the error names the folder:\n{}", o.stderr);
    o.expect_stderr(&["different spec"], "foreign runs");
    assert_eq!(snapshot(&s.out()), before, "nothing is replaced or added");

    // The same goes for a --set that changes the numbers.
    s.write("spec.toml", &sweep_spec(BASE_SPEC));
    let o = sweep(&spec, &s.out(), &["--set", "optimizer.rho=2.0"]);
    assert_ne!(
        o.code, 0,
        "a --set that changes rho must not reuse the runs:\n{}",
        o.stderr
    );
    assert_eq!(snapshot(&s.out()), before);

    // Writing a default out explicitly changes nothing: the sweep has nothing to do.
    s.write("spec.toml", &sweep_spec(&format!("{BASE_SPEC}rho = 1.0\n")));
    sweep(&spec, &s.out(), &[]).expect_code(0, "same spec, defaults written out");
    assert_eq!(snapshot(&s.out()), before);
}

// ---------------------------------------------------------------------------------------
// Help.
// ---------------------------------------------------------------------------------------

#[test]
fn help_works_for_every_command() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["--help"], &["run", "sweep", "plot"]),
        (
            &["run", "--help"],
            &["--out", "--set", "--run-id", "--data-dir", "<SPEC>"],
        ),
        (
            &["sweep", "--help"],
            &["--out", "--set", "--jobs", "--data-dir", "<SPEC>"],
        ),
        (&["plot", "--help"], &["<RESULTS_DIR>"]),
    ];
    for (args, mentions) in cases {
        let ctx = format!("pisa {}", args.join(" "));
        let o = pisa(*args);
        o.expect_code(0, &ctx);
        for m in *mentions {
            assert!(
                o.stdout.contains(m),
                "{ctx}: help lacks {m:?}:\n{}",
                o.stdout
            );
        }
    }
    pisa(["--version"]).expect_code(0, "--version");
    let o = pisa(["frobnicate"]);
    o.expect_code(2, "unknown subcommand");
}

// ---------------------------------------------------------------------------------------
// Known bugs in src/ (see the report); `cargo test -- --ignored` runs them.
// ---------------------------------------------------------------------------------------

#[test]

fn a_diverged_run_can_be_read_back() {
    let s = Scratch::new();
    let spec = s.write("spec.toml", &diverging_spec());
    run(&spec, &s.out(), &[]).expect_code(1, "diverging run");
    let again = run(&spec, &s.out(), &[]);
    again
        .expect_code(1, "second run")
        .expect_stderr(&["already holds a diverged run"], "second run");

    let spec = s.write(
        "sweep.toml",
        &format!(
            "{}\n[sweep]\n\"optimizer.sigma0\" = [0.01, 16.0]\n",
            diverging_spec()
        ),
    );
    let out = s.path().join("swept");
    sweep(&spec, &out, &[]).expect_code(1, "sweep with a diverging point");
    let before = snapshot(&out);
    let o = sweep(&spec, &out, &[]);
    assert!(
        !o.stderr.contains("not a pisa summary"),
        "resuming the sweep fails:\n{}",
        o.stderr
    );
    assert_eq!(snapshot(&out), before, "finished (diverged) runs are kept");
}

#[test]

fn duplicate_sweep_values_are_rejected() {
    let s = Scratch::new();
    let spec = s.write(
        "spec.toml",
        &format!("{BASE_SPEC}\n[sweep]\n\"optimizer.sigma0\" = [8.0, 8.0]\n"),
    );
    sweep(&spec, &s.out(), &[]).expect_code(2, "duplicate grid values");
    assert_nothing_written(&s.out(), "duplicate grid values");
}

#[test]

fn run_id_must_name_a_folder_inside_out() {
    for id in ["", "..", "../../escaped", "a/b", ".hidden.partial-1"] {
        let s = Scratch::new();
        let spec = s.write("spec.toml", BASE_SPEC);
        let o = run(&spec, &s.out(), &["--run-id", id]);
        assert_ne!(o.code, 0, "--run-id {id:?} was accepted");
        assert_nothing_written(&s.out(), &format!("--run-id {id:?}"));
        assert!(!s.path().join("escaped").exists());
    }
}

#[test]

fn bad_grid_values_are_blamed_on_the_spec_file() {
    let s = Scratch::new();
    let spec = s.write(
        "spec.toml",
        &format!("{BASE_SPEC}\n[sweep]\n\"optimizer.gamma\" = [0.5, 1.5]\n"),
    );
    let o = sweep(&spec, &s.out(), &[]);
    o.expect_code(2, "bad grid value");
    assert!(
        !o.stderr.contains("--set"),
        "no --set was given:\n{}",
        o.stderr
    );
    o.expect_stderr(&[&format!("{}:19:", spec.display())], "bad grid value");
}

#[test]

fn set_does_not_shift_line_numbers() {
    let s = Scratch::new();
    // No `seed` in the file: --set seed=5 inserts a line above [data].
    let spec = s.write("spec.toml", &edit(BASE_SPEC, "seed = 7\n", ""));
    let o = run(
        &spec,
        &s.out(),
        &["--set", "seed=5", "--set", "train.workers=3"],
    );
    o.expect_code(2, "samples vs workers");
    // samples is on line 5 of this file.
    o.expect_stderr(
        &[&format!("{}:5:", spec.display()), "key `data.samples`"],
        "samples vs workers",
    );
}

#[test]

fn batch_size_larger_than_a_block_is_a_spec_error() {
    let s = Scratch::new();
    // 64 samples over 4 workers: 16 rows per block D_i.
    let spec = s.write(
        "spec.toml",
        &edit(
            BASE_SPEC,
            "iterations = 30",
            "iterations = 30\nbatch_size = 17",
        ),
    );
    run(&spec, &s.out(), &[])
        .expect_code(2, "batch_size 17 > 16")
        .expect_stderr(
            &[&format!("{}:12:", spec.display()), "key `train.batch_size`"],
            "batch_size 17 > 16",
        );
    assert_nothing_written(&s.out(), "batch_size 17 > 16");
}
