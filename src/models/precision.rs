//! How a model's forward pass runs: autocast (bf16 or f16 arithmetic over f32
//! parameters, as `torch.autocast` does) and channels-last image batches.
//!
//! Autocast: tch only switches libtorch's CUDA autocast on and off (leaving its default
//! kind, f16), so the switch and the kind are set here through libtorch's own
//! `at::autocast` functions, for the device the model is on (CPU autocast included).
//! The parameters stay f32: the optimizers' flat buffers and the gradients keep full
//! precision, and the backward pass (outside the autocast scope, as PyTorch advises)
//! replays each op in the kind autocast chose for it.
//!
//! Channels last: only the input batch is laid out NHWC. Convolutions given an NHWC input
//! produce NHWC outputs (and lay out their weight so for the call), so the activations
//! stay channels last through the network while the parameters remain views of the
//! contiguous flat buffer (`FlatParams`).
use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

/// A forward pass's arithmetic kind and the memory format of its image batches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Precision {
    /// `Some(BFloat16 | Half)`: run the forward pass under autocast to that kind.
    pub autocast: Option<Kind>,
    /// Lay 4-d image batches out channels last (NHWC strides, same shape).
    pub channels_last: bool,
}

impl Precision {
    /// Checks the autocast kind.
    pub fn new(autocast: Option<Kind>, channels_last: bool) -> Result<Self> {
        if let Some(kind) = autocast {
            if scalar_type(kind).is_none() {
                bail!("autocast runs in bf16 or f16, not {kind:?}");
            }
        }
        Ok(Self {
            autocast,
            channels_last,
        })
    }

    /// `x` as the model should see it: a 4-d batch in channels-last order if asked.
    pub fn input(&self, x: &Tensor) -> Tensor {
        if self.channels_last && x.dim() == 4 {
            channels_last(x)
        } else {
            x.shallow_clone()
        }
    }

    /// Runs `f` (a forward pass on `device`) under this autocast, restoring libtorch's
    /// autocast state afterwards.
    pub fn forward<T>(&self, device: Device, f: impl FnOnce() -> T) -> T {
        match self.autocast {
            None => f(),
            Some(kind) => autocast(device, kind, f),
        }
    }
}

