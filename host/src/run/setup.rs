//! What training and evaluation set up alike: the learner's device and threads, the env and
//! algorithm plugins with their parameters, and a learner (fresh or from a checkpoint) with
//! the env's goal oracle attached; and for training, where it starts (a checkpoint's loop
//! state or a fresh one), the reward plugin, `plugins.lock` with the carried plugin
//! versions, and the hot-reload watcher.

use super::checkpoint::{self, LoopState};
use crate::config::{RunConfig, to_params};
use crate::format::run_dir::{self, LockEntry};
use crate::learner::{DeviceRequest, Learner, resolve_device};
use crate::runtime::bindings::types::Params;
use crate::runtime::watcher::PluginWatcher;
use crate::runtime::{GoalInstance, Plugin, Runtime, World};
use crate::seed::{Stream, derive};
use anyhow::Context;
use std::path::Path;
use tch::Device;

/// `plugins.lock`'s entry for `p` in `role`, live since `since_step`.
pub(super) fn lock_entry(role: &str, p: &Plugin, since_step: u64) -> LockEntry {
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

/// The env and algorithm plugins of a config, loaded and checked, with their parameters
/// and the learner's device.
pub(super) struct Plugins {
    pub env: Plugin,
    pub algorithm: Plugin,
    pub env_params: Params,
    pub algorithm_params: Params,
    pub device: Device,
}

impl Plugins {
    /// Sets libtorch's thread count, resolves the device and loads the plugins.
    pub fn load(config: &RunConfig, runtime: &Runtime) -> anyhow::Result<Self> {
        let algo_cfg = config.algorithm.as_ref().context("the config has no [algorithm] section")?;
        tch::set_num_threads(config.train.threads as i32);
        let request: DeviceRequest = algo_cfg.device.parse().map_err(anyhow::Error::msg)?;
        let device = resolve_device(request)?;
        let env = runtime.load(&config.env.plugin, World::Environment)?;
        let algorithm = runtime.load(&algo_cfg.plugin, World::Algorithm)?;
        let env_params = to_params("env.params", &config.env.params)?;
        let algorithm_params = to_params("algorithm.params", &algo_cfg.params)?;
        Ok(Plugins { env, algorithm, env_params, algorithm_params, device })
    }

    /// A fresh learner, or the one `checkpoint` holds (with its replay buffers when
    /// `replays`), with the env's goal oracle (seeded from `seed`) attached.
    pub fn learner(&self, config: &RunConfig, checkpoint: Option<&Path>, seed: u64, replays: bool) -> anyhow::Result<Learner> {
        let reward = config.reward.as_ref().map(|r| r.plugin.as_path());
        let attach = |l: &mut Learner| attach_goal_oracle(l, &self.env, seed, &self.env_params, reward);
        match checkpoint {
            Some(dir) => super::checkpoint::read_learner(dir, self.device, attach, replays),
            None => {
                let mut learner = Learner::new(self.device);
                attach(&mut learner)?;
                Ok(learner)
            }
        }
    }
}

/// Gives the learner the env's goal rewards when the env is goal-conditioned (for
/// hindsight relabeling): `goal-env` on an instance of its own.
/// A reward plugin replaces the env's rewards, and relabelled rewards would come from the
/// env: that combination is refused (by name) when an algorithm asks for hindsight.
pub(super) fn attach_goal_oracle(
    learner: &mut Learner,
    env_plugin: &Plugin,
    seed: u64,
    params: &Params,
    reward: Option<&Path>,
) -> anyhow::Result<()> {
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

/// Reseeds libtorch's generator from the run seed and the update count: done at every
/// update, so a resumed run draws what an uninterrupted one would, with no generator state
/// in the checkpoint.
pub(super) fn reseed_torch(seed: u64, updates: u64) {
    tch::manual_seed(derive(seed, Stream::PluginRandom, (1 << 40) + updates) as i64);
}

/// Writes `plugins.lock` and carries each plugin version into the run. A fresh run records
/// the versions it starts with; a run resumed at `resumed_at` forgets the versions recorded
/// after that step (the run goes on from there again) and records, like a hot reload, a
/// version other than the one that was live then (asked for with `--plugin ROLE=FILE`).
pub(super) fn record_plugins(
    config: &RunConfig,
    run_dir: &Path,
    plugins: &Plugins,
    reward: Option<&Plugin>,
    resumed_at: Option<u64>,
    log: &crate::log::RunLog,
) -> anyhow::Result<()> {
    let mut live = vec![("env", &plugins.env), ("algorithm", &plugins.algorithm)];
    if let Some(p) = reward {
        live.push(("reward", p));
    }
    let mut lock = match resumed_at {
        None => Vec::new(),
        Some(step) => run_dir::read_lock(run_dir)?.into_iter().filter(|e| e.since_step <= step).collect(),
    };
    let step = resumed_at.unwrap_or(0);
    for (role, p) in live {
        let info = p.info();
        if super::carry::live_at(&lock, role, step).is_some_and(|e| e.sha256 == info.sha256) {
            continue;
        }
        let mut e = lock_entry(role, p, step);
        if let Some(src) = config.sources.get(&info.path) {
            e.source = src.clone();
        }
        if resumed_at.is_some() {
            let msg = format!("resumed at step {step} with another {role} plugin: {} (sha256 {})", info.path.display(), &info.sha256[..12]);
            log.line(crate::log::Level::Info, "host", &msg);
        }
        super::carry::carry_plugin(run_dir, &info.path, &e.name, &info.sha256)?;
        lock.push(e);
    }
    run_dir::write_lock(run_dir, &lock)?;
    Ok(())
}

/// The hot-reload watcher over the run's plugin files (`train.hot_reload`).
pub(super) fn watch(
    config: &RunConfig,
    runtime: &Runtime,
    plugins: &Plugins,
    reward: Option<&Plugin>,
) -> anyhow::Result<Option<PluginWatcher>> {
    if !config.train.hot_reload {
        return Ok(None);
    }
    let mut files = vec![("env", &plugins.env), ("algorithm", &plugins.algorithm)];
    if let Some(p) = reward {
        files.push(("reward", p));
    }
    Ok(Some(PluginWatcher::new(runtime, &files)?))
}

/// Where a run starts: its newest complete checkpoint and that checkpoint's loop state when
/// resuming (and it has one), else a fresh state.
pub(super) fn starting_point(config: &RunConfig, run_dir: &Path, resume: bool) -> anyhow::Result<(Option<std::path::PathBuf>, LoopState)> {
    let resumed_from = if resume { run_dir::latest_checkpoint(run_dir) } else { None };
    let st = match &resumed_from {
        Some(dir) => checkpoint::read_loop_state(dir)?,
        None => {
            LoopState { next_eval: if config.train.eval_every == 0 { u64::MAX } else { config.train.eval_every }, ..LoopState::default() }
        }
    };
    Ok((resumed_from, st))
}

/// The reward plugin, if the config has one, with the seed and parameters that serve its
/// first instance and every hot-reloaded one.
pub(super) fn reward(config: &RunConfig, runtime: &Runtime) -> anyhow::Result<(Option<Plugin>, u64, Params)> {
    let Some(r) = &config.reward else { return Ok((None, 0, Vec::new())) };
    let plugin = runtime.load(&r.plugin, World::Reward)?;
    Ok((Some(plugin), derive(config.seed, Stream::PluginRandom, 1 << 32), to_params("reward.params", &r.params)?))
}
