//! `pisa mixing SPEC --live` under mpirun: the protocols run for real, one worker per rank,
//! and their event logs measured by the same t_mix as the simulation.
//!
//! Each worker's row of X lives in an MPI window ([`crate::dist::Window`]); the server's row,
//! for `async-ps`, after rank 0's. A step is a sleep of an exponential duration (mean
//! `[live] step_ms`: every worker's steps a Poisson process, the simulation's model, but
//! with the machine's real scheduling, lock waits and message latencies). After each step:
//! - `allreduce`, `local-steps` (every m steps), `slack`: an MPI sum of the rows, then
//!   x_i + γ(x̄ − x_i) on each rank (γ = 1 for AllReduce);
//! - `sync-ring`: the rows exchanged with both ring neighbours (MPI_Sendrecv), the mean over
//!   the closed neighbourhood, then a barrier (so that no rank steps before the round ends);
//! - `async-ring` (AD-PSGD): the worker picks a ring neighbour at random, locks both rows
//!   exclusively (the lower rank first), reads both, writes their mean to both, unlocks, while
//!   the neighbour keeps computing;
//! - `async-ps`: the worker reads the server's row under a shared lock and copies it into its
//!   own (the server's row never changes without computation, as in the simulation; the
//!   delay of the reply is the machine's, not a drawn one).
//!
//! Every rank logs its records ([`super::log`]); rank 0 merges them, measures t_mix of the
//! log from the run's initial X (the simulated run's own, [`super::mixing::run_rng`]), checks
//! that replaying the whole log on X gives the rows the ranks ended with, and reports the
//! simulated t_mix of the same run beside it.
use super::log::{self, Entry, Record};
use super::operator::ring_mean;
use super::{mixing, report, LiveSpec, MixingSpec, Operator, Protocol, State};
use crate::dist::{Comm, Window};
use crate::results::write_atomic;
use crate::spec::KeyError;
use anyhow::{ensure, Context, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::Exp;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file of one row per live run.
pub const LIVE_FILE: &str = "live.csv";

/// The largest difference allowed between the replayed log and the ranks' rows, relative to
/// the largest entry of X: MPI adds a round's rows in its own order.
const REPLAY_TOLERANCE: f64 = 1e-12;

/// A row of `live.csv`.
#[derive(Debug, Serialize)]
struct LiveRow<'a> {
    protocol: &'a str,
    n: usize,
    run: usize,
    /// t_mix of the live log, in worker steps.
    t_mix: u64,
    /// t_mix of the simulated run with the same X ([`mixing::sample`]).
    t_mix_simulated: u64,
    steps: usize,
    events: usize,
    /// max |replayed − live| over X's entries, relative to X's largest.
    replay_error: f64,
    wall_s: f64,
}

