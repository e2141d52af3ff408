//! MLflow tracking against a real `mlflow server` on loopback: a run's parameters, metrics
//! and files arrive and read back through MLflow's own REST API; a server that is away is a
//! warning, and what was logged meanwhile arrives when it is back (during the run, or by
//! `paddock track` after it); a sweep logs one MLflow run per trial under one experiment,
//! a study's best as the experiment's tag.

use crate::common::{self, mlflow::Mlflow};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn paddock() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_paddock"));
    let work = std::env::temp_dir().join(format!("paddock-tracking-tests-{}", std::process::id()));
    c.current_dir(common::root()).env("PADDOCK_CACHE_DIR", common::root().join("target/test-cache")).env("PADDOCK_WORK_DIR", work);
    c
}

/// A training process that is killed if the test fails before it ends.
struct Training(std::process::Child);

impl Drop for Training {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "paddock failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The MLflow run whose `paddock_key` tag is `key`, in experiment `name`.
fn mlflow_run(m: &Mlflow, experiment: &str, key: &str) -> Option<Value> {
    let (status, body) = m.get(&format!("/api/2.0/mlflow/experiments/get-by-name?experiment_name={experiment}"));
    if status != 200 {
        return None;
    }
    let id = serde_json::from_str::<Value>(&body).ok()?["experiment"]["experiment_id"].as_str()?.to_string();
    let found = m.api_post("runs/search", &serde_json::json!({ "experiment_ids": [id], "filter": format!("tags.paddock_key = '{key}'") }));
    found["runs"].as_array()?.first().cloned()
}

/// How many points of `metric` the MLflow run holds.
fn history(m: &Mlflow, run_id: &str, metric: &str) -> Vec<(u64, f64)> {
    let h = m.api(&format!("metrics/get-history?run_id={run_id}&metric_key={}", metric.replace('/', "%2F")));
    h["metrics"]
        .as_array()
        .map(|a| a.iter().map(|p| (p["step"].as_u64().unwrap_or(0), p["value"].as_f64().unwrap_or(f64::NAN))).collect())
        .unwrap_or_default()
}

/// The lines of a run's metrics.jsonl that carry `metric`: `(step, value)`.
fn logged(dir: &Path, metric: &str) -> Vec<(u64, f64)> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .expect("metrics")
        .lines()
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            Some((v["step"].as_u64()?, v[metric].as_f64()?))
        })
        .collect()
}

