//! The fused path against the tensor-op path: whole optimizers (SGD, Adam, AdamW, SISA's
//! three schemes) over several iterations of two workers, on a buffer of several chunks
//! (so the parallel split and the remainder are exercised), f32 and f64. SGD is
//! bit-identical. Adam's and SISA's updates are not quite (libtorch's kernels round a
//! step or two differently: which of its a + b·c the compiler contracted is not visible);
//! after 4 iterations they agree to ADAM_SISA_EPS machine epsilons of each tensor's largest
//! magnitude (measured: at most 1.1).
use super::{with_tensor_ops, CHUNK};
use crate::optim::hyper::Hypers;
use crate::optim::layout::Layout;
use crate::optim::registry::{self, Context};
use crate::schedule::Schedule;
use crate::tasks::Local;
use tch::{Kind, Tensor};

const P: usize = 3 * CHUNK + 17;
const ITERATIONS: usize = 4;
const ADAM_SISA_EPS: f64 = 4.0;

/// P values in [−1, 1) drawn from `seed` (not libtorch's generator, which tests running
/// beside this one share).
fn noise(seed: u64, kind: Kind) -> Tensor {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let values: Vec<f64> = (0..P).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_slice(&values).to_kind(kind)
}

/// w and every state tensor after ITERATIONS iterations of `name` with `hypers`.
fn run(name: &str, hypers: &str, kind: Kind) -> Vec<(String, Tensor)> {
    let entry = registry::find(name).unwrap();
    let h = Hypers::resolve(name, entry.hypers, &hypers.parse().unwrap()).unwrap();
    let w0 = noise(0, kind);
    let mut opt = (entry.build)(
        &h,
        &Context {
            w0: &w0,
            layout: &Layout::vector(P as i64),
            alphas: &[0.5, 0.5],
            schedule: &Schedule::default(),
            iterations: ITERATIONS,
            iterations_per_epoch: 1,
        },
    )
    .unwrap();
    for iteration in 0..ITERATIONS {
        opt.begin_iteration();
        for worker in 0..2 {
            let grad = noise(1 + 2 * iteration as u64 + worker as u64, kind) + opt.params() * 0.1;
            let local = Local {
                grad,
                samples: 8,
                hessian: None,
            };
            opt.local_update(worker, local).unwrap();
        }
        opt.end_iteration();
    }
    let mut state = vec![("w".to_string(), opt.params().copy())];
    state.extend(opt.state().into_iter().map(|(n, t)| (n, t.copy())));
    state
}

/// The largest difference between the two paths over every tensor, relative to the
/// tensor's largest magnitude, in units of the kind's machine epsilon. The fused path must
/// have run: a test below checks it runs for these kinds.
fn ulps_apart(name: &str, hypers: &str, kind: Kind) -> f64 {
    let fused = run(name, hypers, kind);
    let reference = with_tensor_ops(|| run(name, hypers, kind));
    let epsilon = if kind == Kind::Float {
        f64::from(f32::EPSILON)
    } else {
        f64::EPSILON
    };
    let mut worst = 0.0f64;
    for ((n, a), (m, b)) in fused.iter().zip(&reference) {
        assert_eq!(n, m);
        if !a.is_floating_point() {
            assert_eq!(a, b, "{name} {hypers}: {n}");
            continue;
        }
        let (a, b) = (a.to_kind(Kind::Double), b.to_kind(Kind::Double));
        let scale = b.abs().max().double_value(&[]).max(f64::MIN_POSITIVE) * epsilon;
        let apart = (&a - &b).abs().max().double_value(&[]) / scale;
        worst = worst.max(apart);
    }
    worst
}

fn check(name: &str, hypers: &str, tolerance: f64) {
    for kind in [Kind::Double, Kind::Float] {
        let ulps = ulps_apart(name, hypers, kind);
        assert!(
            ulps <= tolerance,
            "{name} ({hypers}), {kind:?}: fused and tensor-op paths {ulps} ulps apart"
        );
    }
}

#[test]
fn sgd_is_bit_identical() {
    check("sgd", "lr = 0.1", 0.0);
    check("sgd", "lr = 0.1\nweight_decay = 0.01", 0.0);
    check("sgd", "lr = 0.1\nmomentum = 0.9\ndampening = 0.1", 0.0);
    check(
        "sgd",
        "lr = 0.1\nmomentum = 0.9\nnesterov = true\nweight_decay = 5e-4",
        0.0,
    );
}

#[test]
fn adam_and_adamw_agree() {
    check("adam", "lr = 1e-2", ADAM_SISA_EPS);
    check("adam", "lr = 1e-2\nweight_decay = 0.1", ADAM_SISA_EPS);
    check("adamw", "lr = 1e-2\nweight_decay = 0.1", ADAM_SISA_EPS);
}

#[test]
fn sisa_agrees() {
    for scheme in [1, 2, 3] {
        check(
            "sisa",
            &format!("sigma0 = 2.0\nrho = 3.0\nscheme = {scheme}\nlambda = 0.1\nmu = 0.2"),
            ADAM_SISA_EPS,
        );
    }
    // ε added to √m, and the clip (4.3) binding
    check(
        "sisa",
        "sigma0 = 2.0\nrho = 3.0\nscheme = 3\neps = 1e-3\neta = 0.5",
        ADAM_SISA_EPS,
    );
}

#[test]
fn amsgrad_and_cuda_less_kinds_fall_back() {
    // AMSGrad has no fused path; a bf16 buffer is not fused: both still run
    assert_eq!(
        ulps_apart("adam", "lr = 1e-2\namsgrad = true", Kind::Double),
        0.0
    );
    let w = Tensor::ones([4], (Kind::BFloat16, tch::Device::Cpu));
    let g = w.ones_like();
    let s = super::SgdStep {
        lr: 0.5,
        momentum: 0.0,
        dampening: 0.0,
        nesterov: false,
        weight_decay: 0.0,
        first: true,
    };
    assert!(!super::sgd(&w, &g, None, &s));
    // f32 and f64 CPU buffers take the fused path (so the comparisons above compare it)
    for kind in [Kind::Float, Kind::Double] {
        let t = || Tensor::ones([4], (kind, tch::Device::Cpu));
        assert!(super::sgd(&t(), &t(), Some(&t()), &s));
        let adam = super::AdamStep {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            bias1: 0.1,
            bias2: 0.001,
        };
        assert!(super::adam(&t(), &t(), &t(), &t(), &adam));
        let sisa = super::SecondMomentDual {
            accumulate: false,
            beta: 0.9,
            clip: 1.0,
            c: 1.0,
            eps: 0.0,
            sigma: 1.0,
            rho: 1.0,
        };
        assert!(super::second_moment_dual(&t(), &t(), &t(), &sisa));
        // but not a strided view
        assert!(!super::sgd(
            &t().slice(0, 0, 4, 2),
            &t().slice(0, 0, 4, 2),
            None,
            &s
        ));
    }
}
