//! `paddock worker`: claims trials of an experiment, trains each through the run library,
//! and gives it back or commits it.
//!
//! For each claimed trial (epoch `e`): the run is built in a local working copy — from the
//! trial's newest complete checkpoint (fetched from the epoch that wrote it) or afresh from
//! the base config and the trial's overrides — mirrored to `trials/<id>/e<e>/` as it
//! trains, and steered by hooks: a heartbeat at updates (a conditional write that extends
//! the lease and records the newest complete checkpoint in the store; a refused one means
//! another worker owns the trial now, and the run stops and writes nothing more), and the
//! early-stop rule after evaluations. A SIGTERM (or a spot notice through
//! [`crate::run::interrupt::request`]) stops the run at its next update with a checkpoint;
//! the worker uploads it and puts the trial back as preempted. An error puts it back with
//! its error counted, or fails it after `max_errors`. The commit that ends a trial writes
//! its result into the state object, once.

mod over_queue;
mod plan;
use crate::format::experiment::{PLAN, parse_plan};
pub use plan::{localize, upload_files};

use crate::exp::asha::Asha;
use crate::exp::cloud::{Message, Queues, TrialQueue};
use crate::exp::trial::{self, CheckpointRef, Held, Status, TrialResult};
use crate::format::experiment::Plan;
use crate::log::{Level, RunLog};
use crate::run::mirror::Mirror;
use crate::run::runs::{self, Checkpoints};
use crate::run::{self, Directive, Evaluation, Hooks};
use crate::store::{Location, Objects};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a trial's small files go to the store (checkpoints go at once).
const TRIAL_MIRROR_EVERY: Duration = Duration::from_secs(5);

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
    /// Why it left: `done` (every trial final), `idle`, `max trials`, `store unreachable`,
    /// `interrupted`, `store lost` (the store lost the experiment's state: see
    /// [`WorkerSummary::problem`]), `credentials refused`, `disk full`.
    pub left: String,
    /// Why the store cannot be worked with any more, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Working copies of trials whose runs or states may exist nowhere else (the store lost
    /// them): the worker keeps its whole working directory, and `paddock exp restore`
    /// uploads them when the store is back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<PathBuf>,
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

