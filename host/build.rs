//! tch gives the binary no rpath to libtorch: add one from torch-sys's `links` metadata
//! (`DEP_TCH_LIBTORCH_LIB`), so `paddock` runs without LD_LIBRARY_PATH.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        // Where libtorch_cuda.so is looked for when CUDA is asked for (learner::device).
        println!("cargo:rustc-env=PADDOCK_LIBTORCH_LIB={lib}");
    }
}
