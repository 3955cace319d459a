//! Reinforcement-learning speed (Figure 7): the MuJoCo environments of src/rl/ stepped
//! alone and eight together, and one PPO mini-batch update as the task runs it (Adam, and
//! SISA with m = 4), on the four environments. `scripts/bench_rl_torch.py` times
//! gymnasium and plain PyTorch on the same work; `scripts/bench-rl` runs both and prints
//! the pisa/python ratios.
//!
//! ```text
//! cargo bench --bench rl -- [--threads N] [--budget 3] [--warmup 1000] [--envs Ant-v4,...]
//! ```
//! The same settings can come from `PISA_BENCH_THREADS`, `PISA_BENCH_BUDGET`,
//! `PISA_BENCH_WARMUP`, `PISA_BENCH_ENVS`. `--threads N` sets libtorch's intra-op threads
//! and builds rayon's global pool (where [`VectorEnv`] steps) with N threads; without it
//! libtorch runs 1 thread and rayon its default (`RAYON_NUM_THREADS`, else one per core,
//! as `pisa run` leaves it).
//!
//! What is timed, per environment (`make(id)`: the environment in its 1000-step TimeLimit):
//! - single: one environment reset (seeded ChaCha8), then stepped with actions drawn
//!   uniformly in its bounds from a seeded ChaCha8 (drawn inside the timed loop: a few ns
//!   a dimension), reset whenever a step is terminated or truncated (the resets timed
//!   too). `--warmup` steps untimed, then blocks of 100 steps until `--budget` seconds
//!   have passed; steps / seconds.
//! - vector: a [`VectorEnv`] of 8 (PPO's `--training-num`), all reset, then
//!   `step(&[0..8], &actions)` with one random action each, stepped on rayon's threads,
//!   and the ended ones reset after it, one by one, as `Reinforcement::collect` does;
//!   `--warmup`/8 steps untimed, then blocks of 10 until the budget; 8 × steps / seconds.
//! - ppo adam: one iteration of the task's update with registry "adam" (lr 3e-4) and
//!   m = 1: 64 random rows of a 2048-transition collect (random observations, actions,
//!   advantages, returns; log π_old of the actions at w⁰) taken by `index_select`,
//!   `Objective::loss` of PPO's resolved `[rl]` (ε 0.2, vf_coef 0.25, ent_coef 0, no
//!   advantage normalisation) at the flat w with its gradient on, its three parts read
//!   (`double_value`, as the task logs them), `run_backward`, the clip to norm 0.5
//!   (train.rs's `clip`: g·min(1, 0.5/(‖g‖ + 1e-6))), `local_update`; inside
//!   `begin_iteration`/`end_iteration`. Tianshou's [64, 64] actor and critic on the
//!   environment's dimensions, f32, CPU. Median ms over the iterations of `--budget`
//!   seconds after 20 untimed.
//! - ppo sisa: the same with registry "sisa" as experiments/figure7/*-ppo-sisa.toml set it
//!   (σ⁰ 5, ρ 19995, γ 1, scheme 3, β 0.999, ε 1e-8) and m = 4 workers: one iteration =
//!   `begin_iteration`, 4 × (64 rows, loss + backward + clip + `local_update`),
//!   `end_iteration`, i.e. one 256-transition minibatch (the ADMM restart at each collect,
//!   `rl.restart_admm`, is not timed). Median ms per iteration.
//!
//! - adam / sisa step alone: the optimizer's part of those iterations by itself,
//!   `begin_iteration`, m × `local_update` with a fixed random gradient (copied into a
//!   fresh buffer first, untimed, since the optimizer consumes it), `end_iteration`:
//!   what of the update is the optimizer and what the network.
//!
//! Not timed: the policy's forward pass in a collect, GAE, observation normalisation.
use pisa::models::actor_critic::{log_prob, ActorCritic};
use pisa::optim::registry::{self, Context};
use pisa::optim::Optimizer;
use pisa::rl::vector::VectorEnv;
use pisa::rl::{make, Env, ENV_IDS};
use pisa::spec::{OptimizerSpec, RlSpec};
use pisa::tasks::policy_loss::{MiniBatch, Objective};
use pisa::tasks::Local;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};

