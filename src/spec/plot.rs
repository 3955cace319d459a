//! The `[plot]` table: which figures `pisa plot` draws from a results folder.
use serde::{Deserialize, Serialize};

/// One figure per entry of `y`, curves grouped by the swept key `series`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlotSpec {
    /// Figure title; defaults to the spec's `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Column of `metrics.csv` on the x axis.
    #[serde(default = "default_x")]
    pub x: String,
    /// Columns of `metrics.csv` drawn on the y axis, one figure each.
    pub y: Vec<String>,
    #[serde(default)]
    pub logx: bool,
    #[serde(default)]
    pub logy: bool,
    /// Sweep key (e.g. "optimizer.sigma0") whose value labels each curve, or several
    /// separated by commas ("optimizer.lr, optimizer.weight_decay"), whose values together
    /// do; defaults to the sweep's only key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    /// Corner of the legend box.
    #[serde(default)]
    pub legend: Legend,
    /// A paper table these runs fill (`"table2"`): `pisa plot` on a folder holding the
    /// experiments writes it as CSV and Markdown beside them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Legend {
    #[default]
    UpperRight,
    UpperLeft,
    MiddleRight,
    LowerLeft,
    LowerRight,
}

fn default_x() -> String {
    "iteration".to_string()
}
