//! The training loop: vectorized envs → `act` → env step → `observe` → `update` when the
//! algorithm asks, with periodic deterministic evaluation on separate envs. Batch data goes
//! to the algorithm as host tensors on the learner's device.
//!
//! The run directory holds the resolved `config.toml`, `plugins.lock`, `metrics.jsonl`
//! (deterministic: no wall-clock values, so the same config and seed on CPU give the same
//! bytes), `log.txt` (written by the caller's run log) and `checkpoints/<step>/`.
//!
//! Checkpoints are taken right after an update (the algorithm's rollout is empty then):
//! the learner's named tensors, the plugin's own state, every env's snapshot and the loop's
//! counters, written to a temporary directory and renamed, so a kill at any moment leaves
//! the last complete checkpoint loadable. libtorch's generator is reseeded from the run
//! seed and the update count at every update, so a resumed run continues exactly as an
//! uninterrupted one would, without saving generator state.

use super::reload::PluginWatcher;
use super::{DeviceRequest, Learner, resolve_device};
use crate::config::{AlgorithmSection, RunConfig, TrainSection, to_params};
use crate::envset::{EnvSet, EnvSetOptions};
use crate::runstatus::{self, Request, State, Status};
use crate::runtime::bindings::types::{Params, Space};
use crate::runtime::{AlgorithmInstance, GoalInstance, Plugin, RewardInstance, Runtime, World};
use crate::seed::{Stream, derive};
use anyhow::{Context, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{Device, Tensor};

/// One evaluation.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
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
    /// Fraction of episodes whose last step reported the info feature `is-success` non-zero
    /// (Gymnasium-Robotics' convention), for envs that report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    /// Mean over the episodes of each info feature at the episode's last step (e.g. how far
    /// a walker got: `distance`), for envs that report info features.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub final_infos: std::collections::BTreeMap<String, f64>,
}

impl Evaluation {
    fn of(step: u64, episodes: EvalEpisodes) -> Self {
        let returns = episodes.returns;
        let n = returns.len().max(1) as f64;
        let mean = returns.iter().sum::<f64>() / n;
        let std = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
        let success_rate = episodes.successes.map(|s| s.iter().filter(|&&x| x).count() as f64 / n);
        let final_infos = episodes
            .info_features
            .iter()
            .enumerate()
            .map(|(k, name)| (name.clone(), episodes.final_infos.iter().map(|v| v[k]).sum::<f64>() / n))
            .collect();
        Evaluation { step, mean, std, ci95: 1.96 * std / n.sqrt(), returns, success_rate, final_infos }
    }
}

/// What one round of evaluation episodes gave.
pub struct EvalEpisodes {
    /// Each episode's return.
    pub returns: Vec<f64>,
    /// Whether each episode ended in success (envs with an `is-success` info feature).
    pub successes: Option<Vec<bool>>,
    /// The env's info feature names.
    pub info_features: Vec<String>,
    /// Each episode's info values at its last step.
    pub final_infos: Vec<Vec<f64>>,
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
    /// The checkpoint this run resumed from.
    pub resumed_from: Option<PathBuf>,
    /// Whether the run stopped on request (`control/stop`, `q` in the monitor) before its end.
    pub stopped: bool,
    /// Where the run is kept when that is not `run_dir` (an S3 run; `run_dir` is then its
    /// local working copy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_location: Option<String>,
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

/// A plugin's entry in `plugins.lock`: one per version a run used, with the env step it went
/// live at (0 for the versions a run started with; later ones come from hot reload).
#[derive(serde::Serialize, serde::Deserialize)]
struct LockEntry {
    role: String,
    name: String,
    source: String,
    sha256: String,
    world: String,
    package_version: String,
    since_step: u64,
}

fn lock_entry(role: &str, p: &Plugin, since_step: u64) -> LockEntry {
    let i = p.info();
    LockEntry {
        role: role.to_string(),
        name: i.name.clone(),
        source: i.path.display().to_string(),
        sha256: i.sha256.clone(),
        world: i.world.to_string(),
        package_version: i.package_version.clone(),
        since_step,
    }
}

/// Appends a hot-reloaded version to `plugins.lock`.
fn lock_append(run_dir: &Path, entry: LockEntry) -> anyhow::Result<()> {
    let path = run_dir.join("plugins.lock");
    // A missing lock starts afresh; an unreadable one is an error rather than overwritten.
    let mut lock: Vec<LockEntry> = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| format!("{} is not a plugins.lock", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("failed to read {}", path.display()))),
    };
    lock.push(entry);
    std::fs::write(&path, serde_json::to_string_pretty(&lock)? + "\n").context("failed to write plugins.lock")
}

/// Checks and converts the algorithm's actions into flat env actions.
fn actions_for_envs(plugin: &str, t: &Tensor, n: usize, al: usize, space: &Space) -> anyhow::Result<Vec<f32>> {
    let shape = t.size();
    let ok_shape = shape == [n as i64, al as i64] || (al == 1 && shape == [n as i64]);
    if !ok_shape {
        bail!("plugin `{plugin}` failed in `act`: returned actions of shape {shape:?}, expected [{n}, {al}]");
    }
    let flat = super::cpu_f32(t).map_err(|e| anyhow::anyhow!("plugin `{plugin}` failed in `act`: reading its actions: {e}"))?;
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
    on_device(Tensor::from_slice(obs).reshape([n as i64, ol as i64]), device)
}

