//! Trust: every bad input is a located error (never a panic), results survive kill -9,
//! SIGINT, a full disk and a second process, and runs record what they were made with.
mod common;

use common::*;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// The corpus of malformed specs, tests/data/bad-specs/*.toml: each file's first line says
// `# expect: line=<N|-> key=<dotted key|-> says=<message fragment>`.
// ---------------------------------------------------------------------------------------

struct Expect {
    line: Option<usize>,
    key: Option<String>,
    says: String,
}

fn expectation(file: &Path) -> Expect {
    let bytes = fs::read(file).unwrap();
    let first = String::from_utf8_lossy(bytes.split(|&b| b == b'\n').next().unwrap());
    let rest = first
        .strip_prefix("# expect: ")
        .unwrap_or_else(|| panic!("{}: no `# expect:` line", file.display()));
    let field = |name: &str| -> String {
        let start = rest.find(&format!("{name}=")).expect(name) + name.len() + 1;
        let value = &rest[start..];
        match name {
            "says" => value.to_string(),
            _ => value.split(' ').next().unwrap().to_string(),
        }
    };
    let some = |v: String| (v != "-").then_some(v);
    Expect {
        line: some(field("line")).map(|l| l.parse().unwrap()),
        key: some(field("key")),
        says: field("says"),
    }
}

/// Runs `jobs` on two threads (the machine's cores), in order of the returned results.
fn in_parallel<T: Send, R: Send>(jobs: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let jobs = std::sync::Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some((i, job)) = jobs.lock().unwrap().pop() else {
                    break;
                };
                let r = f(job);
                results.lock().unwrap().push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[test]
fn every_spec_of_the_malformed_corpus_is_a_located_error_and_writes_nothing() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad-specs");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 60, "the corpus has {} specs", files.len());
    let failures = in_parallel(files, |file| {
        let s = Scratch::new();
        let empty = s.path().join("no-data");
        let o = run(&file, &s.out(), &["--data-dir", empty.to_str().unwrap()]);
        let want = expectation(&file);
        let name = file.display().to_string();
        let mut wrong = vec![];
        if o.code != 2 {
            wrong.push(format!("exit {} instead of 2", o.code));
        }
        if o.stderr.contains("panicked") {
            wrong.push("panicked".into());
        }
        let at = match want.line {
            Some(line) => format!("{name}:{line}:"),
            None => format!("{name}:"),
        };
        if !o.stderr.contains(&at) {
            wrong.push(format!("not located at {at}"));
        }
        if let Some(key) = &want.key {
            if !o.stderr.contains(&format!("key `{key}`: ")) {
                wrong.push(format!("does not name key `{key}`"));
            }
        }
        if !o.stderr.contains(&want.says) {
            wrong.push(format!("does not say {:?}", want.says));
        }
        if !entries(&s.out()).is_empty() {
            wrong.push(format!("wrote {:?}", entries(&s.out())));
        }
        (!wrong.is_empty()).then(|| format!("{name}: {}\n  stderr: {}", wrong.join("; "), o.stderr))
    });
    let failures: Vec<String> = failures.into_iter().flatten().collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_bad_value_gets_no_hint_about_other_optimizers_and_long_run_ids_are_refused() {
    let s = Scratch::new();
    let spec = s.write("spec.toml", BASE_SPEC);
    let o = run(&spec, &s.out(), &["--set", "optimizer.scheme=7"]);
    o.expect_code(2, "scheme = 7")
        .expect_stderr(&["scheme must be one of 1, 2, 3, not 7"], "scheme = 7");
    assert!(!o.stderr.contains("is for"), "{}", o.stderr);
    let long = "r".repeat(250);
    let o = run(&spec, &s.out(), &["--run-id", &long]);
    o.expect_code(2, "long --run-id")
        .expect_stderr(&["--run-id", "at most 200"], "long --run-id");
    // A run id made of many --set values is checked the same way.
    let sets: Vec<String> = (0..40)
        .map(|i| format!("optimizer.sigma0={}.0", 16 + i))
        .collect();
    let mut args: Vec<&str> = vec![];
    for set in &sets {
        args.extend(["--set", set]);
    }
    let o = run(&spec, &s.out(), &args);
    o.expect_code(2, "long run id")
        .expect_stderr(&["give --run-id", "at most 200"], "long run id");
    assert_nothing_written(&s.out(), "long run ids");
}

// ---------------------------------------------------------------------------------------
// No panic, whatever the spec: random mutations of valid specs and --set values.
// ---------------------------------------------------------------------------------------

const IMAGE_SPEC: &str = r#"name = "fuzz-img"
seed = 1

[data]
kind = "synthetic_images"
samples = 40
image = [1, 16, 16]
classes = 4

[model]
kind = "mlp"
hidden = [8]

[train]
workers = 2
batch_size = 4
iterations = 3
dtype = "f32"

[optimizer]
name = "adam"
lr = 1e-3
"#;

const KEYS: &[&str] = &[
    "name",
    "seed",
    "kind",
    "samples",
    "dim",
    "image",
    "classes",
    "noise",
    "partition",
    "augment",
    "test_fraction",
    "hidden",
    "activation",
    "dropout",
    "workers",
    "batch_size",
    "iterations",
    "epochs",
    "eval_every",
    "checkpoint_every",
    "dtype",
    "device",
    "micro_batch",
    "autocast",
    "channels_last",
    "threads",
    "sigma0",
    "rho",
    "gamma",
    "k0",
    "lambda",
    "mu",
    "scheme",
    "lr",
    "beta1",
    "eps",
    "weight_decay",
    "path",
];

const VALUES: &[&str] = &[
    "-1",
    "0",
    "1",
    "2",
    "3",
    "7",
    "64",
    "4503599627370497",
    "9223372036854775807",
    "18446744073709551616",
    "0.0",
    "-0.0",
    "1e-39",
    "1e39",
    "1e308",
    "inf",
    "nan",
    "-1.5",
    "0.5",
    "\"\"",
    "\"auto\"",
    "\"epoch\"",
    "\"cuda\"",
    "\"x/y\"",
    "\"f32\"",
    "\"f64\"",
    "\"bf16\"",
    "\"crop-flip\"",
    "\"simple_cnn\"",
    "\"resnet18\"",
    "\"fed_lamb_cnn\"",
    "\"vit_b_16\"",
    "\"least_squares\"",
    "\"adult\"",
    "\"sgd\"",
    "\"pisa\"",
    "\"nsisa\"",
    "[]",
    "[0]",
    "[1, 8, 8]",
    "[3, 2, 2]",
    "{ kind = \"dirichlet\", beta = 0.5 }",
    "{ kind = \"label-skew\", labels = 9 }",
    "true",
    "\"\u{7f}\"",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize),
    Duplicate(usize),
    Revalue(usize, usize),
    Insert(usize, usize, usize),
}

