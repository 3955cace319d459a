//! VGG-11 for CIFAR-10 as the AdaBelief benchmark suite defines it
//! (`PyTorch_Experiments/classification_cifar10/models/vgg.py`, configuration "A"
//! without batch norm, after Simonyan & Zisserman, 2015):
//!
//! features: conv3×3 64 → pool → 128 → pool → 256, 256 → pool → 512, 512 → pool →
//! 512, 512 → pool (every convolution padding 1 with a bias and ReLU, every pooling 2×2
//! max), flatten (512) → classifier: dropout 0.5 → fc 512 → relu → dropout 0.5 → fc 512 →
//! relu → fc classes.
//!
//! 9,750,922 parameters for 3×32×32 images and 10 classes. Parameters are named as in
//! PyTorch (`features.0.weight`, `features.0.bias`, `features.3.*`, ..., `features.18.*`,
//! `classifier.1.*`, `classifier.4.*`, `classifier.6.*`), in its order. Initialisation
//! as AdaBelief's: convolution weights from N(0, 2/(9·out)), biases zero; the linear
//! layers PyTorch's default.
use super::layers::{
    classifier, classifier_parameters, conv2d_fan_out, features, features_output,
    features_parameters, Feature,
};
use anyhow::{ensure, Result};
use tch::nn;

/// The convolution widths and poolings of configuration "A".
const FEATURES: [Feature; 13] = [
    conv(64),
    POOL,
    conv(128),
    POOL,
    conv(256),
    conv(256),
    POOL,
    conv(512),
    conv(512),
    POOL,
    conv(512),
    conv(512),
    POOL,
];

const POOL: Feature = Feature::MaxPool {
    kernel: 2,
    stride: 2,
};

const fn conv(output: i64) -> Feature {
    Feature::Conv {
        output,
        kernel: 3,
        stride: 1,
        padding: 1,
    }
}

/// The width of the last convolution, the classifier's input and hidden width.
const WIDTH: i64 = 512;

/// The published drop probability of the classifier's two dropout layers.
pub const DROPOUT: f64 = 0.5;

/// VGG-11 for `channels`-channel images of 32 to 63 pixels a side and `classes` classes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vgg11 {
    pub channels: i64,
    pub classes: i64,
    /// The classifier's drop probability (training mode only).
    pub dropout: f64,
}

impl Vgg11 {
    /// Checks that the five 2×2 poolings leave a 1×1 map, the 512 features the classifier
    /// takes: heights and widths from 32 to 63 pixels.
    pub fn new(image: [i64; 3], classes: i64) -> Result<Self> {
        let [channels, height, width] = image;
        ensure!(
            features_output(height, &FEATURES) == 1 && features_output(width, &FEATURES) == 1,
            "vgg11: its classifier takes the 512×1×1 map that five 2×2 max-poolings leave \
             of 32 to 63 pixels, so {height}×{width} images do not fit"
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
            + classifier_parameters([WIDTH, WIDTH, WIDTH, self.classes])
    }

    /// Creates the variables under `path` and returns the network: images [N, C, H, W]
    /// in, logits [N, classes] out.
    pub fn build(&self, path: &nn::Path) -> nn::SequentialT {
        let features = features(
            &(path / "features"),
            self.channels,
            &FEATURES,
            |p, i, o, k| conv2d_fan_out(p, i, o, k, true),
        );
        let classifier = classifier(
            &(path / "classifier"),
            [WIDTH, WIDTH, WIDTH, self.classes],
            self.dropout,
        );
        nn::seq_t()
            .add(features)
            .add_fn(|x| x.flatten(1, -1))
            .add(classifier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::FlatParams;
    use tch::{Device, Kind};

    #[test]
    fn names_in_pytorch_order_and_initialisation() {
        let vs = nn::VarStore::new(Device::Cpu);
        crate::models::seeded(0, || Vgg11::new([3, 32, 32], 10).unwrap().build(&vs.root()));
        let flat = FlatParams::new(&vs).unwrap();
        let names = flat.layout().names();
        let convs = [0, 3, 6, 8, 11, 13, 16, 18];
        let mut expected: Vec<String> = convs
            .iter()
            .flat_map(|i| [format!("features.{i}.weight"), format!("features.{i}.bias")])
            .collect();
        for i in [1, 4, 6] {
            expected.extend([
                format!("classifier.{i}.weight"),
                format!("classifier.{i}.bias"),
            ]);
        }
        assert_eq!(names, expected);
        let v = vs.variables();
        let std = v["features.18.weight"].std(true).double_value(&[]);
        assert!(
            (std - (2.0f64 / (9.0 * 512.0)).sqrt()).abs() < 1e-3,
            "{std}"
        );
        assert_eq!(
            v["features.0.bias"]
                .abs()
                .sum(Kind::Float)
                .double_value(&[]),
            0.0
        );
        assert_eq!(flat.layout().segments[16].shape, [512, 512]);
    }
}
