//! Adam-mini (Zhang et al., "Adam-mini: Use Fewer Learning Rates To Gain More", 2024,
//! Algorithm 1): Adam's first moment per entry, but one second moment per block,
//! v_b ← β₂v_b + (1 − β₂)·mean_{i∈b} g_i², and w ← (1 − lr·λ)w − lr·m̂/(√v̂_b + ε) with
//! the bias corrections of Adam and decoupled weight decay. Blocks follow the paper's
//! partition principle for layers that are not attention heads (and the authors' v1.1
//! code for MLP, value and output projections): one block per output neuron of every
//! matrix — the rows of a linear weight [out, in], the output channels of a conv kernel —
//! and one block per other tensor (biases, gains; least squares' w is one block). The
//! code's name-based special cases (query/key per head, zero decay for "norm" tensors) need
//! transformer names and are left out. Defaults are the authors' code's: lr 1e-3,
//! betas (0.9, 0.999), ε 1e-8, λ 0. Block means are one `segment_sums` over a layout of
//! the blocks and one `index_select` back. Golden: `equations.AdamMini`, written from
//! Algorithm 1 (the authors' code needs transformer parameter names and keeps its state in
//! f32; pytorch_optimizer 4.1.0's AdamMini wraps a model, casts gradients to f32 and gives
//! a linear weight one block).
use super::adam::{BETA1, BETA2, EPS, LR};
use super::{Classic, Step};
use crate::optim::hyper::{float, Hypers};
use crate::optim::layout::Layout;
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::Result;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "adam_mini",
    summary: "Adam with one second-moment value per block (output neuron or tensor)",
    reference: "Zhang et al. 2024, Algorithm 1 (zyushun/Adam-mini v1.1 partition); golden: \
                equations.AdamMini",
    hypers: &[
        LR,
        BETA1,
        BETA2,
        EPS,
        float(
            "weight_decay",
            0.0,
            "decoupled weight decay λ: w ← (1 − lr·λ)w",
        ),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let blocks = blocks(c.layout);
    let ids = blocks.segment_ids(c.w0.device());
    let sizes: Vec<f64> = blocks.segments.iter().map(|b| b.numel() as f64).collect();
    Classic::boxed(
        c,
        h.f64("lr"),
        AdamMini {
            beta1: h.f64("beta1"),
            beta2: h.f64("beta2"),
            eps: h.f64("eps"),
            weight_decay: h.f64("weight_decay"),
            sizes: Tensor::from_slice(&sizes)
                .to_kind(c.w0.kind())
                .to_device(c.w0.device()),
            exp_avg: c.w0.zeros_like(),
            exp_avg_sq: Tensor::zeros([blocks.segments.len() as i64], (c.w0.kind(), c.w0.device())),
            blocks,
            ids,
        },
    )
}

/// The blocks as a layout of their own: each row of a matrix (its output neuron), each
/// other tensor whole.
pub fn blocks(layout: &Layout) -> Layout {
    let mut blocks = vec![];
    for s in &layout.segments {
        if s.shape.len() >= 2 {
            let (rows, cols) = (s.shape[0], s.numel() / s.shape[0]);
            blocks.extend((0..rows).map(|r| (format!("{}[{r}]", s.name), vec![cols])));
        } else {
            blocks.push((s.name.clone(), vec![s.numel()]));
        }
    }
    Layout::new(blocks)
}

pub struct AdamMini {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    blocks: Layout,
    /// For each of the P entries, its block.
    ids: Tensor,
    /// Entries per block.
    sizes: Tensor,
    /// m, per entry.
    exp_avg: Tensor,
    /// v, one per block.
    exp_avg_sq: Tensor,
}

impl Step for AdamMini {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        if self.weight_decay != 0.0 {
            let _ = w.g_mul_scalar_(1.0 - lr * self.weight_decay);
        }
        // m ← lerp(m, g, 1 − β₁); v_b ← β₂v_b + (1 − β₂)·mean_b(g²)
        let _ = self.exp_avg.lerp_(grad, 1.0 - self.beta1);
        let mean = self.blocks.segment_sums(&grad.square(), &self.ids) / &self.sizes;
        let _ = self.exp_avg_sq.g_mul_scalar_(self.beta2);
        let _ = self.exp_avg_sq.g_add_(&(mean * (1.0 - self.beta2)));
        let bias1 = 1.0 - self.beta1.powf(t as f64);
        let bias2 = 1.0 - self.beta2.powf(t as f64);
        // w ← w − lr/(1 − β₁ᵗ) · m / (√v_b / √(1 − β₂ᵗ) + ε)
        let denominator = self.exp_avg_sq.sqrt() / bias2.sqrt() + self.eps;
        let _ = w.addcdiv_(
            &(&self.exp_avg * (-lr / bias1)),
            &denominator.index_select(0, &self.ids),
        );
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        vec![
            ("exp_avg".to_string(), self.exp_avg.shallow_clone()),
            ("exp_avg_sq".to_string(), self.exp_avg_sq.shallow_clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_block_per_output_neuron_and_per_vector() {
        let layout = Layout::new([
            ("fc.weight", vec![3, 2]),
            ("fc.bias", vec![3]),
            ("conv", vec![2, 1, 2, 2]),
        ]);
        let b = blocks(&layout);
        let sizes: Vec<i64> = b.segments.iter().map(|s| s.numel()).collect();
        assert_eq!(sizes, vec![2, 2, 2, 3, 4, 4]);
        assert_eq!(b.numel(), layout.numel());
        assert_eq!(b.segments[1].name, "fc.weight[1]");
    }
}
