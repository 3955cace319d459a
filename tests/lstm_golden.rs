//! The AWD-LSTM (`models::awd_lstm`) against PyTorch: scripts/golden_lstm.py ran
//! torch.nn.LSTM and a re-typing of the AdaBelief suite's RNNModel on the weights, inputs
//! and masks in tests/data/lstm/ and wrote what they computed there; no Python here.
use pisa::models::awd_lstm::{AwdLstm, Config, Forward, Masks, WeightDropLstm, WeightHh};
use pisa::models::{seeded, FlatParams};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{nn, Device, Kind, Reduction, Tensor};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/lstm");

/// The script's model: V = 50, E = 8, H = 12, 3 layers (inputs T = 7, B = 3).
const CONFIG: Config = Config {
    vocab: 50,
    emsize: 8,
    nhid: 12,
    nlayers: 3,
};
const ALPHA: f64 = 2.0;
const BETA: f64 = 1.0;

struct Golden {
    file: String,
    tensors: BTreeMap<String, Tensor>,
}

impl Golden {
    fn read(name: &str) -> Self {
        let file = Path::new(DATA).join(name);
        let tensors = Tensor::read_safetensors(&file)
            .unwrap()
            .into_iter()
            .collect();
        Self {
            file: name.into(),
            tensors,
        }
    }

    fn get(&self, name: &str) -> Tensor {
        let t = self.tensors.get(name);
        t.unwrap_or_else(|| panic!("{}: no {name}", self.file))
            .shallow_clone()
    }

    fn opt(&self, name: &str) -> Option<Tensor> {
        self.tensors.get(name).map(Tensor::shallow_clone)
    }

    /// A golden input that gradients are taken with respect to.
    fn leaf(&self, name: &str) -> Tensor {
        self.get(name).set_requires_grad(true)
    }
}

/// Largest |a − b| over all values, after checking the shapes agree.
fn max_diff(what: &str, a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size(), "{what}: shapes");
    assert_eq!(a.kind(), b.kind(), "{what}: kinds");
    (a - b).abs().max().double_value(&[])
}

/// Tracks the worst difference of a group of comparisons and checks it against a bound.
struct Diffs {
    what: String,
    tolerance: f64,
    worst: f64,
}

impl Diffs {
    fn new(what: String, kind: Kind, f32_tolerance: f64) -> Self {
        let tolerance = if kind == Kind::Float {
            f32_tolerance
        } else {
            1e-12
        };
        Self {
            what,
            tolerance,
            worst: 0.0,
        }
    }

    fn check(&mut self, name: &str, ours: &Tensor, golden: &Tensor) {
        let d = max_diff(name, ours, golden);
        assert!(
            d <= self.tolerance,
            "{}: {name} differs from PyTorch by {d:e} (tolerance {:e})",
            self.what,
            self.tolerance
        );
        self.worst = self.worst.max(d);
    }
}

impl Drop for Diffs {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            eprintln!("{}: max |pisa − PyTorch| = {:e}", self.what, self.worst);
        }
    }
}

