//! Experiments on EC2 Spot capacity, against `moto_server` (S3, SQS, EC2, CloudFormation,
//! IAM): the CloudFormation template creates its stack; `exp run --fleet` requests what
//! the file asks for (instance types, capacity, price, the launch template with its user
//! data, hop limit 2 and tags) and never starts two fleets for one experiment; cancel and
//! completion leave no running instance with the experiment's tag (orphans included);
//! trial ids travel over SQS with a dead-letter queue, and a preempted trial goes back as a
//! new message. moto keeps no fleet capacity and has a flat spot price, so these tests
//! check requests and teardown, and cost is checked against a price fixture
//! (`host/src/exp/cost.rs`, `tests/fixtures/spot-prices.json`).

use crate::common;
use crate::common::moto::Moto;

use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// `tests/fixtures/aws.py` against the server: one JSON object.
fn aws(moto: &Moto, args: &[&str]) -> Value {
    let out = std::process::Command::new(common::root().join(".venv/bin/python"))
        .arg(common::root().join("tests/fixtures/aws.py"))
        .arg(moto.endpoint())
        .args(args)
        .output()
        .expect("python");
    assert!(out.status.success(), "aws.py {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn ok(out: &std::process::Output) -> (String, String) {
    let (o, e) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "paddock failed:\n{o}\n{e}");
    (o, e)
}

/// An experiment file over CartPole PPO with a `[fleet]` on the stack's bucket.
fn experiment(dir: &Path, seeds: u32, extra: &str) -> std::path::PathBuf {
    let f = dir.join("sweep.toml");
    let text = format!(
        "base = {:?}\nseeds = {seeds}\n[set]\ntotal_steps = 2048\n\"algorithm.device\" = \"cpu\"\n\"train.checkpoint_every\" = 1024\n\
         [fleet]\nstore = \"s3://team/experiments\"\nregion = \"us-east-1\"\ninstance_types = [\"c7i.xlarge\", \"m7i.xlarge\"]\n\
         target_capacity = 2\nmax_capacity = 4\nmax_price = 0.08\nimage = \"ghcr.io/team/paddock-worker:cpu\"\nidle_timeout_s = 90\n{extra}",
        common::root().join("configs/cartpole-ppo.toml").display().to_string()
    );
    std::fs::write(&f, text).expect("write");
    f
}

