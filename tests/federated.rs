//! End to end, Table 2's path on a tiny dataset: an MNIST-shaped IDX folder of 300 images,
//! 1-label skew over 10 clients, FedAvg and SISA swept over two seeds through the binary,
//! then `pisa plot` on the folder of experiments writes table2.csv/.md.
mod common;

use common::*;
use std::fs;
use std::path::Path;

/// IDX bytes: magic 0x0000 0x08 (u8) `ndims`, big-endian dims, data.
fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(data);
    out
}

/// 28×28 images whose class k lights up row block k (plus noise), so a model can learn.
fn write_mnist(dir: &Path, n: usize) {
    fs::create_dir_all(dir).unwrap();
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
    fs::write(
        dir.join("t10k-images-idx3-ubyte"),
        idx(&[n as u32, 28, 28], &images),
    )
    .unwrap();
    fs::write(
        dir.join("t10k-labels-idx1-ubyte"),
        idx(&[n as u32], &labels),
    )
    .unwrap();
}

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
seed = [1, 2]

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
    write_mnist(&data.join("mnist"), 300);
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
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "dataset,partition,algorithm,seeds,mean,std,paper_mean,paper_std"
    );
    for algorithm in ["fedavg", "sisa"] {
        let row = rows
            .iter()
            .find(|r| r.contains(&format!(",{algorithm},")))
            .unwrap_or_else(|| panic!("no {algorithm} row in {csv}"));
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(&fields[..4], ["mnist", "1-Label", algorithm, "2"], "{row}");
        let mean: f64 = fields[4].parse().unwrap();
        assert!((0.0..=100.0).contains(&mean), "{row}");
        // the paper's MNIST 1-Label numbers sit beside ours
        let paper = if algorithm == "sisa" {
            "94.97"
        } else {
            "53.19"
        };
        assert_eq!(fields[6], paper, "{row}");
    }
    let md = fs::read_to_string(s.out().join("table2.md")).unwrap();
    assert!(md.contains("| mnist | 1-Label |"), "{md}");
    // each experiment's accuracy figure is drawn too
    assert!(s
        .out()
        .join("table2-tiny-sisa")
        .join("table2-tiny-sisa-test_acc.png")
        .is_file());
}
