//! Algorithm 1/2 against hand-computed values and against a literal scalar
//! re-implementation that stores every w_i and applies (2.9) directly.
use super::precondition::{Hessian, Identity, Precondition, Scheme, SecondMoment};
use super::{Admm, Settings};
use crate::optim::Optimizer;
use crate::schedule::SigmaSchedule;
use crate::tasks::Local;
use tch::{Kind, Tensor};

fn t(v: &[f64]) -> Tensor {
    Tensor::from_slice(v)
}

fn vec(x: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(x.to_kind(Kind::Double)).unwrap()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{k}]: got {g}, want {w}"
        );
    }
}

fn hyper(sigma0: f64, rho: f64, gamma: f64, k0: usize, lambda: f64, mu: f64) -> Settings {
    Settings {
        sigma0,
        rho,
        lambda,
        mu,
        schedule: SigmaSchedule::new(gamma, k0),
    }
}

fn local(g: &[f64]) -> Local {
    Local {
        grad: t(g),
        samples: 1,
        hessian: None,
    }
}

/// Two workers, P = 2, σ⁰ = 2, γ = 0.5 (σ¹ = 4), ρ = 1, λ = μ = 0, w⁰ = 0,
/// g_0 = (1, −2), g_1 = (3, 0). Worked by hand:
/// Q = I: x_i = g_i/(σ¹+ρ) → x_0 = (0.2, −0.4), x_1 = (0.6, 0); π_i = −σ¹x_i →
/// π_0 = (−0.8, 1.6), π_1 = (−2.4, 0); w_i = −x_i; w² = Σα_i(σ¹w_i + π_i)/σ¹ = (−0.8, 0.4).
fn one_iteration(precondition: Box<dyn Precondition>) -> Admm {
    let mut admm = Admm::new(
        &t(&[0.0, 0.0]),
        &[0.5, 0.5],
        hyper(2.0, 1.0, 0.5, 1, 0.0, 0.0),
        precondition,
    );
    admm.begin_iteration();
    assert_close(&vec(admm.params()), &[0.0, 0.0], 0.0, "w^1");
    assert_eq!(admm.sigma(), 4.0, "σ^1 = σ^0/γ (2.12)");
    admm.local_update(0, local(&[1.0, -2.0])).unwrap();
    admm.local_update(1, local(&[3.0, 0.0])).unwrap();
    admm.end_iteration();
    admm
}

#[test]
fn identity_matches_hand_computation() {
    let mut admm = one_iteration(Box::new(Identity));
    assert_close(&vec(&admm.dual(0)), &[-0.8, 1.6], 1e-15, "π_0 (2.14)");
    assert_close(&vec(&admm.dual(1)), &[-2.4, 0.0], 1e-15, "π_1 (2.14)");
    admm.begin_iteration();
    assert_close(&vec(admm.params()), &[-0.8, 0.4], 1e-15, "w^2 (2.9)");
    assert_eq!(admm.sigma(), 8.0);
}

#[test]
fn scheme_three_matches_hand_computation() {
    // β = 0.5: n_0 = 0.5·u_0² = (0.5, 2), m̃_0 = n_0/(1 − 0.5) = (1, 4), √m = (1, 2),
    // x_0 = u_0/(σ + ρ√m) = (1/5, −2/6); π_0 = −4 x_0 = (−0.8, 4/3).
    // Worker 1: m̃ = (9, 0), x_1 = (3/7, 0), π_1 = (−12/7, 0).
    let mut admm = one_iteration(Box::new(SecondMoment::new(
        Scheme::III,
        0.5,
        1e8,
        2,
        &t(&[0.0, 0.0]),
    )));
    assert_close(&vec(&admm.dual(0)), &[-0.8, 4.0 / 3.0], 1e-15, "π_0");
    assert_close(&vec(&admm.dual(1)), &[-12.0 / 7.0, 0.0], 1e-15, "π_1");
    // w² = ½[(4w_0 + π_0) + (4w_1 + π_1)]/4 with w_i = −x_i, so 4w_i + π_i = 2π_i.
    admm.begin_iteration();
    let want = [(-0.8 - 12.0 / 7.0) / 4.0, (4.0 / 3.0) / 4.0];
    assert_close(&vec(admm.params()), &want, 1e-15, "w^2");
}

