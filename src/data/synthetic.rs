//! CIFAR-shaped (or any-shaped) synthetic images for the quick specs of machines without
//! the real data: class k is a fixed random template image plus per-sample noise, so a
//! network can learn it, and the timings are those of real images of that shape. Not a
//! benchmark of accuracy: the specs that use it say so.
use super::idx::Split;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

/// `train` + `test` uint8 images [N, C, H, W] of `classes` classes (labels cycle 0, 1, …),
/// drawn from `seed`: pixel = clamp(template_k + uniform noise in ±`noise`, 0, 255).
pub fn images(shape: [i64; 3], classes: i64, train: i64, test: i64, seed: u64) -> (Split, Split) {
    let pixels = shape.iter().product::<i64>() as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5e7_7e71c);
    let templates: Vec<Vec<u8>> = (0..classes)
        .map(|_| (0..pixels).map(|_| rng.random::<u8>()).collect())
        .collect();
    let noise = 96i32;
    let mut split =
        |n: i64| {
            let mut data = Vec::with_capacity(n as usize * pixels);
            let labels: Vec<i64> = (0..n).map(|i| i % classes).collect();
            for &k in &labels {
                data.extend(templates[k as usize].iter().map(|&t| {
                    (i32::from(t) + rng.random_range(-noise..=noise)).clamp(0, 255) as u8
                }));
            }
            Split {
                images: Tensor::from_slice(&data).view([n, shape[0], shape[1], shape[2]]),
                labels: Tensor::from_slice(&labels),
            }
        };
    let train = split(train);
    let test = split(test);
    (train, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_labels_and_determinism() {
        let (train, test) = images([3, 8, 8], 4, 20, 8, 1);
        assert_eq!(train.images.size(), [20, 3, 8, 8]);
        assert_eq!(test.images.size(), [8, 3, 8, 8]);
        assert_eq!(train.images.kind(), tch::Kind::Uint8);
        assert_eq!(
            Vec::<i64>::try_from(&test.labels).unwrap(),
            [0, 1, 2, 3, 0, 1, 2, 3]
        );
        assert!(train.images.equal(&images([3, 8, 8], 4, 20, 8, 1).0.images));
        assert!(!train.images.equal(&images([3, 8, 8], 4, 20, 8, 2).0.images));
        // Samples of one class are closer to each other than to another class's.
        let x = train.images.to_kind(tch::Kind::Float);
        let d = |i: i64, j: i64| (x.get(i) - x.get(j)).norm().double_value(&[]);
        assert!(d(0, 4) < d(0, 1));
    }
}
