//! The real `paddock` binary on real plugins and configs.

use crate::common;

use sha2::{Digest, Sha256};
use std::path::Path;

use common::paddock;

fn ok(args: &[&str]) -> String {
    let out = paddock(args);
    assert!(out.status.success(), "paddock {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8")
}

fn fails(args: &[&str]) -> String {
    let out = paddock(args);
    assert_eq!(out.status.code(), Some(1), "paddock {args:?} should fail with exit code 1");
    String::from_utf8(out.stderr).expect("utf8")
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf8 path")
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["plugin", "--help"],
        &["plugin", "inspect", "--help"],
        &["plugin", "new", "--help"],
        &["plugin", "build", "--help"],
        &["env", "--help"],
        &["env", "run", "--help"],
    ] {
        let text = ok(args);
        assert!(text.contains("Usage: paddock"), "{args:?}: {text}");
    }
    assert!(ok(&["env", "run", "--help"]).contains("--record"));
}

/// `plugin new --help` lists, per language, the worlds a starter exists for: exactly those
/// `plugin new` makes.
#[test]
fn plugin_new_help_lists_the_worlds_each_language_makes() {
    let help = ok(&["plugin", "new", "--help"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut langs = 0;
    for lang in ["rust", "python", "js", "c"] {
        let line = help.lines().find(|l| l.trim_start().starts_with(&format!("- {lang}:"))).unwrap_or_else(|| panic!("{lang} in:\n{help}"));
        let listed = line.rsplit(':').next().unwrap_or("");
        langs += 1;
        for world in ["env", "reward", "algorithm"] {
            let target = dir.path().join(format!("{lang}-{world}"));
            let out = paddock(&["plugin", "new", &format!("x-{world}"), "--lang", lang, "--world", world, "--dir", p(&target)]);
            let said = listed.split(|c: char| !c.is_ascii_alphabetic()).any(|w| w == world);
            assert_eq!(
                out.status.success(),
                said,
                "{lang} {world}: help says {line:?}; plugin new: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    assert_eq!(langs, 4);
}

#[test]
fn inspect_shows_world_version_spec_and_hash() {
    let file = common::plugin("cartpole");
    let json: serde_json::Value = serde_json::from_str(&ok(&["plugin", "inspect", p(&file), "--json"])).expect("json");
    let sha = hex::encode(Sha256::digest(std::fs::read(&file).expect("read")));
    assert_eq!(json["sha256"], sha.as_str());
    assert_eq!(json["world"], "environment");
    assert_eq!(json["package"], "paddock:rl@0.1.2");
    assert_eq!(json["spec"]["id"], "CartPole-v1");
    assert_eq!(json["spec"]["max_episode_steps"], 500);
    let text = ok(&["plugin", "inspect", p(&common::plugin("cartpole-shaped"))]);
    assert!(text.contains("world     reward (paddock:rl@0.1.2)"), "{text}");
    let err = fails(&["plugin", "inspect", p(&common::plugin("wrong-version"))]);
    assert!(err.contains("paddock:rl@9.0.0"), "{err}");
    // An algorithm says what it lets change while it runs (algo-tune).
    let text = ok(&["plugin", "inspect", p(&common::plugin("ppo"))]);
    assert!(text.contains("tunable (exports algo-tune: world tunable-algorithm)"), "{text}");
    assert!(text.contains("tunable   learning-rate, ent-coef, clip-range, vf-coef, max-grad-norm"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&ok(&["plugin", "inspect", p(&common::plugin("sac")), "--json"])).expect("json");
    assert_eq!(json["mutable_params"], serde_json::json!(["learning-rate", "tau", "target-entropy"]), "{json}");
    assert_eq!(json["tunable"], true, "{json}");
}

#[test]
fn a_plugin_built_against_contract_0_1_0_still_loads_and_runs() {
    // 0.1.1 made `physics` stable (additive): a component whose exports and imports say
    // @0.1.0 (`plugins/fixtures/contract-0.1.0`, built from a frozen copy of those files)
    // must still load, link its `log` import and pay its reward.
    let old = common::plugin("contract-0.1.0");
    let info: serde_json::Value = serde_json::from_str(&ok(&["plugin", "inspect", p(&old), "--json"])).expect("json");
    assert_eq!((info["world"].as_str(), info["package"].as_str()), (Some("reward"), Some("paddock:rl@0.1.0")), "{info}");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("old.toml");
    let cartpole = common::plugin("cartpole");
    std::fs::write(&config, format!("seed = 1\n[env]\nplugin = {cartpole:?}\nnum_envs = 2\n[reward]\nplugin = {old:?}\n")).expect("config");
    let out = ok(&["env", "run", p(&config), "--steps", "300", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.lines().last().expect("json")).expect("json");
    assert_eq!(v["reward_plugin"], "contract-0.1.0");
    let (ret, len) = (v["mean_return"].as_f64().expect("return"), v["mean_length"].as_f64().expect("length"));
    assert!((ret - len).abs() < 1e-9, "it pays 1 per step: {v}");
}

#[test]
fn same_seed_gives_identical_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = |name: &str, seed: &str, workers: &str| {
        let path = dir.path().join(name);
        let cfg = common::root().join("configs/cartpole-rollout.toml");
        ok(&[
            "env",
            "run",
            p(&cfg),
            "--steps",
            "300",
            "--seed",
            seed,
            "--num-envs",
            "6",
            "--workers",
            workers,
            "--record",
            p(&path),
            "--json",
        ]);
        std::fs::read(path).expect("record")
    };
    let a = rec("a.jsonl", "3", "1");
    let b = rec("b.jsonl", "3", "1");
    assert!(!a.is_empty());
    assert!(a == b, "same seed, different records");
    assert!(a == rec("c.jsonl", "3", "3"), "the number of workers changed the trajectories");
    assert!(a != rec("d.jsonl", "4", "1"), "another seed gave the same record");
    let text = String::from_utf8(a).expect("utf8");
    assert_eq!(text.lines().count(), 300 * 6);
    let first: serde_json::Value = serde_json::from_str(text.lines().next().expect("line")).expect("json");
    for key in ["t", "env", "action", "obs", "reward", "terminated", "truncated"] {
        assert!(first.get(key).is_some(), "record line lacks {key}: {first}");
    }
}

#[test]
fn given_actions_are_used_and_summarised() {
    let dir = tempfile::tempdir().expect("tempdir");
    let actions = dir.path().join("actions.jsonl");
    let lines: Vec<String> = (0..50).map(|t| format!("[{}, {}]", t % 2, (t / 3) % 2)).collect();
    std::fs::write(&actions, lines.join("\n")).expect("write");
    let rec = dir.path().join("rec.jsonl");
    let out =
        ok(&["env", "run", p(&common::plugin("cartpole")), "--num-envs", "2", "--actions", p(&actions), "--record", p(&rec), "--json"]);
    let summary: serde_json::Value = serde_json::from_str(out.trim()).expect("json summary");
    assert_eq!(summary["steps"], 50);
    assert_eq!(summary["env_steps"], 100);
    for key in ["episodes", "mean_return", "env_steps_per_s", "wall_s", "sha256"] {
        assert!(summary.get(key).is_some(), "summary lacks {key}");
    }
    let recorded: Vec<serde_json::Value> =
        std::fs::read_to_string(rec).expect("read").lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    // Line t holds [t % 2, (t / 3) % 2]; record lines are (t, env) in order.
    for (t, env) in [(1, 0), (1, 1), (3, 0), (3, 1), (49, 1)] {
        let expected = if env == 0 { t % 2 } else { (t / 3) % 2 };
        assert_eq!(recorded[t * 2 + env]["action"], serde_json::json!([expected as f64]), "t {t} env {env}");
        assert_eq!(recorded[t * 2 + env]["t"], t);
    }

    let short = dir.path().join("short.jsonl");
    std::fs::write(&short, "[1, 0]\n[1]\n").expect("write");
    let err = fails(&["env", "run", p(&common::plugin("cartpole")), "--num-envs", "2", "--actions", p(&short)]);
    assert!(err.contains("short.jsonl line 2") && err.contains("1 action values, expected 2"), "{err}");
}

#[test]
fn a_reward_plugin_from_the_config_is_used() {
    let out = ok(&["env", "run", "configs/cartpole-shaped-rollout.toml", "--steps", "200", "--json"]);
    let s: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(s["reward_plugin"], "cartpole-shaped");
    let mean = s["mean_return"].as_f64().expect("episodes finished");
    let length = s["mean_length"].as_f64().expect("length");
    assert!(mean < length, "shaped returns ({mean}) should be below episode lengths ({length})");
}

#[test]
fn config_errors_name_the_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "seed = 1\n[env]\nplugin = \"x.wasm\"\nnum_env = 4\n").expect("write");
    let err = fails(&["env", "run", p(&cfg)]);
    assert!(err.contains("bad.toml") && err.contains("num_env"), "{err}");
    std::fs::write(&cfg, "seed = \"one\"\n[env]\nplugin = \"x.wasm\"\n").expect("write");
    let err = fails(&["env", "run", p(&cfg)]);
    assert!(err.contains("bad.toml") && err.contains("seed"), "{err}");
    std::fs::write(&cfg, "[env]\nplugin = \"missing.wasm\"\n").expect("write");
    let err = fails(&["env", "run", p(&cfg)]);
    assert!(err.contains("missing.wasm"), "{err}");
    let plugin = common::plugin("cartpole");
    std::fs::write(&cfg, format!("[env]\nplugin = {:?}\n[env.params]\ngravity = 3\n", p(&plugin))).expect("write");
    let err = fails(&["env", "run", p(&cfg)]);
    assert!(err.contains("plugin `cartpole` failed in `spec`") && err.contains("unknown parameter `gravity`"), "{err}");
}

#[test]
fn training_configs_are_checked_before_anything_starts_and_errors_say_where() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("store={}", p(dir.path()));
    let cfg = "configs/cartpole-ppo.toml";
    // The line of an unknown key.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "seed = 1\ntotal_steps = 100\n[env]\nplugin = \"x.wasm\"\nnum_env = 3\n").expect("write");
    let err = fails(&["train", p(&bad)]);
    assert!(err.contains("bad.toml") && err.contains("line 5") && err.contains("num_env"), "{err}");
    // A bad --set is blamed, not the file; no Rust type names.
    let err = fails(&["train", cfg, "--set", "total_steps=abc", "--set", &store]);
    assert!(err.contains("invalid --set `total_steps=abc`") && err.contains("a whole number") && !err.contains("u64"), "{err}");
    let err = fails(&["train", cfg, "--set", "total_steps=0", "--set", &store]);
    assert!(err.contains("--set `total_steps=0`") && err.contains("at least 1"), "{err}");
    let err = fails(&["train", cfg, "--set", "env.num_envs=10000000", "--set", &store]);
    assert!(err.contains("env.num_envs") && err.contains("at most 65536"), "{err}");
    let err = fails(&["train", cfg, "--set", "name=../escape", "--set", &store]);
    assert!(err.contains("key `name`"), "{err}");
    // The algorithm checks its parameters' ranges before the first step.
    let err = fails(&["train", cfg, "--set", "algorithm.params.gamma=1.5", "--set", &store]);
    assert!(err.contains("`gamma` must be from 0 to 1, got 1.5") && err.contains("ppo"), "{err}");
    // None of them made a run.
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("store").filter_map(Result::ok).filter(|e| e.path().is_dir()).count(),
        1,
        "only gamma's run dir (it fails at init)"
    );
    // `1e3` is a whole number; a name and tags are kept.
    let out = ok(&["train", cfg, "--json", "--set", "total_steps=1e3", "--set", &store, "--name", "plain-ppo", "--tag", "baseline"]);
    let s: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(s["steps"], 1000);
    assert!(s["run_dir"].as_str().expect("dir").ends_with("plain-ppo"), "{s}");
    let ls = ok(&["runs", "ls", p(dir.path()), "--json"]);
    assert!(ls.contains("\"tags\":[\"baseline\"]"), "{ls}");
}

#[test]
fn an_env_without_snapshots_is_told_that_checkpoints_need_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "total_steps = 512\n[env]\nplugin = {:?}\n[env.params]\nmisbehave = \"none\"\nat = \"step\"\n[algorithm]\nplugin = {:?}\n",
            p(&common::plugin("hostile")),
            p(&common::plugin("ppo"))
        ),
    )
    .expect("write");
    let store = format!("store={}", p(dir.path()));
    let err = fails(&["train", p(&cfg), "--set", &store, "--set", "algorithm.device=cpu"]);
    assert!(err.contains("checkpoints need the env's snapshots") && err.contains("train.checkpoint_every = 0"), "{err}");
}

