//! LARS (You, Gitman & Ginsburg, "Large Batch Training of Convolutional Networks", arXiv
//! 1708.03888, 2017, Algorithm 1): momentum SGD whose gradient is rescaled per parameter
//! tensor l by the local learning rate λ_l = η‖w_l‖/(‖∇L(w_l)‖ + β‖w_l‖),
//!   ĝ_l = λ_l(g_l + βw_l),  b ← μb + ĝ,  w ← w − lr·b
//! (η = `trust_coefficient` = 1e-3, β = `weight_decay`; λ_l = 1 where ‖w_l‖ or the
//! denominator is 0). The learning rate multiplies the velocity at the end as in
//! torch.optim.SGD; Algorithm 1 puts γₜ inside it, the same for a constant lr. `nesterov`
//! adds μb to ĝ as torch does. Every tensor is scaled, as in the paper; with
//! `exclude_vectors` tensors of one dimension or none (biases, normalisation scales) take
//! plain momentum steps without ratio or decay, as `pytorch_optimizer.LARS` (the golden
//! reference for that option, whose defaults lr = 1e-3, μ = 0.9 this takes) and SimCLR/BYOL
//! do; the paper's form is checked against `equations.LARS`. The per-tensor norms come
//! from one segment reduction over the flat buffer ([`Layerwise`]).
use super::adam::named;
use super::lamb::trust_ratio;
use super::layerwise::Layerwise;
use super::{Classic, Step};
use crate::optim::hyper::{boolean, float, positive, unit, Hypers};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::{ensure, Result};
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "lars",
    summary: "momentum SGD with a layerwise learning rate η‖w‖/(‖g‖ + β‖w‖) per tensor",
    reference:
        "You, Gitman & Ginsburg 2017; golden: equations.LARS (Algorithm 1), pytorch_optimizer.LARS",
    hypers: &[
        positive(
            "lr",
            1e-3,
            "learning rate (global, multiplies the layerwise one)",
        ),
        unit("momentum", 0.9, "momentum μ"),
        boolean("nesterov", false, "Nesterov momentum"),
        float(
            "weight_decay",
            0.0,
            "weight decay β, inside the trust ratio and the step",
        ),
        positive("trust_coefficient", 1e-3, "LARS coefficient η"),
        boolean(
            "exclude_vectors",
            false,
            "tensors with fewer than 2 dimensions take plain momentum steps (no ratio, no decay)",
        ),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let momentum = h.f64("momentum");
    ensure!(
        !h.bool("nesterov") || momentum > 0.0,
        "optimizer.nesterov needs momentum > 0"
    );
    let layers = Layerwise::new(c.layout, c.w0.device());
    let scaled = h
        .bool("exclude_vectors")
        .then(|| layers.matrices(c.w0.device()));
    let scaled_decay = scaled
        .as_ref()
        .map(|s| layers.spread(&s.to_kind(c.w0.kind())) * h.f64("weight_decay"));
    Classic::boxed(
        c,
        h.f64("lr"),
        Lars {
            momentum,
            nesterov: h.bool("nesterov"),
            weight_decay: h.f64("weight_decay"),
            trust_coefficient: h.f64("trust_coefficient"),
            buffer: (momentum > 0.0).then(|| c.w0.zeros_like()),
            layers,
            scaled,
            scaled_decay,
        },
    )
}

pub struct Lars {
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
    trust_coefficient: f64,
    /// The velocity b (absent without momentum).
    buffer: Option<Tensor>,
    layers: Layerwise,
    /// With `exclude_vectors`: which tensors LARS scales ([tensors], boolean)...
    scaled: Option<Tensor>,
    /// ... and β on their entries, 0 elsewhere ([P]).
    scaled_decay: Option<Tensor>,
}

impl Step for Lars {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, _t: i64, lr: f64) {
        // λ_l = η‖w_l‖/(‖g_l‖ + β‖w_l‖)
        let w_norm = self.layers.norms(w);
        let denominator = self.layers.norms(grad) + &w_norm * self.weight_decay;
        let mut ratio = trust_ratio(&(w_norm * self.trust_coefficient), &denominator);
        // ĝ = λ(g + βw), on the scaled tensors only with exclude_vectors
        if let Some(scaled) = &self.scaled {
            ratio = ratio.where_scalarother(scaled, 1.0);
        }
        if self.weight_decay != 0.0 {
            let decay = match &self.scaled_decay {
                Some(decay) => &*w * decay,
                None => &*w * self.weight_decay,
            };
            let _ = grad.g_add_(&decay);
        }
        let _ = grad.g_mul_(&self.layers.spread(&ratio));
        if let Some(b) = &mut self.buffer {
            // b ← μb + ĝ
            let _ = b.g_mul_scalar_(self.momentum);
            let _ = b.g_add_(grad);
            if self.nesterov {
                let _ = grad.g_add_(&(&*b * self.momentum));
            } else {
                grad.copy_(b);
            }
        }
        let _ = w.g_sub_(&(&*grad * lr));
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        named(self.buffer.iter().map(|b| ("momentum_buffer", b)))
    }
}
