//! On-policy reinforcement learning as Tianshou's MuJoCo examples train it (PPO and A2C,
//! `OnpolicyTrainer`), the PISA code's way for SISA (`RL/ppo_SPiAM.py`, `RL/a2c_SPiAM.py`).
//!
//! A collect is `step_per_collect` transitions of the training environments under the
//! policy at w; its returns and advantages come by GAE. The collect then gives `repeat`
//! passes, each over Tianshou's shuffled split into chunks of m·B transitions, and one
//! chunk is one iteration of the loop: its consecutive pieces of B are the m workers'
//! batches (`batch.split(m·B)`, then each chunk `split(B)`, as the PISA code cuts a
//! minibatch into its `num_gpu` sub-batches). A chunk with fewer pieces than workers
//! leaves the last workers without data, as the code does with A2C's 80-transition
//! collects: they report a zero gradient of no samples (an ADMM worker's w_i then
//! follows w; in the code it stays at the collect's start, the same within one
//! iteration). PPO recomputes the advantages with the current critic before each pass but
//! the first. An epoch is ⌈step_per_epoch / step_per_collect⌉ collects, and is followed by
//! the test episodes.
//!
//! Everything drawn is seeded by (seed, what, index): actions by the collect, the
//! shuffles by collect and pass, reset noise by environment and episode, the test
//! episodes by the environment steps done, so a resumed run draws what an uninterrupted
//! one draws.
use super::policy_loss::{MiniBatch, Objective};
use super::rollout::{split, Rollout};
use super::{Local, Task};
use crate::models::actor_critic::{log_prob, ActorCritic};
use crate::optim::layout::Layout;
use crate::rl::running_mean_std::{RunningMeanStd, OBS_CLIP, OBS_EPS, RETURN_EPS};
use crate::rl::vector::{mix, VectorEnv};
use crate::spec::{KeyError, RlSpec, Spec};
use anyhow::{ensure, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Mutex;
use tch::{Device, Kind, Tensor};

/// Streams of the seeded draws.
const ACTIONS: u64 = 1;
const SHUFFLE: u64 = 2;
const TRAIN_ENVS: u64 = 3;
const TEST_ENVS: u64 = 4;
const TEST_ACTIONS: u64 = 5;

const METRICS: &[&str] = &[
    "env_steps",
    "test_return",
    "test_return_std",
    "train_return",
    "policy_loss",
    "value_loss",
    "entropy",
];
/// Columns that are NaN on a row with nothing to average (no episode ended, no update).
const OCCASIONAL: &[&str] = &["train_return", "policy_loss", "value_loss", "entropy"];

pub struct Reinforcement {
    rl: RlSpec,
    objective: Objective,
    net: ActorCritic,
    w0: Tensor,
    kind: Kind,
    device: Device,
    seed: u64,
    alphas: Vec<f64>,
    /// B, the transitions of a worker's batch.
    batch: usize,
    /// Chunks per pass, and iterations per collect (passes × chunks).
    chunks: Vec<std::ops::Range<usize>>,
    per_collect: usize,
    collects_per_epoch: usize,
    train: VectorEnv,
    test: Mutex<VectorEnv>,
    obs_rms: RunningMeanStd,
    ret_rms: RunningMeanStd,
    /// The training environments' current observations, normalised.
    obs: Vec<Vec<f64>>,
    /// Each training environment's return so far in its episode.
    episode_return: Vec<f64>,
    rollout: Rollout,
    /// The current collect's tensors: observations, raw actions, log π_old, advantages,
    /// returns (the critic's targets).
    batch_tensors: Option<MiniBatch>,
    /// The current pass's order of the collect's transitions.
    order: Vec<usize>,
    iteration: usize,
    env_steps: u64,
    /// Sums since the previous row: finished episodes' returns, and the updates' policy
    /// loss, value loss and entropy.
    since_row: SinceRow,
}

#[derive(Default)]
struct SinceRow {
    returns: (f64, f64),
    losses: ([f64; 3], f64),
    reported: Cell<bool>,
}

impl SinceRow {
    fn begin_iteration(&mut self) {
        if self.reported.replace(false) {
            (self.returns, self.losses) = ((0.0, 0.0), ([0.0; 3], 0.0));
        }
    }

    fn report(&self) -> [f64; 4] {
        self.reported.set(true);
        let mean = |sum: f64, n: f64| if n > 0.0 { sum / n } else { f64::NAN };
        let (l, n) = self.losses;
        [
            mean(self.returns.0, self.returns.1),
            mean(l[0], n),
            mean(l[1], n),
            mean(l[2], n),
        ]
    }

    /// Over ranks, before a row: the ranks' loss sums added, on every rank (each holds its
    /// own workers'; the returns come from the collect every rank runs alike), and the
    /// row's report taken as made.
    fn sum_over_ranks(&mut self) {
        if !crate::dist::distributed() {
            return;
        }
        let (l, n) = &mut self.losses;
        let mut sums = [l[0], l[1], l[2], *n];
        crate::dist::world().sum_f64(&mut sums);
        (*l, *n) = ([sums[0], sums[1], sums[2]], sums[3]);
        self.reported.set(true);
    }

    fn to_vec(&self) -> Vec<f64> {
        let (l, n) = self.losses;
        vec![
            self.returns.0,
            self.returns.1,
            l[0],
            l[1],
            l[2],
            n,
            f64::from(u8::from(self.reported.get())),
        ]
    }

    fn load(&mut self, v: &[f64]) -> Result<()> {
        ensure!(v.len() == 7, "checkpoint since_row: 7 values expected");
        self.returns = (v[0], v[1]);
        self.losses = ([v[2], v[3], v[4]], v[5]);
        self.reported.set(v[6] != 0.0);
        Ok(())
    }
}

impl Reinforcement {
    /// The task of a spec with `data.kind = "environment"`.
    pub fn from_spec(spec: &Spec, device: Device) -> Result<Self> {
        let rl = spec.rl.as_ref().context("validated: [rl]")?.resolved();
        let t = &spec.train;
        let envs = rl.train_envs.context("resolved")?;
        let train = VectorEnv::new(&rl.env, envs, spec.seed, TRAIN_ENVS)?;
        let test = VectorEnv::new(&rl.env, rl.test_envs, spec.seed, TEST_ENVS)?;
        let collect = rl.step_per_collect.context("resolved")?;
        // B = 0: the whole collect, as Tianshou's batch sizes beyond it.
        let batch = if t.batch_size == 0 {
            collect
        } else {
            t.batch_size
        };
        let chunks = split(collect, t.workers * batch);
        if let Some(c) = chunks
            .iter()
            .find(|c| split(c.len(), batch).len() > t.workers)
        {
            return Err(KeyError::at(
                "train.batch_size",
                format!(
                    "a chunk of {} transitions (split from {collect} by workers × batch_size) \
                     makes {} batches of {batch}, more than the {} workers",
                    c.len(),
                    split(c.len(), batch).len(),
                    t.workers
                ),
            ));
        }
        let net = ActorCritic::new(
            train.observation_dim() as i64,
            train.action_bounds().len() as i64,
            &rl.hidden,
        );
        let kind = t.dtype.kind();
        let w0 = net.initial(spec.seed, kind, device);
        let per_collect = rl.repeat.context("resolved")? * chunks.len();
        let objective = Objective::of(&rl)?;
        let mut task = Self {
            collects_per_epoch: rl.step_per_epoch.div_ceil(collect),
            obs_rms: RunningMeanStd::new(train.observation_dim()),
            ret_rms: RunningMeanStd::new(1),
            obs: vec![],
            episode_return: vec![0.0; envs],
            rollout: Rollout::default(),
            batch_tensors: None,
            order: vec![],
            iteration: 0,
            env_steps: 0,
            since_row: SinceRow::default(),
            alphas: vec![1.0 / t.workers as f64; t.workers],
            seed: spec.seed,
            objective,
            rl,
            net,
            w0,
            kind,
            device,
            batch,
            chunks,
            per_collect,
            train,
            test: Mutex::new(test),
        };
        // The collector's first reset of every training environment.
        let first = (0..envs)
            .map(|e| task.train.reset(e))
            .collect::<Result<Vec<_>>>()?;
        task.obs = task.normalise_new(first);
        Ok(task)
    }

    /// Updates the observation statistics with `raw` (when they normalise) and returns
    /// the observations normalised, as `VectorEnvNormObs` does after a step or a reset.
    fn normalise_new(&mut self, mut raw: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
        if self.rl.obs_norm {
            self.obs_rms.update(&raw);
            for x in &mut raw {
                self.obs_rms.normalise(x, OBS_EPS, OBS_CLIP);
            }
        }
        raw
    }

    fn tensor(&self, rows: &[Vec<f64>]) -> Tensor {
        let width = rows.first().map_or(0, Vec::len) as i64;
        let flat: Vec<f64> = rows.concat();
        Tensor::from_slice(&flat)
            .view([rows.len() as i64, width])
            .to_kind(self.kind)
            .to_device(self.device)
    }

    fn map_action(&self, raw: &[f64]) -> Vec<f64> {
        crate::rl::map_action(raw, self.train.action_bounds())
    }

    /// The actions for observations `obs` under w: samples of the Gaussian drawn from
    /// `rng` (environment by environment, dimension by dimension), or its means.
    fn act(
        &self,
        w: &Tensor,
        obs: &[Vec<f64>],
        rng: Option<&mut ChaCha8Rng>,
    ) -> Result<Vec<Vec<f64>>> {
        let (mu, sigma) = tch::no_grad(|| self.net.params(w).policy(&self.tensor(obs)));
        let rows = |t: Tensor| -> Result<Vec<Vec<f64>>> {
            Ok(Vec::<Vec<f64>>::try_from(
                t.to_kind(Kind::Double).to_device(Device::Cpu),
            )?)
        };
        let (mu, sigma) = (rows(mu)?, rows(sigma)?);
        Ok(match rng {
            Some(rng) => mu
                .iter()
                .zip(&sigma)
                .map(|(m, s)| {
                    m.iter()
                        .zip(s)
                        .map(|(m, s)| {
                            let z: f64 = StandardNormal.sample(rng);
                            m + s * z
                        })
                        .collect()
                })
                .collect(),
            None => mu,
        })
    }

    /// Collects the next `step_per_collect` transitions under the policy at `w`
    /// (Tianshou's `Collector.collect(n_step)`), resetting environments whose episode ends.
    fn collect(&mut self, w: &Tensor, collect: usize) -> Result<()> {
        let envs = self.train.len();
        let steps = self.rl.step_per_collect.context("resolved")? / envs;
        let mut rollout = Rollout::new(envs, steps);
        let mut rng = ChaCha8Rng::seed_from_u64(mix([self.seed, ACTIONS, collect as u64]));
        let ids: Vec<usize> = (0..envs).collect();
        for t in 0..steps {
            let raw = self.act(w, &self.obs, Some(&mut rng))?;
            let mapped: Vec<Vec<f64>> = raw.iter().map(|a| self.map_action(a)).collect();
            let results = self.train.step(&ids, &mapped)?;
            let next = results.iter().map(|s| s.observation.clone()).collect();
            let next = self.normalise_new(next);
            let mut ended = vec![];
            for (e, (step, act)) in results.iter().zip(raw).enumerate() {
                let i = rollout.index(e, t);
                rollout.obs[i] = std::mem::take(&mut self.obs[e]);
                rollout.obs_next[i] = next[e].clone();
                rollout.act[i] = act;
                rollout.rew[i] = step.reward;
                rollout.terminated[i] = step.terminated;
                rollout.truncated[i] = step.truncated;
                self.episode_return[e] += step.reward;
                if step.terminated || step.truncated {
                    self.since_row.returns.0 += std::mem::take(&mut self.episode_return[e]);
                    self.since_row.returns.1 += 1.0;
                    ended.push(e);
                }
                self.obs[e] = next[e].clone();
            }
            if !ended.is_empty() {
                let first = ended
                    .iter()
                    .map(|&e| self.train.reset(e))
                    .collect::<Result<Vec<_>>>()?;
                for (e, obs) in ended.into_iter().zip(self.normalise_new(first)) {
                    self.obs[e] = obs;
                }
            }
        }
        self.env_steps += rollout.len() as u64;
        self.rollout = rollout;
        Ok(())
    }

    /// `_compute_returns` at w: GAE on the critic's values in the rewards' scale; with
    /// reward normalisation the returns are divided by the running standard deviation of
    /// returns so far, which then takes these in.
    fn compute_returns(&mut self, w: &Tensor) -> Result<(Tensor, Tensor)> {
        let values = |rows: &[Vec<f64>]| -> Result<Vec<f64>> {
            let v = tch::no_grad(|| self.net.params(w).value(&self.tensor(rows)));
            Ok(Vec::<f64>::try_from(
                v.to_kind(Kind::Double).to_device(Device::Cpu),
            )?)
        };
        let (mut v_s, mut v_next) = (values(&self.rollout.obs)?, values(&self.rollout.obs_next)?);
        let scale = if self.rl.reward_norm {
            (self.ret_rms.var[0] + RETURN_EPS).sqrt()
        } else {
            1.0
        };
        for v in v_s.iter_mut().chain(&mut v_next) {
            *v *= scale;
        }
        let (mut returns, adv) =
            self.rollout
                .gae(&v_s, &v_next, self.rl.gamma, self.rl.gae_lambda)?;
        if self.rl.reward_norm {
            let rows: Vec<[f64; 1]> = returns.iter().map(|&r| [r]).collect();
            self.ret_rms.update(&rows);
            for r in &mut returns {
                *r /= scale;
            }
        }
        let column = |v: &[f64]| {
            Tensor::from_slice(v)
                .to_kind(self.kind)
                .to_device(self.device)
        };
        Ok((column(&adv), column(&returns)))
    }

    /// After a collect (`process_fn`): the returns and advantages, and log π_old of the
    /// actions at w.
    fn process(&mut self, w: &Tensor) -> Result<()> {
        let (adv, returns) = self.compute_returns(w)?;
        let obs = self.tensor(&self.rollout.obs);
        let act = self.tensor(&self.rollout.act);
        let logp_old = tch::no_grad(|| {
            let (mu, sigma) = self.net.params(w).policy(&obs);
            log_prob(&mu, &sigma, &act)
        });
        self.batch_tensors = Some(MiniBatch {
            obs,
            act,
            logp_old,
            adv,
            returns,
        });
        Ok(())
    }

    /// Collect, pass and chunk of an iteration.
    fn position(&self, iteration: usize) -> (usize, usize, usize) {
        let k = iteration % self.per_collect;
        (
            iteration / self.per_collect,
            k / self.chunks.len(),
            k % self.chunks.len(),
        )
    }

    /// Pass `pass` of collect `collect`: a seeded permutation of the transitions.
    fn shuffle(&mut self, collect: usize, pass: usize) {
        let mut rng =
            ChaCha8Rng::seed_from_u64(mix([self.seed, SHUFFLE, collect as u64, pass as u64]));
        self.order = (0..self.rollout.len()).collect();
        self.order.shuffle(&mut rng);
    }

    /// Worker `worker`'s transitions in the current iteration (none when its chunk has
    /// fewer pieces than there are workers).
    fn piece(&self, worker: usize) -> &[usize] {
        let (_, _, chunk) = self.position(self.iteration);
        let range = self.chunks[chunk].clone();
        let pieces = split(range.len(), self.batch);
        pieces.get(worker).map_or(&[], |p| {
            &self.order[range.start + p.start..range.start + p.end]
        })
    }

    /// The loss of transitions `rows` at the point `w` (requiring its gradient), and its
    /// parts.
    fn loss(&self, w: &Tensor, rows: &Tensor) -> Result<(Tensor, [f64; 3])> {
        let b = self
            .batch_tensors
            .as_ref()
            .context("a collect precedes the updates")?;
        let (loss, parts) = self.objective.loss(&self.net.params(w), &b.rows(rows));
        Ok((loss, parts.map(|t| t.double_value(&[]))))
    }

    /// Mean and standard deviation (ddof 0, `np.std`) of one test episode per test
    /// environment, under the observation statistics of the training environments, not
    /// updated by them.
    fn test_returns(&self, w: &Tensor) -> Result<(f64, f64)> {
        let mut test = self.test.lock().unwrap_or_else(|e| e.into_inner());
        let n = test.len();
        test.reseed(mix([TEST_ENVS, self.env_steps]));
        let mut rng = ChaCha8Rng::seed_from_u64(mix([self.seed, TEST_ACTIONS, self.env_steps]));
        let mut obs = (0..n).map(|e| test.reset(e)).collect::<Result<Vec<_>>>()?;
        let mut returns = vec![0.0; n];
        let mut running: Vec<usize> = (0..n).collect();
        while !running.is_empty() {
            let mut current: Vec<Vec<f64>> = running.iter().map(|&e| obs[e].clone()).collect();
            if self.rl.obs_norm {
                for x in &mut current {
                    self.obs_rms.normalise(x, OBS_EPS, OBS_CLIP);
                }
            }
            let sampled = (!self.rl.deterministic_eval).then_some(&mut rng);
            let actions: Vec<Vec<f64>> = self
                .act(w, &current, sampled)?
                .iter()
                .map(|a| self.map_action(a))
                .collect();
            let steps = test.step(&running, &actions)?;
            let mut still = vec![];
            for (&e, step) in running.iter().zip(steps) {
                returns[e] += step.reward;
                if !(step.terminated || step.truncated) {
                    obs[e] = step.observation;
                    still.push(e);
                }
            }
            running = still;
        }
        let mean = returns.iter().sum::<f64>() / n as f64;
        let var = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n as f64;
        Ok((mean, var.sqrt()))
    }
}

impl Task for Reinforcement {
    fn alphas(&self) -> &[f64] {
        &self.alphas
    }

    fn initial_point(&self) -> Tensor {
        self.w0.copy()
    }

    fn layout(&self) -> Layout {
        self.net.layout().clone()
    }

    fn initial_buffers(&self) -> (Layout, Tensor) {
        (
            Layout::default(),
            Tensor::zeros([0], (self.kind, self.device)),
        )
    }

    fn set_initial(&mut self, w0: &Tensor, buffers: &Tensor) -> Result<()> {
        ensure!(
            w0.size() == self.w0.size() && buffers.numel() == 0,
            "the initial point must have the actor-critic's {} parameters",
            self.w0.numel()
        );
        self.w0 = w0.to_kind(self.kind).to_device(self.device);
        Ok(())
    }

    fn iterations_per_epoch(&self) -> usize {
        self.collects_per_epoch * self.per_collect
    }

    /// `lr_decay`: Tianshou's `LambdaLR(1 − c/C)` stepped after each collect's update, C
    /// the run's collects.
    fn step_scales(&self, iterations: usize) -> Option<Vec<f64>> {
        self.rl.lr_decay.then(|| {
            let collects = iterations.div_ceil(self.per_collect) as f64;
            (0..iterations)
                .map(|l| 1.0 - (l / self.per_collect) as f64 / collects)
                .collect()
        })
    }

    fn restarts(&self, iteration: usize) -> bool {
        self.rl.restart_admm && (iteration + 1).is_multiple_of(self.per_collect)
    }

    fn begin_iteration(&mut self, iteration: usize) -> Result<()> {
        self.iteration = iteration;
        self.since_row.begin_iteration();
        Ok(())
    }

    fn begin_turn(&mut self, _player: usize, w: &Tensor) -> Result<()> {
        let (collect, pass, chunk) = self.position(self.iteration);
        if pass == 0 && chunk == 0 {
            self.collect(w, collect)?;
            self.process(w)?;
        } else if chunk == 0 && self.rl.recompute_advantage == Some(true) {
            let (adv, returns) = self.compute_returns(w)?;
            let b = self
                .batch_tensors
                .as_mut()
                .context("a collect precedes the updates")?;
            (b.adv, b.returns) = (adv, returns);
        }
        if chunk == 0 || self.order.is_empty() {
            self.shuffle(collect, pass);
        }
        Ok(())
    }

    fn local(&mut self, worker: usize, w: &Tensor, _hessian: bool) -> Result<Local> {
        let rows: Vec<i64> = self.piece(worker).iter().map(|&i| i as i64).collect();
        if rows.is_empty() {
            return Ok(Local {
                grad: w.zeros_like(),
                samples: 0,
                hessian: None,
            });
        }
        let w = w.detach().set_requires_grad(true);
        let index = Tensor::from_slice(&rows).to_device(self.device);
        let (loss, parts) = self.loss(&w, &index)?;
        let grad = Tensor::run_backward(&[loss], &[&w], false, false).remove(0);
        let (sums, n) = &mut self.since_row.losses;
        for (s, p) in sums.iter_mut().zip(parts) {
            *s += p;
        }
        *n += 1.0;
        Ok(Local {
            grad,
            samples: rows.len(),
            hessian: None,
        })
    }

    fn metric_names(&self) -> &'static [&'static str] {
        METRICS
    }

    fn evaluate(&self, w: &Tensor) -> Result<Vec<f64>> {
        let (mean, std) = self.test_returns(w)?;
        let mut row = vec![self.env_steps as f64, mean, std];
        row.extend(self.since_row.report());
        Ok(row)
    }

    fn occasional_metrics(&self) -> &'static [&'static str] {
        OCCASIONAL
    }

    /// Every rank runs the same collects (the same seeded environments under the same w,
    /// the same statistics); a worker's state is its piece of the chunk, and `evaluate`
    /// reads the others' losses only through [`Task::sum_row_over_ranks`].
    fn splits_over_ranks(&self) -> bool {
        true
    }

    fn sum_row_over_ranks(&mut self) -> Result<()> {
        self.since_row.sum_over_ranks();
        Ok(())
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let f64s = |v: &[f64]| Tensor::from_slice(v);
        let rows = |r: &[Vec<f64>]| {
            let width = r.first().map_or(0, Vec::len) as i64;
            Tensor::from_slice(&r.concat()).view([r.len() as i64, width])
        };
        let flags =
            |b: &[bool]| Tensor::from_slice(&b.iter().map(|&x| u8::from(x)).collect::<Vec<_>>());
        let r = &self.rollout;
        let mut state = vec![
            ("rl.obs_rms".into(), f64s(&self.obs_rms.to_vec())),
            ("rl.ret_rms".into(), f64s(&self.ret_rms.to_vec())),
            ("rl.obs".into(), rows(&self.obs)),
            ("rl.episode_return".into(), f64s(&self.episode_return)),
            ("rl.since_row".into(), f64s(&self.since_row.to_vec())),
            (
                "rl.env_steps".into(),
                crate::optim::counter(self.env_steps as usize),
            ),
            ("rl.envs".into(), rows(&self.train.snapshot())),
            ("rl.rollout.obs".into(), rows(&r.obs)),
            ("rl.rollout.obs_next".into(), rows(&r.obs_next)),
            ("rl.rollout.act".into(), rows(&r.act)),
            ("rl.rollout.rew".into(), f64s(&r.rew)),
            ("rl.rollout.terminated".into(), flags(&r.terminated)),
            ("rl.rollout.truncated".into(), flags(&r.truncated)),
        ];
        if let Some(b) = &self.batch_tensors {
            for (name, t) in [
                ("logp_old", &b.logp_old),
                ("adv", &b.adv),
                ("returns", &b.returns),
            ] {
                state.push((format!("rl.batch.{name}"), t.shallow_clone()));
            }
        }
        state
    }

    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        let get = |name: &str| {
            saved
                .get(&format!("rl.{name}"))
                .with_context(|| format!("the checkpoint has no rl.{name}"))
        };
        let f64s = |name: &str| -> Result<Vec<f64>> {
            Ok(Vec::<f64>::try_from(
                get(name)?.to_kind(Kind::Double).flatten(0, -1),
            )?)
        };
        let rows = |name: &str| -> Result<Vec<Vec<f64>>> {
            Ok(Vec::<Vec<f64>>::try_from(get(name)?.to_kind(Kind::Double))?)
        };
        let flags = |name: &str| -> Result<Vec<bool>> {
            Ok(Vec::<u8>::try_from(get(name)?.to_kind(Kind::Uint8))?
                .into_iter()
                .map(|b| b != 0)
                .collect())
        };
        self.obs_rms.load(&f64s("obs_rms")?)?;
        self.ret_rms.load(&f64s("ret_rms")?)?;
        self.obs = rows("obs")?;
        self.episode_return = f64s("episode_return")?;
        ensure!(
            self.obs.len() == self.train.len() && self.episode_return.len() == self.train.len(),
            "the checkpoint's training environments are not this spec's {}",
            self.train.len()
        );
        self.since_row.load(&f64s("since_row")?)?;
        self.env_steps = crate::optim::read_counter(saved, "rl.env_steps")? as u64;
        self.train.restore(&rows("envs")?)?;
        let steps = self.rl.step_per_collect.context("resolved")? / self.train.len();
        self.rollout = Rollout {
            steps,
            obs: rows("rollout.obs")?,
            obs_next: rows("rollout.obs_next")?,
            act: rows("rollout.act")?,
            rew: f64s("rollout.rew")?,
            terminated: flags("rollout.terminated")?,
            truncated: flags("rollout.truncated")?,
        };
        self.batch_tensors = None;
        if saved.contains_key("rl.batch.logp_old") {
            let column = |name: &str| -> Result<Tensor> {
                Ok(get(name)?.to_kind(self.kind).to_device(self.device))
            };
            self.batch_tensors = Some(MiniBatch {
                obs: self.tensor(&self.rollout.obs),
                act: self.tensor(&self.rollout.act),
                logp_old: column("batch.logp_old")?,
                adv: column("batch.adv")?,
                returns: column("batch.returns")?,
            });
        }
        // The pass's order is drawn again when the next iteration begins.
        self.order.clear();
        Ok(())
    }
}
