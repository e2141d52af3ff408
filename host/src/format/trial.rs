//! `trials/<id>/state.json` in an experiment's store: a trial's status, epoch, owner and
//! lease, its newest complete checkpoint, its counts and (once) its result; and the keys of a
//! trial's objects. Reading a state never creates one ([`Missing`]); the conditional writes
//! that own a state are `exp::trial`'s.

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

/// Everything of trial `id` in the store (its state and its runs) is under this prefix.
pub fn trial_prefix(id: &str) -> String {
    format!("trials/{id}")
}

/// The state object's key of trial `id`.
pub fn state_key(id: &str) -> String {
    format!("{}/state.json", trial_prefix(id))
}

/// The run prefix of trial `id` at `epoch`.
pub fn run_prefix(id: &str, epoch: u64) -> String {
    format!("{}/e{epoch}", trial_prefix(id))
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

/// Whether `e` is a trial's missing state.
pub fn is_missing(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<Missing>().is_some())
}
