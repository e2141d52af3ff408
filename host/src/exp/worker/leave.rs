//! What a worker is told ([`WorkerOptions`]), what it reports ([`WorkerSummary`]), how a
//! trial it held ended ([`Outcome`]), and when and why it leaves: fatal store errors, the
//! exit statuses, the copies it keeps.

use crate::exp::cloud::Queues;
use crate::exp::trial;
use crate::format::experiment::PLAN;
use crate::run;
use crate::store::Location;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How a worker runs.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// The experiment (`<store>/<experiment id>`).
    pub experiment: Location,
    /// Where working copies go.
    pub work_dir: PathBuf,
    /// Leave after this long with nothing to claim while no trial is running anywhere
    /// (`None`: leave as soon as every trial is final).
    pub idle_timeout: Option<Duration>,
    /// The most trials to run before leaving (`None`: no limit).
    pub max_trials: Option<usize>,
    /// Leave when the store has been unreachable this long while looking for work.
    pub store_lost_after: Duration,
    /// Take trial ids from these queues (else look through the trials' states in the store).
    pub queue: Option<Queues>,
    /// The instance this worker runs on (its EC2 instance id on a fleet), recorded in the
    /// trials it holds so their cost can be attributed.
    pub instance: Option<String>,
}

/// What a worker did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct WorkerSummary {
    /// Trials it committed (done or pruned).
    pub committed: Vec<String>,
    /// Trials it gave back (preempted, failed, fenced).
    pub given_back: Vec<String>,
    /// Whether a signal or a spot notice stopped it.
    pub interrupted: bool,
    /// Why it left.
    pub left: Left,
    /// Why the store cannot be worked with any more, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Working copies of trials whose runs or states may exist nowhere else (the store lost
    /// them): the worker keeps its whole working directory, and `paddock exp restore`
    /// uploads them when the store is back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<PathBuf>,
}

/// Why a worker left (in `--json`: the words of [`Left::as_str`], `"store unreachable"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Left {
    /// Every trial is final.
    #[default]
    Done,
    /// Nothing to claim for `idle_timeout` while no trial ran anywhere.
    Idle,
    /// It ran `max_trials`.
    MaxTrials,
    /// The store (or queue) was unreachable for `store_lost_after` while it looked for work.
    StoreUnreachable,
    /// A signal or a spot notice.
    Interrupted,
    /// The store lost the experiment's state ([`WorkerSummary::problem`] says what); its
    /// working copies are kept.
    StoreLost,
    /// The store refuses its credentials.
    CredentialsRefused,
    /// Its own disk is full.
    DiskFull,
}

impl Left {
    /// The words `--json` uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Left::Done => "done",
            Left::Idle => "idle",
            Left::MaxTrials => "max trials",
            Left::StoreUnreachable => "store unreachable",
            Left::Interrupted => "interrupted",
            Left::StoreLost => "store lost",
            Left::CredentialsRefused => "credentials refused",
            Left::DiskFull => "disk full",
        }
    }
}

impl serde::Serialize for Left {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Left {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `paddock worker`'s exit status when the store lost the experiment's state (its working
/// copies are kept; `paddock exp restore` uploads them).
pub const EXIT_STORE_LOST: i32 = 3;
/// `paddock worker`'s exit status when the store refuses its credentials.
pub const EXIT_CREDENTIALS: i32 = 4;
/// `paddock worker`'s exit status when its own disk is full.
pub const EXIT_DISK_FULL: i32 = 5;

/// A worker's copy of the plan it works on, in its working directory: what `paddock exp
/// restore` puts back when the store lost it.
pub fn plan_copy(work_dir: &Path, id: &str) -> PathBuf {
    work_dir.join(format!("experiment-{id}.json"))
}

/// A worker's copy of a study trial it made (`study/trials/<n>.json`): what `paddock exp
/// restore` puts back, so that a restored study neither loses nor makes again a number.
pub fn study_trial_copy(work_dir: &Path, experiment: &str, n: u64) -> PathBuf {
    work_dir.join(experiment).join("study").join(format!("{n:06}.json"))
}

/// A worker's copy of the last state it wrote or read for a trial it held.
pub fn state_copy(work_dir: &Path, experiment: &str, trial: &str) -> PathBuf {
    work_dir.join(experiment).join(trial).join("state.json")
}

/// Why `e` means the store will not come back as it was (its bucket, the experiment or a
/// trial's state is gone, or the credentials are refused), so waiting is useless.
pub fn fatal(e: &anyhow::Error) -> Option<String> {
    if crate::store::store_error(e).is_some() || trial::is_missing(e) { Some(format!("{e:#}")) } else { None }
}

/// Whether the worker's working copies are safe to delete as it leaves: the store still
/// holds the experiment and the final state of every trial this worker committed. A store
/// that lost them (emptied, recreated) keeps the copies: they may be the only ones.
pub fn copies_in_store(opts: &WorkerOptions, summary: &WorkerSummary) -> bool {
    let Ok(objects) = crate::store::open(&opts.experiment, &Default::default()) else { return false };
    if !matches!(objects.get(PLAN), Ok(Some(_))) {
        return false;
    }
    summary.committed.iter().all(|id| trial::read(objects.as_ref(), id).is_ok_and(|h| h.state.status.is_final()))
}

/// What a worker that met `e` before it held anything did, when `e` is fatal
/// ([`fatal`]): it leaves, keeping `work_dir`; `None` for any other error.
pub fn lost_summary(e: &anyhow::Error, work_dir: &Path) -> Option<WorkerSummary> {
    fatal(e).map(|why| lost_store(WorkerSummary::default(), fatal_leave(e), why, work_dir))
}

/// Why the worker leaves on a fatal store error.
pub(super) fn fatal_leave(e: &anyhow::Error) -> Left {
    match crate::store::store_error(e) {
        Some(crate::store::StoreError::Denied { .. }) => Left::CredentialsRefused,
        _ => Left::StoreLost,
    }
}

/// This worker's name: host, pid and a nonce (the same for the whole process).
pub fn worker_name() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos()) % 0x10000;
        format!("{}-{}-{nonce:04x}", crate::format::status::this_host(), std::process::id())
    })
    .clone()
}

