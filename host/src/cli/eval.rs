//! `paddock eval`.

use crate::config::RunConfig;
use crate::learner::train::{evaluate_checkpoint, latest_checkpoint};
use crate::log::RunLog;
use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// A run directory (its newest checkpoint is used) or one checkpoint directory.
    target: PathBuf,
    /// Episodes to run (deterministic policy, the env's own reward).
    #[arg(long, default_value_t = 10)]
    episodes: usize,
    /// Seed of the evaluation envs (default: the run's seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: EvalArgs) -> anyhow::Result<()> {
    if args.episodes == 0 {
        anyhow::bail!("--episodes must be at least 1");
    }
    let (run_dir, checkpoint) = if args.target.join("state.json").exists() {
        let run_dir =
            args.target.parent().and_then(|p| p.parent()).map(PathBuf::from).context("a checkpoint lies in <run>/checkpoints/")?;
        (run_dir, args.target.clone())
    } else {
        let c = latest_checkpoint(&args.target)
            .with_context(|| format!("{} has no complete checkpoint (is it a run directory?)", args.target.display()))?;
        (args.target.clone(), c)
    };
    let config = RunConfig::load_resolved(&run_dir.join("config.toml"))?;
    let runtime = super::runtime_for(&config.runtime, RunLog::stderr())?;
    let e = evaluate_checkpoint(&config, &runtime, &checkpoint, args.episodes, args.seed.unwrap_or(config.seed))?;
    if args.json {
        let mut v = serde_json::to_value(&e)?;
        v["checkpoint"] = serde_json::json!(checkpoint.display().to_string());
        println!("{v}");
    } else {
        println!("checkpoint {} (step {})", checkpoint.display(), e.step);
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
    }
    Ok(())
}
