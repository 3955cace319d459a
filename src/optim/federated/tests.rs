//! The federated algorithms on clients with quadratic losses f_i(w) = ½‖w − b_i‖² (the
//! gradient w − b_i is exact, so a round can be computed by hand), and against scalar
//! transcriptions of their papers' formulas.
use super::fednova::effective_steps;
use crate::optim::hyper::Hypers;
use crate::optim::layout::Layout;
use crate::optim::registry::{self, Context};
use crate::optim::Optimizer;
use crate::schedule::Schedule;
use crate::tasks::Local;
use tch::{Kind, Tensor};

fn build_with(
    name: &str,
    keys: &str,
    w0: &Tensor,
    layout: &Layout,
    alphas: &[f64],
    per_epoch: usize,
) -> Box<dyn Optimizer> {
    let entry = registry::find(name).unwrap();
    let h = Hypers::resolve(name, entry.hypers, &keys.parse().unwrap()).unwrap();
    let context = Context {
        w0,
        layout,
        alphas,
        schedule: &Schedule::default(),
        iterations: 10,
        iterations_per_epoch: per_epoch,
    };
    (entry.build)(&h, &context).unwrap_or_else(|e| panic!("{name}: {e:#}"))
}

fn build(name: &str, keys: &str, w0: &[f64], alphas: &[f64]) -> Box<dyn Optimizer> {
    let w0 = Tensor::from_slice(w0);
    build_with(
        name,
        keys,
        &w0,
        &Layout::vector(w0.numel() as i64),
        alphas,
        0,
    )
}

/// One round with client i's gradient w − b_i; how often each client was asked.
fn round(opt: &mut dyn Optimizer, targets: &[Vec<f64>]) -> Vec<usize> {
    let mut calls = vec![0; targets.len()];
    opt.begin_iteration();
    for (i, b) in targets.iter().enumerate() {
        let b = Tensor::from_slice(b).to_kind(opt.params().kind());
        opt.local_round(i, &mut |w| {
            calls[i] += 1;
            Ok(Local {
                grad: w - &b,
                samples: 1,
                hessian: None,
            })
        })
        .unwrap();
    }
    opt.end_iteration();
    calls
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}[{k}]: got {g}, want {w} (all: {got:?} vs {want:?})"
        );
    }
}

fn state(opt: &dyn Optimizer, name: &str) -> Vec<f64> {
    let (_, t) = opt.state().into_iter().find(|(n, _)| n == name).unwrap();
    values(&t)
}

const TARGETS: [[f64; 2]; 2] = [[1.0, 0.0], [0.0, 2.0]];

fn targets() -> Vec<Vec<f64>> {
    TARGETS.iter().map(|b| b.to_vec()).collect()
}

#[test]
fn fedavg_averages_the_local_models_by_size() {
    // lr 0.5, two steps from 0: w_i = b_i(1 − 0.5²) = 0.75 b_i; w = 0.25·w_1 + 0.75·w_2
    let keys = "lr = 0.5\nlocal_steps = 2\nweight_decay = 0.0";
    let mut opt = build("fedavg", keys, &[0.0, 0.0], &[0.25, 0.75]);
    assert_eq!(round(opt.as_mut(), &targets()), vec![2, 2]);
    assert_close(&values(opt.params()), &[0.1875, 1.125], 1e-15, "w");
    // floats: P = 2 down and up for each of the two clients
    assert_eq!(opt.communication(), Some((4, 4)));
}

#[test]
fn fedsgd_averages_with_equal_weights() {
    let keys = "lr = 0.5\nlocal_steps = 2";
    let mut opt = build("fedsgd", keys, &[0.0, 0.0], &[0.25, 0.75]);
    round(opt.as_mut(), &targets());
    assert_close(&values(opt.params()), &[0.375, 0.75], 1e-15, "w");
}

#[test]
fn fedprox_adds_the_proximal_gradient() {
    // μ = 1 around w = 0: g = (w − b) + w; lr 0.5: w ← 0.5b, then stays (g = 0)
    let keys = "lr = 0.5\nlocal_steps = 2\nweight_decay = 0.0\nmu = 1.0";
    let mut opt = build("fedprox", keys, &[0.0, 0.0], &[0.25, 0.75]);
    round(opt.as_mut(), &targets());
    assert_close(&values(opt.params()), &[0.125, 0.75], 1e-15, "w");
}

