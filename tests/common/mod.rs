//! Helpers shared by the CLI integration tests: scratch folders holding specs, running
//! the `pisa` binary, and reading what a run left on disk.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The binary under test.
pub const PISA: &str = env!("CARGO_BIN_EXE_pisa");

/// A small SISA problem (64 samples, w in R^4, 4 workers, 30 iterations): a run takes
/// well under a second. The bad-spec tests point at its line numbers, which are:
///
/// ```text
///  1 name     5 kind     9 [train]       13 [optimizer]
///  2 seed     6 samples 10 workers       14 name
///  3          7 dim     11 iterations    15 scheme
///  4 [data]   8         12               16 sigma0
/// ```
pub const BASE_SPEC: &str = r#"name = "cli-test"
seed = 7

[data]
kind = "least_squares"
samples = 64
dim = 4

[train]
workers = 4
iterations = 30

[optimizer]
name = "sisa"
scheme = 3
sigma0 = 16.0
"#;

/// The spec's `name`, i.e. the folder its runs go to under `--out`.
pub const NAME: &str = "cli-test";

/// `spec` with the first `from` replaced by `to`; panics when `from` is absent, so that a
/// typo in a test fails loudly instead of testing the unedited spec.
pub fn edit(spec: &str, from: &str, to: &str) -> String {
    assert!(
        spec.contains(from),
        "test bug: {from:?} is not in the spec:\n{spec}"
    );
    spec.replacen(from, to, 1)
}

/// A least-squares spec that reads `file` from the data directory instead of generating.
pub fn npz_spec(file: &str) -> String {
    edit(
        BASE_SPEC,
        "samples = 64\ndim = 4",
        &format!("path = {file:?}"),
    )
}

/// A temporary folder for one test: specs, data and the results root `out()`.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create a temporary folder"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `name` inside the scratch folder and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&path, contents).unwrap();
        path
    }

    /// The results root given as `--out` (not created by the tests).
    pub fn out(&self) -> PathBuf {
        self.path().join("out")
    }

    /// `out()/<spec name>/<run_id>`.
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.out().join(NAME).join(run_id)
    }
}

/// How a `pisa` process ended.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Asserts the exit code, printing both streams when it differs.
    pub fn expect_code(&self, code: i32, context: &str) -> &Self {
        assert_eq!(
            self.code, code,
            "{context}: pisa exited with {} instead of {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// Asserts that stderr contains every one of `fragments`.
    pub fn expect_stderr(&self, fragments: &[&str], context: &str) -> &Self {
        for f in fragments {
            assert!(
                self.stderr.contains(f),
                "{context}: stderr lacks {f:?}:\n{}",
                self.stderr
            );
        }
        self
    }
}

/// `pisa` with `PISA_DATA_DIR` removed, so the caller's environment cannot leak in.
pub fn command() -> Command {
    let mut c = Command::new(PISA);
    c.env_remove("PISA_DATA_DIR");
    c
}

/// Runs `pisa ARGS…` to completion.
pub fn pisa<I, S>(args: I) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    finish(command().args(args))
}

/// Runs a prepared command to completion.
pub fn finish(c: &mut Command) -> Outcome {
    let out = c.output().expect("start pisa");
    Outcome {
        // A signal (no code) counts as -1.
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `pisa run SPEC --out OUT EXTRA…`.
pub fn run(spec: &Path, out: &Path, extra: &[&str]) -> Outcome {
    let mut args: Vec<&OsStr> = vec![
        "run".as_ref(),
        spec.as_ref(),
        "--out".as_ref(),
        out.as_ref(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    pisa(args)
}

/// `pisa sweep SPEC --out OUT EXTRA…`.
pub fn sweep(spec: &Path, out: &Path, extra: &[&str]) -> Outcome {
    let mut args: Vec<&OsStr> = vec![
        "sweep".as_ref(),
        spec.as_ref(),
        "--out".as_ref(),
        out.as_ref(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    pisa(args)
}

/// The rows of a run's `metrics.csv`.
#[derive(Debug, Clone)]
pub struct Metrics {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

pub fn read_metrics(run_dir: &Path) -> Metrics {
    let path = run_dir.join("metrics.csv");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut lines = text
        .lines()
        .map(|l| l.split(',').map(String::from).collect::<Vec<_>>());
    let header = lines.next().expect("metrics.csv has a header");
    let rows: Vec<Vec<String>> = lines.collect();
    for r in &rows {
        assert_eq!(
            r.len(),
            header.len(),
            "{}: row {r:?} does not match the header {header:?}",
            path.display()
        );
    }
    Metrics { header, rows }
}

impl Metrics {
    fn index(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {:?}", self.header))
    }

    /// A column parsed as numbers (`NaN`, `inf` included).
    pub fn column(&self, name: &str) -> Vec<f64> {
        let i = self.index(name);
        self.rows
            .iter()
            .map(|r| {
                r[i].parse()
                    .unwrap_or_else(|e| panic!("{name} value {:?}: {e}", r[i]))
            })
            .collect()
    }

    /// The rows without the `wall_s` column: what must be reproducible.
    pub fn numbers(&self) -> Vec<Vec<String>> {
        let wall = self.index("wall_s");
        self.rows
            .iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .filter(|(i, _)| *i != wall)
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .collect()
    }
}

pub fn read_summary(run_dir: &Path) -> serde_json::Value {
    let path = run_dir.join("summary.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

pub fn status(run_dir: &Path) -> String {
    read_summary(run_dir)["status"]
        .as_str()
        .expect("summary has a status")
        .to_string()
}

pub fn read_spec(run_dir: &Path) -> toml::Table {
    let path = run_dir.join("spec.toml");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()))
}

/// `table[a][b]…` of a TOML table, by dotted path.
pub fn toml_get<'a>(table: &'a toml::Table, dotted: &str) -> Option<&'a toml::Value> {
    let mut parts = dotted.split('.');
    let mut value = table.get(parts.next()?)?;
    for p in parts {
        value = value.as_table()?.get(p)?;
    }
    Some(value)
}

/// Every file under `dir` (recursively) with its bytes and modification time.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("read {}: {e}", d.display())) {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                let bytes = fs::read(&path).unwrap();
                let modified = entry.metadata().unwrap().modified().unwrap();
                files.insert(
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    (bytes, modified),
                );
            }
        }
    }
    files
}

/// Names in `dir`, sorted (empty when it does not exist).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => vec![],
    };
    names.sort();
    names
}

