//! The `paddock` binary: parses the command line and calls into the library.

fn main() -> std::process::ExitCode {
    paddock::cli::main()
}
