//! Lookahead (Zhang, Lucas, Hinton & Ba, "Lookahead Optimizer: k steps forward, 1 step
//! back", NeurIPS 2019, Algorithm 1): any classic optimizer of the registry, given as the
//! nested table `inner = { name = "adam", lr = 1e-3 }` (required: there is no default
//! inner optimizer), takes k fast steps from the slow weights φ; then φ ← φ + α(θ − φ) and
//! the fast weights θ restart from φ. k = 5 and α = 0.5 as the paper. As
//! `pytorch_optimizer.Lookahead` (the golden reference, `pullback_momentum = "none"`)
//! defines it: φ₀ = w⁰, the inner optimizer keeps its state (moments, momentum) across
//! the synchronisations, and its learning-rate schedule runs as it would alone. The point
//! the workers' gradients are taken at and the one the loop evaluates is θ, which equals
//! φ after every k-th step.
//!
//! It wraps the inner [`Optimizer`] the registry builds (a [`super::Classic`]), and resets
//! θ through the handle `params()` returns, which shares storage with the inner
//! optimizer's parameters (as the tensors of `state()` do for checkpoints).
use crate::optim::hyper::{int, Bound, Default, Hyper, Hypers, Kind};
use crate::optim::registry::{self, Context, Entry};
use crate::optim::{copy_state, counter, read_counter, Optimizer};
use crate::spec::OptimizerSpec;
use crate::tasks::Local;
use anyhow::{bail, ensure, Result};
use std::collections::HashMap;
use tch::Tensor;

pub const ENTRY: Entry = Entry {
    name: "lookahead",
    summary: "k steps of an inner optimizer, then the slow weights move α toward the fast ones",
    reference: "Zhang et al., NeurIPS 2019; golden: pytorch_optimizer.Lookahead",
    hypers: &[
        Hyper {
            name: "inner",
            kind: Kind::Optimizer,
            default: Default::Required,
            doc: "the inner optimizer, a table with its name and hyperparameters: { name = \"adam\", lr = 1e-3 }",
        },
        int("k", 1, 5, "fast steps per slow step"),
        Hyper {
            name: "alpha",
            kind: Kind::Float {
                min: Bound::Open(0.0),
                max: Bound::Closed(1.0),
            },
            default: Default::Float(0.5),
            doc: "slow step size α: φ ← φ + α(θ − φ)",
        },
    ],
    build,
};

fn build(h: &Hypers, c: &Context) -> Result<Box<dyn Optimizer>> {
    let Some(toml::Value::Table(table)) = h.get("inner") else {
        bail!("optimizer.inner: lookahead needs the inner optimizer's table");
    };
    let inner: OptimizerSpec = toml::Value::Table(table.clone()).try_into()?;
    let classic: Vec<&str> = super::ENTRIES.iter().map(|e| e.name).collect();
    ensure!(
        classic.contains(&inner.name.as_str()),
        "optimizer.inner: lookahead wraps a classic optimizer ({}), not {:?}",
        classic.join(", "),
        inner.name
    );
    Ok(Box::new(Lookahead {
        inner: registry::build(&inner, c)?,
        slow: c.w0.copy(),
        k: h.usize("k"),
        alpha: h.f64("alpha"),
        steps: 0,
    }))
}

pub struct Lookahead {
    inner: Box<dyn Optimizer>,
    /// φ
    slow: Tensor,
    k: usize,
    alpha: f64,
    /// Inner steps taken.
    steps: usize,
}

impl Optimizer for Lookahead {
    /// θ, the fast weights.
    fn params(&self) -> &Tensor {
        self.inner.params()
    }

    fn begin_iteration(&mut self) {
        self.inner.begin_iteration();
    }

    fn needs_hessian(&self) -> bool {
        self.inner.needs_hessian()
    }

    fn splits_over_ranks(&self) -> bool {
        self.inner.splits_over_ranks()
    }

    fn local_update(&mut self, worker: usize, local: Local) -> Result<()> {
        self.inner.local_update(worker, local)
    }

    fn end_iteration(&mut self) {
        self.inner.end_iteration();
        self.steps += 1;
        if self.steps.is_multiple_of(self.k) {
            // φ ← φ + α(θ − φ), written θ ← θ + (1 − α)(φ − θ); then φ ← θ
            let mut fast = self.inner.params().shallow_clone();
            let _ = fast.lerp_(&self.slow, 1.0 - self.alpha);
            self.slow.copy_(&fast);
        }
    }

