//! The AWD-LSTM language model (Merity et al., "Regularizing and Optimizing LSTM Language
//! Models") as the AdaBelief benchmark suite defines it: juntang-zhuang/Adabelief-Optimizer,
//! PyTorch_Experiments/LSTM/model.py (`RNNModel`, rnn_type "LSTM", tied weights),
//! weight_drop.py (`WeightDrop` on every layer's `weight_hh_l0`), locked_dropout.py
//! (`LockedDropout`) and embed_regularize.py (`embedded_dropout`).
//!
//! Embedding V×E → `nlayers` single-layer LSTMs (layer l: input E if l = 0 else H, hidden H,
//! the last one E) → a decoder tied to the embedding: logits = output·encoderᵀ + bias.
//! Training regularises with dropout masks drawn once per forward pass ([`Masks`]):
//! embedding rows, locked (variational) dropout on the embedding output, between layers and
//! on the last layer's output, and weight drop (DropConnect) on every `weight_hh`.
//!
//! Two points where the suite's code does something its names do not say:
//! - embedded_dropout passes `padding_idx = -1` to `F.embedding`, which reads it as V − 1:
//!   the lookup gives token V − 1 no gradient (the tied decoder still does). Kept here.
//! - WeightDrop wraps the dropped weight in a new `nn.Parameter`, a leaf, so the suite's
//!   `weight_hh_l0_raw` never receives a gradient and keeps its initial value (fastai
//!   issue #2591); its optimizers skip it, weight decay included, and so does the PISA
//!   code. [`WeightHh::Frozen`] does the same (the raw weights are then non-trainable
//!   variables, outside the flat parameters); with [`WeightHh::Trained`] the gradient
//!   flows through the mask to the raw weight, the DropConnect Merity et al. mean.
//!
//! scripts/golden_lstm.py re-types the suite's classes and writes the goldens that
//! tests/lstm_golden.rs checks this module against.
use tch::{nn, Device, Kind, Tensor};

/// The model's sizes (main.py's `--emsize`, `--nhid`, `--nlayers`; V from the corpus).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// V, the vocabulary size.
    pub vocab: i64,
    /// E, the embedding size, also the last layer's hidden size (tied weights).
    pub emsize: i64,
    /// H, the hidden size of every layer but the last.
    pub nhid: i64,
    pub nlayers: i64,
}

impl Config {
    /// The suite's Penn Treebank model: V = 10,000 words, emsize 400, nhid 1150 (main.py's
    /// defaults), with `nlayers` layers (run_all_layer{1,2,3}.py).
    pub fn ptb(nlayers: i64) -> Self {
        Self {
            vocab: 10_000,
            emsize: 400,
            nhid: 1150,
            nlayers,
        }
    }

    /// H_l per layer: `nhid`, the last `emsize`.
    pub fn hidden_sizes(&self) -> Vec<i64> {
        (0..self.nlayers)
            .map(|l| {
                if l + 1 == self.nlayers {
                    self.emsize
                } else {
                    self.nhid
                }
            })
            .collect()
    }

    /// The input size per layer: `emsize`, then `nhid`.
    fn input_sizes(&self) -> Vec<i64> {
        (0..self.nlayers)
            .map(|l| if l == 0 { self.emsize } else { self.nhid })
            .collect()
    }

    /// The number of trainable values: V·E (embedding = decoder weight) + V (decoder bias)
    /// + Σ_l 4H_l·(in_l + H_l + 2) (weight_ih, weight_hh and the two biases).
    pub fn parameter_count(&self) -> i64 {
        let lstm: i64 = self
            .input_sizes()
            .iter()
            .zip(self.hidden_sizes())
            .map(|(&input, hidden)| 4 * hidden * (input + hidden + 2))
            .sum();
        self.vocab * self.emsize + lstm + self.vocab
    }

