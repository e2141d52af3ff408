//! Plugins written in other languages, built by scripts/build-plugins.sh and run through the
//! same host as the Rust ones: the Python (componentize-py) and JavaScript (componentize-js)
//! reward plugins score full CartPole episodes exactly as the Rust `cartpole-shaped` does and
//! refuse bad parameters by name, and PPO trained on the Python one still solves CartPole.
//! The C CartPole env (clang + wasi-libc + `wit-bindgen c`) follows the Rust env's dynamics
//! step for step through full episodes, with autoreset, snapshots and clear errors; the C
//! reward (on `plugins/c/sdk/paddock.h`) equals the Rust one. The Python CartPole env (on the
//! guest SDK `plugins/python/sdk`) is the Rust env step for step, seeded starts included,
//! and PPO trained on it writes the metrics PPO writes on the Rust env.

use crate::common;

use paddock::envset::{EnvSet, EnvSetOptions};
use paddock::log::RunLog;
use paddock::runtime::{Limits, RewardInstance, World};
use paddock::seed::Stream;
use paddock::spaces::sample;
use rand::SeedableRng;
use std::time::Duration;

/// A CPython component needs more memory and time (its first call imports the app) than the
/// test runtime's defaults; these are the run config's defaults.
fn runtime() -> paddock::runtime::Runtime {
    common::runtime_with(Limits { memory_bytes: 256 << 20, call_timeout: Duration::from_secs(10) }, RunLog::discard())
}

#[test]
fn the_python_reward_scores_a_cartpole_episode_like_the_rust_one() {
    scores_like_the_rust_reward("cartpole-shaped-py");
}

#[test]
fn the_javascript_reward_scores_a_cartpole_episode_like_the_rust_one() {
    scores_like_the_rust_reward("cartpole-shaped-js");
}

#[test]
fn the_c_reward_scores_a_cartpole_episode_like_the_rust_one() {
    scores_like_the_rust_reward("cartpole-shaped-c");
}

fn scores_like_the_rust_reward(plugin: &str) {
    let rt = runtime();
    let env = rt.load(common::plugin("cartpole"), World::Environment).expect("cartpole");
    let other = rt.load(common::plugin(plugin), World::Reward).expect("the reward loads");
    assert_eq!(other.info().world, World::Reward);
    let rust = rt.load(common::plugin("cartpole-shaped"), World::Reward).expect("rust reward");
    let opts = EnvSetOptions { num_envs: 4, workers: 1, seed: 5, stream: Stream::Env, params: Vec::new(), robots: Default::default() };
    let (mut a, mut b) = (EnvSet::new(&env, &opts).expect("envs"), EnvSet::new(&env, &opts).expect("envs"));
    a.set_reward(RewardInstance::new(&other, 1, a.spec(), &Vec::new()).expect("init"));
    b.set_reward(RewardInstance::new(&rust, 1, b.spec(), &Vec::new()).expect("rust init"));
    assert_eq!(a.reset().expect("reset"), b.reset().expect("reset"));
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(3);
    let mut actions = vec![0.0; 4];
    let mut ended = [false; 4];
    let mut steps = 0;
    while !ended.iter().all(|&e| e) {
        for x in actions.iter_mut() {
            sample(&a.spec().action_space.clone(), &mut rng, std::slice::from_mut(x));
        }
        let (sa, sb) = (a.step(&actions).expect("other step"), b.step(&actions).expect("rust step"));
        assert_eq!(sa.rewards, sb.rewards, "step {steps}: {plugin} and the Rust reward differ");
        assert_eq!(sa.env_rewards, sb.env_rewards);
        assert!(sa.rewards.iter().any(|&r| r != 1.0), "the rewards are shaped, not the env's");
        for &i in &sa.ended {
            ended[i as usize] = true;
        }
        steps += 1;
    }
    assert!(steps > 5);

    let err = RewardInstance::new(&other, 1, a.spec(), &vec![("angle-wieght".into(), paddock::runtime::bindings::types::Value::Real(1.0))])
        .expect_err("a misspelt parameter is refused")
        .to_string();
    assert!(err.contains(plugin) && err.contains("angle-wieght"), "{err}");
    let acrobot = EnvSet::new(&rt.load(common::plugin("acrobot"), World::Environment).expect("acrobot"), &opts).expect("envs");
    let err = RewardInstance::new(&other, 1, acrobot.spec(), &Vec::new()).expect_err("other envs are refused").to_string();
    assert!(err.contains("4 observation values"), "{err}");
}

