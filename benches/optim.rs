//! Optimizer speed: one iteration of every registered optimizer on the parameter shapes
//! of ResNet-34 for CIFAR-10 (the AdaBelief-suite network, P = 21,282,122), beside the
//! device's copy bandwidth. `scripts/bench_optim_torch.py` times `torch.optim.Adam` on the
//! same shapes; `scripts/bench-optim` runs both and prints the SISA-vs-Adam ratio.
//!
//! ```text
//! cargo bench --bench optim -- [--device cpu|cuda[:N]] [--filter sisa,adam]
//!     [--exclude shampoo,soap] [--iters 20] [--warmup 3] [--threads N] [--budget 20]
//!     [--no-proto]
//! ```
//! The same settings can come from `PISA_BENCH_DEVICE`, `PISA_BENCH_FILTER`,
//! `PISA_BENCH_EXCLUDE`,
//! `PISA_BENCH_ITERS`, `PISA_BENCH_WARMUP`, `PISA_BENCH_THREADS`, `PISA_BENCH_BUDGET`.
//!
//! One iteration is what the training loop does (ARCHITECTURE.md "The one loop"):
//! `begin_iteration`, `local_update` for each of the m workers with a precomputed
//! gradient, `end_iteration`. Every optimizer runs with m = 1; the ADMM family (and the
//! federated one, with local_steps = 1) also with m = 4, whose per-worker figure is the
//! iteration time / 4 (the aggregation (2.9) in `begin_iteration` included). Times are
//! medians over the timed iterations.
//!
//! Bytes moved (the GB/s column) is a lower bound, the same model for every optimizer:
//! each worker's gradient read once, every state value (`state_numel`) read and written
//! once, and w read and written once: 4·(m·P + 2·state_numel + 2P) bytes per iteration
//! in f32. For torch's Adam this is 7P·4 bytes, as in the Python script.
//!
//! `sisa-proto` and `sisa-proto-next` (not registered; `--no-proto` leaves them out) are
//! SISA scheme III written with the op sequences this benchmark recommends for
//! `src/optim/admm`, checked against the registered `sisa` in f64: see [`SisaProto`].
use pisa::optim::layout::Layout;
use pisa::optim::registry::{self, Context};
use pisa::optim::Optimizer;
use pisa::spec::OptimizerSpec;
use pisa::tasks::Local;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};

/// P of the AdaBelief-suite CIFAR ResNet-34.
const RESNET34_CIFAR_PARAMS: i64 = 21_282_122;
/// Samples per worker gradient (only classic optimizers look at it).
const SAMPLES: usize = 32;
/// What the optimizers are told about the run: CIFAR-10 at batch 128 (391 iterations per
/// epoch) for 200 epochs.
const PER_EPOCH: usize = 391;
const ITERATIONS: usize = 200 * PER_EPOCH;

struct Args {
    device: Device,
    filter: Vec<String>,
    exclude: Vec<String>,
    iters: usize,
    warmup: usize,
    threads: i32,
    budget: Duration,
    proto: bool,
}

fn parse_args() -> Args {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut device = env("PISA_BENCH_DEVICE").unwrap_or_else(|| "cpu".into());
    let mut filter = env("PISA_BENCH_FILTER").unwrap_or_default();
    let mut exclude = env("PISA_BENCH_EXCLUDE").unwrap_or_default();
    let mut iters = env("PISA_BENCH_ITERS").unwrap_or_else(|| "20".into());
    let mut warmup = env("PISA_BENCH_WARMUP").unwrap_or_else(|| "3".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = env("PISA_BENCH_THREADS").unwrap_or_else(|| cores.to_string());
    let mut budget = env("PISA_BENCH_BUDGET").unwrap_or_else(|| "20".into());
    let mut proto = true;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let slot = match a.as_str() {
            "--device" => &mut device,
            "--filter" => &mut filter,
            "--exclude" => &mut exclude,
            "--iters" => &mut iters,
            "--warmup" => &mut warmup,
            "--threads" => &mut threads,
            "--budget" => &mut budget,
            "--no-proto" => {
                proto = false;
                continue;
            }
            // `cargo bench` passes --bench; anything else is not ours either.
            _ => continue,
        };
        *slot = args.next().unwrap_or_else(|| panic!("{a} needs a value"));
    }
    let device = match device.as_str() {
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        d => match d.strip_prefix("cuda:").and_then(|i| i.parse().ok()) {
            Some(i) => Device::Cuda(i),
            None => panic!("--device must be cpu, cuda or cuda:N, not {d:?}"),
        },
    };
    let number = |s: &str, what: &str| -> f64 {
        s.parse()
            .unwrap_or_else(|_| panic!("{what} must be a number, not {s:?}"))
    };
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    Args {
        device,
        filter: list(&filter),
        exclude: list(&exclude),
        iters: number(&iters, "--iters").max(1.0) as usize,
        warmup: number(&warmup, "--warmup") as usize,
        threads: number(&threads, "--threads") as i32,
        budget: Duration::from_secs_f64(number(&budget, "--budget")),
        proto,
    }
}

