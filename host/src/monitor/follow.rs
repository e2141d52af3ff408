//! Following runs in an S3 store for the monitor (`paddock watch s3://bucket/prefix[/RUN]`,
//! or an experiment, `s3://bucket/prefix/<experiment id>`, whose trials show as runs named by
//! their ids, each its newest epoch):
//! a thread copies each run's small files (status, metrics, log, `plugins.lock`, config,
//! scene) into a local directory every two seconds, fetching only what changed size, and
//! the monitor reads that directory as it reads local runs. Checkpoints and the carried
//! plugins are never fetched. Steering (pause, stop) stays with the run's own machine.

use crate::store::{Location, Objects, S3Settings};
use anyhow::Context;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the follower looks at the store.
const EVERY: Duration = Duration::from_secs(2);

/// A running follower; it stops (and its directory goes) when dropped.
pub struct Follower {
    /// What the monitor should watch: the local copy of the store, or of the one run.
    pub path: PathBuf,
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl Follower {
    /// Copies what `location` holds once (so the monitor opens with data), then follows it.
    pub fn start(location: &Location, s3: &S3Settings) -> anyhow::Result<Follower> {
        let objects = crate::store::open(location, s3)?;
        let dir = tempfile::Builder::new().prefix("paddock-watch-").tempdir().context("failed to make a temporary directory")?;
        let single = objects.get(crate::format::run_dir::CONFIG)?.is_some();
        let experiment = !single && objects.get(crate::format::experiment::PLAN)?.is_some();
        let root = dir.path().to_path_buf();
        let path = match (single, location.name()) {
            (true, Some(name)) => root.join(name),
            _ => root.clone(),
        };
        let mut sizes = HashMap::new();
        let pass = move |objects: &dyn Objects, sizes: &mut HashMap<String, u64>, to: &Path| {
            if experiment { sync_experiment(objects, to, sizes) } else { sync(objects, single, to, sizes) }
        };
        pass(objects.as_ref(), &mut sizes, &path).with_context(|| format!("failed to read {location}"))?;
        if !single && !experiment && std::fs::read_dir(&root).map(|d| d.count()).unwrap_or(0) == 0 {
            anyhow::bail!("{location} holds no runs (a run has a {} beside its files)", crate::format::run_dir::CONFIG);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (st, target) = (stop.clone(), path.clone());
        std::thread::Builder::new()
            .name("paddock-follow".into())
            .spawn(move || {
                while !st.load(Ordering::Acquire) {
                    std::thread::sleep(EVERY);
                    // A failed pass (network) is tried again at the next; the monitor shows the last copy.
                    let _ = pass(objects.as_ref(), &mut sizes, &target);
                }
            })
            .context("failed to start the follower thread")?;
        Ok(Follower { path, stop, _dir: dir })
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Whether a run's file is one the monitor reads (not a checkpoint, carried plugin or robot).
fn watched(rel: &str) -> bool {
    ![
        crate::format::run_dir::CHECKPOINTS,
        crate::format::run_dir::PLUGINS_DIR,
        crate::format::run_dir::ROBOTS_DIR,
        crate::format::run_dir::CONTROL,
    ]
    .iter()
    .any(|d| rel.starts_with(&format!("{d}/")))
}

/// Copies the files of the run at `prefix` (its listing: `entries`) that the monitor reads
/// and that changed size since `sizes` last saw them into `local`.
fn copy_changed(
    objects: &dyn Objects,
    prefix: &str,
    entries: Vec<crate::store::Entry>,
    local: &Path,
    sizes: &mut HashMap<String, u64>,
) -> anyhow::Result<()> {
    for e in entries {
        let rel = if prefix.is_empty() { e.key.clone() } else { e.key.trim_start_matches(&format!("{prefix}/")).to_string() };
        if !watched(&rel) || sizes.get(&e.key) == Some(&e.size) {
            continue;
        }
        if let Some(data) = objects.get(&e.key)? {
            let file = local.join(&rel);
            if let Some(parent) = file.parent() {
                fs_err::create_dir_all(parent)?;
            }
            crate::store::write_atomically(&file, &data)?;
            sizes.insert(e.key, e.size);
        }
    }
    Ok(())
}

/// One pass over an experiment: each trial's newest epoch run, as `to/<trial id>/`.
fn sync_experiment(objects: &dyn Objects, to: &Path, sizes: &mut HashMap<String, u64>) -> anyhow::Result<()> {
    let plan = crate::format::experiment::read_plan(objects)?;
    for t in &plan.trials {
        let epochs = objects.list_dirs(&crate::format::trial::trial_prefix(&t.id))?;
        let Some(newest) = epochs.iter().filter_map(|e| e.strip_prefix('e')?.parse::<u64>().ok()).max() else { continue };
        let prefix = crate::format::trial::run_prefix(&t.id, newest);
        let local = to.join(&t.id);
        // A new epoch starts from a copy of the last: follow it from scratch.
        let marker = format!("{}/.epoch", t.id);
        if sizes.get(&marker) != Some(&newest) {
            sizes.retain(|k, _| !k.starts_with(&format!("{}/", crate::format::trial::trial_prefix(&t.id))));
            sizes.insert(marker, newest);
        }
        copy_changed(objects, &prefix, objects.list(&prefix)?, &local, sizes)?;
    }
    Ok(())
}

/// One pass: the run (`single`) or every run of the store, into `to`.
fn sync(objects: &dyn Objects, single: bool, to: &Path, sizes: &mut HashMap<String, u64>) -> anyhow::Result<()> {
    let runs: Vec<String> = if single { vec![String::new()] } else { objects.list_dirs("")? };
    for run in runs {
        let entries = objects.list(&run)?;
        if !single && !entries.iter().any(|e| e.key == format!("{run}/{}", crate::format::run_dir::CONFIG)) {
            continue;
        }
        let local = if single { to.to_path_buf() } else { to.join(&run) };
        copy_changed(objects, &run, entries, &local, sizes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn checkpoints_and_carried_files_are_not_followed() {
        assert!(super::watched("metrics.jsonl") && super::watched("status.json"));
        assert!(!super::watched("checkpoints/000000001024/learner.pt"));
        assert!(!super::watched("plugins/ppo-ab.wasm") && !super::watched("control/stop"));
    }
}