#[test]
fn schemes_one_and_two_and_the_clip_match_hand_computation() {
    // Scheme I: m̃ = u² = (1, 4) for worker 0, the same first step as scheme III above.
    let admm = one_iteration(Box::new(SecondMoment::new(
        Scheme::I,
        0.5,
        1e8,
        2,
        &t(&[0.0, 0.0]),
    )));
    assert_close(
        &vec(&admm.dual(0)),
        &[-0.8, 4.0 / 3.0],
        1e-15,
        "scheme I π_0",
    );
    // Scheme II: m̃ = (1 − β)u² = (0.5, 2), no bias correction: x = u/(4 + √m̃).
    let admm = one_iteration(Box::new(SecondMoment::new(
        Scheme::II,
        0.5,
        1e8,
        2,
        &t(&[0.0, 0.0]),
    )));
    let want = [-4.0 / (4.0 + 0.5f64.sqrt()), 8.0 / (4.0 + 2.0f64.sqrt())];
    assert_close(&vec(&admm.dual(0)), &want, 1e-15, "scheme II π_0");
    // Clip (4.3) with η = 1: m = min(m̃, 1) = (1, 1), x_0 = u/5 as for Q = I.
    let admm = one_iteration(Box::new(SecondMoment::new(
        Scheme::I,
        0.5,
        1.0,
        2,
        &t(&[0.0, 0.0]),
    )));
    assert_close(&vec(&admm.dual(0)), &[-0.8, 1.6], 1e-15, "clipped π_0");
}

#[test]
fn hessian_matches_hand_computation() {
    // Q_0 = diag(1, 3): x_0 = (σI + ρQ)^{-1}u = (1/5, −2/7); Q_1 = [[2, 1], [1, 2]]:
    // x_1 = [[6, 1], [1, 6]]^{-1}(3, 0) = (18/35, −3/35).
    let mut admm = Admm::new(
        &t(&[0.0, 0.0]),
        &[0.5, 0.5],
        hyper(2.0, 1.0, 0.5, 1, 0.0, 0.0),
        Box::new(Hessian),
    );
    assert!(admm.needs_hessian());
    admm.begin_iteration();
    let h0 = t(&[1.0, 0.0, 0.0, 3.0]).reshape([2, 2]);
    let h1 = t(&[2.0, 1.0, 1.0, 2.0]).reshape([2, 2]);
    admm.local_update(
        0,
        Local {
            grad: t(&[1.0, -2.0]),
            samples: 1,
            hessian: Some(h0),
        },
    )
    .unwrap();
    admm.local_update(
        1,
        Local {
            grad: t(&[3.0, 0.0]),
            samples: 1,
            hessian: Some(h1),
        },
    )
    .unwrap();
    assert_close(&vec(&admm.dual(0)), &[-0.8, 8.0 / 7.0], 1e-14, "π_0");
    assert_close(
        &vec(&admm.dual(1)),
        &[-72.0 / 35.0, 12.0 / 35.0],
        1e-14,
        "π_1",
    );
    assert!(
        Admm::new(
            &t(&[0.0]),
            &[1.0],
            hyper(1.0, 1.0, 1.0, 1, 0.0, 0.0),
            Box::new(Hessian)
        )
        .local_update(0, local(&[1.0]))
        .is_err(),
        "the Hessian preconditioner refuses a worker without a Hessian"
    );
}

