//! Envs on the host's rigid-body physics (rapier3d behind `paddock:rl/physics`), through
//! the real runtime: bit-identical trajectories for the same seed and actions, exact
//! snapshot/restore, and actions the simulation cannot take (1e9, NaN) ending the episode as
//! truncated with a logged reason — never a NaN observation, never a crash.

use crate::common;

use paddock::envset::{EnvSet, EnvSetOptions, VecStep};
use paddock::log::{Level, RunLog};
use paddock::runtime::bindings::types::Value;
use paddock::runtime::{Limits, World};
use paddock::seed::Stream;
use paddock::spaces::sample;
use rand::SeedableRng;
use std::time::Duration;

pub(crate) fn options(num_envs: usize, seed: u64) -> EnvSetOptions {
    EnvSetOptions { num_envs, workers: 1, seed, stream: Stream::Env, params: Vec::new(), robots: Default::default() }
}

pub(crate) fn envset(name: &str, opts: &EnvSetOptions, log: RunLog) -> EnvSet {
    let rt = common::runtime_with(Limits { memory_bytes: 64 << 20, call_timeout: Duration::from_secs(5) }, log);
    let plugin = rt.load(common::plugin(name), World::Environment).expect("load");
    EnvSet::new(&plugin, opts).expect("env set")
}

pub(crate) fn bits(steps: &[VecStep]) -> Vec<u32> {
    steps.iter().flat_map(|s| s.observations.iter().chain(&s.final_observations).map(|x| x.to_bits())).collect()
}

pub(crate) fn random_steps(set: &mut EnvSet, steps: usize, seed: u64) -> Vec<VecStep> {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(seed);
    let space = set.spec().action_space.clone();
    let mut actions = vec![0.0; set.num_envs() * set.act_len()];
    (0..steps)
        .map(|_| {
            for a in actions.chunks_exact_mut(set.act_len()) {
                sample(&space, &mut rng, a);
            }
            set.step(&actions).expect("step")
        })
        .collect()
}

#[test]
fn cartpole_3d_is_bit_identical_for_the_same_seed_and_actions_over_1000_steps() {
    let (mut a, mut b) =
        (envset("cartpole-3d", &options(4, 7), RunLog::discard()), envset("cartpole-3d", &options(4, 7), RunLog::discard()));
    let (a0, b0) = (a.reset().expect("reset"), b.reset().expect("reset"));
    assert_eq!(a0.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), b0.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    let (sa, sb) = (random_steps(&mut a, 1000, 3), random_steps(&mut b, 1000, 3));
    assert_eq!(bits(&sa), bits(&sb), "same seed and actions, different trajectories");
    assert!(sa == sb, "rewards and flags agree too");
    let episodes: usize = sa.iter().map(|s| s.ended.len()).sum();
    assert!(episodes > 20, "random actions end episodes (pole falls or cart leaves): {episodes}");
    assert!(sa.iter().all(|s| s.observations.iter().all(|x| x.is_finite())));
    // Another seed: other initial states.
    let mut c = envset("cartpole-3d", &options(4, 8), RunLog::discard());
    assert_ne!(a0, c.reset().expect("reset"));
}

#[test]
fn a_snapshot_restores_the_simulation_exactly() {
    let mut set = envset("cartpole-3d", &options(3, 4), RunLog::discard());
    set.reset().expect("reset");
    let obs = random_steps(&mut set, 37, 1).pop().expect("steps").observations;
    let states = set.snapshot().expect("snapshot");
    let first = random_steps(&mut set, 300, 9);
    set.restore(&states, &obs).expect("restore");
    let second = random_steps(&mut set, 300, 9);
    assert_eq!(bits(&first), bits(&second), "restored run diverged");
    assert!(first == second);
}

#[test]
fn absurd_and_nan_actions_truncate_the_episode_with_a_logged_reason() {
    let lines = common::Captured::default();
    let mut set = envset("cartpole-3d", &options(2, 5), RunLog::new(Box::new(lines.clone()), Level::Info));
    set.reset().expect("reset");
    for (bad, says) in [(1e9f32, "could not be simulated"), (f32::NAN, "non-finite"), (f32::INFINITY, "non-finite")] {
        let s = set.step(&[bad, 0.0]).expect("an absurd action is not a crash");
        assert_eq!((s.truncated[0], s.terminated[0]), (true, false), "action {bad}: env 0 is truncated, not terminated");
        assert!(!s.truncated[1] && !s.terminated[1], "env 1 is untouched");
        assert!(
            s.observations.iter().chain(&s.final_observations).all(|x| x.is_finite()),
            "action {bad}: no NaN reaches the learner: {s:?}"
        );
        let log = lines.text();
        assert!(log.contains("env 0: episode truncated") && log.contains(says), "action {bad}: the reason is logged:\n{log}");
        // The env goes on: a fresh episode steps normally.
        let ok = random_steps(&mut set, 20, 2);
        assert!(ok.iter().all(|s| s.observations.iter().all(|x| x.is_finite() && x.abs() < 100.0)));
    }
}

