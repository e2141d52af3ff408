//! What the monitor knows of one run, read from its directory and kept current by
//! tailing: `metrics.jsonl` (only whole lines; a line still being written waits for its
//! newline; a file that shrank — a resumed run cut it back to its checkpoint — is read
//! again from the start), `status.json`, `plugins.lock` and the end of `log.txt`. Nothing
//! here fails: a missing, deleted or garbled file becomes a state the monitor shows.

use crate::format::scene::SceneFile;
use crate::format::status::{self, Observed, State, Status};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// One version of a plugin a run used (an entry of `plugins.lock`).
pub type PluginEntry = crate::format::run_dir::LockEntry;

/// A hot-reload event from `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReloadEvent {
    /// Env step.
    pub step: u64,
    /// Which plugin.
    pub role: String,
    /// `swapped`, `refused` or `complete` (an env swap that reached every env).
    pub outcome: &'static str,
    /// For a swap: how long after its file changed the new version went live, ms.
    pub ms: Option<f64>,
}

/// Lines of `log.txt` kept.
const LOG_LINES: usize = 200;
/// Bytes read from the end of `log.txt`.
const LOG_TAIL_BYTES: u64 = 32 * 1024;

/// A run's state as the monitor shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// What its `status.json` says, or lost.
    Run(Observed),
    /// No `status.json` yet.
    Waiting,
    /// `status.json` does not parse.
    Unreadable,
    /// The run directory was deleted.
    Deleted,
}

impl Shown {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Shown::Run(o) => o.as_str(),
            Shown::Waiting => "waiting",
            Shown::Unreadable => "unreadable",
            Shown::Deleted => "deleted",
        }
    }

    /// Whether a process is working on the run now.
    pub fn is_live(self) -> bool {
        matches!(self, Shown::Run(o) if o.is_live())
    }

    /// Whether it is the given state (and not lost).
    pub fn is(self, state: State) -> bool {
        self == Shown::Run(Observed::Is(state))
    }
}

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run as the monitor sees it.
#[derive(Debug)]
pub struct RunView {
    /// Its directory.
    pub dir: PathBuf,
    /// The directory's name.
    pub name: String,
    /// `status.json`: none yet, or what it says, or why it cannot be read.
    pub status: Option<Result<Status, String>>,
    /// The directory was there and is gone (deleted while watched).
    pub gone: bool,
    /// Every numeric metric, by name: (step, value) in file order.
    pub series: BTreeMap<String, Vec<(f64, f64)>>,
    /// Hot-reload events.
    pub reloads: Vec<ReloadEvent>,
    /// `plugins.lock`, or why it cannot be read.
    pub plugins: Result<Vec<PluginEntry>, String>,
    /// The last lines of `log.txt`.
    pub log: Vec<String>,
    /// Lines of `metrics.jsonl` that are not JSON (skipped).
    pub bad_lines: usize,
    /// SPS samples seen in `status.json`: (step, SPS).
    pub sps: Vec<(f64, f64)>,
    /// `scene.json` (runs on the host's physics): none, the latest picture, or why it cannot
    /// be read.
    pub scene: Option<Result<SceneFile, String>>,
    metrics_offset: u64,
    log_len: Option<u64>,
    lock_stamp: Option<(u64, std::time::SystemTime)>,
    status_stamp: Option<std::time::SystemTime>,
    scene_stamp: Option<(u64, std::time::SystemTime)>,
}

