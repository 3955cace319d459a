//! Fromage (Bernstein, Vahdat, Yue & Liu, "On the Distance between Two Neural Networks and
//! the Stability of Learning", NeurIPS 2020, Algorithm 1): a step of relative size lr in
//! every parameter tensor l, then a shrink that keeps the norm from growing,
//!   w_l ← (w_l − lr·(‖w_l‖/‖g_l‖)·g_l) / √(1 + lr²)
//! (the ratio 1 where ‖w_l‖ or ‖g_l‖ is 0), and with `p_bound` each tensor's norm capped at
//! p_bound times its initial norm. As the authors' code (github.com/jxbz/fromage) and
//! `pytorch_optimizer.Fromage` (the golden reference) define it; lr = 0.01 as the authors
//! suggest. The per-tensor norms come from one segment reduction over the flat buffer.
use super::adam::named;
use super::lamb::trust_ratio;
use super::layerwise::Layerwise;
use super::{Classic, Step};
use crate::optim::hyper::{positive, Bound, Default, Hyper, Hypers, Kind};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "fromage",
    summary: "per-tensor steps of relative size lr (‖w‖/‖g‖ scaling), shrunk by 1/√(1 + lr²)",
    reference:
        "Bernstein et al., NeurIPS 2020; golden: pytorch_optimizer.Fromage (the authors' code)",
    hypers: &[
        positive(
            "lr",
            0.01,
            "learning rate: the relative size of each tensor's step",
        ),
        Hyper {
            name: "p_bound",
            kind: Kind::Float {
                min: Bound::Open(0.0),
                max: Bound::None,
            },
            default: Default::Unset,
            doc: "if set, caps each tensor's norm at p_bound times its initial norm",
        },
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let layers = Layerwise::new(c.layout, c.w0.device());
    let max_norm = h.opt_f64("p_bound").map(|p| layers.norms(c.w0) * p);
    Classic::boxed(c, h.f64("lr"), Fromage { layers, max_norm })
}

pub struct Fromage {
    layers: Layerwise,
    /// p_bound·‖w⁰_l‖ per tensor (with `p_bound`).
    max_norm: Option<Tensor>,
}

impl Step for Fromage {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, _t: i64, lr: f64) {
        // w_l ← (w_l − lr·‖w_l‖/‖g_l‖·g_l)/√(1 + lr²)
        let ratio = trust_ratio(&self.layers.norms(w), &self.layers.norms(grad));
        let _ = grad.g_mul_(&self.layers.spread(&ratio));
        let _ = w.g_sub_(&(&*grad * lr));
        let _ = w.g_div_scalar_((1.0 + lr * lr).sqrt());
        if let Some(max) = &self.max_norm {
            // ‖w_l‖ > max_l ⇒ w_l ← w_l·max_l/‖w_l‖
            let norm = self.layers.norms(w);
            let over = norm.gt_tensor(max);
            let _ = w.g_mul_(&self.layers.spread(&max.where_scalarother(&over, 1.0)));
            let _ = w.g_div_(&self.layers.spread(&norm.where_scalarother(&over, 1.0)));
        }
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        // The bound is part of the state: it was taken at w⁰.
        named(self.max_norm.iter().map(|m| ("max_norm", m)))
    }
}
