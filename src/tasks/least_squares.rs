//! Least squares, Appendix A.2: f(w; (a, b)) = (⟨w, a⟩ − b)²/2, D_i = m equal row blocks.
use super::{Local, Task};
use crate::data::least_squares::Problem;
use crate::spec::KeyError;
use anyhow::{ensure, Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use tch::{Device, Kind, Tensor};

pub struct LeastSquares {
    problem: Problem,
    /// Worker i's rows (A_i, b_i) on the training device and dtype.
    blocks: Vec<(Tensor, Tensor)>,
    /// ∇²H_i = A_iᵀA_i/|D_i|, cached for full batches (it does not depend on w).
    full_hessians: Vec<Option<Tensor>>,
    alphas: Vec<f64>,
    /// w⁰: zeros, or what `train.init` gave.
    initial: Tensor,
    /// |B_i|; 0 = the whole block.
    batch_size: usize,
    mu: f64,
    optimum: f64,
    /// Worker i's batch sampler: stream i of the seed's generator, so that a worker's
    /// batches do not depend on which other workers run in the same process.
    rngs: Vec<ChaCha8Rng>,
    kind: Kind,
    device: Device,
}

impl LeastSquares {
    /// Splits `problem` into `workers` contiguous equal row blocks; `mu` enters the
    /// reported objective F_λ(w) = ‖Aw − b‖²/(2N) + μ‖w‖²/2 and its optimum F*.
    pub fn new(
        problem: Problem,
        workers: usize,
        batch_size: usize,
        mu: f64,
        seed: u64,
        kind: Kind,
        device: Device,
    ) -> Result<Self> {
        let n = problem.samples() as usize;
        if !n.is_multiple_of(workers) {
            return Err(KeyError::at(
                "train.workers",
                format!("N = {n} rows do not split into {workers} equal blocks D_i"),
            ));
        }
        let per = n / workers;
        if batch_size > per {
            return Err(KeyError::at(
                "train.batch_size",
                format!(
                    "batch_size {batch_size} exceeds the {per} rows of each worker's block D_i"
                ),
            ));
        }
        let blocks: Vec<_> = (0..workers as i64)
            .map(|i| {
                let rows = i * per as i64;
                let a = problem.a.narrow(0, rows, per as i64);
                let b = problem.b.narrow(0, rows, per as i64);
                (
                    a.to_device(device).to_kind(kind),
                    b.to_device(device).to_kind(kind),
                )
            })
            .collect();
        let full_hessians = blocks
            .iter()
            .map(|(a, _)| (batch_size == 0).then(|| a.tr().mm(a) / per as f64))
            .collect();
        let (_, optimum) = problem.optimum(mu);
        let initial = Tensor::zeros([problem.dim()], (kind, device));
        Ok(Self {
            problem,
            blocks,
            full_hessians,
            alphas: vec![1.0 / workers as f64; workers],
            initial,
            batch_size,
            mu,
            optimum,
            rngs: (0..workers as u64)
                .map(|i| {
                    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_ba7c);
                    rng.set_stream(i);
                    rng
                })
                .collect(),
            kind,
            device,
        })
    }
}

impl Task for LeastSquares {
    fn splits_over_ranks(&self) -> bool {
        true
    }

    fn alphas(&self) -> &[f64] {
        &self.alphas
    }

    fn initial_point(&self) -> Tensor {
        self.initial.copy()
    }

    fn layout(&self) -> crate::optim::layout::Layout {
        crate::optim::layout::Layout::vector(self.problem.dim())
    }

    fn initial_buffers(&self) -> (crate::optim::layout::Layout, Tensor) {
        let none = Tensor::zeros([0], (self.kind, self.device));
        (crate::optim::layout::Layout::default(), none)
    }

    fn set_initial(&mut self, w0: &Tensor, buffers: &Tensor) -> Result<()> {
        let d = self.problem.dim();
        ensure!(
            w0.size() == [d] && buffers.numel() == 0,
            "least squares: w⁰ must be one [{d}] tensor without buffers, not {:?} and {:?}",
            w0.size(),
            buffers.size()
        );
        self.initial = w0.to_device(self.device).to_kind(self.kind);
        Ok(())
    }

    fn iterations_per_epoch(&self) -> usize {
        match self.batch_size {
            0 => 1,
            b => (self.blocks[0].0.size()[0] as usize / b).max(1),
        }
    }

    fn local(&mut self, worker: usize, w: &Tensor, hessian: bool) -> Result<Local> {
        let (a, b) = &self.blocks[worker];
        let (a, b) = if self.batch_size == 0 {
            (a.shallow_clone(), b.shallow_clone())
        } else {
            let rows = rand::seq::index::sample(
                &mut self.rngs[worker],
                a.size()[0] as usize,
                self.batch_size,
            );
            let rows: Vec<i64> = rows.iter().map(|r| r as i64).collect();
            let rows = Tensor::from_slice(&rows).to_device(self.device);
            (a.index_select(0, &rows), b.index_select(0, &rows))
        };
        let n = a.size()[0] as f64;
        // ∇H_i(w; B) = A_Bᵀ(A_B w − b_B)/|B|
        let grad = a.tr().mv(&(a.mv(w) - &b)) / n;
        let hessian = hessian.then(|| match &self.full_hessians[worker] {
            Some(h) => h.shallow_clone(),
            None => a.tr().mm(&a) / n,
        });
        Ok(Local {
            grad,
            samples: n as usize,
            hessian,
        })
    }

    /// Each worker's sampler position, one row per worker.
    fn state(&self) -> Vec<(String, Tensor)> {
        let positions: Vec<i64> = self.rngs.iter().map(|r| r.get_word_pos() as i64).collect();
        vec![("sampler".into(), Tensor::from_slice(&positions))]
    }

    fn load_state(&mut self, saved: &HashMap<String, Tensor>) -> Result<()> {
        let positions = saved
            .get("sampler")
            .context("the checkpoint has no sampler state")?;
        ensure!(
            positions.size() == [self.rngs.len() as i64],
            "the checkpoint's sampler state is for {:?} workers, the run has {}",
            positions.size(),
            self.rngs.len()
        );
        let positions = Vec::<i64>::try_from(positions)?;
        for (rng, position) in self.rngs.iter_mut().zip(positions) {
            rng.set_word_pos(position as u128);
        }
        Ok(())
    }

    fn metric_names(&self) -> &'static [&'static str] {
        &["objective", "gap"]
    }

    fn evaluate(&self, w: &Tensor) -> Result<Vec<f64>> {
        let w = w.to_device(Device::Cpu).to_kind(Kind::Double);
        let objective = self.problem.objective(&w, self.mu);
        Ok(vec![objective, objective - self.optimum])
    }
}
