//! Mirrors a run's local working copy to its store while the run goes on.
//!
//! Every pass (once a second) uploads the files that changed — `metrics.jsonl`, `log.txt`,
//! `status.json`, `scene.json`, the TensorBoard events, `plugins.lock`, `config.toml` — whole, then every
//! new complete checkpoint: its files first, then `checkpoints/<step>/COMPLETE` (sizes and
//! sha256 of each file). Readers ([`super::runs`]) load only checkpoints with that marker,
//! so a checkpoint whose upload broke off is never taken for a loadable one. A checkpoint
//! the run pruned is deleted marker first. Metrics are uploaded before the checkpoints seen
//! in the same pass, so a complete checkpoint never points past the uploaded metrics.
//!
//! The mirror runs on its own thread: the training loop never waits on S3. When uploads
//! fail (server down, network gone) it logs once, retries with exponential backoff, and on
//! recovery uploads everything again (a restarted server may have lost objects). Every few
//! seconds, and before it stops, it also lists what the store holds: objects it uploaded
//! that are gone (an outage the SDK's retries hid, a server that restarted empty) make it
//! upload the run again. TensorBoard event files the working copy replaced (a resume
//! rebuilds them) are deleted from the store then, so a run has one event stream there too.

use crate::format::checkpoint::{COMPLETE, MarkedFile, Marker};
use crate::format::run_dir::{self, CHECKPOINTS, is_checkpoint_name};
use crate::log::{Level, RunLog};
use crate::store::Objects;
use anyhow::Context;
use sha2::Digest;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How often the mirror checks that the store still holds what it uploaded.
const VERIFY_EVERY: Duration = Duration::from_secs(5);

struct Syncer {
    local: PathBuf,
    remote: Arc<dyn Objects>,
    files: HashMap<String, (u64, SystemTime)>,
    checkpoints: BTreeSet<String>,
    reconcile: bool,
    uploaded: Uploaded,
}

/// The newest checkpoint the mirror has uploaded complete (its marker written), for a
/// caller that records it (a worker's heartbeat) without listing the store.
#[derive(Clone, Debug, Default)]
pub struct Uploaded(Arc<Mutex<Option<String>>>);

impl Uploaded {
    /// The newest complete checkpoint in the store, as far as this mirror knows.
    pub fn newest(&self) -> Option<String> {
        self.0.lock().ok().and_then(|n| n.clone())
    }

    fn set(&self, newest: Option<&String>) {
        if let Ok(mut n) = self.0.lock() {
            *n = newest.cloned();
        }
    }
}

