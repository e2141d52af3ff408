//! The learner on a GPU, end to end through the real binary. Ignored by default so a machine
//! without a GPU passes; where libtorch sees one:
//!
//!     cargo test --release --test cuda -- --ignored
//!
//! (`scripts/gpu-checks.sh` runs these on a machine that has the GPU but no Rust toolchain.)

mod common;

use common::{paddock, paddock_with_env, train_json as train};

#[test]
#[ignore = "needs a GPU"]
fn ppo_solves_cartpole_on_the_gpu() {
    let dir = tempfile::tempdir().expect("tempdir");
    for seed in ["seed=1", "seed=2", "seed=3"] {
        let s = train("configs/cartpole-ppo.toml", dir.path(), &[seed, "algorithm.device=cuda"]);
        assert_eq!(s["device"], "cuda(0)", "{s}");
        let solved = s["solved_at_step"].as_u64().unwrap_or_else(|| panic!("{seed} did not reach 475 on the GPU: {s}"));
        assert!(solved <= 100_000, "{seed} solved only at {solved}");
    }
}

#[test]
#[ignore = "needs a GPU"]
fn auto_picks_the_gpu_and_a_missing_one_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = train("configs/cartpole-ppo.toml", dir.path(), &["total_steps=512", "train.eval_every=0", "algorithm.device=auto"]);
    assert_eq!(s["device"], "cuda(0)", "auto must pick the GPU libtorch sees: {s}");
    let store_set = format!("store={}", dir.path().display());
    let out = paddock(&["train", "configs/cartpole-ppo.toml", "--set", &store_set, "--set", "algorithm.device=cuda:7"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CUDA device 7 was requested but libtorch sees"), "{err}");
}

/// Same seed, same GPU: the same `metrics.jsonl`, and a run killed with SIGKILL continues
/// from its checkpoint to the uninterrupted run's metrics.
#[test]
#[ignore = "needs a GPU"]
fn a_gpu_run_killed_and_resumed_matches_the_uninterrupted_one() {
    let sets =
        ["algorithm.device=cuda", "total_steps=12288", "train.eval_every=4096", "train.checkpoint_every=2048", "train.stop_at_return=1e9"];
    common::kill_and_resume_matches("configs/cartpole-ppo.toml", &sets, 12288, |_| {});
}

/// Checkpoints hold CPU tensors: a run trained on the GPU evaluates where libtorch sees none.
#[test]
#[ignore = "needs a GPU"]
fn a_gpu_checkpoint_evaluates_on_the_cpu() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = train(
        "configs/cartpole-ppo.toml",
        dir.path(),
        &["algorithm.device=auto", "total_steps=20480", "train.eval_every=0", "train.checkpoint_every=20480"],
    );
    assert_eq!(s["device"], "cuda(0)", "{s}");
    let run_dir = s["run_dir"].as_str().expect("run dir");
    let eval = |hide_gpu: bool| {
        let env: &[(&str, &str)] = if hide_gpu { &[("CUDA_VISIBLE_DEVICES", "")] } else { &[] };
        let out = paddock_with_env(&["eval", run_dir, "--episodes", "5", "--json"], env);
        assert!(out.status.success(), "eval (GPU hidden: {hide_gpu}) failed:\n{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("eval json")
    };
    let (gpu, cpu) = (eval(false), eval(true));
    for e in [&gpu, &cpu] {
        assert_eq!(e["returns"].as_array().map(Vec::len), Some(5), "{e}");
        assert!(e["mean"].as_f64().is_some_and(f64::is_finite), "{e}");
    }
}

/// The off-policy path (replay buffers on the device, target networks, two or three
/// optimizers, exploration noise).
#[test]
#[ignore = "needs a GPU"]
fn sac_td3_and_dqn_train_on_the_gpu() {
    let dir = tempfile::tempdir().expect("tempdir");
    let short = ["algorithm.device=cuda", "total_steps=3000", "train.eval_every=3000", "train.checkpoint_every=0"];
    for (config, extra) in [
        ("configs/pendulum-sac.toml", None),
        ("configs/pendulum-td3.toml", Some("algorithm.params.learning-starts=1000")),
        ("configs/cartpole-dqn.toml", None),
    ] {
        let sets: Vec<&str> = short.iter().copied().chain(extra).collect();
        let s = train(config, dir.path(), &sets);
        assert_eq!(s["device"], "cuda(0)", "{config}: {s}");
        assert!(s["last_eval_return"].as_f64().is_some_and(f64::is_finite), "{config}: {s}");
    }
}

/// A2C (RMSprop) solves CartPole on the GPU; PPO's Gaussian head learns Pendulum there (the
/// CPU tests' bars).
#[test]
#[ignore = "needs a GPU"]
fn a2c_and_continuous_ppo_learn_on_the_gpu() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = train("configs/cartpole-a2c.toml", dir.path(), &["algorithm.device=cuda"]);
    let solved = s["solved_at_step"].as_u64().unwrap_or_else(|| panic!("A2C did not reach 475 on the GPU: {s}"));
    assert!(solved <= 500_000, "A2C solved only at {solved}");
    let s = train("configs/pendulum-ppo.toml", dir.path(), &["algorithm.device=cuda", "total_steps=61440", "train.eval_every=61440"]);
    let last = s["last_eval_return"].as_f64().expect("an evaluation");
    assert!(last > -500.0, "PPO on Pendulum on the GPU after 60k steps: eval return {last} (random ≈ -1200)");
}