/// The parameters of the AdaBelief-suite ResNet-34 for CIFAR-10 (kuangliu's
/// `models/resnet.py`) in `named_parameters()` order: 3×3 stem conv to 64 channels,
/// BasicBlocks [3, 4, 6, 3] at 64/128/256/512 channels, a 1×1 conv + BN shortcut where
/// the shape changes, linear 512 → 10 with bias; convolutions have no bias.
fn resnet34_cifar() -> Layout {
    let mut shapes: Vec<(String, Vec<i64>)> = vec![("conv1.weight".into(), vec![64, 3, 3, 3])];
    let bn = |shapes: &mut Vec<(String, Vec<i64>)>, name: &str, c: i64| {
        shapes.push((format!("{name}.weight"), vec![c]));
        shapes.push((format!("{name}.bias"), vec![c]));
    };
    bn(&mut shapes, "bn1", 64);
    let mut inp = 64;
    for (layer, (blocks, planes)) in [(3, 64i64), (4, 128), (6, 256), (3, 512)]
        .into_iter()
        .enumerate()
    {
        for b in 0..blocks {
            let p = format!("layer{}.{b}", layer + 1);
            shapes.push((format!("{p}.conv1.weight"), vec![planes, inp, 3, 3]));
            bn(&mut shapes, &format!("{p}.bn1"), planes);
            shapes.push((format!("{p}.conv2.weight"), vec![planes, planes, 3, 3]));
            bn(&mut shapes, &format!("{p}.bn2"), planes);
            // stride 2 in the first block of layers 2-4, where the channels change too
            if inp != planes {
                shapes.push((format!("{p}.shortcut.0.weight"), vec![planes, inp, 1, 1]));
                bn(&mut shapes, &format!("{p}.shortcut.1"), planes);
            }
            inp = planes;
        }
    }
    shapes.push(("linear.weight".into(), vec![10, 512]));
    shapes.push(("linear.bias".into(), vec![10]));
    Layout::new(shapes)
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median seconds of `f` over `iters` timed calls after `warmup` untimed ones, and the
/// number timed. Slow optimizers stop early: timing once `budget` is spent (at least one
/// call), warm-up after `budget`/2; a first call longer than `budget` is the only
/// sample (reported as 0 timed: cold, first-step costs included).
fn time(
    device: Device,
    warmup: usize,
    iters: usize,
    budget: Duration,
    mut f: impl FnMut(),
) -> (f64, usize) {
    let start = Instant::now();
    for i in 0..warmup {
        if i > 0 && start.elapsed() > budget / 2 {
            break;
        }
        f();
        sync(device);
        if i == 0 && start.elapsed() > budget {
            return (start.elapsed().as_secs_f64(), 0);
        }
    }
    let start = Instant::now();
    let mut times = Vec::with_capacity(iters);
    while times.len() < iters && (times.is_empty() || start.elapsed() < budget) {
        let t = Instant::now();
        f();
        sync(device);
        times.push(t.elapsed().as_secs_f64());
    }
    let n = times.len();
    (median(times), n)
}

/// Seconds per copy of P f32 values (`dst.copy_(src)`), and the bandwidth 8P/t.
fn copy_bandwidth(args: &Args, p: i64) -> (f64, f64) {
    let src = Tensor::randn([p], (Kind::Float, args.device));
    let mut dst = Tensor::empty([p], (Kind::Float, args.device));
    let (t, _) = time(args.device, 3, 30, args.budget, || {
        dst.copy_(&src);
    });
    (t, 8.0 * p as f64 / t)
}

/// What a temporary costs: one elementwise add of P f32 values into a new tensor, into
/// an existing one (`add_out`) and in place. On the CPU a new 85 MB tensor comes from
/// mmap, so the difference is page faults and the kernel zeroing the pages.
fn temporaries(args: &Args, p: i64) {
    let a = Tensor::randn([p], (Kind::Float, args.device));
    let b = Tensor::randn([p], (Kind::Float, args.device));
    let mut c = Tensor::empty([p], (Kind::Float, args.device));
    let (fresh, _) = time(args.device, 2, 10, args.budget, || {
        let _ = &a + &b;
    });
    let (out, _) = time(args.device, 2, 10, args.budget, || {
        let _ = a.add_out(&c, &b);
    });
    let (inplace, _) = time(args.device, 2, 10, args.budget, || {
        let _ = c.g_add_(&b);
    });
    println!(
        "elementwise add of P f32: {:.2} ms into a new tensor, {:.2} ms into an existing one (add_out), {:.2} ms in place",
        fresh * 1e3,
        out * 1e3,
        inplace * 1e3
    );
    println!(
        "RESULT add_new_ms={:.4} add_out_ms={:.4} add_inplace_ms={:.4}",
        fresh * 1e3,
        out * 1e3,
        inplace * 1e3
    );
}

/// The spec for an entry with its defaults, filling the keys the registry requires:
/// σ⁰ = 1, scheme = 3 (SISA's Adam-like), inner = Adam for wrappers (Lookahead), and
/// local_steps = 1 for the federated family.
fn default_spec(entry: &registry::Entry) -> Result<OptimizerSpec, String> {
    use pisa::optim::hyper::{Default as D, Kind as K};
    let mut hypers = toml::Table::new();
    for h in entry.hypers {
        let value = match (h.name, h.kind, h.default) {
            (_, K::Optimizer, _) => {
                let mut inner = toml::Table::new();
                inner.insert("name".into(), "adam".into());
                Some(toml::Value::Table(inner))
            }
            ("sigma0", _, D::Required) => Some(1.0.into()),
            // federated optimizers: one local step per round, so that the loop's
            // local_update drives them
            ("local_steps", _, _) => Some(1.into()),
            ("scheme", _, D::Required) => Some(3.into()),
            (name, _, D::Required) => {
                return Err(format!("no benchmark value for required key {name}"))
            }
            _ => None,
        };
        if let Some(v) = value {
            hypers.insert(h.name.into(), v);
        }
    }
    Ok(OptimizerSpec {
        name: entry.name.into(),
        hypers,
    })
}

struct Row {
    name: String,
    m: usize,
    iter_s: f64,
    timed: usize,
    state_per_p: f64,
    bytes: f64,
}

fn print_table(rows: &[Row], copy_bw: f64) {
    println!("| optimizer | m | ms / iteration | ms / worker update | state / P | GB/s (lower bound) | of copy bw | timed iters |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let bw = r.bytes / r.iter_s;
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {:.0}% | {} |",
            r.name,
            r.m,
            r.iter_s * 1e3,
            r.iter_s * 1e3 / r.m as f64,
            r.state_per_p,
            bw / 1e9,
            100.0 * bw / copy_bw,
            r.timed
        );
    }
}

