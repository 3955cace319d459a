//! Model definitions and the flat parameter buffer that lets the optimizers see a model
//! as one tensor (DESIGN-NOTES "Parameters as flat buffers"); nothing task-specific.
pub mod actor_critic;
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
pub mod resnet_cifar;
pub mod simple_cnn;
pub mod vgg;
pub mod vit;

pub use flat::FlatParams;
pub use mlp::{Activation, Mlp};

use std::sync::Mutex;

/// Serialises seeded model construction across threads.
static SEEDED: Mutex<()> = Mutex::new(());

/// The seed of the dropout masks of one forward pass: the run's `seed`, the training
/// `step` (batches drawn so far; 0 where `seed` is already the batch's own, as
/// classification's), the `worker` and the micro-batch `chunk` within it (its index, or its
/// first row).
pub fn dropout_seed(seed: u64, step: u64, worker: usize, chunk: usize) -> u64 {
    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add((step << 24) ^ ((worker as u64) << 12) ^ chunk as u64)
}

/// Runs `f` (a model's construction, or a training forward pass that draws dropout masks)
/// right after seeding torch's global generator with `seed`, holding a process-wide lock:
/// concurrent runs (parallel sweep points, tests) each get their own seed's draws, and a
/// resumed run draws what an uninterrupted one draws. Torch has one global generator, so
/// every draw goes through here: one drawing without the lock could land inside another's.
pub fn seeded<T>(seed: u64, f: impl FnOnce() -> T) -> T {
    let _guard = SEEDED.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(seed as i64);
    f()
}
