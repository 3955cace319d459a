//! A Wasserstein GAN as a task of two players (Section 5.4; `Tracy-Wang7/PISA`,
//! `WGAN/WGAN/main_SPiAM.py` and `WGAN/WGAN_GP/main_SPiAM.py`): the critic (player 0,
//! first in w) and the generator (player 1), each trained by its own optimizer.
//!
//! As the PISA code runs it:
//! - An iteration is one batch of m·b real images, a seeded permutation of the training
//!   set per epoch (the last batch of an epoch is shorter, as the code's DataLoader);
//!   worker i takes the i-th sub-batch (b rows; the last worker the rest) and its own
//!   noise z_i, drawn from (seed, iteration, worker).
//! - The critic moves every iteration; the generator after it when the iteration's index
//!   within its epoch is a multiple of n_critic, on the same z_i.
//! - Critic loss −mean D(x) + mean D(G(z)) (+ the gradient penalty for WGAN-GP), generator
//!   loss −mean D(G(z)); both networks in training mode, so their batch-norm running
//!   statistics move with every forward pass, one buffer shared by the workers (over
//!   ranks, each rank replays the other ranks' passes for them: [`crate::dist::Chain`]).
//!   WGAN's critic is clipped to ±c after each of its steps (`Player::clamp`).
//! - The score generates images with the generator in evaluation mode, maps each to [0, 1]
//!   by its own minimum and maximum and rounds it to 8 bits, as the code's
//!   `save_image(normalize=True)` to PNG does, and so are the real images of the reference
//!   statistics.
//!
//! Evaluation rows: `wasserstein` = mean D(x) − mean D(G(z)) and the two losses on a fixed
//! held-out batch (test images, fixed noise; batch statistics as in training, the running
//! ones left as they were), then the Fréchet score on `score_samples` generated images
//! (`final_samples` at the end of the run).
use super::gradient_penalty::gradient_penalty;
use super::{Local, Player, Task};
use crate::metrics::frechet::{frechet_distance, Statistics};
use crate::metrics::FeatureExtractor;
use crate::models::dcgan::{self, Critic, Generator};
use crate::models::FlatParams;
use crate::optim::layout::Layout;
use anyhow::{ensure, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use tch::{Device, Kind, Tensor};

/// The critic and the generator, in w's order.
pub const CRITIC: usize = 0;
pub const GENERATOR: usize = 1;

/// Images generated or scored per forward pass.
const CHUNK: i64 = 500;
/// Real and generated images of the held-out evaluation batch.
const EVAL_BATCH: i64 = 640;

/// `f`, a forward pass in training mode, with `params`' running statistics restored
/// after it: an evaluation leaves the networks as training left them.
fn with_statistics_kept<T>(params: &FlatParams, f: impl FnOnce() -> T) -> T {
    let kept = params.state().copy();
    let out = f();
    tch::no_grad(|| params.state().shallow_clone().copy_(&kept));
    out
}

/// What a GAN task is made of, from `[gan]`, `[train]` and the seed.
pub struct Config {
    pub workers: usize,
    /// b, each worker's sub-batch of real images.
    pub batch_size: usize,
    pub seed: u64,
    pub nz: i64,
    pub n_critic: usize,
    pub clip_value: Option<f64>,
    pub gp_weight: Option<f64>,
    pub score_column: &'static str,
    pub score_samples: i64,
    pub final_samples: i64,
    /// The run's length: the evaluation after it scores `final_samples`.
    pub iterations: usize,
    pub kind: Kind,
    pub device: Device,
}

pub struct Gan {
    config: Config,
    critic: dcgan::Player<Critic>,
    generator: dcgan::Player<Generator>,
    /// uint8 [N, C, S, S], resized to the networks' size.
    train: Tensor,
    /// The held-out batch: real test images as the networks see them, fixed noise.
    eval_real: Tensor,
    eval_noise: Tensor,
    extractor: Box<dyn FeatureExtractor>,
    reference: Statistics,
    alphas: Vec<f64>,
    /// The current epoch's order of the training images, and that epoch.
    order: Vec<i64>,
    epoch: usize,
    /// The iteration begun last (its batch rows and the workers' noise), and how many
    /// iterations have begun.
    rows: Vec<Vec<i64>>,
    noise: Vec<Tensor>,
    begun: usize,
    turn: usize,
    initial: (Tensor, Tensor),
    /// Over ranks: the other ranks' passes this rank replays for the statistics.
    chain: crate::dist::Chain,
}

/// Real images (uint8) as the networks see them: [−1, 1] (the code's Normalize(0.5, 0.5)).
fn to_network(images: &Tensor, kind: Kind) -> Tensor {
    images.to_kind(kind) / 127.5 - 1.0
}

/// Images in any range as the code saves them for scoring: each mapped to [0, 1] by its
/// own minimum and maximum (`save_image(normalize=True)`), then to 8 bits as PNG stores
/// them (`mul(255).add(0.5).clamp(0, 255)` truncated), read back in [0, 1].
pub fn as_saved(images: &Tensor) -> Tensor {
    let n = images.size()[0];
    let flat = images.to_kind(Kind::Float).reshape([n, -1]);
    let low = flat.amin([1], true);
    let high = flat.amax([1], true);
    let unit = (&flat - &low) / (high - &low).clamp_min(1e-5);
    let bytes = (unit * 255.0 + 0.5).clamp(0.0, 255.0).to_kind(Kind::Uint8);
    (bytes.to_kind(Kind::Float) / 255.0).reshape(images.size())
}

/// The Fréchet statistics of `images` (uint8 or float, [N, C, S, S]) as saved for scoring.
pub fn statistics_of(extractor: &dyn FeatureExtractor, images: &Tensor) -> Result<Statistics> {
    let n = images.size()[0];
    let mut features = vec![];
    for start in (0..n).step_by(CHUNK as usize) {
        let chunk = images.narrow(0, start, CHUNK.min(n - start));
        features.push(extractor.features(&as_saved(&chunk))?);
    }
    Statistics::from_features(&Tensor::cat(&features, 0))
}

impl Gan {
    /// `train` and `test`: uint8 [N, C, S, S] at the networks' size. `reference`: the
    /// statistics of `train` in the extractor's features.
    pub fn new(
        config: Config,
        critic: dcgan::Player<Critic>,
        generator: dcgan::Player<Generator>,
        train: Tensor,
        test: &Tensor,
        extractor: Box<dyn FeatureExtractor>,
        reference: Statistics,
    ) -> Result<Self> {
        let batch = (config.workers * config.batch_size) as i64;
        ensure!(
            train.size()[0] >= batch,
            "gan: {} training images are fewer than one batch of {} workers × {}",
            train.size()[0],
            config.workers,
            config.batch_size
        );
        let eval = EVAL_BATCH.min(test.size()[0]);
        let eval_real = to_network(&test.narrow(0, 0, eval), config.kind).to_device(config.device);
        let eval_noise = crate::models::seeded(config.seed ^ 0x5eed_e7a1, || {
            Tensor::randn([eval, config.nz, 1, 1], (config.kind, config.device))
        });
        let initial = (
            Tensor::cat(&[critic.params.values(), generator.params.values()], 0),
            Tensor::cat(
                &[
                    critic.params.state().copy(),
                    generator.params.state().copy(),
                ],
                0,
            ),
        );
        let alphas = vec![1.0 / config.workers as f64; config.workers];
        let mut gan = Self {
            critic,
            generator,
            train: train.to_device(config.device),
            eval_real,
            eval_noise,
            extractor,
            reference,
            alphas,
            order: vec![],
            epoch: usize::MAX,
            rows: vec![],
            noise: vec![],
            begun: 0,
            turn: CRITIC,
            chain: Default::default(),
            initial,
            config,
        };
        gan.shuffle(0);
        Ok(gan)
    }

    /// Rows of the training set in epoch `epoch`'s order.
    fn shuffle(&mut self, epoch: usize) {
        let n = self.train.size()[0];
        let mut order: Vec<i64> = (0..n).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.config.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ epoch as u64,
        );
        order.shuffle(&mut rng);
        self.order = order;
        self.epoch = epoch;
    }

    fn batch(&self) -> usize {
        self.config.workers * self.config.batch_size
    }

    fn params(&self, player: usize) -> &FlatParams {
        match player {
            CRITIC => &self.critic.params,
            _ => &self.generator.params,
        }
    }

    /// Loads both players' parts of the whole point w.
    fn load(&self, w: &Tensor) -> Result<()> {
        let c = self.critic.params.numel();
        self.critic.params.load(&w.narrow(0, 0, c))?;
        self.generator
            .params
            .load(&w.narrow(0, c, self.generator.params.numel()))
    }

    /// The critic's loss on real images `real` and noise `z`: (the Wasserstein estimate's
    /// negative, the penalty term or 0) as tensors with graphs.
    fn critic_loss(
        &self,
        real: &Tensor,
        z: &Tensor,
        penalty_seed: u64,
    ) -> Result<(Tensor, Tensor)> {
        let c = &self.config;
        let fake = tch::no_grad(|| self.generator.net.forward(z, true))?;
        let critic = |x: &Tensor| self.critic.net.forward(x, true);
        // The code's order of the critic's passes: real, fake, then the penalty's.
        let real_mean = critic(real)?.mean(None);
        let estimate = critic(&fake)?.mean(None) - real_mean;
        let penalty = match c.gp_weight {
            Some(weight) => {
                let epsilon = crate::models::seeded(penalty_seed, || {
                    Tensor::rand([real.size()[0], 1], (c.kind, c.device))
                });
                gradient_penalty(critic, real, &fake, &epsilon, weight)?
            }
            None => Tensor::zeros([], (c.kind, c.device)),
        };
        Ok((estimate, penalty))
    }

    /// Worker `worker`'s loss for the moving player at the loaded parameters, its
    /// networks' training passes moving their batch-norm statistics: the critic's on its
    /// real sub-batch and noise, or the generator's on its noise.
    fn pass_loss(&self, worker: usize) -> Result<Tensor> {
        let c = &self.config;
        let z = &self.noise[worker];
        Ok(match self.turn {
            CRITIC => {
                let index = Tensor::from_slice(&self.rows[worker]).to_device(c.device);
                let real = to_network(&self.train.index_select(0, &index), c.kind);
                let seed = noise_seed(c.seed, self.begun - 1, worker) ^ 0x6a09_e667;
                let (estimate, penalty) = self.critic_loss(&real, z, seed)?;
                estimate + penalty
            }
            _ => {
                let fake = self.generator.net.forward(z, true)?;
                -self.critic.net.forward(&fake, true)?.mean(None)
            }
        })
    }

    /// Generated images [n, C, S, S] in [−1, 1], the generator in evaluation mode.
    fn generate(&self, n: i64, seed: u64) -> Result<Tensor> {
        let c = &self.config;
        tch::no_grad(|| {
            let parts = (0..n)
                .step_by(CHUNK as usize)
                .map(|start| {
                    let z = crate::models::seeded(seed.wrapping_add(start as u64), || {
                        Tensor::randn([CHUNK.min(n - start), c.nz, 1, 1], (c.kind, c.device))
                    });
                    self.generator.net.forward(&z, false)
                })
                .collect::<Result<Vec<Tensor>>>()?;
            Ok(Tensor::cat(&parts, 0))
        })
    }

    /// An 8×8 (or `side`×`side`) grid of generated images as a PNG file, from fixed noise.
    pub fn samples_png(&self, w: &Tensor, side: i64) -> Result<Vec<u8>> {
        self.load(w)?;
        let images = as_saved(&self.generate(side * side, self.config.seed ^ 0x9a1d)?);
        let size = images.size();
        let (channels, s) = (size[1], size[2]);
        let pad = 2;
        let cell = s + pad;
        let grid = Tensor::ones(
            [channels, side * cell + pad, side * cell + pad],
            (Kind::Float, Device::Cpu),
        );
        for k in 0..side * side {
            let (row, col) = (k / side, k % side);
            grid.narrow(1, pad + row * cell, s)
                .narrow(2, pad + col * cell, s)
                .copy_(&images.get(k).to_device(Device::Cpu));
        }
        let bytes = (grid * 255.0 + 0.5).clamp(0.0, 255.0).to_kind(Kind::Uint8);
        let (height, width) = (bytes.size()[1] as u32, bytes.size()[2] as u32);
        let pixels = Vec::<u8>::try_from(bytes.permute([1, 2, 0]).contiguous().reshape([-1]))?;
        let color = match channels {
            1 => image::ExtendedColorType::L8,
            _ => image::ExtendedColorType::Rgb8,
        };
        let mut png = vec![];
        image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new(&mut png),
            &pixels,
            width,
            height,
            color,
        )
        .context("encoding the samples grid")?;
        Ok(png)
    }
}

