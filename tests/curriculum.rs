//! Env parameters that change while a run goes on: `[[curriculum]]` stages and a hook's
//! `Directive::SetEnvParams`, driven through the run library as a worker drives it
//! (`Run::create`, `Run::train`, `Run::resume`, `CheckpointTarget`), and through the real
//! binary for the errors and `paddock eval`.
//!
//! CartPole's `sutton-barto-reward` makes the change visible: with it an episode pays 0 per
//! step and −1 when the pole falls, so a return ≤ 0 is the new parameters' and one ≥ 8 (no
//! episode is shorter) the old ones'.

use crate::common;

use paddock::run::{CheckpointTarget, Directive, Hooks, NoHooks, Run, evaluate_checkpoint};
use std::path::{Path, PathBuf};

/// A CartPole PPO config in `dir` (256 env steps per update) with `extra` appended.
fn config(dir: &Path, extra: &str) -> PathBuf {
    let text = format!(
        "seed = 1\ntotal_steps = 8192\nstore = \"{}\"\n[env]\nplugin = \"{}\"\nnum_envs = 8\n[algorithm]\nplugin = \"{}\"\ndevice = \"cpu\"\n[algorithm.params]\nn-steps = 32\n[train]\neval_every = 2048\ncheckpoint_every = 1024\n{extra}",
        dir.join("runs").display(),
        common::plugin("cartpole").display(),
        common::plugin("ppo").display(),
    );
    let path = dir.join("run.toml");
    std::fs::write(&path, text).expect("config");
    path
}

/// libtorch's random generator is one per process, and a run reseeds it at every update:
/// two runs training at once in one process would draw from each other's stream. The tests
/// that train in this process take turns (a worker trains one run per process).
static IN_PROCESS: std::sync::Mutex<()> = std::sync::Mutex::new(());

const STAGE: &str = "[[curriculum]]\nat_step = 3000\nparams = { sutton-barto-reward = true }\n";

/// Stops the run at its first update at or after `at`; from `change_at` on, asks once for
/// `sutton-barto-reward = true` (as the stage does).
struct Steer {
    stop_at: u64,
    change_at: u64,
    changed: bool,
}

impl Hooks for Steer {
    fn at_update(&mut self, step: u64) -> Directive {
        if step >= self.change_at && !self.changed {
            self.changed = true;
            return Directive::SetEnvParams("sutton-barto-reward = true".parse().expect("toml"));
        }
        if step >= self.stop_at { Directive::Stop } else { Directive::Continue }
    }
}

fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl")).expect("metrics").lines().map(|l| serde_json::from_str(l).expect("line")).collect()
}

fn eval_returns(lines: &[serde_json::Value]) -> Vec<(u64, f64)> {
    lines.iter().filter_map(|l| Some((l["step"].as_u64()?, l.get("eval/return_mean")?.as_f64()?))).collect()
}

#[test]
fn a_curriculum_stage_changes_the_env_and_every_resume_and_evaluation_keeps_it() {
    let _turn = IN_PROCESS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = config(dir.path(), STAGE);
    let whole = Run::create(&path, &[]).expect("create");
    let summary = whole.train(&mut NoHooks).expect("train");
    let lines = metrics(&summary.run_dir);
    let stage = lines.iter().find(|l| l.get("curriculum/stage").is_some()).expect("a stage line");
    assert_eq!((stage["step"].as_u64(), stage["env_params/sutton-barto-reward"].as_f64()), (Some(3072), Some(1.0)), "{stage}");
    let evals = eval_returns(&lines);
    assert_eq!(evals.iter().map(|e| e.0).collect::<Vec<_>>(), [2048, 4096, 6144, 8192]);
    assert!(evals[0].1 >= 8.0 && evals[1..].iter().all(|e| e.1 <= 0.0), "before and after the stage: {evals:?}");
    let log = std::fs::read_to_string(summary.run_dir.join("log.txt")).expect("log");
    assert!(log.contains("env parameters sutton-barto-reward = true from curriculum[0]") && log.contains("serve all 8 envs"), "{log}");
    let whole_bytes = std::fs::read(summary.run_dir.join("metrics.jsonl")).expect("metrics");

    // Stopped before the stage and after it, resumed: the same bytes as the uninterrupted run.
    for stop_at in [2048, 4096] {
        let run = Run::create(&path, &[]).expect("create");
        let stopped = run.train(&mut Steer { stop_at, change_at: u64::MAX, changed: false }).expect("train");
        // A stop waits for a safe point: an update with no env swap under way. The stage's
        // envs change over as their episodes end, so a stop asked for just after the stage
        // may come one or more updates later, as the policy's episode lengths have it.
        assert!(stopped.stopped && stopped.steps >= stop_at && stopped.steps < 8192, "stopped at {}", stopped.steps);
        let resumed = Run::resume(stopped.run_dir.to_str().expect("utf8"), &Default::default(), &[]).expect("resume");
        let done = resumed.train(&mut NoHooks).expect("resumed train");
        assert_eq!(done.steps, 8192);
        let bytes = std::fs::read(done.run_dir.join("metrics.jsonl")).expect("metrics");
        assert!(bytes == whole_bytes, "stopped at {stop_at} and resumed: metrics differ from the uninterrupted run's");
    }

    // `paddock eval`'s library call evaluates on the parameters the checkpoint had.
    let target = CheckpointTarget::open(summary.run_dir.to_str().expect("utf8")).expect("open");
    assert_eq!(target.env_params.as_ref().and_then(|t| t.get("sutton-barto-reward")?.as_bool()), Some(true));
    let runtime = common::runtime();
    let e = evaluate_checkpoint(&target.config, &runtime, &target.checkpoint, 4, 1, None).expect("eval");
    assert!(e.mean <= 0.0, "evaluated on the stage's parameters: {}", e.mean);
}