/// A JSON file of the run dir read again when its size or modification time differ from
/// `stamp` (then updated): `None` when unchanged, `Some(None)` when there is no such file,
/// else what it holds or why that cannot be read (named).
fn reread_json<T: serde::de::DeserializeOwned>(
    dir: &Path,
    name: &str,
    stamp: &mut Option<(u64, std::time::SystemTime)>,
) -> Option<Option<Result<T, String>>> {
    let path = dir.join(name);
    let now = std::fs::metadata(&path).ok().and_then(|m| Some((m.len(), m.modified().ok()?)));
    if now == *stamp {
        return None;
    }
    *stamp = now;
    Some(match std::fs::read(&path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| format!("{name}: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => Some(Err(format!("{name}: {e}"))),
    })
}

impl RunView {
    /// A view of `dir`, read once.
    pub fn open(dir: &Path) -> Self {
        let name = dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned());
        let mut v = RunView {
            dir: dir.to_path_buf(),
            name,
            status: None,
            gone: false,
            series: BTreeMap::new(),
            reloads: Vec::new(),
            plugins: Ok(Vec::new()),
            log: Vec::new(),
            bad_lines: 0,
            sps: Vec::new(),
            scene: None,
            metrics_offset: 0,
            log_len: None,
            lock_stamp: None,
            status_stamp: None,
            scene_stamp: None,
        };
        v.refresh();
        v
    }

    /// Reads what changed; returns whether anything did.
    pub fn refresh(&mut self) -> bool {
        if !self.dir.is_dir() {
            let changed = !self.gone;
            self.gone = true;
            return changed;
        }
        self.gone = false;
        let mut changed = self.refresh_status();
        changed |= self.refresh_metrics();
        changed |= self.refresh_lock();
        changed |= self.refresh_log();
        changed |= self.refresh_scene();
        changed
    }

    fn refresh_scene(&mut self) -> bool {
        let Some(scene) = reread_json(&self.dir, "scene.json", &mut self.scene_stamp) else { return false };
        self.scene = scene;
        true
    }

    fn refresh_status(&mut self) -> bool {
        let stamp = std::fs::metadata(self.dir.join("status.json")).and_then(|m| m.modified()).ok();
        if stamp == self.status_stamp && (stamp.is_some() || self.status.is_none()) {
            return false;
        }
        self.status_stamp = stamp;
        self.status = status::read(&self.dir);
        if let Some(Ok(s)) = &self.status
            && s.state == State::Running
            && self.sps.last().is_none_or(|l| l.0 != s.step as f64)
        {
            self.sps.push((s.step as f64, s.sps));
        }
        true
    }

    fn refresh_metrics(&mut self) -> bool {
        let path = self.dir.join("metrics.jsonl");
        let Ok(mut file) = std::fs::File::open(&path) else { return false };
        let len = file.metadata().map_or(0, |m| m.len());
        if len < self.metrics_offset {
            // Cut back by a resumed run: read it again.
            self.series.clear();
            self.reloads.clear();
            self.bad_lines = 0;
            self.metrics_offset = 0;
        }
        if len == self.metrics_offset {
            return false;
        }
        let mut text = String::new();
        if file.seek(SeekFrom::Start(self.metrics_offset)).is_err() || file.read_to_string(&mut text).is_err() {
            return false;
        }
        // Only whole lines: a line being written waits for its newline.
        let Some(end) = text.rfind('\n') else { return false };
        self.metrics_offset += end as u64 + 1;
        for line in text[..end].lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(line) {
                Ok(m) => self.add_line(&m),
                Err(_) => self.bad_lines += 1,
            }
        }
        true
    }

    fn add_line(&mut self, m: &serde_json::Map<String, serde_json::Value>) {
        let Some(step) = m.get("step").and_then(serde_json::Value::as_u64) else {
            self.bad_lines += 1;
            return;
        };
        let mut latency = None;
        for (k, v) in m {
            if let Some(role) = k.strip_prefix("reload/") {
                if let Some(r) = role.strip_suffix("_ms") {
                    latency = Some((r, v.as_f64()));
                    continue;
                }
                let (role, outcome) = match (role.strip_suffix("_refused"), role.strip_suffix("_complete")) {
                    (Some(r), _) => (r, "refused"),
                    (_, Some(r)) => (r, "complete"),
                    _ => (role, "swapped"),
                };
                self.reloads.push(ReloadEvent { step, role: role.to_string(), outcome, ms: None });
            } else if let (true, Some(x)) = (k != "step", v.as_f64()) {
                self.series.entry(k.clone()).or_default().push((step as f64, x));
            }
        }
        if let Some((role, ms)) = latency
            && let Some(e) = self.reloads.iter_mut().rev().find(|e| e.step == step && e.role == role && e.outcome == "swapped")
        {
            e.ms = ms;
        }
    }

    fn refresh_lock(&mut self) -> bool {
        let Some(lock) = reread_json(&self.dir, crate::format::run_dir::PLUGINS_LOCK, &mut self.lock_stamp) else { return false };
        self.plugins = lock.unwrap_or(Ok(Vec::new()));
        true
    }

    fn refresh_log(&mut self) -> bool {
        let path = self.dir.join("log.txt");
        let Ok(mut file) = std::fs::File::open(&path) else { return false };
        let len = file.metadata().map_or(0, |m| m.len());
        if Some(len) == self.log_len {
            return false;
        }
        self.log_len = Some(len);
        let from = len.saturating_sub(LOG_TAIL_BYTES);
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(from)).is_err() || file.read_to_end(&mut bytes).is_err() {
            return false;
        }
        let text = String::from_utf8_lossy(&bytes);
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        if from > 0 && !lines.is_empty() {
            lines.remove(0); // cut mid-line
        }
        let skip = lines.len().saturating_sub(LOG_LINES);
        self.log = lines.split_off(skip);
        true
    }

    /// The run's state as shown: from `status.json` (`lost` when a live state's process is
    /// gone), `waiting` before the first status.
    pub fn shown(&self, now: f64) -> Shown {
        if self.gone {
            return Shown::Deleted;
        }
        match &self.status {
            None => Shown::Waiting,
            Some(Err(_)) => Shown::Unreadable,
            Some(Ok(s)) => Shown::Run(s.observed(now)),
        }
    }

    /// Seconds the run has been going (this process's session).
    pub fn elapsed(&self, now: f64) -> Option<f64> {
        let Some(Ok(s)) = &self.status else { return None };
        let live = self.shown(now).is_live();
        let end = if live { now } else { s.updated_unix };
        Some((end - s.started_unix).max(0.0))
    }

    /// The name of the run's env plugin (from `plugins.lock`), if known.
    pub fn env_name(&self) -> Option<String> {
        self.plugins.as_ref().ok()?.iter().find(|e| e.role == "env").map(|e| e.name.clone())
    }

    /// The names of the algorithm's metrics (`train/…`), sorted.
    pub fn train_metrics(&self) -> Vec<&str> {
        self.series.keys().filter(|k| k.starts_with("train/")).map(String::as_str).collect()
    }

    /// Best evaluation return: from the status, else from the metrics.
    pub fn best_eval(&self) -> Option<f64> {
        if let Some(Ok(s)) = &self.status
            && s.best_eval.is_some()
        {
            return s.best_eval;
        }
        self.series.get("eval/return_mean").and_then(|v| v.iter().map(|p| p.1).reduce(f64::max))
    }

    /// The last step the run reported.
    pub fn step(&self) -> Option<u64> {
        if let Some(Ok(s)) = &self.status {
            return Some(s.step);
        }
        self.series.values().filter_map(|v| v.last()).map(|p| p.0 as u64).max()
    }
}