/// Leaves because the store lost the experiment's state (or refuses the credentials):
/// the working directory is kept, since its copies may be the only ones.
pub(super) fn lost_store(mut summary: WorkerSummary, left: Left, why: String, work_dir: &Path) -> WorkerSummary {
    summary.problem = Some(why);
    summary.kept = vec![work_dir.to_path_buf()];
    leave(summary, left)
}

/// Why a worker should leave before looking for more work, if it should.
pub(super) fn should_leave(opts: &WorkerOptions, summary: &mut WorkerSummary) -> Option<Left> {
    if run::interrupt::requested().is_some() {
        summary.interrupted = true;
        return Some(Left::Interrupted);
    }
    if opts.max_trials.is_some_and(|m| summary.committed.len() + summary.given_back.len() >= m) {
        return Some(Left::MaxTrials);
    }
    None
}

pub(super) fn leave(mut summary: WorkerSummary, why: Left) -> WorkerSummary {
    summary.left = why;
    summary
}

/// How long the store (or queue) has been unreachable.
#[derive(Default)]
pub(super) struct StoreLost(Option<Instant>);

impl StoreLost {
    pub(super) fn reached(&mut self) {
        self.0 = None;
    }

    /// Counts a failed look; `true` (with the reason printed) when it has lasted
    /// `store_lost_after`: the worker leaves and its instance shuts down.
    pub(super) fn given_up(&mut self, opts: &WorkerOptions, e: &anyhow::Error) -> bool {
        let since = *self.0.get_or_insert_with(Instant::now);
        if since.elapsed() >= opts.store_lost_after {
            let msg = format!("the store has been unreachable for {:.0} s: {e:#}", since.elapsed().as_secs_f64());
            crate::log::RunLog::stderr().line(crate::log::Level::Warn, "worker", &msg);
            return true;
        }
        false
    }
}

impl WorkerSummary {
    pub(super) fn record(&mut self, id: &str, outcome: &Outcome) {
        match outcome {
            Outcome::Committed => self.committed.push(id.to_string()),
            Outcome::Lost { .. } => {}
            _ => self.given_back.push(id.to_string()),
        }
    }
}

/// How a worker's holding of a trial ended.
pub(super) enum Outcome {
    /// Done or pruned: final.
    Committed,
    /// Failed `max_errors` times: final.
    Failed,
    /// Put back by a signal or spot notice, with a checkpoint.
    Preempted,
    /// Put back with its error counted.
    Errored,
    /// Another worker claimed it: this one wrote nothing more.
    Fenced,
    /// The store lost the trial's state (or the experiment, or its bucket), or refuses the
    /// credentials: nothing was written, the working copy stays.
    Lost {
        /// What the store said.
        why: String,
        /// The worker's reason to leave.
        leave: Left,
    },
    /// This worker's disk is full: the trial was put back with the error counted (so a
    /// trial no worker's disk holds fails after `max_errors` workers tried), and the worker
    /// leaves rather than fail more trials.
    DiskFull {
        /// The error, naming the disk.
        why: String,
    },
}

impl Outcome {
    /// The outcome of a failed write of the trial's state: lost when the store lost it,
    /// else the error.
    pub(super) fn of_write_error(e: anyhow::Error) -> anyhow::Result<Outcome> {
        match fatal(&e) {
            Some(why) => Ok(Outcome::Lost { why, leave: fatal_leave(&e) }),
            None => Err(e),
        }
    }
}

#[cfg(test)]
mod left_tests {
    use super::*;

    #[test]
    fn why_a_worker_left_reads_as_words_in_json() {
        let summary = WorkerSummary { left: Left::StoreUnreachable, ..Default::default() };
        let v = serde_json::to_value(&summary).expect("json");
        assert_eq!(v["left"], "store unreachable");
        for l in [Left::Done, Left::Idle, Left::MaxTrials, Left::Interrupted, Left::StoreLost, Left::CredentialsRefused, Left::DiskFull] {
            assert_eq!(serde_json::to_value(l).expect("json"), l.as_str());
        }
    }
}