#[test]
fn a_hook_changes_the_env_parameters_as_a_stage_does() {
    let _turn = IN_PROCESS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("tempdir");
    let staged = Run::create(&config(dir.path(), STAGE), &[]).expect("create").train(&mut NoHooks).expect("train");
    let plain = config(dir.path(), "");
    let hooked = Run::create(&plain, &[]).expect("create");
    let s = hooked.train(&mut Steer { stop_at: u64::MAX, change_at: 3000, changed: false }).expect("train");
    // The same change at the same step: the same run, but for the stage's number.
    let strip = |lines: Vec<serde_json::Value>| {
        lines
            .into_iter()
            .map(|mut l| {
                l.as_object_mut().expect("object").remove("curriculum/stage");
                l
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(metrics(&s.run_dir)), strip(metrics(&staged.run_dir)));
    // The change is the run's: a resume of it keeps the new parameters.
    let target = CheckpointTarget::open(s.run_dir.to_str().expect("utf8")).expect("open");
    assert_eq!(target.env_params.as_ref().and_then(|t| t.get("sutton-barto-reward")?.as_bool()), Some(true));

    // A parameter the plugin does not know ends the run with the plugin's reason; its
    // checkpoints stay.
    let run = Run::create(&plain, &[]).expect("create");
    struct Typo;
    impl Hooks for Typo {
        fn at_update(&mut self, step: u64) -> Directive {
            if step >= 2048 { Directive::SetEnvParams("sutton-barto = true".parse().expect("toml")) } else { Directive::Continue }
        }
    }
    let err = format!("{:#}", run.train(&mut Typo).expect_err("refused"));
    assert!(
        err.contains("env parameters from a hook (sutton-barto = true) at step 2048") && err.contains("unknown parameter `sutton-barto`"),
        "{err}"
    );
    assert!(paddock::format::run_dir::latest_checkpoint(&run.dir).is_some(), "the checkpoints before the refusal stay");
}

#[test]
fn bad_stages_are_named_before_any_step_and_eval_takes_other_parameters() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The plugin refuses the stage's parameter: named at set-up, with the plugin's reason.
    let typo = config(dir.path(), "[[curriculum]]\nwhen_eval_return = 100\nparams = { sutton-barto = true }\n");
    let out = common::paddock(&["train", typo.to_str().expect("utf8")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("key `curriculum[0]`") && err.contains("unknown parameter `sutton-barto`"), "{err}");
    let run_dir = std::fs::read_dir(dir.path().join("runs")).expect("runs").next().expect("a run").expect("entry").path();
    let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap_or_default();
    assert!(metrics.is_empty(), "no step was taken: {metrics}");
    // A stage with two triggers is a config error naming it.
    let two = config(dir.path(), "[[curriculum]]\nat_step = 5\nwhen_eval_return = 1\nparams = { sutton-barto-reward = true }\n");
    let out = common::paddock(&["train", two.to_str().expect("utf8")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("`curriculum[0]`: a stage has exactly one of"), "{out:?}");

    // `paddock eval --param` evaluates a checkpoint on other parameters, and says which.
    let s = common::train_json(config(dir.path(), "").to_str().expect("utf8"), &dir.path().join("runs"), &["total_steps=1024"]);
    let run = s["run_dir"].as_str().expect("dir");
    let out = common::paddock(&["eval", run, "--episodes", "3", "--param", "sutton-barto-reward=true"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("env params sutton-barto-reward = true"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mean: f64 = text.lines().find_map(|l| l.strip_prefix("return")?.split_whitespace().next()?.parse().ok()).expect("return line");
    assert!(mean <= 0.0, "{text}");
    let out = common::paddock(&["eval", run, "--param", "sutton-barto"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--param `sutton-barto`: expected NAME=VALUE"), "{out:?}");
    let out = common::paddock(&["eval", run, "--param", "sutton-bart=true"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown parameter `sutton-bart`"), "{out:?}");
}

/// A goal env's relabelling oracle follows the change: hindsight replay keeps sampling
/// after a stage (same spaces, parameters set again) and the run finishes.
#[test]
fn a_stage_on_a_goal_env_keeps_hindsight_replay_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(common::root().join("configs/bitflip-dqn-her.toml")).expect("config");
    // Copied out of the checkout: its first-party plugins are found on the search path.
    let path = dir.path().join("bitflip.toml");
    std::fs::write(&path, format!("{text}\n[[curriculum]]\nat_step = 1500\nparams = {{ bits = 15 }}\n")).expect("write");
    let s = common::train_json(
        path.to_str().expect("utf8"),
        dir.path(),
        &["total_steps=3200", "algorithm.device=cpu", "train.eval_every=1000", "train.eval_episodes=4"],
    );
    assert_eq!(s["steps"], 3200, "{s}");
    let log = std::fs::read_to_string(Path::new(s["run_dir"].as_str().expect("dir")).join("log.txt")).expect("log");
    assert!(log.contains("env parameters bits = 15 from curriculum[0]"), "{log}");
}
