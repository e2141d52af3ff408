//! The experiment's index: one small marker object per trial, whose key names the trial's
//! epoch, status and a hash of its state, so one listing of `index/` tells where every
//! trial is (1,000 keys a request on S3) and which states changed since they were last read.
//!
//! `index/<trial>/e<epoch>_<status>_<hash>`, written (with the state as its body) after each
//! transition of the trial's state — created, claimed, given back, committed, restored —
//! and the previous marker deleted; heartbeats change no marker (a running state's hash
//! covers only its epoch, owner and claim time). The state object stays the truth: a reader
//! ([`Overview`]) reads the live state of every trial whose marker says running, and of any
//! trial whose marker it has not seen; a state seen under a non-running marker is kept and
//! not read again (it cannot change until the next transition, which writes a new marker).
//!
//! A marker write that fails (the store went away between the state's write and the
//! marker's) leaves the previous marker; a trial with two markers counts by the newer one
//! (higher epoch; at the same epoch, the one that is not running). A trial with no marker
//! (an experiment from before the index) is read from its state. Experiments of at most
//! [`READ_DIRECTLY`] trials skip the listing and read each state (cheaper on S3).

use super::experiment::Plan;
use super::trial::{self, Status, TrialState};
use crate::store::Objects;
use sha2::Digest;
use std::collections::HashMap;
use std::path::Path;

/// Experiments with at most this many trials are read state by state: on S3 a LIST is
/// priced as 12.5 GETs (and, like a PUT, at $0.005 per 1,000).
pub const READ_DIRECTLY: usize = 12;

/// The prefix of the markers.
pub const INDEX: &str = "index";

/// The marker key of trial `id` in `state`.
pub fn marker(id: &str, state: &TrialState) -> String {
    let identity = if state.status == Status::Running {
        format!("{}/{}/{}", state.epoch, state.owner.as_deref().unwrap_or(""), state.claimed_at)
    } else {
        serde_json::to_string(state).unwrap_or_default()
    };
    let hash = hex::encode(&sha2::Sha256::digest(identity.as_bytes())[..6]);
    format!("{INDEX}/{id}/e{:06}_{}_{hash}", state.epoch, state.status.as_str())
}

/// Records a transition of trial `id` from `prev` to `next` (its state already written): the
/// new marker, then the old one deleted. Nothing when the marker is the same (a heartbeat).
pub fn note(objects: &dyn Objects, id: &str, prev: Option<&TrialState>, next: &TrialState) -> anyhow::Result<()> {
    let new = marker(id, next);
    let old = prev.map(|p| marker(id, p));
    if old.as_deref() == Some(new.as_str()) {
        return Ok(());
    }
    objects.put(&new, &serde_json::to_vec(next)?)?;
    if let Some(old) = old {
        objects.delete(&old)?;
    }
    Ok(())
}

/// A file name for the overview cache of the experiment at `at` (a hash of its location).
pub fn cache_name(at: &crate::store::Location) -> String {
    hex::encode(&sha2::Sha256::digest(at.to_string().as_bytes())[..8])
}

/// A parsed marker: epoch, whether it is running, and the status name.
fn parse(name: &str) -> Option<(u64, Status)> {
    let mut parts = name.split('_');
    let epoch = parts.next()?.strip_prefix('e')?.parse().ok()?;
    let status = match parts.next()? {
        "queued" => Status::Queued,
        "running" => Status::Running,
        "done" => Status::Done,
        "failed" => Status::Failed,
        "pruned" => Status::Pruned,
        _ => return None,
    };
    Some((epoch, status))
}

/// Every trial's state for a reader that looks again and again (`exp status`, the runner,
/// the fleet controller), at the cost of one listing plus a GET per running or changed
/// trial (see the module docs).
#[derive(Debug, Default)]
pub struct Overview {
    /// States seen, by marker key (only non-running ones).
    seen: HashMap<String, TrialState>,
    /// Requests the last [`Overview::read`] made.
    pub requests: usize,
    /// A study's trials, read once each.
    study: super::experiment::StudyCache,
}

impl Overview {
    /// An overview that remembers what it saw in `path` (a JSON file; missing or unreadable:
    /// empty).
    pub fn load(path: &Path) -> Overview {
        let seen = std::fs::read(path).ok().and_then(|d| serde_json::from_slice(&d).ok()).unwrap_or_default();
        Overview { seen, requests: 0, study: Default::default() }
    }

    /// Saves what it saw to `path` (best effort: a cache).
    pub fn save(&self, path: &Path) {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if let Ok(data) = serde_json::to_vec(&self.seen) {
            let _ = crate::store::write_atomically(path, &data);
        }
    }

    /// Every trial's state, in plan order. A trial's missing state is an error
    /// ([`trial::Missing`]), as in [`trial::read`].
    pub fn read(&mut self, objects: &dyn Objects, plan: &Plan) -> anyhow::Result<Vec<(String, TrialState)>> {
        let plan = &*self.study.with_trials(objects, plan)?;
        if plan.trials.len() <= READ_DIRECTLY {
            // A listing costs as much as a dozen GETs on S3: small experiments read each state.
            self.requests = plan.trials.len();
            let mut out = super::experiment::made_states(objects, plan)?;
            out.extend(super::experiment::unmade(plan));
            return Ok(out);
        }
        let entries = objects.list(INDEX)?;
        self.requests = 1 + entries.len() / 1000;
        let mut newest: HashMap<&str, (u64, bool, String)> = HashMap::new();
        for e in &entries {
            let Some((id, name)) = e.key.strip_prefix(&format!("{INDEX}/")).and_then(|k| k.split_once('/')) else { continue };
            let Some((epoch, status)) = parse(name) else { continue };
            let rank = (epoch, status != Status::Running);
            if newest.get(id).is_none_or(|(ep, settled, _)| rank > (*ep, *settled)) {
                newest.insert(id, (epoch, rank.1, e.key.clone()));
            }
        }
        let queued = TrialState::queued();
        let mut out = Vec::with_capacity(plan.trials.len());
        for t in &plan.trials {
            let state = match newest.get(t.id.as_str()) {
                Some((_, true, key)) if self.seen.contains_key(key) => self.seen[key].clone(),
                Some((_, true, key)) if *key == marker(&t.id, &queued) => queued.clone(),
                Some((_, settled, key)) => {
                    self.requests += 1;
                    let s = trial::read(objects, &t.id)?.state;
                    if *settled && marker(&t.id, &s) == *key {
                        self.seen.insert(key.clone(), s.clone());
                    }
                    s
                }
                None => {
                    self.requests += 1;
                    super::experiment::state_of(objects, &t.id, plan.search.is_some())?
                }
            };
            out.push((t.id.clone(), state));
        }
        out.extend(super::experiment::unmade(plan));
        // Forget what no trial points at any more.
        let live: std::collections::HashSet<&String> = newest.values().map(|(_, _, k)| k).collect();
        self.seen.retain(|k, _| live.contains(k));
        Ok(out)
    }
}
