//! The `pisa` command line: clap commands that wire the modules together.
use crate::experiment::Experiment;
use crate::results::{RunDir, Status, Summary};
use crate::spec::{self, Override, Spec, SpecError};
use crate::sweep;
use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "pisa",
    version,
    about = "Experiment runner for PISA, SISA and NSISA (Preconditioned Inexact Stochastic ADMM) and their baselines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one experiment (a spec's [sweep] table is ignored: see `pisa sweep`).
    Run {
        #[command(flatten)]
        common: Common,
        /// Name of the run folder under <out>/<name>/; default: the --set values, or "default".
        #[arg(long)]
        run_id: Option<String>,
        /// Continue an interrupted run of the same spec from its last checkpoint
        /// (train.checkpoint_every); without one, start afresh.
        #[arg(long)]
        resume: bool,
        /// Start the run over MPI ranks: `mpi` calls `mpirun -np <ranks>` on this command
        /// (the same as `mpirun -np R pisa run …`; needs a build with `--features mpi`).
        #[arg(long, value_enum, requires = "ranks")]
        launcher: Option<crate::dist::launch::Launcher>,
        /// Ranks for --launcher: the spec's train.workers are split evenly over them.
        #[arg(long, short = 'n', requires = "launcher", value_parser = clap::value_parser!(u16).range(1..))]
        ranks: Option<u16>,
    },
    /// Run every point of the spec's [sweep] grid, in parallel; run again to resume.
    Sweep {
        #[command(flatten)]
        common: Common,
        /// Runs at once (default: the number of CPU cores; 1 on CUDA).
        #[arg(long, short)]
        jobs: Option<usize>,
    },
    /// Write the initial weights a spec's runs start from, for `train.init` or PyTorch.
    ///
    /// The file is safetensors, its tensors named as in the model's PyTorch state_dict;
    /// the same spec and seed give the same w⁰ as `pisa run`.
    Init {
        /// The experiment spec (TOML).
        spec: PathBuf,
        /// The file to write (atomically), e.g. init.safetensors.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Override a spec value, e.g. --set seed=3 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<Override>,
        /// Where relative data paths are looked up (default: $PISA_DATA_DIR, else ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Write the weights a run reached (its last checkpoint's), named as `pisa init` names
    /// them, for `train.init`, PyTorch or the Fashion-MNIST classifier of `fd_fmnist`.
    ///
    /// The run folder must keep its checkpoint.safetensors (train.checkpoint_every) and
    /// spec.toml; the data is read again to build the model.
    Export {
        /// The run folder, e.g. results/fd-fmnist/fd-fmnist-classifier/default.
        run_dir: PathBuf,
        /// The file to write (atomically), e.g. trained.safetensors.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Where relative data paths are looked up (default: $PISA_DATA_DIR, else ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Let a trained GPT write: a pisa run folder (its last checkpoint) or a Hugging Face
    /// GPT-2 folder. A recipes fine-tuning takes the ingredients as the prompt, as the PISA
    /// scripts' `infer`; by default beam search as their evaluation (5 beams, no repeated
    /// 2-grams, up to 180 new tokens).
    Generate {
        /// The run folder (e.g. results/table6-reduced/table6-reduced-sisa/seed=1) or a
        /// folder with config.json and model.safetensors.
        model_dir: PathBuf,
        /// The text to continue (for a recipes run: the ingredients).
        #[arg(long)]
        prompt: String,
        /// Tokens to generate at most.
        #[arg(long, default_value_t = 180)]
        max_new_tokens: usize,
        /// Beams of the beam search (1: greedy).
        #[arg(long, default_value_t = 5)]
        num_beams: usize,
        /// Beam search and greedy: n-grams that may not repeat (0: none).
        #[arg(long, default_value_t = 2)]
        no_repeat_ngram_size: usize,
        /// Sample instead (temperature, top-k and top-p as Hugging Face's warpers).
        #[arg(long)]
        sample: bool,
        #[arg(long, default_value_t = 1.0)]
        temperature: f64,
        /// Sampling: keep the k most likely tokens (0: all).
        #[arg(long, default_value_t = 50)]
        top_k: usize,
        /// Sampling: keep the most likely tokens whose probabilities sum to p.
        #[arg(long, default_value_t = 1.0)]
        top_p: f64,
        /// Sampling: the seed of the draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// "cpu", "cuda" or "cuda:N".
        #[arg(long, default_value = "cpu")]
        device: String,
        /// CPU threads of libtorch (default: its own choice, one per core).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// What the registries hold: `pisa list optimizers`, `pisa list models`.
    List {
        #[arg(value_enum)]
        what: Listing,
    },
    /// Draw the figures a results folder's [plot] table describes (PNG and SVG).
    Plot {
        /// A results folder, e.g. results/figure4a.
        results_dir: PathBuf,
    },
    /// Measure the mixing time t_mix of communication protocols (MixML, Assumption 2) over
    /// seeded runs; writes <out>/<name>/ (spec.toml, t_mix.csv, t_mix-summary.csv).
    Mixing {
        /// The mixing spec (TOML), e.g. experiments/mixml/figure3.toml.
        spec: PathBuf,
        /// Runs per protocol and number of workers (default: the spec's `runs`).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        runs: Option<u64>,
        /// Results root.
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// Run the protocols for real, one worker per MPI rank, and measure their event
        /// logs (under mpirun, or with --launcher; writes <out>/<name>-live-n<ranks>/).
        #[arg(long)]
        live: bool,
        /// Start --live's ranks: `mpi` calls `mpirun -np <ranks>` on this command.
        #[arg(long, value_enum, requires = "ranks", requires = "live")]
        launcher: Option<crate::dist::launch::Launcher>,
        /// Ranks (workers) for --launcher.
        #[arg(long, short = 'n', requires = "launcher", value_parser = clap::value_parser!(u16).range(2..))]
        ranks: Option<u16>,
    },
    /// Datasets: `pisa data fetch mnist`, `pisa data prepare text SOURCE... --out DIR`.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Download a dataset into <dir>/<name>/ and check every file's SHA-256; files already
    /// there with the right checksum are kept. Prints the dataset folder.
    Fetch {
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(crate::data::fetch::DATASETS))]
        name: String,
        /// The data directory (default: $PISA_DATA_DIR, else ./data).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Get the files from URL/<file name> instead of the official addresses.
        #[arg(long, value_name = "URL")]
        mirror: Option<String>,
    },
    /// Make a dataset from files of your own.
    Prepare {
        #[command(subcommand)]
        command: PrepareCommand,
    },
}

