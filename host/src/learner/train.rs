//! The training loop: vectorized envs → `act` → env step → `observe` → `update` when the
//! algorithm asks, with periodic deterministic evaluation on separate envs. Batch data goes
//! to the algorithm as host tensors on the learner's device.
//!
//! The run directory holds the resolved `config.toml`, `plugins.lock`, `metrics.jsonl`
//! (deterministic: no wall-clock values, so the same config and seed on CPU give the same
//! bytes) and `log.txt` (written by the caller's run log).

use super::{DeviceRequest, Learner, resolve_device};
use crate::config::{RunConfig, to_params};
use crate::envset::{EnvSet, EnvSetOptions};
use crate::runtime::bindings::types::Space;
use crate::runtime::{AlgorithmInstance, Plugin, RewardInstance, Runtime, World};
use crate::seed::{Stream, derive};
use anyhow::{Context, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// One evaluation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Evaluation {
    /// Env steps of training when it ran.
    pub step: u64,
    /// Mean return.
    pub mean: f64,
    /// Standard deviation of the returns.
    pub std: f64,
    /// Half-width of the 95% confidence interval of the mean (normal approximation).
    pub ci95: f64,
    /// Every episode's return.
    pub returns: Vec<f64>,
}

impl Evaluation {
    fn of(step: u64, returns: Vec<f64>) -> Self {
        let n = returns.len().max(1) as f64;
        let mean = returns.iter().sum::<f64>() / n;
        let std = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
        Evaluation { step, mean, std, ci95: 1.96 * std / n.sqrt(), returns }
    }
}

/// What a finished run reports.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Env steps taken.
    pub steps: u64,
    /// Wall-clock seconds of the loop.
    pub wall_s: f64,
    /// Env steps per second.
    pub steps_per_s: f64,
    /// Best evaluation mean return.
    pub best_eval_return: Option<f64>,
    /// Last evaluation mean return.
    pub last_eval_return: Option<f64>,
    /// Env steps at which an evaluation first reached `train.stop_at_return`.
    pub solved_at_step: Option<u64>,
    /// Every evaluation.
    pub evals: Vec<Evaluation>,
    /// The learner's device.
    pub device: String,
}

/// Progress the loop reports to the caller (for a progress bar).
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Env steps so far.
    pub steps: u64,
    /// Mean return of recent training episodes.
    pub recent_return: Option<f64>,
    /// Last evaluation's mean return.
    pub last_eval: Option<f64>,
}

/// A plugin's entry in `plugins.lock`.
#[derive(serde::Serialize)]
struct LockEntry<'a> {
    role: &'a str,
    name: &'a str,
    source: String,
    sha256: &'a str,
    world: String,
    package_version: &'a str,
    since_step: u64,
}

fn lock_entry<'a>(role: &'a str, p: &'a Plugin) -> LockEntry<'a> {
    let i = p.info();
    LockEntry {
        role,
        name: &i.name,
        source: i.path.display().to_string(),
        sha256: &i.sha256,
        world: i.world.to_string(),
        package_version: &i.package_version,
        since_step: 0,
    }
}

/// Checks and converts the algorithm's actions into flat env actions.
fn actions_for_envs(plugin: &str, t: &Tensor, n: usize, al: usize, space: &Space) -> anyhow::Result<Vec<f32>> {
    let shape = t.size();
    let ok_shape = shape == [n as i64, al as i64] || (al == 1 && shape == [n as i64]);
    if !ok_shape {
        bail!("plugin `{plugin}` failed in `act`: returned actions of shape {shape:?}, expected [{n}, {al}]");
    }
    let flat = Vec::<f32>::try_from(t.detach().to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1))?;
    if let Some(i) = flat.iter().position(|a| !a.is_finite()) {
        bail!("plugin `{plugin}` failed in `act`: action {} of env {} is {}", i % al, i / al, flat[i]);
    }
    if let Space::Discrete(d) = space
        && let Some(i) = flat.iter().position(|&a| a.fract() != 0.0 || (a as i64) < d.start || (a as i64) >= d.start + i64::from(d.n))
    {
        bail!("plugin `{plugin}` failed in `act`: action {} for env {i} is not in Discrete({})", flat[i], d.n);
    }
    Ok(flat)
}

