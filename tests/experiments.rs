//! Batch experiments with real `paddock worker` processes on a local store: a sweep that
//! survives SIGKILLs and SIGTERMs (a spot reclaim's signal) with every trial done once and
//! equal to an uninterrupted run, a stale worker fenced by the conditional writes, a poison
//! trial failed after its attempts while the others finish, and re-submission that adds
//! and re-runs nothing.

use crate::common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn paddock_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_paddock"));
    // Workers keep their working copies under the work dir: the test's own, not the user's.
    let work = std::env::temp_dir().join(format!("paddock-exp-tests-{}", std::process::id()));
    c.current_dir(common::root()).env("PADDOCK_CACHE_DIR", common::root().join("target/test-cache")).env("PADDOCK_WORK_DIR", work);
    c
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "paddock failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes an experiment file over CartPole PPO: `trials` trials (learning rates × seeds).
fn experiment(dir: &Path, extra: &str) -> PathBuf {
    let f = dir.join("sweep.toml");
    let text = format!(
        "base = {:?}\n{extra}\n[set]\n\"algorithm.device\" = \"cpu\"\n\"train.stop_at_return\" = 1e9\n\"train.eval_every\" = 2048\n\"train.checkpoint_every\" = 1024\n",
        common::root().join("configs/cartpole-ppo.toml").display().to_string()
    );
    std::fs::write(&f, text).expect("write");
    f
}

fn status(at: &str) -> Value {
    let out = paddock_cmd().args(["exp", "status", at, "--json"]).output().expect("run");
    serde_json::from_str(ok(&out).trim()).expect("json")
}

/// Submits `file` to a local store under `dir` with `total` steps a trial: its location.
fn submit_to_local(dir: &Path, file: &Path, total: u64) -> String {
    let store = dir.join("store");
    let out = paddock_cmd()
        .args(["exp", "submit", file.to_str().expect("utf-8"), "--store", store.to_str().expect("utf-8")])
        .args(["--set", &format!("set.total_steps={total}")])
        .output()
        .expect("submit");
    ok(&out).trim().strip_prefix("paddock worker ").expect("command").to_string()
}

/// Submits `file` to `s3://bkt/exps` on `moto` with `total` steps a trial: its location.
fn submit_to_moto(moto: &common::moto::Moto, file: &Path, total: u64) -> String {
    let out = moto
        .command(&["exp", "submit", file.to_str().expect("utf-8"), "--store", "s3://bkt/exps"])
        .args(["--set", &format!("set.total_steps={total}")])
        .output()
        .expect("submit");
    ok(&out).trim().strip_prefix("paddock worker ").expect("command").to_string()
}

