//! An experiment's fleet in numbers — instances by type and zone, dollars so far, per hour
//! and projected, waste and orphans — and the rule that ends a fleet: every trial final,
//! or the budget spent.

use super::cloud::{Cloud, retry};
use super::cost::{self, Bill};
use super::fleet::{self, FleetRecord, FleetState, PricePoint};
use super::queue;
use super::trial::{Occupancy, Status, TrialState};
use crate::format::experiment::Plan;
use crate::store::Objects;
use serde::Serialize;

/// Seconds after its launch a running instance that holds no trial counts as an orphan
/// (booting and pulling the image take a few minutes).
pub const ORPHAN_AFTER_S: f64 = 600.0;

/// The fleet part of `exp status`.
#[derive(Debug, Serialize)]
pub struct FleetReport {
    /// `fleet.json`.
    pub record: FleetRecord,
    /// Cost so far.
    pub bill: Bill,
    /// Dollars at the end, if the work goes on as so far (`None` before 5% is done).
    pub projected: Option<f64>,
    /// Env steps trained again after preemptions, and what they cost.
    pub waste_steps: u64,
    /// Dollars of those steps.
    pub waste_dollars: f64,
    /// Running instances with the experiment's tag that hold no trial, 10 minutes after
    /// their launch.
    pub orphans: Vec<String>,
}

/// An experiment's queues now (SQS's approximate counts).
#[derive(Debug, Serialize)]
pub struct QueueDepth {
    /// The queue.
    pub url: String,
    /// Trial ids waiting.
    pub waiting: u64,
    /// Trial ids received and not yet settled.
    pub in_flight: u64,
    /// Messages in the dead-letter queue (received too often; their trials wait for a
    /// look), if it answered.
    pub dead_letters: Option<u64>,
}

/// The experiment's queues, when it has them (`None` also when SQS does not answer).
pub fn queue_depth(objects: &dyn Objects, cloud: &dyn Cloud) -> anyhow::Result<Option<QueueDepth>> {
    let Some(d) = queue::read_dispatch(objects)? else { return Ok(None) };
    let Ok((waiting, in_flight)) = cloud.queue(&d.queue, Some(&d.region)).and_then(|q| q.depth()) else { return Ok(None) };
    let dead_letters = cloud.queue(&d.dead_letter, Some(&d.region)).and_then(|q| q.depth()).ok().map(|(w, f)| w + f);
    Ok(Some(QueueDepth { url: d.queue, waiting, in_flight, dead_letters }))
}

/// Every trial's holdings: the closed ones, and the current holder's until `now`.
fn holdings(states: &[(String, TrialState)], now: f64) -> Vec<(String, Occupancy)> {
    let mut out = Vec::new();
    for (id, s) in states {
        out.extend(s.occupancy.iter().map(|o| (id.clone(), o.clone())));
        if let (Status::Running, Some(i)) = (s.status, &s.instance) {
            out.push((id.clone(), Occupancy { instance: i.clone(), from: s.claimed_at, to: now.min(s.lease_until.max(s.heartbeat)) }));
        }
    }
    out
}

/// The steps a trial trains: `total_steps` of its overrides, else of the base config.
fn target_steps(plan: &Plan, overrides: &[String]) -> Option<u64> {
    let from = |s: &str| s.trim().replace('_', "").parse::<f64>().ok().map(|v| v as u64);
    overrides.iter().rev().find_map(|o| o.strip_prefix("total_steps=").and_then(from)).or_else(|| {
        let base: toml::Table = plan.base.parse().ok()?;
        base.get("total_steps").and_then(|v| v.as_integer().map(|i| i as u64).or_else(|| v.as_float().map(|f| f as u64)))
    })
}

