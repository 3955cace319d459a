//! Cross-checking pisa's federated baselines against NIID-Bench's training loops:
//! scripts/golden_federated.py re-implemented `train_net`, `train_net_fedprox`,
//! `train_net_fednova`, `train_net_scaffold` and their server updates in PyTorch and wrote,
//! per case, the global model's losses after every round to
//! tests/data/crosscheck/<case>-losses.csv; this test needs no Python.
mod common;

use common::{pisa, read_metrics, Scratch};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/crosscheck");

/// The specs tests/data/crosscheck/<case>.toml, and whether their clients all take the
/// same number of local steps (then FedNova is FedAvg).
const CASES: [(&str, bool); 2] = [("federated-iid", true), ("federated-skew", false)];

/// Each algorithm and its extra `--set`s (= ALGORITHMS in scripts/golden_federated.py).
const ALGORITHMS: [(&str, &[&str]); 4] = [
    ("fedavg", &[]),
    ("fedprox", &["optimizer.mu=0.1"]),
    ("fednova", &[]),
    ("scaffold", &[]),
];

fn data(name: &str) -> PathBuf {
    Path::new(DATA).join(name)
}

/// (train_loss, test_loss) per round of each algorithm in a case's golden CSV.
fn goldens(case: &str) -> BTreeMap<String, [Vec<f64>; 2]> {
    let text = std::fs::read_to_string(data(&format!("{case}-losses.csv"))).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("optimizer,iteration,train_loss,test_loss")
    );
    let mut curves = BTreeMap::<String, [Vec<f64>; 2]>::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let curve = curves.entry(fields[0].to_string()).or_default();
        assert_eq!(
            fields[1].parse::<usize>().unwrap(),
            curve[0].len(),
            "{line}"
        );
        for (column, value) in curve.iter_mut().zip(&fields[2..]) {
            column.push(value.parse().unwrap());
        }
    }
    curves
}

/// The largest relative difference between two curves.
fn worst(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs() / b.abs())
        .fold(0.0, f64::max)
}

/// `pisa run` of a case's spec with one algorithm, into OUT/crosscheck-<case>/<algorithm>,
/// on one thread (tiny tensors: more threads only contend).
fn args(case: &str, (name, extra): (&str, &[&str]), out: &Path) -> Vec<String> {
    let spec = data(&format!("{case}.toml"));
    let mut args: Vec<String> = ["run", spec.to_str().unwrap(), "--data-dir", DATA]
        .into_iter()
        .chain([
            "--out",
            out.to_str().unwrap(),
            "--run-id",
            name,
            "--threads",
            "1",
        ])
        .map(String::from)
        .collect();
    for value in
        std::iter::once(format!("optimizer.name={name}")).chain(extra.iter().map(|e| e.to_string()))
    {
        args.extend(["--set".to_string(), value]);
    }
    args
}

#[test]
fn federated_baselines_match_niid_bench_training_loops() {
    let s = Scratch::new();
    let out = s.out();
    // Every (case, algorithm) at once.
    let runs: Vec<(&str, &str, Vec<String>)> = CASES
        .iter()
        .flat_map(|&(case, _)| ALGORITHMS.map(|a| (case, a.0, args(case, a, &out))))
        .collect();
    std::thread::scope(|scope| {
        let started: Vec<_> = runs
            .iter()
            .map(|(_, _, args)| scope.spawn(move || pisa(args)))
            .collect();
        for (handle, (_, _, args)) in started.into_iter().zip(&runs) {
            let outcome = handle.join().unwrap();
            outcome.expect_code(0, &format!("pisa {}", args.join(" ")));
        }
    });
    for (case, equal_steps) in CASES {
        let expected = goldens(case);
        let mut names: Vec<&str> = ALGORITHMS.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        assert_eq!(expected.keys().collect::<Vec<_>>(), names, "{case}");
        let partition = std::fs::read_to_string(data(&format!("{case}-partition.json"))).unwrap();
        for (name, _) in ALGORITHMS {
            let dir = out.join(format!("crosscheck-{case}")).join(name);
            // The clients hold the samples the script trained them on.
            assert!(
                std::fs::read_to_string(dir.join("partition.json")).unwrap() == partition,
                "{case}: pisa's partition is no longer {case}-partition.json; delete it and \
                 rerun scripts/golden_federated.py"
            );
            let metrics = read_metrics(&dir);
            let want = &expected[name];
            let rounds: Vec<f64> = (0..want[0].len()).map(|r| r as f64).collect();
            assert_eq!(metrics.column("iteration"), rounds, "{case} {name}");
            for (column, want) in ["train_loss", "test_loss"].into_iter().zip(want) {
                let got = metrics.column(column);
                let worst = worst(&got, want);
                eprintln!("{case} {name} {column}: max relative difference {worst:.2e}");
                assert!(
                    worst <= 1e-10,
                    "{case} {name} {column}: pisa {got:?}\nNIID-Bench {want:?}"
                );
            }
            // The rounds trained: the check is not one of a flat curve.
            let train = &want[0];
            assert!(
                train[train.len() - 1] < 0.7 * train[0],
                "{case} {name}: {train:?}"
            );
        }
        // The check tells the algorithms apart: each one's curve is FedAvg's only where
        // they agree in exact arithmetic (FedNova when every τ_i is the same).
        for (name, _) in &ALGORITHMS[1..] {
            let apart = worst(&expected[*name][0], &expected["fedavg"][0]);
            if *name == "fednova" && equal_steps {
                assert!(apart <= 1e-10, "{case}: FedNova with equal τ_i is FedAvg");
            } else {
                assert!(apart > 1e-4, "{case}: {name} is FedAvg ({apart:.2e})");
            }
        }
    }
}