impl Task for Gan {
    fn alphas(&self) -> &[f64] {
        &self.alphas
    }

    fn initial_point(&self) -> Tensor {
        self.initial.0.copy()
    }

    fn layout(&self) -> Layout {
        Layout::joined(&[
            ("critic", self.critic.params.layout()),
            ("generator", self.generator.params.layout()),
        ])
    }

    fn initial_buffers(&self) -> (Layout, Tensor) {
        let layout = Layout::joined(&[
            ("critic", self.critic.params.state_layout()),
            ("generator", self.generator.params.state_layout()),
        ]);
        (layout, self.initial.1.copy())
    }

    fn set_initial(&mut self, w0: &Tensor, buffers: &Tensor) -> Result<()> {
        let (p, b) = (self.initial.0.numel(), self.initial.1.numel());
        ensure!(
            w0.size() == [p as i64] && buffers.size() == [b as i64],
            "gan: expected [{p}] parameters and [{b}] buffer values, got {:?} and {:?}",
            w0.size(),
            buffers.size()
        );
        self.load(w0)?;
        let bc = self.critic.params.state().numel() as i64;
        tch::no_grad(|| {
            self.critic
                .params
                .state()
                .shallow_clone()
                .copy_(&buffers.narrow(0, 0, bc));
            self.generator
                .params
                .state()
                .shallow_clone()
                .copy_(&buffers.narrow(0, bc, b as i64 - bc));
        });
        self.initial = (w0.copy(), buffers.copy());
        Ok(())
    }

