//! Hot reload of the reward, env and algorithm plugins in a live `paddock train`: a broken
//! version is refused and the run goes on; a new version takes over at its safe point (a
//! reward at the next step, the env at each env's episode boundary, the algorithm after the
//! next update, on the same weights), with no step lost or repeated, and the run's
//! metrics, log and plugins.lock say when.

use crate::common;

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

/// Starts `paddock train configs/cartpole-ppo.toml` with `sets`, its store in `store`.
fn spawn_train(store: &Path, sets: &[String]) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock"));
    cmd.args(["train", "configs/cartpole-ppo.toml", "--set", &format!("store={}", store.display())]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    cmd.args(["--set", "total_steps=10000000", "--set", "train.stop_at_return=1e9"])
        .args(["--set", "algorithm.device=cpu", "--set", "train.checkpoint_every=0"])
        .current_dir(common::root())
        .env("PADDOCK_CACHE_DIR", common::root().join("target/test-cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn")
}

/// [`spawn_train`], and waits until its run has reported three rollouts: the child and its
/// run directory.
fn train_until_rollouts(store: &Path, sets: &[String]) -> (std::process::Child, std::path::PathBuf) {
    let mut child = spawn_train(store, sets);
    let rollouts = |m: &[serde_json::Value]| m.iter().filter(|l| l.get("rollout/return_mean").is_some()).count();
    wait_for("rollout metrics", &mut child, || only_run_dir(store).is_some_and(|d| rollouts(&lines(&d.join("metrics.jsonl"))) >= 3));
    (child, only_run_dir(store).expect("run dir"))
}

fn only_run_dir(store: &Path) -> Option<std::path::PathBuf> {
    std::fs::read_dir(store).ok()?.filter_map(Result::ok).map(|e| e.path()).next()
}

/// Update steps are 8 envs × 32 steps apart, with no gap or repeat.
fn assert_updates_contiguous(m: &[serde_json::Value]) {
    let updates: Vec<u64> = m.iter().filter(|l| l.get("train/loss/policy").is_some()).filter_map(|l| l["step"].as_u64()).collect();
    assert!(updates.len() > 10 && updates.windows(2).all(|w| w[1] == w[0] + 256), "update steps {updates:?}");
}

fn lock_entries(run: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(run.join("plugins.lock")).expect("lock")).expect("json")
}

#[test]
fn an_algorithm_swapped_mid_run_keeps_its_weights_and_broken_ones_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let algo = dir.path().join("ppo.wasm");
    let ppo = std::fs::read(common::plugin("ppo")).expect("ppo");
    std::fs::write(&algo, &ppo).expect("copy");
    let store = dir.path().join("runs");
    let mut child = spawn_train(&store, &[format!("algorithm.plugin={}", algo.display()), "train.eval_every=2048".into()]);
    let evals = |m: &[serde_json::Value]| -> Vec<(u64, f64)> {
        m.iter().filter_map(|l| Some((l["step"].as_u64()?, l.get("eval/return_mean")?.as_f64()?))).collect()
    };
    let metrics = || only_run_dir(&store).map(|d| lines(&d.join("metrics.jsonl"))).unwrap_or_default();
    wait_for("a trained policy", &mut child, || evals(&metrics()).iter().any(|e| e.1 >= 450.0));
    let run = only_run_dir(&store).expect("run dir");
    let log = || std::fs::read_to_string(run.join("log.txt")).unwrap_or_default();

    common::replace(&algo, b"\0asm garbage");
    wait_for("the refusal of garbage", &mut child, || log().contains("refused the new algorithm plugin"));
    common::replace(&algo, &std::fs::read(common::plugin("cartpole")).expect("env"));
    wait_for("the refusal of an env", &mut child, || log().matches("refused the new algorithm plugin").count() >= 2);
    // Fails its first call: `init` refuses PPO's parameters.
    common::replace(&algo, &std::fs::read(common::plugin("hostile-algorithm")).expect("hostile"));
    wait_for("the refusal of a failing version", &mut child, || log().matches("refused the new algorithm plugin").count() >= 3);
    common::replace(&algo, &common::rebuilt(&ppo, "v2"));
    wait_for("the swap", &mut child, || log().contains("hot reload: algorithm plugin"));
    let swapped_at =
        || lines(&run.join("metrics.jsonl")).iter().find(|l| l.get("reload/algorithm").is_some()).and_then(|l| l["step"].as_u64());
    wait_for("the swap in metrics", &mut child, || swapped_at().is_some());
    let s = swapped_at().expect("the swap is in metrics");
    wait_for("an eval after the swap", &mut child, || evals(&metrics()).iter().any(|e| e.0 > s));
    child.kill().expect("kill");
    child.wait().expect("reap");

    let m = lines(&run.join("metrics.jsonl"));
    assert_eq!(m.iter().filter(|l| l.get("reload/algorithm_refused").is_some()).count(), 3, "three refusals recorded");
    let first_after = evals(&m).into_iter().find(|e| e.0 > s).expect("eval after");
    // A fresh PPO policy scores ~10–40 on CartPole; the swapped one kept its weights. (A
    // trained policy's evaluations wander between ~250 and 500 from one to the next as PPO
    // goes on, and the swap lands at a step the wall clock picks: 287 was seen.)
    assert!(first_after.1 >= 200.0, "eval right after the swap at step {s}: {first_after:?}");
    assert_updates_contiguous(&m);
    let lock = lock_entries(&run);
    let last = lock.last().expect("entries");
    assert_eq!((last["role"].as_str(), last["since_step"].as_u64()), (Some("algorithm"), Some(s)), "{lock:?}");
    assert_ne!(lock[1]["sha256"], last["sha256"], "the new version's hash is recorded");
    let log = log();
    assert!(log.contains("expected world `algorithm`") && log.contains("misbehave"), "refusals name what was wrong: {log}");
}

