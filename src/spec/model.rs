//! `[model]`: the network a classification task trains.
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
    Resnet34,
    Densenet121,
    Resnet18Imagenet,
    Alexnet,
    #[serde(rename = "vit_b_16")]
    VitB16,
    Densenet121Imagenet,
}

impl ModelKind {
    /// The name of a `models::catalog` network; `None` for the three built from
    /// `[model]`'s settings.
    pub fn catalog_name(self) -> Option<&'static str> {
        Some(match self {
            ModelKind::Mlp | ModelKind::SimpleCnn | ModelKind::FedLambCnn => return None,
            ModelKind::Vgg11 => "vgg11",
            ModelKind::Resnet18 => "resnet18",
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
    /// Dropout probability after each hidden layer.
    #[serde(default)]
    pub dropout: f64,
}

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
        if !(0.0..1.0).contains(&self.dropout) {
            return Err((
                "model.dropout".into(),
                format!("dropout must be in [0, 1), not {}", self.dropout),
            ));
        }
        Ok(())
    }
}