#[test]
fn local_epochs_become_steps_per_client() {
    // n = 2 iterations per epoch for the smaller share: client i takes round(E·n·α_i/α_min)
    let w0 = Tensor::from_slice(&[0.0, 0.0]);
    let mut opt = build_with(
        "fedavg",
        "local_epochs = 1.0",
        &w0,
        &Layout::vector(2),
        &[0.25, 0.75],
        2,
    );
    assert_eq!(round(opt.as_mut(), &targets()), vec![2, 6]);
    let entry = registry::find("fedavg").unwrap();
    let h = Hypers::resolve("fedavg", entry.hypers, &toml::Table::new()).unwrap();
    let context = Context {
        w0: &w0,
        layout: &Layout::vector(2),
        alphas: &[0.5, 0.5],
        schedule: &Schedule::default(),
        iterations: 1,
        iterations_per_epoch: 0,
    };
    let err = (entry.build)(&h, &context).err().unwrap().to_string();
    assert!(err.contains("local_steps"), "{err}");
}

#[test]
fn fednova_normalises_by_the_effective_local_steps() {
    // τ = (1, 3) from local_epochs; momentum ρ = 0.5, lr 0.5, torch SGD (b₁ = g).
    // Client 1: w_1 = 0.5 b_1, a_1 = 1. Client 2 along b_2: x = 0.5, 1.0, 1.25, so
    // w_2 = 1.25 b_2, a_2 = (3 − 0.5·0.875/0.5)/0.5 = 4.25. d_i = (w − w_i)/a_i,
    // τ_eff = 0.25·1 + 0.75·4.25, w ← w − τ_eff (0.25 d_1 + 0.75 d_2).
    let w0 = Tensor::from_slice(&[0.0, 0.0]);
    let keys = "lr = 0.5\nmomentum = 0.5\nweight_decay = 0.0\nlocal_epochs = 1.0";
    let mut opt = build_with("fednova", keys, &w0, &Layout::vector(2), &[0.25, 0.75], 1);
    assert_eq!(round(opt.as_mut(), &targets()), vec![1, 3]);
    assert_close(
        &values(opt.params()),
        &[0.4296875, 1.5165441176470589],
        1e-14,
        "w",
    );
    // (up, down): d_i and a_i up, w down
    assert_eq!(opt.communication(), Some((6, 4)));
}

#[test]
fn fednova_effective_steps_are_the_momentum_weights() {
    // Wang et al. (2020): with heavy-ball momentum the k-th of τ gradients enters the
    // update with weight Σ_{j=0}^{τ−k} ρ^j, and a_i is the sum of these weights.
    for rho in [0.0f64, 0.3, 0.9] {
        for tau in [1, 2, 5, 17] {
            let weights: f64 = (1..=tau)
                .map(|k| (0..=tau - k).map(|j| rho.powi(j as i32)).sum::<f64>())
                .sum();
            let a = effective_steps(tau, rho);
            assert!(
                (a - weights).abs() < 1e-12 * weights,
                "τ {tau} ρ {rho}: {a} vs {weights}"
            );
        }
    }
}

/// SCAFFOLD option II transcribed from Karimireddy et al. (2020), Algorithm 1, on the
/// quadratic clients: the participants of each round are whichever clients were asked.
struct ScaffoldReference {
    x: Vec<f64>,
    c: Vec<f64>,
    c_local: Vec<Vec<f64>>,
}