/// Builds an optimizer from w⁰ and the workers' α.
type Make<'a> = dyn Fn(&Tensor, &[f64]) -> anyhow::Result<Box<dyn Optimizer>> + 'a;

fn bench_one(
    args: &Args,
    name: &str,
    m: usize,
    make: &Make,
    w0: &Tensor,
    locals: &[Local],
) -> Result<Row, String> {
    let p = w0.numel() as f64;
    let alphas = vec![1.0 / m as f64; m];
    let run = catch_unwind(AssertUnwindSafe(|| -> Result<(f64, usize, i64), String> {
        let mut opt = make(w0, &alphas).map_err(|e| format!("build failed: {e:#}"))?;
        let mut error = None;
        let (t, n) = time(args.device, args.warmup, args.iters, args.budget, || {
            opt.begin_iteration();
            for (i, local) in locals[..m].iter().enumerate() {
                if let Err(e) = opt.local_update(i, local) {
                    error.get_or_insert(format!("{e:#}"));
                }
            }
            opt.end_iteration();
        });
        match error {
            Some(e) => Err(format!("local_update failed: {e}")),
            None => Ok((t, n, opt.state_numel())),
        }
    }));
    let (t, n, state) = match run {
        Ok(r) => r?,
        Err(_) => return Err("panicked (message above)".into()),
    };
    let floats = m as f64 * p + 2.0 * state as f64 + 2.0 * p;
    Ok(Row {
        name: name.into(),
        m,
        iter_s: t,
        timed: n,
        state_per_p: state as f64 / p,
        bytes: 4.0 * floats,
    })
}

