//! A trial's state object and the conditional writes that own it.
//!
//! Each trial has `trials/<id>/state.json` in the experiment's store: status, epoch, owner,
//! lease expiry, the newest complete checkpoint, preemption and error counts, and (once) its
//! result. A worker claims a trial by a conditional write that raises the epoch (If-Match on
//! the tag it read; the first claim creates the object); every heartbeat, checkpoint pointer
//! and the final commit are conditional on the last tag, so a worker that stalled past its
//! lease gets `None` (HTTP 412 on S3) on its next write: it is fenced, stops, and writes
//! nothing more. Runs go under epoch-scoped prefixes (`trials/<id>/e<epoch>/`), so a fenced
//! worker's leftovers never mix with the new owner's files.

use crate::store::Objects;
use serde::{Deserialize, Serialize};

/// Where a trial is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Waiting for a worker (new, preempted, or after an error).
    Queued,
    /// A worker holds its lease.
    Running,
    /// Trained to its end; the result is in the state.
    Done,
    /// Failed `max_errors` times; the last error is in the state.
    Failed,
    /// Stopped early by the experiment's early-stop rule.
    Pruned,
}

impl Status {
    /// Whether nothing more will happen to the trial.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Done | Status::Failed | Status::Pruned)
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Pruned => "pruned",
        }
    }
}

/// A complete checkpoint of a trial: the epoch whose run holds it and its step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRef {
    /// The epoch (`trials/<id>/e<epoch>/`).
    pub epoch: u64,
    /// The env step (`checkpoints/<step>/`).
    pub step: u64,
}

/// What a finished trial reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialResult {
    /// Env steps trained.
    pub steps: u64,
    /// Best evaluation mean return.
    pub best_eval: Option<f64>,
    /// Last evaluation mean return.
    pub last_eval: Option<f64>,
    /// The early-stop metric's last value, when the experiment has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<f64>,
    /// The run that holds the final checkpoint (`trials/<id>/e<epoch>`).
    pub run: String,
}

/// `trials/<id>/state.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialState {
    /// Where it is.
    pub status: Status,
    /// Raised by every claim; the run of epoch `e` lives under `trials/<id>/e<e>/`.
    pub epoch: u64,
    /// The worker holding it (`host-pid-nonce`), while running.
    pub owner: Option<String>,
    /// Unix seconds until which the owner's claim holds without a heartbeat.
    pub lease_until: f64,
    /// The owner's last heartbeat, Unix seconds.
    pub heartbeat: f64,
    /// Env steps of the owner's run at its last heartbeat.
    pub step: u64,
    /// The newest complete checkpoint in the store.
    pub checkpoint: Option<CheckpointRef>,
    /// When that checkpoint was recorded, Unix seconds.
    #[serde(default)]
    pub checkpoint_unix: f64,
    /// Times the trial was put back by a preemption (a spot notice, SIGTERM) or a lost
    /// worker (lease expired): never counted as errors.
    pub preemptions: u64,
    /// Times its run failed.
    pub errors: u64,
    /// Times its worker was lost while holding it (the lease ran out: the process crashed
    /// or was killed, its machine went): counted among the preemptions too, and the trial
    /// is failed after `trial.max_lost` of them, so a trial that kills its worker is not
    /// retried for ever.
    #[serde(default)]
    pub lost: u64,
    /// The last error.
    pub error: Option<String>,
    /// Env steps trained again after interruptions (work redone from the last checkpoint).
    #[serde(default)]
    pub redone_steps: u64,
    /// The result (written once, by the commit that ends the trial).
    pub result: Option<TrialResult>,
    /// The instance the owner runs on (EC2 instance id on a fleet, else its host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// When the owner claimed it, Unix seconds.
    #[serde(default)]
    pub claimed_at: f64,
    /// Every earlier holding: which instance ran the trial, from when to when. Cost is
    /// attributed to trials by it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub occupancy: Vec<Occupancy>,
}

/// A stretch of time an instance held a trial.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Occupancy {
    /// The instance (EC2 instance id, or a host name off EC2).
    pub instance: String,
    /// Unix seconds.
    pub from: f64,
    /// Unix seconds.
    pub to: f64,
}

impl TrialState {
    /// A trial nobody has claimed.
    pub fn queued() -> Self {
        TrialState {
            status: Status::Queued,
            epoch: 0,
            owner: None,
            lease_until: 0.0,
            heartbeat: 0.0,
            step: 0,
            checkpoint: None,
            checkpoint_unix: 0.0,
            preemptions: 0,
            errors: 0,
            lost: 0,
            error: None,
            redone_steps: 0,
            result: None,
            instance: None,
            claimed_at: 0.0,
            occupancy: Vec::new(),
        }
    }