#[test]
fn a_hostile_plugin_fails_the_command_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("hostile.toml");
    std::fs::write(
        &cfg,
        format!(
            "[env]\nplugin = {:?}\n[env.params]\nmisbehave = \"loop\"\n[runtime]\ncall_timeout_ms = 200\n",
            p(&common::plugin("hostile"))
        ),
    )
    .expect("write");
    let err = fails(&["env", "run", p(&cfg)]);
    assert!(err.contains("plugin `hostile` failed in `step-all`: did not return within 200ms"), "{err}");
}

/// `plugin new` starters for each world build into components of that world (with the
/// versions in Paddock's Cargo.lock), and bad requests are clear errors.
#[test]
fn plugin_new_starters_build_and_pass_inspect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = common::root().join("target/starter-test");
    for (world, expected) in [("env", "environment"), ("reward", "reward"), ("algorithm", "algorithm")] {
        let name = format!("starter-{world}");
        let project = dir.path().join(&name);
        let out = ok(&["plugin", "new", &name, "--world", world, "--dir", p(&project)]);
        assert!(out.contains("cargo build --release --target wasm32-wasip2"), "{out}");
        assert!(project.join("Cargo.lock").exists(), "the starter pins Paddock's tested versions");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let build = std::process::Command::new(cargo)
            .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
            .current_dir(&project)
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .expect("cargo");
        assert!(build.status.success(), "{world} starter does not build:\n{}", String::from_utf8_lossy(&build.stderr));
        let wasm = assert_world(&target.join(format!("wasm32-wasip2/release/{}.wasm", name.replace('-', "_"))), expected);
        // Each trains with checkpoints and resumes exactly.
        let cartpole = common::plugin("cartpole");
        match world {
            "env" => trains_and_resumes(dir.path(), &wasm, None, None, 16384),
            "reward" => trains_and_resumes(dir.path(), &cartpole, Some(&wasm), None, 16384),
            _ => trains_and_resumes(dir.path(), &cartpole, None, Some(&wasm), 16384),
        }
    }
    let err = fails(&["plugin", "new", "Bad_Name", "--world", "env", "--dir", p(&dir.path().join("x"))]);
    assert!(err.contains("plugin name `Bad_Name`"), "{err}");
    let err = fails(&["plugin", "new", "again", "--world", "env", "--dir", p(&dir.path().join("starter-env"))]);
    assert!(err.contains("exists already"), "{err}");
    let err = fails(&["plugin", "new", "c", "--world", "algorithm", "--lang", "c", "--dir", p(&dir.path().join("c"))]);
    assert!(err.contains("`--world env` and `--world reward`"), "{err}");
    let err = fails(&["plugin", "new", "js-algo", "--world", "algorithm", "--lang", "js", "--dir", p(&dir.path().join("js-algo"))]);
    assert!(err.contains("`--world env` and `--world reward`"), "{err}");
}

