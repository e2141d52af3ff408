//! The run directory's layout: every file name, the `plugins.lock` schema and checkpoint
//! directory names (`status.json` and `control/` are [`super::status`]). The training loop,
//! the monitor, the S3 mirror, `runs ls/pull` and the CLI all read and write runs through it.
//!
//! ```text
//! <store>/<run-id>/
//!   config.toml          the resolved config (defaults filled in, paths absolute, registry references pinned)
//!   plugins.lock         every plugin version the run used: role, name, source, sha256, world
//!   plugins/<name>-<sha256>.wasm  a copy of each of those versions (`run::carry`)
//!   robots/<name>/       a copy of each robot file the env may load, with its meshes
//!   metrics.jsonl        one JSON line per update / evaluation / reload (deterministic bytes)
//!   events.out.tfevents.*  the same metrics for TensorBoard
//!   log.txt              host and plugin output
//!   status.json          live state (wall clock; not part of the deterministic record)
//!   scene.json           one env's physics scene, about once a second (physics envs)
//!   control/             pause, checkpoint, stop requests
//!   checkpoints/<step>/  complete checkpoints (12-digit step); `.tmp-*` are partial
//! ```

use std::path::{Path, PathBuf};

/// The resolved config a run keeps, for exact replay.
pub const CONFIG: &str = "config.toml";
/// Every plugin version the run used (see [`LockEntry`]).
pub const PLUGINS_LOCK: &str = "plugins.lock";
/// Where a run keeps a copy of each plugin version it used (`<sha256>.wasm`).
pub const PLUGINS_DIR: &str = "plugins";
/// Where a run keeps a copy of each robot file its env may load (`<name>/…`).
pub const ROBOTS_DIR: &str = "robots";
/// One JSON line per logged step.
pub const METRICS: &str = "metrics.jsonl";
/// Host and plugin output.
pub const LOG: &str = "log.txt";
/// The live state (see [`super::status::Status`]).
pub const STATUS: &str = "status.json";
/// One env's physics scene, for the monitor.
pub const SCENE: &str = "scene.json";
/// Requests to a running loop (see [`super::status::Request`]).
pub const CONTROL: &str = "control";
/// Where complete checkpoints lie, one directory each.
pub const CHECKPOINTS: &str = "checkpoints";
/// The prefix of TensorBoard event files.
pub const TENSORBOARD_PREFIX: &str = "events.out.tfevents.";
/// The prefix of a checkpoint being written (never loaded).
pub const PARTIAL_PREFIX: &str = ".tmp-";

/// A checkpoint directory's name: the env step, zero-padded so names sort by step.
pub fn checkpoint_name(step: u64) -> String {
    format!("{step:012}")
}

/// Whether `name` is a complete checkpoint directory's name (the step, 12 digits).
pub fn is_checkpoint_name(name: &str) -> bool {
    name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit())
}

/// The step a checkpoint directory holds, from its name.
pub fn checkpoint_step(dir: &Path) -> Option<u64> {
    dir.file_name().and_then(|n| n.to_str()).filter(|n| is_checkpoint_name(n)).and_then(|n| n.parse().ok())
}

/// Every complete checkpoint of the run in `run_dir`, oldest first.
pub fn checkpoints(run_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(run_dir.join(CHECKPOINTS)) else { return Vec::new() };
    let mut all: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| checkpoint_step(p).is_some()).collect();
    all.sort();
    all
}

/// The newest complete checkpoint of the run in `run_dir`, if any.
pub fn latest_checkpoint(run_dir: &Path) -> Option<PathBuf> {
    checkpoints(run_dir).pop()
}

/// Removes the partial checkpoints a killed run left (`.tmp-*`): they are never loaded.
pub fn remove_partial_checkpoints(run_dir: &Path) -> std::io::Result<()> {
    let Ok(entries) = std::fs::read_dir(run_dir.join(CHECKPOINTS)) else { return Ok(()) };
    for e in entries.filter_map(Result::ok) {
        if e.file_name().to_string_lossy().starts_with(PARTIAL_PREFIX) {
            fs_err::remove_dir_all(e.path())?;
        }
    }
    Ok(())
}