    fn iterations_per_epoch(&self) -> usize {
        (self.train.size()[0] as usize).div_ceil(self.batch())
    }

    fn players(&self) -> Vec<Player> {
        vec![
            Player {
                name: "critic",
                offset: 0,
                layout: self.critic.params.layout().clone(),
                alphas: self.alphas.clone(),
                clamp: self.config.clip_value,
            },
            Player {
                name: "generator",
                offset: self.critic.params.numel(),
                layout: self.generator.params.layout().clone(),
                alphas: self.alphas.clone(),
                clamp: None,
            },
        ]
    }

    fn turns(&self, iteration: usize) -> Vec<usize> {
        match (iteration % self.iterations_per_epoch()) % self.config.n_critic {
            0 => vec![CRITIC, GENERATOR],
            _ => vec![CRITIC],
        }
    }

    fn begin_iteration(&mut self, iteration: usize) -> Result<()> {
        let n = self.iterations_per_epoch();
        let epoch = iteration / n;
        if epoch != self.epoch {
            self.shuffle(epoch);
        }
        let batch = self.batch();
        let start = (iteration % n) * batch;
        let rows = &self.order[start..(start + batch).min(self.order.len())];
        // The code's split: len/m rows each, the last worker the rest.
        let m = self.config.workers;
        let sub = rows.len() / m;
        self.rows = (0..m)
            .map(|i| {
                let end = if i + 1 == m {
                    rows.len()
                } else {
                    (i + 1) * sub
                };
                rows[i * sub..end].to_vec()
            })
            .collect();
        let c = &self.config;
        self.noise = (0..m)
            .map(|i| {
                crate::models::seeded(noise_seed(c.seed, iteration, i), || {
                    Tensor::randn([self.rows[i].len() as i64, c.nz, 1, 1], (c.kind, c.device))
                })
            })
            .collect();
        self.begun = iteration + 1;
        Ok(())
    }

