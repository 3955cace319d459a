//! The shipped Fashion-MNIST classifier of `fd_fmnist` (`assets/fd_fmnist.safetensors`,
//! `assets/README.md`): it reproduces its stated test accuracy, its features have the
//! stated shape and survive a round trip through 32×32, and files or images it cannot
//! take are clear errors. The checks on real images need Fashion-MNIST in
//! /usr/share/datasets/fashion-mnist (`apt-get install dataset-fashion-mnist`); without
//! it they print a note and use synthetic images where they can.
use pisa::data::idx::{self, Source};
use pisa::data::transform::Normalise;
use pisa::metrics::fd_fmnist::{FdFmnist, MEAN, SHIPPED, STD};
use pisa::metrics::FeatureExtractor;
use pisa::models::seeded;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// A change to a file's tensors.
type Edit<'a> = &'a dyn Fn(&mut BTreeMap<String, Tensor>);

const FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// Test-split images the classifier gets right, out of 10,000, when the run that trained
/// it last evaluated it (its metrics.csv; assets/README.md).
const CORRECT: i64 = 9081;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(SHIPPED)
}

fn classifier() -> FdFmnist {
    FdFmnist::load(&shipped(), Device::Cpu).unwrap()
}

/// Fashion-MNIST, or `None` with a note saying which check is skipped.
fn dataset(check: &str) -> Option<idx::Dataset> {
    if !Path::new(FASHION_MNIST).is_dir() {
        eprintln!(
            "note: {FASHION_MNIST} is absent (apt-get install dataset-fashion-mnist); {check} \
             skipped"
        );
        return None;
    }
    Some(idx::load(Path::new(FASHION_MNIST), Source::FashionMnist).unwrap())
}

/// uint8 images [N, 28, 28] as [N, 1, 28, 28] in [0, 1].
fn unit(images: &Tensor) -> Tensor {
    images.unsqueeze(1).to_kind(Kind::Float) / 255.0
}

/// 500 test images, or smooth seeded ones in [0, 1] without the dataset.
fn images(check: &str) -> Tensor {
    match dataset(check) {
        Some(d) => unit(&d.test.images.narrow(0, 0, 500)),
        None => seeded(3, || {
            Tensor::rand([500, 1, 28, 28], (Kind::Float, Device::Cpu))
        })
        .avg_pool2d([5, 5], [1, 1], [2, 2], false, true, None),
    }
}

#[test]
fn the_shipped_classifier_reproduces_its_test_accuracy() {
    let Some(data) = dataset("the accuracy check") else {
        return;
    };
    let net = classifier();
    let logits = net.logits(&unit(&data.test.images)).unwrap();
    let correct = logits
        .argmax(1, false)
        .eq_tensor(&data.test.labels)
        .sum(Kind::Int64)
        .int64_value(&[]);
    eprintln!("test accuracy {correct}/10000, stated {CORRECT}");
    assert!((correct - CORRECT).abs() <= 2, "{correct} vs {CORRECT}");
    // The normalisation is the one the training run computed from its training pixels.
    let train = data
        .train
        .expect("the training files are installed with the test files");
    let normalise = Normalise::of(&train.images, Kind::Float);
    assert_eq!((normalise.mean[0], normalise.std[0]), (MEAN, STD));
}

#[test]
fn features_are_d_finite_values_per_image_and_rgb_is_its_grey_mean() {
    let net = classifier();
    assert_eq!(net.dims(), 84);
    let x = images("the real-image feature check");
    let features = net.features(&x).unwrap();
    assert_eq!(features.size(), [500, 84]);
    assert_eq!(features.kind(), Kind::Double);
    assert_eq!(features.device(), Device::Cpu);
    assert!(bool::try_from(features.isfinite().all()).unwrap());
    // ReLU features: non-negative, and not all zero.
    assert!(features.min().double_value(&[]) >= 0.0);
    assert!(features.sum(Kind::Double).double_value(&[]) > 0.0);
    // Batches of 500 and one image at a time agree.
    let one = net.features(&x.narrow(0, 7, 1)).unwrap();
    let diff = (one - features.narrow(0, 7, 1))
        .abs()
        .max()
        .double_value(&[]);
    assert!(diff < 1e-5, "{diff}");
    // Three channels are averaged: an RGB image whose channels mean to the grey one.
    let rgb = Tensor::cat(&[&x * 0.5, &x * 1.0, &x * 1.5], 1).clamp(0.0, 1.0);
    let grey = rgb.mean_dim(1, true, Kind::Float);
    let diff = (net.features(&rgb).unwrap() - net.features(&grey).unwrap())
        .abs()
        .max()
        .double_value(&[]);
    assert!(diff < 1e-5, "{diff}");
}

