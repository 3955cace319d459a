//! Fed-AMS: Local AMSGrad (Chen, Li & Li, "Toward Communication Efficient Adaptive
//! Gradient Method", FODS 2020) as the Fed-LAMB paper (Karimi, Li & Li,
//! /work/shared/papers/fed-lamb.md) runs it as a baseline: every participating client
//! takes AMSGrad steps (that paper's Algorithm 1, Reddi et al. 2018) on its own moments,
//! and each round the server averages the local models and takes the running maximum of
//! the averaged second moments (Fed-LAMB's Algorithm 2, lines 15 and 17):
//!   m_i ← β₁m_i + (1 − β₁)g,  v_i ← β₂v_i + (1 − β₂)g²,  v̂ ← max(v̂, v_i),
//!   θ ← θ − α m_i/√v̂                                     (local steps)
//!   θ̄ = (1/|S|) Σ_{i∈S} θ_i,   v̂ ← max(v̂, (1/|S|) Σ_{i∈S} v_i)   (server)
//! [`LocalAms`] holds the shared machinery; Fed-LAMB (`fedlamb.rs`) is the same with its
//! bias correction, ε under the root and the layerwise trust ratio.
//!
//! Conventions (Algorithm 2 read literally where it is explicit, and as follows where not):
//! - v_0 = v̂_0 = ε·1 and m_0 = 0 (line 2); each client keeps its m_i and v_i from one of
//!   its rounds to its next (line 8's m^{t−1}_{r−1,i}), stacked [m, P]. Only θ and v travel
//!   (line 15); the first moments never leave the client.
//! - The v̂ a client divides by starts each round from the server's v̂ (sent back with θ̄,
//!   line 17) and takes AMSGrad's running maximum with the client's v over its local steps
//!   (Algorithm 1, line 7): the algorithm names v̂^t_{r,i} in line 12 without defining it.
//! - The gradient of local step t is taken at the local point θ^{t−1}_{r,i} (line 6 places
//!   one gradient before the loop; the experiments' "local epochs … by batch training"
//!   take a fresh mini-batch at each step).
//! - The server's means are over the participants, with equal weights (line 17's 1/n).
//! - `weight_decay` adds λθ to the gradient (L2, as torch's Adam), default 0; `lr`,
//!   β₁ = 0.9, β₂ = 0.999 as the paper's experiments, ε = 1e-8.
//! - `bias_correction`: "none" (AMSGrad, the default here), "local" (m/(1 − β₁^t) and
//!   v/(1 − β₂^t) with t the local step of the round, Fed-LAMB's lines 9 and 11 as
//!   written) or "client" (t counts all the client's local steps so far, as one Adam run
//!   over them would). The corrected v enters the maximum and is what the client sends.
use super::{Algorithm, Client, Federated, Oracle, Rounds};
use crate::optim::baselines::adam::{ema_square, named, BETA1, BETA2};
use crate::optim::baselines::lamb::trust_ratio;
use crate::optim::baselines::layerwise::Layerwise;
use crate::optim::hyper::{float, positive, Default, Hyper, Hypers, Kind};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::{Kind as Dtype, Tensor};

pub const ENTRY: Entry = Entry {
    name: "fedams",
    summary: "Local AMSGrad: AMSGrad steps on each client, averaged models and max of averaged v",
    reference:
        "Chen, Li & Li, FODS 2020; as the Fed-LAMB paper's Fed-AMS baseline (its Algorithms 1-2)",
    hypers: keys![
        positive("lr", 1e-3, "α, the clients' learning rate"),
        BETA1,
        BETA2,
        EPS,
        float(
            "weight_decay",
            0.0,
            "L2 penalty added to the clients' gradients"
        ),
        bias_correction("none"),
    ],
    build,
};

pub const EPS: Hyper = positive("eps", 1e-8, "ε: v_0 = v̂_0 = ε·1");

/// The `bias_correction` key with its default.
pub const fn bias_correction(default: &'static str) -> Hyper {
    Hyper {
        name: "bias_correction",
        kind: Kind::Choice(&["none", "local", "client"]),
        default: Default::Str(default),
        doc: "t of the corrections 1 − βᵗ: the local step of the round (local), the \
              client's local steps so far (client), or no correction (none)",
    }
}

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    local_ams(h, c, None)
}

/// Which local step count t the bias corrections 1 − βᵗ use.
#[derive(Clone, Copy, PartialEq)]
enum Bias {
    None,
    Local,
    Client,
}

/// Fed-LAMB's layerwise update (line 13): per tensor ℓ,
/// θ_ℓ ← θ_ℓ − α φ(‖θ_ℓ‖)/‖u_ℓ‖ · u_ℓ, u = p + λθ, φ(z) = min(z, clamp_value).
pub struct TrustRatio {
    pub layers: Layerwise,
    pub clamp_value: f64,
}

