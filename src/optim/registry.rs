//! The optimizer registry: every optimizer a spec can name, its hyperparameters with
//! defaults, its reference, and how to build it.
use super::hyper::{Hyper, Hypers};
use super::layout::Layout;
use super::Optimizer;
use crate::schedule::Schedule;
use anyhow::Result;
use tch::Tensor;

/// What an optimizer is built for.
pub struct Context<'a> {
    /// w⁰, flat.
    pub w0: &'a Tensor,
    /// Where each parameter tensor sits in w.
    pub layout: &'a Layout,
    /// α_i = |D_i|/|D| of the m workers (2.1).
    pub alphas: &'a [f64],
    /// The learning-rate multiplier over iterations (for the ADMM family it divides σ and ρ).
    pub schedule: &'a Schedule,
    /// The number of iterations the run will take.
    pub iterations: usize,
    /// n, iterations per epoch (Table 5's σ rules, epoch-based schedules); 0 when the
    /// task does not know it.
    pub iterations_per_epoch: usize,
}

impl Context<'_> {
    /// The workers whose state this process keeps: all m, or over ranks its block
    /// ([`crate::dist::workers`]); per-worker buffers hold these rows only.
    pub fn rows(&self) -> std::ops::Range<usize> {
        crate::dist::workers(self.alphas.len())
    }
}

pub struct Entry {
    pub name: &'static str,
    /// One line: what it is.
    pub summary: &'static str,
    /// Where it comes from, and what the golden tests compare it against.
    pub reference: &'static str,
    pub hypers: &'static [Hyper],
    pub build: fn(&Hypers, &Context) -> Result<Box<dyn Optimizer>>,
}

/// Every registered optimizer, the ADMM family first.
pub fn all() -> Vec<&'static Entry> {
    let mut entries: Vec<&'static Entry> = super::admm::ENTRIES.to_vec();
    entries.extend_from_slice(super::baselines::ENTRIES);
    entries.extend_from_slice(super::federated::ENTRIES);
    entries
}

pub fn find(name: &str) -> Option<&'static Entry> {
    all().into_iter().find(|e| e.name == name)
}

pub fn names() -> Vec<&'static str> {
    all().iter().map(|e| e.name).collect()
}

/// Builds the optimizer `spec` names; `spec` must have passed validation.
pub fn build(spec: &crate::spec::OptimizerSpec, context: &Context) -> Result<Box<dyn Optimizer>> {
    let hypers = spec
        .resolve("optimizer")
        .map_err(|(key, msg)| anyhow::anyhow!("{key}: {msg}"))?;
    let entry = find(&spec.name).expect("resolve checked the name");
    (entry.build)(&hypers, context)
}

/// `pisa list optimizers`: each entry with its keys, defaults and reference.
pub fn describe() -> String {
    let mut out = String::new();
    for e in all() {
        out += &format!(
            "{}\n  {}\n  reference: {}\n",
            e.name, e.summary, e.reference
        );
        let width = e.hypers.iter().map(|h| h.name.len()).max().unwrap_or(0);
        for h in e.hypers {
            out += &format!(
                "    {:width$} = {:10}  {}\n",
                h.name,
                h.default_text(),
                h.doc
            );
        }
        out += "\n";
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_unique_and_lowercase() {
        let names = super::names();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[..i].contains(n), "{n} registered twice");
            assert_eq!(n.to_lowercase(), *n);
        }
    }
}
