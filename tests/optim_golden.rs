//! Every registered optimizer against golden trajectories from its reference
//! implementation (torch.optim, pytorch-optimizer, or its paper's equations): the cases in
//! tests/data/optim/<optimizer>.toml, written by scripts/golden_optim.py. Full-batch
//! steps on least squares, a small MLP and least squares over a tiny GPT-like layout (named
//! tensors, for the optimizers that partition by name), in f64 (1e-10 relative) and f32 (1e-5).
//!
//! Row t of a trajectory is where the (t+1)-th gradient is taken. For classic optimizers
//! that is the parameters after t steps; for the ADMM family it is the global point
//! w^{t+1} of (2.9), which a reference must therefore hold in its parameters between steps.
use pisa::optim::layout::Layout;
use pisa::optim::registry::{self, Context};
use pisa::schedule::Schedule;
use pisa::spec::OptimizerSpec;
use pisa::tasks::Local;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/optim");

#[derive(serde::Deserialize)]
struct CaseFile {
    case: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    optimizer: OptimizerSpec,
    #[allow(dead_code)]
    reference: String,
    #[serde(default = "both")]
    problems: Vec<String>,
    /// The script's steps for the case; the test takes them from the trajectory's length.
    #[allow(dead_code)]
    steps: Option<usize>,
    /// Relative tolerances in place of 1e-10 (f64) and 1e-5 (f32) on the MLP, for a case
    /// whose trajectory is set by rounding (its file says why); `why` is required with it.
    #[serde(default)]
    mlp_tolerance: Option<Tolerance>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Tolerance {
    f64: f64,
    f32: f64,
    #[allow(dead_code)]
    why: String,
}

fn both() -> Vec<String> {
    vec!["ls".into(), "mlp".into()]
}

/// The two problems of scripts/golden_optim.py, with the same loss functions.
struct Problems(HashMap<String, Tensor>);

impl Problems {
    fn load() -> Self {
        let tensors = Tensor::read_safetensors(Path::new(DATA).join("problems.safetensors"))
            .expect("tests/data/optim/problems.safetensors");
        Self(tensors.into_iter().collect())
    }

    fn get(&self, key: &str, kind: Kind) -> Tensor {
        let t = &self.0[key];
        if t.kind() == Kind::Int64 {
            t.shallow_clone()
        } else {
            t.to_kind(kind)
        }
    }

    fn layout(problem: &str) -> Layout {
        match problem {
            "ls" => Layout::vector(10),
            // scripts/golden_optim.py's GPT_SHAPES
            "gpt" => {
                let h0 = "transformer.h.0";
                let h1 = "transformer.h.1";
                Layout::new([
                    ("transformer.wte.weight".to_string(), vec![9, 6]),
                    (format!("{h0}.attn.c_q.weight"), vec![6, 6]),
                    (format!("{h0}.attn.c_k.weight"), vec![6, 6]),
                    (format!("{h0}.attn.c_v.weight"), vec![6, 6]),
                    (format!("{h0}.attn.c_proj.weight"), vec![6, 6]),
                    (format!("{h0}.mlp.c_fc.weight"), vec![12, 6]),
                    (format!("{h0}.mlp.c_proj.weight"), vec![6, 12]),
                    (format!("{h1}.ln_1.weight"), vec![6]),
                    (format!("{h1}.ln_1.bias"), vec![6]),
                    (format!("{h1}.attn.c_attn.weight"), vec![18, 6]),
                    (format!("{h1}.attn.c_attn.bias"), vec![18]),
                    ("transformer.ln_f.weight".to_string(), vec![6]),
                ])
            }
            _ => Layout::new([
                ("fc1.weight", vec![6, 4]),
                ("fc1.bias", vec![6]),
                ("fc2.weight", vec![3, 6]),
                ("fc2.bias", vec![3]),
            ]),
        }
    }

