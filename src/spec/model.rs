//! `[model]`: the network a classification or language-model task trains.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Fully connected: input → hidden… → classes.
    Mlp,
    /// NIID-Bench's SimpleCNN: two 5×5 conv + pool, fully connected 120-84-classes.
    SimpleCnn,
    /// The Fed-LAMB paper's MNIST CNN (two conv + pool, dropout, 320-50-classes).
    FedLambCnn,
    /// The vision models of `models::catalog` (`pisa list models`), by their names there.
    Vgg11,
    Resnet18,
    /// He et al.'s CIFAR ResNet-20 (MixML's Figure 2).
    #[serde(rename = "resnet20")]
    Resnet20,
    Resnet34,
    Densenet121,
    Resnet18Imagenet,
    Alexnet,
    #[serde(rename = "vit_b_16")]
    VitB16,
    Densenet121Imagenet,
    /// The AWD-LSTM language model (Merity et al.; the AdaBelief suite's LSTM), for `ptb`
    /// data: `layers`, `emsize`, `nhid` and its five dropouts, AR `ar` and TAR `tar`.
    AwdLstm,
    /// A Wasserstein GAN of DCGAN networks (`[gan]`): the critic clipped to ±`clip_value`
    /// (Arjovsky et al.), or with the gradient penalty (`wgan_gp`, Gulrajani et al.).
    Wgan,
    WganGp,
    /// A GPT language model on token shards (`tokens` data): a named `preset`
    /// (`pisa list models`) with any of `style`, `n_layer`, `n_head`, `n_embd`,
    /// `block_size`, `vocab_size` and `dropout` changed.
    Gpt,
}

