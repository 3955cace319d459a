//! The GAN task a spec describes (`model.kind = "wgan"` or `"wgan_gp"`, `[gan]`): its
//! images at the networks' size, the two DCGAN players, the score's feature extractor and
//! the real images' statistics, computed once and cached with their checksum.
use super::gan::{self, Gan};
use crate::data::{self, cifar, idx};
use crate::metrics::fd_fmnist::FdFmnist;
use crate::metrics::frechet::Statistics;
use crate::metrics::FeatureExtractor;
use crate::models::dcgan::{Dcgan, Variant};
use crate::models::inception::Inception;
use crate::schedule::Clock;
use crate::spec::{DataKind, KeyError, Score, Spec};
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The shipped Fashion-MNIST classifier, when `[gan] extractor` is not given.
pub const FD_FMNIST_WEIGHTS: &str = "assets/fd_fmnist.safetensors";

/// Builds the GAN task of the resolved `spec` from the images in `dir`.
pub fn build(spec: &Spec, data_dir: &Path, dir: &Path, device: Device) -> Result<Gan> {
    let g = spec.gan.clone().expect("resolved: a GAN has [gan]");
    let gp = spec.gan_model().expect("a GAN model");
    let t = &spec.train;
    let kind = t.dtype.kind();
    let (train, test) = images(spec.data.kind, dir)?;
    let (train, test) = (resized(&train, g.image_size), resized(&test, g.image_size));
    let variant = match gp {
        true => Variant::WganGp,
        false => Variant::Wgan,
    };
    let nc = train.size()[1];
    let dcgan = Dcgan::new(g.nz, g.ngf, g.ndf, nc, g.image_size, variant)
        .map_err(|e| KeyError::at("gan", format!("{e:#}")))?;
    let (generator, critic) = dcgan.players(spec.seed, kind, device)?;
    let (extractor, weights) = extractor(g.score, g.extractor.as_deref(), data_dir, device)?;
    let reference = reference(extractor.as_ref(), &train, &weights, dir, g.score)?;
    let n = (train.size()[0] as usize).div_ceil(t.workers * t.batch_size);
    let config = gan::Config {
        workers: t.workers,
        batch_size: t.batch_size,
        seed: spec.seed,
        nz: g.nz,
        n_critic: g.n_critic,
        clip_value: g.clip_value,
        gp_weight: g.gp_weight,
        score_column: g.score.column(),
        score_samples: g.score_samples,
        final_samples: g.final_samples,
        iterations: t.length(&Clock::fixed(n))?,
        kind,
        device,
    };
    Gan::new(
        config, critic, generator, train, &test, extractor, reference,
    )
}

/// The training and test images of `dir`, uint8 [N, C, H, W].
fn images(kind: DataKind, dir: &Path) -> Result<(Tensor, Tensor)> {
    match kind {
        DataKind::Cifar10 => {
            let dataset = cifar::load(dir)?;
            Ok((dataset.train.images, dataset.test.images))
        }
        DataKind::Mnist | DataKind::FashionMnist => {
            let source = match kind {
                DataKind::Mnist => idx::Source::Mnist,
                _ => idx::Source::FashionMnist,
            };
            let dataset = idx::load(dir, source)?;
            let Some(train) = dataset.train else {
                bail!(
                    "{} holds only the test files of {}; a GAN trains on the training images. {}",
                    dir.display(),
                    source.name(),
                    source.how_to_get()
                );
            };
            Ok((train.images.unsqueeze(1), dataset.test.images.unsqueeze(1)))
        }
        other => bail!("a GAN trains on mnist, fashion_mnist or cifar10, not {other:?}"),
    }
}

/// uint8 images resized to size² as torchvision's `Resize` does on the code's PIL images
/// (bilinear, then rounded to 8 bits), in chunks.
fn resized(images: &Tensor, size: i64) -> Tensor {
    let s = images.size();
    if s[2] == size && s[3] == size {
        return images.shallow_clone();
    }
    let parts: Vec<Tensor> = (0..s[0])
        .step_by(4096)
        .map(|start| {
            let chunk = images.narrow(0, start, 4096.min(s[0] - start));
            chunk
                .to_kind(Kind::Float)
                .upsample_bilinear2d([size, size], false, None, None)
                .round()
                .clamp(0.0, 255.0)
                .to_kind(Kind::Uint8)
        })
        .collect();
    Tensor::cat(&parts, 0)
}

/// The score's feature extractor and the path of its weights.
fn extractor(
    score: Score,
    given: Option<&str>,
    data_dir: &Path,
    device: Device,
) -> Result<(Box<dyn FeatureExtractor>, PathBuf)> {
    let path = match (given, score) {
        (Some(path), _) => data::locate(Path::new(path), data_dir, "the extractor's weights")
            .map_err(|e| KeyError::at("gan.extractor", format!("{e:#}")))?,
        (None, Score::FdFmnist) => {
            let here = PathBuf::from(FD_FMNIST_WEIGHTS);
            match here.exists() {
                true => here,
                false => Path::new(env!("CARGO_MANIFEST_DIR")).join(FD_FMNIST_WEIGHTS),
            }
        }
        (None, Score::Fid) => {
            return Err(KeyError::at(
                "gan.extractor",
                "FID needs pytorch-fid's Inception weights as safetensors: convert \
                 pt_inception-2015-12-05-6726825d.pth with scripts/convert_inception.py and \
                 set extractor = its path",
            ))
        }
    };
    let extractor: Box<dyn FeatureExtractor> = match score {
        Score::Fid => Box::new(Inception::load(&path, device)?),
        Score::FdFmnist => Box::new(FdFmnist::load(&path, device)?),
    };
    Ok((extractor, path))
}

/// The statistics of the real training images, read from the cache beside the data
/// (or, where that folder is read-only, in ~/.cache/pisa) when its checksum — of the
/// images, their size and the extractor's weights — matches; computed and cached otherwise.
fn reference(
    extractor: &dyn FeatureExtractor,
    train: &Tensor,
    weights: &Path,
    dir: &Path,
    score: Score,
) -> Result<Statistics> {
    let mut hash = Sha256::new();
    hash.update(format!("{:?}", train.size()));
    hash.update(Vec::<u8>::try_from(train.reshape([-1]))?);
    hash.update(crate::data::fetch::sha256_file(weights)?);
    let checksum: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let name = format!("pisa-{}-{}px.safetensors", score.column(), train.size()[2]);
    let user = std::env::var_os("HOME").map(|home| {
        PathBuf::from(home)
            .join(".cache/pisa/statistics")
            .join(&name)
    });
    let places: Vec<PathBuf> = [Some(dir.join(&name)), user]
        .into_iter()
        .flatten()
        .collect();
    for place in &places {
        if let Ok(cached) = Statistics::load(place, &checksum, extractor.dims()) {
            return Ok(cached);
        }
    }
    let statistics = gan::statistics_of(extractor, train)
        .context("the real images' statistics for the Fréchet score")?;
    for place in &places {
        let saved = place
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .map_err(anyhow::Error::from)
            .and_then(|()| statistics.save(place, &checksum));
        if saved.is_ok() {
            break;
        }
    }
    Ok(statistics)
}
