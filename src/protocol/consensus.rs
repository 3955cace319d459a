//! M∞, the consensus a protocol converges to (Assumption 1: M∞M_t = M_tM∞ = M∞ = M∞²), and
//! the distance ‖X − M∞X‖_F of Assumption 2.
use super::State;

/// M∞: every row of M∞X is the same consensus row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Consensus {
    /// M∞ = (1/n)11ᵀ: the mean of the rows (every averaging protocol).
    Average,
    /// M∞ = 1e_sᵀ: the row of the parameter server s, which pulls copy and nothing changes.
    Server(usize),
}

impl Consensus {
    /// The row every row of M∞X equals.
    pub fn row(&self, x: &State) -> Vec<f64> {
        match *self {
            Consensus::Average => x.mean_row(),
            Consensus::Server(s) => x.row(s).to_vec(),
        }
    }

    /// ‖X − M∞X‖²_F (Frobenius norm, squared).
    pub fn distance2(&self, x: &State) -> f64 {
        let c = self.row(x);
        (0..x.rows())
            .flat_map(|i| x.row(i).iter().zip(&c).map(|(v, c)| (v - c) * (v - c)))
            .sum()
    }
}
