//! Workers over MPI ranks (`--features mpi`, OpenMPI's mpirun): least squares and an MNIST
//! MLP with SISA and with Adam, a federated Table 2 cell, GPT pretraining (NSISA with the
//! embedding's AdamW, AdamW) and recipes fine-tuning with dropout give the in-process
//! metrics within 1e-12 relative in f64 over 2 and 4 ranks (oversubscribed on 2 cores); a
//! run resumes after kill -9 of one rank, whose death ends the others, mpirun naming it;
//! what cannot run over ranks is refused with its key.
#![cfg(feature = "mpi")]
mod common;

use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The columns that differ by design (and each player's, `blocks_floats_up`): what
/// crossed (m clients in one process, R ranks over MPI) and time.
const NOT_COMPARED: &[&str] = &["floats_up", "floats_down", "wall_s"];

/// `mpirun -np ranks pisa run …`, root allowed and oversubscribed as CI needs.
fn mpirun(ranks: usize, args: &[&str]) -> Command {
    mpirun_pisa(ranks, "run", args)
}

/// `mpirun -np ranks pisa <command> …`.
fn mpirun_pisa(ranks: usize, command: &str, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.args([
        "-np",
        &ranks.to_string(),
        "--oversubscribe",
        "--bind-to",
        "none",
    ]);
    c.arg("--allow-run-as-root")
        .arg(PISA)
        .arg(command)
        .args(args);
    c.env("OMPI_MCA_btl", "self,vader,tcp");
    c
}

fn least_squares(optimizer: &str) -> String {
    format!(
        r#"name = "ranks"
seed = 5

[data]
kind = "least_squares"
samples = 64
dim = 6

[train]
workers = 4
batch_size = 4
iterations = 40
eval_every = 5
checkpoint_every = 10

[optimizer]
{optimizer}
"#
    )
}

fn mnist(optimizer: &str) -> String {
    format!(
        r#"name = "ranks"
seed = 2

[data]
kind = "mnist"
path = "mnist"
test_fraction = 0.25

[model]
kind = "mlp"
hidden = [12]

[train]
workers = 4
batch_size = 10
iterations = 12
eval_every = 3
dtype = "f64"

[optimizer]
{optimizer}
"#
    )
}

const SISA: &str = "name = \"sisa\"\nscheme = 3\nsigma0 = 8.0\nrho = 2.0";
const ADAM: &str = "name = \"adam\"\nlr = 0.01";

/// Every compared column of two runs' metrics agrees within `tol` relative.
fn assert_close(a: &Metrics, b: &Metrics, tol: f64, context: &str) {
    assert_eq!(a.header, b.header, "{context}: columns");
    assert_eq!(a.rows.len(), b.rows.len(), "{context}: rows");
    for name in &a.header {
        if NOT_COMPARED.iter().any(|c| name.ends_with(c)) {
            continue;
        }
        for (&x, y) in a.column(name).iter().zip(b.column(name)) {
            assert!(
                (x - y).abs() <= tol * y.abs().max(f64::MIN_POSITIVE)
                    || x == y
                    || (x.is_nan() && y.is_nan()),
                "{context}: {name} {x} over ranks, {y} in one process"
            );
        }
    }
}

/// The spec (its first line its name, which becomes "ranks") run in one process and over
/// each rank count: the same metrics. The runs stay in the scratch returned, as
/// `ranks/one` and `ranks/np{R}`.
fn assert_same_over_ranks(spec: &str, data_dir: &Path, ranks: &[usize], context: &str) -> Scratch {
    let s = Scratch::new();
    let (_, rest) = spec.split_once('\n').expect("a spec");
    let path = s.write("spec.toml", &format!("name = \"ranks\"\n{rest}"));
    let data = data_dir.to_str().unwrap();
    let spec = path.to_str().unwrap();
    let out = s.out();
    let out = out.to_str().unwrap();
    run(
        &path,
        &s.out(),
        &["--run-id", "one", "--data-dir", data, "--threads", "1"],
    )
    .expect_code(0, context);
    let one = read_metrics(&s.out().join("ranks/one"));
    for &r in ranks {
        let id = format!("np{r}");
        let ended = mpirun(
            r,
            &[spec, "--out", out, "--run-id", &id, "--data-dir", data],
        )
        .args(["--threads", "1"])
        .status()
        .unwrap();
        assert!(ended.success(), "{context}: mpirun -np {r}");
        let dir = s.out().join("ranks").join(&id);
        assert_eq!(
            entries(&dir),
            entries(&s.out().join("ranks/one")),
            "{context}: -np {r} writes the files one process writes"
        );
        assert_eq!(status(&dir), "completed", "{context}: -np {r}");
        assert_close(
            &read_metrics(&dir),
            &one,
            1e-12,
            &format!("{context}, -np {r}"),
        );
    }
    // rank 0 alone wrote: one folder per run, nothing beside them
    let mut want: Vec<String> = ranks.iter().map(|r| format!("np{r}")).collect();
    want.push("one".into());
    assert_eq!(entries(&s.out().join("ranks")), want, "{context}");
    s
}

/// The task tensors of a run's final checkpoint that some rank other than 0 holds
/// differently from rank 0 (saved under `rank{r}.task.`).
fn task_state_differing_by_rank(run_dir: &Path) -> Vec<String> {
    let named = tch::Tensor::read_safetensors(run_dir.join("checkpoint.safetensors")).unwrap();
    named
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("rank") && name.contains(".task."))
        .collect()
}