#[derive(Subcommand)]
enum PrepareCommand {
    /// Tokenise text files with the GPT-2 BPE into nanoGPT/modded-nanogpt token shards:
    /// DIR/NAME_val_000000.bin (the first tokens), DIR/NAME_train_000001.bin, …, and
    /// DIR/meta.json. Each document is <|endoftext|> then its tokens: a text or .gz file is
    /// one document, a dictd .dict.dz/.dict each entry of its .index. Prints DIR.
    Text {
        /// Text files (.gz, dictd .dict.dz), or folders of them (all files, sorted by path).
        #[arg(required = true, value_name = "SOURCE")]
        sources: Vec<PathBuf>,
        /// The output folder (written in full, then renamed into place).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The shards' prefix.
        #[arg(long, default_value = "text")]
        name: String,
        /// Tokens in the validation shard (default: 1% of all, rounded up).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        val_tokens: Option<u64>,
        /// At most this many tokens per training shard.
        #[arg(long, value_name = "N", default_value_t = crate::data::prepare_text::SHARD_TOKENS,
              value_parser = clap::value_parser!(u64).range(1..=i32::MAX as u64))]
        shard_tokens: u64,
        /// Replace DIR when it exists and is not empty.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Listing {
    /// Every optimizer: its hyperparameters with defaults, and its reference.
    Optimizers,
    /// Every model a spec's `[model] kind` can name, with its published parameter count.
    Models,
    /// Every environment `[rl] env` can name, with its observation and action sizes and the
    /// actor-critic's parameter count.
    Environments,
}

impl Listing {
    fn describe(self) -> String {
        match self {
            Listing::Optimizers => crate::optim::registry::describe(),
            Listing::Models => crate::models::catalog::describe(),
            Listing::Environments => crate::rl::describe(),
        }
    }
}