impl Syncer {
    fn local_checkpoints(&self) -> BTreeSet<String> {
        let Ok(rd) = std::fs::read_dir(self.local.join(CHECKPOINTS)) else { return BTreeSet::new() };
        rd.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| is_checkpoint_name(n)).collect()
    }

    /// One pass; `Ok(n)` with the number of objects written.
    fn pass(&mut self) -> anyhow::Result<usize> {
        let checkpoints = self.local_checkpoints();
        let mut written = 0;
        for (rel, _) in crate::store::walk(&self.local)? {
            if rel.starts_with("checkpoints/") || rel.starts_with("control/") {
                continue;
            }
            let path = self.local.join(&rel);
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            if self.files.get(&rel) == Some(&(meta.len(), modified)) {
                continue;
            }
            let Ok(data) = std::fs::read(&path) else { continue };
            self.remote.put(&rel, &data)?;
            // The size recorded is the size uploaded (the file may have grown since the stat).
            self.files.insert(rel, (data.len() as u64, modified));
            written += 1;
        }
        if self.reconcile {
            // After an outage: the store may hold checkpoints the run pruned meanwhile.
            for name in self.remote.list_dirs(CHECKPOINTS)? {
                if !checkpoints.contains(&name) {
                    self.delete_checkpoint(&name)?;
                }
            }
            self.reconcile = false;
        }
        for name in checkpoints.difference(&self.checkpoints.clone()) {
            if self.upload_checkpoint(name)? {
                self.checkpoints.insert(name.clone());
                written += 1;
            }
        }
        for name in self.checkpoints.difference(&checkpoints).cloned().collect::<Vec<_>>() {
            self.delete_checkpoint(&name)?;
            self.checkpoints.remove(&name);
        }
        self.uploaded.set(self.checkpoints.last());
        Ok(written)
    }

    /// Uploads a checkpoint, marker last; `false` if the run pruned it meanwhile.
    fn upload_checkpoint(&self, name: &str) -> anyhow::Result<bool> {
        let dir = self.local.join(CHECKPOINTS).join(name);
        let mut files = Vec::new();
        for (rel, _) in crate::store::walk(&dir)? {
            let path = dir.join(&rel);
            let data = match std::fs::read(&path) {
                Ok(d) => d,
                Err(_) if !dir.exists() => return Ok(false),
                Err(e) => return Err(anyhow::Error::new(e).context(format!("failed to read {}", path.display()))),
            };
            self.remote.put(&format!("checkpoints/{name}/{rel}"), &data)?;
            files.push(MarkedFile { path: rel, size: data.len() as u64, sha256: hex::encode(sha2::Sha256::digest(&data)) });
        }
        if !dir.exists() {
            return Ok(false);
        }
        let marker = serde_json::to_vec_pretty(&Marker { files })?;
        self.remote.put(&format!("checkpoints/{name}/{COMPLETE}"), &marker)?;
        Ok(true)
    }

    fn delete_checkpoint(&self, name: &str) -> anyhow::Result<()> {
        self.remote.delete(&format!("checkpoints/{name}/{COMPLETE}"))?;
        for e in self.remote.list(&format!("checkpoints/{name}"))? {
            self.remote.delete(&e.key)?;
        }
        Ok(())
    }

    /// How many objects this mirror uploaded are missing from the store (or have another
    /// size): a server that restarted empty, a bucket emptied by hand. The SDK's own retries
    /// can hide a short outage, so this looks rather than trusting that nothing failed.
    ///
    /// It also deletes the TensorBoard event files the store holds and the working copy no
    /// longer does: a resumed run rebuilds its events into one fresh file, and the run keeps
    /// one event stream in the store as it does on disk.
    fn missing(&mut self) -> anyhow::Result<usize> {
        let remote: HashMap<String, u64> = self.remote.list("")?.into_iter().map(|e| (e.key, e.size)).collect();
        for key in remote.keys() {
            if !key.contains('/') && key.starts_with(run_dir::TENSORBOARD_PREFIX) && !self.local.join(key).exists() {
                self.remote.delete(key)?;
                self.files.remove(key);
            }
        }
        let files = self.files.iter().filter(|(rel, (len, _))| remote.get(rel.as_str()) != Some(len)).count();
        let checkpoints = self.checkpoints.iter().filter(|c| !remote.contains_key(&format!("checkpoints/{c}/{COMPLETE}"))).count();
        Ok(files + checkpoints)
    }

    /// Forget what was uploaded: the next pass writes everything again.
    fn forget(&mut self) {
        self.files.clear();
        self.checkpoints.clear();
        self.reconcile = true;
    }
}

/// A running mirror of one run; [`Mirror::finish`] uploads the rest and stops it.
pub struct Mirror {
    stop: Arc<AtomicBool>,
    /// Set to start the next pass now (a new checkpoint is on disk).
    wake: Arc<AtomicBool>,
    deadline: Arc<Mutex<Option<Instant>>>,
    outcome: Arc<Mutex<Option<anyhow::Error>>>,
    thread: Option<std::thread::JoinHandle<()>>,
    remote: String,
    uploaded: Uploaded,
}

