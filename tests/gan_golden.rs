//! The DCGAN players (`models::dcgan`) and the WGAN-GP penalty
//! (`tasks::gradient_penalty`) against PyTorch: scripts/golden_gan.py re-typed the PISA
//! repository's WGAN and WGAN-GP modules and `calc_gradient_penalty`, ran them on
//! closed-form weights and inputs (computed here again) and wrote what they computed to
//! tests/data/gan/; no Python here. Each check runs in f64 and in f32 (against the f64
//! golden), and reports the worst relative difference max|a − b| / max|b| of each tensor.
use pisa::models::dcgan::{Dcgan, Player, Variant};
use pisa::models::FlatParams;
use pisa::tasks::gradient_penalty::{gradient_penalty, LAMBDA};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/gan");
/// The script's batch, interpolation weights and image subsampling.
const N: i64 = 3;
const EPSILON: [f64; 3] = [0.25, 0.6, 0.9];
const SUBSAMPLE: i64 = 4;

fn modules() -> Value {
    let text = std::fs::read_to_string(Path::new(DATA).join("modules.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn int(v: &Value, key: &str) -> i64 {
    v[key]
        .as_i64()
        .unwrap_or_else(|| panic!("modules.json: no {key}"))
}

fn dcgan(config: &Value, variant: Variant) -> Dcgan {
    let [nz, ngf, ndf, nc, size] = ["nz", "ngf", "ndf", "nc", "size"].map(|k| int(config, k));
    Dcgan::new(nz, ngf, ndf, nc, size, variant).unwrap()
}

/// Name and shape pairs of a modules.json list.
fn named_shapes(list: &Value) -> Vec<(String, Vec<i64>)> {
    let list = list.as_array().unwrap();
    list.iter()
        .map(|pair| {
            let shape = pair[1].as_array().unwrap();
            let shape = shape.iter().map(|d| d.as_i64().unwrap()).collect();
            (pair[0].as_str().unwrap().to_string(), shape)
        })
        .collect()
}

/// The script's closed-form weights: parameter j, flat index k gets s = sin(0.37k + j),
/// times 0.2 for a weight of two or more dimensions, 1 + 0.1·s for a 1-D weight, 0.1·s
/// for a bias.
fn closed_form(params: &FlatParams) -> Tensor {
    let parts: Vec<Tensor> = params
        .layout()
        .segments
        .iter()
        .enumerate()
        .map(|(j, s)| {
            let numel = s.numel();
            let wave = (Tensor::arange(numel, (Kind::Double, Device::Cpu)) * 0.37 + j as f64).sin();
            if s.shape.len() >= 2 {
                wave * 0.2
            } else if s.name.ends_with("weight") {
                wave * 0.1 + 1.0
            } else {
                wave * 0.1
            }
        })
        .collect();
    Tensor::cat(&parts, 0)
}

/// f over the flat index of a tensor of `shape`, computed in f64, then cast to `kind`.
fn wave(shape: &[i64], kind: Kind, f: impl Fn(Tensor) -> Tensor) -> Tensor {
    let numel = shape.iter().product::<i64>();
    f(Tensor::arange(numel, (Kind::Double, Device::Cpu)))
        .reshape(shape)
        .to_kind(kind)
}

/// A player built for `config`, checked against the script's parameter and buffer names
/// and shapes, and set to the closed-form weights.
fn prepare<M>(player: &Player<M>, described: &Value, what: &str) {
    let params = &player.params;
    let layout: Vec<(String, Vec<i64>)> = params
        .layout()
        .segments
        .iter()
        .map(|s| (s.name.clone(), s.shape.clone()))
        .collect();
    assert_eq!(
        layout,
        named_shapes(&described["parameters"]),
        "{what}: parameters()"
    );
    // FlatParams keeps the buffers in name order, state_dict in module order.
    let mut buffers: Vec<(String, Vec<i64>)> = params
        .state_layout()
        .segments
        .iter()
        .map(|s| (s.name.clone(), s.shape.clone()))
        .collect();
    let mut expected = named_shapes(&described["buffers"]);
    buffers.sort();
    expected.sort();
    assert_eq!(buffers, expected, "{what}: running statistics");
    params.load(&closed_form(params)).unwrap();
}

/// The running statistics in the script's (state_dict) order.
fn running<M>(player: &Player<M>, described: &Value) -> Tensor {
    let state = player.params.state();
    let layout = player.params.state_layout();
    let parts: Vec<Tensor> = named_shapes(&described["buffers"])
        .iter()
        .map(|(name, _)| {
            let segment = layout.segments.iter().find(|s| &s.name == name).unwrap();
            segment.view(state).reshape([-1])
        })
        .collect();
    Tensor::cat(&parts, 0)
}

/// Compares computed tensors with a golden file's, keeping the worst relative difference.
struct Golden {
    file: String,
    tensors: BTreeMap<String, Tensor>,
    tolerance: f64,
    worst: (f64, String),
}

impl Golden {
    fn read(name: &str, kind: Kind) -> Self {
        let tensors = Tensor::read_safetensors(Path::new(DATA).join(format!("{name}.safetensors")))
            .unwrap()
            .into_iter()
            .collect();
        let tolerance = if kind == Kind::Double { 1e-10 } else { 3e-5 };
        Self {
            file: format!("{name} {kind:?}"),
            tensors,
            tolerance,
            worst: (0.0, String::new()),
        }
    }

    fn check(&mut self, name: &str, actual: &Tensor) {
        let golden = &self.tensors[name];
        let actual = actual.detach().to_kind(Kind::Double).reshape(golden.size());
        let scale = golden.abs().max().double_value(&[]).max(1e-300);
        let diff = (&actual - golden).abs().max().double_value(&[]) / scale;
        assert!(
            diff <= self.tolerance,
            "{}: {name} differs by {diff:e} relative (tolerance {:e})",
            self.file,
            self.tolerance
        );
        if diff >= self.worst.0 {
            self.worst = (diff, name.to_string());
        }
    }

    fn report(&self) {
        let (diff, name) = &self.worst;
        println!(
            "{}: worst relative difference {diff:.2e} ({name})",
            self.file
        );
    }
}

fn subsample(images: &Tensor) -> Tensor {
    let size = images.size()[2];
    images
        .slice(2, 0, size, SUBSAMPLE)
        .slice(3, 0, size, SUBSAMPLE)
}

fn mean(t: &Tensor) -> Tensor {
    t.mean(t.kind())
}

/// The script's sequence for one configuration (see scripts/golden_gan.py); the order
/// matters for the running statistics.
fn run_config(name: &str, kind: Kind) {
    let all = modules();
    let config = &all[name];
    let (g, wgan) = dcgan(config, Variant::Wgan)
        .players(1, kind, Device::Cpu)
        .unwrap();
    let (_, gp) = dcgan(config, Variant::WganGp)
        .players(1, kind, Device::Cpu)
        .unwrap();
    prepare(&g, &config["generator"], "generator");
    prepare(&wgan, &config["wgan"], "WGAN critic");
    prepare(&gp, &config["gp"], "WGAN-GP critic");
    let mut golden = Golden::read(name, kind);

    let [nz, nc, size] = ["nz", "nc", "size"].map(|k| int(config, k));
    // Configuration A feeds z as [N, nz], B as [N, nz, 1, 1].
    let z = wave(&[N, nz, 1, 1], kind, |i| (i * 0.7 + 0.3).sin());
    let z = if name == "A" { z.reshape([N, nz]) } else { z };
    let x = wave(&[N, nc, size, size], kind, |i| {
        (&i * 0.11).sin() * 0.9 * (i * 0.0037).cos()
    });
    let eps = Tensor::from_slice(&EPSILON).reshape([N, 1]).to_kind(kind);

    let fake = g.net.forward(&z, true).unwrap();
    golden.check("g.train", &subsample(&fake));
    golden.check("g.sum", &fake.sum(kind));
    golden.check("g.sumsq", &fake.square().sum(kind));
    golden.check("g.running", &running(&g, &config["generator"]));
    let evaluated = tch::no_grad(|| g.net.forward(&z, false)).unwrap();
    golden.check("g.eval", &subsample(&evaluated));
    golden.check("g.eval_sum", &evaluated.sum(kind));

    for (tag, critic) in [("wgan", &wgan), ("gp", &gp)] {
        let real_out = critic.net.forward(&x, true).unwrap();
        let fake_out = critic.net.forward(&fake.detach(), true).unwrap();
        let loss_d = -mean(&real_out) + mean(&fake_out);
        critic.params.zero_grad();
        loss_d.backward();
        golden.check(&format!("{tag}.real"), &real_out);
        golden.check(&format!("{tag}.fake"), &fake_out);
        golden.check(&format!("{tag}.loss_d"), &loss_d);
        golden.check(&format!("{tag}.grad_d"), &critic.params.flat_grad());
        golden.check(&format!("{tag}.running"), &running(critic, &config[tag]));
        let evaluated = tch::no_grad(|| critic.net.forward(&x, false)).unwrap();
        golden.check(&format!("{tag}.eval"), &evaluated);

        let generated = g.net.forward(&z, true).unwrap();
        let loss_g = -mean(&critic.net.forward(&generated, true).unwrap());
        g.params.zero_grad();
        loss_g.backward();
        golden.check(&format!("{tag}.loss_g"), &loss_g);
        golden.check(&format!("{tag}.grad_g"), &g.params.flat_grad());
    }

    let critic = |x: &Tensor| gp.net.forward(x, true);
    let penalty = gradient_penalty(critic, &x, &fake.detach(), &eps, LAMBDA).unwrap();
    gp.params.zero_grad();
    penalty.backward();
    golden.check("gp.penalty", &penalty);
    golden.check("gp.grad_penalty", &gp.params.flat_grad());
    golden.report();
}

#[test]
fn config_a_nc1_32x32_f64() {
    run_config("A", Kind::Double);
}

#[test]
fn config_a_nc1_32x32_f32() {
    run_config("A", Kind::Float);
}

#[test]
fn config_b_nc3_64x64_f64() {
    run_config("B", Kind::Double);
}

#[test]
fn config_b_nc3_64x64_f32() {
    run_config("B", Kind::Float);
}

/// The parameter counts of the full-size models, measured in PyTorch.
#[test]
fn full_size_counts_match_pytorch() {
    let all = modules();
    let full = all["full"].as_array().unwrap();
    assert_eq!(full.len(), 4);
    for entry in full {
        let [nc, size] = ["nc", "size"].map(|k| int(entry, k));
        for (variant, key) in [(Variant::Wgan, "wgan"), (Variant::WganGp, "gp")] {
            let dcgan = Dcgan::paper(nc, size, variant).unwrap();
            assert_eq!(dcgan.generator_parameter_count(), int(entry, "generator"));
            assert_eq!(dcgan.critic_parameter_count(), int(entry, key), "{entry}");
        }
    }
}

/// The penalty's double-backward gradient against central differences, f64, in the
/// WGAN-GP critic's parameters (each kind of layer: convolutions, batch norms, the
/// linear head and its bias, which ∇D does not see).
#[test]
fn penalty_gradient_matches_central_differences() {
    let all = modules();
    let config = &all["A"];
    let kind = Kind::Double;
    let (g, gp) = dcgan(config, Variant::WganGp)
        .players(1, kind, Device::Cpu)
        .unwrap();
    prepare(&g, &config["generator"], "generator");
    prepare(&gp, &config["gp"], "WGAN-GP critic");
    let [nz, nc, size] = ["nz", "nc", "size"].map(|k| int(config, k));
    let z = wave(&[N, nz], kind, |i| (i * 0.7 + 0.3).sin());
    let x = wave(&[N, nc, size, size], kind, |i| (i * 0.11).sin() * 0.9);
    let fake = g.net.forward(&z, true).unwrap().detach();
    let eps = Tensor::from_slice(&EPSILON);
    let penalty = || {
        let critic = |x: &Tensor| gp.net.forward(x, true);
        gradient_penalty(critic, &x, &fake, &eps, LAMBDA).unwrap()
    };

    let w0 = gp.params.values();
    gp.params.zero_grad();
    penalty().backward();
    let grad = gp.params.flat_grad();
    let h = 1e-5;
    let mut worst: f64 = 0.0;
    for s in &gp.params.layout().segments {
        for k in [s.offset, s.offset + s.numel() / 2] {
            let at = |delta: f64| {
                let w = w0.copy();
                let _ = w.get(k).g_add_scalar_(delta);
                gp.params.load(&w).unwrap();
                penalty().double_value(&[])
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            let ag = grad.double_value(&[k]);
            let diff = (fd - ag).abs() / (1.0 + ag.abs());
            assert!(
                diff < 1e-6,
                "{} [{k}]: autograd {ag}, differences {fd}",
                s.name
            );
            if s.name == "linear.bias" {
                assert!(ag == 0.0 && fd.abs() < 1e-6, "linear.bias: {ag}, {fd}");
            }
            worst = worst.max(diff);
        }
    }
    println!("penalty gradient vs central differences: worst {worst:.2e}");
}
