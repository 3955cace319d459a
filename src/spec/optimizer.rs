//! `[optimizer]`: the algorithm and its hyperparameters, named by the paper's symbols.
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerName {
    /// Algorithm 1, Q_i = I or the batch Hessian (4.1).
    Pisa,
    /// Algorithm 2, Q_i = Diag(sqrt(m_i)) with m_i from (4.3)-(4.4).
    Sisa,
}

/// PISA's preconditioner Q_i^{ℓ+1}.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precondition {
    /// Q = I.
    Identity,
    /// Q = ∇²F_i(w^{ℓ+1}; B_i^{ℓ+1}), (4.1).
    Hessian,
}

/// SISA's second-moment scheme of (4.4): AdaGrad-, RMSProp- and Adam-like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    I,
    II,
    III,
}

/// When σ_i is divided by γ (2.12): at iterations ℓ that are multiples of `k0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum K0 {
    Every(usize),
    /// k0 = ⌈ln γ / ln 0.99⌉, rule (A.1).
    Auto,
}

/// `[optimizer]` as written; fields that do not apply to `name` must be absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerSpec {
    pub name: OptimizerName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precondition: Option<Precondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<Scheme>,
    /// σ_i^0 (3.4).
    pub sigma0: f64,
    /// ρ_i of the preconditioned proximal term (2.7b).
    #[serde(default = "default_rho")]
    pub rho: f64,
    /// γ_i of (2.12).
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    #[serde(default = "default_k0")]
    pub k0: K0,
    /// β_i of (4.4) (schemes II and III).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// η_i: the clip m_i ≤ η_i² of (4.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta: Option<f64>,
    /// λ of the global update (2.3), (2.9).
    #[serde(default)]
    pub lambda: f64,
    /// μ of the regularised loss (2.2); F_i carries (μ − λ)/2 ‖w‖² (2.4).
    #[serde(default)]
    pub mu: f64,
}

fn default_rho() -> f64 {
    1.0
}
fn default_gamma() -> f64 {
    0.99
}
fn default_k0() -> K0 {
    K0::Every(1)
}
pub const DEFAULT_BETA: f64 = 0.9;
pub const DEFAULT_ETA: f64 = 1e8;

impl OptimizerSpec {
    pub(super) fn validate(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, msg: String| Err((format!("optimizer.{key}"), msg));
        let positive = |key: &str, v: f64| -> Result<(), (String, String)> {
            if v > 0.0 && v.is_finite() {
                Ok(())
            } else {
                bad(key, format!("{key} must be a finite number > 0, not {v}"))
            }
        };
        match self.name {
            OptimizerName::Pisa => {
                if self.scheme.is_some() {
                    return bad(
                        "scheme",
                        "scheme applies to sisa only (pisa takes precondition)".into(),
                    );
                }
                for (key, v) in [("beta", self.beta), ("eta", self.eta)] {
                    if v.is_some() {
                        return bad(key, format!("{key} applies to sisa only"));
                    }
                }
            }
            OptimizerName::Sisa => {
                if self.precondition.is_some() {
                    return bad(
                        "precondition",
                        "precondition applies to pisa only (sisa takes scheme)".into(),
                    );
                }
                if self.scheme.is_none() {
                    return bad(
                        "scheme",
                        "sisa needs scheme = 1, 2 or 3 (I, II, III of (4.4))".into(),
                    );
                }
            }
        }
        positive("sigma0", self.sigma0)?;
        if !(self.rho >= 0.0 && self.rho.is_finite()) {
            return bad(
                "rho",
                format!("rho must be a finite number >= 0, not {}", self.rho),
            );
        }
        if !(self.gamma > 0.0 && self.gamma <= 1.0) {
            return bad(
                "gamma",
                format!("gamma must be in (0, 1], not {}", self.gamma),
            );
        }
        if self.k0 == K0::Every(0) {
            return bad("k0", "k0 must be a positive integer or \"auto\"".into());
        }
        if let Some(beta) = self.beta {
            if !(0.0..1.0).contains(&beta) {
                return bad("beta", format!("beta must be in [0, 1), not {beta}"));
            }
        }
        if let Some(eta) = self.eta {
            positive("eta", eta)?;
        }
        for (key, v) in [("lambda", self.lambda), ("mu", self.mu)] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(key, format!("{key} must be a finite number >= 0, not {v}"));
            }
        }
        Ok(())
    }

    /// Defaults written out for the algorithm chosen.
    pub fn resolved(&self) -> Self {
        let mut s = self.clone();
        match s.name {
            OptimizerName::Pisa => {
                s.precondition.get_or_insert(Precondition::Identity);
            }
            OptimizerName::Sisa => {
                s.beta.get_or_insert(DEFAULT_BETA);
                s.eta.get_or_insert(DEFAULT_ETA);
            }
        }
        s
    }

    /// The k0 in force: (A.1) for "auto".
    pub fn k0_value(&self) -> usize {
        match self.k0 {
            K0::Every(k) => k,
            K0::Auto => k0_rule(self.gamma),
        }
    }
}

/// Rule (A.1): k0 = ⌈ln γ / ln 0.99⌉, so that γ^{K/k0} = 0.99^K.
pub fn k0_rule(gamma: f64) -> usize {
    if gamma >= 1.0 {
        return 1;
    }
    // Round away float noise before the ceiling (ln 0.99 / ln 0.99 must give 1).
    let ratio = gamma.ln() / 0.99f64.ln();
    ((ratio * 1e9).round() / 1e9).ceil().max(1.0) as usize
}

impl Serialize for Scheme {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(match self {
            Scheme::I => 1,
            Scheme::II => 2,
            Scheme::III => 3,
        })
    }
}

impl<'de> Deserialize<'de> for Scheme {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scheme;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("scheme 1, 2 or 3 (or \"I\", \"II\", \"III\")")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scheme, E> {
                match v {
                    1 => Ok(Scheme::I),
                    2 => Ok(Scheme::II),
                    3 => Ok(Scheme::III),
                    _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scheme, E> {
                self.visit_i64(v.min(i64::MAX as u64) as i64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scheme, E> {
                match v {
                    "I" | "1" => Ok(Scheme::I),
                    "II" | "2" => Ok(Scheme::II),
                    "III" | "3" => Ok(Scheme::III),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for K0 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            K0::Every(k) => s.serialize_u64(*k as u64),
            K0::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for K0 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = K0;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a positive integer or \"auto\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<K0, E> {
                if v >= 1 {
                    Ok(K0::Every(v as usize))
                } else {
                    Err(E::invalid_value(de::Unexpected::Signed(v), &self))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<K0, E> {
                self.visit_i64(v.min(i64::MAX as u64) as i64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<K0, E> {
                match v {
                    "auto" => Ok(K0::Auto),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k0_rule_matches_the_papers_examples() {
        // Appendix A.2: k0 = 69, 36, 11, 1 for γ = 0.5, 0.7, 0.9, 0.99.
        let got: Vec<usize> = [0.5, 0.7, 0.9, 0.99].iter().map(|&g| k0_rule(g)).collect();
        assert_eq!(got, vec![69, 36, 11, 1]);
        assert_eq!(k0_rule(1.0), 1);
    }
}