/// Keeps a row and prints its machine-readable line, or says why there is none.
fn record(rows: &mut Vec<Row>, name: &str, m: usize, row: Result<Row, String>) {
    match row {
        Ok(row) => {
            println!(
                "RESULT name={name} m={m} iter_ms={:.4} worker_ms={:.4}",
                row.iter_s * 1e3,
                row.iter_s * 1e3 / m as f64
            );
            rows.push(row);
        }
        Err(e) => println!("note: {name} (m = {m}) skipped: {e}"),
    }
}

fn main() {
    let args = parse_args();
    tch::set_num_threads(args.threads);
    tch::manual_seed(0);
    let layout = resnet34_cifar();
    let p = layout.numel();
    assert_eq!(p, RESNET34_CIFAR_PARAMS, "ResNet-34 CIFAR parameter count");
    if args.device != Device::Cpu && !tch::Cuda::is_available() {
        eprintln!("CUDA is not available to libtorch here");
        std::process::exit(2);
    }
    println!(
        "# pisa optimizer benchmark: ResNet-34/CIFAR-10 shapes, P = {p} ({} tensors), f32, device {:?}, {} threads",
        layout.segments.len(),
        args.device,
        tch::get_num_threads()
    );
    let (copy_s, copy_bw) = copy_bandwidth(&args, p);
    println!(
        "copy bandwidth: {:.2} ms per copy_ of P f32 = {:.1} GB/s (read + write, 8P bytes)",
        copy_s * 1e3,
        copy_bw / 1e9
    );
    println!("RESULT copy_gbs={:.3}", copy_bw / 1e9);

    temporaries(&args, p);

    let w0 = Tensor::randn([p], (Kind::Float, args.device)) * 0.05;
    let locals: Vec<Local> = (0..4)
        .map(|_| Local {
            grad: Tensor::randn([p], (Kind::Float, args.device)) * 1e-2,
            samples: SAMPLES,
            hessian: None,
        })
        .collect();
    let wanted = |name: &str| {
        (args.filter.is_empty() || args.filter.iter().any(|f| f == name))
            && !args.exclude.iter().any(|f| f == name)
    };
    let admm: Vec<&str> = pisa::optim::admm::ENTRIES.iter().map(|e| e.name).collect();
    let schedule = Default::default();

    let mut rows = Vec::new();
    for entry in registry::all() {
        if !wanted(entry.name) {
            continue;
        }
        let spec = match default_spec(entry) {
            Ok(s) => s,
            Err(e) => {
                println!("note: {} skipped: {e}", entry.name);
                continue;
            }
        };
        let make = |w0: &Tensor, alphas: &[f64]| {
            let context = Context {
                w0,
                layout: &layout,
                alphas,
                schedule: &schedule,
                iterations: ITERATIONS,
                iterations_per_epoch: PER_EPOCH,
            };
            registry::build(&spec, &context)
        };
        // m = 4 too for the optimizers with per-worker state: the ADMM family and the
        // federated ones (which declare local_steps)
        let workers =
            admm.contains(&entry.name) || entry.hypers.iter().any(|h| h.name == "local_steps");
        let ms: &[usize] = if workers { &[1, 4] } else { &[1] };
        for &m in ms {
            record(
                &mut rows,
                entry.name,
                m,
                bench_one(&args, entry.name, m, &make, &w0, &locals),
            );
        }
    }
    for (name, at_begin) in [("sisa-proto", true), ("sisa-proto-next", false)] {
        if !args.proto || !wanted(name) {
            continue;
        }
        let make = |w0: &Tensor, alphas: &[f64]| -> anyhow::Result<Box<dyn Optimizer>> {
            Ok(Box::new(SisaProto::new(
                w0,
                alphas,
                SisaProto::DEFAULTS,
                at_begin,
            )))
        };
        for m in [1, 4] {
            record(
                &mut rows,
                name,
                m,
                bench_one(&args, name, m, &make, &w0, &locals),
            );
        }
        check_proto_against_sisa(name, at_begin);
    }
    println!();
    print_table(&rows, copy_bw);
    println!();
    println!(
        "GB/s: lower-bound bytes 4·(m·P + 2·state_numel + 2P) per iteration (gradients read, state and w read and written once) / median time; \"of copy bw\" divides by the {:.1} GB/s of copy_. timed iters 0: one cold first call, longer than the budget.",
        copy_bw / 1e9
    );
}

