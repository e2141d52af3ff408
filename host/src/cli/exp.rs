//! `paddock exp`: batch experiments.

use crate::exp::{spec, trial, worker};
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
    println!("experiment {} · {} trials", plan.id, plan.trials.len());
    if let Some(es) = &plan.early_stop {
        println!("early stop {} ({}), first rung {} steps, eta {}", es.metric, es.mode, es.min_steps, es.eta);
    }
    for t in &plan.trials {
        println!("{}  {}", t.id, t.overrides.join(" "));
    }
    Ok(())
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
    #[arg(long, required = true)]
    local: bool,
    /// How many local workers.
    #[arg(short = 'j', long = "jobs", default_value_t = 2)]
    jobs: usize,
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
}

/// Arguments of `exp status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The experiment: `STORE/EXPERIMENT_ID` (a directory or `s3://…`).
    experiment: String,
    /// One JSON object: counts by state and every trial's state.
    #[arg(long)]
    json: bool,
}

/// Arguments of `worker`.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The experiment to work on: `STORE/EXPERIMENT_ID` (a directory or `s3://…`).
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
    /// Watch for spot interruption notices (and rebalance recommendations) on the instance
    /// metadata service every 5 s; on one, stop at the next update with a checkpoint and give
    /// the trial back. Give the service's URL to use another than EC2's.
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    spot_notices: Option<String>,
    /// A command to run when the worker leaves because no work is left, it was idle, or the
    /// store was lost (e.g. `sudo shutdown -h now` on a fleet instance), so nothing bills
    /// after the work is done. Run with `sh -c`.
    #[arg(long, value_name = "CMD")]
    shutdown_cmd: Option<String>,
    /// Print one JSON object at the end.
    #[arg(long)]
    json: bool,
}

/// Submits a plan to its store: the plan object (once; the same id is the same plan) and
/// a queued state per trial. Returns the experiment's location.
fn submit(plan: &spec::Plan, store: &Location) -> anyhow::Result<Location> {
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
        trial::read(objects.as_ref(), &t.id)?;
    }
    Ok(at)
}

/// The store an experiment goes to: `--store`, else the file's `[fleet] store`, else
/// `runs/experiments`.
fn store_of(flag: Option<&str>, plan: &spec::Plan) -> anyhow::Result<Location> {
    let s = flag.map(str::to_string).or_else(|| plan.fleet.as_ref().map(|f| f.store.clone())).unwrap_or_else(|| "runs/experiments".into());
    Location::parse(&s)
}