/// The server is away when the run starts (a warning; training goes on), comes up while
/// it trains (everything logged meanwhile arrives), the run is stopped (Ctrl-C: the MLflow
/// run is marked killed), resumes into the same MLflow run and is stopped again, with every
/// metric line and the parameters on the server, none twice. Then a run whose server never
/// answered finishes all the same and is caught up by `paddock track` (metrics, files, its
/// end).
#[test]
fn a_run_logs_to_mlflow_and_catches_up_after_the_server_was_away() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut m = Mlflow::stopped();
    let store = dir.path().join("runs");
    let args = || -> Vec<String> {
        [
            "train",
            "configs/cartpole-ppo.toml",
            "--name",
            "tracked",
            "--set",
            &format!("store={}", store.display()),
            "--set",
            &format!("tracking.mlflow={}", m.url()),
            "--set",
            "tracking.experiment=cartpole",
            "--set",
            "algorithm.device=cpu",
            "--set",
            "train.eval_every=4096",
            "--set",
            "train.checkpoint_every=4096",
            "--set",
            "train.stop_at_return=1e9",
            "--set",
            "total_steps=5000000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run_dir = store.join("tracked");
    let mut child = Training(paddock().args(args()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("train"));
    let log = || std::fs::read_to_string(run_dir.join("log.txt")).unwrap_or_default();
    let start = Instant::now();
    while !log().contains("does not answer") {
        assert!(start.elapsed() < Duration::from_secs(120), "no warning about the server: {}", log());
        std::thread::sleep(Duration::from_millis(100));
    }
    m.up();
    // What was logged while it was away arrives while the run trains on.
    let start = Instant::now();
    while !log().contains("answers again") {
        assert!(child.0.try_wait().expect("wait").is_none(), "the run ended: {}", log());
        assert!(start.elapsed() < Duration::from_secs(120), "no catch-up: {}", log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let run = mlflow_run(&m, "cartpole", "tracked").expect("the MLflow run");
    let run_id = run["info"]["run_id"].as_str().expect("run id").to_string();
    assert!(!history(&m, &run_id, "rollout/return_mean").is_empty(), "metrics arrived");
    // Ctrl-C: the run stops with a checkpoint; the MLflow run is marked killed.
    // SAFETY: signals the child this test started.
    unsafe {
        libc::kill(child.0.id() as i32, libc::SIGINT);
    }
    let status = child.0.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "stopped by Ctrl-C");
    assert_eq!(m.api(&format!("runs/get?run_id={run_id}"))["run"]["info"]["status"], "KILLED");
    // Resumed: the same MLflow run, running again, then stopped again; every metric line
    // the run has is on the server once (the stop's checkpoint is where the lines end).
    let lines = |d: &Path| std::fs::read_to_string(d.join("metrics.jsonl")).map_or(0, |t| t.lines().count());
    let before = lines(&run_dir);
    let mut child = Training(
        paddock()
            .args(["train", "--resume", run_dir.to_str().expect("utf-8")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("resume"),
    );
    let start = Instant::now();
    while lines(&run_dir) < before + 20 || mlflow_run(&m, "cartpole", "tracked").is_none_or(|r| r["info"]["status"] != "RUNNING") {
        assert!(start.elapsed() < Duration::from_secs(120), "the resumed run does not train, or its MLflow run is not running again");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: signals the child this test started.
    unsafe {
        libc::kill(child.0.id() as i32, libc::SIGINT);
    }
    assert_eq!(child.0.wait().expect("wait").code(), Some(130));
    let again = mlflow_run(&m, "cartpole", "tracked").expect("the MLflow run");
    assert_eq!(again["info"]["run_id"].as_str(), Some(run_id.as_str()), "one MLflow run for the run");
    assert_eq!(again["info"]["status"], "KILLED");
    for metric in ["rollout/return_mean", "eval/return_mean", "train/loss/value"] {
        let mut sent = history(&m, &run_id, metric);
        let want = logged(&run_dir, metric);
        assert_eq!(sent.len(), want.len(), "{metric}: every line once");
        sent.sort_by_key(|p| p.0);
        for (a, b) in sent.iter().zip(&want) {
            assert!(a.0 == b.0 && (a.1 - b.1).abs() <= 1e-9 * b.1.abs().max(1.0), "{metric}: {a:?} vs {b:?}");
        }
    }
    let params = &again["data"]["params"];
    let lr = params.as_array().and_then(|p| p.iter().find(|p| p["key"] == "algorithm.params.learning-rate")).expect("learning rate");
    assert_eq!(lr["value"], "0.001", "{params}");

    // A run whose server never answers: a warning, a finished run, and `paddock track`
    // sends it all later.
    let mut away = Mlflow::stopped();
    let out = paddock()
        .args(["train", "configs/cartpole-ppo.toml", "--name", "offline", "--set", &format!("store={}", store.display())])
        .args(["--set", &format!("tracking.mlflow={}", away.url()), "--set", "total_steps=4096", "--set", "train.eval_every=2048"])
        .args(["--set", "algorithm.device=cpu"])
        .output()
        .expect("train");
    ok(&out);
    let offline = store.join("offline");
    let text = std::fs::read_to_string(offline.join("log.txt")).expect("log");
    assert!(text.contains("does not answer") && text.contains(&format!("paddock track {}", offline.display())), "{text}");
    away.up();
    let said = ok(&paddock().args(["track", offline.to_str().expect("utf-8")]).output().expect("track"));
    assert!(said.contains("metric lines sent"), "{said}");
    let run = mlflow_run(&away, "paddock", "offline").expect("the MLflow run");
    assert_eq!(run["info"]["status"], "FINISHED");
    let id = run["info"]["run_id"].as_str().expect("id");
    assert_eq!(history(&away, id, "eval/return_mean").len(), logged(&offline, "eval/return_mean").len());
    let files = away.api(&format!("artifacts/list?run_id={id}"));
    let names: Vec<&str> = files["files"].as_array().expect("files").iter().filter_map(|f| f["path"].as_str()).collect();
    for f in ["config.toml", "metrics.jsonl", "log.txt"] {
        assert!(names.contains(&f), "{f} uploaded: {names:?}");
    }
    // A typo in the server's address is named before anything runs.
    let bad = paddock().args(["train", "configs/cartpole-ppo.toml", "--set", "tracking.mlflow=127.0.0.1:5000"]).output().expect("train");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("tracking.mlflow"), "{err}");
}

/// A study logs one MLflow run per trial under an MLflow experiment named by the
/// experiment's id, with the trial's parameters, and tags the experiment with its best.
#[test]
fn a_study_logs_a_run_per_trial_and_tags_its_best() {
    let m = Mlflow::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("study.toml");
    std::fs::write(
        &file,
        format!(
            "base = {:?}\n[set]\n\"algorithm.device\" = \"cpu\"\ntotal_steps = 4096\n\"train.eval_every\" = 2048\n\"train.stop_at_return\" = 1e9\n\"tracking.mlflow\" = \"{}\"\n[search]\nmetric = \"eval/return_mean\"\nsampler = \"random\"\ntrials = 3\nparallelism = 2\n[search.params]\n\"algorithm.params.learning-rate\" = {{ log_uniform = [1e-4, 1e-2] }}\n",
            common::root().join("configs/cartpole-ppo.toml").display().to_string(),
            m.url()
        ),
    )
    .expect("write");
    let store = dir.path().join("store");
    let out = paddock()
        .args(["exp", "run", file.to_str().expect("utf-8"), "--local", "--store", store.to_str().expect("utf-8")])
        .output()
        .expect("exp run");
    ok(&out);
    let plan: Value =
        serde_json::from_str(ok(&paddock().args(["exp", "plan", file.to_str().expect("utf-8"), "--json"]).output().expect("plan")).trim())
            .expect("json");
    let id = plan["id"].as_str().expect("id");
    let exp = m.api(&format!("experiments/get-by-name?experiment_name={id}"));
    let exp_id = exp["experiment"]["experiment_id"].as_str().expect("experiment id");
    let runs = m.api_post("runs/search", &serde_json::json!({ "experiment_ids": [exp_id] }));
    let runs = runs["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 3, "one MLflow run per trial");
    for r in runs {
        assert_eq!(r["info"]["status"], "FINISHED");
        let name = r["info"]["run_name"].as_str().expect("name");
        assert!(name.starts_with('s'), "named by the trial: {name}");
        let params = r["data"]["params"].as_array().expect("params");
        assert!(params.iter().any(|p| p["key"] == "algorithm.params.learning-rate"), "{r}");
        assert!(!history(&m, r["info"]["run_id"].as_str().expect("id"), "eval/return_mean").is_empty());
    }
    let tags = exp["experiment"]["tags"].as_array().cloned().unwrap_or_default();
    let best = tags.iter().find(|t| t["key"] == "paddock.study.best").expect("the study's best as a tag");
    assert!(best["value"].as_str().is_some_and(|v| v.starts_with('s') && v.contains("eval/return_mean=")), "{best}");
}