/// SISA scheme III (Algorithm 2, (2.9)–(2.14), (4.2)–(4.5)) with the op sequence the
/// benchmark recommends: no temporaries (one [P] scratch buffer reused), in-place ops
/// only, and the numerator of (2.9) formed once per iteration from Σα_i π_i instead of
/// being read and written by every worker.
///
/// Since π_i⁺ = π_i − σx_i, the numerator Σα_i(σw − σx_i + π_i⁺) equals
/// σΣα_i·w + 2S⁺ − S with S = Σα_i π_i before the iteration and S⁺ after it, so
/// begin_iteration reads the m duals once (one gemv) and each worker touches only its
/// gradient, its dual and its moment. Per worker, with two [P] scratch buffers u and s
/// and 0-dim tensors for the scalars tch's bindings cannot pass (no `value=`/`alpha=`):
/// ```text
/// u = π + g                 add_out                      (2.10), (2.13)   3P
/// s = u·u                   mul_out                                       2P
/// n.lerp_(s, 1 − β)         n = βn + (1 − β)u²           (4.4) scheme III 3P
/// s = min(n, η²(1 − βᵗ))    clamp_max_out                (4.3) on n/(1 − βᵗ) 2P
/// s.sqrt_()                                                               2P
/// s = −1 + k·s              addcmul_out, k = −ρ/(σ√(1 − βᵗ)): s = −(σ + ρ√m)/σ  2P
/// π.addcdiv_(u, s)          π⁺ = π − σu/(σ + ρ√m)        (2.13), (2.14)   4P
/// ```
/// 18P floats moved per worker (the registered SISA moves about 37P and allocates ten
/// [P] temporaries); begin_iteration: S⁺ = dualsᵀα (mv_out, (m + 1)P), then
/// w ← (σΣα·w + 2S⁺ − S)/(σΣα + λ) as mul_, addcmul_, addcmul_ (8P).
///
/// `sisa-proto-next` is the smaller change: the same in-place ops but the numerator kept
/// as now, each worker adding α_i(π_i⁺ − σx_i) to it (3 more passes over [P] vectors):
/// ```text
/// u, s = u·u, n.lerp_, s = min(n, ·), s.sqrt_()    as above                12P
/// s = σ + (ρ/√(1 − βᵗ))·s   addcmul_out                                   2P
/// s = u / s                 div_out                      x (2.13)         3P
/// π.addcmul_(s, −σ)         (2.14)                                        3P
/// next.addcmul_(π, α); next.addcmul_(s, −ασ)   numerator of (2.9)         6P
/// ```
/// 26P per worker, and 4P in begin_iteration (w = next/D, next = w·σΣα by *_out).
pub struct SisaProto {
    h: ProtoHypers,
    /// Numerator formed at begin_iteration from Σα_i π_i (true), or per worker (false).
    at_begin: bool,
    alpha_sum: f64,
    alphas: Vec<f64>,
    /// α as a [m] tensor for the gemv.
    alpha: Tensor,
    sigma: f64,
    iteration: usize,
    w: Tensor,
    dual: Tensor,
    moment: Tensor,
    steps: Vec<i32>,
    /// S = Σα_i π_i as of the last begin_iteration, and the buffer S⁺ is formed in;
    /// per-worker aggregation keeps the numerator of (2.9) in `sum`.
    sum: Tensor,
    sum_next: Tensor,
    /// u = π_i + g_i, and the scratch the denominator is formed in.
    u: Tensor,
    scratch: Tensor,
}

