//! Where each parameter tensor sits in the one flat parameter buffer (DESIGN-NOTES
//! "Parameters as flat buffers"). Optimizers that work per tensor (layerwise trust
//! ratios, Newton–Schulz, Shampoo, SOAP, Adam-mini) take views through it; everything
//! else sees one flat tensor.
use tch::{Device, Kind, Tensor};

/// One parameter tensor: its name, shape and first index in the flat buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub name: String,
    pub shape: Vec<i64>,
    pub offset: i64,
}

impl Segment {
    pub fn numel(&self) -> i64 {
        self.shape.iter().product()
    }

    /// The segment of `flat` (a [P] tensor, or a row [P] of a stack) viewed with its shape.
    pub fn view(&self, flat: &Tensor) -> Tensor {
        flat.narrow(0, self.offset, self.numel())
            .view(self.shape.as_slice())
    }

    /// The segment viewed as a matrix: 2-D as is, conv kernels [out, in, kh, kw] as
    /// [out, in·kh·kw]; `None` for vectors and scalars.
    pub fn matrix(&self, flat: &Tensor) -> Option<Tensor> {
        (self.shape.len() >= 2).then(|| {
            let rows = self.shape[0];
            flat.narrow(0, self.offset, self.numel())
                .view([rows, self.numel() / rows])
        })
    }
}

/// The segments in buffer order, contiguous and without gaps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    pub segments: Vec<Segment>,
}

impl Layout {
    /// Lays `(name, shape)` pairs out back to back.
    pub fn new<S: Into<String>>(shapes: impl IntoIterator<Item = (S, Vec<i64>)>) -> Self {
        let mut offset = 0;
        let segments = shapes
            .into_iter()
            .map(|(name, shape)| {
                let s = Segment {
                    name: name.into(),
                    shape,
                    offset,
                };
                offset += s.numel();
                s
            })
            .collect();
        Self { segments }
    }

    /// Layouts one after another, each name under its part's prefix (`critic.main.0.weight`).
    pub fn joined(parts: &[(&str, &Layout)]) -> Self {
        Self::new(parts.iter().flat_map(|(prefix, layout)| {
            layout
                .segments
                .iter()
                .map(move |s| (format!("{prefix}.{}", s.name), s.shape.clone()))
        }))
    }

    /// A single vector parameter of `numel` values (least squares' w).
    pub fn vector(numel: i64) -> Self {
        Self::new([("w", vec![numel])])
    }

    /// The parameter tensors' names in buffer order.
    pub fn names(&self) -> Vec<&str> {
        self.segments.iter().map(|s| s.name.as_str()).collect()
    }

    /// P, the parameter count.
    pub fn numel(&self) -> i64 {
        self.segments.last().map_or(0, |s| s.offset + s.numel())
    }

    /// For each of the P entries, the index of its segment: with `index_add_` it turns
    /// per-entry values into per-segment sums in one operation, and `index_select` on it
    /// spreads per-segment values back over the entries.
    pub fn segment_ids(&self, device: Device) -> Tensor {
        let sizes: Vec<i64> = self.segments.iter().map(Segment::numel).collect();
        let ids = Tensor::arange(sizes.len() as i64, (Kind::Int64, device));
        ids.repeat_interleave_self_tensor(&Tensor::from_slice(&sizes).to_device(device), 0, None)
    }

    /// Per-segment sums of `values` ([P] → [segments]).
    pub fn segment_sums(&self, values: &Tensor, ids: &Tensor) -> Tensor {
        Tensor::zeros(
            [self.segments.len() as i64],
            (values.kind(), values.device()),
        )
        .index_add(0, ids, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_sum_and_views_follow_the_layout() {
        let layout = Layout::new([("a", vec![2, 3]), ("b", vec![3]), ("c", vec![2, 1, 2, 2])]);
        assert_eq!(layout.numel(), 17);
        let ids = layout.segment_ids(Device::Cpu);
        assert_eq!(
            Vec::<i64>::try_from(&ids).unwrap()[..7],
            [0, 0, 0, 0, 0, 0, 1]
        );
        let flat = Tensor::arange(17, (Kind::Double, Device::Cpu));
        let sums = Vec::<f64>::try_from(&layout.segment_sums(&flat, &ids)).unwrap();
        assert_eq!(
            sums,
            vec![15.0, 6.0 + 7.0 + 8.0, (9..17).sum::<i64>() as f64]
        );
        let c = layout.segments[2].matrix(&flat).unwrap();
        assert_eq!(c.size(), vec![2, 4]);
        assert_eq!(c.double_value(&[1, 0]), 13.0);
        assert!(layout.segments[1].matrix(&flat).is_none());
    }
}
