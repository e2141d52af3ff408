//! The fleet's races over the fault-injecting cloud double: lost answers, throttling,
//! lagging describes, failed deletes, and a cancel at every point of a launch.

use super::*;
use crate::exp::cloud::double::{FakeCloud, Fault, Op};
use crate::format::experiment::{Plan, TrialPolicy};
use crate::store::LocalObjects;
use std::sync::Arc;

const ID: &str = "sweep-0123456789";

/// A four-trial plan with a `[fleet]` of `capacity` instances (also the queue tests').
pub(crate) fn plan(capacity: u32) -> Plan {
    let fleet: Fleet = toml::from_str(&format!(
        "store = \"s3://bucket/experiments\"\ninstance_types = [\"c7i.large\", \"m7i.large\"]\ntarget_capacity = {capacity}\nmax_capacity = {capacity}\n"
    ))
    .expect("fleet section");
    Plan {
        id: ID.into(),
        base: "total_steps = 1000\n".into(),
        trials: (0..4)
            .map(|i| crate::format::experiment::Trial { id: format!("t{i:04}"), overrides: vec![format!("seed={i}")], start_from: None })
            .collect(),
        early_stop: None,
        search: None,
        fleet: Some(fleet),
        trial: TrialPolicy::default(),
        files: Default::default(),
    }
}

fn store() -> (tempfile::TempDir, Arc<dyn Objects>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let objects: Arc<dyn Objects> = Arc::new(LocalObjects { root: dir.path().to_path_buf() });
    (dir, objects)
}

fn record(objects: &dyn Objects) -> FleetRecord {
    read_fleet(objects).expect("read").expect("a fleet record").0
}

#[test]
fn a_create_whose_response_is_lost_is_not_repeated() {
    let (_dir, objects) = store();
    let cloud = FakeCloud::new();
    cloud.fault(Op::CreateTemplate, Fault::LoseResponse);
    cloud.fault(Op::Request, Fault::LoseResponse);
    let launched = launch(objects.as_ref(), &cloud, &plan(2), "s3://bucket/experiments/x", "me").expect("launch");
    let Launched::Started(r) = launched else { panic!("not started: {launched:?}") };
    assert_eq!(cloud.count(Op::Request), 2, "the lost create was asked again");
    assert_eq!(cloud.active_fleets(ID), vec![r.fleet_id.clone().expect("fleet id")], "with the same token: one fleet");
    assert_eq!(cloud.state().templates.len(), 1, "one launch template");
    assert_eq!(cloud.live_instances(ID).len(), 2);
    assert_eq!(record(objects.as_ref()).state, FleetState::Active);
}

#[test]
fn throttling_backs_off_and_a_launch_that_never_gets_through_leaves_nothing() {
    let (_dir, objects) = store();
    let cloud = FakeCloud::new();
    for _ in 0..3 {
        cloud.fault(Op::Request, Fault::Throttle);
    }
    let Launched::Started(_) = launch(objects.as_ref(), &cloud, &plan(1), "s3://b/x", "me").expect("launch") else { panic!("not started") };
    assert_eq!(cloud.count(Op::Request), 4, "three throttled answers, then through");
    assert_eq!(cloud.active_fleets(ID).len(), 1);

    // Throttled for longer than the backoff tries: the launch fails, says why, and the
    // record lets the next launch try again; nothing runs.
    let (_dir, objects) = store();
    let cloud = FakeCloud::new();
    for _ in 0..10 {
        cloud.fault(Op::Request, Fault::Throttle);
    }
    let e = launch(objects.as_ref(), &cloud, &plan(1), "s3://b/x", "me").expect_err("throttled throughout");
    assert!(e.to_string().contains("throttled"), "{e}");
    assert_eq!(cloud.count(Op::Request), 7);
    let r = record(objects.as_ref());
    assert_eq!(r.state, FleetState::Deleted);
    assert!(r.reason.as_deref().is_some_and(|x| x.starts_with("launch failed")), "{:?}", r.reason);
    assert!(cloud.active_fleets(ID).is_empty() && cloud.live_instances(ID).is_empty());
    assert!(cloud.state().templates.is_empty(), "the template is deleted with the failed launch");
}

