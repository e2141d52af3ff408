//! Bring your robot: every URDF of the published robots scripts/setup.sh fetches
//! (`robots/pybullet_data/`: kuka_iiwa, franka_panda, a1, laikago, husky, r2d2) loads through
//! the real binary, `paddock env robot`; the reaching env takes a published arm by
//! configuration; a run carries a robot's `package://` meshes; bad robots are named errors.

use crate::common;
use std::path::{Path, PathBuf};

fn data() -> PathBuf {
    let d = common::root().join("robots/pybullet_data");
    assert!(d.join("kuka_iiwa/model.urdf").is_file(), "scripts/setup.sh fetches the published robots into {}", d.display());
    d
}

/// Every URDF of the robot folders the issue names, arms first.
fn published() -> Vec<PathBuf> {
    let d = data();
    let mut files = Vec::new();
    for dir in ["kuka_iiwa", "franka_panda", "a1", "laikago", "husky"] {
        let mut here: Vec<PathBuf> = std::fs::read_dir(d.join(dir))
            .expect("robot folder")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "urdf"))
            .collect();
        here.sort();
        files.extend(here);
    }
    files.push(d.join("r2d2.urdf"));
    files
}

fn robot(file: &Path, extra: &[&str]) -> std::process::Output {
    let f = file.to_str().expect("utf-8 path");
    let mut args = vec!["env", "robot", f, "--json"];
    args.extend_from_slice(extra);
    common::paddock(&args)
}