impl ScaffoldReference {
    fn round(
        &mut self,
        targets: &[Vec<f64>],
        alphas: &[f64],
        taking_part: &[bool],
        k: usize,
        lr: f64,
        server_lr: f64,
    ) {
        let n = targets.len() as f64;
        let p = self.x.len();
        let total: f64 = (0..targets.len())
            .filter(|&i| taking_part[i])
            .map(|i| alphas[i])
            .sum();
        let mut dx = vec![0.0; p];
        let mut dc = vec![0.0; p];
        for (i, b) in targets.iter().enumerate() {
            if !taking_part[i] {
                continue;
            }
            let mut y = self.x.clone();
            for _ in 0..k {
                for j in 0..p {
                    let g = y[j] - b[j];
                    y[j] -= lr * (g - self.c_local[i][j] + self.c[j]);
                }
            }
            for j in 0..p {
                let c_plus = self.c_local[i][j] - self.c[j] + (self.x[j] - y[j]) / (k as f64 * lr);
                dx[j] += alphas[i] / total * (y[j] - self.x[j]);
                dc[j] += c_plus - self.c_local[i][j];
                self.c_local[i][j] = c_plus;
            }
        }
        for j in 0..p {
            self.x[j] += server_lr * dx[j];
            self.c[j] += dc[j] / n;
        }
    }
}

#[test]
fn scaffold_follows_option_two_of_the_paper() {
    // Round 1 by hand (c = c_i = 0): y_i = 0.75 b_i, c_i = (x − y_i)/(Kη) = −0.75 b_i,
    // c = (Δc_1 + Δc_2)/2, x = Σ p_i y_i with η_g = 1.
    let keys = "lr = 0.5\nlocal_steps = 2\nweight_decay = 0.0";
    let mut opt = build("scaffold", keys, &[0.0, 0.0], &[0.25, 0.75]);
    round(opt.as_mut(), &targets());
    assert_close(&values(opt.params()), &[0.1875, 1.125], 1e-15, "x");
    assert_close(&state(opt.as_ref(), "c"), &[-0.375, -0.75], 1e-15, "c");
    assert_close(
        &state(opt.as_ref(), "c_local"),
        &[-0.75, 0.0, 0.0, -1.5],
        1e-15,
        "c_i",
    );
    assert_eq!(opt.communication(), Some((8, 8)));

    // Four clients, half of them each round, η_g = 0.7: against the transcription.
    let targets: Vec<Vec<f64>> = vec![
        vec![1.0, -1.0],
        vec![0.5, 2.0],
        vec![-2.0, 0.3],
        vec![0.1, 0.4],
    ];
    let alphas = [0.1, 0.2, 0.3, 0.4];
    let keys = "lr = 0.3\nlocal_steps = 3\nweight_decay = 0.0\nserver_lr = 0.7\nparticipation = 0.5\nseed = 3";
    let mut opt = build("scaffold", keys, &[0.2, -0.1], &alphas);
    let mut reference = ScaffoldReference {
        x: vec![0.2, -0.1],
        c: vec![0.0; 2],
        c_local: vec![vec![0.0; 2]; 4],
    };
    for r in 0..6 {
        let calls = round(opt.as_mut(), &targets);
        let taking_part: Vec<bool> = calls.iter().map(|&c| c > 0).collect();
        assert_eq!(taking_part.iter().filter(|&&t| t).count(), 2, "round {r}");
        reference.round(&targets, &alphas, &taking_part, 3, 0.3, 0.7);
        assert_close(&values(opt.params()), &reference.x, 1e-13, "x");
        assert_close(&state(opt.as_ref(), "c"), &reference.c, 1e-13, "c");
        let c_local: Vec<f64> = reference.c_local.concat();
        assert_close(&state(opt.as_ref(), "c_local"), &c_local, 1e-13, "c_i");
    }
}

#[test]
fn participation_draws_are_deterministic_per_seed() {
    let targets: Vec<Vec<f64>> = (0..10).map(|i| vec![i as f64, 1.0]).collect();
    let alphas = [0.1; 10];
    let draws = |seed: u64| -> Vec<Vec<usize>> {
        let keys = format!("lr = 0.1\nlocal_steps = 2\nparticipation = 0.3\nseed = {seed}");
        let mut opt = build("fedavg", &keys, &[0.0, 0.0], &alphas);
        (0..8)
            .map(|_| {
                let calls = round(opt.as_mut(), &targets);
                // a client either takes part (all its local steps) or is never asked
                assert!(calls.iter().all(|&c| c == 0 || c == 2), "{calls:?}");
                let drawn: Vec<usize> = (0..10).filter(|&i| calls[i] > 0).collect();
                assert_eq!(drawn.len(), 3);
                drawn
            })
            .collect()
    };
    let first = draws(7);
    assert_eq!(first, draws(7));
    assert_ne!(first, draws(8));
    // not the same clients every round
    assert!(first.iter().any(|d| d != &first[0]), "{first:?}");
    // ⌊m·participation⌋ clients, at least one
    let keys = "lr = 0.1\nlocal_steps = 1\nparticipation = 0.01";
    let mut opt = build("fedavg", keys, &[0.0, 0.0], &alphas);
    assert_eq!(round(opt.as_mut(), &targets).iter().sum::<usize>(), 1);
}

