//! Runs in a store: listing them and fetching one into a local directory. A checkpoint in
//! an S3 store counts only with its `COMPLETE` marker, and every file fetched is checked
//! against the marker's size and sha256.

use crate::format::checkpoint::{COMPLETE, Marker};
use crate::format::run_dir::{CHECKPOINTS, CONFIG, PARTIAL_PREFIX, STATUS, is_checkpoint_name};
use crate::store::{Location, Objects};
use anyhow::Context;
use sha2::Digest;
use std::path::{Path, PathBuf};

/// The complete checkpoints of the run at `run` (a key prefix), oldest first.
pub fn complete_checkpoints(objects: &dyn Objects, run: &str) -> anyhow::Result<Vec<String>> {
    let local = matches!(objects.location(), Location::Local(_));
    let prefix = crate::store::join_key(run, CHECKPOINTS);
    let mut names: Vec<String> = if local {
        // A run the training loop wrote here: the directory rename is the commit point
        // (`.tmp-*` are partial). A run a mirror uploaded here (a worker's trial in a local
        // experiment store) is written file by file: there, as in S3, only a checkpoint with
        // its `COMPLETE` marker is complete.
        let dirs: Vec<String> = objects.list_dirs(&prefix)?.into_iter().filter(|n| is_checkpoint_name(n)).collect();
        let marked: Vec<String> =
            dirs.iter().filter(|n| objects.get(&format!("{prefix}/{n}/{COMPLETE}")).is_ok_and(|m| m.is_some())).cloned().collect();
        if marked.is_empty() { dirs } else { marked }
    } else {
        objects
            .list(&prefix)?
            .into_iter()
            .filter_map(|e| e.key.strip_prefix(&format!("{prefix}/"))?.strip_suffix(&format!("/{COMPLETE}")).map(String::from))
            .filter(|n| is_checkpoint_name(n))
            .collect()
    };
    names.sort();
    Ok(names)
}

/// One row of `paddock runs ls`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunRow {
    /// The run's name (its directory in the store).
    pub name: String,
    /// `status.json`'s state, if it has one.
    pub state: Option<crate::format::status::Observed>,
    /// Env steps done, from `status.json`.
    pub step: Option<u64>,
    /// Total env steps.
    pub total: Option<u64>,
    /// Best eval return.
    pub best_eval: Option<f64>,
    /// The newest complete checkpoint (its step).
    pub latest_checkpoint: Option<u64>,
    /// Complete checkpoints.
    pub checkpoints: usize,
    /// The run's tags (its config's `tags`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// Every run in a store (directories holding a `config.toml`).
pub fn list_runs(objects: &dyn Objects) -> anyhow::Result<Vec<RunRow>> {
    let mut rows = Vec::new();
    for name in objects.list_dirs("")? {
        let Some(config) = objects.get(&format!("{name}/{CONFIG}"))? else { continue };
        let tags = String::from_utf8_lossy(&config)
            .parse::<toml::Table>()
            .ok()
            .and_then(|t| t.get("tags")?.as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()))
            .unwrap_or_default();
        let bytes = objects.get(&format!("{name}/{STATUS}"))?;
        let status: Option<serde_json::Value> = bytes.as_ref().and_then(|d| serde_json::from_slice(d).ok());
        let typed: Option<crate::format::status::Status> = bytes.as_ref().and_then(|d| serde_json::from_slice(d).ok());
        let field = |k: &str| status.as_ref().and_then(|s| s.get(k)).cloned();
        let checkpoints = complete_checkpoints(objects, &name)?;
        let now = crate::format::status::unix_now();
        rows.push(RunRow {
            state: typed.map(|s| s.observed(now)),
            step: field("step").and_then(|v| v.as_u64()),
            total: field("total_steps").and_then(|v| v.as_u64()),
            best_eval: field("best_eval").and_then(|v| v.as_f64()),
            latest_checkpoint: checkpoints.last().and_then(|c| c.parse().ok()),
            checkpoints: checkpoints.len(),
            tags,
            name,
        });
    }
    Ok(rows)
}

/// Which checkpoints [`pull_run`] fetches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checkpoints {
    /// Every complete checkpoint.
    All,
    /// The newest complete one.
    Latest,
    /// This one (its directory name).
    One(String),
    /// None.
    None,
}

/// What [`pull_run`] fetched.
#[derive(Debug)]
pub struct Pulled {
    /// Files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
    /// The checkpoints fetched, as local directories, oldest first.
    pub checkpoints: Vec<PathBuf>,
}