#[test]
fn lambda_and_mu_enter_as_in_2_4_and_2_9() {
    // One worker, P = 1, w⁰ = 1, σ⁰ = 1, γ = 1, ρ = 0, λ = 0.5, μ = 1.5, Q = I.
    // w¹ = σ⁰w⁰/(σ⁰ + λ) = 2/3; g = 2 + (μ − λ)w¹ = 8/3; x = g/σ = 8/3;
    // π = −8/3; w_1 = 2/3 − 8/3 = −2; w² = (σw_1 + π)/(σ + λ) = (−2 − 8/3)/1.5 = −28/9.
    let mut admm = Admm::new(
        &t(&[1.0]),
        &[1.0],
        hyper(1.0, 0.0, 1.0, 1, 0.5, 1.5),
        Box::new(Identity),
    );
    admm.begin_iteration();
    assert_close(&vec(admm.params()), &[2.0 / 3.0], 1e-15, "w^1");
    admm.local_update(0, local(&[2.0])).unwrap();
    admm.end_iteration();
    assert_close(&vec(&admm.dual(0)), &[-8.0 / 3.0], 1e-15, "π");
    admm.begin_iteration();
    assert_close(&vec(admm.params()), &[-28.0 / 9.0], 1e-15, "w^2");
}

/// Algorithm 1 exactly as printed: every w_i stored, (2.9) from the stored points.
struct Literal {
    w: Vec<f64>,
    w_i: Vec<Vec<f64>>,
    dual: Vec<Vec<f64>>,
    moment: Vec<Vec<f64>>,
    sigma: f64,
}

/// Worker i's least-squares gradient on its own rows (a_ij, b_ij), in plain f64.
fn ls_grad(rows: &[(Vec<f64>, f64)], w: &[f64]) -> Vec<f64> {
    let mut g = vec![0.0; w.len()];
    for (a, b) in rows {
        let r: f64 = a.iter().zip(w).map(|(x, y)| x * y).sum::<f64>() - b;
        for (gk, ak) in g.iter_mut().zip(a) {
            *gk += r * ak / rows.len() as f64;
        }
    }
    g
}

#[test]
fn lean_state_matches_the_literal_algorithm_for_every_scheme() {
    let data: Vec<Vec<(Vec<f64>, f64)>> = (0..3)
        .map(|i| {
            (0..4)
                .map(|j| {
                    let s = (i * 4 + j) as f64;
                    (
                        vec![(s * 0.7).sin(), (s * 1.3).cos(), 1.0],
                        (s * 0.3).sin() * 2.0,
                    )
                })
                .collect()
        })
        .collect();
    let alpha = [1.0 / 3.0; 3];
    let (beta, eta, rho, lambda, mu, gamma, k0) = (0.9, 2.0, 0.7, 0.01, 0.05, 0.8, 3);
    for scheme in [Scheme::I, Scheme::II, Scheme::III] {
        let w0 = [0.3, -0.2, 0.1];
        let pre = SecondMoment::new(scheme, beta, eta, 3, &t(&w0));
        let schedule = SigmaSchedule::new(gamma, k0);
        let mut admm = Admm::new(
            &t(&w0),
            &alpha,
            Settings {
                sigma0: 1.5,
                rho,
                lambda,
                mu,
                schedule,
            },
            Box::new(pre),
        );
        let mut lit = Literal {
            w: w0.to_vec(),
            w_i: vec![w0.to_vec(); 3],
            dual: vec![vec![0.0; 3]; 3],
            moment: vec![vec![0.0; 3]; 3],
            sigma: 1.5,
        };
        for l in 0..25 {
            // (2.9)
            let denom: f64 = alpha.iter().sum::<f64>() * lit.sigma + lambda;
            lit.w = (0..3)
                .map(|k| {
                    (0..3)
                        .map(|i| alpha[i] * (lit.sigma * lit.w_i[i][k] + lit.dual[i][k]))
                        .sum::<f64>()
                        / denom
                })
                .collect();
            lit.sigma = schedule.next(lit.sigma, l); // (2.12)
            admm.begin_iteration();
            assert_close(
                &vec(admm.params()),
                &lit.w,
                1e-12,
                &format!("{scheme:?} w at ℓ = {l}"),
            );
            for (i, block) in data.iter().enumerate().take(3) {
                let h = ls_grad(block, &lit.w);
                admm.local_update(i, local(&h)).unwrap();
                for (k, &hk) in h.iter().enumerate().take(3) {
                    let g = hk + (mu - lambda) * lit.w[k]; // (2.4)
                    let u = lit.dual[i][k] + g;
                    let m = &mut lit.moment[i][k];
                    let m_tilde = match scheme {
                        Scheme::I => {
                            *m += u * u;
                            *m
                        }
                        Scheme::II => {
                            *m = beta * *m + (1.0 - beta) * u * u;
                            *m
                        }
                        Scheme::III => {
                            *m = beta * *m + (1.0 - beta) * u * u;
                            *m / (1.0 - beta.powi(l as i32 + 1))
                        }
                    };
                    let q = m_tilde.min(eta * eta).sqrt(); // (4.3), (4.2)
                    lit.w_i[i][k] = lit.w[k] - u / (lit.sigma + rho * q); // (4.5)
                    lit.dual[i][k] += lit.sigma * (lit.w_i[i][k] - lit.w[k]); // (2.14)
                }
                assert_close(
                    &vec(&admm.dual(i)),
                    &lit.dual[i],
                    1e-12,
                    &format!("{scheme:?} π_{i} at ℓ = {l}"),
                );
            }
            admm.end_iteration();
        }
    }
}