fn apply(spec: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = spec.lines().map(String::from).collect();
    for e in edits {
        let n = lines.len().max(1);
        match *e {
            Edit::Delete(i) if !lines.is_empty() => {
                lines.remove(i % n);
            }
            Edit::Duplicate(i) if !lines.is_empty() => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Edit::Revalue(i, v) if !lines.is_empty() => {
                if let Some((k, _)) = lines[i % n].split_once('=') {
                    lines[i % n] = format!("{k}= {}", VALUES[v % VALUES.len()]);
                }
            }
            Edit::Insert(i, k, v) => {
                let at = i % (lines.len() + 1);
                let line = format!("{} = {}", KEYS[k % KEYS.len()], VALUES[v % VALUES.len()]);
                lines.insert(at, line);
            }
            _ => {}
        }
    }
    lines.join("\n") + "\n"
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(i, v)| Edit::Revalue(i, v)),
        (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(i, k, v)| Edit::Insert(i, k, v)),
    ]
}

/// `--set section.key=value` arguments from the pools.
fn set_strategy() -> impl Strategy<Value = Vec<String>> {
    let sections = ["data", "model", "train", "optimizer", "schedule"];
    prop::collection::vec((0..sections.len(), any::<usize>(), any::<usize>()), 0..3).prop_map(
        move |sets| {
            sets.into_iter()
                .map(|(s, k, v)| {
                    format!(
                        "{}.{}={}",
                        sections[s],
                        KEYS[k % KEYS.len()],
                        VALUES[v % VALUES.len()]
                    )
                })
                .collect()
        },
    )
}

