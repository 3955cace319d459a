//! Client partitions of a labelled training set for federated experiments, following
//! NIID-Bench (Li, Diao, Chen, He, "Federated Learning on Non-IID Data Silos: An
//! Experimental Study", ICDE 2022; `partition_data` in its `utils.py`), the setting of
//! the paper's Section 5.1 and Table 2.
//!
//! A [`Partition`] lists, for each of the m clients, the indices of its samples D_i in
//! the training set. Every scheme draws from one ChaCha8 stream seeded by `seed`, so a
//! partition is a function of (labels, K, m, scheme, seed). The schemes ([`Scheme`]):
//!
//! - `iid` (NIID-Bench "homo"): a seeded shuffle cut into m shares whose sizes differ by
//!   at most one (`np.array_split`).
//! - `label-skew` with s labels (NIID-Bench "#C=s", `noniid-#label{s}`): client i holds
//!   label i mod K plus s − 1 other distinct labels drawn uniformly at random (by
//!   rejection, as NIID-Bench does); each label's samples are shuffled and split evenly
//!   among the clients that hold it, in client order (`np.array_split`: sizes differ by at
//!   most one). A label that no client holds (possible only when m < K) is dropped: its
//!   samples belong to no client (NIID-Bench would fail on it in `np.array_split(…, 0)`).
//!   A client's indices come label by label, unshuffled, as in NIID-Bench.
//! - `dirichlet` with β (NIID-Bench "p_k ~ Dir(β)", `noniid-labeldir`): for each class k
//!   in turn, its shuffled samples are cut among the clients by proportions p ~ Dir(β·1_m),
//!   except that a client already holding at least N/m samples gets proportion 0 (the
//!   "balance" rule), the rest renormalised; cut points ⌊N_k·cumsum(p)⌋. The whole draw is
//!   repeated until every client holds at least [`MIN_CLIENT_SAMPLES`] samples (at most
//!   [`MAX_DRAWS`] times, then an error). Each client's indices are finally shuffled.
//! - `quantity-skew` with β (NIID-Bench "q ~ Dir(β)", `iid-diff-quantity`): a seeded
//!   shuffle cut at ⌊N·cumsum(q)⌋ with q ~ Dir(β·1_m), redrawn until min_i q_i·N ≥ 10.
//!
//! Dirichlet vectors are normalised Gamma(β, 1) draws, taken in log space for β < 1
//! (ln Gamma(1+β) + ln(U)/β, the identity rand_distr also uses) so that tiny β cannot
//! underflow every component to zero.
//!
//! Deviations from NIID-Bench, all outside its code paths: labels outside 0..K are an
//! error (NIID-Bench ignores them); s > K or s = 0 is an error (NIID-Bench loops forever
//! or misbehaves); NIID-Bench's forced s = 1, K = 2 for binary datasets is left to the
//! caller (ask for s = 1). Random draws use ChaCha8 rather than NumPy's and Python's
//! generators, so partitions match NIID-Bench's in distribution, not index for index.
use anyhow::{bail, ensure, Context, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, Open01};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// NIID-Bench's `min_require_size`: the Dirichlet label skew (and the quantity skew)
/// redraw until every client has at least this many samples.
pub const MIN_CLIENT_SAMPLES: usize = 10;

/// How many times the Dirichlet schemes redraw before giving up (NIID-Bench has no limit).
pub const MAX_DRAWS: usize = 1000;

/// Mixed into the seed so that partitions draw a stream of their own.
const SEED_SALT: u64 = 0x9a27_1710_7e5e_ed01;

/// How the samples are shared among the clients (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Scheme {
    /// Equal shuffled shares (NIID-Bench "homo").
    Iid,
    /// Each client holds `labels` distinct labels (NIID-Bench "#C=s").
    LabelSkew { labels: usize },
    /// Per-class proportions ~ Dir(β) (NIID-Bench "p_k ~ Dir(β)").
    Dirichlet { beta: f64 },
    /// IID labels, client sizes ~ Dir(β) (NIID-Bench "q ~ Dir(β)").
    QuantitySkew { beta: f64 },
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scheme::Iid => write!(f, "iid"),
            Scheme::LabelSkew { labels } => write!(f, "label-skew (#C={labels})"),
            Scheme::Dirichlet { beta } => write!(f, "dirichlet (beta={beta})"),
            Scheme::QuantitySkew { beta } => write!(f, "quantity-skew (beta={beta})"),
        }
    }
}

