//! The operators are what the paper says, the simulation is deterministic, and measured t_mix
//! agrees with what the paper (and each operator's spectrum) gives.
use super::mixing::{halved, measure, run_rng, sample, t_mix};
use super::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// An operator's matrix: what it does to X = I.
fn matrix(op: &Operator, rows: usize) -> Vec<Vec<f64>> {
    let mut x = State::identity(rows);
    op.apply(&mut x);
    rows_of(&x)
}

fn rows_of(x: &State) -> Vec<Vec<f64>> {
    (0..x.rows()).map(|i| x.row(i).to_vec()).collect()
}

/// M∞ as a matrix: M∞X = 1 c(X) with c linear, so its every row is c(I).
fn consensus_matrix(c: Consensus, rows: usize) -> Vec<Vec<f64>> {
    vec![c.row(&State::identity(rows)); rows]
}

fn product(a: &[Vec<f64>], b: &[Vec<f64>]) -> Vec<Vec<f64>> {
    a.iter()
        .map(|row| {
            (0..b[0].len())
                .map(|j| row.iter().zip(b).map(|(x, r)| x * r[j]).sum())
                .collect()
        })
        .collect()
}

fn assert_close(a: &[Vec<f64>], b: &[Vec<f64>], what: &str) {
    for (i, (ra, rb)) in a.iter().zip(b).enumerate() {
        for (j, (x, y)) in ra.iter().zip(rb).enumerate() {
            assert!(
                (x - y).abs() < 1e-12,
                "{what}: entry ({i}, {j}) is {x}, not {y}"
            );
        }
    }
}

fn row_stochastic(m: &[Vec<f64>]) -> bool {
    m.iter()
        .all(|r| r.iter().all(|&v| v >= 0.0) && (r.iter().sum::<f64>() - 1.0).abs() < 1e-12)
}

fn column_stochastic(m: &[Vec<f64>]) -> bool {
    (0..m.len()).all(|j| (m.iter().map(|r| r[j]).sum::<f64>() - 1.0).abs() < 1e-12)
}

fn averaging(n: usize) -> Vec<Vec<f64>> {
    vec![vec![1.0 / n as f64; n]; n]
}

const ALL: [Protocol; 6] = [
    Protocol::AllReduce,
    Protocol::LocalSteps { m: 2 },
    Protocol::AsyncPs {
        max_delay_rounds: 1.0,
    },
    Protocol::SyncRing,
    Protocol::AsyncRing,
    Protocol::Slack { gamma: 0.3 },
];

fn spec(runs: usize, workers: Vec<usize>, protocols: &[(&str, Protocol)]) -> MixingSpec {
    MixingSpec {
        name: "test".into(),
        seed: 7,
        description: None,
        workers,
        runs,
        dim: 1,
        max_time: 10_000_000,
        live: None,
        protocols: protocols
            .iter()
            .map(|(label, _)| {
                (
                    label.to_string(),
                    ProtocolSpec {
                        kind: Kind::Allreduce,
                        m: None,
                        max_delay_rounds: None,
                        gamma: None,
                    },
                )
            })
            .collect(),
    }
}

/// t_mix of `runs` seeded runs of `protocol` with `n` workers.
fn runs(protocol: Protocol, n: usize, runs: usize) -> Vec<u64> {
    let s = spec(runs, vec![n], &[]);
    (0..runs)
        .map(|r| sample(protocol, "p", n, r, &s).expect("mixes"))
        .collect()
}

