//! The inexact stochastic ADMM of Algorithm 1, generic over tensors and preconditioners:
//! PISA (Q = I or the Hessian (4.1)), SISA (Q from the second moment (4.2)) and NSISA
//! (orthogonalised momentum (4.6)), one registry entry per file.
//!
//! State is lean: the global point w, the duals π_i stacked in one [m, P] buffer, the
//! preconditioner's state, and S = Σα_i π_i as the last iteration began. No local point w_i
//! is stored: since σ x_i = π_i − π_i⁺ by (2.14), the numerator of (2.9),
//! Σα_i(σ w_i + π_i⁺) with w_i = w − x_i, equals σΣα_i·w + 2S⁺ − S, which
//! `begin_iteration` forms in place from w, S and the duals (one gemv).
//!
//! Every step is in place or writes into a buffer allocated once: a fresh [P] tensor costs
//! page faults on the CPU (results/BENCHMARKS.md). A worker's gradient is consumed: the
//! update keeps u = π_i + d_i in its buffer, and one [P] scratch buffer holds the
//! preconditioner's denominator.
//!
//! The shared learning-rate schedule f(ℓ) (`[schedule]`) acts on the family by dividing σ
//! and ρ together: iteration ℓ runs with σ^{ℓ+1}/f(ℓ) and ρ/f(ℓ) in (2.13), (2.14) and the
//! numerator of (2.9). The dual step σx = σ(σ + ρq)^{-1}u does not change under that
//! scaling, so the displacement w^{ℓ+2} − w^{ℓ+1} is f(ℓ) times what it would be (exactly
//! for λ = 0): f is a step size multiplier, as for the classic optimizers. σ's own
//! schedule (2.12) runs on the unscaled σ.
pub mod nsisa;
pub mod pisa;
pub mod precondition;
pub mod sisa;

use crate::optim::hyper::{Bound, Default, Hyper, Hypers, Kind};
use crate::optim::registry::{Context, Entry};
use crate::optim::{copy_state, counter, fused, read_counter, scalar, Optimizer};
use crate::schedule::{k0_rule, Schedule, SigmaSchedule};
use crate::tasks::Local;
use anyhow::{bail, ensure, Result};
use precondition::Precondition;
use std::collections::HashMap;
use tch::Tensor;

pub const ENTRIES: &[&Entry] = &[&pisa::ENTRY, &sisa::ENTRY, &nsisa::ENTRY];

/// Keys every member of the family takes.
pub const SIGMA0: Hyper = Hyper {
    name: "sigma0",
    kind: Kind::Float {
        min: Bound::Open(0.0),
        max: Bound::None,
    },
    default: Default::Required,
    doc: "σ_i^0, the initial penalty (3.4)",
};
pub const RHO: Hyper = crate::optim::hyper::float("rho", 1.0, "ρ_i of the proximal term (2.7b)");
pub const GAMMA: Hyper = Hyper {
    name: "gamma",
    kind: Kind::Float {
        min: Bound::Open(0.0),
        max: Bound::Closed(1.0),
    },
    default: Default::Float(0.99),
    doc: "γ_i: σ_i is divided by it every k0 iterations (2.12)",
};
pub const K0: Hyper = Hyper {
    name: "k0",
    kind: Kind::IntOrAuto,
    default: Default::Int(1),
    doc: "iterations between σ updates; \"auto\" = ⌈ln γ / ln 0.99⌉ (A.1)",
};
pub const K0_EPOCHS: Hyper = Hyper {
    name: "k0_epochs",
    kind: Kind::Int { min: 1 },
    default: Default::Unset,
    doc: "k0 in epochs, replacing k0: σ updated every k0_epochs·n iterations \
          (Table 5's γ_ℓ(t, s) is gamma = t, k0_epochs = s)",
};
pub const GAMMA_RULE: Hyper = Hyper {
    name: "gamma_rule",
    kind: Kind::Choice(&["fixed", "epochs"]),
    default: Default::Unset,
    doc: "\"epochs\": Table 5's γ_ℓ = 1 − 1/(E − ⌊ℓ/n⌋) in place of gamma (then unused), \
          E = ⌈iterations/n⌉, and γ = 1 where E − ⌊ℓ/n⌋ ≤ 1",
};
pub const GAMMA_EPOCHS: Hyper = Hyper {
    name: "gamma_epochs",
    kind: Kind::Int { min: 2 },
    default: Default::Unset,
    doc: "E of gamma_rule = \"epochs\" when it is not the run's epochs (Table 5's E = 80 \
          for GPT(124M), whose runs stop at epoch 25)",
};
pub const LAMBDA: Hyper =
    crate::optim::hyper::float("lambda", 0.0, "λ of the global update (2.3), (2.9)");
