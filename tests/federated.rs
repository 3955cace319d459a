//! End to end, Table 2's path on a tiny dataset: an MNIST-shaped IDX folder of 300 images,
//! 1-label skew over 10 clients, FedAvg and SISA swept over two seeds through the binary,
//! then `pisa plot` on the folder of experiments writes table2.csv/.md.
mod common;

use common::*;
use std::fs;

fn spec(optimizer: &str, iterations: usize) -> String {
    format!(
        r#"name = "table2-tiny-{name}"
seed = 1

[data]
kind = "mnist"
path = "mnist"
test_fraction = 0.2
partition = {{ kind = "label-skew", labels = 1 }}

[model]
kind = "mlp"
hidden = [16]

[train]
workers = 10
batch_size = 8
iterations = {iterations}
eval_every = {iterations}
dtype = "f32"

[optimizer]
{optimizer}

[sweep]
# Seeds whose final accuracies differ for both algorithms (1: 100 % and 100 %; 3: 95 % and
# 93.3 %), so the table's mean and std are not those of equal values.
seed = [1, 3]

[plot]
y = ["test_acc"]
table = "table2"
"#,
        name = optimizer
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("name = ")
            .trim_matches('"'),
    )
}

#[test]
fn table2_end_to_end_on_a_tiny_dataset() {
    let s = Scratch::new();
    let data = s.path().join("data");
    write_mnist(&data.join("mnist"), "t10k", 300);
    let specs = [
        spec("name = \"fedavg\"\nlr = 0.05\nlocal_steps = 3", 4),
        spec(
            "name = \"sisa\"\nscheme = 3\nsigma0 = 10.0\nrho = 100.0\ngamma = 1.0",
            12,
        ),
    ];
    for (i, text) in specs.iter().enumerate() {
        let path = s.write(&format!("spec{i}.toml"), text);
        sweep(
            &path,
            &s.out(),
            &["--data-dir", data.to_str().unwrap(), "--jobs", "1"],
        )
        .expect_code(0, "sweep");
    }

    // every run records its partition: 240 training samples, each client one label
    let run = s.out().join("table2-tiny-fedavg").join("seed=1");
    let partition: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(run.join("partition.json")).unwrap()).unwrap();
    let text = partition.to_string();
    assert!(
        text.contains("label-skew"),
        "partition.json names its scheme: {text}"
    );

    // communication in the metrics: FedAvg moves P floats each way per client and round
    let m = read_metrics(&run);
    assert!(
        m.header.contains(&"floats_up".to_string()),
        "{:?}",
        m.header
    );
    let up = m.column("floats_up");
    let p = 784 * 16 + 16 + 16 * 10 + 10;
    assert_eq!(up.last(), Some(&(4.0 * 10.0 * p as f64)));

    pisa(["plot".as_ref(), s.out().as_os_str()]).expect_code(0, "plot");
    let csv = fs::read_to_string(s.out().join("table2.csv")).unwrap();
    let md = fs::read_to_string(s.out().join("table2.md")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "dataset,partition,algorithm,seeds,mean,std,paper_mean,paper_std,difference,disagrees"
    );
    // One row per algorithm that ran, in the paper's column order.
    assert_eq!(rows.len(), 3, "{csv}");
    let md_row = md
        .lines()
        .find(|l| l.starts_with("| mnist | 1-Label |"))
        .unwrap_or_else(|| panic!("no MNIST 1-Label row in {md}"));
    let cells: Vec<&str> = md_row
        .trim_start_matches("| ")
        .trim_end_matches(" |")
        .split(" | ")
        .collect();
    assert_eq!(cells.len(), 2 + 5, "{md_row}");
    // FedProx, FedNova and SCAFFOLD did not run: the paper's value alone.
    assert_eq!(
        cells[3..6],
        ["– [54.33 ± 0.67]", "– [49.00 ± 0.42]", "– [47.04 ± 0.02]"],
        "{md_row}"
    );
    for (row, algorithm, paper, md_cell) in [
        (rows[1], "fedavg", ("53.19", "0.21"), cells[2]),
        (rows[2], "sisa", ("94.97", "0.01"), cells[6]),
    ] {
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(&fields[..4], ["mnist", "1-Label", algorithm, "2"], "{row}");
        // the paper's MNIST 1-Label numbers sit beside ours
        assert_eq!((fields[6], fields[7]), paper, "{row}");
        // The cell is the mean ± sample std of the seeds' final test accuracy, which each
        // run's summary.json and the last row of its metrics.csv both record.
        let accuracies: Vec<f64> = [1, 3]
            .iter()
            .map(|seed| {
                let dir = s
                    .out()
                    .join(format!("table2-tiny-{algorithm}"))
                    .join(format!("seed={seed}"));
                let last = *read_metrics(&dir).column("test_acc").last().unwrap();
                // (to an ulp: serde_json's default parser may round the last digit)
                let summary = read_summary(&dir)["last"]["test_acc"].as_f64().unwrap();
                assert!((summary - last).abs() <= 1e-15, "{summary} vs {last}");
                // It learned: chance is 10 %; over seeds 1–6 the final accuracies were
                // 90–100 % for both (the same with 1 and 2 libtorch threads).
                assert!(last >= 0.6, "{algorithm} seed {seed}: test accuracy {last}");
                100.0 * last
            })
            .collect();
        let mean = (accuracies[0] + accuracies[1]) / 2.0;
        let std = (accuracies[0] - accuracies[1]).abs() / 2f64.sqrt();
        assert!(
            std > 0.0,
            "test bug: the seeds should differ: {accuracies:?}"
        );
        let (table_mean, table_std): (f64, f64) =
            (fields[4].parse().unwrap(), fields[5].parse().unwrap());
        // four decimals in the CSV
        assert!(
            (table_mean - mean).abs() < 1e-4,
            "{row}: mean of {accuracies:?}"
        );
        assert!(
            (table_std - std).abs() < 1e-4,
            "{row}: std of {accuracies:?}"
        );
        // Δ = ours − the paper's, ≠ beyond 3 standard deviations of the difference.
        let (paper_mean, paper_std): (f64, f64) =
            (paper.0.parse().unwrap(), paper.1.parse().unwrap());
        let delta = mean - paper_mean;
        let far = delta.abs() > 3.0 * std.hypot(paper_std);
        assert_eq!(
            md_cell,
            format!(
                "{mean:.2} ± {std:.2} (n = 2) [{} ± {}] Δ {delta:+.2}{}",
                paper.0,
                paper.1,
                if far { " ≠" } else { "" }
            ),
            "{md_row}"
        );
        assert_eq!(fields[8], format!("{delta:.4}"), "{row}");
        assert_eq!(fields[9], far.to_string(), "{row}");
    }
    // each experiment's accuracy figure is drawn too
    assert!(s
        .out()
        .join("table2-tiny-sisa")
        .join("table2-tiny-sisa-test_acc.png")
        .is_file());
}