fn live(described: &Value) -> Vec<String> {
    described["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .filter(|i| matches!(i["state"].as_str(), Some("pending" | "running")))
        .map(|i| i["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn work_dir(dir: &Path, name: &str) -> std::path::PathBuf {
    dir.join(name)
}

#[test]
fn a_fleet_from_the_stack_asks_for_what_the_file_says_and_leaves_nothing_running() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // The CloudFormation template creates its stack: bucket, role and profile, a security
    // group with no inbound rule, the base launch template (IMDSv2, hop limit 2).
    let stack = aws(&moto, &["stack", common::root().join("docker/fleet.cfn.yaml").to_str().expect("utf-8"), "team"]);
    assert_eq!(stack["status"], "CREATE_COMPLETE", "{stack}");
    assert_eq!(stack["outputs"]["Store"], "s3://team/experiments");
    assert_eq!(stack["template"]["MetadataOptions"]["HttpPutResponseHopLimit"], 2, "{stack}");
    assert_eq!(stack["template"]["MetadataOptions"]["HttpTokens"], "required");
    assert!(stack["ingress"].as_array().is_some_and(|g| g.len() == 1 && g[0].as_array().is_some_and(Vec::is_empty)), "{stack}");
    assert_eq!(stack["profiles"].as_array().map(Vec::len), Some(1));

    let file = experiment(dir.path(), 2, "");
    let run = |extra: &[&str]| {
        let mut args = vec!["exp", "run", file.to_str().expect("utf-8"), "--fleet", "--detach"];
        args.extend_from_slice(extra);
        moto.command(&args).env("PADDOCK_WORK_DIR", work_dir(dir.path(), "controller")).output().expect("run")
    };
    let (_, err) = ok(&run(&[]));
    assert!(err.contains("started fleet fleet-"), "{err}");
    let id = err.split("experiment ").nth(1).and_then(|r| r.split(' ').next()).expect("id").to_string();
    let at = format!("s3://team/experiments/{id}");
    let d = aws(&moto, &["describe", &id]);
    let fleets = d["fleets"].as_array().expect("fleets");
    assert_eq!(fleets.len(), 1, "{d}");
    let f = &fleets[0];
    assert_eq!((f["Type"].as_str(), f["FleetState"].as_str()), (Some("maintain"), Some("active")), "{f}");
    assert_eq!(f["TargetCapacitySpecification"]["TotalTargetCapacity"], 2);
    assert_eq!(f["TargetCapacitySpecification"]["DefaultTargetCapacityType"], "spot");
    assert_eq!(f["SpotOptions"]["AllocationStrategy"], "capacity-optimized");
    let overrides = &f["LaunchTemplateConfigs"][0]["Overrides"];
    let types: Vec<&str> = overrides.as_array().expect("overrides").iter().filter_map(|o| o["InstanceType"].as_str()).collect();
    assert_eq!(types, ["c7i.xlarge", "m7i.xlarge"]);
    assert!(overrides.as_array().expect("o").iter().all(|o| o["MaxPrice"] == "0.0800"), "{overrides}");
    assert!(f["Tags"].as_array().expect("tags").iter().any(|t| t["Key"] == "paddock:experiment" && t["Value"] == id.as_str()));
    // The experiment's launch template: the stack's AMI, profile and group, its user data,
    // hop limit 2, the tag on its instances.
    let t = &d["templates"][0];
    assert_eq!(t["ImageId"], stack["ami"], "{t}");
    assert_eq!(t["IamInstanceProfile"]["Arn"], stack["template"]["IamInstanceProfile"]["Arn"]);
    assert_eq!(t["SecurityGroupIds"], stack["template"]["SecurityGroupIds"]);
    assert_eq!(t["MetadataOptions"]["HttpPutResponseHopLimit"], 2);
    let user_data = t["UserData"].as_str().expect("user data");
    for want in [
        format!("PADDOCK_EXPERIMENT='{at}'"),
        "'ghcr.io/team/paddock-worker:cpu'".into(),
        "PADDOCK_QUEUE=1".into(),
        "PADDOCK_IDLE_TIMEOUT='90'".into(),
        // Working copies on the instance's disk, kept when the store lost the experiment.
        "-e PADDOCK_WORK_DIR=/var/lib/paddock/work".into(),
    ] {
        assert!(user_data.contains(&want), "user data lacks {want}:\n{user_data}");
    }
    assert!(t["TagSpecifications"].to_string().contains(&id), "{t}");
    assert_eq!(live(&d).len(), 2, "moto launched the fleet's spot instances: {d}");

    // A second controller attaches to the fleet instead of starting another.
    let (_, err) = ok(&run(&[]));
    assert!(err.contains("already") && !err.contains("started fleet"), "{err}");
    assert_eq!(aws(&moto, &["describe", &id])["fleets"].as_array().map(Vec::len), Some(1));

    // Status reports the fleet and the queue.
    let (out, _) = ok(&moto.command(&["exp", "status", &at, "--json"]).output().expect("status"));
    let s: Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(s["fleet"]["record"]["state"], "active", "{s}");
    let running: u64 = s["fleet"]["bill"]["running"].as_object().map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    assert_eq!(running, 2, "the fleet's instances, by type and zone: {s}");
    assert_eq!((s["queue"]["waiting"].as_u64(), s["queue"]["dead_letters"].as_u64()), (Some(2), Some(0)), "{s}");
    let (text, _) = ok(&moto.command(&["exp", "status", &at]).output().expect("status"));
    assert!(text.contains("fleet: fleet fleet-") && text.contains("cost: $") && text.contains("queue: 2 waiting"), "{text}");

    // Cancel: the fleet goes with its instances, and so does an orphan carrying the tag.
    let orphan = aws(&moto, &["orphan", &id, stack["ami"].as_str().expect("ami")]);
    let (_, err) = ok(&moto.command(&["exp", "cancel", &at]).output().expect("cancel"));
    assert!(err.contains("deleted fleet"), "{err}");
    let d = aws(&moto, &["describe", &id]);
    assert_eq!(live(&d), Vec::<String>::new(), "nothing with the tag runs after a cancel: {d}");
    assert!(d["instances"].to_string().contains(orphan["id"].as_str().expect("id")));
    assert!(d["templates"].as_array().is_some_and(Vec::is_empty), "the experiment's launch template is gone");
    // Cancelling again is harmless.
    ok(&moto.command(&["exp", "cancel", &at]).output().expect("cancel"));

    // Run it again (generation 2), and let two workers (as the instances would) take the
    // trials from the queue: the last one out deletes the fleet and the queues.
    let (_, err) = ok(&run(&[]));
    assert!(err.contains("started fleet") && err.contains("2 open trials sent to the queue again"), "{err}");
    let workers: Vec<_> = (0..2)
        .map(|i| {
            moto.command(&["worker", &at, "--queue", "--json"])
                .env("PADDOCK_WORK_DIR", work_dir(dir.path(), &format!("w{i}")))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("worker")
        })
        .collect();
    let mut committed = 0;
    for w in workers {
        let out = w.wait_with_output().expect("wait");
        let (o, _) = ok(&out);
        let summary: Value = serde_json::from_str(o.trim()).expect("json");
        assert_eq!(summary["left"], "done", "{summary}");
        committed += summary["committed"].as_array().map_or(0, Vec::len);
    }
    assert_eq!(committed, 2, "each trial committed once");
    let (out, _) = ok(&moto.command(&["exp", "status", &at, "--json"]).output().expect("status"));
    let s: Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(s["counts"]["done"], 2, "{s}");
    assert_eq!(
        (s["fleet"]["record"]["state"].as_str(), s["fleet"]["record"]["reason"].as_str()),
        (Some("deleted"), Some("complete")),
        "{s}"
    );
    assert_eq!(s["fleet"]["record"]["generation"], 2);
    let d = aws(&moto, &["describe", &id]);
    assert_eq!(live(&d), Vec::<String>::new(), "nothing with the tag runs after completion: {d}");
    let dispatch: Value =
        serde_json::from_slice(&moto.http("GET", &format!("/team/experiments/{id}/dispatch.json"), b"").1).expect("dispatch");
    assert!(aws(&moto, &["queue", dispatch["queue"].as_str().expect("url")])["attributes"].is_null(), "the queue is deleted at completion");
    // A worker that comes after (or was still polling when the queue went) sees the
    // experiment is over and leaves at once, not after --store-lost-after.
    let out =
        moto.command(&["worker", &at, "--queue", "--json"]).env("PADDOCK_WORK_DIR", work_dir(dir.path(), "late")).output().expect("worker");
    let (o, _) = ok(&out);
    assert_eq!(serde_json::from_str::<Value>(o.trim()).expect("json")["left"], "done", "{o}");
    // Running a finished experiment starts nothing.
    let (_, err) = ok(&run(&[]));
    assert!(err.contains("every trial is final"), "{err}");

    // The legacy Spot Fleet API, for accounts set up for it.
    let file = experiment(
        dir.path(),
        1,
        "api = \"spot-fleet\"\nspot_fleet_role = \"arn:aws:iam::123456789012:role/aws-ec2-spot-fleet-tagging-role\"\n",
    );
    let (_, err) = ok(&moto.command(&["exp", "run", file.to_str().expect("utf-8"), "--fleet", "--detach"]).output().expect("run"));
    assert!(err.contains("started spot-fleet sfr-"), "{err}");
    let id = err.split("experiment ").nth(1).and_then(|r| r.split(' ').next()).expect("id").to_string();
    let d = aws(&moto, &["describe", &id]);
    let config = &d["spot_fleets"][0]["SpotFleetRequestConfig"];
    assert_eq!(
        (config["AllocationStrategy"].as_str(), config["TargetCapacity"].as_u64()),
        (Some("capacityOptimized"), Some(1)),
        "{config}"
    );
    ok(&moto.command(&["exp", "cancel", &format!("s3://team/experiments/{id}")]).output().expect("cancel"));
    assert_eq!(live(&aws(&moto, &["describe", &id])), Vec::<String>::new());

    // A spent budget ends the fleet: moto's flat price ($0.00001 an hour) bills each of two
    // instances at least 60 s, past a budget of a ten-millionth of a dollar.
    let file = experiment(dir.path(), 3, "budget_dollars = 1e-7\n");
    let (_, err) = ok(&moto.command(&["exp", "run", file.to_str().expect("utf-8"), "--fleet"]).output().expect("run"));
    assert!(err.contains("started fleet") && err.contains("fleet deleted (budget: $0.00 spent of $0.00)"), "{err}");
    let id = err.split("experiment ").nth(1).and_then(|r| r.split(' ').next()).expect("id").to_string();
    assert_eq!(live(&aws(&moto, &["describe", &id])), Vec::<String>::new(), "nothing runs after the budget is spent");
}

/// Over SQS: a spot notice puts the trial back as a new message (preemptions never count
/// towards the dead-letter queue), a worker with nothing to take leaves after its idle
/// timeout and runs its shutdown command, a stray message is dropped, and another worker
/// finishes the trial from its checkpoint.
#[test]
fn over_the_queue_a_preempted_trial_goes_back_and_an_idle_worker_shuts_down() {
    let moto = Moto::start();
    let imds = common::imds::FakeImds::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("q.toml");
    std::fs::write(
        &file,
        format!(
            "base = {:?}\n[set]\ntotal_steps = 150000\n\"algorithm.device\" = \"cpu\"\n\"train.checkpoint_every\" = 1024\n\"train.stop_at_return\" = 1e9\n[trial]\nlease_s = 20\n",
            common::root().join("configs/cartpole-ppo.toml").display().to_string()
        ),
    )
    .expect("write");
    let (out, err) = ok(&moto
        .command(&["exp", "submit", file.to_str().expect("utf-8"), "--store", "s3://bkt/exps", "--queue"])
        .output()
        .expect("submit"));
    assert_eq!(out.trim().split(' ').next_back(), Some("--queue"), "{out}");
    let at = out.trim().strip_prefix("paddock worker ").and_then(|r| r.strip_suffix(" --queue")).expect("command").to_string();
    let url = err.split("queue ").nth(1).and_then(|r| r.split(' ').next()).expect("queue url").to_string();
    let attrs = aws(&moto, &["queue", &url])["attributes"].clone();
    let redrive: Value = serde_json::from_str(attrs["RedrivePolicy"].as_str().expect("redrive policy")).expect("json");
    assert!(redrive["deadLetterTargetArn"].as_str().is_some_and(|a| a.ends_with("-dlq")), "{redrive}");
    assert_eq!(attrs["VisibilityTimeout"], "20", "the visibility timeout is the lease");
    // Submitting again sends nothing more.
    ok(&moto.command(&["exp", "submit", file.to_str().expect("utf-8"), "--store", "s3://bkt/exps", "--queue"]).output().expect("submit"));
    aws(&moto, &["send", &url, "not-a-trial"]);

    let status = || -> Value {
        let (o, _) = ok(&moto.command(&["exp", "status", &at, "--json"]).output().expect("status"));
        serde_json::from_str(o.trim()).expect("json")
    };
    let a = moto
        .command(&["worker", &at, "--queue", "--spot-notices", &imds.endpoint(), "--json"])
        .env("PADDOCK_WORK_DIR", dir.path().join("a"))
        .env("PADDOCK_CACHE_DIR", common::root().join("target/test-cache"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("worker a");
    let start = Instant::now();
    while !status()["trials"][0]["state"]["checkpoint"].is_object() {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint");
        std::thread::sleep(Duration::from_millis(200));
    }
    let held = status()["trials"][0]["state"].clone();
    assert_eq!(held["instance"].as_str(), Some(format!("i-fake{:05}", imds.port).as_str()), "the trial records its instance: {held}");
    // B finds nothing to take (A holds the one trial): it leaves when idle and shuts down.
    let flag = dir.path().join("b-shut-down");
    let out = moto
        .command(&["worker", &at, "--queue", "--idle-timeout", "3", "--shutdown-cmd", &format!("touch {}", flag.display()), "--json"])
        .env("PADDOCK_WORK_DIR", dir.path().join("b"))
        .output()
        .expect("worker b");
    let (o, _) = ok(&out);
    let b: Value = serde_json::from_str(o.trim()).expect("json");
    assert_eq!((b["left"].as_str(), b["committed"].as_array().map(Vec::len)), (Some("idle"), Some(0)), "{b}");
    assert!(flag.exists(), "the idle worker ran its shutdown command");

    imds.raise_notice();
    let out = a.wait_with_output().expect("wait");
    let (o, _) = ok(&out);
    let summary: Value = serde_json::from_str(o.trim()).expect("json");
    assert_eq!(summary["left"], "interrupted", "{summary}");
    let s = status();
    let t = &s["trials"][0]["state"];
    assert_eq!((t["status"].as_str(), t["preemptions"].as_u64(), t["errors"].as_u64()), (Some("queued"), Some(1), Some(0)), "{s}");
    assert_eq!(t["occupancy"][0]["instance"].as_str(), held["instance"].as_str(), "the holding is recorded for cost: {t}");
    assert_eq!(
        (s["queue"]["waiting"].as_u64(), s["queue"]["in_flight"].as_u64()),
        (Some(1), Some(0)),
        "the trial went back as a new message: {s}"
    );

    let out = moto.command(&["worker", &at, "--queue", "--json"]).env("PADDOCK_WORK_DIR", dir.path().join("c")).output().expect("worker c");
    let (o, e) = ok(&out);
    let c: Value = serde_json::from_str(o.trim()).expect("json");
    assert_eq!((c["left"].as_str(), c["committed"].as_array().map(Vec::len)), (Some("done"), Some(1)), "{c}\n{e}");
    let s = status();
    let t = &s["trials"][0]["state"];
    assert_eq!((t["status"].as_str(), t["epoch"].as_u64(), t["result"]["steps"].as_u64()), (Some("done"), Some(2), Some(150000)), "{s}");
    assert_eq!(
        (s["queue"]["waiting"].as_u64(), s["queue"]["in_flight"].as_u64(), s["queue"]["dead_letters"].as_u64()),
        (Some(0), Some(0), Some(0)),
        "{s}"
    );
}

/// The step in the newest `status.json` under `dir` (a worker's working copy), if any.
fn local_step(dir: &Path) -> u64 {
    let mut best = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "status.json") {
                let step = std::fs::read(&p).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok()).and_then(|v| v["step"].as_u64());
                best = best.max(step.unwrap_or(0));
            }
        }
    }
    best
}

