//! Muon (Jordan et al. 2024, "Muon: An optimizer for hidden layers in neural networks",
//! kellerjordan.github.io/posts/muon), as KellerJordan/Muon's `SingleDeviceMuonWithAuxAdam`
//! computes it. Each matrix (2-D, conv kernels viewed as [out, in·kh·kw]) takes
//! SGD-momentum b ← lerp(b, g, 1 − μ), u = lerp(g, b, μ) (Nesterov) or b, orthogonalised by
//! the quintic Newton–Schulz iteration ([`orthogonalize`]), scaled by max(1, rows/cols)^½,
//! with decoupled weight decay: w ← (1 − lr·λ)w − lr·scale·NS(u). Every other parameter
//! (biases, gains, scalars — and least squares' single vector), and the matrices named in
//! `adamw_params` (the embedding and the head, as the reference advises), takes Muon's
//! auxiliary AdamW with its own `adamw_lr`, betas, ε and decay ([`Adam`] with decoupled
//! decay; the reference's `adam_update` is the same update). Defaults are the reference's: lr 0.02,
//! μ = 0.95 Nesterov, λ = 0, 5 steps; AdamW lr 3e-4, betas (0.9, 0.95), ε = 1e-10, λ = 0.
//! The iteration runs in bf16 on CUDA (as the reference does everywhere) and in the
//! parameters' dtype elsewhere (`ns_dtype`). Golden: `equations.Muon`, the reference's
//! code in the parameters' dtype (pytorch_optimizer's Muon hard-codes bf16 and normalises
//! by max(‖X‖, 1e-7) instead of ‖X‖ + 1e-7).
use super::adam::Adam;
use super::per_matrix::{add_scaled_, Split};
use super::{Classic, Step};
use crate::optim::hyper::{boolean, float, int, positive, unit, Default, Hyper, Hypers, Kind};
use crate::optim::newton_schulz::orthogonalize;
use crate::optim::registry::{Context, Entry};
use crate::optim::Optimizer;
use anyhow::{ensure, Result};
use tch::{Kind as Dtype, Tensor};
use toml::Value;