#[test]
fn every_event_is_the_matrix_the_paper_says() {
    for n in 2..=9 {
        // AllReduce (case study I): exactly (1/n)11ᵀ, a doubly stochastic projector.
        let all = matrix(&Operator::Slack { gamma: 1.0 }, n);
        assert_close(&all, &averaging(n), "AllReduce");
        // Slack: (1 − γ)I + γ(1/n)11ᵀ.
        let gamma = 0.3;
        let slack = matrix(&Operator::Slack { gamma }, n);
        for (i, row) in slack.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let want = gamma / n as f64 + if i == j { 1.0 - gamma } else { 0.0 };
                assert!((v - want).abs() < 1e-15, "slack ({i}, {j})");
            }
        }
        // Ring: ⅓ on i − 1, i, i + 1 (n ≥ 3), symmetric; for n = 2 both workers, ½.
        let ring = matrix(&Operator::Ring, n);
        for (i, row) in ring.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let d = (i + n - j) % n;
                let neighbour = d == 0 || d == 1 || d == n - 1;
                let want = if !neighbour {
                    0.0
                } else if n == 2 {
                    0.5
                } else {
                    1.0 / 3.0
                };
                assert!((v - want).abs() < 1e-15, "ring n = {n} ({i}, {j}) = {v}");
                assert_eq!(v, ring[j][i], "ring symmetric");
            }
        }
        let pair = matrix(&Operator::Pair(0, n - 1), n);
        for m in [&all, &slack, &ring, &pair] {
            assert!(
                row_stochastic(m) && column_stochastic(m),
                "doubly stochastic, n = {n}"
            );
        }
        // A pull copies the server's row: row stochastic, not column stochastic.
        let pull = matrix(
            &Operator::Pull {
                worker: 1,
                server: n,
            },
            n + 1,
        );
        assert!(row_stochastic(&pull) && !column_stochastic(&pull));
        assert_eq!(pull[1][n], 1.0);
        assert_eq!(pull[1].iter().sum::<f64>(), 1.0);
    }
}

/// Assumption 1 for every M_t of every protocol: M∞M_t = M_tM∞ = M∞ = M∞², with M∞ = (1/n)11ᵀ
/// for the averaging protocols; M_t row stochastic, and doubly stochastic (the average kept)
/// for all but the parameter server.
#[test]
fn every_protocol_keeps_its_consensus() {
    for protocol in ALL {
        for n in [2, 3, 5, 8] {
            let rows = protocol.rows(n);
            let inf = consensus_matrix(protocol.consensus(n), rows);
            assert_close(&product(&inf, &inf), &inf, "M∞² = M∞");
            match protocol {
                Protocol::AsyncPs { .. } => {
                    assert_eq!(rows, n + 1);
                    assert!(
                        inf.iter().all(|r| r[n] == 1.0),
                        "M∞ copies the server's row"
                    );
                }
                _ => assert_close(&inf, &averaging(n), "M∞ = (1/n)11ᵀ"),
            }
            let mut schedule = Schedule::new(protocol, n, ChaCha8Rng::seed_from_u64(1));
            let mut events = Vec::new();
            let mut seen = 0;
            for _ in 0..6 * n {
                schedule.next(&mut events);
                let mut x = State::identity(rows);
                events.iter().for_each(|e| e.apply(&mut x));
                let m = rows_of(&x);
                seen += events.len();
                assert_close(&product(&inf, &m), &inf, "M∞M_t = M∞");
                assert_close(&product(&m, &inf), &inf, "M_tM∞ = M∞");
                assert!(row_stochastic(&m), "{protocol:?}: M_t row stochastic");
                let doubly = !matches!(protocol, Protocol::AsyncPs { .. });
                assert!(
                    !doubly || column_stochastic(&m),
                    "{protocol:?}: M_t doubly stochastic"
                );
            }
            assert!(seen > 0, "{protocol:?} communicates");
        }
    }
}

#[test]
fn the_simulation_is_deterministic_for_a_seed() {
    for protocol in ALL {
        assert_eq!(runs(protocol, 8, 30), runs(protocol, 8, 30), "{protocol:?}");
    }
    let other = |seed| {
        let mut s = spec(30, vec![8], &[]);
        s.seed = seed;
        (0..30)
            .map(|r| sample(Protocol::AsyncRing, "p", 8, r, &s).unwrap())
            .collect::<Vec<_>>()
    };
    assert_ne!(other(1), other(2), "the seed matters");
    // measure (parallel) gives every run what it gives alone, whatever the other protocols.
    let protocols = [
        (
            "a",
            Protocol::AsyncPs {
                max_delay_rounds: 0.5,
            },
        ),
        ("b", Protocol::AsyncRing),
    ];
    let typed: Vec<(String, Protocol)> =
        protocols.iter().map(|(l, p)| (l.to_string(), *p)).collect();
    let s = spec(20, vec![4, 9], &protocols);
    let samples = measure(&s, &typed).unwrap();
    assert_eq!(samples.len(), 2 * 2 * 20);
    for smp in &samples {
        let (label, protocol) = &typed[smp.protocol];
        assert_eq!(
            Some(smp.t_mix),
            sample(*protocol, label, smp.n, smp.run, &s)
        );
    }
    let alone = measure(&s, &typed[1..]).unwrap();
    assert!(alone.iter().all(|a| samples
        .iter()
        .any(|b| b.protocol == 1 && (b.n, b.run, b.t_mix) == (a.n, a.run, a.t_mix))));
    assert_ne!(
        run_rng(7, "a", 4, 0).get_stream(),
        run_rng(7, "a", 4, 1).get_stream()
    );
}