    fn begin_turn(&mut self, player: usize, w: &Tensor) -> Result<()> {
        self.turn = player;
        self.load(w)
    }

    fn local(&mut self, worker: usize, w: &Tensor, hessian: bool) -> Result<Local> {
        ensure!(
            !hessian,
            "gan: the Hessian preconditioner (4.1) needs the P×P Hessian, which these networks \
             do not have; use sisa or a first-order pisa"
        );
        self.params(self.turn).load(w)?;
        let (m, turn) = (self.config.workers, (self.begun - 1, self.turn));
        // over ranks: the other ranks' passes around this rank's, for the batch-norm
        // statistics each pass moves (their losses' graphs dropped unused)
        for other in self.chain.before(worker, m, turn)? {
            let _ = self.pass_loss(other)?;
        }
        let loss = self.pass_loss(worker)?;
        let params = self.params(self.turn);
        let grads = Tensor::run_backward(&[loss], params.variables(), false, false);
        let flat: Vec<Tensor> = grads.iter().map(|g| g.reshape([-1])).collect();
        for other in self.chain.after(worker, m) {
            let _ = self.pass_loss(other)?;
        }
        Ok(Local {
            grad: Tensor::cat(&flat, 0),
            samples: self.rows[worker].len(),
            hessian: None,
        })
    }