impl ModelKind {
    /// The players its task trains, each by its own optimizer (`[optimizer.<player>]`): a
    /// GAN's critic and generator; "" for the one player of every other model.
    pub fn players(self) -> &'static [&'static str] {
        match self {
            ModelKind::Wgan | ModelKind::WganGp => &["critic", "generator"],
            _ => &[""],
        }
    }

    /// The name of a `models::catalog` network; `None` for the three built from
    /// `[model]`'s settings.
    pub fn catalog_name(self) -> Option<&'static str> {
        Some(match self {
            ModelKind::Mlp
            | ModelKind::SimpleCnn
            | ModelKind::FedLambCnn
            | ModelKind::AwdLstm
            | ModelKind::Wgan
            | ModelKind::WganGp
            | ModelKind::Gpt => return None,
            ModelKind::Vgg11 => "vgg11",
            ModelKind::Resnet18 => "resnet18",
            ModelKind::Resnet20 => "resnet20",
            ModelKind::Resnet34 => "resnet34",
            ModelKind::Densenet121 => "densenet121",
            ModelKind::Resnet18Imagenet => "resnet18_imagenet",
            ModelKind::Alexnet => "alexnet",
            ModelKind::VitB16 => "vit_b_16",
            ModelKind::Densenet121Imagenet => "densenet121_imagenet",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub kind: ModelKind,
    /// Widths of the hidden layers.
    #[serde(default)]
    pub hidden: Vec<i64>,
    /// "relu" or "tanh".
    #[serde(default = "relu")]
    pub activation: String,
    /// Dropout probability after each hidden layer (AWD-LSTM: on the last layer's output,
    /// the suite's `--dropout`). Default 0; AWD-LSTM 0.4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropout: Option<f64>,
    /// AWD-LSTM: layers (default 3), embedding size (400) and hidden size (1150; the last
    /// layer's is emsize, for the tied decoder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emsize: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nhid: Option<i64>,
    /// AWD-LSTM dropouts, the suite's flags and defaults: between layers (`dropouth`, 0.3),
    /// on the embedding output (`dropouti`, 0.65), of whole words of the embedding
    /// (`dropoute`, 0.1), and weight drop of the hidden-to-hidden weights (`wdrop`, 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropouth: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropouti: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropoute: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wdrop: Option<f64>,
    /// AWD-LSTM activation regularisation α (`--alpha`, 2) and temporal activation
    /// regularisation β (`--beta`, 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ar: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tar: Option<f64>,
    /// AWD-LSTM: train the hidden-to-hidden weights through weight drop (Merity et al.'s
    /// DropConnect). Default false: frozen at their initial values, as the AdaBelief suite
    /// and the PISA code run (their WeightDrop re-wraps the dropped weight in a new
    /// Parameter, which cuts its gradient).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_weight_hh: Option<bool>,
    /// GPT: the preset the sizes below change ("gpt2_nano", "gpt2_small", "gpt2_medium",
    /// "gpt2_xl"); without one, style and every size must be given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<String>,
    /// GPT: "modded" (modded-nanogpt: rotary, QK RMS-norm, ReLU²) or "classic" (GPT-2:
    /// learned positions, GELU, LayerNorm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<super::gpt::GptStyle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_layer: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_head: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_embd: Option<i64>,
    /// GPT: the longest context, the sequence length T of training windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab_size: Option<i64>,
    /// GPT, `recipes` data: start from these pretrained weights, a folder (absolute, or
    /// relative to the directory pisa runs in) holding a Hugging Face GPT-2 checkpoint
    /// (`config.json` + `model.safetensors`) or a pisa run of a GPT (`spec.toml` +
    /// `checkpoint.safetensors`). The sizes come from it; `block_size` may raise a modded
    /// GPT's context (it has no learned positions) and `dropout` replace its rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<std::path::PathBuf>,
}

/// The AWD-LSTM keys and the suite's defaults (its argparse defaults).
const AWD_SIZES: [(&str, i64); 3] = [("layers", 3), ("emsize", 400), ("nhid", 1150)];
const AWD_RATES: [(&str, f64); 7] = [
    ("dropout", 0.4),
    ("dropouth", 0.3),
    ("dropouti", 0.65),
    ("dropoute", 0.1),
    ("wdrop", 0.5),
    ("ar", 2.0),
    ("tar", 1.0),
];

fn relu() -> String {
    "relu".into()
}

impl ModelSpec {
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        if self.kind != ModelKind::Mlp && !self.hidden.is_empty() {
            return Err((
                "model.hidden".into(),
                "hidden applies to kind = \"mlp\" only (the CNNs have fixed widths)".into(),
            ));
        }
        if let Some(w) = self.hidden.iter().find(|&&w| w < 1) {
            return Err((
                "model.hidden".into(),
                format!("hidden widths must be positive, not {w}"),
            ));
        }
        if self
            .activation
            .parse::<crate::models::Activation>()
            .is_err()
        {
            return Err((
                "model.activation".into(),
                format!(
                    "activation must be \"relu\" or \"tanh\", not {:?}",
                    self.activation
                ),
            ));
        }
        let awd = self.kind == ModelKind::AwdLstm;
        for (key, given) in self.awd_keys() {
            if given && !awd {
                return Err((
                    format!("model.{key}"),
                    format!("{key} applies to kind = \"awd_lstm\" only"),
                ));
            }
        }
        if self.kind == ModelKind::Gpt {
            return self.validate_gpt();
        }
        if let Some((key, _)) = self.gpt_keys().into_iter().find(|(_, given)| *given) {
            return Err((
                format!("model.{key}"),
                format!("{key} applies to kind = \"gpt\" only"),
            ));
        }
        let r = self.resolved();
        for (key, value) in [
            ("dropout", r.dropout),
            ("dropouth", r.dropouth),
            ("dropouti", r.dropouti),
            ("dropoute", r.dropoute),
            ("wdrop", r.wdrop),
        ] {
            if let Some(p) = value.filter(|p| !(0.0..1.0).contains(p)) {
                return Err((
                    format!("model.{key}"),
                    format!("{key} must be in [0, 1), not {p}"),
                ));
            }
        }
        for (key, value) in [("ar", r.ar), ("tar", r.tar)] {
            if let Some(v) = value.filter(|v| !(*v >= 0.0 && v.is_finite())) {
                return Err((
                    format!("model.{key}"),
                    format!("{key} must be >= 0, not {v}"),
                ));
            }
        }
        for (key, value) in [("layers", r.layers), ("emsize", r.emsize), ("nhid", r.nhid)] {
            if let Some(v) = value.filter(|&v| !(1..=1 << 20).contains(&v)) {
                return Err((
                    format!("model.{key}"),
                    format!("{key} must be in 1..=1048576, not {v}"),
                ));
            }
        }
        Ok(())
    }

    /// The AWD-LSTM keys and whether each is given.
    fn awd_keys(&self) -> [(&'static str, bool); 10] {
        [
            ("layers", self.layers.is_some()),
            ("emsize", self.emsize.is_some()),
            ("nhid", self.nhid.is_some()),
            ("dropouth", self.dropouth.is_some()),
            ("dropouti", self.dropouti.is_some()),
            ("dropoute", self.dropoute.is_some()),
            ("wdrop", self.wdrop.is_some()),
            ("ar", self.ar.is_some()),
            ("tar", self.tar.is_some()),
            ("train_weight_hh", self.train_weight_hh.is_some()),
        ]
    }

    /// The table with its kind's defaults written out (`dropout` 0, or the AWD-LSTM
    /// suite's values), as saved to `spec.toml`.
    pub fn resolved(&self) -> Self {
        let mut m = self.clone();
        if m.kind == ModelKind::Gpt {
            if m.weights.is_some() {
                // the sizes (and the dropout, unless given) are the weights'
                return m;
            }
            return m.resolved_gpt();
        }
        if m.kind != ModelKind::AwdLstm {
            m.dropout = Some(m.dropout.unwrap_or(0.0));
            return m;
        }
        let sizes = [&mut m.layers, &mut m.emsize, &mut m.nhid];
        for (slot, (_, default)) in sizes.into_iter().zip(AWD_SIZES) {
            *slot = Some(slot.unwrap_or(default));
        }
        let rates = [
            &mut m.dropout,
            &mut m.dropouth,
            &mut m.dropouti,
            &mut m.dropoute,
            &mut m.wdrop,
            &mut m.ar,
            &mut m.tar,
        ];
        for (slot, (_, default)) in rates.into_iter().zip(AWD_RATES) {
            *slot = Some(slot.unwrap_or(default));
        }
        m.train_weight_hh = Some(m.train_weight_hh.unwrap_or(false));
        m
    }
}
