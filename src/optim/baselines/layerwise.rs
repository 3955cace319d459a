//! Per-tensor (layerwise) quantities on the flat buffer, for the optimizers that scale each
//! parameter tensor by its own norms (LAMB, LARS, Fromage): a reduction over every tensor
//! at once with [`Layout::segment_sums`], and one `index_select` to spread the per-tensor
//! values back over the entries. No loop over tensors, no host sync.
use crate::optim::layout::Layout;
use tch::{Device, Tensor};

pub struct Layerwise {
    layout: Layout,
    /// For each of the P entries, the index of its tensor.
    ids: Tensor,
}

impl Layerwise {
    pub fn new(layout: &Layout, device: Device) -> Self {
        Self {
            layout: layout.clone(),
            ids: layout.segment_ids(device),
        }
    }

    /// ‖x_l‖₂ of every tensor l, as a [tensors] vector.
    pub fn norms(&self, x: &Tensor) -> Tensor {
        self.layout.segment_sums(&x.square(), &self.ids).sqrt()
    }

    /// Per-tensor values [tensors] spread over the entries [P].
    pub fn spread(&self, per_tensor: &Tensor) -> Tensor {
        per_tensor.index_select(0, &self.ids)
    }

    /// Which tensors are matrices or higher (not biases, norms' scales or scalars), as a
    /// boolean [tensors] vector.
    pub fn matrices(&self, device: Device) -> Tensor {
        let flags: Vec<bool> = self
            .layout
            .segments
            .iter()
            .map(|s| s.shape.len() > 1)
            .collect();
        Tensor::from_slice(&flags).to_device(device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn norms_per_tensor_and_spread_back() {
        let layout = Layout::new([("a", vec![2, 2]), ("b", vec![2])]);
        let lw = Layerwise::new(&layout, Device::Cpu);
        let x = Tensor::from_slice(&[3.0f64, 0.0, 0.0, 4.0, 0.0, -2.0]);
        let norms = lw.norms(&x);
        assert_eq!(Vec::<f64>::try_from(&norms).unwrap(), vec![5.0, 2.0]);
        let spread = Vec::<f64>::try_from(&lw.spread(&norms)).unwrap();
        assert_eq!(spread, vec![5.0, 5.0, 5.0, 5.0, 2.0, 2.0]);
        let m = lw.matrices(Device::Cpu);
        assert_eq!(m.kind(), Kind::Bool);
        assert_eq!(Vec::<bool>::try_from(&m).unwrap(), vec![true, false]);
    }
}