/// Waits for `child` at most `limit`; a hang is a failure of its own.
fn wait_with_limit(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status.code(), stderr);
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            return (None, "timed out".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES=400 for a longer search.
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(40),
        max_shrink_iters: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_specs_never_panic_nor_leave_half_written_runs(
        image in any::<bool>(),
        edits in prop::collection::vec(edit_strategy(), 1..4),
        sets in set_strategy(),
    ) {
        let s = Scratch::new();
        let base = if image { IMAGE_SPEC } else { BASE_SPEC };
        let spec = s.write("spec.toml", &apply(base, &edits));
        let mut c = command();
        c.args(["run".as_ref(), spec.as_os_str(), "--out".as_ref(), s.out().as_os_str()]);
        for set in &sets {
            c.args(["--set", set]);
        }
        let child = c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let (code, stderr) = wait_with_limit(child, Duration::from_secs(120));
        prop_assert!(matches!(code, Some(0..=2)), "exit {code:?}: {stderr}\nspec:\n{}", fs::read_to_string(&spec).unwrap());
        prop_assert!(!stderr.contains("panicked") && !stderr.contains("internal error"), "{stderr}");
        if code == Some(2) {
            prop_assert!(entries(&s.out()).is_empty(), "a spec error wrote {:?}", entries(&s.out()));
        }
        for name in entries(&s.out()) {
            for id in entries(&s.out().join(&name)) {
                prop_assert!(!id.starts_with('.'), "left {name}/{id}: {stderr}");
                prop_assert!(s.out().join(&name).join(&id).join("summary.json").is_file());
            }
        }
    }
}

#[test]
fn an_allocation_larger_than_memory_is_an_error_not_a_panic() {
    let s = Scratch::new();
    let spec = s.write(
        "spec.toml",
        &edit(IMAGE_SPEC, "hidden = [8]", "hidden = [2000000000]"),
    );
    let o = run(&spec, &s.out(), &[]);
    o.expect_code(1, "huge model").expect_stderr(
        &[
            "internal error while building the experiment",
            "can't allocate memory",
        ],
        "huge model",
    );
    assert!(
        !o.stderr.contains("panicked") && !o.stderr.contains("frame #"),
        "{}",
        o.stderr
    );
    assert_nothing_written(&s.out(), "huge model");
}

// ---------------------------------------------------------------------------------------
// Kills, signals, locks, a full disk.
// ---------------------------------------------------------------------------------------

/// Long enough to be stopped mid-run, with frequent metrics rows and checkpoints.
fn long_spec() -> String {
    edit(
        BASE_SPEC,
        "iterations = 30",
        "iterations = 4000\neval_every = 7\ncheckpoint_every = 5",
    )
}