/// This rank's worker through one live run of `protocol` from `x0`: its records and final row.
fn run_worker(
    comm: &dyn Comm,
    protocol: Protocol,
    x0: &State,
    live: &LiveSpec,
    rng: &mut ChaCha8Rng,
) -> Result<(Vec<Entry>, Vec<f64>)> {
    let (n, r, d) = (comm.size(), comm.rank(), x0.dim());
    let server = matches!(protocol, Protocol::AsyncPs { .. });
    let window = comm.window(if server && r == 0 { 2 * d } else { d })?;
    window.lock(r, true);
    window.put(r, 0, x0.row(r));
    if server && r == 0 {
        window.put(0, d, x0.row(n));
    }
    window.unlock(r);
    comm.barrier();
    let duration = Exp::new(1.0 / live.step_ms).context("[live] step_ms")?;
    let mut entries = Vec::with_capacity(2 * live.steps);
    let (mut row, mut other) = (vec![0.0; d], vec![0.0; d]);
    for k in 0..live.steps {
        std::thread::sleep(Duration::from_secs_f64(rng.sample(duration) / 1e3));
        entries.push(Entry {
            time: comm.wtime(),
            record: Record::Step { worker: r },
        });
        let round = |event| Entry {
            time: comm.wtime(),
            record: Record::Round {
                round: k as u64,
                event,
            },
        };
        match protocol {
            Protocol::AllReduce | Protocol::Slack { .. } | Protocol::LocalSteps { .. } => {
                let gamma = match protocol {
                    Protocol::Slack { gamma } => gamma,
                    Protocol::LocalSteps { m } if (k + 1) % m != 0 => continue,
                    _ => 1.0,
                };
                entries.push(round(Operator::Slack { gamma }));
                own(&*window, r, &mut row, |row| {
                    let mut mean = row.to_vec();
                    comm.sum_f64(&mut mean);
                    // x_i + γ(x̄ − x_i), as Operator::apply
                    for (v, m) in row.iter_mut().zip(&mean) {
                        *v += gamma * (m / n as f64 - *v);
                    }
                });
            }
            Protocol::SyncRing => {
                entries.push(round(Operator::Ring));
                let (left, right) = ((r + n - 1) % n, (r + 1) % n);
                own(&*window, r, &mut row, |row| {
                    let before = shift(comm, row, right, left);
                    let after = shift(comm, row, left, right);
                    let old = row.to_vec();
                    let rows = |j: usize| match j {
                        j if j == r => &old[..],
                        j if j == left => &before[..],
                        _ => &after[..],
                    };
                    ring_mean(r, n, rows, row);
                });
                comm.barrier();
            }
            Protocol::AsyncRing => {
                let j = match n {
                    2 => 1 - r,
                    _ if rng.random_bool(0.5) => (r + 1) % n,
                    _ => (r + n - 1) % n,
                };
                let (low, high) = (r.min(j), r.max(j));
                window.lock(low, true);
                window.lock(high, true);
                let time = comm.wtime();
                window.get(r, 0, &mut row);
                window.get(j, 0, &mut other);
                // (x_i + x_j)/2, as Operator::apply
                for (u, v) in row.iter_mut().zip(&other) {
                    *u = 0.5 * (*u + *v);
                }
                window.put(r, 0, &row);
                window.put(j, 0, &row);
                window.unlock(high);
                window.unlock(low);
                entries.push(Entry {
                    time,
                    record: Record::Event(Operator::Pair(r, j)),
                });
            }
            Protocol::AsyncPs { .. } => {
                window.lock(0, false);
                let time = comm.wtime();
                window.get(0, d, &mut other);
                window.unlock(0);
                window.lock(r, true);
                window.put(r, 0, &other);
                window.unlock(r);
                entries.push(Entry {
                    time,
                    record: Record::Event(Operator::Pull {
                        worker: r,
                        server: n,
                    }),
                });
            }
        }
    }
    comm.barrier();
    window.lock(r, false);
    window.get(r, 0, &mut row);
    window.unlock(r);
    comm.barrier();
    Ok((entries, row))
}

/// `f` on this rank's row, read from and written back to its window (no other rank touches
/// it during a synchronous round).
fn own(window: &dyn Window, r: usize, row: &mut [f64], f: impl FnOnce(&mut [f64])) {
    window.lock(r, true);
    window.get(r, 0, row);
    window.unlock(r);
    f(row);
    window.lock(r, true);
    window.put(r, 0, row);
    window.unlock(r);
}

/// The row rank `from` sends while this rank sends `row` to rank `to`.
fn shift(comm: &dyn Comm, row: &[f64], to: usize, from: usize) -> Vec<f64> {
    let send: Vec<u8> = row.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut recv = vec![0u8; send.len()];
    comm.shift(&send, to, from, &mut recv);
    recv.chunks(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect()
}

/// A protocol's label as a folder name: characters other than letters, digits, `.`, `-` and
/// `_` become `_`.
fn file_name(label: &str) -> String {
    label
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || ".-_".contains(c) {
            true => c,
            false => '_',
        })
        .collect()
}

/// Rank 0's reading of one run: the merged log and its row of `live.csv`.
struct Analysed {
    merged: Vec<log::Merged>,
    t_mix: Option<u64>,
    replay_error: f64,
    events: usize,
}

/// Merges the ranks' records, measures t_mix from `x0` and replays the whole log against the
/// ranks' final rows.
fn analyse(protocol: Protocol, x0: &State, logs: &[Vec<u8>], rows: &[Vec<u8>]) -> Result<Analysed> {
    let ranks: Vec<Vec<Entry>> = logs
        .iter()
        .map(|b| log::from_bytes(b))
        .collect::<Result<_>>()?;
    let merged = log::merge(&ranks)?;
    let batches = log::batches(&merged)?;
    let n = ranks.len();
    let mut next = batches.iter();
    let t_mix = mixing::t_mix(
        |events| {
            events.clear();
            events.extend(next.next().into_iter().flatten());
        },
        protocol.consensus(n),
        x0.clone(),
        batches.len() as u64,
    );
    let mut x = x0.clone();
    batches.iter().flatten().for_each(|e| e.apply(&mut x));
    let scale = (0..x0.rows())
        .flat_map(|i| x0.row(i).iter().map(|v| v.abs()))
        .fold(0.0, f64::max);
    let mut error: f64 = 0.0;
    for (i, bytes) in rows.iter().enumerate() {
        for (k, b) in bytes.chunks(8).enumerate() {
            let live = f64::from_le_bytes(b.try_into().expect("8 bytes"));
            error = error.max((live - x.row(i)[k]).abs() / scale);
        }
    }
    Ok(Analysed {
        events: batches.iter().map(Vec::len).sum(),
        merged,
        t_mix,
        replay_error: error,
    })
}