/// How much of the experiment is done, 0 to 1, by env steps (final trials count whole).
pub fn fraction_done(plan: &Plan, states: &[(String, TrialState)]) -> f64 {
    if plan.search.is_some() {
        // A study's states hold its budget (trials not made yet are queued placeholders);
        // its trials' overrides share one total.
        if states.is_empty() {
            return 1.0;
        }
        let total = plan.search.as_ref().and_then(|s| target_steps(plan, &s.fixed)).filter(|&n| n > 0);
        let sum: f64 = states
            .iter()
            .map(|(_, s)| if s.status.is_final() { 1.0 } else { total.map_or(0.0, |n| (s.step as f64 / n as f64).min(1.0)) })
            .sum();
        return sum / states.len() as f64;
    }
    if plan.trials.is_empty() {
        return 1.0;
    }
    let mut sum = 0.0;
    for (t, (_, s)) in plan.trials.iter().zip(states) {
        sum += if s.status.is_final() {
            1.0
        } else {
            target_steps(plan, &t.overrides).filter(|&n| n > 0).map_or(0.0, |n| (s.step as f64 / n as f64).min(1.0))
        };
    }
    sum / plan.trials.len() as f64
}

/// The fleet's report, or `None` when the experiment never had a fleet. `prices` replaces
/// the spot price history from EC2 (a fixture, or a what-if).
pub fn fleet_report(
    objects: &dyn Objects,
    cloud: &dyn Cloud,
    plan: &Plan,
    states: &[(String, TrialState)],
    prices: Option<Vec<PricePoint>>,
) -> anyhow::Result<Option<FleetReport>> {
    let Some((record, now_running)) = fleet::observe(objects, cloud, &plan.id)? else { return Ok(None) };
    let now = crate::format::status::unix_now();
    let prices = match prices {
        Some(p) => p,
        None => fleet::price_history(cloud, &record, now)?,
    };
    let holds = holdings(states, now);
    let bill = cost::bill(&record.instances, &prices, &holds, now);
    let done = fraction_done(plan, states);
    let projected = (done >= 0.05).then(|| bill.total / done);
    let mut waste_steps = 0;
    let mut waste_dollars = 0.0;
    for (id, s) in states {
        waste_steps += s.redone_steps;
        let trained = s.step + s.redone_steps;
        if trained > 0 {
            waste_dollars += bill.trials.get(id).copied().unwrap_or(0.0) * s.redone_steps as f64 / trained as f64;
        }
    }
    let held: std::collections::BTreeSet<&str> =
        states.iter().filter(|(_, s)| s.status == Status::Running).filter_map(|(_, s)| s.instance.as_deref()).collect();
    // Past its boot (10 minutes), a running instance that holds no trial is an orphan.
    let orphans = now_running
        .iter()
        .filter(|i| i.state == "running" && now - i.launched > ORPHAN_AFTER_S && !held.contains(i.id.as_str()))
        .map(|i| i.id.clone())
        .collect();
    Ok(Some(FleetReport { record, bill, projected, waste_steps, waste_dollars, orphans }))
}

/// Ends the experiment's fleet when its work is over: every trial final (`complete`), or
/// the budget spent (`budget`). Returns the reason when it tore the fleet down. Any
/// controller or worker may call it: tearing down is idempotent.
pub fn reconcile(objects: &dyn Objects, cloud: &dyn Cloud, plan: &Plan, states: &[(String, TrialState)]) -> anyhow::Result<Option<String>> {
    let Some((record, _)) = fleet::read_fleet(objects)? else { return Ok(None) };
    if record.state == FleetState::Deleted {
        return Ok(None);
    }
    if crate::format::experiment::all_final(states) {
        fleet::teardown(objects, cloud, &plan.id, "complete")?;
        if let Some(d) = queue::read_dispatch(objects)? {
            // The work is over: the queues go too (a cancelled experiment keeps them).
            for url in [&d.queue, &d.dead_letter] {
                let _ = cloud.queue(url, Some(&d.region)).and_then(|q| retry(cloud.backoff(), || q.delete_queue()));
            }
        }
        return Ok(Some("complete".into()));
    }
    if let Some(budget) = plan.fleet.as_ref().and_then(|f| f.budget_dollars)
        && let Some(r) = fleet_report(objects, cloud, plan, states, None)?
        && r.bill.total >= budget
    {
        fleet::teardown(objects, cloud, &plan.id, "budget")?;
        return Ok(Some(format!("budget: ${:.2} spent of ${budget:.2}", r.bill.total)));
    }
    Ok(None)
}
