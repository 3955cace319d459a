//! The split that the matrix optimizers (Muon, Shampoo, SOAP) make of the flat buffer: the
//! parameter tensors they precondition as matrices (2-D, conv kernels viewed as
//! [out, in·kh·kw] by [`Segment::matrix`]) and the rest (biases, gains, scalars, and any
//! matrix the optimizer leaves out) that they treat entry by entry. Each part can be
//! gathered into one compact buffer by index, so that the elementwise work on it stays one
//! whole-buffer op and its state holds only its own entries.
use crate::optim::layout::{Layout, Segment};
use tch::{Device, Kind, Tensor};

pub struct Split {
    /// The matrices' segments of the flat buffer, in buffer order.
    pub matrices: Vec<Segment>,
    /// The same matrices laid out back to back: their place in the compact buffers that
    /// [`Split::gather_matrices`] returns.
    pub packed: Layout,
    /// Flat positions of the matrices' entries (absent when there are none).
    matrix_index: Option<Tensor>,
    /// Flat positions of every other entry, ascending (absent when there are none).
    rest_index: Option<Tensor>,
}

impl Split {
    /// Splits `layout` into the matrices for which `precondition` holds and the rest.
    pub fn new(layout: &Layout, device: Device, precondition: impl Fn(&Segment) -> bool) -> Self {
        let (mut matrices, mut matrix_at, mut rest_at) = (vec![], vec![], vec![]);
        for s in &layout.segments {
            let at = s.offset..s.offset + s.numel();
            if s.shape.len() >= 2 && precondition(s) {
                matrices.push(s.clone());
                matrix_at.extend(at);
            } else {
                rest_at.extend(at);
            }
        }
        let index =
            |at: Vec<i64>| (!at.is_empty()).then(|| Tensor::from_slice(&at).to_device(device));
        let packed = Layout::new(matrices.iter().map(|s| (s.name.clone(), s.shape.clone())));
        Self {
            matrices,
            packed,
            matrix_index: index(matrix_at),
            rest_index: index(rest_at),
        }
    }

    /// The matrices' entries of `flat`, back to back as in [`Split::packed`] (a copy).
    pub fn gather_matrices(&self, flat: &Tensor) -> Option<Tensor> {
        self.matrix_index.as_ref().map(|i| flat.index_select(0, i))
    }

    /// The other entries of `flat`, in buffer order (a copy).
    pub fn gather_rest(&self, flat: &Tensor) -> Option<Tensor> {
        self.rest_index.as_ref().map(|i| flat.index_select(0, i))
    }

    /// Writes `rest` (as [`Split::gather_rest`] returned it) back into `flat`.
    pub fn scatter_rest(&self, flat: &mut Tensor, rest: &Tensor) {
        if let Some(i) = &self.rest_index {
            let _ = flat.index_copy_(0, i, rest);
        }
    }

    /// Zeros shaped like the rest of `flat` (for its state), absent when there is no rest.
    pub fn rest_zeros(&self, flat: &Tensor) -> Option<Tensor> {
        self.rest_index
            .as_ref()
            .map(|i| Tensor::zeros([i.size()[0]], (flat.kind(), flat.device())))
    }

    /// Zeros for the matrices' entries back to back, absent when there are no matrices.
    pub fn matrix_zeros(&self, kind: Kind, device: Device) -> Option<Tensor> {
        self.matrix_index
            .as_ref()
            .map(|i| Tensor::zeros([i.size()[0]], (kind, device)))
    }
}

/// w ← w + α·x as torch's `w.add_(x, alpha=α)` computes it: one fused multiply-add per
/// entry, here through `addcmul_` with a 0-d α (tch's `add` takes no α, and w + (α·x)
/// rounds twice, which the golden trajectories of SOAP notice).
pub fn add_scaled_(w: &mut Tensor, x: &Tensor, alpha: f64) {
    let alpha = Tensor::from(alpha).to_kind(w.kind()).to_device(w.device());
    let _ = w.addcmul_(x, &alpha);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrices_and_rest_partition_the_buffer() {
        let layout = Layout::new([
            ("a", vec![2, 3]),
            ("b", vec![3]),
            ("c", vec![2, 1, 2, 2]),
            ("d", vec![2]),
        ]);
        let split = Split::new(&layout, Device::Cpu, |s| s.name != "c");
        assert_eq!(split.matrices.len(), 1);
        assert_eq!(split.packed.numel(), 6);
        let mut flat = Tensor::arange(19, (Kind::Double, Device::Cpu));
        let m = Vec::<f64>::try_from(&split.gather_matrices(&flat).unwrap()).unwrap();
        assert_eq!(m, (0..6).map(f64::from).collect::<Vec<_>>());
        let rest = split.gather_rest(&flat).unwrap();
        assert_eq!(rest.size(), vec![13]);
        assert_eq!(rest.double_value(&[0]), 6.0);
        assert_eq!(rest.double_value(&[12]), 18.0);
        split.scatter_rest(&mut flat, &(-rest));
        assert_eq!(flat.double_value(&[5]), 5.0);
        assert_eq!(flat.double_value(&[9]), -9.0);
        assert_eq!(split.rest_zeros(&flat).unwrap().size(), vec![13]);
        let mut w = Tensor::from_slice(&[1.0f32, 2.0]);
        add_scaled_(&mut w, &Tensor::from_slice(&[4.0f32, -8.0]), 0.25);
        assert_eq!(Vec::<f32>::try_from(&w).unwrap(), vec![2.0, 0.0]);
        let all = Split::new(&Layout::vector(4), Device::Cpu, |_| true);
        assert!(all.matrices.is_empty() && all.gather_matrices(&flat).is_none());
        assert!(all.matrix_zeros(Kind::Float, Device::Cpu).is_none());
    }
}