#[test]
fn every_published_urdf_loads_and_simulates_with_the_time_each_takes() {
    let mut table = Vec::new();
    for file in published() {
        let name = file.strip_prefix(data()).expect("under data").display().to_string();
        let arm = name.starts_with("kuka_iiwa/") || name.starts_with("franka_panda/");
        // Arms stand on a fixed base; the rest are free (legged and wheeled robots).
        let out = robot(&file, if arm { &["--seconds", "0.5"] } else { &["--seconds", "0.5", "--free-base"] });
        let err = String::from_utf8_lossy(&out.stderr);
        if name == "kuka_iiwa/model_for_sdf.urdf" {
            // This file names meshes the wheel does not ship (meshes/coarse/): a clear error,
            // not a robot without collision shapes.
            assert!(!out.status.success() && err.contains("meshes/coarse/link_0.stl") && err.contains("not found"), "{name}: {err}");
            table.push(format!("{name:<44} missing mesh meshes/coarse/link_0.stl (named)"));
            continue;
        }
        assert!(out.status.success(), "{name} does not load: {err}");
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
        let (links, joints) = (r["links"].as_array().expect("links").len(), r["joints"].as_array().expect("joints").len());
        assert!(links >= 8 && joints + 1 == links, "{name}: {links} links, {joints} joints");
        assert!(r["mass_kg"].as_f64().expect("mass") > 5.0, "{name}: {r}");
        assert!(r["step_rate"].as_f64().is_some_and(|s| s > 0.0), "{name} simulated: {r}");
        table.push(format!(
            "{name:<44} {:>6.1} ms  {links:>2} links  {joints:>2} joints  {:>3} colliders  {:>6.2} kg",
            r["load_ms"].as_f64().expect("load_ms"),
            r["colliders"],
            r["mass_kg"].as_f64().expect("mass")
        ));
    }
    eprintln!("load times (paddock env robot):\n{}", table.join("\n"));
    assert_eq!(table.len(), 13, "every file is listed");

    // The Panda's package:// meshes and mimic finger are read, and its OBJ meshes are hulls.
    let panda = robot(&data().join("franka_panda/panda.urdf"), &["--seconds", "0"]);
    let r: serde_json::Value = serde_json::from_slice(&panda.stdout).expect("json");
    let mimic = r["joints"].as_array().expect("joints").iter().find(|j| j["name"] == "panda_finger_joint2").expect("finger 2");
    assert_eq!(mimic["mimic"], "panda_finger_joint1 × 1 + 0");
    // The iiwa's base has no mass: fixed it loads, free it is a named error.
    let out = robot(&data().join("kuka_iiwa/model.urdf"), &["--free-base"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("link `lbr_iiwa_link_0` (the root) has no mass"), "{err}");
}

#[test]
fn published_meshes_decompose_and_an_unknown_package_is_named() {
    // The A1's and Laikago's OBJ meshes as convex decompositions.
    for f in ["laikago/laikago_toes_zup.urdf", "franka_panda/panda.urdf"] {
        let out = robot(&data().join(f), &["--mesh-collision", "decompose", "--seconds", "0"]);
        assert!(out.status.success(), "{f}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // A copy of the Panda's URDF away from its meshes: its package `meshes` is unknown until
    // `--package` names the folder that holds it.
    let dir = tempfile::tempdir().expect("tempdir");
    let urdf = dir.path().join("panda.urdf");
    std::fs::copy(data().join("franka_panda/panda.urdf"), &urdf).expect("copy");
    let out = robot(&urdf, &["--seconds", "0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("unknown package `meshes`") && err.contains("link `panda_link0`"), "{err}");
    let pkg = data().join("franka_panda");
    let out = robot(&urdf, &["--seconds", "0", "--package", pkg.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // ROS_PACKAGE_PATH works the same.
    let out = common::paddock_with_env(
        &["env", "robot", urdf.to_str().expect("utf-8"), "--seconds", "0"],
        &[("ROS_PACKAGE_PATH", pkg.to_str().expect("utf-8"))],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_panda_trains_by_configuration_and_its_run_carries_its_package_meshes() {
    // A short run from a copy of the Panda config whose URDF sits away from its meshes,
    // found through `[env] packages`: the run carries the URDF and its meshes, and is
    // evaluated from the carried copy with the original folders gone.
    let dir = tempfile::tempdir().expect("tempdir");
    let robot_dir = dir.path().join("robot");
    std::fs::create_dir_all(&robot_dir).expect("mkdir");
    std::fs::copy(data().join("franka_panda/panda.urdf"), robot_dir.join("panda.urdf")).expect("copy");
    let pkg = dir.path().join("pkgs/meshes");
    copy_dir(&data().join("franka_panda/meshes"), &pkg);
    let config = std::fs::read_to_string(common::root().join("configs/panda-reach-ppo.toml")).expect("config");
    let config = config.replace(
        "robots = { arm = \"pybullet_data/franka_panda/panda.urdf\" }",
        "robots = { arm = \"robot/panda.urdf\" }\npackages = [\"pkgs\"]",
    );
    let cfg = dir.path().join("panda.toml");
    std::fs::write(&cfg, config).expect("write config");
    let store = dir.path().join("runs");
    let cfg_s = cfg.to_str().expect("utf-8");
    let sets = ["total_steps=4096", "train.eval_every=2048", "train.eval_episodes=4"];
    let s = common::train_json(cfg_s, &store, &sets);
    assert_eq!(s["steps"], 4096, "{s}");
    let run = PathBuf::from(s["run_dir"].as_str().expect("run_dir"));
    let carried = run.join("robots/arm");
    assert!(carried.join("panda.urdf").is_file() && carried.join("meshes/collision/link0.obj").is_file(), "carried package meshes");
    // The original robot and package folders are gone: evaluating the run loads the carried copy.
    std::fs::remove_dir_all(&robot_dir).expect("rm");
    std::fs::remove_dir_all(dir.path().join("pkgs")).expect("rm");
    let out = common::paddock(&["eval", run.to_str().expect("utf-8"), "--episodes", "3", "--json"]);
    assert!(out.status.success(), "eval from the carried robot: {}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["returns"].as_array().map(Vec::len), Some(3), "{r}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let p = e.expect("entry").path();
        let dst = to.join(p.file_name().expect("name"));
        if p.is_dir() { copy_dir(&p, &dst) } else { std::fs::copy(&p, &dst).map(|_| ()).expect("copy") }
    }
}

/// `legged-walk` with the A1 granted as `robot`, as `configs/a1-walk-ppo.toml` sets it up.
fn a1_options(num_envs: usize, seed: u64) -> paddock::envset::EnvSetOptions {
    use paddock::runtime::bindings::types::Value;
    let text = |k: &str, v: &str| (k.to_string(), Value::Text(v.into()));
    let ready = [0.0, 0.9, -1.8].repeat(4);
    paddock::envset::EnvSetOptions {
        robots: crate::physics::grant(&[("robot", data().join("a1/a1.urdf"))]),
        params: vec![
            text("base", "trunk"),
            text("feet", "FR_toe,FL_toe,RR_toe,RL_toe"),
            ("ready".into(), Value::Reals(ready)),
            ("base-height".into(), Value::Real(0.32)),
        ],
        ..crate::physics::options(num_envs, seed)
    }
}

#[test]
fn the_a1_walking_env_stands_still_goes_nowhere_at_random_and_replays_and_restores_exactly() {
    use crate::physics::{bits, envset, random_steps};
    use paddock::log::RunLog;
    let (mut a, mut b) =
        (envset("legged-walk", &a1_options(4, 7), RunLog::discard()), envset("legged-walk", &a1_options(4, 7), RunLog::discard()));
    assert_eq!(a.spec().info_features, ["x-velocity", "distance", "average-velocity", "feet-contact"]);
    assert_eq!((a.obs_len(), a.act_len()), (10 + 24 + 4, 12));
    a.reset().expect("reset");
    b.reset().expect("reset");
    // Random joint targets: the same bits for the same seed and actions, and no forward progress.
    let (sa, sb) = (random_steps(&mut a, 300, 3), random_steps(&mut b, 300, 3));
    assert_eq!(bits(&sa), bits(&sb), "same seed and actions, different trajectories");
    let moved: Vec<f64> = sa.last().expect("steps").infos.chunks_exact(4).map(|i| i[1]).collect();
    assert!(moved.iter().all(|d| *d < 0.6), "random actions make no forward progress (< 0.1 m/s): {moved:?}");
    // Snapshot mid-episode, step on, restore, step again: the same bits.
    let obs = sa.last().expect("steps").observations.clone();
    let states = a.snapshot().expect("snapshot");
    let first = random_steps(&mut a, 60, 9);
    a.restore(&states, &obs).expect("restore");
    assert_eq!(bits(&first), bits(&random_steps(&mut a, 60, 9)), "restored run diverged");
    // Holding the standing pose (zero actions) for 6 s: it stands, all four feet down, and
    // goes nowhere.
    let mut c = envset("legged-walk", &a1_options(2, 1), RunLog::discard());
    c.reset().expect("reset");
    let zeros = vec![0.0; 2 * 12];
    let mut last = None;
    for _ in 0..300 {
        let s = c.step(&zeros).expect("step");
        assert!(s.terminated.iter().all(|t| !t), "standing still does not fall");
        last = Some(s);
    }
    let s = last.expect("steps");
    for (i, info) in s.infos.chunks_exact(4).enumerate() {
        assert_eq!(info[3], 1.0, "env {i}: every foot on the floor: {info:?}");
        assert!(info[1].abs() < 0.05, "env {i}: it stays put: {info:?}");
        assert!(s.observations[i * 38] > 0.2, "env {i}: the base stays up: {}", s.observations[i * 38]);
    }
}

#[test]
fn the_walking_env_names_a_missing_foot_and_the_robot_it_loaded() {
    use paddock::runtime::bindings::types::Value;
    let rt = common::runtime_with(
        paddock::runtime::Limits { memory_bytes: 64 << 20, call_timeout: std::time::Duration::from_secs(5) },
        paddock::log::RunLog::discard(),
    );
    let plugin = rt.load(common::plugin("legged-walk"), paddock::runtime::World::Environment).expect("load");
    let mut opts = a1_options(1, 1);
    opts.params[1] = ("feet".into(), Value::Text("FR_toe,FL_paw".into()));
    let err = paddock::envset::EnvSet::new(&plugin, &opts).expect_err("no such foot").to_string();
    assert!(err.contains("has no link `FL_paw`") && err.contains("`feet`") && err.contains("FL_toe"), "{err}");
    let mut opts = a1_options(1, 1);
    opts.params[2] = ("ready".into(), Value::Reals(vec![0.0; 3]));
    let err = paddock::envset::EnvSet::new(&plugin, &opts).expect_err("short pose").to_string();
    assert!(err.contains("`ready` has 3 positions for 12 joints"), "{err}");
}

/// The point `tip` (in link `link`'s frame) with the robot's joints at `q`, as the host's
/// simulation places it.
fn tip_at(file: &Path, link: &str, tip: [f32; 3], q: &[(&str, f32)]) -> [f32; 3] {
    use paddock::physics::{Simulation, mesh::ImportOptions, vec3};
    let mut sim = Simulation::new(vec3(0.0, 0.0, 0.0), 0.01, 1).expect("world");
    let r = sim.load_urdf(file, rapier3d::prelude::Pose::IDENTITY, true, &ImportOptions::default()).expect("loads");
    for (name, v) in q {
        let h = r.joints.iter().find(|j| j.0 == *name).expect("joint").1;
        sim.set_joint_state(h, *v, 0.0).expect("set");
    }
    let body = r.links.iter().find(|l| l.0 == link).expect("link").1;
    let p = sim.pose(body).expect("pose") * vec3(tip[0], tip[1], tip[2]);
    [p.x, p.y, p.z]
}

#[test]
fn published_arms_are_where_their_urdf_kinematics_put_them() {
    // Forward kinematics of the URDF files (origins with rpy, axes) computed apart, with
    // numpy, from the file alone: the Panda's usual "ready" pose puts its hand flange at
    // (0.307, 0, 0.590); a bent Kuka puts its flange point at (0.663, 0.141, 0.581).
    let near = |a: [f32; 3], b: [f32; 3]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 2e-3);
    let names =
        |prefix: &str, q: &[f32]| -> Vec<(String, f32)> { q.iter().enumerate().map(|(i, v)| (format!("{prefix}{}", i + 1), *v)).collect() };
    let panda_q = names("panda_joint", &[0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]);
    let panda_q: Vec<(&str, f32)> = panda_q.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let hand = tip_at(&data().join("franka_panda/panda.urdf"), "panda_hand", [0.0; 3], &panda_q);
    assert!(near(hand, [0.30702, 0.0, 0.59027]), "Panda hand at {hand:?}");
    let kuka_q = names("lbr_iiwa_joint_", &[0.3, 0.5, -0.2, -1.2, 0.4, 0.8, 0.1]);
    let kuka_q: Vec<(&str, f32)> = kuka_q.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let flange = tip_at(&data().join("kuka_iiwa/model.urdf"), "lbr_iiwa_link_7", [0.0, 0.0, 0.05], &kuka_q);
    assert!(near(flange, [0.66317, 0.14094, 0.58064]), "Kuka flange at {flange:?}");
}

#[test]
fn bad_robot_settings_in_a_config_are_named_before_a_run_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("store={}", dir.path().display());
    for (set, says) in [
        ("env.packages=[\"/nonexistent/pkgs\"]", "key `env.packages`: /nonexistent/pkgs is not a folder"),
        ("env.mesh_collision=\"decompse\"", "unknown variant `decompse`, expected `hull` or `decompose`"),
        ("env.robots.arm=\"../robots/nope.urdf\"", "key `env.robots.arm`"),
    ] {
        let out = common::paddock(&["train", "configs/kuka-reach-ppo.toml", "--set", &store, "--set", set]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{set}: {err}");
    }
    // A hand the robot lacks: the env's error lists the links it has.
    let out = common::paddock(&["train", "configs/kuka-reach-ppo.toml", "--set", &store, "--set", "env.params.hand=\"gripper_tip\""]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has no link `gripper_tip` (`hand`, the end effector") && err.contains("lbr_iiwa_link_7"), "{err}");
}

/// `arm-reach` with end-effector control on `urdf`, the other parameters as given.
fn ee_options(urdf: PathBuf, params: &[(&str, &str)], num_envs: usize) -> paddock::envset::EnvSetOptions {
    use paddock::runtime::bindings::types::Value;
    let mut p: Vec<(String, Value)> = vec![("control".into(), Value::Text("end-effector-delta".into()))];
    p.extend(params.iter().map(|(k, v)| (k.to_string(), Value::Text(v.to_string()))));
    paddock::envset::EnvSetOptions { robots: crate::physics::grant(&[("arm", urdf)]), params: p, ..crate::physics::options(num_envs, 5) }
}

#[test]
fn end_effector_control_moves_published_arms_where_they_are_told() {
    // A controller that only says "towards the target" (the observation's target − tip,
    // scaled to an action): the env's Jacobian, measured from the world, must turn it into
    // joint motion that gets there. Targets are drawn all over each arm's workspace.
    let panda = "panda_joint1,panda_joint2,panda_joint3,panda_joint4,panda_joint5,panda_joint6,panda_joint7";
    let arms: Vec<(&str, paddock::envset::EnvSetOptions)> = vec![
        ("arm7", ee_options(common::root().join("robots/arm7.urdf"), &[], 16)),
        ("kuka", ee_options(data().join("kuka_iiwa/model.urdf"), &[("hand", "lbr_iiwa_link_7")], 16)),
        (
            "panda",
            ee_options(
                data().join("franka_panda/panda.urdf"),
                &[("hand", "panda_hand"), ("arm-joints", panda), ("finger-joints", "panda_finger_joint1")],
                16,
            ),
        ),
    ];
    for (name, mut opts) in arms {
        use paddock::runtime::bindings::types::Value;
        if name == "panda" {
            opts.params.push(("ready".into(), Value::Reals(vec![0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])));
            opts.params.push(("tip-offset".into(), Value::Reals(vec![0.0, 0.0, 0.1034])));
            opts.params.push(("workspace-center".into(), Value::Reals(vec![0.0, 0.0, 0.333])));
            opts.params.push(("workspace-radius".into(), Value::Reals(vec![0.3, 0.7])));
        }
        if name == "kuka" {
            opts.params.push(("ready".into(), Value::Reals(vec![0.0, 0.5, 0.0, -1.2, 0.0, 0.8, 0.0])));
            opts.params.push(("tip-offset".into(), Value::Reals(vec![0.0, 0.0, 0.05])));
            opts.params.push(("workspace-center".into(), Value::Reals(vec![0.0, 0.0, 0.36])));
            opts.params.push(("workspace-radius".into(), Value::Reals(vec![0.35, 0.75])));
        }
        let mut set = crate::physics::envset("arm-reach", &opts, paddock::log::RunLog::discard());
        assert_eq!(set.act_len(), 3, "{name}: three actions, x, y and z");
        let n = (set.obs_len() - 10) / 2;
        let mut obs = set.reset().expect("reset");
        let mut done = vec![None; set.num_envs()];
        for step in 0..100 {
            let actions: Vec<f32> =
                obs.chunks_exact(set.obs_len()).flat_map(|o| (0..3).map(move |k| (o[2 * n + 6 + k] / 0.05).clamp(-1.0, 1.0))).collect();
            let s = set.step(&actions).expect("step");
            for (i, t) in s.terminated.iter().enumerate() {
                if *t && done[i].is_none() {
                    done[i] = Some(step);
                }
            }
            obs = s.observations;
        }
        let reached = done.iter().filter(|d| d.is_some()).count();
        assert!(reached >= 15, "{name}: told the way, {reached} of 16 arms reached their target: {done:?}");
    }
}
