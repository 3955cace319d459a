//! The task a spec's `[data]` and `[model]` describe, built and checked before any write.
use super::classification::{Classification, Config, Examples};
use super::least_squares::LeastSquares;
use super::Task;
use crate::data::{self, idx, least_squares::Problem};
use crate::models::Mlp;
use crate::spec::{DataKind, ModelKind, Spec};
use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use tch::{Device, Tensor};

/// Builds the task of the resolved `spec`, reading data from `data_dir`.
pub fn build(spec: &Spec, data_dir: &Path, device: Device) -> Result<Box<dyn Task>> {
    let kind = spec.train.dtype.kind();
    let t = &spec.train;
    Ok(match spec.data.kind {
        DataKind::LeastSquares => {
            let problem = match (&spec.data.path, spec.data.samples, spec.data.dim) {
                (Some(path), _, _) => {
                    let file = data::locate(
                        path,
                        data_dir,
                        "an .npz file with arrays A (N x d) and b (N)",
                    )?;
                    Problem::read_npz(&file)?
                }
                (None, Some(n), Some(d)) => Problem::generate(
                    n,
                    d,
                    t.workers,
                    spec.data.noise.unwrap_or(data::least_squares::DEFAULT_NOISE),
                    spec.seed,
                ),
                _ => unreachable!("validated: path or samples and dim"),
            };
            // μ of (2.2) enters the reported objective; baselines have none.
            let mu = spec.optimizer.hypers.get("mu").and_then(|v| v.as_float());
            Box::new(LeastSquares::new(
                problem,
                t.workers,
                t.batch_size,
                mu.unwrap_or(0.0),
                spec.seed,
                kind,
                device,
            )?)
        }
        DataKind::Mnist | DataKind::FashionMnist => {
            let source = match spec.data.kind {
                DataKind::Mnist => idx::Source::Mnist,
                _ => idx::Source::FashionMnist,
            };
            let path = spec.data.path.as_ref().expect("validated: image data has a path");
            let dir = data::locate_dir(
                path,
                data_dir,
                &format!("the {} IDX files. {}", source.name(), source.how_to_get()),
            )?;
            let dataset = idx::load(&dir, source)?;
            let (train, test) = match (dataset.train, spec.data.test_fraction) {
                (Some(train), None) => (
                    Examples::from_idx(&train, kind),
                    Examples::from_idx(&dataset.test, kind),
                ),
                (None, Some(fraction)) => {
                    holdout(Examples::from_idx(&dataset.test, kind), fraction, spec.seed)
                }
                (Some(_), Some(_)) => bail!(
                    "data.test_fraction is for folders without training files, but {} has them",
                    dir.display()
                ),
                (None, None) => bail!(
                    "{} holds only the test files of {}: set data.test_fraction (e.g. 0.2) to \
                     train on the rest of them, or add the training files. {}",
                    dir.display(),
                    source.name(),
                    source.how_to_get()
                ),
            };
            let (train, test) = Examples::standardise(train, test);
            let model = spec.model.as_ref().expect("validated: image data has a model");
            let input: i64 = train.x.size()[1..].iter().product();
            let mlp = match model.kind {
                ModelKind::Mlp => Mlp::new(
                    input,
                    &model.hidden,
                    10,
                    model.activation.parse().expect("validated activation"),
                )
                .with_dropout(model.dropout),
            };
            let config = Config {
                workers: t.workers,
                batch_size: t.batch_size,
                seed: spec.seed,
                kind,
                device,
            };
            Box::new(Classification::new(train, test, |p| mlp.build(p), config)?)
        }
    })
}

/// Splits `examples` into (train, test) with a seeded shuffle; `fraction` of them test.
fn holdout(examples: Examples, fraction: f64, seed: u64) -> (Examples, Examples) {
    let n = examples.len();
    let test = ((n as f64 * fraction).round() as i64).clamp(1, n - 1);
    let mut order: Vec<i64> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x401d_0ff5));
    let pick = |ids: &[i64]| {
        let ids = Tensor::from_slice(ids).to_device(examples.x.device());
        Examples {
            x: examples.x.index_select(0, &ids),
            y: examples.y.index_select(0, &ids.to_device(examples.y.device())),
        }
    };
    (pick(&order[test as usize..]), pick(&order[..test as usize]))
}