impl Scheme {
    /// What can be checked without the data: on failure the key (`beta`, `labels`) and a
    /// message.
    pub fn validate(&self) -> Result<(), (String, String)> {
        match *self {
            Scheme::Dirichlet { beta } | Scheme::QuantitySkew { beta } => {
                check_beta(beta).map_err(|e| ("beta".into(), e.to_string()))
            }
            Scheme::LabelSkew { labels: 0 } => Err((
                "labels".into(),
                "partition: label skew needs at least 1 label per client".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// For each client, the indices of its samples in the training set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    pub clients: Vec<Vec<i64>>,
}

impl Partition {
    /// Shares the samples with `labels` (class ids in 0..`classes`) among `clients`
    /// clients by `scheme`, drawing from `seed`.
    pub fn new(
        labels: &[i64],
        classes: usize,
        clients: usize,
        scheme: &Scheme,
        seed: u64,
    ) -> Result<Self> {
        let n = labels.len();
        ensure!(
            clients >= 1,
            "partition: the number of clients must be at least 1"
        );
        ensure!(
            classes >= 1,
            "partition: the number of classes must be at least 1"
        );
        ensure!(n > 0, "partition: the training set is empty");
        if let Some((at, &y)) = labels
            .iter()
            .enumerate()
            .find(|(_, &y)| y < 0 || y >= classes as i64)
        {
            bail!(
                "partition: sample {at} has label {y}, outside the {classes} classes 0..{classes}"
            );
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ SEED_SALT);
        let clients = match *scheme {
            Scheme::Iid => {
                ensure!(
                    n >= clients,
                    "partition: {n} samples cannot be shared among {clients} clients"
                );
                let mut order: Vec<i64> = (0..n as i64).collect();
                order.shuffle(&mut rng);
                array_split(&order, clients)
            }
            Scheme::LabelSkew { labels: s } => {
                ensure!(
                    (1..=classes).contains(&s),
                    "partition: label skew with {s} labels per client needs 1 ≤ s ≤ K = {classes}"
                );
                label_skew(labels, classes, clients, s, &mut rng)
            }
            Scheme::Dirichlet { beta } => {
                check_beta(beta)?;
                check_min_size(n, clients)?;
                dirichlet_label_skew(labels, classes, clients, beta, &mut rng)?
            }
            Scheme::QuantitySkew { beta } => {
                check_beta(beta)?;
                check_min_size(n, clients)?;
                quantity_skew(n, clients, beta, &mut rng)?
            }
        };
        Ok(Self { clients })
    }

    /// m, the number of clients.
    pub fn num_clients(&self) -> usize {
        self.clients.len()
    }

    /// |D_i| for each client.
    pub fn sizes(&self) -> Vec<usize> {
        self.clients.iter().map(Vec::len).collect()
    }

    /// Σ|D_i|, the samples that some client holds.
    pub fn assigned(&self) -> usize {
        self.clients.iter().map(Vec::len).sum()
    }

    /// α_i = |D_i| / Σ_j |D_j| (the weights of the paper's (2.2)).
    pub fn alphas(&self) -> Vec<f64> {
        let total = self.assigned().max(1) as f64;
        self.clients
            .iter()
            .map(|c| c.len() as f64 / total)
            .collect()
    }

    /// The class counts of each client: `[client][class]`.
    ///
    /// Panics if an index lies outside `labels` or a label outside 0..`classes`
    /// ([`Partition::check`] tells first).
    pub fn histogram(&self, labels: &[i64], classes: usize) -> Vec<Vec<usize>> {
        self.clients
            .iter()
            .map(|indices| {
                let mut counts = vec![0; classes];
                for &i in indices {
                    counts[labels[i as usize] as usize] += 1;
                }
                counts
            })
            .collect()
    }

    /// Checks that every index lies in 0..`samples` and that no sample is held twice
    /// (a partition read back from a file, or one built for another data set).
    pub fn check(&self, samples: usize) -> Result<()> {
        let mut owner = vec![usize::MAX; samples];
        for (c, indices) in self.clients.iter().enumerate() {
            for &i in indices {
                ensure!(
                    (0..samples as i64).contains(&i),
                    "partition: client {c} holds sample {i}, outside the {samples} samples"
                );
                let o = &mut owner[i as usize];
                ensure!(
                    *o == usize::MAX,
                    "partition: sample {i} is held by client {} and by client {c}",
                    *o
                );
                *o = c;
            }
        }
        Ok(())
    }

    /// What `partition.json` holds: the scheme, the seed and, per client, its indices
    /// and class histogram.
    pub fn record(&self, labels: &[i64], classes: usize, scheme: &Scheme, seed: u64) -> Record {
        let histograms = self.histogram(labels, classes);
        Record {
            scheme: *scheme,
            seed,
            classes,
            samples: labels.len(),
            dropped: labels.len() - self.assigned(),
            clients: self
                .clients
                .iter()
                .zip(histograms)
                .map(|(indices, histogram)| ClientRecord {
                    size: indices.len(),
                    histogram,
                    indices: indices.clone(),
                })
                .collect(),
        }
    }
}

/// A partition as saved beside a run's results (`partition.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub scheme: Scheme,
    pub seed: u64,
    /// K.
    pub classes: usize,
    /// N, the size of the training set.
    pub samples: usize,
    /// Samples that no client holds (label skew with labels nobody was given).
    pub dropped: usize,
    pub clients: Vec<ClientRecord>,
}

/// One client in a [`Record`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRecord {
    /// |D_i|.
    pub size: usize,
    /// Samples per class.
    pub histogram: Vec<usize>,
    /// Indices into the training set.
    pub indices: Vec<i64>,
}

impl Record {
    /// The partition the record describes.
    pub fn partition(&self) -> Partition {
        Partition {
            clients: self.clients.iter().map(|c| c.indices.clone()).collect(),
        }
    }

    /// Writes the record as JSON, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec(self).context("partition: cannot serialise")?;
        crate::results::write_atomic(path, &json)
    }

    /// Reads a record written by [`Record::save`], checking that sizes and indices agree.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read(path)
            .with_context(|| format!("cannot read partition file {}", path.display()))?;
        let record: Record = serde_json::from_slice(&text)
            .with_context(|| format!("{}: not a partition record", path.display()))?;
        for (c, client) in record.clients.iter().enumerate() {
            ensure!(
                client.size == client.indices.len()
                    && client.histogram.len() == record.classes
                    && client.histogram.iter().sum::<usize>() == client.size,
                "{}: client {c}'s size, histogram and indices disagree",
                path.display()
            );
        }
        record
            .partition()
            .check(record.samples)
            .with_context(|| format!("{}: invalid partition", path.display()))?;
        Ok(record)
    }
}