/// Why the worker leaves on a fatal store error: `credentials refused` or `store lost`.
fn fatal_leave(e: &anyhow::Error) -> &'static str {
    match crate::store::store_error(e) {
        Some(crate::store::StoreError::Denied { .. }) => "credentials refused",
        _ => "store lost",
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

/// Claims and trains trials until none is left to claim (see the module docs).
pub fn work(opts: &WorkerOptions) -> anyhow::Result<WorkerSummary> {
    let objects = crate::store::open(&opts.experiment, &Default::default())?;
    // A store that is away when the worker starts is looked for as long as one lost later.
    let started = Instant::now();
    let plan = loop {
        match objects.get(PLAN) {
            // Reachable: there is a plan, or the location is not an experiment.
            Ok(data) => break parse_plan(objects.as_ref(), data)?,
            Err(e) if fatal(&e).is_some() => return Err(e),
            Err(e) if started.elapsed() >= opts.store_lost_after => {
                eprintln!("worker: the store has been unreachable for {:.0} s: {e:#}", started.elapsed().as_secs_f64());
                return Ok(WorkerSummary { left: "store unreachable".into(), ..Default::default() });
            }
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    };
    let me = worker_name();
    std::fs::create_dir_all(&opts.work_dir).with_context(|| format!("failed to create {}", opts.work_dir.display()))?;
    let copy = plan_copy(&opts.work_dir, &plan.id);
    crate::store::write_atomically(&copy, &serde_json::to_vec_pretty(&plan)?)?;
    let plan = localize(objects.as_ref(), &plan, &opts.work_dir)?;
    let base = opts.work_dir.join(format!("base-{}.toml", plan.id));
    std::fs::write(&base, &plan.base).with_context(|| format!("failed to write {}", base.display()))?;
    if let Some(d) = &opts.queue {
        let queue = crate::exp::cloud::aws().queue(&d.queue, Some(&d.region))?;
        return over_queue::work(objects, &plan, &base, opts, &queue);
    }
    let mut summary = WorkerSummary::default();
    let mut idle_since = Instant::now();
    // Start at a different trial per worker, so workers do not all race for the first one.
    let offset = std::process::id() as usize % plan.trials.len().max(1);
    let mut lost = StoreLost::default();
    loop {
        if let Some(why) = should_leave(opts, &mut summary) {
            return Ok(leave(summary, why));
        }
        let now = crate::format::status::unix_now();
        let scanned = scan(objects.as_ref(), &plan, offset, &me, opts.instance.as_deref(), now);
        let (claimed, open) = match scanned {
            Ok(found) => {
                lost.reached();
                found
            }
            Err(e) => {
                if let Some(why) = fatal(&e) {
                    return Ok(lost_store(summary, fatal_leave(&e), why, &opts.work_dir));
                }
                if lost.given_up(opts, &e) {
                    return Ok(leave(summary, "store unreachable"));
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let Some(held) = claimed else {
            if !open {
                return Ok(leave(summary, "done"));
            }
            // Others hold the rest: wait, and take over any whose lease runs out.
            if opts.idle_timeout.is_some_and(|t| idle_since.elapsed() >= t) {
                return Ok(leave(summary, "idle"));
            }
            std::thread::sleep(Duration::from_millis(500));
            continue;
        };
        let id = held.id.clone();
        let outcome = run_trial(objects.clone(), &plan, &base, held, opts, None)?;
        summary.record(&id, &outcome);
        match outcome {
            Outcome::Lost { why, leave } => return Ok(lost_store(summary, leave, why, &opts.work_dir)),
            Outcome::DiskFull { why } => {
                summary.problem = Some(why);
                return Ok(leave(summary, "disk full"));
            }
            _ => {}
        }
        idle_since = Instant::now();
    }
}

/// Leaves because the store lost the experiment's state (or refuses the credentials):
/// the working directory is kept, since its copies may be the only ones.
fn lost_store(mut summary: WorkerSummary, left: &str, why: String, work_dir: &Path) -> WorkerSummary {
    summary.problem = Some(why);
    summary.kept = vec![work_dir.to_path_buf()];
    leave(summary, left)
}

/// Why a worker should leave before looking for more work, if it should.
fn should_leave(opts: &WorkerOptions, summary: &mut WorkerSummary) -> Option<&'static str> {
    if run::interrupt::requested().is_some() {
        summary.interrupted = true;
        return Some("interrupted");
    }
    if opts.max_trials.is_some_and(|m| summary.committed.len() + summary.given_back.len() >= m) {
        return Some("max trials");
    }
    None
}

fn leave(mut summary: WorkerSummary, why: &str) -> WorkerSummary {
    summary.left = why.to_string();
    summary
}

/// How long the store (or queue) has been unreachable.
#[derive(Default)]
struct StoreLost(Option<Instant>);

impl StoreLost {
    fn reached(&mut self) {
        self.0 = None;
    }

    /// Counts a failed look; `true` (with the reason printed) when it has lasted
    /// `store_lost_after`: the worker leaves and its instance shuts down.
    fn given_up(&mut self, opts: &WorkerOptions, e: &anyhow::Error) -> bool {
        let since = *self.0.get_or_insert_with(Instant::now);
        if since.elapsed() >= opts.store_lost_after {
            eprintln!("worker: the store has been unreachable for {:.0} s: {e:#}", since.elapsed().as_secs_f64());
            return true;
        }
        false
    }
}

impl WorkerSummary {
    fn record(&mut self, id: &str, outcome: &Outcome) {
        match outcome {
            Outcome::Committed => self.committed.push(id.to_string()),
            Outcome::Lost { .. } => {}
            _ => self.given_back.push(id.to_string()),
        }
    }
}

/// One look for work: the first claimable trial (claimed), and whether any trial is not
/// final yet.
fn scan(
    objects: &dyn Objects,
    plan: &Plan,
    offset: usize,
    me: &str,
    instance: Option<&str>,
    now: f64,
) -> anyhow::Result<(Option<Held>, bool)> {
    let mut open = false;
    for i in 0..plan.trials.len() {
        let t = &plan.trials[(i + offset) % plan.trials.len()];
        let held = trial::read(objects, &t.id)?;
        if !held.state.status.is_final() {
            open = true;
        }
        if trial::due_to_fail_lost(&held, now, plan.trial.max_lost) {
            // Its worker was lost once too often: failed, not claimed again.
            let _ = trial::fail_lost(objects, &held, plan.trial.max_lost)?;
            continue;
        }
        if held.state.claimable(now)
            && let Some(h) = trial::claim(objects, &held, me, instance, now, plan.trial.lease_s as f64)?
        {
            return Ok((Some(h), true));
        }
    }
    Ok((None, open))
}

/// How a worker's holding of a trial ended.
enum Outcome {
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
        leave: &'static str,
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
    fn of_write_error(e: anyhow::Error) -> anyhow::Result<Outcome> {
        match fatal(&e) {
            Some(why) => Ok(Outcome::Lost { why, leave: fatal_leave(&e) }),
            None => Err(e),
        }
    }
}

/// Trains one claimed trial and ends its epoch: commit, give back, or (fenced) nothing.
fn run_trial(
    objects: Arc<dyn Objects>,
    plan: &Plan,
    base: &Path,
    held: Held,
    opts: &WorkerOptions,
    delivery: Option<(Arc<dyn TrialQueue>, Message)>,
) -> anyhow::Result<Outcome> {
    let t = plan.trials.iter().find(|t| t.id == held.id).context("a claimed trial is not in the plan")?;
    let epoch = held.state.epoch;
    let dir = opts.work_dir.join(&plan.id).join(&t.id).join(format!("e{epoch}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("failed to clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let prepared = prepare(objects.as_ref(), base, t, &held, &dir, &plan.files, &opts.work_dir);
    let (config, resume_at) = match prepared {
        Ok(p) => p,
        Err(e) => return give_back_checked(objects.as_ref(), held, e, plan, &opts.work_dir),
    };
    let resume = resume_at.is_some();
    let mut held = held;
    save_copy(&opts.work_dir, &plan.id, &held);
    if epoch > 1 {
        // What the previous owner trained past the checkpoint this epoch starts from is
        // trained again: its last heartbeat, or the status its run uploaded, if later.
        let uploaded = objects
            .get(&format!("{}/{}", trial::run_prefix(&t.id, epoch - 1), crate::format::run_dir::STATUS))
            .ok()
            .flatten()
            .and_then(|d| serde_json::from_slice::<crate::format::status::Status>(&d).ok())
            .map_or(0, |s| s.step);
        let reached = held.state.step.max(uploaded);
        held.state.redone_steps += reached.saturating_sub(resume_at.unwrap_or(0));
        held.state.step = resume_at.unwrap_or(0);
    }
    let log_file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(crate::format::run_dir::LOG))?;
    let log = RunLog::new(Box::new(log_file), Level::Info);
    log.line(Level::Info, "worker", &format!("trial {} epoch {epoch} on {}", t.id, worker_name()));
    let remote = crate::store::open(&objects.location().join(&trial::run_prefix(&t.id, epoch)), &Default::default())?;
    // Checkpoints go up as soon as they are written (the hooks wake the mirror); the small
    // files (metrics, log, status) every few seconds: a fifth of the requests of a
    // once-a-second mirror, and the trial's progress is in its state's heartbeat anyway.
    let mirror = Mirror::start(&dir, remote, log.clone(), TRIAL_MIRROR_EVERY)?;
    let runtime = run::runtime_for(&config.runtime, log.clone())?;
    let asha = plan.early_stop.clone().map(|es| Asha::new(objects.clone(), es, &t.id, config.total_steps.unwrap_or(0)));
    let mut hooks = TrialHooks {
        objects: objects.clone(),
        held,
        lease_s: plan.trial.lease_s as f64,
        last_beat: Instant::now(),
        fenced: false,
        asha,
        last_metric: None,
        run_dir: dir.clone(),
        log: log.clone(),
        delivery,
        lost: None,
        uploaded: mirror.uploaded(),
        copy_dir: opts.work_dir.clone(),
        experiment: plan.id.clone(),
    };
    // Each new checkpoint goes up at once (the mirror is woken), so a kill redoes little.
    let result = run::train(&config, &runtime, &dir, resume, &mut run::UploadOnCheckpoint::new(&mut hooks, &mirror));
    let uploaded = mirror.finish(Duration::from_secs(120));
    if hooks.fenced {
        return Ok(Outcome::Fenced);
    }
    if let Some((why, leave)) = hooks.lost.take() {
        log.line(Level::Error, "worker", &format!("trial {}: {why}; the working copy {} is kept", t.id, dir.display()));
        return Ok(Outcome::Lost { why, leave });
    }
    let held = hooks.held.clone();
    let result = result.and_then(|s| uploaded.map(|()| s));
    match result {
        Ok(s) if !s.stopped || s.pruned => {
            let (status, metric) = (if s.pruned { Status::Pruned } else { Status::Done }, hooks.last_metric);
            let mut next = held.state.clone();
            next.status = status;
            next.owner = None;
            next.release(crate::format::status::unix_now());
            next.step = s.steps;
            next.checkpoint = match latest_in_store(objects.as_ref(), &t.id, epoch) {
                Ok(c) => c.or(next.checkpoint),
                Err(e) if fatal(&e).is_some() => return Outcome::of_write_error(e),
                // Unreachable: the pointer of the last heartbeat (the write below waits).
                Err(_) => next.checkpoint,
            };
            next.result = Some(TrialResult {
                steps: s.steps,
                best_eval: s.best_eval_return,
                last_eval: s.last_eval_return,
                metric,
                run: trial::run_prefix(&t.id, epoch),
            });
            let written = match write_patiently(objects.as_ref(), &held, next.clone(), opts.store_lost_after) {
                Ok(w) => w,
                Err(e) => return Outcome::of_write_error(e),
            };
            match written {
                Some(h) => {
                    save_copy(&opts.work_dir, &plan.id, &h);
                    // A copy for readers of results alone; the state's result is the record.
                    let _ = objects.put_new(&crate::format::experiment::result_key(&t.id), &serde_json::to_vec_pretty(&next.result)?);
                    Ok(Outcome::Committed)
                }
                None => Ok(Outcome::Fenced),
            }
        }
        Ok(_) => give_back(objects.as_ref(), held, Ok(()), plan, &opts.work_dir),
        Err(e) => match fatal(&e) {
            // The mirror could not upload because the store lost the trial: not the trial's fault.
            Some(why) => Ok(Outcome::Lost { why, leave: fatal_leave(&e) }),
            None => give_back_checked(objects.as_ref(), held, e, plan, &opts.work_dir),
        },
    }
}

/// [`give_back`] with the error counted; a full disk of this worker's also makes it leave.
fn give_back_checked(objects: &dyn Objects, held: Held, e: anyhow::Error, plan: &Plan, work_dir: &Path) -> anyhow::Result<Outcome> {
    if !crate::store::is_disk_full(&e) {
        return give_back(objects, held, Err(e), plan, work_dir);
    }
    let e = crate::store::name_full_disk(e, work_dir, "the trial's working copy failed to write");
    let why = format!("{e:#}");
    match give_back(objects, held, Err(e), plan, work_dir)? {
        Outcome::Errored | Outcome::Failed => Ok(Outcome::DiskFull { why }),
        other => Ok(other),
    }
}

/// [`trial::write`] that waits out an unreachable store (retrying with backoff for up to
/// `patience`): the end of a trial (its commit, or giving it back) is not lost to an outage
/// the worker would otherwise ride out. Refusals and fatal store errors return at once.
fn write_patiently(objects: &dyn Objects, held: &Held, next: trial::TrialState, patience: Duration) -> anyhow::Result<Option<Held>> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(500);
    loop {
        match trial::write(objects, held, next.clone()) {
            Err(e) if fatal(&e).is_none() && start.elapsed() + delay < patience => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(8));
            }
            other => return other,
        }
    }
}

/// How long giving a trial back waits for an unreachable store: within a spot reclaim's
/// two minutes (past it, the lease runs out and another worker takes the trial over anyway).
fn work_patience() -> Duration {
    Duration::from_secs(60)
}

/// Keeps a copy of the trial's state beside its working copies (for `exp restore`).
fn save_copy(work_dir: &Path, experiment: &str, held: &Held) {
    let path = state_copy(work_dir, experiment, &held.id);
    let _ = std::fs::create_dir_all(path.parent().unwrap_or(work_dir));
    if let Ok(data) = serde_json::to_vec_pretty(&held.state) {
        let _ = crate::store::write_atomically(&path, &data);
    }
}

/// Puts a trial back: preempted (`Ok`), or with its error counted (failed after
/// `max_errors`).
fn give_back(objects: &dyn Objects, held: Held, why: anyhow::Result<()>, plan: &Plan, work_dir: &Path) -> anyhow::Result<Outcome> {
    let mut next = held.state.clone();
    let epoch = next.epoch;
    next.owner = None;
    next.lease_until = 0.0;
    next.release(crate::format::status::unix_now());
    next.checkpoint = match latest_in_store(objects, &held.id, epoch) {
        Ok(c) => c.or(next.checkpoint),
        Err(e) if fatal(&e).is_some() => return Outcome::of_write_error(e),
        Err(_) => next.checkpoint,
    };
    let outcome = match why {
        Ok(()) => {
            next.status = Status::Queued;
            next.preemptions += 1;
            Outcome::Preempted
        }
        Err(e) => {
            next.errors += 1;
            next.error = Some(format!("{e:#}"));
            if next.errors >= plan.trial.max_errors {
                next.status = Status::Failed;
                Outcome::Failed
            } else {
                next.status = Status::Queued;
                Outcome::Errored
            }
        }
    };
    Ok(match write_patiently(objects, &held, next, work_patience()) {
        Ok(Some(h)) => {
            save_copy(work_dir, &plan.id, &h);
            outcome
        }
        Ok(None) => Outcome::Fenced,
        Err(e) => return Outcome::of_write_error(e),
    })
}

/// The newest complete checkpoint of the trial's run at `epoch` in the store.
fn latest_in_store(objects: &dyn Objects, id: &str, epoch: u64) -> anyhow::Result<Option<CheckpointRef>> {
    let names = runs::complete_checkpoints(objects, &trial::run_prefix(id, epoch))?;
    Ok(names.last().and_then(|n| n.parse().ok()).map(|step| CheckpointRef { epoch, step }))
}

/// The newest complete checkpoint any earlier epoch of the trial left in the store: the
/// pointer in the state is only as new as the last heartbeat, and the run may have written
/// (and pruned to `keep_checkpoints`) more since.
fn newest_checkpoint(objects: &dyn Objects, id: &str, held: &Held) -> anyhow::Result<Option<CheckpointRef>> {
    let oldest = held.state.checkpoint.map_or(1, |c| c.epoch);
    for e in (oldest..held.state.epoch).rev() {
        if let Some(c) = latest_in_store(objects, id, e)? {
            return Ok(Some(c));
        }
    }
    Ok(held.state.checkpoint)
}

/// The trial's run directory for this epoch: fetched from its newest checkpoint, or fresh.
/// Returns the config to train and the step it resumes at (`None`: from the start).
fn prepare(
    objects: &dyn Objects,
    base: &Path,
    t: &crate::format::experiment::Trial,
    held: &Held,
    dir: &Path,
    files: &std::collections::BTreeMap<String, String>,
    work_dir: &Path,
) -> anyhow::Result<(crate::config::RunConfig, Option<u64>)> {
    if let Some(c) = newest_checkpoint(objects, &t.id, held)? {
        let from = trial::run_prefix(&t.id, c.epoch);
        runs::pull_run(objects, &from, dir, &Checkpoints::One(crate::format::run_dir::checkpoint_name(c.step)), &mut |_, _| {})
            .with_context(|| format!("trial {}: failed to fetch its checkpoint {} of epoch {}", t.id, c.step, c.epoch))?;
        // The fetched status is the old epoch's; the log goes on from the old epoch's.
        let _ = std::fs::remove_file(dir.join(crate::format::run_dir::STATUS));
        let record = crate::config::RunConfig::load_resolved(&dir.join(crate::format::run_dir::CONFIG))?;
        let (config, _) = crate::run::carry::resolve(&record, dir, c.step, &Default::default())?;
        let (config, _, _) = crate::registry::resolve_config(&config)?;
        return Ok((config, Some(c.step)));
    }
    let config = crate::config::RunConfig::load_with(base, &t.overrides)?;
    let (to_run, record, _) = crate::registry::resolve_config(&config)?;
    // The record names the plan's files where the experiment was planned, not this worker's
    // private copies (gone when it leaves): the trial's config trains anywhere its files are,
    // as a run's does. A resume takes the carried copies by their hashes either way.
    let mut text = toml::to_string_pretty(&record)?;
    for (original, key) in files {
        text = text.replace(&work_dir.join(key).display().to_string(), original);
    }
    std::fs::write(dir.join(crate::format::run_dir::CONFIG), text)?;
    crate::run::carry::carry_robots(dir, &to_run.env.robot_grants())?;
    Ok((to_run, None))
}

/// The worker's hooks on a trial's loop: heartbeats, the checkpoint pointer, early stop.
struct TrialHooks {
    objects: Arc<dyn Objects>,
    held: Held,
    lease_s: f64,
    last_beat: Instant,
    fenced: bool,
    asha: Option<Asha>,
    last_metric: Option<f64>,
    run_dir: PathBuf,
    log: RunLog,
    /// The queue message the trial came in, hidden from others a lease at a time.
    delivery: Option<(Arc<dyn TrialQueue>, Message)>,
    /// Set when the store lost the trial's state (or refuses the credentials): why, and the
    /// worker's reason to leave. The run stops with a checkpoint in its working copy.
    lost: Option<(String, &'static str)>,
    /// What the trial's mirror uploaded: the newest complete checkpoint, recorded at each
    /// heartbeat without listing the store.
    uploaded: crate::run::mirror::Uploaded,
    /// Where the state's copy goes ([`state_copy`]).
    copy_dir: PathBuf,
    /// The experiment's id.
    experiment: String,
}

impl TrialHooks {
    /// Extends the lease and records progress; `false` when fenced.
    fn beat(&mut self, step: u64) -> bool {
        let now = crate::format::status::unix_now();
        let mut next = self.held.state.clone();
        next.lease_until = now + self.lease_s;
        next.heartbeat = now;
        next.step = step;
        let epoch = self.held.state.epoch;
        if let Some(c) = self.uploaded.newest().and_then(|n| n.parse().ok()).map(|step| CheckpointRef { epoch, step })
            && next.checkpoint != Some(c)
        {
            next.checkpoint = Some(c);
            next.checkpoint_unix = now;
        }
        match trial::write(self.objects.as_ref(), &self.held, next) {
            Ok(Some(h)) => {
                self.held = h;
                save_copy(&self.copy_dir, &self.experiment, &self.held);
                if let Some((q, m)) = &self.delivery {
                    // Only a hint (the state's lease is the truth): a failure changes nothing.
                    let _ = q.hide(m, self.lease_s as u64);
                }
                true
            }
            Ok(None) => {
                self.fenced = true;
                let msg = format!(
                    "trial {}: fenced at epoch {}: another worker claimed it after this worker's lease ran out; stopping, writing nothing more",
                    self.held.id, self.held.state.epoch
                );
                self.log.line(Level::Warn, "worker", &msg);
                false
            }
            Err(e) => match fatal(&e) {
                Some(why) => {
                    self.log.line(
                        Level::Error,
                        "worker",
                        &format!("trial {}: {why}; stopping with a checkpoint in the working copy", self.held.id),
                    );
                    self.lost = Some((why, fatal_leave(&e)));
                    false
                }
                // The store is unreachable: keep training (the lease may run out; the next beat tells).
                None => true,
            },
        }
    }
}

impl Hooks for TrialHooks {
    fn at_update(&mut self, step: u64) -> Directive {
        if self.fenced || self.lost.is_some() {
            return Directive::Stop;
        }
        if crate::exp::notice::take_checkpoint_request() {
            // A rebalance recommendation: an early checkpoint (uploaded at once), and on.
            self.log.line(Level::Warn, "worker", "rebalance recommendation: taking an early checkpoint and training on");
            return Directive::Checkpoint;
        }
        if self.last_beat.elapsed().as_secs_f64() >= (self.lease_s / 6.0).min(10.0) {
            self.last_beat = Instant::now();
            if !self.beat(step) {
                return Directive::Stop;
            }
        }
        Directive::Continue
    }

    fn evaluated(&mut self, e: &Evaluation) -> Directive {
        let Some(asha) = &mut self.asha else { return Directive::Continue };
        let value = e.metrics_line().get(&asha.rule().metric).and_then(serde_json::Value::as_f64);
        self.last_metric = value.or(self.last_metric);
        match asha.decide(e.step, value) {
            Ok(false) => Directive::Prune,
            Ok(true) => Directive::Continue,
            Err(err) => {
                // Deciding needs the store; without it the trial goes on (it can be pruned later).
                let _ = std::fs::OpenOptions::new()
                    .append(true)
                    .open(self.run_dir.join(crate::format::run_dir::LOG))
                    .map(|mut f| std::io::Write::write_all(&mut f, format!("WARN [worker] early stop undecided: {err:#}\n").as_bytes()));
                Directive::Continue
            }
        }
    }
}
