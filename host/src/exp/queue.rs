//! Dispatch over SQS: one queue of trial ids per experiment (`paddock-<experiment id>`),
//! with a dead-letter queue (`…-dlq`) for messages received too often.
//!
//! The queue only says which trial to look at next; the trial's state object decides who
//! owns it (an old receipt handle can still release or delete a message, so SQS cannot
//! fence a stale worker — the conditional writes of [`super::trial`] do). A message's
//! visibility timeout is a hint, set to the trial's lease and extended with each
//! heartbeat. A preempted trial goes back as a new message (its receive count starts
//! again, so preemptions never push it to the dead-letter queue); a failed attempt makes
//! the old message visible again (its receive count grows); a final trial's message is
//! deleted.

use super::cloud::{Cloud, CloudError, TrialQueue, retry};
use anyhow::Context;
use std::sync::Arc;

pub use super::cloud::Message;
pub use crate::format::experiment::{DISPATCH, read_dispatch};

/// Receives after which a message goes to the dead-letter queue: trials whose worker
/// vanished this often while holding them (errors are counted, and failed, in the trial's
/// state long before).
pub const MAX_RECEIVES: u32 = 50;

/// The queues of an experiment, as `exp submit --queue` and `exp run --fleet` record them
/// in its store (`dispatch.json`).
pub type Dispatch = super::cloud::Queues;

/// The queue name of experiment `id` (SQS allows 80 characters: longer ids are cut, with
/// a hash of the whole id kept).
pub fn queue_name(id: &str) -> String {
    let name = format!("paddock-{id}");
    if name.len() <= 76 {
        return name;
    }
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(id.as_bytes()));
    format!("{}-{}", &name[..63], &hash[..12])
}

/// A client for the experiment's queue.
fn open(cloud: &dyn Cloud, d: &Dispatch) -> Result<Arc<dyn TrialQueue>, CloudError> {
    cloud.queue(&d.queue, Some(&d.region))
}

/// Gives a submitted experiment its queues: creates them (or finds them), and the first
/// time, sends every trial that is not final and records the queues in `dispatch.json`
/// (after sending: a submit that dies half way sends again next time; two at once send
/// twice, which is harmless — a message for a trial that another worker holds, or that is
/// final, is hidden or dropped).
pub fn dispatch(
    objects: &dyn crate::store::Objects,
    cloud: &dyn Cloud,
    plan: &crate::format::experiment::Plan,
    region: Option<&str>,
) -> anyhow::Result<Dispatch> {
    if let Some(d) = read_dispatch(objects)? {
        return Ok(d);
    }
    let backoff = cloud.backoff();
    let d = retry(backoff, || cloud.create_queues(&plan.id, &queue_name(&plan.id), region, plan.trial.lease_s, MAX_RECEIVES))?;
    let queue = open(cloud, &d)?;
    let open = crate::format::experiment::open_trials(objects, plan)?;
    retry(backoff, || queue.send(&open))?;
    objects.put_new(DISPATCH, &serde_json::to_vec_pretty(&d)?)?;
    Ok(d)
}

/// How long [`requeue`] waits for SQS's purge limit (one purge a queue a minute).
pub const PURGE_WAIT: std::time::Duration = std::time::Duration::from_secs(65);

/// Sends every trial that is not final again, over an emptied queue: a fleet started
/// again after a cancel takes up every open trial, those whose message went to the
/// dead-letter queue included. SQS allows one purge a minute, and a message sent while a
/// purge runs may be purged too: within a minute of the last one (a relaunch right after a
/// cancel, or a second controller), this waits until the queue can be purged again, then
/// sends. `purge_wait` bounds that wait ([`PURGE_WAIT`]).
pub fn requeue(
    objects: &dyn crate::store::Objects,
    cloud: &dyn Cloud,
    plan: &crate::format::experiment::Plan,
    purge_wait: std::time::Duration,
) -> anyhow::Result<usize> {
    let d = dispatch(objects, cloud, plan, plan.fleet.as_ref().and_then(|f| f.region.as_deref()))?;
    let queue = open(cloud, &d)?;
    let backoff = cloud.backoff();
    let since = std::time::Instant::now();
    loop {
        match retry(backoff, || queue.purge()) {
            Ok(()) => break,
            Err(CloudError::Busy { .. }) if since.elapsed() < purge_wait => {
                std::thread::sleep((purge_wait / 13).max(std::time::Duration::from_millis(1)));
            }
            Err(e) => return Err(e).with_context(|| format!("failed to empty {} before sending the open trials again", d.queue)),
        }
    }
    let open = crate::format::experiment::open_trials(objects, plan)?;
    retry(backoff, || queue.send(&open))?;
    Ok(open.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_fit_sqs() {
        assert_eq!(queue_name("cartpole-ppo-lr-0123abcd"), "paddock-cartpole-ppo-lr-0123abcd");
        let long = queue_name(&"x".repeat(100));
        assert!(long.len() + "-dlq".len() <= 80, "{long}");
        assert_ne!(long, queue_name(&"x".repeat(101)), "different ids, different queues");
    }

    #[test]
    fn a_requeue_within_a_minute_of_the_last_purge_waits_it_out_and_sends_each_open_trial_once() {
        use crate::exp::cloud::double::{FakeCloud, Fault, Op};
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = crate::store::LocalObjects { root: dir.path().to_path_buf() };
        let plan = crate::exp::fleet::tests::plan(1);
        let cloud = FakeCloud::new();
        for t in &plan.trials {
            crate::exp::trial::create(&objects, &t.id, &crate::exp::trial::TrialState::queued()).expect("submit");
        }
        dispatch(&objects, &cloud, &plan, None).expect("dispatch");
        assert_eq!(cloud.state().messages.len(), plan.trials.len(), "the first dispatch sends every open trial");
        // SQS refuses two purges (the last one was less than a minute ago), then takes one.
        cloud.fault(Op::Purge, Fault::Busy);
        cloud.fault(Op::Purge, Fault::Busy);
        let wait = std::time::Duration::from_millis(300);
        assert_eq!(requeue(&objects, &cloud, &plan, wait).expect("requeue"), plan.trials.len());
        assert_eq!(cloud.count(Op::Purge), 3);
        assert_eq!(cloud.state().purges, 1);
        assert_eq!(cloud.state().messages.len(), plan.trials.len(), "sent after the purge, once each");
        // Busy for longer than the wait: an error that names the queue, nothing sent.
        for _ in 0..100 {
            cloud.fault(Op::Purge, Fault::Busy);
        }
        let sends = cloud.count(Op::Send);
        let e = requeue(&objects, &cloud, &plan, wait).expect_err("busy throughout");
        assert!(format!("{e:#}").contains("failed to empty fake://"), "{e:#}");
        assert_eq!(cloud.count(Op::Send), sends, "nothing sent while a purge may still delete it");
    }
}
