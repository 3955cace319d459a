//! Cross-checking runs with PyTorch: `pisa init`, `train.init`, and pisa's training loss
//! against a plain torch.optim loop (scripts/golden_crosscheck.py wrote the goldens in
//! tests/data/crosscheck/; this test needs no Python).
mod common;

use common::{pisa, read_metrics, Scratch};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/crosscheck");

fn data(name: &str) -> PathBuf {
    Path::new(DATA).join(name)
}

/// `pisa run SPEC --data-dir DATA --out OUT EXTRA…`; asserts exit code `code`.
fn run(spec: &Path, out: &Path, extra: &[&str], code: i32) -> common::Outcome {
    let mut args = vec!["run", spec.to_str().unwrap(), "--data-dir", DATA];
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend(extra);
    let outcome = pisa(&args);
    outcome.expect_code(code, &format!("pisa {}", args.join(" ")));
    outcome
}

/// `pisa init SPEC --data-dir DATA --out FILE EXTRA…`.
fn init(spec: &Path, file: &Path, extra: &[&str]) -> common::Outcome {
    let mut args = vec!["init", spec.to_str().unwrap(), "--data-dir", DATA];
    args.extend(["--out", file.to_str().unwrap()]);
    args.extend(extra);
    pisa(&args)
}

fn tensors(file: &Path) -> BTreeMap<String, Tensor> {
    Tensor::read_safetensors(file)
        .unwrap()
        .into_iter()
        .collect()
}

/// A golden CSV's columns by name.
fn golden(case: &str) -> BTreeMap<String, Vec<f64>> {
    let text = std::fs::read_to_string(data(&format!("{case}-losses.csv"))).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.to_string(), rows.iter().map(|r| r[i]).collect()))
        .collect()
}

#[test]
fn train_losses_match_torch_optim_sgd_momentum_and_adam() {
    let s = Scratch::new();
    for case in ["sgd", "adam"] {
        run(&data(&format!("{case}.toml")), &s.out(), &[], 0);
        let metrics = read_metrics(&s.out().join(format!("crosscheck-{case}/default")));
        let expected = golden(case);
        assert_eq!(metrics.column("iteration"), expected["iteration"]);
        assert_eq!(metrics.rows.len(), 51, "{case}: w⁰ and 50 iterations");
        for column in ["train_loss", "test_loss"] {
            let (got, want) = (metrics.column(column), &expected[column]);
            let worst = got
                .iter()
                .zip(want)
                .map(|(a, b)| (a - b).abs() / b.abs())
                .fold(0.0, f64::max);
            eprintln!("{case} {column}: max relative difference {worst:.2e}");
            assert!(
                worst <= 1e-12,
                "{case} {column}: pisa {got:?}\ntorch {want:?}"
            );
        }
        // The loop trained: the check is not one of a flat curve.
        let train = &expected["train_loss"];
        assert!(train[50] < 0.05 * train[0], "{case}: {train:?}");
    }
}