#[test]
fn least_squares_over_2_and_4_ranks_is_the_one_process_run() {
    let s = Scratch::new();
    for (optimizer, name) in [(SISA, "sisa"), (ADAM, "adam")] {
        assert_same_over_ranks(&least_squares(optimizer), s.path(), &[2, 4], name);
    }
}

#[test]
fn an_mnist_mlp_over_2_and_4_ranks_is_the_one_process_run() {
    let s = Scratch::new();
    write_mnist(&s.path().join("mnist"), "t10k", 200);
    for (optimizer, name) in [(SISA, "sisa"), (ADAM, "adam")] {
        assert_same_over_ranks(&mnist(optimizer), s.path(), &[2, 4], name);
    }
}

/// [`gpt_spec`] with 4 workers, in f64.
fn gpt(style: &str, optimizer: &str) -> String {
    edit(
        &edit(
            &gpt_spec(style, optimizer, ""),
            "workers = 2",
            "workers = 4",
        ),
        "threads = 1",
        "dtype = \"f64\"",
    )
}

/// NSISA on the blocks, AdamW on the tied embedding: Figure 2's set-up in small.
const NSISA_ADAMW: &str =
    "name = \"nsisa\"\nsigma0 = 80.0\nrho = 3000.0\ngamma = 1.0\nscheme = 2\n\
     momentum = 0.95\n\n[optimizer.embedding]\nname = \"adamw\"\nlr = 0.003";

#[test]
fn gpt_pretraining_over_2_and_4_ranks_is_the_one_process_run() {
    let s = Scratch::new();
    write_token_shards(s.path());
    assert_same_over_ranks(&gpt("modded", NSISA_ADAMW), s.path(), &[2, 4], "nsisa");
    let adamw = "name = \"adamw\"\nlr = 0.003";
    assert_same_over_ranks(&gpt("classic", adamw), s.path(), &[2], "adamw");
}

#[test]
fn recipes_fine_tuning_with_dropout_over_2_ranks_is_the_one_process_run() {
    let s = Scratch::new();
    write_recipes(s.path());
    let spec = edit(
        &edit(&recipes_spec(RECIPES_GPT, ""), "epochs = 3", "epochs = 2"),
        "threads = 1",
        "dtype = \"f64\"",
    );
    assert_same_over_ranks(&spec, s.path(), &[2], "recipes");
}

/// The process of rank `rank` among the descendants running `marker` in their command line.
fn rank_pid(marker: &str, rank: usize) -> Option<u32> {
    let want = format!("OMPI_COMM_WORLD_RANK={rank}");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let environ = std::fs::read(e.path().join("environ")).ok()?;
        let has = |hay: &[u8], needle: &str| hay.split(|&b| b == 0).any(|w| w == needle.as_bytes());
        let runs = String::from_utf8_lossy(&cmdline).contains(marker)
            && cmdline.starts_with(PISA.as_bytes());
        (runs && has(&environ, &want)).then_some(pid)
    })
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn a_run_over_ranks_resumes_after_kill_9_of_one_rank() {
    // σ held (γ = 1) over a run long enough to be killed mid-way: ~2 ms an iteration over
    // 2 oversubscribed ranks
    let long = |optimizer: &str| {
        edit(
            &least_squares(optimizer),
            "iterations = 40\neval_every = 5\ncheckpoint_every = 10",
            "iterations = 4000\neval_every = 400\ncheckpoint_every = 200",
        )
    };
    assert_resumes_after_kill_9_of_rank_1(&long(&format!("{SISA}\ngamma = 1.0")));
    // the nodes of a protocol, each rank holding its own (their state under their names)
    let ring = "name = \"sgd\"\nlr = 0.01\nmomentum = 0.9\n\n[protocol]\nkind = \"async-ring\"";
    assert_resumes_after_kill_9_of_rank_1(&long(ring));
}

