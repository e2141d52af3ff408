//! Shared helpers of the end-to-end tests: where the built plugins are, and a runtime
//! whose compile cache lives under target/ (not the user's cache dir).
#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod imds;
pub mod mlflow;
pub mod moto;
pub mod proxy;

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

/// A log sink whose bytes a test can read back (clone it into a `RunLog`).
#[derive(Clone, Default)]
pub struct Captured(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs the real `paddock` binary from the repository root, with the test compile cache.
pub fn paddock(args: &[&str]) -> Output {
    paddock_with_env(args, &[])
}

/// [`paddock`] with extra environment variables.
pub fn paddock_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(args)
        .current_dir(root())
        .env("PADDOCK_CACHE_DIR", root().join("target/test-cache"))
        .envs(env.iter().copied())
        .output()
        .expect("run paddock")
}

/// [`paddock`] run from `dir` instead of the repository root.
pub fn paddock_in(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(args)
        .current_dir(dir)
        .env("PADDOCK_CACHE_DIR", root().join("target/test-cache"))
        .output()
        .expect("run paddock")
}

/// `paddock train CONFIG --json` into `store` with `--set` for each of `sets`; the run must
/// succeed, and its JSON summary is returned.
pub fn train_json(config: &str, store: &std::path::Path, sets: &[&str]) -> serde_json::Value {
    let store_set = format!("store={}", store.display());
    let mut args = vec!["train", config, "--json", "--set", &store_set];
    for s in sets {
        args.extend_from_slice(&["--set", s]);
    }
    let out = paddock(&args);
    assert!(out.status.success(), "train {config} {sets:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json summary")
}

/// Trains `config` with `sets` (plus a temporary store and `algorithm.device=cpu`) once
/// uninterrupted; then again, killed with SIGKILL once a checkpoint exists (`check` looks at
/// that run's directory), with a partial checkpoint planted as a kill during a write would
/// leave it, and continued with `--resume`. The resumed run must finish at `total` steps,
/// ignore and clean the partial checkpoint, and write the same `metrics.jsonl` bytes.
pub fn kill_and_resume_matches(config: &str, sets: &[&str], total: u64, check: impl Fn(&std::path::Path)) {
    use std::path::Path;
    let dir = tempfile::tempdir().expect("tempdir");
    let store_set = format!("store={}", dir.path().display());
    let mut args = vec!["train", config, "--json", "--set", &store_set, "--set", "algorithm.device=cpu"];
    for s in sets {
        args.extend_from_slice(&["--set", s]);
    }
    let whole = paddock(&args);
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    let whole: serde_json::Value = serde_json::from_slice(&whole.stdout).expect("json");
    let whole_dir = Path::new(whole["run_dir"].as_str().expect("dir")).to_path_buf();
    let whole_metrics = std::fs::read(whole_dir.join("metrics.jsonl")).expect("metrics");

    let mut child = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(&args)
        .current_dir(root())
        .env("PADDOCK_CACHE_DIR", root().join("target/test-cache"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let run_dir = loop {
        let found = std::fs::read_dir(dir.path())
            .expect("store")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| *p != whole_dir && p.join("checkpoints").exists());
        if let Some(d) = found
            && paddock::format::run_dir::latest_checkpoint(&d).is_some()
        {
            break d;
        }
        assert!(std::time::Instant::now() < deadline, "no checkpoint appeared");
        assert!(child.try_wait().expect("wait").is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    check(&run_dir);
    // A kill during a checkpoint write leaves a partial directory behind: it must be ignored.
    let partial = run_dir.join("checkpoints/.tmp-000000999999");
    std::fs::create_dir_all(&partial).expect("partial");
    std::fs::write(partial.join("state.json"), "{ truncated").expect("partial state");

    let out = paddock(&["train", "--json", "--resume", run_dir.to_str().expect("utf8")]);
    assert!(out.status.success(), "resume failed: {}", String::from_utf8_lossy(&out.stderr));
    let resumed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(resumed["resumed_from"].is_string(), "{resumed}");
    assert_eq!(resumed["steps"], total);
    assert!(!partial.exists(), "the partial checkpoint was cleaned up");
    let metrics = std::fs::read(run_dir.join("metrics.jsonl")).expect("metrics");
    assert!(metrics == whole_metrics, "the resumed run's metrics differ from the uninterrupted run's");
    // TensorBoard shows the resumed run once: the same records as the uninterrupted run's.
    assert_eq!(tensorboard_records(&run_dir), tensorboard_records(&whole_dir), "TensorBoard event files (count, records)");
}

/// The TensorBoard event files of a run directory and their records in all, checking each
/// file's TFRecord framing (u64 length, u32 crc, data, u32 crc) to its end.
pub fn tensorboard_records(run_dir: &std::path::Path) -> (usize, usize) {
    let (mut files, mut records) = (0, 0);
    for e in std::fs::read_dir(run_dir).expect("run dir").filter_map(Result::ok) {
        if !e.file_name().to_string_lossy().starts_with("events.out.tfevents.") {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(e.path()).expect("read events");
        let mut at = 0usize;
        while at < bytes.len() {
            let len = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes")) as usize;
            at += 8 + 4 + len + 4;
            records += 1;
        }
        assert_eq!(at, bytes.len(), "records end exactly at the end of {}", e.path().display());
    }
    (files, records)
}

/// The same component with a custom section appended: a "rebuilt" version whose bytes (and
/// sha256) differ and whose behaviour does not.
pub fn rebuilt(bytes: &[u8], tag: &str) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n == 0 { b } else { b | 0x80 });
            if n == 0 {
                break;
            }
        }
    }
    let mut payload = Vec::new();
    leb("paddock-test".len(), &mut payload);
    payload.extend_from_slice(b"paddock-test");
    payload.extend_from_slice(tag.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    leb(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

/// Replaces `dst` the way build tools do: write a temporary file beside it, then rename.
pub fn replace(dst: &std::path::Path, bytes: &[u8]) {
    let tmp = dst.with_extension("tmp");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, dst).expect("rename");
}