#[test]
fn pisa_init_writes_the_point_that_pisa_run_starts_from() {
    let s = Scratch::new();
    // The seeded initialisation: the cross-check spec without train.init, 3 iterations.
    let text = std::fs::read_to_string(data("sgd.toml")).unwrap();
    let seeded = common::edit(&text, "init = \"init.safetensors\"", "");
    let spec = s.write("seeded.toml", &seeded);
    let file = s.path().join("w0.safetensors");
    let outcome = init(&spec, &file, &["--set", "seed=5"]);
    outcome.expect_code(0, "pisa init");
    assert_eq!(outcome.stdout.trim(), file.to_str().unwrap());
    let names: Vec<_> = std::fs::read_dir(s.path()).unwrap().collect();
    assert_eq!(names.len(), 2, "only the spec and the file: {names:?}");

    // The same names, shapes and dtype as PyTorch's state_dict (the committed init).
    let written = tensors(&file);
    let torch = tensors(&data("init.safetensors"));
    assert_eq!(
        written.keys().collect::<Vec<_>>(),
        ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]
    );
    for (name, t) in &written {
        assert_eq!(t.size(), torch[name].size(), "{name}");
        assert_eq!(t.kind(), Kind::Double, "{name}");
    }

    let file_arg = format!("train.init={}", file.display());
    let set = ["--set", "seed=5", "--set", "train.iterations=3"];
    run(
        &spec,
        &s.out(),
        &[&set[..], &["--run-id", "seeded"]].concat(),
        0,
    );
    let with_init = [&set[..], &["--set", &file_arg, "--run-id", "from-file"]].concat();
    run(&spec, &s.out(), &with_init, 0);
    let seeded = read_metrics(&s.out().join("crosscheck-sgd/seeded"));
    let from_file = read_metrics(&s.out().join("crosscheck-sgd/from-file"));
    assert_eq!(seeded.numbers(), from_file.numbers());

    // Another seed starts elsewhere; a spec with train.init writes the file's weights.
    let other = s.path().join("other.safetensors");
    init(&spec, &other, &["--set", "seed=6"]).expect_code(0, "pisa init seed 6");
    assert!(!tensors(&other)["fc1.weight"].equal(&written["fc1.weight"]));
    let again = s.path().join("again.safetensors");
    init(&data("sgd.toml"), &again, &[]).expect_code(0, "pisa init with train.init");
    for (name, t) in tensors(&again) {
        assert!(t.equal(&torch[&name]), "{name}");
    }
}

#[test]
fn pisa_export_writes_the_weights_a_run_reached() {
    let s = Scratch::new();
    // The run keeps its final checkpoint, where its w is.
    let keep = ["--set", "train.checkpoint_every=50", "--run-id", "first"];
    run(&data("sgd.toml"), &s.out(), &keep, 0);
    let run_dir = s.out().join("crosscheck-sgd/first");
    let file = s.path().join("trained.safetensors");
    let export = |run_dir: &Path| {
        pisa([
            "export",
            run_dir.to_str().unwrap(),
            "--data-dir",
            DATA,
            "--out",
            file.to_str().unwrap(),
        ])
    };
    let outcome = export(&run_dir);
    outcome.expect_code(0, "pisa export");
    assert_eq!(outcome.stdout.trim(), file.to_str().unwrap());

    // The names of `pisa init`, holding the checkpoint's w in layout order.
    let trained = tensors(&file);
    let start = tensors(&data("init.safetensors"));
    assert_eq!(
        trained.keys().collect::<Vec<_>>(),
        start.keys().collect::<Vec<_>>()
    );
    let checkpoint = tensors(&run_dir.join("checkpoint.safetensors"));
    let order = ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"];
    let flat: Vec<Tensor> = order.iter().map(|n| trained[*n].reshape([-1])).collect();
    assert!(Tensor::cat(&flat, 0).equal(&checkpoint["optimizer.w"]));
    assert!(!trained["fc1.weight"].equal(&start["fc1.weight"]));

    // A run from the exported file starts where the first one ended: its row 0 is the
    // first run's last evaluation.
    let set = format!("train.init={}", file.display());
    let again = [
        "--set",
        &set,
        "--set",
        "train.iterations=1",
        "--run-id",
        "again",
    ];
    run(&data("sgd.toml"), &s.out(), &again, 0);
    let (before, after) = (
        read_metrics(&run_dir),
        read_metrics(&s.out().join("crosscheck-sgd/again")),
    );
    for column in ["train_loss", "test_loss"] {
        let ended = *before.column(column).last().unwrap();
        assert_eq!(after.column(column)[0], ended, "{column}");
    }

    // A folder without a checkpoint is an error naming the file.
    std::fs::remove_file(run_dir.join("checkpoint.safetensors")).unwrap();
    export(&run_dir)
        .expect_code(1, "pisa export without a checkpoint")
        .expect_stderr(
            &["checkpoint.safetensors not found", "train.checkpoint_every"],
            "export",
        );
}

