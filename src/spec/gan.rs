//! `[gan]`: the game a Wasserstein GAN task plays (`model.kind = "wgan"` or `"wgan_gp"`)
//! and how its generator is scored. Defaults are the PISA code's (`Tracy-Wang7/PISA`,
//! `WGAN/WGAN/main_SPiAM.py`, `WGAN/WGAN_GP/main_SPiAM.py`) and the paper's (Section 5.4).
use serde::{Deserialize, Serialize};

/// The feature space of the Fréchet score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Score {
    /// FID: pytorch-fid's InceptionV3 pool3 features (weights converted from its
    /// `pt_inception-2015-12-05` checkpoint by `scripts/convert_inception.py`).
    Fid,
    /// The Fréchet distance in the features of pisa's shipped Fashion-MNIST classifier
    /// (`assets/fd_fmnist.safetensors`): a stand-in where the Inception weights are absent,
    /// never comparable with FID.
    FdFmnist,
}

impl Score {
    /// The metrics column.
    pub fn column(self) -> &'static str {
        match self {
            Score::Fid => "fid",
            Score::FdFmnist => "fd_fmnist",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GanSpec {
    /// The latent dimension (`--nz`).
    #[serde(default = "nz")]
    pub nz: i64,
    /// Generator and critic widths (`--ngf`, `--ndf`).
    #[serde(default = "width")]
    pub ngf: i64,
    #[serde(default = "width")]
    pub ndf: i64,
    /// Images are resized to image_size² (`--imageSize`): 64 as the code, or 32.
    #[serde(default = "image_size")]
    pub image_size: i64,
    /// Critic turns per generator turn (`--n_critic`; the readme's commands use 1).
    #[serde(default = "one")]
    pub n_critic: usize,
    /// WGAN: the critic's weights are clipped to ±clip_value after each of its steps
    /// (`--clip_value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_value: Option<f64>,
    /// WGAN-GP: the gradient penalty's weight λ (`lambda_gp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gp_weight: Option<f64>,
    /// The score's feature space.
    #[serde(default = "score")]
    pub score: Score,
    /// The extractor's weights (a safetensors file), looked up like data paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extractor: Option<String>,
    /// Generated images scored at each evaluation (the paper: 6,400 every 10 epochs) and
    /// at the end of the run (64,000).
    #[serde(default = "score_samples")]
    pub score_samples: i64,
    #[serde(default = "final_samples")]
    pub final_samples: i64,
    /// Images in the grid of samples written at the end (`samples.png`).
    #[serde(default = "grid")]
    pub grid: i64,
}

fn nz() -> i64 {
    100
}
fn width() -> i64 {
    64
}
fn image_size() -> i64 {
    64
}
fn one() -> usize {
    1
}
fn score() -> Score {
    Score::FdFmnist
}
fn score_samples() -> i64 {
    6_400
}
fn final_samples() -> i64 {
    64_000
}
fn grid() -> i64 {
    64
}

/// WGAN's clip (`--clip_value`) and WGAN-GP's penalty weight, the scripts' values.
pub const CLIP_VALUE: f64 = 0.01;
pub const GP_WEIGHT: f64 = 10.0;

impl Default for GanSpec {
    fn default() -> Self {
        toml::from_str("").expect("every key has a default")
    }
}

impl GanSpec {
    /// Checks the values; `gp` says whether the model is WGAN-GP. On failure, the dotted
    /// key and a message.
    pub fn validate(&self, gp: bool) -> Result<(), (String, String)> {
        let bad = |key: &str, msg: String| Err((format!("gan.{key}"), msg));
        for (key, v) in [
            ("nz", self.nz),
            ("ngf", self.ngf),
            ("ndf", self.ndf),
            ("score_samples", self.score_samples),
            ("final_samples", self.final_samples),
            ("grid", self.grid),
        ] {
            if v < 1 {
                return bad(key, format!("{key} must be at least 1, not {v}"));
            }
        }
        if ![32, 64].contains(&self.image_size) {
            return bad(
                "image_size",
                format!("the DCGAN networks take 32 or 64, not {}", self.image_size),
            );
        }
        if self.n_critic == 0 {
            return bad(
                "n_critic",
                "at least one critic turn per generator turn".into(),
            );
        }
        if self.score_samples < 2 || self.final_samples < 2 {
            return bad(
                "score_samples",
                "a Fréchet distance needs at least 2 samples (a covariance)".into(),
            );
        }
        match (gp, self.clip_value, self.gp_weight) {
            (true, Some(_), _) => bad(
                "clip_value",
                "wgan_gp has a gradient penalty, not weight clipping".into(),
            ),
            (false, _, Some(_)) => bad(
                "gp_weight",
                "wgan clips the critic's weights; the penalty is for wgan_gp".into(),
            ),
            (_, Some(c), _) if !(c > 0.0 && c.is_finite()) => {
                bad("clip_value", format!("must be positive, not {c}"))
            }
            (_, _, Some(g)) if !(g >= 0.0 && g.is_finite()) => {
                bad("gp_weight", format!("must be non-negative, not {g}"))
            }
            _ => Ok(()),
        }
    }

    /// With the model's default written out (the clip for WGAN, the weight for WGAN-GP).
    pub fn resolved(&self, gp: bool) -> Self {
        let mut s = self.clone();
        match gp {
            true => s.gp_weight = Some(s.gp_weight.unwrap_or(GP_WEIGHT)),
            false => s.clip_value = Some(s.clip_value.unwrap_or(CLIP_VALUE)),
        }
        s
    }
}
