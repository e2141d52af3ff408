//! `paddock eval`.

use crate::config::RunConfig;
use crate::learner::train::{evaluate_checkpoint, latest_checkpoint};
use crate::log::RunLog;
use crate::store::Location;
use crate::store::runs::{self, Checkpoints};
use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// A run directory (its newest checkpoint is used) or one checkpoint directory; or the
    /// same in an S3 store (`s3://bucket/prefix/RUN[/checkpoints/STEP]`), fetched first.
    target: String,
    /// Episodes to run (deterministic policy, the env's own reward).
    #[arg(long, default_value_t = 10)]
    episodes: usize,
    /// Seed of the evaluation envs (default: the run's seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Write a PNG picture of every step of the first episode into DIR (`frame-00000.png`,
    /// …; envs on the host's physics): a side view of every body.
    #[arg(long, value_name = "DIR")]
    frames: Option<PathBuf>,
}

pub(crate) fn run(args: EvalArgs) -> anyhow::Result<()> {
    if args.episodes == 0 {
        anyhow::bail!("--episodes must be at least 1");
    }
    // An S3 target is fetched into a temporary directory: the run's files and the one
    // complete checkpoint asked for (or the newest).
    let mut _fetched = None;
    let target = match Location::parse(&args.target)? {
        Location::Local(p) => p,
        loc @ Location::S3 { .. } => {
            let text = loc.to_string();
            let (run_loc, which) = match text.rsplit_once("/checkpoints/") {
                Some((run, step)) => (Location::parse(run)?, Checkpoints::One(step.trim_end_matches('/').to_string())),
                None => (loc.clone(), Checkpoints::Latest),
            };
            let (objects, name) = runs::open_run(&run_loc)?;
            let tmp = tempfile::Builder::new().prefix("paddock-eval-").tempdir().context("failed to make a temporary directory")?;
            let dir = tmp.path().join(&name);
            let pulled = runs::pull_run(objects.as_ref(), &name, &dir, &which, &mut |_, _| {})?;
            let c = pulled.checkpoints.last().with_context(|| format!("{run_loc} has no complete checkpoint"))?.clone();
            _fetched = Some(tmp);
            if matches!(which, Checkpoints::One(_)) { c } else { dir }
        }
    };
    let (run_dir, checkpoint) = if target.join("state.json").exists() {
        let run_dir = target.parent().and_then(|p| p.parent()).map(PathBuf::from).context("a checkpoint lies in <run>/checkpoints/")?;
        (run_dir, target.clone())
    } else {
        let c =
            latest_checkpoint(&target).with_context(|| format!("{} has no complete checkpoint (is it a run directory?)", args.target))?;
        (target.clone(), c)
    };
    let (config, _, _) = RunConfig::load_resolved(&run_dir.join("config.toml"))?.resolve_registry()?;
    let checkpoint_shown = if _fetched.is_some() {
        format!(
            "{}/checkpoints/{}",
            args.target.split("/checkpoints/").next().unwrap_or(&args.target).trim_end_matches('/'),
            checkpoint.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        )
    } else {
        checkpoint.display().to_string()
    };
    let runtime = super::runtime_for(&config.runtime, RunLog::stderr())?;
    let e = evaluate_checkpoint(&config, &runtime, &checkpoint, args.episodes, args.seed.unwrap_or(config.seed), args.frames.as_deref())?;
    if args.json {
        let mut v = serde_json::to_value(&e)?;
        v["checkpoint"] = serde_json::json!(checkpoint_shown);
        println!("{v}");
    } else {
        println!("checkpoint {checkpoint_shown} (step {})", e.step);
        println!(
            "return     {:.2} ± {:.2} (std) · 95% CI [{:.2}, {:.2}] over {} episodes",
            e.mean,
            e.std,
            e.mean - e.ci95,
            e.mean + e.ci95,
            e.returns.len()
        );
        if let Some(rate) = e.success_rate {
            println!("success    {:.1}%", 100.0 * rate);
        }
        for (name, mean) in &e.final_infos {
            println!("final      {name} = {mean:.4} (mean at the episodes' last step)");
        }
        if let Some(dir) = &args.frames {
            println!("frames     {} (first episode)", dir.display());
        }
    }
    Ok(())
}