    /// Closes the current owner's holding at `to` (into [`TrialState::occupancy`]).
    pub fn release(&mut self, to: f64) {
        if let Some(instance) = self.instance.take() {
            self.occupancy.push(Occupancy { instance, from: self.claimed_at, to: to.max(self.claimed_at) });
        }
    }

    /// Whether a worker may claim it at Unix time `now`: queued, or running under a lease
    /// that expired (its worker is lost).
    pub fn claimable(&self, now: f64) -> bool {
        self.status == Status::Queued || self.status == Status::Running && self.lease_until < now
    }
}

/// The state object's key of trial `id`.
pub fn state_key(id: &str) -> String {
    format!("trials/{id}/state.json")
}

/// The run prefix of trial `id` at `epoch`.
pub fn run_prefix(id: &str, epoch: u64) -> String {
    format!("trials/{id}/e{epoch}")
}

/// A trial's state as read, with the tag a conditional write must match.
#[derive(Clone, Debug)]
pub struct Held {
    /// The trial.
    pub id: String,
    /// The state.
    pub state: TrialState,
    /// The store's tag of that state.
    pub tag: String,
}

/// A trial whose state object is missing from the store: never read as queued (a worker
/// would run a finished trial again). Submitting creates every state; `paddock exp
/// restore` brings lost ones back.
#[derive(Debug, thiserror::Error)]
#[error("{location}: trial {id} has no state ({key} is missing; `paddock exp restore` brings lost state back)")]
pub struct Missing {
    /// The experiment's store.
    pub location: String,
    /// The trial.
    pub id: String,
    /// The state's key.
    pub key: String,
}

/// Reads trial `id`'s state: [`Missing`] when it has none.
pub fn read(objects: &dyn Objects, id: &str) -> anyhow::Result<Held> {
    let key = state_key(id);
    match objects.get_tagged(&key)? {
        Some((data, tag)) => {
            let state =
                serde_json::from_slice(&data).map_err(|e| anyhow::anyhow!("{}: {key} is not a trial state: {e}", objects.location()))?;
            Ok(Held { id: id.to_string(), state, tag })
        }
        None => Err(Missing { location: objects.location().to_string(), id: id.to_string(), key }.into()),
    }
}

/// Creates trial `id`'s state as `state` if it has none; `true` when this call made it.
pub fn create(objects: &dyn Objects, id: &str, state: &TrialState) -> anyhow::Result<bool> {
    let made = objects.put_new(&state_key(id), &serde_json::to_vec_pretty(state)?)?;
    if made {
        // The index only speeds readers up; the state is written (see `exp::index`).
        let _ = crate::exp::index::note(objects, id, None, state);
    }
    Ok(made)
}

/// Whether `e` is a trial's missing state.
pub fn is_missing(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<Missing>().is_some())
}

/// Fails a running trial whose worker was lost (lease expired) for the `max_lost`th time,
/// instead of claiming it again: the new hold (final), or `None` when another worker wrote
/// first. `Ok(Some)` only when it is due; callers check [`due_to_fail_lost`] first.
pub fn fail_lost(objects: &dyn Objects, held: &Held, max_lost: u64) -> anyhow::Result<Option<Held>> {
    let mut s = held.state.clone();
    s.lost += 1;
    s.preemptions += 1;
    let beat = s.heartbeat;
    s.release(beat);
    s.status = Status::Failed;
    s.owner = None;
    s.error = Some(format!(
        "its worker was lost {max_lost} times while training it (the lease ran out without a heartbeat: the process crashed or was killed, or its machine went); the last run's log is under {}",
        run_prefix(&held.id, s.epoch)
    ));
    write(objects, held, s)
}

/// Whether claiming `held` now would be its worker's `max_lost`th loss.
pub fn due_to_fail_lost(held: &Held, now: f64, max_lost: u64) -> bool {
    held.state.status == Status::Running && held.state.lease_until < now && held.state.lost + 1 >= max_lost
}

