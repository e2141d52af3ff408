//! The worker loop over an SQS queue (see [`crate::exp::queue`]): receive a trial id,
//! look at the trial's state, claim it, train it, and settle its message by how the trial
//! ended.

use super::leave::{
    Left, Outcome, StoreLost, WorkerOptions, WorkerSummary, fatal, fatal_leave, leave, lost_store, should_leave, worker_name,
};
use super::trial_run::run_trial;
use crate::exp::cloud::TrialQueue;
use crate::exp::trial;
use crate::format::experiment::Plan;
use crate::format::experiment::{all_final, states};
use crate::store::Objects;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Seconds a receive waits for a trial id.
const LONG_POLL_S: u64 = 5;

/// The worker loop over a queue: receive a trial id, look at its state, claim it, train
/// it, and settle its message by how the trial ended (see [`super::queue`]).
pub(super) fn work(
    objects: Arc<dyn Objects>,
    plan: &Plan,
    base: &Path,
    opts: &WorkerOptions,
    queue: &Arc<dyn TrialQueue>,
) -> anyhow::Result<WorkerSummary> {
    let me = worker_name();
    let lease = plan.trial.lease_s;
    let mut summary = WorkerSummary::default();
    let mut idle_since = Instant::now();
    let mut lost = StoreLost::default();
    // A long poll returns as soon as a trial id arrives; with none it waits 5 s (not SQS's
    // 20), so workers leave soon after the last commit of an experiment. An idle worker so
    // makes 720 receives an hour (≈ $0.0003).
    let longest = LONG_POLL_S;
    loop {
        if let Some(why) = should_leave(opts, &mut summary) {
            return Ok(leave(summary, why));
        }
        // Long polls, shorter when an idle timeout is near, so the worker leaves on time.
        let wait = opts.idle_timeout.map_or(longest, |t| t.saturating_sub(idle_since.elapsed()).as_secs().clamp(1, longest));
        let looked = queue.receive(wait, lease).map_err(anyhow::Error::from).and_then(|m| match m {
            // A stray message (not a trial of this plan) is dropped, never read as a trial.
            Some(m) if plan.trials.iter().all(|t| t.id != m.trial) => {
                let msg = format!("dropping a message for `{}`, which is not a trial of {}", m.trial, plan.id);
                crate::log::RunLog::stderr().line(crate::log::Level::Warn, "worker", &msg);
                queue.delete(&m).map(|()| None).map_err(anyhow::Error::from)
            }
            Some(m) => match trial::read(objects.as_ref(), &m.trial) {
                Ok(h) => Ok(Some((m, h))),
                Err(e) => {
                    let _ = queue.hide(&m, 0);
                    Err(e)
                }
            },
            None => Ok(None),
        });
        let got = match looked {
            Ok(got) => {
                lost.reached();
                got
            }
            Err(e) => {
                if let Some(why) = fatal(&e) {
                    return Ok(lost_store(summary, fatal_leave(&e), why, &opts.work_dir));
                }
                // The queue is gone when the experiment is over (the worker that finished it
                // deleted the queues with the fleet): every trial final means done.
                if states(objects.as_ref(), plan).is_ok_and(|s| all_final(&s)) {
                    return Ok(leave(summary, Left::Done));
                }
                if lost.given_up(opts, &e) {
                    return Ok(leave(summary, Left::StoreUnreachable));
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let Some((m, held)) = got else {
            // Nothing waiting. Done when nothing is in flight either and every trial is final.
            if queue.depth().is_ok_and(|(waiting, in_flight)| waiting + in_flight == 0)
                && states(objects.as_ref(), plan).is_ok_and(|s| all_final(&s))
            {
                return Ok(leave(summary, Left::Done));
            }
            if opts.idle_timeout.is_some_and(|t| idle_since.elapsed() >= t) {
                return Ok(leave(summary, Left::Idle));
            }
            continue;
        };
        let now = crate::format::status::unix_now();
        if held.state.status.is_final() {
            queue.delete(&m)?;
            continue;
        }
        if !held.state.claimable(now) {
            // Another worker holds it: look again when its lease would run out.
            queue.hide(&m, (held.state.lease_until - now).ceil().max(0.0) as u64 + 1)?;
            continue;
        }
        if trial::due_to_fail_lost(&held, now, plan.trial.max_lost) {
            // Its worker was lost once too often: failed, its message settled.
            if trial::fail_lost(objects.as_ref(), &held, plan.trial.max_lost)?.is_some() {
                queue.delete(&m)?;
            }
            continue;
        }
        let Some(held) = trial::claim(objects.as_ref(), &held, &me, opts.instance.as_deref(), now, lease as f64)? else {
            queue.hide(&m, lease)?;
            continue;
        };
        let id = held.id.clone();
        let outcome = run_trial(objects.clone(), plan, base, held, opts, Some((queue.clone(), m.clone())))?;
        if let Outcome::Lost { why, leave } = outcome {
            // The message stays in flight until its visibility runs out: `exp restore` puts
            // the trial back, and the next worker settles it.
            summary.record(&id, &Outcome::Lost { why: why.clone(), leave });
            return Ok(lost_store(summary, leave, why, &opts.work_dir));
        }
        match outcome {
            Outcome::Committed | Outcome::Failed => queue.delete(&m)?,
            // A new message: preemptions never count towards the dead-letter queue.
            Outcome::Preempted => {
                queue.send(std::slice::from_ref(&id))?;
                queue.delete(&m)?;
            }
            // Visible again after a short pause: the receive count grows.
            Outcome::Errored | Outcome::DiskFull { .. } => queue.hide(&m, 5)?,
            // The new owner settles the trial; this worker's receipt is stale.
            Outcome::Fenced | Outcome::Lost { .. } => {}
        }
        summary.record(&id, &outcome);
        if let Outcome::DiskFull { why } = outcome {
            summary.problem = Some(why);
            return Ok(leave(summary, Left::DiskFull));
        }
        idle_since = Instant::now();
    }
}