impl Mirror {
    /// Starts mirroring `local` to `remote` (the run's own location), every `interval`.
    pub fn start(local: &Path, remote: Arc<dyn Objects>, log: RunLog, interval: Duration) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(AtomicBool::new(false));
        let deadline = Arc::new(Mutex::new(None));
        let outcome = Arc::new(Mutex::new(None));
        let name = remote.location().to_string();
        let uploaded = Uploaded::default();
        let mut syncer = Syncer {
            local: local.to_path_buf(),
            remote,
            files: HashMap::new(),
            checkpoints: BTreeSet::new(),
            reconcile: true,
            uploaded: uploaded.clone(),
        };
        let (st, dl, out, where_, wk) = (stop.clone(), deadline.clone(), outcome.clone(), name.clone(), wake.clone());
        let thread = std::thread::Builder::new()
            .name("paddock-mirror".into())
            .spawn(move || {
                let mut failing: Option<(Instant, u32)> = None;
                let mut delay = Duration::from_millis(500);
                let mut checked = Instant::now();
                loop {
                    let stopping = st.load(Ordering::Acquire);
                    // A pass, then (every few seconds, and before stopping) a look at what the
                    // store holds.
                    let result = syncer.pass().and_then(|_| {
                        if stopping || checked.elapsed() >= VERIFY_EVERY {
                            checked = Instant::now();
                            syncer.missing()
                        } else {
                            Ok(0)
                        }
                    });
                    match result {
                        Ok(missing) => {
                            let recovered = failing.take();
                            if let Some((since, attempts)) = recovered {
                                log.line(
                                    Level::Info,
                                    "store",
                                    &format!(
                                        "{where_} reachable again after {:.1} s and {attempts} failed attempts; uploading the run again in case the store lost objects",
                                        since.elapsed().as_secs_f64()
                                    ),
                                );
                            } else if missing > 0 {
                                log.line(
                                    Level::Warn,
                                    "store",
                                    &format!("{where_} lost {missing} objects of this run (a restarted or emptied store?); uploading the run again"),
                                );
                            }
                            if recovered.is_some() || missing > 0 {
                                syncer.forget();
                                delay = Duration::from_millis(500);
                                checked = Instant::now().checked_sub(VERIFY_EVERY).unwrap_or_else(Instant::now);
                                continue;
                            }
                            if stopping {
                                break;
                            }
                            sleep_unless(&st, &wk, interval);
                        }
                        Err(e) => {
                            let attempts = failing.map_or(1, |f| f.1 + 1);
                            if failing.is_none() {
                                log.line(Level::Warn, "store", &format!("upload to {where_} failed, retrying with backoff (training goes on): {e:#}"));
                            }
                            failing = Some((failing.map_or_else(Instant::now, |f| f.0), attempts));
                            let past = dl.lock().ok().and_then(|d| *d).is_some_and(|d| Instant::now() >= d);
                            // Refused credentials or a bucket that is gone do not heal by
                            // waiting: when stopping, give up at once (the local copy has it all).
                            let hopeless = matches!(
                                crate::store::store_error(&e),
                                Some(crate::store::StoreError::Denied { .. } | crate::store::StoreError::NoBucket(_))
                            );
                            if stopping && (past || hopeless) {
                                log.line(Level::Error, "store", &format!("gave up uploading to {where_} after {attempts} attempts: {e:#}"));
                                if let Ok(mut o) = out.lock() {
                                    *o = Some(e);
                                }
                                break;
                            }
                            std::thread::sleep(delay);
                            delay = (delay * 2).min(Duration::from_secs(8));
                        }
                    }
                }
            })
            .context("failed to start the store mirror thread")?;
        Ok(Mirror { stop, wake, deadline, outcome, thread: Some(thread), remote: name, uploaded })
    }

    /// What this mirror has uploaded: the newest complete checkpoint.
    pub fn uploaded(&self) -> Uploaded {
        self.uploaded.clone()
    }

    /// A handle that starts the next pass at once when set (call it when a checkpoint is
    /// complete on disk, so the store holds it within one upload rather than one interval).
    pub fn waker(&self) -> Arc<AtomicBool> {
        self.wake.clone()
    }

    /// Uploads whatever is left and stops, retrying for up to `patience`. An error means
    /// the store did not get everything (the local copy still has it all).
    pub fn finish(mut self, patience: Duration) -> anyhow::Result<()> {
        if let Ok(mut d) = self.deadline.lock() {
            *d = Some(Instant::now() + patience);
        }
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.join().map_err(|_| anyhow::anyhow!("the mirror thread of {} panicked", self.remote))?;
        }
        match self.outcome.lock().ok().and_then(|mut o| o.take()) {
            Some(e) => Err(e.context(format!("the run was not fully uploaded to {}", self.remote))),
            None => Ok(()),
        }
    }
}

/// Uploads `local` (a run directory) to `remote` once, as a mirror's last pass would
/// (complete checkpoints with their markers), retrying for up to `patience`: how `paddock
/// exp restore` puts a worker's kept working copy back.
pub fn upload_once(local: &Path, remote: Arc<dyn Objects>, patience: Duration) -> anyhow::Result<()> {
    let log = RunLog::new(Box::new(std::io::sink()), Level::Warn);
    Mirror::start(local, remote, log, Duration::from_secs(3600))?.finish(patience)
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Sleeps for `d`, waking early when `stop` is set or `wake` is (which it clears).
fn sleep_unless(stop: &AtomicBool, wake: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::Acquire) && !wake.swap(false, Ordering::AcqRel) {
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}
