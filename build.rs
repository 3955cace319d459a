//! Embed rpaths to libtorch and libmujoco so the `pisa` binary finds them without
//! LD_LIBRARY_PATH. torch-sys publishes the directory it linked against as
//! `DEP_TCH_LIBTORCH_LIB`; mujoco-rs links from `MUJOCO_DYNAMIC_LINK_DIR`.
//!
//! With a CUDA build of libtorch, torch-sys asks for `-ltorch_cuda`, but the linker's
//! `--as-needed` drops it (no symbol of it is referenced: its CUDA kernels register
//! themselves when the library loads), leaving a binary that never sees a GPU
//! (tch-rs#980). It is linked here with `--no-as-needed` so CUDA devices are found.
//!
//! It also records, for `summary.json`, the libtorch version (the wheel's `version.py`
//! beside its `lib/`) and pisa's git commit.
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").ok();
    println!(
        "cargo:rustc-env=PISA_LIBTORCH_VERSION={}",
        lib.as_deref()
            .and_then(libtorch_version)
            .unwrap_or_else(|| "unknown".into())
    );
    println!("cargo:rustc-env=PISA_GIT_COMMIT={}", git_commit());
    // mujoco-rs links libmujoco from MUJOCO_DYNAMIC_LINK_DIR (scripts/env.sh) but sets no rpath.
    println!("cargo:rerun-if-env-changed=MUJOCO_DYNAMIC_LINK_DIR");
    if let Ok(dir) = std::env::var("MUJOCO_DYNAMIC_LINK_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    if let Some(dir) = lib {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        println!("cargo:rustc-env=PISA_LIBTORCH_LIB={dir}");
        if std::path::Path::new(&dir).join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        }
    }
}

/// `__version__` of the torch wheel whose `lib/` is `lib`, else libtorch's `build-version`.
fn libtorch_version(lib: &str) -> Option<String> {
    let root = Path::new(lib).parent()?;
    let from_py = std::fs::read_to_string(root.join("version.py"))
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let v = l.strip_prefix("__version__")?.split_once('=')?.1;
                Some(v.trim().trim_matches('\'').trim_matches('"').to_string())
            })
        });
    from_py.or_else(|| {
        std::fs::read_to_string(root.join("build-version"))
            .ok()
            .map(|v| v.trim().to_string())
    })
}

/// HEAD's commit, rebuilt when HEAD or the branch it names moves.
fn git_commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    // A missing file would count as changed on every build (cargo's rule): a repository
    // without packed refs would rebuild the crate each time.
    for file in ["HEAD", "refs/heads", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", file]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(&["rev-parse", "--git-path", &head]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into())
}