/// A worker cut off from its store for 30 s (connections refused, the store keeps its
/// data) keeps training through it, and once the store is back catches up: heartbeats,
/// checkpoints and metrics go up, and the trial commits once, with nothing redone.
#[test]
fn a_worker_cut_off_from_its_store_for_30_s_keeps_training_and_catches_up() {
    let moto = Moto::start();
    let proxy = common::proxy::Proxy::start(moto.port);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("long.toml");
    std::fs::write(
        &file,
        format!(
            "base = {:?}\n[set]\ntotal_steps = 600000\n\"algorithm.device\" = \"cpu\"\n\"train.checkpoint_every\" = 20000\n\"train.stop_at_return\" = 1e9\n[trial]\nlease_s = 60\n",
            common::root().join("configs/cartpole-ppo.toml").display().to_string()
        ),
    )
    .expect("write");
    let (out, _) =
        ok(&moto.command(&["exp", "submit", file.to_str().expect("utf-8"), "--store", "s3://bkt/exps"]).output().expect("submit"));
    let at = out.trim().strip_prefix("paddock worker ").expect("command").to_string();
    let work = dir.path().join("work");
    let worker = moto
        .command(&["worker", &at, "--json"])
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .env("PADDOCK_WORK_DIR", &work)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("worker");
    let status = || -> Value {
        let (o, _) = ok(&moto.command(&["exp", "status", &at, "--json"]).output().expect("status"));
        serde_json::from_str(o.trim()).expect("json")
    };
    let start = Instant::now();
    while !status()["trials"][0]["state"]["checkpoint"].is_object() {
        assert!(start.elapsed() < Duration::from_secs(120), "no checkpoint");
        std::thread::sleep(Duration::from_millis(200));
    }
    proxy.cut(true);
    let at_cut = local_step(&work);
    std::thread::sleep(Duration::from_secs(30));
    let after = local_step(&work);
    proxy.cut(false);
    assert!(after > at_cut, "the worker kept training while the store was away ({at_cut} → {after})");
    let out = worker.wait_with_output().expect("wait");
    let (o, e) = ok(&out);
    let summary: Value = serde_json::from_str(o.trim()).expect("json");
    assert_eq!((summary["left"].as_str(), summary["committed"].as_array().map(Vec::len)), (Some("done"), Some(1)), "{summary}\n{e}");
    let t = status()["trials"][0]["state"].clone();
    assert_eq!(
        (t["status"].as_str(), t["epoch"].as_u64(), t["preemptions"].as_u64(), t["errors"].as_u64(), t["redone_steps"].as_u64()),
        (Some("done"), Some(1), Some(0), Some(0), Some(0)),
        "one holding, nothing redone: {t}"
    );
    assert_eq!(t["result"]["steps"], 600_000);
    // The run in the store caught up: its metrics end at the last step.
    let run = t["result"]["run"].as_str().expect("run");
    let id = at.rsplit('/').next().expect("id");
    let (code, metrics) = moto.http("GET", &format!("/bkt/exps/{id}/{run}/metrics.jsonl"), b"");
    assert_eq!(code, 200);
    let last: Value = serde_json::from_str(String::from_utf8_lossy(&metrics).lines().last().expect("a line")).expect("json");
    assert_eq!(last["step"], 600_000, "{last}");
}