#[test]
fn python_reward_starter_builds_and_passes_inspect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("my-reward");
    let out = ok(&["plugin", "new", "my-reward", "--world", "reward", "--lang", "python", "--dir", p(&project)]);
    assert!(out.contains("paddock plugin build"), "{out}");
    assert!(project.join("wit/worlds.wit").exists() && project.join("app.py").exists());
    let wasm = build_python_starter(&project, "my-reward", "reward");
    assert_reward_starter_pays_scaled(dir.path(), &wasm, "my-reward", "2.0");
    trains_and_resumes(dir.path(), &common::plugin("cartpole"), Some(&wasm), None, 8192);
    // The self-contained build (componentize-py over the project) pays the same.
    let bundle = dir.path().join("bundle/my-reward.wasm");
    let out = ok(&["plugin", "build", p(&project), "--bundle", "-o", p(&bundle)]);
    assert!(out.contains("built ") && bundle.is_file(), "{out}");
    let info: serde_json::Value = serde_json::from_str(&ok(&["plugin", "inspect", p(&bundle), "--json"])).expect("json");
    assert!(info.get("app_files").is_none() && info["world"] == "reward", "a bundle carries no app section: {info}");
    assert_reward_starter_pays_scaled(&dir.path().join("bundle"), &bundle, "my-reward", "2.0");
}

