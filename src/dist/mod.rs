//! Ranks: the processes one run's m workers are split over (`mpirun -np R pisa run SPEC`).
//!
//! [`Comm`] is every collective operation the loop and the optimizers use. One process is
//! [`Single`] (today's behaviour: every collective is the identity); under `mpirun` with the
//! `mpi` Cargo feature, [`mpi::Mpi`] over OpenMPI. Rank r holds workers
//! `r·m/R .. (r+1)·m/R` ([`workers`]): it computes only their gradients and keeps only their
//! state, its per-worker buffers [m/R, P] ([`crate::optim::registry::Context::rows`]), so a
//! local sum over its rows is the rank's partial sum.
//!
//! Summation order: in one process the workers' terms are added in worker order. Under R
//! ranks each rank adds its own workers' terms in worker order, MPI adds the R partial sums
//! at rank 0 ([`Comm::sum`]: a reduction to rank 0, then its broadcast), so every rank holds
//! the same bits and the run differs from the one-process run by rounding only.
pub mod launch;
#[cfg(feature = "mpi")]
pub mod mpi;
mod state;
mod window;

pub use state::{gather_state, own_state};
pub use window::Window;

use anyhow::{bail, Result};
use std::ops::Range;
use std::sync::OnceLock;
use tch::{Device, Kind, Tensor};

/// The collective operations of one run's ranks. Only the thread that started MPI calls
/// them (the `pisa run` process's main thread).
pub trait Comm: Send + Sync {
    fn rank(&self) -> usize;
    fn size(&self) -> usize;
    /// Σ over the ranks of `values`, in place, the same bits on every rank.
    fn sum_f64(&self, values: &mut [f64]);
    fn sum_f32(&self, values: &mut [f32]);
    /// Rank 0's bytes, on every rank.
    fn broadcast(&self, bytes: &mut Vec<u8>);
    /// Rank 0's flag, on every rank (one byte: the loop asks every iteration).
    fn broadcast_flag(&self, flag: bool) -> bool;
    /// At rank 0, every rank's bytes in rank order (its own first); empty elsewhere.
    fn gather(&self, bytes: &[u8]) -> Vec<Vec<u8>>;
    /// Sends `send` to rank `to` while receiving `recv.len()` bytes from rank `from`
    /// (MPI_Sendrecv): a shift along a ring of ranks, or a pair's exchange when to = from.
    fn shift(&self, send: &[u8], to: usize, from: usize, recv: &mut [u8]);
    /// Ends every rank with exit code `code` (an error on one rank; the others may be
    /// waiting in a collective).
    fn abort(&self, code: i32) -> !;
    /// Waits until every rank is here.
    fn barrier(&self);
    /// Seconds on the system clock, which the ranks of one machine share (across machines
    /// it needs their clocks synchronised; OpenMPI's MPI_Wtime counts from each process's
    /// start).
    fn wtime(&self) -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }
    /// A [`Window`] of `len` f64 of this rank's, zeroed (collective: every rank calls it,
    /// each with its own `len`).
    fn window(&self, len: usize) -> Result<Box<dyn Window>>;
}

/// One process: every collective is the identity.
pub struct Single;

impl Comm for Single {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum_f64(&self, _: &mut [f64]) {}
    fn sum_f32(&self, _: &mut [f32]) {}
    fn broadcast(&self, _: &mut Vec<u8>) {}
    fn broadcast_flag(&self, flag: bool) -> bool {
        flag
    }
    fn gather(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        vec![bytes.to_vec()]
    }
    fn shift(&self, send: &[u8], _: usize, _: usize, recv: &mut [u8]) {
        recv.copy_from_slice(send)
    }
    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
    fn barrier(&self) {}
    fn window(&self, _: usize) -> Result<Box<dyn Window>> {
        bail!("one-sided windows are shared between ranks: start several with mpirun")
    }
}

static WORLD: OnceLock<Box<dyn Comm>> = OnceLock::new();

thread_local! {
    /// Inside [`alone`]: this rank's work that involves no other rank.
    static ALONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The run's ranks: MPI's world once [`init`] started it, else [`Single`] (also inside
/// [`alone`]).
pub fn world() -> &'static dyn Comm {
    match ALONE.get() {
        true => &Single,
        false => WORLD.get().map_or(&Single, |c| c.as_ref()),
    }
}

/// `f` as if in one process: its collectives are the identity. For work that is a rank's
/// own, such as the optimizer of one protocol node, whose sums are over its one worker.
pub fn alone<T>(f: impl FnOnce() -> T) -> T {
    let outer = ALONE.replace(true);
    let out = f();
    ALONE.set(outer);
    out
}

/// Whether this process is one of several ranks.
pub fn distributed() -> bool {
    world().size() > 1
}

/// The rank count mpirun gave this process (OpenMPI's, or a PMI launcher's, environment), if
/// it was started by one.
fn launched_ranks() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .and_then(|v| v.parse().ok())
}

/// What keeps MPI running: dropping it finalises MPI (before the process exits).
pub struct Guard {
    #[cfg(feature = "mpi")]
    _universe: Option<::mpi::environment::Universe>,
}

/// Starts MPI when mpirun launched this process with more than one rank; errors when this
/// binary was built without it.
pub fn init() -> Result<Guard> {
    let ranks = launched_ranks().unwrap_or(1);
    if ranks <= 1 {
        return Ok(Guard {
            #[cfg(feature = "mpi")]
            _universe: None,
        });
    }
    #[cfg(feature = "mpi")]
    {
        let (comm, universe) = mpi::Mpi::start()?;
        if WORLD.set(Box::new(comm)).is_err() {
            bail!("MPI was started twice");
        }
        Ok(Guard {
            _universe: Some(universe),
        })
    }
    #[cfg(not(feature = "mpi"))]
    bail!(
        "mpirun started this process as one of {ranks} ranks, but this pisa was built without \
         MPI: install OpenMPI (apt-get install libopenmpi-dev openmpi-bin libclang-dev) and \
         build with `cargo build --release --features mpi`"
    )
}

