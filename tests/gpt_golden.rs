//! The GPT models (`models::gpt`) against PyTorch: scripts/golden_gpt.py saved a random
//! Hugging Face GPT2LMHeadModel (tests/data/gpt/hf-tiny/) and ran it, and ran a re-typing of
//! the PISA Nano script's GPT on weights it wrote out; no Python here. Logits, the loss and
//! the gradient of every parameter, f32 and f64, through the flat parameter buffer.
use pisa::models::gpt::{Config, Gpt, Style};
use pisa::models::gpt_weights;
use pisa::models::FlatParams;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/gpt");

struct Golden {
    file: String,
    tensors: BTreeMap<String, Tensor>,
}

impl Golden {
    fn read(name: &str) -> Self {
        let tensors = Tensor::read_safetensors(Path::new(DATA).join(name))
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
}

/// Tracks the worst |pisa − PyTorch| of a group of comparisons against a bound.
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
            1e-10
        };
        Self {
            what,
            tolerance,
            worst: 0.0,
        }
    }

    fn check(&mut self, name: &str, ours: &Tensor, golden: &Tensor) {
        assert_eq!(ours.size(), golden.size(), "{}: {name}: shapes", self.what);
        assert_eq!(ours.kind(), golden.kind(), "{}: {name}: kinds", self.what);
        let d = (ours - golden).abs().max().double_value(&[]);
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

fn parameter_names(tag: &str) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(DATA).join(format!("{tag}-parameters.txt")));
    text.unwrap().lines().map(String::from).collect()
}

/// Compares the model's logits, loss and flat gradient with the golden file's.
fn compare(g: &Golden, gpt: &Gpt, flat: &FlatParams, what: &str) {
    let kind = flat.kind();
    let (ids, targets) = (g.get("ids"), g.get("targets"));
    let logits = gpt.forward(&ids, false);
    let loss = gpt.loss(&ids, &targets, false);
    loss.backward();
    let mut forward = Diffs::new(format!("{what}, forward"), kind, 1e-5);
    forward.check("logits", &logits, &g.get("logits"));
    forward.check("loss", &loss, &g.get("loss"));
    let grad = flat.flat_grad();
    let mut backward = Diffs::new(format!("{what}, gradients"), kind, 1e-5);
    for segment in &flat.layout().segments {
        let golden = g.get(&format!("grad.{}", segment.name));
        backward.check(&segment.name, &segment.view(&grad), &golden);
    }
}

#[test]
fn classic_loads_hugging_face_and_matches_gpt2_lm_head_model() {
    for (kind, tag) in kinds() {
        let mut vs = nn::VarStore::new(Device::Cpu);
        vs.set_kind(kind);
        let hf = Path::new(DATA).join("hf-tiny");
        let gpt = gpt_weights::from_hf(&vs.root(), &hf).unwrap();
        assert_eq!(
            gpt.config(),
            &Config {
                style: Style::Classic,
                n_layer: 2,
                n_head: 3,
                n_embd: 24,
                block_size: 16,
                vocab_size: 67,
                dropout: 0.1,
            }
        );
        let flat = FlatParams::new(&vs).unwrap();
        assert_eq!(flat.layout().names(), parameter_names("classic"));
        assert_eq!(flat.numel(), gpt.config().parameters());
        let g = Golden::read(&format!("classic-{tag}.safetensors"));
        compare(
            &g,
            &gpt,
            &flat,
            &format!("Classic vs GPT2LMHeadModel {tag}"),
        );
    }
}

#[test]
fn modded_matches_the_pisa_nano_scripts_gpt() {
    let config = Config {
        style: Style::Modded,
        n_layer: 2,
        n_head: 3,
        n_embd: 24,
        block_size: 16,
        vocab_size: 67,
        dropout: 0.0,
    };
    for (kind, tag) in kinds() {
        let g = Golden::read(&format!("modded-{tag}.safetensors"));
        let mut vs = nn::VarStore::new(Device::Cpu);
        vs.set_kind(kind);
        let gpt = pisa::models::seeded(0, || Gpt::new(&vs.root(), &config));
        let flat = FlatParams::new(&vs).unwrap();
        assert_eq!(flat.layout().names(), parameter_names("modded"));
        assert_eq!(flat.numel(), config.parameters());
        let weights: Vec<(String, Tensor)> = g
            .tensors
            .iter()
            .filter_map(|(k, t)| Some((k.strip_prefix("param.")?.to_owned(), t.shallow_clone())))
            .collect();
        gpt.load(&weights).unwrap();
        compare(
            &g,
            &gpt,
            &flat,
            &format!("Modded vs the script's GPT {tag}"),
        );
    }
}
