//! Hot-reload latency (issue 6's figure): from a plugin file's replacement (written beside
//! it, then renamed over it, as build tools do) to the new version being live in a running
//! `paddock train`, for the CartPole reward plugin (live at the next step) and the PPO
//! plugin (live right after the next update, which at 8 envs × 32 steps comes every
//! ~35 ms here). Each new version is the plugin with a different custom section, so each
//! has a new hash and goes through the whole path: file event, 50 ms quiet period,
//! compile (the compile cache misses: the bytes are new), world/version check, instantiate,
//! trial call, swap. Latencies are the run's own log figures (`… ms after the change`).
//!
//! Then the same for the Python and JavaScript CartPole rewards (18 MB and 12 MB components:
//! an interpreter and the app), at most 5 rounds each: their new versions differ from the
//! old in a custom section only, as an edit of `app.py` or `app.js` leaves the
//! interpreter's code as it was, so the per-function compile cache (`runtime::function_cache`)
//! supplies most of their functions.
//!
//!     cargo bench --bench reload [-- ROUNDS]

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The "(N ms after the change; loaded in M ms)" figures of `role`'s swaps in the log.
fn figures(log: &str, role: &str) -> Vec<(f64, f64)> {
    let prefix = format!("hot reload: {role} plugin ");
    log.lines()
        .filter(|l| l.contains(&prefix))
        .filter_map(|l| {
            let (total, rest) = l.rsplit_once('(')?.1.split_once(" ms after the change; loaded in ")?;
            Some((total.parse().ok()?, rest.split_once(" ms")?.0.parse().ok()?))
        })
        .collect()
}

fn latencies(log: &str, role: &str) -> Vec<f64> {
    figures(log, role).into_iter().map(|f| f.0).collect()
}

fn summary(name: &str, mut v: Vec<f64>) {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    println!(
        "{name:<28} n={:<3} median {:>4.0} ms   p90 {:>4.0} ms   min {:>4.0} ms   max {:>4.0} ms",
        v.len(),
        q(0.5),
        q(0.9),
        v[0],
        v[v.len() - 1]
    );
}

/// Trains CartPole PPO with `reward` and `algo` as its plugins and replaces `swaps` of them
/// `rounds` times each; returns the run's log.
fn reload_run(reward_plugin: &str, swaps: &[&str], rounds: usize) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let (reward, algo) = (dir.path().join("reward.wasm"), dir.path().join("ppo.wasm"));
    let reward_bytes = std::fs::read(common::plugin(reward_plugin)).expect("reward");
    let ppo_bytes = std::fs::read(common::plugin("ppo")).expect("ppo");
    std::fs::write(&reward, &reward_bytes).expect("copy");
    std::fs::write(&algo, &ppo_bytes).expect("copy");
    let store = dir.path().join("runs");
    let mut child = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["train", "configs/cartpole-ppo.toml", "--set", &format!("store={}", store.display())])
        .args(["--set", &format!("reward.plugin={}", reward.display()), "--set", &format!("algorithm.plugin={}", algo.display())])
        .args(["--set", "total_steps=1000000000", "--set", "train.stop_at_return=1e9", "--set", "train.eval_every=0"])
        .args(["--set", "train.checkpoint_every=0", "--set", "algorithm.device=cpu"])
        .current_dir(common::root())
        // One cache for every run of this bench: the first version of each plugin compiles
        // cold, each new one (new bytes, the same code) finds its functions there.
        .env("PADDOCK_CACHE_DIR", std::env::temp_dir().join("paddock-bench-reload-cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn paddock");
    let log_path = || std::fs::read_dir(&store).ok()?.filter_map(Result::ok).next().map(|e| e.path().join("log.txt"));
    let log = || log_path().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
    let wait = |what: &str, done: &dyn Fn(&str) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !done(&log()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}:\n{}", log());
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let running = || {
        log_path()
            .and_then(|p| std::fs::read_to_string(p.with_file_name("status.json")).ok())
            .is_some_and(|s| s.contains("\"state\":\"running\""))
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !running() {
        assert!(Instant::now() < deadline, "the run did not start:\n{}", log());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(1));
    for role in swaps {
        let (path, bytes) = if *role == "reward" { (&reward, &reward_bytes) } else { (&algo, &ppo_bytes) };
        for i in 0..rounds {
            common::replace(path, &common::rebuilt(bytes, &format!("{role}-{i}-{}", std::process::id())));
            wait("the swap", &|l| latencies(l, role).len() > i);
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    child.kill().expect("kill");
    child.wait().expect("reap");
    let log = log();
    assert!(!log.contains("refused"), "a version was refused:\n{log}");
    log
}

fn main() {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10);
    println!("hot-reload latency, file replaced → new version live (cartpole-ppo, 8 envs, CPU)");
    let log = reload_run("cartpole-shaped", &["reward", "algorithm"], rounds);
    summary("reward (cartpole-shaped)", latencies(&log, "reward"));
    summary("  of which loading", figures(&log, "reward").into_iter().map(|f| f.1).collect());
    summary("algorithm (ppo)", latencies(&log, "algorithm"));
    summary("  of which loading", figures(&log, "algorithm").into_iter().map(|f| f.1).collect());
    for plugin in ["cartpole-shaped-py", "cartpole-shaped-js"] {
        let log = reload_run(plugin, &["reward"], rounds.min(5));
        summary(&format!("reward ({plugin})"), latencies(&log, "reward"));
        summary("  of which loading", figures(&log, "reward").into_iter().map(|f| f.1).collect());
    }
}
