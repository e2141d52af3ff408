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
//! two fleets for one experiment; every later change is conditional on its tag too.
//! Tearing down (completion, `exp cancel`, a spent budget) deletes the fleet with its
//! instances, terminates any instance still carrying the tag (orphans), and deletes the
//! launch template; it is idempotent, so any worker or controller may do it.

pub use super::ec2::{Ec2, Instance, PricePoint, template_name};
use super::spec::{Fleet, Plan};
use crate::store::Objects;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The record of an experiment's fleet in its store.
pub const FLEET: &str = "fleet.json";

/// The tag on everything a fleet makes.
pub const TAG: &str = "paddock:experiment";

/// The user data template (see `docker/user-data.sh`).
pub const USER_DATA: &str = include_str!("../../../docker/user-data.sh");

/// Where a fleet is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FleetState {
    /// A controller is creating it.
    Launching,
    /// Requested; EC2 keeps its capacity.
    Active,
    /// Deleted with its instances.
    Deleted,
}

/// One instance's life, as seen by the controller and workers (EC2 forgets terminated
/// instances after about an hour; cost needs them for the whole experiment).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceLife {
    /// e.g. `c7i.xlarge`.
    pub instance_type: String,
    /// e.g. `us-east-1a`.
    pub zone: String,
    /// Unix seconds.
    pub launched: f64,
    /// Unix seconds; `None` while it runs.
    pub ended: Option<f64>,
    /// When it was last seen running, Unix seconds.
    pub seen: f64,
}

/// `fleet.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FleetRecord {
    /// Raised by each launch.
    pub generation: u64,
    /// Where it is.
    pub state: FleetState,
    /// `fleet` or `spot-fleet`.
    pub api: String,
    /// The region.
    pub region: String,
    /// The EC2 Fleet or Spot Fleet request id.
    pub fleet_id: Option<String>,
    /// The experiment's launch template id.
    pub launch_template: Option<String>,
    /// Unix seconds.
    pub created: f64,
    /// Unix seconds.
    pub deleted: Option<f64>,
    /// Why it was deleted: `complete`, `cancelled`, `budget`, or a launch error.
    pub reason: Option<String>,
    /// Who launched it.
    pub by: String,
    /// Every instance the fleet ran, by id.
    #[serde(default)]
    pub instances: BTreeMap<String, InstanceLife>,
}

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

/// Reads `fleet.json` with its tag.
pub fn read(objects: &dyn Objects) -> anyhow::Result<Option<(FleetRecord, String)>> {
    let Some((data, tag)) = objects.get_tagged(FLEET)? else { return Ok(None) };
    let record = serde_json::from_slice(&data).with_context(|| format!("{}/{FLEET} is not a fleet record", objects.location()))?;
    Ok(Some((record, tag)))
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
}

/// Starts experiment `plan`'s fleet (see the module docs), unless one runs already.
/// `at` is the experiment's location (`s3://…/<id>`), which the user data hands the
/// worker; the queues must exist (their URLs are in the store's `dispatch.json`).
pub fn launch(objects: &dyn Objects, plan: &Plan, at: &str, by: &str) -> anyhow::Result<Launched> {
    let fleet = plan.fleet.as_ref().context("the experiment file has no [fleet] section")?;
    if fleet.instance_types.is_empty() {
        anyhow::bail!("key `fleet.instance_types`: list the instance types to request Spot capacity across");
    }
    let ec2 = Ec2::connect(fleet.region.as_deref())?;
    let existing = read(objects)?;
    let generation = match &existing {
        Some((r, _)) if r.state != FleetState::Deleted => return Ok(Launched::Running(r.clone())),
        Some((r, _)) => r.generation + 1,
        None => 1,
    };
    let now = crate::rundir::status::unix_now();
    let mut record = FleetRecord {
        generation,
        state: FleetState::Launching,
        api: fleet.api.clone(),
        region: ec2.region.clone(),
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
        let (r, _) = read(objects)?.context("fleet.json vanished")?;
        return Ok(Launched::Running(r));
    };
    let capacity = fleet.target_capacity.min(fleet.max_capacity).min(plan.trials.len().max(1) as u32);
    // An earlier launch that died half way may have left the experiment's template.
    let _ = ec2.delete_template_named(&template_name(&plan.id));
    let started = ec2.create_template(&plan.id, fleet, &user_data(fleet, at, &ec2.region)).and_then(|template| {
        record.launch_template = Some(template.clone());
        ec2.request(&plan.id, fleet, &template, capacity)
    });
    match started {
        Ok(fleet_id) => {
            record.fleet_id = Some(fleet_id);
            record.state = FleetState::Active;
            write(objects, &record, Some(&tag))?.context("fleet.json changed while launching")?;
            Ok(Launched::Started(record))
        }
        Err(e) => {
            if let Some(t) = &record.launch_template {
                let _ = ec2.delete_template(t);
            }
            record.state = FleetState::Deleted;
            record.deleted = Some(crate::rundir::status::unix_now());
            record.reason = Some(format!("launch failed: {e:#}"));
            // Recorded, so the next `exp run --fleet` may launch again.
            write(objects, &record, Some(&tag))?;
            Err(e)
        }
    }
}