/// Whether a process with this pid exists (Linux: `/proc/<pid>`; elsewhere assumed alive).
/// The run directories under `paths`: a path holding `config.toml` is a run; any other
/// directory is a store whose subdirectories holding `config.toml` are runs. Sorted by
/// name within each store.
pub fn discover(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.join("config.toml").exists() || !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut runs: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).filter(|d| d.join("config.toml").exists()).collect())
            .unwrap_or_default();
        runs.sort();
        out.extend(runs);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tailing_takes_whole_lines_and_restarts_when_the_file_shrinks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = dir.path().join("metrics.jsonl");
        std::fs::write(&m, "{\"step\": 1, \"a\": 1.0}\n{\"step\": 2, \"a\"").expect("write");
        let mut v = RunView::open(dir.path());
        assert_eq!(v.series["a"], vec![(1.0, 1.0)], "the half-written line waits");
        std::fs::write(
            &m,
            "{\"step\": 1, \"a\": 1.0}\n{\"step\": 2, \"a\": 2.0, \"reload/reward_refused\": 1}\nnot json\n\
             {\"step\": 3, \"reload/reward_ms\": 412, \"reload/reward\": 1}\n",
        )
        .expect("write");
        assert!(v.refresh());
        assert_eq!(v.series["a"], vec![(1.0, 1.0), (2.0, 2.0)]);
        assert_eq!(
            v.reloads,
            vec![
                ReloadEvent { step: 2, role: "reward".into(), outcome: "refused", ms: None },
                ReloadEvent { step: 3, role: "reward".into(), outcome: "swapped", ms: Some(412.0) },
            ]
        );
        assert_eq!(v.bad_lines, 1);
        std::fs::write(&m, "{\"step\": 1, \"a\": 5.0}\n").expect("write");
        v.refresh();
        assert_eq!(v.series["a"], vec![(1.0, 5.0)], "a cut-back file is read again");
        assert!(!v.refresh(), "nothing new");
        std::fs::remove_dir_all(dir.path()).expect("remove");
        assert!(v.refresh());
        assert_eq!(v.shown(0.0), Shown::Deleted);
    }
}
