//! A worker's loop over the store: read the plan, look for a claimable trial, train it,
//! until none is left (or over the experiment's queue, [`super::over_queue`]).

use super::leave::{
    Left, Outcome, StoreLost, WorkerOptions, WorkerSummary, fatal, fatal_leave, leave, lost_store, plan_copy, should_leave,
    study_trial_copy, worker_name,
};
use super::over_queue;
use super::plan::localize;
use super::trial_run::run_trial;
use crate::exp::search::NotNow;
use crate::exp::trial::{self, Held};
use crate::format::experiment::{PLAN, Plan, parse_plan};
use crate::store::Objects;
use anyhow::Context;
use std::time::{Duration, Instant};

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
                let msg = format!("the store has been unreachable for {:.0} s: {e:#}", started.elapsed().as_secs_f64());
                crate::log::RunLog::stderr().line(crate::log::Level::Warn, "worker", &msg);
                return Ok(WorkerSummary { left: Left::StoreUnreachable, ..Default::default() });
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
    // A study's trials are made by its workers as they need them, not sent over a queue:
    // its workers look in the store.
    if let Some(d) = opts.queue.as_ref().filter(|_| plan.search.is_none()) {
        let queue = crate::exp::cloud::aws().queue(&d.queue, Some(&d.region))?;
        return over_queue::work(objects, &plan, &base, opts, &queue);
    }
    let mut summary = WorkerSummary::default();
    let mut idle_since = Instant::now();
    // Start at a different trial per worker, so workers do not all race for the first one.
    let offset = std::process::id() as usize;
    let mut lost = StoreLost::default();
    let mut study = Study::default();
    loop {
        if let Some(why) = should_leave(opts, &mut summary) {
            return Ok(leave(summary, why));
        }
        let now = crate::format::status::unix_now();
        let scanned = study.refresh(objects.as_ref(), &plan, &opts.work_dir).and_then(|current| {
            let found = scan(objects.as_ref(), current, offset, &me, opts.instance.as_deref(), now)?;
            Ok(match found {
                // None to claim: a study may make its next trial (claimed at the next look).
                (None, open) if plan.search.is_some() => match crate::exp::search::make_next(objects.as_ref(), &plan)? {
                    Ok(t) => {
                        let copy = study_trial_copy(&opts.work_dir, &plan.id, t.n);
                        let _ = std::fs::create_dir_all(copy.parent().unwrap_or(&opts.work_dir));
                        let _ = crate::store::write_atomically(&copy, &serde_json::to_vec_pretty(&t)?);
                        let msg = format!("study: made trial {} ({})", t.trial.id, t.trial.overrides.join(" "));
                        crate::log::RunLog::stderr().line(crate::log::Level::Info, "worker", &msg);
                        (None, true)
                    }
                    Err(NotNow::Busy) => (None, true),
                    Err(NotNow::Spent) => (None, open),
                },
                found => found,
            })
        });
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
                    return Ok(leave(summary, Left::StoreUnreachable));
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let Some(held) = claimed else {
            if !open {
                return Ok(leave(summary, Left::Done));
            }
            // Others hold the rest: wait, and take over any whose lease runs out.
            if opts.idle_timeout.is_some_and(|t| idle_since.elapsed() >= t) {
                return Ok(leave(summary, Left::Idle));
            }
            std::thread::sleep(Duration::from_millis(500));
            continue;
        };
        let id = held.id.clone();
        let outcome = run_trial(objects.clone(), study.current(&plan), &base, held, opts, None)?;
        summary.record(&id, &outcome);
        match outcome {
            Outcome::Lost { why, leave } => return Ok(lost_store(summary, leave, why, &opts.work_dir)),
            Outcome::DiskFull { why } => {
                summary.problem = Some(why);
                return Ok(leave(summary, Left::DiskFull));
            }
            _ => {}
        }
        idle_since = Instant::now();
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
    let offset = offset % plan.trials.len().max(1);
    for i in 0..plan.trials.len() {
        let t = &plan.trials[(i + offset) % plan.trials.len()];
        let held = match trial::read(objects, &t.id) {
            Ok(h) => h,
            // A study trial whose maker has not written its state yet (or was killed between
            // the two writes): queued, by a conditional create (whoever is first).
            Err(e) if plan.search.is_some() && trial::is_missing(&e) => {
                trial::create(objects, &t.id, &crate::format::trial::TrialState::queued())?;
                trial::read(objects, &t.id)?
            }
            Err(e) => return Err(e),
        };
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

/// A worker's view of its experiment's study: the plan with the trials made so far, their
/// paths pointing at the worker's copies of the files.
#[derive(Default)]
struct Study {
    cache: crate::format::experiment::StudyCache,
    plan: Option<Plan>,
}

impl Study {
    /// The plan with every study trial made so far (the plan itself without a study).
    fn refresh<'a>(&'a mut self, objects: &dyn Objects, plan: &'a Plan, work_dir: &std::path::Path) -> anyhow::Result<&'a Plan> {
        if plan.search.is_none() {
            return Ok(plan);
        }
        let mut current = self.cache.with_trials(objects, plan)?.into_owned();
        for t in current.trials.iter_mut().skip(plan.trials.len()) {
            super::plan::localize_overrides(plan, work_dir, &mut t.overrides);
        }
        Ok(self.plan.insert(current))
    }

    /// The plan as last refreshed.
    fn current<'a>(&'a self, plan: &'a Plan) -> &'a Plan {
        self.plan.as_ref().unwrap_or(plan)
    }
}