#[derive(Args)]
struct Common {
    /// The experiment spec (TOML).
    spec: PathBuf,
    /// Results root; runs go to <out>/<name>/<run-id>/.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Override a spec value, e.g. --set optimizer.sigma0=32 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<Override>,
    /// Where relative data paths are looked up (default: $PISA_DATA_DIR, else ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// libtorch's intra-op threads (default: train.threads, else one per core for `run`
    /// and one per run for `sweep --jobs` > 1). CPU metrics are bit-identical for the same
    /// binary, machine, seed and thread count.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

impl Common {
    /// The spec (with `--set`) and its experiment, built and checked; an error about a
    /// spec key found while building is located in the spec like a parse error.
    fn prepare(&self, spec: &Spec) -> Result<Experiment> {
        prepare(spec, &self.spec, &self.set, self.data_dir.as_deref())
    }

    /// The thread count in force: `--threads`, else the spec's.
    fn threads(&self, spec: &Spec) -> Option<usize> {
        self.threads.map(usize::from).or(spec.train.threads)
    }
}

/// The experiment of `spec` (read from `path` with `set`), built and checked: a panic in
/// libtorch becomes an error, and an error about a spec key is located in the spec like a
/// parse error.
fn prepare(
    spec: &Spec,
    path: &Path,
    set: &[Override],
    data_dir: Option<&Path>,
) -> Result<Experiment> {
    let data_dir = spec::data_dir(data_dir);
    crate::panics::caught("building the experiment", || {
        Experiment::prepare(spec, &data_dir)
    })
    .map_err(|e| spec::locate_build_error(e, path, set))
}

/// Runs the CLI; returns the process exit code (2 for a bad spec, 1 for other failures,
/// 130 for runs stopped by a signal).
pub fn main() -> i32 {
    let cli = Cli::parse();
    crate::interrupt::install();
    // MPI (mpirun launched this process as a rank) stays up until the outcome is reported.
    let _mpi = match crate::dist::init() {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 1;
        }
    };
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) if crate::dist::distributed() => {
            // the other ranks may wait in a collective: end them all
            let comm = crate::dist::world();
            // one write, so that the ranks' lines do not interleave
            let line = format!("error (rank {} of {}): {e:#}\n", comm.rank(), comm.size());
            eprint!("{line}");
            comm.abort(if e.downcast_ref::<SpecError>().is_some() {
                2
            } else {
                1
            })
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<SpecError>().is_some() {
                2
            } else if crate::interrupt::requested() {
                crate::interrupt::EXIT_CODE
            } else {
                1
            }
        }
    }
}