/// Asserts that `dir` does not exist or is empty.
pub fn assert_nothing_written(dir: &Path, context: &str) {
    let found = entries(dir);
    assert!(
        found.is_empty(),
        "{context}: {} should be empty or absent, holds {found:?}",
        dir.display()
    );
}

/// Asserts `run_dir` is a whole run: spec.toml, metrics.csv, summary.json and nothing else.
pub fn assert_whole_run(run_dir: &Path) {
    assert_eq!(
        entries(run_dir),
        ["metrics.csv", "spec.toml", "summary.json"],
        "{} is not a whole run",
        run_dir.display()
    );
}

/// Writes a least-squares problem `A` (n x d), `b = A w + small noise` as `.npz`.
/// Deterministic, and mixes row scales so that the blocks D_i differ.
pub fn write_problem_npz(path: &Path, n: usize, d: usize) {
    let mut a = Vec::with_capacity(n * d);
    let mut b = Vec::with_capacity(n);
    for i in 0..n {
        let scale = 1.0 + (i % 3) as f64;
        let row: Vec<f64> = (0..d)
            .map(|j| scale * ((i * d + j) as f64 * 0.731 + 0.3).sin())
            .collect();
        let dot: f64 = row
            .iter()
            .enumerate()
            .map(|(j, x)| x * (j as f64 + 1.0))
            .sum();
        b.push(dot + 0.05 * (i as f64 * 1.37).cos());
        a.extend(row);
    }
    let a = tch::Tensor::from_slice(&a).reshape([n as i64, d as i64]);
    let b = tch::Tensor::from_slice(&b);
    tch::Tensor::write_npz(&[("A", &a), ("b", &b)], path).expect("write the .npz");
}

/// IDX bytes: magic 0x0000 0x08 (u8) `ndims`, big-endian dims, data.
pub fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(data);
    out
}

/// `<split>-images-idx3-ubyte` and `<split>-labels-idx1-ubyte` (split "train" or "t10k")
/// of `n` 28×28 images whose class k lights up row block k (plus noise), so a model can
/// learn.
pub fn write_mnist(dir: &Path, split: &str, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let mut images = Vec::with_capacity(n * 784);
    let mut labels = Vec::with_capacity(n);
    let mut state = 12345u32;
    for i in 0..n {
        let k = (i % 10) as u8;
        labels.push(k);
        for r in 0..28 {
            for _ in 0..28 {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (state >> 28) as u8;
                let on = r / 3 == k as usize;
                images.push(if on { 200 + noise } else { noise * 4 });
            }
        }
    }
    std::fs::write(
        dir.join(format!("{split}-images-idx3-ubyte")),
        idx(&[n as u32, 28, 28], &images),
    )
    .unwrap();
    std::fs::write(
        dir.join(format!("{split}-labels-idx1-ubyte")),
        idx(&[n as u32], &labels),
    )
    .unwrap();
}