/// A deterministic nonlinear gradient.
fn gradient(w: &Tensor) -> Tensor {
    let shift = Tensor::linspace(-1.0, 1.0, w.size()[0], (w.kind(), w.device()));
    (w - &shift).sinh() * 0.5 + w * 0.1
}

#[test]
fn one_client_and_one_local_step_is_one_sgd_step() {
    let w0 = Tensor::linspace(-0.5, 0.7, 6, (Kind::Double, tch::Device::Cpu));
    let layout = Layout::vector(6);
    let sgd_keys = "lr = 0.2\nweight_decay = 0.01";
    let mut sgd = build_with("sgd", sgd_keys, &w0, &layout, &[1.0], 0);
    let federated: Vec<Box<dyn Optimizer>> = [
        ("fedavg", "momentum = 0.9"),
        ("fedprox", "mu = 0.5"),
        ("fednova", "momentum = 0.9"),
        ("scaffold", "server_lr = 1.0"),
        ("fedsgd", ""),
    ]
    .into_iter()
    .map(|(name, extra)| {
        let keys = format!("{sgd_keys}\nlocal_steps = 1\n{extra}");
        build_with(name, &keys, &w0, &layout, &[1.0], 0)
    })
    .collect();
    let mut federated = federated;
    for _ in 0..5 {
        sgd.begin_iteration();
        let g = gradient(sgd.params());
        sgd.local_update(
            0,
            Local {
                grad: g,
                samples: 1,
                hessian: None,
            },
        )
        .unwrap();
        sgd.end_iteration();
        for opt in federated.iter_mut() {
            opt.begin_iteration();
            opt.local_round(0, &mut |w| {
                Ok(Local {
                    grad: gradient(w),
                    samples: 1,
                    hessian: None,
                })
            })
            .unwrap();
            opt.end_iteration();
            assert_close(&values(opt.params()), &values(sgd.params()), 1e-14, "w");
        }
    }
}

