//! EC2 Spot capacity for an experiment (`paddock exp run --fleet`).
//!
//! Launching makes the experiment's own launch template (`paddock-<id>`) from the base one
//! that the CloudFormation template in `docker/` creates — its AMI, instance profile,
//! security groups and key — with the user data that starts the worker image, IMDSv2 with
//! a hop limit of 2 (containers reach the metadata service) and tags naming the
//! experiment; then requests Spot capacity across the listed instance types with the
//! capacity-optimized strategy: an EC2 Fleet of type `maintain` (CreateFleet, the default)
//! or a Spot Fleet request (`api = "spot-fleet"`). Everything is tagged
//! `paddock:experiment = <id>`.
//!
//! `fleet.json` in the experiment's store records the fleet. Launching first claims that
//! object by a conditional write (a new generation), so two `exp run --fleet` never start
//! two fleets for one experiment; every later change is conditional on its tag too. The
//! claim is written before EC2 is asked for anything, and each create carries a client
//! token of the experiment and the generation, so a create repeated after a lost answer
//! (or raced) makes no second fleet. Tearing down (completion, `exp cancel`, a spent
//! budget) deletes the recorded fleet and every fleet EC2 lists with the experiment's tag,
//! terminates any instance still carrying the tag (orphans), and deletes the launch
//! template; it is idempotent, so any worker or controller may do it, and it races a
//! launch safely: whichever of the two writes `fleet.json` last deletes what the launch
//! made. Every EC2 call is retried on throttling and lost answers ([`super::cloud::retry`]).

use super::cloud::{Cloud, CloudError, Compute, FleetApi, client_token, retry};
pub use super::cloud::{Instance, PricePoint, TAG, template_name};
pub use crate::format::experiment::{FLEET, FleetRecord, FleetState, InstanceLife, read_fleet};
use crate::format::experiment::{Fleet, Plan};
use crate::store::Objects;
use anyhow::Context;
use serde::Serialize;
use std::collections::BTreeMap;

/// The user data template (see `docker/user-data.sh`).
pub const USER_DATA: &str = include_str!("../../../docker/user-data.sh");

/// The user data that starts the worker image on an instance of experiment `at`.
pub fn user_data(fleet: &Fleet, at: &str, region: &str) -> String {
    let gpu = fleet.instance_types.iter().any(|t| t.starts_with('g') || t.starts_with('p'));
    USER_DATA
        .replace("@EXPERIMENT@", at)
        .replace("@REGION@", region)
        .replace("@IDLE_TIMEOUT@", &fleet.idle_timeout_s.to_string())
        .replace("@GPU_FLAG@", if gpu { "--gpus all" } else { "" })
        .replace("@IMAGE@", fleet.image.as_deref().unwrap_or("paddock-worker:cpu"))
}

fn write(objects: &dyn Objects, record: &FleetRecord, tag: Option<&str>) -> anyhow::Result<Option<String>> {
    let data = serde_json::to_vec_pretty(record)?;
    match tag {
        Some(t) => objects.put_if_match(FLEET, &data, t),
        None => objects.create_tagged(FLEET, &data),
    }
}

/// What [`launch`] found or did.
#[derive(Debug)]
pub enum Launched {
    /// This call started the fleet.
    Started(FleetRecord),
    /// A fleet was running (or being launched) already.
    Running(FleetRecord),
    /// The experiment was cancelled (or its fleet torn down) while this call launched: the
    /// fleet it had made is deleted with its instances, and nothing of it runs.
    Cancelled {
        /// The fleet this call made and then deleted, if EC2 had made it.
        fleet: Option<String>,
        /// Why the record says the fleet ended.
        reason: String,
    },
}

