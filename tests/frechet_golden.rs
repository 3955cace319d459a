//! The Fréchet distance (`metrics::frechet`) against pytorch-fid: scripts/golden_frechet.py
//! ran `calculate_activation_statistics`' mean and `np.cov`, and
//! `calculate_frechet_distance` (scipy's sqrtm), on the features in
//! tests/data/fid/frechet.safetensors; no Python here.
use pisa::metrics::frechet::{frechet_distance, Statistics};
use std::collections::BTreeMap;
use tch::{Kind, Tensor};

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/fid/frechet.safetensors"
);

fn golden() -> BTreeMap<String, Tensor> {
    Tensor::read_safetensors(FILE)
        .unwrap()
        .into_iter()
        .collect()
}

fn statistics(golden: &BTreeMap<String, Tensor>, name: &str) -> Statistics {
    Statistics::from_features(&golden[name].to_kind(Kind::Double)).unwrap()
}

#[test]
fn statistics_match_numpy() {
    let golden = golden();
    let s = statistics(&golden, "a200");
    let mu = (&s.mu - &golden["mu_a200"]).abs().max().double_value(&[]);
    let sigma = (&s.sigma - &golden["sigma_a200"])
        .abs()
        .max()
        .double_value(&[]);
    println!("|Δμ| ≤ {mu:.2e}, |ΔΣ| ≤ {sigma:.2e}");
    assert!(mu < 1e-13 && sigma < 1e-13, "{mu} {sigma}");
}

#[test]
fn distances_match_pytorch_fid_including_singular_covariances() {
    let golden = golden();
    let expected: Vec<f64> = Vec::try_from(&golden["distance"]).unwrap();
    let offset: Vec<u8> = Vec::try_from(&golden["offset"]).unwrap();
    // (a200, b200) full rank; (a50, b50) both rank 49 < d = 64; (a50, b200) one singular.
    let cases = [("a200", "b200"), ("a50", "b50"), ("a50", "b200")];
    for (i, (a, b)) in cases.iter().enumerate() {
        assert_eq!(offset[i], 0, "pytorch-fid used its eps offset on {a}, {b}");
        let d = frechet_distance(&statistics(&golden, a), &statistics(&golden, b)).unwrap();
        let rel = (d - expected[i]).abs() / expected[i];
        println!(
            "{a} vs {b}: {d:.12} (pytorch-fid {:.12}), relative error {rel:.2e}",
            expected[i]
        );
        assert!(rel <= 1e-6, "{a} vs {b}: {d} vs {}", expected[i]);
    }
}