/// PPO's training environments (`--training-num` 8) and transitions per collect
/// (`--step-per-collect` 2048), its mini-batch (`--batch-size` 64).
const TRAIN_ENVS: usize = 8;
const COLLECT: i64 = 2048;
const BATCH: i64 = 64;
const HIDDEN: [i64; 2] = [64, 64];
/// `--max-grad-norm`.
const CLIP_NORM: f64 = 0.5;
/// Untimed update iterations before timing.
const UPDATE_WARMUP: usize = 20;

struct Args {
    /// `--threads`: libtorch's and rayon's; `None` leaves rayon its default.
    threads: Option<usize>,
    budget: Duration,
    warmup: usize,
    envs: Vec<String>,
}

fn parse_args() -> Args {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut threads = env("PISA_BENCH_THREADS").unwrap_or_default();
    let mut budget = env("PISA_BENCH_BUDGET").unwrap_or_else(|| "3".into());
    let mut warmup = env("PISA_BENCH_WARMUP").unwrap_or_else(|| "1000".into());
    let mut envs = env("PISA_BENCH_ENVS").unwrap_or_default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let slot = match a.as_str() {
            "--threads" => &mut threads,
            "--budget" => &mut budget,
            "--warmup" => &mut warmup,
            "--envs" => &mut envs,
            // `cargo bench` passes --bench; anything else is not ours either.
            _ => continue,
        };
        *slot = args.next().unwrap_or_else(|| panic!("{a} needs a value"));
    }
    let number = |s: &str, what: &str| -> f64 {
        s.parse()
            .unwrap_or_else(|_| panic!("{what} must be a number, not {s:?}"))
    };
    let envs: Vec<String> = envs
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    for id in &envs {
        assert!(
            ENV_IDS.contains(&id.as_str()),
            "unknown environment {id:?}: {}",
            ENV_IDS.join(", ")
        );
    }
    Args {
        threads: (!threads.is_empty()).then(|| number(&threads, "--threads").max(1.0) as usize),
        budget: Duration::from_secs_f64(number(&budget, "--budget")),
        warmup: number(&warmup, "--warmup") as usize,
        envs: if envs.is_empty() {
            ENV_IDS.iter().map(|s| s.to_string()).collect()
        } else {
            envs
        },
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// An action drawn uniformly within `bounds`.
fn random_action(bounds: &[(f64, f64)], rng: &mut ChaCha8Rng) -> Vec<f64> {
    bounds
        .iter()
        .map(|&(low, high)| rng.random_range(low..high))
        .collect()
}

/// Steps per second of one environment; the steps timed and the episodes they ended.
fn single(id: &str, args: &Args) -> (f64, usize, usize) {
    let mut env: Box<dyn Env> = make(id).expect("make");
    let bounds = env.action_bounds().to_vec();
    let mut resets = ChaCha8Rng::seed_from_u64(1);
    let mut actions = ChaCha8Rng::seed_from_u64(0);
    env.reset(&mut resets).expect("reset");
    let mut ended = 0;
    let mut step = |n: usize, ended: &mut usize| {
        for _ in 0..n {
            let s = env
                .step(&random_action(&bounds, &mut actions))
                .expect("step");
            if s.terminated || s.truncated {
                *ended += 1;
                env.reset(&mut resets).expect("reset");
            }
        }
    };
    step(args.warmup, &mut ended);
    ended = 0;
    let (start, mut n) = (Instant::now(), 0);
    while start.elapsed() < args.budget {
        step(100, &mut ended);
        n += 100;
    }
    (n as f64 / start.elapsed().as_secs_f64(), n, ended)
}

/// Transitions per second of a [`VectorEnv`] of [`TRAIN_ENVS`]; the transitions timed and
/// the episodes they ended.
fn vector(id: &str, args: &Args) -> (f64, usize, usize) {
    let mut envs = VectorEnv::new(id, TRAIN_ENVS, 0, 0).expect("VectorEnv");
    let bounds = envs.action_bounds().to_vec();
    let ids: Vec<usize> = (0..TRAIN_ENVS).collect();
    for i in 0..TRAIN_ENVS {
        envs.reset(i).expect("reset");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut step = |n: usize, ended: &mut usize| {
        for _ in 0..n {
            let actions: Vec<Vec<f64>> = ids
                .iter()
                .map(|_| random_action(&bounds, &mut rng))
                .collect();
            let steps = envs.step(&ids, &actions).expect("step");
            for (i, s) in steps.iter().enumerate() {
                if s.terminated || s.truncated {
                    *ended += 1;
                    envs.reset(i).expect("reset");
                }
            }
        }
    };
    let mut ended = 0;
    step(args.warmup / TRAIN_ENVS, &mut ended);
    ended = 0;
    let (start, mut n) = (Instant::now(), 0);
    while start.elapsed() < args.budget {
        step(10, &mut ended);
        n += 10;
    }
    let transitions = n * TRAIN_ENVS;
    (
        transitions as f64 / start.elapsed().as_secs_f64(),
        transitions,
        ended,
    )
}

/// The spec of an optimizer `name` with `hypers`.
fn optimizer_spec(name: &str, hypers: &[(&str, toml::Value)]) -> OptimizerSpec {
    OptimizerSpec {
        name: name.into(),
        hypers: hypers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

/// Median seconds of one update iteration of `spec` with `m` workers on `id`'s
/// dimensions, and the iterations timed.
fn update(id: &str, spec: &OptimizerSpec, m: usize, args: &Args) -> (f64, usize) {
    let env = make(id).expect("make");
    let (obs_dim, act_dim) = (
        env.observation_dim() as i64,
        env.action_bounds().len() as i64,
    );
    let net = ActorCritic::new(obs_dim, act_dim, &HIDDEN);
    let w0 = net.initial(0, Kind::Float, Device::Cpu);
    let rl: RlSpec = toml::from_str(&format!("env = {id:?}\nalgorithm = \"ppo\"")).expect("[rl]");
    let objective = Objective::of(&rl.resolved()).expect("objective");
    tch::manual_seed(0);
    let f32s = (Kind::Float, Device::Cpu);
    let obs = Tensor::randn([COLLECT, obs_dim], f32s);
    let act = Tensor::randn([COLLECT, act_dim], f32s);
    let logp_old = tch::no_grad(|| {
        let (mu, sigma) = net.params(&w0).policy(&obs);
        log_prob(&mu, &sigma, &act)
    });
    let collect = MiniBatch {
        obs,
        act,
        logp_old,
        adv: Tensor::randn([COLLECT], f32s),
        returns: Tensor::randn([COLLECT], f32s),
    };
    let alphas = vec![1.0 / m as f64; m];
    let schedule = Default::default();
    let context = Context {
        w0: &w0,
        layout: net.layout(),
        alphas: &alphas,
        schedule: &schedule,
        iterations: 1_000_000,
        iterations_per_epoch: 0,
    };
    let mut opt: Box<dyn Optimizer> = registry::build(spec, &context).expect("optimizer");
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut sink = 0.0;
    let mut iteration = |opt: &mut Box<dyn Optimizer>| {
        opt.begin_iteration();
        for worker in 0..m {
            let rows: Vec<i64> = (0..BATCH).map(|_| rng.random_range(0..COLLECT)).collect();
            let index = Tensor::from_slice(&rows);
            let w = opt.params().detach().set_requires_grad(true);
            let (loss, parts) = objective.loss(&net.params(&w), &collect.rows(&index));
            sink += parts.iter().map(|t| t.double_value(&[])).sum::<f64>();
            let mut grad = Tensor::run_backward(&[loss], &[&w], false, false).remove(0);
            pisa::train::clip_grad_norm(&mut grad, CLIP_NORM);
            let local = Local {
                grad,
                samples: BATCH as usize,
                hessian: None,
            };
            opt.local_update(worker, local).expect("local_update");
        }
        opt.end_iteration();
    };
    for _ in 0..UPDATE_WARMUP {
        iteration(&mut opt);
    }
    let start = Instant::now();
    let mut times = vec![];
    while start.elapsed() < args.budget {
        let t = Instant::now();
        iteration(&mut opt);
        times.push(t.elapsed().as_secs_f64());
    }
    assert!(sink.is_finite(), "the losses stayed finite");
    let n = times.len();
    (median(times), n)
}

/// Median seconds of the optimizer's part of an iteration alone: `begin_iteration`, m ×
/// `local_update` with a fixed gradient (copied into a fresh buffer before each call,
/// untimed: the optimizer consumes it), `end_iteration`; and the iterations timed.
fn optimizer_alone(id: &str, spec: &OptimizerSpec, m: usize, args: &Args) -> (f64, usize) {
    let env = make(id).expect("make");
    let net = ActorCritic::new(
        env.observation_dim() as i64,
        env.action_bounds().len() as i64,
        &HIDDEN,
    );
    let w0 = net.initial(0, Kind::Float, Device::Cpu);
    tch::manual_seed(1);
    let grads: Vec<Tensor> = (0..m).map(|_| w0.randn_like() * 1e-2).collect();
    let alphas = vec![1.0 / m as f64; m];
    let schedule = Default::default();
    let context = Context {
        w0: &w0,
        layout: net.layout(),
        alphas: &alphas,
        schedule: &schedule,
        iterations: 1_000_000,
        iterations_per_epoch: 0,
    };
    let mut opt: Box<dyn Optimizer> = registry::build(spec, &context).expect("optimizer");
    let mut times = vec![];
    let start = Instant::now();
    for k in 0.. {
        if k >= UPDATE_WARMUP && start.elapsed() >= args.budget {
            break;
        }
        let buffers: Vec<Tensor> = grads.iter().map(Tensor::copy).collect();
        let t = Instant::now();
        opt.begin_iteration();
        for (worker, grad) in buffers.into_iter().enumerate() {
            let local = Local {
                grad,
                samples: BATCH as usize,
                hessian: None,
            };
            opt.local_update(worker, local).expect("local_update");
        }
        opt.end_iteration();
        if k >= UPDATE_WARMUP {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    let n = times.len();
    (median(times), n)
}

fn main() {
    let args = parse_args();
    let tch_threads = args.threads.unwrap_or(1);
    tch::set_num_threads(tch_threads as i32);
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .expect("rayon's global pool");
    }
    println!(
        "# pisa RL benchmark: {} libtorch threads, {} rayon threads, budget {:.1} s per measurement, warm-up {} steps, f32 CPU",
        tch::get_num_threads(),
        rayon::current_num_threads(),
        args.budget.as_secs_f64(),
        args.warmup
    );
    let adam = optimizer_spec("adam", &[("lr", 3e-4.into())]);
    let sisa = optimizer_spec(
        "sisa",
        &[
            ("sigma0", 5.0.into()),
            ("rho", 19995.0.into()),
            ("gamma", 1.0.into()),
            ("scheme", 3.into()),
            ("beta", 0.999.into()),
            ("eps", 1e-8.into()),
        ],
    );
    let mut rows = vec![];
    for id in &args.envs {
        let env = make(id).expect("make");
        let (obs_dim, act_dim) = (env.observation_dim(), env.action_bounds().len());
        let params = ActorCritic::new(obs_dim as i64, act_dim as i64, &HIDDEN)
            .layout()
            .numel();
        let (single_rate, single_n, single_ended) = single(id, &args);
        let (vector_rate, vector_n, vector_ended) = vector(id, &args);
        let (adam_s, adam_n) = update(id, &adam, 1, &args);
        let (sisa_s, sisa_n) = update(id, &sisa, 4, &args);
        let (adam_opt_s, _) = optimizer_alone(id, &adam, 1, &args);
        let (sisa_opt_s, _) = optimizer_alone(id, &sisa, 4, &args);
        println!(
            "RESULT env={id} obs={obs_dim} act={act_dim} params={params} single_steps_per_s={single_rate:.1} single_steps={single_n} single_episodes={single_ended} vector_transitions_per_s={vector_rate:.1} vector_transitions={vector_n} vector_episodes={vector_ended} adam_ms={:.4} adam_iters={adam_n} sisa_ms={:.4} sisa_iters={sisa_n} adam_opt_ms={:.4} sisa_opt_ms={:.4}",
            adam_s * 1e3,
            sisa_s * 1e3,
            adam_opt_s * 1e3,
            sisa_opt_s * 1e3
        );
        rows.push(format!(
            "| {id} | {obs_dim} | {act_dim} | {params} | {single_rate:.0} | {vector_rate:.0} | {:.3} | {:.3} | {:.3} | {:.3} |",
            adam_s * 1e3,
            sisa_s * 1e3,
            adam_opt_s * 1e3,
            sisa_opt_s * 1e3
        ));
    }
    println!();
    println!("| env | obs | act | P | single steps/s | vector ×8 transitions/s | ppo adam ms | ppo sisa m=4 ms | adam step alone ms | sisa step alone ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!("{r}");
    }
}