fn dispatch(command: Command) -> Result<i32> {
    match command {
        Command::Run {
            launcher: Some(launcher),
            ranks: Some(ranks),
            ..
        } => crate::dist::launch::relaunch(launcher, ranks.into()),
        Command::Run {
            common,
            run_id,
            resume,
            ..
        } => run(&common, run_id, resume),
        Command::List { what } => {
            print!("{}", what.describe());
            Ok(0)
        }
        Command::Sweep { common, jobs } => run_sweep(&common, jobs),
        Command::Init {
            spec,
            out,
            set,
            data_dir,
        } => {
            let experiment = prepare(&Spec::load(&spec, &set)?, &spec, &set, data_dir.as_deref())?;
            crate::tasks::init::write(experiment.task(), &out)?;
            println!("{}", out.display());
            Ok(0)
        }
        Command::Export {
            run_dir,
            out,
            data_dir,
        } => {
            crate::tasks::init::export(&run_dir, &spec::data_dir(data_dir.as_deref()), &out)?;
            println!("{}", out.display());
            Ok(0)
        }
        Command::Generate {
            model_dir,
            prompt,
            max_new_tokens,
            num_beams,
            no_repeat_ngram_size,
            sample,
            temperature,
            top_k,
            top_p,
            seed,
            device,
            threads,
        } => {
            use crate::models::generate::{Decoding, EarlyStopping};
            if let Some(threads) = threads {
                tch::set_num_threads(threads as i32);
            }
            let decoding = match (sample, num_beams) {
                (true, _) => Decoding::Sample {
                    temperature,
                    top_k,
                    top_p,
                },
                (false, 1) if no_repeat_ngram_size == 0 => Decoding::Greedy,
                (false, _) => Decoding::Beam {
                    num_beams,
                    no_repeat_ngram_size,
                    early_stopping: EarlyStopping::Finished,
                    length_penalty: 1.0,
                },
            };
            let request = crate::generate::Request {
                prompt: &prompt,
                max_new_tokens,
                decoding,
                seed,
                device: spec::parse_device(&device)?,
            };
            println!("{}", crate::generate::text(&model_dir, &request)?);
            Ok(0)
        }
        Command::Plot { results_dir } => {
            if !results_dir.is_dir() {
                bail!(
                    "{}: {}; `pisa plot` takes a results folder (e.g. results/figure4a)",
                    results_dir.display(),
                    if results_dir.exists() {
                        "is a file, not a folder"
                    } else {
                        "no such folder"
                    }
                );
            }
            for file in crate::plot::plot_results(&results_dir)? {
                println!("{}", file.display());
            }
            Ok(0)
        }
        Command::Mixing {
            launcher: Some(launcher),
            ranks: Some(ranks),
            ..
        } => crate::dist::launch::relaunch(launcher, ranks.into()),
        Command::Mixing {
            spec,
            runs,
            out,
            live,
            ..
        } => {
            let runs = runs.map(|r| r as usize);
            let dir = match live {
                true => crate::protocol::live::run(crate::dist::world(), &spec, runs, &out)
                    .map_err(|e| crate::spec::locate_build_error(e, &spec, &[]))?,
                false => crate::protocol::run(&spec, runs, &out)?,
            };
            if crate::dist::world().rank() == 0 {
                println!("{}", dir.display());
            }
            Ok(0)
        }
        Command::Data {
            command: DataCommand::Fetch { name, dir, mirror },
        } => {
            crate::data::fetch::fetch_command(&name, dir.as_deref(), mirror.as_deref())?;
            Ok(0)
        }
        Command::Data {
            command:
                DataCommand::Prepare {
                    command:
                        PrepareCommand::Text {
                            sources,
                            out,
                            name,
                            val_tokens,
                            shard_tokens,
                            force,
                        },
                },
        } => {
            crate::data::prepare_text::prepare_text_command(&crate::data::prepare_text::Options {
                sources,
                out,
                name,
                val_tokens,
                shard_tokens,
                force,
                progress: std::io::stderr().is_terminal(),
            })?;
            Ok(0)
        }
    }
}

fn run(common: &Common, run_id: Option<String>, resume: bool) -> Result<i32> {
    let spec = Spec::load(&common.spec, &common.set)?;
    let origin = if run_id.is_some() {
        "--run-id"
    } else {
        "the run id made of the --set values (give --run-id)"
    };
    let run_id = run_id.unwrap_or_else(|| default_run_id(&common.set));
    spec::check_folder_name(&run_id).map_err(|message| SpecError {
        origin: origin.into(),
        position: None,
        key: None,
        message,
    })?;
    if let Some(threads) = common.threads(&spec) {
        tch::set_num_threads(threads as i32);
    }
    let experiment = common.prepare(&spec)?;
    let final_path = common.out.join(&spec.name).join(&run_id);
    // Over ranks, rank 0 alone makes (and later moves) the folder.
    let lead = crate::dist::world().rank() == 0;
    let dir = match (lead, resume) {
        (false, _) => None,
        (true, true) => Some(RunDir::resume(&final_path)?),
        (true, false) => Some(RunDir::create(&final_path)?),
    };
    let dir = RunDir::share(dir)?;
    let bar = match lead {
        true => progress_bar(&MultiProgress::new(), experiment.iterations(), &run_id),
        false => ProgressBar::hidden(),
    };
    let (summary, path) = experiment.execute(dir, &run_id, Default::default(), &bar)?;
    bar.finish_and_clear();
    if lead {
        report(&summary, &path);
    }
    Ok(exit_code(&summary))
}

