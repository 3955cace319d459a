//! NIID-Bench's `FcNet` for its tabular data sets, here Adult (a9a): an [`Mlp`]
//! 123-32-16-8-2 with relu (4,650 parameters: 3,968 + 528 + 136 + 18) and no dropout (NIID-Bench's default
//! `--dropout_p 0`).
//!
//! NIID-Bench initialises FcNet's layers with weights ~ N(0, 0.1²) and biases = 0.1, not
//! PyTorch's default; [`niid_bench_init`] redraws an [`Mlp`]'s variables that way.
use super::mlp::{Activation, Mlp};
use anyhow::{Context, Result};
use tch::nn;

/// NIID-Bench's hidden widths for Adult, covtype and rcv1.
pub const ADULT_HIDDEN: [i64; 3] = [32, 16, 8];

/// The Adult network: 123 features → 32 → 16 → 8 → 2 logits, relu.
pub fn adult() -> Mlp {
    Mlp::new(123, &ADULT_HIDDEN, 2, Activation::Relu)
}

/// Redraws the variables of `mlp`, built under `path`, as NIID-Bench's FcNet does:
/// every weight ~ N(0, 0.1²), every bias 0.1, layer by layer (weight then bias). Call it
/// right after [`Mlp::build`], inside the same [`crate::models::seeded`] call, so the
/// draws are reproducible.
pub fn niid_bench_init(path: &nn::Path, mlp: &Mlp) -> Result<()> {
    let layers = mlp.hidden.len() + 1;
    for l in 1..=layers {
        let layer = path / format!("fc{l}").as_str();
        let var = |name: &str| {
            layer.get(name).with_context(|| {
                format!("FcNet init: no variable fc{l}.{name}; build the Mlp under this path first")
            })
        };
        let (mut weight, mut bias) = (var("weight")?, var("bias")?);
        tch::no_grad(|| {
            weight.init(nn::Init::Randn {
                mean: 0.0,
                stdev: 0.1,
            });
            bias.init(nn::Init::Const(0.1));
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::FlatParams;
    use tch::nn::ModuleT;
    use tch::{Device, Kind, Tensor};

    #[test]
    fn adult_mlp_has_4650_parameters() {
        let mlp = adult();
        assert_eq!(
            mlp.parameter_count(),
            123 * 32 + 32 + 32 * 16 + 16 + 16 * 8 + 8 + 8 * 2 + 2
        );
        // = 3,936 + 32 + 512 + 16 + 128 + 8 + 16 + 2.
        assert_eq!(mlp.parameter_count(), 4_650);
        assert_eq!(mlp.dropout, 0.0);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = crate::models::seeded(0, || mlp.build(&vs.root()));
        assert_eq!(FlatParams::new(&vs).unwrap().numel(), 4_650);
        let x = Tensor::zeros([7, 123], (Kind::Float, Device::Cpu));
        assert_eq!(net.forward_t(&x, false).size(), vec![7, 2]);
    }

    #[test]
    fn niid_bench_init_draws_normal_weights_and_constant_biases() {
        let mlp = adult();
        let vs = nn::VarStore::new(Device::Cpu);
        let root = vs.root().sub("net");
        let draw = || {
            crate::models::seeded(3, || {
                let net = mlp.build(&root);
                niid_bench_init(&root, &mlp).unwrap();
                net
            })
        };
        let _net = draw();
        let vars = vs.variables();
        let w = &vars["net.fc1.weight"];
        let std = w.std(true).double_value(&[]);
        assert!((std - 0.1).abs() < 0.005, "{std}");
        for l in 1..=4 {
            let b = &vars[&format!("net.fc{l}.bias")];
            assert!(b.eq(0.1).all().int64_value(&[]) == 1);
        }
        // Reproducible under the same seed.
        let vs2 = nn::VarStore::new(Device::Cpu);
        let root2 = vs2.root().sub("net");
        crate::models::seeded(3, || {
            mlp.build(&root2);
            niid_bench_init(&root2, &mlp).unwrap();
        });
        assert!(vs2.variables()["net.fc1.weight"].equal(w));
        // Without the Mlp built there, it says so.
        let empty = nn::VarStore::new(Device::Cpu);
        let e = niid_bench_init(&empty.root(), &mlp)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no variable fc1.weight"), "{e}");
    }
}