/// Case study I: AllReduce mixes in exactly n worker steps; Section 6 item 2: local steps in m·n.
#[test]
fn allreduce_takes_n_and_local_steps_m_n() {
    for n in 2..=20 {
        assert!(
            runs(Protocol::AllReduce, n, 20)
                .iter()
                .all(|&t| t == n as u64),
            "n = {n}"
        );
        for m in 1..=3 {
            let t = runs(Protocol::LocalSteps { m }, n, 20);
            assert!(
                t.iter().all(|&t| t == (m * n) as u64),
                "m = {m}, n = {n}: {t:?}"
            );
        }
        assert_eq!(Protocol::AllReduce.derived_t_mix(n), Some(n as u64));
    }
}

/// Slack: M_k⋯M_0 − M∞ = (1 − γ)^k (I − M∞) for every X, so every run takes n·k steps with
/// k = ⌈ln 2 / −ln(1 − γ)⌉; as γ < −ln(1 − γ) < γ/(1 − γ), t_mix/n lies in
/// [ln 2 (1 − γ)/γ, ln 2/γ + 1): the paper's "increased by a factor of γ⁻¹", with the constant
/// ln 2 of the halving.
#[test]
fn slack_takes_n_ln2_over_gamma() {
    for gamma in [0.013f64, 0.05, 0.2, 0.37, 0.8, 1.0] {
        for n in [2, 5, 8] {
            let k = if gamma == 1.0 {
                1.0
            } else {
                (2f64.ln() / -(1.0 - gamma).ln()).ceil()
            };
            let want = n as u64 * k as u64;
            let t = runs(Protocol::Slack { gamma }, n, 10);
            assert!(
                t.iter().all(|&t| t == want),
                "γ = {gamma}, n = {n}: {t:?} ≠ {want}"
            );
            assert_eq!(Protocol::Slack { gamma }.derived_t_mix(n), Some(want));
            let per_n = want as f64 / n as f64;
            assert!(per_n >= 2f64.ln() * (1.0 - gamma) / gamma && per_n < 2f64.ln() / gamma + 1.0);
        }
    }
}