#[test]
fn an_env_swapped_mid_run_takes_over_at_episode_boundaries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = dir.path().join("cartpole.wasm");
    let cartpole = std::fs::read(common::plugin("cartpole")).expect("cartpole");
    std::fs::write(&env, &cartpole).expect("copy");
    let store = dir.path().join("runs");
    let (mut child, run) = train_until_rollouts(&store, &[format!("env.plugin={}", env.display()), "train.eval_every=0".into()]);
    let log = || std::fs::read_to_string(run.join("log.txt")).unwrap_or_default();

    common::replace(&env, &std::fs::read(common::plugin("acrobot")).expect("acrobot"));
    wait_for("the refusal of other spaces", &mut child, || log().contains("refused the new env plugin"));
    common::replace(&env, &std::fs::read(common::plugin("ppo")).expect("ppo"));
    wait_for("the refusal of another world", &mut child, || log().matches("refused the new env plugin").count() >= 2);
    common::replace(&env, &common::rebuilt(&cartpole, "v2"));
    wait_for("every env on the new version", &mut child, || log().contains("serves all 8 envs"));
    // A second version once the first has reached every training env: the evaluation envs
    // (which move at the next evaluation, and this run has none) take it in the first's place.
    common::replace(&env, &common::rebuilt(&cartpole, "v3"));
    wait_for("every env on the third version", &mut child, || log().matches("serves all 8 envs").count() >= 2);
    let after = lines(&run.join("metrics.jsonl")).len();
    wait_for("more updates", &mut child, || lines(&run.join("metrics.jsonl")).len() > after + 5);
    child.kill().expect("kill");
    child.wait().expect("reap");

    let m = lines(&run.join("metrics.jsonl"));
    let began = m.iter().find(|l| l.get("reload/env").is_some()).and_then(|l| l["step"].as_u64()).expect("swap began");
    let done = m.iter().find(|l| l.get("reload/env_complete").is_some()).and_then(|l| l["step"].as_u64()).expect("swap done");
    assert!(done > began, "envs move over as their episodes end ({began} → {done})");
    assert_eq!(m.iter().filter(|l| l.get("reload/env_refused").is_some()).count(), 2);
    assert_eq!(m.iter().filter(|l| l.get("reload/env").is_some()).count(), 2, "both versions swapped in");
    assert_updates_contiguous(&m);
    let began_again = m.iter().rfind(|l| l.get("reload/env").is_some()).and_then(|l| l["step"].as_u64()).expect("second swap");
    let last = lock_entries(&run).last().cloned().expect("entries");
    assert_eq!((last["role"].as_str(), last["since_step"].as_u64()), (Some("env"), Some(began_again)));
    assert!(log().contains("other spaces"), "{}", log());
}

