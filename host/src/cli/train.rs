//! `paddock train`.

use crate::format::status;
use crate::log::Level;
use crate::run::{Hooks, NoHooks, Progress, Run, TrainSummary};
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
    /// `--set algorithm.params.learning-rate=3e-4` (repeatable). With --resume: only
    /// `total_steps` and the algorithm parameters it lets change while it runs.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Continue a run from its newest complete checkpoint, with the run's own config and the
    /// plugin versions it recorded (the run carries a copy of each), from any directory. `s3://bucket/prefix/RUN` fetches the run and
    /// its newest complete checkpoint first, and goes on uploading to the same place.
    #[arg(long, value_name = "RUN_DIR|S3_URI", conflicts_with = "config")]
    resume: Option<String>,
    /// Name the run (its directory in the store; `-1`, `-2`, … when taken), as `--set name=…`.
    #[arg(long, value_name = "NAME", conflicts_with = "resume")]
    name: Option<String>,
    /// Label the run (repeatable), as `tags = [...]` in the config.
    #[arg(long = "tag", value_name = "TAG", conflicts_with = "resume")]
    tags: Vec<String>,
    /// With --resume: use another version of a plugin than the one the run recorded, e.g.
    /// `--plugin reward=shaped_v2.wasm` (repeatable; roles `env`, `reward`, `algorithm`).
    /// The run records the change in `plugins.lock` like a hot reload.
    #[arg(long = "plugin", value_name = "ROLE=FILE", requires = "resume")]
    plugin: Vec<String>,
    /// Print one JSON object at the end (run dir, steps, wall time, SPS, eval returns).
    #[arg(long)]
    json: bool,
    /// Watch the run in the terminal monitor while it trains (`q` stops it with a final
    /// checkpoint; the summary prints after the monitor closes).
    #[arg(long)]
    tui: bool,
}

pub(crate) fn run(args: TrainArgs) -> anyhow::Result<()> {
    crate::run::interrupt::install().context("failed to install the SIGINT/SIGTERM handlers")?;
    let run = match (&args.resume, &args.config) {
        (Some(target), _) => Run::resume(target, &replacements(&args.plugin)?, &args.set)?,
        (None, Some(path)) => {
            let mut sets = args.set.clone();
            if let Some(n) = &args.name {
                sets.push(format!("name={}", toml::Value::String(n.clone())));
            }
            if !args.tags.is_empty() {
                sets.push(format!("tags={}", toml::Value::Array(args.tags.iter().cloned().map(toml::Value::String).collect())));
            }
            Run::create(path, &sets)?
        }
        (None, None) => anyhow::bail!("give a config file or --resume RUN_DIR"),
    };
    for note in &run.notes {
        eprintln!("{note}");
    }
    let (run_dir, json) = (run.dir.clone(), args.json);
    if args.tui {
        use std::io::IsTerminal;
        if !std::io::stdout().is_terminal() {
            anyhow::bail!(
                "--tui needs a terminal (stdout is not one); leave out --tui, or watch the run from a terminal with `paddock watch {}`",
                run_dir.display()
            );
        }
        let log = run.log.clone();
        let worker = std::thread::Builder::new()
            .name("paddock-train".into())
            .spawn(move || run.train(&mut NoHooks))
            .context("failed to start the training thread")?;
        let mut app = crate::monitor::App::new(vec![run_dir.clone()]);
        app.owns_run = true;
        let shown = crate::monitor::run(app, Some(&|| worker.is_finished()));
        if let Err(e) = &shown {
            // The monitor failed; the run goes on, stopped cleanly.
            let _ = status::request(&run_dir, status::Request::Stop);
            log.line(Level::Warn, "paddock", &format!("the monitor failed: {e:#}"));
        }
        let result = worker.join().map_err(|_| anyhow::anyhow!("the training thread panicked"))?;
        shown?;
        return finish(result, &run_dir, json);
    }
    let total = run.config.total_steps.unwrap_or(0);
    let bar = if json { ProgressBar::hidden() } else { ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bar:30} {pos}/{len} steps · {msg} · ETA {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let result = run.train(&mut Bar { bar: &bar, last_draw: 0, quiet: json, start: None, told: false, news: None });
    bar.finish_and_clear();
    finish(result, &run_dir, json)?;
    // Stopped cleanly by a signal: end as the signal's conventional status (130, 143).
    if let Some(code) = crate::run::interrupt::exit_status() {
        std::process::exit(i32::from(code));
    }
    Ok(())
}

/// `--plugin ROLE=FILE` arguments as role → absolute file.
fn replacements(args: &[String]) -> anyhow::Result<std::collections::BTreeMap<String, PathBuf>> {
    let mut out = std::collections::BTreeMap::new();
    for a in args {
        let (role, file) = a.split_once('=').with_context(|| format!("--plugin `{a}`: expected ROLE=FILE, e.g. reward=shaped.wasm"))?;
        let role = role.trim();
        if !["env", "reward", "algorithm"].contains(&role) {
            anyhow::bail!("--plugin `{a}`: unknown role `{role}` (roles: env, reward, algorithm)");
        }
        let path = std::path::absolute(file.trim()).with_context(|| format!("--plugin `{a}`"))?;
        if !path.is_file() {
            anyhow::bail!("--plugin `{a}`: {} is not a file", path.display());
        }
        if out.insert(role.to_string(), path).is_some() {
            anyhow::bail!("--plugin: role `{role}` given twice");
        }
    }
    Ok(out)
}

/// The progress bar of a run in the terminal.
struct Bar<'a> {
    bar: &'a ProgressBar,
    last_draw: u64,
    quiet: bool,
    /// When and at which step the first progress came (a resumed run starts past 0).
    start: Option<(std::time::Instant, u64)>,
    /// Whether the user was told that a signal's stop is under way.
    told: bool,
    /// The news last shown.
    news: Option<String>,
}

