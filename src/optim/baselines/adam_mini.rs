//! Adam-mini (Zhang et al., "Adam-mini: Use Fewer Learning Rates To Gain More", 2024,
//! Algorithm 1): Adam's first moment per entry, but one second moment per block,
//! v_b ← β₂v_b + (1 − β₂)·mean_{i∈b} g_i², and w ← (1 − lr·λ)w − lr·m̂/(√v̂_b + ε) with
//! the bias corrections of Adam and decoupled weight decay. Defaults are the authors'
//! code's: lr 1e-3, betas (0.9, 0.999), ε 1e-8, λ 0. Block means are one `index_add` over
//! the entries' block ids and one `index_select` back.
//!
//! Two partitions ([`Partition`]):
//! - without `n_heads` (any model): the paper's principle for layers that are not attention
//!   heads — one block per output neuron of every matrix (the rows of a linear weight
//!   [out, in], the output channels of a conv kernel) and one block per other tensor
//!   (biases, gains; least squares' w is one block); λ on every entry.
//! - with `n_heads` (a transformer): the authors' v1.1.1 code (zyushun/Adam-mini,
//!   adam_mini/adam_mini.py, `Adam_mini.__init__` and `step`), which sorts tensors by
//!   substrings of their lower-cased names, first match winning: `adam_block_names`
//!   ("bias") take plain Adam, a block per entry; `wqk_names` (queries, keys) a block per
//!   head, `dim·dim/n_heads` consecutive entries with `dim` the matrix's input width (the
//!   authors' `dim`, `head_numel`); `embd_names`, `output_names`, `wv_names`,
//!   `attn_proj_names`, `mlp_names` a block per output neuron (row: per token for the
//!   embedding and the head); every other tensor (norm gains, position embeddings) one
//!   block. λ is zero for names containing "norm", "ln" or "bias", as there. The name
//!   lists are the authors' sets plus this suite's GPT names: `attn.c_q.weight`,
//!   `attn.c_k.weight`, `attn.c_v.weight` (modded-nanogpt) and `attn.c_proj.weight`, which
//!   the authors' "attn.proj" misses — with ".weight", so that a bias left out of
//!   `adam_block_names` is one block rather than a misfit head. `fused_qkv_names` is this
//!   code's: nanoGPT's packed `attn.c_attn.weight` [3d, d] (rows q, then k, then v, as
//!   `split(n_embd, dim=2)` reads its output) takes the v1.1.1 rule of each part — per head
//!   for q and k, per row for v. The authors' July 2024 code (`fused_attn_blocks`:
//!   "attn.attn.weight", "attn.qkv.weight", "attn.c_attn.weight") cut such a tensor into
//!   per-head q, k and v blocks in TinyLlama's interleaved layout; v1.1.1 dropped it (its
//!   GPT-2 example unpacks q, k, v into `wq`, `wk`, `wv`).
//!   `n_kv_heads` is not taken: v1.1.1 stores it but its blocks do not use it.
//!
//! Golden: `equations.AdamMini`, written from Algorithm 1 with both partitions (the
//! authors' code keeps its state in f32 before v1.1 and prints rather than checks its
//! matches; pytorch_optimizer 4.1.0's AdamMini wraps a model, casts gradients to f32 and
//! gives a linear weight one block).
use super::adam::{BETA1, BETA2, EPS, LR};
use super::{Classic, Step};
use crate::optim::hyper::{float, Default, Hyper, Hypers, Kind};
use crate::optim::layout::{Layout, Segment};
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::{bail, ensure, Result};
use tch::{Device, Kind as Dtype, Tensor};
use toml::Value;

/// How a block rule cuts one tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// One block per entry (Adam).
    Entries,
    /// One block per attention head.
    Heads,
    /// A packed [3d, d] q, k, v: per head for q and k, per row for v.
    FusedQkv,
    /// One block per output neuron (row of the matrix view; a vector is one block).
    Rows,
    /// The tensor is one block.
    Whole,
}

/// The name lists of the transformer partition in the order they are matched: key, rule,
/// default (the authors' v1.1.1 set and this suite's GPT names).
const NAME_LISTS: &[(&str, Rule, &[&str])] = &[
    ("adam_block_names", Rule::Entries, &["bias"]),
    (
        "wqk_names",
        Rule::Heads,
        &[
            "k_proj",
            "q_proj",
            "wq",
            "wk",
            "query",
            "key",
            "attn.c_q.weight",
            "attn.c_k.weight",
        ],
    ),
    ("fused_qkv_names", Rule::FusedQkv, &["attn.c_attn.weight"]),
    ("embd_names", Rule::Rows, &["embed", "embd", "wte"]),
    (
        "output_names",
        Rule::Rows,
        &["lm_head", "output", "final_layer"],
    ),
    (
        "wv_names",
        Rule::Rows,
        &["v_proj", "wv", "value", "attn.c_v.weight"],
    ),
    (
        "attn_proj_names",
        Rule::Rows,
        &["o_proj", "wo", "attn.proj", "attn.c_proj.weight"],
    ),
    ("mlp_names", Rule::Rows, &["feed_forward", "linear", "mlp"]),
];