#[test]
fn a_reward_plugin_swapped_mid_run_takes_over_and_a_broken_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reward = dir.path().join("reward.wasm");
    std::fs::copy(common::plugin("cartpole-shaped"), &reward).expect("copy");
    let store = dir.path().join("runs");
    let (mut child, run) = train_until_rollouts(&store, &[format!("reward.plugin={}", reward.display()), "train.eval_every=0".into()]);
    let log = || std::fs::read_to_string(run.join("log.txt")).unwrap_or_default();

    // The same bytes written again (in place) are not a new version: no swap follows.
    std::fs::write(&reward, std::fs::read(common::plugin("cartpole-shaped")).expect("shaped")).expect("rewrite");
    common::replace(&reward, b"not a component at all");
    wait_for("the refusal", &mut child, || log().contains("refused the new reward plugin"));
    // Written in place rather than renamed: loaded once the file is quiet.
    std::fs::write(&reward, std::fs::read(common::plugin("hostile")).expect("hostile")).expect("write in place");
    wait_for("the second refusal", &mut child, || log().matches("refused the new reward plugin").count() >= 2);
    common::replace(&reward, &std::fs::read(common::plugin("panicking-reward")).expect("panicking"));
    wait_for("the third refusal", &mut child, || log().matches("refused the new reward plugin").count() >= 3);
    common::replace(&reward, &std::fs::read(common::plugin("constant-reward")).expect("constant"));
    wait_for("the swap", &mut child, || log().contains("hot reload: reward plugin"));
    let swapped_at =
        || lines(&run.join("metrics.jsonl")).iter().find(|l| l.get("reload/reward").is_some()).and_then(|l| l["step"].as_u64());
    wait_for("the swap in metrics", &mut child, || swapped_at().is_some());
    let s = swapped_at().expect("swap step");
    // CartPole episodes last at most 500 steps: an episode that ends 8 envs × 500 steps after
    // the swap was paid by the new plugin only. Its return is reported at the next update
    // (every 8 × 32 = 256 steps), so lines from `s + 4000 + 256` on hold only such episodes.
    let settled = s + 4000 + 256;
    let after =
        |m: &[serde_json::Value]| m.iter().filter(|l| l["step"].as_u64() > Some(settled) && l.get("rollout/return_mean").is_some()).count();
    wait_for("episodes after the swap", &mut child, || after(&lines(&run.join("metrics.jsonl"))) >= 3);
    child.kill().expect("kill");
    child.wait().expect("reap");

    let m = lines(&run.join("metrics.jsonl"));
    assert_eq!(m.iter().filter(|l| l.get("reload/reward_refused").is_some()).count(), 3, "three refusals recorded");
    assert_eq!(m.iter().filter(|l| l.get("reload/reward").is_some()).count(), 1, "one swap: unchanged bytes are not reloaded");
    for l in m.iter().filter(|l| l.get("rollout/return_mean").is_some()) {
        let (ret, len) = (l["rollout/return_mean"].as_f64().expect("return"), l["rollout/length_mean"].as_f64().expect("length"));
        let step = l["step"].as_u64().expect("step");
        if step <= s {
            assert!((ret - len).abs() > 1e-6, "step {step}: the shaped reward pays other than 1 per step ({ret} vs {len})");
        } else if step > settled {
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
    let log = log();
    assert!(log.contains("expected world `reward`") && log.contains("deliberate trap"), "the refusals name what was wrong: {log}");
    // Each new version is announced as soon as it is seen, before it is compiled: four
    // versions (three refused, one swapped in), and the swap's announcement comes first.
    let seen = "hot reload: a new version of the reward plugin";
    assert_eq!(log.matches(seen).count(), 4, "{log}");
    let (announced, live) = (log.rfind(seen).expect("seen"), log.find("hot reload: reward plugin").expect("live"));
    assert!(announced < live, "the new version is announced before it goes live:\n{log}");
}

/// The per-function compile cache (`<cache>/functions/`): a new version of a Python plugin
/// (here: the same code with another custom section, as an edit of `app.py` leaves the
/// interpreter's code unchanged) compiles mostly from it, and a run whose plugins compiled
/// from a warm cache writes the same metrics as one that compiled them cold. A damaged entry
/// is said once and compiled afresh.
#[test]
fn the_function_cache_speeds_a_new_version_and_never_changes_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("cache");
    let reward = dir.path().join("reward.wasm");
    let train = |name: &str| -> (Vec<u8>, String) {
        let store = dir.path().join(name);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"))
            .args(["train", "configs/cartpole-ppo-python-reward.toml", "--json"])
            .args(["--set", &format!("store={}", store.display()), "--set", &format!("reward.plugin={}", reward.display())])
            .args(["--set", "total_steps=1024", "--set", "train.eval_every=512", "--set", "algorithm.device=cpu"])
            .current_dir(common::root())
            .env("PADDOCK_CACHE_DIR", &cache)
            .output()
            .expect("train");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let run = only_run_dir(&store).expect("run dir");
        (std::fs::read(run.join("metrics.jsonl")).expect("metrics"), std::fs::read_to_string(run.join("log.txt")).expect("log"))
    };
    let compiled = |log: &str| -> Vec<(u64, u64)> {
        log.lines()
            .filter_map(|l| {
                l.split_once(" functions from the compile cache")?
                    .0
                    .rsplit_once(": ")?
                    .1
                    .split_once(" of ")
                    .map(|(a, b)| (a.parse().ok(), b.parse().ok()))
            })
            .filter_map(|(a, b)| Some((a?, b?)))
            .collect()
    };
    let bytes = std::fs::read(common::plugin("cartpole-shaped-py")).expect("plugin");
    std::fs::write(&reward, common::rebuilt(&bytes, "cold")).expect("write");
    let (cold, log) = train("cold");
    let big = |v: &[(u64, u64)]| v.iter().copied().filter(|(_, n)| *n > 10_000).collect::<Vec<_>>();
    let first = big(&compiled(&log));
    // Cold, only a component's repeated bodies hit (the same function compiled twice).
    assert!(first.len() == 1 && first[0].0 < first[0].1 / 2, "the Python plugin compiled cold: {first:?}\n{log}");
    // A new version: most functions come from the cache.
    std::fs::write(&reward, common::rebuilt(&bytes, "warm")).expect("write");
    let (warm, log) = train("warm");
    let second = big(&compiled(&log));
    assert!(second.len() == 1 && second[0].0 > second[0].1 * 9 / 10, "the new version compiled from the cache: {second:?}\n{log}");
    assert_eq!(cold, warm, "a warm compile cache changes no result");
    // Damage every entry: each is refused (one warning naming the cache) and compiled afresh.
    let mut damaged = 0;
    for fan in std::fs::read_dir(cache.join("functions")).expect("functions").filter_map(Result::ok) {
        for f in std::fs::read_dir(fan.path()).expect("fan").filter_map(Result::ok) {
            let b = std::fs::read(f.path()).expect("entry");
            std::fs::write(f.path(), &b[..b.len() / 2]).expect("truncate");
            damaged += 1;
        }
    }
    assert!(damaged > 1000, "{damaged} entries");
    std::fs::write(&reward, common::rebuilt(&bytes, "damaged")).expect("write");
    let (again, log) = train("damaged");
    assert_eq!(cold, again, "damaged entries change no result");
    assert_eq!(log.matches("holds a damaged entry").count(), 1, "{log}");
}

