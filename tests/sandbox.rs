//! Hostile plugins (plugins/fixtures/, built from source by scripts/build-plugins.sh): each
//! failure is an error naming the plugin and the call, and the host keeps working — a
//! good plugin runs afterwards in the same process and runtime.

use crate::common;

use paddock::log::RunLog;
use paddock::runtime::bindings::types::Value;
use paddock::runtime::{CallError, CallErrorKind, EnvInstance, Limits, LoadError, Runtime, World};
use std::time::Duration;

fn hostile(runtime: &Runtime, misbehave: &str, at: &str) -> Result<EnvInstance, CallError> {
    let plugin = runtime.load(common::plugin("hostile"), World::Environment).expect("load hostile");
    let mut env = EnvInstance::new(&plugin, 7)?;
    let params = vec![("misbehave".to_string(), Value::Text(misbehave.into())), ("at".to_string(), Value::Text(at.into()))];
    env.init(&params, &[1, 2, 3])?;
    Ok(env)
}

/// Runs the hostile env until it fails; returns the error.
fn hostile_error(runtime: &Runtime, misbehave: &str, at: &str) -> CallError {
    let run = || -> Result<(), CallError> {
        let mut env = hostile(runtime, misbehave, at)?;
        env.reset_all()?;
        env.step_all(&[1.0, 0.0, 1.0])?;
        Ok(())
    };
    run().expect_err("the hostile plugin should fail")
}

/// A good plugin still runs in the same runtime.
fn good_plugin_still_runs(runtime: &Runtime) {
    let plugin = runtime.load(common::plugin("cartpole"), World::Environment).expect("load cartpole");
    let mut env = EnvInstance::new(&plugin, 1).expect("instantiate cartpole");
    env.init(&Vec::new(), &[1, 2]).expect("init");
    env.reset_all().expect("reset");
    for _ in 0..100 {
        env.step_all(&[1.0, 0.0]).expect("cartpole steps after a hostile plugin failed");
    }
}

#[test]
fn a_call_that_never_returns_hits_the_deadline() {
    let rt = common::runtime();
    let err = hostile_error(&rt, "loop", "step");
    assert!(matches!(err.kind, CallErrorKind::Timeout(d) if d == Duration::from_millis(500)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("plugin `hostile`") && msg.contains("`step-all`") && msg.contains("call deadline"), "{msg}");
    good_plugin_still_runs(&rt);
}

#[test]
fn growing_past_the_memory_cap_traps() {
    let rt = common::runtime();
    let err = hostile_error(&rt, "oom", "step");
    assert!(matches!(err.kind, CallErrorKind::MemoryCap(b) if b == 64 << 20), "{err}");
    assert!(err.to_string().contains("memory past the cap of 64 MiB"), "{err}");
    good_plugin_still_runs(&rt);
}

#[test]
fn one_allocation_past_the_cap_names_the_cap() {
    let rt = common::runtime();
    let err = hostile_error(&rt, "big-alloc", "step");
    let msg = err.to_string();
    assert!(msg.contains("cap of 64 MiB") || msg.contains("memory cap is 64 MiB"), "{msg}");
    good_plugin_still_runs(&rt);
}

#[test]
fn a_trap_names_the_plugins_last_stderr_line() {
    let rt = common::runtime();
    let err = hostile_error(&rt, "abort", "step");
    let msg = err.to_string();
    assert!(msg.contains("its last stderr line: hostile: out of ideas, aborting"), "{msg}");
    good_plugin_still_runs(&rt);
}

#[test]
fn a_sleep_in_a_plugin_is_over_at_once_as_its_frozen_clock_says() {
    // Before, a 60 s sleep blocked the host thread where the deadline could not act, then
    // failed the call; a plugin's time does not pass, so its sleeps end at once.
    let rt = common::runtime();
    let mut env = hostile(&rt, "sleep", "step").expect("init");
    env.reset_all().expect("reset");
    env.step_all(&[1.0, 0.0, 1.0]).expect("the sleeping step returns");
}

#[test]
fn a_panic_is_reported_with_its_message() {
    let rt = common::runtime();
    let err = hostile_error(&rt, "panic", "reset");
    assert_eq!(err.call, "reset-all");
    match &err.kind {
        CallErrorKind::Panic(m) => assert!(m.contains("hostile plugin panics on purpose in reset"), "{m}"),
        other => panic!("expected a panic, got {other:?}"),
    }
    good_plugin_still_runs(&rt);
}

#[test]
fn a_panic_in_init_names_init() {
    let rt = common::runtime();
    let err = hostile(&rt, "panic", "init").expect_err("init panics");
    assert_eq!(err.call, "init");
    assert!(matches!(err.kind, CallErrorKind::Panic(_)), "{err}");
}

#[test]
fn a_nan_observation_or_reward_is_refused() {
    let rt = common::runtime();
    let err = hostile_error(&rt, "nan", "step");
    assert!(matches!(err.kind, CallErrorKind::InvalidOutput(ref m) if m.contains("NaN")), "{err}");
    assert!(err.to_string().contains("plugin `hostile` failed in `step-all`"), "{err}");
    let err = hostile_error(&rt, "nan", "reward");
    assert!(matches!(err.kind, CallErrorKind::InvalidOutput(ref m) if m.contains("reward NaN")), "{err}");
    good_plugin_still_runs(&rt);
}

#[test]
fn an_instance_is_dead_after_a_trap() {
    let rt = common::runtime();
    let mut env = hostile(&rt, "panic", "step").expect("init");
    env.reset_all().expect("reset");
    assert!(env.step_all(&[1.0, 1.0, 1.0]).expect_err("panics").is_trap());
    let again = env.reset_all().expect_err("dead");
    assert!(matches!(again.kind, CallErrorKind::Dead), "{again}");
    // A fresh instance of the same plugin works.
    let mut fresh = hostile(&rt, "none", "step").expect("fresh instance");
    fresh.reset_all().expect("reset");
    fresh.step_all(&[1.0, 0.0, 1.0]).expect("step");
}

#[test]
fn a_component_for_another_world_is_refused() {
    let rt = common::runtime();
    let err = rt.load(common::plugin("cartpole-shaped"), World::Environment).expect_err("reward loaded as env");
    let msg = err.to_string();
    assert!(matches!(err, LoadError::Mismatch { .. }), "{msg}");
    assert!(msg.contains("plugin `cartpole-shaped`"), "{msg}");
    assert!(msg.contains("expected world `environment` (exports paddock:rl/env@0.1.x up to 0.1.2)"), "{msg}");
    assert!(msg.contains("found world `reward` (exports paddock:rl/reward-fn@0.1.2)"), "{msg}");
    good_plugin_still_runs(&rt);
}

#[test]
fn an_incompatible_package_version_is_refused() {
    let rt = common::runtime();
    let err = rt.load(common::plugin("wrong-version"), World::Environment).expect_err("9.0.0");
    let msg = err.to_string();
    assert!(msg.contains("plugin `wrong-version`") && msg.contains("expected world `environment`"), "{msg}");
    assert!(msg.contains("found package version paddock:rl@9.0.0"), "{msg}");
    good_plugin_still_runs(&rt);
}

#[test]
fn truncated_and_non_wasm_files_are_refused() {
    let rt = common::runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(common::plugin("cartpole")).expect("read");
    let truncated = dir.path().join("truncated.wasm");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let err = rt.load(&truncated, World::Environment).expect_err("truncated");
    assert!(matches!(err, LoadError::Compile { .. }), "{err}");
    assert!(err.to_string().contains("plugin `truncated`") && err.to_string().contains("failed to compile"), "{err}");

    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "this is not wasm").expect("write");
    let err = rt.load(&text, World::Environment).expect_err("not wasm");
    assert!(matches!(err, LoadError::NotWasm { .. }) && err.to_string().contains("plugin `notes`"), "{err}");

    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").expect("write");
    let err = rt.load(&core, World::Environment).expect_err("core module");
    assert!(matches!(err, LoadError::CoreModule { .. }), "{err}");

    let err = rt.load(dir.path().join("missing.wasm"), World::Environment).expect_err("missing");
    assert!(err.to_string().contains("missing.wasm"), "{err}");
    good_plugin_still_runs(&rt);
}

