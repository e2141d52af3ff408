//! Runs that travel, stop cleanly and tell the truth: a run carries its plugins (evaluated
//! and resumed from S3 on "another machine": no checkout, another working directory),
//! SIGINT and SIGTERM stop it at a safe point with a checkpoint and state `stopped`, the
//! resumed run's metrics equal an uninterrupted run's, `--resume` uses the recorded plugin
//! versions (another only with `--plugin`, recorded), and a resume that cannot start
//! changes nothing.

use crate::common;

use common::moto::Moto;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A throwaway "checkout": a config and the two plugins it names, beside each other.
struct Checkout {
    dir: tempfile::TempDir,
}

impl Checkout {
    fn new() -> Checkout {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("configs")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("plugins")).expect("mkdir");
        for p in ["cartpole", "ppo"] {
            std::fs::copy(common::plugin(p), dir.path().join(format!("plugins/{p}.wasm"))).expect("copy plugin");
        }
        let config = std::fs::read_to_string(common::root().join("configs/cartpole-ppo.toml"))
            .expect("config")
            .replace("plugin = \"", "plugin = \"../plugins/");
        std::fs::write(dir.path().join("configs/c.toml"), config).expect("write config");
        Checkout { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Settings shared by every run here: CPU, no early stop, checkpoints every 4096 steps.
const SETS: [&str; 6] = [
    "algorithm.device=cpu",
    "train.threads=1",
    "train.stop_at_return=1e9",
    "train.eval_every=8192",
    "train.checkpoint_every=4096",
    "total_steps=32768",
];

fn train_args<'a>(config: &'a str, store: &'a str) -> Vec<String> {
    let mut args = vec!["train".to_string(), config.to_string(), "--json".into(), "--set".into(), format!("store={store}")];
    for s in SETS {
        args.extend(["--set".to_string(), s.to_string()]);
    }
    args
}

/// The paddock binary with the test compile cache, run in `cwd`.
fn paddock_in(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_paddock"));
    c.current_dir(cwd).env("PADDOCK_CACHE_DIR", common::root().join("target/test-cache"));
    c
}

/// Waits until `status.json` under `dir` (a run directory, found under `store` when `None`)
/// shows a step of at least `step`; returns the run directory.
fn wait_for_step(store: &Path, step: u64, child: &mut Child) -> PathBuf {
    let start = Instant::now();
    loop {
        let found =
            std::fs::read_dir(store).ok().and_then(|d| d.filter_map(Result::ok).map(|e| e.path()).find(|p| p.join("status.json").exists()));
        if let Some(dir) = found
            && let Some(Ok(s)) = paddock::format::status::read(&dir)
            && s.step >= step
        {
            return dir;
        }
        assert!(child.try_wait().expect("wait").is_none(), "the run ended before step {step}");
        assert!(start.elapsed() < Duration::from_secs(300), "step {step} not reached");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: sends a signal to our own child process.
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "kill");
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "paddock failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An uninterrupted run's `metrics.jsonl` with the same config and settings.
fn uninterrupted_metrics() -> Vec<u8> {
    let store = tempfile::tempdir().expect("tempdir");
    let args = train_args("configs/cartpole-ppo.toml", store.path().to_str().expect("utf-8"));
    let out = paddock_in(&common::root()).args(&args).output().expect("run");
    let s: Value = serde_json::from_str(ok(&out).trim()).expect("json");
    std::fs::read(Path::new(s["run_dir"].as_str().expect("dir")).join("metrics.jsonl")).expect("metrics")
}

#[test]
fn sigint_stops_at_a_safe_point_with_a_checkpoint_and_the_resume_matches_an_uninterrupted_run() {
    let whole = uninterrupted_metrics();
    let checkout = Checkout::new();
    let store = tempfile::tempdir().expect("tempdir");
    let args = train_args("configs/c.toml", store.path().to_str().expect("utf-8"));
    let mut child = paddock_in(checkout.path()).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let dir = wait_for_step(store.path(), 6000, &mut child);
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(130), "a clean stop by SIGINT ends with 130: {}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("json summary");
    assert_eq!(summary["stopped"], true);
    assert_eq!(summary["stopped_by"], "SIGINT");
    let stopped_at = summary["steps"].as_u64().expect("steps");
    assert!(stopped_at < 32768 && stopped_at.is_multiple_of(256), "stopped right after an update (8 envs × 32 steps): {stopped_at}");
    let status = paddock::format::status::read(&dir).expect("status").expect("readable");
    assert_eq!(status.state, paddock::format::status::State::Stopped);
    assert_eq!(status.step, stopped_at);
    let latest = paddock::format::run_dir::latest_checkpoint(&dir).expect("a final checkpoint");
    assert_eq!(paddock::format::run_dir::checkpoint_step(&latest), Some(stopped_at));
    assert!(std::fs::read_to_string(dir.join("log.txt")).expect("log").contains("SIGINT at step"));

    // The checkout is gone (another machine): the run resumes from its own copies, from another directory.
    let lock = std::fs::read_to_string(dir.join("plugins.lock")).expect("lock");
    drop(checkout);
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let before = std::fs::read(dir.join("status.json")).expect("status");

    // A resume that cannot start changes nothing: another env that the checkpoint does not fit.
    let pendulum = common::plugin("pendulum");
    let bad = format!("env={}", pendulum.display());
    let out =
        paddock_in(elsewhere.path()).args(["train", "--resume", dir.to_str().expect("utf-8"), "--plugin", &bad]).output().expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not be resumed; it is as it was"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(dir.join("status.json")).expect("status"), before, "the failed resume left the status as it was");
    assert_eq!(std::fs::read_to_string(dir.join("plugins.lock")).expect("lock"), lock, "and the lock");

    let out = paddock_in(elsewhere.path()).args(["train", "--resume", dir.to_str().expect("utf-8"), "--json"]).output().expect("run");
    let resumed: Value = serde_json::from_str(ok(&out).trim()).expect("json");
    assert_eq!(resumed["steps"], 32768);
    assert!(std::fs::read(dir.join("metrics.jsonl")).expect("metrics") == whole, "the resumed run's metrics equal the uninterrupted run's");
    let log = std::fs::read_to_string(dir.join("log.txt")).expect("log");
    assert!(log.contains("the run's copy of sha256"), "it ran the carried plugins:\n{log}");
    assert_eq!(std::fs::read_to_string(dir.join("plugins.lock")).expect("lock"), lock, "the same versions, nothing recorded");
}

#[test]
fn resume_uses_the_recorded_plugin_version_and_another_only_on_request() {
    let checkout = Checkout::new();
    let store = tempfile::tempdir().expect("tempdir");
    let mut args = train_args("configs/c.toml", store.path().to_str().expect("utf-8"));
    args.extend(["--set".into(), "total_steps=8192".into()]);
    let out = paddock_in(checkout.path()).args(&args).output().expect("run");
    let s: Value = serde_json::from_str(ok(&out).trim()).expect("json");
    let dir = PathBuf::from(s["run_dir"].as_str().expect("dir"));
    // Make the run resumable past its end: more steps in its recorded config.
    let config = std::fs::read_to_string(dir.join("config.toml")).expect("config").replace("total_steps = 8192", "total_steps = 12288");
    std::fs::write(dir.join("config.toml"), config).expect("write");
    assert!(
        std::fs::read_to_string(dir.join("config.toml"))
            .expect("config")
            .contains(&checkout.path().join("plugins/ppo.wasm").display().to_string()),
        "the recorded config holds absolute plugin paths"
    );

    // The algorithm file changes on disk (a rebuild): the resume keeps the recorded version.
    let ppo = checkout.path().join("plugins/ppo.wasm");
    let rebuilt = common::rebuilt(&std::fs::read(&ppo).expect("read"), "v2");
    std::fs::write(&ppo, &rebuilt).expect("write");
    let out = paddock_in(checkout.path()).args(["train", "--resume", dir.to_str().expect("utf-8"), "--json"]).output().expect("run");
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("changed since the run recorded it; using the recorded version"), "{err}");
    let lock: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(dir.join("plugins.lock")).expect("lock")).expect("json");
    assert_eq!(lock.len(), 2, "no new version recorded: {lock:?}");

