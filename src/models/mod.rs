//! Model definitions and the flat parameter buffer that lets the optimizers see a model
//! as one tensor (DESIGN-NOTES "Parameters as flat buffers"); nothing task-specific.
pub mod alexnet;
pub mod awd_lstm;
pub mod bert;
pub mod catalog;
pub mod conv;
pub mod dcgan;
pub mod densenet;
pub mod fcnet;
pub mod fed_lamb;
pub mod flat;
pub mod generate;
pub mod gpt;
pub mod gpt_weights;
pub mod inception;
pub mod kv_cache;
pub mod layers;
pub mod mlp;
pub mod precision;
pub mod pretrained;
pub mod resnet;
pub mod simple_cnn;
pub mod vgg;
pub mod vit;

pub use flat::FlatParams;
pub use mlp::{Activation, Mlp};

use std::sync::Mutex;

/// Serialises seeded model construction across threads.
static SEEDED: Mutex<()> = Mutex::new(());

/// Runs `f` (a model's construction) right after seeding torch's global generator with
/// `seed`, holding a process-wide lock: concurrent constructions (parallel sweep points,
/// tests) each get their own seed's initialisation. Torch has one global generator, so
/// anything else drawing from it meanwhile without this lock (dropout in a concurrent
/// run) can still shift the draws.
pub fn seeded<T>(seed: u64, f: impl FnOnce() -> T) -> T {
    let _guard = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed as i64);
    f()
}