    fn check(&self) {
        assert!(
            self.vocab >= 1 && self.emsize >= 1 && self.nhid >= 1 && self.nlayers >= 1,
            "AWD-LSTM: sizes must be positive, got {self:?}"
        );
    }
}

/// Drop probabilities, each in [0, 1) (0 = none), under main.py's flag names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dropouts {
    /// `--dropout`: locked dropout on the last layer's output.
    pub output: f64,
    /// `--dropouth`: locked dropout between layers.
    pub hidden: f64,
    /// `--dropouti`: locked dropout on the embedding output.
    pub input: f64,
    /// `--dropoute`: whole rows (words) of the embedding matrix.
    pub embedding: f64,
    /// `--wdrop`: weight drop on every layer's `weight_hh`.
    pub weight: f64,
}

/// The random masks of one training forward pass, drawn up front from torch's global generator
/// (the caller seeds it under models::seeded's lock, so masks are a function of the seed).
///
/// Every mask holds 0 (dropped) or 1/(1 − p) (kept); `None` where p = 0, as the suite
/// skips those draws.
#[derive(Debug)]
pub struct Masks {
    /// [V, 1]: embedding rows (embed_regularize.py).
    pub embedding: Option<Tensor>,
    /// [1, B, E]: the embedding output, one mask for all time steps (locked_dropout.py).
    pub input: Option<Tensor>,
    /// Per layer, [4H_l, H_l]: elementwise on `weight_hh` (weight_drop.py).
    pub weight: Vec<Option<Tensor>>,
    /// Per layer but the last, [1, B, H_l]: that layer's output.
    pub hidden: Vec<Option<Tensor>>,
    /// [1, B, E]: the last layer's output.
    pub output: Option<Tensor>,
}

impl Masks {
    /// Draws the masks for a batch of `batch` sequences in the order the suite's forward pass
    /// draws them (embedding rows, input, then per layer its weight and, but for the last,
    /// its output, then the output), each as a Bernoulli(1 − p) draw scaled by 1/(1 − p).
    /// Panics if a probability is outside [0, 1).
    pub fn draw(config: &Config, d: &Dropouts, batch: i64, options: (Kind, Device)) -> Masks {
        let keep = |shape: &[i64], p: f64| {
            assert!(
                (0.0..1.0).contains(&p),
                "AWD-LSTM: a drop probability must be in [0, 1), got {p}"
            );
            (p > 0.0).then(|| Tensor::empty(shape, options).bernoulli_float_(1.0 - p) / (1.0 - p))
        };
        let embedding = keep(&[config.vocab, 1], d.embedding);
        let input = keep(&[1, batch, config.emsize], d.input);
        let (mut weight, mut hidden) = (Vec::new(), Vec::new());
        let sizes = config.hidden_sizes();
        for (l, &h) in sizes.iter().enumerate() {
            weight.push(keep(&[4 * h, h], d.weight));
            if l + 1 < sizes.len() {
                hidden.push(keep(&[1, batch, h], d.hidden));
            }
        }
        let output = keep(&[1, batch, config.emsize], d.output);
        Masks {
            embedding,
            input,
            weight,
            hidden,
            output,
        }
    }
}

/// `x ⊙ mask` (broadcast), or `x` without a mask.
fn apply(x: Tensor, mask: Option<&Tensor>) -> Tensor {
    match mask {
        Some(mask) => x * mask,
        None => x,
    }
}

/// Whether the hidden-to-hidden weights train (the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightHh {
    Trained,
    Frozen,
}

/// One layer: `WeightDrop(torch.nn.LSTM(input, hidden, 1), ['weight_hh_l0'])`, run with
/// libtorch's fused LSTM.
#[derive(Debug)]
pub struct WeightDropLstm {
    weight_ih: Tensor,
    bias_ih: Tensor,
    bias_hh: Tensor,
    weight_hh_raw: Tensor,
}

