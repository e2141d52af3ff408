//! `paddock exp restore`: puts an experiment back into a store that lost it (a bucket
//! recreated, a prefix deleted, a server restarted without its data) from the working
//! copies its workers kept.
//!
//! A worker keeps, in its working directory, a copy of the plan it works on
//! ([`worker::plan_copy`]), the plan's files, each trial's run per epoch and the last state
//! it wrote for each trial it held ([`worker::state_copy`]). A worker that finds the store's
//! state gone stops, keeps that directory and exits with [`worker::EXIT_STORE_LOST`]. This
//! command then, for the experiment at `at`:
//!
//! 1. puts the plan back if it is missing (never over another plan), and every plan file
//!    that is missing;
//! 2. for each trial, takes the newest copy across the directories given (the highest
//!    epoch; a final state before a running one of the same epoch), uploads its runs, and
//!    writes its state where the store has none or an older one that is not final. A trial
//!    a worker was still training comes back queued, from its newest complete checkpoint,
//!    with a preemption counted; a finished one comes back finished with its result, so it
//!    is never trained again;
//! 3. creates a queued state for a trial no copy knows (its progress is lost), and says so.
//!
//! A study's trials (`study/trials/<n>.json`) come back first, from the copies the workers
//! that made them kept ([`worker::study_trial_copy`]); a number no copy knows is made again
//! by the study when a worker next needs work.
//!
//! Running it twice, or with several workers' directories, is safe: it never overwrites a
//! final state or a newer epoch.

use super::trial::{self, CheckpointRef, Status, TrialState};
use super::worker;
use crate::format::experiment::{PLAN, Plan};
use crate::store::{Location, Objects};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What happened to one trial.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrialRestore {
    /// The store's state was kept (it is as new as any copy, or final).
    Kept,
    /// Put back from a worker's copy, as this status.
    Restored(String),
    /// No copy knew it: created queued (its progress, if any, is lost).
    Recreated,
}

/// What `restore` did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Restored {
    /// Whether the plan was put back.
    pub plan: bool,
    /// Plan files uploaded again.
    pub files: usize,
    /// A study's trials (`study/trials/<n>.json`) put back.
    pub study_trials: usize,
    /// Runs (trial epochs) uploaded.
    pub runs: usize,
    /// Each trial, in plan order.
    pub trials: Vec<(String, TrialRestore)>,
    /// The working directories read.
    pub from: Vec<PathBuf>,
}

/// Where workers on this machine keep their working directories (`--from`'s default).
pub fn default_from() -> PathBuf {
    crate::run::runs::work_dir().join("workers")
}