fn spawn_run(spec: &Path, out: &Path, extra: &[&str]) -> Child {
    command()
        .args([
            "run".as_ref(),
            spec.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pisa run")
}

/// The metrics of an uninterrupted run of `spec`.
fn reference(spec: &Path) -> Vec<Vec<String>> {
    let s = Scratch::new();
    run(spec, &s.out(), &[]).expect_code(0, "reference run");
    read_metrics(&s.run_dir("default")).numbers()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// No `.tmp-<pid>` file of a cut-short write is left in `dir`.
fn assert_no_temporaries(dir: &Path) {
    let left: Vec<String> = entries(dir)
        .into_iter()
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{} holds {left:?}", dir.display());
}

/// Waits until the run has written a checkpoint in its staging folder.
fn wait_for_checkpoint(out: &Path) {
    let root = out.join(NAME);
    let start = Instant::now();
    while !entries(&root).iter().any(|n| {
        n.starts_with(".default.partial-") && root.join(n).join("checkpoint.safetensors").exists()
    }) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no checkpoint within a minute"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn kill_9_at_random_points_always_resumes_to_identical_metrics() {
    let s = Scratch::new();
    let spec = s.write("spec.toml", &long_spec());
    let want = reference(&spec);
    let dir = s.run_dir("default");
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261201);
    let mut kills = 0;
    for attempt in 0..20 {
        let mut child = spawn_run(&spec, &s.out(), &["--resume"]);
        if attempt < 6 {
            wait_for_checkpoint(&s.out());
            std::thread::sleep(Duration::from_millis(rng.random_range(0..400)));
            if child.try_wait().unwrap().is_none() {
                signal(&child, libc::SIGKILL);
                kills += 1;
            }
        }
        let status = child.wait().unwrap();
        if dir.join("summary.json").exists() {
            assert!(status.success(), "the resumed run failed: {status}");
            break;
        }
    }
    assert!(kills >= 4, "only {kills} kills landed; lengthen the run");
    assert_eq!(status(&dir), "completed");
    assert_eq!(read_metrics(&dir).numbers(), want, "resumed metrics differ");
    assert!(
        entries(&s.out().join(NAME))
            .iter()
            .all(|n| !n.starts_with('.')),
        "left behind: {:?}",
        entries(&s.out().join(NAME))
    );
    assert_no_temporaries(&dir);
}

#[test]
fn sigint_checkpoints_as_interrupted_and_resume_completes_identically() {
    let s = Scratch::new();
    let spec = s.write("spec.toml", &long_spec());
    let want = reference(&spec);
    let dir = s.run_dir("default");
    let child = spawn_run(&spec, &s.out(), &[]);
    wait_for_checkpoint(&s.out());
    signal(&child, libc::SIGINT);
    let (code, stderr) = wait_with_limit(child, Duration::from_secs(30));
    assert_eq!(code, Some(130), "{stderr}");
    assert_eq!(status(&dir), "interrupted");
    assert!(dir.join("checkpoint.safetensors").is_file());
    let summary = read_summary(&dir);
    let done = summary["iterations"].as_u64().unwrap() as usize;
    assert!(
        done > 0 && done < 4000,
        "interrupted after {done} iterations"
    );

    // A kill in the middle of a metrics flush and of a checkpoint write leaves a torn row
    // and a temporary file: neither survives the resume.
    let mut metrics = fs::OpenOptions::new()
        .append(true)
        .open(dir.join("metrics.csv"))
        .unwrap();
    use std::io::Write;
    write!(metrics, "4643.0,46").unwrap();
    fs::write(dir.join(".checkpoint.safetensors.tmp-99999999"), b"half").unwrap();

    run(&spec, &s.out(), &["--resume"]).expect_code(0, "resume");
    assert_eq!(status(&dir), "completed");
    assert_eq!(read_metrics(&dir).numbers(), want);
    assert_no_temporaries(&dir);
}

#[test]
fn a_second_sigint_exits_at_once() {
    let s = Scratch::new();
    let spec = s.write("spec.toml", &long_spec());
    let child = spawn_run(&spec, &s.out(), &[]);
    wait_for_checkpoint(&s.out());
    signal(&child, libc::SIGINT);
    signal(&child, libc::SIGINT);
    let start = Instant::now();
    let (code, _) = wait_with_limit(child, Duration::from_secs(30));
    assert_eq!(code, Some(130));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn sigterm_interrupts_a_sweep_and_running_it_again_continues() {
    let s = Scratch::new();
    let spec = s.write(
        "spec.toml",
        &format!(
            "{}\n[sweep]\n\"optimizer.sigma0\" = [8.0, 16.0]\n",
            long_spec()
        ),
    );
    let mut child = command()
        .args([
            "sweep".as_ref(),
            spec.as_os_str(),
            "--out".as_ref(),
            s.out().as_os_str(),
        ])
        .args(["--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let root = s.out().join(NAME);
    let start = Instant::now();
    while !entries(&root)
        .iter()
        .any(|n| n.starts_with(".sigma0=8.0.partial-"))
    {
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGTERM);
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(130));
    assert_eq!(status(&root.join("sigma0=8.0")), "interrupted");
    assert!(
        !root.join("sigma0=16.0").exists(),
        "the next point must not start"
    );
    sweep(&spec, &s.out(), &["--jobs", "1"]).expect_code(0, "sweep again");
    for id in ["sigma0=8.0", "sigma0=16.0"] {
        assert_eq!(status(&root.join(id)), "completed", "{id}");
    }
    let single = Scratch::new();
    let once = single.write("spec.toml", &long_spec());
    run(&once, &single.out(), &["--set", "optimizer.sigma0=8.0"]).expect_code(0, "single run");
    assert_eq!(
        read_metrics(&root.join("sigma0=8.0")).numbers(),
        read_metrics(&single.run_dir("sigma0=8.0")).numbers(),
        "the interrupted sweep point differs from one uninterrupted run"
    );
}

#[test]
fn a_second_process_on_the_same_run_fails_at_once_naming_the_holder() {
    let s = Scratch::new();
    // Long enough (a minute) that the first is still training when the second starts.
    let spec = s.write(
        "spec.toml",
        &edit(&long_spec(), "iterations = 4000", "iterations = 100000"),
    );
    let mut first = spawn_run(&spec, &s.out(), &[]);
    wait_for_checkpoint(&s.out());
    let start = Instant::now();
    let o = run(&spec, &s.out(), &[]);
    first.kill().unwrap();
    first.wait().unwrap();
    o.expect_code(1, "second process");
    o.expect_stderr(
        &[
            &s.run_dir("default").display().to_string(),
            &format!("pid {}", first.id()),
        ],
        "second process",
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "it must fail before training"
    );
}

#[test]
fn stale_staging_folders_and_temporary_files_are_removed_by_the_next_run() {
    let s = Scratch::new();
    let spec = s.write("spec.toml", BASE_SPEC);
    let root = s.out().join(NAME);
    let stale = root.join(".default.partial-99999999");
    fs::create_dir_all(&stale).unwrap();
    fs::write(stale.join("metrics.csv"), "epoch,iteration\n0.0,0\n").unwrap();
    fs::write(stale.join(".checkpoint.safetensors.tmp-99999999"), b"half").unwrap();
    run(&spec, &s.out(), &[]).expect_code(0, "run");
    assert_eq!(entries(&root), ["default"]);
    assert_whole_run(&root.join("default"));
}

/// `pisa run` in a shell whose files may not grow past `kib` KiB (writes beyond fail with
/// EFBIG, as on a full disk; SIGXFSZ ignored so the write returns the error).
fn run_with_file_limit(spec: &Path, out: &Path, kib: u32, extra: &str) -> Outcome {
    finish(Command::new("bash").args([
        "-c",
        &format!(
            "trap '' XFSZ; ulimit -f {kib}; exec {PISA} run {} --out {} {extra}",
            spec.display(),
            out.display()
        ),
    ]))
}

#[test]
fn a_full_disk_names_the_write_removes_temporaries_and_keeps_the_checkpoint() {
    let s = Scratch::new();
    // The metrics file outgrows 2 KiB after about 25 rows; checkpoints (1.4 KiB) fit.
    let spec = s.write(
        "spec.toml",
        &edit(
            BASE_SPEC,
            "iterations = 30",
            "iterations = 300\ncheckpoint_every = 10",
        ),
    );
    let dir = s.run_dir("default");
    let o = run_with_file_limit(&spec, &s.out(), 2, "");
    o.expect_code(1, "metrics write fails");
    assert_eq!(status(&dir), "failed");
    let error = read_summary(&dir)["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("cannot write metrics to") && error.contains("File too large"),
        "{error}"
    );
    assert_no_temporaries(&dir);
    // With room again, the last good checkpoint continues the run to the same numbers.
    run(&spec, &s.out(), &["--resume"]).expect_code(0, "resume");
    let want = reference(&spec);
    assert_eq!(read_metrics(&dir).numbers(), want);

    // A checkpoint (1.4 KiB) that cannot be written: named, its temporary file removed.
    let s = Scratch::new();
    let spec = s.write(
        "spec.toml",
        &edit(
            BASE_SPEC,
            "iterations = 30",
            "iterations = 30\neval_every = 100\ncheckpoint_every = 10",
        ),
    );
    let dir = s.run_dir("default");
    run_with_file_limit(&spec, &s.out(), 1, "").expect_code(1, "checkpoint write fails");
    let error = read_summary(&dir)["error"].as_str().unwrap().to_string();
    assert!(error.contains("writing the checkpoint"), "{error}");
    assert_eq!(entries(&dir), ["metrics.csv", "spec.toml", "summary.json"]);
}

// ---------------------------------------------------------------------------------------
// What a run records, and how plot reads it.
// ---------------------------------------------------------------------------------------

#[test]
fn summary_records_threads_libtorch_commit_and_cpu() {
    let s = Scratch::new();
    let spec = s.write("spec.toml", BASE_SPEC);
    run(&spec, &s.out(), &["--threads", "1"]).expect_code(0, "run");
    let p = &read_summary(&s.run_dir("default"))["provenance"];
    assert_eq!(p["threads"], 1);
    assert!(
        p["libtorch_version"]
            .as_str()
            .unwrap()
            .starts_with("2.11.0"),
        "{p}"
    );
    let commit = p["git_commit"].as_str().unwrap();
    assert!(commit == "unknown" || commit.len() == 40, "{commit}");
    assert!(!p["cpu"].as_str().unwrap().is_empty());
    // train.threads in the spec is the same as --threads.
    let s2 = Scratch::new();
    let spec = s2.write(
        "spec.toml",
        &edit(BASE_SPEC, "iterations = 30", "iterations = 30\nthreads = 1"),
    );
    run(&spec, &s2.out(), &[]).expect_code(0, "run");
    assert_eq!(
        read_summary(&s2.run_dir("default"))["provenance"]["threads"],
        1
    );
}

#[test]
fn a_sweep_point_on_two_jobs_equals_pisa_run_with_one_thread() {
    let s = Scratch::new();
    let spec = s.write(
        "spec.toml",
        &format!(
            "{}\n[sweep]\n\"optimizer.lr\" = [0.001, 0.01]\n",
            edit(IMAGE_SPEC, "iterations = 3", "iterations = 20")
        ),
    );
    sweep(&spec, &s.out(), &["--jobs", "2"]).expect_code(0, "sweep");
    run(
        &spec,
        &s.out(),
        &[
            "--set",
            "optimizer.lr=0.01",
            "--threads",
            "1",
            "--run-id",
            "single",
        ],
    )
    .expect_code(0, "single");
    let root = s.out().join("fuzz-img");
    let sweep_point = read_summary(&root.join("lr=0.01"));
    assert_eq!(sweep_point["provenance"]["threads"], 1);
    assert_eq!(
        read_metrics(&root.join("lr=0.01")).numbers(),
        read_metrics(&root.join("single")).numbers()
    );
}

#[test]
fn plot_names_a_missing_path_a_file_and_a_torn_csv_line() {
    let s = Scratch::new();
    let missing = s.path().join("nope");
    let o = pisa(["plot", missing.to_str().unwrap()]);
    o.expect_code(1, "missing").expect_stderr(
        &[&missing.display().to_string(), "no such folder"],
        "missing",
    );
    let file = s.write("file.txt", "x");
    let o = pisa(["plot", file.to_str().unwrap()]);
    o.expect_code(1, "file")
        .expect_stderr(&[&file.display().to_string(), "is a file"], "file");

    let spec = s.write("spec.toml", BASE_SPEC);
    run(&spec, &s.out(), &[]).expect_code(0, "run");
    let metrics = s.run_dir("default").join("metrics.csv");
    let mut text = fs::read_to_string(&metrics).unwrap();
    text.push_str("30.0,46\n");
    fs::write(&metrics, text).unwrap();
    let o = pisa(["plot", s.out().join(NAME).to_str().unwrap()]);
    o.expect_code(1, "torn")
        .expect_stderr(&[&metrics.display().to_string(), "line 33"], "torn");
}

#[test]
fn a_sigma_driven_to_infinity_blames_gamma_and_k0() {
    let s = Scratch::new();
    let spec = s.write(
        "spec.toml",
        &format!(
            "{}gamma = 0.5\nk0 = 1\n",
            edit(
                BASE_SPEC,
                "iterations = 30",
                "iterations = 3000\ndtype = \"f32\""
            )
        ),
    );
    let o = run(&spec, &s.out(), &[]);
    o.expect_code(1, "diverges");
    let error = read_summary(&s.run_dir("default"))["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("gamma = 0.5 every k0 = 1") && error.contains("raise gamma"),
        "{error}"
    );
    assert!(!error.contains("larger sigma0 (Appendix"), "{error}");
}
