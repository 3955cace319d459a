//! The gradient penalty of WGAN-GP, as `calc_gradient_penalty` in the PISA repository's
//! `WGAN/WGAN_GP/main_SPiAM.py` computes it (Gulrajani et al., 2017):
//!
//! x̂ = ε·x + (1 − ε)·x̃ per sample, a new leaf built from the detached real images x and
//! fakes x̃; g = ∇_x̂ Σ_n D(x̂)_n (the script's `grad_outputs` of ones), viewed [N, −1];
//! penalty = λ · mean_n (‖g_n‖₂ − 1)², with λ = 10 ([`LAMBDA`]).
//!
//! g is computed with `create_graph`, so the penalty's own backward pass (double
//! backward) reaches the critic's parameters; it reaches nothing else. A parameter that
//! does not act on ∇D (the WGAN-GP critic's linear bias) gets no gradient from it.
//!
//! The script draws ε = `torch.rand(N, 1)` inside the function, after the critic's loss;
//! here the caller draws it and passes it in.
use anyhow::{ensure, Result};
use tch::Tensor;

/// The script's `LAMBDA`.
pub const LAMBDA: f64 = 10.0;

/// The penalty (a 0-d tensor, differentiable in the critic's parameters) of `critic` —
/// called once, on x̂, in whatever mode the caller chose (the script: training) — for real
/// images `real` and fakes `fake` of one shape [N, ...] and `epsilon`, N values in [0, 1]
/// of any shape ([N], [N, 1]), all of one kind and device.
pub fn gradient_penalty(
    critic: impl FnOnce(&Tensor) -> Result<Tensor>,
    real: &Tensor,
    fake: &Tensor,
    epsilon: &Tensor,
    lambda: f64,
) -> Result<Tensor> {
    let shape = real.size();
    ensure!(
        shape.len() >= 2 && shape[0] >= 1,
        "gradient penalty: expected a batch [N, ...] of real samples, got {shape:?}"
    );
    ensure!(
        fake.size() == shape,
        "gradient penalty: the fakes are {:?}, the real samples {shape:?}",
        fake.size()
    );
    let n = shape[0];
    ensure!(
        epsilon.numel() == n as usize,
        "gradient penalty: {} interpolation weights for {n} samples",
        epsilon.numel()
    );
    for (what, t) in [("fakes", fake), ("interpolation weights", epsilon)] {
        ensure!(
            t.kind() == real.kind() && t.device() == real.device(),
            "gradient penalty: the {what} are {:?} on {:?}, the real samples {:?} on {:?}",
            t.kind(),
            t.device(),
            real.kind(),
            real.device()
        );
    }
    // alpha.view(-1, 1, 1, 1)
    let mut view = vec![1; shape.len()];
    view[0] = n;
    let eps = epsilon.detach().reshape(view);
    let mixed: Tensor = &eps * real.detach() + (1.0 - &eps) * fake.detach();
    let x_hat = mixed.detach().set_requires_grad(true);
    let out = critic(&x_hat)?;
    ensure!(
        out.size() == [n],
        "gradient penalty: the critic gave {:?} for {n} samples; expected [{n}]",
        out.size()
    );
    let grads = Tensor::f_run_backward(&[out.sum(out.kind())], &[&x_hat], true, true)?;
    let norms = grads[0].reshape([n, -1]).norm_scalaropt_dim(2, [1], false);
    Ok((norms - 1.0).square().mean(real.kind()) * lambda)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    const F64: (Kind, Device) = (Kind::Double, Device::Cpu);

    /// D(x)_n = Σ_j a_j x_nj + b: ∇D = a for every sample, so the penalty is
    /// λ(‖a‖ − 1)², its gradient 2λ(‖a‖ − 1)·a/‖a‖ in a and 0 in b.
    #[test]
    fn linear_critic_has_the_closed_form_penalty_and_gradient() {
        let a = Tensor::from_slice(&[0.3, -1.2, 0.5, 2.0]).set_requires_grad(true);
        let b = Tensor::from_slice(&[0.7]).set_requires_grad(true);
        let real = Tensor::arange(12, F64).reshape([3, 2, 2]) / 5.0;
        let fake = -real.sin();
        let eps = Tensor::from_slice(&[0.1, 0.5, 0.8]).reshape([3, 1]);
        let critic = |x: &Tensor| Ok(x.reshape([3, 4]).matmul(&a) + &b);
        let penalty = gradient_penalty(critic, &real, &fake, &eps, LAMBDA).unwrap();
        let norm = (0.09f64 + 1.44 + 0.25 + 4.0).sqrt();
        let value = penalty.double_value(&[]);
        assert!(
            (value - LAMBDA * (norm - 1.0).powi(2)).abs() < 1e-12,
            "{value}"
        );

        penalty.backward();
        let grad = Vec::<f64>::try_from(a.grad()).unwrap();
        for (g, a) in grad.iter().zip([0.3, -1.2, 0.5, 2.0]) {
            let expected = 2.0 * LAMBDA * (norm - 1.0) * a / norm;
            assert!((g - expected).abs() < 1e-12, "{g} vs {expected}");
        }
        // The bias does not act on ∇D: no gradient reaches it.
        assert!(!b.grad().defined());
    }

    #[test]
    fn the_critic_sees_the_interpolates_as_a_new_leaf() {
        let real = Tensor::ones([2, 3], F64).set_requires_grad(true);
        let fake = Tensor::zeros([2, 3], F64).set_requires_grad(true);
        let eps = Tensor::from_slice(&[0.25, 1.0]);
        let critic = |x: &Tensor| {
            assert!(x.is_leaf() && x.requires_grad());
            let rows = Vec::<f64>::try_from(x.detach().reshape([-1])).unwrap();
            assert_eq!(rows, [0.25, 0.25, 0.25, 1.0, 1.0, 1.0]);
            Ok(x.square().sum_dim_intlist(1, false, Kind::Double))
        };
        let penalty = gradient_penalty(critic, &real, &fake, &eps, 1.0).unwrap();
        penalty.backward();
        // Nothing flows back into the real or fake samples.
        assert!(!real.grad().defined() && !fake.grad().defined());
    }

    #[test]
    fn mismatched_inputs_are_errors() {
        let x = Tensor::zeros([3, 2], F64);
        let eps = Tensor::zeros([3], F64);
        let sum = |x: &Tensor| Ok(x.sum_dim_intlist(1, false, Kind::Double));
        let err = |r: Result<Tensor>| r.unwrap_err().to_string();
        let e = err(gradient_penalty(
            sum,
            &x,
            &Tensor::zeros([3, 3], F64),
            &eps,
            1.0,
        ));
        assert!(e.contains("fakes"), "{e}");
        let e = err(gradient_penalty(sum, &x, &x, &Tensor::zeros([2], F64), 1.0));
        assert!(e.contains("2 interpolation weights for 3"), "{e}");
        let f32_eps = Tensor::zeros([3], (Kind::Float, Device::Cpu));
        assert!(gradient_penalty(sum, &x, &x, &f32_eps, 1.0).is_err());
        let scalar = |x: &Tensor| Ok(x.sum(Kind::Double));
        let e = err(gradient_penalty(scalar, &x, &x, &eps, 1.0));
        assert!(e.contains("expected [3]"), "{e}");
        assert!(gradient_penalty(sum, &Tensor::zeros([3], F64), &eps, &eps, 1.0).is_err());
    }
}
