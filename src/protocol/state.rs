//! The state X ∈ R^{rows×d} of the external storage (Section 3, (1)): row i is storage
//! location i (worker i's model; the parameter server's last, for `async-ps`).
use rand::Rng;
use rand_distr::StandardNormal;

/// X, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    dim: usize,
    values: Vec<f64>,
}

impl State {
    /// X from its rows, each of length `dim`, row-major in `values`.
    pub fn new(dim: usize, values: Vec<f64>) -> Self {
        assert!(
            dim > 0 && values.len().is_multiple_of(dim),
            "rows of {dim} values"
        );
        Self { dim, values }
    }

    /// A random state: i.i.d. standard Gaussian entries.
    pub fn gaussian(rows: usize, dim: usize, rng: &mut impl Rng) -> Self {
        let values = (0..rows * dim)
            .map(|_| rng.sample(StandardNormal))
            .collect();
        Self::new(dim, values)
    }

    /// The identity I_rows (d = rows): an operator applied to it is its matrix.
    pub fn identity(rows: usize) -> Self {
        let mut values = vec![0.0; rows * rows];
        values.iter_mut().step_by(rows + 1).for_each(|v| *v = 1.0);
        Self::new(rows, values)
    }

    pub fn rows(&self) -> usize {
        self.values.len() / self.dim
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [f64] {
        &mut self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// Rows `i` and `j` (i ≠ j), both mutable.
    pub fn two_rows_mut(&mut self, i: usize, j: usize) -> (&mut [f64], &mut [f64]) {
        assert_ne!(i, j);
        let d = self.dim;
        let (low, high) = (i.min(j), i.max(j));
        let (head, tail) = self.values.split_at_mut(high * d);
        let (a, b) = (&mut head[low * d..(low + 1) * d], &mut tail[..d]);
        if i < j {
            (a, b)
        } else {
            (b, a)
        }
    }

    /// The mean of the rows.
    pub fn mean_row(&self) -> Vec<f64> {
        let mut mean = vec![0.0; self.dim];
        for i in 0..self.rows() {
            mean.iter_mut().zip(self.row(i)).for_each(|(m, x)| *m += x);
        }
        let rows = self.rows() as f64;
        mean.iter_mut().for_each(|m| *m /= rows);
        mean
    }
}