/// Starts experiment `plan`'s fleet (see the module docs), unless one runs already.
/// `at` is the experiment's location (`s3://…/<id>`), which the user data hands the
/// worker; the queues must exist (their URLs are in the store's `dispatch.json`).
///
/// The claim (`fleet.json` in state `launching`, a new generation) is written before
/// anything is made in EC2, and every create carries a client token of the experiment and
/// that generation: a create whose answer was lost is repeated and returns what the first
/// made. When the record changed meanwhile (`exp cancel` or a teardown wrote it), the
/// fleet this call made is deleted before it returns [`Launched::Cancelled`]; the teardown
/// also deletes every fleet it finds by the experiment's tag, so whichever side writes
/// last, nothing is left running.
pub fn launch(objects: &dyn Objects, cloud: &dyn Cloud, plan: &Plan, at: &str, by: &str) -> anyhow::Result<Launched> {
    let fleet = plan.fleet.as_ref().context("the experiment file has no [fleet] section")?;
    if fleet.instance_types.is_empty() {
        anyhow::bail!("key `fleet.instance_types`: list the instance types to request Spot capacity across");
    }
    let ec2 = cloud.compute(fleet.region.as_deref())?;
    let backoff = cloud.backoff();
    let existing = read_fleet(objects)?;
    let generation = match &existing {
        Some((r, _)) if r.state != FleetState::Deleted => return Ok(Launched::Running(r.clone())),
        Some((r, _)) => r.generation + 1,
        None => 1,
    };
    let now = crate::format::status::unix_now();
    let mut record = FleetRecord {
        generation,
        state: FleetState::Launching,
        api: FleetApi::of(&fleet.api),
        region: ec2.region().to_string(),
        fleet_id: None,
        launch_template: None,
        created: now,
        deleted: None,
        reason: None,
        by: by.to_string(),
        instances: existing.as_ref().map(|(r, _)| r.instances.clone()).unwrap_or_default(),
    };
    // Claim the launch: only the writer that wins starts a fleet.
    let Some(tag) = write(objects, &record, existing.as_ref().map(|(_, t)| t.as_str()))? else {
        let (r, _) = read_fleet(objects)?.context("fleet.json vanished")?;
        return Ok(Launched::Running(r));
    };
    let capacity = fleet.target_capacity.min(fleet.max_capacity).min(plan.most_at_once().max(1) as u32);
    // An earlier generation's launch that died half way may have left the template.
    let _ = retry(backoff, || ec2.delete_template_named(&template_name(&plan.id)));
    let started = retry(backoff, || {
        ec2.create_template(&plan.id, fleet, &user_data(fleet, at, ec2.region()), &client_token(&plan.id, generation, "template"))
    })
    .and_then(|template| {
        record.launch_template = Some(template.clone());
        retry(backoff, || ec2.request(&plan.id, fleet, &template, capacity, &client_token(&plan.id, generation, "fleet")))
    });
    match started {
        Ok(fleet_id) => {
            record.fleet_id = Some(fleet_id.clone());
            record.state = FleetState::Active;
            let mut tag = tag;
            loop {
                if write(objects, &record, Some(&tag))?.is_some() {
                    return Ok(Launched::Started(record));
                }
                // Someone wrote the record while this call launched. A ledger update (a
                // status look) keeps the launch; a teardown (a cancel, a spent budget,
                // completion) ends it, and what this call made goes.
                let theirs = read_fleet(objects)?;
                match theirs {
                    Some((r, t)) if r.state == FleetState::Launching && r.generation == generation => {
                        for (k, v) in r.instances {
                            record.instances.entry(k).or_insert(v);
                        }
                        tag = t;
                    }
                    theirs => {
                        let reason = theirs.and_then(|(r, _)| r.reason).unwrap_or_else(|| "cancelled".into());
                        delete_made(ec2.as_ref(), backoff, &plan.id, &record, Some(&fleet_id))?;
                        return Ok(Launched::Cancelled { fleet: Some(fleet_id), reason });
                    }
                }
            }
        }
        Err(e) => {
            if let Some(t) = &record.launch_template {
                let _ = retry(backoff, || ec2.delete_template(t));
            }
            record.state = FleetState::Deleted;
            record.deleted = Some(crate::format::status::unix_now());
            record.reason = Some(format!("launch failed: {e}"));
            // Recorded, so the next `exp run --fleet` may launch again.
            write(objects, &record, Some(&tag))?;
            Err(e.into())
        }
    }
}

/// Deletes a fleet a launch made after its record was taken from it, every instance
/// tagged with the experiment, and the experiment's launch template.
fn delete_made(
    ec2: &dyn Compute,
    backoff: super::cloud::Backoff,
    id: &str,
    made: &FleetRecord,
    fleet: Option<&str>,
) -> Result<(), CloudError> {
    if let Some(f) = fleet {
        retry(backoff, || ec2.delete_fleet(made.api, f))?;
    }
    let live: Vec<String> = retry(backoff, || ec2.instances(id))?.into_iter().filter(Instance::is_live).map(|i| i.id).collect();
    retry(backoff, || ec2.terminate(&live))?;
    delete_templates(ec2, backoff, id, made.launch_template.as_deref())
}

/// Deletes the experiment's launch template: by its id when a record has it, and by its
/// name (a launch in flight has made one its record does not name yet; some EC2-compatible
/// servers delete by id only, so the name is best effort).
fn delete_templates(ec2: &dyn Compute, backoff: super::cloud::Backoff, id: &str, template: Option<&str>) -> Result<(), CloudError> {
    if let Some(t) = template {
        retry(backoff, || ec2.delete_template(t))?;
    }
    let _ = retry(backoff, || ec2.delete_template_named(&template_name(id)));
    Ok(())
}

/// What a teardown did.
#[derive(Debug, Default, Serialize)]
pub struct Teardown {
    /// The fleets deleted (the record's, and any other carrying the experiment's tag).
    pub fleets: Vec<String>,
    /// Instances terminated because they still carried the tag (beside the fleets' own).
    pub orphans: Vec<String>,
    /// The record was `launching`: a launch was under way, and ends with nothing running.
    pub during_launch: bool,
}

