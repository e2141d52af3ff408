//! The worker images without a Docker engine: both Dockerfiles pass hadolint, and the
//! entrypoint script, run outside a container, works an experiment to its end (and refuses
//! to start without one).

use crate::common;

use std::process::Command;

#[test]
fn both_dockerfiles_pass_hadolint() {
    let out = Command::new(common::root().join(".venv/bin/hadolint"))
        .current_dir(common::root())
        .args(["--no-color", "--config", "docker/hadolint.yaml", "docker/Dockerfile.cpu", "docker/Dockerfile.cuda"])
        .output()
        .expect("hadolint (scripts/setup.sh installs it)");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_entrypoint_runs_a_worker_on_the_experiment_it_is_given() {
    let entry = common::root().join("docker/entrypoint.sh");
    let out = Command::new("bash").arg(&entry).env_remove("PADDOCK_EXPERIMENT").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PADDOCK_EXPERIMENT is not set"));

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("x.toml");
    std::fs::write(
        &file,
        format!(
            "base = {:?}\nseeds = 2\n[set]\ntotal_steps = 1024\n\"algorithm.device\" = \"cpu\"\n",
            common::root().join("configs/cartpole-ppo.toml").display().to_string()
        ),
    )
    .expect("write");
    let store = dir.path().join("store");
    let out = common::paddock(&["exp", "submit", file.to_str().expect("utf-8"), "--store", store.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let at = String::from_utf8_lossy(&out.stdout).trim().strip_prefix("paddock worker ").expect("command").to_string();
    let flag = dir.path().join("powered-off");
    let out = Command::new("bash")
        .arg(&entry)
        .env("PADDOCK_EXPERIMENT", &at)
        .env("PADDOCK_BIN", env!("CARGO_BIN_EXE_paddock"))
        .env("PADDOCK_SPOT_NOTICES", "0")
        .env("PADDOCK_IDLE_TIMEOUT", "5")
        .env("PADDOCK_SHUTDOWN_CMD", format!("touch {}", flag.display()))
        .env("PADDOCK_WORK_DIR", dir.path().join("work"))
        .env("PADDOCK_CACHE_DIR", common::root().join("target/test-cache"))
        .output()
        .expect("entrypoint");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("worker done (done): 2 trials committed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(flag.exists(), "the worker ran the shutdown command when the work was done");
}
