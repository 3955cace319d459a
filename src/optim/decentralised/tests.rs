//! Nodes on quadratic losses f_i(w) = ½‖w − b_i‖² (exact gradients w − b_i): the protocol
//! layer against the optimizers it wraps, where they must agree, and its bookkeeping.
use super::build;
use crate::optim::layout::Layout;
use crate::optim::registry::{self, Context};
use crate::optim::Optimizer;
use crate::protocol::Protocol;
use crate::schedule::Schedule;
use crate::spec::OptimizerSpec;
use crate::tasks::Local;
use tch::Tensor;

const TARGETS: [[f64; 3]; 4] = [
    [1.0, -2.0, 0.5],
    [0.0, 3.0, -1.0],
    [2.0, 0.5, 0.25],
    [-1.5, 1.0, 2.0],
];

fn spec(text: &str) -> OptimizerSpec {
    toml::from_str(text).unwrap()
}

/// The optimizer `text` describes for four equal workers, under `protocol` or (None) as the
/// loop runs it without one.
fn optimizer(text: &str, protocol: Option<Protocol>) -> Box<dyn Optimizer> {
    let w0 = Tensor::from_slice(&[0.5f64, 0.5, -0.5]);
    let context = Context {
        w0: &w0,
        layout: &Layout::vector(3),
        alphas: &[0.25; 4],
        schedule: &Schedule::default(),
        iterations: 20,
        iterations_per_epoch: 5,
    };
    match protocol {
        Some(p) => build(&spec(text), &context, p, 3).unwrap(),
        None => registry::build(&spec(text), &context).unwrap(),
    }
}

/// One round: worker i's gradient at the point it is asked for.
fn round(opt: &mut dyn Optimizer) {
    opt.begin_iteration();
    for (i, b) in TARGETS.iter().enumerate() {
        let b = Tensor::from_slice(b);
        opt.local_round(i, &mut |w| {
            Ok(Local {
                grad: w - &b,
                samples: 8,
                hessian: None,
            })
        })
        .unwrap();
    }
    opt.end_iteration();
}

fn params(opt: &dyn Optimizer) -> Vec<f64> {
    Vec::<f64>::try_from(opt.params()).unwrap()
}

fn assert_close(a: &[f64], b: &[f64], tolerance: f64) {
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= tolerance * (1.0 + y.abs()),
            "{a:?} vs {b:?}"
        );
    }
}

fn run(opt: &mut dyn Optimizer, rounds: usize) -> Vec<Vec<f64>> {
    (0..rounds)
        .map(|_| {
            round(opt);
            params(opt)
        })
        .collect()
}

#[test]
fn sgd_with_momentum_under_allreduce_is_sgd_on_the_mean_gradient() {
    // the nodes start together and are averaged after every step: their momenta average to
    // the centralised one's, so x̄ follows centralised SGD exactly (up to rounding)
    let text = "name = \"sgd\"\nlr = 0.1\nmomentum = 0.9";
    let mut plain = optimizer(text, None);
    let mut mixed = optimizer(text, Some(Protocol::AllReduce));
    // the evaluation comes before the round's communication; the mean is the same
    for (a, b) in run(mixed.as_mut(), 12).iter().zip(run(plain.as_mut(), 12)) {
        assert_close(a, &b, 1e-12);
    }
    // slack γ = 1 is AllReduce
    let mut slack = optimizer(text, Some(Protocol::Slack { gamma: 1.0 }));
    let mut allreduce = optimizer(text, Some(Protocol::AllReduce));
    assert_eq!(run(slack.as_mut(), 5), run(allreduce.as_mut(), 5));
}

#[test]
fn sisa_under_allreduce_is_sisa() {
    // mixing the nodes' own (2.9) by AllReduce is (2.9) with equal α
    let text = "name = \"sisa\"\nsigma0 = 4.0\nrho = 2.0\nscheme = 3";
    let mut plain = optimizer(text, None);
    let mut mixed = optimizer(text, Some(Protocol::AllReduce));
    for (a, b) in run(mixed.as_mut(), 12).iter().zip(run(plain.as_mut(), 12)) {
        assert_close(a, &b, 1e-12);
    }
}

#[test]
fn longer_mixing_keeps_the_nodes_apart() {
    let text = "name = \"sgd\"\nlr = 0.1";
    let distance = |protocol| {
        let mut opt = optimizer(text, Some(protocol));
        run(opt.as_mut(), 9);
        let report = crate::optim::report(opt.as_ref());
        let (name, value) = *report.last().unwrap();
        assert_eq!(name, "stationary_distance");
        value
    };
    // measured after the steps, before the round's communication: after AllReduce the
    // nodes differ by one step only
    let allreduce = distance(Protocol::AllReduce);
    let local = distance(Protocol::LocalSteps { m: 10 });
    let slack = distance(Protocol::Slack { gamma: 0.1 });
    assert!(
        allreduce > 0.0 && local > 10.0 * allreduce,
        "{allreduce} {local}"
    );
    assert!(
        slack > allreduce && slack < local,
        "{allreduce} {slack} {local}"
    );
}

#[test]
fn communication_counts_the_events() {
    let text = "name = \"sgd\"\nlr = 0.1";
    let sent = |protocol, rounds| {
        let mut opt = optimizer(text, Some(protocol));
        run(opt.as_mut(), rounds);
        opt.communication().unwrap().0
    };
    // the events of round r act as round r + 1 begins: 4 rounds, 3 AllReduces of 4 × 3 floats
    assert_eq!(sent(Protocol::AllReduce, 4), 3 * 4 * 3);
    assert_eq!(sent(Protocol::LocalSteps { m: 2 }, 5), 2 * 4 * 3);
    // a ring of 4: every worker sends to its two neighbours
    assert_eq!(sent(Protocol::SyncRing, 2), 8 * 3);
    // AsyncDR: one pair per worker step, 4 per round
    assert_eq!(sent(Protocol::AsyncRing, 3), 2 * 4 * 2 * 3);
}

#[test]
fn a_resumed_run_continues_as_an_uninterrupted_one() {
    for text in [
        "name = \"amsgrad\"\nlr = 0.05",
        "name = \"sisa\"\nsigma0 = 4.0\nrho = 2.0\nscheme = 3",
    ] {
        let mut whole = optimizer(text, Some(Protocol::AsyncRing));
        let expected = run(whole.as_mut(), 10);
        let mut first = optimizer(text, Some(Protocol::AsyncRing));
        run(first.as_mut(), 4);
        let saved = first
            .state()
            .into_iter()
            .map(|(k, v)| (k, v.copy()))
            .collect();
        let mut resumed = optimizer(text, Some(Protocol::AsyncRing));
        resumed.load_state(&saved).unwrap();
        assert_eq!(params(resumed.as_ref()), expected[3]);
        assert_eq!(run(resumed.as_mut(), 6), expected[4..], "{text}");
        assert_eq!(
            resumed.communication(),
            whole.communication(),
            "{text}: floats sent"
        );
    }
}