/// Runs `spec` (its data under `data_dir`) to the end, then again in a fresh results
/// folder, killed with SIGKILL as soon as its first checkpoint is on disk and resumed with
/// `--resume`: the resumed run's `out/<run>` metrics (all but wall_s) must equal the
/// uninterrupted run's.
pub fn assert_kill_9_resumes(spec: &Path, data_dir: &str, run_path: &str) {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let reference = Scratch::new();
    run(spec, &reference.out(), &["--data-dir", data_dir]).expect_code(0, "reference run");
    let want = read_metrics(&reference.out().join(run_path)).numbers();
    let s = Scratch::new();
    let spawn = || {
        command()
            .args([
                "run",
                spec.to_str().unwrap(),
                "--resume",
                "--data-dir",
                data_dir,
            ])
            .args(["--out", s.out().to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let experiment = s.out().join(run_path.split('/').next().unwrap());
    let checkpointed = || {
        fs::read_dir(&experiment)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join("checkpoint.safetensors").exists())
    };
    let mut child = spawn();
    let started = Instant::now();
    while !checkpointed() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(checkpointed(), "a checkpoint was written before the kill");
    let dir = s.out().join(run_path);
    assert!(!dir.exists(), "killed before the end");
    assert!(
        spawn().wait().unwrap().success(),
        "the resumed run completes"
    );
    assert_eq!(read_metrics(&dir).numbers(), want);
}

/// GPT token shards in `dir/shards`: a learnable stream over 64 tokens, 3,000 training
/// and 400 validation tokens.
pub fn write_token_shards(dir: &Path) {
    let folder = dir.join("shards");
    std::fs::create_dir_all(&folder).unwrap();
    let stream = |n: usize, shift: usize| -> Vec<u16> {
        (0..n)
            .map(|i| (((i + shift) * 7 + (i + shift) / 13) % 64) as u16)
            .collect()
    };
    pisa::data::shards::write_shard(&folder.join("toy_val_000000.bin"), &stream(400, 5)).unwrap();
    pisa::data::shards::write_shard(&folder.join("toy_train_000001.bin"), &stream(3000, 0))
        .unwrap();
}

/// `dir/recipes.csv`: 20 short recipes in the corpus's format (quoted fields with commas).
pub fn write_recipes(dir: &Path) {
    let mut csv = String::from("RecipeId,name,ingredients,instructions\n");
    let foods = [
        "eggs", "flour", "milk", "butter", "sugar", "salt", "rice", "beans",
    ];
    for i in 0..20 {
        let a = foods[i % 8];
        let b = foods[(i * 3 + 1) % 8];
        csv.push_str(&format!(
            "{i},Dish {i},\"{a}, {b}\",\"Mix the {a} with the {b}. Cook for {} minutes, then serve.\"\n",
            5 + i
        ));
    }
    std::fs::write(dir.join("recipes.csv"), csv).unwrap();
}

/// A GPT of layout `style` on [`write_token_shards`]: 2 layers of width 16, 2 workers,
/// 6 iterations (`extra` in `[data]`).
pub fn gpt_spec(style: &str, optimizer: &str, extra: &str) -> String {
    format!(
        r#"name = "gpt"
seed = 3

[data]
kind = "tokens"
path = "shards"
val_tokens = 64
{extra}

[model]
kind = "gpt"
style = "{style}"
n_layer = 2
n_head = 2
n_embd = 16
block_size = 8
vocab_size = 64

[train]
workers = 2
batch_size = 3
iterations = 6
eval_every = 2
checkpoint_every = 2
threads = 1

[optimizer]
{optimizer}
"#
    )
}

/// Fine-tuning the GPT `model` on [`write_recipes`]'s corpus: 2 workers, 3 epochs, AdamW
/// (`extra` after `[optimizer]`).
pub fn recipes_spec(model: &str, extra: &str) -> String {
    format!(
        r#"name = "ft"
seed = 2

[data]
kind = "recipes"
path = "recipes.csv"
max_length = 32
test_fraction = 0.2

[model]
kind = "gpt"
{model}

[train]
workers = 2
batch_size = 4
micro_batch = 3
epochs = 3
eval_every = "epoch"
checkpoint_every = "epoch"
threads = 1

[optimizer]
name = "adamw"
lr = 0.003
{extra}"#
    )
}

/// A small classic GPT-2 with dropout, trained from scratch.
pub const RECIPES_GPT: &str = "style = \"classic\"\nn_layer = 1\nn_head = 2\nn_embd = 16\nblock_size = 64\nvocab_size = 50257\ndropout = 0.1";

/// PPO with SISA on InvertedDoublePendulum-v4 in small: 4 workers, collects of 64 steps,
/// `epochs` epochs of 128 steps.
pub fn rl_spec(extra_rl: &str, epochs: usize) -> String {
    format!(
        r#"name = "rl"
seed = 3

[data]
kind = "environment"

[rl]
env = "InvertedDoublePendulum-v4"
train_envs = 2
test_envs = 2
step_per_collect = 64
repeat = 2
step_per_epoch = 128
{extra_rl}

[train]
workers = 4
batch_size = 8
epochs = {epochs}
eval_every = "epoch"
checkpoint_every = 3
clip_norm = 0.5
dtype = "f32"
threads = 1

[optimizer]
name = "sisa"
sigma0 = 5.0
rho = 995.0
gamma = 1.0
scheme = 3
beta = 0.999
eps = 1e-8
"#
    )
}