use common::Captured;

#[test]
fn output_goes_to_the_run_log_and_the_sandbox_has_no_ambient_authority() {
    let log = Captured::default();
    let rt = common::runtime_with(Limits::default(), RunLog::new(Box::new(log.clone()), paddock::log::Level::Trace));
    let mut env = hostile(&rt, "print", "step").expect("init");
    env.reset_all().expect("reset");
    env.step_all(&[1.0, 0.0, 1.0]).expect("step");
    let mut probe = hostile(&rt, "probe", "reset").expect("init");
    probe.reset_all().expect("reset");
    let text = String::from_utf8(log.0.lock().expect("lock").clone()).expect("utf8");
    assert!(text.contains("INFO [plugin hostile] hello from step on stdout"), "{text}");
    assert!(text.contains("WARN [plugin hostile] hello from step on stderr"), "{text}");
    let probe_line = text.lines().find(|l| l.contains("probe fs:")).unwrap_or_else(|| panic!("no probe line in {text}"));
    assert!(probe_line.contains("fs: denied"), "{probe_line}");
    assert!(probe_line.contains("env vars: 0; args: 0"), "{probe_line}");
    assert!(probe_line.contains("wall clock: 0 s; monotonic elapsed: 0 ns"), "{probe_line}");
}

#[test]
fn compiled_components_are_cached_by_content_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = || paddock::runtime::RuntimeOptions {
        limits: Limits::default(),
        cache_dir: Some(dir.path().to_path_buf()),
        log: RunLog::discard(),
    };
    let first = Runtime::new(options()).expect("runtime").load(common::plugin("pendulum"), World::Environment).expect("load");
    assert!(!first.info().cache_hit);
    let cached: Vec<_> = std::fs::read_dir(dir.path())
        .expect("cache dir")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| n.to_string_lossy().ends_with(".cwasm"))
        .collect();
    assert_eq!(cached.len(), 1);
    assert!(dir.path().join("functions").is_dir(), "the per-function cache lies beside the components");
    assert!(cached[0].to_string_lossy().starts_with(&first.info().sha256), "{cached:?}");
    // A new process-wide runtime finds it.
    let second = Runtime::new(options()).expect("runtime").load(common::plugin("pendulum"), World::Environment).expect("load");
    assert!(second.info().cache_hit);
    let mut env = EnvInstance::new(&second, 0).expect("instantiate from cache");
    env.init(&Vec::new(), &[0]).expect("init");
    env.reset_all().expect("reset");
    env.step_all(&[0.5]).expect("step");
    // A corrupt cache entry is ignored and recompiled.
    std::fs::write(dir.path().join(&cached[0]), b"garbage").expect("corrupt");
    let third = Runtime::new(options()).expect("runtime").load(common::plugin("pendulum"), World::Environment).expect("load");
    assert!(!third.info().cache_hit);
}
