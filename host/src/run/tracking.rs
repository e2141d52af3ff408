//! MLflow tracking (`[tracking] mlflow = "http://…"`): a run logs its parameters, its
//! metrics and its final files to an MLflow tracking server through MLflow's REST API.
//!
//! `metrics.jsonl` stays the record: a thread beside the run reads the lines it has not sent
//! (from a byte offset kept in `tracking.json` in the run directory) every two seconds and
//! sends them with `runs/log-batch`. A server that does not answer is a warning, once; the
//! thread keeps trying (2 s, doubling to 30 s), and when the server is back it sends
//! everything logged meanwhile. At the run's end it sends the rest, uploads the run's small
//! files as artifacts (`mlflow-artifacts` servers) and marks the MLflow run finished, failed
//! or killed; a server still away then is a warning naming `paddock track RUN_DIR`, which
//! sends the rest later. A run that resumes (or a trial that another worker takes over, in a
//! new run directory) logs into the same MLflow run: runs are found by the tag
//! `paddock_key`, and what the server has already (each metric's latest step) is not sent
//! again.

use crate::log::{Level, RunLog};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The state file in the run directory.
pub const STATE: &str = "tracking.json";

/// Where a run is tracked: the MLflow experiment, the key that finds its MLflow run again,
/// and the run's name there.
#[derive(Clone, Debug)]
pub struct TrackAs {
    /// The MLflow experiment's name.
    pub experiment: String,
    /// The `paddock_key` tag that finds the MLflow run again.
    pub key: String,
    /// The MLflow run's name.
    pub run_name: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct State {
    server: String,
    experiment_id: Option<String>,
    run_id: Option<String>,
    artifact_uri: Option<String>,
    /// Bytes of `metrics.jsonl` sent.
    offset: u64,
    params: bool,
    /// When attached to a run that had metrics: each key's latest step there (not sent again).
    logged: BTreeMap<String, u64>,
    /// Where the run is tracked (so `paddock track` logs where the run would have).
    #[serde(default)]
    experiment: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    run_name: Option<String>,
    /// Metric values the server refused (a name it does not take), not sent again.
    #[serde(default)]
    refused: u64,
    /// Whether this process marked the MLflow run running.
    #[serde(skip)]
    reopened: bool,
}

/// An MLflow REST client.
struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    fn new(server: &str) -> Self {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(10))).http_status_as_error(false).build().into();
        Client { base: server.trim_end_matches('/').to_string(), agent }
    }

    fn answer(&self, what: &str, resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> anyhow::Result<serde_json::Value> {
        let mut resp = resp.map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        let status = resp.status();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        if !status.is_success() {
            let code = v["error_code"].as_str().unwrap_or("");
            let msg = v["message"].as_str().map_or_else(|| text.chars().take(200).collect(), str::to_string);
            return Err(anyhow::Error::new(ApiError { status: status.as_u16(), code: code.to_string() })
                .context(format!("{what}: HTTP {status} {code} {msg}")));
        }
        Ok(v)
    }

    fn post(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.base);
        self.answer(path, self.agent.post(&url).send_json(body))
    }

    fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<serde_json::Value> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.base);
        let mut req = self.agent.get(&url);
        for (k, v) in query {
            req = req.query(*k, *v);
        }
        self.answer(path, req.call())
    }

    /// The experiment's id, made if it does not exist.
    fn experiment(&self, name: &str) -> anyhow::Result<String> {
        for _ in 0..3 {
            match self.get("experiments/get-by-name", &[("experiment_name", name)]) {
                Ok(v) => return v["experiment"]["experiment_id"].as_str().map(str::to_string).context("get-by-name: no experiment_id"),
                Err(e) if api_code(&e) == Some("RESOURCE_DOES_NOT_EXIST") => {}
                Err(e) => return Err(e),
            }
            match self.post("experiments/create", &serde_json::json!({ "name": name })) {
                Ok(v) => return v["experiment_id"].as_str().map(str::to_string).context("create: no experiment_id"),
                // Made meanwhile by another run (a sweep's trials start together): read it.
                Err(e) if api_code(&e) == Some("RESOURCE_ALREADY_EXISTS") => {}
                Err(e) => return Err(e),
            }
        }
        anyhow::bail!("experiment {name}: neither found nor made")
    }
}

/// An MLflow error answer.
#[derive(Debug)]
struct ApiError {
    status: u16,
    code: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {} {}", self.status, self.code)
    }
}

impl std::error::Error for ApiError {}