/// `paddock worker AT --json` watching the fake metadata service for spot notices.
fn spot_worker(at: &str, imds: &common::imds::FakeImds) -> Child {
    paddock_cmd()
        .args(["worker", at, "--spot-notices", &imds.endpoint(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("worker")
}

/// Waits (up to 2 minutes) until the first trial in what `status` reads (`exp status
/// --json`) has trained past `step`.
fn wait_until_trained(status: impl Fn() -> Value, step: u64) {
    let start = Instant::now();
    while status()["trials"][0]["state"]["step"].as_u64() <= Some(step) {
        assert!(start.elapsed() < Duration::from_secs(120), "the trial did not train past step {step}: {}", status());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `exp status --json` of `at` through moto (`Null` while it cannot be read).
fn moto_status(moto: &common::moto::Moto, at: &str) -> Value {
    let out = moto.command(&["exp", "status", at, "--json"]).output().expect("status");
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: signals a process this test started (or its worker child).
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// The pids of `paddock worker` processes whose command line names `at`.
fn workers_of(at: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("proc").filter_map(Result::ok) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else { continue };
        let args: Vec<String> = cmd.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        if args.iter().any(|a| a == "worker") && args.iter().any(|a| a == at) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn a_sweep_survives_sigkills_and_spot_signals_with_every_trial_done_once_and_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file =
        experiment(dir.path(), "seeds = 6\n[grid]\n\"algorithm.params.learning-rate\" = [3e-4, 1e-3, 3e-3, 1e-2]\n[trial]\nlease_s = 10\n");
    let store = dir.path().join("store");
    let plan: Value = serde_json::from_str(
        ok(&paddock_cmd()
            .args(["exp", "plan", file.to_str().expect("utf-8"), "--json", "--set", "set.total_steps=16384"])
            .output()
            .expect("plan"))
        .trim(),
    )
    .expect("json");
    assert_eq!(plan["trials"].as_array().map(Vec::len), Some(24));
    let at = store.join(plan["id"].as_str().expect("id")).display().to_string();
    let mut runner: Child = paddock_cmd()
        .args(["exp", "run", file.to_str().expect("utf-8"), "--local", "-j", "4", "--store", store.to_str().expect("utf-8")])
        .args(["--set", "set.total_steps=16384"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("exp run");
    // Chaos: 8 SIGKILLs and 4 SIGTERMs (what a worker gets before a spot reclaim), at
    // pseudo-random moments, each to a worker that holds a running trial.
    let (mut kills, mut terms, mut k) = (0, 0, 0u64);
    let start = Instant::now();
    while kills < 8 || terms < 4 {
        assert!(start.elapsed() < Duration::from_secs(600), "chaos did not finish: {kills} kills, {terms} terms");
        if runner.try_wait().expect("wait").is_some() {
            break;
        }
        k += 1;
        std::thread::sleep(Duration::from_millis(300 + (k * 7919 % 900)));
        let s = status(&at);
        let running = s["counts"]["running"].as_u64().unwrap_or(0);
        let pids = workers_of(&at);
        if running == 0 || pids.is_empty() {
            continue;
        }
        let pid = pids[(k as usize) % pids.len()];
        if kills < 8 && (k % 3 != 0 || terms >= 4) {
            signal(pid, libc::SIGKILL);
            kills += 1;
        } else {
            signal(pid, libc::SIGTERM);
            terms += 1;
        }
    }
    let out = runner.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(kills >= 8 && terms >= 4, "the sweep ended before the chaos did: {kills} kills, {terms} terms");

    let s = status(&at);
    let errors: Vec<&Value> = s["trials"].as_array().expect("trials").iter().filter(|t| t["state"]["error"].is_string()).collect();
    assert_eq!(s["counts"]["done"], 24, "24 of 24 trials done: {}; errors: {errors:?}", s["counts"]);
    let trials = s["trials"].as_array().expect("trials");
    let preempted: u64 = trials.iter().map(|t| t["state"]["preemptions"].as_u64().unwrap_or(0)).sum();
    assert!(preempted >= 8, "the interruptions show as preemptions, not errors: {preempted}");
    for t in trials {
        let st = &t["state"];
        assert_eq!(st["errors"], 0, "{t}");
        assert_eq!(st["result"]["steps"], 16384, "{t}");
        let redone = st["redone_steps"].as_u64().unwrap_or(0);
        let interruptions = st["preemptions"].as_u64().unwrap_or(0);
        // A kill loses what was trained since the newest checkpoint in the store: at most one
        // checkpoint interval (1024 steps) plus the update it waits for (256) per interruption.
        assert!(redone <= interruptions * (1024 + 256), "{t}");
    }
    // Committed once: one result file per trial, and it names the epoch that finished.
    let results = std::fs::read_dir(Path::new(&at).join("results")).expect("results").count();
    assert_eq!(results, 24);
    // Every interrupted trial's final metrics equal an uninterrupted run of the same trial.
    let mut compared = 0;
    for t in trials.iter().filter(|t| t["state"]["epoch"].as_u64().unwrap_or(0) > 1) {
        let id = t["id"].as_str().expect("id");
        let run = Path::new(&at).join(t["state"]["result"]["run"].as_str().expect("run"));
        let overrides: Vec<String> =
            plan["trials"].as_array().expect("trials").iter().find(|p| p["id"] == id).expect("in the plan")["overrides"]
                .as_array()
                .expect("overrides")
                .iter()
                .map(|o| o.as_str().expect("str").to_string())
                .collect();
        let alone = tempfile::tempdir().expect("tempdir");
        let mut args = vec!["train".to_string(), "configs/cartpole-ppo.toml".into(), "--json".into()];
        for o in overrides.iter().chain(["total_steps=16384".to_string(), format!("store={}", alone.path().display())].iter()) {
            args.extend(["--set".to_string(), o.clone()]);
        }
        for o in ["algorithm.device=cpu", "train.stop_at_return=1e9", "train.eval_every=2048", "train.checkpoint_every=1024"] {
            args.extend(["--set".to_string(), o.to_string()]);
        }
        let out = paddock_cmd().args(&args).output().expect("train");
        let s: Value = serde_json::from_str(ok(&out).trim()).expect("json");
        let whole = std::fs::read(Path::new(s["run_dir"].as_str().expect("dir")).join("metrics.jsonl")).expect("metrics");
        let got = std::fs::read(run.join("metrics.jsonl")).expect("trial metrics");
        assert!(got == whole, "trial {id}: its metrics differ from an uninterrupted run's");
        compared += 1;
    }
    assert!(compared >= 4, "interrupted trials compared: {compared}");

    // Re-submitting adds nothing and re-runs nothing.
    let out = paddock_cmd()
        .args(["exp", "run", file.to_str().expect("utf-8"), "--local", "-j", "2", "--store", store.to_str().expect("utf-8")])
        .args(["--set", "set.total_steps=16384"])
        .output()
        .expect("again");
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("24 trials (24 already final)"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(status(&at)["trials"], s["trials"], "nothing changed");
}

#[test]
fn a_stale_worker_is_fenced_and_a_poison_trial_fails_while_the_others_finish() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Stale worker: one long trial; the first worker is stopped past its lease.
    let file = experiment(dir.path(), "seeds = 1\n[trial]\nlease_s = 10\n");
    let store = dir.path().join("store");
    let plan: Value = serde_json::from_str(
        ok(&paddock_cmd()
            .args(["exp", "plan", file.to_str().expect("utf-8"), "--json", "--set", "set.total_steps=400000"])
            .output()
            .expect("plan"))
        .trim(),
    )
    .expect("json");
    // Submit without workers, then run workers by hand (not under `exp run`: a runner's
    // workers end with it, and one that replaces a worker it sees end would race the test).
    let at = submit_to_local(dir.path(), &file, 400000);
    assert_eq!(at, store.join(plan["id"].as_str().expect("id")).display().to_string());
    let mut first_worker = paddock_cmd().args(["worker", &at]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("worker");
    let first = first_worker.id();
    let start = Instant::now();
    while !status(&at)["trials"][0]["state"]["checkpoint"].is_object() {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint");
        assert!(first_worker.try_wait().expect("wait").is_none(), "the first worker ended");
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(first, libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs(11));
    let second = paddock_cmd().args(["worker", &at, "--json"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("worker");
    let start = Instant::now();
    while status(&at)["trials"][0]["state"]["epoch"] != 2 {
        assert!(start.elapsed() < Duration::from_secs(60), "the second worker did not take over");
        std::thread::sleep(Duration::from_millis(100));
    }
    let e2 = Path::new(&at).join(format!("trials/{}/e2", plan["trials"][0]["id"].as_str().expect("id")));
    signal(first, libc::SIGCONT);
    // The stale worker's next heartbeat is refused: it stops its trial (its own epoch's
    // files only) and, with the trial held by another, leaves when that one ends.
    let start = Instant::now();
    loop {
        let log = std::fs::read_dir(Path::new(&at).join(format!("trials/{}/e1", plan["trials"][0]["id"].as_str().expect("id"))))
            .ok()
            .and_then(|_| {
                std::fs::read_to_string(Path::new(&at).join(format!("trials/{}/e1/log.txt", plan["trials"][0]["id"].as_str().expect("id"))))
                    .ok()
            })
            .unwrap_or_default();
        if log.contains("fenced at epoch 1") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the stale worker was not fenced:\n{log}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let s = status(&at);
    assert_eq!(s["trials"][0]["state"]["epoch"], 2);
    assert!(s["trials"][0]["state"]["owner"].as_str().is_some_and(|o| o.contains(&format!("-{}-", second.id()))), "{s}");
    // Epoch 2's run (its log continues epoch 1's) is the second worker's; the stale one's
    // fencing shows only in its own epoch.
    let e2_log = std::fs::read_to_string(e2.join("log.txt")).unwrap_or_default();
    assert!(e2_log.contains(&format!("epoch 2 on {}", s["trials"][0]["state"]["owner"].as_str().unwrap_or("?"))), "{e2_log}");
    assert!(!e2_log.contains("fenced"), "the stale worker wrote nothing under epoch 2:\n{e2_log}");
    signal(second.id(), libc::SIGTERM);
    signal(first, libc::SIGTERM);
    let _ = first_worker.wait();
    let out = second.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(143), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(status(&at)["trials"][0]["state"]["status"], "queued", "SIGTERM gave the trial back, preempted");

    // A poison trial (its env panics in `step`) fails after 2 attempts with its error; the other finishes.
    let poison = dir.path().join("poison.toml");
    std::fs::write(
        &poison,
        format!(
            "base = {:?}\n[set]\ntotal_steps = 2048\n\"algorithm.device\" = \"cpu\"\n\"train.checkpoint_every\" = 0\n\"env.plugin\" = {:?}\n\"env.params.at\" = \"step\"\n[grid]\n\"env.params.misbehave\" = [\"none\", \"panic\"]\n[trial]\nmax_errors = 2\n",
            common::root().join("configs/cartpole-ppo.toml").display().to_string(),
            common::plugin("hostile").display().to_string()
        ),
    )
    .expect("write");
    let out = paddock_cmd()
        .args(["exp", "run", poison.to_str().expect("utf-8"), "--local", "-j", "2", "--store", store.to_str().expect("utf-8")])
        .output()
        .expect("run");
    let table = ok(&out);
    let none = table.lines().find(|l| l.starts_with("t0000")).expect("row");
    let bad = table.lines().find(|l| l.starts_with("t0001")).expect("row");
    assert!(none.contains("done"), "{table}");
    assert!(bad.contains("failed") && bad.contains("plugin `hostile` failed in `step-all`"), "{table}");
    let err = String::from_utf8_lossy(&out.stderr);
    let at = err.split(" at ").nth(1).and_then(|r| r.split(':').next()).expect("the experiment's location");
    let s = status(at);
    let failed = &s["trials"][1]["state"];
    assert_eq!((failed["errors"].as_u64(), failed["status"].as_str()), (Some(2), Some("failed")));
    assert!(failed["error"].as_str().is_some_and(|e| e.contains("hostile plugin panics on purpose in step")), "{failed}");
}

/// An experiment in S3 is worked on from another machine: the plugins travel with the plan
/// (uploaded by content at submission), so a worker with no checkout finishes it.
#[test]
fn an_experiment_in_s3_is_finished_by_a_worker_on_another_machine() {
    let moto = common::moto::Moto::start();
    let checkout = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(checkout.path().join("plugins")).expect("mkdir");
    for p in ["cartpole", "ppo"] {
        std::fs::copy(common::plugin(p), checkout.path().join(format!("plugins/{p}.wasm"))).expect("copy");
    }
    let config = std::fs::read_to_string(common::root().join("configs/cartpole-ppo.toml"))
        .expect("config")
        .replace("plugin = \"", "plugin = \"plugins/");
    std::fs::write(checkout.path().join("base.toml"), config).expect("write");
    std::fs::write(
        checkout.path().join("x.toml"),
        "base = \"base.toml\"\nseeds = 2\n[set]\ntotal_steps = 4096\n\"algorithm.device\" = \"cpu\"\n\"train.checkpoint_every\" = 1024\n",
    )
    .expect("write");
    let out = moto.command(&["exp", "submit", "x.toml", "--store", "s3://bkt/exps"]).current_dir(checkout.path()).output().expect("submit");
    let line = ok(&out);
    let at = line.trim().strip_prefix("paddock worker ").expect("the worker command").to_string();
    assert!(at.starts_with("s3://bkt/exps/x-"), "{at}");
    // Submitting again adds nothing.
    let again =
        moto.command(&["exp", "submit", "x.toml", "--store", "s3://bkt/exps"]).current_dir(checkout.path()).output().expect("submit");
    assert_eq!(ok(&again).trim(), line.trim());
    drop(checkout);

    let elsewhere = tempfile::tempdir().expect("tempdir");
    let out = moto
        .command(&["worker", &at, "--json"])
        .current_dir(elsewhere.path())
        .env("PADDOCK_WORK_DIR", elsewhere.path().join("work"))
        .output()
        .expect("worker");
    let summary: Value = serde_json::from_str(ok(&out).trim()).expect("json");
    assert_eq!(summary["committed"].as_array().map(Vec::len), Some(2), "{summary}");
    let out = moto.command(&["exp", "status", &at, "--json"]).current_dir(elsewhere.path()).output().expect("status");
    let s: Value = serde_json::from_str(ok(&out).trim()).expect("json");
    assert_eq!(s["counts"]["done"], 2, "{s}");
    // A trial's run in S3 evaluates on its own (it carries its plugins).
    let run = format!("{at}/{}", s["trials"][0]["state"]["result"]["run"].as_str().expect("run"));
    let out = moto.command(&["eval", &run, "--episodes", "2", "--json"]).current_dir(elsewhere.path()).output().expect("eval");
    ok(&out);
}

/// A spot interruption notice (from a fake instance metadata service) stops the trial at its
/// next update with a checkpoint and gives it back, preempted; a worker with nothing left,
/// or whose store is gone, runs its shutdown command so nothing bills after the work.
#[test]
fn a_spot_notice_gives_the_trial_back_and_a_worker_with_no_work_shuts_down() {
    let imds = common::imds::FakeImds::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = experiment(dir.path(), "seeds = 1\n[trial]\nlease_s = 10\n");
    let store = dir.path().join("store");
    let at = submit_to_local(dir.path(), &file, 400000);
    let worker = spot_worker(&at, &imds);
    let start = Instant::now();
    while !status(&at)["trials"][0]["state"]["checkpoint"].is_object() {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint");
        std::thread::sleep(Duration::from_millis(100));
    }
    imds.raise_notice();
    let out = worker.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("spot interruption notice"), "{}", String::from_utf8_lossy(&out.stderr));
    let s = status(&at)["trials"][0]["state"].clone();
    assert_eq!((s["status"].as_str(), s["preemptions"].as_u64(), s["errors"].as_u64()), (Some("queued"), Some(1), Some(0)), "{s}");
    let summary: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("json");
    assert_eq!(summary["left"], "interrupted");

    // No work left (a finished experiment): the shutdown command runs.
    let done = dir.path().join("done.toml");
    std::fs::write(
        &done,
        format!(
            "base = {:?}\n[set]\ntotal_steps = 512\n\"algorithm.device\" = \"cpu\"\n",
            common::root().join("configs/cartpole-ppo.toml").display().to_string()
        ),
    )
    .expect("write");
    let out = paddock_cmd()
        .args(["exp", "run", done.to_str().expect("utf-8"), "--local", "-j", "1", "--store", store.to_str().expect("utf-8")])
        .output()
        .expect("run");
    ok(&out);
    let done_at =
        String::from_utf8_lossy(&out.stderr).split(" at ").nth(1).and_then(|r| r.split(':').next()).expect("location").to_string();
    let flag = dir.path().join("shut-down");
    let cmd = format!("touch {}", flag.display());
    let out = paddock_cmd().args(["worker", &done_at, "--shutdown-cmd", &cmd, "--json"]).output().expect("worker");
    assert_eq!(serde_json::from_str::<Value>(ok(&out).trim()).expect("json")["left"], "done");
    assert!(flag.exists(), "the shutdown command ran");

    // The store is gone (an S3 server that does not answer): the worker leaves after the
    // configured time and shuts down.
    std::fs::remove_file(&flag).expect("rm");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let out = paddock_cmd()
        .args(["worker", "s3://bkt/exps/x", "--store-lost-after", "2", "--shutdown-cmd", &cmd, "--json"])
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("worker");
    assert_eq!(serde_json::from_str::<Value>(ok(&out).trim()).expect("json")["left"], "store unreachable");
    assert!(flag.exists(), "the shutdown command ran");
}

/// `paddock watch STORE/EXPERIMENT` lists the experiment's trials: the follower copies each
/// trial's newest epoch run (small files only) under the trial's id.
#[test]
fn watching_an_experiment_shows_each_trial_as_a_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = experiment(dir.path(), "seeds = 2\n");
    let store = dir.path().join("store");
    let out = paddock_cmd()
        .args(["exp", "run", file.to_str().expect("utf-8"), "--local", "-j", "2", "--store", store.to_str().expect("utf-8")])
        .args(["--set", "set.total_steps=2048"])
        .output()
        .expect("run");
    ok(&out);
    let at = String::from_utf8_lossy(&out.stderr).split(" at ").nth(1).and_then(|r| r.split(':').next()).expect("location").to_string();
    let follower = paddock::monitor::follow::Follower::start(&paddock::store::Location::parse(&at).expect("location"), &Default::default())
        .expect("follow");
    let mut trials: Vec<String> = std::fs::read_dir(&follower.path)
        .expect("copy")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    trials.sort();
    assert_eq!(trials.len(), 2, "{trials:?}");
    assert!(trials[0].starts_with("t0000-") && trials[1].starts_with("t0001-"));
    for t in &trials {
        let run = follower.path.join(t);
        assert!(run.join("metrics.jsonl").exists() && run.join("plugins.lock").exists(), "{}", run.display());
        assert!(!run.join("checkpoints").exists());
    }
}

/// Starts `exp run --local -j 2` on a long sweep and waits until both workers hold a
/// running trial that has checkpointed. Returns the runner and the experiment's location.
#[expect(clippy::zombie_processes, reason = "the runner is returned to the caller, which waits for it")]
fn runner_with_busy_workers(dir: &Path) -> (Child, String) {
    let file = experiment(dir, "seeds = 3\n");
    let store = dir.join("store");
    let plan: Value = serde_json::from_str(
        ok(&paddock_cmd()
            .args(["exp", "plan", file.to_str().expect("utf-8"), "--json", "--set", "set.total_steps=10000000"])
            .output()
            .expect("plan"))
        .trim(),
    )
    .expect("json");
    let at = store.join(plan["id"].as_str().expect("id")).display().to_string();
    let mut runner = paddock_cmd()
        .args(["exp", "run", file.to_str().expect("utf-8"), "--local", "-j", "2", "--store", store.to_str().expect("utf-8")])
        .args(["--set", "set.total_steps=10000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("exp run");
    let start = Instant::now();
    let mut last = String::new();
    loop {
        if start.elapsed() > Duration::from_secs(120) {
            signal(runner.id(), libc::SIGTERM);
            let _ = runner.wait();
            panic!("the workers did not start training: {last} {:?}", workers_of(&at));
        }
        std::thread::sleep(Duration::from_millis(500));
        let Ok(out) = paddock_cmd().args(["exp", "status", &at, "--json"]).output() else { continue };
        last = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let Ok(s) = serde_json::from_slice::<Value>(&out.stdout) else { continue };
        let busy = s["trials"]
            .as_array()
            .map_or(0, |t| t.iter().filter(|t| t["state"]["status"] == "running" && t["state"]["step"].as_u64() > Some(2048)).count());
        if busy == 2 && workers_of(&at).len() == 2 {
            return (runner, at);
        }
    }
}

/// Waits up to `grace` for every worker of `at` to be gone; the ones left.
fn workers_gone_within(at: &str, grace: Duration) -> Vec<u32> {
    let start = Instant::now();
    loop {
        let left = workers_of(at);
        if left.is_empty() || start.elapsed() > grace {
            return left;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_runner_owns_its_workers_a_signal_stops_them_with_checkpoints_and_its_death_ends_them() {
    // A SIGTERM to the runner alone (not its process group): the workers stop at their next
    // update with a checkpoint, give their trials back, and the runner prints the table.
    let dir = tempfile::tempdir().expect("tempdir");
    let (runner, at) = runner_with_busy_workers(dir.path());
    signal(runner.id(), libc::SIGTERM);
    let out = runner.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(143), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("TRIAL"), "the table is printed");
    let left = workers_gone_within(&at, Duration::from_secs(5));
    assert!(left.is_empty(), "workers still running after the runner stopped: {left:?}");
    let s = status(&at);
    let trials = s["trials"].as_array().expect("trials");
    assert_eq!(trials.iter().filter(|t| t["state"]["status"] == "running").count(), 0, "every trial given back: {s}");
    assert!(
        trials.iter().filter(|t| t["state"]["preemptions"].as_u64() == Some(1) && t["state"]["checkpoint"].is_object()).count() >= 2,
        "the two trials were given back with a checkpoint: {s}"
    );

    // SIGKILL: the runner cannot pass anything on; the kernel's parent-death signal ends
    // the workers (as a SIGTERM: they stop with a checkpoint too).
    let (mut runner, at) = runner_with_busy_workers(dir.path());
    signal(runner.id(), libc::SIGKILL);
    let _ = runner.wait();
    let left = workers_gone_within(&at, Duration::from_secs(30));
    assert!(left.is_empty(), "workers outlived their killed runner: {left:?}");
}

/// A store that comes back empty (moto restarted without its data) in the middle of a
/// sweep is not a fresh store: no trial is run again or committed twice, the workers keep
/// their working copies and exit non-zero naming the problem, and `exp restore` puts the
/// experiment back from those copies; the sweep then finishes where it was.
#[test]
fn a_store_that_comes_back_empty_loses_nothing_and_exp_restore_puts_the_experiment_back() {
    let mut moto = common::moto::Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    // Two trials: a short one that finishes, a longer one that is training when the store
    // loses everything.
    let file = experiment(dir.path(), "[grid]\ntotal_steps = [2048, 204800]\n[trial]\nlease_s = 30\n");
    let file = file.to_str().expect("utf-8");
    let run_cmd = |moto: &common::moto::Moto| {
        let mut c = moto.command(&["exp", "run", file, "--local", "-j", "2", "--store", "s3://bkt/exps"]);
        c.env("PADDOCK_WORK_DIR", &work).stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    };
    let plan: Value =
        serde_json::from_str(ok(&moto.command(&["exp", "plan", file, "--json"]).output().expect("plan")).trim()).expect("json");
    let at = format!("s3://bkt/exps/{}", plan["id"].as_str().expect("id"));
    let (short, long) =
        (plan["trials"][0]["id"].as_str().expect("id").to_string(), plan["trials"][1]["id"].as_str().expect("id").to_string());
    let runner = run_cmd(&moto).spawn().expect("exp run");
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(180), "the sweep did not get going: {}", moto_status(&moto, &at));
        std::thread::sleep(Duration::from_millis(300));
        let s = moto_status(&moto, &at);
        let Some(trials) = s["trials"].as_array() else { continue };
        let by = |id: &str| trials.iter().find(|t| t["id"] == id).map(|t| t["state"].clone()).unwrap_or(Value::Null);
        if by(&short)["status"] == "done" && by(&long)["status"] == "running" && by(&long)["checkpoint"].is_object() {
            break;
        }
    }
    // The store comes back empty (the bucket exists again, with nothing in it).
    moto.restart();
    let out = runner.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "the runner fails: {err}");
    assert!(err.contains("paddock exp restore") && err.contains("lost"), "it says what happened and what to do: {err}");
    assert!(!err.contains("DispatchFailure") && !err.contains("SdkError"), "no SDK structures: {err}");
    let kept: Vec<PathBuf> =
        std::fs::read_dir(work.join("workers")).expect("the workers kept their directories").map(|e| e.expect("entry").path()).collect();
    assert_eq!(kept.len(), 2, "both workers kept their working copies: {kept:?}");
    assert!(workers_of(&at).is_empty(), "no worker is left running");
    // Nothing was re-created behind the user's back.
    // (The long trial's mirror may have put its run's files back; no state, no plan.)
    let listing = String::from_utf8_lossy(&moto.http("GET", "/bkt?list-type=2", b"").1).into_owned();
    assert!(
        !listing.contains(&format!("{short}/state.json"))
            && !listing.contains(&format!("{long}/state.json"))
            && !listing.contains("experiment.json"),
        "no state is re-created: {listing}"
    );

    let out = moto.command(&["exp", "restore", &at, "--json"]).env("PADDOCK_WORK_DIR", &work).output().expect("restore");
    let restored: Value = serde_json::from_str(ok(&out).trim()).expect("json");
    assert_eq!(restored["plan"], true, "{restored}");
    let s = moto_status(&moto, &at);
    let trials = s["trials"].as_array().expect("trials");
    let by = |id: &str| trials.iter().find(|t| t["id"] == id).map(|t| t["state"].clone()).expect("trial");
    assert_eq!((by(&short)["status"].as_str(), by(&short)["epoch"].as_u64()), (Some("done"), Some(1)), "{s}");
    assert_eq!(by(&long)["status"], "queued", "{s}");
    assert!(by(&long)["checkpoint"]["step"].as_u64() > Some(0), "from its newest checkpoint: {s}");
    // Restoring again changes nothing.
    let again: Value = serde_json::from_str(
        ok(&moto.command(&["exp", "restore", &at, "--json"]).env("PADDOCK_WORK_DIR", &work).output().expect("restore")).trim(),
    )
    .expect("json");
    assert!(again["trials"].as_array().expect("trials").iter().all(|t| t[1] == "kept"), "{again}");

    // The same command finishes the sweep: the short trial is not trained again, the long one
    // goes on from its checkpoint.
    let out = run_cmd(&moto).output().expect("exp run");
    ok(&out);
    let s = moto_status(&moto, &at);
    let trials = s["trials"].as_array().expect("trials");
    let by = |id: &str| trials.iter().find(|t| t["id"] == id).map(|t| t["state"].clone()).expect("trial");
    assert_eq!(by(&short)["epoch"], 1, "the finished trial was committed once: {s}");
    assert_eq!(by(&short)["result"]["run"], format!("trials/{short}/e1"));
    let l = by(&long);
    assert_eq!((l["status"].as_str(), l["epoch"].as_u64(), l["result"]["steps"].as_u64()), (Some("done"), Some(2), Some(204800)), "{s}");
    assert!(l["redone_steps"].as_u64() < Some(204800 / 2), "it resumed, not restarted: {s}");
    // A trial's run evaluates from the restored store.
    let out = moto.command(&["eval", &format!("{at}/trials/{short}/e1"), "--episodes", "1", "--json"]).output().expect("eval");
    ok(&out);
}

/// Credentials the store refuses (a 403: a key rotated or revoked while a worker trains, or
/// wrong from the start) end a worker at once with exit status 4, naming the credentials; it
/// is not an outage to wait out for minutes, and its working copy stays.
#[test]
fn refused_credentials_end_a_worker_at_once_with_a_non_zero_exit() {
    let moto = common::moto::Moto::start();
    let proxy = common::proxy::Proxy::start(moto.port);
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    let file = experiment(dir.path(), "[trial]\nlease_s = 30\n");
    let out = moto
        .command(&["exp", "submit", file.to_str().expect("utf-8"), "--store", "s3://bkt/exps", "--set", "set.total_steps=10000000"])
        .output()
        .expect("submit");
    let at = ok(&out).trim().strip_prefix("paddock worker ").expect("the worker command").to_string();
    let worker = |moto: &common::moto::Moto| {
        let mut c = moto.command(&["worker", &at]);
        c.env("AWS_ENDPOINT_URL", proxy.endpoint()).env("PADDOCK_WORK_DIR", &work).stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    };
    let child = worker(&moto).spawn().expect("worker");
    wait_until_trained(|| moto_status(&moto, &at), 2048);
    // The key is revoked while the worker trains.
    proxy.deny(true);
    let denied_at = Instant::now();
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(denied_at.elapsed() < Duration::from_secs(60), "it left at its next heartbeat, not after the store-lost window: {err}");
    assert!(err.contains("credentials refused") && err.contains("InvalidAccessKeyId") && err.contains("access key id test"), "{err}");
    assert!(!err.contains("SdkError") && !err.contains("DispatchFailure"), "no SDK structures: {err}");
    assert!(work.join("workers").read_dir().expect("kept").count() == 1, "its working copy stays");
    // A worker whose credentials are refused from the start leaves at once too.
    let out = worker(&moto).output().expect("worker");
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    // The trial is not lost: the store (with good credentials) still holds it, running under
    // a lease that runs out, so another worker takes it over.
    let out = moto.command(&["exp", "status", &at, "--json"]).output().expect("status");
    let s: Value = serde_json::from_str(ok(&out).trim()).expect("json");
    assert_eq!(s["trials"][0]["state"]["status"], "running", "{s}");
}

/// Submitting an edited experiment file again updates what is safe to change in the stored
/// plan and says so (the lease, the attempts, the budget), and refuses to change the shape
/// of a running fleet, naming the keys.
#[test]
fn an_edited_plan_is_updated_where_safe_and_refused_while_its_fleet_runs() {
    let moto = common::moto::Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let submit = |extra: &str| {
        let file = experiment(dir.path(), &format!("seeds = 2\n{extra}"));
        moto.command(&["exp", "submit", file.to_str().expect("utf-8"), "--store", "s3://bkt/exps"]).output().expect("submit")
    };
    let fleet =
        |types: &str, budget: f64| format!("[fleet]\nstore = \"s3://b/x\"\ninstance_types = [{types}]\nbudget_dollars = {budget}\n");
    let first = submit(&format!("[trial]\nlease_s = 30\n{}", fleet("\"c7i.large\"", 5.0)));
    let at = ok(&first).trim().strip_prefix("paddock worker ").expect("worker command").to_string();
    let key = at.strip_prefix("s3:/").expect("s3").to_string();
    let stored = || -> Value { serde_json::from_slice(&moto.http("GET", &format!("{key}/experiment.json"), b"").1).expect("json") };
    assert_eq!(stored()["trial"]["lease_s"], 30);

    let edited = submit(&format!("[trial]\nlease_s = 90\nmax_errors = 5\n{}", fleet("\"c7i.large\"", 8.0)));
    let err = String::from_utf8_lossy(&edited.stderr).into_owned();
    assert_eq!(ok(&edited).trim(), format!("paddock worker {at}"), "the same experiment");
    for said in ["trial.lease_s: 30 → 90", "trial.max_errors: 3 → 5", "fleet.budget_dollars: 5.0 → 8.0"] {
        assert!(err.contains(said), "it says `{said}`: {err}");
    }
    let plan = stored();
    assert_eq!((plan["trial"]["lease_s"].as_u64(), plan["fleet"]["budget_dollars"].as_f64()), (Some(90), Some(8.0)), "{plan}");

    // A fleet is running: its shape cannot change under it, the budget can.
    let record = serde_json::json!({
        "generation": 1, "state": "active", "api": "fleet", "region": "us-east-1", "fleet_id": "fleet-1",
        "launch_template": "lt-1", "created": 0.0, "deleted": null, "reason": null, "by": "test"
    });
    assert_eq!(moto.http("PUT", &format!("{key}/fleet.json"), record.to_string().as_bytes()).0, 200);
    let refused = submit(&format!("[trial]\nlease_s = 90\nmax_errors = 5\n{}", fleet("\"c7i.large\", \"m7i.large\"", 8.0)));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(err.contains("`fleet.instance_types`") && err.contains("paddock exp cancel"), "{err}");
    assert_eq!(stored()["fleet"]["instance_types"], serde_json::json!(["c7i.large"]), "nothing changed");
    let budget = submit(&format!("[trial]\nlease_s = 90\nmax_errors = 5\n{}", fleet("\"c7i.large\"", 12.0)));
    ok(&budget);
    assert_eq!(stored()["fleet"]["budget_dollars"], 12.0);
}

/// A rebalance recommendation (elevated risk, not a reclaim) takes an early checkpoint,
/// which reaches the store, and the trial trains on to its end on the same worker.
#[test]
fn a_rebalance_recommendation_takes_an_early_checkpoint_and_the_trial_finishes_on_the_same_worker() {
    let moto = common::moto::Moto::start();
    let imds = common::imds::FakeImds::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = experiment(dir.path(), "seeds = 1\n[trial]\nlease_s = 10\n");
    // No periodic checkpoints: the only one before the end is the recommendation's.
    let text =
        std::fs::read_to_string(&file).expect("read").replace("\"train.checkpoint_every\" = 1024", "\"train.checkpoint_every\" = 10000000");
    std::fs::write(&file, text).expect("write");
    let at = submit_to_moto(&moto, &file, 150000);
    let worker = moto
        .command(&["worker", &at, "--spot-notices", &imds.endpoint(), "--json"])
        .env("PADDOCK_WORK_DIR", dir.path().join("work"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("worker");
    let start = Instant::now();
    let status = |at: &str| moto_status(&moto, at);
    wait_until_trained(|| status(&at), 4096);
    assert!(!status(&at)["trials"][0]["state"]["checkpoint"].is_object(), "no checkpoint yet");
    imds.raise_rebalance();
    let early = loop {
        let s = status(&at)["trials"][0]["state"].clone();
        if s["checkpoint"].is_object() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no early checkpoint: {s}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(early["status"], "running", "it trains on: {early}");
    assert!(early["checkpoint"]["step"].as_u64() < Some(150000), "{early}");
    let out = worker.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("rebalance recommendation"), "{err}");
    let s = status(&at)["trials"][0]["state"].clone();
    assert_eq!(
        (s["status"].as_str(), s["epoch"].as_u64(), s["preemptions"].as_u64(), s["result"]["steps"].as_u64()),
        (Some("done"), Some(1), Some(0), Some(150000)),
        "finished on the same worker, never given back: {s}"
    );
}

/// `exp status` of 1,000 trials in S3 costs a handful of requests, not one per trial: one
/// listing of the index (1,000 keys a page), the plan, and a GET per running trial.
#[test]
fn status_of_a_thousand_trials_costs_a_handful_of_requests() {
    let moto = common::moto::Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = experiment(dir.path(), "seeds = 1000\n");
    let file = file.to_str().expect("utf-8");
    let out =
        moto.command(&["exp", "submit", file, "--store", "s3://bkt/exps"]).env("PADDOCK_WORK_DIR", dir.path()).output().expect("submit");
    let at = ok(&out).trim().strip_prefix("paddock worker ").expect("worker command").to_string();
    let requests = || std::fs::read_to_string(&moto.log).expect("moto log").matches("HTTP/1.1").count();
    let before = requests();
    let out = moto.command(&["exp", "status", &at, "--json"]).env("PADDOCK_WORK_DIR", dir.path()).output().expect("status");
    let s: Value = serde_json::from_str(ok(&out).trim()).expect("json");
    assert_eq!(s["counts"]["queued"], 1000, "{}", s["counts"]);
    let made = requests() - before;
    assert!(
        (2..=10).contains(&made),
        "exp status of 1,000 trials made {made} requests (the log counts them: the plan and the listing at least)"
    );
}

/// A worker whose disk fills (a small tmpfs) stops with an error naming the disk, not an
/// abort inside libtorch; its trial goes back with the error counted and another worker
/// finishes it.
#[test]
fn a_full_disk_is_named_and_another_worker_finishes_the_trial() {
    let dir = tempfile::tempdir().expect("tempdir");
    let small = dir.path().join("small");
    std::fs::create_dir_all(&small).expect("mkdir");
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"]).arg(&small).status().expect("mount");
    assert!(mounted.success(), "this test mounts a small tmpfs (it needs root, as CI has)");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(small.clone());
    let moto = common::moto::Moto::start();
    let status = |at: &str| moto_status(&moto, at);
    let file = experiment(dir.path(), "seeds = 1\n[trial]\nlease_s = 10\n");
    let at = submit_to_moto(&moto, &file, 100000);
    let worker = moto
        .command(&["worker", &at])
        .env("PADDOCK_WORK_DIR", &small)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("worker");
    wait_until_trained(|| status(&at), 2048);
    // The disk fills up under the training run.
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", small.join("filler").display()))
        .stderr(Stdio::null())
        .status();
    let out = worker.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains("is full") && err.contains(&small.display().to_string()), "names the disk: {err}");
    let s = status(&at)["trials"][0]["state"].clone();
    assert_eq!((s["status"].as_str(), s["errors"].as_u64()), (Some("queued"), Some(1)), "{s}");
    assert!(s["error"].as_str().is_some_and(|e| e.contains("is full")), "{s}");
    // A worker with room finishes it.
    let out = moto.command(&["worker", &at, "--json"]).env("PADDOCK_WORK_DIR", dir.path().join("roomy")).output().expect("worker");
    let summary: Value = serde_json::from_str(ok(&out).trim()).expect("json");
    assert_eq!(summary["committed"].as_array().map(Vec::len), Some(1), "{summary}");
    assert_eq!(status(&at)["trials"][0]["state"]["result"]["steps"], 100000);
}

/// A store outage of a minute (connections refused, the store keeps its data) does not end
/// `exp run --local`: the runner says the store is away and waits, the worker trains on and
/// commits once the store is back, and the runner finishes with the trial done once.
#[test]
fn a_store_outage_of_a_minute_does_not_end_the_runner() {
    let moto = common::moto::Moto::start();
    let proxy = common::proxy::Proxy::start(moto.port);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = experiment(dir.path(), "seeds = 1\n[trial]\nlease_s = 30\n");
    let file = file.to_str().expect("utf-8");
    let plan: Value = serde_json::from_str(
        ok(&moto.command(&["exp", "plan", file, "--json", "--set", "set.total_steps=60000"]).output().expect("plan")).trim(),
    )
    .expect("json");
    let at = format!("s3://bkt/exps/{}", plan["id"].as_str().expect("id"));
    let runner = moto
        .command(&["exp", "run", file, "--local", "-j", "1", "--store", "s3://bkt/exps", "--set", "set.total_steps=60000"])
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .env("PADDOCK_WORK_DIR", dir.path().join("work"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("exp run");
    wait_until_trained(|| moto_status(&moto, &at), 2048);
    proxy.cut(true);
    std::thread::sleep(Duration::from_secs(60));
    proxy.cut(false);
    let out = runner.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the runner outlived the outage: {err}");
    assert!(err.contains("the store does not answer") && err.contains("the store answers again"), "it said so: {err}");
    let out = moto.command(&["exp", "status", &at, "--json"]).output().expect("status");
    let s: Value = serde_json::from_str(ok(&out).trim()).expect("json");
    let t = &s["trials"][0]["state"];
    assert_eq!((t["status"].as_str(), t["epoch"].as_u64(), t["result"]["steps"].as_u64()), (Some("done"), Some(1), Some(60000)), "{s}");
}

/// Every `exp` command takes the experiment file as well as the experiment's location: a
/// user who ran `exp run sweep.toml` asks `exp status sweep.toml`.
#[test]
fn exp_commands_take_the_experiment_file_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = experiment(dir.path(), "seeds = 1\n");
    let text = std::fs::read_to_string(&file).expect("read").replacen("[set]\n", "[set]\ntotal_steps = 512\n", 1);
    std::fs::write(&file, text).expect("write");
    // The default store (runs/experiments) is relative to where the user is.
    let run = paddock_cmd().current_dir(dir.path()).args(["exp", "run", "sweep.toml", "--local", "-j", "1"]).output().expect("run");
    ok(&run);
    let out = paddock_cmd().current_dir(dir.path()).args(["exp", "status", "sweep.toml", "--json"]).output().expect("status");
    let s: Value = serde_json::from_str(ok(&out).trim()).expect("json");
    assert_eq!(s["counts"]["done"], 1, "{s}");
    let out = paddock_cmd().current_dir(dir.path()).args(["exp", "status", "nope.toml"]).output().expect("status");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("nope.toml: no such experiment file"), "{err}");
}

/// A shipped experiment file copied out of the checkout plans the same experiment (its
/// `base` is found on the config search path); a base found nowhere names where it looked.
#[test]
fn a_shipped_experiment_copied_elsewhere_plans_the_same_experiment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = |cwd: &Path, file: &str| {
        let out = paddock_cmd().current_dir(cwd).args(["exp", "plan", file, "--json"]).output().expect("plan");
        serde_json::from_str::<Value>(ok(&out).trim()).expect("json")
    };
    for name in ["cartpole-ppo-lr.toml", "arm-reach-sweep.toml"] {
        let shipped = common::root().join("experiments").join(name);
        std::fs::copy(&shipped, dir.path().join(name)).expect("copy");
        let (here, there) = (plan(&common::root(), shipped.to_str().expect("utf-8")), plan(dir.path(), name));
        assert_eq!(here["id"], there["id"], "{name}: the copy plans another experiment");
        assert_eq!(here["trials"], there["trials"], "{name}");
    }
    let text =
        std::fs::read_to_string(dir.path().join("cartpole-ppo-lr.toml")).expect("read").replace("cartpole-ppo.toml", "nope-ppo.toml");
    std::fs::write(dir.path().join("bad.toml"), text).expect("write");
    let out = paddock_cmd().current_dir(dir.path()).args(["exp", "plan", "bad.toml"]).output().expect("plan");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("the base config nope-ppo.toml is not a file") && err.contains("configs"), "{err}");
}

/// A trial's recorded `config.toml` trains anywhere its plugin files are, as a run's does,
/// not only inside the worker that ran it (whose private copies are gone when it leaves):
/// from another directory it gives the trial's metrics byte for byte.
#[test]
fn a_trials_config_trains_from_another_directory_to_the_trials_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = experiment(dir.path(), "seeds = 1\n");
    let text = std::fs::read_to_string(&file).expect("read").replacen("[set]\n", "[set]\ntotal_steps = 4096\n", 1);
    std::fs::write(&file, text).expect("write");
    let store = dir.path().join("store");
    let out = paddock_cmd()
        .args(["exp", "run", file.to_str().expect("utf-8"), "--local", "-j", "1", "--store", store.to_str().expect("utf-8")])
        .output()
        .expect("run");
    ok(&out);
    let at = store.read_dir().expect("store").next().expect("the experiment").expect("entry").path();
    let s = status(&at.display().to_string());
    let run = at.join(s["trials"][0]["state"]["result"]["run"].as_str().expect("run"));
    let config = std::fs::read_to_string(run.join("config.toml")).expect("config");
    assert!(!config.contains("/workers/"), "no worker's private path: {config}");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .current_dir(elsewhere.path())
        .env("PADDOCK_CACHE_DIR", common::root().join("target/test-cache"))
        .args(["train", run.join("config.toml").to_str().expect("utf-8"), "--json", "--set", "store=runs"])
        .output()
        .expect("train");
    let summary: Value = serde_json::from_str(ok(&out).trim()).expect("json");
    let trained = elsewhere.path().join(summary["run_dir"].as_str().expect("run dir"));
    assert_eq!(
        std::fs::read(trained.join("metrics.jsonl")).expect("metrics"),
        std::fs::read(run.join("metrics.jsonl")).expect("trial metrics"),
        "the same metrics, byte for byte"
    );
}

/// `exp best`: before any trial is done it says so; after the sweep it ranks the settings
/// (learning rates, each over two seeds) by the interquartile mean of their trials' last
/// evaluations, exactly as the trials' results give it, and writes the winner as a config
/// that `paddock train` runs.
#[test]
fn exp_best_ranks_settings_over_seeds_and_writes_a_runnable_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = experiment(dir.path(), "seeds = 2\n[grid]\n\"algorithm.params.learning-rate\" = [1e-4, 3e-3]\n");
    let at = submit_to_local(dir.path(), &file, 4096);
    let early = paddock_cmd().args(["exp", "best", &at]).current_dir(dir.path()).output().expect("best");
    assert_eq!(early.status.code(), Some(1));
    let err = String::from_utf8_lossy(&early.stderr);
    assert!(err.contains("has every trial done yet") && err.contains("4 queued"), "{err}");
    let store = dir.path().join("store");
    let run = paddock_cmd()
        .args(["exp", "run", file.to_str().expect("utf-8"), "--local", "-j", "2", "--store", store.to_str().expect("utf-8")])
        .args(["--set", "set.total_steps=4096"])
        .output()
        .expect("exp run");
    ok(&run);
    let best_file = dir.path().join("best.toml");
    let out = paddock_cmd().args(["exp", "best", &at, "--json", "-o", best_file.to_str().expect("utf-8")]).output().expect("best");
    let v: Value = serde_json::from_str(ok(&out).trim()).expect("json");
    let settings = v["ranking"]["settings"].as_array().expect("settings");
    assert_eq!(settings.len(), 2, "{v}");
    // Each setting's figures are its two trials' last evaluations (IQM = mean for two seeds).
    let s = status(&at);
    let trials = s["trials"].as_array().expect("trials");
    let mut iqms = Vec::new();
    for setting in settings {
        let scores: Vec<f64> = setting["scores"]
            .as_array()
            .expect("scores")
            .iter()
            .map(|x| {
                let id = x[0].as_str().expect("id");
                let t = trials.iter().find(|t| t["id"] == id).expect("trial");
                t["state"]["result"]["last_eval"].as_f64().expect("last eval")
            })
            .collect();
        assert_eq!(scores.len(), 2, "{setting}");
        let mean = (scores[0] + scores[1]) / 2.0;
        assert!((setting["stats"]["iqm"].as_f64().expect("iqm") - mean).abs() < 1e-9, "{setting}");
        iqms.push(mean);
    }
    assert!(iqms[0] >= iqms[1], "best first: {iqms:?}");
    // The config: the base with the winner's learning rate, trainable as is.
    let winner = settings[0]["differs"][0].as_str().expect("override");
    assert_eq!(settings[0]["differs"].as_array().map(Vec::len), Some(1), "the learning rate alone tells them apart: {v}");
    let text = std::fs::read_to_string(&best_file).expect("config");
    let lr = winner.split_once('=').expect("key=value").1;
    let config: toml::Table = text.parse().expect("toml");
    assert_eq!(config["algorithm"]["params"]["learning-rate"].as_float(), lr.parse::<f64>().ok(), "{text}");
    assert!(text.starts_with("# The best setting of experiment"), "{text}");
    let runs = dir.path().join("best-runs");
    let trained = paddock_cmd()
        .args(["train", best_file.to_str().expect("utf-8"), "--json", "--set", "total_steps=512"])
        .args(["--set", &format!("store={}", runs.display())])
        .output()
        .expect("train");
    ok(&trained);

    // The report of the same sweep: each setting's final figures are its trials' last
    // evaluations, as `exp status` gives them; the curves are drawn; the page holds them.
    let report = dir.path().join("report");
    let out = paddock_cmd().args(["report", &at, "-o", report.to_str().expect("utf-8")]).output().expect("report");
    let said = ok(&out);
    assert!(said.contains("4 runs in 2 settings"), "{said}");
    let r: Value = serde_json::from_slice(&std::fs::read(report.join("report.json")).expect("report.json")).expect("json");
    let rows = r["finals"]["eval/return_mean"].as_array().expect("final table");
    assert_eq!(rows.len(), 2, "{r}");
    for row in rows {
        let runs = row["runs"].as_array().expect("runs");
        let mut sum = 0.0;
        for run in runs {
            let id = run[0].as_str().expect("id");
            let t = trials.iter().find(|t| t["id"] == id).expect("trial");
            let last = t["state"]["result"]["last_eval"].as_f64().expect("last eval");
            assert_eq!(run[1].as_f64(), Some(last), "{id}: the report's final value is the trial's last evaluation");
            sum += last;
        }
        let mean = sum / runs.len() as f64;
        assert!((row["stats"]["mean"].as_f64().expect("mean") - mean).abs() < 1e-9, "{row}");
    }
    for png in ["eval-return_mean.png", "rollout-return_mean.png"] {
        let img = tiny_skia::Pixmap::load_png(report.join(png)).expect("a PNG that decodes");
        let drawn = img.data().chunks_exact(4).filter(|p| p[..3] != [255, 255, 255]).count();
        assert!(drawn > (img.width() * img.height()) as usize / 100, "{png} is drawn: {drawn} pixels");
    }
    let page = std::fs::read_to_string(report.join("index.html")).expect("page");
    assert!(page.contains("<img src=\"eval-return_mean.png\"") && page.contains("learning-rate"), "{page}");
    // The page in a real browser (headless Chromium, installed by scripts/setup.sh): its
    // screenshot shows the first setting's curve in its colour.
    let shot = dir.path().join("shot.png");
    let browser = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1100,1400"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", report.join("index.html").display()))
        .output()
        .expect("chromium (scripts/setup.sh installs it)");
    assert!(browser.status.success(), "chromium: {}", String::from_utf8_lossy(&browser.stderr));
    let img = tiny_skia::Pixmap::load_png(&shot).expect("a screenshot");
    let first = [230u8, 25, 75];
    let line = img.data().chunks_exact(4).filter(|p| p[..3] == first).count();
    assert!(line > 200, "the screenshot shows the first curve ({line} pixels of its colour)");
    // A metric no run reports is named, with the ones they do.
    let out =
        paddock_cmd().args(["report", &at, "-o", report.to_str().expect("utf-8"), "--metric", "eval/sucess"]).output().expect("report");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--metric eval/sucess: no run reports it") && err.contains("eval/return_mean"), "{err}");
}

/// A study (`[search]`: TPE, the median pruner) run by three local workers, killed with
/// SIGKILL — the runner and every worker at once — after some of its trials are final, then
/// run again: it ends with exactly its budget, each trial number made once, and the trials
/// final before the kill neither trained again nor replaced; its best trial is named.
#[test]
fn a_study_killed_with_sigkill_resumes_and_ends_with_exactly_its_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = experiment(
        dir.path(),
        "[trial]\nlease_s = 10\n[search]\nmetric = \"eval/return_mean\"\ntrials = 9\nparallelism = 3\nstartup_trials = 3\n[search.params]\n\"algorithm.params.learning-rate\" = { log_uniform = [1e-4, 1e-2] }\n\"algorithm.params.gamma\" = { uniform = [0.9, 0.999] }\n[search.pruner]\nkind = \"median\"\nstartup_trials = 2\nwarmup_steps = 4096\n",
    );
    let store = dir.path().join("store");
    let at = submit_to_local(dir.path(), &file, 12_288);
    let run = || {
        let mut c = paddock_cmd();
        c.args(["exp", "run", file.to_str().expect("utf-8"), "--local", "--store", store.to_str().expect("utf-8")])
            .args(["--set", "set.total_steps=12288"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let mut runner = run().spawn().expect("exp run");
    let finals = |s: &Value| -> Vec<(String, u64)> {
        s["trials"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter(|t| ["done", "pruned"].contains(&t["state"]["status"].as_str().unwrap_or("")))
                    .map(|t| (t["id"].as_str().unwrap_or("").to_string(), t["state"]["epoch"].as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let start = Instant::now();
    let before = loop {
        let s = status(&at);
        let f = finals(&s);
        if f.len() >= 3 {
            break f;
        }
        assert!(start.elapsed() < Duration::from_secs(180), "three trials did not finish: {s}");
        assert!(runner.try_wait().expect("wait").is_none(), "the runner ended before the kill: {s}");
        std::thread::sleep(Duration::from_millis(100));
    };
    // Every process of the study at once, as a machine that loses power.
    let workers = workers_of(&at);
    assert!(!workers.is_empty(), "workers run");
    signal(runner.id(), libc::SIGKILL);
    for w in &workers {
        signal(*w, libc::SIGKILL);
    }
    let _ = runner.wait();
    let made_at_kill = std::fs::read_dir(Path::new(&at).join("study/trials")).expect("study").count();
    assert!(made_at_kill < 9, "the kill came before the study was through: {made_at_kill} made");
    let out = run().output().expect("exp run");
    let text = ok(&out);
    let s = status(&at);
    let trials = s["trials"].as_array().expect("trials");
    assert_eq!(trials.len(), 9, "exactly the budget: {s}");
    assert!(trials.iter().all(|t| ["done", "pruned"].contains(&t["state"]["status"].as_str().unwrap_or(""))), "all final: {s}");
    let mut names: Vec<String> = std::fs::read_dir(Path::new(&at).join("study/trials"))
        .expect("study")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let expected: Vec<String> = (0..9).map(|n| format!("{n:06}.json")).collect();
    assert_eq!(names, expected, "each number made once, none skipped");
    let ids: std::collections::BTreeSet<&str> = trials.iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids.len(), 9, "no trial twice: {s}");
    for (id, epoch) in &before {
        let t = trials.iter().find(|t| t["id"] == id.as_str()).expect("a trial final before the kill is still there");
        assert_eq!(t["state"]["epoch"].as_u64(), Some(*epoch), "{id} was not trained again: {t}");
    }
    assert!(text.contains("study: 9 of 9 trials made") && text.contains("best so far: s0"), "{text}");
}

/// Population-based training on CartPole PPO by two local workers: two members, two
/// generations. In the second, the worse member continues from the better one's checkpoint
/// (its lineage says so) with its parameters (perturbed by × 1: unchanged), and so trains
/// exactly as the better member's own continuation does: the same `metrics.jsonl` bytes.
#[test]
fn pbt_copies_the_better_members_checkpoint_and_it_resumes_exactly() {
    pbt_study(None);
}

/// The same study with its state in S3 (moto): the trials made by conditional creates on
/// S3, the copy fetched from the store.
#[test]
fn a_pbt_study_in_s3_copies_and_resumes_the_same_way() {
    let moto = common::moto::Moto::start();
    pbt_study(Some(&moto));
}

fn pbt_study(moto: Option<&common::moto::Moto>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = experiment(
        dir.path(),
        "[search]\nmetric = \"eval/return_mean\"\nsampler = \"pbt\"\npopulation = 2\ninterval = 2048\nquantile = 0.5\nperturb = [1.0]\nresample = 0.0\nseed = 3\n[search.params]\n\"algorithm.params.learning-rate\" = { log_uniform = [1e-4, 1e-2] }\n",
    );
    let store = dir.path().join("store");
    let (at, store) = match moto {
        Some(m) => (submit_to_moto(m, &file, 4096), "s3://bkt/exps".to_string()),
        None => (submit_to_local(dir.path(), &file, 4096), store.to_str().expect("utf-8").to_string()),
    };
    let args = ["exp", "run", file.to_str().expect("utf-8"), "--local", "-j", "2", "--store", &store, "--set", "set.total_steps=4096"];
    let out = match moto {
        Some(m) => m.command(&args).env("PADDOCK_WORK_DIR", dir.path().join("work")).output(),
        None => paddock_cmd().args(args).output(),
    }
    .expect("exp run");
    ok(&out);
    // The study's files, local or fetched from S3.
    let (s, at) = match moto {
        Some(m) => {
            let copy = dir.path().join("copy");
            let key = at.strip_prefix("s3://bkt/").expect("s3");
            let listing = String::from_utf8_lossy(&m.http("GET", &format!("/bkt?list-type=2&prefix={key}/"), b"").1).into_owned();
            for k in listing.split("<Key>").skip(1).filter_map(|x| x.split("</Key>").next()) {
                if k.contains("/study/") || k.ends_with("metrics.jsonl") {
                    let to = copy.join(k.strip_prefix(&format!("{key}/")).expect("under the experiment"));
                    std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
                    std::fs::write(&to, m.http("GET", &format!("/bkt/{k}"), b"").1).expect("write");
                }
            }
            (moto_status(m, &at), copy)
        }
        None => (status(&at), PathBuf::from(&at)),
    };
    let trials = s["trials"].as_array().expect("trials");
    assert_eq!(trials.len(), 4, "population × generations: {s}");
    assert!(trials.iter().all(|t| t["state"]["status"] == "done"), "{s}");
    let read = |n: u64| -> Value {
        serde_json::from_slice(&std::fs::read(at.join(format!("study/trials/{n:06}.json"))).expect("study trial")).expect("json")
    };
    let (g0, g1) = ([read(0), read(1)], [read(2), read(3)]);
    for (m, t) in g1.iter().enumerate() {
        assert_eq!((t["lineage"]["member"].as_u64(), t["lineage"]["generation"].as_u64()), (Some(m as u64), Some(1)), "{t}");
    }
    let copier = g1.iter().position(|t| t["lineage"]["copied"].is_u64()).expect("one member copied the other");
    let donor = 1 - copier;
    assert_eq!(g1[copier]["lineage"]["copied"].as_u64(), Some(donor as u64), "{}", g1[copier]);
    assert!(g1[donor]["lineage"]["copied"].is_null(), "the better member goes on with its own: {}", g1[donor]);
    let donor_id = g0[donor]["trial"]["id"].as_str().expect("id");
    for t in &g1 {
        assert_eq!(t["trial"]["start_from"]["trial"].as_str(), Some(donor_id), "both continue the better member's checkpoint: {t}");
        assert_eq!(t["trial"]["start_from"]["checkpoint"]["step"], 2048, "{t}");
        assert_eq!(t["params"], g0[donor]["params"], "the better member's parameters (× 1): {t}");
    }
    let scores = &g1[copier]["lineage"]["scores"];
    assert!(scores[0].as_f64() < scores[1].as_f64(), "the copier scored below the member it copied: {scores}");
    let metrics =
        |t: &Value| std::fs::read(at.join(format!("trials/{}/e1/metrics.jsonl", t["trial"]["id"].as_str().expect("id")))).expect("metrics");
    let (a, b) = (metrics(&g1[0]), metrics(&g1[1]));
    assert!(!a.is_empty() && a == b, "the copy resumes exactly as the original goes on");
    let text = String::from_utf8_lossy(&a);
    assert!(text.lines().filter(|l| l.contains("eval/return_mean")).count() >= 2, "both generations' evaluations: {text}");
}

/// A study whose store comes back empty while it runs: the workers keep copies of the study
/// trials they made, `exp restore` puts those back with the trials' states and runs, and
/// the same command then ends the study with exactly its budget — no number made twice, the
/// finished trials not trained again.
#[test]
fn a_study_whose_store_comes_back_empty_is_restored_with_its_trials() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    let file = experiment(
        dir.path(),
        "[trial]\nlease_s = 30\n[search]\nmetric = \"eval/return_mean\"\nsampler = \"random\"\ntrials = 4\nparallelism = 2\n[search.params]\n\"algorithm.params.learning-rate\" = { log_uniform = [1e-4, 1e-2] }\n",
    );
    let store = dir.path().join("store");
    let at = submit_to_local(dir.path(), &file, 65536);
    let run_cmd = || {
        let mut c = paddock_cmd();
        c.args(["exp", "run", file.to_str().expect("utf-8"), "--local", "-j", "2", "--store", store.to_str().expect("utf-8")])
            .args(["--set", "set.total_steps=65536"])
            .env("PADDOCK_WORK_DIR", &work)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let runner = run_cmd().spawn().expect("exp run");
    let start = Instant::now();
    let made = loop {
        assert!(start.elapsed() < Duration::from_secs(240), "the study did not get going: {}", status(&at));
        std::thread::sleep(Duration::from_millis(200));
        let s = status(&at);
        let Some(trials) = s["trials"].as_array() else { continue };
        let running = trials.iter().any(|t| t["state"]["status"] == "running" && t["state"]["checkpoint"].is_object());
        let made: Vec<String> = std::fs::read_dir(Path::new(&at).join("study/trials"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        if running && made.len() >= 2 {
            break made;
        }
    };
    // The store loses everything of the experiment (moved away at once, as workers write).
    std::fs::rename(&at, dir.path().join("lost")).expect("lose the experiment");
    let out = runner.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("paddock exp restore"), "the runner says what to do: {err}");
    let out = paddock_cmd().args(["exp", "restore", &at, "--json", "--from"]).arg(work.join("workers")).output().expect("restore");
    let restored: Value = serde_json::from_str(ok(&out).trim()).expect("json");
    assert!(restored["study_trials"].as_u64() >= Some(made.len() as u64), "every study trial made before the loss: {restored} ({made:?})");
    let before: Vec<(String, String)> = status(&at)["trials"]
        .as_array()
        .expect("trials")
        .iter()
        .filter(|t| t["state"]["status"] == "done")
        .map(|t| (t["id"].as_str().unwrap_or("").to_string(), t["state"]["result"]["run"].as_str().unwrap_or("").to_string()))
        .collect();
    ok(&run_cmd().output().expect("exp run"));
    let mut names: Vec<String> = std::fs::read_dir(Path::new(&at).join("study/trials"))
        .expect("study")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, (0..4).map(|n| format!("{n:06}.json")).collect::<Vec<_>>(), "each number once");
    let s = status(&at);
    let trials = s["trials"].as_array().expect("trials");
    assert_eq!(trials.len(), 4, "exactly the budget: {s}");
    assert!(trials.iter().all(|t| t["state"]["status"] == "done"), "{s}");
    for (id, run) in &before {
        let t = trials.iter().find(|t| t["id"] == id.as_str()).expect("a trial done before the loss is still there");
        assert_eq!(t["state"]["result"]["run"].as_str(), Some(run.as_str()), "not trained again: {t}");
    }
}