/// Builds a Python starter as its README says (`paddock plugin build` in the project: the
/// Python runtime and the project's files) into `NAME.wasm` and checks its world and files.
fn build_python_starter(project: &Path, name: &str, world: &str) -> std::path::PathBuf {
    let out = common::paddock_in(project, &["plugin", "build"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the Python {world} starter does not build:\n{}", String::from_utf8_lossy(&out.stderr));
    let wasm = project.join(format!("{name}.wasm"));
    assert!(text.contains(&format!("built {}", wasm.display())), "{text}");
    let info: serde_json::Value = serde_json::from_str(&ok(&["plugin", "inspect", p(&wasm), "--json"])).expect("json");
    assert!(info["app_files"].as_array().is_some_and(|f| f.iter().any(|f| f == "app.py")), "{info}");
    assert_world(&wasm, world)
}

/// `plugin inspect` names `world` for `wasm`; returns it.
fn assert_world(wasm: &Path, world: &str) -> std::path::PathBuf {
    let info: serde_json::Value = serde_json::from_str(&ok(&["plugin", "inspect", p(wasm), "--json"])).expect("json");
    assert_eq!(info["world"], world, "{info}");
    wasm.to_path_buf()
}

/// The Python env starter (with the guest SDK copied beside it) builds, runs, and trains
/// with checkpoints: killed with SIGKILL, its run resumes to the uninterrupted run's metrics.
#[test]
fn python_env_starter_builds_trains_and_resumes_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("line-env");
    let out = ok(&["plugin", "new", "line-env", "--world", "env", "--lang", "python", "--dir", p(&project)]);
    assert!(out.contains("paddock plugin build"), "{out}");
    assert!(project.join("paddock_sdk.py").exists(), "the SDK travels with the starter");
    let wasm = build_python_starter(&project, "line-env", "environment");
    let out = ok(&["env", "run", p(&wasm), "--steps", "500", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.lines().last().expect("json")).expect("json");
    assert!(v["episodes"].as_u64().is_some_and(|n| n > 0), "{v}");
    trains_and_resumes(dir.path(), &wasm, None, None, 4096);
}

/// The Python algorithm starter (the repository's Python PPO under the plugin's name)
/// builds and trains CartPole with checkpoints that resume exactly.
#[test]
fn python_algorithm_starter_builds_trains_and_resumes_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("my-ppo");
    let out = ok(&["plugin", "new", "my-ppo", "--world", "algorithm", "--lang", "python", "--dir", p(&project)]);
    assert!(out.contains("paddock plugin build"), "{out}");
    let wasm = build_python_starter(&project, "my-ppo", "algorithm");
    trains_and_resumes(dir.path(), &common::plugin("cartpole"), None, Some(&wasm), 4096);
}

/// The JavaScript env starter (with the guest SDK beside it) builds and trains with
/// checkpoints that resume exactly.
#[test]
fn javascript_env_starter_builds_trains_and_resumes_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("js-line");
    ok(&["plugin", "new", "js-line", "--world", "env", "--lang", "js", "--dir", p(&project)]);
    assert!(project.join("paddock_sdk.js").exists(), "the SDK travels with the starter");
    let wasm = build_js_starter(&project, "js-line");
    trains_and_resumes(dir.path(), &assert_world(&wasm, "environment"), None, None, 4096);
}