pub const MU: Hyper = crate::optim::hyper::float(
    "mu",
    0.0,
    "μ of the regularised loss (2.2); F_i carries (μ − λ)/2 ‖w‖² (2.4)",
);

/// k0 as the `k0` key gives it: the integer, or rule (A.1) for "auto" (`k0_epochs`, when
/// given, replaces it; see [`sigma_schedule`]).
pub fn k0(h: &Hypers) -> usize {
    match h.get("k0") {
        Some(toml::Value::String(_)) => k0_rule(h.f64("gamma")),
        _ => h.usize("k0"),
    }
}

/// The σ schedule (2.12) the keys describe, with n and the run length from the context.
pub fn sigma_schedule(h: &Hypers, c: &Context) -> Result<SigmaSchedule> {
    let n = c.iterations_per_epoch;
    let need_n = |key: &str| {
        ensure!(
            n > 0,
            "optimizer.{key} is in epochs, but this task does not say how many iterations \
             make an epoch"
        );
        Ok(())
    };
    let auto = matches!(h.get("k0"), Some(toml::Value::String(_)));
    let k0 = match h.get("k0_epochs").and_then(toml::Value::as_integer) {
        Some(epochs) => {
            if auto || h.usize("k0") != 1 {
                bail!("optimizer.k0_epochs replaces k0: give one of them");
            }
            need_n("k0_epochs")?;
            epochs as usize * n
        }
        None => k0(h),
    };
    if h.get("gamma_rule").and_then(toml::Value::as_str) == Some("epochs") {
        need_n("gamma_rule")?;
        if auto {
            bail!("optimizer.k0 = \"auto\" follows gamma (A.1), which gamma_rule = \"epochs\" replaces");
        }
        // E: given, or the epochs of the run (the last one may be partial)
        let epochs = match h.get("gamma_epochs").and_then(toml::Value::as_integer) {
            Some(e) => e as usize,
            None => c.iterations.div_ceil(n).max(1),
        };
        Ok(SigmaSchedule::epochs(epochs, n, k0))
    } else {
        if h.get("gamma_epochs").is_some() {
            bail!("optimizer.gamma_epochs is E of gamma_rule = \"epochs\"; give that rule too");
        }
        Ok(SigmaSchedule::new(h.f64("gamma"), k0))
    }
}

/// The scalars every member takes, from resolved hyperparameters.
pub fn settings(h: &Hypers, c: &Context) -> Result<Settings> {
    Ok(Settings {
        sigma0: h.f64("sigma0"),
        rho: h.f64("rho"),
        lambda: h.f64("lambda"),
        mu: h.f64("mu"),
        schedule: sigma_schedule(h, c)?,
    })
}

/// Builds Algorithm 1 with preconditioner `precondition` for context `c`.
pub fn build(
    h: &Hypers,
    c: &Context,
    precondition: Box<dyn Precondition>,
) -> Result<Box<dyn Optimizer>> {
    let admm = Admm::new(c.w0, c.alphas, settings(h, c)?, precondition).with_lr(c.schedule.clone());
    Ok(Box::new(admm))
}

/// Scalars of Algorithm 1, the same for every worker (σ_i^0 = σ^0, γ_i = γ, ρ_i = ρ as in
/// all the paper's experiments).
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub sigma0: f64,
    pub rho: f64,
    pub lambda: f64,
    pub mu: f64,
    pub schedule: SigmaSchedule,
}

pub struct Admm {
    settings: Settings,
    alpha: Vec<f64>,
    /// The learning-rate multiplier f(ℓ): σ and ρ in force are divided by it.
    lr: Schedule,
    /// σ^ℓ of (2.12) before `begin_iteration`, σ^{ℓ+1} after it (unscaled by f).
    sigma_base: f64,
    /// σ in force: σ^{ℓ+1}/f(ℓ) after `begin_iteration`; the σ^ℓ of (2.9) before it.
    sigma: f64,
    /// ρ in force: ρ/f(ℓ).
    rho: f64,
    iteration: usize,
    /// The global point w^{ℓ+1}.
    w: Tensor,
    /// Row i − `first` is π_i, for this process's workers `first..`
    /// ([`Context::rows`]: all m in one process).
    dual: Tensor,
    first: usize,
    /// S = Σ_i α_i π_i as the current iteration began (π_i^ℓ).
    dual_sum: Tensor,
    /// α of this process's workers as a tensor of w's dtype and device, for the gemv of
    /// (2.9).
    alpha_t: Tensor,
    /// Workspace for the preconditioners' denominators, not state.
    scratch: Tensor,
    precondition: Box<dyn Precondition>,
}