#[test]
fn features_of_images_upsampled_to_32_and_resized_back_are_close() {
    let Some(data) = dataset("the resize check") else {
        return;
    };
    let net = classifier();
    let x = unit(&data.test.images.narrow(0, 0, 500));
    let big = x.upsample_bilinear2d([32, 32], false, None, None);
    assert_eq!(big.size(), [500, 1, 32, 32]);
    let a = net.features(&x).unwrap();
    // ‖a − b‖/‖a‖ over all images, and the same for the mean features, which the Fréchet
    // distance compares first.
    let relative = |b: &Tensor| {
        let whole = (&a - b).norm().double_value(&[]) / a.norm().double_value(&[]);
        let (ma, mb) = (
            a.mean_dim(0, false, Kind::Double),
            b.mean_dim(0, false, Kind::Double),
        );
        let means = (&ma - mb).norm().double_value(&[]) / ma.norm().double_value(&[]);
        (whole, means)
    };
    let (whole, means) = relative(&net.features(&big).unwrap());
    let (shifted, shifted_means) = relative(&net.features(&x.roll([1], [3])).unwrap());
    eprintln!(
        "28 vs 32→28: relative difference {whole:.4}, of the means {means:.4};          shifted by one pixel: {shifted:.4}, {shifted_means:.4}"
    );
    // Measured: 0.157 and 0.108 (one-pixel shift: 0.315 and 0.128). The two bilinear
    // resamplings blur the images, which moves the mean about as far as another 500 test
    // images do (0.076): scores of 32×32 images are comparable with each other, and
    // only roughly with scores of 28×28 ones.
    assert!(whole < 0.2, "{whole}");
    assert!(means < 0.15, "{means}");
    assert!(whole < shifted, "{whole} vs {shifted}");
}

#[test]
fn files_that_are_not_the_classifier_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = |path: &Path| format!("{:#}", FdFmnist::load(path, Device::Cpu).unwrap_err());
    let e = err(&dir.path().join("absent.safetensors"));
    assert!(e.contains("not found") && e.contains(SHIPPED), "{e}");
    let text = dir.path().join("text.safetensors");
    std::fs::write(&text, "not safetensors").unwrap();
    let e = err(&text);
    assert!(e.contains("cannot read fd_fmnist classifier"), "{e}");

    let good: BTreeMap<String, Tensor> = Tensor::read_safetensors(shipped())
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(good.len(), 10);
    let variant = |name: &str, edit: Edit| -> String {
        let mut t: BTreeMap<String, Tensor> =
            good.iter().map(|(k, v)| (k.clone(), v.copy())).collect();
        edit(&mut t);
        let file = dir.path().join(format!("{name}.safetensors"));
        let named: Vec<(&str, &Tensor)> = t.iter().map(|(k, v)| (k.as_str(), v)).collect();
        Tensor::write_safetensors(&named, &file).unwrap();
        err(&file)
    };
    let cases: [(&str, Edit, &str); 4] = [
        (
            "missing",
            &|t| {
                t.remove("fc3.bias");
            },
            "tensor `fc3.bias` [10] is missing",
        ),
        (
            "extra",
            &|t| {
                t.insert(
                    "bn.running_mean".into(),
                    Tensor::zeros([6], tch::kind::FLOAT_CPU),
                );
            },
            "tensor `bn.running_mean` is not in the model",
        ),
        (
            "shape",
            &|t| {
                t.insert(
                    "fc3.weight".into(),
                    Tensor::zeros([2, 84], tch::kind::FLOAT_CPU),
                );
            },
            "tensor `fc3.weight` is [2, 84], but the model's is [10, 84]",
        ),
        (
            "dtype",
            &|t| {
                let w = t["conv1.weight"].to_kind(Kind::Double);
                t.insert("conv1.weight".into(), w);
            },
            "tensor `conv1.weight` is f64, but the classifier is f32",
        ),
    ];
    for (name, edit, fragment) in cases {
        let e = variant(name, edit);
        assert!(
            e.contains(fragment) && e.contains("fd_fmnist classifier"),
            "{name}: {e}"
        );
        assert!(e.contains(&format!("{name}.safetensors")), "{name}: {e}");
    }
}

#[test]
fn images_it_cannot_take_are_clear_errors() {
    let net = classifier();
    let err = |x: Tensor| format!("{:#}", net.features(&x).unwrap_err());
    let cpu = (Kind::Float, Device::Cpu);
    let e = err(Tensor::zeros([4, 28, 28], cpu));
    assert!(
        e.contains("[N, C, H, W]") && e.contains("[4, 28, 28]"),
        "{e}"
    );
    let e = err(Tensor::zeros([4, 2, 28, 28], cpu));
    assert!(e.contains("got 2"), "{e}");
    let e = err(Tensor::zeros([0, 1, 28, 28], cpu));
    assert!(e.contains("no images"), "{e}");
    let e = err(Tensor::zeros([4, 1, 28, 28], (Kind::Uint8, Device::Cpu)));
    assert!(e.contains("floating-point"), "{e}");
    // A generator's tanh outputs, not yet mapped to [0, 1].
    let e = err(Tensor::full([4, 1, 28, 28], -0.5, cpu));
    assert!(e.contains("[0, 1]") && e.contains("-0.5"), "{e}");
    let e = err(Tensor::full([4, 1, 28, 28], f64::NAN, cpu));
    assert!(e.contains("NaN"), "{e}");
}
