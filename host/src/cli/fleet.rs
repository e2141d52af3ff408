//! `paddock exp run --fleet`: the controller that starts an experiment's Spot fleet and
//! follows it; the fleet lines of `exp status`.

use super::exp::{counts_line, print_table, store_of, submit};
use crate::exp::report::{self, FleetReport};
use crate::exp::{fleet, queue, spec, worker};
use crate::store::Location;
use std::time::{Duration, Instant};

/// How often the controller looks at the trials, and at EC2 (instances, prices, budget).
const LOOK_EVERY: Duration = Duration::from_secs(10);
const RECONCILE_EVERY: Duration = Duration::from_secs(60);

pub(super) fn run(plan: &spec::Plan, file: &std::path::Path, store: Option<&str>, detach: bool) -> anyhow::Result<()> {
    let f = plan.fleet.as_ref().ok_or_else(|| {
        anyhow::anyhow!("experiment file {}: no [fleet] section: add one (docs/experiments.md), or run with --local", file.display())
    })?;
    let store = store_of(store, plan)?;
    if !matches!(store, Location::S3 { .. }) {
        anyhow::bail!("a fleet's experiment lives in S3 (key `fleet.store` or --store s3://…), not in {store}");
    }
    let at = submit(plan, &store)?;
    let objects = crate::store::open(&at, &Default::default())?;
    let states = worker::states(objects.as_ref(), plan)?;
    if worker::all_final(&states) {
        eprintln!("experiment {} at {at}: every trial is final already; nothing to run", plan.id);
        print_table(&states, None);
        return Ok(());
    }
    let d = queue::dispatch(objects.as_ref(), plan, f.region.as_deref())?;
    if fleet::read(objects.as_ref())?.is_some_and(|(r, _)| r.state == fleet::FleetState::Deleted) {
        // A fleet again after a cancel (or a spent budget): every open trial is sent afresh.
        let n = queue::requeue(objects.as_ref(), plan)?;
        eprintln!("{n} open trials sent to the queue again");
    }
    eprintln!("experiment {} at {at}: {} trials; queue {}", plan.id, plan.trials.len(), d.queue);
    match fleet::launch(objects.as_ref(), plan, &at.to_string(), &worker::worker_name())? {
        fleet::Launched::Started(r) => eprintln!(
            "started {} {} ({} × Spot across {}; launch template {})",
            r.api,
            r.fleet_id.as_deref().unwrap_or("?"),
            f.target_capacity.min(f.max_capacity).min(plan.trials.len() as u32),
            f.instance_types.join(", "),
            r.launch_template.as_deref().unwrap_or("?")
        ),
        fleet::Launched::Running(r) => {
            eprintln!(
                "the experiment's {} {} is {:?} already; following it",
                r.api,
                r.fleet_id.as_deref().unwrap_or("(launching)"),
                r.state
            )
        }
    }
    if detach {
        eprintln!("detached. Follow it with `paddock exp status {at}`; stop it with `paddock exp cancel {at}`");
        return Ok(());
    }
    let mut last_line = String::new();
    let mut last_reconcile: Option<Instant> = None;
    loop {
        if crate::run::interrupt::requested().is_some() {
            eprintln!("detached: the fleet keeps running and ends itself when the trials are done; stop it with `paddock exp cancel {at}`");
            std::process::exit(i32::from(crate::run::interrupt::exit_status().unwrap_or(130)));
        }
        let states = worker::states(objects.as_ref(), plan)?;
        let line = counts_line(&states);
        if line != last_line {
            eprintln!("{line}");
            last_line = line;
        }
        if last_reconcile.is_none_or(|t| t.elapsed() >= RECONCILE_EVERY) || worker::all_final(&states) {
            last_reconcile = Some(Instant::now());
            if let Some(why) = report::reconcile(objects.as_ref(), plan, &states)? {
                eprintln!("fleet deleted ({why})");
                let states = worker::states(objects.as_ref(), plan)?;
                let fleet = report::fleet_report(objects.as_ref(), plan, &states, None)?;
                print_table(&states, fleet.as_ref().map(|f| &f.bill));
                if let Some(f) = &fleet {
                    print_report(f);
                }
                return Ok(());
            }
            if let Some((r, _)) = fleet::read(objects.as_ref())?
                && r.state == fleet::FleetState::Deleted
            {
                eprintln!("the fleet was deleted ({}); trials keep their state", r.reason.as_deref().unwrap_or("?"));
                return Ok(());
            }
        }
        let until = Instant::now() + LOOK_EVERY;
        while Instant::now() < until && crate::run::interrupt::requested().is_none() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The fleet lines of `exp status`.
pub(super) fn print_report(f: &FleetReport) {
    let r = &f.record;
    let when = |t: f64| format!("{:.0} min ago", (crate::rundir::status::unix_now() - t) / 60.0);
    println!(
        "fleet: {} {} · {:?}{} · generation {} · started {}",
        r.api,
        r.fleet_id.as_deref().unwrap_or("-"),
        r.state,
        r.reason.as_ref().map(|x| format!(" ({x})")).unwrap_or_default(),
        r.generation,
        when(r.created)
    );
    let running: Vec<String> = f.bill.running.iter().map(|(k, n)| format!("{n} × {k}")).collect();
    println!(
        "instances: {} running ({}), {} in all",
        f.bill.running.values().sum::<usize>(),
        if running.is_empty() { "none".into() } else { running.join(", ") },
        r.instances.len()
    );
    println!(
        "cost: ${:.3} so far (trials ${:.3}, overhead ${:.3}) · ${:.3}/h now · projected {}",
        f.bill.total,
        f.bill.trials.values().fold(0.0, |a, b| a + b),
        f.bill.overhead,
        f.bill.per_hour,
        f.projected.map_or_else(|| "- (under 5% done)".into(), |p| format!("${p:.2}"))
    );
    println!(
        "waste: {} steps trained again after preemptions (${:.3}) · orphans: {}",
        f.waste_steps,
        f.waste_dollars,
        if f.orphans.is_empty() { "none".into() } else { f.orphans.join(" ") }
    );
}

/// The queue line of `exp status`.
pub(super) fn print_queue(q: &report::QueueDepth) {
    println!(
        "queue: {} waiting, {} in flight · dead letters: {} · {}",
        q.waiting,
        q.in_flight,
        q.dead_letters.map_or_else(|| "-".into(), |n| n.to_string()),
        q.url
    );
}

/// After a worker found every trial final: ends the experiment's fleet, if it has one
/// (best effort: a controller or `exp cancel` does it otherwise).
pub(super) fn end_if_done(at: &Location) {
    let ended = (|| -> anyhow::Result<Option<String>> {
        let objects = crate::store::open(at, &Default::default())?;
        if fleet::read(objects.as_ref())?.is_none() {
            return Ok(None);
        }
        let plan = worker::read_plan(objects.as_ref())?;
        let states = worker::states(objects.as_ref(), &plan)?;
        report::reconcile(objects.as_ref(), &plan, &states)
    })();
    match ended {
        Ok(Some(why)) => eprintln!("worker: the experiment's fleet is deleted ({why})"),
        Ok(None) => {}
        Err(e) => eprintln!("worker: could not end the experiment's fleet: {e:#}"),
    }
}