/// `pisa mixing SPEC --live` on this rank: every protocol of the spec, `runs` runs each, with
/// n = the rank count; rank 0 writes `<out>/<name>-live-n<n>/` (the report of
/// [`report::write`], `live.csv`, and each run's merged log under `events/<protocol>/`) and
/// returns it (the logs of the first `[live] logs` runs of each protocol).
pub fn run(comm: &dyn Comm, spec_path: &Path, runs: Option<usize>, out: &Path) -> Result<PathBuf> {
    let n = comm.size();
    ensure!(
        n >= 2,
        "pisa mixing --live runs one worker per MPI rank: start it under mpirun (mpirun -np 4 \
         pisa mixing SPEC --live, or pisa mixing SPEC --live --launcher mpi -n 4)"
    );
    let (mut spec, protocols) = MixingSpec::load(spec_path)?;
    if let Some(runs) = runs {
        spec.runs = runs;
    }
    let live = spec.live.clone().unwrap_or_default();
    spec.live = Some(live.clone());
    spec.workers = vec![n];
    spec.name = format!("{}-live-n{n}", spec.name);
    let dir = out.join(&spec.name);
    let (mut samples, mut table, mut files) = (Vec::new(), Vec::new(), Vec::new());
    for (p, (label, protocol)) in protocols.iter().enumerate() {
        for run in 0..spec.runs {
            // rank 0's reading of SIGINT/SIGTERM, so that every rank stops here together
            if comm.broadcast_flag(crate::interrupt::requested()) {
                anyhow::bail!("interrupted: nothing was written");
            }
            let x0 = State::gaussian(
                protocol.rows(n),
                spec.dim,
                &mut mixing::run_rng(spec.seed, label, n, run),
            );
            let mut steps =
                mixing::run_rng(spec.seed, &format!("{label}/live/{}", comm.rank()), n, run);
            let started = comm.wtime();
            let (entries, row) = run_worker(comm, *protocol, &x0, &live, &mut steps)?;
            let wall_s = comm.wtime() - started;
            let logs = comm.gather(&log::to_bytes(&entries));
            let rows = comm.gather(
                &row.iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<u8>>(),
            );
            if comm.rank() != 0 {
                continue;
            }
            let a = analyse(*protocol, &x0, &logs, &rows)?;
            ensure!(
                a.replay_error <= REPLAY_TOLERANCE,
                "{label}, run {run}: the event log replayed on X does not give the rows the \
                 ranks ended with (relative difference {:e})",
                a.replay_error
            );
            let t_mix = a.t_mix.ok_or_else(|| {
                KeyError::at(
                    "live.steps",
                    format!(
                        "{label} with n = {n} did not halve ‖X − M∞X‖ within its {} logged \
                         steps (run {run}); raise live.steps",
                        live.steps * n
                    ),
                )
            })?;
            let simulated = mixing::sample(*protocol, label, n, run, &spec).with_context(|| {
                format!("{label}: the simulated run did not mix within max_time")
            })?;
            samples.push(mixing::Sample {
                protocol: p,
                n,
                run,
                t_mix,
            });
            table.push(LiveRow {
                protocol: label,
                n,
                run,
                t_mix,
                t_mix_simulated: simulated,
                steps: live.steps * n,
                events: a.events,
                replay_error: a.replay_error,
                wall_s,
            });
            if run < live.logs {
                files.push((
                    dir.join("events")
                        .join(file_name(label))
                        .join(format!("run-{run}.csv")),
                    log::to_csv(&a.merged)?,
                ));
            }
        }
    }
    if comm.rank() == 0 {
        report::write(&dir, &spec, &protocols, &samples)?;
        let mut csv = csv::Writer::from_writer(Vec::new());
        for row in &table {
            csv.serialize(row)?;
        }
        write_atomic(&dir.join(LIVE_FILE), &csv.into_inner()?)?;
        for (path, bytes) in files {
            let parent = path.parent().expect("a run's log is in a folder");
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
            write_atomic(&path, &bytes)?;
        }
    }
    comm.barrier();
    Ok(dir)
}
