//! Embed an rpath to libtorch so the `pisa` binary finds it without LD_LIBRARY_PATH.
//! torch-sys publishes the directory it linked against as `DEP_TCH_LIBTORCH_LIB`.
//!
//! With a CUDA build of libtorch, torch-sys asks for `-ltorch_cuda`, but the linker's
//! `--as-needed` drops it (no symbol of it is referenced: its CUDA kernels register
//! themselves when the library loads), leaving a binary that never sees a GPU
//! (tch-rs#980). It is linked here with `--no-as-needed` so CUDA devices are found.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        println!("cargo:rustc-env=PISA_LIBTORCH_LIB={dir}");
        if std::path::Path::new(&dir).join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        }
    }
}