/// A compile cache folder that cannot be written is named in a warning and the run trains
/// without it, to the same metrics.
#[test]
fn an_unwritable_compile_cache_is_named_and_the_run_trains_without_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "not a folder").expect("file");
    let train = |cache: &Path, name: &str| {
        let store = dir.path().join(name);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"))
            .args(["train", "configs/cartpole-ppo.toml", "--json", "--set", &format!("store={}", store.display())])
            .args(["--set", "total_steps=1024", "--set", "algorithm.device=cpu"])
            .current_dir(common::root())
            .env("PADDOCK_CACHE_DIR", cache)
            .output()
            .expect("train");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let run = only_run_dir(&store).expect("run dir");
        (std::fs::read(run.join("metrics.jsonl")).expect("metrics"), std::fs::read_to_string(run.join("log.txt")).expect("log"))
    };
    let (blocked, log) = train(&blocker.join("cache"), "blocked");
    assert_eq!(log.matches("cannot be written").count(), 1, "one warning:\n{log}");
    assert!(log.contains(&blocker.join("cache/functions").display().to_string()), "it names the folder:\n{log}");
    let (fine, _) = train(&dir.path().join("cache"), "fine");
    assert_eq!(blocked, fine);
}

/// The edit loop of a Python plugin on Paddock's Python runtime: `paddock plugin build
/// --watch` rebuilds the project when `app.py` is saved, and the run takes the new version
/// without compiling anything (the runtime is compiled once; only the plugin's files
/// changed). A version with a syntax error is refused with the file and line named, and
/// the run trains on; the next good save is live again.
#[test]
fn a_saved_app_py_goes_live_without_a_compile_and_a_broken_one_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("shaped");
    std::fs::create_dir_all(&project).expect("dir");
    let app = project.join("app.py");
    let original = std::fs::read_to_string(common::root().join("plugins/python/cartpole-shaped/app.py")).expect("app.py");
    std::fs::write(&app, &original).expect("write");
    let reward = dir.path().join("reward.wasm");
    let mut watch = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["plugin", "build", "--watch"])
        .arg(&project)
        .arg("-o")
        .arg(&reward)
        .env("PADDOCK_CACHE_DIR", common::root().join("target/test-cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn watch");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !reward.is_file() {
        assert!(Instant::now() < deadline && watch.try_wait().expect("wait").is_none(), "plugin build --watch wrote nothing");
        std::thread::sleep(Duration::from_millis(50));
    }
    let store = dir.path().join("runs");
    let (mut child, run) = train_until_rollouts(&store, &[format!("reward.plugin={}", reward.display()), "train.eval_every=0".into()]);
    let log = || std::fs::read_to_string(run.join("log.txt")).unwrap_or_default();

    // A syntax error: refused, naming the file and line; the run goes on.
    std::fs::write(&app, format!("{original}\nbroken = (\n")).expect("save");
    wait_for("the refusal", &mut child, || log().contains("refused the new reward plugin"));
    // Every step pays 1 from the next good save on.
    let constant =
        format!("{original}\n\nclass RewardFn(RewardFn):\n    def compute(self, batch):\n        return [1.0] * batch.num_envs\n");
    std::fs::write(&app, constant).expect("save");
    wait_for("the swap", &mut child, || log().contains("hot reload: reward plugin"));
    // The run says so where `paddock watch` and the progress line look, for ten seconds.
    let news = || {
        std::fs::read_to_string(run.join("status.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["message"].as_str().map(str::to_string))
    };
    wait_for("the news in status.json", &mut child, || news().is_some_and(|m| m.contains("new reward plugin live")));
    let swapped_at =
        || lines(&run.join("metrics.jsonl")).iter().find(|l| l.get("reload/reward").is_some()).and_then(|l| l["step"].as_u64());
    wait_for("the swap in metrics", &mut child, || swapped_at().is_some());
    let s = swapped_at().expect("swap step");
    let line = lines(&run.join("metrics.jsonl")).into_iter().find(|l| l.get("reload/reward").is_some()).expect("swap line");
    assert!(line["reload/reward_ms"].as_f64().is_some_and(|ms| ms > 0.0), "the swap's latency is recorded: {line}");
    let settled = s + 4000 + 256;
    let after =
        |m: &[serde_json::Value]| m.iter().filter(|l| l["step"].as_u64() > Some(settled) && l.get("rollout/return_mean").is_some()).count();
    wait_for("episodes after the swap", &mut child, || after(&lines(&run.join("metrics.jsonl"))) >= 2);
    child.kill().expect("kill");
    child.wait().expect("reap");
    let _ = watch.kill();
    let _ = watch.wait();

    let log = log();
    assert!(log.contains("app.py line") && log.contains("SyntaxError"), "the refusal names the file, line and error:\n{log}");
    let m = lines(&run.join("metrics.jsonl"));
    assert_eq!(m.iter().filter(|l| l.get("reload/reward_refused").is_some()).count(), 1, "one refusal");
    assert_eq!(m.iter().filter(|l| l.get("reload/reward").is_some()).count(), 1, "one swap");
    for l in m.iter().filter(|l| l["step"].as_u64() > Some(settled) && l.get("rollout/return_mean").is_some()) {
        let (ret, len) = (l["rollout/return_mean"].as_f64().expect("return"), l["rollout/length_mean"].as_f64().expect("length"));
        assert!((ret - len).abs() < 1e-6, "after the swap every step pays 1 ({ret} vs {len})");
    }
    // Nothing was compiled for the new versions: the runtime's code was compiled (or taken
    // from the cache) when the run started, and every version after shares it.
    let first_seen = log.find("hot reload: a new version of the reward plugin").expect("seen");
    assert!(!log[first_seen..].contains("compiled sha256"), "a new version on the runtime compiled nothing:\n{log}");
    assert_updates_contiguous(&m);
}