/// The worker directories under `dirs` (each itself, or its children) that hold a copy of
/// experiment `id`'s plan.
fn copies(dirs: &[PathBuf], id: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for d in dirs {
        if !d.is_dir() {
            anyhow::bail!("--from {}: no such directory", d.display());
        }
        if worker::plan_copy(d, id).is_file() {
            out.push(d.clone());
            continue;
        }
        for e in std::fs::read_dir(d).with_context(|| format!("failed to list {}", d.display()))? {
            let p = e?.path();
            if worker::plan_copy(&p, id).is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The newest copy of a trial's state across the worker directories: its state and the
/// directory holding it.
fn best_copy(dirs: &[PathBuf], experiment: &str, id: &str) -> anyhow::Result<Option<(TrialState, PathBuf)>> {
    let mut best: Option<(TrialState, PathBuf)> = None;
    for d in dirs {
        let path = worker::state_copy(d, experiment, id);
        let Ok(data) = std::fs::read(&path) else { continue };
        let s: TrialState = serde_json::from_slice(&data).with_context(|| format!("{} is not a trial state", path.display()))?;
        let better = best.as_ref().is_none_or(|(b, _)| (s.epoch, s.status.is_final()) > (b.epoch, b.status.is_final()));
        if better {
            best = Some((s, d.clone()));
        }
    }
    Ok(best)
}

/// Puts experiment `at` back from the worker directories `from` (see the module docs);
/// `progress` hears each step.
pub fn restore(at: &Location, from: &[PathBuf], progress: &mut dyn FnMut(&str)) -> anyhow::Result<Restored> {
    let objects = crate::store::open(at, &Default::default())?;
    let id = at.name().with_context(|| format!("{at} names no experiment (write STORE/EXPERIMENT_ID)"))?;
    let dirs = copies(from, &id)?;
    let mut out = Restored { from: dirs.clone(), ..Default::default() };
    let plan: Plan = match objects.get(PLAN)? {
        Some(_) => crate::format::experiment::read_plan(objects.as_ref())?,
        None => {
            let Some(d) = dirs.first() else {
                anyhow::bail!(
                    "{at} holds no experiment ({PLAN} is missing) and no worker directory under {} holds a copy of {id}'s plan",
                    from.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
                );
            };
            let data = fs_err::read(worker::plan_copy(d, &id))?;
            let plan: Plan =
                serde_json::from_slice(&data).with_context(|| format!("{} is not a plan", worker::plan_copy(d, &id).display()))?;
            out.plan = objects.put_new(PLAN, &data)?;
            progress(&format!("put the plan back from {}", d.display()));
            plan
        }
    };
    // The plan's files: from the first copy that has each.
    for key in plan.files.values() {
        if objects.get(key)?.is_some() {
            continue;
        }
        let dir = key.rsplit_once('/').map_or("", |(d, _)| d);
        let Some(src) = dirs.iter().map(|d| d.join(dir)).find(|p| p.is_dir()) else {
            anyhow::bail!("{at}: the plan's file {key} is missing and no worker directory holds a copy");
        };
        for (rel, _) in crate::store::walk(&src)? {
            let k = format!("{dir}/{rel}");
            objects.put(&k, &fs_err::read(src.join(&rel))?)?;
        }
        out.files += 1;
    }
    if out.files > 0 {
        progress(&format!("uploaded {} plan files again", out.files));
    }
    // A study's trials, from the workers that made them (each number once: a conditional
    // create never replaces one the store kept), then the plan with them.
    let plan = if plan.search.is_some() {
        for d in &dirs {
            let folder = worker::study_trial_copy(d, &plan.id, 0).parent().map(Path::to_path_buf).unwrap_or_default();
            let Ok(rd) = std::fs::read_dir(&folder) else { continue };
            let mut files: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
            files.sort();
            for f in files {
                let data = fs_err::read(&f)?;
                let t: crate::format::experiment::StudyTrial =
                    serde_json::from_slice(&data).with_context(|| format!("{} is not a study trial", f.display()))?;
                if objects.put_new(&crate::format::experiment::study_trial_key(t.n), &data)? {
                    out.study_trials += 1;
                }
            }
        }
        if out.study_trials > 0 {
            progress(&format!("put {} study trials back", out.study_trials));
        }
        crate::format::experiment::read_plan(objects.as_ref())?
    } else {
        plan
    };
    for t in &plan.trials {
        let stored = match trial::read(objects.as_ref(), &t.id) {
            Ok(h) => Some(h),
            Err(e) if trial::is_missing(&e) => None,
            Err(e) => return Err(e),
        };
        let copy = best_copy(&dirs, &plan.id, &t.id)?;
        let newer = match (&stored, &copy) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(h), Some((c, _))) => !h.state.status.is_final() && c.epoch > h.state.epoch,
        };
        let what = if newer {
            let (mut state, dir) = copy.expect("a newer copy exists");
            out.runs += upload_runs(objects.as_ref(), &dir.join(&plan.id).join(&t.id), &t.id, progress)?;
            if !state.status.is_final() {
                // Its worker stopped when the store went: it goes back to the queue from the
                // newest complete checkpoint any uploaded epoch holds.
                let newest = newest_local_checkpoint(&dir.join(&plan.id).join(&t.id))?;
                state.checkpoint = newest.or(state.checkpoint);
                if state.status == Status::Running {
                    state.preemptions += 1;
                }
                let beat = state.heartbeat;
                state.release(beat);
                state.status = Status::Queued;
                state.owner = None;
                state.lease_until = 0.0;
            }
            let status = state.status.as_str().to_string();
            match &stored {
                None => {
                    trial::create(objects.as_ref(), &t.id, &state)?;
                }
                Some(h) => {
                    trial::write(objects.as_ref(), h, state.clone())?
                        .with_context(|| format!("{at}: trial {} changed while it was restored; run the command again", t.id))?;
                }
            }
            if let Some(r) = &state.result {
                let _ = objects.put_new(&crate::format::experiment::result_key(&t.id), &serde_json::to_vec_pretty(&Some(r))?);
            }
            progress(&format!("trial {}: {status} (epoch {}) from {}", t.id, state.epoch, dir.display()));
            TrialRestore::Restored(status)
        } else if stored.is_some() {
            TrialRestore::Kept
        } else {
            trial::create(objects.as_ref(), &t.id, &TrialState::queued())?;
            progress(&format!("trial {}: no copy found; created queued (its progress, if it had any, is lost)", t.id));
            TrialRestore::Recreated
        };
        out.trials.push((t.id.clone(), what));
    }
    Ok(out)
}

/// Uploads every epoch's run of a trial's working copies (`<dir>/e<epoch>/`) to
/// `trials/<id>/e<epoch>/` (complete checkpoints with their markers): how many.
fn upload_runs(objects: &dyn Objects, dir: &Path, id: &str, progress: &mut dyn FnMut(&str)) -> anyhow::Result<usize> {
    let mut n = 0;
    let Ok(rd) = std::fs::read_dir(dir) else { return Ok(0) };
    let mut epochs: Vec<(u64, PathBuf)> =
        rd.filter_map(Result::ok).filter_map(|e| Some((e.file_name().to_str()?.strip_prefix('e')?.parse().ok()?, e.path()))).collect();
    epochs.sort();
    for (epoch, path) in epochs {
        let remote = crate::store::open(&objects.location().join(&trial::run_prefix(id, epoch)), &Default::default())?;
        crate::run::mirror::upload_once(&path, remote, Duration::from_secs(120))
            .with_context(|| format!("failed to upload {}", path.display()))?;
        progress(&format!("uploaded {}", path.display()));
        n += 1;
    }
    Ok(n)
}

/// The newest complete checkpoint among a trial's local working copies.
fn newest_local_checkpoint(dir: &Path) -> anyhow::Result<Option<CheckpointRef>> {
    let local = crate::store::open(&Location::Local(dir.to_path_buf()), &Default::default())?;
    let mut best = None;
    for name in local.list_dirs("")? {
        let Some(epoch) = name.strip_prefix('e').and_then(|e| e.parse::<u64>().ok()) else { continue };
        let names = crate::run::runs::complete_checkpoints(local.as_ref(), &name)?;
        if let Some(step) = names.last().and_then(|n| n.parse::<u64>().ok())
            && best.is_none_or(|b: CheckpointRef| (epoch, step) > (b.epoch, b.step))
        {
            best = Some(CheckpointRef { epoch, step });
        }
    }
    Ok(best)
}
