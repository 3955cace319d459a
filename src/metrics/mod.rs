//! Scores computed from a model's outputs rather than from its loss: the Fréchet distance
//! between feature statistics of real and generated images (FID and its Fashion-MNIST
//! stand-in `fd_fmnist`).
pub mod bertscore;
pub mod fd_fmnist;
pub mod frechet;

use anyhow::Result;
use tch::Tensor;

/// A network whose activations a Fréchet distance compares: pytorch-fid's InceptionV3
/// (pool3, 2048-d) or the shipped Fashion-MNIST classifier's penultimate layer.
pub trait FeatureExtractor: Send {
    /// The feature dimension d.
    fn dims(&self) -> i64;
    /// Features [N, d] (f64, on the CPU) of images [N, C, H, W] with values in [0, 1], on
    /// any device; the extractor resizes and normalises them as its reference does.
    fn features(&self, images: &Tensor) -> Result<Tensor>;
}
