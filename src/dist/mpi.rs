//! The MPI backend of [`Comm`]: OpenMPI's world communicator through rsmpi.
//!
//! MPI's default error handler is kept: an MPI error aborts the job, and mpirun ends every
//! rank when one of them dies.
use super::Comm;
use anyhow::{bail, Context, Result};
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Count;
use std::sync::Mutex;

/// MPI messages count elements in an i32: longer buffers go in pieces of this many.
const PIECE: usize = 1 << 28;

pub struct Mpi {
    world: SimpleCommunicator,
    /// Rank 0's receive buffers of the reductions, kept between calls: a fresh one per sum
    /// costs its page faults every iteration (rsmpi has no MPI_IN_PLACE).
    total_f64: Mutex<Vec<f64>>,
    total_f32: Mutex<Vec<f32>>,
}

// SAFETY: MPI is started at `Threading::Single` and only the main thread of `pisa run` calls
// it ([`Comm`]'s contract; `pisa sweep` refuses to run under several ranks).
unsafe impl Send for Mpi {}
unsafe impl Sync for Mpi {}

impl Mpi {
    /// Starts MPI; the universe it returns finalises MPI when dropped.
    pub fn start() -> Result<(Self, Universe)> {
        let universe = mpi::initialize().context("MPI could not be started")?;
        let world = universe.world();
        if world.size() < 2 {
            bail!("mpirun said several ranks, but MPI's world holds one");
        }
        let comm = Self {
            world,
            total_f64: Mutex::new(vec![]),
            total_f32: Mutex::new(vec![]),
        };
        Ok((comm, universe))
    }

    /// Σ of `values` over the ranks, at rank 0, then broadcast (the same bits everywhere).
    fn sum<T: Equivalence + Copy + Default>(&self, values: &mut [T], total: &Mutex<Vec<T>>) {
        let root = self.world.process_at_rank(0);
        let mut total = total.lock().expect("one thread calls MPI");
        for piece in values.chunks_mut(PIECE) {
            if self.world.rank() == 0 {
                total.resize(piece.len(), T::default());
                root.reduce_into_root(&piece[..], &mut total[..], SystemOperation::sum());
                piece.copy_from_slice(&total);
            } else {
                root.reduce_into(&piece[..], SystemOperation::sum());
            }
            root.broadcast_into(piece);
        }
    }
}

impl Comm for Mpi {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn sum_f64(&self, values: &mut [f64]) {
        self.sum(values, &self.total_f64)
    }

    fn sum_f32(&self, values: &mut [f32]) {
        self.sum(values, &self.total_f32)
    }

    fn broadcast(&self, bytes: &mut Vec<u8>) {
        let root = self.world.process_at_rank(0);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        for piece in bytes.chunks_mut(PIECE) {
            root.broadcast_into(piece);
        }
    }

    fn broadcast_flag(&self, flag: bool) -> bool {
        let mut byte = flag as u8;
        self.world.process_at_rank(0).broadcast_into(&mut byte);
        byte != 0
    }

    fn gather(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let root = self.world.process_at_rank(0);
        let is_root = self.world.rank() == 0;
        let len = bytes.len() as u64;
        let mut lens = vec![0u64; self.size()];
        if is_root {
            root.gather_into_root(&len, &mut lens[..]);
        } else {
            root.gather_into(&len);
        }
        let mut pieces = lens
            .iter()
            .map(|&l| (l as usize).div_ceil(PIECE))
            .max()
            .unwrap_or(0) as u64;
        root.broadcast_into(&mut pieces);
        // Piece k of bytes of length l (empty once they ended).
        let range = |k: usize, l: usize| (k * PIECE).min(l)..((k + 1) * PIECE).min(l);
        let mut out: Vec<Vec<u8>> = lens.iter().map(|&l| vec![0; l as usize]).collect();
        for k in 0..pieces as usize {
            let mine = &bytes[range(k, bytes.len())];
            if !is_root {
                root.gather_varcount_into(mine);
                continue;
            }
            let counts: Vec<Count> = out
                .iter()
                .map(|b| range(k, b.len()).len() as Count)
                .collect();
            let displs: Vec<Count> = counts
                .iter()
                .scan(0, |at, &c| {
                    let d = *at;
                    *at += c;
                    Some(d)
                })
                .collect();
            let mut buf = vec![0u8; counts.iter().map(|&c| c as usize).sum()];
            {
                let mut partition = PartitionMut::new(&mut buf[..], &counts[..], &displs[..]);
                root.gather_varcount_into_root(mine, &mut partition);
            }
            for (rank, b) in out.iter_mut().enumerate() {
                let r = range(k, b.len());
                let d = displs[rank] as usize;
                b[r.clone()].copy_from_slice(&buf[d..d + r.len()]);
            }
        }
        if is_root {
            out
        } else {
            vec![]
        }
    }

    fn shift(&self, send: &[u8], to: usize, from: usize, recv: &mut [u8]) {
        let (to, from) = (
            self.world.process_at_rank(to as i32),
            self.world.process_at_rank(from as i32),
        );
        for (out, into) in send.chunks(PIECE).zip(recv.chunks_mut(PIECE)) {
            mpi::point_to_point::send_receive_into(out, &to, into, &from);
        }
    }

    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}
