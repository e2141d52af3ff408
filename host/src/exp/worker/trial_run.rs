//! One claimed trial, trained: its run directory prepared (fetched from its newest
//! checkpoint, or fresh), trained with the worker's hooks (heartbeats, the checkpoint
//! pointer, early stop), and its epoch ended: committed, given back, or (fenced) nothing.

use super::leave::{Outcome, WorkerOptions, fatal, fatal_leave, state_copy, worker_name};
use crate::exp::asha::Asha;
use crate::exp::cloud::{Message, TrialQueue};
use crate::exp::search::prune::TrialPruner;
use crate::exp::trial::{self, CheckpointRef, Held, Status, TrialResult};
use crate::format::experiment::Plan;
use crate::log::{Level, RunLog};
use crate::run::runs::{self, Checkpoints};
use crate::run::{Directive, Evaluation, Hooks, MirrorPace, NewConfig, Run};
use crate::store::Objects;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a trial's small files go to the store (checkpoints go at once).
const TRIAL_MIRROR_EVERY: Duration = Duration::from_secs(5);

/// Trains one claimed trial and ends its epoch: commit, give back, or (fenced) nothing.
pub(super) fn run_trial(
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
    fs_err::create_dir_all(&dir)?;
    let remote = crate::store::open(&objects.location().join(&trial::run_prefix(&t.id, epoch)), &Default::default())?;
    let prepared = prepare(objects.as_ref(), base, t, &held, &dir, &plan.files, &opts.work_dir, remote);
    let (mut run, resume_at) = match prepared {
        Ok(p) => p,
        Err(e) => return give_back_checked(objects.as_ref(), held, e, plan, &opts.work_dir),
    };
    // Checkpoints go up as soon as they are written (the run wakes its mirror); the small
    // files (metrics, log, status) every few seconds: a fifth of the requests of a
    // once-a-second mirror, and the trial's progress is in its state's heartbeat anyway.
    run.pace = MirrorPace { every: TRIAL_MIRROR_EVERY, finish_within: Duration::from_secs(120) };
    // With [tracking] mlflow: one MLflow run per trial (whichever worker trains it), under
    // an MLflow experiment named by the experiment's id.
    run.track_as =
        Some(crate::run::tracking::TrackAs { experiment: plan.id.clone(), key: format!("{}/{}", plan.id, t.id), run_name: t.id.clone() });
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
    let log = run.log.clone();
    log.line(Level::Info, "worker", &format!("trial {} epoch {epoch} on {}", t.id, worker_name()));
    let total = run.config.total_steps.unwrap_or(0);
    // A study's pruner (and its metric, recorded even without one), or the [early_stop] rule.
    let pruner = match (&plan.search, &plan.early_stop) {
        (Some(s), _) => Some(Pruning {
            metric: s.metric.clone(),
            pruner: TrialPruner::for_study(objects.clone(), s, &t.id, crate::exp::search::number_of(&t.id).unwrap_or(0), total),
            in_study: true,
        }),
        (None, Some(es)) => Some(Pruning {
            metric: es.metric.clone(),
            pruner: TrialPruner::Asha(Asha::new(objects.clone(), es.clone(), &t.id, total)),
            in_study: false,
        }),
        (None, None) => None,
    };
    let mut hooks = TrialHooks {
        objects: objects.clone(),
        held,
        lease_s: plan.trial.lease_s as f64,
        last_beat: Instant::now(),
        fenced: false,
        pruner,
        last_metric: None,
        run_dir: dir.clone(),
        log: log.clone(),
        delivery,
        lost: None,
        uploaded: None,
        copy_dir: opts.work_dir.clone(),
        experiment: plan.id.clone(),
    };
    // The run mirrors itself to the trial's epoch prefix, as `paddock train` mirrors an S3 run.
    let result = run.train(&mut hooks);
    if hooks.fenced {
        return Ok(Outcome::Fenced);
    }
    if let Some((why, leave)) = hooks.lost.take() {
        log.line(Level::Error, "worker", &format!("trial {}: {why}; the working copy {} is kept", t.id, dir.display()));
        return Ok(Outcome::Lost { why, leave });
    }
    let held = hooks.held.clone();
    match result {
        Ok(s) if !s.stopped || s.pruned => {
            let (status, metric) = (if s.pruned { Status::Pruned } else { Status::Done }, hooks.last_metric);
            if !s.pruned
                && let Some(p) = &mut hooks.pruner
                && let Err(e) = p.pruner.finished()
            {
                // Only the median rule's comparisons miss this trial: the commit goes on.
                log.line(Level::Warn, "worker", &format!("trial {}: its learning curve was not marked finished: {e:#}", t.id));
            }
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
                    if let (Some(server), Some(search)) = (&run.config.tracking.mlflow, &plan.search) {
                        tag_best(objects.as_ref(), server, plan, search, &log);
                    }
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

/// The trial's run for this epoch, mirrored to `remote`: fetched from its newest
/// checkpoint (and resumed), or fresh from the plan. Returns it and the step it resumes at
/// (`None`: from the start).
#[allow(clippy::too_many_arguments)]
fn prepare(
    objects: &dyn Objects,
    base: &Path,
    t: &crate::format::experiment::Trial,
    held: &Held,
    dir: &Path,
    files: &std::collections::BTreeMap<String, String>,
    work_dir: &Path,
    remote: Arc<dyn Objects>,
) -> anyhow::Result<(Run, Option<u64>)> {
    if let Some(c) = newest_checkpoint(objects, &t.id, held)? {
        let from = trial::run_prefix(&t.id, c.epoch);
        runs::pull_run(objects, &from, dir, &Checkpoints::One(crate::format::run_dir::checkpoint_name(c.step)), &mut |_, _| {})
            .with_context(|| format!("trial {}: failed to fetch its checkpoint {} of epoch {}", t.id, c.step, c.epoch))?;
        // The fetched status is the old epoch's; the log goes on from the old epoch's.
        let _ = std::fs::remove_file(dir.join(crate::format::run_dir::STATUS));
        let shown = format!("trial {} epoch {} (from {from})", t.id, held.state.epoch);
        let run = Run::resume_in(dir.to_path_buf(), Some(remote), &Default::default(), &shown)?;
        return Ok((run, Some(c.step)));
    }
    let new = NewConfig::load(base, &t.overrides)?;
    // The record names the plan's files where the experiment was planned, not this worker's
    // private copies (gone when it leaves): the trial's config trains anywhere its files are,
    // as a run's does. A resume takes the carried copies by their hashes either way.
    let mut text = new.record_text()?;
    for (original, key) in files {
        text = text.replace(&work_dir.join(key).display().to_string(), original);
    }
    if let Some(from) = &t.start_from {
        // A PBT trial: another trial's run at one of its checkpoints, continued with this
        // trial's config (its parameters and total_steps; the run retunes the algorithm).
        let prefix = trial::run_prefix(&from.trial, from.checkpoint.epoch);
        let name = crate::format::run_dir::checkpoint_name(from.checkpoint.step);
        runs::pull_run(objects, &prefix, dir, &Checkpoints::One(name.clone()), &mut |_, _| {}).with_context(|| {
            format!("trial {}: failed to fetch checkpoint {name} of trial {} ({prefix}), which it continues", t.id, from.trial)
        })?;
        if crate::format::run_dir::latest_checkpoint(dir).is_none() {
            anyhow::bail!(
                "trial {}: checkpoint {name} of trial {} is not in the store ({prefix}); it cannot continue it",
                t.id,
                from.trial
            );
        }
        let _ = std::fs::remove_file(dir.join(crate::format::run_dir::STATUS));
        std::fs::write(dir.join(crate::format::run_dir::CONFIG), text)
            .with_context(|| format!("failed to write {}", dir.join(crate::format::run_dir::CONFIG).display()))?;
        let shown = format!("trial {} (continuing {} at step {})", t.id, from.trial, from.checkpoint.step);
        let run = Run::resume_in(dir.to_path_buf(), Some(remote), &Default::default(), &shown)?;
        return Ok((run, Some(from.checkpoint.step)));
    }
    Ok((Run::create_in(new, dir.to_path_buf(), Some(remote), Some(text))?, None))
}

/// A trial's pruner and the metric it reads.
struct Pruning {
    metric: String,
    pruner: TrialPruner,
    /// A study's trial: a metric that is not a number prunes it.
    in_study: bool,
}

/// The worker's hooks on a trial's loop: heartbeats, the checkpoint pointer, early stop.
struct TrialHooks {
    objects: Arc<dyn Objects>,
    held: Held,
    lease_s: f64,
    last_beat: Instant,
    fenced: bool,
    pruner: Option<Pruning>,
    /// The last value of the pruner's (or study's) metric.
    last_metric: Option<f64>,
    run_dir: PathBuf,
    log: RunLog,
    /// The queue message the trial came in, hidden from others a lease at a time.
    delivery: Option<(Arc<dyn TrialQueue>, Message)>,
    /// Set when the store lost the trial's state (or refuses the credentials): why, and the
    /// worker's reason to leave. The run stops with a checkpoint in its working copy.
    lost: Option<(String, super::leave::Left)>,
    /// What the trial's mirror uploaded: the newest complete checkpoint, recorded at each
    /// heartbeat without listing the store (the run hands it over, [`Hooks::mirroring`]).
    uploaded: Option<crate::run::mirror::Uploaded>,
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
        if let Some(c) = self
            .uploaded
            .as_ref()
            .and_then(crate::run::mirror::Uploaded::newest)
            .and_then(|n| n.parse().ok())
            .map(|step| CheckpointRef { epoch, step })
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
    fn mirroring(&mut self, uploaded: &crate::run::mirror::Uploaded) {
        self.uploaded = Some(uploaded.clone());
    }

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
        let Some(p) = &mut self.pruner else { return Directive::Continue };
        // A metric written as null is one that was not a number (the run diverged).
        let value = match e.metrics_line().get(&p.metric) {
            Some(serde_json::Value::Null) if p.in_study => Some(f64::NAN),
            Some(v) => v.as_f64(),
            None => None,
        };
        self.last_metric = value.or(self.last_metric);
        if p.in_study && value.is_some_and(|v| !v.is_finite()) {
            self.log.line(
                Level::Warn,
                "worker",
                &format!("trial {}: {} is not a number at step {}: pruned", self.held.id, p.metric, e.step),
            );
        }
        match p.pruner.decide(e.step, value, p.in_study) {
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

/// Tags the MLflow experiment with the study's best trial so far (`paddock.study.best`).
fn tag_best(objects: &dyn Objects, server: &str, plan: &Plan, search: &crate::format::experiment::Search, log: &RunLog) {
    let tagged = (|| -> anyhow::Result<()> {
        let made = crate::format::experiment::study_trials(objects)?;
        let states = crate::exp::search::states_of(objects, &made)?;
        let Some((id, v, params)) = crate::exp::search::best(search, &made, &states) else { return Ok(()) };
        let line = format!("{id} {}={v} {}", search.metric, crate::exp::search::params_line(&params));
        crate::run::tracking::tag_experiment(server, &plan.id, "paddock.study.best", &line)
    })();
    if let Err(e) = tagged {
        log.line(Level::Warn, "tracking", &format!("the study's best was not tagged in MLflow: {e:#}"));
    }
}