/// Substrings of names whose tensors take no weight decay in the transformer partition.
const NO_DECAY: &[&str] = &["norm", "ln", "bias"];

const fn names(name: &'static str, doc: &'static str) -> Hyper {
    Hyper {
        name,
        kind: Kind::Names,
        default: Default::Unset,
        doc,
    }
}

pub const ENTRY: Entry = Entry {
    name: "adam_mini",
    summary: "Adam with one second-moment value per block (output neuron, head or tensor)",
    reference: "Zhang et al. 2024, Algorithm 1 (zyushun/Adam-mini v1.1.1 partition); golden: \
                equations.AdamMini",
    hypers: &[
        LR,
        BETA1,
        BETA2,
        EPS,
        float(
            "weight_decay",
            0.0,
            "decoupled weight decay λ: w ← (1 − lr·λ)w (with n_heads: not for norm/ln/bias names)",
        ),
        Hyper {
            name: "n_heads",
            kind: Kind::Int { min: 1 },
            default: Default::Unset,
            doc: "attention heads; when set, tensors are partitioned by name as the authors' \
                  v1.1.1 code does (the *_names keys)",
        },
        names(
            "adam_block_names",
            "name substrings of tensors with a block per entry (unset: bias)",
        ),
        names(
            "wqk_names",
            "name substrings of queries and keys, a block per head (unset: k_proj, q_proj, wq, \
             wk, query, key, attn.c_q.weight, attn.c_k.weight)",
        ),
        names(
            "fused_qkv_names",
            "name substrings of packed [3d, d] q, k, v: per head for q, k, per row for v \
             (unset: attn.c_attn.weight)",
        ),
        names(
            "embd_names",
            "name substrings of embeddings, a block per token (unset: embed, embd, wte)",
        ),
        names(
            "output_names",
            "name substrings of output layers, a block per token (unset: lm_head, output, \
             final_layer)",
        ),
        names(
            "wv_names",
            "name substrings of values, a block per output neuron (unset: v_proj, wv, value, \
             attn.c_v.weight)",
        ),
        names(
            "attn_proj_names",
            "name substrings of attention output projections, a block per output neuron \
             (unset: o_proj, wo, attn.proj, attn.c_proj.weight)",
        ),
        names(
            "mlp_names",
            "name substrings of MLP weights, a block per output neuron (unset: feed_forward, \
             linear, mlp)",
        ),
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let partition = Partition::from_hypers(h, c.layout)?;
    let sizes = partition.block_sizes(c.layout)?;
    let (kind, device) = (c.w0.kind(), c.w0.device());
    Classic::boxed(
        c,
        h.f64("lr"),
        AdamMini {
            beta1: h.f64("beta1"),
            beta2: h.f64("beta2"),
            eps: h.f64("eps"),
            weight_decay: h.f64("weight_decay"),
            decayed: partition.decayed_ranges(c.layout),
            ids: block_ids(&sizes, device),
            sizes: Tensor::from_slice(&sizes).to_kind(kind).to_device(device),
            exp_avg: c.w0.zeros_like(),
            exp_avg_sq: Tensor::zeros([sizes.len() as i64], (kind, device)),
        },
    )
}

/// Which blocks each tensor is cut into.
#[derive(Debug, Clone, PartialEq)]
enum Partition {
    /// A block per row of every matrix, one per other tensor.
    Rows,
    /// By name, as the authors' v1.1.1 code.
    Named {
        n_heads: i64,
        /// The name lists (lower case) in matching order, with their rules.
        lists: Vec<(Rule, Vec<String>)>,
    },
}

impl Partition {
    /// The partition the hyperparameters ask for, checked against the layout: an explicit
    /// name list needs `n_heads`, and each of its substrings must match some tensor.
    fn from_hypers(h: &Hypers, layout: &Layout) -> Result<Self> {
        let given: Vec<&str> = NAME_LISTS
            .iter()
            .map(|(key, ..)| *key)
            .filter(|key| h.get(key).is_some())
            .collect();
        let Some(n_heads) = h.get("n_heads").and_then(Value::as_integer) else {
            if let Some(key) = given.first() {
                bail!("optimizer.{key}: the name-based partition needs n_heads");
            }
            return Ok(Self::Rows);
        };
        let names: Vec<String> = layout
            .segments
            .iter()
            .map(|s| s.name.to_lowercase())
            .collect();
        let mut lists = vec![];
        for (key, rule, default) in NAME_LISTS {
            let patterns: Vec<String> = match h.get(key) {
                Some(_) => h.names(key).iter().map(|p| p.to_lowercase()).collect(),
                None => default.iter().map(|p| p.to_string()).collect(),
            };
            if given.contains(key) {
                if let Some(p) = patterns
                    .iter()
                    .find(|p| !names.iter().any(|n| n.contains(*p)))
                {
                    bail!("optimizer.{key}: no parameter name contains {p:?}");
                }
            }
            lists.push((*rule, patterns));
        }
        Ok(Self::Named { n_heads, lists })
    }

    /// The rule for a tensor of this name.
    fn rule(&self, name: &str) -> Rule {
        match self {
            Self::Rows => Rule::Rows,
            Self::Named { lists, .. } => {
                let name = name.to_lowercase();
                lists
                    .iter()
                    .find(|(_, patterns)| patterns.iter().any(|p| name.contains(p.as_str())))
                    .map_or(Rule::Whole, |(rule, _)| *rule)
            }
        }
    }

    /// The entries of each block, in buffer order (blocks never straddle tensors).
    fn block_sizes(&self, layout: &Layout) -> Result<Vec<i64>> {
        let mut sizes = vec![];
        for s in &layout.segments {
            let numel = s.numel();
            let (rows, cols) = match s.shape.len() {
                0 | 1 => (1, numel),
                _ => (s.shape[0], numel / s.shape[0]),
            };
            let rule = self.rule(&s.name);
            let matrix = s.shape.len() >= 2;
            match rule {
                Rule::Entries => sizes.extend(std::iter::repeat_n(1, numel as usize)),
                Rule::Rows if matrix => sizes.extend(std::iter::repeat_n(cols, rows as usize)),
                Rule::Rows | Rule::Whole => sizes.push(numel),
                Rule::Heads => {
                    let head = self.head_numel(s, cols, numel)?;
                    sizes.extend(std::iter::repeat_n(head, (numel / head) as usize));
                }
                Rule::FusedQkv => {
                    ensure!(
                        matrix && rows == 3 * cols,
                        "adam_mini: {} is {:?}, not a packed q, k, v [3d, d] in torch's [out, in] \
                         orientation (fused_qkv_names)",
                        s.name,
                        s.shape
                    );
                    let head = self.head_numel(s, cols, cols * cols)?;
                    sizes.extend(std::iter::repeat_n(head, (2 * cols * cols / head) as usize));
                    sizes.extend(std::iter::repeat_n(cols, cols as usize));
                }
            }
        }
        Ok(sizes)
    }

    /// The authors' `head_numel = dim·dim/n_heads` for a q or k of input width `dim`, which
    /// must cut `numel` entries into whole heads.
    fn head_numel(&self, s: &Segment, dim: i64, numel: i64) -> Result<i64> {
        let Self::Named { n_heads, .. } = self else {
            unreachable!("heads only in the named partition")
        };
        ensure!(
            s.shape.len() >= 2 && (dim * dim) % n_heads == 0 && numel % (dim * dim / n_heads) == 0,
            "adam_mini: {} {:?} does not split into heads of {dim}·{dim}/{n_heads} entries \
             (n_heads, wqk_names)",
            s.name,
            s.shape
        );
        Ok(dim * dim / n_heads)
    }

    /// The ranges [start, end) of the flat buffer that take weight decay, merged.
    fn decayed_ranges(&self, layout: &Layout) -> Vec<(i64, i64)> {
        let mut ranges: Vec<(i64, i64)> = vec![];
        for s in &layout.segments {
            let name = s.name.to_lowercase();
            if matches!(self, Self::Named { .. }) && NO_DECAY.iter().any(|p| name.contains(p)) {
                continue;
            }
            let end = s.offset + s.numel();
            match ranges.last_mut() {
                Some(last) if last.1 == s.offset => last.1 = end,
                _ => ranges.push((s.offset, end)),
            }
        }
        ranges
    }
}

/// For each entry, its block: `sizes[b]` copies of b, in int32 where the blocks allow (half
/// the memory of int64: [P] ids are 6 GB for GPT-2 XL).
fn block_ids(sizes: &[i64], device: Device) -> Tensor {
    let kind = if sizes.len() <= i32::MAX as usize {
        Dtype::Int
    } else {
        Dtype::Int64
    };
    let blocks = Tensor::arange(sizes.len() as i64, (kind, device));
    blocks.repeat_interleave_self_tensor(&Tensor::from_slice(sizes).to_device(device), 0, None)
}

pub struct AdamMini {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    /// Where weight decay applies: [start, end) of the flat buffer.
    decayed: Vec<(i64, i64)>,
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
            for &(start, end) in &self.decayed {
                let _ = w
                    .narrow(0, start, end - start)
                    .g_mul_scalar_(1.0 - lr * self.weight_decay);
            }
        }
        // m ← lerp(m, g, 1 − β₁); v_b ← β₂v_b + (1 − β₂)·mean_b(g²)
        let _ = self.exp_avg.lerp_(grad, 1.0 - self.beta1);
        let sums = self
            .exp_avg_sq
            .zeros_like()
            .index_add(0, &self.ids, &grad.square());
        let mean = sums / &self.sizes;
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

    fn hypers(src: &str) -> Hypers {
        Hypers::resolve("adam_mini", ENTRY.hypers, &src.parse().unwrap()).unwrap()
    }

    #[test]
    fn one_block_per_output_neuron_and_per_vector() {
        let layout = Layout::new([
            ("fc.weight", vec![3, 2]),
            ("fc.bias", vec![3]),
            ("conv", vec![2, 1, 2, 2]),
        ]);
        let p = Partition::from_hypers(&hypers(""), &layout).unwrap();
        assert_eq!(p, Partition::Rows);
        assert_eq!(p.block_sizes(&layout).unwrap(), vec![2, 2, 2, 3, 4, 4]);
        assert_eq!(p.decayed_ranges(&layout), vec![(0, 17)]);
    }

    #[test]
    fn transformer_names_take_the_authors_blocks() {
        let layout = Layout::new([
            ("transformer.wte.weight", vec![11, 8]),
            ("transformer.h.0.ln_1.weight", vec![8]),
            ("transformer.h.0.attn.c_q.weight", vec![8, 8]),
            ("transformer.h.0.attn.c_attn.weight", vec![24, 8]),
            ("transformer.h.0.attn.c_attn.bias", vec![24]),
            ("transformer.h.0.mlp.c_fc.weight", vec![16, 8]),
            ("transformer.wpe.weight", vec![4, 8]),
        ]);
        let p = Partition::from_hypers(&hypers("n_heads = 2"), &layout).unwrap();
        let sizes = p.block_sizes(&layout).unwrap();
        let mut want = vec![8; 11]; // per token
        want.push(8); // ln_1: one block
        want.extend([32, 32]); // c_q: two heads of 8·8/2
        want.extend([32; 4]); // c_attn's q and k, per head
        want.extend([8; 8]); // its v, per row
        want.extend([1; 24]); // bias: Adam
        want.extend([8; 16]); // MLP rows
        want.push(32); // wpe: one block
        assert_eq!(sizes, want);
        assert_eq!(sizes.iter().sum::<i64>(), layout.numel());
        // no decay for ln_1 (88..96) and the bias (88+8+64+192 = 352..376)
        assert_eq!(
            p.decayed_ranges(&layout),
            vec![(0, 88), (96, 352), (376, layout.numel())]
        );
        let ids = block_ids(&[2, 1, 3], Device::Cpu);
        assert_eq!(ids.kind(), Dtype::Int);
        let ids = Vec::<i64>::try_from(&ids.to_kind(Dtype::Int64)).unwrap();
        assert_eq!(ids, vec![0, 0, 1, 2, 2, 2]);
    }

    #[test]
    fn bad_names_and_shapes_are_errors() {
        let layout = Layout::new([
            ("h.attn.c_q.weight", vec![6, 6]),
            ("h.attn.c_attn.weight", vec![6, 18]),
        ]);
        let err = |src: &str| {
            Partition::from_hypers(&hypers(src), &layout)
                .and_then(|p| p.block_sizes(&layout))
                .unwrap_err()
                .to_string()
        };
        assert!(err("wqk_names = [\"c_q\"]").contains("needs n_heads"));
        assert!(err("n_heads = 2\nwqk_names = [\"q_proj\"]").contains("\"q_proj\""));
        assert!(err("n_heads = 5\nfused_qkv_names = []").contains("c_q.weight"));
        assert!(err("n_heads = 3").contains("not a packed q, k, v"));
    }
}