impl Admm {
    /// Starts from w_i^0 = w^0 and π_i^0 = 0 (Algorithm 1 takes w^0 = 0).
    pub fn new(
        w0: &Tensor,
        alpha: &[f64],
        settings: Settings,
        precondition: Box<dyn Precondition>,
    ) -> Self {
        let rows = crate::dist::workers(alpha.len());
        let p = w0.numel() as i64;
        let options = (w0.kind(), w0.device());
        Self {
            settings,
            alpha: alpha.to_vec(),
            lr: Schedule::default(),
            sigma_base: settings.sigma0,
            sigma: settings.sigma0,
            rho: settings.rho,
            iteration: 0,
            w: w0.copy(),
            dual: Tensor::zeros([rows.len() as i64, p], options),
            first: rows.start,
            dual_sum: Tensor::zeros([p], options),
            alpha_t: Tensor::from_slice(&alpha[rows])
                .to_kind(w0.kind())
                .to_device(w0.device()),
            scratch: Tensor::empty([p], options),
            precondition,
        }
    }

    /// With the learning-rate multiplier `lr` (constant by default).
    pub fn with_lr(mut self, lr: Schedule) -> Self {
        self.lr = lr;
        self
    }

    /// σ in force (σ^{ℓ+1}/f(ℓ) after `begin_iteration`).
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    pub fn dual(&self, worker: usize) -> Tensor {
        self.dual.get((worker - self.first) as i64)
    }

    /// (2.9): w^{ℓ+1} = Σα_i(σ_i^ℓ w_i^ℓ + π_i^ℓ) / (Σα_i σ_i^ℓ + λ), the numerator formed
    /// as σΣα_i·w^ℓ + 2S⁺ − S (module doc), and S ← S⁺; S = 0 = S⁺ before the first
    /// iteration. Over ranks, S⁺ = Σα_iπ_i is the one sum that travels: each rank's gemv
    /// covers its own workers' rows, and the ranks' partial sums are added
    /// ([`crate::dist::sum`]).
    fn global_update(&mut self) {
        let alpha_sum: f64 = self.alpha.iter().sum();
        let d = alpha_sum * self.sigma + self.settings.lambda;
        let step = fused::GlobalStep {
            keep: alpha_sum * self.sigma / d,
            old: -1.0 / d,
            new: 2.0 / d,
        };
        // one process: one pass over w, S and the rows where the fused path applies
        if !crate::dist::distributed()
            && fused::global_update(&self.w, &self.dual_sum, &self.dual, &self.alpha, &step)
        {
            return;
        }
        let _ = self.w.g_mul_scalar_(step.keep);
        let _ = self.w.addcmul_(&self.dual_sum, &scalar(step.old, &self.w));
        if crate::dist::distributed() {
            let _ = self.dual.tr().mv_out(&self.dual_sum, &self.alpha_t);
            crate::dist::sum(&self.dual_sum);
            let _ = self.w.addcmul_(&self.dual_sum, &scalar(step.new, &self.w));
        } else {
            // one process: the gemv straight into w
            let _ = self.w.addmv_(&self.dual.tr(), &(&self.alpha_t * step.new));
            let _ = self.dual.tr().mv_out(&self.dual_sum, &self.alpha_t);
        }
    }
}

impl Optimizer for Admm {
    fn params(&self) -> &Tensor {
        &self.w
    }

    fn begin_iteration(&mut self) {
        self.global_update();
        // (2.12)
        self.sigma_base = self.settings.schedule.next(self.sigma_base, self.iteration);
        // f(ℓ) divides σ and ρ together (module doc)
        let f = self.lr.factor(self.iteration);
        self.sigma = self.sigma_base / f;
        self.rho = self.settings.rho / f;
    }

    fn needs_hessian(&self) -> bool {
        self.precondition.needs_hessian()
    }

    fn local_update(&mut self, worker: usize, local: Local) -> Result<()> {
        let Settings { lambda, mu, .. } = self.settings;
        let Local {
            mut grad, hessian, ..
        } = local;
        // g_i = ∇F_i(w^{ℓ+1}; B_i) with F_i = H_i + (μ − λ)/2 ‖·‖², (2.4) and (2.10)
        let decay = mu - lambda;
        let hessian = if decay != 0.0 {
            let _ = grad.addcmul_(&self.w, &scalar(decay, &self.w));
            hessian.map(|h| {
                let eye = Tensor::eye(h.size()[0], (h.kind(), h.device()));
                h + eye * decay
            })
        } else {
            hessian
        };
        // d_i = g_i (NSISA: o_i on matrices, (4.6)), in the gradient's buffer; the
        // preconditioner forms u = π_i + d_i there
        let row = worker - self.first;
        let mut dual = self.dual.get(row as i64);
        let mut u = self.precondition.direction(row, grad);
        // (2.13), (2.14): π_i ← π_i − σ_i x with x = (σ_i I + ρ_i Q_i)^{-1} u
        self.precondition.update_dual(
            row,
            &mut u,
            &mut dual,
            &self.scratch,
            self.sigma,
            self.rho,
            hessian.as_ref(),
        )
    }