/// Builds a JavaScript starter as its README says (`npm install`, for which the repository's
/// componentize-js stands in, then `paddock plugin build`: the JavaScript runtime and the
/// project's files), and checks it carries its files.
fn build_js_starter(project: &Path, name: &str) -> std::path::PathBuf {
    let modules = common::root().join("scripts/js/node_modules");
    assert!(modules.exists(), "{} is missing: run scripts/setup.sh", modules.display());
    std::os::unix::fs::symlink(&modules, project.join("node_modules")).expect("link node_modules");
    let out = common::paddock_in(project, &["plugin", "build"]);
    assert!(out.status.success(), "the JavaScript starter does not build:\n{}", String::from_utf8_lossy(&out.stderr));
    let wasm = project.join(format!("{name}.wasm"));
    let info: serde_json::Value = serde_json::from_str(&ok(&["plugin", "inspect", p(&wasm), "--json"])).expect("json");
    assert!(info["app_files"].as_array().is_some_and(|f| f.iter().any(|f| f == "app.js")), "{info}");
    wasm
}

/// A built reward starter is a `reward` component and, in a CartPole rollout, pays
/// `scale` (a TOML number: real or integer) × the env's reward (1 per step).
fn assert_reward_starter_pays_scaled(dir: &std::path::Path, wasm: &std::path::Path, name: &str, scale: &str) {
    assert_world(wasm, "reward");
    let config = dir.join("rollout.toml");
    let cartpole = common::plugin("cartpole");
    std::fs::write(
        &config,
        format!("seed = 1\n[env]\nplugin = {cartpole:?}\nnum_envs = 2\n[reward]\nplugin = {wasm:?}\n[reward.params]\nscale = {scale}\n"),
    )
    .expect("config");
    let out = ok(&["env", "run", p(&config), "--steps", "300", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.lines().last().expect("json")).expect("json");
    let (ret, len) = (v["mean_return"].as_f64().expect("return"), v["mean_length"].as_f64().expect("length"));
    assert_eq!(v["reward_plugin"], name);
    let factor: f64 = scale.parse().expect("a number");
    assert!((ret - factor * len).abs() < 1e-9, "the starter pays {scale} × CartPole's 1 per step: {v}");
}

#[test]
fn javascript_reward_starter_builds_and_passes_inspect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("js-reward");
    let out = ok(&["plugin", "new", "js-reward", "--world", "reward", "--lang", "js", "--dir", p(&project)]);
    assert!(out.contains("paddock plugin build"), "{out}");
    let wasm = build_js_starter(&project, "js-reward");
    assert_reward_starter_pays_scaled(dir.path(), &wasm, "js-reward", "3");
    trains_and_resumes(dir.path(), &common::plugin("cartpole"), Some(&wasm), None, 8192);
    // The self-contained build (the starter's build.mjs, componentize-js) pays the same.
    let bundle = dir.path().join("bundle/js-reward.wasm");
    let out = ok(&["plugin", "build", p(&project), "--bundle", "-o", p(&bundle)]);
    assert!(out.contains("built ") && bundle.is_file(), "{out}");
    let info: serde_json::Value = serde_json::from_str(&ok(&["plugin", "inspect", p(&bundle), "--json"])).expect("json");
    assert!(info.get("app_files").is_none() && info["world"] == "reward", "a bundle carries no app section: {info}");
    assert_reward_starter_pays_scaled(&dir.path().join("bundle"), &bundle, "js-reward", "3");
}