#[test]
fn state_is_within_2m_plus_2_parameter_copies() {
    let p = 10;
    let w0 = Tensor::zeros([p], (Kind::Double, tch::Device::Cpu));
    let pre = SecondMoment::new(Scheme::III, 0.9, 1e8, 4, &w0);
    let admm = Admm::new(
        &w0,
        &[0.25; 4],
        hyper(1.0, 1.0, 0.99, 1, 0.0, 0.0),
        Box::new(pre),
    );
    // π_i and m_i per worker, plus the running numerator of (2.9); w itself is the (2m+2)-th.
    assert_eq!(admm.state_numel(), (2 * 4 + 1) * p);
}

#[test]
fn works_in_f32() {
    let w0 = Tensor::zeros([2], (Kind::Float, tch::Device::Cpu));
    let pre = SecondMoment::new(Scheme::III, 0.5, 1e8, 2, &w0);
    let mut admm = Admm::new(
        &w0,
        &[0.5, 0.5],
        hyper(2.0, 1.0, 0.5, 1, 0.0, 0.0),
        Box::new(pre),
    );
    admm.begin_iteration();
    admm.local_update(
        0,
        Local {
            grad: Tensor::from_slice(&[1.0f32, -2.0]),
            samples: 1,
            hessian: None,
        },
    )
    .unwrap();
    assert_eq!(admm.dual(0).kind(), Kind::Float);
    assert_close(&vec(&admm.dual(0)), &[-0.8, 4.0 / 3.0], 1e-6, "f32 π_0");
}

fn context_build(
    name: &str,
    spec: &str,
    iterations: usize,
    per_epoch: usize,
) -> anyhow::Result<Box<dyn Optimizer>> {
    let entry = crate::optim::registry::find(name).unwrap();
    let h =
        crate::optim::hyper::Hypers::resolve(name, entry.hypers, &spec.parse().unwrap()).unwrap();
    let w0 = t(&[0.0, 0.0]);
    (entry.build)(
        &h,
        &crate::optim::registry::Context {
            w0: &w0,
            layout: &crate::optim::layout::Layout::vector(2),
            alphas: &[0.5, 0.5],
            schedule: &crate::schedule::Schedule::default(),
            iterations,
            iterations_per_epoch: per_epoch,
        },
    )
}

