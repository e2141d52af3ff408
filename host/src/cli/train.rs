//! `paddock train`.

use crate::config::RunConfig;
use crate::learner::train::{Progress, train};
use crate::log::{Level, RunLog};
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
    /// from the directory it was started in).
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["config", "set"])]
    resume: Option<PathBuf>,
    /// Print one JSON object at the end (run dir, steps, wall time, SPS, eval returns).
    #[arg(long)]
    json: bool,
    /// Watch the run in the terminal monitor while it trains (`q` stops it with a final
    /// checkpoint; the summary prints after the monitor closes).
    #[arg(long)]
    tui: bool,
}

/// A new, unique run directory under `store`.
fn make_run_dir(store: &Path, config: &RunConfig) -> anyhow::Result<PathBuf> {
    let stem = |p: &Path| p.file_stem().map_or_else(|| "plugin".into(), |s| s.to_string_lossy().into_owned());
    let algo = config.algorithm.as_ref().map_or_else(|| "none".into(), |a| stem(&a.plugin));
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let base = format!("{}-{}-s{}-{}", stem(&config.env.plugin), algo, config.seed, secs);
    std::fs::create_dir_all(store).with_context(|| format!("failed to create run store {}", store.display()))?;
    for k in 0..1000 {
        let dir = store.join(if k == 0 { base.clone() } else { format!("{base}-{k}") });
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("failed to create run dir {}", dir.display())),
        }
    }
    anyhow::bail!("failed to find a free run dir name under {}", store.display())
}

pub(crate) fn run(args: TrainArgs) -> anyhow::Result<()> {
    let (config, run_dir, source) = match (&args.resume, &args.config) {
        (Some(dir), _) => {
            if !dir.join("config.toml").exists() {
                anyhow::bail!("{} is not a run directory (it has no config.toml)", dir.display());
            }
            (RunConfig::load_resolved(&dir.join("config.toml"))?, dir.clone(), dir.join("config.toml"))
        }
        (None, Some(path)) => {
            let config = RunConfig::load_with(path, &args.set)?;
            if config.algorithm.is_none() {
                anyhow::bail!("config file {}: `paddock train` needs an [algorithm] section", path.display());
            }
            if config.total_steps.is_none() {
                anyhow::bail!("config file {}: key `total_steps` is required to train", path.display());
            }
            let run_dir = make_run_dir(Path::new(&config.store), &config)?;
            std::fs::write(run_dir.join("config.toml"), toml::to_string_pretty(&config)?).context("failed to write config.toml")?;
            (config, run_dir, path.clone())
        }
        (None, None) => anyhow::bail!("give a config file or --resume RUN_DIR"),
    };
    let total = config.total_steps.unwrap_or(0);
    let log_file = std::fs::OpenOptions::new().create(true).append(true).open(run_dir.join("log.txt")).context("failed to open log.txt")?;
    let log = RunLog::new(Box::new(log_file), Level::Info);
    let verb = if args.resume.is_some() { "resuming" } else { "starting" };
    log.line(Level::Info, "paddock", &format!("{verb} run {} from {}", run_dir.display(), source.display()));
    let runtime = super::runtime_for(&config.runtime, log.clone())?;

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
        return finish(result, &log, &run_dir, args.json);
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
    finish(result, &log, &run_dir, args.json)
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
    println!("run dir   {}", summary.run_dir.display());
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
        println!("stopped   on request; continue with `paddock train --resume {}`", summary.run_dir.display());
    }
    if let Some(s) = summary.solved_at_step {
        println!("solved    at step {s} (train.stop_at_return)");
    }
    Ok(())
}
