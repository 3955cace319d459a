//! Optimizer speed: one iteration of every registered optimizer on the parameter shapes
//! of ResNet-34 for CIFAR-10 (the AdaBelief-suite network, P = 21,282,122), beside the
//! device's copy bandwidth. `scripts/bench_optim_torch.py` times `torch.optim.Adam` on the
//! same shapes; `scripts/bench-optim` runs both and prints the SISA-vs-Adam ratio.
//!
//! ```text
//! cargo bench --bench optim -- [--device cpu|cuda[:N]] [--filter sisa,adam]
//!     [--exclude shampoo,soap] [--iters 20] [--warmup 3] [--threads N] [--budget 20]
//! ```
//! The same settings can come from `PISA_BENCH_DEVICE`, `PISA_BENCH_FILTER`,
//! `PISA_BENCH_EXCLUDE`,
//! `PISA_BENCH_ITERS`, `PISA_BENCH_WARMUP`, `PISA_BENCH_THREADS`, `PISA_BENCH_BUDGET`.
//!
//! One iteration is what the training loop does (ARCHITECTURE.md "The one loop"):
//! `begin_iteration`, `local_update` for each of the m workers with a precomputed
//! gradient, `end_iteration`. An optimizer consumes its gradients (the ADMM family works
//! in their buffers), so each iteration first copies the precomputed gradients into the
//! workers' buffers, untimed, as a task would hand over fresh ones. Every optimizer runs with m = 1; the ADMM family (and the
//! federated one, with local_steps = 1) also with m = 4, whose per-worker figure is the
//! iteration time / 4 (the aggregation (2.9) in `begin_iteration` included). Times are
//! medians over the timed iterations.
//!
//! Bytes moved (the GB/s column) is a lower bound, the same model for every optimizer:
//! each worker's gradient read once, every state value (`state_numel`) read and written
//! once, and w read and written once: 4·(m·P + 2·state_numel + 2P) bytes per iteration
//! in f32. For torch's Adam this is 7P·4 bytes, as in the Python script.
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
/// number timed; `setup` runs untimed before every call. Slow optimizers stop early: timing once `budget` is spent (at least one
/// call), warm-up after `budget`/2; a first call longer than `budget` is the only
/// sample (reported as 0 timed: cold, first-step costs included).
fn time(
    device: Device,
    warmup: usize,
    iters: usize,
    budget: Duration,
    mut setup: impl FnMut(),
    mut f: impl FnMut(),
) -> (f64, usize) {
    let start = Instant::now();
    for i in 0..warmup {
        if i > 0 && start.elapsed() > budget / 2 {
            break;
        }
        setup();
        f();
        sync(device);
        if i == 0 && start.elapsed() > budget {
            return (start.elapsed().as_secs_f64(), 0);
        }
    }
    let start = Instant::now();
    let mut times = Vec::with_capacity(iters);
    while times.len() < iters && (times.is_empty() || start.elapsed() < budget) {
        setup();
        sync(device);
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
    let (t, _) = time(
        args.device,
        3,
        30,
        args.budget,
        || {},
        || {
            dst.copy_(&src);
        },
    );
    (t, 8.0 * p as f64 / t)
}

/// What a temporary costs: one elementwise add of P f32 values into a new tensor, into
/// an existing one (`add_out`) and in place. On the CPU a new 85 MB tensor comes from
/// mmap, so the difference is page faults and the kernel zeroing the pages.
fn temporaries(args: &Args, p: i64) {
    let a = Tensor::randn([p], (Kind::Float, args.device));
    let b = Tensor::randn([p], (Kind::Float, args.device));
    let mut c = Tensor::empty([p], (Kind::Float, args.device));
    let (fresh, _) = time(
        args.device,
        2,
        10,
        args.budget,
        || {},
        || {
            let _ = &a + &b;
        },
    );
    let (out, _) = time(
        args.device,
        2,
        10,
        args.budget,
        || {},
        || {
            let _ = a.add_out(&c, &b);
        },
    );
    let (inplace, _) = time(
        args.device,
        2,
        10,
        args.budget,
        || {},
        || {
            let _ = c.g_add_(&b);
        },
    );
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
/// local_steps = 1 for the federated family; SGD with momentum 0.9 (its default 0 is one
/// axpy), as scripts/bench_optim_torch.py's fused SGD.
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
            ("momentum", _, _) if entry.name == "sgd" => Some(0.9.into()),
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
    grads: &[Tensor],
) -> Result<Row, String> {
    let p = w0.numel() as f64;
    let alphas = vec![1.0 / m as f64; m];
    let run = catch_unwind(AssertUnwindSafe(|| -> Result<(f64, usize, i64), String> {
        let mut opt = make(w0, &alphas).map_err(|e| format!("build failed: {e:#}"))?;
        let mut error = None;
        let buffers: Vec<Tensor> = grads[..m].iter().map(Tensor::empty_like).collect();
        let refill = || {
            for (b, g) in buffers.iter().zip(grads) {
                b.shallow_clone().copy_(g);
            }
        };
        let (t, n) = time(
            args.device,
            args.warmup,
            args.iters,
            args.budget,
            refill,
            || {
                opt.begin_iteration();
                for (i, grad) in buffers.iter().enumerate() {
                    let local = Local {
                        grad: grad.shallow_clone(),
                        samples: SAMPLES,
                        hessian: None,
                    };
                    if let Err(e) = opt.local_update(i, local) {
                        error.get_or_insert(format!("{e:#}"));
                    }
                }
                opt.end_iteration();
            },
        );
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
    let grads: Vec<Tensor> = (0..4)
        .map(|_| Tensor::randn([p], (Kind::Float, args.device)) * 1e-2)
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
                bench_one(&args, entry.name, m, &make, &w0, &grads),
            );
        }
    }
    println!();
    print_table(&rows, copy_bw);
    println!();
    println!(
        "GB/s: lower-bound bytes 4·(m·P + 2·state_numel + 2P) per iteration (gradients read, state and w read and written once) / median time; \"of copy bw\" divides by the {:.1} GB/s of copy_. timed iters 0: one cold first call, longer than the budget.",
        copy_bw / 1e9
    );
}