    fn metric_names(&self) -> &'static [&'static str] {
        match self.config.score_column {
            "fid" => &["wasserstein", "critic_loss", "generator_loss", "fid"],
            _ => &["wasserstein", "critic_loss", "generator_loss", "fd_fmnist"],
        }
    }

    fn evaluate(&self, w: &Tensor) -> Result<Vec<f64>> {
        let c = &self.config;
        self.load(w)?;
        // Training-mode statistics for the losses, as the players see them; nothing kept.
        let kept = |f: &dyn Fn() -> Result<Tensor>| {
            with_statistics_kept(&self.critic.params, || {
                with_statistics_kept(&self.generator.params, f)
            })
        };
        let estimate = kept(&|| {
            let (estimate, p) =
                self.critic_loss(&self.eval_real, &self.eval_noise, c.seed ^ 0xe7a1)?;
            Ok(Tensor::stack(&[estimate, p], 0))
        })?;
        let generator_loss = tch::no_grad(|| {
            kept(&|| {
                let fake = self.generator.net.forward(&self.eval_noise, true)?;
                Ok(-self.critic.net.forward(&fake, true)?.mean(None))
            })
        })?;
        let (estimate, penalty) = (estimate.double_value(&[0]), estimate.double_value(&[1]));
        let samples = match self.begun >= c.iterations {
            true => c.final_samples,
            false => c.score_samples,
        };
        let generated = self.generate(samples, noise_seed(c.seed, self.begun, usize::MAX))?;
        let score = frechet_distance(
            &statistics_of(self.extractor.as_ref(), &generated)?,
            &self.reference,
        )?;
        Ok(vec![
            -estimate,
            estimate + penalty,
            generator_loss.double_value(&[]),
            score,
        ])
    }

    fn outputs(&self, w: &Tensor) -> Result<Vec<(&'static str, Vec<u8>)>> {
        Ok(vec![("samples.png", self.samples_png(w, 8)?)])
    }

    /// Each rank replays the other ranks' passes for the batch-norm statistics
    /// ([`crate::dist::Chain`]), so every rank holds the same networks; `evaluate` reads
    /// nothing else of the workers.
    fn splits_over_ranks(&self) -> bool {
        true
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        vec![
            (
                "critic_buffers".into(),
                self.critic.params.state().shallow_clone(),
            ),
            (
                "generator_buffers".into(),
                self.generator.params.state().shallow_clone(),
            ),
        ]
    }

    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        crate::optim::copy_state(&self.state(), saved)
    }
}

/// The seed of worker `worker`'s noise in iteration `iteration`.
fn noise_seed(seed: u64, iteration: usize, worker: usize) -> u64 {
    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(((iteration as u64) << 8) ^ worker as u64)
}