/// `exp cancel` while `exp run --fleet` is launching over a slow link to AWS (every request
/// held 400 ms, so the launch takes many seconds): the launcher ends saying its fleet was
/// cancelled, no fleet is active and no tagged instance runs, and launching again makes
/// exactly one fleet.
#[test]
fn a_cancel_in_the_middle_of_a_slow_launch_leaves_nothing_running_and_a_relaunch_makes_one_fleet() {
    let moto = Moto::start();
    let proxy = common::proxy::Proxy::start(moto.port);
    let dir = tempfile::tempdir().expect("tempdir");
    let stack = aws(&moto, &["stack", common::root().join("docker/fleet.cfn.yaml").to_str().expect("utf-8"), "team"]);
    assert_eq!(stack["status"], "CREATE_COMPLETE", "{stack}");
    let file = experiment(dir.path(), 2, "");
    let file = file.to_str().expect("utf-8");
    let (plan, _) = ok(&moto.command(&["exp", "plan", file, "--json"]).output().expect("plan"));
    let id = serde_json::from_str::<Value>(plan.trim()).expect("json")["id"].as_str().expect("id").to_string();
    let at = format!("s3://team/experiments/{id}");
    proxy.slow(Duration::from_millis(400));
    let launcher = moto
        .command(&["exp", "run", file, "--fleet", "--detach"])
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .env("PADDOCK_WORK_DIR", work_dir(dir.path(), "launcher"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("launch");
    // Cancel once the launch has claimed the fleet record, while its EC2 calls crawl.
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(120), "the launch never claimed the fleet record");
        let (code, body) = moto.http("GET", &format!("/team/experiments/{id}/fleet.json"), b"");
        if code == 200 && String::from_utf8_lossy(&body).contains("\"launching\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, said) = ok(&moto.command(&["exp", "cancel", &at]).output().expect("cancel"));
    let out = launcher.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "the launcher says its launch was cancelled: {err}\ncancel said: {said}");
    assert!(err.contains("cancel"), "{err}");
    let d = aws(&moto, &["describe", &id]);
    let active: Vec<&Value> = d["fleets"]
        .as_array()
        .expect("fleets")
        .iter()
        .filter(|f| f["FleetState"] != "deleted" && f["FleetState"] != "deleted_terminating")
        .collect();
    assert!(active.is_empty(), "no fleet is left active: {d}");
    assert_eq!(live(&d), Vec::<String>::new(), "no tagged instance runs: {d}");

    // Launching again (at once: within SQS's minute between purges) makes exactly one fleet.
    proxy.slow(Duration::ZERO);
    let (_, err) = ok(&moto
        .command(&["exp", "run", file, "--fleet", "--detach"])
        .env("PADDOCK_WORK_DIR", work_dir(dir.path(), "again"))
        .output()
        .expect("run"));
    assert!(err.contains("started fleet"), "{err}");
    let d = aws(&moto, &["describe", &id]);
    let active = d["fleets"].as_array().expect("fleets").iter().filter(|f| f["FleetState"] == "active").count();
    assert_eq!(active, 1, "{d}");
    ok(&moto.command(&["exp", "cancel", &at]).output().expect("cancel"));
    assert_eq!(live(&aws(&moto, &["describe", &id])), Vec::<String>::new());
}