#[test]
fn an_instance_missing_from_a_describe_for_a_while_is_not_an_orphan() {
    let (_dir, objects) = store();
    let cloud = FakeCloud::new();
    launch(objects.as_ref(), &cloud, &plan(2), "s3://b/x", "me").expect("launch");
    observe(objects.as_ref(), &cloud, ID).expect("observe");
    let ids = cloud.live_instances(ID);
    let before = record(objects.as_ref()).instances[&ids[0]].clone();
    // EC2's describe lags: the first instance is missing from the next two looks.
    cloud.state().lagging_instances.insert(ids[0].clone(), 2);
    for _ in 0..2 {
        let (r, now) = observe(objects.as_ref(), &cloud, ID).expect("observe").expect("a record");
        assert!(now.iter().all(|i| i.id != ids[0]), "the double lags");
        assert_eq!(r.instances[&ids[0]].ended, None, "not ended because a describe missed it");
    }
    assert_eq!(cloud.live_instances(ID).len(), 2, "nothing was terminated");
    let (r, now) = observe(objects.as_ref(), &cloud, ID).expect("observe").expect("a record");
    assert!(now.iter().any(|i| i.id == ids[0]), "back in the describe");
    assert_eq!(r.instances[&ids[0]].launched, before.launched, "the same life");
    assert_eq!(r.instances[&ids[0]].ended, None);
    assert_eq!(r.state, FleetState::Active, "the fleet was never torn down");
}

#[test]
fn a_delete_that_fails_once_is_retried_and_the_teardown_ends_everything() {
    let (_dir, objects) = store();
    let cloud = FakeCloud::new();
    launch(objects.as_ref(), &cloud, &plan(3), "s3://b/x", "me").expect("launch");
    cloud.fault(Op::DeleteFleet, Fault::Drop);
    cloud.fault(Op::Terminate, Fault::Throttle);
    let done = teardown(objects.as_ref(), &cloud, ID, "cancelled").expect("teardown");
    assert_eq!(done.fleets.len(), 1);
    assert_eq!(cloud.count(Op::DeleteFleet), 2, "the dropped delete was asked again");
    assert!(cloud.active_fleets(ID).is_empty(), "no fleet left");
    assert!(cloud.live_instances(ID).is_empty(), "no instance left");
    let r = record(objects.as_ref());
    assert_eq!((r.state, r.reason.as_deref()), (FleetState::Deleted, Some("cancelled")));
    assert!(r.instances.values().all(|l| l.ended.is_some()), "every instance's life is closed for the bill");
    // Again: nothing to do, nothing fails.
    let again = teardown(objects.as_ref(), &cloud, ID, "cancelled").expect("teardown again");
    assert!(again.fleets.is_empty() && again.orphans.is_empty());
}

#[test]
fn a_teardown_finds_fleets_by_their_tag_whatever_the_record_says() {
    let (_dir, objects) = store();
    let cloud = FakeCloud::new();
    launch(objects.as_ref(), &cloud, &plan(1), "s3://b/x", "me").expect("launch");
    // A fleet the record does not name (its launch's record was lost), with an instance.
    let lost = cloud.plant_fleet(ID, 2);
    let done = teardown(objects.as_ref(), &cloud, ID, "cancelled").expect("teardown");
    assert!(done.fleets.contains(&lost), "{done:?}");
    assert!(cloud.active_fleets(ID).is_empty());
    assert!(cloud.live_instances(ID).is_empty());
    // And once the record says deleted, a fleet still tagged is found again.
    let late = cloud.plant_fleet(ID, 1);
    let done = teardown(objects.as_ref(), &cloud, ID, "budget").expect("teardown");
    assert_eq!(done.fleets, vec![late]);
    assert!(cloud.live_instances(ID).is_empty());
    assert_eq!(record(objects.as_ref()).reason.as_deref(), Some("cancelled"), "the first reason stays");
}