/// SyncDR. λ = 1 − ρ, ρ = max_{i≥2}|μ_i(W)|, from libtorch's eigvalsh of the ring's W. Since W
/// is symmetric, ‖W^k X − M∞X‖_F ≤ ρ^k‖X − M∞X‖_F for every X, with equality at the
/// eigenvector of ρ: the worst X needs k* = min{k : ρ^k ≤ ½} rounds, n·k* steps. And
/// k* ≤ ⌈ln 2/λ⌉ (−ln(1 − λ) ≥ λ) < (1 + ln 2)/λ (λ ≤ 1) ≤ C ln(n)/λ with C = 1 + 1/ln 2
/// (ln n ≥ ln 2): the paper's t_mix ≤ log(n)/λ (Section 5.1) counts rounds; in worker steps
/// t_mix ≤ C·n·ln(n)/λ.
#[test]
fn sync_ring_is_within_its_spectral_gap_bound() {
    let c = 1.0 + 1.0 / 2f64.ln();
    for n in [2, 3, 4, 5, 6, 8, 12, 16, 32, 64] {
        let w = matrix(&Operator::Ring, n);
        let flat: Vec<f64> = w.iter().flatten().copied().collect();
        let mu = tch::Tensor::from_slice(&flat)
            .reshape([n as i64, n as i64])
            .linalg_eigvalsh("L");
        let mut mu = Vec::<f64>::try_from(&mu).unwrap();
        mu.sort_by(|a, b| b.abs().total_cmp(&a.abs()));
        assert!((mu[0] - 1.0).abs() < 1e-12, "μ_1 = 1");
        let rho = mu[1].abs().max(0.0);
        let rho = if rho < 1e-12 { 0.0 } else { rho };
        assert!(
            (rho - ring_contraction(n)).abs() < 1e-12,
            "n = {n}: ρ = {rho}"
        );
        let lambda = 1.0 - rho;
        let worst = Protocol::SyncRing.derived_t_mix(n).unwrap();
        let k = (1..).find(|&k| rho.powi(k) <= 0.5).unwrap() as u64;
        assert_eq!(worst, n as u64 * k);
        assert!(k as f64 <= (2f64.ln() / lambda).ceil());
        assert!(
            (worst as f64) <= c * n as f64 * (n as f64).ln() / lambda,
            "n = {n}"
        );
        // The eigenvector of ρ attains the worst case; Gaussian states never exceed it.
        if n >= 4 {
            let v: Vec<f64> = (0..n)
                .map(|i| (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
                .collect();
            let mut schedule = Schedule::new(Protocol::SyncRing, n, ChaCha8Rng::seed_from_u64(0));
            let at = t_mix(
                |e| schedule.next(e),
                Consensus::Average,
                State::new(1, v),
                1 << 30,
            );
            assert_eq!(at, Some(worst), "n = {n}");
        }
        let t = runs(Protocol::SyncRing, n, 200);
        assert!(
            t.iter().all(|&t| t <= worst && t.is_multiple_of(n as u64)),
            "n = {n}: {t:?}"
        );
    }
}

/// AsyncDR. A step averages one ring edge, each with probability 1/n, so with e = X − M∞X,
/// E[‖e_{t+1}‖² | e_t] = e_tᵀ E[M_t] e_t (M_t a symmetric projection), E[M_t] = I − L/(2n) with
/// L the ring's Laplacian: E‖e_t‖² ≤ (1 − μ₂(L)/(2n))^t ‖e_0‖², μ₂(L) = 2 − 2cos(2π/n), and by
/// Markov's inequality P(t_mix > t) ≤ 4(1 − μ₂(L)/(2n))^t.
#[test]
fn async_ring_obeys_its_expected_contraction() {
    for n in [3, 6, 16, 32] {
        let rate =
            1.0 - (2.0 - 2.0 * (2.0 * std::f64::consts::PI / n as f64).cos()) / (2.0 * n as f64);
        let t = runs(Protocol::AsyncRing, n, 1000);
        for bound in [0.5, 0.2, 0.05] {
            let at = ((bound / 4.0f64).ln() / rate.ln()).ceil() as u64;
            let beyond = t.iter().filter(|&&t| t > at).count() as f64 / t.len() as f64;
            assert!(
                beyond <= bound,
                "n = {n}: P(t_mix > {at}) = {beyond} > {bound}"
            );
        }
    }
}

/// AsyncPS. Every request is delivered within τ = round(max_delay_rounds · n) steps, and the
/// state is consensus once every worker has had a pull delivered (case study III: τ-bounded
/// staleness bounds t_mix): t_mix ≤ that time.
#[test]
fn async_ps_delivers_within_its_delay_and_mixes_once_all_pulled() {
    for (n, rounds) in [(2, 0.0), (5, 0.0), (8, 1.0), (16, 2.5)] {
        let protocol = Protocol::AsyncPs {
            max_delay_rounds: rounds,
        };
        let tau = (rounds * n as f64).round() as usize;
        for run in 0..50 {
            let mut rng = run_rng(3, "ps", n, run);
            let x = State::gaussian(n + 1, 2, &mut rng);
            let mut schedule = Schedule::new(protocol, n, rng.clone());
            let (mut events, mut delivered, mut pulled) = (Vec::new(), 0, vec![false; n]);
            let mut all_pulled = None;
            for t in 0..20 * n {
                schedule.next(&mut events);
                delivered += events.len();
                assert!(
                    delivered <= t + 1 && delivered + tau > t,
                    "t = {t}: {delivered} delivered"
                );
                for e in &events {
                    let Operator::Pull { worker, server } = *e else {
                        panic!("{e:?}")
                    };
                    assert_eq!(server, n);
                    pulled[worker] = true;
                }
                if all_pulled.is_none() && pulled.iter().all(|&p| p) {
                    all_pulled = Some(t as u64 + 1);
                }
            }
            let mut schedule = Schedule::new(protocol, n, rng);
            let t = t_mix(|e| schedule.next(e), protocol.consensus(n), x, 1 << 30).unwrap();
            assert!(t >= 1 && t <= all_pulled.expect("all pulled within 20n steps"));
        }
    }
}

#[test]
fn halving_is_decided_up_to_rounding_only() {
    assert!(halved(0.25, 1.0) && halved(0.25 * (1.0 + 1e-12), 1.0));
    assert!(!halved(0.2501, 1.0));
    assert!(halved(0.0, 0.0), "a consensus state has t_mix = 0");
}

/// Lemma 1 on the synchronous protocols: with ξ = 1 (their M_t are symmetric doubly stochastic,
/// ‖M_t‖₂ ≤ 1, Assumption 3), after j·t_mix steps (t_mix the worst case over X) the distance to
/// consensus is at most 2^{−j}‖X − M∞X‖ ≤ 2^{−⌊(t−s)/t_mix⌋}(1 + ξ)ξ‖X‖, (2).
#[test]
fn lemma_1_halves_the_distance_every_t_mix() {
    for protocol in [
        Protocol::SyncRing,
        Protocol::Slack { gamma: 0.1 },
        Protocol::LocalSteps { m: 3 },
    ] {
        for n in [4, 7, 12] {
            let worst = protocol.derived_t_mix(n).unwrap();
            let mut rng = run_rng(5, "lemma", n, 0);
            let mut x = State::gaussian(n, 3, &mut rng);
            let initial = Consensus::Average.distance2(&x).sqrt();
            let norm: f64 = (0..n)
                .flat_map(|i| x.row(i).to_vec())
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt();
            let mut schedule = Schedule::new(protocol, n, rng);
            let mut events = Vec::new();
            for t in 1..=6 * worst {
                schedule.next(&mut events);
                events.iter().for_each(|e| e.apply(&mut x));
                let j = (t / worst) as i32;
                let distance = Consensus::Average.distance2(&x).sqrt();
                assert!(
                    distance <= 0.5f64.powi(j) * initial * (1.0 + 1e-9),
                    "{protocol:?} n = {n} t = {t}"
                );
                assert!(distance <= 0.5f64.powi(j) * 2.0 * norm, "(2)");
            }
        }
    }
}

#[test]
fn the_training_nodes_are_mixed_as_the_simulated_state() {
    // apply_tensors (rows as tensors, what training mixes) against apply (the State of the
    // t_mix simulation) on a random X, and the rows each event sends
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for n in 2..=7 {
        let events = [
            Operator::Slack { gamma: 1.0 },
            Operator::Slack { gamma: 0.3 },
            Operator::Ring,
            Operator::Pair(n - 1, 0),
        ];
        for event in events {
            let mut x = State::gaussian(n, 5, &mut rng);
            let rows: Vec<tch::Tensor> =
                (0..n).map(|i| tch::Tensor::from_slice(x.row(i))).collect();
            event.apply(&mut x);
            event.apply_tensors(&rows);
            for (i, row) in rows.iter().enumerate() {
                let got = Vec::<f64>::try_from(row).unwrap();
                for (g, want) in got.iter().zip(x.row(i)) {
                    assert!((g - want).abs() < 1e-14, "{event:?}, n = {n}, row {i}");
                }
            }
        }
        assert_eq!(Operator::Slack { gamma: 0.5 }.rows_sent(n), n as u64);
        let ring = if n == 2 { 2 } else { 2 * n as u64 };
        assert_eq!(Operator::Ring.rows_sent(n), ring, "ring of {n}");
    }
}

#[test]
fn the_events_over_ranks_in_one_process_are_the_events() {
    // apply_tensors_over_ranks with one rank holding every row (its shifts and exchanges
    // with itself): the ring and pairs give the same bits as apply_tensors, slack rounds
    // the same up to the mean's rounding; tests/mpi.rs runs them over 2 and 4 ranks
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    for n in 2..=6 {
        let events = [
            Operator::Slack { gamma: 1.0 },
            Operator::Slack { gamma: 0.3 },
            Operator::Ring,
            Operator::Pair(n - 1, 0),
            Operator::Pair(0, 1),
        ];
        for event in events {
            let x = State::gaussian(n, 5, &mut rng);
            let rows = || -> Vec<tch::Tensor> {
                (0..n).map(|i| tch::Tensor::from_slice(x.row(i))).collect()
            };
            let (one, split) = (rows(), rows());
            event.apply_tensors(&one);
            event.apply_tensors_over_ranks(&split, 0..n, n);
            for (i, (a, b)) in one.iter().zip(&split).enumerate() {
                let (a, b) = (
                    Vec::<f64>::try_from(a).unwrap(),
                    Vec::<f64>::try_from(b).unwrap(),
                );
                match event {
                    Operator::Slack { .. } => {
                        for (u, v) in a.iter().zip(&b) {
                            assert!((u - v).abs() < 1e-14, "{event:?}, n = {n}, row {i}");
                        }
                    }
                    _ => assert_eq!(a, b, "{event:?}, n = {n}, row {i}"),
                }
            }
        }
    }
}

mod live_log {
    use super::super::log::{self, Entry, Merged, Record};
    use super::super::Operator;

    fn step(time: f64, worker: usize) -> Entry {
        Entry {
            time,
            record: Record::Step { worker },
        }
    }

    fn round(time: f64, round: u64) -> Entry {
        Entry {
            time,
            record: Record::Round {
                round,
                event: Operator::Slack { gamma: 0.5 },
            },
        }
    }

    #[test]
    fn records_survive_the_bytes_between_ranks() {
        let entries = vec![
            step(1.5, 3),
            Entry {
                time: 2.0,
                record: Record::Event(Operator::Pair(3, 0)),
            },
            Entry {
                time: 2.5,
                record: Record::Event(Operator::Pull {
                    worker: 1,
                    server: 4,
                }),
            },
            round(3.0, 7),
            Entry {
                time: 3.5,
                record: Record::Round {
                    round: 8,
                    event: Operator::Ring,
                },
            },
        ];
        assert_eq!(log::from_bytes(&log::to_bytes(&entries)).unwrap(), entries);
        assert!(log::from_bytes(&[0; 5]).is_err());
    }

    #[test]
    fn a_round_acts_once_after_the_last_rank_entered_it() {
        // rank 0 steps at 1, enters round 0 at 1.1 and steps again at 3; rank 1 steps at 2
        // and enters at 2.1: the round acts at 2.1, between the second and third steps
        let ranks = vec![
            vec![step(1.0, 0), round(1.1, 0), step(3.0, 0)],
            vec![step(2.0, 1), round(2.1, 0)],
        ];
        let merged = log::merge(&ranks).unwrap();
        let slack = Operator::Slack { gamma: 0.5 };
        assert_eq!(
            merged,
            [
                Merged::Step {
                    worker: 0,
                    time: 1.0
                },
                Merged::Step {
                    worker: 1,
                    time: 2.0
                },
                Merged::Event {
                    event: slack,
                    time: 2.1
                },
                Merged::Step {
                    worker: 0,
                    time: 3.0
                },
            ]
        );
        assert_eq!(
            log::batches(&merged).unwrap(),
            [vec![], vec![slack], vec![]]
        );
        let csv = String::from_utf8(log::to_csv(&merged).unwrap()).unwrap();
        assert!(
            csv.starts_with("time_s,record,i,j,gamma\n0.000000000,step,0,,\n"),
            "{csv}"
        );
        assert!(csv.contains("\n1.100000000,slack,,,0.5\n"), "{csv}");
    }

    #[test]
    fn a_round_some_rank_missed_or_an_event_before_any_step_is_refused() {
        let missed = vec![vec![step(1.0, 0), round(1.1, 0)], vec![step(2.0, 1)]];
        let err = log::merge(&missed).unwrap_err().to_string();
        assert!(err.contains("round 0 was entered by 1 of 2 ranks"), "{err}");
        let early = vec![vec![
            Entry {
                time: 0.5,
                record: Record::Event(Operator::Pair(0, 1)),
            },
            step(1.0, 0),
        ]];
        let merged = log::merge(&early).unwrap();
        assert!(log::batches(&merged).is_err());
    }
}
