//! Every registered optimizer restores exactly from its `state()`: five steps, a
//! checkpoint (deep copies, as on disk), a fresh optimizer loaded from it and five more
//! steps land where ten uninterrupted steps do.
use pisa::optim::layout::Layout;
use pisa::optim::registry::{self, Context};
use pisa::optim::Optimizer;
use pisa::schedule::Schedule;
use pisa::spec::OptimizerSpec;
use pisa::tasks::Local;
use std::collections::HashMap;
use tch::{Kind, Tensor};

/// Keys an entry requires, with values that make every optimizer move.
fn spec(name: &str) -> OptimizerSpec {
    let extra = match name {
        "pisa" => "sigma0 = 1.0",
        "sisa" | "nsisa" => "sigma0 = 1.0\nscheme = 3",
        "lookahead" => "k = 3\ninner = { name = \"adam\", lr = 0.01 }",
        _ => "",
    };
    toml::from_str(&format!("name = \"{name}\"\n{extra}")).unwrap()
}

fn layout() -> Layout {
    Layout::new([
        ("fc1.weight", vec![5, 3]),
        ("fc1.bias", vec![5]),
        ("fc2.weight", vec![2, 5]),
    ])
}

fn build(name: &str, w0: &Tensor, layout: &Layout) -> Box<dyn Optimizer> {
    registry::build(
        &spec(name),
        &Context {
            w0,
            layout,
            alphas: &[0.5, 0.5],
            schedule: &Schedule::default(),
            iterations: 10,
            iterations_per_epoch: 5,
        },
    )
    .unwrap_or_else(|e| panic!("{name}: {e:#}"))
}

/// A deterministic nonlinear gradient: ∇ of Σ cosh-like terms, different per worker.
fn gradient(w: &Tensor, worker: usize) -> Tensor {
    let shift = Tensor::linspace(-1.0, 1.0, w.size()[0], (Kind::Double, tch::Device::Cpu));
    (w - &shift * (worker as f64 + 1.0)).sinh() * 0.5 + w * 0.1
}

fn steps(opt: &mut dyn Optimizer, n: usize) {
    for _ in 0..n {
        opt.begin_iteration();
        for worker in 0..2 {
            opt.local_round(worker, &mut |w| {
                Ok(Local {
                    grad: gradient(w, worker),
                    samples: 8,
                    hessian: None,
                })
            })
            .unwrap();
        }
        opt.end_iteration();
    }
}

#[test]
fn every_optimizer_resumes_exactly_from_its_state() {
    let layout = layout();
    let w0 = Tensor::linspace(-0.5, 0.7, layout.numel(), (Kind::Double, tch::Device::Cpu));
    let mut failures = vec![];
    for entry in registry::all() {
        let name = entry.name;
        let mut whole = build(name, &w0, &layout);
        steps(whole.as_mut(), 10);
        let mut first = build(name, &w0, &layout);
        steps(first.as_mut(), 5);
        let saved: HashMap<String, Tensor> = first
            .state()
            .into_iter()
            .map(|(k, t)| (k, t.copy()))
            .collect();
        drop(first);
        let mut resumed = build(name, &w0, &layout);
        if let Err(e) = resumed.load_state(&saved) {
            failures.push(format!("{name}: load_state: {e:#}"));
            continue;
        }
        steps(resumed.as_mut(), 5);
        let (a, b) = (whole.params(), resumed.params());
        let moved = (a - &w0).abs().max().double_value(&[]);
        let diff = (a - b).abs().max().double_value(&[]);
        if diff.is_nan() || diff > 1e-12 * moved.max(1e-12) || moved == 0.0 {
            failures.push(format!(
                "{name}: resumed differs by {diff:e} (moved {moved:e})"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
