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

pub use crate::format::trial::{
    CheckpointRef, Held, Missing, Occupancy, Status, TrialResult, TrialState, is_missing, read, run_prefix, state_key,
};
use crate::store::Objects;

/// Creates trial `id`'s state as `state` if it has none; `true` when this call made it.
pub fn create(objects: &dyn Objects, id: &str, state: &TrialState) -> anyhow::Result<bool> {
    let made = objects.put_new(&state_key(id), &serde_json::to_vec_pretty(state)?)?;
    if made {
        // The index only speeds readers up; the state is written (see `format::index`).
        let _ = crate::format::index::note(objects, id, None, state);
    }
    Ok(made)
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
/// ([`crate::format::index`]).
pub fn write(objects: &dyn Objects, held: &Held, next: TrialState) -> anyhow::Result<Option<Held>> {
    let data = serde_json::to_vec_pretty(&next)?;
    let Some(tag) = objects.put_if_match(&state_key(&held.id), &data, &held.tag)? else { return Ok(None) };
    // The index only speeds readers up (they fall back to the state): a failed marker write
    // is not the write's failure.
    let _ = crate::format::index::note(objects, &held.id, Some(&held.state), &next);
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

#[cfg(test)]
mod index_tests {
    //! The index as the trial writes keep it (`crate::format::index`).
    use super::{Held, Status, TrialState, claim, create, read, write};
    use crate::format::experiment::Plan;
    use crate::format::index::{Overview, marker};

    fn plan(n: usize) -> Plan {
        let trials =
            (0..n).map(|i| crate::format::experiment::Trial { id: format!("t{i}"), overrides: vec![], start_from: None }).collect();
        Plan {
            id: "x".into(),
            base: String::new(),
            trials,
            early_stop: None,
            search: None,
            fleet: None,
            trial: Default::default(),
            files: Default::default(),
        }
    }

    #[test]
    fn one_listing_tells_every_trial_and_only_running_or_changed_ones_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = crate::store::open(&crate::store::Location::Local(dir.path().to_path_buf()), &Default::default()).expect("store");
        let p = plan(50);
        for t in &p.trials {
            create(objects.as_ref(), &t.id, &TrialState::queued()).expect("create");
        }
        let mut o = Overview::default();
        let all = o.read(objects.as_ref(), &p).expect("read");
        assert!(all.iter().all(|(_, s)| *s == TrialState::queued()));
        assert_eq!(o.requests, 1, "fresh trials need no GET");

        // A claim and heartbeats: one marker change, and the running trial is read live.
        let h = read(objects.as_ref(), "t3").expect("read");
        let mut h: Held = claim(objects.as_ref(), &h, "w", None, 100.0, 60.0).expect("claim").expect("won");
        for step in 1..5 {
            let next = TrialState { step: step * 100, heartbeat: 100.0 + step as f64, ..h.state.clone() };
            h = write(objects.as_ref(), &h, next).expect("beat").expect("held");
        }
        assert_eq!(objects.list("index/t3").expect("list").len(), 1, "heartbeats write no marker");
        let all = o.read(objects.as_ref(), &p).expect("read");
        assert_eq!((all[3].1.status, all[3].1.step), (Status::Running, 400), "the live state");
        assert_eq!(o.requests, 2);

        // Committed: read once, then remembered.
        let done = TrialState { status: Status::Done, owner: None, ..h.state.clone() };
        write(objects.as_ref(), &h, done.clone()).expect("commit").expect("held");
        assert_eq!(o.read(objects.as_ref(), &p).expect("read")[3].1, done);
        assert_eq!(o.requests, 2);
        assert_eq!(o.read(objects.as_ref(), &p).expect("read")[3].1, done);
        assert_eq!(o.requests, 1, "a settled state is not read again");
        let cache = dir.path().join("cache.json");
        o.save(&cache);
        let mut again = Overview::load(&cache);
        assert_eq!(again.read(objects.as_ref(), &p).expect("read")[3].1, done);
        assert_eq!(again.requests, 1, "remembered across processes");

        // A stale marker left by a failed delete: the newer one counts.
        objects.put(&marker("t3", &h.state), b"{}").expect("put");
        assert_eq!(o.read(objects.as_ref(), &p).expect("read")[3].1.status, Status::Done);
        // A trial without a marker (an experiment from before the index) is read.
        std::fs::remove_dir_all(dir.path().join("index/t7")).expect("rm");
        let all = o.read(objects.as_ref(), &p).expect("read");
        assert_eq!((all[7].1.status, o.requests), (Status::Queued, 2));
        // A state that is gone is an error, not a queued trial.
        std::fs::remove_dir_all(dir.path().join("trials/t9")).expect("rm");
        std::fs::remove_dir_all(dir.path().join("index/t9")).expect("rm");
        assert!(crate::format::trial::is_missing(&o.read(objects.as_ref(), &p).expect_err("missing")));
    }
}
