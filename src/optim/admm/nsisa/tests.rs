//! NSISA (Algorithm 3) against a two-iteration case worked in scalars.
use super::ENTRY;
use crate::models::seeded;
use crate::optim::hyper::Hypers;
use crate::optim::layout::Layout;
use crate::optim::newton_schulz::{orthogonalize, COEFFICIENTS};
use crate::optim::registry::Context;
use crate::optim::Optimizer;
use crate::schedule::Schedule;
use crate::tasks::Local;
use tch::{Device, Kind, Tensor};

fn build(spec: &str, w0: &Tensor, layout: &Layout, workers: usize) -> Box<dyn Optimizer> {
    let h = Hypers::resolve("nsisa", ENTRY.hypers, &spec.parse().unwrap()).unwrap();
    let alphas = vec![1.0 / workers as f64; workers];
    (ENTRY.build)(
        &h,
        &Context {
            w0,
            layout,
            alphas: &alphas,
            schedule: &Schedule::default(),
            iterations: 10,
            iterations_per_epoch: 1,
        },
    )
    .unwrap()
}

fn local(g: &[f64]) -> Local {
    gradient(Tensor::from_slice(g))
}

fn gradient(grad: Tensor) -> Local {
    Local {
        grad,
        samples: 1,
        hessian: None,
    }
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double)).unwrap()
}

/// Newton–Schulz on c·I (2×2) stays diagonal: the scalar s ← as + (bs² + cs⁴)s from
/// s = c/(‖cI‖_F + 1e-7), ‖cI‖_F = c√2.
fn ns_of_identity(c: f64, steps: usize) -> f64 {
    let (a, b, cc) = COEFFICIENTS;
    let mut s = c / (c * 2f64.sqrt() + 1e-7);
    for _ in 0..steps {
        s = a * s + (b * s * s + cc * s.powi(4)) * s;
    }
    s
}

#[test]
fn two_iterations_match_a_scalar_computation() {
    // P = 5: a 2×2 matrix (entries 0..4, row-major) and a vector of 1. One worker,
    // w⁰ = 0, σ⁰ = 2, γ = 0.5 (σ¹ = 4, σ² = 8), ρ = 1, scheme I (m̃ = Σu²), μ_b = 0.5, ε = 0.5.
    let layout = Layout::new([("a", vec![2, 2]), ("b", vec![1])]);
    let w0 = Tensor::zeros([5], (Kind::Double, Device::Cpu));
    let mut opt = build(
        "sigma0 = 2\ngamma = 0.5\nrho = 1\nscheme = 1\nmomentum = 0.5\neps = 0.5",
        &w0,
        &layout,
        1,
    );
    // ℓ = 0: g = (3I, 2); b = g; o = s1·I; u = (s1, 0, 0, s1, 2); v = (0, 1, 1, 0) on the
    // matrix; √m = |u|; x = (u + ε v)/(4 + √m); π = −4x; w² = (4(w¹ − x) + π)/4 = −2x.
    opt.begin_iteration();
    assert_eq!(values(opt.params()), vec![0.0; 5]);
    opt.local_update(0, local(&[3.0, 0.0, 0.0, 3.0, 2.0]))
        .unwrap();
    opt.end_iteration();
    let s1 = ns_of_identity(3.0, 5);
    let x1 = [
        s1 / (4.0 + s1),
        0.5 / 4.0,
        0.5 / 4.0,
        s1 / (4.0 + s1),
        2.0 / (4.0 + 2.0),
    ];
    let pi1: Vec<f64> = x1.iter().map(|x| -4.0 * x).collect();
    opt.begin_iteration();
    let w2: Vec<f64> = x1.iter().map(|x| -2.0 * x).collect();
    assert_close(&values(opt.params()), &w2, "w²");
    // ℓ = 1: g = (I, −1); b = 0.5·3I + I = 2.5I; o = s2·I; u = π¹ + o (no zero left:
    // the ε² term is off); m̃ = u₁² + u₂²; x = u/(8 + √m̃); π² = π¹ − 8x; w³ = w² − x + π²/8.
    opt.local_update(0, local(&[1.0, 0.0, 0.0, 1.0, -1.0]))
        .unwrap();
    opt.end_iteration();
    let s2 = ns_of_identity(2.5, 5);
    let o2 = [s2, 0.0, 0.0, s2, -1.0];
    let u1 = [s1, 0.0, 0.0, s1, 2.0];
    let mut w3 = vec![];
    for k in 0..5 {
        let u = pi1[k] + o2[k];
        let m = u1[k] * u1[k] + u * u;
        let x = u / (8.0 + m.sqrt());
        let pi2 = pi1[k] - 8.0 * x;
        w3.push(w2[k] - x + pi2 / 8.0);
    }
    opt.begin_iteration();
    assert_close(&values(opt.params()), &w3, "w³");
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-14 * (1.0 + w.abs()),
            "{what}[{k}]: got {g}, want {w}"
        );
    }
}

#[test]
fn conv_kernels_are_orthogonalised_as_out_by_the_rest() {
    // A [3, 2, 2, 1] kernel: o = NewtonSchulz of its [3, 4] view; ρ = 0 leaves x = o/σ.
    let layout = Layout::new([("conv", vec![3, 2, 2, 1])]);
    let w0 = Tensor::zeros([12], (Kind::Double, Device::Cpu));
    let g = seeded(3, || Tensor::randn([12], (Kind::Double, Device::Cpu)));
    let mut opt = build(
        "sigma0 = 1\ngamma = 1\nrho = 0\nscheme = 1",
        &w0,
        &layout,
        1,
    );
    opt.begin_iteration();
    opt.local_update(0, gradient(g.copy())).unwrap();
    opt.end_iteration();
    opt.begin_iteration();
    // ρ = 0, σ = 1: x = o, π = −o, w² = (σ(0 − o) + π)/σ = −2o.
    let o = orthogonalize(&g.view([3, 4]), 5).view([12]);
    let want: Vec<f64> = values(&(o * -2.0));
    assert_close(&values(opt.params()), &want, "w²");
}

#[test]
fn state_is_3m_plus_1_copies_and_f32_works() {
    let layout = Layout::new([("a", vec![2, 3]), ("b", vec![3])]);
    let w0 = Tensor::zeros([9], (Kind::Float, Device::Cpu));
    let mut opt = build("sigma0 = 1\nscheme = 3", &w0, &layout, 2);
    // π_i, b_i, m_i per worker and the numerator of (2.9)
    assert_eq!(opt.state_numel(), (3 * 2 + 1) * 9);
    opt.begin_iteration();
    for i in 0..2 {
        let grad = Tensor::ones([9], (Kind::Float, Device::Cpu));
        opt.local_update(i, gradient(grad)).unwrap();
    }
    opt.end_iteration();
    opt.begin_iteration();
    assert_eq!(opt.params().kind(), Kind::Float);
    assert!(values(opt.params())
        .iter()
        .all(|v| v.is_finite() && *v < 0.0));
}