    fn end_iteration(&mut self) {
        self.iteration += 1;
    }

    /// The global update (2.9) of the iteration just run, as the PISA code's `learn` ends
    /// with it; then π_i = 0, S = 0 and the preconditioner's state afresh (the next
    /// iteration's (2.9) leaves w as it is). σ's schedule and the iteration count go on.
    fn restart(&mut self) {
        self.global_update();
        let _ = self.dual.zero_();
        let _ = self.dual_sum.zero_();
        self.precondition.restart();
    }

    fn state_numel(&self) -> i64 {
        self.dual.numel() as i64 + self.dual_sum.numel() as i64 + self.precondition.state_numel()
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let scalar = |v: f64| Tensor::from(v);
        let mut state = vec![
            ("w".to_string(), self.w.shallow_clone()),
            ("dual".to_string(), self.dual.shallow_clone()),
            ("dual_sum".to_string(), self.dual_sum.shallow_clone()),
            ("sigma_base".to_string(), scalar(self.sigma_base)),
            ("sigma".to_string(), scalar(self.sigma)),
            ("rho".to_string(), scalar(self.rho)),
            ("iteration".to_string(), counter(self.iteration)),
        ];
        state.extend(
            self.precondition
                .state()
                .into_iter()
                .map(|(name, t)| (format!("precondition.{name}"), t)),
        );
        state
    }

    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        let live = [
            ("w", &self.w),
            ("dual", &self.dual),
            ("dual_sum", &self.dual_sum),
        ]
        .map(|(name, t)| (name.to_string(), t.shallow_clone()));
        copy_state(&live, saved)?;
        let scalar = |name: &str| -> Result<f64> {
            let t = saved
                .get(name)
                .ok_or_else(|| anyhow::anyhow!("the checkpoint has no {name}"))?;
            Ok(t.double_value(&[]))
        };
        self.sigma_base = scalar("sigma_base")?;
        self.sigma = scalar("sigma")?;
        self.rho = scalar("rho")?;
        self.iteration = read_counter(saved, "iteration")?;
        let prefix = "precondition.";
        let inner: HashMap<String, Tensor> = saved
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(prefix)
                    .map(|k| (k.to_string(), v.shallow_clone()))
            })
            .collect();
        self.precondition.load_state(&inner)
    }

    /// Per iteration every worker sends α_i(σ_i w_i + π_i) up (P floats) and receives
    /// w down (P floats), as clients of a server would; over ranks, each rank sends its
    /// workers' sum (P floats) and receives S⁺ (P floats).
    fn communication(&self) -> Option<(u64, u64)> {
        let clients = match crate::dist::world().size() {
            1 => self.alpha.len(),
            ranks => ranks,
        };
        let floats = (self.iteration * clients) as u64 * self.w.numel() as u64;
        Some((floats, floats))
    }

    fn splits_over_ranks(&self) -> bool {
        true
    }

    fn step_sizes(&self) -> Vec<(&'static str, f64)> {
        vec![("sigma", self.sigma), ("rho", self.rho)]
    }

    fn divergence_advice(&self) -> String {
        let largest = match self.w.kind() {
            tch::Kind::Float => f32::MAX as f64,
            _ => f64::MAX,
        };
        // σ beyond the dtype, or grown ten orders of magnitude: the schedule is the cause.
        let overflowed = self.sigma.abs() > largest || self.rho.abs() > largest;
        if overflowed || self.sigma_base > 1e10 * self.settings.sigma0 {
            return format!(
                "σ = {:e}, ρ = {:e} after {} iterations: {}, and that \
                 drives σ to infinity; raise gamma toward 1, raise k0, or run fewer iterations \
                 (a larger sigma0 only overflows sooner)",
                self.sigma,
                self.rho,
                self.iteration,
                self.settings.schedule.describe()
            );
        }
        format!(
            "σ = {:e} is too small for this problem: restart with a larger sigma0 (Appendix A.2)",
            self.sigma
        )
    }
}

#[cfg(test)]
mod tests;