pub(crate) fn submit_cmd(args: SubmitArgs) -> anyhow::Result<()> {
    let plan = spec::plan(&args.file, &args.set)?;
    let at = submit(&plan, &store_of(args.store.as_deref(), &plan)?)?;
    eprintln!("experiment {} · {} trials · {} files uploaded; start workers with:", plan.id, plan.trials.len(), plan.files.len());
    println!("paddock worker {at}");
    Ok(())
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<()> {
    crate::run::interrupt::install().context("failed to install the SIGINT/SIGTERM handlers")?;
    let plan = spec::plan(&args.file, &args.set)?;
    if args.jobs == 0 || args.jobs > 256 {
        anyhow::bail!("-j {}: from 1 to 256 local workers", args.jobs);
    }
    let at = submit(&plan, &store_of(args.store.as_deref(), &plan)?)?;
    let objects = crate::store::open(&at, &Default::default())?;
    let before = worker::states(objects.as_ref(), &plan)?;
    let finished = before.iter().filter(|(_, s)| s.status.is_final()).count();
    eprintln!("experiment {} at {at}: {} trials ({finished} already final), {} local workers", plan.id, plan.trials.len(), args.jobs);
    let exe = std::env::current_exe().context("failed to find the paddock binary")?;
    let spawn = || -> anyhow::Result<std::process::Child> {
        std::process::Command::new(&exe)
            .args(["worker", &at.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("failed to start a worker")
    };
    let mut workers: Vec<std::process::Child> = (0..args.jobs).map(|_| spawn()).collect::<anyhow::Result<_>>()?;
    let mut restarts = 0;
    let mut last_line = String::new();
    let mut last_look = std::time::Instant::now();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        // Workers are checked often; the trials' states (one GET each) every 2 s.
        let all_final = if last_look.elapsed() >= std::time::Duration::from_secs(2)
            || workers.iter_mut().any(|w| matches!(w.try_wait(), Ok(Some(_))))
        {
            last_look = std::time::Instant::now();
            let states = worker::states(objects.as_ref(), &plan)?;
            let line = counts_line(&states);
            if line != last_line {
                eprintln!("{line}");
                last_line = line;
            }
            states.iter().all(|(_, s)| s.status.is_final())
        } else {
            false
        };
        let mut alive = Vec::new();
        for mut w in workers.drain(..) {
            match w.try_wait()? {
                None => alive.push(w),
                // A worker that ended while trials remain is replaced (its trial's lease runs out
                // and another takes it over), unless a signal is stopping everything.
                Some(_) if !all_final && crate::run::interrupt::requested().is_none() && restarts < 4 * args.jobs => {
                    restarts += 1;
                    alive.push(spawn()?);
                }
                Some(_) => {}
            }
        }
        workers = alive;
        if workers.is_empty() {
            break;
        }
    }
    let states = worker::states(objects.as_ref(), &plan)?;
    print_table(&states);
    if let Some(code) = crate::run::interrupt::exit_status() {
        eprintln!("stopped; run the same command again to go on (finished trials are not run again)");
        std::process::exit(i32::from(code));
    }
    Ok(())
}

/// Trials by state.
fn counts(states: &[(String, trial::TrialState)]) -> std::collections::BTreeMap<&'static str, usize> {
    let mut by = std::collections::BTreeMap::new();
    for (_, s) in states {
        *by.entry(s.status.as_str()).or_default() += 1;
    }
    by
}

fn counts_line(states: &[(String, trial::TrialState)]) -> String {
    let parts: Vec<String> = counts(states).iter().map(|(k, v)| format!("{v} {k}")).collect();
    format!("trials: {}", parts.join(", "))
}

fn print_table(states: &[(String, trial::TrialState)]) {
    let now = crate::rundir::status::unix_now();
    println!(
        "{:16}  {:8}  {:>5}  {:>9}  {:>11}  {:>9}  {:>6}  {:>6}  RESULT",
        "TRIAL", "STATE", "EPOCH", "STEP", "CHECKPOINT", "HEARTBEAT", "PREEMPT", "ERRORS"
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
        println!(
            "{id:16}  {:8}  {:>5}  {:>9}  {:>11}  {beat:>9}  {:>6}  {:>6}  {result}",
            s.status.as_str(),
            s.epoch,
            s.step,
            s.checkpoint.map_or_else(|| "-".into(), |c| c.step.to_string()),
            s.preemptions,
            s.errors
        );
    }
}

pub(crate) fn status(args: StatusArgs) -> anyhow::Result<()> {
    let at = Location::parse(&args.experiment)?;
    let objects = crate::store::open(&at, &Default::default())?;
    let plan = worker::read_plan(objects.as_ref())?;
    let states = worker::states(objects.as_ref(), &plan)?;
    if args.json {
        let counts = counts(&states);
        let trials: Vec<serde_json::Value> = states.iter().map(|(id, s)| serde_json::json!({ "id": id, "state": s })).collect();
        println!("{}", serde_json::json!({ "experiment": plan.id, "counts": counts, "trials": trials }));
        return Ok(());
    }
    println!("experiment {} at {at}: {}", plan.id, counts_line(&states));
    print_table(&states);
    Ok(())
}

pub(crate) fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    crate::run::interrupt::install().context("failed to install the SIGINT/SIGTERM handlers")?;
    let experiment = Location::parse(&args.experiment)?;
    let opts = worker::WorkerOptions {
        work_dir: crate::rundir::runs::work_dir().join("workers").join(worker::worker_name()),
        experiment,
        idle_timeout: args.idle_timeout.map(std::time::Duration::from_secs),
        max_trials: args.max_trials,
        store_lost_after: std::time::Duration::from_secs(args.store_lost_after),
    };
    let spot = match &args.spot_notices {
        Some(url) => {
            Some(crate::exp::notice::SpotWatch::start((!url.is_empty()).then_some(url.as_str()), std::time::Duration::from_secs(5))?)
        }
        None => None,
    };
    let summary = worker::work(&opts)?;
    if let Some(n) = spot.as_ref().and_then(crate::exp::notice::SpotWatch::notice) {
        eprintln!("worker: spot interruption notice ({n}); the trial was checkpointed and given back");
    }
    if let Some(cmd) = &args.shutdown_cmd
        && matches!(summary.left.as_str(), "done" | "idle" | "store unreachable")
    {
        eprintln!("worker: {} — running the shutdown command: {cmd}", summary.left);
        let status = std::process::Command::new("sh").args(["-c", cmd]).status().context("failed to run the shutdown command")?;
        if !status.success() {
            anyhow::bail!("the shutdown command `{cmd}` failed ({status})");
        }
    }
    // The working copies are in the store now.
    let _ = std::fs::remove_dir_all(&opts.work_dir);
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