/// `t` on `device` (no libtorch call when that is the CPU, where every step's tensors are
/// made: a call costs microseconds at these sizes).
fn on_device(t: Tensor, device: Device) -> Tensor {
    if device == Device::Cpu { t } else { t.to_device(device) }
}

/// Runs one deterministic episode in every eval env; returns their env returns (and
/// successes, where the env reports `is-success`).
pub fn evaluate(algo: &mut AlgorithmInstance, envs: &mut EnvSet, device: Device) -> anyhow::Result<EvalEpisodes> {
    evaluate_observed(algo, envs, device, &mut |_, _| Ok(()))
}

/// [`evaluate`], calling `observe(envs, t)` after the reset (`t` = 0) and after each step
/// while env 0's episode goes on (for pictures of it; the state after its last step is not
/// seen: the env has auto-reset by then).
pub fn evaluate_observed(
    algo: &mut AlgorithmInstance,
    envs: &mut EnvSet,
    device: Device,
    observe: &mut dyn FnMut(&EnvSet, usize) -> anyhow::Result<()>,
) -> anyhow::Result<EvalEpisodes> {
    let (n, ol, al) = (envs.num_envs(), envs.obs_len(), envs.act_len());
    let space = envs.spec().action_space.clone();
    let info_len = envs.spec().info_features.len();
    let success_at = envs.spec().info_features.iter().position(|f| f == "is-success");
    let mut successes = vec![false; n];
    let mut final_infos = vec![vec![0.0; info_len]; n];
    let mut returns = vec![0.0; n];
    let mut done = vec![false; n];
    let mut obs = envs.reset()?;
    observe(envs, 0)?;
    let mut t = 0;
    while done.iter().any(|d| !d) {
        let a = algo.act(&obs_tensor(&obs, n, ol, device), true)?;
        let actions = actions_for_envs(algo.name(), &a, n, al, &space)?;
        let step = envs.step(&actions)?;
        for i in 0..n {
            if !done[i] {
                returns[i] += step.rewards[i];
                done[i] = step.terminated[i] || step.truncated[i];
                if done[i] {
                    final_infos[i].copy_from_slice(&step.infos[i * info_len..(i + 1) * info_len]);
                }
                if let (true, Some(k)) = (done[i], success_at) {
                    successes[i] = step.infos[i * info_len + k] != 0.0;
                }
            }
        }
        obs = step.observations;
        t += 1;
        if !done[0] {
            observe(envs, t)?;
        }
    }
    let info_features = envs.spec().info_features.clone();
    Ok(EvalEpisodes { returns, successes: success_at.map(|_| successes), info_features, final_infos })
}

/// Where metric lines go: `metrics.jsonl` (deterministic bytes) and a TensorBoard event file
/// in the run directory (`tensorboard --logdir runs/`).
struct MetricsSink {
    jsonl: std::io::BufWriter<std::fs::File>,
    tensorboard: tensorboard_rs::summary_writer::SummaryWriter,
}

impl MetricsSink {
    /// Opens the sink of `run_dir` at `bytes` of `metrics.jsonl`. Lines written after that
    /// by a run that stopped are cut off (the resumed run writes them again, the same). On
    /// `resume`, the TensorBoard events are rebuilt from the kept lines into a fresh event
    /// file, so the stopped run's later points do not show beside the resumed run's.
    fn open(run_dir: &Path, bytes: u64, resume: bool) -> anyhow::Result<Self> {
        let path = run_dir.join("metrics.jsonl");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .context("failed to open metrics.jsonl")?;
        file.set_len(bytes).context("failed to truncate metrics.jsonl")?;
        let mut kept = String::new();
        if resume {
            std::io::Read::read_to_string(&mut file, &mut kept).context("failed to read metrics.jsonl")?;
            for e in std::fs::read_dir(run_dir)?.filter_map(Result::ok) {
                if e.file_name().to_string_lossy().starts_with("events.out.tfevents.") {
                    std::fs::remove_file(e.path()).context("failed to replace the TensorBoard event file")?;
                }
            }
        }
        std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))?;
        let mut tensorboard = tensorboard_rs::summary_writer::SummaryWriter::new(run_dir);
        for line in kept.lines() {
            let v: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).with_context(|| format!("{}: a line before the checkpoint is not JSON", path.display()))?;
            Self::to_tensorboard(&mut tensorboard, &v);
        }
        Ok(MetricsSink { jsonl: std::io::BufWriter::new(file), tensorboard })
    }

    fn to_tensorboard(tb: &mut tensorboard_rs::summary_writer::SummaryWriter, line: &serde_json::Map<String, serde_json::Value>) {
        let step = line.get("step").and_then(serde_json::Value::as_u64).unwrap_or(0);
        for (k, v) in line {
            if let (true, Some(x)) = (k != "step", v.as_f64()) {
                tb.add_scalar(k, x as f32, step as usize);
            }
        }
    }

    fn write(&mut self, line: serde_json::Map<String, serde_json::Value>) -> anyhow::Result<()> {
        Self::to_tensorboard(&mut self.tensorboard, &line);
        writeln!(self.jsonl, "{}", serde_json::Value::Object(line)).context("failed to write metrics.jsonl")
    }

    /// Flushes both; returns the length of `metrics.jsonl`.
    fn flush(&mut self) -> anyhow::Result<u64> {
        self.tensorboard.flush();
        self.jsonl.flush().context("failed to write metrics.jsonl")?;
        Ok(self.jsonl.get_ref().metadata()?.len())
    }
}

