//! Submitting an experiment to its store, and the counts every follower shows.

use super::trial::{self, TrialState};
use super::worker;
use crate::format::experiment::Plan;
use crate::store::Location;
use anyhow::Context;
use std::collections::BTreeMap;

/// The store an experiment goes to: `flag` (`--store`), else the file's `[fleet] store`,
/// else `runs/experiments`.
pub fn store_of(flag: Option<&str>, plan: &Plan) -> anyhow::Result<Location> {
    let s = flag.map(str::to_string).or_else(|| plan.fleet.as_ref().map(|f| f.store.clone())).unwrap_or_else(|| "runs/experiments".into());
    Location::parse(&s)
}

/// Where the experiment an argument names is: a location (`STORE/EXPERIMENT_ID`), or an
/// experiment file (`*.toml`), planned to find its id and store.
pub fn experiment_at(arg: &str) -> anyhow::Result<Location> {
    let path = std::path::Path::new(arg);
    if path.extension().is_some_and(|e| e == "toml") && !arg.starts_with("s3://") {
        if !path.is_file() {
            anyhow::bail!("{arg}: no such experiment file (give the file, or the experiment's location STORE/EXPERIMENT_ID)");
        }
        let plan = super::spec::plan(path, &[])?;
        return Ok(store_of(None, &plan)?.join(&plan.id));
    }
    Location::parse(arg)
}

/// An experiment as submitted: where it is, and which settings an edited file changed in
/// the stored plan (empty when it was new or unchanged).
#[derive(Clone, Debug)]
pub struct Submitted {
    /// The experiment's location.
    pub at: Location,
    /// `key: old → new` for each setting updated.
    pub updated: Vec<String>,
}

/// Fleet keys that change what a running fleet is: refused while one is running.
const FLEET_SHAPE: [&str; 11] = [
    "store",
    "region",
    "instance_types",
    "max_price",
    "image",
    "api",
    "launch_template",
    "ami",
    "subnets",
    "spot_fleet_role",
    "target_capacity",
];

/// Submits a plan to `store`: the plan object (once; the same id is the same plan), its
/// files, and a queued state per trial. Returns the experiment's location.
///
/// The id is a hash of the base config, the trials and the early-stop rule, so a file
/// submitted again under the same id can differ only in `[trial]` and `[fleet]`. Those
/// edits are applied to the stored plan and named in [`Submitted::updated`]: `[trial]`
/// (lease, attempts) for workers that start from then on, `fleet.budget_dollars`,
/// `fleet.idle_timeout_s` and `fleet.max_capacity` at once; the keys that shape a fleet
/// (region, instance types, price, image, template, subnets, API, capacity) only while no
/// fleet is running — with one running the submission is refused, naming them.
pub fn submit(plan: &Plan, store: &Location) -> anyhow::Result<Submitted> {
    let at = store.join(&plan.id);
    let objects = crate::store::open(&at, &Default::default())?;
    let text = serde_json::to_vec_pretty(plan)?;
    let mut updated = Vec::new();
    if !objects.put_new(crate::format::experiment::PLAN, &text)? {
        let (data, tag) = objects
            .get_tagged(crate::format::experiment::PLAN)?
            .with_context(|| format!("{at}/{}: vanished while it was read", crate::format::experiment::PLAN))?;
        let there: Plan =
            serde_json::from_slice(&data).with_context(|| format!("{at}/{} is not an experiment plan", crate::format::experiment::PLAN))?;
        if there.trials != plan.trials || there.early_stop != plan.early_stop {
            anyhow::bail!("{at} holds another plan under the same id (edited by hand?): its trials or early-stop rule differ");
        }
        let changes = differences(&there, plan);
        if !changes.is_empty() {
            let shape: Vec<&String> = changes
                .iter()
                .filter(|(k, _)| FLEET_SHAPE.iter().any(|f| k == &format!("fleet.{f}") || k == "fleet"))
                .map(|(k, _)| k)
                .collect();
            let running = crate::format::experiment::read_fleet(objects.as_ref())?
                .is_some_and(|(r, _)| r.state != crate::exp::fleet::FleetState::Deleted);
            if running && !shape.is_empty() {
                anyhow::bail!(
                    "{at}: the experiment file changes {} while the experiment's fleet is running; cancel it first (`paddock exp cancel {at}`), then submit again, or undo the edit",
                    shape.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                );
            }
            // The stored plan keeps its own file map (its keys are the same contents).
            let mut next = plan.clone();
            next.files = there.files.clone();
            let data = serde_json::to_vec_pretty(&next)?;
            objects
                .put_if_match(crate::format::experiment::PLAN, &data, &tag)?
                .with_context(|| format!("{at}/{} changed while it was updated; submit again", crate::format::experiment::PLAN))?;
            updated = changes.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
        }
    }
    worker::upload_files(objects.as_ref(), plan)?;
    for t in &plan.trials {
        trial::create(objects.as_ref(), &t.id, &TrialState::queued())?;
    }
    Ok(Submitted { at, updated })
}

/// The `[trial]` and `[fleet]` settings that differ between two plans: `key` and
/// `old → new`.
fn differences(old: &Plan, new: &Plan) -> Vec<(String, String)> {
    let flat = |p: &Plan| -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let sections =
            [("trial", serde_json::to_value(&p.trial).ok()), ("fleet", p.fleet.as_ref().and_then(|f| serde_json::to_value(f).ok()))];
        for (name, v) in sections {
            match v {
                Some(serde_json::Value::Object(m)) => {
                    for (k, v) in m {
                        out.insert(format!("{name}.{k}"), v.to_string());
                    }
                }
                Some(v) => {
                    out.insert(name.to_string(), v.to_string());
                }
                None => {
                    out.insert(name.to_string(), "(none)".into());
                }
            }
        }
        out
    };
    let (a, b) = (flat(old), flat(new));
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let none = "(none)".to_string();
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = (a.get(k).unwrap_or(&none), b.get(k).unwrap_or(&none));
            (x != y).then(|| (k.clone(), format!("{x} → {y}")))
        })
        .collect()
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
