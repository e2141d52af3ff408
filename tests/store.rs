//! Runs in an S3 store, against a real S3-compatible server (`moto_server` on loopback):
//! training with `store = "s3://…"`, SIGKILL and `--resume s3://…` from a machine without
//! the local copy, `eval s3://…`, `runs ls/pull`, and the server dying mid-run.

use crate::common;

use common::moto::Moto;
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "paddock failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The runs of `s3://bkt/runs` as `runs ls --json` prints them.
fn runs(moto: &Moto, work: &Path) -> Vec<Value> {
    let out = moto.paddock(&["runs", "ls", "s3://bkt/runs", "--json"], &[("PADDOCK_WORK_DIR", work)]);
    ok(&out).lines().map(|l| serde_json::from_str(l).expect("json line")).collect()
}

/// Starts a long CartPole PPO run into the S3 store; returns the child and waits until `runs
/// ls` shows a complete checkpoint on the server.
fn start_run(moto: &Moto, work: &Path, total: u64) -> (std::process::Child, String) {
    let total = format!("total_steps={total}");
    let mut child = moto
        .command(&[
            "train",
            "configs/cartpole-ppo.toml",
            "--json",
            "--set",
            "store=s3://bkt/runs",
            "--set",
            &total,
            "--set",
            "train.checkpoint_every=4096",
            "--set",
            "train.stop_at_return=1e9",
            "--set",
            "train.eval_every=1000000",
            "--set",
            "algorithm.device=cpu",
            "--set",
            "train.threads=1",
        ])
        .env("PADDOCK_WORK_DIR", work)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start paddock train");
    let start = Instant::now();
    loop {
        let r = runs(moto, work);
        if let Some(run) = r.first()
            && run["latest_checkpoint"].as_u64().is_some()
        {
            return (child, run["name"].as_str().expect("name").to_string());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut err).ok();
            panic!("the run ended ({status}) before a checkpoint reached S3:\n{err}");
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no complete checkpoint on S3 after 120 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Steps of every metrics line with a `step` field.
fn metric_steps(text: &str) -> Vec<u64> {
    text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()?.get("step")?.as_u64()).collect()
}

#[test]
fn an_s3_run_killed_resumes_from_s3_on_a_clean_machine_and_evaluates_from_s3() {
    let moto = Moto::start();
    let work = tempfile::tempdir().expect("tempdir");
    let (mut child, name) = start_run(&moto, work.path(), 200_000);
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    let at = format!("s3://bkt/runs/{name}");

    // Another machine: no local working copy at all.
    let other = tempfile::tempdir().expect("tempdir");
    let before = runs(&moto, other.path());
    let killed_at = before[0]["latest_checkpoint"].as_u64().expect("a complete checkpoint");
    let out = moto.paddock(&["train", "--resume", &at, "--json"], &[("PADDOCK_WORK_DIR", other.path())]);
    let summary: Value = serde_json::from_str(ok(&out).trim()).expect("summary json");
    assert_eq!(summary["steps"], 200_000, "the resumed run finishes");
    assert_eq!(summary["store_location"], at.as_str());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("checkpoint {killed_at:012}")), "it resumed from the newest checkpoint on S3: {err}");

    // What S3 holds now: the finished run, metrics without a gap or a repeat.
    let after = runs(&moto, other.path());
    assert_eq!(after[0]["state"], "finished", "{after:?}");
    assert_eq!(after[0]["step"], 200_000);
    let (status, metrics) = moto.http("GET", &format!("/bkt/runs/{name}/metrics.jsonl"), b"");
    assert_eq!(status, 200);
    let steps = metric_steps(&String::from_utf8_lossy(&metrics));
    assert!(steps.windows(2).all(|w| w[0] <= w[1]), "metrics on S3 are in step order after the resume");
    assert_eq!(steps.last().copied(), Some(200_000));

    // eval from S3 (newest checkpoint, and one named), and `runs pull`.
    let out = moto.paddock(&["eval", &at, "--episodes", "3", "--json"], &[]);
    let e: Value = serde_json::from_str(ok(&out).trim()).expect("eval json");
    assert_eq!(e["step"], 200_000);
    assert_eq!(e["returns"].as_array().map(Vec::len), Some(3));
    let one = format!("{at}/checkpoints/{:012}", 200_000);
    let out = moto.paddock(&["eval", &one, "--episodes", "2", "--json"], &[]);
    let e: Value = serde_json::from_str(ok(&out).trim()).expect("eval json");
    assert_eq!(e["checkpoint"], one.as_str());
    let dest = other.path().join("pulled");
    let out = moto.paddock(&["runs", "pull", &at, "--out", dest.to_str().expect("utf-8")], &[]);
    assert!(ok(&out).contains("complete checkpoint"));
    assert!(dest.join("config.toml").exists() && dest.join("metrics.jsonl").exists() && dest.join("plugins.lock").exists());
    let out = common::paddock(&["eval", dest.to_str().expect("utf-8"), "--episodes", "2"]);
    ok(&out);

    // Bad input: a run that is not there, a store that is not S3-shaped.
    let out = moto.paddock(&["eval", "s3://bkt/runs/no-such-run"], &[]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("s3://bkt/runs/no-such-run is not a run"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = moto.paddock(&["train", "--resume", "s3://bkt"], &[("PADDOCK_WORK_DIR", other.path())]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("names no run"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_s3_server_dying_mid_run_loses_nothing_and_no_partial_checkpoint_is_loadable() {
    let mut moto = Moto::start();
    let work = tempfile::tempdir().expect("tempdir");
    let (child, name) = start_run(&moto, work.path(), 150_000);
    // The server dies while the run uploads metrics and checkpoints, and comes back empty.
    moto.stop();
    std::thread::sleep(Duration::from_secs(3));
    moto.restart();
    let out = child.wait_with_output().expect("wait");
    let summary: Value = serde_json::from_str(ok(&out).trim()).expect("summary json");
    assert_eq!(summary["steps"], 150_000, "the run went on through the outage");
    let log = std::fs::read_to_string(Path::new(summary["run_dir"].as_str().expect("dir")).join("log.txt")).expect("log");
    // Either a request failed (logged, then "reachable again") or the SDK's own retries
    // bridged the outage and the mirror's check found the objects the restart lost.
    assert!(log.contains("uploading the run again"), "the outage and the recovery are logged:\n{log}");

    // A checkpoint whose upload broke off: files without the COMPLETE marker.
    let at = format!("s3://bkt/runs/{name}");
    assert_eq!(moto.http("PUT", &format!("/bkt/runs/{name}/checkpoints/999999999999/state.json"), b"{\"partial\":").0, 200);
    let r = runs(&moto, work.path());
    assert_eq!(r[0]["latest_checkpoint"], 150_000, "the partial checkpoint is not listed as loadable: {r:?}");
    assert_eq!(r[0]["state"], "finished");

    // Everything on the server again: every complete checkpoint fetches whole and matches
    // its marker (`runs pull` checks each file's size and sha256).
    let dest = work.path().join("pulled");
    let out = moto.paddock(&["runs", "pull", &at, "--out", dest.to_str().expect("utf-8")], &[]);
    ok(&out);
    let pulled: Vec<String> = std::fs::read_dir(dest.join("checkpoints"))
        .expect("checkpoints")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(pulled.contains(&format!("{:012}", 150_000)), "{pulled:?}");
    assert!(!pulled.iter().any(|p| p.starts_with("9999")), "{pulled:?}");
    let (_, metrics) = moto.http("GET", &format!("/bkt/runs/{name}/metrics.jsonl"), b"");
    let local = std::fs::read(Path::new(summary["run_dir"].as_str().expect("dir")).join("metrics.jsonl")).expect("metrics");
    assert_eq!(metrics, local, "metrics on S3 equal the run's own after the outage");
    let out = moto.paddock(&["eval", &at, "--episodes", "2", "--json"], &[]);
    let e: Value = serde_json::from_str(ok(&out).trim()).expect("eval json");
    assert_eq!(e["step"], 150_000);

    // A checkpoint whose file was changed on the server is refused by name.
    let key = format!("/bkt/runs/{name}/checkpoints/{:012}/state.json", 150_000);
    assert_eq!(moto.http("PUT", &key, b"{}").0, 200);
    let out = moto.paddock(&["eval", &at, "--episodes", "1"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("state.json does not match its marker"), "{err}");
}

/// The conditional writes that fence a stale worker, on a real S3 server and on local disk:
/// a write at the version read succeeds and moves the version on; a write at an older
/// version (another writer came between) is refused and changes nothing.
#[test]
fn conditional_writes_refuse_a_writer_whose_version_is_stale() {
    let moto = Moto::start();
    let s3 = paddock::store::S3Settings { endpoint: Some(moto.endpoint()), region: Some("us-east-1".into()), ..Default::default() };
    let dir = tempfile::tempdir().expect("tempdir");
    let local = paddock::store::open(&paddock::store::Location::Local(dir.path().to_path_buf()), &s3).expect("local");
    let stores = vec![local, {
        temp_env_credentials();
        paddock::store::open(&paddock::store::Location::parse("s3://bkt/exp").expect("uri"), &s3).expect("s3")
    }];
    for objects in stores {
        let at = objects.location();
        let t0 = objects.create_tagged("trials/a/state.json", b"epoch 0").expect("create").expect("new");
        assert!(objects.create_tagged("trials/a/state.json", b"again").expect("create").is_none(), "{at}: created once");
        let t1 = objects.put_if_match("trials/a/state.json", b"epoch 1", &t0).expect("put").expect("at the version read");
        assert_ne!(t0, t1);
        assert!(objects.put_if_match("trials/a/state.json", b"stale epoch 1", &t0).expect("put").is_none(), "{at}: a stale tag is refused");
        let (data, tag) = objects.get_tagged("trials/a/state.json").expect("get").expect("there");
        assert_eq!((data.as_slice(), tag.as_str()), (&b"epoch 1"[..], t1.as_str()), "{at}: the refused write changed nothing");
        // Nothing to match is not "another writer": the object is gone, and says so.
        let gone = objects.put_if_match("trials/b/state.json", b"x", &t1).expect_err("nothing to match");
        assert!(matches!(paddock::store::store_error(&gone), Some(paddock::store::StoreError::Vanished(_))), "{at}: {gone:#}");
        let listed: Vec<String> = objects.list("trials").expect("list").into_iter().map(|e| e.key).collect();
        assert_eq!(listed, vec!["trials/a/state.json".to_string()], "{at}: lock files are not objects");
    }
}

/// Static test credentials for the SDK (moto checks that a request names some).
fn temp_env_credentials() {
    // SAFETY: set before the first S3 client of this test reads them; every test that talks
    // to moto uses the same values.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    }
}

/// `paddock watch s3://…` follows a store: the monitor's files are copied, and copied again
/// when they change; checkpoints and carried plugins are not.
#[test]
fn watching_an_s3_store_follows_the_files_the_monitor_reads() {
    let moto = Moto::start();
    temp_env_credentials();
    for (key, body) in [
        ("runs/r1/config.toml", "seed = 1\n"),
        ("runs/r1/status.json", "{}"),
        ("runs/r1/metrics.jsonl", "{\"step\":1}\n"),
        ("runs/r1/checkpoints/000000000001/learner.pt", "weights"),
        ("runs/r1/plugins/ppo-ab.wasm", "wasm"),
        ("runs/not-a-run/x.txt", "x"),
    ] {
        assert_eq!(moto.http("PUT", &format!("/bkt/{key}"), body.as_bytes()).0, 200);
    }
    let s3 = paddock::store::S3Settings { endpoint: Some(moto.endpoint()), region: Some("us-east-1".into()), ..Default::default() };
    let at = paddock::store::Location::parse("s3://bkt/runs").expect("uri");
    let follower = paddock::monitor::follow::Follower::start(&at, &s3).expect("follow");
    let run = follower.path.join("r1");
    assert_eq!(std::fs::read_to_string(run.join("metrics.jsonl")).expect("metrics"), "{\"step\":1}\n");
    assert!(run.join("config.toml").exists() && run.join("status.json").exists());
    assert!(!run.join("checkpoints").exists() && !run.join("plugins").exists(), "checkpoints and plugins stay in S3");
    assert!(!follower.path.join("not-a-run").exists());
    assert_eq!(moto.http("PUT", "/bkt/runs/r1/metrics.jsonl", b"{\"step\":1}\n{\"step\":2}\n").0, 200);
    let start = Instant::now();
    while std::fs::read_to_string(run.join("metrics.jsonl")).unwrap_or_default().lines().count() < 2 {
        assert!(start.elapsed() < Duration::from_secs(30), "the change was not followed");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A store with no runs is an error that says so.
    let empty = paddock::store::Location::parse("s3://bkt/nothing-here").expect("uri");
    let err = paddock::monitor::follow::Follower::start(&empty, &s3).err().expect("no runs");
    assert!(err.to_string().contains("holds no runs"), "{err}");
}
