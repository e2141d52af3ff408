//! Submitting an experiment to its store, and the counts every follower shows.

use super::spec::Plan;
use super::trial::{self, TrialState};
use super::worker;
use crate::store::Location;
use std::collections::BTreeMap;

/// The store an experiment goes to: `flag` (`--store`), else the file's `[fleet] store`,
/// else `runs/experiments`.
pub fn store_of(flag: Option<&str>, plan: &Plan) -> anyhow::Result<Location> {
    let s = flag.map(str::to_string).or_else(|| plan.fleet.as_ref().map(|f| f.store.clone())).unwrap_or_else(|| "runs/experiments".into());
    Location::parse(&s)
}

/// Submits a plan to `store`: the plan object (once; the same id is the same plan), its
/// files, and a queued state per trial. Returns the experiment's location.
pub fn submit(plan: &Plan, store: &Location) -> anyhow::Result<Location> {
    let at = store.join(&plan.id);
    let objects = crate::store::open(&at, &Default::default())?;
    let text = serde_json::to_vec_pretty(plan)?;
    if !objects.put_new(worker::PLAN, &text)? {
        let there = worker::read_plan(objects.as_ref())?;
        if there.trials != plan.trials {
            anyhow::bail!("{at} holds another plan under the same id (edited by hand?)");
        }
    }
    worker::upload_files(objects.as_ref(), plan)?;
    for t in &plan.trials {
        trial::create(objects.as_ref(), &t.id, &TrialState::queued())?;
    }
    Ok(at)
}

/// The region the experiment file names, if any.
pub fn region_of(plan: &Plan) -> Option<&str> {
    plan.fleet.as_ref().and_then(|f| f.region.as_deref())
}

/// Trials by state name.
pub fn counts(states: &[(String, TrialState)]) -> BTreeMap<&'static str, usize> {
    let mut by = BTreeMap::new();
    for (_, s) in states {
        *by.entry(s.status.as_str()).or_default() += 1;
    }
    by
}