/// The labels of a [N] integer tensor (any device) as a vector.
pub fn labels_of(labels: &Tensor) -> Result<Vec<i64>> {
    ensure!(
        labels.dim() == 1,
        "partition: labels must be a [N] tensor, got {:?}",
        labels.size()
    );
    ensure!(
        !labels.is_floating_point(),
        "partition: labels must be integer class ids, got {:?}",
        labels.kind()
    );
    Ok(Vec::<i64>::try_from(
        &labels.to_device(Device::Cpu).to_kind(Kind::Int64),
    )?)
}

fn check_beta(beta: f64) -> Result<()> {
    ensure!(
        beta.is_finite() && beta > 0.0,
        "partition: the Dirichlet concentration beta must be positive and finite, got {beta}"
    );
    Ok(())
}

fn check_min_size(n: usize, clients: usize) -> Result<()> {
    ensure!(
        n >= MIN_CLIENT_SAMPLES * clients,
        "partition: {n} samples cannot give each of {clients} clients at least \
         {MIN_CLIENT_SAMPLES}"
    );
    Ok(())
}

/// `np.array_split`: `parts` consecutive pieces, the first len % parts one longer.
fn array_split(items: &[i64], parts: usize) -> Vec<Vec<i64>> {
    let (per, extra) = (items.len() / parts, items.len() % parts);
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for p in 0..parts {
        let len = per + usize::from(p < extra);
        out.push(items[start..start + len].to_vec());
        start += len;
    }
    out
}

