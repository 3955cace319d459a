//! pytorch-fid's FID InceptionV3 (`models::inception`) against pytorch-fid itself:
//! scripts/golden_fid.py built `pytorch_fid.inception.InceptionV3([3])` on deterministic
//! weights (the closed form below, which this test regenerates) and wrote its pool3
//! features of a few images to tests/data/fid/; no Python here.
use pisa::metrics::FeatureExtractor;
use pisa::models::inception::{Inception, WeightLayout, FEATURES};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/fid");
/// Absolute tolerance on f32 features of magnitude up to ~1.
const TOLERANCE: f64 = 1e-4;

/// scripts/golden_fid.py's weights: tensor j (in state_dict order), flat index k,
/// s = sin(0.1·k² + 0.7·j) in f64, then per kind of tensor a scale and offset, in f32.
fn deterministic_weights(layout: &WeightLayout) -> Vec<(String, Tensor)> {
    let layout = layout.iter().enumerate();
    let named = layout.map(|(j, (name, shape))| {
        let numel: i64 = shape.iter().product();
        let k = Tensor::arange(numel, (Kind::Double, Device::Cpu));
        let s = ((&k * 0.1) * &k + 0.7 * j as f64).sin();
        let t = if name.ends_with("conv.weight") {
            let fan_in: i64 = shape[1..].iter().product();
            s * (2.0 / (fan_in as f64).sqrt())
        } else if name.ends_with("bn.weight") {
            s * 0.2 + 1.0
        } else if name.ends_with("bn.bias") {
            s * 0.2
        } else if name.ends_with("bn.running_mean") {
            s * 0.1
        } else if name.ends_with("bn.running_var") {
            s.abs() * 0.5 + 1.0
        } else {
            panic!("no formula for {name}")
        };
        (
            name.clone(),
            t.reshape(shape.as_slice()).to_kind(Kind::Float),
        )
    });
    named.collect()
}

fn golden() -> BTreeMap<String, Tensor> {
    let file = format!("{DATA}/golden.safetensors");
    Tensor::read_safetensors(file)
        .unwrap()
        .into_iter()
        .collect()
}

#[test]
fn layout_is_pytorch_fid_state_dict_order() {
    let text = std::fs::read_to_string(format!("{DATA}/layout.txt")).unwrap();
    let expected: Vec<(String, Vec<i64>)> = text
        .lines()
        .map(|line| {
            let (name, shape) = line.split_once(' ').unwrap();
            let shape = shape.split(',').map(|d| d.parse().unwrap()).collect();
            (name.to_string(), shape)
        })
        .collect();
    assert_eq!(Inception::layout(), expected);
}

#[test]
fn features_match_pytorch_fid() {
    tch::set_num_threads(1);
    let mut net =
        Inception::from_tensors(deterministic_weights(&Inception::layout()), Device::Cpu).unwrap();
    assert_eq!(net.dims(), FEATURES);
    let golden = golden();
    // Two 3×32×32 images one per forward pass, then one 1×28×28 image that the network
    // repeats to three channels (pytorch-fid's `.convert('RGB')`).
    net.batch_size = 1;
    for (images, expected) in [("rgb", "rgb_features"), ("gray", "gray_features")] {
        let f = net.features(&golden[images]).unwrap();
        let expected = golden[expected].to_kind(Kind::Double);
        assert_eq!(f.size(), expected.size(), "{images}");
        assert_eq!(f.kind(), Kind::Double);
        let diff = (&f - &expected).abs().max().double_value(&[]);
        let scale = expected.abs().max().double_value(&[]);
        println!("{images}: max |Δ| = {diff:.2e} (features up to {scale:.3})");
        assert!(diff < TOLERANCE, "{images}: features differ by {diff}");
    }
    // In batches of two the features are the same.
    net.batch_size = 2;
    let once = net.features(&golden["rgb"]).unwrap();
    let expected = golden["rgb_features"].to_kind(Kind::Double);
    assert!((&once - &expected).abs().max().double_value(&[]) < TOLERANCE);
    // No images, no features; a wrong channel count is an error.
    let none = Tensor::zeros([0, 3, 8, 8], (Kind::Float, Device::Cpu));
    assert_eq!(net.features(&none).unwrap().size(), [0, FEATURES]);
    let two = Tensor::zeros([1, 2, 8, 8], (Kind::Float, Device::Cpu));
    let err = net.features(&two).unwrap_err().to_string();
    assert!(err.contains("[N, 1 or 3, H, W]"), "{err}");
    let bytes = Tensor::zeros([1, 3, 8, 8], (Kind::Uint8, Device::Cpu));
    assert!(net.features(&bytes).is_err());
}