fn obs_tensor(obs: &[f32], n: usize, ol: usize, device: Device) -> Tensor {
    Tensor::from_slice(obs).reshape([n as i64, ol as i64]).to_device(device)
}

/// Runs one deterministic episode in every eval env; returns their env returns.
fn evaluate(algo: &mut AlgorithmInstance, envs: &mut EnvSet, device: Device) -> anyhow::Result<Vec<f64>> {
    let (n, ol, al) = (envs.num_envs(), envs.obs_len(), envs.act_len());
    let space = envs.spec().action_space.clone();
    let mut returns = vec![0.0; n];
    let mut done = vec![false; n];
    let mut obs = envs.reset()?;
    while done.iter().any(|d| !d) {
        let a = algo.act(&obs_tensor(&obs, n, ol, device), true)?;
        let actions = actions_for_envs(algo.name(), &a, n, al, &space)?;
        let step = envs.step(&actions)?;
        for i in 0..n {
            if !done[i] {
                returns[i] += step.rewards[i];
                done[i] = step.terminated[i] || step.truncated[i];
            }
        }
        obs = step.observations;
    }
    Ok(returns)
}

/// Trains per `config`, writing into `run_dir` (which must exist).
pub fn train(config: &RunConfig, runtime: &Runtime, run_dir: &Path, progress: &mut dyn FnMut(Progress)) -> anyhow::Result<TrainSummary> {
    let algo_cfg = config.algorithm.as_ref().context("the config has no [algorithm] section")?;
    let total = config.total_steps.context("the config has no `total_steps`")?;
    tch::set_num_threads(config.train.threads as i32);
    tch::manual_seed(derive(config.seed, Stream::PluginRandom, 1 << 40) as i64);
    let request: DeviceRequest = algo_cfg.device.parse().map_err(anyhow::Error::msg)?;
    let device = resolve_device(request)?;

    let env_plugin = runtime.load(&config.env.plugin, World::Environment)?;
    let algo_plugin = runtime.load(&algo_cfg.plugin, World::Algorithm)?;
    let reward_plugin = config.reward.as_ref().map(|r| runtime.load(&r.plugin, World::Reward)).transpose()?;
    let env_params = to_params("env.params", &config.env.params).map_err(anyhow::Error::msg)?;
    let opts =
        |num_envs, stream| EnvSetOptions { num_envs, workers: config.env.workers, seed: config.seed, stream, params: env_params.clone() };
    let mut envs = EnvSet::new(&env_plugin, &opts(config.env.num_envs, Stream::Env))?;
    let mut eval_envs = EnvSet::new(&env_plugin, &opts(config.train.eval_episodes, Stream::EvalEnv))?;
    if let (Some(plugin), Some(r)) = (&reward_plugin, &config.reward) {
        let params = to_params("reward.params", &r.params).map_err(anyhow::Error::msg)?;
        envs.set_reward(RewardInstance::new(plugin, derive(config.seed, Stream::PluginRandom, 1 << 32), envs.spec(), &params)?);
    }
    let algo_params = to_params("algorithm.params", &algo_cfg.params).map_err(anyhow::Error::msg)?;
    let mut algo = AlgorithmInstance::new(&algo_plugin, derive(config.seed, Stream::PluginRandom, 1 << 33), Learner::new(device))?;
    let (n, ol, al) = (envs.num_envs(), envs.obs_len(), envs.act_len());
    algo.init(envs.spec(), n as u32, &algo_params)?;

    let mut lock = vec![lock_entry("env", &env_plugin), lock_entry("algorithm", &algo_plugin)];
    if let Some(p) = &reward_plugin {
        lock.push(lock_entry("reward", p));
    }
    std::fs::write(run_dir.join("plugins.lock"), serde_json::to_string_pretty(&lock)? + "\n").context("failed to write plugins.lock")?;
    let mut metrics =
        std::io::BufWriter::new(std::fs::File::create(run_dir.join("metrics.jsonl")).context("failed to create metrics.jsonl")?);

    let space = envs.spec().action_space.clone();
    let threshold = config.train.stop_at_return;
    let mut summary = TrainSummary {
        run_dir: run_dir.to_path_buf(),
        steps: 0,
        wall_s: 0.0,
        steps_per_s: 0.0,
        best_eval_return: None,
        last_eval_return: None,
        solved_at_step: None,
        evals: Vec::new(),
        device: format!("{device:?}").to_lowercase(),
    };
    let mut running = vec![(0.0f64, 0u64); n];
    let mut finished: Vec<(f64, u64)> = Vec::new();
    let mut recent: Vec<f64> = Vec::new();
    let mut next_eval = if config.train.eval_every == 0 { u64::MAX } else { config.train.eval_every };
    let start = Instant::now();
    let mut obs = envs.reset()?;
    let mut steps = 0u64;
    while steps < total {
        let obs_t = obs_tensor(&obs, n, ol, device);
        let a = algo.act(&obs_t, false)?;
        let actions = actions_for_envs(algo.name(), &a, n, al, &space)?;
        let step = envs.step(&actions).with_context(|| format!("at env step {steps}"))?;
        let mut next = step.observations.clone();
        for (&i, fin) in step.ended.iter().zip(step.final_observations.chunks_exact(ol)) {
            let i = i as usize;
            next[i * ol..(i + 1) * ol].copy_from_slice(fin);
        }
        let rewards = Tensor::from_slice(&step.rewards).to_kind(Kind::Float).to_device(device);
        let terminated = Tensor::from_slice(&step.terminated).to_device(device);
        let truncated = Tensor::from_slice(&step.truncated).to_device(device);
        algo.observe(&obs_t, &a, &rewards, &obs_tensor(&next, n, ol, device), &terminated, &truncated)?;
        steps += n as u64;
        for i in 0..n {
            running[i].0 += step.rewards[i];
            running[i].1 += 1;
            if step.terminated[i] || step.truncated[i] {
                finished.push(running[i]);
                recent.push(running[i].0);
                running[i] = (0.0, 0);
            }
        }
        if recent.len() > 20 {
            recent.drain(..recent.len() - 20);
        }
        if algo.wants_update()? {
            let mut line = serde_json::Map::new();
            line.insert("step".into(), steps.into());
            if !finished.is_empty() {
                let k = finished.len() as f64;
                line.insert("rollout/episodes".into(), finished.len().into());
                line.insert("rollout/return_mean".into(), (finished.iter().map(|e| e.0).sum::<f64>() / k).into());
                line.insert("rollout/length_mean".into(), (finished.iter().map(|e| e.1 as f64).sum::<f64>() / k).into());
                finished.clear();
            }
            for m in algo.update()? {
                line.insert(format!("train/{}", m.name), m.value.into());
            }
            writeln!(metrics, "{}", serde_json::Value::Object(line))?;
        }
        obs = step.observations;
        if steps >= next_eval || steps >= total {
            next_eval = next_eval.saturating_add(config.train.eval_every);
            let e = Evaluation::of(steps, evaluate(&mut algo, &mut eval_envs, device)?);
            writeln!(metrics, "{}", serde_json::json!({"step": steps, "eval/return_mean": e.mean, "eval/return_std": e.std}))?;
            summary.best_eval_return = Some(summary.best_eval_return.map_or(e.mean, |b: f64| b.max(e.mean)));
            summary.last_eval_return = Some(e.mean);
            let solved = threshold.is_some_and(|t| e.mean >= t);
            if solved && summary.solved_at_step.is_none() {
                summary.solved_at_step = Some(steps);
            }
            summary.evals.push(e);
            if solved {
                break;
            }
        }
        progress(Progress {
            steps,
            recent_return: (!recent.is_empty()).then(|| recent.iter().sum::<f64>() / recent.len() as f64),
            last_eval: summary.last_eval_return,
        });
    }
    metrics.flush().context("failed to write metrics.jsonl")?;
    summary.steps = steps;
    summary.wall_s = start.elapsed().as_secs_f64();
    summary.steps_per_s = steps as f64 / summary.wall_s.max(1e-9);
    Ok(summary)
}