/// A run of `env` (with `reward`, and `algorithm`, default PPO) with checkpoints: killed with
/// SIGKILL after its first checkpoint, it resumes to the uninterrupted run's metrics.
fn trains_and_resumes(dir: &Path, env: &Path, reward: Option<&Path>, algorithm: Option<&Path>, total: u64) {
    let ppo = common::plugin("ppo");
    let algo = algorithm.unwrap_or(&ppo);
    let params = if algorithm.is_none() { "[algorithm.params]\nn-steps = 64\n" } else { "" };
    let reward = reward.map_or_else(String::new, |r| format!("[reward]\nplugin = {r:?}\n"));
    let config = dir.join(format!("trains-{}.toml", env.file_stem().and_then(|s| s.to_str()).unwrap_or("env")));
    std::fs::write(
        &config,
        format!(
            "seed = 1\ntotal_steps = {total}\n[env]\nplugin = {env:?}\nnum_envs = 4\n{reward}[algorithm]\nplugin = {algo:?}\n{params}\
             [train]\neval_every = {}\neval_episodes = 2\ncheckpoint_every = 1024\nstop_at_return = 1e9\n",
            total / 4
        ),
    )
    .expect("config");
    common::kill_and_resume_matches(p(&config), &[], total, |_| {});
}

/// Builds a C starter with the command `plugin new` printed (`out`), run from another
/// directory with none of the build script's variables set: the starter carries its adapter
/// and names the tools where `plugin new` found them.
fn build_c_starter(out: &str) {
    let command = out.lines().find_map(|l| l.strip_prefix("build:")).unwrap_or_else(|| panic!("no build command in:\n{out}")).trim();
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let build = std::process::Command::new("bash")
        .args(["-c", command])
        .current_dir(elsewhere.path())
        .env_remove("WIT_BINDGEN")
        .env_remove("WASM_TOOLS")
        .env_remove("ADAPTER")
        .output()
        .expect("bash");
    assert!(build.status.success(), "the C starter does not build with `{command}`:\n{}", String::from_utf8_lossy(&build.stderr));
}

#[test]
fn c_reward_starter_builds_and_shapes_cartpole_rewards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("my-c-reward");
    let out = ok(&["plugin", "new", "my-c-reward", "--world", "reward", "--lang", "c", "--dir", p(&project)]);
    assert!(project.join("paddock.h").exists(), "the SDK header travels with the starter");
    build_c_starter(&out);
    let wasm = assert_world(&project.join("my-c-reward.wasm"), "reward");
    let config = dir.path().join("rollout.toml");
    std::fs::write(
        &config,
        format!("seed = 1\n[env]\nplugin = {:?}\nnum_envs = 2\n[reward]\nplugin = {wasm:?}\n", common::plugin("cartpole")),
    )
    .expect("config");
    let out = ok(&["env", "run", p(&config), "--steps", "300", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.lines().last().expect("json")).expect("json");
    assert_eq!(v["reward_plugin"], "my-c-reward", "{v}");
    let (ret, len) = (v["mean_return"].as_f64().expect("return"), v["mean_length"].as_f64().expect("length"));
    assert!(ret < len, "the starter shapes CartPole's 1 per step (and pays -1 at a failure): {v}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, format!("{}[reward.params]\nscale = 2\n", std::fs::read_to_string(&config).expect("config"))).expect("bad");
    let err = fails(&["env", "run", p(&bad), "--steps", "10"]);
    assert!(err.contains("unknown parameter `scale`") && err.contains("my-c-reward"), "{err}");
    trains_and_resumes(dir.path(), &common::plugin("cartpole"), Some(&wasm), None, 16384);
}

#[test]
fn c_env_starter_builds_and_passes_inspect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("my-c-env");
    let out = ok(&["plugin", "new", "my-c-env", "--world", "env", "--lang", "c", "--dir", p(&project)]);
    assert!(out.contains("./build.sh"), "{out}");
    build_c_starter(&out);
    let bad =
        std::process::Command::new("bash").arg(project.join("build.sh")).env("WIT_BINDGEN", "/nowhere/wit-bindgen").output().expect("bash");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("wit-bindgen (/nowhere/wit-bindgen) is not found; install it with"), "{err}");
    let wasm = assert_world(&project.join("my-c-env.wasm"), "environment");
    let out = ok(&["env", "run", p(&wasm), "--steps", "500", "--num-envs", "4", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.lines().last().expect("json")).expect("json");
    assert_eq!(v["env"], "my-c-env", "{v}");
    assert!(v["episodes"].as_u64() > Some(10), "{v}");
    trains_and_resumes(dir.path(), &wasm, None, None, 16384);
}

