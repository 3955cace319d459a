//! `pisa run --launcher mpi -n R …`: runs this same command under `mpirun -np R`.
use anyhow::{Context, Result};
use std::ffi::{OsStr, OsString};
use std::process::Command;

/// How `pisa run` starts its ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Launcher {
    /// OpenMPI's mpirun.
    Mpi,
}

/// This process's arguments without `--launcher X` and `-n R` (in any of clap's spellings).
fn without_launcher(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = vec![];
    let mut skip = false;
    for arg in args {
        if std::mem::take(&mut skip) {
            continue;
        }
        let text = arg.to_string_lossy();
        match text.as_ref() {
            "--launcher" | "--ranks" | "-n" => skip = true,
            t if t.starts_with("--launcher=") || t.starts_with("--ranks=") => {}
            t if t.starts_with("-n") && t[2..].trim_start_matches('=').parse::<u16>().is_ok() => {}
            _ => out.push(arg),
        }
    }
    out
}

/// The mpirun command for `ranks` ranks of `exe` with `args`: more ranks than cores run
/// oversubscribed, ranks are not bound to cores (libtorch's threads move freely), and root
/// (containers, CI) is allowed.
fn command(ranks: usize, exe: &OsStr, args: &[OsString]) -> Command {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut mpirun = Command::new("mpirun");
    mpirun.arg("-np").arg(ranks.to_string());
    mpirun.args(["--bind-to", "none"]);
    if ranks > cores {
        mpirun.arg("--oversubscribe");
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        mpirun.arg("--allow-run-as-root");
    }
    mpirun.arg(exe).args(args);
    mpirun
}

/// Runs this `pisa run` under `mpirun -np ranks` and returns its exit code.
pub fn relaunch(launcher: Launcher, ranks: usize) -> Result<i32> {
    let Launcher::Mpi = launcher;
    let exe = std::env::current_exe().context("locating the pisa binary")?;
    let args = without_launcher(std::env::args_os().skip(1));
    let status = command(ranks, exe.as_os_str(), &args).status().context(
        "cannot start mpirun: install OpenMPI (apt-get install openmpi-bin libopenmpi-dev)",
    )?;
    Ok(status.code().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_launcher_arguments_are_removed_in_every_spelling() {
        for given in [
            &[
                "run",
                "s.toml",
                "--launcher",
                "mpi",
                "-n",
                "4",
                "--threads",
                "1",
            ][..],
            &["run", "--launcher=mpi", "s.toml", "-n4", "--threads", "1"],
            &[
                "run",
                "s.toml",
                "--ranks=4",
                "--launcher",
                "mpi",
                "--threads",
                "1",
            ],
            &[
                "run",
                "-n=4",
                "s.toml",
                "--ranks",
                "4",
                "--launcher=mpi",
                "--threads",
                "1",
            ],
        ] {
            assert_eq!(
                without_launcher(strings(given)),
                strings(&["run", "s.toml", "--threads", "1"]),
                "{given:?}"
            );
        }
    }

    #[test]
    fn mpirun_gets_the_rank_count_and_the_same_command() {
        let c = command(4, OsStr::new("/bin/pisa"), &strings(&["run", "s.toml"]));
        let args: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(c.get_program(), "mpirun");
        assert_eq!(&args[..4], ["-np", "4", "--bind-to", "none"]);
        assert_eq!(&args[args.len() - 3..], ["/bin/pisa", "run", "s.toml"]);
    }
}
