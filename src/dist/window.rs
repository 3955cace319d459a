//! One-sided access to the ranks' memory (MPI's passive-target RMA): every rank exposes
//! `len` f64 of its own, which any rank reads and writes inside a lock epoch on it without
//! the owner taking part. The live protocols of [`crate::protocol::live`] keep each
//! worker's row there, so that an asynchronous pairwise average or a pull from the server
//! happens while the other worker computes.
pub trait Window {
    /// Starts an access epoch on `rank`'s memory: exclusive (no other epoch on it overlaps)
    /// or shared (others may read at the same time).
    fn lock(&self, rank: usize, exclusive: bool);
    /// Ends the epoch on `rank`: every get and put on it is complete, there and here.
    fn unlock(&self, rank: usize);
    /// `out` ← `rank`'s values from `offset`, complete on return (inside an epoch on `rank`).
    fn get(&self, rank: usize, offset: usize, out: &mut [f64]);
    /// `rank`'s values from `offset` ← `values`, complete on return (inside an epoch).
    fn put(&self, rank: usize, offset: usize, values: &[f64]);
}
