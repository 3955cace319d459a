//! One contiguous buffer behind all of a model's trainable variables.
//!
//! [`FlatParams::new`] copies the trainable variables of an [`nn::VarStore`] into one
//! [P] tensor and re-points every variable at its slice of it (`set_data` with a view),
//! so the modules built in the store read the buffer directly: loading the optimizer's
//! flat w is one copy, and the gradients come back flat in the same order.
//!
//! Order: the store's creation order of trainable variables (tch keeps them in a `Vec`;
//! only the names live in a `HashMap`, so names are matched to variables by data
//! pointer). With [`crate::models::mlp::linear`] layers this is the order of PyTorch's
//! `parameters()`: `fc1.weight`, `fc1.bias`, `fc2.weight`, ... (tch's own `nn::linear`
//! creates `bias` before `weight`).
use crate::optim::layout::Layout;
use anyhow::{bail, ensure, Result};
use std::collections::HashMap;
use tch::{nn, Device, Kind, Tensor};

/// The trainable variables of a var store, viewed as slices of one flat buffer.
///
/// Autograd caveat: `set_data` keeps each variable's own version counter, so writing the
/// buffer between a forward pass and its `backward` would go undetected. [`load`] is
/// meant to be called before the forward pass, as the tasks do.
///
/// [`load`]: FlatParams::load
#[derive(Debug)]
pub struct FlatParams {
    /// [P], contiguous, not tracked by autograd; the variables are views into it.
    buffer: Tensor,
    /// The trainable variables in layout order (handles to the store's tensors).
    vars: Vec<Tensor>,
    layout: Layout,
    /// The non-trainable variables (batch-norm running statistics), viewed the same way
    /// as one [B] buffer in name order; empty (B = 0) for models without any.
    state: Tensor,
    /// Names, shapes and offsets of the non-trainable variables in `state`.
    state_layout: Layout,
}

impl FlatParams {
    /// Moves the trainable variables of `vs` (after the model was built in it) into one
    /// buffer of their common kind and device. Errors if the store has no trainable
    /// variable, or if they mix kinds or devices.
    pub fn new(vs: &nn::VarStore) -> Result<Self> {
        let vars = vs.trainable_variables();
        ensure!(
            !vars.is_empty(),
            "flat parameters: the var store has no trainable variables"
        );
        let names = names_by_pointer(vs, &vars)?;

        let (kind, device) = (vars[0].kind(), vars[0].device());
        for (var, name) in vars.iter().zip(&names) {
            ensure!(
                var.kind() == kind && var.device() == device,
                "flat parameters: variable {name} is {:?} on {:?}, but {} is {kind:?} on \
                 {device:?}; all trainable variables must share one kind and device",
                var.kind(),
                var.device(),
                names[0],
            );
        }

        // Buffers: every named variable that is not trainable, in name order.
        let trainable: std::collections::HashSet<usize> =
            vars.iter().map(|v| v.data_ptr() as usize).collect();
        let mut named: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| !trainable.contains(&(t.data_ptr() as usize)))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        // tch creates buffers as f32 whatever the store's kind: they follow the parameters.
        for (name, t) in &named {
            ensure!(
                t.is_floating_point() && t.device() == device,
                "flat parameters: buffer {name} is {:?} on {:?}; expected floating point on \
                 {device:?} like the parameters",
                t.kind(),
                t.device()
            );
        }
        let mut vars = vars;
        let (buffer, layout) = flatten(&mut vars, names, kind);
        let (names, mut buffers): (Vec<String>, Vec<Tensor>) = named.into_iter().unzip();
        let (state, state_layout) = if buffers.is_empty() {
            (Tensor::zeros([0], (kind, device)), Layout::default())
        } else {
            flatten(&mut buffers, names, kind)
        };
        Ok(Self {
            buffer,
            vars,
            layout,
            state,
            state_layout,
        })
    }

    /// Names, shapes and offsets of the variables in the buffer.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// P, the number of trainable values.
    pub fn numel(&self) -> i64 {
        self.layout.numel()
    }

    pub fn kind(&self) -> Kind {
        self.buffer.kind()
    }

    pub fn device(&self) -> Device {
        self.buffer.device()
    }

    /// A copy of the current values as one [P] tensor (w⁰ right after construction).
    pub fn values(&self) -> Tensor {
        self.buffer.copy()
    }

    /// The shared buffer itself: writing it changes the model's variables.
    pub fn buffer(&self) -> &Tensor {
        &self.buffer
    }

    /// Sets the model's parameters to `w` ([P], any kind or device: converted) in one copy.
    pub fn load(&self, w: &Tensor) -> Result<()> {
        ensure!(
            w.size() == [self.numel()],
            "flat parameters: expected a [{}] tensor, got {:?}",
            self.numel(),
            w.size()
        );
        tch::no_grad(|| self.buffer.shallow_clone().copy_(w));
        Ok(())
    }

    /// The variables' gradients concatenated in layout order ([P], a new tensor); zeros
    /// for a variable that has no gradient yet.
    pub fn flat_grad(&self) -> Tensor {
        let grads: Vec<Tensor> = self
            .vars
            .iter()
            .map(|var| {
                let grad = var.grad();
                if grad.defined() {
                    grad.reshape([-1])
                } else {
                    Tensor::zeros([var.numel() as i64], (self.kind(), self.device()))
                }
            })
            .collect();
        tch::no_grad(|| Tensor::cat(&grads, 0))
    }

    /// The trainable variables in layout order: the inputs of a gradient taken for this
    /// model alone (`Tensor::run_backward`).
    pub fn variables(&self) -> &[Tensor] {
        &self.vars
    }

    /// The model's non-trainable state (batch-norm running statistics) as one [B] buffer
    /// that the model reads and its training-mode forward passes write; B = 0 without any.
    pub fn state(&self) -> &Tensor {
        &self.state
    }

    /// Names, shapes and offsets of the non-trainable variables in [`FlatParams::state`].
    pub fn state_layout(&self) -> &Layout {
        &self.state_layout
    }

    /// Zeroes every variable's gradient in place (those without one stay without).
    pub fn zero_grad(&self) {
        for var in &self.vars {
            var.shallow_clone().zero_grad();
        }
    }
}