#[derive(Clone, Copy)]
pub struct ProtoHypers {
    sigma0: f64,
    rho: f64,
    gamma: f64,
    beta: f64,
    eta: f64,
    lambda: f64,
}

impl SisaProto {
    /// SISA's registry defaults with σ⁰ = 1, k0 = 1.
    const DEFAULTS: ProtoHypers = ProtoHypers {
        sigma0: 1.0,
        rho: 1.0,
        gamma: 0.99,
        beta: 0.9,
        eta: 1e8,
        lambda: 0.0,
    };

    fn new(w0: &Tensor, alpha: &[f64], h: ProtoHypers, at_begin: bool) -> Self {
        let m = alpha.len() as i64;
        let p = w0.numel() as i64;
        let opts = (w0.kind(), w0.device());
        let alpha_sum: f64 = alpha.iter().sum();
        Self {
            h,
            at_begin,
            alpha_sum,
            alphas: alpha.to_vec(),
            alpha: Tensor::from_slice(alpha)
                .to_kind(w0.kind())
                .to_device(w0.device()),
            sigma: h.sigma0,
            iteration: 0,
            w: w0.copy(),
            dual: Tensor::zeros([m, p], opts),
            moment: Tensor::zeros([m, p], opts),
            steps: vec![0; m as usize],
            sum: if at_begin {
                Tensor::zeros([p], opts)
            } else {
                w0 * (h.sigma0 * alpha_sum)
            },
            sum_next: Tensor::zeros([p], opts),
            u: Tensor::empty([p], opts),
            scratch: Tensor::empty([p], opts),
        }
    }

    fn scalar(&self, v: f64) -> Tensor {
        Tensor::full([], v, (self.w.kind(), self.w.device()))
    }
}

impl Optimizer for SisaProto {
    fn params(&self) -> &Tensor {
        &self.w
    }

    fn begin_iteration(&mut self) {
        let denominator = self.alpha_sum * self.sigma + self.h.lambda;
        if !self.at_begin {
            // (2.9), then the σΣα·w part of the next numerator
            let _ = self.sum.div_scalar_out(&self.w, denominator);
            self.sigma /= self.h.gamma;
            let _ = self
                .w
                .mul_scalar_out(&self.sum, self.alpha_sum * self.sigma);
            return;
        }
        // (2.9) with numerator σΣα·w + 2S⁺ − S
        let _ = self.dual.tr().mv_out(&self.sum_next, &self.alpha);
        let _ = self
            .w
            .g_mul_scalar_(self.alpha_sum * self.sigma / denominator);
        let _ = self
            .w
            .addcmul_(&self.sum_next, &self.scalar(2.0 / denominator));
        let _ = self.w.addcmul_(&self.sum, &self.scalar(-1.0 / denominator));
        std::mem::swap(&mut self.sum, &mut self.sum_next);
        // (2.12) with k0 = 1
        self.sigma /= self.h.gamma;
    }

    fn needs_hessian(&self) -> bool {
        false
    }

