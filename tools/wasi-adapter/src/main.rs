//! `cargo run -p paddock-wasi-adapter -- OUT.wasm`: writes the WASI preview1 reactor adapter
//! that turns a `wasm32-wasi` (preview1) core module into a preview2 component
//! (`wasm-tools component new core.wasm --adapt wasi_snapshot_preview1=OUT.wasm`).
//! scripts/build-plugins.sh uses it for the C plugins.

use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;

fn main() -> std::process::ExitCode {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("usage: paddock-wasi-adapter OUT.wasm");
        return std::process::ExitCode::from(2);
    };
    match std::fs::write(&out, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: failed to write {}: {e}", std::path::Path::new(&out).display());
            std::process::ExitCode::from(1)
        }
    }
}