/// Everything the loop needs to continue from a checkpoint.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct LoopState {
    steps: u64,
    next_eval: u64,
    updates: u64,
    running: Vec<(f64, u64)>,
    finished: Vec<(f64, u64)>,
    recent: Vec<f64>,
    observations: Vec<f32>,
    env_states: Vec<Vec<u8>>,
    eval_env_states: Vec<Vec<u8>>,
    evals: Vec<Evaluation>,
    best_eval_return: Option<f64>,
    last_eval_return: Option<f64>,
    solved_at_step: Option<u64>,
    metrics_bytes: u64,
}

/// Checkpoint directory names: the env step, zero-padded so names sort by step.
fn checkpoint_name(step: u64) -> String {
    format!("{step:012}")
}

/// Whether `path` is a complete checkpoint's directory (named by [`checkpoint_name`]; a
/// `.tmp-*` one is not).
fn is_checkpoint_dir(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(crate::store::mirror::is_checkpoint_name)
}

/// The newest complete checkpoint of a run, if any.
pub fn latest_checkpoint(run_dir: &Path) -> Option<PathBuf> {
    let entries = std::fs::read_dir(run_dir.join("checkpoints")).ok()?;
    entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| is_checkpoint_dir(p)).max()
}

/// What a checkpoint captures beside the loop state.
struct Live<'a> {
    algo: &'a mut AlgorithmInstance,
    envs: &'a mut EnvSet,
    eval_envs: &'a mut EnvSet,
    observations: &'a [f32],
    metrics: &'a mut MetricsSink,
}