impl WeightDropLstm {
    /// Creates `weight_ih_l0` [4H, in], `bias_ih_l0` [4H], `bias_hh_l0` [4H] and
    /// `weight_hh_l0_raw` [4H, H] under `path`, in the order of the suite's `parameters()`
    /// (WeightDrop re-registers the raw weight last), all U(−1/√H, 1/√H) as
    /// `torch.nn.LSTM.reset_parameters` draws them; a frozen raw weight is a non-trainable
    /// variable drawn the same way.
    pub fn new(path: &nn::Path, input: i64, hidden: i64, weight_hh: WeightHh) -> Self {
        let bound = 1.0 / (hidden as f64).sqrt();
        let init = nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        let raw = [4 * hidden, hidden];
        Self {
            weight_ih: path.var("weight_ih_l0", &[4 * hidden, input], init),
            bias_ih: path.var("bias_ih_l0", &[4 * hidden], init),
            bias_hh: path.var("bias_hh_l0", &[4 * hidden], init),
            weight_hh_raw: match weight_hh {
                WeightHh::Trained => path.var("weight_hh_l0_raw", &raw, init),
                WeightHh::Frozen => {
                    let t = path.zeros_no_train("weight_hh_l0_raw", &raw);
                    let _ = tch::no_grad(|| t.shallow_clone().uniform_(-bound, bound));
                    t
                }
            },
        }
    }

    /// input [T, B, in], state (h0, c0) each [1, B, H] → (output [T, B, H], (h, c)), with
    /// `weight_hh = weight_hh_raw ⊙ weight_mask` where a mask is given.
    pub fn forward(
        &self,
        input: &Tensor,
        state: &(Tensor, Tensor),
        weight_mask: Option<&Tensor>,
    ) -> (Tensor, (Tensor, Tensor)) {
        let weight_hh = apply(self.weight_hh_raw.shallow_clone(), weight_mask);
        // `train` only matters to libtorch's inter-layer dropout (none: one layer) and to
        // cuDNN, whose backward needs it: on, so evaluation passes have gradients too.
        let (output, h, c) = input.lstm(
            &[&state.0, &state.1],
            &[&self.weight_ih, &weight_hh, &self.bias_ih, &self.bias_hh],
            true,
            1,
            0.0,
            true,
            false,
            false,
        );
        (output, (h, c))
    }
}

/// The AWD-LSTM with its decoder tied to the embedding.
#[derive(Debug)]
pub struct AwdLstm {
    config: Config,
    /// [V, E], also the decoder's weight.
    encoder: Tensor,
    layers: Vec<WeightDropLstm>,
    /// [V].
    decoder_bias: Tensor,
}

/// What one forward pass gives.
#[derive(Debug)]
pub struct Forward {
    /// [T·B, E]: the last layer's output after its locked dropout (the suite's `result`).
    pub output: Tensor,
    /// The final (h, c) per layer, each [1, B, H_l], not detached (the caller detaches).
    pub hidden: Vec<(Tensor, Tensor)>,
    /// [T, B, E]: the last layer's raw output (TAR: β·mean((h[1:] − h[:-1])²)).
    pub last_raw: Tensor,
    /// [T, B, E]: the last layer's output after dropout (AR: α·mean(h²)).
    pub last_dropped: Tensor,
}