fn api_code(e: &anyhow::Error) -> Option<&str> {
    e.chain().find_map(|c| c.downcast_ref::<ApiError>()).map(|a| a.code.as_str())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// MLflow's rule for metric and parameter names: its characters, and a path that does not
/// change when normalised (no leading or trailing `/`, no empty, `.` or `..` part).
fn valid_name(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 250
        && k.chars().all(|c| c.is_ascii_alphanumeric() || "_-. /".contains(c))
        && k.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
}

fn load(dir: &Path) -> State {
    std::fs::read(dir.join(STATE)).ok().and_then(|d| serde_json::from_slice(&d).ok()).unwrap_or_default()
}

fn save(dir: &Path, s: &State) {
    if let Ok(data) = serde_json::to_vec_pretty(s) {
        let _ = crate::store::write_atomically(&dir.join(STATE), &data);
    }
}

/// Finds or makes the MLflow run; logs the parameters once.
fn attach(c: &Client, s: &mut State, dir: &Path, as_: &TrackAs) -> anyhow::Result<()> {
    if s.experiment_id.is_none() {
        s.experiment_id = Some(c.experiment(&as_.experiment)?);
    }
    let exp = s.experiment_id.clone().unwrap_or_default();
    if let Some(id) = s.run_id.clone().filter(|_| !s.reopened) {
        // A resumed run: its MLflow run is running again.
        c.post("runs/update", &serde_json::json!({ "run_id": id, "status": "RUNNING" }))?;
        s.reopened = true;
    }
    if s.run_id.is_none() {
        let filter = format!("tags.paddock_key = '{}'", as_.key.replace('\'', ""));
        let found = c.post("runs/search", &serde_json::json!({ "experiment_ids": [exp], "filter": filter, "max_results": 1 }))?;
        let run = match found["runs"].as_array().and_then(|r| r.first()) {
            Some(r) => {
                // Resumed (or taken over): what the server has is not sent again.
                for m in r["data"]["metrics"].as_array().into_iter().flatten() {
                    if let (Some(k), Some(step)) = (m["key"].as_str(), m["step"].as_u64()) {
                        s.logged.insert(k.to_string(), step);
                    }
                }
                s.params = true;
                c.post("runs/update", &serde_json::json!({ "run_id": r["info"]["run_id"], "status": "RUNNING" }))?;
                s.reopened = true;
                r.clone()
            }
            None => {
                let tags = serde_json::json!([
                    { "key": "paddock_key", "value": as_.key },
                    { "key": "paddock.run_dir", "value": dir.display().to_string() },
                    { "key": "mlflow.source.name", "value": "paddock" },
                ]);
                let made = c.post(
                    "runs/create",
                    &serde_json::json!({ "experiment_id": exp, "run_name": as_.run_name, "start_time": now_ms(), "tags": tags }),
                )?;
                s.reopened = true;
                made["run"].clone()
            }
        };
        s.run_id = run["info"]["run_id"].as_str().map(str::to_string);
        s.artifact_uri = run["info"]["artifact_uri"].as_str().map(str::to_string);
        s.run_id.as_ref().context("runs/create: no run_id")?;
        save(dir, s);
    }
    if !s.params {
        let text = std::fs::read_to_string(dir.join(crate::format::run_dir::CONFIG)).unwrap_or_default();
        let table: toml::Table = text.parse().unwrap_or_default();
        let params: Vec<serde_json::Value> = crate::config::flatten_table("", &table)
            .into_iter()
            .map(|(k, v)| (k, if let toml::Value::String(s) = v { s } else { v.to_string() }))
            .filter(|(k, _)| valid_name(k))
            .map(|(k, v)| serde_json::json!({ "key": k, "value": v.chars().take(6000).collect::<String>() }))
            .collect();
        for chunk in params.chunks(100) {
            c.post("runs/log-batch", &serde_json::json!({ "run_id": s.run_id, "params": chunk }))?;
        }
        s.params = true;
        save(dir, s);
    }
    Ok(())
}

/// Sends the lines of `metrics.jsonl` not sent yet; the number of lines sent.
fn sync(c: &Client, s: &mut State, dir: &Path, as_: &TrackAs) -> anyhow::Result<usize> {
    attach(c, s, dir, as_)?;
    // Only what follows the offset is read. A resumed run cuts metrics.jsonl back to its
    // checkpoint and writes the same bytes again: nothing before the offset is sent twice.
    let mut fresh = Vec::new();
    if let Ok(mut f) = std::fs::File::open(dir.join(crate::format::run_dir::METRICS)) {
        use std::io::{Read, Seek};
        if f.metadata().map_or(0, |m| m.len()) <= s.offset {
            return Ok(0);
        }
        f.seek(std::io::SeekFrom::Start(s.offset))?;
        f.read_to_end(&mut fresh)?;
    }
    let fresh = &fresh[..];
    let Some(end) = fresh.iter().rposition(|b| *b == b'\n') else { return Ok(0) };
    let ts = now_ms();
    let mut batch = Vec::new();
    let mut lines = 0;
    let mut sent_to = s.offset;
    let mut pos = s.offset;
    for line in fresh[..=end].split_inclusive(|b| *b == b'\n') {
        pos += line.len() as u64;
        lines += 1;
        let Ok(m) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(line) else { continue };
        let step = m.get("step").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if batch.len() + m.len() > 1000 {
            // MLflow takes at most 1,000 metrics a request.
            send(c, s, &batch)?;
            batch.clear();
            sent_to = pos - line.len() as u64;
            s.offset = sent_to;
            save(dir, s);
        }
        for (k, v) in &m {
            let Some(x) = v.as_f64().filter(|x| x.is_finite()) else { continue };
            if k == "step" || !valid_name(k) || s.logged.get(k).is_some_and(|last| step <= *last) {
                continue;
            }
            batch.push(serde_json::json!({ "key": k, "value": x, "timestamp": ts, "step": step }));
        }
    }
    if !batch.is_empty() {
        send(c, s, &batch)?;
    }
    s.offset = pos.max(sent_to);
    save(dir, s);
    Ok(lines)
}

/// One `log-batch` of metrics. A batch the server refuses as invalid (HTTP 400: a value or
/// name it does not take) is counted and passed over, not sent again and again.
fn send(c: &Client, s: &mut State, batch: &[serde_json::Value]) -> anyhow::Result<()> {
    match c.post("runs/log-batch", &serde_json::json!({ "run_id": s.run_id, "metrics": batch })) {
        Err(e) if e.chain().any(|x| x.downcast_ref::<ApiError>().is_some_and(|a| a.status == 400)) => {
            s.refused += batch.len() as u64;
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

/// The run's status, then its small files as artifacts (each failure a warning).
fn close(c: &Client, s: &State, dir: &Path, status: &str, log: &RunLog) -> anyhow::Result<()> {
    c.post("runs/update", &serde_json::json!({ "run_id": s.run_id, "status": status, "end_time": now_ms() }))?;
    if s.refused > 0 {
        log.line(Level::Warn, "tracking", &format!("MLflow refused {} metric values (names or values it does not take)", s.refused));
    }
    match s.artifact_uri.as_deref().and_then(|u| u.strip_prefix("mlflow-artifacts:")) {
        Some(path) => {
            let path = path.trim_start_matches('/');
            for name in [
                crate::format::run_dir::CONFIG,
                crate::format::run_dir::METRICS,
                crate::format::run_dir::LOG,
                crate::format::run_dir::PLUGINS_LOCK,
            ] {
                let Ok(bytes) = std::fs::read(dir.join(name)) else { continue };
                let url = format!("{}/api/2.0/mlflow-artifacts/artifacts/{path}/{name}", c.base);
                if let Err(e) = c.answer("artifact upload", c.agent.put(&url).content_type("application/octet-stream").send(&bytes[..])) {
                    log.line(Level::Warn, "tracking", &format!("{name} was not uploaded to MLflow: {e:#} (it is in {})", dir.display()));
                }
            }
        }
        None => log.line(
            Level::Warn,
            "tracking",
            &format!(
                "MLflow keeps this run's artifacts at {} (not served by the tracking server): the run's files stay in {}",
                s.artifact_uri.as_deref().unwrap_or("?"),
                dir.display()
            ),
        ),
    }
    Ok(())
}

/// The most a run's end waits for the tracker (the rest goes later, `paddock track`).
const FINISH_WITHIN: Duration = Duration::from_secs(20);

/// The thread that tracks a run (see the module docs).
pub struct Tracker {
    stop: Arc<(Mutex<Option<String>>, Condvar)>,
    done: Option<std::sync::mpsc::Receiver<()>>,
    log: RunLog,
}

impl Tracker {
    /// Starts tracking the run in `dir` to the MLflow server `server`.
    pub fn start(server: &str, as_: TrackAs, dir: &Path, log: RunLog) -> Tracker {
        let stop: Arc<(Mutex<Option<String>>, Condvar)> = Arc::new((Mutex::new(None), Condvar::new()));
        let (server, dir, flag, thread_log) = (server.to_string(), dir.to_path_buf(), stop.clone(), log.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let started = std::thread::Builder::new().name("mlflow".into()).spawn(move || {
            track(&server, &as_, &dir, &thread_log, &flag);
            let _ = tx.send(());
        });
        Tracker { stop, done: started.is_ok().then_some(rx), log }
    }

    /// Ends tracking: the rest is sent, the MLflow run marked `status` (`FINISHED`,
    /// `FAILED`, `KILLED`) and the files uploaded. Waits for that at most 20 s (a slow
    /// server does not hold up a trial's commit); the thread then finishes on its own while
    /// the process lives.
    pub fn finish(self, status: &str) {
        let (m, cv) = &*self.stop;
        if let Ok(mut g) = m.lock() {
            *g = Some(status.to_string());
        }
        cv.notify_all();
        if let Some(rx) = &self.done
            && rx.recv_timeout(FINISH_WITHIN).is_err()
        {
            self.log.line(
                Level::Warn,
                "tracking",
                "MLflow is slow to take the run's end; going on without waiting (`paddock track RUN_DIR` finishes it)",
            );
        }
    }
}

fn track(server: &str, as_: &TrackAs, dir: &Path, log: &RunLog, stop: &(Mutex<Option<String>>, Condvar)) {
    let c = Client::new(server);
    let mut s = load(dir);
    if s.server != server {
        // Another server than the one the state was for: start over there.
        s = State { server: server.to_string(), ..State::default() };
    }
    // Recorded before the first contact: `paddock track` logs where this run would have.
    s.experiment = Some(as_.experiment.clone());
    s.key = Some(as_.key.clone());
    s.run_name = Some(as_.run_name.clone());
    save(dir, &s);
    let mut wait = Duration::from_secs(2);
    let mut down: Option<Instant> = None;
    loop {
        let status = {
            let (m, cv) = stop;
            let g = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let (g, _) = cv.wait_timeout_while(g, wait, |s| s.is_none()).unwrap_or_else(std::sync::PoisonError::into_inner);
            g.clone()
        };
        match sync(&c, &mut s, dir, as_) {
            Ok(n) => {
                if let Some(since) = down.take() {
                    let msg = format!(
                        "MLflow at {server} answers again after {:.0} s: {n} metric lines logged meanwhile sent",
                        since.elapsed().as_secs_f64()
                    );
                    log.line(Level::Info, "tracking", &msg);
                }
                wait = Duration::from_secs(2);
            }
            Err(e) => {
                if down.is_none() {
                    let msg = format!(
                        "MLflow at {server} does not answer ({e:#}); training goes on, metrics stay in metrics.jsonl and are sent when it answers"
                    );
                    log.line(Level::Warn, "tracking", &msg);
                    down = Some(Instant::now());
                }
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
        if let Some(status) = status {
            let closed = if down.is_none() { close(&c, &s, dir, &status, log) } else { Err(anyhow::anyhow!("the server is away")) };
            if let Err(e) = closed {
                let msg = format!(
                    "MLflow at {server}: the run's end was not recorded ({e:#}); `paddock track {}` sends the rest when the server is back",
                    dir.display()
                );
                log.line(Level::Warn, "tracking", &msg);
            }
            return;
        }
    }
}

/// `paddock track RUN_DIR`: sends what a run has not sent yet and records its end, once.
pub fn catch_up(dir: &Path, status: &str) -> anyhow::Result<(String, usize)> {
    let config = crate::config::RunConfig::load(&dir.join(crate::format::run_dir::CONFIG))?;
    let server = config.tracking.mlflow.clone().with_context(|| format!("{}: its config has no [tracking] mlflow", dir.display()))?;
    let s0 = load(dir);
    let mut as_ = default_as(&config, dir);
    if let (Some(e), Some(k), Some(n)) = (&s0.experiment, &s0.key, &s0.run_name) {
        as_ = TrackAs { experiment: e.clone(), key: k.clone(), run_name: n.clone() };
    }
    let c = Client::new(&server);
    let mut s = if s0.server == server { s0 } else { State { server: server.clone(), ..State::default() } };
    let n = sync(&c, &mut s, dir, &as_)?;
    close(&c, &s, dir, status, &RunLog::stderr())?;
    Ok((server, n))
}

/// How a run is tracked when nobody says otherwise: the config's experiment (or
/// `paddock`), keyed and named by the run directory's name.
pub fn default_as(config: &crate::config::RunConfig, dir: &Path) -> TrackAs {
    let name = dir.file_name().map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
    TrackAs { experiment: config.tracking.experiment.clone().unwrap_or_else(|| "paddock".into()), key: name.clone(), run_name: name }
}

/// Sets a tag on the MLflow experiment `experiment` (e.g. a study's best trial).
pub fn tag_experiment(server: &str, experiment: &str, key: &str, value: &str) -> anyhow::Result<()> {
    let c = Client::new(server);
    let id = c.experiment(experiment)?;
    c.post("experiments/set-experiment-tag", &serde_json::json!({ "experiment_id": id, "key": key, "value": value }))?;
    Ok(())
}

/// Where a run directory's tracking state is (for `paddock track`).
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE)
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn names_mlflow_refuses_are_known_before_sending() {
        for ok in ["eval/return_mean", "train/loss/policy", "algorithm.params.learning-rate", "reload/reward_ms", "a b"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "/x", "x/", "a//b", "a/./b", "../a", "é", "a:b"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