#[test]
fn sigma_rules_of_table_5_from_the_keys() {
    use super::sigma_schedule;
    use crate::optim::hyper::Hypers;
    let entry = super::sisa::ENTRY;
    let w0 = t(&[0.0]);
    let layout = crate::optim::layout::Layout::vector(1);
    let schedule = crate::schedule::Schedule::default();
    let rule = |spec: &str, per_epoch: usize| {
        let h = Hypers::resolve("sisa", entry.hypers, &spec.parse().unwrap()).unwrap();
        let c = crate::optim::registry::Context {
            w0: &w0,
            layout: &layout,
            alphas: &[1.0],
            schedule: &schedule,
            iterations: 10,
            iterations_per_epoch: per_epoch,
        };
        sigma_schedule(&h, &c).map_err(|e| e.to_string())
    };
    let base = "sigma0 = 1\nscheme = 3\n";
    // γ_ℓ(0.8, 2) with n = 3: γ = 0.8 every 6 iterations.
    let s = rule(&format!("{base}gamma = 0.8\nk0_epochs = 2"), 3).unwrap();
    assert_eq!(s, SigmaSchedule::new(0.8, 6));
    // γ_ℓ = 1 − 1/(E − ⌊ℓ/n⌋) with E = ⌈10/3⌉ = 4.
    let s = rule(&format!("{base}gamma_rule = \"epochs\""), 3).unwrap();
    assert_eq!(s, SigmaSchedule::epochs(4, 3, 1));
    assert_eq!(s.gamma(0), 0.75);
    let s = rule(&format!("{base}gamma_rule = \"epochs\"\nk0_epochs = 1"), 3).unwrap();
    assert_eq!(s, SigmaSchedule::epochs(4, 3, 3));
    // Table 5's E of a run stopped early (GPT(124M): E = 80, stopped at epoch 25)
    let s = rule(
        &format!("{base}gamma_rule = \"epochs\"\ngamma_epochs = 80"),
        3,
    )
    .unwrap();
    assert_eq!(s, SigmaSchedule::epochs(80, 3, 1));
    assert_eq!(
        rule(&format!("{base}k0 = \"auto\"\ngamma = 0.5"), 0)
            .unwrap()
            .k0(),
        69
    );
    let err = |spec: &str, n| rule(&format!("{base}{spec}"), n).unwrap_err();
    assert!(err("k0 = 5\nk0_epochs = 2", 3).contains("k0_epochs replaces k0"));
    assert!(err("k0_epochs = 2", 0).contains("iterations make an epoch"));
    assert!(err("gamma_rule = \"epochs\"", 0).contains("iterations make an epoch"));
    assert!(err("gamma_rule = \"epochs\"\nk0 = \"auto\"", 3).contains("auto"));
    assert!(err("gamma_epochs = 80", 3).contains("give that rule too"));
}

#[test]
fn the_lr_factor_scales_the_displacement_and_keeps_the_duals() {
    // σ and ρ divided by f = 0.5 at every iteration: with the same gradients, π_i and the
    // second moment are unchanged and every step of w (from w¹ = w⁰ = 0, λ = 0) halves.
    let run = |lr: crate::schedule::Schedule| {
        let w0 = t(&[0.0, 0.0]);
        let pre = SecondMoment::new(Scheme::III, 0.9, 1e8, 2, &w0);
        let mut admm = Admm::new(
            &w0,
            &[0.5, 0.5],
            hyper(2.0, 3.0, 0.9, 2, 0.0, 0.1),
            Box::new(pre),
        )
        .with_lr(lr);
        let mut ws = vec![];
        for l in 0..6 {
            admm.begin_iteration();
            ws.push(vec(admm.params()));
            let s = l as f64;
            // gradients that do not depend on w, so both runs see the same ones; μ = 0.1
            // would add 0.1·w, so subtract it back
            for i in 0..2 {
                let g = t(&[(s + i as f64).sin(), (2.0 * s).cos()]) - admm.params() * 0.1;
                admm.local_update(i, local(&vec(&g))).unwrap();
            }
            admm.end_iteration();
        }
        (ws, vec(&admm.dual(1)))
    };
    let (w1, d1) = run(crate::schedule::Schedule::default());
    let half = crate::schedule::Schedule {
        shape: crate::schedule::Shape::Step {
            milestones: vec![0],
            factor: 0.5,
        },
        warmup: 0,
        scale: None,
    };
    let (w2, d2) = run(half);
    assert_close(&d2, &d1, 1e-13, "π_1");
    for (l, (a, b)) in w1.iter().zip(&w2).enumerate() {
        let halved: Vec<f64> = a.iter().map(|v| v * 0.5).collect();
        assert_close(b, &halved, 1e-13, &format!("w at ℓ = {l}"));
    }
}