/// Gymnasium's cart-pole equations of motion (cart 1 kg, pole 0.1 kg, half-length 0.5 m, a
/// uniform rod), integrated like the physics host does: semi-implicit Euler, 4 substeps of
/// 5 ms per 20 ms control step.
fn closed_form_step(state: &mut [f64; 4], force: f64) {
    let (g, mc, mp, l) = (9.8, 1.0, 0.1, 0.5);
    for _ in 0..4 {
        let [x, x_dot, theta, theta_dot] = *state;
        let (s, c) = theta.sin_cos();
        let temp = (force + mp * l * theta_dot * theta_dot * s) / (mc + mp);
        let theta_acc = (g * s - c * temp) / (l * (4.0 / 3.0 - mp * c * c / (mc + mp)));
        let x_acc = temp - mp * l * theta_acc * c / (mc + mp);
        let (x_dot, theta_dot) = (x_dot + 0.005 * x_acc, theta_dot + 0.005 * theta_acc);
        *state = [x + 0.005 * x_dot, x_dot, theta + 0.005 * theta_dot, theta_dot];
    }
}

#[test]
fn cartpole_3d_follows_the_closed_form_cart_pole() {
    // The same masses and lengths as Gymnasium's CartPole: from each state the rigid-body
    // cart-pole (rapier multibody: a prismatic and a revolute link) reaches, one control step
    // under ±10 N lands where the closed-form equations of motion say. (Step by step: the
    // upright pole is unstable, so whole trajectories of two models part ways.)
    let mut set = envset("cartpole-3d", &options(1, 11), RunLog::discard());
    let mut obs = set.reset().expect("reset");
    let mut worst = [0.0f64; 4];
    for _ in 0..200 {
        let mut state = [obs[0] as f64, obs[1] as f64, obs[2] as f64, obs[3] as f64];
        // A stabilising bang-bang controller keeps the pole up for the whole test.
        let force = if state[2] + 0.3 * state[3] > 0.0 { 10.0 } else { -10.0 };
        closed_form_step(&mut state, force);
        let s = set.step(&[(force / 10.0) as f32]).expect("step");
        assert!(s.ended.is_empty(), "the controller keeps the pole up: {:?}", s.final_observations);
        for i in 0..4 {
            worst[i] = worst[i].max((s.observations[i] as f64 - state[i]).abs());
        }
        obs = s.observations;
    }
    eprintln!("largest one-step differences over 200 steps (x, ẋ, θ, θ̇): {worst:?}");
    assert!(worst[0] < 1e-3 && worst[2] < 2e-3, "positions and angles agree: {worst:?}");
    assert!(worst[1] < 0.01 && worst[3] < 0.02, "velocities agree: {worst:?}");
}

