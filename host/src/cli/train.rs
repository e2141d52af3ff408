//! `paddock train`.

use crate::config::RunConfig;
use crate::learner::train::{Progress, TrainSummary, train};
use crate::log::{Level, RunLog};
use crate::store::mirror::Mirror;
use crate::store::{Location, runs};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::{Path, PathBuf};

/// Arguments of `train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The run config (`.toml`): `[env]`, `[algorithm]`, `total_steps`, …
    #[arg(required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// Override a config key by its dotted path, e.g. `--set seed=3` or
    /// `--set algorithm.params.learning-rate=3e-4` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Continue a run from its newest complete checkpoint (with the run's own config, run
    /// from the directory it was started in). `s3://bucket/prefix/RUN` fetches the run and
    /// its newest complete checkpoint first, and goes on uploading to the same place.
    #[arg(long, value_name = "RUN_DIR|S3_URI", conflicts_with_all = ["config", "set"])]
    resume: Option<String>,
    /// Print one JSON object at the end (run dir, steps, wall time, SPS, eval returns).
    #[arg(long)]
    json: bool,
    /// Watch the run in the terminal monitor while it trains (`q` stops it with a final
    /// checkpoint; the summary prints after the monitor closes).
    #[arg(long)]
    tui: bool,
}

/// A run's name: env, algorithm, seed and start time.
fn run_name(config: &RunConfig) -> String {
    let stem = |p: &Path| {
        if crate::config::is_registry_ref(p) {
            let s = p.to_string_lossy();
            return s.rsplit('/').next().unwrap_or("plugin").split('@').next().unwrap_or("plugin").to_string();
        }
        p.file_stem().map_or_else(|| "plugin".into(), |s| s.to_string_lossy().into_owned())
    };
    let algo = config.algorithm.as_ref().map_or_else(|| "none".into(), |a| stem(&a.plugin));
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{}-{}-s{}-{}", stem(&config.env.plugin), algo, config.seed, secs)
}

/// The names a new run may take, in order: `base`, `base-1`, … (1000 of them).
fn run_names(base: &str) -> impl Iterator<Item = String> + '_ {
    (0..1000).map(move |k| if k == 0 { base.to_string() } else { format!("{base}-{k}") })
}

/// A new, unique run directory under a local `store`, holding `config_text`.
fn make_run_dir(store: &Path, base: &str, config_text: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(store).with_context(|| format!("failed to create run store {}", store.display()))?;
    for dir in run_names(base).map(|name| store.join(name)) {
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::write(dir.join("config.toml"), config_text).context("failed to write config.toml")?;
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("failed to create run dir {}", dir.display())),
        }
    }
    anyhow::bail!("failed to find a free run dir name under {}", store.display())
}

/// A new run in an S3 store: the name is claimed with a conditional put of its
/// `config.toml`, and the run trains in a fresh local working copy.
fn make_s3_run(store: &Location, s3: &crate::store::S3Settings, base: &str, config_text: &str) -> anyhow::Result<(Location, PathBuf)> {
    let objects = crate::store::open(store, s3)?;
    for name in run_names(base) {
        if objects.put_new(&format!("{name}/config.toml"), config_text.as_bytes())? {
            let location = store.join(&name);
            let (dir, _) = runs::fresh_working_copy(&location)?;
            std::fs::write(dir.join("config.toml"), config_text).context("failed to write config.toml")?;
            return Ok((location, dir));
        }
    }
    anyhow::bail!("failed to find a free run name under {store}")
}

/// Fetches an S3 run (its files and newest complete checkpoint) into a fresh working copy.
fn fetch_s3_run(location: &Location) -> anyhow::Result<PathBuf> {
    let (objects, name) = runs::open_run(location)?;
    let (dir, aside) = runs::fresh_working_copy(location)?;
    if let Some(a) = aside {
        eprintln!("note: the older local working copy of this run was moved to {}", a.display());
    }
    let pulled = runs::pull_run(objects.as_ref(), &name, &dir, &runs::Checkpoints::Latest, &mut |_, _| {})?;
    eprintln!(
        "fetched {} files ({:.1} MB) of {location}{} into {}",
        pulled.files,
        pulled.bytes as f64 / 1e6,
        pulled.checkpoints.last().map_or_else(
            || ", no complete checkpoint".to_string(),
            |c| format!(", checkpoint {}", c.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()))
        ),
        dir.display()
    );
    Ok(dir)
}