    fn state_numel(&self) -> i64 {
        self.inner.state_numel() + self.slow.numel() as i64
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut state = vec![
            ("slow".to_string(), self.slow.shallow_clone()),
            ("steps".to_string(), counter(self.steps)),
        ];
        state.extend(
            self.inner
                .state()
                .into_iter()
                .map(|(name, t)| (format!("inner.{name}"), t)),
        );
        state
    }

    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        let inner: HashMap<String, Tensor> = saved
            .iter()
            .filter_map(|(name, t)| {
                Some((name.strip_prefix("inner.")?.to_string(), t.shallow_clone()))
            })
            .collect();
        self.inner.load_state(&inner)?;
        copy_state(&[("slow".to_string(), self.slow.shallow_clone())], saved)?;
        self.steps = read_counter(saved, "steps")?;
        Ok(())
    }

    fn divergence_advice(&self) -> String {
        self.inner.divergence_advice()
    }
}

#[cfg(test)]
mod tests {
    use crate::optim::layout::Layout;
    use crate::optim::registry::{self, Context};
    use crate::optim::Optimizer;
    use crate::schedule::Schedule;
    use crate::spec::OptimizerSpec;
    use crate::tasks::Local;
    use std::collections::HashMap;
    use tch::Tensor;

    fn spec(src: &str) -> OptimizerSpec {
        toml::from_str(src).unwrap()
    }

    fn build(src: &str) -> anyhow::Result<Box<dyn Optimizer>> {
        let w0 = Tensor::from_slice(&[1.0f64, -2.0, 0.5]);
        registry::build(
            &spec(src),
            &Context {
                w0: &w0,
                layout: &Layout::vector(3),
                alphas: &[1.0],
                schedule: &Schedule::default(),
                iterations: 10,
                iterations_per_epoch: 1,
            },
        )
    }

    /// One iteration with the gradient of ½‖w − (1, 1, 1)‖².
    fn iterate(opt: &mut Box<dyn Optimizer>) {
        opt.begin_iteration();
        let grad = opt.params() - 1.0;
        opt.local_update(
            0,
            Local {
                grad,
                samples: 1,
                hessian: None,
            },
        )
        .unwrap();
        opt.end_iteration();
    }

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t).unwrap()
    }

    #[test]
    fn inner_is_required_and_classic() {
        let (key, msg) = spec("name = \"lookahead\"")
            .validate("optimizer")
            .unwrap_err();
        assert_eq!(key, "optimizer.inner");
        assert!(msg.contains("inner"), "{msg}");
        let (key, _) = spec("name = \"lookahead\"\ninner = { name = \"adam\", bogus = 1 }")
            .validate("optimizer")
            .unwrap_err();
        assert_eq!(key, "optimizer.inner.bogus");
        let err = build("name = \"lookahead\"\ninner = { name = \"pisa\", sigma0 = 1.0 }")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("classic optimizer"), "{err}");
    }

    /// k = 2, α = 0.5 around SGD with lr 0.5 on ½‖w − 1‖²: each inner step halves w − 1,
    /// so after two steps θ − 1 = (w⁰ − 1)/4 and φ − 1 = ((w⁰ − 1) + (w⁰ − 1)/4)/2.
    #[test]
    fn slow_weights_move_alpha_toward_the_fast_ones() {
        let mut opt =
            build("name = \"lookahead\"\nk = 2\nalpha = 0.5\ninner = { name = \"sgd\", lr = 0.5 }")
                .unwrap();
        iterate(&mut opt);
        assert_eq!(values(opt.params()), vec![1.0, -0.5, 0.75]);
        iterate(&mut opt);
        let want: Vec<f64> = [1.0f64, -2.0, 0.5]
            .iter()
            .map(|w| 1.0 + (w - 1.0) * (1.0 + 0.25) / 2.0)
            .collect();
        assert_eq!(values(opt.params()), want);
        assert_eq!(opt.state_numel(), 3);
    }

    #[test]
    fn resumes_from_its_state() {
        let src = "name = \"lookahead\"\nk = 3\ninner = { name = \"adam\", lr = 0.1 }";
        let mut a = build(src).unwrap();
        for _ in 0..4 {
            iterate(&mut a);
        }
        let saved: HashMap<String, Tensor> =
            a.state().into_iter().map(|(n, t)| (n, t.copy())).collect();
        assert!(saved.contains_key("slow") && saved.contains_key("inner.step.exp_avg"));
        let mut b = build(src).unwrap();
        b.load_state(&saved).unwrap();
        for _ in 0..4 {
            iterate(&mut a);
            iterate(&mut b);
        }
        assert_eq!(values(a.params()), values(b.params()));
    }
}
