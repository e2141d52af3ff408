//! Shared helpers of the end-to-end tests: where the built plugins are, and a runtime
//! whose compile cache lives under target/ (not the user's cache dir).
#![allow(dead_code, reason = "each test binary uses a different subset")]

use paddock::log::RunLog;
use paddock::runtime::{Limits, Runtime, RuntimeOptions};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ has a parent").to_path_buf()
}

/// A built plugin, `target/plugins/<name>.wasm`.
pub fn plugin(name: &str) -> PathBuf {
    let p = root().join("target/plugins").join(format!("{name}.wasm"));
    assert!(p.exists(), "{} is missing: build the plugins first with scripts/build-plugins.sh (scripts/test.sh does)", p.display());
    p
}

/// A runtime with test-sized limits, logging nowhere.
pub fn runtime() -> Runtime {
    runtime_with(Limits { memory_bytes: 64 << 20, call_timeout: Duration::from_millis(500) }, RunLog::discard())
}

/// A runtime with the given limits and log.
pub fn runtime_with(limits: Limits, log: RunLog) -> Runtime {
    Runtime::new(RuntimeOptions { limits, cache_dir: Some(root().join("target/test-cache")), log }).expect("runtime")
}

/// Runs the real `paddock` binary from the repository root, with the test compile cache.
pub fn paddock(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(args)
        .current_dir(root())
        .env("PADDOCK_CACHE_DIR", root().join("target/test-cache"))
        .output()
        .expect("run paddock")
}
