//! `paddock eval`.

use crate::log::RunLog;
use crate::run::{CheckpointTarget, evaluate_checkpoint};
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
    /// …; envs on the host's physics): a side view of every body; and, when the env has
    /// cameras, what each saw (`<camera>/frame-00000.png`, `-depth`, `-segmentation`).
    #[arg(long, value_name = "DIR")]
    frames: Option<PathBuf>,
    /// Evaluate with this env parameter set (over the run's, which include any a
    /// curriculum set by this checkpoint): `--param target-range=0.5`; repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
}

pub(crate) fn run(args: EvalArgs) -> anyhow::Result<()> {
    if args.episodes == 0 {
        anyhow::bail!("--episodes must be at least 1");
    }
    // An S3 target is fetched into a temporary directory: the run's files and the one
    // complete checkpoint asked for (or the newest).
    let mut target = CheckpointTarget::open(&args.target)?;
    for p in &args.params {
        match p.split_once('=') {
            Some((k, _)) if !k.trim().is_empty() && !k.contains('.') => {}
            _ => anyhow::bail!("--param `{p}`: expected NAME=VALUE, an env parameter's name (no `.`) and a TOML value"),
        }
        crate::config::apply_override(&mut target.config.env.params, p)?;
    }
    let config = &target.config;
    let runtime = crate::run::runtime_for(&config.runtime, RunLog::stderr())?;
    let seed = args.seed.unwrap_or(config.seed);
    let e = evaluate_checkpoint(config, &runtime, &target.checkpoint, args.episodes, seed, args.frames.as_deref())?;
    let checkpoint_shown = &target.shown;
    if args.json {
        let mut v = serde_json::to_value(&e)?;
        v["checkpoint"] = serde_json::json!(checkpoint_shown);
        v["env_params"] = serde_json::to_value(&config.env.params)?;
        println!("{v}");
    } else {
        println!("checkpoint {checkpoint_shown} (step {})", e.step);
        if target.env_params.is_some() || !args.params.is_empty() {
            println!("env params {}", crate::config::shown_params(&config.env.params));
        }
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