/// `runs ls` of a store that is not there is an error naming it (it listed nothing and
/// exited 0); the default store before the first run is simply empty.
#[test]
fn runs_ls_of_a_missing_store_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nowhere");
    let out = paddock(&["runs", "ls", missing.to_str().expect("utf8")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nowhere") && err.contains("does not exist"), "{err}");
}

#[test]
fn with_a_reward_plugin_the_envs_own_return_is_logged_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reward = format!("reward.plugin={}", p(&common::plugin("cartpole-shaped")));
    let store = format!("store={}", p(dir.path()));
    let out = ok(&["train", "configs/cartpole-ppo.toml", "--json", "--set", &reward, "--set", &store, "--set", "total_steps=2048"]);
    let s: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    let metrics = std::fs::read_to_string(Path::new(s["run_dir"].as_str().expect("dir")).join("metrics.jsonl")).expect("metrics");
    let line = metrics.lines().find(|l| l.contains("rollout/return_mean")).expect("an update with episodes");
    let v: serde_json::Value = serde_json::from_str(line).expect("json");
    let (shaped, own) = (v["rollout/return_mean"].as_f64().expect("shaped"), v["rollout/env_return_mean"].as_f64().expect("the env's own"));
    assert!(own >= 1.0 && (shaped - own).abs() > 1e-9, "both returns, different: {line}");
}

#[test]
fn a_local_run_is_not_pulled_into_the_current_directory_and_a_closed_pipe_is_quiet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = fails(&["runs", "pull", p(dir.path())]);
    assert!(err.contains("is a run on this machine already; give --out DIR"), "{err}");
    // `paddock plugin inspect … | head -0`: the reader is gone before the output is written.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["plugin", "inspect", p(&common::plugin("cartpole"))])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
}

/// What a user reads when a command goes wrong, and the top-level help, checked whole by
/// snapshot (`tests/snapshots/e2e__cli__*.snap`): each error names the file, key or plugin,
/// and an OS error is printed once. Paths are shown relative to the marks `[DIR]` (the
/// current directory) and `[TARGET]`/`[ROOT]` (the build's folders).
#[test]
fn error_and_help_texts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::copy(common::root().join("configs/cartpole-ppo.toml"), d.join("good.toml")).expect("copy");
    std::fs::write(d.join("typo.toml"), "total_step = 5\n").expect("write");
    std::fs::write(d.join("afile"), "not a folder").expect("write");
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_paddock")).expect("exe");
    let target = exe.parent().and_then(Path::parent).expect("target dir").to_path_buf();
    let root = target.parent().expect("root").to_path_buf();
    let clean = |text: String| {
        text.replace(p(&std::fs::canonicalize(d).expect("dir")), "[DIR]")
            .replace(p(d), "[DIR]")
            .replace(p(&target), "[TARGET]")
            .replace(p(&root), "[ROOT]")
    };
    let cases: &[(&str, &[&str])] = &[
        ("missing_config", &["train", "nope.toml"]),
        ("unknown_key_in_file", &["train", "typo.toml"]),
        ("unknown_key_in_set", &["train", "good.toml", "--set", "totl_steps=5"]),
        ("plugin_found_nowhere", &["train", "good.toml", "--set", "env.plugin=nothere.wasm"]),
        ("store_under_a_file", &["train", "good.toml", "--set", "store=afile/runs", "--set", "total_steps=100"]),
        ("missing_experiment", &["exp", "status", "nope.toml"]),
    ];
    for (name, args) in cases {
        let out = common::paddock_in(d, args);
        assert_eq!(out.status.code(), Some(1), "{name}: paddock {args:?}");
        let err = clean(String::from_utf8_lossy(&out.stderr).into_owned());
        assert!(!err.contains("panicked"), "{name}: {err}");
        insta::assert_snapshot!(format!("error_{name}"), err);
    }
    assert!(!d.join("runs").exists() && !d.join("afile/runs").exists(), "no run is made for a command that fails");
    let help = common::paddock_in(d, &["--help"]);
    insta::assert_snapshot!("help", String::from_utf8_lossy(&help.stdout));
}