    // Another version on request: recorded like a hot reload, at the step it took over.
    let config = std::fs::read_to_string(dir.join("config.toml")).expect("config").replace("total_steps = 12288", "total_steps = 16384");
    std::fs::write(dir.join("config.toml"), config).expect("write");
    let asked = format!("algorithm={}", ppo.display());
    let out = paddock_in(checkout.path())
        .args(["train", "--resume", dir.to_str().expect("utf-8"), "--plugin", &asked, "--json"])
        .output()
        .expect("run");
    ok(&out);
    let lock: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(dir.join("plugins.lock")).expect("lock")).expect("json");
    assert_eq!(lock.len(), 3, "{lock:?}");
    assert_eq!(lock[2]["role"], "algorithm");
    assert_eq!(lock[2]["since_step"], 12288);
    assert_eq!(lock[2]["name"], "ppo");
    let blobs: Vec<String> = std::fs::read_dir(dir.join("plugins"))
        .expect("carried")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(blobs.len(), 3, "each version carried once, by name and sha256: {blobs:?}");

    // Bad requests: an unknown role, a role the run lacks, a file that is not there.
    for (arg, says) in [
        ("critic=x.wasm", "unknown role `critic`"),
        ("reward=plugins/ppo.wasm", "this run has no reward plugin"),
        ("env=nowhere.wasm", "is not a file"),
    ] {
        let out =
            paddock_in(checkout.path()).args(["train", "--resume", dir.to_str().expect("utf-8"), "--plugin", arg]).output().expect("run");
        assert!(
            !out.status.success() && String::from_utf8_lossy(&out.stderr).contains(says),
            "{arg}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn an_s3_run_stopped_by_sigterm_resumes_and_evaluates_on_another_machine_with_only_its_uri() {
    let whole = uninterrupted_metrics();
    let moto = Moto::start();
    let checkout = Checkout::new();
    let work = tempfile::tempdir().expect("tempdir");
    let args = train_args("configs/c.toml", "s3://bkt/runs");
    let mut child = moto
        .command(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .current_dir(checkout.path())
        .env("PADDOCK_WORK_DIR", work.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let local = wait_for_step(&work.path().join("bkt/runs"), 6000, &mut child);
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(143), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("json");
    assert_eq!(summary["stopped_by"], "SIGTERM");
    let at = summary["store_location"].as_str().expect("an S3 run").to_string();

    // Another machine: no checkout, no working copy, another directory.
    drop(checkout);
    std::fs::remove_dir_all(&local).expect("remove the working copy");
    let other = tempfile::tempdir().expect("tempdir");
    let runs = moto.command(&["runs", "ls", "s3://bkt/runs", "--json"]).current_dir(other.path()).output().expect("run");
    let row: Value = serde_json::from_str(ok(&runs).lines().next().expect("a run")).expect("json");
    assert_eq!(row["state"], "stopped");

    let out = moto.command(&["eval", &at, "--episodes", "2", "--json"]).current_dir(other.path()).output().expect("run");
    ok(&out);
    let out = moto
        .command(&["train", "--resume", &at, "--json"])
        .current_dir(other.path())
        .env("PADDOCK_WORK_DIR", other.path().join("work"))
        .output()
        .expect("run");
    let resumed: Value = serde_json::from_str(ok(&out).trim()).expect("json");
    assert_eq!(resumed["steps"], 32768);
    let (status, metrics) = moto.http("GET", &format!("/bkt/runs/{}/metrics.jsonl", at.rsplit('/').next().expect("name")), b"");
    assert_eq!(status, 200);
    assert!(metrics == whole, "the run's metrics in S3 equal the uninterrupted run's");

    // One TensorBoard event stream in S3, as on disk.
    let (_, listing) = moto.http("GET", &format!("/bkt?list-type=2&prefix=runs/{}/events", at.rsplit('/').next().expect("name")), b"");
    let listing = String::from_utf8_lossy(&listing);
    assert_eq!(listing.matches("<Key>").count(), 1, "one event file in S3 after the resume:\n{listing}");
}
