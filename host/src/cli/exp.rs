//! `paddock exp`: batch experiments.

use crate::exp::controller::{self, FleetEnd, FleetEvent};
use crate::exp::fleet::Launched;
use crate::exp::local::{self, LocalEvent};
use crate::exp::report::{self, FleetReport};
use crate::exp::submit::{counts, region_of, store_of, submit};
use crate::exp::worker::Left;
use crate::exp::{cloud, queue, spec, trial, worker};
use crate::store::Location;
use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `exp plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The experiment file (`experiments/*.toml`).
    file: PathBuf,
    /// Override a key of the experiment file by its dotted path, e.g. `--set seeds=5` or
    /// `--set fleet.max_price=0.05` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Print the plan as one JSON object (id, trials with their overrides, early stop, fleet).
    #[arg(long)]
    json: bool,
}

pub(crate) fn plan(args: PlanArgs) -> anyhow::Result<()> {
    let plan = spec::plan(&args.file, &args.set)?;
    if args.json {
        println!("{}", serde_json::to_string(&plan)?);
        return Ok(());
    }
    match &plan.search {
        Some(_) => println!("experiment {} · {} trials (made as it runs)", plan.id, trial_count(&plan)),
        None => println!("experiment {} · {} trials", plan.id, plan.trials.len()),
    }
    if let Some(es) = &plan.early_stop {
        println!("early stop {} ({}), first rung {} steps, eta {}", es.metric, es.mode, es.min_steps, es.eta);
    }
    if let Some(s) = &plan.search {
        print_search(s);
    }
    for t in &plan.trials {
        println!("{}  {}", t.id, t.overrides.join(" "));
    }
    Ok(())
}

/// How many trials a plan has, as the commands say it: `12`, or `a study of 30`.
fn trial_count(plan: &crate::format::experiment::Plan) -> String {
    plan.search.as_ref().map_or_else(|| plan.trials.len().to_string(), |s| format!("a study of {}", s.trials))
}

/// A study's settings, as `exp plan` shows them.
fn print_search(s: &crate::format::experiment::Search) {
    let p = &s.pruner;
    let pruner = match p.kind.as_str() {
        "median" => format!("median (after {} finished trials, from step {})", p.startup_trials, p.warmup_steps),
        "asha" | "hyperband" => format!("{} (smallest budget {} steps, eta {})", p.kind, p.min_steps, p.eta),
        other => other.to_string(),
    };
    println!(
        "study: {} trials, {} at once, sampler {} (seed {}), {} {}, pruner {pruner}",
        s.trials, s.parallelism, s.sampler, s.seed, s.mode, s.metric
    );
    println!("every trial: {}", s.fixed.join(" "));
    for q in &s.params {
        let dist = match &q.dist {
            crate::format::experiment::Dist::Float { low, high, log } => format!("{}[{low}, {high}]", if *log { "log " } else { "" }),
            crate::format::experiment::Dist::Int { low, high, log } => format!("{}whole [{low}, {high}]", if *log { "log " } else { "" }),
            crate::format::experiment::Dist::Choice(c) => format!("one of {}", serde_json::Value::Array(c.clone())),
        };
        let when = q.when.as_ref().map_or(String::new(), |w| format!("  when {} is {}", w.key, serde_json::Value::Array(w.is.clone())));
        println!("  {}  {dist}{when}", q.key);
    }
}

/// A study's progress and its best trial so far.
fn print_study(objects: &dyn crate::store::Objects, plan: &crate::format::experiment::Plan, states: &[(String, trial::TrialState)]) {
    let Some(search) = &plan.search else { return };
    let Ok(made) = crate::format::experiment::study_trials(objects) else { return };
    let by_id: std::collections::BTreeMap<String, trial::TrialState> = states.iter().cloned().collect();
    let pruned = states.iter().filter(|(_, s)| s.status == trial::Status::Pruned).count();
    println!(
        "study: {} of {} trials made, {pruned} pruned; sampler {}, {} {}",
        made.len(),
        search.trials,
        search.sampler,
        search.mode,
        search.metric
    );
    match crate::exp::search::best(search, &made, &by_id) {
        Some((id, v, params)) => println!("best so far: {id}  {} = {v:.4}  {}", search.metric, crate::exp::search::params_line(&params)),
        None => println!("best so far: none (no trial has finished with a value of {})", search.metric),
    }
}

/// Arguments of `exp run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The experiment file (`experiments/*.toml`).
    file: PathBuf,
    /// Override a key of the experiment file (repeatable), as for `exp plan`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Run the trials with local worker processes.
    #[arg(long, conflicts_with = "fleet", required_unless_present = "fleet")]
    local: bool,
    /// Run the trials on EC2 Spot capacity (the file's `[fleet]`): upload the plan and
    /// files, create the queues, start the fleet, and follow it until the work is done or
    /// the budget is spent (then the fleet is deleted with its instances).
    #[arg(long)]
    fleet: bool,
    /// With `--fleet`: start the fleet and return (workers tear it down when the trials
    /// are done; `exp status` and `exp cancel` reach it).
    #[arg(long, requires = "fleet")]
    detach: bool,
    /// With `--local`: hand trial ids to the workers over an SQS queue, as a fleet does.
    #[arg(long, requires = "local")]
    queue: bool,
    /// How many local workers (default: a study's `parallelism`, else 2).
    #[arg(short = 'j', long = "jobs")]
    jobs: Option<usize>,
    /// Where the experiment lives: a directory or `s3://bucket/prefix` (default: the file's
    /// `[fleet] store`, else `runs/experiments`).
    #[arg(long, value_name = "STORE")]
    store: Option<String>,
}

/// Arguments of `exp submit`.
#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// The experiment file (`experiments/*.toml`).
    file: PathBuf,
    /// Override a key of the experiment file (repeatable), as for `exp plan`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Where the experiment lives (default: the file's `[fleet] store`, else
    /// `runs/experiments`).
    #[arg(long, value_name = "STORE")]
    store: Option<String>,
    /// Also create the experiment's SQS queue (and dead-letter queue) and send its trial
    /// ids; workers take them with `paddock worker … --queue`.
    #[arg(long)]
    queue: bool,
}

/// Arguments of `exp cancel`.
#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// The experiment: `STORE/EXPERIMENT_ID` (`s3://…`), or its experiment file.
    experiment: String,
}

/// Arguments of `exp best`.
#[derive(Debug, clap::Args)]
pub struct BestArgs {
    /// The experiment: `STORE/EXPERIMENT_ID` (a directory or `s3://…`), or its experiment
    /// file.
    experiment: String,
    /// What scores a trial.
    #[arg(long, value_enum, default_value_t = crate::exp::best::By::Last)]
    by: crate::exp::best::By,
    /// Lower is better (default: higher, or the early-stop rule's mode with `--by metric`).
    #[arg(long)]
    min: bool,
    /// Where the winning setting's config goes (default: ./EXPERIMENT_ID-best.toml).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// One JSON object: every setting with its scores and statistics, and the file written.
    #[arg(long)]
    json: bool,
}

/// Arguments of `exp status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The experiment: `STORE/EXPERIMENT_ID` (a directory or `s3://…`), or its experiment
    /// file (its store from `[fleet] store`, else `runs/experiments`).
    experiment: String,
    /// One JSON object: counts by state, every trial's state, and the fleet's report.
    #[arg(long)]
    json: bool,
    /// Price the fleet with this spot price history (a JSON list of `{instance_type,
    /// zone, from, price}`) instead of EC2's: a fixture, or a what-if.
    #[arg(long, value_name = "FILE")]
    prices: Option<PathBuf>,
}

/// Arguments of `worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The experiment to work on: `STORE/EXPERIMENT_ID` (a directory or `s3://…`), or its
    /// experiment file.
    experiment: String,
    /// Leave after this many seconds with nothing to claim (default: when every trial is
    /// final).
    #[arg(long, value_name = "SECONDS")]
    idle_timeout: Option<u64>,
    /// Leave after this many trials.
    #[arg(long, value_name = "N")]
    max_trials: Option<usize>,
    /// Leave when the store has been unreachable this long while looking for work.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    store_lost_after: u64,
    /// Watch for spot interruption notices and rebalance recommendations on the instance
    /// metadata service every 5 s: on a notice, stop at the next update with a checkpoint
    /// and give the trial back; on a recommendation, take an early checkpoint and train on.
    /// Give the service's URL to use another than EC2's.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    spot_notices: Option<String>,
    /// Give the trial back this many seconds after a rebalance recommendation even if no
    /// interruption notice follows (default: only on the notice; a recommendation alone takes
    /// an early checkpoint and training goes on).
    #[arg(long, value_name = "SECONDS", requires = "spot_notices")]
    rebalance_deadline: Option<u64>,
    /// A command to run when the worker leaves because no work is left, it was idle, or the
    /// store was lost (e.g. `sudo shutdown -h now` on a fleet instance), so nothing bills
    /// after the work is done. Run with `sh -c`.
    #[arg(long, value_name = "CMD")]
    shutdown_cmd: Option<String>,
    /// Take trial ids from an SQS queue: the experiment's own (its `dispatch.json`), or
    /// the queue at URL. Without it, the worker looks through the trials' states.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    queue: Option<String>,
    /// Print one JSON object at the end.
    #[arg(long)]
    json: bool,
}

/// Says which settings an edited experiment file changed in the stored plan.
fn submitted(s: crate::exp::submit::Submitted) -> Location {
    for u in &s.updated {
        eprintln!("updated in the stored plan: {u}");
    }
    s.at
}

pub(crate) fn submit_cmd(args: SubmitArgs) -> anyhow::Result<()> {
    let plan = spec::plan(&args.file, &args.set)?;
    let at = submitted(submit(&plan, &store_of(args.store.as_deref(), &plan)?)?);
    eprintln!("experiment {} · {} trials · {} files uploaded; start workers with:", plan.id, trial_count(&plan), plan.files.len());
    if args.queue {
        let objects = crate::store::open(&at, &Default::default())?;
        let d = queue::dispatch(objects.as_ref(), cloud::aws(), &plan, region_of(&plan))?;
        eprintln!("queue {} (dead letters: {})", d.queue, d.dead_letter);
        println!("paddock worker {at} --queue");
    } else {
        println!("paddock worker {at}");
    }
    Ok(())
}

pub(crate) fn cancel(args: CancelArgs) -> anyhow::Result<()> {
    let at = crate::exp::submit::experiment_at(&args.experiment)?;
    let c = controller::cancel(&at, cloud::aws())?;
    if c.done.during_launch {
        eprintln!("experiment {}: a launch was under way; it is stopped and leaves nothing running", c.id);
    }
    if c.done.fleets.is_empty() {
        eprintln!("no fleet of experiment {} was active ({})", c.id, c.before.reason.as_deref().unwrap_or("none launched yet"));
    } else {
        eprintln!("deleted {} with their instances", c.done.fleets.join(", "));
    }
    if !c.done.orphans.is_empty() {
        eprintln!("terminated {} instance(s) still tagged with the experiment: {}", c.done.orphans.len(), c.done.orphans.join(" "));
    }
    eprintln!("trials keep their state and checkpoints: `paddock exp run FILE --fleet` goes on from them");
    Ok(())
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<()> {
    crate::run::interrupt::install().context("failed to install the SIGINT/SIGTERM handlers")?;
    let plan = spec::plan(&args.file, &args.set)?;
    if args.fleet {
        return run_fleet(&plan, args.store.as_deref(), args.detach);
    }
    let jobs = args.jobs.unwrap_or_else(|| plan.search.as_ref().map_or(2, |s| s.parallelism as usize));
    if jobs == 0 || jobs > 256 {
        anyhow::bail!("-j {jobs}: from 1 to 256 local workers");
    }
    if args.queue {
        cloud::require_fleet()?;
    }
    let at = submitted(submit(&plan, &store_of(args.store.as_deref(), &plan)?)?);
    let objects = crate::store::open(&at, &Default::default())?;
    if args.queue {
        let d = queue::dispatch(objects.as_ref(), cloud::aws(), &plan, region_of(&plan))?;
        eprintln!("trial ids go over SQS: {}", d.queue);
    }
    let before = crate::format::experiment::states(objects.as_ref(), &plan)?;
    let finished = before.iter().filter(|(_, s)| s.status.is_final()).count();
    eprintln!("experiment {} at {at}: {} trials ({finished} already final), {jobs} local workers", plan.id, trial_count(&plan));
    let opts = local::LocalOptions {
        jobs,
        queue: args.queue,
        exe: std::env::current_exe().context("failed to find the paddock binary")?,
        store_lost_after: std::time::Duration::from_secs(300),
    };
    let mut away_said = false;
    let end = local::run(&plan, &at, objects.as_ref(), &opts, &mut |e| match e {
        LocalEvent::States(states) => eprintln!("{}", counts_line(states)),
        LocalEvent::StoreAway { for_s, error } => {
            if !away_said {
                eprintln!("the store does not answer ({error}); waiting for it (workers keep training)");
                away_said = true;
            } else if for_s > 0.0 && (for_s as u64) % 30 < 2 {
                eprintln!("the store has been away for {for_s:.0} s");
            }
        }
        LocalEvent::DiskFull => {
            eprintln!(
                "a worker left: the disk holding {} is full (see its message); it is not replaced",
                crate::run::runs::work_dir().display()
            )
        }
        LocalEvent::StoreBack => {
            away_said = false;
            eprintln!("the store answers again");
        }
        LocalEvent::Stopping(why) => {
            eprintln!("{why}: the workers stop at their next update with a checkpoint and give their trials back…");
        }
    })?;
    print_table(&end.states, None);
    print_study(objects.as_ref(), &plan, &end.states);
    if let Some(e) = end.store_lost.as_deref().filter(|_| end.fatal) {
        anyhow::bail!(
            "{e}; the workers kept their working copies under {}. When the store is back, put the experiment back with `paddock exp restore {at}` and run the same command again",
            crate::run::runs::work_dir().join("workers").display()
        );
    }
    if let Some(e) = &end.store_lost {
        anyhow::bail!(
            "the store at {at} has been unreachable for {} s: {e}; the workers stopped. Run the same command again when it is back",
            opts.store_lost_after.as_secs()
        );
    }
    if let Some(code) = end.stopped {
        eprintln!("stopped; run the same command again to go on (finished trials are not run again)");
        std::process::exit(i32::from(code));
    }
    let open = end.states.iter().filter(|(_, s)| !s.status.is_final()).count();
    if open > 0 {
        anyhow::bail!("the workers left with {open} trials not final (see their messages above); run the same command again to go on");
    }
    Ok(())
}

fn run_fleet(plan: &crate::format::experiment::Plan, store: Option<&str>, detach: bool) -> anyhow::Result<()> {
    let f = plan.fleet.as_ref();
    let end = controller::run(plan, cloud::aws(), store, detach, &mut |e| match e {
        FleetEvent::Requeued(n) => eprintln!("{n} open trials sent to the queue again"),
        FleetEvent::Submitted { at, queue, updated } => {
            for u in updated {
                eprintln!("updated in the stored plan: {u}");
            }
            eprintln!("experiment {} at {at}: {} trials; queue {queue}", plan.id, trial_count(plan))
        }
        FleetEvent::Launch(Launched::Started(r)) => eprintln!(
            "started {} {} ({} × Spot across {}; launch template {})",
            r.api,
            r.fleet_id.as_deref().unwrap_or("?"),
            f.map_or(0, |f| f.target_capacity.min(f.max_capacity).min(plan.most_at_once() as u32)),
            f.map(|f| f.instance_types.join(", ")).unwrap_or_default(),
            r.launch_template.as_deref().unwrap_or("?")
        ),
        FleetEvent::Launch(Launched::Running(r)) => {
            eprintln!(
                "the experiment's {} {} is {:?} already; following it",
                r.api,
                r.fleet_id.as_deref().unwrap_or("(launching)"),
                r.state
            )
        }
        FleetEvent::Launch(Launched::Cancelled { .. }) => {}
        FleetEvent::States(states) => eprintln!("{}", counts_line(states)),
    })?;
    match end {
        FleetEnd::NothingToRun(states) => {
            eprintln!("experiment {}: every trial is final already; nothing to run", plan.id);
            print_table(&states, None);
        }
        FleetEnd::Detached(at) => {
            eprintln!("detached. Follow it with `paddock exp status {at}`; stop it with `paddock exp cancel {at}`");
        }
        FleetEnd::Interrupted(at, code) => {
            eprintln!("detached: the fleet keeps running and ends itself when the trials are done; stop it with `paddock exp cancel {at}`");
            std::process::exit(i32::from(code));
        }
        FleetEnd::Ended { why, states, report } => {
            eprintln!("fleet deleted ({why})");
            print_table(&states, report.as_ref().map(|f| &f.bill));
            if let Some(f) = &report {
                print_report(f);
            }
        }
        FleetEnd::DeletedElsewhere(reason) => eprintln!("the fleet was deleted ({reason}); trials keep their state"),
        FleetEnd::Cancelled { fleet, reason } => {
            anyhow::bail!(
                "the experiment's fleet was ended ({reason}) while this launch ran; {} — nothing of this launch is running",
                fleet.map_or_else(
                    || "no fleet had been made yet".to_string(),
                    |f| format!("the fleet it made, {f}, is deleted with its instances")
                )
            );
        }
    }
    Ok(())
}

fn counts_line(states: &[(String, trial::TrialState)]) -> String {
    let parts: Vec<String> = counts(states).iter().map(|(k, v)| format!("{v} {k}")).collect();
    format!("trials: {}", parts.join(", "))
}

fn print_table(states: &[(String, trial::TrialState)], bill: Option<&crate::exp::cost::Bill>) {
    let now = crate::format::status::unix_now();
    println!(
        "{:16}  {:8}  {:>5}  {:>9}  {:>17}  {:>9}  {:>6}  {:>6}  {:>7}  RESULT",
        "TRIAL", "STATE", "EPOCH", "STEP", "CHECKPOINT", "HEARTBEAT", "PREEMPT", "ERRORS", "DOLLARS"
    );
    for (id, s) in states {
        let beat = if s.status == trial::Status::Running { format!("{:.0} s ago", now - s.heartbeat) } else { "-".into() };
        let result = match (&s.result, &s.error) {
            (Some(r), _) => format!(
                "steps {} best {} metric {}",
                r.steps,
                r.best_eval.map_or_else(|| "-".into(), |b| format!("{b:.2}")),
                r.metric.map_or_else(|| "-".into(), |m| format!("{m:.3}"))
            ),
            (None, Some(e)) => e.lines().next().unwrap_or("").chars().take(80).collect(),
            _ => String::new(),
        };
        let dollars = bill.and_then(|b| b.trials.get(id)).map_or_else(|| "-".into(), |d| format!("{d:.3}"));
        let checkpoint = match s.checkpoint {
            Some(c) if s.checkpoint_unix > 0.0 => format!("{} ({:.0} s ago)", c.step, now - s.checkpoint_unix),
            Some(c) => c.step.to_string(),
            None => "-".into(),
        };
        println!(
            "{id:16}  {:8}  {:>5}  {:>9}  {checkpoint:>17}  {beat:>9}  {:>6}  {:>6}  {dollars:>7}  {result}",
            s.status.as_str(),
            s.epoch,
            // The step trained: never below the newest checkpoint (the heartbeat that
            // recorded a step may be older than the checkpoint uploaded after it).
            s.step.max(s.checkpoint.map_or(0, |c| c.step)),
            s.preemptions,
            s.errors
        );
    }
}

pub(crate) fn best(args: BestArgs) -> anyhow::Result<()> {
    use crate::exp::best::{By, rank};
    let at = crate::exp::submit::experiment_at(&args.experiment)?;
    let objects = crate::store::open(&at, &Default::default())?;
    let plan = crate::format::experiment::read_plan(objects.as_ref())?;
    let rule_mode = plan.early_stop.as_ref().map(|e| e.mode.as_str()).or(plan.search.as_ref().map(|s| s.mode.as_str()));
    if args.by == By::Metric && rule_mode.is_none() {
        anyhow::bail!("--by metric: experiment {} has no [early_stop] or [search] metric; use --by last or --by best", plan.id);
    }
    let metric_is_min = args.by == By::Metric && rule_mode == Some("min");
    let maximize = !(args.min || metric_is_min);
    let states = crate::format::experiment::states(objects.as_ref(), &plan)?;
    // PBT: the members at the end of training (the last generation), not at earlier ends.
    let states = match plan.search.as_ref().and_then(|s| s.pbt.as_ref()) {
        Some(p) => states
            .into_iter()
            .filter(|(id, _)| crate::exp::search::number_of(id).is_some_and(|n| n / p.population + 1 == p.generations()))
            .collect(),
        None => states,
    };
    let ranking = rank(&plan, &states, args.by, maximize);
    let Some(winner) = ranking.settings.first().filter(|s| s.stats.is_some()) else {
        anyhow::bail!(
            "no setting of experiment {} has every trial done yet ({}); wait for them (`paddock exp status {}`)",
            plan.id,
            counts_line(&states),
            args.experiment
        );
    };
    let out = args.output.clone().unwrap_or_else(|| PathBuf::from(format!("{}-best.toml", plan.id)));
    let text = crate::exp::best::config_of(&plan, &ranking, winner)?;
    crate::store::write_atomically(&out, text.as_bytes()).with_context(|| format!("failed to write {}", out.display()))?;
    if args.json {
        println!("{}", serde_json::json!({ "experiment": plan.id, "ranking": ranking, "config": out }));
        return Ok(());
    }
    let better = if maximize { "higher" } else { "lower" };
    println!(
        "experiment {}: {} settings, ranked by the interquartile mean of the {} over seeds ({better} is better)",
        plan.id,
        ranking.settings.len(),
        ranking.by
    );
    println!("{:<4}  {:<27}  {:<22}  {:<5}  setting", "rank", "IQM [95% interval]", "mean ± 95% t", "seeds");
    for (i, s) in ranking.settings.iter().enumerate() {
        let setting = if s.differs.is_empty() { "(the only setting)".to_string() } else { s.differs.join(" ") };
        match &s.stats {
            Some(st) => println!(
                "{:<4}  {:<27}  {:<22}  {:<5}  {setting}",
                i + 1,
                format!("{:.2} [{:.2}, {:.2}]", st.iqm, st.iqm_ci95.0, st.iqm_ci95.1),
                format!("{:.2} ± {:.2}", st.mean, st.ci95),
                st.n
            ),
            None => {
                let mut left: Vec<String> = s.not_done.iter().map(|(id, state)| format!("{id} {state}")).collect();
                left.dedup();
                println!(
                    "{:<4}  {:<27}  {:<22}  {:<5}  {setting}",
                    "-",
                    format!("{} of {} done", s.scores.len(), s.trials),
                    left.join(", "),
                    ""
                );
            }
        }
    }
    println!("best      {}", if winner.differs.is_empty() { "(the only setting)".to_string() } else { winner.differs.join(" ") });
    println!("config    {} (train it: paddock train {})", out.display(), out.display());
    Ok(())
}

pub(crate) fn status(args: StatusArgs) -> anyhow::Result<()> {
    let at = crate::exp::submit::experiment_at(&args.experiment)?;
    let objects = crate::store::open(&at, &Default::default())?;
    let plan = crate::format::experiment::read_plan(objects.as_ref())?;
    // The states through the index, remembering settled ones on this machine: a listing plus
    // a GET per running (or newly changed) trial.
    let cache = crate::run::runs::work_dir().join("status").join(format!("{}.json", crate::format::index::cache_name(&at)));
    let mut overview = crate::format::index::Overview::load(&cache);
    let states = overview.read(objects.as_ref(), &plan)?;
    overview.save(&cache);
    let prices = match &args.prices {
        Some(p) => Some(
            serde_json::from_slice(&std::fs::read(p).with_context(|| format!("failed to read {}", p.display()))?)
                .with_context(|| format!("{}: not a list of {{instance_type, zone, from, price}}", p.display()))?,
        ),
        None => None,
    };
    // Without the fleet's clients the trials still show; the fleet's numbers need EC2.
    let has_fleet = crate::format::experiment::read_fleet(objects.as_ref())?.is_some();
    let unbuilt = has_fleet && cloud::require_fleet().is_err();
    let fleet = if has_fleet && !unbuilt { report::fleet_report(objects.as_ref(), cloud::aws(), &plan, &states, prices)? } else { None };
    let queue = report::queue_depth(objects.as_ref(), cloud::aws())?;
    if args.json {
        let counts = counts(&states);
        let trials: Vec<serde_json::Value> = states
            .iter()
            .map(|(id, s)| {
                let dollars = fleet.as_ref().and_then(|f| f.bill.trials.get(id).copied());
                serde_json::json!({ "id": id, "state": s, "dollars": dollars })
            })
            .collect();
        println!("{}", serde_json::json!({ "experiment": plan.id, "counts": counts, "trials": trials, "fleet": fleet, "queue": queue }));
        return Ok(());
    }
    println!("experiment {} at {at}: {}", plan.id, counts_line(&states));
    print_table(&states, fleet.as_ref().map(|f| &f.bill));
    print_study(objects.as_ref(), &plan, &states);
    if let Some(f) = &fleet {
        print_report(f);
    }
    if unbuilt {
        eprintln!("fleet: not shown — {}", cloud::CloudError::NotBuilt);
    }
    if let Some(q) = &queue {
        print_queue(q);
    }
    Ok(())
}

/// `paddock exp restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The experiment: `STORE/EXPERIMENT_ID` (a directory or `s3://…`), as `paddock worker`
    /// printed it, or its experiment file.
    experiment: String,
    /// A worker's working directory, or a directory of them (repeatable). Default: where
    /// workers on this machine keep theirs.
    #[arg(long, value_name = "DIR")]
    from: Vec<std::path::PathBuf>,
    /// Print one JSON object at the end.
    #[arg(long)]
    json: bool,
}

pub(crate) fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let at = crate::exp::submit::experiment_at(&args.experiment)?;
    let from = if args.from.is_empty() { vec![crate::exp::restore::default_from()] } else { args.from.clone() };
    let done = crate::exp::restore::restore(&at, &from, &mut |line| eprintln!("{line}"))?;
    if args.json {
        println!("{}", serde_json::to_string(&done)?);
        return Ok(());
    }
    let count = |f: fn(&crate::exp::restore::TrialRestore) -> bool| done.trials.iter().filter(|(_, t)| f(t)).count();
    eprintln!(
        "restored {at} from {} worker directories: plan {}, {} files, {} study trials, {} runs; trials: {} restored, {} kept, {} re-created queued",
        done.from.len(),
        if done.plan { "put back" } else { "was there" },
        done.files,
        done.study_trials,
        done.runs,
        count(|t| matches!(t, crate::exp::restore::TrialRestore::Restored(_))),
        count(|t| matches!(t, crate::exp::restore::TrialRestore::Kept)),
        count(|t| matches!(t, crate::exp::restore::TrialRestore::Recreated)),
    );
    Ok(())
}

pub(crate) fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    crate::run::interrupt::install().context("failed to install the SIGINT/SIGTERM handlers")?;
    let experiment = crate::exp::submit::experiment_at(&args.experiment)?;
    let opts = worker::WorkerOptions {
        work_dir: crate::run::runs::work_dir().join("workers").join(worker::worker_name()),
        experiment,
        idle_timeout: args.idle_timeout.map(std::time::Duration::from_secs),
        max_trials: args.max_trials,
        store_lost_after: std::time::Duration::from_secs(args.store_lost_after),
        queue: None,
        instance: None,
    };
    let mut opts = opts;
    if let Some(url) = &args.queue {
        cloud::require_fleet()?;
        let objects = crate::store::open(&opts.experiment, &Default::default())?;
        opts.queue = Some(if url.is_empty() {
            queue::read_dispatch(objects.as_ref())?.with_context(|| {
                format!("{} has no queue (dispatch.json): submit it with `exp submit --queue`, or give --queue URL", opts.experiment)
            })?
        } else {
            let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
            queue::Dispatch { queue: url.clone(), dead_letter: String::new(), region }
        });
    }
    // On EC2 the instance id names where trials ran (for their cost); elsewhere the host.
    opts.instance = match &args.spot_notices {
        Some(url) => crate::exp::notice::instance_id((!url.is_empty()).then_some(url.as_str())),
        None => None,
    }
    .or_else(|| Some(crate::format::status::this_host()));
    let spot = match &args.spot_notices {
        Some(url) => Some(crate::exp::notice::SpotWatch::start(
            (!url.is_empty()).then_some(url.as_str()),
            std::time::Duration::from_secs(5),
            args.rebalance_deadline.map(std::time::Duration::from_secs),
        )?),
        None => None,
    };
    let summary = match worker::work(&opts) {
        Ok(s) => s,
        // The store refused to go on before the worker held anything.
        Err(e) => worker::lost_summary(&e, &opts.work_dir).ok_or(e)?,
    };
    if summary.left == Left::DiskFull {
        if args.json {
            println!("{}", serde_json::to_string(&summary)?);
        }
        eprintln!(
            "worker: {}; its trial was given back with the error counted (another worker can finish it)",
            summary.problem.as_deref().unwrap_or("disk full")
        );
        // What is in the store need not take this disk's space.
        if worker::copies_in_store(&opts, &summary) {
            let _ = std::fs::remove_dir_all(&opts.work_dir);
        }
        std::process::exit(worker::EXIT_DISK_FULL);
    }
    if let Some(problem) = &summary.problem {
        // Nothing is deleted: the working copies may be the only ones left.
        if args.json {
            println!("{}", serde_json::to_string(&summary)?);
        }
        eprintln!("worker: {problem}");
        if summary.left == Left::CredentialsRefused {
            eprintln!("worker: fix the credentials and start the worker again; its working copies stay in {}", opts.work_dir.display());
            std::process::exit(worker::EXIT_CREDENTIALS);
        }
        eprintln!(
            "worker: its working copies are kept in {}; when the store is back, put the experiment back with\n  paddock exp restore {} --from {}",
            opts.work_dir.display(),
            opts.experiment,
            opts.work_dir.display()
        );
        std::process::exit(worker::EXIT_STORE_LOST);
    }
    if summary.left == Left::Done {
        // The last worker out ends the fleet (if the experiment has one), so nothing bills.
        match controller::end_if_done(&opts.experiment, cloud::aws()) {
            Ok(Some(why)) => eprintln!("worker: the experiment's fleet is deleted ({why})"),
            Ok(None) => {}
            Err(e) => eprintln!("worker: could not end the experiment's fleet: {e:#}"),
        }
    }
    if let Some(r) = spot.as_ref().and_then(crate::exp::notice::SpotWatch::rebalance) {
        eprintln!("worker: rebalance recommendation ({r}); an early checkpoint was taken and training went on");
    }
    if let Some(n) = spot.as_ref().and_then(crate::exp::notice::SpotWatch::notice) {
        eprintln!("worker: spot interruption notice ({n}); the trial was checkpointed and given back");
    }
    if let Some(cmd) = &args.shutdown_cmd
        && matches!(summary.left, Left::Done | Left::Idle | Left::StoreUnreachable)
    {
        eprintln!("worker: {} — running the shutdown command: {cmd}", summary.left);
        let status = std::process::Command::new("sh").args(["-c", cmd]).status().context("failed to run the shutdown command")?;
        if !status.success() {
            anyhow::bail!("the shutdown command `{cmd}` failed ({status})");
        }
    }
    // The working copies are in the store now, unless the store lost them meanwhile.
    if worker::copies_in_store(&opts, &summary) {
        let _ = std::fs::remove_dir_all(&opts.work_dir);
    } else {
        eprintln!(
            "worker: the store no longer holds what this worker committed there; its working copies stay in {} (`paddock exp restore {} --from {}` puts them back)",
            opts.work_dir.display(),
            opts.experiment,
            opts.work_dir.display()
        );
    }
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        eprintln!("worker done ({}): {} trials committed, {} given back", summary.left, summary.committed.len(), summary.given_back.len());
    }
    if let Some(code) = crate::run::interrupt::exit_status() {
        std::process::exit(i32::from(code));
    }
    Ok(())
}

/// The fleet lines of `exp status`.
fn print_report(f: &FleetReport) {
    let r = &f.record;
    let when = |t: f64| format!("{:.0} min ago", (crate::format::status::unix_now() - t) / 60.0);
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
fn print_queue(q: &report::QueueDepth) {
    println!(
        "queue: {} waiting, {} in flight · dead letters: {} · {}",
        q.waiting,
        q.in_flight,
        q.dead_letters.map_or_else(|| "-".into(), |n| n.to_string()),
        q.url
    );
}