/// What a teardown did.
#[derive(Debug, Default, Serialize)]
pub struct Teardown {
    /// The fleet deleted, if one was active.
    pub fleet: Option<String>,
    /// Instances terminated because they still carried the tag (beside the fleet's own).
    pub orphans: Vec<String>,
}

/// Deletes experiment `id`'s fleet with its instances, terminates every instance still
/// tagged with it, deletes its launch template, and records `reason`. Safe to repeat.
pub fn teardown(objects: &dyn Objects, id: &str, reason: &str) -> anyhow::Result<Teardown> {
    let mut done = Teardown::default();
    let Some((mut record, mut tag)) = read(objects)? else { return Ok(done) };
    let ec2 = Ec2::connect(Some(&record.region))?;
    if let Some(f) = &record.fleet_id
        && record.state != FleetState::Deleted
    {
        ec2.delete_fleet(&record.api, f)?;
        done.fleet = Some(f.clone());
    }
    // Any instance still carrying the tag: the fleet's, if EC2 has not got to them yet,
    // and orphans (launched by hand, or by a fleet whose record was lost).
    let instances = ec2.instances(id)?;
    ledger(&mut record, &instances);
    let live: Vec<String> = instances
        .iter()
        .filter(|i| matches!(i.state.as_str(), "pending" | "running" | "stopping" | "stopped"))
        .map(|i| i.id.clone())
        .collect();
    ec2.terminate(&live)?;
    done.orphans = live;
    if let Some(t) = &record.launch_template {
        ec2.delete_template(t)?;
    }
    let now = crate::rundir::status::unix_now();
    for life in record.instances.values_mut() {
        if life.ended.is_none() {
            life.ended = Some(now);
        }
    }
    loop {
        if record.state != FleetState::Deleted {
            record.state = FleetState::Deleted;
            record.deleted = Some(now);
            record.reason = Some(reason.to_string());
        }
        match write(objects, &record, Some(&tag))? {
            Some(_) => return Ok(done),
            None => {
                // Someone else wrote meanwhile: keep their record, add ours.
                let Some((r, t)) = read(objects)? else { return Ok(done) };
                let ended = record.instances.clone();
                record = r;
                for (k, v) in ended {
                    record.instances.entry(k).or_insert(v);
                }
                tag = t;
            }
        }
    }
}

/// Merges what EC2 says now into the record's instance ledger.
fn ledger(record: &mut FleetRecord, instances: &[Instance]) {
    let now = crate::rundir::status::unix_now();
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
pub fn observe(objects: &dyn Objects, id: &str) -> anyhow::Result<Option<(FleetRecord, Vec<Instance>)>> {
    for _ in 0..5 {
        let Some((mut record, tag)) = read(objects)? else { return Ok(None) };
        let ec2 = Ec2::connect(Some(&record.region))?;
        let instances = ec2.instances(id)?;
        ledger(&mut record, &instances);
        if write(objects, &record, Some(&tag))?.is_some() {
            return Ok(Some((record, instances)));
        }
    }
    anyhow::bail!("{}/{FLEET} keeps changing under this writer", objects.location())
}

/// The spot price history for every instance in `record` over its life.
pub fn price_history(record: &FleetRecord, now: f64) -> anyhow::Result<Vec<PricePoint>> {
    let ec2 = Ec2::connect(Some(&record.region))?;
    let mut pools: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    for l in record.instances.values() {
        let e = pools.entry((l.instance_type.clone(), l.zone.clone())).or_insert((f64::MAX, 0.0));
        e.0 = e.0.min(l.launched);
        e.1 = e.1.max(l.ended.unwrap_or(now));
    }
    let mut out = Vec::new();
    for ((t, z), (from, to)) in pools {
        out.extend(ec2.spot_prices(&t, &z, from, to)?);
    }
    Ok(out)
}