    /// The full-batch gradient at the flat point `w`, by autograd as in the script.
    fn grad(&self, problem: &str, layout: &Layout, w: &Tensor) -> Tensor {
        let w = w.detach().set_requires_grad(true);
        let p: Vec<Tensor> = layout.segments.iter().map(|s| s.view(&w)).collect();
        let kind = w.kind();
        let loss = match problem {
            "ls" | "gpt" => {
                // ("gpt": least squares on the whole flat point)
                let x = if problem == "ls" { &p[0] } else { &w };
                let a = self.get(&format!("{problem}.A"), kind);
                let r = a.matmul(x) - self.get(&format!("{problem}.b"), kind);
                r.square().mean(kind) * 0.5
            }
            _ => {
                let h = self.get("mlp.x", kind).linear(&p[0], Some(&p[1])).tanh();
                let out = h.linear(&p[2], Some(&p[3]));
                if problem == "mlp-mse" {
                    (out - self.get("mlp.t", kind)).square().mean(kind) * 0.5
                } else {
                    // Not cross_entropy_for_logits: it computes log-softmax in f32.
                    out.log_softmax(-1, kind).nll_loss(&self.get("mlp.y", kind))
                }
            }
        };
        loss.backward();
        w.grad()
    }
}

fn golden(optimizer: &str, case: &str, problem: &str, tag: &str) -> PathBuf {
    Path::new(DATA)
        .join("golden")
        .join(format!("{optimizer}-{case}-{problem}-{tag}.safetensors"))
}

/// Runs every case of `tests/data/optim/<optimizer>.toml`; returns the failures.
fn check_file(file: &Path, problems: &Problems) -> Vec<String> {
    let stem = file.file_stem().unwrap().to_str().unwrap().to_string();
    let text = std::fs::read_to_string(file).unwrap();
    let cases: CaseFile = toml::from_str(&text).unwrap_or_else(|e| panic!("{file:?}: {e}"));
    let mut failures = vec![];
    for case in &cases.case {
        if let Err((key, msg)) = case.optimizer.validate("optimizer") {
            failures.push(format!("{stem}/{}: {key}: {msg}", case.name));
            continue;
        }
        for problem in &case.problems {
            let (f64_tolerance, f32_tolerance) = match (&case.mlp_tolerance, problem.as_str()) {
                (Some(t), "mlp") => (t.f64, t.f32),
                _ => (1e-10, 1e-5),
            };
            for (kind, tag, tolerance) in [
                (Kind::Double, "f64", f64_tolerance),
                (Kind::Float, "f32", f32_tolerance),
            ] {
                let id = format!("{stem}/{}/{problem}/{tag}", case.name);
                let path = golden(&stem, &case.name, problem, tag);
                let Ok(read) = Tensor::read_safetensors(&path) else {
                    failures.push(format!(
                        "{id}: no {path:?}: run scripts/golden_optim.py {stem}"
                    ));
                    continue;
                };
                let trajectory = read.into_iter().next().unwrap().1.to_kind(Kind::Double);
                let layout = Problems::layout(problem);
                let base = problem.split('-').next().unwrap_or(problem);
                let w0 = problems.get(&format!("{base}.w0"), kind);
                let steps = trajectory.size()[0] - 1;
                let mut optimizer = registry::build(
                    &case.optimizer,
                    &Context {
                        w0: &w0,
                        layout: &layout,
                        alphas: &[1.0],
                        schedule: &Schedule::default(),
                        iterations: steps as usize,
                        // full batch: every iteration is one epoch
                        iterations_per_epoch: 1,
                    },
                )
                .unwrap();
                // Row t of the trajectory is the point of the (t+1)-th gradient: the
                // global point after `begin_iteration` (for the ADMM family, (2.9)).
                let mut worst = 0.0f64;
                for t in 0..=steps {
                    optimizer.begin_iteration();
                    let w = optimizer.params().shallow_clone();
                    let want = trajectory.get(t);
                    let err = (&w.to_kind(Kind::Double) - &want)
                        .abs()
                        .max()
                        .double_value(&[])
                        / want.abs().max().double_value(&[]).max(1e-12);
                    worst = worst.max(err);
                    if err.is_nan() || err > tolerance {
                        failures.push(format!(
                            "{id}: row {t}: relative error {err:.3e} > {tolerance:e}"
                        ));
                        break;
                    }
                    if t == steps {
                        break;
                    }
                    let grad = problems.grad(problem, &layout, &w);
                    optimizer
                        .local_update(
                            0,
                            Local {
                                grad,
                                samples: 32,
                                hessian: None,
                            },
                        )
                        .unwrap();
                    optimizer.end_iteration();
                }
                eprintln!("{id}: {steps} steps, worst relative error {worst:.2e}");
            }
        }
    }
    failures
}

#[test]
fn every_optimizer_follows_its_reference_trajectory() {
    let problems = Problems::load();
    let mut files: Vec<PathBuf> = std::fs::read_dir(DATA)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let only = std::env::var("PISA_GOLDEN_ONLY").ok();
    let mut failures = vec![];
    let mut covered = vec![];
    for file in &files {
        let stem = file.file_stem().unwrap().to_str().unwrap().to_string();
        if only.as_deref().is_some_and(|o| o != stem) {
            continue;
        }
        failures.extend(check_file(file, &problems));
        covered.push(stem);
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    if only.is_none() {
        // Federated algorithms run several local steps per round over many clients: their
        // tests are hand-computed two-client rounds (src/optim/federated/tests.rs).
        let federated: Vec<&str> = pisa::optim::federated::ENTRIES
            .iter()
            .map(|e| e.name)
            .collect();
        let missing: Vec<&str> = registry::names()
            .into_iter()
            .filter(|n| !covered.iter().any(|c| c == n) && !federated.contains(n))
            .collect();
        assert!(
            missing.is_empty(),
            "optimizers without golden cases in tests/data/optim: {missing:?}"
        );
    }
}