#[test]
fn local_update_drives_one_local_step() {
    let mut opt = build(
        "fedavg",
        "lr = 0.5\nlocal_steps = 1\nweight_decay = 0.0",
        &[1.0, 2.0],
        &[1.0],
    );
    opt.begin_iteration();
    let grad = Tensor::from_slice(&[1.0, -2.0]);
    opt.local_update(
        0,
        Local {
            grad,
            samples: 4,
            hessian: None,
        },
    )
    .unwrap();
    opt.end_iteration();
    assert_close(&values(opt.params()), &[0.5, 3.0], 1e-15, "w");
    let mut opt = build("fedavg", "local_steps = 2", &[1.0, 2.0], &[1.0]);
    opt.begin_iteration();
    let grad = Tensor::from_slice(&[1.0, -2.0]);
    let err = opt
        .local_update(
            0,
            Local {
                grad,
                samples: 4,
                hessian: None,
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("local_steps = 1"), "{err}");
}

/// Fed-AMS / Fed-LAMB transcribed from the Fed-LAMB paper's Algorithm 2 (with Algorithm
/// 1's update for Fed-AMS) under the conventions of `fedams.rs`, in scalar loops.
struct AmsReference {
    theta: Vec<f64>,
    vhat: Vec<f64>,
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
    done: Vec<i32>,
    lr: f64,
    eps: f64,
    /// "none", "local" or "client"
    bias: &'static str,
    /// Fed-LAMB: the tensors' index ranges, λ and the clamp of φ.
    layers: Option<(Vec<std::ops::Range<usize>>, f64, f64)>,
}

impl AmsReference {
    fn new(theta: &[f64], clients: usize, lr: f64, eps: f64, bias: &'static str) -> Self {
        let p = theta.len();
        Self {
            theta: theta.to_vec(),
            vhat: vec![eps; p],
            m: vec![vec![0.0; p]; clients],
            v: vec![vec![eps; p]; clients],
            done: vec![0; clients],
            lr,
            eps,
            bias,
            layers: None,
        }
    }

    fn round(&mut self, targets: &[Vec<f64>], steps: usize) {
        let (b1, b2) = (0.9f64, 0.999f64);
        let p = self.theta.len();
        let s = targets.len() as f64;
        let mut sum = vec![0.0; p];
        let mut sum_v = vec![0.0; p];
        for (i, b) in targets.iter().enumerate() {
            let mut th = self.theta.clone();
            let mut vl = self.vhat.clone();
            let mut c2 = 1.0;
            for t in 1..=steps as i32 {
                let k = match self.bias {
                    "local" => t,
                    "client" => self.done[i] + t,
                    _ => 0,
                };
                let c1 = if k > 0 { 1.0 - b1.powi(k) } else { 1.0 };
                c2 = if k > 0 { 1.0 - b2.powi(k) } else { 1.0 };
                let mut dir = vec![0.0; p];
                for j in 0..p {
                    let g = th[j] - b[j];
                    self.m[i][j] = b1 * self.m[i][j] + (1.0 - b1) * g;
                    self.v[i][j] = b2 * self.v[i][j] + (1.0 - b2) * g * g;
                    vl[j] = vl[j].max(self.v[i][j] / c2);
                    let root = if self.layers.is_some() {
                        (vl[j] + self.eps).sqrt()
                    } else {
                        vl[j].sqrt()
                    };
                    dir[j] = self.m[i][j] / c1 / root;
                }
                match &self.layers {
                    None => (0..p).for_each(|j| th[j] -= self.lr * dir[j]),
                    Some((ranges, lambda, clamp)) => {
                        for r in ranges {
                            let u: Vec<f64> = r.clone().map(|j| dir[j] + lambda * th[j]).collect();
                            let wn = r
                                .clone()
                                .map(|j| th[j] * th[j])
                                .sum::<f64>()
                                .sqrt()
                                .min(*clamp);
                            let un = u.iter().map(|x| x * x).sum::<f64>().sqrt();
                            let ratio = if wn == 0.0 || un == 0.0 { 1.0 } else { wn / un };
                            for (x, j) in u.iter().zip(r.clone()) {
                                th[j] -= self.lr * ratio * x;
                            }
                        }
                    }
                }
            }
            self.done[i] += steps as i32;
            for j in 0..p {
                sum[j] += th[j] / s;
                sum_v[j] += self.v[i][j] / c2 / s;
            }
        }
        self.theta = sum;
        for (vhat, v) in self.vhat.iter_mut().zip(sum_v) {
            *vhat = vhat.max(v);
        }
    }
}

fn check_ams(name: &str, keys: &str, layout: &Layout, mut reference: AmsReference) {
    let targets: Vec<Vec<f64>> = vec![vec![1.0, -0.5, 2.0], vec![-1.0, 0.3, 0.5]];
    let w0 = Tensor::from_slice(&reference.theta);
    let mut opt = build_with(name, keys, &w0, layout, &[0.3, 0.7], 0);
    for r in 0..4 {
        round(opt.as_mut(), &targets);
        reference.round(&targets, 3);
        assert_close(
            &values(opt.params()),
            &reference.theta,
            1e-12,
            &format!("{name} θ round {r}"),
        );
        assert_close(
            &state(opt.as_ref(), "max_exp_avg_sq"),
            &reference.vhat,
            1e-12,
            "v̂",
        );
        assert_close(
            &state(opt.as_ref(), "exp_avg"),
            &reference.m.concat(),
            1e-12,
            "m",
        );
    }
    assert_eq!(opt.communication(), Some((4 * 2 * 6, 4 * 2 * 6)));
}

#[test]
fn fedams_follows_local_amsgrad() {
    // one client, one step by hand: m = 0.1g, v = 0.999ε + 0.001g², θ ← θ − α m/√max(ε, v)
    let mut opt = build("fedams", "lr = 0.1\nlocal_steps = 1", &[0.0], &[1.0]);
    round(opt.as_mut(), &[vec![1.0]]);
    let v: f64 = 0.999e-8 + 0.001;
    assert_close(&values(opt.params()), &[0.1 * 0.1 / v.sqrt()], 1e-14, "θ");
    assert_close(&state(opt.as_ref(), "max_exp_avg_sq"), &[v], 1e-14, "v̂");

    let layout = Layout::vector(3);
    for bias in ["none", "client"] {
        let keys = format!("lr = 0.05\nlocal_steps = 3\nbias_correction = \"{bias}\"");
        check_ams(
            "fedams",
            &keys,
            &layout,
            AmsReference::new(&[0.2, 0.1, -0.3], 2, 0.05, 1e-8, bias),
        );
    }
}

#[test]
fn fedlamb_follows_algorithm_2() {
    let layout = Layout::new([("a", vec![2]), ("b", vec![1])]);
    for bias in ["local", "client", "none"] {
        let keys = format!(
            "lr = 0.05\nlocal_steps = 3\nweight_decay = 0.05\nclamp_value = 0.25\nbias_correction = \"{bias}\""
        );
        let mut reference = AmsReference::new(&[0.2, 0.1, -0.3], 2, 0.05, 1e-8, bias);
        reference.layers = Some((vec![0..2, 2..3], 0.05, 0.25));
        check_ams("fedlamb", &keys, &layout, reference);
    }
}

#[test]
fn works_in_f32() {
    let w0 = Tensor::from_slice(&[0.2f32, 0.1, -0.3]);
    let layout = Layout::new([("a", vec![2]), ("b", vec![1])]);
    for name in [
        "fedavg", "fedprox", "fednova", "scaffold", "fedsgd", "fedams", "fedlamb",
    ] {
        let mut opt = build_with(
            name,
            "local_steps = 2\nparticipation = 0.5",
            &w0,
            &layout,
            &[0.5, 0.5],
            0,
        );
        let targets = vec![vec![1.0, -0.5, 2.0], vec![-1.0, 0.3, 0.5]];
        for _ in 0..3 {
            round(opt.as_mut(), &targets);
        }
        assert_eq!(opt.params().kind(), Kind::Float, "{name}");
        assert!(values(opt.params()).iter().all(|x| x.is_finite()), "{name}");
        assert_ne!(values(opt.params()), values(&w0), "{name} did not move");
    }
}

#[test]
fn resumes_exactly_with_partial_participation() {
    let w0 = Tensor::from_slice(&[0.2, 0.1, -0.3]);
    let layout = Layout::new([("a", vec![2]), ("b", vec![1])]);
    let targets: Vec<Vec<f64>> = (0..4)
        .map(|i| vec![i as f64, -1.0, 0.5 * i as f64])
        .collect();
    let alphas = [0.1, 0.2, 0.3, 0.4];
    let common = "local_steps = 2\nparticipation = 0.5\nseed = 11";
    for (name, extra) in [
        ("scaffold", ""),
        ("fedlamb", "bias_correction = \"client\""),
    ] {
        let keys = format!("{common}\n{extra}");
        let make = || build_with(name, &keys, &w0, &layout, &alphas, 0);
        let mut whole = make();
        let mut first = make();
        for _ in 0..3 {
            round(whole.as_mut(), &targets);
            round(first.as_mut(), &targets);
        }
        let saved: std::collections::HashMap<String, Tensor> = first
            .state()
            .into_iter()
            .map(|(k, t)| (k, t.copy()))
            .collect();
        let mut resumed = make();
        resumed.load_state(&saved).unwrap();
        assert_eq!(resumed.communication(), first.communication());
        for _ in 0..4 {
            let a = round(whole.as_mut(), &targets);
            let b = round(resumed.as_mut(), &targets);
            assert_eq!(a, b, "{name}: the same clients after resuming");
        }
        assert_eq!(values(whole.params()), values(resumed.params()), "{name}");
        assert_eq!(whole.communication(), resumed.communication());
    }
}
