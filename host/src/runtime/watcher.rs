//! Hot reload: watches the `.wasm` files a run uses (the `notify` crate) and compiles a new
//! version off the training thread, checked against its world and package version, so the
//! training loop only swaps instances at a safe point. A file renamed into place (how build
//! tools and editors replace files atomically) is complete at once and is loaded right
//! away; a file written in place (truncate, write, write…) is loaded once it has been quiet
//! for [`QUIET`]. A file whose bytes did not change (touched, or written twice) is not
//! loaded again.

use crate::runtime::{LoadError, Plugin, Runtime, World};
use notify::{RecursiveMode, Watcher};
use sha2::Digest;
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
    /// The role whose new version is being compiled now, and since when it was seen.
    compiling: std::sync::Arc<std::sync::Mutex<Option<(&'static str, Instant)>>>,
}

impl PluginWatcher {
    /// Watches the files of `plugins` (role, the version the run uses); the directories
    /// holding them are watched, so a file replaced by a rename is seen too.
    pub fn new(runtime: &Runtime, plugins: &[(&'static str, &Plugin)]) -> anyhow::Result<Self> {
        // (path, complete): a rename into place delivers a whole file.
        let (events_tx, events) = channel::<(PathBuf, bool)>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            use notify::event::{EventKind, ModifyKind, RenameMode};
            if let Ok(event) = res
                && (event.kind.is_modify() || event.kind.is_create())
            {
                let renamed_in = matches!(event.kind, EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)));
                // With `Both`, the paths are [from, to]: only `to` is the new file.
                let skip = usize::from(matches!(event.kind, EventKind::Modify(ModifyKind::Name(RenameMode::Both))));
                for p in event.paths.into_iter().skip(skip) {
                    let _ = events_tx.send((p, renamed_in));
                }
            }
        })?;
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        // role, file, world, sha256 (hex) of the version last loaded (the run's own at first)
        let mut files: Vec<(&'static str, PathBuf, World, String)> =
            plugins.iter().map(|(r, p)| (*r, absolute(&p.info().path), p.info().world, p.info().sha256.clone())).collect();
        let mut dirs: Vec<&Path> = files.iter().filter_map(|f| f.1.parent()).collect();
        dirs.sort();
        dirs.dedup();
        for d in dirs {
            watcher.watch(d, RecursiveMode::NonRecursive)?;
        }
        let (tx, candidates) = channel();
        let runtime = runtime.clone();
        let compiling = std::sync::Arc::new(std::sync::Mutex::new(None));
        let now_compiling = compiling.clone();
        let set_compiling = move |v: Option<(&'static str, Instant)>| *now_compiling.lock().unwrap_or_else(|e| e.into_inner()) = v;
        std::thread::Builder::new().name("paddock-reload".into()).spawn(move || {
            // path → when first seen in this burst, when last seen, complete (renamed in)
            let mut pending: Vec<(PathBuf, Instant, Instant, bool)> = Vec::new();
            loop {
                match events.recv_timeout(QUIET) {
                    Ok((p, complete)) => {
                        let now = Instant::now();
                        match pending.iter_mut().find(|e| e.0 == p) {
                            Some(e) => (e.2, e.3) = (now, complete),
                            None => pending.push((p, now, now, complete)),
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                let now = Instant::now();
                let (ready, waiting): (Vec<_>, Vec<_>) = pending.drain(..).partition(|e| e.3 || now - e.2 >= QUIET);
                pending = waiting;
                for (path, seen, _, _) in ready {
                    for (role, file, world, last) in &mut files {
                        if *file == path {
                            // Unchanged bytes (or a file gone mid-replace): nothing to load.
                            let Ok(bytes) = std::fs::read(&*file) else { continue };
                            let sha = hex::encode(sha2::Sha256::digest(&bytes));
                            if *last == sha {
                                continue;
                            }
                            *last = sha;
                            // Said at once: compiling a large component (a Python plugin's
                            // tens of MB) can take a minute on a busy machine.
                            runtime.shared.options.log.line(
                                crate::log::Level::Info,
                                "host",
                                &format!(
                                    "hot reload: a new version of the {role} plugin {} was seen ({:.1} MB, sha256 {}); compiling and checking it",
                                    file.display(),
                                    bytes.len() as f64 / 1e6,
                                    &last[..12]
                                ),
                            );
                            let t = Instant::now();
                            set_compiling(Some((role, seen)));
                            let plugin = runtime.load(&*file, *world);
                            let load_time = t.elapsed();
                            let sent = tx.send(Candidate { role, path: file.clone(), plugin, seen, load_time });
                            set_compiling(None);
                            if sent.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        })?;
        Ok(PluginWatcher { _watcher: watcher, candidates, compiling })
    }

    /// The role whose new version is being compiled and checked now, and how long ago its
    /// file changed.
    pub fn compiling(&self) -> Option<(&'static str, std::time::Duration)> {
        self.compiling.lock().unwrap_or_else(|e| e.into_inner()).map(|(role, seen)| (role, seen.elapsed()))
    }

    /// New versions that arrived since the last poll (never blocks).
    pub fn poll(&self) -> Vec<Candidate> {
        self.candidates.try_iter().collect()
    }
}