fn kinds() -> [(Kind, &'static str); 2] {
    [(Kind::Float, "f32"), (Kind::Double, "f64")]
}

#[test]
fn one_layer_matches_torch_nn_lstm() {
    for (kind, tag) in kinds() {
        let g = Golden::read(&format!("layer-{tag}.safetensors"));
        let mut vs = nn::VarStore::new(Device::Cpu);
        vs.set_kind(kind);
        let layer = seeded(0, || {
            WeightDropLstm::new(&vs.root(), 8, 12, WeightHh::Trained)
        });
        tch::no_grad(|| vs.fill_safetensors(Path::new(DATA).join(&g.file))).unwrap();
        let (x, h0, c0) = (g.leaf("x"), g.leaf("h0"), g.leaf("c0"));
        let (out, (h, c)) = layer.forward(&x, &(h0.shallow_clone(), c0.shallow_clone()), None);
        let loss = (&out * g.get("r_out")).sum(kind)
            + (&h * g.get("r_h")).sum(kind)
            + (&c * g.get("r_c")).sum(kind);
        loss.backward();

        let mut forward = Diffs::new(format!("(a) LSTM layer {tag}, forward"), kind, 1e-6);
        forward.check("output", &out, &g.get("out"));
        forward.check("h", &h, &g.get("h"));
        forward.check("c", &c, &g.get("c"));
        let mut backward = Diffs::new(format!("(a) LSTM layer {tag}, gradients"), kind, 1e-6);
        for (name, t) in [("x", &x), ("h0", &h0), ("c0", &c0)] {
            backward.check(name, &t.grad(), &g.get(&format!("grad.{name}")));
        }
        let vars = vs.variables();
        assert_eq!(vars.len(), 4);
        for (name, var) in &vars {
            backward.check(name, &var.grad(), &g.get(&format!("grad.{name}")));
        }
    }
}

/// The model of a golden file, its variables in a flat buffer and set to the file's values.
fn model(g: &Golden, kind: Kind) -> (AwdLstm, FlatParams) {
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(kind);
    let model = seeded(0, || AwdLstm::new(&vs.root(), &CONFIG, WeightHh::Trained));
    let flat = FlatParams::new(&vs).unwrap();
    let w: Vec<Tensor> = flat
        .layout()
        .names()
        .iter()
        .map(|name| g.get(name).reshape([-1]))
        .collect();
    flat.load(&Tensor::cat(&w, 0)).unwrap();
    (model, flat)
}

fn hidden(g: &Golden) -> Vec<(Tensor, Tensor)> {
    (0..CONFIG.nlayers)
        .map(|l| (g.get(&format!("h0.{l}")), g.get(&format!("c0.{l}"))))
        .collect()
}

/// The script's loss: mean cross-entropy (+ AR and TAR in training) + Σ_l Σ h_l·rh_l + c_l·rc_l.
fn logits_and_loss(g: &Golden, model: &AwdLstm, out: &Forward, train: bool) -> (Tensor, Tensor) {
    let kind = out.output.kind();
    let logits = model.logits(&out.output);
    let mut loss =
        logits.cross_entropy_loss::<Tensor>(&g.get("targets"), None, Reduction::Mean, -100, 0.0);
    if train {
        let t = out.last_raw.size()[0];
        let ar = out.last_dropped.square().mean(kind);
        let tar = (out.last_raw.narrow(0, 1, t - 1) - out.last_raw.narrow(0, 0, t - 1))
            .square()
            .mean(kind);
        loss = loss + ar * ALPHA + tar * BETA;
    }
    for (l, (h, c)) in out.hidden.iter().enumerate() {
        loss = loss
            + (h * g.get(&format!("rh.{l}"))).sum(kind)
            + (c * g.get(&format!("rc.{l}"))).sum(kind);
    }
    (logits, loss)
}

/// Compares a forward pass and the gradient of its loss with the golden file's.
fn compare(g: &Golden, model: &AwdLstm, flat: &FlatParams, what: &str, masks: Option<&Masks>) {
    let kind = flat.kind();
    let out = model.forward(&g.get("tokens"), &hidden(g), masks);
    let (logits, loss) = logits_and_loss(g, model, &out, masks.is_some());
    loss.backward();

    let mut forward = Diffs::new(format!("{what}, forward"), kind, 1e-5);
    forward.check("logits", &logits, &g.get("logits"));
    forward.check("loss", &loss, &g.get("loss"));
    forward.check("last_raw", &out.last_raw, &g.get("last_raw"));
    forward.check("last_dropped", &out.last_dropped, &g.get("last_dropped"));
    for (l, (h, c)) in out.hidden.iter().enumerate() {
        forward.check(&format!("h.{l}"), h, &g.get(&format!("h.{l}")));
        forward.check(&format!("c.{l}"), c, &g.get(&format!("c.{l}")));
    }
    let grad = flat.flat_grad();
    let mut backward = Diffs::new(format!("{what}, gradients"), kind, 1e-6);
    for segment in &flat.layout().segments {
        let golden = g.get(&format!("grad.{}", segment.name));
        backward.check(&segment.name, &segment.view(&grad), &golden);
    }
}

#[test]
fn parameters_are_in_the_suites_order() {
    let names = std::fs::read_to_string(Path::new(DATA).join("parameters.txt")).unwrap();
    let g = Golden::read("eval-f32.safetensors");
    let (_model, flat) = model(&g, Kind::Float);
    assert_eq!(flat.layout().names(), names.lines().collect::<Vec<_>>());
    assert_eq!(flat.numel(), CONFIG.parameter_count());
}

#[test]
fn evaluation_matches_the_suites_model() {
    for (kind, tag) in kinds() {
        let g = Golden::read(&format!("eval-{tag}.safetensors"));
        let (model, flat) = model(&g, kind);
        compare(&g, &model, &flat, &format!("(b) evaluation {tag}"), None);
    }
}

#[test]
fn training_with_the_suites_masks_matches_the_suites_model() {
    for (kind, tag) in kinds() {
        let g = Golden::read(&format!("train-{tag}.safetensors"));
        let (model, flat) = model(&g, kind);
        let layers = 0..CONFIG.nlayers;
        let masks = Masks {
            embedding: g.opt("mask.embedding"),
            input: g.opt("mask.input"),
            weight: layers
                .clone()
                .map(|l| g.opt(&format!("mask.weight.{l}")))
                .collect(),
            hidden: layers
                .take(CONFIG.nlayers as usize - 1)
                .map(|l| g.opt(&format!("mask.hidden.{l}")))
                .collect(),
            output: g.opt("mask.output"),
        };
        let all = [&masks.embedding, &masks.input, &masks.output];
        assert!(all
            .into_iter()
            .chain(&masks.weight)
            .chain(&masks.hidden)
            .all(Option::is_some));
        compare(
            &g,
            &model,
            &flat,
            &format!("(c) training {tag}"),
            Some(&masks),
        );
    }
}