/// Claims `held` for `owner` (on `instance`) with a lease of `lease_s`: the epoch goes up
/// by one. `None` when another worker wrote first. A running trial whose lease expired
/// counts a preemption (its worker is lost), not an error; its holding ends at its last
/// heartbeat.
pub fn claim(
    objects: &dyn Objects,
    held: &Held,
    owner: &str,
    instance: Option<&str>,
    now: f64,
    lease_s: f64,
) -> anyhow::Result<Option<Held>> {
    let mut s = held.state.clone();
    if s.status == Status::Running {
        s.preemptions += 1;
        s.lost += 1;
        let beat = s.heartbeat;
        s.release(beat);
    }
    s.instance = instance.map(str::to_string);
    s.claimed_at = now;
    s.status = Status::Running;
    s.epoch += 1;
    s.owner = Some(owner.to_string());
    s.lease_until = now + lease_s;
    s.heartbeat = now;
    write(objects, held, s)
}

/// Writes `next` over `held` if nobody else wrote since: the new hold, or `None`.
/// A transition (not a heartbeat) also moves the trial's marker in the index
/// ([`crate::exp::index`]).
pub fn write(objects: &dyn Objects, held: &Held, next: TrialState) -> anyhow::Result<Option<Held>> {
    let data = serde_json::to_vec_pretty(&next)?;
    let Some(tag) = objects.put_if_match(&state_key(&held.id), &data, &held.tag)? else { return Ok(None) };
    // The index only speeds readers up (they fall back to the state): a failed marker write
    // is not the write's failure.
    let _ = crate::exp::index::note(objects, &held.id, Some(&held.state), &next);
    Ok(Some(Held { id: held.id.clone(), state: next, tag }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_raises_the_epoch_and_fences_the_previous_owner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = crate::store::open(&crate::store::Location::Local(dir.path().to_path_buf()), &Default::default()).expect("store");
        assert!(is_missing(&read(objects.as_ref(), "t0").expect_err("no state yet")), "a missing state is not read as queued");
        assert!(create(objects.as_ref(), "t0", &TrialState::queued()).expect("create"));
        let first = read(objects.as_ref(), "t0").expect("read");
        assert!(first.state.claimable(0.0));
        let a = claim(objects.as_ref(), &first, "a", Some("i-a"), 100.0, 60.0).expect("claim").expect("won");
        assert_eq!((a.state.epoch, a.state.owner.as_deref()), (1, Some("a")));
        assert!(claim(objects.as_ref(), &first, "b", None, 100.0, 60.0).expect("claim").is_none(), "b read before a's claim: refused");
        let now = read(objects.as_ref(), "t0").expect("read");
        assert!(!now.state.claimable(150.0), "a's lease holds");
        // a stalls past its lease; b claims; a wakes and is fenced.
        let b = claim(objects.as_ref(), &now, "b", Some("i-b"), 200.0, 60.0).expect("claim").expect("won");
        assert_eq!((b.state.epoch, b.state.preemptions), (2, 1), "a lost worker is a preemption, not an error");
        assert_eq!(
            b.state.occupancy,
            vec![Occupancy { instance: "i-a".into(), from: 100.0, to: 100.0 }],
            "a's holding ends at its last beat"
        );
        let beat = TrialState { heartbeat: 201.0, ..a.state.clone() };
        assert!(write(objects.as_ref(), &a, beat).expect("write").is_none(), "a's heartbeat is refused: fenced");
        assert_eq!(read(objects.as_ref(), "t0").expect("read").state.owner.as_deref(), Some("b"));
        assert!(!create(objects.as_ref(), "t0", &TrialState::queued()).expect("create"), "create never overwrites");
        // b is lost too (its lease runs out): with max_lost 2 the trial is failed, not claimed.
        let now = read(objects.as_ref(), "t0").expect("read");
        assert!(!due_to_fail_lost(&now, 250.0, 2), "b's lease holds");
        assert!(due_to_fail_lost(&now, 300.0, 2), "{:?}", now.state);
        let failed = fail_lost(objects.as_ref(), &now, 2).expect("fail").expect("written");
        assert_eq!((failed.state.status, failed.state.lost, failed.state.preemptions), (Status::Failed, 2, 2));
        assert!(failed.state.error.as_deref().is_some_and(|e| e.contains("lost 2 times")), "{:?}", failed.state.error);
        let b = read(objects.as_ref(), "t0").expect("read");
        // The store loses the state: the next write is not "fenced", it is an error that says so.
        std::fs::remove_dir_all(dir.path().join("trials")).expect("rm");
        let gone = write(objects.as_ref(), &b, b.state.clone()).expect_err("the state is gone");
        assert!(matches!(crate::store::store_error(&gone), Some(crate::store::StoreError::Vanished(_))), "{gone:#}");
    }
}