/// A cancel (a teardown, as `exp cancel` runs it) at `op`, before or after it, while a
/// launch runs; `lag`: EC2's describe does not list the new fleet for that many looks.
fn cancel_during_launch(op: Op, before: bool, lag: u32) -> (FakeCloud, Arc<dyn Objects>, tempfile::TempDir, Launched) {
    let (dir, objects) = store();
    let cloud = FakeCloud::new();
    let (c, o) = (cloud.clone(), objects.clone());
    let cancel = move || {
        if lag > 0 {
            let ids: Vec<String> = c.state().fleets.iter().map(|f| f.id.clone()).collect();
            for f in ids {
                c.state().lagging_fleets.insert(f, lag);
            }
        }
        let done = teardown(o.as_ref(), &c, ID, "cancelled").expect("cancel");
        assert!(done.during_launch, "the cancel saw the launch under way");
    };
    if before {
        cloud.before(op, cancel)
    } else {
        cloud.after(op, cancel)
    }
    let launched = launch(objects.as_ref(), &cloud, &plan(2), "s3://b/x", "me").expect("launch");
    (cloud, objects, dir, launched)
}

#[test]
fn a_cancel_at_any_point_of_a_launch_leaves_nothing_running_and_a_relaunch_makes_one_fleet() {
    for (op, before, lag) in [
        (Op::CreateTemplate, true, 0),
        (Op::Request, true, 0),
        // After the fleet exists: seen by its tag, or (lagging) not seen at all.
        (Op::Request, false, 0),
        (Op::Request, false, 5),
    ] {
        let (cloud, objects, _dir, launched) = cancel_during_launch(op, before, lag);
        let case = format!("cancel {} {op:?}, describe lag {lag}", if before { "before" } else { "after" });
        assert!(matches!(launched, Launched::Cancelled { .. }), "{case}: {launched:?}");
        assert!(cloud.active_fleets(ID).is_empty(), "{case}: a fleet is left: {:?}", cloud.active_fleets(ID));
        assert!(cloud.live_instances(ID).is_empty(), "{case}: instances are left: {:?}", cloud.live_instances(ID));
        assert!(cloud.state().templates.is_empty(), "{case}: the template is left");
        let r = record(objects.as_ref());
        assert_eq!((r.state, r.reason.as_deref()), (FleetState::Deleted, Some("cancelled")), "{case}");
        // A relaunch afterwards makes exactly one fleet (a new generation, a new token).
        let Launched::Started(again) = launch(objects.as_ref(), &cloud, &plan(2), "s3://b/x", "me").expect("relaunch") else {
            panic!("{case}: the relaunch did not start")
        };
        assert_eq!(again.generation, r.generation + 1, "{case}");
        assert_eq!(cloud.active_fleets(ID), vec![again.fleet_id.clone().expect("id")], "{case}");
        assert_eq!(cloud.live_instances(ID).len(), 2, "{case}");
    }
}

#[test]
fn a_teardown_that_loses_the_race_to_a_launch_deletes_the_fleet_the_launch_recorded() {
    // The cancel reads `launching` (no fleet id yet) and does not see the new fleet by its
    // tag (EC2's describe lags); the launch records its fleet before the cancel writes.
    // The cancel's write is refused; it looks again and deletes the recorded fleet.
    let (_dir, objects) = store();
    let cloud = FakeCloud::new();
    let (c, o) = (cloud.clone(), objects.clone());
    cloud.after(Op::Request, move || {
        let ids: Vec<String> = c.state().fleets.iter().map(|f| f.id.clone()).collect();
        for f in &ids {
            c.state().lagging_fleets.insert(f.clone(), 1);
        }
        let (c2, o2) = (c.clone(), o.clone());
        // Just before the cancel terminates what it found, the launch's record lands.
        c.before(Op::Terminate, move || {
            let (mut r, tag) = read_fleet(o2.as_ref()).expect("read").expect("record");
            r.fleet_id = c2.state().fleets.last().map(|f| f.id.clone());
            r.state = FleetState::Active;
            write(o2.as_ref(), &r, Some(&tag)).expect("write").expect("the launch's write lands first");
        });
        let done = teardown(o.as_ref(), &c, ID, "cancelled").expect("cancel");
        assert!(done.fleets.iter().any(|f| ids.contains(f)), "the second look deleted the recorded fleet: {done:?}");
    });
    let launched = launch(objects.as_ref(), &cloud, &plan(2), "s3://b/x", "me").expect("launch");
    assert!(matches!(launched, Launched::Cancelled { .. }), "{launched:?}");
    assert!(cloud.active_fleets(ID).is_empty());
    assert!(cloud.live_instances(ID).is_empty());
    assert_eq!(record(objects.as_ref()).state, FleetState::Deleted);
}