fn run_sweep(common: &Common, jobs: Option<usize>) -> Result<i32> {
    if crate::dist::distributed() {
        bail!("pisa sweep runs in one process; start each point with `mpirun -np R pisa run`");
    }
    let points = sweep::points(&common.spec, &common.set)?;
    let total = points.len();
    let (todo, done) = sweep::pending(&common.out, points)?;
    // Build every experiment first: a missing file stops the sweep before it writes.
    let experiments: Vec<_> = todo
        .iter()
        .map(|p| common.prepare(&p.spec).map(|e| (p, e)))
        .collect::<Result<_>>()?;
    let on_cuda = todo.iter().any(|p| p.spec.train.device != "cpu");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = jobs.unwrap_or(if on_cuda { 1 } else { cores }).max(1);
    eprintln!(
        "sweep {}: {total} runs, {done} already finished, {} to run, {jobs} at a time",
        common.spec.display(),
        todo.len()
    );
    let threads = todo.first().and_then(|p| common.threads(&p.spec));
    if todo.iter().any(|p| common.threads(&p.spec) != threads) {
        bail!(
            "train.threads must be the same for every sweep point (libtorch has one thread pool)"
        );
    }
    match threads {
        Some(threads) => tch::set_num_threads(threads as i32),
        // Parallel runs, one libtorch thread each.
        None if jobs > 1 => tch::set_num_threads(1),
        None => {}
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(jobs).build()?;
    let multi = MultiProgress::new();
    let outcomes: Vec<Result<(Summary, PathBuf)>> = pool.install(|| {
        experiments
            .into_par_iter()
            .filter(|_| !crate::interrupt::requested())
            .map(|(point, experiment)| {
                let bar = progress_bar(&multi, experiment.iterations(), &point.run_id);
                let dir = RunDir::resume(&sweep::run_path(&common.out, point))?;
                let out = experiment.execute(dir, &point.run_id, point.json(), &bar);
                bar.finish_and_clear();
                out
            })
            .collect()
    });
    let mut failures = 0;
    for outcome in outcomes {
        match outcome {
            Ok((summary, path)) => {
                report(&summary, &path);
                failures += usize::from(exit_code(&summary) != 0);
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                failures += 1;
            }
        }
    }
    if crate::interrupt::requested() {
        eprintln!("sweep interrupted: run it again to continue");
        return Ok(crate::interrupt::EXIT_CODE);
    }
    if failures > 0 {
        bail!(
            "{failures} of {} runs did not complete (diverged runs are final; failed ones are \
             retried when the sweep runs again)",
            todo.len()
        );
    }
    Ok(0)
}

fn default_run_id(set: &[Override]) -> String {
    if set.is_empty() {
        return "default".into();
    }
    let values: Vec<(String, String)> = set
        .iter()
        .map(|o| {
            let text = o
                .value
                .as_str()
                .map_or_else(|| o.value.to_string().trim().to_string(), String::from);
            (o.key.clone(), text)
        })
        .collect();
    sweep::run_id(&values)
}

fn exit_code(summary: &Summary) -> i32 {
    match summary.status {
        Status::Completed => 0,
        Status::Interrupted => crate::interrupt::EXIT_CODE,
        Status::Diverged | Status::Failed => 1,
    }
}

fn report(summary: &Summary, path: &Path) {
    let last: Vec<String> = summary
        .last
        .iter()
        .map(|(k, v)| format!("{k}={v:.6e}"))
        .collect();
    println!(
        "{}: {} after {} iterations, {}",
        path.display(),
        summary.status,
        summary.iterations,
        last.join(" ")
    );
    if let Some(e) = &summary.error {
        eprintln!("  {}: {e}", summary.status);
    }
    if summary.status == Status::Interrupted {
        eprintln!("  interrupted: `pisa run SPEC --resume` (or the sweep, run again) continues it");
    }
}

/// A bar per run; drawn only when stdout and stderr are terminals.
fn progress_bar(multi: &MultiProgress, len: usize, label: &str) -> ProgressBar {
    if !(std::io::stdout().is_terminal() && std::io::stderr().is_terminal()) {
        return ProgressBar::hidden();
    }
    multi.set_draw_target(ProgressDrawTarget::stderr());
    let bar = multi.add(ProgressBar::new(len as u64));
    bar.set_style(
        ProgressStyle::with_template("{prefix:>20} {bar:40} {pos}/{len} it {per_sec} eta {eta}")
            .expect("valid template"),
    );
    bar.set_prefix(label.to_string());
    bar
}