impl Hooks for Bar<'_> {
    fn progress(&mut self, p: Progress) {
        if let (false, Some(by)) = (self.told, crate::run::interrupt::requested()) {
            self.told = true;
            if !self.quiet {
                self.bar.suspend(|| eprintln!("{by}: stopping at the next update with a checkpoint (again to stop at once) …"));
            }
        }
        if self.start.is_none() {
            // A resumed run starts past 0: the ETA counts from here.
            self.bar.set_position(p.steps);
            self.bar.reset_eta();
        }
        let (t0, s0) = *self.start.get_or_insert_with(|| (std::time::Instant::now(), p.steps));
        // News (a plugin compiling, just live) is shown as soon as it changes.
        let news_changed = p.news != self.news;
        if p.steps - self.last_draw >= 1000 || news_changed {
            self.news.clone_from(&p.news);
            self.last_draw = p.steps;
            self.bar.set_position(p.steps);
            // The run's real rate: wall clock with updates, evaluations and checkpoints.
            let rate = (p.steps - s0) as f64 / t0.elapsed().as_secs_f64().max(1e-9);
            let mut msg = format!("{} steps/s", thousands(rate));
            if let Some(r) = p.recent_return {
                msg += &format!(" · return {r:.1}");
            }
            if let Some(e) = p.last_eval {
                msg += &format!(" · eval {e:.1}");
            }
            if let Some(n) = &p.news {
                msg += &format!(" · {n}");
            }
            self.bar.set_message(msg);
        }
    }

    fn uploading(&mut self, to: &crate::store::Location) {
        if !self.quiet {
            self.bar.suspend(|| eprintln!("uploading the rest of the run to {to} …"));
        }
    }
}

/// `12345.6` as `12,346`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Prints a run's end.
fn finish(result: anyhow::Result<TrainSummary>, run_dir: &Path, json: bool) -> anyhow::Result<()> {
    let summary = result.with_context(|| {
        format!("training run {} failed (its log: {})", run_dir.display(), run_dir.join(crate::format::run_dir::LOG).display())
    })?;
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
        let by = summary.stopped_by.as_deref().unwrap_or("a stop request");
        println!("stopped   by {by} at step {}, with a checkpoint; continue with `paddock train --resume {at}`", summary.steps);
    }
    match summary.solved_at_step {
        Some(s) if s < summary.total_steps => {
            println!("solved    at step {s}: an evaluation reached train.stop_at_return / stop_at_success, and training stopped there")
        }
        Some(s) => println!("reached   train.stop_at_return / stop_at_success only at the final evaluation (step {s})"),
        None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn rates_print_with_thousands_separators() {
        assert_eq!(super::thousands(4648.2358), "4,648");
        assert_eq!(super::thousands(999.6), "1,000");
        assert_eq!(super::thousands(12.0), "12");
        assert_eq!(super::thousands(1_234_567.0), "1,234,567");
    }
}