/// Copies `vars` into one contiguous buffer of `kind` and re-points each at its slice
/// (`set_data`, which also gives it that kind).
fn flatten(vars: &mut [Tensor], names: Vec<String>, kind: Kind) -> (Tensor, Layout) {
    let layout = Layout::new(names.into_iter().zip(vars.iter().map(Tensor::size)));
    let buffer = tch::no_grad(|| {
        let flat: Vec<Tensor> = vars.iter().map(|v| v.detach().reshape([-1])).collect();
        Tensor::cat(&flat, 0).to_kind(kind).contiguous()
    });
    tch::no_grad(|| {
        for (var, segment) in vars.iter_mut().zip(&layout.segments) {
            var.set_data(&segment.view(&buffer));
        }
    });
    (buffer, layout)
}

/// The store's name of each trainable variable, matched by data pointer (tch keeps the
/// trainable variables in a `Vec` without names, and the names in a `HashMap`).
fn names_by_pointer(vs: &nn::VarStore, vars: &[Tensor]) -> Result<Vec<String>> {
    let mut by_ptr: HashMap<usize, Vec<String>> = HashMap::new();
    for (name, tensor) in vs.variables() {
        by_ptr
            .entry(tensor.data_ptr() as usize)
            .or_default()
            .push(name);
    }
    vars.iter()
        .enumerate()
        .map(|(i, var)| {
            let names = by_ptr.get(&(var.data_ptr() as usize));
            match names.map(Vec::as_slice) {
                Some([name]) => Ok(name.clone()),
                Some(several) => bail!(
                    "flat parameters: trainable variable #{i} {:?} shares its storage with \
                     {several:?}; cannot tell which name it has",
                    var.size()
                ),
                None => bail!("flat parameters: trainable variable #{i} has no name in the store"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::mlp::linear;
    use tch::nn::{Module, ModuleT};

    fn two_layers(kind: Kind) -> (nn::VarStore, nn::Sequential) {
        let mut vs = nn::VarStore::new(Device::Cpu);
        vs.set_kind(kind);
        let root = vs.root();
        let net = crate::models::seeded(7, || {
            nn::seq()
                .add(linear(&(&root / "fc1"), 3, 4))
                .add_fn(|x| x.tanh())
                .add(linear(&(&root / "fc2"), 4, 2))
        });
        (vs, net)
    }

    /// Random inputs without disturbing concurrent seeded constructions.
    fn randn(shape: [i64; 2], kind: Kind) -> Tensor {
        crate::models::seeded(1, || Tensor::randn(shape, (kind, Device::Cpu)))
    }

    #[test]
    fn layout_follows_creation_order_and_counts_every_parameter() {
        let (vs, _net) = two_layers(Kind::Double);
        let flat = FlatParams::new(&vs).unwrap();
        let names: Vec<_> = flat
            .layout()
            .segments
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
        assert_eq!(flat.layout().segments[2].shape, vec![2, 4]);
        assert_eq!(flat.numel(), 3 * 4 + 4 + 4 * 2 + 2);
        assert_eq!(flat.values().size(), vec![flat.numel()]);
        assert_eq!(flat.kind(), Kind::Double);

        // tch's own nn::linear creates the bias before the weight.
        let vs = nn::VarStore::new(Device::Cpu);
        let _layer = crate::models::seeded(0, || nn::linear(vs.root(), 3, 4, Default::default()));
        let flat = FlatParams::new(&vs).unwrap();
        let names: Vec<_> = flat
            .layout()
            .segments
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["bias", "weight"]);
    }

    #[test]
    fn initial_values_are_kept_and_the_buffer_is_shared() {
        let (vs, net) = two_layers(Kind::Float);
        let x = randn([5, 3], Kind::Float);
        let before = net.forward(&x);
        let flat = FlatParams::new(&vs).unwrap();
        // Same values after the move into the buffer.
        assert!(net.forward(&x).allclose(&before, 0.0, 0.0, false));
        // Writing the buffer changes the variables.
        tch::no_grad(|| {
            let _ = flat.buffer().shallow_clone().narrow(0, 12, 4).fill_(3.0);
        });
        let bias = &vs.variables()["fc1.bias"];
        assert_eq!(Vec::<f32>::try_from(bias).unwrap(), vec![3.0; 4]);
        assert_eq!(
            bias.data_ptr(),
            flat.layout().segments[1].view(flat.buffer()).data_ptr()
        );
    }

    #[test]
    fn load_changes_the_forward_pass() {
        let (vs, net) = two_layers(Kind::Double);
        let flat = FlatParams::new(&vs).unwrap();
        let w = Tensor::zeros([flat.numel()], (Kind::Double, Device::Cpu));
        // Only fc2.bias non-zero: the output is that bias for every input.
        w.narrow(0, flat.numel() - 2, 2)
            .copy_(&Tensor::from_slice(&[1.5, -2.0]));
        flat.load(&w).unwrap();
        let out = net.forward_t(&randn([3, 3], Kind::Double), false);
        assert_eq!(
            Vec::<f64>::try_from(out.reshape([-1])).unwrap(),
            [1.5, -2.0].repeat(3)
        );
        assert!(flat.values().equal(&w));
        assert!(flat
            .load(&Tensor::zeros([3], (Kind::Double, Device::Cpu)))
            .is_err());
    }

    #[test]
    fn flat_grad_concatenates_the_variables_grads() {
        let (vs, net) = two_layers(Kind::Double);
        let flat = FlatParams::new(&vs).unwrap();
        // Before any backward: zeros.
        assert_eq!(
            flat.flat_grad().abs().sum(Kind::Double).double_value(&[]),
            0.0
        );
        let x = randn([6, 3], Kind::Double);
        net.forward(&x).square().sum(Kind::Double).backward();
        let g = flat.flat_grad();
        let vars = vs.variables();
        for s in &flat.layout().segments {
            assert!(s.view(&g).equal(&vars[&s.name].grad()), "{}", s.name);
        }
        assert!(g.abs().sum(Kind::Double).double_value(&[]) > 0.0);
        flat.zero_grad();
        assert_eq!(
            flat.flat_grad().abs().sum(Kind::Double).double_value(&[]),
            0.0
        );
        // Gradients accumulate into the (zeroed) grads again.
        net.forward(&x).square().sum(Kind::Double).backward();
        assert!(flat.flat_grad().allclose(&g, 1e-12, 1e-12, false));
    }

    #[test]
    fn mixed_kinds_are_rejected() {
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root();
        let _a = root.var("a", &[2], nn::Init::Const(1.0)); // constant init: no RNG
        let mut b = root.var("b", &[2], nn::Init::Const(1.0));
        tch::no_grad(|| b.set_data(&b.to_kind(Kind::Double)));
        let err = FlatParams::new(&vs).unwrap_err().to_string();
        assert!(err.contains("one kind and device"), "{err}");
    }
}
