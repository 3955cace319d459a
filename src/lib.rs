//! `pisa`: reproduce and extend "Preconditioned Inexact Stochastic ADMM for Deep Models".
//! See ARCHITECTURE.md for how the modules fit together.
pub mod cli;
pub mod data;
pub mod dist;
pub mod experiment;
pub mod generate;
pub mod interrupt;
pub mod metrics;
pub mod models;
pub mod optim;
pub mod panics;
pub mod plot;
pub mod protocol;
pub mod results;
pub mod rl;
pub mod schedule;
pub mod spec;
pub mod sweep;
pub mod tasks;
pub mod train;
pub mod venv;