/// Fetches the run at key prefix `run` of `objects` into `dest` (created): its files and the
/// chosen complete checkpoints, each file checked against its checkpoint's marker.
/// `progress` is called with each file written.
pub fn pull_run(
    objects: &dyn Objects,
    run: &str,
    dest: &Path,
    which: &Checkpoints,
    progress: &mut dyn FnMut(&str, u64),
) -> anyhow::Result<Pulled> {
    let from = objects.location().join(run);
    let all = objects.list(run)?;
    if !all.iter().any(|e| e.key == crate::store::join_key(run, CONFIG)) {
        anyhow::bail!("{from} is not a run (it has no config.toml)");
    }
    let complete = complete_checkpoints(objects, run)?;
    let wanted: Vec<String> = match which {
        Checkpoints::All => complete.clone(),
        Checkpoints::Latest => complete.last().cloned().into_iter().collect(),
        Checkpoints::None => Vec::new(),
        Checkpoints::One(c) => {
            if !complete.contains(c) {
                anyhow::bail!(
                    "{from} has no complete checkpoint {c} (complete: {})",
                    if complete.is_empty() { "none".into() } else { complete.join(", ") }
                );
            }
            vec![c.clone()]
        }
    };
    std::fs::create_dir_all(dest).with_context(|| format!("failed to create {}", dest.display()))?;
    let mut pulled = Pulled { files: 0, bytes: 0, checkpoints: Vec::new() };
    let run_prefix = crate::store::dir_prefix(run);
    for e in &all {
        let Some(rel) = e.key.strip_prefix(&run_prefix) else { continue };
        if rel.starts_with("checkpoints/") || rel.starts_with("control/") {
            continue;
        }
        let data = objects.get(&e.key)?.with_context(|| format!("{from}/{rel} vanished while it was fetched"))?;
        crate::store::write_atomically(&dest.join(rel), &data)?;
        progress(rel, data.len() as u64);
        pulled.files += 1;
        pulled.bytes += data.len() as u64;
    }
    for name in wanted {
        let base = format!("{run_prefix}checkpoints/{name}");
        let local_dir = dest.join(CHECKPOINTS).join(&name);
        let tmp = dest.join(CHECKPOINTS).join(format!("{PARTIAL_PREFIX}{name}"));
        let _ = std::fs::remove_dir_all(&tmp);
        let files: Vec<(String, Option<(u64, String)>)> = if matches!(objects.location(), Location::Local(_)) {
            all.iter().filter_map(|e| e.key.strip_prefix(&format!("{base}/")).map(|r| (r.to_string(), None))).collect()
        } else {
            let marker =
                objects.get(&format!("{base}/{COMPLETE}"))?.with_context(|| format!("{from}: checkpoint {name} lost its marker"))?;
            let marker: Marker =
                serde_json::from_slice(&marker).with_context(|| format!("{from}: checkpoint {name} has a garbled {COMPLETE} marker"))?;
            marker.files.into_iter().map(|f| (f.path, Some((f.size, f.sha256)))).collect()
        };
        for (rel, check) in files {
            let data = objects
                .get(&format!("{base}/{rel}"))?
                .with_context(|| format!("{from}: checkpoint {name} lacks {rel}, which its marker lists"))?;
            if let Some((size, sha)) = check {
                let got = hex::encode(sha2::Sha256::digest(&data));
                if data.len() as u64 != size || got != sha {
                    anyhow::bail!(
                        "{from}: checkpoint {name}: {rel} does not match its marker (size {} vs {size}, sha256 {got} vs {sha})",
                        data.len()
                    );
                }
            }
            crate::store::write_atomically(&tmp.join(&rel), &data)?;
            progress(&format!("checkpoints/{name}/{rel}"), data.len() as u64);
            pulled.files += 1;
            pulled.bytes += data.len() as u64;
        }
        let _ = std::fs::remove_dir_all(&local_dir);
        std::fs::rename(&tmp, &local_dir).with_context(|| format!("failed to place {}", local_dir.display()))?;
        pulled.checkpoints.push(local_dir);
    }
    Ok(pulled)
}

/// Where S3 runs are trained and fetched on this machine: `$PADDOCK_WORK_DIR`, else the
/// user's local data directory.
pub fn work_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PADDOCK_WORK_DIR") {
        return PathBuf::from(d);
    }
    directories::ProjectDirs::from("", "", "paddock").map_or_else(|| PathBuf::from(".paddock"), |d| d.data_local_dir().join("runs"))
}

/// The local working copy of an S3 run. An older copy there is moved aside (kept, never
/// deleted: it may hold what never reached the store), and the new path returned.
pub fn fresh_working_copy(location: &Location) -> anyhow::Result<(PathBuf, Option<PathBuf>)> {
    let Location::S3 { bucket, prefix } = location else { anyhow::bail!("{location} is not an S3 location") };
    let dir = work_dir().join(bucket).join(prefix);
    let mut moved = None;
    if dir.exists() {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let aside =
            dir.with_file_name(format!("{}.old-{secs}", dir.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())));
        std::fs::rename(&dir, &aside).with_context(|| format!("failed to move the old working copy {} aside", dir.display()))?;
        moved = Some(aside);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    Ok((dir, moved))
}

/// The store a run lies in (opened with the SDK's environment) and the run's name there.
pub fn open_run(location: &Location) -> anyhow::Result<(std::sync::Arc<dyn Objects>, String)> {
    let (store, name) = split_run(location)?;
    Ok((crate::store::open(&store, &Default::default())?, name))
}

/// Splits an S3 location into its store (parent) and run name.
pub fn split_run(location: &Location) -> anyhow::Result<(Location, String)> {
    match location {
        Location::S3 { bucket, prefix } => {
            let (parent, name) = prefix.rsplit_once('/').unwrap_or(("", prefix.as_str()));
            if name.is_empty() {
                anyhow::bail!("{location} names no run (write s3://BUCKET/PREFIX/RUN)");
            }
            Ok((Location::S3 { bucket: bucket.clone(), prefix: parent.into() }, name.into()))
        }
        Location::Local(p) => {
            let name = p.file_name().context("a run path names a directory")?.to_string_lossy().into_owned();
            Ok((Location::Local(p.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)), name))
        }
    }
}
