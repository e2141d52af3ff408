//! `paddock env run`: step an env plugin (vectorized) with random or given actions.

use crate::config::{RunConfig, to_params};
use crate::envset::EnvSet;
use crate::log::RunLog;
use crate::runtime::{RewardInstance, World};
use crate::seed::{Stream, derive};
use crate::spaces::sample;
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::SeedableRng;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Arguments of `env run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// An env component (`.wasm`) or a run config (`.toml`) naming one (and optionally a
    /// reward plugin).
    target: PathBuf,
    /// Vector steps to take (each steps every env once). Defaults to the number of lines
    /// of `--actions`, else 1000.
    #[arg(long)]
    steps: Option<u64>,
    /// Run seed (overrides the config's `seed`).
    #[arg(long)]
    seed: Option<u64>,
    /// Number of parallel envs (overrides `env.num_envs`).
    #[arg(long)]
    num_envs: Option<usize>,
    /// Worker shards (overrides `env.workers`; 0 = automatic).
    #[arg(long)]
    workers: Option<usize>,
    /// Take actions from this file instead of sampling them: one JSON array per line with
    /// num_envs × action-length numbers (a bare number when that is 1).
    #[arg(long)]
    actions: Option<PathBuf>,
    /// Write one JSON line per env step: t, env, action, obs (the final observation when
    /// the episode ended), reward, terminated, truncated, infos (when the env has info
    /// features), and reset_obs after an end.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Write env 0's camera images after each step as PNG files under this folder:
    /// `<camera>/<step>.png` (and `-depth`, `-segmentation` when the camera renders them);
    /// the last view of an episode where one ended. Step 0 is the first observation.
    #[arg(long, value_name = "DIR")]
    frames: Option<PathBuf>,
    /// Print one JSON summary object instead of text.
    #[arg(long)]
    json: bool,
}

fn read_actions(path: &Path, per_step: usize) -> anyhow::Result<Vec<Vec<f32>>> {
    let file = std::fs::File::open(path).with_context(|| format!("failed to open actions file {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("failed to read actions file {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let here = || format!("actions file {} line {}", path.display(), i + 1);
        let v: serde_json::Value = serde_json::from_str(&line).with_context(here)?;
        let values: Vec<f32> = match v {
            serde_json::Value::Number(n) => vec![n.as_f64().unwrap_or(f64::NAN) as f32],
            serde_json::Value::Array(items) => items
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32).ok_or_else(|| anyhow::anyhow!("{}: {x} is not a number", here())))
                .collect::<anyhow::Result<_>>()?,
            other => bail!("{}: expected a number or an array of numbers, got {other}", here()),
        };
        if values.len() != per_step {
            bail!("{}: {} action values, expected {per_step} (num_envs × action length)", here(), values.len());
        }
        out.push(values);
    }
    Ok(out)
}

#[derive(serde::Serialize)]
struct Record<'a> {
    t: u64,
    env: usize,
    action: &'a [f32],
    obs: &'a [f32],
    reward: f64,
    terminated: bool,
    truncated: bool,
    /// The step's info values, in the spec's `info-features` order (absent when it has none).
    #[serde(skip_serializing_if = "<[f64]>::is_empty")]
    infos: &'a [f64],
    #[serde(skip_serializing_if = "Option::is_none")]
    reset_obs: Option<&'a [f32]>,
}

#[derive(serde::Serialize)]
struct Summary {
    env: String,
    plugin: String,
    sha256: String,
    reward_plugin: Option<String>,
    seed: u64,
    num_envs: usize,
    shards: usize,
    steps: u64,
    env_steps: u64,
    episodes: usize,
    mean_return: Option<f64>,
    std_return: Option<f64>,
    min_return: Option<f64>,
    max_return: Option<f64>,
    mean_length: Option<f64>,
    /// Mean of each info feature at the ended episodes' last step (how far a walker got, …).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    final_infos: std::collections::BTreeMap<String, f64>,
    wall_s: f64,
    env_steps_per_s: f64,
}

/// The config `env run` steps: a run config (registry references resolved) or a bare env
/// plugin, with the command line's seed, env count and workers.
fn config_of(args: &RunArgs) -> anyhow::Result<RunConfig> {
    let mut config = if is_config(&args.target) {
        let loaded = RunConfig::load(&args.target)?;
        crate::registry::resolve_config(&loaded).with_context(|| format!("config file {}", args.target.display()))?.run
    } else {
        RunConfig::for_env(args.target.clone())
    };
    if let Some(s) = args.seed {
        config.seed = s;
    }
    if let Some(n) = args.num_envs {
        config.env.num_envs = n;
    }
    if let Some(w) = args.workers {
        config.env.workers = w;
    }
    config.check().map_err(|m| anyhow::anyhow!("invalid options: {m}"))?;
    Ok(config)
}

/// Episodes counted while stepping.
#[derive(Default)]
struct Tally {
    /// Each env's return and length so far in its episode.
    running: Vec<(f64, u64)>,
    /// Finished episodes' returns and lengths.
    finished: Vec<(f64, u64)>,
    /// Sums of each info feature at the finished episodes' last steps.
    info_sums: Vec<f64>,
}

/// Steps `envs` `steps` times with the given actions or seeded random ones, recording each
/// env step when asked.
fn step_envs(
    envs: &mut EnvSet,
    seed: u64,
    given: Option<&[Vec<f32>]>,
    steps: u64,
    mut record: Option<&mut BufWriter<std::fs::File>>,
    frames: Option<&Path>,
    bar: &ProgressBar,
) -> anyhow::Result<Tally> {
    let (n, al, ol) = (envs.num_envs(), envs.act_len(), envs.obs_len());
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(derive(seed, Stream::Actions, 0));
    let mut actions = vec![0.0f32; n * al];
    let il = envs.spec().info_features.len();
    let mut tally = Tally { running: vec![(0.0, 0); n], finished: Vec::new(), info_sums: vec![0.0; il] };
    let first = envs.reset()?;
    let layout = envs.image_layout().cloned();
    let frame = |obs: &[f32], t: u64| -> anyhow::Result<()> {
        if let (Some(dir), Some(layout)) = (frames, &layout) {
            crate::runtime::cameras::write_pngs(layout, obs, dir, &format!("{t:06}"))?;
        }
        Ok(())
    };
    frame(&first[..ol.min(first.len())], 0)?;
    for t in 0..steps {
        match given {
            Some(g) => actions.copy_from_slice(&g[t as usize]),
            None => {
                for a in actions.chunks_exact_mut(al.max(1)) {
                    sample(&envs.spec().action_space, &mut rng, a);
                }
            }
        }
        let step = envs.step(&actions).with_context(|| format!("at step {t}"))?;
        let mut finals = step.ended.iter().zip(step.final_observations.chunks_exact(ol)).peekable();
        for i in 0..n {
            let (ret, len) = &mut tally.running[i];
            *ret += step.rewards[i];
            *len += 1;
            let ended = step.terminated[i] || step.truncated[i];
            let final_obs = if finals.peek().is_some_and(|(e, _)| **e as usize == i) { finals.next().map(|(_, o)| o) } else { None };
            if i == 0 {
                frame(final_obs.unwrap_or(&step.observations[..ol]), t + 1)?;
            }
            if let Some(w) = record.as_deref_mut() {
                let cur = &step.observations[i * ol..(i + 1) * ol];
                let rec = Record {
                    t,
                    env: i,
                    action: &actions[i * al..(i + 1) * al],
                    obs: final_obs.unwrap_or(cur),
                    reward: step.rewards[i],
                    terminated: step.terminated[i],
                    truncated: step.truncated[i],
                    infos: &step.infos[i * il..(i + 1) * il],
                    reset_obs: final_obs.map(|_| cur),
                };
                serde_json::to_writer(&mut *w, &rec)?;
                w.write_all(b"\n")?;
            }
            if ended {
                for (sum, v) in tally.info_sums.iter_mut().zip(&step.infos[i * il..(i + 1) * il]) {
                    *sum += v;
                }
                let (ret, len) = (*ret, *len);
                tally.finished.push((ret, len));
                tally.running[i] = (0.0, 0);
            }
        }
        if t % 256 == 0 {
            bar.set_position(t);
            let finished = &tally.finished;
            if let Some(last) = finished.iter().rev().take(20).map(|x| x.0).reduce(|a, b| a + b) {
                bar.set_message(format!("{} episodes · recent return {:.1}", finished.len(), last / finished.len().min(20) as f64));
            }
        }
    }
    Ok(tally)
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = config_of(&args)?;
    let runtime = crate::run::runtime_for(&config.runtime, RunLog::stderr())?;
    let env_plugin = runtime.load(&config.env.plugin, World::Environment)?;
    let opts = config.env.set_options(config.env.num_envs, None, config.seed, Stream::Env).map_err(anyhow::Error::from)?;
    let mut envs = EnvSet::new(&env_plugin, &opts)?;
    if let Some(r) = &config.reward {
        let plugin = runtime.load(&r.plugin, World::Reward)?;
        let params = to_params("reward.params", &r.params).map_err(anyhow::Error::from)?;
        let reward = RewardInstance::new(&plugin, derive(config.seed, Stream::PluginRandom, 1 << 32), envs.spec(), &params)?;
        envs.set_reward(reward);
    }
    let (n, al) = (envs.num_envs(), envs.act_len());
    let given = match &args.actions {
        Some(p) => Some(read_actions(p, n * al)?),
        None => None,
    };
    let steps = match (&given, args.steps) {
        (Some(g), Some(s)) if (g.len() as u64) < s => {
            bail!("actions file has {} steps of actions but --steps is {s}", g.len())
        }
        (_, Some(s)) => s,
        (Some(g), None) => g.len() as u64,
        (None, None) => 1000,
    };
    let mut record = match &args.record {
        Some(p) => Some(BufWriter::new(std::fs::File::create(p).with_context(|| format!("failed to create record file {}", p.display()))?)),
        None => None,
    };

    let bar = if args.json { ProgressBar::hidden() } else { ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::stderr()) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bar:30} {pos}/{len} steps · {per_sec} · {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let start = Instant::now();
    let Tally { finished, info_sums, .. } =
        step_envs(&mut envs, config.seed, given.as_deref(), steps, record.as_mut(), args.frames.as_deref(), &bar)?;
    let wall = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if let Some(mut w) = record {
        w.flush().context("failed to write record file")?;
    }
    let returns: Vec<f64> = finished.iter().map(|x| x.0).collect();
    let mean = (!returns.is_empty()).then(|| returns.iter().sum::<f64>() / returns.len() as f64);
    let std = mean.map(|m| (returns.iter().map(|r| (r - m).powi(2)).sum::<f64>() / returns.len() as f64).sqrt());
    let summary = Summary {
        env: envs.spec().id.clone(),
        plugin: env_plugin.name().to_string(),
        sha256: env_plugin.info().sha256.clone(),
        reward_plugin: envs.reward_name().map(str::to_string),
        seed: config.seed,
        num_envs: n,
        shards: envs.num_shards(),
        steps,
        env_steps: steps * n as u64,
        episodes: finished.len(),
        mean_return: mean,
        std_return: std,
        min_return: returns.iter().cloned().reduce(f64::min),
        max_return: returns.iter().cloned().reduce(f64::max),
        mean_length: mean.map(|_| finished.iter().map(|x| x.1 as f64).sum::<f64>() / finished.len() as f64),
        final_infos: if finished.is_empty() {
            Default::default()
        } else {
            envs.spec().info_features.iter().cloned().zip(info_sums.iter().map(|s| s / finished.len() as f64)).collect()
        },
        wall_s: wall,
        env_steps_per_s: (steps * n as u64) as f64 / wall.max(1e-9),
    };
    print_summary(&summary, &args)
}

/// Prints what `env run` measured: one JSON object, or lines for a person.
fn print_summary(summary: &Summary, args: &RunArgs) -> anyhow::Result<()> {
    if args.json {
        println!("{}", serde_json::to_string(summary)?);
    } else {
        println!(
            "{} ({}) · {} envs in {} shard(s) · {} steps = {} env steps in {:.2} s · {:.0} env steps/s",
            summary.env,
            summary.plugin,
            summary.num_envs,
            summary.shards,
            summary.steps,
            summary.env_steps,
            summary.wall_s,
            summary.env_steps_per_s
        );
        if let Some(r) = &summary.reward_plugin {
            println!("reward plugin: {r}");
        }
        match (summary.mean_return, summary.std_return) {
            (Some(m), Some(s)) => println!(
                "{} episodes · return {m:.2} ± {s:.2} (min {:.2}, max {:.2}) · mean length {:.1}",
                summary.episodes,
                summary.min_return.unwrap_or(m),
                summary.max_return.unwrap_or(m),
                summary.mean_length.unwrap_or(0.0)
            ),
            _ => println!("no episode finished"),
        }
        for (name, mean) in &summary.final_infos {
            println!("final {name} = {mean:.4} (mean at the episodes' last step)");
        }
        if let Some(p) = &args.record {
            println!("recorded {} lines to {}", summary.env_steps, p.display());
        }
    }
    Ok(())
}

/// `true` if `path` names a TOML config rather than a component.
fn is_config(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| e == "toml")
}