pub const ENTRY: Entry = Entry {
    name: "muon",
    summary: "momentum orthogonalised by Newton–Schulz for matrices, AdamW for the rest",
    reference: "Jordan et al. 2024 (KellerJordan/Muon); golden: equations.Muon (the reference's \
                code in the parameters' dtype)",
    hypers: &[
        positive("lr", 0.02, "learning rate of the matrices"),
        unit("momentum", 0.95, "momentum μ of the matrices' SGD-momentum"),
        boolean(
            "nesterov",
            true,
            "Nesterov momentum u = lerp(g, b, μ) instead of u = b",
        ),
        int("ns_steps", 1, 5, "Newton–Schulz iterations"),
        float(
            "weight_decay",
            0.0,
            "decoupled weight decay of the matrices: w ← (1 − lr·λ)w",
        ),
        crate::optim::newton_schulz::NS_DTYPE,
        positive(
            "adamw_lr",
            3e-4,
            "learning rate of the AdamW part (vectors, scalars)",
        ),
        unit("adamw_beta1", 0.9, "AdamW first-moment decay β₁"),
        unit("adamw_beta2", 0.95, "AdamW second-moment decay β₂"),
        positive("adamw_eps", 1e-10, "AdamW ε"),
        float("adamw_weight_decay", 0.0, "AdamW decoupled weight decay λ"),
        Hyper {
            name: "adamw_params",
            kind: Kind::Names,
            default: Default::Unset,
            doc: "matrices that take AdamW instead, by name (the embedding and the head)",
        },
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let w0 = c.w0;
    let adamw_params = h.names("adamw_params");
    for name in &adamw_params {
        ensure!(
            c.layout.segments.iter().any(|s| s.name == *name),
            "optimizer.adamw_params: the model has no parameter {name:?}"
        );
    }
    let split = Split::new(c.layout, w0.device(), |s| {
        !adamw_params.contains(&s.name.as_str())
    });
    let ns_kind = crate::optim::newton_schulz::dtype(h.str("ns_dtype"), w0);
    // The auxiliary AdamW is `Adam` under its own keys, on the rest gathered compactly.
    let adamw = Hypers::from_pairs([
        ("beta1", Value::Float(h.f64("adamw_beta1"))),
        ("beta2", Value::Float(h.f64("adamw_beta2"))),
        ("eps", Value::Float(h.f64("adamw_eps"))),
        ("weight_decay", Value::Float(h.f64("adamw_weight_decay"))),
    ]);
    let fallback = split
        .rest_zeros(w0)
        .map(|rest| Adam::new(&adamw, &rest, true, false));
    Classic::boxed(
        c,
        h.f64("lr"),
        Muon {
            momentum: h.f64("momentum"),
            nesterov: h.bool("nesterov"),
            ns_steps: h.usize("ns_steps"),
            ns_kind,
            weight_decay: h.f64("weight_decay"),
            lr: h.f64("lr"),
            adamw_lr: h.f64("adamw_lr"),
            momentum_buffer: split.matrix_zeros(w0.kind(), w0.device()),
            split,
            fallback,
        },
    )
}

pub struct Muon {
    momentum: f64,
    nesterov: bool,
    ns_steps: usize,
    /// The dtype Newton–Schulz runs in.
    ns_kind: Dtype,
    weight_decay: f64,
    /// The unscheduled lr, to schedule `adamw_lr` by the same factor.
    lr: f64,
    adamw_lr: f64,
    split: Split,
    /// The matrices' momentum b, back to back as in `split.packed` (absent without matrices).
    momentum_buffer: Option<Tensor>,
    /// AdamW on the entries outside the matrices (absent when there are none).
    fallback: Option<Adam>,
}

impl Muon {
    /// NS(u) of each matrix scaled by max(1, rows/cols)^½, applied to its view of `w`.
    fn orthogonalized_steps(&self, w: &mut Tensor, update: &Tensor, lr: f64) {
        for (segment, packed) in self.split.matrices.iter().zip(&self.split.packed.segments) {
            let u = packed.matrix(update).expect("a matrix");
            let (rows, cols) = (u.size()[0] as f64, u.size()[1] as f64);
            let o = orthogonalize(&u.to_kind(self.ns_kind), self.ns_steps).to_kind(w.kind());
            let scale = (rows / cols).max(1.0).powf(0.5);
            let mut view = segment.matrix(w).expect("a matrix");
            // w ← (1 − lr·λ)w − lr·(scale·NS(u))
            if self.weight_decay != 0.0 {
                let _ = view.g_mul_scalar_(1.0 - lr * self.weight_decay);
            }
            add_scaled_(&mut view, &(o * scale), -lr);
        }
    }
}

impl Step for Muon {
    fn step(&mut self, w: &mut Tensor, grad: &mut Tensor, t: i64, lr: f64) {
        if let Some(adam) = &mut self.fallback {
            let mut w_rest = self.split.gather_rest(w).expect("a rest");
            let mut g_rest = self.split.gather_rest(grad).expect("a rest");
            adam.step(&mut w_rest, &mut g_rest, t, self.adamw_lr * (lr / self.lr));
            self.split.scatter_rest(w, &w_rest);
        }
        if let Some(buffer) = &mut self.momentum_buffer {
            // b ← lerp(b, g, 1 − μ); u = lerp(g, b, μ) (Nesterov) or b
            let mut g = self.split.gather_matrices(grad).expect("matrices");
            let _ = buffer.lerp_(&g, 1.0 - self.momentum);
            let update = if self.nesterov {
                let _ = g.lerp_(buffer, self.momentum);
                g
            } else {
                buffer.shallow_clone()
            };
            self.orthogonalized_steps(w, &update, lr);
        }
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state: Vec<(String, Tensor)> = self
            .momentum_buffer
            .iter()
            .map(|b| ("momentum_buffer".to_string(), b.shallow_clone()))
            .collect();
        if let Some(adam) = &self.fallback {
            state.extend(
                adam.state()
                    .into_iter()
                    .map(|(n, t)| (format!("adamw.{n}"), t)),
            );
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use crate::optim::layout::Layout;
    use crate::optim::registry::{self, Context};
    use crate::schedule::Schedule;
    use crate::spec::OptimizerSpec;
    use tch::{Kind, Tensor};

    fn build(spec: &str) -> anyhow::Result<Box<dyn crate::optim::Optimizer>> {
        let layout = Layout::new([("fc1.weight", vec![6, 4]), ("fc1.bias", vec![6])]);
        let w0 = Tensor::zeros([30], (Kind::Double, tch::Device::Cpu));
        let spec: OptimizerSpec = toml::from_str(spec).unwrap();
        registry::build(
            &spec,
            &Context {
                w0: &w0,
                layout: &layout,
                alphas: &[1.0],
                schedule: &Schedule::default(),
                iterations: 1,
                iterations_per_epoch: 1,
            },
        )
    }

    #[test]
    fn adamw_params_names_existing_tensors() {
        assert!(build("name = \"muon\"\nadamw_params = [\"fc1.weight\"]").is_ok());
        let err = build("name = \"muon\"\nadamw_params = [\"head.weight\"]")
            .err()
            .unwrap();
        assert!(
            format!("{err:#}").contains("no parameter \"head.weight\""),
            "{err:#}"
        );
        let err = build("name = \"muon\"\nadamw_params = \"fc1.weight\"")
            .err()
            .unwrap();
        assert!(
            format!("{err:#}").contains("list of parameter names"),
            "{err:#}"
        );
    }
}
