//! Hot reload: watches the `.wasm` files a run uses (the `notify` crate) and compiles a new
//! version off the training thread, checked against its world and package version, so the
//! training loop only swaps instances at a safe point. Editors and build tools replace
//! files in several steps (truncate, write, rename), so events are debounced: a version is
//! loaded once its file has been quiet for [`QUIET`].

use crate::runtime::{LoadError, Plugin, Runtime, World};
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// How long a file must be quiet before its new version is loaded.
pub const QUIET: Duration = Duration::from_millis(50);

/// A new version of a watched plugin, compiled and checked (or refused at load).
pub struct Candidate {
    /// The role in the run (`reward`, …).
    pub role: &'static str,
    /// The file.
    pub path: PathBuf,
    /// The loaded plugin, or why it was refused.
    pub plugin: Result<Plugin, LoadError>,
    /// When the change was first seen (for the reload latency).
    pub seen: Instant,
    /// How long loading (compiling, checking) took on the watcher thread.
    pub load_time: Duration,
}

/// Watches plugin files; new versions arrive on [`PluginWatcher::poll`].
pub struct PluginWatcher {
    _watcher: notify::RecommendedWatcher,
    candidates: Receiver<Candidate>,
}

impl PluginWatcher {
    /// Watches `files` (role, path, world); the directories holding them are watched, so a
    /// file replaced by a rename is seen too.
    pub fn new(runtime: &Runtime, files: Vec<(&'static str, PathBuf, World)>) -> anyhow::Result<Self> {
        let (events_tx, events) = channel::<PathBuf>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(event) = res
                && (event.kind.is_modify() || event.kind.is_create())
            {
                for p in event.paths {
                    let _ = events_tx.send(p);
                }
            }
        })?;
        let files: Vec<(&'static str, PathBuf, World)> =
            files.into_iter().map(|(r, p, w)| (r, std::path::absolute(&p).unwrap_or(p), w)).collect();
        let mut dirs: Vec<&Path> = files.iter().filter_map(|(_, p, _)| p.parent()).collect();
        dirs.sort();
        dirs.dedup();
        for d in dirs {
            watcher.watch(d, RecursiveMode::NonRecursive)?;
        }
        let (tx, candidates) = channel();
        let runtime = runtime.clone();
        std::thread::Builder::new().name("paddock-reload".into()).spawn(move || {
            // path → when first seen in this burst, when last seen
            let mut pending: Vec<(PathBuf, Instant, Instant)> = Vec::new();
            loop {
                match events.recv_timeout(QUIET) {
                    Ok(p) => {
                        let now = Instant::now();
                        match pending.iter_mut().find(|e| e.0 == p) {
                            Some(e) => e.2 = now,
                            None => pending.push((p, now, now)),
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                let now = Instant::now();
                let (ready, waiting): (Vec<_>, Vec<_>) = pending.drain(..).partition(|e| now - e.2 >= QUIET);
                pending = waiting;
                for (path, seen, _) in ready {
                    for (role, file, world) in &files {
                        if *file == path {
                            let t = Instant::now();
                            let plugin = runtime.load(file, *world);
                            let load_time = t.elapsed();
                            if tx.send(Candidate { role, path: file.clone(), plugin, seen, load_time }).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        })?;
        Ok(PluginWatcher { _watcher: watcher, candidates })
    }

    /// New versions that arrived since the last poll (never blocks).
    pub fn poll(&self) -> Vec<Candidate> {
        self.candidates.try_iter().collect()
    }
}