pub(crate) fn run(args: TrainArgs) -> anyhow::Result<()> {
    // `record` is the config as the run keeps it (registry references pinned); `remote` the
    // run's place in an S3 store, when it has one; `resolved` the config to run and the
    // registry's warnings, when a new run has resolved them already.
    let (record, run_dir, source, remote, resolved) = match (&args.resume, &args.config) {
        (Some(target), _) => {
            let location = Location::parse(target)?;
            let (dir, remote) = match &location {
                Location::S3 { .. } => (fetch_s3_run(&location)?, Some(location.clone())),
                Location::Local(p) => (p.clone(), None),
            };
            if !dir.join("config.toml").exists() {
                anyhow::bail!("{target} is not a run directory (it has no config.toml)");
            }
            (RunConfig::load_resolved(&dir.join("config.toml"))?, dir.clone(), target.clone(), remote, None)
        }
        (None, Some(path)) => {
            let config = RunConfig::load_with(path, &args.set)?;
            if config.algorithm.is_none() {
                anyhow::bail!("config file {}: `paddock train` needs an [algorithm] section", path.display());
            }
            if config.total_steps.is_none() {
                anyhow::bail!("config file {}: key `total_steps` is required to train", path.display());
            }
            let (to_run, record, warnings) = config.resolve_registry().with_context(|| format!("config file {}", path.display()))?;
            let text = toml::to_string_pretty(&record)?;
            let store = Location::parse(&config.store).with_context(|| format!("config file {}: key `store`", path.display()))?;
            let (run_dir, remote) = match &store {
                Location::Local(p) => (make_run_dir(p, &run_name(&config), &text)?, None),
                Location::S3 { .. } => {
                    let (loc, dir) = make_s3_run(&store, &config.s3, &run_name(&config), &text)?;
                    (dir, Some(loc))
                }
            };
            (record, run_dir, path.display().to_string(), remote, Some((to_run, warnings)))
        }
        (None, None) => anyhow::bail!("give a config file or --resume RUN_DIR"),
    };
    let (config, warnings) = match resolved {
        Some(r) => r,
        None => {
            let (config, _, warnings) = record.resolve_registry().with_context(|| format!("run {}", run_dir.display()))?;
            (config, warnings)
        }
    };
    let total = config.total_steps.unwrap_or(0);
    let log_file = std::fs::OpenOptions::new().create(true).append(true).open(run_dir.join("log.txt")).context("failed to open log.txt")?;
    let log = RunLog::new(Box::new(log_file), Level::Info);
    let verb = if args.resume.is_some() { "resuming" } else { "starting" };
    let shown = remote.as_ref().map_or_else(|| run_dir.display().to_string(), |r| format!("{r} (working copy {})", run_dir.display()));
    log.line(Level::Info, "paddock", &format!("{verb} run {shown} from {source}"));
    for w in &warnings {
        log.line(Level::Warn, "paddock", w);
        eprintln!("warning: {w}");
    }
    for (path, src) in &config.sources {
        log.line(Level::Info, "paddock", &format!("plugin {} from {src}", path.display()));
    }
    let runtime = super::runtime_for(&config.runtime, log.clone())?;
    let mirror = match &remote {
        Some(r) => Some(Mirror::start(&run_dir, crate::store::open(r, &config.s3)?, log.clone(), std::time::Duration::from_secs(1))?),
        None => None,
    };
    let upload = |result: anyhow::Result<TrainSummary>| -> anyhow::Result<TrainSummary> {
        let (Some(m), Some(r)) = (mirror, &remote) else { return result };
        if !args.json {
            eprintln!("uploading the rest of the run to {r} …");
        }
        let uploaded =
            m.finish(std::time::Duration::from_secs(300)).with_context(|| format!("its local copy is complete at {}", run_dir.display()));
        let mut summary = result?;
        uploaded?;
        summary.store_location = Some(r.to_string());
        Ok(summary)
    };

    if args.tui {
        use std::io::IsTerminal;
        if !std::io::stdout().is_terminal() {
            anyhow::bail!(
                "--tui needs a terminal (stdout is not one); leave out --tui, or watch the run from a terminal with `paddock watch {}`",
                run_dir.display()
            );
        }
        let (cfg, rt, dir, resume) = (config.clone(), runtime.clone(), run_dir.clone(), args.resume.is_some());
        let worker = std::thread::Builder::new()
            .name("paddock-train".into())
            .spawn(move || train(&cfg, &rt, &dir, resume, &mut |_| {}))
            .context("failed to start the training thread")?;
        let mut app = crate::monitor::App::new(vec![run_dir.clone()]);
        app.owns_run = true;
        let shown = crate::monitor::run(app, Some(&|| worker.is_finished()));
        if let Err(e) = &shown {
            // The monitor failed; the run goes on, stopped cleanly.
            let _ = crate::runstatus::request(&run_dir, crate::runstatus::Request::Stop);
            log.line(Level::Warn, "paddock", &format!("the monitor failed: {e:#}"));
        }
        let result = worker.join().map_err(|_| anyhow::anyhow!("the training thread panicked"))?;
        shown?;
        return finish(upload(result), &log, &run_dir, args.json);
    }
    let bar = if args.json { ProgressBar::hidden() } else { ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bar:30} {pos}/{len} steps · {per_sec} · {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let mut last_draw = 0u64;
    let result = train(&config, &runtime, &run_dir, args.resume.is_some(), &mut |p: Progress| {
        if p.steps - last_draw >= 1000 {
            last_draw = p.steps;
            bar.set_position(p.steps);
            let mut msg = String::new();
            if let Some(r) = p.recent_return {
                msg += &format!("return {r:.1}");
            }
            if let Some(e) = p.last_eval {
                msg += &format!(" · eval {e:.1}");
            }
            bar.set_message(msg);
        }
    });
    bar.finish_and_clear();
    finish(upload(result), &log, &run_dir, args.json)
}

/// Logs and prints a run's end.
fn finish(result: anyhow::Result<crate::learner::train::TrainSummary>, log: &RunLog, run_dir: &Path, json: bool) -> anyhow::Result<()> {
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            log.line(Level::Error, "paddock", &format!("{e:#}"));
            return Err(e.context(format!("training run {} failed (its log: {})", run_dir.display(), run_dir.join("log.txt").display())));
        }
    };
    log.line(
        Level::Info,
        "paddock",
        &format!(
            "done: {} steps in {:.2} s ({:.0} steps/s), last eval {:?}",
            summary.steps, summary.wall_s, summary.steps_per_s, summary.last_eval_return
        ),
    );
    if json {
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(());
    }
    if let Some(r) = &summary.store_location {
        println!("run       {r}");
        println!("local     {}", summary.run_dir.display());
    } else {
        println!("run dir   {}", summary.run_dir.display());
    }
    if let Some(c) = &summary.resumed_from {
        println!("resumed   from {}", c.display());
    }
    println!(
        "steps     {} in {:.2} s ({:.0} env steps/s, learner on {})",
        summary.steps, summary.wall_s, summary.steps_per_s, summary.device
    );
    if let Some(e) = summary.evals.last() {
        println!("eval      {:.2} ± {:.2} (95% CI ±{:.2}) over {} episodes at step {}", e.mean, e.std, e.ci95, e.returns.len(), e.step);
        if let Some(rate) = e.success_rate {
            println!("success   {:.1}%", 100.0 * rate);
        }
    }
    if let Some(b) = summary.best_eval_return {
        println!("best eval {b:.2}");
    }
    if summary.stopped {
        let at = summary.store_location.clone().unwrap_or_else(|| summary.run_dir.display().to_string());
        println!("stopped   on request; continue with `paddock train --resume {at}`");
    }
    if let Some(s) = summary.solved_at_step {
        println!("solved    at step {s} (train.stop_at_return)");
    }
    Ok(())
}