/// Captures the envs, observations and metrics length into `state`, then writes a checkpoint.
/// `train` gives how many checkpoints to keep and whether they hold the replay buffers.
fn write_checkpoint(run_dir: &Path, train: &TrainSection, live: Live<'_>, state: &mut LoopState) -> anyhow::Result<PathBuf> {
    state.metrics_bytes = live.metrics.flush()?;
    state.observations = live.observations.to_vec();
    state.env_states = live.envs.snapshot()?;
    state.eval_env_states = live.eval_envs.snapshot()?;
    let (replay, keep) = (train.checkpoint_replay, train.keep_checkpoints);
    let (algo, state) = (live.algo, &*state);
    let dir = run_dir.join("checkpoints");
    std::fs::create_dir_all(&dir).context("failed to create checkpoints/")?;
    let name = checkpoint_name(state.steps);
    let tmp = dir.join(format!(".tmp-{name}"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir(&tmp)?;
    algo.learner().save(&tmp).map_err(anyhow::Error::msg)?;
    if replay {
        algo.learner().save_replays(&tmp).map_err(anyhow::Error::msg)?;
    }
    std::fs::write(tmp.join("algorithm.bin"), algo.save_state()?)?;
    let f = std::fs::File::create(tmp.join("state.json"))?;
    serde_json::to_writer(&f, state)?;
    f.sync_all()?;
    let done = dir.join(&name);
    if done.exists() {
        std::fs::remove_dir_all(&done)?;
    }
    std::fs::rename(&tmp, &done).context("failed to publish the checkpoint")?;
    let mut all: Vec<PathBuf> =
        std::fs::read_dir(&dir)?.filter_map(Result::ok).map(|e| e.path()).filter(|p| is_checkpoint_dir(p)).collect();
    all.sort();
    for old in all.iter().take(all.len().saturating_sub(keep.max(1))) {
        std::fs::remove_dir_all(old)?;
    }
    Ok(done)
}

/// The `[algorithm]` section and its device, with libtorch's thread count set.
fn learner_setup(config: &RunConfig) -> anyhow::Result<(&AlgorithmSection, Device)> {
    let algo_cfg = config.algorithm.as_ref().context("the config has no [algorithm] section")?;
    tch::set_num_threads(config.train.threads as i32);
    let request: DeviceRequest = algo_cfg.device.parse().map_err(anyhow::Error::msg)?;
    Ok((algo_cfg, resolve_device(request)?))
}

/// Gives the learner the env's goal rewards when the env is goal-conditioned (for
/// hindsight relabeling): `goal-env` on an instance of its own.
/// A reward plugin replaces the env's rewards, and relabelled rewards would come from the
/// env: that combination is refused (by name) when an algorithm asks for hindsight.
fn attach_goal_oracle(learner: &mut Learner, env_plugin: &Plugin, seed: u64, params: &Params, reward: Option<&Path>) -> anyhow::Result<()> {
    if let (true, Some(r)) = (env_plugin.info().goals, reward) {
        learner.goal_oracle.1 = Some(format!(
            "cannot be combined with the reward plugin {} (relabelled rewards come from the env's goal-env, not from the reward plugin)",
            r.display()
        ));
    } else if env_plugin.info().goals {
        let oracle = GoalInstance::new(env_plugin, derive(seed, Stream::PluginRandom, 1 << 34), params)?;
        learner.goal_oracle.0 = Some(Box::new(oracle));
    }
    Ok(())
}

/// Where hot-reloaded versions of a run's plugins wait for their safe point, and what they
/// need to take over: a reward at the next step, the env at each env's next episode
/// boundary, the algorithm right after its next update (re-attached to its named
/// parameters and given its saved state). Every swap and refusal goes to the log, to
/// `metrics.jsonl` (`reload/<role>`, `reload/<role>_refused`) and, for swaps, to
/// `plugins.lock` with the step it went live.
struct Reloads {
    watcher: Option<PluginWatcher>,
    /// An algorithm version waiting for the next update, and when its file changed.
    algorithm: Option<(Plugin, Instant, std::time::Duration)>,
    /// The env swap under way: when it began (step) and when its file changed.
    env_began: Option<(u64, Instant, String)>,
    reward_seed: u64,
    reward_params: Params,
    algo_params: Params,
    log: crate::log::RunLog,
}

struct ReloadCtx<'a> {
    run_dir: &'a Path,
    seed: u64,
    env_params: &'a Params,
    reward: Option<&'a Path>,
    step: u64,
}

impl Reloads {
    fn record(
        &self,
        ctx: &ReloadCtx<'_>,
        role: &str,
        path: &Path,
        outcome: &anyhow::Result<Plugin>,
        seen: Instant,
        load_time: std::time::Duration,
        what: &str,
        metrics: &mut MetricsSink,
    ) -> anyhow::Result<()> {
        let mut line = serde_json::Map::new();
        line.insert("step".into(), ctx.step.into());
        match outcome {
            Ok(p) => {
                let ms = seen.elapsed().as_secs_f64() * 1e3;
                self.log.line(
                    crate::log::Level::Info,
                    "host",
                    &format!(
                        "hot reload: {role} plugin {} (sha256 {}) {what} from step {} ({ms:.0} ms after the change; loaded in {:.0} ms)",
                        path.display(),
                        &p.info().sha256[..12],
                        ctx.step,
                        load_time.as_secs_f64() * 1e3
                    ),
                );
                lock_append(ctx.run_dir, lock_entry(role, p, ctx.step))?;
                line.insert(format!("reload/{role}"), 1.into());
            }
            Err(e) => {
                self.log.line(
                    crate::log::Level::Warn,
                    "host",
                    &format!("hot reload: refused the new {role} plugin {}, the run goes on with the old one: {e:#}", path.display()),
                );
                line.insert(format!("reload/{role}_refused"), 1.into());
            }
        }
        metrics.write(line)
    }

    /// Takes new versions from the watcher: swaps a reward in now, starts an env swap, and
    /// keeps an algorithm for the next update. Called before each env step.
    fn poll(
        &mut self,
        ctx: &ReloadCtx<'_>,
        envs: &mut EnvSet,
        eval_envs: &mut EnvSet,
        algo: &mut AlgorithmInstance,
        metrics: &mut MetricsSink,
    ) -> anyhow::Result<()> {
        let Some(watcher) = &self.watcher else { return Ok(()) };
        for c in watcher.poll() {
            let loaded = c.plugin.map_err(anyhow::Error::from);
            match c.role {
                "reward" => {
                    let outcome = loaded.and_then(|p| {
                        let new = RewardInstance::new(&p, self.reward_seed, envs.spec(), &self.reward_params)?;
                        envs.swap_reward(new).map_err(|(_, e)| anyhow::Error::from(e))?;
                        Ok(p)
                    });
                    self.record(ctx, c.role, &c.path, &outcome, c.seen, c.load_time, "is live", metrics)?;
                }
                "env" => {
                    let outcome = loaded.and_then(|p| {
                        eval_envs.begin_swap(&p)?;
                        if let Err(e) = envs.begin_swap(&p) {
                            eval_envs.cancel_swap();
                            return Err(e.into());
                        }
                        if p.info().goals {
                            attach_goal_oracle(algo.learner_mut(), &p, ctx.seed, ctx.env_params, ctx.reward)?;
                        }
                        Ok(p)
                    });
                    if let Ok(p) = &outcome {
                        self.env_began = Some((ctx.step, c.seen, p.info().sha256[..12].to_string()));
                    }
                    self.record(
                        ctx,
                        c.role,
                        &c.path,
                        &outcome,
                        c.seen,
                        c.load_time,
                        "takes each env over at its next episode boundary",
                        metrics,
                    )?;
                }
                _ => match loaded {
                    // Checked again at the next update, where it takes over.
                    Ok(p) => self.algorithm = Some((p, c.seen, c.load_time)),
                    Err(e) => self.record(ctx, c.role, &c.path, &Err(e), c.seen, c.load_time, "", metrics)?,
                },
            }
        }
        Ok(())
    }

    /// After an env step: logs the end of an env swap once every env has moved.
    fn env_progress(&mut self, envs: &EnvSet, step: u64, metrics: &mut MetricsSink) -> anyhow::Result<()> {
        if envs.swapping().is_none()
            && let Some((began, seen, sha)) = self.env_began.take()
        {
            let ms = seen.elapsed().as_secs_f64() * 1e3;
            self.log.line(
                crate::log::Level::Info,
                "host",
                &format!("hot reload: env plugin (sha256 {sha}) serves all {} envs from step {step} (the swap began at step {began}; {ms:.0} ms after the change)", envs.num_envs()),
            );
            let mut line = serde_json::Map::new();
            line.insert("step".into(), step.into());
            line.insert("reload/env_complete".into(), 1.into());
            metrics.write(line)?;
        }
        Ok(())
    }

    /// Right after an update: hands the learner to a waiting algorithm version.
    fn swap_algorithm(
        &mut self,
        ctx: &ReloadCtx<'_>,
        algo: &mut AlgorithmInstance,
        spec: &crate::runtime::bindings::types::EnvSpec,
        n: usize,
        probe: &Tensor,
        metrics: &mut MetricsSink,
    ) -> anyhow::Result<()> {
        let Some((p, seen, load_time)) = self.algorithm.take() else { return Ok(()) };
        let seed = derive(ctx.seed, Stream::PluginRandom, (1 << 33) + ctx.step);
        let path = p.info().path.clone();
        let outcome = algo.reload(&p, seed, spec, n as u32, &self.algo_params, probe).map(|()| p).map_err(anyhow::Error::from);
        self.record(ctx, "algorithm", &path, &outcome, seen, load_time, "is live, on the same named parameters,", metrics)
    }
}

fn reseed_torch(config: &RunConfig, updates: u64) {
    tch::manual_seed(derive(config.seed, Stream::PluginRandom, (1 << 40) + updates) as i64);
}

/// Writes `scene.json` (one env's physics scene, see [`crate::physics::render::SceneFile`])
/// about once a second for the monitor; nothing for envs without physics.
struct ScenePainter {
    last: Option<Instant>,
    view: Option<[f32; 4]>,
    /// False once the env turned out to have no scene.
    active: bool,
}

const SCENE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl ScenePainter {
    fn paint(&mut self, run_dir: &Path, envs: &EnvSet, step: u64) {
        if !self.active || self.last.is_some_and(|t| t.elapsed() < SCENE_EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        let (scene, fixed) = envs.first_scene();
        if scene.is_empty() {
            self.active = false;
            return;
        }
        let file = crate::physics::render::SceneFile::new(step, &scene, &fixed, self.view);
        self.view = Some(file.view);
        // A picture that cannot be written (full disk) must not stop training.
        if let Ok(text) = serde_json::to_vec(&file) {
            let _ = crate::store::write_atomically(&run_dir.join("scene.json"), &text);
        }
    }
}

/// Keeps `status.json` current and serves `control/` requests (see [`crate::runstatus`]),
/// looking at the clock each step and at the files four times a second.
struct Ticker<'a> {
    run_dir: &'a Path,
    status: Status,
    last: Instant,
    last_steps: u64,
    /// A checkpoint was asked for: written at the next update.
    checkpoint_asked: bool,
    log: crate::log::RunLog,
}

const TICK: std::time::Duration = std::time::Duration::from_millis(250);

impl Ticker<'_> {
    fn write(&mut self, state: State, st: &LoopState, message: Option<String>) {
        let s = &mut self.status;
        (s.state, s.step, s.best_eval, s.last_eval, s.message) = (state, st.steps, st.best_eval_return, st.last_eval_return, message);
        s.updated_unix = runstatus::unix_now();
        // A status that cannot be written (full disk) must not stop training.
        let _ = runstatus::write(self.run_dir, s);
    }

    /// Called before each step: updates the status when due, waits while paused; returns
    /// whether a stop was asked for.
    fn tick(&mut self, st: &LoopState, message: Option<String>) -> bool {
        if self.last.elapsed() < TICK {
            return false;
        }
        let dt = self.last.elapsed().as_secs_f64();
        self.status.sps = (st.steps - self.last_steps) as f64 / dt;
        (self.last, self.last_steps) = (Instant::now(), st.steps);
        if runstatus::take(self.run_dir, Request::Checkpoint) {
            self.checkpoint_asked = true;
            self.log.line(
                crate::log::Level::Info,
                "host",
                &format!("a checkpoint was asked for at step {}; it is written at the next update", st.steps),
            );
        }
        if runstatus::take(self.run_dir, Request::Stop) {
            self.log.line(crate::log::Level::Info, "host", &format!("stop asked for at step {}", st.steps));
            return true;
        }
        if runstatus::pause_requested(self.run_dir) {
            self.log.line(crate::log::Level::Info, "host", &format!("paused at step {}", st.steps));
            self.status.sps = 0.0;
            while runstatus::pause_requested(self.run_dir) {
                self.write(State::Paused, st, message.clone());
                if runstatus::take(self.run_dir, Request::Stop) {
                    self.log.line(crate::log::Level::Info, "host", &format!("stop asked for while paused at step {}", st.steps));
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            self.log.line(crate::log::Level::Info, "host", &format!("resumed at step {}", st.steps));
            (self.last, self.last_steps) = (Instant::now(), st.steps);
        }
        self.write(State::Running, st, message);
        false
    }
}

/// Trains per `config`, writing into `run_dir` (which must exist). With `resume`, continues
/// from the run's newest complete checkpoint (or starts afresh if it has none). The run's
/// `status.json` follows it (running, paused, finished, stopped, failed with the error).
pub fn train(
    config: &RunConfig,
    runtime: &Runtime,
    run_dir: &Path,
    resume: bool,
    progress: &mut dyn FnMut(Progress),
) -> anyhow::Result<TrainSummary> {
    let started_unix = runstatus::unix_now();
    let mut status = Status {
        state: State::Starting,
        pid: std::process::id(),
        step: 0,
        total_steps: config.total_steps.unwrap_or(0),
        sps: 0.0,
        best_eval: None,
        last_eval: None,
        device: String::new(),
        started_unix,
        updated_unix: started_unix,
        message: None,
    };
    let _ = runstatus::write(run_dir, &status);
    let result = train_run(config, runtime, run_dir, resume, progress, status.clone());
    if let Err(e) = &result {
        // The loop writes its own end states; a failure anywhere is written here.
        (status.state, status.message, status.updated_unix) = (State::Failed, Some(format!("{e:#}")), runstatus::unix_now());
        if let Some(Ok(last)) = runstatus::read(run_dir) {
            (status.step, status.best_eval, status.last_eval, status.device) = (last.step, last.best_eval, last.last_eval, last.device);
        }
        let _ = runstatus::write(run_dir, &status);
    }
    result
}

fn train_run(
    config: &RunConfig,
    runtime: &Runtime,
    run_dir: &Path,
    resume: bool,
    progress: &mut dyn FnMut(Progress),
    mut status: Status,
) -> anyhow::Result<TrainSummary> {
    let (algo_cfg, device) = learner_setup(config)?;
    let total = config.total_steps.context("the config has no `total_steps`")?;

    let env_plugin = runtime.load(&config.env.plugin, World::Environment)?;
    let algo_plugin = runtime.load(&algo_cfg.plugin, World::Algorithm)?;
    let reward_plugin = config.reward.as_ref().map(|r| runtime.load(&r.plugin, World::Reward)).transpose()?;
    let env_params = to_params("env.params", &config.env.params).map_err(anyhow::Error::msg)?;
    let opts = |num_envs, stream| EnvSetOptions {
        num_envs,
        workers: config.env.workers,
        seed: config.seed,
        stream,
        params: env_params.clone(),
        robots: std::sync::Arc::new(config.env.robots.clone()),
    };
    let mut envs = EnvSet::new(&env_plugin, &opts(config.env.num_envs, Stream::Env))?;
    let mut eval_envs = EnvSet::new(&env_plugin, &opts(config.train.eval_episodes, Stream::EvalEnv))?;
    // The reward plugin's seed and parameters serve its first instance and every hot-reloaded one.
    let reward_seed = derive(config.seed, Stream::PluginRandom, 1 << 32);
    let reward_params = match &config.reward {
        Some(r) => to_params("reward.params", &r.params).map_err(anyhow::Error::msg)?,
        None => Vec::new(),
    };
    if let Some(plugin) = &reward_plugin {
        envs.set_reward(RewardInstance::new(plugin, reward_seed, envs.spec(), &reward_params)?);
    }
    let algo_params = to_params("algorithm.params", &algo_cfg.params).map_err(anyhow::Error::msg)?;
    let checkpoint = if resume { latest_checkpoint(run_dir) } else { None };
    let mut learner = match &checkpoint {
        Some(dir) => Learner::load(dir, device).map_err(anyhow::Error::msg).with_context(|| format!("checkpoint {}", dir.display()))?,
        None => Learner::new(device),
    };
    attach_goal_oracle(&mut learner, &env_plugin, config.seed, &env_params, config.reward.as_ref().map(|r| r.plugin.as_path()))?;
    if let Some(dir) = &checkpoint {
        learner.load_replays(dir).map_err(anyhow::Error::msg).with_context(|| format!("checkpoint {}", dir.display()))?;
    }
    // Seeded before `init`: the plugin's networks are initialised from this generator.
    reseed_torch(config, 0);
    let mut algo = AlgorithmInstance::new(&algo_plugin, derive(config.seed, Stream::PluginRandom, 1 << 33), learner)?;
    let (n, ol, al) = (envs.num_envs(), envs.obs_len(), envs.act_len());
    algo.init(envs.spec(), n as u32, &algo_params)?;
    let mut st =
        LoopState { next_eval: if config.train.eval_every == 0 { u64::MAX } else { config.train.eval_every }, ..LoopState::default() };
    if let Some(dir) = &checkpoint {
        let text = std::fs::read_to_string(dir.join("state.json"))
            .with_context(|| format!("failed to read {}", dir.join("state.json").display()))?;
        st = serde_json::from_str(&text).with_context(|| format!("checkpoint {} is corrupt", dir.display()))?;
        algo.load_state(&std::fs::read(dir.join("algorithm.bin"))?)?;
        envs.restore(&st.env_states, &st.observations)?;
        let eval_obs = vec![0.0; eval_envs.num_envs() * ol];
        eval_envs.restore(&st.eval_env_states, &eval_obs)?;
    }
    reseed_torch(config, st.updates);

    let mut lock = vec![lock_entry("env", &env_plugin, 0), lock_entry("algorithm", &algo_plugin, 0)];
    if let Some(p) = &reward_plugin {
        lock.push(lock_entry("reward", p, 0));
    }
    for e in &mut lock {
        if let Some(src) = config.sources.get(Path::new(&e.source)) {
            e.source = src.clone();
        }
    }
    if checkpoint.is_none() {
        std::fs::write(run_dir.join("plugins.lock"), serde_json::to_string_pretty(&lock)? + "\n")
            .context("failed to write plugins.lock")?;
    }
    // A run killed while writing a checkpoint leaves a `.tmp-*` directory: never loaded.
    if let Ok(entries) = std::fs::read_dir(run_dir.join("checkpoints")) {
        for e in entries.filter_map(Result::ok) {
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                std::fs::remove_dir_all(e.path()).context("failed to remove a partial checkpoint")?;
            }
        }
    }
    let mut metrics = MetricsSink::open(run_dir, st.metrics_bytes, checkpoint.is_some())?;

    // Hot reload: new versions of the env, algorithm and reward plugins compile on a watcher
    // thread; each takes over at its safe point (see `Reloads`).
    let mut reloads = Reloads {
        watcher: None,
        algorithm: None,
        env_began: None,
        reward_seed,
        reward_params,
        algo_params: algo_params.clone(),
        log: runtime.options().log.clone(),
    };
    if config.train.hot_reload {
        let mut plugins = vec![("env", &env_plugin), ("algorithm", &algo_plugin)];
        if let Some(p) = &reward_plugin {
            plugins.push(("reward", p));
        }
        reloads.watcher = Some(PluginWatcher::new(runtime, &plugins)?);
    }

    let space = envs.spec().action_space.clone();
    let threshold = config.train.stop_at_return;
    let start = Instant::now();
    let start_steps = st.steps;
    let mut obs = if checkpoint.is_some() { st.observations.clone() } else { envs.reset()? };
    let checkpoint_every = config.train.checkpoint_every;
    let mut next_checkpoint = if checkpoint_every == 0 { u64::MAX } else { (st.steps / checkpoint_every + 1) * checkpoint_every };
    status.device = format!("{device:?}").to_lowercase();
    let mut ticker = Ticker {
        run_dir,
        status,
        last: Instant::now() - TICK,
        last_steps: st.steps,
        checkpoint_asked: false,
        log: runtime.options().log.clone(),
    };
    let mut stopped = false;
    let mut painter = ScenePainter { last: None, view: None, active: true };
    while st.steps < total {
        let news = envs.swapping().map(|(m, n)| format!("env swap under way: {m} of {n} envs on the new version"));
        if ticker.tick(&st, news) {
            stopped = true;
            break;
        }
        painter.paint(run_dir, &envs, st.steps);
        let ctx = ReloadCtx {
            run_dir,
            seed: config.seed,
            env_params: &env_params,
            reward: config.reward.as_ref().map(|r| r.plugin.as_path()),
            step: st.steps,
        };
        reloads.poll(&ctx, &mut envs, &mut eval_envs, &mut algo, &mut metrics)?;
        let obs_t = obs_tensor(&obs, n, ol, device);
        let a = algo.act(&obs_t, false)?;
        let actions = actions_for_envs(algo.name(), &a, n, al, &space)?;
        let step = envs.step(&actions).with_context(|| format!("at env step {}", st.steps))?;
        reloads.env_progress(&envs, st.steps + n as u64, &mut metrics)?;
        let next = step.next_observations(ol);
        let rewards = on_device(Tensor::from_slice(&step.rewards.iter().map(|&r| r as f32).collect::<Vec<_>>()), device);
        let terminated = on_device(Tensor::from_slice(&step.terminated), device);
        let truncated = on_device(Tensor::from_slice(&step.truncated), device);
        algo.observe(&obs_t, &a, &rewards, &obs_tensor(&next, n, ol, device), &terminated, &truncated)?;
        st.steps += n as u64;
        if st.running.len() != n {
            st.running = vec![(0.0, 0); n];
        }
        for i in 0..n {
            st.running[i].0 += step.rewards[i];
            st.running[i].1 += 1;
            if step.terminated[i] || step.truncated[i] {
                st.finished.push(st.running[i]);
                st.recent.push(st.running[i].0);
                st.running[i] = (0.0, 0);
            }
        }
        if st.recent.len() > 20 {
            st.recent.drain(..st.recent.len() - 20);
        }
        obs = step.observations;
        let mut updated = false;
        if algo.wants_update()? {
            let mut line = serde_json::Map::new();
            line.insert("step".into(), st.steps.into());
            if !st.finished.is_empty() {
                let k = st.finished.len() as f64;
                line.insert("rollout/episodes".into(), st.finished.len().into());
                line.insert("rollout/return_mean".into(), (st.finished.iter().map(|e| e.0).sum::<f64>() / k).into());
                line.insert("rollout/length_mean".into(), (st.finished.iter().map(|e| e.1 as f64).sum::<f64>() / k).into());
                st.finished.clear();
            }
            for m in algo.update()? {
                line.insert(format!("train/{}", m.name), m.value.into());
            }
            metrics.write(line)?;
            st.updates += 1;
            let ctx = ReloadCtx { run_dir, seed: config.seed, env_params: &env_params, reward: None, step: st.steps };
            reloads.swap_algorithm(&ctx, &mut algo, envs.spec(), n, &obs_tensor(&obs, n, ol, device), &mut metrics)?;
            reseed_torch(config, st.updates);
            updated = true;
        }
        let mut stop = false;
        if st.steps >= st.next_eval || st.steps >= total {
            st.next_eval = st.next_eval.saturating_add(config.train.eval_every);
            let e = Evaluation::of(st.steps, evaluate(&mut algo, &mut eval_envs, device)?);
            let mut line = serde_json::json!({"step": st.steps, "eval/return_mean": e.mean, "eval/return_std": e.std});
            if let Some(rate) = e.success_rate {
                line["eval/success_rate"] = rate.into();
            }
            for (name, mean) in &e.final_infos {
                line[format!("eval/final/{name}")] = (*mean).into();
            }
            metrics.write(line.as_object().cloned().unwrap_or_default())?;
            st.best_eval_return = Some(st.best_eval_return.map_or(e.mean, |b: f64| b.max(e.mean)));
            st.last_eval_return = Some(e.mean);
            stop = threshold.is_some_and(|t| e.mean >= t);
            if stop && st.solved_at_step.is_none() {
                st.solved_at_step = Some(st.steps);
            }
            st.evals.push(e);
        }
        // Not while an env swap is under way: every env of a checkpoint is of one version.
        let due = st.steps >= next_checkpoint || ticker.checkpoint_asked;
        if updated && due && !stop && st.steps < total && envs.swapping().is_none() {
            if checkpoint_every > 0 {
                next_checkpoint = (st.steps / checkpoint_every + 1) * checkpoint_every;
            }
            if std::mem::take(&mut ticker.checkpoint_asked) {
                ticker.log.line(crate::log::Level::Info, "host", &format!("checkpoint at step {} written as asked", st.steps));
            }
            let live = Live { algo: &mut algo, envs: &mut envs, eval_envs: &mut eval_envs, observations: &obs, metrics: &mut metrics };
            write_checkpoint(run_dir, &config.train, live, &mut st)?;
        }
        progress(Progress {
            steps: st.steps,
            recent_return: (!st.recent.is_empty()).then(|| st.recent.iter().sum::<f64>() / st.recent.len() as f64),
            last_eval: st.last_eval_return,
        });
        if stop {
            break;
        }
    }
    metrics.flush()?;
    // A final checkpoint, for `paddock eval` and for resuming with more steps. (The rollout
    // may be part-filled here; resuming continues from the last update-time checkpoint
    // unless this one is newer.)
    if (checkpoint_every > 0 || stopped)
        && latest_checkpoint(run_dir).is_none_or(|c| c.file_name().is_some_and(|n| n != checkpoint_name(st.steps).as_str()))
    {
        let live = Live { algo: &mut algo, envs: &mut envs, eval_envs: &mut eval_envs, observations: &obs, metrics: &mut metrics };
        write_checkpoint(run_dir, &config.train, live, &mut st)?;
    }
    let wall_s = start.elapsed().as_secs_f64();
    ticker.status.sps = (st.steps - start_steps) as f64 / wall_s.max(1e-9);
    ticker.write(if stopped { State::Stopped } else { State::Finished }, &st, None);
    Ok(TrainSummary {
        run_dir: run_dir.to_path_buf(),
        steps: st.steps,
        wall_s,
        steps_per_s: (st.steps - start_steps) as f64 / wall_s.max(1e-9),
        best_eval_return: st.best_eval_return,
        last_eval_return: st.last_eval_return,
        solved_at_step: st.solved_at_step,
        evals: st.evals,
        device: format!("{device:?}").to_lowercase(),
        resumed_from: checkpoint,
        stopped,
        store_location: None,
    })
}

/// Evaluates a checkpoint: `episodes` deterministic episodes on fresh eval envs seeded from
/// `seed`, scored with the env's own reward.
pub fn evaluate_checkpoint(
    config: &RunConfig,
    runtime: &Runtime,
    checkpoint: &Path,
    episodes: usize,
    seed: u64,
    frames: Option<&Path>,
) -> anyhow::Result<Evaluation> {
    let (algo_cfg, device) = learner_setup(config)?;
    let env_plugin = runtime.load(&config.env.plugin, World::Environment)?;
    let algo_plugin = runtime.load(&algo_cfg.plugin, World::Algorithm)?;
    let env_params = to_params("env.params", &config.env.params).map_err(anyhow::Error::msg)?;
    // For frames, every env gets its own shard, so the first shard's scene is env 0 alone.
    let workers = if frames.is_some() { episodes } else { config.env.workers };
    let opts = EnvSetOptions {
        num_envs: episodes,
        workers,
        seed,
        stream: Stream::EvalEnv,
        params: env_params,
        robots: std::sync::Arc::new(config.env.robots.clone()),
    };
    let mut envs = EnvSet::new(&env_plugin, &opts)?;
    let mut learner =
        Learner::load(checkpoint, device).map_err(anyhow::Error::msg).with_context(|| format!("checkpoint {}", checkpoint.display()))?;
    attach_goal_oracle(&mut learner, &env_plugin, seed, &opts.params, config.reward.as_ref().map(|r| r.plugin.as_path()))?;
    tch::manual_seed(derive(seed, Stream::PluginRandom, 1 << 41) as i64);
    let mut algo = AlgorithmInstance::new(&algo_plugin, derive(seed, Stream::PluginRandom, 1 << 33), learner)?;
    let algo_params = to_params("algorithm.params", &algo_cfg.params).map_err(anyhow::Error::msg)?;
    algo.init(envs.spec(), config.env.num_envs as u32, &algo_params)?;
    if let Ok(state) = std::fs::read(checkpoint.join("algorithm.bin")) {
        algo.load_state(&state)?;
    }
    let steps = std::fs::read_to_string(checkpoint.join("state.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["steps"].as_u64())
        .unwrap_or(0);
    let Some(dir) = frames else { return Ok(Evaluation::of(steps, evaluate(&mut algo, &mut envs, device)?)) };
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let mut view = None;
    let episodes = evaluate_observed(&mut algo, &mut envs, device, &mut |envs, t| {
        let (scene, fixed) = envs.scene();
        if scene.is_empty() {
            anyhow::bail!("--frames: env plugin {} has no physics scene to draw", config.env.plugin.display());
        }
        let picture = crate::physics::render::SceneFile::new(t as u64, &scene, &fixed, view);
        view = Some(picture.view);
        crate::physics::render::write_png(&picture, 640, 360, &dir.join(format!("frame-{t:05}.png")))
    })?;
    Ok(Evaluation::of(steps, episodes))
}
