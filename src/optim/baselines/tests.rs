//! The classic adapter: size-weighted means over workers, steps once per iteration.
use super::sgd;
use crate::optim::hyper::Hypers;
use crate::optim::layout::Layout;
use crate::optim::registry::Context;
use crate::schedule::Schedule;
use crate::tasks::Local;
use tch::{Kind, Tensor};

fn sgd(lr: f64) -> Box<dyn crate::optim::Optimizer> {
    let w0 = Tensor::from_slice(&[1.0f64, -1.0]);
    let h = Hypers::resolve(
        "sgd",
        sgd::ENTRY.hypers,
        &format!("lr = {lr}").parse().unwrap(),
    )
    .unwrap();
    (sgd::ENTRY.build)(
        &h,
        &Context {
            w0: &w0,
            layout: &Layout::vector(2),
            alphas: &[0.5, 0.5],
            schedule: &Schedule::default(),
            iterations: 1,
            iterations_per_epoch: 1,
        },
    )
    .unwrap()
}

#[test]
fn workers_gradients_are_weighted_by_their_samples() {
    let mut opt = sgd(0.5);
    opt.begin_iteration();
    for (g, samples) in [([1.0, 0.0], 1), ([0.0, 3.0], 3)] {
        let local = Local {
            grad: Tensor::from_slice(&g),
            samples,
            hessian: None,
        };
        opt.local_update(0, local).unwrap();
    }
    opt.end_iteration();
    // mean gradient (1·(1, 0) + 3·(0, 3))/4 = (0.25, 2.25)
    let w = Vec::<f64>::try_from(opt.params()).unwrap();
    assert_eq!(w, vec![1.0 - 0.125, -1.0 - 1.125]);
    assert_eq!(opt.params().kind(), Kind::Double);
}
