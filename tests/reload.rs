//! Hot reload of the reward plugin in a live `paddock train`: a broken version is refused
//! and the run goes on; a new version takes over at the next step, with no step lost or
//! repeated, and the run's metrics, log and plugins.lock say when.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn wait_for(what: &str, child: &mut std::process::Child, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        assert!(child.try_wait().expect("wait").is_none(), "the run ended while waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Replaces `dst` the way build tools do: write a temporary file beside it, then rename.
fn replace(dst: &Path, bytes: &[u8]) {
    let tmp = dst.with_extension("tmp");
    std::fs::write(&tmp, bytes).expect("write");
    std::fs::rename(&tmp, dst).expect("rename");
}

#[test]
fn a_reward_plugin_swapped_mid_run_takes_over_and_a_broken_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reward = dir.path().join("reward.wasm");
    std::fs::copy(common::plugin("cartpole-shaped"), &reward).expect("copy");
    let store = dir.path().join("runs");
    let (store_set, reward_set) = (format!("store={}", store.display()), format!("reward.plugin={}", reward.display()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["train", "configs/cartpole-ppo.toml", "--set", &store_set, "--set", &reward_set])
        .args(["--set", "total_steps=10000000", "--set", "train.stop_at_return=1e9", "--set", "train.eval_every=0"])
        .args(["--set", "algorithm.device=cpu", "--set", "train.checkpoint_every=0"])
        .current_dir(common::root())
        .env("PADDOCK_CACHE_DIR", common::root().join("target/test-cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let run_dir = || std::fs::read_dir(&store).ok()?.filter_map(Result::ok).map(|e| e.path()).next();
    let rollouts = |m: &[serde_json::Value]| m.iter().filter(|l| l.get("rollout/return_mean").is_some()).count();
    wait_for("rollout metrics", &mut child, || run_dir().is_some_and(|d| rollouts(&lines(&d.join("metrics.jsonl"))) >= 3));
    let run = run_dir().expect("run dir");
    let log = || std::fs::read_to_string(run.join("log.txt")).unwrap_or_default();

    replace(&reward, b"not a component at all");
    wait_for("the refusal", &mut child, || log().contains("refused the new reward plugin"));
    replace(&reward, &std::fs::read(common::plugin("hostile")).expect("hostile"));
    wait_for("the second refusal", &mut child, || log().matches("refused the new reward plugin").count() >= 2);
    replace(&reward, &std::fs::read(common::plugin("constant-reward")).expect("constant"));
    wait_for("the swap", &mut child, || log().contains("hot reload: reward plugin"));
    let swapped_at =
        || lines(&run.join("metrics.jsonl")).iter().find(|l| l.get("reload/reward").is_some()).and_then(|l| l["step"].as_u64());
    wait_for("the swap in metrics", &mut child, || swapped_at().is_some());
    let s = swapped_at().expect("swap step");
    // CartPole episodes last at most 500 steps: 8 envs × 500 steps after the swap, every
    // finished episode was paid by the new plugin only.
    let after = |m: &[serde_json::Value]| {
        m.iter().filter(|l| l["step"].as_u64() > Some(s + 4000) && l.get("rollout/return_mean").is_some()).count()
    };
    wait_for("episodes after the swap", &mut child, || after(&lines(&run.join("metrics.jsonl"))) >= 3);
    child.kill().expect("kill");
    child.wait().expect("reap");

    let m = lines(&run.join("metrics.jsonl"));
    assert_eq!(m.iter().filter(|l| l.get("reload/reward_refused").is_some()).count(), 2, "two refusals recorded");
    for l in m.iter().filter(|l| l.get("rollout/return_mean").is_some()) {
        let (ret, len) = (l["rollout/return_mean"].as_f64().expect("return"), l["rollout/length_mean"].as_f64().expect("length"));
        let step = l["step"].as_u64().expect("step");
        if step <= s {
            assert!((ret - len).abs() > 1e-6, "step {step}: the shaped reward pays other than 1 per step ({ret} vs {len})");
        } else if step > s + 4000 {
            assert!((ret - len).abs() < 1e-6, "step {step}: after the swap every step pays 1 ({ret} vs {len})");
        }
    }
    // No step lost or repeated: updates every 8 envs × 32 steps, across refusals and swap.
    let updates: Vec<u64> = m.iter().filter(|l| l.get("train/loss/policy").is_some()).filter_map(|l| l["step"].as_u64()).collect();
    assert!(updates.windows(2).all(|w| w[1] == w[0] + 256), "update steps {updates:?}");
    let lock: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(run.join("plugins.lock")).expect("lock")).expect("json");
    let last = lock.last().expect("entries");
    assert_eq!((last["role"].as_str(), last["since_step"].as_u64()), (Some("reward"), Some(s)), "{lock:?}");
    assert_eq!(lock.iter().filter(|e| e["role"] == "reward").count(), 2, "the first version and the swapped-in one");
    assert!(log().contains("expected world `reward`"), "the refusal names what was wrong: {}", log());
}