#[test]
fn ppo_on_the_python_reward_still_solves_cartpole() {
    let store = tempfile::tempdir().expect("tempdir");
    let out = common::paddock(&[
        "train",
        "configs/cartpole-ppo-python-reward.toml",
        "--set",
        &format!("store={}", store.path().display()),
        "--set",
        "algorithm.device=cpu",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: serde_json::Value =
        serde_json::from_slice(out.stdout.split(|&b| b == b'\n').rfind(|l| !l.is_empty()).expect("json")).expect("json");
    let best = summary["best_eval_return"].as_f64().expect("evaluated");
    assert!(best >= 475.0 && summary["solved_at_step"].is_u64(), "PPO with the Python reward: {summary}");
    let run = std::path::PathBuf::from(summary["run_dir"].as_str().expect("run dir"));
    let lock = std::fs::read_to_string(run.join("plugins.lock")).expect("lock");
    assert!(lock.contains("cartpole-shaped-py"), "{lock}");
}

#[test]
fn the_c_cartpole_env_runs_full_episodes_like_the_rust_one() {
    use paddock::runtime::bindings::types::Value;
    let rt = runtime();
    let c = rt.load(common::plugin("cartpole-c"), World::Environment).expect("the C env loads");
    let rust = rt.load(common::plugin("cartpole"), World::Environment).expect("cartpole");
    // Both start every episode in the same state, so the dynamics must agree step for step.
    let start = vec![("initial-state".to_string(), Value::Reals(vec![0.01, -0.02, 0.03, 0.04]))];
    let opts = EnvSetOptions { num_envs: 4, workers: 1, seed: 9, stream: Stream::Env, params: start, robots: Default::default() };
    let (mut a, mut b) = (EnvSet::new(&c, &opts).expect("C envs"), EnvSet::new(&rust, &opts).expect("Rust envs"));
    assert_eq!(a.spec(), b.spec(), "the same spec as the Rust CartPole-v1");
    assert_eq!(a.reset().expect("reset"), b.reset().expect("reset"));
    step_alongside(&mut a, &mut b, 12, "cartpole-c");
    // Without `initial-state`, seeded start states differ per env; bad input is refused by name.
    let opts = EnvSetOptions { num_envs: 3, workers: 1, seed: 2, stream: Stream::Env, params: Vec::new(), robots: Default::default() };
    let mut set = EnvSet::new(&c, &opts).expect("C envs");
    let first = set.reset().expect("reset");
    assert!(first[0..4] != first[4..8] && first.iter().all(|x| x.abs() <= 0.05), "{first:?}");
    let err = set.step(&[0.0, 1.0, 7.0]).expect_err("an action outside Discrete(2)").to_string();
    assert!(err.contains("cartpole-c") && err.contains("not in Discrete(2)"), "{err}");
    let bad = EnvSetOptions { params: vec![("gravity".into(), Value::Real(1.0))], ..opts };
    let err = EnvSet::new(&c, &bad).expect_err("unknown parameter").to_string();
    assert!(err.contains("unknown parameter `gravity`"), "{err}");
}

/// The Python CartPole env (on the guest SDK, `plugins/python/sdk`) is the Rust one step for
/// step: the same seeded start states (the SDK's generator is the Rust SDK's), dynamics,
/// auto-reset and episode limit, and a snapshot restores it exactly.
#[test]
fn the_python_cartpole_env_is_the_rust_one_step_for_step() {
    cartpole_is_the_rust_one("cartpole-py");
}

/// The JavaScript CartPole env (on `plugins/js/sdk`) likewise.
#[test]
fn the_javascript_cartpole_env_is_the_rust_one_step_for_step() {
    cartpole_is_the_rust_one("cartpole-js");
}

/// Steps `a` and the Rust env `b` with the same random actions until `episodes` episodes
/// ended, requiring equal steps (observations, rewards, ends, final observations); at step
/// 30 a snapshot of `a`, one step, and a restore must replay that step exactly.
fn step_alongside(a: &mut EnvSet, b: &mut EnvSet, episodes: usize, what: &str) {
    let n = a.reset().expect("reset").len() / 4;
    b.reset().expect("reset");
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(4);
    let mut actions = vec![0.0; n];
    let (mut ended, mut steps) = (0, 0);
    while ended < episodes {
        for x in actions.iter_mut() {
            *x = rand::RngExt::random_range(&mut rng, 0..2) as f32;
        }
        let (sa, sb) = (a.step(&actions).expect("step"), b.step(&actions).expect("Rust step"));
        assert!(sa == sb, "step {steps}: {what} and the Rust CartPole differ:\n{sa:?}\n{sb:?}");
        ended += sa.ended.len();
        steps += 1;
        if steps == 30 {
            let snap = a.snapshot().expect("snapshot");
            let obs = sa.observations.clone();
            let once = a.step(&actions).expect("step");
            a.restore(&snap, &obs).expect("restore");
            assert!(a.step(&actions).expect("step") == once, "{what}: a restored snapshot replays exactly");
            b.step(&actions).expect("keep in step");
        }
    }
}

fn cartpole_is_the_rust_one(plugin: &str) {
    use paddock::runtime::bindings::types::Value;
    let rt = runtime();
    let py = rt.load(common::plugin(plugin), World::Environment).expect("the env loads");
    let rust = rt.load(common::plugin("cartpole"), World::Environment).expect("cartpole");
    let opts = EnvSetOptions { num_envs: 4, workers: 1, seed: 9, stream: Stream::Env, params: Vec::new(), robots: Default::default() };
    let (mut a, mut b) = (EnvSet::new(&py, &opts).expect("envs"), EnvSet::new(&rust, &opts).expect("Rust envs"));
    assert_eq!(a.spec(), b.spec(), "the same spec as the Rust CartPole-v1");
    assert_eq!(a.reset().expect("reset"), b.reset().expect("reset"), "the same seeded start states");
    step_alongside(&mut a, &mut b, 40, plugin);
    let err = a.step(&[0.0, 1.0, 7.0, 0.0]).expect_err("an action outside Discrete(2)").to_string();
    assert!(err.contains("not in Discrete(2)"), "{err}");
    let bad = EnvSetOptions { params: vec![("gravity".into(), Value::Real(1.0))], ..opts };
    let err = EnvSet::new(&py, &bad).expect_err("unknown parameter").to_string();
    assert!(err.contains("unknown parameter `gravity`") && err.contains(plugin), "{err}");
}

/// PPO trained on the Python env writes the very metrics it writes on the Rust env (same
/// seeds, same envs), and a run on it killed with SIGKILL resumes from its checkpoint to the
/// uninterrupted run's metrics.
#[test]
fn ppo_on_the_python_env_trains_like_on_the_rust_one_and_resumes_exactly() {
    trains_like_the_rust_env_and_resumes("cartpole-py");
}

/// The same for the JavaScript env.
#[test]
fn ppo_on_the_javascript_env_trains_like_on_the_rust_one_and_resumes_exactly() {
    trains_like_the_rust_env_and_resumes("cartpole-js");
}

fn trains_like_the_rust_env_and_resumes(plugin: &str) {
    let env = format!("env.plugin={}", common::plugin(plugin).display());
    let sets =
        ["total_steps=6144", "train.eval_every=2048", "train.eval_episodes=3", "train.checkpoint_every=2048", "train.stop_at_return=1e9"];
    let store = tempfile::tempdir().expect("tempdir");
    let mut with_py: Vec<&str> = sets.to_vec();
    with_py.extend_from_slice(&[env.as_str(), "algorithm.device=cpu"]);
    let mut with_rust: Vec<&str> = sets.to_vec();
    with_rust.push("algorithm.device=cpu");
    let py = common::train_json("configs/cartpole-ppo.toml", store.path(), &with_py);
    let rust = common::train_json("configs/cartpole-ppo.toml", store.path(), &with_rust);
    let metrics = |s: &serde_json::Value| {
        std::fs::read(std::path::Path::new(s["run_dir"].as_str().expect("dir")).join("metrics.jsonl")).expect("metrics")
    };
    assert!(metrics(&py) == metrics(&rust), "PPO on {plugin} and on the Rust env wrote different metrics");
    let mut resume_sets = sets.to_vec();
    resume_sets.push(env.as_str());
    common::kill_and_resume_matches("configs/cartpole-ppo.toml", &resume_sets, 6144, |_| {});
}

/// PPO written in Python over the host's tensors (`plugins/python/ppo`) makes the Rust PPO's
/// tensor calls in the Rust PPO's order: on the same seed it writes the same metrics, byte
/// for byte, solves CartPole as the Rust PPO does, and resumes exactly after a SIGKILL.
#[test]
fn the_python_ppo_is_the_rust_ppo_and_solves_cartpole() {
    let py = format!("algorithm.plugin={}", common::plugin("ppo-py").display());
    let store = tempfile::tempdir().expect("tempdir");
    let python = common::train_json("configs/cartpole-ppo.toml", store.path(), &[&py, "algorithm.device=cpu"]);
    let rust = common::train_json("configs/cartpole-ppo.toml", store.path(), &["algorithm.device=cpu"]);
    let metrics = |s: &serde_json::Value| {
        std::fs::read(std::path::Path::new(s["run_dir"].as_str().expect("dir")).join("metrics.jsonl")).expect("metrics")
    };
    assert!(metrics(&python) == metrics(&rust), "the Python PPO and the Rust PPO wrote different metrics");
    assert!(
        python["solved_at_step"].is_u64() && python["best_eval_return"].as_f64() >= Some(475.0),
        "the Python PPO solves CartPole: {python}"
    );
    common::kill_and_resume_matches(
        "configs/cartpole-ppo.toml",
        &[
            &py,
            "total_steps=6144",
            "train.eval_every=2048",
            "train.eval_episodes=3",
            "train.checkpoint_every=2048",
            "train.stop_at_return=1e9",
        ],
        6144,
        |_| {},
    );
}
