//! The MPI backend of [`Comm`]: OpenMPI's world communicator through rsmpi.
//!
//! MPI's default error handler is kept: an MPI error aborts the job, and mpirun ends every
//! rank when one of them dies.
use super::{Comm, Window};
use anyhow::{bail, Context, Result};
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::ffi;
use mpi::raw::AsRaw;
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

    fn barrier(&self) {
        self.world.barrier()
    }

    fn window(&self, len: usize) -> Result<Box<dyn Window>> {
        let mut base: *mut f64 = std::ptr::null_mut();
        let mut win = std::mem::MaybeUninit::<ffi::MPI_Win>::uninit();
        // SAFETY: MPI_Win_allocate writes the base address of `len` f64 it allocated into
        // `base` and the window's handle into `win`; collective over the world, as every
        // rank calls this.
        let code = unsafe {
            ffi::MPI_Win_allocate(
                (len * std::mem::size_of::<f64>()) as ffi::MPI_Aint,
                std::mem::size_of::<f64>() as i32,
                ffi::RSMPI_INFO_NULL,
                self.world.as_raw(),
                &mut base as *mut *mut f64 as *mut std::ffi::c_void,
                win.as_mut_ptr(),
            )
        };
        if code != 0 {
            bail!("MPI_Win_allocate of {len} f64 failed (error {code})");
        }
        // SAFETY: MPI_Win_allocate succeeded, so `win` holds a window and `base` its `len`
        // f64, which nobody accesses before the barrier below.
        let window = unsafe {
            std::slice::from_raw_parts_mut(base, len).fill(0.0);
            MpiWindow(win.assume_init())
        };
        self.world.barrier();
        Ok(Box::new(window))
    }
}

/// An MPI window (`MPI_Win_allocate`: on one machine OpenMPI puts it in shared memory, where
/// locks, gets and puts need nothing of the target rank). Freed when dropped (collective).
struct MpiWindow(ffi::MPI_Win);

impl MpiWindow {
    /// Checks an MPI return code (MPI's default handler aborts before a failure returns).
    fn check(code: i32, what: &str) {
        assert_eq!(code, 0, "{what} failed (error {code})");
    }

    /// A get or a put of `count` f64 at `offset` of `rank`'s memory, then a flush that
    /// completes it at both ends.
    ///
    /// # Safety
    /// `origin` points at `count` f64 that live (and, for a get, are not read) until this
    /// returns; an epoch on `rank` is open and the target range lies in its memory.
    unsafe fn transfer(&self, rank: usize, offset: usize, count: usize, origin: Origin) {
        let (target, disp, n, t) = (
            rank as i32,
            offset as ffi::MPI_Aint,
            count as i32,
            ffi::RSMPI_DOUBLE,
        );
        let code = match origin {
            Origin::Get(o) => ffi::MPI_Get(o, n, t, target, disp, n, t, self.0),
            Origin::Put(o) => ffi::MPI_Put(o, n, t, target, disp, n, t, self.0),
        };
        Self::check(code, "MPI_Get/MPI_Put");
        Self::check(ffi::MPI_Win_flush(target, self.0), "MPI_Win_flush");
    }
}

impl Window for MpiWindow {
    fn lock(&self, rank: usize, exclusive: bool) {
        let kind = match exclusive {
            true => ffi::MPI_LOCK_EXCLUSIVE,
            false => ffi::MPI_LOCK_SHARED,
        };
        // SAFETY: a valid window; rank is a rank of its communicator.
        Self::check(
            unsafe { ffi::MPI_Win_lock(kind as i32, rank as i32, 0, self.0) },
            "MPI_Win_lock",
        )
    }

    fn unlock(&self, rank: usize) {
        // SAFETY: as for lock; an epoch on `rank` is open.
        Self::check(
            unsafe { ffi::MPI_Win_unlock(rank as i32, self.0) },
            "MPI_Win_unlock",
        )
    }

    fn get(&self, rank: usize, offset: usize, out: &mut [f64]) {
        let origin = Origin::Get(out.as_mut_ptr() as *mut std::ffi::c_void);
        // SAFETY: `out` holds its length of f64 and stays borrowed until the flush completes
        // the get; the target range lies in the window (the caller's offsets).
        unsafe { self.transfer(rank, offset, out.len(), origin) }
    }

    fn put(&self, rank: usize, offset: usize, values: &[f64]) {
        let origin = Origin::Put(values.as_ptr() as *const std::ffi::c_void);
        // SAFETY: as for get, the origin read until the flush completes the put.
        unsafe { self.transfer(rank, offset, values.len(), origin) }
    }
}

/// The local end of a get or a put.
enum Origin {
    Get(*mut std::ffi::c_void),
    Put(*const std::ffi::c_void),
}

impl Drop for MpiWindow {
    fn drop(&mut self) {
        // SAFETY: a valid window, freed once; every rank drops its window in the same
        // place (MPI_Win_free is collective).
        unsafe { ffi::MPI_Win_free(&mut self.0) };
    }
}