fn assert_resumes_after_kill_9_of_rank_1(spec: &str) {
    let s = Scratch::new();
    let path = s.write("spec.toml", spec);
    let spec = path.to_str().unwrap();
    let out = s.out();
    let out = out.to_str().unwrap();
    let log = s.path().join("mpirun.err");
    let start = |id: &str, extra: &[&str]| {
        mpirun(2, &[spec, "--out", out, "--run-id", id, "--threads", "1"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap()
    };
    let mut whole = start("whole", &[]);
    assert!(wait_with_timeout(&mut whole, Duration::from_secs(300)).is_some_and(|s| s.success()));
    let want = read_metrics(&s.out().join("ranks/whole"));

    let mut child = start("killed", &["--resume"]);
    let checkpointed = || {
        entries(&s.out().join("ranks")).iter().any(|e| {
            s.out()
                .join("ranks")
                .join(e)
                .join("checkpoint.safetensors")
                .exists()
                && e != "whole"
        })
    };
    let started = Instant::now();
    while !checkpointed() && started.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(checkpointed(), "a checkpoint was written");
    let pid = rank_pid("killed", 1).expect("rank 1 runs");
    // SAFETY: a plain kill(2) of a child process we started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let ended = wait_with_timeout(&mut child, Duration::from_secs(60));
    assert!(
        ended.is_some_and(|s| !s.success()),
        "rank 1's death ends the run, within a minute"
    );
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(
        said.contains("rank 1") && said.contains("signal 9"),
        "mpirun names the rank that died: {said}"
    );
    assert!(
        !s.out().join("ranks/killed").exists(),
        "killed before the end"
    );

    let mut resumed = start("killed", &["--resume"]);
    assert!(wait_with_timeout(&mut resumed, Duration::from_secs(300)).is_some_and(|s| s.success()));
    let got = read_metrics(&s.out().join("ranks/killed"));
    assert_close(&got, &want, 0.0, "resumed over ranks");
}

/// An AWD-LSTM with the suite's dropouts on a PTB-format corpus (`ptb/`, [`write_ptb`]),
/// in f64: 4 pieces of each BPTT chunk.
const LANGUAGE_MODEL: &str = r#"name = "ranks"
seed = 6

[data]
kind = "ptb"
path = "ptb"

[model]
kind = "awd_lstm"
layers = 2
emsize = 4
nhid = 5

[train]
workers = 4
batch_size = 2
bptt = 6
iterations = 12
eval_every = 4
checkpoint_every = 12
dtype = "f64"

[optimizer]
"#;

/// A corpus in the Mikolov files' format: 280 words.
fn write_ptb(dir: &Path) {
    let corpus = dir.join("ptb");
    std::fs::create_dir_all(&corpus).unwrap();
    for split in ["train", "valid", "test"] {
        let text = " a b c d e f \n b c d e f a \n".repeat(20);
        std::fs::write(corpus.join(format!("ptb.{split}.txt")), text).unwrap();
    }
}

#[test]
fn an_awd_lstm_over_2_and_4_ranks_is_the_one_process_run() {
    let s = Scratch::new();
    write_ptb(s.path());
    for (optimizer, name, ranks) in [(SISA, "sisa", &[2, 4][..]), (ADAM, "adam", &[2])] {
        let spec = format!("{LANGUAGE_MODEL}{optimizer}\n");
        let runs = assert_same_over_ranks(&spec, s.path(), ranks, name);
        // every rank carried the hidden state through the others' pieces
        let differing = task_state_differing_by_rank(&runs.out().join("ranks/np2"));
        assert!(
            !differing.iter().any(|k| k.contains("hidden")),
            "{name}: {differing:?}"
        );
    }
}

#[test]
fn ppo_on_mujoco_over_2_ranks_is_the_one_process_run() {
    let spec = edit(&rl_spec("", 2), "dtype = \"f32\"", "dtype = \"f64\"");
    let s = Scratch::new();
    assert_same_over_ranks(&spec, s.path(), &[2], "ppo");
}

/// A Table 2 cell in small: 10 MNIST-shaped clients with two labels each.
fn federated(optimizer: &str) -> String {
    edit(
        &edit(
            &mnist(optimizer),
            "test_fraction = 0.25",
            "test_fraction = 0.25\npartition = { kind = \"label-skew\", labels = 2 }",
        ),
        "workers = 4\nbatch_size = 10",
        "workers = 10\nbatch_size = 4",
    )
}

#[test]
fn a_federated_table_2_cell_over_2_ranks_is_the_one_process_run() {
    let s = Scratch::new();
    write_mnist(&s.path().join("mnist"), "t10k", 200);
    for (optimizer, name) in [
        (
            "name = \"fedavg\"\nlr = 0.05\nlocal_steps = 3\nparticipation = 0.5",
            "fedavg",
        ),
        (
            "name = \"scaffold\"\nlr = 0.05\nlocal_steps = 2",
            "scaffold",
        ),
        (
            "name = \"fednova\"\nlr = 0.05\nmomentum = 0.9\nlocal_steps = 2",
            "fednova",
        ),
    ] {
        assert_same_over_ranks(&federated(optimizer), s.path(), &[2], name);
    }
}

/// A GAN of `model` in f64 with SISA on both players (`fmnist/`): 4 workers, 3 iterations
/// (the generator in the first and third).
fn gan(model: &str, game: &str) -> String {
    format!(
        r#"name = "ranks"
seed = 4

[data]
kind = "fashion_mnist"
path = "fmnist"

[model]
kind = "{model}"

[gan]
nz = 8
ngf = 4
ndf = 4
image_size = 32
n_critic = 2
{game}
score_samples = 24
final_samples = 24

[train]
workers = 4
batch_size = 4
iterations = 3
eval_every = 1
checkpoint_every = 3
dtype = "f64"

[optimizer]
{SISA}
"#
    )
}

#[test]
fn wgan_and_wgan_gp_over_2_and_4_ranks_are_the_one_process_run() {
    let s = Scratch::new();
    write_mnist(&s.path().join("fmnist"), "train", 64);
    write_mnist(&s.path().join("fmnist"), "t10k", 16);
    let runs = assert_same_over_ranks(&gan("wgan", "clip_value = 0.01"), s.path(), &[2, 4], "wgan");
    // every rank replayed the others' passes: the same batch-norm statistics everywhere
    for r in [2, 4] {
        let run = runs.out().join(format!("ranks/np{r}"));
        assert_eq!(
            task_state_differing_by_rank(&run),
            Vec::<String>::new(),
            "-np {r}"
        );
    }
    assert_same_over_ranks(
        &gan("wgan_gp", "gp_weight = 10.0"),
        s.path(),
        &[2],
        "wgan-gp",
    );
}

#[test]
fn mixml_protocols_over_2_and_4_ranks_are_the_one_process_run() {
    let s = Scratch::new();
    write_mnist(&s.path().join("mnist"), "t10k", 200);
    let sgd = "name = \"sgd\"\nlr = 0.05\nmomentum = 0.9";
    for (optimizer, protocol, ranks) in [
        (sgd, "kind = \"sync-ring\"", &[2, 4][..]),
        (sgd, "kind = \"async-ring\"", &[2, 4]),
        (sgd, "kind = \"slack\"\ngamma = 0.5", &[2]),
        (sgd, "kind = \"local-steps\"\nm = 2", &[2]),
        (SISA, "kind = \"sync-ring\"", &[2]),
    ] {
        let spec = format!("{}\n[protocol]\n{protocol}\n", mnist(optimizer));
        assert_same_over_ranks(&spec, s.path(), ranks, protocol);
    }
}

#[test]
fn what_cannot_run_over_ranks_is_refused_with_its_reason() {
    let s = Scratch::new();
    write_mnist(&s.path().join("fmnist"), "train", 64);
    write_mnist(&s.path().join("fmnist"), "t10k", 16);
    let out = s.out();
    let cases = [
        (
            edit(
                &edit(&least_squares(SISA), "workers = 4", "workers = 3"),
                "samples = 64",
                "samples = 60",
            ),
            ["key `train.workers`", "multiple of the rank count"],
            true,
        ),
        (
            gan("wgan", "clip_value = 0.01")
                .replace(SISA, "name = \"fedavg\"\nlr = 0.1\nlocal_steps = 2"),
            ["asked for twice", "federated algorithm's local steps"],
            false,
        ),
    ];
    let data = s.path().to_str().unwrap();
    // the spec refused before any write, then the run that fails at its first iteration
    for (i, (spec, said, refused)) in cases.iter().enumerate() {
        let path = s.write(&format!("bad{i}.toml"), spec);
        let output = mpirun(2, &[path.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .args(["--data-dir", data])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{said:?}: refused");
        assert!(
            said.iter().all(|m| stderr.contains(m)),
            "{said:?}: {stderr}"
        );
        if *refused {
            assert_nothing_written(&out, said[0]);
        }
    }
}

#[test]
fn the_launcher_runs_the_command_under_mpirun() {
    let s = Scratch::new();
    let path = s.write("spec.toml", &least_squares(ADAM));
    let launched = pisa([
        "run",
        path.to_str().unwrap(),
        "--out",
        s.out().to_str().unwrap(),
        "--launcher",
        "mpi",
        "-n",
        "2",
        "--threads",
        "1",
    ]);
    launched.expect_code(0, "--launcher mpi -n 2");
    let dir = s.out().join("ranks/default");
    assert_eq!(status(&dir), "completed");
    // Adam reports no communication; its 9 rows are all there
    let metrics = read_metrics(&dir);
    assert!(!metrics.header.contains(&"floats_up".to_string()));
    assert_eq!(metrics.rows.len(), 9);
}

/// `pisa mixing --live` over 4 ranks, the six protocols: every run's log replayed on its X
/// gives the rows the ranks ended with; the synchronous protocols' live t_mix is the
/// simulated run's; the asynchronous logs hold a step per worker step, the ring's pairs are
/// ring neighbours and the pulls one per step.
#[test]
fn live_protocols_over_4_ranks_log_what_they_did() {
    let s = Scratch::new();
    let spec = s.write(
        "live.toml",
        r#"name = "live"
seed = 5
workers = [4]
runs = 4
dim = 3

[live]
steps = 40
step_ms = 0.5

[protocols.AllReduce]
kind = "allreduce"

[protocols.local]
kind = "local-steps"
m = 3

[protocols.AsyncPS]
kind = "async-ps"

[protocols.SyncDR]
kind = "sync-ring"

[protocols.AsyncDR]
kind = "async-ring"

[protocols.slack]
kind = "slack"
gamma = 0.25
"#,
    );
    let out = s.out();
    let ended = mpirun_pisa(
        4,
        "mixing",
        &[
            spec.to_str().unwrap(),
            "--live",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .status()
    .unwrap();
    assert!(ended.success(), "mpirun -np 4 pisa mixing --live");
    let dir = out.join("live-live-n4");
    let live = std::fs::read_to_string(dir.join("live.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(live.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 6 * 4, "{live}");
    for row in &rows {
        let (protocol, run) = (&row[0], &row[2]);
        let (t_mix, simulated): (u64, u64) = (row[3].parse().unwrap(), row[4].parse().unwrap());
        let (steps, events): (usize, usize) = (row[5].parse().unwrap(), row[6].parse().unwrap());
        let error: f64 = row[7].parse().unwrap();
        assert!(error <= 1e-12, "{protocol} run {run}: replay {error}");
        assert_eq!(steps, 4 * 40);
        match protocol {
            "AsyncPS" | "AsyncDR" => assert_eq!(events, steps, "{protocol}: one event a step"),
            _ => assert_eq!(t_mix, simulated, "{protocol} run {run}"),
        }
        let log = std::fs::read_to_string(
            dir.join("events")
                .join(protocol)
                .join(format!("run-{run}.csv")),
        )
        .unwrap();
        let records: Vec<Vec<&str>> = log
            .lines()
            .skip(1)
            .map(|l| l.split(',').collect())
            .collect();
        assert_eq!(records.iter().filter(|r| r[1] == "step").count(), steps);
        let mut last = 0.0;
        for r in &records {
            let time: f64 = r[0].parse().unwrap();
            assert!(time >= last, "{protocol}: the log in time order");
            last = time;
            if protocol == "AsyncDR" && r[1] == "pair" {
                let (i, j): (usize, usize) = (r[2].parse().unwrap(), r[3].parse().unwrap());
                assert!(
                    (i + 1) % 4 == j || (j + 1) % 4 == i,
                    "a pair of neighbours {i} {j}"
                );
            }
        }
    }
    let summary = std::fs::read_to_string(dir.join("t_mix-summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 1 + 6, "{summary}");
}