/// `np.split(items, ⌊len·cumsum(p)⌋[:-1])`: consecutive pieces by proportions `p`.
fn split_by<'a>(items: &'a [i64], p: &[f64]) -> Vec<&'a [i64]> {
    let len = items.len();
    let mut out = Vec::with_capacity(p.len());
    let (mut start, mut cum) = (0, 0.0);
    for (j, &pj) in p.iter().enumerate() {
        let end = if j + 1 == p.len() {
            len
        } else {
            cum += pj;
            // `astype(int)` truncates; clamping only guards against rounding past len.
            ((cum * len as f64) as usize).clamp(start, len)
        };
        out.push(&items[start..end]);
        start = end;
    }
    out
}

/// The sample indices of each class, ascending (`np.where(y == k)`).
fn by_class(labels: &[i64], classes: usize) -> Vec<Vec<i64>> {
    let mut out = vec![Vec::new(); classes];
    for (i, &y) in labels.iter().enumerate() {
        out[y as usize].push(i as i64);
    }
    out
}

/// A draw of Dir(β·1_n), through log-space Gamma draws (see the module documentation).
fn dirichlet(beta: f64, n: usize, rng: &mut ChaCha8Rng) -> Vec<f64> {
    let log_gamma: Vec<f64> = if beta >= 1.0 {
        let gamma = Gamma::new(beta, 1.0).expect("beta checked positive");
        (0..n).map(|_| gamma.sample(rng).ln()).collect()
    } else {
        // Gamma(β) = Gamma(1 + β)·U^{1/β} for U ~ U(0, 1).
        let gamma = Gamma::new(1.0 + beta, 1.0).expect("beta checked positive");
        (0..n)
            .map(|_| {
                let u: f64 = Open01.sample(rng);
                gamma.sample(rng).ln() + u.ln() / beta
            })
            .collect()
    };
    let max = log_gamma.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = log_gamma.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = weights.iter().sum();
    weights.into_iter().map(|w| w / sum).collect()
}