/// A checkpoint directory and the run directory it belongs to (`<run>/checkpoints/<step>`).
pub fn run_of_checkpoint(checkpoint: &Path) -> Option<PathBuf> {
    checkpoint_step(checkpoint)?;
    let parent = checkpoint.parent()?;
    (parent.file_name()? == CHECKPOINTS).then(|| parent.parent().map(Path::to_path_buf)).flatten()
}

/// One version of a plugin a run used: an entry of `plugins.lock`. The versions a run
/// started with have `since_step` 0; hot-reloaded ones the env step they went live at.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LockEntry {
    /// `env`, `reward` or `algorithm`.
    pub role: String,
    /// The plugin's name.
    pub name: String,
    /// Where it came from (a file, or a `registry:` reference).
    pub source: String,
    /// Hex sha256 of the component.
    pub sha256: String,
    /// Its world.
    pub world: String,
    /// Its `paddock:rl` package version.
    pub package_version: String,
    /// The env step it went live at.
    pub since_step: u64,
}

/// Why `plugins.lock` cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The file could not be read or written.
    #[error("failed to {what} {path}: {source}")]
    Io {
        /// `read` or `write`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a `plugins.lock`.
    #[error("{path} is not a plugins.lock: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads `plugins.lock` (an empty list when there is none).
pub fn read_lock(run_dir: &Path) -> Result<Vec<LockEntry>, LockError> {
    let path = run_dir.join(PLUGINS_LOCK);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|source| LockError::Parse { path, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(LockError::Io { what: "read", path, source }),
    }
}

/// Writes `plugins.lock` whole.
pub fn write_lock(run_dir: &Path, entries: &[LockEntry]) -> Result<(), LockError> {
    let path = run_dir.join(PLUGINS_LOCK);
    let text = serde_json::to_string_pretty(entries).map_err(|source| LockError::Parse { path: path.clone(), source })? + "\n";
    std::fs::write(&path, text).map_err(|source| LockError::Io { what: "write", path, source })
}

/// Appends a version (a hot reload) to `plugins.lock`. An unreadable lock is an error
/// rather than overwritten.
pub fn append_lock(run_dir: &Path, entry: LockEntry) -> Result<(), LockError> {
    let mut lock = read_lock(run_dir)?;
    lock.push(entry);
    write_lock(run_dir, &lock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_names_sort_by_step_and_partial_ones_are_not_checkpoints() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cps = dir.path().join(CHECKPOINTS);
        for name in [checkpoint_name(900), checkpoint_name(10_000), format!("{PARTIAL_PREFIX}{}", checkpoint_name(20_000))] {
            std::fs::create_dir_all(cps.join(name)).expect("mkdir");
        }
        assert_eq!(checkpoints(dir.path()).len(), 2);
        let latest = latest_checkpoint(dir.path()).expect("latest");
        assert_eq!(checkpoint_step(&latest), Some(10_000));
        assert_eq!(run_of_checkpoint(&latest).as_deref(), Some(dir.path()));
        remove_partial_checkpoints(dir.path()).expect("remove");
        assert_eq!(std::fs::read_dir(&cps).expect("ls").count(), 2);
        assert!(!is_checkpoint_name("12345") && !is_checkpoint_name("00000000001x"));
    }

    #[test]
    fn the_lock_round_trips_and_a_garbled_one_is_not_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read_lock(dir.path()).expect("none yet").is_empty());
        let e = LockEntry {
            role: "env".into(),
            name: "cartpole".into(),
            source: "plugins/cartpole.wasm".into(),
            sha256: "ab".repeat(32),
            world: "environment".into(),
            package_version: "0.1.1".into(),
            since_step: 0,
        };
        write_lock(dir.path(), std::slice::from_ref(&e)).expect("write");
        append_lock(dir.path(), LockEntry { since_step: 512, ..e.clone() }).expect("append");
        let lock = read_lock(dir.path()).expect("read");
        assert_eq!(lock.len(), 2);
        assert_eq!(lock[1].since_step, 512);
        std::fs::write(dir.path().join(PLUGINS_LOCK), "[{").expect("garble");
        let err = append_lock(dir.path(), e).expect_err("garbled");
        assert!(err.to_string().contains("is not a plugins.lock"), "{err}");
        assert_eq!(std::fs::read_to_string(dir.path().join(PLUGINS_LOCK)).expect("read"), "[{");
    }
}
