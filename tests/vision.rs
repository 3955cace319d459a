//! End to end, Table 3's path on a tiny CIFAR-10 (binary format, 64 + 32 images): an
//! epoch-based run with per-epoch evaluation and checkpoints, the default crop-flip
//! augmentation and a batch-norm ResNet, then `pisa plot` writes table3.md and Figure 1.
mod common;

use common::*;
use std::fs;
use std::path::Path;

/// `n` CIFAR-10 records (label byte + 3×32×32 pixels); class k brightens channel k % 3.
fn records(n: usize, seed: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 3073);
    let mut state = seed;
    for i in 0..n {
        let k = (i % 10) as u8;
        out.push(k);
        for c in 0..3 {
            for _ in 0..1024 {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (state >> 26) as u8;
                out.push(if c == k % 3 {
                    150 + noise + 10 * k
                } else {
                    noise
                });
            }
        }
    }
    out
}

fn write_cifar(data_dir: &Path) {
    let dir = data_dir.join("cifar10").join("cifar-10-batches-bin");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("data_batch_1.bin"), records(64, 1)).unwrap();
    fs::write(dir.join("test_batch.bin"), records(32, 2)).unwrap();
}

fn spec(model: &str, optimizer: &str) -> String {
    format!(
        r#"name = "tiny-{model}-{}"
seed = 1

[data]
kind = "cifar10"
path = "cifar10"

[model]
kind = "{model}"

[train]
workers = 2
batch_size = 8
epochs = 2
eval_every = "epoch"
checkpoint_every = "epoch"
dtype = "f32"

[optimizer]
{optimizer}

[plot]
x = "epoch"
y = ["train_loss", "test_acc"]
table = "table3"
"#,
        optimizer.split('"').nth(1).unwrap()
    )
}