    fn local_update(&mut self, worker: usize, local: &Local) -> anyhow::Result<()> {
        let ProtoHypers { rho, beta, eta, .. } = self.h;
        let sigma = self.sigma;
        self.steps[worker] += 1;
        let bias = 1.0 - beta.powi(self.steps[worker]);
        let mut dual = self.dual.get(worker as i64);
        let mut moment = self.moment.get(worker as i64);
        let (u, s) = (&self.u, &self.scratch);
        let _ = dual.add_out(u, &local.grad); // u = π + g (2.10), (2.13)
        let _ = u.mul_out(s, u); // u²
        let _ = moment.lerp_(s, 1.0 - beta); // (4.4) scheme III
        let _ = moment.clamp_max_out(s, eta * eta * bias); // (4.3)
        let _ = s.shallow_clone().sqrt_();
        if !self.at_begin {
            let (sigma_t, c) = (self.scalar(sigma), self.scalar(rho / bias.sqrt()));
            let _ = sigma_t.addcmul_out(s, s, &c); // σ + ρ√m
            let _ = u.div_out(s, s); // x (2.13)
            let _ = dual.addcmul_(s, &self.scalar(-sigma)); // (2.14)
                                                            // numerator of (2.9): += α_i(π_i⁺ − σx)
            let alpha = self.alphas[worker];
            let (a, b) = (self.scalar(alpha), self.scalar(-alpha * sigma));
            let _ = self.sum.addcmul_(&dual, &a);
            let _ = self.sum.addcmul_(&self.scratch, &b);
            return Ok(());
        }
        let (minus_one, k) = (self.scalar(-1.0), self.scalar(-rho / (sigma * bias.sqrt())));
        let _ = minus_one.addcmul_out(s, s, &k); // −(σ + ρ√m)/σ
        let _ = dual.addcdiv_(u, s); // (2.14): π⁺ = π − σu/(σ + ρ√m)
        Ok(())
    }

    fn end_iteration(&mut self) {
        self.iteration += 1;
    }

    fn state_numel(&self) -> i64 {
        (self.dual.numel() + self.moment.numel() + self.sum.numel()) as i64
    }
}

/// The prototype follows the registered SISA: 30 iterations in f64 on a small problem
/// with m = 3 and unequal α, compared on w.
fn check_proto_against_sisa(name: &str, at_begin: bool) {
    let schedule = Default::default();
    let p = 1000;
    let opts = (Kind::Double, Device::Cpu);
    let layout = Layout::vector(p);
    let w0 = Tensor::randn([p], opts);
    let alphas = [0.5, 0.3, 0.2];
    let grads: Vec<Tensor> = (0..3).map(|_| Tensor::randn([p], opts)).collect();
    let mut hypers = toml::Table::new();
    hypers.insert("sigma0".into(), 1.0.into());
    hypers.insert("scheme".into(), 3.into());
    let spec = OptimizerSpec {
        name: "sisa".into(),
        hypers,
    };
    let context = Context {
        w0: &w0,
        layout: &layout,
        alphas: &alphas,
        schedule: &schedule,
        iterations: ITERATIONS,
        iterations_per_epoch: PER_EPOCH,
    };
    let Ok(mut sisa) = registry::build(&spec, &context) else {
        println!("note: prototype check skipped: sisa does not build");
        return;
    };
    let mut proto = SisaProto::new(&w0, &alphas, SisaProto::DEFAULTS, at_begin);
    let mut worst: f64 = 0.0;
    for l in 0..30 {
        for opt in [sisa.as_mut(), &mut proto as &mut dyn Optimizer] {
            opt.begin_iteration();
            for (i, g) in grads.iter().enumerate() {
                // gradient of a quadratic so that w matters
                let grad = g + opt.params() * (0.1 * (i + 1) as f64) + (l as f64).sin();
                let local = Local {
                    grad,
                    samples: SAMPLES,
                    hessian: None,
                };
                opt.local_update(i, &local).expect("update");
            }
            opt.end_iteration();
        }
        let diff = (sisa.params() - proto.params())
            .abs()
            .max()
            .double_value(&[]);
        let scale = sisa.params().abs().max().double_value(&[]);
        worst = worst.max(diff / scale);
    }
    println!(
        "{name} vs sisa (f64, P = {p}, m = 3, 30 iterations): worst max|Δw|/max|w| = {worst:.2e}"
    );
}
