//! What training and evaluation set up alike: the learner's device and threads, the env and
//! algorithm plugins with their parameters, and a learner (fresh or from a checkpoint) with
//! the env's goal oracle attached.

use crate::config::{RunConfig, to_params};
use crate::learner::{DeviceRequest, Learner, resolve_device};
use crate::runtime::bindings::types::Params;
use crate::runtime::{GoalInstance, Plugin, Runtime, World};
use crate::seed::{Stream, derive};
use anyhow::Context;
use std::path::Path;
use tch::Device;

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
        let env_params = to_params("env.params", &config.env.params).map_err(anyhow::Error::msg)?;
        let algorithm_params = to_params("algorithm.params", &algo_cfg.params).map_err(anyhow::Error::msg)?;
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