#[test]
fn cifar_runs_by_epoch_and_plots_table3_and_figure1() {
    let s = Scratch::new();
    write_cifar(s.path());
    let data = s.path().to_str().unwrap().to_string();
    let out = s.out();
    for (i, (model, optimizer)) in [
        (
            "simple_cnn",
            "name = \"sisa\"\nscheme = 3\nsigma0 = 1.0\nrho = 1000.0",
        ),
        ("simple_cnn", "name = \"sgd\"\nlr = 0.05\nmomentum = 0.9"),
        (
            "resnet18",
            "name = \"sisa\"\nscheme = 3\nsigma0 = 1.0\nrho = 1000.0",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let file = s.write(&format!("spec{i}.toml"), &spec(model, optimizer));
        run(&file, &out, &["--data-dir", &data]).expect_code(0, model);
    }
    // SGD's cell once more with SISA's schedule (as scripts/table3_specs.py names it):
    // Table 3 reports one of the two, not their mix.
    let sgd = spec("simple_cnn", "name = \"sgd\"\nlr = 0.05\nmomentum = 0.9").replace(
        "name = \"tiny-simple_cnn-sgd\"",
        "name = \"tiny-simple_cnn-sgd-sisa-schedule\"",
    ) + "\n[schedule]\nkind = \"step\"\nmilestone_epochs = [1]\nfactor = 0.5\n";
    let file = s.write("sgd-sisa-schedule.toml", &sgd);
    run(&file, &out, &["--data-dir", &data]).expect_code(0, "sgd, SISA's schedule");

    let dir = out.join("tiny-simple_cnn-sisa").join("default");
    assert_eq!(status(&dir), "completed");
    let m = read_metrics(&dir);
    assert_eq!(
        m.header,
        [
            "epoch",
            "iteration",
            "train_loss",
            "train_acc",
            "test_loss",
            "test_acc",
            "sigma",
            "rho",
            "floats_up",
            "floats_down",
            "wall_s"
        ]
    );
    // 64 images over 2 workers in batches of 8: 4 iterations an epoch, a row per epoch.
    assert_eq!(m.column("epoch"), [0.0, 1.0, 2.0]);
    assert_eq!(m.column("iteration"), [0.0, 4.0, 8.0]);
    assert!(dir.join("checkpoint.safetensors").is_file());
    let resolved = read_spec(&dir);
    assert_eq!(
        toml_get(&resolved, "data.augment").and_then(|v| v.as_str()),
        Some("crop-flip"),
        "CIFAR-10 trains with random crops and flips by default"
    );
    // The batch-norm ResNet trained, its loss finite.
    let resnet = read_metrics(&out.join("tiny-resnet18-sisa").join("default"));
    assert!(resnet.column("train_loss").iter().all(|l| l.is_finite()));

    pisa(["plot", out.to_str().unwrap()]).expect_code(0, "plot");
    let table = fs::read_to_string(out.join("table3.md")).unwrap();
    assert!(table.contains("| simple_cnn | cifar10 |"), "{table}");
    assert!(table.contains("| resnet18 | cifar10 |"), "{table}");
    let csv = fs::read_to_string(out.join("table3.csv")).unwrap();
    assert!(
        csv.starts_with("model,dataset,algorithm,schedule,seeds,mean,std,paper_mean,paper_std\n")
    );
    assert_eq!(csv.lines().count(), 1 + 3, "{csv}");
    // One seed each: the reported schedule's run alone, marked † where it is SISA's.
    let sgd = csv
        .lines()
        .find(|l| l.starts_with("simple_cnn,cifar10,sgd,"))
        .unwrap();
    let sisa_schedule_won = sgd.starts_with("simple_cnn,cifar10,sgd,sisa,1,");
    assert!(
        sisa_schedule_won || sgd.starts_with("simple_cnn,cifar10,sgd,default,1,"),
        "{csv}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("| simple_cnn |"))
        .unwrap();
    assert_eq!(row.contains('†'), sisa_schedule_won, "{row}\n{csv}");
    for y in ["train_loss", "test_acc"] {
        assert!(out
            .join(format!("figure1-simple_cnn-cifar10-{y}.png"))
            .is_file());
    }
}

#[test]
fn missing_cifar_names_the_file_and_how_to_get_it() {
    let s = Scratch::new();
    let file = s.write("x.toml", &spec("simple_cnn", "name = \"adam\""));
    let data = s.path().to_str().unwrap().to_string();
    run(&file, &s.out(), &["--data-dir", &data])
        .expect_code(1, "no data")
        .expect_stderr(&["cifar10", "pisa data fetch cifar10"], "advice");
    assert_nothing_written(&s.out(), "a missing dataset");
}

#[test]
fn list_models_gives_published_sizes() {
    let listing = pisa(["list", "models"])
        .expect_code(0, "list models")
        .stdout
        .clone();
    for (name, count) in [
        ("resnet34", "21282122"),
        ("densenet121", "6956298"),
        ("vgg11", "9750922"),
        ("resnet18_imagenet", "11689512"),
        ("vit_b_16", "86567656"),
        ("densenet121_imagenet", "7978856"),
    ] {
        assert!(
            listing.contains(&format!("{name}\n")) && listing.contains(count),
            "{name}: {listing}"
        );
    }
}

/// An ImageNet-style root: train/ and val/ folders of two classes of PNGs, class `cat`
/// red-ish and `dog` blue-ish, of assorted sizes.
fn write_image_folder(root: &Path) {
    for (split, n) in [("train", 8u32), ("val", 4)] {
        for (class, channel) in [("cat", 0usize), ("dog", 2)] {
            let dir = root.join(split).join(class);
            fs::create_dir_all(&dir).unwrap();
            for i in 0..n {
                let (w, h) = (240 + 16 * i, 260 - 8 * i);
                let image = image::RgbImage::from_fn(w, h, |x, y| {
                    let mut p = [((x + y + i) % 64) as u8; 3];
                    p[channel] = 200;
                    image::Rgb(p)
                });
                image.save(dir.join(format!("{i}.png"))).unwrap();
            }
        }
    }
}

#[test]
fn image_folders_train_through_pisa_run() {
    let s = Scratch::new();
    write_image_folder(&s.path().join("imagenet"));
    let spec = r#"name = "tiny-imagenet"
seed = 1

[data]
kind = "image_folder"
path = "imagenet"

[model]
kind = "simple_cnn"

[train]
workers = 2
batch_size = 4
epochs = 2
eval_every = "epoch"
dtype = "f32"

[optimizer]
name = "adam"
"#;
    let file = s.write("imagenet.toml", spec);
    let data = s.path().to_str().unwrap().to_string();
    run(&file, &s.out(), &["--data-dir", &data]).expect_code(0, "image folder");
    let m = read_metrics(&s.out().join("tiny-imagenet").join("default"));
    // 16 training images over 2 workers in batches of 4: 2 iterations an epoch.
    assert_eq!(m.column("iteration"), [0.0, 2.0, 4.0]);
    assert!(m.column("test_loss").iter().all(|l| l.is_finite()));
    // Evaluation decodes the 8 validation images: accuracy is a multiple of 1/8.
    for acc in m.column("test_acc") {
        assert_eq!((acc * 8.0).fract(), 0.0, "{acc}");
    }

    // Micro-batches of 1 (decoded ahead, one forward pass each) give the same gradients
    // up to rounding: the same run.
    let again = |id: &str, sets: &[&str]| {
        let mut args = vec!["--data-dir", &data, "--run-id", id];
        for set in sets {
            args.extend(["--set", set]);
        }
        run(&file, &s.out(), &args).expect_code(0, id);
        read_metrics(&s.out().join("tiny-imagenet").join(id))
    };
    let micro = again("micro", &["train.micro_batch=1"]);
    for (a, b) in m
        .column("train_loss")
        .iter()
        .zip(micro.column("train_loss"))
    {
        assert!((a - b).abs() <= 1e-4 * a.abs() + 1e-6, "{a} vs {b}");
    }
    // bf16 autocast and channels-last batches run the same path, in lower precision.
    let bf16 = again(
        "bf16",
        &["train.autocast=\"bf16\"", "train.channels_last=true"],
    );
    for (a, b) in m.column("train_loss").iter().zip(bf16.column("train_loss")) {
        assert!(
            b.is_finite() && (a - b).abs() <= 0.05 * a.abs() + 1e-3,
            "{a} vs {b}"
        );
    }
    let resolved = read_spec(&s.out().join("tiny-imagenet").join("bf16"));
    assert_eq!(
        toml_get(&resolved, "train.autocast").and_then(|v| v.as_str()),
        Some("bf16")
    );
}