impl AwdLstm {
    /// Creates the variables under `path` with the names of the suite's RNNModel with
    /// WeightDrop and in the order of its `model.parameters()` (checked in PyTorch by
    /// scripts/golden_lstm.py): "encoder.weight", then per layer l
    /// "rnns.{l}.module.weight_ih_l0", "rnns.{l}.module.bias_ih_l0",
    /// "rnns.{l}.module.bias_hh_l0", "rnns.{l}.module.weight_hh_l0_raw" (WeightDrop deletes
    /// weight_hh_l0 and registers the raw weight last), then "decoder.bias". The suite's
    /// `state_dict()` has these names and the tied "decoder.weight" (the encoder's) before
    /// "decoder.bias".
    ///
    /// Initialisation: encoder U(−0.1, 0.1) (model.py's `init_weights`), the LSTMs PyTorch's
    /// default (see [`WeightDropLstm::new`]), decoder bias 0. Panics unless all sizes are
    /// positive.
    pub fn new(path: &nn::Path, config: &Config, weight_hh: WeightHh) -> Self {
        config.check();
        let encoder = (path / "encoder").var(
            "weight",
            &[config.vocab, config.emsize],
            nn::Init::Uniform { lo: -0.1, up: 0.1 },
        );
        let layers = config
            .input_sizes()
            .into_iter()
            .zip(config.hidden_sizes())
            .enumerate()
            .map(|(l, (input, hidden))| {
                WeightDropLstm::new(&(path / "rnns" / l / "module"), input, hidden, weight_hh)
            })
            .collect();
        let decoder_bias = (path / "decoder").var("bias", &[config.vocab], nn::Init::Const(0.0));
        Self {
            config: *config,
            encoder,
            layers,
            decoder_bias,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Zero (h, c) per layer, each [1, batch, H_l].
    pub fn init_hidden(&self, batch: i64, options: (Kind, Device)) -> Vec<(Tensor, Tensor)> {
        self.config
            .hidden_sizes()
            .into_iter()
            .map(|h| {
                (
                    Tensor::zeros([1, batch, h], options),
                    Tensor::zeros([1, batch, h], options),
                )
            })
            .collect()
    }

    /// tokens [T, B] int64; masks None = evaluation (no dropout). model.py's `forward`.
    pub fn forward(
        &self,
        tokens: &Tensor,
        hidden: &[(Tensor, Tensor)],
        masks: Option<&Masks>,
    ) -> Forward {
        let n = self.layers.len();
        assert_eq!(hidden.len(), n, "AWD-LSTM: one (h, c) per layer");
        if let Some(m) = masks {
            assert!(
                m.weight.len() == n && m.hidden.len() + 1 == n,
                "AWD-LSTM: masks for {} layers, the model has {n}",
                m.weight.len()
            );
        }
        let weight = apply(
            self.encoder.shallow_clone(),
            masks.and_then(|m| m.embedding.as_ref()),
        );
        // padding_idx V − 1: the suite's embedded_dropout (see the module's documentation).
        let embedded = Tensor::embedding(&weight, tokens, self.config.vocab - 1, false, false);
        let mut x = apply(embedded, masks.and_then(|m| m.input.as_ref()));
        let mut states = Vec::with_capacity(n);
        for (l, layer) in self.layers.iter().enumerate() {
            let weight_mask = masks.and_then(|m| m.weight[l].as_ref());
            let (output, state) = layer.forward(&x, &hidden[l], weight_mask);
            states.push(state);
            x = if l + 1 < n {
                apply(output, masks.and_then(|m| m.hidden[l].as_ref()))
            } else {
                output
            };
        }
        let last_dropped = apply(x.shallow_clone(), masks.and_then(|m| m.output.as_ref()));
        Forward {
            output: last_dropped.reshape([-1, self.config.emsize]),
            hidden: states,
            last_raw: x,
            last_dropped,
        }
    }

    /// [N, E] outputs -> [N, V] logits with the tied decoder.
    pub fn logits(&self, output: &Tensor) -> Tensor {
        output.linear(&self.encoder, Some(&self.decoder_bias))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::FlatParams;

    const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

    fn small(nlayers: i64) -> Config {
        Config {
            vocab: 30,
            emsize: 6,
            nhid: 10,
            nlayers,
        }
    }

    const ALL: Dropouts = Dropouts {
        output: 0.4,
        hidden: 0.25,
        input: 0.4,
        embedding: 0.1,
        weight: 0.5,
    };

    /// A seeded model in a fresh f32 store, with its variables moved into a flat buffer.
    fn build(config: &Config) -> (AwdLstm, FlatParams) {
        build_with(config, WeightHh::Trained)
    }

    fn build_with(config: &Config, weight_hh: WeightHh) -> (AwdLstm, FlatParams) {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = crate::models::seeded(3, || AwdLstm::new(&vs.root(), config, weight_hh));
        let flat = FlatParams::new(&vs).unwrap();
        (model, flat)
    }

    #[test]
    fn frozen_weight_hh_are_buffers_with_the_same_values_and_outputs() {
        let config = small(2);
        let (trained, t_flat) = build(&config);
        let (frozen, f_flat) = build_with(&config, WeightHh::Frozen);
        let hh: i64 = config.hidden_sizes().iter().map(|h| 4 * h * h).sum();
        assert_eq!(f_flat.numel(), t_flat.numel() - hh);
        assert_eq!(f_flat.state().numel() as i64, hh);
        let names: Vec<&str> = f_flat
            .state_layout()
            .segments
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "rnns.0.module.weight_hh_l0_raw",
                "rnns.1.module.weight_hh_l0_raw"
            ]
        );
        let input = tokens(&config, 5, 2);
        let run = |m: &AwdLstm| {
            let hidden = m.init_hidden(2, CPU);
            m.forward(&input, &hidden, None).output
        };
        assert!(
            run(&trained).equal(&run(&frozen)),
            "the same seed draws the same weights"
        );
        let masks = draw(&config, &ALL, 2);
        let hidden = frozen.init_hidden(2, CPU);
        let out = frozen.forward(&input, &hidden, Some(&masks));
        frozen.logits(&out.output).sum(Kind::Float).backward();
        assert_eq!(f_flat.flat_grad().numel() as i64, f_flat.numel());
    }

    fn tokens(config: &Config, t: i64, b: i64) -> Tensor {
        crate::models::seeded(4, || {
            Tensor::randint(config.vocab, [t, b], (Kind::Int64, Device::Cpu))
        })
    }

    fn draw(config: &Config, d: &Dropouts, batch: i64) -> Masks {
        crate::models::seeded(5, || Masks::draw(config, d, batch, CPU))
    }

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.reshape([-1])).unwrap()
    }

    #[test]
    fn parameter_counts_are_the_suites_and_the_built_models() {
        for (nlayers, published) in [(1, 5_293_200), (2, 13_632_400), (3, 24_221_600)] {
            let config = Config::ptb(nlayers);
            assert_eq!(config.parameter_count(), published);
            let (model, flat) = build(&config);
            assert_eq!(flat.numel(), published);
            let hidden = model.init_hidden(2, CPU);
            let sizes: Vec<_> = hidden.iter().map(|(h, c)| (h.size(), c.size())).collect();
            let expected: Vec<_> = config
                .hidden_sizes()
                .iter()
                .map(|&h| (vec![1, 2, h], vec![1, 2, h]))
                .collect();
            assert_eq!(sizes, expected);
            assert_eq!(*config.hidden_sizes().last().unwrap(), 400);
        }
    }

    #[test]
    fn variables_follow_the_suites_parameters_and_initialisation() {
        let config = small(2);
        let (model, flat) = build(&config);
        assert_eq!(model.config(), &config);
        let mut expected = vec!["encoder.weight".to_string()];
        for l in 0..2 {
            for name in [
                "weight_ih_l0",
                "bias_ih_l0",
                "bias_hh_l0",
                "weight_hh_l0_raw",
            ] {
                expected.push(format!("rnns.{l}.module.{name}"));
            }
        }
        expected.push("decoder.bias".into());
        assert_eq!(flat.layout().names(), expected);
        let shapes: Vec<_> = flat
            .layout()
            .segments
            .iter()
            .map(|s| s.shape.clone())
            .collect();
        let layer = |i, h| vec![vec![4 * h, i], vec![4 * h], vec![4 * h], vec![4 * h, h]];
        let mut want = vec![vec![30, 6]];
        want.extend(layer(6, 10));
        want.extend(layer(10, 6));
        want.push(vec![30]);
        assert_eq!(shapes, want);
        let max = |t: &Tensor| t.abs().max().double_value(&[]);
        let segment = |i: usize| flat.layout().segments[i].view(flat.buffer());
        assert!((0.09..=0.1).contains(&max(&segment(0))));
        for i in 1..=4 {
            let bound = 1.0 / 10f64.sqrt();
            assert!((0.8 * bound..=bound).contains(&max(&segment(i))), "{i}");
        }
        assert_eq!(max(&segment(9)), 0.0);
    }

    #[test]
    fn locked_dropout_masks_are_the_same_at_every_time_step() {
        let config = small(3);
        let d = Dropouts {
            output: 0.5,
            hidden: 0.5,
            input: 0.5,
            embedding: 0.0,
            weight: 0.0,
        };
        let masks = draw(&config, &d, 4);
        assert!(masks.embedding.is_none() && masks.weight.iter().all(Option::is_none));
        let locked: Vec<&Tensor> = [&masks.input, &masks.output]
            .into_iter()
            .chain(&masks.hidden)
            .map(|m| m.as_ref().unwrap())
            .collect();
        assert_eq!(masks.hidden.len(), 2);
        for (mask, width) in locked.iter().zip([6, 6, 10, 10]) {
            assert_eq!(mask.size(), [1, 4, width]);
            assert!(values(mask).iter().all(|&v| v == 0.0 || v == 2.0));
        }
        // In the forward pass: the output's dropped units are the same at every step.
        let (model, _flat) = build(&config);
        let out = model.forward(
            &tokens(&config, 5, 4),
            &model.init_hidden(4, CPU),
            Some(&masks),
        );
        let output = locked[1];
        assert!(out.last_dropped.equal(&(&out.last_raw * output)));
        let zero = out.last_dropped.eq(0.0);
        for t in 1..5 {
            assert!(zero.get(t).equal(&zero.get(0)));
        }
        assert!(
            bool::try_from(zero.get(0).eq_tensor(&output.eq(0.0).squeeze_dim(0)).all()).unwrap()
        );
        assert_eq!(out.output.size(), [20, 6]);
    }

    #[test]
    fn weight_drop_masks_weight_hh_with_about_p_zeros() {
        let config = Config {
            vocab: 10,
            emsize: 16,
            nhid: 64,
            nlayers: 2,
        };
        let d = Dropouts { weight: 0.3, ..ALL };
        let masks = draw(&config, &d, 2);
        for (mask, h) in masks.weight.iter().zip([64, 16]) {
            let mask = mask.as_ref().unwrap();
            assert_eq!(mask.size(), [4 * h, h]);
            let v = values(mask);
            assert!(v.iter().all(|&x| x == 0.0 || x == (1.0 / 0.7f64) as f32));
            let zeros = v.iter().filter(|&&x| x == 0.0).count() as f64 / v.len() as f64;
            assert!((zeros - 0.3).abs() < 0.03, "{zeros}");
        }
    }

    #[test]
    fn embedding_dropout_zeroes_whole_rows() {
        let config = small(1);
        let d = Dropouts {
            output: 0.0,
            hidden: 0.0,
            input: 0.0,
            embedding: 0.5,
            weight: 0.0,
        };
        let masks = draw(&config, &d, 3);
        let rows = masks.embedding.as_ref().unwrap();
        assert_eq!(rows.size(), [30, 1]);
        let v = values(rows);
        assert!(v.iter().all(|&x| x == 0.0 || x == 2.0));
        assert!(v.contains(&0.0) && v.contains(&2.0));
        // The same as evaluating a model whose embedding rows were scaled by the mask.
        let (model, _flat) = build(&config);
        let x = tokens(&config, 6, 3);
        let hidden = model.init_hidden(3, CPU);
        let dropped = model.forward(&x, &hidden, Some(&masks));
        let mut encoder = model.encoder.shallow_clone();
        tch::no_grad(|| encoder *= rows);
        let scaled = model.forward(&x, &hidden, None);
        assert!(dropped.last_raw.equal(&scaled.last_raw));
        // A dropped word's embedding is zero: its first step is the LSTM of a zero input.
        let inputs = Vec::<i64>::try_from(x.get(0)).unwrap();
        let zero = Tensor::zeros([1, 3, 6], CPU);
        let (from_zero, _) = model.layers[0].forward(&zero, &hidden[0], None);
        for (b, &word) in inputs.iter().enumerate() {
            let step = dropped.last_raw.get(0).get(b as i64);
            let same = step.equal(&from_zero.get(0).get(b as i64));
            assert_eq!(same, v[word as usize] == 0.0, "word {word}");
        }
    }

    #[test]
    fn evaluation_is_deterministic_and_without_dropout() {
        let config = small(3);
        let (model, _flat) = build(&config);
        let x = tokens(&config, 5, 2);
        let hidden = model.init_hidden(2, CPU);
        let a = model.forward(&x, &hidden, None);
        let b = model.forward(&x, &hidden, None);
        assert!(a.output.equal(&b.output) && a.last_raw.equal(&a.last_dropped));
        // Masks with every probability 0 are no masks at all.
        let none = Dropouts {
            output: 0.0,
            hidden: 0.0,
            input: 0.0,
            embedding: 0.0,
            weight: 0.0,
        };
        let masks = draw(&config, &none, 2);
        assert!(model
            .forward(&x, &hidden, Some(&masks))
            .output
            .equal(&a.output));
        let masks = draw(&config, &ALL, 2);
        assert!(!model
            .forward(&x, &hidden, Some(&masks))
            .output
            .equal(&a.output));
        for ((h, c), size) in a.hidden.iter().zip(config.hidden_sizes()) {
            assert_eq!(h.size(), [1, 2, size]);
            assert_eq!(c.size(), [1, 2, size]);
        }
    }

    #[test]
    fn gradients_reach_every_variable_of_the_flat_buffer() {
        let config = small(3);
        let (model, flat) = build(&config);
        let x = tokens(&config, 5, 2);
        let masks = draw(&config, &ALL, 2);
        let out = model.forward(&x, &model.init_hidden(2, CPU), Some(&masks));
        assert!(out
            .hidden
            .iter()
            .all(|(h, c)| h.requires_grad() && c.requires_grad()));
        let targets = tokens(&config, 10, 1).reshape([-1]);
        let loss = model.logits(&out.output).cross_entropy_loss::<Tensor>(
            &targets,
            None,
            tch::Reduction::Mean,
            -100,
            0.0,
        ) + out.hidden[0].0.sum(Kind::Float);
        loss.backward();
        let grad = flat.flat_grad();
        for segment in &flat.layout().segments {
            let g = segment.view(&grad);
            assert!(
                g.abs().sum(Kind::Float).double_value(&[]) > 0.0,
                "{}",
                segment.name
            );
        }
        // The raw weight's gradient is zero exactly where its mask dropped it.
        let raw = flat
            .layout()
            .segments
            .iter()
            .position(|s| s.name.ends_with("1.module.weight_hh_l0_raw"));
        let g = flat.layout().segments[raw.unwrap()].view(&grad);
        let dropped = masks.weight[1].as_ref().unwrap().eq(0.0);
        assert_eq!(g.masked_select(&dropped).abs().max().double_value(&[]), 0.0);
    }

    #[test]
    #[should_panic(expected = "must be in [0, 1)")]
    fn a_drop_probability_of_one_is_refused() {
        let d = Dropouts { weight: 1.0, ..ALL };
        crate::models::seeded(0, || Masks::draw(&small(1), &d, 2, CPU));
    }
}