/// Paddock's JavaScript runtime takes a project of several modules as componentize-js would:
/// a multi-line import, a helper module in a folder, `export { … as … }`, and an export
/// keyword inside a comment (never declared: skipped). A module with a syntax error is named
/// with its file and line, and one with `export default` is refused by name.
#[test]
fn the_javascript_runtime_takes_modules_comments_and_multi_line_imports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("multi");
    std::fs::create_dir_all(project.join("lib")).expect("dir");
    std::os::unix::fs::symlink(common::root().join("scripts/js/node_modules"), project.join("node_modules")).expect("link");
    std::fs::write(project.join("lib/scale.js"), "const factor = (x) => x * 1;\nexport { factor as scaled };\n").expect("write");
    let app = "// world: reward\nimport {\n  write\n} from \"paddock:rl/log@0.1.1\";\nimport { scaled } from \"./lib/scale.js\";\n\
               /* an old version:\nexport function old() {}\n*/\nlet scale = 1;\nexport const rewardFn = {\n  init(spec, params) {\n    \
               for (const [k, v] of params) if (k === \"scale\") scale = Number(v.val);\n  },\n  compute(b) {\n    \
               return Array.from(b.envRewards, (r) => scaled(r) * scale);\n  },\n};\n";
    std::fs::write(project.join("app.js"), app).expect("write");
    let wasm = dir.path().join("multi.wasm");
    ok(&["plugin", "build", p(&project), "-o", p(&wasm)]);
    assert_reward_starter_pays_scaled(dir.path(), &wasm, "multi", "2.5");
    // A syntax error on line 3 of the helper: named with its file and line.
    std::fs::write(project.join("lib/scale.js"), "const factor = (x) => x * 1;\n\nconst = 3;\nexport { factor as scaled };\n")
        .expect("write");
    ok(&["plugin", "build", p(&project), "-o", p(&wasm)]);
    let config = dir.path().join("rollout.toml");
    let err = fails(&["env", "run", p(&config), "--steps", "10"]);
    assert!(err.contains("lib/scale.js line 3: SyntaxError"), "{err}");
    std::fs::write(project.join("lib/scale.js"), "export default 1;\n").expect("write");
    ok(&["plugin", "build", p(&project), "-o", p(&wasm)]);
    let err = fails(&["env", "run", p(&config), "--steps", "10"]);
    assert!(err.contains("`export default …` is not supported"), "{err}");
}

/// Paddock's Python runtime imports a project's packages from the plugin, and says where an
/// import failed: a user's own exception at import is named with its file and line, and a
/// package the runtime does not carry points to `--bundle`.
#[test]
fn the_python_runtime_names_where_a_plugins_import_failed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = dir.path().join("pyimports");
    std::fs::create_dir_all(project.join("pkg")).expect("dir");
    std::fs::write(project.join("pkg/__init__.py"), "").expect("write");
    std::fs::write(project.join("pkg/helper.py"), "import statistics\nFACTOR = statistics.mean([2.0, 2.0])\n").expect("write");
    let app = "# world: reward\nfrom wit_world import exports\nfrom pkg.helper import FACTOR\n\n_scale = [1.0]\n\n\
               class RewardFn(exports.RewardFn):\n    def init(self, spec, params):\n        for k, v in params:\n            \
               if k == \"scale\":\n                _scale[0] = float(v.value)\n\n    def compute(self, b):\n        \
               return [r * _scale[0] * FACTOR / 2.0 for r in b.env_rewards]\n";
    std::fs::write(project.join("app.py"), app).expect("write");
    let wasm = dir.path().join("pyimports.wasm");
    ok(&["plugin", "build", p(&project), "-o", p(&wasm)]);
    assert_reward_starter_pays_scaled(dir.path(), &wasm, "pyimports", "1.5");
    let config = dir.path().join("rollout.toml");
    std::fs::write(project.join("pkg/helper.py"), "import statistics\nraise ValueError(\"no factor\")\n").expect("write");
    ok(&["plugin", "build", p(&project), "-o", p(&wasm)]);
    let err = fails(&["env", "run", p(&config), "--steps", "10"]);
    assert!(err.contains("ValueError: no factor (at pkg/helper.py line 2)"), "{err}");
    std::fs::write(project.join("pkg/helper.py"), "import numpy\n").expect("write");
    ok(&["plugin", "build", p(&project), "-o", p(&wasm)]);
    let err = fails(&["env", "run", p(&config), "--steps", "10"]);
    assert!(err.contains("No module named 'numpy'") && err.contains("--bundle"), "{err}");
}
