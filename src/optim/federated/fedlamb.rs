//! Fed-LAMB (Karimi, Li & Li, "Layerwise and Dimensionwise Adaptive Local Adaptive
//! Gradient Method for Federated Learning", /work/shared/papers/fed-lamb.md, Algorithm 2):
//! Local AMSGrad whose local step is LAMB's layerwise one. For each participating client,
//! from θ⁰ = θ̄ and for t = 1..T:
//!   m ← β₁m + (1 − β₁)g,  m̂ = m/(1 − β₁ᵗ)               (lines 8, 9)
//!   v ← β₂v + (1 − β₂)g², v̂' = v/(1 − β₂ᵗ)               (lines 10, 11)
//!   p = m̂/√(v̂ + ε)                                        (line 12)
//!   θ_ℓ ← θ_ℓ − α φ(‖θ_ℓ‖) (p_ℓ + λθ_ℓ)/‖p_ℓ + λθ_ℓ‖  for each tensor ℓ  (line 13)
//! then the server averages, θ̄ = (1/|S|) Σ θ_i, and takes v̂ ← max(v̂, (1/|S|) Σ v_i)
//! (line 17). The machinery and the conventions where the algorithm is not explicit are
//! Local AMSGrad's ([`super::fedams`]): moments per client kept across its rounds; the
//! client's v̂ starts from the server's and takes the running max with v̂' over the local
//! steps; a fresh gradient at each local point; equal weights over the participants.
//! Here: ε under the root (line 12); `bias_correction` "local" by default (t of lines 9
//! and 11 is the local step of the round, as written); φ(z) = min(z, `clamp_value`) (the
//! paper leaves φ to the user within bounds φ_m ≤ φ ≤ φ_M, H4), and the ratio 1 where
//! ‖θ_ℓ‖ or ‖p_ℓ + λθ_ℓ‖ is 0, as LAMB's implementations do (else a zero-initialised
//! tensor could never move); λ = `weight_decay` (tuned in {0, 0.01, 0.1} in the paper,
//! default 0). The per-tensor norms come from one segment reduction ([`Layerwise`]).
use super::fedams::{bias_correction, local_ams, TrustRatio, EPS};
use crate::optim::baselines::adam::{BETA1, BETA2};
use crate::optim::baselines::layerwise::Layerwise;
use crate::optim::hyper::{float, positive, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;

pub const ENTRY: Entry = Entry {
    name: "fedlamb",
    summary: "local AMSGrad-type moments with LAMB's layerwise trust ratio on each client",
    reference: "Karimi, Li & Li, Fed-LAMB (Algorithm 2 of /work/shared/papers/fed-lamb.md)",
    hypers: keys![
        positive("lr", 1e-3, "α, the clients' learning rate"),
        BETA1,
        BETA2,
        EPS,
        float(
            "weight_decay",
            0.0,
            "λ: λθ is added to the direction before the trust ratio (line 13)",
        ),
        positive(
            "clamp_value",
            10.0,
            "φ(z) = min(z, clamp_value) caps the weight norm in the trust ratio",
        ),
        bias_correction("local"),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let trust = TrustRatio {
        layers: Layerwise::new(c.layout, c.w0.device()),
        clamp_value: h.f64("clamp_value"),
    };
    local_ams(h, c, Some(trust))
}