#[test]
fn a_checkpoint_continues_the_run_exactly() {
    for name in ["sisa", "nsisa"] {
        let spec = "sigma0 = 1.5\nscheme = 3\ngamma = 0.9\nk0 = 2";
        let mut a = context_build(name, spec, 10, 1).unwrap();
        let step = |o: &mut Box<dyn Optimizer>, l: usize| {
            o.begin_iteration();
            for i in 0..2 {
                let g = t(&[(l as f64 + i as f64).sin(), 1.0]) + o.params();
                o.local_update(i, local(&vec(&g))).unwrap();
            }
            o.end_iteration();
        };
        for l in 0..3 {
            step(&mut a, l);
        }
        let saved: std::collections::HashMap<String, Tensor> =
            a.state().into_iter().map(|(k, v)| (k, v.copy())).collect();
        let mut b = context_build(name, spec, 10, 1).unwrap();
        b.load_state(&saved).unwrap();
        for l in 3..6 {
            step(&mut a, l);
            step(&mut b, l);
        }
        a.begin_iteration();
        b.begin_iteration();
        assert_eq!(vec(a.params()), vec(b.params()), "{name}");
    }
}

#[test]
fn restart_completes_the_step_then_starts_afresh() {
    // After the hand-worked iteration, a restart lands w on w² of (2.9), as the next
    // iteration would, and clears the duals and the moments: the next (2.9) keeps w, and
    // the next step is the first step again (bias correction from 1).
    let moment = || Box::new(SecondMoment::new(Scheme::III, 0.5, 1e8, 2, &t(&[0.0, 0.0])));
    let mut admm = one_iteration(moment());
    admm.restart();
    let want = [(-0.8 - 12.0 / 7.0) / 4.0, (4.0 / 3.0) / 4.0];
    assert_close(&vec(admm.params()), &want, 1e-15, "w² after the restart");
    assert_eq!(vec(&admm.dual(0)), [0.0, 0.0]);
    admm.begin_iteration();
    assert_close(
        &vec(admm.params()),
        &want,
        1e-15,
        "(2.9) with π = 0 keeps w",
    );
    admm.local_update(0, local(&[1.0, -2.0])).unwrap();
    // σ = 8 now: x_0 = (1/(8 + 1), −2/(8 + 2)), π_0 = −8 x_0, as from zero moments.
    assert_close(&vec(&admm.dual(0)), &[-8.0 / 9.0, 1.6], 1e-15, "π_0 afresh");
}

#[test]
fn eps_adds_to_the_root_of_the_second_moment() {
    // ε = 1: x_0 = u/(σ + ρ(√m + 1)) = (1/6, −2/7) at σ = 4, ρ = 1; π_0 = −4 x_0.
    let moment = SecondMoment::new(Scheme::III, 0.5, 1e8, 2, &t(&[0.0, 0.0])).with_eps(1.0);
    let admm = one_iteration(Box::new(moment));
    assert_close(&vec(&admm.dual(0)), &[-4.0 / 6.0, 8.0 / 7.0], 1e-15, "π_0");
}