/// Rank `rank` of `ranks`'s workers among m: a contiguous block of m/R.
pub fn block(m: usize, rank: usize, ranks: usize) -> Range<usize> {
    let share = m / ranks;
    rank * share..(rank + 1) * share
}

/// This rank's workers among m.
pub fn workers(m: usize) -> Range<usize> {
    let c = world();
    block(m, c.rank(), c.size())
}

/// Refuses m workers that do not split evenly over the ranks.
pub fn check_split(m: usize) -> Result<()> {
    let ranks = world().size();
    if !m.is_multiple_of(ranks) {
        bail!(
            "train.workers = {m} cannot be split over {ranks} ranks: the workers must be a \
             multiple of the rank count (mpirun -np)"
        );
    }
    Ok(())
}

/// For a task whose workers' passes are chained, each starting from the state the previous
/// one left (the AWD-LSTM's hidden state, the GAN's batch-norm statistics): the other ranks'
/// workers whose passes this rank replays, without a gradient, around its own block, so
/// that every rank holds the state each of its passes starts from and the one the last
/// pass leaves. In one process there is nothing to replay.
#[derive(Default)]
pub struct Chain {
    /// The (iteration, turn) whose passes before this rank's block were replayed.
    replayed: Option<(usize, usize)>,
}

impl Chain {
    /// The workers to replay before `worker`'s pass of (iteration, turn) among m: the other
    /// ranks' before this rank's block, when `worker` is its first; none otherwise. A block
    /// is replayed once a turn, so each worker's gradient must be asked for once (a
    /// federated algorithm's local steps ask again: an error).
    pub fn before(
        &mut self,
        worker: usize,
        m: usize,
        turn: (usize, usize),
    ) -> Result<Range<usize>> {
        let mine = workers(m);
        if worker != mine.start || !distributed() {
            return Ok(0..0);
        }
        if self.replayed == Some(turn) {
            bail!(
                "over ranks, worker {worker}'s gradient was asked for twice in iteration {}: \
                 the workers' passes are chained (each starts from the state the previous one \
                 left), which holds for one gradient per worker a turn, not for a federated \
                 algorithm's local steps; run it in one process",
                turn.0
            );
        }
        self.replayed = Some(turn);
        Ok(0..mine.start)
    }

    /// The workers to replay after `worker`'s pass among m: the other ranks' after this
    /// rank's block, when `worker` is its last; none otherwise.
    pub fn after(&self, worker: usize, m: usize) -> Range<usize> {
        let mine = workers(m);
        match worker + 1 == mine.end {
            true => mine.end..m,
            false => 0..0,
        }
    }
}

/// The device of this rank for `train.device` = `given` (parsed: `device`): "cuda" over
/// ranks is GPU rank mod count, so that the ranks of one machine share its GPUs evenly;
/// "cuda:N" stays N, and one process keeps what the spec says.
pub fn device(device: Device, given: &str) -> Device {
    match device {
        Device::Cuda(_) if given == "cuda" && distributed() => {
            let count = tch::Cuda::device_count().max(1) as usize;
            Device::Cuda(world().rank() % count)
        }
        d => d,
    }
}

/// Σ over the ranks of `t` (f64 or f32, on any device), in place. A CUDA tensor is staged
/// through host memory (Debian's OpenMPI is not CUDA-aware).
pub fn sum(t: &Tensor) {
    let comm = world();
    if comm.size() == 1 {
        return;
    }
    let mut host = t.to_device(Device::Cpu).contiguous();
    let n = host.numel();
    match host.kind() {
        Kind::Double => comm.sum_f64(slice_mut(&mut host, n)),
        Kind::Float => comm.sum_f32(slice_mut(&mut host, n)),
        kind => panic!("dist::sum of a {kind:?} tensor"),
    }
    tch::no_grad(|| t.shallow_clone().copy_(&host));
}

/// The tensor like `t` that rank `from` sends while this rank sends `t` to rank `to`
/// ([`Comm::shift`]; through host memory for a CUDA tensor).
pub fn shift(t: &Tensor, to: usize, from: usize) -> Tensor {
    let mut send = t.to_device(Device::Cpu).contiguous();
    let mut recv = send.empty_like();
    let bytes = send.numel() * send.kind().elt_size_in_bytes();
    let into = slice_mut::<u8>(&mut recv, bytes);
    world().shift(slice_mut::<u8>(&mut send, bytes), to, from, into);
    recv.to_device(t.device())
}

/// Σ over the ranks of one number.
pub fn sum_scalar(v: f64) -> f64 {
    let mut values = [v];
    world().sum_f64(&mut values);
    values[0]
}

/// Rank 0's flag, on every rank: decisions only rank 0 makes (a metric that is not finite,
/// a signal) taken by all, so that no rank waits in a collective the others left.
pub fn agree(flag: bool) -> bool {
    world().broadcast_flag(flag)
}

/// The data of a contiguous CPU tensor of element type T, `n` elements.
fn slice_mut<T>(t: &mut Tensor, n: usize) -> &mut [T] {
    assert!(t.is_contiguous() && t.device() == Device::Cpu);
    // SAFETY: a contiguous CPU tensor of n elements of T, borrowed mutably for the slice's
    // life; tch exposes its storage only through this pointer.
    unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut T, n) }
}

#[cfg(test)]
mod tests;
