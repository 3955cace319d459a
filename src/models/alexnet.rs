//! torchvision's AlexNet (`torchvision.models.alexnet`, the one-GPU variant of
//! Krizhevsky et al., 2012, after Krizhevsky's "One weird trick", 2014):
//!
//! features: conv 11×11/4 pad 2 → 64 → relu → maxpool 3/2 → conv 5×5 pad 2 → 192 →
//! relu → maxpool 3/2 → conv 3×3 pad 1 → 384 → relu → 256 → relu → 256 → relu →
//! maxpool 3/2; adaptive average pool to 6×6; flatten (9216) → classifier: dropout 0.5 →
//! fc 4096 → relu → dropout 0.5 → fc 4096 → relu → fc classes.
//!
//! 61,100,840 parameters for 3-channel images and 1000 classes (any image size from
//! 63×63: the adaptive pooling fixes the classifier's input). Parameters are named as
//! in PyTorch (`features.0.*`, `features.3.*`, `features.6.*`, `features.8.*`,
//! `features.10.*`, `classifier.1.*`, `classifier.4.*`, `classifier.6.*`), in its
//! order, with PyTorch's default initialisation (torchvision sets no other).
use super::conv::conv2d;
use super::layers::{
    classifier, classifier_parameters, features, features_output, features_parameters, Feature,
};
use anyhow::{ensure, Result};
use tch::nn;

const FEATURES: [Feature; 8] = [
    conv(64, 11, 4, 2),
    POOL,
    conv(192, 5, 1, 2),
    POOL,
    conv(384, 3, 1, 1),
    conv(256, 3, 1, 1),
    conv(256, 3, 1, 1),
    POOL,
];

const POOL: Feature = Feature::MaxPool {
    kernel: 3,
    stride: 2,
};

const fn conv(output: i64, kernel: i64, stride: i64, padding: i64) -> Feature {
    Feature::Conv {
        output,
        kernel,
        stride,
        padding,
    }
}

/// The channels of the last convolution.
const CHANNELS: i64 = 256;
/// The side of the adaptive average pooling's output.
const POOLED: i64 = 6;
/// The classifier's hidden width.
const HIDDEN: i64 = 4096;

/// The published drop probability of the classifier's two dropout layers.
pub const DROPOUT: f64 = 0.5;

/// AlexNet for `channels`-channel images and `classes` classes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlexNet {
    pub channels: i64,
    pub classes: i64,
    /// The classifier's drop probability (training mode only).
    pub dropout: f64,
}

impl AlexNet {
    /// Checks that `features` leaves at least a 1×1 map: images of at least 63×63.
    pub fn new(image: [i64; 3], classes: i64) -> Result<Self> {
        let [channels, height, width] = image;
        ensure!(
            features_output(height, &FEATURES) >= 1 && features_output(width, &FEATURES) >= 1,
            "alexnet: {height}×{width} images are too small for its strided convolution and \
             three 3×3 stride-2 max-poolings (at least 63×63)"
        );
        Ok(Self {
            channels,
            classes,
            dropout: DROPOUT,
        })
    }

    /// The number of trainable values.
    pub fn parameter_count(&self) -> i64 {
        features_parameters(self.channels, &FEATURES)
            + classifier_parameters([CHANNELS * POOLED * POOLED, HIDDEN, HIDDEN, self.classes])
    }

    /// Creates the variables under `path` and returns the network: images [N, C, H, W]
    /// in, logits [N, classes] out.
    pub fn build(&self, path: &nn::Path) -> nn::SequentialT {
        let features = features(&(path / "features"), self.channels, &FEATURES, conv2d);
        let classifier = classifier(
            &(path / "classifier"),
            [CHANNELS * POOLED * POOLED, HIDDEN, HIDDEN, self.classes],
            self.dropout,
        );
        nn::seq_t()
            .add(features)
            .add_fn(|x| x.adaptive_avg_pool2d([POOLED, POOLED]).flatten(1, -1))
            .add(classifier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::catalog::tests::check;
    use crate::models::FlatParams;

    #[test]
    fn published_alexnet_in_pytorch_order() {
        let vs = check("alexnet", [3, 224, 224], 1000, 61_100_840);
        let flat = FlatParams::new(&vs).unwrap();
        let features = [0, 3, 6, 8, 10].map(|i| format!("features.{i}"));
        let classifier = [1, 4, 6].map(|i| format!("classifier.{i}"));
        let expected: Vec<String> = features
            .iter()
            .chain(&classifier)
            .flat_map(|layer| [format!("{layer}.weight"), format!("{layer}.bias")])
            .collect();
        assert_eq!(flat.layout().names(), expected);
        assert_eq!(flat.layout().segments[10].shape, [4096, 9216]);
        // 224 → 55 → 27 → 13 → 6; 63 pixels is the least that leaves a 1×1 map.
        assert_eq!(features_output(224, &FEATURES), 6);
        assert_eq!(features_output(63, &FEATURES), 1);
        assert_eq!(features_output(62, &FEATURES), 0);
    }
}
