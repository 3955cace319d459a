//! Embed an rpath to libtorch so the `pisa` binary finds it without LD_LIBRARY_PATH.
//! torch-sys publishes the directory it linked against as `DEP_TCH_LIBTORCH_LIB`.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        println!("cargo:rustc-env=PISA_LIBTORCH_LIB={dir}");
    }
}
