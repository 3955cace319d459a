//! Ranks (`--features mpi`): one SISA iteration of m = 4 workers on ResNet-34's parameter
//! count (CIFAR-10, P = 21,282,122, f32) over R = 1, 2 and 4 MPI ranks, its time split into
//! the workers' updates (2.10)–(2.14) and the global update (2.9) with its one sum over the
//! ranks, beside the time MPI takes alone to sum the same P floats ([`pisa::dist::sum`]:
//! reduce to rank 0, then broadcast).
//!
//! ```text
//! cargo bench --features mpi --bench dist -- [--ranks 1,2,4] [--iters 10] [--threads 1]
//! ```
//! Run plainly, it starts itself under `mpirun -np R` for each R (oversubscribed when R
//! exceeds the cores) and prints rank 0's line for each. Times are medians over the timed
//! iterations, after 2 untimed ones; each iteration first copies precomputed gradients into
//! the workers' buffers, untimed, as a task would hand over fresh ones.
use pisa::optim::layout::Layout;
use pisa::optim::registry::{self, Context};
use pisa::spec::OptimizerSpec;
use pisa::tasks::Local;
use std::process::Command;
use std::time::Instant;
use tch::{Kind, Tensor};

/// P of the AdaBelief-suite CIFAR ResNet-34 (benches/optim.rs lays it out).
const P: i64 = 21_282_122;
const WORKERS: usize = 4;
const WARMUP: usize = 2;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Under mpirun: one rank's share of the timed iterations; rank 0 prints the line.
fn rank(iters: usize) {
    let _mpi = pisa::dist::init().expect("MPI starts");
    let comm = pisa::dist::world();
    let w0 = Tensor::zeros([P], (Kind::Float, tch::Device::Cpu));
    let layout = Layout::vector(P);
    let alphas = vec![1.0 / WORKERS as f64; WORKERS];
    let schedule = pisa::schedule::Schedule::default();
    let context = Context {
        w0: &w0,
        layout: &layout,
        alphas: &alphas,
        schedule: &schedule,
        iterations: 1000,
        iterations_per_epoch: 100,
    };
    let spec: OptimizerSpec = toml::from_str("name = \"sisa\"\nsigma0 = 1.0\nscheme = 3").unwrap();
    let mut sisa = registry::build(&spec, &context).unwrap();
    let own = pisa::dist::workers(WORKERS);
    let gradients: Vec<Tensor> = own
        .clone()
        .map(|i| {
            tch::manual_seed(i as i64);
            Tensor::randn([P], (Kind::Float, tch::Device::Cpu))
        })
        .collect();
    let buffers: Vec<Tensor> = gradients.iter().map(Tensor::empty_like).collect();
    let sum_buffer = Tensor::ones([P], (Kind::Float, tch::Device::Cpu));
    let (mut global, mut local, mut whole, mut alone) = (vec![], vec![], vec![], vec![]);
    for it in 0..WARMUP + iters {
        for (b, g) in buffers.iter().zip(&gradients) {
            b.shallow_clone().copy_(g);
        }
        pisa::dist::agree(false); // the ranks start together
        let t0 = Instant::now();
        sisa.begin_iteration();
        let t1 = Instant::now();
        for (i, b) in own.clone().zip(&buffers) {
            let grad = b.shallow_clone();
            sisa.local_update(
                i,
                Local {
                    grad,
                    samples: 32,
                    hessian: None,
                },
            )
            .unwrap();
        }
        sisa.end_iteration();
        pisa::dist::agree(false);
        let t2 = Instant::now();
        pisa::dist::sum(&sum_buffer);
        let t3 = Instant::now();
        if it >= WARMUP {
            global.push((t1 - t0).as_secs_f64());
            local.push((t2 - t1).as_secs_f64());
            whole.push((t2 - t0).as_secs_f64());
            alone.push((t3 - t2).as_secs_f64());
        }
    }
    if comm.rank() == 0 {
        let alone = median(alone);
        let gbs = match comm.size() {
            1 => "—".to_string(),
            _ => format!("{:.2}", 4.0 * P as f64 / alone / 1e9),
        };
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            comm.size(),
            WORKERS / comm.size(),
            median(whole) * 1e3,
            median(local) * 1e3,
            median(global) * 1e3,
            alone * 1e3,
            gbs
        );
    }
}

fn main() {
    let iters: usize = arg("--iters", "10").parse().expect("--iters is a number");
    let threads: i32 = arg("--threads", "1")
        .parse()
        .expect("--threads is a number");
    tch::set_num_threads(threads);
    if std::env::var("OMPI_COMM_WORLD_SIZE").is_ok() {
        return rank(iters);
    }
    println!(
        "SISA, m = {WORKERS} workers, P = {P} f32, {threads} libtorch thread(s) per rank, \
         {} cores; medians of {iters} iterations, in ms",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| ranks | workers per rank | iteration | workers' updates (2.10)–(2.14) | global update (2.9) with its sum | MPI sum alone | GB/s (4P bytes / sum alone) |");
    println!("|---|---|---|---|---|---|---|");
    let exe = std::env::current_exe().unwrap();
    for r in arg("--ranks", "1,2,4").split(',') {
        let status = Command::new("mpirun")
            .args([
                "-np",
                r,
                "--oversubscribe",
                "--bind-to",
                "none",
                "--allow-run-as-root",
            ])
            .arg(&exe)
            .args([
                "--iters",
                &iters.to_string(),
                "--threads",
                &threads.to_string(),
            ])
            .status()
            .expect("mpirun runs (apt-get install openmpi-bin)");
        assert!(status.success(), "mpirun -np {r}");
    }
}
