//! The `paddock` binary: parses the command line and calls into the library.

/// mimalloc for Rust's allocations; its `override` feature also serves libtorch's and
/// wasmtime's C-level malloc/free (see the workspace Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    paddock::cli::main()
}