/// NIID-Bench's "#C=s": client i holds i mod K and s − 1 other distinct random labels.
fn label_skew(
    labels: &[i64],
    classes: usize,
    clients: usize,
    s: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<i64>> {
    // `contain` and `times` of NIID-Bench.
    let mut holds: Vec<Vec<usize>> = Vec::with_capacity(clients);
    let mut holders = vec![0usize; classes];
    for i in 0..clients {
        let mut current = vec![i % classes];
        while current.len() < s {
            let label = rng.random_range(0..classes);
            if !current.contains(&label) {
                current.push(label);
            }
        }
        for &label in &current {
            holders[label] += 1;
        }
        holds.push(current);
    }
    let mut out = vec![Vec::new(); clients];
    for (k, mut idx_k) in by_class(labels, classes).into_iter().enumerate() {
        if holders[k] == 0 {
            continue; // Nobody holds label k: its samples are dropped.
        }
        idx_k.shuffle(rng);
        let mut pieces = array_split(&idx_k, holders[k]).into_iter();
        for (client, held) in out.iter_mut().zip(&holds) {
            if held.contains(&k) {
                client.extend(pieces.next().expect("one piece per holder"));
            }
        }
    }
    out
}

/// NIID-Bench's "p_k ~ Dir(β)" with its balance rule and minimum-size redraws.
fn dirichlet_label_skew(
    labels: &[i64],
    classes: usize,
    clients: usize,
    beta: f64,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Vec<i64>>> {
    let n = labels.len();
    let cap = n as f64 / clients as f64;
    let mut class_indices = by_class(labels, classes);
    for _ in 0..MAX_DRAWS {
        let mut batches: Vec<Vec<i64>> = vec![Vec::new(); clients];
        for idx_k in class_indices.iter_mut() {
            idx_k.shuffle(rng);
            let drawn = dirichlet(beta, clients, rng);
            // Balance: no more samples for a client already holding N/m.
            let mut p: Vec<f64> = drawn
                .iter()
                .zip(&batches)
                .map(|(&p, b)| if (b.len() as f64) < cap { p } else { 0.0 })
                .collect();
            let sum: f64 = p.iter().sum();
            if sum > 0.0 {
                p.iter_mut().for_each(|x| *x /= sum);
            } else {
                // Only when the draw's mass (underflowing for tiny β) all sits on full
                // clients; NIID-Bench would divide by zero. Keep the raw draw.
                p = drawn;
            }
            for (batch, piece) in batches.iter_mut().zip(split_by(idx_k, &p)) {
                batch.extend_from_slice(piece);
            }
        }
        if batches.iter().map(Vec::len).min().unwrap_or(0) >= MIN_CLIENT_SAMPLES {
            for batch in batches.iter_mut() {
                batch.shuffle(rng);
            }
            return Ok(batches);
        }
    }
    bail!(
        "partition: no Dirichlet(beta = {beta}) label skew over {clients} clients gave every \
         client at least {MIN_CLIENT_SAMPLES} of the {n} samples in {MAX_DRAWS} draws; use a \
         larger beta or fewer clients"
    )
}

/// NIID-Bench's "q ~ Dir(β)": a shuffled set cut in Dirichlet proportions.
fn quantity_skew(
    n: usize,
    clients: usize,
    beta: f64,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Vec<i64>>> {
    let mut order: Vec<i64> = (0..n as i64).collect();
    order.shuffle(rng);
    for _ in 0..MAX_DRAWS {
        let q = dirichlet(beta, clients, rng);
        let smallest = q.iter().copied().fold(f64::INFINITY, f64::min) * n as f64;
        if smallest >= MIN_CLIENT_SAMPLES as f64 {
            return Ok(split_by(&order, &q)
                .into_iter()
                .map(<[i64]>::to_vec)
                .collect());
        }
    }
    bail!(
        "partition: no Dirichlet(beta = {beta}) quantity skew over {clients} clients gave \
         every client at least {MIN_CLIENT_SAMPLES} of the {n} samples in {MAX_DRAWS} draws; \
         use a larger beta or fewer clients"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` labels in 0..classes, unbalanced on purpose (class k has weight k + 1).
    fn labels(n: usize, classes: usize, seed: u64) -> Vec<i64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let total = classes * (classes + 1) / 2;
        (0..n)
            .map(|_| {
                let mut r = rng.random_range(0..total);
                let mut k = 0;
                while r > k {
                    r -= k + 1;
                    k += 1;
                }
                k as i64
            })
            .collect()
    }

    /// Every sample in 0..n is held exactly once, except those with a label in `dropped`.
    fn assert_covers(p: &Partition, labels: &[i64], dropped: &[i64]) {
        p.check(labels.len()).unwrap();
        let expected = labels.iter().filter(|y| !dropped.contains(y)).count();
        assert_eq!(p.assigned(), expected);
        for c in &p.clients {
            assert!(c.iter().all(|&i| !dropped.contains(&labels[i as usize])));
        }
    }

    fn held_labels(hist: &[usize]) -> Vec<usize> {
        (0..hist.len()).filter(|&k| hist[k] > 0).collect()
    }

    const ALL: [Scheme; 5] = [
        Scheme::Iid,
        Scheme::LabelSkew { labels: 1 },
        Scheme::LabelSkew { labels: 3 },
        Scheme::Dirichlet { beta: 0.5 },
        Scheme::QuantitySkew { beta: 0.5 },
    ];

    #[test]
    fn iid_shares_are_balanced_and_cover_every_sample() {
        let y = labels(10_007, 10, 1);
        let p = Partition::new(&y, 10, 10, &Scheme::Iid, 3).unwrap();
        assert_covers(&p, &y, &[]);
        let sizes = p.sizes();
        assert_eq!(sizes[..7], [1001; 7]);
        assert_eq!(sizes[7..], [1000; 3]);
        // Shuffled: every client sees every class, in roughly the global proportions.
        for hist in p.histogram(&y, 10) {
            assert_eq!(held_labels(&hist).len(), 10);
            assert!(hist[9] > hist[0] * 4, "{hist:?}");
        }
        let alphas = p.alphas();
        assert!((alphas.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(alphas[0], 1001.0 / 10_007.0);
    }

    #[test]
    fn label_skew_gives_client_i_label_i_mod_k_and_exactly_s_labels() {
        let y = labels(6_000, 10, 2);
        for s in 1..=10 {
            for m in [10, 13] {
                let scheme = Scheme::LabelSkew { labels: s };
                let p = Partition::new(&y, 10, m, &scheme, 7).unwrap();
                assert_covers(&p, &y, &[]);
                let hist = p.histogram(&y, 10);
                // Who holds each label, and how many of its samples each holder got.
                let mut holders = vec![Vec::new(); 10];
                for (i, h) in hist.iter().enumerate() {
                    let held = held_labels(h);
                    assert!(held.contains(&(i % 10)), "s={s} m={m} client {i}: {held:?}");
                    assert_eq!(held.len(), s, "s={s} m={m} client {i}: {held:?}");
                    for k in held {
                        holders[k].push(h[k]);
                    }
                }
                // Each label is split evenly among its holders.
                for (k, counts) in holders.iter().enumerate() {
                    let total = y.iter().filter(|&&l| l == k as i64).count();
                    assert_eq!(counts.iter().sum::<usize>(), total);
                    let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
                    assert!(hi - lo <= 1, "label {k}: {counts:?}");
                }
            }
        }
    }

    #[test]
    fn label_skew_for_a_binary_dataset_alternates_the_labels() {
        // Adult in NIID-Bench: K = 2, s = 1, m = 10.
        let y = labels(3_001, 2, 3);
        let p = Partition::new(&y, 2, 10, &Scheme::LabelSkew { labels: 1 }, 0).unwrap();
        assert_covers(&p, &y, &[]);
        let ones = y.iter().filter(|&&l| l == 1).count();
        for (i, h) in p.histogram(&y, 2).iter().enumerate() {
            assert_eq!(held_labels(h), vec![i % 2]);
            let share = if i % 2 == 1 { ones } else { y.len() - ones } as f64 / 5.0;
            assert!((h[i % 2] as f64 - share).abs() <= 1.0);
        }
    }

    #[test]
    fn label_skew_drops_labels_that_no_client_holds() {
        let y = labels(2_000, 10, 4);
        // 3 clients with one label each: labels 3..9 belong to nobody.
        let p = Partition::new(&y, 10, 3, &Scheme::LabelSkew { labels: 1 }, 0).unwrap();
        assert_covers(&p, &y, &[3, 4, 5, 6, 7, 8, 9]);
        let record = p.record(&y, 10, &Scheme::LabelSkew { labels: 1 }, 0);
        assert_eq!(record.dropped, y.iter().filter(|&&l| l >= 3).count());
    }

    #[test]
    fn impossible_requests_are_errors() {
        let y = labels(500, 10, 5);
        let err = |scheme: Scheme, classes: usize, m: usize| {
            Partition::new(&y, classes, m, &scheme, 0)
                .unwrap_err()
                .to_string()
        };
        assert!(err(Scheme::LabelSkew { labels: 11 }, 10, 10).contains("1 ≤ s ≤ K = 10"));
        assert!(err(Scheme::LabelSkew { labels: 0 }, 10, 10).contains("1 ≤ s ≤ K"));
        assert!(err(Scheme::Dirichlet { beta: 0.0 }, 10, 10).contains("positive"));
        assert!(err(Scheme::QuantitySkew { beta: f64::NAN }, 10, 10).contains("positive"));
        assert!(err(Scheme::Dirichlet { beta: 0.5 }, 10, 51).contains("at least 10"));
        assert!(err(Scheme::Iid, 10, 0).contains("at least 1"));
        // A label outside 0..K.
        let e = err(Scheme::Iid, 9, 10);
        assert!(e.contains("has label 9, outside the 9 classes"), "{e}");
        assert!(Partition::new(&[], 10, 1, &Scheme::Iid, 0).is_err());
        assert!(Partition::new(&[-1], 10, 1, &Scheme::Iid, 0).is_err());
    }

    #[test]
    fn dirichlet_gives_every_client_at_least_ten_samples() {
        let y = labels(5_000, 10, 6);
        for beta in [0.05, 0.1, 0.5, 5.0] {
            let p = Partition::new(&y, 10, 10, &Scheme::Dirichlet { beta }, 11).unwrap();
            assert_covers(&p, &y, &[]);
            assert!(
                p.sizes().iter().all(|&s| s >= MIN_CLIENT_SAMPLES),
                "{:?}",
                p.sizes()
            );
        }
        // Small β skews the labels: most clients miss some class; large β does not.
        let missing = |beta: f64| -> usize {
            let p = Partition::new(&y, 10, 10, &Scheme::Dirichlet { beta }, 12).unwrap();
            p.histogram(&y, 10)
                .iter()
                .map(|h| h.iter().filter(|&&c| c == 0).count())
                .sum()
        };
        assert!(missing(0.1) > 20, "{}", missing(0.1));
        assert_eq!(missing(100.0), 0);
        // The balance rule: no client grows past N/m by more than one class's share.
        let p = Partition::new(&y, 10, 10, &Scheme::Dirichlet { beta: 0.1 }, 13).unwrap();
        let largest_class = by_class(&y, 10).iter().map(Vec::len).max().unwrap();
        assert!(p.sizes().iter().all(|&s| s < 500 + largest_class));
        // Binary labels (Adult) with 10 clients.
        let y2 = labels(3_000, 2, 7);
        let p = Partition::new(&y2, 2, 10, &Scheme::Dirichlet { beta: 0.5 }, 1).unwrap();
        assert_covers(&p, &y2, &[]);
        assert!(p.sizes().iter().all(|&s| s >= MIN_CLIENT_SAMPLES));
    }

    #[test]
    fn dirichlet_redraws_fail_clearly_when_impossible() {
        // 100 samples of one class among 10 clients: each needs exactly 10, which a
        // Dirichlet cut essentially never gives.
        let y = vec![0i64; 100];
        let e = Partition::new(&y, 1, 10, &Scheme::Dirichlet { beta: 0.1 }, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("in 1000 draws"), "{e}");
    }

    #[test]
    fn quantity_skew_varies_sizes_but_not_labels() {
        let y = labels(20_000, 10, 8);
        let p = Partition::new(&y, 10, 10, &Scheme::QuantitySkew { beta: 0.5 }, 2).unwrap();
        assert_covers(&p, &y, &[]);
        let sizes = p.sizes();
        assert!(sizes.iter().all(|&s| s >= MIN_CLIENT_SAMPLES));
        let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(hi > &(3 * lo), "{sizes:?}");
        // The largest client's label mix follows the global one.
        let big = sizes.iter().position(|s| s == hi).unwrap();
        let hist = &p.histogram(&y, 10)[big];
        let frac9 = hist[9] as f64 / *hi as f64;
        assert!((frac9 - 10.0 / 55.0).abs() < 0.05, "{hist:?}");
    }

    #[test]
    fn same_seed_same_partition_other_seed_differs() {
        let y = labels(3_000, 10, 9);
        for scheme in ALL {
            let a = Partition::new(&y, 10, 10, &scheme, 5).unwrap();
            let b = Partition::new(&y, 10, 10, &scheme, 5).unwrap();
            let c = Partition::new(&y, 10, 10, &scheme, 6).unwrap();
            assert_eq!(a, b, "{scheme}");
            assert_ne!(a, c, "{scheme}");
        }
    }

    #[test]
    fn mnist_sized_partitions_are_fast() {
        let y = labels(60_000, 10, 10);
        let start = std::time::Instant::now();
        for scheme in ALL {
            Partition::new(&y, 10, 10, &scheme, 0).unwrap();
        }
        // Generous: a debug build takes well under a second.
        assert!(start.elapsed().as_secs_f64() < 5.0, "{:?}", start.elapsed());
    }

    #[test]
    fn histogram_counts_each_clients_classes() {
        let y = vec![0, 1, 1, 2, 2, 2];
        let p = Partition {
            clients: vec![vec![0, 3], vec![1, 2, 4, 5]],
        };
        assert_eq!(p.histogram(&y, 3), vec![vec![1, 0, 1], vec![0, 2, 2]]);
        assert_eq!(p.sizes(), vec![2, 4]);
        p.check(6).unwrap();
        let dup = Partition {
            clients: vec![vec![0, 3], vec![3]],
        };
        let e = dup.check(6).unwrap_err().to_string();
        assert!(
            e.contains("sample 3 is held by client 0 and by client 1"),
            "{e}"
        );
        assert!(p
            .check(5)
            .unwrap_err()
            .to_string()
            .contains("outside the 5 samples"));
    }

    #[test]
    fn record_round_trips_through_partition_json() {
        let y = labels(400, 4, 11);
        let scheme = Scheme::LabelSkew { labels: 2 };
        let p = Partition::new(&y, 4, 5, &scheme, 3).unwrap();
        let record = p.record(&y, 4, &scheme, 3);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("partition.json");
        record.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(r#""scheme":{"kind":"label-skew","labels":2}"#),
            "{text}"
        );
        assert!(text.contains(r#""histogram":["#), "{text}");
        let back = Record::load(&path).unwrap();
        assert_eq!(back, record);
        assert_eq!(back.partition(), p);
        assert_eq!(back.clients[1].histogram, p.histogram(&y, 4)[1]);
        // A tampered file is caught.
        std::fs::write(&path, text.replacen(r#""size":"#, r#""size":1"#, 1)).unwrap();
        let e = format!("{:#}", Record::load(&path).unwrap_err());
        assert!(e.contains("disagree"), "{e}");
    }

    #[test]
    fn schemes_read_from_toml_and_json() {
        let s: Scheme = serde_json::from_str(r#"{"kind":"dirichlet","beta":0.5}"#).unwrap();
        assert_eq!(s, Scheme::Dirichlet { beta: 0.5 });
        let s: Scheme = toml::from_str("kind = \"label-skew\"\nlabels = 2").unwrap();
        assert_eq!(s, Scheme::LabelSkew { labels: 2 });
        let s: Scheme = toml::from_str("kind = \"quantity-skew\"\nbeta = 1.0").unwrap();
        assert_eq!(s, Scheme::QuantitySkew { beta: 1.0 });
        let s: Scheme = toml::from_str("kind = \"iid\"").unwrap();
        assert_eq!(s, Scheme::Iid);
        assert!(toml::from_str::<Scheme>("kind = \"label-skew\"\nlabel = 2").is_err());
        assert!(toml::from_str::<Scheme>("kind = \"shards\"").is_err());
        assert_eq!(
            Scheme::LabelSkew { labels: 3 }.to_string(),
            "label-skew (#C=3)"
        );
    }

    #[test]
    fn labels_come_from_a_tensor() {
        let t = Tensor::from_slice(&[3u8, 0, 9]).to_kind(Kind::Int64);
        assert_eq!(labels_of(&t).unwrap(), vec![3, 0, 9]);
        assert_eq!(labels_of(&t.to_kind(Kind::Uint8)).unwrap(), vec![3, 0, 9]);
        assert!(labels_of(&t.to_kind(Kind::Float)).is_err());
        assert!(labels_of(&t.view([1, 3])).is_err());
    }

    #[test]
    fn dirichlet_draws_sum_to_one_even_for_tiny_beta() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for beta in [1e-4, 0.1, 1.0, 30.0] {
            for _ in 0..50 {
                let p = dirichlet(beta, 10, &mut rng);
                assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                assert!(p.iter().all(|x| x.is_finite() && *x >= 0.0));
            }
        }
        // The mean of each component is 1/n.
        let mean: f64 = (0..4000)
            .map(|_| dirichlet(0.5, 4, &mut rng)[2])
            .sum::<f64>()
            / 4000.0;
        assert!((mean - 0.25).abs() < 0.02, "{mean}");
    }

    #[test]
    fn split_by_truncates_like_numpy() {
        let items: Vec<i64> = (0..10).collect();
        // cumsum·10 = 3.3, 6.6 → cuts at 3 and 6.
        let pieces = split_by(&items, &[0.33, 0.33, 0.34]);
        assert_eq!(pieces, vec![&items[..3], &items[3..6], &items[6..]]);
        assert_eq!(
            array_split(&items, 4),
            vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7], vec![8, 9]]
        );
    }
}