/// Trains `config` for `steps` env steps on the CPU into `store`; the summary.
fn train(config: &str, store: &std::path::Path, steps: u64) -> serde_json::Value {
    let (store, steps) = (format!("store={}", store.display()), format!("total_steps={steps}"));
    let out = common::paddock(&["train", config, "--json", "--set", &store, "--set", &steps, "--set", "algorithm.device=cpu"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("summary")
}

#[test]
fn ppo_learns_to_balance_cartpole_3d() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = train("configs/cartpole-3d-ppo.toml", dir.path(), 100_000);
    assert!(s["solved_at_step"].as_u64().is_some_and(|n| n <= 100_000), "eval ≥ 475 within 100k steps: {s}");
}

#[test]
fn eval_writes_png_frames_of_a_physics_episode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = train("configs/cartpole-3d-ppo.toml", dir.path(), 2048);
    let run = s["run_dir"].as_str().expect("run dir").to_string();
    // The live picture the monitor draws: the cart, the pole and the fixed rail, in a view
    // that holds them.
    let scene: paddock::format::scene::SceneFile =
        serde_json::from_slice(&std::fs::read(std::path::Path::new(&run).join("scene.json")).expect("scene.json")).expect("a scene");
    assert!(scene.polygons.iter().any(|p| p.body.is_none()) && scene.polygons.iter().filter(|p| p.body.is_some()).count() >= 2);
    let [x0, x1, z0, z1] = scene.view;
    assert!(scene.polygons.iter().flat_map(|p| &p.points).all(|&[x, z]| (x0..=x1).contains(&x) && (z0..=z1).contains(&z)));
    let frames = dir.path().join("frames");
    let out = common::paddock(&["eval", &run, "--episodes", "1", "--json", "--frames", frames.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).expect("eval");
    let length = e["returns"][0].as_f64().expect("return") as usize; // 1 per step
    let mut names: Vec<_> = std::fs::read_dir(&frames).expect("frames").filter_map(Result::ok).map(|e| e.file_name()).collect();
    names.sort();
    // After the reset and after every step but the last (whose state the auto-reset replaced).
    assert_eq!(names.len(), length, "one picture per step of the episode");
    let first = std::fs::read(frames.join("frame-00000.png")).expect("first frame");
    assert_eq!(&first[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(u32::from_be_bytes(first[16..20].try_into().expect("width")), 640);
    let last = std::fs::read(frames.join(&names[names.len() - 1])).expect("last frame");
    assert_ne!(first, last, "the scene moves");

    // An env without physics has no scene: a clear error, not empty pictures.
    let s = train("configs/cartpole-ppo.toml", dir.path(), 512);
    assert!(!std::path::Path::new(s["run_dir"].as_str().expect("dir")).join("scene.json").exists());
    let out =
        common::paddock(&["eval", s["run_dir"].as_str().expect("dir"), "--episodes", "1", "--frames", frames.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("has no physics scene to draw"), "{err}");
}

/// `arm-reach` with `robots/arm7.urdf` granted as `arm`, as `configs/arm-reach-ppo.toml` does.
fn arm_options(num_envs: usize, seed: u64) -> EnvSetOptions {
    let urdf = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../robots/arm7.urdf");
    EnvSetOptions { robots: grant(&[("arm", urdf)]), ..options(num_envs, seed) }
}

/// Robot files granted by name, imported with the defaults.
pub(crate) fn grant(files: &[(&str, std::path::PathBuf)]) -> paddock::runtime::Robots {
    let files = files.iter().map(|(n, p)| (n.to_string(), p.clone())).collect();
    std::sync::Arc::new(paddock::runtime::RobotGrants { files, ..Default::default() })
}

#[test]
fn arm_reach_is_bit_identical_for_the_same_seed_and_actions_and_restores_exactly() {
    let (mut a, mut b) =
        (envset("arm-reach", &arm_options(4, 7), RunLog::discard()), envset("arm-reach", &arm_options(4, 7), RunLog::discard()));
    let (a0, b0) = (a.reset().expect("reset"), b.reset().expect("reset"));
    assert_eq!(a0.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), b0.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    let (sa, sb) = (random_steps(&mut a, 1000, 3), random_steps(&mut b, 1000, 3));
    assert_eq!(bits(&sa), bits(&sb), "same seed and actions, different trajectories");
    assert!(sa == sb, "rewards, flags and infos agree too");
    let episodes: usize = sa.iter().map(|s| s.ended.len()).sum();
    assert!(episodes >= 40, "100-step episodes end: {episodes}");
    assert!(sa.iter().all(|s| s.observations.iter().all(|x| x.is_finite())));

    // Snapshot mid-episode, step on, restore, step again: the same bits.
    let obs = sa.last().expect("steps").observations.clone();
    let states = a.snapshot().expect("snapshot");
    let first = random_steps(&mut a, 150, 9);
    a.restore(&states, &obs).expect("restore");
    let second = random_steps(&mut a, 150, 9);
    assert_eq!(bits(&first), bits(&second), "restored run diverged");
    assert!(first == second);
}

/// Steps random arms and checks the gripper rule on every transition: closed exactly when
/// the previous step ended within `within` of the target. Returns (closed, open) counts.
fn check_gripper(set: &mut EnvSet, within: f64) -> (usize, usize) {
    // Infos: distance, gripper-closed, is-success. The gripper acts on the distance when the
    // command is given, i.e. the previous step's; success is within 5 cm.
    assert_eq!(set.spec().info_features, ["distance", "gripper-closed", "is-success"]);
    let n = set.num_envs();
    set.reset().expect("reset");
    let mut previous: Vec<Option<f64>> = vec![None; n];
    let (mut closed, mut open) = (0, 0);
    for s in random_steps(set, 400, 5) {
        for (i, info) in s.infos.chunks_exact(3).enumerate() {
            let ended = s.ended.contains(&(i as u32));
            if let Some(d) = previous[i] {
                assert_eq!(info[1] == 1.0, d <= within, "env {i}: gripper {} after a distance of {d}", info[1]);
                if info[1] == 1.0 {
                    closed += 1
                } else {
                    open += 1
                }
                if !ended {
                    // The observation's last value is the gripper flag too.
                    assert_eq!(f64::from(s.observations[i * 24 + 23]), info[1]);
                }
            }
            assert_eq!(info[2] == 1.0, info[0] <= 0.05, "success is within 5 cm: {info:?}");
            if info[2] == 1.0 {
                assert!(s.terminated[i], "reaching the target ends the episode");
            }
            previous[i] = if ended { None } else { Some(info[0]) };
        }
    }
    (closed, open)
}

#[test]
fn the_arm_reach_gripper_closes_within_15_cm_of_the_target() {
    // Random arms seldom come within 15 cm of a target: with the default every transition
    // checked is open, and each farther than 15 cm; with the distance widened (the same rule)
    // the gripper both closes and opens.
    let mut set = envset("arm-reach", &arm_options(8, 2), RunLog::discard());
    let (closed, open) = check_gripper(&mut set, 0.15);
    assert!(open > 1000, "{closed} closed, {open} open");
    let wide = EnvSetOptions { params: vec![("gripper-distance".into(), Value::Real(0.6))], ..arm_options(8, 2) };
    let mut set = envset("arm-reach", &wide, RunLog::discard());
    let (closed, open) = check_gripper(&mut set, 0.6);
    assert!(closed > 100 && open > 100, "random arms come within 60 cm now and then: {closed} closed, {open} open");
}

#[test]
fn arm_reach_bad_actions_truncate_and_missing_robots_are_named() {
    let lines = common::Captured::default();
    let mut set = envset("arm-reach", &arm_options(2, 5), RunLog::new(Box::new(lines.clone()), Level::Info));
    set.reset().expect("reset");
    for (bad, says) in [(1e9f32, "not a joint velocity command"), (f32::NAN, "not a joint velocity command")] {
        let mut action = vec![0.0; 14];
        action[3] = bad;
        let s = set.step(&action).expect("an absurd action is not a crash");
        assert_eq!((s.truncated[0], s.terminated[0]), (true, false), "action {bad}: env 0 is truncated, not terminated");
        assert!(!s.truncated[1] && !s.terminated[1], "env 1 is untouched");
        assert!(s.observations.iter().chain(&s.final_observations).all(|x| x.is_finite()), "no NaN reaches the learner");
        let log = lines.text();
        assert!(log.contains("env 0: episode truncated") && log.contains(says), "action {bad}: the reason is logged:\n{log}");
        let ok = random_steps(&mut set, 20, 2);
        assert!(ok.iter().all(|s| s.observations.iter().all(|x| x.is_finite())));
    }

    // The robot is not granted, or granted but missing: errors that say which.
    let rt = common::runtime_with(Limits { memory_bytes: 64 << 20, call_timeout: Duration::from_secs(5) }, RunLog::discard());
    let plugin = rt.load(common::plugin("arm-reach"), World::Environment).expect("load");
    let err = EnvSet::new(&plugin, &options(1, 1)).expect_err("no robot granted").to_string();
    assert!(err.contains("robot `arm` is not granted") && err.contains("[env] robots"), "{err}");
    let missing = EnvSetOptions { robots: grant(&[("arm", std::path::PathBuf::from("/nonexistent/arm.urdf"))]), ..options(1, 1) };
    let err = EnvSet::new(&plugin, &missing).expect_err("missing file").to_string();
    assert!(err.contains("/nonexistent/arm.urdf"), "{err}");
}

#[test]
fn ppo_learns_to_reach_with_the_arm() {
    // The bar (≥ 80% success within 500k steps) is measured in BENCHMARKS.md; here 150k
    // steps must already beat a random policy's ~0% by far (seeds 1–3 reached 67%, 44%, …).
    let dir = tempfile::tempdir().expect("tempdir");
    let s = train("configs/arm-reach-ppo.toml", dir.path(), 150_000);
    let last = s["evals"].as_array().and_then(|e| e.last()).expect("an evaluation at the end");
    let rate = last["success_rate"].as_f64().expect("arm-reach reports is-success");
    assert!(rate >= 0.25, "success after 150k steps: {s}");
}

/// An arm-reach run killed with SIGKILL and resumed writes the same `metrics.jsonl` as an
/// uninterrupted one, through checkpoints before and after an evaluation (the eval envs'
/// snapshots are taken once per evaluation and reused). Its checkpoints keep the env
/// snapshots in binary `envs.bin`, and `state.json` stays small.
#[test]
fn arm_reach_killed_and_resumed_matches_an_uninterrupted_run() {
    let sets = [
        "total_steps=8192",
        "train.checkpoint_every=2048",
        "train.eval_every=4096",
        "train.eval_episodes=4",
        "train.keep_checkpoints=5",
        "train.hot_reload=false",
    ];
    common::kill_and_resume_matches("configs/arm-reach-ppo.toml", &sets, 8192, |run_dir| {
        let checkpoint = paddock::format::run_dir::latest_checkpoint(run_dir).expect("a checkpoint");
        let envs = std::fs::metadata(checkpoint.join("envs.bin")).expect("envs.bin").len();
        let state = std::fs::metadata(checkpoint.join("state.json")).expect("state.json").len();
        assert!(envs > 20 * 16 * 1000, "16 + 4 env snapshots of the arm: {envs} bytes");
        assert!(state < 4096, "state.json holds counters only: {state} bytes");
    });
}

#[test]
fn hopper_is_bit_identical_restores_exactly_and_survives_bad_actions() {
    let (mut a, mut b) = (envset("hopper", &options(4, 7), RunLog::discard()), envset("hopper", &options(4, 7), RunLog::discard()));
    a.reset().expect("reset");
    b.reset().expect("reset");
    let (sa, sb) = (random_steps(&mut a, 1000, 3), random_steps(&mut b, 1000, 3));
    assert_eq!(bits(&sa), bits(&sb), "same seed and actions, different trajectories");
    assert!(sa == sb);
    let episodes: usize = sa.iter().map(|s| s.ended.len()).sum();
    assert!(episodes > 100, "random hoppers fall: {episodes} episodes");
    let obs = sa.last().expect("steps").observations.clone();
    let states = a.snapshot().expect("snapshot");
    let first = random_steps(&mut a, 200, 9);
    a.restore(&states, &obs).expect("restore");
    assert_eq!(bits(&first), bits(&random_steps(&mut a, 200, 9)), "restored run diverged");

    let lines = common::Captured::default();
    let mut set = envset("hopper", &options(2, 5), RunLog::new(Box::new(lines.clone()), Level::Info));
    set.reset().expect("reset");
    for bad in [1e9f32, f32::NAN, f32::NEG_INFINITY] {
        let s = set.step(&[0.0, bad, 0.0, 0.1, 0.1, 0.1]).expect("an absurd action is not a crash");
        assert_eq!((s.truncated[0], s.terminated[0]), (true, false), "action {bad}: env 0 is truncated");
        assert!(!s.truncated[1], "env 1 is untouched");
        assert!(s.observations.iter().chain(&s.final_observations).all(|x| x.is_finite()), "no NaN reaches the learner");
        let log = lines.text();
        assert!(log.contains("env 0: episode truncated") && log.contains("not a torque command"), "{log}");
    }
}

#[test]
fn ppo_learns_to_move_the_hopper_forward() {
    // The bar (≥ 3× a random policy's distance within 1M steps) is measured in
    // BENCHMARKS.md; here 100k steps must already stay up and go forward where random
    // torques fall at once (`env run` reports the distance at the episodes' ends).
    let dir = tempfile::tempdir().expect("tempdir");
    let out = common::paddock(&["env", "run", "configs/hopper-ppo.toml", "--steps", "1000", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let random: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
    let random_distance = random["final_infos"]["distance"].as_f64().expect("distance");
    let random_return = random["mean_return"].as_f64().expect("return");
    assert!(random_distance.abs() < 0.2 && random_return < 10.0, "random torques: {random}");

    let s = train("configs/hopper-ppo.toml", dir.path(), 100_000);
    let last = s["evals"].as_array().and_then(|e| e.last()).expect("an evaluation at the end");
    let (ret, distance) = (last["mean"].as_f64().expect("mean"), last["final_infos"]["distance"].as_f64().expect("distance"));
    assert!(
        ret >= 50.0 && distance > 0.1,
        "after 100k steps: return {ret}, distance {distance} (random: {random_return}, {random_distance})"
    );
}