#[test]
fn least_squares_starts_from_the_tensor_w() {
    let s = Scratch::new();
    let spec = s.write("ls.toml", common::BASE_SPEC);
    let file = s.path().join("w0.safetensors");
    init(&spec, &file, &[]).expect_code(0, "pisa init");
    let written = tensors(&file);
    assert_eq!(written.keys().collect::<Vec<_>>(), ["w"]);
    assert!(written["w"].equal(&Tensor::zeros([4], (Kind::Double, tch::Device::Cpu))));

    let w = Tensor::from_slice(&[0.5, -1.0, 2.0, 0.25]);
    let given = s.path().join("given.safetensors");
    Tensor::write_safetensors(&[("w", &w)], &given).unwrap();
    let set = format!("train.init={}", given.display());
    let back = s.path().join("back.safetensors");
    init(&spec, &back, &["--set", &set]).expect_code(0, "pisa init with train.init");
    assert!(tensors(&back)["w"].equal(&w));
    run(&spec, &s.out(), &["--run-id", "zeros"], 0);
    run(&spec, &s.out(), &["--set", &set, "--run-id", "given"], 0);
    let objective = |id: &str| read_metrics(&s.run_dir(id)).column("objective")[0];
    assert_ne!(objective("zeros"), objective("given"));
}

#[test]
fn init_files_that_do_not_fit_are_errors_naming_file_and_tensor() {
    let s = Scratch::new();
    let good = tensors(&data("init.safetensors"));
    let variant = |name: &str, edit: &dyn Fn(&mut BTreeMap<String, Tensor>)| -> PathBuf {
        let mut t: BTreeMap<String, Tensor> =
            good.iter().map(|(k, v)| (k.clone(), v.copy())).collect();
        edit(&mut t);
        let file = s.path().join(format!("{name}.safetensors"));
        let named: Vec<(&str, &Tensor)> = t.iter().map(|(k, v)| (k.as_str(), v)).collect();
        Tensor::write_safetensors(&named, &file).unwrap();
        file
    };
    let not_safetensors = s.write("text.safetensors", "not a safetensors file");
    let cases: Vec<(PathBuf, Vec<&str>)> = vec![
        (
            variant("missing", &|t| {
                t.remove("fc2.bias");
            }),
            vec!["tensor `fc2.bias` [10] is missing"],
        ),
        (
            variant("extra", &|t| {
                t.insert(
                    "fc3.weight".into(),
                    Tensor::zeros([2], tch::kind::FLOAT_CPU),
                );
            }),
            vec!["tensor `fc3.weight` is not in the model"],
        ),
        (
            variant("shape", &|t| {
                t.insert(
                    "fc1.bias".into(),
                    Tensor::zeros([17], tch::kind::DOUBLE_CPU),
                );
            }),
            vec!["tensor `fc1.bias` is [17], but the model's is [16]"],
        ),
        (
            variant("dtype", &|t| {
                let w = t["fc1.weight"].to_kind(Kind::Float);
                t.insert("fc1.weight".into(), w);
            }),
            vec!["tensor `fc1.weight` is f32, but the run trains in f64 (train.dtype)"],
        ),
        (not_safetensors, vec!["cannot read init file"]),
        (s.path().join("absent.safetensors"), vec!["not found"]),
    ];
    for (file, fragments) in cases {
        let set = format!("train.init={}", file.display());
        let outcome = run(&data("sgd.toml"), &s.out(), &["--set", &set], 1);
        outcome.expect_stderr(&fragments, &set);
        outcome.expect_stderr(&[file.to_str().unwrap()], &set);
        assert!(!s.out().exists(), "{set}: nothing written");
        let out = s.path().join("never.safetensors");
        init(&data("sgd.toml"), &out, &["--set", &set]).expect_code(1, "pisa init");
        assert!(!out.exists());
    }
}
