//! `exp run --fleet`, `exp cancel` and the last worker out: the controller that submits an
//! experiment, starts its Spot fleet and follows it until the work is done, the budget is
//! spent or the fleet is deleted; cancelling; ending a finished experiment's fleet.

use super::cloud::Cloud;
use super::fleet::{self, FleetRecord, FleetState, Launched, Teardown};
use super::report::{self, FleetReport};
use super::submit::{store_of, submit};
use super::trial::TrialState;
use super::{queue, worker};
use crate::format::experiment::Plan;
use crate::store::Location;
use std::time::{Duration, Instant};

/// How often the controller looks at the trials, and at EC2 (instances, prices, budget).
const LOOK_EVERY: Duration = Duration::from_secs(10);
const RECONCILE_EVERY: Duration = Duration::from_secs(60);

/// What the controller tells its caller as it goes.
#[derive(Debug)]
pub enum FleetEvent<'a> {
    /// Submitted; the queue the trials go to.
    Submitted {
        /// The experiment.
        at: &'a Location,
        /// Its queue.
        queue: &'a str,
        /// Settings an edited file changed in the stored plan (`key: old → new`).
        updated: &'a [String],
    },
    /// Open trials sent to the queue again (a fleet again after a cancel).
    Requeued(usize),
    /// What the launch found or did.
    Launch(&'a Launched),
    /// The trials' states changed.
    States(&'a [(String, TrialState)]),
}

/// How the controller ended.
#[derive(Debug)]
pub enum FleetEnd {
    /// Every trial was final before anything launched.
    NothingToRun(Vec<(String, TrialState)>),
    /// `--detach`: the fleet runs on.
    Detached(Location),
    /// A stop signal: the fleet runs on (the exit status asked for).
    Interrupted(Location, u8),
    /// The controller tore the fleet down (work done, or the budget spent).
    Ended {
        /// Why.
        why: String,
        /// The trials' states at the end.
        states: Vec<(String, TrialState)>,
        /// The fleet's numbers.
        report: Option<Box<FleetReport>>,
    },
    /// Someone else deleted the fleet (a cancel): trials keep their state.
    DeletedElsewhere(String),
    /// A cancel came while this controller launched: what it made is deleted.
    Cancelled {
        /// The fleet it made and deleted.
        fleet: Option<String>,
        /// The record's reason.
        reason: String,
    },
}

/// Submits `plan`, starts its fleet and follows it (see the module docs).
pub fn run(plan: &Plan, cloud: &dyn Cloud, store: Option<&str>, detach: bool, on: &mut dyn FnMut(FleetEvent)) -> anyhow::Result<FleetEnd> {
    let f = plan
        .fleet
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("experiment {}: no [fleet] section: add one (docs/experiments.md), or run with --local", plan.id))?;
    // Before anything is written: a binary without the fleet's clients says so at once.
    super::cloud::require_fleet()?;
    let store = store_of(store, plan)?;
    if !matches!(store, Location::S3 { .. }) {
        anyhow::bail!("a fleet's experiment lives in S3 (key `fleet.store` or --store s3://…), not in {store}");
    }
    let submitted = submit(plan, &store)?;
    let at = submitted.at;
    let objects = crate::store::open(&at, &Default::default())?;
    let states = crate::format::experiment::states(objects.as_ref(), plan)?;
    if crate::format::experiment::all_final(&states) {
        return Ok(FleetEnd::NothingToRun(states));
    }
    let d = queue::dispatch(objects.as_ref(), cloud, plan, f.region.as_deref())?;
    if fleet::read_fleet(objects.as_ref())?.is_some_and(|(r, _)| r.state == FleetState::Deleted) {
        // A fleet again after a cancel (or a spent budget): every open trial is sent afresh.
        let n = queue::requeue(objects.as_ref(), cloud, plan, queue::PURGE_WAIT)?;
        on(FleetEvent::Requeued(n));
    }
    on(FleetEvent::Submitted { at: &at, queue: &d.queue, updated: &submitted.updated });
    let launched = fleet::launch(objects.as_ref(), cloud, plan, &at.to_string(), &worker::worker_name())?;
    on(FleetEvent::Launch(&launched));
    if let Launched::Cancelled { fleet, reason } = launched {
        return Ok(FleetEnd::Cancelled { fleet, reason });
    }
    if detach {
        return Ok(FleetEnd::Detached(at));
    }
    let mut last: Vec<(String, TrialState)> = Vec::new();
    let mut last_reconcile: Option<Instant> = None;
    // One listing of the index and a GET per running or changed trial per look.
    let mut overview = crate::format::index::Overview::default();
    loop {
        if crate::run::interrupt::requested().is_some() {
            return Ok(FleetEnd::Interrupted(at, crate::run::interrupt::exit_status().unwrap_or(130)));
        }
        let states = overview.read(objects.as_ref(), plan)?;
        if states.iter().map(|(_, s)| s.status).ne(last.iter().map(|(_, s)| s.status)) {
            on(FleetEvent::States(&states));
        }
        if last_reconcile.is_none_or(|t| t.elapsed() >= RECONCILE_EVERY) || crate::format::experiment::all_final(&states) {
            last_reconcile = Some(Instant::now());
            if let Some(why) = report::reconcile(objects.as_ref(), cloud, plan, &states)? {
                let states = crate::format::experiment::states(objects.as_ref(), plan)?;
                let report = report::fleet_report(objects.as_ref(), cloud, plan, &states, None)?.map(Box::new);
                return Ok(FleetEnd::Ended { why, states, report });
            }
            if let Some((r, _)) = fleet::read_fleet(objects.as_ref())?
                && r.state == FleetState::Deleted
            {
                return Ok(FleetEnd::DeletedElsewhere(r.reason.unwrap_or_else(|| "?".into())));
            }
        }
        last = states;
        let until = Instant::now() + LOOK_EVERY;
        while Instant::now() < until && crate::run::interrupt::requested().is_none() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// What `exp cancel` did.
#[derive(Debug)]
pub struct Cancelled {
    /// The experiment's id.
    pub id: String,
    /// The record before the cancel.
    pub before: FleetRecord,
    /// What was deleted.
    pub done: Teardown,
}

/// Deletes experiment `at`'s fleets with their instances (trials keep their state).
pub fn cancel(at: &Location, cloud: &dyn Cloud) -> anyhow::Result<Cancelled> {
    super::cloud::require_fleet()?;
    let objects = crate::store::open(at, &Default::default())?;
    let plan = crate::format::experiment::read_plan(objects.as_ref())?;
    let Some((before, _)) = fleet::read_fleet(objects.as_ref())? else {
        anyhow::bail!("experiment {} at {at} has no fleet (it was not run with --fleet); stop local workers with Ctrl-C", plan.id);
    };
    let done = fleet::teardown(objects.as_ref(), cloud, &plan.id, "cancelled")?;
    Ok(Cancelled { id: plan.id, before, done })
}

/// After a worker found every trial final: ends the experiment's fleet, if it has one
/// (a controller or `exp cancel` does it otherwise). The reason when it ended it.
pub fn end_if_done(at: &Location, cloud: &dyn Cloud) -> anyhow::Result<Option<String>> {
    let objects = crate::store::open(at, &Default::default())?;
    if fleet::read_fleet(objects.as_ref())?.is_none() {
        return Ok(None);
    }
    let plan = crate::format::experiment::read_plan(objects.as_ref())?;
    let states = crate::format::experiment::states(objects.as_ref(), &plan)?;
    report::reconcile(objects.as_ref(), cloud, &plan, &states)
}
