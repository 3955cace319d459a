//! The event log of a live run ([`super::live`]): each rank records its worker's steps and
//! the communication events it took part in, with the time of each on the ranks' shared
//! clock; merged, the log is the run's sequence M_0, M_1, … ((1): M_t acts between worker
//! steps t and t + 1), which [`super::mixing::t_mix`] measures as it measures a simulated
//! [`super::Schedule`], and which replayed on the initial state gives the state the ranks
//! ended with.
//!
//! Times order the log. A step is recorded when its computation ends, before its worker
//! communicates. An asynchronous event (a pair average, a pull) is recorded by the worker that
//! made it, while it holds the locks of every row it reads or writes: two events on a common
//! row are ordered as they happened, and events on disjoint rows commute. A synchronous round
//! (AllReduce, slack, the ring) is recorded by every rank as it enters it; it acts once, at the
//! last of those times: every step of the round ends before it, and no rank's next step
//! before it (the round waits for every rank, and ends with a barrier where the exchange alone
//! would not).
use super::Operator;
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;

/// What one record says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Record {
    /// Worker `worker`'s computation event: one time unit.
    Step { worker: usize },
    /// An asynchronous event, made by one worker.
    Event(Operator),
    /// Synchronous round `round`'s event, as one rank entered it.
    Round { round: u64, event: Operator },
}

/// One record with its time in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    pub time: f64,
    pub record: Record,
}

/// An operator as four numbers (kind, i, j, γ), for the bytes a rank sends and the CSV.
fn encode(event: Operator) -> (u8, u64, u64, f64) {
    match event {
        Operator::Slack { gamma } => (0, 0, 0, gamma),
        Operator::Ring => (1, 0, 0, 0.0),
        Operator::Pair(i, j) => (2, i as u64, j as u64, 0.0),
        Operator::Pull { worker, server } => (3, worker as u64, server as u64, 0.0),
    }
}

fn decode(kind: u8, i: u64, j: u64, gamma: f64) -> Result<Operator> {
    Ok(match kind {
        0 => Operator::Slack { gamma },
        1 => Operator::Ring,
        2 => Operator::Pair(i as usize, j as usize),
        3 => Operator::Pull {
            worker: i as usize,
            server: j as usize,
        },
        k => bail!("an event log names operator kind {k}"),
    })
}

/// The bytes of one rank's records, for [`crate::dist::Comm::gather`]: per entry the time, a
/// tag (0 step, 1 event, 2 round), the round or worker, and the operator's four numbers.
pub fn to_bytes(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 41);
    for e in entries {
        let (tag, index, event) = match e.record {
            Record::Step { worker } => (0u8, worker as u64, Operator::Ring),
            Record::Event(event) => (1, 0, event),
            Record::Round { round, event } => (2, round, event),
        };
        let (kind, i, j, gamma) = encode(event);
        out.extend(e.time.to_le_bytes());
        out.extend([tag, kind]);
        out.extend(index.to_le_bytes());
        out.extend(i.to_le_bytes());
        out.extend(j.to_le_bytes());
        out.extend(gamma.to_le_bytes());
    }
    out
}

/// [`to_bytes`] read back.
pub fn from_bytes(bytes: &[u8]) -> Result<Vec<Entry>> {
    const SIZE: usize = 8 + 2 + 4 * 8;
    ensure!(
        bytes.len().is_multiple_of(SIZE),
        "an event log of {} bytes",
        bytes.len()
    );
    bytes
        .chunks(SIZE)
        .map(|c| {
            let word = |at: usize| u64::from_le_bytes(c[at..at + 8].try_into().expect("8 bytes"));
            let (time, tag, kind) = (f64::from_bits(word(0)), c[8], c[9]);
            let (index, i, j, gamma) = (word(10), word(18), word(26), f64::from_bits(word(34)));
            let event = decode(kind, i, j, gamma)?;
            let record = match tag {
                0 => Record::Step {
                    worker: index as usize,
                },
                1 => Record::Event(event),
                2 => Record::Round {
                    round: index,
                    event,
                },
                t => bail!("an event log names record tag {t}"),
            };
            Ok(Entry { time, record })
        })
        .collect()
}

/// One record of the merged log: a step or an event, in the order they act.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Merged {
    Step { worker: usize, time: f64 },
    Event { event: Operator, time: f64 },
}

/// The ranks' records as one sequence in time order: each round once, at the latest time a
/// rank entered it; every rank must have entered every round it names.
pub fn merge(ranks: &[Vec<Entry>]) -> Result<Vec<Merged>> {
    let mut rounds: BTreeMap<u64, (Operator, f64, usize)> = BTreeMap::new();
    let mut merged = Vec::new();
    for entries in ranks {
        for e in entries {
            match e.record {
                Record::Step { worker } => merged.push(Merged::Step {
                    worker,
                    time: e.time,
                }),
                Record::Event(event) => merged.push(Merged::Event {
                    event,
                    time: e.time,
                }),
                Record::Round { round, event } => {
                    let slot = rounds.entry(round).or_insert((event, e.time, 0));
                    ensure!(
                        slot.0 == event,
                        "round {round} is {:?} on one rank and {event:?} on another",
                        slot.0
                    );
                    slot.1 = slot.1.max(e.time);
                    slot.2 += 1;
                }
            }
        }
    }
    for (round, (event, time, entered)) in rounds {
        ensure!(
            entered == ranks.len(),
            "round {round} was entered by {entered} of {} ranks",
            ranks.len()
        );
        merged.push(Merged::Event { event, time });
    }
    let time = |m: &Merged| match *m {
        Merged::Step { time, .. } | Merged::Event { time, .. } => time,
    };
    merged.sort_by(|a, b| time(a).total_cmp(&time(b)));
    Ok(merged)
}

/// The merged log as M_0, M_1, …: `batches[t]` the events after step t + 1 (counting from
/// one) and before the next. Events before the first step are refused (nothing in a live run
/// communicates before it has stepped).
pub fn batches(merged: &[Merged]) -> Result<Vec<Vec<Operator>>> {
    let mut out: Vec<Vec<Operator>> = Vec::new();
    for m in merged {
        match *m {
            Merged::Step { .. } => out.push(Vec::new()),
            Merged::Event { event, time } => out
                .last_mut()
                .with_context(|| format!("{event:?} at {time} s comes before any step"))?
                .push(event),
        }
    }
    Ok(out)
}

/// The merged log as CSV: time_s (from the first record), then step or the event with its
/// rows.
pub fn to_csv(merged: &[Merged]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["time_s", "record", "i", "j", "gamma"])?;
    let start = merged.first().map_or(0.0, |m| match *m {
        Merged::Step { time, .. } | Merged::Event { time, .. } => time,
    });
    for m in merged {
        let (time, name, i, j, gamma) = match *m {
            Merged::Step { worker, time } => (
                time,
                "step",
                worker.to_string(),
                String::new(),
                String::new(),
            ),
            Merged::Event { event, time } => {
                let (kind, i, j, gamma) = encode(event);
                let name = ["slack", "ring", "pair", "pull"][kind as usize];
                let (i, j, gamma) = match event {
                    Operator::Slack { .. } => (String::new(), String::new(), gamma.to_string()),
                    Operator::Ring => (String::new(), String::new(), String::new()),
                    _ => (i.to_string(), j.to_string(), String::new()),
                };
                (time, name, i, j, gamma)
            }
        };
        w.write_record([format!("{:.9}", time - start), name.into(), i, j, gamma])?;
    }
    Ok(w.into_inner()?)
}