/// Deletes experiment `id`'s fleet with its instances — the one `fleet.json` names and
/// every fleet and Spot Fleet request EC2 lists with the experiment's tag, whatever the
/// record says — terminates every instance still tagged with it, deletes its launch
/// template, and records `reason`. Safe to repeat, and to race a launch: when the record
/// changes under it (a launch wrote its fleet id), it looks again.
pub fn teardown(objects: &dyn Objects, cloud: &dyn Cloud, id: &str, reason: &str) -> anyhow::Result<Teardown> {
    let mut done = Teardown::default();
    let Some((mut record, mut tag)) = read_fleet(objects)? else { return Ok(done) };
    let generation = record.generation;
    let ec2 = cloud.compute(Some(&record.region))?;
    let backoff = cloud.backoff();
    loop {
        done.during_launch |= record.state == FleetState::Launching;
        let mut fleets: Vec<(FleetApi, String)> =
            retry(backoff, || ec2.tagged_fleets(id))?.into_iter().filter(|f| f.active).map(|f| (f.api, f.id)).collect();
        if let Some(f) = &record.fleet_id
            && record.state != FleetState::Deleted
            && !fleets.iter().any(|(_, x)| x == f)
        {
            fleets.push((record.api, f.clone()));
        }
        for (api, f) in &fleets {
            retry(backoff, || ec2.delete_fleet(*api, f))?;
            if !done.fleets.contains(f) {
                done.fleets.push(f.clone());
            }
        }
        // Any instance still carrying the tag: the fleets', if EC2 has not got to them yet,
        // and orphans (launched by hand, or by a fleet whose record was lost).
        let instances = retry(backoff, || ec2.instances(id))?;
        ledger(&mut record, &instances);
        let live: Vec<String> = instances.iter().filter(|i| i.is_live()).map(|i| i.id.clone()).collect();
        retry(backoff, || ec2.terminate(&live))?;
        for i in live {
            if !done.orphans.contains(&i) {
                done.orphans.push(i);
            }
        }
        delete_templates(ec2.as_ref(), backoff, id, record.launch_template.as_deref())?;
        let now = crate::format::status::unix_now();
        for life in record.instances.values_mut() {
            if life.ended.is_none() {
                life.ended = Some(now);
            }
        }
        if record.state != FleetState::Deleted {
            record.state = FleetState::Deleted;
            record.deleted = Some(now);
            record.reason = Some(reason.to_string());
        }
        if write(objects, &record, Some(&tag))?.is_some() {
            return Ok(done);
        }
        // Someone else wrote meanwhile (a launch recorded its fleet, a worker its ledger):
        // look again at what they wrote, keeping the instances this call saw end.
        let Some((r, t)) = read_fleet(objects)? else { return Ok(done) };
        if r.generation > generation {
            // A new launch after another teardown finished this one: not ours to end.
            return Ok(done);
        }
        let ended = std::mem::take(&mut record.instances);
        record = r;
        for (k, v) in ended {
            record.instances.entry(k).or_insert(v);
        }
        tag = t;
    }
}

/// Merges what EC2 says now into the record's instance ledger. An instance the record
/// knows that EC2 does not list (a describe that lags, or one EC2 forgot) keeps its life
/// as it was: only a state EC2 reports ends it.
fn ledger(record: &mut FleetRecord, instances: &[Instance]) {
    let now = crate::format::status::unix_now();
    for i in instances {
        let life = record.instances.entry(i.id.clone()).or_insert_with(|| InstanceLife {
            instance_type: i.instance_type.clone(),
            zone: i.zone.clone(),
            launched: i.launched,
            ended: None,
            seen: now,
        });
        match i.state.as_str() {
            "pending" | "running" | "stopping" => {
                life.seen = now;
                life.ended = None;
            }
            // Billing stops when an instance stops or terminates: it ended by the time it was
            // seen so, after it was last seen running.
            _ if life.ended.is_none() => life.ended = Some(life.seen.max(life.launched)),
            _ => {}
        }
    }
}

/// Looks at EC2 and records the fleet's instances in `fleet.json`. Returns the record and
/// the instances EC2 describes now.
pub fn observe(objects: &dyn Objects, cloud: &dyn Cloud, id: &str) -> anyhow::Result<Option<(FleetRecord, Vec<Instance>)>> {
    for _ in 0..5 {
        let Some((mut record, tag)) = read_fleet(objects)? else { return Ok(None) };
        let ec2 = cloud.compute(Some(&record.region))?;
        let instances = retry(cloud.backoff(), || ec2.instances(id))?;
        ledger(&mut record, &instances);
        if write(objects, &record, Some(&tag))?.is_some() {
            return Ok(Some((record, instances)));
        }
    }
    anyhow::bail!("{}/{FLEET} keeps changing under this writer", objects.location())
}

/// The spot price history for every instance in `record` over its life.
pub fn price_history(cloud: &dyn Cloud, record: &FleetRecord, now: f64) -> anyhow::Result<Vec<PricePoint>> {
    let ec2 = cloud.compute(Some(&record.region))?;
    let mut pools: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    for l in record.instances.values() {
        let e = pools.entry((l.instance_type.clone(), l.zone.clone())).or_insert((f64::MAX, 0.0));
        e.0 = e.0.min(l.launched);
        e.1 = e.1.max(l.ended.unwrap_or(now));
    }
    let mut out = Vec::new();
    for ((t, z), (from, to)) in pools {
        out.extend(retry(cloud.backoff(), || ec2.spot_prices(&t, &z, from, to))?);
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests;