/// `x` [N, C, H, W] with channels-last strides [HWC, 1, WC, C] (values and shape kept).
pub fn channels_last(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Whether a 4-d tensor is laid out channels last.
pub fn is_channels_last(x: &Tensor) -> bool {
    let (size, stride) = (x.size(), x.stride());
    size.len() == 4 && stride == [size[1] * size[2] * size[3], 1, size[3] * size[1], size[1]]
}

/// libtorch's `c10::ScalarType` of an autocast kind.
fn scalar_type(kind: Kind) -> Option<i8> {
    match kind {
        Kind::Half => Some(5),
        Kind::BFloat16 => Some(15),
        _ => None,
    }
}

/// libtorch's `c10::DeviceType` of a device.
fn device_type(device: Device) -> i8 {
    match device {
        Device::Cpu => 0,
        Device::Cuda(_) => 1,
        Device::Mps => 13,
        Device::Vulkan => 10,
    }
}

/// Runs `f` with autocast to `kind` enabled for `device`'s type, as
/// `with torch.autocast(device_type, dtype=kind):` does. libtorch caches the weights' casts
/// by tensor, not by kind, so the cache is cleared when a scope ends (not only the
/// outermost, as PyTorch does), and on entering one of another kind: nested scopes of
/// different kinds each see their own casts.
pub fn autocast<T>(device: Device, kind: Kind, f: impl FnOnce() -> T) -> T {
    let device = device_type(device);
    let dtype = scalar_type(kind).expect("autocast kind checked by Precision::new");
    // SAFETY: plain setters and getters of libtorch's thread-local autocast state, with
    // valid enum values; none of them throws.
    let (was_enabled, was_dtype) = unsafe {
        let previous = (
            ffi::is_autocast_enabled(device),
            ffi::get_autocast_dtype(device),
        );
        if previous.0 && previous.1 != dtype {
            ffi::clear_cache();
        }
        ffi::set_autocast_dtype(device, dtype);
        ffi::set_autocast_enabled(device, true);
        ffi::increment_nesting();
        previous
    };
    let result = f();
    unsafe {
        ffi::decrement_nesting();
        ffi::clear_cache();
        ffi::set_autocast_enabled(device, was_enabled);
        ffi::set_autocast_dtype(device, was_dtype);
    }
    result
}

/// libtorch's `at::autocast` functions (libtorch_cpu, which torch-sys links), by their
/// Itanium-mangled C++ names: tch's C API has no per-device or per-kind autocast.
/// `c10::DeviceType` and `c10::ScalarType` are `enum class : int8_t`.
mod ffi {
    extern "C" {
        #[link_name = "_ZN2at8autocast19is_autocast_enabledEN3c1010DeviceTypeE"]
        pub fn is_autocast_enabled(device_type: i8) -> bool;
        #[link_name = "_ZN2at8autocast20set_autocast_enabledEN3c1010DeviceTypeEb"]
        pub fn set_autocast_enabled(device_type: i8, enabled: bool);
        #[link_name = "_ZN2at8autocast18get_autocast_dtypeEN3c1010DeviceTypeE"]
        pub fn get_autocast_dtype(device_type: i8) -> i8;
        #[link_name = "_ZN2at8autocast18set_autocast_dtypeEN3c1010DeviceTypeENS1_10ScalarTypeE"]
        pub fn set_autocast_dtype(device_type: i8, dtype: i8);
        #[link_name = "_ZN2at8autocast17increment_nestingEv"]
        pub fn increment_nesting() -> i32;
        #[link_name = "_ZN2at8autocast17decrement_nestingEv"]
        pub fn decrement_nesting() -> i32;
        #[link_name = "_ZN2at8autocast11clear_cacheEv"]
        pub fn clear_cache();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::seeded;
    use tch::nn::{self, Module};

    #[test]
    fn cpu_autocast_runs_linear_layers_in_bf16_and_restores_the_state() {
        let vs = nn::VarStore::new(Device::Cpu);
        let (layer, x) = seeded(0, || {
            (
                nn::linear(vs.root(), 8, 4, Default::default()),
                Tensor::randn([3, 8], (Kind::Float, Device::Cpu)),
            )
        });
        let precision = Precision::new(Some(Kind::BFloat16), false).unwrap();
        let y = precision.forward(Device::Cpu, || layer.forward(&x));
        assert_eq!(y.kind(), Kind::BFloat16);
        // Close to the f32 result, but not equal: the product really ran in bf16.
        let exact = layer.forward(&x);
        assert_eq!(exact.kind(), Kind::Float, "autocast is off again");
        let diff = (y.to_kind(Kind::Float) - &exact)
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff > 0.0 && diff < 0.05, "bf16 error {diff}");
        // Gradients of the f32 parameters stay f32.
        let loss = precision
            .forward(Device::Cpu, || layer.forward(&x))
            .to_kind(Kind::Float)
            .sum(Kind::Float);
        loss.backward();
        assert_eq!(layer.ws.grad().kind(), Kind::Float);
        // f16 too, and nesting restores the outer scope's kind.
        let half = autocast(Device::Cpu, Kind::Half, || {
            let inner = autocast(Device::Cpu, Kind::BFloat16, || layer.forward(&x));
            assert_eq!(inner.kind(), Kind::BFloat16);
            layer.forward(&x)
        });
        assert_eq!(half.kind(), Kind::Half);
        assert!(Precision::new(Some(Kind::Float), false).is_err());
    }

    #[test]
    fn channels_last_keeps_values_and_convolutions_keep_it() {
        let x = seeded(0, || {
            Tensor::randn([2, 3, 5, 7], (Kind::Float, Device::Cpu))
        });
        let precision = Precision::new(None, true).unwrap();
        let nhwc = precision.input(&x);
        assert!(is_channels_last(&nhwc) && !is_channels_last(&x));
        assert_eq!(nhwc.size(), x.size());
        assert!(nhwc.equal(&x));
        let vs = nn::VarStore::new(Device::Cpu);
        let conv = seeded(1, || nn::conv2d(vs.root(), 3, 16, 3, Default::default()));
        let (a, b) = (conv.forward(&x), conv.forward(&nhwc));
        assert!(is_channels_last(&b), "the activations stay channels last");
        assert!(a.allclose(&b, 1e-5, 1e-5, false));
        // Other ranks pass through.
        let flat = seeded(2, || Tensor::randn([2, 3], (Kind::Float, Device::Cpu)));
        assert_eq!(precision.input(&flat).stride(), flat.stride());
    }
}