/// Local AMSGrad (with `trust` = None) or Fed-LAMB's local steps, from `h`'s keys `lr`,
/// `beta1`, `beta2`, `eps`, `weight_decay`, `bias_correction`. Fed-LAMB puts ε under the
/// root, √(v̂ + ε) (its line 12); AMSGrad divides by √v̂ (Algorithm 1, line 8).
pub fn local_ams(h: &Hypers, c: &Context, trust: Option<TrustRatio>) -> Result<Box<dyn Optimizer>> {
    let m = c.rows().len() as i64;
    let p = c.w0.numel() as i64;
    let eps = h.f64("eps");
    let stack = |fill: f64| c.w0.new_full([m, p], fill, (c.w0.kind(), c.w0.device()));
    let ams = LocalAms {
        beta1: h.f64("beta1"),
        beta2: h.f64("beta2"),
        eps_under_root: if trust.is_some() { eps } else { 0.0 },
        weight_decay: h.f64("weight_decay"),
        lr: h.f64("lr"),
        bias: match h.str("bias_correction") {
            "local" => Bias::Local,
            "client" => Bias::Client,
            _ => Bias::None,
        },
        trust,
        exp_avg: stack(0.0),
        exp_avg_sq: stack(eps),
        max_exp_avg_sq: c.w0.full_like(eps),
        client_steps: Tensor::zeros([m], (Dtype::Int64, tch::Device::Cpu)),
        local_max: c.w0.zeros_like(),
        sum: c.w0.zeros_like(),
        sum_sq: c.w0.zeros_like(),
    };
    Federated::boxed(c, Rounds::new(h, c, true)?, ams)
}

pub struct LocalAms {
    beta1: f64,
    beta2: f64,
    /// ε in √(v̂ + ε) (Fed-LAMB), 0 for AMSGrad's √v̂.
    eps_under_root: f64,
    weight_decay: f64,
    lr: f64,
    bias: Bias,
    /// Fed-LAMB's layerwise scaling; None for Local AMSGrad.
    trust: Option<TrustRatio>,
    /// The clients' m_i and v_i, stacked [m, P].
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    /// The server's v̂.
    max_exp_avg_sq: Tensor,
    /// Local steps each client has taken so far ([m], CPU), for `bias_correction = "client"`.
    client_steps: Tensor,
    /// The v̂ of the client at work (scratch).
    local_max: Tensor,
    /// (1/|S|) Σ θ_i and (1/|S|) Σ v_i over the clients done so far this round.
    sum: Tensor,
    sum_sq: Tensor,
}

impl Algorithm for LocalAms {
    /// θ̄ and v̂ down, θ_i and v_i up (line 15, 17).
    fn floats(&self, numel: i64) -> (i64, i64) {
        (2 * numel, 2 * numel)
    }

    fn begin(&mut self) {
        let _ = self.sum.zero_();
        let _ = self.sum_sq.zero_();
    }

    fn client(&mut self, client: Client, oracle: &mut Oracle) -> Result<()> {
        let i = client.row as i64;
        let mut m = self.exp_avg.get(i);
        let mut v = self.exp_avg_sq.get(i);
        let before = self.client_steps.int64_value(&[i]);
        let lr = self.lr * client.factor;
        let theta = client.local;
        // v̂ as the server sent it
        self.local_max.copy_(&self.max_exp_avg_sq);
        let mut debias_v = 1.0;
        for t in 1..=client.steps as i64 {
            let local = oracle(theta)?;
            let grad = if self.trust.is_none() && self.weight_decay != 0.0 {
                local.grad + &*theta * self.weight_decay
            } else {
                local.grad
            };
            // lines 8, 10: m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g²
            let _ = m.lerp_(&grad, 1.0 - self.beta1);
            ema_square(&mut v, &grad, self.beta2);
            // lines 9, 11: m/(1 − β₁ᵗ), v/(1 − β₂ᵗ)
            let (debias_m, dv) = match self.bias {
                Bias::None => (1.0, 1.0),
                Bias::Local | Bias::Client => {
                    let k = if self.bias == Bias::Local {
                        t
                    } else {
                        before + t
                    } as i32;
                    (1.0 - self.beta1.powi(k), 1.0 - self.beta2.powi(k))
                }
            };
            debias_v = dv;
            // v̂ ← max(v̂, v)
            let _ = self
                .local_max
                .maximum_out(&self.local_max, &(&v / debias_v));
            // line 12: p = m/√(v̂ + ε)
            let direction = (&m / debias_m) / (&self.local_max + self.eps_under_root).sqrt();
            let step = match &self.trust {
                // line 13: u = p + λθ, scaled per tensor by φ(‖θ_ℓ‖)/‖u_ℓ‖
                Some(TrustRatio {
                    layers,
                    clamp_value,
                }) => {
                    let mut u = direction;
                    if self.weight_decay != 0.0 {
                        u += &*theta * self.weight_decay;
                    }
                    let weight_norm = layers.norms(theta).clamp(0.0, *clamp_value);
                    let ratio = trust_ratio(&weight_norm, &layers.norms(&u));
                    u * layers.spread(&ratio)
                }
                None => direction,
            };
            let _ = theta.g_sub_(&(step * lr));
        }
        let _ = self.client_steps.get(i).fill_(before + client.steps as i64);
        // line 15: θ_i and v_i (as line 11 left it) to the server
        let _ = self.sum.g_add_(&(&*theta * client.weight));
        let _ = self.sum_sq.g_add_(&(&v * (client.weight / debias_v)));
        Ok(())
    }

    fn reduce(&mut self) {
        crate::dist::sum(&self.sum);
        crate::dist::sum(&self.sum_sq);
    }

    /// line 17: θ̄ = mean θ_i, v̂ ← max(v̂, mean v_i)
    fn end(&mut self, w: &mut Tensor) {
        w.copy_(&self.sum);
        let _ = self
            .max_exp_avg_sq
            .maximum_out(&self.max_exp_avg_sq, &self.sum_sq);
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        named([
            ("exp_avg", &self.exp_avg),
            ("exp_avg_sq", &self.exp_avg_sq),
            ("max_exp_avg_sq", &self.max_exp_avg_sq),
            ("client_steps", &self.client_steps),
        ])
    }
}
