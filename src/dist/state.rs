//! One checkpoint for all ranks, written by rank 0: its own state, and under `rank{r}.` each
//! tensor of rank r that differs from rank 0's (the rows of rank r's workers: their duals,
//! their samplers). Every rank resumes from it ([`own_state`]).
use super::world;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::io::Cursor;
use tch::Tensor;

/// Collective: at rank 0, `named` with every other rank's differing tensors added under
/// `rank{r}.`; empty at the other ranks (which write nothing).
pub fn gather_state(named: Vec<(String, Tensor)>) -> Result<Vec<(String, Tensor)>> {
    let comm = world();
    if comm.size() == 1 {
        return Ok(named);
    }
    let mut bytes = vec![];
    if comm.rank() > 0 {
        Tensor::save_multi_to_stream(&named, &mut bytes).context("serialising a rank's state")?;
    }
    let gathered = comm.gather(&bytes);
    if comm.rank() > 0 {
        return Ok(vec![]);
    }
    let own: HashMap<&str, &Tensor> = named.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut extra = vec![];
    for (rank, bytes) in gathered.iter().enumerate().skip(1) {
        let theirs = Tensor::load_multi_from_stream(Cursor::new(bytes))
            .with_context(|| format!("reading rank {rank}'s state"))?;
        for (name, t) in theirs {
            if own.get(name.as_str()).is_none_or(|o| !o.equal(&t)) {
                extra.push((format!("rank{rank}.{name}"), t));
            }
        }
    }
    let mut all = named;
    all.extend(extra);
    Ok(all)
}

/// This rank's state from a checkpoint [`gather_state`] made: rank 0's tensors, replaced by
/// this rank's own where it saved them.
pub fn own_state(saved: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    let mine = format!("rank{}.", world().rank());
    let is_rank = |name: &str| {
        name.strip_prefix("rank")
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(r, _)| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
    };
    let mut state: HashMap<String, Tensor> = HashMap::new();
    let mut overrides = vec![];
    for (name, t) in saved {
        if let Some(rest) = name.strip_prefix(&mine) {
            overrides.push((rest.to_string(), t));
        } else if !is_rank(&name) {
            state.insert(name, t);
        }
    }
    state.extend(overrides);
    state.into_iter().collect()
}
